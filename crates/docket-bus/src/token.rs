//! Signed actor tokens: who is acting, in which role, until when, signed with the deployment's
//! actor-token key (Ed25519). They travel in the `Docket-Actor` header.
//!
//! A token is `v1.<kid>.<claims>.<signature>`: `kid` names the signing key (8 hex digits of the
//! SHA-256 of its public key), `claims` is base64url (no padding) of the JSON
//! `{"sub": <person uuid>, "role": <role code>, "iat": <unix s>, "exp": <unix s>}`, and
//! `signature` is base64url of the Ed25519 signature over the ASCII text `v1.<kid>.<claims>`.
//! A verifier holds one or more public keys (several during a key rotation) and refuses a token
//! that is malformed, signed by a key it does not hold, forged, expired, or issued in the future
//! (beyond [`CLOCK_SKEW_SECS`]).
//!
//! Key files are one line each: `docket-actor-key v1 <kid> <base64 32-byte seed>` (secret) and
//! `docket-actor-vkey v1 <kid> <base64 32-byte public key>`.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use docket_domain::values::PersonId;
use docket_domain::{Actor, Role};
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The token format's version prefix.
pub const VERSION: &str = "v1";

/// How far in the future a token's issue time may be (clocks differ a little).
pub const CLOCK_SKEW_SECS: i64 = 300;

/// The longest lifetime an issuer gives a token.
pub const MAX_TTL_SECS: i64 = 24 * 3600;

const SECRET_TAG: &str = "docket-actor-key";
const PUBLIC_TAG: &str = "docket-actor-vkey";

/// Why a token or a key was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token of this format.
    #[error("not a signed actor token: {0}")]
    Malformed(String),
    /// Signed by a key this verifier does not hold.
    #[error("signed by an unknown key {kid:?}")]
    UnknownKey {
        /// The key id in the token.
        kid: String,
    },
    /// The signature does not verify: the token was altered or forged.
    #[error("the signature does not verify (altered or forged)")]
    BadSignature,
    /// Past its expiry.
    #[error("expired at {exp} (unix seconds; now {now})")]
    Expired {
        /// Its expiry.
        exp: i64,
        /// Now.
        now: i64,
    },
    /// Issued in the future.
    #[error("issued in the future (at {iat}; now {now})")]
    NotYetValid {
        /// Its issue time.
        iat: i64,
        /// Now.
        now: i64,
    },
    /// A key file's text is wrong.
    #[error("bad actor-token key: {0}")]
    Key(String),
}

impl TokenError {
    /// A short stable name of the failure, for error details.
    pub fn kind(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "malformed",
            TokenError::UnknownKey { .. } => "unknown_key",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired { .. } => "expired",
            TokenError::NotYetValid { .. } => "not_yet_valid",
            TokenError::Key(_) => "key",
        }
    }
}

/// What a token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The person acting.
    pub sub: PersonId,
    /// The role they act in.
    pub role: Role,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expires at (unix seconds).
    pub exp: i64,
}

fn kid_of(public: &VerifyingKey) -> String {
    let digest = Sha256::digest(public.as_bytes());
    hex::encode(&digest[..4])
}

fn key_bytes(text: &str, tag: &str) -> Result<(String, [u8; 32]), TokenError> {
    let mut parts = text.split_whitespace();
    let (Some(t), Some(version), Some(kid), Some(b64), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TokenError::Key(format!(
            "expected one line `{tag} {VERSION} <kid> <base64 key>`"
        )));
    };
    if t != tag || version != VERSION {
        return Err(TokenError::Key(format!(
            "expected `{tag} {VERSION} …`, found `{t} {version} …`"
        )));
    }
    let bytes = STANDARD
        .decode(b64)
        .map_err(|e| TokenError::Key(format!("the key is not base64: {e}")))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| TokenError::Key(format!("{} key bytes, not 32", b.len())))?;
    Ok((kid.to_owned(), bytes))
}

/// Makes a new key pair: (secret key text, public key text).
pub fn generate_key() -> (String, String) {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let signing = SigningKey::from_bytes(&seed);
    let public = signing.verifying_key();
    let kid = kid_of(&public);
    (
        format!("{SECRET_TAG} {VERSION} {kid} {}", STANDARD.encode(seed)),
        format!(
            "{PUBLIC_TAG} {VERSION} {kid} {}",
            STANDARD.encode(public.as_bytes())
        ),
    )
}

