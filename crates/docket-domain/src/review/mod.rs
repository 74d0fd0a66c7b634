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
//! Deadlines are computed when a step happens, from
//! [`Context::deadlines`](crate::Context::deadlines), and travel in the events
//! (`acknowledge_due`, `decision_due`, `tier2_request_closes`): the state — and an audit replaying
//! it — sees the deadlines that were in force, and a later change of configuration does not move
//! them. A due time is the instant the deadline passes: from then on the System role may record it
//! missed. Business days are Monday to Friday in UTC, without holidays.
//!
//! The code follows the aggregate's seams: `command` (what it accepts), `event` (what it
//! records, with its upcasts), `state` (the fold and what it answers), and `decide` (the rules).
//! The business-day calendar the deadlines use is the process's, in [`crate::calendar`].

mod command;
mod decide;
mod event;
mod state;

pub use command::ReviewCommand;
pub use event::{
    Acknowledged, DeadlineMissed, InformationProvided, InformationRequested, Prioritised,
    ReviewEvent, ReviewRequested, ReviewerAssigned, SeniorOfficialAssigned, Tier1Decided,
    Tier2Decided, Tier2Requested, TierDue, Withdrawn,
};
pub use state::{Review, Stage, TierDecision};

/// Longest grounds, reasons, questions and answers, in characters.
const MAX_TEXT: usize = 10_000;
/// Longest reason for a withdrawal, in characters.
const MAX_REASON: usize = 2_000;

crate::values::vocabulary!(
    /// In what capacity the requester asks.
    RequesterCapacity, "capacity" {
        /// The noncitizen, for themself. The service authenticates them as the holder of the
        /// A-number; the domain checks the A-number against the decision under review.
        Noncitizen = "noncitizen",
        /// An attorney or accredited representative with a G-28 on file for the A-number.
        Representative = "representative",
    }
);

crate::values::vocabulary!(
    /// Why a review goes first.
    PriorityReason, "reason" {
        /// The person is in custody.
        Detained = "detained",
        /// Removal is imminent.
        RemovalImminent = "removal_imminent",
    }
);

crate::values::vocabulary!(
    /// A deadline of the review process.
    DeadlineKind, "deadline" {
        /// Acknowledge the request.
        Acknowledge = "acknowledge",
        /// Decide tier 1.
        Tier1Decision = "tier1_decision",
        /// Decide tier 2.
        Tier2Decision = "tier2_decision",
    }
);
