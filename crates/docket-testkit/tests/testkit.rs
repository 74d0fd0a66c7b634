//! The testkit against the real nats-server: start, identify, kill, restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The workspace invariants of docs/architecture.md live at the top level, beside the end-to-end
/// tests; they run as part of this binary to keep link time down.
#[path = "../../../tests/architecture.rs"]
mod architecture;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::Duration;

use docket_testkit::{NatsCluster, NatsServer};

/// Connects with a raw socket and returns the INFO line's JSON.
fn info(port: u16) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line.strip_prefix("INFO ")
        .unwrap_or_else(|| panic!("not an INFO line: {line:?}"))
        .to_owned()
}

fn field<'a>(json: &'a str, key: &str) -> &'a str {
    let start = json.find(&format!("\"{key}\":\"")).unwrap() + key.len() + 4;
    &json[start..start + json[start..].find('"').unwrap()]
}

fn version(json: &str) -> (u64, u64) {
    let mut parts = field(json, "version").split('.');
    let major = parts.next().unwrap().parse().unwrap();
    let minor = parts.next().unwrap().parse().unwrap();
    (major, minor)
}

#[test]
fn server_starts_kills_and_restarts_on_the_same_port_and_store() {
    let mut server = NatsServer::start();
    assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
    assert_eq!(server.client_url(), server.url());

    let json = info(server.port());
    assert!(version(&json) >= (2, 10), "server too old: {json}");
    assert!(json.contains("\"jetstream\":true"), "jetstream off: {json}");
    let name = field(&json, "server_name").to_owned();
    assert!(server.store_dir().is_dir(), "no store dir");

    server.kill();
    assert!(!server.is_running());
    assert!(
        TcpStream::connect(("127.0.0.1", server.port())).is_err(),
        "port still open after kill"
    );

    server.restart();
    assert!(server.is_running());
    let again = info(server.port());
    assert_eq!(field(&again, "server_name"), name);
    assert_ne!(
        field(&again, "server_id"),
        field(&json, "server_id"),
        "not a new process"
    );
    assert!(std::fs::read_to_string(server.log_path())
        .unwrap()
        .contains("Server is ready"));
}

#[test]
fn servers_get_distinct_ports_and_directories() {
    let a = NatsServer::start();
    let b = NatsServer::start();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.store_dir(), b.store_dir());
}

#[test]
fn drop_stops_the_server() {
    let server = NatsServer::start();
    let port = server.port();
    drop(server);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn cluster_of_three_survives_a_node_restart() {
    let mut cluster = NatsCluster::start(3);
    assert_eq!(cluster.urls().len(), 3);
    let port = |url: &str| url.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    for url in cluster.urls() {
        let json = info(port(&url));
        assert!(json.contains("\"cluster\":\"docket-test-"), "{json}");
    }
    cluster.kill(1);
    assert!(TcpStream::connect(("127.0.0.1", port(&cluster.node(1)))).is_err());
    cluster.restart(1);
    info(port(&cluster.node(1)));
}

/// A server on a raw socket that reads one request and answers `response`; the request's head.
async fn answer_once(response: &'static [u8]) -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0);
            request.extend_from_slice(&buf[..n]);
        }
        socket.write_all(response).await.unwrap();
        socket.shutdown().await.unwrap();
        String::from_utf8(request).unwrap()
    });
    (url, server)
}

#[tokio::test]
async fn the_http_helper_reads_chunked_and_sized_answers_and_sends_headers() {
    use docket_testkit::http;
    let (url, server) = answer_once(
        b"HTTP/1.1 409 Conflict\r\nContent-Type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    )
    .await;
    let response = http::get(&format!("{url}/x?y=1"), &[("Docket-Actor", "a/b")]).await;
    assert_eq!(
        (response.status, response.text()),
        (409, "abcde".to_owned())
    );
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert!(response
        .head()
        .starts_with("HTTP/1.1 409 Conflict\r\ncontent-type: text/plain"));
    let request = server.await.unwrap().to_ascii_lowercase();
    assert!(request.starts_with("get /x?y=1 http/1.1\r\n"), "{request}");
    assert!(request.contains("\r\ndocket-actor: a/b\r\n"), "{request}");

    let (url, server) = answer_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await;
    let response = http::post(&url, &[], b"body").await;
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"{}"[..])
    );
    assert!(server.await.unwrap().starts_with("POST / HTTP/1.1\r\n"));

    // A closed port and a cut-off answer are errors, not answers.
    let (url, server) = answer_once(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc").await;
    let cut = http::try_request("GET", &url, &[], &[], Duration::from_secs(5)).await;
    assert!(cut.is_err(), "{cut:?}");
    server.await.unwrap();
    let closed = http::try_request("GET", &url, &[], &[], Duration::from_secs(5)).await;
    assert!(closed.unwrap_err().contains("onnect"));
}

#[test]
fn the_blocking_http_helper_works_outside_a_runtime() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/healthz", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut socket, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).unwrap();
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .unwrap();
    });
    let response = docket_testkit::http::blocking_get(&url, &[]);
    assert_eq!((response.status, response.text()), (200, "ok".to_owned()));
    server.join().unwrap();
}
