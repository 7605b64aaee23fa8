//! `/applications` and `/servicePrincipals`: the applications registered with Grantry's
//! token issuer (`grantry app create`) or created through Graph with their app roles, and
//! the app role assignments access packages deliver. One registration is both an
//! application object and its service principal, as in a single-tenant Entra directory.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{GraphJson, RawQuery, Root};
use crate::respond;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use grantry_core::applications::{self, AppRole, AppRoleAssignment, Application};
use grantry_core::listing::Listed;
use grantry_graph::Body;
use grantry_graph::Ts;
use grantry_graph::wire::Null;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/applications", get(list_applications).post(create_application))
        .route("/applications/{id}", get(get_application).patch(update_application).delete(delete_application))
        .route("/servicePrincipals", get(list_service_principals).post(create_service_principal))
        .route("/servicePrincipals/{id}", get(get_service_principal).delete(delete_application))
        .route("/servicePrincipals/{id}/appRoleAssignedTo", get(app_role_assigned_to))
        .route("/users/{id}/appRoleAssignments", get(user_app_role_assignments))
}

/// A stable id for a permission shown as an app role (the same name gives the same id).
fn role_id(value: &str) -> String {
    let h: String = Sha256::digest(value.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-4{}-8{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// `appRole`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AppRoleView<'a> {
    allowed_member_types: MemberTypes<'a>,
    description: Option<Cow<'a, str>>,
    display_name: &'a str,
    id: Cow<'a, str>,
    is_enabled: bool,
    origin: &'static str,
    value: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum MemberTypes<'a> {
    Own(&'a [String]),
    Application([&'static str; 1]),
}

/// The application's own app roles, then the Graph application permissions it holds
/// (shown as app roles for applications).
fn app_roles(a: &Application) -> Vec<AppRoleView<'_>> {
    let own = a.app_roles.iter().map(|r| AppRoleView {
        allowed_member_types: MemberTypes::Own(&r.allowed_member_types),
        description: r.description.as_deref().map(Cow::Borrowed),
        display_name: &r.display_name,
        id: Cow::Borrowed(&r.id),
        is_enabled: r.is_enabled,
        origin: "Application",
        value: r.value.as_deref(),
    });
    own.chain(a.roles.iter().map(|r| AppRoleView {
        allowed_member_types: MemberTypes::Application(["Application"]),
        description: Some(Cow::Owned(format!("Microsoft Graph application permission {r}, granted by Grantry"))),
        display_name: r,
        id: Cow::Owned(role_id(r)),
        is_enabled: true,
        origin: "Application",
        value: Some(r),
    }))
    .collect()
}

/// The `appRoles` of a request body.
fn read_app_roles(b: &Body) -> grantry_domain::Result<Option<Vec<AppRole>>> {
    if b.get("appRoles").is_none_or(|v| v.is_null()) {
        return Ok(None);
    }
    let mut roles = Vec::new();
    for r in b.objects(&["appRoles"])? {
        let member_types = match r.array(&["allowedMemberTypes"])? {
            None => Vec::new(),
            Some((items, path)) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_string).ok_or_else(|| {
                        grantry_domain::Error::invalid_property(&path, format!("'{path}' must be an array of strings."))
                    })
                })
                .collect::<grantry_domain::Result<_>>()?,
        };
        roles.push(AppRole {
            id: r.str(&["id"])?.unwrap_or_default(),
            value: r.str(&["value"])?,
            display_name: r.str(&["displayName"])?.unwrap_or_default(),
            description: r.str(&["description"])?,
            allowed_member_types: member_types,
            is_enabled: r.bool(&["isEnabled"])?.unwrap_or(true),
        });
    }
    Ok(Some(roles))
}

/// `appRoleAssignment`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AppRoleAssignmentView<'a> {
    id: &'a str,
    app_role_id: &'a str,
    created_date_time: Ts,
    deleted_date_time: Null,
    principal_display_name: Option<&'a str>,
    principal_id: &'a str,
    principal_type: &'static str,
    resource_display_name: Option<&'a str>,
    resource_id: &'a str,
}

fn app_role_assignment(a: &AppRoleAssignment) -> AppRoleAssignmentView<'_> {
    AppRoleAssignmentView {
        id: &a.id,
        app_role_id: &a.app_role_id,
        created_date_time: Ts(a.created),
        deleted_date_time: Null,
        principal_display_name: a.principal_display_name.as_deref(),
        principal_id: &a.principal_id,
        principal_type: "User",
        resource_display_name: a.resource_display_name.as_deref(),
        resource_id: &a.resource_id,
    }
}

/// `application`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ApplicationView<'a> {
    id: &'a str,
    app_id: &'a str,
    display_name: &'a str,
    created_date_time: Ts,
    sign_in_audience: &'static str,
    app_roles: Vec<AppRoleView<'a>>,
    password_credentials: Vec<PasswordCredentialView<'a>>,
}

/// `passwordCredential`, without its secret text.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PasswordCredentialView<'a> {
    custom_key_identifier: Null,
    display_name: Option<&'a str>,
    end_date_time: Option<Ts>,
    hint: &'a str,
    key_id: &'a str,
    secret_text: Null,
    start_date_time: Ts,
}

