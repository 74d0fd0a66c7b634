//! The NATS transport: a service registered as a NATS micro service (so `$SRV.PING`, `$SRV.INFO`
//! and `$SRV.STATS` see it) whose instances share a queue group, and the client side that sends
//! requests with a timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::client::RequestErrorKind;
use async_nats::service::ServiceExt;
use async_nats::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::catalogue::{Endpoint, Service, SUBJECT_PREFIX};
use crate::error::{codes, BusError};
use crate::headers::Headers;
use crate::transport::{dispatch, Handler, RawReply, Transport};

/// Most requests one service instance handles at once; further requests wait in the
/// subscription until one finishes.
pub const MAX_IN_FLIGHT: u32 = 256;

/// How long [`NatsTransport`] waits for a reply by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A running service instance. [`ServiceHandle::stop`] stops it gracefully; dropping the handle
/// stops taking requests without waiting for those in flight.
#[derive(Debug)]
pub struct ServiceHandle {
    service: Option<async_nats::service::Service>,
    serving: Option<JoinHandle<()>>,
    id: String,
    name: Service,
}

impl ServiceHandle {
    /// The micro service instance id (as `$SRV.INFO` reports it).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The service served.
    pub fn service(&self) -> Service {
        self.name
    }

    /// Stops taking requests (unsubscribes every endpoint and leaves the queue group, so the
    /// other instances take the load), answers the requests already received, waits for every
    /// request in flight to be answered, and deregisters from the micro service API.
    pub async fn stop(mut self) -> Result<(), BusError> {
        if let Some(service) = self.service.take() {
            service
                .stop()
                .await
                .map_err(|e| BusError::unavailable(format!("cannot stop the service: {e}")))?;
        }
        if let Some(serving) = self.serving.take() {
            serving
                .await
                .map_err(|e| BusError::internal(format!("the serving task failed: {e}")))?;
        }
        tracing::info!(service = %self.name, id = %self.id, "service stopped");
        Ok(())
    }
}

impl Drop for ServiceHandle {
    fn drop(&mut self) {
        // Dropping the micro service closes its shutdown channel, which unsubscribes the
        // endpoints; stopping it also ends its PING/INFO/STATS task.
        if let Some(service) = self.service.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = service.stop().await;
                });
            }
        }
    }
}

/// Serves `service`'s commands (or, for `Service::Audit`, its queries) over NATS with
/// `handler`: registers the micro service `docket-<service>` at `version` (semver) with one
/// endpoint per command, named like the command with `_` (`case_open`), or per query
/// (`receipt`), on `docket.cmd.<service>.<endpoint>`, in the queue group `docket-<service>`. Requests are handled concurrently, up to [`MAX_IN_FLIGHT`] at once.
pub async fn serve_nats<H: Handler>(
    client: async_nats::Client,
    service: Service,
    version: &str,
    handler: H,
) -> Result<ServiceHandle, BusError> {
    let errors: Arc<HashMap<String, AtomicU64>> = Arc::new(
        service
            .endpoints()
            .map(|e| (e.name(), AtomicU64::new(0)))
            .collect(),
    );
    let stats_errors = errors.clone();
    let micro = client
        .service_builder()
        .description(format!(
            "Docket {service} service: {} on {}.*",
            if service.queries().next().is_some() {
                "queries"
            } else {
                "commands"
            },
            service.subject_prefix()
        ))
        .queue_group(service.queue_group())
        // Error replies are sent as successful NATS replies with a structured body, so the
        // micro service's own error count stays 0: ours goes into each endpoint's `data`.
        .stats_handler(move |endpoint, _| {
            let errors = stats_errors
                .get(&endpoint)
                .map_or(0, |n| n.load(Ordering::Relaxed));
            json!({ "docket_errors": errors })
        })
        .start(service.micro_name(), version)
        .await
        .map_err(|e| {
            BusError::unavailable(format!("cannot register the {service} service: {e}"))
        })?;
    let endpoints = match add_endpoints(&micro, service).await {
        Ok(endpoints) => endpoints,
        Err(err) => {
            let _ = micro.stop().await;
            return Err(err);
        }
    };
    let id = micro.info().await.id;
    let handler = Arc::new(handler);
    let serving = tokio::spawn(serve(stream::select_all(endpoints), handler, errors));
    tracing::info!(%service, %id, queue_group = %service.queue_group(), "service started");
    Ok(ServiceHandle {
        service: Some(micro),
        serving: Some(serving),
        id,
        name: service,
    })
}

type Requests = stream::BoxStream<'static, (Endpoint, async_nats::service::Request)>;

/// One endpoint per command (or query) of `service`, in the service's group and queue group.
async fn add_endpoints(
    micro: &async_nats::service::Service,
    service: Service,
) -> Result<Vec<Requests>, BusError> {
    let group = micro.group_with_queue_group(service.subject_prefix(), service.queue_group());
    let mut endpoints = Vec::new();
    for endpoint in service.endpoints() {
        let metadata = match endpoint {
            Endpoint::Command(kind) => ("command", kind.name()),
            Endpoint::Query(kind) => ("query", kind.name()),
        };
        let requests = group
            .endpoint_builder()
            .name(endpoint.name())
            .metadata(HashMap::from([(
                metadata.0.to_owned(),
                metadata.1.to_owned(),
            )]))
            .add(endpoint.name())
            .await
            .map_err(|e| {
                BusError::unavailable(format!("cannot add the {endpoint} endpoint: {e}"))
            })?;
        endpoints.push(requests.map(move |request| (endpoint, request)).boxed());
    }
    Ok(endpoints)
}

