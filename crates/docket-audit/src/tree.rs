//! The Merkle tree over the log: one leaf per commit, in log order (position `p` is leaf index
//! `p - 1`), hashed as RFC 9162 says — leaf `SHA-256(0x00 ‖ commit bytes)`, node
//! `SHA-256(0x01 ‖ left ‖ right)`. The tree maths (which hashes to store, roots, proofs and
//! their checks) is the `tlog_tiles` crate's; this module keeps the stored hashes and gives them
//! a small API in log positions' terms.
//!
//! The stored hashes are kept in `tlog` order (Crosby and Wallach's dense numbering), so the
//! hashes of a tree of size `n` are exactly the first [`stored_hash_count`]`(n)` of them: a tree
//! persisted as a flat file of hashes extends by appending and truncates to any earlier size.

use tlog_tiles::{HashReader, TreeProof};

pub use tlog_tiles::{stored_hash_count, Hash, EMPTY_HASH, HASH_SIZE};

/// What went wrong with a tree operation or a proof.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// A size or index outside the tree.
    #[error("{what}: {value} is outside the tree of size {size}")]
    OutOfRange {
        /// What was asked for.
        what: &'static str,
        /// The value asked for.
        value: u64,
        /// The tree's size.
        size: u64,
    },
    /// The proof does not lead to the given root.
    #[error("the proof does not verify: {0}")]
    InvalidProof(String),
    /// Stored hashes that do not make a tree of the claimed size.
    #[error("stored hashes: {0}")]
    Corrupt(String),
}

fn from_tlog(e: tlog_tiles::Error) -> TreeError {
    TreeError::InvalidProof(e.to_string())
}

/// The leaf hash of a commit: `SHA-256(0x00 ‖ bytes)`, over the commit's bytes exactly as the
/// log stores them.
pub fn leaf_hash(commit_bytes: &[u8]) -> Hash {
    tlog_tiles::record_hash(commit_bytes)
}

/// The tree's stored hashes, growing one leaf at a time. Cheap to query at any earlier size.
#[derive(Clone, Debug, Default)]
pub struct Tree {
    stored: Vec<Hash>,
    size: u64,
}

struct Reader<'a>(&'a [Hash]);

impl HashReader for Reader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.0.get(i))
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

impl Tree {
    /// The empty tree.
    pub fn new() -> Self {
        Tree::default()
    }

    /// A tree from its stored hashes (as [`Tree::stored`] gave them): the largest size whose
    /// hashes they hold entirely; hashes beyond it (a torn write) are dropped. A leaf that
    /// stores a single hash cannot be told from a torn one here: callers compare the last
    /// leaves with the log's commits.
    pub fn from_stored(mut stored: Vec<Hash>) -> Self {
        let mut size = 0u64;
        // The count grows by at least one per leaf: a bounded walk.
        while usize::try_from(stored_hash_count(size + 1)).is_ok_and(|c| c <= stored.len()) {
            size += 1;
        }
        let keep = usize::try_from(stored_hash_count(size)).unwrap_or(stored.len());
        stored.truncate(keep);
        Tree { stored, size }
    }

    /// The number of leaves (commits).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The stored hashes, in `tlog` order; the first `stored_hash_count(n)` make the tree of
    /// size `n`.
    pub fn stored(&self) -> &[Hash] {
        &self.stored
    }

    /// Appends the commit's leaf; returns how many stored hashes it added.
    pub fn push_commit(&mut self, commit_bytes: &[u8]) -> usize {
        self.push_leaf(leaf_hash(commit_bytes))
    }

    /// Appends a leaf hash; returns how many stored hashes it added.
    pub fn push_leaf(&mut self, leaf: Hash) -> usize {
        // Every index read is below the stored count, so the read cannot fail.
        let hashes =
            tlog_tiles::stored_hashes_for_record_hash(self.size, leaf, &Reader(&self.stored))
                .unwrap_or_default();
        let added = hashes.len();
        self.stored.extend(hashes);
        self.size += 1;
        added
    }

    /// Shrinks the tree to its first `size` leaves.
    pub fn truncate(&mut self, size: u64) -> Result<(), TreeError> {
        self.check_size("size", size)?;
        let keep = usize::try_from(stored_hash_count(size))
            .map_err(|_| TreeError::Corrupt("tree too large for memory".into()))?;
        self.stored.truncate(keep);
        self.size = size;
        Ok(())
    }

    fn check_size(&self, what: &'static str, size: u64) -> Result<(), TreeError> {
        if size > self.size {
            return Err(TreeError::OutOfRange {
                what,
                value: size,
                size: self.size,
            });
        }
        Ok(())
    }

