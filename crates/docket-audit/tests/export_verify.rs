//! Export and verify on a realistic log: the demo workload run against the command services on
//! the in-process bus over a real `FileLog`, with deadlines passed and recorded missed, and two
//! signed checkpoints. The export reads back byte for byte (also as a `FileLog`), and verifies.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use docket_audit::export::{checkpoint_file_name, CHECKPOINTS_DIR, SEGMENTS_DIR};
use docket_audit::tree::Tree;
use docket_audit::{
    export, verify, CheckpointSigner, CheckpointVerifier, ExportError, ExportOptions,
    ExportSummary, VerifyOptions,
};
use docket_bus::{Client, LocalBus};
use docket_demo::DemoConfig;
use docket_domain::policy::PolicySet;
use docket_log::file::export::SegmentReader;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::{EventData, EventLog, ExpectedRevision, Metadata, RecordedCommit, StreamId};
use docket_runtime::clock::ManualClock;
use docket_runtime::{Executor, ExecutorConfig, World};
use tempfile::TempDir;

/// The log's origin in these tests.
pub const ORIGIN: &str = "docket.test/audit";

/// A demo log and what the tests need to know about it.
pub struct Fixture {
    /// Holds the log's directory.
    pub _log_dir: TempDir,
    /// Holds the pristine export.
    pub _export_dir: TempDir,
    /// The pristine export.
    pub export: PathBuf,
    /// Every commit of the log.
    pub commits: Vec<RecordedCommit>,
    /// The verifier key of the checkpoints' signer.
    pub vkey: String,
    /// The checkpoints' sizes, ascending.
    pub sizes: Vec<u64>,
}

impl Fixture {
    /// A verifier for the fixture's key.
    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier::new(&self.vkey).unwrap()
    }

    /// A fresh copy of the honest export.
    pub fn fresh(&self) -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&self.export, dir.path());
        dir
    }
}

/// Copies a directory tree of plain files.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The demo, run in process against a `FileLog` in `dir`. With `pass_deadlines`, the clock is
/// then moved forty days on and the scheduler records every deadline left running as missed;
/// without, the deadlines are left running.
pub async fn demo_log(dir: &Path, pass_deadlines: bool) -> FileLog {
    let config = DemoConfig {
        cases: 12,
        seed: 5,
        concurrency: 4,
        ..DemoConfig::default()
    };
    let log = FileLog::open(FileLogConfig::new(dir)).await.unwrap();
    let world = World::new();
    world.follow(log.clone());
    let checkpoints = docket_log::AnyCheckpoints::File(log.checkpoints().unwrap());
    let executor = Executor::new(
        log.clone(),
        world.clone(),
        ExecutorConfig::new(PolicySet::shipped().unwrap()),
    );
    let clock = ManualClock::new(config.start);
    let bus = LocalBus::new();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let services = docket_node::register_local(
        &bus,
        &docket_node::COMMAND_SERVICES,
        executor,
        checkpoints,
        None,
        crate::keys::verifier(),
        Arc::new(clock.clone()),
        stopped,
    );
    let summary = docket_demo::run(Client::new(bus, crate::keys::issuer()), &config, |_, _| {})
        .await
        .unwrap();
    assert!(summary.unexpected_refusals.is_empty(), "{summary}");
    assert!(summary.deadlines_running_total() > 0, "{summary}");
    if pass_deadlines {
        clock.set(config.start + chrono::Duration::days(40));
        let missed = || {
            world
                .read()
                .reviews
                .values()
                .map(|(_, r)| r.missed().len())
                .sum::<usize>()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while missed() < summary.deadlines_running_total() && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(missed(), summary.deadlines_running_total());
    }
    stop.send(true).unwrap();
    services.finish().await.unwrap();
    log
}

/// Every commit of a log.
pub async fn all_commits(log: &FileLog) -> Vec<RecordedCommit> {
    log.read_all(0, usize::MAX).await.unwrap()
}

/// Exports `log` into `dir` with the given checkpoint notes, the manifest signed by `skey`.
pub async fn export_signed(
    log: &impl EventLog,
    notes: &[String],
    skey: &str,
    upto: Option<u64>,
    dir: &Path,
) -> Result<ExportSummary, ExportError> {
    let signer = CheckpointSigner::new(skey).unwrap();
    let options = ExportOptions {
        checkpoints: notes,
        upto,
        signer: Some(&signer),
        ..ExportOptions::default()
    };
    export(log, &options, dir, |_, _| {}).await
}

/// Signed checkpoints of the given sizes over `commits`.
pub fn sign(commits: &[RecordedCommit], skey: &str, sizes: &[u64]) -> Vec<String> {
    let mut tree = Tree::new();
    for c in commits {
        tree.push_commit(&c.bytes);
    }
    let signer = CheckpointSigner::new(skey).unwrap();
    sizes
        .iter()
        .map(|&s| signer.sign(s, tree.root_at(s).unwrap()).unwrap().note)
        .collect()
}

fn build_fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let log_dir = tempfile::tempdir().unwrap();
        let log = demo_log(log_dir.path(), true).await;
        let commits = all_commits(&log).await;
        let n = commits.len() as u64;
        assert!(n > 300, "a realistic log: {n} commits");
        let (skey, vkey) = docket_audit::note::generate_key(ORIGIN).unwrap();
        let sizes = vec![n / 3, n];
        let notes = sign(&commits, &skey, &sizes);
        let export_dir = tempfile::tempdir().unwrap();
        let export_path = export_dir.path().join("export");
        let summary = export_signed(&log, &notes, &skey, None, &export_path)
            .await
            .unwrap();
        assert_eq!(summary.manifest.head, n);
        assert_eq!(summary.manifest.checkpoints, 2);
        log.close().await.unwrap();
        Fixture {
            _log_dir: log_dir,
            _export_dir: export_dir,
            export: export_path,
            commits,
            vkey,
            sizes,
        }
    })
}

