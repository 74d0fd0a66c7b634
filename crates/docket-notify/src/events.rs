//! The notification service's own log events, in a stream `notification/<id>` per notification:
//! queued, attempt failed, delivered, abandoned. They are not domain events: each has a stable
//! name and version like them, but travels as a JSON payload.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use docket_log::{EventData, StreamId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::message::Message;

/// The stream kind of notifications.
pub const STREAM_KIND: &str = "notification";

/// The stream of one notification: `notification/<id>`.
pub fn stream_of(id: Uuid) -> StreamId {
    // A hyphenated UUID is always a valid stream id (letters, digits and '-').
    match StreamId::new(format!("{STREAM_KIND}/{}", id.hyphenated())) {
        Ok(stream) => stream,
        Err(_) => unreachable!("a hyphenated uuid is a valid stream id"),
    }
}

/// The idempotency key of a notification's `notification.queued` commit.
pub fn queued_key(id: Uuid) -> String {
    format!("notification-{}", id.hyphenated())
}

/// The idempotency key of the commit recording the outcome of attempt `attempt`.
pub fn attempt_key(id: Uuid, attempt: u32) -> String {
    format!("notification-{}-attempt-{attempt}", id.hyphenated())
}

/// `notification.queued` v1: a notification was rendered and is to be delivered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// The notification, exactly as the webhook receives it (it names its cause).
    pub message: Message,
}

/// `notification.attempt_failed` v1: one delivery attempt failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptFailed {
    /// The attempt, from 1.
    pub attempt: u32,
    /// The HTTP status, when the webhook answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What went wrong.
    pub error: String,
    /// When the attempt ended.
    pub at: DateTime<Utc>,
    /// When the next attempt is due; none when this was the last (then `abandoned` follows in
    /// the same commit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// `notification.delivered` v1: the webhook accepted the notification (a 2xx answer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// The attempt that succeeded, from 1.
    pub attempt: u32,
    /// The HTTP status.
    pub status: u16,
    /// When.
    pub at: DateTime<Utc>,
}

/// `notification.abandoned` v1: every attempt failed; the notification will not be sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abandoned {
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's error.
    pub last_error: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Every event of a notification stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotificationEvent {
    /// See [`Queued`].
    Queued(Queued),
    /// See [`AttemptFailed`].
    AttemptFailed(AttemptFailed),
    /// See [`Delivered`].
    Delivered(Delivered),
    /// See [`Abandoned`].
    Abandoned(Abandoned),
}

/// Why a notification event could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Not one of the notification event types.
    #[error("unknown notification event type {name} v{version}")]
    UnknownType {
        /// The type name.
        name: String,
        /// The version.
        version: u16,
    },
    /// The payload is not the type's JSON.
    #[error("bad {name} payload: {source}")]
    Payload {
        /// The type name.
        name: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

impl NotificationEvent {
    /// Every type: stable name and current version.
    pub const TYPES: &'static [(&'static str, u16)] = &[
        ("notification.queued", 1),
        ("notification.attempt_failed", 1),
        ("notification.delivered", 1),
        ("notification.abandoned", 1),
    ];

    /// The stable type name.
    pub fn name(&self) -> &'static str {
        match self {
            NotificationEvent::Queued(_) => "notification.queued",
            NotificationEvent::AttemptFailed(_) => "notification.attempt_failed",
            NotificationEvent::Delivered(_) => "notification.delivered",
            NotificationEvent::Abandoned(_) => "notification.abandoned",
        }
    }

    /// The current version of this event's type.
    pub fn version(&self) -> u16 {
        1
    }

    /// The event as the log stores it: JSON payload, name and version beside it.
    pub fn encode(&self, id: Uuid) -> Result<EventData, EventError> {
        let name = self.name();
        let payload = match self {
            NotificationEvent::Queued(e) => serde_json::to_vec(e),
            NotificationEvent::AttemptFailed(e) => serde_json::to_vec(e),
            NotificationEvent::Delivered(e) => serde_json::to_vec(e),
            NotificationEvent::Abandoned(e) => serde_json::to_vec(e),
        }
        .map_err(|source| EventError::Payload { name, source })?;
        Ok(EventData {
            id,
            type_name: name.to_owned(),
            type_version: self.version(),
            payload: Bytes::from(payload),
        })
    }

    /// Reads an event of a notification stream.
    pub fn decode(data: &EventData) -> Result<Self, EventError> {
        fn json<T: serde::de::DeserializeOwned>(
            name: &'static str,
            bytes: &[u8],
        ) -> Result<T, EventError> {
            serde_json::from_slice(bytes).map_err(|source| EventError::Payload { name, source })
        }
        let bytes = &data.payload[..];
        match (data.type_name.as_str(), data.type_version) {
            ("notification.queued", 1) => json("notification.queued", bytes).map(Self::Queued),
            ("notification.attempt_failed", 1) => {
                json("notification.attempt_failed", bytes).map(Self::AttemptFailed)
            }
            ("notification.delivered", 1) => {
                json("notification.delivered", bytes).map(Self::Delivered)
            }
            ("notification.abandoned", 1) => {
                json("notification.abandoned", bytes).map(Self::Abandoned)
            }
            (name, version) => Err(EventError::UnknownType {
                name: name.to_owned(),
                version,
            }),
        }
    }
}
