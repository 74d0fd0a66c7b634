//! The executor: decides a command against the world's state of its stream and appends the
//! events with the revision it decided on; a conflict means the world was stale, so it catches
//! up and decides again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use docket_domain::policy::PolicySet;
use docket_domain::{Actor, Context, Deadlines, DomainEvent, Rejection};
use docket_log::{CommitHash, EventLog, ExpectedRevision, LogError, Metadata, StreamId};
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::stored::{decode_event, encode_event, StoredAggregate};
use crate::world::{World, WorldError};

/// Settings of an [`Executor`].
#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// The guideline policy versions.
    pub policies: PolicySet,
    /// Review deadlines.
    pub deadlines: Deadlines,
    /// How many times a command is decided again after losing a race.
    pub max_attempts: u32,
    /// How long to wait for the world to catch up with the log.
    pub catch_up_timeout: Duration,
}

impl ExecutorConfig {
    /// Defaults around a policy set.
    pub fn new(policies: PolicySet) -> Self {
        ExecutorConfig {
            policies,
            deadlines: Deadlines::default(),
            max_attempts: 10,
            catch_up_timeout: Duration::from_secs(10),
        }
    }
}

/// What an executed command did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    /// Position of the commit.
    pub position: u64,
    /// The stream's revision after it.
    pub revision: u64,
    /// Type names of the events appended.
    pub events: Vec<String>,
    /// SHA-256 of the commit's bytes (what a receipt names the commit by).
    pub hash: CommitHash,
    /// True if this repeated an earlier command with the same idempotency key: nothing new was
    /// appended, and the reply describes the original.
    pub duplicate: bool,
}

/// Why a command did not execute.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The domain refused it.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// It lost the race for its stream every time.
    #[error("stream {stream} kept changing: gave up after {attempts} attempts")]
    Conflict {
        /// The stream.
        stream: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The log refused or failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The world is not current enough to decide.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The world stopped following the log (a commit it could not apply).
    #[error("stopped: {0}")]
    Stopped(String),
    /// An event could not be encoded or decoded.
    #[error("event codec: {0}")]
    Codec(String),
    /// The request asked for something impossible (a position past the log's head).
    #[error("bad request: {0}")]
    BadRequest(String),
}

// Waiting for the world fails as the executor always reported it: a stopped world is `Stopped`,
// one that did not catch up in time `Unavailable`, with the same codes and messages.
impl From<WorldError> for ExecError {
    fn from(e: WorldError) -> Self {
        match e {
            WorldError::Stopped(fault) => ExecError::Stopped(fault),
            timeout @ WorldError::Timeout { .. } => ExecError::Unavailable(timeout.to_string()),
        }
    }
}

impl ExecError {
    /// The stable code of the error, as replies carry it (`docs/api.md`, "Errors") and logs
    /// show it: the one table from an executor failure to a code. The bus's reply adds only
    /// details; it never picks another code.
    pub fn code(&self) -> &'static str {
        match self {
            ExecError::Rejected(r) => r.code(),
            ExecError::Conflict { .. }
            | ExecError::Log(LogError::Conflict { .. } | LogError::Duplicate { .. }) => "conflict",
            ExecError::Log(LogError::TooLarge { .. }) => "too_large",
            ExecError::Log(LogError::Unavailable { .. } | LogError::Incompatible { .. })
            | ExecError::Unavailable(_) => "unavailable",
            // A missing stream, corrupt bytes or a malformed append (which the executor itself
            // built) are serving-side problems the client cannot fix.
            ExecError::Log(
                LogError::NotFound { .. } | LogError::Corrupt { .. } | LogError::Invalid { .. },
            )
            | ExecError::Stopped(_)
            | ExecError::Codec(_) => "internal",
            ExecError::BadRequest(_) => "bad_request",
        }
    }
}

/// An append's outcome, as `docket_appends_total` counts it.
fn append_outcome<T>(appended: &Result<T, LogError>) -> &'static str {
    match appended {
        Ok(_) => "ok",
        Err(LogError::Conflict { .. }) => "conflict",
        Err(LogError::Duplicate { .. }) => "duplicate",
        Err(_) => "error",
    }
}

/// Stripes of the per-stream lock: commands on one stream in one process take turns instead of
/// racing each other to a conflict; commands on other streams rarely share a stripe.
const STREAM_LOCK_STRIPES: usize = 256;

/// Decides commands and appends their events. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Executor<L> {
    log: L,
    world: World,
    config: Arc<ExecutorConfig>,
    stream_locks: Arc<Vec<tokio::sync::Mutex<()>>>,
    metrics: Metrics,
}

