//! Bad input for every command (issue 7): starting from the valid JSON example of each command in
//! `docs/api.md`, a matrix of broken bodies — each required field removed, each field given a
//! value of the wrong JSON type, enum fields given unknown values, A-numbers, ids, dates and
//! hashes that their types refuse, unknown and duplicated fields, oversized bodies, huge strings
//! just under the size limit, garbage bytes, truncated and invalid UTF-8 JSON, deeply nested
//! arrays, and the same for postcard (truncated, random, another command's body, trailing
//! bytes, out-of-range enum indices and option tags, bad A-number varints, invalid UTF-8).
//!
//! Every variant is sent to running services — in process over the [`LocalBus`] and over a real
//! nats-server — after the documented walk-through has run, and each must be answered with a
//! structured error (`{code, message, details}`, `Docket-Status: error`, a stable code) whose
//! code is the one the variant calls for, never a success, a panic or a hang. After the whole
//! matrix the log's head has not moved and a valid command still succeeds.
//!
//! The matrix itself is also checked against `docket_bus::decode_command` directly, so that a
//! decoder regression fails fast and names the variant.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use docket_bus::{
    codes, decode_command, encode_command, headers, BusError, ContentType, Headers, LocalBus,
    NatsTransport, RawReply, Transport, MAX_BODY_BYTES,
};
use docket_domain::CommandKind;
use docket_log::file::{FileLog, FileLogConfig};
use docket_log::jetstream::{JetStreamConfig, JetStreamLog};
use docket_log::EventLog;
use docket_runtime::clock::{ManualClock, SharedClock};
use serde_json::{json, Value};

use self::support::{check_reply_except_positions, examples, Example};

// `api_examples` loads the same file as a private module of its own.
#[allow(clippy::duplicate_mod)]
#[path = "../../../tests/support/api_examples.rs"]
mod support;

use crate::executor;

/// The headers of one request: the only place that says how the acting person is presented
/// (today the `Docket-Actor` claim; signed actor tokens will replace it here).
fn request_headers(actor: &str, content_type: &str) -> Headers {
    Headers::new()
        .with(headers::CONTENT_TYPE, content_type)
        .with(headers::ACTOR, crate::keys::token(actor))
}

/// Bugs this matrix finds outside the codec and the value parsers, reported rather than fixed
/// here: `(command, start of the variant's label, what is wrong)`. Each must still be answered
/// wrongly — once one is fixed, the test says so, and its entry goes.
const KNOWN_ISSUES: &[(CommandKind, &str, &str)] = &[];

fn known_issue(kind: CommandKind, label: &str) -> Option<&'static str> {
    KNOWN_ISSUES
        .iter()
        .find(|(k, prefix, _)| *k == kind && label.starts_with(prefix))
        .map(|(_, _, why)| *why)
}

/// What a variant must be answered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// The body does not read as the command: `bad_request`.
    BadRequest,
    /// The body is over [`MAX_BODY_BYTES`]: `too_large`.
    TooLarge,
    /// The body reads, but a value breaks a rule of the domain (blank or overlong text, an
    /// unknown factor, …) or the command does not fit the state: any documented refusal code
    /// other than `bad_request`, `internal` and `unavailable`.
    Refused,
}

/// One broken request body.
#[derive(Clone, Debug)]
struct Variant {
    label: String,
    content_type: ContentType,
    body: Vec<u8>,
    expect: Expect,
}

/// A seeded generator (rand's `StdRng`), so that the matrix is the same on every run.
struct Rng(rand::rngs::StdRng);

impl Rng {
    fn seeded(seed: u64) -> Self {
        Rng(<rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(
            seed,
        ))
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = vec![0; n];
        rand::RngCore::fill_bytes(&mut self.0, &mut out);
        out
    }
}

// ---------------------------------------------------------------------------------------------
// What the fields of the commands are (docs/events.md).

/// Fields that may be left out or `null` (the `?` fields of `docs/events.md`).
fn is_optional(kind: CommandKind, name: &str) -> bool {
    matches!(
        name,
        "protected_area_exception"
            | "referred_to"
            | "preferred_language"
            | "entry_date"
            | "protected_area"
    ) || (kind == CommandKind::ReviewWithdraw && name == "reason")
}

/// Two valid codes of an enum-valued field, or `None` if the field is not one.
fn enum_codes(kind: CommandKind, name: &str) -> Option<[&'static str; 2]> {
    Some(match name {
        "office" => ["NYC", "WAS"],
        "role" => ["officer", "supervisor"],
        "source" => ["criminal", "administrative"],
        "action" => ["detain", "release"],
        "capacity" if kind == CommandKind::RepresentationRecordG28 => {
            ["attorney", "accredited_representative"]
        }
        "capacity" => ["representative", "noncitizen"],
        "place" => ["interior", "border"],
        "manner_of_entry" => ["entered_unlawfully", "unknown"],
        "protected_area" => ["school", "ceremony"],
        "outcome" => ["reversed", "modified"],
        "referred_to" => ["civil_rights", "court_lawyers"],
        "deadline" => ["acknowledge", "tier1_decision"],
        "reason" if kind == CommandKind::ReviewPrioritise => ["detained", "removal_imminent"],
        _ => return None,
    })
}

