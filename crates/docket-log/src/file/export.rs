//! Segment files outside a running log: a read-only reader that checks every frame and reports
//! the first bad position exactly, and a writer that lays given commit bytes out in new segment
//! files. Both use the format of `docs/log-format.md`, so a directory the writer made is also a
//! log that [`super::FileLog::open`] opens.
//!
//! Unlike [`super::FileLog::open`], the reader never changes a file: a torn last frame is not
//! cut off but reported as [`ReadErrorKind::Truncated`] at its position, since an export or a
//! copy of a log handed to an auditor has no crash to recover from.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::segment::{self, FRAME_HEADER_BYTES, HEADER_BYTES};
use crate::commit::{self, MAX_COMMIT_BYTES};
use crate::error::{LogError, Result};

/// What kind of damage a [`ReadError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadErrorKind {
    /// A file could not be listed or read.
    Io,
    /// A segment header is not a segment header of a known format version.
    Header,
    /// A frame's length checksum or its commit's own checksum (or envelope version) is wrong.
    Checksum,
    /// The bytes end inside a frame (or inside a segment header).
    Truncated,
    /// Positions are not dense: a segment starts somewhere other than right after the previous.
    Position,
}

impl ReadErrorKind {
    /// A short stable name: `io`, `header`, `checksum`, `truncated`, `position`.
    pub fn name(self) -> &'static str {
        match self {
            ReadErrorKind::Io => "io",
            ReadErrorKind::Header => "header",
            ReadErrorKind::Checksum => "checksum",
            ReadErrorKind::Truncated => "truncated",
            ReadErrorKind::Position => "position",
        }
    }
}

/// The first thing wrong in a directory of segment files, at the position of the first commit
/// that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadError {
    /// The position of the first commit that could not be read.
    pub position: u64,
    /// What kind of damage.
    pub kind: ReadErrorKind,
    /// What exactly, with the file and offset.
    pub reason: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "position {} ({}): {}",
            self.position,
            self.kind.name(),
            self.reason
        )
    }
}

impl std::error::Error for ReadError {}

impl From<ReadError> for LogError {
    fn from(e: ReadError) -> Self {
        match e.kind {
            ReadErrorKind::Io => LogError::unavailable(e.reason),
            _ => LogError::Corrupt {
                position: e.position,
                reason: format!("{}: {}", e.kind.name(), e.reason),
            },
        }
    }
}

/// Reads the commits of a directory of segment files in order, read-only, checking both
/// checksums of every frame and that positions are dense from the first segment's base.
///
/// It is an iterator of `(position, commit bytes)`; the bytes share one buffer per segment
/// (one segment is in memory at a time). After the first error it yields nothing more.
#[derive(Debug)]
pub struct SegmentReader {
    segments: Vec<(u64, PathBuf)>,
    next_segment: usize,
    /// The position the next commit must have.
    position: u64,
    current: Option<Current>,
    done: bool,
}

#[derive(Debug)]
struct Current {
    path: PathBuf,
    buf: Bytes,
    offset: usize,
}

impl SegmentReader {
    /// Lists the segment files of `dir` (files named `<20 digits>.seg`; others are ignored).
    /// The log must start at position 1.
    pub fn open(dir: &Path) -> std::result::Result<Self, ReadError> {
        let segments = segment::list(dir).map_err(|e| ReadError {
            position: 1,
            kind: ReadErrorKind::Io,
            reason: format!("listing {}: {e}", dir.display()),
        })?;
        Ok(SegmentReader {
            segments,
            next_segment: 0,
            position: 1,
            current: None,
            done: false,
        })
    }

    /// The segment files found, by base position.
    pub fn segments(&self) -> &[(u64, PathBuf)] {
        &self.segments
    }

