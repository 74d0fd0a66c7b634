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

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_nats::header::{
    self, HeaderMap, NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_ID, NATS_SEQUENCE,
};
use async_nats::jetstream::consumer::pull::{Ordered, OrderedConfig};
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{
    Config as StreamConfig, DiscardPolicy, LastRawMessageErrorKind, RetentionPolicy, StorageType,
};
use async_nats::jetstream::{self, ErrorCode};
use async_nats::StatusCode;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::watch;

use crate::commit::{self, Commit, StreamLink};
use crate::{
    Appended, CommitHash, CommitStream, EventData, EventLog, ExpectedRevision, LogError, Metadata,
    RecordedCommit, Result, StreamId,
};

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

/// Settings of the JetStream backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JetStreamConfig {
    /// Name of the JetStream stream that holds the log.
    pub stream_name: String,
    /// Subject prefix; a log stream `<kind>/<id>` is the subject `<prefix>.<kind>.<id>`.
    pub subject_prefix: String,
    /// Replicas of the stream: 1, or 3 on a cluster.
    pub replicas: usize,
    /// How long the server remembers message ids for deduplication.
    pub duplicate_window: Duration,
    /// How long an append keeps retrying transient failures (server restarting, leader
    /// election) before it gives up with [`LogError::Unavailable`].
    pub max_retry: Duration,
    /// How long one request or publish acknowledgement is awaited.
    pub request_timeout: Duration,
}

impl Default for JetStreamConfig {
    fn default() -> Self {
        JetStreamConfig {
            stream_name: DEFAULT_STREAM_NAME.to_owned(),
            subject_prefix: DEFAULT_SUBJECT_PREFIX.to_owned(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
            max_retry: Duration::from_secs(15),
            request_timeout: Duration::from_secs(5),
        }
    }
}

impl JetStreamConfig {
    /// Checks the settings before anything is sent to the server.
    fn validate(&self) -> Result<()> {
        let invalid = |reason: String| Err(LogError::Invalid { reason });
        let name_ok = !self.stream_name.is_empty()
            && self
                .stream_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return invalid(format!(
                "stream name {:?}: must be ASCII letters, digits, '-' or '_'",
                self.stream_name
            ));
        }
        let prefix_ok = self.subject_prefix.split('.').all(|token| {
            !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if !prefix_ok {
            return invalid(format!(
                "subject prefix {:?}: must be dot-separated tokens without wildcards",
                self.subject_prefix
            ));
        }
        if self.replicas != 1 && self.replicas != 3 {
            return invalid(format!("replicas {}: must be 1 or 3", self.replicas));
        }
        if self.duplicate_window.is_zero() || self.request_timeout.is_zero() {
            return invalid("duplicate window and request timeout must be positive".into());
        }
        Ok(())
    }

    /// The stream configuration Docket creates.
    fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            name: self.stream_name.clone(),
            description: Some("docket event log: append-only, hash-chained commits".into()),
            subjects: vec![format!("{}.>", self.subject_prefix)],
            storage: StorageType::File,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            max_messages: -1,
            max_bytes: -1,
            max_messages_per_subject: -1,
            max_consumers: -1,
            max_age: Duration::ZERO,
            num_replicas: self.replicas,
            duplicate_window: self.duplicate_window,
            deny_delete: true,
            deny_purge: true,
            allow_rollup: false,
            allow_direct: true,
            ..StreamConfig::default()
        }
    }
}

/// Checks the server's version: Docket needs 2.10 or newer. Returns `(major, minor)`.
pub(crate) fn check_server_version(version: &str) -> Result<(u64, u64)> {
    let core = version
        .trim()
        .trim_start_matches('v')
        .split(['-', '+'])
        .next()
        .unwrap_or_default();
    let mut parts = core.split('.').map(str::parse::<u64>);
    let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) else {
        return Err(LogError::Incompatible {
            reason: format!("cannot parse nats-server version {version:?}"),
        });
    };
    if (major, minor) < (2, 10) {
        return Err(LogError::Incompatible {
            reason: format!(
                "nats-server {version} is too old, docket needs 2.10 or newer: older servers \
                 silently drop stream and consumer settings they do not know (a consumer with \
                 filter_subjects sees the whole stream) and have no sync_interval to fsync every \
                 write"
            ),
        });
    }
    Ok((major, minor))
}

/// Lists what in an existing stream's configuration breaks the log's guarantees.
pub(crate) fn stream_problems(existing: &StreamConfig, wanted: &JetStreamConfig) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, problem: &str| {
        if !ok {
            problems.push(problem.to_owned());
        }
    };
    check(
        existing.deny_delete,
        "deny_delete is off: commits could be deleted",
    );
    check(
        existing.deny_purge,
        "deny_purge is off: the log could be purged",
    );
    check(
        !existing.allow_rollup,
        "rollups are allowed: a rollup erases commits",
    );
    check(existing.storage == StorageType::File, "storage is not file");
    check(
        existing.retention == RetentionPolicy::Limits,
        "retention is not limits: commits would be removed once consumed",
    );
    check(
        existing.max_messages <= 0
            && existing.max_bytes <= 0
            && existing.max_messages_per_subject <= 0
            && existing.max_age.is_zero(),
        "the stream has limits (max_msgs, max_bytes, max_msgs_per_subject or max_age) that \
         would discard commits",
    );
    check(
        existing
            .subjects
            .iter()
            .any(|s| *s == format!("{}.>", wanted.subject_prefix)),
        "the stream does not capture the configured subject prefix",
    );
    check(
        existing.allow_direct,
        "allow_direct is off: reads need direct get",
    );
    check(!existing.sealed, "the stream is sealed");
    check(existing.mirror.is_none(), "the stream is a mirror");
    check(
        existing.max_message_size <= 0
            || existing.max_message_size as usize > commit::MAX_COMMIT_BYTES,
        "max_msg_size is below the commit size limit",
    );
    check(
        existing.num_replicas.max(1) == wanted.replicas,
        "its replica count differs from the configured one",
    );
    check(
        !existing.allow_message_ttl,
        "per-message TTLs are allowed: commits could expire",
    );
    problems
}

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

