//! Resource environments (`resourceEnvironments`, beta `accessPackageResourceEnvironments`).
//!
//! Environments describe the geographic locations of multi-geo SharePoint Online tenants.
//! Grantry delivers into directory groups only, so there are none: the collection is empty
//! and every id is unknown. The documented rule that listing needs a
//! `$filter=originSystem eq '…'` is kept, so scripts get the same answer shape as in Entra.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{RawQuery, Root};
use crate::respond::{self, EM};
use crate::routes::catalogs::em_route;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use grantry_core::auth::perms;
use grantry_core::listing::Listed;
use grantry_domain::Error;

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    r = em_route(r, "[resourceEnvironments|accessPackageResourceEnvironments]", get(list));
    r = em_route(r, "[resourceEnvironments|accessPackageResourceEnvironments]/{id}", get(get_one));
    r
}

async fn list(State(s): State<AppState>, Root(d): Root, Authed(caller): Authed, q: RawQuery) -> ApiResult<Response> {
    caller.require(perms::EM_READ)?;
    let options = q.list_options()?;
    let names_origin_system = q.get("$filter").is_some_and(|f| f.to_ascii_lowercase().contains("originsystem"));
    if options.filter.is_none() || !names_origin_system {
        return Err(Error::bad_request(
            "BadRequest",
            "Listing resource environments needs $filter=originSystem eq '<origin system>', e.g. 'SharePointOnline'.",
        )
        .with_target("$filter")
        .into());
    }
    let set = format!("{EM}/{}", d.pick("resourceEnvironments", "accessPackageResourceEnvironments"));
    Ok(respond::collection(
        &s,
        d,
        &set,
        Listed::<serde_json::Value> { items: Vec::new(), next: None, count: options.count.then_some(0) },
        &q,
    ))
}

async fn get_one(Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    caller.require(perms::EM_READ)?;
    Err(Error::not_found("resource environment", &id).into())
}

pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    vec![
        read(em("resourceEnvironments"), "Resource environments (always empty: no multi-geo SharePoint)", "Object"),
        read(em("resourceEnvironments/{id}"), "A resource environment (none exist)", "Object"),
    ]
}
