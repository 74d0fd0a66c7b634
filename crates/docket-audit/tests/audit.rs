//! The one integration-test binary of `docket-audit`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod checkpointer;
mod export_verify;
mod import;
mod receipt;
mod tamper;