impl JetStreamLog {
    /// Connects to `url` (comma-separated for several servers, credentials as
    /// [`connect_options`] reads them) and opens the log.
    ///
    /// The client reconnects quickly (at most 500 ms between attempts), so that a restarted
    /// server is back in use at once.
    pub async fn connect_url(url: &str, config: JetStreamConfig) -> Result<Self> {
        let (servers, options) = connect_options(url)?;
        let disconnects = Arc::new(watch::Sender::new(0u64));
        let on_event = disconnects.clone();
        let client = options
            .name("docket-log")
            .connection_timeout(config.request_timeout)
            .reconnect_delay_callback(|attempts| {
                let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
                Duration::from_millis(25)
                    .saturating_mul(attempts.saturating_sub(1))
                    .min(Duration::from_millis(500))
            })
            .event_callback(move |event| {
                if matches!(event, async_nats::Event::Disconnected) {
                    on_event.send_modify(|n| *n += 1);
                }
                std::future::ready(())
            })
            .connect(servers.as_slice())
            .await
            .map_err(|e| LogError::Unavailable {
                reason: format!("cannot connect to nats-server at {}: {e}", redact_url(url)),
                source: Some(Box::new(e)),
            })?;
        Self::open(client, config, disconnects, false).await
    }

    /// Opens the log over an existing connection: checks the server version, then creates the
    /// stream or verifies that the existing one keeps the log's guarantees.
    pub async fn connect(client: async_nats::Client, config: JetStreamConfig) -> Result<Self> {
        Self::open(client, config, Arc::new(watch::Sender::new(0)), true).await
    }

    async fn open(
        client: async_nats::Client,
        config: JetStreamConfig,
        disconnects: Arc<watch::Sender<u64>>,
        poll_connection: bool,
    ) -> Result<Self> {
        config.validate()?;
        let mut version = client.server_info().version;
        if version.is_empty() {
            // Not connected yet (a client built with retry_on_initial_connect): wait briefly.
            let _ = tokio::time::timeout(config.request_timeout, client.flush()).await;
            version = client.server_info().version;
            if version.is_empty() {
                return Err(LogError::unavailable("not connected to nats-server"));
            }
        }
        let (major, minor) = check_server_version(&version)?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.request_timeout)
            .build(client.clone());
        ensure_stream(&js, &config).await?;
        let stream = js
            .get_stream_no_info(&config.stream_name)
            .await
            .map_err(|e| LogError::Invalid {
                reason: format!("stream name {:?}: {e}", config.stream_name),
            })?;
        tracing::debug!(
            stream = %config.stream_name,
            server_version = %version,
            "jetstream log opened"
        );
        let inner = Arc::new(Inner {
            client,
            js,
            stream,
            config,
            batch_direct_get: (major, minor) >= (2, 11),
            heads: Mutex::new(HashMap::new()),
            disconnects,
        });
        if poll_connection {
            tokio::spawn(watch_connection(Arc::downgrade(&inner)));
        }
        Ok(JetStreamLog { inner })
    }

    /// The reactions' checkpoints: the key-value bucket
    /// [`CHECKPOINT_BUCKET`](crate::checkpoint::CHECKPOINT_BUCKET), created with the log's
    /// replica count if missing.
    pub async fn checkpoints(&self) -> Result<crate::checkpoint::KvCheckpoints> {
        crate::checkpoint::KvCheckpoints::open(&self.inner.js, self.inner.config.replicas).await
    }

    /// The audit records (signed checkpoints): the stream
    /// [`DEFAULT_AUDIT_STREAM`](crate::records::DEFAULT_AUDIT_STREAM) on the log's connection,
    /// created with the log's replica count if missing.
    pub async fn audit_records(&self) -> Result<crate::records::JetStreamRecords> {
        let config = crate::records::JetStreamRecordsConfig {
            replicas: self.inner.config.replicas,
            ..Default::default()
        };
        crate::records::JetStreamRecords::open(&self.inner.js, config).await
    }

    /// The underlying NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// The settings the log was opened with.
    pub fn config(&self) -> &JetStreamConfig {
        &self.inner.config
    }

    /// The subject holding a log stream's commits.
    pub fn subject(&self, stream: &StreamId) -> String {
        self.inner.subject(stream)
    }
}

/// How Docket connects to NATS: `url` lists servers, comma-separated, each `nats://host:port`
/// or, with a NATS user, `nats://user:password@host:port` (user and password percent-encoded).
/// async-nats does not use credentials written in a server URL, so they are read here and given
/// to the connection; with a user the connection's reply inboxes are `_INBOX.<user>.…`, so the
/// server can let each user subscribe to its own replies only (`deploy/nats-secure.conf`).
/// Every URL naming a user must name the same one.
pub fn connect_options(
    url: &str,
) -> Result<(Vec<async_nats::ServerAddr>, async_nats::ConnectOptions)> {
    let invalid = |reason: String| LogError::Invalid { reason };
    let mut servers = Vec::new();
    let mut credentials: Option<(String, String)> = None;
    for part in url.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let addr: async_nats::ServerAddr = part
            .parse()
            .map_err(|e| invalid(format!("NATS server URL {}: {e}", redact_url(part))))?;
        let found = match addr.username() {
            Some(user) => Some((
                percent_decode(user)?,
                percent_decode(addr.password().unwrap_or_default())?,
            )),
            None => None,
        };
        if let Some(found) = found {
            if credentials.as_ref().is_some_and(|known| *known != found) {
                return Err(invalid(format!(
                    "the NATS server URLs {} name different users or passwords",
                    redact_url(url)
                )));
            }
            credentials = Some(found);
        }
        // The credentials go to the connection, not into logs of the server address.
        let mut bare = addr.into_inner();
        let _ = bare.set_password(None);
        let _ = bare.set_username("");
        servers.push(
            async_nats::ServerAddr::from_url(bare)
                .map_err(|e| invalid(format!("NATS server URL {}: {e}", redact_url(part))))?,
        );
    }
    if servers.is_empty() {
        return Err(invalid(format!("no NATS server URL in {url:?}")));
    }
    let mut options = async_nats::ConnectOptions::new();
    if let Some((user, password)) = credentials {
        let token = !user.is_empty()
            && user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if token {
            options = options.custom_inbox_prefix(format!("_INBOX.{user}"));
        }
        options = options.user_and_password(user, password);
    }
    Ok((servers, options))
}

