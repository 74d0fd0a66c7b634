//! [`CheckpointStore`]: the signed checkpoints, in signing order, in the deployment's audit
//! records ([`docket_log::records`]: files in `<data dir>/audit/`, or the JetStream stream
//! `DOCKET_AUDIT`). Each record is a checkpoint's signed note text, verbatim (UTF-8), so what a
//! receipt or an auditor quotes is byte for byte what was stored.
//!
//! The checkpointer only ever stores checkpoints of growing size, so sizes increase with the
//! sequence number; [`CheckpointStore::first_covering`] relies on it.

use bytes::Bytes;
use docket_log::{AnyRecords, Records};

use crate::error::AuditError;
use crate::note::{Checkpoint, CheckpointVerifier, NoteError, SignedCheckpoint};

/// A checkpoint as stored: its sequence number in the store and the checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredCheckpoint {
    /// Its sequence number in the store (1-based).
    pub sequence: u64,
    /// The checkpoint and its note text.
    pub signed: SignedCheckpoint,
}

/// Reads the checkpoint in a signed note without checking any signature: for notes this
/// process wrote itself, or to show what an unverifiable note claims.
pub fn parse_unverified(note_text: &str) -> Result<SignedCheckpoint, NoteError> {
    let note = signed_note::Note::from_bytes(note_text.as_bytes())
        .map_err(|e| NoteError::Malformed(e.to_string()))?;
    let parsed = tlog_tiles::Checkpoint::from_bytes(note.text())
        .map_err(|e| NoteError::Malformed(e.to_string()))?;
    Ok(SignedCheckpoint {
        checkpoint: Checkpoint {
            origin: parsed.origin().to_owned(),
            size: parsed.size(),
            root: *parsed.hash(),
        },
        note: note_text.to_owned(),
    })
}

/// The store of signed checkpoints over a [`Records`] store.
#[derive(Clone, Debug)]
pub struct CheckpointStore<R = AnyRecords> {
    records: R,
}

/// Records read per request by [`CheckpointStore::all`].
const READ_BATCH: usize = 256;

impl<R: Records> CheckpointStore<R> {
    /// The store over `records`.
    pub fn new(records: R) -> Self {
        CheckpointStore { records }
    }

    /// The records underneath.
    pub fn records(&self) -> &R {
        &self.records
    }

    /// Appends a signed checkpoint (its note text, verbatim); returns its sequence number.
    pub async fn append(&self, checkpoint: &SignedCheckpoint) -> Result<u64, AuditError> {
        Ok(self
            .records
            .append(Bytes::from(checkpoint.note.clone().into_bytes()))
            .await?)
    }

    fn decode(
        sequence: u64,
        bytes: &[u8],
        verifier: Option<&CheckpointVerifier>,
    ) -> Result<StoredCheckpoint, AuditError> {
        let bad = |reason: String| AuditError::BadStoredCheckpoint { sequence, reason };
        let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
        let signed = match verifier {
            Some(v) => v.open(text),
            None => parse_unverified(text),
        }
        .map_err(|e| bad(e.to_string()))?;
        Ok(StoredCheckpoint { sequence, signed })
    }

    /// The latest stored checkpoint, checked against `verifier` if one is given (else only
    /// parsed), or `None` while the store is empty.
    pub async fn latest(
        &self,
        verifier: Option<&CheckpointVerifier>,
    ) -> Result<Option<StoredCheckpoint>, AuditError> {
        self.records
            .last()
            .await?
            .map(|(sequence, bytes)| Self::decode(sequence, &bytes, verifier))
            .transpose()
    }

    /// The checkpoint with sequence number `sequence`, if stored.
    pub async fn get(
        &self,
        sequence: u64,
        verifier: Option<&CheckpointVerifier>,
    ) -> Result<Option<StoredCheckpoint>, AuditError> {
        if sequence == 0 {
            return Ok(None);
        }
        self.records
            .read(sequence - 1, 1)
            .await?
            .into_iter()
            .next()
            .map(|(sequence, bytes)| Self::decode(sequence, &bytes, verifier))
            .transpose()
    }

    /// Every stored checkpoint, oldest first, each checked against `verifier` if given.
    pub async fn all(
        &self,
        verifier: Option<&CheckpointVerifier>,
    ) -> Result<Vec<StoredCheckpoint>, AuditError> {
        let mut out = Vec::new();
        loop {
            let after = out.last().map_or(0, |c: &StoredCheckpoint| c.sequence);
            let batch = self.records.read(after, READ_BATCH).await?;
            if batch.is_empty() {
                return Ok(out);
            }
            for (sequence, bytes) in batch {
                out.push(Self::decode(sequence, &bytes, verifier)?);
            }
        }
    }

    /// The earliest stored checkpoint whose size is at least `position` (so it covers the
    /// commit at that position), or `None` if none does yet. A binary search over the store:
    /// a few reads however many checkpoints there are.
    pub async fn first_covering(
        &self,
        position: u64,
        verifier: Option<&CheckpointVerifier>,
    ) -> Result<Option<StoredCheckpoint>, AuditError> {
        let Some(last) = self.latest(verifier).await? else {
            return Ok(None);
        };
        if last.signed.checkpoint.size < position {
            return Ok(None);
        }
        // Invariant: the checkpoint at `high` covers the position; those at or below `low` do
        // not (sequence 0 standing for "none").
        let (mut low, mut high) = (0u64, last.sequence);
        let mut found = last;
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            let checkpoint =
                self.get(mid, verifier)
                    .await?
                    .ok_or_else(|| AuditError::BadStoredCheckpoint {
                        sequence: mid,
                        reason: "missing from the store".into(),
                    })?;
            if checkpoint.signed.checkpoint.size >= position {
                high = mid;
                found = checkpoint;
            } else {
                low = mid;
            }
        }
        Ok(Some(found))
    }
}
