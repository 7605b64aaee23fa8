//! `/accessPackages` with their resource role scopes and incompatibilities; tenant-level
//! `/resourceRoleScopes` (beta `/accessPackageResourceRoleScopes`).

use super::catalogs::{em_route, nullable_str, patch_display_name, set};
use crate::auth::Authed;
use crate::error::ApiResult;
use crate::expand::{PackageExpand, RoleScopeExpand, em_items as expands};
use crate::extract::{GraphJson, RawQuery, Root};
use crate::respond::{self, EM};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get, post};
use grantry_core::listing::Listed;
use grantry_core::packages::{self, NewPackage, NewRoleScope, PackagePatch};
use grantry_core::{catalogs, related};
use grantry_domain::Error;
use grantry_graph::catalog::{self as wire, CatalogView, PackageView, sets};
use grantry_graph::{Body, Dialect};
use serde::Serialize;
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    r = em_route(r, "accessPackages", get(list_packages).post(create_package));
    r = em_route(r, "accessPackages/{id}", get(get_package).patch(update_package).delete(delete_package));
    r = em_route(r, "accessPackages/{id}/[catalog|accessPackageCatalog]", get(get_package_catalog));
    r = em_route(
        r,
        "accessPackages/{id}/[resourceRoleScopes|accessPackageResourceRoleScopes]",
        get(list_role_scopes).post(add_role_scope),
    );
    r = em_route(
        r,
        "accessPackages/{id}/[resourceRoleScopes|accessPackageResourceRoleScopes]/{rsid}",
        delete(delete_role_scope),
    );
    r = em_route(r, "accessPackages/{id}/incompatibleAccessPackages", get(list_incompatible_packages));
    r = em_route(
        r,
        "accessPackages/{id}/incompatibleAccessPackages/$ref",
        get(list_incompatible_package_refs).post(add_incompatible_package),
    );
    r = em_route(r, "accessPackages/{id}/incompatibleAccessPackages/{other}/$ref", delete(remove_incompatible_package));
    r = em_route(r, "accessPackages/{id}/incompatibleGroups", get(list_incompatible_groups));
    r = em_route(
        r,
        "accessPackages/{id}/incompatibleGroups/$ref",
        get(list_incompatible_group_refs).post(add_incompatible_group),
    );
    r = em_route(r, "accessPackages/{id}/incompatibleGroups/{gid}/$ref", delete(remove_incompatible_group));
    r = em_route(r, "accessPackages/{id}/accessPackagesIncompatibleWith", get(list_incompatible_with));
    r = em_route(r, "accessPackages/{id}/moveToCatalog", post(move_to_catalog));
    r = em_route(r, "[resourceRoleScopes|accessPackageResourceRoleScopes]", get(list_all_role_scopes));
    r
}

fn packages_set(d: Dialect) -> String {
    set(d, sets::PACKAGES)
}

/// An `@odata.id` reference in a `$ref` collection.
#[derive(Serialize)]
struct Reference {
    #[serde(rename = "@odata.id")]
    id: String,
}

// ---------------------------------------------------------------------------------------
// Packages

async fn create_package(
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
            format!("'{catalog_property}' is required: the catalog the access package belongs to."),
        )
    })?;
    let input = NewPackage {
        catalog_id,
        catalog_property: catalog_property.into(),
        display_name: b.required_str(&["displayName"])?,
        description: b.str(&["description"])?,
        is_hidden: b.bool(&["isHidden"])?,
        is_role_scopes_visible: b.bool(&["isRoleScopesVisible"])?,
        unique_name: b.str(&["uniqueName"])?,
    };
    crate::schema::check(&b, d, "accessPackage")?;
    let package = packages::create_package(&s.app, &caller, input).await?;
    Ok(respond::created(&s, d, &packages_set(d), PackageView::new(&package, d)))
}

async fn get_package(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let items = expands(&q)?;
    let package = packages::get_package(&s.app, &caller, &id).await?;
    let expand = PackageExpand::parse(d, &items)?;
    let related = related::packages_related(&s.app, &caller, std::slice::from_ref(&package), expand.wanted()).await?;
    Ok(respond::entity(&s, d, &packages_set(d), expand.view(&package, d, &related[0])))
}

