//! End-to-end scenarios against real `docket` processes: the whole lifecycle of
//! `docs/api.md` (positions aside: the notification service appends to the same log) run against (a) the command services as separate `docket serve` processes over a
//! real nats-server and (b) `docket up` embedded, driven through `docket send`; and a service
//! process killed with SIGKILL in the middle of a workload, after which every accepted command's
//! effects are in the log exactly once.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use docket_bus::{headers, Headers, NatsTransport, Transport};
use docket_domain::CommandKind;
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::EventLog;
use serde_json::Value;

use self::support::{check_reply_except_positions, examples};

#[path = "support/api_examples.rs"]
pub(crate) mod support;
#[path = "support/webhook.rs"]
pub(crate) mod webhook;

/// The webhook secret of the end-to-end tests.
pub(crate) const SECRET: &str = "e2e-webhook-secret";

/// Notifications the documented lifecycle must produce.
const EXPECTED_KINDS: &[&str] = &[
    "decision_returned",
    "review_received",
    "review_acknowledged",
    "information_requested",
    "tier1_decided",
    "tier2_decided",
    "review_withdrawn",
];

/// Checks the lifecycle's notifications arrived, all signed.
pub(crate) async fn check_notifications(receiver: &webhook::Receiver) {
    let got = receiver.wait_for(EXPECTED_KINDS).await;
    assert!(
        got.iter().all(|d| d.signed),
        "every delivery carries a valid signature: {got:?}"
    );
    let representative = "00000000-0000-0000-0000-000000000010";
    assert!(
        got.iter()
            .any(|d| d.body["kind"] == "tier1_decided" && d.body["to"]["person"] == representative),
        "the representative was told the tier-1 outcome: {got:?}"
    );
}

/// A child process killed when dropped.
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(service: &str, nats: &str) -> Proc {
    serve_with(service, nats, &[])
}

