//! Docket's command services — intake, assessment and case review — as bus handlers over the
//! shared executor, runnable as NATS micro services (one process each, or all in one) or on the
//! in-process bus of the embedded deployment. The review service also runs the deadline scheduler.
//!
//! Which commands a service takes is the bus catalogue's business (`docket_bus::Service`); a
//! service only registers its own endpoints, so one handler serves all three.

mod handler;

use std::sync::Arc;

use docket_bus::{serve_nats, BusError, LocalBus, NatsClient, Service};
use docket_log::EventLog;
use docket_service::clock::SharedClock;
use docket_service::{run_deadline_scheduler, Executor};
use tokio::sync::watch;

pub use handler::{CommandHandler, NoCommands};

/// The version the services report to NATS's service API.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The command services, in the order they start.
pub const COMMAND_SERVICES: [Service; 3] = [Service::Intake, Service::Assessment, Service::Review];

/// What a service failed on.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The bus could not serve.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    /// The deadline scheduler stopped.
    #[error("deadline scheduler: {0}")]
    Scheduler(#[from] docket_service::ExecError),
    /// The service is not a command service.
    #[error("{0} is not a command service")]
    NotACommandService(Service),
}

/// Runs one command service over NATS until `shutdown` turns true, then stops taking requests
/// and finishes the ones in flight.
pub async fn run_nats<L: EventLog + Clone + Send + Sync + 'static>(
    service: Service,
    client: NatsClient,
    executor: Executor<L>,
    clock: SharedClock,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    if !COMMAND_SERVICES.contains(&service) {
        return Err(ServiceError::NotACommandService(service));
    }
    let handler = Arc::new(CommandHandler::new(executor.clone(), clock.clone()));
    let handle = serve_nats(client, service, VERSION, handler).await?;
    tracing::info!(service = %service, "serving over NATS");
    let scheduler = (service == Service::Review)
        .then(|| tokio::spawn(run_deadline_scheduler(executor, clock, shutdown.clone())));
    let _ = shutdown.wait_for(|stop| *stop).await;
    tracing::info!(service = %service, "stopping: finishing requests in flight");
    handle.stop().await?;
    if let Some(scheduler) = scheduler {
        match scheduler.await {
            Ok(result) => result?,
            Err(e) => tracing::error!(error = %e, "the deadline scheduler panicked"),
        }
    }
    Ok(())
}

/// Registers every command service on the in-process bus (the embedded deployment) and starts
/// the deadline scheduler; returns the scheduler's task.
pub fn register_local<L: EventLog + Clone + Send + Sync + 'static>(
    bus: &LocalBus,
    executor: Executor<L>,
    clock: SharedClock,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Result<(), docket_service::ExecError>> {
    let handler = Arc::new(CommandHandler::new(executor.clone(), clock.clone()));
    for service in COMMAND_SERVICES {
        bus.register(service, handler.clone());
    }
    tokio::spawn(run_deadline_scheduler(executor, clock, shutdown))
}
