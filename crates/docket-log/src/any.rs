//! [`AnyLog`]: one of the backends, chosen at run time.

use crate::commit::{Appended, EventData, ExpectedRevision, Metadata, RecordedCommit, StreamId};
use crate::error::Result;
use crate::file::FileLog;
use crate::jetstream::JetStreamLog;
use crate::{CommitStream, EventLog};

/// Either backend behind one type, for code that picks the deployment at run time.
#[derive(Clone, Debug)]
pub enum AnyLog {
    /// Segment files on local disk.
    File(FileLog),
    /// One NATS JetStream stream.
    JetStream(JetStreamLog),
}

impl AnyLog {
    /// The reactions' checkpoints, stored with the deployment: files beside the segments, or
    /// the JetStream key-value bucket.
    pub async fn checkpoints(&self) -> Result<crate::AnyCheckpoints> {
        Ok(match self {
            AnyLog::File(l) => crate::AnyCheckpoints::File(l.checkpoints()?),
            AnyLog::JetStream(l) => crate::AnyCheckpoints::Kv(Box::new(l.checkpoints().await?)),
        })
    }

    /// The audit records (signed checkpoints), stored with the deployment: files in `audit/`
    /// inside the data directory, or the JetStream stream `DOCKET_AUDIT`.
    pub async fn audit_records(&self) -> Result<crate::AnyRecords> {
        Ok(match self {
            AnyLog::File(l) => crate::AnyRecords::File(l.audit_records()?),
            AnyLog::JetStream(l) => {
                crate::AnyRecords::JetStream(Box::new(l.audit_records().await?))
            }
        })
    }
}

impl EventLog for AnyLog {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedRevision,
        events: Vec<EventData>,
        metadata: Metadata,
    ) -> Result<Appended> {
        match self {
            AnyLog::File(l) => l.append(stream, expected, events, metadata).await,
            AnyLog::JetStream(l) => l.append(stream, expected, events, metadata).await,
        }
    }

    async fn read_stream(&self, stream: &StreamId) -> Result<Vec<RecordedCommit>> {
        match self {
            AnyLog::File(l) => l.read_stream(stream).await,
            AnyLog::JetStream(l) => l.read_stream(stream).await,
        }
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedCommit>> {
        match self {
            AnyLog::File(l) => l.read_all(after, limit).await,
            AnyLog::JetStream(l) => l.read_all(after, limit).await,
        }
    }

    async fn subscribe(&self, after: u64) -> Result<CommitStream> {
        match self {
            AnyLog::File(l) => l.subscribe(after).await,
            AnyLog::JetStream(l) => l.subscribe(after).await,
        }
    }

    async fn head(&self) -> Result<u64> {
        match self {
            AnyLog::File(l) => l.head().await,
            AnyLog::JetStream(l) => l.head().await,
        }
    }
}
