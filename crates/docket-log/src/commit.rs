//! The commit: the unit of one append, its wire encoding and its checksum.
//!
//! The byte layout is specified in `docs/log-format.md` and pinned by the golden files under
//! `tests/golden/`. Encoding goes through private `Wire*` mirror structs so that the public types
//! can evolve without changing the bytes by accident, and so that decoding borrows payloads
//! straight out of the frame buffer instead of copying them.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{LogError, Result};

/// The envelope version written by this code.
pub const ENVELOPE_VERSION: u8 = 1;

/// The largest encoded commit the log accepts, in bytes (fits NATS's default 1 MiB payload limit
/// with room for headers).
pub const MAX_COMMIT_BYTES: usize = 1_000_000;

/// The longest stream id, idempotency key or event type name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// Size of the trailing checksum.
const CHECKSUM_BYTES: usize = 4;

/// The name of one stream of the log: `<kind>/<id>`, for example `case/8c0f…`.
///
/// `kind` is lowercase ASCII letters, digits and `-`, starting with a letter; `id` is ASCII
/// letters, digits, `-` and `_`. Both map one to one onto a NATS subject token, so the stream's
/// subject is `docket.log.<kind>.<id>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(String);

impl StreamId {
    /// Parses and validates a stream id.
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        match check_stream_id(value.as_bytes()) {
            Ok(()) => Ok(StreamId(value)),
            Err(why) => Err(LogError::Invalid {
                reason: format!("stream id {value:?}: {why}"),
            }),
        }
    }

    /// The stream id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `/`.
    pub fn kind(&self) -> &str {
        self.0.split_once('/').map_or("", |(k, _)| k)
    }

    /// The part after the `/`.
    pub fn id(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, i)| i)
    }
}

/// One pass over a stream id's bytes (this runs for every commit decoded).
fn check_stream_id(bytes: &[u8]) -> std::result::Result<(), &'static str> {
    if bytes.len() > MAX_NAME_BYTES {
        return Err("longer than 128 bytes");
    }
    let Some(slash) = bytes.iter().position(|&b| b == b'/') else {
        return Err("expected <kind>/<id>");
    };
    let (kind, id) = (&bytes[..slash], &bytes[slash + 1..]);
    let kind_ok = kind.first().is_some_and(u8::is_ascii_lowercase)
        && kind
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !kind_ok {
        return Err("kind must be lowercase letters, digits and '-', starting with a letter");
    }
    if id.is_empty()
        || !id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("id must be non-empty ASCII letters, digits, '-' or '_'");
    }
    Ok(())
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for StreamId {
    type Err = LogError;
    fn from_str(s: &str) -> Result<Self> {
        StreamId::new(s)
    }
}

/// What an append expects the stream's revision to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedRevision {
    /// Whatever it is (the append is still chained to the stream's latest commit).
    Any,
    /// The stream has no commits yet.
    NoStream,
    /// The stream's latest commit is at exactly this position (`Exact(0)` is the same as
    /// [`ExpectedRevision::NoStream`]).
    Exact(u64),
}

impl fmt::Display for ExpectedRevision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedRevision::Any => f.write_str("any"),
            ExpectedRevision::NoStream => f.write_str("no stream"),
            ExpectedRevision::Exact(r) => write!(f, "{r}"),
        }
    }
}

/// One event inside a commit. The log treats the payload as opaque bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventData {
    /// Unique id of the event.
    pub id: Uuid,
    /// Stable type name, for example `case.opened`.
    pub type_name: String,
    /// Version of the type's schema, for upcasting.
    pub type_version: u16,
    /// The encoded event.
    pub payload: Bytes,
}

/// Who, why and when of a commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// Retries with the same key are answered with the original commit (see [`Commit::dedup_id`]).
    pub idempotency_key: Option<String>,
    /// Who caused the commit (person id and role, as the caller writes it).
    pub actor: Option<String>,
    /// The business transaction this commit is part of.
    pub correlation_id: Option<Uuid>,
    /// The event or command that caused this commit.
    pub causation_id: Option<Uuid>,
    /// When the caller recorded the commit, in microseconds since the Unix epoch (UTC).
    pub recorded_at_micros: i64,
}

/// SHA-256 of a commit's encoded bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CommitHash(pub [u8; 32]);

