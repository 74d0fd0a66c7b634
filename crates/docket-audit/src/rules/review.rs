//! The review rules: every due time a review records recomputed from its step's commit time
//! (`deadline_recomputed`), and each deadline judged by the recomputed due time
//! (`deadline_met_or_missed`, `review_acknowledged`).
//!
//! The recomputation follows the review aggregate step by step, with the same functions
//! ([`docket_domain::Deadlines`]): the request sets the acknowledgement and tier-1 due times; a
//! prioritisation shortens the open tier's to its priority period from then, never later than
//! before; tier 1's decision opens the window for tier 2; tier 2's request sets its due time,
//! shorter when the review is prioritised; a miss records the due time then running. The
//! comparison is to the microsecond, the resolution of a commit's recorded time.

use chrono::{DateTime, Utc};
use docket_domain::events::DomainEvent;
use docket_domain::review::{DeadlineKind, Review, ReviewEvent, TierDue};
use docket_domain::values::ReviewTier;
use docket_domain::Aggregate;
use docket_log::RecordedCommit;

use super::{
    fail, Rule, RuleChecker, RuleFailure, DEADLINE_MET_OR_MISSED, DEADLINE_RECOMPUTED,
    REVIEW_ACKNOWLEDGED,
};

/// Where a review's clocks started, and its due times as recomputed.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Clocks {
    /// The request's position.
    pub(super) requested: u64,
    /// The tier-2 request's position.
    pub(super) tier2_requested: u64,
    acknowledge: Option<DateTime<Utc>>,
    tier1: Option<DateTime<Utc>>,
    tier2: Option<DateTime<Utc>>,
    tier2_closes: Option<DateTime<Utc>>,
}

impl Clocks {
    /// The recomputed due time of a deadline.
    pub(super) fn due(&self, kind: DeadlineKind) -> Option<DateTime<Utc>> {
        match kind {
            DeadlineKind::Acknowledge => self.acknowledge,
            DeadlineKind::Tier1Decision => self.tier1,
            DeadlineKind::Tier2Decision => self.tier2,
        }
    }

    fn tier(&self, tier: ReviewTier) -> Option<DateTime<Utc>> {
        match tier {
            ReviewTier::Tier1 => self.tier1,
            ReviewTier::Tier2 => self.tier2,
        }
    }

    fn set_tier(&mut self, tier: ReviewTier, due: DateTime<Utc>) {
        match tier {
            ReviewTier::Tier1 => self.tier1 = Some(due),
            ReviewTier::Tier2 => self.tier2 = Some(due),
        }
    }
}

/// The rule a deadline's absence breaks.
pub(super) fn rule_for(kind: DeadlineKind) -> &'static str {
    match kind {
        DeadlineKind::Acknowledge => REVIEW_ACKNOWLEDGED,
        _ => DEADLINE_MET_OR_MISSED,
    }
}

fn same(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    a.timestamp_micros() == b.timestamp_micros()
}

fn show_due(due: Option<&TierDue>) -> String {
    match due {
        Some(d) => format!("{} due at {}", d.tier, d.due),
        None => "none (no tier open)".to_owned(),
    }
}

