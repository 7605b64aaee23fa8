//! `/catalogs` (beta `/accessPackageCatalogs`) with their resources, roles and scopes;
//! `/resourceRequests` (beta `/accessPackageResourceRequests`); tenant-level `/resources`;
//! `/settings`. Also the helpers the entitlement management routes share: registering a
//! path under both dialects' segment names, and the PATCH readers.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::expand::{CatalogExpand, ParentResourceExpand, ResourceExpand, em_items as expands};
use crate::extract::{GraphJson, RawQuery, Root};
use crate::respond::{self, EM};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use grantry_core::catalogs::{self, CatalogPatch, NewCatalog, SettingsPatch};
use grantry_core::listing::Listed;
use grantry_core::related;
use grantry_core::resources::{self, NewResourceRequest};
use grantry_domain::Error;
use grantry_domain::enums::{CatalogState, ExternalUserLifecycleAction, RequestType};
use grantry_domain::model::{Resource, ResourceRole, ResourceScope};
use grantry_graph::catalog::{
    self as wire, CatalogView, PackageView, ResourceRequestView, ResourceRoleView, ResourceScopeView, ResourceView,
    SettingsView, nav, sets,
};
use grantry_graph::{Body, Dialect};
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Shared helpers

/// Registers `pattern` (below `/identityGovernance/entitlementManagement/`) once for each
/// combination of alternative segment names written `[a|b]`, so both dialects' names are
/// routed under both roots.
pub(crate) fn em_route(router: Router<AppState>, pattern: &str, handler: MethodRouter<AppState>) -> Router<AppState> {
    let mut paths = vec![String::new()];
    for segment in pattern.split('/') {
        let options: Vec<&str> = match segment.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(alts) => alts.split('|').collect(),
            None => vec![segment],
        };
        paths = paths.iter().flat_map(|p| options.iter().map(move |o| format!("{p}/{o}"))).collect();
    }
    paths.into_iter().fold(router, |r, p| r.route(&format!("/{EM}{p}"), handler.clone()))
}

/// The `@odata.context` set path for a collection below the EM root.
pub(crate) fn set(d: Dialect, pair: (&'static str, &'static str)) -> String {
    format!("{EM}/{}", wire::name(d, pair))
}

/// A string property that may be set to null in a PATCH: `Some(None)` clears it.
pub(crate) fn nullable_str(b: &Body, key: &str) -> ApiResult<Option<Option<String>>> {
    match b.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(_) => Ok(Some(b.str(&[key])?)),
    }
}

/// A display name in a PATCH: absent, or a non-empty string.
pub(crate) fn patch_display_name(b: &Body) -> ApiResult<Option<String>> {
    if b.has("displayName") { Ok(Some(b.required_str(&["displayName"])?)) } else { Ok(None) }
}

// ---------------------------------------------------------------------------------------
// Routes

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    r = em_route(r, "[catalogs|accessPackageCatalogs]", get(list_catalogs).post(create_catalog));
    r = em_route(
        r,
        "[catalogs|accessPackageCatalogs]/{id}",
        get(get_catalog).patch(update_catalog).delete(delete_catalog),
    );
    r = em_route(r, "[catalogs|accessPackageCatalogs]/{id}/accessPackages", get(list_catalog_packages));
    r = em_route(
        r,
        "[catalogs|accessPackageCatalogs]/{id}/[resources|accessPackageResources]",
        get(list_catalog_resources),
    );
    r = em_route(
        r,
        "[catalogs|accessPackageCatalogs]/{id}/[resources|accessPackageResources]/{rid}",
        get(get_catalog_resource),
    );
    r = em_route(
        r,
        "[catalogs|accessPackageCatalogs]/{id}/[resources|accessPackageResources]/{rid}/[roles|accessPackageResourceRoles]",
        get(list_resource_roles_of_resource),
    );
    r = em_route(
        r,
        "[catalogs|accessPackageCatalogs]/{id}/[resources|accessPackageResources]/{rid}/[scopes|accessPackageResourceScopes]",
        get(list_resource_scopes_of_resource),
    );
    r = em_route(
        r,
        "[catalogs|accessPackageCatalogs]/{id}/[resourceRoles|accessPackageResourceRoles]",
        get(list_catalog_roles),
    );
    r = em_route(
        r,
        "[catalogs|accessPackageCatalogs]/{id}/[resourceScopes|accessPackageResourceScopes]",
        get(list_catalog_scopes),
    );
    r = em_route(
        r,
        "[resourceRequests|accessPackageResourceRequests]",
        get(list_resource_requests).post(create_resource_request),
    );
    r = em_route(r, "[resourceRequests|accessPackageResourceRequests]/{id}", get(get_resource_request));
    r = em_route(r, "[resources|accessPackageResources]", get(list_all_resources));
    r = em_route(r, "[resources|accessPackageResources]/{id}", get(get_any_resource));
    r = em_route(r, "settings", get(get_settings).patch(update_settings));
    r
}

