//! Least privilege in NATS (issue 7): nats-server runs with exactly the users and permissions of
//! `deploy/nats-secure.conf`. Every Docket process runs as its own user and does its job (the
//! documented command examples sent by the integrator, notifications delivered, the dashboard at
//! the head with its checkpoint verified, the auditor's `docket audit verify --nats`) without one
//! permissions violation; then raw clients of every identity try what they must not — append a
//! decision, send a command, write an audit record or another's checkpoint, read other users'
//! replies, create, change, delete or purge streams — and the server refuses each, leaving the
//! log exactly as it was.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use docket_bus::{headers, Headers, NatsClient, NatsTransport, Transport};
use docket_domain::CommandKind;
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::EventLog;
use serde_json::Value;

use super::e2e::{self, support, webhook, Proc};

/// The deployment's configuration, used as it is.
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/nats-secure.conf");

/// Every identity of the configuration.
const IDENTITIES: [&str; 9] = [
    "intake",
    "assessment",
    "review",
    "notification",
    "audit",
    "dashboard",
    "integrator",
    "auditor",
    "admin",
];

/// The configuration without what the test kit sets itself (the server's name, its listen and
/// monitoring addresses, the `jetstream` block with its store directory); checks that the
/// deployment's `jetstream` block syncs every write.
fn accounts_config(text: &str) -> String {
    let mut out = String::new();
    let mut jetstream = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let top_level = !line.starts_with(char::is_whitespace);
        let key = line.split([':', ' ', '{']).next().unwrap_or_default();
        if top_level && ["server_name", "listen", "http", "pid_file"].contains(&key) {
            continue;
        }
        if top_level && key == "jetstream" {
            for inner in lines.by_ref() {
                if inner.starts_with('}') {
                    break;
                }
                jetstream.push_str(inner);
                jetstream.push('\n');
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    assert!(
        jetstream.contains("sync_interval: always"),
        "the deployment's jetstream block must sync every write: {jetstream}"
    );
    assert!(out.contains("accounts {"), "no accounts block in {CONFIG}");
    out
}

/// Each user's password, from its `{ user: name, password: "…"` line.
fn passwords(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim_start().strip_prefix("{ user:")?;
            let user = rest.split(',').next()?.trim().to_owned();
            let password = line.split("password:").nth(1)?.trim().strip_prefix('"')?;
            Some((user, password[..password.find('"')?].to_owned()))
        })
        .collect()
}

/// A connection of one identity that keeps every error the server sends it.
struct Raw {
    client: NatsClient,
    errors: Arc<Mutex<Vec<String>>>,
}

/// What the server made of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// A permissions violation naming the subject, and no reply.
    Refused,
    /// It went through (a reply, or "no responders" past the permission check).
    Allowed(String),
    /// Not tried: it is this identity's job, shown by its process.
    Job,
}

impl Outcome {
    fn cell(&self) -> &'static str {
        match self {
            Outcome::Refused => "refused",
            Outcome::Allowed(_) => "allowed",
            Outcome::Job => "(job)",
        }
    }
}

impl Raw {
    async fn connect(url: &str, who: &str) -> Raw {
        let (servers, options) = docket_log::jetstream::connect_options(url).unwrap();
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        let client = options
            .name(format!("permissions-test-{who}"))
            .event_callback(move |event| {
                sink.lock().unwrap().push(event.to_string());
                std::future::ready(())
            })
            .connect(servers.as_slice())
            .await
            .unwrap_or_else(|e| panic!("{who} cannot log in: {e}"));
        Raw { client, errors }
    }

    fn violations(&self, wanted: &str) -> usize {
        let errors = self.errors.lock().unwrap();
        errors.iter().filter(|e| e.contains(wanted)).count()
    }

