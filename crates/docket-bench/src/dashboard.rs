//! `bench dashboard`: a rebuild of the dashboard's projections from position 0 over a log of
//! 1,000,000 commits of real domain events, beside reading (and decoding) the same commits
//! without projecting them, measured in the same run.
//!
//! The log is made by the real system, not by a generator of events: the `docket demo`
//! workload drives the three command services in process (the embedded deployment's
//! [`docket_bus::LocalBus`] over a [`FileLog`]), with their deadline scheduler and guidance
//! reaction, and the notification service delivering to a local webhook that refuses a few
//! notifications once (retried) and a few always (abandoned), in weekly rounds through 2024
//! while the 2021 guidelines were in force. The services' clock runs an hour per second within
//! a round and jumps a week between rounds, so the deadlines a round leaves running are
//! recorded as missed during the next one, and the facts spread over the months the dashboard
//! groups by. Each round waits for its notifications to be queued before the next begins.
//!
//! The rebuild reads the log the way the dashboard does, through a subscription from position
//! 0, and applies every commit to a fresh [`docket_dashboard::Projection`]. Beside it: the same
//! subscription without projecting (`read_only`), with every event decoded (`read_decode_all`),
//! and the projection alone over commits already in memory (`project_only`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use docket_bus::{Client, ContentType, LocalBus};
use docket_demo::DemoConfig;
use docket_domain::policy::PolicySet;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::EventLog;
use docket_notify::NotifyConfig;
use docket_runtime::clock::{Clock, Jumps};
use docket_runtime::{Executor, ExecutorConfig, World};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{rate, Figure};

/// Options of `bench dashboard`.
#[derive(Clone, Debug, clap::Args)]
pub struct Options {
    /// Where the log is written (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Commits rebuilt; the log is made until it holds at least this many.
    #[arg(long, default_value_t = 1_000_000)]
    pub commits: u64,
    /// Cases the workload drives at once while making the log.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Seed of the workload (round `r` uses `seed + r`).
    #[arg(long, default_value_t = 20210930)]
    pub seed: u64,
    /// Keep the log made in `--dir` (its path is printed) to measure it again with `--reuse`.
    #[arg(long, requires = "dir")]
    pub keep: bool,
    /// Measure an existing log directory (for example one kept with `--keep`) instead of
    /// making one.
    #[arg(long, conflicts_with = "keep")]
    pub reuse: Option<PathBuf>,
    /// Make the log without the notification service (faster; no `notification.*` events).
    #[arg(long)]
    pub skip_notifications: bool,
    /// Times each measurement is repeated; the best is printed.
    #[arg(long, default_value_t = 2)]
    pub repeat: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dir: None,
            commits: 1_000_000,
            concurrency: 256,
            seed: 20210930,
            keep: false,
            reuse: None,
            skip_notifications: false,
            repeat: 2,
        }
    }
}

/// What a run measured, and the projection its last rebuild made.
#[derive(Debug)]
pub struct Outcome {
    /// The figures, as printed.
    pub figures: Vec<Figure>,
    /// Commits in the log (at least the commits rebuilt).
    pub head: u64,
    /// Commits rebuilt.
    pub commits: u64,
    /// Events in the commits rebuilt, by type name.
    pub events: BTreeMap<String, u64>,
    /// The projection of the last rebuild.
    pub projection: docket_dashboard::Projection,
    /// Its overview, unfiltered, as of its newest event.
    pub overview: docket_dashboard::Overview,
}

fn progress(message: &str) {
    eprintln!("-- {message}");
}

/// Monday 8 January 2024, noon UTC: the first round. The 2021 guidelines were in force from
/// 23 June 2023 until 20 January 2025.
const FIRST_ROUND_SECONDS: i64 = 1_704_715_200;
/// The last round starts no later than Monday 6 January 2025, still inside the window.
const LAST_ROUND_SECONDS: i64 = 1_736_164_800;
/// Weekly rounds: 2024 is 52 weeks; a bigger log makes bigger rounds, not more of them.
const MAX_ROUNDS: u64 = 50;
/// Commits a round aims at, at least: each round registers its own staff (~600 commands).
const MIN_ROUND_COMMITS: u64 = 20_000;
/// Simulated seconds per real second within a round.
const CLOCK_SPEED: f64 = 3_600.0;

