//! The case and officer aggregates' rules, one scenario each.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use docket_domain::case::{Case, CaseCommand, CaseEvent, Encounter, FactorsAssessed};
use docket_domain::officer::{Officer, OfficerCommand};
use docket_domain::policy::DepartureKind;
use docket_domain::values::{
    ANumber, Actor, CaseId, Code, ContentHash, DecisionId, EncounterPlace, EnforcementAction,
    FieldOffice, MannerOfEntry, PriorityCategory, ProtectedArea, RecordId, RecordSource, Role,
};
use uuid::Uuid;

use crate::support::*;

/// A case under test (see [`TestFramework`]): each command five minutes after the last.
pub type Driver = TestFramework<Case>;

/// A case not yet opened, its first command five minutes after `now`.
pub fn driver(now: DateTime<Utc>) -> Driver {
    let mut d = TestFramework::with(directory()).stepping(Duration::minutes(5));
    d.now = now;
    d
}

pub fn officer() -> Actor {
    actor(OFFICER, Role::Officer)
}

pub fn supervisor() -> Actor {
    actor(SUPERVISOR, Role::Supervisor)
}

pub fn codes(list: &[&str]) -> Vec<Code> {
    list.iter()
        .map(|c| Code::parse("factor", c).unwrap())
        .collect()
}

pub fn encounter(now: DateTime<Utc>, area: Option<ProtectedArea>) -> Encounter {
    Encounter {
        at: now - Duration::hours(2),
        location: "Queens, New York".into(),
        place: EncounterPlace::Interior,
        manner_of_entry: MannerOfEntry::EnteredUnlawfully,
        entry_date: NaiveDate::from_ymd_opt(2015, 6, 1),
        protected_area: area,
    }
}

/// Opens a case and makes its whole record attested, with `factors` assessed.
pub fn ready(now: DateTime<Utc>, area: Option<ProtectedArea>, factors: &[&str]) -> Driver {
    let mut d = driver(now);
    d.when(
        officer(),
        CaseCommand::Open {
            case: CaseId(Uuid::from_u128(100)),
            a_number: ANumber::parse("A012345678").unwrap(),
            office: FieldOffice::Nyc,
            encounter: encounter(now, area),
        },
    )
    .then_ok();
    d.when(
        officer(),
        CaseCommand::AttachRecord {
            record: RecordId(Uuid::from_u128(200)),
            source: RecordSource::Criminal,
            reference: "NCIC 2024-000123".into(),
            content_hash: ContentHash([7; 32]),
        },
    )
    .then_ok();
    for source in [RecordSource::Administrative, RecordSource::Investigative] {
        d.when(
            officer(),
            CaseCommand::MarkSourceUnavailable {
                source,
                reason: "none on file".into(),
            },
        )
        .then_ok();
    }
    d.when(officer(), CaseCommand::AttestWholeRecord).then_ok();
    d.when(
        officer(),
        CaseCommand::AssessFactors {
            factors: codes(factors),
            narrative: "reviewed the whole record".into(),
        },
    )
    .then_ok();
    d
}

pub fn propose(action: EnforcementAction, cited: &[&str]) -> CaseCommand {
    CaseCommand::ProposeDecision {
        decision: DecisionId(Uuid::from_u128(300)),
        action,
        cited_factors: codes(cited),
        reasons: "on the totality of the facts".into(),
        protected_area_exception: None,
    }
}

pub fn record() -> CaseCommand {
    CaseCommand::RecordDecision {
        decision: DecisionId(Uuid::from_u128(300)),
    }
}

#[test]
fn a_decision_in_line_with_guidance_is_recorded_with_its_policy_version() {
    let mut d = ready(
        in_force(),
        None,
        &["firearm_or_dangerous_weapon", "serious_prior_record"],
    );
    let guidance = d
        .state
        .assessment
        .as_ref()
        .unwrap()
        .guidance
        .clone()
        .unwrap();
    assert_eq!(guidance.priority, PriorityCategory::PublicSafety);
    d.when(
        officer(),
        propose(EnforcementAction::Arrest, &["firearm_or_dangerous_weapon"]),
    )
    .then_ok();
    let events = d.when(officer(), record()).then_ok();
    let CaseEvent::DecisionRecorded(r) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(r.policy_version.as_deref(), Some("2021-09-30"));
    assert_eq!(r.departure, None);
    assert_eq!(r.approved_by, None);
    assert_eq!(d.state.decisions.len(), 1);
}

