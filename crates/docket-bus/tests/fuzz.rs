//! Fuzzing the command decoders (issue 7): `decode_command` for every command, in JSON and in
//! postcard, fed arbitrary bytes, token soup, and valid bodies mutated at the byte level (flips,
//! truncations, insertions, deletions, duplicated ranges, varint continuation bytes) and, for
//! JSON, at the value level (fields deleted, unknown fields inserted, values replaced by values
//! of every type: huge and negative numbers, unicode, control characters, nesting).
//!
//! The property, for every input: `decode_command` does not panic, and either
//!
//! - it decodes a command of the kind asked for, which encodes again in both encodings and
//!   decodes back to the same command, and whose JSON form has every field the body had (no
//!   field of the body, at any depth, was silently dropped; no field given twice); or
//! - it returns a `bad_request` whose `details` say which content type and why, whose message
//!   is bounded, and which travels as a reply in both encodings unchanged.
//!
//! The inputs are `proptest` strategies: odd JSON values and strings, and mutations as values
//! ([`ValueMutation`], [`ByteMutation`]) applied to the sample commands' bodies. Each target
//! runs from a fixed seed, so every run (and CI) checks the same cases (`PROPTEST_RNG_SEED` and
//! `PROPTEST_CASES` explore others); a failing input is shrunk, and its seed is saved in
//! `proptest-regressions/fuzz.txt`, which every later run replays first. Each failure found is
//! also kept below as a named regression test with its exact bytes.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use docket_bus::{
    codes, decode_command, encode_command, BusError, ContentType, DomainCommand, RawReply,
};
use docket_domain::CommandKind;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{FileFailurePersistence, RngSeed, TestCaseError};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Map, Value};

use crate::samples;

/// Cases per random target.
const CASES: u32 = 5_000;

/// The longest error message a decoding failure may carry, in bytes.
const MAX_MESSAGE: usize = 2_048;

/// The configuration of a target: `cases` cases from a fixed `seed` unless the environment asks
/// for others, failures persisted beside the crate's tests.
fn config(cases: u32, seed: u64) -> ProptestConfig {
    let default = ProptestConfig::default();
    ProptestConfig {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            default.cases
        } else {
            cases
        },
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            default.rng_seed
        } else {
            RngSeed::Fixed(seed)
        },
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fuzz.txt",
        ))),
        ..default
    }
}

fn unhex(text: &str) -> Vec<u8> {
    let text: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    hex::decode(text).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The property.

/// What one input came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Decoded,
    Refused,
}

/// True if some JSON object in `body` has a key twice.
fn has_duplicate_keys(body: &[u8]) -> bool {
    struct Dups(bool);
    struct Walk<'a>(&'a mut bool);
    impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut keys = BTreeSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !keys.insert(key) {
                    *self.0 = true;
                }
                map.next_value_seed(Walk(&mut *self.0))?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Walk(&mut *self.0))?.is_some() {}
            Ok(())
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
    }
    impl<'de> Deserialize<'de> for Dups {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let mut found = false;
            serde::de::DeserializeSeed::deserialize(Walk(&mut found), d)?;
            Ok(Dups(found))
        }
    }
    serde_json::from_slice::<Dups>(body).is_ok_and(|d| d.0)
}

/// Where `given` (the body) has a field or a shape that `decoded` (the decoded command's JSON
/// fields) lacks: a field dropped without a word, or an object given as something else.
fn dropped(given: &Value, decoded: &Value, path: &str, out: &mut Vec<String>) {
    match (given, decoded) {
        (Value::Object(g), Value::Object(d)) => {
            for (k, v) in g {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match d.get(k) {
                    Some(dv) => dropped(v, dv, &p, out),
                    None => out.push(p),
                }
            }
        }
        (Value::Array(g), Value::Array(d)) => {
            for (i, (gv, dv)) in g.iter().zip(d).enumerate() {
                dropped(gv, dv, &format!("{path}[{i}]"), out);
            }
        }
        (other, Value::Object(_)) => out.push(format!("{path} (an object given as {other})")),
        _ => {}
    }
}

