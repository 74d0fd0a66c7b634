//! An append-only store of opaque byte records beside the log, numbered 1, 2, 3… in append
//! order: the audit crate keeps its signed checkpoints in it. Files in embedded mode
//! ([`FileRecords`], `<data dir>/audit/`), a JetStream stream in NATS mode ([`JetStreamRecords`],
//! `DOCKET_AUDIT`, deletes and purges denied). Nothing is ever rewritten or removed.

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::stream::{
    Config as StreamConfig, DiscardPolicy, LastRawMessageErrorKind, RetentionPolicy, StorageType,
};
use async_nats::jetstream::ErrorCode;
use bytes::Bytes;

use crate::error::{LogError, Result};

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

/// Records as one file per record in a directory, named by the zero-padded sequence number
/// (`00000000000000000001`). A record is written to a temporary file, synced, linked under its
/// final name (which fails if another writer took that number first: it then takes the next)
/// and the directory synced, so a crash leaves a record entirely or not at all. Other entries of
/// the directory (subdirectories, temporary files) are ignored.
#[derive(Clone, Debug)]
pub struct FileRecords {
    dir: PathBuf,
    /// The last sequence number known to exist (`None`: not looked up yet).
    last: Arc<Mutex<Option<u64>>>,
}

fn record_name(sequence: u64) -> String {
    format!("{sequence:020}")
}

impl FileRecords {
    /// Records in `dir`, created if missing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
        Ok(FileRecords {
            dir,
            last: Arc::new(Mutex::new(None)),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn exists(dir: &Path, sequence: u64) -> Result<bool> {
        let path = dir.join(record_name(sequence));
        match std::fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(LogError::io(format!("looking up {}", path.display()), e)),
        }
    }

    /// The last sequence number on disk, starting the search at `known` (which exists, or is 0).
    /// Sequence numbers are dense, so this probes forward exponentially, then bisects.
    fn find_last(dir: &Path, known: u64) -> Result<u64> {
        let mut low = known; // exists (or 0)
        let mut step = 1u64;
        let mut high = loop {
            let probe = low.saturating_add(step);
            if !Self::exists(dir, probe)? {
                break probe; // missing
            }
            low = probe;
            step = step.saturating_mul(2);
        };
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if Self::exists(dir, mid)? {
                low = mid;
            } else {
                high = mid;
            }
        }
        Ok(low)
    }

    fn last_blocking(&self) -> Result<u64> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let found = Self::find_last(&self.dir, last.unwrap_or(0))?;
        *last = Some(found);
        Ok(found)
    }

    fn append_blocking(&self, record: &[u8]) -> Result<u64> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let mut sequence = Self::find_last(&self.dir, last.unwrap_or(0))? + 1;
        let tmp = self
            .dir
            .join(format!(".record-{}.tmp", uuid::Uuid::new_v4().simple()));
        let io = |what: &str, e| LogError::io(format!("{what} {}", tmp.display()), e);
        let written = (|| {
            let mut file = std::fs::File::create(&tmp).map_err(|e| io("writing", e))?;
            file.write_all(record).map_err(|e| io("writing", e))?;
            file.sync_all().map_err(|e| io("syncing", e))?;
            loop {
                let path = self.dir.join(record_name(sequence));
                match std::fs::hard_link(&tmp, &path) {
                    Ok(()) => return Ok(sequence),
                    // Another writer took this number: take the next free one.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        sequence = Self::find_last(&self.dir, sequence)? + 1;
                    }
                    Err(e) => return Err(LogError::io(format!("linking {}", path.display()), e)),
                }
            }
        })();
        let _ = std::fs::remove_file(&tmp);
        let sequence = written?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| LogError::io(format!("syncing {}", self.dir.display()), e))?;
        *last = Some(sequence);
        Ok(sequence)
    }

    fn read_blocking(&self, after: u64, limit: usize) -> Result<Vec<(u64, Bytes)>> {
        let mut out = Vec::new();
        let mut sequence = after;
        while out.len() < limit {
            sequence = sequence.saturating_add(1);
            let path = self.dir.join(record_name(sequence));
            match std::fs::read(&path) {
                Ok(bytes) => out.push((sequence, Bytes::from(bytes))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(LogError::io(format!("reading {}", path.display()), e)),
            }
        }
        Ok(out)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&FileRecords) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| LogError::unavailable(format!("records task failed: {e}")))?
    }
}

