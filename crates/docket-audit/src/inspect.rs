//! Reading the log as an auditor: a subject's timeline ([`history`]), everything as it stood at
//! a time or position ([`replay`]), and every decision re-evaluated under the policy version in
//! force at its time ([`consistency`]). All three take the commits in log order from any source
//! (a live log, or an export) and fold them with the domain's own code.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};
use docket_domain::case::{Case, CaseEvent};
use docket_domain::events::{DomainEvent, Format};
use docket_domain::policy::PolicySet;
use docket_domain::review::{Review, ReviewEvent};
use docket_domain::values::{ANumber, CaseId, ReviewId};
use docket_domain::world::WorldView;
use docket_domain::{Aggregate, AggregateKind, StreamKey};
use docket_log::RecordedCommit;
use serde::Serialize;

use crate::decode_event;
use crate::rules::{rederive, ProposalFacts};
use serde_json::Value;

/// Why a log could not be read as the domain's.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// A commit's events could not be decoded or applied.
    #[error("commit {position}: {reason}")]
    Unreadable {
        /// Its position.
        position: u64,
        /// What was wrong.
        reason: String,
    },
    /// The subject is neither an A-number nor a case or review id.
    #[error("{0:?} is not an A-number, a case id or a review id")]
    BadSubject(String),
    /// The subject appears nowhere in the log.
    #[error("nothing in the log concerns {0}")]
    NotFound(String),
}

/// One event of a timeline.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// The commit's position.
    pub position: u64,
    /// When it happened (the event's time, else the commit's).
    pub at: DateTime<Utc>,
    /// The stream, e.g. `case/<id>`.
    pub stream: String,
    /// The event's name, e.g. `case.decision_recorded`.
    pub event: String,
    /// Who acted: `<role> <person>`.
    pub by: Option<String>,
    /// The policy version the event was decided under, when it records one.
    pub policy_version: Option<String>,
    /// The factors it cites or assesses.
    pub factors: Vec<String>,
    /// The event's other fields.
    pub detail: Value,
}

/// A subject's timeline.
#[derive(Clone, Debug, Serialize)]
pub struct History {
    /// What was asked for.
    pub subject: String,
    /// The streams that concern it.
    pub streams: Vec<String>,
    /// Its events in log order.
    pub entries: Vec<Entry>,
}

