//! The embedded deployment's HTTP endpoint: the bus's command catalogue as JSON (or postcard)
//! over HTTP, answered by the same in-process bus the services are registered on.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use docket_bus::{headers, BusError, ContentType, Headers, LocalBus, Transport};
use docket_domain::CommandKind;

/// The routes: `POST /api/v1/commands/{name}`, `GET /healthz`, and the audit routes under
/// `/api/v1/audit/` when a checkpointer runs.
pub(crate) fn router(bus: LocalBus, audit: Option<docket_services::AuditApi>) -> Router {
    let commands = Router::new()
        .route("/api/v1/commands/{name}", post(command))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(bus);
    match audit {
        Some(api) => commands.merge(crate::audit_api::router(api)),
        None => commands,
    }
}

/// Request headers passed on to the bus.
const FORWARDED: [&str; 4] = [
    headers::CONTENT_TYPE,
    headers::ACTOR,
    headers::IDEMPOTENCY_KEY,
    headers::AFTER,
];

async fn command(
    State(bus): State<LocalBus>,
    Path(name): Path<String>,
    request_headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(kind) = CommandKind::ALL.iter().find(|k| k.name() == name) else {
        let error = BusError::unknown_command(&name).with_details(serde_json::json!({
            "known": CommandKind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>(),
        }));
        return error_response(StatusCode::NOT_FOUND, &error);
    };
    let mut forwarded = Headers::new();
    for name in FORWARDED {
        for value in request_headers.get_all(name) {
            match value.to_str() {
                Ok(v) => forwarded.append(name, v),
                Err(_) => {
                    let error = BusError::bad_request(format!("header {name} is not ASCII text"));
                    return error_response(StatusCode::BAD_REQUEST, &error);
                }
            }
        }
    }
    match bus
        .request(&docket_bus::subject(*kind), forwarded, body)
        .await
    {
        Ok(reply) => {
            let failed = reply.headers.get(headers::STATUS) == Some(headers::STATUS_ERROR);
            let status = if failed {
                reply
                    .headers
                    .get(headers::NATS_SERVICE_ERROR_CODE)
                    .and_then(|c| c.parse::<u16>().ok())
                    .and_then(|c| StatusCode::from_u16(c).ok())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            } else {
                StatusCode::OK
            };
            let mut response = (status, reply.body).into_response();
            for (name, value) in reply.headers.iter() {
                if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                    response.headers_mut().insert(n, v);
                }
            }
            response
        }
        Err(error) => {
            let status =
                StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error_response(status, &error)
        }
    }
}

fn error_response(status: StatusCode, error: &BusError) -> Response {
    let body = serde_json::to_vec(error).unwrap_or_default();
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static(ContentType::Json.as_str()),
    );
    h.insert(
        headers::STATUS,
        HeaderValue::from_static(headers::STATUS_ERROR),
    );
    response
}
