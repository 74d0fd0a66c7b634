//! `docket up` and `docket serve`: wiring the log, the world, the executor and the services.

mod checkpoints;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use docket_bus::{LocalBus, Service};
use docket_domain::policy::PolicySet;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::{AnyCheckpoints, EventLog};
use docket_runtime::clock::{SharedClock, SystemClock};
use docket_runtime::{Executor, ExecutorConfig, World};
use tokio::sync::watch;

use crate::metrics::NodeMetrics;
use crate::signal::shutdown_signal;
use checkpoints::{finish_checkpointer, CheckpointArgs, CheckpointerTask};

/// Where notifications go; without a webhook the notification service does not run.
#[derive(Debug, clap::Args)]
pub(crate) struct WebhookArgs {
    /// The webhook every notification is POSTed to (http:// or https://).
    #[arg(long, env = "DOCKET_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// The HMAC-SHA256 key of the Docket-Signature header (prefer the environment variable).
    #[arg(long, env = "DOCKET_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
}

impl WebhookArgs {
    fn config(&self) -> Result<Option<docket_notify::NotifyConfig>> {
        match (&self.webhook_url, &self.webhook_secret) {
            (None, _) => Ok(None),
            (Some(_), None) => bail!(
                "--webhook-url needs a secret: set DOCKET_WEBHOOK_SECRET (or --webhook-secret)"
            ),
            (Some(url), Some(secret)) => Ok(Some(docket_notify::NotifyConfig::new(
                url.clone(),
                secret.clone(),
            ))),
        }
    }
}

/// Runs the notification service in a task, if a webhook is configured.
fn notifications<L: EventLog + Clone + Send + Sync + 'static>(
    webhook: &WebhookArgs,
    log: L,
    checkpoints: AnyCheckpoints,
    metrics: &NodeMetrics,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<Result<(), docket_notify::NotifyError>>>> {
    let Some(config) = webhook.config()? else {
        eprintln!("docket: notifications are off (no --webhook-url)");
        return Ok(None);
    };
    eprintln!("docket: notifications to {config:?}");
    Ok(Some(tokio::spawn(docket_notify::run(
        config,
        log,
        checkpoints,
        clock(),
        metrics.notify.clone(),
        shutdown,
    ))))
}

async fn finish_notifications(
    task: Option<tokio::task::JoinHandle<Result<(), docket_notify::NotifyError>>>,
) -> Result<()> {
    if let Some(task) = task {
        task.await.context("the notification service panicked")??;
    }
    Ok(())
}

/// Where the dashboard keeps its snapshot.
#[derive(Debug, clap::Args)]
pub(crate) struct DashboardArgs {
    /// The dashboard's directory (its projection snapshot). Default: `dashboard` in the data
    /// directory (embedded), `./docket-dashboard` (with --nats).
    #[arg(long, env = "DOCKET_DASHBOARD_DIR")]
    dashboard_dir: Option<PathBuf>,
    /// Ignore the dashboard's snapshot and rebuild its projections from position 0.
    #[arg(long)]
    rebuild_dashboard: bool,
}

type DashboardTask = tokio::task::JoinHandle<Result<(), docket_dashboard::DashboardError>>;

