//! The conformance suite every log backend must pass, instantiated per backend with
//! [`conformance_suite!`]. A backend is done when this passes, not before.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use docket_log::{
    Checkpoints, EventData, EventLog, ExpectedRevision, LogError, Metadata, RecordedCommit,
    StreamId, MAX_COMMIT_BYTES,
};
use futures_util::StreamExt;
use tokio::sync::Mutex;
use uuid::Uuid;

/// How the suite drives one backend.
pub trait Harness: Send + 'static {
    /// The backend under test.
    type Log: EventLog + Clone + Send + Sync + 'static;
    /// Opens the log on fresh, empty storage.
    fn open(&mut self) -> impl Future<Output = Self::Log> + Send;
    /// Closes (or restarts the server under) the log and opens it again on the same storage.
    fn reopen(&mut self, log: Self::Log) -> impl Future<Output = Self::Log> + Send;
    /// The reactions' checkpoint store that goes with the log.
    type Checkpoints: Checkpoints;
    /// Opens the checkpoint store of the deployment `log` belongs to.
    fn checkpoints(&mut self, log: &Self::Log) -> impl Future<Output = Self::Checkpoints> + Send;
    /// Puts bad bytes into storage for one commit position and returns that position and the
    /// log re-opened (`Err` if the backend refuses to open corrupt storage).
    fn corrupt(
        &mut self,
        log: Self::Log,
    ) -> impl Future<Output = (u64, Result<Self::Log, LogError>)> + Send;
}

/// Generates one test per conformance case for the harness `$make` builds.
macro_rules! conformance_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::conformance::conformance_suite!(@cases $make;
                round_trip, expected_revisions, sixteen_writers_race, idempotent_retry,
                order_is_ack_order, subscribe_from_start, subscribe_from_middle,
                subscribe_from_head, reopen_persists, corruption_is_detected,
                empty_commit_refused, size_limit_enforced, missing_stream_not_found,
                hash_chains_hold, checkpoints_persist);
        }
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let harness = ($make)().await;
                $crate::conformance::$case(harness).await;
            }
        )*
    };
}
pub(crate) use conformance_suite;

/// An event with the given payload and a fresh id.
pub fn event(payload: impl Into<Bytes>) -> EventData {
    EventData {
        id: Uuid::new_v4(),
        type_name: "test.event".into(),
        type_version: 1,
        payload: payload.into(),
    }
}

/// Metadata with an idempotency key.
pub fn keyed(key: &str) -> Metadata {
    Metadata {
        idempotency_key: Some(key.to_owned()),
        actor: Some("officer:test".into()),
        correlation_id: Some(Uuid::new_v4()),
        causation_id: None,
        recorded_at_micros: 1_700_000_000_000_000,
    }
}

/// A stream id unique to this test run.
pub fn stream(kind: &str) -> StreamId {
    StreamId::new(format!("{kind}/{}", Uuid::new_v4().simple())).unwrap()
}

