//! The process rules an audit checks over the log, by folding the domain's events exactly as the
//! services do (the domain's fold, [`WorldView`]) and judging each step with the domain's own
//! types, policy and deadlines. What a rule can recompute, it recomputes, rather than believe
//! what the events say:
//!
//! | rule | what it checks |
//! |---|---|
//! | `commit_time_order` | no commit's recorded time is earlier than the latest so far by more than [`RuleSettings::commit_time_tolerance`] (default 5 s) |
//! | `event_id_unique` | every event id appears once in the whole log |
//! | `event_time` | every domain event's own time (`at`) is within [`RuleSettings::event_time_tolerance`] (default 1 s) of its commit's recorded time |
//! | `deadline_recomputed` | every due time a review records (`acknowledge_due`, the tier-1 and tier-2 `decision_due`, a prioritisation's, `tier2_request_closes`, a miss's `due`) is the one recomputed from the step's commit time, the business-day rule, [`RuleSettings::deadlines`] and the review's priority |
//! | `review_acknowledged` | every review request is acknowledged, or its acknowledgement deadline recorded missed, by the time of the last commit (the failure names the request) |
//! | `deadline_met_or_missed` | every review deadline is met — its step done by its recomputed due time — or recorded missed, and no miss is recorded before it was due, nor tier 2 asked for after its window closed; a step done late with no miss recorded names that step's commit, a deadline passed and still running names the commit that started its clock (the request, or the tier-2 request) |
//! | `decision_policy_version` | every decision names the policy version in force at its commit's time (none when none was) |
//! | `decision_officer_trained` | by a registered officer trained for that version |
//! | `departure_approved` | the decision's guidance and departure are re-derived ([`rederive`]) from the factors the case recorded when it was proposed, under the version in force at its commit's time; a departure that needs approval has one, recorded for its proposal, by someone other than the officer registered as a supervisor or field office director; and the decision records exactly the re-derived guidance and departure |
//!
//! Streams of kind `audit` (the checkpointer's own records) are not the process's: the rules
//! skip them. Time is the commits' recorded time; `grace` allows for the scheduler recording a
//! miss a little after a deadline passes.

mod decisions;
mod ids;
mod review;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use docket_domain::case::{Case, CaseEvent};
use docket_domain::events::DomainEvent;
use docket_domain::policy::PolicySet;
use docket_domain::review::{DeadlineKind, Review};
use docket_domain::world::WorldView;
use docket_domain::{Aggregate, AggregateKind, Deadlines};
use docket_log::RecordedCommit;

pub use decisions::{rederive, ProposalFacts, Rederived};

use ids::EventIds;
use review::Clocks;

/// Rule name: commit times never go backwards (beyond the tolerance).
pub const COMMIT_TIME_ORDER: &str = "commit_time_order";
/// Rule name: every event id appears once.
pub const EVENT_ID_UNIQUE: &str = "event_id_unique";
/// Rule name: a domain event's own time agrees with its commit's.
pub const EVENT_TIME: &str = "event_time";
/// Rule name: every recorded due time is the recomputed one.
pub const DEADLINE_RECOMPUTED: &str = "deadline_recomputed";
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

/// Every process rule's name, in the order a commit is checked.
pub const PROCESS_RULES: [&str; 9] = [
    COMMIT_TIME_ORDER,
    EVENT_ID_UNIQUE,
    EVENT_TIME,
    DEADLINE_RECOMPUTED,
    REVIEW_ACKNOWLEDGED,
    DEADLINE_MET_OR_MISSED,
    DECISION_POLICY_VERSION,
    DECISION_OFFICER_TRAINED,
    DEPARTURE_APPROVED,
];

/// Index of each rule in [`PROCESS_RULES`], for counting without a map lookup per commit.
#[derive(Clone, Copy, Debug)]
enum Rule {
    CommitTimeOrder = 0,
    EventIdUnique,
    EventTime,
    DeadlineRecomputed,
    ReviewAcknowledged,
    DeadlineMetOrMissed,
    DecisionPolicyVersion,
    DecisionOfficerTrained,
    DepartureApproved,
}

/// The stream kind whose commits the rules skip: the checkpointer's records.
const AUDIT_KIND: &str = "audit";

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

/// How the process rules judge.
#[derive(Clone, Debug)]
pub struct RuleSettings {
    /// The policy versions to judge decisions by.
    pub policies: PolicySet,
    /// Time allowed after a due time before its miss must be on record (default zero).
    pub grace: Duration,
    /// The deployment's review deadlines, to recompute due times with (default
    /// [`Deadlines::default`], what Docket ships).
    pub deadlines: Deadlines,
    /// How much earlier than the latest commit time so far a commit may be recorded (default
    /// 5 s): services in several processes stamp commits from their own clocks, and concurrent
    /// appends in one process can land in another order than they were stamped.
    pub commit_time_tolerance: Duration,
    /// How far a domain event's own time may be from its commit's recorded time (default 1 s).
    /// The services stamp both from one reading of their clock, so an honest log has them
    /// equal to the microsecond.
    pub event_time_tolerance: Duration,
}

