//! The integrity attacks of issue 12, each made the way its author would make it (an operator
//! holds the deployment's key and runs the export tool; someone without it edits files), each
//! verified with the anchors the auditor needs to catch it: witness keys (real `WitnessSigner`
//! cosignatures over the log's checkpoints) and trusted checkpoints. Without anchors, verify
//! says truthfully what its verdict rests on.

use std::path::Path;
use std::sync::OnceLock;

use docket_audit::export::{checkpoint_file_name, CHECKPOINTS_DIR, MANIFEST_FILE, SEGMENTS_DIR};
use docket_audit::tree::Tree;
use docket_audit::verify::AnchorKind;
use docket_audit::witness::WitnessSigner;
use docket_audit::witness::{add_signature_lines, generate_witness_key, CosignatureVerifier};
use docket_audit::{verify, Anchors, CheckpointVerifier, Report, VerifyOptions};
use docket_domain::case::CaseEvent;
use docket_domain::events::DomainEvent;
use docket_domain::values::PersonId;
use docket_log::commit::{self, Commit};
use docket_log::file::export::SegmentWriter;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::{CommitHash, RecordedCommit};
use docket_runtime::{decode_event, encode_event};
use tempfile::TempDir;

use crate::export_verify::{all_commits, copy_dir, demo_log, export_signed, sign, ORIGIN};

/// A checkpoint every this many commits, as a cadence would sign them.
const EVERY: u64 = 50;

/// The demo log with checkpoints every [`EVERY`] commits and at the head, each cosigned by two
/// witnesses, and its honest export.
pub struct AnchorFixture {
    _dir: TempDir,
    /// The honest export.
    pub export: std::path::PathBuf,
    /// Every commit of the log.
    pub commits: Vec<RecordedCommit>,
    /// The log's signer key.
    pub skey: String,
    /// The log's verifier key.
    pub vkey: String,
    /// The two witnesses' signers.
    pub witnesses: Vec<WitnessSigner>,
    /// The checkpoints' sizes, ascending.
    pub sizes: Vec<u64>,
    /// The cosigned checkpoint notes, by size.
    pub notes: Vec<String>,
}

impl AnchorFixture {
    pub fn verifier(&self) -> CheckpointVerifier {
        CheckpointVerifier::new(&self.vkey).unwrap()
    }

    fn witness_verifiers(&self) -> Vec<CosignatureVerifier> {
        self.witnesses.iter().map(WitnessSigner::verifier).collect()
    }

    /// The cosigned note of `size`.
    pub fn note(&self, size: u64) -> String {
        let i = self.sizes.iter().position(|s| *s == size).unwrap();
        self.notes[i].clone()
    }

    /// The notes of the checkpoints smaller than `size`.
    pub fn notes_before(&self, size: u64) -> Vec<String> {
        self.sizes
            .iter()
            .zip(&self.notes)
            .filter(|(s, _)| **s < size)
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// The last checkpoint size below `size`.
    pub fn size_before(&self, size: u64) -> u64 {
        *self.sizes.iter().rfind(|s| **s < size).unwrap()
    }

    /// The first checkpoint size at or above `size`.
    pub fn size_from(&self, size: u64) -> u64 {
        *self.sizes.iter().find(|s| **s >= size).unwrap()
    }

    pub fn head(&self) -> u64 {
        self.commits.len() as u64
    }
}

/// Cosigns each note with every witness (real cosignatures, the timestamps a second apart).
fn cosign(notes: &[String], vkey: &str, witnesses: &[WitnessSigner]) -> Vec<String> {
    let verifier = CheckpointVerifier::new(vkey).unwrap();
    notes
        .iter()
        .enumerate()
        .map(|(i, note)| {
            let body = verifier.open(note).unwrap().checkpoint.body();
            let lines: Vec<String> = witnesses
                .iter()
                .map(|w| w.cosign(&body, 1_700_000_000 + i as u64).unwrap())
                .collect();
            add_signature_lines(note, &lines).unwrap()
        })
        .collect()
}

fn build() -> AnchorFixture {
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
        let mut sizes: Vec<u64> = (1..=n / EVERY).map(|k| k * EVERY).collect();
        if sizes.last() != Some(&n) {
            sizes.push(n);
        }
        let witnesses: Vec<WitnessSigner> = ["witness-a.test", "witness-b.test"]
            .iter()
            .map(|name| WitnessSigner::new(&generate_witness_key(name).unwrap().0).unwrap())
            .collect();
        let notes = cosign(&sign(&commits, &skey, &sizes), &vkey, &witnesses);
        let export = dir.path().join("export");
        export_signed(&log, &notes, &skey, None, &export)
            .await
            .unwrap();
        log.close().await.unwrap();
        AnchorFixture {
            _dir: dir,
            export,
            commits,
            skey,
            vkey,
            witnesses,
            sizes,
            notes,
        }
    })
}