/// `url` with every password replaced by `***`, for messages and logs.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|part| {
            let (scheme, rest) = match part.find("://") {
                Some(i) => part.split_at(i + 3),
                None => ("", part),
            };
            let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
            match authority.rfind('@') {
                Some(at) => {
                    let user = authority[..at].split(':').next().unwrap_or_default();
                    format!("{scheme}{user}:***{}", &rest[at..])
                }
                None => part.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Decodes `%XX` escapes of a URL's user or password.
fn percent_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| LogError::Invalid {
                    reason: "a NATS URL's user or password has a bad %-escape".to_owned(),
                })?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| LogError::Invalid {
        reason: "a NATS URL's user or password is not UTF-8 once %-decoded".to_owned(),
    })
}

/// Counts connection losses of a client we did not configure (no event callback) by polling its
/// state, until the log is dropped.
async fn watch_connection(inner: std::sync::Weak<Inner>) {
    let mut was_connected = true;
    loop {
        tokio::time::sleep(CONNECTION_POLL).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let connected = inner.client.connection_state() == async_nats::connection::State::Connected;
        if was_connected && !connected {
            tracing::debug!("connection to nats-server lost");
            inner.disconnects.send_modify(|n| *n += 1);
        }
        was_connected = connected;
    }
}

/// Creates the stream, or checks that the existing one keeps the log's guarantees.
async fn ensure_stream(js: &jetstream::Context, config: &JetStreamConfig) -> Result<()> {
    let wanted = config.stream_config();
    let existing = match js.get_stream(&config.stream_name).await {
        Ok(stream) => stream.cached_info().config.clone(),
        Err(err) => match err.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(e)
                if e.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                match js.create_stream(wanted.clone()).await {
                    Ok(_) => {
                        tracing::info!(
                            stream = %config.stream_name,
                            replicas = config.replicas,
                            "created jetstream stream for the log"
                        );
                        return Ok(());
                    }
                    Err(err) => match err.kind() {
                        // Another process created it first: verify theirs below.
                        jetstream::context::CreateStreamErrorKind::JetStream(e)
                            if e.error_code() == ErrorCode::STREAM_NAME_EXIST =>
                        {
                            js.get_stream(&config.stream_name)
                                .await
                                .map_err(|e| unavailable("cannot read the stream", e))?
                                .cached_info()
                                .config
                                .clone()
                        }
                        jetstream::context::CreateStreamErrorKind::JetStream(e) => {
                            return Err(LogError::Incompatible {
                                reason: format!("cannot create stream {}: {e}", config.stream_name),
                            })
                        }
                        // A NATS user without permission to create it gets no reply.
                        _ => {
                            return Err(unavailable(
                                "cannot create the stream (where NATS permissions reserve \
                                 that to an admin user, it creates the stream first)",
                                err,
                            ))
                        }
                    },
                }
            }
            _ => return Err(unavailable("cannot read the stream", err)),
        },
    };
    let problems = stream_problems(&existing, config);
    if !problems.is_empty() {
        return Err(LogError::Incompatible {
            reason: format!(
                "stream {} does not keep the log's guarantees: {}",
                config.stream_name,
                problems.join("; ")
            ),
        });
    }
    if existing.duplicate_window != config.duplicate_window {
        tracing::warn!(
            stream = %config.stream_name,
            configured = ?config.duplicate_window,
            actual = ?existing.duplicate_window,
            "the stream's duplicate window differs from the configured one; the stream's applies"
        );
    }
    Ok(())
}

fn unavailable(context: &str, err: impl std::error::Error + Send + Sync + 'static) -> LogError {
    LogError::Unavailable {
        reason: format!("{context}: {err}"),
        source: Some(Box::new(err)),
    }
}

/// What one publish attempt came to.
enum Attempt {
    /// Stored (or recognised as a duplicate) at this sequence.
    Acked { sequence: u64, duplicate: bool },
    /// The subject's last sequence was not the expected one.
    WrongLastSequence,
    /// Worth retrying with the same message id; `maybe_stored` if the message may have landed.
    Transient {
        error: PublishError,
        maybe_stored: bool,
    },
    /// Retrying cannot help.
    Failed(LogError),
}

/// A stored message as the append path needs it.
struct Stored {
    sequence: u64,
    msg_id: Option<String>,
    payload: Bytes,
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

    /// Reads one message from the stream leader: the last on `subject`, or the first on
    /// `subject` at or after `from`. `None` if there is none.
    async fn leader_get(&self, subject: &str, from: Option<u64>) -> Result<Option<Stored>> {
        let builder = self.stream.raw_message_builder();
        let builder = match from {
            Some(seq) => builder.sequence(seq).next_by_subject(subject),
            None => builder.last_by_subject(subject),
        };
        match builder.send().await {
            Ok(message) => Ok(Some(Stored {
                sequence: message.sequence,
                msg_id: message
                    .headers
                    .get(NATS_MESSAGE_ID)
                    .map(|v| v.as_str().to_owned()),
                payload: message.payload,
            })),
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(unavailable("cannot read from the stream leader", err)),
        }
    }

