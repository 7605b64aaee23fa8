//! Success responses: JSON with `@odata.context`, collections with `@odata.nextLink`.

use crate::extract::{RawQuery, encode_skiptoken};
use crate::state::AppState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use grantry_graph::Dialect;
use serde_json::Value;

/// The Graph path of an entity set below the version root, for `@odata.context`.
pub const EM: &str = "identityGovernance/entitlementManagement";

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub fn context_url(state: &AppState, dialect: Dialect, fragment: &str) -> String {
    format!("{}/{}/$metadata#{fragment}", state.config.public_base_url, dialect.root())
}

fn with_context(state: &AppState, dialect: Dialect, set: &str, mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.insert("@odata.context".into(), Value::String(context_url(state, dialect, &format!("{set}/$entity"))));
    }
    value
}

/// 200 with one entity; `set` is the entity set path, e.g. `identityGovernance/entitlementManagement/catalogs`.
pub fn entity(state: &AppState, dialect: Dialect, set: &str, value: Value) -> Response {
    json_response(StatusCode::OK, &with_context(state, dialect, set, value))
}

pub fn created(state: &AppState, dialect: Dialect, set: &str, value: Value) -> Response {
    json_response(StatusCode::CREATED, &created_value(state, dialect, set, value))
}

/// The body [`created`] sends.
pub fn created_value(state: &AppState, dialect: Dialect, set: &str, value: Value) -> Value {
    with_context(state, dialect, set, value)
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

/// 200 with a collection page; adds `@odata.nextLink` (same path and options, with a new
/// `$skiptoken`) when more rows follow.
pub fn collection(
    state: &AppState,
    dialect: Dialect,
    set: &str,
    items: Vec<Value>,
    next_after_seq: Option<i64>,
    query: &RawQuery,
    count: Option<i64>,
) -> Response {
    let mut body = serde_json::Map::new();
    body.insert("@odata.context".into(), Value::String(context_url(state, dialect, set)));
    if let Some(n) = count {
        body.insert("@odata.count".into(), Value::from(n));
    }
    body.insert("value".into(), Value::Array(items));
    if let Some(after) = next_after_seq {
        body.insert("@odata.nextLink".into(), Value::String(next_link(state, query, after)));
    }
    json_response(StatusCode::OK, &Value::Object(body))
}

/// 200 with a page of a [`grantry_core::listing::Listed`] collection.
pub fn listed(
    state: &AppState,
    dialect: Dialect,
    set: &str,
    listed: grantry_core::listing::Listed<Value>,
    query: &RawQuery,
) -> Response {
    let mut body = serde_json::Map::new();
    body.insert("@odata.context".into(), Value::String(context_url(state, dialect, set)));
    if let Some(n) = listed.count {
        body.insert("@odata.count".into(), Value::from(n));
    }
    body.insert("value".into(), Value::Array(listed.items));
    if let Some(cursor) = &listed.next {
        body.insert(
            "@odata.nextLink".into(),
            Value::String(next_link_token(state, query, &crate::extract::encode_cursor(cursor))),
        );
    }
    json_response(StatusCode::OK, &Value::Object(body))
}

pub fn next_link(state: &AppState, query: &RawQuery, after_seq: i64) -> String {
    next_link_token(state, query, &encode_skiptoken(after_seq))
}

fn next_link_token(state: &AppState, query: &RawQuery, token: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut parts: Vec<String> = query
        .pairs
        .iter()
        .filter(|(k, _)| !k.trim_start_matches('$').eq_ignore_ascii_case("skiptoken"))
        .map(|(k, v)| format!("{}={}", k, utf8_percent_encode(v, NON_ALPHANUMERIC)))
        .collect();
    parts.push(format!("$skiptoken={token}"));
    format!("{}{}?{}", state.config.public_base_url, query.path, parts.join("&"))
}
