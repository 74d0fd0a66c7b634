//! The single writer thread of the file backend: validates appends, frames them, and makes each
//! batch durable with one `fdatasync` before any append in it is acknowledged (group commit).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::{segment, Segment, Shared};
use crate::commit::{self, Appended, Commit, CommitHash, EventData, ExpectedRevision, Metadata};
use crate::commit::{StreamId, StreamLink};
use crate::error::{LogError, Result};

/// Most appends made durable by one sync.
const MAX_BATCH: usize = 2048;
/// Payload bytes after which a batch stops growing.
const MAX_BATCH_BYTES: usize = 8 << 20;

/// One request to the writer.
#[derive(Debug)]
pub(crate) enum Request {
    Append(AppendRequest),
    /// Finish what is queued, then stop and release the directory lock.
    Close(oneshot::Sender<()>),
}

/// An append waiting for the writer.
#[derive(Debug)]
pub(crate) struct AppendRequest {
    pub(crate) stream: StreamId,
    pub(crate) expected: ExpectedRevision,
    pub(crate) events: Vec<EventData>,
    pub(crate) metadata: Metadata,
    pub(crate) reply: oneshot::Sender<Result<Appended>>,
}

impl AppendRequest {
    fn approx_bytes(&self) -> usize {
        self.events.iter().map(|e| e.payload.len() + 64).sum()
    }
}

/// The key the writer deduplicates on: the first 128 bits of SHA-256 of the dedup id.
pub(crate) type DedupKey = [u8; 16];

