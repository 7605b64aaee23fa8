//! Assignment requests: every seed example, each request type, every refusal rule, and
//! delivery into group memberships.

use crate::helpers::*;
use grantry_domain::enums::AllowedTargetScope;
use grantry_domain::model::{AnswerChoice, Question, QuestionKind, SubjectSet};
use reqwest::StatusCode;
use serde_json::{Value, json};

const Q_CHOICE: &str = "8fe745e7-80b2-490d-bd22-4e708c77288c";
const Q_TEXT: &str = "7aaa18c9-8e4f-440f-bd5a-3a7ce312cbe6";

/// A seed body from fixtures/seed_requests.json with placeholders replaced.
fn seed(name: &str, subs: &[(&str, &str)]) -> Value {
    let all: Value = serde_json::from_str(include_str!("fixtures/seed_requests.json")).unwrap();
    let mut text = all[name].to_string();
    assert_ne!(text, "null", "no fixture {name}");
    for (k, v) in subs {
        text = text.replace(&format!("{{{k}}}"), v);
    }
    serde_json::from_str(&text).unwrap()
}

fn reqs(root: &str) -> String {
    format!("/{root}/{EM}/assignmentRequests")
}

fn questions() -> Vec<Question> {
    vec![
        Question {
            id: Q_CHOICE.into(),
            text: Some("Which?".into()),
            localizations: vec![],
            is_required: true,
            is_answer_editable: true,
            sequence: 1,
            kind: QuestionKind::MultipleChoice {
                choices: ["MultipleChoiceAnswerValue", "UpdatedAnswerValue"]
                    .iter()
                    .map(|v| AnswerChoice {
                        actual_value: v.to_string(),
                        text: Some(v.to_string()),
                        localizations: vec![],
                    })
                    .collect(),
                is_multiple_selection_allowed: false,
            },
        },
        Question {
            id: Q_TEXT.into(),
            text: Some("Why?".into()),
            localizations: vec![],
            is_required: true,
            is_answer_editable: true,
            sequence: 2,
            kind: QuestionKind::TextInput {
                is_single_line_question: false,
                regex_pattern: Some("^[A-Z].*\\.$".into()),
            },
        },
    ]
}

#[tokio::test]
async fn seed004_example1_admin_add_on_beta_is_delivered_into_the_group() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let user = app.create_user("adele").await;
    let body =
        seed("seed004_ex1_admin_add", &[("USER", &user), ("POLICY", &f.admin_policy_id), ("PACKAGE", &f.package_id)]);
    let (status, r) = app.post(&app.admin, &reqs("beta"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["requestType"], "AdminAdd");
    assert_eq!(r["requestState"], "Submitted");
    assert_eq!(r["requestStatus"], "Accepted");
    assert_eq!(r["isValidationOnly"], false);
    assert_eq!(r["schedule"]["expiration"]["type"], "notSpecified");
    assert_eq!(r["verifiedCredentialsData"], json!([]));
    assert!(r.get("state").is_none() && r.get("status").is_none(), "beta names only: {r}");
    // (Membership is not checked before draining: the background runner may already have
    // delivered the request, which made this test flaky under load.)
    app.drain().await;
    assert!(app.is_member(&f.group_id, &user).await);
    let id = r["id"].as_str().unwrap();
    let (_, r) = app
        .get(
            &app.admin,
            &format!("/beta/{EM}/accessPackageAssignmentRequests/{id}?$expand=accessPackageAssignment($expand=target)"),
        )
        .await;
    assert_eq!(r["requestState"], "Delivered", "{r}");
    assert!(r["completedDate"].is_string());
    assert_eq!(r["accessPackageAssignment"]["assignmentState"], "Delivered");
    assert_eq!(r["accessPackageAssignment"]["targetId"], user);
    assert_eq!(r["accessPackageAssignment"]["target"]["objectId"], user);
    assert_eq!(r["accessPackageAssignment"]["target"]["type"], "User");
    // The v1.0 view of the same request.
    let (_, r) = app
        .get(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentRequests/{id}?$expand=assignment($expand=target),requestor,accessPackage"),
        )
        .await;
    assert_eq!(
        (r["state"].as_str(), r["status"].as_str(), r["requestType"].as_str()),
        (Some("delivered"), Some("Delivered"), Some("adminAdd"))
    );
    assert_eq!(r["assignment"]["state"], "delivered");
    assert_eq!(r["assignment"]["target"]["subjectType"], "user");
    assert_eq!(r["accessPackage"]["id"], f.package_id);
    assert!(r["requestor"].is_null(), "an application has no subject: {r}");
}

#[tokio::test]
async fn v1_create_renders_v1_names_and_accepts_all_sdk_shapes() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let shapes = |u: &str| {
        vec![
            json!({"requestType":"adminAdd","assignment":{"targetId":u,"assignmentPolicyId":f.admin_policy_id,"accessPackageId":f.package_id}}),
            json!({"requestType":"adminAdd","assignment":{"target":{"objectId":u},"assignmentPolicy":{"id":f.admin_policy_id},"accessPackage":{"id":f.package_id}}}),
            json!({"requestType":"adminAdd","assignment":{"target_id":u,"assignment_policy_id":f.admin_policy_id,"access_package_id":f.package_id}}),
        ]
    };
    for (i, body) in shapes("x").into_iter().enumerate() {
        let user = app.create_user(&format!("shape{i}")).await;
        let body: Value = serde_json::from_str(&body.to_string().replace("\"x\"", &format!("\"{user}\""))).unwrap();
        let (status, r) = app.post(&app.admin, &reqs("v1.0"), body).await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
        assert_eq!((r["state"].as_str(), r["status"].as_str()), (Some("submitted"), Some("Accepted")));
        assert_eq!(r["requestType"], "adminAdd");
        assert_eq!(r["customExtensionCalloutInstances"], json!([]));
        assert!(r["completedDateTime"].is_null() && r["createdDateTime"].is_string());
        assert_eq!(r["@odata.context"], format!("{}/v1.0/$metadata#{EM}/assignmentRequests/$entity", app.base));
        assert!(r.get("requestState").is_none());
    }
    app.drain().await;
    let (_, list) = app
        .get(
            &app.admin,
            &format!("/v1.0/{EM}/assignments?$filter=accessPackage/id eq '{}' and state eq 'Delivered'", f.package_id),
        )
        .await;
    assert_eq!(list["value"].as_array().unwrap().len(), 3, "{list}");
}

