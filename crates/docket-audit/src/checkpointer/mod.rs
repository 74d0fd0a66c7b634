//! The [`Checkpointer`]: follows the log, keeps the Merkle tree over it (persisted with
//! [`crate::persist`]), and signs checkpoints into the [`CheckpointStore`] on a cadence: every
//! `every` (default 100 ms) when the tree grew, or as soon as it grew by `every_commits`
//! (default 1000), whichever comes first. The period bounds the wait, it is not a clock tick:
//! growth after a quiet period is signed at once and the next checkpoint no sooner than a period
//! later, so under load they come one period apart (closer only when `every_commits` is
//! reached); the first comes a period after the start. The cadence is declared in the log itself
//! ([`cadence`]) so an auditor knows how long a gap between checkpoints may be. A clean stop
//! signs a final checkpoint over everything the log held at shutdown, so the log's tail is not
//! left unsigned.
//!
//! Nothing signs on demand: [`CheckpointerHandle::checkpoint_covering`] waits for the cadence
//! checkpoint that covers the position (so a reply carrying a receipt waits at most about one
//! cadence period), and the handle answers inclusion and consistency proofs from the tree.
//!
//! After signing, the checkpointer asks its witnesses ([`witnesses`], C2SP `tlog-witness`) to
//! cosign, concurrently and within a timeout, and stores the note with the cosignatures of
//! those that answered. Witnesses never hold up commands: one that is down is skipped for a
//! while; one that refuses is an alarm in the status, the metrics and the log.
//!
//! Before it signs size `n` it reloads the last stored checkpoint (size `m`, root `r_m`) and
//! refuses — [`AuditError::Inconsistent`], logged at error, and the checkpointer stops — unless
//! the tree's root at `m` is `r_m` and a consistency proof from `m` to `n` verifies. A tree
//! whose root at `m` differs is first rebuilt from the log (the persisted hashes are only a
//! cache); only if the log itself disagrees is the signature refused. The check against the last
//! stored checkpoint is also made when the checkpointer starts, before it writes anything.

pub mod cadence;
mod metrics;
mod running;
pub mod witnesses;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use docket_log::clock::{SharedClock, SystemClock};
use docket_log::{EventLog, Records};
use tokio::sync::{mpsc, oneshot, watch, RwLock};
use tokio::task::JoinHandle;

use crate::error::AuditError;
use crate::note::{CheckpointSigner, SignedCheckpoint};
use crate::store::CheckpointStore;
use crate::tree::{Hash, Tree, TreeError};
use crate::witness::WitnessClient;

pub use cadence::{Cadence, CADENCE_ACTOR, CADENCE_EVENT, CADENCE_STREAM, CADENCE_VERSION};
pub use metrics::Metrics;
pub use witnesses::WitnessStatus;

/// When the checkpointer signs, and whom it asks to cosign.
#[derive(Debug)]
pub struct CheckpointerConfig {
    /// Sign once the tree has grown by this many commits since the last checkpoint.
    pub every_commits: u64,
    /// Sign this often when the tree grew at all (at most once per period).
    pub every: Duration,
    /// The witnesses asked to cosign every checkpoint.
    pub witnesses: Vec<WitnessClient>,
    /// How many witnesses' cosignatures a checkpoint should carry (reported, never waited
    /// for beyond `witness_timeout`).
    pub witness_quorum: usize,
    /// How long a witness has to answer one checkpoint.
    pub witness_timeout: Duration,
    /// How long a witness that did not answer is left alone, at first (doubling while it stays
    /// down, up to 32 times this); a witness that refused is left alone for 32 times this.
    pub witness_backoff: Duration,
    /// The time of the cadence declaration's commit.
    pub clock: SharedClock,
    /// Where it counts (the node's registered families; by default registered nowhere).
    pub metrics: Metrics,
}

/// The default cadence: every 100 ms when the log grew.
pub const DEFAULT_EVERY: Duration = Duration::from_millis(100);

/// The default cadence: every 1000 commits.
pub const DEFAULT_EVERY_COMMITS: u64 = 1000;

impl Default for CheckpointerConfig {
    fn default() -> Self {
        CheckpointerConfig {
            every_commits: DEFAULT_EVERY_COMMITS,
            every: DEFAULT_EVERY,
            witnesses: Vec::new(),
            witness_quorum: 0,
            witness_timeout: Duration::from_secs(2),
            witness_backoff: Duration::from_secs(1),
            clock: Arc::new(SystemClock),
            metrics: Metrics::default(),
        }
    }
}

