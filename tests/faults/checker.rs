//! The fault suite's load generator and checker. The generator sends real commands, each with
//! an idempotency key of its own, retries `unavailable`, `conflict` and broken connections with
//! the SAME key (how a client gets exactly-once effects), and records every command whose reply
//! said ok. The checker reads the whole log afterwards and counts what was acknowledged, what
//! of it is missing (`lost`) and what is in the log more than once (`duplicated`: a key committed
//! twice, or the same logical effect twice — a case opened twice, a record attached twice, a
//! guidance recomputation with no change to cause it, a notification queued or delivered twice).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Display;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use docket_bus::{headers, Headers, NatsTransport, Transport};
use docket_domain::case::CaseEvent;
use docket_domain::events::DomainEvent;
use docket_domain::CommandKind;
use docket_log::{EventLog, RecordedCommit};
use docket_notify::events::NotificationEvent;
use serde_json::{json, Value};

/// The `Docket-Actor` header's value for `actor` (`<person uuid>/<role>`). The one place that
/// builds it, so that signed actor tokens replace it here only.
pub(crate) fn actor_header(actor: &str) -> String {
    crate::keys::token(actor)
}

/// The suite's seed: `DOCKET_FAULTS_SEED`, or 7. Printed by every scenario that uses it.
pub(crate) fn seed() -> u64 {
    std::env::var("DOCKET_FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
}

/// SplitMix64: a small seeded generator (the `docket` crate has no `rand` dependency).
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A duration uniformly in `[lo, hi]` milliseconds.
    pub(crate) fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next_u64() % (hi - lo + 1))
    }
}

/// Where commands go: NATS request/reply, or `docket up`'s HTTP endpoint (whose address
/// changes when it is restarted on port 0, hence shared).
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Nats(NatsTransport),
    Http(Arc<Mutex<String>>),
}

/// What one attempt came back with.
enum Answer {
    Ok(Value),
    /// Unavailable, conflict, a broken connection or no reply: send again with the same key.
    Retry(String),
    /// Any other error: the workload is valid, so this is a finding.
    Refused(Value),
}

/// One command whose reply said ok.
#[derive(Clone, Debug)]
pub(crate) struct Acked {
    pub(crate) key: String,
    pub(crate) command: String,
    pub(crate) stream: String,
    pub(crate) position: u64,
    pub(crate) at: Instant,
}

/// One command's round trip, retries included.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Trip {
    pub(crate) started: Instant,
    pub(crate) took: Duration,
}

/// The load generator's record of what it was told.
#[derive(Debug)]
pub(crate) struct Generator {
    target: Target,
    /// Prefix of every idempotency key of this run.
    pub(crate) run: String,
    acked: Mutex<Vec<Acked>>,
    refused: Mutex<Vec<String>>,
    retries: AtomicU64,
    trips: Mutex<Vec<Trip>>,
}

