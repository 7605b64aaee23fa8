//! The SCIM 2.0 service provider at /scim/v2: discovery, its own bearer tokens, the
//! request sequences Entra's and Okta's provisioning clients send (from their published
//! documentation and examples), filters, paging and errors. SCIM users and groups are the
//! directory's own, so they show at /v1.0 and can request access.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

pub(crate) async fn scim_token(app: &TestApp, name: &str) -> String {
    grantry_core::scim::create_token(&app.state().app.store, app.now(), name).await.expect("token created").1
}

/// Sends a SCIM request; returns the status, the JSON body (`Null` when empty) and the
/// content type.
pub(crate) async fn scim(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value, String) {
    let mut req = app.client.request(method, app.url(&format!("/scim/v2{path}")));
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    if let Some(b) = body {
        req = req.header("Content-Type", "application/scim+json").body(b.to_string());
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let text = resp.text().await.expect("body");
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
    (status, value, content_type)
}

fn assert_scim_error(body: &Value, status: &str, scim_type: Option<&str>) {
    assert_eq!(body["schemas"], json!([ERROR]), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["scimType"].as_str(), scim_type, "{body}");
    assert!(!body["detail"].as_str().unwrap_or_default().is_empty(), "{body}");
}

/// Percent-encodes a filter for the query string.
fn q(filter: &str) -> String {
    filter
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn scim_has_its_own_tokens_and_discovery_documents() {
    let app = TestApp::spawn().await;
    let token = scim_token(&app, "entra").await;

    // No token, a Graph token and a made-up token are all refused in SCIM's shape.
    for bad in ["", app.admin.as_str(), "scim_not-a-token"] {
        let (status, body, ct) = scim(&app, bad, Method::GET, "/Users", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(ct.starts_with("application/scim+json"), "{ct}");
        assert_scim_error(&body, "401", None);
    }
    // And the SCIM token gives no Graph access.
    let (status, _) = app.get(&token, "/v1.0/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, spc, ct) = scim(&app, &token, Method::GET, "/ServiceProviderConfig", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("application/scim+json"), "{ct}");
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["filter"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], false);
    assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");

    let (_, types, _) = scim(&app, &token, Method::GET, "/ResourceTypes", None).await;
    assert_eq!(types["totalResults"], 2);
    let user_type = types["Resources"].as_array().unwrap().iter().find(|t| t["id"] == "User").unwrap().clone();
    assert_eq!(user_type["endpoint"], "/Users");
    assert_eq!(user_type["schemaExtensions"], json!([{"schema": ENTERPRISE, "required": false}]));
    let (status, group_type, _) = scim(&app, &token, Method::GET, "/ResourceTypes/Group", None).await;
    assert_eq!((status, group_type["schema"].as_str()), (StatusCode::OK, Some(CORE_GROUP)));

    let (_, schemas, _) = scim(&app, &token, Method::GET, "/Schemas", None).await;
    let ids: Vec<&str> = schemas["Resources"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![CORE_USER, CORE_GROUP, ENTERPRISE]);
    let (status, user_schema, _) = scim(&app, &token, Method::GET, &format!("/Schemas/{CORE_USER}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let user_name = user_schema["attributes"].as_array().unwrap().iter().find(|a| a["name"] == "userName").unwrap();
    assert_eq!((user_name["required"].as_bool(), user_name["uniqueness"].as_str()), (Some(true), Some("server")));
    // Entra wants no nulls in /Schemas.
    assert!(!serde_json::to_string(&schemas).unwrap().contains("null"));

    // Discovery answers GET only; unknown things are 404 in SCIM's shape.
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let (status, body, _) = scim(&app, &token, method.clone(), "/ServiceProviderConfig", Some(json!({}))).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_scim_error(&body, "405", None);
    }
    for path in
        ["/ResourceTypes/Printer", "/Schemas/urn:nothing", "/Printers", "/Users/00000000-0000-0000-0000-000000000001"]
    {
        let (status, body, _) = scim(&app, &token, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_scim_error(&body, "404", None);
    }

    // A revoked token stops working.
    grantry_core::scim::revoke_token(&app.state().app.store, "entra").await.unwrap();
    let (status, _, _) = scim(&app, &token, Method::GET, "/Users", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn entra_provisioning_sequence() {
    let app = TestApp::spawn().await;
    let token = scim_token(&app, "entra").await;

    // Entra looks the user up by its matching attribute, then creates it.
    let (status, found, _) = scim(
        &app,
        &token,
        Method::GET,
        &format!("/Users?filter={}", q(r#"userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com""#)),
        None,
    )
    .await;
    assert_eq!((status, found["totalResults"].as_u64()), (StatusCode::OK, Some(0)));
    assert_eq!(found["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"]));
    let (status, manager, _) = scim(
        &app,
        &token,
        Method::POST,
        "/Users",
        Some(
            json!({"schemas": [CORE_USER], "userName": "boss@contoso.com", "active": true, "displayName": "The Boss"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{manager}");
    let manager_id = manager["id"].as_str().unwrap().to_string();

    let create = json!({
        "schemas": [CORE_USER, ENTERPRISE],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com",
        "active": true,
        "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@contoso.com"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
        "roles": [],
        ENTERPRISE: {"department": "Sales"}
    });
    let resp = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&token)
        .header("Content-Type", "application/scim+json")
        .body(create.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let user: Value = resp.json().await.unwrap();
    let id = user["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("{}/scim/v2/Users/{id}", app.base));
    assert_eq!(user["meta"]["location"], location);
    assert_eq!(user["meta"]["resourceType"], "User");
    assert_eq!(user["externalId"], "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef");
    assert_eq!(user["displayName"], "givenName familyName");
    assert_eq!(user[ENTERPRISE]["department"], "Sales");
    assert_eq!(user["emails"][0]["value"], "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@contoso.com");

    // Matching by externalId, with Entra's documented unquoted value too.
    for filter in [
        r#"externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef""#,
        "externalId eq 0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    ] {
        let (_, found, _) = scim(&app, &token, Method::GET, &format!("/Users?filter={}", q(filter)), None).await;
        assert_eq!(found["totalResults"], 1, "{filter}: {found}");
        assert_eq!(found["Resources"][0]["id"], id.as_str());
    }

    // Updates: capitalised ops, the string boolean, a path-less replace whose keys are
    // paths, an email by value filter and the manager by the extension's URN path.
    let (status, patched, _) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "replace", "value": {
                "name.givenName": "Adele",
                "displayName": "Adele Vance",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Marketing"
            }},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "adele@contoso.com"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": manager_id},
            {"op": "Add", "path": "title", "value": "Engineer"}
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["active"], false);
    assert_eq!(patched["name"]["givenName"], "Adele");
    assert_eq!(patched[ENTERPRISE]["department"], "Marketing");
    assert_eq!(patched[ENTERPRISE]["manager"]["value"], manager_id.as_str());
    assert_eq!(patched["emails"][0]["value"], "adele@contoso.com");
    assert_eq!(patched["externalId"], "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef");

    // The same user through Graph.
    let (status, graph) = app.get(&app.admin, &format!("/v1.0/users/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{graph}");
    assert_eq!(graph["accountEnabled"], false);
    assert_eq!(graph["displayName"], "Adele Vance");
    assert_eq!(graph["givenName"], "Adele");
    assert_eq!(graph["department"], "Marketing");
    assert_eq!(graph["jobTitle"], "Engineer");
    assert_eq!(graph["mail"], "adele@contoso.com");
    assert_eq!(graph["userPrincipalName"], "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com");
    let (_, boss) = app.get(&app.admin, &format!("/v1.0/users/{id}/manager")).await;
    assert_eq!(boss["id"], manager_id.as_str());

    // Groups: created empty, filled and emptied by PATCH (both of Entra's remove forms).
    let (status, group, _) = scim(
        &app,
        &token,
        Method::POST,
        "/Groups",
        Some(json!({
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": {"resourceType": "Group"},
            "schemas": [CORE_GROUP, "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"]
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{group}");
    assert_eq!(group["members"], json!([]));
    let gid = group["id"].as_str().unwrap().to_string();
    let (_, found, _) = scim(
        &app,
        &token,
        Method::GET,
        &format!("/Groups?excludedAttributes=members&filter={}", q(r#"displayName eq "displayName""#)),
        None,
    )
    .await;
    assert_eq!(found["totalResults"], 1);
    assert!(found["Resources"][0].get("members").is_none(), "{found}");
    assert_eq!(found["Resources"][0]["id"], gid.as_str());

    let (status, body, _) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "Add", "path": "members", "value": [{"$ref": null, "value": id}, {"$ref": null, "value": manager_id}]}
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(app.is_member(&gid, &id).await && app.is_member(&gid, &manager_id).await);
    let (_, members) = app.get(&app.admin, &format!("/v1.0/groups/{gid}/members")).await;
    assert_eq!(members["value"].as_array().unwrap().len(), 2, "{members}");

    let (status, _, _) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "Remove", "path": "members", "value": [{"value": manager_id}]}]})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!app.is_member(&gid, &manager_id).await);
    let (status, _, _) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!app.is_member(&gid, &id).await);

    // Hard delete: gone from SCIM and from Graph.
    let (status, _, _) = scim(&app, &token, Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body, _) = scim(&app, &token, Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_scim_error(&body, "404", None);
    let (status, _) = app.get(&app.admin, &format!("/v1.0/users/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = scim(&app, &token, Method::DELETE, &format!("/Groups/{gid}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&app.admin, &format!("/v1.0/groups/{gid}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn okta_provisioning_sequence() {
    let app = TestApp::spawn().await;
    let token = scim_token(&app, "okta").await;

    // Connection test, then lookup before create (always with paging).
    let (status, page, _) = scim(&app, &token, Method::GET, "/Users?startIndex=1&count=2", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((page["totalResults"].as_u64(), page["startIndex"].as_u64()), (Some(0), Some(1)));
    let (status, _, _) = scim(&app, &token, Method::GET, "/Groups?startIndex=1&count=100", None).await;
    assert_eq!(status, StatusCode::OK);
    let lookup = "/Users?filter=userName%20eq%20%22test.user%40okta.local%22&startIndex=1&count=100";
    let (_, found, _) = scim(&app, &token, Method::GET, lookup, None).await;
    assert_eq!(found["totalResults"], 0);

    let create = json!({
        "schemas": [CORE_USER],
        "userName": "test.user@okta.local",
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": "test.user@okta.local", "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    });
    let (status, user, _) = scim(&app, &token, Method::POST, "/Users", Some(create.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert!(user.get("password").is_none(), "{user}");
    let id = user["id"].as_str().unwrap().to_string();
    // userName is unique regardless of case.
    let mut again = create.clone();
    again["userName"] = json!("TEST.USER@okta.local");
    let (status, body, _) = scim(&app, &token, Method::POST, "/Users", Some(again)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_scim_error(&body, "409", Some("uniqueness"));
    let (_, found, _) = scim(&app, &token, Method::GET, lookup, None).await;
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["itemsPerPage"], 1);

    // Okta GETs, edits and PUTs the whole user.
    let (_, mut current, _) = scim(&app, &token, Method::GET, &format!("/Users/{id}"), None).await;
    current["name"]["familyName"] = json!("Userson");
    current["displayName"] = json!("Test Userson");
    let (status, replaced, _) = scim(&app, &token, Method::PUT, &format!("/Users/{id}"), Some(current)).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["name"]["familyName"], "Userson");
    assert_eq!(replaced["externalId"], "00ujl29u0le5T6Aj10h7");
    // Deactivation: lower-case op, no path.
    let (status, body, _) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": false}}]})),
    )
    .await;
    assert_eq!((status, &body["active"]), (StatusCode::OK, &json!(false)), "{body}");
    // Inactive users are still returned.
    let (_, found, _) = scim(&app, &token, Method::GET, lookup, None).await;
    assert_eq!(found["Resources"][0]["active"], false);

    // Group push: create, rename with `id` inside the value, add and remove members.
    let (status, group, _) = scim(
        &app,
        &token,
        Method::POST,
        "/Groups",
        Some(json!({"schemas": [CORE_GROUP], "displayName": "Test SCIMv2", "members": []})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let gid = group["id"].as_str().unwrap().to_string();
    let (status, body, _) = scim(
        &app,
        &token,
        Method::POST,
        "/Groups",
        Some(json!({"schemas": [CORE_GROUP], "displayName": "test scimv2", "members": []})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_scim_error(&body, "409", Some("uniqueness"));
    let (status, _, _) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 renamed"}},
            {"op": "add", "path": "members", "value": [{"value": id, "display": "test.user@okta.local"}]}
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, group, _) = scim(&app, &token, Method::GET, &format!("/Groups/{gid}"), None).await;
    assert_eq!(group["displayName"], "Test SCIMv2 renamed");
    assert_eq!(group["members"][0]["value"], id.as_str());
    assert_eq!(group["members"][0]["display"], "Test Userson");
    assert_eq!(group["members"][0]["type"], "User");
    let (status, _, _) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Groups/{gid}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, group, _) = scim(&app, &token, Method::GET, &format!("/Groups/{gid}"), None).await;
    assert_eq!(group["members"], json!([]));
    // A full PUT of the group (AIW apps).
    let (status, group, _) = scim(
        &app,
        &token,
        Method::PUT,
        &format!("/Groups/{gid}"),
        Some(json!({"schemas": [CORE_GROUP], "displayName": "Test SCIMv2 renamed", "members": [{"value": id}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(group["members"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn filters_and_paging() {
    let app = TestApp::spawn().await;
    let token = scim_token(&app, "idp").await;
    for (n, dept) in ["Sales", "Sales", "Marketing", "Sales", "Legal"].iter().enumerate() {
        let (status, body, _) = scim(
            &app,
            &token,
            Method::POST,
            "/Users",
            Some(json!({
                "userName": format!("user{n}@contoso.com"),
                "displayName": format!("User {n}"),
                "externalId": format!("ext-{n}"),
                "emails": [{"value": format!("u{n}@mail.contoso.com"), "type": "work", "primary": true}],
                "title": if n % 2 == 0 { Value::from("Engineer") } else { Value::Null },
                ENTERPRISE: {"department": dept}
            })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let total = |filter: &str| {
        let app = &app;
        let token = token.clone();
        let filter = filter.to_string();
        async move {
            let (status, body, _) =
                scim(app, &token, Method::GET, &format!("/Users?filter={}", q(&filter)), None).await;
            assert_eq!(status, StatusCode::OK, "{filter}: {body}");
            body["totalResults"].as_u64().unwrap()
        }
    };
    assert_eq!(total(r#"userName eq "USER1@contoso.com""#).await, 1);
    assert_eq!(total(r#"userName sw "user""#).await, 5);
    assert_eq!(total(r#"displayName co "er 3""#).await, 1);
    assert_eq!(total(r#"emails.value eq "u2@mail.contoso.com""#).await, 1);
    assert_eq!(total(r#"emails[type eq "work"].value sw "u4@""#).await, 1);
    assert_eq!(total("title pr").await, 3);
    assert_eq!(total(r#"title pr and externalId eq "ext-0""#).await, 1);
    assert_eq!(total(r#"externalId eq "ext-1" or externalId eq "ext-3""#).await, 2);
    assert_eq!(total(r#"externalId eq "EXT-1""#).await, 0);
    assert_eq!(total(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales""#).await, 3);
    assert_eq!(total(r#"not (title pr) and (userName ew "@contoso.com")"#).await, 2);

    // Paging: 1-based, stable order, JSON integers; count=0 answers only the total.
    let page = |query: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            let (status, body, _) = scim(app, &token, Method::GET, &format!("/Users?{query}"), None).await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body
        }
    };
    let names = |body: &Value| -> Vec<String> {
        body["Resources"]
            .as_array()
            .map(|a| a.iter().map(|r| r["userName"].as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let all = page("").await;
    assert_eq!(all["totalResults"], 5);
    assert_eq!(names(&all), (0..5).map(|n| format!("user{n}@contoso.com")).collect::<Vec<_>>());
    let second = page("startIndex=3&count=2").await;
    assert_eq!((second["startIndex"].as_u64(), second["itemsPerPage"].as_u64()), (Some(3), Some(2)));
    assert_eq!(names(&second), vec!["user2@contoso.com", "user3@contoso.com"]);
    let last = page("startIndex=5&count=2").await;
    assert_eq!(names(&last), vec!["user4@contoso.com"]);
    let beyond = page("startIndex=9&count=2").await;
    assert_eq!((beyond["totalResults"].as_u64(), beyond["itemsPerPage"].as_u64()), (Some(5), Some(0)));
    let zero = page("count=0").await;
    assert_eq!((zero["totalResults"].as_u64(), zero["itemsPerPage"].as_u64()), (Some(5), Some(0)));
    let clamped = page("startIndex=0&count=-4").await;
    assert_eq!((clamped["startIndex"].as_u64(), clamped["itemsPerPage"].as_u64()), (Some(1), Some(0)));
    let filtered = page("filter=userName%20sw%20%22user%22&startIndex=2&count=1").await;
    assert_eq!(names(&filtered), vec!["user1@contoso.com"]);
    let projected = page("attributes=userName&count=1").await;
    let first = projected["Resources"][0].as_object().unwrap();
    assert!(first.contains_key("userName") && first.contains_key("id") && !first.contains_key("emails"), "{projected}");

    // Bad filters and paging values.
    for bad in ["userName", r#"userName xx "a""#, r#"(userName eq "a""#, r#"userName eq "a" junk"#] {
        let (status, body, _) = scim(&app, &token, Method::GET, &format!("/Users?filter={}", q(bad)), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_scim_error(&body, "400", Some("invalidFilter"));
    }
    let (status, body, _) = scim(&app, &token, Method::GET, "/Users?count=many", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", Some("invalidValue"));
}

#[tokio::test]
async fn bad_input_is_refused_without_partial_writes() {
    let app = TestApp::spawn().await;
    let token = scim_token(&app, "idp").await;
    let post = |body: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            let resp = app
                .client
                .post(app.url("/scim/v2/Users"))
                .bearer_auth(&token)
                .header("Content-Type", "application/scim+json")
                .body(body)
                .send()
                .await
                .unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = post("{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", Some("invalidSyntax"));
    let (status, body) = post(r#"{"displayName": "No userName"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", Some("invalidValue"));
    let (status, body) = post(r#"{"userName": "not an address"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", Some("invalidValue"));
    let (status, body) = post(r#"{"userName": "a@contoso.com", "active": "maybe"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", Some("invalidValue"));
    let (status, body) =
        post(r#"{"userName": "a@contoso.com", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "00000000-0000-0000-0000-0000000000aa"}}}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", Some("invalidValue"));
    let (_, none, _) = scim(&app, &token, Method::GET, "/Users", None).await;
    assert_eq!(none["totalResults"], 0, "nothing was written: {none}");

    let (_, user, _) =
        scim(&app, &token, Method::POST, "/Users", Some(json!({"userName": "a@contoso.com", "displayName": "A"})))
            .await;
    let id = user["id"].as_str().unwrap().to_string();
    // A PATCH whose second operation is bad changes nothing.
    for (ops, scim_type) in [
        (
            json!([{"op": "replace", "path": "displayName", "value": "B"}, {"op": "move", "path": "title"}]),
            "invalidSyntax",
        ),
        (json!([{"op": "replace", "path": "displayName", "value": "B"}, {"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "replace", "path": "displayName", "value": "B"}, {"op": "replace", "path": "active", "value": "perhaps"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "displayName", "value": "B"}, {"op": "replace", "path": "emails[type eq", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "displayName", "value": "B"}, {"op": "replace", "path": "userName", "value": null}]),
            "invalidValue",
        ),
    ] {
        let (status, body, _) = scim(
            &app,
            &token,
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": ops})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{ops}: {body}");
        assert_scim_error(&body, "400", Some(scim_type));
        let (_, current, _) = scim(&app, &token, Method::GET, &format!("/Users/{id}"), None).await;
        assert_eq!(current["displayName"], "A", "{ops}");
    }
    // Renaming onto another user's userName is a 409; a group member must exist.
    scim(&app, &token, Method::POST, "/Users", Some(json!({"userName": "b@contoso.com"}))).await;
    let (status, body, _) = scim(
        &app,
        &token,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "userName", "value": "B@contoso.com"}]})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_scim_error(&body, "409", Some("uniqueness"));
    let (status, body, _) = scim(
        &app,
        &token,
        Method::POST,
        "/Groups",
        Some(
            json!({"displayName": "G", "members": [{"value": id}, {"value": "00000000-0000-0000-0000-0000000000bb"}]}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", Some("invalidValue"));
    let (_, groups, _) = scim(&app, &token, Method::GET, "/Groups", None).await;
    assert_eq!(groups["totalResults"], 0);
    for (method, path) in [
        (Method::PUT, "/Users/00000000-0000-0000-0000-0000000000cc"),
        (Method::DELETE, "/Groups/00000000-0000-0000-0000-0000000000cc"),
    ] {
        let body = (method == Method::PUT).then(|| json!({"userName": "c@contoso.com"}));
        let (status, body, _) = scim(&app, &token, method, path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_scim_error(&body, "404", None);
    }
}

#[tokio::test]
async fn a_scim_user_can_request_access() {
    let app = TestApp::spawn().await;
    let token = scim_token(&app, "idp").await;
    let f = app.seed_package_with_group().await;
    let (_, user, _) = scim(
        &app,
        &token,
        Method::POST,
        "/Users",
        Some(json!({"userName": "requestor@contoso.com", "displayName": "Requestor", "externalId": "r-1"})),
    )
    .await;
    let id = user["id"].as_str().unwrap().to_string();
    let (_, listed) = app.get(&app.admin, "/v1.0/users?$filter=userPrincipalName eq 'requestor@contoso.com'").await;
    assert_eq!(listed["value"][0]["id"], id.as_str(), "{listed}");

    let delegated = app.user_token(&id, SUBJECT_SCOPES);
    let (status, request) = app
        .post(
            &delegated,
            &format!("/v1.0/{EM}/assignmentRequests"),
            json!({"requestType": "userAdd", "assignment": {"accessPackageId": f.package_id, "assignmentPolicyId": f.self_policy_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    app.drain().await;
    assert!(app.is_member(&f.group_id, &id).await);
    // The membership the assignment delivered is not a SCIM (direct) membership.
    let (_, group, _) = scim(&app, &token, Method::GET, &format!("/Groups/{}", f.group_id), None).await;
    assert_eq!(group["members"], json!([]), "{group}");
}

#[tokio::test]
async fn wrong_methods_search_and_login_names() {
    let app = TestApp::spawn().await;
    let token = scim_token(&app, "tester").await;

    // Methods an endpoint does not answer are 405 in SCIM's shape, naming what it answers.
    for (method, path, allow) in [
        (Method::DELETE, "/Users", "GET, POST"),
        (Method::PUT, "/Groups", "GET, POST"),
        (Method::POST, "/Users/00000000-0000-0000-0000-000000000001", "GET, PUT, PATCH, DELETE"),
        (Method::GET, "/Users/.search", "POST"),
    ] {
        let resp = app
            .client
            .request(method.clone(), app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(resp.headers()["allow"], allow, "{method} {path}");
        let body: Value = resp.json().await.unwrap();
        assert_scim_error(&body, "405", None);
    }

    // A login name without a domain is kept as sent and becomes the userPrincipalName
    // NAME@grantry.local.
    let (status, user, _) =
        scim(&app, &token, Method::POST, "/Users", Some(json!({"userName": "jdoe", "displayName": "J. Doe"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["userName"], "jdoe");
    let id = user["id"].as_str().unwrap().to_string();
    let (_, graph) = app.get(&app.admin, &format!("/v1.0/users/{id}")).await;
    assert_eq!(graph["userPrincipalName"], "jdoe@grantry.local", "{graph}");
    let (status, body, _) = scim(&app, &token, Method::POST, "/Users", Some(json!({"userName": "JDOE"}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_scim_error(&body, "409", Some("uniqueness"));
    let (status, body, _) = scim(&app, &token, Method::POST, "/Users", Some(json!({"userName": "j doe"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_scim_error(&body, "400", Some("invalidValue"));
    // Renamed through Graph, the user's userName follows the userPrincipalName.
    let (status, _) =
        app.patch(&app.admin, &format!("/v1.0/users/{id}"), json!({"userPrincipalName": "john@contoso.com"})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, user, _) = scim(&app, &token, Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(user["userName"], "john@contoso.com");

    // POST /.search takes the query in its body.
    scim(&app, &token, Method::POST, "/Groups", Some(json!({"displayName": "Sales"}))).await;
    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"john\"", "attributes": ["userName"], "startIndex": 1, "count": 10
    });
    let (status, found, _) = scim(&app, &token, Method::POST, "/Users/.search", Some(search)).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(found["Resources"][0]["userName"], "john@contoso.com");
    assert!(found["Resources"][0].get("displayName").is_none(), "{found}");
    let (_, all, _) = scim(&app, &token, Method::POST, "/.search", Some(json!({"count": 10}))).await;
    assert_eq!(all["totalResults"], 2, "{all}");
    let (status, body, _) =
        scim(&app, &token, Method::POST, "/Groups/.search", Some(json!({"filter": "displayName eq"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_scim_error(&body, "400", Some("invalidFilter"));
}

/// Lists read the directory in chunks through the filter's SQL narrowing: totals and pages
/// stay exact past a chunk's end, for users and groups, in both query forms.
#[tokio::test]
async fn lists_page_through_large_directories_with_filters_in_the_store() {
    let app = TestApp::spawn().await;
    let token = scim_token(&app, "idp").await;
    for n in 0..230 {
        let (status, body, _) = scim(
            &app,
            &token,
            Method::POST,
            "/Users",
            Some(json!({"userName": format!("bulk{n:03}@contoso.com"), "externalId": format!("bulk-{n}"),
                        "displayName": format!("Bulk {n}")})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for name in ["Team 50%_off", "Team 50 off"] {
        let (status, body, _) = scim(&app, &token, Method::POST, "/Groups", Some(json!({"displayName": name}))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let get = |path: String| {
        let (app, token) = (&app, token.clone());
        async move {
            let (status, body, _) = scim(app, &token, Method::GET, &path, None).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            body
        }
    };
    let page = get(format!("/Users?filter={}&startIndex=201&count=50", q(r#"userName sw "BULK""#))).await;
    assert_eq!((page["totalResults"].as_u64(), page["itemsPerPage"].as_u64()), (Some(230), Some(30)), "{page}");
    assert_eq!(page["Resources"][0]["userName"], "bulk200@contoso.com");
    let one = get(format!("/Users?filter={}", q(r#"externalId eq "bulk-217""#))).await;
    assert_eq!(one["totalResults"], 1);
    assert_eq!(one["Resources"][0]["userName"], "bulk217@contoso.com");
    let either = get(format!("/Users?filter={}", q(r#"externalId eq "bulk-3" or displayName eq "bulk 229""#))).await;
    assert_eq!(either["totalResults"], 2, "{either}");
    assert_eq!(get(format!("/Users?filter={}", q(r#"displayName co "k 22""#))).await["totalResults"], 11);
    assert_eq!(get(format!("/Users?filter={}", q(r#"not (displayName co "k 22")"#))).await["totalResults"], 219);
    // LIKE's wildcards in a value are matched literally.
    let groups = get(format!("/Groups?filter={}", q(r#"displayName co "50%_""#))).await;
    assert_eq!(groups["totalResults"], 1, "{groups}");
    assert_eq!(groups["Resources"][0]["displayName"], "Team 50%_off");
    // POST /.search at the root: users, then groups, one page across both.
    let (status, body, _) = scim(
        &app,
        &token,
        Method::POST,
        "/.search",
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "startIndex": 229, "count": 3}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["totalResults"], 232);
    let shown: Vec<&str> = body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().or(r["displayName"].as_str()).unwrap())
        .collect();
    assert_eq!(shown, ["bulk228@contoso.com", "bulk229@contoso.com", "Team 50%_off"]);
}
