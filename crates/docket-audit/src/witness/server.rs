//! The witness service, speaking C2SP `tlog-witness`: `POST /add-checkpoint` takes
//! `old <size>\n`, up to 63 base64 consistency-proof hashes one per line, an empty line and a
//! signed checkpoint note. The witness checks the note against the keys it trusts for the
//! checkpoint's origin, checks that `old` is the size it last cosigned and that the proof takes
//! that tree to the new one, makes the new state durable, then answers with its `cosignature/v1`
//! line. It never cosigns a checkpoint smaller than, or inconsistent with, one it has cosigned.
//!
//! Refusals, as the spec says: 400 a malformed body or `old` larger than the checkpoint; 403 no
//! signature by a trusted key of the origin; 404 an origin it does not witness; 409 `old` is not
//! its latest cosigned size, or the same size with another root (body: that size and a newline,
//! `Content-Type: text/x.tlog.size`); 422 a consistency proof that does not verify.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use signed_note::{Note, StandardVerifier, VerificationError, Verifier, Verifiers};
use tokio::sync::watch;

use super::cosig::WitnessSigner;
use super::state::{Cosigned, StateError, WitnessState};
use crate::tree::{verify_consistency, Hash};

/// The largest request body taken: 63 proof lines and a checkpoint with signatures fit easily.
pub const MAX_REQUEST_BODY: usize = 64 * 1024;
/// The most consistency-proof lines a request may carry (the spec's limit).
pub const MAX_PROOF_LINES: usize = 63;

/// What a witness needs to run.
#[derive(Clone, Debug)]
pub struct WitnessConfig {
    /// The witness's key.
    pub signer: WitnessSigner,
    /// The vkeys of the logs it witnesses; each key's name is the origin it signs for (several
    /// keys may share an origin, e.g. while a log rotates its key).
    pub log_vkeys: Vec<String>,
    /// Where it keeps what it last cosigned for each origin.
    pub state_dir: PathBuf,
}

/// Why a witness cannot start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum WitnessServerError {
    /// A log vkey that cannot be used.
    #[error("log key {vkey:?}: {reason}")]
    LogKey {
        /// The key as given.
        vkey: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No log to witness.
    #[error("no log to witness: give at least one log vkey")]
    NoLogs,
    /// The state directory cannot be used.
    #[error(transparent)]
    State(#[from] StateError),
    /// Serving HTTP failed.
    #[error("serving http: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a witness gives no cosignature, with the HTTP status the protocol assigns.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 400: the body is not an `add-checkpoint` request, or `old` exceeds the checkpoint size.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 403: no signature on the checkpoint verifies with a trusted key of its origin.
    #[error("not signed by a known key of the origin: {0}")]
    Forbidden(String),
    /// 404: the witness does not witness this origin.
    #[error("unknown origin {0:?}")]
    UnknownOrigin(String),
    /// 409: `old` is not the size last cosigned (`size`), or the same size with another root.
    #[error("conflict: the latest cosigned size is {size}")]
    Conflict {
        /// The latest cosigned size.
        size: u64,
    },
    /// 422: the consistency proof does not take the cosigned tree to the new one.
    #[error("the consistency proof does not verify: {0}")]
    Inconsistent(String),
    /// 500: the state could not be made durable, or the cosignature made.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Refusal {
    /// The HTTP status of this refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
            Refusal::UnknownOrigin(_) => StatusCode::NOT_FOUND,
            Refusal::Conflict { .. } => StatusCode::CONFLICT,
            Refusal::Inconsistent(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        match self {
            Refusal::Conflict { size } => (
                status,
                [(header::CONTENT_TYPE, "text/x.tlog.size")],
                format!("{size}\n"),
            )
                .into_response(),
            other => (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{other}\n"),
            )
                .into_response(),
        }
    }
}

/// The trusted keys of one origin.
struct LogKeys(Vec<StandardVerifier>);

impl Verifiers for LogKeys {
    fn verifier(&self, name: &str, id: u32) -> Result<&dyn Verifier, VerificationError> {
        let mut matching = self
            .0
            .iter()
            .filter(|v| v.name() == name && v.key_id() == id);
        match (matching.next(), matching.next()) {
            (Some(v), None) => Ok(v),
            (Some(_), Some(_)) => Err(VerificationError::AmbiguousKey {
                name: name.to_owned(),
                id,
            }),
            (None, _) => Err(VerificationError::UnknownKey {
                name: name.to_owned(),
                id,
            }),
        }
    }
}

/// A parsed `add-checkpoint` body.
struct AddCheckpoint<'a> {
    old: u64,
    proof: Vec<Hash>,
    note: &'a str,
}

