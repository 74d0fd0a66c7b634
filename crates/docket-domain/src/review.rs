//! The review aggregate: a noncitizen's or representative's request for review of an enforcement
//! action, through tier 1 (field office) and, on request, tier 2 (Senior Reviewing Official), with
//! its deadlines.
//!
//! One aggregate per review, stream `review/<review id>`. Stages, in order:
//! requested → acknowledged → tier 1 assigned → tier 1 decided → (tier 2 requested → tier 2
//! assigned → tier 2 decided), or withdrawn while a tier is open. At most one tier is ever open.
//! Information requests pause nothing; they are recorded, and a tier's decision makes any still
//! unanswered moot.
//!
//! Deadlines are computed when a step happens, from [`Context::deadlines`], and travel in the
//! events (`acknowledge_due`, `decision_due`, `tier2_request_closes`): the state — and an audit
//! replaying it — sees the deadlines that were in force, and a later change of configuration does
//! not move them. A due time is the instant the deadline passes: from then on the System role may
//! record it missed. Business days are Monday to Friday in UTC, without holidays.

use std::fmt;

use chrono::{DateTime, Datelike, Days, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Context, Rejection};
use crate::events::{event_enum, from_bytes, CodecError, Format, Upcast};
use crate::permissions::CommandKind;
use crate::values::{
    text, ANumber, Actor, CaseId, DecisionId, EnforcementAction, InvalidValue, PersonId,
    ReferralTarget, ReviewId, ReviewOutcome, ReviewTier, Role,
};

/// Longest grounds, reasons, questions and answers, in characters.
const MAX_TEXT: usize = 10_000;
/// Longest reason for a withdrawal, in characters.
const MAX_REASON: usize = 2_000;

/// Declares a small closed vocabulary local to this module: stable snake_case codes (serde and
/// `code()`), `ALL`, `Display`. Postcard encodes the variant's position: append, never reorder.
macro_rules! codes {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $code)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable code.
            pub fn code(&self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}

codes!(
    /// In what capacity the requester asks.
    RequesterCapacity {
        /// The noncitizen, for themself. The service authenticates them as the holder of the
        /// A-number; the domain checks the A-number against the decision under review.
        Noncitizen = "noncitizen",
        /// An attorney or accredited representative with a G-28 on file for the A-number.
        Representative = "representative",
    }
);

codes!(
    /// Why a review goes first.
    PriorityReason {
        /// The person is in custody.
        Detained = "detained",
        /// Removal is imminent.
        RemovalImminent = "removal_imminent",
    }
);

codes!(
    /// A deadline of the review process.
    DeadlineKind {
        /// Acknowledge the request.
        Acknowledge = "acknowledge",
        /// Decide tier 1.
        Tier1Decision = "tier1_decision",
        /// Decide tier 2.
        Tier2Decision = "tier2_decision",
    }
);

/// Commands of the review aggregate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewCommand {
    /// Asks for review of an enforcement action (the noncitizen or their representative).
    Request {
        /// The new review's id (the stream's).
        review: ReviewId,
        /// The noncitizen's A-number.
        a_number: ANumber,
        /// For themself, or as a representative.
        capacity: RequesterCapacity,
        /// The case the action was taken in.
        case: CaseId,
        /// The decision that took it.
        decision: DecisionId,
        /// The enforcement action under review.
        action: EnforcementAction,
        /// Why the requester thinks it was wrong.
        grounds: String,
        /// Language for notifications (a BCP 47 tag such as `es` or `pt-BR`), if not English.
        preferred_language: Option<String>,
    },
    /// Acknowledges receipt (a first-tier reviewer, or the System on intake).
    Acknowledge,
    /// Marks the review as going first; shortens the pending decision deadline.
    Prioritise {
        /// Why.
        reason: PriorityReason,
    },
    /// Assigns the tier-1 reviewer (a field office director, or the System).
    AssignReviewer {
        /// A first-tier reviewer of the decision's office, independent of the decision.
        reviewer: PersonId,
    },
    /// The assigned reviewer of the open tier asks the requester for more information.
    RequestInformation {
        /// What is asked.
        question: String,
    },
    /// The requester answers the open information requests.
    ProvideInformation {
        /// The answer.
        information: String,
    },
    /// The assigned tier-1 reviewer decides.
    DecideTier1 {
        /// The outcome.
        outcome: ReviewOutcome,
        /// Where it is referred: required for, and only for, [`ReviewOutcome::Referred`].
        referred_to: Option<ReferralTarget>,
        /// Why.
        reasons: String,
    },
    /// The requester asks for tier 2, within the window after the tier-1 outcome.
    RequestTier2 {
        /// Why tier 1 got it wrong.
        grounds: String,
    },
    /// Assigns the Senior Reviewing Official for tier 2.
    AssignSeniorOfficial {
        /// A Senior Reviewing Official independent of the decision and of tier 1.
        official: PersonId,
    },
    /// The assigned Senior Reviewing Official decides; may override tier 1.
    DecideTier2 {
        /// The outcome.
        outcome: ReviewOutcome,
        /// Where it is referred: required for, and only for, [`ReviewOutcome::Referred`].
        referred_to: Option<ReferralTarget>,
        /// Why.
        reasons: String,
    },
    /// The requester withdraws the review while a tier is open.
    Withdraw {
        /// Why, if they say.
        reason: Option<String>,
    },
    /// The System records, from a timer, that a deadline passed with its step not done.
    RecordDeadlineMissed {
        /// Which deadline.
        deadline: DeadlineKind,
    },
}