/// The services' clock: runs `CLOCK_SPEED` times real time and can be set forward.
#[derive(Debug)]
struct SimClock {
    base: Mutex<(DateTime<Utc>, Instant)>,
    jumps: Jumps,
}

impl SimClock {
    fn new(at: DateTime<Utc>) -> Self {
        SimClock {
            base: Mutex::new((at, Instant::now())),
            jumps: Jumps::default(),
        }
    }

    fn set(&self, at: DateTime<Utc>) {
        *self.base.lock().unwrap_or_else(PoisonError::into_inner) = (at, Instant::now());
        self.jumps.jumped();
    }
}

impl Clock for SimClock {
    fn now(&self) -> DateTime<Utc> {
        let (at, since) = *self.base.lock().unwrap_or_else(PoisonError::into_inner);
        let ran = Duration::from_secs_f64(since.elapsed().as_secs_f64() * CLOCK_SPEED);
        at + chrono::Duration::from_std(ran).unwrap_or_default()
    }

    fn jumps(&self) -> Option<tokio::sync::watch::Receiver<()>> {
        Some(self.jumps.subscribe())
    }
}

fn at_seconds(seconds: i64) -> DateTime<Utc> {
    // Constants in range: `from_timestamp` cannot fail for them.
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

/// Runs the dashboard benchmark and prints its figures.
pub async fn run(options: Options) -> anyhow::Result<Outcome> {
    anyhow::ensure!(options.commits > 0, "--commits must be at least 1");
    anyhow::ensure!(options.repeat > 0, "--repeat must be at least 1");
    anyhow::ensure!(
        !options.keep || options.dir.is_some(),
        "--keep needs --dir: a temporary directory is removed at the end"
    );
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let _work;
    let log_dir = match &options.reuse {
        Some(dir) => dir.clone(),
        None => {
            let base = options
                .dir
                .clone()
                .unwrap_or_else(|| temp.path().to_path_buf());
            std::fs::create_dir_all(&base)
                .with_context(|| format!("creating {}", base.display()))?;
            let work = tempfile::tempdir_in(&base).context("creating the work directory")?;
            let dir = work.path().join("log");
            if options.keep {
                progress(&format!("the log is kept in {}", dir.display()));
                let _ = work.keep();
            } else {
                _work = work;
            }
            let started = Instant::now();
            make_log(&dir, &options).await?;
            progress(&format!(
                "setup: the log was made in {:.1} s",
                started.elapsed().as_secs_f64()
            ));
            dir
        }
    };

    // Opening checks the whole log (checksums, hash chains) once; every reader of the process
    // shares that, so it is printed apart and is not part of the rebuild.
    let t = Instant::now();
    let log = FileLog::open(FileLogConfig::new(&log_dir))
        .await
        .with_context(|| format!("opening the log in {}", log_dir.display()))?;
    let opened = t.elapsed();
    let head = log.head().await?;
    anyhow::ensure!(
        head >= options.commits,
        "the log holds {head} commits, fewer than the {} to rebuild",
        options.commits
    );
    let commits = options.commits;
    progress(&format!(
        "the log holds {head} commits; measuring the first {commits}"
    ));

    // Alternate the three so that drift on the machine hits them alike; keep each one's best.
    let mut read_only = Vec::new();
    let mut decoded = Vec::new();
    let mut rebuilt = Vec::new();
    let mut events = BTreeMap::new();
    let mut projection = None;
    for pass in 1..=options.repeat {
        progress(&format!(
            "pass {pass}/{}: reading without projecting",
            options.repeat
        ));
        read_only.push(read_only_once(&log, commits).await?);
        progress(&format!(
            "pass {pass}/{}: reading and decoding every event",
            options.repeat
        ));
        let (elapsed, counted) = decode_once(&log, commits).await?;
        decoded.push(elapsed);
        events = counted;
        progress(&format!("pass {pass}/{}: rebuilding", options.repeat));
        drop(projection.take());
        let (elapsed, p) = rebuild_once(&log, commits).await?;
        rebuilt.push(elapsed);
        projection = Some(p);
    }
    progress("the projection alone: the same commits read into memory first, then applied");
    let in_memory = read_into_memory(&log, commits).await?;
    let mut projected = Vec::new();
    for _ in 0..options.repeat {
        let t = Instant::now();
        let mut p = docket_dashboard::Projection::new();
        for commit in &in_memory {
            p.apply(commit)
                .with_context(|| format!("projecting the commit at {}", commit.position))?;
        }
        projected.push(t.elapsed());
        std::hint::black_box(&p);
    }
    drop(in_memory);
    log.close().await?;
    let projection = projection.context("no rebuild ran")?;
    anyhow::ensure!(
        projection.position() == commits,
        "the projection applied {} of {commits} commits",
        projection.position()
    );

    let total: u64 = events.values().sum();
    let mut by_count: Vec<_> = events.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    progress(&format!(
        "{total} events in {commits} commits, {} types:",
        events.len()
    ));
    for (name, count) in by_count {
        eprintln!(
            "--   {name:<40} {count:>9} {:>5.1}%",
            100.0 * *count as f64 / total.max(1) as f64
        );
    }

    // The log's events are dated 2024, so the overview is taken as of its newest event (the
    // dashboard itself counts windows and deadline states back from now).
    let newest = DateTime::from_timestamp_micros(projection.newest_micros()).unwrap_or_default();
    let t = Instant::now();
    let overview = projection.overview(&docket_dashboard::Filter::default(), newest);
    let overview_time = t.elapsed();
    progress(&format!(
        "overview at {newest}: {} open reviews, {} decisions, {} deadlines missed, {} notifications queued ({} delivered, {} abandoned)",
        overview.review_queue.open,
        overview.decisions.total,
        overview.deadlines_missed.total,
        overview.notifications.queued,
        overview.notifications.delivered,
        overview.notifications.abandoned
    ));

    let best = |v: &[Duration]| v.iter().copied().min().unwrap_or_default();
    let (rebuild, read, decode) = (best(&rebuilt), best(&read_only), best(&decoded));
    let figures = vec![
        Figure::new("dashboard.commits", commits as f64, "commits").print(),
        Figure::new("dashboard.rebuild_1m_s", rebuild.as_secs_f64(), "s").print(),
        Figure::new(
            "dashboard.rebuild_commits_per_s",
            rate(commits as usize, rebuild),
            "commits/s",
        )
        .print(),
        Figure::new("dashboard.read_only_s", read.as_secs_f64(), "s").print(),
        Figure::new("dashboard.read_decode_all_s", decode.as_secs_f64(), "s").print(),
        Figure::new(
            "dashboard.project_only_s",
            best(&projected).as_secs_f64(),
            "s",
        )
        .print(),
        Figure::new("dashboard.log_open_s", opened.as_secs_f64(), "s").print(),
        Figure::new(
            "dashboard.overview_ms",
            overview_time.as_secs_f64() * 1e3,
            "ms",
        )
        .print(),
    ];
    Ok(Outcome {
        figures,
        head,
        commits,
        events,
        projection,
        overview,
    })
}

/// Reads the first `commits` commits through a subscription from position 0, as the dashboard
/// does, and does nothing with them.
async fn read_only_once(log: &FileLog, commits: u64) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut feed = log.subscribe(0).await?;
    let mut seen = 0;
    while seen < commits {
        let commit = feed
            .next()
            .await
            .context("the subscription ended before the head")??;
        std::hint::black_box(&commit);
        seen = commit.position;
    }
    Ok(start.elapsed())
}

