//! The JetStream backend against a real nats-server: the conformance suite, and a restart test
//! that kills the server while appends and a subscription are in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::{EventLog, ExpectedRevision, LogError, RecordedCommit, StreamId};
use docket_testkit::{NatsCluster, NatsServer};
use futures_util::StreamExt;
use uuid::Uuid;

use crate::conformance::{self, Harness};

/// Drives a [`JetStreamLog`] on its own nats-server.
pub struct JetStreamHarness {
    server: NatsServer,
    config: JetStreamConfig,
}

impl JetStreamHarness {
    /// Starts a fresh server (off the async threads: starting one blocks).
    pub async fn start(config: JetStreamConfig) -> Self {
        let server = tokio::task::spawn_blocking(NatsServer::start)
            .await
            .unwrap();
        JetStreamHarness { server, config }
    }

    async fn connect(&self) -> JetStreamLog {
        JetStreamLog::connect_url(&self.server.url(), self.config.clone())
            .await
            .unwrap()
    }

    /// Kills the server with SIGKILL, keeps it down for `down`, and starts it again.
    async fn crash(&mut self, down: Duration) {
        tokio::task::block_in_place(|| self.server.kill());
        tokio::time::sleep(down).await;
        tokio::task::block_in_place(|| self.server.restart());
    }
}

impl Harness for JetStreamHarness {
    type Log = JetStreamLog;
    type Checkpoints = docket_log::checkpoint::KvCheckpoints;

    async fn checkpoints(&mut self, log: &JetStreamLog) -> Self::Checkpoints {
        log.checkpoints().await.unwrap()
    }

    async fn open(&mut self) -> JetStreamLog {
        self.connect().await
    }

    async fn reopen(&mut self, log: JetStreamLog) -> JetStreamLog {
        drop(log);
        self.crash(Duration::ZERO).await;
        self.connect().await
    }

    async fn corrupt(&mut self, log: JetStreamLog) -> (u64, Result<JetStreamLog, LogError>) {
        // Bytes that are no commit, published around the log straight to a log subject.
        let js = async_nats::jetstream::new(log.client().clone());
        let subject = format!("docket.log.case.corrupt{}", Uuid::new_v4().simple());
        let ack = js
            .publish(subject, b"\x01not a commit at all"[..].into())
            .await
            .unwrap()
            .await
            .unwrap();
        (ack.sequence, Ok(log))
    }
}