impl std::fmt::Display for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "History of {} ({} events in {} streams)",
            self.subject,
            self.entries.len(),
            self.streams.len()
        )?;
        for e in &self.entries {
            write!(
                f,
                "#{:<8} {}  {:<32} {}",
                e.position,
                e.at.format("%Y-%m-%d %H:%M:%S"),
                e.event,
                e.stream
            )?;
            if let Some(by) = &e.by {
                write!(f, "\n           by {by}")?;
            }
            if let Some(v) = &e.policy_version {
                write!(f, "\n           under policy {v}")?;
            }
            if !e.factors.is_empty() {
                write!(f, "\n           factors: {}", e.factors.join(", "))?;
            }
            if let Value::Object(fields) = &e.detail {
                for (k, v) in fields {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    write!(f, "\n           {k}: {v}")?;
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

fn events(commit: &RecordedCommit) -> Result<Vec<DomainEvent>, InspectError> {
    commit
        .commit
        .events
        .iter()
        .map(|e| {
            decode_event(e).map_err(|err| InspectError::Unreadable {
                position: commit.position,
                reason: err.to_string(),
            })
        })
        .collect()
}

fn recorded_at(commit: &RecordedCommit) -> DateTime<Utc> {
    Utc.timestamp_micros(commit.commit.metadata.recorded_at_micros)
        .single()
        .unwrap_or_default()
}

fn domain_kind(commit: &RecordedCommit) -> bool {
    AggregateKind::parse(commit.commit.stream.kind()).is_some()
}

fn entry(commit: &RecordedCommit, event: &DomainEvent) -> Entry {
    let mut detail = event
        .encode(Format::Json)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .unwrap_or(Value::Null);
    let mut by = None;
    let mut at = recorded_at(commit);
    let mut policy_version = None;
    let mut factors = Vec::new();
    if let Value::Object(fields) = &mut detail {
        if let Some(Value::Object(actor)) = fields.remove("by") {
            let role = actor.get("role").and_then(Value::as_str).unwrap_or("?");
            let person = actor.get("person").and_then(Value::as_str).unwrap_or("?");
            by = Some(format!("{role} {person}"));
        }
        if let Some(t) = fields
            .remove("at")
            .and_then(|v| v.as_str().map(str::to_owned))
            .and_then(|s| s.parse::<DateTime<Utc>>().ok())
        {
            at = t;
        }
        if let Some(Value::String(v)) = fields.remove("policy_version") {
            policy_version = Some(v);
        }
        for key in ["cited_factors", "factors"] {
            if let Some(Value::Array(list)) = fields.remove(key) {
                factors.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
            }
        }
    }
    Entry {
        position: commit.position,
        at,
        stream: commit.commit.stream.as_str().to_owned(),
        event: event.name().to_owned(),
        by: by.or_else(|| commit.commit.metadata.actor.clone()),
        policy_version,
        factors,
        detail,
    }
}

/// The timeline of an A-number (its cases, its reviews, its G-28s), a case (and the reviews of
/// its decisions) or a review, from the commits in log order.
pub fn history(
    commits: impl IntoIterator<Item = RecordedCommit>,
    subject: &str,
) -> Result<History, InspectError> {
    let subject = subject.trim();
    let a_number = ANumber::parse(subject).ok();
    let id = uuid::Uuid::parse_str(subject).ok();
    if a_number.is_none() && id.is_none() {
        return Err(InspectError::BadSubject(subject.to_owned()));
    }
    let mut streams: BTreeSet<String> = BTreeSet::new();
    if let Some(id) = id {
        streams.insert(StreamKey::Case(CaseId(id)).to_string());
        streams.insert(StreamKey::Review(ReviewId(id)).to_string());
    }
    let mut entries = Vec::new();
    for commit in commits {
        if !domain_kind(&commit) {
            continue;
        }
        let stream = commit.commit.stream.as_str().to_owned();
        let decoded = events(&commit)?;
        // Streams join the subject as the log shows their link.
        for event in &decoded {
            match event {
                DomainEvent::Case(CaseEvent::Opened(o)) if Some(o.a_number) == a_number => {
                    streams.insert(stream.clone());
                }
                DomainEvent::Review(ReviewEvent::Requested(r))
                    if Some(r.a_number) == a_number
                        || streams.contains(&StreamKey::Case(r.case).to_string()) =>
                {
                    streams.insert(stream.clone());
                }
                _ => {}
            }
        }
        if let Some(a) = a_number {
            if matches!(stream.parse::<StreamKey>(), Ok(StreamKey::Representation(of, _)) if of == a)
            {
                streams.insert(stream.clone());
            }
        }
        if streams.contains(&stream) {
            entries.extend(decoded.iter().map(|e| entry(&commit, e)));
        }
    }
    if entries.is_empty() {
        return Err(InspectError::NotFound(subject.to_owned()));
    }
    let used: BTreeSet<&str> = entries.iter().map(|e| e.stream.as_str()).collect();
    Ok(History {
        subject: subject.to_owned(),
        streams: used.into_iter().map(str::to_owned).collect(),
        entries,
    })
}

/// Up to where [`replay`] folds the log.
#[derive(Clone, Copy, Debug)]
pub enum AsOf {
    /// Commits up to and including this position.
    Position(u64),
    /// Commits recorded at or before this time.
    Time(DateTime<Utc>),
}

impl std::str::FromStr for AsOf {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(p) = s.parse::<u64>() {
            return Ok(AsOf::Position(p));
        }
        if let Ok(t) = s.parse::<DateTime<Utc>>() {
            return Ok(AsOf::Time(t));
        }
        if let Ok(d) = s.parse::<chrono::NaiveDate>() {
            if let Some(t) = d.and_hms_opt(23, 59, 59) {
                return Ok(AsOf::Time(Utc.from_utc_datetime(&t)));
            }
        }
        Err(format!(
            "{s:?} is neither a position (e.g. 1200) nor a time (e.g. 2024-03-05T15:00:00Z or 2024-03-05)"
        ))
    }
}

/// Summary counts of everything, as of a position.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// The last position folded.
    pub position: u64,
    /// When it was recorded.
    pub at: Option<DateTime<Utc>>,
    /// Cases opened.
    pub cases: usize,
    /// Cases closed.
    pub cases_closed: usize,
    /// Proposals waiting for a supervisor.
    pub proposals_pending: usize,
    /// Decisions recorded, by action.
    pub decisions_by_action: BTreeMap<String, usize>,
    /// Decisions that departed from guidance.
    pub departures: usize,
    /// Officers and supervisors registered.
    pub staff: usize,
    /// G-28s on file and not withdrawn.
    pub g28s_active: usize,
    /// Reviews by stage.
    pub reviews_by_stage: BTreeMap<String, usize>,
    /// Deadlines recorded as missed.
    pub deadlines_missed: usize,
}

/// One case or review as it stood, in readable form.
#[derive(Clone, Debug, Serialize)]
pub struct Subject {
    /// `case/<id>` or `review/<id>`.
    pub stream: String,
    /// Its revision (the position of its last commit folded).
    pub revision: u64,
    /// The state's fields, as the domain keeps them.
    pub state: String,
}

/// The result of [`replay`].
#[derive(Clone, Debug, Serialize)]
pub struct Replay {
    /// Counts of everything.
    pub summary: Summary,
    /// The case or review asked for, if any.
    pub subject: Option<Subject>,
}

impl std::fmt::Display for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.summary;
        writeln!(
            f,
            "As of position {}{}",
            s.position,
            s.at.map(|t| format!(" (recorded {})", t.format("%Y-%m-%d %H:%M:%S UTC")))
                .unwrap_or_default()
        )?;
        if let Some(subject) = &self.subject {
            writeln!(f, "{} at revision {}:", subject.stream, subject.revision)?;
            writeln!(f, "{}", subject.state)?;
            return Ok(());
        }
        writeln!(
            f,
            "cases: {} opened, {} closed, {} proposals pending",
            s.cases, s.cases_closed, s.proposals_pending
        )?;
        let decisions: usize = s.decisions_by_action.values().sum();
        writeln!(
            f,
            "decisions: {decisions} ({} departing from guidance)",
            s.departures
        )?;
        for (action, n) in &s.decisions_by_action {
            writeln!(f, "  {action}: {n}")?;
        }
        writeln!(
            f,
            "staff registered: {}; G-28s on file: {}",
            s.staff, s.g28s_active
        )?;
        let reviews: usize = s.reviews_by_stage.values().sum();
        writeln!(
            f,
            "reviews: {reviews}; deadlines missed: {}",
            s.deadlines_missed
        )?;
        for (stage, n) in &s.reviews_by_stage {
            writeln!(f, "  {stage}: {n}")?;
        }
        Ok(())
    }
}