#[test]
fn no_proposal_before_the_whole_record_is_attested() {
    let mut d = driver(in_force());
    d.when(
        officer(),
        CaseCommand::Open {
            case: CaseId(Uuid::from_u128(1)),
            a_number: ANumber::parse("1234567").unwrap(),
            office: FieldOffice::Chi,
            encounter: encounter(in_force(), None),
        },
    )
    .then_ok();
    d.when(officer(), CaseCommand::AttestWholeRecord)
        .then_refused("whole_record_incomplete");
    d.when(
        officer(),
        CaseCommand::AssessFactors {
            factors: vec![],
            narrative: "n".into(),
        },
    )
    .then_ok();
    d.when(officer(), propose(EnforcementAction::NoAction, &[]))
        .then_refused("whole_record_not_attested");
}

#[test]
fn a_record_attached_after_attestation_needs_a_new_attestation() {
    let mut d = ready(in_force(), None, &[]);
    d.when(
        officer(),
        CaseCommand::AttachRecord {
            record: RecordId(Uuid::from_u128(201)),
            source: RecordSource::Investigative,
            reference: "HSI report".into(),
            content_hash: ContentHash([8; 32]),
        },
    )
    .then_ok();
    d.when(officer(), propose(EnforcementAction::NoAction, &[]))
        .then_refused("whole_record_not_attested");
    d.when(officer(), CaseCommand::AttestWholeRecord).then_ok();
    d.when(officer(), propose(EnforcementAction::NoAction, &[]))
        .then_ok();
}

#[test]
fn prohibited_grounds_can_never_be_cited() {
    let mut d = ready(in_force(), None, &["serious_prior_record"]);
    for ground in ["national_origin", "religion", "race"] {
        d.when(
            officer(),
            CaseCommand::AssessFactors {
                factors: codes(&[ground]),
                narrative: "x".into(),
            },
        )
        .then_refused("prohibited_ground_cited");
        d.when(officer(), propose(EnforcementAction::Arrest, &[ground]))
            .then_refused("prohibited_ground_cited");
    }
    // Not even when no policy version is in force.
    let mut d = ready(vacatur(), None, &[]);
    d.when(
        officer(),
        propose(EnforcementAction::Arrest, &["political_associations"]),
    )
    .then_refused("prohibited_ground_cited");
}

#[test]
fn the_deciding_officer_must_be_trained_for_the_policy_in_force() {
    let mut d = ready(in_force(), None, &[]);
    let untrained = actor(UNTRAINED_OFFICER, Role::Officer);
    d.when(untrained, propose(EnforcementAction::NoAction, &[]))
        .then_refused("officer_not_trained");
    let stranger = actor(99, Role::Officer);
    d.when(stranger, propose(EnforcementAction::NoAction, &[]))
        .then_refused("officer_not_registered");
}

#[test]
fn a_departure_needs_an_independent_supervisors_approval() {
    // Mitigating factors only: guidance is "not a priority"; an arrest departs from it.
    let mut d = ready(in_force(), None, &["family_impact", "lengthy_presence"]);
    d.when(officer(), propose(EnforcementAction::Arrest, &[]))
        .then_ok();
    let pending = d.state.proposal.clone().unwrap();
    assert_eq!(
        pending.proposed.departure.unwrap().kind,
        DepartureKind::ActionWithoutPriority
    );
    d.when(officer(), record())
        .then_refused("departure_needs_approval");
    // The officer acting as a supervisor is still the officer.
    let own = actor(OFFICER, Role::Supervisor);
    let approve = CaseCommand::ApproveDecision {
        decision: DecisionId(Uuid::from_u128(300)),
    };
    d.when(own, approve.clone())
        .then_refused("approver_not_independent");
    d.when(officer(), approve.clone()).then_refused("forbidden");
    d.when(supervisor(), approve).then_ok();
    let events = d.when(officer(), record()).then_ok();
    let CaseEvent::DecisionRecorded(r) = &events[0] else {
        panic!()
    };
    assert_eq!(r.approved_by, Some(person(SUPERVISOR)));
    assert!(r.departure.is_some());
}