/// Hashes a dedup id into a [`DedupKey`].
pub(crate) fn dedup_key(id: &str) -> DedupKey {
    let digest = Sha256::digest(id.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Everything only the writer touches.
#[derive(Debug)]
pub(crate) struct WriterState {
    pub(crate) dir: PathBuf,
    pub(crate) segment_bytes: u64,
    /// The segment being appended to, opened for append.
    pub(crate) file: File,
    pub(crate) file_len: u64,
    pub(crate) next_position: u64,
    /// Latest commit of every stream, including appends not yet durable.
    pub(crate) heads: HashMap<StreamId, StreamLink>,
    pub(crate) dedup: HashMap<DedupKey, u64>,
    /// Held (locked) for as long as the writer runs.
    pub(crate) _lock: File,
}

/// A commit framed into the batch buffer, waiting for the sync.
struct Pending {
    stream: StreamId,
    position: u64,
    offset: u64,
}

impl WriterState {
    /// Checks one append against the stream's state and encodes it.
    fn prepare(&mut self, req: &mut AppendRequest) -> Result<(Vec<u8>, Appended)> {
        commit::validate(&req.metadata, &req.events)?;
        let key = dedup_key(&commit::dedup_id(&req.metadata, &req.events));
        if let Some(&position) = self.dedup.get(&key) {
            return Err(LogError::Duplicate { position });
        }
        let head = self.heads.get(&req.stream).copied();
        let actual = head.map_or(0, |h| h.revision);
        let ok = match req.expected {
            ExpectedRevision::Any => true,
            ExpectedRevision::NoStream => head.is_none(),
            ExpectedRevision::Exact(r) => actual == r,
        };
        if !ok {
            return Err(LogError::Conflict {
                stream: req.stream.to_string(),
                expected: req.expected,
                actual,
            });
        }
        let commit = Commit {
            stream: req.stream.clone(),
            prev: head,
            metadata: std::mem::take(&mut req.metadata),
            events: std::mem::take(&mut req.events),
        };
        let bytes = commit::encode(&commit)?;
        let position = self.next_position;
        let hash = CommitHash::of(&bytes);
        self.next_position += 1;
        self.heads.insert(
            req.stream.clone(),
            StreamLink {
                revision: position,
                hash,
            },
        );
        self.dedup.insert(key, position);
        Ok((
            bytes,
            Appended {
                position,
                revision: position,
                hash,
            },
        ))
    }

    /// Starts a new segment at the next position; the old one is already durable.
    fn roll(&mut self, shared: &Shared) -> std::io::Result<()> {
        let base = self.next_position;
        let path = self.dir.join(segment::file_name(base));
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .read(true)
            .open(&path)?;
        file.write_all(&segment::header(base))?;
        file.sync_all()?;
        segment::sync_dir(&self.dir)?;
        let reader = Arc::new(File::open(&path)?);
        self.file = file;
        self.file_len = segment::HEADER_BYTES;
        let mut index = shared.write_index();
        index.segments.push(Segment {
            base,
            file: reader,
            offsets: Vec::new(),
            end: segment::HEADER_BYTES,
        });
        Ok(())
    }
}

/// The writer loop; returns when every sender is gone or a close is asked for.
pub(crate) fn run(mut st: WriterState, shared: Arc<Shared>, mut rx: mpsc::Receiver<Request>) {
    let mut batch: Vec<AppendRequest> = Vec::with_capacity(MAX_BATCH);
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut failed: Option<String> = None;
    let mut close = None;
    while close.is_none() {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(req) = next.take() {
            match req {
                Request::Append(a) => {
                    bytes += a.approx_bytes();
                    batch.push(a);
                }
                Request::Close(done) => {
                    close = Some(done);
                    break;
                }
            }
            if batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                next = rx.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        if let Some(reason) = &failed {
            for req in batch.drain(..) {
                let _ = req.reply.send(Err(LogError::unavailable(reason.clone())));
            }
            continue;
        }
        if st.file_len >= st.segment_bytes {
            if let Err(e) = st.roll(&shared) {
                tracing::error!(error = %e, "cannot start a new segment; the log refuses appends");
                failed = Some(format!("cannot start a new segment: {e}"));
                for req in batch.drain(..) {
                    let _ = req.reply.send(Err(LogError::unavailable(format!(
                        "cannot start a new segment: {e}"
                    ))));
                }
                continue;
            }
        }
        buf.clear();
        let mut pending = Vec::with_capacity(batch.len());
        let mut outcomes = Vec::with_capacity(batch.len());
        for mut req in batch.drain(..) {
            let outcome = st.prepare(&mut req);
            if let Ok((bytes, appended)) = &outcome {
                pending.push(Pending {
                    stream: req.stream.clone(),
                    position: appended.position,
                    offset: st.file_len + buf.len() as u64,
                });
                segment::push_frame(&mut buf, bytes);
            }
            outcomes.push((req.reply, outcome.map(|(_, a)| a)));
        }
        let synced = if buf.is_empty() {
            Ok(())
        } else {
            st.file.write_all(&buf).and_then(|()| st.file.sync_data())
        };
        match synced {
            Ok(()) => {
                st.file_len += buf.len() as u64;
                if let Some(last) = pending.last() {
                    let mut index = shared.write_index();
                    let end = st.file_len;
                    for p in &pending {
                        index
                            .streams
                            .entry(p.stream.clone())
                            .or_default()
                            .push(p.position);
                        if let Some(seg) = index.segments.last_mut() {
                            seg.offsets.push(p.offset);
                        }
                    }
                    if let Some(seg) = index.segments.last_mut() {
                        seg.end = end;
                    }
                    index.head = last.position;
                    drop(index);
                    shared.publish_head(last.position);
                }
                for (reply, outcome) in outcomes {
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                // After a failed fsync the page cache can no longer be trusted (fsyncgate):
                // refuse everything from now on; reopening recovers from what is on disk.
                tracing::error!(error = %e, "write or fdatasync failed; the log refuses appends until reopened");
                let reason = format!("write or fdatasync failed: {e}");
                failed = Some(reason.clone());
                for (reply, _) in outcomes {
                    let _ = reply.send(Err(LogError::unavailable(reason.clone())));
                }
            }
        }
    }
    shared.mark_closed();
    drop(st);
    if let Some(done) = close {
        let _ = done.send(());
    }
}
