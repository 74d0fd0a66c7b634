//! The Docket notification service: tells the people an event concerns — requesters, reviewers,
//! officers — by POSTing a signed JSON message to one configured webhook, and records every step
//! (queued, attempt failed, delivered, abandoned) in the log, in a stream per notification.
//!
//! It takes no commands: it follows the log ([`run`]). A notification's id derives from the
//! event that caused it and its recipient, and it is queued with `ExpectedRevision::NoStream`, so
//! re-reading an event after a restart never queues it twice; the state of every notification
//! is rebuilt from the log at start, so none is lost. Delivery is at least once: an attempt whose
//! outcome was not recorded before the process died is made again, with the same
//! `Docket-Notification-Id` header for the receiver to drop the repeat. The webhook contract is
//! in `docs/api.md`.

mod config;
mod error;
pub mod events;
mod message;
mod metrics;
mod render;
mod service;
mod webhook;

pub use config::NotifyConfig;
pub use error::NotifyError;
pub use message::{
    notification_id, CausedBy, Message, NotificationKind, Recipient, NOTIFICATION_NAMESPACE,
};
pub use metrics::Metrics;
pub use service::{run, NOTIFY_CONSUMER};
pub use webhook::{signature, verify_signature, ID_HEADER, SIGNATURE_HEADER};
