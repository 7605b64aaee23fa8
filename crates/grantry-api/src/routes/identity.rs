//! Grantry as an OAuth 2.0 / OpenID issuer, at the paths Entra's v2.0 endpoints use, so
//! MSAL and `azure-identity` given Grantry's URL as the authority (with instance discovery
//! off) find their way: `/{tenant}/v2.0/.well-known/openid-configuration` and
//! `/{tenant}/discovery/v2.0/keys`, where `{tenant}` is the tenant id, `common` or
//! `organizations`. These answer without a token, as Entra's do.

use crate::auth::{AUDIENCES, MintRequest, claims_for};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use grantry_core::PrincipalKind;
use grantry_graph::wire::{EmptyList, Null};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{tenant}/v2.0/.well-known/openid-configuration", get(openid_configuration))
        .route("/{tenant}/discovery/v2.0/keys", get(keys))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
}

/// Lifetime of the tokens the token endpoint issues, as Entra's default.
pub const ISSUED_TOKEN_SECS: i64 = 3600;
/// Failed client authentications allowed per client within [`FAILURE_WINDOW`]; beyond
/// that, the client is refused (429) until the window ends, right secret or not.
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Clients tracked at most; older windows are dropped first, then all.
const TRACKED_CLIENTS: usize = 10_000;

/// Failed client authentications per client id, to slow down secret guessing.
#[derive(Default)]
pub struct ClientThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl ClientThrottle {
    /// How long `client_id` must wait before trying again, if it is throttled.
    fn blocked_for(&self, client_id: &str) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let (count, since) = failures.get(client_id)?;
        let elapsed = since.elapsed();
        (*count >= MAX_FAILURES && elapsed < FAILURE_WINDOW).then(|| FAILURE_WINDOW - elapsed)
    }

    fn record_failure(&self, client_id: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= TRACKED_CLIENTS {
            failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
            if failures.len() >= TRACKED_CLIENTS {
                failures.clear();
            }
        }
        let entry = failures.entry(client_id.to_ascii_lowercase()).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    fn record_success(&self, client_id: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&client_id.to_ascii_lowercase());
    }
}

/// Whether `tenant` names this server's tenant: its id, or one of Entra's aliases for
/// "the tenant of the caller".
fn is_our_tenant(state: &AppState, tenant: &str) -> bool {
    tenant.eq_ignore_ascii_case(&state.keys.tenant_id)
        || tenant.eq_ignore_ascii_case("common")
        || tenant.eq_ignore_ascii_case("organizations")
}

/// An error in OAuth 2.0's shape (RFC 6749 §5.2), as Entra sends it.
#[derive(Serialize)]
struct OAuthError<'a> {
    error: &'a str,
    error_description: &'a str,
    error_codes: EmptyList,
    trace_id: String,
}

/// The OpenID provider metadata of the tenant.
#[derive(Serialize)]
struct OpenIdConfiguration<'a> {
    issuer: String,
    token_endpoint: String,
    token_endpoint_auth_methods_supported: &'static [&'static str],
    authorization_endpoint: String,
    jwks_uri: String,
    grant_types_supported: &'static [&'static str],
    response_types_supported: &'static [&'static str],
    subject_types_supported: &'static [&'static str],
    id_token_signing_alg_values_supported: &'static [&'static str],
    token_endpoint_auth_signing_alg_values_supported: &'static [&'static str],
    scopes_supported: &'static [&'static str],
    claims_supported: &'static [&'static str],
    tenant_region_scope: Null,
    cloud_instance_name: &'static str,
    msgraph_host: &'a str,
}

/// The answer to a token request (RFC 6749 §5.1).
#[derive(Serialize)]
struct TokenResponse<'a> {
    token_type: &'static str,
    expires_in: i64,
    ext_expires_in: i64,
    access_token: &'a str,
}

/// An error in OAuth 2.0's shape (RFC 6749 §5.2), which token clients parse, rather than
/// Graph's envelope.
pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = crate::respond::json_response(
        status,
        &OAuthError {
            error,
            error_description: description,
            error_codes: EmptyList,
            trace_id: crate::error::current_ids().request_id,
        },
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
        &OpenIdConfiguration {
            issuer: state.keys.issuer(),
            token_endpoint: format!("{base}/{tenant}/oauth2/v2.0/token"),
            token_endpoint_auth_methods_supported: &["client_secret_post", "client_secret_basic"],
            // MSAL requires the field; Grantry serves no interactive sign-in, so this
            // endpoint answers 404 (see docs/authorization.md).
            authorization_endpoint: format!("{base}/{tenant}/oauth2/v2.0/authorize"),
            jwks_uri: format!("{base}/{tenant}/discovery/v2.0/keys"),
            grant_types_supported: &["client_credentials"],
            response_types_supported: &["token"],
            subject_types_supported: &["pairwise"],
            id_token_signing_alg_values_supported: &["ES256"],
            token_endpoint_auth_signing_alg_values_supported: &["ES256"],
            scopes_supported: &["https://graph.microsoft.com/.default"],
            claims_supported: &[
                "sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "roles", "scp", "idtyp", "appid",
            ],
            tenant_region_scope: Null,
            cloud_instance_name: "grantry",
            msgraph_host: base.split("://").nth(1).unwrap_or(base),
        },
    )
}

