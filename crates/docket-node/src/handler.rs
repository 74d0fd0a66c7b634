//! The command handler: a decoded command in, the executor's result (or a structured error) out.
//! With a checkpointer, the acknowledgement of a review request and the recording of a decision
//! carry a receipt: proof, against the cadence checkpoint that covers the commit (cosigned by the
//! witnesses that answered), that the log holds the commit.

use std::time::Duration;

use docket_audit::CheckpointerHandle;
use docket_domain::permissions::CommandKind;

use docket_bus::token::TokenVerifier;
use docket_bus::{codes, BusError, BusRequest, CommandReply, DomainCommand, Handler};
use docket_domain::case::Case;
use docket_domain::officer::Officer;
use docket_domain::representation::Representation;
use docket_domain::review::Review;
use docket_log::EventLog;
use docket_runtime::clock::SharedClock;
use docket_runtime::{ExecError, Executed, Executor};

/// Executes every domain command it is given. Each service registers it only for its own
/// endpoints.
#[derive(Debug)]
pub struct CommandHandler<L> {
    executor: Executor<L>,
    clock: SharedClock,
    receipts: Option<ReceiptSource>,
    actors: TokenVerifier,
}

/// Where a service gets receipts.
#[derive(Clone, Debug)]
pub enum ReceiptSource {
    /// A checkpointer in this process.
    Local(CheckpointerHandle),
    /// The audit service over NATS (`docket.cmd.audit.receipt`), for services in processes of
    /// their own.
    Remote(docket_bus::NatsClient),
}

/// How long a reply waits for its receipt before it goes out without one. The receipt rests on
/// the checkpointer's next cadence checkpoint covering the commit (100 ms by default, plus the
/// witnesses' cosignatures, at most their 2 s timeout); nothing signs one for this reply alone.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The commands whose replies carry a receipt.
fn wants_receipt(kind: CommandKind) -> bool {
    matches!(
        kind,
        CommandKind::ReviewRequest | CommandKind::CaseRecordDecision
    )
}

impl<L: EventLog + Clone + Send + Sync + 'static> CommandHandler<L> {
    /// A handler over an executor, taking the time from `clock` and accepting the actor tokens
    /// `actors` verifies.
    pub fn new(executor: Executor<L>, clock: SharedClock, actors: TokenVerifier) -> Self {
        CommandHandler {
            executor,
            clock,
            receipts: None,
            actors,
        }
    }

    /// The same handler, attaching receipts from `source` to the replies of review requests
    /// and recorded decisions.
    pub fn with_receipts(mut self, source: ReceiptSource) -> Self {
        self.receipts = Some(source);
        self
    }

    /// The receipt of the commit at `position`; `None` (logged) if it cannot be had in time:
    /// the command is accepted either way, and a receipt can be asked for later.
    /// No log read: a local checkpointer has the commit's leaf in its tree and the append gave
    /// its hash; the audit service reads the commit itself.
    async fn receipt(&self, done: &Executed) -> Option<docket_bus::Receipt> {
        let position = done.position;
        let source = self.receipts.as_ref()?;
        let made = tokio::time::timeout(RECEIPT_TIMEOUT, async {
            // Both arrive in the receipt's JSON form, which is what the reply carries.
            let value = match source {
                ReceiptSource::Local(handle) => {
                    let receipt = docket_audit::Receipt::for_position(handle, position, done.hash)
                        .await
                        .map_err(|e| e.to_string())?;
                    serde_json::to_value(&receipt).map_err(|e| e.to_string())?
                }
                ReceiptSource::Remote(client) => docket_bus::audit_query(
                    client,
                    &docket_bus::AuditQuery::Receipt { position },
                    RECEIPT_TIMEOUT,
                )
                .await
                .map_err(|e| e.to_string())?,
            };
            serde_json::from_value::<docket_bus::Receipt>(value).map_err(|e| e.to_string())
        })
        .await;
        match made {
            Ok(Ok(receipt)) => Some(receipt),
            Ok(Err(e)) => {
                tracing::warn!(position, error = %e, "reply sent without its receipt");
                None
            }
            Err(_) => {
                tracing::warn!(
                    position,
                    "reply sent without its receipt: no checkpoint in time"
                );
                None
            }
        }
    }

    /// Waits until the world has read the log up to `after` (the caller's `Docket-After`);
    /// a position the log has not reached is the caller's mistake.
    async fn read_up_to(&self, after: u64) -> Result<(), ExecError> {
        let world = self.executor.world();
        if world.applied() >= after {
            return Ok(());
        }
        let head = self.executor.log().head().await?;
        if after > head {
            return Err(ExecError::BadRequest(format!(
                "Docket-After names position {after}, but the log ends at {head}"
            )));
        }
        world
            .wait_applied(after, self.executor.config().catch_up_timeout)
            .await
    }

    async fn execute(&self, request: BusRequest) -> Result<Executed, ExecError> {
        let BusRequest {
            command,
            actor,
            idempotency_key: key,
            after,
            ..
        } = request;
        let ex = &self.executor;
        if let Some(after) = after {
            self.read_up_to(after).await?;
        }
        let now = self.clock.now();
        match command {
            DomainCommand::Case { case, command } => {
                ex.execute::<Case>(&case.to_string(), &command, actor, key, now)
                    .await
            }
            DomainCommand::Officer { person, command } => {
                ex.execute::<Officer>(&person.to_string(), &command, actor, key, now)
                    .await
            }
            DomainCommand::Representation {
                a_number,
                representative,
                command,
            } => {
                let id = Representation::key(a_number, representative);
                ex.execute::<Representation>(&id, &command, actor, key, now)
                    .await
            }
            DomainCommand::Review { review, command } => {
                ex.execute::<Review>(&review.to_string(), &command, actor, key, now)
                    .await
            }
        }
    }
}

