//! The one integration-test binary of `docket-runtime`: commands executed against a real log
//! (file and JetStream), state rebuilt on restart, idempotent retries, races between processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use docket_domain::case::{Case, CaseCommand, Encounter};
use docket_domain::officer::{Officer, OfficerCommand};
use docket_domain::policy::PolicySet;
use docket_domain::representation::{
    Representation, RepresentationCommand, RepresentativeCapacity,
};
use docket_domain::review::{RequesterCapacity, Review, ReviewCommand, Stage};
use docket_domain::values::*;
use docket_domain::Directory;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::EventLog;
use docket_runtime::{ExecError, Executor, ExecutorConfig, World};
use uuid::Uuid;

mod metrics;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 5, 15, 0, 0).unwrap()
}

fn who(n: u128, role: Role) -> Actor {
    Actor {
        person: PersonId(Uuid::from_u128(n)),
        role,
    }
}

const FOD: u128 = 10;
const OFFICER: u128 = 11;
const SUPERVISOR: u128 = 12;
const REVIEWER: u128 = 13;
const CLERK: u128 = 14;
const REP: u128 = 15;

async fn executor<L: EventLog + Clone + Send + Sync + 'static>(log: L) -> Executor<L> {
    let world = World::new();
    world.follow(log.clone());
    let head = log.head().await.unwrap();
    world
        .wait_until(head, Duration::from_secs(10))
        .await
        .unwrap();
    Executor::new(
        log,
        world,
        ExecutorConfig::new(PolicySet::shipped().unwrap()),
    )
}

fn a_number() -> ANumber {
    ANumber::parse("A012345678").unwrap()
}

/// Registers and trains the staff; returns the case id.
async fn staff<L: EventLog + Clone + Send + Sync + 'static>(ex: &Executor<L>) {
    for (n, role) in [
        (OFFICER, Role::Officer),
        (SUPERVISOR, Role::Supervisor),
        (REVIEWER, Role::FirstTierReviewer),
    ] {
        let person = PersonId(Uuid::from_u128(n));
        let id = person.to_string();
        ex.execute::<Officer>(
            &id,
            &OfficerCommand::Register {
                person,
                office: FieldOffice::Nyc,
                role,
            },
            who(FOD, Role::FieldOfficeDirector),
            None,
            now(),
        )
        .await
        .unwrap();
        ex.execute::<Officer>(
            &id,
            &OfficerCommand::CompleteTraining {
                policy_version: "2021-09-30".into(),
                module: "web-based".into(),
                completed_on: NaiveDate::from_ymd_opt(2021, 11, 20).unwrap(),
            },
            who(FOD, Role::FieldOfficeDirector),
            None,
            now(),
        )
        .await
        .unwrap();
    }
}

fn open(case: CaseId) -> CaseCommand {
    CaseCommand::Open {
        case,
        a_number: a_number(),
        office: FieldOffice::Nyc,
        encounter: Encounter {
            at: now() - chrono::Duration::hours(3),
            location: "Queens".into(),
            place: EncounterPlace::Interior,
            manner_of_entry: MannerOfEntry::EnteredUnlawfully,
            entry_date: NaiveDate::from_ymd_opt(2012, 1, 1),
            protected_area: None,
        },
    }
}

