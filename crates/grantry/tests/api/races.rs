//! Concurrency races, many rounds each, on a multi-threaded runtime: identical requests,
//! approve vs deny, approve vs cancel, approve vs the stage deadline, adminRemove vs
//! expiry, two adminRemoves. After every round the database invariants
//! (`invariants::CHECKS`) must hold and every request must end in exactly one final state.
//!
//! Bounded: `GRANTRY_RACE_ROUNDS` rounds per race (default 10).

use crate::helpers::*;
use crate::invariants::assert_holds;
use grantry_domain::enums::{AllowedTargetScope, ApproverInformationVisibility, ExpirationType};
use grantry_domain::model::{ApprovalStage, Expiration, SubjectSet};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn rounds() -> usize {
    std::env::var("GRANTRY_RACE_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10)
}

fn reqs() -> String {
    format!("/v1.0/{EM}/assignmentRequests")
}

fn stage(approvers: &[&str], days: i64) -> ApprovalStage {
    ApprovalStage {
        duration_before_automatic_denial: Some(chrono::Duration::days(days)),
        duration_before_escalation: None,
        is_approver_justification_required: false,
        is_escalation_enabled: false,
        primary_approvers: approvers
            .iter()
            .map(|a| SubjectSet::SingleUser { user_id: Some(a.to_string()), description: None })
            .collect(),
        fallback_primary_approvers: vec![],
        escalation_approvers: vec![],
        fallback_escalation_approvers: vec![],
        approver_information_visibility: ApproverInformationVisibility::Default,
        is_dynamic: false,
    }
}

async fn approval_policy(app: &TestApp, f: &Fixture, approvers: &[&str], days: i64) -> String {
    let s = stage(approvers, days);
    app.seed_policy(f, AllowedTargetScope::AllMemberUsers, move |p| {
        p.requestor_settings.enable_targets_to_self_add_access = true;
        p.approval.is_approval_required_for_add = true;
        p.approval.stages = vec![s];
    })
    .await
}

/// `user` asks through `policy`; returns the request id once it waits for approval.
async fn ask(app: &TestApp, f: &Fixture, user: &str, policy: &str) -> String {
    let token = app.user_token(user, SUBJECT_SCOPES);
    let (status, r) = app
        .post(&token, &reqs(), json!({"requestType": "userAdd", "assignment": {"accessPackageId": f.package_id, "assignmentPolicyId": policy}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(state_of(app, &id).await.0, "pendingApproval");
    id
}

async fn state_of(app: &TestApp, id: &str) -> (String, String) {
    let (status, r) = app.get(&app.admin, &format!("{}/{id}", reqs())).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    (r["state"].as_str().unwrap().to_string(), r["status"].as_str().unwrap().to_string())
}

async fn stage_id(app: &TestApp, id: &str) -> String {
    let (_, a) = app.get(&app.admin, &format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{id}")).await;
    a["stages"][0]["id"].as_str().unwrap_or_else(|| panic!("no stage: {a}")).to_string()
}

async fn decide(app: &TestApp, approver: &str, id: &str, sid: &str, result: &str) -> StatusCode {
    let token = app.user_token(approver, SUBJECT_SCOPES);
    let path = format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{id}/stages/{sid}");
    let (status, body) = app.patch(&token, &path, json!({"reviewResult": result, "justification": "race"})).await;
    assert!(!status.is_server_error(), "{body}");
    status
}

async fn advance(app: &TestApp, duration: &str) {
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": duration })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn admin_add(f: &Fixture, policy: &str, user: &str) -> Value {
    json!({"requestType": "adminAdd", "assignment": {"targetId": user, "assignmentPolicyId": policy, "accessPackageId": f.package_id}})
}

/// No request of the package is left open once due work has run.
async fn all_final(app: &TestApp, f: &Fixture, context: &str) {
    let p = f.package_id.clone();
    let open: i64 = app
        .read(move |c| {
            c.query_one(
                "SELECT COUNT(*) FROM requests WHERE access_package_id = ? AND state IN ('submitted', 'delivering')",
                &[p.into()],
            )?
            .map(|r| r.int(0))
            .transpose()
            .map(|n| n.unwrap_or(0))
        })
        .await;
    assert_eq!(open, 0, "{context}: requests left open after draining");
}

async fn active_assignments(app: &TestApp, f: &Fixture, user: &str) -> i64 {
    let (p, u) = (f.package_id.clone(), user.to_string());
    app.read(move |c| {
        c.query_one(
            "SELECT COUNT(*) FROM assignments a JOIN subjects s ON s.id = a.target_subject_id WHERE a.access_package_id = ? AND s.object_id = ? AND a.active = 1",
            &[p.into(), u.into()],
        )?
        .map(|r| r.int(0))
        .transpose()
        .map(|n| n.unwrap_or(0))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_concurrent_requests_create_one() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    for round in 0..rounds() {
        let user = app.create_user(&format!("dup{round}")).await;
        let body = admin_add(&f, &f.admin_policy_id, &user);
        let path = reqs();
        let answers = futures_util::future::join_all((0..8).map(|_| app.post(&app.admin, &path, body.clone()))).await;
        let created = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
        assert_eq!(created, 1, "round {round}: {answers:?}");
        for (s, b) in &answers {
            if *s != StatusCode::CREATED {
                assert_eq!(*s, StatusCode::CONFLICT, "round {round}: {b}");
                let code = b["error"]["code"].as_str().unwrap_or_default();
                assert!(["ExistingOpenRequest", "TargetAlreadyAssigned"].contains(&code), "round {round}: {b}");
            }
        }
        app.drain().await;
        assert_eq!(active_assignments(&app, &f, &user).await, 1, "round {round}");
        assert!(app.is_member(&f.group_id, &user).await);
        all_final(&app, &f, &format!("round {round}")).await;
        assert_holds(&app, &format!("identical requests, round {round}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_races_deny_cancel_and_the_deadline() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let a = app.create_user("alice").await;
    let b = app.create_user("bob").await;
    let policy = approval_policy(&app, &f, &[&a, &b], 2).await;
    for round in 0..rounds() {
        // Approve vs deny by two approvers: one decision wins, the other gets 409.
        let user = app.create_user(&format!("ad{round}")).await;
        let id = ask(&app, &f, &user, &policy).await;
        let sid = stage_id(&app, &id).await;
        let (s1, s2) = tokio::join!(decide(&app, &a, &id, &sid, "Approve"), decide(&app, &b, &id, &sid, "Deny"));
        let mut got = [s1, s2];
        got.sort();
        assert_eq!(got, [StatusCode::NO_CONTENT, StatusCode::CONFLICT], "approve/deny round {round}");
        app.drain().await;
        let expected = if s1 == StatusCode::NO_CONTENT { "delivered" } else { "denied" };
        assert_eq!(state_of(&app, &id).await.0, expected, "approve/deny round {round}");
        assert_eq!(app.is_member(&f.group_id, &user).await, expected == "delivered");

        // Approve vs cancel by the requestor.
        let user = app.create_user(&format!("ac{round}")).await;
        let id = ask(&app, &f, &user, &policy).await;
        let sid = stage_id(&app, &id).await;
        let token = app.user_token(&user, SUBJECT_SCOPES);
        let cancel = format!("{}/{id}/cancel", reqs());
        let (approved, (canceled, body)) =
            tokio::join!(decide(&app, &a, &id, &sid, "Approve"), app.post(&token, &cancel, json!({})));
        assert!(!canceled.is_server_error(), "{body}");
        app.drain().await;
        let state = state_of(&app, &id).await.0;
        match (approved, canceled) {
            (StatusCode::NO_CONTENT, StatusCode::BAD_REQUEST) => assert_eq!(state, "delivered"),
            (StatusCode::CONFLICT, StatusCode::NO_CONTENT) => assert_eq!(state, "canceled"),
            other => panic!("approve/cancel round {round}: both or neither won: {other:?}"),
        }
        assert_eq!(app.is_member(&f.group_id, &user).await, state == "delivered");

        // Approve vs the clock reaching the stage's deadline.
        let user = app.create_user(&format!("at{round}")).await;
        let id = ask(&app, &f, &user, &policy).await;
        let sid = stage_id(&app, &id).await;
        let (approved, ()) = tokio::join!(decide(&app, &a, &id, &sid, "Approve"), advance(&app, "P2D"));
        app.drain().await;
        let (state, status) = state_of(&app, &id).await;
        if approved == StatusCode::NO_CONTENT {
            assert_eq!((state.as_str(), status.as_str()), ("delivered", "Delivered"), "approve/timeout round {round}");
        } else {
            assert_eq!(approved, StatusCode::CONFLICT, "approve/timeout round {round}");
            assert_eq!((state.as_str(), status.as_str()), ("denied", "Expired"), "approve/timeout round {round}");
        }
        assert_eq!(app.is_member(&f.group_id, &user).await, state == "delivered");

        all_final(&app, &f, &format!("approval races, round {round}")).await;
        assert_holds(&app, &format!("approval races, round {round}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removals_race_expiry_and_each_other() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let one_day = app
        .seed_policy(&f, AllowedTargetScope::NotSpecified, |p| {
            p.expiration = Expiration {
                kind: ExpirationType::AfterDuration,
                end_date_time: None,
                duration: Some(chrono::Duration::days(1)),
            };
        })
        .await;
    for round in 0..rounds() {
        // adminRemove vs expiry. Every other round the target is also a direct member,
        // which must survive the end of the assignment.
        let user = app.create_user(&format!("rx{round}")).await;
        let direct = round % 2 == 1;
        if direct {
            app.add_member(&f.group_id, &user).await;
        }
        let (status, r) = app.post(&app.admin, &reqs(), admin_add(&f, &one_day, &user)).await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
        app.drain().await;
        let (_, r) = app.get(&app.admin, &format!("{}/{}?$expand=assignment", reqs(), r["id"].as_str().unwrap())).await;
        let aid = r["assignment"]["id"].as_str().unwrap_or_else(|| panic!("not delivered: {r}")).to_string();
        let remove = json!({"requestType": "adminRemove", "assignment": {"id": aid}});
        let path = reqs();
        let ((removed, body), ()) = tokio::join!(app.post(&app.admin, &path, remove.clone()), advance(&app, "P1D"));
        assert!(!removed.is_server_error(), "{body}");
        app.drain().await;
        let (_, a) = app.get(&app.admin, &format!("/v1.0/{EM}/assignments/{aid}")).await;
        assert_eq!(a["state"], "expired", "remove/expiry round {round}: {a}");
        assert_eq!(app.is_member(&f.group_id, &user).await, direct, "remove/expiry round {round}");
        let (_, audit) = app.get(&app.admin, &format!("/_grantry/audit?entityId={aid}")).await;
        let ended = audit["value"].as_array().unwrap().iter().filter(|e| e["action"] == "expired").count();
        assert_eq!(ended, 1, "remove/expiry round {round}: the assignment ended {ended} times: {audit}");

        // Two adminRemoves at once: one is accepted, the other refused.
        let user = app.create_user(&format!("rr{round}")).await;
        let (_, aid) = app.admin_assign(&f, &user).await;
        let remove = json!({"requestType": "adminRemove", "assignment": {"id": aid}});
        let path = reqs();
        let answers = futures_util::future::join_all((0..2).map(|_| app.post(&app.admin, &path, remove.clone()))).await;
        let accepted = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
        assert_eq!(accepted, 1, "two removes round {round}: {answers:?}");
        assert!(answers.iter().all(|(s, _)| !s.is_server_error()), "{answers:?}");
        app.drain().await;
        assert!(!app.is_member(&f.group_id, &user).await, "two removes round {round}");
        assert_eq!(active_assignments(&app, &f, &user).await, 0);

        all_final(&app, &f, &format!("removal races, round {round}")).await;
        assert_holds(&app, &format!("removal races, round {round}")).await;
    }
}
