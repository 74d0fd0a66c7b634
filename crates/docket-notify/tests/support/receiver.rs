//! A real webhook receiver on 127.0.0.1: a small HTTP/1.1 server on a tokio `TcpListener` that
//! checks each request's HMAC signature (computed here, independently of the crate), records
//! it, and answers as the test tells it: a status, slowly, or by hanging up.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// How to answer one request.
#[derive(Clone, Copy, Debug)]
pub enum Reply {
    /// Answer with this status at once.
    Status(u16),
    /// Wait, then answer with this status.
    Slow(Duration, u16),
    /// Close the connection without answering.
    HangUp,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Hit {
    /// `Docket-Notification-Id`.
    pub id: String,
    /// The body, parsed.
    pub body: serde_json::Value,
    /// The body's bytes.
    pub raw: Vec<u8>,
    /// The HMAC of the body under the shared secret matched `Docket-Signature`.
    pub signature_ok: bool,
    /// `Content-Type`.
    pub content_type: String,
    /// The request line's method and path.
    pub request_line: String,
    /// When it arrived.
    pub received: Instant,
    /// The status answered and when, once answered.
    pub answered: Option<(u16, Instant)>,
}

/// Decides the reply from the request and how many earlier requests had the same id.
pub type Behaviour = Arc<dyn Fn(&Hit, usize) -> Reply + Send + Sync>;

struct Inner {
    secret: Vec<u8>,
    hits: Mutex<Vec<Hit>>,
    behaviour: Mutex<Behaviour>,
}

/// The receiver; stops when dropped (its accept task is aborted).
pub struct Receiver {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Starts a receiver answering 200 to everything.
    pub async fn start(secret: &str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            secret: secret.as_bytes().to_vec(),
            hits: Mutex::new(Vec::new()),
            behaviour: Mutex::new(Arc::new(|_: &Hit, _: usize| Reply::Status(200))),
        });
        let accept_inner = inner.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                connections.spawn(serve(socket, accept_inner.clone()));
                while connections.try_join_next().is_some() {}
            }
        });
        Receiver { addr, inner, task }
    }

    /// The webhook URL.
    pub fn url(&self) -> String {
        format!("http://{}/hooks/docket?token=abc", self.addr)
    }

    /// Sets how requests are answered from now on.
    pub fn behave(&self, behaviour: impl Fn(&Hit, usize) -> Reply + Send + Sync + 'static) {
        *self.inner.behaviour.lock().unwrap() = Arc::new(behaviour);
    }

    /// Every request received so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.inner.hits.lock().unwrap().clone()
    }

    /// Requests received per notification id.
    pub fn per_id(&self) -> HashMap<String, Vec<Hit>> {
        let mut out: HashMap<String, Vec<Hit>> = HashMap::new();
        for hit in self.hits() {
            out.entry(hit.id.clone()).or_default().push(hit);
        }
        out
    }
}

/// A URL where nothing listens: a port bound and released.
pub async fn down_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/hook")
}

fn expected_signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Serves one connection: requests one after the other (keep-alive) until the client closes.
async fn serve(mut socket: TcpStream, inner: Arc<Inner>) {
    let mut buffer = Vec::new();
    loop {
        // The head: up to the blank line.
        let head_end = loop {
            if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap().to_owned();
        let headers: HashMap<String, String> = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (name, value) = l.split_once(':').unwrap();
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        assert!(
            !headers.contains_key("transfer-encoding"),
            "the client sends a Content-Length body"
        );
        let length: usize = headers
            .get("content-length")
            .expect("a Content-Length")
            .parse()
            .unwrap();
        while buffer.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let raw = buffer[head_end..head_end + length].to_vec();
        buffer.drain(..head_end + length);

        let signature = headers.get("docket-signature").cloned().unwrap_or_default();
        let hit = Hit {
            id: headers
                .get("docket-notification-id")
                .cloned()
                .unwrap_or_default(),
            body: serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null),
            signature_ok: signature == expected_signature(&inner.secret, &raw),
            content_type: headers.get("content-type").cloned().unwrap_or_default(),
            request_line,
            raw,
            received: Instant::now(),
            answered: None,
        };
        let (index, reply) = {
            let mut hits = inner.hits.lock().unwrap();
            let earlier = hits.iter().filter(|h| h.id == hit.id).count();
            let behaviour = inner.behaviour.lock().unwrap().clone();
            let reply = behaviour(&hit, earlier);
            hits.push(hit);
            (hits.len() - 1, reply)
        };
        let status = match reply {
            Reply::HangUp => return,
            Reply::Status(status) => status,
            Reply::Slow(wait, status) => {
                tokio::time::sleep(wait).await;
                status
            }
        };
        // Successful answers come chunked, the others with a length: the client reads both.
        let response = if (200..300).contains(&status) {
            format!(
                "HTTP/1.1 {status} OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
            )
        } else {
            format!("HTTP/1.1 {status} Nope\r\nContent-Length: 4\r\n\r\nnope")
        };
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        inner.hits.lock().unwrap()[index].answered = Some((status, Instant::now()));
    }
}
