//! [`AuditError`]: the one error type of the checkpointer, the checkpoint store, the persisted
//! tree and receipts.

use docket_log::LogError;

use crate::note::NoteError;
use crate::tree::{Hash, TreeError};

/// What went wrong while keeping the tree, signing checkpoints or checking a receipt.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading the log or the checkpoint store failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A tree operation or a proof failed.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// A key, a note or a signature is wrong.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// Local file IO (the persisted tree hashes).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The checkpointer refuses to sign: the tree it holds is not consistent with the last
    /// checkpoint signed with its key. History was rewritten (or the store belongs to another
    /// log); a person has to look.
    #[error(
        "refusing to sign a checkpoint of size {size} (root {root}): the last signed checkpoint \
         has size {last_size} and root {last_root}, {reason}"
    )]
    Inconsistent {
        /// The size of the last signed checkpoint.
        last_size: u64,
        /// Its root.
        last_root: Hash,
        /// The size the checkpointer was about to sign.
        size: u64,
        /// The root it was about to sign.
        root: Hash,
        /// What does not agree.
        reason: String,
    },
    /// A stored checkpoint that cannot be read.
    #[error("stored checkpoint {sequence}: {reason}")]
    BadStoredCheckpoint {
        /// Its sequence number in the store.
        sequence: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A receipt that is malformed or does not verify.
    #[error("receipt: {0}")]
    Receipt(String),
    /// The checkpointer has stopped, so it can answer no more requests.
    #[error("the checkpointer has stopped: {0}")]
    Stopped(String),
}

impl AuditError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        AuditError::Io {
            context: context.into(),
            source,
        }
    }
}