async fn list_packages(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let items = expands(&q)?;
    let listed = packages::list_packages(&s.app, &caller, q.list_options()?).await?;
    let expand = PackageExpand::parse(d, &items)?;
    let related = related::packages_related(&s.app, &caller, &listed.items, expand.wanted()).await?;
    let views = listed.items.iter().zip(&related).map(|(p, r)| expand.view(p, d, r)).collect();
    Ok(respond::collection(
        &s,
        d,
        &packages_set(d),
        Listed { items: views, next: listed.next, count: listed.count },
        &q,
    ))
}

async fn update_package(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let patch = PackagePatch {
        display_name: patch_display_name(&b)?,
        description: nullable_str(&b, "description")?,
        is_hidden: b.bool(&["isHidden"])?,
        is_role_scopes_visible: b.bool(&["isRoleScopesVisible"])?,
        catalog: patch_catalog(&b)?,
    };
    crate::schema::check(&b, d, "accessPackage")?;
    packages::update_package(&s.app, &caller, &id, patch).await?;
    Ok(respond::no_content())
}

/// The catalog a PATCH names, with the property that named it: `catalogId`, a nested
/// `catalog` (beta `accessPackageCatalog`) or their `@odata.bind`.
fn patch_catalog(b: &Body) -> ApiResult<Option<(String, String)>> {
    if let Some(id) = b.str(&["catalogId"])? {
        return Ok(Some(("catalogId".into(), grantry_domain::ids::normalize(&id))));
    }
    for key in ["catalog", "accessPackageCatalog"] {
        if let Some(obj) = b.object(&[key])?
            && let Some(id) = obj.str(&["id"])?
        {
            return Ok(Some((format!("{key}.id"), grantry_domain::ids::normalize(&id))));
        }
        let bind = format!("{key}@odata.bind");
        if let Some(url) = b.str(&[bind.as_str()])? {
            return Ok(Some((bind, grantry_graph::policy::bind_id(&url))));
        }
    }
    Ok(None)
}

async fn delete_package(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    packages::delete_package(&s.app, &caller, &id).await?;
    Ok(respond::no_content())
}

async fn get_package_catalog(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let package = packages::get_package(&s.app, &caller, &id).await?;
    let catalog = catalogs::get_catalog(&s.app, &caller, &package.catalog_id).await?;
    Ok(respond::entity(&s, d, &set(d, sets::CATALOGS), CatalogView::new(&catalog, d)))
}

async fn move_to_catalog(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let target = b.required_str(&["catalogId"])?;
    packages::move_to_catalog(&s.app, &caller, &id, &target).await?;
    Ok(respond::no_content())
}

// ---------------------------------------------------------------------------------------
// Role scopes

async fn add_role_scope(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let role_property = if b.has("accessPackageResourceRole") || (d.is_beta() && !b.has("role")) {
        "accessPackageResourceRole"
    } else {
        "role"
    };
    let scope_property = if b.has("accessPackageResourceScope") || (d.is_beta() && !b.has("scope")) {
        "accessPackageResourceScope"
    } else {
        "scope"
    };
    let role = b.object(&["role", "accessPackageResourceRole"])?.ok_or_else(|| {
        Error::invalid_property(
            role_property,
            format!("'{role_property}' is required: the resource role (originId and resource id) to add."),
        )
    })?;
    let resource_property = if role.has("accessPackageResource") || (d.is_beta() && !role.has("resource")) {
        "accessPackageResource"
    } else {
        "resource"
    };
    let scope = b.object(&["scope", "accessPackageResourceScope"])?;
    let input = NewRoleScope {
        role_id: role.str(&["id"])?,
        role_origin_id: role.str(&["originId"])?,
        role_origin_system: role.str(&["originSystem"])?,
        resource_id: role.bound_id(&["resource", "accessPackageResource"], &[])?,
        scope_id: match &scope {
            Some(sc) => sc.str(&["id"])?,
            None => None,
        },
        scope_origin_id: match &scope {
            Some(sc) => sc.str(&["originId"])?,
            None => None,
        },
        role_property: role_property.into(),
        scope_property: scope_property.into(),
        resource_property: resource_property.into(),
    };
    crate::schema::check(&b, d, "accessPackageResourceRoleScope")?;
    let view = packages::add_role_scope(&s.app, &caller, &id, input).await?;
    let ctx = format!("{}/{id}/{}", packages_set(d), wire::name(d, sets::ROLE_SCOPES));
    Ok(respond::created(&s, d, &ctx, RoleScopeExpand::all().view(&view, d)))
}

