//! The record segment format: a header, then frames each holding one record.
//!
//! Layout (integers little-endian): header = `DOCKETRC` · format version u32 · reserved u32 ·
//! first sequence number u64 (24 bytes); frame = length `n` u32 · CRC-32 of the 4 length bytes
//! followed by the `n` record bytes, u32 · the record bytes. A segment's file name is
//! `records-<first sequence, zero-padded to 20 digits>.seg`.

use std::path::Path;

use super::file::MAX_RECORD_BYTES;

/// First bytes of every record segment.
const MAGIC: &[u8; 8] = b"DOCKETRC";
/// The format version written by this code.
const FORMAT_VERSION: u32 = 1;
/// Size of the segment header.
pub(crate) const HEADER_BYTES: u64 = 24;
/// Size of a frame's header (length and checksum).
pub(crate) const FRAME_HEADER_BYTES: usize = 8;

/// The file name of the segment whose first record has sequence number `first`.
pub(crate) fn file_name(first: u64) -> String {
    format!("records-{first:020}.seg")
}

/// The first sequence number a segment file name stands for.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("records-")?.strip_suffix(".seg")?;
    twenty_digits(digits)
}

/// The sequence number of a record file of the old layout (one file per record, named by its
/// zero-padded sequence number and nothing else).
pub(crate) fn parse_legacy_name(name: &str) -> Option<u64> {
    twenty_digits(name)
}

fn twenty_digits(digits: &str) -> Option<u64> {
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Encodes a segment header.
pub(crate) fn header(first: u64) -> [u8; HEADER_BYTES as usize] {
    let mut h = [0u8; HEADER_BYTES as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first.to_le_bytes());
    h
}

/// What the first bytes of a segment file are.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Header {
    /// A whole header naming this first sequence number.
    Good(u64),
    /// Fewer bytes than a header, all of them what a header of `first` starts with: a segment
    /// whose creation a crash cut short.
    Torn,
    /// Anything else.
    Bad(String),
}

/// Reads the header of a segment that should start at `first`.
pub(crate) fn parse_header(bytes: &[u8], first: u64) -> Header {
    let expected = header(first);
    if bytes.len() < expected.len() {
        return if expected.starts_with(bytes) {
            Header::Torn
        } else {
            Header::Bad(format!("a header of {} bytes", bytes.len()))
        };
    }
    if &bytes[..8] != MAGIC {
        return Header::Bad("not a docket record segment (bad magic)".into());
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != FORMAT_VERSION {
        return Header::Bad(format!("unknown record segment format version {version}"));
    }
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&bytes[16..24]);
    let stored = u64::from_le_bytes(stored);
    if stored != first {
        return Header::Bad(format!(
            "its header names first record {stored}, its file name {first}"
        ));
    }
    Header::Good(first)
}

fn checksum(len: &[u8; 4], record: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(record);
    hasher.finalize()
}

/// Appends one frame holding `record` to `out` (the caller checked it is at most
/// [`MAX_RECORD_BYTES`], far below `u32::MAX`).
pub(crate) fn push_frame(out: &mut Vec<u8>, record: &[u8]) {
    let len = (record.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&checksum(&len, record).to_le_bytes());
    out.extend_from_slice(record);
}

/// The size of the frame of a record of `len` bytes.
pub(crate) fn frame_bytes(len: usize) -> u64 {
    (FRAME_HEADER_BYTES + len) as u64
}

/// What is at an offset of a segment's bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A good frame whose record spans `start..end`.
    Good { start: usize, end: usize },
    /// The end of the bytes, exactly on a frame boundary.
    End,
    /// Something that is not a good frame.
    Bad(String),
}

/// Reads the frame at `offset` of `buf`, checking its checksum.
pub(crate) fn frame_at(buf: &[u8], offset: usize) -> Frame {
    if offset == buf.len() {
        return Frame::End;
    }
    let Some(head) = buf.get(offset..offset + FRAME_HEADER_BYTES) else {
        return Frame::Bad(format!(
            "{} bytes left, too few for a frame header",
            buf.len().saturating_sub(offset)
        ));
    };
    let len_bytes = [head[0], head[1], head[2], head[3]];
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_RECORD_BYTES {
        return Frame::Bad(format!("frame length {len} exceeds the record size limit"));
    }
    let start = offset + FRAME_HEADER_BYTES;
    let end = start + len;
    let Some(record) = buf.get(start..end) else {
        return Frame::Bad(format!(
            "frame of {len} bytes runs past the end of the segment"
        ));
    };
    if checksum(&len_bytes, record) != crc {
        return Frame::Bad("frame checksum mismatch".into());
    }
    Frame::Good { start, end }
}