conformance::conformance_suite!(conformance_jetstream, || async {
    JetStreamHarness::start(JetStreamConfig::default()).await
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_stream_that_allows_deletes() {
    let harness = JetStreamHarness::start(JetStreamConfig::default()).await;
    let client = async_nats::connect(harness.server.url()).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "DOCKET_LOG".into(),
        subjects: vec!["docket.log.>".into()],
        allow_direct: true,
        ..Default::default()
    })
    .await
    .unwrap();
    match JetStreamLog::connect(client, JetStreamConfig::default()).await {
        Err(LogError::Incompatible { reason }) => {
            assert!(reason.contains("deny_delete"), "{reason}");
            assert!(reason.contains("deny_purge"), "{reason}");
        }
        other => panic!("expected incompatible, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_verifies_the_existing_stream() {
    let harness = JetStreamHarness::start(JetStreamConfig::default()).await;
    let first = harness.connect().await;
    let s = conformance::stream("case");
    first
        .append(
            &s,
            ExpectedRevision::NoStream,
            vec![conformance::event(&b"a"[..])],
            Default::default(),
        )
        .await
        .unwrap();
    // A second handle knows nothing of the first's cache and still links correctly.
    let second = harness.connect().await;
    second
        .append(
            &s,
            ExpectedRevision::Exact(1),
            vec![conformance::event(&b"b"[..])],
            Default::default(),
        )
        .await
        .unwrap();
    // The first handle's cache is stale now: a stale Exact is a conflict, Any re-links.
    match first
        .append(
            &s,
            ExpectedRevision::Exact(1),
            vec![conformance::event(&b"c"[..])],
            Default::default(),
        )
        .await
    {
        Err(LogError::Conflict { actual: 2, .. }) => {}
        other => panic!("stale exact: {other:?}"),
    }
    first
        .append(
            &s,
            ExpectedRevision::Any,
            vec![conformance::event(&b"d"[..])],
            Default::default(),
        )
        .await
        .unwrap();
    let replicas = JetStreamConfig {
        replicas: 3,
        ..JetStreamConfig::default()
    };
    match JetStreamLog::connect_url(&harness.server.url(), replicas).await {
        Err(LogError::Incompatible { reason }) => assert!(reason.contains("replica"), "{reason}"),
        other => panic!("replica mismatch: {other:?}"),
    }
    conformance::assert_chains_hold(&conformance::read_everything(&second).await);
}

/// What one writer task saw acknowledged: (position, dedup key, stream).
type Acked = Vec<(u64, String, StreamId)>;

/// Appends to its own streams until `stop`, retrying `Unavailable` with the same key.
async fn writer(
    log: JetStreamLog,
    w: usize,
    stop: Arc<AtomicBool>,
    retries: Arc<AtomicU64>,
) -> Acked {
    let streams: Vec<StreamId> = (0..2).map(|_| conformance::stream("case")).collect();
    let mut heads = [0u64; 2];
    let mut acked = Vec::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let slot = i % 2;
        let key = format!("w{w}-{i}-{}", Uuid::new_v4().simple());
        let events = vec![conformance::event(format!("writer {w} append {i}"))];
        let expected = match heads[slot] {
            0 => ExpectedRevision::NoStream,
            r => ExpectedRevision::Exact(r),
        };
        let mut attempt = 0;
        let position = loop {
            let result = log
                .append(
                    &streams[slot],
                    expected,
                    events.clone(),
                    conformance::keyed(&key),
                )
                .await;
            match result {
                Ok(a) => break a.position,
                // Our earlier attempt landed: acknowledged at the position it carries.
                Err(LogError::Duplicate { position }) if attempt > 0 => break position,
                Err(LogError::Unavailable { .. }) if attempt < 100 => {
                    attempt += 1;
                    retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("writer {w} append {i} (attempt {attempt}): {e}"),
            }
        };
        heads[slot] = position;
        acked.push((position, key, streams[slot].clone()));
        i += 1;
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_lose_and_duplicate_nothing() {
    let config = JetStreamConfig {
        // Short, so that appends caught by the longest outage give up and the caller retries.
        max_retry: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
        ..JetStreamConfig::default()
    };
    let mut harness = JetStreamHarness::start(config).await;
    let log = harness.connect().await;

    // A subscriber that must see every position once, in order, across the restarts; it stops
    // once it has reached the final head, which it learns at the end.
    let mut feed = log.subscribe(0).await.unwrap();
    let (final_head, mut target) = tokio::sync::watch::channel(u64::MAX);
    let watched = tokio::spawn(async move {
        let mut seen: Vec<u64> = Vec::new();
        while seen.last().copied().unwrap_or(0) < *target.borrow() {
            tokio::select! {
                next = feed.next() => seen.push(next.expect("feed ended").unwrap().position),
                changed = target.changed() => changed.unwrap(),
                () = tokio::time::sleep(Duration::from_secs(30)) => panic!("subscription stalled"),
            }
        }
        seen
    });

    let stop = Arc::new(AtomicBool::new(false));
    let retries = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..8)
        .map(|w| tokio::spawn(writer(log.clone(), w, stop.clone(), retries.clone())))
        .collect();

    for down in [
        Duration::ZERO,
        Duration::from_millis(300),
        Duration::from_millis(1500),
    ] {
        tokio::time::sleep(Duration::from_millis(400)).await;
        harness.crash(down).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    let retries = retries.load(Ordering::Relaxed);

    let all: Vec<RecordedCommit> = conformance::read_everything(&log).await;
    conformance::assert_chains_hold(&all);
    let mut by_key: HashMap<&str, Vec<u64>> = HashMap::new();
    for c in &all {
        let key = c.commit.metadata.idempotency_key.as_deref().unwrap();
        by_key.entry(key).or_default().push(c.position);
    }
    for (position, key, stream) in &acked {
        assert_eq!(
            by_key.get(key.as_str()),
            Some(&vec![*position]),
            "acknowledged commit {key} of {stream} is in the log once, at {position}"
        );
    }
    assert_eq!(all.len(), by_key.len(), "no commit stored twice");
    // Everything stored was acknowledged, except at most the append each writer had in flight
    // when it was told to stop (none: writers finish their append before checking).
    assert_eq!(
        all.len(),
        acked.len(),
        "nothing stored that was not acknowledged"
    );
    assert!(
        retries > 0,
        "the long outage made appends give up and be retried"
    );

    let head = log.head().await.unwrap();
    assert_eq!(head, all.len() as u64);
    final_head.send(head).unwrap();
    let seen = watched.await.unwrap();
    assert_eq!(
        seen,
        (1..=head).collect::<Vec<_>>(),
        "the subscription resumed without gap or repeat"
    );
    eprintln!(
        "restart test: {} commits acknowledged, {} caller retries after unavailable",
        acked.len(),
        retries
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_log_survives_losing_the_stream_leader() {
    let mut cluster = tokio::task::spawn_blocking(|| NatsCluster::start(3))
        .await
        .unwrap();
    let config = JetStreamConfig {
        replicas: 3,
        // A new stream leader takes a few seconds to elect.
        max_retry: Duration::from_secs(30),
        ..JetStreamConfig::default()
    };
    let log = JetStreamLog::connect_url(&cluster.url(), config.clone())
        .await
        .unwrap();
    let js = async_nats::jetstream::new(log.client().clone());

    let stop = Arc::new(AtomicBool::new(false));
    let retries = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..4)
        .map(|w| tokio::spawn(writer(log.clone(), w, stop.clone(), retries.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let info = js.get_stream(&config.stream_name).await.unwrap();
    let leader = info
        .cached_info()
        .cluster
        .as_ref()
        .unwrap()
        .leader
        .clone()
        .unwrap();
    let leader = cluster
        .index_of(&leader)
        .expect("the leader is one of ours");
    tokio::task::block_in_place(|| cluster.kill(leader));
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| cluster.restart(leader));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }

    let all = conformance::read_everything(&log).await;
    conformance::assert_chains_hold(&all);
    let mut by_key: HashMap<&str, Vec<u64>> = HashMap::new();
    for c in &all {
        let key = c.commit.metadata.idempotency_key.as_deref().unwrap();
        by_key.entry(key).or_default().push(c.position);
    }
    for (position, key, _) in &acked {
        assert_eq!(by_key.get(key.as_str()), Some(&vec![*position]), "{key}");
    }
    assert_eq!(
        all.len(),
        acked.len(),
        "nothing stored twice or unacknowledged"
    );
    eprintln!(
        "replicated: {} commits acknowledged across a leader loss",
        acked.len()
    );
}
