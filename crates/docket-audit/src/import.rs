//! Import: restores an export ([`crate::export`]) into a new deployment, so that it holds the same
//! commits byte for byte at the same positions (same hashes, same Merkle tree: every checkpoint
//! and receipt given out before the backup still verifies) and the export's signed checkpoints in
//! its audit records (so its checkpointer, started with the same key, continues from the last
//! one).
//!
//! Both targets go the same way:
//! 1. the target must be empty ([`ImportError::NotEmpty`] otherwise);
//! 2. the export is verified with [`crate::verify_with_tree`] exactly as `docket audit verify`
//!    does, with the same options, anchors included (witness keys and quorum, trusted
//!    checkpoints); an export that does not verify is refused ([`ImportError::NotVerified`],
//!    naming the failure the verdict names) before anything is written. That includes an export
//!    with commits past its last signed checkpoint unless
//!    [`VerifyOptions::allow_unsigned_tail`]: the restored checkpointer would sign over them with
//!    the deployment's real key, vouching for commits nothing vouched for (a forgery that kept
//!    only the checkpoints before its rewrite would be laundered so);
//! 3. the commits are written: into a data directory ([`import_to_dir`]) by copying the export's
//!    segment files (they are in the log's own format), each synced; into JetStream
//!    ([`import_to_jetstream`]) by [`JetStreamLog::restore`], each commit's exact bytes at its
//!    exact position. Only commits whose leaf hash is the verified tree's are written, so an
//!    export changed after it was verified is caught;
//! 4. the restored log is read back through the backend ([`docket_log::EventLog::read_all`]) and
//!    every commit's leaf hash compared with the verified tree, and the head with the manifest;
//! 5. the checkpoints are appended to the audit records in size order, verbatim, then read back,
//!    each checked against the key and the verified tree. The checkpoint beyond the head an
//!    `--upto` export carries (with its consistency proof) is not stored: the restored log does
//!    not reach it.
//!
//! A data directory is built in a staging directory inside the target (`.docket-import`), opened
//! and checked there as a [`FileLog`], and only then moved into place: the audit records first,
//! then the segment files from the last to the first, so that an interrupted move leaves a
//! directory `docket up` refuses (a gap before the first segment), never a shorter log.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use docket_log::file::export::SegmentReader;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::jetstream::JetStreamLog;
use docket_log::{Checkpoints, CommitHash, EventLog, LogError, Records};
use serde::Serialize;

use crate::error::AuditError;
use crate::export::{Manifest, CHECKPOINTS_DIR, MANIFEST_FILE, SEGMENTS_DIR};
use crate::note::CheckpointVerifier;
use crate::store::CheckpointStore;
use crate::tree::{leaf_hash, Tree};
use crate::verify::{verify_with_tree, Report, VerifyOptions};

/// The staging directory an import into a data directory builds the log in, inside the target.
pub const STAGING_DIR: &str = ".docket-import";

/// Commits read back per batch.
const BATCH: usize = 4096;

/// Longest wait for a commit's dedup id to leave JetStream's duplicate window (see
/// [`JetStreamLog::restore`]): the default window is 2 minutes.
const DUPLICATE_WAIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// A phase of an import, as [`import_to_dir`] and [`import_to_jetstream`] report progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Verifying the export (no progress figures: `verify` reports at its end).
    Verifying,
    /// Writing the commits.
    Writing,
    /// Waiting for a commit's dedup id to leave JetStream's duplicate window.
    WaitingForDuplicateWindow,
    /// Reading the restored log back and comparing it.
    Checking,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Verifying => "verifying",
            Phase::Writing => "writing",
            Phase::WaitingForDuplicateWindow => "waiting out the duplicate window at",
            Phase::Checking => "checking",
        })
    }
}

