//! Export: a self-contained copy of the log (up to a position) with its signed checkpoints, for
//! an auditor to verify offline with [`crate::verify`].
//!
//! The file set, in one directory:
//! - `segments/`: the commits in segment files of the log's own format (`docs/log-format.md`),
//!   byte for byte as the log stores them, so the directory is also a log `FileLog` opens;
//! - `checkpoints/<size, 20 digits>.note`: each signed checkpoint whose size is at most the
//!   exported head, its note text verbatim;
//! - `MANIFEST.json`: [`Manifest`] — format and version, origin, head, first and last commit
//!   times, counts, creation time. It is not signed: the checkpoints are what vouch for the
//!   commits.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use docket_log::file::export::SegmentWriter;
use docket_log::{EventLog, LogError};
use serde::{Deserialize, Serialize};

/// The `format` field of every manifest.
pub const EXPORT_FORMAT: &str = "docket-export";
/// The export format version written by this code.
pub const EXPORT_VERSION: u32 = 1;
/// The manifest's file name.
pub const MANIFEST_FILE: &str = "MANIFEST.json";
/// The directory of segment files.
pub const SEGMENTS_DIR: &str = "segments";
/// The directory of signed checkpoints.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// Segment size of exports.
pub const EXPORT_SEGMENT_BYTES: u64 = 64 << 20;
/// Commits read from the log per batch.
const BATCH: usize = 4096;

/// What an export says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// The export format version ([`EXPORT_VERSION`]).
    pub version: u32,
    /// The log's origin, from the checkpoints (none if there are none).
    pub origin: Option<String>,
    /// The position of the last exported commit (0 for none).
    pub head: u64,
    /// The first commit's recorded time (RFC 3339), if any commit.
    pub first_commit_at: Option<String>,
    /// The last commit's recorded time (RFC 3339), if any commit.
    pub last_commit_at: Option<String>,
    /// Commits exported (equal to `head`: the export starts at position 1).
    pub commits: u64,
    /// Distinct streams among them.
    pub streams: u64,
    /// Events among them.
    pub events: u64,
    /// Segment files written.
    pub segments: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// When the export was made (RFC 3339).
    pub created_at: String,
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
    /// A checkpoint text is not a checkpoint, or two differ at one size.
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

/// The file name of the checkpoint of `size` in `checkpoints/`.
pub fn checkpoint_file_name(size: u64) -> String {
    format!("{size:020}.note")
}

fn rfc3339(micros: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_micros(micros).map(|t| t.to_rfc3339())
}

fn now_rfc3339() -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    rfc3339(micros).unwrap_or_default()
}

/// Exports the log's commits `1..=upto` (the whole log if `upto` is none or past the head) and
/// the given signed checkpoints (note texts) whose size is at most that head into `dir`, which
/// must be new or empty. `progress(done, total)` is called after every batch of commits.
pub async fn export<L: EventLog>(
    log: &L,
    checkpoints: &[String],
    upto: Option<u64>,
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
    let mut origin: Option<String> = None;
    let mut notes: Vec<(u64, &String)> = Vec::new();
    for note in checkpoints {
        let (o, size) = note_origin_and_size(note).ok_or_else(|| {
            ExportError::Checkpoint(format!(
                "not a checkpoint: {:?}",
                note.lines().next().unwrap_or_default()
            ))
        })?;
        match &origin {
            Some(known) if *known != o => {
                return Err(ExportError::Checkpoint(format!(
                    "checkpoints of two origins, {known:?} and {o:?}"
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

    let log_head = log.head().await?;
    let head = upto.map_or(log_head, |u| u.min(log_head));
    let segments_dir = dir.join(SEGMENTS_DIR);
    let mut writer = SegmentWriter::create(&segments_dir, 1, EXPORT_SEGMENT_BYTES)?;
    let mut streams: HashSet<String> = HashSet::new();
    let (mut first_at, mut last_at, mut events) = (None, None, 0u64);
    let mut after = 0u64;
    progress(0, head);
    while after < head {
        let want = usize::try_from(head - after).map_or(BATCH, |left| left.min(BATCH));
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
            writer.push(&commit.bytes)?;
            if !streams.contains(commit.commit.stream.as_str()) {
                streams.insert(commit.commit.stream.as_str().to_owned());
            }
            let at = commit.commit.metadata.recorded_at_micros;
            first_at.get_or_insert(at);
            last_at = Some(at);
            events += commit.commit.events.len() as u64;
            after = commit.position;
        }
        progress(after, head);
    }
    let written = writer.finish()?;

    let checkpoints_dir = dir.join(CHECKPOINTS_DIR);
    std::fs::create_dir_all(&checkpoints_dir)
        .map_err(io(format!("creating {}", checkpoints_dir.display())))?;
    let mut kept = 0u64;
    for (size, note) in notes.iter().filter(|(size, _)| *size <= head) {
        let path = checkpoints_dir.join(checkpoint_file_name(*size));
        write_synced(&path, note.as_bytes())?;
        kept += 1;
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
    write_synced(&dir.join(MANIFEST_FILE), &text)?;
    sync_dir(dir)?;
    Ok(ExportSummary {
        dir: dir.to_path_buf(),
        manifest,
        segment_bytes: written.bytes,
        checkpoints_skipped: notes.len() as u64 - kept,
    })
}

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
