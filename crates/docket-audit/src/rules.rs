//! The process rules an audit checks over the log, by folding the domain's events exactly as the
//! services do (the service runtime's [`WorldView`]) and judging each step with the domain's own
//! types, policy and deadlines:
//!
//! - `review_acknowledged`: every review request is acknowledged, or its acknowledgement
//!   deadline recorded missed, by the time of the last commit (the failure names the request);
//! - `deadline_met_or_missed`: every review deadline (acknowledgement, tier-1 and tier-2
//!   decision) is met — its step done by its due time — or recorded missed; a step done late
//!   with no miss recorded names that step's commit, a deadline passed and still running names
//!   the commit that started its clock (the request, or the tier-2 request);
//! - `decision_policy_version`: every recorded decision names the policy version in force at
//!   its time (none when none was);
//! - `decision_officer_trained`: by a registered officer trained for that version before it;
//! - `departure_approved`: a decision that departs from guidance where the policy says such a
//!   departure needs approval was approved by someone else, registered as a supervisor or field
//!   office director; and a departure the recorded guidance implies is not left unrecorded.
//!
//! Deadlines are the due times carried in the events (the ones in force when the step
//! happened). Time is the commits' recorded time; `grace` allows for the scheduler recording a
//! miss a little after a deadline passes.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use docket_domain::case::CaseEvent;
use docket_domain::events::DomainEvent;
use docket_domain::policy::PolicySet;
use docket_domain::review::{DeadlineKind, Review, ReviewEvent};
use docket_domain::{Directory, Role};
use docket_log::RecordedCommit;
use docket_service::{decode_event, WorldView};

/// Rule name: every review request acknowledged or its deadline recorded missed.
pub const REVIEW_ACKNOWLEDGED: &str = "review_acknowledged";
/// Rule name: every deadline met or recorded missed.
pub const DEADLINE_MET_OR_MISSED: &str = "deadline_met_or_missed";
/// Rule name: the policy version in force recorded with every decision.
pub const DECISION_POLICY_VERSION: &str = "decision_policy_version";
/// Rule name: every decision by an officer trained for the version.
pub const DECISION_OFFICER_TRAINED: &str = "decision_officer_trained";
/// Rule name: departures needing approval approved by a supervisor.
pub const DEPARTURE_APPROVED: &str = "departure_approved";
/// Rule name: a domain event that does not decode or does not belong in its stream.
pub const DECODE: &str = "decode";

/// Every process rule's name.
pub const PROCESS_RULES: [&str; 5] = [
    REVIEW_ACKNOWLEDGED,
    DEADLINE_MET_OR_MISSED,
    DECISION_POLICY_VERSION,
    DECISION_OFFICER_TRAINED,
    DEPARTURE_APPROVED,
];

/// A rule broken at a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleFailure {
    /// The commit that breaks the rule, or that started the clock of what is missing.
    pub position: u64,
    /// The rule's name.
    pub rule: &'static str,
    /// What is wrong.
    pub message: String,
}

fn fail(position: u64, rule: &'static str, message: String) -> RuleFailure {
    RuleFailure {
        position,
        rule,
        message,
    }
}

/// Where a review's clocks started.
#[derive(Clone, Copy, Debug, Default)]
struct Clocks {
    requested: u64,
    tier2_requested: u64,
}

/// Folds commits in log order and checks the process rules as it goes.
#[derive(Debug)]
pub struct RuleChecker {
    world: WorldView,
    policies: PolicySet,
    grace: Duration,
    clocks: HashMap<String, Clocks>,
    counts: BTreeMap<&'static str, u64>,
    last_time: Option<DateTime<Utc>>,
    domain_commits: u64,
}

fn rule_for(kind: DeadlineKind) -> &'static str {
    match kind {
        DeadlineKind::Acknowledge => REVIEW_ACKNOWLEDGED,
        _ => DEADLINE_MET_OR_MISSED,
    }
}

impl RuleChecker {
    /// A checker under the given policy versions, allowing `grace` after a due time before a
    /// miss must be on record.
    pub fn new(policies: PolicySet, grace: Duration) -> Self {
        RuleChecker {
            world: WorldView::default(),
            policies,
            grace,
            clocks: HashMap::new(),
            counts: PROCESS_RULES.iter().map(|r| (*r, 0)).collect(),
            last_time: None,
            domain_commits: 0,
        }
    }

