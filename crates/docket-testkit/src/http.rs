//! A small HTTP/1.1 client for tests, on the hyper stack the services and the command line use:
//! one request, and the answer's status, headers and body, however the server framed it
//! (length or chunks).
//!
//! Each call opens its own connection and keeps none, so a test that kills and restarts a server
//! never meets a stale pooled connection. [`try_request`] reports every failure to connect, send
//! or read as an error (for tests that expect the server to be down at times); the others panic
//! with the URL and the reason, as test helpers do. The blocking forms are for synchronous tests
//! and must not be called from inside a tokio runtime.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How long the panicking helpers wait for a whole answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An answer: its status, its headers in the order sent, and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names in lowercase, in the order the server sent them.
    pub headers: Vec<(String, String)>,
    /// The body, unframed.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The status line and the headers as they would stand on the wire (`HTTP/1.1 200 OK`, then
    /// `name: value` lines), for assertions and failure messages.
    pub fn head(&self) -> String {
        let reason = hyper::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let mut head = format!("HTTP/1.1 {} {reason}", self.status);
        for (name, value) in &self.headers {
            head.push_str(&format!("\r\n{name}: {value}"));
        }
        head
    }
}

/// One request to `url` (`http://host:port/path?query`) with `headers` and `body`, answered
/// within `timeout`; every failure is an error naming what failed.
pub async fn try_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, String> {
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| format!("{method}: {e}"))?;
    let uri: Uri = url.parse().map_err(|e| format!("{url:?}: {e}"))?;
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| format!("{url}: {e}"))?;
    for (name, value) in headers {
        let name = HeaderName::try_from(*name).map_err(|e| format!("header {name:?}: {e}"))?;
        let value = HeaderValue::try_from(*value).map_err(|e| format!("header {name}: {e}"))?;
        request.headers_mut().append(name, value);
    }
    // No idle connections kept: each call is one connection, closed when it is done.
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http::<Full<Bytes>>();
    let exchange = async {
        let response = client
            .request(request)
            .await
            // The debug form carries the sources (hyper's display is terse: "client error
            // (Connect)").
            .map_err(|e| format!("{url}: {e:?}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("{url}: reading the body: {e:?}"))?
            .to_bytes();
        let headers = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok(HttpResponse {
            status: parts.status.as_u16(),
            headers,
            body: body.to_vec(),
        })
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(format!("{url}: no whole answer within {timeout:?}")),
    }
}

/// `GET url` with `headers`; panics if there is no whole answer within [`DEFAULT_TIMEOUT`].
pub async fn get(url: &str, headers: &[(&str, &str)]) -> HttpResponse {
    or_panic(
        "GET",
        url,
        try_request("GET", url, headers, &[], DEFAULT_TIMEOUT).await,
    )
}

/// `POST url` with `headers` and `body`; panics if there is no whole answer within
/// [`DEFAULT_TIMEOUT`].
pub async fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    or_panic(
        "POST",
        url,
        try_request("POST", url, headers, body, DEFAULT_TIMEOUT).await,
    )
}

/// [`get`], for synchronous tests.
pub fn blocking_get(url: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => panic!("GET {url}: cannot start a runtime: {e}"),
    };
    runtime.block_on(get(url, headers))
}

fn or_panic(method: &str, url: &str, result: Result<HttpResponse, String>) -> HttpResponse {
    match result {
        Ok(response) => response,
        Err(e) => panic!("{method} {url} failed: {e}"),
    }
}
