//! `/roleManagement/directory` and `/roleManagement/entitlementManagement`.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

const ROOTS: [&str; 2] = ["v1.0", "beta"];
const DIR: &str = "roleManagement/directory";
const EMR: &str = "roleManagement/entitlementManagement";
const MISSING: &str = "00000000-0000-0000-0000-000000000000";

#[tokio::test]
async fn directory_role_assignments_in_both_roots() {
    let app = TestApp::spawn().await;
    let user = app.create_user("admin").await;
    for root in ROOTS {
        let (status, body) = app
            .post(
                &app.admin,
                &format!("/{root}/{DIR}/roleAssignments"),
                json!({ "principalId": user.to_uppercase(), "roleDefinitionId": GLOBAL_ADMIN_ROLE.to_uppercase(), "directoryScopeId": "/" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["@odata.type"], "#microsoft.graph.unifiedRoleAssignment");
        assert_eq!(body["@odata.context"], format!("{}/{root}/$metadata#{DIR}/roleAssignments/$entity", app.base));
        assert_eq!(body["principalId"], user.as_str());
        assert_eq!(body["roleDefinitionId"], GLOBAL_ADMIN_ROLE);
        assert_eq!(body["directoryScopeId"], "/");
        let id = body["id"].as_str().unwrap().to_string();

        let (status, body) = app.get(&app.admin, &format!("/{root}/{DIR}/roleAssignments/{id}")).await;
        assert_eq!((status, body["id"].as_str()), (StatusCode::OK, Some(id.as_str())));
        let (status, body) =
            app.get(&app.admin, &format!("/{root}/{DIR}/roleAssignments/{id}?$expand=principal,roleDefinition")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["principal"]["id"], user.as_str());
        assert_eq!(body["roleDefinition"]["displayName"], "Global Administrator");

        let (status, body) = app
            .post(
                &app.admin,
                &format!("/{root}/{DIR}/roleAssignments"),
                json!({ "principalId": user, "roleDefinitionId": GLOBAL_ADMIN_ROLE, "directoryScopeId": "/" }),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_error(&body, "Request_MultipleObjectsWithSameKeyValue");

        let (status, _) = app.delete(&app.admin, &format!("/{root}/{DIR}/roleAssignments/{id}")).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = app.get(&app.admin, &format!("/{root}/{DIR}/roleAssignments/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_error(&body, "ResourceNotFound");
        let (status, _) = app.delete(&app.admin, &format!("/{root}/{DIR}/roleAssignments/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn directory_role_assignment_filters() {
    let app = TestApp::spawn().await;
    let a = app.create_user("a").await;
    let b = app.create_user("b").await;
    let a_ga = app.assign_directory_role(&a, GLOBAL_ADMIN_ROLE).await;
    let a_iga = app.assign_directory_role(&a, IGA_ROLE).await;
    let b_iga = app.assign_directory_role(&b, IGA_ROLE).await;
    let list = |filter: String| {
        let app = &app;
        async move {
            let (status, body) = app.get(&app.admin, &format!("/v1.0/{DIR}/roleAssignments?$filter={filter}")).await;
            (status, body)
        }
    };
    let (status, body) = app.get(&app.admin, &format!("/beta/{DIR}/roleAssignments")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(TestApp::ids_of(&body), vec![a_ga.clone(), a_iga.clone(), b_iga.clone()]);
    let (_, body) = list(format!("principalId eq '{a}'")).await;
    assert_eq!(TestApp::ids_of(&body), vec![a_ga.clone(), a_iga.clone()]);
    let (_, body) = list(format!("roleDefinitionId eq '{IGA_ROLE}'")).await;
    assert_eq!(TestApp::ids_of(&body), vec![a_iga.clone(), b_iga.clone()]);
    let (_, body) = list(format!("principalId eq '{}' and roleDefinitionId eq '{IGA_ROLE}'", b.to_uppercase())).await;
    assert_eq!(TestApp::ids_of(&body), vec![b_iga.clone()]);
    let (_, body) = list(format!("PrincipalId eq {a} and roleDefinitionId eq '{}'", USER_ADMIN_ROLE)).await;
    assert!(TestApp::ids_of(&body).is_empty());
    let (_, body) = app.get(&app.admin, &format!("/v1.0/{DIR}/roleAssignments?$top=1&$expand=principal")).await;
    assert_eq!(TestApp::ids_of(&body), vec![a_ga.clone()]);
    assert_eq!(body["value"][0]["principal"]["id"], a.as_str());
    assert!(body["@odata.nextLink"].is_string());

    for bad in [
        format!("principalId ne '{a}'"),
        format!("principalId eq '{a}' or principalId eq '{b}'"),
        "displayName eq 'x'".to_string(),
        format!("startswith(principalId,'{a}')"),
        "principalId eq 5".to_string(),
        "principalId eq".to_string(),
    ] {
        let (status, body) = list(bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["target"], "$filter", "{body}");
    }
    let (status, body) = app.get(&app.admin, &format!("/v1.0/{DIR}/roleAssignments?$expand=appScope")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn bad_directory_role_assignments_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.create_user("u").await;
    let path = format!("/v1.0/{DIR}/roleAssignments");
    let (status, body) = app
        .post(&app.admin, &path, json!({ "principalId": user, "roleDefinitionId": MISSING, "directoryScopeId": "/" }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["target"], "roleDefinitionId");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(GLOBAL_ADMIN_ROLE) && message.contains("Identity Governance Administrator"), "{message}");
    let (status, body) = app
        .post(
            &app.admin,
            &path,
            json!({ "principalId": MISSING, "roleDefinitionId": IGA_ROLE, "directoryScopeId": "/" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["target"], "principalId");
    let (status, body) = app
        .post(
            &app.admin,
            &path,
            json!({ "principalId": user, "roleDefinitionId": IGA_ROLE, "directoryScopeId": "/administrativeUnits/x" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["target"], "directoryScopeId");
    for body in [
        json!({ "roleDefinitionId": IGA_ROLE }),
        json!({ "principalId": user }),
        json!({ "principalId": 1, "roleDefinitionId": IGA_ROLE }),
    ] {
        let (status, resp) = app.post(&app.admin, &path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert_error(&resp, "InvalidRequestBody");
    }
    // The scope defaults to the tenant.
    let (status, body) =
        app.post(&app.admin, &path, json!({ "principalId": user, "roleDefinitionId": IGA_ROLE })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["directoryScopeId"], "/");
    // An EM role id is not a directory role, and the providers do not see each other's ids.
    let (status, _) =
        app.post(&app.admin, &path, json!({ "principalId": user, "roleDefinitionId": CATALOG_CREATOR })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let id = body["id"].as_str().unwrap();
    let (status, _) = app.get(&app.admin, &format!("/v1.0/{EMR}/roleAssignments/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn who_may_assign_directory_roles() {
    let app = TestApp::spawn().await;
    let user = app.create_user("u").await;
    let target = app.create_user("t").await;
    let body = json!({ "principalId": target, "roleDefinitionId": IGA_ROLE, "directoryScopeId": "/" });
    let path = format!("/v1.0/{DIR}/roleAssignments");

    let no_scope = app.app_token(&["User.ReadWrite.All"]);
    let (status, resp) = app.post(&no_scope, &path, body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error(&resp, "accessDenied");
    let (status, _) = app.get(&no_scope, &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get(&no_scope, &format!("/v1.0/{DIR}/roleDefinitions")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let reader = app.app_token(&["RoleManagement.Read.Directory"]);
    let (status, _) = app.get(&reader, &path).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.post(&reader, &path, body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A delegated IGA may read but not assign directory roles.
    app.make_iga(&user).await;
    let token = app.user_token_default(&user);
    let (status, _) = app.get(&token, &path).await;
    assert_eq!(status, StatusCode::OK);
    let (status, resp) = app.post(&token, &path, body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(resp["error"]["message"].as_str().unwrap().contains("Privileged Role Administrator"));

    app.assign_directory_role(&user, PRIVILEGED_ROLE_ADMIN_ROLE).await;
    let (status, resp) = app.post(&token, &path, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    let id = resp["id"].as_str().unwrap();
    let (status, _) = app.delete(&token, &format!("{path}/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn role_definitions_of_both_providers() {
    let app = TestApp::spawn().await;
    for root in ROOTS {
        let (status, body) = app.get(&app.admin, &format!("/{root}/{DIR}/roleDefinitions")).await;
        assert_eq!(status, StatusCode::OK);
        let defs = body["value"].as_array().unwrap();
        let iga = defs.iter().find(|d| d["id"] == IGA_ROLE).expect("IGA listed");
        assert_eq!(iga["displayName"], "Identity Governance Administrator");
        assert_eq!(iga["isBuiltIn"], true);
        assert_eq!(iga["templateId"], IGA_ROLE);

        let (status, body) = app.get(&app.admin, &format!("/{root}/{EMR}/roleDefinitions")).await;
        assert_eq!(status, StatusCode::OK);
        let defs = body["value"].as_array().unwrap();
        assert_eq!(defs.len(), 6);
        for d in defs {
            assert!(d["displayName"].is_string() && d["description"].is_string() && d["isBuiltIn"] == true, "{d}");
        }
        let (status, body) = app.get(&app.admin, &format!("/{root}/{EMR}/roleDefinitions/{CATALOG_OWNER}")).await;
        assert_eq!((status, body["displayName"].as_str()), (StatusCode::OK, Some("Catalog owner")));
        let (status, _) = app.get(&app.admin, &format!("/{root}/{EMR}/roleDefinitions/{IGA_ROLE}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn em_role_assignments_in_both_roots() {
    let app = TestApp::spawn().await;
    let user = app.create_user("u").await;
    let catalog = app.insert_catalog("Marketing").await;
    for root in ROOTS {
        let path = format!("/{root}/{EMR}/roleAssignments");
        let (status, body) = app
            .post(&app.admin, &path, json!({ "principalId": user, "roleDefinitionId": CATALOG_READER,
                                             "appScopeId": format!("/accesspackagecatalog/{}", catalog.to_uppercase()) }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["@odata.type"], "#microsoft.graph.unifiedRoleAssignment");
        assert_eq!(body["appScopeId"], format!("/AccessPackageCatalog/{catalog}"));
        assert_eq!(body["@odata.context"], format!("{}/{root}/$metadata#{EMR}/roleAssignments/$entity", app.base));
        let reader_id = body["id"].as_str().unwrap().to_string();
        let (status, body) = app
            .post(
                &app.admin,
                &path,
                json!({ "principalId": user, "roleDefinitionId": CATALOG_CREATOR, "appScopeId": "/" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let creator_id = body["id"].as_str().unwrap().to_string();

        let (status, body) = app.get(&app.admin, &format!("{path}/{reader_id}?$expand=principal")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["principal"]["id"], user.as_str());
        assert_eq!(body["principal"]["@odata.type"], "#microsoft.graph.user");

        let (_, body) =
            app.get(&app.admin, &format!("{path}?$filter=appScopeId eq '/AccessPackageCatalog/{catalog}'")).await;
        assert_eq!(TestApp::ids_of(&body), vec![reader_id.clone()]);
        let (_, body) =
            app.get(&app.admin, &format!("{path}?$filter=appScopeId eq '/' and principalId eq '{user}'")).await;
        assert_eq!(TestApp::ids_of(&body), vec![creator_id.clone()]);
        let (_, body) = app.get(&app.admin, &format!("{path}?$filter=roleDefinitionId eq '{CATALOG_READER}'")).await;
        assert_eq!(TestApp::ids_of(&body), vec![reader_id.clone()]);
        let (status, _) = app.get(&app.admin, &format!("{path}?$filter=directoryScopeId eq '/'")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        let (status, body) = app
            .post(
                &app.admin,
                &path,
                json!({ "principalId": user, "roleDefinitionId": CATALOG_CREATOR, "appScopeId": "/" }),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");

        for id in [&reader_id, &creator_id] {
            let (status, _) = app.delete(&app.admin, &format!("{path}/{id}")).await;
            assert_eq!(status, StatusCode::NO_CONTENT);
        }
        let (_, body) = app.get(&app.admin, &path).await;
        assert!(TestApp::ids_of(&body).is_empty());
    }
}

#[tokio::test]
async fn bad_em_role_assignments_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.create_user("u").await;
    let catalog = app.insert_catalog("c").await;
    let scope = format!("/AccessPackageCatalog/{catalog}");
    let path = format!("/v1.0/{EMR}/roleAssignments");
    let cases = [
        (
            json!({ "principalId": user, "roleDefinitionId": IGA_ROLE, "appScopeId": "/" }),
            StatusCode::BAD_REQUEST,
            "roleDefinitionId",
        ),
        (
            json!({ "principalId": user, "roleDefinitionId": CATALOG_CREATOR, "appScopeId": scope }),
            StatusCode::BAD_REQUEST,
            "appScopeId",
        ),
        (
            json!({ "principalId": user, "roleDefinitionId": CATALOG_OWNER, "appScopeId": "/" }),
            StatusCode::BAD_REQUEST,
            "appScopeId",
        ),
        (json!({ "principalId": user, "roleDefinitionId": CATALOG_OWNER }), StatusCode::BAD_REQUEST, "appScopeId"),
        (
            json!({ "principalId": user, "roleDefinitionId": CATALOG_OWNER, "appScopeId": "/Catalogs/x" }),
            StatusCode::BAD_REQUEST,
            "appScopeId",
        ),
        (
            json!({ "principalId": user, "roleDefinitionId": CATALOG_OWNER, "appScopeId": "/AccessPackageCatalog/" }),
            StatusCode::BAD_REQUEST,
            "appScopeId",
        ),
        (
            json!({ "principalId": user, "roleDefinitionId": CATALOG_OWNER, "appScopeId": format!("/AccessPackageCatalog/{MISSING}") }),
            StatusCode::NOT_FOUND,
            "appScopeId",
        ),
        (
            json!({ "principalId": MISSING, "roleDefinitionId": CATALOG_OWNER, "appScopeId": scope }),
            StatusCode::NOT_FOUND,
            "principalId",
        ),
    ];
    for (body, status, target) in cases {
        let (got, resp) = app.post(&app.admin, &path, body.clone()).await;
        assert_eq!(got, status, "{body}: {resp}");
        assert_eq!(resp["error"]["target"], target, "{resp}");
    }
    let (status, body) =
        app.get(&app.admin, &format!("{path}?$filter=principalId eq '{user}' or appScopeId eq '/'")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"].as_str().unwrap().contains("appScopeId"));
    let (status, _) = app.get(&app.admin, &format!("{path}/{MISSING}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn catalog_owners_manage_roles_of_their_own_catalog_only() {
    let app = TestApp::spawn().await;
    let owner = app.create_user("owner").await;
    let reader = app.create_user("reader").await;
    let stranger = app.create_user("stranger").await;
    let mine = app.insert_catalog("mine").await;
    let theirs = app.insert_catalog("theirs").await;
    app.make_catalog_owner(&owner, &mine).await;
    let token = app.user_token_default(&owner);
    let path = format!("/v1.0/{EMR}/roleAssignments");

    let (status, body) = app
        .post(&token, &path, json!({ "principalId": reader, "roleDefinitionId": CATALOG_READER, "appScopeId": format!("/AccessPackageCatalog/{mine}") }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let reader_assignment = body["id"].as_str().unwrap().to_string();
    let (status, body) = app
        .post(&token, &path, json!({ "principalId": reader, "roleDefinitionId": CATALOG_READER, "appScopeId": format!("/AccessPackageCatalog/{theirs}") }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Catalog owner"));
    let (status, _) = app
        .post(&token, &path, json!({ "principalId": reader, "roleDefinitionId": CATALOG_CREATOR, "appScopeId": "/" }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A catalog owner sees the assignments of their catalog (and their own), not others'.
    let theirs_assignment = app.make_catalog_owner(&stranger, &theirs).await;
    let (status, body) = app.get(&token, &path).await;
    assert_eq!(status, StatusCode::OK);
    let ids = TestApp::ids_of(&body);
    assert!(ids.contains(&reader_assignment) && !ids.contains(&theirs_assignment), "{body}");
    let (status, _) = app.get(&token, &format!("{path}/{theirs_assignment}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.delete(&token, &format!("{path}/{theirs_assignment}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A reader can see but not assign.
    let reader_token = app.user_token_default(&reader);
    let (status, body) = app.get(&reader_token, &format!("{path}/{reader_assignment}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app
        .post(&reader_token, &path, json!({ "principalId": stranger, "roleDefinitionId": CATALOG_READER, "appScopeId": format!("/AccessPackageCatalog/{mine}") }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.delete(&reader_token, &format!("{path}/{reader_assignment}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The owner may remove the role again; the reader's token loses access at once.
    let (status, _) = app.delete(&token, &format!("{path}/{reader_assignment}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&reader_token, &format!("{path}/{reader_assignment}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A token without an EM or role management permission is refused.
    let no_scope = app.user_token(&owner, &["User.Read.All"]);
    let (status, _) = app.get(&no_scope, &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // IGA may assign anything, including tenant roles.
    let iga = app.create_user("iga").await;
    app.make_iga(&iga).await;
    let token = app.user_token_default(&iga);
    let (status, body) = app
        .post(&token, &path, json!({ "principalId": reader, "roleDefinitionId": CATALOG_CREATOR, "appScopeId": "/" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app.get(&token, &path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(TestApp::ids_of(&body).contains(&theirs_assignment));
}

#[tokio::test]
async fn grant_catalog_owner_makes_the_creator_an_owner() {
    let app = TestApp::spawn().await;
    let user = app.create_user("creator").await;
    let catalog = app.insert_catalog("new").await;
    let store = app.state().app.store.clone();
    let now = app.state().app.now();
    for _ in 0..2 {
        let (u, c) = (user.clone(), catalog.clone());
        store.write(move |conn| grantry_core::rbac::grant_catalog_owner(conn, now, &u, &c)).await.unwrap();
    }
    let (status, body) =
        app.get(&app.admin, &format!("/v1.0/{EMR}/roleAssignments?$filter=principalId eq '{user}'")).await;
    assert_eq!(status, StatusCode::OK);
    let value = body["value"].as_array().unwrap();
    assert_eq!(value.len(), 1, "{body}");
    assert_eq!(value[0]["roleDefinitionId"], CATALOG_OWNER);
    assert_eq!(value[0]["appScopeId"], format!("/AccessPackageCatalog/{catalog}"));
}
