//! Signing in and out: the organization's OpenID provider (authorization code with PKCE),
//! and `--dev-login` (pick a directory user; development servers only).

use super::session::{self, COOKIE, SIGN_IN_COOKIE, Signed};
use super::views::{self, Section};
use super::{Form, safe_return, see_other};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use grantry_core::outbox::{Attempt, OutboundRequest};
use grantry_domain::model::User;
use grantry_domain::{Error, ErrorKind, Result};
use grantry_store::{Value, repo};
use maud::html;
use std::collections::HashMap;

/// How long an OpenID sign-in may take between leaving for the provider and coming back.
const SIGN_IN_WINDOW_SECS: i64 = 600;
/// Most users the development sign-in lists.
const DEV_USERS: usize = 200;

/// `GET /sign-in`: the ways to sign in that this server offers.
pub async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let back = safe_return(q.get("return").map(String::as_str));
    if let Some(token) = session::cookie(&headers, COOKIE)
        && matches!(session::load(&state, &token).await, Ok(Some(_)))
    {
        return see_other(&back);
    }
    // The value the sign-in forms echo; kept if the browser already has one.
    let pre = session::cookie(&headers, SIGN_IN_COOKIE).unwrap_or_else(session::random_token);
    let portal = &state.config.portal;
    let users: Vec<User> = if portal.dev_login {
        match state.app.store.read(|c| repo::list::<User>(c, "account_enabled = 1", &[], None, DEV_USERS)).await {
            Ok(rows) => rows.into_iter().map(|(_, u)| u).collect(),
            Err(e) => return views::error_page(&state, None, &e),
        }
    } else {
        Vec::new()
    };
    let message = q.get("message").cloned();
    let body = html! {
        @if let Some(m) = &message { p.notice role="status" { (m) } }
        @if portal.sign_in.is_some() {
            section {
                h2 { "Your organization" }
                // A link, not a form: the page's form-action policy keeps forms on this site,
                // and this one leaves for the provider.
                a.button.primary #oidc-sign-in href={"/sign-in/oidc?return=" (percent_encoding::utf8_percent_encode(&back, percent_encoding::NON_ALPHANUMERIC))} {
                    "Sign in with your organization"
                }
            }
        }
        @if portal.dev_login {
            section {
                h2 { "Development sign-in" }
                p.muted { "This server runs with --dev-login: pick any directory user to act as them. Never use it for real access." }
                @if users.is_empty() {
                    div.empty {
                        p { "The directory is empty. Create a small demo directory to try Grantry: three people (Alex requests access, Megan approves, Irene administers), a group, and an access package with a question and one approval stage." }
                        form method="post" action="/sign-in/dev/demo" {
                            input type="hidden" name="csrf" value=(pre);
                            button.primary type="submit" { "Create the demo directory" }
                        }
                    }
                } @else {
                    form.stack method="post" action="/sign-in/dev" {
                        input type="hidden" name="csrf" value=(pre);
                        input type="hidden" name="return" value=(back);
                        div.field {
                            label for="user" { "Sign in as" }
                            select #user name="user" {
                                @for u in &users {
                                    option value=(u.id) { (u.display_name) " (" (u.user_principal_name) ")" }
                                }
                            }
                        }
                        div { button.primary type="submit" { "Sign in" } }
                    }
                }
            }
        }
        @if portal.sign_in.is_none() && !portal.dev_login {
            p.error {
                "Sign-in is not configured on this server. An administrator sets the organization's OpenID provider (--oidc-issuer with --portal-client-id), or, on a development machine, starts the server with --dev-clock --dev-login."
            }
        }
    };
    let mut response = views::respond(StatusCode::OK, views::page(&state, None, Section::None, "Sign in", body));
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::set_cookie(&state, SIGN_IN_COOKIE, &pre, SIGN_IN_WINDOW_SECS as u64));
    response
}

/// Refuses a sign-in form that does not echo this browser's sign-in cookie.
fn check_pre(headers: &HeaderMap, form: &Form) -> Result<()> {
    let pre = session::cookie(headers, SIGN_IN_COOKIE);
    match (pre, form.get("csrf")) {
        (Some(a), Some(b)) if !a.is_empty() && a == b => Ok(()),
        _ => Err(Error::forbidden(
            "The sign-in form has expired or did not come from this site (its CSRF token does not match). Open the sign-in page again.",
        )),
    }
}

/// Starts a session for `user_id` and sends the browser to `back`.
async fn signed_in(state: &AppState, user_id: &str, method: &str, back: &str) -> Response {
    match session::create(state, user_id, method).await {
        Ok(token) => {
            tracing::info!(user = %user_id, method, "portal: signed in");
            let mut response = see_other(back);
            let lifetime = state.config.portal.session_lifetime.as_secs();
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, session::set_cookie(state, COOKIE, &token, lifetime));
            headers.append(header::SET_COOKIE, session::set_cookie(state, SIGN_IN_COOKIE, "", 0));
            response
        }
        Err(e) => views::error_page(state, None, &e),
    }
}

