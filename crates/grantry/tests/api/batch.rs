//! JSON batching (`POST /v1.0/$batch`, `/beta/$batch`): items run through the same router as
//! direct calls, each authorized with the batch's token; the batch is refused whole, in
//! Graph's envelope, when it breaks one of Graph's batch rules.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The item of `body.responses` with `id`.
fn item<'a>(body: &'a Value, id: &str) -> &'a Value {
    body["responses"]
        .as_array()
        .unwrap_or_else(|| panic!("no responses in {body}"))
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no response for {id} in {body}"))
}

fn header<'a>(item: &'a Value, name: &str) -> Option<&'a str> {
    item["headers"].as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?.1.as_str()
}

#[tokio::test]
async fn a_parallel_batch_answers_every_item_with_status_headers_and_body() {
    let app = TestApp::spawn().await;
    let user = app.create_user("adele").await;
    let base = app.base.clone();
    let (status, body) = app
        .post(
            &app.admin,
            "/v1.0/$batch",
            json!({ "requests": [
                { "id": "1", "method": "GET", "url": format!("/users/{user}?$select=displayName") },
                { "id": "2", "method": "POST", "url": format!("{EM}/catalogs"),
                  "headers": { "Content-Type": "application/json" }, "body": { "displayName": "Batched" } },
                { "id": "3", "method": "get", "url": format!("/{EM}/catalogs?$filter=displayName eq 'Batched'&$count=true") },
                { "id": "4", "method": "GET", "url": format!("{base}/v1.0/{EM}/accessPackages/00000000-0000-0000-0000-000000000001") },
                { "id": "5", "method": "DELETE", "url": "/users/not-a-user" },
                { "id": "6", "method": "GET", "url": "/users/$count" },
                { "id": "7", "method": "PUT", "url": "/users" }
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["responses"].as_array().unwrap().len(), 7, "{body}");

    let one = item(&body, "1");
    assert_eq!(one["status"], 200, "{one}");
    assert_eq!(one["body"]["displayName"], "adele");
    assert!(one["body"].get("userPrincipalName").is_none(), "$select applies inside a batch: {one}");
    assert!(header(one, "Content-Type").is_some_and(|c| c.starts_with("application/json")), "{one}");

    let two = item(&body, "2");
    assert_eq!(two["status"], 201, "{two}");
    assert_eq!(two["body"]["displayName"], "Batched");
    let catalog_id = two["body"]["id"].as_str().unwrap().to_string();
    let (status, _) = app.get(&app.admin, &em("v1.0", &format!("catalogs/{catalog_id}"))).await;
    assert_eq!(status, StatusCode::OK, "the batched POST created the catalog");

    // Items without a dependency run side by side: 3 may or may not see 2's catalog.
    let three = item(&body, "3");
    assert_eq!(three["status"], 200, "{three}");
    assert!(three["body"]["@odata.context"].as_str().unwrap().contains("/v1.0/$metadata#"), "{three}");

    let four = item(&body, "4");
    assert_eq!(four["status"], 404, "an absolute URL of this server is accepted: {four}");
    assert!(four["body"]["error"]["code"].is_string(), "{four}");

    let five = item(&body, "5");
    assert!(matches!(five["status"].as_u64(), Some(400 | 404)), "{five}");
    let six = item(&body, "6");
    if six["status"] == 200 {
        assert_eq!(six["body"], "1", "the /$count segment answers text: {six}");
    }
    assert_eq!(item(&body, "7")["status"], 405, "{body}");
}

#[tokio::test]
async fn dependent_items_run_in_order_and_a_failed_dependency_is_424() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            &app.admin,
            "/v1.0/$batch",
            json!({ "requests": [
                { "id": "a", "method": "POST", "url": format!("/{EM}/catalogs"),
                  "headers": { "content-type": "application/json" }, "body": { "displayName": "First" } },
                { "id": "b", "method": "GET", "url": format!("/{EM}/catalogs?$filter=displayName eq 'First'"), "dependsOn": ["a"] },
                { "id": "c", "method": "GET", "url": "/nowhere", "dependsOn": ["B"] },
                { "id": "d", "method": "GET", "url": format!("/{EM}/catalogs"), "dependsOn": ["c"] },
                { "id": "e", "method": "GET", "url": format!("/{EM}/catalogs"), "dependsOn": ["d"] }
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(item(&body, "a")["status"], 201);
    let b = item(&body, "b");
    assert_eq!(b["status"], 200);
    assert_eq!(b["body"]["value"].as_array().unwrap().len(), 1, "b ran after a (dependsOn): {b}");
    assert_eq!(item(&body, "c")["status"], 404, "{body}");
    for id in ["d", "e"] {
        let failed = item(&body, id);
        assert_eq!(failed["status"], 424, "{failed}");
        assert_error(&failed["body"], "FailedDependency");
    }

    // The Python SDK's spelling of the dependency, always present and empty when none.
    let (status, body) = app
        .post(
            &app.admin,
            "/beta/$batch",
            json!({ "requests": [
                { "id": "1", "method": "GET", "url": format!("/{EM}/accessPackageCatalogs"), "depends_on": [], "headers": {} },
                { "id": "2", "method": "GET", "url": format!("/{EM}/accessPackageCatalogs"), "depends_on": ["1"], "headers": {} }
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let two = item(&body, "2");
    assert_eq!(two["status"], 200, "{two}");
    assert!(
        two["body"]["@odata.context"].as_str().unwrap().contains("/beta/$metadata#"),
        "the beta root renders beta: {two}"
    );
}

#[tokio::test]
async fn each_item_is_authorized_as_its_own_call_with_the_batch_token() {
    let app = TestApp::spawn().await;
    let reader = app.app_token(&["EntitlementManagement.Read.All"]);
    let requests = json!({ "requests": [
        { "id": "read", "method": "GET", "url": format!("/{EM}/catalogs") },
        { "id": "write", "method": "POST", "url": format!("/{EM}/catalogs"),
          "headers": { "Content-Type": "application/json", "Authorization": format!("Bearer {}", app.admin) },
          "body": { "displayName": "Not allowed" } }
    ]});
    let (status, body) = app.post(&reader, "/v1.0/$batch", requests.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(item(&body, "read")["status"], 200);
    let write = item(&body, "write");
    assert_eq!(write["status"], 403, "an item's own Authorization header is ignored: {write}");
    assert!(write["body"]["error"]["code"].is_string());
    let (_, catalogs) = app.get(&app.admin, &em("v1.0", "catalogs?$filter=displayName eq 'Not allowed'")).await;
    assert_eq!(catalogs["value"].as_array().unwrap().len(), 0);

    // Without a token every item is refused as a direct call would be.
    let (status, body) = app.post("", "/v1.0/$batch", requests).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(item(&body, "read")["status"], 401);
    assert_eq!(item(&body, "write")["status"], 401);
}

#[tokio::test]
async fn a_batch_breaking_graphs_rules_is_refused_whole() {
    let app = TestApp::spawn().await;
    let get = |id: &str| json!({ "id": id, "method": "GET", "url": "/users" });
    let cases: Vec<(&str, Value)> = vec![
        ("no requests", json!({})),
        ("empty", json!({ "requests": [] })),
        ("21 items", json!({ "requests": (1..=21).map(|i| get(&i.to_string())).collect::<Vec<_>>() })),
        ("duplicate id ignoring case", json!({ "requests": [get("x"), get("X")] })),
        ("no id", json!({ "requests": [{ "method": "GET", "url": "/users" }] })),
        ("no url", json!({ "requests": [{ "id": "1", "method": "GET" }] })),
        ("no method", json!({ "requests": [{ "id": "1", "url": "/users" }] })),
        (
            "forward dependency",
            json!({ "requests": [
                { "id": "1", "method": "GET", "url": "/users", "dependsOn": ["2"] }, get("2")
            ]}),
        ),
        (
            "unknown dependency",
            json!({ "requests": [get("1"), { "id": "2", "method": "GET", "url": "/users", "dependsOn": ["9"] }] }),
        ),
        (
            "mixed pattern",
            json!({ "requests": [
                get("1"), get("2"),
                { "id": "3", "method": "GET", "url": "/users", "dependsOn": ["1"] },
                { "id": "4", "method": "GET", "url": "/users", "dependsOn": ["2"] }
            ]}),
        ),
        (
            "two dependencies",
            json!({ "requests": [get("1"), get("2"), { "id": "3", "method": "GET", "url": "/users", "dependsOn": ["1", "2"] }] }),
        ),
        (
            "body without Content-Type",
            json!({ "requests": [{ "id": "1", "method": "POST", "url": "/users", "body": { "displayName": "x" } }] }),
        ),
    ];
    for (what, batch) in cases {
        let (status, body) = app.post(&app.admin, "/v1.0/$batch", batch).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_error(&body, "BadRequest");
    }

    // The "same" pattern: every dependent item names the same request.
    let (status, body) = app
        .post(
            &app.admin,
            "/v1.0/$batch",
            json!({ "requests": [
                get("1"),
                { "id": "2", "method": "GET", "url": "/users", "dependsOn": ["1"] },
                { "id": "3", "method": "GET", "url": "/users", "dependsOn": ["1"] },
                get("4")
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["responses"].as_array().unwrap().iter().all(|r| r["status"] == 200), "{body}");
}

#[tokio::test]
async fn item_urls_and_bodies_in_the_forms_clients_send() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            &app.admin,
            "/v1.0/$batch",
            json!({ "requests": [
                // Relative without a leading slash, as in Graph's documentation.
                { "id": "1", "method": "GET", "url": "users?$top=1" },
                // The Python SDK: `{}` as standard base64 under a JSON content type.
                { "id": "2", "method": "POST", "url": format!("/{EM}/catalogs"), "headers": { "content-type": "application/json" },
                  "body": "eyJkaXNwbGF5TmFtZSI6ICJCYXNlNjQifQ==" },
                { "id": "3", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users" },
                { "id": "4", "method": "POST", "url": "/$batch", "headers": { "Content-Type": "application/json" },
                  "body": { "requests": [{ "id": "1", "method": "GET", "url": "/users" }] } },
                { "id": "5", "method": "GET", "url": format!("{}/beta/users", app.base) }
            ]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(item(&body, "1")["status"], 200, "{body}");
    let two = item(&body, "2");
    assert_eq!(two["status"], 201, "{two}");
    assert_eq!(two["body"]["displayName"], "Base64");
    for id in ["3", "4", "5"] {
        let refused = item(&body, id);
        assert_eq!(refused["status"], 400, "{id}: {refused}");
        assert_error(&refused["body"], "BadRequest");
    }

    // A batch body that is not JSON, or not sent as JSON, is answered like any other call.
    let resp = app
        .client
        .post(app.url("/v1.0/$batch"))
        .bearer_auth(&app.admin)
        .header("Content-Type", "application/json")
        .body("{ not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // `$batch` is not a collection: GET is not allowed.
    let (status, _) = app.get(&app.admin, "/v1.0/$batch").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}
