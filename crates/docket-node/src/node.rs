//! [`Node::start`]: one start-up path for any set of roles, on either log. The log is opened
//! once through the log abstraction; the roles start in the fixed order of [`Role`] and stop in
//! reverse, the HTTP endpoint last up and first down; every long-running part runs under the
//! node's [`Supervisor`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use docket_bus::{LocalBus, Service};
use docket_domain::policy::PolicySet;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::jetstream::{redact_url, JetStreamConfig, JetStreamLog};
use docket_log::{AnyLog, EventLog};
use docket_runtime::clock::{SharedClock, SystemClock};
use docket_runtime::{Executor, ExecutorConfig, World};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{LogConfig, NodeConfig, Role};
use crate::error::{NodeError, ResultExt};
use crate::http::{self, Parts};
use crate::metrics::NodeMetrics;
use crate::supervise::Supervisor;
use crate::{AuditApi, ReceiptSource};

/// A running node.
#[derive(Debug)]
pub struct NodeHandle {
    addr: Option<SocketAddr>,
    supervisor: Supervisor,
    metrics: NodeMetrics,
    log: AnyLog,
}

/// Composition: starts a node.
#[derive(Debug)]
pub struct Node;

fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

fn to_string<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Awaits a component's task; a panic or an error becomes its message.
async fn joined<E: std::fmt::Display>(
    task: tokio::task::JoinHandle<Result<(), E>>,
) -> Result<(), String> {
    match task.await {
        Ok(outcome) => outcome.map_err(to_string),
        Err(e) => Err(format!("panicked: {e}")),
    }
}

impl Node {
    /// Opens the log, starts every role of `config` in order and serves HTTP if asked. The node
    /// runs until `shutdown` is cancelled or a component stops; [`NodeHandle::wait`] says which.
    pub async fn start(
        config: NodeConfig,
        shutdown: CancellationToken,
    ) -> Result<NodeHandle, NodeError> {
        let metrics = NodeMetrics::new();
        let supervisor = Supervisor::new(
            shutdown.child_token(),
            config.tunables.supervision.clone(),
            metrics.restarts.clone(),
        );
        let log = open_log(&config.log).await?;
        let started = start_roles(&config, &log, &supervisor, &metrics).await;
        match started {
            Ok(addr) => Ok(NodeHandle {
                addr,
                supervisor,
                metrics,
                log,
            }),
            Err(e) => {
                // Whatever started stops again before the error is returned.
                supervisor.token().cancel();
                supervisor.stop_all().await;
                close(&log).await;
                Err(e)
            }
        }
    }
}

impl NodeHandle {
    /// The HTTP endpoint's address, if the node serves HTTP.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The node's supervisor (component states).
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// The node's metrics (what `/metrics` renders).
    pub fn metrics(&self) -> &NodeMetrics {
        &self.metrics
    }

    /// Waits until the node is told to stop or a component stops; then stops the roles in
    /// reverse order. `Err(NodeError::Component)` names the component that stopped the node.
    pub async fn wait(self) -> Result<(), NodeError> {
        self.supervisor.token().cancelled().await;
        tracing::info!("stopping");
        self.supervisor.stop_all().await;
        close(&self.log).await;
        match self.supervisor.failure() {
            Some(failure) => Err(NodeError::Component(failure)),
            None => Ok(()),
        }
    }

    /// Stops the node and waits for it.
    pub async fn stop(self) -> Result<(), NodeError> {
        self.supervisor.token().cancel();
        self.wait().await
    }
}

async fn close(log: &AnyLog) {
    if let AnyLog::File(l) = log {
        if let Err(e) = l.close().await {
            tracing::error!(error = %e, "closing the log");
        }
    }
}

async fn open_log(config: &LogConfig) -> Result<AnyLog, NodeError> {
    Ok(match config {
        LogConfig::File { dir } => AnyLog::File(
            FileLog::open(FileLogConfig::new(dir))
                .await
                .context(format!("opening the log in {}", dir.display()))?,
        ),
        LogConfig::JetStream { url, replicas } => {
            let config = JetStreamConfig {
                replicas: *replicas,
                ..JetStreamConfig::default()
            };
            AnyLog::JetStream(
                JetStreamLog::connect_url(url, config)
                    .await
                    .context(format!(
                        "opening the log on JetStream at {}",
                        redact_url(url)
                    ))?,
            )
        }
    })
}

