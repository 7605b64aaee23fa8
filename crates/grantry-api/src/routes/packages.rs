//! `/accessPackages` with their resource role scopes and incompatibilities; tenant-level
//! `/resourceRoleScopes` (beta `/accessPackageResourceRoleScopes`).

use super::catalogs::{
    em_route, expand_name, expands, insert, nullable_str, patch_display_name, set, unsupported_expand,
};
use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{GraphJson, RawQuery, Root};
use crate::respond::{self, EM};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get, post};
use grantry_core::listing::Listed;
use grantry_core::packages::{self, NewPackage, NewRoleScope, PackagePatch, RoleScopeView};
use grantry_core::{Caller, catalogs};
use grantry_domain::Error;
use grantry_domain::model::AccessPackage;
use grantry_graph::catalog::{self as wire, nav, sets};
use grantry_graph::{Body, Dialect};
use grantry_odata::ExpandItem;
use serde_json::{Value, json};
use std::collections::HashMap;

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

// ---------------------------------------------------------------------------------------
// Expansion

/// The expansion of a package's assignment policies (`$expand=assignmentPolicies`, beta
/// `accessPackageAssignmentPolicies`): package id → rendered policies. The caller could read
/// the packages, and a package's policies are readable with it.
async fn policies_expansion(
    s: &AppState,
    d: Dialect,
    _caller: &Caller,
    package_ids: &[String],
    _item: &ExpandItem,
) -> ApiResult<HashMap<String, Vec<Value>>> {
    let ids = package_ids.to_vec();
    let policies = s
        .app
        .store
        .read(move |c| {
            let mut out = Vec::new();
            for id in &ids {
                out.push((id.clone(), grantry_core::policies::policies_for_package(c, id)?));
            }
            Ok(out)
        })
        .await?;
    Ok(policies
        .into_iter()
        .map(|(id, list)| (id, list.iter().map(|p| grantry_graph::policy::render_policy(p, d)).collect()))
        .collect())
}

fn role_scope_json(v: &RoleScopeView, d: Dialect, with_role: bool, with_scope: bool) -> Value {
    wire::role_scope(
        &v.role_scope,
        d,
        if with_role { v.role.as_ref() } else { None },
        if with_scope { v.scope.as_ref() } else { None },
    )
}

/// Which of `role` and `scope` a role-scope expansion asks for.
fn role_scope_parts(d: Dialect, nested: &[ExpandItem]) -> ApiResult<(bool, bool)> {
    let (mut role, mut scope) = (false, false);
    for item in nested {
        match expand_name(item).as_str() {
            "role" | "accesspackageresourcerole" => role = true,
            "scope" | "accesspackageresourcescope" => scope = true,
            "*" => (role, scope) = (true, true),
            _ => return Err(unsupported_expand(item, &[wire::name(d, nav::ROLE), wire::name(d, nav::SCOPE)])),
        }
    }
    Ok((role, scope))
}

const PACKAGE_EXPANDS: &[&str] = &[
    "catalog (beta accessPackageCatalog)",
    "resourceRoleScopes (beta accessPackageResourceRoleScopes)",
    "incompatibleAccessPackages",
    "incompatibleGroups",
    "assignmentPolicies (beta accessPackageAssignmentPolicies)",
];