impl ReviewCommand {
    /// The command's catalogue entry.
    pub fn kind(&self) -> CommandKind {
        match self {
            ReviewCommand::Request { .. } => CommandKind::ReviewRequest,
            ReviewCommand::Acknowledge => CommandKind::ReviewAcknowledge,
            ReviewCommand::Prioritise { .. } => CommandKind::ReviewPrioritise,
            ReviewCommand::AssignReviewer { .. } => CommandKind::ReviewAssignReviewer,
            ReviewCommand::RequestInformation { .. } => CommandKind::ReviewRequestInformation,
            ReviewCommand::ProvideInformation { .. } => CommandKind::ReviewProvideInformation,
            ReviewCommand::DecideTier1 { .. } => CommandKind::ReviewDecideTier1,
            ReviewCommand::RequestTier2 { .. } => CommandKind::ReviewRequestTier2,
            ReviewCommand::AssignSeniorOfficial { .. } => CommandKind::ReviewAssignSeniorOfficial,
            ReviewCommand::DecideTier2 { .. } => CommandKind::ReviewDecideTier2,
            ReviewCommand::Withdraw { .. } => CommandKind::ReviewWithdraw,
            ReviewCommand::RecordDeadlineMissed { .. } => CommandKind::ReviewRecordDeadlineMissed,
        }
    }
}

/// `review.requested` (version 2): review of an enforcement action was asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRequested {
    /// The review.
    pub review: ReviewId,
    /// The noncitizen's A-number.
    pub a_number: ANumber,
    /// For themself, or as a representative.
    pub capacity: RequesterCapacity,
    /// The case.
    pub case: CaseId,
    /// The decision under review.
    pub decision: DecisionId,
    /// The enforcement action under review.
    pub action: EnforcementAction,
    /// The requester's grounds.
    pub grounds: String,
    /// When acknowledgement is due.
    pub acknowledge_due: DateTime<Utc>,
    /// When the tier-1 decision is due (before any prioritisation).
    pub decision_due: DateTime<Utc>,
    /// The requester.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
    /// Language for notifications. New in version 2; last, because postcard is positional.
    pub preferred_language: Option<String>,
}

/// `review.requested` version 1, as old logs hold it: no `preferred_language`. Read-only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ReviewRequestedV1 {
    review: ReviewId,
    a_number: ANumber,
    capacity: RequesterCapacity,
    case: CaseId,
    decision: DecisionId,
    action: EnforcementAction,
    grounds: String,
    acknowledge_due: DateTime<Utc>,
    decision_due: DateTime<Utc>,
    by: Actor,
    at: DateTime<Utc>,
}

impl From<ReviewRequestedV1> for ReviewRequested {
    fn from(v1: ReviewRequestedV1) -> Self {
        ReviewRequested {
            review: v1.review,
            a_number: v1.a_number,
            capacity: v1.capacity,
            case: v1.case,
            decision: v1.decision,
            action: v1.action,
            grounds: v1.grounds,
            acknowledge_due: v1.acknowledge_due,
            decision_due: v1.decision_due,
            by: v1.by,
            at: v1.at,
            preferred_language: None,
        }
    }
}