/// What an import did.
#[derive(Clone, Debug, Serialize)]
pub struct ImportSummary {
    /// Where to: the data directory, or the NATS log stream.
    pub target: String,
    /// `file` or `jetstream`.
    pub backend: &'static str,
    /// Commits imported (equal to `head`).
    pub commits: u64,
    /// Signed checkpoints stored in the audit records.
    pub checkpoints: u64,
    /// The restored log's head, read back (the manifest's).
    pub head: u64,
    /// SHA-256 of the last commit's bytes (hex), read back; none for an empty log.
    pub last_hash: Option<String>,
    /// The Merkle root of the restored log (base64, as in checkpoints).
    pub root: String,
    /// The size of the last signed checkpoint, if any.
    pub last_checkpoint_size: Option<u64>,
    /// Commits past what the export's signed checkpoints vouch for (verify's
    /// `coverage.unsigned_commits`): nothing vouches for them, yet the restored checkpointer
    /// signs over them once it runs. Non-zero only when the unsigned tail was allowed.
    pub unsigned_commits: u64,
    /// The export's manifest.
    pub manifest: Manifest,
    /// The verification of the export.
    pub verify: Report,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "imported {} commits, {} checkpoints, head {}, last hash {}",
            self.commits,
            self.checkpoints,
            self.head,
            self.last_hash.as_deref().unwrap_or("none")
        )?;
        writeln!(f, "  into {} ({})", self.target, self.backend)?;
        writeln!(f, "  root {}", self.root)?;
        match self.last_checkpoint_size {
            _ if self.unsigned_commits > 0 => writeln!(
                f,
                "  WARNING: the last {} commits are vouched for by no signature (allowed by \
                 --allow-unsigned-tail); the restored checkpointer will sign over commits that \
                 nothing vouched for",
                self.unsigned_commits
            ),
            Some(size) if size < self.head => writeln!(
                f,
                "  last stored checkpoint: size {size}; the commits after it are proved a prefix \
                 of the export's checkpoint of size {} beyond its head",
                self.verify.coverage.proof_to.unwrap_or(size)
            ),
            Some(size) => writeln!(f, "  last signed checkpoint: size {size} (the head)"),
            None => writeln!(
                f,
                "  no signed checkpoint in the export: nothing vouches for these commits"
            ),
        }
    }
}

