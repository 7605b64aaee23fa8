//! `/applications` and `/servicePrincipals`: the applications registered with Grantry's
//! token issuer (`grantry app create`) or created through Graph with their app roles, and
//! the app role assignments access packages deliver. One registration is both an
//! application object and its service principal, as in a single-tenant Entra directory.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{GraphJson, Root};
use crate::respond;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use grantry_core::applications::{self, AppRole, AppRoleAssignment, Application};
use grantry_graph::Body;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/applications", get(list_applications).post(create_application))
        .route("/applications/{id}", get(get_application).patch(update_application))
        .route("/servicePrincipals", get(list_service_principals).post(create_service_principal))
        .route("/servicePrincipals/{id}", get(get_service_principal))
        .route("/servicePrincipals/{id}/appRoleAssignedTo", get(app_role_assigned_to))
        .route("/users/{id}/appRoleAssignments", get(user_app_role_assignments))
}

/// A stable id for a permission shown as an app role (the same name gives the same id).
fn role_id(value: &str) -> String {
    let h: String = Sha256::digest(value.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-4{}-8{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// The application's own app roles, then the Graph application permissions it holds
/// (shown as app roles for applications).
fn app_roles(a: &Application) -> Value {
    let own = a.app_roles.iter().map(|r| {
        json!({
            "allowedMemberTypes": r.allowed_member_types,
            "description": r.description,
            "displayName": r.display_name,
            "id": r.id,
            "isEnabled": r.is_enabled,
            "origin": "Application",
            "value": r.value,
        })
    });
    Value::Array(
        own.chain(a.roles.iter().map(|r| {
            json!({
                "allowedMemberTypes": ["Application"],
                "description": format!("Microsoft Graph application permission {r}, granted by Grantry"),
                "displayName": r,
                "id": role_id(r),
                "isEnabled": true,
                "origin": "Application",
                "value": r,
            })
        }))
        .collect(),
    )
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

fn app_role_assignment(a: &AppRoleAssignment) -> Value {
    json!({
        "id": a.id,
        "appRoleId": a.app_role_id,
        "createdDateTime": grantry_graph::ts(a.created),
        "deletedDateTime": null,
        "principalDisplayName": a.principal_display_name,
        "principalId": a.principal_id,
        "principalType": "User",
        "resourceDisplayName": a.resource_display_name,
        "resourceId": a.resource_id,
    })
}

fn application(a: &Application) -> Value {
    json!({
        "id": a.id,
        "appId": a.app_id,
        "displayName": a.display_name,
        "createdDateTime": grantry_graph::ts(a.created),
        "signInAudience": "AzureADMyOrg",
        "appRoles": app_roles(a),
        "passwordCredentials": a.secrets.iter().map(|s| json!({
            "customKeyIdentifier": null,
            "displayName": s.display_name,
            "endDateTime": s.expires.map(grantry_graph::ts).unwrap_or(Value::Null),
            "hint": s.hint,
            "keyId": s.key_id,
            "secretText": null,
            "startDateTime": grantry_graph::ts(s.created),
        })).collect::<Vec<_>>(),
    })
}

fn service_principal(s: &AppState, a: &Application) -> Value {
    json!({
        "id": a.sp_id,
        "appId": a.app_id,
        "displayName": a.display_name,
        "accountEnabled": true,
        "servicePrincipalType": "Application",
        "appOwnerOrganizationId": s.keys.tenant_id,
        "servicePrincipalNames": [a.app_id],
        "appRoles": app_roles(a),
    })
}

fn collection(s: &AppState, d: grantry_graph::Dialect, set: &str, items: Vec<Value>) -> Response {
    respond::json_response(
        axum::http::StatusCode::OK,
        &json!({ "@odata.context": respond::context_url(s, d, set), "value": items }),
    )
}

async fn list_applications(State(s): State<AppState>, Root(d): Root, Authed(caller): Authed) -> ApiResult<Response> {
    let apps = applications::list_for(&s.app, &caller).await?;
    Ok(collection(&s, d, "applications", apps.iter().map(application).collect()))
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
) -> ApiResult<Response> {
    let items = applications::assigned_to(&s.app, &caller, &id).await?;
    Ok(collection(&s, d, "appRoleAssignments", items.iter().map(app_role_assignment).collect()))
}

async fn user_app_role_assignments(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let items = applications::assignments_of_user(&s.app, &caller, &id).await?;
    Ok(collection(&s, d, "appRoleAssignments", items.iter().map(app_role_assignment).collect()))
}

async fn list_service_principals(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
) -> ApiResult<Response> {
    let apps = applications::list_for(&s.app, &caller).await?;
    Ok(collection(&s, d, "servicePrincipals", apps.iter().map(|a| service_principal(&s, a)).collect()))
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
    use crate::openapi::{create, list, read, update};
    vec![
        list("/applications", "Applications registered with Grantry's token issuer", "Object"),
        create("/applications", "Create an application with its service principal and app roles", "Object"),
        read("/applications/{id}", "An application (by id or appId)", "Object"),
        update("/applications/{id}", "Change an application's display name or app roles", "Object"),
        list("/servicePrincipals", "Service principals of the registered applications", "Object"),
        create("/servicePrincipals", "The service principal of an application (by appId)", "Object"),
        read("/servicePrincipals/{id}", "A service principal (by id or appId)", "Object"),
        list(
            "/servicePrincipals/{id}/appRoleAssignedTo",
            "Users assigned to the service principal's app roles",
            "Object",
        ),
        list("/users/{id}/appRoleAssignments", "The app roles a user is assigned", "Object"),
    ]
}
