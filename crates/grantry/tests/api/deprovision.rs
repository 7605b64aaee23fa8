//! Deprovisioning ends access: a user deactivated through SCIM (`active: false`) or deleted
//! (SCIM or Graph) has their open requests canceled and their assignments removed by
//! `systemRemove` requests, with the memberships those assignments delivered revoked. A
//! Graph `accountEnabled: false` only blocks sign-in, as in Entra.

use crate::helpers::*;
use crate::scim::{scim, scim_token};
use grantry_domain::enums::{AllowedTargetScope, ApproverInformationVisibility};
use grantry_domain::model::{ApprovalStage, SubjectSet};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn reqs() -> String {
    format!("/v1.0/{EM}/assignmentRequests")
}

/// A policy on `f`'s package that every member may use, approved by `approver`.
async fn approval_policy(app: &TestApp, f: &Fixture, approver: &str) -> String {
    let approver = approver.to_string();
    app.seed_policy(f, AllowedTargetScope::AllMemberUsers, move |p| {
        p.requestor_settings.enable_targets_to_self_add_access = true;
        p.approval.is_approval_required_for_add = true;
        p.approval.stages = vec![ApprovalStage {
            duration_before_automatic_denial: Some(chrono::Duration::days(14)),
            duration_before_escalation: None,
            is_approver_justification_required: false,
            is_escalation_enabled: false,
            primary_approvers: vec![SubjectSet::SingleUser { user_id: Some(approver), description: None }],
            fallback_primary_approvers: vec![],
            escalation_approvers: vec![],
            fallback_escalation_approvers: vec![],
            approver_information_visibility: ApproverInformationVisibility::Default,
            is_dynamic: false,
        }];
    })
    .await
}