/// Why an import was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The export does not verify; nothing was written.
    #[error("{}", not_verified(.0))]
    NotVerified(Box<Report>),
    /// The target holds data already; nothing was written.
    #[error("{0}")]
    NotEmpty(String),
    /// Reading or writing a log or the audit records failed.
    #[error("log: {0}")]
    Log(#[from] LogError),
    /// Reading or writing the checkpoints failed.
    #[error("checkpoints: {0}")]
    Audit(#[from] AuditError),
    /// A file could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// What was written does not read back as what was verified.
    #[error("the restored log does not match the export: {0}")]
    Mismatch(String),
}

fn not_verified(report: &Report) -> String {
    match &report.first_failure {
        Some(f) => format!(
            "refusing to import {}: it does not verify: position {}, rule {}: {}",
            report.dir.display(),
            f.position,
            f.rule,
            f.message
        ),
        None => format!("refusing to import {}", report.dir.display()),
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImportError {
    let context = context.into();
    move |source| ImportError::Io { context, source }
}

/// The export, verified: its report, the tree of its commits, its manifest and its checkpoints
/// (note texts in size order, each checked against the key and the tree).
struct Verified {
    report: Report,
    tree: Tree,
    manifest: Manifest,
    notes: Vec<(u64, String)>,
}

/// Verifies the export as `docket audit verify` does, then reads its manifest and checkpoints.
async fn verify_export(
    export: &Path,
    verifier: &CheckpointVerifier,
    options: &VerifyOptions,
) -> Result<Verified, ImportError> {
    let (dir, key, opts) = (export.to_path_buf(), verifier.clone(), options.clone());
    let (report, tree) = tokio::task::spawn_blocking(move || verify_with_tree(&dir, &key, &opts))
        .await
        .map_err(|e| ImportError::Io {
            context: "verifying the export".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
    if !report.ok {
        return Err(ImportError::NotVerified(Box::new(report)));
    }
    let path = export.join(MANIFEST_FILE);
    let manifest: Manifest = std::fs::read(&path)
        .map_err(io(format!("reading {}", path.display())))
        .and_then(|b| {
            serde_json::from_slice(&b).map_err(|e| ImportError::Io {
                context: format!("reading {}", path.display()),
                source: std::io::Error::other(e),
            })
        })?;
    let notes = read_notes(export, verifier, &tree)?;
    if manifest.head != tree.size() {
        return Err(ImportError::Mismatch(format!(
            "the manifest says head {}, the verified segments hold {}",
            manifest.head,
            tree.size()
        )));
    }
    Ok(Verified {
        report,
        tree,
        manifest,
        notes,
    })
}

/// The export's checkpoint notes, as `verify` found them (files `<size>.note`), in size order,
/// each checked again against the key and the verified tree (the files could have changed since).
fn read_notes(
    export: &Path,
    verifier: &CheckpointVerifier,
    tree: &Tree,
) -> Result<Vec<(u64, String)>, ImportError> {
    let dir = export.join(CHECKPOINTS_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(format!("listing {}", dir.display()))(e)),
    };
    let mut notes = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(io(format!("listing {}", dir.display())))?
            .path();
        let named = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".note"))
            .and_then(|n| n.parse::<u64>().ok());
        if named.is_none() {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(io(format!("reading {}", path.display())))?;
        let signed = verifier.open(&text).map_err(|e| {
            ImportError::Mismatch(format!(
                "{} changed after verification: {e}",
                path.display()
            ))
        })?;
        let size = signed.checkpoint.size;
        if size > tree.size() {
            // The checkpoint beyond the head of an `--upto` export, which verify accepted with
            // its consistency proof: the restored log does not reach it.
            continue;
        }
        if tree.root_at(size).ok() != Some(signed.checkpoint.root) {
            return Err(ImportError::Mismatch(format!(
                "{} changed after verification: its root is not the commits'",
                path.display()
            )));
        }
        notes.push((size, text));
    }
    notes.sort();
    notes.dedup();
    Ok(notes)
}

fn last_hash_hex(hash: Option<CommitHash>) -> Option<String> {
    hash.map(|h| h.to_string())
}

/// Reads the whole restored log back and compares every commit's leaf hash with the verified
/// tree; returns the hash of the last commit.
async fn check_log<L: EventLog>(
    log: &L,
    verified: &Verified,
    progress: &mut impl FnMut(Phase, u64, u64),
) -> Result<Option<CommitHash>, ImportError> {
    let expected = verified.tree.size();
    let head = log.head().await?;
    if head != expected {
        return Err(ImportError::Mismatch(format!(
            "its head is {head}, the export's is {expected}"
        )));
    }
    let mut after = 0u64;
    let mut last = None;
    progress(Phase::Checking, 0, expected);
    while after < expected {
        let batch = log.read_all(after, BATCH).await?;
        if batch.is_empty() {
            return Err(ImportError::Mismatch(format!(
                "it ends at position {after}, the export at {expected}"
            )));
        }
        for commit in batch {
            let position = commit.position;
            if position != after + 1 || position > expected {
                return Err(ImportError::Mismatch(format!(
                    "it gave position {position} after {after}"
                )));
            }
            let leaf = verified.tree.leaf(position).map_err(AuditError::from)?;
            if leaf_hash(&commit.bytes) != leaf {
                return Err(ImportError::Mismatch(format!(
                    "the commit at position {position} differs from the export's"
                )));
            }
            last = Some(commit.hash());
            after = position;
        }
        progress(Phase::Checking, after, expected);
    }
    Ok(last)
}

/// Appends the checkpoints to empty audit records, then reads them back: each must be the
/// export's note verbatim, signed by the key, with the verified tree's root.
async fn store_checkpoints<R: Records>(
    records: R,
    verifier: &CheckpointVerifier,
    verified: &Verified,
) -> Result<u64, ImportError> {
    if let Some((sequence, _)) = records.last().await? {
        return Err(ImportError::NotEmpty(format!(
            "the audit records hold {sequence} records already (was something else writing \
             checkpoints during the import?)"
        )));
    }
    let store = CheckpointStore::new(records);
    for (_, note) in &verified.notes {
        store
            .records()
            .append(Bytes::from(note.clone().into_bytes()))
            .await?;
    }
    let stored = store.all(Some(verifier)).await?;
    if stored.len() != verified.notes.len() {
        return Err(ImportError::Mismatch(format!(
            "{} checkpoints stored, {} in the export",
            stored.len(),
            verified.notes.len()
        )));
    }
    for (stored, (size, note)) in stored.iter().zip(&verified.notes) {
        let checkpoint = &stored.signed.checkpoint;
        if stored.signed.note != *note
            || checkpoint.size != *size
            || verified.tree.root_at(*size).ok() != Some(checkpoint.root)
        {
            return Err(ImportError::Mismatch(format!(
                "stored checkpoint {} (size {}) is not the export's",
                stored.sequence, checkpoint.size
            )));
        }
    }
    Ok(stored.len() as u64)
}

fn summary(
    target: String,
    backend: &'static str,
    verified: Verified,
    checkpoints: u64,
    last_hash: Option<CommitHash>,
) -> ImportSummary {
    let head = verified.tree.size();
    let last_checkpoint_size = verified.notes.last().map(|(size, _)| *size);
    ImportSummary {
        target,
        backend,
        commits: head,
        checkpoints,
        head,
        last_hash: last_hash_hex(last_hash),
        root: verified.tree.root().to_string(),
        last_checkpoint_size,
        unsigned_commits: verified.report.coverage.unsigned_commits,
        manifest: verified.manifest,
        verify: verified.report,
    }
}

/// Refuses a target directory that exists and is not an empty directory.
fn check_empty_dir(target: &Path) -> Result<(), ImportError> {
    if !target.exists() {
        return Ok(());
    }
    if !target.is_dir() {
        return Err(ImportError::NotEmpty(format!(
            "{} exists and is not a directory: a restore is written into a new or empty directory",
            target.display()
        )));
    }
    let mut entries =
        std::fs::read_dir(target).map_err(io(format!("reading {}", target.display())))?;
    if let Some(entry) = entries.next() {
        let name = entry
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .unwrap_or_default();
        let hint = if name == STAGING_DIR {
            " (it holds the staging directory of an interrupted import: remove the directory and \
             import again)"
        } else {
            ""
        };
        return Err(ImportError::NotEmpty(format!(
            "{} is not empty (it holds {name:?}){hint}: a restore is written into a new or empty \
             directory, never over a deployment's data",
            target.display()
        )));
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), ImportError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("syncing {}", dir.display())))
}

