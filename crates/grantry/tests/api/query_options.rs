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

/// Every query string of a GET example in the Graph documentation
/// (`docs-examples.jsonl`, the examples whose path has a query), with this server's ids in
/// place of the documentation's. The query strings are kept as the docs write them,
/// including `+` for spaces and `%27` quotes.
#[tokio::test]
async fn documented_query_strings_are_answered() {
    let app = TestApp::spawn().await;
    let catalog = app.create_catalog("Docs").await;
    let group = app.create_group("docs-group").await;
    let resource = app.add_group_resource(&catalog, &group).await;
    let package = app.create_package(&catalog, "Docs package").await;
    let other = app.create_package(&catalog, "Other package").await;
    app.add_member_role_scope(&package, &resource, &group).await;
    let (status, policy) = app
        .post(
            &app.admin,
            &em("beta", "accessPackageAssignmentPolicies"),
            serde_json::json!({ "accessPackageId": package, "displayName": "p", "requestorSettings": { "scopeType": "NoSubjects", "acceptRequests": true } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{policy}");
    let policy = policy["id"].as_str().unwrap().to_string();
    let cases = [
        format!(
            "beta/{EM}/accessPackages/{package}?$expand=accessPackageResourceRoleScopes($expand=accessPackageResourceRole,accessPackageResourceScope)"
        ),
        format!(
            "beta/{EM}/accessPackageAssignments/additionalAccess(accessPackageId='{package}',incompatibleAccessPackageId='{other}')?$expand=target"
        ),
        format!(
            "beta/{EM}/accessPackageAssignmentPolicies/{policy}?$expand=customExtensionHandlers($expand=customExtension)"
        ),
        format!(
            "beta/{EM}/accessPackageCatalogs/{catalog}/accessPackageResourceRoles?$filter=(originSystem+eq+%27AadGroup%27+and+accessPackageResource/id+eq+%27{resource}%27)&$expand=accessPackageResource"
        ),
        format!(
            "beta/{EM}/accessPackageCatalogs/{catalog}/accessPackageResourceRoles?$filter=(originSystem+eq+%27SharePointOnline%27+and+accessPackageResource/id+eq+%27{resource}%27)&$select=displayName,originId"
        ),
        format!(
            "beta/{EM}/accessPackageCatalogs/{catalog}/accessPackageResources?$filter=resourceType eq 'Application'&$expand=accessPackageResourceScopes"
        ),
        format!(
            "beta/{EM}/accessPackageAssignmentRequests?$expand=requestor($expand=connectedOrganization)&$filter=(requestState eq 'PendingApproval')"
        ),
        format!("beta/{EM}/accessPackageResourceEnvironments?$filter=originSystem eq 'SharePointOnline'"),
        format!("v1.0/{EM}/catalogs/{catalog}/resources?$expand=scopes"),
        format!("v1.0/{EM}/catalogs/{catalog}/resources?$expand=roles,scopes&$filter=id eq '{resource}'"),
        format!("v1.0/{EM}/catalogs/{catalog}/resources?$expand=roles,scopes&$filter=originId eq '{group}'"),
    ];
    for path in &cases {
        let (status, body) = app.get(&app.admin, &format!("/{path}")).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
    let (_, body) = app.get(&app.admin, &format!("/{}", cases[10])).await;
    assert_eq!(body["value"][0]["roles"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(body["value"][0]["scopes"].as_array().unwrap().len(), 1, "{body}");
    let (_, body) = app.get(&app.admin, &format!("/{}", cases[3])).await;
    assert_eq!(body["value"].as_array().unwrap().len(), 2, "{body}");
}

#[tokio::test]
async fn collections_without_filtering_refuse_filter_rather_than_ignore_it() {
    let app = TestApp::spawn().await;
    let group = app.create_group("members").await;
    let (status, body) = app.get(&app.admin, &format!("/v1.0/groups/{group}/members?$filter=displayName eq 'x'")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["target"], "$filter");
    let (status, _) = app.get(&app.admin, &format!("/v1.0/groups/{group}/members?$top=5")).await;
    assert_eq!(status, StatusCode::OK);
}