/// The client's credentials: from HTTP Basic (`client_secret_basic`, whose parts are
/// form-encoded) or from the form (`client_secret_post`), not both.
fn client_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> Result<(String, String), Box<Response>> {
    let invalid = |d: &str| Box::new(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", d));
    let basic = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| rest.trim().to_string())
    });
    if let Some(encoded) = basic {
        if form.contains_key("client_secret") {
            return Err(invalid("Send the client secret either in the Authorization header or in the body, not both."));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| invalid("The Basic Authorization header is not base64 of 'client_id:client_secret'."))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| invalid("The Basic Authorization header is not base64 of 'client_id:client_secret'."))?;
        let unescape =
            |s: &str| form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
        let (id, secret) = (unescape(id).unwrap_or_default(), unescape(secret).unwrap_or_default());
        if let Some(body_id) = form.get("client_id")
            && !body_id.eq_ignore_ascii_case(&id)
        {
            return Err(invalid("client_id in the body differs from the one in the Authorization header."));
        }
        return Ok((id, secret));
    }
    let id = form.get("client_id").cloned().unwrap_or_default();
    if id.trim().is_empty() {
        return Err(invalid("The request body must contain the parameter 'client_id'."));
    }
    let secret = form.get("client_secret").cloned().unwrap_or_default();
    if secret.is_empty() {
        return Err(Box::new(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The request must contain 'client_secret' (in the body or with HTTP Basic authentication).",
        )));
    }
    Ok((id, secret))
}

/// `POST /{tenant}/oauth2/v2.0/token`: the client credentials grant, answered as Entra's
/// v2.0 endpoint answers it.
async fn token(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !is_our_tenant(&state, &tenant) {
        return unknown_tenant(&state, &tenant);
    }
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Send the token request as 'Content-Type: application/x-www-form-urlencoded'.",
        );
    }
    let mut form = HashMap::new();
    for (k, v) in form_urlencoded::parse(&body) {
        if form.insert(k.to_string(), v.into_owned()).is_some() {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("The parameter '{k}' is given more than once."),
            );
        }
    }
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The request body must contain the parameter 'grant_type' (client_credentials).",
            );
        }
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!(
                    "The grant type '{other}' is not supported; Grantry issues tokens for 'client_credentials' only."
                ),
            );
        }
    }
    let (client_id, secret) = match client_credentials(&headers, &form) {
        Ok(c) => c,
        Err(response) => return *response,
    };
    let scope = form.get("scope").map(|s| s.trim().to_string()).unwrap_or_default();
    let resource = scope.strip_suffix("/.default").map(|r| r.trim_end_matches('/'));
    if !resource.is_some_and(|r| AUDIENCES.iter().any(|a| a.eq_ignore_ascii_case(r))) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!(
                "The scope '{scope}' is not valid for the client credentials grant; use 'https://graph.microsoft.com/.default'."
            ),
        );
    }
    if let Some(wait) = state.client_throttle.blocked_for(&client_id.to_ascii_lowercase()) {
        let mut response = oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            &format!(
                "Too many failed sign-ins for client '{client_id}'; try again in {} seconds.",
                wait.as_secs().max(1)
            ),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let now = state.app.now();
    let app = match grantry_core::applications::authenticate(&state.app.store, now, &client_id, &secret).await {
        Ok(Some(app)) => app,
        Ok(None) => {
            state.client_throttle.record_failure(&client_id);
            tracing::info!(client_id = %client_id, "client authentication failed");
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                &format!(
                    "Client authentication failed: no application '{client_id}' has this secret (it may be wrong, expired or removed)."
                ),
            );
        }
        Err(e) => return crate::error::ApiError(e).into_response_oauth(),
    };
    state.client_throttle.record_success(&client_id);
    let issued_at = jsonwebtoken::get_current_timestamp() as i64;
    let mut claims = claims_for(
        &state.keys,
        MintRequest {
            kind: PrincipalKind::App,
            object_id: app.sp_id.clone(),
            app_id: app.app_id.clone(),
            display_name: Some(app.display_name.clone()),
            upn: None,
            permissions: app.roles.clone(),
            wids: Vec::new(),
            issued_at,
            lifetime_secs: ISSUED_TOKEN_SECS,
        },
    );
    claims.azpacr = Some("1".into());
    match state.keys.mint(&claims) {
        Ok(access_token) => {
            let mut response = crate::respond::json_response(
                StatusCode::OK,
                &TokenResponse {
                    token_type: "Bearer",
                    expires_in: ISSUED_TOKEN_SECS,
                    ext_expires_in: ISSUED_TOKEN_SECS,
                    access_token: &access_token,
                },
            );
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(e) => crate::error::ApiError(e).into_response_oauth(),
    }
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
        crate::openapi::op(
            "post",
            "/{tenant}/oauth2/v2.0/token",
            "OAuth 2.0 token endpoint: client credentials grant (form body; client_secret_post or client_secret_basic)",
            Some("TokenRequest"),
            200,
            Some("Object"),
        ),
    ]
}