    /// The stream's head according to the server, retried until `deadline`.
    async fn server_head(
        &self,
        stream: &StreamId,
        subject: &str,
        deadline: Instant,
    ) -> Result<Option<StreamLink>> {
        let mut failures = 0;
        loop {
            match self.leader_get(subject, None).await {
                Ok(found) => {
                    let link = found.map(|m| StreamLink {
                        revision: m.sequence,
                        hash: CommitHash::of(&m.payload),
                    });
                    match link {
                        Some(link) => self.remember_head(stream, link),
                        None => self.forget_head(stream),
                    }
                    return Ok(link);
                }
                Err(err) => pause(&mut failures, deadline, err).await?,
            }
        }
    }

    async fn publish(
        &self,
        subject: &str,
        msg_id: &str,
        expected_sequence: u64,
        payload: Bytes,
    ) -> Attempt {
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MESSAGE_ID, msg_id);
        headers.insert(
            NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            header::HeaderValue::from(expected_sequence),
        );
        let message = PublishMessage::build().payload(payload).headers(headers);
        let mut disconnects = self.disconnects.subscribe();
        let sent = self.js.send_publish(subject.to_owned(), message).await;
        let acked = match sent {
            Ok(ack) => tokio::select! {
                biased;
                acked = std::future::IntoFuture::into_future(ack) => acked,
                _ = disconnects.changed() => {
                    return Attempt::Transient {
                        error: PublishError::with_source(
                            PublishErrorKind::BrokenPipe,
                            "connection lost while awaiting the acknowledgement",
                        ),
                        maybe_stored: true,
                    }
                }
            },
            // Not handed to the connection: it cannot have been stored.
            Err(error) => return classify(error, false),
        };
        match acked {
            Ok(ack) => Attempt::Acked {
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            },
            Err(error) => classify(error, true),
        }
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedRevision,
        events: Vec<EventData>,
        metadata: Metadata,
    ) -> Result<Appended> {
        commit::validate(&metadata, &events)?;
        let deadline = Instant::now() + self.config.max_retry;
        let subject = self.subject(stream);
        let msg_id = commit::dedup_id(&metadata, &events);
        let conflict = |actual: u64| LogError::Conflict {
            stream: stream.to_string(),
            expected,
            actual,
        };

        // The commit the new one links to.
        let mut link = match expected {
            ExpectedRevision::NoStream | ExpectedRevision::Exact(0) => None,
            ExpectedRevision::Exact(revision) => match self.cached_head(stream) {
                Some(head) if head.revision == revision => Some(head),
                _ => {
                    let head = self.server_head(stream, &subject, deadline).await?;
                    let actual = head.map_or(0, |h| h.revision);
                    if actual != revision {
                        return Err(conflict(actual));
                    }
                    head
                }
            },
            ExpectedRevision::Any => match self.cached_head(stream) {
                Some(head) => Some(head),
                None => self.server_head(stream, &subject, deadline).await?,
            },
        };

        let mut commit = Commit {
            stream: stream.clone(),
            prev: link,
            metadata,
            events,
        };
        let mut bytes = Bytes::from(commit::encode(&commit)?);
        // True once an attempt may have been stored without us hearing back.
        let mut maybe_stored = false;
        let mut failures = 0u32;
        let mut relinks = 0u32;
        loop {
            let expected_sequence = link.map_or(0, |l| l.revision);
            match self
                .publish(&subject, &msg_id, expected_sequence, bytes.clone())
                .await
            {
                Attempt::Acked {
                    sequence,
                    duplicate: false,
                } => {
                    let hash = CommitHash::of(&bytes);
                    self.remember_head(
                        stream,
                        StreamLink {
                            revision: sequence,
                            hash,
                        },
                    );
                    return Ok(Appended {
                        position: sequence,
                        revision: sequence,
                        hash,
                    });
                }
                Attempt::Acked {
                    sequence,
                    duplicate: true,
                } => {
                    if !maybe_stored {
                        return Err(LogError::Duplicate { position: sequence });
                    }
                    // Our own earlier attempt landed: answer with what is stored there.
                    match self
                        .stream
                        .raw_message_builder()
                        .sequence(sequence)
                        .send()
                        .await
                    {
                        Ok(message) => {
                            tracing::debug!(
                                stream = %stream,
                                position = sequence,
                                "an earlier attempt of this append was stored"
                            );
                            return Ok(Appended {
                                position: sequence,
                                revision: sequence,
                                hash: CommitHash::of(&message.payload),
                            });
                        }
                        Err(err) => {
                            pause(
                                &mut failures,
                                deadline,
                                unavailable("cannot read commit", err),
                            )
                            .await?
                        }
                    }
                }
                Attempt::WrongLastSequence => {
                    // Was the slot after our expected revision taken by this very commit?
                    let next = match self.leader_get(&subject, Some(expected_sequence + 1)).await {
                        Ok(next) => next,
                        Err(err) => {
                            pause(&mut failures, deadline, err).await?;
                            continue;
                        }
                    };
                    if let Some(next) = next.filter(|n| n.msg_id.as_deref() == Some(&msg_id)) {
                        if !maybe_stored {
                            return Err(LogError::Duplicate {
                                position: next.sequence,
                            });
                        }
                        return Ok(Appended {
                            position: next.sequence,
                            revision: next.sequence,
                            hash: CommitHash::of(&next.payload),
                        });
                    }
                    self.forget_head(stream);
                    let head = self.server_head(stream, &subject, deadline).await?;
                    let actual = head.map_or(0, |h| h.revision);
                    if expected != ExpectedRevision::Any || relinks >= ANY_CONFLICT_RETRIES {
                        return Err(conflict(actual));
                    }
                    relinks += 1;
                    tracing::debug!(stream = %stream, actual, "append raced another writer, relinking");
                    link = head;
                    commit.prev = link;
                    bytes = Bytes::from(commit::encode(&commit)?);
                }
                Attempt::Transient {
                    error,
                    maybe_stored: stored,
                } => {
                    maybe_stored |= stored;
                    tracing::debug!(stream = %stream, error = %error, "append attempt failed, retrying");
                    pause(&mut failures, deadline, unavailable("cannot append", error)).await?;
                }
                Attempt::Failed(err) => return Err(err),
            }
        }
    }

    /// Reads the commits of one subject with batched direct gets (2.11+), or one direct get per
    /// commit on older servers.
    async fn read_subject(&self, subject: &str) -> Result<Vec<RecordedCommit>> {
        let mut commits = Vec::new();
        let mut from = 1;
        loop {
            let (messages, more) = if self.batch_direct_get {
                self.direct_batch(subject, from).await?
            } else {
                match self
                    .stream
                    .direct_get_next_for_subject(subject, Some(from))
                    .await
                {
                    Ok(m) => (vec![(m.sequence, m.payload)], true),
                    Err(err) if err.kind() == jetstream::stream::DirectGetErrorKind::NotFound => {
                        (Vec::new(), false)
                    }
                    Err(err) => return Err(unavailable("cannot read the stream", err)),
                }
            };
            for (sequence, payload) in messages {
                from = sequence + 1;
                commits.push(RecordedCommit::decode(sequence, payload)?);
            }
            if !more {
                return Ok(commits);
            }
        }
    }

    /// One batched direct get of messages on `subject` from sequence `from`; returns them and
    /// whether more follow.
    async fn direct_batch(&self, subject: &str, from: u64) -> Result<(Vec<(u64, Bytes)>, bool)> {
        #[derive(Serialize)]
        struct Request<'a> {
            seq: u64,
            next_by_subj: &'a str,
            batch: usize,
        }
        let request = serde_json::to_vec(&Request {
            seq: from,
            next_by_subj: subject,
            batch: DIRECT_BATCH,
        })
        .map_err(|e| unavailable("cannot encode a direct get", e))?;
        let inbox = self.client.new_inbox();
        let mut replies = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| unavailable("cannot subscribe for direct get replies", e))?;
        self.client
            .publish_with_reply(
                format!("$JS.API.DIRECT.GET.{}", self.config.stream_name),
                inbox,
                request.into(),
            )
            .await
            .map_err(|e| unavailable("cannot send a direct get", e))?;
        let mut messages = Vec::new();
        loop {
            let reply = tokio::time::timeout(self.config.request_timeout, replies.next())
                .await
                .map_err(|_| LogError::unavailable("direct get timed out"))?
                .ok_or_else(|| LogError::unavailable("direct get replies ended"))?;
            let number = |name: &str| {
                reply
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .and_then(|v| v.as_str().parse::<u64>().ok())
            };
            match reply.status.map(|s| s.as_u16()) {
                None => {
                    let sequence = number(NATS_SEQUENCE.as_ref()).ok_or_else(|| {
                        LogError::unavailable("direct get reply without a sequence")
                    })?;
                    messages.push((sequence, reply.payload));
                }
                // End of batch; the pending count says whether more match.
                Some(204) => {
                    let pending = number("Nats-Num-Pending").unwrap_or(0);
                    return Ok((messages, pending > 0));
                }
                Some(404) => return Ok((messages, false)),
                Some(status) if status == StatusCode::NO_RESPONDERS.as_u16() => {
                    return Err(LogError::unavailable("direct get: no responders"))
                }
                Some(status) => {
                    return Err(LogError::unavailable(format!(
                        "direct get failed: {status} {}",
                        reply.description.as_deref().unwrap_or_default()
                    )))
                }
            }
        }
    }

    /// An ordered consumer over the whole log starting after position `after`.
    async fn ordered_from(
        &self,
        after: u64,
        max_batch: usize,
        max_expires: Duration,
    ) -> Result<jetstream::consumer::Consumer<OrderedConfig>> {
        let deliver_policy = if after == 0 {
            DeliverPolicy::All
        } else {
            DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            }
        };
        self.stream
            .create_consumer(OrderedConfig {
                deliver_policy,
                max_batch: i64::try_from(max_batch).unwrap_or(i64::MAX),
                max_expires,
                ..OrderedConfig::default()
            })
            .await
            .map_err(|e| unavailable("cannot create a consumer", e))
    }

    /// Deletes an ephemeral consumer in the background (the server would after 30 s anyway).
    fn drop_consumer(&self, name: String) {
        let js = self.js.clone();
        let stream = self.config.stream_name.clone();
        tokio::spawn(async move {
            if let Err(err) = js.delete_consumer_from_stream(&name, &stream).await {
                tracing::debug!(consumer = %name, error = %err, "could not delete consumer");
            }
        });
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedCommit>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let consumer = self
            .ordered_from(after, limit.min(READ_ALL_PULL), Duration::ZERO)
            .await?;
        let name = consumer.cached_info().name.clone();
        let want = usize::try_from(consumer.cached_info().num_pending)
            .unwrap_or(usize::MAX)
            .min(limit);
        if want == 0 {
            self.drop_consumer(name);
            return Ok(Vec::new());
        }
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| unavailable("cannot read the log", e))?;
        let mut commits = Vec::with_capacity(want);
        let mut last = after;
        let mut disconnects = self.disconnects.subscribe();
        let idle = tokio::time::sleep(self.config.request_timeout);
        tokio::pin!(idle);
        let result = loop {
            if commits.len() == want {
                break Ok(commits);
            }
            let next = tokio::select! {
                biased;
                next = messages.next() => next,
                _ = disconnects.changed() => {
                    break Err(LogError::unavailable("connection lost while reading the log"))
                }
                () = &mut idle => {
                    break Err(LogError::unavailable(format!(
                        "timed out reading the log at position {}",
                        last + 1
                    )))
                }
            };
            idle.as_mut()
                .reset(tokio::time::Instant::now() + self.config.request_timeout);
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(err)) => break Err(unavailable("cannot read the log", err)),
                None => break Err(LogError::unavailable("log read ended early")),
            };
            match next_position(&message, last) {
                Ok(Some(position)) => {
                    last = position;
                    match RecordedCommit::decode(position, message.message.payload) {
                        Ok(commit) => commits.push(commit),
                        Err(err) => break Err(err),
                    }
                }
                Ok(None) => {}
                Err(err) => break Err(err),
            }
        };
        drop(messages);
        self.drop_consumer(name);
        result
    }
}

