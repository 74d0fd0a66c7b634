//! The one integration-test binary of `docket-bus`: the catalogue and wire forms, one transport
//! suite run over NATS (a real nats-server) and in process, the NATS-only behaviour (micro
//! service API, queue groups, graceful stop), and the check that `docs/api.md` is complete.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_doc;
mod fuzz;
mod nats_service;
mod samples;
mod suite;
mod wire;
