//! The case and officer aggregates' rules, one scenario each.

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use docket_domain::case::{Case, CaseCommand, CaseEvent, Encounter, FactorsAssessed};
use docket_domain::officer::{Officer, OfficerCommand};
use docket_domain::policy::{DepartureKind, PolicySet};
use docket_domain::values::{
    ANumber, Actor, CaseId, Code, ContentHash, DecisionId, EncounterPlace, EnforcementAction,
    FieldOffice, MannerOfEntry, PriorityCategory, ProtectedArea, RecordId, RecordSource, Role,
};
use docket_domain::{Aggregate, Deadlines, Rejection};
use uuid::Uuid;

use crate::support::*;

/// Drives one case through commands, checking that state stays the fold of its events.
pub struct Driver {
    pub case: Case,
    pub events: Vec<CaseEvent>,
    pub policies: PolicySet,
    pub directory: MapDirectory,
    pub deadlines: Deadlines,
    pub now: DateTime<Utc>,
}

impl Driver {
    pub fn new(now: DateTime<Utc>) -> Self {
        Driver {
            case: Case::default(),
            events: Vec::new(),
            policies: policies(),
            directory: directory(),
            deadlines: Deadlines::default(),
            now,
        }
    }

    pub fn run(&mut self, actor: Actor, command: CaseCommand) -> Result<Vec<CaseEvent>, Rejection> {
        self.now += Duration::minutes(5);
        let ctx = context(
            actor,
            self.now,
            &self.policies,
            &self.directory,
            &self.deadlines,
        );
        let events = self.case.decide(&command, &ctx)?;
        for e in &events {
            self.case = self.case.clone().evolve(e);
        }
        self.events.extend(events.clone());
        assert_eq!(
            Case::fold(&self.events),
            self.case,
            "state is the fold of its events"
        );
        Ok(events)
    }

    pub fn ok(&mut self, actor: Actor, command: CaseCommand) -> Vec<CaseEvent> {
        self.run(actor, command.clone())
            .unwrap_or_else(|e| panic!("{command:?} refused: {e}"))
    }

    pub fn refused(&mut self, actor: Actor, command: CaseCommand) -> Rejection {
        let before = self.case.clone();
        let rejection = self.run(actor, command).unwrap_err();
        assert_eq!(self.case, before, "a refused command changes nothing");
        rejection
    }
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
    let mut d = Driver::new(now);
    d.ok(
        officer(),
        CaseCommand::Open {
            case: CaseId(Uuid::from_u128(100)),
            a_number: ANumber::parse("A012345678").unwrap(),
            office: FieldOffice::Nyc,
            encounter: encounter(now, area),
        },
    );
    d.ok(
        officer(),
        CaseCommand::AttachRecord {
            record: RecordId(Uuid::from_u128(200)),
            source: RecordSource::Criminal,
            reference: "NCIC 2024-000123".into(),
            content_hash: ContentHash([7; 32]),
        },
    );
    for source in [RecordSource::Administrative, RecordSource::Investigative] {
        d.ok(
            officer(),
            CaseCommand::MarkSourceUnavailable {
                source,
                reason: "none on file".into(),
            },
        );
    }
    d.ok(officer(), CaseCommand::AttestWholeRecord);
    d.ok(
        officer(),
        CaseCommand::AssessFactors {
            factors: codes(factors),
            narrative: "reviewed the whole record".into(),
        },
    );
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

fn rule(r: Rejection) -> &'static str {
    r.code()
}

#[test]
fn a_decision_in_line_with_guidance_is_recorded_with_its_policy_version() {
    let mut d = ready(
        in_force(),
        None,
        &["firearm_or_dangerous_weapon", "serious_prior_record"],
    );
    let guidance = d
        .case
        .assessment
        .as_ref()
        .unwrap()
        .guidance
        .clone()
        .unwrap();
    assert_eq!(guidance.priority, PriorityCategory::PublicSafety);
    d.ok(
        officer(),
        propose(EnforcementAction::Arrest, &["firearm_or_dangerous_weapon"]),
    );
    let events = d.ok(officer(), record());
    let CaseEvent::DecisionRecorded(r) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(r.policy_version.as_deref(), Some("2021-09-30"));
    assert_eq!(r.departure, None);
    assert_eq!(r.approved_by, None);
    assert_eq!(d.case.decisions.len(), 1);
}

#[test]
fn no_proposal_before_the_whole_record_is_attested() {
    let mut d = Driver::new(in_force());
    d.ok(
        officer(),
        CaseCommand::Open {
            case: CaseId(Uuid::from_u128(1)),
            a_number: ANumber::parse("1234567").unwrap(),
            office: FieldOffice::Chi,
            encounter: encounter(in_force(), None),
        },
    );
    assert_eq!(
        rule(d.refused(officer(), CaseCommand::AttestWholeRecord)),
        "whole_record_incomplete"
    );
    d.ok(
        officer(),
        CaseCommand::AssessFactors {
            factors: vec![],
            narrative: "n".into(),
        },
    );
    assert_eq!(
        rule(d.refused(officer(), propose(EnforcementAction::NoAction, &[]))),
        "whole_record_not_attested"
    );
}

