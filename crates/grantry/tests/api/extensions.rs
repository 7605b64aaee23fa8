//! Custom extensions of a catalog in both dialects: create (with the signing secret shown
//! once), read, list, update, delete (refused while a policy uses one), validation, and the
//! stage settings of policies that name them.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const REQUEST_EXT: &str = "accessPackageAssignmentRequestWorkflowExtension";
const ASSIGNMENT_EXT: &str = "accessPackageAssignmentWorkflowExtension";

fn v1(catalog: &str) -> String {
    format!("/v1.0/{EM}/catalogs/{catalog}/customWorkflowExtensions")
}
fn beta(catalog: &str) -> String {
    format!("/beta/{EM}/accessPackageCatalogs/{catalog}/accessPackageCustomWorkflowExtensions")
}
fn legacy(catalog: &str) -> String {
    format!("/beta/{EM}/accessPackageCatalogs/{catalog}/customAccessPackageWorkflowExtensions")
}

fn http_extension(url: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension",
        "displayName": "ticketing",
        "description": "opens a ticket",
        "endpointConfiguration": { "@odata.type": "#microsoft.graph.httpRequestEndpoint", "targetUrl": url },
        "authenticationConfiguration": { "@odata.type": "#microsoft.graph.azureAdPopTokenAuthentication" },
        "clientConfiguration": { "timeoutInMilliseconds": 1000, "maximumRetries": 1 },
        "callbackConfiguration": {
            "@odata.type": "#microsoft.graph.customExtensionCallbackConfiguration",
            "timeoutDuration": "PT1H"
        }
    })
}

