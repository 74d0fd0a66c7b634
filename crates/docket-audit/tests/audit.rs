//! The one integration-test binary of `docket-audit`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod anchors;
mod cadence;
mod checkpointer;
mod export_verify;
mod import;
#[path = "../../../tests/support/keys.rs"]
mod keys;
mod receipt;
mod rules_attacks;
mod tamper;
mod witness;
