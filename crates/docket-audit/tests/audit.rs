//! The one integration-test binary of `docket-audit`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod checkpointer;
#[path = "../../../tests/support/keys.rs"]
mod keys;
mod export_verify;
mod receipt;
mod tamper;
