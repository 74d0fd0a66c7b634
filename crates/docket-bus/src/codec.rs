//! The wire form of commands, replies and errors, in JSON and in postcard.
//!
//! A command's body is its fields only, never the Rust enum tag (the subject already says which
//! command it is), plus the fields naming its target stream when the command itself does not
//! carry them (see [`crate::DomainCommand`]):
//!
//! - JSON: one object, fields by name, values as the domain types serialize them in a
//!   human-readable format (`{"case": "8c0f…", "record": "…", "source": "criminal", …}`).
//!   Unknown fields are refused, so a misspelt optional field is not silently dropped.
//! - postcard: the target fields (when the command does not carry them), then the command's
//!   fields, in declaration order, and nothing after them.
//!
//! Both are read with the domain's own `Deserialize` implementations: the body is presented to
//! them as the variant the catalogue names ([`crate::catalogue::CommandSpec`]), so no field
//! list is duplicated here.

use std::cell::Cell;

use bytes::Bytes;
use docket_domain::case::CaseCommand;
use docket_domain::officer::OfficerCommand;
use docket_domain::representation::RepresentationCommand;
use docket_domain::review::ReviewCommand;
use docket_domain::CommandKind;
use serde::de::{
    DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, VariantAccess, Visitor,
};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Map, Value};

use crate::catalogue::{spec, target_fields, AggregateKind, CommandSpec};
use crate::command::{
    AggregateCommand, CaseTarget, DomainCommand, OfficerTarget, RepresentationTarget, ReviewTarget,
};
use crate::error::{codes, BusError};

/// The two encodings of bodies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// `application/json`: the default, and the interchange form for other languages.
    #[default]
    Json,
    /// `application/postcard`: compact, for Rust services.
    Postcard,
}

impl ContentType {
    /// The media type, as sent in `Content-Type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Json => "application/json",
            ContentType::Postcard => "application/postcard",
        }
    }

    /// Reads a `Content-Type` header value: absent means JSON; parameters (`; charset=utf-8`)
    /// are ignored; anything but JSON or postcard is `unsupported_content_type`.
    pub fn from_header(value: Option<&str>) -> Result<ContentType, BusError> {
        let Some(value) = value else {
            return Ok(ContentType::Json);
        };
        let media = value.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/json") {
            Ok(ContentType::Json)
        } else if media.eq_ignore_ascii_case("application/postcard") {
            Ok(ContentType::Postcard)
        } else {
            Err(BusError::new(
                codes::UNSUPPORTED_CONTENT_TYPE,
                format!(
                    "content type {value:?} is not supported: use application/json or application/postcard"
                ),
            )
            .with_details(json!({
                "content_type": value,
                "supported": ["application/json", "application/postcard"],
            })))
        }
    }
}

/// A successful command's reply.
///
/// In JSON `receipt` is left out when there is none; in postcard it is always there (an
/// option), because postcard fields are positional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct CommandReply {
    /// Log position of the commit that recorded the command (of the original commit when
    /// `duplicate`).
    pub position: u64,
    /// The stream's revision after it.
    pub revision: u64,
    /// Names of the events appended, in order (e.g. `case.opened`).
    pub events: Vec<String>,
    /// True when the idempotency key had already been used: nothing new was appended and this
    /// is the original result.
    pub duplicate: bool,
    /// Proof that the log holds the commit: on the acknowledgement of a review request and on
    /// the recording of a decision, when the deployment signs checkpoints.
    #[serde(default)]
    pub receipt: Option<Receipt>,
}

impl Serialize for CommandReply {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let skip = serializer.is_human_readable() && self.receipt.is_none();
        let mut out = serializer.serialize_struct("CommandReply", if skip { 4 } else { 5 })?;
        out.serialize_field("position", &self.position)?;
        out.serialize_field("revision", &self.revision)?;
        out.serialize_field("events", &self.events)?;
        out.serialize_field("duplicate", &self.duplicate)?;
        if skip {
            out.skip_field("receipt")?;
        } else {
            out.serialize_field("receipt", &self.receipt)?;
        }
        out.end()
    }
}

/// A receipt for a commit, as `docket-audit` makes and checks them (`docs/audit.md`): the
/// commit's position, its leaf hash (base64) and the log's hash of it (hex), and the C2SP
/// `tlog-proof` text — the inclusion proof and the signed checkpoint it leads to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The commit's position.
    pub position: u64,
    /// `SHA-256(0x00 ‖ commit bytes)`, base64.
    pub leaf_hash: String,
    /// The log's SHA-256 of the commit bytes, hex.
    pub commit_hash: String,
    /// The proof and the signed checkpoint, in the C2SP `tlog-proof` text form.
    pub tlog_proof: String,
}

