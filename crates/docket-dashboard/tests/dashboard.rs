//! The dashboard against real logs: the demo run in process on the file backend and on
//! JetStream (a real nats-server), the projection checked against the services' own state and
//! the log's events, snapshots and resumption, integrity checks, and the HTTP API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../tests/support/keys.rs"]
mod keys;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_bus::{Client, LocalBus};
use docket_dashboard::projection::QueueStage;
use docket_dashboard::{Dashboard, DashboardConfig, Filter, IntegrityCheck, Window};
use docket_demo::DemoConfig;
use docket_domain::policy::PolicySet;
use docket_domain::review::Stage;
use docket_domain::values::FieldOffice;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::{AnyCheckpoints, EventLog, RecordedCommit};
use docket_runtime::clock::ManualClock;
use docket_runtime::{Executor, ExecutorConfig, World};
use tokio::sync::watch;

mod http;

/// The demo's clock: every event is dated from here.
fn start() -> DateTime<Utc> {
    DemoConfig::default().start
}

/// A system run by the demo in process over `log`, with the deadline scheduler passing
/// deadlines once the clock is moved `advance_days` on.
#[allow(missing_debug_implementations)]
pub struct Demo {
    pub world: World,
    pub clock: ManualClock,
}

pub async fn run_demo<L: EventLog + Clone + Send + Sync + 'static>(
    log: L,
    checkpoints: AnyCheckpoints,
    cases: usize,
    advance_days: i64,
) -> Demo {
    run_demo_counted(log, checkpoints, cases, advance_days, Default::default()).await
}

/// [`run_demo`], its services counting into `metrics`.
pub async fn run_demo_counted<L: EventLog + Clone + Send + Sync + 'static>(
    log: L,
    checkpoints: AnyCheckpoints,
    cases: usize,
    advance_days: i64,
    metrics: docket_runtime::Metrics,
) -> Demo {
    let config = DemoConfig {
        cases,
        seed: 11,
        concurrency: 4,
        ..DemoConfig::default()
    };
    let world = World::new();
    world.follow(log.clone());
    let executor = Executor::new(
        log.clone(),
        world.clone(),
        ExecutorConfig::new(PolicySet::shipped().unwrap()),
    )
    .with_metrics(metrics);
    let clock = ManualClock::new(config.start);
    let bus = LocalBus::new();
    let (stop, stopped) = watch::channel(false);
    let services = docket_node::register_local(
        &bus,
        &docket_node::COMMAND_SERVICES,
        executor,
        checkpoints,
        None,
        keys::verifier(),
        Arc::new(clock.clone()),
        stopped,
    );
    let summary = docket_demo::run(Client::new(bus, keys::issuer()), &config, |_, _| {})
        .await
        .unwrap();
    assert!(summary.unexpected_refusals.is_empty(), "{summary}");
    if advance_days > 0 {
        let running = summary.deadlines_running_total();
        clock.set(config.start + chrono::Duration::days(advance_days));
        let missed = || {
            world
                .read()
                .reviews
                .values()
                .map(|(_, r)| r.missed().len())
                .sum::<usize>()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while missed() < running && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(missed(), running, "the scheduler recorded every deadline");
    }
    stop.send(true).unwrap();
    services.finish().await.unwrap();
    let head = log.head().await.unwrap();
    world
        .wait_until(head, Duration::from_secs(30))
        .await
        .unwrap();
    Demo { world, clock }
}

pub async fn all_commits(log: &impl EventLog) -> Vec<RecordedCommit> {
    log.read_all(0, usize::MAX).await.unwrap()
}

/// Events of each type in the log.
fn event_counts(commits: &[RecordedCommit]) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for c in commits {
        for e in &c.commit.events {
            *counts.entry(e.type_name.clone()).or_insert(0) += 1;
        }
    }
    counts
}

pub async fn file_log(dir: &Path) -> FileLog {
    FileLog::open(FileLogConfig::new(dir)).await.unwrap()
}

