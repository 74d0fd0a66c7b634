//! The client side of C2SP `tlog-witness`: `POST <witness>/add-checkpoint` with the old size, a
//! consistency proof and the signed checkpoint; the answer is the witness's cosignature line,
//! checked against its vkey before it is handed back. One pooled HTTP client per witness; plain
//! HTTP, or HTTPS with the system's root certificates.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use hyper::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::cosig::{add_signature_lines, CosignatureVerifier};
use crate::note::NoteError;
use crate::tree::Hash;

/// The most of a witness's answer that is read: a few signature lines, or a short refusal.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Why a witness gave no cosignature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// 409: `old` is not the size the witness last cosigned, which is `size`: retry from it.
    /// (A 409 naming `old` itself means the witness cosigned another root at that size, a fork:
    /// that is [`WitnessError::Refused`] with status 409, since no retry can succeed.)
    #[error("the witness last cosigned size {size}")]
    Conflict {
        /// The size of the witness's latest cosigned checkpoint for the origin.
        size: u64,
    },
    /// Any other non-success answer (400, 403, 404, 422, a 409 for a fork at the same size, …).
    #[error("the witness refused with {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// No answer: a connection error or the timeout.
    #[error("the witness is unreachable: {0}")]
    Unreachable(String),
    /// An answer that is not a valid cosignature by the witness's key.
    #[error("bad answer from the witness: {0}")]
    BadResponse(String),
    /// The witness's URL or vkey cannot be used.
    #[error("witness key: {0}")]
    Key(NoteError),
}

enum Transport {
    Plain(Client<HttpConnector, Full<Bytes>>),
    Tls(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
}

/// A witness, as a log talks to it.
pub struct WitnessClient {
    uri: Uri,
    base: String,
    verifier: CosignatureVerifier,
    transport: Transport,
}

impl std::fmt::Debug for WitnessClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessClient")
            .field("url", &self.base)
            .field("name", &self.verifier.name())
            .finish_non_exhaustive()
    }
}

/// The body of an `add-checkpoint` request (C2SP tlog-witness).
pub fn request_body(old: u64, proof: &[Hash], note_text: &str) -> String {
    let mut body = format!("old {old}\n");
    for hash in proof {
        body.push_str(&BASE64.encode(hash.0));
        body.push('\n');
    }
    body.push('\n');
    body.push_str(note_text);
    body
}

impl WitnessClient {
    /// A client of the witness at `url` (its submission prefix, e.g. `http://127.0.0.1:7480`)
    /// whose cosignatures verify with `vkey`.
    pub fn new(url: &str, vkey: &str) -> Result<Self, WitnessError> {
        let verifier = CosignatureVerifier::new(vkey).map_err(WitnessError::Key)?;
        let base = url.trim().trim_end_matches('/').to_owned();
        let uri: Uri = format!("{base}/add-checkpoint")
            .parse()
            .map_err(|e| WitnessError::Key(NoteError::Key(format!("witness url {url:?}: {e}"))))?;
        let scheme = uri.scheme_str();
        if !matches!(scheme, Some("http" | "https")) || uri.host().is_none() {
            return Err(WitnessError::Key(NoteError::Key(format!(
                "witness url {url:?}: not an http(s) url"
            ))));
        }
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(4);
        let transport = if scheme == Some("https") {
            http.enforce_http(false);
            // The provider is named rather than taken from rustls's process default, which
            // panics when more than one provider is compiled in.
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
                .map_err(|e| {
                    WitnessError::Key(NoteError::Key(format!(
                        "https witness: cannot load the system's root certificates: {e}"
                    )))
                })?
                .https_only()
                .enable_http1()
                .wrap_connector(http);
            Transport::Tls(builder.build(https))
        } else {
            Transport::Plain(builder.build(http))
        };
        Ok(WitnessClient {
            uri,
            base,
            verifier,
            transport,
        })
    }

    /// The witness key's name.
    pub fn name(&self) -> &str {
        self.verifier.name()
    }

    /// The witness's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// The verifier of this witness's cosignatures.
    pub fn verifier(&self) -> &CosignatureVerifier {
        &self.verifier
    }

    /// POST <url>/add-checkpoint (C2SP tlog-witness). Ok(cosignature line, checked against the vkey).
    pub async fn add_checkpoint(
        &self,
        old: u64,
        proof: &[Hash],
        note_text: &str,
        timeout: Duration,
    ) -> Result<String, WitnessError> {
        let body = request_body(old, proof, note_text);
        let request = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(
                USER_AGENT,
                concat!("docket-witness-client/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| WitnessError::BadResponse(format!("cannot build the request: {e}")))?;
        let exchange = async {
            let response = match &self.transport {
                Transport::Plain(client) => client.request(request).await,
                Transport::Tls(client) => client.request(request).await,
            }
            .map_err(|e| WitnessError::Unreachable(error_chain(&e)))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BODY)
                .collect()
                .await
                .map_err(|e| WitnessError::Unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok::<_, WitnessError>((status, body))
        };
        let (status, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| WitnessError::Unreachable(format!("no answer within {timeout:?}")))??;
        let text = String::from_utf8_lossy(&body);
        match status.as_u16() {
            200 => self.cosignature_in(&text, note_text),
            409 => match text.trim_end_matches('\n').parse::<u64>() {
                // The witness has cosigned this very size, with another root: a fork, which no
                // retry from that size can mend.
                Ok(size) if size == old => Err(WitnessError::Refused {
                    status: 409,
                    body: format!("the witness cosigned another tree of size {size} (a fork)"),
                }),
                Ok(size) => Err(WitnessError::Conflict { size }),
                Err(_) => Err(WitnessError::BadResponse(format!(
                    "409 without a size: {:?}",
                    excerpt(&text)
                ))),
            },
            status => Err(WitnessError::Refused {
                status,
                body: excerpt(&text),
            }),
        }
    }

    /// The witness's own line among the answer's signature lines, once it verifies over the
    /// submitted note (lines of other keys are ignored, as the spec says).
    fn cosignature_in(&self, answer: &str, note_text: &str) -> Result<String, WitnessError> {
        let prefix = format!("\u{2014} {} ", self.verifier.name());
        let mut last_error = None;
        for line in answer.lines().filter(|l| l.starts_with(&prefix)) {
            let line = format!("{line}\n");
            let checked = add_signature_lines(note_text, std::slice::from_ref(&line))
                .and_then(|cosigned| self.verifier.verify(&cosigned));
            match checked {
                Ok(_) => return Ok(line),
                Err(e) => last_error = Some(e),
            }
        }
        Err(WitnessError::BadResponse(match last_error {
            Some(e) => format!("the cosignature does not verify: {e}"),
            None => format!(
                "no cosignature by {} in {:?}",
                self.verifier.name(),
                excerpt(answer)
            ),
        }))
    }
}

/// The start of a body, for error messages.
fn excerpt(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// An error and its sources, `outer: inner: …` (hyper's outer errors are terse).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
