//! The export's checkpoints in [`super::verify`]: loading `checkpoints/` (notes opened with the
//! log's key, cosignatures counted against the auditor's witnesses, consistency proofs read),
//! checking each checkpoint when the tree reaches its size, and, after the last commit, the
//! checkpoint beyond the head an `--upto` export carries with its consistency proof.

use std::path::{Path, PathBuf};

use super::pass::Pass;
use super::{
    consistent, failure, Failure, WitnessSeen, CHECKPOINT_CONSISTENCY, CHECKPOINT_ROOT,
    CHECKPOINT_SIGNATURE, CHECKPOINT_SIZE,
};
use crate::export::files::{read_checkpoints_dir, CheckpointsEntry, ConsistencyProof};
use crate::note::SignedCheckpoint;
use crate::witness::CosignatureVerifier;

/// One checkpoint file.
pub(super) struct CheckpointFile {
    /// The size its name says.
    pub(super) named: u64,
    pub(super) path: PathBuf,
    pub(super) opened: Result<SignedCheckpoint, String>,
    /// The witnesses (of the auditor's) whose cosignature on it verifies.
    pub(super) cosigned: Vec<WitnessSeen>,
}

impl CheckpointFile {
    pub(super) fn size(&self) -> u64 {
        self.opened
            .as_ref()
            .map_or(self.named, |s| s.checkpoint.size)
    }
}

/// One consistency file.
pub(super) struct ProofFile {
    pub(super) old: u64,
    pub(super) new: u64,
    pub(super) path: PathBuf,
    pub(super) proof: Result<ConsistencyProof, String>,
}

fn cosignatures(witnesses: &[CosignatureVerifier], note: &str) -> Vec<WitnessSeen> {
    witnesses
        .iter()
        .filter_map(|w| {
            w.verify(note).ok().map(|timestamp| WitnessSeen {
                name: w.name().to_owned(),
                timestamp,
            })
        })
        .collect()
}

