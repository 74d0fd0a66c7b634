//! The [`Checkpointer`]: follows the log, keeps the Merkle tree over it (persisted with
//! [`crate::persist`]), and signs checkpoints into the [`CheckpointStore`] — every N commits
//! (default 1000), every T seconds when the tree grew (default 10 s), and on demand through a
//! [`CheckpointerHandle`], which also answers inclusion and consistency proofs from the tree.
//!
//! Before it signs size `n` it reloads the last stored checkpoint (size `m`, root `r_m`) and
//! refuses — [`AuditError::Inconsistent`], logged at error, and the checkpointer stops — unless
//! the tree's root at `m` is `r_m` and a consistency proof from `m` to `n` verifies. A tree
//! whose root at `m` differs is first rebuilt from the log (the persisted hashes are only a
//! cache); only if the log itself disagrees is the signature refused.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use docket_log::{EventLog, Records};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch, RwLock};
use tokio::task::JoinHandle;

use crate::error::AuditError;
use crate::note::{CheckpointSigner, SignedCheckpoint};
use crate::persist::TreeFile;
use crate::store::CheckpointStore;
use crate::tree::{verify_consistency, Hash, Tree, TreeError, EMPTY_HASH};

/// Commits read per request while catching up or rebuilding outside the subscription.
const READ_BATCH: usize = 4096;

/// Most commits taken from the subscription before the checkpointer looks at its schedule and
/// requests again.
const PUSH_BATCH: usize = 4096;

/// When the checkpointer signs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointerConfig {
    /// Sign once the tree has grown by this many commits since the last checkpoint.
    pub every_commits: u64,
    /// Sign this often when the tree grew at all.
    pub every: Duration,
}

impl Default for CheckpointerConfig {
    fn default() -> Self {
        CheckpointerConfig {
            every_commits: 1000,
            every: Duration::from_secs(10),
        }
    }
}

/// What the checkpointer has done, for tests and the dashboard.
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
    /// The latest stored checkpoint (signed by this run or an earlier one).
    pub latest: Option<SignedCheckpoint>,
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

