//! Approvals: stages decided by PATCH, escalation, automatic denial, races between
//! decisions, cancel and timeouts, time-bound access, and restart with pending work. Time
//! moves only through the development clock.

use crate::helpers::*;
use grantry_domain::enums::{AllowedTargetScope, ApproverInformationVisibility, ExpirationType};
use grantry_domain::model::{ApprovalStage, Expiration, Policy, SubjectSet};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn user_set(id: &str) -> SubjectSet {
    SubjectSet::SingleUser { user_id: Some(id.to_string()), description: None }
}

fn stage(primary: Vec<SubjectSet>) -> ApprovalStage {
    ApprovalStage {
        duration_before_automatic_denial: Some(chrono::Duration::days(14)),
        duration_before_escalation: None,
        is_approver_justification_required: false,
        is_escalation_enabled: false,
        primary_approvers: primary,
        fallback_primary_approvers: vec![],
        escalation_approvers: vec![],
        fallback_escalation_approvers: vec![],
        approver_information_visibility: ApproverInformationVisibility::Default,
        is_dynamic: false,
    }
}

/// A self-service policy for all members of the fixture's package with `stages`, shaped
/// further by `edit`.
async fn approval_policy(
    app: &TestApp,
    f: &Fixture,
    stages: Vec<ApprovalStage>,
    edit: impl FnOnce(&mut Policy) + Send + 'static,
) -> String {
    app.seed_policy(f, AllowedTargetScope::AllMemberUsers, move |p| {
        p.requestor_settings.enable_targets_to_self_add_access = true;
        p.requestor_settings.enable_targets_to_self_update_access = true;
        p.approval.is_approval_required_for_add = true;
        p.approval.is_approval_required_for_update = true;
        p.approval.stages = stages;
        edit(p);
    })
    .await
}

fn reqs(root: &str) -> String {
    format!("/{root}/{EM}/assignmentRequests")
}

fn approvals(root: &str, rest: &str) -> String {
    format!("/{root}/{EM}/accessPackageAssignmentApprovals/{rest}")
}

