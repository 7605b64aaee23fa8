//! Notification mail, for administrators: `GET /_grantry/mail[?to=ADDRESS&top=N]` lists the
//! newest mails (pending, sent, kept when no SMTP server is configured, skipped, failed)
//! with their rendered subject; `GET /_grantry/mail/{id}` shows one with its text and HTML.
//! Without SMTP this is where the flow can be followed locally.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::RawQuery;
use crate::respond::{json_response, values};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use grantry_core::mail::{self, MailView};
use grantry_domain::Error;
use grantry_graph::Ts;
use serde::Serialize;
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    Router::new().route("/_grantry/mail", get(list)).route("/_grantry/mail/{id}", get(read))
}

/// A notification mail as administrators see it; its text and HTML only when read alone.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MailRender<'a> {
    id: &'a str,
    status: &'static str,
    to: Option<&'a Value>,
    to_name: Option<&'a Value>,
    recipient_id: Option<&'a Value>,
    template: Option<&'a Value>,
    event: Option<&'a Value>,
    subject: &'a str,
    link: String,
    digest_id: Option<&'a Value>,
    attempts: u32,
    last_status: Option<u16>,
    last_error: Option<&'a str>,
    created_date_time: Ts,
    next_attempt_date_time: Ts,
    finished_date_time: Option<Ts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<&'a str>,
}

fn render<'a>(v: &'a MailView, bodies: bool, base: &str) -> MailRender<'a> {
    let m = &v.message;
    let p = |k: &str| m.payload.get(k);
    MailRender {
        id: &m.id,
        status: v.status,
        to: p("to"),
        to_name: p("toName"),
        recipient_id: p("recipientId"),
        template: p("template"),
        event: p("event"),
        subject: &v.subject,
        link: format!("{base}{}", p("path").and_then(Value::as_str).unwrap_or_default()),
        digest_id: m.context.get("digestId"),
        attempts: m.attempts,
        last_status: m.last_status,
        last_error: m.last_error.as_deref(),
        created_date_time: Ts(m.created_date_time),
        next_attempt_date_time: Ts(m.next_attempt_date_time),
        finished_date_time: m.finished_date_time.map(Ts),
        text: bodies.then_some(v.text.as_str()),
        html: bodies.then_some(v.html.as_str()),
    }
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
    Ok(values(&items.iter().map(|v| render(v, false, &s.app.mail.public_base_url)).collect::<Vec<_>>()))
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
