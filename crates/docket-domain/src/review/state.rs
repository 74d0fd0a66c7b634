//! A review's state, the fold of its events, and what it answers: the stage, the open tier,
//! the deadlines still running.

use chrono::{DateTime, Utc};

use super::{DeadlineKind, PriorityReason, ReviewRequested, Withdrawn};
use crate::values::{Actor, PersonId, ReferralTarget, ReviewOutcome, ReviewTier};

/// Where a review is in its process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// No request yet.
    NotRequested,
    /// Requested, not yet acknowledged.
    Requested,
    /// Acknowledged, no reviewer yet.
    Acknowledged,
    /// A tier-1 reviewer is assigned.
    Tier1Assigned,
    /// Tier 1 decided; tier 2 may be asked for within its window.
    Tier1Decided,
    /// Tier 2 asked for, no Senior Reviewing Official yet.
    Tier2Requested,
    /// A Senior Reviewing Official is assigned.
    Tier2Assigned,
    /// Tier 2 decided: closed.
    Tier2Decided,
    /// Withdrawn by the requester: closed.
    Withdrawn,
}

impl Stage {
    /// Every stage, in process order.
    pub const ALL: [Stage; 9] = [
        Stage::NotRequested,
        Stage::Requested,
        Stage::Acknowledged,
        Stage::Tier1Assigned,
        Stage::Tier1Decided,
        Stage::Tier2Requested,
        Stage::Tier2Assigned,
        Stage::Tier2Decided,
        Stage::Withdrawn,
    ];

    /// The stable code, snake case, e.g. `tier1_assigned`: what APIs and the dashboard show.
    pub fn code(self) -> &'static str {
        match self {
            Stage::NotRequested => "not_requested",
            Stage::Requested => "requested",
            Stage::Acknowledged => "acknowledged",
            Stage::Tier1Assigned => "tier1_assigned",
            Stage::Tier1Decided => "tier1_decided",
            Stage::Tier2Requested => "tier2_requested",
            Stage::Tier2Assigned => "tier2_assigned",
            Stage::Tier2Decided => "tier2_decided",
            Stage::Withdrawn => "withdrawn",
        }
    }
}

/// A tier's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TierDecision {
    /// The outcome.
    pub outcome: ReviewOutcome,
    /// Where it was referred.
    pub referred_to: Option<ReferralTarget>,
    /// Why.
    pub reasons: String,
    /// Who decided.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// One tier's progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Tier {
    pub(super) decision_due: DateTime<Utc>,
    pub(super) reviewer: Option<PersonId>,
    pub(super) decision: Option<TierDecision>,
}

impl Tier {
    pub(super) fn new(decision_due: DateTime<Utc>) -> Self {
        Tier {
            decision_due,
            reviewer: None,
            decision: None,
        }
    }
}

/// A review's state: the fold of its events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
// The fields are the rules' (`decide.rs`) to read and write; everyone else asks the methods.
pub struct Review {
    pub(super) request: Option<ReviewRequested>,
    pub(super) acknowledged_at: Option<DateTime<Utc>>,
    pub(super) priority: Vec<PriorityReason>,
    pub(super) tier1: Option<Tier>,
    pub(super) tier2_request_closes: Option<DateTime<Utc>>,
    pub(super) tier2: Option<Tier>,
    pub(super) open_questions: u32,
    pub(super) withdrawn: Option<Withdrawn>,
    pub(super) missed: Vec<DeadlineKind>,
}

impl Review {
    /// Where the review is.
    pub fn stage(&self) -> Stage {
        if self.request.is_none() {
            return Stage::NotRequested;
        }
        if self.withdrawn.is_some() {
            return Stage::Withdrawn;
        }
        if let Some(t2) = &self.tier2 {
            return match (&t2.decision, t2.reviewer) {
                (Some(_), _) => Stage::Tier2Decided,
                (None, Some(_)) => Stage::Tier2Assigned,
                (None, None) => Stage::Tier2Requested,
            };
        }
        match self
            .tier1
            .as_ref()
            .map(|t| (t.decision.is_some(), t.reviewer.is_some()))
        {
            Some((true, _)) => Stage::Tier1Decided,
            Some((false, true)) => Stage::Tier1Assigned,
            _ if self.acknowledged_at.is_some() => Stage::Acknowledged,
            _ => Stage::Requested,
        }
    }

