//! The checkpoint store, the persisted tree and the checkpointer, over a real file log (and a
//! JetStream log on a real nats-server): scheduled and on-demand checkpoints, restarts that
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
use docket_log::{EventData, EventLog, ExpectedRevision, Metadata, RecordedCommit, StreamId};
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

/// A running checkpointer over a file log, with what it takes to stop it.
pub struct Running {
    pub handle: CheckpointerHandle,
    pub task: JoinHandle<Result<(), AuditError>>,
    pub stop: watch::Sender<bool>,
}

impl Running {
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
    let (handle, task) = Checkpointer::start(
        config,
        log,
        CheckpointStore::new(records),
        signer.clone(),
        tree_dir.to_owned(),
        shutdown,
    );
    Running { handle, task, stop }
}

fn every(commits: u64, every: Duration) -> CheckpointerConfig {
    CheckpointerConfig {
        every_commits: commits,
        every,
    }
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
    let on_disk = std::fs::read_to_string(dir.path().join("00000000000000000002")).unwrap();
    assert_eq!(on_disk, signed[1].note, "the note text is stored verbatim");
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
    for _ in 0..35 {
        let position = append(&log, "n", 1).await;
        within("the tree", running.handle.wait_for_size(position))
            .await
            .unwrap();
    }
    let store = CheckpointStore::new(records.clone());
    let all = check_chain(&store, &verifier, &running.handle).await;
    let sizes: Vec<u64> = all.iter().map(|c| c.checkpoint.size).collect();
    assert_eq!(sizes, vec![10, 20, 30]);
    let tree = {
        let mut t = Tree::new();
        for c in all_commits(&log).await {
            t.push_commit(&c.bytes);
        }
        t
    };
    for c in &all {
        assert_eq!(c.checkpoint.root, tree.root_at(c.checkpoint.size).unwrap());
    }
    running.stop().await.unwrap();

    // On a timer: a tree that grew by fewer than N commits is signed within T.
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
        status.wait_for(|s| s.latest.as_ref().is_some_and(|c| c.checkpoint.size == 35)),
    )
    .await
    .unwrap();
    drop(status);
    let all = check_chain(&store, &verifier, &running.handle).await;
    assert_eq!(all.last().unwrap().checkpoint.size, 35);
    // No growth, no new checkpoint.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.all(None).await.unwrap().len(), 4);
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_checkpoints_cover_fresh_positions_on_jetstream() {
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
    let (handle, task) = Checkpointer::start(
        every(1000, Duration::from_secs(3600)),
        log.clone(),
        store.clone(),
        signer,
        cache.path().to_owned(),
        shutdown,
    );
    let head = append(&log, "j", 5).await;
    let cp = within("a checkpoint", handle.checkpoint_covering(head))
        .await
        .unwrap();
    assert_eq!(cp.checkpoint.size, 5);
    assert_eq!(verifier.open(&cp.note).unwrap(), cp);

    // Requests for positions not in the log yet wait for them; concurrent ones share signatures.
    let mut waiters = Vec::new();
    for i in 0..12u64 {
        let handle = handle.clone();
        waiters.push(tokio::spawn(async move {
            let position = 6 + i % 4;
            (position, handle.checkpoint_covering(position).await)
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    append(&log, "j", 4).await;
    for w in waiters {
        let (position, cp) = within("a waiter", w).await.unwrap();
        let cp = cp.unwrap();
        assert!(cp.checkpoint.size >= position);
        verifier.open(&cp.note).unwrap();
    }
    let status = handle.status();
    assert!(
        status.signed <= 5,
        "{} signatures for 12 requests",
        status.signed
    );
    // An older position is answered by the latest checkpoint, without signing.
    let again = handle.checkpoint_covering(2).await.unwrap();
    assert_eq!(again.checkpoint.size, 9);
    assert_eq!(handle.status().signed, status.signed);
    let stored = store
        .first_covering(7, Some(&verifier))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.signed.checkpoint.size >= 7);
    // Proofs from the tree.
    let proof = handle.inclusion_proof(3, 9).await.unwrap();
    docket_audit::tree::verify_inclusion(
        &proof,
        9,
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
    let running = start(
        every(10, Duration::from_secs(3600)),
        log.clone(),
        records.clone(),
        &signer,
        &tree_dir,
    );
    within("catch-up", running.handle.wait_for_size(25))
        .await
        .unwrap();
    let first = running.handle.checkpoint_covering(25).await.unwrap();
    assert_eq!(first.checkpoint.size, 25);
    assert_eq!(running.handle.status().pushed, 25);
    running.stop().await.unwrap();

    // The second run loads 25 leaves and hashes only the new commits.
    let running = start(
        every(10, Duration::from_secs(3600)),
        log.clone(),
        records.clone(),
        &signer,
        &tree_dir,
    );
    append(&log, "r", 12).await;
    within("the new commits", running.handle.wait_for_size(37))
        .await
        .unwrap();
    let status = running.handle.status();
    assert_eq!((status.loaded, status.pushed), (25, 12));
    let second = running.handle.checkpoint_covering(37).await.unwrap();
    let store = CheckpointStore::new(records.clone());
    let all = check_chain(&store, &verifier, &running.handle).await;
    assert!(all.contains(&first));
    assert_eq!(all.last().unwrap(), &second);
    let proof = running
        .handle
        .consistency_proof(25, second.checkpoint.size)
        .await
        .unwrap();
    verify_consistency(
        &proof,
        25,
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
    let running = start(
        every(10, Duration::from_secs(3600)),
        log.clone(),
        records.clone(),
        &signer,
        &tree_dir,
    );
    within("the reopened tree", running.handle.wait_for_size(37))
        .await
        .unwrap();
    append(&log, "r", 3).await;
    let third = within("a checkpoint", running.handle.checkpoint_covering(40))
        .await
        .unwrap();
    assert_eq!(third.checkpoint.size, 40);
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
}
