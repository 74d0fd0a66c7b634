//! Docket's accountability, as `../shared/DESIGN.md` ("Accountability") describes it: a Merkle tree
//! over the commits in log order ([`tree`]), and what is built on it.
//!
//! This crate is being built (issue 5); what is here is tested and used as it stands.

pub mod export;
pub mod note;
pub mod rules;
pub mod tree;
pub mod verify;

pub use export::{export, ExportError, ExportSummary, Manifest};
pub use note::{Checkpoint, CheckpointSigner, CheckpointVerifier, NoteError, SignedCheckpoint};
pub use tree::{leaf_hash, Hash, Tree, TreeError};
pub use verify::{verify, verify_with_tree, Failure, Report, VerifyOptions};
