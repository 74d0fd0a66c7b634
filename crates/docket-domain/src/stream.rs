//! Stream naming: which log stream holds which aggregate, written once.
//!
//! Every aggregate instance lives in one stream of the log named `<kind>/<id>`:
//!
//! | aggregate | kind | id | example |
//! |---|---|---|---|
//! | [`Case`](crate::case::Case) | `case` | the [`CaseId`], hyphenated | `case/8c0f…` |
//! | [`Officer`](crate::officer::Officer) | `officer` | the officer's [`PersonId`] | `officer/1b2e…` |
//! | [`Representation`](crate::representation::Representation) | `representation` | `<A-number>_<representative's PersonId>` | `representation/A012345678_8c0f…` |
//! | [`Review`](crate::review::Review) | `review` | the [`ReviewId`] | `review/4d5a…` |
//!
//! The kind is the aggregate's [`Aggregate::KIND`](crate::Aggregate::KIND). Ids are printed in
//! their normal form (UUIDs hyphenated and lowercase, A-numbers as `A` and nine digits), so every
//! name is a valid log stream id (letters, digits, `-` and `_` after the `/`), and
//! [`StreamKey`]'s `Display` and `FromStr` are exact inverses: parsing accepts only what
//! `Display` prints. Other kinds of stream (notifications, say) exist in the log but hold no
//! aggregate; they do not parse.

use std::fmt;
use std::str::FromStr;

use crate::values::{ANumber, CaseId, PersonId, ReviewId};

/// The kind of an aggregate, and of the streams that hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AggregateKind {
    /// `case/<case id>`.
    Case,
    /// `officer/<person id>`.
    Officer,
    /// `representation/<A-number>_<person id>`.
    Representation,
    /// `review/<review id>`.
    Review,
}

impl AggregateKind {
    /// Every kind.
    pub const ALL: [AggregateKind; 4] = [
        AggregateKind::Case,
        AggregateKind::Officer,
        AggregateKind::Representation,
        AggregateKind::Review,
    ];

    /// The stream kind, the part of a stream's name before the `/`, e.g. `case`.
    pub const fn name(self) -> &'static str {
        match self {
            AggregateKind::Case => "case",
            AggregateKind::Officer => "officer",
            AggregateKind::Representation => "representation",
            AggregateKind::Review => "review",
        }
    }

    /// The kind named `name` (a stream's kind), if an aggregate has it.
    pub fn parse(name: &str) -> Option<AggregateKind> {
        AggregateKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind of the stream named `stream` (`<kind>/<id>`), if an aggregate has it. Looks at
    /// the kind only: for the whole name, parse a [`StreamKey`].
    pub fn of_stream(stream: &str) -> Option<AggregateKind> {
        stream
            .split_once('/')
            .and_then(|(kind, _)| AggregateKind::parse(kind))
    }
}

impl fmt::Display for AggregateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The stream of one aggregate instance (see the module's table for the names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamKey {
    /// A case's stream.
    Case(CaseId),
    /// An officer's stream.
    Officer(PersonId),
    /// The G-28 stream of one A-number and one representative.
    Representation(ANumber, PersonId),
    /// A review's stream.
    Review(ReviewId),
}

impl StreamKey {
    /// The aggregate kind the stream holds.
    pub fn kind(&self) -> AggregateKind {
        match self {
            StreamKey::Case(_) => AggregateKind::Case,
            StreamKey::Officer(_) => AggregateKind::Officer,
            StreamKey::Representation(..) => AggregateKind::Representation,
            StreamKey::Review(_) => AggregateKind::Review,
        }
    }

    /// The part after the `/`, e.g. `A012345678_8c0f…` for a representation.
    pub fn id(&self) -> String {
        match self {
            StreamKey::Case(id) => id.to_string(),
            StreamKey::Officer(person) => person.to_string(),
            StreamKey::Representation(a_number, person) => format!("{a_number}_{person}"),
            StreamKey::Review(id) => id.to_string(),
        }
    }