impl CheckpointerConfig {
    /// The default configuration with this cadence.
    pub fn every(every_commits: u64, every: Duration) -> Self {
        CheckpointerConfig {
            every_commits,
            every,
            ..CheckpointerConfig::default()
        }
    }

    /// The cadence as declared in the log.
    pub fn cadence(&self) -> Cadence {
        Cadence {
            every_ms: u64::try_from(self.every.as_millis()).unwrap_or(u64::MAX),
            every_commits: self.every_commits.max(1),
        }
    }
}

/// What the checkpointer has done, for tests, the dashboard and `/readyz`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CheckpointerStatus {
    /// Whether the tree has been loaded and checked against the log.
    pub started: bool,
    /// The tree's size (commits hashed so far).
    pub size: u64,
    /// Leaves loaded from the persisted hashes at start (not rehashed).
    pub loaded: u64,
    /// Leaves hashed from the log's commits since start.
    pub pushed: u64,
    /// Checkpoints signed since start.
    pub signed: u64,
    /// The latest stored checkpoint (signed by this run or an earlier one), with the
    /// cosignatures it was stored with.
    pub latest: Option<SignedCheckpoint>,
    /// The position of the commit declaring the cadence in force, once declared (or found).
    pub cadence_declared: Option<u64>,
    /// Cosignatures of configured witnesses on the checkpoints signed by this run: on the
    /// latest one.
    pub cosignatures: usize,
    /// How many cosignatures a checkpoint should carry.
    pub witness_quorum: usize,
    /// Each configured witness, in configuration order.
    pub witnesses: Vec<WitnessStatus>,
    /// Why the checkpointer stopped, once it has.
    pub stopped: Option<String>,
}

struct Shared {
    tree: RwLock<Tree>,
    status: watch::Sender<CheckpointerStatus>,
}

struct Request {
    position: u64,
    reply: oneshot::Sender<Result<SignedCheckpoint, AuditError>>,
}

/// A cloneable handle on a running checkpointer: covering checkpoints and proofs.
#[derive(Clone)]
pub struct CheckpointerHandle {
    shared: Arc<Shared>,
    requests: mpsc::Sender<Request>,
}

impl std::fmt::Debug for CheckpointerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointerHandle")
            .field("status", &*self.shared.status.borrow())
            .finish()
    }
}

impl CheckpointerHandle {
    fn stopped(&self) -> AuditError {
        let why = self.shared.status.borrow().stopped.clone();
        AuditError::Stopped(why.unwrap_or_else(|| "shut down".into()))
    }

    /// A signed checkpoint that covers the commit at `position` (1-based): the latest stored
    /// checkpoint if its size is at least `position`, else the next checkpoint of the cadence
    /// that does. Never signs one of its own: in practice it waits at most about one cadence
    /// period after the commit reached the checkpointer; callers bound it with a timeout.
    pub async fn checkpoint_covering(&self, position: u64) -> Result<SignedCheckpoint, AuditError> {
        if position == 0 {
            return Err(TreeError::OutOfRange {
                what: "position",
                value: 0,
                size: self.size(),
            }
            .into());
        }
        if let Some(latest) = self.latest() {
            if latest.checkpoint.size >= position {
                return Ok(latest);
            }
        }
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request { position, reply })
            .await
            .map_err(|_| self.stopped())?;
        answer.await.map_err(|_| self.stopped())?
    }

    /// The latest stored checkpoint, as the checkpointer last saw it.
    pub fn latest(&self) -> Option<SignedCheckpoint> {
        self.shared.status.borrow().latest.clone()
    }

    /// The tree's current size.
    pub fn size(&self) -> u64 {
        self.shared.status.borrow().size
    }

    /// The checkpointer's status now.
    pub fn status(&self) -> CheckpointerStatus {
        self.shared.status.borrow().clone()
    }

    /// A receiver of every status change.
    pub fn watch_status(&self) -> watch::Receiver<CheckpointerStatus> {
        self.shared.status.subscribe()
    }

    /// Waits until the tree holds at least `size` commits, or the checkpointer stopped.
    pub async fn wait_for_size(&self, size: u64) -> Result<(), AuditError> {
        let mut status = self.shared.status.subscribe();
        let result = status
            .wait_for(|s| s.size >= size || s.stopped.is_some())
            .await
            .map(|s| s.size >= size);
        match result {
            Ok(true) => Ok(()),
            _ => Err(self.stopped()),
        }
    }

    /// The leaf hash of the commit at `position`.
    pub async fn leaf(&self, position: u64) -> Result<Hash, AuditError> {
        Ok(self.shared.tree.read().await.leaf(position)?)
    }

    /// The root of the tree of the first `size` commits.
    pub async fn root_at(&self, size: u64) -> Result<Hash, AuditError> {
        Ok(self.shared.tree.read().await.root_at(size)?)
    }

    /// The inclusion proof of the commit at `position` in the tree of `size` commits.
    pub async fn inclusion_proof(&self, position: u64, size: u64) -> Result<Vec<Hash>, AuditError> {
        Ok(self
            .shared
            .tree
            .read()
            .await
            .inclusion_proof(position, size)?)
    }

    /// The consistency proof from the tree of `old` commits to the tree of `new` commits.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, AuditError> {
        Ok(self.shared.tree.read().await.consistency_proof(old, new)?)
    }
}