/// Encodes a command's body; returns its kind too, which names the subject.
///
/// A command that carries its own target (`case.open`, `officer.register`,
/// `representation.record_g28`, `review.request`) must name the same one as the
/// [`DomainCommand`], else `invalid`.
pub fn encode_command(
    command: &DomainCommand,
    content_type: ContentType,
) -> Result<(CommandKind, Bytes), BusError> {
    let kind = command.kind();
    let spec = spec(kind);
    let body = match command {
        DomainCommand::Case { case, command } => {
            encode_parts(&spec, content_type, &CaseTarget { case: *case }, command)
        }
        DomainCommand::Officer { person, command } => encode_parts(
            &spec,
            content_type,
            &OfficerTarget { person: *person },
            command,
        ),
        DomainCommand::Representation {
            a_number,
            representative,
            command,
        } => encode_parts(
            &spec,
            content_type,
            &RepresentationTarget {
                a_number: *a_number,
                representative: *representative,
            },
            command,
        ),
        DomainCommand::Review { review, command } => encode_parts(
            &spec,
            content_type,
            &ReviewTarget { review: *review },
            command,
        ),
    }?;
    Ok((kind, Bytes::from(body)))
}

/// Decodes a command's body, for the command the subject named. Anything that does not read as
/// that command is a `bad_request` whose `details.reason` says why (and, for JSON, where:
/// `details.line`, `details.column`).
pub fn decode_command(
    kind: CommandKind,
    content_type: ContentType,
    body: &[u8],
) -> Result<DomainCommand, BusError> {
    let spec = spec(kind);
    let command = match spec.aggregate {
        AggregateKind::Case => {
            let (t, command) = decode_parts::<CaseCommand>(&spec, content_type, body)?;
            DomainCommand::Case {
                case: t.case,
                command,
            }
        }
        AggregateKind::Officer => {
            let (t, command) = decode_parts::<OfficerCommand>(&spec, content_type, body)?;
            DomainCommand::Officer {
                person: t.person,
                command,
            }
        }
        AggregateKind::Representation => {
            let (t, command) = decode_parts::<RepresentationCommand>(&spec, content_type, body)?;
            DomainCommand::Representation {
                a_number: t.a_number,
                representative: t.representative,
                command,
            }
        }
        AggregateKind::Review => {
            let (t, command) = decode_parts::<ReviewCommand>(&spec, content_type, body)?;
            DomainCommand::Review {
                review: t.review,
                command,
            }
        }
    };
    if command.kind() != kind {
        // The catalogue named a variant of another command: a broken table, not bad input.
        return Err(BusError::internal(format!(
            "catalogue entry of {kind} decodes as {}",
            command.kind()
        )));
    }
    Ok(command)
}

fn encode_parts<C: AggregateCommand>(
    spec: &CommandSpec,
    content_type: ContentType,
    target: &C::Target,
    command: &C,
) -> Result<Vec<u8>, BusError> {
    if spec.carries_target {
        match command.carried_target() {
            Some(carried) if carried == *target => {}
            _ => {
                return Err(BusError::new(
                    codes::INVALID,
                    format!(
                        "{} names another stream than the command it wraps",
                        spec.kind
                    ),
                )
                .with_details(json!({ "fields": target_fields(spec.aggregate) })))
            }
        }
    }
    match content_type {
        ContentType::Json => {
            let mut fields = match serde_json::to_value(command).map_err(encode_error)? {
                Value::Object(outer) => match outer.into_iter().next() {
                    Some((name, Value::Object(fields))) if name == spec.variant => fields,
                    _ => return Err(table_error(spec)),
                },
                Value::String(name) if name == spec.variant => Map::new(),
                _ => return Err(table_error(spec)),
            };
            if !spec.carries_target {
                match serde_json::to_value(target).map_err(encode_error)? {
                    Value::Object(target) => fields.extend(target),
                    _ => return Err(table_error(spec)),
                }
            }
            serde_json::to_vec(&Value::Object(fields)).map_err(encode_error)
        }
        ContentType::Postcard => {
            let tagged = postcard::to_stdvec(command).map_err(encode_error)?;
            // Every variant index is below 128, so postcard's varint tag is exactly one byte.
            let fields = match tagged.split_first() {
                Some((tag, fields)) if u32::from(*tag) == spec.index && spec.index < 128 => fields,
                _ => return Err(table_error(spec)),
            };
            let mut body = if spec.carries_target {
                Vec::with_capacity(fields.len())
            } else {
                postcard::to_stdvec(target).map_err(encode_error)?
            };
            body.extend_from_slice(fields);
            Ok(body)
        }
    }
}

