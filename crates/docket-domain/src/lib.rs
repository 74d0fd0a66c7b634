//! Docket's domain, from the DHS *Guidelines for the Enforcement of Civil Immigration Law* and the
//! ICE case review process: value types, the guideline policy as data, and the aggregates (case,
//! officer, representation, review) as pure `decide`/`evolve` functions.
//!
//! Pure by construction: no IO, no async, no clock, no randomness. Time, ids and lookups into
//! other aggregates come in as arguments ([`aggregate::Context`]), so every rule can be tested
//! exhaustively and every decision replayed exactly.

pub mod aggregate;
pub mod calendar;
pub mod case;
pub mod codec;
pub mod events;
pub mod officer;
pub mod permissions;
pub mod policy;
pub mod representation;
pub mod review;
pub mod stream;
pub mod values;
pub mod world;

pub use aggregate::{Aggregate, AggregateCommand, Context, Deadlines, Directory, Rejection};
pub use events::{CodecError, DomainEvent, Format};
pub use permissions::CommandKind;
pub use stream::{AggregateKind, StreamKey};
pub use values::{ANumber, Actor, InvalidValue, Role};
