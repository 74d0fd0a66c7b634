//! The JetStream backend: the whole log is one NATS JetStream stream, each log stream one subject.
//!
//! A commit is one message on `<prefix>.<kind>.<id>` whose payload is exactly its encoded bytes,
//! so a commit's position is the message's stream sequence. Appends carry
//! `Nats-Expected-Last-Subject-Sequence` (the stream's revision the commit links to, 0 for a new
//! stream) and `Nats-Msg-Id` (the commit's dedup id). The server checks the expected sequence
//! before the message id, so a retry whose first attempt already landed comes back as
//! *wrong last sequence*: we then read the commit that follows the expected revision on the
//! subject and compare its message id before calling it a conflict.
//!
//! Each handle caches the head (revision and hash) of the streams it has seen, so an append with
//! a current expected revision costs exactly one publish. Lookups that decide an append go to the
//! stream leader (`STREAM.MSG.GET`); reads use direct gets and ordered consumers.

mod append;
mod config;
mod connect;
mod follow;
mod read;
mod restore;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::commit::StreamLink;
use crate::{
    Appended, CommitStream, EventData, EventLog, ExpectedRevision, LogError, Metadata,
    RecordedCommit, Result, StreamId,
};

pub use config::JetStreamConfig;
pub use connect::{connect_options, redact_url};
use follow::Follow;

/// The stream name used unless configured otherwise.
pub const DEFAULT_STREAM_NAME: &str = "DOCKET_LOG";

/// The subject prefix used unless configured otherwise.
pub const DEFAULT_SUBJECT_PREFIX: &str = "docket.log";

/// How many times an append with [`ExpectedRevision::Any`] re-links to a newer head after losing
/// a race before it reports the conflict.
const ANY_CONFLICT_RETRIES: u32 = 8;

/// Messages asked for in one batched direct get.
const DIRECT_BATCH: usize = 1_000;

/// Most messages an ordered consumer of `read_all` asks for in one pull.
const READ_ALL_PULL: usize = 500;

/// Pull expiry of live subscriptions; its half is the idle heartbeat, so a dead server is
/// noticed within a few seconds.
const SUBSCRIBE_EXPIRES: Duration = Duration::from_secs(5);

/// How often the connection state is checked for losses.
const CONNECTION_POLL: Duration = Duration::from_millis(20);

/// First and largest pause between retries of a transient failure.
const BACKOFF_START: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// The log on NATS JetStream. Cheap to clone; clones share the connection and the head cache.
#[derive(Clone)]
pub struct JetStreamLog {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: jetstream::stream::Stream<()>,
    config: JetStreamConfig,
    /// Whether the server answers batched direct gets (2.11 and newer).
    batch_direct_get: bool,
    /// Latest known commit of each stream this handle has seen; never ahead of the server.
    heads: Mutex<HashMap<StreamId, StreamLink>>,
    /// Counts lost connections. Replies to requests sent before a loss never come, so appends
    /// and subscriptions waiting on one retry at once instead of waiting out their timeout.
    disconnects: Arc<watch::Sender<u64>>,
}

impl fmt::Debug for JetStreamLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JetStreamLog")
            .field("stream", &self.inner.config.stream_name)
            .field("subject_prefix", &self.inner.config.subject_prefix)
            .field("replicas", &self.inner.config.replicas)
            .finish_non_exhaustive()
    }
}

fn unavailable(context: &str, err: impl std::error::Error + Send + Sync + 'static) -> LogError {
    LogError::Unavailable {
        reason: format!("{context}: {err}"),
        source: Some(Box::new(err)),
    }
}
impl Inner {
    fn subject(&self, stream: &StreamId) -> String {
        format!(
            "{}.{}.{}",
            self.config.subject_prefix,
            stream.kind(),
            stream.id()
        )
    }

    fn cached_head(&self, stream: &StreamId) -> Option<StreamLink> {
        let heads = self.heads.lock().unwrap_or_else(PoisonError::into_inner);
        heads.get(stream).copied()
    }

    /// Records a stream's head, unless a newer one is already known.
    fn remember_head(&self, stream: &StreamId, link: StreamLink) {
        let mut heads = self.heads.lock().unwrap_or_else(PoisonError::into_inner);
        match heads.get_mut(stream) {
            Some(known) if known.revision >= link.revision => {}
            Some(known) => *known = link,
            None => {
                heads.insert(stream.clone(), link);
            }
        }
    }

    fn forget_head(&self, stream: &StreamId) {
        let mut heads = self.heads.lock().unwrap_or_else(PoisonError::into_inner);
        heads.remove(stream);
    }
}

impl EventLog for JetStreamLog {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedRevision,
        events: Vec<EventData>,
        metadata: Metadata,
    ) -> Result<Appended> {
        self.inner.append(stream, expected, events, metadata).await
    }

    async fn read_stream(&self, stream: &StreamId) -> Result<Vec<RecordedCommit>> {
        let commits = self.inner.read_subject(&self.inner.subject(stream)).await?;
        if commits.is_empty() {
            return Err(LogError::NotFound {
                what: format!("stream {stream}"),
            });
        }
        Ok(commits)
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedCommit>> {
        self.inner.read_all(after, limit).await
    }

    async fn subscribe(&self, after: u64) -> Result<CommitStream> {
        let mut follow = Follow {
            inner: self.inner.clone(),
            last: after,
            messages: None,
            failures: 0,
            disconnects: self.inner.disconnects.subscribe(),
        };
        follow.open().await?;
        Ok(futures_util::stream::unfold(follow, Follow::next).boxed())
    }

    async fn head(&self) -> Result<u64> {
        let info = self
            .inner
            .stream
            .get_info()
            .await
            .map_err(|e| unavailable("cannot read the stream's state", e))?;
        Ok(info.state.last_sequence)
    }
}
