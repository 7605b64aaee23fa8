//! The portal's page frame, shared pieces and error pages (maud templates, compiled in).

use crate::state::AppState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use grantry_domain::{Error, ErrorKind};
use maud::{DOCTYPE, Markup, html};

/// The stylesheet, served at `/portal/static/portal.css`.
pub const CSS: &str = include_str!("portal.css");

/// The one script, served at `/portal/static/portal.js`: shows times in the viewer's time
/// zone. Pages work the same without it.
pub const JS: &str = include_str!("portal.js");

/// Who is looking at a page, for its frame.
pub struct Viewer<'a> {
    pub name: &'a str,
    pub csrf: &'a str,
    pub admin: bool,
}

/// Which part of the portal a page belongs to (the navigation marks it).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Access,
    Requests,
    Assignments,
    Approvals,
    Reviews,
    Admin,
    None,
}

/// The development banner: shown on every page while the development clock is on.
fn dev_banner(state: &AppState) -> Markup {
    let Some(clock) = &state.app.dev_clock else { return html! {} };
    let offset = grantry_domain::duration::format(clock.offset());
    html! {
        div.dev-banner role="note" {
            strong { "Development server. " }
            "Time can be moved forward (clock offset " (offset) ")"
            @if state.config.portal.dev_login { " and anyone can sign in as any user (--dev-login)" }
            ". Never use it for real access."
        }
    }
}

/// A whole page.
pub fn page(state: &AppState, viewer: Option<&Viewer>, section: Section, title: &str, body: Markup) -> Markup {
    let nav = |s: Section, href: &str, label: &str| {
        html! { a href=(href) aria-current=[(section == s).then_some("page")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Grantry" }
                link rel="stylesheet" href="/portal/static/portal.css";
                script src="/portal/static/portal.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                (dev_banner(state))
                header.top {
                    a.brand href="/" { "Grantry" }
                    @if let Some(v) = viewer {
                        nav aria-label="Main" {
                            (nav(Section::Access, "/access", "Request access"))
                            (nav(Section::Requests, "/access/requests", "My requests"))
                            (nav(Section::Assignments, "/access/assignments", "My access"))
                            (nav(Section::Approvals, "/approvals", "Approvals"))
                            (nav(Section::Reviews, "/reviews", "Reviews"))
                            @if v.admin { (nav(Section::Admin, "/admin", "Administration")) }
                        }
                        form.signout method="post" action="/sign-out" {
                            input type="hidden" name="csrf" value=(v.csrf);
                            span.who { (v.name) }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// An HTML response that is never cached and never framed.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept, Cookie"));
    response
}

/// A page explaining why something was refused, with the status the API would answer.
pub fn error_page(state: &AppState, viewer: Option<&Viewer>, e: &Error) -> Response {
    let status = crate::error::status_of(e.kind);
    let (title, hint) = match e.kind {
        ErrorKind::Forbidden => ("You don't have access to this", "Ask an administrator if you need it."),
        ErrorKind::NotFound => ("Not found", "It does not exist, or you are not allowed to see it."),
        ErrorKind::Unauthorized => ("Sign-in failed", "Try signing in again."),
        ErrorKind::Internal => ("Something went wrong", "Nothing was changed. Try again in a moment."),
        _ => ("This could not be done", ""),
    };
    let message = if e.kind == ErrorKind::Internal {
        tracing::error!(error = %e.message, "portal: internal error");
        String::new()
    } else {
        e.message.clone()
    };
    respond(
        status,
        page(
            state,
            viewer,
            Section::None,
            title,
            html! {
                @if !message.is_empty() { p.error role="alert" { (message) } }
                @if !hint.is_empty() { p { (hint) } }
                p { a href="/access" { "Back to the portal" } }
            },
        ),
    )
}

/// `2026-12-07 18:00 UTC` with the relative time (`in 30 days`, `2 hours ago`) against
/// the server's clock (the development clock when it is on). Browsers with scripts show the
/// absolute time in the viewer's time zone (`portal.js` rewrites each `time` element from its
/// `datetime`); without scripts it stays in UTC.
pub fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) title=(at.format("%Y-%m-%d %H:%M:%S UTC").to_string()) {
            (at.format("%Y-%m-%d %H:%M UTC").to_string())
        }
        " "
        span.relative { "(" (relative(at, now)) ")" }
    }
}

pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (at - now).num_seconds();
    let (n, unit) = {
        let a = secs.unsigned_abs();
        match a {
            0..=59 => return "just now".into(),
            60..=3599 => ((a + 30) / 60, "minute"),
            3600..=86_399 => ((a + 1800) / 3600, "hour"),
            86_400..=3_887_999 => ((a + 43_200) / 86_400, "day"),
            _ => ((a + 1_296_000) / 2_592_000, "month"),
        }
    };
    let plural = if n == 1 { "" } else { "s" };
    if secs > 0 { format!("in {n} {unit}{plural}") } else { format!("{n} {unit}{plural} ago") }
}

/// A state shown as a badge (`pendingApproval` → "Pending approval").
pub fn badge(state: &str) -> Markup {
    let mut words = String::new();
    for (i, ch) in state.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            words.push(' ');
            words.push(ch.to_ascii_lowercase());
        } else if i == 0 {
            words.push(ch.to_ascii_uppercase());
        } else {
            words.push(ch);
        }
    }
    html! { span class={"badge badge-" (state)} { (words) } }
}
