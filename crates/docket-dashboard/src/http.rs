//! The dashboard over HTTP (axum): the page, its JSON, live updates as server-sent events and
//! the OpenAPI description. (`/metrics` is the node's route: it renders the node's registry.)

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use docket_bus::token::TokenVerifier;
use docket_bus::{codes, BusError, Headers};
use docket_domain::values::{FieldOffice, Role};
use docket_domain::Actor;
use futures_util::Stream;
use tokio::sync::watch;

use crate::runner::Dashboard;
use crate::view::{Filter, Window};

/// The OpenAPI description of every route here and of the audit routes.
pub const OPENAPI: &str = include_str!("openapi.json");
const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

/// Roles that may see individual reviews (the drill-down carries A-numbers).
pub const DRILL_DOWN_ROLES: [Role; 5] = [
    Role::Auditor,
    Role::FieldOfficeDirector,
    Role::Supervisor,
    Role::FirstTierReviewer,
    Role::SeniorReviewingOfficial,
];

/// What the routes need.
#[derive(Clone, Debug)]
struct Api {
    dashboard: Dashboard,
    actors: Option<TokenVerifier>,
    shutdown: watch::Receiver<bool>,
}

/// The routes: `/`, `/app.js`, `/app.css`, `/api/v1/dashboard/{overview,overdue,stream}`,
/// and `/api/v1/openapi.json`. The drill-down verifies actor tokens with `actors`
/// (without keys it is refused as unavailable). Live-update streams end when `shutdown` turns
/// true, so a graceful shutdown does not wait for open pages.
pub fn router(
    dashboard: Dashboard,
    actors: Option<TokenVerifier>,
    shutdown: watch::Receiver<bool>,
) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route("/api/v1/dashboard/overview", get(overview))
        .route("/api/v1/dashboard/overdue", get(overdue))
        .route("/api/v1/dashboard/stream", get(stream))
        .route(
            "/api/v1/openapi.json",
            get(|| async { asset(OPENAPI, "application/json") }),
        )
        .with_state(Api {
            dashboard,
            actors,
            shutdown,
        })
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A structured error as JSON with the status its code implies.
pub fn error_response(error: &BusError) -> Response {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::to_vec(error).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => error_response(&BusError::internal(format!("cannot encode: {e}"))),
    }
}

/// Reads `office` and `window` (only those named in `allowed`); anything else is refused.
fn filter(params: &HashMap<String, String>, allowed: &[&str]) -> Result<Filter, BusError> {
    if let Some(unknown) = params.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(BusError::bad_request(format!(
            "unknown query parameter {unknown:?}; expected: {}",
            allowed.join(", ")
        )));
    }
    let office = match params.get("office").map(|o| o.trim()) {
        None | Some("") | Some("all") => None,
        Some(code) => Some(
            FieldOffice::parse(&code.to_ascii_uppercase())
                .map_err(|e| BusError::bad_request(e.to_string()))?,
        ),
    };
    let window = match params.get("window") {
        None => Window::default(),
        Some(code) => Window::parse(code).map_err(BusError::bad_request)?,
    };
    Ok(Filter { office, window })
}

async fn overview(
    State(api): State<Api>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match filter(&params, &["office", "window"]) {
        Ok(f) => json(&api.dashboard.overview(&f)),
        Err(e) => error_response(&e),
    }
}

/// Who acts in an HTTP request: its `Docket-Actor` token verified with `actors`, as the bus
/// verifies a command's (`docket_bus::actor::authenticate`).
pub fn authenticate(request: &HeaderMap, actors: &TokenVerifier) -> Result<Actor, BusError> {
    let mut headers = Headers::new();
    for value in request.get_all(docket_bus::headers::ACTOR) {
        let text = value.to_str().map_err(|_| {
            BusError::new(
                codes::BAD_ACTOR,
                "the Docket-Actor header is not ASCII text",
            )
        })?;
        headers.append(docket_bus::headers::ACTOR, text);
    }
    docket_bus::actor::authenticate(&headers, actors, docket_bus::token::now_secs())
}

/// The acting person must hold a role that may see individual reviews.
fn may_drill_down(request: &HeaderMap, actors: Option<&TokenVerifier>) -> Result<(), BusError> {
    let Some(actors) = actors else {
        return Err(BusError::unavailable(
            "the drill-down needs actor-token verifier keys (--actor-vkeys); none are configured"
                .to_owned(),
        ));
    };
    let actor = authenticate(request, actors)?;
    if DRILL_DOWN_ROLES.contains(&actor.role) {
        Ok(())
    } else {
        Err(BusError::new(
            codes::FORBIDDEN,
            format!(
                "the role {} sees aggregates only; individual reviews need one of: {}",
                actor.role,
                DRILL_DOWN_ROLES.map(|r| r.code()).join(", ")
            ),
        )
        .with_details(serde_json::json!({ "role": actor.role.code() })))
    }
}

async fn overdue(
    State(api): State<Api>,
    request: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = may_drill_down(&request, api.actors.as_ref()) {
        return error_response(&e);
    }
    match filter(&params, &["office"]) {
        Ok(f) => json(&api.dashboard.overdue(f.office)),
        Err(e) => error_response(&e),
    }
}

/// At most one update a second; one at least every 15 s.
const MIN_GAP: Duration = Duration::from_secs(1);
const MAX_GAP: Duration = Duration::from_secs(15);

async fn stream(State(api): State<Api>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let progress = api.dashboard.progress();
    let events = futures_util::stream::unfold(
        (progress, api.shutdown, true),
        |(mut progress, mut shutdown, first)| async move {
            if *shutdown.borrow() {
                return None;
            }
            if !first {
                tokio::select! {
                    _ = stopped(&mut shutdown) => return None,
                    _ = tokio::time::sleep(MIN_GAP) => {}
                }
                tokio::select! {
                    _ = stopped(&mut shutdown) => return None,
                    changed = tokio::time::timeout(MAX_GAP, progress.changed()) => {
                        if matches!(changed, Ok(Err(_))) {
                            return None;
                        }
                    }
                }
            }
            let now = *progress.borrow_and_update();
            let event = Event::default()
                .event("update")
                .json_data(now)
                .unwrap_or_else(|_| Event::default().event("update"));
            Some((Ok(event), (progress, shutdown, false)))
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}