impl RuleSettings {
    /// The defaults, under the given policy versions.
    pub fn new(policies: PolicySet) -> Self {
        RuleSettings {
            policies,
            grace: Duration::zero(),
            deadlines: Deadlines::default(),
            commit_time_tolerance: Duration::seconds(5),
            event_time_tolerance: Duration::seconds(1),
        }
    }
}

/// Folds commits in log order and checks the process rules as it goes.
#[derive(Debug)]
pub struct RuleChecker {
    world: WorldView,
    settings: RuleSettings,
    /// Per review stream: where its clocks started and its due times as recomputed.
    clocks: HashMap<String, Clocks>,
    /// The facts each pending proposal was judged on.
    proposals: ProposalFacts,
    /// Every event id seen, and the position of its commit.
    event_ids: EventIds,
    counts: [u64; PROCESS_RULES.len()],
    /// The latest commit time so far (µs) and its position.
    latest: Option<(i64, u64)>,
    domain_commits: u64,
}

fn micros(d: Duration) -> i64 {
    d.num_microseconds().unwrap_or(i64::MAX)
}

impl RuleChecker {
    /// A checker under the given policy versions, allowing `grace` after a due time before a
    /// miss must be on record; every other setting its default ([`RuleSettings::new`]).
    pub fn new(policies: PolicySet, grace: Duration) -> Self {
        RuleChecker::with_settings(RuleSettings {
            grace,
            ..RuleSettings::new(policies)
        })
    }

    /// A checker with the given settings.
    pub fn with_settings(settings: RuleSettings) -> Self {
        RuleChecker {
            world: WorldView::default(),
            settings,
            clocks: HashMap::new(),
            proposals: ProposalFacts::default(),
            event_ids: EventIds::default(),
            counts: [0; PROCESS_RULES.len()],
            latest: None,
            domain_commits: 0,
        }
    }

    /// The settings it judges by.
    pub fn settings(&self) -> &RuleSettings {
        &self.settings
    }

