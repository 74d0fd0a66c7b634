//! The service loop: follow the log from its start, keep every notification's state as the log
//! records it, queue what new events cause, and deliver what is due, a bounded number at a time.
//!
//! State is only ever changed by commits read back from the log, never by the service's own
//! appends directly: an attempt's task appends its outcome, and the notification is not tried
//! again until the subscription has brought that commit (or the commit that beat it). So a
//! restart, which rebuilds the same state from the same commits, continues exactly where the log
//! says the last run stopped.
//!
//! Its checkpoint ([`NOTIFY_CONSUMER`]) is the position up to which every notification the
//! commits cause is queued in the log. A restart still reads the log from the start, to know who
//! is who and which notifications are pending, but renders notifications only for commits after
//! the checkpoint; those it renders again after a crash are already queued under the same id, so
//! the log keeps the first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use docket_log::{AnyCheckpoints, EventLog, ExpectedRevision, LogError, Metadata, RecordedCommit};
use docket_runtime::clock::Clock;
use docket_runtime::Checkpoint;
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::config::NotifyConfig;
use crate::error::NotifyError;
use crate::events::{
    attempt_key, queued_key, stream_of, Abandoned, AttemptFailed, Delivered, NotificationEvent,
    Queued, STREAM_KIND,
};
use crate::message::{Message, NOTIFICATION_NAMESPACE};
use crate::metrics::Metrics;
use crate::render::People;
use crate::webhook::{Attempt, Webhook};

/// The checkpoint name of the notification service.
pub const NOTIFY_CONSUMER: &str = "notification";

/// Longest sleep while waiting for a due time, so that a clock set by hand is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Runs the notification service until `shutdown` turns true (or its sender is dropped): then it
/// takes no new work, waits for the attempts in flight, records their outcomes and returns.
///
/// It reads the whole log from the start, rebuilding which notifications exist and how far each
/// got, queues what the events since cause, then follows the log live. Delivery is at least once:
/// an attempt whose outcome was not recorded before the process died is made again, with the
/// same `Docket-Notification-Id`. It counts into `metrics` (the node's registered families).
pub async fn run<L: EventLog + Clone + Send + Sync + 'static>(
    config: NotifyConfig,
    log: L,
    checkpoints: AnyCheckpoints,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), NotifyError> {
    config.validate()?;
    let webhook = Webhook::new(&config)?;
    let mut checkpoint = Checkpoint::load(checkpoints, NOTIFY_CONSUMER, metrics.position.clone())
        .await
        .map_err(|e| NotifyError::Checkpoint(e.to_string()))?;
    let head = log
        .head()
        .await
        .map_err(|e| NotifyError::log("reading the log's head", e))?;
    let mut commits = log
        .subscribe(0)
        .await
        .map_err(|e| NotifyError::log("subscribing to the log", e))?;
    tracing::info!(webhook = %config.redacted_url(), head, "notification service starting");

    let shared = Arc::new(Shared {
        log,
        clock,
        webhook,
        config,
        metrics,
    });
    let mut state = State {
        head,
        queued_through: checkpoint.position(),
        ..State::default()
    };
    let mut in_flight: JoinSet<Finished> = JoinSet::new();

    let result: Result<(), NotifyError> = async {
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            if state.caught_up() {
                queue(&shared, &mut state, &shutdown).await?;
                if state.unqueued.is_empty() {
                    // Everything the commits read so far cause is queued in the log.
                    checkpoint
                        .advance(state.applied)
                        .await
                        .map_err(|e| NotifyError::Checkpoint(e.to_string()))?;
                }
                dispatch(&shared, &mut state, &mut in_flight);
            }
            let mut wake = state.next_wake(
                shared.clock.now(),
                in_flight.len() < shared.config.concurrency,
            );
            if checkpoint.dirty() {
                wake = Some(wake.map_or(MAX_SLEEP, |w| w.min(MAX_SLEEP)));
            }
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                }
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                    state.finished(done)?;
                }
                next = commits.next() => match next {
                    Some(Ok(commit)) => state.apply(&commit, shared.clock.now())?,
                    Some(Err(e)) => return Err(NotifyError::log("following the log", e)),
                    None => return Err(NotifyError::SubscriptionEnded),
                },
                () = sleep(wake) => {}
            }
        }
    }
    .await;

    // Whether stopping or failing: let the attempts in flight finish and record their outcomes.
    if !in_flight.is_empty() {
        tracing::info!(
            in_flight = in_flight.len(),
            "waiting for delivery attempts in flight"
        );
    }
    while let Some(done) = in_flight.join_next().await {
        if let Err(e) = state.finished(done) {
            tracing::error!(error = %e, "recording a delivery attempt failed");
        }
    }
    if let Err(e) = checkpoint.flush().await {
        tracing::error!(error = %e, "saving the notification checkpoint failed");
    }
    match &result {
        Ok(()) => tracing::info!("notification service stopped"),
        Err(e) => tracing::error!(error = %e, "notification service failed"),
    }
    result
}