/// The first `commits` commits, read through a subscription and kept.
async fn read_into_memory(
    log: &FileLog,
    commits: u64,
) -> anyhow::Result<Vec<docket_log::RecordedCommit>> {
    let mut feed = log.subscribe(0).await?;
    let mut all = Vec::with_capacity(commits as usize);
    while (all.len() as u64) < commits {
        all.push(
            feed.next()
                .await
                .context("the subscription ended before the head")??,
        );
    }
    Ok(all)
}

/// As [`read_only_once`], and decodes every event as the projection must (domain events from
/// postcard; others, the notification service's, are only counted). Returns the events by type.
async fn decode_once(
    log: &FileLog,
    commits: u64,
) -> anyhow::Result<(Duration, BTreeMap<String, u64>)> {
    let start = Instant::now();
    let mut feed = log.subscribe(0).await?;
    let mut seen = 0;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    while seen < commits {
        let commit = feed
            .next()
            .await
            .context("the subscription ended before the head")??;
        for event in &commit.commit.events {
            if let Ok(decoded) = docket_runtime::decode_event(event) {
                std::hint::black_box(&decoded);
            }
            match counts.get_mut(event.type_name.as_str()) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(event.type_name.clone(), 1);
                }
            }
        }
        seen = commit.position;
    }
    Ok((start.elapsed(), counts))
}