/// The JSON body of `command`, as a value.
fn json_of(command: &DomainCommand) -> Value {
    let (_, body) = encode_command(command, ContentType::Json).expect("a decoded command encodes");
    serde_json::from_slice(&body).expect("JSON")
}

/// Checks the property for one input; `Err` says how it is broken.
fn check(kind: CommandKind, ct: ContentType, body: &[u8]) -> Result<Outcome, String> {
    let decoded = catch_unwind(AssertUnwindSafe(|| decode_command(kind, ct, body)))
        .map_err(|_| "decode_command panicked".to_owned())?;
    match decoded {
        Ok(command) => {
            if command.kind() != kind {
                return Err(format!("decoded as {}", command.kind()));
            }
            for other in [ContentType::Json, ContentType::Postcard] {
                let (k, again) = encode_command(&command, other)
                    .map_err(|e| format!("decoded {command:?} does not encode: {e}"))?;
                if k != kind {
                    return Err(format!("re-encoded as {k}"));
                }
                let back = decode_command(kind, other, &again)
                    .map_err(|e| format!("re-encoded {command:?} does not decode: {e}"))?;
                if back != command {
                    return Err(format!("round trip changed {command:?} into {back:?}"));
                }
            }
            if ct == ContentType::Json {
                let given: Value =
                    serde_json::from_slice(body).map_err(|e| format!("accepted non-JSON: {e}"))?;
                let mut lost = Vec::new();
                dropped(&given, &json_of(&command), "", &mut lost);
                if !lost.is_empty() {
                    return Err(format!("accepted with fields dropped: {lost:?}"));
                }
                if has_duplicate_keys(body) {
                    return Err("accepted a body with a field given twice".into());
                }
            }
            Ok(Outcome::Decoded)
        }
        Err(err) => {
            check_error(&err, ct)?;
            Ok(Outcome::Refused)
        }
    }
}

fn check_error(err: &BusError, ct: ContentType) -> Result<(), String> {
    if err.code != codes::BAD_REQUEST {
        return Err(format!(
            "refused as {}, not bad_request: {}",
            err.code, err.message
        ));
    }
    if err.message.is_empty() || err.message.len() > MAX_MESSAGE {
        return Err(format!("a message of {} bytes", err.message.len()));
    }
    let details = err.details.as_object().ok_or("details is not an object")?;
    if details.get("content_type") != Some(&json!(ct.as_str())) {
        return Err(format!(
            "details.content_type: {:?}",
            details.get("content_type")
        ));
    }
    if !details.get("reason").is_some_and(Value::is_string) {
        return Err("no details.reason".into());
    }
    if err.details.to_string().len() > 2 * MAX_MESSAGE {
        return Err(format!(
            "details of {} bytes",
            err.details.to_string().len()
        ));
    }
    for reply_ct in [ContentType::Json, ContentType::Postcard] {
        let back = RawReply::from_error(err, reply_ct).into_result();
        if back.as_ref() != Err(err) {
            return Err(format!(
                "the error does not travel in {reply_ct:?}: {back:?}"
            ));
        }
    }
    Ok(())
}

/// The property as a proptest outcome, with the input as hex in the message.
fn check_case(kind: CommandKind, ct: ContentType, body: &[u8]) -> Result<(), TestCaseError> {
    check(kind, ct, body).map(drop).map_err(|why| {
        TestCaseError::fail(format!(
            "{kind} {} ({} bytes): {why}\n  hex: {}",
            ct.as_str(),
            body.len(),
            if body.len() <= 4096 {
                hex::encode(body)
            } else {
                format!("{}…", hex::encode(&body[..4096]))
            }
        ))
    })
}

// ---------------------------------------------------------------------------------------------
// Strategies.

fn content_type() -> impl Strategy<Value = ContentType> {
    select(&[ContentType::Json, ContentType::Postcard][..])
}

/// Now and then (one in eight), another command's kind: the body under another subject.
fn other_kind() -> impl Strategy<Value = Option<CommandKind>> {
    proptest::option::weighted(0.125, select(CommandKind::ALL))
}

/// A sample command's kind, JSON body and postcard body.
type Encoded = (CommandKind, Vec<u8>, Vec<u8>);

