//! How aggregates map onto log streams and how domain events travel inside commits.

use docket_domain::events::{CodecError, DomainEvent, Format};
use docket_domain::world::InWorld;
use docket_log::EventData;
use uuid::Uuid;

/// An aggregate the executor decides for: one the world keeps ([`InWorld`]: its states, its
/// stream kind and event conversions all come from the domain) and that can cross tasks.
pub trait StoredAggregate: InWorld + Send + Sync + 'static {}

impl<A: InWorld + Send + Sync + 'static> StoredAggregate for A {}

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
