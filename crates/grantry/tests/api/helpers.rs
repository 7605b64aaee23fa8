//! The test kit: start a server, mint tokens, send requests.

#![allow(dead_code)]

use grantry::config::{Config, Database};
use grantry_api::auth::{MintRequest, claims_for};
use grantry_core::PrincipalKind;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub const EM: &str = "identityGovernance/entitlementManagement";
pub const IGA_ROLE: &str = "45d8d3c5-c802-45c6-b32a-1d70b5e1e86e";
pub const GLOBAL_ADMIN_ROLE: &str = "62e90394-69f5-4237-9190-012177145e10";
pub const USER_ADMIN_ROLE: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
pub const GROUPS_ADMIN_ROLE: &str = "fdd7a751-b60b-444a-984c-02652fe8fa1c";
pub const PRIVILEGED_ROLE_ADMIN_ROLE: &str = "e8611ab8-c189-46e8-94e1-60213ab1f814";
/// Entitlement management role definition ids (reference §11.3).
pub const CATALOG_CREATOR: &str = "ba92d953-d8e0-4e39-a797-0cbedb0a89e8";
pub const CATALOG_OWNER: &str = "ae79f266-94d4-4dab-b730-feca7e132178";
pub const CATALOG_READER: &str = "44272f93-9762-48e8-af59-1b5351b1d6b3";
pub const ACCESS_PACKAGE_MANAGER: &str = "7f480852-ebdc-47d4-87de-0d8498384a83";
pub const ACCESS_PACKAGE_ASSIGNMENT_MANAGER: &str = "e2182095-804a-4656-ae11-64734e9b7ae5";

/// Every application permission Grantry knows; the default admin token holds them all.
pub const ALL_APP_ROLES: &[&str] = &[
    "EntitlementManagement.ReadWrite.All",
    "User.ReadWrite.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.ReadWrite.All",
    "AccessReview.ReadWrite.All",
];

pub struct TestApp {
    pub base: String,
    pub server: Option<grantry::Server>,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    /// Application token with every permission.
    pub admin: String,
    /// The PostgreSQL database of this test, when the suite runs against PostgreSQL.
    pub pg: Option<PgTestDatabase>,
}

/// With `GRANTRY_TEST_DATABASE_URL` set to a PostgreSQL server URL (e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`), every test runs on a fresh database of
/// its own on that server instead of SQLite in a temporary directory.
pub const TEST_DATABASE_ENV: &str = "GRANTRY_TEST_DATABASE_URL";

/// A database created for one test, dropped when the test ends.
pub struct PgTestDatabase {
    /// The maintenance connection URL (from `GRANTRY_TEST_DATABASE_URL`).
    server_url: String,
    pub name: String,
    pub url: String,
}

/// Replaces the database name (the path) of a PostgreSQL URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..].find('/').map(|i| scheme_end + i).unwrap_or(base.len());
    format!("{}/{name}{query}", &base[..host_end])
}

/// Runs `sql` on the maintenance database, on a thread of its own (the synchronous client
/// must not run on the test's async runtime).
fn pg_admin(server_url: &str, sql: String) -> Result<(), String> {
    let url = server_url.to_string();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).map_err(|e| e.to_string())?;
        client.batch_execute(&sql).map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| "the PostgreSQL admin thread panicked".to_string())?
}

impl PgTestDatabase {
    /// Creates a fresh database when `GRANTRY_TEST_DATABASE_URL` is set.
    pub fn create() -> Option<PgTestDatabase> {
        let server_url = std::env::var(TEST_DATABASE_ENV).ok().filter(|u| !u.trim().is_empty())?;
        let name = format!("grantry_test_{}", grantry_domain::ids::new_id().replace('-', ""));
        pg_admin(&server_url, format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("cannot create a test database on {TEST_DATABASE_ENV}: {e}"));
        let url = with_database(&server_url, &name);
        Some(PgTestDatabase { server_url, name, url })
    }
}

