//! The review aggregate's rules: the happy path, a table of every step in every stage, the
//! independence of reviewers, information requests, deadlines, permissions and the encodings.
//! (The business-day calendar and the v1 upcast test private items and stay beside them.)

use std::collections::HashSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use docket_domain::aggregate::{Deadlines, DecisionParties, OfficerProfile};
use docket_domain::case::CaseEvent;
use docket_domain::events::{CodecError, Format};
use docket_domain::permissions::{self, CommandKind};
use docket_domain::review::{
    DeadlineKind, PriorityReason, RequesterCapacity, Review, ReviewCommand, ReviewEvent,
    ReviewRequested, Stage,
};
use docket_domain::values::{
    ANumber, CaseId, DecisionId, EnforcementAction, FieldOffice, ReferralTarget, ReviewId,
    ReviewOutcome, ReviewTier, Role,
};
use docket_domain::{DomainEvent, Rejection};

use crate::support::review_world::*;
use crate::support::{actor, person, MapDirectory, TestFramework};

fn a_number() -> ANumber {
    ANumber::parse("A012345678").unwrap()
}

fn directory() -> MapDirectory {
    let mut dir = MapDirectory::default();
    let mut register = |p: u128, role: Role, office: FieldOffice| {
        dir.officers.insert(
            person(p),
            OfficerProfile {
                role,
                office,
                trained_for: vec![],
            },
        );
    };
    register(OFFICER, Role::FirstTierReviewer, FieldOffice::Nyc);
    register(APPROVER, Role::SeniorReviewingOfficial, FieldOffice::Was);
    register(REVIEWER, Role::FirstTierReviewer, FieldOffice::Nyc);
    register(REVIEWER2, Role::FirstTierReviewer, FieldOffice::Nyc);
    register(FAR_REVIEWER, Role::FirstTierReviewer, FieldOffice::Los);
    register(SRO, Role::SeniorReviewingOfficial, FieldOffice::Was);
    register(SRO2, Role::SeniorReviewingOfficial, FieldOffice::Was);
    register(DIRECTOR, Role::FieldOfficeDirector, FieldOffice::Nyc);
    dir.g28.insert((a_number(), person(REP)));
    for (d, case, approver) in [(D1, C1, APPROVER), (D2, C2, REVIEWER2)] {
        dir.decisions.insert(
            DecisionId(uuid::Uuid::from_u128(d)),
            DecisionParties {
                case: CaseId(uuid::Uuid::from_u128(case)),
                officer: person(OFFICER),
                approver: Some(person(approver)),
                office: FieldOffice::Nyc,
                a_number: a_number(),
                action: EnforcementAction::Detain,
            },
        );
    }
    dir
}

/// Wednesday 13 March 2024, 09:00 UTC.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 13, 9, 0, 0).unwrap()
}

fn h(hours: i64) -> DateTime<Utc> {
    t0() + Duration::hours(hours)
}

fn request_as(capacity: RequesterCapacity) -> ReviewCommand {
    ReviewCommand::Request {
        review: ReviewId(uuid::Uuid::from_u128(1)),
        a_number: a_number(),
        capacity,
        case: CaseId(uuid::Uuid::from_u128(C1)),
        decision: DecisionId(uuid::Uuid::from_u128(D1)),
        action: EnforcementAction::Detain,
        grounds: "I have lived here for twenty years and care for my mother".into(),
        preferred_language: Some("es".into()),
    }
}

fn request() -> ReviewCommand {
    request_as(RequesterCapacity::Noncitizen)
}

fn with_request(f: impl FnOnce(&mut ReviewCommand)) -> ReviewCommand {
    let mut c = request();
    f(&mut c);
    c
}

fn decide1(outcome: ReviewOutcome, referred_to: Option<ReferralTarget>) -> ReviewCommand {
    ReviewCommand::DecideTier1 {
        outcome,
        referred_to,
        reasons: "the whole record supports the detention".into(),
    }
}

fn decide2(outcome: ReviewOutcome, referred_to: Option<ReferralTarget>) -> ReviewCommand {
    ReviewCommand::DecideTier2 {
        outcome,
        referred_to,
        reasons: "mitigating factors outweigh".into(),
    }
}

fn tier2() -> ReviewCommand {
    ReviewCommand::RequestTier2 {
        grounds: "tier 1 ignored my mother's care needs".into(),
    }
}

fn ask() -> ReviewCommand {
    ReviewCommand::RequestInformation {
        question: "please send the hospital letter".into(),
    }
}

fn answer() -> ReviewCommand {
    ReviewCommand::ProvideInformation {
        information: "letter attached".into(),
    }
}

fn withdraw() -> ReviewCommand {
    ReviewCommand::Withdraw {
        reason: Some("released".into()),
    }
}

fn missed(deadline: DeadlineKind) -> ReviewCommand {
    ReviewCommand::RecordDeadlineMissed { deadline }
}

/// A review under test (see [`TestFramework`]).
type Run = TestFramework<Review>;

/// A review not yet requested, in the test world.
fn new_run() -> Run {
    TestFramework::with(directory())
}

