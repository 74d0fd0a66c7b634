//! The review deadline scheduler: records `review.deadline_missed` when a review's deadline
//! passes with its step not done. It keeps no state of its own: the due times come from the
//! world (so a restart rebuilds them from the log), and each miss is recorded with an
//! idempotency key derived from the review and the deadline, so two instances or a restart never
//! record one twice.
//!
//! Its checkpoint ([`DEADLINES_CONSUMER`]) is the world position of its last complete pass:
//! every deadline due by then, in the state as of that position, is recorded. It is what the
//! scheduler's lag is measured from; a restart scans every open review anyway.

use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_domain::review::{DeadlineKind, Review, ReviewCommand};
use docket_domain::values::{Actor, PersonId, Role};
use docket_domain::StreamKey;
use docket_log::{AnyCheckpoints, EventLog};
use tokio::sync::watch;
use uuid::Uuid;

use crate::clock::SharedClock;
use crate::executor::{ExecError, Executor};
use crate::reactions::Checkpoint;

/// The checkpoint name of the deadline scheduler.
pub const DEADLINES_CONSUMER: &str = "review-deadlines";

/// The identity the scheduler acts under.
pub fn system_actor() -> Actor {
    Actor {
        person: PersonId(Uuid::nil()),
        role: Role::System,
    }
}

/// Longest sleep between checks, so a clock jump is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Every deadline due at or before `now`, and the earliest one after it.
#[allow(clippy::type_complexity)]
fn scan(
    view: &docket_domain::world::WorldView,
    now: DateTime<Utc>,
) -> (Vec<(String, DeadlineKind)>, Option<DateTime<Utc>>) {
    let mut due_now = Vec::new();
    let mut next: Option<DateTime<Utc>> = None;
    for (stream, (_, review)) in &view.reviews {
        // The world keys reviews by their stream's name; the executor wants the review's id.
        let Ok(StreamKey::Review(id)) = stream.parse::<StreamKey>() else {
            continue;
        };
        for (kind, at) in review.due() {
            if at <= now {
                due_now.push((id.to_string(), kind));
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
    }
    due_now.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.code().cmp(b.1.code())));
    (due_now, next)
}

/// Runs the scheduler until `shutdown` turns true.
pub async fn run_deadline_scheduler<L: EventLog + Clone + Send + Sync + 'static>(
    executor: Executor<L>,
    checkpoints: AnyCheckpoints,
    clock: SharedClock,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ExecError> {
    // A failure starts the scheduler again from its checkpoint (the misses it records are keyed,
    // so a pass redone is found done).
    let metrics = executor.metrics().clone();
    crate::reactions::supervised(DEADLINES_CONSUMER, &metrics, shutdown.clone(), || {
        scheduler_once(
            executor.clone(),
            checkpoints.clone(),
            clock.clone(),
            shutdown.clone(),
        )
    })
    .await
}

async fn scheduler_once<L: EventLog + Clone + Send + Sync + 'static>(
    executor: Executor<L>,
    checkpoints: AnyCheckpoints,
    clock: SharedClock,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ExecError> {
    let position = executor.metrics().reaction_position(DEADLINES_CONSUMER);
    let mut checkpoint = Checkpoint::load(checkpoints, DEADLINES_CONSUMER, position).await?;
    let result = scheduler_loop(&executor, &mut checkpoint, &clock, &mut shutdown).await;
    checkpoint.flush().await?;
    result
}

async fn scheduler_loop<L: EventLog + Clone + Send + Sync + 'static>(
    executor: &Executor<L>,
    checkpoint: &mut Checkpoint,
    clock: &SharedClock,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), ExecError> {
    let mut progress = executor.world().progress();
    let mut jumps = clock.jumps();
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let now = clock.now();
        let (scanned_at, (due_now, next)) = {
            let view = executor.world().read();
            (view.applied, scan(&view, now))
        };
        for (review, kind) in due_now {
            let key = format!("deadline-missed-{review}-{}", kind.code());
            let command = ReviewCommand::RecordDeadlineMissed { deadline: kind };
            match executor
                .execute::<Review>(&review, &command, system_actor(), Some(key), now)
                .await
            {
                Ok(done) if !done.duplicate => {
                    executor.metrics().reaction_done(DEADLINES_CONSUMER, "ok");
                    tracing::info!(review = %review, deadline = kind.code(), "deadline missed, recorded")
                }
                Ok(_) => {}
                // Someone did the step (or recorded the miss) meanwhile: nothing to record.
                Err(ExecError::Rejected(r)) => {
                    tracing::debug!(review = %review, deadline = kind.code(), code = r.code(), "deadline miss not recorded")
                }
                Err(e) => {
                    executor
                        .metrics()
                        .reaction_done(DEADLINES_CONSUMER, "error");
                    return Err(e);
                }
            }
        }
        checkpoint.advance(scanned_at).await?;
        let sleep = next
            .map(|at| (at - clock.now()).to_std().unwrap_or(Duration::ZERO))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP)
            // Wake to save a checkpoint that moved, even when nothing else happens.
            .min(if checkpoint.dirty() {
                crate::reactions::SAVE_EVERY
            } else {
                MAX_SLEEP
            });
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = progress.changed() => {}
            _ = shutdown.changed() => {}
            // A clock set by hand jumped: deadlines may be due now.
            Some(_) = async {
                match jumps.as_mut() {
                    Some(rx) => rx.changed().await.ok(),
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
}
