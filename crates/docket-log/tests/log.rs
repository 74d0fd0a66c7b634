//! The one integration-test binary of `docket-log`: the conformance suite for both backends,
//! golden files for the formats, and crash and restart tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conformance;
mod file_backend;
mod fuzz;
mod golden;
mod jetstream_backend;
mod records;
