//! Custom extensions of a catalog: v1.0 `catalogs/{id}/customWorkflowExtensions`, beta
//! `accessPackageCatalogs/{id}/accessPackageCustomWorkflowExtensions` and the deprecated
//! `customAccessPackageWorkflowExtensions` (all names under both roots). Graph documents PUT
//! for updates and scripts send PATCH; both update the properties sent.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{GraphJson, RawQuery, Root};
use crate::respond;
use crate::routes::catalogs::{em_route, set};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use grantry_core::extensions;
use grantry_core::listing::Listed;
use grantry_domain::model::ExtensionKind;
use grantry_graph::catalog::sets;
use grantry_graph::extension::{self as wire, ExtensionView, LEGACY_SET, SET};
use grantry_graph::{Body, Dialect};

const CURRENT: &str =
    "[catalogs|accessPackageCatalogs]/{id}/[customWorkflowExtensions|accessPackageCustomWorkflowExtensions]";
const LEGACY: &str = "[catalogs|accessPackageCatalogs]/{id}/customAccessPackageWorkflowExtensions";

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    r = em_route(r, CURRENT, get(list).post(create));
    r = em_route(r, &format!("{CURRENT}/{{eid}}"), get(read).patch(update).put(update).delete(remove));
    r = em_route(r, LEGACY, get(list).post(create_legacy));
    r = em_route(r, &format!("{LEGACY}/{{eid}}"), get(read).patch(update).put(update).delete(remove));
    r
}

fn context(d: Dialect, catalog_id: &str) -> String {
    format!("{}/{catalog_id}/{}", set(d, sets::CATALOGS), d.pick(SET.0, SET.1))
}

async fn create_with(
    s: AppState,
    d: Dialect,
    caller: grantry_core::Caller,
    catalog_id: String,
    json: serde_json::Value,
    default_kind: Option<ExtensionKind>,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let input = wire::extension_input(&b)?;
    let e = extensions::create_extension(&s.app, &caller, &catalog_id, input, default_kind).await?;
    let ctx = if default_kind.is_some() {
        format!("{}/{catalog_id}/{LEGACY_SET}", set(d, sets::CATALOGS))
    } else {
        context(d, &catalog_id)
    };
    Ok(respond::created(&s, d, &ctx, ExtensionView::new(&e, d).with_secret(&e)))
}

async fn create(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(catalog_id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    create_with(s, d, caller, catalog_id, json, None).await
}

/// The deprecated collection creates `customAccessPackageWorkflowExtension`s when the body
/// names no type.
async fn create_legacy(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(catalog_id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    create_with(s, d, caller, catalog_id, json, Some(ExtensionKind::CustomAccessPackageWorkflow)).await
}

async fn list(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(catalog_id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let listed = extensions::list_extensions(&s.app, &caller, &catalog_id, q.list_options()?).await?;
    let items = listed.items.iter().map(|e| ExtensionView::new(e, d)).collect();
    let listed = Listed { items, next: listed.next, count: listed.count };
    Ok(respond::collection(&s, d, &context(d, &catalog_id), listed, &q))
}

async fn read(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((catalog_id, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let e = extensions::get_extension(&s.app, &caller, &catalog_id, &id).await?;
    Ok(respond::entity(&s, d, &context(d, &catalog_id), ExtensionView::new(&e, d)))
}

/// PATCH and PUT: the properties sent replace the extension's; the answer is the updated
/// extension (the beta example of PUT answers 200 with it).
async fn update(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((catalog_id, id)): Path<(String, String)>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let input = wire::extension_input(&b)?;
    let e = extensions::update_extension(&s.app, &caller, &catalog_id, &id, input).await?;
    Ok(respond::entity(&s, d, &context(d, &catalog_id), ExtensionView::new(&e, d)))
}

async fn remove(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path((catalog_id, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    extensions::delete_extension(&s.app, &caller, &catalog_id, &id).await?;
    Ok(respond::no_content())
}

pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    let path = em("catalogs/{id}/customWorkflowExtensions");
    let item = em("catalogs/{id}/customWorkflowExtensions/{eid}");
    vec![
        list(path.clone(), "Custom extensions of a catalog", "Object"),
        create(path, "Create a custom extension (the answer carries its signing secret, once)", "Object"),
        read(item.clone(), "Get a custom extension", "Object"),
        op("patch", item.clone(), "Update a custom extension", Some("Object"), 200, Some("Object")),
        op(
            "put",
            item.clone(),
            "Update a custom extension (as Graph documents it)",
            Some("Object"),
            200,
            Some("Object"),
        ),
        remove(item, "Delete a custom extension (refused while a policy uses it)"),
    ]
}