/// Issues tokens with a deployment's secret key.
#[derive(Clone)]
pub struct TokenIssuer {
    kid: String,
    key: SigningKey,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// Reads a secret key's text.
    pub fn new(secret: &str) -> Result<Self, TokenError> {
        let (kid, seed) = key_bytes(secret, SECRET_TAG)?;
        let key = SigningKey::from_bytes(&seed);
        if kid_of(&key.verifying_key()) != kid {
            return Err(TokenError::Key(format!(
                "the key id {kid} does not match the key"
            )));
        }
        Ok(TokenIssuer { kid, key })
    }

    /// The matching public key's text, for verifiers.
    pub fn vkey(&self) -> String {
        format!(
            "{PUBLIC_TAG} {VERSION} {} {}",
            self.kid,
            STANDARD.encode(self.key.verifying_key().as_bytes())
        )
    }

    /// A token for `actor`, issued at `now` (unix seconds), valid for `ttl_secs` (at most
    /// [`MAX_TTL_SECS`]).
    pub fn issue(&self, actor: &Actor, now: i64, ttl_secs: i64) -> String {
        let claims = Claims {
            sub: actor.person,
            role: actor.role,
            iat: now,
            exp: now + ttl_secs.clamp(1, MAX_TTL_SECS),
        };
        self.sign(&claims)
    }

