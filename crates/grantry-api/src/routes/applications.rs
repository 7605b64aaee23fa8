//! `/applications` and `/servicePrincipals`: the applications registered with Grantry's
//! token issuer (`grantry app create`), read-only. One registration is both an application
//! object and its service principal, as in a single-tenant Entra directory.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::Root;
use crate::respond;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use grantry_core::applications::{self, Application};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/applications", get(list_applications))
        .route("/applications/{id}", get(get_application))
        .route("/servicePrincipals", get(list_service_principals))
        .route("/servicePrincipals/{id}", get(get_service_principal))
}

/// A stable id for a permission shown as an app role (the same name gives the same id).
fn role_id(value: &str) -> String {
    let h: String = Sha256::digest(value.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-4{}-8{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

/// The Graph application permissions the application holds, shown as its `appRoles`.
fn app_roles(a: &Application) -> Value {
    Value::Array(
        a.roles
            .iter()
            .map(|r| {
                json!({
                    "allowedMemberTypes": ["Application"],
                    "description": format!("Microsoft Graph application permission {r}, granted by Grantry"),
                    "displayName": r,
                    "id": role_id(r),
                    "isEnabled": true,
                    "origin": "Application",
                    "value": r,
                })
            })
            .collect(),
    )
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
    use crate::openapi::{list, read};
    vec![
        list("/applications", "Applications registered with Grantry's token issuer", "Object"),
        read("/applications/{id}", "An application (by id or appId)", "Object"),
        list("/servicePrincipals", "Service principals of the registered applications", "Object"),
        read("/servicePrincipals/{id}", "A service principal (by id or appId)", "Object"),
    ]
}
