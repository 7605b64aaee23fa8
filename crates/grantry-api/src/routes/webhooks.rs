//! Event webhooks (beyond Entra), for administrators: `/_grantry/webhooks` (subscriptions;
//! the signing secret is shown once, in the answer to the create) and
//! `/_grantry/webhooks/deadLetters` (events that could not be delivered; `POST
//! …/{id}/replay` sends one again). Not a Graph resource, so it lives beside the other
//! Grantry-only endpoints (`/_grantry/audit`, `/_grantry/clock`).

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::GraphJson;
use crate::respond::json_response;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use grantry_core::webhooks::{self, NewSubscription};
use grantry_domain::Error;
use grantry_domain::model::{OutboxMessage, WebhookSubscription};
use grantry_graph::Body;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_grantry/webhooks", get(list).post(create))
        .route("/_grantry/webhooks/deadLetters", get(dead_letters))
        .route("/_grantry/webhooks/deadLetters/{id}/replay", post(replay))
        .route("/_grantry/webhooks/{id}", get(read).delete(remove))
}

fn render(s: &WebhookSubscription) -> Value {
    json!({
        "id": s.id,
        "url": s.url,
        "eventTypes": s.event_types,
        "description": s.description,
        "createdBy": s.created_by,
        "createdDateTime": grantry_graph::ts(s.created_date_time),
    })
}

fn render_message(m: &OutboxMessage) -> Value {
    json!({
        "id": m.id,
        "subscriptionId": m.context.get("subscriptionId"),
        "type": m.payload.get("type"),
        "url": m.url,
        "attempts": m.attempts,
        "lastStatus": m.last_status,
        "lastError": m.last_error,
        "createdDateTime": grantry_graph::ts(m.created_date_time),
        "finishedDateTime": m.finished_date_time.map(grantry_graph::ts),
        "payload": m.payload,
    })
}

async fn create(State(s): State<AppState>, Authed(caller): Authed, GraphJson(json): GraphJson) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let url = b.required_str(&["url"])?;
    grantry_graph::extension::check_target_url(&url, "url")?;
    let event_types = match b.array(&["eventTypes"])? {
        None => Vec::new(),
        Some((items, path)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::invalid_property(&path, format!("'{path}' must be an array of strings.")))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    let input = NewSubscription { url, event_types, description: b.str(&["description"])? };
    let created = webhooks::create(&s.app, &caller, input).await?;
    let mut body = render(&created);
    body["secret"] = json!(created.signing_secret);
    Ok(json_response(StatusCode::CREATED, &body))
}

async fn list(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Response> {
    let items = webhooks::list(&s.app, &caller).await?;
    Ok(json_response(StatusCode::OK, &json!({ "value": items.iter().map(render).collect::<Vec<_>>() })))
}

async fn read(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    let item = webhooks::get(&s.app, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, &render(&item)))
}

async fn remove(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    webhooks::delete(&s.app, &caller, &id).await?;
    Ok(crate::respond::no_content())
}

async fn dead_letters(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Response> {
    let items = webhooks::dead_letters(&s.app, &caller).await?;
    Ok(json_response(StatusCode::OK, &json!({ "value": items.iter().map(render_message).collect::<Vec<_>>() })))
}

async fn replay(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    webhooks::replay(&s.app, &caller, &id).await?;
    Ok(crate::respond::accepted())
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    vec![
        list("/_grantry/webhooks", "Event webhook subscriptions", "Object"),
        op(
            "post",
            "/_grantry/webhooks",
            "Subscribe a URL to lifecycle events (the answer carries the signing secret, once)",
            Some("Object"),
            201,
            Some("Object"),
        ),
        read("/_grantry/webhooks/{id}", "A webhook subscription", "Object"),
        remove("/_grantry/webhooks/{id}", "Delete a webhook subscription"),
        list("/_grantry/webhooks/deadLetters", "Events that could not be delivered", "Object"),
        op("post", "/_grantry/webhooks/deadLetters/{id}/replay", "Send a dead-lettered event again", None, 202, None),
    ]
}