#[tokio::test]
async fn create_read_list_update_delete_in_both_dialects() {
    let app = TestApp::spawn().await;
    let (catalog, _) = app.seed_package().await;
    let (status, created) =
        app.post(&app.admin, &v1(&catalog), http_extension("https://hooks.example.com/grantry")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["@odata.type"], "#microsoft.graph.accessPackageAssignmentRequestWorkflowExtension");
    assert_eq!(created["endpointConfiguration"]["targetUrl"], "https://hooks.example.com/grantry");
    assert_eq!(created["callbackConfiguration"]["timeoutDuration"], "PT1H");
    assert_eq!(created["clientConfiguration"]["maximumRetries"], 1);
    let secret = created["@grantry.signingSecret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() > 40, "{secret}");
    let id = created["id"].as_str().unwrap();

    // Read back in both dialects; the secret is never shown again.
    let (status, got) = app.get(&app.admin, &format!("{}/{id}", v1(&catalog))).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert!(got.get("@grantry.signingSecret").is_none());
    assert!(!got.to_string().contains(secret));
    assert_eq!(got["displayName"], "ticketing");
    let (status, got) = app.get(&app.admin, &format!("{}/{id}", beta(&catalog))).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["id"], id);
    for path in [v1(&catalog), beta(&catalog), legacy(&catalog)] {
        let (status, list) = app.get(&app.admin, &path).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(list["value"].as_array().unwrap().len(), 1, "{path}: {list}");
        assert!(!list.to_string().contains(secret));
    }
    let (_, filtered) = app.get(&app.admin, &format!("{}?$filter=displayName eq 'nothing'", v1(&catalog))).await;
    assert_eq!(filtered["value"], json!([]));

    // PATCH and PUT change what they name.
    let (status, patched) =
        app.patch(&app.admin, &format!("{}/{id}", v1(&catalog)), json!({ "displayName": "ticketing 2" })).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["displayName"], "ticketing 2");
    assert_eq!(patched["description"], "opens a ticket");
    let (status, put) = app
        .put(
            &app.admin,
            &format!("{}/{id}", beta(&catalog)),
            json!({ "@odata.type": format!("#microsoft.graph.{REQUEST_EXT}"), "description": null, "callbackConfiguration": null }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{put}");
    assert_eq!(put["description"], Value::Null);
    assert_eq!(put["callbackConfiguration"], Value::Null);
    // The type cannot change.
    let (status, body) = app
        .patch(
            &app.admin,
            &format!("{}/{id}", v1(&catalog)),
            json!({ "@odata.type": format!("#microsoft.graph.{ASSIGNMENT_EXT}") }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["target"], "@odata.type");

    // Another catalog's path does not reach it.
    let (other, _) = app.seed_package().await;
    let (status, _) = app.get(&app.admin, &format!("{}/{id}", v1(&other))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _) = app.delete(&app.admin, &format!("{}/{id}", v1(&catalog))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&app.admin, &format!("{}/{id}", v1(&catalog))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

/// The beta docs example (api-reference/beta/api/accesspackagecatalog-post-customaccesspackageworkflowextensions.md,
/// via /work/shared/reference/docs-examples.jsonl): no `@odata.type`, posted to the deprecated collection.
#[tokio::test]
async fn the_documented_beta_legacy_example_creates_a_custom_access_package_workflow_extension() {
    let app = TestApp::spawn().await;
    let (catalog, _) = app.seed_package().await;
    let body = json!({
        "displayName": "test_action_0124",
        "description": "this is for graph testing only",
        "endpointConfiguration": {
            "@odata.type": "#microsoft.graph.logicAppTriggerEndpointConfiguration",
            "subscriptionId": "38ab2ccc-3747-4567-b36b-9478f5602f0d",
            "resourceGroupName": "EMLogicApp",
            "logicAppWorkflowName": "customextension_test"
        },
        "authenticationConfiguration": {
            "@odata.type": "#microsoft.graph.azureAdTokenAuthentication",
            "resourceId": "f604bd15-f785-4309-ad7c-6fad18ddb6cb"
        }
    });
    let (status, created) = app.post(&app.admin, &legacy(&catalog), body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["@odata.type"], "#microsoft.graph.customAccessPackageWorkflowExtension");
    assert_eq!(created["endpointConfiguration"]["logicAppWorkflowName"], "customextension_test");
    assert_eq!(created["authenticationConfiguration"]["resourceId"], "f604bd15-f785-4309-ad7c-6fad18ddb6cb");
    // The current collections want the type said.
    let (status, refused) = app.post(&app.admin, &v1(&catalog), body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["target"], "@odata.type");
}

#[tokio::test]
async fn bad_extensions_are_refused_with_the_property_to_fix() {
    let app = TestApp::spawn().await;
    let (catalog, _) = app.seed_package().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "@odata.type": "#microsoft.graph.user" }), "@odata.type"),
        (json!({ "displayName": "" }), "displayName"),
        (json!({ "callbackConfiguration": { "timeoutDuration": "PT1M" } }), "callbackConfiguration.timeoutDuration"),
        (json!({ "callbackConfiguration": { "timeoutDuration": "P15D" } }), "callbackConfiguration.timeoutDuration"),
        (json!({ "callbackConfiguration": {} }), "callbackConfiguration.timeoutDuration"),
        (
            json!({ "endpointConfiguration": { "@odata.type": "#microsoft.graph.httpRequestEndpoint", "targetUrl": "ftp://example.com/x" } }),
            "endpointConfiguration.targetUrl",
        ),
        (
            json!({ "endpointConfiguration": { "@odata.type": "#microsoft.graph.httpRequestEndpoint", "targetUrl": "https://user:pw@example.com/x" } }),
            "endpointConfiguration.targetUrl",
        ),
        (
            json!({ "endpointConfiguration": { "targetUrl": "https://example.com/x" } }),
            "endpointConfiguration.@odata.type",
        ),
        (json!({ "clientConfiguration": { "timeoutInMilliseconds": 5 } }), "clientConfiguration.timeoutInMilliseconds"),
        (json!({ "clientConfiguration": { "maximumRetries": 50 } }), "clientConfiguration.maximumRetries"),
    ];
    for (change, target) in cases {
        let mut body = http_extension("https://hooks.example.com/x");
        if let (Value::Object(b), Value::Object(c)) = (&mut body, change) {
            b.extend(c);
        }
        let (status, resp) = app.post(&app.admin, &v1(&catalog), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{target}: {resp}");
        assert_eq!(resp["error"]["target"], target, "{resp}");
    }
    // Only request extensions wait for a callback.
    let mut body = http_extension("https://hooks.example.com/x");
    body["@odata.type"] = json!(format!("#microsoft.graph.{ASSIGNMENT_EXT}"));
    let (status, resp) = app.post(&app.admin, &v1(&catalog), body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    assert_eq!(resp["error"]["target"], "callbackConfiguration");
    let (status, resp) =
        app.post(&app.admin, &v1("00000000-0000-0000-0000-000000000000"), http_extension("https://a.example/")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{resp}");
    let (_, list) = app.get(&app.admin, &v1(&catalog)).await;
    assert_eq!(list["value"], json!([]), "nothing was stored");
}

#[tokio::test]
async fn policies_name_extensions_of_their_catalog_that_fit_the_stage_and_keep_them_from_deletion() {
    let app = TestApp::spawn().await;
    let (catalog, package) = app.seed_package().await;
    let (other_catalog, _) = app.seed_package().await;
    let request_ext = app.create_extension(&catalog, REQUEST_EXT, json!({})).await["id"].as_str().unwrap().to_string();
    let expiry_ext =
        app.create_extension(&catalog, ASSIGNMENT_EXT, json!({})).await["id"].as_str().unwrap().to_string();
    let foreign =
        app.create_extension(&other_catalog, REQUEST_EXT, json!({})).await["id"].as_str().unwrap().to_string();
    let policies = format!("/v1.0/{EM}/assignmentPolicies");
    let policy = |settings: Value| {
        json!({
            "displayName": "with extensions",
            "allowedTargetScope": "allMemberUsers",
            "requestorSettings": { "enableTargetsToSelfAddAccess": true },
            "accessPackage": { "id": package },
            "customExtensionStageSettings": settings
        })
    };
    let refused = [
        (
            json!([{ "stage": "assignmentRequestCreated", "customExtension": { "id": foreign } }]),
            "[0].customExtension.id",
        ),
        (
            json!([{ "stage": "assignmentRequestGranted", "customExtension": { "id": expiry_ext } }]),
            "[0].customExtension.id",
        ),
        (
            json!([{ "stage": "assignmentOneDayBeforeExpiration", "customExtension": { "id": request_ext } }]),
            "[0].customExtension.id",
        ),
        (
            json!([
                { "stage": "assignmentRequestGranted", "customExtension": { "id": request_ext } },
                { "stage": "assignmentRequestGranted", "customExtension": { "id": request_ext } }
            ]),
            "[1].stage",
        ),
    ];
    for (settings, target) in refused {
        let (status, resp) = app.post(&app.admin, &policies, policy(settings)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
        assert_eq!(resp["error"]["target"], format!("customExtensionStageSettings{target}"), "{resp}");
    }
    let (status, created) = app
        .post(
            &app.admin,
            &policies,
            policy(json!([
                { "stage": "assignmentRequestCreated", "customExtension": { "id": request_ext.to_uppercase() } },
                { "stage": "assignmentFourteenDaysBeforeExpiration", "customExtension": { "id": expiry_ext } }
            ])),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let policy_id = created["id"].as_str().unwrap().to_string();

    // $expand=customExtensionStageSettings($expand=customExtension): whole extensions, in
    // both dialects (beta also under customExtensionHandlers); without it, {id} stubs.
    let (status, plain) = app.get(&app.admin, &format!("{policies}/{policy_id}")).await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    assert_eq!(plain["customExtensionStageSettings"][0]["customExtension"], json!({ "id": request_ext }));
    let expanded_paths = [
        format!("{policies}/{policy_id}?$expand=customExtensionStageSettings($expand=customExtension)"),
        format!(
            "/beta/{EM}/accessPackageAssignmentPolicies/{policy_id}?$expand=customExtensionStageSettings($expand=customExtension)"
        ),
        format!(
            "/beta/{EM}/accessPackageAssignmentPolicies/{policy_id}?$expand=customExtensionHandlers($expand=customExtension)"
        ),
        format!("{policies}?$expand=customExtensionStageSettings($expand=customExtension)"),
    ];
    for path in &expanded_paths {
        let (status, got) = app.get(&app.admin, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {got}");
        let policy = if got["value"].is_array() {
            got["value"].as_array().unwrap().iter().find(|p| p["id"] == policy_id.as_str()).unwrap().clone()
        } else {
            got
        };
        let key = if path.contains("customExtensionHandlers") {
            "customExtensionHandlers"
        } else {
            "customExtensionStageSettings"
        };
        let settings = policy[key].as_array().unwrap_or_else(|| panic!("{path}: {policy}"));
        assert_eq!(settings.len(), 2, "{policy}");
        for s in settings {
            let e = &s["customExtension"];
            let expected = if s["stage"].as_str().unwrap().eq_ignore_ascii_case("assignmentRequestCreated") {
                (&request_ext, REQUEST_EXT)
            } else {
                (&expiry_ext, ASSIGNMENT_EXT)
            };
            assert_eq!(e["id"], expected.0.as_str(), "{path}: {s}");
            assert_eq!(e["@odata.type"], format!("#microsoft.graph.{}", expected.1), "{s}");
            assert!(e["displayName"].is_string(), "{s}");
            assert!(e.get("@grantry.signingSecret").is_none() && !s.to_string().contains("whsec_"), "{s}");
        }
    }
    let (status, resp) = app
        .get(&app.admin, &format!("{policies}/{policy_id}?$expand=customExtensionStageSettings($expand=accessPackage)"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    assert_eq!(resp["error"]["target"], "$expand");

    // In use: delete refused, nothing changed.
    for ext in [&request_ext, &expiry_ext] {
        let (status, resp) = app.delete(&app.admin, &format!("{}/{ext}", v1(&catalog))).await;
        assert_eq!(status, StatusCode::CONFLICT, "{resp}");
        assert_error(&resp, "CustomExtensionInUse");
        let (status, _) = app.get(&app.admin, &format!("{}/{ext}", v1(&catalog))).await;
        assert_eq!(status, StatusCode::OK);
    }
    // The unused one in the other catalog can go.
    let (status, _) = app.delete(&app.admin, &format!("{}/{foreign}", v1(&other_catalog))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Once the policy lets go, the extension can be deleted.
    let mut replaced = policy(json!([]));
    replaced["id"] = json!(policy_id);
    let (status, resp) = app.put(&app.admin, &format!("{policies}/{policy_id}"), replaced).await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let (status, _) = app.delete(&app.admin, &format!("{}/{request_ext}", beta(&catalog))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn catalog_roles_decide_who_reads_and_who_writes() {
    let app = TestApp::spawn().await;
    let (catalog, _) = app.seed_package().await;
    let existing = app.create_extension(&catalog, REQUEST_EXT, json!({})).await["id"].as_str().unwrap().to_string();
    let reader = app.create_user("reader").await;
    app.grant_catalog_role(&reader, CATALOG_READER, &catalog).await;
    let owner = app.create_user("owner").await;
    app.grant_catalog_role(&owner, CATALOG_OWNER, &catalog).await;
    let manager = app.create_user("manager").await;
    app.grant_catalog_role(&manager, ACCESS_PACKAGE_MANAGER, &catalog).await;
    let stranger = app.create_user("stranger").await;
    let (reader, owner, manager, stranger) = (
        app.user_token_default(&reader),
        app.user_token_default(&owner),
        app.user_token_default(&manager),
        app.user_token_default(&stranger),
    );
    let item = format!("{}/{existing}", v1(&catalog));

    let (status, list) = app.get(&reader, &v1(&catalog)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    for token in [&stranger] {
        let (status, _) = app.get(token, &v1(&catalog)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = app.get(token, &item).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    for token in [&reader, &manager, &stranger] {
        let (status, resp) = app.post(token, &v1(&catalog), http_extension("https://a.example/")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{resp}");
        let (status, _) = app.patch(token, &item, json!({ "displayName": "x" })).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = app.delete(token, &item).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let read_only = app.app_token(&["EntitlementManagement.Read.All"]);
    let (status, _) = app.post(&read_only, &v1(&catalog), http_extension("https://a.example/")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = app.get(&app.admin, &v1(&catalog)).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1, "nothing was written");
    assert_ne!(list["value"][0]["displayName"], "x");

    let (status, created) = app.post(&owner, &v1(&catalog), http_extension("https://a.example/")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, _) = app.delete(&owner, &item).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}