fn application(a: &Application) -> ApplicationView<'_> {
    ApplicationView {
        id: &a.id,
        app_id: &a.app_id,
        display_name: &a.display_name,
        created_date_time: Ts(a.created),
        sign_in_audience: "AzureADMyOrg",
        app_roles: app_roles(a),
        password_credentials: a
            .secrets
            .iter()
            .map(|s| PasswordCredentialView {
                custom_key_identifier: Null,
                display_name: s.display_name.as_deref(),
                end_date_time: s.expires.map(Ts),
                hint: &s.hint,
                key_id: &s.key_id,
                secret_text: Null,
                start_date_time: Ts(s.created),
            })
            .collect(),
    }
}

/// `servicePrincipal`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServicePrincipalView<'a> {
    id: &'a str,
    app_id: &'a str,
    display_name: &'a str,
    account_enabled: bool,
    service_principal_type: &'static str,
    app_owner_organization_id: &'a str,
    service_principal_names: [&'a str; 1],
    app_roles: Vec<AppRoleView<'a>>,
}

fn service_principal<'a>(s: &'a AppState, a: &'a Application) -> ServicePrincipalView<'a> {
    ServicePrincipalView {
        id: &a.sp_id,
        app_id: &a.app_id,
        display_name: &a.display_name,
        account_enabled: true,
        service_principal_type: "Application",
        app_owner_organization_id: &s.keys.tenant_id,
        service_principal_names: [&a.app_id],
        app_roles: app_roles(a),
    }
}

fn collection<T: Serialize>(
    s: &AppState,
    d: grantry_graph::Dialect,
    set: &str,
    items: Vec<T>,
    q: &RawQuery,
) -> Response {
    respond::collection(s, d, set, Listed::from(items), q)
}

async fn list_applications(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let apps = applications::list_for(&s.app, &caller).await?;
    Ok(collection(&s, d, "applications", apps.iter().map(application).collect(), &q))
}

async fn get_application(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let a = applications::get_for(&s.app, &caller, &id).await?;
    Ok(respond::entity(&s, d, "applications", application(&a)))
}

async fn create_application(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let name = b.required_str(&["displayName"])?;
    let roles = read_app_roles(&b)?.unwrap_or_default();
    let a = applications::create_for(&s.app, &caller, &name, roles).await?;
    Ok(respond::created(&s, d, "applications", application(&a)))
}

async fn update_application(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let name = b.str(&["displayName"])?;
    let roles = read_app_roles(&b)?;
    applications::update_for(&s.app, &caller, &id, name, roles).await?;
    Ok(respond::no_content())
}

/// `DELETE /applications/{id}` and `/servicePrincipals/{id}`: one registration is both, so
/// either deletes the application, its service principal and its appRoleAssignments.
async fn delete_application(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    applications::delete_for(&s.app, &caller, &id).await?;
    Ok(respond::no_content())
}

/// `POST /servicePrincipals`: with an `appId`, the service principal of that application
/// (every application has one); with a `displayName` (and `appRoles`) instead, a new
/// application and its service principal.
async fn create_service_principal(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let a = match b.str(&["appId"])? {
        Some(app_id) => applications::service_principal_for(&s.app, &caller, &app_id).await?,
        None => {
            let name = b.str(&["displayName"])?.ok_or_else(|| {
                grantry_domain::Error::invalid_property(
                    "appId",
                    "'appId' is required: the appId of the application (or give 'displayName' to create one).",
                )
            })?;
            let roles = read_app_roles(&b)?.unwrap_or_default();
            applications::create_for(&s.app, &caller, &name, roles).await?
        }
    };
    Ok(respond::created(&s, d, "servicePrincipals", service_principal(&s, &a)))
}

async fn app_role_assigned_to(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let items = applications::assigned_to(&s.app, &caller, &id).await?;
    Ok(collection(&s, d, "appRoleAssignments", items.iter().map(app_role_assignment).collect(), &q))
}

async fn user_app_role_assignments(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let items = applications::assignments_of_user(&s.app, &caller, &id).await?;
    Ok(collection(&s, d, "appRoleAssignments", items.iter().map(app_role_assignment).collect(), &q))
}

async fn list_service_principals(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let apps = applications::list_for(&s.app, &caller).await?;
    Ok(collection(&s, d, "servicePrincipals", apps.iter().map(|a| service_principal(&s, a)).collect(), &q))
}

async fn get_service_principal(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let a = applications::get_for(&s.app, &caller, &id).await?;
    Ok(respond::entity(&s, d, "servicePrincipals", service_principal(&s, &a)))
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::{create, list, read, remove, update};
    vec![
        list("/applications", "Applications registered with Grantry's token issuer", "Object"),
        create("/applications", "Create an application with its service principal and app roles", "Object"),
        read("/applications/{id}", "An application (by id or appId)", "Object"),
        update("/applications/{id}", "Change an application's display name or app roles", "Object"),
        remove("/applications/{id}", "Delete an application with its service principal and app role assignments"),
        list("/servicePrincipals", "Service principals of the registered applications", "Object"),
        create("/servicePrincipals", "The service principal of an application (by appId)", "Object"),
        read("/servicePrincipals/{id}", "A service principal (by id or appId)", "Object"),
        remove("/servicePrincipals/{id}", "Delete a service principal with its application and app role assignments"),
        list(
            "/servicePrincipals/{id}/appRoleAssignedTo",
            "Users assigned to the service principal's app roles",
            "Object",
        ),
        list("/users/{id}/appRoleAssignments", "The app roles a user is assigned", "Object"),
    ]
}