async fn sleep(wake: Option<Duration>) {
    match wake {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// What every attempt task needs.
struct Shared<L> {
    log: L,
    clock: Arc<dyn Clock>,
    webhook: Webhook,
    config: NotifyConfig,
    metrics: Metrics,
}

/// A queued notification not yet delivered or abandoned.
#[derive(Debug)]
struct Pending {
    /// The exact body POSTed.
    body: Bytes,
    /// The stream's revision, as far as the service has read it.
    revision: u64,
    /// Attempts recorded.
    attempts: u32,
    /// When the next attempt is due.
    next_at: DateTime<Utc>,
    /// An attempt is running.
    in_flight: bool,
    /// Not to be tried until the stream's revision reaches this: the service's own outcome
    /// commit (or one that beat it) is still to be read back.
    wait_for: u64,
}

impl Pending {
    fn ready(&self) -> bool {
        !self.in_flight && self.revision >= self.wait_for
    }
}

/// Everything the service knows, all derived from the log.
#[derive(Debug, Default)]
struct State {
    /// The log's head at start: until it is read, nothing is queued or sent.
    head: u64,
    /// The last position applied.
    applied: u64,
    /// The checkpoint at start: notifications caused up to here are queued already.
    queued_through: u64,
    /// Who events concern.
    people: People,
    /// Rendered notifications not (yet) seen queued, by causing position and id: the order they
    /// are queued in.
    unqueued: BTreeMap<(u64, Uuid), Message>,
    /// The highest causing position of any queued notification. Notifications are queued one at
    /// a time in (position, id) order, so everything caused before it is queued already; what
    /// renders anew there (after a change of the rules) is never sent for old events.
    watermark: u64,
    /// Notifications queued and not finished.
    pending: HashMap<Uuid, Pending>,
    /// Ready notifications by due time.
    schedule: BTreeSet<(DateTime<Utc>, Uuid)>,
}

/// The end of one attempt task.
struct Finished {
    id: Uuid,
    attempt: u32,
    recorded: Result<u64, LogError>,
}

impl State {
    fn caught_up(&self) -> bool {
        self.applied >= self.head
    }

    /// How long to sleep before something is due; `None` when nothing is scheduled or no
    /// attempt could start anyway.
    fn next_wake(&self, now: DateTime<Utc>, capacity: bool) -> Option<Duration> {
        if !self.caught_up() || !capacity {
            return None;
        }
        let (at, _) = self.schedule.first()?;
        Some(
            (*at - now)
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(MAX_SLEEP),
        )
    }

    /// Puts a pending notification on the schedule if it is ready (and takes it off otherwise).
    fn reschedule(&mut self, id: Uuid, old_at: Option<DateTime<Utc>>) {
        if let Some(at) = old_at {
            self.schedule.remove(&(at, id));
        }
        if let Some(p) = self.pending.get(&id) {
            if p.ready() {
                self.schedule.insert((p.next_at, id));
            }
        }
    }

    /// Applies one commit read from the log.
    fn apply(&mut self, commit: &RecordedCommit, now: DateTime<Utc>) -> Result<(), NotifyError> {
        let position = commit.position;
        if position <= self.applied {
            return Ok(());
        }
        let stream = &commit.commit.stream;
        if stream.kind() == STREAM_KIND {
            self.apply_notification(commit)?;
        } else {
            let messages = self
                .people
                .apply(commit, now)
                .map_err(|reason| NotifyError::Unreadable { position, reason })?;
            if position > self.queued_through {
                for message in messages {
                    self.unqueued.insert((position, message.id), message);
                }
            }
        }
        self.applied = position;
        if self.applied == self.head && self.head > 0 {
            tracing::info!(
                position,
                pending = self.pending.len(),
                to_queue = self.unqueued.len(),
                "caught up with the log"
            );
        }
        Ok(())
    }

    fn apply_notification(&mut self, commit: &RecordedCommit) -> Result<(), NotifyError> {
        let position = commit.position;
        let unreadable = |reason: String| NotifyError::Unreadable { position, reason };
        let id = Uuid::parse_str(commit.commit.stream.id())
            .map_err(|e| unreadable(format!("notification stream id: {e}")))?;
        let old_at = self.pending.get(&id).map(|p| p.next_at);
        for data in &commit.commit.events {
            match NotificationEvent::decode(data).map_err(|e| unreadable(e.to_string()))? {
                NotificationEvent::Queued(Queued { message }) => {
                    let cause = message.caused_by.position;
                    self.unqueued.remove(&(cause, message.id));
                    if cause > self.watermark {
                        self.watermark = cause;
                        // Everything caused before the watermark is queued already.
                        self.unqueued = self.unqueued.split_off(&(cause, Uuid::nil()));
                    }
                    let body = serde_json::to_vec(&message)
                        .map_err(|e| unreadable(format!("notification message: {e}")))?;
                    self.pending.entry(id).or_insert(Pending {
                        body: Bytes::from(body),
                        revision: position,
                        attempts: 0,
                        next_at: message.created_at,
                        in_flight: false,
                        wait_for: 0,
                    });
                }
                NotificationEvent::AttemptFailed(failed) => {
                    if let Some(p) = self.pending.get_mut(&id) {
                        p.attempts = p.attempts.max(failed.attempt);
                        if let Some(next) = failed.next_attempt_at {
                            p.next_at = next;
                        }
                    }
                }
                NotificationEvent::Delivered(_) | NotificationEvent::Abandoned(_) => {
                    self.pending.remove(&id);
                }
            }
        }
        if let Some(p) = self.pending.get_mut(&id) {
            p.revision = position;
        }
        self.reschedule(id, old_at);
        Ok(())
    }

    /// Takes the end of an attempt task: the notification may be tried again once the log has
    /// been read up to what the task wrote (or found).
    fn finished(
        &mut self,
        done: Result<Finished, tokio::task::JoinError>,
    ) -> Result<(), NotifyError> {
        let done = match done {
            Ok(done) => done,
            Err(e) => {
                // A panicking attempt task is a bug; its notification stays marked in flight
                // (never retried by this run) and is retried after a restart.
                tracing::error!(error = %e, "a delivery attempt task failed");
                return Ok(());
            }
        };
        let wait_for = match done.recorded {
            Ok(position) => position,
            // Someone else recorded this attempt or a later step: read it back first.
            Err(LogError::Conflict { actual, .. }) => actual,
            Err(LogError::Duplicate { position }) => position,
            Err(e) => {
                tracing::error!(notification = %done.id, attempt = done.attempt, error = %e, "cannot record a delivery attempt");
                if let Some(p) = self.pending.get_mut(&done.id) {
                    p.in_flight = false;
                }
                return Err(NotifyError::log("recording a delivery attempt", e));
            }
        };
        if let Some(p) = self.pending.get_mut(&done.id) {
            p.in_flight = false;
            p.wait_for = p.wait_for.max(wait_for);
        }
        self.reschedule(done.id, None);
        Ok(())
    }
}

/// Appends `notification.queued` for every rendered notification not yet queued, one at a time
/// in causing order (which the watermark relies on), until done or told to stop (what is left is
/// rendered again from the log by the next run).
async fn queue<L: EventLog>(
    shared: &Shared<L>,
    state: &mut State,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), NotifyError> {
    while !*shutdown.borrow() {
        let Some(((_, id), message)) = state.unqueued.pop_first() else {
            break;
        };
        let key = queued_key(id);
        let causation = message.caused_by.event_id;
        let event = NotificationEvent::Queued(Queued {
            message: message.clone(),
        })
        .encode(event_id(&key, 0))
        .map_err(|e| NotifyError::Unreadable {
            position: message.caused_by.position,
            reason: e.to_string(),
        })?;
        let metadata = metadata(shared, key, Some(causation));
        match shared
            .log
            .append(
                &stream_of(id),
                ExpectedRevision::NoStream,
                vec![event],
                metadata,
            )
            .await
        {
            Ok(_) => {
                shared.metrics.notification_queued();
                tracing::debug!(notification = %id, kind = ?message.kind, "notification queued")
            }
            // Already queued (by an earlier run or another instance): the log keeps the first.
            Err(LogError::Conflict { .. } | LogError::Duplicate { .. }) => {}
            Err(e) => {
                state
                    .unqueued
                    .insert((message.caused_by.position, id), message);
                return Err(NotifyError::log("queueing a notification", e));
            }
        }
    }
    Ok(())
}

/// Starts attempts for due notifications while there is room.
fn dispatch<L: EventLog + Clone + Send + Sync + 'static>(
    shared: &Arc<Shared<L>>,
    state: &mut State,
    in_flight: &mut JoinSet<Finished>,
) {
    let now = shared.clock.now();
    while in_flight.len() < shared.config.concurrency {
        let Some(&(at, id)) = state.schedule.first() else {
            return;
        };
        if at > now {
            return;
        }
        state.schedule.remove(&(at, id));
        let Some(p) = state.pending.get_mut(&id) else {
            continue;
        };
        p.in_flight = true;
        let job = Job {
            id,
            attempt: p.attempts + 1,
            revision: p.revision,
            body: p.body.clone(),
        };
        in_flight.spawn(attempt(shared.clone(), job));
    }
}

/// One attempt to make.
struct Job {
    id: Uuid,
    attempt: u32,
    revision: u64,
    body: Bytes,
}

/// Makes one attempt and records its outcome in the notification's stream.
async fn attempt<L: EventLog>(shared: Arc<Shared<L>>, job: Job) -> Finished {
    let Job {
        id,
        attempt,
        revision,
        body,
    } = job;
    let started = Instant::now();
    let outcome = shared.webhook.post(id, body).await;
    let took = started.elapsed();
    let now = shared.clock.now();
    let config = &shared.config;
    let events = match outcome {
        Attempt::Delivered { status } => {
            shared.metrics.delivery_done("delivered", took);
            tracing::info!(notification = %id, attempt, status, "notification delivered");
            vec![NotificationEvent::Delivered(Delivered {
                attempt,
                status,
                at: now,
            })]
        }
        Attempt::Failed { status, error } if attempt >= config.max_attempts => {
            shared.metrics.delivery_done("abandoned", took);
            tracing::error!(notification = %id, attempt, status, error = %error, "notification abandoned");
            vec![
                NotificationEvent::AttemptFailed(AttemptFailed {
                    attempt,
                    status,
                    error: error.clone(),
                    at: now,
                    next_attempt_at: None,
                }),
                NotificationEvent::Abandoned(Abandoned {
                    attempts: attempt,
                    last_error: error,
                    at: now,
                }),
            ]
        }
        Attempt::Failed { status, error } => {
            shared.metrics.delivery_done("failed", took);
            let wait = backoff(config, attempt);
            let next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
            tracing::warn!(notification = %id, attempt, status, error = %error, retry_in = ?wait, "notification attempt failed");
            vec![NotificationEvent::AttemptFailed(AttemptFailed {
                attempt,
                status,
                error,
                at: now,
                next_attempt_at: Some(next),
            })]
        }
    };
    let key = attempt_key(id, attempt);
    let mut data = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        match event.encode(event_id(&key, i)) {
            Ok(d) => data.push(d),
            Err(e) => {
                return Finished {
                    id,
                    attempt,
                    recorded: Err(LogError::Invalid {
                        reason: e.to_string(),
                    }),
                }
            }
        }
    }
    let recorded = shared
        .log
        .append(
            &stream_of(id),
            ExpectedRevision::Exact(revision),
            data,
            metadata(&shared, key, None),
        )
        .await
        .map(|appended| appended.position);
    Finished {
        id,
        attempt,
        recorded,
    }
}

