//! The tree's stored hashes on local disk, so a restart does not rehash the whole log: the file
//! `tree.hashes` in a directory (embedded: `<data dir>/audit/tree`; NATS mode: a local cache
//! directory), the 32-byte hashes in `tlog` order and nothing else. It only grows, by appends,
//! made durable (`fdatasync`) before a checkpoint is signed over them.
//!
//! It is a cache, never trusted: on open the last leaf is compared with the log's commit at that
//! position; a torn tail or a leaf that does not match drops the tree back to the largest size
//! whose last leaf matches (or to empty), with a warning, and the caller extends it from the log.
//! The checkpointer also compares the tree's root with the last signed checkpoint and rebuilds
//! from the log if they differ, so a damaged cache can never be signed over.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use docket_log::EventLog;

use crate::error::AuditError;
use crate::tree::{leaf_hash, stored_hash_count, Hash, Tree, HASH_SIZE};

/// The file name of the persisted hashes.
pub const TREE_FILE: &str = "tree.hashes";

/// Commits read per step while looking back for a matching leaf.
const WALK_BATCH: u64 = 1024;

/// The open hashes file of a tree.
#[derive(Debug)]
pub struct TreeFile {
    path: PathBuf,
    file: Arc<File>,
    /// How many hashes the file holds.
    persisted: usize,
}

/// What [`TreeFile::open`] found.
#[derive(Debug)]
pub struct OpenedTree {
    /// The file, ready to persist more hashes.
    pub file: TreeFile,
    /// The tree it held, checked against the log (extend it from the log from `tree.size()`).
    pub tree: Tree,
    /// Leaves found in the file but dropped (torn, or not matching the log).
    pub dropped: u64,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AuditError> + Send + 'static,
) -> Result<T, AuditError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AuditError::io("tree file task", std::io::Error::other(e.to_string())))?
}

fn byte_len(hashes: usize) -> u64 {
    (hashes as u64).saturating_mul(HASH_SIZE as u64)
}

impl TreeFile {
    /// Opens (or creates) `dir/tree.hashes`, loads the tree and checks it against `log` as the
    /// module says, cutting the file back to what is kept.
    pub async fn open<L: EventLog>(dir: &Path, log: &L) -> Result<OpenedTree, AuditError> {
        let dir = dir.to_owned();
        let path = dir.join(TREE_FILE);
        let load_path = path.clone();
        let (file, bytes) = blocking(move || {
            std::fs::create_dir_all(&dir)
                .map_err(|e| AuditError::io(format!("creating {}", dir.display()), e))?;
            let mut file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&load_path)
                .map_err(|e| AuditError::io(format!("opening {}", load_path.display()), e))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .map_err(|e| AuditError::io(format!("reading {}", load_path.display()), e))?;
            Ok((file, bytes))
        })
        .await?;
        let hash_count = bytes.len() / HASH_SIZE;
        let hashes: Vec<Hash> = bytes
            .chunks_exact(HASH_SIZE)
            .map(|c| {
                let mut h = [0u8; HASH_SIZE];
                h.copy_from_slice(c);
                Hash(h)
            })
            .collect();
        let mut tree = Tree::from_stored(hashes);
        if bytes.len() % HASH_SIZE != 0 || tree.stored().len() != hash_count {
            tracing::warn!(
                path = %path.display(),
                bytes = bytes.len(),
                size = tree.size(),
                "the tree hashes file has a torn tail; it is cut back to the last whole leaf"
            );
        }
        let loaded = tree.size();
        let size = matching_size(&tree, log).await?;
        if size < loaded {
            tracing::warn!(
                path = %path.display(),
                loaded,
                kept = size,
                "the persisted tree does not match the log at its last leaf; it is cut back to \
                 the last leaf that matches and rebuilt from the log from there"
            );
            tree.truncate(size)?;
        }
        let mut file = TreeFile {
            path,
            file: Arc::new(file),
            persisted: hash_count,
        };
        file.cut_to(tree.stored().len()).await?;
        Ok(OpenedTree {
            file,
            tree,
            dropped: loaded - size,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many hashes the file holds.
    pub fn persisted(&self) -> usize {
        self.persisted
    }

    /// Truncates the file to `hashes` hashes if it holds more, durably.
    async fn cut_to(&mut self, hashes: usize) -> Result<(), AuditError> {
        let current = std::fs::metadata(&self.path)
            .map_err(|e| AuditError::io(format!("reading {}", self.path.display()), e))?
            .len();
        if current == byte_len(hashes) {
            self.persisted = hashes;
            return Ok(());
        }
        let file = self.file.clone();
        let path = self.path.clone();
        blocking(move || {
            file.set_len(byte_len(hashes))
                .and_then(|()| file.sync_all())
                .map_err(|e| AuditError::io(format!("truncating {}", path.display()), e))
        })
        .await?;
        self.persisted = hashes;
        Ok(())
    }

    /// Appends the tree's hashes the file does not hold yet and makes them durable (flush and
    /// `fdatasync`). The file must hold a prefix of this tree's hashes (see [`TreeFile::rewrite`]
    /// for a tree rebuilt otherwise).
    pub async fn persist(&mut self, tree: &Tree) -> Result<(), AuditError> {
        let stored = tree.stored();
        if stored.len() < self.persisted {
            return self.cut_to(stored.len()).await;
        }
        if stored.len() == self.persisted {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity((stored.len() - self.persisted) * HASH_SIZE);
        for h in &stored[self.persisted..] {
            bytes.extend_from_slice(&h.0);
        }
        let file = self.file.clone();
        let path = self.path.clone();
        blocking(move || {
            let mut f: &File = &file;
            f.write_all(&bytes)
                .and_then(|()| f.flush())
                .and_then(|()| file.sync_data())
                .map_err(|e| AuditError::io(format!("writing {}", path.display()), e))
        })
        .await?;
        self.persisted = stored.len();
        Ok(())
    }

    /// Replaces the file's content with `tree`'s hashes (after the tree was rebuilt).
    pub async fn rewrite(&mut self, tree: &Tree) -> Result<(), AuditError> {
        self.cut_to(0).await?;
        self.persist(tree).await
    }
}

/// The largest size `s <= tree.size()` whose leaf `s` equals the leaf of the log's commit at
/// position `s` (0 if none does).
async fn matching_size<L: EventLog>(tree: &Tree, log: &L) -> Result<u64, AuditError> {
    let mut size = tree.size().min(log.head().await?);
    if size == 0 {
        return Ok(0);
    }
    // The common case, one read: the last leaf matches.
    if let Some(commit) = log.read_all(size - 1, 1).await?.first() {
        if commit.position == size && tree.leaf(size)? == leaf_hash(&commit.bytes) {
            return Ok(size);
        }
    }
    size -= 1;
    while size > 0 {
        let start = size.saturating_sub(WALK_BATCH);
        let commits = log.read_all(start, (size - start) as usize).await?;
        for commit in commits.iter().rev() {
            if commit.position <= size && tree.leaf(commit.position)? == leaf_hash(&commit.bytes) {
                return Ok(commit.position);
            }
        }
        size = start;
    }
    Ok(0)
}

/// How many stored hashes a tree of `size` leaves has: the file length, in hashes, that holds
/// exactly that tree.
pub fn hashes_for_size(size: u64) -> u64 {
    stored_hash_count(size)
}
