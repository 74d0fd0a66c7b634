//! Who is acting, and which attempt this is: the one place that reads `Docket-Actor` and
//! `Docket-Idempotency-Key` from a request.
//!
//! `Docket-Actor` carries a signed actor token ([`crate::token`]): the person, the role they act
//! in and an expiry, signed with the deployment's actor-token key. [`authenticate`] is its only
//! reader: an unsigned `<person uuid>/<role>` claim, a token signed by a key the service does not
//! hold, an altered or forged one, and an expired one are all refused before the body is read.
//! Whether the role may issue the command is the domain's permission table's to say.

use docket_domain::values::PersonId;
use docket_domain::{Actor, Role};
use serde_json::json;

use crate::error::{codes, BusError};
use crate::headers::{self, Headers};
use crate::token::{TokenError, TokenIssuer, TokenVerifier};

/// Longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;

/// The unsigned `<person uuid>/<role code>` form of an actor: how people and tools name an
/// actor, and what [`TokenIssuer`] turns into a token. Services refuse it as a header.
pub fn actor_claim(actor: &Actor) -> String {
    format!("{}/{}", actor.person, actor.role.code())
}

/// Parses the `<person uuid>/<role code>` form.
pub fn parse_claim(value: &str) -> Result<Actor, BusError> {
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

/// The `Docket-Actor` value for `actor`: a token from `issuer`, valid for five minutes.
pub fn actor_header(issuer: &TokenIssuer, actor: &Actor) -> String {
    issuer.for_request(actor)
}

/// Reads who is acting from the request headers, verifying the token with `verifier` at `now`
/// (unix seconds): `missing_actor` without a `Docket-Actor` header; `bad_actor` (with
/// `details.part`) when it is given twice, malformed, or an unsigned `<uuid>/<role>` claim;
/// `unauthenticated` (with `details.reason`) when the token does not verify.
pub fn authenticate(
    headers: &Headers,
    verifier: &TokenVerifier,
    now: i64,
) -> Result<Actor, BusError> {
    let mut values = headers.get_all(headers::ACTOR);
    let Some(value) = values.next() else {
        return Err(BusError::new(
            codes::MISSING_ACTOR,
            format!(
                "the {} header is required: a signed actor token (`docket token issue`)",
                headers::ACTOR
            ),
        )
        .with_details(json!({ "header": headers::ACTOR })));
    };
    if values.next().is_some() {
        return Err(bad_actor("header", "given more than once"));
    }
    let value = value.trim();
    if !value.starts_with("v1.") {
        let unsigned = parse_claim(value).is_ok();
        return Err(bad_actor(
            "token",
            if unsigned {
                "an unsigned <person uuid>/<role> claim is not accepted: send a signed actor token (`docket token issue`, or `docket send --as` with the actor-token key)".to_owned()
            } else {
                "not a signed actor token (v1.<kid>.<claims>.<signature>)".to_owned()
            },
        ));
    }
    verifier.verify(value, now).map_err(|e| match e {
        TokenError::Malformed(problem) => bad_actor("token", problem),
        other => BusError::new(
            codes::UNAUTHENTICATED,
            format!("the actor token is refused: {other}"),
        )
        .with_details(json!({ "header": headers::ACTOR, "reason": other.kind() })),
    })
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

    fn keys() -> (TokenIssuer, TokenVerifier) {
        let (skey, vkey) = crate::token::generate_key();
        (
            TokenIssuer::new(&skey).unwrap(),
            TokenVerifier::new(&[vkey]).unwrap(),
        )
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_signed_token_names_the_actor() {
        let (issuer, verifier) = keys();
        let actor = parse_claim(&format!("{PERSON}/officer")).unwrap();
        assert_eq!(actor.role, Role::Officer);
        assert_eq!(actor.person.to_string(), PERSON);
        assert_eq!(actor_claim(&actor), format!("{PERSON}/officer"));
        let token = issuer.issue(&actor, NOW, 60);
        assert_eq!(
            authenticate(&with_actor(&token), &verifier, NOW + 1).unwrap(),
            actor
        );
    }

    #[test]
    fn unsigned_expired_forged_and_foreign_tokens_are_refused() {
        let (issuer, verifier) = keys();
        let actor = parse_claim(&format!("{PERSON}/officer")).unwrap();
        assert_eq!(
            authenticate(&Headers::new(), &verifier, NOW)
                .unwrap_err()
                .code,
            codes::MISSING_ACTOR
        );
        // The unsigned claim that was once enough.
        let err =
            authenticate(&with_actor(&format!("{PERSON}/officer")), &verifier, NOW).unwrap_err();
        assert_eq!(
            (err.code.as_str(), &err.details["part"]),
            (codes::BAD_ACTOR, &json!("token"))
        );
        assert!(err.message.contains("unsigned"), "{}", err.message);
        for garbage in ["", "officer", "v1.x", "v1.a.b.c"] {
            let err = authenticate(&with_actor(garbage), &verifier, NOW).unwrap_err();
            assert!(
                err.code == codes::BAD_ACTOR || err.code == codes::UNAUTHENTICATED,
                "{garbage}: {err:?}"
            );
        }
        let token = issuer.issue(&actor, NOW, 60);
        let expired = authenticate(&with_actor(&token), &verifier, NOW + 60).unwrap_err();
        assert_eq!(expired.code, codes::UNAUTHENTICATED);
        assert_eq!(expired.details["reason"], "expired");
        let (other, _) = keys();
        let foreign =
            authenticate(&with_actor(&other.issue(&actor, NOW, 60)), &verifier, NOW).unwrap_err();
        assert_eq!(foreign.details["reason"], "unknown_key");
        let mut forged = token.clone();
        forged.replace_range(forged.len() - 3.., "AAA");
        let forged = authenticate(&with_actor(&forged), &verifier, NOW).unwrap_err();
        assert_eq!(forged.code, codes::UNAUTHENTICATED);
        let mut twice = with_actor(&token);
        twice.append(headers::ACTOR, token.clone());
        assert_eq!(
            authenticate(&twice, &verifier, NOW).unwrap_err().code,
            codes::BAD_ACTOR
        );
        for (value, part) in [
            ("officer", "header"),
            ("not-a-uuid/officer", "person"),
            (&format!("{PERSON}/emperor"), "role"),
        ] {
            let err = parse_claim(value).unwrap_err();
            assert_eq!(err.details["part"], part, "{value}");
        }
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
