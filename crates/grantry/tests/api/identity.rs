//! Grantry's own token issuer: ES256 signing keys kept in the key directory (not in the
//! database), published as a JWK set with an OpenID discovery document; rotation; tokens
//! of the former HS256 scheme refused with a message saying what to do.

use crate::helpers::*;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn get_json(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let resp = app.client.get(app.url(path)).send().await.unwrap();
    let status = resp.status();
    (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null))
}

fn header_of(token: &str) -> Value {
    let head = token.split('.').next().unwrap();
    serde_json::from_slice(&B64.decode(head).unwrap()).unwrap()
}

/// A token with the given header and claims and a meaningless signature.
fn forged(header: Value, claims: Value) -> String {
    format!("{}.{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()), B64.encode(b"not a signature"))
}

#[tokio::test]
async fn discovery_and_keys_describe_the_issuer_and_verify_its_tokens() {
    let app = TestApp::spawn().await;
    let tenant = app.state().keys.tenant_id.clone();
    for t in [tenant.as_str(), "common", "organizations", "Common"] {
        let (status, config) = get_json(&app, &format!("/{t}/v2.0/.well-known/openid-configuration")).await;
        assert_eq!(status, StatusCode::OK, "{t}: {config}");
        assert_eq!(config["issuer"], app.state().keys.issuer());
        assert_eq!(config["token_endpoint"], format!("{}/{t}/oauth2/v2.0/token", app.base));
        assert_eq!(config["jwks_uri"], format!("{}/{t}/discovery/v2.0/keys", app.base));
    }
    let (status, jwks) = get_json(&app, "/common/discovery/v2.0/keys").await;
    assert_eq!(status, StatusCode::OK);
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let jwk = &keys[0];
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str(), jwk["alg"].as_str()),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(jwk.get("d").is_none(), "the private part is never published: {jwk}");
    // The admin token names this key and verifies with it alone, as a third party would.
    let header = header_of(&app.admin);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], jwk["kid"]);
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["https://graph.microsoft.com"]);
    validation.set_issuer(&[app.state().keys.issuer()]);
    let claims = jsonwebtoken::decode::<Value>(&app.admin, &key, &validation).expect("verifies with the JWKS");
    assert_eq!(claims.claims["tid"], tenant);

    // Another tenant is refused in OAuth's error shape.
    let (status, body) = get_json(&app, "/11111111-2222-4333-8444-555555555555/discovery/v2.0/keys").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_tenant", "{body}");
    assert!(body["error_description"].as_str().unwrap().contains(&tenant), "{body}");
}

#[tokio::test]
async fn the_private_key_is_kept_out_of_the_database() {
    let app = TestApp::spawn().await;
    let rows = app
        .state()
        .app
        .store
        .read(|c| {
            let rows = c.query("SELECT key, value FROM meta", &[])?;
            rows.iter().map(|r| Ok((r.text(0)?, r.text(1)?))).collect::<grantry_domain::Result<Vec<_>>>()
        })
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for (key, value) in &rows {
        assert_ne!(key, "token_signing_key");
        assert!(!value.contains("PRIVATE KEY"), "{key} holds key material");
    }
    // The key file is the owner's alone.
    let dir = app.dir.path().join("keys");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&files[0]).unwrap().contains("BEGIN PRIVATE KEY"));
}

#[tokio::test]
async fn a_rotated_key_still_verifies_its_tokens_and_new_tokens_use_the_new_key() {
    let app = TestApp::spawn().await;
    let before = app.app_token(&["EntitlementManagement.Read.All"]);
    let old_kid = header_of(&before)["kid"].as_str().unwrap().to_string();
    #[allow(clippy::disallowed_methods)]
    let now = chrono::Utc::now().timestamp();
    let new_kid = grantry_api::keyring::rotate(&app.dir.path().join("keys"), now).unwrap();
    assert_ne!(new_kid, old_kid);

    // The running server signs with the new key and still accepts the old one's tokens.
    let after = app.app_token(&["EntitlementManagement.Read.All"]);
    assert_eq!(header_of(&after)["kid"], new_kid.as_str());
    for token in [&before, &after] {
        let (status, body) = app.get(token, &format!("/v1.0/{EM}/catalogs")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, jwks) = get_json(&app, "/common/discovery/v2.0/keys").await;
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()), "{kids:?}");
}

#[tokio::test]
async fn tokens_of_the_former_hs256_scheme_and_unknown_keys_are_refused_with_a_reason() {
    let app = TestApp::spawn().await;
    #[allow(clippy::disallowed_methods)]
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "aud": "https://graph.microsoft.com", "iss": app.state().keys.issuer(), "iat": now, "nbf": now,
        "exp": now + 3600, "tid": app.state().keys.tenant_id, "oid": "x", "sub": "x", "idtyp": "app",
        "appid": "x", "roles": ["EntitlementManagement.ReadWrite.All"], "ver": "2.0",
    });
    let cases = [
        (forged(json!({ "alg": "HS256", "typ": "JWT" }), claims.clone()), "HS256"),
        (forged(json!({ "alg": "ES256", "typ": "JWT", "kid": "no-such-key" }), claims.clone()), "no-such-key"),
        (forged(json!({ "alg": "ES256", "typ": "JWT" }), claims.clone()), "kid"),
        (forged(json!({ "alg": "none", "typ": "JWT" }), claims.clone()), "malformed"),
    ];
    for (token, named) in cases {
        let resp = app.client.get(app.url(&format!("/v1.0/{EM}/catalogs"))).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap().to_string();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        let body: Value = resp.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(named), "{named}: {message}");
    }
    // A signature made with another key that claims this server's kid.
    let kid = header_of(&app.admin)["kid"].as_str().unwrap().to_string();
    let other = tempfile::tempdir().unwrap();
    let foreign = grantry_api::auth::TokenKeys::with_tenant(app.state().keys.tenant_id.clone(), other.path()).unwrap();
    let foreign_token = foreign.mint(&serde_json::from_value(claims.clone()).unwrap()).unwrap();
    let mut parts: Vec<String> = foreign_token.split('.').map(str::to_string).collect();
    let mut header = header_of(&foreign_token);
    header["kid"] = json!(kid);
    parts[0] = B64.encode(header.to_string());
    let (status, body) = app.get(&parts.join("."), &format!("/v1.0/{EM}/catalogs")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["message"].as_str().unwrap().contains("signature"), "{body}");
}

#[tokio::test]
async fn the_keys_command_rotates_and_lists() {
    let app = TestApp::spawn().await;
    let dir = app.dir.path().join("keys");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_grantry"))
            .args(args)
            .arg("--key-dir")
            .arg(&dir)
            .output()
            .expect("grantry runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let new_kid = run(&["keys", "rotate"]).trim().to_string();
    let listed = run(&["keys", "list"]);
    assert!(listed.lines().next().unwrap().starts_with(&new_kid), "{listed}");
    assert!(listed.contains("signing") && listed.contains("retired"), "{listed}");
    // The server signs with the key the command added.
    assert_eq!(header_of(&app.app_token(&["EntitlementManagement.Read.All"]))["kid"], new_kid.as_str());
    // A directory without keys is not silently filled by `rotate`.
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_grantry"))
        .args(["keys", "rotate", "--key-dir"])
        .arg(empty.path().join("keys"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no signing key"));
}
