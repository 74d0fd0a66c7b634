//! Offline verification of an export ([`crate::export`]): reads the file set only, never
//! panics, and judges integrity first. In one pass over the commits, in log order:
//!
//! - the **integrity checks**: the frame's checksums (`checksum`, which also covers a truncated
//!   segment), positions dense (`position`), the commit decodes (`decode`), its stream link
//!   names the previous commit of its stream by position and hash, or none for the stream's
//!   first (`hash_chain`); its leaf joins the Merkle tree, and every checkpoint of that size is
//!   checked: signed by the log's key (`checkpoint_signature`), root equal to the tree's
//!   (`checkpoint_root`), consistent with the previous checkpoint (`checkpoint_consistency`, by
//!   a proof built from the tree and checked with [`verify_consistency`]). The first integrity
//!   failure ends the pass;
//! - the **process rules** ([`crate::rules`]), until the first rule failure: from then on only
//!   the integrity checks run, so a rule failure never hides tampering later in the log (a
//!   decision whose officer was changed is reported as the `checkpoint_root` of the checkpoint
//!   that covers it, with the rule failure listed after it).
//!
//! After the last commit, if the integrity checks held: checkpoints beyond the head
//! (`checkpoint_size`; the first one beyond is allowed with the consistency proof from the head
//! to it, `checkpoints/<head>-<M>.consistency`, which must verify, `checkpoint_consistency`),
//! deadlines left running (the rules' `finish`), the **anchors** ([`Anchors`], rule `anchor`):
//! every trusted checkpoint must be one the export shows it is consistent with, and with
//! witness keys the export must hold a checkpoint cosigned by the quorum covering its head;
//! the **manifest** (`manifest`): every field of `MANIFEST.json` derived from the commits is
//! recomputed and compared, and `MANIFEST.note` ([`crate::export::manifest`]) must be signed by
//! the log's key and name the export's origin, head, root and the SHA-256 of `MANIFEST.json`;
//! and the **coverage** (`coverage`): an export with no checkpoint never verifies, and commits
//! past the last signed checkpoint fail unless [`VerifyOptions::allow_unsigned_tail`].
//!
//! The verdict ([`Report::first_failure`]) names an integrity failure (in that order: the
//! pass's, then checkpoints beyond the head, anchors, manifest, coverage) in preference to a
//! process-rule failure; [`Report::failures`] lists every failure found. [`Report::coverage`]
//! says what the verdict rests on: signed and witnessed sizes against the head, the anchors
//! checked, and the gaps between checkpoints longer than the cadence the deployment declared in
//! the log (stream `audit/checkpointer`, event `audit.checkpoint_cadence`): evidence of
//! checkpoints withheld, reported, not failed.
//!
//! Hashing is the cost (the commit hash and the leaf hash of every commit): commits are read in
//! chunks whose hashing and decoding is spread over threads, and the chain, the tree and the
//! rules are then applied in order.

mod anchors;
mod checkpoints;
mod coverage;
mod manifest;
mod pass;
mod read;
mod report;

use std::path::Path;
use std::time::Instant;

use docket_domain::policy::PolicySet;
use docket_log::file::export::{ReadError, SegmentReader};

pub use report::{
    AnchorCheck, AnchorKind, CadenceDeclaration, Coverage, Failure, Gap, Report, WitnessSeen,
};

use crate::export::SEGMENTS_DIR;
use crate::note::CheckpointVerifier;
use crate::rules::RuleChecker;
use crate::tree::{verify_consistency, Tree};
use crate::witness::CosignatureVerifier;
use pass::Pass;
use read::{hash_chunk, read_chunk, read_failure, Hashed};

/// Rule: a frame's checksums (or a frame cut short).
pub const CHECKSUM: &str = "checksum";
/// Rule: a commit's bytes decode.
pub const DECODE: &str = "decode";
/// Rule: positions are dense from 1.
pub const POSITION: &str = "position";
/// Rule: each stream's hash chain.
pub const HASH_CHAIN: &str = "hash_chain";
/// Rule: a checkpoint is signed by the given key.
pub const CHECKPOINT_SIGNATURE: &str = "checkpoint_signature";
/// Rule: a checkpoint's size is within the export (or just beyond it, with a proof).
pub const CHECKPOINT_SIZE: &str = "checkpoint_size";
/// Rule: a checkpoint's root is the root of the commits up to its size.
pub const CHECKPOINT_ROOT: &str = "checkpoint_root";
/// Rule: consecutive checkpoints are consistent.
pub const CHECKPOINT_CONSISTENCY: &str = "checkpoint_consistency";
/// Rule: the manifest is signed, and every field derived from the commits is theirs.
pub const MANIFEST: &str = "manifest";
/// Rule: the export is consistent with every anchor the auditor holds.
pub const ANCHOR: &str = "anchor";
/// Rule: a signed checkpoint covers the export (its head, unless an unsigned tail is allowed).
pub const COVERAGE: &str = "coverage";

/// What the auditor holds that the export's author does not control.
#[derive(Clone, Debug, Default)]
pub struct Anchors {
    /// Witnesses' cosignature verifiers: only checkpoints cosigned by `quorum` of them anchor
    /// the export.
    pub witnesses: Vec<CosignatureVerifier>,
    /// How many of `witnesses` must cosign (0: all of them).
    pub quorum: usize,
    /// Checkpoint notes the auditor got elsewhere (a witness, a receipt, an earlier audit);
    /// each must be signed by the log's key, and the export must show it is consistent with it.
    pub trusted: Vec<String>,
}