/// `review.acknowledged`: receipt of the request was acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledged {
    /// Who acknowledged.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// A tier's decision deadline as (re)computed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierDue {
    /// The tier.
    pub tier: ReviewTier,
    /// When its decision is due.
    pub due: DateTime<Utc>,
}

/// `review.prioritised`: the review goes first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prioritised {
    /// Why.
    pub reason: PriorityReason,
    /// The open tier's decision deadline, recomputed; `None` when no tier is open.
    pub decision_due: Option<TierDue>,
    /// Who.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.reviewer_assigned`: the tier-1 reviewer was assigned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewerAssigned {
    /// The reviewer.
    pub reviewer: PersonId,
    /// Who assigned them.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.information_requested`: the reviewer asked the requester for more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InformationRequested {
    /// The tier asking.
    pub tier: ReviewTier,
    /// What is asked.
    pub question: String,
    /// Who asked.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.information_provided`: the requester answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InformationProvided {
    /// The answer.
    pub information: String,
    /// Who answered.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.tier1_decided`: the field office decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier1Decided {
    /// The outcome.
    pub outcome: ReviewOutcome,
    /// Where it was referred, for [`ReviewOutcome::Referred`].
    pub referred_to: Option<ReferralTarget>,
    /// Why.
    pub reasons: String,
    /// When the window to ask for tier 2 closes.
    pub tier2_request_closes: DateTime<Utc>,
    /// The reviewer.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.tier2_requested`: the requester asked for tier 2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier2Requested {
    /// Why tier 1 got it wrong.
    pub grounds: String,
    /// When the tier-2 decision is due.
    pub decision_due: DateTime<Utc>,
    /// The requester.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.senior_official_assigned`: the Senior Reviewing Official for tier 2 was assigned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeniorOfficialAssigned {
    /// The official.
    pub official: PersonId,
    /// Who assigned them.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.tier2_decided`: the Senior Reviewing Official decided; the review is closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier2Decided {
    /// The outcome.
    pub outcome: ReviewOutcome,
    /// Where it was referred, for [`ReviewOutcome::Referred`].
    pub referred_to: Option<ReferralTarget>,
    /// Why.
    pub reasons: String,
    /// True if the outcome (or referral) differs from tier 1's: for the override rate.
    pub overrides_tier1: bool,
    /// The official.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.withdrawn`: the requester withdrew; the review is closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawn {
    /// Why, if they said.
    pub reason: Option<String>,
    /// The requester.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.deadline_missed`: a deadline passed with its step not done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineMissed {
    /// Which deadline.
    pub deadline: DeadlineKind,
    /// When it was due.
    pub due: DateTime<Utc>,
    /// The System.
    pub by: Actor,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// Events of the review aggregate.
    ReviewEvent {
        /// See [`ReviewRequested`]. Version 1 lacked `preferred_language`.
        Requested(ReviewRequested) = "review.requested" v 2,
        /// See [`Acknowledged`].
        Acknowledged(Acknowledged) = "review.acknowledged" v 1,
        /// See [`Prioritised`].
        Prioritised(Prioritised) = "review.prioritised" v 1,
        /// See [`ReviewerAssigned`].
        ReviewerAssigned(ReviewerAssigned) = "review.reviewer_assigned" v 1,
        /// See [`InformationRequested`].
        InformationRequested(InformationRequested) = "review.information_requested" v 1,
        /// See [`InformationProvided`].
        InformationProvided(InformationProvided) = "review.information_provided" v 1,
        /// See [`Tier1Decided`].
        Tier1Decided(Tier1Decided) = "review.tier1_decided" v 1,
        /// See [`Tier2Requested`].
        Tier2Requested(Tier2Requested) = "review.tier2_requested" v 1,
        /// See [`SeniorOfficialAssigned`].
        SeniorOfficialAssigned(SeniorOfficialAssigned) = "review.senior_official_assigned" v 1,
        /// See [`Tier2Decided`].
        Tier2Decided(Tier2Decided) = "review.tier2_decided" v 1,
        /// See [`Withdrawn`].
        Withdrawn(Withdrawn) = "review.withdrawn" v 1,
        /// See [`DeadlineMissed`].
        DeadlineMissed(DeadlineMissed) = "review.deadline_missed" v 1,
    }
}