/// Every sample command with its two encodings.
fn encoded_samples() -> &'static [Encoded] {
    static SAMPLES: OnceLock<Vec<Encoded>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        samples::all()
            .iter()
            .map(|c| {
                let (kind, json) = encode_command(c, ContentType::Json).unwrap();
                let (_, postcard) = encode_command(c, ContentType::Postcard).unwrap();
                (kind, json.to_vec(), postcard.to_vec())
            })
            .collect()
    })
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e999",
    "-0",
    "18446744073709551616",
    "1.5",
    "\"case\"",
    "\"reason\"",
    "\"a_number\"",
    "\"A012345678\"",
    "\"NYC\"",
    "\"encounter\"",
    "\"8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a0001\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"é\"",
    " ",
    "\n",
];

/// A string worth trying where a string goes.
fn odd_string() -> impl Strategy<Value = String> {
    let pool: &[&str] = &[
        "",
        " ",
        "x",
        "\u{0}",
        "\u{1}\u{7f}",
        "😀",
        "e\u{301}",
        "\u{202e}RTL",
        "\u{feff}",
        "NYC",
        "nyc",
        "A012345678",
        "A12",
        "012345678",
        "A-123-456-789",
        "B123456789",
        "8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a0001",
        "{8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a0001}",
        "urn:uuid:8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a0001",
        "8c0f4f4e2a6b4c1e9d520b4f5e2a0001",
        "2024-03-01",
        "+2024-03-01",
        "-0001-01-01",
        "262143-12-31",
        "2024-02-30",
        "2024-03-05T09:00:00Z",
        "2024-03-05T09:00:00+14:00",
        "2024-03-05T09:00:00.999999999Z",
        "+262143-12-31T23:59:59Z",
        "detain",
        "criminal",
        "officer",
        "family_impact",
        "Family_Impact",
        "sha256:abababababababababababababababababababababababababababababababab",
        "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB",
        "+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a+a",
    ];
    prop_oneof![
        1 => (0..2000usize).prop_map(|n| "\"".repeat(n)),
        1 => (0..2000usize).prop_map(|n| "\u{300}".repeat(n)),
        2 => select(pool).prop_map(str::to_owned),
    ]
}

/// A JSON value of any type; below depth 3, arrays and objects too.
fn odd_value(depth: usize) -> BoxedStrategy<Value> {
    let number = prop_oneof![
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(1e300)),
        Just(json!(-0.0)),
        Just(json!(0.5)),
        Just(json!(0)),
        any::<u32>().prop_map(|n| json!(n)),
    ];
    let scalar = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => number,
        3 => odd_string().prop_map(Value::String),
    ];
    if depth > 2 {
        return scalar.boxed();
    }
    let array = vec(odd_value(depth + 1), 0..4).prop_map(Value::Array);
    let object = vec((odd_string(), odd_value(depth + 1)), 0..4)
        .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>()));
    prop_oneof![6 => scalar, 1 => array, 1 => object].boxed()
}

/// Every path to a value inside `value` (object fields and array elements).
fn paths(value: &Value, at: Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let mut p = at.clone();
                p.push(PathStep::Key(k.clone()));
                out.push(p.clone());
                paths(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let mut p = at.clone();
                p.push(PathStep::Index(i));
                out.push(p.clone());
                paths(v, p, out);
            }
        }
        _ => {}
    }
}

#[derive(Clone, Debug)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn at_mut<'v>(value: &'v mut Value, path: &[PathStep]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |v, step| match step {
        PathStep::Key(k) => v.get_mut(k),
        PathStep::Index(i) => v.get_mut(*i),
    })
}

/// One value-level mutation of a JSON body; paths are picked by index into the body's paths
/// (object fields and array elements) when applied.
#[derive(Clone, Debug)]
enum ValueMutation {
    /// Delete a field or an element.
    Delete(Index),
    /// Insert a field (an unknown one, or a copy of a known name) into the body, or into some
    /// object in it.
    Insert {
        into: Option<Index>,
        name: String,
        value: Value,
    },
    /// Swap the values of two paths.
    Swap(Index, Index),
    /// Replace a value (or, with `None`, the whole body) with a value of any type.
    Replace { at: Option<Index>, value: Value },
}

