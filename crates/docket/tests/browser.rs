//! The dashboard in a real browser: `docket up` embedded (notifications to a local webhook),
//! seeded by `docket demo`, its page loaded in headless Chromium (Debian's `chromium`, which
//! `scripts/test.sh` installs) driven over the DevTools protocol by `tests/browser/cdp.mjs` under
//! node; every number on the page must equal the JSON API's at the same log position, the
//! drill-down's row count the `/overdue` endpoint's, and a screenshot of the page is saved to
//! `<target>/browser/dashboard.png`.
//!
//! Missing Chromium or node fails the test: it is part of the suite, not optional.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[allow(dead_code, clippy::duplicate_mod)]
#[path = "../../../tests/support/webhook.rs"]
mod webhook;

const DOCKET: &str = env!("CARGO_BIN_EXE_docket");
const CDP_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/cdp.mjs");
const SECRET: &str = "browser-webhook-secret";
/// The drill-down needs a role that may see individual reviews.
const AUDITOR: &str = "00000000-0000-0000-0000-0000000000a1/auditor";
/// The reaction consumers `docket up` runs with a webhook, and the dashboard itself.
const CONSUMERS: &[&str] = &[
    "assessment-guidance",
    "review-deadlines",
    "notification",
    "dashboard",
];
/// Demo size: decisions in most of the 25 offices and reviews decided at both tiers, in a few
/// seconds.
const DEMO_CASES: &str = "120";

#[test]
fn the_dashboard_page_in_chromium_shows_the_json_apis_numbers() {
    let started = Instant::now();
    let chromium = chromium_binary();
    let node = node_binary();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let receiver = runtime.block_on(webhook::start(SECRET));
    let data = tempfile::tempdir().unwrap();
    let mut up = Up::start(data.path(), &receiver.url);
    demo(&up.url);
    let settled = wait_quiescent(&up.url);
    println!(
        "browser: system quiescent at position {} after {:.1} s",
        settled["position"],
        started.elapsed().as_secs_f64()
    );
    check_seeded(&settled);

    // The default view, and one office (the busiest) over the last 30 days.
    let busiest = settled["decisions"]["by_office"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|e| e["count"].as_u64())
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let views = [
        View {
            office: None,
            window: None,
        },
        View {
            office: Some(busiest),
            window: Some("30d"),
        },
    ];

    let profile = tempfile::tempdir().unwrap();
    let mut browser = Chromium::start(&chromium, profile.path());
    let mut cdp = Cdp::start(&node, &browser.address);
    let mut checked = Vec::new();
    let mut shot = None;
    for view in &views {
        let (overview, overdue, page, attempts) = capture(&up.url, &mut cdp, view);
        let report = compare(&page, &overview, &overdue);
        if shot.is_none() {
            // The default view, as a person opening the dashboard sees it.
            let dir = target_dir().join("browser");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("dashboard.png");
            let taken = cdp.request(&json!({"op": "screenshot", "path": path}));
            assert_eq!(taken["ok"], true, "screenshot: {taken}");
            shot = Some((path, taken));
        }
        checked.push((view.describe(), overview, overdue, report, attempts));
    }

    cdp.quit();
    browser.stop();
    up.terminate();
    drop(runtime);

    let mut compared = 0;
    for (view, overview, overdue, report, attempts) in &checked {
        for note in &report.notes {
            println!("browser: {view}: note: {note}");
        }
        assert!(
            report.mismatches.is_empty(),
            "{view}: {} of {} values on the page differ from the JSON API at position {}:\n  {}",
            report.mismatches.len(),
            report.compared,
            overview["position"],
            report.mismatches.join("\n  ")
        );
        println!(
            "browser: {view}: {} values ({} distinct keys) on the page equal the JSON API's at position {} (attempt {attempts}); drill-down rows {}",
            report.compared,
            report.keys,
            overview["position"],
            overdue["reviews"].as_array().map_or(0, Vec::len)
        );
        compared += report.compared;
    }
    let (path, taken) = shot.unwrap();
    println!(
        "browser: compared {compared} values in {} views",
        checked.len()
    );
    println!(
        "browser: screenshot {} ({}x{} px)",
        path.display(),
        taken["width"],
        taken["height"]
    );
    println!("browser: took {:.1} s", started.elapsed().as_secs_f64());
}

