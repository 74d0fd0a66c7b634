//! Receipts: proof, checkable offline by anyone with the log's public key, that the log held a
//! commit — its position, its leaf hash, the log's commit hash, a signed checkpoint and the
//! inclusion proof of the leaf in that checkpoint's tree.
//!
//! The text form is a C2SP `tlog-proof` (`c2sp.org/tlog-proof@v1`):
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 of the 32-byte leaf hash followed by the 32-byte commit hash>
//! index <position - 1, the zero-based leaf index>
//! <one base64 inclusion proof hash per line, leaf's sibling first>
//!
//! <the signed checkpoint note, verbatim>
//! ```
//!
//! The `extra` line carries what the proof alone cannot: the leaf hash (`SHA-256(0x00 ‖ commit
//! bytes)`), which the proof authenticates, and the log's commit hash (`SHA-256(commit bytes)`,
//! what the log's hash chains link to), which binds the receipt to the commit's bytes. The JSON
//! form carries the text plus `position`, `leaf_hash` (base64) and `commit_hash` (lowercase hex,
//! as the log prints it); the fields must agree with the text.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use docket_log::{CommitHash, RecordedCommit};
use serde::{Deserialize, Serialize};

use crate::checkpointer::CheckpointerHandle;
use crate::error::AuditError;
use crate::note::{Checkpoint, CheckpointVerifier, SignedCheckpoint};
use crate::tree::{leaf_hash, verify_consistency, verify_inclusion, Hash, Tree, HASH_SIZE};

/// The first line of a receipt's text form.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";

/// Proof that the log held a commit; see the module documentation for its forms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ReceiptJson", into = "ReceiptJson")]
pub struct Receipt {
    /// The commit's position in the log (1-based; leaf index `position - 1`).
    pub position: u64,
    /// The commit's leaf hash, `SHA-256(0x00 ‖ commit bytes)`.
    pub leaf_hash: Hash,
    /// The log's hash of the commit, `SHA-256(commit bytes)` (hex in the text forms).
    pub commit_hash: CommitHash,
    /// The signed checkpoint note the proof leads to, verbatim.
    pub checkpoint: String,
    /// The inclusion proof (RFC 9162 §2.1.3), from the leaf's sibling up.
    pub proof: Vec<Hash>,
}

/// The JSON form of a [`Receipt`].
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ReceiptJson {
    position: u64,
    leaf_hash: String,
    commit_hash: String,
    tlog_proof: String,
}

impl From<Receipt> for ReceiptJson {
    fn from(r: Receipt) -> Self {
        ReceiptJson {
            position: r.position,
            leaf_hash: r.leaf_hash.to_string(),
            commit_hash: r.commit_hash.to_string(),
            tlog_proof: r.to_text(),
        }
    }
}

impl TryFrom<ReceiptJson> for Receipt {
    type Error = AuditError;

    fn try_from(j: ReceiptJson) -> Result<Self, AuditError> {
        let receipt = Receipt::from_text(&j.tlog_proof)?;
        if receipt.position != j.position
            || receipt.leaf_hash.to_string() != j.leaf_hash
            || receipt.commit_hash.to_string() != j.commit_hash
        {
            return Err(bad(
                "position, leaf_hash or commit_hash differ from the tlog_proof text",
            ));
        }
        Ok(receipt)
    }
}

fn bad(reason: impl Into<String>) -> AuditError {
    AuditError::Receipt(reason.into())
}

fn decode_hash(what: &str, text: &str) -> Result<Hash, AuditError> {
    let bytes = BASE64
        .decode(text.trim_end_matches('\r'))
        .map_err(|e| bad(format!("{what}: not base64: {e}")))?;
    let array: [u8; HASH_SIZE] = bytes
        .try_into()
        .map_err(|_| bad(format!("{what}: not a 32-byte hash")))?;
    Ok(Hash(array))
}

