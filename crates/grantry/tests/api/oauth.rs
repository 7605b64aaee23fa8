//! Grantry as an OAuth 2.0 token issuer: applications registered with a client secret get
//! tokens from `POST /{tenant}/oauth2/v2.0/token` (client credentials), answered and refused
//! as Entra's v2.0 endpoint does; the applications show in `/applications` and
//! `/servicePrincipals`.

use crate::helpers::*;
use base64::Engine as _;
use grantry_core::applications;
use reqwest::StatusCode;
use serde_json::Value;

const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";

fn now() -> chrono::DateTime<chrono::Utc> {
    #[allow(clippy::disallowed_methods)]
    let now = grantry_domain::clock::truncate_micros(chrono::Utc::now());
    now
}

async fn register(app: &TestApp, name: &str, roles: &[&str]) -> (applications::Application, String) {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    applications::create(&app.state().app.store, now(), name, &roles, None).await.expect("application registered")
}

async fn token_request(
    app: &TestApp,
    tenant: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut req = app.client.post(app.url(&format!("/{tenant}/oauth2/v2.0/token"))).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    (status, serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null), headers)
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn client_credentials_issue_a_token_that_works_on_graph() {
    let app = TestApp::spawn().await;
    let (registered, secret) =
        register(&app, "provisioning", &["EntitlementManagement.ReadWrite.All", "User.Read.All"]).await;
    let tenant = app.state().keys.tenant_id.clone();
    for t in [tenant.as_str(), "organizations"] {
        let (status, body, headers) = token_request(
            &app,
            t,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &registered.app_id),
                ("client_secret", &secret),
                ("scope", GRAPH_DEFAULT),
            ],
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        let token = body["access_token"].as_str().unwrap();
        let claims = claims_of(token);
        assert_eq!(claims["idtyp"], "app");
        assert_eq!(claims["appid"], registered.app_id.as_str());
        assert_eq!(claims["oid"], registered.sp_id.as_str());
        assert_eq!(claims["tid"], tenant.as_str());
        assert_eq!(claims["roles"], serde_json::json!(["EntitlementManagement.ReadWrite.All", "User.Read.All"]));
        let (status, body) = app.get(token, &format!("/v1.0/{EM}/catalogs")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // The token carries only the application's permissions.
        let (status, _) = app.get(token, "/v1.0/groups").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // HTTP Basic (client_secret_basic) works the same, with the scope's resource given as
    // the Graph application id too.
    let (status, body, _) = token_request(
        &app,
        "common",
        &[("grant_type", "client_credentials"), ("scope", "00000003-0000-0000-c000-000000000000/.default")],
        Some((&registered.app_id, &secret)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn bad_token_requests_get_oauth_errors_that_say_what_to_fix() {
    let app = TestApp::spawn().await;
    let (registered, secret) = register(&app, "ci", &["EntitlementManagement.Read.All"]).await;
    let id = registered.app_id.as_str();
    // (form, status, OAuth error, what the description names)
    type Case<'a> = (Vec<(&'a str, &'a str)>, StatusCode, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", "wrong"),
                ("scope", GRAPH_DEFAULT),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "00000000-0000-4000-8000-000000000000"),
                ("client_secret", &secret),
                ("scope", GRAPH_DEFAULT),
            ],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "00000000-0000-4000-8000-000000000000",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", &secret),
                ("scope", "User.Read"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "https://graph.microsoft.com/.default",
        ),
        (
            vec![("grant_type", "password"), ("client_id", id), ("client_secret", &secret), ("scope", GRAPH_DEFAULT)],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "password",
        ),
        (
            vec![("client_id", id), ("client_secret", &secret), ("scope", GRAPH_DEFAULT)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type",
        ),
        (
            vec![("grant_type", "client_credentials"), ("client_secret", &secret), ("scope", GRAPH_DEFAULT)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id",
        ),
        (
            vec![("grant_type", "client_credentials"), ("client_id", id), ("scope", GRAPH_DEFAULT)],
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_secret",
        ),
    ];
    for (form, status, error, named) in cases {
        let (got, body, _) = token_request(&app, "common", &form, None).await;
        assert_eq!(got, status, "{form:?}: {body}");
        assert_eq!(body["error"], error, "{form:?}: {body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(named), "{form:?}: {description}");
    }
    // Another tenant, and a JSON body.
    let (status, body, _) =
        token_request(&app, "contoso.onmicrosoft.com", &[("grant_type", "client_credentials")], None).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_tenant")), "{body}");
    let resp = app
        .client
        .post(app.url("/common/oauth2/v2.0/token"))
        .json(&serde_json::json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert!(body["error_description"].as_str().unwrap().contains("x-www-form-urlencoded"), "{body}");
}

#[tokio::test]
async fn repeated_failures_throttle_the_client_until_the_window_ends() {
    let app = TestApp::spawn().await;
    let (registered, secret) = register(&app, "guessed", &["EntitlementManagement.Read.All"]).await;
    let form = |s: &'static str| {
        vec![("grant_type", "client_credentials"), ("client_id", ""), ("client_secret", s), ("scope", GRAPH_DEFAULT)]
    };
    for _ in 0..5 {
        let mut f = form("wrong");
        f[1].1 = &registered.app_id;
        let (status, body, _) = token_request(&app, "common", &f, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // Now even the right secret is refused for a while, with the time to wait.
    let (status, body, headers) = token_request(
        &app,
        "common",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &registered.app_id),
            ("client_secret", &secret),
            ("scope", GRAPH_DEFAULT),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Other clients are not affected.
    let (other, other_secret) = register(&app, "other", &["EntitlementManagement.Read.All"]).await;
    let (status, body, _) = token_request(
        &app,
        "common",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &other.app_id),
            ("client_secret", &other_secret),
            ("scope", GRAPH_DEFAULT),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn applications_and_service_principals_show_registrations_without_secrets() {
    let app = TestApp::spawn().await;
    let (registered, secret) = register(&app, "Reporting", &["EntitlementManagement.Read.All"]).await;
    for (set, id) in [("applications", &registered.id), ("servicePrincipals", &registered.sp_id)] {
        let (status, body) = app.get(&app.admin, &format!("/v1.0/{set}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body["value"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{body}");
        assert_eq!(items[0]["id"], id.as_str());
        assert_eq!(items[0]["appId"], registered.app_id.as_str());
        assert_eq!(items[0]["displayName"], "Reporting");
        assert_eq!(items[0]["appRoles"][0]["value"], "EntitlementManagement.Read.All");
        assert!(!body.to_string().contains(&secret), "the secret never leaves");
        for key in [id.as_str(), registered.app_id.as_str()] {
            let (status, one) = app.get(&app.admin, &format!("/v1.0/{set}/{key}")).await;
            assert_eq!(status, StatusCode::OK, "{one}");
            assert_eq!(one["id"], id.as_str());
        }
    }
    let (_, one) = app.get(&app.admin, &format!("/beta/applications/{}", registered.id)).await;
    let credential = &one["passwordCredentials"][0];
    assert_eq!(credential["hint"], &secret[..3]);
    assert!(credential["secretText"].is_null());
    // Reading applications needs a permission that allows it.
    let reader = app.app_token(&["EntitlementManagement.Read.All"]);
    let (status, body) = app.get(&reader, "/v1.0/applications").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Application.Read.All"));
    let (status, _) = app.get(&app.admin, "/v1.0/servicePrincipals/00000000-0000-4000-8000-000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn removed_secrets_and_applications_stop_working() {
    let app = TestApp::spawn().await;
    let store = app.state().app.store.clone();
    let (registered, first) = register(&app, "rotating", &["EntitlementManagement.Read.All"]).await;
    let (_, second_info, second) =
        applications::add_secret(&store, now(), &registered.app_id, Some("second".into()), None).await.unwrap();
    let ask = |secret: String| {
        let app = &app;
        let client_id = registered.app_id.clone();
        async move {
            let (status, body, _) = token_request(
                app,
                "common",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &client_id),
                    ("client_secret", &secret),
                    ("scope", GRAPH_DEFAULT),
                ],
                None,
            )
            .await;
            (status, body)
        }
    };
    assert_eq!(ask(first.clone()).await.0, StatusCode::OK);
    let (status, body) = ask(second.clone()).await;
    assert_eq!(status, StatusCode::OK);
    let token = body["access_token"].as_str().unwrap().to_string();
    applications::remove_secret(&store, &registered.app_id, &second_info.key_id).await.unwrap();
    assert_eq!(ask(second).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(ask(first.clone()).await.0, StatusCode::OK);
    // An expired secret is refused.
    let (_, _, expired) =
        applications::add_secret(&store, now(), &registered.app_id, None, Some(now() - chrono::Duration::seconds(1)))
            .await
            .unwrap();
    assert_eq!(ask(expired).await.0, StatusCode::UNAUTHORIZED);
    // Removing the application refuses its secrets and the tokens it already has.
    applications::remove(&store, "rotating").await.unwrap();
    assert_eq!(ask(first).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = app.get(&token, &format!("/v1.0/{EM}/catalogs")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("removed"), "{body}");
}

#[tokio::test]
async fn the_app_command_registers_lists_and_removes() {
    let app = TestApp::spawn().await;
    let db_args: Vec<String> = match &app.pg {
        Some(pg) => vec!["--database".into(), pg.url.clone()],
        None => vec!["--data-dir".into(), app.dir.path().display().to_string()],
    };
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_grantry"))
            .args(args)
            .args(&db_args)
            .env("GRANTRY_LOG", "error")
            .output()
            .expect("grantry runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, out, err) = run(&["app", "create", "cli-made", "--roles", "EntitlementManagement.Read.All"]);
    assert!(ok, "{err}");
    let field = |name: &str| {
        out.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string()).unwrap_or_else(|| panic!("{out}"))
    };
    let (client_id, secret, tenant) = (field("client_id:"), field("client_secret:"), field("tenant_id:"));
    assert_eq!(tenant, app.state().keys.tenant_id);
    let (status, body, _) = token_request(
        &app,
        &tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("scope", GRAPH_DEFAULT),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The database holds a hash, never the secret.
    let stored = app
        .state()
        .app
        .store
        .read(|c| {
            let rows = c.query("SELECT secret_sha256 FROM application_secrets", &[])?;
            rows.iter().map(|r| r.text(0)).collect::<grantry_domain::Result<Vec<_>>>()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], secret);
    assert_eq!(stored[0].len(), 64);

    let (ok, out, err) = run(&["app", "secret", "add", &client_id, "--name", "ci", "--expires-in", "90d"]);
    assert!(ok, "{err}");
    let key_id = out.lines().find_map(|l| l.strip_prefix("key_id:")).unwrap().trim().to_string();
    let (ok, listed, _) = run(&["app", "list"]);
    assert!(ok && listed.contains(&client_id) && listed.contains(&key_id), "{listed}");
    let (ok, _, err) = run(&["app", "secret", "remove", &client_id, &key_id]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["app", "create", "bad", "--roles", "Mail.Send"]);
    assert!(!ok && err.contains("Mail.Send"), "{err}");
    let (ok, _, err) = run(&["app", "remove", "cli-made"]);
    assert!(ok, "{err}");
    let (ok, listed, _) = run(&["app", "list"]);
    assert!(ok && !listed.contains(&client_id), "{listed}");
}