/// Folds the commits up to `as_of` with the services' own code and summarises the state; with
/// a case or review id, also that one's state.
pub fn replay(
    commits: impl IntoIterator<Item = RecordedCommit>,
    as_of: AsOf,
    subject: Option<&str>,
) -> Result<Replay, InspectError> {
    let mut world = WorldView::default();
    let mut at = None;
    for commit in commits {
        let recorded = recorded_at(&commit);
        let included = match as_of {
            AsOf::Position(p) => commit.position <= p,
            AsOf::Time(t) => recorded <= t,
        };
        if !included {
            break;
        }
        world
            .apply(
                commit.position,
                commit.commit.stream.as_str(),
                commit.commit.metadata.idempotency_key.as_deref(),
                || events(&commit).map_err(|e| e.to_string()),
            )
            .map_err(|reason| InspectError::Unreadable {
                position: commit.position,
                reason,
            })?;
        at = Some(recorded);
    }
    let mut summary = Summary {
        position: world.applied,
        at,
        cases: world.cases.len(),
        staff: world.officers.len(),
        ..Summary::default()
    };
    for (_, case) in world.cases.values() {
        summary.cases_closed += usize::from(case.closed);
        summary.proposals_pending += usize::from(case.proposal.is_some());
        for d in &case.decisions {
            *summary
                .decisions_by_action
                .entry(d.action.to_string())
                .or_default() += 1;
            summary.departures += usize::from(d.departure.is_some());
        }
    }
    summary.g28s_active = world
        .representations
        .values()
        .filter(|(_, r)| r.is_active())
        .count();
    for (_, review) in world.reviews.values() {
        *summary
            .reviews_by_stage
            .entry(format!("{:?}", review.stage()))
            .or_default() += 1;
        summary.deadlines_missed += review.missed().len();
    }
    let subject = match subject {
        None => None,
        Some(s) => {
            let id = uuid::Uuid::parse_str(s.trim())
                .map_err(|_| InspectError::BadSubject(s.to_owned()))?;
            let case = StreamKey::Case(CaseId(id)).to_string();
            let review = StreamKey::Review(ReviewId(id)).to_string();
            if let Some((revision, state)) = world.cases.get(&case) {
                Some(Subject {
                    stream: case,
                    revision: *revision,
                    state: format!("{:#?}", state as &Case),
                })
            } else if let Some((revision, state)) = world.reviews.get(&review) {
                Some(Subject {
                    stream: review,
                    revision: *revision,
                    state: format!("{:#?}", state as &Review),
                })
            } else {
                return Err(InspectError::NotFound(format!(
                    "{s} (no case or review of that id as of position {})",
                    world.applied
                )));
            }
        }
    };
    Ok(Replay { summary, subject })
}

