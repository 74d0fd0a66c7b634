//! The node's one HTTP router: the dashboard (`/`, `/api/v1/dashboard/…`,
//! `/api/v1/openapi.json`), `/metrics`, `/healthz`, `/readyz` over every role, one review's
//! state, the audit routes where the audit role runs (queries over the in-process bus), and (embedded) the bus's command catalogue
//! as JSON (or postcard) over HTTP, answered by the in-process bus the services are registered on.

mod audit;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use docket_bus::{codes, headers, BusError, ContentType, Headers, LocalBus, RawReply, Transport};
use docket_domain::CommandKind;
use docket_domain::Role;

use crate::supervise::{ComponentState, Supervisor};

/// What the node started, for the routes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Parts {
    pub(crate) dashboard: Option<docket_dashboard::Dashboard>,
    /// The in-process bus the audit service is registered on, and the checkpoint verifier key.
    pub(crate) audit: Option<(LocalBus, String)>,
    pub(crate) checkpointer: Option<docket_audit::CheckpointerHandle>,
    /// Whether the notification service runs here.
    pub(crate) notifications: bool,
    pub(crate) bus: Option<LocalBus>,
    pub(crate) actors: Option<docket_bus::token::TokenVerifier>,
    /// The services' state, for reading one review.
    pub(crate) world: Option<docket_runtime::World>,
    pub(crate) supervisor: Option<Supervisor>,
    /// The node's registry, rendered at `/metrics`.
    pub(crate) metrics: Option<std::sync::Arc<prometheus_client::registry::Registry>>,
    /// The HTTP stage's stop: live-update streams end with it.
    pub(crate) shutdown: Option<tokio::sync::watch::Receiver<bool>>,
}

/// The routes of what runs here.
pub(crate) fn router(parts: Parts) -> Router {
    let shutdown = parts
        .shutdown
        .clone()
        .unwrap_or_else(|| tokio::sync::watch::channel(true).1);
    let base = match &parts.dashboard {
        Some(dashboard) => {
            docket_dashboard::http::router(dashboard.clone(), parts.actors.clone(), shutdown)
        }
        None => Router::new(),
    };
    let registry = parts.metrics.clone().unwrap_or_default();
    let base = base.merge(
        Router::new()
            .route("/metrics", get(crate::metrics::serve))
            .with_state(registry),
    );
    let mut router = base.merge(
        Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/api/v1/reviews/{id}", get(review))
            .with_state(parts.clone()),
    );
    if let Some(bus) = parts.bus {
        router = router.merge(
            Router::new()
                .route("/api/v1/commands/{name}", post(command))
                .with_state(bus),
        );
    }
    match parts.audit {
        Some((bus, _)) => router.merge(audit::router(bus)),
        None => router,
    }
}

