//! The dashboard over HTTP on a real socket, with a real checkpointer signing the log it shows:
//! the JSON API and its errors, the drill-down's roles, the page, OpenAPI, metrics, live updates
//! and the integrity check (and its failure with the wrong key), with the checkpointer's
//! witnesses (one real witness on 127.0.0.1, one down).

use std::time::Duration;

use docket_audit::{CheckpointSigner, CheckpointStore, Checkpointer, CheckpointerConfig};
use docket_dashboard::{Dashboard, DashboardConfig, Filter, IntegrityCheck};
use docket_log::{AnyCheckpoints, AnyLog, EventLog};
use docket_node::AuditApi;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::{file_log, run_demo_counted};

/// One GET; returns the status, the head and the body.
async fn get(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let response = docket_testkit::http::get(&format!("http://{addr}{path}"), headers).await;
    (response.status, response.head(), response.text())
}

async fn get_json(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let (status, head, body) = get(addr, path, headers).await;
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{path}: {head}"
    );
    (status, serde_json::from_str(&body).unwrap())
}

struct System {
    addr: std::net::SocketAddr,
    dashboard: Dashboard,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The demo's log, a checkpointer signing it, and the dashboard served on a free port, checking
/// checkpoints with `vkey` (the signer's own unless given).
async fn system(dir: &std::path::Path, vkey: Option<&str>) -> System {
    let (skey, _) = docket_audit::note::generate_key("docket.test/log").unwrap();
    system_with(dir, vkey, &skey, |config| config).await
}

/// [`system`] with the checkpointer's key and configuration chosen by the caller.
async fn system_with(
    dir: &std::path::Path,
    vkey: Option<&str>,
    skey: &str,
    configure: impl FnOnce(CheckpointerConfig) -> CheckpointerConfig,
) -> System {
    let log = file_log(&dir.join("log")).await;
    let checkpoints = AnyCheckpoints::File(log.checkpoints().unwrap());
    // The system's own registry, as a node's: every family registered at start.
    let mut registry = prometheus_client::registry::Registry::default();
    let runtime = docket_runtime::Metrics::register(&mut registry);
    let audit = docket_audit::Metrics::register(&mut registry);
    let dashboard_metrics = docket_dashboard::Metrics::register(&mut registry);
    run_demo_counted(log.clone(), checkpoints.clone(), 12, 40, runtime).await;
    let signer = CheckpointSigner::new(skey).unwrap();
    let own_vkey = signer.vkey().to_owned();
    let (stop, stopped) = watch::channel(false);
    let (checkpointer, checkpointer_task) = Checkpointer::start(
        CheckpointerConfig {
            metrics: audit,
            ..configure(CheckpointerConfig::every(50, Duration::from_millis(200)))
        },
        log.clone(),
        CheckpointStore::new(log.audit_records().unwrap()),
        signer,
        dir.join("tree"),
        stopped.clone(),
    );
    // It declares its cadence in the log first: the head below includes that commit.
    let mut status = checkpointer.watch_status();
    tokio::time::timeout(Duration::from_secs(20), status.wait_for(|s| s.started))
        .await
        .unwrap()
        .unwrap();
    drop(status);
    let api = AuditApi {
        checkpointer,
        log: AnyLog::File(log.clone()),
        actors: docket_bus::token::TokenVerifier::refusing_all(),
    };
    // The dashboard asks the audit service through the bus, as in `docket up`.
    let bus = docket_bus::LocalBus::new();
    bus.register(docket_bus::Service::Audit, api);
    let integrity = IntegrityCheck::new(bus, vkey.unwrap_or(&own_vkey)).unwrap();
    let mut config = DashboardConfig::new(Some(dir.join("dashboard")));
    config.integrity_every = Duration::from_millis(100);
    config.lag_every = Duration::from_millis(100);
    let (dashboard, dashboard_task) = Dashboard::start(
        log.clone(),
        checkpoints,
        Some(integrity),
        config,
        dashboard_metrics,
        stopped.clone(),
    )
    .await
    .unwrap();
    let head = log.head().await.unwrap();
    assert!(dashboard.wait_for(head, Duration::from_secs(30)).await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // `/metrics` is the node's route; here the system's registry, rendered as the node does.
    let registry = std::sync::Arc::new(registry);
    let router = docket_dashboard::http::router(
        dashboard.clone(),
        Some(crate::keys::verifier()),
        stopped.clone(),
    )
    .route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                let mut text = String::new();
                prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                    )],
                    text,
                )
            }
        }),
    );
    let mut serving = stopped;
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = serving.wait_for(|s| *s).await;
            })
            .await
            .unwrap();
    });
    let tasks = vec![
        server,
        tokio::spawn(async move {
            dashboard_task.await.unwrap().unwrap();
        }),
        tokio::spawn(async move {
            checkpointer_task.await.unwrap().unwrap();
        }),
    ];
    System {
        addr,
        dashboard,
        stop,
        tasks,
    }
}

