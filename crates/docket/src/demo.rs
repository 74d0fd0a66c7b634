//! `docket demo`: drives a running system with the realistic workload of `docket-demo`, over
//! NATS or the embedded deployment's HTTP endpoint, with a progress bar on standard error and the
//! summary on standard output.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use chrono::NaiveDate;
use docket_bus::{Client, ContentType, NatsTransport, Transport};
use docket_demo::{DemoConfig, DemoError, DemoSummary};

use crate::client::HttpTransport;

/// Options of `docket demo`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  docket up &            # in another terminal\n  docket demo --cases 300\n  docket demo --nats nats://127.0.0.1:4222 --cases 1000 --concurrency 32\n\nThe services take every command's time from their own clock: deadlines the demo leaves\nrunning are recorded as missed when they pass on that clock, and on a clock where no guideline\nversion is in force (after 20 January 2025) decisions carry no guidance and need no training."
)]
pub(crate) struct DemoArgs {
    /// Drive a system over NATS (comma-separated URLs) instead of the HTTP endpoint.
    #[arg(long, env = "DOCKET_NATS", conflicts_with = "http")]
    nats: Option<String>,
    /// The embedded deployment's HTTP endpoint (`docket up`).
    #[arg(long, env = "DOCKET_HTTP_URL", default_value = "http://127.0.0.1:7400")]
    http: String,
    /// Cases to open and decide.
    #[arg(long, default_value_t = DemoConfig::default().cases)]
    cases: usize,
    /// Seed of the workload: the same seed plans the same workload.
    #[arg(long, default_value_t = DemoConfig::default().seed)]
    seed: u64,
    /// Cases driven at the same time.
    #[arg(long, default_value_t = DemoConfig::default().concurrency)]
    concurrency: usize,
    /// The day the workload is dated from (YYYY-MM-DD, noon UTC): encounters, training and
    /// G-28s come before it. Default 2024-03-04, when the 2021 guidelines were in force.
    #[arg(long)]
    start: Option<NaiveDate>,
    /// Encode command bodies in postcard instead of JSON.
    #[arg(long)]
    postcard: bool,
    /// The embedded deployment's data directory, read (without taking it over) after the run so
    /// the summary reports what the log holds, not what was planned. Over NATS the log stream
    /// is read instead.
    #[arg(long, default_value = "docket-data")]
    data_dir: std::path::PathBuf,
    #[command(flatten)]
    key: crate::tokens::IssuerArgs,
}

/// `docket demo`.
pub(crate) async fn demo(args: DemoArgs) -> Result<()> {
    let mut config = DemoConfig {
        cases: args.cases,
        seed: args.seed,
        concurrency: args.concurrency,
        content_type: if args.postcard {
            ContentType::Postcard
        } else {
            ContentType::Json
        },
        ..DemoConfig::default()
    };
    if let Some(day) = args.start {
        config.start = day
            .and_hms_opt(12, 0, 0)
            .ok_or_else(|| anyhow!("--start {day}: not a day"))?
            .and_utc();
    }
    let issuer = args.key.issuer()?;
    let mut summary = match &args.nats {
        Some(url) => {
            let client = docket_bus::connect(url, "docket-demo").await.map_err(|e| {
                anyhow!(
                    "{}: start nats-server, then `docket up --nats {}`",
                    e.message,
                    docket_log::jetstream::redact_url(url)
                )
            })?;
            drive(
                NatsTransport::new(client),
                issuer,
                &config,
                &format!("{0}: start it with `docket up --nats {0}` (or one `docket serve <service> --nats {0}` per service)", docket_log::jetstream::redact_url(url)),
            )
            .await?
        }
        None => {
            drive(
                HttpTransport::new(&args.http)?,
                issuer,
                &config,
                &format!("{}: start it with `docket up`", args.http),
            )
            .await?
        }
    };
    match read_log(&args).await {
        Ok(world) => {
            summary.read_back(world.cases.values().map(|(_, case)| case));
            if summary.recorded.as_ref().is_some_and(|r| r.cases == 0) {
                eprintln!(
                    "docket demo: the log read back holds none of this run's cases (is {} the data directory of the system driven? --data-dir)",
                    args.data_dir.display()
                );
            }
        }
        Err(e) => eprintln!("docket demo: the summary shows the plan, not the log: {e:#}"),
    }
    println!("{summary}");
    if summary.unexpected_total() > 0 {
        bail!(
            "{} commands were refused unexpectedly (see the summary)",
            summary.unexpected_total()
        );
    }
    Ok(())
}

