//! One actor-token key pair per test process: tools and clients sign their requests with it,
//! services accept it (`--actor-key`, `DOCKET_ACTOR_KEY`, `DOCKET_ACTOR_VKEYS`).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use docket_bus::token::{TokenIssuer, TokenVerifier};

struct Keys {
    dir: tempfile::TempDir,
    skey: String,
    vkey: String,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let (skey, vkey) = docket_bus::token::generate_key();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("actor.key"), format!("{skey}\n")).unwrap();
        std::fs::write(dir.path().join("actor.vkey"), format!("{vkey}\n")).unwrap();
        Keys { dir, skey, vkey }
    })
}

/// The secret key's file (for `--actor-key` / `DOCKET_ACTOR_KEY`).
pub fn key_path() -> PathBuf {
    keys().dir.path().join("actor.key")
}

/// The public key's text (for `DOCKET_ACTOR_VKEYS`).
pub fn vkey() -> &'static str {
    &keys().vkey
}

/// The issuer of the test tokens.
pub fn issuer() -> TokenIssuer {
    TokenIssuer::new(&keys().skey).unwrap()
}

/// A verifier accepting the test tokens.
pub fn verifier() -> TokenVerifier {
    TokenVerifier::new(&[vkey()]).unwrap()
}

/// A token, valid five minutes, for `<person uuid>/<role>`.
pub fn token(claim: &str) -> String {
    let actor = docket_bus::actor::parse_claim(claim).unwrap();
    issuer().for_request(&actor)
}
