//! Reading: one stream's commits by direct gets, and the whole log through ordered consumers.

use std::time::Duration;

use async_nats::header::NATS_SEQUENCE;
use async_nats::jetstream;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::StatusCode;
use bytes::Bytes;
use futures_util::StreamExt;
use serde::Serialize;

use super::{unavailable, Inner, DIRECT_BATCH, READ_ALL_PULL};
use crate::{LogError, RecordedCommit, Result};

impl Inner {
    /// Reads the commits of one subject with batched direct gets (2.11+), or one direct get per
    /// commit on older servers.
    pub(super) async fn read_subject(&self, subject: &str) -> Result<Vec<RecordedCommit>> {
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
    pub(super) async fn ordered_from(
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

    pub(super) async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedCommit>> {
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
pub(super) fn next_position(message: &jetstream::Message, last: u64) -> Result<Option<u64>> {
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