impl DashboardArgs {
    /// Starts the dashboard following `log`, checking checkpoints with `integrity`.
    async fn start<L, A>(
        &self,
        default_dir: PathBuf,
        log: L,
        checkpoints: AnyCheckpoints,
        integrity: Option<docket_dashboard::IntegrityCheck<A>>,
        metrics: &NodeMetrics,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(docket_dashboard::Dashboard, DashboardTask)>
    where
        L: EventLog + Clone + Send + Sync + 'static,
        A: docket_bus::AuditHandler,
    {
        let dir = self.dashboard_dir.clone().unwrap_or(default_dir);
        let mut config = docket_dashboard::DashboardConfig::new(Some(dir.clone()));
        config.rebuild = self.rebuild_dashboard;
        let metrics = metrics.dashboard.clone();
        docket_dashboard::Dashboard::start(log, checkpoints, integrity, config, metrics, shutdown)
            .await
            .with_context(|| format!("starting the dashboard (snapshot in {})", dir.display()))
    }
}

async fn finish_dashboard(task: DashboardTask) -> Result<()> {
    task.await
        .context("the dashboard panicked")?
        .context("the dashboard stopped")
}

/// Serves `router` on `address` until shutdown, printing where.
async fn serve_http(
    address: SocketAddr,
    router: axum::Router,
    shutdown: watch::Receiver<bool>,
    what: &str,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening on {address}"))?;
    let address = listener.local_addr()?;
    eprintln!(
        "docket: dashboard at http://{address}/ (metrics at /metrics, readiness at /readyz){what}"
    );
    println!("listening http://{address}");
    let mut stop = shutdown;
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
        .context("serving HTTP")
}

/// Options of `docket up`.
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Where the embedded log keeps its segment files.
    #[arg(long, env = "DOCKET_DATA_DIR", default_value_os_t = crate::default_data_dir())]
    data_dir: PathBuf,
    /// Address of the HTTP endpoint: the dashboard at /, metrics at /metrics, /healthz,
    /// /readyz, the audit API, and (embedded) the commands as JSON under
    /// /api/v1/commands/<name>.
    #[arg(long, env = "DOCKET_HTTP", default_value = "127.0.0.1:7400")]
    http: SocketAddr,
    /// Run over NATS and JetStream instead (comma-separated server URLs).
    #[arg(long, env = "DOCKET_NATS")]
    nats: Option<String>,
    /// Replicas of the log stream when it is created (1, or 3 on a cluster).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    #[command(flatten)]
    webhook: WebhookArgs,
    #[command(flatten)]
    checkpoints: CheckpointArgs,
    #[command(flatten)]
    dashboard: DashboardArgs,
    #[command(flatten)]
    actor_key: crate::tokens::IssuerArgs,
    #[command(flatten)]
    actors: crate::tokens::VerifierArgs,
}

/// Options of `docket serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The service: intake, assessment, review, notification, audit (the checkpointer, and
    /// checkpoints, proofs and receipts on docket.cmd.audit.*; review and assessment ask it for
    /// their replies' receipts), or dashboard (the operations dashboard over HTTP, --http).
    #[arg(value_parser = ["intake", "assessment", "review", "notification", "audit", "dashboard"])]
    service: String,
    /// NATS server URLs, comma-separated.
    #[arg(long, env = "DOCKET_NATS")]
    nats: String,
    /// Replicas of the log stream when it is created (1, or 3 on a cluster).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    #[command(flatten)]
    webhook: WebhookArgs,
    #[command(flatten)]
    checkpoints: CheckpointArgs,
    #[command(flatten)]
    dashboard: DashboardArgs,
    #[command(flatten)]
    actors: crate::tokens::VerifierArgs,
    /// dashboard: the HTTP address of the page, its API and /metrics.
    #[arg(long, env = "DOCKET_HTTP", default_value = "127.0.0.1:7400")]
    http: SocketAddr,
    /// dashboard: the checkpoint verifier key, to verify the latest checkpoint: the key as
    /// `docket audit keygen` prints it, or `@file` (the `.vkey` file beside the audit key).
    #[arg(long, env = "DOCKET_CHECKPOINT_VKEY")]
    verifier_key: Option<String>,
    /// Other services: serve /metrics and /healthz on this address.
    #[arg(long, env = "DOCKET_METRICS")]
    metrics: Option<SocketAddr>,
}

/// A world following `log`, caught up to its head, and an executor over it.
async fn executor<L: EventLog + Clone + Send + Sync + 'static>(
    log: L,
    metrics: &NodeMetrics,
) -> Result<Executor<L>> {
    let policies = PolicySet::shipped().context("loading the shipped guideline policy")?;
    let world = World::new();
    world.follow(log.clone());
    let head = log.head().await?;
    eprintln!("docket: catching up with the log ({head} commits)");
    world
        .wait_applied(head, Duration::from_secs(600))
        .await
        .context("catching up with the log")?;
    Ok(Executor::new(log, world, ExecutorConfig::new(policies))
        .with_metrics(metrics.runtime.clone()))
}

fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

fn service_named(name: &str) -> Result<Service> {
    Ok(match name {
        "intake" => Service::Intake,
        "assessment" => Service::Assessment,
        "review" => Service::Review,
        "notification" => Service::Notification,
        other => {
            bail!("unknown service {other:?}: expected intake, assessment, review or notification")
        }
    })
}

