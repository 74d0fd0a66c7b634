//! The one error type of the event log, with variants callers can match on.

use crate::commit::ExpectedRevision;

/// What went wrong with a log operation.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The stream's revision was not the one the append expected.
    #[error("conflict on stream {stream}: expected revision {expected}, actual revision {actual}")]
    Conflict {
        /// The stream appended to.
        stream: String,
        /// What the append expected.
        expected: ExpectedRevision,
        /// The stream's actual revision (0: the stream has no commits).
        actual: u64,
    },
    /// A commit with the same deduplication id is already in the log.
    #[error("duplicate commit: already in the log at position {position}")]
    Duplicate {
        /// Position of the original commit.
        position: u64,
    },
    /// The stream or position asked for does not exist.
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// Stored bytes failed their checksum or could not be decoded.
    #[error("corrupt commit at position {position}: {reason}")]
    Corrupt {
        /// Position of the first bad commit.
        position: u64,
        /// What was wrong with it.
        reason: String,
    },
    /// The encoded commit exceeds the log's size limit.
    #[error("commit too large: {size} bytes encoded, the limit is {limit} bytes")]
    TooLarge {
        /// Encoded size of the refused commit.
        size: usize,
        /// The limit ([`crate::MAX_COMMIT_BYTES`]).
        limit: usize,
    },
    /// The request itself is malformed (for example, no events).
    #[error("invalid append: {reason}")]
    Invalid {
        /// What was wrong.
        reason: String,
    },
    /// The server does not meet Docket's requirements.
    #[error("incompatible server: {reason}")]
    Incompatible {
        /// What is missing.
        reason: String,
    },
    /// The backend cannot serve right now (IO error, server down, log closed); retry later.
    #[error("log unavailable: {reason}")]
    Unavailable {
        /// What failed.
        reason: String,
        /// The underlying error, where there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl LogError {
    /// An [`LogError::Unavailable`] caused by an IO error.
    pub(crate) fn io(context: impl Into<String>, err: std::io::Error) -> Self {
        LogError::Unavailable {
            reason: format!("{}: {err}", context.into()),
            source: Some(Box::new(err)),
        }
    }

    /// An [`LogError::Unavailable`] with a reason only.
    pub(crate) fn unavailable(reason: impl Into<String>) -> Self {
        LogError::Unavailable {
            reason: reason.into(),
            source: None,
        }
    }

    /// True when retrying the same append (same idempotency key) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, LogError::Unavailable { .. })
    }
}

/// Result of a log operation.
pub type Result<T, E = LogError> = std::result::Result<T, E>;
