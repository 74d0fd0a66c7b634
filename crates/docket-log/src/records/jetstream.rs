//! [`JetStreamRecords`]: the audit records as the messages of one JetStream stream (NATS mode,
//! `DOCKET_AUDIT`), deletes and purges denied.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::stream::{
    Config as StreamConfig, DiscardPolicy, LastRawMessageErrorKind, RetentionPolicy, StorageType,
};
use async_nats::jetstream::ErrorCode;
use bytes::Bytes;

use super::{Records, DEFAULT_AUDIT_STREAM, DEFAULT_AUDIT_SUBJECT};
use crate::error::{LogError, Result};

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
