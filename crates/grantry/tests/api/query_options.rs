//! OData query options, exercised on `/users` (every collection shares the machinery).

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

async fn names(app: &TestApp, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut url = path.to_string();
    loop {
        let (status, body) = app.get(&app.admin, &url).await;
        assert_eq!(status, StatusCode::OK, "{url}: {body}");
        for u in body["value"].as_array().unwrap() {
            out.push(u["displayName"].as_str().unwrap_or_default().to_string());
        }
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.strip_prefix(&app.base).unwrap().to_string(),
            None => return out,
        }
    }
}

#[tokio::test]
async fn filter_orderby_top_select_count_and_search() {
    let app = TestApp::spawn().await;
    for n in ["carol", "alice", "bob", "dave", "erin"] {
        app.create_user(n).await;
    }
    assert_eq!(names(&app, "/v1.0/users?$filter=displayName eq 'BOB'").await, vec!["bob"]);
    assert_eq!(
        names(&app, "/v1.0/users?$filter=startswith(displayName,'a') or endswith(userPrincipalName,'n@contoso.com')")
            .await,
        vec!["alice", "erin"]
    );
    assert_eq!(
        names(
            &app,
            "/v1.0/users?$filter=userType eq 'member' and accountEnabled eq true&$orderby=displayName desc&$top=2"
        )
        .await,
        vec!["erin", "dave", "carol", "bob", "alice"]
    );
    assert_eq!(
        names(&app, "/v1.0/users?$orderby=displayName&$top=2").await,
        vec!["alice", "bob", "carol", "dave", "erin"]
    );
    assert_eq!(names(&app, "/v1.0/users?$search=\"displayName:ar\"").await, vec!["carol"]);

    let (status, body) = app.get(&app.admin, "/v1.0/users?$count=true&$top=2&$filter=displayName ne 'alice'").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["@odata.count"], 4);
    assert_eq!(body["value"].as_array().unwrap().len(), 2);

    let resp = app.client.get(app.url("/v1.0/users/$count")).bearer_auth(&app.admin).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.text().await.unwrap(), "5");

    let (status, body) = app.get(&app.admin, "/v1.0/users?$select=displayName,mail&$top=1").await;
    assert_eq!(status, StatusCode::OK);
    let first = body["value"][0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).filter(|k| !k.starts_with('@')).collect();
    keys.sort();
    assert_eq!(keys, vec!["displayName", "id", "mail"]);
}

#[tokio::test]
async fn malformed_or_unsupported_queries_are_400_naming_the_problem() {
    let app = TestApp::spawn().await;
    let cases: &[(&str, &str)] = &[
        ("/v1.0/users?$filter=displayName eq", "InvalidFilter"),
        ("/v1.0/users?$filter=shoeSize eq 42", "InvalidFilter"),
        ("/v1.0/users?$filter=userType eq 'Robot'", "InvalidFilter"),
        ("/v1.0/users?$filter=accountEnabled eq 'yes'", "InvalidFilter"),
        ("/v1.0/users?$orderby=shoeSize", "BadRequest"),
        ("/v1.0/users?$top=-1", "BadRequest"),
        ("/v1.0/users?$skiptoken=forged", "BadRequest"),
        ("/v1.0/users?$select=shoeSize", "BadRequest"),
        ("/v1.0/users?$frobnicate=1", "BadRequest"),
    ];
    app.create_user("zed").await;
    for (path, code) in cases {
        let (status, body) = app.get(&app.admin, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_error(&body, code);
    }
    let (_, body) = app.get(&app.admin, "/v1.0/users?$filter=displayName eq").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("position"), "{body}");
}

#[tokio::test]
async fn keyset_pages_do_not_skip_or_repeat_with_ties() {
    let app = TestApp::spawn().await;
    // Same display name for all: order must fall back to insertion order.
    for i in 0..7 {
        let (status, _) = app
            .post(
                &app.admin,
                "/v1.0/users",
                serde_json::json!({ "displayName": "same", "userPrincipalName": format!("t{i}@contoso.com") }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let mut url = "/v1.0/users?$orderby=displayName desc&$top=3".to_string();
    let mut upns = Vec::new();
    loop {
        let (_, body) = app.get(&app.admin, &url).await;
        upns.extend(body["value"].as_array().unwrap().iter().map(|u| u["userPrincipalName"].clone()));
        match body["@odata.nextLink"].as_str() {
            Some(n) => url = n.strip_prefix(&app.base).unwrap().to_string(),
            None => break,
        }
    }
    let mut unique: Vec<Value> = upns.clone();
    unique.dedup();
    assert_eq!(upns.len(), 7);
    assert_eq!(unique.len(), 7);
}

#[tokio::test]
async fn plus_in_a_query_string_is_a_space_as_in_graph() {
    let app = TestApp::spawn().await;
    app.create_user("plus").await;
    let (status, body) = app.get(&app.admin, "/v1.0/users?$filter=displayName+eq+'plus'").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    let (status, body) =
        app.get(&app.admin, "/v1.0/users?$filter=createdDateTime%20ge%202020-01-01T00:00:00%2B00:00").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
}