    /// The request, once made.
    pub fn request(&self) -> Option<&ReviewRequested> {
        self.request.as_ref()
    }

    /// The person who asked for the review.
    pub fn requester(&self) -> Option<PersonId> {
        self.request.as_ref().map(|r| r.by.person)
    }

    /// Why the review goes first; empty if it does not.
    pub fn priority(&self) -> &[PriorityReason] {
        &self.priority
    }

    /// True once prioritised.
    pub fn is_prioritised(&self) -> bool {
        !self.priority.is_empty()
    }

    /// True once withdrawn or decided at tier 2. (After tier 1 the review stays open to a tier-2
    /// request until [`Review::tier2_request_closes`].)
    pub fn is_closed(&self) -> bool {
        self.withdrawn.is_some() || self.tier_decision(ReviewTier::Tier2).is_some()
    }

    /// The tiers in progress: requested and neither decided nor withdrawn. Never more than one.
    pub fn open_tiers(&self) -> Vec<ReviewTier> {
        if self.withdrawn.is_some() {
            return Vec::new();
        }
        [
            (ReviewTier::Tier1, &self.tier1),
            (ReviewTier::Tier2, &self.tier2),
        ]
        .into_iter()
        .filter(|(_, t)| t.as_ref().is_some_and(|t| t.decision.is_none()))
        .map(|(tier, _)| tier)
        .collect()
    }

    /// The tier in progress, if any.
    pub fn open_tier(&self) -> Option<ReviewTier> {
        self.open_tiers().first().copied()
    }

    /// The reviewer assigned to a tier (the Senior Reviewing Official for tier 2).
    pub fn reviewer(&self, tier: ReviewTier) -> Option<PersonId> {
        self.tier(tier).and_then(|t| t.reviewer)
    }

    /// A tier's decision.
    pub fn tier_decision(&self, tier: ReviewTier) -> Option<&TierDecision> {
        self.tier(tier).and_then(|t| t.decision.as_ref())
    }

    /// When the window to ask for tier 2 closes, once tier 1 decided.
    pub fn tier2_request_closes(&self) -> Option<DateTime<Utc>> {
        self.tier2_request_closes
    }

    /// Information requests not yet answered.
    pub fn open_questions(&self) -> u32 {
        self.open_questions
    }

    /// Deadlines recorded as missed.
    pub fn missed(&self) -> &[DeadlineKind] {
        &self.missed
    }

    /// The deadlines still running: their step not done and not yet recorded missed. The
    /// scheduler sets a timer for each and issues `RecordDeadlineMissed` when it fires.
    pub fn due(&self) -> Vec<(DeadlineKind, DateTime<Utc>)> {
        self.pending()
            .into_iter()
            .filter(|(kind, _)| !self.missed.contains(kind))
            .collect()
    }

    /// The deadlines whose step is not done, missed or not.
    pub(super) fn pending(&self) -> Vec<(DeadlineKind, DateTime<Utc>)> {
        let Some(request) = &self.request else {
            return Vec::new();
        };
        if self.withdrawn.is_some() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if self.acknowledged_at.is_none() {
            out.push((DeadlineKind::Acknowledge, request.acknowledge_due));
        }
        for tier in self.open_tiers() {
            if let Some(t) = self.tier(tier) {
                out.push((deadline_of(tier), t.decision_due));
            }
        }
        out
    }

    pub(super) fn tier(&self, tier: ReviewTier) -> Option<&Tier> {
        match tier {
            ReviewTier::Tier1 => self.tier1.as_ref(),
            ReviewTier::Tier2 => self.tier2.as_ref(),
        }
    }

    pub(super) fn tier_mut(&mut self, tier: ReviewTier) -> Option<&mut Tier> {
        match tier {
            ReviewTier::Tier1 => self.tier1.as_mut(),
            ReviewTier::Tier2 => self.tier2.as_mut(),
        }
    }
}

pub(super) fn deadline_of(tier: ReviewTier) -> DeadlineKind {
    match tier {
        ReviewTier::Tier1 => DeadlineKind::Tier1Decision,
        ReviewTier::Tier2 => DeadlineKind::Tier2Decision,
    }
}
