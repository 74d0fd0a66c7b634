//! Following the log: a live subscription that survives lost connections and server restarts.

use std::sync::Arc;

use async_nats::jetstream::consumer::pull::Ordered;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::read::next_position;
use super::{unavailable, Inner, BACKOFF_MAX, BACKOFF_START, SUBSCRIBE_EXPIRES};
use crate::{RecordedCommit, Result};

/// A live subscription: an ordered consumer from the last delivered position, recreated
/// whenever it fails, never skipping or repeating a position.
pub(super) struct Follow {
    pub(super) inner: Arc<Inner>,
    pub(super) last: u64,
    /// Boxed: the state moves in and out of the stream's future with every commit.
    pub(super) messages: Option<Box<Ordered>>,
    pub(super) failures: u32,
    pub(super) disconnects: watch::Receiver<u64>,
}

impl Follow {
    pub(super) async fn open(&mut self) -> Result<()> {
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

    pub(super) async fn next(mut self) -> Option<(Result<RecordedCommit>, Self)> {
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
