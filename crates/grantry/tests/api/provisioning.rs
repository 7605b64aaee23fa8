//! Provisioning out over SCIM 2.0, against a real SCIM service provider: scim2-server (PyPI),
//! started by each test as a child process on a loopback port with a bearer token. An
//! application's service principal is given the server as its provisioning target; access
//! packages deliver its app role, and the tests read what the server holds: the user created
//! once (found again by externalId, never duplicated), made a member of the role's group (or
//! given the role in `roles`), removed from it on removal and expiry, deactivated when they
//! hold nothing else. A target that is down is retried with backoff, its failures shown to
//! administrators; a push owed when the server stops is sent once after the restart.
//!
//! scripts/test installs scim2-server into a cached virtual environment and names its python
//! in GRANTRY_SCIM_SERVER_PYTHON. Without it these tests say so and pass, unless
//! GRANTRY_REQUIRE_SCIM_SERVER_TESTS is set (scripts/test sets it, so CI never skips them).

use crate::app_roles::{package_with_app_role, payroll, role_id};
use crate::helpers::*;
use crate::pyserver::{Component, free_port};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

const TOKEN: &str = "scim-target-token-3b9f2c";

/// scim2-server's test server.
const SCIM2_SERVER: Component = Component {
    name: "scim2-server",
    module: "scim2_server",
    python_env: "GRANTRY_SCIM_SERVER_PYTHON",
    venv: "grantry-scim-server-venv",
    require_env: "GRANTRY_REQUIRE_SCIM_SERVER_TESTS",
    needed_by: "the provisioning tests",
    quiet: true,
};

/// The downstream SCIM service provider of one test.
pub struct ScimServer {
    port: u16,
    child: Option<tokio::process::Child>,
    http: reqwest::Client,
}

impl ScimServer {
    /// A port for the server, not yet listening; `None` (after saying why) when
    /// scim2-server is missing and the tests are not required.
    pub fn reserve() -> Option<ScimServer> {
        SCIM2_SERVER.available().then(|| ScimServer { port: free_port(), child: None, http: reqwest::Client::new() })
    }

    pub async fn start() -> Option<ScimServer> {
        let mut server = ScimServer::reserve()?;
        server.up().await;
        Some(server)
    }

    /// Starts the server on its port.
    pub async fn up(&mut self) {
        let port = self.port.to_string();
        let args = [
            "-u",
            "-m",
            "scim2_server.testserver.cli",
            "--hostname",
            "127.0.0.1",
            "--port",
            &port,
            "--bearer-token",
            TOKEN,
        ];
        let (child, mut lines) = SCIM2_SERVER.spawn(args, "Serving SCIM").await;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.child = Some(child);
    }

    /// The SCIM base URL, as a provisioning target names it.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    /// GETs `path` (under the base URL) with the server's token.
    pub async fn get(&self, path: &str) -> Value {
        let resp = tokio::time::timeout(
            Duration::from_secs(10),
            self.http.get(format!("{}{path}", self.base())).bearer_auth(TOKEN).send(),
        )
        .await
        .expect("the SCIM server answers in time")
        .expect("the SCIM server answers");
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        resp.json().await.expect("SCIM JSON")
    }

    /// Every resource of `endpoint` (`Users` or `Groups`).
    pub async fn all(&self, endpoint: &str) -> Vec<Value> {
        self.get(&format!("/{endpoint}?count=1000")).await["Resources"].as_array().cloned().unwrap_or_default()
    }

    pub async fn user_named(&self, user_name: &str) -> Option<Value> {
        self.all("Users").await.into_iter().find(|u| u["userName"] == user_name)
    }

