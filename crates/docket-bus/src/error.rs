//! The structured error every Docket reply can carry, `{code, message, details}`, its stable codes
//! and numeric classes, and the mapping from the domain's rejections. Executor and log failures get their code from
//! `docket_runtime::ExecError::code`, the one table.

use std::fmt;

use docket_domain::Rejection;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Value};

/// The stable error codes of the bus. Besides these, every domain rule code
/// ([`Rejection::code`], e.g. `whole_record_not_attested`) passes through as it is.
pub mod codes {
    /// The body could not be read as the command (syntax, shape, types, missing or unknown
    /// fields, a value its type refuses); `details` say where. Also: a bad idempotency key.
    pub const BAD_REQUEST: &str = "bad_request";
    /// The `Content-Type` header names neither JSON nor postcard.
    pub const UNSUPPORTED_CONTENT_TYPE: &str = "unsupported_content_type";
    /// The subject names no command of the catalogue.
    pub const UNKNOWN_COMMAND: &str = "unknown_command";
    /// No `Docket-Actor` header.
    pub const MISSING_ACTOR: &str = "missing_actor";
    /// The `Docket-Actor` header is malformed or unsigned; `details` name the part.
    pub const BAD_ACTOR: &str = "bad_actor";
    /// The actor token does not verify: unknown key, altered or forged, expired or issued in the
    /// future; `details.reason` says which.
    pub const UNAUTHENTICATED: &str = "unauthenticated";
    /// The actor's role may not issue the command.
    pub const FORBIDDEN: &str = "forbidden";
    /// The domain refused a malformed field (blank text, an unknown factor …).
    pub const INVALID: &str = "invalid";
    /// The command does not fit the aggregate's state.
    pub const INVALID_STATE: &str = "invalid_state";
    /// Concurrent writers kept winning: the command was not applied, even after retries.
    pub const CONFLICT: &str = "conflict";
    /// Nobody could serve the command now (no responder, timeout, log down); retry later.
    pub const UNAVAILABLE: &str = "unavailable";
    /// The body is larger than [`crate::MAX_BODY_BYTES`], or the commit would be too large.
    pub const TOO_LARGE: &str = "too_large";
    /// A bug or a broken invariant on the serving side.
    pub const INTERNAL: &str = "internal";

    /// Every code above.
    pub const ALL: &[&str] = &[
        BAD_REQUEST,
        UNSUPPORTED_CONTENT_TYPE,
        UNKNOWN_COMMAND,
        MISSING_ACTOR,
        BAD_ACTOR,
        UNAUTHENTICATED,
        FORBIDDEN,
        INVALID,
        INVALID_STATE,
        CONFLICT,
        UNAVAILABLE,
        TOO_LARGE,
        INTERNAL,
    ];
}

/// A structured error: a stable snake_case `code` to branch on, a `message` for people, and
/// `details` (a JSON object, `{}` when there is nothing to add).
///
/// JSON form: `{"code": …, "message": …, "details": {…}}`. Postcard form: the same three fields
/// in that order, `details` as a string holding its JSON text, because postcard is not
/// self-describing and cannot carry arbitrary JSON.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct BusError {
    /// Stable code, see [`codes`] and the domain's rule codes.
    pub code: String,
    /// What happened, for a person.
    pub message: String,
    /// Machine-readable particulars; a JSON object.
    pub details: Value,
}

impl BusError {
    /// An error with empty details.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        BusError {
            code: code.into(),
            message: message.into(),
            details: Value::Object(Default::default()),
        }
    }

    /// The same error with these details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// A `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        BusError::new(codes::BAD_REQUEST, message)
    }

    /// An `unavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        BusError::new(codes::UNAVAILABLE, message)
    }

    /// An `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        BusError::new(codes::INTERNAL, message)
    }

    /// The answer when no instance of the owning service is there to take a command.
    pub fn no_responders(subject: &str) -> Self {
        BusError::unavailable(format!("no service is answering {subject}"))
            .with_details(json!({ "subject": subject, "reason": "no_responders" }))
    }

    /// The answer for a subject outside the catalogue.
    pub fn unknown_command(subject: &str) -> Self {
        BusError::new(
            codes::UNKNOWN_COMMAND,
            format!("{subject:?} names no docket command"),
        )
        .with_details(json!({ "subject": subject }))
    }

    /// The numeric class carried in `Nats-Service-Error-Code`: 400 for a request the client
    /// must fix, 403 forbidden, 409 a conflict or a rule of the domain (including
    /// `invalid_state`), 503 unavailable (retry), 500 internal.
    pub fn status(&self) -> u16 {
        status_of(&self.code)
    }

    /// True if sending the same command again (with the same idempotency key) may succeed.
    pub fn is_retryable(&self) -> bool {
        self.code == codes::UNAVAILABLE || self.code == codes::CONFLICT
    }
}

