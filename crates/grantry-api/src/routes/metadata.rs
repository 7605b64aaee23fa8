//! `$metadata`: the OData CSDL of the entitlement management API for each root.

use crate::extract::Root;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use grantry_graph::Dialect;

use crate::state::AppState;

const V1: &str = include_str!("../../metadata/v1.0.xml");
const BETA: &str = include_str!("../../metadata/beta.xml");

pub fn routes() -> Router<AppState> {
    Router::new().route("/$metadata", get(metadata)).route("/", get(super::index))
}

/// The CSDL document of root `d`.
pub fn document(d: Dialect) -> &'static str {
    match d {
        Dialect::V1 => V1,
        Dialect::Beta => BETA,
    }
}

/// Served without authentication, as Graph does.
async fn metadata(Root(d): Root) -> Response {
    let body = document(d);
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    r
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    vec![
        crate::openapi::op("get", "/$metadata", "The CSDL of this root", None, 200, None),
        crate::openapi::read("", "Index: the API roots, documents and health endpoints", "Object"),
    ]
}
