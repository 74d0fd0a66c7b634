//! Every command × every role, decided for real: a role the table forbids is refused with
//! `forbidden` before anything else is looked at; a role it allows is never refused as forbidden.

use chrono::NaiveDate;
use docket_domain::case::{Case, CaseCommand};
use docket_domain::officer::{Officer, OfficerCommand};
use docket_domain::permissions::allowed;
use docket_domain::representation::{
    Representation, RepresentationCommand, RepresentativeCapacity,
};
use docket_domain::review::{
    DeadlineKind, PriorityReason, RequesterCapacity, Review, ReviewCommand,
};
use docket_domain::values::*;
use docket_domain::{Aggregate, CommandKind, Deadlines, Rejection};
use uuid::Uuid;

use crate::case_rules::{encounter, propose};
use crate::support::*;

enum Sample {
    Case(CaseCommand),
    Officer(OfficerCommand),
    Representation(RepresentationCommand),
    Review(ReviewCommand),
}

fn sample(kind: CommandKind) -> Sample {
    use CommandKind as K;
    let decision = DecisionId(Uuid::from_u128(300));
    let a_number = ANumber::parse("A012345678").unwrap();
    match kind {
        K::CaseOpen => Sample::Case(CaseCommand::Open {
            case: CaseId(Uuid::from_u128(1)),
            a_number,
            office: FieldOffice::Nyc,
            encounter: encounter(in_force(), None),
        }),
        K::CaseAttachRecord => Sample::Case(CaseCommand::AttachRecord {
            record: RecordId(Uuid::from_u128(2)),
            source: RecordSource::Criminal,
            reference: "r".into(),
            content_hash: ContentHash([1; 32]),
        }),
        K::CaseMarkSourceUnavailable => Sample::Case(CaseCommand::MarkSourceUnavailable {
            source: RecordSource::Criminal,
            reason: "none".into(),
        }),
        K::CaseAttestWholeRecord => Sample::Case(CaseCommand::AttestWholeRecord),
        K::CaseAssessFactors => Sample::Case(CaseCommand::AssessFactors {
            factors: vec![],
            narrative: "n".into(),
        }),
        K::CaseProposeDecision => Sample::Case(propose(EnforcementAction::NoAction, &[])),
        K::CaseApproveDecision => Sample::Case(CaseCommand::ApproveDecision { decision }),
        K::CaseReturnDecision => Sample::Case(CaseCommand::ReturnDecision {
            decision,
            reason: "r".into(),
        }),
        K::CaseRecordDecision => Sample::Case(CaseCommand::RecordDecision { decision }),
        K::CaseClose => Sample::Case(CaseCommand::Close { reason: "r".into() }),
        K::CaseRecomputeGuidance => Sample::Case(CaseCommand::RecomputeGuidance),
        K::OfficerRegister => Sample::Officer(OfficerCommand::Register {
            person: person(60),
            office: FieldOffice::Nyc,
            role: Role::Officer,
        }),
        K::OfficerCompleteTraining => Sample::Officer(OfficerCommand::CompleteTraining {
            policy_version: "2021-09-30".into(),
            module: "m".into(),
            completed_on: NaiveDate::from_ymd_opt(2022, 1, 1).unwrap(),
        }),
        K::RepresentationRecordG28 => Sample::Representation(RepresentationCommand::RecordG28 {
            a_number,
            representative: person(REPRESENTATIVE),
            capacity: RepresentativeCapacity::Attorney,
            signed_on: NaiveDate::from_ymd_opt(2022, 1, 1).unwrap(),
        }),
        K::RepresentationWithdrawG28 => {
            Sample::Representation(RepresentationCommand::WithdrawG28 { reason: "r".into() })
        }
        K::ReviewRequest => Sample::Review(ReviewCommand::Request {
            review: ReviewId(Uuid::from_u128(400)),
            a_number,
            capacity: RequesterCapacity::Noncitizen,
            case: CaseId(Uuid::from_u128(1)),
            decision,
            action: EnforcementAction::Arrest,
            grounds: "g".into(),
            preferred_language: None,
        }),
        K::ReviewAcknowledge => Sample::Review(ReviewCommand::Acknowledge),
        K::ReviewPrioritise => Sample::Review(ReviewCommand::Prioritise {
            reason: PriorityReason::Detained,
        }),
        K::ReviewAssignReviewer => Sample::Review(ReviewCommand::AssignReviewer {
            reviewer: person(REVIEWER),
        }),
        K::ReviewRequestInformation => Sample::Review(ReviewCommand::RequestInformation {
            question: "q".into(),
        }),
        K::ReviewProvideInformation => Sample::Review(ReviewCommand::ProvideInformation {
            information: "i".into(),
        }),
        K::ReviewDecideTier1 => Sample::Review(ReviewCommand::DecideTier1 {
            outcome: ReviewOutcome::Upheld,
            referred_to: None,
            reasons: "r".into(),
        }),
        K::ReviewRequestTier2 => Sample::Review(ReviewCommand::RequestTier2 {
            grounds: "g".into(),
        }),
        K::ReviewAssignSeniorOfficial => Sample::Review(ReviewCommand::AssignSeniorOfficial {
            official: person(SRO),
        }),
        K::ReviewDecideTier2 => Sample::Review(ReviewCommand::DecideTier2 {
            outcome: ReviewOutcome::Upheld,
            referred_to: None,
            reasons: "r".into(),
        }),
        K::ReviewWithdraw => Sample::Review(ReviewCommand::Withdraw { reason: None }),
        K::ReviewRecordDeadlineMissed => Sample::Review(ReviewCommand::RecordDeadlineMissed {
            deadline: DeadlineKind::Acknowledge,
        }),
    }
}

fn decide(kind: CommandKind, role: Role) -> Result<(), Rejection> {
    let policies = policies();
    let directory = directory();
    let deadlines = Deadlines::default();
    let ctx = context(
        actor(OFFICER, role),
        in_force(),
        &policies,
        &directory,
        &deadlines,
    );
    let command = sample(kind);
    let accepted_kind = match &command {
        Sample::Case(c) => c.kind(),
        Sample::Officer(c) => c.kind(),
        Sample::Representation(c) => c.kind(),
        Sample::Review(c) => c.kind(),
    };
    assert_eq!(accepted_kind, kind, "the sample is a {kind}");
    match command {
        Sample::Case(c) => Case::default().decide(&c, &ctx).map(drop),
        Sample::Officer(c) => Officer::default().decide(&c, &ctx).map(drop),
        Sample::Representation(c) => Representation::default().decide(&c, &ctx).map(drop),
        Sample::Review(c) => Review::default().decide(&c, &ctx).map(drop),
    }
}

#[test]
fn every_command_with_every_role() {
    let mut checked = 0;
    for kind in CommandKind::ALL {
        for role in Role::ALL {
            let result = decide(*kind, *role);
            let forbidden = matches!(result, Err(Rejection::Forbidden { .. }));
            assert_eq!(
                forbidden,
                !allowed(*role, *kind),
                "{kind} by {role}: {result:?} (the table says allowed = {})",
                allowed(*role, *kind)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, CommandKind::ALL.len() * Role::ALL.len());
    assert_eq!(
        CommandKind::ALL.len(),
        27,
        "a new command needs its sample above"
    );
}
