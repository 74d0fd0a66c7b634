//! The file backend: the log as segment files in one directory, for the embedded deployment.
//!
//! One writer thread owns all writes (see [`writer`]); readers take a snapshot of the in-memory
//! index under a short read lock and then read the segment files with positioned reads, so they
//! run concurrently with the writer and never see a commit before it is durable.

pub mod export;
mod segment;
mod writer;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::commit::{self, Appended, EventData, ExpectedRevision, Metadata, RecordedCommit};
use crate::commit::{CommitHash, StreamId, StreamLink};
use crate::error::{LogError, Result};
use crate::{CommitStream, EventLog};
use segment::Frame;
use writer::{AppendRequest, Request, WriterState};

/// Default size after which a new segment file is started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// Commits read per batch by [`EventLog::read_all`] callers such as subscriptions.
const READ_BATCH: usize = 4096;

/// Where and how the file backend stores the log.
#[derive(Clone, Debug)]
pub struct FileLogConfig {
    /// The data directory (created if missing).
    pub dir: PathBuf,
    /// Size after which a new segment file is started.
    pub segment_bytes: u64,
}

impl FileLogConfig {
    /// Defaults for a data directory.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileLogConfig {
            dir: dir.into(),
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// One segment file as readers see it.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Position of its first commit.
    pub(crate) base: u64,
    /// A read-only handle for positioned reads.
    pub(crate) file: Arc<File>,
    /// File offset of each durable frame, in position order.
    pub(crate) offsets: Vec<u64>,
    /// End of the last durable frame.
    pub(crate) end: u64,
}

/// The readers' view of the log: durable commits only.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub(crate) segments: Vec<Segment>,
    pub(crate) streams: HashMap<StreamId, Vec<u64>>,
    pub(crate) head: u64,
}

/// A contiguous run of frames in one segment.
struct Run {
    file: Arc<File>,
    first_position: u64,
    count: usize,
    start: u64,
    end: u64,
}

impl Index {
    /// The segment holding `position`, if it is durable.
    fn locate(&self, position: u64) -> Option<&Segment> {
        if position == 0 || position > self.head {
            return None;
        }
        let i = self.segments.partition_point(|s| s.base <= position);
        self.segments.get(i.checked_sub(1)?)
    }

    /// Plans reading up to `limit` commits after `after`.
    fn plan(&self, after: u64, limit: usize) -> Vec<Run> {
        let mut runs = Vec::new();
        let mut position = after + 1;
        let mut left = limit;
        while left > 0 {
            let Some(seg) = self.locate(position) else {
                break;
            };
            let idx = (position - seg.base) as usize;
            let count = left.min(seg.offsets.len().saturating_sub(idx));
            if count == 0 {
                break;
            }
            let end = seg.offsets.get(idx + count).copied().unwrap_or(seg.end);
            runs.push(Run {
                file: seg.file.clone(),
                first_position: position,
                count,
                start: seg.offsets[idx],
                end,
            });
            position += count as u64;
            left -= count;
        }
        runs
    }
}

/// The durable head, and whether the log was closed.
#[derive(Clone, Copy, Debug, Default)]
struct HeadState {
    head: u64,
    closed: bool,
}

/// State shared by the handle, the writer thread and subscriptions.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The data directory.
    dir: PathBuf,
    index: RwLock<Index>,
    head: watch::Sender<HeadState>,
}