/// The kind of value a string-valued field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scalar {
    ANumber,
    Uuid,
    Date,
    Time,
    Hash,
    Enum,
    /// Free text: any string reads; the domain checks it.
    Text,
}

fn scalar(kind: CommandKind, name: &str) -> Scalar {
    if enum_codes(kind, name).is_some() {
        return Scalar::Enum;
    }
    match name {
        "a_number" => Scalar::ANumber,
        "case" | "record" | "decision" | "review" | "person" | "representative" | "reviewer"
        | "official" => Scalar::Uuid,
        "entry_date" | "completed_on" | "signed_on" => Scalar::Date,
        "at" => Scalar::Time,
        "content_hash" => Scalar::Hash,
        _ => Scalar::Text,
    }
}

/// Values the field's type refuses (so the body does not read).
fn refused_values(kind: CommandKind, name: &str, current: &str) -> Vec<Value> {
    match scalar(kind, name) {
        Scalar::ANumber => vec![
            json!("A12"),
            json!("B123456789"),
            json!("A0000000000"),
            json!(""),
            json!(12),
            json!("A000000000"),
            json!("A12345678901234567890"),
            json!("A\u{ff11}\u{ff12}\u{ff13}\u{ff14}\u{ff15}\u{ff16}\u{ff17}\u{ff18}"),
            json!("A-"),
            json!(12_345_678),
        ],
        Scalar::Uuid => vec![
            json!("not-a-uuid"),
            json!("8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a000"),
            json!("8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a00001"),
            json!("zzzzzzzz-2a6b-4c1e-9d52-0b4f5e2a0001"),
            json!(""),
        ],
        Scalar::Date => vec![
            json!("2024-02-30"),
            json!("2024-13-01"),
            json!("01/03/2024"),
            json!(""),
        ],
        Scalar::Time => vec![
            json!("2024-03-05T25:00:00Z"),
            json!("2024-03-05"),
            json!("yesterday"),
            json!(""),
        ],
        Scalar::Hash => vec![
            json!("ab".repeat(31)),
            json!("zz".repeat(32)),
            // `u8::from_str_radix` takes a leading `+`: 64 characters, not 64 hex digits.
            json!("+a".repeat(32)),
            json!("\u{e9}".repeat(32)),
            json!("sha256:"),
            json!(""),
        ],
        Scalar::Enum => vec![
            json!("unknown_value"),
            json!(""),
            json!(if current.bytes().any(|b| b.is_ascii_uppercase()) {
                current.to_lowercase()
            } else {
                current.to_uppercase()
            }),
            json!(current.to_lowercase() + "x"),
            json!(format!(" {current}")),
            json!(7),
        ],
        Scalar::Text => Vec::new(),
    }
}

/// Values that read but that the domain refuses (blank or overlong text).
fn domain_refused_values(kind: CommandKind, name: &str) -> Vec<Value> {
    match scalar(kind, name) {
        Scalar::Text => vec![json!(""), json!("   "), json!("y".repeat(10_001))],
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON variants.

type Path = Vec<String>;

fn get_path<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, k| v.get(k))
}

/// `value` with the field at `path` set to `new` (or removed when `None`).
fn with_path(value: &Value, path: &[String], new: Option<Value>) -> Value {
    let mut out = value.clone();
    let (last, parents) = path.split_last().expect("a non-empty path");
    let mut at = &mut out;
    for k in parents {
        at = at.get_mut(k).expect("an existing parent");
    }
    let map = at.as_object_mut().expect("an object");
    match new {
        Some(v) => {
            map.insert(last.clone(), v);
        }
        None => {
            map.remove(last);
        }
    }
    out
}

