//! Access packages, their resource role scopes and incompatibilities.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

/// The foundation's "done when" flow: catalog → group resource → package → Member role,
/// read back under both roots.
#[tokio::test]
async fn catalog_resource_package_role_scope_flow_in_both_dialects() {
    let app = TestApp::spawn().await;
    let catalog = app.create_catalog("Marketing").await;
    let group = app.insert_group("Marketing team").await;
    let resource = app.add_group_resource(&catalog, &group).await;
    let package = app.create_package(&catalog, "Marketing campaign").await;
    let rs = app.add_member_role_scope(&package, &resource, &group).await;
    assert_eq!(rs["role"]["originId"], format!("Member_{group}"));
    assert_eq!(rs["scope"]["originId"], group.as_str());
    let expected_id = format!("{}_{}", rs["role"]["id"].as_str().unwrap(), rs["scope"]["id"].as_str().unwrap());
    assert_eq!(rs["id"], expected_id.as_str());

    let (status, v1) = app
        .get(
            &app.admin,
            &em("v1.0", &format!("accessPackages/{package}?$expand=resourceRoleScopes($expand=role,scope)")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v1}");
    assert!(v1.get("catalogId").is_none());
    let scopes = v1["resourceRoleScopes"].as_array().unwrap();
    assert_eq!(scopes.len(), 1);
    assert_eq!(scopes[0]["id"], expected_id.as_str());
    assert_eq!(scopes[0]["role"]["displayName"], "Member");
    assert_eq!(scopes[0]["scope"]["isRootScope"], true);

    let (status, beta) = app
        .get(
            &app.admin,
            &em(
                "beta",
                &format!(
                    "accessPackages('{package}')?$expand=accessPackageResourceRoleScopes($expand=accessPackageResourceRole,accessPackageResourceScope)"
                ),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{beta}");
    assert_eq!(beta["catalogId"], catalog.as_str());
    let scopes = beta["accessPackageResourceRoleScopes"].as_array().unwrap();
    assert_eq!(scopes[0]["accessPackageResourceRole"]["originId"], format!("Member_{group}"));
    assert_eq!(scopes[0]["accessPackageResourceScope"]["originSystem"], "AadGroup");
    assert!(scopes[0].get("role").is_none());

    // Without nested $expand, role scopes carry no role or scope.
    let (_, plain) =
        app.get(&app.admin, &em("v1.0", &format!("accessPackages/{package}?$expand=resourceRoleScopes"))).await;
    assert!(plain["resourceRoleScopes"][0].get("role").is_none());
    // The collection itself, under both roots, and the tenant-level list.
    let (_, list) = app
        .get(
            &app.admin,
            &em(
                "beta",
                &format!("accessPackages/{package}/accessPackageResourceRoleScopes?$expand=accessPackageResourceRole"),
            ),
        )
        .await;
    assert_eq!(list["value"][0]["accessPackageResourceRole"]["displayName"], "Member");
    let (_, all) = app.get(&app.admin, &em("v1.0", "resourceRoleScopes?$expand=role,scope")).await;
    assert_eq!(all["value"].as_array().unwrap().len(), 1);
    // Catalog expansion and the catalog's packages.
    let (_, with_catalog) =
        app.get(&app.admin, &em("v1.0", &format!("accessPackages/{package}?$expand=catalog"))).await;
    assert_eq!(with_catalog["catalog"]["displayName"], "Marketing");
    let (_, with_catalog) =
        app.get(&app.admin, &em("beta", &format!("accessPackages/{package}?$expand=accessPackageCatalog"))).await;
    assert_eq!(with_catalog["accessPackageCatalog"]["catalogType"], "UserManaged");
    let (_, nav) = app.get(&app.admin, &em("v1.0", &format!("accessPackages/{package}/catalog"))).await;
    assert_eq!(nav["id"], catalog.as_str());
    let (_, in_catalog) = app.get(&app.admin, &em("v1.0", &format!("catalogs/{catalog}/accessPackages"))).await;
    assert_eq!(in_catalog["value"][0]["id"], package.as_str());
    let (_, cats) = app.get(&app.admin, &em("v1.0", &format!("catalogs/{catalog}?$expand=accessPackages"))).await;
    assert_eq!(cats["accessPackages"][0]["id"], package.as_str());
}

#[tokio::test]
async fn package_lifecycle_filters_and_refusals() {
    let app = TestApp::spawn().await;
    let catalog = app.create_catalog("c").await;
    let other_catalog = app.create_catalog("d").await;
    let (status, beta) = app
        .post(
            &app.admin,
            &em("beta", "accessPackages"),
            json!({ "catalogId": catalog, "displayName": "Sales reps", "description": "outside", "uniqueName": "sales-reps" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{beta}");
    for key in ["catalogId", "createdBy", "modifiedBy", "isRoleScopesVisible", "uniqueName", "isHidden"] {
        assert!(beta.get(key).is_some(), "beta package lacks {key}");
    }
    let id = beta["id"].as_str().unwrap().to_string();
    app.create_package(&other_catalog, "Other thing").await;

    let (_, list) =
        app.get(&app.admin, &em("v1.0", "accessPackages?$filter=contains(tolower(displayName),'sales')")).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let (_, list) = app.get(&app.admin, &em("v1.0", "accessPackages?$filter=displayName eq 'Other thing'")).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let (_, list) = app.get(&app.admin, &em("beta", &format!("accessPackages?$filter=catalogId eq '{catalog}'"))).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let (_, list) =
        app.get(&app.admin, &em("v1.0", &format!("accessPackages?$filter=catalog/id eq '{other_catalog}'"))).await;
    assert_eq!(list["value"][0]["displayName"], "Other thing");
    let (status, body) = app.get(&app.admin, &em("v1.0", "accessPackages?$expand=assignmentPolicies")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["value"][0]["assignmentPolicies"].is_array());
    let (status, body) = app.get(&app.admin, &em("v1.0", "accessPackages?$expand=bogus")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["target"], "$expand");
    let (status, _) = app.get(&app.admin, &em("v1.0", "accessPackages?$filter=displayName eq")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _) = app
        .patch(
            &app.admin,
            &em("v1.0", &format!("accessPackages/{id}")),
            json!({ "displayName": "Renamed", "isHidden": true }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, got) = app.get(&app.admin, &em("v1.0", &format!("accessPackages/{id}"))).await;
    assert_eq!((got["displayName"].as_str(), got["isHidden"].as_bool()), (Some("Renamed"), Some(true)));

    // Bad bodies name the property.
    let (status, body) =
        app.post(&app.admin, &em("v1.0", "accessPackages"), json!({ "catalog": { "id": catalog } })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["target"], "displayName");
    let (status, body) = app.post(&app.admin, &em("v1.0", "accessPackages"), json!({ "displayName": "x" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["target"], "catalog");
    let missing = grantry_domain::ids::new_id();
    let (status, body) =
        app.post(&app.admin, &em("beta", "accessPackages"), json!({ "displayName": "x", "catalogId": missing })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "CatalogNotFound");
    assert_eq!(body["error"]["target"], "catalogId");
    let (status, body) = app
        .post(&app.admin, &em("v1.0", "accessPackages"), json!({ "displayName": 5, "catalog": { "id": catalog } }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["target"], "displayName");

    // Unknown ids are 404 in the envelope.
    for path in [
        format!("accessPackages/{missing}"),
        format!("accessPackages/{missing}/resourceRoleScopes"),
        format!("accessPackages/{missing}/incompatibleGroups"),
        format!("catalogs/{missing}/resources"),
        format!("resourceRequests/{missing}"),
    ] {
        let (status, body) = app.get(&app.admin, &em("v1.0", &path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_error(&body, "ResourceNotFound");
    }
    let (status, _) = app.delete(&app.admin, &em("v1.0", &format!("accessPackages/{missing}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Delete is refused while an assignment is active.
    app.insert_active_assignment(&id, &catalog).await;
    let (status, body) = app.delete(&app.admin, &em("v1.0", &format!("accessPackages/{id}"))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&body, "AccessPackageHasAssignments");
}

#[tokio::test]
async fn package_permissions_follow_catalog_roles() {
    let app = TestApp::spawn().await;
    let a = app.create_catalog("A").await;
    let b = app.create_catalog("B").await;
    let pkg_b = app.create_package(&b, "in B").await;
    let reader = app.create_user("reader").await;
    let manager = app.create_user("manager").await;
    let nobody = app.create_user("nobody").await;
    app.grant_catalog_role(&reader, CATALOG_READER, &a).await;
    app.grant_catalog_role(&manager, ACCESS_PACKAGE_MANAGER, &a).await;
    let (reader_t, manager_t, nobody_t) =
        (app.user_token_default(&reader), app.user_token_default(&manager), app.user_token_default(&nobody));

    let create = |catalog: &str| json!({ "displayName": "p", "catalog": { "id": catalog } });
    let (status, body) = app.post(&reader_t, &em("v1.0", "accessPackages"), create(&a)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_error(&body, "accessDenied");
    let (status, body) = app.post(&manager_t, &em("v1.0", "accessPackages"), create(&b)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, created) = app.post(&manager_t, &em("v1.0", "accessPackages"), create(&a)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let pkg_a = created["id"].as_str().unwrap();

    let (status, _) = app.get(&reader_t, &em("v1.0", &format!("accessPackages/{pkg_a}"))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get(&reader_t, &em("v1.0", &format!("accessPackages/{pkg_b}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get(&nobody_t, &em("v1.0", &format!("accessPackages/{pkg_a}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, list) = app.get(&reader_t, &em("v1.0", "accessPackages")).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let (_, list) = app.get(&nobody_t, &em("v1.0", "accessPackages")).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 0);
    let (status, _) =
        app.patch(&reader_t, &em("v1.0", &format!("accessPackages/{pkg_a}")), json!({ "isHidden": true })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) =
        app.patch(&manager_t, &em("v1.0", &format!("accessPackages/{pkg_a}")), json!({ "isHidden": true })).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Moving needs the right in both catalogs.
    let (status, _) = app
        .post(&manager_t, &em("beta", &format!("accessPackages/{pkg_a}/moveToCatalog")), json!({ "catalogId": b }))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .post(&app.admin, &em("beta", &format!("accessPackages/{pkg_a}/moveToCatalog")), json!({ "catalogId": b }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, moved) = app.get(&app.admin, &em("beta", &format!("accessPackages/{pkg_a}"))).await;
    assert_eq!(moved["catalogId"], b.as_str());
    let (status, _) = app.delete(&manager_t, &em("v1.0", &format!("accessPackages/{pkg_a}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.delete(&app.admin, &em("v1.0", &format!("accessPackages/{pkg_a}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn role_scope_rules() {
    let app = TestApp::spawn().await;
    let catalog = app.create_catalog("c").await;
    let elsewhere = app.create_catalog("elsewhere").await;
    let group = app.insert_group("g").await;
    let resource = app.add_group_resource(&catalog, &group).await;
    let foreign = app.add_group_resource(&elsewhere, &group).await;
    let package = app.create_package(&catalog, "p").await;
    let second = app.create_package(&catalog, "p2").await;
    let path = em("beta", &format!("accessPackages/{package}/accessPackageResourceRoleScopes"));

    // Beta body; the Owner role this time.
    let body = json!({
        "accessPackageResourceRole": { "originId": format!("Owner_{group}"), "originSystem": "AadGroup", "accessPackageResource": { "id": resource } },
        "accessPackageResourceScope": { "originId": group, "originSystem": "AadGroup" }
    });
    let (status, rs) = app.post(&app.admin, &path, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{rs}");
    assert_eq!(rs["accessPackageResourceRole"]["displayName"], "Owner");
    assert!(rs.get("createdBy").is_some());
    let (status, dup) = app.post(&app.admin, &path, body.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&dup, "RoleScopeAlreadyExists");
    // The same role and scope in another package has the same id.
    let (status, rs2) = app
        .post(&app.admin, &em("beta", &format!("accessPackages/{second}/accessPackageResourceRoleScopes")), body)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rs2}");
    assert_eq!(rs2["id"], rs["id"]);

    // A resource of another catalog.
    let (status, body) = app
        .post(
            &app.admin,
            &em("v1.0", &format!("accessPackages/{package}/resourceRoleScopes")),
            json!({ "role": { "originId": format!("Member_{group}"), "originSystem": "AadGroup", "resource": { "id": foreign } }, "scope": { "originId": group } }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "ResourceNotInCatalog");
    // Unknown role, missing role.
    let (status, body) = app
        .post(
            &app.admin,
            &em("v1.0", &format!("accessPackages/{package}/resourceRoleScopes")),
            json!({ "role": { "originId": "Admin_x", "originSystem": "AadGroup", "resource": { "id": resource } }, "scope": { "originId": group } }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["target"], "role.originId");
    let (status, body) = app
        .post(&app.admin, &em("v1.0", &format!("accessPackages/{package}/resourceRoleScopes")), json!({ "scope": {} }))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["target"], "role");
    // By role id, without a scope: the root scope.
    let (_, roles) = app.get(&app.admin, &em("v1.0", &format!("catalogs/{catalog}/resources/{resource}/roles"))).await;
    let member =
        roles["value"].as_array().unwrap().iter().find(|r| r["displayName"] == "Member").unwrap()["id"].clone();
    let (status, rs3) = app
        .post(
            &app.admin,
            &em("v1.0", &format!("accessPackages/{package}/resourceRoleScopes")),
            json!({ "role": { "id": member } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rs3}");
    assert_eq!(rs3["scope"]["isRootScope"], true);

    let (_, list) = app.get(&app.admin, &em("v1.0", &format!("accessPackages/{package}/resourceRoleScopes"))).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 2);
    let rsid = rs3["id"].as_str().unwrap();
    let (status, _) =
        app.delete(&app.admin, &em("v1.0", &format!("accessPackages/{package}/resourceRoleScopes/{rsid}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) =
        app.delete(&app.admin, &em("v1.0", &format!("accessPackages/{package}/resourceRoleScopes/{rsid}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "ResourceNotFound");

    // A catalog reader cannot change role scopes.
    let reader = app.create_user("reader").await;
    app.grant_catalog_role(&reader, CATALOG_READER, &catalog).await;
    let (status, _) = app
        .post(
            &app.user_token_default(&reader),
            &em("v1.0", &format!("accessPackages/{package}/resourceRoleScopes")),
            json!({ "role": { "id": member } }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn incompatibilities() {
    let app = TestApp::spawn().await;
    let catalog = app.create_catalog("c").await;
    let a = app.create_package(&catalog, "a").await;
    let b = app.create_package(&catalog, "b").await;
    let group = app.insert_group("g").await;
    let refs = em("v1.0", &format!("accessPackages/{a}/incompatibleAccessPackages/$ref"));

    let self_ref = json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/{EM}/accessPackages/{a}") });
    let (status, body) = app.post(&app.admin, &refs, self_ref).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["target"], "@odata.id");
    let missing = grantry_domain::ids::new_id();
    let (status, body) = app
        .post(
            &app.admin,
            &refs,
            json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/{EM}/accessPackages/{missing}") }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "ResourceNotFound");
    let (status, _) = app.post(&app.admin, &refs, json!({ "@odata.id": "not a url" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .post(
            &app.admin,
            &refs,
            json!({ "@odata.id": format!("https://graph.microsoft.com/beta/{EM}/accessPackages('{b}')") }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (_, list) = app.get(&app.admin, &em("beta", &format!("accessPackages/{a}/incompatibleAccessPackages"))).await;
    assert_eq!(list["value"][0]["id"], b.as_str());
    assert_eq!(list["value"][0]["catalogId"], catalog.as_str());
    let (_, ids) = app.get(&app.admin, &refs).await;
    assert!(ids["value"][0]["@odata.id"].as_str().unwrap().ends_with(&format!("/accessPackages/{b}")));
    let (_, reverse) =
        app.get(&app.admin, &em("v1.0", &format!("accessPackages/{b}/accessPackagesIncompatibleWith"))).await;
    assert_eq!(reverse["value"][0]["id"], a.as_str());
    let (_, expanded) = app
        .get(
            &app.admin,
            &em("v1.0", &format!("accessPackages/{a}?$expand=incompatibleAccessPackages,incompatibleGroups")),
        )
        .await;
    assert_eq!(expanded["incompatibleAccessPackages"][0]["id"], b.as_str());
    assert_eq!(expanded["incompatibleGroups"].as_array().unwrap().len(), 0);

    let grefs = em("v1.0", &format!("accessPackages/{a}/incompatibleGroups/$ref"));
    let (status, _) = app
        .post(&app.admin, &grefs, json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/groups/{group}") }))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .post(&app.admin, &grefs, json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/groups/{missing}") }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, groups) = app.get(&app.admin, &em("v1.0", &format!("accessPackages/{a}/incompatibleGroups"))).await;
    assert_eq!(groups["value"][0]["id"], group.as_str());

    // Reader may read, not change.
    let reader = app.create_user("reader").await;
    app.grant_catalog_role(&reader, CATALOG_READER, &catalog).await;
    let token = app.user_token_default(&reader);
    let (status, _) = app.get(&token, &em("v1.0", &format!("accessPackages/{a}/incompatibleGroups"))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        app.delete(&token, &em("v1.0", &format!("accessPackages/{a}/incompatibleGroups/{group}/$ref"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) =
        app.delete(&app.admin, &em("v1.0", &format!("accessPackages/{a}/incompatibleGroups/{group}/$ref"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) =
        app.delete(&app.admin, &em("v1.0", &format!("accessPackages/{a}/incompatibleAccessPackages/{b}/$ref"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) =
        app.delete(&app.admin, &em("v1.0", &format!("accessPackages/{a}/incompatibleAccessPackages/{b}/$ref"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "ResourceNotFound");
    // Deleting a package removes the links that point at it.
    app.post(
        &app.admin,
        &refs,
        json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/{EM}/accessPackages/{b}") }),
    )
    .await;
    app.delete(&app.admin, &em("v1.0", &format!("accessPackages/{b}"))).await;
    let (_, list) = app.get(&app.admin, &em("v1.0", &format!("accessPackages/{a}/incompatibleAccessPackages"))).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn packages_expand_their_assignment_policies_in_both_dialects() {
    let app = TestApp::spawn().await;
    let catalog = app.create_catalog("Expansions").await;
    let package = app.create_package(&catalog, "With policies").await;
    let (status, body) = app
        .post(
            &app.admin,
            &em("v1.0", "assignmentPolicies"),
            serde_json::json!({
                "displayName": "Direct", "allowedTargetScope": "notSpecified",
                "expiration": { "type": "noExpiration" },
                "accessPackage": { "id": package }
            }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let (status, body) =
        app.get(&app.admin, &em("v1.0", &format!("accessPackages/{package}?$expand=assignmentPolicies"))).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["assignmentPolicies"][0]["displayName"], "Direct");
    assert_eq!(body["assignmentPolicies"][0]["allowedTargetScope"], "notSpecified");
    let (status, body) =
        app.get(&app.admin, &em("beta", "accessPackages?$expand=accessPackageAssignmentPolicies")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let pkg = body["value"].as_array().unwrap().iter().find(|p| p["id"] == package.as_str()).unwrap();
    assert_eq!(pkg["accessPackageAssignmentPolicies"][0]["requestorSettings"]["scopeType"], "NoSubjects");
}