impl CommitHash {
    /// Hashes encoded commit bytes.
    pub fn of(bytes: &[u8]) -> Self {
        CommitHash(Sha256::digest(bytes).into())
    }
}

impl fmt::Display for CommitHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for CommitHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommitHash({self})")
    }
}

/// The link from a commit to the previous commit of the same stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLink {
    /// Position of the previous commit of the stream.
    pub revision: u64,
    /// Hash of that commit's bytes.
    pub hash: CommitHash,
}

/// One append: events of one stream, written atomically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// The stream the commit belongs to.
    pub stream: StreamId,
    /// The stream's previous commit; `None` for its first.
    pub prev: Option<StreamLink>,
    /// Who, why and when.
    pub metadata: Metadata,
    /// One or more events.
    pub events: Vec<EventData>,
}

impl Commit {
    /// The id the log deduplicates on: the idempotency key if there is one, else the first
    /// event's id. Ids are scoped to the whole log.
    pub fn dedup_id(&self) -> String {
        dedup_id(&self.metadata, &self.events)
    }
}

/// See [`Commit::dedup_id`].
pub(crate) fn dedup_id(metadata: &Metadata, events: &[EventData]) -> String {
    match (&metadata.idempotency_key, events.first()) {
        (Some(key), _) => key.clone(),
        (None, Some(event)) => event.id.hyphenated().to_string(),
        (None, None) => String::new(),
    }
}

/// A commit as stored, with its position in the log and its exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedCommit {
    /// The commit's global position (1-based); also the stream's revision after it.
    pub position: u64,
    /// The decoded commit.
    pub commit: Commit,
    /// The exact encoded bytes (what the hash chain and the Merkle tree hash).
    pub bytes: Bytes,
}

impl RecordedCommit {
    /// SHA-256 of the commit's bytes.
    pub fn hash(&self) -> CommitHash {
        CommitHash::of(&self.bytes)
    }

    /// Decodes stored bytes found at `position`.
    pub fn decode(position: u64, bytes: Bytes) -> Result<Self> {
        let commit = decode(&bytes).map_err(|reason| LogError::Corrupt { position, reason })?;
        Ok(RecordedCommit {
            position,
            commit,
            bytes,
        })
    }
}

/// What [`crate::EventLog::append`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The commit's global position.
    pub position: u64,
    /// The stream's revision after the append (equal to `position`: a stream's revision is the
    /// position of its latest commit).
    pub revision: u64,
    /// Hash of the commit's bytes.
    pub hash: CommitHash,
}

#[derive(Serialize, Deserialize)]
struct WireLink {
    revision: u64,
    hash: [u8; 32],
}

#[derive(Serialize, Deserialize)]
struct WireEvent<'a> {
    id: Uuid,
    type_name: &'a str,
    type_version: u16,
    payload: &'a [u8],
}

#[derive(Serialize, Deserialize)]
struct WireCommitV1<'a> {
    stream: &'a str,
    prev: Option<WireLink>,
    idempotency_key: Option<&'a str>,
    actor: Option<&'a str>,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
    recorded_at_micros: i64,
    #[serde(borrow)]
    events: Vec<WireEvent<'a>>,
}

/// Checks an append's inputs before anything is encoded.
pub(crate) fn validate(metadata: &Metadata, events: &[EventData]) -> Result<()> {
    if events.is_empty() {
        return Err(LogError::Invalid {
            reason: "a commit needs at least one event".into(),
        });
    }
    if let Some(key) = &metadata.idempotency_key {
        let header_safe = key.bytes().all(|b| (0x21..0x7f).contains(&b));
        if key.is_empty() || key.len() > MAX_NAME_BYTES || !header_safe {
            return Err(LogError::Invalid {
                reason: format!(
                    "idempotency key {key:?}: must be 1 to {MAX_NAME_BYTES} printable ASCII characters without spaces"
                ),
            });
        }
    }
    for event in events {
        if event.type_name.is_empty() || event.type_name.len() > MAX_NAME_BYTES {
            return Err(LogError::Invalid {
                reason: format!(
                    "event {}: type name must be 1 to {MAX_NAME_BYTES} bytes",
                    event.id
                ),
            });
        }
    }
    Ok(())
}