    /// Signs any claims (tests use it to make expired or future tokens).
    pub fn sign(&self, claims: &Claims) -> String {
        // Claims are plain data: encoding them cannot fail.
        let json = serde_json::to_vec(claims).unwrap_or_default();
        let signed = format!("{VERSION}.{}.{}", self.kid, URL_SAFE_NO_PAD.encode(json));
        let signature = self.key.sign(signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    /// A token for `actor` valid for five minutes from now: what a client attaches to a request.
    pub fn for_request(&self, actor: &Actor) -> String {
        self.issue(actor, now_secs(), 300)
    }
}

/// The system clock in unix seconds.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Verifies tokens against one or more public keys.
#[derive(Clone, Debug)]
pub struct TokenVerifier {
    keys: Vec<(String, VerifyingKey)>,
}

impl TokenVerifier {
    /// Reads public keys' texts (one or more: old and new during a rotation).
    pub fn new<S: AsRef<str>>(vkeys: &[S]) -> Result<Self, TokenError> {
        if vkeys.is_empty() {
            return Err(TokenError::Key("no verifier key given".into()));
        }
        let keys = vkeys
            .iter()
            .map(|text| {
                let (kid, bytes) = key_bytes(text.as_ref(), PUBLIC_TAG)?;
                let key = VerifyingKey::from_bytes(&bytes)
                    .map_err(|e| TokenError::Key(format!("not an Ed25519 public key: {e}")))?;
                if kid_of(&key) != kid {
                    return Err(TokenError::Key(format!(
                        "the key id {kid} does not match the key"
                    )));
                }
                Ok((kid, key))
            })
            .collect::<Result<_, _>>()?;
        Ok(TokenVerifier { keys })
    }

    /// A verifier holding no key: it refuses every token (for endpoints that take no command).
    pub fn refusing_all() -> Self {
        TokenVerifier { keys: Vec::new() }
    }

    /// The key ids it accepts.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.iter().map(|(k, _)| k.as_str()).collect()
    }

    /// Checks `token` at `now` (unix seconds) and returns who is acting.
    pub fn verify(&self, token: &str, now: i64) -> Result<Actor, TokenError> {
        let token = token.trim();
        let mut parts = token.split('.');
        let (Some(version), Some(kid), Some(claims_b64), Some(sig_b64), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(TokenError::Malformed(
                "expected v1.<kid>.<claims>.<signature>".into(),
            ));
        };
        if version != VERSION {
            return Err(TokenError::Malformed(format!(
                "version {version:?}, expected {VERSION}"
            )));
        }
        let Some((_, key)) = self.keys.iter().find(|(k, _)| k == kid) else {
            return Err(TokenError::UnknownKey {
                kid: kid.to_owned(),
            });
        };
        let sig = URL_SAFE_NO_PAD
            .decode(sig_b64)
            .map_err(|e| TokenError::Malformed(format!("signature not base64url: {e}")))?;
        let sig: [u8; 64] = sig
            .try_into()
            .map_err(|_| TokenError::Malformed("signature is not 64 bytes".into()))?;
        let signed_len = token.len() - sig_b64.len() - 1;
        key.verify(
            &token.as_bytes()[..signed_len],
            &Signature::from_bytes(&sig),
        )
        .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(claims_b64)
            .map_err(|e| TokenError::Malformed(format!("claims not base64url: {e}")))?;
        let claims: Claims = serde_json::from_slice(&json)
            .map_err(|e| TokenError::Malformed(format!("claims: {e}")))?;
        if claims.exp <= now {
            return Err(TokenError::Expired {
                exp: claims.exp,
                now,
            });
        }
        if claims.iat > now + CLOCK_SKEW_SECS {
            return Err(TokenError::NotYetValid {
                iat: claims.iat,
                now,
            });
        }
        Ok(Actor {
            person: claims.sub,
            role: claims.role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor() -> Actor {
        Actor {
            person: PersonId::parse("8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a9c11").unwrap(),
            role: Role::Officer,
        }
    }

    #[test]
    fn a_token_verifies_with_its_key_and_with_nothing_else() {
        let (skey, vkey) = generate_key();
        let issuer = TokenIssuer::new(&skey).unwrap();
        assert_eq!(issuer.vkey(), vkey);
        let verifier = TokenVerifier::new(&[vkey]).unwrap();
        let token = issuer.issue(&actor(), 1_000, 60);
        assert_eq!(verifier.verify(&token, 1_010).unwrap(), actor());

        // Expired, and issued in the future.
        assert!(matches!(
            verifier.verify(&token, 1_060),
            Err(TokenError::Expired { .. })
        ));
        let future = issuer.issue(&actor(), 1_000 + CLOCK_SKEW_SECS + 10, 60);
        assert!(matches!(
            verifier.verify(&future, 1_000),
            Err(TokenError::NotYetValid { .. })
        ));

        // Another deployment's key.
        let (other_skey, other_vkey) = generate_key();
        let other = TokenIssuer::new(&other_skey).unwrap();
        assert!(matches!(
            verifier.verify(&other.issue(&actor(), 1_000, 60), 1_010),
            Err(TokenError::UnknownKey { .. })
        ));
        // Both keys during a rotation.
        let both = TokenVerifier::new(&[issuer.vkey(), other_vkey]).unwrap();
        assert!(both
            .verify(&other.issue(&actor(), 1_000, 60), 1_010)
            .is_ok());
        assert!(both.verify(&token, 1_010).is_ok());

        // A forged role: claims changed, signature kept.
        let parts: Vec<&str> = token.split('.').collect();
        let forged_claims = Claims {
            sub: actor().person,
            role: Role::SeniorReviewingOfficial,
            iat: 1_000,
            exp: 1_060,
        };
        let forged = format!(
            "{}.{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap()),
            parts[3]
        );
        assert_eq!(
            verifier.verify(&forged, 1_010),
            Err(TokenError::BadSignature)
        );
        // Another key's signature under this key's id.
        let resigned = other.issue(&actor(), 1_000, 60);
        let r: Vec<&str> = resigned.split('.').collect();
        let spliced = format!("{}.{}.{}.{}", r[0], parts[1], r[2], r[3]);
        assert_eq!(
            verifier.verify(&spliced, 1_010),
            Err(TokenError::BadSignature)
        );

        for garbage in [
            "",
            "8c0f4f4e-2a6b-4c1e-9d52-0b4f5e2a9c11/officer",
            "v1.a.b",
            "v2.x.y.z",
        ] {
            assert!(matches!(
                verifier.verify(garbage, 1_010),
                Err(TokenError::Malformed(_))
            ));
        }
    }

    #[test]
    fn keys_are_checked_when_read() {
        let (skey, vkey) = generate_key();
        assert!(TokenIssuer::new(&vkey).is_err());
        assert!(TokenVerifier::new(std::slice::from_ref(&skey)).is_err());
        assert!(TokenVerifier::new::<String>(&[]).is_err());
        let tampered = skey
            .replacen(' ', "  ", 1)
            .replace(skey.split_whitespace().nth(2).unwrap(), "00000000");
        assert!(TokenIssuer::new(&tampered).is_err());
    }
}