/// The one fixture these tests share.
pub fn fixture() -> &'static AnchorFixture {
    static FIXTURE: OnceLock<AnchorFixture> = OnceLock::new();
    // Built on a thread of its own: tests calling this may run inside a runtime.
    FIXTURE.get_or_init(|| std::thread::spawn(build).join().unwrap())
}

/// A decision commit well inside the log: at least two checkpoints before it and two after.
pub fn decision_position(f: &AnchorFixture) -> u64 {
    let low = f.sizes[1];
    let high = f.sizes[f.sizes.len() - 3];
    f.commits
        .iter()
        .filter(|c| c.position > low && c.position < high)
        .find(|c| {
            c.commit.events.iter().any(|e| {
                matches!(
                    decode_event(e),
                    Ok(DomainEvent::Case(CaseEvent::DecisionRecorded(_)))
                )
            })
        })
        .map(|c| c.position)
        .expect("a decision between the checkpoints")
}

/// The commits' bytes with the commit at `position` changed by `change`, and every later commit
/// of its stream re-linked to the new hashes: checksums and chains recomputed, as a forger
/// would.
pub fn forge(
    commits: &[RecordedCommit],
    position: u64,
    change: impl FnOnce(&mut Commit),
) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = commits.iter().map(|c| c.bytes.to_vec()).collect();
    let victim = &commits[(position - 1) as usize];
    let mut changed = victim.commit.clone();
    change(&mut changed);
    let bytes = commit::encode(&changed).unwrap();
    let stream = victim.commit.stream.as_str().to_owned();
    let mut head = (position, CommitHash::of(&bytes));
    out[(position - 1) as usize] = bytes;
    for c in &commits[position as usize..] {
        if c.commit.stream.as_str() != stream || c.commit.prev.map(|l| l.revision) != Some(head.0) {
            continue;
        }
        let mut relinked = c.commit.clone();
        if let Some(link) = &mut relinked.prev {
            link.hash = head.1;
        }
        let bytes = commit::encode(&relinked).unwrap();
        head = (c.position, CommitHash::of(&bytes));
        out[(c.position - 1) as usize] = bytes;
    }
    out
}

/// The decision at `position` with its officer replaced by someone never registered.
pub fn officer_changed(f: &AnchorFixture, position: u64) -> Vec<Vec<u8>> {
    forge(&f.commits, position, |c| {
        for event in &mut c.events {
            if let Ok(DomainEvent::Case(CaseEvent::DecisionRecorded(mut d))) = decode_event(event) {
                d.officer = PersonId(uuid::Uuid::new_v4());
                let id = event.id;
                *event =
                    encode_event(&DomainEvent::Case(CaseEvent::DecisionRecorded(d)), id).unwrap();
            }
        }
    })
}

/// The decision at `position` with its reasons rewritten: nothing the process rules judge.
pub fn reasons_changed(f: &AnchorFixture, position: u64) -> Vec<Vec<u8>> {
    forge(&f.commits, position, |c| {
        for event in &mut c.events {
            if let Ok(DomainEvent::Case(CaseEvent::DecisionRecorded(mut d))) = decode_event(event) {
                d.reasons = "rewritten after the fact".into();
                let id = event.id;
                *event =
                    encode_event(&DomainEvent::Case(CaseEvent::DecisionRecorded(d)), id).unwrap();
            }
        }
    })
}

/// Signed checkpoints of the given sizes over raw commit bytes.
pub fn sign_bytes(commits: &[Vec<u8>], skey: &str, sizes: &[u64]) -> Vec<String> {
    let mut tree = Tree::new();
    for c in commits {
        tree.push_commit(c);
    }
    let signer = docket_audit::CheckpointSigner::new(skey).unwrap();
    sizes
        .iter()
        .map(|&s| signer.sign(s, tree.root_at(s).unwrap()).unwrap().note)
        .collect()
}

