//! Import (restore) of an export: the demo log with two signed checkpoints (the last a few
//! commits short of the head) is exported, then imported into a fresh data directory and into a
//! fresh nats-server. Each restored log holds the same commits byte for byte at the same
//! positions and every checkpoint of the export; a receipt made before the backup verifies
//! against a checkpoint the restored system signs; its checkpointer, with the same key,
//! continues (and with another key refuses). A non-empty target and a tampered export are
//! refused, and nothing is written.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use docket_audit::import::{Phase, STAGING_DIR};
use docket_audit::tree::verify_consistency;
use docket_audit::{
    import_to_dir, import_to_jetstream, verify_receipt, AuditError, CheckpointSigner,
    CheckpointStore, CheckpointVerifier, Checkpointer, CheckpointerConfig, ImportError,
    ImportSummary, Receipt, Tree, VerifyOptions,
};
use docket_log::commit::{self, Commit};
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::{
    Checkpoints, EventLog, ExpectedRevision, LogError, Metadata, RecordedCommit, Records, StreamId,
};
use docket_testkit::NatsServer;
use tempfile::TempDir;
use tokio::sync::watch;

use crate::checkpointer::{append, within};
use crate::export_verify::{all_commits, copy_dir, demo_log, export_signed, sign, ORIGIN};

/// Commits after the last checkpoint of the fixture's export.
const UNSIGNED: u64 = 5;

struct ImportFixture {
    _dir: TempDir,
    export: PathBuf,
    commits: Vec<RecordedCommit>,
    skey: String,
    vkey: String,
    /// The export's checkpoint notes, by size.
    notes: Vec<String>,
    sizes: Vec<u64>,
    /// A receipt for an early commit against the first checkpoint, made before the backup.
    receipt: Receipt,
}

impl ImportFixture {
    fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier::new(&self.vkey).unwrap()
    }

    fn signer(&self) -> CheckpointSigner {
        CheckpointSigner::new(&self.skey).unwrap()
    }
}

fn build() -> ImportFixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let log = demo_log(&dir.path().join("log"), true).await;
        let commits = all_commits(&log).await;
        let n = commits.len() as u64;
        let (skey, vkey) = docket_audit::note::generate_key(ORIGIN).unwrap();
        let sizes = vec![n / 3, n - UNSIGNED];
        let notes = sign(&commits, &skey, &sizes);
        // The deployment stores them as its checkpointer would.
        let store = CheckpointStore::new(log.audit_records().unwrap());
        let verifier = CheckpointVerifier::new(&vkey).unwrap();
        for note in &notes {
            store.append(&verifier.open(note).unwrap()).await.unwrap();
        }
        let mut tree = Tree::new();
        for c in &commits {
            tree.push_commit(&c.bytes);
        }
        let receipt =
            Receipt::from_tree(&tree, &verifier.open(&notes[0]).unwrap(), &commits[9]).unwrap();
        let export_path = dir.path().join("export");
        let stored: Vec<String> = store
            .all(None)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.signed.note)
            .collect();
        let summary = export_signed(&log, &stored, &skey, None, &export_path)
            .await
            .unwrap();
        assert_eq!(
            (summary.manifest.head, summary.manifest.checkpoints),
            (n, 2)
        );
        log.close().await.unwrap();
        ImportFixture {
            _dir: dir,
            export: export_path,
            commits,
            skey,
            vkey,
            notes,
            sizes,
            receipt,
        }
    })
}

/// The fixture's export has an unsigned tail ([`UNSIGNED`] commits past its last checkpoint),
/// which import refuses unless allowed: these tests allow it, to show what the restored
/// checkpointer does with it.
fn allowing_tail() -> VerifyOptions {
    VerifyOptions {
        allow_unsigned_tail: true,
        ..VerifyOptions::default()
    }
}

fn fixture() -> &'static ImportFixture {
    static FIXTURE: OnceLock<ImportFixture> = OnceLock::new();
    // Built on a thread of its own: the tests calling this run inside a runtime.
    FIXTURE.get_or_init(|| std::thread::spawn(build).join().unwrap())
}

