//! The live world: the domain's pure fold ([`WorldView`], every aggregate's state and the
//! directory the rules look things up in) kept in memory, fed by a subscription to the log,
//! with waiting for a position. What it adds to the fold is the log: decoding commits, following,
//! waking waiters.

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};
use std::time::Duration;

use docket_domain::world::WorldView;
use docket_log::{EventLog, RecordedCommit};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::stored::decode_event;

/// Applies one commit to `view`, the pure fold the domain defines ([`WorldView::apply`]), decoding
/// its events only when an aggregate owns the stream.
pub fn apply_commit(view: &mut WorldView, commit: &RecordedCommit) -> Result<(), String> {
    let position = commit.position;
    view.apply(
        position,
        commit.commit.stream.as_str(),
        commit.commit.metadata.idempotency_key.as_deref(),
        || {
            commit
                .commit
                .events
                .iter()
                .map(|e| decode_event(e).map_err(|err| format!("commit {position}: {err}")))
                .collect()
        },
    )
}

/// Why waiting for the world failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorldError {
    /// The world stopped following the log (a commit it could not apply, the log ended), or was
    /// dropped.
    #[error("{0}")]
    Stopped(String),
    /// The world did not reach the position in time.
    #[error("the log has not caught up to position {position} within {timeout:?}")]
    Timeout {
        /// The position waited for.
        position: u64,
        /// How long it waited.
        timeout: Duration,
    },
}

/// How far the world has applied the log, and whether it had to stop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    applied: u64,
    fault: Option<String>,
}

/// The shared, live world. Cheap to clone.
#[derive(Clone, Debug)]
pub struct World {
    view: Arc<RwLock<WorldView>>,
    progress: Arc<watch::Sender<Progress>>,
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    /// An empty world at position 0.
    pub fn new() -> Self {
        World {
            view: Arc::new(RwLock::new(WorldView::default())),
            progress: Arc::new(watch::channel(Progress::default()).0),
        }
    }

    /// Reads the current view. Do not hold it across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, WorldView> {
        // Writers never panic while holding the lock (apply returns errors), so a poisoned lock
        // still guards a consistent view.
        self.view.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies one commit and wakes whoever waits for its position. A commit that cannot be
    /// applied stops the world: it is never skipped.
    pub fn apply(&self, commit: &RecordedCommit) -> Result<(), String> {
        let result = apply_commit(
            &mut self.view.write().unwrap_or_else(PoisonError::into_inner),
            commit,
        );
        match &result {
            Ok(()) => self
                .progress
                .send_modify(|p| p.applied = p.applied.max(commit.position)),
            Err(fault) => {
                tracing::error!(position = commit.position, fault = %fault, "cannot apply a commit; the world stops here");
                let fault = fault.clone();
                self.progress.send_modify(|p| p.fault = Some(fault));
            }
        }
        result
    }

    /// A receiver that wakes whenever the world moves on.
    pub(crate) fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// The last position applied.
    pub fn applied(&self) -> u64 {
        self.progress.borrow().applied
    }

    /// Why the world stopped following the log, if it did.
    pub fn fault(&self) -> Option<String> {
        self.progress.borrow().fault.clone()
    }

    /// Follows the log from the last applied position, in a task, until the log ends or a
    /// commit cannot be applied.
    pub fn follow<L: EventLog + Send + Sync + 'static>(
        &self,
        log: L,
    ) -> tokio::task::JoinHandle<()> {
        let world = self.clone();
        tokio::spawn(async move {
            let after = world.applied();
            let mut feed = match log.subscribe(after).await {
                Ok(feed) => feed,
                Err(e) => {
                    world.progress.send_modify(|p| {
                        p.fault = Some(format!("cannot subscribe to the log: {e}"))
                    });
                    return;
                }
            };
            while let Some(next) = feed.next().await {
                let applied = match next {
                    Ok(commit) => world.apply(&commit),
                    Err(e) => {
                        let fault = format!("reading the log: {e}");
                        world
                            .progress
                            .send_modify(|p| p.fault = Some(fault.clone()));
                        Err(fault)
                    }
                };
                if applied.is_err() {
                    return;
                }
            }
        })
    }

    /// Waits until `position` is applied; fails if the world stopped or `timeout` passed.
    pub async fn wait_until(&self, position: u64, timeout: Duration) -> Result<(), WorldError> {
        let mut rx = self.progress.subscribe();
        let waited = tokio::time::timeout(
            timeout,
            rx.wait_for(|p| p.applied >= position || p.fault.is_some()),
        )
        .await;
        match waited {
            Ok(Ok(p)) if p.applied >= position => Ok(()),
            Ok(Ok(p)) => Err(WorldError::Stopped(p.fault.clone().unwrap_or_default())),
            Ok(Err(_)) => Err(WorldError::Stopped("the world was dropped".into())),
            Err(_) => Err(WorldError::Timeout { position, timeout }),
        }
    }
}
