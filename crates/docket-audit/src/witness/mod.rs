//! Witnesses, as C2SP specifies them: `cosignature/v1` cosignatures ([`cosig`]) over the log's
//! checkpoints, the `tlog-witness` service that gives them only to checkpoints consistent with
//! everything it cosigned before ([`server`], its durable memory in [`state`]), and the client a
//! log uses to ask for them ([`client`]). A quorum of independent witnesses' cosignatures is what
//! lets an auditor trust a checkpoint without taking the operator's word for it.

pub mod client;
pub mod cosig;
pub mod server;
pub mod state;

pub use client::{WitnessClient, WitnessError};
pub use cosig::{add_signature_lines, generate_witness_key, CosignatureVerifier, WitnessSigner};
pub use server::{
    router, serve, serve_witness, Refusal, Witness, WitnessConfig, WitnessServerError,
};
pub use state::{Cosigned, StateError};