/// The log on JetStream, and the checkpoint bucket beside it.
async fn jetstream(url: &str, replicas: usize) -> Result<(JetStreamLog, AnyCheckpoints)> {
    let config = JetStreamConfig {
        replicas,
        ..JetStreamConfig::default()
    };
    let log = JetStreamLog::connect_url(url, config)
        .await
        .with_context(|| {
            format!(
                "opening the log on JetStream at {}",
                docket_log::jetstream::redact_url(url)
            )
        })?;
    let checkpoints = log
        .checkpoints()
        .await
        .context("opening the checkpoint bucket")?;
    Ok((log, AnyCheckpoints::Kv(Box::new(checkpoints))))
}

/// `docket up`.
pub(crate) async fn up(args: UpArgs) -> Result<()> {
    let actors = args.actors.with_own_key(&args.actor_key, &args.data_dir)?;
    let shutdown = shutdown_signal();
    let metrics = NodeMetrics::new();
    if let Some(url) = &args.nats {
        let (log, checkpoints) = jetstream(url, args.replicas).await?;
        let notify = notifications(
            &args.webhook,
            log.clone(),
            checkpoints.clone(),
            &metrics,
            shutdown.clone(),
        )?;
        // The checkpointer stops last, once the services finished, so that its final
        // checkpoint covers every commit they made.
        let (stop_checkpointer, checkpointer_shutdown) = watch::channel(false);
        let (checkpointer, checkpointer_task, audit, api, vkey) = nats_audit(
            url,
            log.clone(),
            &args.checkpoints,
            &metrics,
            checkpointer_shutdown,
        )
        .await?;
        let integrity = docket_dashboard::IntegrityCheck::new(api.clone(), &vkey)
            .map_err(anyhow::Error::msg)?;
        let (dashboard, dashboard_task) = args
            .dashboard
            .start(
                PathBuf::from("docket-dashboard"),
                log.clone(),
                checkpoints.clone(),
                Some(integrity),
                &metrics,
                shutdown.clone(),
            )
            .await?;
        let ex = executor(log, &metrics).await?;
        let mut tasks = Vec::new();
        for service in docket_node::COMMAND_SERVICES {
            let client = docket_bus::connect(url, &format!("docket-{service}")).await?;
            tasks.push(tokio::spawn(docket_node::run_nats(
                service,
                client,
                ex.clone(),
                checkpoints.clone(),
                Some(docket_node::ReceiptSource::Local(checkpointer.clone())),
                actors.clone(),
                clock(),
                shutdown.clone(),
            )));
        }
        eprintln!("docket: up over NATS at {}; commands on docket.cmd.<service>.<command> (see `docket commands`); Ctrl-C stops", docket_log::jetstream::redact_url(url));
        let ops = crate::http::Ops {
            dashboard,
            checkpointer: Some(checkpointer),
            actors: Some(actors.clone()),
            world: Some(ex.world().clone()),
            shutdown: shutdown.clone(),
            metrics: metrics.registry.clone(),
        };
        serve_http(
            args.http,
            crate::http::router(None, Some(api), ops),
            shutdown.clone(),
            "",
        )
        .await?;
        for task in tasks {
            task.await.context("a service task panicked")??;
        }
        audit.stop().await?;
        finish_dashboard(dashboard_task).await?;
        stop_checkpointer.send_replace(true);
        finish_checkpointer(checkpointer_task).await?;
        return finish_notifications(notify).await;
    }

    let log = FileLog::open(FileLogConfig::new(&args.data_dir))
        .await
        .with_context(|| format!("opening the log in {}", args.data_dir.display()))?;
    let checkpoints = AnyCheckpoints::File(
        log.checkpoints()
            .context("opening the checkpoints directory")?,
    );
    let notify = notifications(
        &args.webhook,
        log.clone(),
        checkpoints.clone(),
        &metrics,
        shutdown.clone(),
    )?;
    let audit_dir = args
        .checkpoints
        .audit_dir
        .clone()
        .unwrap_or_else(|| args.data_dir.join("audit"));
    let records = docket_log::AnyRecords::File(
        log.audit_records()
            .context("opening the checkpoint records")?,
    );
    // The checkpointer stops last, once the services finished, so that its final checkpoint
    // covers every commit they made: an export taken after `docket up` stops is signed to its
    // end.
    let (stop_checkpointer, checkpointer_shutdown) = watch::channel(false);
    let (checkpointer, checkpointer_task, vkey) = args.checkpoints.start(
        log.clone(),
        records,
        audit_dir,
        metrics.audit.clone(),
        checkpointer_shutdown,
    )?;
    let audit = docket_node::AuditApi {
        checkpointer: checkpointer.clone(),
        log: docket_log::AnyLog::File(log.clone()),
    };
    let integrity =
        docket_dashboard::IntegrityCheck::new(audit.clone(), &vkey).map_err(anyhow::Error::msg)?;
    let (dashboard, dashboard_task) = args
        .dashboard
        .start(
            args.data_dir.join("dashboard"),
            log.clone(),
            checkpoints.clone(),
            Some(integrity),
            &metrics,
            shutdown.clone(),
        )
        .await?;
    let ex = executor(log.clone(), &metrics).await?;
    let bus = LocalBus::new();
    let world = ex.world().clone();
    let background = docket_node::register_local(
        &bus,
        ex,
        checkpoints,
        Some(docket_node::ReceiptSource::Local(checkpointer.clone())),
        actors.clone(),
        clock(),
        shutdown.clone(),
    );
    let ops = crate::http::Ops {
        dashboard,
        checkpointer: Some(checkpointer),
        actors: Some(actors),
        world: Some(world),
        shutdown: shutdown.clone(),
        metrics: metrics.registry.clone(),
    };
    let commands = format!(
        "; log in {}, commands at /api/v1/commands/<name> (see `docket commands`); Ctrl-C stops",
        args.data_dir.display()
    );
    serve_http(
        args.http,
        crate::http::router(Some(bus), Some(audit), ops),
        shutdown.clone(),
        &commands,
    )
    .await?;
    background.finish().await?;
    finish_notifications(notify).await?;
    finish_dashboard(dashboard_task).await?;
    stop_checkpointer.send_replace(true);
    finish_checkpointer(checkpointer_task).await?;
    log.close().await?;
    Ok(())
}

