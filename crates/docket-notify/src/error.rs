//! The notification service's one error type.

use docket_log::LogError;

/// Why the notification service stopped (or could not start).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The configuration cannot work (a bad webhook URL, zero attempts, no secret, …).
    #[error("invalid notification config: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// The log refused or failed an operation the service cannot do without.
    #[error("{context}: {source}")]
    Log {
        /// What the service was doing.
        context: &'static str,
        /// The log's error.
        #[source]
        source: LogError,
    },
    /// A commit in the log could not be read: never skipped, so that nothing is forgotten.
    #[error("cannot read the commit at position {position}: {reason}")]
    Unreadable {
        /// The commit's position.
        position: u64,
        /// What was wrong.
        reason: String,
    },
    /// The service's checkpoint could not be read or saved.
    #[error("notification checkpoint: {0}")]
    Checkpoint(String),
    /// The log's subscription ended (the log was closed under the service).
    #[error("the log subscription ended")]
    SubscriptionEnded,
}

impl NotifyError {
    pub(crate) fn log(context: &'static str, source: LogError) -> Self {
        NotifyError::Log { context, source }
    }
}