// ---------------------------------------------------------------------------------------
// Catalogs

async fn create_catalog(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let input = NewCatalog {
        display_name: b.required_str(&["displayName"])?,
        description: b.str(&["description"])?,
        is_externally_visible: b.bool(&["isExternallyVisible"])?,
        state: b.enumeration(&["state", "catalogStatus"], CatalogState::parse, &CatalogState::allowed())?,
        unique_name: b.str(&["uniqueName"])?,
    };
    crate::schema::check(&b, d, "accessPackageCatalog")?;
    let catalog = catalogs::create_catalog(&s.app, &caller, input).await?;
    Ok(respond::created(&s, d, &set(d, sets::CATALOGS), CatalogView::new(&catalog, d)))
}

async fn get_catalog(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let items = expands(&q)?;
    let catalog = catalogs::get_catalog(&s.app, &caller, &id).await?;
    let expand = CatalogExpand::parse(&items)?;
    let related = related::catalogs_related(&s.app, std::slice::from_ref(&catalog), expand.wanted()).await?;
    Ok(respond::entity(&s, d, &set(d, sets::CATALOGS), expand.view(&catalog, d, &related[0])))
}

async fn list_catalogs(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let items = expands(&q)?;
    let listed = catalogs::list_catalogs(&s.app, &caller, q.list_options()?).await?;
    let expand = CatalogExpand::parse(&items)?;
    let related = related::catalogs_related(&s.app, &listed.items, expand.wanted()).await?;
    let views = listed.items.iter().zip(&related).map(|(c, r)| expand.view(c, d, r)).collect();
    Ok(respond::collection(
        &s,
        d,
        &set(d, sets::CATALOGS),
        Listed { items: views, next: listed.next, count: listed.count },
        &q,
    ))
}

async fn update_catalog(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let patch = CatalogPatch {
        display_name: patch_display_name(&b)?,
        description: nullable_str(&b, "description")?,
        is_externally_visible: b.bool(&["isExternallyVisible"])?,
        state: b.enumeration(&["state", "catalogStatus"], CatalogState::parse, &CatalogState::allowed())?,
        unique_name: nullable_str(&b, "uniqueName")?,
    };
    crate::schema::check(&b, d, "accessPackageCatalog")?;
    catalogs::update_catalog(&s.app, &caller, &id, patch).await?;
    Ok(respond::no_content())
}

async fn delete_catalog(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    catalogs::delete_catalog(&s.app, &caller, &id).await?;
    Ok(respond::no_content())
}

async fn list_catalog_packages(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = catalogs::list_catalog_packages(&s.app, &caller, &id, q.page()?).await?;
    let items = page.items.iter().map(|p| PackageView::new(p, d)).collect();
    let ctx = format!("{}/{id}/accessPackages", set(d, sets::CATALOGS));
    Ok(respond::collection(&s, d, &ctx, Listed { items, next: page.next, count: None }, &q))
}

