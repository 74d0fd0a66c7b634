//! How aggregates map onto log streams and how domain events travel inside commits.

use std::collections::HashMap;

use docket_domain::case::Case;
use docket_domain::events::{CodecError, DomainEvent, Format};
use docket_domain::officer::Officer;
use docket_domain::representation::Representation;
use docket_domain::review::Review;
use docket_domain::Aggregate;
use docket_log::EventData;
use uuid::Uuid;

use crate::world::WorldView;

/// An aggregate the world keeps: where its states are. Its stream kind (`Aggregate::KIND`) and
/// the conversions of its events to and from [`DomainEvent`] come from the domain.
pub trait StoredAggregate: Aggregate + Send + Sync + 'static {
    /// Its states in the world.
    fn states(world: &WorldView) -> &HashMap<String, (u64, Self)>;
}

impl StoredAggregate for Case {
    fn states(world: &WorldView) -> &HashMap<String, (u64, Self)> {
        &world.cases
    }
}

impl StoredAggregate for Officer {
    fn states(world: &WorldView) -> &HashMap<String, (u64, Self)> {
        &world.officers
    }
}

impl StoredAggregate for Representation {
    fn states(world: &WorldView) -> &HashMap<String, (u64, Self)> {
        &world.representations
    }
}

impl StoredAggregate for Review {
    fn states(world: &WorldView) -> &HashMap<String, (u64, Self)> {
        &world.reviews
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