/// True if a good frame starts anywhere after `offset`: a bad frame at `offset` is then damage
/// in the middle of the records, not a write torn at their end.
pub(crate) fn good_frame_after(buf: &[u8], offset: usize) -> bool {
    (offset + 1..buf.len()).any(|o| matches!(frame_at(buf, o), Frame::Good { .. }))
}

/// The frames of a segment's bytes after its header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Scan {
    /// The offset of each good frame.
    pub(crate) offsets: Vec<u64>,
    /// The end of the last good frame.
    pub(crate) end: u64,
    /// Why the bytes after `end` are not a frame, if there are any: a torn write, since no good
    /// frame follows.
    pub(crate) torn: Option<String>,
}

/// Scans the frames of `buf` (a segment's bytes from offset `from`, a frame boundary). A bad
/// frame followed by a good one is damage: `Err` with its offset and what is wrong.
pub(crate) fn scan(buf: &[u8], from: u64) -> Result<Scan, (u64, String)> {
    let mut offsets = Vec::new();
    let mut at = 0usize;
    loop {
        match frame_at(buf, at) {
            Frame::Good { end, .. } => {
                offsets.push(from + at as u64);
                at = end;
            }
            Frame::End => {
                return Ok(Scan {
                    offsets,
                    end: from + at as u64,
                    torn: None,
                })
            }
            Frame::Bad(reason) => {
                if good_frame_after(buf, at) {
                    return Err((from + at as u64, reason));
                }
                return Ok(Scan {
                    offsets,
                    end: from + at as u64,
                    torn: Some(reason),
                });
            }
        }
    }
}

/// Makes a directory entry (a new or removed file) durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(file_name(1), "records-00000000000000000001.seg");
        assert_eq!(parse_file_name("records-42.seg"), None);
        assert_eq!(parse_file_name("00000000000000000001.seg"), None);
        assert_eq!(parse_legacy_name("00000000000000000007"), Some(7));
        assert_eq!(parse_legacy_name("0000000000000000007"), None);
        assert_eq!(parse_legacy_name(".record-x.tmp"), None);
    }

    #[test]
    fn headers_torn_and_bad_are_told_apart() {
        assert_eq!(parse_header(&header(7), 7), Header::Good(7));
        assert_eq!(parse_header(&header(7)[..5], 7), Header::Torn);
        assert_eq!(parse_header(&[], 7), Header::Torn);
        assert!(matches!(parse_header(&header(7), 8), Header::Bad(_)));
        let mut h = header(7);
        h[0] = b'X';
        assert!(matches!(parse_header(&h, 7), Header::Bad(_)));
        assert!(matches!(parse_header(&h[..5], 7), Header::Bad(_)));
    }

    #[test]
    fn torn_tails_are_cut_and_damage_is_an_error() {
        let mut buf = Vec::new();
        for r in [&b"one"[..], b"two two", b""] {
            push_frame(&mut buf, r);
        }
        let whole = scan(&buf, 24).unwrap();
        assert_eq!(whole.offsets, vec![24, 24 + 11, 24 + 26]);
        assert_eq!((whole.end, whole.torn), (24 + buf.len() as u64, None));
        // Torn inside the last frame, or inside its header.
        for cut in [buf.len() - 1, buf.len() - 5] {
            let torn = scan(&buf[..cut], 0).unwrap();
            assert_eq!(torn.offsets, vec![0, 11]);
            assert_eq!(torn.end, 26);
            assert!(torn.torn.is_some());
        }
        // A flipped bit in the first record, with good frames after it.
        let mut damaged = buf.clone();
        damaged[9] ^= 0x20;
        assert!(matches!(scan(&damaged, 0), Err((0, _))));
        // A flipped bit in a length, likewise.
        let mut damaged = buf.clone();
        damaged[11] ^= 0x01;
        assert!(matches!(scan(&damaged, 0), Err((11, _))));
    }
}
