//! Segment files: a header, then length-prefixed frames each holding one encoded commit.
//!
//! Layout (all integers little-endian; see `docs/log-format.md`):
//! header = `DOCKETLG` · format version u32 · reserved u32 · base position u64 (24 bytes);
//! frame = length u32 · CRC-32 of the 4 length bytes u32 · commit bytes (which end in their own
//! CRC-32). A segment's file name is its base position, zero-padded to 20 digits, plus `.seg`.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::commit::{self, MAX_COMMIT_BYTES};

/// First bytes of every segment file.
pub(crate) const MAGIC: &[u8; 8] = b"DOCKETLG";
/// The segment format version written by this code.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Size of the segment header.
pub(crate) const HEADER_BYTES: u64 = 24;
/// Size of a frame's header (length and its checksum).
pub(crate) const FRAME_HEADER_BYTES: usize = 8;

/// The file name of the segment starting at `base`.
pub(crate) fn file_name(base: u64) -> String {
    format!("{base:020}.seg")
}

/// Parses a segment file name back into its base position.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Encodes a segment header.
pub(crate) fn header(base: u64) -> [u8; HEADER_BYTES as usize] {
    let mut h = [0u8; HEADER_BYTES as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&base.to_le_bytes());
    h
}

/// Checks a segment header and returns its base position.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() < HEADER_BYTES as usize {
        return Err(format!(
            "header is {} bytes, expected {HEADER_BYTES}",
            bytes.len()
        ));
    }
    if &bytes[..8] != MAGIC {
        return Err("not a docket segment (bad magic)".into());
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != FORMAT_VERSION {
        return Err(format!("unknown segment format version {version}"));
    }
    let mut base = [0u8; 8];
    base.copy_from_slice(&bytes[16..24]);
    Ok(u64::from_le_bytes(base))
}

/// Appends one frame for `commit_bytes` to `out`.
pub(crate) fn push_frame(out: &mut Vec<u8>, commit_bytes: &[u8]) {
    // Commit size is bounded by MAX_COMMIT_BYTES, far below u32::MAX.
    let len = (commit_bytes.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    out.extend_from_slice(commit_bytes);
}

/// What is at a given offset of a segment's bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A good frame whose commit bytes span `start..end`.
    Good { start: usize, end: usize },
    /// The end of the bytes, exactly on a frame boundary.
    End,
    /// Something that is not a good frame.
    Bad(String),
}

/// Reads the frame at `offset` of `buf`, checking both checksums.
pub(crate) fn frame_at(buf: &[u8], offset: usize) -> Frame {
    if offset == buf.len() {
        return Frame::End;
    }
    let Some(head) = buf.get(offset..offset + FRAME_HEADER_BYTES) else {
        return Frame::Bad(format!(
            "{} bytes left, too few for a frame header",
            buf.len() - offset
        ));
    };
    let len_bytes = [head[0], head[1], head[2], head[3]];
    let len_crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if crc32fast::hash(&len_bytes) != len_crc {
        return Frame::Bad("frame length checksum mismatch".into());
    }
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_COMMIT_BYTES {
        return Frame::Bad(format!("frame length {len} exceeds the commit size limit"));
    }
    let start = offset + FRAME_HEADER_BYTES;
    let end = start + len;
    let Some(body) = buf.get(start..end) else {
        return Frame::Bad(format!(
            "frame of {len} bytes runs past the end of the segment"
        ));
    };
    match commit::check(body) {
        Ok(()) => Frame::Good { start, end },
        Err(reason) => Frame::Bad(reason),
    }
}

/// True if some good frame starts anywhere after `offset`: then a bad frame at `offset` is
/// damage in the middle of the log, not a torn write at its end.
pub(crate) fn good_frame_after(buf: &[u8], offset: usize) -> bool {
    (offset + 1..buf.len()).any(|o| matches!(frame_at(buf, o), Frame::Good { .. }))
}

/// Lists the segment files of a directory, sorted by base position.
pub(crate) fn list(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(base) = name.to_str().and_then(parse_file_name) {
            out.push((base, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Makes a directory entry (a new or removed file) durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("42.seg"), None);
        assert_eq!(parse_file_name("0000000000000000004x.seg"), None);
    }

    #[test]
    fn header_round_trips_and_rejects_garbage() {
        assert_eq!(parse_header(&header(7)), Ok(7));
        assert!(parse_header(b"DOCKETLG").is_err());
        let mut h = header(7);
        h[0] = b'X';
        assert!(parse_header(&h).is_err());
    }

    #[test]
    fn torn_and_bad_frames_are_told_apart_from_good_ones() {
        let commit = crate::Commit {
            stream: crate::StreamId::new("case/1").unwrap(),
            prev: None,
            metadata: crate::Metadata::default(),
            events: vec![crate::EventData {
                id: uuid::Uuid::nil(),
                type_name: "t".into(),
                type_version: 1,
                payload: bytes::Bytes::from_static(b"x"),
            }],
        };
        let body = commit::encode(&commit).unwrap();
        let mut buf = Vec::new();
        push_frame(&mut buf, &body);
        push_frame(&mut buf, &body);
        let second = FRAME_HEADER_BYTES + body.len();
        assert_eq!(
            frame_at(&buf, 0),
            Frame::Good {
                start: 8,
                end: second
            }
        );
        assert_eq!(frame_at(&buf, buf.len()), Frame::End);
        // Torn: the buffer ends inside the frame header, or inside the commit.
        assert!(matches!(
            frame_at(&buf[..second + 5], second),
            Frame::Bad(_)
        ));
        assert!(matches!(
            frame_at(&buf[..buf.len() - 1], second),
            Frame::Bad(_)
        ));
        // Damaged first frame followed by a good one.
        let mut damaged = buf.clone();
        damaged[10] ^= 0x40;
        assert!(matches!(frame_at(&damaged, 0), Frame::Bad(_)));
        assert!(good_frame_after(&damaged, 0));
        assert!(!good_frame_after(&damaged[..second + 3], 0));
    }
}