/// The structured error for an executor failure.
pub(crate) fn bus_error(error: ExecError) -> BusError {
    match error {
        ExecError::Rejected(r) => r.into(),
        ExecError::Log(e) => e.into(),
        ExecError::Conflict { .. } => BusError::new(codes::CONFLICT, error.to_string()),
        ExecError::Unavailable(_) => BusError::unavailable(error.to_string()),
        ExecError::BadRequest(message) => BusError::bad_request(message),
        ExecError::Stopped(_) | ExecError::Codec(_) => {
            tracing::error!(error = %error, "command failed inside the service");
            BusError::internal(error.to_string())
        }
    }
}

impl<L: EventLog + Clone + Send + Sync + 'static> Handler for CommandHandler<L> {
    fn actors(&self) -> &TokenVerifier {
        &self.actors
    }

    async fn handle(&self, request: BusRequest) -> Result<CommandReply, BusError> {
        let kind = request.kind;
        match self.execute(request).await {
            Ok(done) => {
                let receipt = if wants_receipt(kind) {
                    self.receipt(&done).await
                } else {
                    None
                };
                Ok(CommandReply {
                    position: done.position,
                    revision: done.revision,
                    events: done.events,
                    duplicate: done.duplicate,
                    receipt,
                })
            }
            Err(e) => {
                tracing::debug!(command = %kind, code = e.code(), "command refused");
                Err(bus_error(e))
            }
        }
    }
}

/// The handler of a service that takes no commands (notification): it registers with NATS's
/// service API so `$SRV.PING`, `INFO` and `STATS` see it, and answers nothing.
#[derive(Clone, Debug)]
pub struct NoCommands(TokenVerifier);

impl Default for NoCommands {
    fn default() -> Self {
        NoCommands(TokenVerifier::refusing_all())
    }
}

impl Handler for NoCommands {
    fn actors(&self) -> &TokenVerifier {
        &self.0
    }

    async fn handle(&self, request: BusRequest) -> Result<CommandReply, BusError> {
        Err(BusError::unknown_command(request.kind.name()))
    }
}
