//! Delivery to the one configured webhook: an HTTP POST of the notification's JSON, signed with
//! HMAC-SHA256, within the request timeout. Plain HTTP, or HTTPS with the system's root
//! certificates.

use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use hyper::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use sha2::Sha256;
use uuid::Uuid;

use crate::config::NotifyConfig;
use crate::error::NotifyError;

/// The header carrying the body's signature: `sha256=<lowercase hex HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "Docket-Signature";
/// The header carrying the notification's id, the same on every redelivery.
pub const ID_HEADER: &str = "Docket-Notification-Id";

/// How much of a response body is read (and dropped) so the connection can be reused.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// The `Docket-Signature` value of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = keyed(secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a `Docket-Signature` value against `body`, in constant time (for receivers written in
/// Rust, and the tests).
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = hex::decode(hex) else {
        return false;
    };
    let mut mac = keyed(secret);
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn keyed(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length (long ones are hashed), so this never fails; the fallback
    // only satisfies the type.
    <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()))
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The webhook answered 2xx.
    Delivered {
        /// The status.
        status: u16,
    },
    /// Anything else: a non-2xx answer, a network error, a timeout.
    Failed {
        /// The status, when the webhook answered.
        status: Option<u16>,
        /// What went wrong.
        error: String,
    },
}

enum Transport {
    Plain(Client<HttpConnector, Full<Bytes>>),
    Tls(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
}

/// The webhook client: one connection pool, shared by all attempts.
pub(crate) struct Webhook {
    uri: Uri,
    secret: Vec<u8>,
    timeout: Duration,
    transport: Transport,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// A client for the configured webhook.
    pub(crate) fn new(config: &NotifyConfig) -> Result<Self, NotifyError> {
        let uri = config.uri()?;
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(config.request_timeout));
        http.set_nodelay(true);
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(config.concurrency);
        let transport = if uri.scheme_str() == Some("https") {
            http.enforce_http(false);
            // The provider is named rather than taken from rustls's process default, which
            // panics when more than one provider is compiled in.
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
                .map_err(|e| NotifyError::Config {
                    reason: format!(
                        "https webhook: cannot load the system's root certificates: {e}"
                    ),
                })?
                .https_only()
                .enable_http1()
                .wrap_connector(http);
            Transport::Tls(builder.build(https))
        } else {
            Transport::Plain(builder.build(http))
        };
        Ok(Webhook {
            uri,
            secret: config.secret.as_bytes().to_vec(),
            timeout: config.request_timeout,
            transport,
        })
    }

    /// POSTs one notification body; never more than the request timeout.
    pub(crate) async fn post(&self, id: Uuid, body: Bytes) -> Attempt {
        let request = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(
                USER_AGENT,
                concat!("docket-notify/", env!("CARGO_PKG_VERSION")),
            )
            .header(SIGNATURE_HEADER, signature(&self.secret, &body))
            .header(ID_HEADER, id.hyphenated().to_string())
            .body(Full::new(body));
        let request = match request {
            Ok(request) => request,
            Err(e) => {
                return Attempt::Failed {
                    status: None,
                    error: format!("cannot build the request: {e}"),
                }
            }
        };
        let exchange = async {
            let response = match &self.transport {
                Transport::Plain(client) => client.request(request).await,
                Transport::Tls(client) => client.request(request).await,
            }
            .map_err(|e| error_chain(&e))?;
            let status = response.status();
            // Read what the webhook sent back, so the connection can be reused; its content
            // does not matter.
            let _ = Limited::new(response.into_body(), MAX_RESPONSE_BODY)
                .collect()
                .await;
            Ok::<_, String>(status)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(status)) if status.is_success() => Attempt::Delivered {
                status: status.as_u16(),
            },
            Ok(Ok(status)) => Attempt::Failed {
                status: Some(status.as_u16()),
                error: format!("webhook answered {status}"),
            },
            Ok(Err(error)) => Attempt::Failed {
                status: None,
                error,
            },
            Err(_) => Attempt::Failed {
                status: None,
                error: format!("no answer within {:?}", self.timeout),
            },
        }
    }
}

/// An error and its sources, `outer: inner: …`, so a log line says why (hyper's outer errors are
/// terse, e.g. "client error (Connect)").
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_rfc_4231_and_verify() {
        // RFC 4231 test case 2.
        let sig = signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify_signature(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig
        ));
        assert!(verify_signature(
            b"Jefe",
            b"what do ya want for nothing?",
            &sig.to_uppercase().replace("SHA256=", "sha256=")
        ));
        assert!(!verify_signature(
            b"Jefe",
            b"what do ya want for nothing!",
            &sig
        ));
        assert!(!verify_signature(
            b"jefe",
            b"what do ya want for nothing?",
            &sig
        ));
        assert!(!verify_signature(b"Jefe", b"x", "sha256=zz"));
        assert!(!verify_signature(b"Jefe", b"x", "md5=00"));
    }

    /// An `https://` webhook is spoken to in TLS: the first bytes on the wire are a TLS
    /// handshake record, and a peer that does not answer it is a failed attempt.
    #[tokio::test]
    async fn https_webhooks_are_spoken_to_in_tls() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut first = [0u8; 3];
            socket.read_exact(&mut first).await.unwrap();
            first
        });
        let config = NotifyConfig {
            request_timeout: Duration::from_secs(5),
            ..NotifyConfig::new(format!("https://localhost:{port}/hook"), "k")
        };
        let webhook = match Webhook::new(&config) {
            Ok(webhook) => webhook,
            // A machine without CA certificates cannot make an https client at all.
            Err(e) => {
                assert!(e.to_string().contains("root certificates"), "{e}");
                return;
            }
        };
        let attempt = webhook.post(Uuid::nil(), Bytes::from_static(b"{}")).await;
        assert!(
            matches!(attempt, Attempt::Failed { status: None, .. }),
            "{attempt:?}"
        );
        // A TLS handshake record (0x16), protocol version 3.x.
        assert_eq!(&peer.await.unwrap()[..2], &[0x16, 0x03]);
    }
}