    /// Parses a stream's name; the inverse of `Display`.
    pub fn parse(stream: &str) -> Result<StreamKey, StreamKeyError> {
        let bad = |why: &'static str| StreamKeyError {
            stream: stream.to_owned(),
            why,
        };
        let (kind, id) = stream
            .split_once('/')
            .ok_or_else(|| bad("expected <kind>/<id>"))?;
        let kind = AggregateKind::parse(kind).ok_or_else(|| bad("no aggregate has this kind"))?;
        let key = match kind {
            AggregateKind::Case => CaseId::parse(id).map(StreamKey::Case),
            AggregateKind::Officer => PersonId::parse(id).map(StreamKey::Officer),
            AggregateKind::Representation => {
                let (a_number, person) = id
                    .split_once('_')
                    .ok_or_else(|| bad("expected <A-number>_<person id>"))?;
                ANumber::parse(a_number)
                    .and_then(|a| PersonId::parse(person).map(|p| StreamKey::Representation(a, p)))
            }
            AggregateKind::Review => ReviewId::parse(id).map(StreamKey::Review),
        }
        .map_err(|_| bad("the id does not parse"))?;
        // The ids' parsers are lenient (other UUID forms, A-numbers without the `A`); a name is
        // one exact string, so only the form `Display` prints is the stream's name.
        if key.to_string() != stream {
            return Err(bad("the id is not in its normal form"));
        }
        Ok(key)
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamKey::Case(id) => write!(f, "case/{id}"),
            StreamKey::Officer(person) => write!(f, "officer/{person}"),
            StreamKey::Representation(a_number, person) => {
                write!(f, "representation/{a_number}_{person}")
            }
            StreamKey::Review(id) => write!(f, "review/{id}"),
        }
    }
}

impl FromStr for StreamKey {
    type Err = StreamKeyError;
    fn from_str(s: &str) -> Result<Self, StreamKeyError> {
        StreamKey::parse(s)
    }
}

/// A stream name that names no aggregate instance.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stream {stream:?} names no aggregate: {why}")]
pub struct StreamKeyError {
    /// The name.
    pub stream: String,
    /// What is wrong with it.
    pub why: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(n: u128) -> uuid::Uuid {
        uuid::Uuid::from_u128(n)
    }

    #[test]
    fn names_print_and_parse_back() {
        let a = ANumber::parse("A012345678").unwrap();
        for (key, name) in [
            (
                StreamKey::Case(CaseId(uuid(1))),
                "case/00000000-0000-0000-0000-000000000001",
            ),
            (
                StreamKey::Officer(PersonId(uuid(2))),
                "officer/00000000-0000-0000-0000-000000000002",
            ),
            (
                StreamKey::Representation(a, PersonId(uuid(3))),
                "representation/A012345678_00000000-0000-0000-0000-000000000003",
            ),
            (
                StreamKey::Review(ReviewId(uuid(4))),
                "review/00000000-0000-0000-0000-000000000004",
            ),
        ] {
            assert_eq!(key.to_string(), name);
            assert_eq!(name.parse::<StreamKey>(), Ok(key));
            assert_eq!(format!("{}/{}", key.kind(), key.id()), name);
            assert_eq!(AggregateKind::of_stream(name), Some(key.kind()));
        }
    }

    #[test]
    fn only_the_printed_form_parses() {
        for bad in [
            "",
            "case",
            "case/",
            "notification/00000000-0000-0000-0000-000000000001",
            "case/not-a-uuid",
            "case/00000000000000000000000000000001",
            "case/00000000-0000-0000-0000-00000000000A",
            "case/ 00000000-0000-0000-0000-000000000001",
            "representation/A012345678",
            "representation/12345678_00000000-0000-0000-0000-000000000003",
            "Review/00000000-0000-0000-0000-000000000004",
        ] {
            assert!(StreamKey::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(AggregateKind::of_stream("notification/x"), None);
        assert_eq!(
            AggregateKind::of_stream("review/x"),
            Some(AggregateKind::Review)
        );
    }
}
