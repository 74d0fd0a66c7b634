//! What a node runs and with what: [`NodeConfig`], the roles, the log, and the tunables that a
//! TOML file (`docket up --config FILE`) can set beside flags and `DOCKET_*` environment.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use docket_bus::token::TokenVerifier;
use serde::Deserialize;

/// One part of Docket a node can run. They start in the order of this enum and stop in reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The checkpointer and the audit queries (first up, last down: its final checkpoint
    /// covers every commit the services made).
    Audit,
    /// The notification service (needs a webhook).
    Notification,
    /// The operations dashboard and its projections.
    Dashboard,
    /// Cases, officers and G-28s.
    Intake,
    /// Decisions, approvals and the guidance reaction.
    Assessment,
    /// Case reviews and the deadline scheduler.
    Review,
}

impl Role {
    /// Every role, in start order.
    pub const ALL: [Role; 6] = [
        Role::Audit,
        Role::Notification,
        Role::Dashboard,
        Role::Intake,
        Role::Assessment,
        Role::Review,
    ];

    /// The role's name on the command line and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Role::Audit => "audit",
            Role::Notification => "notification",
            Role::Dashboard => "dashboard",
            Role::Intake => "intake",
            Role::Assessment => "assessment",
            Role::Review => "review",
        }
    }

    /// The role named `name`.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The command service this role runs, if it is one.
    pub fn service(self) -> Option<docket_bus::Service> {
        match self {
            Role::Intake => Some(docket_bus::Service::Intake),
            Role::Assessment => Some(docket_bus::Service::Assessment),
            Role::Review => Some(docket_bus::Service::Review),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the log is.
#[derive(Clone, Debug)]
pub enum LogConfig {
    /// Segment files in a data directory (the embedded deployment): commands reach the services
    /// on the in-process bus, over HTTP.
    File {
        /// The data directory.
        dir: PathBuf,
    },
    /// A JetStream stream: the command services register as NATS micro services.
    JetStream {
        /// Comma-separated server URLs.
        url: String,
        /// Replicas of the stream when it is created.
        replicas: usize,
    },
}

/// A secret that never prints: `Debug` shows `[redacted]`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where notifications go.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// The webhook every notification is POSTed to.
    pub url: String,
    /// The HMAC-SHA256 key of the `Docket-Signature` header.
    pub secret: Secret,
}

/// The checkpointer's key, cadence and witnesses.
#[derive(Clone, Debug)]
pub struct CheckpointConfig {
    /// The signer key; default `checkpoint.key` in the audit directory, made on first start.
    pub key: Option<PathBuf>,
    /// The origin of a key made on first start.
    pub origin: String,
    /// The checkpointer's directory; default `audit` in the data directory, or
    /// `./docket-audit` on JetStream.
    pub dir: Option<PathBuf>,
    /// Sign this often when the log grew.
    pub every: Duration,
    /// Sign as soon as this many commits were added.
    pub every_commits: u64,
    /// Witness flags, `<url>=<vkey>` or `<url>=@<vkey file>`.
    pub witnesses: Vec<String>,
    /// Cosignatures wanted per checkpoint (default: every witness).
    pub witness_quorum: Option<usize>,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            key: None,
            origin: "docket.local/log".to_owned(),
            dir: None,
            every: Duration::from_millis(100),
            every_commits: 1000,
            witnesses: Vec::new(),
            witness_quorum: None,
        }
    }
}

/// The dashboard's place and whether to rebuild it.
#[derive(Clone, Debug, Default)]
pub struct DashboardSettings {
    /// The snapshot directory; default `dashboard` in the data directory, or
    /// `./docket-dashboard` on JetStream.
    pub dir: Option<PathBuf>,
    /// Ignore the snapshot and rebuild from position 0.
    pub rebuild: bool,
    /// The checkpoint verifier key the dashboard checks checkpoints with when the audit role
    /// runs elsewhere (over NATS).
    pub verifier_key: Option<String>,
}

/// The tunables hard-wired before: each has its default, and a TOML file can set them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Tunables {
    /// The executor.
    pub executor: ExecutorTunables,
    /// The notification service.
    pub notify: NotifyTunables,
    /// The dashboard.
    pub dashboard: DashboardTunables,
    /// Supervision of restartable components.
    pub supervision: SupervisionTunables,
}

/// `[executor]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorTunables {
    /// How many times a command is decided again after losing a race.
    pub max_attempts: u32,
    /// How long a command waits for the world to catch up with the log, in milliseconds.
    pub catch_up_timeout_ms: u64,
    /// How long a start waits for the world to catch up with the whole log, in seconds.
    pub start_catch_up_secs: u64,
}

