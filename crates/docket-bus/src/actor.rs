//! Who is acting, and which attempt this is: the one place that reads `Docket-Actor` and
//! `Docket-Idempotency-Key` from a request.
//!
//! Today `Docket-Actor` carries `<person uuid>/<role code>` as the caller claims it; NATS
//! permissions decide which callers may publish commands at all. Signed actor tokens (issue 7)
//! replace the header's content, not its place: [`authenticate`] is its only reader, so only
//! this file changes.

use docket_domain::values::PersonId;
use docket_domain::{Actor, Role};
use serde_json::json;

use crate::error::{codes, BusError};
use crate::headers::{self, Headers};

/// Longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

/// The `Docket-Actor` value for an actor: `<person uuid>/<role code>`.
pub fn actor_header(actor: &Actor) -> String {
    format!("{}/{}", actor.person, actor.role.code())
}

/// Reads who is acting from the request headers: `missing_actor` without a `Docket-Actor`
/// header, `bad_actor` (with `details.part` naming what is wrong) when it is malformed or
/// given twice.
pub fn authenticate(headers: &Headers) -> Result<Actor, BusError> {
    let mut values = headers.get_all(headers::ACTOR);
    let Some(value) = values.next() else {
        return Err(BusError::new(
            codes::MISSING_ACTOR,
            format!(
                "the {} header is required: <person uuid>/<role>",
                headers::ACTOR
            ),
        )
        .with_details(json!({ "header": headers::ACTOR })));
    };
    if values.next().is_some() {
        return Err(bad_actor("header", "given more than once"));
    }
    let Some((person, role)) = value.trim().split_once('/') else {
        return Err(bad_actor(
            "header",
            format!("{value:?}: expected <person uuid>/<role>"),
        ));
    };
    let person = PersonId::parse(person).map_err(|e| bad_actor("person", e.problem))?;
    let role = Role::parse(role).map_err(|e| bad_actor("role", e.problem))?;
    Ok(Actor { person, role })
}

fn bad_actor(part: &str, problem: impl Into<String>) -> BusError {
    let problem = problem.into();
    BusError::new(
        codes::BAD_ACTOR,
        format!("bad {} header ({part}): {problem}", headers::ACTOR),
    )
    .with_details(json!({ "header": headers::ACTOR, "part": part, "problem": problem }))
}

/// Reads the optional idempotency key: 1 to 128 printable ASCII characters (`!` to `~`, no
/// spaces); anything else is a `bad_request`.
pub fn idempotency_key(headers: &Headers) -> Result<Option<String>, BusError> {
    let mut values = headers.get_all(headers::IDEMPOTENCY_KEY);
    let Some(key) = values.next() else {
        return Ok(None);
    };
    let problem = if values.next().is_some() {
        Some("given more than once")
    } else if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        Some("must be 1 to 128 characters long")
    } else if !key.bytes().all(|b| b.is_ascii_graphic()) {
        Some("must be printable ASCII without spaces")
    } else {
        None
    };
    match problem {
        None => Ok(Some(key.to_owned())),
        Some(problem) => Err(BusError::bad_request(format!(
            "bad {} header: {problem}",
            headers::IDEMPOTENCY_KEY
        ))
        .with_details(json!({ "header": headers::IDEMPOTENCY_KEY, "problem": problem }))),
    }
}

/// Reads the optional causal position ([`headers::AFTER`]): one decimal number from 1 up;
/// anything else is a `bad_request`.
pub fn after(headers: &Headers) -> Result<Option<u64>, BusError> {
    let mut values = headers.get_all(headers::AFTER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let problem = if values.next().is_some() {
        "given more than once"
    } else {
        match value.trim().parse::<u64>() {
            Ok(position) if position > 0 => return Ok(Some(position)),
            _ => "must be a log position: a whole number from 1 up",
        }
    };
    Err(
        BusError::bad_request(format!("bad {} header: {problem}", headers::AFTER))
            .with_details(json!({ "header": headers::AFTER, "problem": problem })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERSON: &str = "8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a9c11";

    fn with_actor(value: &str) -> Headers {
        Headers::new().with(headers::ACTOR, value)
    }

    #[test]
    fn the_actor_header_round_trips() {
        let actor = authenticate(&with_actor(&format!("{PERSON}/officer"))).unwrap();
        assert_eq!(actor.role, Role::Officer);
        assert_eq!(actor.person.to_string(), PERSON);
        assert_eq!(
            authenticate(&with_actor(&actor_header(&actor))).unwrap(),
            actor
        );
    }

    #[test]
    fn a_missing_or_malformed_actor_is_refused_with_the_part_named() {
        assert_eq!(
            authenticate(&Headers::new()).unwrap_err().code,
            codes::MISSING_ACTOR
        );
        for (value, part) in [
            ("officer", "header"),
            ("", "header"),
            ("not-a-uuid/officer", "person"),
            (&format!("{PERSON}/emperor"), "role"),
            (&format!("{PERSON}/"), "role"),
        ] {
            let err = authenticate(&with_actor(value)).unwrap_err();
            assert_eq!(err.code, codes::BAD_ACTOR, "{value}");
            assert_eq!(err.details["part"], part, "{value}");
        }
        let mut twice = with_actor(&format!("{PERSON}/officer"));
        twice.append(headers::ACTOR, format!("{PERSON}/supervisor"));
        assert_eq!(authenticate(&twice).unwrap_err().code, codes::BAD_ACTOR);
    }

    #[test]
    fn causal_positions_are_checked() {
        assert_eq!(after(&Headers::new()).unwrap(), None);
        let ok = Headers::new().with(headers::AFTER, "42");
        assert_eq!(after(&ok).unwrap(), Some(42));
        for bad in ["0", "-1", "x", "", "1.5", "99999999999999999999999"] {
            let h = Headers::new().with(headers::AFTER, bad);
            assert_eq!(after(&h).unwrap_err().code, codes::BAD_REQUEST, "{bad:?}");
        }
        let twice = Headers::new()
            .with(headers::AFTER, "1")
            .tap_append(headers::AFTER, "2");
        assert_eq!(after(&twice).unwrap_err().code, codes::BAD_REQUEST);
    }

    trait TapAppend {
        fn tap_append(self, name: &str, value: &str) -> Self;
    }

    impl TapAppend for Headers {
        fn tap_append(mut self, name: &str, value: &str) -> Self {
            self.append(name, value);
            self
        }
    }

    #[test]
    fn idempotency_keys_are_checked() {
        assert_eq!(idempotency_key(&Headers::new()).unwrap(), None);
        let ok = Headers::new().with(headers::IDEMPOTENCY_KEY, "order-42:attempt");
        assert_eq!(
            idempotency_key(&ok).unwrap().as_deref(),
            Some("order-42:attempt")
        );
        let long = "k".repeat(MAX_IDEMPOTENCY_KEY + 1);
        for bad in ["", "has space", "caf\u{e9}", long.as_str()] {
            let h = Headers::new().with(headers::IDEMPOTENCY_KEY, bad);
            assert_eq!(
                idempotency_key(&h).unwrap_err().code,
                codes::BAD_REQUEST,
                "{bad}"
            );
        }
        let max = "k".repeat(MAX_IDEMPOTENCY_KEY);
        let h = Headers::new().with(headers::IDEMPOTENCY_KEY, max.as_str());
        assert!(idempotency_key(&h).is_ok());
    }
}
