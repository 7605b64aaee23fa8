//! `/groups`, members, owners and the `direct`/`granted` membership model.

use crate::helpers::*;
use grantry_domain::model::GroupRelation;
use reqwest::StatusCode;
use serde_json::json;

const ROOTS: [&str; 2] = ["v1.0", "beta"];

#[tokio::test]
async fn create_read_patch_and_delete_groups_in_both_roots() {
    let app = TestApp::spawn().await;
    for root in ROOTS {
        let (status, body) = app
            .post(
                &app.admin,
                &format!("/{root}/groups"),
                json!({ "displayName": "Sales", "mailNickname": "sales", "description": "Sales team",
                        "securityEnabled": true, "mailEnabled": false, "groupTypes": ["unified"], "visibility": "private" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["@odata.type"], "#microsoft.graph.group");
        assert_eq!(body["@odata.context"], format!("{}/{root}/$metadata#groups/$entity", app.base));
        assert_eq!(body["groupTypes"], json!(["Unified"]));
        assert_eq!(body["visibility"], "Private");
        let id = body["id"].as_str().unwrap().to_string();

        let (status, body) = app.get(&app.admin, &format!("/{root}/groups/{}", id.to_uppercase())).await;
        assert_eq!((status, body["displayName"].as_str()), (StatusCode::OK, Some("Sales")));

        let (status, body) = app
            .patch(
                &app.admin,
                &format!("/{root}/groups/{id}"),
                json!({ "displayName": "Sales EMEA", "description": null, "visibility": "Public", "groupTypes": [] }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (_, body) = app.get(&app.admin, &format!("/{root}/groups/{id}")).await;
        assert_eq!(body["displayName"], "Sales EMEA");
        assert_eq!(body["description"], serde_json::Value::Null);
        assert_eq!(body["visibility"], "Public");
        assert_eq!(body["groupTypes"], json!([]));
        assert_eq!(body["mailNickname"], "sales");

        let (status, body) = app.get(&app.admin, &format!("/{root}/groups")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(TestApp::ids_of(&body).contains(&id));

        let (status, _) = app.delete(&app.admin, &format!("/{root}/groups/{id}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = app.get(&app.admin, &format!("/{root}/groups/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_error(&body, "ResourceNotFound");
        let (status, _) = app.delete(&app.admin, &format!("/{root}/groups/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = app.patch(&app.admin, &format!("/{root}/groups/{id}"), json!({ "displayName": "x" })).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn bad_group_input_is_400_naming_the_property() {
    let app = TestApp::spawn().await;
    let id = app.create_group("g").await;
    let cases = [
        (json!({ "mailNickname": "x" }), "displayName"),
        (json!({ "displayName": "x", "groupTypes": ["Distribution"] }), "groupTypes"),
        (json!({ "displayName": "x", "groupTypes": "Unified" }), "groupTypes"),
        (json!({ "displayName": "x", "groupTypes": [1] }), "groupTypes"),
        (json!({ "displayName": "x", "visibility": "Secret" }), "visibility"),
        (json!({ "displayName": "x", "securityEnabled": "yes" }), "securityEnabled"),
        (json!({ "displayName": "x", "members@odata.bind": ["https://x/users/"] }), "members@odata.bind"),
    ];
    for (body, target) in cases {
        let (status, resp) = app.post(&app.admin, "/v1.0/groups", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert_error(&resp, "InvalidRequestBody");
        assert_eq!(resp["error"]["target"], target, "{resp}");
    }
    for (body, target) in [(json!({ "displayName": "" }), "displayName"), (json!({ "visibility": "x" }), "visibility")]
    {
        let (status, resp) = app.patch(&app.admin, &format!("/v1.0/groups/{id}"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(resp["error"]["target"], target, "{resp}");
    }
}

#[tokio::test]
async fn members_and_owners_in_both_roots() {
    let app = TestApp::spawn().await;
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    for root in ROOTS {
        let group = app.create_group(&format!("team-{root}")).await;
        let nested = app.create_group(&format!("nested-{root}")).await;
        for (path, reference) in [
            ("members", format!("https://graph.microsoft.com/{root}/directoryObjects/{alice}")),
            ("members", format!("https://graph.microsoft.com/{root}/groups/{nested}")),
            ("members", format!("http://127.0.0.1:1/{root}/users('{bob}')")),
            ("owners", format!("https://graph.microsoft.com/{root}/users/{}", bob.to_uppercase())),
        ] {
            let (status, body) = app
                .post(&app.admin, &format!("/{root}/groups/{group}/{path}/$ref"), json!({ "@odata.id": reference }))
                .await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{path} {reference}: {body}");
        }
        let (status, body) = app.get(&app.admin, &format!("/{root}/groups/{group}/members")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(TestApp::ids_of(&body), vec![alice.clone(), nested.clone(), bob.clone()]);
        let types: Vec<&str> =
            body["value"].as_array().unwrap().iter().map(|v| v["@odata.type"].as_str().unwrap()).collect();
        assert_eq!(types, ["#microsoft.graph.user", "#microsoft.graph.group", "#microsoft.graph.user"]);
        assert_eq!(body["@odata.context"], format!("{}/{root}/$metadata#directoryObjects", app.base));
        let (_, body) = app.get(&app.admin, &format!("/{root}/groups/{group}/owners")).await;
        assert_eq!(TestApp::ids_of(&body), vec![bob.clone()]);

        // Paging.
        let (_, body) = app.get(&app.admin, &format!("/{root}/groups/{group}/members?$top=2")).await;
        assert_eq!(TestApp::ids_of(&body).len(), 2);
        let next = body["@odata.nextLink"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string();
        let (_, body) = app.get(&app.admin, &next).await;
        assert_eq!(TestApp::ids_of(&body), vec![bob.clone()]);

        // Adding again is refused with Graph's message.
        let (status, body) = app
            .post(
                &app.admin,
                &format!("/{root}/groups/{group}/members/$ref"),
                json!({ "@odata.id": format!("https://x/directoryObjects/{alice}") }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body["error"]["message"].as_str().unwrap().contains("One or more added object references already exist")
        );

        // Removing: both forms; the second time is a 404.
        let (status, body) = app.delete(&app.admin, &format!("/{root}/groups/{group}/members/{alice}/$ref")).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, body) = app.delete(&app.admin, &format!("/{root}/groups/{group}/members/{alice}/$ref")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_error(&body, "Request_ResourceNotFound");
        let (status, _) = app
            .delete(&app.admin, &format!("/{root}/groups/{group}/members/$ref?$id=https://graph.microsoft.com/{root}/directoryObjects/{nested}"))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = app.delete(&app.admin, &format!("/{root}/groups/{group}/owners/{bob}/$ref")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, body) = app.get(&app.admin, &format!("/{root}/groups/{group}/members")).await;
        assert_eq!(TestApp::ids_of(&body), vec![bob.clone()]);
        let (_, body) = app.get(&app.admin, &format!("/{root}/groups/{group}/owners")).await;
        assert!(TestApp::ids_of(&body).is_empty());

        // Deleting a group removes its links, including its membership of other groups.
        app.add_member(&group, &nested).await;
        let (status, _) = app.delete(&app.admin, &format!("/{root}/groups/{nested}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, body) = app.get(&app.admin, &format!("/{root}/groups/{group}/members")).await;
        assert_eq!(TestApp::ids_of(&body), vec![bob.clone()]);
    }
}

#[tokio::test]
async fn bad_references_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.create_user("u").await;
    let group = app.create_group("g").await;
    let other = app.create_group("other").await;
    let missing = "00000000-0000-0000-0000-000000000000";
    let cases = [
        ("members", json!({}), StatusCode::BAD_REQUEST),
        ("members", json!({ "@odata.id": 5 }), StatusCode::BAD_REQUEST),
        ("members", json!({ "@odata.id": "https://x/users/" }), StatusCode::BAD_REQUEST),
        ("members", json!({ "@odata.id": format!("https://x/directoryObjects/{missing}") }), StatusCode::NOT_FOUND),
        // The entity set must match the object.
        ("members", json!({ "@odata.id": format!("https://x/users/{other}") }), StatusCode::NOT_FOUND),
        ("members", json!({ "@odata.id": format!("https://x/groups/{user}") }), StatusCode::NOT_FOUND),
        ("members", json!({ "@odata.id": format!("https://x/groups/{group}") }), StatusCode::BAD_REQUEST),
        ("owners", json!({ "@odata.id": format!("https://x/directoryObjects/{other}") }), StatusCode::BAD_REQUEST),
    ];
    for (relation, body, expected) in cases {
        let (status, resp) = app.post(&app.admin, &format!("/v1.0/groups/{group}/{relation}/$ref"), body.clone()).await;
        assert_eq!(status, expected, "{relation} {body}: {resp}");
        assert!(resp["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, _) = app
        .post(
            &app.admin,
            &format!("/v1.0/groups/{missing}/members/$ref"),
            json!({ "@odata.id": format!("https://x/users/{user}") }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.delete(&app.admin, &format!("/v1.0/groups/{group}/members/$ref")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get(&app.admin, &format!("/v1.0/groups/{missing}/members")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn create_with_members_and_owners_bound() {
    let app = TestApp::spawn().await;
    let a = app.create_user("a").await;
    let b = app.create_user("b").await;
    let (status, body) = app
        .post(
            &app.admin,
            "/beta/groups",
            json!({ "displayName": "Bound", "members@odata.bind": [format!("https://graph.microsoft.com/v1.0/users/{a}"), format!("https://graph.microsoft.com/v1.0/directoryObjects/{b}")],
                    "owners@odata.bind": [format!("https://graph.microsoft.com/v1.0/users/{a}")] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap();
    let (_, body) = app.get(&app.admin, &format!("/v1.0/groups/{id}/members")).await;
    assert_eq!(TestApp::ids_of(&body), vec![a.clone(), b.clone()]);
    let (_, body) = app.get(&app.admin, &format!("/v1.0/groups/{id}/owners")).await;
    assert_eq!(TestApp::ids_of(&body), vec![a.clone()]);
    // An unknown object in a bind creates nothing.
    let (status, _) = app
        .post(&app.admin, "/v1.0/groups", json!({ "displayName": "Nope", "members@odata.bind": ["https://x/users/00000000-0000-0000-0000-000000000000"] }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = app.get(&app.admin, "/v1.0/groups").await;
    assert_eq!(TestApp::ids_of(&body).len(), 1);
}

#[tokio::test]
async fn group_permissions() {
    let app = TestApp::spawn().await;
    let owner = app.create_user("owner").await;
    let plain = app.create_user("plain").await;
    let admin = app.create_user("gadmin").await;
    let group = app.create_group("g").await;
    app.add_owner(&group, &owner).await;

    // Tokens without a group permission.
    let no_scope = app.app_token(&["User.Read.All"]);
    for path in ["/v1.0/groups".to_string(), format!("/v1.0/groups/{group}"), format!("/beta/groups/{group}/members")] {
        let (status, body) = app.get(&no_scope, &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_error(&body, "accessDenied");
    }
    let read_only = app.app_token(&["Group.Read.All"]);
    let (status, _) = app.get(&read_only, &format!("/v1.0/groups/{group}/owners")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.post(&read_only, "/v1.0/groups", json!({ "displayName": "x" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let member_writer = app.app_token(&["GroupMember.ReadWrite.All"]);
    let (status, _) = app.patch(&member_writer, &format!("/v1.0/groups/{group}"), json!({ "displayName": "x" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .post(
            &member_writer,
            &format!("/v1.0/groups/{group}/members/$ref"),
            json!({ "@odata.id": format!("https://x/users/{plain}") }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = app.delete(&member_writer, &format!("/v1.0/groups/{group}/members/{plain}/$ref")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A delegated user without a role can read but not write.
    let token = app.user_token_default(&plain);
    let (status, _) = app.get(&token, &format!("/v1.0/groups/{group}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.post(&token, "/v1.0/groups", json!({ "displayName": "x" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"]["message"].as_str().unwrap().contains("Groups Administrator"));
    let (status, _) = app.delete(&token, &format!("/v1.0/groups/{group}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(
            &token,
            &format!("/v1.0/groups/{group}/members/$ref"),
            json!({ "@odata.id": format!("https://x/users/{plain}") }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The group's owner may change its members and owners, but not the group itself.
    let token = app.user_token_default(&owner);
    let (status, body) = app
        .post(
            &token,
            &format!("/beta/groups/{group}/members/$ref"),
            json!({ "@odata.id": format!("https://x/users/{plain}") }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = app.delete(&token, &format!("/beta/groups/{group}/members/{plain}/$ref")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.patch(&token, &format!("/v1.0/groups/{group}"), json!({ "displayName": "x" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let other = app.create_group("other").await;
    let (status, _) = app
        .post(
            &token,
            &format!("/v1.0/groups/{other}/members/$ref"),
            json!({ "@odata.id": format!("https://x/users/{plain}") }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A Groups Administrator may do everything.
    app.assign_directory_role(&admin, GROUPS_ADMIN_ROLE).await;
    let token = app.user_token_default(&admin);
    let (status, body) = app.post(&token, "/v1.0/groups", json!({ "displayName": "by admin" })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = app.patch(&token, &format!("/v1.0/groups/{other}"), json!({ "description": "x" })).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app
        .post(
            &token,
            &format!("/v1.0/groups/{other}/owners/$ref"),
            json!({ "@odata.id": format!("https://x/users/{plain}") }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.delete(&token, &format!("/v1.0/groups/{other}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn memberships_delivered_by_assignments_outlive_an_api_removal() {
    let app = TestApp::spawn().await;
    let user = app.create_user("delivered").await;
    let group = app.create_group("g").await;
    let store = app.state().app.store.clone();
    let (g, u) = (group.clone(), user.clone());
    let grant =
        move |c: &mut dyn grantry_store::Conn| grantry_core::membership::grant(c, &g, GroupRelation::Member, &u);
    store.write(grant.clone()).await.unwrap();
    let members = |body: &serde_json::Value| TestApp::ids_of(body);
    let (_, body) = app.get(&app.admin, &format!("/v1.0/groups/{group}/members")).await;
    assert_eq!(members(&body), vec![user.clone()]);

    // Removing through the API answers 204, but the delivered membership stays.
    let (status, _) = app.delete(&app.admin, &format!("/v1.0/groups/{group}/members/{user}/$ref")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = app.get(&app.admin, &format!("/v1.0/groups/{group}/members")).await;
    assert_eq!(members(&body), vec![user.clone()]);

    // Adding through the API makes it direct: it outlives the end of the delivery.
    app.add_member(&group, &user).await;
    let (g, u) = (group.clone(), user.clone());
    store.write(move |c| grantry_core::membership::revoke(c, &g, GroupRelation::Member, &u)).await.unwrap();
    let (_, body) = app.get(&app.admin, &format!("/v1.0/groups/{group}/members")).await;
    assert_eq!(members(&body), vec![user.clone()]);
    let (g, u) = (group.clone(), user.clone());
    assert!(store.read(move |c| grantry_core::membership::is_member(c, &g, &u)).await.unwrap());

    // Two deliveries need two revocations once the direct link is gone.
    let (status, _) = app.delete(&app.admin, &format!("/v1.0/groups/{group}/members/{user}/$ref")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = app.get(&app.admin, &format!("/v1.0/groups/{group}/members")).await;
    assert!(members(&body).is_empty());
    store.write(grant.clone()).await.unwrap();
    store.write(grant.clone()).await.unwrap();
    let (g, u) = (group.clone(), user.clone());
    let revoke =
        move |c: &mut dyn grantry_store::Conn| grantry_core::membership::revoke(c, &g, GroupRelation::Member, &u);
    store.write(revoke.clone()).await.unwrap();
    let g = group.clone();
    assert_eq!(store.read(move |c| grantry_core::membership::member_ids(c, &g)).await.unwrap(), vec![user.clone()]);
    store.write(revoke.clone()).await.unwrap();
    let g = group.clone();
    assert!(store.read(move |c| grantry_core::membership::member_ids(c, &g)).await.unwrap().is_empty());
    // Revoking what is not there is harmless.
    store.write(revoke).await.unwrap();
    let (status, _) = app.delete(&app.admin, &format!("/v1.0/groups/{group}/members/{user}/$ref")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