impl Drop for PgTestDatabase {
    fn drop(&mut self) {
        let _ = pg_admin(&self.server_url, format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// The database of a test: its PostgreSQL database, or SQLite in its temporary directory.
fn database_of(dir: &tempfile::TempDir, pg: &Option<PgTestDatabase>) -> Database {
    match pg {
        Some(db) => Database::Postgres(db.url.clone()),
        None => Database::Sqlite(dir.path().join("grantry.db")),
    }
}

/// True when the suite runs against PostgreSQL (`GRANTRY_TEST_DATABASE_URL` is set).
pub fn on_postgres() -> bool {
    std::env::var(TEST_DATABASE_ENV).is_ok_and(|u| !u.trim().is_empty())
}

pub struct Options {
    pub dev_clock: bool,
    pub body_limit: usize,
    pub read_timeout: std::time::Duration,
    /// Also serve `/metrics` without a token on a port of its own.
    pub metrics_listen: bool,
    /// `--outbound-allow`: loopback by default, where the tests' receivers listen.
    pub outbound_allow: Vec<&'static str>,
    pub statement_budget: std::time::Duration,
    pub expensive_queries_per_caller: usize,
    /// Serve HTTPS with this certificate.
    pub tls: Option<grantry::config::Tls>,
    /// Trusted external OpenID issuers.
    pub oidc: Vec<grantry_api::oidc::OidcIssuer>,
    /// `--dev-login`: the portal's development sign-in.
    pub dev_login: bool,
    /// Portal sign-in through one of `oidc`.
    pub portal_sign_in: Option<grantry_api::portal::PortalSignIn>,
    /// Notification mail (SMTP server, sender, templates); by default mails are kept.
    pub mail: grantry::config::MailConfig,
    /// `--public-base-url` (links in mails).
    pub public_base_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dev_clock: true,
            body_limit: 4 * 1024 * 1024,
            read_timeout: grantry::config::DEFAULT_READ_TIMEOUT,
            metrics_listen: false,
            outbound_allow: vec!["127.0.0.0/8"],
            oidc: Vec::new(),
            dev_login: false,
            portal_sign_in: None,
            statement_budget: grantry::config::DEFAULT_STATEMENT_BUDGET,
            expensive_queries_per_caller: grantry::config::DEFAULT_EXPENSIVE_QUERIES_PER_CALLER,
            tls: None,
            mail: Default::default(),
            public_base_url: None,
        }
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = PgTestDatabase::create();
        let config = Config {
            tls: options.tls.clone(),
            body_limit: options.body_limit,
            dev_clock: options.dev_clock,
            read_timeout: options.read_timeout,
            metrics_listen: options.metrics_listen.then(|| "127.0.0.1:0".parse().unwrap()),
            outbound_allow: grantry_outbound::AllowList::from_items(&options.outbound_allow).expect("allow-list"),
            oidc: options.oidc.clone(),
            dev_login: options.dev_login,
            portal_sign_in: options.portal_sign_in.clone(),
            statement_budget: options.statement_budget,
            expensive_queries_per_caller: options.expensive_queries_per_caller,
            mail: options.mail.clone(),
            public_base_url: options.public_base_url.clone(),
            ..Config::for_test(database_of(&dir, &pg), dir.path().join("keys"))
        };
        let server = grantry::start(config).await.expect("server starts");
        // With a public base URL (links in mails), the tests still talk to the listener.
        let base = match &options.public_base_url {
            Some(_) => format!("http://{}", server.addr),
            None => server.base_url.clone(),
        };
        let mut app =
            TestApp { base, server: Some(server), client: reqwest::Client::new(), dir, admin: String::new(), pg };
        app.admin = app.app_token(ALL_APP_ROLES);
        app
    }

    pub fn state(&self) -> &grantry_api::AppState {
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

    /// Gives `user_id` a directory role (template id); returns the assignment id.
    pub async fn assign_directory_role(&self, user_id: &str, role: &str) -> String {
        let (status, body) = self
            .post(
                &self.admin,
                "/v1.0/roleManagement/directory/roleAssignments",
                json!({ "principalId": user_id, "roleDefinitionId": role, "directoryScopeId": "/" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "assign directory role {role}: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Gives `user_id` an entitlement management role at `app_scope_id` ("/" or
    /// "/AccessPackageCatalog/{id}"); returns the assignment id.
    pub async fn assign_em_role(&self, user_id: &str, role: &str, app_scope_id: &str) -> String {
        let (status, body) = self
            .post(
                &self.admin,
                "/v1.0/roleManagement/entitlementManagement/roleAssignments",
                json!({ "principalId": user_id, "roleDefinitionId": role, "appScopeId": app_scope_id }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "assign EM role {role} at {app_scope_id}: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Makes `user_id` an owner of the catalog.
    pub async fn make_catalog_owner(&self, user_id: &str, catalog_id: &str) -> String {
        self.assign_em_role(user_id, CATALOG_OWNER, &format!("/AccessPackageCatalog/{catalog_id}")).await
    }

    /// Inserts a catalog row straight into the store (a fixture for tests that only need a
    /// catalog to exist); returns its id.
    pub async fn insert_catalog(&self, name: &str) -> String {
        use grantry_domain::enums::{CatalogState, CatalogType};
        #[allow(clippy::disallowed_methods)]
        let now = grantry_domain::clock::truncate_micros(chrono::Utc::now());
        let catalog = grantry_domain::model::Catalog {
            id: grantry_domain::ids::new_id(),
            display_name: name.to_string(),
            description: None,
            is_externally_visible: false,
            state: CatalogState::Published,
            catalog_type: CatalogType::UserManaged,
            unique_name: None,
            created_by: None,
            modified_by: None,
            created_date_time: now,
            modified_date_time: now,
        };
        let id = catalog.id.clone();
        self.state().app.store.write(move |c| grantry_store::repo::insert(c, &catalog)).await.expect("insert catalog");
        id
    }

    /// Creates a security group and returns its id.
    pub async fn create_group(&self, name: &str) -> String {
        let (status, body) = self
            .post(
                &self.admin,
                "/v1.0/groups",
                json!({ "displayName": name, "mailNickname": name, "mailEnabled": false, "securityEnabled": true }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create group {name}: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Adds a user or group as a member of a group.
    pub async fn add_member(&self, group_id: &str, member_id: &str) {
        let (status, body) = self
            .post(
                &self.admin,
                &format!("/v1.0/groups/{group_id}/members/$ref"),
                json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{member_id}") }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "add member: {body}");
    }

    /// Adds a user as an owner of a group.
    pub async fn add_owner(&self, group_id: &str, user_id: &str) {
        let (status, body) = self
            .post(
                &self.admin,
                &format!("/v1.0/groups/{group_id}/owners/$ref"),
                json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/users/{user_id}") }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "add owner: {body}");
    }

    /// The ids in a collection response's `value`.
    pub fn ids_of(body: &Value) -> Vec<String> {
        body["value"]
            .as_array()
            .unwrap_or_else(|| panic!("not a collection: {body}"))
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    }
}

/// `/{root}/identityGovernance/entitlementManagement/{rest}`.
pub fn em(root: &str, rest: &str) -> String {
    format!("/{root}/{EM}/{rest}")
}

impl TestApp {
    /// Inserts a security group directly into the store and returns its id.
    pub async fn insert_group(&self, name: &str) -> String {
        let group = grantry_domain::model::Group {
            id: grantry_domain::ids::new_id(),
            display_name: name.to_string(),
            description: Some(format!("{name} group")),
            mail_nickname: Some(name.to_string()),
            mail: None,
            mail_enabled: false,
            security_enabled: true,
            group_types: Vec::new(),
            visibility: None,
            #[allow(clippy::disallowed_methods)]
            created_date_time: grantry_domain::clock::truncate_micros(chrono::Utc::now()),
        };
        let id = group.id.clone();
        self.state().app.store.write(move |c| grantry_store::repo::insert(c, &group)).await.expect("insert group");
        id
    }

    /// Makes `user_id` an owner of `group_id`, directly in the store.
    pub async fn insert_group_owner(&self, group_id: &str, user_id: &str) {
        let (g, u) = (group_id.to_string(), user_id.to_string());
        self.state()
            .app
            .store
            .write(move |c| {
                c.execute(
                    "INSERT INTO group_links (group_id, relation, member_id, direct, granted) VALUES (?, 'owner', ?, 1, 0)",
                    &[g.into(), u.into()],
                )
                .map(|_| ())
            })
            .await
            .expect("insert owner");
    }

    async fn insert_role(&self, provider: grantry_domain::model::RoleProvider, user_id: &str, role: &str, scope: &str) {
        use grantry_domain::model::{RoleAssignment, RoleProvider};
        let directory = provider == RoleProvider::Directory;
        let assignment = RoleAssignment {
            id: grantry_domain::ids::new_id(),
            provider,
            principal_id: user_id.to_string(),
            role_definition_id: role.to_string(),
            directory_scope_id: directory.then(|| scope.to_string()),
            app_scope_id: (!directory).then(|| scope.to_string()),
            #[allow(clippy::disallowed_methods)]
            created_date_time: grantry_domain::clock::truncate_micros(chrono::Utc::now()),
        };
        self.state().app.store.write(move |c| grantry_store::repo::insert(c, &assignment)).await.expect("insert role");
    }

    /// Gives `user_id` a directory role (template id), directly in the store.
    pub async fn grant_directory_role(&self, user_id: &str, role: &str) {
        self.insert_role(grantry_domain::model::RoleProvider::Directory, user_id, role, "/").await
    }

    /// Gives `user_id` an entitlement management role in one catalog.
    pub async fn grant_catalog_role(&self, user_id: &str, role: &str, catalog_id: &str) {
        let scope = format!("/AccessPackageCatalog/{catalog_id}");
        self.insert_role(grantry_domain::model::RoleProvider::EntitlementManagement, user_id, role, &scope).await
    }

    /// Gives `user_id` a tenant-wide entitlement management role (e.g. Catalog creator).
    pub async fn grant_tenant_em_role(&self, user_id: &str, role: &str) {
        self.insert_role(grantry_domain::model::RoleProvider::EntitlementManagement, user_id, role, "/").await
    }

    /// Creates a catalog (v1.0, as the admin application) and returns its id.
    pub async fn create_catalog(&self, name: &str) -> String {
        let (status, body) =
            self.post(&self.admin, &em("v1.0", "catalogs"), json!({ "displayName": name, "description": name })).await;
        assert_eq!(status, StatusCode::CREATED, "create catalog {name}: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Adds `group_id` to `catalog_id` through a resource request; returns the resource id.
    pub async fn add_group_resource(&self, catalog_id: &str, group_id: &str) -> String {
        let (status, body) = self
            .post(
                &self.admin,
                &em("v1.0", "resourceRequests"),
                json!({ "requestType": "adminAdd", "resource": { "originId": group_id, "originSystem": "AadGroup" }, "catalog": { "id": catalog_id } }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "add group resource: {body}");
        let path = em("v1.0", &format!("catalogs/{catalog_id}/resources?$filter=originId eq '{group_id}'"));
        let (status, body) = self.get(&self.admin, &path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["value"][0]["id"].as_str().expect("resource listed").to_string()
    }

    /// Creates an access package in `catalog_id`; returns its id.
    pub async fn create_package(&self, catalog_id: &str, name: &str) -> String {
        let (status, body) = self
            .post(
                &self.admin,
                &em("v1.0", "accessPackages"),
                json!({ "displayName": name, "catalog": { "id": catalog_id } }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create package {name}: {body}");
        body["id"].as_str().unwrap().to_string()
    }

    /// Adds the group's Member role (root scope) to the package; returns the role scope.
    pub async fn add_member_role_scope(&self, package_id: &str, resource_id: &str, group_id: &str) -> Value {
        let (status, body) = self
            .post(
                &self.admin,
                &em("v1.0", &format!("accessPackages/{package_id}/resourceRoleScopes")),
                json!({
                    "role": { "originId": format!("Member_{group_id}"), "originSystem": "AadGroup", "resource": { "id": resource_id } },
                    "scope": { "originId": group_id, "originSystem": "AadGroup" }
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "add role scope: {body}");
        body
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

/// Ids of a seeded catalog, package (granting membership of a group) and policies.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub catalog_id: String,
    pub package_id: String,
    pub group_id: String,
    pub role_id: String,
    /// Admin-only direct assignment policy.
    pub admin_policy_id: String,
    /// Self-service policy for all member users (no approval, no questions).
    pub self_policy_id: String,
}

impl TestApp {
    /// Runs every background job that is due now.
    pub async fn drain(&self) -> usize {
        grantry_core::jobs::drain(&self.state().app).await.expect("drain")
    }

    /// Sends every outbox message that is due now (waiting for those the background sender
    /// holds) and returns how many attempts this call made.
    pub async fn drain_outbox(&self) -> usize {
        grantry_core::outbox::drain(&self.state().app).await.expect("drain the outbox")
    }

    /// Inserts domain records directly through the store.
    pub async fn seed<F>(&self, f: F)
    where
        F: FnOnce(&mut dyn grantry_store::Conn) -> grantry_domain::Result<()> + Send + 'static,
    {
        self.state().app.store.write(f).await.expect("seed");
    }

    pub async fn read<T: Send + 'static, F>(&self, f: F) -> T
    where
        F: FnOnce(&mut dyn grantry_store::Conn) -> grantry_domain::Result<T> + Send + 'static,
    {
        self.state().app.store.read(f).await.expect("read")
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.state().app.now()
    }

    pub async fn is_member(&self, group_id: &str, user_id: &str) -> bool {
        let (g, u) = (group_id.to_string(), user_id.to_string());
        self.read(move |c| grantry_core::membership::is_member(c, &g, &u)).await
    }

    /// A group, a published catalog with the group as resource, a package granting
    /// `Member_{group}`, an admin-only policy and a self-service all-members policy.
    pub async fn seed_package_with_group(&self) -> Fixture {
        self.seed_package_fixture(true).await
    }

    pub async fn seed_package_fixture(&self, externally_visible: bool) -> Fixture {
        use grantry_domain::enums::*;
        use grantry_domain::ids::new_id;
        use grantry_domain::model::*;
        use grantry_store::repo::insert;
        let now = self.now();
        let f = Fixture {
            catalog_id: new_id(),
            package_id: new_id(),
            group_id: new_id(),
            role_id: new_id(),
            admin_policy_id: new_id(),
            self_policy_id: new_id(),
        };
        let fx = f.clone();
        self.seed(move |c| {
            insert(
                c,
                &Group {
                    id: fx.group_id.clone(),
                    display_name: "Sales".into(),
                    description: None,
                    mail_nickname: None,
                    mail: None,
                    mail_enabled: false,
                    security_enabled: true,
                    group_types: vec![],
                    visibility: None,
                    created_date_time: now,
                },
            )?;
            insert(
                c,
                &Catalog {
                    id: fx.catalog_id.clone(),
                    display_name: "Marketing".into(),
                    description: None,
                    is_externally_visible: externally_visible,
                    state: CatalogState::Published,
                    catalog_type: CatalogType::UserManaged,
                    unique_name: None,
                    created_by: None,
                    modified_by: None,
                    created_date_time: now,
                    modified_date_time: now,
                },
            )?;
            let resource_id = new_id();
            insert(
                c,
                &Resource {
                    id: resource_id.clone(),
                    catalog_id: fx.catalog_id.clone(),
                    origin_id: fx.group_id.clone(),
                    origin_system: "AadGroup".into(),
                    display_name: Some("Sales".into()),
                    description: None,
                    resource_type: Some("Security Group".into()),
                    url: None,
                    attributes: vec![],
                    added_by: None,
                    created_date_time: now,
                    modified_date_time: now,
                },
            )?;
            insert(
                c,
                &ResourceRole {
                    id: fx.role_id.clone(),
                    resource_id: resource_id.clone(),
                    catalog_id: fx.catalog_id.clone(),
                    origin_id: format!("Member_{}", fx.group_id),
                    origin_system: "AadGroup".into(),
                    display_name: "Member".into(),
                    description: None,
                },
            )?;
            let scope_id = new_id();
            insert(
                c,
                &ResourceScope {
                    id: scope_id.clone(),
                    resource_id,
                    catalog_id: fx.catalog_id.clone(),
                    origin_id: fx.group_id.clone(),
                    origin_system: "AadGroup".into(),
                    display_name: None,
                    description: None,
                    is_root_scope: true,
                },
            )?;
            insert(
                c,
                &AccessPackage {
                    id: fx.package_id.clone(),
                    catalog_id: fx.catalog_id.clone(),
                    display_name: "Sales access".into(),
                    description: None,
                    is_hidden: false,
                    is_role_scopes_visible: false,
                    unique_name: None,
                    created_by: None,
                    modified_by: None,
                    created_date_time: now,
                    modified_date_time: now,
                },
            )?;
            insert(
                c,
                &RoleScope {
                    id: RoleScope::make_id(&fx.role_id, &scope_id),
                    access_package_id: fx.package_id.clone(),
                    role_id: fx.role_id.clone(),
                    scope_id,
                    created_by: None,
                    created_date_time: now,
                },
            )?;
            insert(c, &policy(&fx.admin_policy_id, &fx, AllowedTargetScope::NotSpecified, now, |_| {}))?;
            insert(
                c,
                &policy(
                    &fx.self_policy_id,
                    &fx,
                    AllowedTargetScope::AllMemberUsers,
                    now + chrono::Duration::microseconds(1),
                    |p| {
                        p.requestor_settings.enable_targets_to_self_add_access = true;
                        p.requestor_settings.enable_targets_to_self_update_access = true;
                        p.requestor_settings.enable_targets_to_self_remove_access = true;
                    },
                ),
            )?;
            Ok(())
        })
        .await;
        f
    }

    /// Adds a policy to the fixture's package, shaped by `edit`; returns its id.
    pub async fn seed_policy(
        &self,
        f: &Fixture,
        scope: grantry_domain::enums::AllowedTargetScope,
        edit: impl FnOnce(&mut grantry_domain::model::Policy) + Send + 'static,
    ) -> String {
        let id = grantry_domain::ids::new_id();
        let (fx, pid, now) = (f.clone(), id.clone(), self.now());
        self.seed(move |c| grantry_store::repo::insert(c, &policy(&pid, &fx, scope, now, edit))).await;
        id
    }

    /// Sets the manager of `user_id`.
    pub async fn set_manager(&self, user_id: &str, manager_id: &str) {
        let (u, m) = (user_id.to_string(), manager_id.to_string());
        self.seed(move |c| {
            let mut user: grantry_domain::model::User = grantry_store::repo::get(c, &u)?.expect("user");
            user.manager_id = Some(m);
            grantry_store::repo::update(c, &user).map(|_| ())
        })
        .await;
    }

    /// Posts an adminAdd for `user` on the admin-only policy and waits for delivery;
    /// returns (request id, assignment id).
    pub async fn admin_assign(&self, f: &Fixture, user: &str) -> (String, String) {
        let (status, body) = self
            .post(
                &self.admin,
                &format!("/v1.0/{EM}/assignmentRequests"),
                json!({"requestType": "adminAdd", "assignment": {"targetId": user, "assignmentPolicyId": f.admin_policy_id, "accessPackageId": f.package_id}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.drain().await;
        let id = body["id"].as_str().unwrap().to_string();
        let (_, r) = self.get(&self.admin, &format!("/v1.0/{EM}/assignmentRequests/{id}?$expand=assignment")).await;
        assert_eq!(r["state"], "delivered", "{r}");
        (id, r["assignment"]["id"].as_str().unwrap().to_string())
    }
}

pub fn policy(
    id: &str,
    f: &Fixture,
    scope: grantry_domain::enums::AllowedTargetScope,
    now: chrono::DateTime<chrono::Utc>,
    edit: impl FnOnce(&mut grantry_domain::model::Policy),
) -> grantry_domain::model::Policy {
    use grantry_domain::model::*;
    let mut p = Policy {
        id: id.to_string(),
        access_package_id: f.package_id.clone(),
        catalog_id: f.catalog_id.clone(),
        display_name: format!("policy {id}"),
        description: None,
        allowed_target_scope: scope,
        specific_allowed_targets: vec![],
        expiration: Expiration::never(),
        requestor_settings: RequestorSettings::default(),
        approval: ApprovalSettings::default(),
        review_settings: None,
        questions: vec![],
        automatic_request_settings: None,
        notification_settings: None,
        verifiable_credential_settings: None,
        custom_extension_stage_settings: vec![],
        beta_extra: Default::default(),
        created_by: None,
        modified_by: None,
        created_date_time: now,
        modified_date_time: now,
    };
    edit(&mut p);
    p
}

pub const SUBJECT_SCOPES: &[&str] = &["EntitlementMgmt-SubjectAccess.ReadWrite"];
impl TestApp {
    /// Inserts a bare active assignment row for `package_id` (only the columns matter).
    pub async fn insert_active_assignment(&self, package_id: &str, catalog_id: &str) {
        let (p, c2) = (package_id.to_string(), catalog_id.to_string());
        self.state()
            .app
            .store
            .write(move |c| {
                c.execute(
                    "INSERT INTO assignments (id, access_package_id, catalog_id, policy_id, target_subject_id, state, status, active, created_us, body) VALUES (?, ?, ?, 'p', 's', 'delivered', 'Delivered', 1, 0, '{}')",
                    &[grantry_domain::ids::new_id().into(), p.into(), c2.into()],
                )
                .map(|_| ())
            })
            .await
            .expect("insert assignment");
    }

    /// Inserts a catalog and an access package in it directly through the store and returns
    /// `(catalog_id, package_id)`. (Stands in for the catalogs and packages endpoints.)
    pub async fn seed_package(&self) -> (String, String) {
        use grantry_domain::enums::{CatalogState, CatalogType};
        use grantry_domain::model::{AccessPackage, Catalog};
        let app = &self.state().app;
        let now = app.now();
        let catalog = Catalog {
            id: grantry_domain::ids::new_id(),
            display_name: format!("catalog {}", &grantry_domain::ids::new_id()[24..]),
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

    /// Creates a custom extension in `catalog_id` through the API (`kind` is the Graph type
    /// name, e.g. `accessPackageAssignmentRequestWorkflowExtension`) and returns it as created
    /// (with its signing secret).
    pub async fn create_extension(&self, catalog_id: &str, kind: &str, extra: Value) -> Value {
        let mut body = serde_json::json!({
            "@odata.type": format!("#microsoft.graph.{kind}"),
            "displayName": format!("extension {}", &grantry_domain::ids::new_id()[24..]),
            "endpointConfiguration": {
                "@odata.type": "#microsoft.graph.logicAppTriggerEndpointConfiguration",
                "subscriptionId": "38ab2ccc-3747-4567-b36b-9478f5602f0d",
                "resourceGroupName": "EMLogicApp",
                "logicAppWorkflowName": "customextension_test"
            },
            "authenticationConfiguration": { "@odata.type": "#microsoft.graph.azureAdPopTokenAuthentication" }
        });
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        let path = format!("/v1.0/{EM}/catalogs/{catalog_id}/customWorkflowExtensions");
        let (status, created) = self.post(&self.admin, &path, body).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{created}");
        created
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
}

/// A request fixture copied from the docs (see its `source`).
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/api/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("fixture is JSON")
}

impl TestApp {
    /// Stops the server and starts it again on the same database (a new port; the dev
    /// clock starts again at wall-clock time). Tokens stay valid: the signing key is stored.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        let defaults = Options::default();
        let config = Config {
            body_limit: defaults.body_limit,
            dev_clock: true,
            read_timeout: defaults.read_timeout,
            outbound_allow: grantry_outbound::AllowList::from_items(&defaults.outbound_allow).expect("allow-list"),
            statement_budget: defaults.statement_budget,
            expensive_queries_per_caller: defaults.expensive_queries_per_caller,
            ..Config::for_test(database_of(&self.dir, &self.pg), self.dir.path().join("keys"))
        };
        let server = grantry::start(config).await.expect("server restarts");
        self.base = server.base_url.clone();
        self.server = Some(server);
    }
}