/// A cloneable handle on a running checkpointer: checkpoints on demand and proofs.
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
    /// checkpoint if its size is at least `position`; otherwise waits until the tree has
    /// reached `position` and signs a new one at once. Concurrent requests share signatures:
    /// one checkpoint answers every waiter whose position it covers. Waits as long as the log
    /// takes to reach `position`; callers bound it with a timeout.
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
        Checkpointer {
            config,
            log,
            store,
            signer,
            tree_dir,
            shared: Arc::new(Shared {
                tree: RwLock::new(Tree::new()),
                status: watch::Sender::new(CheckpointerStatus::default()),
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

    /// Runs until `shutdown` turns true (or its sender is dropped), or until it fails: a failure
    /// is logged at error level and recorded in the status, and every waiting request is
    /// answered with [`AuditError::Stopped`].
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<(), AuditError> {
        let shared = self.shared.clone();
        let mut running = Running {
            config: self.config,
            log: self.log,
            store: self.store,
            signer: self.signer,
            shared: self.shared,
            file: None,
            requests: self.requests,
            waiting: Vec::new(),
            checked_last: false,
        };
        let result = running.run(self.tree_dir, shutdown).await;
        let why = match &result {
            Ok(()) => "shut down".to_owned(),
            Err(e) => {
                tracing::error!(error = %e, "the checkpointer stopped");
                e.to_string()
            }
        };
        shared.status.send_modify(|s| s.stopped = Some(why.clone()));
        for request in running.waiting.drain(..) {
            let _ = request.reply.send(Err(AuditError::Stopped(why.clone())));
        }
        running.requests.close();
        while let Ok(request) = running.requests.try_recv() {
            let _ = request.reply.send(Err(AuditError::Stopped(why.clone())));
        }
        result
    }
}

struct Running<L, R> {
    config: CheckpointerConfig,
    log: L,
    store: CheckpointStore<R>,
    signer: CheckpointSigner,
    shared: Arc<Shared>,
    file: Option<TreeFile>,
    requests: mpsc::Receiver<Request>,
    waiting: Vec<Request>,
    /// Whether the tree has been checked against the last stored checkpoint this run.
    checked_last: bool,
}

impl<L: EventLog, R: Records> Running<L, R> {
    async fn run(
        &mut self,
        tree_dir: PathBuf,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), AuditError> {
        let opened = TreeFile::open(&tree_dir, &self.log).await?;
        let loaded = opened.tree.size();
        *self.shared.tree.write().await = opened.tree;
        self.file = Some(opened.file);
        let latest = self
            .store
            .latest(Some(&self.signer.verifier()?))
            .await?
            .map(|s| s.signed);
        self.shared.status.send_modify(|s| {
            s.started = true;
            s.size = loaded;
            s.loaded = loaded;
            s.latest = latest.clone();
        });
        tracing::info!(
            loaded,
            dropped = opened.dropped,
            last_checkpoint = latest.as_ref().map(|c| c.checkpoint.size),
            "checkpointer following the log"
        );
        // A log shorter than the last checkpoint lost commits: nothing may be signed.
        if let Some(last) = &latest {
            let head = self.log.head().await?;
            if head < last.checkpoint.size {
                self.catch_up_to(head).await?;
                let root = self.shared.tree.read().await.root();
                return Err(AuditError::Inconsistent {
                    last_size: last.checkpoint.size,
                    last_root: last.checkpoint.root,
                    size: head,
                    root,
                    reason: format!("but the log holds only {head} commits"),
                });
            }
        }
        let mut feed = self.log.subscribe(loaded).await?;
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + self.config.every,
            self.config.every,
        );
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut requests_open = true;
        loop {
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                changed = shutdown.changed() => if changed.is_err() { break },
                next = feed.next() => {
                    let Some(first) = next else {
                        return Err(AuditError::Stopped("the log subscription ended".into()));
                    };
                    let mut batch = vec![first?];
                    while batch.len() < PUSH_BATCH {
                        match feed.next().now_or_never() {
                            Some(Some(next)) => batch.push(next?),
                            Some(None) => break,
                            None => break,
                        }
                    }
                    self.push(&batch).await?;
                    self.after_growth().await?;
                }
                request = self.requests.recv(), if requests_open => {
                    if let Some(request) = request {
                        self.waiting.push(request);
                        while let Ok(more) = self.requests.try_recv() {
                            self.waiting.push(more);
                        }
                        self.serve_waiting().await?;
                    } else {
                        requests_open = false;
                    }
                }
                _ = tick.tick() => {
                    if self.size() > self.latest_size() {
                        self.sign().await?;
                    }
                }
            }
        }
        self.persist().await
    }

    fn size(&self) -> u64 {
        self.shared.status.borrow().size
    }

    fn latest_size(&self) -> u64 {
        self.shared
            .status
            .borrow()
            .latest
            .as_ref()
            .map_or(0, |c| c.checkpoint.size)
    }

    async fn push(&mut self, commits: &[docket_log::RecordedCommit]) -> Result<(), AuditError> {
        let size = {
            let mut tree = self.shared.tree.write().await;
            for commit in commits {
                if commit.position != tree.size() + 1 {
                    return Err(AuditError::Stopped(format!(
                        "the log delivered position {} after {}",
                        commit.position,
                        tree.size()
                    )));
                }
                tree.push_commit(&commit.bytes);
            }
            tree.size()
        };
        self.shared.status.send_modify(|s| {
            s.size = size;
            s.pushed += commits.len() as u64;
        });
        Ok(())
    }

    /// Extends the tree from the log (outside the subscription) up to `target`.
    async fn catch_up_to(&mut self, target: u64) -> Result<(), AuditError> {
        loop {
            let size = self.size();
            if size >= target {
                return Ok(());
            }
            let limit = usize::try_from(target - size).map_or(READ_BATCH, |n| n.min(READ_BATCH));
            let commits = self.log.read_all(size, limit).await?;
            if commits.is_empty() {
                return Ok(());
            }
            self.push(&commits).await?;
        }
    }

    async fn after_growth(&mut self) -> Result<(), AuditError> {
        let size = self.size();
        let latest = self.shared.status.borrow().latest.clone();
        if !self.checked_last {
            if let Some(last) = latest {
                if size >= last.checkpoint.size {
                    self.check_consistent(&last, size).await?;
                    self.checked_last = true;
                }
            }
        }
        if size.saturating_sub(self.latest_size()) >= self.config.every_commits.max(1) {
            self.sign().await?;
        }
        self.serve_waiting().await
    }

    /// Answers every waiting request the tree can cover now, signing once if needed.
    async fn serve_waiting(&mut self) -> Result<(), AuditError> {
        let size = self.size();
        if !self.waiting.iter().any(|r| r.position <= size) {
            return Ok(());
        }
        let checkpoint = if self.latest_size() >= size {
            self.shared.status.borrow().latest.clone()
        } else {
            None
        };
        let checkpoint = match checkpoint {
            Some(c) => c,
            None => self.sign().await?,
        };
        let covered = checkpoint.checkpoint.size;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|r| r.position <= covered);
        self.waiting = waiting;
        for request in ready {
            let _ = request.reply.send(Ok(checkpoint.clone()));
        }
        Ok(())
    }

    async fn persist(&mut self) -> Result<(), AuditError> {
        let tree = self.shared.tree.read().await;
        if let Some(file) = self.file.as_mut() {
            file.persist(&tree).await?;
        }
        Ok(())
    }

    /// Checks that the tree of `size` commits extends the checkpoint `last`: its root at
    /// `last`'s size is `last`'s root (rebuilding the tree from the log once if not), and a
    /// consistency proof verifies. Returns the root at `size`.
    async fn check_consistent(
        &mut self,
        last: &SignedCheckpoint,
        size: u64,
    ) -> Result<Hash, AuditError> {
        let (m, r_m) = (last.checkpoint.size, last.checkpoint.root);
        let root = self.shared.tree.read().await.root_at(size)?;
        let refuse = |root: Hash, reason: String| AuditError::Inconsistent {
            last_size: m,
            last_root: r_m,
            size,
            root,
            reason,
        };
        if last.checkpoint.origin != self.signer.origin() {
            return Err(refuse(
                root,
                format!(
                    "signed for origin {:?}, but this signer signs for {:?}",
                    last.checkpoint.origin,
                    self.signer.origin()
                ),
            ));
        }
        if m == 0 {
            return Ok(root);
        }
        let mut root_m = self.shared.tree.read().await.root_at(m)?;
        if root_m != r_m {
            tracing::warn!(
                size = m,
                persisted_root = %root_m,
                checkpoint_root = %r_m,
                "the tree's root differs from the last checkpoint's; rebuilding it from the log"
            );
            self.rebuild(size).await?;
            root_m = self.shared.tree.read().await.root_at(m)?;
            if root_m != r_m {
                let root = self.shared.tree.read().await.root_at(size)?;
                return Err(refuse(
                    root,
                    format!("but the log's first {m} commits have root {root_m}"),
                ));
            }
        }
        let tree = self.shared.tree.read().await;
        let root = tree.root_at(size)?;
        let proof = tree.consistency_proof(m, size)?;
        verify_consistency(&proof, m, r_m, size, root).map_err(|e| {
            refuse(
                root,
                format!("and the consistency proof from {m} to {size} fails: {e}"),
            )
        })?;
        Ok(root)
    }

    /// Rehashes the log's first `size` commits into a fresh tree and rewrites the hashes file.
    async fn rebuild(&mut self, size: u64) -> Result<(), AuditError> {
        let mut fresh = Tree::new();
        while fresh.size() < size {
            let limit =
                usize::try_from(size - fresh.size()).map_or(READ_BATCH, |n| n.min(READ_BATCH));
            let commits = self.log.read_all(fresh.size(), limit).await?;
            if commits.is_empty() {
                break;
            }
            for commit in &commits {
                fresh.push_commit(&commit.bytes);
            }
        }
        let mut tree = self.shared.tree.write().await;
        if fresh.size() != tree.size() {
            return Err(AuditError::Stopped(format!(
                "rebuilding the tree read {} commits, expected {}",
                fresh.size(),
                tree.size()
            )));
        }
        *tree = fresh;
        if let Some(file) = self.file.as_mut() {
            file.rewrite(&tree).await?;
        }
        Ok(())
    }

    /// Signs the tree at its current size, after checking it against the last stored
    /// checkpoint, and stores the checkpoint. If the store already holds a checkpoint of this
    /// size or larger (another instance signed), returns that one instead.
    async fn sign(&mut self) -> Result<SignedCheckpoint, AuditError> {
        let size = self.size();
        let last = self
            .store
            .latest(Some(&self.signer.verifier()?))
            .await?
            .map(|s| s.signed);
        let root = match &last {
            Some(last) if last.checkpoint.size >= size => {
                if last.checkpoint.size == size {
                    self.check_consistent(last, size).await?;
                }
                let last = last.clone();
                self.shared
                    .status
                    .send_modify(|s| s.latest = Some(last.clone()));
                return Ok(last);
            }
            Some(last) => self.check_consistent(last, size).await?,
            None => {
                if size == 0 {
                    EMPTY_HASH
                } else {
                    self.shared.tree.read().await.root_at(size)?
                }
            }
        };
        self.persist().await?;
        let signed = self.signer.sign(size, root)?;
        let sequence = self.store.append(&signed).await?;
        tracing::debug!(size, sequence, "signed a checkpoint");
        self.checked_last = true;
        self.shared.status.send_modify(|s| {
            s.latest = Some(signed.clone());
            s.signed += 1;
        });
        Ok(signed)
    }
}