impl Shared {
    fn read_index(&self) -> RwLockReadGuard<'_, Index> {
        // A poisoned lock only means a reader panicked; the index itself is still consistent
        // because it is only changed by the writer, which does not panic while holding it.
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write_index(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn publish_head(&self, head: u64) {
        self.head.send_modify(|h| h.head = head);
    }

    pub(crate) fn mark_closed(&self) {
        self.head.send_modify(|h| h.closed = true);
    }

    /// Reads up to `limit` commits after `after` (blocking IO).
    fn read_range(&self, after: u64, limit: usize) -> Result<Vec<RecordedCommit>> {
        let runs = self.read_index().plan(after, limit);
        let mut out = Vec::with_capacity(runs.iter().map(|r| r.count).sum());
        for run in runs {
            let buf = read_at(&run.file, run.start, run.end, run.first_position)?;
            let mut offset = 0;
            for i in 0..run.count {
                let position = run.first_position + i as u64;
                match segment::frame_at(&buf, offset) {
                    Frame::Good { start, end } => {
                        out.push(RecordedCommit::decode(position, buf.slice(start..end))?);
                        offset = end;
                    }
                    Frame::End => {
                        return Err(LogError::Corrupt {
                            position,
                            reason: "segment ends before the indexed commit".into(),
                        })
                    }
                    Frame::Bad(reason) => return Err(LogError::Corrupt { position, reason }),
                }
            }
        }
        Ok(out)
    }

    /// Reads every commit of one stream (blocking IO).
    fn read_stream(&self, stream: &StreamId) -> Result<Vec<RecordedCommit>> {
        let frames: Vec<(u64, Arc<File>, u64, u64)> = {
            let index = self.read_index();
            let Some(positions) = index.streams.get(stream) else {
                return Err(LogError::NotFound {
                    what: format!("stream {stream}"),
                });
            };
            let mut frames = Vec::with_capacity(positions.len());
            for &p in positions {
                let seg = index.locate(p).ok_or_else(|| LogError::Corrupt {
                    position: p,
                    reason: "indexed position outside every segment".into(),
                })?;
                let i = (p - seg.base) as usize;
                let start = seg.offsets[i];
                let end = seg.offsets.get(i + 1).copied().unwrap_or(seg.end);
                frames.push((p, seg.file.clone(), start, end));
            }
            frames
        };
        frames
            .into_iter()
            .map(|(position, file, start, end)| {
                let buf = read_at(&file, start, end, position)?;
                match segment::frame_at(&buf, 0) {
                    Frame::Good { start, end } => {
                        RecordedCommit::decode(position, buf.slice(start..end))
                    }
                    Frame::End => Err(LogError::Corrupt {
                        position,
                        reason: "empty frame".into(),
                    }),
                    Frame::Bad(reason) => Err(LogError::Corrupt { position, reason }),
                }
            })
            .collect()
    }
}

/// Reads `start..end` of a segment file.
fn read_at(file: &File, start: u64, end: u64, position: u64) -> Result<Bytes> {
    let mut buf = vec![0u8; (end - start) as usize];
    file.read_exact_at(&mut buf, start)
        .map_err(|e| LogError::io(format!("reading commit {position}"), e))?;
    Ok(Bytes::from(buf))
}

/// The log in segment files on local disk. Cheap to clone; all clones share one writer.
#[derive(Clone, Debug)]
pub struct FileLog {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Request>,
    writer: Arc<Mutex<Option<std::thread::JoinHandle<()>>>>,
}

impl FileLog {
    /// Opens (or creates) the log in `config.dir`, recovering from a crash: a torn last frame is
    /// cut off and logged; damage anywhere else is a [`LogError::Corrupt`] naming its position.
    pub async fn open(config: FileLogConfig) -> Result<Self> {
        let dir = config.dir.clone();
        let (state, index) = tokio::task::spawn_blocking(move || recover(&config))
            .await
            .map_err(|e| LogError::unavailable(format!("log recovery task failed: {e}")))??;
        let head = index.head;
        let (head_tx, _) = watch::channel(HeadState {
            head,
            closed: false,
        });
        let shared = Arc::new(Shared {
            dir,
            index: RwLock::new(index),
            head: head_tx,
        });
        let (tx, rx) = mpsc::channel(4096);
        let thread_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("docket-log-writer".into())
            .spawn(move || writer::run(state, thread_shared, rx))
            .map_err(|e| LogError::io("starting the writer thread", e))?;
        Ok(FileLog {
            shared,
            tx,
            writer: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// The reactions' checkpoints, in `checkpoints/` inside the data directory.
    pub fn checkpoints(&self) -> Result<crate::checkpoint::FileCheckpoints> {
        crate::checkpoint::FileCheckpoints::open(self.shared.dir.join("checkpoints"))
    }

    /// The audit records (signed checkpoints), in `audit/` inside the data directory.
    pub fn audit_records(&self) -> Result<crate::records::FileRecords> {
        crate::records::FileRecords::open(self.shared.dir.join("audit"))
    }

    /// Finishes queued appends, stops the writer and releases the directory. Appends after this
    /// fail with [`LogError::Unavailable`]; reads keep working.
    pub async fn close(&self) -> Result<()> {
        let (done_tx, done_rx) = oneshot::channel();
        if self.tx.send(Request::Close(done_tx)).await.is_ok() {
            let _ = done_rx.await;
        }
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|e| LogError::unavailable(format!("joining the writer failed: {e}")))?
                .map_err(|_| LogError::unavailable("the writer thread panicked"))?;
        }
        Ok(())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Shared) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(|e| LogError::unavailable(format!("read task failed: {e}")))?
    }
}

impl EventLog for FileLog {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedRevision,
        events: Vec<EventData>,
        metadata: Metadata,
    ) -> Result<Appended> {
        let (reply, rx) = oneshot::channel();
        let req = Request::Append(AppendRequest {
            stream: stream.clone(),
            expected,
            events,
            metadata,
            reply,
        });
        let closed = || LogError::unavailable("the log is closed");
        self.tx.send(req).await.map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }

