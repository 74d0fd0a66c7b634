//! What a demo run did: counts of commands, refusals, cases, decisions, reviews, and every
//! round trip's latency, with a readable `Display`.
//!
//! The guidance and departures the demo counts are its plan's: what the guideline version in
//! force at [`DemoSummary::start`] gives. The system judges on its own clock and may record
//! something else (no guidance at all when no version is in force then). Read back what the
//! system recorded with [`DemoSummary::read_back`]; the summary then reports what the log holds
//! and says plainly where it differs from the plan ([`DemoSummary::plan_differences`]).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use docket_domain::case::Case;
use docket_domain::values::CaseId;

/// The guidance key of a decision recorded without guidance (no version in force).
pub(crate) const NO_VERSION: &str = "no_version";

/// What the system's log holds for a run's cases: the last decision recorded in each.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The run's cases found.
    pub cases: usize,
    /// Those with a decision recorded.
    pub decided: usize,
    /// Their decisions by the priority of the guidance recorded with them (`no_version` when
    /// none was).
    pub by_priority: BTreeMap<String, usize>,
    /// Their decisions by the policy version recorded with them (`none` when none was).
    pub by_policy_version: BTreeMap<String, usize>,
    /// Decisions recorded as departing from their guidance.
    pub departures: usize,
    /// Of those, departures recorded as needing a supervisor's approval.
    pub departures_needing_approval: usize,
    /// Decisions recorded with a supervisor's approval.
    pub approved: usize,
}

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
    /// Decisions recorded (the last of each case) that the plan has depart from the guidance
    /// at `start`, approved: what the demo expects the log to hold. [`DemoSummary::recorded`]
    /// is what it holds.
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

    /// The ids of the run's cases, to read back what the system recorded for them.
    pub case_ids: Vec<CaseId>,
    /// What the system's log holds for the run's cases, once read back
    /// ([`DemoSummary::read_back`]); `None` until then.
    pub recorded: Option<Recorded>,
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

    /// Reads back what the system recorded for the run's cases, from the cases as the log
    /// folds them (for example a `WorldView`'s, or `docket audit replay`'s): the last decision
    /// of each, with the guidance, departure and approval it was recorded with. Cases of other
    /// runs are ignored.
    pub fn read_back<'a>(&mut self, cases: impl IntoIterator<Item = &'a Case>) {
        let ours: HashSet<CaseId> = self.case_ids.iter().copied().collect();
        let mut recorded = Recorded::default();
        for case in cases {
            if !case.opened.as_ref().is_some_and(|o| ours.contains(&o.case)) {
                continue;
            }
            recorded.cases += 1;
            let Some(d) = case.decisions.last() else {
                continue;
            };
            recorded.decided += 1;
            let priority = d
                .guidance
                .as_ref()
                .map_or(NO_VERSION, |g| g.priority.code());
            *recorded.by_priority.entry(priority.to_owned()).or_default() += 1;
            let version = d.policy_version.as_deref().unwrap_or("none");
            *recorded
                .by_policy_version
                .entry(version.to_owned())
                .or_default() += 1;
            if let Some(departure) = d.departure {
                recorded.departures += 1;
                recorded.departures_needing_approval += usize::from(departure.needs_approval);
            }
            recorded.approved += usize::from(d.approved_by.is_some());
        }
        self.recorded = Some(recorded);
    }

    /// Where what the log holds differs from the plan, in words; empty when it agrees or was
    /// not read back.
    pub fn plan_differences(&self) -> Vec<String> {
        let Some(r) = &self.recorded else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if r.decided != self.cases_decided {
            out.push(format!(
                "{} of the run's cases have a decision in the log; the demo counted {} decided",
                r.decided, self.cases_decided
            ));
        }
        let planned: BTreeMap<String, usize> = self
            .decisions_by_priority
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect();
        if r.by_priority != planned {
            out.push(format!(
                "the guidance recorded is {}; the plan's, under {}, is {}",
                ranked(&r.by_priority),
                self.policy_version
                    .as_deref()
                    .map_or("no version".to_owned(), |v| format!("the {v} guidelines")),
                ranked(&self.decisions_by_priority)
            ));
        }
        if r.departures != self.departures_recorded {
            out.push(format!(
                "the log holds {} departures from guidance; the plan has {}",
                r.departures, self.departures_recorded
            ));
        }
        out
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
        let planned_departures = format!(
            "{} proposed: {} approved, {} returned to the officer; {} to be recorded",
            self.departures_proposed,
            self.departures_approved,
            self.departures_returned,
            self.departures_recorded,
        );
        match &self.recorded {
            Some(r) => {
                writeln!(
                    f,
                    "  guidance    in the log: {} (versions: {})",
                    ranked(&r.by_priority),
                    list(&r.by_policy_version)
                )?;
                writeln!(f, "  actions     {}", ranked(&self.decisions_by_action))?;
                writeln!(f, "  by office   {}", list(&self.decisions_by_office))?;
                writeln!(
                    f,
                    "  departures  in the log: {} of {} decisions ({} needing approval; {} decisions approved by a supervisor); planned: {planned_departures}",
                    r.departures, r.decided, r.departures_needing_approval, r.approved,
                )?;
                let differences = self.plan_differences();
                if differences.is_empty() {
                    writeln!(f, "  record      the log holds what the demo planned")?;
                }
                for d in differences {
                    writeln!(f, "  ! the log differs from the plan: {d}")?;
                }
            }
            None => {
                writeln!(
                    f,
                    "  guidance    planned: {} (not read back from the log)",
                    ranked(&self.decisions_by_priority)
                )?;
                writeln!(f, "  actions     {}", ranked(&self.decisions_by_action))?;
                writeln!(f, "  by office   {}", list(&self.decisions_by_office))?;
                if self.no_policy_in_force_observed {
                    writeln!(
                        f,
                        "  departures  planned: {planned_departures}; but no guideline version is in force on the system's clock, so its log holds no guidance and no departure"
                    )?;
                } else {
                    writeln!(
                        f,
                        "  departures  planned: {planned_departures} (not read back from the log)"
                    )?;
                }
            }
        }
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
