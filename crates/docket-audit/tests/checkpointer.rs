//! The checkpoint store, the persisted tree and the checkpointer, over a real file log (and a
//! JetStream log on a real nats-server): checkpoints on the cadence (every N commits, on the
//! timer) declared in the log, covering checkpoints that wait for the cadence, restarts that
//! continue from the persisted hashes, a damaged hashes file, and the refusal to sign over a
//! history that differs from the last signed checkpoint's.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use docket_audit::note::generate_key;
use docket_audit::persist::{TreeFile, TREE_FILE};
use docket_audit::tree::verify_consistency;
use docket_audit::{
    leaf_hash, AuditError, CheckpointSigner, CheckpointStore, CheckpointVerifier, Checkpointer,
    CheckpointerConfig, CheckpointerHandle, SignedCheckpoint, Tree,
};
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::records::FileRecords;
use docket_log::{
    EventData, EventLog, ExpectedRevision, Metadata, RecordedCommit, Records, StreamId,
};
use docket_testkit::NatsServer;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const ORIGIN: &str = "docket.test/log";

/// Bounds every wait of these tests.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(20), f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// A key pair for [`ORIGIN`].
pub fn keys() -> (CheckpointSigner, CheckpointVerifier) {
    let (skey, vkey) = generate_key(ORIGIN).unwrap();
    (
        CheckpointSigner::new(&skey).unwrap(),
        CheckpointVerifier::new(&vkey).unwrap(),
    )
}

/// Appends `n` commits with payloads tagged `tag`; returns the last position.
pub async fn append(log: &impl EventLog, tag: &str, n: usize) -> u64 {
    let mut position = 0;
    for i in 0..n {
        let stream = StreamId::new(format!("case/{tag}-{}", i % 3)).unwrap();
        let appended = log
            .append(
                &stream,
                ExpectedRevision::Any,
                vec![EventData {
                    id: Default::default(),
                    type_name: "test.event".into(),
                    type_version: 1,
                    payload: format!("{tag} {i}").into_bytes().into(),
                }],
                Metadata {
                    idempotency_key: Some(format!("{tag}-{i}-{}", rand::random::<u64>())),
                    ..Metadata::default()
                },
            )
            .await
            .unwrap();
        position = appended.position;
    }
    position
}

/// Every commit of the log.
pub async fn all_commits(log: &impl EventLog) -> Vec<RecordedCommit> {
    log.read_all(0, usize::MAX).await.unwrap()
}

pub async fn file_log(dir: &Path) -> FileLog {
    FileLog::open(FileLogConfig::new(dir)).await.unwrap()
}

/// A running checkpointer over a file log, with what it takes to stop it and the registry of its
/// metrics (its own, as a node's would be).
pub struct Running {
    pub handle: CheckpointerHandle,
    pub task: JoinHandle<Result<(), AuditError>>,
    pub stop: watch::Sender<bool>,
    pub registry: prometheus_client::registry::Registry,
}

impl Running {
    /// The value of the series `series` (name and labels, as rendered) on its `/metrics`.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    pub async fn stop(self) -> Result<(), AuditError> {
        self.stop.send(true).unwrap();
        within("the checkpointer to stop", self.task).await.unwrap()
    }
}

pub fn start<L: EventLog + 'static>(
    config: CheckpointerConfig,
    log: L,
    records: FileRecords,
    signer: &CheckpointSigner,
    tree_dir: &Path,
) -> Running {
    let (stop, shutdown) = watch::channel(false);
    let mut registry = prometheus_client::registry::Registry::default();
    let config = CheckpointerConfig {
        metrics: docket_audit::Metrics::register(&mut registry),
        ..config
    };
    let (handle, task) = Checkpointer::start(
        config,
        log,
        CheckpointStore::new(records),
        signer.clone(),
        tree_dir.to_owned(),
        shutdown,
    );
    Running {
        handle,
        task,
        stop,
        registry,
    }
}

/// Waits until the checkpointer checked its tree and declared its cadence; returns the
/// declaration's position.
pub async fn started(handle: &CheckpointerHandle) -> u64 {
    let mut status = handle.watch_status();
    let status = within("the checkpointer to start", status.wait_for(|s| s.started))
        .await
        .unwrap();
    status.cadence_declared.unwrap()
}