    /// Waits (5 s at most) until the server reports one more violation containing `wanted`.
    async fn violation(&self, wanted: &str, before: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if self.violations(wanted) > before {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    /// Sends a request (a publish with a reply inbox) to `subject`.
    async fn publish(&self, subject: &str, payload: &[u8]) -> Outcome {
        let wanted = format!("Permissions Violation for Publish to \"{subject}\"");
        let before = self.violations(&wanted);
        let request = self
            .client
            .request(subject.to_owned(), Bytes::copy_from_slice(payload));
        tokio::select! {
            reply = request => match reply {
                Ok(message) => Outcome::Allowed(format!(
                    "reply {:?} {}",
                    message.status,
                    String::from_utf8_lossy(&message.payload)
                )),
                Err(e) if e.to_string().contains("no responders") => {
                    Outcome::Allowed("no responders".to_owned())
                }
                Err(e) => Outcome::Allowed(format!("no violation reported, request: {e}")),
            },
            refused = self.violation(&wanted, before) => {
                if refused {
                    Outcome::Refused
                } else {
                    Outcome::Allowed("no violation reported within 5 s".to_owned())
                }
            }
        }
    }

    /// Subscribes to `subject`.
    async fn subscribe(&self, subject: &str) -> Outcome {
        let wanted = format!("Permissions Violation for Subscription to \"{subject}\"");
        let before = self.violations(&wanted);
        let subscription = self.client.subscribe(subject.to_owned()).await.unwrap();
        self.client.flush().await.unwrap();
        let outcome = if self.violation(&wanted, before).await {
            Outcome::Refused
        } else {
            Outcome::Allowed("subscribed".to_owned())
        };
        drop(subscription);
        outcome
    }

    /// The state of a stream, as the admin reads it.
    async fn stream_state(&self, stream: &str) -> Value {
        let reply = self
            .client
            .request(format!("$JS.API.STREAM.INFO.{stream}"), Bytes::new())
            .await
            .unwrap();
        let info: Value = serde_json::from_slice(&reply.payload).unwrap();
        assert!(info.get("error").is_none(), "{stream}: {info}");
        info["state"].clone()
    }
}

/// One attempt every identity makes: which subject, and which identities it is the job of.
struct Check {
    name: &'static str,
    /// Identities for which the attempt is their job: not made (their process shows it).
    job_of: &'static [&'static str],
    /// Identities allowed to do it, harmlessly: made, and expected to go through.
    allowed: &'static [&'static str],
    attempt: Attempt,
}

