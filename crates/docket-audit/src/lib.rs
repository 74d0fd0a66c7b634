//! Docket's accountability, as `../shared/DESIGN.md` ("Accountability") describes it: a Merkle tree
//! over the commits in log order ([`tree`]), and what is built on it.
//!
//! This crate is being built (issue 5); what is here is tested and used as it stands.

pub mod note;
pub mod tree;

pub use note::{Checkpoint, CheckpointSigner, CheckpointVerifier, NoteError, SignedCheckpoint};
pub use tree::{leaf_hash, Hash, Tree, TreeError};