/// The happy path up to `stage`: each step at a fixed hour after [`t0`].
fn run_to(stage: Stage) -> Run {
    use ReviewOutcome::*;
    let steps: Vec<(Stage, ReviewCommand, u128, Role, i64)> = vec![
        (Stage::Requested, request(), NONCITIZEN, Role::Requester, 0),
        (
            Stage::Acknowledged,
            ReviewCommand::Acknowledge,
            SYSTEM,
            Role::System,
            1,
        ),
        (
            Stage::Tier1Assigned,
            ReviewCommand::AssignReviewer {
                reviewer: person(REVIEWER),
            },
            DIRECTOR,
            Role::FieldOfficeDirector,
            2,
        ),
        (
            Stage::Tier1Decided,
            decide1(Upheld, None),
            REVIEWER,
            Role::FirstTierReviewer,
            48,
        ),
        (
            Stage::Tier2Requested,
            tier2(),
            NONCITIZEN,
            Role::Requester,
            72,
        ),
        (
            Stage::Tier2Assigned,
            ReviewCommand::AssignSeniorOfficial {
                official: person(SRO),
            },
            SRO,
            Role::SeniorReviewingOfficial,
            73,
        ),
        (
            Stage::Tier2Decided,
            decide2(Reversed, None),
            SRO,
            Role::SeniorReviewingOfficial,
            120,
        ),
    ];
    let mut run = new_run();
    if stage == Stage::Withdrawn {
        run.at(h(0))
            .when(actor(NONCITIZEN, Role::Requester), request())
            .then_one();
        run.at(h(1))
            .when(actor(NONCITIZEN, Role::Requester), withdraw())
            .then_one();
    }
    for (reached, command, who, role, hour) in steps {
        if run.state.stage() == stage {
            break;
        }
        run.at(h(hour))
            .when(actor(who, role), command.clone())
            .then_one();
        assert_eq!(run.state.stage(), reached);
    }
    assert_eq!(run.state.stage(), stage);
    run
}

