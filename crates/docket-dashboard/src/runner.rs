//! [`Dashboard`]: the projection kept current by following the log, its snapshot on disk, and
//! what the dashboard watches beside the log (reaction consumers' lag, log integrity).
//!
//! The snapshot (`dashboard.snapshot` in the dashboard's directory) holds the projection and its
//! position; it is written atomically (temporary file, fsync, rename, fsync of the directory)
//! every `snapshot_every` and at shutdown, and its position is saved as the checkpoint of the
//! consumer `dashboard`, so the dashboard appears in its own lag list. On start the snapshot is
//! used only if it decodes, its checksum matches, and the log still holds the very commit it
//! ended at (same position, same hash); otherwise the projection is rebuilt from position 0.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use docket_bus::Transport;
use docket_log::{Checkpoints, EventLog};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::integrity::IntegrityCheck;
use crate::metrics::Metrics;
use crate::projection::{Projection, ProjectionError};
use crate::view::{ConsumerLag, Filter, Integrity, Overdue, Overview};

/// The consumer name under which the dashboard saves its position.
pub const DASHBOARD_CONSUMER: &str = "dashboard";

/// The snapshot file's name in the dashboard's directory.
pub const SNAPSHOT_FILE: &str = "dashboard.snapshot";

const MAGIC: &[u8; 8] = b"DOCKDSH1";

