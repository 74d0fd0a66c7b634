//! Docket's command bus: how a command travels from a client to the service that owns it, and
//! how the answer comes back.
//!
//! - [`catalogue`]: which [`Service`] owns each command, its subject
//!   (`docket.cmd.<service>.<command>`), endpoint name and queue group (`docket-<service>`).
//! - [`audit`]: the audit queries ([`QueryKind`], `docket.cmd.audit.<query>`), each a typed
//!   request and answer, served and sent like commands.
//! - [`codec`]: the wire form of a command (its fields as a JSON object, or the same fields in
//!   postcard), of a [`CommandReply`] and of a [`BusError`].
//! - [`actor`]: the one place that reads who is acting (`Docket-Actor`) and the idempotency key.
//! - [`transport`]: the [`Handler`] services implement, the [`Transport`] clients send through and
//!   the typed [`Client`]; every request goes through one decode/encode/error path, whichever
//!   transport carries it.
//! - [`nats`]: services registered as NATS micro services in a queue group ([`serve_nats`]) and
//!   the NATS client transport ([`NatsTransport`]).
//! - [`local`]: [`LocalBus`], the in-process transport of the embedded deployment.
//!
//! The contract on the wire is `docs/api.md`.

pub mod actor;
pub mod audit;
pub mod catalogue;
pub mod codec;
mod command;
mod error;
pub mod headers;
pub mod local;
pub mod nats;
pub mod token;
pub mod transport;

pub use audit::{
    AuditAnswer, AuditQuery, CheckpointAnswer, CheckpointRequest, ConsistencyAnswer,
    ConsistencyRequest, InclusionAnswer, InclusionRequest, Query, QueryKind, ReceiptRequest,
    WitnessReport,
};
pub use catalogue::{parse_subject, subject, Endpoint, Service};
pub use codec::{decode_command, encode_command, CommandReply, ContentType, Receipt};
pub use command::DomainCommand;
pub use error::{codes, BusError};
pub use headers::Headers;
pub use local::LocalBus;
pub use nats::{connect, serve_nats, NatsClient, NatsTransport, ServiceHandle};
pub use transport::{
    BusRequest, Client, Handler, QueryRequest, RawReply, Transport, MAX_BODY_BYTES,
};