/// Reads the whole log.
pub async fn read_everything(log: &impl EventLog) -> Vec<RecordedCommit> {
    let mut out = Vec::new();
    loop {
        let after = out.last().map_or(0, |c: &RecordedCommit| c.position);
        let batch = log.read_all(after, 1000).await.unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

/// Checks that every stream in `commits` (the whole log, in order) is an unbroken hash chain.
pub fn assert_chains_hold(commits: &[RecordedCommit]) {
    let mut heads: HashMap<StreamId, (u64, docket_log::CommitHash)> = HashMap::new();
    for (i, c) in commits.iter().enumerate() {
        assert_eq!(c.position, i as u64 + 1, "positions are dense from 1");
        let expected = heads.get(&c.commit.stream).copied();
        assert_eq!(
            c.commit.prev.map(|l| (l.revision, l.hash)),
            expected,
            "hash chain of {} at position {}",
            c.commit.stream,
            c.position
        );
        heads.insert(c.commit.stream.clone(), (c.position, c.hash()));
    }
}

pub async fn round_trip(mut h: impl Harness) {
    let log = h.open().await;
    assert_eq!(log.head().await.unwrap(), 0);
    let a = stream("case");
    let b = stream("review");
    let meta = Metadata {
        idempotency_key: Some("k-1".into()),
        actor: Some("officer:42/officer".into()),
        correlation_id: Some(Uuid::new_v4()),
        causation_id: Some(Uuid::new_v4()),
        recorded_at_micros: 1_732_000_000_123_456,
    };
    let e1 = vec![
        event(&b"one"[..]),
        event(vec![0u8; 200]),
        event(Bytes::new()),
    ];
    let r1 = log
        .append(&a, ExpectedRevision::NoStream, e1.clone(), meta.clone())
        .await
        .unwrap();
    assert_eq!((r1.position, r1.revision), (1, 1));
    let r2 = log
        .append(
            &b,
            ExpectedRevision::Any,
            vec![event(&b"two"[..])],
            Metadata::default(),
        )
        .await
        .unwrap();
    let r3 = log
        .append(
            &a,
            ExpectedRevision::Exact(1),
            vec![event(&b"three"[..])],
            Metadata::default(),
        )
        .await
        .unwrap();
    assert_eq!((r2.position, r3.position, r3.revision), (2, 3, 3));
    assert_eq!(log.head().await.unwrap(), 3);

    let read_a = log.read_stream(&a).await.unwrap();
    assert_eq!(read_a.len(), 2);
    assert_eq!(read_a[0].position, 1);
    assert_eq!(read_a[0].commit.events, e1);
    assert_eq!(read_a[0].commit.metadata, meta);
    assert_eq!(read_a[0].hash(), r1.hash);
    assert_eq!(
        read_a[1].commit.prev.map(|l| (l.revision, l.hash)),
        Some((1, r1.hash))
    );

    let all = log.read_all(0, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.position).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(all[1].commit.stream, b);
    let tail = log.read_all(2, 10).await.unwrap();
    assert_eq!(tail.iter().map(|c| c.position).collect::<Vec<_>>(), vec![3]);
    assert_eq!(log.read_all(1, 1).await.unwrap().len(), 1);
    assert!(log.read_all(3, 10).await.unwrap().is_empty());
}

pub async fn expected_revisions(mut h: impl Harness) {
    let log = h.open().await;
    let s = stream("case");
    let ev = || vec![event(&b"x"[..])];
    let m = Metadata::default;
    // On a stream with no commits.
    match log.append(&s, ExpectedRevision::Exact(5), ev(), m()).await {
        Err(LogError::Conflict { actual: 0, .. }) => {}
        other => panic!("exact 5 on an empty stream: {other:?}"),
    }
    let first = log
        .append(&s, ExpectedRevision::NoStream, ev(), m())
        .await
        .unwrap();
    // NoStream on a stream that has commits.
    match log.append(&s, ExpectedRevision::NoStream, ev(), m()).await {
        Err(LogError::Conflict { actual, .. }) => assert_eq!(actual, first.revision),
        other => panic!("no-stream on an existing stream: {other:?}"),
    }
    // Exact(0) means no stream too.
    assert!(matches!(
        log.append(&s, ExpectedRevision::Exact(0), ev(), m()).await,
        Err(LogError::Conflict { .. })
    ));
    let other = stream("case");
    log.append(&other, ExpectedRevision::Exact(0), ev(), m())
        .await
        .unwrap();
    // Exact, right and stale.
    let second = log
        .append(&s, ExpectedRevision::Exact(first.revision), ev(), m())
        .await
        .unwrap();
    match log
        .append(&s, ExpectedRevision::Exact(first.revision), ev(), m())
        .await
    {
        Err(LogError::Conflict {
            actual, expected, ..
        }) => {
            assert_eq!(actual, second.revision);
            assert_eq!(expected, ExpectedRevision::Exact(first.revision));
        }
        other => panic!("stale exact: {other:?}"),
    }
    // Any, on an existing and a new stream; both still chain.
    let third = log
        .append(&s, ExpectedRevision::Any, ev(), m())
        .await
        .unwrap();
    log.append(&stream("case"), ExpectedRevision::Any, ev(), m())
        .await
        .unwrap();
    let commits = log.read_stream(&s).await.unwrap();
    assert_eq!(
        commits.iter().map(|c| c.position).collect::<Vec<_>>(),
        vec![first.position, second.position, third.position]
    );
    assert_chains_hold(&read_everything(&log).await);
}

pub async fn sixteen_writers_race(mut h: impl Harness) {
    let log = h.open().await;
    let s = stream("case");
    let genesis = log
        .append(
            &s,
            ExpectedRevision::NoStream,
            vec![event(&b"genesis"[..])],
            Metadata::default(),
        )
        .await
        .unwrap();
    // Round after round, 16 writers race for the same expected revision: exactly one wins.
    let mut revision = genesis.revision;
    for round in 0..5 {
        let mut tasks = Vec::new();
        for w in 0..16 {
            let log = log.clone();
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let payload = format!("round {round} writer {w}");
                log.append(
                    &s,
                    ExpectedRevision::Exact(revision),
                    vec![event(payload)],
                    Metadata::default(),
                )
                .await
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(a) => winners.push(a),
                Err(LogError::Conflict { .. }) => {}
                Err(e) => panic!("unexpected error in the race: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one writer wins");
        revision = winners[0].revision;
    }
    // Then 16 writers each get 5 appends in by retrying on conflict: none lost.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (log, s, acked) = (log.clone(), s.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let mut known = revision;
            let mut done = 0;
            while done < 5 {
                let payload = format!("writer {w} append {done}");
                match log
                    .append(
                        &s,
                        ExpectedRevision::Exact(known),
                        vec![event(payload.clone())],
                        Metadata::default(),
                    )
                    .await
                {
                    Ok(a) => {
                        acked.lock().await.push((a.position, payload));
                        known = a.revision;
                        done += 1;
                    }
                    Err(LogError::Conflict { actual, .. }) => known = actual,
                    Err(e) => panic!("writer {w}: {e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let commits = log.read_stream(&s).await.unwrap();
    assert_eq!(commits.len(), 1 + 5 + 80);
    let by_position: HashMap<u64, &RecordedCommit> =
        commits.iter().map(|c| (c.position, c)).collect();
    for (position, payload) in acked.lock().await.iter() {
        let c = by_position
            .get(position)
            .expect("acknowledged commit present");
        assert_eq!(c.commit.events[0].payload, payload.as_bytes());
    }
    for pair in commits.windows(2) {
        assert_eq!(
            pair[1].commit.prev.map(|l| l.revision),
            Some(pair[0].position)
        );
    }
}

pub async fn idempotent_retry(mut h: impl Harness) {
    let log = h.open().await;
    let s = stream("review");
    let key = format!("request-{}", Uuid::new_v4());
    let events = vec![event(&b"request"[..])];
    let original = log
        .append(&s, ExpectedRevision::NoStream, events.clone(), keyed(&key))
        .await
        .unwrap();
    // The same retry, and a retry that would otherwise conflict.
    for expected in [ExpectedRevision::NoStream, ExpectedRevision::Any] {
        match log.append(&s, expected, events.clone(), keyed(&key)).await {
            Err(LogError::Duplicate { position }) => assert_eq!(position, original.position),
            other => panic!("retry with {expected}: {other:?}"),
        }
    }
    // Without a key, re-sending the same events (same event ids) is a duplicate too.
    let e = vec![event(&b"unkeyed"[..])];
    let first = log
        .append(
            &s,
            ExpectedRevision::Exact(original.revision),
            e.clone(),
            Metadata::default(),
        )
        .await
        .unwrap();
    match log
        .append(
            &s,
            ExpectedRevision::Exact(first.revision),
            e,
            Metadata::default(),
        )
        .await
    {
        Err(LogError::Duplicate { position }) => assert_eq!(position, first.position),
        other => panic!("unkeyed retry: {other:?}"),
    }
    assert_eq!(
        log.read_stream(&s).await.unwrap().len(),
        2,
        "nothing appended twice"
    );
    assert_eq!(log.head().await.unwrap(), first.position);
}

pub async fn order_is_ack_order(mut h: impl Harness) {
    let log = h.open().await;
    let mut tasks = Vec::new();
    for w in 0..8 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let s = stream("case");
            let mut acked = Vec::new();
            let mut expected = ExpectedRevision::NoStream;
            for i in 0..40 {
                let payload = format!("{w}:{i}");
                let a = log
                    .append(
                        &s,
                        expected,
                        vec![event(payload.clone())],
                        Metadata::default(),
                    )
                    .await
                    .unwrap();
                expected = ExpectedRevision::Exact(a.revision);
                acked.push((a.position, payload));
            }
            acked
        }));
    }
    let mut all_acked = BTreeMap::new();
    for t in tasks {
        let acked = t.await.unwrap();
        assert!(
            acked.windows(2).all(|p| p[0].0 < p[1].0),
            "one writer's acks increase"
        );
        all_acked.extend(acked);
    }
    let commits = read_everything(&log).await;
    assert_eq!(commits.len(), 320);
    for c in &commits {
        assert_eq!(
            all_acked[&c.position].as_bytes(),
            c.commit.events[0].payload
        );
    }
}

/// Appends `n` commits, one each to a few streams.
async fn fill(log: &impl EventLog, n: usize, tag: &str) {
    let streams: Vec<StreamId> = (0..4).map(|_| stream("case")).collect();
    for i in 0..n {
        log.append(
            &streams[i % 4],
            ExpectedRevision::Any,
            vec![event(format!("{tag}-{i}"))],
            Metadata::default(),
        )
        .await
        .unwrap();
    }
}

/// Subscribes after `after`, appends `more` commits while catching up, and checks the feed has
/// every position from `after + 1` to the end exactly once and in order.
async fn subscribe_case(mut h: impl Harness, before: usize, after: u64, more: usize) {
    let log = h.open().await;
    fill(&log, before, "before").await;
    let mut sub = log.subscribe(after).await.unwrap();
    let writer = {
        let log = log.clone();
        tokio::spawn(async move { fill(&log, more, "during").await })
    };
    let total = before as u64 + more as u64;
    let mut seen = Vec::new();
    while seen.last().copied().unwrap_or(after) < total {
        let next = tokio::time::timeout(std::time::Duration::from_secs(20), sub.next())
            .await
            .expect("subscription stalled")
            .expect("subscription ended")
            .unwrap();
        seen.push(next.position);
    }
    writer.await.unwrap();
    let expected: Vec<u64> = (after + 1..=total).collect();
    assert_eq!(seen, expected);
    // Nothing more arrives.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), sub.next())
            .await
            .is_err(),
        "no duplicate or phantom commit after the seam"
    );
}

pub async fn subscribe_from_start(h: impl Harness) {
    subscribe_case(h, 300, 0, 300).await;
}

pub async fn subscribe_from_middle(h: impl Harness) {
    subscribe_case(h, 300, 150, 300).await;
}

pub async fn subscribe_from_head(h: impl Harness) {
    subscribe_case(h, 100, 100, 200).await;
}

pub async fn reopen_persists(mut h: impl Harness) {
    let log = h.open().await;
    let s = stream("case");
    let key = format!("open-{}", Uuid::new_v4());
    let first = log
        .append(
            &s,
            ExpectedRevision::NoStream,
            vec![event(&b"a"[..])],
            keyed(&key),
        )
        .await
        .unwrap();
    fill(&log, 50, "x").await;
    let before = read_everything(&log).await;
    let log = h.reopen(log).await;
    let after = read_everything(&log).await;
    assert_eq!(
        before, after,
        "everything read back identically after reopening"
    );
    assert_eq!(log.head().await.unwrap(), 51);
    // The stream's head and the dedup ids survive.
    match log
        .append(
            &s,
            ExpectedRevision::Any,
            vec![event(&b"a"[..])],
            keyed(&key),
        )
        .await
    {
        Err(LogError::Duplicate { position }) => assert_eq!(position, first.position),
        other => panic!("retry after reopen: {other:?}"),
    }
    let next = log
        .append(
            &s,
            ExpectedRevision::Exact(first.revision),
            vec![event(&b"b"[..])],
            Metadata::default(),
        )
        .await
        .unwrap();
    assert_eq!(next.position, 52);
    assert_chains_hold(&read_everything(&log).await);
}

pub async fn corruption_is_detected(mut h: impl Harness) {
    let log = h.open().await;
    fill(&log, 20, "c").await;
    let (position, reopened) = h.corrupt(log).await;
    let log = match reopened {
        Err(LogError::Corrupt { position: p, .. }) => {
            assert_eq!(p, position, "open names the corrupt position");
            return;
        }
        Err(e) => panic!("unexpected error opening corrupt storage: {e}"),
        Ok(log) => log,
    };
    match log.read_all(0, 1000).await {
        Err(LogError::Corrupt { position: p, .. }) => assert_eq!(p, position),
        other => panic!("read_all over corrupt bytes: {other:?}"),
    }
    // A subscription delivers everything before the bad commit, then the error.
    let mut sub = log.subscribe(0).await.unwrap();
    for expected in 1..position {
        let c = sub.next().await.unwrap().unwrap();
        assert_eq!(c.position, expected);
    }
    match tokio::time::timeout(std::time::Duration::from_secs(10), sub.next()).await {
        Ok(Some(Err(LogError::Corrupt { position: p, .. }))) => assert_eq!(p, position),
        other => panic!("subscription over corrupt bytes: {other:?}"),
    }
}

pub async fn empty_commit_refused(mut h: impl Harness) {
    let log = h.open().await;
    let s = stream("case");
    match log
        .append(&s, ExpectedRevision::Any, Vec::new(), Metadata::default())
        .await
    {
        Err(LogError::Invalid { reason }) => {
            assert!(reason.contains("at least one event"), "{reason}")
        }
        other => panic!("empty commit: {other:?}"),
    }
    assert_eq!(log.head().await.unwrap(), 0, "nothing appended");
}

pub async fn size_limit_enforced(mut h: impl Harness) {
    let log = h.open().await;
    let s = stream("case");
    match log
        .append(
            &s,
            ExpectedRevision::Any,
            vec![event(vec![7u8; MAX_COMMIT_BYTES])],
            Metadata::default(),
        )
        .await
    {
        Err(LogError::TooLarge { size, limit }) => {
            assert_eq!(limit, MAX_COMMIT_BYTES);
            assert!(size > limit);
        }
        other => panic!("oversized commit: {other:?}"),
    }
    assert_eq!(log.head().await.unwrap(), 0, "nothing appended");
    // Just under the limit goes through and reads back whole.
    let big = vec![9u8; MAX_COMMIT_BYTES - 200];
    log.append(
        &s,
        ExpectedRevision::Any,
        vec![event(big.clone())],
        Metadata::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        log.read_stream(&s).await.unwrap()[0].commit.events[0].payload,
        big
    );
}

pub async fn missing_stream_not_found(mut h: impl Harness) {
    let log = h.open().await;
    fill(&log, 3, "m").await;
    match log.read_stream(&stream("case")).await {
        Err(LogError::NotFound { .. }) => {}
        other => panic!("missing stream: {other:?}"),
    }
}

pub async fn hash_chains_hold(mut h: impl Harness) {
    let log = h.open().await;
    let streams: Vec<StreamId> = (0..5).map(|_| stream("case")).collect();
    let mut tasks = Vec::new();
    for s in streams.clone() {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..30 {
                log.append(
                    &s,
                    ExpectedRevision::Any,
                    vec![event(format!("{i}"))],
                    Metadata::default(),
                )
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let all = read_everything(&log).await;
    assert_chains_hold(&all);
    let mut ids = HashSet::new();
    for c in &all {
        assert!(ids.insert(c.commit.events[0].id), "no commit twice");
    }
    for s in &streams {
        assert_eq!(log.read_stream(s).await.unwrap().len(), 30);
    }
}

/// Checkpoints start absent, keep the last position saved per consumer across a reopen, list by
/// name, and refuse names that are not safe keys.
pub async fn checkpoints_persist(mut h: impl Harness) {
    let log = h.open().await;
    let store = h.checkpoints(&log).await;
    assert_eq!(store.load("notification").await.unwrap(), None);
    assert!(store.list().await.unwrap().is_empty());
    store.save("notification", 5).await.unwrap();
    store.save("notification", 9).await.unwrap();
    store.save("review-deadlines", 3).await.unwrap();
    assert_eq!(store.load("notification").await.unwrap(), Some(9));
    for bad in ["", "Notification", "a/b", "../x", "a.b", &"x".repeat(65)] {
        match store.save(bad, 1).await {
            Err(LogError::Invalid { reason }) => {
                assert!(reason.contains("consumer name"), "{reason}")
            }
            other => panic!("{bad:?}: expected invalid, got {other:?}"),
        }
    }
    drop(store);
    let log = h.reopen(log).await;
    let store = h.checkpoints(&log).await;
    assert_eq!(store.load("notification").await.unwrap(), Some(9));
    assert_eq!(
        store.list().await.unwrap(),
        vec![
            ("notification".to_owned(), 9),
            ("review-deadlines".to_owned(), 3)
        ]
    );
}