    /// The root of the whole tree.
    pub fn root(&self) -> Hash {
        self.root_at(self.size).unwrap_or(EMPTY_HASH)
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, TreeError> {
        self.check_size("size", size)?;
        tlog_tiles::tree_hash(size, &Reader(&self.stored)).map_err(from_tlog)
    }

    /// The hash of the leaf at `position` (1-based).
    pub fn leaf(&self, position: u64) -> Result<Hash, TreeError> {
        if position == 0 || position > self.size {
            return Err(TreeError::OutOfRange {
                what: "position",
                value: position,
                size: self.size,
            });
        }
        let index = tlog_tiles::stored_hash_index(0, position - 1);
        Reader(&self.stored)
            .read_hashes(&[index])
            .map_err(from_tlog)
            .map(|h| h[0])
    }

    /// The inclusion proof of the commit at `position` (1-based) in the tree of `size` leaves.
    pub fn inclusion_proof(&self, position: u64, size: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size("size", size)?;
        if position == 0 || position > size {
            return Err(TreeError::OutOfRange {
                what: "position",
                value: position,
                size,
            });
        }
        tlog_tiles::prove_record(size, position - 1, &Reader(&self.stored)).map_err(from_tlog)
    }

    /// The consistency proof that the tree of `new` leaves extends the tree of `old` leaves.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, TreeError> {
        self.check_size("new size", new)?;
        if old == 0 || old > new {
            return Err(TreeError::OutOfRange {
                what: "old size",
                value: old,
                size: new,
            });
        }
        tlog_tiles::prove_tree(new, old, &Reader(&self.stored)).map_err(from_tlog)
    }
}

/// Checks that `proof` shows the leaf `leaf` at `position` (1-based) in the tree of `size`
/// leaves whose root is `root`.
pub fn verify_inclusion(
    proof: &[Hash],
    size: u64,
    root: Hash,
    position: u64,
    leaf: Hash,
) -> Result<(), TreeError> {
    if position == 0 || position > size {
        return Err(TreeError::OutOfRange {
            what: "position",
            value: position,
            size,
        });
    }
    tlog_tiles::check_record(&proof.to_vec(), size, root, position - 1, leaf).map_err(from_tlog)
}

/// Checks that `proof` shows the tree of `new_size` leaves with root `new_root` extends the
/// tree of `old_size` leaves with root `old_root`. Equal sizes need equal roots and no proof.
pub fn verify_consistency(
    proof: &[Hash],
    old_size: u64,
    old_root: Hash,
    new_size: u64,
    new_root: Hash,
) -> Result<(), TreeError> {
    if old_size == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(TreeError::InvalidProof(
                "the empty tree needs no proof".into(),
            ))
        };
    }
    if old_size > new_size {
        return Err(TreeError::OutOfRange {
            what: "old size",
            value: old_size,
            size: new_size,
        });
    }
    let p: TreeProof = proof.to_vec();
    tlog_tiles::check_tree(&p, new_size, new_root, old_size, old_root).map_err(from_tlog)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// RFC 9162's definition, computed the slow way.
    fn reference_root(leaves: &[Vec<u8>]) -> Hash {
        fn mth(leaves: &[Vec<u8>]) -> [u8; 32] {
            match leaves.len() {
                0 => Sha256::digest([]).into(),
                1 => {
                    let mut h = Sha256::new();
                    h.update([0]);
                    h.update(&leaves[0]);
                    h.finalize().into()
                }
                n => {
                    let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                    let mut h = Sha256::new();
                    h.update([1]);
                    h.update(mth(&leaves[..k]));
                    h.update(mth(&leaves[k..]));
                    h.finalize().into()
                }
            }
        }
        Hash(mth(leaves))
    }

    #[test]
    fn roots_proofs_and_reloads_agree_with_rfc_9162() {
        let leaves: Vec<Vec<u8>> = (0..70u32)
            .map(|i| format!("commit {i}").into_bytes())
            .collect();
        let mut tree = Tree::new();
        assert_eq!(tree.root(), EMPTY_HASH);
        for (i, leaf) in leaves.iter().enumerate() {
            tree.push_commit(leaf);
            let size = i as u64 + 1;
            assert_eq!(tree.root(), reference_root(&leaves[..=i]), "size {size}");
        }
        for size in [1u64, 2, 3, 7, 8, 9, 33, 70] {
            let root = tree.root_at(size).unwrap();
            assert_eq!(root, reference_root(&leaves[..size as usize]));
            for position in 1..=size {
                let proof = tree.inclusion_proof(position, size).unwrap();
                let leaf = leaf_hash(&leaves[position as usize - 1]);
                verify_inclusion(&proof, size, root, position, leaf).unwrap();
                assert_eq!(tree.leaf(position).unwrap(), leaf);
                let wrong = leaf_hash(b"forged");
                assert!(verify_inclusion(&proof, size, root, position, wrong).is_err());
            }
            for old in 1..=size {
                let proof = tree.consistency_proof(old, size).unwrap();
                let old_root = tree.root_at(old).unwrap();
                verify_consistency(&proof, old, old_root, size, root).unwrap();
                if old < size {
                    let bad = leaf_hash(b"other history");
                    assert!(verify_consistency(&proof, old, bad, size, root).is_err());
                }
            }
        }
        // Stored hashes reload to the same tree; a torn tail is dropped. (Leaf 72 adds four
        // hashes, so two of them are a torn write.)
        let mut longer = tree.clone();
        longer.push_commit(b"commit 70");
        let mut stored = longer.stored().to_vec();
        stored.extend([leaf_hash(b"torn"), leaf_hash(b"write")]);
        let again = Tree::from_stored(stored);
        assert_eq!(again.size(), 71);
        assert_eq!(again.root(), longer.root());
        let mut small = tree.clone();
        small.truncate(9).unwrap();
        assert_eq!(small.root(), reference_root(&leaves[..9]));
        assert!(tree.root_at(71).is_err());
        assert!(tree.inclusion_proof(0, 5).is_err());
        assert!(tree.consistency_proof(6, 5).is_err());
    }
}
