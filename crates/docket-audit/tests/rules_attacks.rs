//! The process rules recompute rather than trust: each attack of issue 12's "process rules"
//! list, made on the honest demo export as an operator who rewrites history would make it —
//! the commit changed, every later hash chain recomputed, every checkpoint re-signed over the
//! rewritten log (integrity anchors that would catch the re-signing are another test's
//! business) — fails `verify` at the changed commit, with the rule that recomputes what the
//! attack changed. The same forging with nothing changed verifies, so each failure is the
//! attack's.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Duration, TimeZone, Utc};
use docket_audit::rules::{RuleChecker, RuleSettings, PROCESS_RULES};
use docket_audit::tree::Tree;
use docket_audit::{verify, CheckpointSigner, CheckpointVerifier, Report, VerifyOptions};
use docket_domain::case::CaseEvent;
use docket_domain::events::{DomainEvent, Format};
use docket_domain::policy::PolicySet;
use docket_domain::review::ReviewEvent;
use docket_domain::Deadlines;
use docket_log::file::export::SegmentWriter;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::{
    commit, Commit, CommitHash, EventData, Metadata, RecordedCommit, StreamId, StreamLink,
};
use docket_runtime::decode_event;
use tempfile::TempDir;

use crate::export_verify::{export_signed, fixture, Fixture, ORIGIN};
use crate::tamper::assert_fails;

/// A rewritten export and the verifier of the key that re-signed it.
struct Forged {
    _dir: TempDir,
    export: PathBuf,
    verifier: CheckpointVerifier,
}

impl Forged {
    fn verify(&self) -> Report {
        let report = verify(&self.export, &self.verifier, &VerifyOptions::default());
        println!("{report}");
        report
    }
}

/// Recomputes every stream link of `commits` (positions from 1) and encodes them.
fn rechain(commits: &mut [Commit]) -> Vec<Vec<u8>> {
    let mut heads: HashMap<String, StreamLink> = HashMap::new();
    let mut out = Vec::with_capacity(commits.len());
    for (i, c) in commits.iter_mut().enumerate() {
        c.prev = heads.get(c.stream.as_str()).copied();
        let bytes = commit::encode(c).unwrap();
        heads.insert(
            c.stream.as_str().to_owned(),
            StreamLink {
                revision: i as u64 + 1,
                hash: CommitHash::of(&bytes),
            },
        );
        out.push(bytes);
    }
    out
}

/// The honest log with its commits changed by `change` (given the commits in log order), chains
/// recomputed, checkpoints re-signed at the honest sizes (the last one at the new head) by a new
/// key of the same origin, and exported by the export tool with that key, as the operator who
/// holds the deployment's key would.
fn forge(f: &Fixture, change: impl FnOnce(&mut Vec<Commit>)) -> Forged {
    let mut commits: Vec<Commit> = f.commits.iter().map(|c| c.commit.clone()).collect();
    change(&mut commits);
    let bytes = rechain(&mut commits);
    let head = bytes.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("log");
    let mut w = SegmentWriter::create(&log_dir, 1, 64 << 20).unwrap();
    for b in &bytes {
        w.push(b).unwrap();
    }
    w.finish().unwrap();
    let (skey, vkey) = docket_audit::note::generate_key(ORIGIN).unwrap();
    let signer = CheckpointSigner::new(&skey).unwrap();
    let mut tree = Tree::new();
    for b in &bytes {
        tree.push_commit(b);
    }
    let mut sizes: Vec<u64> = f.sizes.iter().copied().filter(|s| *s < head).collect();
    sizes.push(head);
    let notes: Vec<String> = sizes
        .iter()
        .map(|size| {
            signer
                .sign(*size, tree.root_at(*size).unwrap())
                .unwrap()
                .note
        })
        .collect();
    let export = dir.path().join("export");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let log = FileLog::open(FileLogConfig::new(&log_dir)).await.unwrap();
        let summary = export_signed(&log, &notes, &skey, None, &export)
            .await
            .unwrap();
        assert_eq!(summary.manifest.head, head);
        log.close().await.unwrap();
    });
    Forged {
        _dir: dir,
        export,
        verifier: CheckpointVerifier::new(&vkey).unwrap(),
    }
}