/// The one honest export every test copies.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build_fixture)
}

#[test]
fn an_honest_export_verifies_with_every_rule_exercised() {
    let f = fixture();
    let dir = f.fresh();
    let report = verify(dir.path(), &f.verifier(), &VerifyOptions::default());
    println!("{report}");
    assert!(report.ok, "{report}");
    assert_eq!(report.first_failure, None);
    assert_eq!(report.commits_checked, f.commits.len() as u64);
    assert_eq!(report.checkpoints_found, 2);
    assert_eq!(report.checkpoints_checked, 2);
    assert_eq!(report.domain_commits, f.commits.len() as u64);
    for rule in [
        "checksum",
        "position",
        "decode",
        "hash_chain",
        "checkpoint_signature",
        "checkpoint_root",
        "checkpoint_consistency",
        "review_acknowledged",
        "deadline_met_or_missed",
        "decision_policy_version",
        "decision_officer_trained",
        "departure_approved",
        "manifest",
    ] {
        assert!(
            report.rules.get(rule).copied().unwrap_or(0) > 0,
            "{rule} never checked: {report}"
        );
    }
    let mut tree = Tree::new();
    for c in &f.commits {
        tree.push_commit(&c.bytes);
    }
    assert_eq!(report.root, tree.root().to_string());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["ok"], true);
    assert!(json["first_failure"].is_null());
    assert_eq!(json["commits_checked"], f.commits.len() as u64);
    // Another key, even of the same origin, does not vouch for these checkpoints.
    let (_, other) = docket_audit::note::generate_key(ORIGIN).unwrap();
    let report = verify(
        dir.path(),
        &CheckpointVerifier::new(&other).unwrap(),
        &VerifyOptions::default(),
    );
    let failure = report.first_failure.unwrap();
    assert_eq!(
        (failure.position, failure.rule.as_str()),
        (f.sizes[0], "checkpoint_signature")
    );
}

