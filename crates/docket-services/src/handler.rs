//! The command handler: a decoded command in, the executor's result (or a structured error) out.

use docket_bus::{codes, BusError, BusRequest, CommandReply, DomainCommand, Handler};
use docket_domain::case::Case;
use docket_domain::officer::Officer;
use docket_domain::representation::Representation;
use docket_domain::review::Review;
use docket_log::EventLog;
use docket_service::clock::SharedClock;
use docket_service::{ExecError, Executed, Executor};

/// Executes every domain command it is given. Each service registers it only for its own
/// endpoints.
#[derive(Debug)]
pub struct CommandHandler<L> {
    executor: Executor<L>,
    clock: SharedClock,
}

impl<L: EventLog + Clone + Send + Sync + 'static> CommandHandler<L> {
    /// A handler over an executor, taking the time from `clock`.
    pub fn new(executor: Executor<L>, clock: SharedClock) -> Self {
        CommandHandler { executor, clock }
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
    async fn handle(&self, request: BusRequest) -> Result<CommandReply, BusError> {
        let kind = request.kind;
        match self.execute(request).await {
            Ok(done) => Ok(CommandReply {
                position: done.position,
                revision: done.revision,
                events: done.events,
                duplicate: done.duplicate,
            }),
            Err(e) => {
                tracing::debug!(command = %kind, code = e.code(), "command refused");
                Err(bus_error(e))
            }
        }
    }
}

/// The handler of a service that takes no commands (notification): it registers with NATS's
/// service API so `$SRV.PING`, `INFO` and `STATS` see it, and answers nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCommands;

impl Handler for NoCommands {
    async fn handle(&self, request: BusRequest) -> Result<CommandReply, BusError> {
        Err(BusError::unknown_command(request.kind.name()))
    }
}
