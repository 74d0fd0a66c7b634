//! A webhook endpoint that is slow, then down, then back: a controllable receiver (answers,
//! answers slowly, answers 503, or refuses connections), and the scenario that runs the
//! notification service against it while commands keep flowing to the other services.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use docket_bus::NatsTransport;
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::AnyCheckpoints;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use super::checker::{
    self, check_commands, check_guidance, check_notifications, p50_max, settle, Generator, Load,
    Plan, Report, Target,
};
use super::processes::{log_tails, serve, wait_ready};
use crate::e2e::{http_get, Proc, SECRET};

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// 204 at once.
    Ok,
    /// 204 after this long.
    Slow(Duration),
    /// This status at once.
    Status(u16),
    /// The port refuses connections, and open connections are closed on their next request.
    Down,
}

/// One request the receiver read in full.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    /// `Docket-Notification-Id`.
    pub(crate) id: String,
    /// `Docket-Signature` matched the body.
    pub(crate) signed: bool,
    /// How it was answered.
    pub(crate) mode: Mode,
}

/// A webhook receiver on 127.0.0.1 whose behaviour the test switches.
#[derive(Clone, Debug)]
pub(crate) struct Receiver {
    pub(crate) url: String,
    address: SocketAddr,
    secret: &'static str,
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Vec<Received>>>,
    acceptor: Arc<Mutex<Option<JoinHandle<()>>>>,
}

fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}

impl Receiver {
    pub(crate) async fn start(secret: &'static str) -> Receiver {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = listener.local_addr().unwrap();
        let receiver = Receiver {
            url: format!("http://{address}/hook"),
            address,
            secret,
            mode: Arc::new(Mutex::new(Mode::Ok)),
            received: Arc::new(Mutex::new(Vec::new())),
            acceptor: Arc::new(Mutex::new(None)),
        };
        receiver.accept_on(listener);
        receiver
    }

