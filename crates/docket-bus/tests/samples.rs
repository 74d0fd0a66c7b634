//! A sample of every command (and of both shapes of optional fields), and actors, for the codec
//! and transport tests.

use chrono::{NaiveDate, TimeZone, Utc};
use docket_bus::DomainCommand;
use docket_domain::case::{CaseCommand, Encounter};
use docket_domain::officer::OfficerCommand;
use docket_domain::representation::{RepresentationCommand, RepresentativeCapacity};
use docket_domain::review::{DeadlineKind, PriorityReason, RequesterCapacity, ReviewCommand};
use docket_domain::values::{
    CaseId, Code, ContentHash, DecisionId, EncounterPlace, EnforcementAction, FieldOffice,
    MannerOfEntry, PersonId, ProtectedArea, RecordId, RecordSource, ReferralTarget, ReviewId,
    ReviewOutcome,
};
use docket_domain::{ANumber, Actor, CommandKind, Role};
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x8c0f_4f4e_2a6b_4c1e_9d52_0b4f_5e2a_0000 + n)
}

pub fn case_id() -> CaseId {
    CaseId(id(1))
}

pub fn review_id() -> ReviewId {
    ReviewId(id(2))
}

pub fn person(n: u128) -> PersonId {
    PersonId(id(100 + n))
}

pub fn a_number() -> ANumber {
    ANumber::parse("A012345678").unwrap()
}

pub fn actor(role: Role) -> Actor {
    Actor {
        person: person(1),
        role,
    }
}

fn code(c: &str) -> Code {
    Code::parse("factor", c).unwrap()
}

fn case(command: CaseCommand) -> DomainCommand {
    DomainCommand::case(case_id(), command)
}

fn review(command: ReviewCommand) -> DomainCommand {
    DomainCommand::review(review_id(), command)
}

/// `case.open`, the sample the malformed-body tests start from.
pub fn open_case() -> DomainCommand {
    case(CaseCommand::Open {
        case: case_id(),
        a_number: a_number(),
        office: FieldOffice::Nyc,
        encounter: Encounter {
            at: Utc.with_ymd_and_hms(2023, 7, 4, 14, 30, 0).unwrap(),
            location: "Port Authority Bus Terminal, New York".to_owned(),
            place: EncounterPlace::Interior,
            manner_of_entry: MannerOfEntry::EnteredUnlawfully,
            entry_date: NaiveDate::from_ymd_opt(2019, 3, 2),
            protected_area: Some(ProtectedArea::SocialServices),
        },
    })
}