/// The operator's export of a log of these commits with these checkpoints: the export tool
/// run with the deployment's key (so the manifest is signed), into `<dir>/export`.
pub fn operator_export(
    f: &AnchorFixture,
    commits: &[Vec<u8>],
    notes: &[String],
    upto: Option<u64>,
    dir: &Path,
) -> std::path::PathBuf {
    let log_dir = dir.join("log");
    let mut w = SegmentWriter::create(&log_dir, 1, 64 << 20).unwrap();
    for c in commits {
        w.push(c).unwrap();
    }
    w.finish().unwrap();
    let out = dir.join("export");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let log = FileLog::open(FileLogConfig::new(&log_dir)).await.unwrap();
        export_signed(&log, notes, &f.skey, upto, &out)
            .await
            .unwrap();
        log.close().await.unwrap();
    });
    out
}

fn run(f: &AnchorFixture, dir: &Path, options: &VerifyOptions) -> Report {
    let report = verify(dir, &f.verifier(), options);
    println!("{report}");
    report
}

fn assert_fails(report: &Report, position: u64, rule: &str) {
    let failure = report
        .first_failure
        .as_ref()
        .unwrap_or_else(|| panic!("expected {rule} at {position}, but it verified: {report}"));
    assert_eq!(
        (failure.position, failure.rule.as_str()),
        (position, rule),
        "{report}"
    );
    assert!(!report.ok);
    assert!(report.to_string().starts_with("FAILED"), "{report}");
}

/// Options with the fixture's two witnesses, quorum 2.
pub fn witnesses(f: &AnchorFixture) -> VerifyOptions {
    VerifyOptions {
        anchors: Anchors {
            witnesses: f.witness_verifiers(),
            quorum: 2,
            trusted: Vec::new(),
        },
        ..VerifyOptions::default()
    }
}

/// Options trusting these checkpoint notes.
pub fn trusting(notes: &[String]) -> VerifyOptions {
    VerifyOptions {
        anchors: Anchors {
            trusted: notes.to_vec(),
            ..Anchors::default()
        },
        ..VerifyOptions::default()
    }
}

fn allowing_tail(mut options: VerifyOptions) -> VerifyOptions {
    options.allow_unsigned_tail = true;
    options
}