/// Every field of the example, top level and nested, by path.
fn fields(value: &Value) -> Vec<Path> {
    let mut out = Vec::new();
    if let Value::Object(map) = value {
        for (k, v) in map {
            out.push(vec![k.clone()]);
            if let Value::Object(inner) = v {
                for k2 in inner.keys() {
                    out.push(vec![k.clone(), k2.clone()]);
                }
            }
        }
    }
    out
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// One value of every JSON type.
fn one_of_each_type() -> Vec<Value> {
    vec![
        json!("x"),
        json!(12),
        json!({}),
        json!([]),
        Value::Null,
        json!(true),
    ]
}

fn to_vec(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a JSON value encodes")
}

/// The example with the string field at `path` filled with `fill` so that the whole body is as
/// close to [`MAX_BODY_BYTES`] as the fill's encoded width allows, without passing it.
fn filled_to_the_limit(example: &Value, path: &[String], fill: char) -> Vec<u8> {
    let base = to_vec(&with_path(example, path, Some(json!("")))).len();
    let width = to_vec(&json!(fill.to_string())).len() - 2;
    let n = (MAX_BODY_BYTES - base) / width;
    let body = to_vec(&with_path(
        example,
        path,
        Some(Value::String(std::iter::repeat_n(fill, n).collect())),
    ));
    assert!(body.len() <= MAX_BODY_BYTES && body.len() > MAX_BODY_BYTES - 8);
    body
}

/// True if `body` reads as a command of `kind`: a body of another command that happens to be a
/// valid body of this one too (same fields, or same postcard layout) is not bad input.
fn reads_as(kind: CommandKind, ct: ContentType, body: &[u8]) -> bool {
    decode_command(kind, ct, body).is_ok()
}

fn json_variants(
    kind: CommandKind,
    example: &Value,
    others: &[(CommandKind, Vec<u8>, Vec<u8>)],
    rng: &mut Rng,
) -> (Vec<Variant>, usize) {
    let mut out = Vec::new();
    let mut skipped = 0;
    let mut push = |label: String, body: Vec<u8>, expect: Expect| {
        out.push(Variant {
            label,
            content_type: ContentType::Json,
            body,
            expect,
        })
    };
    let valid = to_vec(example);
    for path in fields(example) {
        let name = path.last().expect("a field name").as_str();
        let dotted = path.join(".");
        let current = get_path(example, &path).expect("the field").clone();
        // Each required field removed.
        if !is_optional(kind, name) {
            push(
                format!("missing {dotted}"),
                to_vec(&with_path(example, &path, None)),
                Expect::BadRequest,
            );
        }
        // Each field given a value of another JSON type.
        for wrong in one_of_each_type() {
            let same = type_name(&wrong) == type_name(&current);
            let allowed_null = wrong.is_null() && is_optional(kind, name);
            let text_string =
                wrong.is_string() && (current.is_null() && scalar(kind, name) == Scalar::Text);
            if same || allowed_null || text_string {
                continue;
            }
            push(
                format!("{dotted} as {}", type_name(&wrong)),
                to_vec(&with_path(example, &path, Some(wrong))),
                Expect::BadRequest,
            );
        }
        // An object given as the array of its values (serde reads structs from sequences).
        if let Value::Object(inner) = &current {
            // In declaration order, as serde would read them.
            let order = [
                "at",
                "location",
                "place",
                "manner_of_entry",
                "entry_date",
                "protected_area",
            ];
            let values: Vec<Value> = if name == "encounter" {
                order.iter().map(|k| inner[*k].clone()).collect()
            } else {
                inner.values().cloned().collect()
            };
            push(
                format!("{dotted} as the array of its values"),
                to_vec(&with_path(example, &path, Some(Value::Array(values)))),
                Expect::BadRequest,
            );
            // An unknown field inside the nested object.
            push(
                format!("unknown field {dotted}.unexpected"),
                to_vec(&with_path(
                    example,
                    &[path.clone(), vec!["unexpected".into()]].concat(),
                    Some(json!("school")),
                )),
                Expect::BadRequest,
            );
        }
        // Arrays: elements of the wrong type, and malformed codes.
        if let Value::Array(items) = &current {
            for wrong in one_of_each_type() {
                if wrong.is_string() {
                    continue;
                }
                let mut items = items.clone();
                items.push(wrong.clone());
                push(
                    format!("{dotted} with a {} element", type_name(&wrong)),
                    to_vec(&with_path(example, &path, Some(Value::Array(items)))),
                    Expect::BadRequest,
                );
            }
            for bad in [
                "Family_Impact",
                "family impact",
                "",
                "9lives",
                "x".repeat(65).as_str(),
            ] {
                push(
                    format!("{dotted} with the malformed code {bad:?}"),
                    to_vec(&with_path(example, &path, Some(json!([bad])))),
                    Expect::BadRequest,
                );
            }
            push(
                format!("{dotted} with an unknown factor"),
                to_vec(&with_path(example, &path, Some(json!(["unknown_factor"])))),
                Expect::Refused,
            );
        }
        // Strings (and nulls standing for strings): values the type refuses, then values
        // the domain refuses, then huge values up to the size limit.
        if current.is_string() || current.is_null() {
            let text = current.as_str().unwrap_or("");
            for bad in refused_values(kind, name, text) {
                let what = match &bad {
                    Value::String(s) if s.len() > 40 => format!("{} chars", s.chars().count()),
                    other => other.to_string(),
                };
                push(
                    format!("{dotted} = {what}"),
                    to_vec(&with_path(example, &path, Some(bad))),
                    Expect::BadRequest,
                );
            }
            for bad in domain_refused_values(kind, name) {
                let what = match &bad {
                    Value::String(s) if s.len() > 40 => format!("{} chars", s.chars().count()),
                    other => other.to_string(),
                };
                push(
                    format!("{dotted} = {what}"),
                    to_vec(&with_path(example, &path, Some(bad))),
                    Expect::Refused,
                );
            }
            let expect = if scalar(kind, name) == Scalar::Text {
                Expect::Refused
            } else {
                Expect::BadRequest
            };
            for fill in ['x', '"', '\u{300}'] {
                push(
                    format!("{dotted} = huge string of {fill:?} just under the limit"),
                    filled_to_the_limit(example, &path, fill),
                    expect,
                );
            }
        }
        // Deep nesting in place of the value.
        let depth = 50_000;
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let text = String::from_utf8(valid.clone()).expect("UTF-8");
        let body = with_path(example, &path, Some(json!("@@NESTED@@")));
        let body = String::from_utf8(to_vec(&body))
            .expect("UTF-8")
            .replace("\"@@NESTED@@\"", &nested);
        assert_ne!(body, text);
        push(
            format!("{dotted} = {depth} nested arrays"),
            body.into_bytes(),
            Expect::BadRequest,
        );
    }
    // Unknown and duplicated fields at the top level.
    push(
        "unknown field `unexpected`".into(),
        to_vec(&with_path(example, &["unexpected".into()], Some(json!(1)))),
        Expect::BadRequest,
    );
    // A target field given twice, the second time naming another stream.
    let target = ["case", "person", "review", "a_number", "representative"]
        .into_iter()
        .find(|k| example.get(*k).is_some());
    if let Some(first) = target {
        let other = match first {
            "a_number" => json!("A087654321"),
            _ => json!("00000000-0000-0000-0000-0000000000ff"),
        };
        let text = String::from_utf8(valid.clone()).expect("UTF-8");
        let dup = format!("{{{}:{},{}", json!(first), other, &text[1..]);
        push(
            format!("duplicated field {first}"),
            dup.into_bytes(),
            Expect::BadRequest,
        );
    }
    // Oversized bodies.
    let mut padded = valid.clone();
    padded.resize(MAX_BODY_BYTES + 1, b' ');
    push(
        "valid JSON padded with spaces to the limit + 1".into(),
        padded,
        Expect::TooLarge,
    );
    push(
        "an extra field of 256 KiB".into(),
        to_vec(&with_path(
            example,
            &["padding".into()],
            Some(json!("p".repeat(MAX_BODY_BYTES))),
        )),
        Expect::TooLarge,
    );
    push(
        "1.5 MiB of garbage".into(),
        rng.bytes(3 * 512 * 1024),
        Expect::TooLarge,
    );
    // Garbage.
    for (label, body) in [
        ("empty body", Vec::new()),
        ("null", b"null".to_vec()),
        ("an array", b"[]".to_vec()),
        ("a number", b"12".to_vec()),
        ("a string", b"\"case\"".to_vec()),
        ("true", b"true".to_vec()),
        (
            "a byte-order mark first",
            [b"\xEF\xBB\xBF".as_slice(), valid.as_slice()].concat(),
        ),
        (
            "a trailing comma",
            [&valid[..valid.len() - 1], b",}".as_slice()].concat(),
        ),
        ("two objects", [valid.as_slice(), valid.as_slice()].concat()),
        (
            "deeply nested arrays",
            [vec![b'['; 100_000], vec![b']'; 100_000]].concat(),
        ),
        ("unclosed nested arrays", vec![b'['; 200_000]),
        (
            "deeply nested objects",
            format!("{}1{}", "{\"a\":".repeat(40_000), "}".repeat(40_000)).into_bytes(),
        ),
        ("NUL bytes", vec![0; 64]),
    ] {
        push(label.into(), body, Expect::BadRequest);
    }
    for (i, len) in [1, 7, 64, 500, 4096, 100_000].into_iter().enumerate() {
        let body = rng.bytes(len);
        if reads_as(kind, ContentType::Json, &body) {
            skipped += 1;
            continue;
        }
        push(
            format!("random bytes #{i} ({len})"),
            body,
            Expect::BadRequest,
        );
    }
    for i in 1..12 {
        let cut = valid.len() * i / 12;
        push(
            format!("truncated at {cut} of {}", valid.len()),
            valid[..cut].to_vec(),
            Expect::BadRequest,
        );
    }
    // Invalid UTF-8 inside the first string value.
    if let Some(quote) = valid.iter().position(|&b| b == b':').map(|i| i + 1) {
        if valid.get(quote) == Some(&b'"') {
            for bad in [
                &b"\xff"[..],
                &b"\xc3\x28"[..],
                &b"\xc0\xaf"[..],
                &b"\xed\xa0\x80"[..],
            ] {
                let body = [&valid[..quote + 1], bad, &valid[quote + 1..]].concat();
                push(
                    format!("invalid UTF-8 {bad:02x?} in a string"),
                    body,
                    Expect::BadRequest,
                );
            }
        }
    }
    // A lone surrogate escape in a string.
    let text = String::from_utf8(valid.clone()).expect("UTF-8");
    if let Some(i) = text.find(":\"") {
        let body = format!("{}\\ud800{}", &text[..i + 2], &text[i + 2..]);
        push(
            "a lone surrogate escape in a string".into(),
            body.into_bytes(),
            Expect::BadRequest,
        );
    }
    // The body of every other command.
    for (other, json, _) in others {
        if *other == kind {
            continue;
        }
        if reads_as(kind, ContentType::Json, json) {
            skipped += 1;
            continue;
        }
        push(
            format!("the JSON body of {other}"),
            json.clone(),
            Expect::BadRequest,
        );
    }
    (out, skipped)
}

// ---------------------------------------------------------------------------------------------
// Postcard variants.

fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn postcard_of(kind: CommandKind, json: &Value) -> Option<Vec<u8>> {
    let command = decode_command(kind, ContentType::Json, &to_vec(json)).ok()?;
    let (_, body) = encode_command(&command, ContentType::Postcard).ok()?;
    Some(body.to_vec())
}

fn postcard_variants(
    kind: CommandKind,
    example: &Value,
    valid: &[u8],
    others: &[(CommandKind, Vec<u8>, Vec<u8>)],
    rng: &mut Rng,
) -> (Vec<Variant>, usize) {
    let mut out = Vec::new();
    let mut skipped = 0;
    let mut push = |label: String, body: Vec<u8>, expect: Expect| {
        out.push(Variant {
            label,
            content_type: ContentType::Postcard,
            body,
            expect,
        })
    };
    // Every truncation.
    for cut in 0..valid.len() {
        push(
            format!("truncated at {cut} of {}", valid.len()),
            valid[..cut].to_vec(),
            Expect::BadRequest,
        );
    }
    // Trailing bytes.
    for (label, tail) in [
        ("a trailing 0x00", vec![0u8]),
        ("a trailing 0xff", vec![0xff]),
        ("the body twice", valid.to_vec()),
    ] {
        push(
            label.into(),
            [valid, tail.as_slice()].concat(),
            Expect::BadRequest,
        );
    }
    // Random bytes of assorted lengths (skipping the rare ones that are a valid body).
    for (i, len) in [
        1,
        2,
        8,
        17,
        33,
        valid.len(),
        valid.len() + 1,
        2 * valid.len(),
        1000,
    ]
    .into_iter()
    .enumerate()
    {
        let body = rng.bytes(len);
        if reads_as(kind, ContentType::Postcard, &body) {
            skipped += 1;
            continue;
        }
        push(
            format!("random bytes #{i} ({len})"),
            body,
            Expect::BadRequest,
        );
    }
    push("all 0xff".into(), vec![0xff; 64], Expect::BadRequest);
    // The body of every other command.
    for (other, _, postcard) in others {
        if *other == kind {
            continue;
        }
        if reads_as(kind, ContentType::Postcard, postcard) {
            skipped += 1;
            continue;
        }
        push(
            format!("the postcard body of {other}"),
            postcard.clone(),
            Expect::BadRequest,
        );
    }
    for path in fields(example) {
        let name = path.last().expect("a field name").as_str();
        let dotted = path.join(".");
        let current = get_path(example, &path).expect("the field").clone();
        // An enum index out of range: found as the first byte where the encodings of two
        // valid codes differ.
        if let Some(codes) = enum_codes(kind, name) {
            let encodings: Vec<Vec<u8>> = codes
                .iter()
                .filter_map(|c| postcard_of(kind, &with_path(example, &path, Some(json!(c)))))
                .collect();
            if let [a, b] = encodings.as_slice() {
                if let Some(at) = a.iter().zip(b).position(|(x, y)| x != y) {
                    for byte in [0x7f, 0xff] {
                        let mut body = a.clone();
                        body[at] = byte;
                        push(
                            format!("{dotted}: enum index 0x{byte:02x}"),
                            body,
                            Expect::BadRequest,
                        );
                    }
                }
            }
        }
        // An option tag that is neither 0 nor 1: the first byte where `null` and a value differ.
        if is_optional(kind, name) {
            let some = match scalar(kind, name) {
                Scalar::Enum => json!(enum_codes(kind, name).expect("codes")[0]),
                Scalar::Date => json!("2010-06-01"),
                _ => json!("x"),
            };
            let none = postcard_of(kind, &with_path(example, &path, Some(Value::Null)));
            let some = postcard_of(kind, &with_path(example, &path, Some(some)));
            if let (Some(none), Some(some)) = (none, some) {
                if let Some(at) = none.iter().zip(&some).position(|(x, y)| x != y) {
                    assert_eq!((none[at], some[at]), (0, 1), "{kind} {dotted}");
                    for byte in [2, 0x7f, 0xff] {
                        let mut body = none.clone();
                        body[at] = byte;
                        push(
                            format!("{dotted}: option tag 0x{byte:02x}"),
                            body,
                            Expect::BadRequest,
                        );
                    }
                }
            }
        }
        // A-numbers out of range, and varints that overflow.
        if name == "a_number" {
            let n: u64 = current
                .as_str()
                .and_then(|s| s.trim_start_matches('A').parse().ok())
                .expect("the example's A-number");
            if let Some(at) = find(valid, &varint(n)) {
                let len = varint(n).len();
                for (label, bad) in [
                    ("0", varint(0)),
                    ("1000000000", varint(1_000_000_000)),
                    ("2^32", varint(1 << 32)),
                    ("an unterminated varint", vec![0xff; 6]),
                ] {
                    let body = [&valid[..at], bad.as_slice(), &valid[at + len..]].concat();
                    push(format!("{dotted} = {label}"), body, Expect::BadRequest);
                }
            }
        }
        // Strings: invalid UTF-8, and a length prefix past the end.
        if let Some(text) = current.as_str().filter(|s| !s.is_empty()) {
            if scalar(kind, name) == Scalar::Text {
                let prefixed = [varint(text.len() as u64), text.as_bytes().to_vec()].concat();
                if let Some(at) = find(valid, &prefixed) {
                    let start = at + prefixed.len() - text.len();
                    let mut body = valid.to_vec();
                    body[start] = 0xff;
                    push(format!("{dotted}: invalid UTF-8"), body, Expect::BadRequest);
                    let len = prefixed.len() - text.len();
                    for (label, bad) in [
                        ("past the end", varint(text.len() as u64 + 1000)),
                        ("u32::MAX", varint(u64::from(u32::MAX))),
                        ("u64::MAX", varint(u64::MAX)),
                    ] {
                        let body = [&valid[..at], bad.as_slice(), &valid[at + len..]].concat();
                        push(
                            format!("{dotted}: length prefix {label}"),
                            body,
                            Expect::BadRequest,
                        );
                    }
                }
                // A huge (valid) string just under the limit: the domain refuses it.
                let base = postcard_of(kind, &with_path(example, &path, Some(json!(""))))
                    .expect("an empty string encodes")
                    .len();
                let n = MAX_BODY_BYTES - base - 4;
                let big = postcard_of(kind, &with_path(example, &path, Some(json!("x".repeat(n)))))
                    .expect("a huge string encodes");
                assert!(big.len() <= MAX_BODY_BYTES, "{}", big.len());
                push(
                    format!("{dotted} = huge string just under the limit"),
                    big,
                    Expect::Refused,
                );
            }
        }
    }
    // Oversized bodies.
    let mut padded = valid.to_vec();
    padded.resize(MAX_BODY_BYTES + 1, 0);
    push(
        "the body padded with zeros to the limit + 1".into(),
        padded,
        Expect::TooLarge,
    );
    push(
        "1.5 MiB of garbage".into(),
        rng.bytes(3 * 512 * 1024),
        Expect::TooLarge,
    );
    (out, skipped)
}

// ---------------------------------------------------------------------------------------------
// The matrix.

/// The first example of each command, its JSON value and its postcard body.
struct Start {
    kind: CommandKind,
    example: Example,
    value: Value,
    postcard: Vec<u8>,
}

fn starts() -> Vec<Start> {
    let examples = examples();
    CommandKind::ALL
        .iter()
        .map(|kind| {
            let example = examples
                .iter()
                .find(|e| e.command == kind.name())
                .unwrap_or_else(|| panic!("docs/api.md has no example of {kind}"));
            let value: Value = serde_json::from_str(&example.body).unwrap();
            let postcard = postcard_of(*kind, &value)
                .unwrap_or_else(|| panic!("the example of {kind} reads and encodes"));
            Start {
                kind: *kind,
                example: Example {
                    command: example.command.clone(),
                    actor: example.actor.clone(),
                    body: example.body.clone(),
                    reply: example.reply.clone(),
                    error: example.error,
                },
                value,
                postcard,
            }
        })
        .collect()
}

/// Every command's variants, JSON and postcard, and how many generated bodies were skipped
/// because they happen to be valid bodies of the command.
struct Matrix {
    commands: Vec<(Start, Vec<Variant>, Vec<Variant>, usize)>,
}

fn matrix() -> Matrix {
    let starts = starts();
    let others: Vec<(CommandKind, Vec<u8>, Vec<u8>)> = starts
        .iter()
        .map(|s| (s.kind, to_vec(&s.value), s.postcard.clone()))
        .collect();
    let mut rng = Rng::seeded(0x0D0C_4E7B_AD1E_0007);
    let commands = starts
        .into_iter()
        .map(|start| {
            let (json, skipped_json) = json_variants(start.kind, &start.value, &others, &mut rng);
            let (postcard, skipped_postcard) =
                postcard_variants(start.kind, &start.value, &start.postcard, &others, &mut rng);
            (start, json, postcard, skipped_json + skipped_postcard)
        })
        .collect();
    Matrix { commands }
}

/// The codes a reply may carry: the bus's and every code `docs/api.md` lists for a command.
fn documented_codes() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut out: BTreeSet<String> = codes::ALL.iter().map(|c| c.to_string()).collect();
    for line in doc
        .lines()
        .filter(|l| l.starts_with("Errors besides the common ones"))
    {
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 1
                && !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                out.insert(part.to_owned());
            }
        }
    }
    out
}

