//! Property tests of the case aggregate: random command sequences from random actors.

use docket_domain::case::{CaseCommand, CaseEvent};
use docket_domain::values::{
    ANumber, CaseId, ContentHash, DecisionId, EnforcementAction, FieldOffice, RecordId,
    RecordSource, Role,
};
use proptest::prelude::*;
use uuid::Uuid;

use crate::case_rules::{codes, driver, encounter};
use crate::support::*;

const FACTORS: &[&str] = &[
    "firearm_or_dangerous_weapon",
    "serious_prior_record",
    "terrorism_or_espionage",
    "family_impact",
    "lengthy_presence",
    "advanced_or_tender_age",
    "national_origin",
    "religion",
];

fn pick_codes(mask: u8) -> Vec<docket_domain::values::Code> {
    let chosen: Vec<&str> = FACTORS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, c)| *c)
        .collect();
    codes(&chosen)
}

fn command(kind: u8, param: u8, mask: u8) -> CaseCommand {
    let decision = DecisionId(Uuid::from_u128(300 + u128::from(param % 2)));
    let source = RecordSource::ALL[param as usize % 3];
    match kind % 11 {
        0 => CaseCommand::Open {
            case: CaseId(Uuid::from_u128(1)),
            a_number: ANumber::parse("A012345678").unwrap(),
            office: FieldOffice::Nyc,
            encounter: encounter(in_force(), None),
        },
        1 => CaseCommand::AttachRecord {
            record: RecordId(Uuid::from_u128(u128::from(param))),
            source,
            reference: "ref".into(),
            content_hash: ContentHash([param; 32]),
        },
        2 => CaseCommand::MarkSourceUnavailable {
            source,
            reason: "none".into(),
        },
        3 => CaseCommand::AttestWholeRecord,
        4 => CaseCommand::AssessFactors {
            factors: pick_codes(mask),
            narrative: "n".into(),
        },
        5 => CaseCommand::ProposeDecision {
            decision,
            action: EnforcementAction::ALL[param as usize % EnforcementAction::ALL.len()],
            cited_factors: pick_codes(mask),
            reasons: "r".into(),
            protected_area_exception: None,
        },
        6 => CaseCommand::ApproveDecision { decision },
        7 => CaseCommand::ReturnDecision {
            decision,
            reason: "again".into(),
        },
        8 => CaseCommand::RecordDecision { decision },
        9 => CaseCommand::RecomputeGuidance,
        _ => CaseCommand::Close {
            reason: "done".into(),
        },
    }
}

fn actor_for(n: u8) -> docket_domain::Actor {
    match n % 7 {
        0 | 1 => actor(OFFICER, Role::Officer),
        2 => actor(UNTRAINED_OFFICER, Role::Officer),
        3 => actor(SUPERVISOR, Role::Supervisor),
        4 => actor(OFFICER, Role::Supervisor),
        5 => actor(0, Role::System),
        _ => actor(NONCITIZEN, Role::Requester),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_rule(
        vacated in any::<bool>(),
        steps in proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()), 1..60),
    ) {
        let mut d = driver(if vacated { vacatur() } else { in_force() });
        // Open first, so most sequences get somewhere.
        let _ = d.when(actor(OFFICER, Role::Officer), command(0, 0, 0)).result();
        for (who, kind, param, mask) in steps {
            // `when` asserts after every accepted command that the state is the fold of the
            // events so far; a refused command must leave the state alone.
            let before = d.state.clone();
            if d.when(actor_for(who), command(kind, param, mask)).result().is_err() {
                prop_assert_eq!(&d.state, &before);
            }
        }
        let policies = policies();
        let prohibited = |c: &docket_domain::values::Code| policies.versions().iter().any(|p| p.is_prohibited(c));
        let mut attested = false;
        let mut proposed_attested = std::collections::HashMap::new();
        // The assessment's guidance as last assessed or recomputed, once assessed.
        let mut guidance = None;
        let mut closed = false;
        for event in &d.events {
            prop_assert!(!closed, "an event after the case was closed");
            match event {
                CaseEvent::RecordAttached(_) | CaseEvent::SourceUnavailable(_) => attested = false,
                CaseEvent::WholeRecordAttested(_) => attested = true,
                CaseEvent::FactorsAssessed(a) => {
                    prop_assert!(!a.factors.iter().any(prohibited));
                    guidance = Some(a.guidance.clone());
                }
                CaseEvent::GuidanceRecomputed(r) => {
                    prop_assert_eq!(r.by.role, Role::System, "recomputed by someone else");
                    prop_assert!(guidance.is_some(), "recomputed before any assessment");
                    prop_assert_eq!(Some(&r.previous), guidance.as_ref());
                    prop_assert_eq!(r.changed, r.previous != r.guidance);
                    prop_assert_eq!(
                        r.policy_version.as_ref(),
                        r.guidance.as_ref().map(|g| &g.policy_version)
                    );
                    guidance = Some(r.guidance.clone());
                }
                CaseEvent::Closed(_) => closed = true,
                CaseEvent::DecisionProposed(p) => {
                    prop_assert!(attested, "a proposal without attestation");
                    prop_assert!(!p.cited_factors.iter().any(prohibited));
                    proposed_attested.insert(p.decision, attested);
                }
                CaseEvent::DecisionRecorded(r) => {
                    prop_assert_eq!(proposed_attested.get(&r.decision), Some(&true));
                    prop_assert!(!r.cited_factors.iter().any(prohibited), "a prohibited ground cited");
                    if r.departure.is_some_and(|x| x.needs_approval) {
                        let approver = r.approved_by;
                        prop_assert!(approver.is_some(), "a departure without approval");
                        prop_assert_ne!(approver, Some(r.officer), "an officer approved their own departure");
                    }
                    if r.policy_version.is_some() {
                        prop_assert_ne!(r.officer, person(UNTRAINED_OFFICER), "an untrained officer decided");
                    }
                }
                _ => {}
            }
        }
        if let Some(a) = &d.state.assessment {
            prop_assert_eq!(Some(&a.guidance), guidance.as_ref());
        }
    }
}
