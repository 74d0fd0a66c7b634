//! The demo workload against the command services on the in-process bus (the log in files, the
//! services on a clock the test moves): the summary adds up, every case is decided, reviews reach
//! both tiers, only the planned refusals happen, and the deadlines left running are recorded as
//! missed once the clock passes them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/support/keys.rs"]
mod keys;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use docket_bus::{Client, LocalBus};
use docket_demo::{DemoConfig, DemoSummary};
use docket_domain::policy::PolicySet;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::EventLog;
use docket_runtime::clock::ManualClock;
use docket_runtime::{Executor, ExecutorConfig, World};

struct System {
    bus: LocalBus,
    world: World,
    clock: ManualClock,
    stop: tokio::sync::watch::Sender<bool>,
    scheduler: docket_node::LocalServices,
    _dir: tempfile::TempDir,
}

async fn system(config: &DemoConfig) -> System {
    system_at(config.start).await
}

/// The system with its clock at `now`.
async fn system_at(now: chrono::DateTime<chrono::Utc>) -> System {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let world = World::new();
    world.follow(log.clone());
    world
        .wait_until(log.head().await.unwrap(), Duration::from_secs(10))
        .await
        .unwrap();
    let checkpoints = docket_log::AnyCheckpoints::File(log.checkpoints().unwrap());
    let executor = Executor::new(
        log,
        world.clone(),
        ExecutorConfig::new(PolicySet::shipped().unwrap()),
    );
    let clock = ManualClock::new(now);
    let bus = LocalBus::new();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = docket_node::register_local(
        &bus,
        &docket_node::COMMAND_SERVICES,
        executor,
        checkpoints,
        None,
        keys::verifier(),
        Arc::new(clock.clone()),
        stopped,
    );
    System {
        bus,
        world,
        clock,
        stop,
        scheduler,
        _dir: dir,
    }
}

fn small(seed: u64) -> DemoConfig {
    DemoConfig {
        cases: 30,
        seed,
        concurrency: 4,
        ..DemoConfig::default()
    }
}

