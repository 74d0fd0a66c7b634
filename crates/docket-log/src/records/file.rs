//! [`FileRecords`]: the audit records as append-only segment files in one directory (embedded
//! mode, `<data dir>/audit/`), in the format of [`super::segment`].
//!
//! Every append writes one frame at the end of the last segment and `fdatasync`s it before it
//! returns; a segment that has reached the size limit is closed and the next record starts a new
//! one (created, synced, its directory synced). Each handle keeps an index of frame offsets in
//! memory, built when it opens the directory and brought up to date from the files before every
//! operation, so several handles (several processes) may share one directory: appends take an
//! exclusive `flock` on `records.lock`, reads a shared one.
//!
//! On open, a frame torn by a crash at the very end of the last segment (a bad frame with no
//! good frame after it: it was never acknowledged) is cut off, with a warning. Any other damage
//! — a bad frame followed by good ones, a bad header, a segment that does not start where the
//! previous one ended — is [`LogError::Corrupt`]: a record is never silently skipped. Records of
//! the old layout (one file per record) are moved into segments on open ([`super::migrate`]).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use super::segment::{self, Header};
use super::Records;
use crate::error::{LogError, Result};

/// Default size after which the next record starts a new segment.
pub const DEFAULT_RECORD_SEGMENT_BYTES: u64 = 64 << 20;

/// The largest record accepted.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The lock file beside the segments.
const LOCK_FILE: &str = "records.lock";

/// One segment as a handle knows it.
#[derive(Debug)]
pub(super) struct Segment {
    /// Sequence number of its first record.
    pub(super) first: u64,
    pub(super) path: PathBuf,
    pub(super) file: File,
    /// File offset of each record's frame.
    pub(super) offsets: Vec<u64>,
    /// End of the last good frame.
    pub(super) end: u64,
}

impl Segment {
    /// The sequence number after its last record.
    fn next(&self) -> u64 {
        self.first + self.offsets.len() as u64
    }
}

/// A handle's index of the segments.
#[derive(Debug, Default)]
pub(super) struct Index {
    pub(super) segments: Vec<Segment>,
}

impl Index {
    /// The sequence number of the last record (0: none).
    pub(super) fn last(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.next() - 1)
    }

    /// The segment holding record `sequence`, if indexed.
    fn locate(&self, sequence: u64) -> Option<&Segment> {
        if sequence == 0 || sequence > self.last() {
            return None;
        }
        let i = self.segments.partition_point(|s| s.first <= sequence);
        self.segments.get(i.checked_sub(1)?)
    }
}

/// Records as segment files in a directory; see the module documentation.
#[derive(Clone, Debug)]
pub struct FileRecords {
    dir: PathBuf,
    segment_bytes: u64,
    lock: Arc<File>,
    index: Arc<Mutex<Index>>,
}

fn corrupt(sequence: u64, path: &Path, reason: impl std::fmt::Display) -> LogError {
    LogError::Corrupt {
        position: sequence,
        reason: format!("audit record {sequence} in {}: {reason}", path.display()),
    }
}