/// The position of a consumer message if it is the one after `last`; `None` for a repeat of one
/// already seen (the ordered consumer may restart from the beginning after recreating itself).
fn next_position(message: &jetstream::Message, last: u64) -> Result<Option<u64>> {
    let info = message
        .info()
        .map_err(|e| LogError::unavailable(format!("consumer message without info: {e}")))?;
    let position = info.stream_sequence;
    if position <= last {
        Ok(None)
    } else if position == last + 1 {
        Ok(Some(position))
    } else {
        Err(LogError::unavailable(format!(
            "consumer skipped from position {last} to {position}"
        )))
    }
}

/// Sorts a publish failure into retryable or not.
fn classify(error: PublishError, maybe_stored: bool) -> Attempt {
    match error.kind() {
        PublishErrorKind::WrongLastSequence => Attempt::WrongLastSequence,
        // No responders: nobody stored it.
        PublishErrorKind::StreamNotFound | PublishErrorKind::MaxAckPending => Attempt::Transient {
            error,
            maybe_stored: false,
        },
        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe => Attempt::Transient {
            error,
            maybe_stored,
        },
        PublishErrorKind::MaxPayloadExceeded => Attempt::Failed(LogError::Invalid {
            reason: format!("the server refused the commit's size: {error}"),
        }),
        PublishErrorKind::Other | PublishErrorKind::WrongLastMessageId => {
            let api_error = std::error::Error::source(&error)
                .and_then(|s| s.downcast_ref::<jetstream::Error>())
                .cloned();
            match api_error {
                // The server answered with a client-side error: retrying will not change it.
                Some(api) if api.code() < 500 => {
                    Attempt::Failed(unavailable("the server refused the append", error))
                }
                _ => Attempt::Transient {
                    error,
                    maybe_stored,
                },
            }
        }
    }
}

