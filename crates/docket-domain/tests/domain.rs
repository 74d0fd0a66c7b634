//! The one integration-test binary of `docket-domain`: rules, permissions, golden encodings,
//! the events catalogue and property tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod case_props;
mod case_rules;
mod golden_events;
mod permissions_matrix;
mod representation_rules;
mod review_props;
mod review_rules;
mod support;
mod world_fold;