async fn list_role_scopes(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let expand = RoleScopeExpand::parse(d, &expands(&q)?)?;
    let page = packages::list_role_scopes(&s.app, &caller, &id, q.page()?).await?;
    let items = page.items.iter().map(|v| expand.view(v, d)).collect();
    let ctx = format!("{}/{id}/{}", packages_set(d), wire::name(d, sets::ROLE_SCOPES));
    Ok(respond::collection(&s, d, &ctx, Listed { items, next: page.next, count: None }, &q))
}

async fn delete_role_scope(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path((id, rsid)): Path<(String, String)>,
) -> ApiResult<Response> {
    packages::delete_role_scope(&s.app, &caller, &id, &rsid).await?;
    Ok(respond::no_content())
}

async fn list_all_role_scopes(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let expand = RoleScopeExpand::parse(d, &expands(&q)?)?;
    let page = packages::list_all_role_scopes(&s.app, &caller, q.page()?).await?;
    let items = page.items.iter().map(|v| expand.view(v, d)).collect();
    Ok(respond::collection(&s, d, &set(d, sets::ROLE_SCOPES), Listed { items, next: page.next, count: None }, &q))
}

// ---------------------------------------------------------------------------------------
// Incompatibilities

/// The id an `@odata.id` reference names after `segment` (e.g. `accessPackages`), in any
/// URL form (`…/accessPackages/{id}`, `…/accessPackages('{id}')`), or a bare id.
fn ref_id(json: &Value, segment: &str) -> ApiResult<String> {
    let b = Body::root(json)?;
    let url = b.required_str(&["@odata.id"])?;
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map(|(_, p)| p).unwrap_or(""),
        None => url.as_str(),
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let normalized = crate::middleware::normalize_path(&format!("/{}", path.trim_start_matches('/')));
    let parts: Vec<String> = normalized
        .split('/')
        .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned())
        .collect();
    if let Some(pos) = parts.iter().rposition(|p| p.eq_ignore_ascii_case(segment))
        && let Some(id) = parts.get(pos + 1).filter(|id| !id.is_empty())
    {
        return Ok(id.clone());
    }
    if parts.len() <= 2 && grantry_domain::ids::is_guid(url.trim()) {
        return Ok(url.trim().to_string());
    }
    Err(Error::invalid_property(
        "@odata.id",
        format!("'@odata.id' must be the URL of an object in /{segment}, e.g. https://graph.microsoft.com/v1.0/…/{segment}/{{id}}; got '{url}'."),
    )
    .into())
}

fn package_url(s: &AppState, d: Dialect, id: &str) -> String {
    format!("{}/{}/{EM}/accessPackages/{id}", s.config.public_base_url, d.root())
}

fn group_url(s: &AppState, d: Dialect, id: &str) -> String {
    format!("{}/{}/groups/{id}", s.config.public_base_url, d.root())
}

async fn list_incompatible_packages(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = packages::list_incompatible_packages(&s.app, &caller, &id, q.page()?).await?;
    let items = page.items.iter().map(|p| PackageView::new(p, d)).collect();
    Ok(respond::collection(&s, d, &packages_set(d), Listed { items, next: page.next, count: None }, &q))
}

