//! The Docket event log: one totally ordered, append-only, hash-chained log of commits.
//!
//! [`EventLog`] is the interface every other crate uses. Two backends implement it and pass one
//! conformance suite (`tests/conformance/mod.rs`): [`file::FileLog`], segment files on local disk (the
//! embedded deployment), and [`jetstream::JetStreamLog`], one NATS JetStream stream (the
//! distributed deployment). [`AnyLog`] picks one at run time.
//!
//! Every commit names the previous commit of its stream by position and SHA-256, so each stream
//! is a hash chain, and the log as a whole is what the audit crate builds its Merkle tree over.

mod any;
pub mod atomic;
pub mod checkpoint;
pub mod clock;
pub mod commit;
mod error;
pub mod file;
pub mod jetstream;
pub mod records;

use std::future::Future;

pub use any::AnyLog;
pub use atomic::write_atomic;
pub use checkpoint::{AnyCheckpoints, Checkpoints};
pub use commit::{
    Appended, Commit, CommitHash, EventData, ExpectedRevision, Metadata, RecordedCommit, StreamId,
    StreamLink, MAX_COMMIT_BYTES,
};
pub use error::{LogError, Result};
pub use records::{AnyRecords, Records};

/// A live feed of commits in log order: first the catch-up from the requested position, then new
/// commits as they are acknowledged, with no gap and no duplicate in between.
pub type CommitStream = futures_util::stream::BoxStream<'static, Result<RecordedCommit>>;

/// The operations every log backend provides.
///
/// Positions are 1-based and dense; a stream's revision is the position of its latest commit
/// (0 when it has none). Reads take the position *after which* to start, so a consumer resumes
/// from the last position it processed.
pub trait EventLog: Send + Sync {
    /// Appends `events` to `stream` as one atomic commit, if the stream's revision is what
    /// `expected` says. Acknowledged only once the commit is durable.
    ///
    /// A commit whose dedup id ([`Commit::dedup_id`]) is already in the log is refused with
    /// [`LogError::Duplicate`], which carries the original position.
    fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedRevision,
        events: Vec<EventData>,
        metadata: Metadata,
    ) -> impl Future<Output = Result<Appended>> + Send;

    /// Every commit of one stream, oldest first; [`LogError::NotFound`] if it has none.
    fn read_stream(
        &self,
        stream: &StreamId,
    ) -> impl Future<Output = Result<Vec<RecordedCommit>>> + Send;

    /// Up to `limit` commits of the whole log with positions greater than `after`.
    fn read_all(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedCommit>>> + Send;

    /// Every commit with a position greater than `after`, then new commits as they come.
    fn subscribe(&self, after: u64) -> impl Future<Output = Result<CommitStream>> + Send;

    /// The position of the latest acknowledged commit (0 for an empty log).
    fn head(&self) -> impl Future<Output = Result<u64>> + Send;
}
