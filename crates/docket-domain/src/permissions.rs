//! Which role may issue which command: one table, enforced by every aggregate's `decide`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::values::Role;

macro_rules! commands {
    ($($(#[$doc:meta])* $variant:ident = $name:literal),+ $(,)?) => {
        /// Every command Docket accepts, by stable name (`<aggregate>.<command>`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum CommandKind {
            $($(#[$doc])* #[serde(rename = $name)] $variant),+
        }

        impl CommandKind {
            /// Every command, in catalogue order.
            pub const ALL: &'static [CommandKind] = &[$(CommandKind::$variant),+];

            /// The stable name, e.g. `case.open`.
            pub fn name(&self) -> &'static str {
                match self { $(CommandKind::$variant => $name),+ }
            }
        }
    };
}

commands! {
    CaseOpen = "case.open",
    CaseAttachRecord = "case.attach_record",
    CaseMarkSourceUnavailable = "case.mark_source_unavailable",
    CaseAttestWholeRecord = "case.attest_whole_record",
    CaseAssessFactors = "case.assess_factors",
    CaseProposeDecision = "case.propose_decision",
    CaseApproveDecision = "case.approve_decision",
    CaseReturnDecision = "case.return_decision",
    CaseRecordDecision = "case.record_decision",
    CaseClose = "case.close",
    CaseRecomputeGuidance = "case.recompute_guidance",
    OfficerRegister = "officer.register",
    OfficerCompleteTraining = "officer.complete_training",
    RepresentationRecordG28 = "representation.record_g28",
    RepresentationWithdrawG28 = "representation.withdraw_g28",
    ReviewRequest = "review.request",
    ReviewAcknowledge = "review.acknowledge",
    ReviewPrioritise = "review.prioritise",
    ReviewAssignReviewer = "review.assign_reviewer",
    ReviewRequestInformation = "review.request_information",
    ReviewProvideInformation = "review.provide_information",
    ReviewDecideTier1 = "review.decide_tier1",
    ReviewRequestTier2 = "review.request_tier2",
    ReviewAssignSeniorOfficial = "review.assign_senior_official",
    ReviewDecideTier2 = "review.decide_tier2",
    ReviewWithdraw = "review.withdraw",
    ReviewRecordDeadlineMissed = "review.record_deadline_missed",
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

use CommandKind::*;

/// Commands an officer works a case with.
const CASEWORK: &[CommandKind] = &[
    CaseOpen,
    CaseAttachRecord,
    CaseMarkSourceUnavailable,
    CaseAttestWholeRecord,
    CaseAssessFactors,
    CaseProposeDecision,
    CaseRecordDecision,
    CaseClose,
];

/// The permission table: for each role, the commands it may issue. Everything else is refused.
/// Auditors and operations staff read; they issue no command.
pub const TABLE: &[(Role, &[CommandKind])] = &[
    (Role::Officer, CASEWORK),
    (
        Role::Supervisor,
        &[
            CaseOpen,
            CaseAttachRecord,
            CaseMarkSourceUnavailable,
            CaseAttestWholeRecord,
            CaseAssessFactors,
            CaseProposeDecision,
            CaseRecordDecision,
            CaseClose,
            CaseApproveDecision,
            CaseReturnDecision,
        ],
    ),
    (
        Role::FieldOfficeDirector,
        &[
            CaseApproveDecision,
            CaseReturnDecision,
            CaseClose,
            OfficerRegister,
            OfficerCompleteTraining,
            ReviewPrioritise,
            ReviewAssignReviewer,
        ],
    ),
    (
        Role::IntakeClerk,
        &[
            CaseOpen,
            CaseAttachRecord,
            CaseMarkSourceUnavailable,
            RepresentationRecordG28,
            RepresentationWithdrawG28,
        ],
    ),
    (
        Role::FirstTierReviewer,
        &[
            ReviewAcknowledge,
            ReviewPrioritise,
            ReviewRequestInformation,
            ReviewDecideTier1,
        ],
    ),
    (
        Role::SeniorReviewingOfficial,
        &[
            ReviewPrioritise,
            ReviewRequestInformation,
            ReviewAssignSeniorOfficial,
            ReviewDecideTier2,
        ],
    ),
    (
        Role::Requester,
        &[
            ReviewRequest,
            ReviewProvideInformation,
            ReviewRequestTier2,
            ReviewWithdraw,
            RepresentationWithdrawG28,
        ],
    ),
    (Role::Auditor, &[]),
    (Role::Operations, &[]),
    (
        Role::System,
        &[
            ReviewAcknowledge,
            ReviewPrioritise,
            ReviewAssignReviewer,
            ReviewRecordDeadlineMissed,
            OfficerCompleteTraining,
            CaseRecomputeGuidance,
        ],
    ),
];

/// True if `role` may issue `command`.
pub fn allowed(role: Role, command: CommandKind) -> bool {
    TABLE
        .iter()
        .any(|(r, commands)| *r == role && commands.contains(&command))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_a_row_and_names_are_unique() {
        for role in Role::ALL {
            assert_eq!(TABLE.iter().filter(|(r, _)| r == role).count(), 1, "{role}");
        }
        let mut names: Vec<_> = CommandKind::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CommandKind::ALL.len());
    }

    #[test]
    fn readers_issue_nothing_and_every_command_has_someone() {
        for command in CommandKind::ALL {
            assert!(!allowed(Role::Auditor, *command));
            assert!(!allowed(Role::Operations, *command));
            assert!(Role::ALL.iter().any(|r| allowed(*r, *command)), "{command}");
        }
    }
}