impl Pass<'_> {
    /// Reads `checkpoints/`: notes sorted by size, consistency proofs.
    pub(super) fn load_checkpoints(&mut self, dir: &Path) -> Result<(), Failure> {
        let entries = read_checkpoints_dir(dir).map_err(|e| failure(0, CHECKPOINT_SIGNATURE, e))?;
        for entry in entries {
            match entry {
                CheckpointsEntry::Note(named, path, text) => {
                    let (opened, cosigned) = match text {
                        Ok(text) => {
                            let opened = self.key.open(&text).map_err(|e| e.to_string());
                            let cosigned = if opened.is_ok() {
                                cosignatures(&self.anchors.witnesses, &text)
                            } else {
                                Vec::new()
                            };
                            (opened, cosigned)
                        }
                        Err(e) => (Err(e), Vec::new()),
                    };
                    self.checkpoints.push(CheckpointFile {
                        named,
                        path,
                        opened,
                        cosigned,
                    });
                }
                CheckpointsEntry::Consistency(old, new, path, proof) => {
                    self.proofs.push(ProofFile {
                        old,
                        new,
                        path,
                        proof,
                    })
                }
            }
        }
        self.checkpoints.sort_by_key(|c| (c.size(), c.named));
        Ok(())
    }

    fn quorum_met(&self, cosigned: &[WitnessSeen]) -> bool {
        !self.anchors.witnesses.is_empty()
            && self.anchors.effective_quorum() <= self.anchors.witnesses.len()
            && cosigned.len() >= self.anchors.effective_quorum()
    }

    /// Checks the checkpoints of exactly the tree's current size; `at` is the recorded time of
    /// the commit at that size (none for the empty tree).
    pub(super) fn checkpoints_at(&mut self, size: u64, at: Option<i64>) -> Result<(), Failure> {
        let mut first = true;
        while let Some(c) = self.checkpoints.get(self.next_checkpoint) {
            if c.size() != size {
                break;
            }
            let (named, path, opened) = (c.named, c.path.clone(), c.opened.clone());
            let cosigned = c.cosigned.clone();
            self.next_checkpoint += 1;
            self.count(CHECKPOINT_SIGNATURE, 1);
            let signed = match opened {
                Ok(s) => s,
                Err(e) => {
                    return Err(failure(
                        named,
                        CHECKPOINT_SIGNATURE,
                        format!("{}: {e}", path.display()),
                    ))
                }
            };
            self.count(CHECKPOINT_SIZE, 1);
            if named != size {
                return Err(failure(
                    size,
                    CHECKPOINT_SIZE,
                    format!(
                        "{} holds a checkpoint of size {size}, its name says {named}",
                        path.display(),
                    ),
                ));
            }
            self.count(CHECKPOINT_ROOT, 1);
            let root = self
                .tree
                .root_at(size)
                .map_err(|e| failure(size, CHECKPOINT_ROOT, e.to_string()))?;
            let claimed = signed.checkpoint.root;
            if root != claimed {
                return Err(failure(
                    size,
                    CHECKPOINT_ROOT,
                    format!(
                        "the checkpoint of size {size} says root {claimed}; the first {size} commits give {root}"
                    ),
                ));
            }
            if let Some((old, old_root)) = self.last_good {
                self.count(CHECKPOINT_CONSISTENCY, 1);
                let checked = if old == size {
                    if old_root == claimed {
                        Ok(())
                    } else {
                        Err("two roots for one size".to_owned())
                    }
                } else {
                    self.tree
                        .consistency_proof(old, size)
                        .map_err(|e| e.to_string())
                        .and_then(|proof| consistent(&proof, (old, old_root), (size, claimed)))
                };
                if let Err(e) = checked {
                    return Err(failure(
                        size,
                        CHECKPOINT_CONSISTENCY,
                        format!("the checkpoint of size {size} is not consistent with the one of size {old}: {e}"),
                    ));
                }
            }
            if first {
                if let Some(at) = at {
                    self.judge_gap(size, at, false);
                }
                first = false;
            }
            self.last_good = Some((size, claimed));
            self.checkpoints_checked += 1;
            if self.quorum_met(&cosigned) {
                self.witnessed = Some((size, cosigned));
            }
        }
        Ok(())
    }

    /// After the last commit: the checkpoints beyond the head. The first may stand with the
    /// consistency proof from the head to it; any other, or one without a proof that holds,
    /// fails. A consistency file that is not that proof fails too.
    pub(super) fn beyond_head(&mut self) -> Result<(), Failure> {
        let head = self.commits;
        let mut accepted: Option<(u64, u64)> = None;
        if let Some(c) = self.checkpoints.get(self.next_checkpoint) {
            let size = c.size();
            let (named, path, opened) = (c.named, c.path.clone(), c.opened.clone());
            let cosigned = c.cosigned.clone();
            self.next_checkpoint += 1;
            self.count(CHECKPOINT_SIGNATURE, 1);
            let signed = opened.map_err(|e| {
                failure(
                    named,
                    CHECKPOINT_SIGNATURE,
                    format!("{}: {e}", path.display()),
                )
            })?;
            self.count(CHECKPOINT_SIZE, 1);
            if named != size {
                return Err(failure(
                    size,
                    CHECKPOINT_SIZE,
                    format!(
                        "{} holds a checkpoint of size {size}, its name says {named}",
                        path.display(),
                    ),
                ));
            }
            let Some(index) = self
                .proofs
                .iter()
                .position(|p| (p.old, p.new) == (head, size))
            else {
                return Err(failure(
                    size,
                    CHECKPOINT_SIZE,
                    format!(
                        "{}: a checkpoint of size {size}, but the export holds {head} commits and no consistency proof from {head} to {size}",
                        path.display()
                    ),
                ));
            };
            self.count(CHECKPOINT_CONSISTENCY, 1);
            let root = self.tree.root();
            let claimed = signed.checkpoint.root;
            let file = &self.proofs[index];
            let checked = file
                .proof
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|p| consistent(&p.proof, (head, root), (size, claimed)));
            if let Err(e) = checked {
                return Err(failure(
                    size,
                    CHECKPOINT_CONSISTENCY,
                    format!(
                        "{}: the export's {head} commits are not shown to be a prefix of the checkpoint of size {size}: {e}",
                        file.path.display()
                    ),
                ));
            }
            accepted = Some((head, size));
            self.proof_to = Some((size, claimed));
            self.checkpoints_checked += 1;
            if self.quorum_met(&cosigned) {
                self.witnessed = Some((head, cosigned));
            }
        }
        if let Some(c) = self.checkpoints.get(self.next_checkpoint) {
            let f = failure(
                c.size(),
                CHECKPOINT_SIZE,
                format!(
                    "{}: a checkpoint of size {}, but the export holds {head} commits (only the first checkpoint beyond the head may come, with its consistency proof)",
                    c.path.display(),
                    c.size()
                ),
            );
            self.count(CHECKPOINT_SIZE, 1);
            return Err(f);
        }
        if let Some(stray) = self
            .proofs
            .iter()
            .find(|p| Some((p.old, p.new)) != accepted)
        {
            return Err(failure(
                stray.new,
                CHECKPOINT_CONSISTENCY,
                format!(
                    "{}: a consistency proof from {} to {}, but the export holds {head} commits and {}",
                    stray.path.display(),
                    stray.old,
                    stray.new,
                    match accepted {
                        Some((_, m)) => format!("its proof is to {m}"),
                        None => "no checkpoint beyond them".to_owned(),
                    }
                ),
            ));
        }
        Ok(())
    }
}
