//! The HTTP transport against small servers in the test: connections are pooled and reused, and
//! every way of failing says what went wrong.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::routing::post;
use axum::serve::ListenerExt;

use super::*;

/// Serves `router` on a free port of 127.0.0.1, counting the connections it accepts.
async fn serve(router: axum::Router) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let listener = listener.tap_io(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, accepted)
}

/// A command endpoint that answers every command as Docket does, echoing the actor header.
fn echo_endpoint() -> axum::Router {
    axum::Router::new().route(
        "/api/v1/commands/{name}",
        post(
            |axum::extract::Path(name): axum::extract::Path<String>,
             headers: axum::http::HeaderMap| async move {
                let actor = headers
                    .get(headers::ACTOR)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                (
                    [
                        (headers::CONTENT_TYPE, "application/json"),
                        (headers::STATUS, headers::STATUS_OK),
                    ],
                    serde_json::json!({ "command": name, "actor": actor }).to_string(),
                )
            },
        ),
    )
}

/// One command to `url`, which must fail as `unavailable`; the error.
async fn unavailable(transport: HttpTransport) -> BusError {
    let err = transport
        .request(&subject(), request_headers("x"), Bytes::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, docket_bus::codes::UNAVAILABLE, "{err:?}");
    err
}

fn subject() -> String {
    docket_bus::subject(CommandKind::ALL[0])
}

fn request_headers(actor: &str) -> Headers {
    Headers::new()
        .with(headers::CONTENT_TYPE, "application/json")
        .with(headers::ACTOR, actor)
}

/// Many commands, one after the other and then several at a time, over one transport: the
/// server sees one connection for the sequential ones and at most one per command in flight
/// for the others, not one per command.
#[tokio::test]
async fn connections_are_reused_across_commands() {
    let (addr, accepted) = serve(echo_endpoint()).await;
    let transport = HttpTransport::new(&format!("http://{addr}/")).unwrap();
    for i in 0..50 {
        let reply = transport
            .request(&subject(), request_headers(&format!("a{i}")), Bytes::new())
            .await
            .unwrap();
        assert!(reply.is_ok(), "{reply:?}");
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["command"], CommandKind::ALL[0].name());
        assert_eq!(body["actor"], format!("a{i}"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);

    let in_flight = 4;
    let subject = subject();
    for _ in 0..10 {
        let batch =
            (0..in_flight).map(|_| transport.request(&subject, request_headers("x"), Bytes::new()));
        for reply in futures_util::future::join_all(batch).await {
            assert!(reply.unwrap().is_ok());
        }
    }
    let total = accepted.load(Ordering::SeqCst);
    assert!((1..=in_flight).contains(&total), "{total} connections");
}

#[tokio::test]
async fn a_closed_port_is_named_as_unreachable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = unavailable(HttpTransport::new(&format!("http://{addr}")).unwrap()).await;
    assert!(
        err.message.starts_with(&format!(
            "cannot reach the HTTP endpoint at http://{addr}: "
        )),
        "{}",
        err.message
    );
    assert!(err.message.contains("refused"), "{}", err.message);
}

#[tokio::test]
async fn an_endpoint_that_does_not_answer_times_out() {
    let router = axum::Router::new().route(
        "/api/v1/commands/{name}",
        post(std::future::pending::<&'static str>),
    );
    let (addr, _) = serve(router).await;
    let transport = HttpTransport::new(&format!("http://{addr}"))
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let err = unavailable(transport).await;
    assert_eq!(
        err.message,
        format!("no answer from http://{addr} within 200ms")
    );
}

/// Another server on the port (here one with no command routes, answering 404 in plain text)
/// is not taken for Docket.
#[tokio::test]
async fn an_answer_that_is_not_dockets_is_refused() {
    let (addr, _) = serve(axum::Router::new()).await;
    let err = unavailable(HttpTransport::new(&format!("http://{addr}")).unwrap()).await;
    assert!(
        err.message.starts_with(&format!(
            "http://{addr} answered 404 Not Found without a Docket-Status header"
        )),
        "{}",
        err.message
    );
}

/// An `https://` endpoint is spoken to in TLS: the first bytes on the wire are a TLS handshake
/// record, and a peer that does not answer it is unreachable. (A full round trip would need a
/// certificate made in the test, and no certificate generator is among the dependencies.)
#[tokio::test]
async fn https_endpoints_are_spoken_to_in_tls() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "https://localhost:{}",
        listener.local_addr().unwrap().port()
    );
    let Ok(transport) = HttpTransport::new(&url) else {
        // A machine without CA certificates cannot make an https client at all.
        let e = HttpTransport::new(&url).unwrap_err();
        assert!(e.to_string().contains("root certificates"), "{e}");
        return;
    };
    let transport = transport.with_timeout(Duration::from_secs(5));
    // The peer reads the first bytes and hangs up without answering the handshake.
    let (_, first) = tokio::join!(unavailable(transport), async {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut first = [0u8; 2];
        socket.read_exact(&mut first).await.unwrap();
        first
    });
    // A TLS handshake record (0x16), protocol version 3.x.
    assert_eq!(first, [0x16, 0x03]);
}

#[test]
fn urls_are_checked() {
    assert!(HttpTransport::new("http://127.0.0.1:7400").is_ok());
    assert!(HttpTransport::new("http://127.0.0.1:7400/prefix/").is_ok());
    assert!(HttpTransport::new("ftp://x").is_err());
    assert!(HttpTransport::new("127.0.0.1:7400").is_err());
    assert!(HttpTransport::new("http://").is_err());
}

#[test]
fn snippets_are_short_and_say_when_empty() {
    assert_eq!(snippet(b"  "), "(empty body)");
    assert_eq!(snippet(b"<html>nope</html>\n"), "<html>nope</html>");
    assert_eq!(snippet("é".repeat(300).as_bytes()).chars().count(), 201);
}