/// `user` asks for the package through `policy`; returns the request id once processed.
async fn request_access(app: &TestApp, f: &Fixture, user: &str, policy: &str) -> String {
    let token = app.user_token(user, SUBJECT_SCOPES);
    let (status, r) = app
        .post(
            &token,
            &reqs("v1.0"),
            json!({"requestType": "userAdd", "assignment": {"accessPackageId": f.package_id, "assignmentPolicyId": policy}, "justification": "I need it"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    r["id"].as_str().unwrap().to_string()
}

/// (state, status) of a request on v1.0.
async fn state_of(app: &TestApp, id: &str) -> (String, String) {
    let (status, r) = app.get(&app.admin, &format!("{}/{id}", reqs("v1.0"))).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    (r["state"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string())
}

async fn approval_of(app: &TestApp, token: &str, id: &str) -> Value {
    let (status, a) = app.get(token, &approvals("v1.0", id)).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    a
}

/// The id of stage `n` (0-based) of approval `id`.
async fn stage_id(app: &TestApp, id: &str, n: usize) -> String {
    let a = approval_of(app, &app.admin, id).await;
    a["stages"][n]["id"].as_str().unwrap_or_else(|| panic!("no stage {n}: {a}")).to_string()
}

async fn decide(app: &TestApp, user: &str, id: &str, sid: &str, body: Value) -> (StatusCode, Value) {
    let token = app.user_token(user, SUBJECT_SCOPES);
    app.patch(&token, &approvals("v1.0", &format!("{id}/stages/{sid}")), body).await
}

async fn approve(app: &TestApp, user: &str, id: &str, sid: &str) -> (StatusCode, Value) {
    decide(app, user, id, sid, json!({"reviewResult": "Approve", "justification": "OK with me"})).await
}

async fn advance(app: &TestApp, duration: &str) {
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": duration })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn assignment_of(app: &TestApp, request_id: &str) -> Value {
    let (_, r) = app.get(&app.admin, &format!("{}/{request_id}?$expand=assignment", reqs("v1.0"))).await;
    r["assignment"].clone()
}

async fn audit_actions(app: &TestApp, entity: &str) -> Vec<String> {
    let (status, body) = app.get(&app.admin, &format!("/_grantry/audit?entityId={entity}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_string()).collect()
}

async fn awaiting(app: &TestApp, user: &str, root: &str) -> Vec<String> {
    let token = app.user_token(user, SUBJECT_SCOPES);
    let (status, body) = app.get(&token, &approvals(root, "filterByCurrentUser(on='approver')")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    TestApp::ids_of(&body)
}

#[tokio::test]
async fn single_stage_approve_delivers_and_shapes_follow_the_docs() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let approver = app.create_user("alice").await;
    let user = app.create_user("uma").await;
    let a2 = approver.clone();
    let policy = approval_policy(&app, &f, vec![stage(vec![user_set(&a2)])], |_| {}).await;
    let id = request_access(&app, &f, &user, &policy).await;
    assert_eq!(state_of(&app, &id).await, ("pendingApproval".into(), "PendingApproval".into()));

    // v1.0 shape, as in the docs example (approval-get.md): stages inline.
    let atoken = app.user_token(&approver, SUBJECT_SCOPES);
    let a = approval_of(&app, &atoken, &id).await;
    assert_eq!(a["id"], id);
    assert!(a.get("steps").is_none(), "{a}");
    let s = &a["stages"][0];
    for key in [
        "id",
        "displayName",
        "reviewedDateTime",
        "reviewResult",
        "status",
        "assignedToMe",
        "justification",
        "reviewedBy",
    ] {
        assert!(s.get(key).is_some(), "stage lacks {key}: {s}");
    }
    assert_eq!(s["reviewResult"], "NotReviewed");
    assert_eq!(s["status"], "InProgress");
    assert_eq!(s["assignedToMe"], true);
    assert_eq!(s["justification"], "");
    assert_eq!(s["reviewedBy"], Value::Null);
    let sid = s["id"].as_str().unwrap().to_string();

    // beta: steps, one by one and as a collection.
    let (status, b) = app.get(&atoken, &approvals("beta", &id)).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert!(b.get("stages").is_none(), "{b}");
    assert_eq!(b["steps"][0]["id"], sid.as_str());
    assert_eq!(b["steps"][0]["@odata.type"], "#microsoft.graph.approvalStep");
    let (status, steps) = app.get(&atoken, &approvals("beta", &format!("{id}/steps"))).await;
    assert_eq!(status, StatusCode::OK, "{steps}");
    assert_eq!(TestApp::ids_of(&steps), vec![sid.clone()]);
    let (status, one) = app.get(&atoken, &approvals("beta", &format!("{id}/steps/{sid}"))).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["status"], "InProgress");
    let (status, pending) = app.get(&atoken, &approvals("beta", &format!("{id}/pendingSteps"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(TestApp::ids_of(&pending), vec![sid.clone()]);
    let (status, stages) = app.get(&atoken, &approvals("v1.0", &format!("{id}/stages"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stages["value"][0]["@odata.type"], "#microsoft.graph.approvalStage");

    // The requestor sees the approval but is not assigned to it.
    let utoken = app.user_token(&user, SUBJECT_SCOPES);
    let mine = approval_of(&app, &utoken, &id).await;
    assert_eq!(mine["stages"][0]["assignedToMe"], false);

    // What waits for whom, on approvals and on requests.
    assert_eq!(awaiting(&app, &approver, "v1.0").await, vec![id.clone()]);
    assert_eq!(awaiting(&app, &approver, "beta").await, vec![id.clone()]);
    assert!(awaiting(&app, &user, "v1.0").await.is_empty());
    let (status, list) = app.get(&atoken, &format!("{}/filterByCurrentUser(on='approver')", reqs("v1.0"))).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(TestApp::ids_of(&list), vec![id.clone()]);
    let (_, list) = app.get(&utoken, &format!("{}/filterByCurrentUser(on='approver')", reqs("v1.0"))).await;
    assert!(TestApp::ids_of(&list).is_empty());

    // The Python SDK's body (graph-sdk-clients.md): 204, then delivery.
    let (status, body) = approve(&app, &approver, &id, &sid).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.drain().await;
    assert_eq!(state_of(&app, &id).await, ("delivered".into(), "Delivered".into()));
    assert!(app.is_member(&f.group_id, &user).await);

    // A second decision on the settled stage → 409.
    let (status, body) = decide(&app, &approver, &id, &sid, json!({"reviewResult": "Deny"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_error(&body, "StageAlreadyDecided");

    let (_, s) = app.get(&atoken, &approvals("v1.0", &format!("{id}/stages/{sid}"))).await;
    assert_eq!(s["reviewResult"], "Approved");
    assert_eq!(s["status"], "Completed");
    assert_eq!(s["reviewedBy"]["id"], approver.as_str());
    assert_eq!(s["reviewedBy"]["displayName"], "alice");
    assert_eq!(s["justification"], "OK with me");
    assert!(s["reviewedDateTime"].is_string());
    assert!(awaiting(&app, &approver, "v1.0").await.is_empty());

    // The audit trail has the decision with its actor and justification.
    let (_, trail) = app.get(&app.admin, &format!("/_grantry/audit?entityId={id}")).await;
    let approved = trail["value"].as_array().unwrap().iter().find(|e| e["action"] == "approved").expect("approved");
    assert_eq!(approved["actorId"], approver.as_str());
    assert_eq!(approved["detail"]["justification"], "OK with me");
    assert_eq!(approved["entityType"], "accessPackageAssignmentRequest");
    let actions = audit_actions(&app, &id).await;
    assert_eq!(actions.first().map(String::as_str), Some("delivered"), "newest first: {actions:?}");
    assert!(actions.contains(&"stageApproved".to_string()));
    assert!(actions.contains(&"pendingApproval".to_string()));
}

#[tokio::test]
async fn deny_and_every_refusal_of_a_decision() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let approver = app.create_user("alice").await;
    let outsider = app.create_user("olga").await;
    let user = app.create_user("uma").await;
    let (a2, u2) = (approver.clone(), user.clone());
    let policy = approval_policy(&app, &f, vec![stage(vec![user_set(&u2), user_set(&a2)])], |p| {
        p.approval.stages[0].is_approver_justification_required = true;
    })
    .await;
    let id = request_access(&app, &f, &user, &policy).await;
    let sid = stage_id(&app, &id, 0).await;
    let path = approvals("v1.0", &format!("{id}/stages/{sid}"));

    // reviewResult missing or invalid → 400 naming it.
    let (status, body) = decide(&app, &approver, &id, &sid, json!({"justification": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["target"], "reviewResult", "{body}");
    let (status, body) = decide(&app, &approver, &id, &sid, json!({"reviewResult": "Maybe"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("reviewResult"));
    // Applications cannot decide.
    let (status, body) = app.patch(&app.admin, &path, json!({"reviewResult": "Approve"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("delegated"), "{body}");
    // A read-only token cannot decide.
    let ro = app.user_token(&approver, &["EntitlementManagement.Read.All"]);
    let (status, _) = app.patch(&ro, &path, json!({"reviewResult": "Approve", "justification": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Not an approver → 403; the outsider cannot even see it → 404.
    let (status, body) = approve(&app, &outsider, &id, &sid).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = app.get(&app.user_token(&outsider, SUBJECT_SCOPES), &approvals("v1.0", &id)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The requestor is listed as an approver, but can never decide their own request.
    let (status, body) = approve(&app, &user, &id, &sid).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error(&body, "SelfApprovalNotAllowed");
    let mine = approval_of(&app, &app.user_token(&user, SUBJECT_SCOPES), &id).await;
    assert_eq!(mine["stages"][0]["assignedToMe"], false);
    // Justification required by the stage.
    let (status, body) = decide(&app, &approver, &id, &sid, json!({"reviewResult": "approve"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "JustificationRequired");
    // Unknown approval or stage → 404.
    let (status, _) = approve(&app, &approver, &grantry_domain::ids::new_id(), &sid).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = approve(&app, &approver, &id, &grantry_domain::ids::new_id()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Still waiting after all that.
    assert_eq!(state_of(&app, &id).await, ("pendingApproval".into(), "PendingApproval".into()));

    // Administrators of the catalog see the approval; a catalog reader does not.
    let aam = app.create_user("aam").await;
    app.grant_catalog_role(&aam, ACCESS_PACKAGE_ASSIGNMENT_MANAGER, &f.catalog_id).await;
    let (status, _) = app.get(&app.user_token_default(&aam), &approvals("v1.0", &id)).await;
    assert_eq!(status, StatusCode::OK);
    let reader = app.create_user("reader").await;
    app.grant_catalog_role(&reader, CATALOG_READER, &f.catalog_id).await;
    let (status, _) = app.get(&app.user_token_default(&reader), &approvals("v1.0", &id)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Deny (the read value, lower case, is accepted too) → denied, no assignment.
    let (status, body) =
        decide(&app, &approver, &id, &sid, json!({"reviewResult": "denied", "justification": "Not this quarter"}))
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.drain().await;
    assert_eq!(state_of(&app, &id).await, ("denied".into(), "Denied".into()));
    assert_eq!(assignment_of(&app, &id).await, Value::Null);
    assert!(!app.is_member(&f.group_id, &user).await);
    let (_, r) = app.get(&app.admin, &format!("{}/{id}", reqs("v1.0"))).await;
    assert!(r["completedDateTime"].is_string(), "{r}");
    let a = approval_of(&app, &app.admin, &id).await;
    assert_eq!(a["stages"][0]["reviewResult"], "Denied");
    assert_eq!(a["stages"][0]["justification"], "Not this quarter");
}

#[tokio::test]
async fn the_requestor_as_sole_approver_falls_back_or_denies() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let backup = app.create_user("bob").await;
    let user = app.create_user("uma").await;
    let (b2, u2) = (backup.clone(), user.clone());
    let with_fallback = approval_policy(&app, &f, vec![stage(vec![user_set(&u2)])], move |p| {
        p.approval.stages[0].fallback_primary_approvers = vec![user_set(&b2)];
    })
    .await;
    let id = request_access(&app, &f, &user, &with_fallback).await;
    let sid = stage_id(&app, &id, 0).await;
    let (status, body) = approve(&app, &user, &id, &sid).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(awaiting(&app, &backup, "v1.0").await, vec![id.clone()]);
    let (status, body) = approve(&app, &backup, &id, &sid).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.drain().await;
    assert_eq!(state_of(&app, &id).await.0, "delivered");

    // Nobody but the requestor: the request is denied at once, and the trail says why.
    let other = app.create_user("otto").await;
    let o2 = other.clone();
    let nobody = approval_policy(&app, &f, vec![stage(vec![user_set(&o2)])], |_| {}).await;
    let id = request_access(&app, &f, &other, &nobody).await;
    assert_eq!(state_of(&app, &id).await, ("denied".into(), "Denied".into()));
    let (_, trail) = app.get(&app.admin, &format!("/_grantry/audit?entityId={id}")).await;
    let denied = trail["value"].as_array().unwrap().iter().find(|e| e["action"] == "denied").expect("denied event");
    assert!(denied["detail"]["reason"].as_str().unwrap().contains("No approver"), "{denied}");
}

#[tokio::test]
async fn three_stages_with_manager_fallback_escalation_and_timeout() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let fallback = app.create_user("fiona").await;
    let second = app.create_user("sam").await;
    let escalation = app.create_user("eve").await;
    let third = app.create_user("theo").await;
    let user = app.create_user("uma").await;
    let (fb, s2, e2, t3) = (fallback.clone(), second.clone(), escalation.clone(), third.clone());
    let mut manager_stage = stage(vec![SubjectSet::RequestorManager { manager_level: 1 }]);
    manager_stage.fallback_primary_approvers = vec![user_set(&fb)];
    let mut escalating = stage(vec![user_set(&s2)]);
    escalating.is_escalation_enabled = true;
    escalating.duration_before_escalation = Some(chrono::Duration::days(1));
    escalating.duration_before_automatic_denial = Some(chrono::Duration::days(5));
    escalating.escalation_approvers = vec![user_set(&e2)];
    let mut short = stage(vec![user_set(&t3)]);
    short.duration_before_automatic_denial = Some(chrono::Duration::days(2));
    let policy = approval_policy(&app, &f, vec![manager_stage, escalating, short], |_| {}).await;

    // A requestor with a manager: the manager decides stage 1.
    let boss = app.create_user("boss").await;
    let managed = app.create_user("mia").await;
    app.set_manager(&managed, &boss).await;
    let mid = request_access(&app, &f, &managed, &policy).await;
    let a = approval_of(&app, &app.user_token(&boss, SUBJECT_SCOPES), &mid).await;
    assert_eq!(a["stages"][0]["assignedToMe"], true);
    assert!(awaiting(&app, &fallback, "v1.0").await.is_empty(), "the fallback is not needed");

    // No manager: the fallback approver decides stage 1.
    let id = request_access(&app, &f, &user, &policy).await;
    let a = approval_of(&app, &app.admin, &id).await;
    assert_eq!(a["stages"].as_array().unwrap().len(), 3);
    assert_eq!(a["stages"][1]["status"], "NotStarted");
    let sids: Vec<String> = a["stages"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().into()).collect();
    let (status, body) = approve(&app, &second, &id, &sids[1]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "stage 2 has not started: {body}");
    let (status, body) = approve(&app, &fallback, &id, &sids[0]).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(state_of(&app, &id).await, ("pendingApproval".into(), "PendingApproval".into()));

    // Stage 2: the escalation approver must wait for escalation.
    let (status, _) = approve(&app, &escalation, &id, &sids[1]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    advance(&app, "P1DT1H").await;
    assert_eq!(state_of(&app, &id).await, ("pendingApproval".into(), "PendingApprovalEscalated".into()));
    assert_eq!(awaiting(&app, &escalation, "v1.0").await, vec![id.clone()]);
    assert!(awaiting(&app, &second, "v1.0").await.contains(&id), "primaries can still decide");
    let (status, body) = approve(&app, &escalation, &id, &sids[1]).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(state_of(&app, &id).await, ("pendingApproval".into(), "PendingApproval".into()));
    assert!(awaiting(&app, &second, "v1.0").await.is_empty());

    // Stage 3 times out: denied (status Expired), and a late approval is refused.
    advance(&app, "P1D").await;
    assert_eq!(state_of(&app, &id).await.0, "pendingApproval");
    advance(&app, "P1DT1H").await;
    assert_eq!(state_of(&app, &id).await, ("denied".into(), "Expired".into()));
    let (status, body) = approve(&app, &third, &id, &sids[2]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let a = approval_of(&app, &app.admin, &id).await;
    assert_eq!(a["stages"][2]["status"], "Expired");
    assert_eq!(a["stages"][2]["reviewResult"], "NotReviewed");
    assert!(!app.is_member(&f.group_id, &user).await);
    // The other request is still in stage 1: its 14 days have not passed.
    assert_eq!(state_of(&app, &mid).await.0, "pendingApproval");
}

#[tokio::test]
async fn two_approvers_at_once_one_wins() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let a = app.create_user("alice").await;
    let b = app.create_user("bob").await;
    let user = app.create_user("uma").await;
    let (a2, b2) = (a.clone(), b.clone());
    let policy = approval_policy(&app, &f, vec![stage(vec![user_set(&a2), user_set(&b2)])], |_| {}).await;
    for round in 0..3 {
        let target = app.create_user(&format!("u{round}")).await;
        let id = request_access(&app, &f, &target, &policy).await;
        let sid = stage_id(&app, &id, 0).await;
        let ((s1, _), (s2, _)) = tokio::join!(
            approve(&app, &a, &id, &sid),
            decide(&app, &b, &id, &sid, json!({"reviewResult": "Deny", "justification": "no"}))
        );
        let mut got = [s1, s2];
        got.sort();
        assert_eq!(got, [StatusCode::NO_CONTENT, StatusCode::CONFLICT], "round {round}");
        app.drain().await;
        let (state, _) = state_of(&app, &id).await;
        let expected = if s1 == StatusCode::NO_CONTENT { "delivered" } else { "denied" };
        assert_eq!(state, expected, "round {round}");
        assert_eq!(app.is_member(&f.group_id, &target).await, expected == "delivered");
    }
    let _ = user;
}

#[tokio::test]
async fn approve_racing_cancel_and_timeout_stays_consistent() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let a = app.create_user("alice").await;
    let a2 = a.clone();
    let mut s = stage(vec![user_set(&a2)]);
    s.duration_before_automatic_denial = Some(chrono::Duration::days(2));
    let policy = approval_policy(&app, &f, vec![s], |_| {}).await;

    // Approve vs cancel.
    for round in 0..3 {
        let user = app.create_user(&format!("c{round}")).await;
        let id = request_access(&app, &f, &user, &policy).await;
        let sid = stage_id(&app, &id, 0).await;
        let token = app.user_token(&user, SUBJECT_SCOPES);
        let cancel_path = format!("{}/{id}/cancel", reqs("v1.0"));
        let ((approved, _), (canceled, _)) =
            tokio::join!(approve(&app, &a, &id, &sid), app.post(&token, &cancel_path, json!({})));
        app.drain().await;
        let (state, _) = state_of(&app, &id).await;
        match (approved, canceled) {
            (StatusCode::NO_CONTENT, StatusCode::BAD_REQUEST) => {
                assert_eq!(state, "delivered");
                assert!(app.is_member(&f.group_id, &user).await);
            }
            (StatusCode::CONFLICT, StatusCode::NO_CONTENT) => {
                assert_eq!(state, "canceled");
                assert!(!app.is_member(&f.group_id, &user).await);
                let a = approval_of(&app, &app.admin, &id).await;
                assert_ne!(a["stages"][0]["status"], "InProgress");
            }
            other => panic!("inconsistent outcome {other:?} in round {round}"),
        }
        assert!(awaiting(&app, &a, "v1.0").await.is_empty());
    }

    // Approve vs the deadline: advance the clock by exactly the stage's duration while
    // approving; whichever wins, the other has no effect.
    for round in 0..3 {
        let user = app.create_user(&format!("t{round}")).await;
        let id = request_access(&app, &f, &user, &policy).await;
        let sid = stage_id(&app, &id, 0).await;
        let ((approved, _), ()) = tokio::join!(approve(&app, &a, &id, &sid), advance(&app, "P2D"));
        app.drain().await;
        let (state, status) = state_of(&app, &id).await;
        if approved == StatusCode::NO_CONTENT {
            assert_eq!((state.as_str(), status.as_str()), ("delivered", "Delivered"), "round {round}");
            assert!(app.is_member(&f.group_id, &user).await);
        } else {
            assert_eq!(approved, StatusCode::CONFLICT, "round {round}");
            assert_eq!((state.as_str(), status.as_str()), ("denied", "Expired"), "round {round}");
            assert!(!app.is_member(&f.group_id, &user).await);
        }
    }

    // Exactly at the deadline without a race: the timeout wins and a decision is refused.
    let user = app.create_user("late").await;
    let id = request_access(&app, &f, &user, &policy).await;
    let sid = stage_id(&app, &id, 0).await;
    advance(&app, "P2D").await;
    let (status, body) = approve(&app, &a, &id, &sid).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    app.drain().await;
    assert_eq!(state_of(&app, &id).await, ("denied".into(), "Expired".into()));
}

fn thirty_days() -> Expiration {
    Expiration { kind: ExpirationType::AfterDuration, end_date_time: None, duration: Some(chrono::Duration::days(30)) }
}

#[tokio::test]
async fn approved_access_expires_after_thirty_days_and_scheduled_starts_wait() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let a = app.create_user("alice").await;
    let user = app.create_user("uma").await;
    let a2 = a.clone();
    let policy = approval_policy(&app, &f, vec![stage(vec![user_set(&a2)])], |p| {
        p.expiration = thirty_days();
        p.requestor_settings.allow_custom_assignment_schedule = true;
    })
    .await;
    let id = request_access(&app, &f, &user, &policy).await;
    let (status, _) = approve(&app, &a, &id, &stage_id(&app, &id, 0).await).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.drain().await;
    assert!(app.is_member(&f.group_id, &user).await);
    let asg = assignment_of(&app, &id).await;
    assert_eq!(asg["schedule"]["expiration"]["type"], "afterDuration");
    assert_eq!(asg["schedule"]["expiration"]["duration"], "P30D");
    advance(&app, "P29D").await;
    assert!(app.is_member(&f.group_id, &user).await);
    advance(&app, "P1DT1M").await;
    assert!(!app.is_member(&f.group_id, &user).await, "expired after 30 days");
    let (_, asg) = app.get(&app.admin, &format!("/v1.0/{EM}/assignments/{}", asg["id"].as_str().unwrap())).await;
    assert_eq!(asg["state"], "expired", "{asg}");
    assert!(asg["expiredDateTime"].is_string(), "{asg}");

    // A scheduled start requested with approval waits for the start after the decision.
    let later = app.create_user("later").await;
    let token = app.user_token(&later, SUBJECT_SCOPES);
    let start = (app.now() + chrono::Duration::days(3)).to_rfc3339();
    let (status, r) = app
        .post(
            &token,
            &reqs("v1.0"),
            json!({"requestType": "userAdd", "assignment": {"accessPackageId": f.package_id, "assignmentPolicyId": policy}, "justification": "soon", "schedule": {"startDateTime": start}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    let id = r["id"].as_str().unwrap().to_string();
    let (status, _) = approve(&app, &a, &id, &stage_id(&app, &id, 0).await).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.drain().await;
    assert_eq!(state_of(&app, &id).await, ("scheduled".into(), "PendingNotBefore".into()));
    assert!(!app.is_member(&f.group_id, &later).await);
    advance(&app, "P3DT1H").await;
    assert_eq!(state_of(&app, &id).await.0, "delivered");
    assert!(app.is_member(&f.group_id, &later).await);
}

#[tokio::test]
async fn extension_goes_through_approval_and_moves_the_expiry() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let a = app.create_user("alice").await;
    let user = app.create_user("uma").await;
    let a2 = a.clone();
    let policy = approval_policy(&app, &f, vec![stage(vec![user_set(&a2)])], |p| {
        p.approval.is_approval_required_for_add = false;
        p.expiration = thirty_days();
        p.requestor_settings.allow_custom_assignment_schedule = true;
    })
    .await;
    // Adds need no approval under this policy.
    let id = request_access(&app, &f, &user, &policy).await;
    assert_eq!(state_of(&app, &id).await.0, "delivered");
    let aid = assignment_of(&app, &id).await["id"].as_str().unwrap().to_string();

    // The user extends to 90 days; that waits for the approver.
    let token = app.user_token(&user, SUBJECT_SCOPES);
    let end = (app.now() + chrono::Duration::days(90)).to_rfc3339();
    let (status, r) = app
        .post(
            &token,
            &reqs("v1.0"),
            json!({"requestType": "userUpdate", "assignment": {"id": aid}, "justification": "longer", "schedule": {"expiration": {"type": "afterDateTime", "endDateTime": end}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    let ext = r["id"].as_str().unwrap().to_string();
    assert_eq!(state_of(&app, &ext).await, ("pendingApproval".into(), "PendingApproval".into()));
    let (status, _) = approve(&app, &a, &ext, &stage_id(&app, &ext, 0).await).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.drain().await;
    assert_eq!(state_of(&app, &ext).await.0, "delivered");
    let (_, asg) = app.get(&app.admin, &format!("/beta/{EM}/accessPackageAssignments/{aid}")).await;
    assert_eq!(asg["isExtended"], true, "{asg}");

    // Past the old 30-day end, access continues; past the new end it stops.
    advance(&app, "P31D").await;
    assert!(app.is_member(&f.group_id, &user).await, "the expiry moved with the extension");
    advance(&app, "P60D").await;
    assert!(!app.is_member(&f.group_id, &user).await);
    let (_, asg) = app.get(&app.admin, &format!("/v1.0/{EM}/assignments/{aid}")).await;
    assert_eq!(asg["state"], "expired");
}

#[tokio::test]
async fn a_pending_timeout_fires_once_after_a_restart() {
    let mut app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let a = app.create_user("alice").await;
    let user = app.create_user("uma").await;
    let other = app.create_user("otto").await;
    let a2 = a.clone();
    let mut s = stage(vec![user_set(&a2)]);
    s.duration_before_automatic_denial = Some(chrono::Duration::days(3));
    let policy = approval_policy(&app, &f, vec![s], |_| {}).await;
    let id = request_access(&app, &f, &user, &policy).await;
    let approved = request_access(&app, &f, &other, &policy).await;
    let (status, _) = approve(&app, &a, &approved, &stage_id(&app, &approved, 0).await).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.drain().await;
    assert_eq!(state_of(&app, &id).await.0, "pendingApproval");

    app.restart().await;
    assert_eq!(state_of(&app, &id).await.0, "pendingApproval", "the restart changes nothing by itself");
    advance(&app, "P3DT1H").await;
    app.drain().await;
    assert_eq!(state_of(&app, &id).await, ("denied".into(), "Expired".into()));
    advance(&app, "P5D").await;
    app.drain().await;
    let actions = audit_actions(&app, &id).await;
    assert_eq!(actions.iter().filter(|a| *a == "stageTimedOut").count(), 1, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| *a == "denied").count(), 1, "{actions:?}");
    let actions = audit_actions(&app, &approved).await;
    assert_eq!(actions.iter().filter(|a| *a == "delivered").count(), 1, "{actions:?}");
    let (i2, a2) = (id.clone(), approved.clone());
    let left: i64 = app
        .read(move |c| {
            c.query_one("SELECT COUNT(*) FROM jobs WHERE entity_id IN (?, ?)", &[i2.into(), a2.into()])?
                .map(|r| r.int(0))
                .transpose()
                .map(|n| n.unwrap_or(0))
        })
        .await;
    assert_eq!(left, 0, "no work left behind");
    assert!(app.is_member(&f.group_id, &other).await);
}

#[tokio::test]
async fn audit_trail_is_for_administrators_and_pages_newest_first() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let user = app.create_user("uma").await;
    app.admin_assign(&f, &user).await;
    let (status, first) = app.get(&app.admin, "/_grantry/audit?$top=2").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let events = first["value"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    for key in ["id", "at", "actorId", "entityType", "entityId", "action", "detail"] {
        assert!(events[0].get(key).is_some(), "event lacks {key}: {}", events[0]);
    }
    assert!(events[0]["at"].as_str() >= events[1]["at"].as_str());
    let next = first["@odata.nextLink"].as_str().expect("nextLink").to_string();
    let next = next.strip_prefix(&app.base).unwrap_or(&next).to_string();
    let (status, second) = app.get(&app.admin, &next).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let ids1 = TestApp::ids_of(&first);
    for id in TestApp::ids_of(&second) {
        assert!(!ids1.contains(&id));
    }

    let nobody = app.user_token_default(&user);
    let (status, _) = app.get(&nobody, "/_grantry/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let iga = app.create_user("iga").await;
    app.grant_directory_role(&iga, IGA_ROLE).await;
    let (status, _) = app.get(&app.user_token_default(&iga), "/_grantry/audit").await;
    assert_eq!(status, StatusCode::OK);
    let reader = app.app_token(&["EntitlementManagement.Read.All"]);
    let (status, _) = app.get(&reader, &format!("/_grantry/audit?entityId={}", f.package_id)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get("", "/_grantry/audit").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn beta_policy_with_duration_in_days_approved_through_steps_then_expires() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let approvers = app.create_group("approvers").await;
    let a = app.create_user("alice").await;
    app.add_member(&approvers, &a).await;
    let user = app.create_user("uma").await;
    // Shaped like the beta docs' multi-stage example (fixtures/beta_create_multistage.json).
    let (status, p) = app
        .post(
            &app.admin,
            &format!("/beta/{EM}/accessPackageAssignmentPolicies"),
            json!({
                "accessPackageId": f.package_id,
                "displayName": "Members, approved by the approvers group, 30 days",
                "canExtend": true,
                "durationInDays": 30,
                "expirationDateTime": null,
                "requestorSettings": {"scopeType": "AllExistingDirectoryMemberUsers", "acceptRequests": true, "allowedRequestors": []},
                "requestApprovalSettings": {
                    "isApprovalRequired": true,
                    "isApprovalRequiredForExtension": false,
                    "isRequestorJustificationRequired": false,
                    "approvalMode": "SingleStage",
                    "approvalStages": [{
                        "approvalStageTimeOutInDays": 14,
                        "isApproverJustificationRequired": false,
                        "isEscalationEnabled": false,
                        "primaryApprovers": [{"@odata.type": "#microsoft.graph.groupMembers", "isBackup": false, "id": approvers}]
                    }]
                }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let policy = p["id"].as_str().unwrap().to_string();
    let token = app.user_token(&user, SUBJECT_SCOPES);
    let (status, r) = app
        .post(
            &token,
            &format!("/beta/{EM}/accessPackageAssignmentRequests"),
            json!({"requestType": "UserAdd", "accessPackageAssignment": {"accessPackageId": f.package_id, "assignmentPolicyId": policy}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    let id = r["id"].as_str().unwrap().to_string();
    let atoken = app.user_token(&a, SUBJECT_SCOPES);
    let (status, b) = app.get(&atoken, &approvals("beta", &id)).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    assert_eq!(b["steps"][0]["assignedToMe"], true, "{b}");
    let step = b["steps"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = app
        .patch(
            &atoken,
            &approvals("beta", &format!("{id}/steps/{step}")),
            json!({"reviewResult": "Approve", "justification": "ok"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.drain().await;
    let (_, r) = app.get(&token, &format!("/beta/{EM}/accessPackageAssignmentRequests/{id}")).await;
    assert_eq!(r["requestState"], "Delivered", "{r}");
    let (_, completed) = app.get(&atoken, &approvals("beta", &format!("{id}/completedSteps"))).await;
    assert_eq!(TestApp::ids_of(&completed), vec![step]);
    assert!(app.is_member(&f.group_id, &user).await);
    advance(&app, "P30DT1M").await;
    assert!(!app.is_member(&f.group_id, &user).await, "durationInDays 30 ends the access");
}

#[tokio::test]
async fn user_extend_without_a_schedule_renews_for_the_policy_lifetime() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let a = app.create_user("alice").await;
    let user = app.create_user("uma").await;
    let a2 = a.clone();
    let policy = approval_policy(&app, &f, vec![stage(vec![user_set(&a2)])], |p| {
        p.approval.is_approval_required_for_add = false;
        p.expiration = thirty_days();
    })
    .await;
    let id = request_access(&app, &f, &user, &policy).await;
    assert_eq!(state_of(&app, &id).await.0, "delivered");
    advance(&app, "P20D").await;
    let token = app.user_token(&user, SUBJECT_SCOPES);
    let (status, r) = app
        .post(
            &token,
            &format!("/beta/{EM}/accessPackageAssignmentRequests"),
            json!({"requestType": "UserExtend", "accessPackageAssignment": {"targetId": user, "assignmentPolicyId": policy, "accessPackageId": f.package_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    let ext = r["id"].as_str().unwrap().to_string();
    assert_eq!(state_of(&app, &ext).await.0, "pendingApproval");
    let (status, _) = approve(&app, &a, &ext, &stage_id(&app, &ext, 0).await).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.drain().await;
    advance(&app, "P11D").await;
    assert!(app.is_member(&f.group_id, &user).await, "renewed for 30 days from the extension");
    advance(&app, "P20D").await;
    assert!(!app.is_member(&f.group_id, &user).await);
}
