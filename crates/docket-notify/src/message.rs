//! The notification as the webhook receives it, and how its id derives from its cause.

use chrono::{DateTime, Utc};
use docket_domain::values::{CaseId, DecisionId, PersonId, ReviewId, Role};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The UUID v5 namespace of notification ids.
pub const NOTIFICATION_NAMESPACE: Uuid = Uuid::from_u128(0x5b0e_7c1d_3f8a_4d62_9a47_d0c4_e7f1_2b93);

/// The id of the notification that `event_id` causes for `to`: UUID v5 in
/// [`NOTIFICATION_NAMESPACE`] over `<event id>/<person id>/<role code>`. The same event and
/// recipient always give the same id, which is what makes queueing idempotent across restarts.
pub fn notification_id(event_id: Uuid, to: &Recipient) -> Uuid {
    let name = format!("{}/{}/{}", event_id.hyphenated(), to.person, to.role.code());
    Uuid::new_v5(&NOTIFICATION_NAMESPACE, name.as_bytes())
}

/// What a notification is about. Stable snake_case codes (the webhook's `kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Receipt of a review request, to the requester.
    ReviewReceived,
    /// The request was acknowledged, to the requester.
    ReviewAcknowledged,
    /// The review goes first, to the requester and the reviewer of the open tier.
    ReviewPrioritised,
    /// A review was assigned, to the reviewer or Senior Reviewing Official.
    ReviewAssigned,
    /// The reviewer asks for information, to the requester.
    InformationRequested,
    /// The requester answered, to the reviewer of the open tier.
    InformationProvided,
    /// Tier 1's outcome, to the requester.
    Tier1Decided,
    /// Receipt of a tier-2 request, to the requester.
    Tier2Received,
    /// Tier 2's outcome, to the requester.
    Tier2Decided,
    /// The review was withdrawn, to the requester and the reviewer of the open tier.
    ReviewWithdrawn,
    /// A review deadline passed, to the requester and the reviewer responsible.
    DeadlineMissed,
    /// A supervisor approved a proposed decision, to the proposing officer.
    DecisionApproved,
    /// A supervisor returned a proposed decision, to the proposing officer.
    DecisionReturned,
    /// A decision departing from guidance was recorded with approval, to the officer.
    DepartureRecorded,
}

impl NotificationKind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [NotificationKind] = &[
        NotificationKind::ReviewReceived,
        NotificationKind::ReviewAcknowledged,
        NotificationKind::ReviewPrioritised,
        NotificationKind::ReviewAssigned,
        NotificationKind::InformationRequested,
        NotificationKind::InformationProvided,
        NotificationKind::Tier1Decided,
        NotificationKind::Tier2Received,
        NotificationKind::Tier2Decided,
        NotificationKind::ReviewWithdrawn,
        NotificationKind::DeadlineMissed,
        NotificationKind::DecisionApproved,
        NotificationKind::DecisionReturned,
        NotificationKind::DepartureRecorded,
    ];

    /// The stable code (the JSON `kind`).
    pub fn code(&self) -> &'static str {
        match self {
            NotificationKind::ReviewReceived => "review_received",
            NotificationKind::ReviewAcknowledged => "review_acknowledged",
            NotificationKind::ReviewPrioritised => "review_prioritised",
            NotificationKind::ReviewAssigned => "review_assigned",
            NotificationKind::InformationRequested => "information_requested",
            NotificationKind::InformationProvided => "information_provided",
            NotificationKind::Tier1Decided => "tier1_decided",
            NotificationKind::Tier2Received => "tier2_received",
            NotificationKind::Tier2Decided => "tier2_decided",
            NotificationKind::ReviewWithdrawn => "review_withdrawn",
            NotificationKind::DeadlineMissed => "deadline_missed",
            NotificationKind::DecisionApproved => "decision_approved",
            NotificationKind::DecisionReturned => "decision_returned",
            NotificationKind::DepartureRecorded => "departure_recorded",
        }
    }
}

/// Who a notification is for. Docket holds no addresses: the webhook's owner maps the person to
/// a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The person.
    pub person: PersonId,
    /// The role in which the notification concerns them.
    pub role: Role,
    /// The language the person asked notifications in, when they said (the text is English).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// The log event a notification was caused by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CausedBy {
    /// The position of its commit.
    pub position: u64,
    /// Its stream, e.g. `review/<id>`.
    pub stream: String,
    /// The event's id.
    pub event_id: Uuid,
    /// The event's type, e.g. `review.acknowledged`.
    pub event_type: String,
}

/// One notification: the JSON body POSTed to the webhook, and what `notification.queued` records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its id: the same on every redelivery (see [`notification_id`]).
    pub id: Uuid,
    /// What it is about.
    pub kind: NotificationKind,
    /// Who it is for.
    pub to: Recipient,
    /// A subject line.
    pub subject: String,
    /// The message, in English.
    pub text: String,
    /// The review concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewId>,
    /// The case concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseId>,
    /// The decision concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionId>,
    /// The event that caused it.
    pub caused_by: CausedBy,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_codes_are_the_json_values() {
        for kind in NotificationKind::ALL {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.code())
            );
        }
    }

    #[test]
    fn ids_are_stable_and_differ_by_recipient() {
        let event = Uuid::from_u128(1);
        let a = Recipient {
            person: PersonId(Uuid::from_u128(2)),
            role: Role::Requester,
            language: None,
        };
        let b = Recipient {
            role: Role::FirstTierReviewer,
            ..a.clone()
        };
        let with_language = Recipient {
            language: Some("es".into()),
            ..a.clone()
        };
        assert_eq!(notification_id(event, &a), notification_id(event, &a));
        assert_eq!(
            notification_id(event, &a),
            notification_id(event, &with_language)
        );
        assert_ne!(notification_id(event, &a), notification_id(event, &b));
        assert_ne!(
            notification_id(event, &a),
            notification_id(Uuid::from_u128(3), &a)
        );
        assert_eq!(notification_id(event, &a).get_version_num(), 5);
        // Pinned: receivers may recompute ids, so the derivation must never change.
        assert_eq!(
            notification_id(event, &a).to_string(),
            "0e5cec4e-19ef-55ae-89b9-a47dc79461dc"
        );
    }
}
