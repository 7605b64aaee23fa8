//! The development clock: read and advance the server's time, running the work that
//! becomes due before answering. Only served when the server was started with
//! `--dev-clock`; only administrators may use it.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::GraphJson;
use crate::respond::json_response;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use grantry_core::Caller;
use grantry_core::auth::perms;
use grantry_domain::{Error, ErrorKind};
use grantry_graph::Body;
use grantry_graph::Ts;

/// The server's time and how far the development clock is ahead of the wall clock.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ClockView {
    now: Ts,
    offset: String,
    /// After an advance: how many jobs ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    jobs_run: Option<usize>,
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/_grantry/clock", get(read_clock)).route("/_grantry/clock/advance", post(advance))
}

fn require_admin(caller: &Caller) -> Result<(), Error> {
    caller.require(perms::EM_WRITE)?;
    if caller.is_app() || caller.is_em_admin() {
        Ok(())
    } else {
        Err(Error::forbidden("Only applications or Identity Governance Administrators may use the development clock."))
    }
}

fn disabled() -> Error {
    Error::new(
        ErrorKind::NotFound,
        "DevClockDisabled",
        "The development clock is not enabled on this server; start it with --dev-clock (GRANTRY_DEV_CLOCK=true). Never enable it in production.",
    )
}

async fn read_clock(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Response> {
    let clock = s.app.dev_clock.clone().ok_or_else(disabled)?;
    require_admin(&caller)?;
    Ok(json_response(
        StatusCode::OK,
        &ClockView { now: Ts(s.app.now()), offset: grantry_domain::duration::format(clock.offset()), jobs_run: None },
    ))
}

/// `POST /_grantry/clock/advance {"duration": "P30D"}`: moves time forward, runs every
/// job that became due and sends the outbox messages due, before answering.
async fn advance(State(s): State<AppState>, Authed(caller): Authed, GraphJson(json): GraphJson) -> ApiResult<Response> {
    let clock = s.app.dev_clock.clone().ok_or_else(disabled)?;
    require_admin(&caller)?;
    let body = Body::root(&json)?;
    let by = body
        .duration(&["duration"])?
        .ok_or_else(|| Error::invalid_property("duration", "'duration' is required, e.g. {\"duration\": \"P30D\"}."))?;
    if by < chrono::Duration::zero() {
        return Err(
            Error::invalid_property("duration", "The clock only moves forward; 'duration' must be positive.").into()
        );
    }
    let offset = s.app.advance_dev_clock(&clock, by).await?;
    let mut ran = grantry_core::jobs::drain(&s.app).await?;
    // Then the outbox messages now due (callouts, webhook events), whose outcomes may in
    // turn make jobs due (a waiting request whose callout failed).
    if grantry_core::outbox::drain(&s.app).await? > 0 {
        ran += grantry_core::jobs::drain(&s.app).await?;
    }
    Ok(json_response(
        StatusCode::OK,
        &ClockView {
            now: Ts(s.app.now()),
            offset: grantry_domain::duration::format(offset.max(clock.offset())),
            jobs_run: Some(ran),
        },
    ))
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    vec![
        read("/_grantry/clock", "The development clock", "Object"),
        op(
            "post",
            "/_grantry/clock/advance",
            "Move the development clock forward",
            Some("Object"),
            200,
            Some("Object"),
        ),
    ]
}