impl System {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("stops promptly")
                .unwrap();
        }
    }

    /// Waits for the integrity check to report on a checkpoint covering the whole log.
    async fn integrity(&self, head: u64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, o) = get_json(self.addr, "/api/v1/dashboard/overview", &[]).await;
            if o["integrity"]["checkpoint_size"].as_u64() == Some(head)
                && !o["integrity"]["verified"].is_null()
            {
                return o["integrity"].clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "{o}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

const AUDITOR: &str = "6f1c2b9e-2a4c-4c1e-9a59-0c8f4b7d1e21/auditor";
const OPERATIONS: &str = "6f1c2b9e-2a4c-4c1e-9a59-0c8f4b7d1e21/operations";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_the_projection_and_refuses_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let s = system(dir.path(), None).await;
    let head = s.dashboard.projection().position();

    let (status, o) = get_json(s.addr, "/api/v1/dashboard/overview", &[]).await;
    assert_eq!(status, 200);
    let direct = serde_json::to_value(s.dashboard.overview(&Filter::default())).unwrap();
    assert_eq!(o["position"], direct["position"]);
    assert_eq!(o["decisions"], direct["decisions"]);
    assert_eq!(o["turnaround"], direct["turnaround"]);
    assert_eq!(o["filter"]["window"], "all");

    let (status, nyc) = get_json(
        s.addr,
        "/api/v1/dashboard/overview?office=nyc&window=365d",
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(nyc["filter"]["office"], "NYC");
    assert_eq!(nyc["filter"]["window"], "365d");

    for (query, needle) in [
        ("office=XYZ", "field_office"),
        ("window=2w", "unknown window"),
        ("offices=NYC", "unknown query parameter"),
    ] {
        let (status, e) =
            get_json(s.addr, &format!("/api/v1/dashboard/overview?{query}"), &[]).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(e["code"], "bad_request", "{query}");
        assert!(
            e["message"].as_str().unwrap().contains(needle),
            "{query}: {e}"
        );
    }

    // The drill-down needs a role that may see individual reviews.
    let (status, e) = get_json(s.addr, "/api/v1/dashboard/overdue", &[]).await;
    assert_eq!((status, e["code"].as_str()), (400, Some("missing_actor")));
    let (status, e) = get_json(
        s.addr,
        "/api/v1/dashboard/overdue",
        &[("Docket-Actor", crate::keys::token(OPERATIONS).as_str())],
    )
    .await;
    assert_eq!((status, e["code"].as_str()), (403, Some("forbidden")));
    let (status, e) = get_json(
        s.addr,
        "/api/v1/dashboard/overdue",
        &[("Docket-Actor", "nobody")],
    )
    .await;
    assert_eq!((status, e["code"].as_str()), (400, Some("bad_actor")));
    let (status, list) = get_json(
        s.addr,
        "/api/v1/dashboard/overdue",
        &[("Docket-Actor", crate::keys::token(AUDITOR).as_str())],
    )
    .await;
    assert_eq!(status, 200);
    let expected = s.dashboard.overdue(None);
    assert_eq!(
        list["reviews"].as_array().unwrap().len(),
        expected.reviews.len()
    );
    let (_, o) = get_json(s.addr, "/api/v1/dashboard/overview", &[]).await;
    assert_eq!(
        o["review_queue"]["by_deadline"]["overdue"]
            .as_u64()
            .unwrap() as usize,
        expected.reviews.len()
    );

    // Integrity: the latest checkpoint covers the log and verifies.
    let integrity = s.integrity(head).await;
    assert_eq!(integrity["verified"], true, "{integrity}");
    assert!(integrity["problem"].is_null());
    assert!(integrity["age_seconds"].as_f64().unwrap() >= 0.0);

    // The page and its assets, offline (no external URLs).
    let (status, head_text, page) = get(s.addr, "/", &[]).await;
    assert_eq!(status, 200);
    assert!(head_text.to_ascii_lowercase().contains("text/html"));
    assert!(page.contains("app.js") && page.contains("app.css"));
    for asset in ["/", "/app.js", "/app.css"] {
        let (status, _, body) = get(s.addr, asset, &[]).await;
        assert_eq!(status, 200);
        for external in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "@import",
            "fetch(\"http",
            "fetch('http",
        ] {
            assert!(
                !body.contains(external),
                "{asset} loads nothing from elsewhere ({external})"
            );
        }
    }

    // OpenAPI names every route.
    let (status, spec) = get_json(s.addr, "/api/v1/openapi.json", &[]).await;
    assert_eq!(status, 200);
    for path in [
        "/api/v1/dashboard/overview",
        "/api/v1/dashboard/overdue",
        "/api/v1/dashboard/stream",
        "/metrics",
        "/healthz",
        "/readyz",
        "/api/v1/commands/{name}",
        "/api/v1/reviews/{id}",
        "/api/v1/audit/checkpoint",
        "/api/v1/audit/inclusion",
        "/api/v1/audit/consistency",
        "/api/v1/audit/receipt",
    ] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} in the OpenAPI description"
        );
    }

    // Metrics: the demo's commands and the log head, in Prometheus text format.
    let (status, head_text, metrics) = get(s.addr, "/metrics", &[]).await;
    assert_eq!(status, 200);
    assert!(head_text.contains("text/plain; version=0.0.4"));
    assert!(metrics.contains("docket_commands_total{"), "{metrics}");
    assert!(metrics.contains("\ndocket_log_head "), "{metrics}");
    assert!(
        metrics.contains("docket_consumer_lag{consumer=\"dashboard\"} "),
        "{metrics}"
    );
    // The registry is this system's own (other tests here run their own logs beside this one):
    // the demo's commands are counted, and the head is this log's.
    let series = |prefix: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix)?.parse::<u64>().ok())
    };
    assert!(
        series("docket_commands_total{command=\"case.open\",outcome=\"ok\"} ") >= Some(12),
        "{metrics}"
    );
    let head = s.dashboard.projection().position();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, metrics) = get(s.addr, "/metrics", &[]).await;
        if metrics.contains(&format!("\ndocket_log_head {head}\n")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_integrity_panel_shows_the_witnesses_cosigning_and_down() {
    use docket_audit::witness::{
        generate_witness_key, WitnessClient, WitnessConfig, WitnessSigner,
    };
    let dir = tempfile::tempdir().unwrap();
    let (skey, vkey) = docket_audit::note::generate_key("docket.test/log").unwrap();
    let suffix = format!("{:08x}", uuid::Uuid::new_v4().as_u128() as u32);
    let (up_skey, up_vkey) = generate_witness_key(&format!("witness.test/up-{suffix}")).unwrap();
    let (_, down_vkey) = generate_witness_key(&format!("witness.test/down-{suffix}")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_witness, witness_stopped) = watch::channel(false);
    let witness = tokio::spawn(docket_audit::witness::serve(
        listener,
        WitnessConfig {
            signer: WitnessSigner::new(&up_skey).unwrap(),
            log_vkeys: vec![vkey],
            state_dir: dir.path().join("witness"),
        },
        witness_stopped,
    ));
    let down_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clients = vec![
        WitnessClient::new(&up_url, &up_vkey).unwrap(),
        WitnessClient::new(&format!("http://127.0.0.1:{down_port}"), &down_vkey).unwrap(),
    ];
    let s = system_with(dir.path(), None, &skey, |config| CheckpointerConfig {
        witnesses: clients,
        witness_quorum: 2,
        witness_timeout: Duration::from_millis(500),
        ..config
    })
    .await;
    let head = s.dashboard.projection().position();
    let integrity = s.integrity(head).await;
    assert_eq!(integrity["verified"], true, "{integrity}");
    assert_eq!(integrity["cosignatures"], 1, "{integrity}");
    assert_eq!(integrity["witness_quorum"], 2, "{integrity}");
    let witnesses = integrity["witnesses"].as_array().unwrap();
    assert_eq!(witnesses.len(), 2, "{integrity}");
    let (up, down) = (&witnesses[0], &witnesses[1]);
    assert_eq!(up["name"], format!("witness.test/up-{suffix}"));
    assert_eq!(up["cosigned_size"], head, "{integrity}");
    assert_eq!(up["last_error"], Value::Null, "{integrity}");
    assert_eq!(down["cosigned_size"], Value::Null, "{integrity}");
    assert!(down["failures"].as_u64().unwrap() >= 1, "{integrity}");
    assert_eq!(down["alarm"], false, "{integrity}");
    assert!(
        down["last_error"].as_str().unwrap().contains("unreachable"),
        "{integrity}"
    );
    // The page renders them (the panel's code reads these fields).
    let (_, _, script) = get(s.addr, "/app.js", &[]).await;
    for field in [
        "it.witnesses",
        "cosigned_size",
        "refusals",
        "failures",
        "witness_quorum",
    ] {
        assert!(script.contains(field), "app.js shows {field}");
    }
    // And /metrics, labelled by witness.
    let (_, _, metrics) = get(s.addr, "/metrics", &[]).await;
    assert!(
        metrics.contains(&format!(
            "docket_witness_up{{witness=\"witness.test/down-{suffix}\"}} 0"
        )),
        "{metrics}"
    );
    s.stop().await;
    stop_witness.send(true).unwrap();
    witness.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_stream_and_end_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let s = system(dir.path(), None).await;
    let head = s.dashboard.projection().position();
    let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    stream
        .write_all(b"GET /api/v1/dashboard/stream HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("event: update") || !seen.contains(&format!("\"position\":{head}")) {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("an update within 10 s")
            .unwrap();
        assert!(n > 0, "the stream ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen
        .to_ascii_lowercase()
        .contains("content-type: text/event-stream"));
    // Shutdown ends the open stream, so a graceful stop does not wait for pages.
    s.stop().await;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
        .await
        .expect("the stream ends at shutdown")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_signed_by_another_key_is_shown_as_not_verified() {
    let dir = tempfile::tempdir().unwrap();
    let (_, other_vkey) = docket_audit::note::generate_key("docket.test/log").unwrap();
    let s = system(dir.path(), Some(&other_vkey)).await;
    let head = s.dashboard.projection().position();
    let integrity = s.integrity(head).await;
    assert_eq!(integrity["verified"], false, "{integrity}");
    assert!(
        integrity["problem"].as_str().unwrap().contains("signature"),
        "{integrity}"
    );
    s.stop().await;
}
