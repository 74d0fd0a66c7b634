//! The command services — intake, assessment and case review — as bus handlers over the
//! shared executor, runnable as NATS micro services or on the in-process bus of the embedded
//! deployment. The review service also runs the deadline scheduler, and the assessment service
//! the guidance reaction; both keep their checkpoints in the deployment's checkpoint store.
//!
//! Which commands a service takes is the bus catalogue's business (`docket_bus::Service`); a
//! service only registers its own endpoints, so one handler serves all three.

use std::sync::Arc;

use docket_bus::token::TokenVerifier;
use docket_bus::{serve_nats, BusError, LocalBus, NatsClient, Service};
use docket_log::{AnyCheckpoints, EventLog};
use docket_runtime::clock::SharedClock;
use docket_runtime::{run_deadline_scheduler, run_guidance_reaction, ExecError, Executor};
use tokio::sync::watch;

use crate::handler::{CommandHandler, ReceiptSource};
use crate::VERSION;

/// The command services, in the order they start.
pub const COMMAND_SERVICES: [Service; 3] = [Service::Intake, Service::Assessment, Service::Review];

/// What a service failed on.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The bus could not serve.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    /// A background task (the deadline scheduler or the guidance reaction) stopped.
    #[error("{task}: {source}")]
    Background {
        /// Which task.
        task: &'static str,
        /// Why it stopped.
        #[source]
        source: ExecError,
    },
    /// The service is not a command service.
    #[error("{0} is not a command service")]
    NotACommandService(Service),
}

/// A service's background work: the deadline scheduler (review) and the guidance reaction
/// (assessment), each in its own task.
#[derive(Debug)]
struct Background(Vec<(&'static str, tokio::task::JoinHandle<Result<(), ExecError>>)>);

impl Background {
    fn start<L: EventLog + Clone + Send + Sync + 'static>(
        services: &[Service],
        executor: &Executor<L>,
        checkpoints: &AnyCheckpoints,
        clock: &SharedClock,
        shutdown: &watch::Receiver<bool>,
    ) -> Self {
        let mut tasks = Vec::new();
        if services.contains(&Service::Review) {
            tasks.push((
                "deadline scheduler",
                tokio::spawn(run_deadline_scheduler(
                    executor.clone(),
                    checkpoints.clone(),
                    clock.clone(),
                    shutdown.clone(),
                )),
            ));
        }
        if services.contains(&Service::Assessment) {
            tasks.push((
                "guidance reaction",
                tokio::spawn(run_guidance_reaction(
                    executor.clone(),
                    checkpoints.clone(),
                    clock.clone(),
                    shutdown.clone(),
                )),
            ));
        }
        Background(tasks)
    }

    /// Waits for every task; the first failure is the result.
    async fn finish(self) -> Result<(), ServiceError> {
        let mut result = Ok(());
        for (task, handle) in self.0 {
            let outcome = match handle.await {
                Ok(outcome) => outcome,
                Err(e) => Err(ExecError::Stopped(format!("the task panicked: {e}"))),
            };
            if let Err(source) = outcome {
                tracing::error!(task, error = %source, "background task failed");
                if result.is_ok() {
                    result = Err(ServiceError::Background { task, source });
                }
            }
        }
        result
    }
}

/// A handle on the background work of the embedded services.
#[derive(Debug)]
pub struct LocalServices(Background);

impl LocalServices {
    /// Waits until the background tasks end (after shutdown, or on a failure).
    pub async fn finish(self) -> Result<(), ServiceError> {
        self.0.finish().await
    }
}

/// The handler, with receipts if a checkpointer is given.
fn handler<L: EventLog + Clone + Send + Sync + 'static>(
    executor: &Executor<L>,
    receipts: Option<ReceiptSource>,
    clock: &SharedClock,
    actors: TokenVerifier,
) -> CommandHandler<L> {
    let handler = CommandHandler::new(executor.clone(), clock.clone(), actors);
    match receipts {
        Some(source) => handler.with_receipts(source),
        None => handler,
    }
}

/// Runs one command service over NATS until `shutdown` turns true, then stops taking requests
/// and finishes the ones in flight. Requests must carry actor tokens `actors` verifies.
#[allow(clippy::too_many_arguments)]
pub async fn run_nats<L: EventLog + Clone + Send + Sync + 'static>(
    service: Service,
    client: NatsClient,
    executor: Executor<L>,
    checkpoints: AnyCheckpoints,
    receipts: Option<ReceiptSource>,
    actors: TokenVerifier,
    clock: SharedClock,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    if !COMMAND_SERVICES.contains(&service) {
        return Err(ServiceError::NotACommandService(service));
    }
    let handler = Arc::new(handler(&executor, receipts, &clock, actors));
    let handle = serve_nats(client, service, VERSION, handler).await?;
    tracing::info!(service = %service, "serving over NATS");
    let background = Background::start(&[service], &executor, &checkpoints, &clock, &shutdown);
    let _ = shutdown.wait_for(|stop| *stop).await;
    tracing::info!(service = %service, "stopping: finishing requests in flight");
    handle.stop().await?;
    background.finish().await
}

/// Registers `services` on the in-process bus (the embedded deployment) and starts their
/// background work (the deadline scheduler and the guidance reaction). Requests must carry
/// actor tokens `actors` verifies.
#[allow(clippy::too_many_arguments)]
pub fn register_local<L: EventLog + Clone + Send + Sync + 'static>(
    bus: &LocalBus,
    services: &[Service],
    executor: Executor<L>,
    checkpoints: AnyCheckpoints,
    receipts: Option<ReceiptSource>,
    actors: TokenVerifier,
    clock: SharedClock,
    shutdown: watch::Receiver<bool>,
) -> LocalServices {
    let handler = Arc::new(handler(&executor, receipts, &clock, actors));
    for service in services {
        bus.register(*service, handler.clone());
    }
    LocalServices(Background::start(
        services,
        &executor,
        &checkpoints,
        &clock,
        &shutdown,
    ))
}
