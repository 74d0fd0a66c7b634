//! The checkpointer's side of C2SP `tlog-witness`: after a checkpoint is signed, every witness
//! not resting is asked at once to cosign it, from the size it last cosigned for this log, with
//! the consistency proof from there. A `409 Conflict` names the size the witness really holds:
//! the request is made again once from that size (the protocol, not a retry loop).
//!
//! What each answer means:
//! - a cosignature: added to the note;
//! - no answer within the timeout, a connection error, a server error, an answer that is not a
//!   valid cosignature: a failure, logged at warn; the witness rests for a backoff period
//!   (doubling while it stays down), so a dead witness costs the cadence nothing;
//! - a refusal (`400`, `403`, `404`, `422`, …) or a witness that has cosigned more of this log
//!   than the checkpoint holds: an alarm, logged at error, counted in the status and the
//!   metrics. The witness is not asked again for a long rest — not retried in a loop.
//!
//! Witnesses never block: the note is stored with the cosignatures that came in time.

use std::time::Duration;

use super::metrics::Metrics;
use futures_util::future::join_all;
use serde::Serialize;
use tokio::sync::RwLock;
use tokio::time::Instant;

use crate::note::SignedCheckpoint;
use crate::tree::{Hash, Tree};
use crate::witness::{add_signature_lines, WitnessClient, WitnessError};

/// Longest rest of a witness that is down, and the rest of one that refused, in backoffs.
const LONG_REST: u32 = 32;

/// One witness as the checkpointer sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WitnessStatus {
    /// The witness key's name.
    pub name: String,
    /// Where it is asked.
    pub url: String,
    /// The size it last cosigned for this log, as far as this run knows.
    pub cosigned_size: Option<u64>,
    /// Cosignatures it gave this run.
    pub cosignatures: u64,
    /// Refusals this run: each one an alarm.
    pub refusals: u64,
    /// Failures to answer this run (down, timed out, bad answers).
    pub failures: u64,
    /// Whether its last answer was a refusal.
    pub alarm: bool,
    /// Whether it is resting (not asked) after a failure or refusal.
    pub resting: bool,
    /// What went wrong the last time, if its last answer was not a cosignature.
    pub last_error: Option<String>,
}

impl WitnessStatus {
    /// The status of a witness not asked yet.
    pub fn of(client: &WitnessClient) -> Self {
        WitnessStatus {
            name: client.name().to_owned(),
            url: client.url().to_owned(),
            ..WitnessStatus::default()
        }
    }
}

/// How one witness answered one checkpoint.
enum Answer {
    /// Its cosignature line.
    Cosigned(String),
    /// It refused, or holds more of this log than the checkpoint: an alarm.
    Refused(String),
    /// It did not answer usefully.
    Failed(String),
}

struct Entry {
    client: WitnessClient,
    status: WitnessStatus,
    /// The size to send as `old`: what it last cosigned for us (0 before we know).
    old: u64,
    rest_until: Option<Instant>,
    failures_in_a_row: u32,
}

/// The configured witnesses and what the checkpointer knows of each.
pub(super) struct Witnesses {
    entries: Vec<Entry>,
    timeout: Duration,
    backoff: Duration,
    quorum: usize,
    metrics: Metrics,
}

/// The consistency proof a witness needs from `old` to `new` (none from 0 or to the same size).
async fn proof(tree: &RwLock<Tree>, old: u64, new: u64) -> Result<Vec<Hash>, String> {
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    tree.read()
        .await
        .consistency_proof(old, new)
        .map_err(|e| format!("no consistency proof from {old} to {new}: {e}"))
}