    /// The user ids in the group named `name`.
    pub async fn members_of(&self, name: &str) -> Vec<String> {
        let groups = self.all("Groups").await;
        let group = groups.iter().find(|g| g["displayName"] == name);
        group
            .and_then(|g| g["members"].as_array())
            .map(|m| m.iter().filter_map(|x| x["value"].as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }
}

/// Payroll with its Reader role in a package, and the service principal given `base` as its
/// provisioning target. Returns (service principal id, fixture).
async fn provisioned_payroll(app: &TestApp, base: &str, delivery: &str) -> (String, Fixture) {
    let (application, sp) = payroll(app).await;
    let reader = role_id(&application, "Reader");
    let sp_id = sp["id"].as_str().unwrap().to_string();
    let f = package_with_app_role(app, &sp, &reader).await;
    let (status, body) = app
        .put(
            &app.admin,
            &format!("/_grantry/provisioning/{sp_id}"),
            json!({ "baseAddress": base, "secretToken": TOKEN, "roleDelivery": delivery }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["secretToken"], Value::Null, "the token is never answered: {body}");
    assert!(!body.to_string().contains(TOKEN));
    (sp_id, f)
}

async fn advance(app: &TestApp, duration: &str) {
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": duration })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain().await;
    app.drain_outbox().await;
}

async fn target(app: &TestApp, sp_id: &str) -> Value {
    let (status, body) = app.get(&app.admin, &format!("/_grantry/provisioning/{sp_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.to_string().contains(TOKEN), "{body}");
    body
}

#[tokio::test]
async fn delivered_app_roles_are_pushed_as_group_memberships_and_taken_back() {
    let Some(scim) = ScimServer::start().await else { return };
    let app = TestApp::spawn().await;
    let (sp_id, f) = provisioned_payroll(&app, &scim.base(), "groups").await;

    // Granted: the user is created on the target and joins the role's group.
    let alice = app.create_user("alice").await;
    let (_, assignment) = app.admin_assign(&f, &alice).await;
    app.drain_outbox().await;
    let user = scim.user_named("alice@contoso.com").await.expect("alice is on the target");
    assert_eq!(user["externalId"], alice.as_str());
    assert_eq!(user["active"], true);
    assert_eq!(user["displayName"], "alice");
    assert_eq!(user["emails"][0]["value"], "alice@contoso.com");
    let on_target = user["id"].as_str().unwrap().to_string();
    assert_eq!(scim.members_of("Payroll.Read").await, vec![on_target.clone()]);

    // A second user, whose access expires after a day.
    let bob = app.create_user("bob").await;
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentRequests"),
            json!({"requestType": "adminAdd", "assignment": {"targetId": bob, "accessPackageId": f.package_id, "assignmentPolicyId": f.admin_policy_id},
                   "schedule": {"expiration": {"type": "afterDuration", "duration": "P1D"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    app.drain_outbox().await;
    let bob_on_target =
        scim.user_named("bob@contoso.com").await.expect("bob is on the target")["id"].as_str().unwrap().to_string();
    let mut members = scim.members_of("Payroll.Read").await;
    members.sort();
    let mut expected = vec![on_target.clone(), bob_on_target.clone()];
    expected.sort();
    assert_eq!(members, expected, "one group, both members");
    assert_eq!(scim.all("Groups").await.len(), 1);

    // Expiry takes bob out of the group and deactivates him (he holds nothing else).
    advance(&app, "P2D").await;
    assert_eq!(scim.members_of("Payroll.Read").await, vec![on_target.clone()]);
    assert_eq!(scim.user_named("bob@contoso.com").await.unwrap()["active"], false);

    // Removal does the same for alice; she stays on the target, inactive.
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentRequests"),
            json!({"requestType": "adminRemove", "assignment": {"id": assignment}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    app.drain_outbox().await;
    assert_eq!(scim.members_of("Payroll.Read").await, Vec::<String>::new());
    let user = scim.user_named("alice@contoso.com").await.unwrap();
    assert_eq!(user["active"], false);

    // Granted again: the same user on the target (found by externalId), active again.
    app.admin_assign(&f, &alice).await;
    app.drain_outbox().await;
    assert_eq!(scim.all("Users").await.len(), 2, "nobody is created twice");
    let user = scim.user_named("alice@contoso.com").await.unwrap();
    assert_eq!((user["id"].as_str(), &user["active"]), (Some(on_target.as_str()), &json!(true)));
    assert_eq!(scim.members_of("Payroll.Read").await, vec![on_target.clone()]);

    // Deprovisioning (deleting the user in Grantry) deactivates them on the target.
    let (status, _) = app.delete(&app.admin, &format!("/v1.0/users/{alice}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.drain().await;
    app.drain_outbox().await;
    assert_eq!(scim.user_named("alice@contoso.com").await.unwrap()["active"], false);
    assert_eq!(scim.members_of("Payroll.Read").await, Vec::<String>::new());

    let t = target(&app, &sp_id).await;
    assert_eq!(t["pendingCount"], 0, "{t}");
    assert_eq!(t["failures"], json!([]), "{t}");
    assert_eq!(t["deliveredCount"], 6, "{t}");
}

#[tokio::test]
async fn app_roles_can_be_pushed_as_the_users_roles() {
    let Some(scim) = ScimServer::start().await else { return };
    let app = TestApp::spawn().await;
    let (_sp_id, f) = provisioned_payroll(&app, &scim.base(), "roles").await;
    let carol = app.create_user("carol").await;
    let (_, assignment) = app.admin_assign(&f, &carol).await;
    app.drain_outbox().await;
    let user = scim.user_named("carol@contoso.com").await.expect("carol is on the target");
    assert_eq!(user["active"], true);
    let roles: Vec<&str> = user["roles"].as_array().unwrap().iter().filter_map(|r| r["value"].as_str()).collect();
    assert_eq!(roles, ["Payroll.Read"]);
    assert_eq!(scim.all("Groups").await, Vec::<Value>::new(), "no groups in this mode");

    let (status, body) = app
        .post(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentRequests"),
            json!({"requestType": "adminRemove", "assignment": {"id": assignment}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    app.drain_outbox().await;
    let user = scim.user_named("carol@contoso.com").await.unwrap();
    assert_eq!(user["active"], false);
    assert!(user["roles"].as_array().is_none_or(|r| r.is_empty()), "{user}");
}

#[tokio::test]
async fn a_target_that_is_down_is_retried_its_failures_shown_and_a_push_owed_at_a_restart_is_sent_once() {
    let Some(mut scim) = ScimServer::reserve() else { return };
    let mut app = TestApp::spawn().await;
    // The target is configured but not listening yet.
    let (sp_id, f) = provisioned_payroll(&app, &scim.base(), "groups").await;
    let dave = app.create_user("dave").await;
    app.admin_assign(&f, &dave).await;
    app.drain_outbox().await;
    let t = target(&app, &sp_id).await;
    assert_eq!(t["pendingCount"], 1, "{t}");
    let failure = &t["failures"][0];
    assert_eq!(failure["userId"], dave.as_str(), "{t}");
    assert_eq!(failure["change"], "grant");
    assert_eq!(failure["attempts"], 1);
    assert!(failure["lastError"].as_str().unwrap().contains("could not connect"), "{failure}");
    assert!(failure["nextAttemptDateTime"].is_string(), "{failure}");

    // The server restarts with the push still owed; the target comes up.
    app.restart().await;
    scim.up().await;
    // Past the next attempts' backoff (the restarted sender may have tried once more before
    // the target came up).
    advance(&app, "PT1H").await;
    let user = scim.user_named("dave@contoso.com").await.expect("dave arrives after the restart");
    assert_eq!(scim.members_of("Payroll.Read").await, vec![user["id"].as_str().unwrap().to_string()]);
    // Nothing more is sent, however long the server runs.
    advance(&app, "P3D").await;
    assert_eq!(scim.all("Users").await.len(), 1);
    let t = target(&app, &sp_id).await;
    assert_eq!((t["pendingCount"].as_i64(), t["deliveredCount"].as_i64()), (Some(0), Some(1)), "{t}");
    assert_eq!(t["failures"], json!([]));
}

#[tokio::test]
async fn targets_outside_the_allow_list_fail_visibly_and_bad_configuration_is_refused() {
    let Some(scim) = ScimServer::start().await else { return };
    let app = TestApp::spawn_with(Options { outbound_allow: vec![], ..Options::default() }).await;
    let (sp_id, f) = provisioned_payroll(&app, &scim.base(), "groups").await;
    let erin = app.create_user("erin").await;
    app.admin_assign(&f, &erin).await;
    app.drain_outbox().await;
    assert_eq!(scim.all("Users").await, Vec::<Value>::new(), "nothing reaches a target outside the allow-list");
    let t = target(&app, &sp_id).await;
    assert_eq!(t["failedCount"], 1, "{t}");
    assert_eq!(t["failures"][0]["state"], "dead");
    assert!(t["failures"][0]["lastError"].as_str().unwrap().contains("not allowed"), "{t}");
    let (status, body) = app.post(&app.admin, &format!("/_grantry/provisioning/{sp_id}/retry"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["retried"], 1);

    // Bad configuration: 400 naming the property; an unknown service principal: 404.
    let put = |body: Value| {
        let (app, sp_id) = (&app, sp_id.clone());
        async move { app.put(&app.admin, &format!("/_grantry/provisioning/{sp_id}"), body).await }
    };
    for (body, target_name) in [
        (json!({"baseAddress": "ftp://example.com/scim", "secretToken": "t"}), "baseAddress"),
        (json!({"baseAddress": "https://u:p@example.com/scim"}), "baseAddress"),
        (json!({"secretToken": "has spaces"}), "secretToken"),
        (json!({"roleDelivery": "carrier pigeon"}), "roleDelivery"),
        (json!({"attributeMappings": {"shoeSize": "id"}}), "attributeMappings"),
        (json!({"attributeMappings": {"userName": null}}), "attributeMappings"),
        (json!({"password": "x"}), "password"),
    ] {
        let (status, err) = put(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["error"]["target"], target_name, "{body}: {err}");
    }
    let (status, _) = app
        .put(
            &app.admin,
            "/_grantry/provisioning/00000000-0000-0000-0000-00000000dead",
            json!({"baseAddress": "https://example.com/scim", "secretToken": "t"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A user without the Global Administrator role may not configure a target.
    let (status, _) = app
        .put(
            &app.user_token(&erin, &["Application.ReadWrite.All"]),
            &format!("/_grantry/provisioning/{sp_id}"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Changing the mappings keeps the token; removing the target stops provisioning.
    let (status, body) = put(json!({"attributeMappings": {"title": null, "nickName": "mailNickname"}})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mapped: Vec<&str> =
        body["attributeMappings"].as_array().unwrap().iter().filter_map(|m| m["targetAttribute"].as_str()).collect();
    assert!(mapped.contains(&"nickName") && !mapped.contains(&"title"), "{body}");
    let (status, _) = app.delete(&app.admin, &format!("/_grantry/provisioning/{sp_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&app.admin, &format!("/_grantry/provisioning/{sp_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The real binary, killed with SIGKILL while a push is owed (its target is down): after
/// the restart the push is sent, and the target holds the user once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_owed_at_sigkill_is_sent_once_by_the_restarted_binary() {
    use crate::crash::{Server, bin};
    use std::ffi::{OsStr, OsString};
    let Some(mut scim) = ScimServer::reserve() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let pg = if on_postgres() { PgTestDatabase::create() } else { None };
    let db_args: Vec<OsString> = match &pg {
        Some(p) => vec!["--database".into(), p.url.clone().into(), "--key-dir".into(), dir.path().join("keys").into()],
        None => vec!["--data-dir".into(), dir.path().into()],
    };
    let mut serve_args = db_args.clone();
    serve_args.extend(["--outbound-allow".into(), "127.0.0.0/8".into()]);
    let serve_args: Vec<&OsStr> = serve_args.iter().map(OsString::as_os_str).collect();
    let mut server = Server::start_with(&serve_args);
    let out = std::process::Command::new(bin())
        .arg("token")
        .args(&db_args)
        .args(["--app", "provisioning-crash", "--expires-in", "1h", "--roles"])
        .arg("EntitlementManagement.ReadWrite.All,User.ReadWrite.All,Application.ReadWrite.All")
        .env("GRANTRY_LOG", "error")
        .output()
        .expect("grantry token runs");
    assert!(out.status.success(), "grantry token: {}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, url: String, body: Option<Value>| {
        let (http, token) = (http.clone(), token.clone());
        async move {
            let mut req = http.request(method, url).bearer_auth(token).timeout(Duration::from_secs(30));
            if let Some(b) = body {
                req = req.header("Content-Type", "application/json").body(b.to_string());
            }
            let resp = req.send().await.expect("the server answers");
            let status = resp.status();
            (status, serde_json::from_str::<Value>(&resp.text().await.unwrap()).unwrap_or(Value::Null))
        }
    };
    let base = server.base.clone();
    let post = |path: &str, body: Value| call(reqwest::Method::POST, format!("{base}{path}"), Some(body));
    let ok = |(status, v): (StatusCode, Value)| {
        assert!(status.is_success(), "{status}: {v}");
        v
    };
    let em = |rest: &str| format!("/v1.0/{EM}/{rest}");

    let application = ok(post(
        "/v1.0/applications",
        json!({"displayName": "Payroll", "appRoles": [{"displayName": "Reader", "value": "Payroll.Read", "allowedMemberTypes": ["User"]}]}),
    )
    .await);
    let reader = application["appRoles"][0]["id"].as_str().unwrap().to_string();
    let sp = ok(post("/v1.0/servicePrincipals", json!({"appId": application["appId"]})).await);
    let sp_id = sp["id"].as_str().unwrap().to_string();
    let catalog = ok(post(&em("catalogs"), json!({"displayName": "Apps"})).await)["id"].as_str().unwrap().to_string();
    ok(post(
        &em("resourceRequests"),
        json!({"requestType": "adminAdd", "resource": {"originId": sp_id, "originSystem": "AadApplication"}, "catalog": {"id": catalog}}),
    )
    .await);
    let resources =
        ok(call(reqwest::Method::GET, format!("{base}{}", em(&format!("catalogs/{catalog}/resources"))), None).await);
    let resource = resources["value"][0]["id"].as_str().unwrap().to_string();
    let package = ok(post(&em("accessPackages"), json!({"displayName": "Payroll", "catalog": {"id": catalog}})).await);
    let package = package["id"].as_str().unwrap().to_string();
    ok(post(
        &em(&format!("accessPackages/{package}/resourceRoleScopes")),
        json!({"role": {"originId": reader, "originSystem": "AadApplication", "resource": {"id": resource}},
               "scope": {"originId": sp_id, "originSystem": "AadApplication"}}),
    )
    .await);
    let policy = ok(post(
        &em("assignmentPolicies"),
        json!({"displayName": "Direct", "allowedTargetScope": "notSpecified", "expiration": {"type": "noExpiration"},
               "accessPackage": {"id": package}}),
    )
    .await);
    let user = ok(post(
        "/v1.0/users",
        json!({"displayName": "Casey", "userPrincipalName": "casey@contoso.com", "mail": "casey@contoso.com"}),
    )
    .await);
    ok(call(
        reqwest::Method::PUT,
        format!("{base}/_grantry/provisioning/{sp_id}"),
        Some(json!({"baseAddress": scim.base(), "secretToken": TOKEN})),
    )
    .await);
    // The target is down: the push written with the delivery stays owed.
    ok(post(
        &em("assignmentRequests"),
        json!({"requestType": "adminAdd", "assignment": {"targetId": user["id"], "assignmentPolicyId": policy["id"], "accessPackageId": package}}),
    )
    .await);
    let owed = ok(call(reqwest::Method::GET, format!("{base}/_grantry/provisioning/{sp_id}"), None).await);
    assert_eq!(owed["pendingCount"], 1, "{owed}");
    server.kill();

    // Back up: the target, then the server on the same database.
    scim.up().await;
    server = Server::start_with(&serve_args);
    let base = server.base.clone();
    let advance = |d: &'static str| {
        call(reqwest::Method::POST, format!("{base}/_grantry/clock/advance"), Some(json!({ "duration": d })))
    };
    ok(advance("PT1H").await);
    // A push the killed process held waits for its lease to run out, then goes with the
    // background sender.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while scim.all("Users").await.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let users = scim.all("Users").await;
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["userName"], "casey@contoso.com");
    assert_eq!(scim.members_of("Payroll.Read").await, vec![users[0]["id"].as_str().unwrap().to_string()]);
    ok(advance("P3D").await);
    assert_eq!(scim.all("Users").await.len(), 1, "sent once");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        let t = ok(call(reqwest::Method::GET, format!("{base}/_grantry/provisioning/{sp_id}"), None).await);
        if t["deliveredCount"] == 1 || tokio::time::Instant::now() > deadline {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((status["pendingCount"].as_i64(), status["deliveredCount"].as_i64()), (Some(0), Some(1)), "{status}");
    server.kill();
}

#[tokio::test]
async fn a_new_target_receives_the_users_who_already_hold_the_applications_roles() {
    let Some(scim) = ScimServer::start().await else { return };
    let app = TestApp::spawn().await;
    let (application, sp) = payroll(&app).await;
    let reader = role_id(&application, "Reader");
    let sp_id = sp["id"].as_str().unwrap().to_string();
    let f = package_with_app_role(&app, &sp, &reader).await;
    let frank = app.create_user("frank").await;
    app.admin_assign(&f, &frank).await;
    app.drain_outbox().await;
    let (status, body) = app
        .put(
            &app.admin,
            &format!("/_grantry/provisioning/{sp_id}"),
            json!({ "baseAddress": scim.base(), "secretToken": TOKEN }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain_outbox().await;
    let user = scim.user_named("frank@contoso.com").await.expect("frank is pushed when the target is configured");
    assert_eq!(scim.members_of("Payroll.Read").await, vec![user["id"].as_str().unwrap().to_string()]);
}

/// A package delivering a group membership and the app role of an application whose target
/// refuses the pushes (a wrong token): the group and the app role assignment arrive, the
/// push is dead-lettered, and the request and assignment show `partiallyDelivered` with the
/// failed resource identifiable. Once the token is fixed, `reprocess` sends the failed push
/// again (and nothing else), and the request ends delivered.
#[tokio::test]
async fn a_refused_push_leaves_the_request_partially_delivered_until_reprocess_sends_it() {
    let Some(scim) = ScimServer::start().await else { return };
    let app = TestApp::spawn().await;
    let (application, sp) = payroll(&app).await;
    let reader = role_id(&application, "Reader");
    let sp_id = sp["id"].as_str().unwrap().to_string();
    let f = package_with_app_role(&app, &sp, &reader).await;
    // The package also delivers a group membership.
    let group = app.create_group("Payroll users").await;
    let resource = app.add_group_resource(&f.catalog_id, &group).await;
    app.add_member_role_scope(&f.package_id, &resource, &group).await;
    let (status, body) = app
        .put(
            &app.admin,
            &format!("/_grantry/provisioning/{sp_id}"),
            json!({ "baseAddress": scim.base(), "secretToken": "not-the-target-token" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let gina = app.create_user("gina").await;
    let (request, assignment) = app.admin_assign(&f, &gina).await;
    app.drain_outbox().await;
    assert!(app.is_member(&group, &gina).await, "the group membership is delivered");
    let (_, held) = app.get(&app.admin, &format!("/v1.0/users/{gina}/appRoleAssignments")).await;
    assert_eq!(held["value"].as_array().unwrap().len(), 1, "the app role is assigned in Grantry: {held}");
    assert_eq!(scim.all("Users").await, Vec::<Value>::new(), "the target refused the push");

    let (_, r) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{request}?$expand=assignment")).await;
    assert_eq!(
        (r["state"].as_str(), r["status"].as_str()),
        (Some("partiallyDelivered"), Some("PartiallyDelivered")),
        "{r}"
    );
    assert_eq!(r["assignment"]["state"], "partiallyDelivered", "{r}");
    let (_, beta) = app.get(&app.admin, &format!("/beta/{EM}/accessPackageAssignmentRequests/{request}")).await;
    assert_eq!(
        (beta["requestState"].as_str(), beta["requestStatus"].as_str()),
        (Some("PartiallyDelivered"), Some("PartiallyDelivered")),
        "{beta}"
    );
    // The failed resource: the app role's delivered role is ProvisioningFailed, the group's
    // Fulfilled.
    let (_, roles) = app.get(&app.admin, &format!("/beta/{EM}/accessPackageAssignmentResourceRoles")).await;
    let roles = roles["value"].as_array().cloned().unwrap_or_default();
    let status_of = |system: &str| {
        roles.iter().find(|r| r["originSystem"] == system).map(|r| r["status"].as_str().unwrap_or_default().to_string())
    };
    assert_eq!(status_of("AadApplication").as_deref(), Some("ProvisioningFailed"), "{roles:?}");
    assert_eq!(status_of("AadGroup").as_deref(), Some("Fulfilled"), "{roles:?}");
    // The target's answer is in the request's audit trail and at the target's status.
    let t = target(&app, &sp_id).await;
    assert_eq!(t["failedCount"], 1, "{t}");
    assert!(matches!(t["failures"][0]["lastStatus"].as_u64(), Some(401 | 403)), "the target's refusal: {t}");

    // The token is fixed; reprocess sends the failed push again.
    let (status, body) =
        app.put(&app.admin, &format!("/_grantry/provisioning/{sp_id}"), json!({ "secretToken": TOKEN })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        app.post(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{request}/reprocess"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (_, r) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{request}")).await;
    // Delivering while the push is on its way (the background sender may have sent it).
    assert!(r["state"] == "delivering" || r["state"] == "delivered", "{r}");
    app.drain_outbox().await;
    let (_, r) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{request}?$expand=assignment")).await;
    assert_eq!((r["state"].as_str(), r["assignment"]["state"].as_str()), (Some("delivered"), Some("delivered")), "{r}");
    let user = scim.user_named("gina@contoso.com").await.expect("gina is on the target after reprocess");
    assert_eq!(scim.members_of("Payroll.Read").await, vec![user["id"].as_str().unwrap().to_string()]);
    // The app role was granted once: removing the assignment takes it away.
    let (_, held) = app.get(&app.admin, &format!("/v1.0/users/{gina}/appRoleAssignments")).await;
    assert_eq!(held["value"].as_array().unwrap().len(), 1, "{held}");
    let t = target(&app, &sp_id).await;
    assert_eq!((t["failedCount"].as_i64(), t["pendingCount"].as_i64()), (Some(0), Some(0)), "{t}");
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentRequests"),
            json!({"requestType": "adminRemove", "assignment": {"id": assignment}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    app.drain_outbox().await;
    let (_, held) = app.get(&app.admin, &format!("/v1.0/users/{gina}/appRoleAssignments")).await;
    assert_eq!(held["value"], json!([]), "{held}");
    assert!(!app.is_member(&group, &gina).await);
    assert_eq!(scim.user_named("gina@contoso.com").await.unwrap()["active"], false);
}

/// A provisioned user's attribute changes reach the target without a new grant: through
/// Graph's `PATCH /users/{id}` and through an identity provider's SCIM PATCH; a disabled
/// account is deactivated there. Users who hold nothing of the application are not sent.
#[tokio::test]
async fn attribute_changes_of_a_provisioned_user_are_pushed_to_the_target() {
    let Some(scim) = ScimServer::start().await else { return };
    let app = TestApp::spawn().await;
    let (_sp_id, f) = provisioned_payroll(&app, &scim.base(), "groups").await;
    let hank = app.create_user("hank").await;
    app.admin_assign(&f, &hank).await;
    app.drain_outbox().await;
    assert_eq!(scim.user_named("hank@contoso.com").await.unwrap()["displayName"], "hank");

    let (status, body) = app
        .patch(
            &app.admin,
            &format!("/v1.0/users/{hank}"),
            json!({"displayName": "Hank Hill", "department": "Propane", "jobTitle": "Manager"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.drain_outbox().await;
    let user = scim.user_named("hank@contoso.com").await.unwrap();
    assert_eq!(user["displayName"], "Hank Hill", "{user}");
    assert_eq!(user["title"], "Manager", "{user}");
    assert_eq!(user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"], "Propane", "{user}");
    assert_eq!(user["active"], true);
    assert_eq!(
        scim.members_of("Payroll.Read").await,
        vec![user["id"].as_str().unwrap().to_string()],
        "membership kept"
    );

    // Through inbound SCIM, as an identity provider sends it.
    let token = crate::scim::scim_token(&app, "idp").await;
    let (status, body, _) = crate::scim::scim(
        &app,
        &token,
        reqwest::Method::PATCH,
        &format!("/Users/{hank}"),
        Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "Replace", "path": "displayName", "value": "Hank R. Hill"}]})),
    )
    .await;
    assert!(status.is_success(), "{status}: {body}");
    app.drain_outbox().await;
    assert_eq!(scim.user_named("hank@contoso.com").await.unwrap()["displayName"], "Hank R. Hill");

    // A disabled account is deactivated on the target; enabled again, active again.
    let (status, _) = app.patch(&app.admin, &format!("/v1.0/users/{hank}"), json!({"accountEnabled": false})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.drain_outbox().await;
    assert_eq!(scim.user_named("hank@contoso.com").await.unwrap()["active"], false);
    let (status, _) = app.patch(&app.admin, &format!("/v1.0/users/{hank}"), json!({"accountEnabled": true})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.drain_outbox().await;
    assert_eq!(scim.user_named("hank@contoso.com").await.unwrap()["active"], true);

    // A user who holds nothing of the application is never sent.
    let ivy = app.create_user("ivy").await;
    let (status, _) = app.patch(&app.admin, &format!("/v1.0/users/{ivy}"), json!({"displayName": "Ivy"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.drain_outbox().await;
    assert!(scim.user_named("ivy@contoso.com").await.is_none());
    assert_eq!(scim.all("Users").await.len(), 1, "nobody duplicated");
}