/// `POST /sign-in/dev`: act as a directory user (only with `--dev-login`).
pub async fn dev(State(state): State<AppState>, headers: HeaderMap, form: Form) -> Response {
    if !state.config.portal.dev_login {
        return views::error_page(&state, None, &Error::not_found("page", "/sign-in/dev"));
    }
    if let Err(e) = check_pre(&headers, &form) {
        return views::error_page(&state, None, &e);
    }
    let id = grantry_domain::ids::normalize(form.get("user").unwrap_or_default());
    let key = id.clone();
    let user = match state.app.store.read(move |c| repo::get::<User>(c, &key)).await {
        Ok(u) => u,
        Err(e) => return views::error_page(&state, None, &e),
    };
    match user {
        Some(u) if u.account_enabled => signed_in(&state, &u.id, "dev", &safe_return(form.get("return"))).await,
        _ => views::error_page(&state, None, &Error::not_found("user", &id)),
    }
}

/// `POST /sign-in/dev/demo`: fills an empty directory with the demo's people and access
/// package, through the Graph API itself (so the same validation applies).
pub async fn demo(State(state): State<AppState>, headers: HeaderMap, form: Form) -> Response {
    if !state.config.portal.dev_login {
        return views::error_page(&state, None, &Error::not_found("page", "/sign-in/dev/demo"));
    }
    if let Err(e) = check_pre(&headers, &form) {
        return views::error_page(&state, None, &e);
    }
    match super::demo::create(&state).await {
        Ok(()) => see_other("/sign-in?message=The+demo+directory+is+ready.+Sign+in+as+Alex+to+request+access."),
        Err(e) => views::error_page(&state, None, &e),
    }
}

/// `POST /sign-out`.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap, signed: Signed, form: Form) -> Response {
    if let Some(r) = super::check_csrf(&state, &signed, &form) {
        return r;
    }
    if let Some(token) = session::cookie(&headers, COOKIE) {
        let _ = session::delete(&state, &token).await;
    }
    let mut response = see_other("/sign-in?message=You+are+signed+out.");
    response.headers_mut().append(header::SET_COOKIE, session::set_cookie(&state, COOKIE, "", 0));
    response
}

fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn unavailable(message: String) -> Error {
    Error::new(ErrorKind::Unavailable, "IssuerUnavailable", message)
}

/// The configured provider's index and an endpoint of its discovery document.
async fn endpoint(state: &AppState, name: &str) -> Result<(usize, String, super::PortalSignIn)> {
    let sign_in = state.config.portal.sign_in.clone().ok_or_else(|| Error::not_found("page", "/sign-in/oidc"))?;
    let index = state
        .oidc
        .find(&sign_in.issuer)
        .ok_or_else(|| Error::internal("the portal's OpenID issuer is not among the trusted issuers"))?;
    let doc = state.oidc.discovery(index).await?;
    let url = doc
        .get(name)
        .and_then(|v| v.as_str())
        .ok_or_else(|| unavailable(format!("the provider's discovery document has no {name}")))?;
    grantry_outbound_check(url).map_err(unavailable)?;
    Ok((index, url.to_string(), sign_in))
}

/// An endpoint must be https, or plain http on loopback (as for the issuer's keys).
fn grantry_outbound_check(url: &str) -> std::result::Result<(), String> {
    crate::oidc::check_fetchable(url)
}

/// `GET /sign-in/oidc`: off to the provider with a fresh state, nonce and PKCE challenge.
pub async fn oidc_start(State(state): State<AppState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let (_, authorize, sign_in) = match endpoint(&state, "authorization_endpoint").await {
        Ok(e) => e,
        Err(e) => return views::error_page(&state, None, &e),
    };
    let (st, verifier, nonce) = (session::random_token(), session::random_token(), session::random_token());
    let back = safe_return(q.get("return").map(String::as_str));
    let expires = (crate::auth::wall_now() + SIGN_IN_WINDOW_SECS) * 1_000_000;
    let row = (session::sha256_hex(&st), verifier.clone(), nonce.clone(), back);
    let stored = state
        .app
        .store
        .write(move |c| {
            c.execute("DELETE FROM portal_logins WHERE expires_us < ?", &[Value::Int(expires - SIGN_IN_WINDOW_SECS * 2_000_000)])?;
            c.execute(
                "INSERT INTO portal_logins (state_sha256, verifier, nonce, return_to, expires_us) VALUES (?, ?, ?, ?, ?)",
                &[Value::from(row.0), Value::from(row.1), Value::from(row.2), Value::from(row.3), Value::Int(expires)],
            )?;
            Ok(())
        })
        .await;
    if let Err(e) = stored {
        return views::error_page(&state, None, &e);
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &sign_in.client_id)
        .append_pair("redirect_uri", &redirect_uri(&state))
        .append_pair("scope", "openid profile email")
        .append_pair("state", &st)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &pkce_challenge(&verifier))
        .append_pair("code_challenge_method", "S256")
        .finish();
    let separator = if authorize.contains('?') { '&' } else { '?' };
    let mut response = see_other(&format!("{authorize}{separator}{query}"));
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::set_cookie(&state, SIGN_IN_COOKIE, &st, SIGN_IN_WINDOW_SECS as u64));
    response
}