pub fn every(commits: u64, every: Duration) -> CheckpointerConfig {
    CheckpointerConfig::every(commits, every)
}

/// Checks that consecutive stored checkpoints verify and are consistent (proofs from `handle`).
async fn check_chain(
    store: &CheckpointStore<FileRecords>,
    verifier: &CheckpointVerifier,
    handle: &CheckpointerHandle,
) -> Vec<SignedCheckpoint> {
    let all: Vec<SignedCheckpoint> = store
        .all(Some(verifier))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.signed)
        .collect();
    for pair in all.windows(2) {
        let (a, b) = (&pair[0].checkpoint, &pair[1].checkpoint);
        assert!(a.size < b.size, "sizes grow: {} then {}", a.size, b.size);
        let proof = handle.consistency_proof(a.size, b.size).await.unwrap();
        verify_consistency(&proof, a.size, a.root, b.size, b.root).unwrap();
    }
    all
}

#[tokio::test]
async fn the_store_keeps_notes_verbatim_and_finds_the_first_covering() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, verifier) = keys();
    let store = CheckpointStore::new(FileRecords::open(dir.path()).unwrap());
    assert_eq!(store.latest(None).await.unwrap(), None);
    assert_eq!(store.first_covering(1, None).await.unwrap(), None);
    let sizes = [3u64, 5, 9, 12, 40];
    let mut signed = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let cp = signer
            .sign(*size, leaf_hash(format!("root {i}").as_bytes()))
            .unwrap();
        assert_eq!(store.append(&cp).await.unwrap(), i as u64 + 1);
        signed.push(cp);
    }
    let latest = store.latest(Some(&verifier)).await.unwrap().unwrap();
    assert_eq!((latest.sequence, &latest.signed), (5, &signed[4]));
    let (_, bytes) = store.records().read(1, 1).await.unwrap().remove(0);
    assert_eq!(
        bytes,
        signed[1].note.as_bytes(),
        "the note text is stored verbatim"
    );
    let segment = std::fs::read(dir.path().join("records-00000000000000000001.seg")).unwrap();
    assert!(
        segment
            .windows(signed[1].note.len())
            .any(|w| w == signed[1].note.as_bytes()),
        "in the segment file, as it is"
    );
    let all = store.all(None).await.unwrap();
    assert_eq!(
        all.iter().map(|s| s.signed.clone()).collect::<Vec<_>>(),
        signed
    );
    for (position, expect) in [
        (1, Some(3)),
        (3, Some(3)),
        (4, Some(5)),
        (6, Some(9)),
        (10, Some(12)),
        (13, Some(40)),
        (40, Some(40)),
        (41, None),
    ] {
        let found = store
            .first_covering(position, Some(&verifier))
            .await
            .unwrap();
        assert_eq!(
            found.map(|s| s.signed.checkpoint.size),
            expect,
            "position {position}"
        );
    }
    // Another key's verifier refuses the stored notes, naming the record.
    let (_, other) = keys();
    match store.latest(Some(&other)).await {
        Err(AuditError::BadStoredCheckpoint {
            sequence: 5,
            reason,
        }) => {
            assert!(reason.contains("signature"), "{reason}")
        }
        other => panic!("expected a bad stored checkpoint, got {other:?}"),
    }
}