impl Receipt {
    /// The receipt of `commit`: a checkpoint covering it from the checkpointer (the latest, or
    /// the next of its cadence) and the inclusion proof in that checkpoint's tree.
    pub async fn build(
        handle: &CheckpointerHandle,
        commit: &RecordedCommit,
    ) -> Result<Receipt, AuditError> {
        let receipt = Self::for_position(handle, commit.position, commit.hash()).await?;
        if receipt.leaf_hash != leaf_hash(&commit.bytes) {
            return Err(bad(format!(
                "the tree holds another commit at position {}",
                commit.position
            )));
        }
        Ok(receipt)
    }

    /// The receipt of the commit at `position` whose hash (as the append returned it) is
    /// `commit_hash`, without reading the commit: the leaf comes from the checkpointer's tree,
    /// which hashed the commit's bytes from the log.
    pub async fn for_position(
        handle: &CheckpointerHandle,
        position: u64,
        commit_hash: CommitHash,
    ) -> Result<Receipt, AuditError> {
        let checkpoint = handle.checkpoint_covering(position).await?;
        let proof = handle
            .inclusion_proof(position, checkpoint.checkpoint.size)
            .await?;
        Receipt {
            position,
            leaf_hash: handle.leaf(position).await?,
            commit_hash,
            checkpoint: checkpoint.note,
            proof,
        }
        .checked(&checkpoint.checkpoint)
    }

    /// Checks the proof against the checkpoint before the receipt is handed out, so a damaged
    /// tree never yields a receipt that will not verify.
    fn checked(self, checkpoint: &Checkpoint) -> Result<Receipt, AuditError> {
        verify_inclusion(
            &self.proof,
            checkpoint.size,
            checkpoint.root,
            self.position,
            self.leaf_hash,
        )
        .map_err(|e| bad(format!("the tree gave a proof that does not verify: {e}")))?;
        Ok(self)
    }

    /// The receipt of `commit` against `checkpoint`, with the proof from `tree` (which must hold
    /// at least the checkpoint's size).
    pub fn from_tree(
        tree: &Tree,
        checkpoint: &SignedCheckpoint,
        commit: &RecordedCommit,
    ) -> Result<Receipt, AuditError> {
        let leaf = leaf_hash(&commit.bytes);
        if tree.leaf(commit.position)? != leaf {
            return Err(bad(format!(
                "the tree holds another commit at position {}",
                commit.position
            )));
        }
        let size = checkpoint.checkpoint.size;
        if tree.root_at(size)? != checkpoint.checkpoint.root {
            return Err(bad(format!(
                "the tree's root at size {size} is not the checkpoint's"
            )));
        }
        Receipt {
            position: commit.position,
            leaf_hash: leaf,
            commit_hash: commit.hash(),
            checkpoint: checkpoint.note.clone(),
            proof: tree.inclusion_proof(commit.position, size)?,
        }
        .checked(&checkpoint.checkpoint)
    }

    /// Whether this receipt is for exactly these commit bytes (leaf hash and commit hash).
    pub fn check_commit(&self, commit_bytes: &[u8]) -> Result<(), AuditError> {
        if leaf_hash(commit_bytes) != self.leaf_hash {
            return Err(bad("the commit's leaf hash is not the receipt's"));
        }
        if CommitHash::of(commit_bytes) != self.commit_hash {
            return Err(bad("the commit's hash is not the receipt's"));
        }
        Ok(())
    }

