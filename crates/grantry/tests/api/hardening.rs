//! Holes found by a security review: checks that used to be skipped or ignored silently.

use crate::helpers::*;
use grantry_domain::enums::AllowedTargetScope;
use grantry_domain::model::{Question, QuestionKind};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn policies(root: &str) -> String {
    format!("/{root}/{EM}/assignmentPolicies")
}

fn requests() -> String {
    format!("/v1.0/{EM}/assignmentRequests")
}

fn self_add(f: &Fixture, policy: &str, question: &str, answer: &str) -> Value {
    json!({
        "requestType": "userAdd",
        "assignment": { "accessPackageId": f.package_id, "assignmentPolicyId": policy },
        "answers": [{
            "@odata.type": "#microsoft.graph.accessPackageAnswerString",
            "value": answer,
            "answeredQuestion": { "@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "id": question }
        }]
    })
}

/// `(?x)` with a `#` comment used to compile alone but not in the wrapped form answers
/// were checked with, so the check was skipped and any answer passed.
#[tokio::test]
async fn a_pattern_with_inline_flags_and_a_comment_is_enforced() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let body = json!({
        "displayName": "Badge number",
        "allowedTargetScope": "allMemberUsers",
        "requestorSettings": { "enableTargetsToSelfAddAccess": true },
        "accessPackage": { "id": f.package_id },
        "questions": [{
            "@odata.type": "#microsoft.graph.accessPackageTextInputQuestion",
            "text": "Badge?",
            "isRequired": true,
            "regexPattern": "(?x) [A-Z]{3} [0-9]{2}  # three capitals, two digits"
        }]
    });
    let (status, created) = app.post(&app.admin, &policies("v1.0"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let policy = created["id"].as_str().unwrap().to_string();
    let question = created["questions"][0]["id"].as_str().unwrap().to_string();

    let user = app.create_user("quinn").await;
    let token = app.user_token(&user, SUBJECT_SCOPES);
    for wrong in ["anything at all", "ABC12 # three capitals, two digits", "abc12", "ABC123"] {
        let (status, err) = app.post(&token, &requests(), self_add(&f, &policy, &question, wrong)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}: {err}");
        assert_error(&err, "AnswerInvalid");
        assert_eq!(err["error"]["target"], "answers[0]", "{err}");
    }
    let (status, r) = app.post(&token, &requests(), self_add(&f, &policy, &question, "ABC12")).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
}

#[tokio::test]
async fn a_pattern_that_cannot_be_enforced_is_refused_when_the_policy_is_written() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let huge_repetition = "(?:a{1000}){1000}".to_string();
    let too_long = "a".repeat(grantry_domain::answer_pattern::MAX_PATTERN_CHARS + 1);
    for (root, pattern) in [("v1.0", "([0-9]+"), ("v1.0", &huge_repetition), ("beta", &too_long)] {
        let question = json!({ "@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "text": "Id?", "regexPattern": pattern });
        let body = if root == "beta" {
            json!({ "displayName": "p", "accessPackageId": f.package_id, "questions": [question] })
        } else {
            json!({ "displayName": "p", "allowedTargetScope": "allMemberUsers", "accessPackage": { "id": f.package_id }, "questions": [question] })
        };
        let (status, err) = app.post(&app.admin, &policies(root), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{root} {}: {err}", &pattern[..pattern.len().min(40)]);
        assert_error(&err, "InvalidPolicy");
        assert_eq!(err["error"]["target"], "questions[0].regexPattern", "{err}");
    }
}

/// A pattern stored before patterns were validated as enforced refuses answers instead
/// of letting every answer through.
#[tokio::test]
async fn a_stored_pattern_that_cannot_be_compiled_refuses_the_answer() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let question = grantry_domain::ids::new_id();
    let q = question.clone();
    let policy = app
        .seed_policy(&f, AllowedTargetScope::AllMemberUsers, move |p| {
            p.requestor_settings.enable_targets_to_self_add_access = true;
            p.questions = vec![Question {
                id: q,
                text: Some("Id?".into()),
                localizations: vec![],
                is_required: true,
                is_answer_editable: true,
                sequence: 1,
                kind: QuestionKind::TextInput { is_single_line_question: true, regex_pattern: Some("([0-9]+".into()) },
            }];
        })
        .await;
    let user = app.create_user("rory").await;
    let token = app.user_token(&user, SUBJECT_SCOPES);
    let (status, err) = app.post(&token, &requests(), self_add(&f, &policy, &question, "123")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_error(&err, "InvalidPolicy");
}

/// Only singleUser, groupMembers and targetManager can name who requests on behalf of
/// others; any other kind used to be stored and then match nobody.
#[tokio::test]
async fn on_behalf_requestors_that_can_never_match_are_refused() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let user = app.create_user("sam").await;
    // (An unknown type is already refused as not a subject set at all.)
    for (i, set) in [
        json!({ "@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1 }),
        json!({ "@odata.type": "#microsoft.graph.internalSponsors" }),
        json!({ "@odata.type": "#microsoft.graph.connectedOrganizationMembers", "connectedOrganizationId": grantry_domain::ids::new_id() }),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({
            "displayName": "On behalf",
            "allowedTargetScope": "allMemberUsers",
            "requestorSettings": {
                "enableOnBehalfRequestorsToAddAccess": true,
                "onBehalfRequestors": [{ "@odata.type": "#microsoft.graph.singleUser", "userId": user }, set]
            },
            "accessPackage": { "id": f.package_id }
        });
        let (status, err) = app.post(&app.admin, &policies("v1.0"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "case {i}: {err}");
        assert_error(&err, "InvalidPolicy");
        assert_eq!(err["error"]["target"], "requestorSettings.onBehalfRequestors[1].@odata.type", "{err}");
    }
    for set in [
        json!({ "@odata.type": "#microsoft.graph.singleUser", "userId": user }),
        json!({ "@odata.type": "#microsoft.graph.groupMembers", "groupId": f.group_id }),
        json!({ "@odata.type": "#microsoft.graph.targetManager", "managerLevel": 1 }),
    ] {
        let body = json!({
            "displayName": "On behalf",
            "allowedTargetScope": "allMemberUsers",
            "requestorSettings": { "enableOnBehalfRequestorsToAddAccess": true, "onBehalfRequestors": [set] },
            "accessPackage": { "id": f.package_id }
        });
        let (status, created) = app.post(&app.admin, &policies("v1.0"), body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
    }
}

/// A PATCH that names another catalog used to answer 204 and change nothing.
#[tokio::test]
async fn a_patch_that_would_move_a_package_is_refused_and_points_at_move_to_catalog() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let other = app.create_catalog("Elsewhere").await;
    let v1 = format!("/v1.0/{EM}/accessPackages/{}", f.package_id);
    let beta = format!("/beta/{EM}/accessPackages/{}", f.package_id);
    let cases = [
        (&v1, json!({ "catalogId": other }), "catalogId"),
        (&v1, json!({ "displayName": "renamed", "catalog": { "id": other } }), "catalog.id"),
        (
            &v1,
            json!({ "catalog@odata.bind": format!("https://graph.microsoft.com/v1.0/{EM}/catalogs/{other}") }),
            "catalog@odata.bind",
        ),
        (&beta, json!({ "catalogId": other }), "catalogId"),
        (&beta, json!({ "accessPackageCatalog": { "id": other } }), "accessPackageCatalog.id"),
    ];
    for (path, body, target) in cases {
        let (status, err) = app.patch(&app.admin, path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_error(&err, "CatalogChangeNotSupported");
        assert_eq!(err["error"]["target"], target, "{err}");
        assert!(err["error"]["message"].as_str().unwrap().contains("moveToCatalog"), "{err}");
    }
    let (_, p) = app.get(&app.admin, &v1).await;
    assert_eq!(p["catalogId"].as_str().unwrap_or(f.catalog_id.as_str()), f.catalog_id);
    assert_ne!(p["displayName"], "renamed", "a refused PATCH writes nothing: {p}");
    let (_, c) = app.get(&app.admin, &format!("{v1}/catalog")).await;
    assert_eq!(c["id"], f.catalog_id);
    // Naming the catalog the package is already in changes nothing and is accepted.
    let (status, body) = app.patch(&app.admin, &v1, json!({ "catalogId": f.catalog_id, "description": "same" })).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

/// Text properties are bounded (a 3 MB catalog name and a 3.9 MB justification used to be
/// stored), and refusals name the property and the limit without echoing the value.
#[tokio::test]
async fn text_longer_than_its_limit_is_refused_naming_the_property_and_the_limit() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let huge = "x".repeat(300_000);
    let catalogs = em("v1.0", "catalogs");
    let check = |status: StatusCode, err: &Value, target: &str, limit: usize| {
        assert_eq!(status, StatusCode::BAD_REQUEST, "{target}: {}", &err.to_string()[..err.to_string().len().min(300)]);
        assert_error(err, "InvalidRequestBody");
        assert_eq!(err["error"]["target"], target);
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(&limit.to_string()), "{message}");
        assert!(err.to_string().len() < 4000, "the value is echoed: {} bytes", err.to_string().len());
    };

    let (status, err) = app.post(&app.admin, &catalogs, json!({ "displayName": huge })).await;
    check(status, &err, "displayName", 256);
    let (status, err) =
        app.post(&app.admin, &catalogs, json!({ "displayName": "ok", "description": "d".repeat(1025) })).await;
    check(status, &err, "description", 1024);
    let (status, created) = app
        .post(&app.admin, &catalogs, json!({ "displayName": "n".repeat(256), "description": "é".repeat(1024) }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "exactly at the limit: {created}");
    let (status, err) = app
        .patch(&app.admin, &em("v1.0", &format!("accessPackages/{}", f.package_id)), json!({ "displayName": huge }))
        .await;
    check(status, &err, "displayName", 256);
    let (status, err) = app
        .post(
            &app.admin,
            "/v1.0/users",
            json!({ "displayName": "u".repeat(257), "userPrincipalName": "u@x.test", "accountEnabled": true }),
        )
        .await;
    check(status, &err, "displayName", 256);

    // Requests: justification and answers.
    let user = app.create_user("tess").await;
    let token = app.user_token(&user, SUBJECT_SCOPES);
    let body = json!({
        "requestType": "userAdd",
        "assignment": { "accessPackageId": f.package_id, "assignmentPolicyId": f.self_policy_id },
        "justification": huge,
    });
    let (status, err) = app.post(&token, &requests(), body).await;
    check(status, &err, "justification", 4000);
    let mut body = self_add(&f, &f.self_policy_id, &grantry_domain::ids::new_id(), &huge);
    body["justification"] = json!("because");
    let (status, err) = app.post(&token, &requests(), body).await;
    check(status, &err, "answers[0].value", 4000);

    // Question texts.
    let body = json!({
        "displayName": "Q", "allowedTargetScope": "allMemberUsers", "accessPackage": { "id": f.package_id },
        "questions": [{ "@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "text": huge }]
    });
    let (status, err) = app.post(&app.admin, &policies("v1.0"), body).await;
    check(status, &err, "questions[0].text", 4000);

    // A refused value is quoted only in part.
    let body =
        json!({ "displayName": "P", "allowedTargetScope": "s".repeat(3000), "accessPackage": { "id": f.package_id } });
    let (status, err) = app.post(&app.admin, &policies("v1.0"), body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.len() < 1200 && message.contains("3000 characters"), "{message}");
}

/// The embedded database holds every entitlement: its directory is created 0700 and
/// its files 0600, and wider permissions on existing ones are reported at start.
#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data").join("grantry");
    let db = data.join("grantry.db");
    let store = grantry_store::Store::open_sqlite(&db, Default::default()).expect("open");
    store.write(|c| c.execute("CREATE TABLE IF NOT EXISTS probe (x INTEGER)", &[]).map(|_| ())).await.unwrap();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(data.parent().unwrap()), 0o700);
    assert_eq!(mode(&db), 0o600);
    for suffix in ["-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
    assert!(grantry_store::permission_warnings(&db).is_empty());
    drop(store);
    // Files made readable by others (say, by a backup restored with a wide umask) are named.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let warnings = grantry_store::permission_warnings(&db);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("grantry.db has mode 644")), "{warnings:?}");
    // Opening it again keeps working (the warning does not refuse to start).
    grantry_store::Store::open_sqlite(&db, Default::default()).expect("reopen");
}