fn redirect_uri(state: &AppState) -> String {
    format!("{}/sign-in/callback", state.config.public_base_url)
}

/// `GET /sign-in/callback`: the provider sends the browser back with a code; exchange it
/// (with the PKCE verifier and the client's secret), check the ID token, open a session.
pub async fn oidc_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match finish(&state, &headers, &q).await {
        Ok((user_id, back)) => signed_in(&state, &user_id, "oidc", &back).await,
        Err(e) => {
            tracing::warn!(error = %e.message, "portal: OpenID sign-in refused");
            views::error_page(&state, None, &e)
        }
    }
}

async fn finish(state: &AppState, headers: &HeaderMap, q: &HashMap<String, String>) -> Result<(String, String)> {
    if let Some(error) = q.get("error") {
        return Err(Error::unauthorized(format!(
            "The identity provider refused the sign-in: {error} {}",
            q.get("error_description").map(String::as_str).unwrap_or("")
        )));
    }
    let (code, st) = match (q.get("code"), q.get("state")) {
        (Some(c), Some(s)) if !c.is_empty() && !s.is_empty() => (c.clone(), s.clone()),
        _ => return Err(Error::unauthorized("The identity provider's answer has no code or state.")),
    };
    // The state must come back to the browser that left with it.
    if session::cookie(headers, SIGN_IN_COOKIE).as_deref() != Some(st.as_str()) {
        return Err(Error::unauthorized(
            "This sign-in was started in another browser or has expired (the state does not match); start again.",
        ));
    }
    let hash = session::sha256_hex(&st);
    let now = crate::auth::wall_now() * 1_000_000;
    let pending = state
        .app
        .store
        .write(move |c| {
            let row = c.query_one(
                "SELECT verifier, nonce, return_to, expires_us FROM portal_logins WHERE state_sha256 = ?",
                &[Value::from(&hash)],
            )?;
            c.execute("DELETE FROM portal_logins WHERE state_sha256 = ?", &[Value::from(&hash)])?;
            row.map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)?, r.int(3)?))).transpose()
        })
        .await?;
    let Some((verifier, nonce, back, expires)) = pending else {
        return Err(Error::unauthorized("This sign-in is unknown or was already used; start again."));
    };
    if expires < now {
        return Err(Error::unauthorized("This sign-in took too long; start again."));
    }
    let (index, token_url, sign_in) = endpoint(state, "token_endpoint").await?;
    let body = {
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.append_pair("grant_type", "authorization_code")
            .append_pair("code", &code)
            .append_pair("redirect_uri", &redirect_uri(state))
            .append_pair("client_id", &sign_in.client_id)
            .append_pair("code_verifier", &verifier);
        if let Some(secret) = &sign_in.client_secret {
            body.append_pair("client_secret", secret);
        }
        body.finish()
    };
    let attempt = state
        .oidc
        .transport()
        .send(OutboundRequest {
            method: "POST",
            url: token_url.clone(),
            headers: vec![
                ("content-type".into(), "application/x-www-form-urlencoded".into()),
                ("accept".into(), "application/json".into()),
            ],
            body: body.into_bytes(),
            timeout: crate::oidc::FETCH_TIMEOUT * 2,
        })
        .await;
    let answer = match attempt {
        Attempt::Delivered { body: Some(json), .. } => json,
        Attempt::Delivered { body: None, .. } => {
            return Err(unavailable(format!("{token_url} answered without a JSON body")));
        }
        Attempt::Retry { error, .. } | Attempt::Refused { error, .. } => {
            return Err(Error::unauthorized(format!("The identity provider did not issue tokens: {error}")));
        }
    };
    let id_token = answer
        .get("id_token")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::unauthorized("The identity provider's answer has no id_token."))?;
    let verified = state.oidc.verify_id_token(index, id_token, &sign_in.client_id, &nonce).await?;
    let principal = state.oidc.user_of(&state.app, &verified).await?;
    Ok((principal.id, back))
}

/// Answers `/` for browsers: the portal's home.
pub async fn home(state: &AppState, headers: &HeaderMap) -> Response {
    if let Some(token) = session::cookie(headers, COOKIE)
        && matches!(session::load(state, &token).await, Ok(Some(_)))
    {
        return see_other("/access");
    }
    see_other("/sign-in").into_response()
}
