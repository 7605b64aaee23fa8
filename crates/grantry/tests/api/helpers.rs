//! The test kit: start a server, mint tokens, send requests.

#![allow(dead_code)]

use grantry::config::{Config, Database, LogFormat};
use grantry_api::auth::{MintRequest, claims_for};
use grantry_core::PrincipalKind;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const EM: &str = "identityGovernance/entitlementManagement";
pub const IGA_ROLE: &str = "45d8d3c5-c802-45c6-b32a-1d70b5e1e86e";
pub const GLOBAL_ADMIN_ROLE: &str = "62e90394-69f5-4237-9190-012177145e10";

/// Every application permission Grantry knows; the default admin token holds them all.
pub const ALL_APP_ROLES: &[&str] = &[
    "EntitlementManagement.ReadWrite.All",
    "User.ReadWrite.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.ReadWrite.All",
];

pub struct TestApp {
    pub base: String,
    pub server: Option<grantry::Server>,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// Application token with every permission.
    pub admin: String,
}

pub struct Options {
    pub dev_clock: bool,
    pub body_limit: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { dev_clock: true, body_limit: 4 * 1024 * 1024 }
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database: Database::Sqlite(dir.path().join("grantry.db")),
            public_base_url: None,
            log_format: LogFormat::Text,
            body_limit: options.body_limit,
            dev_clock: options.dev_clock,
        };
        let server = grantry::start(config).await.expect("server starts");
        let base = server.base_url.clone();
        let mut app = TestApp { base, server: Some(server), client: reqwest::Client::new(), dir, admin: String::new() };
        app.admin = app.app_token(ALL_APP_ROLES);
        app
    }

    fn state(&self) -> &grantry_api::AppState {
        &self.server.as_ref().expect("server running").state
    }

    fn mint(&self, kind: PrincipalKind, id: &str, permissions: &[&str], lifetime: i64) -> String {
        let keys = &self.state().keys;
        #[allow(clippy::disallowed_methods)]
        let now = chrono::Utc::now().timestamp();
        keys.mint(&claims_for(
            keys,
            MintRequest {
                kind,
                object_id: id.to_string(),
                app_id: id.to_string(),
                display_name: Some("test".into()),
                upn: None,
                permissions: permissions.iter().map(|s| s.to_string()).collect(),
                wids: Vec::new(),
                issued_at: now,
                lifetime_secs: lifetime,
            },
        ))
        .expect("mint")
    }

    /// An application token holding exactly `roles`.
    pub fn app_token(&self, roles: &[&str]) -> String {
        self.mint(PrincipalKind::App, &grantry_domain::ids::new_id(), roles, 3600)
    }

    /// A delegated token for `user_id` with `scopes`.
    pub fn user_token(&self, user_id: &str, scopes: &[&str]) -> String {
        self.mint(PrincipalKind::User, user_id, scopes, 3600)
    }

    /// A delegated token with the broad default scopes `grantry token --user` gives.
    pub fn user_token_default(&self, user_id: &str) -> String {
        self.user_token(
            user_id,
            &[
                "EntitlementManagement.ReadWrite.All",
                "User.ReadWrite.All",
                "Group.ReadWrite.All",
                "RoleManagement.ReadWrite.Directory",
            ],
        )
    }

    pub fn expired_token(&self, user_id: &str) -> String {
        self.mint(PrincipalKind::User, user_id, &["EntitlementManagement.ReadWrite.All"], -3600)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request and returns the status and the JSON body (`Null` when empty).
    pub async fn call(&self, method: Method, token: &str, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON body for {path}: {text}"))
        };
        (status, value)
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, token, path, None).await
    }
    pub async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, token, path, Some(&body)).await
    }
    pub async fn patch(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PATCH, token, path, Some(&body)).await
    }
    pub async fn put(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, token, path, Some(&body)).await
    }
    pub async fn delete(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, token, path, None).await
    }

    /// Creates a member user and returns its id.
    pub async fn create_user(&self, name: &str) -> String {
        let (status, body) = self
            .post(&self.admin, "/v1.0/users", json!({ "displayName": name, "userPrincipalName": format!("{name}@contoso.com"), "mail": format!("{name}@contoso.com") }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "create user {name}: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Gives `user_id` the Identity Governance Administrator directory role.
    pub async fn make_iga(&self, user_id: &str) {
        let (status, body) = self
            .post(
                &self.admin,
                "/v1.0/roleManagement/directory/roleAssignments",
                json!({ "principalId": user_id, "roleDefinitionId": IGA_ROLE, "directoryScopeId": "/" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "make IGA: {body}");
    }
}

/// Asserts `body` is Graph's error envelope with `code`.
#[track_caller]
pub fn assert_error(body: &Value, code: &str) {
    let error = &body["error"];
    assert!(error.is_object(), "expected an error envelope, got {body}");
    assert_eq!(error["code"], code, "unexpected error: {body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "error without message: {body}");
    assert!(error["innerError"]["request-id"].as_str().is_some(), "error without request-id: {body}");
    assert!(error["innerError"]["date"].as_str().is_some(), "error without date: {body}");
}

impl TestApp {
    /// Inserts a catalog and an access package in it directly through the store and returns
    /// `(catalog_id, package_id)`. (Stands in for the catalogs and packages endpoints.)
    pub async fn seed_package(&self) -> (String, String) {
        use grantry_domain::enums::{CatalogState, CatalogType};
        use grantry_domain::model::{AccessPackage, Catalog};
        let app = &self.state().app;
        let now = app.now();
        let catalog = Catalog {
            id: grantry_domain::ids::new_id(),
            display_name: format!("catalog {}", &grantry_domain::ids::new_id()[..8]),
            description: None,
            is_externally_visible: true,
            state: CatalogState::Published,
            catalog_type: CatalogType::UserManaged,
            unique_name: None,
            created_by: None,
            modified_by: None,
            created_date_time: now,
            modified_date_time: now,
        };
        let package = AccessPackage {
            id: grantry_domain::ids::new_id(),
            catalog_id: catalog.id.clone(),
            display_name: "Marketing".into(),
            description: Some("Marketing resources".into()),
            is_hidden: false,
            is_role_scopes_visible: false,
            unique_name: None,
            created_by: None,
            modified_by: None,
            created_date_time: now,
            modified_date_time: now,
        };
        let ids = (catalog.id.clone(), package.id.clone());
        app.store
            .write(move |c| {
                grantry_store::repo::insert(c, &catalog)?;
                grantry_store::repo::insert(c, &package)
            })
            .await
            .expect("seed package");
        ids
    }

    /// Inserts an active (delivered) assignment made through `policy_id`.
    pub async fn seed_assignment(&self, catalog_id: &str, package_id: &str, policy_id: &str) {
        use grantry_domain::enums::AssignmentState;
        use grantry_domain::model::{Assignment, Schedule};
        let app = &self.state().app;
        let assignment = Assignment {
            id: grantry_domain::ids::new_id(),
            access_package_id: package_id.into(),
            catalog_id: catalog_id.into(),
            policy_id: policy_id.into(),
            target_subject_id: grantry_domain::ids::new_id(),
            state: AssignmentState::Delivered,
            status: "Delivered".into(),
            schedule: Schedule::default(),
            answers: Vec::new(),
            is_extended: false,
            expired_date_time: None,
            created_date_time: app.now(),
            custom_extension_callout_instances: Vec::new(),
        };
        app.store.write(move |c| grantry_store::repo::insert(c, &assignment)).await.expect("seed assignment");
    }

    /// Gives `user_id` an entitlement management role on `catalog_id`.
    pub async fn grant_catalog_role(&self, user_id: &str, role_definition_id: &str, catalog_id: &str) {
        use grantry_domain::model::{RoleAssignment, RoleProvider};
        let app = &self.state().app;
        let ra = RoleAssignment {
            id: grantry_domain::ids::new_id(),
            provider: RoleProvider::EntitlementManagement,
            principal_id: user_id.into(),
            role_definition_id: role_definition_id.into(),
            directory_scope_id: None,
            app_scope_id: Some(format!("/AccessPackageCatalog/{catalog_id}")),
            created_date_time: app.now(),
        };
        app.store.write(move |c| grantry_store::repo::insert(c, &ra)).await.expect("grant role");
    }
}

/// A request fixture copied from the docs (see its `source`).
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/api/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}
