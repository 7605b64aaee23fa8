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

const ROOTS: [&str; 2] = ["v1.0", "beta"];

#[tokio::test]
async fn create_patch_and_delete_users_in_both_roots() {
    let app = TestApp::spawn().await;
    let taken = app.create_user("taken").await;
    for root in ROOTS {
        let (status, body) = app
            .post(
                &app.admin,
                &format!("/{root}/users"),
                json!({ "displayName": "Megan", "userPrincipalName": format!("megan.{root}@contoso.com"),
                        "userType": "guest", "accountEnabled": "true", "jobTitle": "Engineer" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["userType"], "Guest");
        assert_eq!(body["@odata.type"], "#microsoft.graph.user");
        let id = body["id"].as_str().unwrap().to_string();
        let (status, body) = app.get(&app.admin, &format!("/{root}/users")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(TestApp::ids_of(&body).contains(&id));
        assert_eq!(body["@odata.context"], format!("{}/{root}/$metadata#users", app.base));

        let (status, body) = app
            .patch(
                &app.admin,
                &format!("/{root}/users/{}", id.to_uppercase()),
                json!({ "displayName": "Megan B", "jobTitle": null, "department": "Sales", "mail": "megan@contoso.com",
                        "givenName": "Megan", "surname": "Bowen", "userType": "Member", "accountEnabled": true,
                        "userPrincipalName": format!("meganb.{root}@contoso.com") }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, body) = app.get(&app.admin, &format!("/{root}/users/meganb.{root}@contoso.com")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["displayName"], "Megan B");
        assert_eq!(body["jobTitle"], serde_json::Value::Null);
        assert_eq!(body["department"], "Sales");
        assert_eq!(body["mail"], "megan@contoso.com");
        assert_eq!(body["surname"], "Bowen");
        assert_eq!(body["userType"], "Member");

        // The UPN stays unique, ignoring case; keeping one's own UPN is fine.
        let (status, body) = app
            .patch(&app.admin, &format!("/{root}/users/{id}"), json!({ "userPrincipalName": "TAKEN@contoso.com" }))
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_error(&body, "Request_MultipleObjectsWithSameKeyValue");
        let (status, _) = app
            .patch(
                &app.admin,
                &format!("/{root}/users/{id}"),
                json!({ "userPrincipalName": format!("MEGANB.{root}@contoso.com") }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        let (status, body) = app.delete(&app.admin, &format!("/{root}/users/{id}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, body) = app.get(&app.admin, &format!("/{root}/users/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_error(&body, "ResourceNotFound");
        let (status, _) = app.delete(&app.admin, &format!("/{root}/users/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = app.patch(&app.admin, &format!("/{root}/users/{id}"), json!({ "displayName": "x" })).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = app.get(&app.admin, &format!("/v1.0/users/{taken}")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_user_input_is_400_naming_the_property() {
    let app = TestApp::spawn().await;
    let id = app.create_user("input").await;
    let cases = [
        (json!({ "displayName": "A", "userPrincipalName": "no-at-sign" }), "userPrincipalName"),
        (json!({ "displayName": "A", "userPrincipalName": "@contoso.com" }), "userPrincipalName"),
        (json!({ "displayName": "", "userPrincipalName": "a@contoso.com" }), "displayName"),
        (json!({ "displayName": "A", "userPrincipalName": "a@contoso.com", "userType": "Robot" }), "userType"),
        (
            json!({ "displayName": "A", "userPrincipalName": "a@contoso.com", "accountEnabled": "maybe" }),
            "accountEnabled",
        ),
        (json!({ "displayName": 7, "userPrincipalName": "a@contoso.com" }), "displayName"),
    ];
    for (body, target) in cases {
        let (status, resp) = app.post(&app.admin, "/v1.0/users", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert_error(&resp, "InvalidRequestBody");
        assert_eq!(resp["error"]["target"], target, "{resp}");
    }
    let patches = [
        (json!({ "displayName": null }), "displayName"),
        (json!({ "userPrincipalName": "" }), "userPrincipalName"),
        (json!({ "userPrincipalName": "two@at@signs" }), "userPrincipalName"),
        (json!({ "userType": "Robot" }), "userType"),
        (json!({ "accountEnabled": 3 }), "accountEnabled"),
        (json!({ "mail": ["x"] }), "mail"),
    ];
    for (body, target) in patches {
        let (status, resp) = app.patch(&app.admin, &format!("/v1.0/users/{id}"), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert_eq!(resp["error"]["target"], target, "{resp}");
    }
    let (status, resp) = app.patch(&app.admin, &format!("/v1.0/users/{id}"), json!([1])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
}

#[tokio::test]
async fn me_is_the_signed_in_user_and_needs_a_delegated_token() {
    let app = TestApp::spawn().await;
    let id = app.create_user("self").await;
    // No scope at all: a signed-in user may always read themselves.
    let token = app.user_token(&id, &[]);
    for root in ROOTS {
        let (status, body) = app.get(&token, &format!("/{root}/me")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["id"], id.as_str());
        assert_eq!(body["@odata.context"], format!("{}/{root}/$metadata#users/$entity", app.base));
        let (status, _) = app.get(&token, &format!("/{root}/users/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = app.get(&app.admin, &format!("/{root}/me")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_error(&body, "BadRequest");
        assert!(body["error"]["message"].as_str().unwrap().contains("delegated"));
    }
    // Reading someone else needs a user-read scope.
    let other = app.create_user("other").await;
    let (status, body) = app.get(&token, &format!("/v1.0/users/{other}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&body, "accessDenied");
}

#[tokio::test]
async fn reading_users_needs_a_read_scope_and_writing_needs_an_admin_role() {
    let app = TestApp::spawn().await;
    let reader = app.create_user("reader").await;
    let target = app.create_user("target").await;

    // Application token without a user permission.
    let no_scope = app.app_token(&["EntitlementManagement.ReadWrite.All"]);
    for path in ["/v1.0/users".to_string(), format!("/beta/users/{target}"), format!("/v1.0/users/{target}/manager")] {
        let (status, body) = app.get(&no_scope, &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_error(&body, "accessDenied");
    }
    let (status, _) =
        app.post(&no_scope, "/v1.0/users", json!({ "displayName": "x", "userPrincipalName": "x@c.com" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Any member user with a read scope may read the directory.
    let token = app.user_token(&reader, &["User.ReadBasic.All"]);
    let (status, body) = app.get(&token, "/v1.0/users").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 2);
    let (status, _) = app.get(&token, &format!("/beta/users/{target}")).await;
    assert_eq!(status, StatusCode::OK);

    // Writing needs User Administrator or Global Administrator, whatever the scope.
    let token = app.user_token_default(&reader);
    let (status, body) = app.patch(&token, &format!("/v1.0/users/{target}"), json!({ "jobTitle": "x" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"]["message"].as_str().unwrap().contains("User Administrator"));
    let (status, _) = app.delete(&token, &format!("/v1.0/users/{target}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) =
        app.post(&token, "/v1.0/users", json!({ "displayName": "x", "userPrincipalName": "x@c.com" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .put(
            &token,
            &format!("/v1.0/users/{target}/manager/$ref"),
            json!({ "@odata.id": format!("https://x/users/{reader}") }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An Identity Governance Administrator can read but not write users.
    app.make_iga(&reader).await;
    let (status, _) = app.get(&token, &format!("/v1.0/users/{target}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.patch(&token, &format!("/v1.0/users/{target}"), json!({ "jobTitle": "x" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A User Administrator can write (roles are read on every request).
    app.assign_directory_role(&reader, USER_ADMIN_ROLE).await;
    let (status, body) = app.patch(&token, &format!("/v1.0/users/{target}"), json!({ "jobTitle": "x" })).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) =
        app.post(&token, "/beta/users", json!({ "displayName": "x", "userPrincipalName": "x@c.com" })).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn guests_cannot_enumerate_users() {
    let app = TestApp::spawn().await;
    let member = app.create_user("member").await;
    let (status, body) = app
        .post(
            &app.admin,
            "/v1.0/users",
            json!({ "displayName": "G", "userPrincipalName": "g@fabrikam.com", "userType": "Guest" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let guest = body["id"].as_str().unwrap().to_string();
    let token = app.user_token(&guest, &["User.Read.All"]);
    let (status, body) = app.get(&token, "/v1.0/users").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = app.get(&token, &format!("/v1.0/users/{member}")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn disabled_and_deleted_users_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let id = app.create_user("leaver").await;
    let token = app.user_token_default(&id);
    let (status, _) = app.get(&token, "/v1.0/me").await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = app.patch(&app.admin, &format!("/v1.0/users/{id}"), json!({ "accountEnabled": false })).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for root in ROOTS {
        let (status, body) = app.get(&token, &format!("/{root}/me")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_error(&body, "InvalidAuthenticationToken");
        assert!(body["error"]["message"].as_str().unwrap().contains("disabled"));
    }
    let (status, _) = app.patch(&app.admin, &format!("/v1.0/users/{id}"), json!({ "accountEnabled": true })).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&token, "/v1.0/me").await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = app.delete(&app.admin, &format!("/v1.0/users/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&token, "/beta/users").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["message"].as_str().unwrap().contains("no longer exists"));
}

#[tokio::test]
async fn managers_and_direct_reports_in_both_roots() {
    let app = TestApp::spawn().await;
    let boss = app.create_user("boss").await;
    let lead = app.create_user("lead").await;
    let dev = app.create_user("dev").await;
    for root in ROOTS {
        let (status, body) = app.get(&app.admin, &format!("/{root}/users/{dev}/manager")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_error(&body, "Request_ResourceNotFound");

        // Any base URL; the last segment is the id.
        let (status, body) = app
            .put(
                &app.admin,
                &format!("/{root}/users/{dev}/manager/$ref"),
                json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/users/{}", lead.to_uppercase()) }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, _) = app
            .put(
                &app.admin,
                &format!("/{root}/users/{lead}/manager/$ref"),
                json!({ "@odata.id": format!("http://localhost/{root}/users/{boss}") }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        let (status, body) = app.get(&app.admin, &format!("/{root}/users/{dev}/manager")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["id"], lead.as_str());
        assert_eq!(body["@odata.type"], "#microsoft.graph.user");
        let (status, body) = app.get(&app.admin, &format!("/{root}/users/lead@contoso.com/directReports")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(TestApp::ids_of(&body), vec![dev.clone()]);
        assert_eq!(body["@odata.context"], format!("{}/{root}/$metadata#directoryObjects", app.base));

        // Cycles: oneself, and boss → dev when dev → lead → boss.
        for (user, manager) in [(&dev, &dev), (&boss, &dev), (&boss, &lead)] {
            let (status, body) = app
                .put(
                    &app.admin,
                    &format!("/{root}/users/{user}/manager/$ref"),
                    json!({ "@odata.id": format!("https://x/users/{manager}") }),
                )
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(body["error"]["message"].as_str().unwrap().contains("manager"), "{body}");
        }
        // Unknown manager, malformed reference.
        let (status, _) = app
            .put(
                &app.admin,
                &format!("/{root}/users/{dev}/manager/$ref"),
                json!({ "@odata.id": "https://x/users/00000000-0000-0000-0000-000000000000" }),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) =
            app.put(&app.admin, &format!("/{root}/users/{dev}/manager/$ref"), json!({ "id": boss })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["target"], "@odata.id");
        let (status, _) = app
            .put(
                &app.admin,
                "/v1.0/users/00000000-0000-0000-0000-000000000000/manager/$ref",
                json!({ "@odata.id": format!("https://x/users/{boss}") }),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // A user may read their own manager without any scope.
        let (status, body) = app.get(&app.user_token(&dev, &[]), &format!("/{root}/users/{dev}/manager")).await;
        assert_eq!((status, body["id"].as_str()), (StatusCode::OK, Some(lead.as_str())));

        let (status, _) = app.delete(&app.admin, &format!("/{root}/users/{dev}/manager/$ref")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app.delete(&app.admin, &format!("/{root}/users/{dev}/manager/$ref")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = app.get(&app.admin, &format!("/{root}/users/{dev}/manager")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = app.get(&app.admin, &format!("/{root}/users/{lead}/directReports")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(TestApp::ids_of(&body).is_empty());
        let (status, _) = app.delete(&app.admin, &format!("/{root}/users/{lead}/manager/$ref")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn deleting_a_user_removes_links_roles_and_manager_references() {
    let app = TestApp::spawn().await;
    let gone = app.create_user("gone").await;
    let report = app.create_user("report").await;
    let stays = app.create_user("stays").await;
    let group = app.create_group("team").await;
    app.add_member(&group, &gone).await;
    app.add_owner(&group, &gone).await;
    app.add_member(&group, &stays).await;
    app.make_iga(&gone).await;
    let (status, _) = app
        .put(
            &app.admin,
            &format!("/v1.0/users/{report}/manager/$ref"),
            json!({ "@odata.id": format!("https://x/users/{gone}") }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, _) = app.delete(&app.admin, &format!("/v1.0/users/{gone}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (_, body) = app.get(&app.admin, &format!("/v1.0/groups/{group}/members")).await;
    assert_eq!(TestApp::ids_of(&body), vec![stays.clone()]);
    let (_, body) = app.get(&app.admin, &format!("/v1.0/groups/{group}/owners")).await;
    assert!(TestApp::ids_of(&body).is_empty());
    let (_, body) = app
        .get(&app.admin, &format!("/v1.0/roleManagement/directory/roleAssignments?$filter=principalId eq '{gone}'"))
        .await;
    assert!(TestApp::ids_of(&body).is_empty(), "{body}");
    let (status, _) = app.get(&app.admin, &format!("/v1.0/users/{report}/manager")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app.get(&app.admin, &format!("/v1.0/users/{report}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn member_of_lists_the_groups_of_a_user() {
    let app = TestApp::spawn().await;
    let user = app.create_user("joiner").await;
    let a = app.create_group("a").await;
    let b = app.create_group("b").await;
    let _c = app.create_group("c").await;
    app.add_member(&a, &user).await;
    app.add_member(&b, &user).await;
    app.add_owner(&_c, &user).await;
    for root in ROOTS {
        let (status, body) = app.get(&app.admin, &format!("/{root}/users/{user}/memberOf")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(TestApp::ids_of(&body), vec![a.clone(), b.clone()]);
        assert_eq!(body["value"][0]["@odata.type"], "#microsoft.graph.group");
    }
    let (status, body) = app.get(&app.user_token(&user, &[]), &format!("/v1.0/users/{user}/memberOf?$top=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(TestApp::ids_of(&body), vec![a.clone()]);
    assert!(body["@odata.nextLink"].is_string());
    let (status, _) = app.get(&app.admin, "/v1.0/users/00000000-0000-0000-0000-000000000000/memberOf").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
