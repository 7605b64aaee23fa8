//! Access package assignment policies in both dialects.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const V1: &str = "/v1.0/identityGovernance/entitlementManagement/assignmentPolicies";
const BETA: &str = "/beta/identityGovernance/entitlementManagement/accessPackageAssignmentPolicies";
const USER_A: &str = "7deff43e-1f17-44ef-9e5f-d516b0ba11d4";
const GROUP_A: &str = "1623f912-5e86-41c2-af47-39dd67582b66";
/// The extension id of the documented examples.
const DOC_EXTENSION: &str = "219f57b6-7983-45a1-be01-2c228b7a43f8";

/// Every property of `expected` is in `actual` with the same value, allowing the documented
/// input leniencies (booleans and numbers as strings, `@odata.type` without `#` or on
/// non-polymorphic values, ids in any case, beta approvers in any order).
#[track_caller]
fn assert_subset(expected: &Value, actual: &Value, path: &str) {
    assert!(subset(expected, actual, path).is_ok(), "{}", subset(expected, actual, path).unwrap_err());
}

fn subset(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    let fail = || Err(format!("{path}: expected {expected}, got {actual}"));
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                if k == "@odata.type" && !a.contains_key(k) {
                    continue;
                }
                subset(ev, a.get(k).unwrap_or(&Value::Null), &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, ev) in e.iter().enumerate() {
                let p = format!("{path}[{i}]");
                if !a.iter().any(|av| subset(ev, av, &p).is_ok()) {
                    return subset(ev, &a[i], &p);
                }
            }
            Ok(())
        }
        (Value::String(e), Value::Bool(a)) if e.parse::<bool>().ok() == Some(*a) => Ok(()),
        (Value::String(e), Value::Number(a)) if *e == a.to_string() => Ok(()),
        (Value::String(e), Value::String(a))
            if e.trim_start_matches('#') == a.trim_start_matches('#') || e.eq_ignore_ascii_case(a) =>
        {
            Ok(())
        }
        (Value::String(e), Value::String(a)) if path.ends_with("DateTime") => {
            // Graph times carry up to 7 fractional digits; Grantry keeps microseconds.
            let p = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
            match (p(e), p(a)) {
                (Some(x), Some(y)) if (x - y).num_microseconds().is_some_and(|d| d.abs() < 1) => Ok(()),
                _ => fail(),
            }
        }
        _ if expected == actual => Ok(()),
        _ => fail(),
    }
}

fn strip(mut v: Value, keys: &[&str]) -> Value {
    if let Value::Object(m) = &mut v {
        for k in keys {
            m.remove(*k);
        }
    }
    v
}

/// The fixture's request with its package and placeholder ids made real.
fn request(name: &str, package: &str) -> Value {
    let text = fixture(name)["request"].to_string();
    let text = text.replace("string (identifier)", USER_A);
    let mut v: Value = serde_json::from_str(&text).unwrap();
    if v.get("accessPackage").is_some() {
        v["accessPackage"] = json!({ "id": package });
    }
    if v.get("accessPackageId").is_some() {
        v["accessPackageId"] = json!(package);
    }
    v
}