pub(crate) fn serve_with(service: &str, nats: &str, extra: &[&str]) -> Proc {
    let child = crate::docket_cmd()
        .args(["serve", service, "--nats", nats, "--log", "warn"])
        .args(extra)
        .env("DOCKET_WEBHOOK_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Proc(child)
}

pub(crate) async fn wait_for_services(client: &docket_bus::NatsClient, services: &[&str]) {
    for service in services {
        let subject = format!("$SRV.PING.docket-{service}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.request(subject.clone(), "".into()).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "docket serve {service} never answered PING"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_runs_on_separate_docket_serve_processes() {
    let server = tokio::task::spawn_blocking(docket_testkit::NatsServer::start)
        .await
        .unwrap();
    let audit_dir = tempfile::tempdir().unwrap();
    let audit_dir_arg = audit_dir.path().display().to_string();
    let mut services: Vec<Proc> = ["intake", "assessment", "review"]
        .iter()
        .map(|s| serve(s, &server.url()))
        .collect();
    services.push(serve_with(
        "audit",
        &server.url(),
        &["--audit-dir", &audit_dir_arg],
    ));
    let client = docket_bus::connect(&server.url(), "e2e").await.unwrap();
    wait_for_services(&client, &["intake", "assessment", "review", "audit"]).await;
    let transport = NatsTransport::new(client);
    for example in examples() {
        let kind = CommandKind::ALL
            .iter()
            .find(|k| k.name() == example.command)
            .unwrap();
        let h = Headers::new()
            .with(headers::CONTENT_TYPE, "application/json")
            .with(headers::ACTOR, crate::keys::token(&example.actor));
        let raw = transport
            .request(
                &docket_bus::subject(*kind),
                h,
                Bytes::from(example.body.clone()),
            )
            .await
            .unwrap();
        let reply: Value = serde_json::from_slice(&raw.body).unwrap();
        check_reply_except_positions(
            &example,
            raw.headers.get(headers::STATUS) == Some(headers::STATUS_ERROR),
            &reply,
        );
        check_receipt(&example, &reply);
    }
    // An auditor verifies the running deployment: exported from NATS, checked offline.
    let vkey = format!("@{}", audit_dir.path().join("checkpoint.vkey").display());
    let verified = crate::docket_cmd()
        .args([
            "audit",
            "verify",
            "--json",
            "--nats",
            &server.url(),
            "--vkey",
            &vkey,
            // The deployment is running: commits after its latest cadence checkpoint are
            // unsigned yet, and the report counts them.
            "--allow-unsigned-tail",
        ])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap_or(Value::Null);
    assert!(
        verified.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(report["ok"], true);
    assert!(
        report["checkpoints_checked"].as_u64().unwrap() >= 1,
        "{report}"
    );
    // The dashboard as its own process: it follows the log on JetStream and verifies the latest
    // checkpoint with the proofs of the audit service, over NATS.
    let dashboard_dir = tempfile::tempdir().unwrap();
    let mut dashboard = crate::docket_cmd()
        .args([
            "serve",
            "dashboard",
            "--nats",
            &server.url(),
            "--log",
            "warn",
        ])
        .args([
            "--http",
            "127.0.0.1:0",
            "--verifier-key",
            &vkey,
            "--dashboard-dir",
        ])
        .arg(dashboard_dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(dashboard.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let dashboard = Proc(dashboard);
    let url = line.trim().strip_prefix("listening ").unwrap().to_owned();
    let head = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
        .await
        .unwrap()
        .head()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let overview = loop {
        let body = http_get(&url, "/api/v1/dashboard/overview").await;
        let o: Value = serde_json::from_str(&body).unwrap();
        if o["position"] == head
            && o["integrity"]["verified"] == true
            && o["integrity"]["checkpoint_size"].as_u64() >= Some(1)
        {
            break o;
        }
        assert!(Instant::now() < deadline, "{o}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        overview["decisions"]["total"].as_u64().unwrap() >= 1,
        "{overview}"
    );
    drop(dashboard);
    drop(services);
}

/// A GET that must answer 200; the body.
pub(crate) async fn http_get(url: &str, path: &str) -> String {
    let response = docket_testkit::http::get(&format!("{url}{path}"), &[]).await;
    let body = response.text();
    assert!(response.status == 200, "{}\n{body}", response.head());
    body
}

/// The acknowledgement of a review request and the recording of a decision carry a receipt.
pub(crate) fn check_receipt(example: &support::Example, reply: &Value) {
    if example.error
        || !["review.request", "case.record_decision"].contains(&example.command.as_str())
    {
        return;
    }
    let proof = reply["receipt"]["tlog_proof"].as_str().unwrap_or_default();
    assert!(
        proof.starts_with("c2sp.org/tlog-proof@v1\n"),
        "{}: {reply}",
        example.command
    );
    assert_eq!(reply["receipt"]["position"], reply["position"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_runs_on_docket_up_embedded_through_docket_send() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = webhook::start(SECRET).await;
    let mut child = crate::docket_cmd()
        .args([
            "up",
            "--http",
            "127.0.0.1:0",
            "--log",
            "warn",
            "--webhook-url",
            &receiver.url,
            "--data-dir",
        ])
        .arg(dir.path())
        .env("DOCKET_WEBHOOK_SECRET", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let up = Proc(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    let url = line.trim().strip_prefix("listening ").unwrap().to_owned();
    for example in examples() {
        let out = crate::docket_cmd()
            .args([
                "send",
                &example.command,
                "--as",
                &example.actor,
                "--json",
                &example.body,
                "--http",
                &url,
            ])
            .output()
            .unwrap();
        let reply: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        check_reply_except_positions(&example, !out.status.success(), &reply);
        check_receipt(&example, &reply);
    }
    check_notifications(&receiver).await;
    check_review_reads(&url).await;
    // A valid token whose role may not issue the command: the permission table refuses it.
    let out = crate::docket_cmd()
        .args(["send", "case.close", "--as", OPERATIONS, "--http", &url])
        .args([
            "--set",
            &format!("case={REVIEWED_CASE}"),
            "--set",
            "reason=x",
        ])
        .output()
        .unwrap();
    let refused: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(!out.status.success());
    assert_eq!(refused["code"], "forbidden", "{refused}");
    drop(up);
}

/// The review of the documented walk-through, its requester, and other actors.
const REVIEW: &str = "8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a0003";
const REVIEWED_CASE: &str = "8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a0001";
const REQUESTER: &str = "00000000-0000-0000-0000-000000000010/requester";
const OTHER_REQUESTER: &str = "00000000-0000-0000-0000-0000000000ff/requester";
const AUDITOR: &str = "00000000-0000-0000-0000-0000000000a1/auditor";
const OPERATIONS: &str = "00000000-0000-0000-0000-0000000000a2/operations";

/// `GET /api/v1/reviews/{id}`: the requester reads their own review; another requester and
/// operations staff are refused; an auditor reads it; a missing or unsigned actor is refused.
async fn check_review_reads(url: &str) {
    let path = format!("/api/v1/reviews/{REVIEW}");
    let get = |actor: Option<String>| {
        let path = path.clone();
        async move { http_get_with(url, &path, actor.as_deref()).await }
    };
    let (status, own) = get(Some(crate::keys::token(REQUESTER))).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["review"], REVIEW);
    assert_eq!(own["a_number"], "A012345678");
    let (status, e) = get(Some(crate::keys::token(OTHER_REQUESTER))).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (403, Some("forbidden")),
        "{e}"
    );
    let (status, e) = get(Some(crate::keys::token(OPERATIONS))).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (403, Some("forbidden")),
        "{e}"
    );
    let (status, audited) = get(Some(crate::keys::token(AUDITOR))).await;
    assert_eq!(status, 200);
    assert_eq!(audited["review"], REVIEW);
    let (status, e) = get(Some(REQUESTER.to_owned())).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (400, Some("bad_actor")),
        "{e}"
    );
    let (status, e) = get(None).await;
    assert_eq!(
        (status, e["code"].as_str()),
        (400, Some("missing_actor")),
        "{e}"
    );
}

/// A GET with an optional `Docket-Actor`; the status and the JSON body.
async fn http_get_with(url: &str, path: &str, actor: Option<&str>) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = actor.map(|a| ("Docket-Actor", a)).into_iter().collect();
    let response = docket_testkit::http::get(&format!("{url}{path}"), &headers).await;
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap_or(Value::Null),
    )
}

/// Sends a command until it is answered with anything but `unavailable`, with the same
/// idempotency key each time.
async fn send_until_answered(
    transport: &NatsTransport,
    subject: &str,
    actor: &str,
    key: &str,
    body: Value,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = Headers::new()
            .with(headers::CONTENT_TYPE, "application/json")
            .with(headers::ACTOR, crate::keys::token(actor))
            .with(headers::IDEMPOTENCY_KEY, key);
        let body_bytes = Bytes::from(serde_json::to_vec(&body).unwrap());
        let answered = match transport.request(subject, h, body_bytes).await {
            Ok(raw) => {
                let reply: Value = serde_json::from_slice(&raw.body).unwrap();
                if reply["code"] == "unavailable" {
                    None
                } else {
                    Some(reply)
                }
            }
            Err(e) if e.code == "unavailable" => None,
            Err(e) => panic!("{subject}: {e:?}"),
        };
        if let Some(reply) = answered {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "{subject} stayed unavailable for a minute"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_killed_mid_workload_loses_and_repeats_nothing() {
    let server = tokio::task::spawn_blocking(docket_testkit::NatsServer::start)
        .await
        .unwrap();
    let url = server.url();
    let client = docket_bus::connect(&url, "e2e-kill").await.unwrap();
    let mut intake = serve("intake", &url);
    let _assessment = serve("assessment", &url);
    wait_for_services(&client, &["intake", "assessment"]).await;
    let transport = NatsTransport::new(client.clone());
    let clerk = "00000000-0000-0000-0000-00000000000f/intake_clerk";

    // The workload: 40 cases, each opened and given two records, each command with its own key.
    let workload = {
        let transport = transport.clone();
        tokio::spawn(async move {
            let mut acked: HashMap<String, Value> = HashMap::new();
            for i in 0..40u32 {
                let case = uuid::Uuid::new_v4().to_string();
                let open = serde_json::json!({"case": case, "a_number": format!("A{:09}", 100_000 + i), "office": "BOS",
                    "encounter": {"at": "2024-03-05T09:00:00Z", "location": "Boston", "place": "interior",
                                  "manner_of_entry": "unknown", "entry_date": null, "protected_area": null}});
                let key = format!("open-{case}");
                let reply = send_until_answered(
                    &transport,
                    "docket.cmd.intake.case_open",
                    clerk,
                    &key,
                    open,
                )
                .await;
                assert!(reply.get("position").is_some(), "open {i}: {reply}");
                acked.insert(key, reply);
                for (n, source) in ["criminal", "administrative"].iter().enumerate() {
                    let attach = serde_json::json!({"case": case, "record": uuid::Uuid::new_v4(), "source": source,
                        "reference": format!("ref-{i}-{n}"), "content_hash": "cd".repeat(32)});
                    let key = format!("attach-{case}-{n}");
                    let reply = send_until_answered(
                        &transport,
                        "docket.cmd.intake.case_attach_record",
                        clerk,
                        &key,
                        attach,
                    )
                    .await;
                    assert!(reply.get("position").is_some(), "attach {i}/{n}: {reply}");
                    acked.insert(key, reply);
                }
            }
            acked
        })
    };
    // SIGKILL the intake service three times while the workload runs, restarting it each time.
    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(300 + 200 * round)).await;
        let _ = intake.0.kill();
        let _ = intake.0.wait();
        tokio::time::sleep(Duration::from_millis(200)).await;
        intake = serve("intake", &url);
    }
    let acked = workload.await.unwrap();
    assert_eq!(acked.len(), 120);

    // Every accepted command is in the log exactly once, at the position it was acknowledged with.
    let log = JetStreamLog::connect_url(&url, JetStreamConfig::default())
        .await
        .unwrap();
    let mut by_key: HashMap<String, Vec<u64>> = HashMap::new();
    let mut after = 0;
    loop {
        let batch = log.read_all(after, 500).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        for c in batch {
            if let Some(key) = c.commit.metadata.idempotency_key.clone() {
                by_key.entry(key).or_default().push(c.position);
            }
        }
    }
    for (key, reply) in &acked {
        let positions = by_key
            .get(key)
            .unwrap_or_else(|| panic!("{key} acknowledged but not in the log"));
        assert_eq!(
            positions.len(),
            1,
            "{key} applied {} times",
            positions.len()
        );
        assert_eq!(
            Some(positions[0]),
            reply["position"].as_u64(),
            "{key} at its acknowledged position"
        );
    }
    assert_eq!(
        by_key.len(),
        acked.len(),
        "nothing in the log that was not acknowledged"
    );
    drop(intake);
}
