//! Automatic assignment policies: a membership rule assigns the package to the users it
//! matches and removes it (after the grace period) from those who stop matching, when the
//! policy is created or changed and whenever a user is created, updated or deleted.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const POLICIES: &str = "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies";

fn auto_policy(package_id: &str, rule: &str, remove: bool, grace: Option<&str>) -> Value {
    let mut settings = json!({
        "requestAccessForAllowedTargets": true,
        "removeAccessWhenTargetLeavesAllowedTargets": remove,
    });
    if let Some(g) = grace {
        settings["gracePeriodBeforeAccessRemoval"] = json!(g);
    }
    json!({
        "displayName": "Sales automatic",
        "description": "Everyone in Sales",
        "allowedTargetScope": "specificDirectoryUsers",
        "specificAllowedTargets": [{
            "@odata.type": "#microsoft.graph.attributeRuleMembers",
            "description": "Sales",
            "membershipRule": rule,
        }],
        "automaticRequestSettings": settings,
        "accessPackage": { "id": package_id },
    })
}

async fn user_with(app: &TestApp, name: &str, extra: Value) -> String {
    let mut body = json!({ "displayName": name, "userPrincipalName": format!("{name}@contoso.com") });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let (status, created) = app.post(&app.admin, "/v1.0/users", body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_string()
}

async fn patch_user(app: &TestApp, id: &str, body: Value) {
    let (status, b) = app.patch(&app.admin, &format!("/v1.0/users/{id}"), body).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{b}");
}

async fn advance(app: &TestApp, duration: &str) {
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": duration })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Whether `user_id` holds an active assignment made through `policy_id`.
async fn assigned(app: &TestApp, policy_id: &str, user_id: &str) -> bool {
    let (p, u) = (policy_id.to_string(), user_id.to_string());
    app.read(move |c| {
        Ok(c.query_one(
            "SELECT 1 FROM assignments a JOIN subjects s ON s.id = a.target_subject_id WHERE a.policy_id = ? AND a.active = 1 AND s.object_id = ?",
            &[p.into(), u.into()],
        )?
        .is_some())
    })
    .await
}

async fn active_count(app: &TestApp, policy_id: &str) -> i64 {
    let p = policy_id.to_string();
    app.read(move |c| grantry_store::repo::count(c, "assignments", "policy_id = ? AND active = 1", &[p.into()])).await
}

/// The request types recorded for the user's subject and the package, oldest first.
async fn request_types(app: &TestApp, package_id: &str, user_id: &str) -> Vec<String> {
    let (p, u) = (package_id.to_string(), user_id.to_string());
    app.read(move |c| {
        let rows = c.query(
            "SELECT r.request_type FROM requests r JOIN subjects s ON s.id = r.target_subject_id WHERE r.access_package_id = ? AND s.object_id = ? ORDER BY r.seq",
            &[p.into(), u.into()],
        )?;
        rows.iter().map(|r| r.text(0)).collect()
    })
    .await
}

async fn create_policy(app: &TestApp, body: Value) -> String {
    let (status, created) = app.post(&app.admin, POLICIES, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn matching_users_are_assigned_and_leavers_lose_access_after_the_grace_period() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let alice = user_with(&app, "alice", json!({ "department": "Sales", "country": "FR" })).await;
    let bob = user_with(&app, "bob", json!({ "department": "HR" })).await;
    let carol = user_with(&app, "carol", json!({ "department": "Sales", "jobTitle": "Intern" })).await;
    let rule = r#"(user.department -eq "Sales") -and -not (user.jobTitle -startsWith "Intern")"#;
    let policy = create_policy(&app, auto_policy(&f.package_id, rule, true, Some("P1D"))).await;

    // The policy reads back as written.
    let (_, p) = app.get(&app.admin, &format!("{POLICIES}/{policy}")).await;
    assert_eq!(p["specificAllowedTargets"][0]["membershipRule"], rule, "{p}");
    assert_eq!(p["automaticRequestSettings"]["gracePeriodBeforeAccessRemoval"], "P1D", "{p}");

    app.drain().await;
    assert!(assigned(&app, &policy, &alice).await);
    assert!(!assigned(&app, &policy, &bob).await);
    assert!(!assigned(&app, &policy, &carol).await);
    assert!(app.is_member(&f.group_id, &alice).await, "the package's group membership is delivered");
    assert_eq!(request_types(&app, &f.package_id, &alice).await, ["systemAdd"]);

    // A new user who matches is assigned; a change that makes a user match assigns them.
    let dave = user_with(&app, "dave", json!({ "department": "sales" })).await;
    patch_user(&app, &bob, json!({ "department": "Sales" })).await;
    app.drain().await;
    assert!(assigned(&app, &policy, &dave).await, "values compare without case");
    assert!(assigned(&app, &policy, &bob).await);

    // Alice leaves Sales: her access stays for the grace period, then goes.
    patch_user(&app, &alice, json!({ "department": "HR" })).await;
    app.drain().await;
    assert!(assigned(&app, &policy, &alice).await, "within the grace period");
    advance(&app, "PT23H").await;
    assert!(assigned(&app, &policy, &alice).await, "within the grace period");
    advance(&app, "PT2H").await;
    assert!(!assigned(&app, &policy, &alice).await, "removed once the grace period is over");
    assert!(!app.is_member(&f.group_id, &alice).await, "membership revoked");
    assert_eq!(request_types(&app, &f.package_id, &alice).await, ["systemAdd", "systemRemove"]);

    // Dave leaves the rule and comes back within the grace period: he keeps his access.
    patch_user(&app, &dave, json!({ "jobTitle": "Intern" })).await;
    app.drain().await;
    advance(&app, "PT12H").await;
    patch_user(&app, &dave, json!({ "jobTitle": null })).await;
    app.drain().await;
    advance(&app, "P2D").await;
    assert!(assigned(&app, &policy, &dave).await, "back in scope before the grace period ended");
    assert_eq!(request_types(&app, &f.package_id, &dave).await, ["systemAdd"]);

    // A deleted user's access ends at once.
    let (status, _) = app.delete(&app.admin, &format!("/v1.0/users/{bob}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    app.drain().await;
    assert!(!assigned(&app, &policy, &bob).await);
}

#[tokio::test]
async fn a_changed_rule_converges_and_removal_follows_the_policy() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let sales = user_with(&app, "sam", json!({ "department": "Sales", "city": "Paris" })).await;
    let hr = user_with(&app, "hana", json!({ "department": "HR", "city": "Lyon" })).await;
    let body = auto_policy(&f.package_id, r#"user.department -eq "Sales""#, false, None);
    let policy = create_policy(&app, body.clone()).await;
    app.drain().await;
    assert!(assigned(&app, &policy, &sales).await);

    // The rule changes; without removeAccessWhenTargetLeavesAllowedTargets leavers keep
    // their access.
    let mut replaced = auto_policy(&f.package_id, r#"user.city -in ["Lyon", "Nice"]"#, false, None);
    replaced["id"] = json!(policy);
    let (status, b) = app.put(&app.admin, &format!("{POLICIES}/{policy}"), replaced.clone()).await;
    assert!(status.is_success(), "{b}");
    app.drain().await;
    assert!(assigned(&app, &policy, &hr).await);
    assert!(assigned(&app, &policy, &sales).await, "removal is off");

    // With removal on and no grace period, access goes as soon as the policy changes.
    replaced["automaticRequestSettings"]["removeAccessWhenTargetLeavesAllowedTargets"] = json!(true);
    let (status, b) = app.put(&app.admin, &format!("{POLICIES}/{policy}"), replaced).await;
    assert!(status.is_success(), "{b}");
    app.drain().await;
    assert!(!assigned(&app, &policy, &sales).await);
    assert!(assigned(&app, &policy, &hr).await);

    // The rule also decides who may request through the policy: the others are refused.
    let (status, body) = app.get(&app.admin, &format!("{POLICIES}/{policy}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A package has one automatic policy.
    let (status, second) =
        app.post(&app.admin, POLICIES, auto_policy(&f.package_id, "user.city -eq \"Nice\"", true, None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{second}");
    assert_error(&second, "InvalidPolicy");
    assert!(
        second["error"]["message"].as_str().unwrap().contains("already has an automatic assignment policy"),
        "{second}"
    );
}

#[tokio::test]
async fn an_invalid_rule_is_refused_with_its_position() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let (status, body) = app
        .post(&app.admin, POLICIES, auto_policy(&f.package_id, r#"(user.department -eqq "Sales")"#, true, None))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "InvalidPolicy");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("at position 18"), "{message}");
    assert!(message.contains("'-eqq' is not a comparison operator"), "{message}");
    assert_eq!(body["error"]["target"], "specificAllowedTargets[0].membershipRule", "{body}");

    let (status, body) =
        app.post(&app.admin, POLICIES, auto_policy(&f.package_id, r#"user.departmnt -eq "Sales""#, true, None)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("'departmnt' is not a user property"), "{body}");

    // Automatic assignment needs exactly one rule as its allowed targets.
    let mut no_rule = auto_policy(&f.package_id, "user.city -eq \"x\"", true, None);
    no_rule["specificAllowedTargets"] =
        json!([{ "@odata.type": "#microsoft.graph.singleUser", "userId": grantry_domain::ids::new_id() }]);
    let (status, body) = app.post(&app.admin, POLICIES, no_rule).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "InvalidPolicy");

    // Nothing was stored.
    let p = f.package_id.clone();
    let n =
        app.read(move |c| grantry_store::repo::count(c, "auto_policies", "access_package_id = ?", &[p.into()])).await;
    assert_eq!(n, 0);
}

#[tokio::test]
async fn many_matching_users_converge_in_bounded_steps() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let total = grantry_core::autoassign::CHANGES * 2 + 30;
    let now = app.now();
    app.seed(move |c| {
        for i in 0..total {
            let profile =
                grantry_domain::model::UserProfile { company_name: Some("Contoso".into()), ..Default::default() };
            let u = grantry_domain::model::User {
                id: grantry_domain::ids::new_id(),
                display_name: format!("user {i}"),
                user_principal_name: format!("bulk{i}@contoso.com"),
                mail: None,
                given_name: None,
                surname: None,
                job_title: None,
                department: Some(if i % 10 == 0 { "HR" } else { "Sales" }.into()),
                mail_nickname: None,
                user_type: grantry_domain::enums::UserType::Member,
                account_enabled: true,
                manager_id: None,
                external_user_state: None,
                profile: Box::new(profile),
                created_date_time: now,
            };
            grantry_store::repo::insert(c, &u)?;
        }
        Ok(())
    })
    .await;
    let rule = r#"user.department -eq "Sales" -and user.companyName -eq "Contoso""#;
    let policy = create_policy(&app, auto_policy(&f.package_id, rule, true, None)).await;
    let expected = (total - total.div_ceil(10)) as i64;

    // One run of the job makes at most CHANGES assignments, then schedules the rest.
    grantry_core::jobs::run_batch(&app.state().app).await.expect("one batch");
    assert_eq!(active_count(&app, &policy).await, grantry_core::autoassign::CHANGES as i64);
    // A foreground write between two steps is not held up by the rest.
    let (status, body) =
        app.post(&app.admin, "/v1.0/users", json!({ "displayName": "late", "userPrincipalName": "late@contoso.com", "department": "Sales", "companyName": "Contoso" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    assert_eq!(active_count(&app, &policy).await, expected + 1);
}
