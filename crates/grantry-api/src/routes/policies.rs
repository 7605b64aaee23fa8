//! Assignment policies: v1.0 `assignmentPolicies`, beta `accessPackageAssignmentPolicies`
//! (both names under both roots), also nested under an access package and under
//! `catalogs/{id}/accessPackages/{id}`, and directly under the version root as the old
//! beta docs show (`POST /beta/accessPackageAssignmentPolicies`).
//!
//! PATCH is accepted as a partial update (Graph documents only PUT, but scripts send
//! PATCH): the properties sent replace the policy's, everything else is kept.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{GraphJson, RawQuery, Root};
use crate::respond;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use grantry_core::policies::{self, PackageScope};
use grantry_domain::Error;
use grantry_domain::model::{AccessPackage, Catalog, CustomExtension, Policy};
use grantry_graph::policy::{PolicyExpand, PolicyView, parse_policy, render_policy};
use grantry_graph::{Body, Dialect};
use serde_json::{Map, Value};
use std::collections::HashMap;

const NAMES: [&str; 2] = ["assignmentPolicies", "accessPackageAssignmentPolicies"];
const BASES: [&str; 2] = ["/identityGovernance/entitlementManagement", ""];

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for base in BASES {
        for name in NAMES {
            r = r
                .route(&format!("{base}/{name}"), get(list).post(create))
                .route(&format!("{base}/{name}/{{id}}"), get(read).put(replace).patch(patch).delete(remove))
                .route(&format!("{base}/accessPackages/{{id}}/{name}"), get(list).post(create))
                .route(&format!("{base}/accessPackages/{{id}}/{name}/{{policy_id}}"), get(read));
            for catalogs in ["catalogs", "accessPackageCatalogs"] {
                r = r.route(
                    &format!("{base}/{catalogs}/{{id}}/accessPackages/{{package_id}}/{name}"),
                    get(list).post(create),
                );
            }
        }
    }
    r
}

fn set(d: Dialect) -> String {
    format!("{}/{}", respond::EM, d.pick("assignmentPolicies", "accessPackageAssignmentPolicies"))
}

/// The package scope of a nested path, from its parameters.
fn scope_of(params: &HashMap<String, String>) -> Option<PackageScope> {
    match (params.get("package_id"), params.get("id")) {
        (Some(pkg), catalog) => Some(PackageScope { access_package_id: pkg.clone(), catalog_id: catalog.cloned() }),
        (None, Some(pkg)) => Some(PackageScope { access_package_id: pkg.clone(), catalog_id: None }),
        _ => None,
    }
}

/// What `$expand` asks for. `questions` and `customExtensionStageSettings` are always inline.
struct Expand {
    package: bool,
    catalog: bool,
    handlers: bool,
    /// `customExtensionStageSettings($expand=customExtension)` (or the beta
    /// `customExtensionHandlers`): whole extensions instead of `{id}` stubs.
    extensions: bool,
}

/// Whether a stage-settings item's nested `$expand` asks for the extensions; anything else
/// nested is refused.
fn nested_extensions(item: &grantry_odata::ast::ExpandItem, raw: &str) -> Result<bool, Error> {
    let mut wanted = false;
    for nested in &item.options.expand {
        match nested.path.first().map(|s| s.to_ascii_lowercase()).as_deref() {
            Some("customextension" | "*") if nested.path.len() == 1 => wanted = true,
            _ => {
                return Err(Error::bad_request(
                    "BadRequest",
                    format!("'$expand={raw}': a stage setting can expand only customExtension."),
                )
                .with_target("$expand"));
            }
        }
    }
    Ok(wanted)
}