#[tokio::test]
async fn the_persisted_tree_reopens_and_recovers_from_damage() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(&dir.path().join("log")).await;
    append(&log, "a", 50).await;
    let commits = all_commits(&log).await;
    let tree_dir = dir.path().join("tree");
    let path = tree_dir.join(TREE_FILE);

    let mut opened = TreeFile::open(&tree_dir, &log).await.unwrap();
    assert_eq!((opened.tree.size(), opened.dropped), (0, 0));
    for c in &commits {
        opened.tree.push_commit(&c.bytes);
    }
    opened.file.persist(&opened.tree).await.unwrap();
    let full = opened.tree.clone();
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        full.stored().len() as u64 * 32
    );
    drop(opened);

    // Reopened as it was.
    let opened = TreeFile::open(&tree_dir, &log).await.unwrap();
    assert_eq!((opened.tree.size(), opened.dropped), (50, 0));
    assert_eq!(opened.tree.root(), full.root());
    drop(opened);

    // A torn tail (half a hash) is cut off; the whole leaves stay.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[7u8; 17]);
    std::fs::write(&path, &bytes).unwrap();
    let opened = TreeFile::open(&tree_dir, &log).await.unwrap();
    assert_eq!((opened.tree.size(), opened.dropped), (50, 0));
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        full.stored().len() as u64 * 32
    );
    drop(opened);

    // A last leaf that is not the log's commit: back to the last leaf that matches.
    let mut bytes = std::fs::read(&path).unwrap();
    let index = tlog_tiles::stored_hash_index(0, 49) as usize;
    bytes[index * 32] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let mut opened = TreeFile::open(&tree_dir, &log).await.unwrap();
    assert_eq!((opened.tree.size(), opened.dropped), (49, 1));
    assert_eq!(opened.tree.root(), full.root_at(49).unwrap());
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        tlog_tiles::stored_hash_count(49) * 32
    );
    opened.tree.push_commit(&commits[49].bytes);
    opened.file.persist(&opened.tree).await.unwrap();
    drop(opened);
    let opened = TreeFile::open(&tree_dir, &log).await.unwrap();
    assert_eq!(opened.tree.root(), full.root());
    drop(opened);

    // Hashes of another log entirely: nothing is kept.
    let other = file_log(&dir.path().join("other")).await;
    append(&other, "b", 60).await;
    let opened = TreeFile::open(&tree_dir, &other).await.unwrap();
    assert_eq!((opened.tree.size(), opened.dropped), (0, 50));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