/// Why the dashboard stopped.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The log failed.
    #[error("the log: {0}")]
    Log(#[from] docket_log::LogError),
    /// A commit could not be folded in.
    #[error("the projection: {0}")]
    Projection(#[from] ProjectionError),
    /// The snapshot could not be written.
    #[error("the snapshot {path}: {source}")]
    Snapshot {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// How the dashboard runs.
#[derive(Clone, Debug)]
pub struct DashboardConfig {
    /// Where the snapshot lives; none keeps the projection in memory only.
    pub dir: Option<PathBuf>,
    /// How often the snapshot is written while the projection moves.
    pub snapshot_every: Duration,
    /// How often consumers' lag and the log head are read.
    pub lag_every: Duration,
    /// How often the latest checkpoint is checked.
    pub integrity_every: Duration,
    /// Ignore the snapshot and rebuild from position 0.
    pub rebuild: bool,
}

impl DashboardConfig {
    /// Snapshots in `dir` (if any) every 10 s; lag every 2 s; integrity every 5 s.
    pub fn new(dir: Option<PathBuf>) -> Self {
        DashboardConfig {
            dir,
            snapshot_every: Duration::from_secs(10),
            lag_every: Duration::from_secs(2),
            integrity_every: Duration::from_secs(5),
            rebuild: false,
        }
    }
}

/// The projection's progress, for live updates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Commits folded in.
    pub position: u64,
    /// The log head last read.
    pub head: u64,
}

/// Readiness, as `/readyz` reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Readiness {
    /// True once the projection reached the head seen at start.
    pub caught_up: bool,
    /// The head seen at start.
    pub start_head: u64,
    /// Why the dashboard stopped following the log, if it did.
    pub fault: Option<String>,
}

#[derive(Debug)]
struct Shared {
    projection: RwLock<Projection>,
    consumers: Mutex<Vec<ConsumerLag>>,
    integrity: Mutex<Integrity>,
    progress: watch::Sender<Progress>,
    readiness: Mutex<Readiness>,
    metrics: Metrics,
}

/// A running dashboard: cheap to clone, answers queries from its projection.
#[derive(Clone, Debug)]
pub struct Dashboard {
    shared: Arc<Shared>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Dashboard {
    /// The overview for `filter`, now.
    pub fn overview(&self, filter: &Filter) -> Overview {
        self.overview_at(filter, Utc::now())
    }

    /// The overview for `filter` at `now`.
    pub fn overview_at(&self, filter: &Filter, now: DateTime<Utc>) -> Overview {
        let mut overview = {
            let p = self
                .shared
                .projection
                .read()
                .unwrap_or_else(|p| p.into_inner());
            p.overview(filter, now)
        };
        overview.head = self.shared.progress.borrow().head.max(overview.position);
        overview.consumers = lock(&self.shared.consumers).clone();
        overview.integrity = lock(&self.shared.integrity).clone();
        overview
    }

    /// Open reviews past a deadline (the drill-down; carries A-numbers).
    pub fn overdue(&self, office: Option<docket_domain::values::FieldOffice>) -> Overdue {
        self.overdue_at(office, Utc::now())
    }

    /// The drill-down at `now`.
    pub fn overdue_at(
        &self,
        office: Option<docket_domain::values::FieldOffice>,
        now: DateTime<Utc>,
    ) -> Overdue {
        let p = self
            .shared
            .projection
            .read()
            .unwrap_or_else(|p| p.into_inner());
        p.overdue(office, now)
    }

    /// A copy of the projection (for tests and rebuild checks).
    pub fn projection(&self) -> Projection {
        let mut copy = self
            .shared
            .projection
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        copy.seal();
        copy
    }

    /// The projection's progress, changing as it moves.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.shared.progress.subscribe()
    }

    /// Whether the dashboard caught up with the log.
    pub fn readiness(&self) -> Readiness {
        lock(&self.shared.readiness).clone()
    }

    /// Waits until the projection reached `position` (or `timeout` passed); true if it did.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut rx = self.progress();
        tokio::time::timeout(timeout, rx.wait_for(|p| p.position >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Starts following `log`, showing the log's head and the consumers' lag in `metrics`; the
    /// task ends at shutdown (after a last snapshot) or on a fault.
    pub async fn start<L, C, A>(
        log: L,
        checkpoints: C,
        integrity: Option<IntegrityCheck<A>>,
        config: DashboardConfig,
        metrics: Metrics,
        shutdown: watch::Receiver<bool>,
    ) -> Result<
        (
            Dashboard,
            tokio::task::JoinHandle<Result<(), DashboardError>>,
        ),
        DashboardError,
    >
    where
        L: EventLog + Clone + Send + Sync + 'static,
        C: Checkpoints + Clone + Send + Sync + 'static,
        A: Transport + 'static,
    {
        let head = log.head().await?;
        let projection = match (&config.dir, config.rebuild) {
            (Some(dir), false) => resume(&log, dir, head).await,
            _ => Projection::new(),
        };
        let position = projection.position();
        tracing::info!(
            from = position,
            head,
            "dashboard: following the log (rebuilding {} commits)",
            head.saturating_sub(position)
        );
        let (progress, _) = watch::channel(Progress { position, head });
        let shared = Arc::new(Shared {
            projection: RwLock::new(projection),
            consumers: Mutex::new(Vec::new()),
            integrity: Mutex::new(Integrity::default()),
            progress,
            readiness: Mutex::new(Readiness {
                caught_up: position >= head,
                start_head: head,
                fault: None,
            }),
            metrics,
        });
        let dashboard = Dashboard { shared };
        let task = tokio::spawn(run(
            dashboard.clone(),
            log,
            checkpoints,
            integrity,
            config,
            shutdown,
        ));
        Ok((dashboard, task))
    }

    fn fault(&self, fault: String) {
        lock(&self.shared.readiness).fault = Some(fault);
    }
}

/// Loads the snapshot if it is sound and matches the log; an empty projection otherwise.
async fn resume<L: EventLog>(log: &L, dir: &Path, head: u64) -> Projection {
    let path = dir.join(SNAPSHOT_FILE);
    let projection = match read_snapshot(&path) {
        Ok(Some(p)) => p,
        Ok(None) => return Projection::new(),
        Err(problem) => {
            tracing::warn!(path = %path.display(), %problem, "dashboard: ignoring the snapshot; rebuilding from position 0");
            return Projection::new();
        }
    };
    let position = projection.position();
    if position == 0 {
        return projection;
    }
    if position > head {
        tracing::warn!(position, head, "dashboard: the snapshot is ahead of the log (a different log?); rebuilding from position 0");
        return Projection::new();
    }
    match log.read_all(position - 1, 1).await {
        Ok(commits) => match commits.first() {
            Some(c) if Some(c.hash().0) == projection.last_hash() => projection,
            _ => {
                tracing::warn!(
                    position,
                    "dashboard: the log's commit at the snapshot's position differs; rebuilding from position 0"
                );
                Projection::new()
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: cannot check the snapshot against the log; rebuilding from position 0");
            Projection::new()
        }
    }
}

fn read_snapshot(path: &Path) -> Result<Option<Projection>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not a dashboard snapshot (bad magic)".into());
    }
    let (body, crc) = bytes[MAGIC.len()..].split_at(bytes.len() - MAGIC.len() - 4);
    let mut stored = [0u8; 4];
    stored.copy_from_slice(crc);
    if crc32fast::hash(body) != u32::from_le_bytes(stored) {
        return Err("checksum mismatch".into());
    }
    postcard::from_bytes(body)
        .map(Some)
        .map_err(|e| format!("cannot decode: {e}"))
}

/// Writes the snapshot atomically and durably.
pub fn write_snapshot(dir: &Path, projection: &Projection) -> Result<(), DashboardError> {
    let path = dir.join(SNAPSHOT_FILE);
    let err = |source| DashboardError::Snapshot {
        path: path.clone(),
        source,
    };
    let body =
        postcard::to_stdvec(projection).map_err(|e| err(std::io::Error::other(e.to_string())))?;
    let mut bytes = Vec::with_capacity(body.len() + 12);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&body);
    bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    std::fs::create_dir_all(dir).map_err(err)?;
    docket_log::write_atomic(&path, &bytes).map_err(err)
}

async fn run<L, C, A>(
    dashboard: Dashboard,
    log: L,
    checkpoints: C,
    mut integrity: Option<IntegrityCheck<A>>,
    config: DashboardConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DashboardError>
where
    L: EventLog + Clone + Send + Sync + 'static,
    C: Checkpoints + Clone + Send + Sync + 'static,
    A: Transport + 'static,
{
    let shared = dashboard.shared.clone();
    let after = shared
        .projection
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .position();
    let mut feed = match log.subscribe(after).await {
        Ok(feed) => feed,
        Err(e) => {
            dashboard.fault(format!("cannot subscribe to the log: {e}"));
            return Err(e.into());
        }
    };
    let mut saved = after;
    let mut last_snapshot = Instant::now();
    let mut last_publish = Instant::now();
    let mut lag_tick = tokio::time::interval(config.lag_every);
    let mut integrity_tick = tokio::time::interval(config.integrity_every);
    lag_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    integrity_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        tokio::select! {
            biased;
            _ = stopped(&mut shutdown) => break Ok(()),
            next = feed.next() => {
                let Some(next) = next else {
                    break Ok(());
                };
                let commit = match next {
                    Ok(c) => c,
                    Err(e) => {
                        dashboard.fault(format!("reading the log: {e}"));
                        break Err(e.into());
                    }
                };
                let position = {
                    let mut p = shared.projection.write().unwrap_or_else(|p| p.into_inner());
                    if let Err(e) = p.apply(&commit) {
                        drop(p);
                        dashboard.fault(e.to_string());
                        break Err(e.into());
                    }
                    p.position()
                };
                let head = shared.progress.borrow().head;
                let caught_up = {
                    let mut r = lock(&shared.readiness);
                    if !r.caught_up && position >= r.start_head {
                        r.caught_up = true;
                        tracing::info!(position, "dashboard: caught up with the log");
                    }
                    r.caught_up
                };
                if !caught_up && position % 100_000 == 0 {
                    tracing::info!(position, head, "dashboard: rebuilding");
                }
                if last_publish.elapsed() >= Duration::from_millis(250) || position >= head {
                    shared.progress.send_replace(Progress { position, head: head.max(position) });
                    last_publish = Instant::now();
                }
                if let Some(dir) = &config.dir {
                    if last_snapshot.elapsed() >= config.snapshot_every {
                        snapshot(&dashboard, dir, &checkpoints, &mut saved).await?;
                        last_snapshot = Instant::now();
                    }
                }
            }
            _ = lag_tick.tick() => {
                refresh_lag(&dashboard, &log, &checkpoints).await;
            }
            _ = integrity_tick.tick() => {
                if let Some(check) = integrity.as_mut() {
                    let report = check.check(&log).await;
                    if report.verified == Some(false) {
                        tracing::error!(problem = ?report.problem, size = ?report.checkpoint_size, "dashboard: the latest checkpoint did not verify");
                    }
                    *lock(&shared.integrity) = report;
                }
            }
        }
    };
    if let Some(dir) = &config.dir {
        snapshot(&dashboard, dir, &checkpoints, &mut saved).await?;
    }
    result
}

async fn snapshot<C: Checkpoints>(
    dashboard: &Dashboard,
    dir: &Path,
    checkpoints: &C,
    saved: &mut u64,
) -> Result<(), DashboardError> {
    let (position, copy) = {
        let p = dashboard
            .shared
            .projection
            .read()
            .unwrap_or_else(|p| p.into_inner());
        if p.position() == *saved {
            return Ok(());
        }
        let mut copy = p.clone();
        copy.seal();
        (p.position(), copy)
    };
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || write_snapshot(&dir, &copy))
        .await
        .map_err(|e| DashboardError::Snapshot {
            path: PathBuf::from(SNAPSHOT_FILE),
            source: std::io::Error::other(e.to_string()),
        })??;
    if let Err(e) = checkpoints.save(DASHBOARD_CONSUMER, position).await {
        tracing::warn!(error = %e, "dashboard: cannot save its checkpoint");
    }
    *saved = position;
    Ok(())
}

async fn refresh_lag<L: EventLog, C: Checkpoints>(dashboard: &Dashboard, log: &L, checkpoints: &C) {
    let head = match log.head().await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: cannot read the log head");
            return;
        }
    };
    dashboard.shared.metrics.set_log_head(head);
    dashboard
        .shared
        .progress
        .send_modify(|p| p.head = head.max(p.position));
    match checkpoints.list().await {
        Ok(mut list) => {
            // The dashboard's own position is live; its saved checkpoint trails by a snapshot.
            let live = dashboard
                .shared
                .projection
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .position();
            list.retain(|(consumer, _)| consumer != DASHBOARD_CONSUMER);
            list.push((DASHBOARD_CONSUMER.to_owned(), live));
            list.sort();
            let lags: Vec<ConsumerLag> = list
                .into_iter()
                .map(|(consumer, position)| {
                    let lag = head.saturating_sub(position);
                    dashboard.shared.metrics.set_consumer_lag(&consumer, lag);
                    ConsumerLag {
                        consumer,
                        position,
                        lag,
                    }
                })
                .collect();
            *lock(&dashboard.shared.consumers) = lags;
        }
        Err(e) => tracing::warn!(error = %e, "dashboard: cannot list the consumers' checkpoints"),
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}