#[test]
fn a_record_attached_after_attestation_needs_a_new_attestation() {
    let mut d = ready(in_force(), None, &[]);
    d.ok(
        officer(),
        CaseCommand::AttachRecord {
            record: RecordId(Uuid::from_u128(201)),
            source: RecordSource::Investigative,
            reference: "HSI report".into(),
            content_hash: ContentHash([8; 32]),
        },
    );
    assert_eq!(
        rule(d.refused(officer(), propose(EnforcementAction::NoAction, &[]))),
        "whole_record_not_attested"
    );
    d.ok(officer(), CaseCommand::AttestWholeRecord);
    d.ok(officer(), propose(EnforcementAction::NoAction, &[]));
}

#[test]
fn prohibited_grounds_can_never_be_cited() {
    let mut d = ready(in_force(), None, &["serious_prior_record"]);
    for ground in ["national_origin", "religion", "race"] {
        let r = d.refused(
            officer(),
            CaseCommand::AssessFactors {
                factors: codes(&[ground]),
                narrative: "x".into(),
            },
        );
        assert_eq!(rule(r), "prohibited_ground_cited");
        let r = d.refused(officer(), propose(EnforcementAction::Arrest, &[ground]));
        assert_eq!(rule(r), "prohibited_ground_cited");
    }
    // Not even when no policy version is in force.
    let mut d = ready(vacatur(), None, &[]);
    let r = d.refused(
        officer(),
        propose(EnforcementAction::Arrest, &["political_associations"]),
    );
    assert_eq!(rule(r), "prohibited_ground_cited");
}

#[test]
fn the_deciding_officer_must_be_trained_for_the_policy_in_force() {
    let mut d = ready(in_force(), None, &[]);
    let untrained = actor(UNTRAINED_OFFICER, Role::Officer);
    assert_eq!(
        rule(d.refused(untrained, propose(EnforcementAction::NoAction, &[]))),
        "officer_not_trained"
    );
    let stranger = actor(99, Role::Officer);
    assert_eq!(
        rule(d.refused(stranger, propose(EnforcementAction::NoAction, &[]))),
        "officer_not_registered"
    );
}

#[test]
fn a_departure_needs_an_independent_supervisors_approval() {
    // Mitigating factors only: guidance is "not a priority"; an arrest departs from it.
    let mut d = ready(in_force(), None, &["family_impact", "lengthy_presence"]);
    d.ok(officer(), propose(EnforcementAction::Arrest, &[]));
    let pending = d.case.proposal.clone().unwrap();
    assert_eq!(
        pending.proposed.departure.unwrap().kind,
        DepartureKind::ActionWithoutPriority
    );
    assert_eq!(
        rule(d.refused(officer(), record())),
        "departure_needs_approval"
    );
    // The officer acting as a supervisor is still the officer.
    let own = actor(OFFICER, Role::Supervisor);
    let approve = CaseCommand::ApproveDecision {
        decision: DecisionId(Uuid::from_u128(300)),
    };
    assert_eq!(
        rule(d.refused(own, approve.clone())),
        "approver_not_independent"
    );
    assert_eq!(rule(d.refused(officer(), approve.clone())), "forbidden");
    d.ok(supervisor(), approve);
    let events = d.ok(officer(), record());
    let CaseEvent::DecisionRecorded(r) = &events[0] else {
        panic!()
    };
    assert_eq!(r.approved_by, Some(person(SUPERVISOR)));
    assert!(r.departure.is_some());
}

#[test]
fn a_returned_proposal_can_be_proposed_again() {
    let mut d = ready(in_force(), None, &["family_impact"]);
    d.ok(officer(), propose(EnforcementAction::Detain, &[]));
    d.ok(
        supervisor(),
        CaseCommand::ReturnDecision {
            decision: DecisionId(Uuid::from_u128(300)),
            reason: "weigh family impact".into(),
        },
    );
    assert!(d.case.proposal.is_none());
    d.ok(
        officer(),
        propose(EnforcementAction::NoAction, &["family_impact"]),
    );
    d.ok(officer(), record());
}