#[test]
fn a_returned_proposal_can_be_proposed_again() {
    let mut d = ready(in_force(), None, &["family_impact"]);
    d.when(officer(), propose(EnforcementAction::Detain, &[]))
        .then_ok();
    d.when(
        supervisor(),
        CaseCommand::ReturnDecision {
            decision: DecisionId(Uuid::from_u128(300)),
            reason: "weigh family impact".into(),
        },
    )
    .then_ok();
    assert!(d.state.proposal.is_none());
    d.when(
        officer(),
        propose(EnforcementAction::NoAction, &["family_impact"]),
    )
    .then_ok();
    d.when(officer(), record()).then_ok();
}

#[test]
fn action_in_a_protected_area_needs_a_recorded_exception() {
    let mut d = ready(
        in_force(),
        Some(ProtectedArea::School),
        &["terrorism_or_espionage"],
    );
    d.when(
        officer(),
        propose(EnforcementAction::Arrest, &["terrorism_or_espionage"]),
    )
    .then_refused("protected_area_exception_missing");
    let mut with_exception = propose(EnforcementAction::Arrest, &["terrorism_or_espionage"]);
    if let CaseCommand::ProposeDecision {
        protected_area_exception,
        ..
    } = &mut with_exception
    {
        *protected_area_exception =
            Some("imminent threat to life (national security exigency)".into());
    }
    d.when(officer(), with_exception).then_ok();
    d.when(officer(), record()).then_ok();
    // Declining to act there needs no exception.
    let mut d = ready(in_force(), Some(ProtectedArea::HealthCare), &[]);
    d.when(officer(), propose(EnforcementAction::NoAction, &[]))
        .then_ok();
}

#[test]
fn a_decision_with_no_policy_in_force_is_recorded_as_such() {
    let mut d = ready(vacatur(), None, &["firearm_or_dangerous_weapon"]);
    assert!(d.state.assessment.as_ref().unwrap().guidance.is_none());
    // Training cannot be required for a version that is not in force.
    let untrained = actor(UNTRAINED_OFFICER, Role::Officer);
    let mut cmd = propose(EnforcementAction::Arrest, &["firearm_or_dangerous_weapon"]);
    d.when(untrained, cmd.clone()).then_ok();
    let events = d.when(untrained, record()).then_ok();
    let CaseEvent::DecisionRecorded(r) = &events[0] else {
        panic!()
    };
    assert_eq!(
        (r.policy_version.clone(), r.guidance.clone(), r.departure),
        (None, None, None)
    );
    // And a proposal from before a version came into force must be made again under it.
    if let CaseCommand::ProposeDecision { decision, .. } = &mut cmd {
        *decision = DecisionId(Uuid::from_u128(301));
    }
    d.when(untrained, cmd).then_ok();
    d.now = in_force();
    d.when(
        untrained,
        CaseCommand::RecordDecision {
            decision: DecisionId(Uuid::from_u128(301)),
        },
    )
    .then_refused("policy_changed_since_proposal");
}

#[test]
fn cited_factors_must_have_been_assessed() {
    let mut d = ready(in_force(), None, &["family_impact"]);
    d.when(
        officer(),
        propose(EnforcementAction::Arrest, &["firearm_or_dangerous_weapon"]),
    )
    .then_refused("cited_factor_not_assessed");
    d.when(
        officer(),
        CaseCommand::AssessFactors {
            factors: codes(&["made_up"]),
            narrative: "x".into(),
        },
    )
    .then_refused("invalid");
}

#[test]
fn a_closed_case_takes_no_more_commands() {
    let mut d = ready(in_force(), None, &[]);
    d.when(officer(), propose(EnforcementAction::NoAction, &[]))
        .then_ok();
    let close = CaseCommand::Close {
        reason: "done".into(),
    };
    d.when(officer(), close.clone())
        .then_refused("invalid_state");
    d.when(officer(), record()).then_ok();
    d.when(officer(), close.clone()).then_ok();
    d.when(officer(), close).then_refused("case_closed");
    d.when(officer(), CaseCommand::AttestWholeRecord)
        .then_refused("case_closed");
}