/// The numeric class of a code, see [`BusError::status`].
fn status_of(code: &str) -> u16 {
    match code {
        codes::BAD_REQUEST
        | codes::UNSUPPORTED_CONTENT_TYPE
        | codes::UNKNOWN_COMMAND
        | codes::MISSING_ACTOR
        | codes::BAD_ACTOR
        | codes::INVALID
        | codes::TOO_LARGE => 400,
        codes::UNAUTHENTICATED => 401,
        codes::FORBIDDEN => 403,
        codes::UNAVAILABLE => 503,
        codes::INTERNAL => 500,
        // conflict, invalid_state and every rule code of the domain.
        _ => 409,
    }
}

/// Longest message or detail text a refusal carries: a refused value is quoted, and a value can
/// be as large as a body, so an unbounded echo could make a reply larger than NATS carries.
pub const MAX_ERROR_TEXT: usize = 1024;

/// `text` cut to [`MAX_ERROR_TEXT`] bytes (on a character boundary), saying how much was cut.
fn bounded(text: String) -> String {
    if text.len() <= MAX_ERROR_TEXT {
        return text;
    }
    let mut end = MAX_ERROR_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &text[..end], text.len())
}

impl From<Rejection> for BusError {
    fn from(rejection: Rejection) -> Self {
        let details = match &rejection {
            Rejection::Forbidden { role, command } => {
                json!({ "role": role.code(), "command": command.name() })
            }
            Rejection::Invalid(invalid) => {
                json!({ "field": invalid.field, "problem": bounded(invalid.problem.clone()) })
            }
            Rejection::State(_) | Rejection::Rule { .. } => json!({}),
        };
        BusError::new(rejection.code(), bounded(rejection.to_string())).with_details(details)
    }
}

impl Serialize for BusError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let human = s.is_human_readable();
        let mut st = s.serialize_struct("BusError", 3)?;
        st.serialize_field("code", &self.code)?;
        st.serialize_field("message", &self.message)?;
        if human {
            st.serialize_field("details", &self.details)?;
        } else {
            st.serialize_field("details", &self.details.to_string())?;
        }
        st.end()
    }
}

impl<'de> Deserialize<'de> for BusError {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let human = d.is_human_readable();
        d.deserialize_struct(
            "BusError",
            &["code", "message", "details"],
            BusErrorVisitor { human },
        )
    }
}

struct BusErrorVisitor {
    human: bool,
}

impl BusErrorVisitor {
    fn details<E: de::Error>(
        &self,
        text: Option<String>,
        value: Option<Value>,
    ) -> Result<Value, E> {
        match (text, value) {
            (Some(text), _) => serde_json::from_str(&text)
                .map_err(|e| E::custom(format!("details is not JSON: {e}"))),
            (None, Some(value)) => Ok(value),
            (None, None) => Ok(Value::Object(Default::default())),
        }
    }
}

impl<'de> Visitor<'de> for BusErrorVisitor {
    type Value = BusError;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a docket error {code, message, details}")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BusError, A::Error> {
        let code: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let message: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let details = if self.human {
            let value: Option<Value> = seq.next_element()?;
            self.details(None, value)?
        } else {
            let text: String = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(2, &self))?;
            self.details(Some(text), None)?
        };
        Ok(BusError {
            code,
            message,
            details,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BusError, A::Error> {
        let (mut code, mut message, mut details) = (None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "code" => code = Some(map.next_value::<String>()?),
                "message" => message = Some(map.next_value::<String>()?),
                "details" => details = Some(map.next_value::<Value>()?),
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(BusError {
            code: code.ok_or_else(|| de::Error::missing_field("code"))?,
            message: message.ok_or_else(|| de::Error::missing_field("message"))?,
            details: self.details(None, details)?,
        })
    }
}
