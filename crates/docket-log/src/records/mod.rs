//! An append-only store of opaque byte records beside the log, numbered 1, 2, 3… in append
//! order: the audit crate keeps its signed checkpoints in it. Segment files in embedded mode
//! ([`FileRecords`], `<data dir>/audit/records-*.seg`), a JetStream stream in NATS mode
//! ([`JetStreamRecords`], `DOCKET_AUDIT`, deletes and purges denied). Nothing is ever rewritten
//! or removed.

mod file;
mod jetstream;
mod migrate;
mod segment;

use std::future::Future;

use bytes::Bytes;

use crate::error::Result;

pub use file::{FileRecords, DEFAULT_RECORD_SEGMENT_BYTES, MAX_RECORD_BYTES};
pub use jetstream::{JetStreamRecords, JetStreamRecordsConfig};

/// The JetStream stream holding the audit records unless configured otherwise.
pub const DEFAULT_AUDIT_STREAM: &str = "DOCKET_AUDIT";

/// The subject of the audit records (signed checkpoints) unless configured otherwise.
pub const DEFAULT_AUDIT_SUBJECT: &str = "docket.audit.checkpoints";

/// An append-only sequence of opaque records, numbered densely from 1.
pub trait Records: Send + Sync {
    /// Appends a record durably and returns its sequence number (1-based).
    fn append(&self, record: Bytes) -> impl Future<Output = Result<u64>> + Send;

    /// Up to `limit` records with sequence numbers greater than `after`, in order.
    fn read(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(u64, Bytes)>>> + Send;

    /// The latest record with its sequence number, or `None` while there is none.
    fn last(&self) -> impl Future<Output = Result<Option<(u64, Bytes)>>> + Send;
}

/// Either store, chosen with the log's backend.
#[derive(Clone, Debug)]
pub enum AnyRecords {
    /// Files in a directory.
    File(FileRecords),
    /// A JetStream stream.
    JetStream(Box<JetStreamRecords>),
}

impl Records for AnyRecords {
    async fn append(&self, record: Bytes) -> Result<u64> {
        match self {
            AnyRecords::File(r) => r.append(record).await,
            AnyRecords::JetStream(r) => r.append(record).await,
        }
    }

    async fn read(&self, after: u64, limit: usize) -> Result<Vec<(u64, Bytes)>> {
        match self {
            AnyRecords::File(r) => r.read(after, limit).await,
            AnyRecords::JetStream(r) => r.read(after, limit).await,
        }
    }

    async fn last(&self) -> Result<Option<(u64, Bytes)>> {
        match self {
            AnyRecords::File(r) => r.last().await,
            AnyRecords::JetStream(r) => r.last().await,
        }
    }
}