#[test]
fn bad_input_names_the_field() {
    let mut d = driver(in_force());
    let mut enc = encounter(in_force(), None);
    enc.location = "   ".into();
    let r = d
        .when(
            officer(),
            CaseCommand::Open {
                case: CaseId(Uuid::nil()),
                a_number: ANumber::parse("1234567").unwrap(),
                office: FieldOffice::Atl,
                encounter: enc,
            },
        )
        .then_rejected();
    assert!(r.to_string().contains("encounter.location"), "{r}");
    let mut enc = encounter(in_force(), None);
    enc.at = in_force() + Duration::days(3);
    let r = d
        .when(
            officer(),
            CaseCommand::Open {
                case: CaseId(Uuid::nil()),
                a_number: ANumber::parse("1234567").unwrap(),
                office: FieldOffice::Atl,
                encounter: enc,
            },
        )
        .then_rejected();
    assert!(r.to_string().contains("encounter.at"), "{r}");
}

#[test]
fn officers_register_once_and_train_on_known_versions() {
    let fod = actor(50, Role::FieldOfficeDirector);
    let register = OfficerCommand::Register {
        person: person(60),
        office: FieldOffice::Sea,
        role: Role::Officer,
    };
    let mut o = TestFramework::<Officer>::with(directory());
    o.when(fod, register.clone()).then_ok();
    o.when(fod, register).then_refused("invalid_state");
    let train = |version: &str, days: i64| OfficerCommand::CompleteTraining {
        policy_version: version.into(),
        module: "web-based".into(),
        completed_on: (in_force() + Duration::days(days)).date_naive(),
    };
    o.when(fod, train("2099-01-01", 0))
        .then_refused("unknown_policy_version");
    o.when(fod, train("2021-09-30", 2))
        .then_refused("training_in_future");
    o.when(fod, train("2021-09-30", 0)).then_ok();
    assert_eq!(
        o.state.profile().unwrap().trained_for,
        vec!["2021-09-30".to_string()]
    );
    let requester = OfficerCommand::Register {
        person: person(61),
        office: FieldOffice::Sea,
        role: Role::Requester,
    };
    TestFramework::<Officer>::with(directory())
        .when(fod, requester)
        .then_refused("role_not_registrable");
}

fn system() -> Actor {
    actor(0, Role::System)
}

