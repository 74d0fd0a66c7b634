//! The one integration-test binary of the `docket` command: the real binary, started as a
//! process, driven through its command line.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
mod cli;
#[path = "../../../tests/e2e.rs"]
mod e2e;
#[path = "../../../tests/faults/mod.rs"]
mod faults;
#[path = "../../../tests/support/keys.rs"]
mod keys;
mod metrics;
#[path = "../../../tests/permissions.rs"]
mod permissions;
mod witness;

/// The `docket` binary, signing requests with the test actor-token key and accepting its tokens
/// (`DOCKET_ACTOR_KEY`, `DOCKET_ACTOR_VKEYS`).
pub fn docket_cmd() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_docket"));
    command
        .env("DOCKET_ACTOR_KEY", keys::key_path())
        .env("DOCKET_ACTOR_VKEYS", keys::vkey());
    command
}