/// Where a role's files go by default: inside the data directory, or `./docket-<name>` beside
/// a JetStream log.
fn default_dir(config: &NodeConfig, name: &str) -> PathBuf {
    match &config.log {
        LogConfig::File { dir } => dir.join(name),
        LogConfig::JetStream { .. } => PathBuf::from(format!("docket-{name}")),
    }
}

fn nats_url(config: &NodeConfig) -> Option<&str> {
    match &config.log {
        LogConfig::JetStream { url, .. } => Some(url),
        LogConfig::File { .. } => None,
    }
}

async fn nats(url: &str, name: &str) -> Result<docket_bus::NatsClient, NodeError> {
    docket_bus::connect(url, name)
        .await
        .context(format!("connecting to NATS as {name}"))
}

/// Stops `handle` (a NATS micro service) when the stage stops.
async fn stop_service_with(
    mut stop: watch::Receiver<bool>,
    handle: docket_bus::ServiceHandle,
) -> Result<(), String> {
    let _ = stop.wait_for(|s| *s).await;
    handle.stop().await.map_err(to_string)
}

async fn start_roles(
    config: &NodeConfig,
    log: &AnyLog,
    supervisor: &Supervisor,
    metrics: &NodeMetrics,
) -> Result<Option<SocketAddr>, NodeError> {
    let checkpoints = log
        .checkpoints()
        .await
        .context("opening the reactions' checkpoints")?;
    let mut parts = Parts::default();

    if config.runs(Role::Audit) {
        let stop = supervisor.stage("audit");
        let records = log
            .audit_records()
            .await
            .context("opening the checkpoint records")?;
        let dir = config
            .checkpoints
            .dir
            .clone()
            .unwrap_or_else(|| default_dir(config, "audit"));
        let (checkpointer, task, vkey) = crate::checkpoints::start(
            &config.checkpoints,
            log.clone(),
            records,
            dir,
            metrics.audit.clone(),
            stop.clone(),
        )?;
        supervisor.critical("checkpointer", joined(task));
        let api = AuditApi {
            checkpointer: checkpointer.clone(),
            log: log.clone(),
            actors: config
                .actors
                .clone()
                .unwrap_or_else(docket_bus::token::TokenVerifier::refusing_all),
        };
        if let Some(url) = nats_url(config) {
            let client = nats(url, "docket-audit").await?;
            let handle =
                docket_bus::serve_nats(client, Service::Audit, crate::VERSION, api.clone())
                    .await
                    .context("serving the audit queries over NATS")?;
            supervisor.critical("audit service", stop_service_with(stop.clone(), handle));
        }
        // The HTTP routes and an in-process dashboard ask through the bus, as NATS clients do.
        let bus = LocalBus::new();
        bus.register(Service::Audit, api);
        parts.audit = Some((bus, vkey));
        parts.checkpointer = Some(checkpointer);
    }

    if config.runs(Role::Notification) {
        let stop = supervisor.stage("notification");
        if let Some(url) = nats_url(config) {
            // Registered as a micro service (no endpoints) so $SRV.PING/INFO/STATS see it.
            let client = nats(url, "docket-notification").await?;
            let handle = docket_bus::serve_nats(
                client,
                Service::Notification,
                crate::VERSION,
                crate::NoCommands::default(),
            )
            .await
            .context("registering the notification service")?;
            supervisor.critical(
                "notification service",
                stop_service_with(stop.clone(), handle),
            );
        }
        match &config.webhook {
            None => tracing::info!("notifications are off (no --webhook-url)"),
            Some(webhook) => {
                let mut notify = docket_notify::NotifyConfig::new(
                    webhook.url.clone(),
                    webhook.secret.expose().to_owned(),
                );
                let t = &config.tunables.notify;
                notify.max_attempts = t.max_attempts;
                notify.initial_backoff = Duration::from_millis(t.initial_backoff_ms);
                notify.max_backoff = Duration::from_millis(t.max_backoff_ms);
                notify.request_timeout = Duration::from_millis(t.request_timeout_ms);
                notify.concurrency = t.concurrency;
                notify
                    .validate()
                    .map_err(|e| NodeError::Config(e.to_string()))?;
                tracing::info!(webhook = ?notify, "notifications");
                let log = log.clone();
                let checkpoints = checkpoints.clone();
                let recorded = metrics.notify.clone();
                supervisor.restarting("notification", move |stop| {
                    let run = docket_notify::run(
                        notify.clone(),
                        log.clone(),
                        checkpoints.clone(),
                        clock(),
                        recorded.clone(),
                        stop,
                    );
                    async move { run.await.map_err(to_string) }
                });
                parts.notifications = true;
            }
        }
    }

    if config.runs(Role::Dashboard) {
        let stop = supervisor.stage("dashboard");
        let dir = config
            .dashboard
            .dir
            .clone()
            .unwrap_or_else(|| default_dir(config, "dashboard"));
        let t = &config.tunables.dashboard;
        let mut settings = docket_dashboard::DashboardConfig::new(Some(dir.clone()));
        settings.rebuild = config.dashboard.rebuild;
        settings.snapshot_every = Duration::from_millis(t.snapshot_every_ms.max(1));
        settings.lag_every = Duration::from_millis(t.lag_every_ms.max(1));
        settings.integrity_every = Duration::from_millis(t.integrity_every_ms.max(1));
        let what = format!("starting the dashboard (snapshot in {})", dir.display());
        let dashboard = Dashboarding {
            log,
            checkpoints: &checkpoints,
            settings,
            metrics: metrics.dashboard.clone(),
            stop,
            what,
        };
        let (dashboard, task) = match (
            &parts.audit,
            nats_url(config),
            &config.dashboard.verifier_key,
        ) {
            (Some((bus, vkey)), _, _) => dashboard.start(Some((bus.clone(), vkey))).await?,
            (None, Some(url), Some(vkey)) => {
                let client = nats(url, "docket-dashboard").await?;
                let audit =
                    docket_bus::NatsTransport::new(client).with_timeout(Duration::from_secs(10));
                dashboard.start(Some((audit, vkey))).await?
            }
            (None, _, _) => {
                tracing::warn!("no --verifier-key: the dashboard will not verify checkpoints");
                dashboard.start::<LocalBus>(None).await?
            }
        };
        supervisor.critical("dashboard", joined(task));
        parts.dashboard = Some(dashboard);
    }

    let services: Vec<Service> = Role::ALL
        .into_iter()
        .filter(|r| config.runs(*r))
        .filter_map(Role::service)
        .collect();
    if !services.is_empty() {
        let actors = config.actors.clone().ok_or_else(|| {
            NodeError::Config(
                "no actor verifier key: the command services need --actor-vkeys (or \
                 DOCKET_ACTOR_VKEYS) with the public key(s) from `docket token keygen`"
                    .to_owned(),
            )
        })?;
        let stop = supervisor.stage("world");
        let executor = executor(config, log.clone(), supervisor, stop)
            .await?
            .with_metrics(metrics.runtime.clone());
        let stop = supervisor.stage("services");
        let receipts = match (&parts.checkpointer, nats_url(config)) {
            (Some(c), _) => Some(ReceiptSource::Local(c.clone())),
            (None, Some(url)) => Some(ReceiptSource::remote(
                nats(url, "docket-services-receipts").await?,
            )),
            (None, None) => None,
        };
        match nats_url(config) {
            Some(url) => {
                for service in &services {
                    let client = nats(url, &format!("docket-{service}")).await?;
                    let run = crate::run_nats(
                        *service,
                        client,
                        executor.clone(),
                        checkpoints.clone(),
                        receipts.clone(),
                        actors.clone(),
                        clock(),
                        stop.clone(),
                    );
                    let name = service.name();
                    supervisor.critical(name, async move { run.await.map_err(to_string) });
                }
                tracing::info!(nats = %redact_url(url), "commands on docket.cmd.<service>.<command> (see `docket commands`)");
            }
            None => {
                let bus = LocalBus::new();
                let background = crate::register_local(
                    &bus,
                    &services,
                    executor.clone(),
                    checkpoints.clone(),
                    receipts,
                    actors.clone(),
                    clock(),
                    stop,
                );
                supervisor.critical("reactions", async move {
                    background.finish().await.map_err(to_string)
                });
                parts.bus = Some(bus);
            }
        }
        parts.world = Some(executor.world().clone());
    }
    parts.actors = config.actors.clone();

    let Some(address) = config.http else {
        return Ok(None);
    };
    let stop = supervisor.stage("http");
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .context(format!("listening on {address}"))?;
    let addr = listener.local_addr().context("reading the HTTP address")?;
    parts.supervisor = Some(supervisor.clone());
    parts.metrics = Some(metrics.registry.clone());
    parts.shutdown = Some(stop.clone());
    let router = http::router(parts);
    let mut stop = stop;
    supervisor.critical("http", async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
            .map_err(|e| format!("serving HTTP: {e}"))
    });
    tracing::info!(%addr, "HTTP endpoint: dashboard at /, /metrics, /healthz, /readyz");
    Ok(Some(addr))
}

