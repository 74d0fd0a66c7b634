//! nats-server faults under load: a single node killed (SIGKILL) and restarted, and a
//! three-node cluster with the log stream at R3 losing a follower, then the stream's leader.

use std::time::{Duration, Instant};

use bytes::Bytes;
use docket_bus::NatsTransport;
use docket_log::jetstream::{JetStreamConfig, JetStreamLog, DEFAULT_STREAM_NAME};
use serde_json::Value;

use super::checker::{
    self, check_commands, check_guidance, settle, Generator, Load, Plan, Report, Target,
};
use super::processes::{log_tails, serve, terminate, wait_ready};

/// Each unit: 8 commands (officer, case, record, two sources unavailable, attestation,
/// assessment, one more record: one guidance reaction).
const PLAN: Plan = Plan {
    assess: true,
    decide: false,
    later_records: 1,
    reviews: 0,
    pause: Duration::from_millis(5),
};

/// The log stream's leader, as stream info reports it (none while there is none, or no answer).
async fn stream_leader(client: &docket_bus::NatsClient) -> Option<String> {
    let subject = format!("$JS.API.STREAM.INFO.{DEFAULT_STREAM_NAME}");
    let reply = tokio::time::timeout(
        Duration::from_secs(2),
        client.request(subject, Bytes::new()),
    )
    .await
    .ok()?
    .ok()?;
    let info: Value = serde_json::from_slice(&reply.payload).ok()?;
    info["cluster"]["leader"].as_str().map(str::to_owned)
}

