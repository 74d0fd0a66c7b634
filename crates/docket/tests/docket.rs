//! The one integration-test binary of the `docket` command: the real binary, started as a
//! process, driven through its command line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod cli;
#[path = "../../../tests/e2e.rs"]
mod e2e;
#[path = "../../../tests/faults/mod.rs"]
mod faults;
#[path = "../../../tests/permissions.rs"]
mod permissions;
