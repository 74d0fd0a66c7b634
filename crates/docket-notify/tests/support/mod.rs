//! Test support: a real local webhook receiver, domain-event fixtures, and readers of what the
//! service recorded in the log.

pub mod fixtures;
pub mod receiver;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use docket_log::file::FileLog;
use docket_log::jetstream::JetStreamLog;
use docket_log::{AnyCheckpoints, Checkpoints, EventLog};
use docket_notify::events::NotificationEvent;
use docket_notify::{NotifyConfig, NotifyError};
use docket_runtime::clock::SystemClock;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// The shared secret of every test.
pub const SECRET: &str = "test-secret-0123456789";

/// A config for a receiver, with test-sized backoffs.
pub fn config(url: &str) -> NotifyConfig {
    NotifyConfig {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        request_timeout: Duration::from_secs(5),
        ..NotifyConfig::new(url, SECRET)
    }
}

/// A running notification service.
pub struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), NotifyError>>,
}

/// A log with the checkpoint store of its deployment.
pub trait TestLog: EventLog + Clone + Send + Sync + 'static {
    /// The checkpoint store beside the log.
    fn store(&self) -> impl Future<Output = AnyCheckpoints> + Send;
}

impl TestLog for FileLog {
    async fn store(&self) -> AnyCheckpoints {
        AnyCheckpoints::File(self.checkpoints().unwrap())
    }
}

impl TestLog for JetStreamLog {
    async fn store(&self) -> AnyCheckpoints {
        AnyCheckpoints::Kv(Box::new(self.checkpoints().await.unwrap()))
    }
}

/// The notification service's stored checkpoint.
pub async fn checkpoint<L: TestLog>(log: &L) -> Option<u64> {
    log.store()
        .await
        .load(docket_notify::NOTIFY_CONSUMER)
        .await
        .unwrap()
}

/// Starts the service on `log`, with the checkpoint store beside it.
pub fn start<L: TestLog>(log: L, config: NotifyConfig) -> Running {
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(async move {
        let checkpoints = log.store().await;
        docket_notify::run(
            config,
            log,
            checkpoints,
            Arc::new(SystemClock),
            docket_notify::Metrics::default(),
            shutdown,
        )
        .await
    });
    Running { stop, task }
}

impl Running {
    /// Asks it to stop and waits until it has.
    pub async fn stop(self) -> Result<(), NotifyError> {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the service stops")
            .expect("the service task does not panic")
    }

    /// Sends the stop signal without waiting.
    pub fn signal(&self) {
        let _ = self.stop.send(true);
    }

    /// Waits for the service to return.
    pub async fn join(self) -> Result<(), NotifyError> {
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the service stops")
            .expect("the service task does not panic")
    }

    /// Kills it where it is (the task is aborted, attempts in flight included).
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Every notification stream in the log: its events in order.
pub async fn recorded<L: EventLog>(log: &L) -> BTreeMap<Uuid, Vec<NotificationEvent>> {
    let mut out: BTreeMap<Uuid, Vec<NotificationEvent>> = BTreeMap::new();
    let mut after = 0;
    loop {
        let batch = log.read_all(after, 1000).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        for commit in batch {
            if commit.commit.stream.kind() != "notification" {
                continue;
            }
            let id = Uuid::parse_str(commit.commit.stream.id()).unwrap();
            for data in &commit.commit.events {
                out.entry(id)
                    .or_default()
                    .push(NotificationEvent::decode(data).unwrap());
            }
        }
    }
    out
}

/// How many notifications have reached a final state (delivered or abandoned).
pub async fn finished<L: EventLog>(log: &L) -> usize {
    recorded(log)
        .await
        .values()
        .filter(|events| {
            events.iter().any(|e| {
                matches!(
                    e,
                    NotificationEvent::Delivered(_) | NotificationEvent::Abandoned(_)
                )
            })
        })
        .count()
}

/// Polls `check` until it is true, failing the test after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks one notification's stream: queued exactly once and first, attempts numbered 1, 2, …
/// without gaps or repeats, at most one final event and nothing after it. Returns the number of
/// attempts recorded and whether it was delivered.
pub fn check_stream(id: Uuid, events: &[NotificationEvent]) -> (u32, bool) {
    assert!(
        matches!(events.first(), Some(NotificationEvent::Queued(_))),
        "{id}: starts with queued: {events:?}"
    );
    let queued = events
        .iter()
        .filter(|e| matches!(e, NotificationEvent::Queued(_)))
        .count();
    assert_eq!(queued, 1, "{id}: queued once: {events:?}");
    let mut attempts = 0;
    let mut delivered = false;
    let mut finished = false;
    for event in &events[1..] {
        assert!(!finished, "{id}: nothing after the final event: {events:?}");
        match event {
            NotificationEvent::AttemptFailed(f) => {
                attempts += 1;
                assert_eq!(f.attempt, attempts, "{id}: attempts in order: {events:?}");
            }
            NotificationEvent::Delivered(d) => {
                attempts += 1;
                assert_eq!(d.attempt, attempts, "{id}: attempts in order: {events:?}");
                delivered = true;
                finished = true;
            }
            NotificationEvent::Abandoned(a) => {
                assert_eq!(a.attempts, attempts, "{id}: {events:?}");
                finished = true;
            }
            NotificationEvent::Queued(_) => unreachable!(),
        }
    }
    (attempts, delivered)
}