#[test]
fn happy_path_through_both_tiers() {
    let run = run_to(Stage::Tier2Decided);
    let names: Vec<_> = run.events.iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        [
            "review.requested",
            "review.acknowledged",
            "review.reviewer_assigned",
            "review.tier1_decided",
            "review.tier2_requested",
            "review.senior_official_assigned",
            "review.tier2_decided",
        ]
    );
    let s = &run.state;
    assert!(s.is_closed());
    assert!(s.open_tiers().is_empty());
    assert!(s.due().is_empty());
    assert_eq!(s.requester(), Some(person(NONCITIZEN)));
    assert_eq!(s.reviewer(ReviewTier::Tier1), Some(person(REVIEWER)));
    assert_eq!(s.reviewer(ReviewTier::Tier2), Some(person(SRO)));
    assert_eq!(
        s.tier_decision(ReviewTier::Tier1).map(|d| d.outcome),
        Some(ReviewOutcome::Upheld)
    );
    assert_eq!(
        s.tier_decision(ReviewTier::Tier2).map(|d| d.outcome),
        Some(ReviewOutcome::Reversed)
    );
    assert_eq!(
        s.request().and_then(|r| r.preferred_language.as_deref()),
        Some("es")
    );
    match run.events.last() {
        Some(ReviewEvent::Tier2Decided(e)) => assert!(e.overrides_tier1),
        other => panic!("unexpected {other:?}"),
    }
    // Upholding tier 1's outcome is not an override.
    let mut run = run_to(Stage::Tier2Assigned);
    match run
        .at(h(100))
        .when(
            actor(SRO, Role::SeniorReviewingOfficial),
            decide2(ReviewOutcome::Upheld, None),
        )
        .then_one()
    {
        ReviewEvent::Tier2Decided(e) => assert!(!e.overrides_tier1),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_representative_with_a_g28_may_ask_and_act() {
    let mut run = new_run();
    run.at(h(0))
        .when(
            actor(REP, Role::Requester),
            request_as(RequesterCapacity::Representative),
        )
        .then_one();
    assert_eq!(run.state.requester(), Some(person(REP)));
    // The noncitizen is not the requester of their representative's review.
    run.at(h(1))
        .when(actor(NONCITIZEN, Role::Requester), withdraw())
        .then_refused("not_requester");
    // Once the G-28 is withdrawn, the representative can no longer act.
    run.directory.g28.clear();
    run.at(h(1))
        .when(actor(REP, Role::Requester), withdraw())
        .then_refused("not_represented");
    run.directory.g28.insert((a_number(), person(REP)));
    run.at(h(1))
        .when(actor(REP, Role::Requester), withdraw())
        .then_one();
    assert_eq!(run.state.stage(), Stage::Withdrawn);
}

#[test]
fn rules_table() {
    use ReviewOutcome::*;
    use Stage as S;
    let (fot, ftr, sro, req, sys) = (
        Role::FieldOfficeDirector,
        Role::FirstTierReviewer,
        Role::SeniorReviewingOfficial,
        Role::Requester,
        Role::System,
    );
    let assign = |p: u128| ReviewCommand::AssignReviewer {
        reviewer: person(p),
    };
    let assign_sro = |p: u128| ReviewCommand::AssignSeniorOfficial {
        official: person(p),
    };
    let detained = ReviewCommand::Prioritise {
        reason: PriorityReason::Detained,
    };
    let later = h(200);
    // (stage the review is in, command, person, role, when, Ok or rejection code)
    type Row = (
        Stage,
        ReviewCommand,
        u128,
        Role,
        DateTime<Utc>,
        Result<(), &'static str>,
    );
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        // request
        (S::NotRequested, request(), NONCITIZEN, req, later, Ok(())),
        (S::NotRequested, request_as(RequesterCapacity::Representative), REP, req, later, Ok(())),
        (S::NotRequested, request_as(RequesterCapacity::Representative), STRANGER, req, later, Err("not_represented")),
        (S::NotRequested, request(), OFFICER, Role::Officer, later, Err("forbidden")),
        (S::NotRequested, with_request(|c| if let ReviewCommand::Request { action, .. } = c { *action = EnforcementAction::NoAction }), NONCITIZEN, req, later, Err("not_reviewable")),
        (S::NotRequested, with_request(|c| if let ReviewCommand::Request { decision, .. } = c { *decision = DecisionId(uuid::Uuid::from_u128(999)) }), NONCITIZEN, req, later, Err("decision_not_found")),
        (S::NotRequested, with_request(|c| if let ReviewCommand::Request { a_number, .. } = c { *a_number = ANumber::parse("A999999999").unwrap() }), NONCITIZEN, req, later, Err("decision_mismatch")),
        (S::NotRequested, with_request(|c| if let ReviewCommand::Request { case, .. } = c { *case = CaseId(uuid::Uuid::from_u128(C2)) }), NONCITIZEN, req, later, Err("decision_mismatch")),
        (S::NotRequested, with_request(|c| if let ReviewCommand::Request { action, .. } = c { *action = EnforcementAction::Arrest }), NONCITIZEN, req, later, Err("decision_mismatch")),
        (S::NotRequested, with_request(|c| if let ReviewCommand::Request { grounds, .. } = c { *grounds = " ".into() }), NONCITIZEN, req, later, Err("invalid")),
        (S::NotRequested, with_request(|c| if let ReviewCommand::Request { preferred_language, .. } = c { *preferred_language = Some("e".into()) }), NONCITIZEN, req, later, Err("invalid")),
        (S::NotRequested, with_request(|c| if let ReviewCommand::Request { preferred_language, .. } = c { *preferred_language = None }), NONCITIZEN, req, later, Ok(())),
        (S::Requested, request(), NONCITIZEN, req, later, Err("invalid_state")),
        (S::NotRequested, ReviewCommand::Acknowledge, SYSTEM, sys, later, Err("invalid_state")),
        // acknowledge
        (S::Requested, ReviewCommand::Acknowledge, SYSTEM, sys, later, Ok(())),
        (S::Requested, ReviewCommand::Acknowledge, REVIEWER, ftr, later, Ok(())),
        (S::Requested, ReviewCommand::Acknowledge, NONCITIZEN, req, later, Err("forbidden")),
        (S::Acknowledged, ReviewCommand::Acknowledge, SYSTEM, sys, later, Err("invalid_state")),
        // prioritise
        (S::Requested, detained.clone(), DIRECTOR, fot, later, Ok(())),
        (S::Tier1Decided, detained.clone(), REVIEWER, ftr, later, Ok(())),
        (S::Tier2Assigned, detained.clone(), SRO, sro, later, Ok(())),
        (S::Requested, detained.clone(), NONCITIZEN, req, later, Err("forbidden")),
        (S::Tier2Decided, detained.clone(), SYSTEM, sys, later, Err("review_closed")),
        // assign a tier-1 reviewer
        (S::Requested, assign(REVIEWER), DIRECTOR, fot, later, Err("invalid_state")),
        (S::Acknowledged, assign(REVIEWER), DIRECTOR, fot, later, Ok(())),
        (S::Acknowledged, assign(REVIEWER), SYSTEM, sys, later, Ok(())),
        (S::Acknowledged, assign(REVIEWER), REVIEWER, ftr, later, Err("forbidden")),
        (S::Acknowledged, assign(OFFICER), DIRECTOR, fot, later, Err("reviewer_not_independent")),
        (S::Acknowledged, assign(FAR_REVIEWER), DIRECTOR, fot, later, Err("reviewer_wrong_office")),
        (S::Acknowledged, assign(SRO), DIRECTOR, fot, later, Err("reviewer_not_qualified")),
        (S::Acknowledged, assign(STRANGER), DIRECTOR, fot, later, Err("reviewer_not_qualified")),
        (S::Tier1Assigned, assign(REVIEWER), DIRECTOR, fot, later, Err("already_assigned")),
        (S::Tier1Assigned, assign(REVIEWER2), DIRECTOR, fot, later, Ok(())),
        (S::Tier1Decided, assign(REVIEWER2), DIRECTOR, fot, later, Err("invalid_state")),
        // information
        (S::Acknowledged, ask(), REVIEWER, ftr, later, Err("not_assigned_reviewer")),
        (S::Tier1Assigned, ask(), REVIEWER, ftr, later, Ok(())),
        (S::Tier1Assigned, ask(), REVIEWER2, ftr, later, Err("not_assigned_reviewer")),
        (S::Tier1Assigned, ask(), SRO, sro, later, Err("not_assigned_reviewer")),
        (S::Tier1Decided, ask(), REVIEWER, ftr, later, Err("no_open_tier")),
        (S::Tier2Assigned, ask(), SRO, sro, later, Ok(())),
        (S::Tier2Assigned, ask(), REVIEWER, ftr, later, Err("not_assigned_reviewer")),
        (S::Tier1Assigned, answer(), NONCITIZEN, req, later, Err("no_information_requested")),
        (S::Tier1Assigned, answer(), STRANGER, req, later, Err("not_requester")),
        // decide tier 1
        (S::Acknowledged, decide1(Upheld, None), REVIEWER, ftr, later, Err("invalid_state")),
        (S::Tier1Assigned, decide1(Upheld, None), REVIEWER, ftr, later, Ok(())),
        (S::Tier1Assigned, decide1(Modified, None), REVIEWER, ftr, later, Ok(())),
        (S::Tier1Assigned, decide1(Reversed, None), REVIEWER, ftr, later, Ok(())),
        (S::Tier1Assigned, decide1(Referred, Some(ReferralTarget::CivilRights)), REVIEWER, ftr, later, Ok(())),
        (S::Tier1Assigned, decide1(Referred, None), REVIEWER, ftr, later, Err("referral_target_required")),
        (S::Tier1Assigned, decide1(Upheld, Some(ReferralTarget::CourtLawyers)), REVIEWER, ftr, later, Err("referral_target_unexpected")),
        (S::Tier1Assigned, ReviewCommand::DecideTier1 { outcome: Upheld, referred_to: None, reasons: "".into() }, REVIEWER, ftr, later, Err("invalid")),
        (S::Tier1Assigned, decide1(Upheld, None), REVIEWER2, ftr, later, Err("not_assigned_reviewer")),
        (S::Tier1Assigned, decide1(Upheld, None), SRO, sro, later, Err("forbidden")),
        (S::Tier1Decided, decide1(Upheld, None), REVIEWER, ftr, later, Err("invalid_state")),
        // request tier 2: tier 1 decided at h(48), window of 30 days
        (S::Tier1Assigned, tier2(), NONCITIZEN, req, later, Err("tier1_not_decided")),
        (S::Tier1Decided, tier2(), NONCITIZEN, req, later, Ok(())),
        (S::Tier1Decided, tier2(), NONCITIZEN, req, h(48 + 30 * 24 - 1), Ok(())),
        (S::Tier1Decided, tier2(), NONCITIZEN, req, h(48 + 30 * 24), Err("tier2_window_closed")),
        (S::Tier1Decided, tier2(), STRANGER, req, later, Err("not_requester")),
        (S::Tier1Decided, tier2(), REVIEWER, ftr, later, Err("forbidden")),
        (S::Tier2Requested, tier2(), NONCITIZEN, req, later, Err("tier2_already_requested")),
        (S::Tier2Decided, tier2(), NONCITIZEN, req, later, Err("review_closed")),
        // assign a Senior Reviewing Official
        (S::Tier1Decided, assign_sro(SRO), SRO, sro, later, Err("invalid_state")),
        (S::Tier2Requested, assign_sro(SRO), SRO, sro, later, Ok(())),
        (S::Tier2Requested, assign_sro(SRO2), SRO, sro, later, Ok(())),
        (S::Tier2Requested, assign_sro(APPROVER), SRO, sro, later, Err("reviewer_not_independent")),
        (S::Tier2Requested, assign_sro(REVIEWER), SRO, sro, later, Err("reviewer_not_qualified")),
        (S::Tier2Requested, assign_sro(SRO), DIRECTOR, fot, later, Err("forbidden")),
        (S::Tier2Assigned, assign_sro(SRO), SRO, sro, later, Err("already_assigned")),
        (S::Tier2Assigned, assign_sro(SRO2), SRO, sro, later, Ok(())),
        // decide tier 2
        (S::Tier2Requested, decide2(Reversed, None), SRO, sro, later, Err("invalid_state")),
        (S::Tier2Assigned, decide2(Reversed, None), SRO, sro, later, Ok(())),
        (S::Tier2Assigned, decide2(Referred, Some(ReferralTarget::DetentionOmbudsman)), SRO, sro, later, Ok(())),
        (S::Tier2Assigned, decide2(Referred, None), SRO, sro, later, Err("referral_target_required")),
        (S::Tier2Assigned, decide2(Reversed, None), SRO2, sro, later, Err("not_assigned_reviewer")),
        (S::Tier2Assigned, decide2(Reversed, None), REVIEWER, ftr, later, Err("forbidden")),
        (S::Tier2Decided, decide2(Reversed, None), SRO, sro, later, Err("review_closed")),
        // withdraw
        (S::Requested, withdraw(), NONCITIZEN, req, later, Ok(())),
        (S::Acknowledged, withdraw(), NONCITIZEN, req, later, Ok(())),
        (S::Tier1Assigned, withdraw(), NONCITIZEN, req, later, Ok(())),
        (S::Tier2Requested, withdraw(), NONCITIZEN, req, later, Ok(())),
        (S::Tier2Assigned, ReviewCommand::Withdraw { reason: None }, NONCITIZEN, req, later, Ok(())),
        (S::Tier2Assigned, ReviewCommand::Withdraw { reason: Some("  ".into()) }, NONCITIZEN, req, later, Err("invalid")),
        (S::Tier1Decided, withdraw(), NONCITIZEN, req, later, Err("no_open_tier")),
        (S::Tier1Assigned, withdraw(), STRANGER, req, later, Err("not_requester")),
        (S::Tier1Assigned, withdraw(), DIRECTOR, fot, later, Err("forbidden")),
        (S::Tier2Decided, withdraw(), NONCITIZEN, req, later, Err("review_closed")),
        (S::Withdrawn, withdraw(), NONCITIZEN, req, later, Err("review_closed")),
        (S::Withdrawn, ReviewCommand::Acknowledge, SYSTEM, sys, later, Err("review_closed")),
        (S::Withdrawn, missed(DeadlineKind::Tier1Decision), SYSTEM, sys, later, Err("review_closed")),
    ];
    for (i, (stage, command, who, role, now, expected)) in table.into_iter().enumerate() {
        let mut run = run_to(stage);
        let before = run.state.clone();
        let got = run
            .at(now)
            .when(actor(who, role), command.clone())
            .result()
            .map(|_| ())
            .map_err(|r| r.code());
        assert_eq!(got, expected, "row {i}: {command:?} as {role} in {stage:?}");
        if got.is_err() {
            assert_eq!(run.state, before, "row {i}: a rejection changes nothing");
        }
        assert!(run.state.open_tiers().len() <= 1, "row {i}");
    }
}

