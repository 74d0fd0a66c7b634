//! Whole nodes started in process with `Node::start`, and their components made to fail for
//! real (a directory where a file must go, a log that lost its commits): a restartable
//! component comes back with a backoff, counted on `/metrics`, while the node keeps serving; a
//! critical one stops the node, which names it.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use docket_node::{
    ComponentState, LogConfig, Node, NodeConfig, NodeError, NodeHandle, Secret, WebhookConfig,
};
use http_body_util::{BodyExt, Full};
use tokio_util::sync::CancellationToken;

use crate::keys;

const DIRECTOR: &str = "00000000-0000-0000-0000-00000000000a/field_office_director";

fn config(dir: &Path) -> NodeConfig {
    let mut config = NodeConfig::all_roles(LogConfig::File {
        dir: dir.to_path_buf(),
    });
    config.http = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.actors = Some(keys::verifier());
    config.checkpoints.every = Duration::from_millis(20);
    config.tunables.dashboard.snapshot_every_ms = 1;
    config.tunables.supervision.initial_backoff_ms = 10;
    config.tunables.supervision.max_backoff_ms = 50;
    config
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

async fn call(
    client: &Client,
    request: hyper::Request<Full<Bytes>>,
) -> (u16, serde_json::Value, String) {
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body).into_owned();
    (
        status,
        serde_json::from_str(&text).unwrap_or_default(),
        text,
    )
}

async fn get(client: &Client, addr: SocketAddr, path: &str) -> (u16, serde_json::Value, String) {
    let request = hyper::Request::get(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    call(client, request).await
}

/// Registers a new officer; the HTTP status.
async fn register_officer(client: &Client, addr: SocketAddr) -> u16 {
    let body = serde_json::json!({
        "person": uuid::Uuid::new_v4().to_string(),
        "office": "NYC",
        "role": "officer",
    });
    let request = hyper::Request::post(format!("http://{addr}/api/v1/commands/officer.register"))
        .header("content-type", "application/json")
        .header("docket-actor", keys::token(DIRECTOR))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    call(client, request).await.0
}

async fn start(config: NodeConfig) -> (NodeHandle, SocketAddr) {
    let node = Node::start(config, CancellationToken::new()).await.unwrap();
    let addr = node.addr().unwrap();
    (node, addr)
}

/// Waits (at most 60 s) for the node to stop on its own; the component it names.
async fn stopped_by(node: NodeHandle) -> String {
    match tokio::time::timeout(Duration::from_secs(60), node.wait()).await {
        Ok(Err(NodeError::Component(failure))) => failure.component,
        Ok(other) => panic!("the node ended with {other:?}, not a component's failure"),
        Err(_) => panic!("the node did not stop within 60 s"),
    }
}

#[tokio::test]
async fn a_node_serves_every_role_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (node, addr) = start(config(dir.path())).await;
    let http = client();
    assert_eq!(register_officer(&http, addr).await, 200);
    let mut ready = (0, serde_json::Value::Null, String::new());
    for _ in 0..600 {
        ready = get(&http, addr, "/readyz").await;
        if ready.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready.0, 200, "{}", ready.2);
    let components = ready.1["components"].as_object().unwrap();
    for name in ["checkpointer", "dashboard", "world", "reactions", "http"] {
        assert_eq!(components[name]["state"], "running", "{name}: {}", ready.2);
    }
    let (status, _, metrics) = get(&http, addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("docket_commands_total"), "{metrics}");
    node.stop().await.unwrap();
    // The final checkpoint covers the commit: the audit records hold a checkpoint.
    assert!(dir.path().join("audit").read_dir().unwrap().count() > 0);
}

/// `GET` with a `Docket-Actor` header.
async fn get_as(
    client: &Client,
    addr: SocketAddr,
    path: &str,
    actor: &str,
) -> (u16, serde_json::Value, String) {
    let request = hyper::Request::get(format!("http://{addr}{path}"))
        .header("docket-actor", actor)
        .body(Full::new(Bytes::new()))
        .unwrap();
    call(client, request).await
}