/// Polls until the stream has a leader other than `not`; the leader and how long it took.
async fn wait_for_leader(client: &docket_bus::NatsClient, not: Option<&str>) -> (String, Duration) {
    let started = Instant::now();
    loop {
        if let Some(leader) = stream_leader(client).await {
            if Some(leader.as_str()) != not {
                return (leader, started.elapsed());
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no stream leader after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The longest time without any acknowledgement between `from` and `to` (a stall).
fn longest_gap(gen: &Generator, from: Instant, to: Instant) -> Duration {
    let mut times: Vec<Instant> = gen
        .acked()
        .iter()
        .map(|a| a.at)
        .filter(|t| *t >= from && *t <= to)
        .collect();
    times.sort();
    let mut gap = Duration::ZERO;
    let mut last = from;
    for t in times.into_iter().chain(std::iter::once(to)) {
        gap = gap.max(t - last);
        last = t;
    }
    gap
}

async fn wait_for_acks(gen: &Generator, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while gen.acked_count() < count {
        assert!(Instant::now() < deadline, "fewer than {count} acknowledged");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_server_killed_and_restarted_during_load() {
    let _serial = super::SERIAL.lock().await;
    let started = Instant::now();
    let mut server = tokio::task::spawn_blocking(docket_testkit::NatsServer::start)
        .await
        .unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let mut intake = serve("intake", &url, &[], dir.path());
    let mut assessment = serve("assessment", &url, &[], dir.path());
    let client = docket_bus::connect(&url, "faults-nats").await.unwrap();
    wait_ready(&client, &["intake", "assessment"], dir.path()).await;
    let gen = Generator::new(Target::Nats(NatsTransport::new(client.clone())), "nats");
    let units = 40;
    let load = Load::start(&gen, PLAN, 4, units);
    load.stop(); // exactly `units` units
    let total = (units as usize) * PLAN.commands() as usize;

    // Kill the server a quarter of the way in, restart it 1.5 s later (DOCKET_FAULTS_DOWN_MS
    // to try other outages).
    let down: u64 = std::env::var("DOCKET_FAULTS_DOWN_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    wait_for_acks(&gen, total / 4).await;
    let acked_before = gen.acked_count();
    let killed = Instant::now();
    tokio::task::block_in_place(|| server.kill());
    tokio::time::sleep(Duration::from_millis(down)).await;
    let restarting = Instant::now();
    tokio::task::block_in_place(|| server.restart());
    let restart = restarting.elapsed();
    let first_ack = gen
        .next_ack_after(restarting, Duration::from_secs(60))
        .await;
    let units = load.finish().await;
    let acked_during_outage = gen
        .acked()
        .iter()
        .filter(|a| a.at > killed && a.at < restarting)
        .count();
    // The services reconnected and still answer.
    wait_ready(&client, &["intake", "assessment"], dir.path()).await;

    let log = JetStreamLog::connect_url(&url, JetStreamConfig::default())
        .await
        .unwrap();
    let (commits, settled) = settle(&log, Duration::from_secs(30), |commits| {
        checker::guidance(commits).pending.is_empty()
    })
    .await;
    // Stopped gracefully, the services log any background task that failed.
    tokio::task::block_in_place(|| {
        terminate(&mut assessment);
        terminate(&mut intake);
    });
    let mut report = Report::new("nats-single-node-kill-restart");
    check_commands(&mut report, &gen, &gen.acked(), &commits);
    check_guidance(&mut report, &commits);
    report.figure("units", units);
    report.figure("kills", 1);
    report.figure("acked_before_kill", acked_before);
    report.figure("acked_while_down", acked_during_outage);
    report.figure("down_ms", (restarting - killed).as_millis());
    report.figure("server_restart_ms", restart.as_millis());
    report.figure("first_ack_after_restart_ms", first_ack.as_millis());
    report.figure("client_retries", gen.retries());
    report.figure("settle_ms", settled.as_millis());
    report.figure("refused", gen.refused().len());
    report.figure("secs", started.elapsed().as_secs());
    for refusal in gen.refused() {
        report.problem(format!("REFUSED {refusal}"));
    }
    report.print_and_assert(&format!("{}\n{}", log_tails(dir.path()), server.log_tail()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_cluster_loses_a_follower_then_the_stream_leader_during_load() {
    let _serial = super::SERIAL.lock().await;
    let started = Instant::now();
    let mut cluster = tokio::task::spawn_blocking(|| docket_testkit::NatsCluster::start(3))
        .await
        .unwrap();
    let url = cluster.url();
    let dir = tempfile::tempdir().unwrap();
    // One after the other: on a fresh cluster, a second process opening the log while the
    // first creates the R3 stream can time out reading it and exit (see the report).
    let client = docket_bus::connect(&url, "faults-cluster").await.unwrap();
    let mut intake = serve("intake", &url, &["--replicas", "3"], dir.path());
    wait_ready(&client, &["intake"], dir.path()).await;
    let mut assessment = serve("assessment", &url, &["--replicas", "3"], dir.path());
    wait_ready(&client, &["assessment"], dir.path()).await;
    let transport = NatsTransport::new(client.clone()).with_timeout(Duration::from_secs(10));
    let gen = Generator::new(Target::Nats(transport), "cluster");
    let plan = Plan {
        pause: Duration::from_millis(25),
        ..PLAN
    };
    let load = Load::start(&gen, plan, 3, 0);
    wait_for_acks(&gen, 30).await;

    // A follower of the log stream killed during load, restarted 2 s later.
    let (leader, _) = wait_for_leader(&client, None).await;
    let follower = (0..cluster.len())
        .find(|&i| cluster.server_name(i) != leader)
        .unwrap();
    let follower_killed = Instant::now();
    tokio::task::block_in_place(|| cluster.kill(follower));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restarting = Instant::now();
    tokio::task::block_in_place(|| cluster.restart(follower));
    let follower_restart = restarting.elapsed();
    let follower_stall = longest_gap(&gen, follower_killed, Instant::now());
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Then the stream leader killed during load: a new leader is elected, commands go on.
    let (leader, _) = wait_for_leader(&client, None).await;
    let leader_index = cluster.index_of(&leader).unwrap();
    let leader_killed = Instant::now();
    tokio::task::block_in_place(|| cluster.kill(leader_index));
    let (new_leader, election) = wait_for_leader(&client, Some(&leader)).await;
    let first_ack = gen
        .next_ack_after(leader_killed + election, Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leader_stall = longest_gap(&gen, leader_killed, Instant::now());
    let restarting = Instant::now();
    tokio::task::block_in_place(|| cluster.restart(leader_index));
    let leader_restart = restarting.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let units = load.finish().await;
    wait_ready(&client, &["intake", "assessment"], dir.path()).await;

    let config = JetStreamConfig {
        replicas: 3,
        ..JetStreamConfig::default()
    };
    let log = JetStreamLog::connect_url(&url, config).await.unwrap();
    let (commits, settled) = settle(&log, Duration::from_secs(30), |commits| {
        checker::guidance(commits).pending.is_empty()
    })
    .await;
    // Stopped gracefully, the services log any background task that failed.
    tokio::task::block_in_place(|| {
        terminate(&mut assessment);
        terminate(&mut intake);
    });
    let mut report = Report::new("nats-cluster-r3-follower-then-leader");
    check_commands(&mut report, &gen, &gen.acked(), &commits);
    check_guidance(&mut report, &commits);
    report.figure("units", units);
    report.figure("kills", 2);
    report.figure("follower_stall_ms", follower_stall.as_millis());
    report.figure("follower_restart_ms", follower_restart.as_millis());
    report.figure("leader_stall_ms", leader_stall.as_millis());
    report.figure("leader_election_ms", election.as_millis());
    report.figure("first_ack_after_election_ms", first_ack.as_millis());
    report.figure("leader_restart_ms", leader_restart.as_millis());
    report.figure("new_leader_differs", new_leader != leader);
    report.figure("client_retries", gen.retries());
    report.figure("settle_ms", settled.as_millis());
    report.figure("refused", gen.refused().len());
    report.figure("secs", started.elapsed().as_secs());
    for refusal in gen.refused() {
        report.problem(format!("REFUSED {refusal}"));
    }
    let tails: Vec<String> = (0..cluster.len()).map(|i| cluster.log_tail(i)).collect();
    report.print_and_assert(&format!("{}\n{}", log_tails(dir.path()), tails.join("\n")));
}
