//! The benchmarks at toy sizes: each runs end to end and measures what it claims to. Figures at
//! these sizes mean nothing; the real runs are `docket bench <name>`.

use docket_bench::dashboard;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_bench_rebuilds_every_commit_of_a_real_workload() -> anyhow::Result<()> {
    let outcome = dashboard::run(dashboard::Options {
        commits: 2_000,
        concurrency: 32,
        repeat: 1,
        ..dashboard::Options::default()
    })
    .await?;

    assert!(outcome.head >= 2_000, "log of {} commits", outcome.head);
    assert_eq!(outcome.commits, 2_000);
    assert_eq!(outcome.projection.position(), 2_000);
    let events: u64 = outcome.events.values().sum();
    assert!(events >= 2_000, "{events} events in 2,000 commits");
    for kind in [
        "officer.registered",
        "case.opened",
        "case.decision_recorded",
        "review.requested",
        "notification.queued",
    ] {
        assert!(
            outcome.events.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} in {:?}",
            outcome.events
        );
    }

    let overview = &outcome.overview;
    assert_eq!(overview.position, 2_000);
    assert!(overview.decisions.total > 0, "no decisions projected");
    assert!(
        overview.notifications.queued > 0,
        "no notifications projected"
    );
    assert_eq!(
        overview.decisions.total, outcome.events["case.decision_recorded"],
        "every recorded decision counted once"
    );

    let names: Vec<&str> = outcome.figures.iter().map(|f| f.name.as_str()).collect();
    for name in [
        "dashboard.rebuild_1m_s",
        "dashboard.rebuild_commits_per_s",
        "dashboard.read_only_s",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    Ok(())
}
