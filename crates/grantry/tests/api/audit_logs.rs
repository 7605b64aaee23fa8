//! Audit logs in Graph's shape (`/auditLogs/directoryAudits`) and the point-in-time query of
//! who held which access package and group (`/_grantry/accessAt`).

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const AUDITS: &str = "/v1.0/auditLogs/directoryAudits";

fn names(body: &Value) -> Vec<String> {
    body["value"].as_array().unwrap().iter().map(|e| e["activityDisplayName"].as_str().unwrap().to_string()).collect()
}

/// Advances the development clock (running what falls due).
async fn advance(app: &TestApp, duration: &str) {
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": duration })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// A catalog, group resource, package with the group's Member role and an admin policy,
/// made through the API; returns (package, group, policy).
async fn package_with_group(app: &TestApp) -> (String, String, String) {
    let group = app.create_group("Finance").await;
    let catalog = app.create_catalog("Finance").await;
    let resource = app.add_group_resource(&catalog, &group).await;
    let package = app.create_package(&catalog, "Finance tools").await;
    app.add_member_role_scope(&package, &resource, &group).await;
    let (status, policy) = app
        .post(
            &app.admin,
            &em("v1.0", "assignmentPolicies"),
            json!({ "displayName": "Direct", "description": "Direct", "allowedTargetScope": "notSpecified",
                    "accessPackage": { "id": package } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{policy}");
    (package, group, policy["id"].as_str().unwrap().to_string())
}

async fn admin_add(app: &TestApp, user: &str, package: &str, policy: &str) -> String {
    let (status, body) = app
        .post(
            &app.admin,
            &em("v1.0", "assignmentRequests"),
            json!({ "requestType": "adminAdd", "assignment": { "targetId": user, "assignmentPolicyId": policy, "accessPackageId": package } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    let id = body["id"].as_str().unwrap();
    let (_, r) = app.get(&app.admin, &em("v1.0", &format!("assignmentRequests/{id}?$expand=assignment"))).await;
    assert_eq!(r["state"], "delivered", "{r}");
    r["assignment"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn every_recorded_change_is_a_directory_audit_in_graphs_shape() {
    let app = TestApp::spawn().await;
    let user = app.create_user("nestor").await;
    let (package, group, policy) = package_with_group(&app).await;
    admin_add(&app, &user, &package, &policy).await;

    let (status, body) = app.get(&app.admin, &format!("{AUDITS}?$filter=category eq 'EntitlementManagement'")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["@odata.context"].as_str().unwrap().ends_with("/v1.0/$metadata#auditLogs/directoryAudits"), "{body}");
    let all = names(&body);
    for expected in [
        "Create access package catalog",
        "Add resource to catalog",
        "Create access package",
        "Add resource role to access package",
        "Create access package assignment policy",
        "Administrator directly assigns user to access package",
        "Create access package assignment",
        "Fulfill access package assignment request",
    ] {
        assert!(all.iter().any(|n| n == expected), "{expected} missing from {all:?}");
    }
    let entries = body["value"].as_array().unwrap();
    assert!(entries.iter().all(|e| e["category"] == "EntitlementManagement"), "{body}");
    // Newest first.
    let times: Vec<&str> = entries.iter().map(|e| e["activityDateTime"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    let assigned = entries
        .iter()
        .find(|e| e["activityDisplayName"] == "Administrator directly assigns user to access package")
        .unwrap();
    assert_eq!(assigned["result"], "success");
    assert_eq!(assigned["loggedByService"], "Entitlement Management");
    assert_eq!(assigned["operationType"], "Add");
    assert!(assigned["initiatedBy"]["app"]["appId"].is_string(), "an application made the request: {assigned}");
    assert!(assigned["initiatedBy"]["user"].is_null());
    let targets = assigned["targetResources"].as_array().unwrap();
    assert_eq!(targets[0]["type"], "AccessPackageAssignmentRequest");
    assert!(targets.iter().any(|t| t["id"] == package.as_str() && t["type"] == "AccessPackage"), "{assigned}");
    for key in ["id", "correlationId", "resultReason", "additionalDetails"] {
        assert!(assigned.get(key).is_some(), "{key} missing: {assigned}");
    }

    // The membership the delivery gave is in the group management category.
    let (_, body) = app.get(&app.admin, &format!("{AUDITS}?$filter=category eq 'GroupManagement'")).await;
    let granted = &body["value"][0];
    assert_eq!(granted["activityDisplayName"], "Add member to group", "{body}");
    assert_eq!(granted["targetResources"][0]["id"], group.as_str());
    assert!(granted["initiatedBy"]["app"]["displayName"] == "Grantry", "the service did it: {granted}");

    // One entry by id, in both roots.
    let id = assigned["id"].as_str().unwrap();
    let (status, one) = app.get(&app.admin, &format!("{AUDITS}/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["activityDisplayName"], assigned["activityDisplayName"]);
    let (status, beta) = app.get(&app.admin, &format!("/beta/auditLogs/directoryAudits/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{beta}");
    assert!(beta["@odata.context"].as_str().unwrap().contains("/beta/$metadata#"), "{beta}");
    let (status, missing) = app.get(&app.admin, &format!("{AUDITS}/00000000-0000-0000-0000-00000000abcd")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
}

#[tokio::test]
async fn directory_audits_filter_order_and_page_like_graph() {
    let app = TestApp::spawn().await;
    let user = app.create_user("lynne").await;
    let (package, _group, policy) = package_with_group(&app).await;
    let started = app.now();
    advance(&app, "PT1H").await;
    admin_add(&app, &user, &package, &policy).await;

    let q = |filter: &str| format!("{AUDITS}?$filter={}", filter.replace(' ', "%20"));
    let (_, body) = app.get(&app.admin, &q("activityDisplayName eq 'Create access package'")).await;
    assert_eq!(names(&body), vec!["Create access package"], "{body}");
    let (_, body) = app.get(&app.admin, &q("startswith(activityDisplayName, 'create access package')")).await;
    assert!(names(&body).len() >= 3, "startswith ignores case: {body}");
    let (_, body) = app.get(&app.admin, &q(&format!("targetResources/any(t: t/id eq '{package}')"))).await;
    assert!(names(&body).contains(&"Create access package".to_string()), "{body}");
    assert!(names(&body).contains(&"Administrator directly assigns user to access package".to_string()), "{body}");

    // activityDateTime bounds: the hour skipped separates the set-up from the assignment.
    let after = (started + chrono::Duration::minutes(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, later) = app.get(&app.admin, &q(&format!("activityDateTime ge {after}"))).await;
    assert!(!names(&later).contains(&"Create access package".to_string()), "{later}");
    assert!(names(&later).contains(&"Fulfill access package assignment request".to_string()), "{later}");
    let (_, earlier) = app.get(&app.admin, &q(&format!("activityDateTime lt {after} and result eq 'success'"))).await;
    assert!(names(&earlier).contains(&"Create access package".to_string()), "{earlier}");
    assert!(!names(&earlier).contains(&"Fulfill access package assignment request".to_string()), "{earlier}");
    let (_, by_app) =
        app.get(&app.admin, &q("initiatedBy/app/displayName eq 'Grantry' and operationType eq 'Assign'")).await;
    assert!(!names(&by_app).is_empty(), "{by_app}");

    // Paging: $top=2 pages through everything, oldest first with $orderby asc.
    let (_, all) = app.get(&app.admin, &format!("{AUDITS}?$top=999")).await;
    let total = all["value"].as_array().unwrap().len();
    assert!(total > 6, "{all}");
    let mut seen = Vec::new();
    let mut next = Some(app.url(&format!("{AUDITS}?$top=2&$orderby=activityDateTime%20asc")));
    while let Some(url) = next {
        let page: Value = app.client.get(&url).bearer_auth(&app.admin).send().await.unwrap().json().await.unwrap();
        let items = page["value"].as_array().unwrap();
        assert!(items.len() <= 2, "{page}");
        seen.extend(items.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        next = page["@odata.nextLink"].as_str().map(str::to_string);
    }
    assert_eq!(seen.len(), total);
    let newest_first: Vec<String> =
        all["value"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).rev().collect();
    assert_eq!(seen, newest_first, "asc is the reverse of the default order");

    // Bad queries are 400s in Graph's envelope.
    let (status, body) = app.get(&app.admin, &q("nosuchProperty eq 'x'")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "InvalidFilter");
    let (status, body) = app.get(&app.admin, &format!("{AUDITS}?$orderby=category")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "BadRequest");
}

#[tokio::test]
async fn directory_audits_are_for_administrators_and_audit_readers() {
    let app = TestApp::spawn().await;
    let user = app.create_user("pradeep").await;
    let token = app.user_token_default(&user);
    let (status, body) = app.get(&token, AUDITS).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = app.get("", AUDITS).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let reader = app.app_token(&["AuditLog.Read.All"]);
    let (status, body) = app.get(&reader, AUDITS).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.make_iga(&user).await;
    let (status, body) = app.get(&token, AUDITS).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn access_at_an_instant_names_who_held_which_package_and_group() {
    let app = TestApp::spawn().await;
    let user = app.create_user("isaiah").await;
    let other = app.create_user("joni").await;
    let (package, group, policy) = package_with_group(&app).await;
    let before = app.now();
    advance(&app, "PT1H").await;
    let assignment = admin_add(&app, &user, &package, &policy).await;
    advance(&app, "PT1H").await;
    let during = app.now();
    admin_add(&app, &other, &package, &policy).await;
    advance(&app, "PT1H").await;
    let (status, body) = app
        .post(
            &app.admin,
            &em("v1.0", "assignmentRequests"),
            json!({ "requestType": "adminRemove", "assignment": { "id": assignment } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    assert!(!app.is_member(&group, &user).await);
    advance(&app, "PT1H").await;
    let after = app.now();

    let at = |t: chrono::DateTime<chrono::Utc>, extra: &str| {
        format!(
            "/_grantry/accessAt?at={}{extra}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).replace('+', "%2B")
        )
    };
    let (status, body) = app.get(&app.admin, &at(during, "")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let held = body["value"].as_array().unwrap();
    assert_eq!(held.len(), 1, "only the first person held access then: {body}");
    assert_eq!(held[0]["assignmentId"], assignment.as_str());
    assert_eq!(held[0]["accessPackage"]["id"], package.as_str());
    assert_eq!(held[0]["accessPackage"]["displayName"], "Finance tools");
    assert_eq!(held[0]["target"]["objectId"], user.as_str());
    assert_eq!(held[0]["groups"], json!([{ "id": group, "displayName": "Finance", "relation": "member" }]), "{body}");
    assert!(held[0]["heldUntil"].is_string(), "the assignment has ended since: {body}");

    let (_, body) = app.get(&app.admin, &at(before, "")).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 0, "nobody before the first assignment: {body}");
    let (_, body) = app.get(&app.admin, &at(after, "")).await;
    let held = body["value"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{body}");
    assert_eq!(held[0]["target"]["objectId"], other.as_str());
    assert!(held[0]["heldUntil"].is_null());

    let (_, body) = app.get(&app.admin, &at(after, &format!("&userId={user}"))).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 0, "{body}");
    let (_, body) = app.get(&app.admin, &at(during, &format!("&groupId={group}&accessPackageId={package}"))).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 1, "{body}");
    let (_, body) = app.get(&app.admin, &at(during, "&groupId=00000000-0000-0000-0000-000000000001")).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 0, "{body}");

    let (status, body) = app.get(&app.admin, "/_grantry/accessAt").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "BadRequest");
    let (status, body) = app.get(&app.admin, "/_grantry/accessAt?at=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let token = app.user_token_default(&user);
    let (status, _) = app.get(&token, &at(during, "")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