fn decode_parts<C: AggregateCommand>(
    spec: &CommandSpec,
    content_type: ContentType,
    body: &[u8],
) -> Result<(C::Target, C), BusError> {
    let fields = Cell::new(&[][..]);
    match content_type {
        ContentType::Json => {
            // First pass: well-formed JSON, an object, and its keys.
            let value: Value = serde_json::from_slice(body).map_err(|e| json_error(spec, &e))?;
            let Value::Object(map) = &value else {
                return Err(BusError::bad_request(format!(
                    "the body of {} must be a JSON object",
                    spec.kind
                ))
                .with_details(json!({
                    "content_type": ContentType::Json.as_str(),
                    "reason": "not an object",
                })));
            };
            // Second pass, from the bytes so that errors carry the position in the body.
            let mut de = serde_json::Deserializer::from_slice(body);
            let command = C::deserialize(Tagged {
                variant: spec.variant,
                inner: &mut de,
                fields: &fields,
            })
            .map_err(|e| json_error(spec, &e))?;
            let target_fields = target_fields(spec.aggregate);
            let mut unknown: Vec<String> = map
                .keys()
                .filter(|k| !fields.get().contains(&k.as_str()))
                .filter(|k| !target_fields.contains(&k.as_str()))
                .cloned()
                .collect();
            if unknown.is_empty() {
                // Serde's derived structs skip unknown fields and read a struct from an array
                // of its values, so nested objects (`encounter`) are checked against the
                // command as read.
                nested_fields(spec, &command, map, &mut unknown)?;
            }
            if !unknown.is_empty() {
                let expected: Vec<&str> =
                    fields.get().iter().chain(target_fields).copied().collect();
                let listed: Vec<String> = unknown
                    .iter()
                    .take(MAX_LISTED_FIELDS)
                    .map(|k| bounded(k, MAX_FIELD_NAME_BYTES))
                    .collect();
                let more = match unknown.len() - listed.len() {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                return Err(BusError::bad_request(format!(
                    "unknown field {}{more} in {}",
                    listed
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    spec.kind
                ))
                .with_details(json!({
                    "content_type": ContentType::Json.as_str(),
                    "reason": "unknown field",
                    "unknown_fields": listed,
                    "unknown_count": unknown.len(),
                    "expected": expected,
                })));
            }
            let target = match command.carried_target() {
                Some(target) => target,
                // From the bytes rather than the value, so that a target field given twice is
                // refused instead of read as its last value.
                None => C::Target::deserialize(&mut serde_json::Deserializer::from_slice(body))
                    .map_err(|e| json_error(spec, &e))?,
            };
            Ok((target, command))
        }
        ContentType::Postcard => {
            let mut de = postcard::Deserializer::from_bytes(body);
            let prefixed = if spec.carries_target {
                None
            } else {
                Some(C::Target::deserialize(&mut de).map_err(|e| postcard_error(spec, &e))?)
            };
            let command = C::deserialize(Tagged {
                variant: spec.variant,
                inner: &mut de,
                fields: &fields,
            })
            .map_err(|e| postcard_error(spec, &e))?;
            let rest = de.finalize().map_err(|e| postcard_error(spec, &e))?;
            if !rest.is_empty() {
                return Err(BusError::bad_request(format!(
                    "{} trailing bytes after the body of {}",
                    rest.len(),
                    spec.kind
                ))
                .with_details(json!({
                    "content_type": ContentType::Postcard.as_str(),
                    "reason": "trailing bytes",
                    "trailing": rest.len(),
                })));
            }
            match prefixed.or_else(|| command.carried_target()) {
                Some(target) => Ok((target, command)),
                None => Err(table_error(spec)),
            }
        }
    }
}

/// Encodes a reply or an error body.
pub(crate) fn encode_value<T: Serialize>(
    value: &T,
    content_type: ContentType,
) -> Result<Vec<u8>, BusError> {
    match content_type {
        ContentType::Json => serde_json::to_vec(value).map_err(encode_error),
        ContentType::Postcard => postcard::to_stdvec(value).map_err(encode_error),
    }
}

/// Decodes a reply or an error body.
pub(crate) fn decode_value<T: DeserializeOwned>(
    body: &[u8],
    content_type: ContentType,
) -> Result<T, String> {
    match content_type {
        ContentType::Json => serde_json::from_slice(body).map_err(|e| e.to_string()),
        ContentType::Postcard => postcard::from_bytes(body).map_err(|e| e.to_string()),
    }
}

/// Checks the nested objects of a JSON body against the command as read: every field given
/// must be one the command has (else its dotted path is added to `unknown`), and every object
/// of the command must be given as an object.
fn nested_fields<C: Serialize>(
    spec: &CommandSpec,
    command: &C,
    body: &Map<String, Value>,
    unknown: &mut Vec<String>,
) -> Result<(), BusError> {
    let read = match serde_json::to_value(command).map_err(encode_error)? {
        Value::Object(outer) => match outer.into_iter().next() {
            Some((_, Value::Object(fields))) => fields,
            _ => return Ok(()),
        },
        // A unit variant: no fields of its own.
        _ => return Ok(()),
    };
    let mut not_objects = Vec::new();
    for (name, given) in body {
        if let Some(read) = read.get(name) {
            compare_fields(given, read, name, unknown, &mut not_objects);
        }
    }
    match not_objects.first() {
        None => Ok(()),
        Some(path) => {
            let path = bounded(path, MAX_FIELD_NAME_BYTES);
            Err(BusError::bad_request(format!(
                "`{path}` in the body of {} must be a JSON object",
                spec.kind
            ))
            .with_details(json!({
                "content_type": ContentType::Json.as_str(),
                "reason": "not an object",
                "field": path,
            })))
        }
    }
}

fn compare_fields(
    given: &Value,
    read: &Value,
    path: &str,
    unknown: &mut Vec<String>,
    not_objects: &mut Vec<String>,
) {
    match (given, read) {
        (Value::Object(given), Value::Object(read)) => {
            for (name, value) in given {
                let inner = format!("{path}.{name}");
                match read.get(name) {
                    Some(read) => compare_fields(value, read, &inner, unknown, not_objects),
                    None => unknown.push(inner),
                }
            }
        }
        (Value::Array(given), Value::Array(read)) => {
            for (i, (given, read)) in given.iter().zip(read).enumerate() {
                compare_fields(given, read, &format!("{path}[{i}]"), unknown, not_objects);
            }
        }
        (_, Value::Object(_)) => not_objects.push(path.to_owned()),
        _ => {}
    }
}

/// Most unknown fields named in an error.
const MAX_LISTED_FIELDS: usize = 10;
/// Longest field name quoted in an error, in bytes.
const MAX_FIELD_NAME_BYTES: usize = 64;
/// Longest decoder message quoted in an error, in bytes: decoders echo the value they refuse,
/// and an error reply must stay small (and far below NATS's payload limit) whatever the body.
const MAX_REASON_BYTES: usize = 512;

/// `text`, or its beginning and end around a note of how much was left out when it is longer
/// than `max` bytes.
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut head = max * 4 / 5;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - max / 5;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{} … ({} bytes left out) … {}",
        &text[..head],
        tail - head,
        &text[tail..]
    )
}