// ---------------------------------------------------------------------------------------
// Resources, roles, scopes

/// Resources with the roles and scopes `$expand` names, loaded for the whole page.
async fn resources_response(
    s: &AppState,
    d: Dialect,
    q: &RawQuery,
    ctx: &str,
    listed: Listed<Resource>,
    items: &[grantry_odata::ExpandItem],
    one: bool,
) -> ApiResult<Response> {
    let expand = ResourceExpand::parse(d, items)?;
    let related = related::resources_related(&s.app, &listed.items, expand.wanted()).await?;
    let views: Vec<ResourceView<'_>> = listed.items.iter().zip(&related).map(|(x, r)| expand.view(x, d, r)).collect();
    if one {
        return Ok(respond::entity(s, d, ctx, views.into_iter().next()));
    }
    Ok(respond::collection(s, d, ctx, Listed { items: views, next: listed.next, count: listed.count }, q))
}

async fn list_catalog_resources(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let expand = expands(&q)?;
    let listed = resources::list_resources(&s.app, &caller, Some(&id), q.list_options()?).await?;
    let ctx = format!("{}/{id}/{}", set(d, sets::CATALOGS), wire::name(d, sets::RESOURCES));
    resources_response(&s, d, &q, &ctx, listed, &expand, false).await
}

async fn get_catalog_resource(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((id, rid)): Path<(String, String)>,
    q: RawQuery,
) -> ApiResult<Response> {
    let expand = expands(&q)?;
    let resource = resources::get_resource(&s.app, &caller, Some(&id), &rid).await?;
    let ctx = format!("{}/{id}/{}", set(d, sets::CATALOGS), wire::name(d, sets::RESOURCES));
    resources_response(&s, d, &q, &ctx, Listed::from(vec![resource]), &expand, true).await
}

async fn list_all_resources(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let expand = expands(&q)?;
    let listed = resources::list_resources(&s.app, &caller, None, q.list_options()?).await?;
    resources_response(&s, d, &q, &set(d, sets::RESOURCES), listed, &expand, false).await
}

async fn get_any_resource(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let expand = expands(&q)?;
    let resource = resources::get_resource(&s.app, &caller, None, &id).await?;
    resources_response(&s, d, &q, &set(d, sets::RESOURCES), Listed::from(vec![resource]), &expand, true).await
}

/// The resource of each role or scope of a page when `$expand` names it.
async fn parents(
    s: &AppState,
    d: Dialect,
    q: &RawQuery,
    resource_ids: Vec<&str>,
) -> ApiResult<Option<Vec<Option<Resource>>>> {
    let expand = ParentResourceExpand::parse(d, &expands(q)?)?;
    if !expand.resource {
        return Ok(None);
    }
    Ok(Some(related::parent_resources(&s.app, &resource_ids).await?))
}

async fn roles_response(
    s: &AppState,
    d: Dialect,
    q: &RawQuery,
    ctx: String,
    page: Listed<ResourceRole>,
) -> ApiResult<Response> {
    let parents = parents(s, d, q, page.items.iter().map(|r| r.resource_id.as_str()).collect()).await?;
    let items = page
        .items
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let v = ResourceRoleView::new(r, d);
            match &parents {
                Some(found) => v.with_resource(found[i].as_ref().map(|x| ResourceView::new(x, d))),
                None => v,
            }
        })
        .collect();
    Ok(respond::collection(s, d, &ctx, Listed { items, next: page.next, count: page.count }, q))
}

async fn scopes_response(
    s: &AppState,
    d: Dialect,
    q: &RawQuery,
    ctx: String,
    page: Listed<ResourceScope>,
) -> ApiResult<Response> {
    let parents = parents(s, d, q, page.items.iter().map(|r| r.resource_id.as_str()).collect()).await?;
    let items = page
        .items
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let v = ResourceScopeView::new(r, d);
            match &parents {
                Some(found) => v.with_resource(found[i].as_ref().map(|x| ResourceView::new(x, d))),
                None => v,
            }
        })
        .collect();
    Ok(respond::collection(s, d, &ctx, Listed { items, next: page.next, count: page.count }, q))
}