    fn accept_on(&self, listener: TcpListener) {
        let (mode, received, secret) = (self.mode.clone(), self.received.clone(), self.secret);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(
                    stream,
                    secret,
                    mode.clone(),
                    received.clone(),
                ));
            }
        });
        *self.acceptor.lock().unwrap() = Some(task);
    }

    /// Switches the behaviour; going down closes the port, coming back opens it again.
    pub(crate) async fn set_mode(&self, new: Mode) {
        let old = std::mem::replace(&mut *self.mode.lock().unwrap(), new);
        if new == Mode::Down && old != Mode::Down {
            let task = self.acceptor.lock().unwrap().take();
            if let Some(task) = task {
                task.abort();
                let _ = task.await; // the listener is dropped: connections are refused
            }
        }
        if old == Mode::Down && new != Mode::Down {
            let deadline = Instant::now() + Duration::from_secs(5);
            let listener = loop {
                match bind(self.address) {
                    Ok(l) => break l,
                    Err(e) => {
                        assert!(Instant::now() < deadline, "rebinding {}: {e}", self.address);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            };
            self.accept_on(listener);
        }
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    secret: &'static str,
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Vec<Received>>>,
) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                l.split_once(':')
                    .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_owned())
            })
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + 4 + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end + 4..head_end + 4 + length].to_vec();
        buf.drain(..head_end + 4 + length);
        let now = *mode.lock().unwrap();
        if now == Mode::Down {
            return; // hang up without an answer
        }
        let signed = header(docket_notify::SIGNATURE_HEADER)
            .is_some_and(|s| docket_notify::verify_signature(secret.as_bytes(), &body, &s));
        received.lock().unwrap().push(Received {
            id: header(docket_notify::ID_HEADER).unwrap_or_default(),
            signed,
            mode: now,
        });
        let answer = match now {
            Mode::Slow(d) => {
                tokio::time::sleep(d).await;
                "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n".to_owned()
            }
            Mode::Status(s) => format!("HTTP/1.1 {s} Unavailable\r\ncontent-length: 0\r\n\r\n"),
            _ => "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n".to_owned(),
        };
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// One reading of the dashboard's notification figures.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    notifications: Value,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_slow_then_down_then_back() {
    let _serial = super::SERIAL.lock().await;
    let started = Instant::now();
    let server = tokio::task::spawn_blocking(docket_testkit::NatsServer::start)
        .await
        .unwrap();
    let url = server.url();
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(SECRET).await;
    let audit_dir = dir.path().join("audit").display().to_string();
    let _services: Vec<Proc> = vec![
        serve("intake", &url, &[], dir.path()),
        serve("assessment", &url, &[], dir.path()),
        serve("review", &url, &[], dir.path()),
        serve("audit", &url, &["--audit-dir", &audit_dir], dir.path()),
    ];
    // The dashboard, as operations staff see it.
    let mut child = crate::docket_cmd()
        .args(["serve", "dashboard", "--nats", &url, "--log", "warn"])
        .args(["--http", "127.0.0.1:0", "--dashboard-dir"])
        .arg(dir.path().join("dashboard"))
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _dashboard = Proc(child);
    let dashboard = tokio::task::block_in_place(|| {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        line.trim().strip_prefix("listening ").unwrap().to_owned()
    });

    // The notification service, with a short attempt timeout and backoff so that slow answers
    // fail and attempts run out within the test (`docket serve notification` has the defaults:
    // 10 s per attempt, backoff from 1 s doubling, 8 attempts; they are not flags).
    let notify_log = JetStreamLog::connect_url(&url, JetStreamConfig::default())
        .await
        .unwrap();
    let checkpoints = AnyCheckpoints::Kv(Box::new(notify_log.checkpoints().await.unwrap()));
    let config = docket_notify::NotifyConfig {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(300),
        max_backoff: Duration::from_secs(2),
        request_timeout: Duration::from_secs(1),
        ..docket_notify::NotifyConfig::new(receiver.url.clone(), SECRET)
    };
    let (stop_notify, stopped) = tokio::sync::watch::channel(false);
    let notify = tokio::spawn(docket_notify::run(
        config.clone(),
        notify_log,
        checkpoints,
        Arc::new(docket_runtime::clock::SystemClock),
        docket_notify::Metrics::default(),
        stopped,
    ));

    let client = docket_bus::connect(&url, "faults-webhook").await.unwrap();
    wait_ready(
        &client,
        &["intake", "assessment", "review", "audit"],
        dir.path(),
    )
    .await;
    let gen = Generator::new(Target::Nats(NatsTransport::new(client)), "hook");
    // Each unit: a decided case and three reviews requested of it (three notifications).
    let plan = Plan {
        assess: true,
        decide: true,
        later_records: 0,
        reviews: 3,
        pause: Duration::from_millis(100),
    };
    let load = Load::start(&gen, plan, 2, 0);
    let watching = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let watcher = {
        let (watching, dashboard) = (watching.clone(), dashboard.clone());
        tokio::spawn(async move {
            loop {
                let body = http_get(&dashboard, "/api/v1/dashboard/overview").await;
                let o: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                watching.lock().unwrap().push(Seen {
                    at: Instant::now(),
                    notifications: o["notifications"].clone(),
                });
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };

    let phases = [
        ("ok", Mode::Ok, 2),
        (
            "slow_under_timeout",
            Mode::Slow(Duration::from_millis(700)),
            2,
        ),
        (
            "slow_over_timeout",
            Mode::Slow(Duration::from_millis(1500)),
            3,
        ),
        ("http_503", Mode::Status(503), 3),
        ("refused", Mode::Down, 3),
        ("back", Mode::Ok, 3),
    ];
    let mut outage = (started, started);
    let mut phase_log = Vec::new();
    for (name, mode, secs) in phases {
        receiver.set_mode(mode).await;
        let at = Instant::now();
        if name == "slow_over_timeout" {
            outage.0 = at;
        }
        if name == "back" {
            outage.1 = at;
        }
        phase_log.push(format!("{name}:{secs}s"));
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }
    let units = load.finish().await;

    let log = JetStreamLog::connect_url(&url, JetStreamConfig::default())
        .await
        .unwrap();
    let (commits, settled) = settle(&log, Duration::from_secs(60), |commits| {
        let n = checker::notifications(commits);
        n.unqueued() == 0 && n.unfinished() == 0
    })
    .await;
    // The dashboard comes to the same counts, none left retrying.
    let deadline = Instant::now() + Duration::from_secs(30);
    let final_view = loop {
        let body = http_get(&dashboard, "/api/v1/dashboard/overview").await;
        let o: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let n = o["notifications"].clone();
        let finished = n["delivered"].as_u64().unwrap_or(0) + n["abandoned"].as_u64().unwrap_or(0);
        if (n["queued"].as_u64() == Some(finished) && n["retrying"] == 0 && n["pending"] == 0)
            || Instant::now() > deadline
        {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    watcher.abort();
    stop_notify.send(true).unwrap();
    notify.await.unwrap().unwrap();

    let mut report = Report::new("webhook-slow-down-back");
    check_commands(&mut report, &gen, &gen.acked(), &commits);
    check_guidance(&mut report, &commits);
    check_notifications(&mut report, &commits, true);
    let n = checker::notifications(&commits);
    let failed: usize = n.failed_attempts.values().map(Vec::len).sum();
    let after_retry = n
        .delivered
        .values()
        .filter(|a| a.iter().any(|&x| x > 1))
        .count();
    // Visible as retrying: the dashboard showed notifications retrying during the outage.
    let seen = watching.lock().unwrap().clone();
    let max_retrying = seen
        .iter()
        .filter(|s| s.at >= outage.0)
        .filter_map(|s| s.notifications["retrying"].as_u64())
        .max()
        .unwrap_or(0);
    // No other service stalled: commands sent during the outage were answered as quickly.
    let trips = gen.trips();
    let during: Vec<Duration> = trips
        .iter()
        .filter(|t| t.started >= outage.0 && t.started < outage.1)
        .map(|t| t.took)
        .collect();
    let before: Vec<Duration> = trips
        .iter()
        .filter(|t| t.started < outage.0)
        .map(|t| t.took)
        .collect();
    let (b50, bmax) = p50_max(before);
    let (d50, dmax) = p50_max(during.clone());
    // What the endpoint took in (answered 2xx, if perhaps after the sender gave up): at least
    // once, so some twice.
    let received = receiver.received();
    let accepted: Vec<&Received> = received
        .iter()
        .filter(|r| matches!(r.mode, Mode::Ok | Mode::Slow(_)))
        .collect();
    let unique: std::collections::HashSet<&str> = accepted.iter().map(|r| r.id.as_str()).collect();
    let answered_slowly = received
        .iter()
        .filter(|r| matches!(r.mode, Mode::Slow(_)))
        .count();
    report.figure("phases", phase_log.join(","));
    report.figure("units", units);
    report.figure("dashboard_max_retrying", max_retrying);
    report.figure(
        "dashboard_final",
        format!(
            "queued:{}/delivered:{}/abandoned:{}/retrying:{}",
            final_view["queued"],
            final_view["delivered"],
            final_view["abandoned"],
            final_view["retrying"]
        ),
    );
    report.figure("commands_during_outage", during.len());
    report.figure("rtt_before_p50_ms", b50);
    report.figure("rtt_before_max_ms", bmax);
    report.figure("rtt_outage_p50_ms", d50);
    report.figure("rtt_outage_max_ms", dmax);
    report.figure("receiver_requests", received.len());
    report.figure("receiver_slow_answers", answered_slowly);
    report.figure("receiver_accepted", accepted.len());
    report.figure("receiver_redeliveries", accepted.len() - unique.len());
    report.figure("settle_ms", settled.as_millis());
    report.figure("refused", gen.refused().len());
    report.figure("secs", started.elapsed().as_secs());
    for refusal in gen.refused() {
        report.problem(format!("REFUSED {refusal}"));
    }
    // What the scenario must show, besides nothing lost or duplicated.
    let mut must = |ok: bool, what: &str| {
        if !ok {
            report.problem(what.to_owned());
        }
    };
    must(failed > 0, "no attempt failed during the outage");
    must(after_retry > 0, "nothing delivered after a retry");
    must(!n.abandoned.is_empty(), "nothing abandoned");
    must(max_retrying > 0, "the dashboard never showed retrying");
    must(
        final_view["abandoned"].as_u64() == Some(n.abandoned.len() as u64)
            && final_view["delivered"].as_u64() == Some(n.delivered.len() as u64)
            && final_view["retrying"] == 0,
        "the dashboard's final counts differ from the log's",
    );
    must(during.len() >= 20, "too few commands during the outage");
    must(
        d50 < 1000 && dmax < 5000,
        "commands stalled while the webhook was failing",
    );
    let logs = log_tails(dir.path());
    report.print_and_assert(&logs);
}
