//! What both transports share: the [`Handler`] a service implements, the one path every request
//! — a command or an audit query — takes from bytes to a [`BusRequest`] or [`QueryRequest`] and
//! from a result back to bytes ([`dispatch`]), the [`Transport`] clients send through, and the
//! typed [`Client`].

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use bytes::Bytes;
use docket_domain::{Actor, CommandKind};
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use crate::actor;
use crate::audit::{AuditAnswer, AuditQuery, Query, QueryKind};
use crate::catalogue::Endpoint;
use crate::codec::{self, CommandReply, ContentType};
use crate::command::DomainCommand;
use crate::error::{codes, BusError};
use crate::headers::{self, Headers};
use crate::token::{TokenIssuer, TokenVerifier};

/// Largest request body a service reads, in bytes; a larger one is answered `too_large`
/// unread. Well above any valid command (free text is capped at 10,000 characters per field)
/// and well below NATS's default 1 MiB `max_payload`.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A decoded request, as a handler sees it: never bytes, always a command of the endpoint's
/// kind from an authenticated actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusRequest {
    /// The command's catalogue entry (the endpoint it came in on).
    pub kind: CommandKind,
    /// The command and the stream it addresses.
    pub command: DomainCommand,
    /// Who is acting, from [`actor::authenticate`].
    pub actor: Actor,
    /// The caller's idempotency key, if it sent one.
    pub idempotency_key: Option<String>,
    /// The log position the service must have read before deciding ([`headers::AFTER`]).
    pub after: Option<u64>,
    /// The request's encoding; the reply uses the same.
    pub content_type: ContentType,
}

/// A decoded audit query, as a handler sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryRequest {
    /// The query, of the endpoint's kind.
    pub query: AuditQuery,
    /// Who is asking, if the request carried a `Docket-Actor` token (it verified: a bad one is
    /// refused before the handler). Queries do not need one (`docs/api.md`).
    pub actor: Option<Actor>,
    /// The request's encoding; the reply uses the same.
    pub content_type: ContentType,
}

/// What a service implements: one decoded command (or query) in, its result out. Errors become
/// structured error replies; a panic becomes an `internal` error reply.
pub trait Handler: Send + Sync + 'static {
    /// Whose actor tokens this handler accepts: every request's `Docket-Actor` is verified with
    /// it before the body is read.
    fn actors(&self) -> &TokenVerifier;

    /// Handles one command.
    fn handle(
        &self,
        request: BusRequest,
    ) -> impl Future<Output = Result<CommandReply, BusError>> + Send;

    /// Answers one audit query. Only the audit service answers them; the others keep this
    /// default, which cannot be reached through the catalogue (queries go to `Service::Audit`).
    fn query(
        &self,
        request: QueryRequest,
    ) -> impl Future<Output = Result<AuditAnswer, BusError>> + Send {
        let kind = request.query.kind();
        async move { Err(BusError::unknown_command(&format!("audit.{kind}"))) }
    }
}

impl<H: Handler> Handler for Arc<H> {
    fn actors(&self) -> &TokenVerifier {
        H::actors(self)
    }

    fn handle(
        &self,
        request: BusRequest,
    ) -> impl Future<Output = Result<CommandReply, BusError>> + Send {
        H::handle(self, request)
    }

    fn query(
        &self,
        request: QueryRequest,
    ) -> impl Future<Output = Result<AuditAnswer, BusError>> + Send {
        H::query(self, request)
    }
}

/// A reply as it travels: headers and body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RawReply {
    /// `Content-Type`, `Docket-Status` and, on errors, `Nats-Service-Error(-Code)`.
    pub headers: Headers,
    /// A [`CommandReply`], a query's answer or a [`BusError`], in the content type of the
    /// headers.
    pub body: Bytes,
}