impl Generator {
    pub(crate) fn new(target: Target, run: &str) -> Arc<Generator> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        Arc::new(Generator {
            target,
            run: format!("{run}-{}", &nonce[..8]),
            acked: Mutex::new(Vec::new()),
            refused: Mutex::new(Vec::new()),
            retries: AtomicU64::new(0),
            trips: Mutex::new(Vec::new()),
        })
    }

    pub(crate) fn acked(&self) -> Vec<Acked> {
        self.acked.lock().unwrap().clone()
    }

    pub(crate) fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    pub(crate) fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }

    pub(crate) fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    pub(crate) fn trips(&self) -> Vec<Trip> {
        self.trips.lock().unwrap().clone()
    }

    /// Waits until some command is acknowledged after `since`; how long after `since` that was.
    pub(crate) async fn next_ack_after(&self, since: Instant, limit: Duration) -> Duration {
        let deadline = Instant::now() + limit;
        loop {
            let first = self
                .acked
                .lock()
                .unwrap()
                .iter()
                .filter(|a| a.at > since)
                .map(|a| a.at)
                .min();
            if let Some(at) = first {
                return at - since;
            }
            assert!(
                Instant::now() < deadline,
                "no command acknowledged within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Sends `command` until it is answered ok (recorded) or refused (an error), retrying with
    /// the same idempotency key for up to two minutes.
    pub(crate) async fn send(
        &self,
        command: &str,
        actor: &str,
        stream: String,
        key: &str,
        body: Value,
    ) -> Result<Value, String> {
        let key = format!("{}-{key}", self.run);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(120);
        let body = Bytes::from(serde_json::to_vec(&body).unwrap());
        let mut last = String::new();
        while Instant::now() < deadline {
            match attempt(&self.target, command, actor, &key, body.clone()).await {
                Answer::Ok(reply) => {
                    let Some(position) = reply["position"].as_u64() else {
                        return Err(format!("{command} {key}: ok without position: {reply}"));
                    };
                    let at = Instant::now();
                    self.trips.lock().unwrap().push(Trip {
                        started,
                        took: at - started,
                    });
                    self.acked.lock().unwrap().push(Acked {
                        key,
                        command: command.to_owned(),
                        stream,
                        position,
                        at,
                    });
                    return Ok(reply);
                }
                Answer::Refused(reply) => {
                    let what = format!("{command} {key}: refused {reply}");
                    self.refused.lock().unwrap().push(what.clone());
                    return Err(what);
                }
                Answer::Retry(why) => {
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    last = why;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        let what = format!("{command} {key}: still not answered after 120 s ({last})");
        self.refused.lock().unwrap().push(what.clone());
        Err(what)
    }
}

async fn attempt(target: &Target, command: &str, actor: &str, key: &str, body: Bytes) -> Answer {
    let retryable = |reply: &Value| {
        matches!(
            reply["code"].as_str(),
            Some(docket_bus::codes::UNAVAILABLE | docket_bus::codes::CONFLICT)
        )
    };
    match target {
        Target::Nats(transport) => {
            let Some(kind) = CommandKind::ALL.iter().find(|k| k.name() == command) else {
                return Answer::Refused(json!({"code": "unknown_command", "command": command}));
            };
            let h = Headers::new()
                .with(headers::CONTENT_TYPE, "application/json")
                .with(headers::ACTOR, actor_header(actor))
                .with(headers::IDEMPOTENCY_KEY, key);
            match transport
                .request(&docket_bus::subject(*kind), h, body)
                .await
            {
                Ok(raw) => {
                    let reply: Value = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
                    if raw.headers.get(headers::STATUS) != Some(headers::STATUS_ERROR) {
                        Answer::Ok(reply)
                    } else if retryable(&reply) {
                        Answer::Retry(reply.to_string())
                    } else {
                        Answer::Refused(reply)
                    }
                }
                Err(e) if e.code == docket_bus::codes::UNAVAILABLE => Answer::Retry(e.to_string()),
                Err(e) => Answer::Refused(serde_json::to_value(&e).unwrap_or(Value::Null)),
            }
        }
        Target::Http(url) => {
            let base = url.lock().unwrap().clone();
            let request_headers = [
                ("Content-Type", "application/json".to_owned()),
                (headers::ACTOR, actor_header(actor)),
                (headers::IDEMPOTENCY_KEY, key.to_owned()),
            ];
            let path = format!("/api/v1/commands/{command}");
            match http_post(&base, &path, &request_headers, &body).await {
                Ok((200, reply)) => Answer::Ok(serde_json::from_slice(&reply).unwrap_or_default()),
                Ok((status, reply)) => {
                    let reply: Value = serde_json::from_slice(&reply).unwrap_or_default();
                    if retryable(&reply) {
                        Answer::Retry(reply.to_string())
                    } else {
                        Answer::Refused(json!({"status": status, "reply": reply}))
                    }
                }
                Err(e) => Answer::Retry(e),
            }
        }
    }
}

/// One POST on its own connection: status and body. Any failure to connect, send or read a
/// whole response within 10 s is an error (the server may have died).
pub(crate) async fn http_post(
    base: &str,
    path: &str,
    request_headers: &[(&str, String)],
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    let request_headers: Vec<(&str, &str)> = request_headers
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let response = docket_testkit::http::try_request(
        "POST",
        &format!("{base}{path}"),
        &request_headers,
        body,
        Duration::from_secs(10),
    )
    .await?;
    Ok((response.status, response.body))
}

/// The actors of the workload.
pub(crate) const DIRECTOR: &str = "00000000-0000-0000-0000-00000000000a/field_office_director";
pub(crate) const CLERK: &str = "00000000-0000-0000-0000-00000000000f/intake_clerk";

/// What each unit of the workload does: register an officer, open a case, complete its record
/// (a criminal record attached, two sources marked unavailable), then optionally attest and
/// assess it, propose and record a decision (detain), attach further records (each causes the
/// assessment service's guidance reaction) and request reviews of the decision (each causes a
/// notification).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub(crate) assess: bool,
    pub(crate) decide: bool,
    pub(crate) later_records: u32,
    pub(crate) reviews: u32,
    /// Pause between two commands of a worker.
    pub(crate) pause: Duration,
}

impl Plan {
    /// Commands per unit.
    pub(crate) fn commands(&self) -> u32 {
        5 + if self.assess { 2 } else { 0 }
            + if self.decide { 2 } else { 0 }
            + self.later_records
            + self.reviews
    }
}

/// Runs one unit; `n` makes its A-number and keys unique within the run.
pub(crate) async fn run_unit(gen: &Generator, n: u64, plan: &Plan) -> Result<(), String> {
    let officer_id = uuid::Uuid::new_v4();
    let officer = format!("{officer_id}/officer");
    let case = uuid::Uuid::new_v4().to_string();
    let case_stream = format!("case/{case}");
    let pause = || tokio::time::sleep(plan.pause);
    gen.send(
        "officer.register",
        DIRECTOR,
        format!("officer/{officer_id}"),
        &format!("register-{n}"),
        json!({"person": officer_id, "office": "BOS", "role": "officer"}),
    )
    .await?;
    pause().await;
    let a_number = format!("A{:09}", 200_000_000 + n);
    gen.send(
        "case.open",
        CLERK,
        case_stream.clone(),
        &format!("open-{n}"),
        json!({"case": case, "a_number": a_number, "office": "BOS",
               "encounter": {"at": "2024-03-05T09:00:00Z", "location": "Boston", "place": "interior",
                             "manner_of_entry": "entered_unlawfully", "entry_date": "2010-06-01",
                             "protected_area": null}}),
    )
    .await?;
    pause().await;
    let attach = |i: u32| {
        json!({"case": case, "record": uuid::Uuid::new_v4(), "source": "criminal",
               "reference": format!("NCIC:{n}-{i}"), "content_hash": "ab".repeat(32)})
    };
    gen.send(
        "case.attach_record",
        CLERK,
        case_stream.clone(),
        &format!("attach-{n}-0"),
        attach(0),
    )
    .await?;
    pause().await;
    for source in ["administrative", "investigative"] {
        gen.send(
            "case.mark_source_unavailable",
            &officer,
            case_stream.clone(),
            &format!("unavailable-{n}-{source}"),
            json!({"case": case, "source": source, "reason": format!("no {source} file")}),
        )
        .await?;
        pause().await;
    }
    if plan.assess {
        gen.send(
            "case.attest_whole_record",
            &officer,
            case_stream.clone(),
            &format!("attest-{n}"),
            json!({"case": case}),
        )
        .await?;
        pause().await;
        gen.send(
            "case.assess_factors",
            &officer,
            case_stream.clone(),
            &format!("assess-{n}"),
            json!({"case": case, "factors": ["family_impact", "lengthy_presence"],
                   "narrative": "Fourteen years in the United States."}),
        )
        .await?;
        pause().await;
    }
    let decision = uuid::Uuid::new_v4();
    if plan.decide {
        gen.send(
            "case.propose_decision",
            &officer,
            case_stream.clone(),
            &format!("propose-{n}"),
            json!({"case": case, "decision": decision, "action": "detain", "cited_factors": [],
                   "reasons": "Failed to appear at two hearings.", "protected_area_exception": null}),
        )
        .await?;
        pause().await;
        gen.send(
            "case.record_decision",
            &officer,
            case_stream.clone(),
            &format!("record-{n}"),
            json!({"case": case, "decision": decision}),
        )
        .await?;
        pause().await;
    }
    for i in 1..=plan.later_records {
        gen.send(
            "case.attach_record",
            CLERK,
            case_stream.clone(),
            &format!("attach-{n}-{i}"),
            attach(i),
        )
        .await?;
        pause().await;
    }
    for i in 0..plan.reviews {
        let review = uuid::Uuid::new_v4();
        let requester = format!("{}/requester", uuid::Uuid::new_v4());
        gen.send(
            "review.request",
            &requester,
            format!("review/{review}"),
            &format!("review-{n}-{i}"),
            json!({"review": review, "a_number": a_number, "capacity": "noncitizen",
                   "case": case, "decision": decision, "action": "detain",
                   "grounds": "Primary caregiver of two children."}),
        )
        .await?;
        pause().await;
    }
    Ok(())
}

/// Workers running units until stopped (and at least `min_units` are done).
#[derive(Debug)]
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
    done: Arc<AtomicU64>,
}

impl Load {
    pub(crate) fn start(gen: &Arc<Generator>, plan: Plan, workers: usize, min_units: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let workers = (0..workers)
            .map(|_| {
                let (gen, stop, next, done) =
                    (gen.clone(), stop.clone(), next.clone(), done.clone());
                tokio::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= min_units && stop.load(Ordering::Relaxed) {
                            break;
                        }
                        // A refusal is recorded by the generator and ends only its unit.
                        let _ = run_unit(&gen, n, &plan).await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Load {
            stop,
            workers,
            done,
        }
    }

    /// Asks the workers to stop after their current unit (once `min_units` are started).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Stops and waits for the workers; the number of units done.
    pub(crate) async fn finish(self) -> u64 {
        self.stop();
        for worker in self.workers {
            worker.await.unwrap();
        }
        self.done.load(Ordering::Relaxed)
    }
}

/// Every commit of the log, in order.
pub(crate) async fn read_log<L: EventLog>(log: &L) -> Vec<RecordedCommit> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let batch = log.read_all(after, 1000).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        all.extend(batch);
    }
    all
}

/// A scenario's figures: `FAULTS <scenario> acknowledged=… lost=… duplicated=… <extra>`.
#[derive(Debug)]
pub(crate) struct Report {
    scenario: String,
    pub(crate) acknowledged: usize,
    pub(crate) lost: usize,
    pub(crate) duplicated: usize,
    figures: Vec<(String, String)>,
    /// What was lost or duplicated, or otherwise wrong, for the failure message.
    pub(crate) problems: Vec<String>,
}

impl Report {
    pub(crate) fn new(scenario: &str) -> Report {
        Report {
            scenario: scenario.to_owned(),
            acknowledged: 0,
            lost: 0,
            duplicated: 0,
            figures: Vec::new(),
            problems: Vec::new(),
        }
    }

    pub(crate) fn figure(&mut self, name: &str, value: impl Display) {
        self.figures.push((name.to_owned(), value.to_string()));
    }

    fn lost(&mut self, what: String) {
        self.lost += 1;
        self.problem(format!("LOST {what}"));
    }

    fn duplicated(&mut self, what: String) {
        self.duplicated += 1;
        self.problem(format!("DUPLICATED {what}"));
    }

    pub(crate) fn problem(&mut self, what: String) {
        if self.problems.len() < 40 {
            self.problems.push(what);
        }
    }

    /// The `FAULTS …` line.
    pub(crate) fn line(&self) -> String {
        let mut line = format!(
            "FAULTS {} acknowledged={} lost={} duplicated={}",
            self.scenario, self.acknowledged, self.lost, self.duplicated
        );
        for (name, value) in &self.figures {
            line.push_str(&format!(" {name}={value}"));
        }
        line
    }

    /// Prints the line, then fails if anything was lost or duplicated, or other problems were
    /// found; `context` is added to the failure message (service logs).
    pub(crate) fn print_and_assert(&self, context: &str) {
        // Straight to the process's stderr, past the test harness's capture: the figures are
        // part of every run's output.
        let _ = writeln!(std::io::stderr().lock(), "{}", self.line());
        assert!(
            self.lost == 0 && self.duplicated == 0 && self.problems.is_empty(),
            "{}\n{}\n{context}",
            self.line(),
            self.problems.join("\n")
        );
    }
}

/// Event types a stream of this workload holds at most once.
const ONCE_PER_STREAM: &[&str] = &[
    "officer.registered",
    "case.opened",
    "case.whole_record_attested",
    "case.factors_assessed",
    "case.decision_proposed",
    "case.decision_recorded",
    "review.requested",
];

/// Checks the acknowledged commands against the log: each acknowledged key is in the log
/// exactly once, at the acknowledged position and in its stream; no key is committed twice;
/// no logical effect of the workload is in the log twice. Adds `acknowledged` and the figures
/// `commits` and `unacked_in_log` (keys of this run in the log that were never acknowledged:
/// only possible for a command given up on, which the checker reports as a refusal).
pub(crate) fn check_commands(
    report: &mut Report,
    gen: &Generator,
    acked: &[Acked],
    commits: &[RecordedCommit],
) {
    report.acknowledged = acked.len();
    let mut by_key: HashMap<&str, Vec<&RecordedCommit>> = HashMap::new();
    for c in commits {
        if let Some(key) = c.commit.metadata.idempotency_key.as_deref() {
            by_key.entry(key).or_default().push(c);
        }
    }
    for (key, found) in &by_key {
        if found.len() > 1 {
            let positions: Vec<u64> = found.iter().map(|c| c.position).collect();
            report.duplicated(format!("key {key} committed at {positions:?}"));
        }
    }
    let mut acked_keys = HashSet::new();
    for a in acked {
        acked_keys.insert(a.key.as_str());
        match by_key.get(a.key.as_str()).and_then(|c| c.first()) {
            None => report.lost(format!(
                "{} {} acknowledged at {} but not in the log",
                a.command, a.key, a.position
            )),
            Some(c) if c.position != a.position || c.commit.stream.as_str() != a.stream => report
                .lost(format!(
                    "{} {} acknowledged at {} in {} but the log has it at {} in {}",
                    a.command,
                    a.key,
                    a.position,
                    a.stream,
                    c.position,
                    c.commit.stream.as_str()
                )),
            Some(_) => {}
        }
    }
    let unacked = by_key
        .keys()
        .filter(|k| k.starts_with(&gen.run) && !acked_keys.contains(*k))
        .count();
    // Logical effects: the same effect twice is a duplicate whatever its key.
    let mut effects: HashMap<(String, String, String), Vec<u64>> = HashMap::new();
    for c in commits {
        let stream = c.commit.stream.as_str().to_owned();
        for data in &c.commit.events {
            let name = data.type_name.as_str();
            let what = if ONCE_PER_STREAM.contains(&name) {
                String::new()
            } else if name == "case.record_attached" || name == "case.source_unavailable" {
                match docket_runtime::decode_event(data) {
                    Ok(DomainEvent::Case(CaseEvent::RecordAttached(e))) => e.record.to_string(),
                    Ok(DomainEvent::Case(CaseEvent::SourceUnavailable(e))) => {
                        format!("{:?}", e.source)
                    }
                    other => {
                        report.problem(format!("{name} at {} unreadable: {other:?}", c.position));
                        continue;
                    }
                }
            } else {
                continue;
            };
            effects
                .entry((stream.clone(), name.to_owned(), what))
                .or_default()
                .push(c.position);
        }
    }
    for ((stream, name, what), positions) in effects {
        if positions.len() > 1 {
            report.duplicated(format!("{name} {what} in {stream} at {positions:?}"));
        }
    }
    report.figure("commits", commits.len());
    report.figure("unacked_in_log", unacked);
}

/// The guidance reaction's causes and effects in the log.
#[derive(Debug, Default)]
pub(crate) struct Guidance {
    /// Record changes to assessed cases.
    pub(crate) causes: usize,
    /// `case.guidance_recomputed` events.
    pub(crate) recomputed: usize,
    /// Causes with a recomputation after them: (case stream, position).
    pub(crate) covered: Vec<(String, u64)>,
    /// Causes with no recomputation after them (yet).
    pub(crate) pending: Vec<(String, u64)>,
    /// Recomputations with no record change since the last (a repeated effect).
    pub(crate) repeated: Vec<(String, u64)>,
    /// Recomputations whose key names no record change of their case.
    pub(crate) unexplained: Vec<(String, u64, String)>,
}

/// Walks every case stream: a record attached or a source marked unavailable after the factors
/// were assessed is a cause; the next `case.guidance_recomputed` of the case (idempotency key
/// `guidance-recomputed-<position of one of the case's record changes>`) is the effect that
/// covers every cause since the last one. A recomputation with no cause since the last is a
/// repeated effect.
pub(crate) fn guidance(commits: &[RecordedCommit]) -> Guidance {
    #[derive(Default)]
    struct Case {
        assessed: bool,
        pending: Vec<u64>,
        /// Every record change so far, before the assessment too: the reaction decides on the
        /// case as it is now, so one reading an older change (after a restart) may find a
        /// newer cause outstanding and make the effect under the older change's key.
        changes: Vec<u64>,
        closed: bool,
    }
    let mut cases: BTreeMap<String, Case> = BTreeMap::new();
    let mut out = Guidance::default();
    for c in commits {
        if c.commit.stream.kind() != "case" {
            continue;
        }
        let stream = c.commit.stream.as_str().to_owned();
        let case = cases.entry(stream.clone()).or_default();
        for data in &c.commit.events {
            match data.type_name.as_str() {
                "case.factors_assessed" => {
                    case.assessed = true;
                    case.pending.clear();
                }
                "case.record_attached" | "case.source_unavailable" => {
                    case.changes.push(c.position);
                    if case.assessed {
                        out.causes += 1;
                        case.pending.push(c.position);
                    }
                }
                "case.guidance_recomputed" => {
                    out.recomputed += 1;
                    if case.pending.is_empty() {
                        out.repeated.push((stream.clone(), c.position));
                    } else {
                        let key = c
                            .commit
                            .metadata
                            .idempotency_key
                            .clone()
                            .unwrap_or_default();
                        let explained = case
                            .changes
                            .iter()
                            .any(|p| key == format!("guidance-recomputed-{p}"));
                        if !explained {
                            out.unexplained.push((stream.clone(), c.position, key));
                        }
                        out.covered
                            .extend(case.pending.drain(..).map(|p| (stream.clone(), p)));
                    }
                }
                "case.closed" => case.closed = true,
                _ => {}
            }
        }
    }
    for (stream, case) in cases {
        if !case.closed {
            out.pending
                .extend(case.pending.into_iter().map(|p| (stream.clone(), p)));
        }
    }
    out
}

/// Adds the guidance reaction's figures; pending causes are lost, repeated ones duplicated.
pub(crate) fn check_guidance(report: &mut Report, commits: &[RecordedCommit]) {
    let g = guidance(commits);
    report.figure("guidance_causes", g.causes);
    report.figure("guidance_recomputed", g.recomputed);
    for (stream, position) in &g.pending {
        report.lost(format!(
            "no case.guidance_recomputed in {stream} after the record change at {position}"
        ));
    }
    for (stream, position) in &g.repeated {
        report.duplicated(format!(
            "case.guidance_recomputed at {position} in {stream} with no record change since the last"
        ));
    }
    for (stream, position, key) in &g.unexplained {
        report.problem(format!(
            "case.guidance_recomputed at {position} in {stream} has key {key:?}, naming none of its record changes"
        ));
    }
}

/// Notifications in the log, by id.
#[derive(Debug, Default)]
pub(crate) struct Notifications {
    /// Domain events that notify someone (`review.requested`): (position, event id).
    pub(crate) causes: Vec<(u64, uuid::Uuid)>,
    pub(crate) queued: BTreeMap<uuid::Uuid, Vec<u64>>,
    /// Causing position of each queued notification.
    pub(crate) cause_of: HashMap<uuid::Uuid, u64>,
    pub(crate) failed_attempts: BTreeMap<uuid::Uuid, Vec<u32>>,
    pub(crate) delivered: BTreeMap<uuid::Uuid, Vec<u32>>,
    pub(crate) abandoned: BTreeMap<uuid::Uuid, u32>,
    /// Abandoned notifications recorded more than once.
    pub(crate) abandoned_twice: Vec<uuid::Uuid>,
}

impl Notifications {
    /// Notifications with neither `delivered` nor `abandoned` recorded.
    pub(crate) fn unfinished(&self) -> usize {
        self.queued
            .keys()
            .filter(|id| !self.delivered.contains_key(id) && !self.abandoned.contains_key(id))
            .count()
    }

    /// Causes with no notification queued.
    pub(crate) fn unqueued(&self) -> usize {
        let queued: HashSet<u64> = self.cause_of.values().copied().collect();
        self.causes
            .iter()
            .filter(|(p, _)| !queued.contains(p))
            .count()
    }
}

pub(crate) fn notifications(commits: &[RecordedCommit]) -> Notifications {
    let mut out = Notifications::default();
    for c in commits {
        let stream = &c.commit.stream;
        if stream.kind() == "review" {
            for data in &c.commit.events {
                if data.type_name == "review.requested" {
                    out.causes.push((c.position, data.id));
                }
            }
            continue;
        }
        if stream.kind() != "notification" {
            continue;
        }
        let Ok(id) = uuid::Uuid::parse_str(stream.id()) else {
            continue;
        };
        for data in &c.commit.events {
            match NotificationEvent::decode(data) {
                Ok(NotificationEvent::Queued(q)) => {
                    out.queued.entry(id).or_default().push(c.position);
                    out.cause_of.insert(id, q.message.caused_by.position);
                }
                Ok(NotificationEvent::AttemptFailed(f)) => {
                    out.failed_attempts.entry(id).or_default().push(f.attempt)
                }
                Ok(NotificationEvent::Delivered(d)) => {
                    out.delivered.entry(id).or_default().push(d.attempt)
                }
                Ok(NotificationEvent::Abandoned(a)) => {
                    if out.abandoned.insert(id, a.attempts).is_some() {
                        out.abandoned_twice.push(id);
                    }
                }
                Err(_) => {}
            }
        }
    }
    out
}

/// Every notifying event has exactly one notification queued; no notification is queued,
/// delivered or abandoned twice, nor both delivered and abandoned; with `finished`, every
/// notification is delivered or abandoned (else it is lost). Adds the delivery figures.
pub(crate) fn check_notifications(report: &mut Report, commits: &[RecordedCommit], finished: bool) {
    let n = notifications(commits);
    let mut by_cause: HashMap<u64, Vec<uuid::Uuid>> = HashMap::new();
    for (id, cause) in &n.cause_of {
        by_cause.entry(*cause).or_default().push(*id);
    }
    for (position, event) in &n.causes {
        match by_cause.get(position).map(Vec::len).unwrap_or(0) {
            0 => report.lost(format!(
                "review.requested {event} at {position}: no notification queued"
            )),
            1 => {}
            k => report.duplicated(format!(
                "review.requested {event} at {position}: {k} notifications queued"
            )),
        }
    }
    for (id, positions) in &n.queued {
        if positions.len() > 1 {
            report.duplicated(format!("notification {id} queued at {positions:?}"));
        }
    }
    for (id, attempts) in &n.delivered {
        if attempts.len() > 1 {
            report.duplicated(format!(
                "notification {id} delivered {} times in the log (attempts {attempts:?})",
                attempts.len()
            ));
        }
        if n.abandoned.contains_key(id) {
            report.duplicated(format!("notification {id} both delivered and abandoned"));
        }
    }
    for id in &n.abandoned_twice {
        report.duplicated(format!("notification {id} abandoned twice"));
    }
    for (id, attempts) in &n.failed_attempts {
        let distinct: HashSet<&u32> = attempts.iter().collect();
        if distinct.len() != attempts.len() {
            report.duplicated(format!(
                "notification {id}: an attempt recorded twice ({attempts:?})"
            ));
        }
    }
    if finished {
        for id in n.queued.keys() {
            if !n.delivered.contains_key(id) && !n.abandoned.contains_key(id) {
                report.lost(format!("notification {id} neither delivered nor abandoned"));
            }
        }
    }
    let failed: usize = n.failed_attempts.values().map(Vec::len).sum();
    let retried_then_delivered = n
        .delivered
        .values()
        .filter(|a| a.iter().any(|&x| x > 1))
        .count();
    report.figure("notifications", n.queued.len());
    report.figure("delivered", n.delivered.len());
    report.figure("abandoned", n.abandoned.len());
    report.figure("attempts_failed", failed);
    report.figure("delivered_after_retry", retried_then_delivered);
}

/// Reads the log until `done` says it is settled (every reaction caught up), for up to `limit`;
/// the last read either way.
pub(crate) async fn settle<L: EventLog>(
    log: &L,
    limit: Duration,
    done: impl Fn(&[RecordedCommit]) -> bool,
) -> (Vec<RecordedCommit>, Duration) {
    let started = Instant::now();
    loop {
        let commits = read_log(log).await;
        if done(&commits) || started.elapsed() > limit {
            return (commits, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// p50 and max of durations, in milliseconds.
pub(crate) fn p50_max(mut values: Vec<Duration>) -> (u128, u128) {
    if values.is_empty() {
        return (0, 0);
    }
    values.sort();
    (
        values[values.len() / 2].as_millis(),
        values[values.len() - 1].as_millis(),
    )
}