async fn list_incompatible_package_refs(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = packages::list_incompatible_packages(&s.app, &caller, &id, q.page()?).await?;
    let items = page.items.iter().map(|p| Reference { id: package_url(&s, d, &p.id) }).collect();
    Ok(respond::collection(&s, d, "Collection($ref)", Listed { items, next: page.next, count: None }, &q))
}

async fn add_incompatible_package(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let other = ref_id(&json, "accessPackages")?;
    packages::add_incompatible_package(&s.app, &caller, &id, &other).await?;
    Ok(respond::no_content())
}

async fn remove_incompatible_package(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path((id, other)): Path<(String, String)>,
) -> ApiResult<Response> {
    packages::remove_incompatible_package(&s.app, &caller, &id, &other).await?;
    Ok(respond::no_content())
}

async fn list_incompatible_groups(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = packages::list_incompatible_groups(&s.app, &caller, &id, q.page()?).await?;
    let items = page.items.iter().map(grantry_graph::directory::group).collect();
    Ok(respond::collection(&s, d, "groups", Listed { items, next: page.next, count: None }, &q))
}

async fn list_incompatible_group_refs(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = packages::list_incompatible_groups(&s.app, &caller, &id, q.page()?).await?;
    let items = page.items.iter().map(|g| Reference { id: group_url(&s, d, &g.id) }).collect();
    Ok(respond::collection(&s, d, "Collection($ref)", Listed { items, next: page.next, count: None }, &q))
}

async fn add_incompatible_group(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let gid = ref_id(&json, "groups")?;
    packages::add_incompatible_group(&s.app, &caller, &id, &gid).await?;
    Ok(respond::no_content())
}

async fn remove_incompatible_group(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path((id, gid)): Path<(String, String)>,
) -> ApiResult<Response> {
    packages::remove_incompatible_group(&s.app, &caller, &id, &gid).await?;
    Ok(respond::no_content())
}

async fn list_incompatible_with(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = packages::list_packages_incompatible_with(&s.app, &caller, &id, q.page()?).await?;
    let items = page.items.iter().map(|p| PackageView::new(p, d)).collect();
    Ok(respond::collection(&s, d, &packages_set(d), Listed { items, next: page.next, count: None }, &q))
}

/// The operations `routes()` serves, for the OpenAPI document (v1.0 segment names).
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    let p = |rest: &str| em(&format!("accessPackages/{{id}}{rest}"));
    vec![
        list(em("accessPackages"), "List access packages", "AccessPackage"),
        create(em("accessPackages"), "Create an access package", "AccessPackage"),
        read(p(""), "Get an access package", "AccessPackage"),
        update(p(""), "Update an access package", "AccessPackage"),
        remove(p(""), "Delete an access package"),
        read(p("/catalog"), "The package's catalog", "Catalog"),
        list(p("/resourceRoleScopes"), "Resource role scopes of a package", "Object"),
        create(p("/resourceRoleScopes"), "Add a resource role scope", "Object"),
        remove(p("/resourceRoleScopes/{rsid}"), "Remove a resource role scope"),
        list(p("/incompatibleAccessPackages"), "Incompatible packages", "AccessPackage"),
        list(p("/incompatibleAccessPackages/$ref"), "Incompatible packages (references)", "Object"),
        op("post", p("/incompatibleAccessPackages/$ref"), "Add an incompatible package", Some("Reference"), 204, None),
        remove(p("/incompatibleAccessPackages/{other}/$ref"), "Remove an incompatible package"),
        list(p("/incompatibleGroups"), "Incompatible groups", "Group"),
        list(p("/incompatibleGroups/$ref"), "Incompatible groups (references)", "Object"),
        op("post", p("/incompatibleGroups/$ref"), "Add an incompatible group", Some("Reference"), 204, None),
        remove(p("/incompatibleGroups/{gid}/$ref"), "Remove an incompatible group"),
        list(p("/accessPackagesIncompatibleWith"), "Packages that name this one incompatible", "AccessPackage"),
        action(p("/moveToCatalog"), "Move a package to another catalog"),
        list(em("resourceRoleScopes"), "List resource role scopes", "Object"),
    ]
}