/// One recorded decision, re-evaluated.
#[derive(Clone, Debug, Serialize)]
pub struct DecisionCheck {
    /// The commit that recorded it.
    pub position: u64,
    /// The case.
    pub case: String,
    /// The field office.
    pub office: String,
    /// The deciding officer.
    pub officer: String,
    /// The action.
    pub action: String,
    /// The policy version in force at the decision, re-derived from the policy set.
    pub policy_in_force: Option<String>,
    /// The version the decision recorded.
    pub policy_recorded: Option<String>,
    /// Guidance re-computed now under the version in force then, from the factors the case
    /// recorded when the decision was proposed.
    pub guidance: Option<String>,
    /// Whether the action departs from that guidance.
    pub departs: bool,
    /// The approving supervisor, if any.
    pub approved_by: Option<String>,
    /// Whether the recomputation (version, guidance, departure) agrees with what the decision
    /// recorded.
    pub agrees_with_record: bool,
}

/// Departures counted for one office or officer.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Tally {
    /// Decisions recorded.
    pub decisions: usize,
    /// Departures with a supervisor's approval.
    pub departures_approved: usize,
    /// Departures without one.
    pub departures_unapproved: usize,
}

/// The result of [`consistency`].
#[derive(Clone, Debug, Default, Serialize)]
pub struct Consistency {
    /// Every decision, in log order.
    pub decisions: Vec<DecisionCheck>,
    /// Counts by field office.
    pub by_office: BTreeMap<String, Tally>,
    /// Counts by officer.
    pub by_officer: BTreeMap<String, Tally>,
    /// Decisions whose recorded policy version, guidance or departure differs from the
    /// re-evaluation.
    pub disagreements: usize,
}

