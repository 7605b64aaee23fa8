//! Tokens from a real OpenID provider: `oauth2-mock-server` (tests/oidc/), run with node as a
//! child process on 127.0.0.1, port 0, killed when the test ends. Grantry discovers its keys
//! over HTTP as it would any issuer's.
//!
//! The provider's package is installed by scripts/test into a cache directory
//! (GRANTRY_OIDC_NODE_MODULES names its node_modules). Without node or the package these
//! tests say so and pass, unless GRANTRY_REQUIRE_OIDC_TESTS is set (scripts/test sets it,
//! so CI never skips them silently).

use crate::helpers::*;
use grantry_api::oidc::OidcIssuer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

pub(crate) const AUDIENCE: &str = "api://grantry";
/// The longest the provider may take to start or to answer one command.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Provider {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    pub(crate) issuer: String,
    first_kid: String,
}

fn node_modules() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("GRANTRY_OIDC_NODE_MODULES") {
        return dir.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("grantry-npm").join("node_modules")
}

impl Provider {
    /// Starts the provider signing with `alg`; `None` (after saying why) when node or the
    /// package is missing and the tests are not required.
    pub(crate) async fn start(alg: &str) -> Option<Provider> {
        let modules = node_modules();
        let node_ok = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
        let package_ok = modules.join("oauth2-mock-server").join("package.json").is_file();
        if !(node_ok && package_ok) {
            let why = format!(
                "the OpenID provider tests need node and oauth2-mock-server in {} (node found: {node_ok}); scripts/test installs them",
                modules.display()
            );
            let required = std::env::var("GRANTRY_REQUIRE_OIDC_TESTS").is_ok_and(|v| !v.is_empty() && v != "0");
            assert!(!required, "{why} (GRANTRY_REQUIRE_OIDC_TESTS is set)");
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/oidc/provider.cjs");
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .arg(alg)
            .env("NODE_PATH", &modules)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut provider = Provider { child, stdin, stdout, issuer: String::new(), first_kid: String::new() };
        let hello = provider.read().await;
        provider.issuer = hello["issuer"].as_str().expect("issuer").to_string();
        provider.first_kid = hello["kid"].as_str().expect("kid").to_string();
        Some(provider)
    }

    async fn read(&mut self) -> Value {
        let line = tokio::time::timeout(PROVIDER_TIMEOUT, self.stdout.next_line())
            .await
            .expect("the provider answers in time")
            .expect("the provider's output is readable")
            .expect("the provider is still running");
        let value: Value = serde_json::from_str(&line).expect("the provider answers JSON");
        assert!(value.get("error").is_none(), "the provider failed: {value}");
        value
    }

    pub(crate) async fn command(&mut self, command: Value) -> Value {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await.expect("the provider reads commands");
        self.stdin.flush().await.unwrap();
        self.read().await
    }

    /// A token signed with key `kid`, with `claims` added to the provider's own (iss, iat,
    /// nbf, exp) and `header` merged into its header.
    async fn token_with(&mut self, kid: &str, claims: Value, header: Value) -> String {
        let answer = self.command(json!({ "cmd": "token", "kid": kid, "claims": claims, "header": header })).await;
        answer["token"].as_str().unwrap().to_string()
    }

    async fn token(&mut self, kid: &str, claims: Value) -> String {
        self.token_with(kid, claims, json!({})).await
    }

    /// A new key at the provider, published in its JWK set at once.
    async fn rotate(&mut self, alg: &str) -> String {
        self.command(json!({ "cmd": "rotate", "alg": alg })).await["kid"].as_str().unwrap().to_string()
    }

    pub(crate) fn trusted(&self, auto_provision: bool) -> OidcIssuer {
        OidcIssuer {
            issuer: self.issuer.clone(),
            audiences: vec![AUDIENCE.into()],
            jwks_uri: None,
            user_claim: None,
            app_claim: None,
            auto_provision,
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn user_claims(username: &str) -> Value {
    json!({
        "aud": AUDIENCE,
        "sub": format!("sub-{username}"),
        "preferred_username": username,
        "scp": "EntitlementManagement.Read.All EntitlementMgmt-SubjectAccess.ReadWrite User.Read",
    })
}

/// Sends `token` and expects a 401 in Graph's envelope with the OAuth challenge, both
/// naming `what`.
async fn assert_refused(app: &TestApp, token: &str, what: &str) {
    let response = app
        .client
        .post(app.url(&format!("/v1.0/{EM}/catalogs")))
        .bearer_auth(token)
        .json(&json!({ "displayName": "should not exist" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains(what), "the challenge should name '{what}': {challenge}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(what), "the message should name '{what}': {message}");
}

/// The token with one character in the middle of its signature changed (the last one may
/// carry only padding bits).
fn tamper(token: &str) -> String {
    let cut = token.rfind('.').unwrap() + (token.len() - token.rfind('.').unwrap()) / 2;
    let mut bytes = token.as_bytes().to_vec();
    bytes[cut] = if bytes[cut] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// A token's segments with the header replaced.
fn with_header(token: &str, header: Value) -> String {
    use base64::Engine as _;
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[0] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string());
    parts.join(".")
}

#[tokio::test]
async fn provider_tokens_reach_the_users_own_assignments_rotate_and_are_refused_when_wrong() {
    let Some(mut provider) = Provider::start("RS256").await else { return };
    // A second trusted issuer whose keys cannot be fetched (nothing listens there).
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port())
    };
    let unreachable = OidcIssuer { issuer: dead.clone(), ..provider.trusted(false) };
    let app =
        TestApp::spawn_with(Options { oidc: vec![provider.trusted(false), unreachable], ..Options::default() }).await;
    let adele = app.create_user("adele").await;
    let f = app.seed_package_with_group().await;
    app.admin_assign(&f, &adele).await;
    let rs256 = provider.first_kid.clone();

    // preferred_username matches userPrincipalName case-insensitively; the user sees
    // themselves and their own assignment.
    let token = provider.token(&rs256, user_claims("Adele@Contoso.com")).await;
    let (status, me) = app.get(&token, "/v1.0/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], adele.as_str());
    let (status, mine) = app.get(&token, &format!("/v1.0/{EM}/assignments/filterByCurrentUser(on='target')")).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    let assigned = mine["value"].as_array().unwrap();
    assert_eq!(assigned.len(), 1, "{mine}");
    // Delegated permissions come from scp: this token may not write.
    let (status, body) = app.post(&token, &format!("/v1.0/{EM}/catalogs"), json!({ "displayName": "x" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // The provider rotates to new keys of each other accepted algorithm: one refresh finds
    // them all, and the old key still verifies.
    let es256 = provider.rotate("ES256").await;
    let ps256 = provider.rotate("PS256").await;
    let eddsa = provider.rotate("EdDSA").await;
    for kid in [&es256, &ps256, &eddsa, &rs256] {
        let token = provider.token(kid, user_claims("adele@contoso.com")).await;
        let (status, me) = app.get(&token, "/v1.0/me").await;
        assert_eq!(status, StatusCode::OK, "key {kid}: {me}");
    }

    // An unknown subject: 403 naming the claim and the value tried.
    let stranger = provider.token(&rs256, user_claims("nobody@contoso.com")).await;
    let (status, body) = app.get(&stranger, "/v1.0/me").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("preferred_username") && message.contains("nobody@contoso.com"), "{message}");

    // Each refusal is a 401 naming what failed, and writes nothing.
    // Token times follow the wall clock (the development clock moves Grantry's records only).
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let unknown_kid =
        provider.token_with(&rs256, user_claims("adele@contoso.com"), json!({ "kid": "retired-long-ago" })).await;
    assert_refused(&app, &unknown_kid, "unknown kid").await;
    let tampered = tamper(&provider.token(&rs256, user_claims("adele@contoso.com")).await);
    assert_refused(&app, &tampered, "bad signature").await;
    let wrong_aud =
        provider.token(&rs256, json!({ "aud": "api://someone-else", "preferred_username": "adele@contoso.com" })).await;
    assert_refused(&app, &wrong_aud, "audience").await;
    let wrong_iss =
        provider.token(&rs256, json!({ "aud": AUDIENCE, "iss": "https://idp.example.com/untrusted" })).await;
    assert_refused(&app, &wrong_iss, "not trusted").await;
    let expired = provider
        .token(&rs256, json!({ "aud": AUDIENCE, "preferred_username": "adele@contoso.com", "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600 }))
        .await;
    assert_refused(&app, &expired, "expired").await;
    let rs_token = provider.token(&rs256, user_claims("adele@contoso.com")).await;
    let mismatch = with_header(&rs_token, json!({ "alg": "PS256", "kid": rs256, "typ": "JWT" }));
    assert_refused(&app, &mismatch, "alg mismatch").await;
    let hmac = with_header(&rs_token, json!({ "alg": "HS256", "kid": rs256, "typ": "JWT" }));
    assert_refused(&app, &hmac, "HS256").await;
    let none = with_header(&rs_token, json!({ "alg": "none", "typ": "JWT" }));
    assert_refused(&app, &none, "'none'").await;
    let from_dead = provider
        .token(&rs256, json!({ "aud": AUDIENCE, "iss": dead, "preferred_username": "adele@contoso.com" }))
        .await;
    assert_refused(&app, &from_dead, "cannot be fetched").await;
    let (_, catalogs) =
        app.get(&app.admin, &format!("/v1.0/{EM}/catalogs?$filter=displayName eq 'should not exist'")).await;
    assert_eq!(catalogs["value"].as_array().unwrap().len(), 0, "a refused token wrote: {catalogs}");
}

#[tokio::test]
async fn application_tokens_map_to_registered_applications_and_new_users_can_be_provisioned() {
    let Some(mut provider) = Provider::start("ES256").await else { return };
    let app = TestApp::spawn_with(Options { oidc: vec![provider.trusted(true)], ..Options::default() }).await;
    let kid = provider.first_kid.clone();
    grantry_core::applications::create_with_client_id(
        &app.state().app.store,
        app.now(),
        "reporting",
        &["EntitlementManagement.Read.All".to_string()],
        None,
        Some("reporting-client"),
    )
    .await
    .expect("registered");

    // An application token (roles, no user): the registration bounds what its roles grant.
    let roles = json!(["EntitlementManagement.Read.All", "EntitlementManagement.ReadWrite.All"]);
    let token = provider
        .token(&kid, json!({ "aud": AUDIENCE, "azp": "reporting-client", "sub": "reporting-client", "roles": roles }))
        .await;
    let (status, body) = app.get(&token, &format!("/v1.0/{EM}/catalogs")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.post(&token, &format!("/v1.0/{EM}/catalogs"), json!({ "displayName": "x" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "ReadWrite is not in the registration: {body}");
    let (status, body) = app.get(&token, "/v1.0/me").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an application has no /me: {body}");
    // An unregistered client is named.
    let stranger =
        provider.token(&kid, json!({ "aud": AUDIENCE, "client_id": "unknown-client", "roles": roles })).await;
    let (status, body) = app.get(&stranger, &format!("/v1.0/{EM}/catalogs")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("'unknown-client'"), "{body}");

    // auto_provision: a first sign-in creates the user from the name and email claims, and
    // the next one finds the same user.
    let claims = json!({ "aud": AUDIENCE, "sub": "u-1", "preferred_username": "Newcomer@Contoso.com",
                         "name": "New Comer", "email": "newcomer@contoso.com", "scp": "User.Read" });
    let token = provider.token(&kid, claims.clone()).await;
    let (status, me) = app.get(&token, "/v1.0/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["displayName"], "New Comer");
    assert_eq!(me["mail"], "newcomer@contoso.com");
    let again = provider.token(&kid, claims).await;
    let (_, me_again) = app.get(&again, "/v1.0/me").await;
    assert_eq!(me_again["id"], me["id"]);
    let (_, users) = app.get(&app.admin, "/v1.0/users?$filter=userPrincipalName eq 'newcomer@contoso.com'").await;
    assert_eq!(users["value"].as_array().unwrap().len(), 1, "{users}");

    // An address the issuer has not verified never names (or creates) a user.
    let unverified = json!({ "aud": AUDIENCE, "sub": "u-2", "email": "newcomer@contoso.com",
                             "email_verified": false, "scp": "User.Read" });
    let token = provider.token(&kid, unverified).await;
    let (status, body) = app.get(&token, "/v1.0/me").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("not verified"), "{body}");
}