async fn create_ok(app: &TestApp, path: &str, body: Value) -> Value {
    let (status, created) = app.post(&app.admin, path, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {created}");
    created
}

fn minimal_v1(package: &str) -> Value {
    json!({
        "displayName": "Self service",
        "allowedTargetScope": "allMemberUsers",
        "requestorSettings": { "enableTargetsToSelfAddAccess": true },
        "accessPackage": { "id": package }
    })
}

#[tokio::test]
async fn documented_v1_create_examples_read_back_in_v1() {
    let app = TestApp::spawn().await;
    let (_, package) = app.seed_package().await;
    for name in ["v1_create_direct", "v1_create_external_two_stage", "v1_create_auto_assignment", "v1_create_questions"]
    {
        let body = request(name, &package);
        let created = create_ok(&app, V1, body.clone()).await;
        let expected = strip(body, &["accessPackage"]);
        assert_subset(&expected, &created, name);
        let documented = &fixture(name)["response"];
        if let Value::Object(m) = documented {
            for k in m.keys().filter(|k| *k != "id" && !k.ends_with("DateTime")) {
                assert!(created.get(k).is_some(), "{name}: response lacks documented '{k}'");
            }
        }
        let id = created["id"].as_str().unwrap();
        assert!(grantry_domain::ids::is_guid(id));
        let (status, got) = app.get(&app.admin, &format!("{V1}/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            strip(got, &["@odata.context"]),
            strip(created, &["@odata.context"]),
            "{name}: GET differs from POST"
        );
    }
    // Question ids are service-assigned GUIDs.
    let (_, list) = app.get(&app.admin, &format!("{V1}?$filter=displayName eq 'A Policy With Questions'")).await;
    let questions = list["value"][0]["questions"].as_array().unwrap().clone();
    assert_eq!(questions.len(), 2);
    assert!(questions.iter().all(|q| grantry_domain::ids::is_guid(q["id"].as_str().unwrap())));
    assert_eq!(questions[1]["regexPattern"], "[a-zA-Z]+[a-zA-Z\\s]*");
}

#[tokio::test]
async fn documented_beta_create_examples_read_back_in_beta() {
    let app = TestApp::spawn().await;
    let (catalog, package) = app.seed_package().await;
    let extension = app.create_extension(&catalog, "customAccessPackageWorkflowExtension", json!({})).await;
    let extension = extension["id"].as_str().unwrap();
    for name in
        ["beta_create_direct", "beta_create_multistage", "beta_create_questions", "beta_create_extension_handlers"]
    {
        // The documented extension id stands for one of the catalog's extensions.
        let body: Value =
            serde_json::from_str(&request(name, &package).to_string().replace(DOC_EXTENSION, extension)).unwrap();
        let created = create_ok(&app, BETA, body.clone()).await;
        // The extension-handlers example also sends v1.0's `expiration`, which the beta
        // answer does not carry (its days are in `durationInDays`).
        let expected = strip(
            body,
            &[
                "customExtensionHandlers",
                "requestApprovalSettings",
                "accessReviewSettings",
                "requestorSettings",
                "expiration",
            ],
        );
        assert_subset(&expected, &created, name);
        for k in ["requestApprovalSettings", "accessReviewSettings", "requestorSettings"] {
            if let Some(v) = fixture(name)["request"].get(k).filter(|v| !v.is_null()) {
                let v: Value = serde_json::from_str(&v.to_string().replace("string (identifier)", USER_A)).unwrap();
                let v = strip(v, &["isOnBehalfAllowed"]);
                assert_subset(&v, &created[k], &format!("{name}.{k}"));
            }
        }
        assert_eq!(created["accessPackageId"], package);
        let id = created["id"].as_str().unwrap();
        let (status, got) = app.get(&app.admin, &format!("{BETA}/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(strip(got, &["@odata.context"]), strip(created, &["@odata.context"]), "{name}");
    }
    // The documented beta response values.
    let (_, list) = app.get(&app.admin, &format!("{BETA}?$filter=displayName eq 'extension-policy'")).await;
    let p = &list["value"][0];
    assert_eq!(p["requestApprovalSettings"]["approvalMode"], "NoApproval");
    assert_eq!(p["customExtensionStageSettings"].as_array().unwrap().len(), 2);
    assert_eq!(p["customExtensionStageSettings"][0]["customExtension"]["id"], extension);
    let (_, expanded) =
        app.get(&app.admin, &format!("{BETA}/{}?$expand=customExtensionHandlers", p["id"].as_str().unwrap())).await;
    assert_eq!(expanded["customExtensionHandlers"][1]["stage"], "assignmentRequestGranted");
}

#[tokio::test]
async fn seed_003_placeholders_are_refused_and_real_values_accepted_on_the_old_root() {
    let app = TestApp::spawn().await;
    let (_, package) = app.seed_package().await;
    let raw = fixture("seed003_beta_create_placeholders")["request"].clone();
    let (status, body) = app.post(&app.admin, "/beta/accessPackageAssignmentPolicies", raw.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "InvalidRequestBody");
    assert_eq!(body["error"]["target"], "requestorSettings.scopeType");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("Scope Type value") && message.contains("AllExistingDirectorySubjects"), "{message}");

    let mut real = raw;
    real["accessPackageId"] = json!(package);
    real["expirationDateTime"] = json!("2030-12-31T23:56:49.0349895+03:00");
    real["requestorSettings"]["scopeType"] = json!("SpecificDirectorySubjects");
    real["requestorSettings"]["allowedRequestors"][0]["id"] = json!(USER_A);
    real["requestApprovalSettings"]["approvalMode"] = json!("SingleStage");
    let stage = &mut real["requestApprovalSettings"]["approvalStages"][0];
    stage["primaryApprovers"][0]["id"] = json!(USER_A);
    stage["escalationApprovers"][0]["id"] = json!(USER_A);
    real["accessReviewSettings"]["recurrenceType"] = json!("quarterly");
    real["accessReviewSettings"]["reviewerType"] = json!("Reviewers");
    real["accessReviewSettings"]["reviewers"][0]["id"] = json!(GROUP_A);
    real["accessReviewSettings"]["reviewers"][0]["@odata.type"] = json!("microsoft.graph.groupMembers");
    let created =
        create_ok(&app, &format!("/beta/accessPackages/{package}/accessPackageAssignmentPolicies"), real.clone()).await;
    let expected = strip(real, &["createdBy", "modifiedBy", "@odata.type", "expirationDateTime"]);
    assert_subset(&expected, &created, "seed003");
    assert_eq!(created["expirationDateTime"], "2030-12-31T20:56:49.034989Z");
    assert_eq!(created["durationInDays"], 14);
    assert_eq!(created["createdBy"], "test");
    let (_, v1) = app.get(&app.admin, &format!("{V1}/{}", created["id"].as_str().unwrap())).await;
    assert_eq!(v1["expiration"]["type"], "afterDateTime");
    assert_eq!(v1["requestApprovalSettings"]["stages"][0]["durationBeforeEscalation"], "PT7M");
    assert_eq!(v1["specificAllowedTargets"][0]["userId"], USER_A);
}

#[tokio::test]
async fn policies_read_across_dialects() {
    let app = TestApp::spawn().await;
    let (catalog, package) = app.seed_package().await;
    let v1 = create_ok(&app, V1, request("v1_create_external_two_stage", &package)).await;
    let (status, beta) = app.get(&app.admin, &format!("{BETA}/{}", v1["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(beta["requestorSettings"]["scopeType"], "AllConfiguredConnectedOrganizationSubjects");
    assert_eq!(beta["requestApprovalSettings"]["approvalMode"], "Serial");
    assert_eq!(beta["requestApprovalSettings"]["approvalStages"][1]["primaryApprovers"][0]["isBackup"], true);
    assert_eq!(beta["accessReviewSettings"]["recurrenceType"], "quarterly");
    assert!(beta.get("allowedTargetScope").is_none());

    let b = create_ok(&app, BETA, request("beta_create_multistage", &package)).await;
    let (_, v1) =
        app.get(&app.admin, &format!("{V1}/{}?$expand=accessPackage,catalog", b["id"].as_str().unwrap())).await;
    assert_eq!(v1["allowedTargetScope"], "allConfiguredConnectedOrganizationUsers");
    assert_eq!(v1["expiration"]["duration"], "P365D");
    assert_eq!(v1["requestApprovalSettings"]["stages"][0]["durationBeforeEscalation"], "P8D");
    assert_eq!(v1["requestApprovalSettings"]["stages"][0]["fallbackEscalationApprovers"][0]["userId"], USER_A);
    assert_eq!(v1["reviewSettings"]["isSelfReview"], true);
    assert_eq!(v1["accessPackage"]["id"], package);
    assert_eq!(v1["catalog"]["id"], catalog);
    assert!(v1.get("accessPackageId").is_none() && v1.get("durationInDays").is_none());
    let (_, beta) =
        app.get(&app.admin, &format!("{BETA}/{}?$expand=accessPackageCatalog", b["id"].as_str().unwrap())).await;
    assert_eq!(beta["accessPackageCatalog"]["catalogStatus"], "Published");
}

#[tokio::test]
async fn put_replaces_the_whole_policy() {
    let app = TestApp::spawn().await;
    let (catalog, package) = app.seed_package().await;
    let extension = app.create_extension(&catalog, "accessPackageAssignmentRequestWorkflowExtension", json!({})).await;
    let mut body = request("v1_create_questions", &package);
    body["customExtensionStageSettings"] =
        json!([{ "stage": "assignmentRequestCreated", "customExtension": { "id": extension["id"] } }]);
    body["reviewSettings"] = fixture("v1_create_external_two_stage")["request"]["reviewSettings"].clone();
    let created = create_ok(&app, V1, body).await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["customExtensionStageSettings"].as_array().unwrap().len(), 1);

    let mut put = request("v1_put_all_users", &package);
    put["id"] = json!(id);
    put["customExtensionStageSettings"] = json!([]);
    let (status, replaced) = app.put(&app.admin, &format!("{V1}/{id}"), put.clone()).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_subset(&strip(put, &["accessPackage"]), &replaced, "put");
    assert_eq!(replaced["questions"], json!([]), "omitted questions are cleared");
    assert_eq!(replaced["reviewSettings"], Value::Null, "omitted reviewSettings are cleared");
    assert_eq!(replaced["customExtensionStageSettings"], json!([]));
    assert_eq!(replaced["createdDateTime"], created["createdDateTime"]);
    let (_, got) = app.get(&app.admin, &format!("{V1}/{id}")).await;
    assert_eq!(strip(got, &["@odata.context"]), strip(replaced, &["@odata.context"]));

    // The package cannot change.
    let (_, other) = app.seed_package().await;
    let mut moved = request("v1_put_all_users", &other);
    moved["id"] = json!(id);
    let (status, body) = app.put(&app.admin, &format!("{V1}/{id}"), moved).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "InvalidAccessPackage");
    assert_eq!(body["error"]["target"], "accessPackage.id");

    // Beta PUT with questions keeps question ids it names and assigns new ones otherwise.
    let (_, with_q) = app.put(&app.admin, &format!("{BETA}/{id}"), request("beta_put_questions", &package)).await;
    let q0 = with_q["questions"][0]["id"].as_str().unwrap().to_string();
    let mut again = request("beta_put_questions", &package);
    again["questions"][0]["id"] = json!(q0.to_uppercase());
    let (status, again) = app.put(&app.admin, &format!("{BETA}/{id}"), again).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["questions"][0]["id"], q0);
    assert_ne!(again["questions"][1]["id"], with_q["questions"][1]["id"]);
    // The beta "remove the handlers" example.
    let (status, cleared) =
        app.put(&app.admin, &format!("{BETA}/{id}"), request("beta_put_clear_handlers", &package)).await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["customExtensionStageSettings"], json!([]));
    assert!(cleared.get("expiration").is_none(), "beta answers carry beta properties only: {cleared}");
    assert_eq!(cleared["durationInDays"], 365);
}

#[tokio::test]
async fn patch_updates_only_what_is_sent() {
    let app = TestApp::spawn().await;
    let (_, package) = app.seed_package().await;
    let created = create_ok(&app, V1, request("v1_create_questions", &package)).await;
    let id = created["id"].as_str().unwrap();
    let (status, patched) = app.patch(&app.admin, &format!("{V1}/{id}"), json!({ "description": "changed" })).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["description"], "changed");
    assert_eq!(patched["questions"], created["questions"], "question ids survive");
    assert_eq!(patched["requestApprovalSettings"], created["requestApprovalSettings"]);
    let (status, patched) =
        app.patch(&app.admin, &format!("{BETA}/{id}"), json!({ "durationInDays": 30, "canExtend": false })).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["durationInDays"], 30);
    assert_eq!(patched["canExtend"], false);
}

