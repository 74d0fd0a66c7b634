//! Golden files for both encodings of every event type, the upcast of an old version, and the
//! events catalogue in `docs/events.md`. Regenerate deliberately with `DOCKET_BLESS=1`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use chrono::{NaiveDate, TimeZone, Utc};
use docket_domain::case::*;
use docket_domain::events::{DomainEvent, Format};
use docket_domain::officer::*;
use docket_domain::policy::{Departure, DepartureKind, Guidance};
use docket_domain::representation::*;
use docket_domain::review::*;
use docket_domain::values::*;
use docket_domain::CommandKind;
use uuid::Uuid;

use crate::support::{actor, person};

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/events")
        .join(name)
}

fn check(name: &str, actual: &[u8]) {
    let path = golden(name);
    if std::env::var_os("DOCKET_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (DOCKET_BLESS=1 creates it)", path.display()));
    assert!(
        expected == actual,
        "{name} changed: event encodings are pinned; a change needs a new event version, an upcast, and DOCKET_BLESS=1"
    );
}

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 5, 15, 30, 0).unwrap()
}

fn code(c: &str) -> Code {
    Code::parse("factor", c).unwrap()
}

fn guidance() -> Guidance {
    Guidance {
        policy_version: "2021-09-30".into(),
        priority: PriorityCategory::PublicSafety,
        aggravating: vec![code("firearm_or_dangerous_weapon")],
        mitigating: vec![code("family_impact")],
        reasons: vec!["aggravating factors outweigh mitigating factors".into()],
    }
}

/// One sample of every event type of the case and officer aggregates.
fn case_and_officer_samples() -> Vec<DomainEvent> {
    let by = actor(1, Role::Officer);
    let decision = DecisionId(Uuid::from_u128(300));
    let proposed = DecisionProposed {
        decision,
        action: EnforcementAction::Arrest,
        cited_factors: vec![code("firearm_or_dangerous_weapon")],
        reasons: "public safety".into(),
        protected_area_exception: None,
        policy_version: Some("2021-09-30".into()),
        guidance: Some(guidance()),
        departure: Some(Departure {
            kind: DepartureKind::ActionWithoutPriority,
            needs_approval: true,
        }),
        by,
        at: at(),
    };
    let case_events = vec![
        CaseEvent::Opened(CaseOpened {
            case: CaseId(Uuid::from_u128(100)),
            a_number: ANumber::parse("A012345678").unwrap(),
            office: FieldOffice::Nyc,
            encounter: Encounter {
                at: at(),
                location: "Queens, New York".into(),
                place: EncounterPlace::Interior,
                manner_of_entry: MannerOfEntry::EnteredUnlawfully,
                entry_date: NaiveDate::from_ymd_opt(2021, 2, 1),
                protected_area: Some(ProtectedArea::School),
            },
            by,
            at: at(),
        }),
        CaseEvent::RecordAttached(RecordAttached {
            record: RecordId(Uuid::from_u128(200)),
            source: RecordSource::Criminal,
            reference: "NCIC 2024-000123".into(),
            content_hash: ContentHash([0xab; 32]),
            by,
            at: at(),
        }),
        CaseEvent::SourceUnavailable(SourceUnavailable {
            source: RecordSource::Investigative,
            reason: "no investigative file".into(),
            by,
            at: at(),
        }),
        CaseEvent::WholeRecordAttested(WholeRecordAttested {
            by,
            records: vec![RecordId(Uuid::from_u128(200))],
            unavailable: vec![RecordSource::Investigative],
            at: at(),
        }),
        CaseEvent::FactorsAssessed(FactorsAssessed {
            factors: vec![code("firearm_or_dangerous_weapon"), code("family_impact")],
            narrative: "reviewed the whole record".into(),
            guidance: Some(guidance()),
            by,
            at: at(),
        }),
        CaseEvent::DecisionProposed(proposed.clone()),
        CaseEvent::DecisionApproved(DecisionApproved {
            decision,
            by: actor(3, Role::Supervisor),
            at: at(),
        }),
        CaseEvent::DecisionReturned(DecisionReturned {
            decision,
            reason: "weigh the family impact".into(),
            by: actor(3, Role::Supervisor),
            at: at(),
        }),
        CaseEvent::DecisionRecorded(DecisionRecorded {
            decision,
            action: proposed.action,
            officer: person(1),
            approved_by: Some(person(3)),
            policy_version: proposed.policy_version.clone(),
            guidance: proposed.guidance.clone(),
            departure: proposed.departure,
            cited_factors: proposed.cited_factors.clone(),
            reasons: proposed.reasons.clone(),
            protected_area_exception: Some("exigent circumstances".into()),
            by,
            at: at(),
        }),
        CaseEvent::Closed(CaseClosed {
            reason: "decided".into(),
            by,
            at: at(),
        }),
        CaseEvent::GuidanceRecomputed(GuidanceRecomputed {
            policy_version: Some("2021-09-30".into()),
            guidance: Some(guidance()),
            previous: Some(Guidance {
                policy_version: "2021-09-30".into(),
                priority: PriorityCategory::NotAPriority,
                aggravating: vec![],
                mitigating: vec![code("family_impact")],
                reasons: vec!["no priority indicated".into()],
            }),
            changed: true,
            records: vec![
                RecordId(Uuid::from_u128(200)),
                RecordId(Uuid::from_u128(201)),
            ],
            unavailable: vec![RecordSource::Investigative],
            by: actor(0, Role::System),
            at: at(),
        }),
    ];
    let officer_events = vec![
        OfficerEvent::Registered(OfficerRegistered {
            person: person(1),
            office: FieldOffice::Nyc,
            role: Role::Officer,
            by: actor(50, Role::FieldOfficeDirector),
            at: at(),
        }),
        OfficerEvent::TrainingCompleted(TrainingCompleted {
            policy_version: "2021-09-30".into(),
            module: "web-based".into(),
            completed_on: NaiveDate::from_ymd_opt(2021, 11, 20).unwrap(),
            by: actor(50, Role::FieldOfficeDirector),
            at: at(),
        }),
    ];
    case_events
        .into_iter()
        .map(DomainEvent::Case)
        .chain(officer_events.into_iter().map(DomainEvent::Officer))
        .collect()
}