/// A view of the dashboard: its filters, as the page takes them from its URL.
#[derive(Debug)]
struct View {
    office: Option<String>,
    window: Option<&'static str>,
}

impl View {
    fn describe(&self) -> String {
        format!(
            "office {}, window {}",
            self.office.as_deref().unwrap_or("all"),
            self.window.unwrap_or("all")
        )
    }

    /// The overview's query (also the page's, which passes it on).
    fn query(&self) -> String {
        let mut q = Vec::new();
        if let Some(office) = &self.office {
            q.push(format!("office={office}"));
        }
        if let Some(window) = self.window {
            q.push(format!("window={window}"));
        }
        q.join("&")
    }

    fn overview(&self, url: &str) -> Value {
        let query = self.query();
        let path = if query.is_empty() {
            "/api/v1/dashboard/overview".to_owned()
        } else {
            format!("/api/v1/dashboard/overview?{query}")
        };
        get_json(url, &path, None)
    }

    fn overdue(&self, url: &str) -> Value {
        let office = self
            .office
            .as_ref()
            .map_or(String::new(), |o| format!("?office={o}"));
        get_json(
            url,
            &format!("/api/v1/dashboard/overdue{office}"),
            Some(crate::keys::token(AUDITOR).as_str()),
        )
    }
}

/// Loads the view in the browser; returns the overview and drill-down the page rendered, what
/// the page showed, and the attempts it took.
///
/// The page renders what the API answered when it fetched. The page load is bracketed by two
/// fetches and accepted only when nothing moved in between: the integrity check (every 5 s)
/// changes `integrity.age_seconds`, and deadline states and overdue hours follow the wall
/// clock. Each attempt starts right after an integrity check.
fn capture(url: &str, cdp: &mut Cdp, view: &View) -> (Value, Value, Value, usize) {
    let query = view.query();
    // The page sends the actor it is given as its Docket-Actor header: a signed token.
    let token = crate::keys::token(AUDITOR);
    let page_url = if query.is_empty() {
        format!("{url}/?actor={token}")
    } else {
        format!("{url}/?{query}&actor={token}")
    };
    for attempt in 1..=5 {
        wait_for_integrity_check(url);
        let before = (view.overview(url), view.overdue(url));
        let page = cdp.load(&page_url);
        let after = (view.overview(url), view.overdue(url));
        if without_request_time(&before.0) == without_request_time(&after.0) && before.1 == after.1
        {
            assert_eq!(
                before.0["filter"]["office"].as_str(),
                view.office.as_deref(),
                "{}",
                before.0["filter"]
            );
            return (before.0, before.1, page, attempt);
        }
        println!(
            "browser: {}: attempt {attempt}: the API's answer changed during the page load ({}); again",
            view.describe(),
            differences(&before, &after).join(", ")
        );
    }
    panic!(
        "{}: the API's answer kept changing while the page loaded",
        view.describe()
    );
}

// ---------- what the page showed against the JSON ----------

#[derive(Debug, Default)]
struct Report {
    /// Page elements compared.
    compared: usize,
    /// Distinct data-keys.
    keys: usize,
    mismatches: Vec<String>,
    notes: Vec<String>,
}