fn value_mutation() -> impl Strategy<Value = ValueMutation> {
    let name = prop_oneof![
        odd_string(),
        select(&["unexpected", "reasons", "Case", "case ", "protected_aera"][..])
            .prop_map(str::to_owned),
    ];
    prop_oneof![
        1 => any::<Index>().prop_map(ValueMutation::Delete),
        1 => (proptest::option::of(any::<Index>()), name, odd_value(1))
            .prop_map(|(into, name, value)| ValueMutation::Insert { into, name, value }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| ValueMutation::Swap(a, b)),
        2 => (proptest::option::weighted(0.95, any::<Index>()), odd_value(0))
            .prop_map(|(at, value)| ValueMutation::Replace { at, value }),
    ]
}

impl ValueMutation {
    fn apply(&self, value: &mut Value) {
        let mut all = Vec::new();
        paths(value, Vec::new(), &mut all);
        let pick = |i: &Index| all[i.index(all.len())].clone();
        match self {
            ValueMutation::Delete(i) if !all.is_empty() => {
                let path = pick(i);
                let (last, parent) = path.split_last().unwrap();
                if let Some(parent) = at_mut(value, parent) {
                    match (parent, last) {
                        (Value::Object(m), PathStep::Key(k)) => {
                            m.remove(k);
                        }
                        (Value::Array(a), PathStep::Index(i)) if *i < a.len() => {
                            a.remove(*i);
                        }
                        _ => {}
                    }
                }
            }
            ValueMutation::Delete(_) => {}
            ValueMutation::Insert {
                into,
                name,
                value: new,
            } => {
                let objects: Vec<&Vec<PathStep>> = all
                    .iter()
                    .filter(|p| {
                        let mut v = value.clone();
                        at_mut(&mut v, p).is_some_and(|v| v.is_object())
                    })
                    .collect();
                let path = match into {
                    Some(i) if !objects.is_empty() => objects[i.index(objects.len())].clone(),
                    _ => Vec::new(),
                };
                if let Some(Value::Object(m)) = at_mut(value, &path) {
                    m.insert(name.clone(), new.clone());
                }
            }
            ValueMutation::Swap(a, b) if all.len() >= 2 => {
                let (a, b) = (pick(a), pick(b));
                let va = at_mut(value, &a).cloned();
                let vb = at_mut(value, &b).cloned();
                if let (Some(va), Some(vb)) = (va, vb) {
                    if let Some(slot) = at_mut(value, &a) {
                        *slot = vb;
                    }
                    if let Some(slot) = at_mut(value, &b) {
                        *slot = va;
                    }
                }
            }
            ValueMutation::Swap(..) => {}
            ValueMutation::Replace { at, value: new } => match at {
                Some(i) if !all.is_empty() => {
                    if let Some(slot) = at_mut(value, &pick(i)) {
                        *slot = new.clone();
                    }
                }
                _ => *value = new.clone(),
            },
        }
    }
}

/// One byte-level mutation; positions are relative to the body's length when applied.
#[derive(Clone, Debug)]
enum ByteMutation {
    FlipBit(Index, u8),
    /// A byte that means something to the decoder (picked by index among the JSON or the
    /// postcard ones).
    SetInteresting(Index, Index),
    Truncate(Index),
    /// Insert noise, or (in JSON, with a token) a JSON token.
    Insert(Index, Vec<u8>, Option<Index>),
    Delete(Index, usize),
    Duplicate {
        from: Index,
        len: usize,
        to: Index,
    },
    /// A postcard varint continuation byte.
    Continuation(Index, u8),
    Append(Vec<u8>),
    Ones(Index, usize),
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    let at = any::<Index>;
    prop_oneof![
        (at(), 0..8u8).prop_map(|(at, bit)| ByteMutation::FlipBit(at, bit)),
        (at(), at()).prop_map(|(at, byte)| ByteMutation::SetInteresting(at, byte)),
        at().prop_map(ByteMutation::Truncate),
        (
            at(),
            vec(any::<u8>(), 1..=16),
            proptest::option::of(any::<Index>())
        )
            .prop_map(|(at, noise, token)| ByteMutation::Insert(at, noise, token)),
        (at(), 1..=16usize).prop_map(|(at, n)| ByteMutation::Delete(at, n)),
        (at(), 1..=32usize, at()).prop_map(|(from, len, to)| ByteMutation::Duplicate {
            from,
            len,
            to
        }),
        (at(), any::<u8>()).prop_map(|(at, b)| ByteMutation::Continuation(at, b)),
        vec(any::<u8>(), 1..=8).prop_map(ByteMutation::Append),
        (at(), 0..8usize).prop_map(|(at, n)| ByteMutation::Ones(at, n)),
    ]
}