fn parse_expand(q: &RawQuery) -> Result<Expand, Error> {
    let mut e = Expand { package: false, catalog: false, handlers: false, extensions: false };
    let Some(raw) = q.get("$expand") else { return Ok(e) };
    let items = grantry_odata::parse_expand(raw)
        .map_err(|err| Error::bad_request("BadRequest", err.to_string()).with_target("$expand"))?;
    for item in items {
        let name = item.path.first().map(|s| s.to_ascii_lowercase()).unwrap_or_default();
        match name.as_str() {
            "*" => {
                e.package = true;
                e.catalog = true;
                e.handlers = true;
            }
            "accesspackage" => e.package = true,
            "catalog" | "accesspackagecatalog" => e.catalog = true,
            "customextensionhandlers" => {
                e.handlers = true;
                e.extensions |= nested_extensions(&item, raw)?;
            }
            "customextensionstagesettings" => e.extensions |= nested_extensions(&item, raw)?,
            "questions" => {}
            _ => {
                return Err(Error::bad_request(
                    "BadRequest",
                    format!(
                        "'$expand={raw}': a policy can expand accessPackage, catalog (beta accessPackageCatalog), questions, customExtensionStageSettings and customExtensionHandlers."
                    ),
                )
                .with_target("$expand"));
            }
        }
    }
    Ok(e)
}

/// The packages, catalogs and custom extensions `$expand` names, for every policy of a page
/// in one read each.
#[derive(Default)]
struct Related {
    packages: HashMap<String, AccessPackage>,
    catalogs: HashMap<String, Catalog>,
    extensions: Vec<CustomExtension>,
}

async fn related(s: &AppState, policies: &[Policy], e: &Expand) -> ApiResult<Related> {
    let mut related = Related::default();
    if e.package || e.catalog {
        (related.packages, related.catalogs) = policies::related(&s.app, policies).await?;
    }
    if e.extensions {
        // The caller may read these policies, and so their catalogs, where the extensions are.
        let mut ids: Vec<String> = policies
            .iter()
            .flat_map(|p| {
                p.custom_extension_stage_settings.iter().map(|x| grantry_domain::ids::normalize(&x.custom_extension_id))
            })
            .collect();
        ids.sort();
        ids.dedup();
        related.extensions = grantry_core::extensions::extensions_by_ids(&s.app, ids).await?;
    }
    Ok(related)
}

fn view<'a>(d: Dialect, p: &'a Policy, e: &Expand, related: &'a Related) -> PolicyView<'a> {
    let expand = PolicyExpand {
        access_package: if e.package { related.packages.get(&p.access_package_id) } else { None },
        catalog: if e.catalog { related.catalogs.get(&p.catalog_id) } else { None },
        custom_extension_handlers: e.handlers,
        custom_extensions: e.extensions.then_some(related.extensions.as_slice()),
    };
    PolicyView::new(p, d, &expand)
}

fn plain(p: &Policy, d: Dialect) -> PolicyView<'_> {
    PolicyView::new(p, d, &PolicyExpand::default())
}

async fn list(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    params: Option<Path<HashMap<String, String>>>,
    q: RawQuery,
) -> ApiResult<Response> {
    let params = params.map(|Path(p)| p).unwrap_or_default();
    let expand = parse_expand(&q)?;
    let listed = policies::list_policies(&s.app, &caller, q.list_options()?, scope_of(&params)).await?;
    let related = related(&s, &listed.items, &expand).await?;
    let items: Vec<PolicyView<'_>> = listed.items.iter().map(|p| view(d, p, &expand, &related)).collect();
    let page = grantry_core::listing::Listed { items, next: listed.next.clone(), count: listed.count };
    Ok(respond::collection(&s, d, &set(d), page, &q))
}

async fn create(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    params: Option<Path<HashMap<String, String>>>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let params = params.map(|Path(p)| p).unwrap_or_default();
    let body = Body::root(&json)?;
    let input = parse_policy(&body, d)?;
    crate::schema::check(&body, d, POLICY_TYPE)?;
    let policy = policies::create_policy(&s.app, &caller, input, scope_of(&params)).await?;
    Ok(respond::created(&s, d, &set(d), plain(&policy, d)))
}

