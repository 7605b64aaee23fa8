//! Grantry's HTTP surface: the Graph `/v1.0` and `/beta` roots over one internal model.
//!
//! Request flow: path normalisation (case-insensitive segments, OData key and function
//! syntax) → request ids → routing → authentication ([`auth::Authed`]) → use case in
//! `grantry-core` → rendering in the root's dialect. Every failure, including axum's own
//! rejections, leaves as Graph's error envelope ([`error`]).

pub mod auth;
pub mod error;
pub mod expand;
pub mod extract;
pub mod idempotency;
pub mod keyring;
pub mod metrics;
pub mod middleware;
pub mod oidc;
pub mod openapi;
pub mod portal;
pub mod respond;
pub mod routes;
pub mod schema;
pub mod scim;
pub mod state;
pub mod throttle;

pub use state::{ApiConfig, AppState};

use axum::Router;

/// The complete service: every route plus the layers that must run before routing.
pub fn service(state: AppState) -> axum::routing::IntoMakeService<Router> {
    routes::router(state).into_make_service()
}
pub use grantry_graph::Dialect;
