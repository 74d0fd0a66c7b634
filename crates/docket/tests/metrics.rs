//! `/metrics` of a fresh `docket up` (embedded, no webhook) against the Grafana dashboard: every
//! metric name a panel of `deploy/grafana/docket.json` queries has a series, reading 0 before any
//! work, so no panel starts out as "no data".

use std::collections::BTreeSet;

use crate::cli::{http_get, terminate, up};

/// Every string under an `expr` key, anywhere in `value`.
fn exprs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", serde_json::Value::String(expr)) => out.push(expr.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// The metric names a PromQL expression mentions (`docket_…` identifiers).
fn metric_names(expr: &str) -> impl Iterator<Item = &str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|token| token.starts_with("docket_"))
}

#[test]
fn every_metric_the_grafana_dashboard_queries_is_on_a_fresh_nodes_metrics() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/docket.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut all = Vec::new();
    exprs(&dashboard, &mut all);
    let names: BTreeSet<&str> = all.iter().flat_map(|e| metric_names(e)).collect();
    // The parse finds what the panels query, including the families a demo without a webhook
    // used to leave absent.
    for name in [
        "docket_commands_total",
        "docket_command_duration_seconds_bucket",
        "docket_log_head",
        "docket_deliveries_total",
        "docket_delivery_duration_seconds_bucket",
        "docket_notifications_queued_total",
        "docket_reactions_total",
    ] {
        assert!(names.contains(name), "{name} in {names:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = up(dir.path());
    let metrics = http_get(&url, "/metrics");
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| {
            !metrics.lines().any(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
        })
        .collect();
    assert!(missing.is_empty(), "missing {missing:?} in\n{metrics}");
    // Before any work, the counters read 0 rather than being absent.
    for series in [
        "docket_notifications_queued_total 0",
        "docket_deliveries_total{outcome=\"delivered\"} 0",
        "docket_delivery_duration_seconds_count 0",
        "docket_reactions_total{outcome=\"ok\",reaction=\"assessment-guidance\"} 0",
        "docket_commands_total{command=\"case.open\",outcome=\"ok\"} 0",
    ] {
        assert!(
            metrics.lines().any(|line| line == series),
            "{series} in\n{metrics}"
        );
    }
    terminate(&mut child);
}