impl Records for FileRecords {
    async fn append(&self, record: Bytes) -> Result<u64> {
        self.blocking(move |r| r.append_blocking(&record)).await
    }

    async fn read(&self, after: u64, limit: usize) -> Result<Vec<(u64, Bytes)>> {
        self.blocking(move |r| r.read_blocking(after, limit)).await
    }

    async fn last(&self) -> Result<Option<(u64, Bytes)>> {
        self.blocking(|r| {
            let last = r.last_blocking()?;
            if last == 0 {
                return Ok(None);
            }
            Ok(r.read_blocking(last - 1, 1)?.into_iter().next())
        })
        .await
    }
}

/// Where [`JetStreamRecords`] keeps its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JetStreamRecordsConfig {
    /// The stream's name.
    pub stream_name: String,
    /// The one subject of the records.
    pub subject: String,
    /// Replicas of the stream: 1, or 3 on a cluster.
    pub replicas: usize,
}

impl Default for JetStreamRecordsConfig {
    fn default() -> Self {
        JetStreamRecordsConfig {
            stream_name: DEFAULT_AUDIT_STREAM.to_owned(),
            subject: DEFAULT_AUDIT_SUBJECT.to_owned(),
            replicas: 1,
        }
    }
}

impl JetStreamRecordsConfig {
    fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            name: self.stream_name.clone(),
            description: Some("docket audit records: signed checkpoints, append-only".into()),
            subjects: vec![self.subject.clone()],
            storage: StorageType::File,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            max_messages: -1,
            max_bytes: -1,
            max_messages_per_subject: -1,
            max_age: Duration::ZERO,
            num_replicas: self.replicas,
            deny_delete: true,
            deny_purge: true,
            allow_rollup: false,
            allow_direct: true,
            ..StreamConfig::default()
        }
    }
}

/// Records as the messages of one JetStream stream with one subject, file storage, deletes and
/// purges denied: a record's sequence number is its message's stream sequence. An append
/// returns once the stream has acknowledged the message.
#[derive(Clone)]
pub struct JetStreamRecords {
    js: jetstream::Context,
    stream: jetstream::stream::Stream<()>,
    config: JetStreamRecordsConfig,
}

impl std::fmt::Debug for JetStreamRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamRecords")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn unavailable(what: &str, e: &dyn std::fmt::Display) -> LogError {
    LogError::Unavailable {
        reason: format!("{what}: {e}"),
        source: None,
    }
}

