//! Reading an export's commits for [`super::verify`]: chunks of commits from the segment
//! files, hashed (commit hash and leaf hash) and decoded on several threads, in log order.

use bytes::Bytes;
use docket_log::commit::{self, Commit};
use docket_log::file::export::{ReadError, ReadErrorKind, SegmentReader};
use docket_log::CommitHash;

use super::{failure, Failure, CHECKSUM, POSITION};
use crate::tree::{leaf_hash, Hash};

/// Commits hashed and decoded per parallel step.
pub(super) const CHUNK: usize = 16 * 1024;

/// One commit after the parallel step.
pub(super) struct Hashed {
    pub(super) position: u64,
    pub(super) bytes: Bytes,
    pub(super) commit: Result<Commit, String>,
    pub(super) hash: CommitHash,
    pub(super) leaf: Hash,
}

fn hash_one(position: u64, bytes: Bytes) -> Hashed {
    Hashed {
        position,
        hash: CommitHash::of(&bytes),
        leaf: leaf_hash(&bytes),
        commit: commit::decode(&bytes),
        bytes,
    }
}

/// Hashes and decodes a chunk on `threads` threads, keeping the order.
pub(super) fn hash_chunk(chunk: Vec<(u64, Bytes)>, threads: usize) -> Vec<Hashed> {
    if threads <= 1 || chunk.len() < 256 {
        return chunk.into_iter().map(|(p, b)| hash_one(p, b)).collect();
    }
    let per = chunk.len().div_ceil(threads);
    let mut parts: Vec<Vec<(u64, Bytes)>> = Vec::with_capacity(threads);
    let mut rest = chunk;
    while rest.len() > per {
        let tail = rest.split_off(per);
        parts.push(rest);
        rest = tail;
    }
    parts.push(rest);
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(parts.len());
        let mut parts = parts.into_iter();
        let mine = parts.next().unwrap_or_default();
        for part in parts {
            handles.push(scope.spawn(move || {
                part.into_iter()
                    .map(|(p, b)| hash_one(p, b))
                    .collect::<Vec<_>>()
            }));
        }
        let mut out: Vec<Hashed> = mine.into_iter().map(|(p, b)| hash_one(p, b)).collect();
        for handle in handles {
            match handle.join() {
                Ok(done) => out.extend(done),
                // Hashing and decoding do not panic on any input; if one did, resume it.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// Reads up to [`CHUNK`] commits: them, the read error that stopped it, and whether it was the
/// last chunk.
pub(super) fn read_chunk(
    reader: &mut SegmentReader,
) -> (Vec<(u64, Bytes)>, Option<ReadError>, bool) {
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut read_error = None;
    for item in reader.by_ref() {
        match item {
            Ok(c) => {
                chunk.push(c);
                if chunk.len() == CHUNK {
                    break;
                }
            }
            Err(e) => {
                read_error = Some(e);
                break;
            }
        }
    }
    let last = chunk.len() < CHUNK || read_error.is_some();
    (chunk, read_error, last)
}

/// The failure a read error is.
pub(super) fn read_failure(e: ReadError) -> Failure {
    let rule = match e.kind {
        ReadErrorKind::Position => POSITION,
        _ => CHECKSUM,
    };
    failure(e.position, rule, format!("{}: {}", e.kind.name(), e.reason))
}