/// A whole case to a decision that departs from guidance and is approved.
async fn decided_case<L: EventLog + Clone + Send + Sync + 'static>(
    ex: &Executor<L>,
) -> (CaseId, DecisionId) {
    let case = CaseId(Uuid::new_v4());
    let id = case.to_string();
    let officer = who(OFFICER, Role::Officer);
    let run = |cmd: CaseCommand, actor: Actor| {
        let ex = ex.clone();
        let id = id.clone();
        async move {
            ex.execute::<Case>(&id, &cmd, actor, None, now())
                .await
                .unwrap()
        }
    };
    run(open(case), who(CLERK, Role::IntakeClerk)).await;
    run(
        CaseCommand::AttachRecord {
            record: RecordId(Uuid::new_v4()),
            source: RecordSource::Criminal,
            reference: "NCIC".into(),
            content_hash: ContentHash([1; 32]),
        },
        who(CLERK, Role::IntakeClerk),
    )
    .await;
    for source in [RecordSource::Administrative, RecordSource::Investigative] {
        run(
            CaseCommand::MarkSourceUnavailable {
                source,
                reason: "none on file".into(),
            },
            officer,
        )
        .await;
    }
    run(CaseCommand::AttestWholeRecord, officer).await;
    let family = Code::parse("factor", "family_impact").unwrap();
    run(
        CaseCommand::AssessFactors {
            factors: vec![family],
            narrative: "whole record".into(),
        },
        officer,
    )
    .await;
    let decision = DecisionId(Uuid::new_v4());
    run(
        CaseCommand::ProposeDecision {
            decision,
            action: EnforcementAction::Detain,
            cited_factors: vec![],
            reasons: "flight risk".into(),
            protected_area_exception: None,
        },
        officer,
    )
    .await;
    run(
        CaseCommand::ApproveDecision { decision },
        who(SUPERVISOR, Role::Supervisor),
    )
    .await;
    run(CaseCommand::RecordDecision { decision }, officer).await;
    (case, decision)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_and_its_review_run_on_the_file_log_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let ex = executor(log.clone()).await;
    staff(&ex).await;
    let (case, decision) = decided_case(&ex).await;
    assert_eq!(
        ex.world().read().decision(decision).unwrap().approver,
        Some(PersonId(Uuid::from_u128(SUPERVISOR)))
    );

    // A representative with a G-28 asks for review; tier 1 reverses.
    let rep = PersonId(Uuid::from_u128(REP));
    ex.execute::<Representation>(
        &Representation::key(a_number(), rep),
        &RepresentationCommand::RecordG28 {
            a_number: a_number(),
            representative: rep,
            capacity: RepresentativeCapacity::Attorney,
            signed_on: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
        },
        who(CLERK, Role::IntakeClerk),
        None,
        now(),
    )
    .await
    .unwrap();
    let review = ReviewId(Uuid::new_v4());
    let rid = review.to_string();
    let steps: Vec<(ReviewCommand, Actor)> = vec![
        (
            ReviewCommand::Request {
                review,
                a_number: a_number(),
                capacity: RequesterCapacity::Representative,
                case,
                decision,
                action: EnforcementAction::Detain,
                grounds: "primary caregiver".into(),
                preferred_language: Some("es".into()),
            },
            who(REP, Role::Requester),
        ),
        (ReviewCommand::Acknowledge, who(0, Role::System)),
        (
            ReviewCommand::AssignReviewer {
                reviewer: PersonId(Uuid::from_u128(REVIEWER)),
            },
            who(FOD, Role::FieldOfficeDirector),
        ),
        (
            ReviewCommand::DecideTier1 {
                outcome: ReviewOutcome::Reversed,
                referred_to: None,
                reasons: "release".into(),
            },
            who(REVIEWER, Role::FirstTierReviewer),
        ),
    ];
    for (command, actor) in steps {
        ex.execute::<Review>(&rid, &command, actor, None, now())
            .await
            .unwrap();
    }
    let stage = |world: &World| {
        world
            .read()
            .get::<Review>(&format!("review/{rid}"))
            .1
            .stage()
    };
    assert_eq!(stage(ex.world()), Stage::Tier1Decided);

    // Restart: a new process rebuilds the same world from the log.
    let head = log.head().await.unwrap();
    log.close().await.unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let again = executor(log).await;
    assert_eq!(again.world().applied(), head);
    assert_eq!(stage(again.world()), Stage::Tier1Decided);
    let before = ex.world().read().get::<Case>(&format!("case/{case}"));
    let after = again.world().read().get::<Case>(&format!("case/{case}"));
    assert_eq!(before, after);
    assert!(again.world().read().has_g28(a_number(), rep));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_key_is_answered_with_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let ex = executor(log.clone()).await;
    let case = CaseId(Uuid::new_v4());
    let key = Some(format!("open-{case}"));
    let clerk = who(CLERK, Role::IntakeClerk);
    let first = ex
        .execute::<Case>(&case.to_string(), &open(case), clerk, key.clone(), now())
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert_eq!(first.events, vec!["case.opened".to_string()]);
    let retry = ex
        .execute::<Case>(&case.to_string(), &open(case), clerk, key, now())
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(
        (retry.position, retry.events),
        (first.position, first.events)
    );
    assert_eq!(
        log.head().await.unwrap(),
        first.position,
        "nothing appended twice"
    );
    // Without the key the same command is a new one, and the domain refuses it.
    match ex
        .execute::<Case>(&case.to_string(), &open(case), clerk, None, now())
        .await
    {
        Err(ExecError::Rejected(r)) => assert_eq!(r.code(), "invalid_state"),
        other => panic!("{other:?}"),
    }
}

