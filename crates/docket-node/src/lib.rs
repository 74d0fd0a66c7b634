//! `docket-node`: composition. [`Node::start`] runs any set of Docket's roles (intake,
//! assessment, review, notification, audit, dashboard) on either log (segment files or
//! JetStream), with one HTTP router, under one supervisor; `docket up` and `docket serve` are
//! flags turned into a [`NodeConfig`] and this call. It also holds the command services' bus
//! handler ([`CommandHandler`]) and the audit queries' handler ([`AuditApi`]).
//!
//! Map: `config` (what runs, the tunables and their TOML layer), `node` (the start-up path),
//! `supervise` (restart or stop), `http` (the router), `services` and `handler` (the command
//! services), `audit` (the audit queries), `checkpoints` (the checkpointer's key and cadence).

mod audit;
mod checkpoints;
mod config;
mod error;
mod handler;
mod http;
mod metrics;
mod node;
mod services;
mod supervise;

pub use audit::AuditApi;
pub use checkpoints::{write_key_pair, write_secret};
pub use config::{
    CheckpointConfig, DashboardSettings, DashboardTunables, ExecutorTunables, LogConfig,
    NodeConfig, NotifyTunables, Role, Secret, SupervisionTunables, Tunables, WebhookConfig,
};
pub use error::NodeError;
pub use handler::{CommandHandler, NoCommands, ReceiptSource};
pub use metrics::NodeMetrics;
pub use node::{Node, NodeHandle};
pub use services::{register_local, run_nats, LocalServices, ServiceError, COMMAND_SERVICES};
pub use supervise::{ComponentFailure, ComponentState, Supervisor};

/// The version the services report to NATS's service API.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
