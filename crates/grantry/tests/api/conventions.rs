//! Graph HTTP conventions: error envelope for every class of bad input, request ids,
//! authentication failures, path normalisation.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn unknown_route_is_404_in_the_envelope() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get(&app.admin, "/v1.0/identityGovernance/nothingHere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "UnknownResource");
}

#[tokio::test]
async fn wrong_method_is_405_in_the_envelope() {
    let app = TestApp::spawn().await;
    let (status, body) = app.delete(&app.admin, "/v1.0/users").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, "MethodNotAllowed");
}

#[tokio::test]
async fn malformed_json_and_wrong_content_type_are_rejected() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(app.url("/v1.0/users"))
        .bearer_auth(&app.admin)
        .header("Content-Type", "application/json")
        .body("{\"displayName\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_error(&resp.json().await.unwrap(), "InvalidRequestBody");

    let resp = app
        .client
        .post(app.url("/v1.0/users"))
        .bearer_auth(&app.admin)
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error(&resp.json().await.unwrap(), "UnsupportedMediaType");

    let resp = app
        .client
        .post(app.url("/v1.0/users"))
        .bearer_auth(&app.admin)
        .header("Content-Type", "application/json")
        .body(vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_error(&resp.json().await.unwrap(), "InvalidRequestBody");

    let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
    let resp = app
        .client
        .post(app.url("/v1.0/users"))
        .bearer_auth(&app.admin)
        .header("Content-Type", "application/json")
        .body(format!("{{\"a\":{deep}}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_error(&resp.json().await.unwrap(), "InvalidRequestBody");

    let (status, body) = app.call(reqwest::Method::POST, &app.admin, "/v1.0/users", Some(&json!([1, 2]))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "InvalidRequestBody");
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = TestApp::spawn_with(Options { body_limit: 1024, ..Default::default() }).await;
    let big = json!({ "displayName": "x".repeat(4096), "userPrincipalName": "a@b.c" });
    let (status, body) = app.post(&app.admin, "/v1.0/users", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "RequestEntityTooLarge");
}

#[tokio::test]
async fn request_ids_are_returned_and_client_request_id_is_echoed() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(app.url("/v1.0/users"))
        .bearer_auth(&app.admin)
        .header("client-request-id", "my-id-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["client-request-id"], "my-id-42");
    assert!(resp.headers().contains_key("request-id"));
    let resp = app.client.get(app.url("/v1.0/nowhere")).header("client-request-id", "id-7").send().await.unwrap();
    let rid = resp.headers()["request-id"].to_str().unwrap().to_string();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["innerError"]["client-request-id"], "id-7");
    assert_eq!(body["error"]["innerError"]["request-id"], rid.as_str());
}

#[tokio::test]
async fn missing_invalid_and_expired_tokens_are_401_with_a_challenge() {
    let app = TestApp::spawn().await;
    let user = app.create_user("tokens").await;
    for token in ["", "not-a-jwt", "a.b.c"] {
        let resp = app.client.get(app.url("/v1.0/users")).bearer_auth(token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "token {token:?}");
        assert!(resp.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        assert_error(&resp.json().await.unwrap(), "InvalidAuthenticationToken");
    }
    let resp = app.client.get(app.url("/v1.0/users")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let (status, body) = app.get(&app.expired_token(&user), "/v1.0/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"));

    // A token signed by another server's key.
    let other = TestApp::spawn().await;
    let (status, body) = app.get(&other.admin, "/v1.0/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error(&body, "InvalidAuthenticationToken");
}

#[tokio::test]
async fn token_without_the_permission_is_403() {
    let app = TestApp::spawn().await;
    let token = app.app_token(&["Group.Read.All"]);
    let (status, body) = app.get(&token, "/v1.0/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "accessDenied");
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("", "/health").await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (status, body) = app.get("", "/ready").await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("ready")));
}

#[tokio::test]
async fn metadata_documents_are_served_per_root() {
    let app = TestApp::spawn().await;
    for root in ["v1.0", "beta"] {
        let resp = app.client.get(app.url(&format!("/{root}/$metadata"))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/xml");
        let text = resp.text().await.unwrap();
        assert!(text.contains("<edmx:Edmx") && text.contains("accessPackageAssignmentRequest"));
    }
}

#[tokio::test]
async fn unknown_body_properties_are_refused_naming_property_and_type() {
    let app = TestApp::spawn().await;
    let catalogs = em("v1.0", "catalogs");
    let (status, body) =
        app.post(&app.admin, &catalogs, json!({ "displayName": "Typo", "descripton": "misspelt" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "RequestBodyRead");
    assert_eq!(
        body["error"]["message"],
        "The property 'descripton' does not exist on type 'microsoft.graph.accessPackageCatalog'. Make sure to only use property names that are defined by the type or mark the type as open type."
    );
    assert_eq!(body["error"]["target"], "descripton");
    // Nothing was created.
    let (_, list) = app.get(&app.admin, &format!("{catalogs}?$filter=displayName eq 'Typo'")).await;
    assert_eq!(list["value"].as_array().map(Vec::len), Some(0), "{list}");

    // Annotations, and properties the type defines (even read-only ones) are accepted.
    let (status, body) = app
        .post(
            &app.admin,
            &catalogs,
            json!({
                "@odata.type": "#microsoft.graph.accessPackageCatalog",
                "displayName": "Fine",
                "createdDateTime": "2020-01-01T00:00:00Z",
                "catalogType": "userManaged"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_string();

    // The same on updates, on the beta root, and on the other creates.
    let (status, body) =
        app.patch(&app.admin, &em("beta", &format!("accessPackageCatalogs/{id}")), json!({ "colour": "red" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("'colour'"), "{body}");
    let (status, body) = app
        .post(&app.admin, &em("v1.0", "assignmentRequests"), json!({ "requestType": "adminAdd", "priority": 1 }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "RequestBodyRead");
    assert!(body["error"]["message"].as_str().unwrap().contains("microsoft.graph.accessPackageAssignmentRequest"));
}

#[tokio::test]
async fn inner_error_client_request_id_is_never_empty() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/v1.0/noSuchThing")).bearer_auth(&app.admin).send().await.unwrap();
    let request_id = resp.headers()["request-id"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["innerError"]["request-id"], request_id.as_str());
    assert_eq!(body["error"]["innerError"]["client-request-id"], request_id.as_str());
    let resp = app
        .client
        .get(app.url("/v1.0/noSuchThing"))
        .bearer_auth(&app.admin)
        .header("client-request-id", "mine-1")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["innerError"]["client-request-id"], "mine-1");
}