async fn request(app: &TestApp, token: &str, body: Value) -> String {
    let (status, r) = app.post(token, &reqs(), body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    r["id"].as_str().unwrap().to_string()
}

async fn request_state(app: &TestApp, id: &str) -> String {
    let (status, r) = app.get(&app.admin, &format!("{}/{id}", reqs())).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    r["state"].as_str().unwrap().to_string()
}

async fn assignment_state(app: &TestApp, id: &str) -> String {
    let (status, a) = app.get(&app.admin, &format!("/v1.0/{EM}/assignments/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    a["state"].as_str().unwrap().to_string()
}

/// The systemRemove requests recorded for assignment `id`.
async fn system_removes(app: &TestApp, id: &str) -> Vec<Value> {
    let (status, list) =
        app.get(&app.admin, &format!("{}?$filter=requestType eq 'systemRemove'&$expand=assignment", reqs())).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["value"].as_array().unwrap().iter().filter(|r| r["assignment"]["id"] == id).cloned().collect()
}

/// What a user holds in the three packages of [`Access`].
struct Access {
    /// Delivered through the first package (a membership of its group).
    assignment_id: String,
    /// Waiting for an approver on the second package.
    pending_id: String,
    /// Scheduled to start in three days on the third package.
    scheduled_id: String,
    packages: [Fixture; 3],
}

/// Gives `user` one delivered assignment, one request pending approval and one scheduled
/// request, each on a package of its own.
async fn give_access(app: &TestApp, user: &str, approver: &str) -> Access {
    let packages =
        [app.seed_package_with_group().await, app.seed_package_with_group().await, app.seed_package_with_group().await];
    let (_, assignment_id) = app.admin_assign(&packages[0], user).await;
    assert!(app.is_member(&packages[0].group_id, user).await);

    let policy = approval_policy(app, &packages[1], approver).await;
    let token = app.user_token(user, SUBJECT_SCOPES);
    let pending_id = request(
        app,
        &token,
        json!({"requestType": "userAdd", "assignment": {"accessPackageId": packages[1].package_id, "assignmentPolicyId": policy}, "justification": "please"}),
    )
    .await;
    assert_eq!(request_state(app, &pending_id).await, "pendingApproval");

    let start = (app.now() + chrono::Duration::days(3)).to_rfc3339();
    let scheduled_id = request(
        app,
        &app.admin,
        json!({"requestType": "adminAdd", "assignment": {"targetId": user, "accessPackageId": packages[2].package_id, "assignmentPolicyId": packages[2].admin_policy_id}, "schedule": {"startDateTime": start}}),
    )
    .await;
    assert_eq!(request_state(app, &scheduled_id).await, "scheduled");
    Access { assignment_id, pending_id, scheduled_id, packages }
}

/// Everything of `access` is over: requests canceled, the assignment expired by a
/// systemRemove saying `why`, the membership revoked; nothing comes back when the clock
/// passes the scheduled start.
async fn assert_access_ended(app: &TestApp, user: &str, access: &Access, why: &str) {
    assert_eq!(request_state(app, &access.pending_id).await, "canceled");
    assert_eq!(request_state(app, &access.scheduled_id).await, "canceled");
    assert_eq!(assignment_state(app, &access.assignment_id).await, "expired");
    let removes = system_removes(app, &access.assignment_id).await;
    assert_eq!(removes.len(), 1, "{removes:?}");
    assert_eq!(removes[0]["state"], "delivered", "{removes:?}");
    assert!(removes[0]["justification"].as_str().unwrap_or_default().contains(why), "{removes:?}");
    assert!(!app.is_member(&access.packages[0].group_id, user).await);

    // The approver has nothing left to decide.
    let (_, approval) =
        app.get(&app.admin, &format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{}", access.pending_id)).await;
    assert_ne!(approval["stages"][0]["status"], "InProgress", "{approval}");

    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({"duration": "P4D"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain().await;
    assert_eq!(request_state(app, &access.scheduled_id).await, "canceled");
    assert!(!app.is_member(&access.packages[2].group_id, user).await);
    let (_, active) = app
        .get(
            &app.admin,
            &format!("/v1.0/{EM}/assignments?$filter=accessPackage/id eq '{}'", access.packages[2].package_id),
        )
        .await;
    assert_eq!(active["value"], json!([]), "{active}");
}

async fn scim_user(app: &TestApp, token: &str, name: &str) -> String {
    let (status, user, _) = scim(
        app,
        token,
        Method::POST,
        "/Users",
        Some(json!({"userName": format!("{name}@contoso.com"), "displayName": name, "externalId": name})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    user["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn scim_deactivation_ends_access_and_reactivation_restores_none() {
    let app = TestApp::spawn().await;
    let token = scim_token(&app, "entra").await;
    let approver = app.create_user("approver").await;
    let leaver = scim_user(&app, &token, "leaver").await;
    let stayer = scim_user(&app, &token, "stayer").await;
    let access = give_access(&app, &leaver, &approver).await;
    app.admin_assign(&access.packages[0], &stayer).await;

    // Entra's deactivation: a capitalised op and a string boolean.
    let (status, user, _) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Users/{leaver}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["active"], false);
    assert_access_ended(&app, &leaver, &access, "deactivated").await;
    // Others keep theirs.
    assert!(app.is_member(&access.packages[0].group_id, &stayer).await);

    // The user stays in the directory, disabled; reactivating does not bring access back.
    let (_, graph_user) = app.get(&app.admin, &format!("/v1.0/users/{leaver}")).await;
    assert_eq!(graph_user["accountEnabled"], false, "{graph_user}");
    let (status, user, _) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Users/{leaver}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": true}}]})),
    )
    .await;
    assert_eq!((status, user["active"].as_bool()), (StatusCode::OK, Some(true)), "{user}");
    assert!(!app.is_member(&access.packages[0].group_id, &leaver).await);
    assert_eq!(system_removes(&app, &access.assignment_id).await.len(), 1);

    // A PUT with active false (Okta's custom integrations) ends access too.
    let (_, again) = app.admin_assign(&access.packages[0], &leaver).await;
    let (status, user, _) = scim(
        &app,
        &token,
        Method::PUT,
        &format!("/Users/{leaver}"),
        Some(json!({"userName": "leaver@contoso.com", "active": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(assignment_state(&app, &again).await, "expired");
    assert!(!app.is_member(&access.packages[0].group_id, &leaver).await);
    // The audit trail says what deprovisioning did.
    let (_, audit) = app.get(&app.admin, &format!("/_grantry/audit?entityId={leaver}")).await;
    let ended: Vec<&Value> =
        audit["value"].as_array().unwrap().iter().filter(|e| e["action"] == "accessEnded").collect();
    assert_eq!(ended.len(), 2, "{audit}");
}

#[tokio::test]
async fn scim_delete_ends_access() {
    let app = TestApp::spawn().await;
    let token = scim_token(&app, "okta").await;
    let approver = app.create_user("approver").await;
    let leaver = scim_user(&app, &token, "gone").await;
    let access = give_access(&app, &leaver, &approver).await;

    let (status, _, _) = scim(&app, &token, Method::DELETE, &format!("/Users/{leaver}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = scim(&app, &token, Method::GET, &format!("/Users/{leaver}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_access_ended(&app, &leaver, &access, "deleted").await;
}

#[tokio::test]
async fn graph_delete_ends_access_and_disabling_only_blocks_sign_in() {
    let app = TestApp::spawn().await;
    let approver = app.create_user("approver").await;

    // accountEnabled false blocks sign-in and keeps access (as in Entra).
    let blocked = app.create_user("blocked").await;
    let f = app.seed_package_with_group().await;
    let (_, kept) = app.admin_assign(&f, &blocked).await;
    let (status, body) =
        app.patch(&app.admin, &format!("/v1.0/users/{blocked}"), json!({"accountEnabled": false})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = app.get(&app.user_token(&blocked, SUBJECT_SCOPES), "/v1.0/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(assignment_state(&app, &kept).await, "delivered");
    assert!(app.is_member(&f.group_id, &blocked).await);

    let leaver = app.create_user("leaver").await;
    let access = give_access(&app, &leaver, &approver).await;
    let (status, body) = app.delete(&app.admin, &format!("/v1.0/users/{leaver}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = app.get(&app.admin, &format!("/v1.0/users/{leaver}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_access_ended(&app, &leaver, &access, "deleted").await;
    // The group no longer lists the deleted user.
    let (_, members) = app.get(&app.admin, &format!("/v1.0/groups/{}/members", access.packages[0].group_id)).await;
    assert_eq!(members["value"], json!([]), "{members}");
}