/// Asks one witness, handling one conflict; returns the answer and the size it was asked from.
async fn ask(
    client: &WitnessClient,
    tree: &RwLock<Tree>,
    old: u64,
    signed: &SignedCheckpoint,
    timeout: Duration,
) -> (Answer, u64) {
    let size = signed.checkpoint.size;
    let deadline = Instant::now() + timeout;
    let mut old = old.min(size);
    let mut conflicted = false;
    loop {
        let proof = match proof(tree, old, size).await {
            Ok(p) => p,
            Err(e) => return (Answer::Failed(e), old),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = client.add_checkpoint(old, &proof, &signed.note, left).await;
        return match answer {
            Ok(line) => (Answer::Cosigned(line), old),
            Err(WitnessError::Conflict { size: held }) if held > size => (
                Answer::Refused(format!(
                    "the witness has cosigned size {held} of this log, more than the {size} \
                     signed now: the log was rolled back or forked"
                )),
                old,
            ),
            Err(WitnessError::Conflict { size: held }) if !conflicted && held != old => {
                conflicted = true;
                old = held;
                continue;
            }
            Err(WitnessError::Refused { status, body }) if status < 500 => (
                Answer::Refused(format!("refused with {status}: {body}")),
                old,
            ),
            Err(e) => (Answer::Failed(e.to_string()), old),
        };
    }
}

impl Witnesses {
    /// The witnesses of `clients`; each has `timeout` to answer and rests `backoff` at first.
    pub(super) fn new(
        clients: Vec<WitnessClient>,
        quorum: usize,
        timeout: Duration,
        backoff: Duration,
        metrics: Metrics,
    ) -> Self {
        for client in &clients {
            metrics.witness_configured(&WitnessStatus::of(client).name);
        }
        Witnesses {
            entries: clients
                .into_iter()
                .map(|client| Entry {
                    status: WitnessStatus::of(&client),
                    client,
                    old: 0,
                    rest_until: None,
                    failures_in_a_row: 0,
                })
                .collect(),
            timeout,
            backoff,
            quorum,
            metrics,
        }
    }

    /// Whether any witness is configured.
    pub(super) fn any(&self) -> bool {
        !self.entries.is_empty()
    }

    /// Learns from the latest stored note which witnesses cosigned it (and so at what size to
    /// start asking them).
    pub(super) fn start_from(&mut self, latest: Option<&SignedCheckpoint>) {
        let Some(latest) = latest else {
            return;
        };
        for entry in &mut self.entries {
            if entry.client.verifier().verify(&latest.note).is_ok() {
                entry.old = latest.checkpoint.size;
                entry.status.cosigned_size = Some(latest.checkpoint.size);
            }
            self.metrics
                .witness_cosigned_size(&entry.status.name, entry.status.cosigned_size);
        }
    }

    /// The status of every witness.
    pub(super) fn statuses(&self) -> Vec<WitnessStatus> {
        let now = Instant::now();
        self.entries
            .iter()
            .map(|e| WitnessStatus {
                resting: e.rest_until.is_some_and(|t| t > now),
                ..e.status.clone()
            })
            .collect()
    }

    /// Asks every witness not resting to cosign `signed`, at once, and returns the note with
    /// the cosignatures that came in time, and how many there are.
    pub(super) async fn cosign(
        &mut self,
        tree: &RwLock<Tree>,
        signed: SignedCheckpoint,
    ) -> (SignedCheckpoint, usize) {
        if self.entries.is_empty() {
            return (signed, 0);
        }
        let now = Instant::now();
        let size = signed.checkpoint.size;
        let asked: Vec<bool> = self
            .entries
            .iter()
            .map(|e| e.rest_until.is_none_or(|t| t <= now))
            .collect();
        let answers = join_all(self.entries.iter().zip(&asked).map(|(e, &ask_it)| {
            let timeout = self.timeout;
            let signed = &signed;
            async move {
                if ask_it {
                    Some(ask(&e.client, tree, e.old, signed, timeout).await)
                } else {
                    None
                }
            }
        }))
        .await;
        let mut lines = Vec::new();
        for (entry, answer) in self.entries.iter_mut().zip(answers) {
            let Some((answer, old)) = answer else {
                continue;
            };
            let name = entry.status.name.clone();
            match answer {
                Answer::Cosigned(line) => {
                    lines.push(line);
                    entry.old = size;
                    entry.rest_until = None;
                    entry.failures_in_a_row = 0;
                    let s = &mut entry.status;
                    s.cosigned_size = Some(size);
                    s.cosignatures += 1;
                    s.alarm = false;
                    s.last_error = None;
                    self.metrics.witness_answer(&name, "cosigned");
                    self.metrics.witness_cosigned_size(&name, Some(size));
                    tracing::debug!(witness = %name, size, old, "cosigned");
                }
                Answer::Refused(reason) => {
                    entry.rest_until = Some(Instant::now() + self.backoff * LONG_REST);
                    let s = &mut entry.status;
                    s.refusals += 1;
                    s.alarm = true;
                    s.last_error = Some(reason.clone());
                    self.metrics.witness_answer(&name, "refused");
                    tracing::error!(
                        witness = %name,
                        url = %entry.client.url(),
                        size,
                        old,
                        reason = %reason,
                        "a witness refused to cosign the checkpoint"
                    );
                }
                Answer::Failed(reason) => {
                    entry.failures_in_a_row = entry.failures_in_a_row.saturating_add(1);
                    let doubling = 1u32 << entry.failures_in_a_row.saturating_sub(1).min(5);
                    let rest = self.backoff * doubling.min(LONG_REST);
                    entry.rest_until = Some(Instant::now() + rest);
                    let s = &mut entry.status;
                    s.failures += 1;
                    s.alarm = false;
                    s.last_error = Some(reason.clone());
                    self.metrics.witness_answer(&name, "failed");
                    tracing::warn!(
                        witness = %name,
                        url = %entry.client.url(),
                        size,
                        error = %reason,
                        rest_ms = u64::try_from(rest.as_millis()).unwrap_or(u64::MAX),
                        "a witness did not cosign the checkpoint; it is not asked again for a while"
                    );
                }
            }
        }
        let count = lines.len();
        if count < self.quorum {
            tracing::warn!(
                size,
                cosignatures = count,
                quorum = self.quorum,
                "the checkpoint is stored with fewer cosignatures than the witness quorum"
            );
        }
        self.metrics.checkpoint_cosignatures(count, self.quorum);
        if lines.is_empty() {
            return (signed, 0);
        }
        match add_signature_lines(&signed.note, &lines) {
            Ok(note) => (
                SignedCheckpoint {
                    checkpoint: signed.checkpoint,
                    note,
                },
                count,
            ),
            Err(e) => {
                tracing::error!(size, error = %e, "cannot add the cosignatures to the note");
                (signed, 0)
            }
        }
    }
}