/// Checks one reply against what the variant calls for; `None` if it is right.
fn judge(
    variant: &Variant,
    reply: Result<RawReply, BusError>,
    known: &BTreeSet<String>,
) -> (String, Option<String>) {
    let err = match reply {
        // Only a body NATS itself cannot carry is refused by the client, as too_large.
        Err(err) => {
            if err.code == codes::TOO_LARGE && variant.body.len() > 1024 * 1024 {
                return (err.code.clone(), None);
            }
            return (
                err.code.clone(),
                Some(format!("no reply from the service: {err:?}")),
            );
        }
        Ok(raw) => {
            if raw.headers.get(headers::STATUS) != Some(headers::STATUS_ERROR) {
                return (
                    "ok".into(),
                    Some(format!(
                        "answered {:?}: {}",
                        raw.headers.get(headers::STATUS),
                        String::from_utf8_lossy(&raw.body)
                    )),
                );
            }
            if raw.headers.get(headers::CONTENT_TYPE) != Some(variant.content_type.as_str()) {
                return (
                    "?".into(),
                    Some(format!(
                        "reply content type {:?}",
                        raw.headers.get(headers::CONTENT_TYPE)
                    )),
                );
            }
            if variant.content_type == ContentType::Json {
                let shape = serde_json::from_slice::<Value>(&raw.body)
                    .ok()
                    .and_then(|v| v.as_object().cloned())
                    .map(|m| {
                        let mut keys: Vec<&str> = m.keys().map(String::as_str).collect();
                        keys.sort_unstable();
                        keys == ["code", "details", "message"]
                            && m["code"].is_string()
                            && m["message"].is_string()
                            && m["details"].is_object()
                    });
                if shape != Some(true) {
                    return (
                        "?".into(),
                        Some(format!(
                            "not a structured error: {}",
                            String::from_utf8_lossy(&raw.body)
                        )),
                    );
                }
            }
            let class = raw
                .headers
                .get(headers::NATS_SERVICE_ERROR_CODE)
                .map(str::to_owned);
            let body_len = raw.body.len();
            match raw.into_result() {
                Ok(_) => unreachable!("an error status"),
                Err(err) => {
                    if class != Some(err.status().to_string()) {
                        return (
                            err.code.clone(),
                            Some(format!(
                                "{} header {class:?}",
                                headers::NATS_SERVICE_ERROR_CODE
                            )),
                        );
                    }
                    if !err.details.is_object() {
                        return (err.code.clone(), Some("details is not an object".into()));
                    }
                    if body_len > 64 * 1024 {
                        return (
                            err.code.clone(),
                            Some(format!("an error reply of {body_len} bytes")),
                        );
                    }
                    err
                }
            }
        }
    };
    let right = match variant.expect {
        Expect::BadRequest => err.code == codes::BAD_REQUEST,
        Expect::TooLarge => err.code == codes::TOO_LARGE,
        Expect::Refused => {
            known.contains(&err.code)
                && ![codes::BAD_REQUEST, codes::INTERNAL, codes::UNAVAILABLE]
                    .contains(&err.code.as_str())
        }
    };
    let problem = (!right).then(|| {
        let mut message = err.message.clone();
        if message.len() > 300 {
            let mut cut = 300;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        format!("expected {:?}, got {}: {message}", variant.expect, err.code)
    });
    (err.code, problem)
}

/// Sends the whole matrix through `transport` after the documented walk-through, and checks
/// that every variant is refused as it should be, that nothing is appended and that the
/// services still serve.
async fn run_matrix<T: Transport, L: EventLog>(transport: &T, log: &L, name: &str) {
    // The walk-through of docs/api.md, so that the persons, the case and the review exist.
    for example in examples() {
        let kind = CommandKind::ALL
            .iter()
            .find(|k| k.name() == example.command)
            .unwrap();
        let raw = transport
            .request(
                &docket_bus::subject(*kind),
                request_headers(&example.actor, ContentType::Json.as_str()),
                Bytes::from(example.body.clone()),
            )
            .await
            .unwrap();
        let reply: Value = serde_json::from_slice(&raw.body).unwrap();
        let failed = raw.headers.get(headers::STATUS) == Some(headers::STATUS_ERROR);
        check_reply_except_positions(&example, failed, &reply);
    }
    // Let the reactions settle: the head must be still before the matrix starts.
    let mut head = log.head().await.unwrap();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = log.head().await.unwrap();
        if now == head {
            break;
        }
        head = now;
    }

    let known = documented_codes();
    let matrix = matrix();
    let mut failures = Vec::new();
    let mut codes_seen: BTreeMap<String, usize> = BTreeMap::new();
    let (mut json_total, mut postcard_total, mut skipped_total) = (0, 0, 0);
    let mut known_seen = 0;
    let started = std::time::Instant::now();
    for (start, json, postcard, skipped) in &matrix.commands {
        let subject = docket_bus::subject(start.kind);
        for variant in json.iter().chain(postcard) {
            let sent = tokio::time::timeout(
                Duration::from_secs(20),
                transport.request(
                    &subject,
                    request_headers(&start.example.actor, variant.content_type.as_str()),
                    Bytes::from(variant.body.clone()),
                ),
            )
            .await;
            let (code, problem) = match sent {
                Ok(reply) => judge(variant, reply, &known),
                Err(_) => ("hang".into(), Some("no reply within 20 s".into())),
            };
            *codes_seen.entry(code).or_default() += 1;
            let known = known_issue(start.kind, &variant.label);
            match (problem, known) {
                (Some(problem), None) => failures.push(format!(
                    "{} [{}] {}: {problem}",
                    start.kind,
                    variant.content_type.as_str(),
                    variant.label
                )),
                (Some(problem), Some(_)) => {
                    known_seen += 1;
                    println!(
                        "BAD_INPUT {name} KNOWN ISSUE {} [{}] {}: {problem}",
                        start.kind,
                        variant.content_type.as_str(),
                        variant.label
                    );
                }
                (None, Some(why)) => failures.push(format!(
                    "{} [{}] {}: answered right: the known issue is fixed, remove it from \
                     KNOWN_ISSUES ({why})",
                    start.kind,
                    variant.content_type.as_str(),
                    variant.label
                )),
                (None, None) => {}
            }
        }
        let now = log.head().await.unwrap();
        if now != head {
            failures.push(format!(
                "{}: the log moved from {head} to {now} during its variants",
                start.kind
            ));
            head = now;
        }
        println!(
            "BAD_INPUT {name} {}: json variants={} postcard variants={} skipped (valid bodies)={}",
            start.kind,
            json.len(),
            postcard.len(),
            skipped
        );
        json_total += json.len();
        postcard_total += postcard.len();
        skipped_total += skipped;
    }
    println!(
        "BAD_INPUT {name} total: commands={} json variants={json_total} postcard variants={postcard_total} skipped={skipped_total} known issues={known_seen} in {:.1?} codes={codes_seen:?}",
        matrix.commands.len(),
        started.elapsed(),
    );
    // Nothing appended, and a valid command still succeeds.
    assert_eq!(log.head().await.unwrap(), head, "nothing appended");
    let fresh =
        r#"{"person": "00000000-0000-0000-0000-0000000000aa", "office": "SEA", "role": "officer"}"#;
    let raw = transport
        .request(
            &docket_bus::subject(CommandKind::OfficerRegister),
            request_headers(
                "00000000-0000-0000-0000-00000000000a/field_office_director",
                ContentType::Json.as_str(),
            ),
            Bytes::from_static(fresh.as_bytes()),
        )
        .await
        .unwrap();
    let reply = raw.into_result().expect("a valid command after the matrix");
    assert_eq!(reply.position, head + 1, "{reply:?}");
    assert_eq!(log.head().await.unwrap(), head + 1);
    if !failures.is_empty() {
        panic!(
            "{} of {} bad requests were not answered as they should be:\n{}",
            failures.len(),
            json_total + postcard_total,
            failures.join("\n")
        );
    }
}