#[tokio::test]
async fn seed000_old_paths_and_invalid_request_type() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let (status, body) = app.post(&app.admin, "/beta/accessPackageAssignmentRequests", seed("seed000_stub", &[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "InvalidRequestBody");
    assert_eq!(body["error"]["target"], "requestType");
    assert!(body["error"]["message"].as_str().unwrap().contains("adminAdd"));
    let (status, body) = app.post(&app.admin, &reqs("v1.0"), json!({"assignment": {}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["target"], "requestType");
    for t in ["systemAdd", "SystemRemove", "systemUpdate", "onBehalfAdd", "notSpecified"] {
        let (status, body) = app.post(&app.admin, &reqs("v1.0"), json!({"requestType": t})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{t}");
        assert_error(&body, "RequestTypeNotAllowed");
    }

    // The old paths work: directly under the root and nested under an assignment.
    let user = app.create_user("old").await;
    let body =
        seed("seed001_admin_add", &[("USER", &user), ("POLICY", &f.admin_policy_id), ("PACKAGE", &f.package_id)]);
    let (status, r) = app.post(&app.admin, "/beta/accessPackageAssignmentRequests", body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["requestState"], "Submitted");
    app.drain().await;
    let (_, r) = app
        .get(
            &app.admin,
            &format!(
                "/beta/{EM}/accessPackageAssignmentRequests/{}?$expand=accessPackageAssignment",
                r["id"].as_str().unwrap()
            ),
        )
        .await;
    let aid = r["accessPackageAssignment"]["id"].as_str().unwrap().to_string();
    let (status, r) = app
        .post(
            &app.admin,
            &format!("/beta/accessPackageAssignments/{aid}/accessPackageAssignmentRequests"),
            json!({"requestType": "AdminRemove"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["requestType"], "AdminRemove");
    app.drain().await;
    assert!(!app.is_member(&f.group_id, &user).await);
    let (_, a) = app.get(&app.admin, &format!("/beta/{EM}/accessPackageAssignments/{aid}")).await;
    assert_eq!(a["assignmentState"], "Expired");
    assert!(a["expiredDateTime"].is_string());

    // And the EM-level nested path, on a second assignment.
    let (_, aid2) = app.admin_assign(&f, &user).await;
    let (status, r) = app
        .post(
            &app.admin,
            &format!("/beta/{EM}/accessPackageAssignments/{aid2}/accessPackageAssignmentRequests"),
            json!({"requestType": "AdminRemove"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
}

#[tokio::test]
async fn seed004_example2_admin_remove_revokes_membership_unless_granted_elsewhere() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let g = app.seed_package_with_group().await;
    // Make the second package grant the first package's group too.
    let (role, pkg, now) = (f.role_id.clone(), g.package_id.clone(), app.now());
    app.seed(move |c| {
        grantry_store::repo::insert(
            c,
            &grantry_domain::model::RoleScope {
                id: format!("{role}_x"),
                access_package_id: pkg,
                role_id: role,
                scope_id: "x".into(),
                created_by: None,
                created_date_time: now,
            },
        )
    })
    .await;
    let user = app.create_user("remy").await;
    let (_, a1) = app.admin_assign(&f, &user).await;
    let (_, _a2) = app.admin_assign(&g, &user).await;
    let body = seed("seed004_ex2_admin_remove", &[("ASSIGNMENT", &a1)]);
    let (status, r) = app.post(&app.admin, &reqs("beta"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!((r["requestType"].as_str(), r["requestState"].as_str()), (Some("AdminRemove"), Some("Submitted")));
    app.drain().await;
    assert!(app.is_member(&f.group_id, &user).await, "still granted by the other package");
    let (_, a) = app.get(&app.admin, &format!("/v1.0/{EM}/assignments/{a1}")).await;
    assert_eq!(a["state"], "expired");

    // Removing an already expired assignment is refused.
    let (status, body) =
        app.post(&app.admin, &reqs("beta"), seed("seed004_ex2_admin_remove", &[("ASSIGNMENT", &a1)])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "AssignmentNotActive");
    let (status, body) = app
        .post(
            &app.admin,
            &reqs("beta"),
            seed("seed004_ex2_admin_remove", &[("ASSIGNMENT", "00000000-0000-0000-0000-0000000000aa")]),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "ResourceNotFound");
}

#[tokio::test]
async fn seed004_example3_user_add_with_answers_then_example7_admin_update_answers() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    // Replace the self-service policy with one that asks the seed's questions.
    let fx = f.clone();
    app.seed(move |c| {
        let mut p: grantry_domain::model::Policy = grantry_store::repo::get(c, &fx.self_policy_id)?.unwrap();
        p.questions = questions();
        grantry_store::repo::update(c, &p).map(|_| ())
    })
    .await;
    let user = app.create_user("quinn").await;
    let token = app.user_token(&user, SUBJECT_SCOPES);
    let body = seed("seed004_ex3_user_add_answers", &[("PACKAGE", &f.package_id)]);

    // Missing, wrong-choice and pattern-breaking answers are refused.
    let mut missing = body.clone();
    missing["answers"].as_array_mut().unwrap().pop();
    let (status, err) = app.post(&token, &reqs("beta"), missing).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&err, "AnswerRequired");
    let mut wrong = body.clone();
    wrong["answers"][0]["value"] = json!("NotAChoice");
    let (_, err) = app.post(&token, &reqs("beta"), wrong).await;
    assert_error(&err, "AnswerInvalid");
    let mut bad_text = body.clone();
    bad_text["answers"][1]["value"] = json!("lower case and no full stop");
    let (_, err) = app.post(&token, &reqs("beta"), bad_text).await;
    assert_error(&err, "AnswerInvalid");

    let (status, r) = app.post(&token, &reqs("beta"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["requestType"], "UserAdd");
    assert_eq!(r["answers"].as_array().unwrap().len(), 2);
    assert_eq!(r["answers"][0]["answeredQuestion"]["id"], Q_CHOICE);
    assert_eq!(
        r["answers"][0]["answeredQuestion"]["@odata.type"],
        "#microsoft.graph.accessPackageMultipleChoiceQuestion"
    );
    assert_eq!(r["answers"][0]["@odata.type"], "#microsoft.graph.accessPackageAnswerString");
    assert_eq!(r["answers"][1]["displayValue"], "This is my answer.");
    app.drain().await;
    assert!(app.is_member(&f.group_id, &user).await);

    let (_, r) = app
        .get(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentRequests/{}?$expand=assignment,requestor", r["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r["requestor"]["objectId"], user);
    let aid = r["assignment"]["id"].as_str().unwrap().to_string();
    let body = seed("seed004_ex7_update_answers", &[("ASSIGNMENT", &aid)]);
    let (status, r) = app.post(&app.admin, &reqs("beta"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["requestType"], "AdminUpdate");
    assert_ne!(r["id"], "7a6ab703-0780-4b37-8445-81f679b2d75c", "the client's id is ignored");
    assert_eq!(r["answers"][0]["value"], "UpdatedAnswerValue");
    app.drain().await;
    let (_, r) = app.get(&app.admin, &format!("/beta/{EM}/assignmentRequests/{}", r["id"].as_str().unwrap())).await;
    assert_eq!(r["requestState"], "Delivered", "{r}");
}

#[tokio::test]
async fn seed004_example4_justification_required() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let fx = f.clone();
    app.seed(move |c| {
        let mut p: grantry_domain::model::Policy = grantry_store::repo::get(c, &fx.self_policy_id)?.unwrap();
        p.approval.is_requestor_justification_required = true;
        grantry_store::repo::update(c, &p).map(|_| ())
    })
    .await;
    let user = app.create_user("jude").await;
    let token = app.user_token(&user, SUBJECT_SCOPES);
    let body = seed("seed004_ex4_justification", &[("PACKAGE", &f.package_id)]);
    let mut without = body.clone();
    without.as_object_mut().unwrap().remove("justification");
    let (status, err) = app.post(&token, &reqs("beta"), without).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&err, "JustificationRequired");
    let (status, r) = app.post(&token, &reqs("beta"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["justification"], "Need access to New Hire access package");
    assert_eq!(r["requestState"], "Submitted");
    assert_eq!(r["customExtensionHandlerInstances"], json!([]));
}

#[tokio::test]
async fn seed004_example5_manager_requests_on_behalf_of_a_direct_report() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let policy = app
        .seed_policy(&f, AllowedTargetScope::AllMemberUsers, |p| {
            p.requestor_settings.enable_on_behalf_requestors_to_add_access = true;
            p.requestor_settings.on_behalf_requestors = vec![SubjectSet::TargetManager { manager_level: 1 }];
        })
        .await;
    let employee = app.create_user("idris").await;
    let manager = app.create_user("boss").await;
    let stranger = app.create_user("stranger").await;
    app.set_manager(&employee, &manager).await;
    let body = seed("seed004_ex5_on_behalf", &[("PACKAGE", &f.package_id), ("POLICY", &policy), ("USER", &employee)]);

    let (status, err) = app.post(&app.user_token(&stranger, SUBJECT_SCOPES), &reqs("v1.0"), body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_error(&err, "RequestorNotAllowed");
    // The self-service policy does not allow on-behalf requests either.
    let mut via_self = body.clone();
    via_self["assignment"]["assignmentPolicyId"] = json!(f.self_policy_id);
    let (status, err) = app.post(&app.user_token(&manager, SUBJECT_SCOPES), &reqs("v1.0"), via_self).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&err, "RequestorNotAllowed");

    let token = app.user_token(&manager, SUBJECT_SCOPES);
    let (status, r) = app.post(&token, &reqs("v1.0"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(
        (r["requestType"].as_str(), r["state"].as_str(), r["status"].as_str()),
        (Some("userAdd"), Some("submitted"), Some("Accepted"))
    );
    assert_eq!(r["schedule"]["expiration"]["type"], "notSpecified");
    app.drain().await;
    assert!(app.is_member(&f.group_id, &employee).await);
    assert!(!app.is_member(&f.group_id, &manager).await);
    let (_, r) = app
        .get(&token, &format!("/v1.0/{EM}/assignmentRequests/{}?$expand=requestor", r["id"].as_str().unwrap()))
        .await;
    assert_eq!(r["requestor"]["objectId"], manager, "{r}");
    // The manager sees it as created by them; the employee as its target.
    let (_, mine) =
        app.get(&token, &format!("/v1.0/{EM}/assignmentRequests/filterByCurrentUser(on='createdBy')")).await;
    assert_eq!(mine["value"].as_array().unwrap().len(), 1, "{mine}");
    let emp = app.user_token(&employee, SUBJECT_SCOPES);
    let (_, mine) = app.get(&emp, &format!("/v1.0/{EM}/assignmentRequests/filterByCurrentUser(on='target')")).await;
    assert_eq!(mine["value"].as_array().unwrap().len(), 1);
    let (_, mine) = app.get(&emp, &format!("/v1.0/{EM}/assignments/filterByCurrentUser(on='target')")).await;
    assert_eq!(mine["value"].as_array().unwrap().len(), 1);
    let (_, mine) =
        app.get(&token, &format!("/beta/{EM}/accessPackageAssignments/filterByCurrentUser(on='createdBy')")).await;
    assert_eq!(mine["value"].as_array().unwrap().len(), 1, "{mine}");
}

#[tokio::test]
async fn seed004_example6_admin_add_for_an_external_email_creates_a_guest() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let external = app.seed_policy(&f, AllowedTargetScope::AllExternalUsers, |_| {}).await;
    // The admin-only policy does not admit external users.
    let (status, err) = app
        .post(
            &app.admin,
            &reqs("beta"),
            seed("seed004_ex6_external", &[("POLICY", &f.admin_policy_id), ("PACKAGE", &f.package_id)]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&err, "RequestorNotInPolicyScope");

    let (status, r) = app
        .post(
            &app.admin,
            &reqs("beta"),
            seed("seed004_ex6_external", &[("POLICY", &external), ("PACKAGE", &f.package_id)]),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!((r["requestType"].as_str(), r["requestState"].as_str()), (Some("AdminAdd"), Some("Submitted")));
    app.drain().await;
    let (_, r) = app
        .get(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentRequests/{}?$expand=assignment($expand=target)", r["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r["state"], "delivered", "{r}");
    let target = &r["assignment"]["target"];
    assert_eq!(target["email"], "user@contoso.com");
    let guest = target["objectId"].as_str().expect("guest provisioned").to_string();
    let (_, u) = app.get(&app.admin, &format!("/v1.0/users/{guest}")).await;
    assert_eq!(u["userType"], "Guest");
    assert_eq!(u["userPrincipalName"], "user_contoso.com#EXT#@grantry.local");
    assert_eq!(u["mail"], "user@contoso.com");
    assert!(app.is_member(&f.group_id, &guest).await);

    // A catalog that is not externally visible refuses external targets.
    let hidden = app.seed_package_fixture(false).await;
    let ext2 = app.seed_policy(&hidden, AllowedTargetScope::AllExternalUsers, |_| {}).await;
    let (status, err) = app
        .post(
            &app.admin,
            &reqs("beta"),
            seed("seed004_ex6_external", &[("POLICY", &ext2), ("PACKAGE", &hidden.package_id)]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&err, "RequestorNotInPolicyScope");
}

#[tokio::test]
async fn seed004_example8_admin_update_extends_and_reschedules_expiry() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let user = app.create_user("ext").await;
    let (_, aid) = app.admin_assign(&f, &user).await;
    let start = app.now().to_rfc3339();
    let end = (app.now() + chrono::Duration::days(60)).to_rfc3339();
    let body = seed("seed004_ex8_extend", &[("ASSIGNMENT", &aid), ("START", &start), ("END", &end)]);
    let (status, r) = app.post(&app.admin, &reqs("beta"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["requestType"], "AdminUpdate");
    assert_eq!(r["schedule"]["expiration"]["type"], "afterDateTime");
    app.drain().await;
    let (_, a) = app.get(&app.admin, &format!("/beta/{EM}/accessPackageAssignments/{aid}")).await;
    assert_eq!(a["isExtended"], true, "{a}");
    assert_eq!(a["schedule"]["expiration"]["type"], "afterDateTime");
    // The new end takes effect: at day 61 the assignment expires with a systemRemove.
    let (status, _) = app.post(&app.admin, "/_grantry/clock/advance", json!({"duration": "P61D"})).await;
    assert_eq!(status, StatusCode::OK);
    app.drain().await;
    let (_, a) = app.get(&app.admin, &format!("/v1.0/{EM}/assignments/{aid}")).await;
    assert_eq!(a["state"], "expired", "{a}");
    assert!(!app.is_member(&f.group_id, &user).await);
    let (_, list) =
        app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests?$filter=requestType eq 'systemRemove'")).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["value"][0]["state"], "delivered");
}

#[tokio::test]
async fn seed001_user_extend_and_seed002_direct_assignment() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let fx = f.clone();
    app.seed(move |c| {
        let mut p: grantry_domain::model::Policy = grantry_store::repo::get(c, &fx.self_policy_id)?.unwrap();
        p.requestor_settings.allow_custom_assignment_schedule = true;
        grantry_store::repo::update(c, &p).map(|_| ())
    })
    .await;
    let user = app.create_user("ursula").await;
    // seed 002: beta POST accessPackageAssignments → the delivered assignment.
    let body = seed(
        "seed002_create_assignment",
        &[("USER", &user), ("POLICY", &f.self_policy_id), ("PACKAGE", &f.package_id)],
    );
    let (status, a) = app.post(&app.admin, &format!("/beta/{EM}/accessPackageAssignments"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    assert_eq!(a["assignmentState"], "Delivered");
    assert_eq!(a["accessPackageId"], f.package_id);
    assert_eq!(a["assignmentPolicyId"], f.self_policy_id);
    assert_eq!(a["catalogId"], f.catalog_id);
    assert_eq!(a["isExtended"], false);
    assert!(app.is_member(&f.group_id, &user).await);

    // seed 001: UserExtend by target + policy + package.
    let end = (app.now() + chrono::Duration::days(90)).to_rfc3339();
    let body = seed(
        "seed001_user_extend",
        &[("USER", &user), ("POLICY", &f.self_policy_id), ("PACKAGE", &f.package_id), ("END", &end)],
    );
    let token = app.user_token(&user, SUBJECT_SCOPES);
    let (status, r) = app.post(&token, &format!("/beta/{EM}/accessPackageAssignmentRequests"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["requestType"], "UserExtend");
    let (_, v1) = app.get(&token, &format!("/v1.0/{EM}/assignmentRequests/{}", r["id"].as_str().unwrap())).await;
    assert_eq!(v1["requestType"], "userUpdate", "userExtend is shown as userUpdate on v1.0");
    app.drain().await;
    let (_, a) = app.get(&token, &format!("/beta/{EM}/accessPackageAssignments/{}", a["id"].as_str().unwrap())).await;
    assert_eq!(a["isExtended"], true, "{a}");

    // userRemove by the target gives the access up.
    let (status, r) =
        app.post(&token, &reqs("v1.0"), json!({"requestType": "userRemove", "assignment": {"id": a["id"]}})).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    assert!(!app.is_member(&f.group_id, &user).await);
}

#[tokio::test]
async fn validation_only_persists_nothing() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let user = app.create_user("val").await;
    let mut body =
        seed("seed001_admin_add", &[("USER", &user), ("POLICY", &f.admin_policy_id), ("PACKAGE", &f.package_id)]);
    body["isValidationOnly"] = json!(true);
    let (status, r) = app.post(&app.admin, &reqs("beta"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["isValidationOnly"], true);
    app.drain().await;
    let (_, list) = app.get(&app.admin, &reqs("beta")).await;
    assert_eq!(list["value"], json!([]));
    assert!(!app.is_member(&f.group_id, &user).await);
}

#[tokio::test]
async fn refusals_follow_the_policy() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let member = app.create_user("mem").await;
    let token = app.user_token(&member, SUBJECT_SCOPES);
    let user_add = |policy: &str| json!({"requestType": "userAdd", "assignment": {"accessPackageId": f.package_id, "assignmentPolicyId": policy}});

    // Users cannot use the admin-only policy; admins cannot be apps without RW.
    let (status, err) = app.post(&token, &reqs("v1.0"), user_add(&f.admin_policy_id)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&err, "RequestTypeNotAllowed");
    let (status, err) = app
        .post(&token, &reqs("v1.0"), json!({"requestType": "adminAdd", "assignment": {"targetId": member, "assignmentPolicyId": f.admin_policy_id, "accessPackageId": f.package_id}}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    let reader = app.app_token(&["EntitlementManagement.Read.All"]);
    let (status, _) = app
        .post(&reader, &reqs("v1.0"), json!({"requestType": "adminAdd", "assignment": {"targetId": member, "assignmentPolicyId": f.admin_policy_id, "accessPackageId": f.package_id}}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Apps cannot send user types.
    let (status, err) = app.post(&app.admin, &reqs("v1.0"), user_add(&f.self_policy_id)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&err, "RequestorNotAllowed");

    // Self add disabled.
    let closed = app.seed_policy(&f, AllowedTargetScope::AllMemberUsers, |_| {}).await;
    let (_, err) = app.post(&token, &reqs("v1.0"), user_add(&closed)).await;
    assert_error(&err, "RequestTypeNotAllowed");

    // Out of scope: a specific-users policy naming someone else; a guest on allMemberUsers.
    let other = app.create_user("other").await;
    let specific = app
        .seed_policy(&f, AllowedTargetScope::SpecificDirectoryUsers, move |p| {
            p.requestor_settings.enable_targets_to_self_add_access = true;
            p.specific_allowed_targets = vec![SubjectSet::SingleUser { user_id: Some(other), description: None }];
        })
        .await;
    let (status, err) = app.post(&token, &reqs("v1.0"), user_add(&specific)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&err, "RequestorNotInPolicyScope");
    let (status, guest) = app
        .post(
            &app.admin,
            "/v1.0/users",
            json!({"displayName": "G", "userPrincipalName": "g@fabrikam.com", "userType": "Guest"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let gt = app.user_token(guest["id"].as_str().unwrap(), SUBJECT_SCOPES);
    let (_, err) = app.post(&gt, &reqs("v1.0"), user_add(&f.self_policy_id)).await;
    assert_error(&err, "RequestorNotInPolicyScope");

    // Unknown policy / package.
    let (status, err) = app.post(&token, &reqs("v1.0"), user_add("00000000-0000-0000-0000-00000000beef")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&err, "InvalidPolicy");
    let (_, err) = app
        .post(&token, &reqs("v1.0"), json!({"requestType": "userAdd", "assignment": {"accessPackageId": "00000000-0000-0000-0000-00000000beef"}}))
        .await;
    assert_error(&err, "InvalidAccessPackage");

    // Custom schedules.
    let in_a_month = (app.now() + chrono::Duration::days(30)).to_rfc3339();
    let mut with_schedule = user_add(&f.self_policy_id);
    with_schedule["schedule"] = json!({"expiration": {"type": "afterDateTime", "endDateTime": in_a_month}});
    let (_, err) = app.post(&token, &reqs("v1.0"), with_schedule.clone()).await;
    assert_error(&err, "CustomScheduleNotAllowed");
    let fixed_end = app.now() + chrono::Duration::days(10);
    let bounded = app
        .seed_policy(&f, AllowedTargetScope::AllMemberUsers, move |p| {
            p.requestor_settings.enable_targets_to_self_add_access = true;
            p.requestor_settings.allow_custom_assignment_schedule = true;
            p.expiration = grantry_domain::model::Expiration {
                kind: grantry_domain::enums::ExpirationType::AfterDateTime,
                end_date_time: Some(fixed_end),
                duration: None,
            };
        })
        .await;
    with_schedule["assignment"]["assignmentPolicyId"] = json!(bounded);
    let (_, err) = app.post(&token, &reqs("v1.0"), with_schedule).await;
    assert_error(&err, "ScheduleExceedsPolicy");

    // Incompatible packages and groups.
    let g = app.seed_package_with_group().await;
    let (p1, p2) = (f.package_id.clone(), g.package_id.clone());
    app.seed(move |c| {
        c.execute(
            "INSERT INTO incompatible_packages (access_package_id, other_id) VALUES (?, ?)",
            &[p2.as_str().into(), p1.as_str().into()],
        )
        .map(|_| ())
    })
    .await;
    app.admin_assign(&g, &member).await;
    let (status, err) = app.post(&token, &reqs("v1.0"), user_add(&f.self_policy_id)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&err, "IncompatibleAccess");
    let third = app.seed_package_with_group().await;
    let (pk, grp) = (third.package_id.clone(), g.group_id.clone());
    app.seed(move |c| {
        c.execute(
            "INSERT INTO incompatible_groups (access_package_id, group_id) VALUES (?, ?)",
            &[pk.as_str().into(), grp.as_str().into()],
        )
        .map(|_| ())
    })
    .await;
    let (_, err) = app
        .post(
            &token,
            &reqs("v1.0"),
            json!({"requestType": "userAdd", "assignment": {"accessPackageId": third.package_id}}),
        )
        .await;
    assert_error(&err, "IncompatibleAccess");
}

#[tokio::test]
async fn duplicates_open_requests_and_renewal() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let boss = app.create_user("dupboss").await;
    let approval = app
        .seed_policy(&f, AllowedTargetScope::AllMemberUsers, move |p| {
            p.requestor_settings.enable_targets_to_self_add_access = true;
            p.approval.is_approval_required_for_add = true;
            p.approval.stages = vec![grantry_domain::model::ApprovalStage {
                duration_before_automatic_denial: None,
                duration_before_escalation: None,
                is_approver_justification_required: false,
                is_escalation_enabled: false,
                primary_approvers: vec![SubjectSet::SingleUser { user_id: Some(boss), description: None }],
                fallback_primary_approvers: vec![],
                escalation_approvers: vec![],
                fallback_escalation_approvers: vec![],
                approver_information_visibility: grantry_domain::enums::ApproverInformationVisibility::Default,
                is_dynamic: false,
            }];
        })
        .await;
    let user = app.create_user("dup").await;
    let token = app.user_token(&user, SUBJECT_SCOPES);
    let body = json!({"requestType": "UserAdd", "accessPackageAssignment": {"accessPackageId": f.package_id, "assignmentPolicyId": approval}});
    let (status, r) = app.post(&token, &reqs("beta"), body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    let id = r["id"].as_str().unwrap().to_string();
    let (_, r) = app.get(&token, &format!("/beta/{EM}/assignmentRequests/{id}")).await;
    assert_eq!(
        (r["requestState"].as_str(), r["requestStatus"].as_str()),
        (Some("PendingApproval"), Some("PendingApproval"))
    );
    let (status, err) = app.post(&token, &reqs("beta"), body.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&err, "ExistingOpenRequest");
    // Open requests cannot be deleted; they can be canceled (Cancel in any case), then deleted.
    let (status, err) = app.delete(&app.admin, &format!("/beta/{EM}/assignmentRequests/{id}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&err, "InvalidRequestState");
    let (status, _) =
        app.post(&token, &format!("/beta/{EM}/accessPackageAssignmentRequests/{id}/Cancel"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, r) = app.get(&token, &format!("/beta/{EM}/assignmentRequests/{id}")).await;
    assert_eq!(r["requestState"], "Canceled");
    assert!(r["completedDate"].is_string());
    let (status, err) = app.post(&token, &format!("/v1.0/{EM}/assignmentRequests/{id}/cancel"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&err, "InvalidRequestState");
    let (status, err) = app.post(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{id}/reprocess"), json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&err, "InvalidRequestState");
    let (status, _) = app.delete(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Already assigned → 409; after expiry a new add renews.
    let (_, aid) = app.admin_assign(&f, &user).await;
    let (status, err) = app
        .post(&app.admin, &reqs("v1.0"), json!({"requestType": "adminAdd", "assignment": {"targetId": user, "assignmentPolicyId": f.admin_policy_id, "accessPackageId": f.package_id}}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&err, "TargetAlreadyAssigned");
    let (status, _) =
        app.post(&app.admin, &reqs("v1.0"), json!({"requestType": "adminRemove", "assignment": {"id": aid}})).await;
    assert_eq!(status, StatusCode::CREATED);
    app.drain().await;
    let (_, aid2) = app.admin_assign(&f, &user).await;
    assert_ne!(aid, aid2);
}

#[tokio::test]
async fn twenty_concurrent_identical_admin_adds_make_one_assignment() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let user = app.create_user("race").await;
    let body = json!({"requestType": "adminAdd", "assignment": {"targetId": user, "assignmentPolicyId": f.admin_policy_id, "accessPackageId": f.package_id}});
    let url = reqs("v1.0");
    let calls = (0..20).map(|_| app.post(&app.admin, &url, body.clone()));
    let results = futures_join_all(calls).await;
    let created = results.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    let conflicts = results.iter().filter(|(s, _)| *s == StatusCode::CONFLICT).count();
    assert_eq!((created, conflicts), (1, 19), "{results:?}");
    app.drain().await;
    let (_, list) = app.get(&app.admin, &format!("/v1.0/{EM}/assignments?$filter=target/objectid eq '{user}'")).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1, "{list}");
}

async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.collect();
    let mut out = Vec::new();
    // Poll them all concurrently.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    for d in done {
        out.extend(d);
    }
    out
}

#[tokio::test]
async fn scheduled_start_is_delivered_when_the_clock_passes_it_and_policy_expiry_applies() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let thirty = app
        .seed_policy(&f, AllowedTargetScope::NotSpecified, |p| {
            p.expiration = grantry_domain::model::Expiration {
                kind: grantry_domain::enums::ExpirationType::AfterDuration,
                end_date_time: None,
                duration: Some(chrono::Duration::days(30)),
            };
        })
        .await;
    let user = app.create_user("later").await;
    let start = (app.now() + chrono::Duration::days(2)).to_rfc3339();
    let (status, r) = app
        .post(
            &app.admin,
            &format!("/beta/{EM}/accessPackageAssignmentRequests"),
            json!({"requestType": "AdminAdd", "accessPackageAssignment": {"targetId": user, "assignmentPolicyId": thirty, "accessPackageId": f.package_id, "schedule": {"startDateTime": start}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    app.drain().await;
    let (_, r) = app.get(&app.admin, &format!("/beta/{EM}/accessPackageAssignmentRequests/{id}")).await;
    assert_eq!(
        (r["requestState"].as_str(), r["requestStatus"].as_str()),
        (Some("Scheduled"), Some("PendingNotBefore"))
    );
    assert!(!app.is_member(&f.group_id, &user).await);
    app.post(&app.admin, "/_grantry/clock/advance", json!({"duration": "P2DT1H"})).await;
    app.drain().await;
    let (_, r) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{id}?$expand=assignment")).await;
    assert_eq!(r["state"], "delivered", "{r}");
    assert_eq!(r["assignment"]["schedule"]["expiration"]["type"], "afterDuration");
    assert_eq!(r["assignment"]["schedule"]["expiration"]["duration"], "P30D");
    assert!(app.is_member(&f.group_id, &user).await);
    app.post(&app.admin, "/_grantry/clock/advance", json!({"duration": "P29D"})).await;
    app.drain().await;
    assert!(app.is_member(&f.group_id, &user).await, "not yet 30 days after the start");
    app.post(&app.admin, "/_grantry/clock/advance", json!({"duration": "P2D"})).await;
    app.drain().await;
    assert!(!app.is_member(&f.group_id, &user).await, "expired after P30D");
    let (_, a) =
        app.get(&app.admin, &format!("/v1.0/{EM}/assignments/{}", r["assignment"]["id"].as_str().unwrap())).await;
    assert_eq!(a["state"], "expired");
}

#[tokio::test]
async fn a_missing_group_gives_partial_delivery_and_reprocess_completes_it() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let gid = f.group_id.clone();
    app.seed(move |c| grantry_store::repo::delete::<grantry_domain::model::Group>(c, &gid).map(|_| ())).await;
    let user = app.create_user("part").await;
    let (status, r) = app
        .post(&app.admin, &reqs("v1.0"), json!({"requestType": "adminAdd", "assignment": {"targetId": user, "assignmentPolicyId": f.admin_policy_id, "accessPackageId": f.package_id}}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    app.drain().await;
    let id = r["id"].as_str().unwrap().to_string();
    let (_, r) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{id}?$expand=assignment")).await;
    assert_eq!(r["state"], "partiallyDelivered", "{r}");
    assert_eq!(r["assignment"]["state"], "partiallyDelivered");
    let (_, roles) = app.get(&app.admin, &format!("/beta/{EM}/accessPackageAssignmentResourceRoles")).await;
    assert_eq!(roles["value"][0]["status"], "DeliveryFailed", "{roles}");
    // Recreate the group and reprocess.
    let gid = f.group_id.clone();
    let now = app.now();
    app.seed(move |c| {
        grantry_store::repo::insert(
            c,
            &grantry_domain::model::Group {
                id: gid,
                display_name: "Sales".into(),
                description: None,
                mail_nickname: None,
                mail: None,
                mail_enabled: false,
                security_enabled: true,
                group_types: vec![],
                visibility: None,
                created_date_time: now,
            },
        )
    })
    .await;
    let (status, _) =
        app.post(&app.admin, &format!("/v1.0/{EM}/accessPackageAssignmentRequests/{id}/reprocess"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (_, r) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{id}")).await;
    assert_eq!(r["state"], "delivered");
    assert!(app.is_member(&f.group_id, &user).await);
    let (_, roles) = app.get(&app.admin, &format!("/beta/{EM}/accessPackageAssignmentResourceRoles")).await;
    assert_eq!(roles["value"][0]["status"], "Fulfilled");
    let rid = roles["value"][0]["id"].as_str().unwrap();
    let (status, role) = app.get(&app.admin, &format!("/beta/{EM}/accessPackageAssignmentResourceRoles/{rid}")).await;
    assert_eq!((status, role["originSystem"].as_str()), (StatusCode::OK, Some("AadGroup")));
}

#[tokio::test]
async fn visibility_and_filters() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    let alice_t = app.user_token(&alice, SUBJECT_SCOPES);
    let bob_t = app.user_token(&bob, SUBJECT_SCOPES);
    let (_, r) = app
        .post(
            &alice_t,
            &reqs("v1.0"),
            json!({"requestType": "userAdd", "assignment": {"accessPackageId": f.package_id}}),
        )
        .await;
    let id = r["id"].as_str().unwrap().to_string();
    let (status, _) = app.get(&alice_t, &format!("/v1.0/{EM}/assignmentRequests/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.get(&bob_t, &format!("/v1.0/{EM}/assignmentRequests/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "ResourceNotFound");
    let (_, list) = app.get(&bob_t, &reqs("v1.0")).await;
    assert_eq!(list["value"], json!([]));
    let (_, list) = app.get(&alice_t, &format!("/beta/{EM}/accessPackageAssignmentRequests/My()")).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1, "{list}");
    let (_, list) =
        app.get(&alice_t, &format!("/v1.0/{EM}/assignmentRequests/filterByCurrentUser(on='approver')")).await;
    assert_eq!(list["value"], json!([]));
    let (status, _) =
        app.get(&alice_t, &format!("/v1.0/{EM}/assignmentRequests/filterByCurrentUser(on='nobody')")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    app.drain().await;

    for (q, n) in [
        ("state eq 'Delivered'".to_string(), 1),
        ("state eq 'submitted'".to_string(), 0),
        (format!("accessPackage/id eq '{}' and requestType eq 'UserAdd'", f.package_id), 1),
        (format!("target/objectId eq '{bob}'"), 0),
        (format!("assignmentPolicy/id eq '{}'", f.self_policy_id), 1),
        ("createdDateTime ge 2000-01-01T00:00:00Z".to_string(), 1),
    ] {
        let (status, list) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests?$filter={q}")).await;
        assert_eq!(status, StatusCode::OK, "{q}: {list}");
        assert_eq!(list["value"].as_array().unwrap().len(), n, "{q}: {list}");
    }
    let (_, list) = app
        .get(
            &app.admin,
            &format!(
                "/beta/{EM}/accessPackageAssignmentRequests?$filter=(requestState eq 'Delivered')&$expand=requestor"
            ),
        )
        .await;
    assert_eq!(list["value"][0]["requestor"]["objectId"], alice, "{list}");
    let (status, body) =
        app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests?$filter=startswith(justification,'x')")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "InvalidFilter");
    assert!(body["error"]["message"].as_str().unwrap().contains("filterable properties are"), "{body}");
    let (status, _) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests?$expand=nonsense")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn request_and_assignment_lists_take_every_query_option() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let mut users = Vec::new();
    for n in ["qa", "qb", "qc"] {
        let u = app.create_user(n).await;
        let (status, body) = app
            .post(
                &app.admin,
                &format!("/v1.0/{EM}/assignmentRequests"),
                serde_json::json!({ "requestType": "adminAdd", "assignment": { "targetId": u, "assignmentPolicyId": f.admin_policy_id, "accessPackageId": f.package_id } }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        users.push(u);
    }
    app.drain().await;
    let path = format!(
        "/v1.0/{EM}/assignments?$filter=accessPackage/id eq '{}' and state eq 'Delivered'&$expand=target&$orderby=createdDateTime desc&$top=2&$count=true",
        f.package_id
    );
    let (status, body) = app.get(&app.admin, &path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["@odata.count"], 3);
    assert_eq!(body["value"].as_array().unwrap().len(), 2);
    let next = body["@odata.nextLink"].as_str().expect("a next page").strip_prefix(&app.base).unwrap().to_string();
    let (_, page2) = app.get(&app.admin, &next).await;
    assert!(page2.get("@odata.nextLink").is_none());
    // Across both pages, each assignment exactly once (assignments delivered in one batch
    // share a timestamp; the order then falls back to insertion order).
    let mut seen: Vec<String> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["value"].as_array().unwrap())
        .map(|a| a["target"]["objectId"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    let mut expected = users.clone();
    expected.sort();
    assert_eq!(seen, expected);

    let (status, body) = app
        .get(&app.admin, &format!("/beta/{EM}/accessPackageAssignmentRequests?$filter=requestType eq 'AdminAdd' and requestState in ('Delivered','Denied')&$select=requestState"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 3);
    assert_eq!(body["value"][0]["requestState"], "Delivered");
    assert!(body["value"][0].get("requestType").is_none());

    // $select on one entity, and a property the entity does not have.
    let (status, body) = app.get(&app.admin, &format!("/v1.0/{EM}/assignments?$top=1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["value"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = app.get(&app.admin, &format!("/v1.0/{EM}/assignments/{id}?$select=STATE,schedule")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["@odata.context", "id", "schedule", "state"]);
    for path in [
        format!("/v1.0/{EM}/assignments/{id}?$select=shoeSize"),
        format!("/beta/{EM}/accessPackageAssignmentRequests?$select=requestState,shoeSize"),
    ] {
        let (status, body) = app.get(&app.admin, &path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("'shoeSize'"), "{body}");
    }

    let resp = app
        .client
        .get(app.url(&format!("/v1.0/{EM}/assignments/$count")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "3");
}