enum Attempt {
    Publish(String, Vec<u8>),
    Subscribe(&'static str),
}

/// Identities that read the log.
const LOG_READERS: &[&str] = &[
    "intake",
    "assessment",
    "review",
    "notification",
    "audit",
    "dashboard",
    "auditor",
];

fn checks() -> Vec<Check> {
    let case = uuid::Uuid::new_v4().simple();
    let decision = serde_json::json!({
        "stream": format!("case/{case}"),
        "events": [{"type": "case.decision_recorded", "version": 1,
                    "data": {"action": "release", "officer": "00000000-0000-0000-0000-000000000001"}}],
        "metadata": {"actor": "00000000-0000-0000-0000-000000000001/officer"}
    });
    let publish =
        |subject: &str, payload: &[u8]| Attempt::Publish(subject.to_owned(), payload.to_vec());
    vec![
        Check {
            name: "read log",
            job_of: &[],
            allowed: LOG_READERS,
            attempt: publish("$JS.API.DIRECT.GET.DOCKET_LOG", br#"{"seq":1}"#),
        },
        Check {
            name: "log info",
            job_of: &[],
            allowed: &[
                "intake",
                "assessment",
                "review",
                "notification",
                "audit",
                "dashboard",
                "auditor",
                "admin",
            ],
            attempt: publish("$JS.API.STREAM.INFO.DOCKET_LOG", b""),
        },
        Check {
            name: "append decision",
            job_of: &["intake", "assessment"],
            allowed: &[],
            attempt: publish(
                &format!("docket.log.case.{case}"),
                &serde_json::to_vec(&decision).unwrap(),
            ),
        },
        Check {
            name: "send command",
            job_of: &["integrator"],
            allowed: &[],
            attempt: publish("docket.cmd.assessment.case_record_decision", b"{}"),
        },
        Check {
            name: "audit record",
            job_of: &["audit"],
            allowed: &[],
            attempt: publish("docket.audit.checkpoints", b"not a checkpoint"),
        },
        Check {
            name: "other's checkpoint",
            job_of: &["review"],
            allowed: &[],
            attempt: publish("$KV.DOCKET_CHECKPOINTS.review-deadlines", b"0"),
        },
        Check {
            name: "create stream",
            job_of: &[],
            allowed: &[],
            attempt: publish(
                "$JS.API.STREAM.CREATE.DOCKET_SHADOW",
                br#"{"name":"DOCKET_SHADOW","subjects":["shadow.>"],"storage":"memory"}"#,
            ),
        },
        Check {
            name: "update log",
            job_of: &[],
            allowed: &[],
            attempt: publish(
                "$JS.API.STREAM.UPDATE.DOCKET_LOG",
                br#"{"name":"DOCKET_LOG","subjects":["docket.log.>"],"storage":"file","max_msgs":1,"deny_delete":false,"deny_purge":false,"allow_direct":true}"#,
            ),
        },
        Check {
            name: "delete log",
            job_of: &[],
            allowed: &[],
            attempt: publish("$JS.API.STREAM.DELETE.DOCKET_LOG", b""),
        },
        Check {
            name: "purge log",
            job_of: &[],
            allowed: &[],
            attempt: publish("$JS.API.STREAM.PURGE.DOCKET_LOG", b"{}"),
        },
        Check {
            name: "delete commit",
            job_of: &[],
            allowed: &[],
            attempt: publish("$JS.API.STREAM.MSG.DELETE.DOCKET_LOG", br#"{"seq":1}"#),
        },
        Check {
            name: "delete audit",
            job_of: &[],
            allowed: &[],
            attempt: publish("$JS.API.STREAM.DELETE.DOCKET_AUDIT", b""),
        },
        Check {
            name: "purge kv",
            job_of: &[],
            allowed: &[],
            attempt: publish("$JS.API.STREAM.PURGE.KV_DOCKET_CHECKPOINTS", b"{}"),
        },
        Check {
            name: "forge reply",
            job_of: &[],
            allowed: &[],
            attempt: publish("_INBOX.integrator.forged", br#"{"position":1}"#),
        },
        Check {
            name: "all inboxes",
            job_of: &[],
            allowed: &[],
            attempt: Attempt::Subscribe("_INBOX.>"),
        },
        Check {
            name: "all commands",
            job_of: &[],
            allowed: &[],
            attempt: Attempt::Subscribe("docket.cmd.>"),
        },
    ]
}

/// Lines of the server's log reporting a permissions violation.
fn violations_logged(server: &docket_testkit::NatsServer) -> Vec<String> {
    std::fs::read_to_string(server.log_path())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("Publish Violation") || l.contains("Subscription Violation"))
        .map(str::to_owned)
        .collect()
}

/// A GET of the server's monitoring endpoint that must answer 200; the body.
async fn monitor_get(url: String, path: &str) -> String {
    let response = docket_testkit::http::get(&format!("{url}{path}"), &[]).await;
    let body = response.text();
    assert!(response.status == 200, "{}\n{body}", response.head());
    body
}

/// Prints the server's permission violations if the test fails, to show what was refused.
struct ShowViolations(std::path::PathBuf);

impl Drop for ShowViolations {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.0).unwrap_or_default();
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| l.contains("Violation") || l.contains("rror"))
                .collect();
            eprintln!(
                "nats-server log, violations and errors:\n{}",
                lines.join("\n")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_identity_does_its_job_and_nothing_else() {
    let text = std::fs::read_to_string(CONFIG).unwrap();
    let accounts = accounts_config(&text);
    let passwords = passwords(&text);
    assert_eq!(
        passwords.keys().map(String::as_str).collect::<Vec<_>>(),
        {
            let mut all = IDENTITIES.to_vec();
            all.sort_unstable();
            all
        },
        "the users of {CONFIG}"
    );
    let server = tokio::task::spawn_blocking(move || {
        docket_testkit::NatsServer::start_with_config(&accounts)
    })
    .await
    .unwrap();
    let _show = ShowViolations(server.log_path().to_owned());
    let url_of = |who: &str| {
        format!(
            "nats://{who}:{}@127.0.0.1:{}",
            passwords[who],
            server.port()
        )
    };

    // Without a user, or with a wrong password, nobody gets in.
    assert!(docket_bus::connect(&server.url(), "anonymous")
        .await
        .is_err());
    let wrong = format!("nats://intake:wrong@127.0.0.1:{}", server.port());
    assert!(docket_bus::connect(&wrong, "wrong-password").await.is_err());

    // A service cannot create the log stream (nor any other)...
    let refused = JetStreamLog::connect_url(&url_of("intake"), JetStreamConfig::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("cannot create the stream"), "{refused}");
    println!("intake before the admin made the log: {refused}");
    let refusals_before = violations_logged(&server);
    assert!(
        refusals_before.len() == 1
            && refusals_before[0].contains("user:intake")
            && refusals_before[0].contains("$JS.API.STREAM.CREATE.DOCKET_LOG"),
        "{refusals_before:?}"
    );

    // ...the admin creates the log stream, the checkpoint bucket and the audit stream, once.
    let admin_log = JetStreamLog::connect_url(&url_of("admin"), JetStreamConfig::default())
        .await
        .unwrap();
    admin_log.checkpoints().await.unwrap();
    admin_log.audit_records().await.unwrap();

    // Every service as its own process, as its own user.
    let receiver = webhook::start(e2e::SECRET).await;
    let audit_dir = tempfile::tempdir().unwrap();
    let audit_dir_arg = audit_dir.path().display().to_string();
    let mut services: Vec<Proc> = ["intake", "assessment", "review"]
        .iter()
        .map(|s| e2e::serve_with(s, &url_of(s), &[]))
        .collect();
    services.push(e2e::serve_with(
        "audit",
        &url_of("audit"),
        &["--audit-dir", &audit_dir_arg],
    ));
    services.push(e2e::serve_with(
        "notification",
        &url_of("notification"),
        &["--webhook-url", &receiver.url],
    ));
    let admin = docket_bus::connect(&url_of("admin"), "permissions-admin")
        .await
        .unwrap();
    e2e::wait_for_services(
        &admin,
        &["intake", "assessment", "review", "audit", "notification"],
    )
    .await;

    // The integrator sends every documented example and gets the documented replies, receipts
    // included (review and assessment ask the audit service for them).
    let integrator = docket_bus::connect(&url_of("integrator"), "permissions-integrator")
        .await
        .unwrap();
    let transport = NatsTransport::new(integrator);
    let mut sent = 0;
    for example in support::examples() {
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
        support::check_reply_except_positions(
            &example,
            raw.headers.get(headers::STATUS) == Some(headers::STATUS_ERROR),
            &reply,
        );
        e2e::check_receipt(&example, &reply);
        sent += 1;
    }
    // The notification service delivered the lifecycle's notifications to the webhook.
    e2e::check_notifications(&receiver).await;

    // The dashboard (read-only) reaches the head and verifies the latest checkpoint.
    let vkey = format!("@{}", audit_dir.path().join("checkpoint.vkey").display());
    let dashboard_dir = tempfile::tempdir().unwrap();
    let mut child = crate::docket_cmd()
        .args(["serve", "dashboard", "--nats", &url_of("dashboard")])
        .args([
            "--log",
            "warn",
            "--http",
            "127.0.0.1:0",
            "--verifier-key",
            &vkey,
        ])
        .arg("--dashboard-dir")
        .arg(dashboard_dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    services.push(Proc(child));
    let dashboard_url = line.trim().strip_prefix("listening ").unwrap().to_owned();
    let head = admin_log.head().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = e2e::http_get(&dashboard_url, "/api/v1/dashboard/overview").await;
        let o: Value = serde_json::from_str(&body).unwrap();
        // Every reaction saved its checkpoint, and the dashboard (its own saved every 10 s)
        // read them all from the bucket.
        let consumers: Vec<&str> = o["consumers"]
            .as_array()
            .map(|list| list.iter().filter_map(|c| c["consumer"].as_str()).collect())
            .unwrap_or_default();
        let reactions = [
            "assessment-guidance",
            "review-deadlines",
            "notification",
            "dashboard",
        ];
        if o["position"].as_u64() >= Some(head)
            && o["integrity"]["verified"] == true
            && reactions.iter().all(|r| consumers.contains(r))
        {
            println!("dashboard: at the head, checkpoint verified, consumers {consumers:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard never caught up: {o}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Who is connected as whom, as the server sees it.
    let connz = monitor_get(server.monitor_url(), "/connz?auth=true&limit=1024").await;
    let connz: Value = serde_json::from_str(&connz).unwrap();
    let mut connections: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in connz["connections"].as_array().unwrap() {
        connections
            .entry(c["authorized_user"].as_str().unwrap_or("?").to_owned())
            .or_default()
            .push(c["name"].as_str().unwrap_or("?").to_owned());
    }
    println!("connections by user: {connections:?}");
    for who in [
        "intake",
        "assessment",
        "review",
        "audit",
        "notification",
        "dashboard",
    ] {
        let names = connections.get(who).cloned().unwrap_or_default();
        assert!(
            names.iter().any(|n| n == "docket-log"),
            "{who} has no log connection of its own: {connections:?}"
        );
    }

    // Doing their jobs, no identity hit a permissions violation.
    let during_jobs = violations_logged(&server).split_off(refusals_before.len());
    assert!(
        during_jobs.is_empty(),
        "permissions violations while the services did their jobs:\n{}",
        during_jobs.join("\n")
    );

    // The services stop, so the log stays still while every identity tries what it must not.
    drop(services);
    let admin_raw = Raw::connect(&url_of("admin"), "admin-state").await;
    let before = admin_raw.stream_state("DOCKET_LOG").await;
    let audit_before = admin_raw.stream_state("DOCKET_AUDIT").await;
    let checks = checks();
    let mut results: BTreeMap<&str, Vec<Outcome>> = BTreeMap::new();
    for who in IDENTITIES {
        let raw = Raw::connect(&url_of(who), who).await;
        let mut row = Vec::new();
        for check in &checks {
            if check.job_of.contains(&who) {
                row.push(Outcome::Job);
                continue;
            }
            row.push(match &check.attempt {
                Attempt::Publish(subject, payload) => raw.publish(subject, payload).await,
                Attempt::Subscribe(subject) => raw.subscribe(subject).await,
            });
        }
        results.insert(who, row);
    }

    // The table: identity × attempt.
    let width = checks
        .iter()
        .map(|c| c.name.len().max(7))
        .collect::<Vec<_>>();
    let mut table = format!("{:<13}", "");
    for (check, w) in checks.iter().zip(&width) {
        table.push_str(&format!(" {:<w$}", check.name));
    }
    table.push_str(&format!(" {:<7}\n", "job"));
    let mut wrong = Vec::new();
    for who in IDENTITIES {
        table.push_str(&format!("{who:<13}"));
        for ((check, outcome), w) in checks.iter().zip(&results[who]).zip(&width) {
            let expected_allowed = check.allowed.contains(&who);
            let ok = match outcome {
                Outcome::Job => true,
                Outcome::Refused => !expected_allowed,
                Outcome::Allowed(_) => expected_allowed,
            };
            let mark = if ok { "" } else { "!" };
            table.push_str(&format!(" {:<w$}", format!("{}{mark}", outcome.cell())));
            if !ok {
                wrong.push(format!("{who} / {}: {outcome:?}", check.name));
            }
        }
        table.push_str(" ok\n");
    }
    println!(
        "\nNATS permissions (deploy/nats-secure.conf), {sent} commands sent by the integrator:\n{table}"
    );

    // Nothing was appended, removed or changed.
    let after = admin_raw.stream_state("DOCKET_LOG").await;
    assert_eq!(before["messages"], after["messages"], "{before} / {after}");
    assert_eq!(before["last_seq"], after["last_seq"], "{before} / {after}");
    assert_eq!(
        after["messages"], after["last_seq"],
        "every commit is still there: {after}"
    );
    assert_eq!(after["first_seq"], 1, "{after}");
    assert_eq!(audit_before, admin_raw.stream_state("DOCKET_AUDIT").await);
    admin_raw.stream_state("KV_DOCKET_CHECKPOINTS").await;
    println!(
        "DOCKET_LOG after the attempts: {} messages, last sequence {}",
        after["messages"], after["last_seq"]
    );
    assert!(
        wrong.is_empty(),
        "unexpected outcomes:\n{}",
        wrong.join("\n")
    );

    // The auditor, read-only, verifies the deployment: exported over NATS, checked offline.
    let violations_before = violations_logged(&server).len();
    let verified = crate::docket_cmd()
        .args(["audit", "verify", "--json", "--nats", &url_of("auditor")])
        .args(["--vkey", &vkey])
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
        report["checkpoints_checked"].as_u64() >= Some(1),
        "{report}"
    );
    let during_verify = violations_logged(&server);
    assert_eq!(
        during_verify.len(),
        violations_before,
        "permissions violations during docket audit verify:\n{}",
        during_verify[violations_before..].join("\n")
    );
    println!(
        "auditor: docket audit verify --nats: ok, {} checkpoints checked",
        report["checkpoints_checked"]
    );
}
