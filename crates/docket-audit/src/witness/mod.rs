//! Witnesses, as C2SP specifies them: `cosignature/v1` cosignatures ([`cosig`]) over the log's
//! checkpoints. A quorum of independent witnesses' cosignatures is what lets an auditor trust a
//! checkpoint without taking the operator's word for it.

pub mod cosig;

pub use cosig::{add_signature_lines, generate_witness_key, CosignatureVerifier, WitnessSigner};