async fn run(system: &System, config: &DemoConfig) -> DemoSummary {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let summary = docket_demo::run(
        Client::new(system.bus.clone(), keys::issuer()),
        config,
        move |done, total| {
            assert!(done <= total, "progress {done} of {total}");
            seen.fetch_add(1, Ordering::Relaxed);
        },
    )
    .await
    .unwrap();
    assert_eq!(
        calls.load(Ordering::Relaxed),
        summary.sent,
        "progress after every command"
    );
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_demo_adds_up_and_walks_every_path() {
    let config = small(7);
    let system = system(&config).await;
    let s = run(&system, &config).await;
    println!("{s}");

    assert_eq!(s.accepted + s.refused_total(), s.sent, "{s}");
    assert!(s.sent > 500, "hundreds of commands for 30 cases: {s}");
    assert!(
        s.unexpected_refusals.is_empty(),
        "only planned refusals: {s}"
    );
    assert!(s.expected_but_accepted.is_empty(), "{s}");
    assert!(!s.no_policy_in_force_observed);
    for code in ["officer_not_trained", "protected_area_exception_missing"] {
        assert!(
            s.expected_refusals.get(code).copied().unwrap_or(0) > 0,
            "{code}: {s}"
        );
    }
    assert_eq!(s.refused, s.expected_refusals);
    assert_eq!(s.retries, 0);
    assert_eq!(s.duplicates, 0);

    // Staff in every office, some untrained.
    assert_eq!(
        s.staff["field_office_director"], 26,
        "25 offices and headquarters"
    );
    assert_eq!(s.staff["senior_reviewing_official"], 3);
    assert!(s.untrained_officers > 0);
    assert!(s.cases_reassigned > 0);

    // Every case opened and decided; decisions spread over offices and guidance.
    assert_eq!((s.cases_opened, s.cases_decided), (30, 30), "{s}");
    assert_eq!(s.decisions_by_action.values().sum::<usize>(), 30);
    assert!(s.decisions_by_office.len() >= 20, "{s}");
    for priority in [
        "not_a_priority",
        "public_safety",
        "national_security",
        "border_security",
    ] {
        assert!(
            s.decisions_by_priority.contains_key(priority),
            "{priority}: {s}"
        );
    }
    assert!(
        s.records_attached.len() == 3 && s.sources_unavailable.len() == 3,
        "{s}"
    );
    assert!(
        s.departures_approved >= 2 && s.departures_returned >= 2,
        "{s}"
    );

    // Reviews at both tiers, by both kinds of requester, with every ending.
    assert_eq!(s.reviews_requested.len(), 2, "{s}");
    assert!(s.tier1_outcomes.values().sum::<usize>() >= 3, "{s}");
    assert!(s.tier2_outcomes.values().sum::<usize>() >= 1, "{s}");
    assert!(
        s.tier2_requested > s.tier2_outcomes.values().sum::<usize>(),
        "{s}"
    );
    assert!(
        s.reviews_withdrawn >= 1 && s.information_provided >= 1,
        "{s}"
    );
    assert!(s.reviews_prioritised.contains_key("detained"), "{s}");
    assert!(
        s.g28_recorded >= s.reviews_requested["representative"],
        "{s}"
    );
    for kind in ["acknowledge", "tier1_decision", "tier2_decision"] {
        assert!(s.deadlines_running.contains_key(kind), "{kind}: {s}");
    }

    // What the system recorded matches what the demo counted.
    let mut s = s;
    {
        let view = system.world.read();
        let decided = view
            .cases
            .values()
            .filter(|(_, c)| !c.decisions.is_empty())
            .count();
        assert_eq!(decided, s.cases_decided);
        assert_eq!(view.reviews.len(), s.reviews_total());
        assert!(view.reviews.values().all(|(_, r)| r.missed().is_empty()));
        assert!(s.recorded.is_none());
        assert!(s.to_string().contains("not read back from the log"), "{s}");
        s.read_back(view.cases.values().map(|(_, c)| c));
    }
    // Read back, the summary reports the log's guidance and departures, which here are the
    // plan's.
    let recorded = s.recorded.clone().unwrap();
    println!("{s}");
    assert_eq!((recorded.cases, recorded.decided), (30, 30), "{s}");
    assert_eq!(recorded.departures, s.departures_recorded, "{s}");
    assert!(
        recorded.departures > 0 && recorded.departures_needing_approval > 0,
        "{s}"
    );
    assert!(
        recorded.approved >= recorded.departures_needing_approval,
        "{s}"
    );
    assert_eq!(recorded.by_policy_version.len(), 1, "{s}");
    assert_eq!(
        recorded.by_priority.values().sum::<usize>(),
        s.decisions_by_priority.values().sum::<usize>()
    );
    assert!(
        s.plan_differences().is_empty(),
        "{:?}",
        s.plan_differences()
    );
    let text = s.to_string();
    assert!(
        text.contains("the log holds what the demo planned"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "in the log: {} of 30 decisions",
            recorded.departures
        )),
        "{text}"
    );
    assert_eq!(
        s.latencies.values().map(Vec::len).sum::<usize>(),
        s.sent + s.retries
    );

    // Forty days on, every deadline left running is recorded as missed, exactly once.
    system.clock.set(config.start + chrono::Duration::days(40));
    let missed = || {
        system
            .world
            .read()
            .reviews
            .values()
            .map(|(_, r)| r.missed().len())
            .sum::<usize>()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while missed() < s.deadlines_running_total() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(missed(), s.deadlines_running_total(), "{s}");

    system.stop.send(true).unwrap();
    system.scheduler.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_clock_with_no_version_in_force_the_summary_reports_the_log_not_the_plan() {
    // The demo plans under the guidelines in force at its start; the system's clock is two
    // years on, when no version is in force: it gives no guidance, so no decision departs.
    let config = small(7);
    let later = config.start + chrono::Duration::days(730);
    let system = system_at(later).await;
    let mut s = run(&system, &config).await;
    assert!(s.no_policy_in_force_observed, "{s}");
    assert!(s.departures_recorded > 0, "the plan has departures: {s}");
    let planned = s.to_string();
    assert!(
        planned.contains("its log holds no guidance and no departure"),
        "{planned}"
    );
    // A run of another seed on the same system: its cases are not this run's.
    let other = run(&system, &small(8)).await;
    assert!(other.cases_decided > 0);
    s.read_back(system.world.read().cases.values().map(|(_, c)| c));
    println!("{s}");
    let recorded = s.recorded.clone().unwrap();
    assert_eq!((recorded.cases, recorded.decided), (30, s.cases_decided));
    assert_eq!(recorded.departures, 0, "{s}");
    assert_eq!(
        recorded.by_priority.get("no_version"),
        Some(&s.cases_decided)
    );
    assert_eq!(
        recorded.by_policy_version.get("none"),
        Some(&s.cases_decided)
    );
    let differences = s.plan_differences();
    assert_eq!(
        differences.len(),
        2,
        "guidance and departures: {differences:?}"
    );
    let text = s.to_string();
    assert!(
        text.contains(&format!(
            "the log holds 0 departures from guidance; the plan has {}",
            s.departures_recorded
        )),
        "{text}"
    );
    assert!(
        text.contains("departures  in the log: 0 of 30 decisions"),
        "{text}"
    );
    assert!(
        !text.contains("the log holds what the demo planned"),
        "{text}"
    );
    system.stop.send(true).unwrap();
    system.scheduler.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_plans_the_same_workload() {
    let config = small(11);
    let (a, b) = (system(&config).await, system(&config).await);
    let (x, y) = (run(&a, &config).await, run(&b, &config).await);
    assert_ne!(x.run, y.run, "each run has its own ids and keys");
    assert_eq!(x.sent, y.sent);
    assert_eq!(x.refused, y.refused);
    assert_eq!(x.decisions_by_action, y.decisions_by_action);
    assert_eq!(x.decisions_by_office, y.decisions_by_office);
    assert_eq!(x.tier1_outcomes, y.tier1_outcomes);
    assert_eq!(x.tier2_outcomes, y.tier2_outcomes);
    assert_eq!(x.deadlines_running, y.deadlines_running);
    let other = run(&a, &small(12)).await;
    assert_ne!(
        (&x.decisions_by_action, x.sent),
        (&other.decisions_by_action, other.sent),
        "another seed, another workload"
    );
}

#[tokio::test]
async fn nothing_answering_is_an_error_not_a_summary() {
    let empty = LocalBus::new();
    let err = docket_demo::run(Client::new(empty, keys::issuer()), &small(1), |_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&err, docket_demo::DemoError::Unreachable(e) if e.code == "unavailable"),
        "{err}"
    );
}
