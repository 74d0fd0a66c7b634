//! The checkpointer's loop: load and check the tree, declare the cadence, follow the log, sign
//! on the cadence (asking the witnesses), answer the requests a checkpoint covers, and sign a
//! final checkpoint at a clean stop.

use std::path::PathBuf;
use std::sync::Arc;

use docket_log::{EventLog, Records};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::witnesses::Witnesses;
use super::{cadence, CheckpointerConfig, Request, Shared};
use crate::error::AuditError;
use crate::note::{CheckpointSigner, SignedCheckpoint};
use crate::persist::TreeFile;
use crate::store::CheckpointStore;
use crate::tree::{verify_consistency, Hash, Tree, EMPTY_HASH};

/// Commits read per request while catching up or rebuilding outside the subscription.
const READ_BATCH: usize = 4096;

/// Most commits taken from the subscription before the checkpointer looks at its schedule and
/// requests again.
const PUSH_BATCH: usize = 4096;

pub(super) struct Running<L, R> {
    config: CheckpointerConfig,
    log: L,
    store: CheckpointStore<R>,
    signer: CheckpointSigner,
    shared: Arc<Shared>,
    witnesses: Witnesses,
    file: Option<TreeFile>,
    requests: mpsc::Receiver<Request>,
    waiting: Vec<Request>,
}

impl<L: EventLog, R: Records> Running<L, R> {
    pub(super) fn new(
        mut config: CheckpointerConfig,
        log: L,
        store: CheckpointStore<R>,
        signer: CheckpointSigner,
        shared: Arc<Shared>,
        requests: mpsc::Receiver<Request>,
    ) -> Self {
        let witnesses = Witnesses::new(
            std::mem::take(&mut config.witnesses),
            config.witness_quorum,
            config.witness_timeout,
            config.witness_backoff,
            config.metrics.clone(),
        );
        Running {
            config,
            log,
            store,
            signer,
            shared,
            witnesses,
            file: None,
            requests,
            waiting: Vec::new(),
        }
    }

    /// Answers every request still waiting, and every one still queued, with `Stopped`.
    pub(super) fn refuse_waiting(&mut self, why: &str) {
        for request in self.waiting.drain(..) {
            let _ = request.reply.send(Err(AuditError::Stopped(why.to_owned())));
        }
        self.requests.close();
        while let Ok(request) = self.requests.try_recv() {
            let _ = request.reply.send(Err(AuditError::Stopped(why.to_owned())));
        }
    }

    pub(super) async fn run(
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
        self.witnesses.start_from(latest.as_ref());
        let statuses = self.witnesses.statuses();
        self.shared.status.send_modify(|s| {
            s.size = loaded;
            s.loaded = loaded;
            s.latest = latest.clone();
            s.witnesses = statuses;
        });
        tracing::info!(
            loaded,
            dropped = opened.dropped,
            last_checkpoint = latest.as_ref().map(|c| c.checkpoint.size),
            every_ms = self.config.cadence().every_ms,
            every_commits = self.config.cadence().every_commits,
            witnesses = self.witnesses.statuses().len(),
            witness_quorum = self.config.witness_quorum,
            "checkpointer loading"
        );
        // The log must extend the last checkpoint before anything is written to it.
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
            self.catch_up_to(last.checkpoint.size).await?;
            let size = self.size();
            self.check_consistent(last, size).await?;
            self.config.metrics.checkpoint_stored(last.checkpoint.size);
        }
        let now = self.config.clock.now().timestamp_micros();
        let declared = cadence::declare(&self.log, self.config.cadence(), now).await?;
        self.shared.status.send_modify(|s| {
            s.started = true;
            s.cadence_declared = Some(declared);
        });
        tracing::info!(
            size = self.size(),
            cadence_declared = declared,
            "checkpointer following the log"
        );
        let mut feed = self.log.subscribe(self.size()).await?;
        let every = self.config.every.max(std::time::Duration::from_millis(1));
        // The earliest time the period lets the next checkpoint be signed: at most one per
        // period, the first a period after the start. Growth after a quiet period is signed at
        // once; under load the checkpoints come one period apart.
        let mut next_sign = Instant::now() + every;
        let mut requests_open = true;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let unsigned = self.unsigned() > 0;
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
                            Some(None) | None => break,
                        }
                    }
                    self.push(&batch).await?;
                    let now = Instant::now();
                    if self.unsigned() >= self.config.every_commits.max(1) || now >= next_sign {
                        self.sign().await?;
                        next_sign = now + every;
                    }
                }
                request = self.requests.recv(), if requests_open => {
                    if let Some(request) = request {
                        self.waiting.push(request);
                        while let Ok(more) = self.requests.try_recv() {
                            self.waiting.push(more);
                        }
                        self.answer_waiting();
                    } else {
                        requests_open = false;
                    }
                }
                () = tokio::time::sleep_until(next_sign), if unsigned => {
                    self.sign().await?;
                    next_sign = Instant::now() + every;
                }
            }
        }
        drop(feed);
        self.final_checkpoint().await?;
        self.persist().await
    }

    /// At a clean stop: the commits the log holds now, and a checkpoint over all of them.
    async fn final_checkpoint(&mut self) -> Result<(), AuditError> {
        let head = self.log.head().await?;
        self.catch_up_to(head).await?;
        while let Ok(request) = self.requests.try_recv() {
            self.waiting.push(request);
        }
        if self.unsigned() > 0 {
            let signed = self.sign().await?;
            tracing::info!(
                size = signed.checkpoint.size,
                "signed the final checkpoint at shutdown"
            );
        } else {
            self.answer_waiting();
        }
        Ok(())
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

    /// Commits in the tree that no stored checkpoint covers yet.
    fn unsigned(&self) -> u64 {
        self.size().saturating_sub(self.latest_size())
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
        self.config.metrics.tree_size(size, self.latest_size());
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

    /// Answers every waiting request the latest stored checkpoint covers.
    fn answer_waiting(&mut self) {
        let Some(latest) = self.shared.status.borrow().latest.clone() else {
            return;
        };
        let covered = latest.checkpoint.size;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|r| r.position <= covered);
        self.waiting = waiting;
        for request in ready {
            let _ = request.reply.send(Ok(latest.clone()));
        }
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
    /// checkpoint, has the witnesses cosign it, stores it and answers the requests it covers.
    /// If the store already holds a checkpoint of this size or larger (another instance
    /// signed), that one is taken instead.
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
                self.answer_waiting();
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
        let (signed, cosignatures) = if self.witnesses.any() {
            self.witnesses.cosign(&self.shared.tree, signed).await
        } else {
            (signed, 0)
        };
        let sequence = self.store.append(&signed).await?;
        tracing::debug!(size, sequence, cosignatures, "signed a checkpoint");
        let statuses = self.witnesses.statuses();
        self.shared.status.send_modify(|s| {
            s.latest = Some(signed.clone());
            s.signed += 1;
            s.cosignatures = cosignatures;
            s.witnesses = statuses;
        });
        self.config.metrics.checkpoint_signed(size, self.size());
        self.answer_waiting();
        Ok(signed)
    }
}