    async fn read_stream(&self, stream: &StreamId) -> Result<Vec<RecordedCommit>> {
        let stream = stream.clone();
        self.blocking(move |s| s.read_stream(&stream)).await
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedCommit>> {
        self.blocking(move |s| s.read_range(after, limit)).await
    }

    async fn subscribe(&self, after: u64) -> Result<CommitStream> {
        let (tx, rx) = mpsc::channel::<Result<Vec<RecordedCommit>>>(4);
        let shared = self.shared.clone();
        tokio::spawn(feed(shared, after, tx));
        let items = futures_util::stream::unfold(
            (rx, Vec::new().into_iter()),
            |(mut rx, mut current)| async move {
                loop {
                    if let Some(commit) = current.next() {
                        return Some((Ok(commit), (rx, current)));
                    }
                    match rx.recv().await? {
                        Ok(batch) => current = batch.into_iter(),
                        Err(e) => return Some((Err(e), (rx, Vec::new().into_iter()))),
                    }
                }
            },
        );
        Ok(Box::pin(items))
    }

    async fn head(&self) -> Result<u64> {
        Ok(self.shared.head.borrow().head)
    }
}

/// Batches read at once by a subscription catching up: decoding is the bottleneck of a replay,
/// so two blocking tasks decode side by side.
const PARALLEL_READS: u64 = 2;

/// Feeds a subscription: reads durable commits in batches, then waits for the head to move.
async fn feed(shared: Arc<Shared>, mut after: u64, tx: mpsc::Sender<Result<Vec<RecordedCommit>>>) {
    let mut head_rx = shared.head.subscribe();
    loop {
        let head = head_rx.borrow_and_update().head;
        if head <= after {
            tokio::select! {
                _ = tx.closed() => return,
                changed = head_rx.wait_for(|h| h.head > after || h.closed) => {
                    match changed {
                        Ok(h) if h.head > after => continue,
                        // Closed with nothing more to read: end the stream.
                        _ => return,
                    }
                }
            }
        }
        let reads: Vec<_> = (0..PARALLEL_READS)
            .map(|i| after + i * READ_BATCH as u64)
            .take_while(|&from| from < head)
            .map(|from| {
                let reader = shared.clone();
                tokio::task::spawn_blocking(move || reader.read_range(from, READ_BATCH))
            })
            .collect();
        for read in reads {
            let batch = read
                .await
                .unwrap_or_else(|e| Err(LogError::unavailable(format!("read task failed: {e}"))));
            match batch {
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                Ok(batch) => {
                    let Some(last) = batch.last().map(|c| c.position) else {
                        break;
                    };
                    after = last;
                    if tx.send(Ok(batch)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Scans the data directory, verifying every frame and hash chain, and rebuilds the index and
/// the writer's state.
fn recover(config: &FileLogConfig) -> Result<(WriterState, Index)> {
    let dir = &config.dir;
    std::fs::create_dir_all(dir)
        .map_err(|e| LogError::io(format!("creating {}", dir.display()), e))?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))
        .map_err(|e| LogError::io(format!("opening the lock file in {}", dir.display()), e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(LogError::unavailable(format!(
                "data directory {} is in use by another docket process",
                dir.display()
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(LogError::io(format!("locking {}", dir.display()), e))
        }
    }

    let mut segments =
        segment::list(dir).map_err(|e| LogError::io(format!("listing {}", dir.display()), e))?;
    if segments.is_empty() {
        create_segment(dir, 1)?;
        segments.push((1, dir.join(segment::file_name(1))));
    }
    let mut index = Index::default();
    let mut heads: HashMap<StreamId, StreamLink> = HashMap::new();
    let mut dedup = HashMap::new();
    let mut position = 1;
    let count = segments.len();
    for (i, (base, path)) in segments.iter().enumerate() {
        let last = i + 1 == count;
        if *base != position {
            return Err(LogError::Corrupt {
                position,
                reason: format!(
                    "segment {} starts at position {base}, expected {position}",
                    path.display()
                ),
            });
        }
        let buf = Bytes::from(
            std::fs::read(path)
                .map_err(|e| LogError::io(format!("reading {}", path.display()), e))?,
        );
        match segment::parse_header(&buf) {
            Ok(b) if b == *base => {}
            Ok(b) => {
                return Err(LogError::Corrupt {
                    position,
                    reason: format!("segment {} says it starts at {b}", path.display()),
                })
            }
            Err(_) if last && buf.len() < segment::HEADER_BYTES as usize => {
                // Crashed while creating this segment: nothing in it was ever acknowledged.
                tracing::warn!(segment = %path.display(), "rewriting the torn header of the last segment");
                std::fs::remove_file(path)
                    .map_err(|e| LogError::io(format!("removing {}", path.display()), e))?;
                create_segment(dir, *base)?;
                let file = File::open(path)
                    .map_err(|e| LogError::io(format!("opening {}", path.display()), e))?;
                index.segments.push(Segment {
                    base: *base,
                    file: Arc::new(file),
                    offsets: Vec::new(),
                    end: segment::HEADER_BYTES,
                });
                continue;
            }
            Err(reason) => {
                return Err(LogError::Corrupt {
                    position,
                    reason: format!("segment {}: {reason}", path.display()),
                })
            }
        }
        let mut offsets = Vec::new();
        let mut offset = segment::HEADER_BYTES as usize;
        loop {
            match segment::frame_at(&buf, offset) {
                Frame::Good { start, end } => {
                    let bytes = buf.slice(start..end);
                    let commit = commit::decode(&bytes)
                        .map_err(|reason| LogError::Corrupt { position, reason })?;
                    let expected_prev = heads.get(&commit.stream).copied();
                    if commit.prev != expected_prev {
                        return Err(LogError::Corrupt {
                            position,
                            reason: format!(
                                "hash chain of stream {} broken: commit links to {:?}, the stream's previous commit is {:?}",
                                commit.stream, commit.prev, expected_prev
                            ),
                        });
                    }
                    let key = writer::dedup_key(&commit.dedup_id());
                    dedup.insert(key, position);
                    heads.insert(
                        commit.stream.clone(),
                        StreamLink {
                            revision: position,
                            hash: CommitHash::of(&bytes),
                        },
                    );
                    index
                        .streams
                        .entry(commit.stream)
                        .or_default()
                        .push(position);
                    offsets.push(offset as u64);
                    offset = end;
                    position += 1;
                }
                Frame::End => break,
                Frame::Bad(reason) => {
                    if last && !segment::good_frame_after(&buf, offset) {
                        tracing::warn!(
                            segment = %path.display(),
                            offset,
                            position,
                            cut_bytes = buf.len() - offset,
                            reason = %reason,
                            "cutting off a torn last frame (it was never acknowledged)"
                        );
                        truncate(path, offset as u64)?;
                        break;
                    }
                    return Err(LogError::Corrupt { position, reason });
                }
            }
        }
        let file =
            File::open(path).map_err(|e| LogError::io(format!("opening {}", path.display()), e))?;
        index.segments.push(Segment {
            base: *base,
            file: Arc::new(file),
            offsets,
            end: offset as u64,
        });
    }
    index.head = position - 1;
    let (last_base, last_path) = segments
        .last()
        .cloned()
        .ok_or_else(|| LogError::unavailable("no segment after recovery"))?;
    let file = OpenOptions::new()
        .append(true)
        .open(&last_path)
        .map_err(|e| LogError::io(format!("opening {} for append", last_path.display()), e))?;
    let file_len = index
        .segments
        .last()
        .map_or(segment::HEADER_BYTES, |s| s.end);
    tracing::debug!(
        head = index.head,
        segments = index.segments.len(),
        last_base,
        "log recovered"
    );
    let state = WriterState {
        dir: dir.clone(),
        segment_bytes: config.segment_bytes.max(segment::HEADER_BYTES + 1),
        file,
        file_len,
        next_position: position,
        heads,
        dedup,
        _lock: lock,
    };
    Ok((state, index))
}

/// Creates a durable, empty segment.
fn create_segment(dir: &Path, base: u64) -> Result<()> {
    let path = dir.join(segment::file_name(base));
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .map_err(|e| LogError::io(format!("creating {}", path.display()), e))?;
    file.write_all(&segment::header(base))
        .and_then(|()| file.sync_all())
        .and_then(|()| segment::sync_dir(dir))
        .map_err(|e| LogError::io(format!("writing {}", path.display()), e))
}

/// Cuts a segment file at `len`, durably.
fn truncate(path: &Path, len: u64) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| {
            f.set_len(len)?;
            f.sync_all()
        })
        .map_err(|e| LogError::io(format!("truncating {}", path.display()), e))
}
