//! The audit routes of the HTTP endpoint: the latest signed checkpoint, inclusion and
//! consistency proofs from the checkpointer's tree, and a receipt for any position — what an
//! auditor or a requester needs to check the log without trusting the operator.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use docket_audit::CheckpointerHandle;
use docket_log::file::FileLog;
use docket_log::EventLog;
use serde::Deserialize;
use serde_json::json;

/// What the audit routes need.
#[derive(Clone, Debug)]
pub(crate) struct AuditApi {
    /// The running checkpointer.
    pub(crate) checkpointer: CheckpointerHandle,
    /// The log, to read a commit for its receipt.
    pub(crate) log: FileLog,
}

/// How long a request for a new checkpoint may wait.
const WAIT: Duration = Duration::from_secs(10);

pub(crate) fn router(api: AuditApi) -> Router {
    Router::new()
        .route("/api/v1/audit/checkpoint", get(checkpoint))
        .route("/api/v1/audit/inclusion", get(inclusion))
        .route("/api/v1/audit/consistency", get(consistency))
        .route("/api/v1/audit/receipt", get(receipt))
        .with_state(api)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({ "code": code, "message": message.into(), "details": {} });
    (status, Json(body)).into_response()
}

/// Refuses positions and sizes the log has not reached, so no request waits for ever.
async fn within_head(api: &AuditApi, what: &str, value: u64) -> Result<(), Response> {
    let head = api.log.head().await.map_err(|e| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        )
    })?;
    if value == 0 || value > head {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{what} {value} is outside the log (positions 1 to {head})"),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct CheckpointQuery {
    /// A position the checkpoint must cover (a new one is signed if needed).
    covering: Option<u64>,
}

/// `GET /api/v1/audit/checkpoint[?covering=P]`: the latest signed checkpoint note, as
/// `text/plain` (the C2SP signed-note text).
async fn checkpoint(State(api): State<AuditApi>, Query(q): Query<CheckpointQuery>) -> Response {
    let signed = match q.covering {
        Some(position) => {
            if let Err(r) = within_head(&api, "position", position).await {
                return r;
            }
            match tokio::time::timeout(WAIT, api.checkpointer.checkpoint_covering(position)).await {
                Ok(Ok(signed)) => signed,
                Ok(Err(e)) => {
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        e.to_string(),
                    )
                }
                Err(_) => {
                    return error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "no checkpoint could be signed in time",
                    )
                }
            }
        }
        None => match api.checkpointer.latest() {
            Some(signed) => signed,
            None => {
                return error(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no checkpoint has been signed yet",
                )
            }
        },
    };
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        signed.note,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct InclusionQuery {
    position: u64,
    size: u64,
}

/// `GET /api/v1/audit/inclusion?position=P&size=N`: the proof that commit P is leaf P-1 of the
/// tree of N commits.
async fn inclusion(State(api): State<AuditApi>, Query(q): Query<InclusionQuery>) -> Response {
    if let Err(r) = within_head(&api, "size", q.size).await {
        return r;
    }
    let answer = async {
        api.checkpointer.wait_for_size(q.size).await?;
        let leaf = api.checkpointer.leaf(q.position).await?;
        let root = api.checkpointer.root_at(q.size).await?;
        let proof = api.checkpointer.inclusion_proof(q.position, q.size).await?;
        Ok::<_, docket_audit::AuditError>(json!({
            "position": q.position,
            "size": q.size,
            "leaf_hash": leaf.to_string(),
            "root": root.to_string(),
            "proof": proof.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }))
    };
    match tokio::time::timeout(WAIT, answer).await {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the tree is behind",
        ),
    }
}

#[derive(Debug, Deserialize)]
struct ConsistencyQuery {
    old: u64,
    new: u64,
}

/// `GET /api/v1/audit/consistency?old=M&new=N`: the proof that the tree of N commits extends
/// the tree of M.
async fn consistency(State(api): State<AuditApi>, Query(q): Query<ConsistencyQuery>) -> Response {
    if let Err(r) = within_head(&api, "new size", q.new).await {
        return r;
    }
    let answer = async {
        api.checkpointer.wait_for_size(q.new).await?;
        let proof = api.checkpointer.consistency_proof(q.old, q.new).await?;
        Ok::<_, docket_audit::AuditError>(json!({
            "old": q.old,
            "new": q.new,
            "old_root": api.checkpointer.root_at(q.old).await?.to_string(),
            "new_root": api.checkpointer.root_at(q.new).await?.to_string(),
            "proof": proof.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }))
    };
    match tokio::time::timeout(WAIT, answer).await {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(e)) => error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the tree is behind",
        ),
    }
}

#[derive(Debug, Deserialize)]
struct ReceiptQuery {
    position: u64,
}

/// `GET /api/v1/audit/receipt?position=P`: a receipt for any commit.
async fn receipt(State(api): State<AuditApi>, Query(q): Query<ReceiptQuery>) -> Response {
    if let Err(r) = within_head(&api, "position", q.position).await {
        return r;
    }
    let answer = async {
        let commit = api
            .log
            .read_all(q.position - 1, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| {
                docket_audit::AuditError::Receipt(format!("commit {} not found", q.position))
            })?;
        docket_audit::Receipt::build(&api.checkpointer, &commit).await
    };
    match tokio::time::timeout(WAIT, answer).await {
        Ok(Ok(receipt)) => Json(receipt).into_response(),
        Ok(Err(e)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no checkpoint could be signed in time",
        ),
    }
}