/// Sleeps before the next retry, or returns `err` once `deadline` has passed.
async fn pause(failures: &mut u32, deadline: Instant, err: LogError) -> Result<()> {
    let now = Instant::now();
    if now >= deadline {
        tracing::warn!(error = %err, "giving up after retrying");
        return Err(err);
    }
    let backoff = BACKOFF_START
        .saturating_mul(1 << (*failures).min(5))
        .min(BACKOFF_MAX)
        .min(deadline - now);
    *failures += 1;
    tokio::time::sleep(backoff).await;
    Ok(())
}

/// A live subscription: an ordered consumer from the last delivered position, recreated
/// whenever it fails, never skipping or repeating a position.
struct Follow {
    inner: Arc<Inner>,
    last: u64,
    /// Boxed: the state moves in and out of the stream's future with every commit.
    messages: Option<Box<Ordered>>,
    failures: u32,
    disconnects: watch::Receiver<u64>,
}

impl Follow {
    async fn open(&mut self) -> Result<()> {
        self.disconnects.borrow_and_update();
        let consumer = self
            .inner
            .ordered_from(self.last, 500, SUBSCRIBE_EXPIRES)
            .await?;
        self.messages = Some(Box::new(
            consumer
                .messages()
                .await
                .map_err(|e| unavailable("cannot read the log", e))?,
        ));
        Ok(())
    }

    async fn next(mut self) -> Option<(Result<RecordedCommit>, Self)> {
        loop {
            let Some(messages) = self.messages.as_mut() else {
                if let Err(err) = self.open().await {
                    tracing::warn!(after = self.last, error = %err, "cannot resume subscription, retrying");
                    self.back_off().await;
                }
                continue;
            };
            let next = tokio::select! {
                biased;
                next = messages.next() => next,
                // The consumer died with the connection (ephemeral consumers do not survive a
                // server restart): make a new one instead of waiting for missed heartbeats.
                _ = self.disconnects.changed() => {
                    tracing::debug!(after = self.last, "connection lost, resubscribing");
                    self.messages = None;
                    continue;
                }
            };
            let failure = match next {
                Some(Ok(message)) => match next_position(&message, self.last) {
                    Ok(Some(position)) => {
                        self.last = position;
                        self.failures = 0;
                        let commit = RecordedCommit::decode(position, message.message.payload);
                        return Some((commit, self));
                    }
                    Ok(None) => continue,
                    Err(err) => err.to_string(),
                },
                Some(Err(err)) => err.to_string(),
                None => "consumer ended".to_owned(),
            };
            tracing::warn!(after = self.last, error = %failure, "subscription interrupted, resuming");
            self.messages = None;
            self.back_off().await;
        }
    }

