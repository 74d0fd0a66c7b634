//! `docket send` and `docket commands`: talking to a running system over NATS, or over the
//! embedded deployment's HTTP endpoint, with the same headers and bodies.

use std::io::Write;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use docket_bus::{headers, BusError, Headers, NatsTransport, RawReply, Service, Transport};
use docket_domain::CommandKind;
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Options of `docket send`.
#[derive(Debug, clap::Args)]
#[command(after_help = SEND_HELP)]
pub(crate) struct SendArgs {
    /// The command, e.g. `case.open` (`docket commands` lists them all).
    command: String,
    #[command(flatten)]
    options: SendOptions,
}

/// `docket <aggregate> <command>`: the same as `docket send <aggregate>.<command>`.
#[derive(Debug, clap::Args)]
#[command(after_help = SEND_HELP)]
pub(crate) struct AggregateArgs {
    /// The command of this aggregate (`docket commands` lists them all).
    command: String,
    #[command(flatten)]
    options: SendOptions,
}

impl AggregateArgs {
    /// The `docket send` this stands for.
    pub(crate) fn into_send(self, aggregate: &str) -> SendArgs {
        SendArgs {
            command: format!("{aggregate}.{}", self.command.replace('-', "_")),
            options: self.options,
        }
    }
}

const SEND_HELP: &str = "Example:\n  docket send case.attach_record --as 3f0c…/intake_clerk \\\n    --set case=<case id> --set record=<uuid> --set source=criminal \\\n    --set reference='NCIC 2024-1' --set content_hash=<64 hex digits>\n  (the same as: docket case attach-record --as … --set …)\n\nThe fields of every command are in docs/events.md and docs/api.md.";

/// How and as whom a command is sent.
#[derive(Debug, clap::Args)]
pub(crate) struct SendOptions {
    /// Who is acting: `<person uuid>/<role>`; the request carries a token for it signed with
    /// the actor-token key (--actor-key).
    #[arg(long = "as", env = "DOCKET_ACTOR", required_unless_present = "token")]
    actor: Option<String>,
    /// A signed actor token to send as it is (from `docket token issue` or another issuer),
    /// instead of --as.
    #[arg(
        long,
        env = "DOCKET_ACTOR_TOKEN",
        conflicts_with = "actor",
        hide_env_values = true
    )]
    token: Option<String>,
    #[command(flatten)]
    key: crate::tokens::IssuerArgs,
    /// A field of the body: `name=value`; the value is read as JSON if it parses, else as text.
    /// Repeat for each field.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    fields: Vec<String>,
    /// The whole JSON body (fields given with --set are added to it). `@path` reads a file.
    #[arg(long)]
    json: Option<String>,
    /// Idempotency key: send the same one again to retry safely.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Decide only once the service has read the log up to this position (the `position` of an
    /// earlier reply), so the command sees that earlier write even if another service made it.
    #[arg(long, value_name = "POSITION")]
    after: Option<u64>,
    /// Send over NATS (comma-separated URLs) instead of HTTP.
    #[arg(long, env = "DOCKET_NATS", conflicts_with = "http")]
    nats: Option<String>,
    /// The embedded deployment's HTTP endpoint.
    #[arg(long, env = "DOCKET_HTTP_URL", default_value = "http://127.0.0.1:7400")]
    http: String,
}

/// Prints every command with its subject and service.
pub(crate) fn print_commands() {
    println!("{:<34} {:<12} subject", "command", "service");
    for kind in CommandKind::ALL {
        let service = Service::ALL
            .iter()
            .find(|s| s.commands().any(|c| c == *kind))
            .map_or("-", |s| s.name());
        println!(
            "{:<34} {:<12} {}",
            kind.name(),
            service,
            docket_bus::subject(*kind)
        );
    }
}

/// Builds the JSON body from `--json` and `--set`.
fn body(args: &SendOptions) -> Result<Value> {
    let mut object = match &args.json {
        None => Map::new(),
        Some(text) => {
            let text = match text.strip_prefix('@') {
                Some(path) => {
                    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?
                }
                None => text.clone(),
            };
            match serde_json::from_str::<Value>(&text).context("--json is not JSON")? {
                Value::Object(map) => map,
                other => bail!("--json must be a JSON object, not {other}"),
            }
        }
    };
    for field in &args.fields {
        let (name, value) = field
            .split_once('=')
            .ok_or_else(|| anyhow!("--set {field:?}: expected NAME=VALUE"))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        object.insert(name.to_owned(), value);
    }
    Ok(Value::Object(object))
}