    /// How many times each rule was checked.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        PROCESS_RULES.iter().copied().zip(self.counts).collect()
    }

    /// Commits of the domain's streams (case, officer, representation, review) folded.
    pub fn domain_commits(&self) -> u64 {
        self.domain_commits
    }

    /// The state folded so far.
    pub fn world(&self) -> &WorldView {
        &self.world
    }

    fn count(&mut self, rule: Rule) {
        self.counts[rule as usize] += 1;
    }

    /// The last commit time seen (of the commits the rules look at).
    fn last_time(&self) -> Option<DateTime<Utc>> {
        self.latest
            .and_then(|(t, _)| DateTime::<Utc>::from_timestamp_micros(t))
    }

    /// Checks and folds the next commit (commits must come in log order).
    pub fn check_commit(&mut self, commit: &RecordedCommit) -> Result<(), RuleFailure> {
        let kind = commit.commit.stream.kind();
        if kind == AUDIT_KIND {
            return Ok(());
        }
        let at = self.commit_time(commit)?;
        self.unique_ids(commit)?;
        match AggregateKind::parse(kind) {
            Some(AggregateKind::Case) => {
                let events = self.decode_timed(commit, at)?;
                self.check_case(commit, at, &events)?;
                self.apply(commit, events)
            }
            Some(AggregateKind::Review) => {
                let events = self.decode_timed(commit, at)?;
                self.check_review(commit, at, events)
            }
            Some(AggregateKind::Officer | AggregateKind::Representation) => {
                let events = self.decode_timed(commit, at)?;
                self.apply(commit, events)
            }
            None => Ok(()),
        }
    }

    /// `commit_time_order`: the commit's time, not earlier than the latest so far beyond the
    /// tolerance.
    fn commit_time(&mut self, commit: &RecordedCommit) -> Result<DateTime<Utc>, RuleFailure> {
        let position = commit.position;
        let t = commit.commit.metadata.recorded_at_micros;
        self.count(Rule::CommitTimeOrder);
        let Some(at) = DateTime::<Utc>::from_timestamp_micros(t) else {
            return Err(fail(
                position,
                COMMIT_TIME_ORDER,
                format!("the commit's recorded time ({t} µs since 1970) is out of range"),
            ));
        };
        match self.latest {
            Some((latest, latest_position)) if t < latest => {
                let tolerance = micros(self.settings.commit_time_tolerance);
                if latest.saturating_sub(t) > tolerance {
                    let latest_at =
                        DateTime::<Utc>::from_timestamp_micros(latest).unwrap_or_default();
                    return Err(fail(
                        position,
                        COMMIT_TIME_ORDER,
                        format!(
                            "the commit is recorded at {at}, {} before the commit at position {latest_position} ({latest_at}); commit times may go back by at most {}",
                            show(Duration::microseconds(latest - t)),
                            show(self.settings.commit_time_tolerance)
                        ),
                    ));
                }
            }
            _ => self.latest = Some((t, position)),
        }
        Ok(at)
    }

    /// `event_id_unique`: none of the commit's event ids seen before.
    fn unique_ids(&mut self, commit: &RecordedCommit) -> Result<(), RuleFailure> {
        for event in &commit.commit.events {
            self.count(Rule::EventIdUnique);
            if let Some(first) = self.event_ids.insert(event.id, commit.position) {
                return Err(fail(
                    commit.position,
                    EVENT_ID_UNIQUE,
                    format!(
                        "event {} ({}) was already recorded by the commit at position {first}",
                        event.id, event.type_name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Decodes the commit's domain events and checks `event_time` for each.
    fn decode_timed(
        &mut self,
        commit: &RecordedCommit,
        at: DateTime<Utc>,
    ) -> Result<Vec<DomainEvent>, RuleFailure> {
        let events = decode_all(commit)?;
        let tolerance = micros(self.settings.event_time_tolerance);
        let t = at.timestamp_micros();
        for (event, data) in events.iter().zip(&commit.commit.events) {
            self.count(Rule::EventTime);
            let own = event.at();
            if own.timestamp_micros().abs_diff(t) > tolerance.unsigned_abs() {
                return Err(fail(
                    commit.position,
                    EVENT_TIME,
                    format!(
                        "event {} ({}) says it happened at {own}; its commit is recorded at {at}, {} apart; they may differ by at most {}",
                        data.id,
                        event.name(),
                        show((own - at).abs()),
                        show(self.settings.event_time_tolerance)
                    ),
                ));
            }
        }
        Ok(events)
    }

    /// The decisions of a case commit, each judged on the case's state just before it.
    fn check_case(
        &mut self,
        commit: &RecordedCommit,
        at: DateTime<Utc>,
        events: &[DomainEvent],
    ) -> Result<(), RuleFailure> {
        let judged = events.iter().any(|e| {
            matches!(
                e,
                DomainEvent::Case(
                    CaseEvent::DecisionProposed(_)
                        | CaseEvent::DecisionReturned(_)
                        | CaseEvent::DecisionRecorded(_)
                )
            )
        });
        if !judged {
            return Ok(());
        }
        let stream = commit.commit.stream.as_str();
        let mut state: Case = self
            .world
            .cases
            .get(stream)
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        for event in events {
            // An event of another aggregate is refused when the commit is applied.
            let DomainEvent::Case(event) = event else {
                continue;
            };
            if let CaseEvent::DecisionRecorded(r) = event {
                let facts = self.proposals.for_decision(stream, r.decision, &state);
                self.check_decision(commit.position, at, r, &state, facts)?;
            }
            self.proposals.note(stream, &state, event);
            state = state.evolve(event);
        }
        Ok(())
    }

    fn review(&self, stream: &str) -> Review {
        self.world
            .reviews
            .get(stream)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    }

    /// Folds the commit's events, already decoded, into the world.
    fn apply(
        &mut self,
        commit: &RecordedCommit,
        events: Vec<DomainEvent>,
    ) -> Result<(), RuleFailure> {
        self.domain_commits += 1;
        self.world
            .apply(
                commit.position,
                commit.commit.stream.as_str(),
                commit.commit.metadata.idempotency_key.as_deref(),
                || Ok(events),
            )
            .map_err(|e| fail(commit.position, DECODE, e))
    }

    /// The checks that need the whole log: every deadline still running whose recomputed due
    /// time (plus grace) is before the last commit's time is neither met nor recorded missed.
    /// Names the earliest such clock's start.
    pub fn finish(&mut self) -> Result<(), RuleFailure> {
        let Some(now) = self.last_time() else {
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
            counted.push(Rule::ReviewAcknowledged);
            let clocks = self.clocks.get(stream).copied().unwrap_or_default();
            for (kind, recorded) in review.due() {
                counted.push(Rule::DeadlineMetOrMissed);
                let due = clocks.due(kind).unwrap_or(recorded);
                if now <= due + self.settings.grace {
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
                        review::rule_for(kind),
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

/// A duration for people: `3 s`, `2 h 5 min`, `12 days`.
fn show(d: Duration) -> String {
    let s = d.num_seconds();
    if s >= 2 * 86_400 {
        format!("{} days", s / 86_400)
    } else if s >= 3600 {
        format!("{} h {} min", s / 3600, s % 3600 / 60)
    } else if s >= 1 {
        format!("{:.3} s", d.num_milliseconds() as f64 / 1e3)
    } else {
        format!("{} µs", d.num_microseconds().unwrap_or(0))
    }
}

fn decode_all(commit: &RecordedCommit) -> Result<Vec<DomainEvent>, RuleFailure> {
    commit
        .commit
        .events
        .iter()
        .map(|e| {
            crate::decode_event(e).map_err(|err| {
                fail(
                    commit.position,
                    DECODE,
                    format!("event {} ({}): {err}", e.id, e.type_name),
                )
            })
        })
        .collect()
}