async fn read(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    params: Option<Path<HashMap<String, String>>>,
    q: RawQuery,
) -> ApiResult<Response> {
    let params = params.map(|Path(p)| p).unwrap_or_default();
    let expand = parse_expand(&q)?;
    let (id, scope) = match params.get("policy_id") {
        Some(pid) => (pid.clone(), scope_of(&params)),
        None => (params.get("id").cloned().unwrap_or_default(), None),
    };
    let policy = policies::get_policy(&s.app, &caller, &id, scope).await?;
    let related = related(&s, std::slice::from_ref(&policy), &expand).await?;
    Ok(respond::entity(&s, d, &set(d), view(d, &policy, &expand, &related)))
}

async fn replace(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let body = Body::root(&json)?;
    let input = parse_policy(&body, d)?;
    crate::schema::check(&body, d, POLICY_TYPE)?;
    let policy = policies::replace_policy(&s.app, &caller, &id, input).await?;
    Ok(respond::entity(&s, d, &set(d), plain(&policy, d)))
}

const POLICY_TYPE: &str = "accessPackageAssignmentPolicy";

/// Top-level keys of the v1.0 rendering that a beta-named key in a PATCH body replaces.
const BETA_REPLACES: &[(&str, &[&str])] = &[
    ("durationInDays", &["expiration"]),
    ("expirationDateTime", &["expiration"]),
    ("accessReviewSettings", &["reviewSettings"]),
    ("accessPackageNotificationSettings", &["notificationSettings"]),
    ("customExtensionHandlers", &["customExtensionStageSettings"]),
];

async fn patch(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let current = policies::get_policy(&s.app, &caller, &id, None).await?;
    let Value::Object(mut merged) = render_policy(&current, Dialect::V1) else {
        return Err(Error::internal("policy rendering is not an object").into());
    };
    for k in ["id", "createdDateTime", "modifiedDateTime"] {
        merged.remove(k);
    }
    let patch: Map<String, Value> = json.as_object().cloned().unwrap_or_default();
    let sent: Vec<String> = patch.keys().cloned().collect();
    for (key, replaced) in BETA_REPLACES {
        if patch.contains_key(*key) {
            for r in *replaced {
                merged.remove(*r);
            }
        }
    }
    if patch.get("requestorSettings").and_then(|r| r.get("scopeType")).is_some() {
        merged.remove("allowedTargetScope");
        merged.remove("specificAllowedTargets");
    }
    merged.extend(patch);
    let merged = Value::Object(merged);
    let body = Body::root(&merged)?;
    let input = parse_policy(&body, d)?;
    // Only what the client sent is checked; the rest is this server's own rendering.
    crate::schema::check_sent(&body, d, POLICY_TYPE, &sent)?;
    let policy = policies::replace_policy(&s.app, &caller, &id, input).await?;
    Ok(respond::entity(&s, d, &set(d), plain(&policy, d)))
}

async fn remove(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    policies::delete_policy(&s.app, &caller, &id).await?;
    Ok(respond::no_content())
}

/// The operations `routes()` serves, for the OpenAPI document (v1.0 segment names).
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    let b = em("assignmentPolicies");
    vec![
        list(b.clone(), "List assignment policies", "Policy"),
        create(b.clone(), "Create an assignment policy", "Policy"),
        read(format!("{b}/{{id}}"), "Get an assignment policy", "Policy"),
        op("put", format!("{b}/{{id}}"), "Replace an assignment policy", Some("Policy"), 200, Some("Policy")),
        update(format!("{b}/{{id}}"), "Update an assignment policy", "Policy"),
        remove(format!("{b}/{{id}}"), "Delete an assignment policy"),
        list(em("accessPackages/{id}/assignmentPolicies"), "Policies of a package", "Policy"),
        create(em("accessPackages/{id}/assignmentPolicies"), "Create a policy of a package", "Policy"),
        read(em("accessPackages/{id}/assignmentPolicies/{policy_id}"), "A policy of a package", "Policy"),
        list(
            em("catalogs/{id}/accessPackages/{package_id}/assignmentPolicies"),
            "Policies of a package of a catalog",
            "Policy",
        ),
        create(
            em("catalogs/{id}/accessPackages/{package_id}/assignmentPolicies"),
            "Create a policy of a package of a catalog",
            "Policy",
        ),
    ]
}
