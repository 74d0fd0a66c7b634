//! What every Docket service shares: the [`World`], all aggregates' state kept in memory and fed
//! by a subscription to the log, and the [`Executor`], which decides a command against that state
//! and appends the resulting events with the revision it decided on.
//!
//! A cold read of a stream through a fresh consumer costs tens of milliseconds on JetStream, so
//! nothing on the command path reads the log: state comes from memory, and a stale view is caught
//! by the expected revision (the append conflicts, the world catches up, the command is decided
//! again).

/// Where services get the time (kept in `docket-log`, the lowest async crate, so that the
/// checkpointer shares it without depending on the runtime).
pub use docket_log::clock;
mod deadlines;
mod executor;
pub mod metrics;
pub mod reactions;
mod stored;
mod world;

pub use deadlines::{run_deadline_scheduler, system_actor, DEADLINES_CONSUMER};
pub use docket_domain::world::WorldView;
pub use executor::{ExecError, Executed, Executor, ExecutorConfig};
pub use metrics::Metrics;
pub use reactions::{run_guidance_reaction, Checkpoint, GUIDANCE_CONSUMER};
pub use stored::{decode_event, encode_event, StoredAggregate};
pub use world::{apply_commit, World, WorldError};
