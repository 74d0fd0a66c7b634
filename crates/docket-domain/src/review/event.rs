//! The review aggregate's events, their stable names and versions, and the upcast of
//! `review.requested` version 1 that old logs hold.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DeadlineKind, PriorityReason, RequesterCapacity};
use crate::codec::{event_enum, from_bytes, CodecError, Format, Upcast};
use crate::values::{
    ANumber, Actor, CaseId, DecisionId, EnforcementAction, PersonId, ReferralTarget, ReviewId,
    ReviewOutcome, ReviewTier,
};

/// `review.requested` (version 2): review of an enforcement action was asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewRequested {
    /// The review.
    pub review: ReviewId,
    /// The noncitizen's A-number.
    pub a_number: ANumber,
    /// For themself, or as a representative.
    pub capacity: RequesterCapacity,
    /// The case.
    pub case: CaseId,
    /// The decision under review.
    pub decision: DecisionId,
    /// The enforcement action under review.
    pub action: EnforcementAction,
    /// The requester's grounds.
    pub grounds: String,
    /// When acknowledgement is due.
    pub acknowledge_due: DateTime<Utc>,
    /// When the tier-1 decision is due (before any prioritisation).
    pub decision_due: DateTime<Utc>,
    /// The requester.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
    /// Language for notifications. New in version 2; last, because postcard is positional.
    pub preferred_language: Option<String>,
}

/// `review.requested` version 1, as old logs hold it: no `preferred_language`. Read-only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ReviewRequestedV1 {
    review: ReviewId,
    a_number: ANumber,
    capacity: RequesterCapacity,
    case: CaseId,
    decision: DecisionId,
    action: EnforcementAction,
    grounds: String,
    acknowledge_due: DateTime<Utc>,
    decision_due: DateTime<Utc>,
    by: Actor,
    at: DateTime<Utc>,
}

impl From<ReviewRequestedV1> for ReviewRequested {
    fn from(v1: ReviewRequestedV1) -> Self {
        ReviewRequested {
            review: v1.review,
            a_number: v1.a_number,
            capacity: v1.capacity,
            case: v1.case,
            decision: v1.decision,
            action: v1.action,
            grounds: v1.grounds,
            acknowledge_due: v1.acknowledge_due,
            decision_due: v1.decision_due,
            by: v1.by,
            at: v1.at,
            preferred_language: None,
        }
    }
}

/// `review.acknowledged`: receipt of the request was acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledged {
    /// Who acknowledged.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// A tier's decision deadline as (re)computed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierDue {
    /// The tier.
    pub tier: ReviewTier,
    /// When its decision is due.
    pub due: DateTime<Utc>,
}

/// `review.prioritised`: the review goes first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prioritised {
    /// Why.
    pub reason: PriorityReason,
    /// The open tier's decision deadline, recomputed; `None` when no tier is open.
    pub decision_due: Option<TierDue>,
    /// Who.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.reviewer_assigned`: the tier-1 reviewer was assigned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewerAssigned {
    /// The reviewer.
    pub reviewer: PersonId,
    /// Who assigned them.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.information_requested`: the reviewer asked the requester for more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InformationRequested {
    /// The tier asking.
    pub tier: ReviewTier,
    /// What is asked.
    pub question: String,
    /// Who asked.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.information_provided`: the requester answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InformationProvided {
    /// The answer.
    pub information: String,
    /// Who answered.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.tier1_decided`: the field office decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier1Decided {
    /// The outcome.
    pub outcome: ReviewOutcome,
    /// Where it was referred, for [`ReviewOutcome::Referred`].
    pub referred_to: Option<ReferralTarget>,
    /// Why.
    pub reasons: String,
    /// When the window to ask for tier 2 closes.
    pub tier2_request_closes: DateTime<Utc>,
    /// The reviewer.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.tier2_requested`: the requester asked for tier 2.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier2Requested {
    /// Why tier 1 got it wrong.
    pub grounds: String,
    /// When the tier-2 decision is due.
    pub decision_due: DateTime<Utc>,
    /// The requester.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.senior_official_assigned`: the Senior Reviewing Official for tier 2 was assigned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeniorOfficialAssigned {
    /// The official.
    pub official: PersonId,
    /// Who assigned them.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.tier2_decided`: the Senior Reviewing Official decided; the review is closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier2Decided {
    /// The outcome.
    pub outcome: ReviewOutcome,
    /// Where it was referred, for [`ReviewOutcome::Referred`].
    pub referred_to: Option<ReferralTarget>,
    /// Why.
    pub reasons: String,
    /// True if the outcome (or referral) differs from tier 1's: for the override rate.
    pub overrides_tier1: bool,
    /// The official.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.withdrawn`: the requester withdrew; the review is closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Withdrawn {
    /// Why, if they said.
    pub reason: Option<String>,
    /// The requester.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `review.deadline_missed`: a deadline passed with its step not done.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineMissed {
    /// Which deadline.
    pub deadline: DeadlineKind,
    /// When it was due.
    pub due: DateTime<Utc>,
    /// The System.
    pub by: Actor,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// Events of the review aggregate.
    ReviewEvent {
        /// See [`ReviewRequested`]. Version 1 lacked `preferred_language`.
        Requested(ReviewRequested) = "review.requested" v 2,
        /// See [`Acknowledged`].
        Acknowledged(Acknowledged) = "review.acknowledged" v 1,
        /// See [`Prioritised`].
        Prioritised(Prioritised) = "review.prioritised" v 1,
        /// See [`ReviewerAssigned`].
        ReviewerAssigned(ReviewerAssigned) = "review.reviewer_assigned" v 1,
        /// See [`InformationRequested`].
        InformationRequested(InformationRequested) = "review.information_requested" v 1,
        /// See [`InformationProvided`].
        InformationProvided(InformationProvided) = "review.information_provided" v 1,
        /// See [`Tier1Decided`].
        Tier1Decided(Tier1Decided) = "review.tier1_decided" v 1,
        /// See [`Tier2Requested`].
        Tier2Requested(Tier2Requested) = "review.tier2_requested" v 1,
        /// See [`SeniorOfficialAssigned`].
        SeniorOfficialAssigned(SeniorOfficialAssigned) = "review.senior_official_assigned" v 1,
        /// See [`Tier2Decided`].
        Tier2Decided(Tier2Decided) = "review.tier2_decided" v 1,
        /// See [`Withdrawn`].
        Withdrawn(Withdrawn) = "review.withdrawn" v 1,
        /// See [`DeadlineMissed`].
        DeadlineMissed(DeadlineMissed) = "review.deadline_missed" v 1,
    }
}