impl RawReply {
    /// The reply for a handler's result, in `content_type`.
    pub fn from_result<T: Serialize>(
        result: Result<T, BusError>,
        content_type: ContentType,
    ) -> Self {
        let err = match result {
            Ok(reply) => match codec::encode_value(&reply, content_type) {
                Ok(body) => {
                    return RawReply {
                        headers: Headers::new()
                            .with(headers::CONTENT_TYPE, content_type.as_str())
                            .with(headers::STATUS, headers::STATUS_OK),
                        body: Bytes::from(body),
                    }
                }
                Err(err) => err,
            },
            Err(err) => err,
        };
        RawReply::from_error(&err, content_type)
    }

    /// The reply for an error, in `content_type`.
    pub fn from_error(err: &BusError, content_type: ContentType) -> Self {
        let headers = Headers::new()
            .with(headers::CONTENT_TYPE, content_type.as_str())
            .with(headers::STATUS, headers::STATUS_ERROR)
            .with(headers::NATS_SERVICE_ERROR, err.message.as_str())
            .with(headers::NATS_SERVICE_ERROR_CODE, err.status().to_string());
        let body = match codec::encode_value(err, content_type) {
            Ok(body) => body,
            // Encoding a struct of three strings cannot fail in practice; if it ever does, the
            // headers still say what happened.
            Err(_) => {
                br#"{"code":"internal","message":"cannot encode the error","details":{}}"#.to_vec()
            }
        };
        RawReply {
            headers,
            body: Bytes::from(body),
        }
    }

    /// True when `Docket-Status` is `ok`.
    pub fn is_ok(&self) -> bool {
        self.headers.get(headers::STATUS) == Some(headers::STATUS_OK)
    }

    /// Reads the reply: a [`CommandReply`], or the [`BusError`] it carries. A reply without
    /// `Docket-Status` did not come from a Docket service and is `internal`.
    pub fn into_result(self) -> Result<CommandReply, BusError> {
        self.into_answer()
    }

    /// Reads the reply as `T` (a query's answer), or the [`BusError`] it carries.
    pub fn into_answer<T: DeserializeOwned>(self) -> Result<T, BusError> {
        let content_type = ContentType::from_header(self.headers.get(headers::CONTENT_TYPE))?;
        match self.headers.get(headers::STATUS) {
            Some(headers::STATUS_OK) => codec::decode_value(&self.body, content_type)
                .map_err(|reason| unreadable("reply", reason)),
            Some(headers::STATUS_ERROR) => Err(codec::decode_value(&self.body, content_type)
                .unwrap_or_else(|reason| unreadable("error reply", reason))),
            other => Err(BusError::internal(format!(
                "reply without a valid {} header: {other:?}",
                headers::STATUS
            ))),
        }
    }
}

fn unreadable(what: &str, reason: String) -> BusError {
    BusError::internal(format!("cannot read the {what}: {reason}"))
        .with_details(json!({ "reason": reason }))
}

/// The one server-side path, shared by both transports so that they behave identically: reads
/// the content type, the size, the actor, the idempotency key and the body (in that order, so an
/// unauthenticated body is never parsed), calls the handler (`command` for a command, `query`
/// for an audit query), and encodes its result or the first error. Never panics: a panicking
/// handler is answered `internal`.
pub(crate) async fn dispatch<C, Fc, Q, Fq>(
    endpoint: Endpoint,
    headers: &Headers,
    body: &[u8],
    actors: &TokenVerifier,
    command: C,
    query: Q,
) -> RawReply
where
    C: FnOnce(BusRequest) -> Fc,
    Fc: Future<Output = Result<CommandReply, BusError>>,
    Q: FnOnce(QueryRequest) -> Fq,
    Fq: Future<Output = Result<AuditAnswer, BusError>>,
{
    let content_type = match ContentType::from_header(headers.get(headers::CONTENT_TYPE)) {
        Ok(ct) => ct,
        // The reply cannot mirror an encoding we do not speak: JSON, the default.
        Err(err) => return RawReply::from_error(&err, ContentType::Json),
    };
    match endpoint {
        Endpoint::Command(kind) => {
            let request = match prepare(kind, content_type, headers, body, actors) {
                Ok(request) => request,
                Err(err) => return refused(endpoint, &err, content_type),
            };
            let result = guarded(endpoint, command(request)).await;
            RawReply::from_result(result, content_type)
        }
        Endpoint::Query(kind) => {
            let request = match prepare_query(kind, content_type, headers, body, actors) {
                Ok(request) => request,
                Err(err) => return refused(endpoint, &err, content_type),
            };
            let result = guarded(endpoint, query(request)).await.and_then(|answer| {
                if answer.kind() == kind {
                    Ok(answer)
                } else {
                    Err(BusError::internal(format!(
                        "the handler answered audit.{kind} with an answer to audit.{}",
                        answer.kind()
                    )))
                }
            });
            RawReply::from_result(result, content_type)
        }
    }
}