#[test]
fn an_export_reads_back_byte_for_byte_and_opens_as_a_log() {
    let f = fixture();
    let dir = f.fresh();
    let read: Vec<(u64, Vec<u8>)> = SegmentReader::open(&dir.path().join(SEGMENTS_DIR))
        .unwrap()
        .map(|c| c.map(|(p, b)| (p, b.to_vec())).unwrap())
        .collect();
    let source: Vec<(u64, Vec<u8>)> = f
        .commits
        .iter()
        .map(|c| (c.position, c.bytes.to_vec()))
        .collect();
    assert_eq!(read, source);
    for size in &f.sizes {
        assert!(dir
            .path()
            .join(CHECKPOINTS_DIR)
            .join(checkpoint_file_name(*size))
            .exists());
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("MANIFEST.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "docket-export");
    assert_eq!(manifest["origin"], ORIGIN);
    assert_eq!(manifest["head"], f.commits.len() as u64);
    assert!(manifest["first_commit_at"]
        .as_str()
        .unwrap()
        .starts_with("2024-03-04"));

    // The segments are a log: FileLog opens them and reads the same commits.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let log = FileLog::open(FileLogConfig::new(dir.path().join(SEGMENTS_DIR)))
            .await
            .unwrap();
        assert_eq!(log.head().await.unwrap(), f.commits.len() as u64);
        assert_eq!(all_commits(&log).await, f.commits);
        log.close().await.unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_up_to_a_position_keeps_only_checkpoints_within_it_and_refuses_a_used_dir() {
    let log_dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(log_dir.path()))
        .await
        .unwrap();
    let stream = StreamId::new("note/one").unwrap();
    for i in 0..50u64 {
        log.append(
            &stream,
            ExpectedRevision::Any,
            vec![EventData {
                id: uuid::Uuid::new_v4(),
                type_name: "note.written".into(),
                type_version: 1,
                payload: vec![i as u8; 10].into(),
            }],
            Metadata {
                recorded_at_micros: 1_700_000_000_000_000 + i as i64,
                ..Metadata::default()
            },
        )
        .await
        .unwrap();
    }
    let commits = all_commits(&log).await;
    let (skey, vkey) = docket_audit::note::generate_key(ORIGIN).unwrap();
    let notes = sign(&commits, &skey, &[10, 30, 50]);
    let out = tempfile::tempdir().unwrap();
    let mut calls = Vec::new();
    let signer = CheckpointSigner::new(&skey).unwrap();
    let options = ExportOptions {
        checkpoints: &notes,
        upto: Some(30),
        signer: Some(&signer),
        ..ExportOptions::default()
    };
    let summary = export(&log, &options, out.path(), |done, total| {
        calls.push((done, total))
    })
    .await
    .unwrap();
    assert_eq!(summary.manifest.head, 30);
    assert_eq!(summary.manifest.checkpoints, 2);
    assert_eq!(summary.checkpoints_skipped, 1);
    assert_eq!(calls.last(), Some(&(30, 30)));
    let verifier = CheckpointVerifier::new(&vkey).unwrap();
    let report = verify(out.path(), &verifier, &VerifyOptions::default());
    assert!(report.ok, "{report}");
    assert_eq!(
        (report.commits_checked, report.checkpoints_checked),
        (30, 2)
    );
    assert_eq!(report.domain_commits, 0);
    assert!(report.to_string().contains("no domain commits"), "{report}");

    // The directory is used now.
    let again = export_signed(&log, &notes, &skey, None, out.path()).await;
    assert!(matches!(again, Err(ExportError::NotEmpty(_))), "{again:?}");
    // A checkpoint whose size the export does not reach is named.
    std::fs::copy(
        out.path()
            .join(CHECKPOINTS_DIR)
            .join(checkpoint_file_name(30)),
        out.path()
            .join(CHECKPOINTS_DIR)
            .join(checkpoint_file_name(50)),
    )
    .unwrap();
    std::fs::write(
        out.path()
            .join(CHECKPOINTS_DIR)
            .join(checkpoint_file_name(50)),
        &notes[2],
    )
    .unwrap();
    let report = verify(out.path(), &verifier, &VerifyOptions::default());
    let failure = report.first_failure.unwrap();
    assert_eq!(
        (failure.position, failure.rule.as_str()),
        (50, "checkpoint_size")
    );
    log.close().await.unwrap();
}
