//! Reactions: work a service does because of a commit rather than because of a request. Each
//! follows the log from its stored checkpoint ([`docket_log::Checkpoints`]) and makes its effect
//! with an idempotency key derived from the causing commit, so a service killed at any point and
//! restarted neither loses an effect (the checkpoint is saved only after the effects before it
//! are in the log) nor repeats one (the key makes a second attempt a no-op).
//!
//! The assessment service's reaction: when a record is attached to a case, or a source marked
//! unavailable, after its factors were assessed, the guidance is recomputed under the policy in
//! force ([`run_guidance_reaction`]).

use std::time::{Duration, Instant};

use docket_domain::case::{Case, CaseCommand};
use docket_domain::AggregateKind;
use docket_log::{AnyCheckpoints, Checkpoints, EventLog, RecordedCommit};
use futures_util::StreamExt;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;

use crate::clock::SharedClock;
use crate::deadlines::system_actor;
use crate::executor::{ExecError, Executor};
use crate::metrics::{gauge_value, Metrics};

/// The checkpoint name of the guidance reaction.
pub const GUIDANCE_CONSUMER: &str = "assessment-guidance";

/// How often a moving checkpoint is saved: a restart redoes at most this much work, which the
/// idempotency keys turn into no-ops.
pub(crate) const SAVE_EVERY: Duration = Duration::from_millis(500);

/// A consumer's checkpoint, saved at most every [`SAVE_EVERY`] while it moves and at once on
/// [`Checkpoint::flush`].
#[derive(Debug)]
pub struct Checkpoint {
    store: AnyCheckpoints,
    consumer: &'static str,
    saved: u64,
    position: u64,
    last_save: Instant,
    /// `docket_reaction_position{consumer}`.
    position_gauge: Gauge,
}

impl Checkpoint {
    /// Loads the consumer's checkpoint (0 if it never saved one); `position_gauge` (from
    /// [`Metrics::reaction_position`]) shows where it stands.
    pub async fn load(
        store: AnyCheckpoints,
        consumer: &'static str,
        position_gauge: Gauge,
    ) -> Result<Self, ExecError> {
        let saved = store.load(consumer).await?.unwrap_or(0);
        position_gauge.set(gauge_value(saved));
        Ok(Checkpoint {
            store,
            consumer,
            saved,
            position: saved,
            last_save: Instant::now(),
            position_gauge,
        })
    }

    /// The position everything up to which is done.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Whether a position is done but not yet saved.
    pub fn dirty(&self) -> bool {
        self.position > self.saved
    }

    /// Marks everything up to `position` done; saves if the last save is old enough.
    pub async fn advance(&mut self, position: u64) -> Result<(), ExecError> {
        self.position = self.position.max(position);
        self.position_gauge.set(gauge_value(self.position));
        if self.dirty() && self.last_save.elapsed() >= SAVE_EVERY {
            self.flush().await?;
        }
        Ok(())
    }

    /// Saves the position now, if it moved.
    pub async fn flush(&mut self) -> Result<(), ExecError> {
        if self.dirty() {
            self.store.save(self.consumer, self.position).await?;
            self.saved = self.position;
            tracing::trace!(
                consumer = self.consumer,
                position = self.position,
                "checkpoint saved"
            );
        }
        self.last_save = Instant::now();
        Ok(())
    }
}

/// Whether a commit changes a case's record.
fn changes_record(commit: &RecordedCommit) -> bool {
    AggregateKind::parse(commit.commit.stream.kind()) == Some(AggregateKind::Case)
        && commit.commit.events.iter().any(|e| {
            matches!(
                e.type_name.as_str(),
                "case.record_attached" | "case.source_unavailable"
            )
        })
}

/// Runs the guidance reaction until `shutdown` turns true: for every commit after the checkpoint
/// that attaches a record to, or marks a source unavailable on, a case whose factors are
/// assessed, records `case.guidance_recomputed` (idempotency key `guidance-recomputed-<position>`).
///
/// A failure (the log or the checkpoint store unavailable, say during a leader election) does not
/// end it: it starts again from its stored checkpoint after a backoff ([`supervised`]); its
/// effects are keyed by the causing position, so work redone is found done.
pub async fn run_guidance_reaction<L: EventLog + Clone + Send + Sync + 'static>(
    executor: Executor<L>,
    checkpoints: AnyCheckpoints,
    clock: SharedClock,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ExecError> {
    let metrics = executor.metrics().clone();
    supervised(GUIDANCE_CONSUMER, &metrics, shutdown.clone(), || {
        guidance_once(
            executor.clone(),
            checkpoints.clone(),
            clock.clone(),
            shutdown.clone(),
        )
    })
    .await
}