impl<L: EventLog + Clone + Send + Sync + 'static> Executor<L> {
    /// An executor over a log and the world that follows it.
    pub fn new(log: L, world: World, config: ExecutorConfig) -> Self {
        Executor {
            log,
            world,
            config: Arc::new(config),
            stream_locks: Arc::new(
                (0..STREAM_LOCK_STRIPES)
                    .map(|_| tokio::sync::Mutex::new(()))
                    .collect(),
            ),
            metrics: Metrics::default(),
        }
    }

    /// The same executor counting into `metrics` (the node's registered families) rather than
    /// into families nothing shows.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// What it counts into; the reactions running on it count there too.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The world it decides against.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The log it appends to.
    pub fn log(&self) -> &L {
        &self.log
    }

    /// The settings.
    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    /// Decides `command` for the aggregate `A` in stream `<A::KIND>/<id>` and appends its
    /// events. Retries with the same idempotency key are answered with the original commit.
    pub async fn execute<A: StoredAggregate>(
        &self,
        id: &str,
        command: &A::Command,
        actor: Actor,
        idempotency_key: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Executed, ExecError> {
        let started = Instant::now();
        let result = self
            .decide_and_append::<A>(id, command, actor, idempotency_key, now)
            .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(ExecError::Rejected(_)) => "refused",
            Err(_) => "error",
        };
        self.metrics.command_done(
            docket_domain::AggregateCommand::kind(command),
            outcome,
            started.elapsed(),
        );
        result
    }

    /// What [`Executor::execute`] does, without counting it.
    async fn decide_and_append<A: StoredAggregate>(
        &self,
        id: &str,
        command: &A::Command,
        actor: Actor,
        idempotency_key: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Executed, ExecError> {
        let stream = StreamId::new(format!("{}/{id}", A::KIND))?;
        // Only other processes can now race this command on its stream.
        let stripe = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            stream.as_str().hash(&mut hasher);
            usize::try_from(hasher.finish() % STREAM_LOCK_STRIPES as u64).unwrap_or(0)
        };
        let _turn = match self.stream_locks.get(stripe) {
            Some(lock) => Some(lock.lock().await),
            None => None,
        };
        let mut attempts = 0;
        let mut caught_up = false;
        loop {
            attempts += 1;
            if let Some(fault) = self.world.fault() {
                return Err(ExecError::Stopped(fault));
            }
            // A retry of a command already applied is answered before the domain sees it (it
            // would refuse it against the state the original produced).
            let known = idempotency_key
                .as_ref()
                .and_then(|k| self.world.read().idempotency_keys.get(k).copied());
            if let Some(position) = known {
                return self.original(position).await;
            }
            let (revision, events, decided_at) = {
                let view = self.world.read();
                let (revision, state) = view.get::<A>(stream.as_str());
                let ctx = Context {
                    actor,
                    now,
                    policies: &self.config.policies,
                    directory: &*view,
                    deadlines: &self.config.deadlines,
                };
                (revision, state.decide(command, &ctx), view.applied)
            };
            let events = match events {
                Ok(events) => events,
                // The world may be behind the log: a write the caller has already seen, made
                // through another service (a record attached through intake just before the
                // attestation reaches assessment), may not have reached it yet. Refuse only
                // against a world at least as recent as the log's head after the command came
                // in; the head read costs a round trip, paid on refusals only.
                Err(rejection) if !caught_up => {
                    caught_up = true;
                    let head = self.log.head().await?;
                    if head > decided_at {
                        tracing::debug!(stream = %stream, head, decided_at, "refused against a stale world: catching up and deciding again");
                        self.world
                            .wait_until(head, self.config.catch_up_timeout)
                            .await?;
                        continue;
                    }
                    return Err(rejection.into());
                }
                Err(rejection) => return Err(rejection.into()),
            };
            let names: Vec<String> = events
                .iter()
                .map(|e| Into::<DomainEvent>::into(e.clone()).name().to_owned())
                .collect();
            let data = events
                .into_iter()
                .map(|e| encode_event(&e.into(), Uuid::new_v4()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ExecError::Codec(e.to_string()))?;
            let metadata = Metadata {
                idempotency_key: idempotency_key.clone(),
                actor: Some(format!("{}/{}", actor.person, actor.role)),
                correlation_id: None,
                causation_id: None,
                recorded_at_micros: now.timestamp_micros(),
            };
            let expected = match revision {
                0 => ExpectedRevision::NoStream,
                r => ExpectedRevision::Exact(r),
            };
            let appending = Instant::now();
            let appended = self.log.append(&stream, expected, data, metadata).await;
            self.metrics
                .append_done(append_outcome(&appended), appending.elapsed());
            match appended {
                Ok(appended) => {
                    // Read your own writes: the next command on this stream sees this one.
                    self.world
                        .wait_until(appended.position, self.config.catch_up_timeout)
                        .await?;
                    return Ok(Executed {
                        position: appended.position,
                        revision: appended.revision,
                        events: names,
                        hash: appended.hash,
                        duplicate: false,
                    });
                }
                Err(LogError::Duplicate { position }) => return self.original(position).await,
                Err(LogError::Conflict { actual, .. }) if attempts < self.config.max_attempts => {
                    tracing::debug!(stream = %stream, actual, attempts, "stale state, catching up and deciding again");
                    self.world
                        .wait_until(actual, self.config.catch_up_timeout)
                        .await?;
                    // Spread out writers that keep colliding on one stream.
                    let jitter = Uuid::new_v4().as_u128() % 1000;
                    tokio::time::sleep(Duration::from_micros(
                        (jitter as u64) * u64::from(attempts),
                    ))
                    .await;
                }
                Err(LogError::Conflict { .. }) => {
                    return Err(ExecError::Conflict {
                        stream: stream.to_string(),
                        attempts,
                    })
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The reply for a command already in the log at `position`.
    async fn original(&self, position: u64) -> Result<Executed, ExecError> {
        let commit = self
            .log
            .read_all(position - 1, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                ExecError::Unavailable(format!("commit {position} is not readable yet"))
            })?;
        let events = commit
            .commit
            .events
            .iter()
            .map(|e| decode_event(e).map(|d| d.name().to_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ExecError::Codec(e.to_string()))?;
        self.world
            .wait_until(position, self.config.catch_up_timeout)
            .await?;
        Ok(Executed {
            position,
            revision: position,
            events,
            hash: commit.hash(),
            duplicate: true,
        })
    }
}