impl std::fmt::Display for Consistency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let departures: Vec<_> = self.decisions.iter().filter(|d| d.departs).collect();
        writeln!(
            f,
            "{} decisions re-evaluated under the policy in force at their time; {} depart from guidance ({} approved, {} not); {} disagree with what was recorded",
            self.decisions.len(),
            departures.len(),
            departures.iter().filter(|d| d.approved_by.is_some()).count(),
            departures.iter().filter(|d| d.approved_by.is_none()).count(),
            self.disagreements
        )?;
        writeln!(
            f,
            "\nBy field office (decisions, departures approved, not approved):"
        )?;
        for (office, t) in &self.by_office {
            writeln!(
                f,
                "  {office:<6} {:>6} {:>6} {:>6}",
                t.decisions, t.departures_approved, t.departures_unapproved
            )?;
        }
        writeln!(
            f,
            "\nBy officer (decisions, departures approved, not approved):"
        )?;
        for (officer, t) in &self.by_officer {
            writeln!(
                f,
                "  {officer} {:>6} {:>6} {:>6}",
                t.decisions, t.departures_approved, t.departures_unapproved
            )?;
        }
        if !departures.is_empty() {
            writeln!(f, "\nDepartures:")?;
            for d in departures {
                writeln!(
                    f,
                    "  #{} case {} {} by {}: {} against guidance {}; {}",
                    d.position,
                    d.case,
                    d.office,
                    d.officer,
                    d.action,
                    d.guidance.as_deref().unwrap_or("none"),
                    d.approved_by
                        .as_ref()
                        .map(|s| format!("approved by {s}"))
                        .unwrap_or_else(|| "NOT approved".into())
                )?;
            }
        }
        Ok(())
    }
}

/// Re-evaluates every recorded decision under the policy version in force at its commit's time
/// (from `policies`, not from what the decision says) with [`rederive`], the function `verify`'s
/// `departure_approved` uses, and lists departures from guidance with and without approval, by
/// office and by officer.
pub fn consistency(
    commits: impl IntoIterator<Item = RecordedCommit>,
    policies: &PolicySet,
) -> Result<Consistency, InspectError> {
    let mut cases: BTreeMap<String, Case> = BTreeMap::new();
    let mut proposals = ProposalFacts::default();
    let mut out = Consistency::default();
    for commit in commits {
        if AggregateKind::parse(commit.commit.stream.kind()) != Some(AggregateKind::Case) {
            continue;
        }
        let stream = commit.commit.stream.as_str().to_owned();
        let at = recorded_at(&commit);
        for event in events(&commit)? {
            let DomainEvent::Case(event) = event else {
                continue;
            };
            let state = cases.remove(&stream).unwrap_or_default();
            if let CaseEvent::DecisionRecorded(d) = &event {
                // As `verify`'s `departure_approved` does: from the facts its proposal was
                // judged on, under the version in force at its commit's time. Factors that do
                // not evaluate give no guidance (and disagree with any recorded).
                let facts = proposals.for_decision(&stream, d.decision, &state);
                let policy = policies.in_force_at(at);
                let (guidance, departure) = match rederive(policies, at, facts.as_ref(), d.action) {
                    Ok(re) => (re.guidance, re.departure),
                    Err(_) => (None, None),
                };
                let departs = departure.is_some();
                let agrees = policy.map(|p| p.version.clone()) == d.policy_version
                    && guidance == d.guidance
                    && departure == d.departure;
                let office = state
                    .opened
                    .as_ref()
                    .map(|o| o.office.to_string())
                    .unwrap_or_default();
                let check = DecisionCheck {
                    position: commit.position,
                    case: commit.commit.stream.id().to_owned(),
                    office: office.clone(),
                    officer: d.officer.to_string(),
                    action: d.action.to_string(),
                    policy_in_force: policy.map(|p| p.version.clone()),
                    policy_recorded: d.policy_version.clone(),
                    guidance: guidance.as_ref().map(|g| g.priority.to_string()),
                    departs,
                    approved_by: d.approved_by.map(|p| p.to_string()),
                    agrees_with_record: agrees,
                };
                out.disagreements += usize::from(!agrees);
                for tally in [
                    out.by_office.entry(office).or_default(),
                    out.by_officer.entry(check.officer.clone()).or_default(),
                ] {
                    tally.decisions += 1;
                    if departs {
                        if check.approved_by.is_some() {
                            tally.departures_approved += 1;
                        } else {
                            tally.departures_unapproved += 1;
                        }
                    }
                }
                out.decisions.push(check);
            }
            proposals.note(&stream, &state, &event);
            cases.insert(stream.clone(), state.evolve(&event));
        }
    }
    Ok(out)
}