fn clock() -> SharedClock {
    Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2024, 3, 5, 15, 0, 0).unwrap(),
    ))
}

/// The matrix against the decoder alone: what must not read does not (`bad_request`), what must
/// read does (the domain then refuses it); oversized bodies are the transport's business.
#[test]
fn the_bad_input_matrix_is_refused_by_the_decoder() {
    let matrix = matrix();
    let mut failures = Vec::new();
    let mut total = 0;
    for (start, json, postcard, _) in &matrix.commands {
        for variant in json.iter().chain(postcard) {
            total += 1;
            let decoded = decode_command(start.kind, variant.content_type, &variant.body);
            let problem = match (variant.expect, &decoded) {
                (Expect::TooLarge, _) => None,
                (Expect::BadRequest, Err(e)) if e.code == codes::BAD_REQUEST => None,
                (Expect::Refused, Ok(_)) => None,
                (_, Ok(command)) => Some(format!("decoded as {command:?}")),
                (_, Err(e)) => Some(format!("{}: {}", e.code, e.message)),
            };
            if let Some(problem) = problem {
                let mut problem = problem;
                if problem.len() > 300 {
                    let mut cut = 300;
                    while !problem.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    problem.truncate(cut);
                }
                failures.push(format!(
                    "{} [{}] {} (expected {:?}): {problem}",
                    start.kind,
                    variant.content_type.as_str(),
                    variant.label,
                    variant.expect
                ));
            }
        }
    }
    println!(
        "BAD_INPUT decoder: {total} variants, {} wrong",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} variants:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_in_process_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = FileLog::open(FileLogConfig::new(dir.path())).await.unwrap();
    let bus = LocalBus::new();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let checkpoints = docket_log::AnyCheckpoints::File(log.checkpoints().unwrap());
    let background = docket_node::register_local(
        &bus,
        &docket_node::COMMAND_SERVICES,
        executor(log.clone()).await,
        checkpoints,
        None,
        crate::keys::verifier(),
        clock(),
        stopped,
    );
    run_matrix(&bus, &log, "local").await;
    stop.send(true).unwrap();
    background.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_over_nats_and_nothing_is_appended() {
    let server = tokio::task::spawn_blocking(docket_testkit::NatsServer::start)
        .await
        .unwrap();
    let clock = clock();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for service in docket_node::COMMAND_SERVICES {
        let client = docket_bus::connect(&server.url(), &format!("bad-input-{service}"))
            .await
            .unwrap();
        let log = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
            .await
            .unwrap();
        let checkpoints =
            docket_log::AnyCheckpoints::Kv(Box::new(log.checkpoints().await.unwrap()));
        tasks.push(tokio::spawn(docket_node::run_nats(
            service,
            client,
            executor(log).await,
            checkpoints,
            None,
            crate::keys::verifier(),
            clock.clone(),
            stopped.clone(),
        )));
    }
    let client = docket_bus::connect(&server.url(), "bad-input-client")
        .await
        .unwrap();
    crate::wait_for_ping(&client).await;
    let log = JetStreamLog::connect_url(&server.url(), JetStreamConfig::default())
        .await
        .unwrap();
    run_matrix(&NatsTransport::new(client.clone()), &log, "nats").await;
    // Every service still answers the micro service API.
    crate::wait_for_ping(&client).await;
    stop.send(true).unwrap();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
}
