//! Administration: for people holding a directory or entitlement management role. What
//! each page shows is what the API shows the same person.

use super::session::Signed;
use super::views::{self, Section, when};
use super::{is_admin, viewer};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::listing::ListOptions;
use grantry_domain::Error;
use grantry_store::query::Cursor;
use maud::html;
use std::collections::HashMap;

/// The refusal (403) of people without an administrative role; `None` for administrators.
fn require_admin(state: &AppState, signed: &Signed) -> Option<Response> {
    if is_admin(signed) {
        None
    } else {
        Some(views::error_page(
            state,
            Some(&viewer(signed)),
            &Error::forbidden(
                "Administration is for Identity Governance Administrators and holders of catalog roles; you have none of these roles.",
            ),
        ))
    }
}

/// `GET /admin`: the catalogs the person may read, with keyset paging.
pub async fn home(State(state): State<AppState>, signed: Signed, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(r) = require_admin(&state, &signed) {
        return r;
    }
    let options = ListOptions {
        after: q.get("after").and_then(|a| a.parse().ok()).map(Cursor::Seq),
        size: 50,
        ..Default::default()
    };
    let listed = match grantry_core::catalogs::list_catalogs(&state.app, &signed.caller, options).await {
        Ok(l) => l,
        Err(e) => return views::error_page(&state, Some(&viewer(&signed)), &e),
    };
    let now = state.app.now();
    let body = html! {
        h2 { "Catalogs" }
        @if listed.items.is_empty() { div.empty { "No catalog you can read." } }
        @else {
            table {
                thead { tr { th scope="col" { "Catalog" } th scope="col" { "State" } th scope="col" { "Created" } } }
                tbody {
                    @for c in &listed.items {
                        tr {
                            td { (c.display_name) @if let Some(d) = c.description.as_ref().filter(|d| !d.is_empty()) { br; span.muted { (d) } } }
                            td { (views::badge(c.state.v1())) }
                            td { (when(c.created_date_time, now)) }
                        }
                    }
                }
            }
        }
        @if let Some(Cursor::Seq(n)) = &listed.next { p.pager { a href={"/admin?after=" (n)} { "More catalogs" } } }
    };
    views::respond(StatusCode::OK, views::page(&state, Some(&viewer(&signed)), Section::Admin, "Administration", body))
}