impl Default for ExecutorTunables {
    fn default() -> Self {
        ExecutorTunables {
            max_attempts: 10,
            catch_up_timeout_ms: 10_000,
            start_catch_up_secs: 600,
        }
    }
}

/// `[notify]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyTunables {
    /// Attempts per notification before it is abandoned.
    pub max_attempts: u32,
    /// Wait after the first failed attempt (doubled after each further one), in milliseconds.
    pub initial_backoff_ms: u64,
    /// The longest wait between two attempts, in milliseconds.
    pub max_backoff_ms: u64,
    /// How long one attempt may take, in milliseconds.
    pub request_timeout_ms: u64,
    /// Attempts in flight at once.
    pub concurrency: usize,
}

impl Default for NotifyTunables {
    fn default() -> Self {
        NotifyTunables {
            max_attempts: 8,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 300_000,
            request_timeout_ms: 10_000,
            concurrency: 16,
        }
    }
}

/// `[dashboard]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardTunables {
    /// How often the snapshot is written while the projection moves, in milliseconds.
    pub snapshot_every_ms: u64,
    /// How often consumers' lag and the log head are read, in milliseconds.
    pub lag_every_ms: u64,
    /// How often the latest checkpoint is checked, in milliseconds.
    pub integrity_every_ms: u64,
}

impl Default for DashboardTunables {
    fn default() -> Self {
        DashboardTunables {
            snapshot_every_ms: 10_000,
            lag_every_ms: 2_000,
            integrity_every_ms: 5_000,
        }
    }
}

/// `[supervision]`: how restartable components come back.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisionTunables {
    /// The wait before the first restart, in milliseconds; doubled after each further one.
    pub initial_backoff_ms: u64,
    /// The longest wait before a restart, in milliseconds.
    pub max_backoff_ms: u64,
}

impl Default for SupervisionTunables {
    fn default() -> Self {
        SupervisionTunables {
            initial_backoff_ms: 500,
            max_backoff_ms: 30_000,
        }
    }
}

impl Tunables {
    /// Reads the tunables from a TOML document; unknown keys are refused, naming them.
    pub fn from_toml(text: &str) -> Result<Tunables, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// Everything a node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// What runs here.
    pub roles: BTreeSet<Role>,
    /// Where the log is.
    pub log: LogConfig,
    /// The HTTP endpoint (dashboard, `/metrics`, `/healthz`, `/readyz`, the audit and, embedded,
    /// the command routes); none serves no HTTP.
    pub http: Option<SocketAddr>,
    /// The actor-token keys requests are checked against (the command roles need them).
    pub actors: Option<TokenVerifier>,
    /// Notifications' webhook (the notification role needs it).
    pub webhook: Option<WebhookConfig>,
    /// The checkpointer.
    pub checkpoints: CheckpointConfig,
    /// The dashboard.
    pub dashboard: DashboardSettings,
    /// The tunables.
    pub tunables: Tunables,
}

impl NodeConfig {
    /// Every role on `log`, with defaults otherwise.
    pub fn all_roles(log: LogConfig) -> NodeConfig {
        NodeConfig {
            roles: Role::ALL.into_iter().collect(),
            log,
            http: None,
            actors: None,
            webhook: None,
            checkpoints: CheckpointConfig::default(),
            dashboard: DashboardSettings::default(),
            tunables: Tunables::default(),
        }
    }

    /// Whether `role` runs here.
    pub fn runs(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_toml_file_sets_the_tunables_and_refuses_unknown_keys() {
        let t = Tunables::from_toml(
            "[executor]\nmax_attempts = 3\n[notify]\nconcurrency = 4\n[dashboard]\nlag_every_ms = 250\n",
        )
        .unwrap_or_default();
        assert_eq!(t.executor.max_attempts, 3);
        assert_eq!(t.executor.catch_up_timeout_ms, 10_000);
        assert_eq!(t.notify.concurrency, 4);
        assert_eq!(t.dashboard.lag_every_ms, 250);
        let err = Tunables::from_toml("[executor]\nmax_atempts = 3\n").err();
        assert!(err.is_some_and(|e| e.contains("max_atempts")));
    }

    #[test]
    fn a_secret_never_prints() {
        let c = WebhookConfig {
            url: "http://x".into(),
            secret: Secret::new("hunter2"),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.secret.expose(), "hunter2");
    }

    #[test]
    fn roles_start_in_one_order_and_parse_by_name() {
        let names: Vec<_> = Role::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(
            names,
            [
                "audit",
                "notification",
                "dashboard",
                "intake",
                "assessment",
                "review"
            ]
        );
        for r in Role::ALL {
            assert_eq!(Role::parse(r.name()), Some(r));
        }
        assert_eq!(Role::parse("billing"), None);
    }
}
