//! The audit queries, as wire types: the four questions the audit service (`Service::Audit`,
//! micro service `docket-audit`) answers on `docket.cmd.audit.<query>`, each a typed request and
//! a typed answer. They travel like commands — the same [`crate::transport`] path over NATS and
//! in process, the same headers, size limit, panic guard and error replies:
//!
//! | subject | request | answer |
//! |---|---|---|
//! | `docket.cmd.audit.checkpoint` | [`CheckpointRequest`] `{}` or `{"covering": P}` | [`CheckpointAnswer`] |
//! | `docket.cmd.audit.inclusion_proof` | [`InclusionRequest`] `{"position": P, "size": N}` | [`InclusionAnswer`] |
//! | `docket.cmd.audit.consistency_proof` | [`ConsistencyRequest`] `{"old": M, "new": N}` | [`ConsistencyAnswer`] |
//! | `docket.cmd.audit.receipt` | [`ReceiptRequest`] `{"position": P}` | [`crate::Receipt`] |
//!
//! Who may ask: anyone who can reach the subject (`docs/api.md`): proofs exist to be checked by
//! people who do not trust the operator. A `Docket-Actor` header, when sent, must verify.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::catalogue::Service;
use crate::codec::Receipt;

/// One of the audit service's queries: its catalogue entry, beside `CommandKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueryKind {
    /// The latest signed checkpoint, or the first covering a position.
    Checkpoint,
    /// The inclusion proof of a commit in the tree of some size.
    InclusionProof,
    /// The consistency proof between two tree sizes.
    ConsistencyProof,
    /// The receipt of a commit.
    Receipt,
}

impl QueryKind {
    /// Every query, in catalogue order.
    pub const ALL: &'static [QueryKind] = &[
        QueryKind::Checkpoint,
        QueryKind::InclusionProof,
        QueryKind::ConsistencyProof,
        QueryKind::Receipt,
    ];

    /// The stable name, which is also its endpoint name, e.g. `inclusion_proof`.
    pub fn name(self) -> &'static str {
        match self {
            QueryKind::Checkpoint => "checkpoint",
            QueryKind::InclusionProof => "inclusion_proof",
            QueryKind::ConsistencyProof => "consistency_proof",
            QueryKind::Receipt => "receipt",
        }
    }

    /// The service that answers it.
    pub fn service(self) -> Service {
        Service::Audit
    }

    /// Its subject, e.g. `docket.cmd.audit.receipt`.
    pub fn subject(self) -> String {
        format!("{}.{}", self.service().subject_prefix(), self.name())
    }
}

impl fmt::Display for QueryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A typed request of an audit query, and the answer it gets.
pub trait Query: Serialize + DeserializeOwned + Send + Sync {
    /// Its catalogue entry.
    const KIND: QueryKind;
    /// What it is answered with.
    type Answer: Serialize + DeserializeOwned + Send;
}

/// `docket.cmd.audit.checkpoint`: the latest checkpoint, or the first covering `covering`
/// (waiting for the cadence's next one if none does yet; nothing is signed for the query).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRequest {
    /// A position the checkpoint must cover.
    #[serde(default)]
    pub covering: Option<u64>,
}

/// One witness of the checkpointer, as it reports it (for the operator, not a proof).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessReport {
    /// The witness key's name.
    pub name: String,
    /// Where the checkpointer asks it.
    #[serde(default)]
    pub url: String,
    /// The size it last cosigned for this log, if known.
    #[serde(default)]
    pub cosigned_size: Option<u64>,
    /// Cosignatures it gave since the checkpointer started.
    #[serde(default)]
    pub cosignatures: u64,
    /// Checkpoints it refused since then: each an alarm.
    #[serde(default)]
    pub refusals: u64,
    /// Checkpoints it did not answer (down, timed out, a bad answer).
    #[serde(default)]
    pub failures: u64,
    /// Whether its last answer was a refusal.
    #[serde(default)]
    pub alarm: bool,
    /// Whether the checkpointer leaves it alone for now after a failure or refusal.
    #[serde(default)]
    pub resting: bool,
    /// What went wrong the last time, if its last answer was not a cosignature.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// The answer to [`CheckpointRequest`]: the signed note and, beside it, the witnesses as the
