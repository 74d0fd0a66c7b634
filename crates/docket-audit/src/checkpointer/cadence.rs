//! The checkpointer's cadence, declared in the log: one commit to the stream
//! [`CADENCE_STREAM`] with one event [`CADENCE_EVENT`] (version [`CADENCE_VERSION`]) whose
//! payload is the JSON `{"every_ms": <u64>, "every_commits": <u64>}`, by the actor
//! [`CADENCE_ACTOR`]. The checkpointer appends one when it starts and the last declaration in
//! the log differs or there is none, so the log says, at every point, how long a gap between
//! checkpoints may be.
//!
//! The append expects the stream's revision it read: a second checkpointer declaring at the same
//! time makes it conflict, and the declaration is read again (perhaps now the same) rather than
//! failing.

use bytes::Bytes;
use docket_log::{EventData, EventLog, ExpectedRevision, LogError, Metadata, StreamId};
use serde::{Deserialize, Serialize};

use crate::error::AuditError;

/// The stream of the checkpointer's declarations.
pub const CADENCE_STREAM: &str = "audit/checkpointer";

/// The event type of a cadence declaration.
pub const CADENCE_EVENT: &str = "audit.checkpoint_cadence";

/// The version of [`CADENCE_EVENT`]'s payload.
pub const CADENCE_VERSION: u16 = 1;

/// The actor of a cadence declaration's commit.
pub const CADENCE_ACTOR: &str = "docket-checkpointer";

/// Declarations tried before giving up on a stream that keeps changing under us.
const ATTEMPTS: usize = 8;

/// How often the checkpointer signs: every `every_ms` milliseconds when the log grew, or once
/// it grew by `every_commits`, whichever comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cadence {
    /// The period, in milliseconds.
    pub every_ms: u64,
    /// The most commits between two checkpoints.
    pub every_commits: u64,
}

impl Cadence {
    /// The declaration in an event, if it is one (of a version this code knows).
    pub fn from_event(event: &EventData) -> Option<Cadence> {
        if event.type_name != CADENCE_EVENT || event.type_version != CADENCE_VERSION {
            return None;
        }
        serde_json::from_slice(&event.payload).ok()
    }

    /// The event declaring this cadence.
    pub fn to_event(&self) -> Result<EventData, AuditError> {
        let payload = serde_json::to_vec(self)
            .map_err(|e| AuditError::Stopped(format!("encoding the cadence: {e}")))?;
        Ok(EventData {
            id: uuid::Uuid::new_v4(),
            type_name: CADENCE_EVENT.to_owned(),
            type_version: CADENCE_VERSION,
            payload: Bytes::from(payload),
        })
    }
}

fn stream() -> Result<StreamId, AuditError> {
    StreamId::new(CADENCE_STREAM)
        .map_err(|e| AuditError::Stopped(format!("the cadence stream's name: {e}")))
}

/// The stream's revision and its last declaration (the commit's position and the cadence;
/// `None` if there is none, or the last commit declares nothing this code reads).
pub async fn last_declared<L: EventLog>(
    log: &L,
) -> Result<(u64, Option<(u64, Cadence)>), AuditError> {
    let commits = match log.read_stream(&stream()?).await {
        Ok(commits) => commits,
        Err(LogError::NotFound { .. }) => return Ok((0, None)),
        Err(e) => return Err(e.into()),
    };
    let Some(last) = commits.last() else {
        return Ok((0, None));
    };
    let declared = last
        .commit
        .events
        .iter()
        .find_map(Cadence::from_event)
        .map(|c| (last.position, c));
    Ok((last.position, declared))
}

/// Makes `cadence` the one the log declares: appends a declaration unless the last one is the
/// same. Returns the position of the declaration in force.
pub async fn declare<L: EventLog>(
    log: &L,
    cadence: Cadence,
    recorded_at_micros: i64,
) -> Result<u64, AuditError> {
    let stream = stream()?;
    for _ in 0..ATTEMPTS {
        let (revision, last) = last_declared(log).await?;
        if let Some((position, declared)) = last {
            if declared == cadence {
                return Ok(position);
            }
        }
        let expected = if revision == 0 {
            ExpectedRevision::NoStream
        } else {
            ExpectedRevision::Exact(revision)
        };
        let metadata = Metadata {
            actor: Some(CADENCE_ACTOR.to_owned()),
            recorded_at_micros,
            ..Metadata::default()
        };
        match log
            .append(&stream, expected, vec![cadence.to_event()?], metadata)
            .await
        {
            Ok(appended) => {
                tracing::info!(
                    position = appended.position,
                    every_ms = cadence.every_ms,
                    every_commits = cadence.every_commits,
                    "declared the checkpoint cadence in the log"
                );
                return Ok(appended.position);
            }
            // Another checkpointer declared in between: read what it declared.
            Err(LogError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AuditError::Stopped(format!(
        "the stream {CADENCE_STREAM} kept changing while the cadence was declared"
    )))
}
