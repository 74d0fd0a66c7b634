//! Export: a self-contained copy of the log (up to a position) with its signed checkpoints, for
//! an auditor to verify offline with [`crate::verify`].
//!
//! The file set, in one directory:
//! - `segments/`: the commits in segment files of the log's own format (`docs/log-format.md`),
//!   byte for byte as the log stores them, so the directory is also a log `FileLog` opens;
//! - `checkpoints/<size, 20 digits>.note`: each signed checkpoint whose size is at most the
//!   exported head, its note text verbatim, and, when the head is not a checkpoint's size
//!   (`--upto N`), also the first checkpoint beyond it, `<M>.note`, with
//!   `checkpoints/<N>-<M>.consistency` ([`files`]): the consistency proof, computed from the
//!   source log, that the `N` exported commits are a prefix of the tree checkpoint `M` signed
//!   (one base64 hash per line). `verify` checks it, so the export's signed coverage is `N`;
//! - `MANIFEST.json`: [`Manifest`] — format and version, origin, head, first and last commit
//!   times, counts, creation time; every field but the creation time is recomputed by `verify`;
//! - `MANIFEST.note`: the manifest's signature by the log's checkpoint key ([`manifest`]: the
//!   format, origin, head, the Merkle root at the head and the SHA-256 of `MANIFEST.json`), so
//!   whoever lacks the key cannot change the manifest or swap the commits under it.
//!
//! An export of an export passes the source export's checkpoint notes and consistency proofs
//! ([`read_export_checkpoints`]) as [`ExportOptions::checkpoints`] and
//! [`ExportOptions::proofs`].

pub mod files;
pub mod manifest;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use docket_log::file::export::SegmentWriter;
use docket_log::{EventLog, LogError};

pub use files::{
    checkpoint_file_name, consistency_file_name, read_export_checkpoints, ConsistencyProof,
};
pub use manifest::{Manifest, ManifestNote};

use crate::note::CheckpointSigner;
use crate::tree::Tree;

/// The `format` field of every manifest.
pub const EXPORT_FORMAT: &str = "docket-export";
/// The export format version written by this code.
pub const EXPORT_VERSION: u32 = 1;
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "MANIFEST.json";
/// The manifest signature's file name.
pub const MANIFEST_NOTE_FILE: &str = "MANIFEST.note";
/// The directory of segment files.
pub const SEGMENTS_DIR: &str = "segments";
/// The directory of signed checkpoints.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// Segment size of exports.
pub const EXPORT_SEGMENT_BYTES: u64 = 64 << 20;
/// Commits read from the log per batch.
const BATCH: usize = 4096;

/// What to export, besides the log's commits.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExportOptions<'a> {
    /// Signed checkpoint notes (the deployment's, or an export's), in any order.
    pub checkpoints: &'a [String],
    /// Consistency proofs an export being exported again carries (see the module
    /// documentation); the proofs this export needs are computed from the log when it can.
    pub proofs: &'a [ConsistencyProof],
    /// Export commits `1..=upto` only (default: the whole log).
    pub upto: Option<u64>,
    /// The log's checkpoint signer, which signs `MANIFEST.note`. Without one no `MANIFEST.note`
    /// is written, and `verify` refuses the export unless it made the export itself
    /// ([`crate::VerifyOptions::manifest_signed`]).
    pub signer: Option<&'a CheckpointSigner>,
}

/// What [`export`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// The export's directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Bytes of segment files written.
    pub segment_bytes: u64,
    /// Checkpoints given but left out because they are beyond the exported head.
    pub checkpoints_skipped: u64,
    /// The largest size a signed checkpoint covers: its size, or the head when the export
    /// carries the first checkpoint beyond it with a consistency proof.
    pub signed_size: u64,
    /// The checkpoint beyond the head the export carries with a consistency proof, if any.
    pub proof_to: Option<u64>,
    /// Commits after `signed_size`: no signature vouches for them, and `verify` fails the
    /// export unless allowed an unsigned tail.
    pub unsigned_commits: u64,
    /// Whether `MANIFEST.note` was written.
    pub manifest_signed: bool,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The target directory exists and is not empty.
    #[error("{0} is not empty: an export is written into a new or empty directory")]
    NotEmpty(PathBuf),
    /// Reading the log or writing the segments failed.
    #[error("log: {0}")]
    Log(#[from] LogError),
    /// A file could not be written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// A checkpoint text is not a checkpoint, two differ at one size, or one is not the log's.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The log returned something other than the dense positions asked for.
    #[error("the log returned position {got} where {expected} was expected")]
    Gap {
        /// The position expected.
        expected: u64,
        /// The position returned.
        got: u64,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ExportError {
    let context = context.into();
    move |source| ExportError::Io { context, source }
}

/// The origin and size a checkpoint note claims, read without checking its signature (the
/// export carries notes verbatim; [`crate::verify`] checks them).
pub fn note_origin_and_size(note: &str) -> Option<(String, u64)> {
    let mut lines = note.lines();
    let origin = lines.next()?.to_owned();
    let size = lines.next()?.parse().ok()?;
    Some((origin, size))
}

/// A recorded time (microseconds since the epoch) as the manifest writes it.
pub(crate) fn rfc3339(micros: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_micros(micros).map(|t| t.to_rfc3339())
}

fn now_rfc3339() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    rfc3339(micros).unwrap_or_default()
}

/// Checkpoint notes by size.
type Notes<'n> = Vec<(u64, &'n String)>;