#[test]
fn action_in_a_protected_area_needs_a_recorded_exception() {
    let mut d = ready(
        in_force(),
        Some(ProtectedArea::School),
        &["terrorism_or_espionage"],
    );
    assert_eq!(
        rule(d.refused(
            officer(),
            propose(EnforcementAction::Arrest, &["terrorism_or_espionage"])
        )),
        "protected_area_exception_missing"
    );
    let mut with_exception = propose(EnforcementAction::Arrest, &["terrorism_or_espionage"]);
    if let CaseCommand::ProposeDecision {
        protected_area_exception,
        ..
    } = &mut with_exception
    {
        *protected_area_exception =
            Some("imminent threat to life (national security exigency)".into());
    }
    d.ok(officer(), with_exception);
    d.ok(officer(), record());
    // Declining to act there needs no exception.
    let mut d = ready(in_force(), Some(ProtectedArea::HealthCare), &[]);
    d.ok(officer(), propose(EnforcementAction::NoAction, &[]));
}

#[test]
fn a_decision_with_no_policy_in_force_is_recorded_as_such() {
    let mut d = ready(vacatur(), None, &["firearm_or_dangerous_weapon"]);
    assert!(d.case.assessment.as_ref().unwrap().guidance.is_none());
    // Training cannot be required for a version that is not in force.
    let untrained = actor(UNTRAINED_OFFICER, Role::Officer);
    let mut cmd = propose(EnforcementAction::Arrest, &["firearm_or_dangerous_weapon"]);
    d.ok(untrained, cmd.clone());
    let events = d.ok(untrained, record());
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
    d.ok(untrained, cmd);
    d.now = in_force();
    let r = d.refused(
        untrained,
        CaseCommand::RecordDecision {
            decision: DecisionId(Uuid::from_u128(301)),
        },
    );
    assert_eq!(rule(r), "policy_changed_since_proposal");
}

#[test]
fn cited_factors_must_have_been_assessed() {
    let mut d = ready(in_force(), None, &["family_impact"]);
    let r = d.refused(
        officer(),
        propose(EnforcementAction::Arrest, &["firearm_or_dangerous_weapon"]),
    );
    assert_eq!(rule(r), "cited_factor_not_assessed");
    let r = d.refused(
        officer(),
        CaseCommand::AssessFactors {
            factors: codes(&["made_up"]),
            narrative: "x".into(),
        },
    );
    assert_eq!(rule(r), "invalid");
}

#[test]
fn a_closed_case_takes_no_more_commands() {
    let mut d = ready(in_force(), None, &[]);
    d.ok(officer(), propose(EnforcementAction::NoAction, &[]));
    let close = CaseCommand::Close {
        reason: "done".into(),
    };
    assert_eq!(rule(d.refused(officer(), close.clone())), "invalid_state");
    d.ok(officer(), record());
    d.ok(officer(), close.clone());
    assert_eq!(rule(d.refused(officer(), close)), "case_closed");
    assert_eq!(
        rule(d.refused(officer(), CaseCommand::AttestWholeRecord)),
        "case_closed"
    );
}

#[test]
fn bad_input_names_the_field() {
    let mut d = Driver::new(in_force());
    let mut enc = encounter(in_force(), None);
    enc.location = "   ".into();
    let r = d.refused(
        officer(),
        CaseCommand::Open {
            case: CaseId(Uuid::nil()),
            a_number: ANumber::parse("1234567").unwrap(),
            office: FieldOffice::Atl,
            encounter: enc,
        },
    );
    assert!(r.to_string().contains("encounter.location"), "{r}");
    let mut enc = encounter(in_force(), None);
    enc.at = in_force() + Duration::days(3);
    let r = d.refused(
        officer(),
        CaseCommand::Open {
            case: CaseId(Uuid::nil()),
            a_number: ANumber::parse("1234567").unwrap(),
            office: FieldOffice::Atl,
            encounter: enc,
        },
    );
    assert!(r.to_string().contains("encounter.at"), "{r}");
}

