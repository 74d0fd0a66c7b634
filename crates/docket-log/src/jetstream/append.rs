//! Appending: publishing a commit with its expected revision and message id, telling a retry
//! that already landed from a conflict, and sorting failures into retryable or not.

use std::time::Instant;

use async_nats::header::{self, HeaderMap, NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream;
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bytes::Bytes;

use super::{unavailable, Inner, ANY_CONFLICT_RETRIES, BACKOFF_MAX, BACKOFF_START};
use crate::commit::{self, Commit, StreamLink};
use crate::{
    Appended, CommitHash, EventData, ExpectedRevision, LogError, Metadata, Result, StreamId,
};

/// What one publish attempt came to.
pub(super) enum Attempt {
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
    pub(super) async fn server_head(
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

    pub(super) async fn append(
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
}

/// Sorts a publish failure into retryable or not.
pub(super) fn classify(error: PublishError, maybe_stored: bool) -> Attempt {
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
pub(super) async fn pause(failures: &mut u32, deadline: Instant, err: LogError) -> Result<()> {
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