    /// The total size of the segment files in bytes (from their metadata).
    pub fn total_bytes(&self) -> u64 {
        self.segments
            .iter()
            .filter_map(|(_, p)| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }

    /// The position the next commit read will have (one past the last good one).
    pub fn next_position(&self) -> u64 {
        self.position
    }

    fn fail(&mut self, kind: ReadErrorKind, reason: String) -> ReadError {
        self.done = true;
        ReadError {
            position: self.position,
            kind,
            reason,
        }
    }

    /// Loads the next segment; `Ok(false)` when there is none.
    fn load_next(&mut self) -> std::result::Result<bool, ReadError> {
        let Some((base, path)) = self.segments.get(self.next_segment).cloned() else {
            return Ok(false);
        };
        self.next_segment += 1;
        if base != self.position {
            return Err(self.fail(
                ReadErrorKind::Position,
                format!(
                    "segment {} starts at position {base}, expected {}",
                    path.display(),
                    self.position
                ),
            ));
        }
        let buf = match std::fs::read(&path) {
            Ok(buf) => Bytes::from(buf),
            Err(e) => {
                return Err(self.fail(
                    ReadErrorKind::Io,
                    format!("reading {}: {e}", path.display()),
                ))
            }
        };
        if buf.len() < HEADER_BYTES as usize {
            return Err(self.fail(
                ReadErrorKind::Truncated,
                format!(
                    "segment {} is {} bytes, shorter than its {HEADER_BYTES}-byte header",
                    path.display(),
                    buf.len()
                ),
            ));
        }
        match segment::parse_header(&buf) {
            Ok(b) if b == base => {}
            Ok(b) => {
                return Err(self.fail(
                    ReadErrorKind::Position,
                    format!(
                        "segment {} says it starts at position {b}, its name says {base}",
                        path.display()
                    ),
                ))
            }
            Err(reason) => {
                return Err(self.fail(
                    ReadErrorKind::Header,
                    format!("segment {}: {reason}", path.display()),
                ))
            }
        }
        self.current = Some(Current {
            path,
            buf,
            offset: HEADER_BYTES as usize,
        });
        Ok(true)
    }

    fn next_commit(&mut self) -> Option<std::result::Result<(u64, Bytes), ReadError>> {
        if self.done {
            return None;
        }
        loop {
            let Some(cur) = &mut self.current else {
                match self.load_next() {
                    Ok(true) => continue,
                    Ok(false) => {
                        self.done = true;
                        return None;
                    }
                    Err(e) => return Some(Err(e)),
                }
            };
            let (buf, offset) = (&cur.buf, cur.offset);
            if offset == buf.len() {
                self.current = None;
                continue;
            }
            let left = buf.len() - offset;
            let at = format!("{} at offset {offset}", cur.path.display());
            if left < FRAME_HEADER_BYTES {
                return Some(Err(self.fail(
                    ReadErrorKind::Truncated,
                    format!("{at}: truncated: {left} bytes left, too few for a frame header"),
                )));
            }
            let head = &buf[offset..offset + FRAME_HEADER_BYTES];
            let len_bytes = [head[0], head[1], head[2], head[3]];
            let len_crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            if crc32fast::hash(&len_bytes) != len_crc {
                return Some(Err(self.fail(
                    ReadErrorKind::Checksum,
                    format!("{at}: frame length checksum mismatch"),
                )));
            }
            let len = u32::from_le_bytes(len_bytes) as usize;
            if len > MAX_COMMIT_BYTES {
                return Some(Err(self.fail(
                    ReadErrorKind::Checksum,
                    format!("{at}: frame length {len} exceeds the commit size limit"),
                )));
            }
            let start = offset + FRAME_HEADER_BYTES;
            let end = start + len;
            if end > buf.len() {
                let reason = format!(
                    "{at}: truncated: a frame of {len} bytes, but the segment ends {} bytes into it",
                    buf.len() - start
                );
                return Some(Err(self.fail(ReadErrorKind::Truncated, reason)));
            }
            if let Err(reason) = commit::check(&buf[start..end]) {
                return Some(Err(
                    self.fail(ReadErrorKind::Checksum, format!("{at}: {reason}"))
                ));
            }
            let bytes = buf.slice(start..end);
            cur.offset = end;
            let position = self.position;
            self.position += 1;
            return Some(Ok((position, bytes)));
        }
    }
}

impl Iterator for SegmentReader {
    type Item = std::result::Result<(u64, Bytes), ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_commit()
    }
}

/// What a [`SegmentWriter`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// The position of the last commit written (the first position minus one if none).
    pub head: u64,
    /// Segment files written.
    pub segments: usize,
    /// Bytes written, headers and frames.
    pub bytes: u64,
}