/// Applies the first `commits` commits, read through a subscription from position 0, to a fresh
/// projection.
async fn rebuild_once(
    log: &FileLog,
    commits: u64,
) -> anyhow::Result<(Duration, docket_dashboard::Projection)> {
    let start = Instant::now();
    let mut projection = docket_dashboard::Projection::new();
    let mut feed = log.subscribe(0).await?;
    while projection.position() < commits {
        let commit = feed
            .next()
            .await
            .context("the subscription ended before the head")??;
        projection
            .apply(&commit)
            .with_context(|| format!("projecting the commit at {}", commit.position))?;
    }
    Ok((start.elapsed(), projection))
}

/// Makes a log of at least `options.commits` commits in `dir`: the demo workload, in weekly
/// rounds, against the command services and the notification service in process.
async fn make_log(dir: &std::path::Path, options: &Options) -> anyhow::Result<()> {
    let log = FileLog::open(FileLogConfig::new(dir)).await?;
    let world = World::new();
    world.follow(log.clone());
    let checkpoints = docket_log::AnyCheckpoints::File(log.checkpoints()?);
    let executor = Executor::new(
        log.clone(),
        world.clone(),
        ExecutorConfig::new(PolicySet::shipped()?),
    );
    let first = at_seconds(FIRST_ROUND_SECONDS);
    let clock = Arc::new(SimClock::new(first));
    let bus = LocalBus::new();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // Every command carries a signed actor token, as in production.
    let (actor_skey, actor_vkey) = docket_bus::token::generate_key();
    let issuer = docket_bus::token::TokenIssuer::new(&actor_skey)?;
    let services = docket_node::register_local(
        &bus,
        &docket_node::COMMAND_SERVICES,
        executor,
        checkpoints.clone(),
        None,
        docket_bus::token::TokenVerifier::new(&[actor_vkey])?,
        clock.clone(),
        stopped.clone(),
    );
    let mut notifications = None;
    if !options.skip_notifications {
        let (webhook, sink) = webhook_sink().await?;
        let config = NotifyConfig {
            max_attempts: NOTIFY_ATTEMPTS,
            concurrency: 64,
            ..NotifyConfig::new(format!("http://{webhook}/hook"), "bench-secret")
        };
        let service = tokio::spawn(docket_notify::run(
            config,
            log.clone(),
            checkpoints,
            clock.clone(),
            docket_notify::Metrics::default(),
            stopped,
        ));
        notifications = Some((service, sink));
    }

    let target = options.commits;
    let rounds = (target / MIN_ROUND_COMMITS).clamp(1, MAX_ROUNDS);
    let per_round = target.div_ceil(rounds);
    progress(&format!(
        "making a log of {target} commits: the demo workload in ~{rounds} weekly rounds of ~{per_round} commits, {} cases at a time{}",
        options.concurrency,
        if options.skip_notifications { ", no notifications" } else { "" }
    ));
    // Estimates, corrected after every round: each round's staff, and commits per case (its
    // commands, the guidance reaction's, its notifications and the deadline misses it causes).
    let staff_commits = 700u64;
    let mut per_case = 16.0f64;
    let mut head = 0u64;
    let mut unexpected = 0usize;
    let started = Instant::now();
    let mut round = 0u64;
    let mut at = first;
    while head < target {
        at = (first + chrono::Duration::weeks(round as i64)).min(at_seconds(LAST_ROUND_SECONDS));
        clock.set(at);
        let want = per_round.min(target - head);
        let cases = ((want.saturating_sub(staff_commits)) as f64 / per_case).ceil() as usize;
        let config = DemoConfig {
            cases: cases.max(10),
            seed: options.seed.wrapping_add(round),
            concurrency: options.concurrency,
            start: at,
            content_type: ContentType::Postcard,
        };
        let t = Instant::now();
        let summary =
            docket_demo::run(Client::new(bus.clone(), issuer.clone()), &config, |_, _| {}).await?;
        let demo_time = t.elapsed();
        unexpected += summary.unexpected_total();
        if summary.unexpected_total() > 0 {
            eprintln!("{summary}");
        }
        // The round's notifications are queued one at a time, more slowly than the workload
        // makes them: let them in before the next week, as they would be in a real week.
        let now = settle(&log, &world, Duration::from_millis(300)).await?;
        let made = now - head;
        progress(&format!(
            "round {}: {} cases from {}: {made} commits in {:.1} s (workload {:.1} s), {now} in all, {:.0} s so far",
            round + 1,
            config.cases,
            at.format("%Y-%m-%d"),
            t.elapsed().as_secs_f64(),
            demo_time.as_secs_f64(),
            started.elapsed().as_secs_f64()
        ));
        per_case = (made.saturating_sub(staff_commits).max(1) as f64 / config.cases as f64)
            .clamp(4.0, 64.0);
        head = now;
        round += 1;
    }

    // A week on, the scheduler records what the last round left running, and the notification
    // service delivers what is left; stop once the log has been quiet for longer than either
    // sleeps between checks.
    clock.set(at + chrono::Duration::weeks(1));
    progress("letting the deadline scheduler and the notification service finish");
    let last = settle(&log, &world, Duration::from_secs(3)).await?;
    stop.send(true).ok();
    services.finish().await?;
    if let Some((service, sink)) = notifications {
        service.await??;
        sink.abort();
    }
    log.close().await?;
    progress(&format!(
        "made {last} commits in {:.1} s ({:.0} commits/s)",
        started.elapsed().as_secs_f64(),
        rate(last as usize, started.elapsed())
    ));
    if unexpected > 0 {
        eprintln!(
            "-- WARNING: {unexpected} commands were refused unexpectedly (see the summaries above)"
        );
    }
    Ok(())
}

