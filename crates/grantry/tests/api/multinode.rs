//! Several `grantry serve` processes on one PostgreSQL database: conflicting requests sent
//! to different nodes, expiries that come due while a node is killed. Afterwards nothing is
//! lost and nothing is done twice. Runs when the suite runs on PostgreSQL
//! (`GRANTRY_TEST_DATABASE_URL`); bounded, loopback only.

use crate::crash::{Server, bin};
use crate::helpers::{PgTestDatabase, on_postgres};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::ffi::OsStr;
use std::process::Command;

const EM: &str = "identityGovernance/entitlementManagement";
const USERS: usize = 12;

fn token(database: &str, key_dir: &std::path::Path) -> String {
    let out = Command::new(bin())
        .args(["token", "--database", database])
        .arg("--key-dir")
        .arg(key_dir)
        .args(["--app", "multinode", "--expires-in", "2h", "--roles"])
        .arg("EntitlementManagement.ReadWrite.All,User.ReadWrite.All,Group.ReadWrite.All,GroupMember.ReadWrite.All")
        .env("GRANTRY_LOG", "error")
        .output()
        .expect("grantry token runs");
    assert!(out.status.success(), "grantry token: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("text").trim().to_string()
}

struct Api {
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn call(&self, base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{base}{path}")).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.expect("node answers");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn post(&self, base: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(base, reqwest::Method::POST, path, Some(body)).await
    }
    async fn get(&self, base: &str, path: &str) -> Value {
        let (status, v) = self.call(base, reqwest::Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {v}");
        v
    }
    async fn created(&self, base: &str, path: &str, body: Value) -> String {
        let (status, v) = self.post(base, path, body).await;
        assert_eq!(status, StatusCode::CREATED, "{path}: {v}");
        v["id"].as_str().expect("id").to_string()
    }
    async fn advance(&self, base: &str, duration: &str) {
        let (status, v) = self.post(base, "/_grantry/clock/advance", json!({ "duration": duration })).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_share_one_database_without_duplicate_or_lost_effects() {
    if !on_postgres() {
        eprintln!("skipped: runs only against PostgreSQL (GRANTRY_TEST_DATABASE_URL)");
        return;
    }
    let db = PgTestDatabase::create().expect("a test database");
    // The nodes share the database and the signing key directory.
    let keys = tempfile::tempdir().expect("temp dir");
    let args = [OsStr::new("--database"), OsStr::new(&db.url), OsStr::new("--key-dir"), keys.path().as_os_str()];
    let a = Server::start_with(&args);
    let b = Server::start_with(&args);
    // After the start: `grantry token` uses the database and key the first node created.
    let api = Api { http: reqwest::Client::new(), token: token(&db.url, keys.path()) };
    let (na, nb) = (a.base.clone(), b.base.clone());

    // Set-up through node A; every read below goes through node B: acknowledged writes are
    // visible on every node.
    let group = api
        .created(
            &na,
            "/v1.0/groups",
            json!({ "displayName": "Shared", "mailNickname": "shared", "securityEnabled": true }),
        )
        .await;
    let catalog = api.created(&na, &format!("/v1.0/{EM}/catalogs"), json!({ "displayName": "Shared" })).await;
    let (status, _) = api
        .post(
            &na,
            &format!("/v1.0/{EM}/resourceRequests"),
            json!({ "requestType": "adminAdd", "resource": { "originId": group, "originSystem": "AadGroup" }, "catalog": { "id": catalog } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let resources = api.get(&nb, &format!("/v1.0/{EM}/catalogs/{catalog}/resources")).await;
    let resource = resources["value"][0]["id"].as_str().expect("resource visible on B").to_string();
    let package = api
        .created(
            &nb,
            &format!("/v1.0/{EM}/accessPackages"),
            json!({ "displayName": "Shared", "catalog": { "id": catalog } }),
        )
        .await;
    api.created(
        &na,
        &format!("/v1.0/{EM}/accessPackages/{package}/resourceRoleScopes"),
        json!({ "role": { "originId": format!("Member_{group}"), "originSystem": "AadGroup", "resource": { "id": resource } },
                "scope": { "originId": group, "originSystem": "AadGroup" } }),
    )
    .await;
    let policy = api
        .created(
            &nb,
            &format!("/v1.0/{EM}/assignmentPolicies"),
            json!({ "displayName": "One day", "allowedTargetScope": "notSpecified",
                    "expiration": { "type": "afterDuration", "duration": "P1D" }, "accessPackage": { "id": package } }),
        )
        .await;
    let mut users = Vec::new();
    for i in 0..USERS {
        let node = if i % 2 == 0 { &na } else { &nb };
        users.push(
            api.created(
                node,
                "/v1.0/users",
                json!({ "displayName": format!("u{i}"), "userPrincipalName": format!("u{i}@multi.test") }),
            )
            .await,
        );
    }

    // The same adminAdd sent to both nodes at once: exactly one is accepted per user.
    let mut accepted = 0;
    for user in &users {
        let body = json!({ "requestType": "adminAdd", "assignment": { "targetId": user, "assignmentPolicyId": policy, "accessPackageId": package } });
        let path = format!("/v1.0/{EM}/assignmentRequests");
        let (ra, rb) = tokio::join!(api.post(&na, &path, body.clone()), api.post(&nb, &path, body.clone()));
        for (status, v) in [ra, rb] {
            match status {
                StatusCode::CREATED => accepted += 1,
                // The loser sees the winner's open request, or its assignment once delivered.
                StatusCode::CONFLICT => assert!(
                    v["error"]["code"] == "ExistingOpenRequest" || v["error"]["code"] == "TargetAlreadyAssigned",
                    "{v}"
                ),
                other => panic!("unexpected {other}: {v}"),
            }
        }
    }
    assert_eq!(accepted, USERS, "exactly one request per user across both nodes");
    api.advance(&na, "PT0S").await;
    api.advance(&nb, "PT0S").await;
    let delivered = api
        .get(
            &nb,
            &format!(
                "/v1.0/{EM}/assignments?$filter=accessPackage/id eq '{package}' and state eq 'delivered'&$count=true"
            ),
        )
        .await;
    assert_eq!(delivered["@odata.count"], USERS as i64, "{delivered}");
    let members = api.get(&na, &format!("/v1.0/groups/{group}/members?$top=999")).await;
    assert_eq!(members["value"].as_array().expect("members").len(), USERS);

    // Node A dies; the expiries come due on node B's clock and run there, once.
    a.kill();
    api.advance(&nb, "P2D").await;
    let expired = api
        .get(
            &nb,
            &format!(
                "/v1.0/{EM}/assignments?$filter=accessPackage/id eq '{package}' and state eq 'expired'&$count=true"
            ),
        )
        .await;
    assert_eq!(expired["@odata.count"], USERS as i64, "{expired}");
    let members = api.get(&nb, &format!("/v1.0/groups/{group}/members")).await;
    assert_eq!(members["value"].as_array().expect("members").len(), 0, "{members}");

    // A new node starting later, with its clock moved further, finds nothing left to do.
    let c = Server::start_with(&args);
    api.advance(&c.base, "P3D").await;
    let removals = api
        .get(
            &c.base,
            &format!("/v1.0/{EM}/assignmentRequests?$filter=requestType eq 'systemRemove'&$count=true&$top=1"),
        )
        .await;
    assert_eq!(removals["@odata.count"], USERS as i64, "one system removal per assignment: {removals}");
    drop(c);
    drop(b);
}
