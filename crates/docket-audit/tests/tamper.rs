//! Tampering with an honest export, one way at a time, on a fresh copy each: `verify` fails
//! every time and names the position and the rule. And a log whose process broke (a review's
//! acknowledgement deadline passed with no acknowledgement and no miss recorded) fails its rule
//! at the request.

use std::path::Path;

use docket_audit::export::{checkpoint_file_name, CHECKPOINTS_DIR, SEGMENTS_DIR};
use docket_audit::{verify, Report, VerifyOptions};
use docket_log::commit;
use docket_log::file::export::{SegmentReader, SegmentWriter};
use docket_log::file::FileLog;
use docket_log::{CommitHash, EventData, EventLog, ExpectedRevision, Metadata, StreamId};
use docket_log::{RecordedCommit, StreamLink};

use crate::export_verify::{all_commits, demo_log, export_signed, fixture, sign, Fixture, ORIGIN};

fn check(f: &Fixture, dir: &Path) -> Report {
    let report = verify(dir, &f.verifier(), &VerifyOptions::default());
    println!("{report}");
    report
}

pub(crate) fn assert_fails(report: &Report, position: u64, rule: &str) {
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
}

/// The export's only segment file (the demo log is far smaller than a segment).
fn segment_path(dir: &Path) -> std::path::PathBuf {
    let segments = SegmentReader::open(&dir.join(SEGMENTS_DIR)).unwrap();
    assert_eq!(segments.segments().len(), 1);
    segments.segments()[0].1.clone()
}

/// Replaces the export's segments with the given commits' bytes, renumbered from 1.
fn rewrite(dir: &Path, commits: &[Vec<u8>]) {
    let segments = dir.join(SEGMENTS_DIR);
    std::fs::remove_dir_all(&segments).unwrap();
    let mut w = SegmentWriter::create(&segments, 1, 64 << 10).unwrap();
    for c in commits {
        w.push(c).unwrap();
    }
    w.finish().unwrap();
}

fn bytes_of(f: &Fixture) -> Vec<Vec<u8>> {
    f.commits.iter().map(|c| c.bytes.to_vec()).collect()
}

/// A position `k` after the first checkpoint whose next commit is the next of the same stream.
fn adjacent_pair(f: &Fixture) -> u64 {
    f.commits
        .windows(2)
        .find(|w| {
            w[0].position > f.sizes[0]
                && w[1].commit.prev.map(|l| l.revision) == Some(w[0].position)
        })
        .map(|w| w[0].position)
        .expect("two adjacent commits of one stream after the first checkpoint")
}

#[test]
fn the_pristine_export_verifies() {
    let f = fixture();
    let dir = f.fresh();
    assert!(check(f, dir.path()).ok);
}

