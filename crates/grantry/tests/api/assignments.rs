//! Assignments: reads in both dialects, $expand, additionalAccess, reprocess, and the
//! end-user package functions.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn read_expand_additional_access_and_reprocess() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let g = app.seed_package_with_group().await;
    let both = app.create_user("both").await;
    let one = app.create_user("one").await;
    let (_, a_both) = app.admin_assign(&f, &both).await;
    app.admin_assign(&g, &both).await;
    app.admin_assign(&f, &one).await;

    let (status, a) = app
        .get(&app.admin, &format!("/v1.0/{EM}/assignments/{a_both}?$expand=target,accessPackage,assignmentPolicy"))
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["state"], "delivered");
    assert_eq!(a["status"], "Delivered");
    assert_eq!(a["target"]["objectId"], both);
    assert_eq!(a["accessPackage"]["id"], f.package_id);
    assert_eq!(a["assignmentPolicy"]["id"], f.admin_policy_id);
    assert!(a.get("assignmentState").is_none());
    let (_, a) = app
        .get(
            &app.admin,
            &format!("/beta/{EM}/accessPackageAssignments/{a_both}?$expand=accessPackageAssignmentPolicy,target"),
        )
        .await;
    assert_eq!(a["assignmentState"], "Delivered");
    assert_eq!(a["accessPackageAssignmentPolicy"]["id"], f.admin_policy_id);
    assert_eq!(a["target"]["type"], "User");

    let (status, list) = app
        .get(
            &app.admin,
            &format!("/v1.0/{EM}/assignments/additionalAccess(accessPackageId='{}',incompatibleAccessPackageId='{}')?$expand=target", f.package_id, g.package_id),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert_eq!(list["value"][0]["target"]["objectId"], both);
    let (status, _) = app
        .get(
            &app.admin,
            &format!(
                "/v1.0/{EM}/assignments/additionalAccess(accessPackageId='{0}',incompatibleAccessPackageId='{0}')",
                f.package_id
            ),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Reprocess re-adds a membership removed behind the assignment's back, once.
    let (gid, uid) = (f.group_id.clone(), both.clone());
    app.seed(move |c| {
        c.execute(
            "DELETE FROM group_links WHERE group_id = ? AND member_id = ?",
            &[gid.as_str().into(), uid.as_str().into()],
        )
        .map(|_| ())
    })
    .await;
    assert!(!app.is_member(&f.group_id, &both).await);
    for _ in 0..2 {
        let (status, _) =
            app.post(&app.admin, &format!("/v1.0/{EM}/accessPackageAssignments/{a_both}/reprocess"), json!({})).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    assert!(app.is_member(&f.group_id, &both).await);
    let (gid, uid) = (f.group_id.clone(), both.clone());
    let granted: i64 = app
        .read(move |c| {
            c.query_one(
                "SELECT granted FROM group_links WHERE group_id = ? AND member_id = ?",
                &[gid.as_str().into(), uid.as_str().into()],
            )?
            .unwrap()
            .int(0)
        })
        .await;
    assert_eq!(granted, 1);
    let (status, _) = app
        .post(&app.admin, &format!("/v1.0/{EM}/assignments/00000000-0000-0000-0000-000000000001/reprocess"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Beta My() and the v1 list seen by the target.
    let token = app.user_token(&one, SUBJECT_SCOPES);
    let (_, mine) = app.get(&token, &format!("/beta/{EM}/accessPackageAssignments/My()")).await;
    assert_eq!(mine["value"].as_array().unwrap().len(), 1, "{mine}");
    let (_, all) = app.get(&token, &format!("/v1.0/{EM}/assignments")).await;
    assert_eq!(all["value"].as_array().unwrap().len(), 1, "only their own: {all}");
    let (status, _) = app.get(&token, &format!("/v1.0/{EM}/assignments/{a_both}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn applicable_policy_requirements_and_allowed_packages() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let user = app.create_user("asker").await;
    let token = app.user_token(&user, SUBJECT_SCOPES);
    for root in ["v1.0", "beta"] {
        let (status, body) = app
            .post(
                &token,
                &format!("/{root}/{EM}/accessPackages/{}/getApplicablePolicyRequirements", f.package_id),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let value = body["value"].as_array().unwrap();
        assert_eq!(value.len(), 1, "only the self-service policy: {body}");
        assert_eq!(value[0]["policyId"], f.self_policy_id);
        if root == "v1.0" {
            assert_eq!(value[0]["isApprovalRequiredForAdd"], false);
            assert_eq!(value[0]["allowCustomAssignmentSchedule"], false);
        } else {
            assert_eq!(value[0]["isApprovalRequired"], false);
            assert_eq!(value[0]["isCustomAssignmentScheduleAllowed"], false);
        }
    }
    let (status, _) = app
        .post(
            &app.admin,
            &format!("/v1.0/{EM}/accessPackages/{}/getApplicablePolicyRequirements", f.package_id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, list) =
        app.get(&token, &format!("/v1.0/{EM}/accessPackages/filterByCurrentUser(on='allowedRequestor')")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    assert_eq!(list["value"][0]["id"], f.package_id);
}