async fn list_catalog_roles(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = resources::list_resource_roles(&s.app, &caller, &id, None, q.list_options()?).await?;
    let ctx = format!("{}/{id}/{}", set(d, sets::CATALOGS), wire::name(d, sets::RESOURCE_ROLES));
    roles_response(&s, d, &q, ctx, page).await
}

async fn list_catalog_scopes(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = resources::list_resource_scopes(&s.app, &caller, &id, None, q.list_options()?).await?;
    let ctx = format!("{}/{id}/{}", set(d, sets::CATALOGS), wire::name(d, sets::RESOURCE_SCOPES));
    scopes_response(&s, d, &q, ctx, page).await
}

async fn list_resource_roles_of_resource(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((id, rid)): Path<(String, String)>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = resources::list_resource_roles(&s.app, &caller, &id, Some(&rid), q.list_options()?).await?;
    let ctx = format!(
        "{}/{id}/{}/{rid}/{}",
        set(d, sets::CATALOGS),
        wire::name(d, sets::RESOURCES),
        wire::name(d, nav::ROLES)
    );
    roles_response(&s, d, &q, ctx, page).await
}

async fn list_resource_scopes_of_resource(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((id, rid)): Path<(String, String)>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = resources::list_resource_scopes(&s.app, &caller, &id, Some(&rid), q.list_options()?).await?;
    let ctx = format!(
        "{}/{id}/{}/{rid}/{}",
        set(d, sets::CATALOGS),
        wire::name(d, sets::RESOURCES),
        wire::name(d, nav::SCOPES)
    );
    scopes_response(&s, d, &q, ctx, page).await
}

// ---------------------------------------------------------------------------------------
// Resource requests

async fn create_resource_request(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let catalog_property =
        if b.has("catalogId") || (d.is_beta() && !b.has("catalog")) { "catalogId" } else { "catalog" };
    let catalog_id = b.bound_id(&["catalog", "accessPackageCatalog"], &["catalogId"])?.ok_or_else(|| {
        Error::invalid_property(
            catalog_property,
            format!("'{catalog_property}' is required: the catalog to add the resource to."),
        )
    })?;
    let resource_property = if b.has("accessPackageResource") || (d.is_beta() && !b.has("resource")) {
        "accessPackageResource"
    } else {
        "resource"
    };
    let r = b.object(&["resource", "accessPackageResource"])?.ok_or_else(|| {
        Error::invalid_property(
            resource_property,
            format!("'{resource_property}' is required: the resource (originId and originSystem) to add or remove."),
        )
    })?;
    let attributes = r.array(&["attributes"])?.map(|(items, _)| items.iter().map(wire::attribute_to_v1).collect());
    let input = NewResourceRequest {
        catalog_id,
        request_type: b.enumeration(&["requestType"], RequestType::parse, "adminAdd, adminUpdate, adminRemove")?,
        justification: b.str(&["justification"])?,
        resource_id: r.str(&["id"])?,
        origin_id: r.str(&["originId"])?,
        origin_system: r.str(&["originSystem"])?,
        display_name: r.str(&["displayName"])?,
        description: r.str(&["description"])?,
        resource_type: r.str(&["resourceType"])?,
        url: r.str(&["url"])?,
        attributes,
        resource_property: resource_property.into(),
        catalog_property: catalog_property.into(),
    };
    crate::schema::check(&b, d, "accessPackageResourceRequest")?;
    let request = resources::create_resource_request(&s.app, &caller, input).await?;
    Ok(respond::created(&s, d, &set(d, sets::RESOURCE_REQUESTS), ResourceRequestView::new(&request, d)))
}