/// One sample of every event type.
pub fn samples() -> Vec<DomainEvent> {
    let mut all = case_and_officer_samples();
    all.extend(review_and_representation_samples());
    all
}

#[test]
fn every_event_type_has_a_sample() {
    let sampled: BTreeSet<&str> = samples().iter().map(|e| e.name()).collect();
    let declared: BTreeSet<&str> = DomainEvent::types().iter().map(|(n, _)| *n).collect();
    assert_eq!(sampled, declared);
}

#[test]
fn both_encodings_of_every_event_are_pinned_and_round_trip() {
    for event in samples() {
        let stem = format!("{}.v{}", event.name(), event.version());
        for (format, ext) in [(Format::Postcard, "postcard"), (Format::Json, "json")] {
            let mut bytes = event.encode(format).unwrap();
            if format == Format::Json {
                // Pretty JSON makes the golden file readable and its diffs reviewable.
                let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                bytes = serde_json::to_vec_pretty(&value).unwrap();
            }
            check(&format!("{stem}.{ext}"), &bytes);
            let stored = std::fs::read(golden(&format!("{stem}.{ext}"))).unwrap();
            let decoded =
                DomainEvent::decode(event.name(), event.version(), &stored, format).unwrap();
            assert_eq!(decoded, event, "{stem}.{ext} decodes to the sample");
        }
    }
}

#[test]
fn unknown_types_versions_and_garbage_are_errors_not_panics() {
    let e = &samples()[0];
    let bytes = e.encode(Format::Postcard).unwrap();
    assert!(DomainEvent::decode("case.exploded", 1, &bytes, Format::Postcard).is_err());
    assert!(DomainEvent::decode(e.name(), e.version() + 1, &bytes, Format::Postcard).is_err());
    assert!(DomainEvent::decode(
        e.name(),
        e.version(),
        &bytes[..bytes.len() / 2],
        Format::Postcard
    )
    .is_err());
    assert!(DomainEvent::decode(e.name(), e.version(), b"{\"nope\":1}", Format::Json).is_err());
    assert!(DomainEvent::decode(e.name(), 0, &bytes, Format::Postcard).is_err());
}

#[test]
fn the_catalogue_documents_every_command_and_event() {
    let doc_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/events.md");
    let doc = std::fs::read_to_string(&doc_path).unwrap();
    for command in CommandKind::ALL {
        assert!(
            doc.contains(&format!("`{}`", command.name())),
            "docs/events.md lacks command `{command}`"
        );
    }
    for (name, version) in DomainEvent::types() {
        assert!(
            doc.contains(&format!("`{name}` v{version}")),
            "docs/events.md lacks event `{name}` v{version}"
        );
    }
}