#[test]
fn an_honest_export_with_2_of_2_witnesses_verifies() {
    let f = fixture();
    let n = f.head();
    let mut options = witnesses(f);
    options.anchors.trusted.push(f.note(n));
    let report = run(f, &f.export, &options);
    assert!(report.ok, "{report}");
    let c = &report.coverage;
    assert_eq!((c.head, c.signed_size, c.unsigned_commits), (n, n, 0));
    assert_eq!(c.witnessed_size, Some(n));
    assert_eq!(c.unwitnessed_commits, Some(0));
    assert_eq!(c.witness_quorum, 2);
    let names: Vec<&str> = c.witnessed_by.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["witness-a.test", "witness-b.test"]);
    assert_eq!(c.anchors.len(), 2);
    assert!(c.anchors.iter().all(|a| a.ok), "{report}");
    assert!(
        c.rests_on.contains("cosigned by 2 of the witnesses"),
        "{}",
        c.rests_on
    );
    assert!(report.rules["anchor"] >= 2);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["coverage"]["witnessed_size"], n);
    assert_eq!(json["coverage"]["anchors"][0]["kind"], "trusted_checkpoint");

    // One witness's cosignature stripped from the last checkpoint: 1 of 2 is enough for a
    // quorum of one, not for 2 of 2.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&f.export, dir.path());
    let last = f.sizes[f.sizes.len() - 1];
    let path = dir
        .path()
        .join(CHECKPOINTS_DIR)
        .join(checkpoint_file_name(last));
    let text = std::fs::read_to_string(&path).unwrap();
    let stripped: String = text
        .lines()
        .filter(|l| !l.starts_with("\u{2014} witness-b.test "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(stripped, text);
    std::fs::write(&path, stripped).unwrap();
    let mut one = witnesses(f);
    one.anchors.quorum = 1;
    assert!(run(f, dir.path(), &one).ok);
    let before = f.size_before(last);
    assert_fails(&run(f, dir.path(), &witnesses(f)), before + 1, "anchor");
    let allowed = run(f, dir.path(), &allowing_tail(witnesses(f)));
    assert!(allowed.ok, "{allowed}");
    assert_eq!(allowed.coverage.witnessed_size, Some(before));
    assert_eq!(allowed.coverage.unwitnessed_commits, Some(n - before));
}

#[test]
fn an_export_with_no_checkpoint_is_never_verified() {
    let f = fixture();
    // Its checkpoints/ emptied by hand: the signed manifest no longer matches, and nothing
    // signed covers the commits.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&f.export, dir.path());
    for entry in std::fs::read_dir(dir.path().join(CHECKPOINTS_DIR)).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let report = run(f, dir.path(), &allowing_tail(VerifyOptions::default()));
    assert!(!report.ok, "{report}");
    let rules: Vec<&str> = report.failures.iter().map(|x| x.rule.as_str()).collect();
    assert!(
        rules.contains(&"manifest") && rules.contains(&"coverage"),
        "{report}"
    );
    assert_eq!(report.coverage.signed_size, 0);

    // Made by the operator with the export tool and no checkpoint: still never verified, even
    // with an unsigned tail allowed.
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<Vec<u8>> = f.commits.iter().map(|c| c.bytes.to_vec()).collect();
    let export = operator_export(f, &bytes, &[], None, dir.path());
    for options in [
        VerifyOptions::default(),
        allowing_tail(VerifyOptions::default()),
    ] {
        let report = run(f, &export, &options);
        assert_fails(&report, 1, "coverage");
        assert_eq!(report.failures.len(), 1, "{report}");
        assert!(report.coverage.rests_on.starts_with("nothing"), "{report}");
    }
}

#[test]
fn blame_lands_on_the_checkpoint_not_the_officer() {
    let f = fixture();
    let p = decision_position(f);
    let forged = officer_changed(f, p);
    let dir = tempfile::tempdir().unwrap();
    // Every checkpoint kept: the one covering the decision no longer matches.
    let export = operator_export(f, &forged, &f.notes, None, dir.path());
    let report = run(f, &export, &VerifyOptions::default());
    let covering = f.size_from(p);
    assert_fails(&report, covering, "checkpoint_root");
    // The officer rule failed too, and is listed after the tampering it results from.
    assert_eq!(report.failures.len(), 2, "{report}");
    assert_eq!(
        (
            report.failures[1].position,
            report.failures[1].rule.as_str()
        ),
        (p, "decision_officer_trained")
    );
    assert_eq!(
        report.checkpoints_checked as usize,
        f.sizes.iter().filter(|s| **s < p).count()
    );
}

#[test]
fn a_rewrite_with_later_checkpoints_dropped_fails_its_tail_and_its_anchors() {
    let f = fixture();
    let n = f.head();
    let p = decision_position(f);
    let kept = f.size_before(p);
    let forged = officer_changed(f, p);
    let dir = tempfile::tempdir().unwrap();
    let export = operator_export(f, &forged, &f.notes_before(p), None, dir.path());

    // Alone: the unsigned tail fails.
    let report = run(f, &export, &VerifyOptions::default());
    assert_fails(&report, kept + 1, "coverage");
    // Allowed, it verifies on the process rules' word only, and the officer is blamed: nothing
    // signed contradicts the rewrite. The report says exactly how much is unsigned.
    let report = run(f, &export, &allowing_tail(VerifyOptions::default()));
    assert_fails(&report, p, "decision_officer_trained");
    assert_eq!(report.coverage.signed_size, kept);
    assert_eq!(report.coverage.unsigned_commits, n - kept);

    // A later checkpoint the auditor holds catches it, tail allowed or not.
    let later = f.size_from(p);
    for options in [
        trusting(&[f.note(later)]),
        allowing_tail(trusting(&[f.note(later)])),
    ] {
        let report = run(f, &export, &options);
        assert_fails(&report, later, "anchor");
        assert!(
            report
                .coverage
                .rests_on
                .starts_with("nothing: the export contradicts"),
            "{report}"
        );
    }
    // So do the witnesses: nothing they cosigned covers the rewritten part.
    assert_fails(&run(f, &export, &witnesses(f)), kept + 1, "anchor");

    // The same forgery by someone without the key, who moves the later checkpoint files aside
    // in the honest export: the signed manifest no longer matches.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&f.export, dir.path());
    let segments = dir.path().join(SEGMENTS_DIR);
    std::fs::remove_dir_all(&segments).unwrap();
    let mut w = SegmentWriter::create(&segments, 1, 64 << 20).unwrap();
    for c in &forged {
        w.push(c).unwrap();
    }
    w.finish().unwrap();
    let checkpoints = dir.path().join(CHECKPOINTS_DIR);
    for size in f.sizes.iter().filter(|s| **s >= p) {
        let name = checkpoint_file_name(*size);
        std::fs::rename(
            checkpoints.join(&name),
            checkpoints.join(format!("{name}.aside")),
        )
        .unwrap();
    }
    let report = run(f, dir.path(), &allowing_tail(VerifyOptions::default()));
    assert_fails(&report, 0, "manifest");
}

#[test]
fn a_rewrite_re_signed_with_the_deployments_own_key_is_caught_only_by_anchors() {
    let f = fixture();
    let p = decision_position(f);
    let forged = officer_changed(f, p);
    // The checkpoints before the rewrite are the honest, cosigned ones; every later one is
    // re-signed over the rewritten history with the deployment's key. No witness cosigns it.
    let mut notes = f.notes_before(p);
    let later: Vec<u64> = f.sizes.iter().copied().filter(|s| *s >= p).collect();
    notes.extend(sign_bytes(&forged, &f.skey, &later));
    let dir = tempfile::tempdir().unwrap();
    let export = operator_export(f, &forged, &notes, None, dir.path());

    // On its own word it is sound: every integrity check holds, and only the officer rule
    // fails (with the rules off, it verifies outright). The report says it rests on the
    // deployment's key alone.
    let report = run(f, &export, &VerifyOptions::default());
    assert_fails(&report, p, "decision_officer_trained");
    assert_eq!(report.failures.len(), 1, "{report}");
    let rules_off = VerifyOptions {
        process_rules: false,
        ..VerifyOptions::default()
    };
    let report = run(f, &export, &rules_off);
    assert!(report.ok, "{report}");
    assert!(
        report
            .coverage
            .rests_on
            .contains("no witness or trusted checkpoint anchors it"),
        "{report}"
    );

    // The witnesses: the last checkpoint they cosigned is before the rewrite.
    let kept = f.size_before(p);
    let mut options = witnesses(f);
    options.process_rules = false;
    let report = run(f, &export, &options);
    assert_fails(&report, kept + 1, "anchor");
    assert_eq!(report.coverage.witnessed_size, Some(kept));
    // A trusted checkpoint: the honest one of a size after the rewrite.
    let honest = f.size_from(p);
    let mut options = trusting(&[f.note(honest)]);
    options.process_rules = false;
    assert_fails(&run(f, &export, &options), honest, "anchor");
}

#[test]
fn a_rollback_to_an_early_checkpoint_is_caught_by_a_trusted_later_checkpoint() {
    let f = fixture();
    let n = f.head();
    let early = f.sizes[2];
    let bytes: Vec<Vec<u8>> = f.commits.iter().map(|c| c.bytes.to_vec()).collect();
    // The log cut at an early checkpoint, exported as the export tool's `--upto` does: every
    // checkpoint kept is honest and cosigned, so it verifies on its own and with witnesses.
    let dir = tempfile::tempdir().unwrap();
    let export = operator_export(f, &bytes, &f.notes, Some(early), dir.path());
    let report = run(f, &export, &VerifyOptions::default());
    assert!(report.ok, "{report}");
    assert_eq!(report.coverage.head, early);
    assert!(run(f, &export, &witnesses(f)).ok);
    // The witness's latest checkpoint (or any later one the auditor holds) catches it.
    let mut options = witnesses(f);
    options.anchors.trusted.push(f.note(n));
    let report = run(f, &export, &options);
    assert_fails(&report, early + 1, "anchor");
    assert!(report.first_failure.unwrap().message.contains("rollback"));

    // A rollback to a position between checkpoints: the export carries the next checkpoint and
    // the consistency proof to it, so it is fully signed; a trusted checkpoint of that size is
    // consistent with it, a later one is not.
    let cut = f.sizes[2] + 7;
    let next = f.size_from(cut);
    let dir = tempfile::tempdir().unwrap();
    let export = operator_export(f, &bytes, &f.notes, Some(cut), dir.path());
    let report = run(f, &export, &witnesses(f));
    assert!(report.ok, "{report}");
    let c = &report.coverage;
    assert_eq!((c.head, c.signed_size, c.proof_to), (cut, cut, Some(next)));
    assert_eq!(c.witnessed_size, Some(cut));
    assert!(run(f, &export, &trusting(&[f.note(next)])).ok);
    let report = run(f, &export, &trusting(&[f.note(n)]));
    assert_fails(&report, cut + 1, "anchor");
    let trusted = report
        .coverage
        .anchors
        .iter()
        .find(|a| a.kind == AnchorKind::TrustedCheckpoint)
        .unwrap();
    assert_eq!((trusted.size, trusted.ok), (Some(n), false));
}

#[test]
fn a_forged_trusted_checkpoint_is_no_anchor() {
    let f = fixture();
    // One signed by another key of the same origin is refused as an anchor.
    let (other, _) = docket_audit::note::generate_key(ORIGIN).unwrap();
    let bytes: Vec<Vec<u8>> = f.commits.iter().map(|c| c.bytes.to_vec()).collect();
    let forged = sign_bytes(&bytes, &other, &[f.head()]);
    assert_fails(&run(f, &f.export, &trusting(&forged)), 0, "anchor");
}

/// Rewrites `MANIFEST.json` with `change` applied, leaving `MANIFEST.note` as it was.
fn falsify(dir: &Path, change: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(MANIFEST_FILE);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    change(&mut manifest);
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

/// Signs `MANIFEST.note` again over the current `MANIFEST.json`, as the key's holder could.
fn reseal(skey: &str, dir: &Path) {
    use sha2::Digest;
    let manifest = std::fs::read(dir.join(MANIFEST_FILE)).unwrap();
    let sha: String = sha2::Sha256::digest(&manifest)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let old = std::fs::read_to_string(dir.join("MANIFEST.note")).unwrap();
    let body: String = old
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .map(|l| match l.strip_prefix("sha256 ") {
            Some(_) => format!("sha256 {sha}\n"),
            None => format!("{l}\n"),
        })
        .collect();
    let signer = signed_note::StandardSigner::new(skey).unwrap();
    let mut note = signed_note::Note::new(body.as_bytes(), &[]).unwrap();
    note.add_sigs(&[&signer]).unwrap();
    std::fs::write(dir.join("MANIFEST.note"), note.to_bytes()).unwrap();
}

#[test]
fn a_falsified_manifest_fails_even_re_signed() {
    let f = fixture();
    type Change = Box<dyn Fn(&mut serde_json::Value)>;
    let changes: Vec<(&str, Change)> = vec![
        (
            "commits",
            Box::new(|m| m["commits"] = (f.head() + 10).into()),
        ),
        ("events", Box::new(|m| m["events"] = 1.into())),
        ("streams", Box::new(|m| m["streams"] = 2.into())),
        (
            "origin",
            Box::new(|m| m["origin"] = "docket.other/log".into()),
        ),
        (
            "last commit time",
            Box::new(|m| m["last_commit_at"] = "2019-01-01T00:00:00+00:00".into()),
        ),
    ];
    for (what, change) in &changes {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&f.export, dir.path());
        falsify(dir.path(), change);
        // As left: the signature no longer covers the manifest.
        let report = run(f, dir.path(), &VerifyOptions::default());
        assert_fails(&report, 0, "manifest");
        let message = &report.first_failure.as_ref().unwrap().message;
        assert!(message.contains("SHA-256"), "{what}: {message}");
        assert!(message.contains(what), "{what}: {message}");
        // Signed again by the key's holder: the recomputed field still differs.
        reseal(&f.skey, dir.path());
        let report = run(f, dir.path(), &VerifyOptions::default());
        assert_fails(&report, 0, "manifest");
        let message = &report.first_failure.as_ref().unwrap().message;
        assert!(!message.contains("SHA-256"), "{what}: {message}");
        assert!(message.contains(what), "{what}: {message}");
    }
    // No MANIFEST.note, or one by another key: not signed.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&f.export, dir.path());
    std::fs::remove_file(dir.path().join("MANIFEST.note")).unwrap();
    assert_fails(
        &run(f, dir.path(), &VerifyOptions::default()),
        0,
        "manifest",
    );
    let unsigned = VerifyOptions {
        manifest_signed: false,
        ..VerifyOptions::default()
    };
    assert!(run(f, dir.path(), &unsigned).ok, "the fields alone hold");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&f.export, dir.path());
    let (other, _) = docket_audit::note::generate_key(ORIGIN).unwrap();
    reseal(&other, dir.path());
    assert_fails(
        &run(f, dir.path(), &VerifyOptions::default()),
        0,
        "manifest",
    );
}

