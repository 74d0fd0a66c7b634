//! The notification service's metrics: notifications queued, webhook attempts by outcome and
//! their duration, and its checkpoint's position. Registered into the node's registry whether or
//! not a webhook is configured, so the families read 0 rather than being absent.

use std::time::Duration;

use docket_runtime::metrics::latency_histogram;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::service::NOTIFY_CONSUMER;

/// What `docket_deliveries_total` counts an attempt as.
const DELIVERY_OUTCOMES: [&str; 3] = ["delivered", "failed", "abandoned"];

/// The notification service's metric families. Cheap to clone. The default is registered
/// nowhere (for tests that do not read `/metrics`).
#[derive(Clone, Debug)]
pub struct Metrics {
    queued: Counter,
    deliveries: Family<[(&'static str, &'static str); 1], Counter>,
    delivery_duration: Histogram,
    /// `docket_reaction_position{consumer="notification"}`, a series of the runtime's family.
    pub(crate) position: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(Gauge::default())
    }
}

impl Metrics {
    fn new(position: Gauge) -> Self {
        let metrics = Metrics {
            queued: Counter::default(),
            deliveries: Family::default(),
            delivery_duration: latency_histogram(),
            position,
        };
        for outcome in DELIVERY_OUTCOMES {
            metrics
                .deliveries
                .get_or_create_owned(&[("outcome", outcome)]);
        }
        metrics
    }

    /// The service's families, registered into `registry`; its checkpoint's position is a series
    /// of `runtime`'s `docket_reaction_position` (registered there already).
    pub fn register(registry: &mut Registry, runtime: &docket_runtime::Metrics) -> Self {
        let metrics = Metrics::new(runtime.reaction_position(NOTIFY_CONSUMER));
        registry.register(
            "docket_notifications_queued",
            "Notifications queued by this process (a notification already queued is not counted again)",
            metrics.queued.clone(),
        );
        registry.register(
            "docket_deliveries",
            "Webhook delivery attempts, by outcome (delivered, failed and to be retried, abandoned)",
            metrics.deliveries.clone(),
        );
        registry.register(
            "docket_delivery_duration_seconds",
            "Time of one webhook attempt, from sending the request to its answer or failure, in seconds",
            metrics.delivery_duration.clone(),
        );
        metrics
    }

    /// Counts a notification this process queued.
    pub(crate) fn notification_queued(&self) {
        self.queued.inc();
    }

    /// Counts one webhook attempt by outcome (`delivered`; `failed`, to be retried; `abandoned`,
    /// the last attempt failed) and its duration.
    pub(crate) fn delivery_done(&self, outcome: &'static str, took: Duration) {
        self.deliveries.get_or_create(&[("outcome", outcome)]).inc();
        self.delivery_duration.observe(took.as_secs_f64());
    }
}