#[test]
fn the_approver_is_not_independent_either() {
    let mut run = new_run();
    let request = with_request(|c| {
        if let ReviewCommand::Request { case, decision, .. } = c {
            *case = CaseId(uuid::Uuid::from_u128(C2));
            *decision = DecisionId(uuid::Uuid::from_u128(D2));
        }
    });
    run.at(h(0))
        .when(actor(NONCITIZEN, Role::Requester), request.clone())
        .then_one();
    run.at(h(1))
        .when(actor(SYSTEM, Role::System), ReviewCommand::Acknowledge)
        .then_one();
    let assign = |p: u128| ReviewCommand::AssignReviewer {
        reviewer: person(p),
    };
    run.at(h(2))
        .when(
            actor(DIRECTOR, Role::FieldOfficeDirector),
            assign(REVIEWER2),
        )
        .then_refused("reviewer_not_independent");
    run.at(h(2))
        .when(actor(DIRECTOR, Role::FieldOfficeDirector), assign(REVIEWER))
        .then_one();
}

#[test]
fn the_tier1_reviewer_cannot_be_the_senior_official() {
    let mut run = run_to(Stage::Tier2Requested);
    // The tier-1 reviewer has since been registered as a Senior Reviewing Official.
    run.directory.officers.insert(
        person(REVIEWER),
        OfficerProfile {
            role: Role::SeniorReviewingOfficial,
            office: FieldOffice::Was,
            trained_for: vec![],
        },
    );
    let assign = ReviewCommand::AssignSeniorOfficial {
        official: person(REVIEWER),
    };
    run.at(h(80))
        .when(actor(SRO, Role::SeniorReviewingOfficial), assign.clone())
        .then_refused("reviewer_not_independent");
}

