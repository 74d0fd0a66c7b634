//! `docket send` and `docket commands`: talking to a running system over NATS, or over the
//! embedded deployment's HTTP endpoint, with the same headers and bodies.

use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use docket_bus::{headers, BusError, Headers, NatsTransport, RawReply, Service, Transport};
use docket_domain::CommandKind;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue, USER_AGENT};
use hyper::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::{Map, Value};

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
    let value: Value = serde_json::from_slice(&reply.body).map_err(|e| {
        anyhow!(
            "the reply to {} is not JSON ({e}): {}",
            args.command,
            snippet(&reply.body)
        )
    })?;
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

/// How long a connection to the HTTP endpoint may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a command may wait for its answer: above the 10 s a service may wait for
/// `Docket-After`, so that wait is answered by the service rather than cut short here.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer read; a command's reply is a few hundred bytes.
const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// The bus over the embedded deployment's HTTP endpoint: `POST <base>/api/v1/commands/<name>`
/// with the bus's headers, on one pool of keep-alive connections shared by every request (so a
/// demo run opens as many connections as it has commands in flight, not one per command).
/// Plain HTTP, or HTTPS checked against the system's root certificates.
#[derive(Clone, Debug)]
pub(crate) struct HttpTransport {
    /// The URL as given, without a trailing `/`, for messages and to build request URIs.
    base: String,
    client: HttpClient,
    timeout: Duration,
}

/// One hyper client per scheme, so that a plain `http://` endpoint needs no root certificates.
#[derive(Clone, Debug)]
enum HttpClient {
    Plain(Client<HttpConnector, Full<Bytes>>),
    Tls(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
}

impl HttpTransport {
    /// A transport to `http[s]://host[:port][/path]`.
    pub(crate) fn new(url: &str) -> Result<Self> {
        let base = url.trim().trim_end_matches('/').to_owned();
        let uri: Uri = base
            .parse()
            .map_err(|e| anyhow!("{url:?} is not a URL: {e}"))?;
        let scheme = uri.scheme_str();
        if !matches!(scheme, Some("http" | "https")) {
            bail!("{url:?}: not an http:// or https:// URL");
        }
        if uri.host().is_none_or(str::is_empty) {
            bail!("{url:?} has no host");
        }
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30));
        let client = if scheme == Some("https") {
            http.enforce_http(false);
            // The provider is named rather than taken from rustls's process default, which
            // panics when more than one provider is compiled in.
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
                .map_err(|e| anyhow!("{url}: cannot load the system's root certificates: {e}"))?
                .https_only()
                .enable_http1()
                .wrap_connector(http);
            HttpClient::Tls(builder.build(https))
        } else {
            HttpClient::Plain(builder.build(http))
        };
        Ok(HttpTransport {
            base,
            client,
            timeout: REPLY_TIMEOUT,
        })
    }

    /// The same transport, waiting at most `timeout` for each answer.
    #[cfg(test)]
    fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// One POST: the status, the headers and the body of the answer.
    async fn exchange(
        &self,
        uri: Uri,
        request_headers: &Headers,
        body: Bytes,
    ) -> Result<(hyper::StatusCode, hyper::HeaderMap, Bytes), String> {
        let mut request = Request::post(uri)
            .header(USER_AGENT, concat!("docket/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(body))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        for (name, value) in request_headers.iter() {
            let name = HeaderName::try_from(name).map_err(|e| format!("header {name:?}: {e}"))?;
            let value = HeaderValue::try_from(value).map_err(|e| format!("header {name}: {e}"))?;
            request.headers_mut().append(name, value);
        }
        let response = match &self.client {
            HttpClient::Plain(client) => client.request(request).await,
            HttpClient::Tls(client) => client.request(request).await,
        }
        // hyper's outer errors are terse ("client error (Connect)"): `{:#}` adds their sources.
        .map_err(|e| {
            format!(
                "cannot reach the HTTP endpoint at {}: {:#}",
                self.base,
                anyhow::Error::new(e)
            )
        })?;
        let (parts, body) = response.into_parts();
        // Read to the end, so that the connection goes back to the pool for the next command.
        let body = Limited::new(body, MAX_REPLY_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the answer of {}: {e}", self.base))?
            .to_bytes();
        Ok((parts.status, parts.headers, body))
    }
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
        let uri: Uri = format!("{}/api/v1/commands/{}", self.base, kind.name())
            .parse()
            .map_err(|e| BusError::bad_request(format!("{}: {e}", self.base)))?;
        let (status, reply_headers, reply_body) =
            match tokio::time::timeout(self.timeout, self.exchange(uri, &request_headers, body))
                .await
            {
                Ok(Ok(answer)) => answer,
                Ok(Err(reason)) => return Err(BusError::unavailable(reason)),
                Err(_) => {
                    return Err(BusError::unavailable(format!(
                        "no answer from {} within {:?}",
                        self.base, self.timeout
                    )))
                }
            };
        // Every answer of Docket's endpoint says `Docket-Status`, errors included: without it,
        // something else answered (another server on the port, a proxy's error page).
        if reply_headers.get(headers::STATUS).is_none() {
            return Err(BusError::unavailable(format!(
                "{} answered {status} without a {} header, so it is not a Docket HTTP endpoint: {}",
                self.base,
                headers::STATUS,
                snippet(&reply_body)
            )));
        }
        let mut reply = Headers::new();
        for name in [
            headers::CONTENT_TYPE,
            headers::STATUS,
            headers::NATS_SERVICE_ERROR,
            headers::NATS_SERVICE_ERROR_CODE,
        ] {
            if let Some(v) = reply_headers.get(name).and_then(|v| v.to_str().ok()) {
                reply.insert(name, v);
            }
        }
        Ok(RawReply {
            headers: reply,
            body: reply_body,
        })
    }
}

/// The start of a body, as text, for an error message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None if text.is_empty() => "(empty body)".to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