    /// How many times each rule was checked.
    pub fn counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// Commits of the domain's streams (case, officer, representation, review) folded.
    pub fn domain_commits(&self) -> u64 {
        self.domain_commits
    }

    /// The state folded so far.
    pub fn world(&self) -> &WorldView {
        &self.world
    }

    fn count(&mut self, rule: &'static str) {
        *self.counts.entry(rule).or_default() += 1;
    }

    /// Checks and folds the next commit (commits must come in log order).
    pub fn check_commit(&mut self, commit: &RecordedCommit) -> Result<(), RuleFailure> {
        let position = commit.position;
        let at = DateTime::<Utc>::from_timestamp_micros(commit.commit.metadata.recorded_at_micros)
            .unwrap_or_default();
        self.last_time = Some(self.last_time.map_or(at, |t| t.max(at)));
        let stream = commit.commit.stream.as_str();
        match commit.commit.stream.kind() {
            "case" => {
                let events = decode_all(commit)?;
                for event in &events {
                    if let DomainEvent::Case(CaseEvent::DecisionRecorded(r)) = event {
                        self.check_decision(position, r)?;
                    }
                }
                self.apply(commit)
            }
            "review" => {
                let events = decode_all(commit)?;
                let before = self.review(stream);
                self.apply(commit)?;
                let after = self.review(stream);
                let clocks = self.clocks.entry(stream.to_owned()).or_default();
                for event in &events {
                    match event {
                        DomainEvent::Review(ReviewEvent::Requested(_)) => {
                            clocks.requested = position
                        }
                        DomainEvent::Review(ReviewEvent::Tier2Requested(_)) => {
                            clocks.tier2_requested = position
                        }
                        _ => {}
                    }
                }
                // A deadline running before and not after, and not recorded missed: its step
                // was done (or the review withdrawn) by this commit. In time?
                let after_due = after.due();
                for (kind, due) in before.due() {
                    if after_due.iter().any(|(k, _)| *k == kind) || after.missed().contains(&kind) {
                        continue;
                    }
                    self.count(DEADLINE_MET_OR_MISSED);
                    if at > due + self.grace {
                        return Err(fail(
                            position,
                            DEADLINE_MET_OR_MISSED,
                            format!(
                                "{stream}: the {kind} deadline was due at {due}; its step was done at {at}, late, with no miss recorded"
                            ),
                        ));
                    }
                }
                Ok(())
            }
            "officer" | "representation" => self.apply(commit),
            _ => Ok(()),
        }
    }

    fn review(&self, stream: &str) -> Review {
        self.world
            .reviews
            .get(stream)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    }

    fn apply(&mut self, commit: &RecordedCommit) -> Result<(), RuleFailure> {
        self.domain_commits += 1;
        self.world
            .apply(commit)
            .map_err(|e| fail(commit.position, DECODE, e))
    }