#[test]
fn information_requests_are_recorded_and_pause_nothing() {
    let mut run = run_to(Stage::Tier1Assigned);
    let due_before = run.state.due();
    run.at(h(3))
        .when(actor(REVIEWER, Role::FirstTierReviewer), ask())
        .then_one();
    run.at(h(4))
        .when(actor(REVIEWER, Role::FirstTierReviewer), ask())
        .then_one();
    assert_eq!(run.state.open_questions(), 2);
    assert_eq!(run.state.due(), due_before, "asking moves no deadline");
    run.at(h(5))
        .when(actor(NONCITIZEN, Role::Requester), answer())
        .then_one();
    assert_eq!(run.state.open_questions(), 0);
    run.at(h(6))
        .when(actor(NONCITIZEN, Role::Requester), answer())
        .then_refused("no_information_requested");
    // A decision with a question unanswered makes it moot.
    run.at(h(7))
        .when(actor(REVIEWER, Role::FirstTierReviewer), ask())
        .then_one();
    run.at(h(8))
        .when(
            actor(REVIEWER, Role::FirstTierReviewer),
            decide1(ReviewOutcome::Upheld, None),
        )
        .then_one();
    assert_eq!(run.state.open_questions(), 0);
    match &run.events[run.events.len() - 2] {
        ReviewEvent::InformationRequested(e) => assert_eq!(e.tier, ReviewTier::Tier1),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn deadlines_are_computed_from_configuration() {
    // Requested on a Friday afternoon: acknowledge by Monday, decide within 14 days.
    let friday = Utc.with_ymd_and_hms(2024, 3, 15, 15, 0, 0).unwrap();
    let mut run = new_run();
    run.at(friday)
        .when(actor(NONCITIZEN, Role::Requester), request())
        .then_one();
    assert_eq!(
        run.state.due(),
        vec![
            (DeadlineKind::Acknowledge, friday + Duration::days(3)),
            (DeadlineKind::Tier1Decision, friday + Duration::days(14)),
        ]
    );
    // Other configuration, other deadlines; the recorded ones do not move.
    run.deadlines = Deadlines {
        acknowledge_business_days: 2,
        tier1_days: 10,
        tier1_priority_days: 2,
        tier2_request_days: 5,
        tier2_days: 20,
        tier2_priority_days: 4,
    };
    assert_eq!(run.state.due()[1].1, friday + Duration::days(14));
    let mut run2 = new_run();
    run2.deadlines = run.deadlines.clone();
    run2.at(friday)
        .when(actor(NONCITIZEN, Role::Requester), request())
        .then_one();
    assert_eq!(
        run2.state.due(),
        vec![
            (DeadlineKind::Acknowledge, friday + Duration::days(4)),
            (DeadlineKind::Tier1Decision, friday + Duration::days(10)),
        ]
    );
    // An absurd configuration is refused, not a panic.
    let mut run3 = new_run();
    run3.deadlines.tier1_days = u32::MAX;
    run3.at(friday)
        .when(actor(NONCITIZEN, Role::Requester), request())
        .then_refused("invalid");
}

#[test]
fn prioritising_shortens_the_pending_decision_deadline() {
    let prioritise = |reason| ReviewCommand::Prioritise { reason };
    let tier1_due = |run: &Run| {
        run.state
            .due()
            .into_iter()
            .find(|(k, _)| *k == DeadlineKind::Tier1Decision)
            .map(|(_, d)| d)
    };
    // (hours after the request it is prioritised, expected tier-1 due in hours)
    for (at, expected) in [
        (0, 3 * 24),
        (5 * 24, 8 * 24),
        (12 * 24, 14 * 24),
        (20 * 24, 14 * 24),
    ] {
        let mut run = run_to(Stage::Requested);
        run.at(h(at))
            .when(
                actor(SYSTEM, Role::System),
                prioritise(PriorityReason::Detained),
            )
            .then_one();
        assert_eq!(tier1_due(&run), Some(h(expected)), "prioritised at +{at}h");
        // A second reason is recorded; it moves nothing.
        run.at(h(at + 1))
            .when(
                actor(DIRECTOR, Role::FieldOfficeDirector),
                prioritise(PriorityReason::RemovalImminent),
            )
            .then_one();
        assert_eq!(tier1_due(&run), Some(h(expected)));
        assert_eq!(
            run.state.priority(),
            [PriorityReason::Detained, PriorityReason::RemovalImminent]
        );
        run.at(h(at + 2))
            .when(
                actor(SYSTEM, Role::System),
                prioritise(PriorityReason::Detained),
            )
            .then_refused("already_prioritised");
    }
    // The acknowledgement deadline is already short; it does not change.
    let mut run = run_to(Stage::Requested);
    let ack = run.state.due()[0];
    run.at(h(0))
        .when(
            actor(SYSTEM, Role::System),
            prioritise(PriorityReason::Detained),
        )
        .then_one();
    assert_eq!(run.state.due()[0], ack);

    // Prioritised between tiers: nothing pending moves, and tier 2 gets the short deadline.
    let mut run = run_to(Stage::Tier1Decided);
    match run
        .at(h(50))
        .when(
            actor(SYSTEM, Role::System),
            prioritise(PriorityReason::RemovalImminent),
        )
        .then_one()
    {
        ReviewEvent::Prioritised(e) => assert_eq!(e.decision_due, None),
        other => panic!("unexpected {other:?}"),
    }
    run.at(h(72))
        .when(actor(NONCITIZEN, Role::Requester), tier2())
        .then_one();
    assert_eq!(
        run.state.due(),
        vec![(DeadlineKind::Tier2Decision, h(72 + 7 * 24))]
    );
    // Not prioritised: the normal tier-2 deadline; prioritised during tier 2: shortened.
    let mut run = run_to(Stage::Tier2Requested);
    assert_eq!(
        run.state.due(),
        vec![(DeadlineKind::Tier2Decision, h(72 + 30 * 24))]
    );
    run.at(h(96))
        .when(
            actor(SRO, Role::SeniorReviewingOfficial),
            prioritise(PriorityReason::Detained),
        )
        .then_one();
    assert_eq!(
        run.state.due(),
        vec![(DeadlineKind::Tier2Decision, h(96 + 7 * 24))]
    );
}

#[test]
fn deadline_missed_only_when_really_past_and_pending() {
    use DeadlineKind::*;
    // Request at h(0) on a Wednesday: acknowledge due h(24), tier 1 due h(336); tier 1
    // decided at h(48), tier 2 requested at h(72): due h(72 + 720).
    let (ack_due, t1_due, t2_due) = (h(24), h(14 * 24), h(72 + 30 * 24));
    // (stage, deadline, when, Ok or rejection code)
    let table = [
        (
            Stage::Requested,
            Acknowledge,
            ack_due - Duration::seconds(1),
            Err("deadline_not_passed"),
        ),
        (Stage::Requested, Acknowledge, ack_due, Ok(())),
        (
            Stage::Requested,
            Acknowledge,
            ack_due + Duration::days(9),
            Ok(()),
        ),
        (
            Stage::Requested,
            Tier1Decision,
            t1_due - Duration::seconds(1),
            Err("deadline_not_passed"),
        ),
        (Stage::Requested, Tier1Decision, t1_due, Ok(())),
        (
            Stage::Requested,
            Tier2Decision,
            t2_due,
            Err("deadline_not_pending"),
        ),
        (
            Stage::Acknowledged,
            Acknowledge,
            ack_due,
            Err("deadline_not_pending"),
        ),
        (Stage::Tier1Assigned, Tier1Decision, t1_due, Ok(())),
        (
            Stage::Tier1Decided,
            Tier1Decision,
            t1_due,
            Err("deadline_not_pending"),
        ),
        (
            Stage::Tier1Decided,
            Tier2Decision,
            t2_due,
            Err("deadline_not_pending"),
        ),
        (
            Stage::Tier2Requested,
            Tier2Decision,
            t2_due - Duration::seconds(1),
            Err("deadline_not_passed"),
        ),
        (Stage::Tier2Assigned, Tier2Decision, t2_due, Ok(())),
        (
            Stage::Tier2Decided,
            Tier2Decision,
            t2_due,
            Err("review_closed"),
        ),
    ];
    for (i, (stage, kind, now, expected)) in table.into_iter().enumerate() {
        let mut run = run_to(stage);
        let got = run
            .at(now)
            .when(actor(SYSTEM, Role::System), missed(kind))
            .result();
        assert_eq!(
            got.as_ref().map(|_| ()).map_err(|r| r.code()),
            expected,
            "row {i}"
        );
        if let Ok(events) = got {
            match &events[..] {
                [ReviewEvent::DeadlineMissed(e)] => {
                    assert_eq!((e.deadline, e.at), (kind, now));
                    assert!(e.due <= now);
                }
                other => panic!("unexpected {other:?}"),
            }
            assert_eq!(run.state.missed(), [kind]);
            assert!(
                run.state.due().iter().all(|(k, _)| *k != kind),
                "no timer again"
            );
            run.at(now)
                .when(actor(SYSTEM, Role::System), missed(kind))
                .then_refused("deadline_already_recorded");
        }
    }
    let mut run = run_to(Stage::Requested);
    run.at(ack_due)
        .when(
            actor(DIRECTOR, Role::FieldOfficeDirector),
            missed(Acknowledge),
        )
        .then_refused("forbidden");
    // A late step is still done late: the miss stays recorded.
    run.at(ack_due)
        .when(actor(SYSTEM, Role::System), missed(Acknowledge))
        .then_one();
    run.at(ack_due + Duration::hours(1))
        .when(actor(SYSTEM, Role::System), ReviewCommand::Acknowledge)
        .then_one();
    assert_eq!(run.state.missed(), [Acknowledge]);
    assert_eq!(run.state.due(), vec![(Tier1Decision, t1_due)]);
}

#[test]
fn due_deadlines_by_stage() {
    use DeadlineKind::*;
    let (ack, t1, t2) = (h(24), h(14 * 24), h(72 + 30 * 24));
    for (stage, expected) in [
        (Stage::NotRequested, vec![]),
        (
            Stage::Requested,
            vec![(Acknowledge, ack), (Tier1Decision, t1)],
        ),
        (Stage::Acknowledged, vec![(Tier1Decision, t1)]),
        (Stage::Tier1Assigned, vec![(Tier1Decision, t1)]),
        (Stage::Tier1Decided, vec![]),
        (Stage::Tier2Requested, vec![(Tier2Decision, t2)]),
        (Stage::Tier2Assigned, vec![(Tier2Decision, t2)]),
        (Stage::Tier2Decided, vec![]),
        (Stage::Withdrawn, vec![]),
    ] {
        let run = run_to(stage);
        assert_eq!(run.state.due(), expected, "{stage:?}");
        let open = match stage {
            Stage::Requested | Stage::Acknowledged | Stage::Tier1Assigned => {
                vec![ReviewTier::Tier1]
            }
            Stage::Tier2Requested | Stage::Tier2Assigned => vec![ReviewTier::Tier2],
            _ => vec![],
        };
        assert_eq!(run.state.open_tiers(), open, "{stage:?}");
    }
    assert_eq!(
        run_to(Stage::Tier1Decided).state.tier2_request_closes(),
        Some(h(48 + 30 * 24))
    );
}

#[test]
fn every_review_command_checks_the_permission_table() {
    let samples = [
        request(),
        ReviewCommand::Acknowledge,
        ReviewCommand::Prioritise {
            reason: PriorityReason::Detained,
        },
        ReviewCommand::AssignReviewer {
            reviewer: person(REVIEWER),
        },
        ask(),
        answer(),
        decide1(ReviewOutcome::Upheld, None),
        tier2(),
        ReviewCommand::AssignSeniorOfficial {
            official: person(SRO),
        },
        decide2(ReviewOutcome::Upheld, None),
        withdraw(),
        missed(DeadlineKind::Acknowledge),
    ];
    let kinds: HashSet<_> = samples.iter().map(ReviewCommand::kind).collect();
    let review_kinds: HashSet<_> = CommandKind::ALL
        .iter()
        .copied()
        .filter(|k| k.name().starts_with("review."))
        .collect();
    assert_eq!(kinds, review_kinds, "one sample per review command");
    for command in &samples {
        for role in Role::ALL {
            let mut run = run_to(Stage::Tier1Assigned);
            let got = run
                .at(h(200))
                .when(actor(REVIEWER, *role), command.clone())
                .result();
            let forbidden = matches!(got, Err(Rejection::Forbidden { .. }));
            assert_eq!(
                forbidden,
                !permissions::allowed(*role, command.kind()),
                "{command:?} as {role}"
            );
        }
    }
}

#[test]
fn every_event_round_trips_in_both_formats() {
    let mut run = run_to(Stage::Tier2Assigned);
    run.at(h(80))
        .when(actor(SRO, Role::SeniorReviewingOfficial), ask())
        .then_one();
    run.at(h(81))
        .when(actor(NONCITIZEN, Role::Requester), answer())
        .then_one();
    run.at(h(82))
        .when(
            actor(SYSTEM, Role::System),
            ReviewCommand::Prioritise {
                reason: PriorityReason::Detained,
            },
        )
        .then_one();
    run.at(h(2000))
        .when(
            actor(SYSTEM, Role::System),
            missed(DeadlineKind::Tier2Decision),
        )
        .then_one();
    run.at(h(2001))
        .when(actor(NONCITIZEN, Role::Requester), withdraw())
        .then_one();
    let mut names: HashSet<&str> = HashSet::new();
    run = {
        let mut more = run_to(Stage::Tier2Assigned);
        more.at(h(90))
            .when(
                actor(SRO, Role::SeniorReviewingOfficial),
                decide2(ReviewOutcome::Upheld, None),
            )
            .then_one();
        run.events.extend(more.events);
        run
    };
    for event in &run.events {
        names.insert(event.name());
        for format in [Format::Postcard, Format::Json] {
            let bytes = event.encode(format).unwrap();
            let back = ReviewEvent::decode(event.name(), event.version(), &bytes, format).unwrap();
            assert_eq!(back.as_ref(), Some(event), "{} {format:?}", event.name());
        }
    }
    let all: HashSet<&str> = ReviewEvent::TYPES.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, all, "every event type is exercised");
}

fn requested_v2(preferred_language: Option<&str>) -> ReviewRequested {
    match new_run()
        .at(h(0))
        .when(actor(NONCITIZEN, Role::Requester), request())
        .then_one()
    {
        ReviewEvent::Requested(mut e) => {
            e.preferred_language = preferred_language.map(str::to_owned);
            e
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn unknown_versions_are_refused() {
    let bytes = ReviewEvent::Requested(requested_v2(None))
        .encode(Format::Json)
        .unwrap();
    for (name, version, current) in [
        ("review.requested", 3, 2),
        ("review.requested", 0, 2),
        ("review.acknowledged", 0, 1),
        ("review.acknowledged", 2, 1),
    ] {
        assert_eq!(
            ReviewEvent::decode(name, version, &bytes, Format::Json),
            Err(CodecError::UnknownVersion {
                name: name.to_owned(),
                version,
                current
            })
        );
    }
    assert_eq!(
        ReviewEvent::decode("case.opened", 1, &bytes, Format::Json),
        Ok(None)
    );
    assert!(matches!(
        ReviewEvent::decode("review.requested", 1, b"\x01", Format::Postcard),
        Err(CodecError::Malformed { .. })
    ));
}

#[test]
fn closed_vocabularies_have_stable_codes() {
    for (all, codes) in [
        (
            RequesterCapacity::ALL
                .iter()
                .map(|c| c.code())
                .collect::<Vec<_>>(),
            vec!["noncitizen", "representative"],
        ),
        (
            PriorityReason::ALL.iter().map(|c| c.code()).collect(),
            vec!["detained", "removal_imminent"],
        ),
        (
            DeadlineKind::ALL.iter().map(|c| c.code()).collect(),
            vec!["acknowledge", "tier1_decision", "tier2_decision"],
        ),
    ] {
        assert_eq!(all, codes);
    }
    assert_eq!(
        serde_json::to_string(&DeadlineKind::Tier1Decision).unwrap(),
        "\"tier1_decision\""
    );
}

#[test]
fn stages_have_stable_snake_case_codes() {
    let codes: Vec<_> = Stage::ALL.iter().map(|s| s.code()).collect();
    assert_eq!(
        codes,
        [
            "not_requested",
            "requested",
            "acknowledged",
            "tier1_assigned",
            "tier1_decided",
            "tier2_requested",
            "tier2_assigned",
            "tier2_decided",
            "withdrawn",
        ]
    );
    assert_eq!(Stage::Tier1Assigned.code(), "tier1_assigned");
}

#[test]
fn review_events_convert_into_domain_events_and_back() {
    let event = new_run()
        .at(h(0))
        .when(actor(NONCITIZEN, Role::Requester), request())
        .then_one();
    let domain = DomainEvent::from(event.clone());
    assert_eq!(domain.name(), "review.requested");
    assert_eq!(ReviewEvent::try_from(domain.clone()), Ok(event));
    // Another aggregate's conversion hands the event back untouched.
    assert_eq!(CaseEvent::try_from(domain.clone()), Err(domain));
}
