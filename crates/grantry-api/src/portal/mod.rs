//! The web portal for people: My Access (request access, follow requests, see and remove
//! what one has), the approvals inbox, access reviews and administration, served as HTML by
//! the same server.
//!
//! Pages are maud templates compiled into the binary; forms work without scripts. Every page
//! calls `grantry-core`'s use cases with the signed-in person as the [`Caller`] (a delegated
//! principal with [`session::PORTAL_SCOPES`], limited by the person's roles as any delegated
//! token is), so the portal enforces exactly the API's authorization. Every form carries the
//! session's CSRF token. `/` answers browsers (`Accept: text/html`) with the portal and
//! everyone else with the JSON index.
//!
//! [`Caller`]: grantry_core::Caller

mod access;
mod admin;
mod approvals;
mod builders;
mod demo;
mod pickers;
mod reviews;
pub mod session;
mod signin;
pub mod views;

use crate::state::AppState;
use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use grantry_domain::Error;
use session::Signed;

/// Sign-in through the organization's OpenID provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSignIn {
    /// One of the trusted issuers (`--oidc-issuer`, `[[oidc]]`).
    pub issuer: String,
    /// The portal's client id at the provider.
    pub client_id: String,
    /// Its client secret (none for a public client, which PKCE protects).
    pub client_secret: Option<String>,
}

/// The portal's settings.
#[derive(Debug, Clone)]
pub struct PortalConfig {
    /// `--dev-login`: anyone may sign in as any directory user (development only).
    pub dev_login: bool,
    pub sign_in: Option<PortalSignIn>,
    /// How long a session lasts after sign-in.
    pub session_lifetime: std::time::Duration,
    /// Cookies get `Secure` (the portal is served over HTTPS).
    pub secure_cookies: bool,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            dev_login: false,
            sign_in: None,
            session_lifetime: DEFAULT_SESSION_LIFETIME,
            secure_cookies: false,
        }
    }
}

/// Eight hours: a working day.
pub const DEFAULT_SESSION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(8 * 3600);

/// The portal's routes (paths are fixed: notification mails link to them).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/portal/static/portal.css", get(css))
        .route("/portal/static/portal.js", get(js))
        .route("/sign-in", get(signin::page))
        .route("/sign-in/dev", post(signin::dev))
        .route("/sign-in/dev/demo", post(signin::demo))
        .route("/sign-in/oidc", get(signin::oidc_start))
        .route("/sign-in/callback", get(signin::oidc_callback))
        .route("/sign-out", post(signin::sign_out))
        .route("/access", get(access::catalog))
        .route("/access/packages/{id}", get(access::request_form).post(access::submit))
        .route("/access/requests", get(access::requests))
        .route("/access/requests/{id}", get(access::request))
        .route("/access/requests/{id}/cancel", post(access::cancel))
        .route("/access/assignments", get(access::assignments))
        .route("/access/assignments/{id}/remove", post(access::remove))
        .route("/access/assignments/{id}/extend", get(access::extend_form).post(access::extend))
        .route("/approvals", get(approvals::inbox))
        .route("/approvals/{id}", get(approvals::approval).post(approvals::decide))
        .route("/reviews", get(reviews::inbox))
        .route("/reviews/{definition}/instances/{instance}", get(reviews::instance))
        .route("/reviews/{definition}/instances/{instance}/accept", post(reviews::accept))
        .route("/reviews/{definition}/instances/{instance}/decisions/{item}", post(reviews::decide))
        .route("/admin", get(admin::home))
        .route("/admin/catalogs", post(builders::create_catalog))
        .route("/admin/catalogs/{id}", get(builders::catalog))
        .route("/admin/catalogs/{id}/resources", post(builders::add_resource))
        .route("/admin/catalogs/{id}/packages", post(builders::create_package))
        .route("/admin/packages/{id}", get(builders::package))
        .route("/admin/packages/{id}/roles", post(builders::add_role))
        .route("/admin/packages/{id}/roles/{role_scope}/remove", post(builders::remove_role))
        .route("/admin/packages/{id}/incompatible", post(builders::add_incompatible))
        .route("/admin/packages/{id}/incompatible/{other}/remove", post(builders::remove_incompatible))
        .route("/admin/packages/{id}/policies/new", get(builders::new_policy))
        .route("/admin/packages/{id}/policies", post(builders::create_policy))
        .route("/admin/packages/{id}/policies/{policy}", get(builders::edit_policy).post(builders::update_policy))
        .route("/admin/packages/{id}/policies/{policy}/delete", post(builders::delete_policy))
        .route("/admin/pickers/{kind}", get(pickers::search))
        .route("/admin/assignments", get(admin::assignments))
        .route("/admin/requests", get(admin::requests))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/assignments/{id}/remove", post(admin::remove))
}

/// Whether a request comes from a browser asking for a page.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"))
}

/// `/` for a browser.
pub async fn home(state: &AppState, headers: &HeaderMap) -> Response {
    signin::home(state, headers).await
}

async fn css() -> Response {
    let mut r = views::CSS.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

async fn js() -> Response {
    let mut r = views::JS.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

/// 303 to `location`.
pub fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The sign-in page, coming back to `back` afterwards.
pub fn to_sign_in(back: &str, message: Option<&str>) -> Response {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("return", back);
    if let Some(m) = message {
        q.append_pair("message", m);
    }
    see_other(&format!("/sign-in?{}", q.finish()))
}

/// A path on this site to return to after sign-in (anything else goes to `/access`).
pub fn safe_return(back: Option<&str>) -> String {
    match back {
        Some(b) if b.starts_with('/') && !b.starts_with("//") && !b.starts_with("/\\") && !b.contains(['\r', '\n']) => {
            b.to_string()
        }
        _ => "/access".into(),
    }
}

/// A submitted form (`application/x-www-form-urlencoded`), fields in order.
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(IntoResponse::into_response)?;
        Ok(Form(form_urlencoded::parse(&bytes).into_owned().collect()))
    }
}

/// The refusal (403) of a form that does not carry the session's CSRF token; `None` when
/// it does.
pub fn check_csrf(state: &AppState, signed: &Signed, form: &Form) -> Option<Response> {
    match form.get("csrf") {
        Some(t) if !t.is_empty() && t == signed.session.csrf => None,
        _ => Some(views::error_page(
            state,
            Some(&viewer(signed)),
            &Error::forbidden(
                "The form has expired or did not come from this site (its CSRF token does not match). Reload the page and try again.",
            ),
        )),
    }
}

/// Whether the person holds any administrative role (the Administration link and pages).
pub fn is_admin(signed: &Signed) -> bool {
    let c = &signed.caller;
    c.is_em_tenant_reader() || !c.em_roles.is_empty()
}

/// The frame's view of the signed-in person.
pub fn viewer(signed: &Signed) -> views::Viewer<'_> {
    views::Viewer { name: &signed.display_name, csrf: &signed.session.csrf, admin: is_admin(signed) }
}
