//! What a demo run did: counts of commands, refusals, cases, decisions, reviews, and every
//! round trip's latency, with a readable `Display`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The result of a demo run.
#[derive(Clone, Debug, Default)]
pub struct DemoSummary {
    /// The seed the workload was planned from.
    pub seed: u64,
    /// The run's tag: it prefixes every idempotency key of the run.
    pub run: String,
    /// Cases driven at once.
    pub concurrency: usize,
    /// The time the workload is dated from (encounters, training, G-28s come before it).
    pub start: DateTime<Utc>,
    /// The guideline version in force at `start`, from which the demo expects guidance.
    pub policy_version: Option<String>,
    /// Set when the system accepted a proposal from an untrained officer: no guideline version
    /// is in force on the system's own clock, so it requires no training and gives no guidance.
    pub no_policy_in_force_observed: bool,
    /// Wall time of the run.
    pub elapsed: Duration,

    /// Commands sent (a command retried after `unavailable` counts once).
    pub sent: usize,
    /// Commands accepted.
    pub accepted: usize,
    /// Accepted commands answered as duplicates of an earlier attempt with the same key.
    pub duplicates: usize,
    /// Attempts repeated after a retryable error (`unavailable`, `conflict`).
    pub retries: usize,
    /// Refused commands by error code.
    pub refused: BTreeMap<String, usize>,
    /// Refusals the workload planned (an untrained officer proposing, a forgotten
    /// protected-area exception), by code.
    pub expected_refusals: BTreeMap<String, usize>,
    /// Refusals the workload did not plan, by code.
    pub unexpected_refusals: BTreeMap<String, usize>,
    /// Planned refusals that did not happen (the command was accepted), by code.
    pub expected_but_accepted: BTreeMap<String, usize>,
    /// The first unexpected refusals: command, code and message.
    pub problems: Vec<String>,

    /// Staff registered, by role.
    pub staff: BTreeMap<&'static str, usize>,
    /// Officers registered without training.
    pub untrained_officers: usize,
    /// Training completions recorded.
    pub trainings: usize,

    /// Cases planned.
    pub cases: usize,
    /// Cases opened.
    pub cases_opened: usize,
    /// Cases with a recorded decision.
    pub cases_decided: usize,
    /// Cases handed to another officer after the first was refused as untrained.
    pub cases_reassigned: usize,
    /// Records attached, by source.
    pub records_attached: BTreeMap<&'static str, usize>,
    /// Sources marked unavailable, by source.
    pub sources_unavailable: BTreeMap<&'static str, usize>,
    /// Recorded decisions by action.
    pub decisions_by_action: BTreeMap<&'static str, usize>,
    /// Recorded decisions by the priority of the guidance at `start` (`no_version` without one).
    pub decisions_by_priority: BTreeMap<&'static str, usize>,
    /// Recorded decisions by field office.
    pub decisions_by_office: BTreeMap<&'static str, usize>,
    /// Proposals that depart from the guidance and need a supervisor's approval.
    pub departures_proposed: usize,
    /// Departures approved by a supervisor.
    pub departures_approved: usize,
    /// Departures returned to the officer.
    pub departures_returned: usize,
    /// Recorded decisions that depart from the guidance (approved).
    pub departures_recorded: usize,

    /// G-28s recorded.
    pub g28_recorded: usize,
    /// G-28s withdrawn.
    pub g28_withdrawn: usize,

    /// Reviews requested, by requester capacity (`noncitizen`, `representative`).
    pub reviews_requested: BTreeMap<&'static str, usize>,
    /// Reviews acknowledged.
    pub reviews_acknowledged: usize,
    /// Reviews prioritised, by reason.
    pub reviews_prioritised: BTreeMap<&'static str, usize>,
    /// Tier-1 reviewers assigned.
    pub reviewers_assigned: usize,
    /// Information requested by a reviewer (both tiers).
    pub information_requested: usize,
    /// Information provided by a requester (both tiers).
    pub information_provided: usize,
    /// Tier-1 outcomes.
    pub tier1_outcomes: BTreeMap<&'static str, usize>,
    /// Tier-2 requests.
    pub tier2_requested: usize,
    /// Tier-2 Senior Reviewing Officials assigned.
    pub senior_officials_assigned: usize,
    /// Tier-2 outcomes.
    pub tier2_outcomes: BTreeMap<&'static str, usize>,
    /// Reviews withdrawn by their requester.
    pub reviews_withdrawn: usize,
    /// Deadlines left running at the end, by kind (`acknowledge`, `tier1_decision`,
    /// `tier2_decision`): the review service records each as missed once it passes on its
    /// clock.
    pub deadlines_running: BTreeMap<&'static str, usize>,

    /// Round-trip time of every attempt, by command name.
    pub latencies: BTreeMap<&'static str, Vec<Duration>>,
}

impl DemoSummary {
    /// Refused commands.
    pub fn refused_total(&self) -> usize {
        self.refused.values().sum()
    }

    /// Unexpected refusals.
    pub fn unexpected_total(&self) -> usize {
        self.unexpected_refusals.values().sum()
    }