/// Two processes (two worlds) race on one case: each catches up after a conflict and decides
/// again, and nothing is lost.
async fn race<L: EventLog + Clone + Send + Sync + 'static>(a: L, b: L) {
    let (ea, eb) = (executor(a).await, executor(b).await);
    let case = CaseId(Uuid::new_v4());
    let id = case.to_string();
    ea.execute::<Case>(&id, &open(case), who(CLERK, Role::IntakeClerk), None, now())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for (i, ex) in [ea.clone(), eb.clone(), ea.clone(), eb.clone()]
        .into_iter()
        .enumerate()
    {
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..5 {
                let cmd = CaseCommand::AttachRecord {
                    record: RecordId(Uuid::from_u128((i * 100 + j) as u128 + 1)),
                    source: RecordSource::Administrative,
                    reference: format!("A-file part {i}-{j}"),
                    content_hash: ContentHash([i as u8; 32]),
                };
                ex.execute::<Case>(&id, &cmd, who(CLERK, Role::IntakeClerk), None, now())
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let head = ea.log().head().await.unwrap();
    for ex in [&ea, &eb] {
        ex.world()
            .wait_until(head, Duration::from_secs(10))
            .await
            .unwrap();
        let (_, state) = ex.world().read().get::<Case>(&format!("case/{id}"));
        assert_eq!(
            state.records.len(),
            20,
            "every attach from both processes is there"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_racing_on_one_stream_lose_nothing_on_the_file_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    // One file log per directory: the two "processes" share the handle but not the world.
    race(log.clone(), log).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_racing_on_one_stream_lose_nothing_on_jetstream() {
    let server = tokio::task::spawn_blocking(docket_testkit::NatsServer::start)
        .await
        .unwrap();
    let a = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
        .await
        .unwrap();
    let b = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
        .await
        .unwrap();
    race(a, b).await;
}

/// Waits until the review has recorded `count` missed deadlines, or fails after 10 s.
async fn wait_missed(world: &World, stream: &str, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let missed = world.read().get::<Review>(stream).1.missed().len();
        if missed >= count {
            assert_eq!(missed, count, "no deadline recorded twice");
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missed} of {count} misses recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_deadlines_are_recorded_once_across_restarts() {
    use docket_runtime::clock::ManualClock;
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let ex = executor(log.clone()).await;
    staff(&ex).await;
    let (case, decision) = decided_case(&ex).await;
    let review = ReviewId(Uuid::new_v4());
    let rid = review.to_string();
    let stream = format!("review/{rid}");
    // Requested on Tuesday 5 March 2024 at 15:00: acknowledgement due Wednesday 15:00.
    ex.execute::<Review>(
        &rid,
        &ReviewCommand::Request {
            review,
            a_number: a_number(),
            capacity: RequesterCapacity::Noncitizen,
            case,
            decision,
            action: EnforcementAction::Detain,
            grounds: "wrongful detention".into(),
            preferred_language: None,
        },
        who(99, Role::Requester),
        None,
        now(),
    )
    .await
    .unwrap();
    let due = ex.world().read().get::<Review>(&stream).1.due();
    assert_eq!(
        due.len(),
        2,
        "acknowledgement and tier-1 decision are running: {due:?}"
    );

    let clock = ManualClock::new(now() + chrono::Duration::hours(12));
    let start = |ex: Executor<FileLog>, clock: ManualClock| {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let checkpoints = docket_log::AnyCheckpoints::File(ex.log().checkpoints().unwrap());
        let task = tokio::spawn(docket_runtime::run_deadline_scheduler(
            ex,
            checkpoints,
            std::sync::Arc::new(clock),
            stopped,
        ));
        (stop, task)
    };
    // Nothing is due yet.
    let (stop, task) = start(ex.clone(), clock.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    // Its pass over the world is saved as its checkpoint when it stops.
    {
        use docket_log::Checkpoints;
        let saved = log
            .checkpoints()
            .unwrap()
            .load(docket_runtime::DEADLINES_CONSUMER)
            .await
            .unwrap();
        assert_eq!(saved, Some(ex.world().applied()));
    }
    assert!(ex
        .world()
        .read()
        .get::<Review>(&stream)
        .1
        .missed()
        .is_empty());

    // A day and a half later the acknowledgement is overdue, the decision is not.
    clock.set(now() + chrono::Duration::hours(36));
    let (stop, task) = start(ex.clone(), clock.clone());
    wait_missed(ex.world(), &stream, 1).await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();

    // A restarted process (new world from the log) records nothing twice, then the tier-1 miss.
    log.close().await.unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let again = executor(log.clone()).await;
    let (stop, task) = start(again.clone(), clock.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        again.world().read().get::<Review>(&stream).1.missed().len(),
        1
    );
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    clock.set(now() + chrono::Duration::days(15));
    let (stop, task) = start(again.clone(), clock);
    wait_missed(again.world(), &stream, 2).await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let head = log.head().await.unwrap();
    let missed: Vec<_> = again
        .world()
        .read()
        .get::<Review>(&stream)
        .1
        .missed()
        .to_vec();
    assert_eq!(missed.len(), 2, "{missed:?}; head {head}");
}

/// The `case.guidance_recomputed` events of a case, in order.
async fn recomputations<L: EventLog>(log: &L, case: CaseId) -> Vec<u64> {
    let stream = docket_log::StreamId::new(format!("case/{case}")).unwrap();
    log.read_stream(&stream)
        .await
        .unwrap()
        .into_iter()
        .filter(|c| {
            c.commit
                .events
                .iter()
                .any(|e| e.type_name == "case.guidance_recomputed")
        })
        .map(|c| c.position)
        .collect()
}

/// Waits until the case has at least `n` recomputations.
async fn wait_for_recomputations<L: EventLog>(log: &L, case: CaseId, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while recomputations(log, case).await.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {n} recomputations"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guidance_is_recomputed_once_when_records_change_and_not_again_after_a_restart() {
    use docket_log::Checkpoints;
    use docket_runtime::clock::ManualClock;
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let ex = executor(log.clone()).await;
    staff(&ex).await;
    // Records attached before the assessment cause nothing.
    let (case, _) = decided_case(&ex).await;
    let clock = ManualClock::new(now());
    let start = |ex: Executor<FileLog>| {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let checkpoints = docket_log::AnyCheckpoints::File(ex.log().checkpoints().unwrap());
        let task = tokio::spawn(docket_runtime::run_guidance_reaction(
            ex,
            checkpoints,
            std::sync::Arc::new(clock.clone()),
            stopped,
        ));
        (stop, task)
    };
    let (stop, task) = start(ex.clone());
    let settle = || async {
        let head = log.head().await.unwrap();
        ex.world()
            .wait_until(head, Duration::from_secs(10))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    settle().await;
    assert!(recomputations(&log, case).await.is_empty());

    // A record attached after the assessment: guidance recomputed once.
    let attach = |n: u8| CaseCommand::AttachRecord {
        record: RecordId(Uuid::new_v4()),
        source: RecordSource::Administrative,
        reference: format!("A-file volume {n}"),
        content_hash: ContentHash([n; 32]),
    };
    let attached = ex
        .execute::<Case>(
            &case.to_string(),
            &attach(2),
            who(CLERK, Role::IntakeClerk),
            None,
            now(),
        )
        .await
        .unwrap();
    wait_for_recomputations(&log, case, 1).await;
    settle().await;
    let once = recomputations(&log, case).await;
    assert_eq!(once.len(), 1, "{once:?}");
    assert!(once[0] > attached.position);
    let state = ex.world().read().get::<Case>(&format!("case/{case}")).1;
    assert!(!state.guidance_outdated, "the recomputation is current");
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    let store = log.checkpoints().unwrap();
    let saved = store
        .load(docket_runtime::GUIDANCE_CONSUMER)
        .await
        .unwrap()
        .unwrap();
    assert!(
        saved >= once[0],
        "checkpoint {saved} covers the reaction's own commit"
    );

    // Forget the checkpoint: a restart from position 0 finds every effect made already.
    store
        .save(docket_runtime::GUIDANCE_CONSUMER, 0)
        .await
        .unwrap();
    log.close().await.unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let again = executor(log.clone()).await;
    let (stop, task) = start(again.clone());
    let head = log.head().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(log.head().await.unwrap(), head, "nothing appended again");
    assert_eq!(recomputations(&log, case).await, once);
    // And a further change is still noticed.
    again
        .execute::<Case>(
            &case.to_string(),
            &attach(3),
            who(CLERK, Role::IntakeClerk),
            None,
            now(),
        )
        .await
        .unwrap();
    wait_for_recomputations(&log, case, 2).await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(recomputations(&log, case).await.len(), 2);
}