/// Holds a `flock` on the lock file until dropped.
struct Locked<'a>(&'a File);

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl FileRecords {
    /// Records in `dir` (created if missing), starting a new segment after
    /// [`DEFAULT_RECORD_SEGMENT_BYTES`].
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        Self::open_with(dir, DEFAULT_RECORD_SEGMENT_BYTES)
    }

    /// Records in `dir`, starting a new segment once one holds `segment_bytes` or more.
    /// Checks every segment, cuts a torn last frame, and migrates records of the old layout.
    pub fn open_with(dir: impl Into<PathBuf>, segment_bytes: u64) -> Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| LogError::io(format!("opening {}", lock_path.display()), e))?;
        let records = FileRecords {
            dir,
            segment_bytes: segment_bytes.max(segment::HEADER_BYTES + 1),
            lock: Arc::new(lock),
            index: Arc::new(Mutex::new(Index::default())),
        };
        {
            let _locked = records.lock_exclusive()?;
            let mut index = records.index();
            records.refresh(&mut index, true)?;
            records.check_every_segment_indexed(&index)?;
            super::migrate::legacy(&records, &mut index)?;
        }
        Ok(records)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn index(&self) -> MutexGuard<'_, Index> {
        // The index is only changed by whole steps under this lock; a panic elsewhere while it
        // was held leaves it as consistent as the files, which the next refresh reads again.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_exclusive(&self) -> Result<Locked<'_>> {
        self.lock
            .lock()
            .map_err(|e| LogError::io(format!("locking {}", self.dir.display()), e))?;
        Ok(Locked(&self.lock))
    }

    fn lock_shared(&self) -> Result<Locked<'_>> {
        self.lock
            .lock_shared()
            .map_err(|e| LogError::io(format!("locking {}", self.dir.display()), e))?;
        Ok(Locked(&self.lock))
    }

    /// Brings `index` up to date with the files: new frames at the end of the last segment and
    /// segments started after it. With `exclusive` (the caller holds the exclusive lock, so
    /// nobody is writing and what is torn is a crash's), a torn last frame is cut off and a
    /// segment whose header a crash left torn is removed; without, they are only left out.
    pub(super) fn refresh(&self, index: &mut Index, exclusive: bool) -> Result<()> {
        if let Some(last) = index.segments.last_mut() {
            let len = file_len(&last.file, &last.path)?;
            if len > last.end {
                let from = last.end;
                let bytes = read_at(&last.file, &last.path, from, len)?;
                let before = last.offsets.len() as u64;
                let scan = segment::scan(&bytes, from).map_err(|(offset, reason)| {
                    damaged(
                        last.first + before,
                        &bytes,
                        from,
                        offset,
                        &last.path,
                        &reason,
                    )
                })?;
                last.offsets.extend_from_slice(&scan.offsets);
                last.end = scan.end;
                if let Some(reason) = scan.torn {
                    self.torn(last, len, &reason, exclusive)?;
                    return Ok(());
                }
            }
        }
        // A new segment is named by the record after the last one; an empty last segment is
        // where the next record goes, so none can follow it yet.
        while !index.segments.last().is_some_and(|s| s.offsets.is_empty()) {
            let first = index.last() + 1;
            let path = self.dir.join(segment::file_name(first));
            let file = match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) => return Err(LogError::io(format!("opening {}", path.display()), e)),
            };
            let len = file_len(&file, &path)?;
            let bytes = read_at(&file, &path, 0, len)?;
            match segment::parse_header(&bytes, first) {
                Header::Good(_) => {}
                Header::Torn => {
                    if exclusive {
                        self.no_later_segment(first, &path)?;
                        tracing::warn!(
                            path = %path.display(),
                            bytes = len,
                            "a record segment's creation was cut short by a crash; it is removed"
                        );
                        std::fs::remove_file(&path)
                            .and_then(|()| segment::sync_dir(&self.dir))
                            .map_err(|e| LogError::io(format!("removing {}", path.display()), e))?;
                    }
                    break;
                }
                Header::Bad(reason) => return Err(corrupt(first, &path, reason)),
            }
            let body = &bytes[segment::HEADER_BYTES as usize..];
            let scan = segment::scan(body, segment::HEADER_BYTES).map_err(|(offset, reason)| {
                damaged(first, body, segment::HEADER_BYTES, offset, &path, &reason)
            })?;
            index.segments.push(Segment {
                first,
                path,
                file,
                offsets: scan.offsets,
                end: scan.end,
            });
            if let Some(reason) = scan.torn {
                if let Some(seg) = index.segments.last_mut() {
                    self.torn(seg, len, &reason, exclusive)?;
                }
                break;
            }
        }
        Ok(())
    }

    /// Deals with bytes after the last good frame of `seg`: a torn write if `seg` is the last
    /// segment (cut off under the exclusive lock), damage if another segment follows it.
    fn torn(&self, seg: &mut Segment, len: u64, reason: &str, exclusive: bool) -> Result<()> {
        self.no_later_segment(seg.first, &seg.path).map_err(|_| {
            corrupt(
                seg.next(),
                &seg.path,
                format!(
                    "bad frame at offset {} of a segment that is not the last: {reason}",
                    seg.end
                ),
            )
        })?;
        if !exclusive {
            return Ok(());
        }
        tracing::warn!(
            path = %seg.path.display(),
            offset = seg.end,
            bytes = len - seg.end,
            reason,
            "the last audit record frame was torn by a crash; it is cut off"
        );
        seg.file
            .set_len(seg.end)
            .and_then(|()| seg.file.sync_all())
            .map_err(|e| LogError::io(format!("truncating {}", seg.path.display()), e))
    }

    /// `Err` if a segment starting after `first` exists.
    fn no_later_segment(&self, first: u64, path: &Path) -> Result<()> {
        match self.segment_files()?.into_iter().find(|(f, _)| *f > first) {
            Some((_, later)) => Err(corrupt(
                first,
                path,
                format!("damaged, and followed by {}", later.display()),
            )),
            None => Ok(()),
        }
    }

    /// Every segment file of the directory, by first sequence number.
    pub(super) fn segment_files(&self) -> Result<Vec<(u64, PathBuf)>> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.dir)
            .map_err(|e| LogError::io(format!("listing {}", self.dir.display()), e))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| LogError::io(format!("listing {}", self.dir.display()), e))?;
            if let Some(first) = entry
                .file_name()
                .to_str()
                .and_then(segment::parse_file_name)
            {
                out.push((first, entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// After the first refresh: every segment file of the directory must be in the index (a
    /// segment after a gap would otherwise go unseen).
    fn check_every_segment_indexed(&self, index: &Index) -> Result<()> {
        for (first, path) in self.segment_files()? {
            if !index.segments.iter().any(|s| s.first == first) {
                return Err(corrupt(
                    first,
                    &path,
                    format!(
                        "the segment does not follow the records before it (the last is {})",
                        index.last()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Appends `records` under the exclusive lock (after a refresh), rolling to new segments as
    /// they fill; syncs every segment written to. Returns the last sequence number.
    pub(super) fn append_locked(&self, index: &mut Index, records: &[&[u8]]) -> Result<u64> {
        let mut pending: Vec<u8> = Vec::new();
        for record in records {
            if record.len() > MAX_RECORD_BYTES {
                return Err(LogError::Invalid {
                    reason: format!(
                        "an audit record of {} bytes is larger than the limit of {MAX_RECORD_BYTES}",
                        record.len()
                    ),
                });
            }
            let full = index.segments.last().is_none_or(|s| {
                !s.offsets.is_empty()
                    && s.end + pending.len() as u64 + segment::frame_bytes(record.len())
                        > self.segment_bytes
            });
            if full {
                self.write_pending(index, &mut pending)?;
                self.new_segment(index)?;
            }
            let Some(last) = index.segments.last_mut() else {
                return Err(LogError::unavailable("no record segment to append to"));
            };
            last.offsets.push(last.end + pending.len() as u64);
            segment::push_frame(&mut pending, record);
        }
        self.write_pending(index, &mut pending)?;
        Ok(index.last())
    }

    /// Writes the frames `pending` (already indexed) at the end of the last segment and syncs.
    fn write_pending(&self, index: &mut Index, pending: &mut Vec<u8>) -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let Some(last) = index.segments.last_mut() else {
            return Err(LogError::unavailable("no record segment to append to"));
        };
        let written = last
            .file
            .write_all_at(pending, last.end)
            .and_then(|()| last.file.sync_data());
        if let Err(e) = written {
            // Nothing of it was acknowledged: forget it, and cut what reached the file.
            let end = last.end;
            last.offsets.retain(|&o| o < end);
            let _ = last.file.set_len(end);
            pending.clear();
            return Err(LogError::io(
                format!("appending to {}", last.path.display()),
                e,
            ));
        }
        last.end += pending.len() as u64;
        pending.clear();
        Ok(())
    }

    /// Starts the segment of the next record: created with its header, synced, and the
    /// directory synced.
    fn new_segment(&self, index: &mut Index) -> Result<()> {
        let first = index.last() + 1;
        let path = self.dir.join(segment::file_name(first));
        let io = |e| LogError::io(format!("creating {}", path.display()), e);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io)?;
        file.write_all_at(&segment::header(first), 0)
            .and_then(|()| file.sync_all())
            .and_then(|()| segment::sync_dir(&self.dir))
            .map_err(io)?;
        index.segments.push(Segment {
            first,
            path,
            file,
            offsets: Vec::new(),
            end: segment::HEADER_BYTES,
        });
        Ok(())
    }

    /// Up to `limit` records after `after`, from the indexed segments.
    pub(super) fn read_indexed(
        &self,
        index: &Index,
        after: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Bytes)>> {
        let mut out = Vec::new();
        let mut sequence = after + 1;
        while out.len() < limit {
            let Some(seg) = index.locate(sequence) else {
                break;
            };
            let i = (sequence - seg.first) as usize;
            let count = (limit - out.len()).min(seg.offsets.len() - i);
            let start = seg.offsets[i];
            let end = seg.offsets.get(i + count).copied().unwrap_or(seg.end);
            let bytes = Bytes::from(read_at(&seg.file, &seg.path, start, end)?);
            let mut at = 0usize;
            for k in 0..count {
                let s = sequence + k as u64;
                match segment::frame_at(&bytes, at) {
                    segment::Frame::Good { start, end } => {
                        out.push((s, bytes.slice(start..end)));
                        at = end;
                    }
                    segment::Frame::End => {
                        return Err(corrupt(s, &seg.path, "the segment ends before the record"))
                    }
                    segment::Frame::Bad(reason) => return Err(corrupt(s, &seg.path, reason)),
                }
            }
            sequence += count as u64;
        }
        Ok(out)
    }

    fn append_blocking(&self, record: &[u8]) -> Result<u64> {
        let mut index = self.index();
        let _locked = self.lock_exclusive()?;
        self.refresh(&mut index, true)?;
        self.append_locked(&mut index, &[record])
    }

    fn read_blocking(&self, after: u64, limit: usize) -> Result<Vec<(u64, Bytes)>> {
        let mut index = self.index();
        {
            let _locked = self.lock_shared()?;
            self.refresh(&mut index, false)?;
        }
        self.read_indexed(&index, after, limit)
    }

    fn last_blocking(&self) -> Result<Option<(u64, Bytes)>> {
        let mut index = self.index();
        {
            let _locked = self.lock_shared()?;
            self.refresh(&mut index, false)?;
        }
        let last = index.last();
        if last == 0 {
            return Ok(None);
        }
        Ok(self.read_indexed(&index, last - 1, 1)?.into_iter().next())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&FileRecords) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| LogError::unavailable(format!("records task failed: {e}")))?
    }
}

/// The error for a bad frame at `offset` (bytes `bytes` start at offset `from`, the frame of
/// record `first`) with good frames after it, naming the damaged record.
fn damaged(
    first: u64,
    bytes: &[u8],
    from: u64,
    offset: u64,
    path: &Path,
    reason: &str,
) -> LogError {
    let good = segment::scan(&bytes[..(offset - from) as usize], from)
        .map(|s| s.offsets.len() as u64)
        .unwrap_or(0);
    corrupt(
        first + good,
        path,
        format!("damaged frame at offset {offset}, with good frames after it: {reason}"),
    )
}

fn file_len(file: &File, path: &Path) -> Result<u64> {
    Ok(file
        .metadata()
        .map_err(|e| LogError::io(format!("reading {}", path.display()), e))?
        .len())
}

fn read_at(file: &File, path: &Path, start: u64, end: u64) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; usize::try_from(end.saturating_sub(start)).unwrap_or(0)];
    file.read_exact_at(&mut buf, start)
        .map_err(|e| LogError::io(format!("reading {}", path.display()), e))?;
    Ok(buf)
}

impl Records for FileRecords {
    async fn append(&self, record: Bytes) -> Result<u64> {
        self.blocking(move |r| r.append_blocking(&record)).await
    }

    async fn read(&self, after: u64, limit: usize) -> Result<Vec<(u64, Bytes)>> {
        self.blocking(move |r| r.read_blocking(after, limit)).await
    }

    async fn last(&self) -> Result<Option<(u64, Bytes)>> {
        self.blocking(|r| r.last_blocking()).await
    }
}
