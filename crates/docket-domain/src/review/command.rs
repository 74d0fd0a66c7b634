//! The review aggregate's commands, one per step of the process, and their catalogue entries.

use serde::{Deserialize, Serialize};

use super::{DeadlineKind, PriorityReason, RequesterCapacity};
use crate::permissions::CommandKind;
use crate::values::{
    ANumber, CaseId, DecisionId, EnforcementAction, PersonId, ReferralTarget, ReviewId,
    ReviewOutcome,
};

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

impl crate::aggregate::AggregateCommand for ReviewCommand {
    fn kind(&self) -> CommandKind {
        ReviewCommand::kind(self)
    }
}