/// Checks the summary against the fixture.
fn check_summary(f: &ImportFixture, summary: &ImportSummary) {
    let n = f.commits.len() as u64;
    assert_eq!(
        (summary.commits, summary.head, summary.checkpoints),
        (n, n, 2),
        "{summary}"
    );
    assert_eq!(
        summary.last_hash.as_deref(),
        Some(f.commits.last().unwrap().hash().to_string().as_str())
    );
    assert_eq!(summary.last_checkpoint_size, Some(n - UNSIGNED));
    assert_eq!(summary.unsigned_commits, UNSIGNED);
    assert!(summary.verify.ok);
    assert_eq!(summary.root, summary.verify.root);
    let text = summary.to_string();
    assert!(
        text.starts_with(&format!(
            "imported {n} commits, 2 checkpoints, head {n}, last hash {}",
            f.commits.last().unwrap().hash()
        )),
        "{text}"
    );
    let json = serde_json::to_value(summary).unwrap();
    assert_eq!(json["head"], n);
    assert_eq!(json["verify"]["ok"], true);
}

/// Every commit of the restored log is the original's: same position, same bytes.
async fn check_commits(f: &ImportFixture, log: &impl EventLog) {
    let restored = log.read_all(0, usize::MAX).await.unwrap();
    assert_eq!(restored.len(), f.commits.len());
    for (r, o) in restored.iter().zip(&f.commits) {
        assert_eq!(r.position, o.position);
        assert_eq!(r.bytes, o.bytes, "position {}", o.position);
    }
    assert_eq!(log.head().await.unwrap(), f.commits.len() as u64);
}

/// The restored audit records are the export's checkpoints, verbatim and in order.
async fn check_records<R: Records>(f: &ImportFixture, records: R) {
    let stored: Vec<String> = CheckpointStore::new(records)
        .all(Some(&f.verifier()))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.signed.note)
        .collect();
    assert_eq!(stored, f.notes);
}

/// Starts a checkpointer with the fixture's key on the restored log: it sees the last
/// checkpoint, signs a larger one consistent with it, a receipt made before the backup verifies
/// against it, and it keeps going as the log grows.
async fn check_checkpointer_continues<L, R>(f: &ImportFixture, log: L, records: R, tree_dir: &Path)
where
    L: EventLog + Clone + 'static,
    R: Records + Clone + 'static,
{
    let n = f.commits.len() as u64;
    let verifier = f.verifier();
    let (stop, shutdown) = watch::channel(false);
    // Signing on a cadence only: its first checkpoint comes half a second after the start.
    let config = CheckpointerConfig::every(1_000_000, Duration::from_millis(500));
    let (handle, task) = Checkpointer::start(
        config,
        log.clone(),
        CheckpointStore::new(records.clone()),
        f.signer(),
        tree_dir.to_owned(),
        shutdown,
    );
    // It starts from the export's last checkpoint, and declares its cadence: commit n + 1.
    assert_eq!(crate::checkpointer::started(&handle).await, n + 1);
    let last = handle.latest().expect("the last checkpoint of the export");
    assert_eq!(last.note, *f.notes.last().unwrap());
    within("the restored tree", handle.wait_for_size(n + 1))
        .await
        .unwrap();
    // The cadence's checkpoint covering the head: consistent with the export's last.
    let head = within("a checkpoint", handle.checkpoint_covering(n + 1))
        .await
        .unwrap();
    assert_eq!(head.checkpoint.size, n + 1);
    let proof = handle
        .consistency_proof(last.checkpoint.size, n + 1)
        .await
        .unwrap();
    verify_consistency(
        &proof,
        last.checkpoint.size,
        last.checkpoint.root,
        n + 1,
        head.checkpoint.root,
    )
    .unwrap();
    // The receipt from before the backup verifies against it.
    let receipt_size = f.sizes[0];
    let proof = handle.consistency_proof(receipt_size, n + 1).await.unwrap();
    let verified = verify_receipt(&f.receipt, &verifier, Some((&head.note, &proof))).unwrap();
    assert_eq!(verified.later.unwrap().size, n + 1);
    f.receipt
        .check_commit(&f.commits[f.receipt.position as usize - 1].bytes)
        .unwrap();
    // The log grows; the next checkpoint is consistent with every earlier one. (How many the
    // cadence signs while the three commits come in depends on the timer: at least one.)
    let grown = append(&log, "after-restore", 3).await;
    assert_eq!(grown, n + 4);
    let next = within("a later checkpoint", handle.checkpoint_covering(grown))
        .await
        .unwrap();
    assert_eq!(next.checkpoint.size, grown);
    let stored: Vec<_> = CheckpointStore::new(records)
        .all(Some(&verifier))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.signed)
        .collect();
    assert_eq!(
        stored[..f.notes.len()]
            .iter()
            .map(|c| c.note.clone())
            .collect::<Vec<_>>(),
        f.notes,
        "the export's checkpoints first, as they were"
    );
    assert_eq!(stored[f.notes.len()], head);
    assert_eq!(stored.last(), Some(&next));
    for pair in stored.windows(2) {
        let (a, b) = (&pair[0].checkpoint, &pair[1].checkpoint);
        let proof = handle.consistency_proof(a.size, b.size).await.unwrap();
        verify_consistency(&proof, a.size, a.root, b.size, b.root).unwrap();
    }
    stop.send(true).unwrap();
    within("the checkpointer to stop", task)
        .await
        .unwrap()
        .unwrap();
}

