//! The audit trail: `GET /_grantry/audit[?entityId=…]`, newest first, for administrators.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::RawQuery;
use crate::respond::{json_response, next_link};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use grantry_core::audit::StoredEvent;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new().route("/_grantry/audit", get(list))
}

fn render(e: &StoredEvent) -> Value {
    json!({
        "id": e.id,
        "at": grantry_graph::ts(e.at),
        "actorId": e.actor_id,
        "entityType": e.entity_type,
        "entityId": e.entity_id,
        "action": e.action,
        "detail": e.detail,
    })
}

async fn list(State(s): State<AppState>, Authed(caller): Authed, q: RawQuery) -> ApiResult<Response> {
    let entity = q.get("entityId").map(str::to_string).filter(|e| !e.trim().is_empty());
    let page = grantry_core::audit::list(&s.app, &caller, entity, q.page()?).await?;
    let mut body = serde_json::Map::new();
    body.insert("value".into(), Value::Array(page.items.iter().map(render).collect()));
    if let Some(last) = page.next_after_seq {
        body.insert("@odata.nextLink".into(), Value::String(next_link(&s, &q, last)));
    }
    Ok(json_response(StatusCode::OK, &Value::Object(body)))
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    vec![crate::openapi::list("/_grantry/audit", "The audit trail (?entityId=)", "Object")]
}
