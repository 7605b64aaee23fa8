//! `grantry copy`: an embedded database with a tenant's data copied into a fresh
//! PostgreSQL database serves the same reads through the API (to the same tokens, given
//! the same key directory) and takes new writes; a target with data is refused.
//!
//! Needs a PostgreSQL server (`GRANTRY_TEST_DATABASE_URL`, as the suite's PostgreSQL run
//! sets); without one it checks only what needs none.

use crate::backup::sqlite_server;
use crate::crash::bin;
use crate::helpers::{ALL_APP_ROLES, EM, PgTestDatabase, TestApp};
use grantry::config::{Config, Database};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::process::Command;

fn run_copy(from: &str, to: &str) -> std::process::Output {
    Command::new(bin()).args(["copy", "--from", from, "--to", to]).env("GRANTRY_LOG", "error").output().unwrap()
}

/// The reads compared between the two backends: every collection the data touches, in
/// both dialects, with expansions, and the audit trail.
fn reads(group_id: &str, catalog_id: &str, package_id: &str) -> Vec<String> {
    vec![
        "/v1.0/users?$top=999".into(),
        "/v1.0/groups?$top=999".into(),
        format!("/v1.0/groups/{group_id}/members"),
        format!("/v1.0/{EM}/catalogs"),
        format!("/v1.0/{EM}/catalogs/{catalog_id}/resources?$expand=roles,scopes"),
        format!("/v1.0/{EM}/accessPackages?$expand=resourceRoleScopes($expand=role,scope)"),
        format!("/v1.0/{EM}/accessPackages/{package_id}/assignmentPolicies"),
        format!("/v1.0/{EM}/assignmentPolicies"),
        format!("/v1.0/{EM}/assignmentRequests?$expand=requestor"),
        format!("/v1.0/{EM}/assignments?$expand=target,accessPackage,assignmentPolicy"),
        "/beta/identityGovernance/entitlementManagement/accessPackages?$expand=accessPackageResourceRoleScopes".into(),
        "/beta/identityGovernance/entitlementManagement/accessPackageAssignments?$expand=target".into(),
        "/v1.0/roleManagement/directory/roleAssignments".into(),
        "/_grantry/audit?$top=999".into(),
    ]
}

async fn read_all(base: &str, token: &str, paths: &[String]) -> Vec<Value> {
    let client = reqwest::Client::new();
    let mut out = Vec::new();
    for path in paths {
        let resp = client.get(format!("{base}{path}")).bearer_auth(token).send().await.unwrap();
        let status = resp.status();
        // Links carry the server's address, which differs between the two servers.
        let text = resp.text().await.unwrap().replace(base, "BASE");
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        out.push(serde_json::from_str(&text).unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_to_postgres_serves_the_same_reads() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("grantry.db");
    let source = format!("sqlite:{}", db.display());

    // Refusals that need no PostgreSQL.
    let out = run_copy(&source, "sqlite:/tmp/x.db");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--to must be a PostgreSQL"), "{out:?}");
    let out = run_copy("sqlite:/nonexistent/grantry.db", "postgres://u@127.0.0.1:1/x");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database"), "{out:?}");

    let Some(target) = PgTestDatabase::create() else {
        eprintln!("GRANTRY_TEST_DATABASE_URL is not set: the copy into PostgreSQL is not exercised");
        return;
    };

    // A tenant on SQLite: users, groups, a catalog with a package and policies, delivered
    // assignments (memberships, audit events, jobs for their expiry or none).
    let server = sqlite_server(&db).await;
    let mut app = TestApp {
        base: server.base_url.clone(),
        server: Some(server),
        client: reqwest::Client::new(),
        dir: tempfile::tempdir().unwrap(),
        admin: String::new(),
        pg: None,
    };
    app.admin = app.app_token(ALL_APP_ROLES);
    let fixture = app.seed_package_with_group().await;
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(app.create_user(&format!("copy{i}")).await);
    }
    for user in &users[..3] {
        app.admin_assign(&fixture, user).await;
    }
    let paths = reads(&fixture.group_id, &fixture.catalog_id, &fixture.package_id);
    let on_sqlite = read_all(&app.base, &app.admin, &paths).await;
    app.server.take().unwrap().stop().await;

    let out = run_copy(&source, &target.url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "copy failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("verified"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("users ")), "a line per table: {stdout}");

    // The target now has data: a second copy is refused and changes nothing.
    let again = run_copy(&source, &target.url);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"), "{again:?}");

    // The SQLite server's keys: tokens it issued stay valid.
    let pg_server = grantry::start(Config::for_test(Database::Postgres(target.url.clone()), db.with_file_name("keys")))
        .await
        .expect("server starts on the copy");
    // The same token, signed with the key in the shared key directory.
    let on_postgres = read_all(&pg_server.base_url, &app.admin, &paths).await;
    for ((path, a), b) in paths.iter().zip(&on_sqlite).zip(&on_postgres) {
        assert_eq!(a, b, "{path} reads differently after the copy");
    }
    assert!(on_postgres[0]["value"].as_array().unwrap().len() >= users.len());

    // New writes continue the copied sequences.
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{}/v1.0/users", pg_server.base_url))
        .bearer_auth(&app.admin)
        .json(&json!({ "displayName": "after copy", "userPrincipalName": "after.copy@contoso.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = client
        .post(format!("{}/v1.0/{EM}/assignmentRequests", pg_server.base_url))
        .bearer_auth(&app.admin)
        .json(&json!({"requestType": "adminAdd", "assignment": {"targetId": users[4], "assignmentPolicyId": fixture.admin_policy_id, "accessPackageId": fixture.package_id}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "{}", resp.text().await.unwrap());
    pg_server.stop().await;
    drop(target);
}
