//! Portal sessions: a random cookie value, stored as its SHA-256 in `portal_sessions` with
//! the signed-in user, the session's CSRF token and its expiry (wall clock, like tokens, so
//! moving the development clock does not sign anyone out).

use crate::auth::wall_now;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use grantry_core::{Caller, Principal, PrincipalKind};
use grantry_domain::{ErrorKind, Result};
use grantry_store::Value;
use sha2::Digest;

/// The session cookie.
pub const COOKIE: &str = "grantry_session";
/// Before sign-in: a random value the sign-in forms echo (login CSRF), and the state of an
/// OpenID sign-in under way, which must come back to the browser that started it.
pub const SIGN_IN_COOKIE: &str = "grantry_sign_in";

/// One signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub csrf: String,
    /// `dev` or `oidc`.
    pub method: String,
}

/// 256 random bits, base64url.
pub fn random_token() -> String {
    use base64::Engine as _;
    use rand_core::RngCore;
    let mut bytes = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256_hex(value: &str) -> String {
    sha2::Sha256::digest(value.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn now_us() -> i64 {
    wall_now() * 1_000_000
}

/// Opens a session for `user_id`; returns the cookie value (shown to the browser only).
pub async fn create(state: &AppState, user_id: &str, method: &str) -> Result<String> {
    let token = random_token();
    let (hash, csrf, user, method) = (sha256_hex(&token), random_token(), user_id.to_string(), method.to_string());
    let now = now_us();
    let expires = now + state.config.portal.session_lifetime.as_micros() as i64;
    state
        .app
        .store
        .write(move |c| {
            c.execute("DELETE FROM portal_sessions WHERE expires_us < ?", &[Value::Int(now)])?;
            c.execute(
                "INSERT INTO portal_sessions (id_sha256, user_id, csrf, method, created_us, expires_us) VALUES (?, ?, ?, ?, ?, ?)",
                &[
                    Value::from(hash),
                    Value::from(user),
                    Value::from(csrf),
                    Value::from(method),
                    Value::Int(now),
                    Value::Int(expires),
                ],
            )?;
            Ok(())
        })
        .await?;
    Ok(token)
}

/// The live session a cookie value opens, if any.
pub async fn load(state: &AppState, token: &str) -> Result<Option<Session>> {
    let hash = sha256_hex(token);
    let now = now_us();
    state
        .app
        .store
        .read(move |c| {
            let row = c.query_one(
                "SELECT user_id, csrf, method FROM portal_sessions WHERE id_sha256 = ? AND expires_us > ?",
                &[Value::from(hash), Value::Int(now)],
            )?;
            row.map(|r| Ok(Session { user_id: r.text(0)?, csrf: r.text(1)?, method: r.text(2)? })).transpose()
        })
        .await
}

/// Ends the session a cookie value opens.
pub async fn delete(state: &AppState, token: &str) -> Result<()> {
    let hash = sha256_hex(token);
    state
        .app
        .store
        .write(move |c| {
            c.execute("DELETE FROM portal_sessions WHERE id_sha256 = ?", &[Value::from(hash)])?;
            Ok(())
        })
        .await
}

/// The value of cookie `name` in the request's headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure when the portal is served over
/// TLS; `max_age` 0 removes the cookie.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: u64) -> HeaderValue {
    let secure = if state.config.portal.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The delegated permissions a portal session acts with: what Entra's My Access asks for,
/// and reading groups and applications for the administration's pickers (as the admin
/// center does). What they allow is further limited by the person's own directory and entitlement
/// management roles, exactly as for a delegated token, so the portal never holds more rights
/// than the person.
pub const PORTAL_SCOPES: &[&str] = &[
    "EntitlementManagement.ReadWrite.All",
    "AccessReview.ReadWrite.All",
    "User.Read",
    "User.ReadBasic.All",
    "Group.Read.All",
    "Application.Read.All",
];

/// The principal of a session's user.
pub fn principal(user_id: &str) -> Principal {
    Principal {
        kind: PrincipalKind::User,
        id: user_id.to_string(),
        display_name: None,
        permissions: PORTAL_SCOPES.iter().map(|p| p.to_ascii_lowercase()).collect(),
    }
}

/// A signed-in person: their session and the caller the use cases see.
pub struct Signed {
    pub session: Session,
    pub caller: Caller,
    pub display_name: String,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> std::result::Result<Self, Self::Rejection> {
        let back = parts.uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        let Some(token) = cookie(&parts.headers, COOKIE) else {
            return Err(super::to_sign_in(&back, None));
        };
        let session = match load(state, &token).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(super::to_sign_in(&back, Some("Your session has ended; sign in again."))),
            Err(e) => return Err(super::views::error_page(state, None, &e)),
        };
        let caller = match grantry_core::auth::load_caller(&state.app, principal(&session.user_id)).await {
            Ok(c) => c,
            Err(e) if e.kind == ErrorKind::Unauthorized => {
                let _ = delete(state, &token).await;
                return Err(super::to_sign_in(&back, Some("Your account no longer exists or is disabled.")));
            }
            Err(e) => return Err(super::views::error_page(state, None, &e)),
        };
        let id = session.user_id.clone();
        let display_name = state
            .app
            .store
            .read(move |c| grantry_core::approvals::user_name(c, &id))
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| session.user_id.clone());
        Ok(Signed { session, caller, display_name })
    }
}
