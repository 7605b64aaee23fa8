//! Event webhooks (beyond Entra), for administrators: `/_grantry/webhooks` (subscriptions;
//! the signing secret is shown once, in the answer to the create) and
//! `/_grantry/webhooks/deadLetters` (events that could not be delivered; `POST
//! …/{id}/replay` sends one again). Not a Graph resource, so it lives beside the other
//! Grantry-only endpoints (`/_grantry/audit`, `/_grantry/clock`).

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::GraphJson;
use crate::respond::{json_response, values};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use grantry_core::webhooks::{self, NewSubscription, SubscriptionChange};
use grantry_domain::Error;
use grantry_domain::model::{OutboxMessage, WebhookSubscription};
use grantry_graph::Body;
use grantry_graph::Ts;
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_grantry/webhooks", get(list).post(create))
        .route("/_grantry/webhooks/deadLetters", get(dead_letters))
        .route("/_grantry/webhooks/deadLetters/{id}/replay", post(replay))
        .route("/_grantry/webhooks/{id}", get(read).patch(update).delete(remove))
}

/// A subscription as answered (never with its secret, except in the answer to the create).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionView<'a> {
    id: &'a str,
    url: &'a str,
    event_types: &'a [String],
    description: Option<&'a str>,
    /// False once the receiver answered 410 Gone, or an administrator paused it.
    enabled: bool,
    disabled_reason: Option<&'a str>,
    created_by: Option<&'a str>,
    created_date_time: Ts,
    last_modified_date_time: Option<Ts>,
    /// Only in the answer to the create.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
}

fn render(s: &WebhookSubscription) -> SubscriptionView<'_> {
    SubscriptionView {
        id: &s.id,
        url: &s.url,
        event_types: &s.event_types,
        description: s.description.as_deref(),
        enabled: s.enabled,
        disabled_reason: s.disabled_reason.as_deref(),
        created_by: s.created_by.as_deref(),
        created_date_time: Ts(s.created_date_time),
        last_modified_date_time: s.last_modified_date_time.map(Ts),
        secret: None,
    }
}

/// Properties a subscription body may carry.
const PROPERTIES: &[&str] = &["url", "eventTypes", "description", "enabled"];

fn event_types(b: &Body) -> Result<Option<Vec<String>>, Error> {
    match b.array(&["eventTypes"])? {
        None => Ok(None),
        Some((items, path)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::invalid_property(&path, format!("'{path}' must be an array of strings.")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
    }
}

fn refuse_unknown(b: &Body) -> Result<(), Error> {
    if let Some(k) = b.map().keys().find(|k| !k.starts_with('@') && !PROPERTIES.contains(&k.as_str())) {
        return Err(Error::invalid_property(
            k,
            format!("'{k}' is not a property of a webhook subscription; use {}.", PROPERTIES.join(", ")),
        ));
    }
    Ok(())
}

/// An event that could not be delivered.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DeadLetterView<'a> {
    id: &'a str,
    subscription_id: Option<&'a Value>,
    #[serde(rename = "type")]
    kind: Option<&'a Value>,
    url: &'a str,
    attempts: u32,
    last_status: Option<u16>,
    last_error: Option<&'a str>,
    created_date_time: Ts,
    finished_date_time: Option<Ts>,
    payload: &'a Value,
}

fn render_message(m: &OutboxMessage) -> DeadLetterView<'_> {
    DeadLetterView {
        id: &m.id,
        subscription_id: m.context.get("subscriptionId"),
        kind: m.payload.get("type"),
        url: &m.url,
        attempts: m.attempts,
        last_status: m.last_status,
        last_error: m.last_error.as_deref(),
        created_date_time: Ts(m.created_date_time),
        finished_date_time: m.finished_date_time.map(Ts),
        payload: &m.payload,
    }
}

async fn create(State(s): State<AppState>, Authed(caller): Authed, GraphJson(json): GraphJson) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let url = b.required_str(&["url"])?;
    grantry_graph::extension::check_target_url(&url, "url")?;
    let input = NewSubscription {
        url,
        event_types: event_types(&b)?.unwrap_or_default(),
        description: b.str(&["description"])?,
    };
    let created = webhooks::create(&s.app, &caller, input).await?;
    let body = SubscriptionView { secret: Some(&created.signing_secret), ..render(&created) };
    Ok(json_response(StatusCode::CREATED, &body))
}

async fn list(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Response> {
    let items = webhooks::list(&s.app, &caller).await?;
    Ok(values(&items.iter().map(render).collect::<Vec<_>>()))
}

async fn read(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    let item = webhooks::get(&s.app, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, &render(&item)))
}

/// PATCH: changes the URL, event types, description, or `enabled` (true resumes a
/// subscription a 410 disabled).
async fn update(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    refuse_unknown(&b)?;
    let url = b.str(&["url"])?;
    if let Some(url) = &url {
        grantry_graph::extension::check_target_url(url, "url")?;
    }
    let description = match b.get("description") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(_) => Some(b.str(&["description"])?),
    };
    if b.get("enabled").is_some_and(Value::is_null) {
        return Err(Error::invalid_property("enabled", "'enabled' must be true or false.").into());
    }
    let change = SubscriptionChange { url, event_types: event_types(&b)?, description, enabled: b.bool(&["enabled"])? };
    let item = webhooks::update(&s.app, &caller, &id, change).await?;
    Ok(json_response(StatusCode::OK, &render(&item)))
}

async fn remove(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    webhooks::delete(&s.app, &caller, &id).await?;
    Ok(crate::respond::no_content())
}

async fn dead_letters(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Response> {
    let items = webhooks::dead_letters(&s.app, &caller).await?;
    Ok(values(&items.iter().map(render_message).collect::<Vec<_>>()))
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
        op(
            "patch",
            "/_grantry/webhooks/{id}",
            "Change a webhook subscription (url, eventTypes, description, enabled)",
            Some("Object"),
            200,
            Some("Object"),
        ),
        remove("/_grantry/webhooks/{id}", "Delete a webhook subscription"),
        list("/_grantry/webhooks/deadLetters", "Events that could not be delivered", "Object"),
        op("post", "/_grantry/webhooks/deadLetters/{id}/replay", "Send a dead-lettered event again", None, 202, None),
    ]
}
