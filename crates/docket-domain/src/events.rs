//! [`DomainEvent`], any event of any aggregate, for code that reads the whole log. The codec
//! machinery it is built on is [`crate::codec`], re-exported here under its long-standing paths.

pub use crate::codec::{from_bytes, to_bytes, CodecError, Format, Upcast};

/// Any event of any aggregate, for code that reads the whole log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainEvent {
    /// A case's event.
    Case(crate::case::CaseEvent),
    /// An officer's event.
    Officer(crate::officer::OfficerEvent),
    /// A G-28's event.
    Representation(crate::representation::RepresentationEvent),
    /// A review's event.
    Review(crate::review::ReviewEvent),
}

impl DomainEvent {
    /// Every event type in the catalogue: stable name and current version.
    pub fn types() -> Vec<(&'static str, u16)> {
        let mut all = Vec::new();
        all.extend_from_slice(crate::case::CaseEvent::TYPES);
        all.extend_from_slice(crate::officer::OfficerEvent::TYPES);
        all.extend_from_slice(crate::representation::RepresentationEvent::TYPES);
        all.extend_from_slice(crate::review::ReviewEvent::TYPES);
        all
    }

    /// The stable type name.
    pub fn name(&self) -> &'static str {
        match self {
            DomainEvent::Case(e) => e.name(),
            DomainEvent::Officer(e) => e.name(),
            DomainEvent::Representation(e) => e.name(),
            DomainEvent::Review(e) => e.name(),
        }
    }

    /// The current version of the event's type.
    pub fn version(&self) -> u16 {
        match self {
            DomainEvent::Case(e) => e.version(),
            DomainEvent::Officer(e) => e.version(),
            DomainEvent::Representation(e) => e.version(),
            DomainEvent::Review(e) => e.version(),
        }
    }

    /// When it happened, as the event records it: the time its command was decided, which the
    /// services also stamp on the commit.
    pub fn at(&self) -> chrono::DateTime<chrono::Utc> {
        match self {
            DomainEvent::Case(e) => e.at(),
            DomainEvent::Officer(e) => e.at(),
            DomainEvent::Representation(e) => e.at(),
            DomainEvent::Review(e) => e.at(),
        }
    }

    /// Encodes the payload.
    pub fn encode(&self, format: Format) -> Result<Vec<u8>, CodecError> {
        match self {
            DomainEvent::Case(e) => e.encode(format),
            DomainEvent::Officer(e) => e.encode(format),
            DomainEvent::Representation(e) => e.encode(format),
            DomainEvent::Review(e) => e.encode(format),
        }
    }

    /// Decodes a payload by type name and version, upcasting older versions.
    pub fn decode(
        name: &str,
        version: u16,
        bytes: &[u8],
        format: Format,
    ) -> Result<Self, CodecError> {
        if let Some(e) = crate::case::CaseEvent::decode(name, version, bytes, format)? {
            return Ok(DomainEvent::Case(e));
        }
        if let Some(e) = crate::officer::OfficerEvent::decode(name, version, bytes, format)? {
            return Ok(DomainEvent::Officer(e));
        }
        if let Some(e) =
            crate::representation::RepresentationEvent::decode(name, version, bytes, format)?
        {
            return Ok(DomainEvent::Representation(e));
        }
        if let Some(e) = crate::review::ReviewEvent::decode(name, version, bytes, format)? {
            return Ok(DomainEvent::Review(e));
        }
        Err(CodecError::UnknownType {
            name: name.to_owned(),
        })
    }
}

/// `From` an aggregate's event into [`DomainEvent`], and `TryFrom` back (the event itself as the
/// error when it is another aggregate's).
macro_rules! domain_event_conversions {
    ($($variant:ident($event:ty)),+ $(,)?) => {$(
        impl From<$event> for DomainEvent {
            fn from(event: $event) -> Self {
                DomainEvent::$variant(event)
            }
        }

        impl TryFrom<DomainEvent> for $event {
            type Error = DomainEvent;
            fn try_from(event: DomainEvent) -> Result<Self, DomainEvent> {
                match event {
                    DomainEvent::$variant(e) => Ok(e),
                    other => Err(other),
                }
            }
        }
    )+};
}

domain_event_conversions!(
    Case(crate::case::CaseEvent),
    Officer(crate::officer::OfficerEvent),
    Representation(crate::representation::RepresentationEvent),
    Review(crate::review::ReviewEvent),
);
