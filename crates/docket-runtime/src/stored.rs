//! How aggregates map onto log streams and how domain events travel inside commits.

use docket_domain::case::{Case, CaseCommand, CaseEvent};
use docket_domain::events::{CodecError, DomainEvent, Format};
use docket_domain::officer::{Officer, OfficerCommand, OfficerEvent};
use docket_domain::representation::{Representation, RepresentationCommand, RepresentationEvent};
use docket_domain::review::{Review, ReviewCommand, ReviewEvent};
use docket_domain::{Aggregate, CommandKind};
use docket_log::EventData;
use uuid::Uuid;

use crate::world::WorldView;

/// An aggregate kept in a log stream `<KIND>/<id>`.
pub trait StoredAggregate: Aggregate + Send + Sync + 'static {
    /// The stream kind, e.g. `case`.
    const KIND: &'static str;
    /// Wraps one of its events for encoding.
    fn wrap(event: Self::Event) -> DomainEvent;
    /// Its events out of a decoded domain event.
    fn unwrap(event: DomainEvent) -> Option<Self::Event>;
    /// Its states in the world.
    fn states(world: &WorldView) -> &std::collections::HashMap<String, (u64, Self)>;
    /// A command's catalogue entry (its stable name labels the command's metrics).
    fn command_kind(command: &Self::Command) -> CommandKind;
}

impl StoredAggregate for Case {
    const KIND: &'static str = "case";
    fn wrap(event: CaseEvent) -> DomainEvent {
        DomainEvent::Case(event)
    }
    fn unwrap(event: DomainEvent) -> Option<CaseEvent> {
        match event {
            DomainEvent::Case(e) => Some(e),
            _ => None,
        }
    }
    fn states(world: &WorldView) -> &std::collections::HashMap<String, (u64, Self)> {
        &world.cases
    }
    fn command_kind(command: &CaseCommand) -> CommandKind {
        command.kind()
    }
}

impl StoredAggregate for Officer {
    const KIND: &'static str = "officer";
    fn wrap(event: OfficerEvent) -> DomainEvent {
        DomainEvent::Officer(event)
    }
    fn unwrap(event: DomainEvent) -> Option<OfficerEvent> {
        match event {
            DomainEvent::Officer(e) => Some(e),
            _ => None,
        }
    }
    fn states(world: &WorldView) -> &std::collections::HashMap<String, (u64, Self)> {
        &world.officers
    }
    fn command_kind(command: &OfficerCommand) -> CommandKind {
        command.kind()
    }
}

impl StoredAggregate for Representation {
    const KIND: &'static str = "representation";
    fn wrap(event: RepresentationEvent) -> DomainEvent {
        DomainEvent::Representation(event)
    }
    fn unwrap(event: DomainEvent) -> Option<RepresentationEvent> {
        match event {
            DomainEvent::Representation(e) => Some(e),
            _ => None,
        }
    }
    fn states(world: &WorldView) -> &std::collections::HashMap<String, (u64, Self)> {
        &world.representations
    }
    fn command_kind(command: &RepresentationCommand) -> CommandKind {
        command.kind()
    }
}

impl StoredAggregate for Review {
    const KIND: &'static str = "review";
    fn wrap(event: ReviewEvent) -> DomainEvent {
        DomainEvent::Review(event)
    }
    fn unwrap(event: DomainEvent) -> Option<ReviewEvent> {
        match event {
            DomainEvent::Review(e) => Some(e),
            _ => None,
        }
    }
    fn states(world: &WorldView) -> &std::collections::HashMap<String, (u64, Self)> {
        &world.reviews
    }
    fn command_kind(command: &ReviewCommand) -> CommandKind {
        command.kind()
    }
}

/// A domain event as the log stores it: postcard payload, type name and version beside it.
pub fn encode_event(event: &DomainEvent, id: Uuid) -> Result<EventData, CodecError> {
    Ok(EventData {
        id,
        type_name: event.name().to_owned(),
        type_version: event.version(),
        payload: event.encode(Format::Postcard)?.into(),
    })
}

/// Reads a domain event out of the log, upcasting old versions.
pub fn decode_event(data: &EventData) -> Result<DomainEvent, CodecError> {
    DomainEvent::decode(
        &data.type_name,
        data.type_version,
        &data.payload,
        Format::Postcard,
    )
}