impl Upcast for ReviewEvent {
    fn upcast(name: &str, version: u16, bytes: &[u8], format: Format) -> Result<Self, CodecError> {
        match (name, version) {
            ("review.requested", 1) => {
                from_bytes::<ReviewRequestedV1>(name, version, bytes, format)
                    .map(|v1| ReviewEvent::Requested(v1.into()))
            }
            _ => Err(CodecError::UnknownVersion {
                name: name.to_owned(),
                version,
                current: 0,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::codec::to_bytes;
    use crate::values::{PersonId, Role};

    /// A `review.requested` as `decide` records it for a noncitizen asking at 09:00 on
    /// Wednesday 13 March 2024, with `preferred_language`.
    fn requested_v2(preferred_language: Option<&str>) -> ReviewRequested {
        let at = Utc.with_ymd_and_hms(2024, 3, 13, 9, 0, 0).unwrap();
        ReviewRequested {
            review: ReviewId(uuid::Uuid::from_u128(1)),
            a_number: ANumber::parse("A012345678").unwrap(),
            capacity: RequesterCapacity::Noncitizen,
            case: CaseId(uuid::Uuid::from_u128(200)),
            decision: DecisionId(uuid::Uuid::from_u128(100)),
            action: EnforcementAction::Detain,
            grounds: "I have lived here for twenty years and care for my mother".into(),
            acknowledge_due: at + chrono::Duration::days(1),
            decision_due: at + chrono::Duration::days(14),
            by: Actor {
                person: PersonId(uuid::Uuid::from_u128(10)),
                role: Role::Requester,
            },
            at,
            preferred_language: preferred_language.map(str::to_owned),
        }
    }

    fn as_v1(e: &ReviewRequested) -> ReviewRequestedV1 {
        ReviewRequestedV1 {
            review: e.review,
            a_number: e.a_number,
            capacity: e.capacity,
            case: e.case,
            decision: e.decision,
            action: e.action,
            grounds: e.grounds.clone(),
            acknowledge_due: e.acknowledge_due,
            decision_due: e.decision_due,
            by: e.by,
            at: e.at,
        }
    }

    #[test]
    fn review_requested_v1_is_upcast_to_v2() {
        assert!(ReviewEvent::TYPES.contains(&("review.requested", 2)));
        let v2 = requested_v2(None);
        let v1 = as_v1(&v2);
        for format in [Format::Postcard, Format::Json] {
            let old = to_bytes("review.requested", &v1, format).unwrap();
            // Version 2 cannot read version 1 bytes by itself (postcard: one byte short) …
            if format == Format::Postcard {
                assert!(
                    from_bytes::<ReviewRequested>("review.requested", 1, &old, format).is_err()
                );
            }
            // … the upcast does, with no preferred language.
            let read = ReviewEvent::decode("review.requested", 1, &old, format).unwrap();
            assert_eq!(read, Some(ReviewEvent::Requested(v2.clone())), "{format:?}");
        }
        // The layouts differ exactly by the new trailing field.
        let old = postcard::to_stdvec(&v1).unwrap();
        let new = ReviewEvent::Requested(v2).encode(Format::Postcard).unwrap();
        assert_eq!(new[..old.len()], old[..]);
        assert_eq!(
            new[old.len()..],
            [0u8],
            "postcard writes None as one zero byte"
        );
        let with_language = ReviewEvent::Requested(requested_v2(Some("pt-BR")));
        let bytes = with_language.encode(Format::Postcard).unwrap();
        assert_eq!(
            ReviewEvent::decode("review.requested", 2, &bytes, Format::Postcard).unwrap(),
            Some(with_language)
        );
    }
}
