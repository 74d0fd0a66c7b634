//! The audit routes of the HTTP endpoint: the audit queries over HTTP, sent through the node's
//! in-process bus like the commands endpoint (same decoding, limits and error replies): what an
//! auditor or a requester needs to check the log without trusting the operator.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use docket_bus::{
    headers, BusError, CheckpointAnswer, CheckpointRequest, ConsistencyRequest, ContentType,
    Headers, InclusionRequest, LocalBus, QueryKind, RawReply, ReceiptRequest, Transport,
};
use serde::{Deserialize, Serialize};

use super::error_response;

pub(crate) fn router(bus: LocalBus) -> Router {
    Router::new()
        .route("/api/v1/audit/checkpoint", get(checkpoint))
        .route("/api/v1/audit/inclusion", get(inclusion))
        .route("/api/v1/audit/consistency", get(consistency))
        .route("/api/v1/audit/receipt", get(receipt))
        .with_state(bus)
}

/// Sends the query `kind` with `request` as its JSON body, passing on the caller's
/// `Docket-Actor` if it sent one (queries need none; one sent must verify).
async fn ask<R: Serialize>(
    bus: &LocalBus,
    kind: QueryKind,
    request: &R,
    caller: &HeaderMap,
) -> Result<RawReply, Response> {
    let body = serde_json::to_vec(request).map_err(|e| {
        error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &BusError::internal(format!("cannot encode the query: {e}")),
        )
    })?;
    let mut forwarded = Headers::new().with(headers::CONTENT_TYPE, ContentType::Json.as_str());
    if let Some(actor) = caller.get(headers::ACTOR) {
        match actor.to_str() {
            Ok(actor) => forwarded.insert(headers::ACTOR, actor),
            Err(_) => {
                let error =
                    BusError::bad_request(format!("header {} is not ASCII text", headers::ACTOR));
                return Err(error_response(StatusCode::BAD_REQUEST, &error));
            }
        }
    }
    let reply = bus
        .request(&kind.subject(), forwarded, body.into())
        .await
        .map_err(|error| {
            let status =
                StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error_response(status, &error)
        })?;
    if reply.is_ok() {
        Ok(reply)
    } else {
        Err(super::reply_response(reply))
    }
}

/// `GET /api/v1/audit/checkpoint[?covering=P]`: the signed checkpoint note as `text/plain`.
async fn checkpoint(
    State(bus): State<LocalBus>,
    Query(q): Query<CheckpointRequest>,
    caller: HeaderMap,
) -> Response {
    let reply = match ask(&bus, QueryKind::Checkpoint, &q, &caller).await {
        Ok(reply) => reply,
        Err(response) => return response,
    };
    match reply.into_answer::<CheckpointAnswer>() {
        Ok(answer) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            answer.note,
        )
            .into_response(),
        Err(error) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &error),
    }
}

/// An answer as the bus gave it: JSON.
async fn json<R: Serialize>(
    bus: &LocalBus,
    kind: QueryKind,
    request: &R,
    caller: &HeaderMap,
) -> Response {
    match ask(bus, kind, request, caller).await {
        Ok(reply) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(ContentType::Json.as_str()),
            )],
            reply.body,
        )
            .into_response(),
        Err(response) => response,
    }
}

/// `GET /api/v1/audit/inclusion?position=P&size=N`.
async fn inclusion(
    State(bus): State<LocalBus>,
    Query(q): Query<InclusionRequest>,
    caller: HeaderMap,
) -> Response {
    json(&bus, QueryKind::InclusionProof, &q, &caller).await
}

/// `GET /api/v1/audit/consistency?old=M&new=N`.
async fn consistency(
    State(bus): State<LocalBus>,
    Query(q): Query<ConsistencyRequest>,
    caller: HeaderMap,
) -> Response {
    json(&bus, QueryKind::ConsistencyProof, &q, &caller).await
}

/// The receipt route's query string: a position only. The commit hash a bus caller may send is
/// its own word about its own commit; over HTTP the service reads the commit instead.
#[derive(Debug, Deserialize)]
struct ReceiptQuery {
    position: u64,
}

/// `GET /api/v1/audit/receipt?position=P`.
async fn receipt(
    State(bus): State<LocalBus>,
    Query(q): Query<ReceiptQuery>,
    caller: HeaderMap,
) -> Response {
    let request = ReceiptRequest {
        position: q.position,
        commit_hash: None,
    };
    json(&bus, QueryKind::Receipt, &request, &caller).await
}