/// At least one sample of every command; optional fields both set and unset.
pub fn all() -> Vec<DomainCommand> {
    let decision = DecisionId(id(3));
    vec![
        open_case(),
        case(CaseCommand::Open {
            case: case_id(),
            a_number: ANumber::parse("1234567").unwrap(),
            office: FieldOffice::Elp,
            encounter: Encounter {
                at: Utc.with_ymd_and_hms(2022, 1, 10, 3, 0, 0).unwrap(),
                location: "near Santa Teresa".to_owned(),
                place: EncounterPlace::Border,
                manner_of_entry: MannerOfEntry::AttemptingUnlawfulEntry,
                entry_date: None,
                protected_area: None,
            },
        }),
        case(CaseCommand::AttachRecord {
            record: RecordId(id(4)),
            source: RecordSource::Criminal,
            reference: "NCIC:2023-001234".to_owned(),
            content_hash: ContentHash([0xab; 32]),
        }),
        case(CaseCommand::MarkSourceUnavailable {
            source: RecordSource::Investigative,
            reason: "no investigative file exists".to_owned(),
        }),
        case(CaseCommand::AttestWholeRecord),
        case(CaseCommand::AssessFactors {
            factors: vec![code("long_residence"), code("caregiver")],
            narrative: "Twenty years in the country; sole caregiver of two children.".to_owned(),
        }),
        case(CaseCommand::ProposeDecision {
            decision,
            action: EnforcementAction::NoAction,
            cited_factors: vec![code("long_residence")],
            reasons: "Mitigating factors outweigh.".to_owned(),
            protected_area_exception: None,
        }),
        case(CaseCommand::ProposeDecision {
            decision,
            action: EnforcementAction::Arrest,
            cited_factors: vec![],
            reasons: "Exigent circumstances.".to_owned(),
            protected_area_exception: Some("imminent risk of death".to_owned()),
        }),
        case(CaseCommand::ApproveDecision { decision }),
        case(CaseCommand::ReturnDecision {
            decision,
            reason: "Cite the factors you relied on — all of them.".to_owned(),
        }),
        case(CaseCommand::RecordDecision { decision }),
        case(CaseCommand::Close {
            reason: "decision recorded".to_owned(),
        }),
        case(CaseCommand::RecomputeGuidance),
        DomainCommand::officer(
            person(2),
            OfficerCommand::Register {
                person: person(2),
                office: FieldOffice::Was,
                role: Role::Supervisor,
            },
        ),
        DomainCommand::officer(
            person(2),
            OfficerCommand::CompleteTraining {
                policy_version: "2021-09-30".to_owned(),
                module: "web-based".to_owned(),
                completed_on: NaiveDate::from_ymd_opt(2021, 11, 15).unwrap(),
            },
        ),
        DomainCommand::representation(
            a_number(),
            person(3),
            RepresentationCommand::RecordG28 {
                a_number: a_number(),
                representative: person(3),
                capacity: RepresentativeCapacity::AccreditedRepresentative,
                signed_on: NaiveDate::from_ymd_opt(2023, 8, 1).unwrap(),
            },
        ),
        DomainCommand::representation(
            a_number(),
            person(3),
            RepresentationCommand::WithdrawG28 {
                reason: "client's request".to_owned(),
            },
        ),
        review(ReviewCommand::Request {
            review: review_id(),
            a_number: a_number(),
            capacity: RequesterCapacity::Representative,
            case: case_id(),
            decision,
            action: EnforcementAction::Detain,
            grounds: "Sole caregiver; no criminal record.".to_owned(),
            preferred_language: Some("es".to_owned()),
        }),
        review(ReviewCommand::Request {
            review: review_id(),
            a_number: a_number(),
            capacity: RequesterCapacity::Noncitizen,
            case: case_id(),
            decision,
            action: EnforcementAction::IssueNta,
            grounds: "Wrong person.".to_owned(),
            preferred_language: None,
        }),
        review(ReviewCommand::Acknowledge),
        review(ReviewCommand::Prioritise {
            reason: PriorityReason::Detained,
        }),
        review(ReviewCommand::AssignReviewer {
            reviewer: person(4),
        }),
        review(ReviewCommand::RequestInformation {
            question: "Proof of residence since 2004?".to_owned(),
        }),
        review(ReviewCommand::ProvideInformation {
            information: "Lease agreements attached.".to_owned(),
        }),
        review(ReviewCommand::DecideTier1 {
            outcome: ReviewOutcome::Reversed,
            referred_to: None,
            reasons: "The record shows long residence.".to_owned(),
        }),
        review(ReviewCommand::DecideTier1 {
            outcome: ReviewOutcome::Referred,
            referred_to: Some(ReferralTarget::CivilRights),
            reasons: "Allegation of profiling.".to_owned(),
        }),
        review(ReviewCommand::RequestTier2 {
            grounds: "Tier 1 ignored the medical evidence.".to_owned(),
        }),
        review(ReviewCommand::AssignSeniorOfficial {
            official: person(5),
        }),
        review(ReviewCommand::DecideTier2 {
            outcome: ReviewOutcome::Upheld,
            referred_to: None,
            reasons: "Tier 1 was right.".to_owned(),
        }),
        review(ReviewCommand::Withdraw {
            reason: Some("released".to_owned()),
        }),
        review(ReviewCommand::Withdraw { reason: None }),
        review(ReviewCommand::RecordDeadlineMissed {
            deadline: DeadlineKind::Tier1Decision,
        }),
    ]
}

/// One sample per command kind, in catalogue order.
pub fn one_per_kind() -> Vec<DomainCommand> {
    let all = all();
    CommandKind::ALL
        .iter()
        .map(|k| {
            all.iter()
                .find(|c| c.kind() == *k)
                .unwrap_or_else(|| panic!("no sample of {k}"))
                .clone()
        })
        .collect()
}

/// A role allowed to issue `kind` (the toy handler does not check, but it keeps samples real).
pub fn role_for(kind: CommandKind) -> Role {
    *Role::ALL
        .iter()
        .find(|r| docket_domain::permissions::allowed(**r, kind))
        .unwrap()
}

/// The test deployment's actor-token key pair.
fn token_keys() -> &'static (
    docket_bus::token::TokenIssuer,
    docket_bus::token::TokenVerifier,
) {
    static KEYS: std::sync::OnceLock<(
        docket_bus::token::TokenIssuer,
        docket_bus::token::TokenVerifier,
    )> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let (skey, vkey) = docket_bus::token::generate_key();
        (
            docket_bus::token::TokenIssuer::new(&skey).unwrap(),
            docket_bus::token::TokenVerifier::new(&[vkey]).unwrap(),
        )
    })
}

/// Signs the tests' actor tokens.
pub fn issuer() -> docket_bus::token::TokenIssuer {
    token_keys().0.clone()
}

/// Accepts the tests' actor tokens.
pub fn verifier() -> &'static docket_bus::token::TokenVerifier {
    &token_keys().1
}