/// Waits until the log's head has not moved, and the world has applied it, for `quiet`;
/// returns the head.
async fn settle(log: &FileLog, world: &World, quiet: Duration) -> anyhow::Result<u64> {
    let mut last = log.head().await?;
    let mut since = Instant::now();
    while since.elapsed() < quiet {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = log.head().await?;
        if now != last || world.applied() != now {
            since = Instant::now();
        }
        last = now;
    }
    Ok(last)
}

/// Attempts per notification before it is abandoned.
const NOTIFY_ATTEMPTS: u32 = 3;

/// What the bench's webhook answers a notification: its id's last byte decides, so that one in
/// 256 is refused every time (abandoned after [`NOTIFY_ATTEMPTS`]) and 4% are refused once.
fn refuse(id: uuid::Uuid, seen_before: bool) -> bool {
    match id.as_bytes()[15] {
        0 => true,
        1..=10 => !seen_before,
        _ => false,
    }
}

/// A webhook on a free local port that reads each POST and answers 200, or 503 as
/// [`refuse`] says. HTTP/1.1 with keep-alive, as the notification service's client speaks it.
async fn webhook_sink() -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the bench webhook")?;
    let address = listener.local_addr()?;
    let seen = Arc::new(Mutex::new(std::collections::HashSet::new()));
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let _ = serve_connection(stream, &seen).await;
            });
        }
    });
    Ok((address, task))
}

async fn serve_connection(
    mut stream: tokio::net::TcpStream,
    seen: &Mutex<std::collections::HashSet<uuid::Uuid>>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(8192);
    loop {
        // The head of one request.
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let header = |name: &str| {
            head.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let id = header(docket_notify::ID_HEADER).and_then(|v| uuid::Uuid::parse_str(&v).ok());
        while buf.len() < end + length {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        buf.drain(..end + length);
        let refused = id.is_some_and(|id| {
            let seen_before = !seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id);
            refuse(id, seen_before)
        });
        let answer: &[u8] = if refused {
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
        } else {
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        };
        stream.write_all(answer).await?;
    }
}
