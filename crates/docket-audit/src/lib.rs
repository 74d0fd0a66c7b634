//! Docket's accountability, as `../shared/DESIGN.md` ("Accountability") describes it: a Merkle tree
//! over the commits in log order ([`tree`]), and what is built on it: signed checkpoints, the
//! checkpointer, witnesses, receipts, export, offline verification and the auditor's readings.

pub mod checkpointer;
mod error;
pub mod export;
pub mod import;
pub mod inspect;
pub mod note;
pub mod persist;
pub mod receipt;
pub mod rules;
pub mod store;
pub mod tree;
pub mod verify;
pub mod witness;

pub use checkpointer::{
    Cadence, Checkpointer, CheckpointerConfig, CheckpointerHandle, CheckpointerStatus, Metrics,
    WitnessStatus,
};
pub use error::AuditError;
pub use export::{export, ExportError, ExportOptions, ExportSummary, Manifest};
pub use import::{import_to_dir, import_to_jetstream, ImportError, ImportSummary};
pub use note::{Checkpoint, CheckpointSigner, CheckpointVerifier, NoteError, SignedCheckpoint};
pub use receipt::{verify_receipt, Receipt, VerifiedReceipt};
pub use store::{CheckpointStore, StoredCheckpoint};
pub use tree::{leaf_hash, Hash, Tree, TreeError};
pub use verify::{verify, verify_with_tree, Anchors, Coverage, Failure, Report, VerifyOptions};

/// Reads one domain event out of the log (postcard, upcasting old versions), as the services do.
pub(crate) fn decode_event(
    data: &docket_log::EventData,
) -> Result<docket_domain::DomainEvent, docket_domain::CodecError> {
    docket_domain::DomainEvent::decode(
        &data.type_name,
        data.type_version,
        &data.payload,
        docket_domain::Format::Postcard,
    )
}
