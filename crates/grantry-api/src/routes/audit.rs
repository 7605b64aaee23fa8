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
use grantry_graph::wire::Ts;
use serde::Serialize;

pub fn routes() -> Router<AppState> {
    Router::new().route("/_grantry/audit", get(list))
}

/// One audit event.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventView<'a> {
    id: &'a str,
    at: Ts,
    actor_id: Option<&'a str>,
    entity_type: &'a str,
    entity_id: &'a str,
    action: &'a str,
    detail: &'a serde_json::Value,
}

fn render(e: &StoredEvent) -> EventView<'_> {
    EventView {
        id: &e.id,
        at: Ts(e.at),
        actor_id: e.actor_id.as_deref(),
        entity_type: &e.entity_type,
        entity_id: &e.entity_id,
        action: &e.action,
        detail: &e.detail,
    }
}

/// A page of the trail (no `@odata.context`: it is not a Graph entity set).
#[derive(Serialize)]
struct EventsPage<'a> {
    value: Vec<EventView<'a>>,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
}

async fn list(State(s): State<AppState>, Authed(caller): Authed, q: RawQuery) -> ApiResult<Response> {
    let entity = q.get("entityId").map(str::to_string).filter(|e| !e.trim().is_empty());
    let page = grantry_core::audit::list(&s.app, &caller, entity, q.page()?).await?;
    let body = EventsPage {
        value: page.items.iter().map(render).collect(),
        next_link: page.next_after_seq.map(|last| next_link(&s, &q, last)),
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    vec![crate::openapi::list("/_grantry/audit", "The audit trail (?entityId=)", "Object")]
}
