//! The dashboard's metrics: the log's head and how far each consumer's checkpoint trails it,
//! read every `lag_every`. Registered into the node's registry by the composition root.

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::runner::DASHBOARD_CONSUMER;

/// The dashboard's metric families (`Dashboard::start` takes them). Cheap to clone. The
/// default is registered nowhere (for tests and tools that do not serve `/metrics`).
#[derive(Clone, Debug)]
pub struct Metrics {
    log_head: Gauge,
    consumer_lag: Family<[(&'static str, String); 1], Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Metrics {
            log_head: Gauge::default(),
            consumer_lag: Family::default(),
        };
        // Its own lag is known from the start; other consumers appear as their checkpoints do.
        metrics.set_consumer_lag(DASHBOARD_CONSUMER, 0);
        metrics
    }
}

impl Metrics {
    /// The dashboard's families, registered into `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics::default();
        registry.register(
            "docket_consumer_lag",
            "Commits between the log's head and a consumer's checkpoint",
            metrics.consumer_lag.clone(),
        );
        registry.register(
            "docket_log_head",
            "Position of the latest commit in the log",
            metrics.log_head.clone(),
        );
        metrics
    }

    /// Sets how far a consumer is behind the log's head, in commits.
    pub(crate) fn set_consumer_lag(&self, consumer: &str, lag: u64) {
        self.consumer_lag
            .get_or_create(&[("consumer", consumer.to_owned())])
            .set(docket_runtime::metrics::gauge_value(lag));
    }

    /// Sets the log's head (the position of its latest commit).
    pub(crate) fn set_log_head(&self, head: u64) {
        self.log_head
            .set(docket_runtime::metrics::gauge_value(head));
    }
}