/// The declarations of the checkpointer's cadence in the log, oldest first.
pub async fn declarations(log: &impl EventLog) -> Vec<(u64, serde_json::Value)> {
    let stream = StreamId::new(docket_audit::checkpointer::CADENCE_STREAM).unwrap();
    match log.read_stream(&stream).await {
        Err(docket_log::LogError::NotFound { .. }) => Vec::new(),
        Err(e) => panic!("{e}"),
        Ok(commits) => commits
            .into_iter()
            .map(|c| {
                assert_eq!(
                    c.commit.metadata.actor.as_deref(),
                    Some("docket-checkpointer")
                );
                assert_eq!(c.commit.events.len(), 1);
                let event = &c.commit.events[0];
                assert_eq!(
                    (event.type_name.as_str(), event.type_version),
                    ("audit.checkpoint_cadence", 1)
                );
                (c.position, serde_json::from_slice(&event.payload).unwrap())
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_signed_every_n_commits_and_on_a_timer() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    let records = log.audit_records().unwrap();
    let (signer, verifier) = keys();
    let tree_dir = records.dir().join("tree");
    let running = start(
        every(10, Duration::from_secs(3600)),
        log.clone(),
        records.clone(),
        &signer,
        &tree_dir,
    );
    // The cadence is declared first: commit 1.
    assert_eq!(started(&running.handle).await, 1);
    assert_eq!(
        declarations(&log).await,
        vec![(
            1,
            serde_json::json!({"every_ms": 3_600_000, "every_commits": 10})
        )]
    );
    for _ in 0..35 {
        let position = append(&log, "n", 1).await;
        within("the tree", running.handle.wait_for_size(position))
            .await
            .unwrap();
    }
    let store = CheckpointStore::new(records.clone());
    let all = check_chain(&store, &verifier, &running.handle).await;
    let sizes: Vec<u64> = all.iter().map(|c| c.checkpoint.size).collect();
    assert_eq!(
        sizes,
        vec![10, 20, 30],
        "every 10 commits, none on the timer"
    );
    // A clean stop signs the rest.
    running.stop().await.unwrap();
    let all = store.all(Some(&verifier)).await.unwrap();
    assert_eq!(all.last().unwrap().signed.checkpoint.size, 36);
    let tree = {
        let mut t = Tree::new();
        for c in all_commits(&log).await {
            t.push_commit(&c.bytes);
        }
        t
    };
    for c in &all {
        let c = &c.signed.checkpoint;
        assert_eq!(c.root, tree.root_at(c.size).unwrap());
    }

    // Another cadence is declared again (commit 37), and signed on the timer within T.
    let running = start(
        every(1000, Duration::from_millis(200)),
        log.clone(),
        records.clone(),
        &signer,
        &tree_dir,
    );
    let mut status = running.handle.watch_status();
    within(
        "a timed checkpoint",
        status.wait_for(|s| s.latest.as_ref().is_some_and(|c| c.checkpoint.size == 37)),
    )
    .await
    .unwrap();
    drop(status);
    assert_eq!(running.handle.status().cadence_declared, Some(37));
    assert_eq!(
        declarations(&log).await.last().unwrap(),
        &(
            37,
            serde_json::json!({"every_ms": 200, "every_commits": 1000})
        )
    );
    let all = check_chain(&store, &verifier, &running.handle).await;
    assert_eq!(all.len(), 5);
    // No growth, no new checkpoint (not on the timer, nor at the stop).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.all(None).await.unwrap().len(), 5);
    running.stop().await.unwrap();
    assert_eq!(store.all(None).await.unwrap().len(), 5);

    // The same cadence again: the declaration in the log stands, nothing is appended.
    let running = start(
        every(1000, Duration::from_millis(200)),
        log.clone(),
        records.clone(),
        &signer,
        &tree_dir,
    );
    assert_eq!(started(&running.handle).await, 37);
    running.stop().await.unwrap();
    assert_eq!(log.head().await.unwrap(), 37);
    assert_eq!(declarations(&log).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_gets_about_one_checkpoint_per_cadence_not_one_per_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    let records = log.audit_records().unwrap();
    let (signer, verifier) = keys();
    let period = Duration::from_millis(250);
    let running = start(
        every(100_000, period),
        log.clone(),
        records.clone(),
        &signer,
        &records.dir().join("tree"),
    );
    // 200 commits from 20 writers, each asking for the checkpoint covering its commit, as a
    // reply with a receipt does.
    let started = std::time::Instant::now();
    let mut writers = Vec::new();
    for w in 0..20 {
        let (log, handle) = (log.clone(), running.handle.clone());
        writers.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for i in 0..10 {
                let position = append(&log, &format!("burst-{w}-{i}"), 1).await;
                let cp = handle.checkpoint_covering(position).await.unwrap();
                answers.push((position, cp));
            }
            answers
        }));
    }
    let mut answers = Vec::new();
    for w in writers {
        answers.extend(within("a writer", w).await.unwrap());
    }
    let elapsed = started.elapsed();
    assert_eq!(answers.len(), 200);
    let store = CheckpointStore::new(records.clone());
    let stored: Vec<SignedCheckpoint> = store
        .all(Some(&verifier))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.signed)
        .collect();
    // Every answer is a stored cadence checkpoint covering its commit.
    for (position, cp) in &answers {
        assert!(cp.checkpoint.size >= *position);
        assert!(stored.contains(cp), "the answer for {position} was stored");
    }
    // At most one per period (and one more for a tick at the very start).
    let periods = (elapsed.as_secs_f64() / period.as_secs_f64()).ceil() as usize;
    assert!(
        stored.len() <= periods + 1,
        "{} checkpoints in {elapsed:?}, {periods} periods of {period:?}",
        stored.len()
    );
    assert!(
        stored.len() < 50,
        "{} checkpoints for 200 receipts",
        stored.len()
    );
    assert_eq!(running.handle.status().signed, stored.len() as u64);
    check_chain(&store, &verifier, &running.handle).await;
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn covering_checkpoints_come_from_the_cadence_on_jetstream() {
    let server = tokio::task::spawn_blocking(NatsServer::start)
        .await
        .unwrap();
    let log = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
        .await
        .unwrap();
    let records = log.audit_records().await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let (signer, verifier) = keys();
    let (stop, shutdown) = watch::channel(false);
    let store = CheckpointStore::new(records);
    let period = Duration::from_millis(200);
    let begun = std::time::Instant::now();
    let (handle, task) = Checkpointer::start(
        every(1000, period),
        log.clone(),
        store.clone(),
        signer,
        cache.path().to_owned(),
        shutdown,
    );
    // The declaration is commit 1; five more.
    assert_eq!(started(&handle).await, 1);
    let head = append(&log, "j", 5).await;
    assert_eq!(head, 6);
    assert_eq!(declarations(&log).await.len(), 1);
    let cp = within("a checkpoint", handle.checkpoint_covering(head))
        .await
        .unwrap();
    assert_eq!(cp.checkpoint.size, 6);
    assert_eq!(verifier.open(&cp.note).unwrap(), cp);

    // Requests for positions not in the log yet wait for them, and for the cadence: they share
    // its checkpoints, whatever their number.
    let mut waiters = Vec::new();
    for i in 0..12u64 {
        let handle = handle.clone();
        waiters.push(tokio::spawn(async move {
            let position = 7 + i % 4;
            (position, handle.checkpoint_covering(position).await)
        }));
    }
    append(&log, "j", 4).await;
    let mut answers = Vec::new();
    for w in waiters {
        let (position, cp) = within("a waiter", w).await.unwrap();
        let cp = cp.unwrap();
        assert!(cp.checkpoint.size >= position);
        verifier.open(&cp.note).unwrap();
        answers.push(cp.checkpoint.size);
    }
    let status = handle.status();
    let periods = (begun.elapsed().as_secs_f64() / period.as_secs_f64()).ceil() as u64;
    assert!(
        status.signed <= periods,
        "{} signatures in {periods} periods, for 13 requests",
        status.signed
    );
    // An older position is answered by the latest checkpoint, without signing.
    within("the last commit signed", handle.checkpoint_covering(10))
        .await
        .unwrap();
    let signed = handle.status().signed;
    let again = handle.checkpoint_covering(2).await.unwrap();
    assert_eq!(again.checkpoint.size, 10);
    assert_eq!(handle.status().signed, signed);
    let stored = store
        .first_covering(7, Some(&verifier))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.signed.checkpoint.size >= 7);
    // Proofs from the tree.
    let proof = handle.inclusion_proof(3, 10).await.unwrap();
    docket_audit::tree::verify_inclusion(
        &proof,
        10,
        again.checkpoint.root,
        3,
        handle.leaf(3).await.unwrap(),
    )
    .unwrap();
    assert!(handle.checkpoint_covering(0).await.is_err());

    stop.send(true).unwrap();
    within("the stop", task).await.unwrap().unwrap();
    match handle.checkpoint_covering(100).await {
        Err(AuditError::Stopped(why)) => assert!(why.contains("shut down"), "{why}"),
        other => panic!("expected stopped, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_continues_from_the_persisted_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    let records = log.audit_records().unwrap();
    let (signer, verifier) = keys();
    let tree_dir = records.dir().join("tree");
    append(&log, "r", 25).await;
    let cadence = || every(10, Duration::from_millis(200));
    let running = start(cadence(), log.clone(), records.clone(), &signer, &tree_dir);
    // 25 commits, then the declaration of the cadence.
    within("catch-up", running.handle.wait_for_size(26))
        .await
        .unwrap();
    let first = within("a checkpoint", running.handle.checkpoint_covering(26))
        .await
        .unwrap();
    assert_eq!(first.checkpoint.size, 26);
    assert_eq!(running.handle.status().pushed, 26);
    running.stop().await.unwrap();

    // The second run loads 26 leaves and hashes only the new commits (the cadence stands).
    let running = start(cadence(), log.clone(), records.clone(), &signer, &tree_dir);
    append(&log, "r", 12).await;
    within("the new commits", running.handle.wait_for_size(38))
        .await
        .unwrap();
    let status = running.handle.status();
    assert_eq!((status.loaded, status.pushed), (26, 12));
    let second = within("a checkpoint", running.handle.checkpoint_covering(38))
        .await
        .unwrap();
    let store = CheckpointStore::new(records.clone());
    let all = check_chain(&store, &verifier, &running.handle).await;
    assert!(all.contains(&first));
    assert_eq!(all.last().unwrap(), &second);
    let proof = running
        .handle
        .consistency_proof(26, second.checkpoint.size)
        .await
        .unwrap();
    verify_consistency(
        &proof,
        26,
        first.checkpoint.root,
        second.checkpoint.size,
        second.checkpoint.root,
    )
    .unwrap();
    running.stop().await.unwrap();

    // A damaged inner hash (the last leaf intact) is caught by the last checkpoint's root: the
    // tree is rebuilt from the log, and signing goes on.
    let path = tree_dir.join(TREE_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    let inner = tlog_tiles::stored_hash_index(5, 0) as usize; // the node over leaves 1..=32
    bytes[inner * 32] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    let running = start(cadence(), log.clone(), records.clone(), &signer, &tree_dir);
    within("the reopened tree", running.handle.wait_for_size(38))
        .await
        .unwrap();
    append(&log, "r", 3).await;
    let third = within("a checkpoint", running.handle.checkpoint_covering(41))
        .await
        .unwrap();
    assert_eq!(third.checkpoint.size, 41);
    let mut expected = Tree::new();
    for c in all_commits(&log).await {
        expected.push_commit(&c.bytes);
    }
    assert_eq!(third.checkpoint.root, expected.root());
    check_chain(&store, &verifier, &running.handle).await;
    running.stop().await.unwrap();
    let reopened = TreeFile::open(&tree_dir, &log).await.unwrap();
    assert_eq!(
        reopened.tree.root(),
        expected.root(),
        "the file was rewritten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_refuses_to_sign_over_a_different_history() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(&dir.path().join("log")).await;
    let other = file_log(&dir.path().join("other")).await;
    append(&log, "real", 12).await;
    append(&other, "forged", 12).await;
    let (signer, _) = keys();
    // A checkpoint of the other log, signed with the same key, sits in this log's store.
    let mut forged = Tree::new();
    for c in all_commits(&other).await {
        forged.push_commit(&c.bytes);
    }
    let records = log.audit_records().unwrap();
    let store = CheckpointStore::new(records.clone());
    store
        .append(&signer.sign(12, forged.root()).unwrap())
        .await
        .unwrap();
    let mut real = Tree::new();
    for c in all_commits(&log).await {
        real.push_commit(&c.bytes);
    }

    let running = start(
        every(5, Duration::from_secs(3600)),
        log.clone(),
        records.clone(),
        &signer,
        &records.dir().join("tree"),
    );
    let result = within("the refusal", running.task).await.unwrap();
    match result {
        Err(AuditError::Inconsistent {
            last_size,
            last_root,
            size,
            root,
            reason,
        }) => {
            assert_eq!((last_size, last_root), (12, forged.root()));
            assert_eq!((size, root), (12, real.root()));
            assert!(reason.contains("root"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let status = running.handle.status();
    let why = status.stopped.unwrap();
    assert!(
        why.contains("refusing to sign") && why.contains("size 12"),
        "{why}"
    );
    assert!(matches!(
        running.handle.checkpoint_covering(20).await,
        Err(AuditError::Stopped(_))
    ));
    assert_eq!(
        store.all(None).await.unwrap().len(),
        1,
        "nothing more was signed"
    );
    assert_eq!(log.head().await.unwrap(), 12, "nor the cadence declared");

    // A log shorter than the last checkpoint is refused at once too.
    let short_dir = tempfile::tempdir().unwrap();
    let short = file_log(short_dir.path()).await;
    append(&short, "short", 4).await;
    let short_records = short.audit_records().unwrap();
    CheckpointStore::new(short_records.clone())
        .append(&signer.sign(12, real.root()).unwrap())
        .await
        .unwrap();
    let running = start(
        every(5, Duration::from_secs(3600)),
        short.clone(),
        short_records.clone(),
        &signer,
        &short_records.dir().join("tree"),
    );
    match within("the refusal", running.task).await.unwrap() {
        Err(AuditError::Inconsistent {
            last_size: 12,
            size: 4,
            reason,
            ..
        }) => {
            assert!(reason.contains("only 4 commits"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(short.head().await.unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_refuses_a_last_checkpoint_it_did_not_sign() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(&dir.path().join("log")).await;
    append(&log, "real", 8).await;
    let mut real = Tree::new();
    for c in all_commits(&log).await {
        real.push_commit(&c.bytes);
    }
    // The right history, but signed by another key of the same origin: not "the last one it
    // signed", so it does not sign on top of it.
    let (signer, _) = keys();
    let (other, _) = keys();
    let records = log.audit_records().unwrap();
    CheckpointStore::new(records.clone())
        .append(&other.sign(8, real.root()).unwrap())
        .await
        .unwrap();
    let running = start(
        every(5, Duration::from_secs(3600)),
        log.clone(),
        records.clone(),
        &signer,
        &records.dir().join("tree"),
    );
    match within("the refusal", running.task).await.unwrap() {
        Err(AuditError::BadStoredCheckpoint {
            sequence: 1,
            reason,
        }) => {
            assert!(reason.contains("signature"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(log.head().await.unwrap(), 8);
}