#[test]
fn verify_without_anchors_reports_partial_coverage_truthfully() {
    let f = fixture();
    let n = f.head();
    let signed = f.sizes[f.sizes.len() / 2];
    let bytes: Vec<Vec<u8>> = f.commits.iter().map(|c| c.bytes.to_vec()).collect();
    let dir = tempfile::tempdir().unwrap();
    let export = operator_export(f, &bytes, &f.notes_before(signed + 1), None, dir.path());
    assert_fails(
        &run(f, &export, &VerifyOptions::default()),
        signed + 1,
        "coverage",
    );
    let report = run(f, &export, &allowing_tail(VerifyOptions::default()));
    assert!(report.ok, "{report}");
    let c = &report.coverage;
    assert_eq!(
        (
            c.head,
            c.signed_size,
            c.unsigned_commits,
            c.last_checkpoint_size
        ),
        (n, signed, n - signed, Some(signed))
    );
    assert!(c.unsigned_tail_allowed);
    assert_eq!(
        (c.proof_to, c.witnessed_size, c.unwitnessed_commits),
        (None, None, None)
    );
    assert!(c.anchors.is_empty() && c.witnesses.is_empty());
    assert!(
        c.rests_on.contains(&format!(
            "covering {signed} of {n} commits (the last {} are vouched for by no signature)",
            n - signed
        )),
        "{}",
        c.rests_on
    );
    assert!(c
        .rests_on
        .contains("no witness or trusted checkpoint anchors it"));
    let text = report.to_string();
    assert!(
        text.starts_with(&format!(
            "VERIFIED {} (the last {} commits are unsigned: allowed)",
            export.display(),
            n - signed
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "signed: {signed} of {n} commits, {} unsigned",
        n - signed
    )));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["coverage"]["unsigned_commits"], n - signed);
    assert_eq!(json["coverage"]["signed_size"], signed);
    assert_eq!(json["coverage"]["head"], n);
}