    async fn back_off(&mut self) {
        let pause = BACKOFF_START
            .saturating_mul(1 << self.failures.min(5))
            .min(BACKOFF_MAX);
        self.failures += 1;
        tokio::time::sleep(pause).await;
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

/// Restoring a backup: commits published with their exact bytes at their exact positions.
impl JetStreamLog {
    /// Restores one commit from a backup (`docket audit import`): publishes `bytes`, exactly, as
    /// the commit at `position`, on the subject of its stream, so the restored log holds the same
    /// bytes at the same positions (same hashes, same Merkle tree) as the one backed up.
    ///
    /// The bytes must decode as a commit (checksum, version, stream id) and link, if at all, to
    /// an earlier position. The message carries the headers of a normal append
    /// (`Nats-Msg-Id`: the commit's dedup id; `Nats-Expected-Last-Subject-Sequence`: the
    /// position its stream link names, 0 for a stream's first commit) and
    /// `Nats-Expected-Last-Sequence: position - 1`, so it is stored at `position` or not at all.
    /// A retry of a restore that already landed (at any age) finds the same bytes at `position`
    /// and succeeds; anything else already at or before `position` is a
    /// [`LogError::Conflict`]. A [`LogError::Duplicate`] naming another position means the
    /// commit's dedup id was stored there within the stream's duplicate window (a JetStream log
    /// may hold one dedup id twice, when a late retry came after the window): retry once the
    /// window has passed. Transient failures are retried like appends.
    pub async fn restore(&self, position: u64, bytes: Bytes) -> Result<Appended> {
        self.inner.restore(position, bytes).await
    }
}

impl Inner {
    async fn restore(&self, position: u64, bytes: Bytes) -> Result<Appended> {
        let invalid = |reason: String| LogError::Invalid {
            reason: format!("cannot restore position {position}: {reason}"),
        };
        if position == 0 {
            return Err(invalid("positions start at 1".into()));
        }
        if bytes.len() > commit::MAX_COMMIT_BYTES {
            return Err(LogError::TooLarge {
                size: bytes.len(),
                limit: commit::MAX_COMMIT_BYTES,
            });
        }
        let decoded = commit::decode(&bytes).map_err(invalid)?;
        if let Some(link) = decoded.prev {
            if link.revision >= position {
                return Err(invalid(format!(
                    "the commit links to position {}, not before it",
                    link.revision
                )));
            }
        }
        let stream = decoded.stream;
        let subject = self.subject(&stream);
        let msg_id = commit::dedup_id(&decoded.metadata, &decoded.events);
        let expected_subject = decoded.prev.map_or(0, |l| l.revision);
        let hash = CommitHash::of(&bytes);
        let done = || Appended {
            position,
            revision: position,
            hash,
        };
        let deadline = Instant::now() + self.config.max_retry;
        let mut failures = 0u32;
        // Older servers take an expected last sequence of 0 for none: check the first by hand.
        if position == 1 {
            let head = loop {
                match self.stream.get_info().await {
                    Ok(info) => break info.state.last_sequence,
                    Err(err) => {
                        let err = unavailable("cannot read the stream's state", err);
                        pause(&mut failures, deadline, err).await?;
                    }
                }
            };
            if head > 0 {
                return match self.stored_at(1, deadline).await? {
                    Some(payload) if payload == bytes => Ok(done()),
                    _ => Err(self
                        .restore_conflict(&stream, position, expected_subject, deadline)
                        .await),
                };
            }
        }
        loop {
            let attempt = self
                .publish_restore(
                    &subject,
                    &msg_id,
                    position - 1,
                    expected_subject,
                    bytes.clone(),
                )
                .await;
            match attempt {
                Attempt::Acked {
                    sequence,
                    duplicate: false,
                } if sequence == position => {
                    self.remember_head(
                        &stream,
                        StreamLink {
                            revision: position,
                            hash,
                        },
                    );
                    return Ok(done());
                }
                Attempt::Acked {
                    sequence,
                    duplicate: true,
                } if sequence == position => {
                    // An earlier attempt landed: it must have stored these very bytes.
                    return match self.stored_at(position, deadline).await? {
                        Some(payload) if payload == bytes => Ok(done()),
                        _ => Err(self
                            .restore_conflict(&stream, position, expected_subject, deadline)
                            .await),
                    };
                }
                Attempt::Acked {
                    sequence,
                    duplicate: true,
                } => return Err(LogError::Duplicate { position: sequence }),
                Attempt::Acked {
                    sequence,
                    duplicate: false,
                } => {
                    return Err(LogError::Corrupt {
                        position: sequence,
                        reason: format!(
                            "the commit restored for position {position} was stored at {sequence}"
                        ),
                    })
                }
                Attempt::WrongLastSequence => {
                    // A retry of a restore that landed finds its own bytes there.
                    return match self.stored_at(position, deadline).await? {
                        Some(payload) if payload == bytes => Ok(done()),
                        _ => Err(self
                            .restore_conflict(&stream, position, expected_subject, deadline)
                            .await),
                    };
                }
                Attempt::Transient { error, .. } => {
                    tracing::debug!(position, error = %error, "restore attempt failed, retrying");
                    pause(
                        &mut failures,
                        deadline,
                        unavailable("cannot restore", error),
                    )
                    .await?;
                }
                Attempt::Failed(err) => return Err(err),
            }
        }
    }

    /// The payload stored at `sequence`, from the stream leader; `None` if there is none.
    async fn stored_at(&self, sequence: u64, deadline: Instant) -> Result<Option<Bytes>> {
        let mut failures = 0u32;
        loop {
            match self
                .stream
                .raw_message_builder()
                .sequence(sequence)
                .send()
                .await
            {
                Ok(message) => return Ok(Some(message.payload)),
                Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => {
                    return Ok(None)
                }
                Err(err) => {
                    let err = unavailable("cannot read from the stream leader", err);
                    pause(&mut failures, deadline, err).await?;
                }
            }
        }
    }

    /// Why a restore at `position` was refused: the log's head is not `position - 1`, or the
    /// stream's last commit is not the one the commit links to, or another commit is there.
    async fn restore_conflict(
        &self,
        stream: &StreamId,
        position: u64,
        expected_subject: u64,
        deadline: Instant,
    ) -> LogError {
        let head = match self.stream.get_info().await {
            Ok(info) => info.state.last_sequence,
            Err(err) => return unavailable("cannot read the stream's state", err),
        };
        if head + 1 != position {
            return LogError::Conflict {
                stream: format!("(the whole log {})", self.config.stream_name),
                expected: ExpectedRevision::Exact(position - 1),
                actual: head,
            };
        }
        let subject = self.subject(stream);
        match self.server_head(stream, &subject, deadline).await {
            Ok(last) => LogError::Conflict {
                stream: stream.to_string(),
                expected: ExpectedRevision::Exact(expected_subject),
                actual: last.map_or(0, |l| l.revision),
            },
            Err(err) => err,
        }
    }

    async fn publish_restore(
        &self,
        subject: &str,
        msg_id: &str,
        expected_last: u64,
        expected_subject: u64,
        payload: Bytes,
    ) -> Attempt {
        let mut headers = HeaderMap::new();
        headers.insert(NATS_MESSAGE_ID, msg_id);
        headers.insert(
            NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            header::HeaderValue::from(expected_subject),
        );
        headers.insert(
            header::NATS_EXPECTED_LAST_SEQUENCE,
            header::HeaderValue::from(expected_last),
        );
        let message = PublishMessage::build().payload(payload).headers(headers);
        let mut disconnects = self.disconnects.subscribe();
        let ack = match self.js.send_publish(subject.to_owned(), message).await {
            Ok(ack) => ack,
            Err(error) => return classify(error, false),
        };
        let acked = tokio::select! {
            biased;
            acked = std::future::IntoFuture::into_future(ack) => acked,
            _ = disconnects.changed() => {
                return Attempt::Transient {
                    error: PublishError::with_source(
                        PublishErrorKind::BrokenPipe,
                        "connection lost while awaiting the acknowledgement",
                    ),
                    maybe_stored: true,
                }
            }
        };
        match acked {
            Ok(ack) => Attempt::Acked {
                sequence: ack.sequence,
                duplicate: ack.duplicate,
            },
            Err(error) => classify(error, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions_older_than_2_10_are_refused() {
        for (version, expected) in [
            ("2.10.0", Some((2, 10))),
            ("2.15.1", Some((2, 15))),
            ("v2.11.0-RC.3", Some((2, 11))),
            ("3.0.0", Some((3, 0))),
            ("2.9.25", None),
            ("1.4.1", None),
            ("", None),
            ("banana", None),
        ] {
            let got = check_server_version(version);
            assert_eq!(got.as_ref().ok().copied(), expected, "{version}: {got:?}");
            if let Err(err) = got {
                assert!(matches!(err, LogError::Incompatible { .. }), "{err:?}");
            }
        }
        let err = check_server_version("2.9.25").unwrap_err().to_string();
        assert!(
            err.contains("2.10") && err.contains("sync_interval"),
            "{err}"
        );
    }

    #[test]
    fn the_created_stream_has_no_problems() {
        let config = JetStreamConfig::default();
        assert!(stream_problems(&config.stream_config(), &config).is_empty());
    }

    #[test]
    fn unsafe_stream_settings_are_reported() {
        let config = JetStreamConfig::default();
        let good = config.stream_config();
        let cases: Vec<(&str, StreamConfig)> = vec![
            (
                "deny_delete",
                StreamConfig {
                    deny_delete: false,
                    ..good.clone()
                },
            ),
            (
                "deny_purge",
                StreamConfig {
                    deny_purge: false,
                    ..good.clone()
                },
            ),
            (
                "rollup",
                StreamConfig {
                    allow_rollup: true,
                    ..good.clone()
                },
            ),
            (
                "limits",
                StreamConfig {
                    max_age: Duration::from_secs(60),
                    ..good.clone()
                },
            ),
            (
                "limits",
                StreamConfig {
                    max_messages: 10,
                    ..good.clone()
                },
            ),
            (
                "retention",
                StreamConfig {
                    retention: RetentionPolicy::WorkQueue,
                    ..good.clone()
                },
            ),
            (
                "storage",
                StreamConfig {
                    storage: StorageType::Memory,
                    ..good.clone()
                },
            ),
            (
                "subject prefix",
                StreamConfig {
                    subjects: vec!["other.>".into()],
                    ..good.clone()
                },
            ),
            (
                "replica",
                StreamConfig {
                    num_replicas: 3,
                    ..good.clone()
                },
            ),
            (
                "allow_direct",
                StreamConfig {
                    allow_direct: false,
                    ..good.clone()
                },
            ),
        ];
        for (what, existing) in cases {
            let problems = stream_problems(&existing, &config);
            assert_eq!(problems.len(), 1, "{what}: {problems:?}");
            assert!(problems[0].contains(what), "{what}: {problems:?}");
        }
    }

    #[test]
    fn urls_give_credentials_to_the_connection_and_hide_passwords() {
        let (servers, _) = connect_options("nats://a:4222, nats://b:4223").unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].port(), 4223);
        let url = "nats://intake:p%40ss%3Aw@docket-1:4222,nats://intake:p%40ss%3Aw@docket-2:4222";
        let (servers, _) = connect_options(url).unwrap();
        assert!(servers
            .iter()
            .all(|s| !s.has_user_pass() && s.password().is_none()));
        assert_eq!(percent_decode("p%40ss%3Aw").unwrap(), "p@ss:w");
        assert!(percent_decode("bad%4").is_err());
        assert_eq!(
            redact_url(url),
            "nats://intake:***@docket-1:4222,nats://intake:***@docket-2:4222"
        );
        assert_eq!(redact_url("nats://h:4222"), "nats://h:4222");
        for bad in ["", "http://h:80", "nats://a:x@h,nats://b:y@h"] {
            assert!(
                matches!(connect_options(bad), Err(LogError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn configs_are_validated() {
        assert!(JetStreamConfig::default().validate().is_ok());
        for bad in [
            JetStreamConfig {
                replicas: 2,
                ..Default::default()
            },
            JetStreamConfig {
                stream_name: "A.B".into(),
                ..Default::default()
            },
            JetStreamConfig {
                subject_prefix: "docket.>".into(),
                ..Default::default()
            },
            JetStreamConfig {
                subject_prefix: "".into(),
                ..Default::default()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(LogError::Invalid { .. })),
                "{bad:?}"
            );
        }
    }
}