fn refused(endpoint: Endpoint, err: &BusError, content_type: ContentType) -> RawReply {
    tracing::debug!(%endpoint, code = %err.code, "request refused before the handler");
    RawReply::from_error(err, content_type)
}

/// Runs a handler's future, answering a panic with `internal`.
async fn guarded<T, F>(endpoint: Endpoint, call: F) -> Result<T, BusError>
where
    F: Future<Output = Result<T, BusError>>,
{
    let result = match AssertUnwindSafe(call).catch_unwind().await {
        Ok(result) => result,
        Err(_) => {
            tracing::error!(%endpoint, "handler panicked");
            Err(BusError::internal(format!(
                "the handler of {endpoint} failed"
            )))
        }
    };
    if let Err(err) = &result {
        tracing::debug!(%endpoint, code = %err.code, "request refused");
    }
    result
}

fn check_size(body: &[u8]) -> Result<(), BusError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BusError::new(
            codes::TOO_LARGE,
            format!(
                "request body of {} bytes exceeds the limit of {MAX_BODY_BYTES} bytes",
                body.len()
            ),
        )
        .with_details(json!({ "size": body.len(), "limit": MAX_BODY_BYTES })));
    }
    Ok(())
}

fn prepare(
    kind: CommandKind,
    content_type: ContentType,
    headers: &Headers,
    body: &[u8],
    actors: &TokenVerifier,
) -> Result<BusRequest, BusError> {
    check_size(body)?;
    let actor = actor::authenticate(headers, actors, crate::token::now_secs())?;
    let idempotency_key = actor::idempotency_key(headers)?;
    let after = actor::after(headers)?;
    let command = codec::decode_command(kind, content_type, body)?;
    Ok(BusRequest {
        kind,
        command,
        actor,
        idempotency_key,
        after,
        content_type,
    })
}

/// A query's request: the same size limit; the actor only if a token is sent (and then it must
/// verify); no idempotency key, as a query changes nothing.
fn prepare_query(
    kind: QueryKind,
    content_type: ContentType,
    headers: &Headers,
    body: &[u8],
    actors: &TokenVerifier,
) -> Result<QueryRequest, BusError> {
    check_size(body)?;
    let actor = match headers.get(headers::ACTOR) {
        Some(_) => Some(actor::authenticate(
            headers,
            actors,
            crate::token::now_secs(),
        )?),
        None => None,
    };
    fn read<T: DeserializeOwned>(
        kind: QueryKind,
        body: &[u8],
        content_type: ContentType,
    ) -> Result<T, BusError> {
        // An empty JSON body is the empty object: `checkpoint` needs no field.
        let body: &[u8] =
            if content_type == ContentType::Json && body.iter().all(u8::is_ascii_whitespace) {
                b"{}"
            } else {
                body
            };
        codec::decode_value(body, content_type).map_err(|reason| {
            BusError::bad_request(format!("the body does not read as audit.{kind}: {reason}"))
                .with_details(json!({ "reason": reason }))
        })
    }
    let query = match kind {
        QueryKind::Checkpoint => AuditQuery::Checkpoint(read(kind, body, content_type)?),
        QueryKind::InclusionProof => AuditQuery::InclusionProof(read(kind, body, content_type)?),
        QueryKind::ConsistencyProof => {
            AuditQuery::ConsistencyProof(read(kind, body, content_type)?)
        }
        QueryKind::Receipt => AuditQuery::Receipt(read(kind, body, content_type)?),
    };
    Ok(QueryRequest {
        query,
        actor,
        content_type,
    })
}

