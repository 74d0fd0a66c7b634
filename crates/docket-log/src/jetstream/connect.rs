//! Connecting: the URL and its credentials, opening the log over a connection, watching the
//! connection for losses, and creating or checking the stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, ErrorCode};
use tokio::sync::watch;

use super::config::{check_server_version, stream_problems, JetStreamConfig};
use super::{unavailable, Inner, JetStreamLog, CONNECTION_POLL};
use crate::{LogError, Result, StreamId};

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
    // `percent_decode_str` passes a `%` without two hex digits after it through unchanged; such
    // a credential is a mistake, so it is refused instead.
    let bytes = text.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return Err(LogError::Invalid {
            reason: "a NATS URL's user or password has a bad %-escape".to_owned(),
        });
    }
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| LogError::Invalid {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
