//! Pickers of directory objects on the administration forms: people (requestors,
//! approvers, reviewers), groups, and the groups and applications a catalog may hold.
//!
//! A picker lists at most [`SHOWN`] objects and is narrowed by a search on the server: the
//! page's search box is a plain `GET` form (`?find=…`), so it works without scripts, and
//! `portal.js` makes the same search as the person types through
//! `GET /admin/pickers/{kind}?search=…` (JSON), refreshing the pickers in place. Objects
//! are read with the signed-in person as the caller, so a picker shows what the API shows
//! that person; an object already chosen stays among the choices whatever the search.

use super::session::Signed;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use grantry_core::applications::Application;
use grantry_core::listing::ListOptions;
use grantry_domain::Error;
use grantry_domain::model::{Group, User};
use serde_json::json;
use std::collections::HashMap;

/// The most objects a picker lists.
pub const SHOWN: usize = 50;
/// The longest search term taken.
const MAX_TERM: usize = 100;

/// The search term of `q[name]`, trimmed; `None` when blank.
pub fn term(q: &HashMap<String, String>, name: &str) -> Option<String> {
    q.get(name).map(|v| v.trim().chars().take(MAX_TERM).collect::<String>()).filter(|v| !v.is_empty())
}

fn literal(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

fn filter(properties: &[&str], term: Option<&str>) -> Result<Option<grantry_odata::Expr>, Error> {
    let Some(term) = term else { return Ok(None) };
    let clause = properties.iter().map(|p| format!("contains({p},{})", literal(term))).collect::<Vec<_>>().join(" or ");
    grantry_odata::parse_filter(&clause)
        .map(Some)
        .map_err(|e| Error::bad_request("BadRequest", format!("The search '{term}' cannot be used: {e:?}")))
}

/// People whose name, sign-in name or mail contains `term` (the first [`SHOWN`] without
/// one), and those of `keep` (chosen already) that exist.
pub async fn users(state: &AppState, signed: &Signed, term: Option<&str>, keep: &[&str]) -> Result<Vec<User>, Error> {
    let options = ListOptions {
        filter: filter(&["displayName", "userPrincipalName", "mail"], term)?,
        size: SHOWN,
        ..Default::default()
    };
    let mut found = grantry_core::directory::list_users(&state.app, &signed.caller, options).await?.items;
    for id in keep {
        if !found.iter().any(|u| u.id.eq_ignore_ascii_case(id))
            && let Ok(u) = grantry_core::directory::get_user(&state.app, &signed.caller, id).await
        {
            found.push(u);
        }
    }
    Ok(found)
}

/// Groups whose name contains `term`, and those of `keep`.
pub async fn groups(state: &AppState, signed: &Signed, term: Option<&str>, keep: &[&str]) -> Result<Vec<Group>, Error> {
    let options = ListOptions { filter: filter(&["displayName"], term)?, size: SHOWN, ..Default::default() };
    let mut found = grantry_core::groups::list_groups(&state.app, &signed.caller, options).await?.items;
    for id in keep {
        if !found.iter().any(|g| g.id.eq_ignore_ascii_case(id))
            && let Ok(g) = grantry_core::groups::get_group(&state.app, &signed.caller, id).await
        {
            found.push(g);
        }
    }
    Ok(found)
}

/// Applications (service principals) whose name contains `term`.
pub async fn applications(state: &AppState, signed: &Signed, term: Option<&str>) -> Result<Vec<Application>, Error> {
    let all = grantry_core::applications::list_for(&state.app, &signed.caller).await?;
    let term = term.map(str::to_lowercase);
    Ok(all
        .into_iter()
        .filter(|a| term.as_deref().is_none_or(|t| a.display_name.to_lowercase().contains(t)))
        .take(SHOWN)
        .collect())
}

/// A person as a picker shows them.
pub fn user_label(u: &User) -> String {
    format!("{} ({})", u.display_name, u.user_principal_name)
}

/// `GET /admin/pickers/{kind}?search=…`: the choices of a picker as JSON,
/// `{"value": [{"value", "label"}]}`: `users` and `groups` as the policy form names them
/// (`user:{id}`, `group:{id}`), `resources` (groups and applications) as the catalog's
/// add-resource form does (`AadGroup:{id}`, `AadApplication:{id}`).
pub async fn search(
    State(state): State<AppState>,
    signed: Signed,
    Path(kind): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let term = term(&q, "search");
    let term = term.as_deref();
    let choices: Result<Vec<(String, String)>, Error> = match kind.as_str() {
        "users" => users(&state, &signed, term, &[])
            .await
            .map(|us| us.iter().map(|u| (format!("user:{}", u.id), user_label(u))).collect()),
        "groups" => groups(&state, &signed, term, &[])
            .await
            .map(|gs| gs.into_iter().map(|g| (format!("group:{}", g.id), g.display_name)).collect()),
        "resources" => match (groups(&state, &signed, term, &[]).await, applications(&state, &signed, term).await) {
            (Ok(gs), Ok(apps)) => Ok(gs
                .into_iter()
                .map(|g| (format!("AadGroup:{}", g.id), format!("Group: {}", g.display_name)))
                .chain(
                    apps.into_iter()
                        .map(|a| (format!("AadApplication:{}", a.sp_id), format!("Application: {}", a.display_name))),
                )
                .collect()),
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        other => Err(Error::not_found("picker", other)),
    };
    match choices {
        Ok(choices) => Json(json!({
            "value": choices.iter().map(|(v, l)| json!({ "value": v, "label": l })).collect::<Vec<_>>()
        }))
        .into_response(),
        Err(e) => (crate::error::status_of(e.kind), Json(json!({ "error": { "code": e.code, "message": e.message } })))
            .into_response(),
    }
}