/// The log of the system driven, folded as the services fold it: the log stream over NATS, or
/// the embedded deployment's segment files read as they stand (every acknowledged commit is on
/// disk; a frame still being written at the tail ends the read).
async fn read_log(args: &DemoArgs) -> Result<docket_runtime::WorldView> {
    let mut world = docket_runtime::WorldView::default();
    let mut fold = |position: u64, bytes: bytes::Bytes| -> Result<()> {
        let commit = docket_log::commit::decode(&bytes)
            .map_err(|e| anyhow!("the commit at position {position}: {e}"))?;
        docket_runtime::apply_commit(
            &mut world,
            &docket_log::RecordedCommit {
                position,
                commit,
                bytes,
            },
        )
        .map_err(|e| anyhow!("the commit at position {position}: {e}"))
    };
    match &args.nats {
        Some(url) => {
            let log = docket_log::jetstream::JetStreamLog::connect_url(url, Default::default())
                .await
                .map_err(|e| anyhow!("reading the log stream: {e}"))?;
            let mut after = 0;
            loop {
                let batch = docket_log::EventLog::read_all(&log, after, 4096)
                    .await
                    .map_err(|e| anyhow!("reading the log stream: {e}"))?;
                let Some(last) = batch.last() else { break };
                after = last.position;
                for c in batch {
                    fold(c.position, c.bytes)?;
                }
            }
        }
        None => {
            let dir = &args.data_dir;
            if !dir.is_dir() {
                bail!("{} is not a directory (--data-dir)", dir.display());
            }
            let reader = docket_log::file::export::SegmentReader::open(dir)
                .map_err(|e| anyhow!("reading {}: {}", dir.display(), e.reason))?;
            for item in reader {
                match item {
                    Ok((position, bytes)) => fold(position, bytes)?,
                    // The live tail: a frame being written as we read.
                    Err(_) => break,
                }
            }
        }
    }
    Ok(world)
}

async fn drive<T: Transport + 'static>(
    transport: T,
    issuer: docket_bus::token::TokenIssuer,
    config: &DemoConfig,
    hint: &str,
) -> Result<DemoSummary> {
    eprintln!(
        "docket demo: {} cases across the 25 field offices, {} at a time (seed {})",
        config.cases, config.concurrency, config.seed
    );
    let bar = Arc::new(Bar::new());
    let drawing = bar.clone();
    let result = docket_demo::run(
        Client::new(transport, issuer),
        config,
        move |done, total| drawing.update(done, total),
    )
    .await;
    bar.finish(result.as_ref().map_or(0, |s| s.sent));
    match result {
        Ok(summary) => Ok(summary),
        Err(DemoError::Unreachable(e)) => {
            Err(anyhow!("no docket answers at {hint} ({})", e.message))
        }
        Err(e) => Err(e.into()),
    }
}

/// A progress bar on standard error, redrawn in place on a terminal (at most ten times a
/// second), or a line every tenth of the way otherwise.
struct Bar {
    terminal: bool,
    started: Instant,
    /// When it was last drawn, the tenth of the way it showed, and whether it ever was.
    last: Mutex<(Instant, usize, bool)>,
}

impl Bar {
    fn new() -> Self {
        let now = Instant::now();
        Bar {
            terminal: std::io::stderr().is_terminal(),
            started: now,
            last: Mutex::new((now, 0, false)),
        }
    }

    fn update(&self, done: usize, total: usize) {
        let total = total.max(1);
        let tenth = done * 10 / total;
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let due = if self.terminal {
            now.duration_since(last.0).as_millis() >= 100 || done == total
        } else {
            tenth > last.1 || done == total
        };
        if due {
            *last = (now, tenth, true);
            self.draw(done, total);
        }
    }

    /// Shows the final count (the plan's estimate may have been off) and ends the line.
    fn finish(&self, done: usize) {
        let drawn = self.last.lock().unwrap_or_else(|e| e.into_inner()).2;
        if done > 0 {
            self.draw(done, done);
        }
        if self.terminal && (drawn || done > 0) {
            eprintln!();
        }
    }

    fn draw(&self, done: usize, total: usize) {
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let width = 30;
        let filled = (done * width / total.max(1)).min(width);
        let line = format!(
            "[{}{}] {done}/{total} commands, {:3}%, {rate:.0}/s",
            "#".repeat(filled),
            ".".repeat(width - filled),
            done * 100 / total.max(1),
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}