    fn check_decision(
        &mut self,
        position: u64,
        r: &docket_domain::case::DecisionRecorded,
    ) -> Result<(), RuleFailure> {
        let id = r.decision;
        // The policy version in force at the decision.
        self.count(DECISION_POLICY_VERSION);
        let in_force = self.policies.in_force_at(r.at);
        let expected = in_force.map(|p| p.version.clone());
        if r.policy_version != expected {
            return Err(fail(
                position,
                DECISION_POLICY_VERSION,
                format!(
                    "decision {id} at {} records policy version {:?}; the version in force was {:?}",
                    r.at, r.policy_version, expected
                ),
            ));
        }
        // By a registered officer trained for it.
        self.count(DECISION_OFFICER_TRAINED);
        let Some(profile) = self.world.officer(r.officer) else {
            return Err(fail(
                position,
                DECISION_OFFICER_TRAINED,
                format!(
                    "decision {id} was made by {}, who is not a registered officer",
                    r.officer
                ),
            ));
        };
        if let Some(version) = &r.policy_version {
            if !profile.trained_for.contains(version) {
                return Err(fail(
                    position,
                    DECISION_OFFICER_TRAINED,
                    format!(
                        "decision {id} was made by {}, who had no training for policy {version}",
                        r.officer
                    ),
                ));
            }
        }
        // A departure that needs approval was approved by a supervisor.
        self.count(DEPARTURE_APPROVED);
        let policy = r
            .policy_version
            .as_deref()
            .and_then(|v| self.policies.get(v));
        let implied = match (policy, &r.guidance) {
            (Some(p), Some(g)) => p.departure(g, r.action),
            _ => None,
        };
        if let (Some(d), None) = (implied, r.departure) {
            return Err(fail(
                position,
                DEPARTURE_APPROVED,
                format!(
                    "decision {id} ({}) departs from its guidance ({:?}) but records no departure",
                    r.action, d.kind
                ),
            ));
        }
        let needs = r
            .departure
            .is_some_and(|d| d.needs_approval || policy.is_some_and(|p| p.needs_approval(d.kind)))
            || implied.is_some_and(|d| d.needs_approval);
        if needs {
            let Some(approver) = r.approved_by else {
                return Err(fail(
                    position,
                    DEPARTURE_APPROVED,
                    format!(
                        "decision {id} departs from guidance ({:?}) and needs a supervisor's approval; none is recorded",
                        r.departure.map(|d| d.kind)
                    ),
                ));
            };
            if approver == r.officer {
                return Err(fail(
                    position,
                    DEPARTURE_APPROVED,
                    format!("decision {id} was approved by its own officer {approver}"),
                ));
            }
            let role = self.world.officer(approver).map(|p| p.role);
            if !matches!(role, Some(Role::Supervisor | Role::FieldOfficeDirector)) {
                return Err(fail(
                    position,
                    DEPARTURE_APPROVED,
                    format!(
                        "decision {id} was approved by {approver}, who is not registered as a supervisor ({})",
                        role.map_or_else(|| "not registered".to_owned(), |r| format!("registered as {r}"))
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The checks that need the whole log: every deadline still running whose due time (plus
    /// grace) is before the last commit's time is neither met nor recorded missed. Names the
    /// earliest such clock's start.
    pub fn finish(&mut self) -> Result<(), RuleFailure> {
        let Some(now) = self.last_time else {
            return Ok(());
        };
        let mut failures = Vec::new();
        let mut reviews: Vec<(&String, &Review)> = self
            .world
            .reviews
            .iter()
            .map(|(stream, (_, review))| (stream, review))
            .collect();
        reviews.sort_by_key(|(stream, _)| self.clocks.get(*stream).map_or(0, |c| c.requested));
        let mut counted = Vec::new();
        for (stream, review) in reviews {
            if review.request().is_none() {
                continue;
            }
            counted.push(REVIEW_ACKNOWLEDGED);
            let clocks = self.clocks.get(stream).copied().unwrap_or_default();
            for (kind, due) in review.due() {
                counted.push(DEADLINE_MET_OR_MISSED);
                if now <= due + self.grace {
                    continue;
                }
                let (position, started) = match kind {
                    DeadlineKind::Tier2Decision => (clocks.tier2_requested, "tier-2 request"),
                    _ => (clocks.requested, "request"),
                };
                let order = DeadlineKind::ALL.iter().position(|k| *k == kind);
                failures.push((
                    position,
                    order,
                    fail(
                        position,
                        rule_for(kind),
                        format!(
                            "{stream}: the {kind} deadline of the {started} at position {position} passed at {due}; by the last commit ({now}) its step was neither done nor recorded missed"
                        ),
                    ),
                ));
            }
        }
        for rule in counted {
            self.count(rule);
        }
        failures.sort_by_key(|(position, order, _)| (*position, *order));
        match failures.into_iter().next() {
            Some((_, _, failure)) => Err(failure),
            None => Ok(()),
        }
    }
}

fn decode_all(commit: &RecordedCommit) -> Result<Vec<DomainEvent>, RuleFailure> {
    commit
        .commit
        .events
        .iter()
        .map(|e| {
            decode_event(e).map_err(|err| {
                fail(
                    commit.position,
                    DECODE,
                    format!("event {} ({}): {err}", e.id, e.type_name),
                )
            })
        })
        .collect()
}