/// checkpointer sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointAnswer {
    /// The signed (and cosigned) checkpoint note, verbatim.
    pub note: String,
    /// The checkpoint's tree size (also in the note, which is what a checker trusts).
    pub size: u64,
    /// Cosignatures of configured witnesses on the latest checkpoint this run signed.
    pub cosignatures: u64,
    /// How many cosignatures a checkpoint should carry.
    pub witness_quorum: u64,
    /// Each configured witness, in configuration order.
    pub witnesses: Vec<WitnessReport>,
}

impl Query for CheckpointRequest {
    const KIND: QueryKind = QueryKind::Checkpoint;
    type Answer = CheckpointAnswer;
}

/// `docket.cmd.audit.inclusion_proof`: the proof that the commit at `position` is in the tree of
/// `size` commits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionRequest {
    /// The commit's position (1-based).
    pub position: u64,
    /// The tree size.
    pub size: u64,
}

/// The answer to [`InclusionRequest`]; hashes in base64.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionAnswer {
    /// The commit's position.
    pub position: u64,
    /// The tree size.
    pub size: u64,
    /// The commit's leaf hash.
    pub leaf_hash: String,
    /// The tree's root at `size`.
    pub root: String,
    /// The proof (RFC 9162 §2.1.3), from the leaf's sibling up.
    pub proof: Vec<String>,
}

impl Query for InclusionRequest {
    const KIND: QueryKind = QueryKind::InclusionProof;
    type Answer = InclusionAnswer;
}

/// `docket.cmd.audit.consistency_proof`: the proof that the tree of `new` commits extends the
/// tree of `old` commits.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyRequest {
    /// The older size.
    pub old: u64,
    /// The newer size.
    pub new: u64,
}

/// The answer to [`ConsistencyRequest`]; hashes in base64.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyAnswer {
    /// The older size.
    pub old: u64,
    /// The newer size.
    pub new: u64,
    /// The root at `old`.
    pub old_root: String,
    /// The root at `new`.
    pub new_root: String,
    /// The proof (RFC 9162 §2.1.4).
    pub proof: Vec<String>,
}

impl Query for ConsistencyRequest {
    const KIND: QueryKind = QueryKind::ConsistencyProof;
    type Answer = ConsistencyAnswer;
}

/// `docket.cmd.audit.receipt`: the receipt of the commit at `position`.
///
/// With `commit_hash` (hex, what the append returned: the command services send it) the service
/// takes the leaf from its tree and reads nothing from the log; the hash is then the caller's
/// word, as it is the caller's commit. Without it the service reads the commit and checks its
/// leaf.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    /// The commit's position.
    pub position: u64,
    /// The commit's hash as its append returned it, hex.
    #[serde(default)]
    pub commit_hash: Option<String>,
}

impl Query for ReceiptRequest {
    const KIND: QueryKind = QueryKind::Receipt;
    type Answer = Receipt;
}

/// A decoded audit query, as a handler sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditQuery {
    /// [`CheckpointRequest`].
    Checkpoint(CheckpointRequest),
    /// [`InclusionRequest`].
    InclusionProof(InclusionRequest),
    /// [`ConsistencyRequest`].
    ConsistencyProof(ConsistencyRequest),
    /// [`ReceiptRequest`].
    Receipt(ReceiptRequest),
}

impl AuditQuery {
    /// Its catalogue entry.
    pub fn kind(&self) -> QueryKind {
        match self {
            AuditQuery::Checkpoint(_) => QueryKind::Checkpoint,
            AuditQuery::InclusionProof(_) => QueryKind::InclusionProof,
            AuditQuery::ConsistencyProof(_) => QueryKind::ConsistencyProof,
            AuditQuery::Receipt(_) => QueryKind::Receipt,
        }
    }
}

/// A handler's answer to an [`AuditQuery`]; on the wire, only the inner answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AuditAnswer {
    /// [`CheckpointAnswer`].
    Checkpoint(CheckpointAnswer),
    /// [`InclusionAnswer`].
    InclusionProof(InclusionAnswer),
    /// [`ConsistencyAnswer`].
    ConsistencyProof(ConsistencyAnswer),
    /// A receipt.
    Receipt(Receipt),
}

impl AuditAnswer {
    /// The query it answers.
    pub fn kind(&self) -> QueryKind {
        match self {
            AuditAnswer::Checkpoint(_) => QueryKind::Checkpoint,
            AuditAnswer::InclusionProof(_) => QueryKind::InclusionProof,
            AuditAnswer::ConsistencyProof(_) => QueryKind::ConsistencyProof,
            AuditAnswer::Receipt(_) => QueryKind::Receipt,
        }
    }
}