/// Encodes a commit: version byte, postcard body, CRC-32 of everything before it.
pub fn encode(commit: &Commit) -> Result<Vec<u8>> {
    let wire = WireCommitV1 {
        stream: commit.stream.as_str(),
        prev: commit.prev.map(|l| WireLink {
            revision: l.revision,
            hash: l.hash.0,
        }),
        idempotency_key: commit.metadata.idempotency_key.as_deref(),
        actor: commit.metadata.actor.as_deref(),
        correlation_id: commit.metadata.correlation_id,
        causation_id: commit.metadata.causation_id,
        recorded_at_micros: commit.metadata.recorded_at_micros,
        events: commit
            .events
            .iter()
            .map(|e| WireEvent {
                id: e.id,
                type_name: &e.type_name,
                type_version: e.type_version,
                payload: &e.payload,
            })
            .collect(),
    };
    let mut out = Vec::with_capacity(
        64 + commit
            .events
            .iter()
            .map(|e| e.payload.len() + 64)
            .sum::<usize>(),
    );
    out.push(ENVELOPE_VERSION);
    let mut out = postcard::to_extend(&wire, out).map_err(|e| LogError::Invalid {
        reason: format!("commit cannot be encoded: {e}"),
    })?;
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    if out.len() > MAX_COMMIT_BYTES {
        return Err(LogError::TooLarge {
            size: out.len(),
            limit: MAX_COMMIT_BYTES,
        });
    }
    Ok(out)
}

/// Checks the envelope of encoded commit bytes: long enough, a known version, a good checksum.
pub fn check(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.len() < 1 + CHECKSUM_BYTES {
        return Err(format!("{} bytes is too short for a commit", bytes.len()));
    }
    let (body, crc) = bytes.split_at(bytes.len() - CHECKSUM_BYTES);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let actual = crc32fast::hash(body);
    if stored != actual {
        return Err(format!(
            "checksum mismatch: stored {stored:08x}, computed {actual:08x}"
        ));
    }
    if body[0] != ENVELOPE_VERSION {
        return Err(format!("unknown envelope version {}", body[0]));
    }
    Ok(())
}

/// Decodes encoded commit bytes, sharing payloads with `bytes` rather than copying them.
pub fn decode(bytes: &Bytes) -> std::result::Result<Commit, String> {
    check(bytes)?;
    let body = &bytes[1..bytes.len() - CHECKSUM_BYTES];
    let wire: WireCommitV1<'_> =
        postcard::from_bytes(body).map_err(|e| format!("undecodable commit body: {e}"))?;
    let stream = StreamId::new(wire.stream).map_err(|e| e.to_string())?;
    Ok(Commit {
        stream,
        prev: wire.prev.map(|l| StreamLink {
            revision: l.revision,
            hash: CommitHash(l.hash),
        }),
        metadata: Metadata {
            idempotency_key: wire.idempotency_key.map(str::to_owned),
            actor: wire.actor.map(str::to_owned),
            correlation_id: wire.correlation_id,
            causation_id: wire.causation_id,
            recorded_at_micros: wire.recorded_at_micros,
        },
        events: wire
            .events
            .into_iter()
            .map(|e| EventData {
                id: e.id,
                type_name: e.type_name.to_owned(),
                type_version: e.type_version,
                payload: bytes.slice_ref(e.payload),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_validated() {
        for good in ["case/abc", "review/0f-1_2", "k9-x/Z"] {
            assert!(StreamId::new(good).is_ok(), "{good}");
        }
        for bad in [
            "", "case", "case/", "/x", "Case/x", "case/a.b", "case/a b", "case/a/b", "9a/x",
        ] {
            assert!(StreamId::new(bad).is_err(), "{bad}");
        }
        assert!(StreamId::new(format!("case/{}", "a".repeat(200))).is_err());
    }

    #[test]
    fn checksum_catches_every_single_bit_flip() {
        let commit = Commit {
            stream: StreamId::new("case/1").unwrap(),
            prev: None,
            metadata: Metadata::default(),
            events: vec![EventData {
                id: Uuid::nil(),
                type_name: "t".into(),
                type_version: 1,
                payload: Bytes::from_static(b"payload"),
            }],
        };
        let bytes = encode(&commit).unwrap();
        assert_eq!(decode(&Bytes::from(bytes.clone())).unwrap(), commit);
        for i in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            assert!(decode(&Bytes::from(flipped)).is_err(), "bit {i}");
        }
    }
}
