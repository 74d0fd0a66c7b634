//! Moving records of the old layout — one file per record in the same directory, named by its
//! sequence number zero-padded to 20 digits (`00000000000000000001`) — into segments, when
//! [`FileRecords`] opens the directory (under its exclusive lock).
//!
//! The old files are appended in order after the records the segments already hold, the
//! segments synced, and only then are the old files removed (and the directory synced). A crash
//! at any point is recovered by the next open, which runs the same steps again:
//! - before the segments were synced, the old files are all still there; the segments hold a
//!   prefix of them, perhaps with a torn last frame (cut off on open). Each old file whose
//!   sequence number the segments already hold must hold the same bytes (else
//!   [`LogError::Corrupt`]: two different records 7 is not something to choose between), and
//!   the rest are appended;
//! - while the old files were being removed, those left are all in the segments, checked the
//!   same way, and removed.
//!
//! Old files must be dense and follow the segments' last record; a gap is an error, never
//! skipped.

use super::file::{FileRecords, Index};
use super::segment;
use crate::error::{LogError, Result};

/// Old files appended per batch (one write and one sync each).
const BATCH: usize = 256;

/// Migrates the old files of `records`' directory, if any, into the segments of `index`.
pub(super) fn legacy(records: &FileRecords, index: &mut Index) -> Result<()> {
    let dir = records.dir();
    let mut old = Vec::new();
    let entries = std::fs::read_dir(dir)
        .map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?;
        if let Some(sequence) = entry
            .file_name()
            .to_str()
            .and_then(segment::parse_legacy_name)
        {
            old.push((sequence, entry.path()));
        }
    }
    if old.is_empty() {
        return Ok(());
    }
    old.sort();
    let held = index.last();
    let mut appended = 0usize;
    let mut batch: Vec<Vec<u8>> = Vec::new();
    for (sequence, path) in &old {
        let bytes = std::fs::read(path)
            .map_err(|e| LogError::io(format!("reading {}", path.display()), e))?;
        if *sequence <= held {
            let stored = records.read_indexed(index, sequence - 1, 1)?;
            if stored.first().map(|(_, b)| b.as_ref()) != Some(bytes.as_slice()) {
                return Err(LogError::Corrupt {
                    position: *sequence,
                    reason: format!(
                        "audit record {sequence}: {} differs from the record {sequence} already in the segments",
                        path.display()
                    ),
                });
            }
            continue;
        }
        let expected = index.last() + batch.len() as u64 + 1;
        if *sequence != expected {
            return Err(LogError::Corrupt {
                position: expected,
                reason: format!(
                    "audit record {expected} is missing from the old layout (next is {})",
                    path.display()
                ),
            });
        }
        batch.push(bytes);
        if batch.len() == BATCH {
            flush(records, index, &mut batch)?;
        }
        appended += 1;
    }
    flush(records, index, &mut batch)?;
    for (_, path) in &old {
        std::fs::remove_file(path)
            .map_err(|e| LogError::io(format!("removing {}", path.display()), e))?;
    }
    segment::sync_dir(dir).map_err(|e| LogError::io(format!("syncing {}", dir.display()), e))?;
    tracing::info!(
        dir = %dir.display(),
        appended,
        removed = old.len(),
        "moved the audit records of the old layout (one file each) into segments"
    );
    Ok(())
}

fn flush(records: &FileRecords, index: &mut Index, batch: &mut Vec<Vec<u8>>) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
    records.append_locked(index, &refs)?;
    batch.clear();
    Ok(())
}
