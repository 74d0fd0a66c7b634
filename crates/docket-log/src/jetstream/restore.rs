//! Restoring a backup: commits published with their exact bytes at their exact positions.

use std::time::Instant;

use async_nats::header::{self, HeaderMap, NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bytes::Bytes;

use super::append::{classify, pause, Attempt};
use super::{unavailable, Inner, JetStreamLog};
use crate::commit::{self, StreamLink};
use crate::{Appended, CommitHash, ExpectedRevision, LogError, Result, StreamId};

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