    /// Commands per second over the run.
    pub fn commands_per_s(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Every round trip, sorted.
    pub fn round_trips(&self) -> Vec<Duration> {
        let mut all: Vec<Duration> = self.latencies.values().flatten().copied().collect();
        all.sort_unstable();
        all
    }

    /// The `q` quantile (0 to 1) of all round trips.
    pub fn round_trip_quantile(&self, q: f64) -> Duration {
        quantile(&self.round_trips(), q)
    }

    /// Reviews requested.
    pub fn reviews_total(&self) -> usize {
        self.reviews_requested.values().sum()
    }

    /// Deadlines left running.
    pub fn deadlines_running_total(&self) -> usize {
        self.deadlines_running.values().sum()
    }
}

/// The `q` quantile of sorted samples (zero when there are none).
pub(crate) fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// `a 3, b 2` from a map, or `none`.
fn list<K: fmt::Display>(map: &BTreeMap<K, usize>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The same, largest first.
fn ranked<K: fmt::Display>(map: &BTreeMap<K, usize>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    let mut v: Vec<_> = map.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

impl fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let policy = match &self.policy_version {
            Some(v) => format!("guidelines {v} in force"),
            None => "no guideline version in force".to_owned(),
        };
        writeln!(
            f,
            "docket demo: seed {}, run {}, {} cases, {} at a time, dated {} ({policy})",
            self.seed,
            self.run,
            self.cases,
            self.concurrency,
            self.start.format("%Y-%m-%d %H:%M UTC"),
        )?;
        writeln!(
            f,
            "  commands    {} sent in {:.1} s ({:.0}/s): {} accepted, {} refused; {} retried, {} duplicate replies",
            self.sent,
            self.elapsed.as_secs_f64(),
            self.commands_per_s(),
            self.accepted,
            self.refused_total(),
            self.retries,
            self.duplicates,
        )?;
        writeln!(
            f,
            "  refusals    expected: {}; unexpected: {}",
            list(&self.expected_refusals),
            list(&self.unexpected_refusals),
        )?;
        if !self.expected_but_accepted.is_empty() {
            writeln!(
                f,
                "              planned but accepted: {}",
                list(&self.expected_but_accepted)
            )?;
        }
        for p in &self.problems {
            writeln!(f, "              ! {p}")?;
        }
        writeln!(
            f,
            "  staff       {} ({} officers untrained); {} trainings recorded",
            list(&self.staff),
            self.untrained_officers,
            self.trainings,
        )?;
        writeln!(
            f,
            "  cases       {} opened, {} decided across {} field offices; {} handed to a trained officer",
            self.cases_opened,
            self.cases_decided,
            self.decisions_by_office.len(),
            self.cases_reassigned,
        )?;
        writeln!(
            f,
            "  records     attached: {}; unavailable: {}",
            list(&self.records_attached),
            list(&self.sources_unavailable),
        )?;
        writeln!(f, "  guidance    {}", ranked(&self.decisions_by_priority))?;
        writeln!(f, "  actions     {}", ranked(&self.decisions_by_action))?;
        writeln!(f, "  by office   {}", list(&self.decisions_by_office))?;
        writeln!(
            f,
            "  departures  {} proposed: {} approved, {} returned to the officer; {} recorded",
            self.departures_proposed,
            self.departures_approved,
            self.departures_returned,
            self.departures_recorded,
        )?;
        writeln!(
            f,
            "  G-28s       {} recorded, {} withdrawn",
            self.g28_recorded, self.g28_withdrawn
        )?;
        writeln!(
            f,
            "  reviews     {} requested ({}); {} acknowledged; prioritised: {}; {} reviewers assigned; {} information requests, {} answered; {} withdrawn",
            self.reviews_total(),
            list(&self.reviews_requested),
            self.reviews_acknowledged,
            list(&self.reviews_prioritised),
            self.reviewers_assigned,
            self.information_requested,
            self.information_provided,
            self.reviews_withdrawn,
        )?;
        writeln!(
            f,
            "    tier 1    {} decided: {}",
            self.tier1_outcomes.values().sum::<usize>(),
            list(&self.tier1_outcomes)
        )?;
        writeln!(
            f,
            "    tier 2    {} requested, {} assigned, {} decided: {}",
            self.tier2_requested,
            self.senior_officials_assigned,
            self.tier2_outcomes.values().sum::<usize>(),
            list(&self.tier2_outcomes)
        )?;
        writeln!(
            f,
            "  deadlines   left running: {} — the review service records each as missed when it passes on its own clock (acknowledge: 1 business day; tier 1: 14 days, 3 prioritised; tier 2: 30 days, 7 prioritised)",
            list(&self.deadlines_running)
        )?;
        let all = self.round_trips();
        writeln!(
            f,
            "  latency     {} round trips: p50 {}, p90 {}, p99 {}, max {}",
            all.len(),
            ms(quantile(&all, 0.5)),
            ms(quantile(&all, 0.9)),
            ms(quantile(&all, 0.99)),
            ms(all.last().copied().unwrap_or_default()),
        )?;
        if self.no_policy_in_force_observed {
            writeln!(
                f,
                "  note        the system accepted a proposal from an untrained officer: no guideline version is in force on its clock, so its decisions carry no guidance and need no approval"
            )?;
        }
        Ok(())
    }
}
