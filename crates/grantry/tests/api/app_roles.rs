//! Applications as catalog resources: service principals and their app roles created
//! through Graph, added to a catalog with originSystem AadApplication, their app roles
//! becoming the resource's roles; delivery writes an appRoleAssignment readable at
//! /servicePrincipals/{id}/appRoleAssignedTo and /users/{id}/appRoleAssignments, and
//! removal or expiry deletes it.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn reqs() -> String {
    format!("/v1.0/{EM}/assignmentRequests")
}

/// Creates "Payroll" with a user role (Reader) and an application-only role; returns the
/// application and its service principal.
pub(crate) async fn payroll(app: &TestApp) -> (Value, Value) {
    let (status, application) = app
        .post(
            &app.admin,
            "/v1.0/applications",
            json!({
                "displayName": "Payroll",
                "appRoles": [
                    {"displayName": "Reader", "value": "Payroll.Read", "description": "Reads payslips",
                     "allowedMemberTypes": ["User"], "isEnabled": true},
                    {"displayName": "Sync", "value": "Payroll.Sync", "allowedMemberTypes": ["Application"]}
                ]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{application}");
    let (status, sp) = app.post(&app.admin, "/v1.0/servicePrincipals", json!({"appId": application["appId"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{sp}");
    assert_eq!(sp["appId"], application["appId"]);
    (application, sp)
}

pub(crate) fn role_id(app_or_sp: &Value, name: &str) -> String {
    app_or_sp["appRoles"].as_array().unwrap().iter().find(|r| r["displayName"] == name).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn assigned_to(app: &TestApp, root: &str, sp: &str) -> Vec<Value> {
    let (status, body) = app.get(&app.admin, &format!("/{root}/servicePrincipals/{sp}/appRoleAssignedTo")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"].as_array().unwrap().clone()
}

/// A catalog holding the service principal, and a package delivering its Reader role with
/// an admin-only policy.
pub(crate) async fn package_with_app_role(app: &TestApp, sp: &Value, reader: &str) -> Fixture {
    let sp_id = sp["id"].as_str().unwrap();
    let catalog_id = app.create_catalog("Apps").await;
    let (status, body) = app
        .post(
            &app.admin,
            &em("v1.0", "resourceRequests"),
            json!({"requestType": "adminAdd", "resource": {"originId": sp_id, "originSystem": "AadApplication"}, "catalog": {"id": catalog_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, resources) = app
        .get(&app.admin, &em("v1.0", &format!("catalogs/{catalog_id}/resources?$filter=originId eq '{sp_id}'")))
        .await;
    let resource = &resources["value"][0];
    assert_eq!(resource["originSystem"], "AadApplication", "{resources}");
    assert_eq!(resource["displayName"], "Payroll", "{resources}");
    let rid = resource["id"].as_str().unwrap().to_string();
    // The app roles users may hold are the resource's roles.
    let (_, roles) = app.get(&app.admin, &em("v1.0", &format!("catalogs/{catalog_id}/resources/{rid}/roles"))).await;
    let roles = roles["value"].as_array().unwrap().clone();
    assert_eq!(roles.len(), 1, "{roles:?}");
    assert_eq!((roles[0]["originId"].as_str(), roles[0]["displayName"].as_str()), (Some(reader), Some("Reader")));

    let package_id = app.create_package(&catalog_id, "Payroll readers").await;
    let (status, body) = app
        .post(
            &app.admin,
            &em("v1.0", &format!("accessPackages/{package_id}/resourceRoleScopes")),
            json!({
                "role": {"originId": reader, "originSystem": "AadApplication", "resource": {"id": rid}},
                "scope": {"originId": sp_id, "originSystem": "AadApplication"}
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let mut f = Fixture {
        catalog_id,
        package_id,
        group_id: String::new(),
        role_id: roles[0]["id"].as_str().unwrap().to_string(),
        admin_policy_id: String::new(),
        self_policy_id: String::new(),
    };
    f.admin_policy_id = app.seed_policy(&f, grantry_domain::enums::AllowedTargetScope::NotSpecified, |_| {}).await;
    f
}

#[tokio::test]
async fn app_roles_are_delivered_as_app_role_assignments_and_removed_with_the_assignment() {
    let app = TestApp::spawn().await;
    let (application, sp) = payroll(&app).await;
    let reader = role_id(&application, "Reader");
    assert_eq!(role_id(&sp, "Reader"), reader);
    let sp_id = sp["id"].as_str().unwrap().to_string();
    let f = package_with_app_role(&app, &sp, &reader).await;

    let alice = app.create_user("alice").await;
    let (_, assignment) = app.admin_assign(&f, &alice).await;
    let held = assigned_to(&app, "v1.0", &sp_id).await;
    assert_eq!(held.len(), 1, "{held:?}");
    let a = &held[0];
    assert_eq!(a["appRoleId"], reader.as_str());
    assert_eq!(a["principalId"], alice.as_str());
    assert_eq!(a["principalType"], "User");
    assert_eq!(a["principalDisplayName"], "alice");
    assert_eq!(a["resourceId"], sp_id.as_str());
    assert_eq!(a["resourceDisplayName"], "Payroll");
    let (status, mine) = app.get(&app.admin, &format!("/beta/users/{alice}/appRoleAssignments")).await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(mine["value"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["value"][0]["id"], a["id"]);
    // Alice may read her own; another user may not read hers.
    let (status, _) =
        app.get(&app.user_token(&alice, &["User.Read"]), &format!("/v1.0/users/{alice}/appRoleAssignments")).await;
    assert_eq!(status, StatusCode::OK);

    // Removal deletes it.
    let (status, body) =
        app.post(&app.admin, &reqs(), json!({"requestType": "adminRemove", "assignment": {"id": assignment}})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    assert_eq!(assigned_to(&app, "v1.0", &sp_id).await, Vec::<Value>::new());

    // Expiry deletes it too.
    let bob = app.create_user("bob").await;
    let (status, body) = app
        .post(
            &app.admin,
            &reqs(),
            json!({"requestType": "adminAdd", "assignment": {"targetId": bob, "accessPackageId": f.package_id, "assignmentPolicyId": f.admin_policy_id},
                   "schedule": {"expiration": {"type": "afterDuration", "duration": "P1D"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    assert_eq!(assigned_to(&app, "beta", &sp_id).await.len(), 1);
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({"duration": "P2D"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain().await;
    assert_eq!(assigned_to(&app, "beta", &sp_id).await, Vec::<Value>::new());
    let (_, mine) = app.get(&app.admin, &format!("/v1.0/users/{bob}/appRoleAssignments")).await;
    assert_eq!(mine["value"], json!([]), "{mine}");
}

#[tokio::test]
async fn applications_without_user_roles_give_default_access_and_bad_input_is_refused() {
    let app = TestApp::spawn().await;
    // A service principal created directly, with no roles for users: "Default Access".
    let (status, sp) = app.post(&app.admin, "/v1.0/servicePrincipals", json!({"displayName": "Wiki"})).await;
    assert_eq!(status, StatusCode::CREATED, "{sp}");
    let sp_id = sp["id"].as_str().unwrap();
    let catalog_id = app.create_catalog("Tools").await;
    let add = json!({"requestType": "adminAdd", "resource": {"originId": sp_id, "originSystem": "aadapplication"}, "catalog": {"id": catalog_id}});
    let (status, body) = app.post(&app.admin, &em("v1.0", "resourceRequests"), add.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, roles) = app.get(&app.admin, &em("v1.0", &format!("catalogs/{catalog_id}/resourceRoles"))).await;
    assert_eq!(roles["value"][0]["displayName"], "Default Access", "{roles}");
    assert_eq!(roles["value"][0]["originId"], "00000000-0000-0000-0000-000000000000", "{roles}");
    // Twice is a conflict.
    let (status, body) = app.post(&app.admin, &em("v1.0", "resourceRequests"), add).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_error(&body, "ResourceAlreadyOnboarded");

    // Unknown service principal, bad app roles, unknown appId.
    let (status, body) = app
        .post(
            &app.admin,
            &em("v1.0", "resourceRequests"),
            json!({"requestType": "adminAdd", "resource": {"originId": "00000000-0000-0000-0000-0000000000aa", "originSystem": "AadApplication"}, "catalog": {"id": catalog_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "ResourceNotFound");
    for roles in [
        json!([{"displayName": ""}]),
        json!([{"displayName": "A", "allowedMemberTypes": ["Robot"]}]),
        json!([{"displayName": "A", "value": "x"}, {"displayName": "B", "value": "X"}]),
        json!([{"displayName": "A", "id": "not-a-guid"}]),
    ] {
        let (status, body) =
            app.post(&app.admin, "/v1.0/applications", json!({"displayName": "Bad", "appRoles": roles})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{roles}: {body}");
        assert_error(&body, "InvalidAppRole");
    }
    let (status, body) =
        app.post(&app.admin, "/v1.0/servicePrincipals", json!({"appId": "00000000-0000-0000-0000-0000000000bb"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Creating applications needs an application permission.
    let reader_token = app.app_token(&["EntitlementManagement.ReadWrite.All"]);
    let (status, _) = app.post(&reader_token, "/v1.0/applications", json!({"displayName": "Nope"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A role an access package delivers cannot be taken away from the application.
    let (application, sp) = payroll(&app).await;
    let reader = role_id(&application, "Reader");
    package_with_app_role(&app, &sp, &reader).await;
    let app_id = application["id"].as_str().unwrap();
    let (status, body) = app.patch(&app.admin, &format!("/v1.0/applications/{app_id}"), json!({"appRoles": []})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "AppRoleInUse");
    // Adding a role is fine.
    let mut roles = application["appRoles"].as_array().unwrap().clone();
    roles.push(json!({"displayName": "Writer", "value": "Payroll.Write", "allowedMemberTypes": ["User"]}));
    let (status, body) =
        app.patch(&app.admin, &format!("/v1.0/applications/{app_id}"), json!({"appRoles": roles})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, changed) = app.get(&app.admin, &format!("/v1.0/applications/{app_id}")).await;
    assert_eq!(changed["appRoles"].as_array().unwrap().len(), 3, "{changed}");
}

/// The (displayName, originId) of the resource's roles, sorted.
async fn roles_of(app: &TestApp, catalog: &str, rid: &str) -> Vec<(String, String)> {
    let (status, body) = app.get(&app.admin, &em("v1.0", &format!("catalogs/{catalog}/resources/{rid}/roles"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut names: Vec<(String, String)> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["displayName"].as_str().unwrap().to_string(), r["originId"].as_str().unwrap().to_string()))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn catalog_roles_follow_the_app_roles_and_deleting_the_application_leaves_no_assignments() {
    let app = TestApp::spawn().await;
    let (application, sp) = payroll(&app).await;
    let reader = role_id(&application, "Reader");
    let sp_id = sp["id"].as_str().unwrap().to_string();
    let f = package_with_app_role(&app, &sp, &reader).await;
    let (_, resources) = app.get(&app.admin, &em("v1.0", &format!("catalogs/{}/resources", f.catalog_id))).await;
    let rid = resources["value"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(roles_of(&app, &f.catalog_id, &rid).await, vec![("Reader".to_string(), reader.clone())]);

    // The application's roles change after it joined the catalog: renamed, one added.
    let approver = "6c1f3b9e-2d4a-4f8e-9b7c-1a2b3c4d5e6f";
    let mut roles = application["appRoles"].as_array().unwrap().clone();
    for r in roles.iter_mut() {
        if r["id"] == reader.as_str() {
            r["displayName"] = json!("Payslip reader");
        }
    }
    roles.push(json!({"id": approver, "displayName": "Approver", "value": "Payroll.Approve", "allowedMemberTypes": ["User"], "isEnabled": true}));
    let app_id = application["id"].as_str().unwrap();
    let (status, body) =
        app.patch(&app.admin, &format!("/v1.0/applications/{app_id}"), json!({"appRoles": roles})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        roles_of(&app, &f.catalog_id, &rid).await,
        vec![("Approver".to_string(), approver.to_string()), ("Payslip reader".to_string(), reader.clone())]
    );
    // Dropping the new role removes it from the catalog too (no package delivers it).
    roles.retain(|r| r["id"] != approver);
    let (status, body) =
        app.patch(&app.admin, &format!("/v1.0/applications/{app_id}"), json!({"appRoles": roles})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(roles_of(&app, &f.catalog_id, &rid).await, vec![("Payslip reader".to_string(), reader.clone())]);

    // Deleting the service principal (the application with it) leaves no assignments.
    let alice = app.create_user("alice").await;
    app.admin_assign(&f, &alice).await;
    assert_eq!(assigned_to(&app, "v1.0", &sp_id).await.len(), 1);
    let (status, body) = app
        .delete(&app.user_token(&alice, &["Application.ReadWrite.All"]), &format!("/v1.0/servicePrincipals/{sp_id}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only a Global Administrator may: {body}");
    let (status, body) = app.delete(&app.admin, &format!("/v1.0/servicePrincipals/{sp_id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = app.get(&app.admin, &format!("/v1.0/servicePrincipals/{sp_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get(&app.admin, &format!("/v1.0/applications/{app_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, mine) = app.get(&app.admin, &format!("/v1.0/users/{alice}/appRoleAssignments")).await;
    assert_eq!(mine["value"], json!([]), "{mine}");
    let (status, _) = app.delete(&app.admin, &format!("/v1.0/applications/{app_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