/// A log of note commits whose recorded times are `at(position)`, with a cadence declaration
/// at each position of `declared`; exported with checkpoints of `sizes`.
async fn cadence_export(
    dir: &Path,
    skey: &str,
    count: u64,
    declared: &[u64],
    at: impl Fn(u64) -> i64,
    sizes: &[u64],
) -> std::path::PathBuf {
    use docket_log::{EventData, EventLog, ExpectedRevision, Metadata, StreamId};
    let log = FileLog::open(FileLogConfig::new(dir.join("log")))
        .await
        .unwrap();
    for position in 1..=count {
        let (stream, type_name, payload) = if declared.contains(&position) {
            (
                "audit/checkpointer",
                "audit.checkpoint_cadence",
                br#"{"every_ms": 100, "every_commits": 10}"#.to_vec(),
            )
        } else {
            ("note/a", "note.written", b"a note".to_vec())
        };
        log.append(
            &StreamId::new(stream).unwrap(),
            ExpectedRevision::Any,
            vec![EventData {
                id: uuid::Uuid::new_v4(),
                type_name: type_name.into(),
                type_version: 1,
                payload: payload.into(),
            }],
            Metadata {
                recorded_at_micros: at(position),
                ..Metadata::default()
            },
        )
        .await
        .unwrap();
    }
    let commits = all_commits(&log).await;
    let notes = sign(&commits, skey, sizes);
    let out = dir.join("export");
    export_signed(&log, &notes, skey, None, &out).await.unwrap();
    log.close().await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gaps_longer_than_the_declared_cadence_are_reported() {
    let (skey, vkey) = docket_audit::note::generate_key(ORIGIN).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let base = 1_700_000_000_000_000i64;
    // Every 20 ms, and an hour's pause between 91 and 92; checkpoints 40..=70 withheld, and
    // the checkpointer declares its cadence at 1 and again (restarted) at 50.
    let at = |p: u64| base + p as i64 * 20_000 + if p >= 92 { 3_600_000_000 } else { 0 };
    let export = cadence_export(
        dir.path(),
        &skey,
        101,
        &[1, 50],
        at,
        &[10, 20, 30, 80, 90, 95, 101],
    )
    .await;
    let verifier = CheckpointVerifier::new(&vkey).unwrap();
    let report = verify(&export, &verifier, &VerifyOptions::default());
    println!("{report}");
    assert!(report.ok, "gaps are evidence, not failures: {report}");
    let c = &report.coverage;
    let positions: Vec<u64> = c.cadence.iter().map(|d| d.position).collect();
    assert_eq!(positions, [1, 50]);
    assert_eq!(
        (c.cadence[0].every_ms, c.cadence[0].every_commits),
        (100, 10)
    );
    let gaps: Vec<(u64, u64, u64, Option<u64>)> = c
        .gaps
        .iter()
        .map(|g| (g.after, g.until, g.commits, g.checkpointer_started_at))
        .collect();
    assert_eq!(
        gaps,
        [(30, 80, 50, Some(50)), (90, 95, 5, None)],
        "{report}"
    );
    assert!(c.gaps[1].span_ms >= 3_600_000, "{:?}", c.gaps[1]);
    assert!(c.gaps.iter().all(|g| !g.tail));
    assert!(
        c.rests_on.contains("2 gaps between checkpoints"),
        "{}",
        c.rests_on
    );
    assert!(report
        .to_string()
        .contains("gap after checkpoint 30: 50 commits"));

    // The same log with no declaration: nothing to judge by.
    let dir = tempfile::tempdir().unwrap();
    let export = cadence_export(dir.path(), &skey, 101, &[], at, &[10, 80, 101]).await;
    let report = verify(&export, &verifier, &VerifyOptions::default());
    assert!(report.ok, "{report}");
    assert!(report.coverage.gaps.is_empty() && report.coverage.cadence.is_empty());
}

#[test]
fn an_export_of_an_export_keeps_its_checkpoints_and_its_proof() {
    let f = fixture();
    let cut = f.sizes[3] + 11;
    let next = f.size_from(cut);
    let bytes: Vec<Vec<u8>> = f.commits.iter().map(|c| c.bytes.to_vec()).collect();
    let dir = tempfile::tempdir().unwrap();
    let first = operator_export(f, &bytes, &f.notes, Some(cut), dir.path());
    let proof = first
        .join(CHECKPOINTS_DIR)
        .join(docket_audit::export::consistency_file_name(cut, next));
    assert!(proof.exists());
    let (notes, proofs) = docket_audit::export::read_export_checkpoints(&first).unwrap();
    assert_eq!(notes.len(), f.sizes.iter().filter(|s| **s <= next).count());
    assert_eq!(proofs.len(), 1);
    // Exported again from its own segments: the same checkpoints and proof travel with it.
    let again = dir.path().join("again");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let summary = runtime.block_on(async {
        let log = FileLog::open(FileLogConfig::new(first.join(SEGMENTS_DIR)))
            .await
            .unwrap();
        let signer = docket_audit::CheckpointSigner::new(&f.skey).unwrap();
        let options = docket_audit::ExportOptions {
            checkpoints: &notes,
            proofs: &proofs,
            upto: None,
            signer: Some(&signer),
        };
        let summary = docket_audit::export(&log, &options, &again, |_, _| {})
            .await
            .unwrap();
        log.close().await.unwrap();
        summary
    });
    assert_eq!(
        (
            summary.signed_size,
            summary.proof_to,
            summary.unsigned_commits
        ),
        (cut, Some(next), 0)
    );
    let report = run(f, &again, &witnesses(f));
    assert!(report.ok, "{report}");
    assert_eq!(report.coverage.proof_to, Some(next));

    // A proof that does not hold is refused.
    let dir2 = tempfile::tempdir().unwrap();
    copy_dir(&again, dir2.path());
    let path = dir2
        .path()
        .join(CHECKPOINTS_DIR)
        .join(docket_audit::export::consistency_file_name(cut, next));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(0, 1);
    std::fs::write(&path, lines.join("\n")).unwrap();
    assert_fails(
        &run(f, dir2.path(), &VerifyOptions::default()),
        next,
        "checkpoint_consistency",
    );
    // Without its proof, the checkpoint beyond the head is refused.
    std::fs::remove_file(&path).unwrap();
    assert_fails(
        &run(f, dir2.path(), &VerifyOptions::default()),
        next,
        "checkpoint_size",
    );
}