/// Writes given commit bytes verbatim into new segment files, starting a new segment once the
/// current one passes `segment_bytes`; every file is synced when closed and the directory at
/// [`SegmentWriter::finish`].
///
/// It does not check the commits (an auditor's tests write damaged ones on purpose); only their
/// size, which the frame format bounds.
#[derive(Debug)]
pub struct SegmentWriter {
    dir: PathBuf,
    segment_bytes: u64,
    first_position: u64,
    next_position: u64,
    file: Option<(PathBuf, BufWriter<File>)>,
    file_len: u64,
    segments: usize,
    bytes: u64,
    frame: Vec<u8>,
}

impl SegmentWriter {
    /// A writer into `dir` (created if missing), whose first commit gets `first_position`.
    /// Refuses a directory that already holds segment files.
    pub fn create(dir: &Path, first_position: u64, segment_bytes: u64) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
        let existing = segment::list(dir)
            .map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?;
        if let Some((_, path)) = existing.first() {
            return Err(LogError::Invalid {
                reason: format!("{} already holds segment files", path.display()),
            });
        }
        if first_position == 0 {
            return Err(LogError::Invalid {
                reason: "positions start at 1".into(),
            });
        }
        Ok(SegmentWriter {
            dir: dir.to_path_buf(),
            segment_bytes: segment_bytes.max(HEADER_BYTES + 1),
            first_position,
            next_position: first_position,
            file: None,
            file_len: 0,
            segments: 0,
            bytes: 0,
            frame: Vec::new(),
        })
    }

    /// The position the next commit written gets.
    pub fn next_position(&self) -> u64 {
        self.next_position
    }

    fn start_segment(&mut self) -> Result<()> {
        let path = self.dir.join(segment::file_name(self.next_position));
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(|e| LogError::io(format!("creating {}", path.display()), e))?;
        let mut file = BufWriter::with_capacity(1 << 20, file);
        file.write_all(&segment::header(self.next_position))
            .map_err(|e| LogError::io(format!("writing {}", path.display()), e))?;
        self.file = Some((path, file));
        self.file_len = HEADER_BYTES;
        self.segments += 1;
        self.bytes += HEADER_BYTES;
        Ok(())
    }

    fn close_segment(&mut self) -> Result<()> {
        if let Some((path, file)) = self.file.take() {
            let file = file
                .into_inner()
                .map_err(|e| LogError::io(format!("writing {}", path.display()), e.into_error()))?;
            file.sync_all()
                .map_err(|e| LogError::io(format!("syncing {}", path.display()), e))?;
        }
        Ok(())
    }

    /// Appends one commit's bytes as the next frame; returns its position.
    pub fn push(&mut self, commit_bytes: &[u8]) -> Result<u64> {
        if commit_bytes.len() > MAX_COMMIT_BYTES {
            return Err(LogError::TooLarge {
                size: commit_bytes.len(),
                limit: MAX_COMMIT_BYTES,
            });
        }
        if self.file.is_some() && self.file_len >= self.segment_bytes {
            self.close_segment()?;
        }
        if self.file.is_none() {
            self.start_segment()?;
        }
        self.frame.clear();
        segment::push_frame(&mut self.frame, commit_bytes);
        if let Some((path, file)) = &mut self.file {
            file.write_all(&self.frame)
                .map_err(|e| LogError::io(format!("writing {}", path.display()), e))?;
        }
        let n = self.frame.len() as u64;
        self.file_len += n;
        self.bytes += n;
        let position = self.next_position;
        self.next_position += 1;
        Ok(position)
    }

    /// Syncs and closes the last segment and syncs the directory. A writer given no commit
    /// writes one empty segment, so that the directory is still a log.
    pub fn finish(mut self) -> Result<Written> {
        if self.segments == 0 {
            self.start_segment()?;
        }
        self.close_segment()?;
        segment::sync_dir(&self.dir)
            .map_err(|e| LogError::io(format!("syncing {}", self.dir.display()), e))?;
        Ok(Written {
            head: self.next_position - 1,
            segments: self.segments,
            bytes: self.bytes,
        })
    }

    /// The position the first commit got.
    pub fn first_position(&self) -> u64 {
        self.first_position
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Commit, EventData, Metadata, StreamId};

    fn commit_bytes(i: u8) -> Vec<u8> {
        commit::encode(&Commit {
            stream: StreamId::new(format!("case/c{i}")).unwrap(),
            prev: None,
            metadata: Metadata::default(),
            events: vec![EventData {
                id: uuid::Uuid::from_u128(u128::from(i)),
                type_name: "t".into(),
                type_version: 1,
                payload: Bytes::from(vec![i; 40]),
            }],
        })
        .unwrap()
    }

    fn written(n: u8, segment_bytes: u64) -> (tempfile::TempDir, Vec<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let commits: Vec<Vec<u8>> = (1..=n).map(commit_bytes).collect();
        let mut w = SegmentWriter::create(dir.path(), 1, segment_bytes).unwrap();
        for c in &commits {
            w.push(c).unwrap();
        }
        let done = w.finish().unwrap();
        assert_eq!(done.head, u64::from(n));
        (dir, commits)
    }

    fn read(dir: &Path) -> (Vec<(u64, Vec<u8>)>, Option<ReadError>) {
        let mut good = Vec::new();
        for item in SegmentReader::open(dir).unwrap() {
            match item {
                Ok((p, b)) => good.push((p, b.to_vec())),
                Err(e) => return (good, Some(e)),
            }
        }
        (good, None)
    }

    #[test]
    fn writes_and_reads_back_verbatim_across_segments() {
        let (dir, commits) = written(20, 200);
        let reader = SegmentReader::open(dir.path()).unwrap();
        assert!(reader.segments().len() > 3, "small segments roll");
        let (got, err) = read(dir.path());
        assert_eq!(err, None);
        let want: Vec<(u64, Vec<u8>)> = (1..).zip(commits).collect();
        assert_eq!(got, want);
        // A second writer refuses the same directory; an empty writer still makes a log.
        assert!(SegmentWriter::create(dir.path(), 1, 200).is_err());
        let empty = tempfile::tempdir().unwrap();
        let w = SegmentWriter::create(empty.path(), 1, 200).unwrap();
        assert_eq!(w.finish().unwrap().segments, 1);
        assert_eq!(read(empty.path()), (Vec::new(), None));
    }

    #[test]
    fn damage_is_reported_at_its_position_and_nothing_is_changed() {
        // One segment: frame k starts at 24 + (k - 1) * frame size.
        let (dir, commits) = written(5, 1 << 20);
        let path = dir.path().join(segment::file_name(1));
        let honest = std::fs::read(&path).unwrap();
        let frame = FRAME_HEADER_BYTES + commits[0].len();
        let cases: Vec<(Vec<u8>, u64, ReadErrorKind)> = vec![
            // A flipped byte in commit 3's body.
            (
                {
                    let mut b = honest.clone();
                    b[24 + 2 * frame + 20] ^= 1;
                    b
                },
                3,
                ReadErrorKind::Checksum,
            ),
            // A flipped byte in commit 2's length.
            (
                {
                    let mut b = honest.clone();
                    b[24 + frame] ^= 1;
                    b
                },
                2,
                ReadErrorKind::Checksum,
            ),
            // Cut inside the last frame, and inside its header.
            (
                honest[..honest.len() - 3].to_vec(),
                5,
                ReadErrorKind::Truncated,
            ),
            (
                honest[..24 + 4 * frame + 5].to_vec(),
                5,
                ReadErrorKind::Truncated,
            ),
            // A bad header.
            (
                {
                    let mut b = honest.clone();
                    b[0] = b'X';
                    b
                },
                1,
                ReadErrorKind::Header,
            ),
        ];
        for (i, (bytes, position, kind)) in cases.into_iter().enumerate() {
            std::fs::write(&path, &bytes).unwrap();
            let (good, err) = read(dir.path());
            let err = err.unwrap_or_else(|| panic!("case {i}: no error"));
            assert_eq!(
                (err.position, err.kind),
                (position, kind),
                "case {i}: {err}"
            );
            assert_eq!(good.len() as u64, position - 1, "case {i}");
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "case {i}: read-only");
        }
        // A gap between segments.
        let (dir, _) = written(6, 200);
        let segs = SegmentReader::open(dir.path()).unwrap().segments().to_vec();
        std::fs::remove_file(&segs[1].1).unwrap();
        let (good, err) = read(dir.path());
        let err = err.unwrap();
        assert_eq!(err.kind, ReadErrorKind::Position);
        assert_eq!(err.position, segs[1].0);
        assert_eq!(good.len() as u64, segs[1].0 - 1);
    }
}