fn bad(reason: impl Into<String>) -> Refusal {
    Refusal::BadRequest(reason.into())
}

fn parse_request(body: &[u8]) -> Result<AddCheckpoint<'_>, Refusal> {
    let text = std::str::from_utf8(body).map_err(|_| bad("the body is not utf-8"))?;
    let (first, mut rest) = text
        .split_once('\n')
        .ok_or_else(|| bad("no old size line"))?;
    let digits = first
        .strip_prefix("old ")
        .ok_or_else(|| bad("the first line is not `old <size>`"))?;
    let canonical = digits == "0" || !digits.starts_with('0');
    if digits.is_empty() || !canonical || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("the old size is not a decimal without leading zeroes"));
    }
    let old = digits
        .parse::<u64>()
        .map_err(|_| bad("the old size is too large"))?;
    let mut proof = Vec::new();
    loop {
        let (line, after) = rest
            .split_once('\n')
            .ok_or_else(|| bad("no empty line before the checkpoint"))?;
        rest = after;
        if line.is_empty() {
            break;
        }
        if proof.len() == MAX_PROOF_LINES {
            return Err(bad(format!("more than {MAX_PROOF_LINES} proof lines")));
        }
        let hash = BASE64
            .decode(line)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| bad("a proof line is not a base64 SHA-256 hash"))?;
        proof.push(Hash(hash));
    }
    Ok(AddCheckpoint {
        old,
        proof,
        note: rest,
    })
}