fn request_views<'a>(
    d: Dialect,
    list: &'a [grantry_domain::model::ResourceRequest],
    expand: &[grantry_odata::ExpandItem],
) -> ApiResult<Vec<ResourceRequestView<'a>>> {
    let expand = ParentResourceExpand::parse(d, expand)?;
    Ok(list
        .iter()
        .map(|r| {
            let v = ResourceRequestView::new(r, d);
            if expand.resource { v.with_resource(r) } else { v }
        })
        .collect())
}

async fn get_resource_request(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let expand = expands(&q)?;
    let request = resources::get_resource_request(&s.app, &caller, &id).await?;
    let item = request_views(d, std::slice::from_ref(&request), &expand)?.pop();
    Ok(respond::entity(&s, d, &set(d, sets::RESOURCE_REQUESTS), item))
}

async fn list_resource_requests(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let expand = expands(&q)?;
    let listed = resources::list_resource_requests(&s.app, &caller, q.list_options()?).await?;
    let items = request_views(d, &listed.items, &expand)?;
    let listed = Listed { items, next: listed.next, count: listed.count };
    Ok(respond::collection(&s, d, &set(d, sets::RESOURCE_REQUESTS), listed, &q))
}

// ---------------------------------------------------------------------------------------
// Settings

async fn get_settings(State(s): State<AppState>, Root(d): Root, Authed(caller): Authed) -> ApiResult<Response> {
    let settings = catalogs::get_settings(&s.app, &caller).await?;
    Ok(respond::entity(&s, d, &format!("{EM}/settings"), SettingsView::new(&settings, d)))
}

async fn update_settings(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let duration = match b.duration(&["durationUntilExternalUserDeletedAfterBlocked"])? {
        Some(d) => Some(d),
        None => {
            b.i32(&["daysUntilExternalUserDeletedAfterBlocked"])?.map(|days| chrono::Duration::days(i64::from(days)))
        }
    };
    let patch = SettingsPatch {
        external_user_lifecycle_action: b.enumeration(
            &["externalUserLifecycleAction"],
            ExternalUserLifecycleAction::parse,
            &ExternalUserLifecycleAction::allowed(),
        )?,
        duration_until_external_user_deleted_after_blocked: duration,
    };
    crate::schema::check(&b, d, "entitlementManagementSettings")?;
    catalogs::update_settings(&s.app, &caller, patch).await?;
    Ok(respond::no_content())
}

/// The operations `routes()` serves, for the OpenAPI document (v1.0 segment names).
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    vec![
        list(em("catalogs"), "List catalogs", "Catalog"),
        create(em("catalogs"), "Create a catalog", "Catalog"),
        read(em("catalogs/{id}"), "Get a catalog", "Catalog"),
        update(em("catalogs/{id}"), "Update a catalog", "Catalog"),
        remove(em("catalogs/{id}"), "Delete a catalog"),
        list(em("catalogs/{id}/accessPackages"), "Packages of a catalog", "AccessPackage"),
        list(em("catalogs/{id}/resources"), "Resources of a catalog", "Object"),
        read(em("catalogs/{id}/resources/{rid}"), "A resource of a catalog", "Object"),
        list(em("catalogs/{id}/resources/{rid}/roles"), "Roles of a resource", "Object"),
        list(em("catalogs/{id}/resources/{rid}/scopes"), "Scopes of a resource", "Object"),
        list(em("catalogs/{id}/resourceRoles"), "Resource roles of a catalog", "Object"),
        list(em("catalogs/{id}/resourceScopes"), "Resource scopes of a catalog", "Object"),
        list(em("resourceRequests"), "List resource requests", "Object"),
        create(em("resourceRequests"), "Add or remove a catalog resource", "ResourceRequest"),
        read(em("resourceRequests/{id}"), "Get a resource request", "ResourceRequest"),
        list(em("resources"), "List resources", "Object"),
        read(em("resources/{id}"), "Get a resource", "Object"),
        read(em("settings"), "Entitlement management settings", "Object"),
        update(em("settings"), "Update the settings", "Object"),
    ]
}