/// The checkpoint notes, checked to be of one origin (the signer's, if given) and one note per
/// size, in size order; and that origin.
fn sort_notes<'n>(
    checkpoints: &'n [String],
    signer: Option<&CheckpointSigner>,
) -> Result<(Option<String>, Notes<'n>), ExportError> {
    let mut origin: Option<String> = signer.map(|s| s.origin().to_owned());
    let key = signer
        .map(CheckpointSigner::verifier)
        .transpose()
        .map_err(|e| ExportError::Checkpoint(e.to_string()))?;
    let mut notes: Vec<(u64, &String)> = Vec::new();
    for note in checkpoints {
        // The manifest is signed with the signer's key: the checkpoints must be that key's.
        if let Some(key) = &key {
            key.open(note).map_err(|e| {
                ExportError::Checkpoint(format!(
                    "a checkpoint not signed by the signer key ({}): {e}",
                    note.lines().take(2).collect::<Vec<_>>().join(" ")
                ))
            })?;
        }
        let (o, size) = note_origin_and_size(note).ok_or_else(|| {
            ExportError::Checkpoint(format!(
                "not a checkpoint: {:?}",
                note.lines().next().unwrap_or_default()
            ))
        })?;
        match &origin {
            Some(known) if *known != o => {
                return Err(ExportError::Checkpoint(format!(
                "checkpoints of two origins, {known:?} and {o:?} (the signer key's is the first)"
            )))
            }
            _ => origin = Some(o),
        }
        notes.push((size, note));
    }
    notes.sort_by_key(|(size, _)| *size);
    notes.dedup();
    if let Some(w) = notes.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(ExportError::Checkpoint(format!(
            "two different checkpoints of size {}: the log has forked, export each separately",
            w[0].0
        )));
    }
    Ok((origin, notes))
}