impl Anchors {
    /// True when there is nothing to anchor to.
    pub fn is_empty(&self) -> bool {
        self.witnesses.is_empty() && self.trusted.is_empty()
    }

    /// The quorum in force: `quorum`, or all the witnesses for 0.
    pub fn effective_quorum(&self) -> usize {
        if self.quorum == 0 {
            self.witnesses.len()
        } else {
            self.quorum
        }
    }
}

/// How to verify.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Check the process rules (default true).
    pub process_rules: bool,
    /// Time allowed after a deadline's due time before its miss must be on record (default
    /// zero).
    pub deadline_grace: chrono::Duration,
    /// The policy versions to judge decisions by (default: the shipped ones).
    pub policies: Option<PolicySet>,
    /// Threads for hashing (default: the machine's parallelism).
    pub threads: Option<usize>,
    /// The auditor's anchors (default none: the verdict then rests on the export's own
    /// checkpoints, and says so).
    pub anchors: Anchors,
    /// Accept commits past the last signed (or, with witnesses, cosigned) checkpoint, and
    /// report them (default false: they fail `coverage`, or `anchor`).
    pub allow_unsigned_tail: bool,
    /// Require `MANIFEST.note` signed by the log's key (default true; false only for an
    /// export the verifier just made itself, as `docket audit verify --nats` does, whose
    /// manifest fields are still recomputed and compared).
    pub manifest_signed: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            process_rules: true,
            deadline_grace: chrono::Duration::zero(),
            policies: None,
            threads: None,
            anchors: Anchors::default(),
            allow_unsigned_tail: false,
            manifest_signed: true,
        }
    }
}

pub(crate) fn failure(position: u64, rule: &str, message: String) -> Failure {
    Failure {
        position,
        rule: rule.to_owned(),
        message,
    }
}

/// Verifies the export in `dir` against the log's public key. Reads only; never panics.
pub fn verify(dir: &Path, verifier: &CheckpointVerifier, options: &VerifyOptions) -> Report {
    verify_with_tree(dir, verifier, options).0
}

/// [`verify`], also returning the Merkle tree it built over the commits it checked (for
/// proofs against the export's checkpoints).
pub fn verify_with_tree(
    dir: &Path,
    verifier: &CheckpointVerifier,
    options: &VerifyOptions,
) -> (Report, Tree) {
    let started = Instant::now();
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let mut p = Pass::new(verifier, &options.anchors);
    let stream = run(dir, options, threads, &mut p);
    let stopped = stream.as_ref().err().cloned();
    match stream {
        Ok(()) => p.finish(dir, options),
        Err(f) => p.failures.push(f),
    }
    let report = p.report(dir, options, stopped.as_ref(), started.elapsed());
    (report, p.tree)
}

/// The pass over the commits: Err is the integrity failure that ended it.
fn run(
    dir: &Path,
    options: &VerifyOptions,
    threads: usize,
    p: &mut Pass<'_>,
) -> Result<(), Failure> {
    p.load_checkpoints(dir)?;
    if options.process_rules {
        let policies = match &options.policies {
            Some(p) => p.clone(),
            None => PolicySet::shipped()
                .map_err(|e| failure(0, "policy", format!("loading the shipped policy: {e}")))?,
        };
        p.rules = Some(RuleChecker::new(policies, options.deadline_grace));
    }
    // A checkpoint of the empty tree.
    p.checkpoints_at(0, None)?;
    let segments = dir.join(SEGMENTS_DIR);
    let mut reader =
        SegmentReader::open(&segments).map_err(|e| failure(e.position, CHECKSUM, e.reason))?;
    if reader.segments().is_empty() {
        return Err(failure(
            1,
            POSITION,
            format!("no segment files in {}", segments.display()),
        ));
    }
    p.segments = reader.segments().len() as u64;
    if threads <= 1 {
        loop {
            let (chunk, read_error, last) = read_chunk(&mut reader);
            for h in hash_chunk(chunk, 1) {
                p.commit(h)?;
            }
            if let Some(e) = read_error {
                return Err(read_failure(e));
            }
            if last {
                break;
            }
        }
        return Ok(());
    }
    // A reader thread reads, hashes and decodes chunks (on `threads - 1` threads); this one
    // applies them in order: chain, tree, checkpoints, rules.
    let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<Hashed>, Option<ReadError>)>(2);
    let hashers = threads - 1;
    std::thread::scope(|scope| {
        scope.spawn(move || loop {
            let (chunk, read_error, last) = read_chunk(&mut reader);
            let hashed = hash_chunk(chunk, hashers);
            // A closed channel means the checks stopped at a failure.
            if tx.send((hashed, read_error)).is_err() || last {
                break;
            }
        });
        for (hashed, read_error) in rx {
            for h in hashed {
                p.commit(h)?;
            }
            if let Some(e) = read_error {
                return Err(read_failure(e));
            }
        }
        Ok(())
    })
}

/// Checks a consistency proof between two roots, as text for a failure message.
fn consistent(
    proof: &[crate::tree::Hash],
    old: (u64, crate::tree::Hash),
    new: (u64, crate::tree::Hash),
) -> Result<(), String> {
    verify_consistency(proof, old.0, old.1, new.0, new.1).map_err(|e| e.to_string())
}