async fn render_packages(
    s: &AppState,
    d: Dialect,
    caller: &Caller,
    list: &[AccessPackage],
    expand: &[ExpandItem],
) -> ApiResult<Vec<Value>> {
    let mut items: Vec<Value> = list.iter().map(|p| wire::access_package(p, d)).collect();
    let ids: Vec<String> = list.iter().map(|p| p.id.clone()).collect();
    for item in expand {
        match expand_name(item).as_str() {
            "catalog" | "accesspackagecatalog" => {
                let mut cids: Vec<String> = list.iter().map(|p| p.catalog_id.clone()).collect();
                cids.sort();
                cids.dedup();
                let found: HashMap<String, Value> = catalogs::catalogs_by_ids(&s.app, cids)
                    .await?
                    .iter()
                    .map(|c| (c.id.clone(), wire::catalog(c, d)))
                    .collect();
                for (v, p) in items.iter_mut().zip(list) {
                    insert(v, wire::name(d, nav::CATALOG), found.get(&p.catalog_id).cloned().unwrap_or(Value::Null));
                }
            }
            "resourcerolescopes" | "accesspackageresourcerolescopes" => {
                let (role, scope) = role_scope_parts(d, &item.options.expand)?;
                let views = packages::role_scopes_of(&s.app, ids.clone()).await?;
                for (v, p) in items.iter_mut().zip(list) {
                    let mine = views
                        .iter()
                        .filter(|x| x.role_scope.access_package_id == p.id)
                        .map(|x| role_scope_json(x, d, role, scope))
                        .collect();
                    insert(v, wire::name(d, nav::ROLE_SCOPES), Value::Array(mine));
                }
            }
            "incompatibleaccesspackages" => {
                let pairs = packages::incompatible_packages_of(&s.app, caller, ids.clone()).await?;
                for (v, p) in items.iter_mut().zip(list) {
                    let mine =
                        pairs.iter().filter(|(pid, _)| *pid == p.id).map(|(_, x)| wire::access_package(x, d)).collect();
                    insert(v, "incompatibleAccessPackages", Value::Array(mine));
                }
            }
            "incompatiblegroups" => {
                let pairs = packages::incompatible_groups_of(&s.app, ids.clone()).await?;
                for (v, p) in items.iter_mut().zip(list) {
                    let mine = pairs
                        .iter()
                        .filter(|(pid, _)| *pid == p.id)
                        .map(|(_, g)| grantry_graph::directory::group(g))
                        .collect();
                    insert(v, "incompatibleGroups", Value::Array(mine));
                }
            }
            "assignmentpolicies" | "accesspackageassignmentpolicies" => {
                let mut found = policies_expansion(s, d, caller, &ids, item).await?;
                for (v, p) in items.iter_mut().zip(list) {
                    insert(v, wire::name(d, nav::POLICIES), Value::Array(found.remove(&p.id).unwrap_or_default()));
                }
            }
            _ => return Err(unsupported_expand(item, PACKAGE_EXPANDS)),
        }
    }
    Ok(items)
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
    Ok(respond::created(&s, d, &packages_set(d), wire::access_package(&package, d)))
}

async fn get_package(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let expand = expands(&q)?;
    let package = packages::get_package(&s.app, &caller, &id).await?;
    let item =
        render_packages(&s, d, &caller, std::slice::from_ref(&package), &expand).await?.pop().unwrap_or(Value::Null);
    Ok(respond::entity(&s, d, &packages_set(d), item))
}

async fn list_packages(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let expand = expands(&q)?;
    let listed = packages::list_packages(&s.app, &caller, q.list_options()?).await?;
    let items = render_packages(&s, d, &caller, &listed.items, &expand).await?;
    let listed = grantry_core::listing::Listed { items, next: listed.next, count: listed.count };
    Ok(respond::collection(&s, d, &packages_set(d), listed, &q))
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
    Ok(respond::entity(&s, d, &set(d, sets::CATALOGS), wire::catalog(&catalog, d)))
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
    Ok(respond::created(&s, d, &ctx, role_scope_json(&view, d, true, true)))
}

async fn list_role_scopes(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let (role, scope) = role_scope_parts(d, &expands(&q)?)?;
    let page = packages::list_role_scopes(&s.app, &caller, &id, q.page()?).await?;
    let items = page.items.iter().map(|v| role_scope_json(v, d, role, scope)).collect();
    let ctx = format!("{}/{id}/{}", packages_set(d), wire::name(d, sets::ROLE_SCOPES));
    Ok(respond::collection(&s, d, &ctx, Listed::after_seq(items, page.next_after_seq), &q))
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
    let (role, scope) = role_scope_parts(d, &expands(&q)?)?;
    let page = packages::list_all_role_scopes(&s.app, &caller, q.page()?).await?;
    let items = page.items.iter().map(|v| role_scope_json(v, d, role, scope)).collect();
    Ok(respond::collection(&s, d, &set(d, sets::ROLE_SCOPES), Listed::after_seq(items, page.next_after_seq), &q))
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
    let items = page.items.iter().map(|p| wire::access_package(p, d)).collect();
    Ok(respond::collection(&s, d, &packages_set(d), Listed::after_seq(items, page.next_after_seq), &q))
}

async fn list_incompatible_package_refs(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = packages::list_incompatible_packages(&s.app, &caller, &id, q.page()?).await?;
    let items = page.items.iter().map(|p| json!({ "@odata.id": package_url(&s, d, &p.id) })).collect();
    Ok(respond::collection(&s, d, "Collection($ref)", Listed::after_seq(items, page.next_after_seq), &q))
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
    Ok(respond::collection(&s, d, "groups", Listed::after_seq(items, page.next_after_seq), &q))
}

async fn list_incompatible_group_refs(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = packages::list_incompatible_groups(&s.app, &caller, &id, q.page()?).await?;
    let items = page.items.iter().map(|g| json!({ "@odata.id": group_url(&s, d, &g.id) })).collect();
    Ok(respond::collection(&s, d, "Collection($ref)", Listed::after_seq(items, page.next_after_seq), &q))
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
    let items = page.items.iter().map(|p| wire::access_package(p, d)).collect();
    Ok(respond::collection(&s, d, &packages_set(d), Listed::after_seq(items, page.next_after_seq), &q))
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