#[tokio::test]
async fn the_audit_routes_are_the_audit_queries_over_the_in_process_bus() {
    let dir = tempfile::tempdir().unwrap();
    let (node, addr) = start(config(dir.path())).await;
    let http = client();
    assert_eq!(register_officer(&http, addr).await, 200);
    // No actor needed: the note of the checkpoint covering the first commit, as text.
    let (status, _, note) = get(&http, addr, "/api/v1/audit/checkpoint?covering=1").await;
    assert_eq!(status, 200, "{note}");
    assert!(note.contains("docket"), "{note}");
    let (status, receipt, text) = get(&http, addr, "/api/v1/audit/receipt?position=1").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(receipt["position"], 1, "{text}");
    let (status, proof, text) = get(&http, addr, "/api/v1/audit/inclusion?position=1&size=1").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(proof["leaf_hash"], receipt["leaf_hash"], "{text}");
    // The bus's refusals, with its error form: past the head, a token that does not verify.
    let (status, error, text) = get(&http, addr, "/api/v1/audit/consistency?old=1&new=1000").await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("bad_request")),
        "{text}"
    );
    let (status, error, text) = get_as(&http, addr, "/api/v1/audit/checkpoint", "nobody").await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("bad_actor")),
        "{text}"
    );
    // A token that verifies is accepted.
    let (status, _, text) = get_as(
        &http,
        addr,
        "/api/v1/audit/checkpoint",
        &keys::token(DIRECTOR),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    node.stop().await.unwrap();
}

#[tokio::test]
async fn the_notification_service_restarts_with_a_backoff_while_the_node_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    // The service's checkpoint cannot be read: a directory stands where its file goes.
    let blocker = dir
        .path()
        .join("checkpoints")
        .join(docket_notify::NOTIFY_CONSUMER);
    std::fs::create_dir_all(blocker.join("in-the-way")).unwrap();
    let mut config = config(dir.path());
    config.webhook = Some(WebhookConfig {
        url: "http://127.0.0.1:9/hook".to_owned(),
        secret: Secret::new("s3cret"),
    });
    let (node, addr) = start(config).await;
    let http = client();
    let mut restarts = 0;
    for _ in 0..600 {
        if let Some(ComponentState::Restarting { restarts: n, .. }) =
            node.supervisor().states().get("notification")
        {
            restarts = *n;
            if restarts >= 3 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(restarts >= 3, "{:?}", node.supervisor().states());
    let (status, ready, text) = get(&http, addr, "/readyz").await;
    assert_eq!(status, 503, "{text}");
    assert!(
        ready["missing"]
            .to_string()
            .contains("notification is restarting"),
        "{text}"
    );
    // Commands are still served while it restarts, and the restarts are counted.
    assert_eq!(register_officer(&http, addr).await, 200);
    let (_, _, metrics) = get(&http, addr, "/metrics").await;
    let counted = metrics
        .lines()
        .find(|l| l.starts_with("docket_component_restarts_total{component=\"notification\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_default();
    assert!(counted >= 3.0, "{metrics}");

    // Mended, it comes back and stays up: no further restart over 40 backoffs.
    std::fs::remove_dir_all(&blocker).unwrap();
    let settled = |states: &std::collections::BTreeMap<String, ComponentState>| {
        states.get("notification") == Some(&ComponentState::Running)
    };
    let mut before = None;
    for _ in 0..600 {
        let states = node.supervisor().states();
        if settled(&states) {
            let (_, _, metrics) = get(&http, addr, "/metrics").await;
            let now = metrics
                .lines()
                .find(|l| {
                    l.starts_with("docket_component_restarts_total{component=\"notification\"}")
                })
                .map(str::to_owned);
            if before.is_some() && before == now {
                break;
            }
            before = now;
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        settled(&node.supervisor().states()),
        "{:?}",
        node.supervisor().states()
    );
    node.stop().await.unwrap();
}

#[tokio::test]
async fn a_dashboard_that_cannot_write_its_snapshot_stops_the_node_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (node, addr) = start(config(dir.path())).await;
    let http = client();
    assert_eq!(register_officer(&http, addr).await, 200);
    let dashboard = dir.path().join("dashboard");
    for _ in 0..600 {
        if dashboard
            .join(docket_dashboard::runner::SNAPSHOT_FILE)
            .exists()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _ = register_officer(&http, addr).await;
    }
    // A file where the dashboard's directory was: its next snapshot cannot be written.
    std::fs::remove_dir_all(&dashboard).unwrap();
    std::fs::write(&dashboard, b"not a directory").unwrap();
    let sender = tokio::spawn(async move {
        let http = client();
        for _ in 0..600 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ =
                tokio::time::timeout(Duration::from_secs(5), register_officer(&http, addr)).await;
        }
    });
    assert_eq!(stopped_by(node).await, "dashboard");
    sender.abort();
}

#[tokio::test]
async fn a_checkpointer_that_finds_the_log_shorter_than_its_checkpoint_stops_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let (node, addr) = start(config(dir.path())).await;
    assert_eq!(register_officer(&client(), addr).await, 200);
    node.stop().await.unwrap();
    // The log loses its commits; the signed checkpoint covering them stays.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "seg") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let (node, _) = start(config(dir.path())).await;
    assert_eq!(stopped_by(node).await, "checkpointer");
}
