//! Notification mail, for administrators: `GET /_grantry/mail[?to=ADDRESS&top=N]` lists the
//! newest mails (pending, sent, kept when no SMTP server is configured, skipped, failed)
//! with their rendered subject; `GET /_grantry/mail/{id}` shows one with its text and HTML.
//! Without SMTP this is where the flow can be followed locally.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::RawQuery;
use crate::respond::json_response;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use grantry_core::mail::{self, MailView};
use grantry_domain::Error;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new().route("/_grantry/mail", get(list)).route("/_grantry/mail/{id}", get(read))
}

fn render(v: &MailView, bodies: bool, base: &str) -> Value {
    let m = &v.message;
    let p = |k: &str| m.payload.get(k).cloned().unwrap_or(Value::Null);
    let mut out = json!({
        "id": m.id,
        "status": v.status,
        "to": p("to"),
        "toName": p("toName"),
        "recipientId": p("recipientId"),
        "template": p("template"),
        "event": p("event"),
        "subject": v.subject,
        "link": format!("{base}{}", p("path").as_str().unwrap_or_default()),
        "digestId": m.context.get("digestId").cloned().unwrap_or(Value::Null),
        "attempts": m.attempts,
        "lastStatus": m.last_status,
        "lastError": m.last_error,
        "createdDateTime": grantry_graph::ts(m.created_date_time),
        "nextAttemptDateTime": grantry_graph::ts(m.next_attempt_date_time),
        "finishedDateTime": m.finished_date_time.map(grantry_graph::ts),
    });
    if bodies {
        out["text"] = json!(v.text);
        out["html"] = json!(v.html);
    }
    out
}

async fn list(State(s): State<AppState>, Authed(caller): Authed, q: RawQuery) -> ApiResult<Response> {
    let to = q.get("to").map(str::to_string).filter(|t| !t.trim().is_empty());
    let top = match q.get("top") {
        None => 200,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| Error::bad_request("InvalidTop", "'top' must be a number from 1 to 1000."))?,
    };
    let items = mail::list(&s.app, &caller, to, top).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "value": items.iter().map(|v| render(v, false, &s.app.mail.public_base_url)).collect::<Vec<_>>() }),
    ))
}

async fn read(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    let item = mail::get(&s.app, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, &render(&item, true, &s.app.mail.public_base_url)))
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    vec![
        list("/_grantry/mail", "Notification mails, newest first (?to=ADDRESS&top=N)", "Object"),
        read("/_grantry/mail/{id}", "One notification mail with its text and HTML", "Object"),
    ]
}
