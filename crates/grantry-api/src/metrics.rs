//! `GET /metrics`: Prometheus' text format. HTTP requests are counted by route template
//! (not the path, so ids do not multiply the series), method and status, with latency
//! histograms; the writer, background jobs and deliveries record in
//! [`grantry_domain::metrics`]; the write queue, the read pool and the job table are read
//! at scrape time.
//!
//! On the main listener `/metrics` needs a token of a caller who may read the audit trail
//! (an application with `EntitlementManagement.Read.All`, or an Identity Governance or
//! Global Administrator); `--metrics-listen` serves it without a token on an address of
//! its own, meant for a private network.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use grantry_domain::metrics::{Histogram, SECONDS_BUCKETS, escape, header as help};
use grantry_store::Value;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock, RwLock};

/// Per route template: one latency histogram per (method, status) seen.
type Series = HashMap<String, Vec<(&'static str, u16, Arc<Histogram>)>>;

static HTTP: LazyLock<RwLock<Series>> = LazyLock::new(Default::default);

/// Route label of requests that matched no route (404s from the fallback), so scans of
/// random paths add one series, not one per path.
const UNMATCHED: &str = "unmatched";

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn histogram(route: &str, method: &'static str, status: u16) -> Arc<Histogram> {
    {
        let series = HTTP.read().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = series.get(route).and_then(|v| v.iter().find(|(m, s, _)| *m == method && *s == status)) {
            return found.2.clone();
        }
    }
    let mut series = HTTP.write().unwrap_or_else(|e| e.into_inner());
    let per_route = series.entry(route.to_string()).or_default();
    if let Some(found) = per_route.iter().find(|(m, s, _)| *m == method && *s == status) {
        return found.2.clone();
    }
    let h = Arc::new(Histogram::new(SECONDS_BUCKETS));
    per_route.push((method, status, h.clone()));
    h
}

/// The layer that times every request (routing has happened, so the template is known).
pub async fn record(req: Request, next: Next) -> Response {
    if !grantry_domain::metrics::enabled() {
        return next.run(req).await;
    }
    let started = std::time::Instant::now();
    let method = method_label(req.method());
    let route = req.extensions().get::<MatchedPath>().cloned();
    let response = next.run(req).await;
    let route = route.as_ref().map(MatchedPath::as_str).unwrap_or(UNMATCHED);
    histogram(route, method, response.status().as_u16()).observe(started.elapsed().as_secs_f64());
    response
}

/// The count of requests recorded for a route template, method and status (for tests).
pub fn requests_recorded(route: &str, method: &Method, status: u16) -> u64 {
    let series = HTTP.read().unwrap_or_else(|e| e.into_inner());
    let method = method_label(method);
    series
        .get(route)
        .and_then(|v| v.iter().find(|(m, s, _)| *m == method && *s == status))
        .map_or(0, |(_, _, h)| h.count())
}

/// The whole exposition.
pub async fn render(state: &AppState) -> ApiResult<String> {
    let mut out = String::with_capacity(16 * 1024);
    help(
        &mut out,
        "grantry_http_request_duration_seconds",
        "histogram",
        "HTTP requests by route template, method and status, with their latency.",
    );
    {
        let series = HTTP.read().unwrap_or_else(|e| e.into_inner());
        let mut routes: Vec<_> = series.iter().collect();
        routes.sort_by(|a, b| a.0.cmp(b.0));
        for (route, per_route) in routes {
            let mut per_route = per_route.clone();
            per_route.sort_by_key(|(m, s, _)| (*m, *s));
            for (method, status, h) in per_route {
                let labels = format!("route=\"{}\",method=\"{method}\",status=\"{status}\"", escape(route));
                h.render(&mut out, "grantry_http_request_duration_seconds", &labels);
            }
        }
    }
    grantry_domain::metrics::global().render(&mut out);

    let store = &state.app.store;
    help(&mut out, "grantry_writer_queue_depth", "gauge", "Writes waiting for the writer.");
    let _ = writeln!(out, "grantry_writer_queue_depth {}", store.write_queue_depth());
    let (in_use, size) = store.read_pool_use();
    help(&mut out, "grantry_db_read_connections_in_use", "gauge", "Read connections in use.");
    let _ = writeln!(out, "grantry_db_read_connections_in_use {in_use}");
    help(&mut out, "grantry_db_read_connections_max", "gauge", "Most read connections.");
    let _ = writeln!(out, "grantry_db_read_connections_max {size}");

    let now = state.app.now();
    let (due, oldest_due, retrying, outbox) = store
        .read(move |c| {
            let due = c.query_one("SELECT COUNT(*), MIN(due_us) FROM jobs WHERE due_us <= ?", &[Value::from(now)])?;
            let retrying = c.query_one("SELECT COUNT(*) FROM jobs WHERE attempts > 0", &[])?;
            let count = |r: &Option<grantry_store::Row>| r.as_ref().and_then(|r| r.opt_int(0).ok().flatten());
            let outbox = c
                .query("SELECT kind, state, COUNT(*) FROM outbox WHERE state <> 'delivered' GROUP BY kind, state", &[])?
                .iter()
                .map(|r| Ok((r.text(0)?, r.text(1)?, r.int(2)?)))
                .collect::<grantry_domain::Result<Vec<_>>>()?;
            Ok((
                count(&due).unwrap_or(0),
                due.as_ref().and_then(|r| r.opt_int(1).ok().flatten()),
                count(&retrying).unwrap_or(0),
                outbox,
            ))
        })
        .await?;
    help(
        &mut out,
        "grantry_outbox_messages",
        "gauge",
        "Outbound messages not delivered, by kind and state (pending, dead: the dead-letter list).",
    );
    for kind in ["callout", "webhook", "mail"] {
        for state in ["pending", "dead"] {
            let n = outbox.iter().find(|(k, s, _)| k == kind && s == state).map_or(0, |(_, _, n)| *n);
            let _ = writeln!(out, "grantry_outbox_messages{{kind=\"{kind}\",state=\"{state}\"}} {n}");
        }
    }
    help(&mut out, "grantry_jobs_due", "gauge", "Background jobs due now and not yet run.");
    let _ = writeln!(out, "grantry_jobs_due {due}");
    help(
        &mut out,
        "grantry_jobs_oldest_due_seconds",
        "gauge",
        "How long the oldest due job has waited (0 when none is due).",
    );
    let lag = oldest_due.map_or(0.0, |us| ((now.timestamp_micros() - us).max(0)) as f64 / 1e6);
    let _ = writeln!(out, "grantry_jobs_oldest_due_seconds {lag}");
    help(&mut out, "grantry_jobs_retrying", "gauge", "Background jobs that failed at least once and wait for a retry.");
    let _ = writeln!(out, "grantry_jobs_retrying {retrying}");
    Ok(out)
}

fn text(body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// `GET /metrics` on the main listener: for those who may read the audit trail.
pub async fn scrape(State(state): State<AppState>, Authed(caller): Authed) -> ApiResult<Response> {
    grantry_core::audit::require_reader(&caller)?;
    Ok(text(render(&state).await?))
}

/// `GET /metrics` on `--metrics-listen`: no token (the address is the access control).
pub async fn scrape_open(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(text(render(&state).await?))
}

/// The router of `--metrics-listen`: `/metrics` only.
pub fn open_router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape_open))
        .fallback(|req: Request| async move { crate::error::not_found_route(req.method().as_str(), req.uri().path()) })
        .with_state(state)
}