/// Follows the log and signs checkpoints; see the module documentation.
pub struct Checkpointer<L, R> {
    config: CheckpointerConfig,
    log: L,
    store: CheckpointStore<R>,
    signer: CheckpointSigner,
    tree_dir: PathBuf,
    shared: Arc<Shared>,
    requests_tx: mpsc::Sender<Request>,
    requests: mpsc::Receiver<Request>,
}

impl<L, R> std::fmt::Debug for Checkpointer<L, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("config", &self.config)
            .field("signer", &self.signer)
            .field("tree_dir", &self.tree_dir)
            .finish_non_exhaustive()
    }
}

/// Runs a checkpointer until `shutdown` turns true (or its sender is dropped), or until it
/// fails. Use [`Checkpointer::start`] to also get a [`CheckpointerHandle`].
pub async fn run<L, R>(
    config: CheckpointerConfig,
    log: L,
    store: CheckpointStore<R>,
    signer: CheckpointSigner,
    tree_dir: PathBuf,
    shutdown: watch::Receiver<bool>,
) -> Result<(), AuditError>
where
    L: EventLog + 'static,
    R: Records + 'static,
{
    Checkpointer::new(config, log, store, signer, tree_dir)
        .run(shutdown)
        .await
}

impl<L, R> Checkpointer<L, R>
where
    L: EventLog + 'static,
    R: Records + 'static,
{
    /// A checkpointer of `log` that keeps its tree's hashes in `tree_dir` (embedded:
    /// `<data dir>/audit/tree`) and signs with `signer` into `store`.
    pub fn new(
        config: CheckpointerConfig,
        log: L,
        store: CheckpointStore<R>,
        signer: CheckpointSigner,
        tree_dir: PathBuf,
    ) -> Self {
        let (requests_tx, requests) = mpsc::channel(1024);
        let status = CheckpointerStatus {
            witness_quorum: config.witness_quorum,
            witnesses: config.witnesses.iter().map(WitnessStatus::of).collect(),
            ..CheckpointerStatus::default()
        };
        Checkpointer {
            config,
            log,
            store,
            signer,
            tree_dir,
            shared: Arc::new(Shared {
                tree: RwLock::new(Tree::new()),
                status: watch::Sender::new(status),
            }),
            requests_tx,
            requests,
        }
    }

    /// A handle on this checkpointer (requests made before it runs wait for it).
    pub fn handle(&self) -> CheckpointerHandle {
        CheckpointerHandle {
            shared: self.shared.clone(),
            requests: self.requests_tx.clone(),
        }
    }

    /// Spawns the checkpointer on the current runtime and returns its handle and task.
    pub fn start(
        config: CheckpointerConfig,
        log: L,
        store: CheckpointStore<R>,
        signer: CheckpointSigner,
        tree_dir: PathBuf,
        shutdown: watch::Receiver<bool>,
    ) -> (CheckpointerHandle, JoinHandle<Result<(), AuditError>>) {
        let checkpointer = Checkpointer::new(config, log, store, signer, tree_dir);
        let handle = checkpointer.handle();
        (handle, tokio::spawn(checkpointer.run(shutdown)))
    }

    /// Runs until `shutdown` turns true (or its sender is dropped), then signs a final
    /// checkpoint over what the log holds; or until it fails: a failure is logged at error level
    /// and recorded in the status, and every waiting request is answered with
    /// [`AuditError::Stopped`].
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<(), AuditError> {
        let shared = self.shared.clone();
        let mut running = running::Running::new(
            self.config,
            self.log,
            self.store,
            self.signer,
            self.shared,
            self.requests,
        );
        let result = running.run(self.tree_dir, shutdown).await;
        let why = match &result {
            Ok(()) => "shut down".to_owned(),
            Err(e) => {
                tracing::error!(error = %e, "the checkpointer stopped");
                e.to_string()
            }
        };
        shared.status.send_modify(|s| s.stopped = Some(why.clone()));
        running.refuse_waiting(&why);
        result
    }
}