/// Takes requests until every endpoint is unsubscribed, each in its own task, then waits for
/// those in flight.
async fn serve<H: Handler>(
    mut requests: stream::SelectAll<Requests>,
    handler: Arc<H>,
    errors: Arc<HashMap<String, AtomicU64>>,
) {
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize));
    while let Some((endpoint, request)) = requests.next().await {
        if request.message.reply.is_none() {
            // A command published without a reply subject: its sender could never learn the
            // outcome, so it is not executed.
            tracing::warn!(%endpoint, "request without a reply subject ignored");
            continue;
        }
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let handler = handler.clone();
        let errors = errors.clone();
        tokio::spawn(async move {
            let headers = request
                .message
                .headers
                .as_ref()
                .map(from_nats_headers)
                .unwrap_or_default();
            let reply = dispatch(
                endpoint,
                &headers,
                &request.message.payload,
                handler.actors(),
                |req| handler.handle(req),
                |req| handler.query(req),
            )
            .await;
            if !reply.is_ok() {
                if let Some(n) = errors.get(&endpoint.name()) {
                    n.fetch_add(1, Ordering::Relaxed);
                }
            }
            if let Err(err) = request
                .respond_with_headers(Ok(reply.body), to_nats_headers(&reply.headers))
                .await
            {
                tracing::warn!(%endpoint, error = %err, "cannot send the reply");
            }
            drop(permit);
        });
    }
    // Every permit back means every request taken has been answered.
    let _ = in_flight.acquire_many(MAX_IN_FLIGHT).await;
}

fn from_nats_headers(map: &HeaderMap) -> Headers {
    let mut headers = Headers::new();
    for (name, values) in map.iter() {
        for value in values {
            headers.append(name.as_ref(), value.as_str());
        }
    }
    headers
}

fn to_nats_headers(headers: &Headers) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers.iter() {
        // `Headers` keeps values single-line; a name NATS refuses is dropped, not a panic.
        match (name.parse::<HeaderName>(), value.parse::<HeaderValue>()) {
            (Ok(name), Ok(value)) => map.append(name, value),
            _ => tracing::warn!(header = %name, "header not representable in NATS dropped"),
        }
    }
    map
}

/// Sends requests over a NATS connection, waiting at most `timeout` for each reply.
#[derive(Clone, Debug)]
pub struct NatsTransport {
    client: async_nats::Client,
    timeout: Duration,
}

impl NatsTransport {
    /// A transport over `client`, with the default timeout of 5 s.
    pub fn new(client: async_nats::Client) -> Self {
        NatsTransport {
            client,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same transport with another reply timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The NATS connection.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }
}

impl Transport for NatsTransport {
    async fn request(
        &self,
        subject: &str,
        headers: Headers,
        body: Bytes,
    ) -> Result<RawReply, BusError> {
        // As in process: a command subject outside the catalogue is answered here rather than
        // left to time out with no responder.
        let is_command_subject = subject
            .strip_prefix(SUBJECT_PREFIX)
            .is_some_and(|rest| rest.starts_with('.'));
        if is_command_subject && Endpoint::parse(subject).is_none() {
            return Err(BusError::unknown_command(subject));
        }
        let request = async_nats::Request::new()
            .headers(to_nats_headers(&headers))
            .payload(body)
            .timeout(Some(self.timeout));
        match self.client.send_request(subject.to_owned(), request).await {
            Ok(message) => Ok(RawReply {
                headers: message
                    .headers
                    .as_ref()
                    .map(from_nats_headers)
                    .unwrap_or_default(),
                body: message.payload,
            }),
            Err(err) => Err(match err.kind() {
                RequestErrorKind::NoResponders => BusError::no_responders(subject),
                RequestErrorKind::TimedOut => BusError::unavailable(format!(
                    "no reply to {subject} within {:?}",
                    self.timeout
                ))
                .with_details(json!({ "subject": subject, "reason": "timed_out" })),
                RequestErrorKind::MaxPayloadExceeded => {
                    BusError::new(codes::TOO_LARGE, format!("request to {subject}: {err}"))
                }
                RequestErrorKind::InvalidSubject => BusError::unknown_command(subject),
                _ => BusError::unavailable(format!("request to {subject} failed: {err}"))
                    .with_details(json!({ "subject": subject, "reason": err.to_string() })),
            }),
        }
    }
}

/// A connection to NATS, as the services and the command line hold it. Re-exported so that only
/// `docket-bus` and `docket-log` depend on async-nats.
pub type NatsClient = async_nats::Client;

/// Connects to NATS (`url` may list several servers, comma-separated, and name a NATS user:
/// `nats://user:password@host:port`, read by [`docket_log::jetstream::connect_options`]),
/// naming the connection.
pub async fn connect(url: &str, name: &str) -> Result<NatsClient, BusError> {
    let shown = docket_log::jetstream::redact_url(url);
    let (servers, options) = docket_log::jetstream::connect_options(url)
        .map_err(|e| BusError::unavailable(format!("cannot connect to NATS at {shown}: {e}")))?;
    options
        .name(name)
        .connect(servers.as_slice())
        .await
        .map_err(|e| BusError::unavailable(format!("cannot connect to NATS at {shown}: {e}")))
}