/// `GET /api/v1/reviews/{id}`: one review as the services know it. Officials and auditors see
/// every review; a requester (a noncitizen or their representative) sees only the reviews they
/// asked for; every other role is refused.
async fn review(State(ops): State<Parts>, Path(id): Path<String>, request: HeaderMap) -> Response {
    let (Some(actors), Some(world)) = (&ops.actors, &ops.world) else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &BusError::unavailable(
                "reviews are read where the command services run (`docket up`)".to_owned(),
            ),
        );
    };
    let actor = match docket_dashboard::http::authenticate(&request, actors) {
        Ok(actor) => actor,
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return error_response(status, &e);
        }
    };
    let Ok(review_id) = docket_domain::values::ReviewId::parse(&id) else {
        let e = BusError::bad_request(format!("{id:?} is not a review id (a UUID)"));
        return error_response(StatusCode::BAD_REQUEST, &e);
    };
    let view = world.read();
    let found = view
        .state::<docket_domain::review::Review>(&docket_domain::StreamKey::Review(review_id))
        .map(|(revision, r)| (*revision, r.clone()));
    drop(view);
    let (revision, review) = match found {
        Some((revision, review)) if review.request().is_some() => (revision, review),
        _ => {
            let e = BusError::new("not_found", format!("no review {review_id}"));
            return error_response(StatusCode::NOT_FOUND, &e);
        }
    };
    let own = review.requester() == Some(actor.person);
    let allowed = match actor.role {
        Role::Requester => own,
        role => docket_dashboard::http::DRILL_DOWN_ROLES.contains(&role),
    };
    if !allowed {
        let message = if actor.role == Role::Requester {
            "a requester may read only the reviews they asked for".to_owned()
        } else {
            format!("the role {} may not read individual reviews", actor.role)
        };
        let e = BusError::new(codes::FORBIDDEN, message)
            .with_details(serde_json::json!({ "role": actor.role.code() }));
        return error_response(StatusCode::FORBIDDEN, &e);
    }
    let body = review_json(&review_id, revision, &review);
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn review_json(
    id: &docket_domain::values::ReviewId,
    revision: u64,
    review: &docket_domain::review::Review,
) -> serde_json::Value {
    use docket_domain::values::ReviewTier;
    let request = review.request();
    let tier = |t: ReviewTier| {
        review.tier_decision(t).map(|d| {
            serde_json::json!({
                "outcome": d.outcome.code(),
                "referred_to": d.referred_to.map(|r| r.code()),
                "reasons": d.reasons,
                "at": d.at,
            })
        })
    };
    serde_json::json!({
        "review": id.to_string(),
        "revision": revision,
        "case": request.map(|r| r.case.to_string()),
        "decision": request.map(|r| r.decision.to_string()),
        "a_number": request.map(|r| r.a_number.to_string()),
        "action": request.map(|r| r.action.code()),
        "requested_at": request.map(|r| r.at),
        "stage": format!("{:?}", review.stage()),
        "prioritised": review.is_prioritised(),
        "open_questions": review.open_questions(),
        "due": review.due().into_iter().map(|(kind, at)| serde_json::json!({ "deadline": kind.code(), "due": at })).collect::<Vec<_>>(),
        "missed": review.missed().iter().map(|k| k.code()).collect::<Vec<_>>(),
        "tier1": tier(ReviewTier::Tier1),
        "tier2": tier(ReviewTier::Tier2),
        "closed": review.is_closed(),
    })
}

/// 200 once every role here is ready: the dashboard caught up with the log, the checkpointer
/// loaded its tree, the services' world follows the log, and no component is failed or waiting
/// to restart; 503 with what is missing otherwise.
async fn readyz(State(parts): State<Parts>) -> Response {
    let mut missing = Vec::new();
    let dashboard = parts.dashboard.as_ref().map(|d| d.readiness());
    if let Some(dashboard) = &dashboard {
        if !dashboard.caught_up {
            missing.push(format!(
                "the dashboard is catching up with the log (to {})",
                dashboard.start_head
            ));
        }
        if let Some(fault) = &dashboard.fault {
            missing.push(format!("the dashboard stopped: {fault}"));
        }
    }
    let checkpointer = parts.checkpointer.as_ref().map(|c| c.status());
    if let Some(status) = &checkpointer {
        if !status.started {
            missing.push("the checkpointer is loading its tree".to_owned());
        }
        if let Some(stopped) = &status.stopped {
            missing.push(format!("the checkpointer stopped: {stopped}"));
        }
    }
    if let Some(fault) = parts.world.as_ref().and_then(|w| w.fault()) {
        missing.push(format!(
            "the services' world stopped following the log: {fault}"
        ));
    }
    let components = parts
        .supervisor
        .as_ref()
        .map(Supervisor::states)
        .unwrap_or_default();
    for (name, state) in &components {
        match state {
            ComponentState::Restarting { error, restarts } => missing.push(format!(
                "the {name} is restarting ({restarts} restarts so far; last error: {error})"
            )),
            ComponentState::Failed { error } => {
                missing.push(format!("the {name} stopped: {error}"))
            }
            ComponentState::Running | ComponentState::Stopped => {}
        }
    }
    let body = serde_json::json!({
        "ready": missing.is_empty(),
        "missing": missing,
        "dashboard": dashboard,
        "checkpointer": checkpointer.map(|s| serde_json::json!({
            "started": s.started,
            "size": s.size,
            "signed": s.signed,
            "stopped": s.stopped,
        })),
        "notifications": parts.notifications,
        "commands": parts.world.is_some(),
        "components": components,
    });
    let status = if missing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
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
        Ok(reply) => reply_response(reply),
        Err(error) => {
            let status =
                StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            error_response(status, &error)
        }
    }
}

/// A bus reply as an HTTP response: its body and headers, with the error's HTTP class.
fn reply_response(reply: RawReply) -> Response {
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