/// Starts a dashboard without integrity checks.
pub async fn dashboard<L: EventLog + Clone + Send + Sync + 'static>(
    log: L,
    checkpoints: AnyCheckpoints,
    config: DashboardConfig,
) -> (
    Dashboard,
    tokio::task::JoinHandle<Result<(), docket_dashboard::DashboardError>>,
    watch::Sender<bool>,
) {
    let (stop, stopped) = watch::channel(false);
    let (d, task) = Dashboard::start(
        log,
        checkpoints,
        None::<IntegrityCheck<LocalBus>>,
        config,
        docket_dashboard::Metrics::default(),
        stopped,
    )
    .await
    .unwrap();
    (d, task, stop)
}

/// Checks the overview against the log's events and the services' own state.
fn check_against_the_log(dashboard: &Dashboard, commits: &[RecordedCommit], demo: &Demo) {
    let counts = event_counts(commits);
    let count = |t: &str| counts.get(t).copied().unwrap_or(0);
    let now = demo.clock_now();
    let all = dashboard.overview_at(&Filter::default(), now);
    assert_eq!(all.position, commits.len() as u64);
    assert!(count("case.decision_recorded") > 0, "{counts:?}");
    assert_eq!(all.decisions.total, count("case.decision_recorded"));
    let sum = |l: &[docket_dashboard::view::KeyCount]| l.iter().map(|k| k.count).sum::<u64>();
    assert_eq!(sum(&all.decisions.by_office), all.decisions.total);
    assert_eq!(sum(&all.decisions.by_month), all.decisions.total);
    assert_eq!(sum(&all.decisions.by_action), all.decisions.total);
    assert_eq!(sum(&all.decisions.by_priority), all.decisions.total);
    let tier1 = all.turnaround.iter().find(|t| t.tier == "tier1").unwrap();
    let tier2 = all.turnaround.iter().find(|t| t.tier == "tier2").unwrap();
    assert_eq!(tier1.decided, count("review.tier1_decided"));
    assert_eq!(tier2.decided, count("review.tier2_decided"));
    assert_eq!(tier1.outcomes.values().sum::<u64>(), tier1.decided);
    if tier1.decided > 0 {
        let (m, p) = (tier1.median_hours.unwrap(), tier1.p90_hours.unwrap());
        assert!(m >= 0.0 && p >= m, "median {m} p90 {p}");
    }
    assert_eq!(all.deadlines_missed.total, count("review.deadline_missed"));

    // The queue against the services' own fold of every review.
    let view = demo.world.read();
    let mut stages: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, review) in view.reviews.values() {
        let stage = review.stage();
        if !QueueStage::QUEUED.iter().any(|q| Stage::from(*q) == stage) {
            continue;
        }
        *stages.entry(stage.code()).or_insert(0) += 1;
    }
    let queued: u64 = stages.values().sum();
    assert_eq!(all.review_queue.open, queued);
    for (stage, n) in &all.review_queue.by_stage {
        assert_eq!(
            *n,
            stages.get(stage.as_str()).copied().unwrap_or(0),
            "{stage}"
        );
    }
    assert_eq!(all.review_queue.by_tier.values().sum::<u64>(), queued);
    assert_eq!(all.review_queue.by_deadline.values().sum::<u64>(), queued);
    assert_eq!(all.review_queue.by_priority.values().sum::<u64>(), queued);
    for (state, n) in &all.review_queue.by_deadline {
        let across: u64 = all
            .review_queue
            .by_tier_deadline
            .values()
            .map(|m| m[state])
            .sum();
        assert_eq!(across, *n, "{state}");
    }
    for (tier, n) in &all.review_queue.by_tier {
        assert_eq!(
            all.review_queue.by_tier_deadline[tier]
                .values()
                .sum::<u64>(),
            *n,
            "{tier}"
        );
    }

    // Offices partition everything office-filtered.
    let mut decisions = 0;
    let mut open = 0;
    for office in FieldOffice::ALL {
        let f = Filter {
            office: Some(*office),
            window: Window::All,
        };
        let o = dashboard.overview_at(&f, now);
        decisions += o.decisions.total;
        open += o.review_queue.open;
        assert!(o.decisions.by_office.iter().all(|k| k.key == office.code()));
    }
    assert_eq!(decisions, all.decisions.total);
    assert_eq!(open, all.review_queue.open);

    // Nothing personal in the aggregates.
    let text = serde_json::to_string(&all).unwrap();
    for (_, review) in view.reviews.values() {
        if let Some(r) = review.request() {
            assert!(!text.contains(&r.a_number.to_string()));
            assert!(!text.contains(&r.by.person.to_string()));
        }
    }
}

