//! `bench log`: append and replay throughput of both log backends, each beside a baseline
//! measured in the same run (raw `fdatasync` for the file backend, raw async-nats JetStream for
//! the JetStream backend).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::{EventData, EventLog, ExpectedRevision, Metadata, StreamId};
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
    /// Measure only the file backend.
    #[arg(long)]
    pub skip_jetstream: bool,
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
        rates.push(rate(head as usize, start.elapsed()));
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[1])
}

fn progress(what: &str) {
    eprintln!("bench log: {what}");
}
