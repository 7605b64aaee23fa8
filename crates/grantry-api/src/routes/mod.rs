//! The route table. Every resource module contributes its routes to one table that is
//! mounted under both `/v1.0` and `/beta`; the root's [`Dialect`] travels in the request
//! and selects the rendering. Both dialects' segment names are accepted under both roots.

mod approvals;
mod assignments;
mod audit;
mod catalogs;
mod devclock;
mod environments;
mod groups;
mod metadata;
mod packages;
mod policies;
mod rbac;
mod requests;
mod users;

use crate::error::{ApiError, not_found_route};
use crate::middleware::{odata_response, request_ids, rewrite_request};
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use grantry_domain::{Error, ErrorKind};
use grantry_graph::Dialect;

/// The routes of one Graph root.
fn graph_routes() -> Router<AppState> {
    Router::new()
        .merge(users::routes())
        .merge(groups::routes())
        .merge(rbac::routes())
        .merge(metadata::routes())
        .merge(requests::routes())
        .merge(assignments::routes())
        .merge(catalogs::routes())
        .merge(packages::routes())
        .merge(environments::routes())
        .merge(policies::routes())
        .merge(approvals::routes())
}

/// The whole router, wrapped so that path normalisation happens before routing.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    let inner = Router::new()
        .nest("/v1.0", graph_routes().layer(Extension(Dialect::V1)))
        .nest("/beta", graph_routes().layer(Extension(Dialect::Beta)))
        .merge(devclock::routes())
        .merge(audit::routes())
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(odata_response))
        .layer(axum::middleware::from_fn(request_ids))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(on_panic))
        .with_state(state);
    // Rewriting inside a Router layer would run after routing; this wrapper runs before.
    Router::new().fallback_service(tower::ServiceExt::map_request(inner, rewrite_request))
}

async fn fallback(req: Request) -> Response {
    not_found_route(req.method().as_str(), req.uri().path()).into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    ApiError(Error::new(
        ErrorKind::MethodNotAllowed,
        "MethodNotAllowed",
        format!(
            "{} is not supported on {}; see the API reference for the methods this resource accepts.",
            req.method(),
            req.uri().path()
        ),
    ))
    .into_response()
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError(Error::internal("a handler panicked")).into_response()
}

/// Liveness: the process answers.
async fn health() -> Response {
    crate::respond::json_response(axum::http::StatusCode::OK, &serde_json::json!({ "status": "ok" }))
}

/// Readiness: the database answers reads.
async fn ready(State(state): State<AppState>) -> Response {
    match state.app.store.read(|c| c.query_one("SELECT 1", &[])).await {
        Ok(_) => crate::respond::json_response(axum::http::StatusCode::OK, &serde_json::json!({ "status": "ready" })),
        Err(e) => ApiError(Error::new(
            ErrorKind::Unavailable,
            "serviceNotAvailable",
            format!("The database is not available: {}", e.message),
        ))
        .into_response(),
    }
}