/// `docket serve <service>`.
/// Starts the checkpointer on JetStream (checkpoints in the `DOCKET_AUDIT` stream, the tree cache
/// in the audit directory, `./docket-audit` by default) and serves the audit queries over NATS.
async fn nats_audit(
    url: &str,
    log: JetStreamLog,
    args: &CheckpointArgs,
    metrics: &NodeMetrics,
    shutdown: watch::Receiver<bool>,
) -> Result<(
    docket_audit::CheckpointerHandle,
    CheckpointerTask,
    docket_bus::AuditServiceHandle,
    docket_node::AuditApi,
    String,
)> {
    let audit_dir = args
        .audit_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("docket-audit"));
    let records = docket_log::AnyRecords::JetStream(Box::new(
        log.audit_records()
            .await
            .context("opening the checkpoint stream")?,
    ));
    let (checkpointer, task, vkey) = args.start(
        log.clone(),
        records,
        audit_dir,
        metrics.audit.clone(),
        shutdown,
    )?;
    let api = docket_node::AuditApi {
        checkpointer: checkpointer.clone(),
        log: docket_log::AnyLog::JetStream(log),
    };
    let client = docket_bus::connect(url, "docket-audit").await?;
    let handle = docket_bus::serve_audit_nats(client, docket_node::VERSION, api.clone()).await?;
    Ok((checkpointer, task, handle, api, vkey))
}

/// Runs the checkpointer and serves the audit queries over NATS until shutdown.
async fn serve_audit(
    url: &str,
    log: JetStreamLog,
    args: &CheckpointArgs,
    metrics: &NodeMetrics,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let (_, task, handle, _, _) = nats_audit(url, log, args, metrics, shutdown.clone()).await?;
    let mut stop = shutdown;
    let _ = stop.wait_for(|s| *s).await;
    handle.stop().await?;
    finish_checkpointer(task).await
}

/// `docket serve dashboard`: the dashboard over the log on JetStream, checking checkpoints
/// through the audit service.
async fn serve_dashboard(
    args: &ServeArgs,
    log: JetStreamLog,
    checkpoints: AnyCheckpoints,
    metrics: &NodeMetrics,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let integrity = match &args.verifier_key {
        Some(vkey) => {
            // `@path` (as `docket audit verify --vkey` takes it), a path, or the key itself.
            let path = vkey.strip_prefix('@').unwrap_or(vkey);
            let vkey = match std::fs::read_to_string(path) {
                Ok(text) => text.trim().to_owned(),
                Err(e) if vkey.starts_with('@') => {
                    bail!("reading the verifier key {path}: {e}")
                }
                Err(_) => vkey.trim().to_owned(),
            };
            let client = docket_bus::connect(&args.nats, "docket-dashboard").await?;
            Some(
                docket_dashboard::IntegrityCheck::new(
                    docket_bus::NatsAudit::new(client, Duration::from_secs(10)),
                    &vkey,
                )
                .map_err(anyhow::Error::msg)?,
            )
        }
        None => {
            eprintln!("docket: no --verifier-key: the dashboard will not verify checkpoints");
            None
        }
    };
    let (dashboard, task) = args
        .dashboard
        .start(
            PathBuf::from("docket-dashboard"),
            log,
            checkpoints,
            integrity,
            metrics,
            shutdown.clone(),
        )
        .await?;
    let ops = crate::http::Ops {
        dashboard,
        checkpointer: None,
        actors: args.actors.optional()?,
        world: None,
        shutdown: shutdown.clone(),
        metrics: metrics.registry.clone(),
    };
    serve_http(
        args.http,
        crate::http::router(None, None, ops),
        shutdown,
        &format!(
            " over NATS at {}; Ctrl-C stops",
            docket_log::jetstream::redact_url(&args.nats)
        ),
    )
    .await?;
    finish_dashboard(task).await
}