/// Checks the page's load against the overview and the drill-down fetched at the same position.
fn compare(page: &Value, overview: &Value, overdue: &Value) -> Report {
    let mut report = Report::default();
    let exceptions = page["exceptions"].as_array().cloned().unwrap_or_default();
    assert!(
        exceptions.is_empty(),
        "the page threw: {exceptions:?}; console: {}",
        page["console"]
    );
    assert!(
        page["alert"].is_null(),
        "the page shows an error: {}",
        page["alert"]
    );
    assert!(
        page["overdue_error"].is_null(),
        "the drill-down was refused: {}",
        page["overdue_error"]
    );
    assert_eq!(
        page["loaded"].as_str(),
        Some(overview["position"].to_string().as_str()),
        "body[data-loaded] is the overview's position"
    );
    let rows = overdue["reviews"].as_array().unwrap();
    assert_eq!(
        page["overdue_count"].as_str(),
        Some(rows.len().to_string().as_str()),
        "the drill-down table's data-overdue-count is the /overdue endpoint's count"
    );

    for line in page["console"].as_array().into_iter().flatten() {
        report.notes.push(format!(
            "page console: {}",
            line.as_str().unwrap_or_default()
        ));
    }
    let items = page["items"].as_array().unwrap();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for item in items {
        let key = item["key"].as_str().unwrap();
        let text = item["text"].as_str().unwrap_or_default();
        let value = item["value"].as_str();
        *seen.entry(key.to_owned()).or_default() += 1;
        if item["shown"] == false && key != "departures.rate" {
            report
                .notes
                .push(format!("{key} is on the page but not visible"));
        }
        let expected = match key.strip_prefix("overdue.") {
            Some(rest) => resolve(overdue, rest),
            None => resolve(overview, key),
        };
        report.compared += 1;
        match expected {
            None => report.mismatches.push(format!(
                "{key}: page {text:?} (data-value {value:?}), not in the JSON"
            )),
            Some(expected) => {
                if let Err(why) = same_number(text, value, expected) {
                    report.mismatches.push(format!(
                        "{key}: page {text:?} (data-value {value:?}), JSON {expected}: {why}"
                    ));
                }
            }
        }
    }
    report.keys = seen.len();

    // The figures the page exists for must be there.
    let mut required: Vec<String> = [
        "position",
        "head",
        "review_queue.open",
        "review_queue.by_deadline.overdue",
        "review_queue.by_deadline.due_soon",
        "decisions.total",
        "departures.total",
        "deadlines_missed.total",
        "integrity.checkpoint_size",
        "overdue.position",
    ]
    .iter()
    .map(|k| (*k).to_owned())
    .collect();
    for n in ["queued", "delivered", "retrying", "abandoned", "pending"] {
        required.push(format!("notifications.{n}"));
    }
    for office in overview["decisions"]["by_office"].as_array().unwrap() {
        required.push(format!(
            "decisions.by_office.{}",
            office["key"].as_str().unwrap()
        ));
    }
    for tier in overview["turnaround"].as_array().unwrap() {
        let t = tier["tier"].as_str().unwrap();
        for field in ["decided", "median_hours", "p90_hours"] {
            required.push(format!("turnaround.{t}.{field}"));
        }
        for outcome in tier["outcomes"].as_object().unwrap().keys() {
            required.push(format!("turnaround.{t}.outcomes.{outcome}"));
        }
    }
    for consumer in overview["consumers"].as_array().unwrap() {
        let c = consumer["consumer"].as_str().unwrap();
        required.push(format!("consumers.{c}.position"));
        required.push(format!("consumers.{c}.lag"));
    }
    for row in rows {
        required.push(format!(
            "overdue.reviews.{}.overdue_hours",
            row["review"].as_str().unwrap()
        ));
    }
    for key in &required {
        if !seen.contains_key(key) {
            let expected = match key.strip_prefix("overdue.") {
                Some(rest) => resolve(overdue, rest),
                None => resolve(overview, key),
            };
            report.mismatches.push(format!(
                "{key}: not on the page (JSON {})",
                expected.map_or("absent".to_owned(), Value::to_string)
            ));
        }
    }

    // Numbers of the JSON the page does not show as a tagged number: noted, not required.
    let mut leaves = Vec::new();
    numeric_leaves(overview, String::new(), &mut leaves);
    let unshown: BTreeSet<&String> = leaves.iter().filter(|k| !seen.contains_key(*k)).collect();
    if !unshown.is_empty() {
        report.notes.push(format!(
            "JSON numbers not on the page as data-key: {}",
            unshown.into_iter().cloned().collect::<Vec<_>>().join(", ")
        ));
    }
    report
}

/// The JSON value at a page's data-key: objects by field, lists by their element's `key`
/// (giving its `count`), `tier`, `consumer` or `review`.
fn resolve<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = root;
    for segment in path.split('.') {
        current = match current {
            Value::Object(map) => map.get(segment)?,
            Value::Array(list) => {
                let item = list.iter().find(|e| {
                    ["key", "tier", "consumer", "review"]
                        .iter()
                        .any(|f| e.get(*f).and_then(Value::as_str) == Some(segment))
                })?;
                match (item.get("key"), item.get("count")) {
                    (Some(_), Some(count)) => count,
                    _ => item,
                }
            }
            _ => return None,
        };
    }
    Some(current)
}