impl ByteMutation {
    fn apply(&self, body: &mut Vec<u8>, json: bool) {
        let len = body.len();
        // A start in 0..=len, and the end of `n` bytes from there.
        let range = |at: &Index, n: usize| {
            let start = at.index(len + 1);
            start..(start + n).min(len).max(start)
        };
        match self {
            ByteMutation::FlipBit(at, bit) if len > 0 => body[at.index(len)] ^= 1 << bit,
            ByteMutation::SetInteresting(at, byte) if len > 0 => {
                let interesting: &[u8] = if json {
                    b"\"{}[],:\\0-e.9 \xff\xc3"
                } else {
                    &[0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, 0x10, 0x20]
                };
                body[at.index(len)] = interesting[byte.index(interesting.len())];
            }
            ByteMutation::FlipBit(..) | ByteMutation::SetInteresting(..) => {}
            ByteMutation::Truncate(at) => body.truncate(at.index(len + 1)),
            ByteMutation::Insert(at, noise, token) => {
                let at = at.index(len + 1);
                let bytes = match token {
                    Some(t) if json => TOKENS[t.index(TOKENS.len())].as_bytes(),
                    _ => noise.as_slice(),
                };
                body.splice(at..at, bytes.iter().copied());
            }
            ByteMutation::Delete(at, n) => {
                body.drain(range(at, *n));
            }
            ByteMutation::Duplicate { from, len: n, to } => {
                let copy = body[range(from, *n)].to_vec();
                let to = to.index(body.len() + 1);
                body.splice(to..to, copy);
            }
            ByteMutation::Continuation(at, b) if !json => body.insert(at.index(len + 1), 0x80 | b),
            ByteMutation::Continuation(..) => {}
            ByteMutation::Append(tail) => body.extend_from_slice(tail),
            ByteMutation::Ones(at, n) => {
                let at = at.index(len + 1);
                body.splice(at..at, std::iter::repeat_n(0xff, *n));
            }
        }
    }
}

/// Arbitrary bytes, or (one in three) token soup, which gets past the JSON tokenizer more often
/// than noise does.
fn arbitrary_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => vec(select(TOKENS), 0..40).prop_map(|tokens| tokens.concat().into_bytes()),
        2 => vec(any::<u8>(), 0..300),
    ]
}

/// A sample's JSON body: as it is (one in three) or after one to three value-level mutations,
/// then (half the time) after one to three byte-level ones.
fn mutated_json() -> impl Strategy<Value = (CommandKind, Vec<u8>)> {
    (
        any::<Index>(),
        proptest::option::weighted(2.0 / 3.0, vec(value_mutation(), 1..=3)),
        proptest::option::of(vec(byte_mutation(), 1..=3)),
        other_kind(),
    )
        .prop_map(|(sample, values, bytes, other)| {
            let samples = encoded_samples();
            let (kind, json, _) = &samples[sample.index(samples.len())];
            let mut body = match values {
                None => json.clone(),
                Some(mutations) => {
                    let mut value: Value = serde_json::from_slice(json).unwrap();
                    for m in &mutations {
                        m.apply(&mut value);
                    }
                    serde_json::to_vec(&value).unwrap()
                }
            };
            for m in bytes.iter().flatten() {
                m.apply(&mut body, true);
            }
            (other.unwrap_or(*kind), body)
        })
}