/// Sends raw requests to Docket services: over NATS ([`crate::NatsTransport`]) or in process
/// ([`crate::LocalBus`]). Both answer a subject outside the catalogue with `unknown_command`
/// and a command whose service is not running with `unavailable`.
pub trait Transport: Send + Sync {
    /// Sends one request and waits for its reply.
    fn request(
        &self,
        subject: &str,
        headers: Headers,
        body: Bytes,
    ) -> impl Future<Output = Result<RawReply, BusError>> + Send;
}

impl<T: Transport + ?Sized> Transport for &T {
    fn request(
        &self,
        subject: &str,
        headers: Headers,
        body: Bytes,
    ) -> impl Future<Output = Result<RawReply, BusError>> + Send {
        T::request(self, subject, headers, body)
    }
}

impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn request(
        &self,
        subject: &str,
        headers: Headers,
        body: Bytes,
    ) -> impl Future<Output = Result<RawReply, BusError>> + Send {
        T::request(self, subject, headers, body)
    }
}

/// A typed client: domain commands in, [`CommandReply`] or [`BusError`] out.
#[derive(Clone, Debug)]
pub struct Client<T> {
    transport: T,
    issuer: Option<TokenIssuer>,
}

impl<T: Transport> Client<T> {
    /// A client over `transport` that signs each request's actor token with `issuer`.
    pub fn new(transport: T, issuer: TokenIssuer) -> Self {
        Client {
            transport,
            issuer: Some(issuer),
        }
    }

    /// A client without the actor-token key: commands it sends carry the unsigned
    /// `<person>/<role>` claim, which services refuse (for tests of that refusal); audit queries
    /// sent without an actor need no key.
    pub fn unsigned(transport: T) -> Self {
        Client {
            transport,
            issuer: None,
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Sends `command` as `actor`, encoded as `content_type`, with an optional idempotency key
    /// (send the same key again to retry safely).
    pub async fn send(
        &self,
        actor: &Actor,
        command: &DomainCommand,
        content_type: ContentType,
        idempotency_key: Option<&str>,
    ) -> Result<CommandReply, BusError> {
        self.send_after(actor, command, content_type, idempotency_key, None)
            .await
    }

    /// Like [`Client::send`], decided only once the service has read the log up to `after`
    /// (usually the `position` of an earlier reply): read your writes across services.
    pub async fn send_after(
        &self,
        actor: &Actor,
        command: &DomainCommand,
        content_type: ContentType,
        idempotency_key: Option<&str>,
        after: Option<u64>,
    ) -> Result<CommandReply, BusError> {
        let (kind, body) = codec::encode_command(command, content_type)?;
        let mut headers = Headers::new()
            .with(headers::CONTENT_TYPE, content_type.as_str())
            .with(
                headers::ACTOR,
                match &self.issuer {
                    Some(issuer) => actor::actor_header(issuer, actor),
                    None => actor::actor_claim(actor),
                },
            );
        if let Some(key) = idempotency_key {
            headers.insert(headers::IDEMPOTENCY_KEY, key);
        }
        if let Some(after) = after {
            headers.insert(headers::AFTER, after.to_string());
        }
        let subject = crate::catalogue::subject(kind);
        self.transport
            .request(&subject, headers, body)
            .await?
            .into_result()
    }

    /// Asks an audit query, as `actor` if given (queries need no actor), in JSON, and reads its
    /// typed answer.
    pub async fn query<Q: Query>(
        &self,
        actor: Option<&Actor>,
        request: &Q,
    ) -> Result<Q::Answer, BusError> {
        let content_type = ContentType::Json;
        let body = codec::encode_value(request, content_type)?;
        let mut headers = Headers::new().with(headers::CONTENT_TYPE, content_type.as_str());
        if let Some(actor) = actor {
            headers.insert(
                headers::ACTOR,
                match &self.issuer {
                    Some(issuer) => actor::actor_header(issuer, actor),
                    None => actor::actor_claim(actor),
                },
            );
        }
        self.transport
            .request(&Q::KIND.subject(), headers, Bytes::from(body))
            .await?
            .into_answer()
    }
}