/// Every numeric leaf of the overview as the page would key it.
fn numeric_leaves(value: &Value, path: String, out: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match value {
        Value::Number(_) => out.push(path),
        Value::Object(map) => {
            for (k, v) in map {
                numeric_leaves(v, join(k), out);
            }
        }
        Value::Array(list) => {
            for item in list {
                if let (Some(k), Some(count)) = (item["key"].as_str(), item.get("count")) {
                    numeric_leaves(count, join(k), out);
                } else if let Some(k) = ["tier", "consumer", "review"]
                    .iter()
                    .find_map(|f| item[*f].as_str())
                {
                    numeric_leaves(item, join(k), out);
                }
            }
        }
        _ => {}
    }
}

/// An element's text and data-value against the JSON number: integers exactly as text and
/// data-value; floats exactly by data-value, and the text that value to one decimal; null as
/// "—" and data-value "null".
fn same_number(text: &str, value: Option<&str>, expected: &Value) -> Result<(), String> {
    match expected {
        Value::Null => {
            if text == "—" && value == Some("null") {
                Ok(())
            } else {
                Err("expected \"—\" and data-value \"null\"".into())
            }
        }
        Value::Number(n) if n.is_u64() || n.is_i64() => {
            let want = n.to_string();
            if text != want {
                Err(format!("text is not {want}"))
            } else if value != Some(want.as_str()) {
                Err(format!("data-value is not {want}"))
            } else {
                Ok(())
            }
        }
        Value::Number(n) => {
            let want = n.as_f64().unwrap();
            let got: f64 = value
                .and_then(|v| v.parse().ok())
                .ok_or("no numeric data-value")?;
            if got != want {
                return Err(format!("data-value {got} is not {want}"));
            }
            let one_decimal = text
                .split_once('.')
                .is_some_and(|(_, d)| d.len() == 1 && d.bytes().all(|b| b.is_ascii_digit()));
            let shown: f64 = text.parse().map_err(|_| "text is not a number")?;
            if !one_decimal || (shown - want).abs() > 0.05 + 1e-9 {
                return Err(format!("text is not {want} to one decimal"));
            }
            Ok(())
        }
        other => Err(format!("the JSON value {other} is not a number")),
    }
}

/// The overview without the time of the answer: `as_of`, and the window's start counted back
/// from it (`filter.from`).
fn without_request_time(overview: &Value) -> Value {
    let mut v = overview.clone();
    if let Some(map) = v.as_object_mut() {
        map.remove("as_of");
    }
    if let Some(filter) = v.get_mut("filter").and_then(Value::as_object_mut) {
        filter.remove("from");
    }
    v
}

/// The numeric leaves that differ between two (overview, overdue) answers.
fn differences(a: &(Value, Value), b: &(Value, Value)) -> Vec<String> {
    let mut keys = Vec::new();
    numeric_leaves(&a.0, String::new(), &mut keys);
    let mut out: Vec<String> = keys
        .iter()
        .filter(|k| resolve(&a.0, k) != resolve(&b.0, k))
        .map(|k| {
            format!(
                "{k} {} -> {}",
                resolve(&a.0, k).unwrap_or(&Value::Null),
                resolve(&b.0, k).unwrap_or(&Value::Null)
            )
        })
        .collect();
    if a.1 != b.1 {
        out.push("the drill-down".into());
    }
    if out.is_empty() {
        out.push("non-numeric fields".into());
    }
    out
}

// ---------- the seeded system ----------

/// `docket up` embedded on a free port, notifications to `webhook`.
#[derive(Debug)]
struct Up {
    child: Option<Child>,
    url: String,
}