/// The wait after failed attempt `attempt` (from 1): the initial backoff doubled per further
/// attempt, at most the maximum. No jitter: the concurrency bound already paces a recovering
/// endpoint.
pub(crate) fn backoff(config: &NotifyConfig, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(32);
    config
        .initial_backoff
        .saturating_mul(1u32 << doublings.min(31))
        .min(config.max_backoff)
}

/// Event ids derive from the commit's idempotency key, so a retried append is byte-identical.
fn event_id(key: &str, index: usize) -> Uuid {
    Uuid::new_v5(&NOTIFICATION_NAMESPACE, format!("{key}/{index}").as_bytes())
}

fn metadata<L>(shared: &Shared<L>, key: String, causation_id: Option<Uuid>) -> Metadata {
    let actor = docket_runtime::system_actor();
    Metadata {
        idempotency_key: Some(key),
        actor: Some(format!("{}/{}", actor.person, actor.role)),
        correlation_id: None,
        causation_id,
        recorded_at_micros: shared.clock.now().timestamp_micros(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let config = NotifyConfig {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            ..NotifyConfig::new("http://127.0.0.1:9/", "k")
        };
        let waits: Vec<u64> = (1..=11).map(|n| backoff(&config, n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(&config, u32::MAX), Duration::from_secs(300));
    }
}