fn json_error(spec: &CommandSpec, err: &serde_json::Error) -> BusError {
    let reason = bounded(&err.to_string(), MAX_REASON_BYTES);
    let mut details = json!({ "content_type": ContentType::Json.as_str(), "reason": reason });
    if err.line() > 0 {
        details["line"] = json!(err.line());
        details["column"] = json!(err.column());
    }
    BusError::bad_request(format!(
        "cannot read the JSON body of {}: {reason}",
        spec.kind
    ))
    .with_details(details)
}

fn postcard_error(spec: &CommandSpec, err: &postcard::Error) -> BusError {
    let reason = bounded(&err.to_string(), MAX_REASON_BYTES);
    BusError::bad_request(format!(
        "cannot read the postcard body of {}: {reason}",
        spec.kind
    ))
    .with_details(json!({
        "content_type": ContentType::Postcard.as_str(),
        "reason": reason,
    }))
}

fn encode_error(err: impl std::fmt::Display) -> BusError {
    BusError::internal(format!("cannot encode: {err}"))
}

fn table_error(spec: &CommandSpec) -> BusError {
    BusError::internal(format!(
        "catalogue entry of {} does not match the domain's command enum",
        spec.kind
    ))
}

/// Presents an untagged body as one variant of an externally tagged enum: the variant comes
/// from the catalogue, its fields from the inner deserializer. `fields` records the variant's
/// field names, for the unknown-field check of JSON bodies.
struct Tagged<'f, D> {
    variant: &'static str,
    inner: D,
    fields: &'f Cell<&'static [&'static str]>,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Tagged<'_, D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        visitor.visit_enum(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        visitor.visit_enum(self)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

impl<'de, D: Deserializer<'de>> EnumAccess<'de> for Tagged<'_, D> {
    type Error = D::Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), D::Error> {
        let variant = seed.deserialize(IntoDeserializer::<D::Error>::into_deserializer(
            self.variant,
        ))?;
        Ok((variant, self))
    }
}

impl<'de, D: Deserializer<'de>> VariantAccess<'de> for Tagged<'_, D> {
    type Error = D::Error;

    fn unit_variant(self) -> Result<(), D::Error> {
        // A unit variant has no fields: the body holds only the target (JSON) or nothing
        // (postcard), which the callers check.
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, D::Error> {
        seed.deserialize(self.inner)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.fields.set(fields);
        self.inner.deserialize_struct(self.variant, fields, visitor)
    }
}
