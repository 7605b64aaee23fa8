//! Provisioning out over SCIM 2.0, for administrators: `/_grantry/provisioning/{servicePrincipalId}`
//! configures the SCIM service provider to which the users holding the service principal's
//! app roles are pushed (`PUT`: `baseAddress`, `secretToken`, `roleDelivery`,
//! `attributeMappings`; `DELETE` stops it), and shows the pushes that wait or failed with
//! the target's answer (`GET`); `POST …/retry` sends the failed ones again. The token is
//! never answered back.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::GraphJson;
use crate::respond::json_response;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use grantry_core::provisioning::{self, MappingChanges, Status, Target, TargetInput};
use grantry_domain::Error;
use grantry_graph::Body;
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_grantry/provisioning", get(list))
        .route("/_grantry/provisioning/{id}", get(read).put(configure).patch(configure).delete(remove))
        .route("/_grantry/provisioning/{id}/retry", post(retry))
}

/// Properties a target body may carry.
const PROPERTIES: &[&str] = &["baseAddress", "secretToken", "roleDelivery", "attributeMappings"];

fn render_target(t: &Target) -> Value {
    json!({
        "servicePrincipalId": t.service_principal_id,
        "baseAddress": t.base_address,
        "secretToken": Value::Null,
        "secretTokenSet": true,
        "roleDelivery": t.role_delivery.as_str(),
        "attributeMappings": t.mappings.iter().map(|(a, s)| json!({ "targetAttribute": a, "source": s })).collect::<Vec<_>>(),
        "createdDateTime": json!(grantry_graph::Ts(t.created)),
        "lastModifiedDateTime": json!(grantry_graph::Ts(t.updated)),
    })
}

fn render_status(s: &Status) -> Value {
    let mut out = render_target(&s.target);
    out["pendingCount"] = json!(s.pending);
    out["deliveredCount"] = json!(s.delivered);
    out["failedCount"] = json!(s.failures.iter().filter(|m| m.state.as_str() == "dead").count());
    out["failures"] = Value::Array(
        s.failures
            .iter()
            .map(|m| {
                let mut v = provisioning::describe(m);
                for k in ["createdDateTime", "nextAttemptDateTime", "finishedDateTime"] {
                    if let Some(t) = v.get(k).and_then(Value::as_str).and_then(grantry_graph::body::parse_datetime) {
                        v[k] = json!(grantry_graph::Ts(t));
                    }
                }
                v
            })
            .collect(),
    );
    out
}

/// `attributeMappings`: an object of SCIM attribute → user property (null leaves the
/// attribute out), or an array of `{targetAttribute, source}` as answered.
fn mappings(b: &Body) -> Result<Option<MappingChanges>, Error> {
    let Some(value) = b.get("attributeMappings") else { return Ok(None) };
    let bad = || {
        Error::invalid_property(
            "attributeMappings",
            "'attributeMappings' must be an object of SCIM attribute to user property (or null to leave one out), e.g. {\"title\": \"jobTitle\"}.",
        )
    };
    let mut out = Vec::new();
    match value {
        Value::Null => return Ok(None),
        Value::Object(map) => {
            for (attr, source) in map {
                match source {
                    Value::String(s) => out.push((attr.clone(), Some(s.clone()))),
                    Value::Null => out.push((attr.clone(), None)),
                    _ => return Err(bad()),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                let attr = item.get("targetAttribute").and_then(Value::as_str).ok_or_else(bad)?;
                match item.get("source") {
                    Some(Value::String(s)) => out.push((attr.to_string(), Some(s.clone()))),
                    None | Some(Value::Null) => out.push((attr.to_string(), None)),
                    _ => return Err(bad()),
                }
            }
        }
        _ => return Err(bad()),
    }
    Ok(Some(out))
}

async fn configure(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    if let Some(k) = b.map().keys().find(|k| !k.starts_with('@') && !PROPERTIES.contains(&k.as_str())) {
        return Err(Error::invalid_property(
            k,
            format!("'{k}' is not a property of a provisioning target; use {}.", PROPERTIES.join(", ")),
        )
        .into());
    }
    let input = TargetInput {
        base_address: b.str(&["baseAddress"])?,
        secret_token: b.str(&["secretToken"])?,
        role_delivery: b.str(&["roleDelivery"])?,
        attribute_mappings: mappings(&b)?,
    };
    let (target, created) = provisioning::configure_for(&s.app, &caller, &id, input).await?;
    Ok(json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, &render_target(&target)))
}

async fn read(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    let status = provisioning::get_for(&s.app, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, &render_status(&status)))
}

async fn list(State(s): State<AppState>, Authed(caller): Authed) -> ApiResult<Response> {
    let all = provisioning::list_for(&s.app, &caller).await?;
    Ok(json_response(StatusCode::OK, &json!({ "value": all.iter().map(render_status).collect::<Vec<_>>() })))
}

async fn remove(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    provisioning::remove_for(&s.app, &caller, &id).await?;
    Ok(axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT))
}

async fn retry(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    let n = provisioning::retry_for(&s.app, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, &json!({ "retried": n })))
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    vec![
        list("/_grantry/provisioning", "Provisioning targets with their pending and failed pushes", "Object"),
        read(
            "/_grantry/provisioning/{id}",
            "The provisioning target of a service principal, its pending and failed pushes",
            "Object",
        ),
        op(
            "put",
            "/_grantry/provisioning/{id}",
            "Configure the SCIM service provider the service principal's users are pushed to",
            Some("Object"),
            200,
            Some("Object"),
        ),
        op("patch", "/_grantry/provisioning/{id}", "Change a provisioning target", Some("Object"), 200, Some("Object")),
        remove("/_grantry/provisioning/{id}", "Stop provisioning to the target"),
        op("post", "/_grantry/provisioning/{id}/retry", "Send the failed pushes again", None, 200, Some("Object")),
    ]
}