/// Exports the log's commits `1..=upto` (the whole log if `upto` is none or past the head) and
/// the given signed checkpoints whose size is at most that head into `dir`, which must be new
/// or empty; when the head is no checkpoint's size, also the first checkpoint beyond it with
/// the consistency proof to it (computed from the log, or one of `options.proofs`). Signs
/// `MANIFEST.note` with `options.signer`. `progress(done, total)` is called after every batch of
/// commits.
pub async fn export<L: EventLog>(
    log: &L,
    options: &ExportOptions<'_>,
    dir: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<ExportSummary, ExportError> {
    if dir.exists() {
        let mut entries =
            std::fs::read_dir(dir).map_err(io(format!("reading {}", dir.display())))?;
        if entries.next().is_some() {
            return Err(ExportError::NotEmpty(dir.to_path_buf()));
        }
    }
    // Check the checkpoints before writing anything.
    let (origin, notes) = sort_notes(options.checkpoints, options.signer)?;
    let log_head = log.head().await?;
    let head = options.upto.map_or(log_head, |u| u.min(log_head));
    // The first checkpoint beyond the head, when the head is not a checkpoint's size: the
    // proof to it is computed from the log if the log reaches it, else carried.
    let beyond = if head == 0 || notes.iter().any(|(size, _)| *size == head) {
        None
    } else {
        notes.iter().find(|(size, _)| *size > head).copied()
    };
    let carried = beyond.and_then(|(m, _)| {
        options
            .proofs
            .iter()
            .find(|p| (p.old, p.new) == (head, m))
            .cloned()
    });
    let read_to = match (beyond, &carried) {
        (Some((m, _)), None) if m <= log_head => m,
        _ => head,
    };

    let segments_dir = dir.join(SEGMENTS_DIR);
    let mut writer = SegmentWriter::create(&segments_dir, 1, EXPORT_SEGMENT_BYTES)?;
    let mut streams: HashSet<String> = HashSet::new();
    let (mut first_at, mut last_at, mut events) = (None, None, 0u64);
    let mut tree = Tree::new();
    let mut after = 0u64;
    progress(0, head);
    while after < read_to {
        let want = usize::try_from(read_to - after).map_or(BATCH, |left| left.min(BATCH));
        let batch = log.read_all(after, want).await?;
        if batch.is_empty() {
            return Err(ExportError::Gap {
                expected: after + 1,
                got: 0,
            });
        }
        for commit in batch.iter().take(want) {
            if commit.position != after + 1 {
                return Err(ExportError::Gap {
                    expected: after + 1,
                    got: commit.position,
                });
            }
            tree.push_commit(&commit.bytes);
            after = commit.position;
            if after > head {
                continue;
            }
            writer.push(&commit.bytes)?;
            if !streams.contains(commit.commit.stream.as_str()) {
                streams.insert(commit.commit.stream.as_str().to_owned());
            }
            let at = commit.commit.metadata.recorded_at_micros;
            first_at.get_or_insert(at);
            last_at = Some(at);
            events += commit.commit.events.len() as u64;
        }
        progress(after.min(head), head);
    }
    let written = writer.finish()?;
    let proof = match (beyond, carried) {
        (Some(_), Some(carried)) => Some(carried),
        (Some((m, note)), None) if m <= log_head => {
            let claimed = note_root(note)?;
            let root = tree
                .root_at(m)
                .map_err(|e| ExportError::Checkpoint(e.to_string()))?;
            if claimed != root {
                return Err(ExportError::Checkpoint(format!(
                    "the checkpoint of size {m} says root {claimed}; the log's first {m} commits give {root}"
                )));
            }
            let proof = tree
                .consistency_proof(head, m)
                .map_err(|e| ExportError::Checkpoint(e.to_string()))?;
            Some(ConsistencyProof {
                old: head,
                new: m,
                proof,
            })
        }
        _ => None,
    };

    let checkpoints_dir = dir.join(CHECKPOINTS_DIR);
    std::fs::create_dir_all(&checkpoints_dir)
        .map_err(io(format!("creating {}", checkpoints_dir.display())))?;
    let mut kept = 0u64;
    let mut signed_size = 0u64;
    for (size, note) in notes.iter().filter(|(size, _)| *size <= head) {
        let path = checkpoints_dir.join(checkpoint_file_name(*size));
        write_synced(&path, note.as_bytes())?;
        kept += 1;
        signed_size = *size;
    }
    if let (Some(proof), Some((m, note))) = (&proof, beyond) {
        write_synced(
            &checkpoints_dir.join(checkpoint_file_name(m)),
            note.as_bytes(),
        )?;
        write_synced(
            &checkpoints_dir.join(consistency_file_name(proof.old, proof.new)),
            proof.to_text().as_bytes(),
        )?;
        kept += 1;
        signed_size = head;
    }
    sync_dir(&checkpoints_dir)?;

    let manifest = Manifest {
        format: EXPORT_FORMAT.to_owned(),
        version: EXPORT_VERSION,
        origin,
        head,
        first_commit_at: first_at.and_then(rfc3339),
        last_commit_at: last_at.and_then(rfc3339),
        commits: head,
        streams: streams.len() as u64,
        events,
        segments: written.segments as u64,
        checkpoints: kept,
        created_at: now_rfc3339(),
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| ExportError::Io {
        context: "encoding the manifest".into(),
        source: std::io::Error::other(e),
    })?;
    write_marker(&dir.join(MANIFEST_FILE), &text)?;
    if let Some(signer) = options.signer {
        let root = tree
            .root_at(head)
            .map_err(|e| ExportError::Checkpoint(e.to_string()))?;
        let body = ManifestNote {
            origin: signer.origin().to_owned(),
            head,
            root,
            sha256: manifest::sha256_hex(&text),
        }
        .body();
        let note = signer
            .sign_text(&body)
            .map_err(|e| ExportError::Checkpoint(format!("signing the manifest: {e}")))?;
        write_marker(&dir.join(MANIFEST_NOTE_FILE), note.as_bytes())?;
    }
    sync_dir(dir)?;
    Ok(ExportSummary {
        dir: dir.to_path_buf(),
        manifest,
        segment_bytes: written.bytes,
        checkpoints_skipped: notes.len() as u64 - kept,
        signed_size,
        proof_to: proof.map(|p| p.new),
        unsigned_commits: head - signed_size,
        manifest_signed: options.signer.is_some(),
    })
}

/// The root a checkpoint note claims (unverified: the export carries notes verbatim).
fn note_root(note: &str) -> Result<crate::tree::Hash, ExportError> {
    crate::store::parse_unverified(note)
        .map(|s| s.checkpoint.root)
        .map_err(|e| ExportError::Checkpoint(e.to_string()))
}

/// Writes the manifest or its note, the files that say the export is complete: atomically, so a
/// crash never leaves one of them half written under its final name.
fn write_marker(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    docket_log::atomic::write_atomic_new(path, bytes)
        .map_err(io(format!("writing {}", path.display())))
}

/// Writes one of the many files of an export, durably; the directory is synced once after them
/// (an atomic write each would sync it once per file), and the manifest, written last, marks
/// the export complete.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(path)
        .map_err(io(format!("creating {}", path.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io(format!("writing {}", path.display())))
}

fn sync_dir(dir: &Path) -> Result<(), ExportError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing {}", dir.display())))
}
