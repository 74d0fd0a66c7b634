//! Docket's operations dashboard.
//!
//! - [`Projection`]: the log folded into what operations staff watch (review queue, decisions,
//!   departures, turnaround, missed deadlines, notification delivery).
//! - [`Dashboard`]: the projection kept current by following the log, snapshotted so a restart
//!   resumes, plus reaction consumers' lag and the latest checkpoint's verification
//!   ([`IntegrityCheck`]).
//! - [`http::router`]: the page, its JSON API (`/api/v1/dashboard/…`, described at
//!   `/api/v1/openapi.json`) and live updates as server-sent events; [`Metrics`], the head and
//!   consumers' lag, which the node's `/metrics` renders.
//!
//! See `docs/dashboard.md`.

pub mod http;
pub mod integrity;
mod metrics;
pub mod projection;
pub mod runner;
pub mod view;

pub use integrity::IntegrityCheck;
pub use metrics::Metrics;
pub use projection::{Projection, ProjectionError};
pub use runner::{
    Dashboard, DashboardConfig, DashboardError, Progress, Readiness, DASHBOARD_CONSUMER,
};
pub use view::{Filter, Overdue, Overview, Window};