/// What starting the dashboard takes, whichever way it checks checkpoints.
struct Dashboarding<'a> {
    log: &'a AnyLog,
    checkpoints: &'a docket_log::AnyCheckpoints,
    settings: docket_dashboard::DashboardConfig,
    metrics: docket_dashboard::Metrics,
    stop: watch::Receiver<bool>,
    what: String,
}

type DashboardTask = tokio::task::JoinHandle<Result<(), docket_dashboard::DashboardError>>;

impl Dashboarding<'_> {
    /// Starts it, checking checkpoints through `audit` (a transport to the audit queries) with
    /// the verifier key, if given.
    async fn start<A: docket_bus::Transport + 'static>(
        self,
        audit: Option<(A, &String)>,
    ) -> Result<(docket_dashboard::Dashboard, DashboardTask), NodeError> {
        let integrity = match audit {
            Some((transport, vkey)) => Some(
                docket_dashboard::IntegrityCheck::new(transport, vkey)
                    .map_err(NodeError::Config)?,
            ),
            None => None,
        };
        docket_dashboard::Dashboard::start(
            self.log.clone(),
            self.checkpoints.clone(),
            integrity,
            self.settings,
            self.metrics,
            self.stop,
        )
        .await
        .context(self.what)
    }
}

/// A world following `log`, caught up to its head, and an executor over it. The follower is a
/// critical component: a world that stopped following would decide on stale state.
async fn executor(
    config: &NodeConfig,
    log: AnyLog,
    supervisor: &Supervisor,
    stop: watch::Receiver<bool>,
) -> Result<Executor<AnyLog>, NodeError> {
    let policies = PolicySet::shipped().context("loading the shipped guideline policy")?;
    let world = World::new();
    let follower = world.follow(log.clone());
    let watched = world.clone();
    let mut stage_stop = stop;
    supervisor.critical("world", async move {
        let abort = follower.abort_handle();
        tokio::select! {
            _ = stage_stop.wait_for(|s| *s) => {
                abort.abort();
                Ok(())
            }
            ended = follower => {
                let fault = watched.fault().unwrap_or_else(|| "the log's subscription ended".to_owned());
                match ended {
                    Ok(()) => Err(format!("stopped following the log: {fault}")),
                    Err(e) => Err(format!("panicked: {e}")),
                }
            }
        }
    });
    let head = log.head().await.context("reading the log's head")?;
    tracing::info!(head, "catching up with the log");
    let t = &config.tunables.executor;
    world
        .wait_until(head, Duration::from_secs(t.start_catch_up_secs.max(1)))
        .await
        .context("catching up with the log")?;
    let mut settings = ExecutorConfig::new(policies);
    settings.max_attempts = t.max_attempts.max(1);
    settings.catch_up_timeout = Duration::from_millis(t.catch_up_timeout_ms.max(1));
    Ok(Executor::new(log, world, settings))
}
