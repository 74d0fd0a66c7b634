//! A webhook receiver for the end-to-end tests: a real HTTP/1.1 server on 127.0.0.1 that checks
//! every delivery's `Docket-Signature` and keeps what it received.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One delivery: whether its signature was valid, and its JSON body.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The signature header matched the body under the shared secret.
    pub signed: bool,
    /// The notification.
    pub body: Value,
}

/// A running receiver.
#[derive(Clone, Debug)]
pub struct Receiver {
    /// Its URL.
    pub url: String,
    /// What it received so far.
    pub received: Arc<Mutex<Vec<Delivery>>>,
}

/// Starts a receiver that verifies signatures with `secret`.
pub async fn start(secret: &'static str) -> Receiver {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, secret, store.clone()));
        }
    });
    Receiver { url, received }
}

async fn serve(mut stream: TcpStream, secret: &'static str, store: Arc<Mutex<Vec<Delivery>>>) {
    let mut buf = Vec::new();
    loop {
        // Read one request: headers, then Content-Length bytes of body.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                l.split_once(':')
                    .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.trim().to_owned())
            })
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + 4 + length {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[head_end + 4..head_end + 4 + length].to_vec();
        buf.drain(..head_end + 4 + length);
        let signed = header("docket-signature")
            .is_some_and(|s| docket_notify::verify_signature(secret.as_bytes(), &body, &s));
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        store.lock().unwrap().push(Delivery {
            signed,
            body: value,
        });
        if stream
            .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    }
}

impl Receiver {
    /// Waits until deliveries of every kind in `kinds` arrived (10 s at most); returns them all.
    pub async fn wait_for(&self, kinds: &[&str]) -> Vec<Delivery> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let got = self.received.lock().unwrap().clone();
            let missing: Vec<_> = kinds
                .iter()
                .filter(|k| !got.iter().any(|d| d.body["kind"] == **k))
                .collect();
            if missing.is_empty() {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no notification of kinds {missing:?}; got {got:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