/// A checkpointer with another key (of the same origin) refuses the restored checkpoints.
async fn check_other_key_refused<L, R>(log: L, records: R, tree_dir: &Path)
where
    L: EventLog + 'static,
    R: Records + 'static,
{
    let (skey, _) = docket_audit::note::generate_key(ORIGIN).unwrap();
    let (_stop, shutdown) = watch::channel(false);
    let (_, task) = Checkpointer::start(
        CheckpointerConfig::default(),
        log,
        CheckpointStore::new(records),
        CheckpointSigner::new(&skey).unwrap(),
        tree_dir.to_owned(),
        shutdown,
    );
    match within("the refusal", task).await.unwrap() {
        Err(AuditError::BadStoredCheckpoint { reason, .. }) => {
            assert!(reason.contains("signature"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The export with one byte flipped in the middle of its first segment.
fn tampered(f: &ImportFixture) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&f.export, dir.path());
    let segment = std::fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&segment, bytes).unwrap();
    dir
}

fn assert_refused_as_tampered(result: Result<ImportSummary, ImportError>) {
    match result {
        Err(ImportError::NotVerified(report)) => {
            let failure = report.first_failure.clone().unwrap();
            assert!(failure.position >= 1, "{report}");
            assert!(
                ["checksum", "decode", "hash_chain"].contains(&failure.rule.as_str()),
                "{report}"
            );
            let message = ImportError::NotVerified(report).to_string();
            assert!(
                message.contains(&format!(
                    "position {}, rule {}",
                    failure.position, failure.rule
                )),
                "{message}"
            );
        }
        other => panic!("expected the tampered export to be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_imported_into_a_data_dir_is_the_same_log_and_its_checkpointer_continues() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("restored");
    let mut phases = Vec::new();
    let summary = import_to_dir(
        &f.export,
        &target,
        &f.verifier(),
        &allowing_tail(),
        |phase, done, total| phases.push((phase, done, total)),
    )
    .await
    .unwrap();
    check_summary(f, &summary);
    let n = f.commits.len() as u64;
    assert!(phases.contains(&(Phase::Writing, n, n)), "{phases:?}");
    assert!(phases.contains(&(Phase::Checking, n, n)), "{phases:?}");
    // The layout `docket up --data-dir` opens: segments and audit records, nothing staged.
    assert!(!target.join(STAGING_DIR).exists());
    assert!(target.join("00000000000000000001.seg").exists());
    assert!(target
        .join("audit")
        .join("records-00000000000000000001.seg")
        .exists());

    let log = FileLog::open(FileLogConfig::new(&target)).await.unwrap();
    check_commits(f, &log).await;
    check_records(f, log.audit_records().unwrap()).await;
    check_other_key_refused(
        log.clone(),
        log.audit_records().unwrap(),
        &dir.path().join("other-tree"),
    )
    .await;
    check_checkpointer_continues(
        f,
        log.clone(),
        log.audit_records().unwrap(),
        &target.join("audit").join("tree"),
    )
    .await;
    log.close().await.unwrap();

    // An empty directory is a fine target too.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let again = import_to_dir(
        &f.export,
        &empty,
        &f.verifier(),
        &allowing_tail(),
        |_, _, _| {},
    )
    .await
    .unwrap();
    assert_eq!(again.root, summary.root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_empty_target_or_a_tampered_export_is_refused_and_nothing_is_written() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    // A directory holding anything is not a target.
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("00000000000000000001.seg"), b"precious").unwrap();
    let refused = import_to_dir(
        &f.export,
        &busy,
        &f.verifier(),
        &allowing_tail(),
        |_, _, _| {},
    )
    .await;
    match refused {
        Err(ImportError::NotEmpty(message)) => {
            assert!(message.contains("is not empty"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let left: Vec<_> = std::fs::read_dir(&busy).unwrap().collect();
    assert_eq!(left.len(), 1);
    assert_eq!(
        std::fs::read(busy.join("00000000000000000001.seg")).unwrap(),
        b"precious"
    );

    // A flipped byte: refused with the position and rule named; the target is not created.
    let bad = tampered(f);
    let target = dir.path().join("restored");
    assert_refused_as_tampered(
        import_to_dir(
            bad.path(),
            &target,
            &f.verifier(),
            &allowing_tail(),
            |_, _, _| {},
        )
        .await,
    );
    assert!(!target.exists());
    // An empty target directory stays empty.
    std::fs::create_dir(&target).unwrap();
    assert_refused_as_tampered(
        import_to_dir(
            bad.path(),
            &target,
            &f.verifier(),
            &allowing_tail(),
            |_, _, _| {},
        )
        .await,
    );
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);

    // Another key does not vouch for the checkpoints: refused at the first checkpoint.
    let (_, other) = docket_audit::note::generate_key(ORIGIN).unwrap();
    match import_to_dir(
        &f.export,
        &target,
        &CheckpointVerifier::new(&other).unwrap(),
        &allowing_tail(),
        |_, _, _| {},
    )
    .await
    {
        Err(ImportError::NotVerified(report)) => {
            let failure = report.first_failure.unwrap();
            assert_eq!(
                (failure.position, failure.rule.as_str()),
                (f.sizes[0], "checkpoint_signature")
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_imported_into_jetstream_is_the_same_log_and_its_checkpointer_continues() {
    let f = fixture();
    let server = NatsServer::start();
    let log = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
        .await
        .unwrap();
    // A tampered export is refused first, and leaves the streams empty.
    let bad = tampered(f);
    assert_refused_as_tampered(
        import_to_jetstream(
            bad.path(),
            &log,
            &f.verifier(),
            &allowing_tail(),
            |_, _, _| {},
        )
        .await,
    );
    assert_eq!(log.head().await.unwrap(), 0);
    let records = log.audit_records().await.unwrap();
    assert_eq!(records.last().await.unwrap(), None);

    let mut phases = Vec::new();
    let summary = import_to_jetstream(
        &f.export,
        &log,
        &f.verifier(),
        &allowing_tail(),
        |phase, done, total| phases.push((phase, done, total)),
    )
    .await
    .unwrap();
    check_summary(f, &summary);
    let n = f.commits.len() as u64;
    assert!(phases.contains(&(Phase::Writing, n, n)), "{phases:?}");
    check_commits(f, &log).await;
    check_records(f, records.clone()).await;
    // Each commit is on its stream's subject, with the message id a normal append sets: the
    // server recognises the commit's dedup id (within its duplicate window).
    let first = &f.commits[0];
    let stream = log.read_stream(&first.commit.stream).await.unwrap();
    assert_eq!(stream[0].bytes, first.bytes);
    let sample = &f.commits[7];
    let retry = log
        .append(
            &StreamId::new("case/dedup-probe").unwrap(),
            ExpectedRevision::NoStream,
            sample.commit.events.clone(),
            sample.commit.metadata.clone(),
        )
        .await;
    match retry {
        Err(LogError::Duplicate { position }) => assert_eq!(position, sample.position),
        other => panic!("expected the dedup id to be recognised, got {other:?}"),
    }

    // Restores are idempotent; anything else at or before a position is a conflict.
    for c in [&f.commits[0], &f.commits[7], f.commits.last().unwrap()] {
        let again = log.restore(c.position, c.bytes.clone()).await.unwrap();
        assert_eq!((again.position, again.hash), (c.position, c.hash()));
    }
    match log.restore(3, f.commits[1].bytes.clone()).await {
        Err(LogError::Conflict { .. } | LogError::Duplicate { .. }) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    let fresh = Bytes::from(
        commit::encode(&Commit {
            stream: StreamId::new("case/restore-test").unwrap(),
            prev: None,
            metadata: Metadata {
                idempotency_key: Some(format!("restore-test-{}", uuid::Uuid::new_v4())),
                ..Metadata::default()
            },
            events: f.commits[0].commit.events.clone(),
        })
        .unwrap(),
    );
    match log.restore(n + 5, fresh).await {
        Err(LogError::Conflict { actual, .. }) => assert_eq!(actual, n),
        other => panic!("expected a conflict, got {other:?}"),
    }
    match log
        .restore(n + 1, Bytes::from_static(b"not a commit"))
        .await
    {
        Err(LogError::Invalid { reason }) => assert!(reason.contains("position"), "{reason}"),
        other => panic!("expected an invalid restore, got {other:?}"),
    }
    assert_eq!(log.head().await.unwrap(), n);

    // Importing again is refused: the log is not empty.
    match import_to_jetstream(
        &f.export,
        &log,
        &f.verifier(),
        &allowing_tail(),
        |_, _, _| {},
    )
    .await
    {
        Err(ImportError::NotEmpty(message)) => {
            assert!(message.contains("DOCKET_LOG holds"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    let trees = tempfile::tempdir().unwrap();
    check_other_key_refused(log.clone(), records.clone(), &trees.path().join("other")).await;
    check_checkpointer_continues(f, log.clone(), records, &trees.path().join("tree")).await;

    // Reaction checkpoints left from another deployment make an empty log no target.
    let server = NatsServer::start();
    let log = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
        .await
        .unwrap();
    log.checkpoints()
        .await
        .unwrap()
        .save("notification", 42)
        .await
        .unwrap();
    match import_to_jetstream(
        &f.export,
        &log,
        &f.verifier(),
        &allowing_tail(),
        |_, _, _| {},
    )
    .await
    {
        Err(ImportError::NotEmpty(message)) => {
            assert!(message.contains("notification at 42"), "{message}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(log.head().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rewrite_and_drop_checkpoints_forgery_is_refused_by_import() {
    use crate::anchors;
    let f = anchors::fixture();
    let p = anchors::decision_position(f);
    let kept = f.size_before(p);
    // A decision's reasons rewritten (nothing a process rule judges), the chains recomputed,
    // and only the checkpoints before it kept: the export tool, run with the deployment's key.
    let forged = anchors::reasons_changed(f, p);
    let dir = tempfile::tempdir().unwrap();
    // (On a thread of its own: the export tool runs its own runtime.)
    let export = std::thread::scope(|s| {
        s.spawn(|| anchors::operator_export(f, &forged, &f.notes_before(p), None, dir.path()))
            .join()
            .unwrap()
    });
    let target = dir.path().join("restored");
    let refused =
        |result: Result<ImportSummary, ImportError>, position: u64, rule: &str| match result {
            Err(ImportError::NotVerified(report)) => {
                let failure = report.first_failure.clone().unwrap();
                assert_eq!(
                    (failure.position, failure.rule.as_str()),
                    (position, rule),
                    "{report}"
                );
            }
            other => panic!("expected the forgery to be refused, got {other:?}"),
        };
    // By default: its unsigned tail.
    refused(
        import_to_dir(
            &export,
            &target,
            &f.verifier(),
            &VerifyOptions::default(),
            |_, _, _| {},
        )
        .await,
        kept + 1,
        "coverage",
    );
    assert!(!target.exists());
    // With the tail allowed, the anchors still refuse it: a later checkpoint the importer
    // holds, or the witnesses.
    let mut trusted = anchors::trusting(&[f.note(f.size_from(p))]);
    trusted.allow_unsigned_tail = true;
    refused(
        import_to_dir(&export, &target, &f.verifier(), &trusted, |_, _, _| {}).await,
        f.size_from(p),
        "anchor",
    );
    refused(
        import_to_dir(
            &export,
            &target,
            &f.verifier(),
            &anchors::witnesses(f),
            |_, _, _| {},
        )
        .await,
        kept + 1,
        "anchor",
    );
    assert!(!target.exists());
    // Allowed and unanchored, it is imported, and the summary says how much nothing vouched for.
    let summary = import_to_dir(
        &export,
        &target,
        &f.verifier(),
        &allowing_tail(),
        |_, _, _| {},
    )
    .await
    .unwrap();
    assert_eq!(summary.unsigned_commits, f.head() - kept);
    assert!(
        summary.to_string().contains("nothing vouched for"),
        "{summary}"
    );
}