/// Serves /metrics and /healthz for a `docket serve` process, until shutdown.
fn serve_metrics(
    address: Option<SocketAddr>,
    metrics: &NodeMetrics,
    shutdown: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<Result<()>>> {
    let address = address?;
    let router = axum::Router::new()
        .route("/metrics", axum::routing::get(crate::metrics::serve))
        .with_state(metrics.registry.clone())
        .route("/healthz", axum::routing::get(|| async { "ok" }));
    Some(tokio::spawn(async move {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        eprintln!(
            "docket: metrics at http://{}/metrics",
            listener.local_addr()?
        );
        let mut stop = shutdown;
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
            .context("serving metrics")
    }))
}

pub(crate) async fn serve(args: ServeArgs) -> Result<()> {
    let shutdown = shutdown_signal();
    let metrics = NodeMetrics::new();
    let (log, checkpoints) = jetstream(&args.nats, args.replicas).await?;
    if args.service == "dashboard" {
        return serve_dashboard(&args, log, checkpoints, &metrics, shutdown).await;
    }
    let endpoint = serve_metrics(args.metrics, &metrics, shutdown.clone());
    let served = serve_service(&args, log, checkpoints, &metrics, shutdown).await;
    if let Some(task) = endpoint {
        task.await.context("the metrics endpoint panicked")??;
    }
    served
}

async fn serve_service(
    args: &ServeArgs,
    log: JetStreamLog,
    checkpoints: AnyCheckpoints,
    metrics: &NodeMetrics,
    shutdown: watch::Receiver<bool>,
) -> Result<()> {
    if args.service == "audit" {
        eprintln!(
            "docket: serving audit over NATS at {} (docket.cmd.audit.*); Ctrl-C stops",
            docket_log::jetstream::redact_url(&args.nats)
        );
        return serve_audit(&args.nats, log, &args.checkpoints, metrics, shutdown).await;
    }
    let service = service_named(&args.service)?;
    if service == Service::Notification {
        if args.webhook.webhook_url.is_none() {
            bail!("docket serve notification needs --webhook-url and DOCKET_WEBHOOK_SECRET");
        }
        let client = docket_bus::connect(&args.nats, "docket-notification").await?;
        // Registered as a micro service (no endpoints) so $SRV.PING/INFO/STATS see it.
        let handle = docket_bus::serve_nats(
            client,
            service,
            docket_node::VERSION,
            docket_node::NoCommands::default(),
        )
        .await?;
        eprintln!(
            "docket: serving notification over NATS at {}; Ctrl-C stops",
            docket_log::jetstream::redact_url(&args.nats)
        );
        let task = notifications(&args.webhook, log, checkpoints, metrics, shutdown)?;
        finish_notifications(task).await?;
        handle.stop().await?;
        return Ok(());
    }
    let actors = args.actors.required()?;
    let ex = executor(log, metrics).await?;
    let client = docket_bus::connect(&args.nats, &format!("docket-{service}")).await?;
    eprintln!(
        "docket: serving {service} over NATS at {}; Ctrl-C stops",
        docket_log::jetstream::redact_url(&args.nats)
    );
    let receipts = docket_node::ReceiptSource::Remote(
        docket_bus::connect(&args.nats, &format!("docket-{service}-receipts")).await?,
    );
    docket_node::run_nats(
        service,
        client,
        ex,
        checkpoints,
        Some(receipts),
        actors,
        clock(),
        shutdown,
    )
    .await?;
    Ok(())
}