/// The position (1-based) and event of the first domain event `pick` accepts.
fn find<T>(f: &Fixture, pick: impl Fn(&DomainEvent) -> Option<T>) -> (u64, T) {
    f.commits
        .iter()
        .find_map(|c| {
            c.commit
                .events
                .iter()
                .filter_map(|e| decode_event(e).ok())
                .find_map(|e| pick(&e))
                .map(|t| (c.position, t))
        })
        .expect("the demo log holds such an event")
}

/// Replaces the only event of commit `k` (1-based) with `event`, keeping its id.
fn replace_event(commits: &mut [Commit], k: u64, event: &DomainEvent) {
    let data = &mut commits[(k - 1) as usize].events[0];
    assert_eq!(data.type_name, event.name());
    data.payload = event.encode(Format::Postcard).unwrap().into();
}

fn micros_at(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

#[test]
fn the_honest_log_forged_with_nothing_changed_verifies_with_every_new_rule_exercised() {
    let f = fixture();
    let forged = forge(f, |_| {});
    let report = forged.verify();
    assert!(report.ok, "{report}");
    for rule in PROCESS_RULES {
        assert!(
            report.rules.get(rule).copied().unwrap_or(0) > 0,
            "{rule} never checked: {report}"
        );
    }
    assert_eq!(
        report.rules["event_id_unique"],
        f.commits
            .iter()
            .map(|c| c.commit.events.len() as u64)
            .sum::<u64>()
    );
    assert_eq!(report.rules["commit_time_order"], f.commits.len() as u64);
    // And the pristine export, as exported and signed, verifies too.
    let dir = f.fresh();
    let pristine = verify(dir.path(), &f.verifier(), &VerifyOptions::default());
    assert!(pristine.ok, "{pristine}");
}

#[test]
fn a_commit_redated_to_2019_fails_commit_time_order_there() {
    let f = fixture();
    let k = f.commits.len() as u64 * 3 / 4;
    let forged = forge(f, |commits| {
        commits[(k - 1) as usize].metadata.recorded_at_micros =
            micros_at(Utc.with_ymd_and_hms(2019, 6, 1, 9, 0, 0).unwrap());
    });
    let report = forged.verify();
    assert_fails(&report, k, "commit_time_order");
    assert!(
        report
            .first_failure
            .as_ref()
            .unwrap()
            .message
            .contains("2019-06-01"),
        "{report}"
    );
    // The integrity checks held up to there (the first checkpoint too): only the process rule
    // saw it. (Whether verify goes on past a process failure is verify's business.)
    assert!(report.commits_checked >= k, "{report}");
    assert!(report.checkpoints_checked >= 1, "{report}");
}

#[test]
fn an_event_time_that_disagrees_with_its_commit_fails_event_time() {
    let f = fixture();
    // A decision dated two days before the commit that recorded it.
    let (k, decision) = find(f, |e| match e {
        DomainEvent::Case(CaseEvent::DecisionRecorded(d)) => Some(d.clone()),
        _ => None,
    });
    let forged = forge(f, |commits| {
        let mut d = decision.clone();
        d.at -= Duration::days(2);
        replace_event(
            commits,
            k,
            &DomainEvent::Case(CaseEvent::DecisionRecorded(d)),
        );
    });
    assert_fails(&forged.verify(), k, "event_time");

    // The commit's time moved an hour on instead (later than every commit before it, so time
    // still only goes forward there): the event no longer agrees.
    let forged = forge(f, |commits| {
        commits[(k - 1) as usize].metadata.recorded_at_micros += 3_600_000_000;
    });
    assert_fails(&forged.verify(), k, "event_time");
}

#[test]
fn every_recorded_due_time_moved_fails_deadline_recomputed_at_its_step() {
    let f = fixture();
    let later = Duration::days(3);
    type Move = fn(&mut ReviewEvent, Duration) -> bool;
    let moves: [(&str, Move); 6] = [
        ("acknowledge_due", |e, by| match e {
            ReviewEvent::Requested(r) => {
                r.acknowledge_due += by;
                true
            }
            _ => false,
        }),
        ("tier-1 decision_due", |e, by| match e {
            ReviewEvent::Requested(r) => {
                r.decision_due += by;
                true
            }
            _ => false,
        }),
        ("prioritised decision_due", |e, by| match e {
            ReviewEvent::Prioritised(p) => match &mut p.decision_due {
                Some(d) => {
                    d.due += by;
                    true
                }
                None => false,
            },
            _ => false,
        }),
        ("tier2_request_closes", |e, by| match e {
            ReviewEvent::Tier1Decided(t) => {
                t.tier2_request_closes += by;
                true
            }
            _ => false,
        }),
        ("tier-2 decision_due", |e, by| match e {
            ReviewEvent::Tier2Requested(t) => {
                t.decision_due += by;
                true
            }
            _ => false,
        }),
        ("a miss's due", |e, by| match e {
            ReviewEvent::DeadlineMissed(m) => {
                m.due -= by;
                true
            }
            _ => false,
        }),
    ];
    for (what, moved) in moves {
        let (k, event) = find(f, |e| match e {
            DomainEvent::Review(r) => {
                let mut r = r.clone();
                moved(&mut r, later).then_some(r)
            }
            _ => None,
        });
        let forged = forge(f, |commits| {
            replace_event(commits, k, &DomainEvent::Review(event));
        });
        let report = forged.verify();
        println!("{what}: position {k}");
        assert_fails(&report, k, "deadline_recomputed");
    }
}

#[test]
fn an_acknowledge_due_pushed_later_fails_at_the_request_even_with_nothing_late() {
    let f = fixture();
    let (k, request) = find(f, |e| match e {
        DomainEvent::Review(ReviewEvent::Requested(r)) => Some(r.clone()),
        _ => None,
    });
    let forged = forge(f, |commits| {
        let mut r = request.clone();
        r.acknowledge_due += Duration::days(30);
        replace_event(commits, k, &DomainEvent::Review(ReviewEvent::Requested(r)));
    });
    let report = forged.verify();
    assert_fails(&report, k, "deadline_recomputed");
    let message = &report.first_failure.as_ref().unwrap().message;
    assert!(message.contains("acknowledge_due"), "{message}");
    assert!(message.contains("business day"), "{message}");
}

#[test]
fn a_miss_recorded_before_its_due_time_fails_deadline_met_or_missed() {
    let f = fixture();
    // The scheduler recorded the miss forty days on; moved to just after its review's last
    // step before that, and dated then (so that time still only goes forward), it claims a
    // deadline missed that had not yet passed.
    let (m, _) = find(f, |e| match e {
        DomainEvent::Review(ReviewEvent::DeadlineMissed(d)) => Some(d.deadline),
        _ => None,
    });
    let stream = f.commits[(m - 1) as usize].commit.stream.clone();
    let before = f.commits[..(m - 1) as usize]
        .iter()
        .rev()
        .find(|c| c.commit.stream == stream)
        .unwrap();
    let then = before.commit.metadata.recorded_at_micros;
    let forged = forge(f, |commits| {
        let mut miss = commits.remove((m - 1) as usize);
        let DomainEvent::Review(ReviewEvent::DeadlineMissed(mut event)) =
            decode_event(&miss.events[0]).unwrap()
        else {
            unreachable!()
        };
        event.at = DateTime::<Utc>::from_timestamp_micros(then).unwrap();
        miss.metadata.recorded_at_micros = then;
        miss.events[0].payload = DomainEvent::Review(ReviewEvent::DeadlineMissed(event))
            .encode(Format::Postcard)
            .unwrap()
            .into();
        commits.insert(before.position as usize, miss);
    });
    let report = forged.verify();
    assert_fails(&report, before.position + 1, "deadline_met_or_missed");
    assert!(
        report
            .first_failure
            .as_ref()
            .unwrap()
            .message
            .contains("before it was due"),
        "{report}"
    );
}

#[test]
fn a_laundered_departure_fails_departure_approved_at_the_decision() {
    let f = fixture();
    // A departure that needed and had a supervisor's approval; the decision's own record of it
    // nulled: guidance, departure, approver.
    let (k, decision) = find(f, |e| match e {
        DomainEvent::Case(CaseEvent::DecisionRecorded(d))
            if d.departure.is_some_and(|x| x.needs_approval) && d.approved_by.is_some() =>
        {
            Some(d.clone())
        }
        _ => None,
    });
    let forged = forge(f, |commits| {
        let mut d = decision.clone();
        d.guidance = None;
        d.departure = None;
        d.approved_by = None;
        replace_event(
            commits,
            k,
            &DomainEvent::Case(CaseEvent::DecisionRecorded(d)),
        );
    });
    let report = forged.verify();
    assert_fails(&report, k, "departure_approved");
    let message = &report.first_failure.as_ref().unwrap().message;
    assert!(
        message.contains("needs a supervisor's approval"),
        "{message}"
    );

    // Nulling only the guidance and departure (the approval kept) is caught too: the record
    // disagrees with the re-derivation.
    let forged = forge(f, |commits| {
        let mut d = decision.clone();
        d.guidance = None;
        d.departure = None;
        replace_event(
            commits,
            k,
            &DomainEvent::Case(CaseEvent::DecisionRecorded(d)),
        );
    });
    let report = forged.verify();
    assert_fails(&report, k, "departure_approved");
    assert!(
        report
            .first_failure
            .as_ref()
            .unwrap()
            .message
            .contains("re-derived"),
        "{report}"
    );

    // `audit consistency` and `verify` agree: the laundered decision is a departure without
    // approval there too.
    let mut d = decision.clone();
    d.guidance = None;
    d.departure = None;
    d.approved_by = None;
    let mut commits: Vec<Commit> = f.commits.iter().map(|c| c.commit.clone()).collect();
    replace_event(
        &mut commits,
        k,
        &DomainEvent::Case(CaseEvent::DecisionRecorded(d)),
    );
    let recorded: Vec<RecordedCommit> = rechain(&mut commits)
        .into_iter()
        .enumerate()
        .map(|(i, b)| RecordedCommit::decode(i as u64 + 1, b.into()).unwrap())
        .collect();
    let consistency =
        docket_audit::inspect::consistency(recorded, &PolicySet::shipped().unwrap()).unwrap();
    let check = consistency
        .decisions
        .iter()
        .find(|c| c.position == k)
        .unwrap();
    assert!(check.departs && check.approved_by.is_none() && !check.agrees_with_record);
}

#[test]
fn a_decision_re_appended_with_its_event_id_fails_event_id_unique_at_the_copy() {
    let f = fixture();
    let (k, _) = find(f, |e| match e {
        DomainEvent::Case(CaseEvent::DecisionRecorded(d)) => Some(d.decision),
        _ => None,
    });
    let n = f.commits.len() as u64;
    let last_time = f.commits.last().unwrap().commit.metadata.recorded_at_micros;
    let forged = forge(f, |commits| {
        let mut copy = commits[(k - 1) as usize].clone();
        // Dated with the last commit, so that time itself does not give it away.
        copy.metadata.recorded_at_micros = last_time;
        commits.push(copy);
    });
    let report = forged.verify();
    assert_fails(&report, n + 1, "event_id_unique");
    let message = &report.first_failure.as_ref().unwrap().message;
    assert!(message.contains(&format!("position {k}")), "{message}");
}

#[test]
fn the_checkpointers_audit_stream_is_not_judged_by_the_process_rules() {
    let f = fixture();
    // A cadence declaration dated long before everything else, with an event id the log
    // already holds: neither is the process's business.
    let reused = f.commits[0].commit.events[0].id;
    let forged = forge(f, |commits| {
        commits.push(Commit {
            stream: StreamId::new("audit/checkpointer").unwrap(),
            prev: None,
            metadata: Metadata {
                actor: Some("docket-checkpointer".into()),
                recorded_at_micros: micros_at(Utc.with_ymd_and_hms(2019, 1, 1, 0, 0, 0).unwrap()),
                ..Metadata::default()
            },
            events: vec![EventData {
                id: reused,
                type_name: "audit.checkpoint_cadence".into(),
                type_version: 1,
                payload: br#"{"every_ms":100,"every_commits":1000}"#.to_vec().into(),
            }],
        });
    });
    let report = forged.verify();
    assert!(report.ok, "{report}");
    // The same commit on a stream of another kind is judged.
    let forged = forge(f, |commits| {
        let mut c = commits.last().unwrap().clone();
        c.stream = StreamId::new("note/checkpointer").unwrap();
        c.events[0].id = reused;
        commits.push(c);
    });
    assert_fails(
        &forged.verify(),
        f.commits.len() as u64 + 1,
        "event_id_unique",
    );
}

/// Commits of one non-domain stream at the given times (µs), with fresh event ids.
fn notes(times: &[i64]) -> Vec<RecordedCommit> {
    let mut commits: Vec<Commit> = times
        .iter()
        .map(|t| Commit {
            stream: StreamId::new("note/times").unwrap(),
            prev: None,
            metadata: Metadata {
                recorded_at_micros: *t,
                ..Metadata::default()
            },
            events: vec![EventData {
                id: uuid::Uuid::new_v4(),
                type_name: "note.written".into(),
                type_version: 1,
                payload: b"x".to_vec().into(),
            }],
        })
        .collect();
    rechain(&mut commits)
        .into_iter()
        .enumerate()
        .map(|(i, b)| RecordedCommit::decode(i as u64 + 1, b.into()).unwrap())
        .collect()
}

/// The first failure of a checker over `commits`, as (position, rule).
fn first_failure(
    mut checker: RuleChecker,
    commits: &[RecordedCommit],
) -> Option<(u64, &'static str)> {
    for c in commits {
        if let Err(f) = checker.check_commit(c) {
            return Some((f.position, f.rule));
        }
    }
    checker.finish().err().map(|f| (f.position, f.rule))
}

#[test]
fn commit_times_may_go_back_by_the_tolerance_and_no_more() {
    let policies = PolicySet::shipped().unwrap();
    let s = 1_000_000;
    let t0 = 1_709_553_600 * s;
    // (times, tolerance in s, expected first failure)
    type Case<'a> = (&'a [i64], i64, Option<(u64, &'a str)>);
    let cases: [Case; 6] = [
        (&[t0, t0, t0 + s, t0 + 2 * s], 5, None),
        (&[t0, t0 + 10 * s, t0 + 5 * s], 5, None),
        (
            &[t0, t0 + 10 * s, t0 + 5 * s - 1],
            5,
            Some((3, "commit_time_order")),
        ),
        // The latest time counts, not the previous commit's.
        (
            &[t0, t0 + 10 * s, t0 + 6 * s, t0 + 4 * s],
            5,
            Some((4, "commit_time_order")),
        ),
        (
            &[t0, t0 + 10 * s, t0 + 5 * s],
            0,
            Some((3, "commit_time_order")),
        ),
        (&[t0, t0 + 10 * s, t0 + 5 * s], 60, None),
    ];
    for (times, tolerance, expected) in cases {
        let checker = RuleChecker::with_settings(RuleSettings {
            commit_time_tolerance: Duration::seconds(tolerance),
            ..RuleSettings::new(policies.clone())
        });
        assert_eq!(
            first_failure(checker, &notes(times)),
            expected,
            "{times:?} with {tolerance} s"
        );
    }
}

#[test]
fn deadlines_are_recomputed_with_the_configuration_the_checker_is_given() {
    let f = fixture();
    let policies = PolicySet::shipped().unwrap();
    let honest = RuleChecker::new(policies.clone(), Duration::zero());
    assert_eq!(first_failure(honest, &f.commits), None);
    // The deployment ran with the defaults: judged by another configuration, the first request
    // fails.
    let (request, _) = find(f, |e| match e {
        DomainEvent::Review(ReviewEvent::Requested(r)) => Some(r.review),
        _ => None,
    });
    let other = RuleChecker::with_settings(RuleSettings {
        deadlines: Deadlines {
            acknowledge_business_days: 2,
            ..Deadlines::default()
        },
        ..RuleSettings::new(policies.clone())
    });
    assert_eq!(
        first_failure(other, &f.commits),
        Some((request, "deadline_recomputed"))
    );
    // An event time tolerance of zero still passes: the services stamp the event and the commit
    // from one reading of their clock.
    let strict = RuleChecker::with_settings(RuleSettings {
        event_time_tolerance: Duration::zero(),
        commit_time_tolerance: Duration::zero(),
        ..RuleSettings::new(policies)
    });
    assert_eq!(first_failure(strict, &f.commits), None);
}