/// Copies a file and syncs the copy.
fn copy_synced(from: &Path, to: &Path) -> Result<(), ImportError> {
    std::fs::copy(from, to)
        .and_then(|_| std::fs::File::open(to)?.sync_all())
        .map_err(io(format!(
            "copying {} to {}",
            from.display(),
            to.display()
        )))
}

/// Restores the export in `export` into the data directory `target` (new, or an empty
/// directory), which `docket up --data-dir` then opens: its segment files and its audit records
/// (`audit/`); see the module documentation. `progress(phase, done, total)` is called as commits
/// are written and checked. The checkpoint signer key is not part of an export: put it in
/// `<target>/audit/checkpoint.key`, or give it to `docket up --checkpoint-key`.
pub async fn import_to_dir(
    export: &Path,
    target: &Path,
    verifier: &CheckpointVerifier,
    options: &VerifyOptions,
    mut progress: impl FnMut(Phase, u64, u64),
) -> Result<ImportSummary, ImportError> {
    check_empty_dir(target)?;
    progress(Phase::Verifying, 0, 0);
    let verified = verify_export(export, verifier, options).await?;
    let created = !target.exists();
    std::fs::create_dir_all(target).map_err(io(format!("creating {}", target.display())))?;
    let staging = target.join(STAGING_DIR);
    let built = build_dir(export, &staging, verifier, &verified, &mut progress).await;
    let (segments, checkpoints, last_hash) = match built {
        Ok(built) => built,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            if created {
                let _ = std::fs::remove_dir(target);
            }
            return Err(e);
        }
    };
    // Into place: the audit records, then the segments from the last to the first.
    let audit = staging.join("audit");
    if audit.exists() {
        std::fs::rename(&audit, target.join("audit")).map_err(io(format!(
            "moving {} into {}",
            audit.display(),
            target.display()
        )))?;
    }
    for name in segments.iter().rev() {
        std::fs::rename(staging.join(name), target.join(name)).map_err(io(format!(
            "moving {} into {}",
            staging.join(name).display(),
            target.display()
        )))?;
    }
    sync_dir(target)?;
    std::fs::remove_dir_all(&staging).map_err(io(format!("removing {}", staging.display())))?;
    sync_dir(target)?;
    Ok(summary(
        target.display().to_string(),
        "file",
        verified,
        checkpoints,
        last_hash,
    ))
}

/// Builds the data directory in `staging`: copies the segments, opens them as a log (which
/// checks every frame and hash chain), compares it with the verified tree, stores the
/// checkpoints. Returns the segment file names, the checkpoints stored and the last hash.
async fn build_dir(
    export: &Path,
    staging: &Path,
    verifier: &CheckpointVerifier,
    verified: &Verified,
    progress: &mut impl FnMut(Phase, u64, u64),
) -> Result<(Vec<std::ffi::OsString>, u64, Option<CommitHash>), ImportError> {
    std::fs::create_dir(staging).map_err(io(format!("creating {}", staging.display())))?;
    let source = export.join(SEGMENTS_DIR);
    let reader = SegmentReader::open(&source).map_err(LogError::from)?;
    let segments: Vec<(u64, PathBuf)> = reader.segments().to_vec();
    let head = verified.tree.size();
    let mut names = Vec::with_capacity(segments.len());
    progress(Phase::Writing, 0, head);
    for (i, (_, path)) in segments.iter().enumerate() {
        let name = path
            .file_name()
            .ok_or_else(|| ImportError::Mismatch(format!("segment {}", path.display())))?
            .to_os_string();
        copy_synced(path, &staging.join(&name))?;
        names.push(name);
        let done = segments.get(i + 1).map_or(head, |(next, _)| next - 1);
        progress(Phase::Writing, done.min(head), head);
    }
    sync_dir(staging)?;
    let log = FileLog::open(FileLogConfig::new(staging)).await?;
    let checked = async {
        let last_hash = check_log(&log, verified, progress).await?;
        let checkpoints = store_checkpoints(log.audit_records()?, verifier, verified).await?;
        Ok::<_, ImportError>((checkpoints, last_hash))
    }
    .await;
    log.close().await?;
    let (checkpoints, last_hash) = checked?;
    Ok((names, checkpoints, last_hash))
}

