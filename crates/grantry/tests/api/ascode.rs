//! Access as code: `grantry export`, `plan` and `apply` against running servers over the
//! Graph API — a round trip into an empty server, a narrowed policy's plan naming exactly
//! who loses access, a stale plan refused, and bad files refused with their line.

use crate::crash::bin;
use crate::helpers::{EM, TestApp};
use grantry::ascode::{self, Graph};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn quiet(_: &str) {}

fn graph(app: &TestApp) -> Graph {
    Graph::with_token(&app.base, &app.admin).expect("client")
}

/// The same people in every server: users by UPN, groups by name.
async fn directory(app: &TestApp) -> Vec<String> {
    let mut users = Vec::new();
    for name in ["alice", "bob", "carol", "dave"] {
        users.push(app.create_user(name).await);
    }
    let sales = app.create_group("Sales team").await;
    app.create_group("Support team").await;
    app.create_group("Auditors").await;
    for u in &users[..2] {
        app.add_member(&sales, u).await;
    }
    users
}

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, created) = app.post(&app.admin, &format!("/v1.0/{EM}/{path}"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {created}");
    created
}

fn single_user(id: &str) -> Value {
    json!({ "@odata.type": "#microsoft.graph.singleUser", "userId": id })
}

/// A governance configuration with something of every kind, made through the API.
async fn configure(app: &TestApp, users: &[String]) -> (String, String) {
    let group_id = |name: &str| {
        let name = name.to_string();
        async move {
            let (_, groups) = app.get(&app.admin, &format!("/v1.0/groups?$filter=displayName eq '{name}'")).await;
            groups["value"][0]["id"].as_str().unwrap().to_string()
        }
    };
    let sales = group_id("Sales team").await;
    let support = group_id("Support team").await;
    let catalog = app.create_catalog("Marketing").await;
    let sales_resource = app.add_group_resource(&catalog, &sales).await;
    let support_resource = app.add_group_resource(&catalog, &support).await;
    let extension = app
        .create_extension(
            &catalog,
            "accessPackageAssignmentRequestWorkflowExtension",
            json!({ "displayName": "Notify HR" }),
        )
        .await;
    let package = app.create_package(&catalog, "Sales access").await;
    app.add_member_role_scope(&package, &sales_resource, &sales).await;
    let other = app.create_package(&catalog, "Support access").await;
    app.add_member_role_scope(&other, &support_resource, &support).await;
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/v1.0/{EM}/accessPackages/{package}/incompatibleAccessPackages/$ref"),
            json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/{EM}/accessPackages/{other}") }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let auditors = group_id("Auditors").await;
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/v1.0/{EM}/accessPackages/{package}/incompatibleGroups/$ref"),
            json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/groups/{auditors}") }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let policy = post(
        app,
        "assignmentPolicies",
        json!({
            "displayName": "Sales staff",
            "description": "named people, one approval stage",
            "accessPackage": { "id": package },
            "allowedTargetScope": "specificDirectoryUsers",
            "specificAllowedTargets": [single_user(&users[0]), single_user(&users[1]), single_user(&users[2])],
            "expiration": { "type": "afterDuration", "duration": "P90D" },
            "requestorSettings": { "enableTargetsToSelfAddAccess": true, "enableTargetsToSelfRemoveAccess": true },
            "requestApprovalSettings": {
                "isApprovalRequiredForAdd": true,
                "isApprovalRequiredForUpdate": false,
                "stages": [{
                    "durationBeforeAutomaticDenial": "P7D",
                    "isApproverJustificationRequired": true,
                    "isEscalationEnabled": false,
                    "durationBeforeEscalation": "PT0S",
                    "primaryApprovers": [single_user(&users[3])],
                    "fallbackPrimaryApprovers": [{ "@odata.type": "#microsoft.graph.groupMembers", "groupId": sales }],
                    "escalationApprovers": [],
                    "fallbackEscalationApprovers": []
                }]
            },
            "questions": [{
                "@odata.type": "#microsoft.graph.accessPackageTextInputQuestion",
                "sequence": 1,
                "isRequired": true,
                "isAnswerEditable": true,
                "isSingleLineQuestion": true,
                "text": "Why do you need access?"
            }],
            "customExtensionStageSettings": [{ "stage": "assignmentRequestCreated", "customExtension": { "id": extension["id"] } }]
        }),
    )
    .await;
    post(
        app,
        "assignmentPolicies",
        json!({ "displayName": "Administrators only", "accessPackage": { "id": other }, "allowedTargetScope": "notSpecified" }),
    )
    .await;
    // A connected organization with sponsors, and a policy for its users.
    let org = post(
        app,
        "connectedOrganizations",
        json!({ "displayName": "Fabrikam", "description": "Partner", "state": "configured",
                "identitySources": [{ "@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "fabrikam.com", "displayName": "Fabrikam" }] }),
    )
    .await;
    let org = org["id"].as_str().unwrap().to_string();
    for (list, set, id) in
        [("internalSponsors", "users", users[0].clone()), ("externalSponsors", "groups", support.clone())]
    {
        let (status, body) = app
            .post(
                &app.admin,
                &format!("/v1.0/{EM}/connectedOrganizations/{org}/{list}/$ref"),
                json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/{set}/{id}") }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    post(
        app,
        "assignmentPolicies",
        json!({ "displayName": "Partners", "accessPackage": { "id": other }, "allowedTargetScope": "specificConnectedOrganizationUsers",
                "specificAllowedTargets": [{ "@odata.type": "#microsoft.graph.connectedOrganizationMembers", "connectedOrganizationId": org }],
                "requestorSettings": { "enableTargetsToSelfAddAccess": true } }),
    )
    .await;
    (package, policy["id"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn export_apply_into_an_empty_server_then_export_gives_the_same_file() {
    let source = TestApp::spawn().await;
    let users = directory(&source).await;
    configure(&source, &users).await;
    let exported = ascode::export(&graph(&source), &quiet).await.expect("export").yaml;
    for expected in [
        "Marketing:",
        "Sales access:",
        "Sales staff:",
        "user: alice@contoso.com",
        "group: Sales team",
        "customExtension: Notify HR",
        "Why do you need access?",
        "accessPackage: Support access",
        "role: Member",
        "connectedOrganizations:",
        "domainName: fabrikam.com",
        "connectedOrganization: Fabrikam",
        "internalSponsors:",
        "- group: Support team",
    ] {
        assert!(exported.contains(expected), "{expected} missing from:\n{exported}");
    }
    // Ids stay aside: the file names things only; unset values are left out.
    assert!(!exported.contains(&users[0]), "{exported}");
    assert!(!exported.contains("null"), "{exported}");

    // An empty server with the same people.
    let target = TestApp::spawn().await;
    directory(&target).await;
    let g = graph(&target);
    let plan = ascode::plan(&g, "access.yaml", &exported, &quiet).await.expect("plan");
    assert!(
        plan.steps.iter().any(|s| s.describe() == "+ policy 'Marketing / Sales access / Sales staff'"),
        "{}",
        plan.render("")
    );
    let (_, applied) = ascode::apply(&g, "access.yaml", &exported, Some(&plan.id), &quiet).await.expect("apply");
    assert_eq!(applied.done.len(), plan.steps.len());
    let again = ascode::export(&g, &quiet).await.expect("export").yaml;
    assert_eq!(again, exported, "the target's export differs from the file applied to it");
    // And nothing is left to do.
    let replan = ascode::plan(&g, "access.yaml", &exported, &quiet).await.expect("plan");
    assert!(replan.steps.is_empty(), "{}", replan.render(""));
}

/// Delivers an adminAdd of `user` through `policy`.
async fn assign(app: &TestApp, package: &str, policy: &str, user: &str) {
    post(
        app,
        "assignmentRequests",
        json!({ "requestType": "adminAdd", "assignment": { "targetId": user, "assignmentPolicyId": policy, "accessPackageId": package } }),
    )
    .await;
}

async fn assignees(app: &TestApp, policy: &str) -> Vec<String> {
    let (status, body) = app
        .get(&app.admin, &format!("/v1.0/{EM}/assignments?$filter=assignmentPolicy/id eq '{policy}' and state eq 'delivered'&$expand=target"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut ids: Vec<String> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["target"]["objectId"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_narrowed_policy_plans_the_removal_of_exactly_those_who_lose_access_and_apply_removes_them() {
    let app = TestApp::spawn().await;
    let users = directory(&app).await;
    let (package, policy) = configure(&app, &users).await;
    for u in &users[..3] {
        assign(&app, &package, &policy, u).await;
    }
    app.drain().await;
    let mut all = users[..3].to_vec();
    all.sort();
    assert_eq!(assignees(&app, &policy).await, all);

    let g = graph(&app);
    let exported = ascode::export(&g, &quiet).await.unwrap().yaml;
    // Only alice stays allowed.
    let mut doc = ascode::plan::parse("access.yaml", &exported).expect("the export parses");
    let staff = doc.catalogs.get_mut("Marketing").unwrap().access_packages.get_mut("Sales access").unwrap();
    let staff = staff.policies.get_mut("Sales staff").unwrap();
    staff.specific_allowed_targets.as_mut().unwrap().retain(|t| t["user"] == "alice@contoso.com");
    let narrowed = ascode::document::to_yaml(&doc).unwrap();
    assert_ne!(narrowed, exported);
    let plan = ascode::plan(&g, "access.yaml", &narrowed, &quiet).await.expect("plan");
    let shown = plan.render(&app.base);
    assert!(
        shown.contains("~ policy 'Marketing / Sales access / Sales staff': specificAllowedTargets changed"),
        "{shown}"
    );
    assert!(shown.contains("scope narrowed, 2 assignment(s) would be removed"), "{shown}");
    assert!(shown.contains("lose access: bob@contoso.com, carol@contoso.com\n"), "{shown}");
    assert!(!shown.contains("lose access: alice"), "{shown}");
    assert_eq!(plan.steps.len(), 3, "the policy and two removals: {shown}");

    ascode::apply(&g, "access.yaml", &narrowed, Some(&plan.id), &quiet).await.expect("apply");
    app.drain().await;
    assert_eq!(assignees(&app, &policy).await, vec![users[0].clone()]);
    let replan = ascode::plan(&g, "access.yaml", &narrowed, &quiet).await.expect("plan");
    assert!(replan.steps.is_empty(), "{}", replan.render(""));
}

#[tokio::test]
async fn apply_refuses_a_plan_made_before_the_server_changed() {
    let app = TestApp::spawn().await;
    let users = directory(&app).await;
    let (package, policy) = configure(&app, &users).await;
    let g = graph(&app);
    let exported = ascode::export(&g, &quiet).await.unwrap().yaml;
    let mut doc = ascode::plan::parse("access.yaml", &exported).expect("the export parses");
    let sales = doc.catalogs.get_mut("Marketing").unwrap().access_packages.get_mut("Sales access").unwrap();
    sales.policies.get_mut("Sales staff").unwrap().description = Some("reviewed".into());
    let edited = ascode::document::to_yaml(&doc).unwrap();
    let plan = ascode::plan(&g, "access.yaml", &edited, &quiet).await.expect("plan");
    assert_eq!(plan.steps.len(), 1, "{}", plan.render(""));

    // Someone assigns the package meanwhile: who the plan affects may differ now.
    assign(&app, &package, &policy, &users[0]).await;
    app.drain().await;
    let (status, _) = app
        .patch(
            &app.admin,
            &format!("/v1.0/{EM}/accessPackages/{package}"),
            json!({ "description": "changed meanwhile" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let e = ascode::apply(&g, "access.yaml", &edited, Some(&plan.id), &quiet).await.expect_err("refused");
    assert!(format!("{e:#}").contains(&format!("the server changed since plan {}", plan.id)), "{e:#}");
    let (_, read) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentPolicies/{policy}")).await;
    assert_eq!(read["description"], "named people, one approval stage", "nothing was written");

    // A fresh plan applies.
    let fresh = ascode::plan(&g, "access.yaml", &edited, &quiet).await.expect("plan");
    ascode::apply(&g, "access.yaml", &edited, Some(&fresh.id), &quiet).await.expect("apply");
    let (_, read) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentPolicies/{policy}")).await;
    assert_eq!(read["description"], "reviewed");
}

#[tokio::test]
async fn bad_files_are_refused_with_file_line_and_what_to_fix_and_change_nothing() {
    let app = TestApp::spawn().await;
    directory(&app).await;
    let g = graph(&app);
    let good = "\
catalogs:
  Marketing:
    description: campaigns
    resources:
    - group: Sales team
    accessPackages:
      Sales access:
        isHidden: false
        roleScopes:
        - group: Sales team
          role: Member
";
    let plan = ascode::plan(&g, "access.yaml", good, &quiet).await.expect("a good file plans");
    assert_eq!(plan.steps.len(), 4, "{}", plan.render(""));

    let cases = [
        // An unknown (misspelt) key.
        (
            good.replace("        isHidden: false", "        isHiden: false"),
            "access.yaml:8:",
            "unknown field `isHiden`",
        ),
        // A type error.
        (good.replace("isHidden: false", "isHidden: sometimes"), "access.yaml:8:", "invalid type"),
        (good.replace("role: Member", "role: Reader"), "access.yaml:11:", "unknown variant `Reader`"),
        // References to objects that do not exist.
        (
            good.replace("    - group: Sales team\n    accessPackages", "    - group: Sales tam\n    accessPackages"),
            "access.yaml:5:",
            "there is no group named 'Sales tam'",
        ),
        (
            good.replace("        - group: Sales team", "        - group: Support team"),
            "access.yaml:10:",
            "not a resource of catalog 'Marketing'",
        ),
        (
            format!("{good}        incompatibleAccessPackages:\n        - accessPackage: Nothing\n"),
            "access.yaml:13:",
            "there is no access package 'Nothing'",
        ),
    ];
    for (text, at, says) in cases {
        let e = ascode::plan(&g, "access.yaml", &text, &quiet).await.expect_err("refused");
        let shown = format!("{e:#}");
        assert!(shown.starts_with(at) && shown.contains(says), "expected {at} … {says}, got: {shown}\n{text}");
    }
    // Nothing was written by any of them.
    let (_, catalogs) = app.get(&app.admin, &format!("/v1.0/{EM}/catalogs?$filter=displayName eq 'Marketing'")).await;
    assert_eq!(catalogs["value"].as_array().unwrap().len(), 0);

    // The command line prints the same and exits 2.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("access.yaml");
    std::fs::write(&file, good.replace("isHidden: false", "isHiden: false")).unwrap();
    let out = std::process::Command::new(bin())
        .arg("plan")
        .arg(&file)
        .args(["--url", &app.base])
        .env("GRANTRY_TOKEN", &app.admin)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{}:8: ", file.display())) && stderr.contains("isHiden"), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
}

#[tokio::test]
async fn a_bad_nested_policy_setting_is_refused_by_plan_with_its_line() {
    let app = TestApp::spawn().await;
    directory(&app).await;
    let g = graph(&app);
    let text = "\
catalogs:
  Marketing:
    resources:
    - group: Sales team
    accessPackages:
      Sales access:
        policies:
          Broken:
            allowedTargetScope: allMemberUsers
            expiration:
              type: afterDuration
              duration: forever
";
    // The server's own rules check the nested settings at plan time, before anything is
    // written, and name the line to fix.
    let e = ascode::plan(&g, "access.yaml", text, &quiet).await.expect_err("refused");
    let shown = format!("{e:#}");
    assert!(shown.starts_with("access.yaml:12: "), "{shown}");
    assert!(shown.contains("policy 'Marketing / Sales access / Broken': expiration.duration"), "{shown}");
    let stage = text.replace(
        "            expiration:\n              type: afterDuration\n              duration: forever\n",
        "            requestApprovalSettings:\n              isApprovalRequiredForAdd: true\n              stages:\n              - durationBeforeAutomaticDenial: P7D\n                primaryApprovers: []\n",
    );
    let e = ascode::apply(&g, "access.yaml", &stage, None, &quiet).await.expect_err("refused");
    let shown = format!("{e:#}");
    assert!(shown.starts_with("access.yaml:14: "), "{shown}");
    assert!(shown.contains("requestApprovalSettings.stages[0].primaryApprovers"), "{shown}");
    let (_, catalogs) = app.get(&app.admin, &format!("/v1.0/{EM}/catalogs?$filter=displayName eq 'Marketing'")).await;
    assert_eq!(catalogs["value"].as_array().unwrap().len(), 0, "{catalogs}");
}

#[tokio::test]
async fn a_failed_apply_undoes_what_it_made_removals_included() {
    let app = TestApp::spawn().await;
    let users = directory(&app).await;
    configure(&app, &users).await;
    let g = graph(&app);
    let before = ascode::export(&g, &quiet).await.unwrap().yaml;
    // One update, three removals apply can undo, and the deletion of a package, which it
    // cannot undo and so makes last.
    let mut doc = ascode::plan::parse("access.yaml", &before).expect("the export parses");
    let marketing = doc.catalogs.get_mut("Marketing").unwrap();
    marketing.access_packages.remove("Support access");
    let sales = marketing.access_packages.get_mut("Sales access").unwrap();
    sales.incompatible_access_packages.clear();
    sales.incompatible_groups.clear();
    sales.role_scopes.clear();
    sales.policies.get_mut("Sales staff").unwrap().description = Some("reviewed".into());
    let edited = ascode::document::to_yaml(&doc).unwrap();
    let plan = ascode::plan(&g, "access.yaml", &edited, &quiet).await.expect("plan");
    let shown = plan.render("");
    let last = plan.steps.last().unwrap().describe();
    assert_eq!(last, "- access package 'Marketing / Support access'", "{shown}");
    assert!(plan.steps[..plan.steps.len() - 1].iter().all(|s| s.reversible()), "{shown}");

    // Between the plan and the apply, the package to delete is assigned to someone, so its
    // deletion would be refused after the other changes were made.
    let (_, packages) =
        app.get(&app.admin, &format!("/v1.0/{EM}/accessPackages?$filter=displayName eq 'Support access'")).await;
    let support = packages["value"][0]["id"].as_str().unwrap().to_string();
    let (_, policies) =
        app.get(&app.admin, &format!("/v1.0/{EM}/assignmentPolicies?$filter=accessPackage/id eq '{support}'")).await;
    let admins_only = policies["value"][0]["id"].as_str().unwrap().to_string();
    assign(&app, &support, &admins_only, &users[3]).await;
    app.drain().await;

    let e = ascode::apply::apply(&g, &plan, None, &quiet).await.expect_err("refused");
    let shown = format!("{e:#}");
    assert!(shown.contains("- access package 'Marketing / Support access' failed"), "{shown}");
    assert!(shown.contains("1 active assignment(s) now"), "{shown}");
    assert!(shown.contains("were undone; the server is as it was"), "{shown}");
    // Every change, the removals included, was taken back.
    let after = ascode::export(&g, &quiet).await.unwrap().yaml;
    assert_eq!(after, before);
}