impl RuleChecker {
    /// Checks and folds a review commit.
    pub(super) fn check_review(
        &mut self,
        commit: &RecordedCommit,
        at: DateTime<Utc>,
        events: Vec<DomainEvent>,
    ) -> Result<(), RuleFailure> {
        let position = commit.position;
        let stream = commit.commit.stream.as_str();
        let before = self.review(stream);
        let before_clocks = self.clocks.get(stream).copied().unwrap_or_default();
        let mut clocks = before_clocks;
        let mut state = before.clone();
        for event in &events {
            // An event of another aggregate is refused when the commit is applied.
            let DomainEvent::Review(event) = event else {
                continue;
            };
            self.recompute(position, stream, at, &state, &mut clocks, event)?;
            state = state.evolve(event);
        }
        self.clocks.insert(stream.to_owned(), clocks);
        self.apply(commit, events)?;
        let after = self.review(stream);
        // A deadline running before and not after, and not recorded missed: its step was done
        // (or the review withdrawn) by this commit. In time, by the recomputed due time?
        let after_due = after.due();
        for (kind, recorded) in before.due() {
            if after_due.iter().any(|(k, _)| *k == kind) || after.missed().contains(&kind) {
                continue;
            }
            self.count(Rule::DeadlineMetOrMissed);
            let due = before_clocks.due(kind).unwrap_or(recorded);
            if at > due + self.settings.grace {
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

    /// Compares a recorded due time with the recomputed one.
    fn expect_due(
        &mut self,
        position: u64,
        stream: &str,
        what: &str,
        recorded: DateTime<Utc>,
        expected: Option<DateTime<Utc>>,
        basis: &str,
    ) -> Result<DateTime<Utc>, RuleFailure> {
        self.count(Rule::DeadlineRecomputed);
        let Some(expected) = expected else {
            return Err(fail(
                position,
                DEADLINE_RECOMPUTED,
                format!("{stream}: {what} cannot be recomputed ({basis}): out of range"),
            ));
        };
        if !same(recorded, expected) {
            return Err(fail(
                position,
                DEADLINE_RECOMPUTED,
                format!(
                    "{stream}: {what} is recorded as {recorded}; recomputed ({basis}) it is {expected}"
                ),
            ));
        }
        Ok(expected)
    }

    /// Recomputes the due times one review event records, from `at`, its commit's time, and
    /// the review's state and recomputed clocks just before it.
    fn recompute(
        &mut self,
        position: u64,
        stream: &str,
        at: DateTime<Utc>,
        state: &Review,
        clocks: &mut Clocks,
        event: &ReviewEvent,
    ) -> Result<(), RuleFailure> {
        let d = self.settings.deadlines.clone();
        match event {
            ReviewEvent::Requested(r) => {
                clocks.requested = position;
                let basis = format!(
                    "{} business day(s) after the request's commit time {at}",
                    d.acknowledge_business_days
                );
                clocks.acknowledge = Some(self.expect_due(
                    position,
                    stream,
                    "the request's acknowledge_due",
                    r.acknowledge_due,
                    d.acknowledge_due(at),
                    &basis,
                )?);
                let basis = format!("{} days after the request's commit time {at}", d.tier1_days);
                clocks.tier1 = Some(self.expect_due(
                    position,
                    stream,
                    "the request's tier-1 decision_due",
                    r.decision_due,
                    d.tier1_due(at),
                    &basis,
                )?);
            }
            ReviewEvent::Prioritised(p) => {
                self.count(Rule::DeadlineRecomputed);
                let expected = match state.open_tier() {
                    None => None,
                    Some(tier) => {
                        let due = clocks
                            .tier(tier)
                            .and_then(|current| d.prioritised_due(tier, at, current));
                        let Some(due) = due else {
                            return Err(fail(
                                position,
                                DEADLINE_RECOMPUTED,
                                format!("{stream}: the prioritised {tier} decision_due cannot be recomputed"),
                            ));
                        };
                        Some(TierDue { tier, due })
                    }
                };
                let agrees = match (&p.decision_due, &expected) {
                    (None, None) => true,
                    (Some(r), Some(e)) => r.tier == e.tier && same(r.due, e.due),
                    _ => false,
                };
                if !agrees {
                    return Err(fail(
                        position,
                        DEADLINE_RECOMPUTED,
                        format!(
                            "{stream}: the prioritisation records the open tier's decision_due as {}; recomputed (its priority period from the commit time {at}, never later than before) it is {}",
                            show_due(p.decision_due.as_ref()),
                            show_due(expected.as_ref())
                        ),
                    ));
                }
                if let Some(e) = expected {
                    clocks.set_tier(e.tier, e.due);
                }
            }
            ReviewEvent::Tier1Decided(t) => {
                let basis = format!(
                    "{} days after tier 1's commit time {at}",
                    d.tier2_request_days
                );
                clocks.tier2_closes = Some(self.expect_due(
                    position,
                    stream,
                    "tier 1's tier2_request_closes",
                    t.tier2_request_closes,
                    d.tier2_request_closes(at),
                    &basis,
                )?);
            }
            ReviewEvent::Tier2Requested(r) => {
                clocks.tier2_requested = position;
                let prioritised = state.is_prioritised();
                let basis = format!(
                    "{} days after the tier-2 request's commit time {at}, the review {}prioritised",
                    if prioritised {
                        d.tier2_priority_days
                    } else {
                        d.tier2_days
                    },
                    if prioritised { "" } else { "not " }
                );
                clocks.tier2 = Some(self.expect_due(
                    position,
                    stream,
                    "the tier-2 request's decision_due",
                    r.decision_due,
                    d.tier2_due(at, prioritised),
                    &basis,
                )?);
                if let Some(closes) = clocks.tier2_closes {
                    self.count(Rule::DeadlineMetOrMissed);
                    if at >= closes {
                        return Err(fail(
                            position,
                            DEADLINE_MET_OR_MISSED,
                            format!(
                                "{stream}: tier 2 was asked for at {at}, after its window closed at {closes}"
                            ),
                        ));
                    }
                }
            }
            ReviewEvent::DeadlineMissed(m) => {
                let kind = m.deadline;
                let due = self.expect_due(
                    position,
                    stream,
                    &format!("the miss's {kind} due time"),
                    m.due,
                    clocks.due(kind),
                    "the due time then running",
                )?;
                self.count(Rule::DeadlineMetOrMissed);
                if at < due {
                    return Err(fail(
                        position,
                        DEADLINE_MET_OR_MISSED,
                        format!(
                            "{stream}: the {kind} deadline is recorded missed at {at}, before it was due at {due}"
                        ),
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }
}
