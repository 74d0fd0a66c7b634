//! Domain events as the services record them, built directly (the notification service only
//! needs the log, not valid aggregates), and appended the way the services append them.

use chrono::{DateTime, Duration, TimeZone, Utc};
use docket_domain::case::{
    CaseEvent, DecisionApproved, DecisionProposed, DecisionRecorded, DecisionReturned,
};
use docket_domain::events::DomainEvent;
use docket_domain::officer::{OfficerEvent, OfficerRegistered};
use docket_domain::policy::{Departure, DepartureKind};
use docket_domain::review::{
    Acknowledged, DeadlineKind, DeadlineMissed, InformationProvided, InformationRequested,
    Prioritised, PriorityReason, RequesterCapacity, ReviewEvent, ReviewRequested, ReviewerAssigned,
    SeniorOfficialAssigned, Tier1Decided, Tier2Decided, Tier2Requested, TierDue, Withdrawn,
};
use docket_domain::values::{
    ANumber, Actor, CaseId, DecisionId, EnforcementAction, FieldOffice, PersonId, ReviewId,
    ReviewOutcome, ReviewTier, Role,
};
use docket_log::{EventLog, ExpectedRevision, Metadata, StreamId};
use docket_notify::{notification_id, Recipient};
use uuid::Uuid;

/// A fixed point in time.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 5, 15, 0, 0).unwrap()
}

/// A person.
pub fn person(n: u128) -> PersonId {
    PersonId(Uuid::from_u128(n))
}

/// A person acting in a role.
pub fn actor(n: u128, role: Role) -> Actor {
    Actor {
        person: person(n),
        role,
    }
}

/// The System.
pub fn system() -> Actor {
    docket_runtime::system_actor()
}

/// A recipient without a language.
pub fn to(n: u128, role: Role) -> Recipient {
    Recipient {
        person: person(n),
        role,
        language: None,
    }
}

/// `review.requested` by `requester` (a requester).
pub fn requested(review: ReviewId, requester: u128, case: CaseId) -> DomainEvent {
    DomainEvent::Review(ReviewEvent::Requested(ReviewRequested {
        review,
        a_number: ANumber::parse("A012345678").unwrap(),
        capacity: RequesterCapacity::Noncitizen,
        case,
        decision: DecisionId(Uuid::from_u128(0xdec)),
        action: EnforcementAction::Arrest,
        grounds: "the officer did not weigh my family ties".into(),
        acknowledge_due: t0() + Duration::days(3),
        decision_due: t0() + Duration::days(30),
        by: actor(requester, Role::Requester),
        at: t0(),
        preferred_language: None,
    }))
}

/// `review.acknowledged` by the System.
pub fn acknowledged() -> DomainEvent {
    DomainEvent::Review(ReviewEvent::Acknowledged(Acknowledged {
        by: system(),
        at: t0() + Duration::hours(1),
    }))
}

/// `review.reviewer_assigned`.
pub fn reviewer_assigned(reviewer: u128) -> DomainEvent {
    DomainEvent::Review(ReviewEvent::ReviewerAssigned(ReviewerAssigned {
        reviewer: person(reviewer),
        by: system(),
        at: t0() + Duration::hours(2),
    }))
}

/// `review.prioritised` (detained), tier 1 now due sooner.
pub fn prioritised() -> DomainEvent {
    DomainEvent::Review(ReviewEvent::Prioritised(Prioritised {
        reason: PriorityReason::Detained,
        decision_due: Some(TierDue {
            tier: ReviewTier::Tier1,
            due: t0() + Duration::days(5),
        }),
        by: system(),
        at: t0() + Duration::hours(3),
    }))
}

/// `review.information_requested` by the tier-1 reviewer.
pub fn information_requested(reviewer: u128) -> DomainEvent {
    DomainEvent::Review(ReviewEvent::InformationRequested(InformationRequested {
        tier: ReviewTier::Tier1,
        question: "Please send the birth certificates of your children.".into(),
        by: actor(reviewer, Role::FirstTierReviewer),
        at: t0() + Duration::hours(4),
    }))
}

/// `review.information_provided` by the requester.
pub fn information_provided(requester: u128) -> DomainEvent {
    DomainEvent::Review(ReviewEvent::InformationProvided(InformationProvided {
        information: "Attached, three certificates.".into(),
        by: actor(requester, Role::Requester),
        at: t0() + Duration::hours(5),
    }))
}

/// `review.deadline_missed`.
pub fn deadline_missed(deadline: DeadlineKind) -> DomainEvent {
    DomainEvent::Review(ReviewEvent::DeadlineMissed(DeadlineMissed {
        deadline,
        due: t0() + Duration::days(5),
        by: system(),
        at: t0() + Duration::days(5) + Duration::minutes(1),
    }))
}

/// `review.tier1_decided`: reversed.
pub fn tier1_decided(reviewer: u128) -> DomainEvent {
    DomainEvent::Review(ReviewEvent::Tier1Decided(Tier1Decided {
        outcome: ReviewOutcome::Reversed,
        referred_to: None,
        reasons: "Family ties outweigh the single old conviction.".into(),
        tier2_request_closes: t0() + Duration::days(40),
        by: actor(reviewer, Role::FirstTierReviewer),
        at: t0() + Duration::days(6),
    }))
}

