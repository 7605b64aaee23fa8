//! Grantry as an OAuth 2.0 / OpenID issuer, at the paths Entra's v2.0 endpoints use, so
//! MSAL and `azure-identity` given Grantry's URL as the authority (with instance discovery
//! off) find their way: `/{tenant}/v2.0/.well-known/openid-configuration` and
//! `/{tenant}/discovery/v2.0/keys`, where `{tenant}` is the tenant id, `common` or
//! `organizations`. These answer without a token, as Entra's do.

use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(openid_configuration))
        .route("/{tenant}/discovery/v2.0/keys", get(keys))
}

/// Whether `tenant` names this server's tenant: its id, or one of Entra's aliases for
/// "the tenant of the caller".
fn is_our_tenant(state: &AppState, tenant: &str) -> bool {
    tenant.eq_ignore_ascii_case(&state.keys.tenant_id)
        || tenant.eq_ignore_ascii_case("common")
        || tenant.eq_ignore_ascii_case("organizations")
}

/// An error in OAuth 2.0's shape (RFC 6749 §5.2), which token clients parse, rather than
/// Graph's envelope.
pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = crate::respond::json_response(
        status,
        &json!({
            "error": error,
            "error_description": description,
            "error_codes": [],
            "trace_id": crate::error::current_ids().request_id,
        }),
    );
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn unknown_tenant(state: &AppState, tenant: &str) -> Response {
    oauth_error(
        StatusCode::BAD_REQUEST,
        "invalid_tenant",
        &format!(
            "Tenant '{tenant}' is not served here; use this server's tenant id {}, or 'common' or 'organizations'.",
            state.keys.tenant_id
        ),
    )
}

async fn openid_configuration(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    if !is_our_tenant(&state, &tenant) {
        return unknown_tenant(&state, &tenant);
    }
    let base = &state.config.public_base_url;
    crate::respond::json_response(
        StatusCode::OK,
        &json!({
            "issuer": state.keys.issuer(),
            "token_endpoint": format!("{base}/{tenant}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            // MSAL requires the field; Grantry serves no interactive sign-in, so this
            // endpoint answers 404 (see docs/authorization.md).
            "authorization_endpoint": format!("{base}/{tenant}/oauth2/v2.0/authorize"),
            "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
            "scopes_supported": ["https://graph.microsoft.com/.default"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "roles", "scp", "idtyp", "appid"],
            "tenant_region_scope": null,
            "cloud_instance_name": "grantry",
            "msgraph_host": base.split("://").nth(1).unwrap_or(base),
        }),
    )
}

async fn keys(State(state): State<AppState>, Path(tenant): Path<String>) -> Response {
    if !is_our_tenant(&state, &tenant) {
        return unknown_tenant(&state, &tenant);
    }
    crate::respond::json_response(StatusCode::OK, &state.keys.jwks())
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::read;
    vec![
        read(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            "OpenID discovery document of Grantry's token issuer ({tenant}: tenant id, common or organizations)",
            "Object",
        ),
        read("/{tenant}/discovery/v2.0/keys", "The public keys Grantry signs tokens with (JWK set)", "Object"),
    ]
}
