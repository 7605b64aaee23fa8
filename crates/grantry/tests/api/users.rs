//! `/users` and `/me`.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn create_get_and_list_users_in_both_dialects() {
    let app = TestApp::spawn().await;
    let id = app.create_user("adele").await;
    for root in ["v1.0", "beta"] {
        let (status, body) = app.get(&app.admin, &format!("/{root}/users/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["userPrincipalName"], "adele@contoso.com");
        assert_eq!(body["@odata.context"], format!("{}/{root}/$metadata#users/$entity", app.base));
        let (status, body) = app.get(&app.admin, &format!("/{root}/users/ADELE@contoso.com")).await;
        assert_eq!((status, body["id"].as_str()), (StatusCode::OK, Some(id.as_str())));
    }
    let (status, body) = app.get(&app.admin, "/v1.0/users").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn duplicate_user_principal_name_is_409() {
    let app = TestApp::spawn().await;
    app.create_user("dup").await;
    let (status, body) = app
        .post(&app.admin, "/v1.0/users", json!({ "displayName": "Dup", "userPrincipalName": "DUP@contoso.com" }))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&body, "Request_MultipleObjectsWithSameKeyValue");
}

#[tokio::test]
async fn users_list_pages_with_next_link() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.create_user(&format!("pager{i}")).await;
    }
    let mut url = "/v1.0/users?$top=2".to_string();
    let mut seen = Vec::new();
    loop {
        let (status, body) = app.get(&app.admin, &url).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        for u in body["value"].as_array().unwrap() {
            seen.push(u["userPrincipalName"].as_str().unwrap().to_string());
        }
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.strip_prefix(&app.base).expect("nextLink on our base URL").to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    seen.dedup();
    assert_eq!(seen.len(), 5);
}

#[tokio::test]
async fn missing_required_property_names_the_property() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post(&app.admin, "/v1.0/users", json!({ "displayName": "No UPN" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "InvalidRequestBody");
    assert!(body["error"]["message"].as_str().unwrap().contains("userPrincipalName"));
    assert_eq!(body["error"]["target"], "userPrincipalName");
}