impl JetStreamRecords {
    /// Opens the stream, creating it if missing; an existing stream must keep the records'
    /// guarantees (its subject, deletes and purges denied, no limits), else
    /// [`LogError::Incompatible`].
    pub async fn open(js: &jetstream::Context, config: JetStreamRecordsConfig) -> Result<Self> {
        let wanted = config.stream_config();
        let existing = match js.get_stream(&config.stream_name).await {
            Ok(stream) => Some(stream.cached_info().config.clone()),
            Err(err) => match err.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(e)
                    if e.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    None
                }
                _ => return Err(unavailable("reading the audit stream", &err)),
            },
        };
        match existing {
            None => match js.create_stream(wanted).await {
                Ok(_) => {
                    tracing::info!(stream = %config.stream_name, "created the audit stream");
                }
                Err(err) => match err.kind() {
                    jetstream::context::CreateStreamErrorKind::JetStream(e)
                        if e.error_code() == ErrorCode::STREAM_NAME_EXIST => {}
                    _ => return Err(unavailable("creating the audit stream", &err)),
                },
            },
            Some(existing) => {
                let mut problems = Vec::new();
                if existing.subjects != vec![config.subject.clone()] {
                    problems.push(format!("its subjects are {:?}", existing.subjects));
                }
                if !existing.deny_delete || !existing.deny_purge {
                    problems.push("it allows deletes or purges".to_owned());
                }
                if existing.max_messages >= 0
                    || existing.max_bytes >= 0
                    || existing.max_age != Duration::ZERO
                    || existing.max_messages_per_subject >= 0
                {
                    problems.push("it has limits that would drop records".to_owned());
                }
                if !problems.is_empty() {
                    return Err(LogError::Incompatible {
                        reason: format!(
                            "stream {} cannot hold audit records: {}",
                            config.stream_name,
                            problems.join("; ")
                        ),
                    });
                }
            }
        }
        let stream = js
            .get_stream_no_info(&config.stream_name)
            .await
            .map_err(|e| unavailable("opening the audit stream", &e))?;
        Ok(JetStreamRecords {
            js: js.clone(),
            stream,
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &JetStreamRecordsConfig {
        &self.config
    }
}

impl Records for JetStreamRecords {
    async fn append(&self, record: Bytes) -> Result<u64> {
        let ack = self
            .js
            .publish(self.config.subject.clone(), record)
            .await
            .map_err(|e| unavailable("publishing an audit record", &e))?
            .await
            .map_err(|e| unavailable("awaiting the audit record's ack", &e))?;
        Ok(ack.sequence)
    }

    async fn read(&self, after: u64, limit: usize) -> Result<Vec<(u64, Bytes)>> {
        let last = match self.last_sequence().await? {
            Some(last) => last,
            None => return Ok(Vec::new()),
        };
        let want = usize::try_from(last.saturating_sub(after))
            .unwrap_or(usize::MAX)
            .min(limit);
        if want > DIRECT_READS {
            return self.read_ordered(after, want).await;
        }
        let mut out = Vec::new();
        let mut sequence = after;
        while out.len() < limit && sequence < last {
            sequence += 1;
            let message = self
                .stream
                .get_raw_message(sequence)
                .await
                .map_err(|e| unavailable(&format!("reading audit record {sequence}"), &e))?;
            out.push((message.sequence, message.payload));
        }
        Ok(out)
    }

    async fn last(&self) -> Result<Option<(u64, Bytes)>> {
        match self
            .stream
            .get_last_raw_message_by_subject(&self.config.subject)
            .await
        {
            Ok(message) => Ok(Some((message.sequence, message.payload))),
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(unavailable("reading the last audit record", &e)),
        }
    }
}

/// Reads of at most this many records get each by sequence; longer ones stream through an
/// ordered consumer (one round trip, not one per record).
const DIRECT_READS: usize = 8;

/// Longest wait for the next record of an ordered read.
const READ_IDLE: Duration = Duration::from_secs(5);

impl JetStreamRecords {
    /// `want` records after `after` through an ordered consumer, deleted afterwards.
    async fn read_ordered(&self, after: u64, want: usize) -> Result<Vec<(u64, Bytes)>> {
        use async_nats::jetstream::consumer::pull::OrderedConfig;
        use async_nats::jetstream::consumer::DeliverPolicy;
        use futures_util::StreamExt;
        let consumer = self
            .stream
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: after + 1,
                },
                max_batch: i64::try_from(want.min(1024)).unwrap_or(1024),
                ..OrderedConfig::default()
            })
            .await
            .map_err(|e| unavailable("reading the audit records", &e))?;
        let name = consumer.cached_info().name.clone();
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| unavailable("reading the audit records", &e))?;
        let mut out: Vec<(u64, Bytes)> = Vec::with_capacity(want);
        let result = loop {
            if out.len() == want {
                break Ok(());
            }
            let message = match tokio::time::timeout(READ_IDLE, messages.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(e))) => break Err(unavailable("reading the audit records", &e)),
                Ok(None) => break Err(LogError::unavailable("audit record read ended early")),
                Err(_) => break Err(LogError::unavailable("timed out reading audit records")),
            };
            let sequence = match message.info() {
                Ok(info) => info.stream_sequence,
                Err(e) => break Err(unavailable("reading an audit record's sequence", &e)),
            };
            // An ordered consumer that recreated itself may deliver some records again.
            if sequence > out.last().map_or(after, |(s, _)| *s) {
                out.push((sequence, message.message.payload));
            }
        };
        drop(messages);
        let (js, stream) = (self.js.clone(), self.config.stream_name.clone());
        tokio::spawn(async move {
            let _ = js.delete_consumer_from_stream(&name, &stream).await;
        });
        result.map(|()| out)
    }

    async fn last_sequence(&self) -> Result<Option<u64>> {
        let stream = self
            .js
            .get_stream(&self.config.stream_name)
            .await
            .map_err(|e| unavailable("reading the audit stream", &e))?;
        let last = stream.cached_info().state.last_sequence;
        Ok((last > 0).then_some(last))
    }
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