impl Demo {
    fn clock_now(&self) -> DateTime<Utc> {
        use docket_runtime::clock::Clock as _;
        self.clock.now()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projection_matches_the_log_and_the_services_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    let checkpoints = AnyCheckpoints::File(log.checkpoints().unwrap());
    let demo = run_demo(log.clone(), checkpoints.clone(), 24, 0).await;
    let commits = all_commits(&log).await;
    let (d, task, stop) = dashboard(log.clone(), checkpoints, DashboardConfig::new(None)).await;
    assert!(
        d.wait_for(commits.len() as u64, Duration::from_secs(30))
            .await
    );
    check_against_the_log(&d, &commits, &demo);

    // The windows: everything happened at the demo's start, so a day later the 24-hour window
    // holds it all and a year later only the 365-day one (and "all") does.
    let later = |days, window| {
        d.overview_at(
            &Filter {
                office: None,
                window,
            },
            start() + chrono::Duration::days(days),
        )
        .decisions
        .total
    };
    let total = later(0, Window::All);
    assert_eq!(later(0, Window::Day), total);
    assert_eq!(later(2, Window::Day), 0);
    assert_eq!(later(2, Window::Week), total);
    assert_eq!(later(200, Window::Quarter), 0);
    assert_eq!(later(200, Window::Year), total);
    assert_eq!(later(2000, Window::All), total);

    // Deadlines: on time at the start, overdue forty days on; the drill-down lists exactly the
    // overdue ones, oldest first, and carries A-numbers.
    let open = d.overview_at(&Filter::default(), start()).review_queue;
    assert!(open.open > 0, "the demo leaves reviews open");
    assert_eq!(open.by_deadline["overdue"], 0);
    let late = start() + chrono::Duration::days(40);
    let later_queue = d.overview_at(&Filter::default(), late).review_queue;
    assert_eq!(later_queue.by_deadline["overdue"], later_queue.open);
    let overdue = d.overdue_at(None, late);
    assert_eq!(overdue.reviews.len() as u64, later_queue.open);
    assert!(overdue.reviews.windows(2).all(|w| w[0].due <= w[1].due));
    assert!(overdue.reviews.iter().all(|r| r.a_number.starts_with('A')));
    assert!(d.overdue_at(None, start()).reviews.is_empty());

    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_deadlines_are_counted_and_a_snapshot_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = tempfile::tempdir().unwrap();
    let log = file_log(dir.path()).await;
    let checkpoints = AnyCheckpoints::File(log.checkpoints().unwrap());
    let demo = run_demo(log.clone(), checkpoints.clone(), 16, 40).await;
    let commits = all_commits(&log).await;
    let head = commits.len() as u64;
    let config = DashboardConfig::new(Some(snapshots.path().to_owned()));

    // First run: from 0; the snapshot is written at shutdown and its position saved.
    let (d, task, stop) = dashboard(log.clone(), checkpoints.clone(), config.clone()).await;
    assert!(!d.readiness().caught_up || head == 0);
    assert!(d.wait_for(head, Duration::from_secs(30)).await);
    check_against_the_log(&d, &commits, &demo);
    let missed = d
        .overview_at(&Filter::default(), demo.clock_now())
        .deadlines_missed;
    assert!(missed.total > 0, "the scheduler recorded missed deadlines");
    let first = d.projection();
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert!(snapshots.path().join("dashboard.snapshot").exists());
    use docket_log::Checkpoints as _;
    assert_eq!(
        checkpoints
            .load(docket_dashboard::DASHBOARD_CONSUMER)
            .await
            .unwrap(),
        Some(head)
    );

    // Second run: resumes from the snapshot, caught up at once, same state.
    let (d, task, stop) = dashboard(log.clone(), checkpoints.clone(), config.clone()).await;
    assert!(d.readiness().caught_up, "resumed at the head");
    assert_eq!(d.projection(), first);
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();

    // A rebuild from 0 gives the same state.
    let mut rebuild = config.clone();
    rebuild.rebuild = true;
    let (d, task, stop) = dashboard(log.clone(), checkpoints.clone(), rebuild).await;
    assert!(d.wait_for(head, Duration::from_secs(30)).await);
    assert_eq!(d.projection(), first);
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();

    // A damaged snapshot is ignored (rebuilt from 0, same state), never trusted.
    let path = snapshots.path().join("dashboard.snapshot");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let (d, task, stop) = dashboard(log.clone(), checkpoints.clone(), config.clone()).await;
    assert!(
        !d.readiness().caught_up,
        "the damaged snapshot was not used"
    );
    assert!(d.wait_for(head, Duration::from_secs(30)).await);
    assert_eq!(d.projection(), first);
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();

    // A snapshot of another log (same length, other commits) is not used either.
    let other_dir = tempfile::tempdir().unwrap();
    let other = file_log(other_dir.path()).await;
    let other_checkpoints = AnyCheckpoints::File(other.checkpoints().unwrap());
    run_demo(other.clone(), other_checkpoints.clone(), 16, 40).await;
    let (d, task, stop) = dashboard(other.clone(), other_checkpoints, config).await;
    assert!(
        !d.readiness().caught_up,
        "another log's snapshot was not used"
    );
    let other_head = other.head().await.unwrap();
    assert!(d.wait_for(other_head, Duration::from_secs(30)).await);
    assert_ne!(d.projection(), first);
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_follows_a_log_on_jetstream() {
    let server = docket_testkit::NatsServer::start();
    let log = docket_log::jetstream::JetStreamLog::connect_url(
        &server.url(),
        docket_log::jetstream::JetStreamConfig::default(),
    )
    .await
    .unwrap();
    let checkpoints = AnyCheckpoints::Kv(Box::new(log.checkpoints().await.unwrap()));
    // The dashboard starts first and follows the demo live.
    let mut config = DashboardConfig::new(None);
    config.lag_every = Duration::from_millis(100);
    let (d, task, stop) = dashboard(log.clone(), checkpoints.clone(), config).await;
    let demo = run_demo(log.clone(), checkpoints.clone(), 12, 0).await;
    let commits = all_commits(&log).await;
    assert!(
        d.wait_for(commits.len() as u64, Duration::from_secs(30))
            .await
    );
    check_against_the_log(&d, &commits, &demo);
    // Lag: the reactions' checkpoints and the dashboard's own live position.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let o = d.overview_at(&Filter::default(), demo.clock_now());
        let own = o.consumers.iter().find(|c| c.consumer == "dashboard");
        if o.head == commits.len() as u64 && own.is_some_and(|c| c.lag == 0) {
            assert!(o
                .consumers
                .windows(2)
                .all(|w| w[0].consumer < w[1].consumer));
            assert!(o
                .consumers
                .iter()
                .all(|c| c.lag == o.head.saturating_sub(c.position)));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lag never settled: {:?}",
            o.consumers
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
}

#[test]
fn queue_stages_are_the_domains_stages_with_their_codes() {
    use QueueStage as Q;
    for q in [
        Q::Requested,
        Q::Acknowledged,
        Q::Tier1Assigned,
        Q::Tier1Decided,
        Q::Tier2Requested,
        Q::Tier2Assigned,
    ] {
        assert_eq!(q.code(), Stage::from(q).code());
        // The projection's stored form spells the same code.
        assert_eq!(serde_json::to_value(q).unwrap(), q.code());
    }
    assert_eq!(Q::Tier1Assigned.code(), "tier1_assigned");
}
