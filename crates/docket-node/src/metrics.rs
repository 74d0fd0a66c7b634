//! A node's metrics: one `prometheus-client` registry per node (nothing global), created at start
//! with every crate's families registered into it (so each reads 0 rather than being absent),
//! handed down to the components that record, and rendered at `/metrics` in the Prometheus text
//! format 0.0.4.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// The components that restart after a failure (their names label the restarts).
pub(crate) const RESTARTING: [&str; 1] = ["notification"];

/// Every family a node records, and the registry that renders them.
#[derive(Clone, Debug)]
pub struct NodeMetrics {
    pub(crate) runtime: docket_runtime::Metrics,
    pub(crate) notify: docket_notify::Metrics,
    pub(crate) audit: docket_audit::Metrics,
    pub(crate) dashboard: docket_dashboard::Metrics,
    /// `docket_component_restarts_total{component}`.
    pub(crate) restarts: Family<[(&'static str, &'static str); 1], Counter>,
    pub(crate) registry: Arc<Registry>,
}

impl NodeMetrics {
    /// A fresh registry with every family registered.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let runtime = docket_runtime::Metrics::register(&mut registry);
        let notify = docket_notify::Metrics::register(&mut registry, &runtime);
        let audit = docket_audit::Metrics::register(&mut registry);
        let dashboard = docket_dashboard::Metrics::register(&mut registry);
        let restarts = Family::<[(&'static str, &'static str); 1], Counter>::default();
        for component in RESTARTING {
            let _ = restarts.get_or_create(&[("component", component)]);
        }
        registry.register(
            "docket_component_restarts",
            "Restarts of a node's restartable components after a failure",
            restarts.clone(),
        );
        NodeMetrics {
            runtime,
            notify,
            audit,
            dashboard,
            restarts,
            registry: Arc::new(registry),
        }
    }

    /// The registry in the text format.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// `GET /metrics`: the registry in the text format 0.0.4, which every Prometheus scrapes (the
/// OpenMetrics format would add `# EOF` and `_created` series; nothing here needs them).
pub(crate) async fn serve(State(registry): State<Arc<Registry>>) -> Response {
    let mut text = String::new();
    match prometheus_text::encode(&mut text, &registry) {
        Ok(()) => (
            [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot render the metrics",
        )
            .into_response(),
    }
}