impl Up {
    fn start(data: &Path, webhook: &str) -> Up {
        let mut child = crate::docket_cmd()
            .args(["up", "--http", "127.0.0.1:0", "--log", "warn"])
            .args(["--checkpoint-every-secs", "1", "--webhook-url", webhook])
            .arg("--data-dir")
            .arg(data)
            .env("DOCKET_WEBHOOK_SECRET", SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("docket up: unexpected first line {line:?}"))
            .to_owned();
        Up {
            child: Some(child),
            url,
        }
    }

    /// SIGTERM; it must stop cleanly within 20 s.
    fn terminate(&mut self) {
        let mut child = self.child.take().unwrap();
        signal(&child.id().to_string(), "TERM");
        let exit = wait_until(&mut child, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("docket up did not stop on SIGTERM"));
        assert!(exit.success(), "docket up exited with {exit}");
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn demo(url: &str) {
    let out = crate::docket_cmd()
        .args([
            "demo",
            "--cases",
            DEMO_CASES,
            "--concurrency",
            "8",
            "--http",
            url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docket demo failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    for line in summary.lines().take(12) {
        println!("browser: demo: {line}");
    }
}

/// Waits until the system stopped moving: the dashboard at the log head, every consumer caught
/// up, every notification delivered, the latest checkpoint covering the head and verified, and
/// the overview (but its times) unchanged for 2 s.
fn wait_quiescent(url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut stable_since: Option<(Instant, Value)> = None;
    loop {
        let o = overview_json(url);
        let head = &o["head"];
        let settled = o["position"] == *head
            && o["integrity"]["checkpoint_size"] == *head
            && o["integrity"]["verified"] == true
            && CONSUMERS.iter().all(|c| {
                o["consumers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["consumer"] == *c && e["lag"] == 0)
            })
            && o["notifications"]["pending"] == 0
            && o["notifications"]["retrying"] == 0;
        let mut stable = without_request_time(&o);
        stable["integrity"]["age_seconds"] = Value::Null;
        stable["integrity"]["checked_at"] = Value::Null;
        if !settled {
            stable_since = None;
        } else {
            match &stable_since {
                Some((since, seen)) if *seen == stable => {
                    if since.elapsed() >= Duration::from_secs(2) {
                        return o;
                    }
                }
                _ => stable_since = Some((Instant::now(), stable)),
            }
        }
        assert!(
            Instant::now() < deadline,
            "the system did not become quiescent within 90 s; last overview: {o}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The demo gave the page something to show.
fn check_seeded(o: &Value) {
    let offices = o["decisions"]["by_office"].as_array().unwrap().len();
    assert!(offices >= 10, "decisions in only {offices} offices: {o}");
    assert!(o["review_queue"]["open"].as_u64().unwrap() > 0, "{o}");
    for tier in ["tier1", "tier2"] {
        let row = o["turnaround"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tier"] == tier)
            .unwrap_or_else(|| panic!("no turnaround for {tier}: {o}"));
        assert!(row["decided"].as_u64().unwrap() > 0, "{tier}: {row}");
    }
    assert!(o["notifications"]["delivered"].as_u64().unwrap() > 0, "{o}");
}

/// Returns once the dashboard checked the latest checkpoint again (it does every 5 s), so that
/// what follows likely fits before the next check.
fn wait_for_integrity_check(url: &str) {
    let first = overview_json(url)["integrity"]["checked_at"].clone();
    let deadline = Instant::now() + Duration::from_secs(15);
    while overview_json(url)["integrity"]["checked_at"] == first {
        assert!(
            Instant::now() < deadline,
            "the dashboard did not check its integrity for 15 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn overview_json(url: &str) -> Value {
    get_json(url, "/api/v1/dashboard/overview", None)
}

/// A GET of JSON that must answer 200, with the `Docket-Actor` header if given.
fn get_json(url: &str, path: &str, actor: Option<&str>) -> Value {
    let mut headers = vec![("Accept", "application/json")];
    headers.extend(actor.map(|a| ("Docket-Actor", a)));
    let response = docket_testkit::http::blocking_get(&format!("{url}{path}"), &headers);
    let (head, body) = (response.head(), response.text());
    assert_eq!(
        head.split(' ').nth(1),
        Some("200"),
        "GET {path}: {head}\n{body}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

// ---------- the browser ----------

/// Debian's chromium, at /usr/bin/chromium or on PATH.
fn chromium_binary() -> PathBuf {
    let fixed = PathBuf::from("/usr/bin/chromium");
    if fixed.is_file() {
        return fixed;
    }
    on_path("chromium").unwrap_or_else(|| {
        panic!(
            "chromium is not installed (neither /usr/bin/chromium nor `chromium` on PATH): \
             the browser test needs it; scripts/test.sh installs it \
             (apt-get install -y chromium)"
        )
    })
}

/// node >= 20 (its global WebSocket drives the DevTools protocol).
fn node_binary() -> PathBuf {
    let node = on_path("node").unwrap_or_else(|| {
        panic!("node is not on PATH: the browser test drives Chromium with tests/browser/cdp.mjs under node >= 20")
    });
    let out = Command::new(&node).arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "{} is {version:?}: the browser test needs node >= 20",
        node.display()
    );
    node
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Where cargo puts its output: `CARGO_TARGET_DIR` if absolute, else two levels above the
/// `docket` binary (`<target>/<profile>/docket`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        if dir.is_absolute() {
            return dir;
        }
    }
    Path::new(DOCKET)
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_owned()
}

/// Headless Chromium in its own process group, with its DevTools address.
#[derive(Debug)]
struct Chromium {
    child: Option<Child>,
    address: String,
    /// What it wrote on standard error, for a failure's message.
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Chromium {
    fn start(binary: &Path, profile: &Path) -> Chromium {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap());
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("DevTools listening on ws://") {
                    let _ = tx.send(rest.split('/').next().unwrap_or_default().to_owned());
                }
                let mut kept = kept.lock().unwrap();
                if kept.len() < 500 {
                    kept.push(line);
                }
            }
        });
        let mut browser = Chromium {
            child: Some(child),
            address: String::new(),
            stderr,
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(address) => browser.address = address,
            Err(_) => panic!(
                "{} printed no DevTools address within 60 s:\n{}",
                binary.display(),
                browser.stderr.lock().unwrap().join("\n")
            ),
        }
        browser
    }

    /// SIGTERM to its process group (the browser closes its renderers), SIGKILL if it lingers.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        signal(&group, "TERM");
        if wait_until(&mut child, Duration::from_secs(10)).is_none() {
            signal(&group, "KILL");
            let _ = child.wait();
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `tests/browser/cdp.mjs` under node, attached to the browser's page.
#[derive(Debug)]
struct Cdp {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Cdp {
    fn start(node: &Path, address: &str) -> Cdp {
        let mut child = Command::new(node)
            .arg("--experimental-websocket")
            .arg("--no-warnings")
            .arg(CDP_SCRIPT)
            .arg(address)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} {CDP_SCRIPT}: {e}", node.display()));
        let (tx, lines) = mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut cdp = Cdp {
            child: Some(child),
            stdin,
            lines,
        };
        let ready = cdp.answer();
        assert_eq!(ready["ready"], true, "cdp.mjs: {ready}");
        cdp
    }

    fn answer(&mut self) -> Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("cdp.mjs answered nothing within 60 s ({e})"));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("cdp.mjs: {e}: {line}"))
    }

    fn request(&mut self, request: &Value) -> Value {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{request}").unwrap();
        stdin.flush().unwrap();
        self.answer()
    }

    /// Opens `url` and returns what the page showed once it settled.
    fn load(&mut self, url: &str) -> Value {
        let page = self.request(&json!({"op": "load", "url": url, "timeout_ms": 20000}));
        assert_eq!(page["ok"], true, "loading {url}: {}", page["error"]);
        page
    }

    fn quit(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = writeln!(stdin, "{}", json!({"op": "quit"}));
        }
        if let Some(mut child) = self.child.take() {
            if wait_until(&mut child, Duration::from_secs(10)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Cdp {
    fn drop(&mut self) {
        self.quit();
    }
}

/// `kill -s <name> -- <target>` (a pid, or a process group as `-pgid`).
fn signal(target: &str, name: &str) {
    let _ = Command::new("kill")
        .args(["-s", name, "--", target])
        .stderr(Stdio::null())
        .status();
}

fn wait_until(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            return Some(exit);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
