//! `docket up` and `docket serve`: flags (and `--config FILE`, and `DOCKET_*` environment)
//! turned into a [`NodeConfig`], then [`Node::start`]; the node does the rest.

mod checkpoints;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use docket_node::{LogConfig, Node, NodeConfig, Role, Secret, Tunables, WebhookConfig};

use checkpoints::CheckpointArgs;

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
    fn config(&self) -> Result<Option<WebhookConfig>> {
        match (&self.webhook_url, &self.webhook_secret) {
            (None, _) => Ok(None),
            (Some(_), None) => bail!(
                "--webhook-url needs a secret: set DOCKET_WEBHOOK_SECRET (or --webhook-secret)"
            ),
            (Some(url), Some(secret)) => Ok(Some(WebhookConfig {
                url: url.clone(),
                secret: Secret::new(secret.clone()),
            })),
        }
    }
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

/// The tunables' file.
#[derive(Debug, clap::Args)]
pub(crate) struct ConfigFileArgs {
    /// A TOML file of tunables (`[executor]`, `[notify]`, `[dashboard]`, `[supervision]`; see
    /// docs/operations.md); flags and environment set everything else.
    #[arg(long = "config", env = "DOCKET_CONFIG")]
    file: Option<PathBuf>,
}

impl ConfigFileArgs {
    fn tunables(&self) -> Result<Tunables> {
        let Some(path) = &self.file else {
            return Ok(Tunables::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        Tunables::from_toml(&text)
            .map_err(|e| anyhow::anyhow!("the config file {}: {e}", path.display()))
    }
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
    config: ConfigFileArgs,
    #[command(flatten)]
    actor_key: crate::tokens::IssuerArgs,
    #[command(flatten)]
    actors: crate::tokens::VerifierArgs,
}

/// The roles `docket serve` runs.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum ServeRole {
    /// Cases, officers and G-28s.
    Intake,
    /// Decisions and approvals, and the guidance reaction.
    Assessment,
    /// Case reviews, and the deadline scheduler.
    Review,
    /// Notifications to the webhook (needs --webhook-url).
    Notification,
    /// The checkpointer, and checkpoints, proofs and receipts on docket.cmd.audit.* (review and
    /// assessment ask it for their replies' receipts).
    Audit,
    /// The operations dashboard over HTTP (--http).
    Dashboard,
}

impl ServeRole {
    fn role(self) -> Role {
        match self {
            ServeRole::Intake => Role::Intake,
            ServeRole::Assessment => Role::Assessment,
            ServeRole::Review => Role::Review,
            ServeRole::Notification => Role::Notification,
            ServeRole::Audit => Role::Audit,
            ServeRole::Dashboard => Role::Dashboard,
        }
    }
}

/// Options of `docket serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The service to run.
    #[arg(value_enum)]
    service: ServeRole,
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
    config: ConfigFileArgs,
    #[command(flatten)]
    actors: crate::tokens::VerifierArgs,
    /// dashboard: the HTTP address of the page, its API and /metrics.
    #[arg(long, env = "DOCKET_HTTP", default_value = "127.0.0.1:7400")]
    http: SocketAddr,
    /// dashboard: the checkpoint verifier key, to verify the latest checkpoint: the key as
    /// `docket audit keygen` prints it, or `@file` (the `.vkey` file beside the audit key).
    #[arg(long, env = "DOCKET_CHECKPOINT_VKEY")]
    verifier_key: Option<String>,
    /// Other services: serve /metrics, /healthz and /readyz on this address.
    #[arg(long, env = "DOCKET_METRICS")]
    metrics: Option<SocketAddr>,
}

/// `@path` (as `docket audit verify --vkey` takes it), a path, or the key itself.
fn verifier_key(text: &str) -> Result<String> {
    let path = text.strip_prefix('@').unwrap_or(text);
    match std::fs::read_to_string(path) {
        Ok(key) => Ok(key.trim().to_owned()),
        Err(e) if text.starts_with('@') => bail!("reading the verifier key {path}: {e}"),
        Err(_) => Ok(text.trim().to_owned()),
    }
}

/// Runs the node until Ctrl-C or SIGTERM, or until a component stops it (then exits non-zero,
/// naming the component).
async fn run(config: NodeConfig, banner: String) -> Result<()> {
    let shutdown = crate::signal::shutdown_token();
    let node = Node::start(config, shutdown).await?;
    if let Some(addr) = node.addr() {
        eprintln!("docket: dashboard at http://{addr}/ (metrics at /metrics, readiness at /readyz){banner}");
        println!("listening http://{addr}");
    } else {
        eprintln!("docket: {}", banner.trim_start_matches("; "));
    }
    node.wait().await?;
    Ok(())
}

/// `docket up`.
pub(crate) async fn up(args: UpArgs) -> Result<()> {
    let actors = args.actors.with_own_key(&args.actor_key, &args.data_dir)?;
    let log = match &args.nats {
        Some(url) => LogConfig::JetStream {
            url: url.clone(),
            replicas: args.replicas,
        },
        None => LogConfig::File {
            dir: args.data_dir.clone(),
        },
    };
    let mut config = NodeConfig::all_roles(log);
    config.http = Some(args.http);
    config.actors = Some(actors);
    config.webhook = args.webhook.config()?;
    config.checkpoints = args.checkpoints.config();
    config.dashboard.dir = args.dashboard.dashboard_dir.clone();
    config.dashboard.rebuild = args.dashboard.rebuild_dashboard;
    config.tunables = args.config.tunables()?;
    let banner = match &args.nats {
        Some(url) => format!(
            "; up over NATS at {}; commands on docket.cmd.<service>.<command> (see `docket commands`); Ctrl-C stops",
            docket_log::jetstream::redact_url(url)
        ),
        None => format!(
            "; log in {}, commands at /api/v1/commands/<name> (see `docket commands`); Ctrl-C stops",
            args.data_dir.display()
        ),
    };
    run(config, banner).await
}

/// `docket serve <service>`.
pub(crate) async fn serve(args: ServeArgs) -> Result<()> {
    let role = args.service.role();
    let mut config = NodeConfig::all_roles(LogConfig::JetStream {
        url: args.nats.clone(),
        replicas: args.replicas,
    });
    config.roles = BTreeSet::from([role]);
    config.webhook = args.webhook.config()?;
    if role == Role::Notification && config.webhook.is_none() {
        bail!("docket serve notification needs --webhook-url and DOCKET_WEBHOOK_SECRET");
    }
    config.actors = match role.service() {
        Some(_) => Some(args.actors.required()?),
        None => args.actors.optional()?,
    };
    config.checkpoints = args.checkpoints.config();
    config.dashboard.dir = args.dashboard.dashboard_dir.clone();
    config.dashboard.rebuild = args.dashboard.rebuild_dashboard;
    config.dashboard.verifier_key = args.verifier_key.as_deref().map(verifier_key).transpose()?;
    config.tunables = args.config.tunables()?;
    config.http = match role {
        Role::Dashboard => Some(args.http),
        _ => args.metrics,
    };
    let banner = format!(
        "; serving {role} over NATS at {}; Ctrl-C stops",
        docket_log::jetstream::redact_url(&args.nats)
    );
    run(config, banner).await
}