impl Upcast for ReviewEvent {
    fn upcast(name: &str, version: u16, bytes: &[u8], format: Format) -> Result<Self, CodecError> {
        match (name, version) {
            ("review.requested", 1) => {
                from_bytes::<ReviewRequestedV1>(name, version, bytes, format)
                    .map(|v1| ReviewEvent::Requested(v1.into()))
            }
            _ => Err(CodecError::UnknownVersion {
                name: name.to_owned(),
                version,
                current: 0,
            }),
        }
    }
}

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
struct Tier {
    decision_due: DateTime<Utc>,
    reviewer: Option<PersonId>,
    decision: Option<TierDecision>,
}

impl Tier {
    fn new(decision_due: DateTime<Utc>) -> Self {
        Tier {
            decision_due,
            reviewer: None,
            decision: None,
        }
    }
}

/// A review's state: the fold of its events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Review {
    request: Option<ReviewRequested>,
    acknowledged_at: Option<DateTime<Utc>>,
    priority: Vec<PriorityReason>,
    tier1: Option<Tier>,
    tier2_request_closes: Option<DateTime<Utc>>,
    tier2: Option<Tier>,
    open_questions: u32,
    withdrawn: Option<Withdrawn>,
    missed: Vec<DeadlineKind>,
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
    fn pending(&self) -> Vec<(DeadlineKind, DateTime<Utc>)> {
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

    fn tier(&self, tier: ReviewTier) -> Option<&Tier> {
        match tier {
            ReviewTier::Tier1 => self.tier1.as_ref(),
            ReviewTier::Tier2 => self.tier2.as_ref(),
        }
    }

    fn tier_mut(&mut self, tier: ReviewTier) -> Option<&mut Tier> {
        match tier {
            ReviewTier::Tier1 => self.tier1.as_mut(),
            ReviewTier::Tier2 => self.tier2.as_mut(),
        }
    }

    fn request_review(
        &self,
        command: &ReviewCommand,
        ctx: &Context<'_>,
    ) -> Result<Vec<ReviewEvent>, Rejection> {
        let ReviewCommand::Request {
            review,
            a_number,
            capacity,
            case,
            decision,
            action,
            grounds,
            preferred_language,
        } = command
        else {
            return Err(Rejection::state("not a review request"));
        };
        if self.request.is_some() {
            return Err(Rejection::state("the review was already requested"));
        }
        if *action == EnforcementAction::NoAction {
            return Err(Rejection::rule(
                "not_reviewable",
                "declining to act is not an enforcement action that can be reviewed",
            ));
        }
        let grounds = text("grounds", grounds, MAX_TEXT)?;
        let preferred_language = preferred_language.as_deref().map(language).transpose()?;
        let parties = ctx.directory.decision(*decision).ok_or_else(|| {
            Rejection::rule(
                "decision_not_found",
                format!("no recorded decision {decision}"),
            )
        })?;
        if parties.a_number != *a_number || parties.case != *case {
            return Err(Rejection::rule(
                "decision_mismatch",
                format!("decision {decision} is not about {a_number} in case {case}"),
            ));
        }
        if *capacity == RequesterCapacity::Representative
            && !ctx.directory.has_g28(*a_number, ctx.actor.person)
        {
            return Err(Rejection::rule(
                "not_represented",
                format!("no G-28 on file for {a_number} names {}", ctx.actor.person),
            ));
        }
        let acknowledge_due = add_business_days(ctx.now, ctx.deadlines.acknowledge_business_days)
            .ok_or_else(|| {
            out_of_range(
                "acknowledge_business_days",
                ctx.deadlines.acknowledge_business_days,
            )
        })?;
        let decision_due = plus_days(ctx.now, "tier1_days", ctx.deadlines.tier1_days)?;
        Ok(vec![ReviewEvent::Requested(ReviewRequested {
            review: *review,
            a_number: *a_number,
            capacity: *capacity,
            case: *case,
            decision: *decision,
            action: *action,
            grounds,
            acknowledge_due,
            decision_due,
            by: ctx.actor,
            at: ctx.now,
            preferred_language,
        })])
    }

    /// A requester acts only on their own review, and a representative only while their G-28
    /// is still on file.
    fn check_requester(
        &self,
        request: &ReviewRequested,
        ctx: &Context<'_>,
    ) -> Result<(), Rejection> {
        if ctx.actor.person != request.by.person {
            return Err(Rejection::rule(
                "not_requester",
                "only the person who asked for this review may act on it as requester",
            ));
        }
        if request.capacity == RequesterCapacity::Representative
            && !ctx.directory.has_g28(request.a_number, ctx.actor.person)
        {
            return Err(Rejection::rule(
                "not_represented",
                format!("the G-28 for {} is no longer on file", request.a_number),
            ));
        }
        Ok(())
    }

    /// Checks that `person` may be assigned to review `tier`: registered in the right role,
    /// independent of the decision (and, for tier 2, of tier 1), and for tier 1 in the office.
    fn check_assignee(
        &self,
        request: &ReviewRequested,
        tier: ReviewTier,
        person: PersonId,
        ctx: &Context<'_>,
    ) -> Result<(), Rejection> {
        let role = match tier {
            ReviewTier::Tier1 => Role::FirstTierReviewer,
            ReviewTier::Tier2 => Role::SeniorReviewingOfficial,
        };
        if self.reviewer(tier) == Some(person) {
            return Err(Rejection::rule(
                "already_assigned",
                format!("{person} is already assigned to {tier}"),
            ));
        }
        let profile = ctx
            .directory
            .officer(person)
            .filter(|p| p.role == role)
            .ok_or_else(|| {
                Rejection::rule(
                    "reviewer_not_qualified",
                    format!("{person} is not registered as {role}"),
                )
            })?;
        let parties = ctx.directory.decision(request.decision).ok_or_else(|| {
            Rejection::rule(
                "decision_not_found",
                format!("no recorded decision {}", request.decision),
            )
        })?;
        if person == parties.officer || parties.approver == Some(person) {
            return Err(Rejection::rule(
                "reviewer_not_independent",
                format!("{person} made or approved the decision under review"),
            ));
        }
        if tier == ReviewTier::Tier2 && self.reviewer(ReviewTier::Tier1) == Some(person) {
            return Err(Rejection::rule(
                "reviewer_not_independent",
                format!("{person} decided tier 1 of this review"),
            ));
        }
        if tier == ReviewTier::Tier1 && profile.office != parties.office {
            return Err(Rejection::rule(
                "reviewer_wrong_office",
                format!(
                    "tier 1 is reviewed in {}, and {person} is in {}",
                    parties.office, profile.office
                ),
            ));
        }
        Ok(())
    }

    /// Checks that the actor is the reviewer assigned to `tier`, in that tier's role.
    fn check_assigned(&self, tier: ReviewTier, ctx: &Context<'_>) -> Result<(), Rejection> {
        let role = match tier {
            ReviewTier::Tier1 => Role::FirstTierReviewer,
            ReviewTier::Tier2 => Role::SeniorReviewingOfficial,
        };
        if ctx.actor.role == role && self.reviewer(tier) == Some(ctx.actor.person) {
            Ok(())
        } else {
            Err(Rejection::rule(
                "not_assigned_reviewer",
                format!("only the reviewer assigned to {tier} may do this"),
            ))
        }
    }

    fn decide_tier(
        &self,
        tier: ReviewTier,
        outcome: ReviewOutcome,
        referred_to: Option<ReferralTarget>,
        reasons: &str,
        ctx: &Context<'_>,
    ) -> Result<(ReviewOutcome, Option<ReferralTarget>, String), Rejection> {
        let assigned = match tier {
            ReviewTier::Tier1 => Stage::Tier1Assigned,
            ReviewTier::Tier2 => Stage::Tier2Assigned,
        };
        if self.stage() != assigned {
            return Err(Rejection::state(format!(
                "{tier} cannot be decided when the review is {:?}",
                self.stage()
            )));
        }
        self.check_assigned(tier, ctx)?;
        match (outcome, referred_to) {
            (ReviewOutcome::Referred, None) => {
                return Err(Rejection::rule(
                    "referral_target_required",
                    "a referral must say where it is referred to",
                ))
            }
            (ReviewOutcome::Referred, Some(_)) | (_, None) => {}
            (other, Some(target)) => {
                return Err(Rejection::rule(
                    "referral_target_unexpected",
                    format!("outcome {other} is not a referral, yet names {target}"),
                ))
            }
        }
        let reasons = text("reasons", reasons, MAX_TEXT)?;
        Ok((outcome, referred_to, reasons))
    }
}