/// One sample of every event type of the review and representation aggregates.
fn review_and_representation_samples() -> Vec<DomainEvent> {
    let requester = actor(7, Role::Requester);
    let reviewer = actor(4, Role::FirstTierReviewer);
    let sro = actor(5, Role::SeniorReviewingOfficial);
    let system = actor(0, Role::System);
    let later = |days| at() + chrono::Duration::days(days);
    let review = vec![
        ReviewEvent::Requested(requested_sample(Some("es".into()))),
        ReviewEvent::Acknowledged(Acknowledged {
            by: system,
            at: at(),
        }),
        ReviewEvent::Prioritised(Prioritised {
            reason: PriorityReason::Detained,
            decision_due: Some(TierDue {
                tier: ReviewTier::Tier1,
                due: later(3),
            }),
            by: reviewer,
            at: at(),
        }),
        ReviewEvent::ReviewerAssigned(ReviewerAssigned {
            reviewer: person(4),
            by: system,
            at: at(),
        }),
        ReviewEvent::InformationRequested(InformationRequested {
            tier: ReviewTier::Tier1,
            question: "please provide the release paperwork".into(),
            by: reviewer,
            at: at(),
        }),
        ReviewEvent::InformationProvided(InformationProvided {
            information: "attached as exhibit B".into(),
            by: requester,
            at: at(),
        }),
        ReviewEvent::Tier1Decided(Tier1Decided {
            outcome: ReviewOutcome::Referred,
            referred_to: Some(ReferralTarget::DetentionOmbudsman),
            reasons: "conditions of detention".into(),
            tier2_request_closes: later(30),
            by: reviewer,
            at: at(),
        }),
        ReviewEvent::Tier2Requested(Tier2Requested {
            grounds: "the arrest itself was wrong".into(),
            decision_due: later(30),
            by: requester,
            at: at(),
        }),
        ReviewEvent::SeniorOfficialAssigned(SeniorOfficialAssigned {
            official: person(5),
            by: sro,
            at: at(),
        }),
        ReviewEvent::Tier2Decided(Tier2Decided {
            outcome: ReviewOutcome::Reversed,
            referred_to: None,
            reasons: "not a priority; release".into(),
            overrides_tier1: true,
            by: sro,
            at: at(),
        }),
        ReviewEvent::Withdrawn(Withdrawn {
            reason: Some("resolved".into()),
            by: requester,
            at: at(),
        }),
        ReviewEvent::DeadlineMissed(DeadlineMissed {
            deadline: DeadlineKind::Tier1Decision,
            due: later(14),
            by: system,
            at: later(15),
        }),
    ];
    let representation = vec![
        RepresentationEvent::G28Recorded(G28Recorded {
            a_number: ANumber::parse("A012345678").unwrap(),
            representative: person(6),
            capacity: RepresentativeCapacity::Attorney,
            signed_on: NaiveDate::from_ymd_opt(2024, 2, 1).unwrap(),
            by: actor(8, Role::IntakeClerk),
            at: at(),
        }),
        RepresentationEvent::G28Withdrawn(G28Withdrawn {
            a_number: ANumber::parse("A012345678").unwrap(),
            representative: person(6),
            reason: "representation ended".into(),
            by: actor(8, Role::IntakeClerk),
            at: at(),
        }),
    ];
    review
        .into_iter()
        .map(DomainEvent::Review)
        .chain(representation.into_iter().map(DomainEvent::Representation))
        .collect()
}

fn requested_sample(preferred_language: Option<String>) -> ReviewRequested {
    ReviewRequested {
        review: ReviewId(Uuid::from_u128(400)),
        a_number: ANumber::parse("A012345678").unwrap(),
        capacity: RequesterCapacity::Representative,
        case: CaseId(Uuid::from_u128(100)),
        decision: DecisionId(Uuid::from_u128(300)),
        action: EnforcementAction::Detain,
        grounds: "long-time resident, primary caregiver".into(),
        acknowledge_due: at() + chrono::Duration::days(1),
        decision_due: at() + chrono::Duration::days(14),
        by: actor(6, Role::Requester),
        at: at(),
        preferred_language,
    }
}

#[test]
fn review_requested_v1_bytes_are_upcast_to_v2() {
    // The v1 golden files were written by the v1 code: the same fields, no preferred_language.
    let expected = DomainEvent::Review(ReviewEvent::Requested(requested_sample(None)));
    if std::env::var_os("DOCKET_BLESS").is_some()
        && !golden("review.requested.v1.postcard").exists()
    {
        // v1 is v2 without its last field: postcard writes `None` as one trailing 0 byte.
        let v2 = expected.encode(Format::Postcard).unwrap();
        assert_eq!(v2.last(), Some(&0));
        std::fs::write(golden("review.requested.v1.postcard"), &v2[..v2.len() - 1]).unwrap();
        let mut json: serde_json::Value =
            serde_json::from_slice(&expected.encode(Format::Json).unwrap()).unwrap();
        json.as_object_mut().unwrap().remove("preferred_language");
        std::fs::write(
            golden("review.requested.v1.json"),
            serde_json::to_vec_pretty(&json).unwrap(),
        )
        .unwrap();
    }
    for (format, ext) in [(Format::Postcard, "postcard"), (Format::Json, "json")] {
        let old = std::fs::read(golden(&format!("review.requested.v1.{ext}"))).unwrap();
        let read = DomainEvent::decode("review.requested", 1, &old, format).unwrap();
        assert_eq!(
            read, expected,
            "v1 {ext} reads as v2 with no preferred language"
        );
        // Read as v2, the same bytes are not a valid v2 payload in postcard: the upcast matters.
        if format == Format::Postcard {
            assert!(DomainEvent::decode("review.requested", 2, &old, format).is_err());
        }
    }
}