/// A sample's postcard body after one to four byte-level mutations.
fn mutated_postcard() -> impl Strategy<Value = (CommandKind, Vec<u8>)> {
    (any::<Index>(), vec(byte_mutation(), 1..=4), other_kind()).prop_map(
        |(sample, mutations, other)| {
            let samples = encoded_samples();
            let (kind, _, postcard) = &samples[sample.index(samples.len())];
            let mut body = postcard.clone();
            for m in &mutations {
                m.apply(&mut body, false);
            }
            (other.unwrap_or(*kind), body)
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Targets.

proptest! {
    #![proptest_config(config(CASES, 0xF022_0001))]
    #[test]
    fn fuzz_decoders_with_arbitrary_bytes(
        kind in select(CommandKind::ALL),
        ct in content_type(),
        body in arbitrary_body(),
    ) {
        check_case(kind, ct, &body)?;
    }
}

proptest! {
    #![proptest_config(config(CASES, 0xF022_0002))]
    #[test]
    fn fuzz_decoders_with_mutated_json((kind, body) in mutated_json()) {
        check_case(kind, ContentType::Json, &body)?;
    }
}

proptest! {
    #![proptest_config(config(CASES, 0xF022_0003))]
    #[test]
    fn fuzz_decoders_with_mutated_postcard((kind, body) in mutated_postcard()) {
        check_case(kind, ContentType::Postcard, &body)?;
    }
}

/// Not random: every sample's body, in both encodings, under every command's subject.
#[test]
fn fuzz_decoders_with_every_body_under_every_subject() {
    let mut failures = Vec::new();
    let mut cases = 0;
    for (_, json, postcard) in encoded_samples() {
        for kind in CommandKind::ALL {
            for (ct, body) in [(ContentType::Json, json), (ContentType::Postcard, postcard)] {
                cases += 1;
                if let Err(why) = check_case(*kind, ct, body) {
                    failures.push(why.to_string());
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {cases} inputs break the property:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Regression cases: each input the fuzzers or the bad-input matrix found, with its exact bytes.

fn regression(kind: CommandKind, ct: ContentType, body_hex: &str) -> Outcome {
    let body = unhex(body_hex);
    check(kind, ct, &body).unwrap_or_else(|why| panic!("{kind}: {why}"))
}

/// Found by the bad-input matrix: `u8::from_str_radix` accepts a leading `+`, so 32 times `+a`
/// (64 characters, no 64 hex digits) read as a content hash instead of a `bad_request`.
#[test]
fn regression_a_content_hash_of_plus_signs_is_refused() {
    let body = "7b2263617365223a2238633066346634652d326136622d346331652d396435322d30623466356532613030\
                3031222c227265636f7264223a2238633066346634652d326136622d346331652d396435322d306234663565\
                326130303034222c22736f75726365223a226372696d696e616c222c227265666572656e6365223a224e4349\
                43222c22636f6e74656e745f68617368223a222b612b612b612b612b612b612b612b612b612b612b612b612b\
                612b612b612b612b612b612b612b612b612b612b612b612b612b612b612b612b612b612b612b61227d";
    assert_eq!(
        regression(CommandKind::CaseAttachRecord, ContentType::Json, body),
        Outcome::Refused
    );
}

/// Found by the bad-input matrix and the mutated-JSON target: an unknown field inside
/// `encounter` (here the misspelt optional `protected_aera`) was silently dropped, although
/// `docs/api.md` promises that a misspelt optional field is never dropped.
#[test]
fn regression_an_unknown_field_inside_encounter_is_refused() {
    let body = "7b2263617365223a2238633066346634652d326136622d346331652d396435322d30623466356532613030\
                3031222c22615f6e756d626572223a2241303132333435363738222c226f6666696365223a224e5943222c22\
                656e636f756e746572223a7b226174223a22323032342d30332d30355430393a30303a30305a222c226c6f63\
                6174696f6e223a22517565656e73222c22706c616365223a22696e746572696f72222c226d616e6e65725f6f\
                665f656e747279223a22756e6b6e6f776e222c2270726f7465637465645f61657261223a227363686f6f6c22\
                7d7d";
    assert_eq!(
        regression(CommandKind::CaseOpen, ContentType::Json, body),
        Outcome::Refused
    );
    let err = decode_command(CommandKind::CaseOpen, ContentType::Json, &unhex(body)).unwrap_err();
    assert_eq!(
        err.details["unknown_fields"],
        json!(["encounter.protected_aera"])
    );
}

/// Found by the bad-input matrix: `encounter` given as the array of its values (in declaration
/// order) was read, as serde reads a struct from a sequence; a body's objects are read by
/// field name only.
#[test]
fn regression_encounter_as_an_array_is_refused() {
    let body = "7b2263617365223a2238633066346634652d326136622d346331652d396435322d30623466356532613030\
                3031222c22615f6e756d626572223a2241303132333435363738222c226f6666696365223a224e5943222c22\
                656e636f756e746572223a5b22323032342d30332d30355430393a30303a30305a222c22517565656e73222c\
                22696e746572696f72222c22756e6b6e6f776e222c6e756c6c2c6e756c6c5d7d";
    assert_eq!(
        regression(CommandKind::CaseOpen, ContentType::Json, body),
        Outcome::Refused
    );
}

/// Found by the bad-input matrix: the target field given twice (`case` of `case.close`, first
/// naming another case) was read as the last one, silently; other duplicated fields were
/// already refused.
#[test]
fn regression_a_target_field_given_twice_is_refused() {
    let body = "7b2263617365223a2230303030303030302d303030302d303030302d303030302d303030303030303030\
                306666222c2263617365223a2238633066346634652d326136622d346331652d396435322d306234663565\
                326130303031222c22726561736f6e223a2278227d";
    assert_eq!(
        regression(CommandKind::CaseClose, ContentType::Json, body),
        Outcome::Refused
    );
}

/// Found by the bad-input matrix over NATS: a refused value is echoed in the error (escaped
/// with `{:?}`, then again as JSON, and once more in the `Nats-Service-Error` header), so a
/// 250 KiB `a_number` of `"` or combining characters made an error reply of several MiB, over
/// NATS's 1 MiB payload limit: the service could not send it and the client timed out
/// (`unavailable`) instead of getting `bad_request`. The body: `case.open` whose `a_number` is
/// 100,000 `"` characters.
#[test]
fn regression_a_huge_refused_value_is_not_echoed_whole() {
    for fill in ["\\\"", "\u{300}", "x"] {
        let body = format!(
            r#"{{"case":"8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a0001","a_number":"{}","office":"NYC","encounter":{{"at":"2024-03-05T09:00:00Z","location":"Queens","place":"interior","manner_of_entry":"unknown"}}}}"#,
            fill.repeat(100_000)
        );
        assert_eq!(
            check(CommandKind::CaseOpen, ContentType::Json, body.as_bytes()),
            Ok(Outcome::Refused),
            "{fill}"
        );
    }
    // Nor is a long unknown field name (the mutated-JSON target found one of 2,000 `"`s in
    // `review.request_tier2`, which made 4 KiB of details).
    let body = format!(
        r#"{{"{}":0,"review":"8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a0003","grounds":"x"}}"#,
        "\\\"".repeat(2_000)
    );
    assert_eq!(
        check(
            CommandKind::ReviewRequestTier2,
            ContentType::Json,
            body.as_bytes()
        ),
        Ok(Outcome::Refused)
    );
    // And many unknown fields are not all listed.
    let mut fields: Vec<String> = (0..20_000).map(|i| format!("\"f{i}\":0")).collect();
    fields.push(r#""case":"8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a0001","reason":"x""#.into());
    let body = format!("{{{}}}", fields.join(","));
    assert_eq!(
        check(CommandKind::CaseClose, ContentType::Json, body.as_bytes()),
        Ok(Outcome::Refused)
    );
}

/// Found by the mutated-JSON target (2 of the 49 inputs of this kind it found, the smallest;
/// the fixed-seed target replays all of them): a refused value was echoed whole, escaped, in
/// the error's message and `details.reason` (here `cited_factors` and `office` given as strings
/// of combining characters), so the error grew with the body: 5,081 and 2,185 bytes of message
/// for 1,637 and 2,009 bytes of body (see `regression_a_huge_refused_value_is_not_echoed_whole`
/// for what that does over NATS).
#[test]
fn regression_fuzz_refused_values_are_not_echoed_whole() {
    for (kind, body) in [
        (
            CommandKind::CaseProposeDecision,
            "7b22616374696f6e223a22617272657374222c2263617365223a2238633066346634652d326136622d34\
            6331652d396435322d306234663565326130303031222c2263697465645f666163746f7273223a22cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80222c226465636973696f6e22\
            3a2238633066346634652d326136622d346331652d396435322d306234663565326130303033222c2270\
            726f7465637465645f617265615f657863657074696f6e223a22696d6d696e656e74207269736b206f66\
            206465617468222c22726561736f6e73223a22323032342d30332d30355430393a30303a30305a227d",
        ),
        (
            CommandKind::CaseOpen,
            "7b226361736520223a2238633066346634652d326136622d346331652d396435322d3062346635653261\
            30303636222c226f6666696365223a22cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80222c\
            22706572736f6e223a22574153222c22726f6c65223a2273757065727669736f72227d",
        ),
    ] {
        assert_eq!(regression(kind, ContentType::Json, body), Outcome::Refused);
    }
}

/// Found by the mutated-JSON target (all 3 inputs of this kind): an unknown field inside
/// `encounter` — `\u{202e}RTL`, `pra` (`null`), `unexpected` — was accepted and dropped.
#[test]
fn regression_fuzz_unknown_fields_inside_encounter_are_refused() {
    for (body, field) in [
        (
            "7b22615f6e756d626572223a2241303031323334353637222c2263617365223a2238633066346634652d\
            326136622d346331652d396435322d306234663565326130303031222c22656e636f756e746572223a7b\
            226174223a22323032322d30312d31305430333a30303a30305a222c22656e7472795f64617465223a6e\
            756c6c2c226c6f636174696f6e223a226e6561722053616e746120546572657361222c226d616e6e6572\
            5f6f665f656e747279223a22617474656d7074696e675f756e6c617766756c5f656e747279222c22706c\
            616365223a22626f72646572222c22707261223a6e756c6c7d2c226f6666696365223a22454c50227d",
            "encounter.pra",
        ),
        (
            "7b22615f6e756d626572223a2241303132333435363738222c2263617365223a2238633066346634652d\
            326136622d346331652d396435322d306234663565326130303031222c22656e636f756e746572223a7b\
            226174223a22323032332d30372d30345431343a33303a30305a222c22656e7472795f64617465223a22\
            323031392d30332d3032222c226c6f636174696f6e223a22506f727420417574686f7269747920427573\
            205465726d696e616c2c204e657720596f726b222c226d616e6e65725f6f665f656e747279223a22656e\
            74657265645f756e6c617766756c6c79222c22706c616365223a22696e746572696f72222c22e280ae52\
            544c223a307d2c226f6666696365223a224e5943227d",
            "encounter.\u{202e}RTL",
        ),
        (
            "7b22615f6e756d626572223a2241303031323334353637222c2263617365223a2238633066346634652d\
            326136622d346331652d396435322d306234663565326130303031222c22656e636f756e746572223a7b\
            226174223a22323032322d30312d31305430333a30303a30305a222c22656e7472795f64617465223a6e\
            756c6c2c226c6f636174696f6e223a226e6561722053616e746120546572657361222c226d616e6e6572\
            5f6f665f656e747279223a22617474656d7074696e675f756e6c617766756c5f656e747279222c22706c\
            616365223a22626f72646572222c2270726f7465637465645f61726561223a6e756c6c2c22756e657870\
            6563746564223a22cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80cc80\
            cc80cc80cc80cc80cc80227d2c226f6666696365223a22454c50227d",
            "encounter.unexpected",
        ),
    ] {
        assert_eq!(
            regression(CommandKind::CaseOpen, ContentType::Json, body),
            Outcome::Refused
        );
        let err =
            decode_command(CommandKind::CaseOpen, ContentType::Json, &unhex(body)).unwrap_err();
        assert_eq!(err.details["unknown_fields"], json!([field]));
    }
}