/// A witness: its key, the logs it trusts, its durable state.
pub struct Witness {
    signer: WitnessSigner,
    logs: HashMap<String, LogKeys>,
    state: WitnessState,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Witness")
            .field("vkey", &self.signer.vkey())
            .field("origins", &self.logs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Witness {
    /// Reads the log keys and loads the state directory.
    pub fn open(config: WitnessConfig) -> Result<Self, WitnessServerError> {
        let mut logs: HashMap<String, LogKeys> = HashMap::new();
        for vkey in &config.log_vkeys {
            let vkey = vkey.trim();
            let verifier = StandardVerifier::new(vkey).map_err(|e| WitnessServerError::LogKey {
                vkey: vkey.to_owned(),
                reason: e.to_string(),
            })?;
            logs.entry(verifier.name().to_owned())
                .or_insert_with(|| LogKeys(Vec::new()))
                .0
                .push(verifier);
        }
        if logs.is_empty() {
            return Err(WitnessServerError::NoLogs);
        }
        let state = WitnessState::open(&config.state_dir, logs.keys().map(String::as_str))?;
        Ok(Witness {
            signer: config.signer,
            logs,
            state,
        })
    }

    /// The witness's public key.
    pub fn vkey(&self) -> &str {
        self.signer.vkey()
    }

    /// The origins it witnesses.
    pub fn origins(&self) -> impl Iterator<Item = &str> {
        self.logs.keys().map(String::as_str)
    }

    /// The size and root it last cosigned for `origin` (waits for a request in flight).
    pub async fn cosigned(&self, origin: &str) -> Option<(u64, Hash)> {
        let state = self.state.lock(origin).await?;
        state.current().map(|c| (c.size, c.root))
    }

    /// Handles one `add-checkpoint` body: Ok(the cosignature line).
    pub async fn add_checkpoint(&self, body: &[u8]) -> Result<String, Refusal> {
        let request = parse_request(body)?;
        let note = Note::from_bytes(request.note.as_bytes())
            .map_err(|e| bad(format!("the checkpoint is not a signed note: {e}")))?;
        let checkpoint = tlog_tiles::Checkpoint::from_bytes(note.text())
            .map_err(|e| bad(format!("the note is not a checkpoint: {e}")))?;
        let origin = checkpoint.origin();
        let keys = self
            .logs
            .get(origin)
            .ok_or_else(|| Refusal::UnknownOrigin(origin.to_owned()))?;
        note.verify(keys)
            .map_err(|e| Refusal::Forbidden(e.to_string()))?;
        let (size, root) = (checkpoint.size(), *checkpoint.hash());
        if request.old > size {
            return Err(bad(format!(
                "old size {} exceeds the checkpoint size {size}",
                request.old
            )));
        }
        // From here to the durable store, this origin's lock is held: the check and the update
        // are one step, as the spec requires.
        let mut state = self
            .state
            .lock(origin)
            .await
            .ok_or_else(|| Refusal::UnknownOrigin(origin.to_owned()))?;
        let stored = state.current();
        let (stored_size, stored_root) = stored.map_or((0, None), |c| (c.size, Some(c.root)));
        if request.old != stored_size {
            return Err(Refusal::Conflict { size: stored_size });
        }
        match stored_root {
            Some(stored_root) if stored_size == size => {
                if stored_root != root {
                    return Err(Refusal::Conflict { size: stored_size });
                }
                if !request.proof.is_empty() {
                    return Err(Refusal::Inconsistent(
                        "equal sizes need an empty proof".into(),
                    ));
                }
            }
            Some(stored_root) => {
                verify_consistency(&request.proof, stored_size, stored_root, size, root)
                    .map_err(|e| Refusal::Inconsistent(e.to_string()))?;
            }
            None if !request.proof.is_empty() => {
                return Err(Refusal::Inconsistent(
                    "the proof from size 0 must be empty".into(),
                ));
            }
            None => {}
        }
        state
            .store(Cosigned { size, root })
            .await
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        let body = std::str::from_utf8(note.text())
            .map_err(|e| Refusal::Internal(format!("note text: {e}")))?;
        self.signer
            .cosign(body, now_unix())
            .map_err(|e| Refusal::Internal(e.to_string()))
    }
}

/// What the log line of a refusal says about the request, as far as it parses.
fn describe(body: &[u8]) -> (Option<u64>, Option<String>, Option<u64>) {
    let Ok(request) = parse_request(body) else {
        return (None, None, None);
    };
    let checkpoint = Note::from_bytes(request.note.as_bytes())
        .ok()
        .and_then(|n| tlog_tiles::Checkpoint::from_bytes(n.text()).ok());
    (
        Some(request.old),
        checkpoint.as_ref().map(|c| c.origin().to_owned()),
        checkpoint.map(|c| c.size()),
    )
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    match witness.add_checkpoint(&body).await {
        Ok(line) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            line,
        )
            .into_response(),
        Err(refusal) => {
            let (old, origin, size) = describe(&body);
            let conflict_size = match refusal {
                Refusal::Conflict { size } => Some(size),
                _ => None,
            };
            tracing::warn!(
                status = refusal.status().as_u16(),
                origin = origin.as_deref().unwrap_or("?"),
                old,
                size,
                cosigned_size = conflict_size,
                reason = %refusal,
                "witness refused a checkpoint"
            );
            refusal.into_response()
        }
    }
}

/// The witness's HTTP routes (`POST /add-checkpoint`), with the body-size limit.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .with_state(witness)
}

/// Runs a witness on `listener` until `shutdown` turns true (or its sender is dropped), then
/// finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: WitnessConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(), WitnessServerError> {
    let witness = Arc::new(Witness::open(config)?);
    serve_witness(listener, witness, shutdown).await
}

/// [`serve`] for a witness already opened.
pub async fn serve_witness(
    listener: tokio::net::TcpListener,
    witness: Arc<Witness>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), WitnessServerError> {
    let mut stop = shutdown;
    axum::serve(listener, router(witness))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_parse_strictly() {
        let h = BASE64.encode([7u8; 32]);
        let ok = format!("old 5\n{h}\n{h}\n\nnote text");
        let parsed = parse_request(ok.as_bytes()).unwrap();
        assert_eq!(parsed.old, 5);
        assert_eq!(parsed.proof, vec![Hash([7; 32]); 2]);
        assert_eq!(parsed.note, "note text");
        assert_eq!(parse_request(b"old 0\n\nx").unwrap().old, 0);
        let too_many = format!("old 1\n{}\nx", format!("{h}\n").repeat(64));
        for body in [
            &b""[..],
            b"old 5",
            b"old 05\n\nx",
            b"old -1\n\nx",
            b"old \n\nx",
            b"old 99999999999999999999999\n\nx",
            b"new 5\n\nx",
            b"old 5\nnot base64\n\nx",
            b"old 5\nAAAA\n\nx",
            b"old 5\n",
            b"\xff\xfe",
            too_many.as_bytes(),
        ] {
            assert!(
                matches!(parse_request(body), Err(Refusal::BadRequest(_))),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