#[test]
fn officers_register_once_and_train_on_known_versions() {
    let policies = policies();
    let directory = directory();
    let deadlines = Deadlines::default();
    let fod = actor(50, Role::FieldOfficeDirector);
    let ctx = context(fod, in_force(), &policies, &directory, &deadlines);
    let register = OfficerCommand::Register {
        person: person(60),
        office: FieldOffice::Sea,
        role: Role::Officer,
    };
    let events = Officer::default().decide(&register, &ctx).unwrap();
    let officer = Officer::fold(&events);
    assert_eq!(
        officer.decide(&register, &ctx).unwrap_err().code(),
        "invalid_state"
    );
    let train = |version: &str, days: i64| OfficerCommand::CompleteTraining {
        policy_version: version.into(),
        module: "web-based".into(),
        completed_on: (in_force() + Duration::days(days)).date_naive(),
    };
    assert_eq!(
        officer
            .decide(&train("2099-01-01", 0), &ctx)
            .unwrap_err()
            .code(),
        "unknown_policy_version"
    );
    assert_eq!(
        officer
            .decide(&train("2021-09-30", 2), &ctx)
            .unwrap_err()
            .code(),
        "training_in_future"
    );
    let trained = officer
        .clone()
        .evolve(&officer.decide(&train("2021-09-30", 0), &ctx).unwrap()[0]);
    assert_eq!(
        trained.profile().unwrap().trained_for,
        vec!["2021-09-30".to_string()]
    );
    let requester = OfficerCommand::Register {
        person: person(61),
        office: FieldOffice::Sea,
        role: Role::Requester,
    };
    assert_eq!(
        Officer::default()
            .decide(&requester, &ctx)
            .unwrap_err()
            .code(),
        "role_not_registrable"
    );
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
    let mut d = Driver::new(in_force());
    assert_eq!(
        rule(d.refused(system(), CaseCommand::RecomputeGuidance)),
        "invalid_state",
        "not before the case is open"
    );
    d.ok(
        officer(),
        CaseCommand::Open {
            case: CaseId(Uuid::from_u128(1)),
            a_number: ANumber::parse("1234567").unwrap(),
            office: FieldOffice::Chi,
            encounter: encounter(in_force(), None),
        },
    );
    assert_eq!(
        rule(d.refused(system(), CaseCommand::RecomputeGuidance)),
        "factors_not_assessed"
    );
    // Only by the system, checked before anything else.
    let mut d = ready(in_force(), None, &["family_impact", "lengthy_presence"]);
    for who in [
        officer(),
        supervisor(),
        actor(50, Role::FieldOfficeDirector),
        actor(8, Role::IntakeClerk),
        actor(9, Role::Auditor),
    ] {
        assert_eq!(
            rule(d.refused(who, CaseCommand::RecomputeGuidance)),
            "forbidden",
            "{who:?}"
        );
    }
    // Not on a closed case.
    d.ok(officer(), propose(EnforcementAction::NoAction, &[]));
    d.ok(officer(), record());
    d.ok(
        officer(),
        CaseCommand::Close {
            reason: "done".into(),
        },
    );
    assert_eq!(
        rule(d.refused(system(), CaseCommand::RecomputeGuidance)),
        "case_closed"
    );
    assert_eq!(
        rule(d.refused(officer(), CaseCommand::RecomputeGuidance)),
        "forbidden",
        "the permission is checked first"
    );
}

#[test]
fn recomputed_guidance_after_a_record_is_attached() {
    let mut d = ready(in_force(), None, &["family_impact", "lengthy_presence"]);
    let assessed = d.case.assessment.clone().unwrap();
    let before = assessed.guidance.clone().unwrap();
    assert_eq!(before.priority, PriorityCategory::NotAPriority);
    assert!(!d.case.guidance_outdated, "just assessed");
    d.ok(
        actor(8, Role::IntakeClerk),
        CaseCommand::AttachRecord {
            record: RecordId(Uuid::from_u128(201)),
            source: RecordSource::Investigative,
            reference: "HSI report".into(),
            content_hash: ContentHash([8; 32]),
        },
    );
    assert!(
        d.case.guidance_outdated,
        "the record changed after the assessment"
    );
    let events = d.ok(system(), CaseCommand::RecomputeGuidance);
    assert!(!d.case.guidance_outdated, "recomputed");
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
    assert_eq!(d.case.assessment, Some(assessed));
    // Recomputing is not attesting: a proposal still needs the record attested again.
    assert_eq!(
        rule(d.refused(officer(), propose(EnforcementAction::NoAction, &[]))),
        "whole_record_not_attested"
    );
}

#[test]
fn recomputed_guidance_follows_the_policy_in_force() {
    // Assessed during the vacatur: no guidance. Recomputed once the guidelines apply again.
    let mut d = ready(vacatur(), None, &["firearm_or_dangerous_weapon"]);
    let assessed = d.case.assessment.clone().unwrap();
    assert_eq!(assessed.guidance, None);
    d.ok(
        officer(),
        CaseCommand::MarkSourceUnavailable {
            source: RecordSource::Administrative,
            reason: "A-file lost".into(),
        },
    );
    d.now = in_force();
    let events = d.ok(system(), CaseCommand::RecomputeGuidance);
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
        d.case.assessment,
        Some(FactorsAssessed {
            guidance: Some(guidance.clone()),
            ..assessed
        })
    );
    // And back: once the guidelines are superseded there is none again.
    d.now = Utc.with_ymd_and_hms(2025, 2, 1, 12, 0, 0).unwrap();
    let events = d.ok(system(), CaseCommand::RecomputeGuidance);
    let e = recomputed(&events);
    assert_eq!((e.policy_version.clone(), e.guidance.clone()), (None, None));
    assert_eq!(e.previous, Some(guidance));
    assert!(e.changed);
    assert_eq!(d.case.assessment.as_ref().unwrap().guidance, None);
}