fn recomputed(events: &[CaseEvent]) -> &docket_domain::case::GuidanceRecomputed {
    match events {
        [CaseEvent::GuidanceRecomputed(e)] => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn guidance_is_recomputed_only_by_the_system_on_an_assessed_open_case() {
    // Not before the factors are assessed.
    let mut d = driver(in_force());
    // Not before the case is open.
    d.when(system(), CaseCommand::RecomputeGuidance)
        .then_refused("invalid_state");
    d.when(
        officer(),
        CaseCommand::Open {
            case: CaseId(Uuid::from_u128(1)),
            a_number: ANumber::parse("1234567").unwrap(),
            office: FieldOffice::Chi,
            encounter: encounter(in_force(), None),
        },
    )
    .then_ok();
    d.when(system(), CaseCommand::RecomputeGuidance)
        .then_refused("factors_not_assessed");
    // Only by the system, checked before anything else.
    let mut d = ready(in_force(), None, &["family_impact", "lengthy_presence"]);
    for who in [
        officer(),
        supervisor(),
        actor(50, Role::FieldOfficeDirector),
        actor(8, Role::IntakeClerk),
        actor(9, Role::Auditor),
    ] {
        d.when(who, CaseCommand::RecomputeGuidance)
            .then_refused("forbidden");
    }
    // Not on a closed case.
    d.when(officer(), propose(EnforcementAction::NoAction, &[]))
        .then_ok();
    d.when(officer(), record()).then_ok();
    d.when(
        officer(),
        CaseCommand::Close {
            reason: "done".into(),
        },
    )
    .then_ok();
    d.when(system(), CaseCommand::RecomputeGuidance)
        .then_refused("case_closed");
    // The permission is checked first.
    d.when(officer(), CaseCommand::RecomputeGuidance)
        .then_refused("forbidden");
}

#[test]
fn recomputed_guidance_after_a_record_is_attached() {
    let mut d = ready(in_force(), None, &["family_impact", "lengthy_presence"]);
    let assessed = d.state.assessment.clone().unwrap();
    let before = assessed.guidance.clone().unwrap();
    assert_eq!(before.priority, PriorityCategory::NotAPriority);
    assert!(!d.state.guidance_outdated, "just assessed");
    d.when(
        actor(8, Role::IntakeClerk),
        CaseCommand::AttachRecord {
            record: RecordId(Uuid::from_u128(201)),
            source: RecordSource::Investigative,
            reference: "HSI report".into(),
            content_hash: ContentHash([8; 32]),
        },
    )
    .then_ok();
    assert!(
        d.state.guidance_outdated,
        "the record changed after the assessment"
    );
    let events = d.when(system(), CaseCommand::RecomputeGuidance).then_ok();
    assert!(!d.state.guidance_outdated, "recomputed");
    let e = recomputed(&events);
    // Same facts, same policy: the same guidance, and it says so.
    assert_eq!(e.policy_version.as_deref(), Some("2021-09-30"));
    assert_eq!(e.previous, Some(before.clone()));
    assert_eq!(e.guidance, Some(before));
    assert!(!e.changed);
    assert_eq!(
        e.records,
        [
            RecordId(Uuid::from_u128(200)),
            RecordId(Uuid::from_u128(201))
        ]
    );
    assert_eq!(e.unavailable, [RecordSource::Administrative]);
    assert_eq!(e.by, system());
    // The assessment keeps its factors, narrative, author and time.
    assert_eq!(d.state.assessment, Some(assessed));
    // Recomputing is not attesting: a proposal still needs the record attested again.
    d.when(officer(), propose(EnforcementAction::NoAction, &[]))
        .then_refused("whole_record_not_attested");
}

#[test]
fn recomputed_guidance_follows_the_policy_in_force() {
    // Assessed during the vacatur: no guidance. Recomputed once the guidelines apply again.
    let mut d = ready(vacatur(), None, &["firearm_or_dangerous_weapon"]);
    let assessed = d.state.assessment.clone().unwrap();
    assert_eq!(assessed.guidance, None);
    d.when(
        officer(),
        CaseCommand::MarkSourceUnavailable {
            source: RecordSource::Administrative,
            reason: "A-file lost".into(),
        },
    )
    .then_ok();
    d.now = in_force();
    let events = d.when(system(), CaseCommand::RecomputeGuidance).then_ok();
    let e = recomputed(&events).clone();
    assert_eq!(e.policy_version.as_deref(), Some("2021-09-30"));
    assert_eq!(e.previous, None);
    let guidance = e.guidance.clone().unwrap();
    assert_eq!(guidance.policy_version, "2021-09-30");
    assert_eq!(guidance.priority, PriorityCategory::PublicSafety);
    assert!(e.changed);
    assert_eq!(e.records, [RecordId(Uuid::from_u128(200))]);
    assert_eq!(
        e.unavailable,
        [RecordSource::Investigative, RecordSource::Administrative]
    );
    // Only the guidance of the assessment changes.
    assert_eq!(
        d.state.assessment,
        Some(FactorsAssessed {
            guidance: Some(guidance.clone()),
            ..assessed
        })
    );
    // And back: once the guidelines are superseded there is none again.
    d.now = Utc.with_ymd_and_hms(2025, 2, 1, 12, 0, 0).unwrap();
    let events = d.when(system(), CaseCommand::RecomputeGuidance).then_ok();
    let e = recomputed(&events);
    assert_eq!((e.policy_version.clone(), e.guidance.clone()), (None, None));
    assert_eq!(e.previous, Some(guidance));
    assert!(e.changed);
    assert_eq!(d.state.assessment.as_ref().unwrap().guidance, None);
}