/// `review.tier2_requested` by the requester.
pub fn tier2_requested(requester: u128) -> DomainEvent {
    DomainEvent::Review(ReviewEvent::Tier2Requested(Tier2Requested {
        grounds: "The reversal should also cover the detainer.".into(),
        decision_due: t0() + Duration::days(60),
        by: actor(requester, Role::Requester),
        at: t0() + Duration::days(7),
    }))
}

/// `review.senior_official_assigned`.
pub fn senior_official_assigned(official: u128) -> DomainEvent {
    DomainEvent::Review(ReviewEvent::SeniorOfficialAssigned(
        SeniorOfficialAssigned {
            official: person(official),
            by: system(),
            at: t0() + Duration::days(8),
        },
    ))
}

/// `review.tier2_decided`: upheld tier 1.
pub fn tier2_decided(official: u128) -> DomainEvent {
    DomainEvent::Review(ReviewEvent::Tier2Decided(Tier2Decided {
        outcome: ReviewOutcome::Reversed,
        referred_to: None,
        reasons: "Agreed with the first tier.".into(),
        overrides_tier1: false,
        by: actor(official, Role::SeniorReviewingOfficial),
        at: t0() + Duration::days(9),
    }))
}

/// `review.withdrawn` by the requester.
pub fn withdrawn(requester: u128) -> DomainEvent {
    DomainEvent::Review(ReviewEvent::Withdrawn(Withdrawn {
        reason: Some("Resolved otherwise.".into()),
        by: actor(requester, Role::Requester),
        at: t0() + Duration::days(2),
    }))
}

/// `case.decision_proposed` by `officer`, departing from guidance.
pub fn proposed(decision: DecisionId, officer: u128) -> DomainEvent {
    DomainEvent::Case(CaseEvent::DecisionProposed(DecisionProposed {
        decision,
        action: EnforcementAction::Arrest,
        cited_factors: Vec::new(),
        reasons: "Reasons.".into(),
        protected_area_exception: None,
        policy_version: Some("2021-09-30".into()),
        guidance: None,
        departure: Some(Departure {
            kind: DepartureKind::ActionWithoutPriority,
            needs_approval: true,
        }),
        by: actor(officer, Role::Officer),
        at: t0(),
    }))
}

/// `case.decision_returned` by `supervisor`.
pub fn returned(decision: DecisionId, supervisor: u128) -> DomainEvent {
    DomainEvent::Case(CaseEvent::DecisionReturned(DecisionReturned {
        decision,
        reason: "Say why the mitigating factors do not weigh more.".into(),
        by: actor(supervisor, Role::Supervisor),
        at: t0() + Duration::hours(1),
    }))
}

/// `case.decision_approved` by `supervisor`.
pub fn approved(decision: DecisionId, supervisor: u128) -> DomainEvent {
    DomainEvent::Case(CaseEvent::DecisionApproved(DecisionApproved {
        decision,
        by: actor(supervisor, Role::Supervisor),
        at: t0() + Duration::hours(2),
    }))
}

/// `case.decision_recorded` by `officer`, with or without an approved departure.
pub fn recorded_decision(
    decision: DecisionId,
    officer: u128,
    approved_by: Option<u128>,
) -> DomainEvent {
    DomainEvent::Case(CaseEvent::DecisionRecorded(DecisionRecorded {
        decision,
        action: EnforcementAction::Arrest,
        officer: person(officer),
        approved_by: approved_by.map(person),
        policy_version: Some("2021-09-30".into()),
        guidance: None,
        departure: approved_by.map(|_| Departure {
            kind: DepartureKind::ActionWithoutPriority,
            needs_approval: true,
        }),
        cited_factors: Vec::new(),
        reasons: "Reasons.".into(),
        protected_area_exception: None,
        by: actor(officer, Role::Officer),
        at: t0() + Duration::hours(3),
    }))
}

/// `officer.registered` (concerns nobody to notify).
pub fn officer_registered(n: u128) -> DomainEvent {
    DomainEvent::Officer(OfficerEvent::Registered(OfficerRegistered {
        person: person(n),
        office: FieldOffice::Nyc,
        role: Role::Officer,
        by: actor(1, Role::FieldOfficeDirector),
        at: t0(),
    }))
}

/// Appends one event as its own commit, as a service does; returns the event's id.
pub async fn append<L: EventLog>(log: &L, stream: &str, event: &DomainEvent) -> Uuid {
    let id = Uuid::new_v4();
    let data = docket_runtime::encode_event(event, id).unwrap();
    log.append(
        &StreamId::new(stream).unwrap(),
        ExpectedRevision::Any,
        vec![data],
        Metadata {
            idempotency_key: Some(format!("test-{id}")),
            actor: Some("test".into()),
            recorded_at_micros: t0().timestamp_micros(),
            ..Metadata::default()
        },
    )
    .await
    .unwrap();
    id
}

/// A review stream name.
pub fn review_stream(review: ReviewId) -> String {
    format!("review/{review}")
}

/// Appends a review request and its acknowledgement for `requester`; returns the ids of the two
/// notifications they cause (receipt, acknowledgement).
pub async fn request_and_acknowledge<L: EventLog>(log: &L, requester: u128) -> [Uuid; 2] {
    let review = ReviewId(Uuid::new_v4());
    let case = CaseId(Uuid::new_v4());
    let stream = review_stream(review);
    let a = append(log, &stream, &requested(review, requester, case)).await;
    let b = append(log, &stream, &acknowledged()).await;
    let who = to(requester, Role::Requester);
    [notification_id(a, &who), notification_id(b, &who)]
}