/// Longest wait before a failed background task starts again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs `task` until it ends cleanly or shutdown; after a failure, logs it, counts it in
/// `metrics` (`docket_reactions_total{outcome="restarted"}`) and starts it again after a backoff
/// (0.5 s doubling to 30 s). A background task never dies silently while its service keeps
/// serving.
pub async fn supervised<F, Fut>(
    name: &'static str,
    metrics: &Metrics,
    mut shutdown: watch::Receiver<bool>,
    mut task: F,
) -> Result<(), ExecError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), ExecError>>,
{
    let mut backoff = Duration::from_millis(500);
    loop {
        let started = Instant::now();
        match task().await {
            Ok(()) => return Ok(()),
            Err(e) => {
                if *shutdown.borrow() {
                    return Err(e);
                }
                if started.elapsed() > MAX_BACKOFF {
                    backoff = Duration::from_millis(500);
                }
                tracing::warn!(task = name, error = %e, retry_in = ?backoff, "background task failed; starting it again from its checkpoint");
                metrics.reaction_done(name, "restarted");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = shutdown.wait_for(|s| *s) => return Ok(()),
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn guidance_once<L: EventLog + Clone + Send + Sync + 'static>(
    executor: Executor<L>,
    checkpoints: AnyCheckpoints,
    clock: SharedClock,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ExecError> {
    let position = executor.metrics().reaction_position(GUIDANCE_CONSUMER);
    let mut checkpoint = Checkpoint::load(checkpoints, GUIDANCE_CONSUMER, position).await?;
    let mut feed = executor.log().subscribe(checkpoint.position()).await?;
    tracing::info!(
        consumer = GUIDANCE_CONSUMER,
        from = checkpoint.position(),
        "guidance reaction following the log"
    );
    let result = loop {
        if *shutdown.borrow() {
            break Ok(());
        }
        let commit = tokio::select! {
            _ = shutdown.changed() => continue,
            () = tokio::time::sleep(SAVE_EVERY), if checkpoint.dirty() => {
                checkpoint.flush().await?;
                continue;
            }
            next = feed.next() => match next {
                Some(Ok(commit)) => commit,
                Some(Err(e)) => break Err(e.into()),
                None => break Err(ExecError::Stopped("the log subscription ended".into())),
            },
        };
        if changes_record(&commit) {
            if let Err(e) = recompute(&executor, &clock, &commit).await {
                break Err(e);
            }
        }
        checkpoint.advance(commit.position).await?;
    };
    checkpoint.flush().await?;
    result
}

/// Recomputes one case's guidance because of `commit`, if the record changed since the factors
/// were assessed or the guidance last recomputed (a burst of changes is covered by one
/// recomputation: the later ones find the guidance current).
async fn recompute<L: EventLog + Clone + Send + Sync + 'static>(
    executor: &Executor<L>,
    clock: &SharedClock,
    commit: &RecordedCommit,
) -> Result<(), ExecError> {
    let stream = commit.commit.stream.as_str();
    // The world decides; let it see the causing commit first.
    executor
        .world()
        .wait_until(commit.position, executor.config().catch_up_timeout)
        .await?;
    let assessed = {
        let view = executor.world().read();
        let (_, case) = view.get::<Case>(stream);
        case.guidance_outdated && !case.closed
    };
    if !assessed {
        return Ok(());
    }
    let id = commit.commit.stream.id();
    let key = format!("guidance-recomputed-{}", commit.position);
    match executor
        .execute::<Case>(
            id,
            &CaseCommand::RecomputeGuidance,
            system_actor(),
            Some(key),
            clock.now(),
        )
        .await
    {
        Ok(done) => {
            if !done.duplicate {
                executor.metrics().reaction_done(GUIDANCE_CONSUMER, "ok");
                tracing::info!(case = id, cause = commit.position, "guidance recomputed");
            }
            Ok(())
        }
        // Closed meanwhile, or the like: nothing to recompute.
        Err(ExecError::Rejected(r)) => {
            tracing::debug!(case = id, code = r.code(), "guidance not recomputed");
            Ok(())
        }
        Err(e) => {
            executor.metrics().reaction_done(GUIDANCE_CONSUMER, "error");
            Err(e)
        }
    }
}