impl Aggregate for Review {
    type Command = ReviewCommand;
    type Event = ReviewEvent;

    fn decide(
        &self,
        command: &ReviewCommand,
        ctx: &Context<'_>,
    ) -> Result<Vec<ReviewEvent>, Rejection> {
        ctx.authorize(command.kind())?;
        if let ReviewCommand::Request { .. } = command {
            return self.request_review(command, ctx);
        }
        let Some(request) = &self.request else {
            return Err(Rejection::state("the review has not been requested"));
        };
        if ctx.actor.role == Role::Requester {
            self.check_requester(request, ctx)?;
        }
        if self.is_closed() {
            return Err(Rejection::rule(
                "review_closed",
                format!("the review is closed ({:?})", self.stage()),
            ));
        }
        let stage = self.stage();
        let event = match command {
            ReviewCommand::Request { .. } => {
                return Err(Rejection::state("the review was already requested"))
            }
            ReviewCommand::Acknowledge => {
                if self.acknowledged_at.is_some() {
                    return Err(Rejection::state("the request was already acknowledged"));
                }
                ReviewEvent::Acknowledged(Acknowledged {
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::Prioritise { reason } => {
                if self.priority.contains(reason) {
                    return Err(Rejection::rule(
                        "already_prioritised",
                        format!("the review is already prioritised as {reason}"),
                    ));
                }
                let decision_due = match self.open_tier() {
                    None => None,
                    Some(tier) => {
                        let (field, days) = match tier {
                            ReviewTier::Tier1 => {
                                ("tier1_priority_days", ctx.deadlines.tier1_priority_days)
                            }
                            ReviewTier::Tier2 => {
                                ("tier2_priority_days", ctx.deadlines.tier2_priority_days)
                            }
                        };
                        // Counted from now, so that prioritising late never turns a deadline
                        // into one already missed; and it never extends one.
                        let shortened = plus_days(ctx.now, field, days)?;
                        self.tier(tier).map(|t| TierDue {
                            tier,
                            due: t.decision_due.min(shortened),
                        })
                    }
                };
                ReviewEvent::Prioritised(Prioritised {
                    reason: *reason,
                    decision_due,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::AssignReviewer { reviewer } => {
                if !matches!(stage, Stage::Acknowledged | Stage::Tier1Assigned) {
                    return Err(Rejection::state(format!(
                        "a tier-1 reviewer cannot be assigned when the review is {stage:?}"
                    )));
                }
                self.check_assignee(request, ReviewTier::Tier1, *reviewer, ctx)?;
                ReviewEvent::ReviewerAssigned(ReviewerAssigned {
                    reviewer: *reviewer,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::RequestInformation { question } => {
                let tier = self.open_tier().ok_or_else(no_open_tier)?;
                self.check_assigned(tier, ctx)?;
                let question = text("question", question, MAX_TEXT)?;
                ReviewEvent::InformationRequested(InformationRequested {
                    tier,
                    question,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::ProvideInformation { information } => {
                if self.open_questions == 0 {
                    return Err(Rejection::rule(
                        "no_information_requested",
                        "no information request is waiting for an answer",
                    ));
                }
                let information = text("information", information, MAX_TEXT)?;
                ReviewEvent::InformationProvided(InformationProvided {
                    information,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::DecideTier1 {
                outcome,
                referred_to,
                reasons,
            } => {
                let (outcome, referred_to, reasons) =
                    self.decide_tier(ReviewTier::Tier1, *outcome, *referred_to, reasons, ctx)?;
                let tier2_request_closes = plus_days(
                    ctx.now,
                    "tier2_request_days",
                    ctx.deadlines.tier2_request_days,
                )?;
                ReviewEvent::Tier1Decided(Tier1Decided {
                    outcome,
                    referred_to,
                    reasons,
                    tier2_request_closes,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::RequestTier2 { grounds } => {
                if self.tier2.is_some() {
                    return Err(Rejection::rule(
                        "tier2_already_requested",
                        "tier 2 was already asked for",
                    ));
                }
                let Some(closes) = self.tier2_request_closes else {
                    return Err(Rejection::rule(
                        "tier1_not_decided",
                        "tier 2 can be asked for only after the tier-1 outcome",
                    ));
                };
                if ctx.now >= closes {
                    return Err(Rejection::rule(
                        "tier2_window_closed",
                        format!("the window to ask for tier 2 closed at {closes}"),
                    ));
                }
                let grounds = text("grounds", grounds, MAX_TEXT)?;
                let decision_due = if self.is_prioritised() {
                    plus_days(
                        ctx.now,
                        "tier2_priority_days",
                        ctx.deadlines.tier2_priority_days,
                    )?
                } else {
                    plus_days(ctx.now, "tier2_days", ctx.deadlines.tier2_days)?
                };
                ReviewEvent::Tier2Requested(Tier2Requested {
                    grounds,
                    decision_due,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::AssignSeniorOfficial { official } => {
                if !matches!(stage, Stage::Tier2Requested | Stage::Tier2Assigned) {
                    return Err(Rejection::state(format!(
                        "a Senior Reviewing Official cannot be assigned when the review is {stage:?}"
                    )));
                }
                self.check_assignee(request, ReviewTier::Tier2, *official, ctx)?;
                ReviewEvent::SeniorOfficialAssigned(SeniorOfficialAssigned {
                    official: *official,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::DecideTier2 {
                outcome,
                referred_to,
                reasons,
            } => {
                let (outcome, referred_to, reasons) =
                    self.decide_tier(ReviewTier::Tier2, *outcome, *referred_to, reasons, ctx)?;
                let overrides_tier1 = self
                    .tier_decision(ReviewTier::Tier1)
                    .is_some_and(|t1| (t1.outcome, t1.referred_to) != (outcome, referred_to));
                ReviewEvent::Tier2Decided(Tier2Decided {
                    outcome,
                    referred_to,
                    reasons,
                    overrides_tier1,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::Withdraw { reason } => {
                if self.open_tier().is_none() {
                    return Err(no_open_tier());
                }
                let reason = reason
                    .as_deref()
                    .map(|r| text("reason", r, MAX_REASON))
                    .transpose()?;
                ReviewEvent::Withdrawn(Withdrawn {
                    reason,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
            ReviewCommand::RecordDeadlineMissed { deadline } => {
                if self.missed.contains(deadline) {
                    return Err(Rejection::rule(
                        "deadline_already_recorded",
                        format!("the {deadline} deadline was already recorded as missed"),
                    ));
                }
                let Some((_, due)) = self.pending().into_iter().find(|(k, _)| k == deadline) else {
                    return Err(Rejection::rule(
                        "deadline_not_pending",
                        format!("no {deadline} deadline is running: its step is done or not due"),
                    ));
                };
                if ctx.now < due {
                    return Err(Rejection::rule(
                        "deadline_not_passed",
                        format!("the {deadline} deadline passes at {due}, not before"),
                    ));
                }
                ReviewEvent::DeadlineMissed(DeadlineMissed {
                    deadline: *deadline,
                    due,
                    by: ctx.actor,
                    at: ctx.now,
                })
            }
        };
        Ok(vec![event])
    }

    fn evolve(mut self, event: &ReviewEvent) -> Self {
        match event {
            ReviewEvent::Requested(e) => {
                self.request = Some(e.clone());
                self.tier1 = Some(Tier::new(e.decision_due));
            }
            ReviewEvent::Acknowledged(e) => self.acknowledged_at = Some(e.at),
            ReviewEvent::Prioritised(e) => {
                if !self.priority.contains(&e.reason) {
                    self.priority.push(e.reason);
                }
                if let Some(d) = &e.decision_due {
                    if let Some(t) = self.tier_mut(d.tier) {
                        t.decision_due = d.due;
                    }
                }
            }
            ReviewEvent::ReviewerAssigned(e) => {
                if let Some(t) = self.tier1.as_mut() {
                    t.reviewer = Some(e.reviewer);
                }
            }
            ReviewEvent::InformationRequested(_) => {
                self.open_questions = self.open_questions.saturating_add(1);
            }
            ReviewEvent::InformationProvided(_) => self.open_questions = 0,
            ReviewEvent::Tier1Decided(e) => {
                if let Some(t) = self.tier1.as_mut() {
                    t.decision = Some(TierDecision {
                        outcome: e.outcome,
                        referred_to: e.referred_to,
                        reasons: e.reasons.clone(),
                        by: e.by,
                        at: e.at,
                    });
                }
                self.tier2_request_closes = Some(e.tier2_request_closes);
                self.open_questions = 0;
            }
            ReviewEvent::Tier2Requested(e) => self.tier2 = Some(Tier::new(e.decision_due)),
            ReviewEvent::SeniorOfficialAssigned(e) => {
                if let Some(t) = self.tier2.as_mut() {
                    t.reviewer = Some(e.official);
                }
            }
            ReviewEvent::Tier2Decided(e) => {
                if let Some(t) = self.tier2.as_mut() {
                    t.decision = Some(TierDecision {
                        outcome: e.outcome,
                        referred_to: e.referred_to,
                        reasons: e.reasons.clone(),
                        by: e.by,
                        at: e.at,
                    });
                }
                self.open_questions = 0;
            }
            ReviewEvent::Withdrawn(e) => self.withdrawn = Some(e.clone()),
            ReviewEvent::DeadlineMissed(e) => {
                if !self.missed.contains(&e.deadline) {
                    self.missed.push(e.deadline);
                }
            }
        }
        self
    }
}

fn deadline_of(tier: ReviewTier) -> DeadlineKind {
    match tier {
        ReviewTier::Tier1 => DeadlineKind::Tier1Decision,
        ReviewTier::Tier2 => DeadlineKind::Tier2Decision,
    }
}

fn no_open_tier() -> Rejection {
    Rejection::rule("no_open_tier", "no tier of this review is in progress")
}

fn out_of_range(field: &'static str, days: u32) -> Rejection {
    Rejection::Invalid(InvalidValue::new(
        "deadlines",
        format!("{field} = {days} puts the deadline out of range"),
    ))
}

/// `days` calendar days after `at`.
fn plus_days(
    at: DateTime<Utc>,
    field: &'static str,
    days: u32,
) -> Result<DateTime<Utc>, Rejection> {
    at.checked_add_days(Days::new(days.into()))
        .ok_or_else(|| out_of_range(field, days))
}

fn is_weekend(at: DateTime<Utc>) -> bool {
    matches!(at.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The same time of day, `days` business days (Monday to Friday, UTC, no holidays) after `at`:
/// Friday 15:00 + 1 is Monday 15:00; Saturday or Sunday 10:00 + 1 is Monday 10:00.
pub(crate) fn add_business_days(at: DateTime<Utc>, days: u32) -> Option<DateTime<Utc>> {
    let one = Days::new(1);
    let mut at = at;
    let mut left = days;
    if left == 0 {
        return Some(at);
    }
    if is_weekend(at) {
        while is_weekend(at) {
            at = at.checked_add_days(one)?;
        }
        left -= 1;
    }
    // From a weekday, every 5 business days are one calendar week.
    at = at.checked_add_days(Days::new(u64::from(left / 5) * 7))?;
    for _ in 0..left % 5 {
        at = at.checked_add_days(one)?;
        while is_weekend(at) {
            at = at.checked_add_days(one)?;
        }
    }
    Some(at)
}

/// Checks a language tag: 2 to 35 ASCII letters, digits and `-`, starting with a letter.
fn language(value: &str) -> Result<String, InvalidValue> {
    let tag = value.trim();
    let ok = (2..=35).contains(&tag.len())
        && tag.starts_with(|c: char| c.is_ascii_alphabetic())
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(tag.to_owned())
    } else {
        Err(InvalidValue::new(
            "preferred_language",
            format!("{value:?}: expected a language tag such as \"es\" or \"pt-BR\""),
        ))
    }
}
