//! The command handler: a decoded command in, the executor's result (or a structured error) out.
//! With a checkpointer, the acknowledgement of a review request and the recording of a decision
//! carry a receipt: proof, against the cadence checkpoint that covers the commit (cosigned by the
//! witnesses that answered), that the log holds the commit.

use std::time::Duration;

use docket_audit::CheckpointerHandle;
use docket_domain::permissions::CommandKind;

use docket_bus::token::TokenVerifier;
use docket_bus::{
    codes, BusError, BusRequest, Client, CommandReply, DomainCommand, Handler, NatsTransport,
    ReceiptRequest,
};
use docket_domain::case::Case;
use docket_domain::officer::Officer;
use docket_domain::representation::Representation;
use docket_domain::review::Review;
use docket_log::{EventLog, LogError};
use docket_runtime::clock::SharedClock;
use docket_runtime::{ExecError, Executed, Executor};
use serde_json::json;

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
    /// their own: a client over a transport that waits at most the receipt timeout.
    Remote(Box<Client<NatsTransport>>),
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

impl ReceiptSource {
    /// The audit service over `client`, answering within the receipt timeout.
    pub fn remote(client: docket_bus::NatsClient) -> Self {
        ReceiptSource::Remote(Box::new(Client::unsigned(
            NatsTransport::new(client).with_timeout(RECEIPT_TIMEOUT),
        )))
    }
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
    /// No log read: the checkpointer (here or in the audit service) has the commit's leaf in its
    /// tree, and the append gave its hash, which the remote query carries.
    async fn receipt(&self, done: &Executed) -> Option<docket_bus::Receipt> {
        let position = done.position;
        let source = self.receipts.as_ref()?;
        let made = tokio::time::timeout(RECEIPT_TIMEOUT, async {
            match source {
                ReceiptSource::Local(handle) => {
                    docket_audit::Receipt::for_position(handle, position, done.hash)
                        .await
                        .map(|receipt| crate::audit::wire_receipt(&receipt))
                        .map_err(|e| e.to_string())
                }
                ReceiptSource::Remote(client) => client
                    .query(
                        None,
                        &ReceiptRequest {
                            position,
                            commit_hash: Some(done.hash.to_string()),
                        },
                    )
                    .await
                    .map_err(|e| e.to_string()),
            }
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
        Ok(world
            .wait_until(after, self.executor.config().catch_up_timeout)
            .await?)
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

/// The structured error for an executor failure: the code is [`ExecError::code`] (the one
/// table from a failure to a stable code); this only adds the details a client can act on.
pub(crate) fn bus_error(error: ExecError) -> BusError {
    // The domain's refusal carries its own details (field, role and command); its code is the
    // same `Rejection::code` that `ExecError::code` passes on.
    let error = match error {
        ExecError::Rejected(r) => return r.into(),
        other => other,
    };
    let code = error.code();
    let message = error.to_string();
    let details = match &error {
        ExecError::Log(LogError::Conflict {
            stream,
            expected,
            actual,
        }) => json!({ "stream": stream, "expected": expected.to_string(), "actual": actual }),
        ExecError::Log(LogError::Duplicate { position }) => json!({ "duplicate_of": position }),
        ExecError::Log(LogError::TooLarge { size, limit }) => {
            json!({ "size": size, "limit": limit })
        }
        _ => json!({}),
    };
    if code == codes::INTERNAL {
        tracing::error!(error = %error, "command failed inside the service");
    }
    BusError::new(code, message).with_details(details)
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

#[cfg(test)]
mod tests {
    use super::*;
    use docket_log::ExpectedRevision;

    // Moved from `docket-bus/tests/wire.rs` with the mapping it checks.
    #[test]
    fn log_errors_map_to_bus_codes() {
        let cases: Vec<(LogError, &str)> = vec![
            (
                LogError::Conflict {
                    stream: "case/x".to_owned(),
                    expected: ExpectedRevision::Exact(4),
                    actual: 5,
                },
                codes::CONFLICT,
            ),
            (LogError::Duplicate { position: 3 }, codes::CONFLICT),
            (LogError::TooLarge { size: 9, limit: 8 }, codes::TOO_LARGE),
            (
                LogError::Unavailable {
                    reason: "server down".to_owned(),
                    source: None,
                },
                codes::UNAVAILABLE,
            ),
            (
                LogError::Incompatible {
                    reason: "2.9".to_owned(),
                },
                codes::UNAVAILABLE,
            ),
            (
                LogError::Corrupt {
                    position: 1,
                    reason: "crc".to_owned(),
                },
                codes::INTERNAL,
            ),
            (
                LogError::NotFound {
                    what: "case/x".to_owned(),
                },
                codes::INTERNAL,
            ),
            (
                LogError::Invalid {
                    reason: "no events".to_owned(),
                },
                codes::INTERNAL,
            ),
        ];
        for (log, code) in cases {
            let error = ExecError::Log(log);
            // What is logged is what goes on the wire.
            assert_eq!(error.code(), code, "{error:?}");
            let bus = bus_error(error);
            assert_eq!(bus.code, code, "{bus:?}");
        }
        let conflict = bus_error(ExecError::Log(LogError::Conflict {
            stream: "case/x".to_owned(),
            expected: ExpectedRevision::Exact(4),
            actual: 5,
        }));
        assert_eq!(
            conflict.details,
            json!({ "stream": "case/x", "expected": "4", "actual": 5 })
        );
        assert!(conflict.is_retryable());
    }

    #[test]
    fn executor_errors_keep_their_wire_codes() {
        let cases = [
            (
                ExecError::Conflict {
                    stream: "case/x".to_owned(),
                    attempts: 3,
                },
                codes::CONFLICT,
            ),
            (
                ExecError::Unavailable("behind".to_owned()),
                codes::UNAVAILABLE,
            ),
            (ExecError::Stopped("gone".to_owned()), codes::INTERNAL),
            (ExecError::Codec("bytes".to_owned()), codes::INTERNAL),
            (ExecError::BadRequest("past".to_owned()), codes::BAD_REQUEST),
        ];
        for (error, code) in cases {
            assert_eq!(bus_error(error).code, code);
        }
    }
}
