//! The audit routes of the HTTP endpoint, over [`crate::AuditApi`]: what an auditor or
//! a requester needs to check the log without trusting the operator.

use crate::AuditApi;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use docket_bus::{AuditQuery, BusError};
use serde::Deserialize;

pub(crate) fn router(api: AuditApi) -> Router {
    Router::new()
        .route("/api/v1/audit/checkpoint", get(checkpoint))
        .route("/api/v1/audit/inclusion", get(inclusion))
        .route("/api/v1/audit/consistency", get(consistency))
        .route("/api/v1/audit/receipt", get(receipt))
        .with_state(api)
}

fn error(err: &BusError) -> Response {
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(err)).into_response()
}

async fn json_answer(api: &AuditApi, query: AuditQuery) -> Response {
    match api.query(query).await {
        Ok(value) => Json(value).into_response(),
        Err(e) => error(&e),
    }
}

#[derive(Debug, Deserialize)]
struct CheckpointQuery {
    covering: Option<u64>,
}

/// `GET /api/v1/audit/checkpoint[?covering=P]`: the signed checkpoint note as `text/plain`.
async fn checkpoint(State(api): State<AuditApi>, Query(q): Query<CheckpointQuery>) -> Response {
    match api
        .query(AuditQuery::Checkpoint {
            covering: q.covering,
        })
        .await
    {
        Ok(value) => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            value["note"].as_str().unwrap_or_default().to_owned(),
        )
            .into_response(),
        Err(e) => error(&e),
    }
}

#[derive(Debug, Deserialize)]
struct InclusionQuery {
    position: u64,
    size: u64,
}

/// `GET /api/v1/audit/inclusion?position=P&size=N`.
async fn inclusion(State(api): State<AuditApi>, Query(q): Query<InclusionQuery>) -> Response {
    json_answer(
        &api,
        AuditQuery::InclusionProof {
            position: q.position,
            size: q.size,
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
struct ConsistencyQuery {
    old: u64,
    new: u64,
}

/// `GET /api/v1/audit/consistency?old=M&new=N`.
async fn consistency(State(api): State<AuditApi>, Query(q): Query<ConsistencyQuery>) -> Response {
    json_answer(
        &api,
        AuditQuery::ConsistencyProof {
            old: q.old,
            new: q.new,
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
struct ReceiptQuery {
    position: u64,
}

/// `GET /api/v1/audit/receipt?position=P`.
async fn receipt(State(api): State<AuditApi>, Query(q): Query<ReceiptQuery>) -> Response {
    json_answer(
        &api,
        AuditQuery::Receipt {
            position: q.position,
        },
    )
    .await
}