/// `docket send`.
pub(crate) async fn send(args: SendArgs) -> Result<()> {
    let kind = CommandKind::ALL
        .iter()
        .find(|k| k.name() == args.command)
        .copied()
        .ok_or_else(|| {
            anyhow!(
                "unknown command {:?}; `docket commands` lists them",
                args.command
            )
        })?;
    let options = &args.options;
    let body = Bytes::from(serde_json::to_vec(&body(options)?)?);
    let token = match (&options.token, &options.actor) {
        (Some(token), _) => token.clone(),
        (None, Some(actor)) => {
            let actor = docket_bus::actor::parse_claim(actor)
                .map_err(|e| anyhow!("--as: {}", e.message))?;
            options.key.issuer()?.for_request(&actor)
        }
        (None, None) => bail!("who is acting? pass --as <person uuid>/<role> (or --token)"),
    };
    let mut request_headers = Headers::new()
        .with(headers::CONTENT_TYPE, "application/json")
        .with(headers::ACTOR, token);
    if let Some(key) = &options.idempotency_key {
        request_headers.insert(headers::IDEMPOTENCY_KEY, key.clone());
    }
    if let Some(after) = options.after {
        request_headers.insert(headers::AFTER, after.to_string());
    }
    let subject = docket_bus::subject(kind);
    let reply = match &options.nats {
        Some(url) => {
            let client = docket_bus::connect(url, "docket-cli").await?;
            NatsTransport::new(client)
                .request(&subject, request_headers, body)
                .await
        }
        None => {
            HttpTransport::new(&options.http)?
                .request(&subject, request_headers, body)
                .await
        }
    };
    let reply = reply.map_err(|e| anyhow!("{}: {}", e.code, e.message))?;
    let value: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    if reply.headers.get(headers::STATUS) == Some(headers::STATUS_ERROR) {
        bail!(
            "{} refused: {}",
            args.command,
            value.get("code").and_then(Value::as_str).unwrap_or("error")
        );
    }
    Ok(())
}

/// The bus over the embedded deployment's HTTP endpoint: one HTTP/1.1 request per command.
#[derive(Clone, Debug)]
pub(crate) struct HttpTransport {
    host: String,
    base_path: String,
}

impl HttpTransport {
    /// A transport to `http://host:port[/path]`.
    pub(crate) fn new(url: &str) -> Result<Self> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            anyhow!("{url:?}: only http:// URLs are supported (the endpoint is local)")
        })?;
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        if host.is_empty() {
            bail!("{url:?} has no host");
        }
        Ok(HttpTransport {
            host: host.to_owned(),
            base_path: format!("/{}", path.trim_end_matches('/'))
                .trim_end_matches('/')
                .to_owned(),
        })
    }

    async fn exchange(
        &self,
        path: &str,
        request_headers: &Headers,
        body: &[u8],
    ) -> std::io::Result<Vec<u8>> {
        let mut stream = tokio::net::TcpStream::connect(&self.host).await?;
        let mut head = format!(
            "POST {}{path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.base_path,
            self.host,
            body.len()
        );
        for (name, value) in request_headers.iter() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok(response)
    }
}

/// Splits an HTTP/1.1 response into status, headers and body (plain or chunked).
pub(crate) fn parse_response(raw: &[u8]) -> Result<(u16, Headers, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the response has no end of headers")?;
    let head =
        std::str::from_utf8(&raw[..split]).map_err(|_| "the response headers are not text")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("the response has no status")?;
    let mut parsed = Headers::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            parsed.append(name.trim(), value.trim());
        }
    }
    let mut body = raw[split + 4..].to_vec();
    let chunked = parsed
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("truncated chunk size")?;
            let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| "bad chunk size")?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            let chunk = rest.get(..size).ok_or("truncated chunk")?;
            out.extend_from_slice(chunk);
            rest = rest.get(size + 2..).ok_or("truncated chunk")?;
        }
        body = out;
    }
    Ok((status, parsed, body))
}

impl Transport for HttpTransport {
    async fn request(
        &self,
        subject: &str,
        request_headers: Headers,
        body: Bytes,
    ) -> Result<RawReply, BusError> {
        let kind =
            docket_bus::parse_subject(subject).ok_or_else(|| BusError::unknown_command(subject))?;
        let path = format!("/api/v1/commands/{}", kind.name());
        let raw = self
            .exchange(&path, &request_headers, &body)
            .await
            .map_err(|e| {
                BusError::unavailable(format!(
                    "cannot reach the HTTP endpoint at {}: {e}",
                    self.host
                ))
            })?;
        let (_, reply_headers, reply_body) = parse_response(&raw).map_err(BusError::unavailable)?;
        let mut reply = Headers::new();
        for name in [
            headers::CONTENT_TYPE,
            headers::STATUS,
            headers::NATS_SERVICE_ERROR,
            headers::NATS_SERVICE_ERROR_CODE,
        ] {
            if let Some(v) = reply_headers.get(name) {
                reply.insert(name, v);
            }
        }
        Ok(RawReply {
            headers: reply,
            body: Bytes::from(reply_body),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_plain_and_chunked() {
        let (status, h, body) = parse_response(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
        )
        .unwrap();
        assert_eq!(
            (status, h.get("Content-Type"), body.as_slice()),
            (200, Some("application/json"), &b"{}"[..])
        );
        let (status, _, body) =
            parse_response(b"HTTP/1.1 409 Conflict\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!((status, body.as_slice()), (409, &b"abcde"[..]));
        assert!(parse_response(b"HTTP/1.1 200").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }

    #[test]
    fn urls_are_checked() {
        assert!(HttpTransport::new("http://127.0.0.1:7400").is_ok());
        assert!(HttpTransport::new("https://x").is_err());
        assert!(HttpTransport::new("http://").is_err());
    }
}