    /// The C2SP `tlog-proof` text form.
    pub fn to_text(&self) -> String {
        let mut extra = Vec::with_capacity(2 * HASH_SIZE);
        extra.extend_from_slice(&self.leaf_hash.0);
        extra.extend_from_slice(&self.commit_hash.0);
        let mut out = format!(
            "{TLOG_PROOF_HEADER}\nextra {}\nindex {}\n",
            BASE64.encode(extra),
            self.position.saturating_sub(1)
        );
        for h in &self.proof {
            out.push_str(&h.to_string());
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parses the text form. Only the form is checked here; [`verify_receipt`] checks the rest.
    pub fn from_text(text: &str) -> Result<Receipt, AuditError> {
        let (head, note) = text
            .split_once("\n\n")
            .ok_or_else(|| bad("no empty line before the checkpoint"))?;
        let mut lines = head.lines();
        if lines.next() != Some(TLOG_PROOF_HEADER) {
            return Err(bad(format!("the first line is not {TLOG_PROOF_HEADER}")));
        }
        let mut line = lines.next().ok_or_else(|| bad("no index line"))?;
        let extra = match line.strip_prefix("extra ") {
            Some(extra) => {
                line = lines.next().ok_or_else(|| bad("no index line"))?;
                BASE64
                    .decode(extra)
                    .map_err(|e| bad(format!("extra: not base64: {e}")))?
            }
            None => Vec::new(),
        };
        if extra.len() != 2 * HASH_SIZE {
            return Err(bad(
                "the extra data must be the leaf hash and the commit hash (64 bytes)",
            ));
        }
        let index = line
            .strip_prefix("index ")
            .filter(|i| *i == "0" || !i.starts_with('0'))
            .and_then(|i| i.parse::<u64>().ok())
            .ok_or_else(|| bad(format!("expected `index <decimal>`, found {line:?}")))?;
        let proof = lines
            .enumerate()
            .map(|(i, l)| decode_hash(&format!("proof hash {}", i + 1), l))
            .collect::<Result<Vec<_>, _>>()?;
        let mut leaf = [0u8; HASH_SIZE];
        leaf.copy_from_slice(&extra[..HASH_SIZE]);
        let mut commit = [0u8; HASH_SIZE];
        commit.copy_from_slice(&extra[HASH_SIZE..]);
        Ok(Receipt {
            position: index
                .checked_add(1)
                .ok_or_else(|| bad("index out of range"))?,
            leaf_hash: Hash(leaf),
            commit_hash: CommitHash(commit),
            checkpoint: note.to_owned(),
            proof,
        })
    }
}

/// What a receipt that verified shows.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedReceipt {
    /// The commit's position.
    pub position: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
    /// The log's hash of it.
    pub commit_hash: CommitHash,
    /// The checkpoint whose tree includes it.
    pub checkpoint: Checkpoint,
    /// The later checkpoint shown consistent with it, if one was given.
    pub later: Option<Checkpoint>,
}

/// Verifies a receipt: the checkpoint's signature by `verifier`'s key, the inclusion of the
/// leaf at the position in the checkpoint's tree, and, if `later` gives a later signed
/// checkpoint note and the consistency proof from the receipt's checkpoint to it, that the log
/// only grew in between (so the commit is still in the log the later checkpoint describes).
pub fn verify_receipt(
    receipt: &Receipt,
    verifier: &CheckpointVerifier,
    later: Option<(&str, &[Hash])>,
) -> Result<VerifiedReceipt, AuditError> {
    let signed = verifier.open(&receipt.checkpoint)?;
    let cp = signed.checkpoint;
    verify_inclusion(
        &receipt.proof,
        cp.size,
        cp.root,
        receipt.position,
        receipt.leaf_hash,
    )
    .map_err(|e| {
        bad(format!(
            "the leaf at position {} is not in the checkpoint of size {}: {e}",
            receipt.position, cp.size
        ))
    })?;
    let later = match later {
        None => None,
        Some((note, proof)) => {
            let newer = verifier.open(note)?.checkpoint;
            if newer.size < cp.size {
                return Err(bad(format!(
                    "the later checkpoint (size {}) is older than the receipt's (size {})",
                    newer.size, cp.size
                )));
            }
            verify_consistency(proof, cp.size, cp.root, newer.size, newer.root).map_err(|e| {
                bad(format!(
                    "the later checkpoint (size {}) is not consistent with the receipt's \
                     (size {}): {e}",
                    newer.size, cp.size
                ))
            })?;
            Some(newer)
        }
    };
    Ok(VerifiedReceipt {
        position: receipt.position,
        leaf_hash: receipt.leaf_hash,
        commit_hash: receipt.commit_hash,
        checkpoint: cp,
        later,
    })
}