#[tokio::test]
async fn validation_rules_answer_400_naming_the_property() {
    let app = TestApp::spawn().await;
    let (_, package) = app.seed_package().await;
    let stage = |extra: Value| {
        let mut s = json!({ "durationBeforeAutomaticDenial": "P14D", "primaryApprovers": [{ "@odata.type": "#microsoft.graph.singleUser", "userId": USER_A }] });
        s.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        s
    };
    let approval = |stages: Value| json!({ "isApprovalRequiredForAdd": true, "stages": stages });
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({ "displayName": null }), "InvalidRequestBody", "displayName"),
        (
            json!({ "accessPackage": { "id": "00000000-0000-0000-0000-000000000001" } }),
            "InvalidAccessPackage",
            "accessPackage.id",
        ),
        (json!({ "accessPackage": null, "accessPackageId": "nope" }), "InvalidAccessPackage", "accessPackageId"),
        (json!({ "accessPackage": null }), "InvalidAccessPackage", "accessPackage"),
        (
            json!({ "requestApprovalSettings": approval(json!([stage(json!({})), stage(json!({})), stage(json!({})), stage(json!({}))])) }),
            "InvalidPolicy",
            "requestApprovalSettings.stages",
        ),
        (json!({ "requestApprovalSettings": approval(json!([])) }), "InvalidPolicy", "requestApprovalSettings.stages"),
        (
            json!({ "requestApprovalSettings": approval(json!([stage(json!({ "isEscalationEnabled": true, "durationBeforeEscalation": "P2D" }))])) }),
            "InvalidPolicy",
            "requestApprovalSettings.stages[0].escalationApprovers",
        ),
        (
            json!({ "requestApprovalSettings": approval(json!([stage(json!({ "isEscalationEnabled": true, "durationBeforeEscalation": "P20D", "escalationApprovers": [{ "@odata.type": "#microsoft.graph.singleUser", "userId": USER_A }] }))])) }),
            "InvalidPolicy",
            "requestApprovalSettings.stages[0].durationBeforeEscalation",
        ),
        (
            json!({ "requestApprovalSettings": approval(json!([stage(json!({ "durationBeforeAutomaticDenial": "P3D", "isEscalationEnabled": true, "durationBeforeEscalation": "P1D", "escalationApprovers": [{ "@odata.type": "#microsoft.graph.singleUser", "userId": USER_A }] }))])) }),
            "InvalidPolicy",
            "requestApprovalSettings.stages[0].durationBeforeAutomaticDenial",
        ),
        (
            json!({ "requestApprovalSettings": approval(json!([
                stage(json!({ "primaryApprovers": [{ "@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1 }] })),
                stage(json!({ "primaryApprovers": [{ "@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 2 }] }))
            ])) }),
            "InvalidPolicy",
            "requestApprovalSettings.stages[1].primaryApprovers",
        ),
        (
            json!({ "questions": [{ "@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "text": "Code?", "regexPattern": "[a-" }] }),
            "InvalidPolicy",
            "questions[0].regexPattern",
        ),
        (
            json!({ "requestApprovalSettings": approval(json!([stage(json!({ "durationBeforeAutomaticDenial": "PT0S" }))])) }),
            "InvalidPolicy",
            "requestApprovalSettings.stages[0].durationBeforeAutomaticDenial",
        ),
        (
            json!({ "requestApprovalSettings": approval(json!([stage(json!({ "durationBeforeAutomaticDenial": "fortnight" }))])) }),
            "InvalidRequestBody",
            "requestApprovalSettings.stages[0].durationBeforeAutomaticDenial",
        ),
        (
            json!({ "requestApprovalSettings": approval(json!([stage(json!({ "primaryApprovers": [{ "@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 3 }] }))])) }),
            "InvalidPolicy",
            "requestApprovalSettings.stages[0].primaryApprovers[0].managerLevel",
        ),
        (
            json!({ "requestorSettings": { "enableOnBehalfRequestorsToAddAccess": true, "onBehalfRequestors": [{ "@odata.type": "#microsoft.graph.targetManager", "managerLevel": 5 }] } }),
            "InvalidPolicy",
            "requestorSettings.onBehalfRequestors[0].managerLevel",
        ),
        (json!({ "allowedTargetScope": "specificDirectoryUsers" }), "InvalidPolicy", "specificAllowedTargets"),
        (
            json!({ "allowedTargetScope": "notSpecified", "specificAllowedTargets": [{ "@odata.type": "#microsoft.graph.groupMembers", "groupId": GROUP_A }] }),
            "InvalidPolicy",
            "specificAllowedTargets",
        ),
        (json!({ "allowedTargetScope": "Allowed Target Scope value" }), "InvalidRequestBody", "allowedTargetScope"),
        (
            json!({ "questions": [{ "@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "isRequired": true }] }),
            "InvalidPolicy",
            "questions[0].text",
        ),
        (
            json!({ "questions": [{ "@odata.type": "#microsoft.graph.accessPackageMultipleChoiceQuestion", "text": "Where?" }] }),
            "InvalidPolicy",
            "questions[0].choices",
        ),
        (
            json!({ "questions": [{ "@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "text": "Id?", "regexPattern": "([0-9]+" }] }),
            "InvalidPolicy",
            "questions[0].regexPattern",
        ),
        (json!({ "expiration": { "type": "afterDateTime" } }), "InvalidPolicy", "expiration.endDateTime"),
        (json!({ "expiration": { "type": "afterDuration" } }), "InvalidPolicy", "expiration.duration"),
        (
            json!({ "expiration": { "type": "afterDuration", "duration": "-P1D" } }),
            "InvalidPolicy",
            "expiration.duration",
        ),
        (
            json!({ "allowedTargetScope": "specificDirectoryUsers", "specificAllowedTargets": [{ "@odata.type": "#microsoft.graph.singleUser", "userId": "Id value" }] }),
            "InvalidPolicy",
            "specificAllowedTargets[0].userId",
        ),
    ];
    for (patch, code, target) in cases {
        let mut body = minimal_v1(&package);
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        let (status, resp) = app.post(&app.admin, V1, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{target}: {resp}");
        assert_error(&resp, code);
        assert_eq!(resp["error"]["target"], target, "{resp}");
    }
    // Beta-shaped contradictions use beta names.
    let beta_cases: Vec<(Value, &str)> = vec![
        (
            json!({ "isApprovalRequired": true, "approvalMode": "NoApproval", "approvalStages": [] }),
            "requestApprovalSettings.approvalMode",
        ),
        (
            json!({ "isApprovalRequired": true, "approvalMode": "Serial", "approvalStages": [{ "approvalStageTimeOutInDays": 14, "primaryApprovers": [{ "@odata.type": "#microsoft.graph.singleUser", "id": USER_A }] }] }),
            "requestApprovalSettings.approvalMode",
        ),
        (
            json!({ "isApprovalRequired": true, "approvalStages": [{ "approvalStageTimeOutInDays": 0, "primaryApprovers": [{ "@odata.type": "#microsoft.graph.singleUser", "id": USER_A }] }] }),
            "requestApprovalSettings.approvalStages[0].approvalStageTimeOutInDays",
        ),
        (json!({ "isApprovalRequired": true, "approvalMode": "NoApproval" }), "requestApprovalSettings.approvalMode"),
    ];
    for (ra, target) in beta_cases {
        let body = json!({ "accessPackageId": package, "displayName": "b", "requestorSettings": { "scopeType": "AllExistingDirectorySubjects" }, "requestApprovalSettings": ra });
        let (status, resp) = app.post(&app.admin, BETA, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{target}: {resp}");
        assert_eq!(resp["error"]["target"], target, "{resp}");
    }
    // Stage settings must name an extension of the catalog.
    let mut body = minimal_v1(&package);
    body["customExtensionStageSettings"] =
        json!([{ "stage": "assignmentRequestGranted", "customExtension": { "id": GROUP_A } }]);
    let (status, resp) = app.post(&app.admin, V1, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    assert_error(&resp, "InvalidCustomExtension");
    assert_eq!(resp["error"]["target"], "customExtensionStageSettings[0].customExtension.id");
    // Stages kept while approval is not required are accepted.
    let mut body = minimal_v1(&package);
    body["requestApprovalSettings"] = json!({ "isApprovalRequiredForAdd": false, "stages": [stage(json!({}))] });
    let created = create_ok(&app, V1, body).await;
    assert_eq!(created["requestApprovalSettings"]["stages"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn list_filters_and_nested_paths() {
    let app = TestApp::spawn().await;
    let (catalog, package) = app.seed_package().await;
    let (other_catalog, other) = app.seed_package().await;
    let nested = format!("/v1.0/identityGovernance/entitlementManagement/accessPackages/{package}/assignmentPolicies");
    let mut body = minimal_v1(&package);
    body.as_object_mut().unwrap().remove("accessPackage");
    let a = create_ok(&app, &nested, body).await;
    assert_eq!(a["displayName"], "Self service");
    let beta_nested = format!(
        "/beta/identityGovernance/entitlementManagement/accessPackageCatalogs/{other_catalog}/accessPackages/{other}/accessPackageAssignmentPolicies"
    );
    let b = create_ok(
        &app,
        &beta_nested,
        json!({ "displayName": "Other", "requestorSettings": { "scopeType": "NoSubjects", "acceptRequests": true } }),
    )
    .await;
    assert_eq!(b["accessPackageId"], other);
    // Wrong catalog in the path → 404; a different package in the body → 400.
    let wrong = format!(
        "/v1.0/identityGovernance/entitlementManagement/catalogs/{catalog}/accessPackages/{other}/assignmentPolicies"
    );
    let (status, _) = app.post(&app.admin, &wrong, json!({ "displayName": "x" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, resp) = app.post(&app.admin, &nested, minimal_v1(&other)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&resp, "InvalidAccessPackage");

    let count = |v: &Value| v["value"].as_array().unwrap().len();
    let (_, all) = app.get(&app.admin, V1).await;
    assert_eq!(count(&all), 2);
    let (_, by_pkg) = app.get(&app.admin, &format!("{V1}?$filter=accessPackage/id eq '{package}'")).await;
    assert_eq!((count(&by_pkg), by_pkg["value"][0]["id"].clone()), (1, a["id"].clone()));
    let (_, by_pkg) = app.get(&app.admin, &format!("{BETA}?$filter=accessPackageId eq '{other}'")).await;
    assert_eq!((count(&by_pkg), by_pkg["value"][0]["id"].clone()), (1, b["id"].clone()));
    let (_, by_name) = app.get(&app.admin, &format!("{V1}?$filter=displayName eq 'Other'")).await;
    assert_eq!(count(&by_name), 1);
    let (_, nested_list) = app.get(&app.admin, &beta_nested).await;
    assert_eq!(count(&nested_list), 1);
    let (status, got) = app.get(&app.admin, &format!("{nested}/{}", a["id"].as_str().unwrap())).await;
    assert_eq!((status, got["id"].clone()), (StatusCode::OK, a["id"].clone()));
    let (status, _) = app.get(&app.admin, &format!("{nested}/{}", b["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, resp) = app.get(&app.admin, &format!("{V1}?$filter=startswith(displayName,'O')")).await;
    assert_eq!((status, count(&resp)), (StatusCode::OK, 1), "{resp}");
    let (status, resp) = app.get(&app.admin, &format!("{V1}?$filter=reviewSettings eq null")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&resp, "InvalidFilter");
    assert_eq!(resp["error"]["target"], "$filter");
    let (status, _) = app.get(&app.admin, &format!("{V1}?$expand=resources")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, paged) = app.get(&app.admin, &format!("{V1}?$top=1")).await;
    assert_eq!((status, count(&paged)), (StatusCode::OK, 1));
    assert!(paged["@odata.nextLink"].is_string());
}

#[tokio::test]
async fn permissions_are_checked_per_catalog() {
    let app = TestApp::spawn().await;
    let (catalog, package) = app.seed_package().await;
    let (_, other) = app.seed_package().await;
    let mine = create_ok(&app, V1, minimal_v1(&package)).await;
    let theirs = create_ok(&app, V1, minimal_v1(&other)).await;
    let read_only = app.app_token(&["EntitlementManagement.Read.All"]);
    let (status, _) = app.post(&read_only, V1, minimal_v1(&package)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get(&read_only, &format!("{V1}/{}", mine["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::OK);

    let reader = app.create_user("reader").await;
    app.grant_catalog_role(&reader, "44272f93-9762-48e8-af59-1b5351b1d6b3", &catalog).await;
    let token = app.user_token_default(&reader);
    let (status, list) = app.get(&token, V1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["value"].as_array().unwrap().len(), 1, "a catalog reader sees only their catalog");
    let (status, _) = app.get(&token, &format!("{V1}/{}", theirs["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, resp) = app.post(&token, V1, minimal_v1(&package)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&resp, "accessDenied");
    let (status, _) = app.delete(&token, &format!("{V1}/{}", mine["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let manager = app.create_user("manager").await;
    app.grant_catalog_role(&manager, "7f480852-ebdc-47d4-87de-0d8498384a83", &catalog).await;
    let token = app.user_token_default(&manager);
    create_ok(&app, V1, minimal_v1(&package)).await;
    let (status, _) = app.post(&token, V1, minimal_v1(&package)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app.post(&token, V1, minimal_v1(&other)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn delete_is_refused_while_assignments_are_active() {
    let app = TestApp::spawn().await;
    let (catalog, package) = app.seed_package().await;
    let kept = create_ok(&app, V1, minimal_v1(&package)).await;
    let kept_id = kept["id"].as_str().unwrap();
    app.seed_assignment(&catalog, &package, kept_id).await;
    let (status, body) = app.delete(&app.admin, &format!("{V1}/{kept_id}")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&body, "PolicyHasAssignments");

    let gone = create_ok(&app, V1, minimal_v1(&package)).await;
    let gone_id = gone["id"].as_str().unwrap();
    let (status, _) = app.delete(&app.admin, &format!("{BETA}/{gone_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&app.admin, &format!("{V1}/{gone_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "ResourceNotFound");
}