#[test]
fn a_flipped_byte_fails_its_checksum() {
    let f = fixture();
    let dir = f.fresh();
    let k = f.sizes[0] + 5;
    let path = segment_path(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let offset: usize = 24
        + f.commits[..(k - 1) as usize]
            .iter()
            .map(|c| 8 + c.bytes.len())
            .sum::<usize>()
        + 8
        + f.commits[(k - 1) as usize].bytes.len() / 2;
    bytes[offset] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let report = check(f, dir.path());
    assert_fails(&report, k, "checksum");
    assert_eq!(report.commits_checked, k - 1);
    assert_eq!(report.checkpoints_checked, 1, "the first checkpoint held");
}

#[test]
fn a_dropped_commit_breaks_the_hash_chain_where_it_was() {
    let f = fixture();
    let dir = f.fresh();
    let k = adjacent_pair(f);
    let mut commits = bytes_of(f);
    commits.remove((k - 1) as usize);
    rewrite(dir.path(), &commits);
    assert_fails(&check(f, dir.path()), k, "hash_chain");
}

#[test]
fn swapped_commits_break_the_hash_chain() {
    let f = fixture();
    let dir = f.fresh();
    let k = adjacent_pair(f);
    let mut commits = bytes_of(f);
    commits.swap((k - 1) as usize, k as usize);
    rewrite(dir.path(), &commits);
    assert_fails(&check(f, dir.path()), k, "hash_chain");
}

#[test]
fn a_truncated_last_segment_names_the_cut_commit() {
    let f = fixture();
    let dir = f.fresh();
    let path = segment_path(dir.path());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let report = check(f, dir.path());
    let n = f.commits.len() as u64;
    assert_fails(&report, n, "checksum");
    assert!(
        report
            .first_failure
            .as_ref()
            .unwrap()
            .message
            .contains("truncated"),
        "{report}"
    );
    // Reading never repairs: the file is as it was left.
    assert_eq!(std::fs::read(&path).unwrap().len(), bytes.len() - 3);
}

#[test]
fn a_checkpoint_re_signed_by_another_key_of_the_same_origin_is_refused() {
    let f = fixture();
    let dir = f.fresh();
    let (other, _) = docket_audit::note::generate_key(ORIGIN).unwrap();
    let size = f.sizes[1];
    let forged = sign(&f.commits, &other, &[size]).remove(0);
    assert!(forged.starts_with(ORIGIN));
    std::fs::write(
        dir.path()
            .join(CHECKPOINTS_DIR)
            .join(checkpoint_file_name(size)),
        forged,
    )
    .unwrap();
    let report = check(f, dir.path());
    assert_fails(&report, size, "checkpoint_signature");
    assert_eq!(report.checkpoints_checked, 1);
}

/// A commit re-encoded with a valid checksum, changed as `change` says.
fn reencoded(c: &RecordedCommit, change: impl FnOnce(&mut docket_log::Commit)) -> Vec<u8> {
    let mut commit = c.commit.clone();
    change(&mut commit);
    let bytes = commit::encode(&commit).unwrap();
    assert!(commit::check(&bytes).is_ok());
    bytes
}

#[test]
fn a_forged_commit_appended_with_a_valid_checksum_breaks_the_chain() {
    let f = fixture();
    let dir = f.fresh();
    let last = f.commits.last().unwrap();
    let forged = reencoded(last, |c| {
        c.prev = Some(StreamLink {
            revision: last.position,
            hash: CommitHash([7; 32]),
        });
        c.metadata.actor = Some("forger".into());
    });
    let mut commits = bytes_of(f);
    commits.push(forged);
    rewrite(dir.path(), &commits);
    let n = f.commits.len() as u64;
    let report = check(f, dir.path());
    assert_fails(&report, n + 1, "hash_chain");
    assert_eq!(report.checkpoints_checked, 2);

    // Chained correctly, it is caught by the manifest (no checkpoint covers it yet).
    let dir = f.fresh();
    let chained = reencoded(last, |c| {
        c.prev = Some(StreamLink {
            revision: last.position,
            hash: last.hash(),
        });
        c.events[0].id = uuid::Uuid::new_v4();
    });
    let mut commits = bytes_of(f);
    commits.push(chained);
    rewrite(dir.path(), &commits);
    assert_fails(&check(f, dir.path()), n + 1, "manifest");
}

#[test]
fn a_commit_replaced_with_a_valid_checksum_breaks_the_merkle_root() {
    let f = fixture();
    let dir = f.fresh();
    // The last commit of its stream, before the first checkpoint: nothing links to it, so only
    // the tree can tell.
    let s1 = f.sizes[0];
    let victim = f.commits[..s1 as usize]
        .iter()
        .rev()
        .find(|c| {
            !f.commits
                .iter()
                .any(|later| later.commit.prev.map(|l| l.revision) == Some(c.position))
        })
        .expect("a stream's last commit before the first checkpoint");
    let forged = reencoded(victim, |c| {
        c.metadata.actor = Some("someone else".into());
    });
    let mut commits = bytes_of(f);
    commits[(victim.position - 1) as usize] = forged;
    rewrite(dir.path(), &commits);
    let report = check(f, dir.path());
    assert_fails(&report, s1, "checkpoint_root");
    assert_eq!(report.checkpoints_checked, 0);

    // One with a successor in its stream breaks that successor's link first, if it comes
    // before the checkpoint.
    let dir = f.fresh();
    let (victim, successor) = f.commits[..s1 as usize]
        .iter()
        .find_map(|c| {
            f.commits[..s1 as usize]
                .iter()
                .find(|later| later.commit.prev.map(|l| l.revision) == Some(c.position))
                .map(|s| (c, s.position))
        })
        .expect("a commit with a successor before the first checkpoint");
    let mut commits = bytes_of(f);
    commits[(victim.position - 1) as usize] = reencoded(victim, |c| {
        c.metadata.recorded_at_micros += 1;
    });
    rewrite(dir.path(), &commits);
    assert_fails(&check(f, dir.path()), successor, "hash_chain");
}

#[test]
fn a_review_left_unacknowledged_past_its_deadline_fails_at_the_request() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (log_dir, commits, expected) = runtime.block_on(async {
        let log_dir = tempfile::tempdir().unwrap();
        let log: FileLog = demo_log(log_dir.path(), false).await;
        // Forty days later something else is recorded; no scheduler ran in between.
        let last = all_commits(&log)
            .await
            .last()
            .unwrap()
            .commit
            .metadata
            .recorded_at_micros;
        log.append(
            &StreamId::new("note/later").unwrap(),
            ExpectedRevision::NoStream,
            vec![EventData {
                id: uuid::Uuid::new_v4(),
                type_name: "note.written".into(),
                type_version: 1,
                payload: b"forty days on".to_vec().into(),
            }],
            Metadata {
                recorded_at_micros: last + 40 * 24 * 3600 * 1_000_000,
                ..Metadata::default()
            },
        )
        .await
        .unwrap();
        let commits = all_commits(&log).await;
        // The earliest request whose deadlines were left running, and whether the
        // acknowledgement is among them.
        let mut world = docket_runtime::WorldView::default();
        for c in &commits {
            docket_runtime::apply_commit(&mut world, c).unwrap();
        }
        let expected = world
            .reviews
            .iter()
            .filter(|(_, (_, r))| !r.due().is_empty())
            .map(|(stream, (_, r))| {
                let request = commits
                    .iter()
                    .find(|c| c.commit.stream.as_str() == stream)
                    .unwrap()
                    .position;
                let ack = r
                    .due()
                    .iter()
                    .any(|(k, _)| *k == docket_domain::review::DeadlineKind::Acknowledge);
                (request, ack)
            })
            .min()
            .unwrap();
        log.close().await.unwrap();
        (log_dir, commits, expected)
    });
    let (skey, vkey) = docket_audit::note::generate_key(ORIGIN).unwrap();
    let n = commits.len() as u64;
    let notes = sign(&commits, &skey, &[n / 2, n]);
    let out = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let log = FileLog::open(docket_log::file::FileLogConfig::new(log_dir.path()))
            .await
            .unwrap();
        export_signed(&log, &notes, &skey, None, out.path())
            .await
            .unwrap();
        log.close().await.unwrap();
    });
    let verifier = docket_audit::CheckpointVerifier::new(&vkey).unwrap();
    let report = verify(out.path(), &verifier, &VerifyOptions::default());
    println!("{report}");
    let (position, ack) = expected;
    let rule = if ack {
        "review_acknowledged"
    } else {
        "deadline_met_or_missed"
    };
    assert_fails(&report, position, rule);
    // Every integrity check held: only the process failed.
    assert_eq!(report.commits_checked, n);
    assert_eq!(report.checkpoints_checked, 2);
    // With grace beyond the forty days, the same export verifies.
    let lenient = VerifyOptions {
        deadline_grace: chrono::Duration::days(60),
        ..VerifyOptions::default()
    };
    assert!(verify(out.path(), &verifier, &lenient).ok);
}