/// Restores the export in `export` into the JetStream log `log`, whose stream must be empty (and
/// its audit records and reaction checkpoints too): each commit's exact bytes at its exact
/// position ([`JetStreamLog::restore`]), then the checkpoints into the audit stream; see the
/// module documentation. `progress(phase, done, total)` is called as commits are written and
/// checked. An interrupted import leaves a partial log: delete the streams and import again.
pub async fn import_to_jetstream(
    export: &Path,
    log: &JetStreamLog,
    verifier: &CheckpointVerifier,
    options: &VerifyOptions,
    mut progress: impl FnMut(Phase, u64, u64),
) -> Result<ImportSummary, ImportError> {
    let stream = log.config().stream_name.clone();
    let head = log.head().await?;
    if head > 0 {
        return Err(ImportError::NotEmpty(format!(
            "the log stream {stream} holds {head} commits: a restore is written into an empty \
             or absent stream, never over a deployment's log"
        )));
    }
    let records = log.audit_records().await?;
    if let Some((sequence, _)) = records.last().await? {
        return Err(ImportError::NotEmpty(format!(
            "the audit stream {} holds {sequence} checkpoints while the log is empty: they are \
             another log's; delete that stream before importing",
            records.config().stream_name
        )));
    }
    let reactions = log.checkpoints().await?.list().await?;
    if !reactions.is_empty() {
        let names: Vec<String> = reactions
            .iter()
            .map(|(c, p)| format!("{c} at {p}"))
            .collect();
        return Err(ImportError::NotEmpty(format!(
            "the reaction checkpoint bucket {} holds positions ({}) while the log is empty: \
             reactions would skip the restored commits; delete the bucket before importing",
            docket_log::checkpoint::CHECKPOINT_BUCKET,
            names.join(", ")
        )));
    }
    progress(Phase::Verifying, 0, 0);
    let verified = verify_export(export, verifier, options).await?;
    let total = verified.tree.size();
    let reader = SegmentReader::open(&export.join(SEGMENTS_DIR)).map_err(LogError::from)?;
    progress(Phase::Writing, 0, total);
    let mut last_shown = 0u64;
    for next in reader {
        let (position, bytes) = next.map_err(LogError::from)?;
        let leaf = verified.tree.leaf(position).map_err(|_| {
            ImportError::Mismatch(format!(
                "the export holds position {position} now, beyond the {total} verified"
            ))
        })?;
        if leaf_hash(&bytes) != leaf {
            return Err(ImportError::Mismatch(format!(
                "the export's commit at position {position} changed after verification"
            )));
        }
        restore_one(log, position, bytes, total, &mut progress).await?;
        if position - last_shown >= 1000 || position == total {
            progress(Phase::Writing, position, total);
            last_shown = position;
        }
    }
    let last_hash = check_log(log, &verified, &mut progress).await?;
    let checkpoints = store_checkpoints(records, verifier, &verified).await?;
    Ok(summary(
        format!("stream {stream}"),
        "jetstream",
        verified,
        checkpoints,
        last_hash,
    ))
}

/// Restores one commit, waiting out the duplicate window if its dedup id was stored moments ago
/// at an earlier position (a JetStream log can hold one dedup id twice).
async fn restore_one(
    log: &JetStreamLog,
    position: u64,
    bytes: Bytes,
    total: u64,
    progress: &mut impl FnMut(Phase, u64, u64),
) -> Result<(), ImportError> {
    let started = std::time::Instant::now();
    loop {
        match log.restore(position, bytes.clone()).await {
            Ok(_) => return Ok(()),
            Err(LogError::Duplicate { position: earlier })
                if earlier < position && started.elapsed() < DUPLICATE_WAIT =>
            {
                tracing::warn!(
                    position,
                    earlier,
                    "the commit's dedup id is also the commit's at an earlier position, stored \
                     within the duplicate window: waiting for the window to pass"
                );
                progress(Phase::WaitingForDuplicateWindow, position, total);
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
