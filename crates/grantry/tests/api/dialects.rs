//! Every entity Grantry renders carries only properties its root's `$metadata` defines for
//! its type: v1.0 answers are checked against the v1.0 document, beta answers against the
//! beta one. The walk reads every collection and entity Grantry serves in both roots (with
//! the expansions each offers) after a set-up that fills them, and checks each entity and
//! every nested object that names its type (`@odata.type`).

use crate::helpers::*;
use grantry_api::Dialect;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Approvals, under the entitlement management root.
const AP: &str = "identityGovernance/entitlementManagement/accessPackageAssignmentApprovals";

/// The properties of `value` (typed `type_name`, or by its own `@odata.type`) that the
/// dialect's schema does not define, with where they were found; nested objects that
/// name their type are checked as that type.
fn undefined(d: Dialect, type_name: Option<&str>, value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                undefined(d, type_name, item, &format!("{at}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            let own = map
                .get("@odata.type")
                .and_then(Value::as_str)
                .map(|t| t.trim_start_matches('#').trim_start_matches("microsoft.graph."));
            let ty = own.or(type_name);
            if let Some(ty) = ty {
                if !grantry_api::schema::known_types(d).contains(ty) {
                    out.push(format!("{at}: type '{ty}' is not in the {} schema", d.root()));
                } else {
                    for key in map.keys() {
                        if key.contains('@') {
                            continue;
                        }
                        if !grantry_api::schema::defines(d, ty, key) {
                            out.push(format!("{at}: '{ty}' has no property '{key}' in the {} schema", d.root()));
                        }
                    }
                }
            }
            for (key, nested) in map {
                if key.contains('@') {
                    continue;
                }
                // Only nested objects that name their own type are checked below the top.
                undefined(d, None, nested, &format!("{at}.{key}"), out);
            }
        }
        _ => {}
    }
}

/// Reads `path` and checks what it returns: a collection's `value` items or one entity.
async fn walk(app: &TestApp, d: Dialect, path: &str, type_name: &str, out: &mut Vec<String>) {
    let url = format!("/{}/{path}", d.root());
    let (status, body) = app.get(&app.admin, &url).await;
    if status != StatusCode::OK {
        out.push(format!("{url}: {status} {body}"));
        return;
    }
    let entities = match body.get("value") {
        Some(Value::Array(items)) if items.is_empty() => {
            out.push(format!("{url}: returned nothing to check"));
            return;
        }
        Some(Value::Array(items)) => items.clone(),
        _ => vec![body],
    };
    for (i, e) in entities.iter().enumerate() {
        let mut e = e.clone();
        if let Value::Object(m) = &mut e {
            m.retain(|k, _| !k.starts_with('@') || k == "@odata.type");
        }
        undefined(d, Some(type_name), &e, &format!("{url} #{i}"), out);
    }
}

#[tokio::test]
async fn every_rendered_entity_has_only_properties_of_its_dialects_schema() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let user = app.create_user("walker").await;
    let approver = app.create_user("approver").await;
    app.admin_assign(&f, &user).await;
    // A policy with questions and an approval stage, and a request waiting for approval.
    let (status, policy) = app
        .post(
            &app.admin,
            &em("v1.0", "assignmentPolicies"),
            json!({
                "displayName": "Walk", "description": "every part", "allowedTargetScope": "allMemberUsers",
                "accessPackage": { "id": f.package_id },
                "expiration": { "type": "afterDuration", "duration": "P30D" },
                "requestorSettings": { "enableTargetsToSelfAddAccess": true, "enableTargetsToSelfRemoveAccess": true },
                "requestApprovalSettings": { "isApprovalRequiredForAdd": true, "isApprovalRequiredForUpdate": false, "stages": [{
                    "durationBeforeAutomaticDenial": "P7D", "isApproverJustificationRequired": false, "isEscalationEnabled": false,
                    "primaryApprovers": [{ "@odata.type": "#microsoft.graph.singleUser", "userId": approver }] }] },
                "questions": [
                    { "@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "text": "Why?", "isRequired": true,
                      "isSingleLineQuestion": true, "regexPattern": "^[a-z]+$" },
                    { "@odata.type": "#microsoft.graph.accessPackageMultipleChoiceQuestion", "text": "Which?", "isRequired": false,
                      "choices": [{ "actualValue": "a", "text": "A" }], "allowsMultipleSelections": false }
                ]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{policy}");
    let policy_id = policy["id"].as_str().unwrap().to_string();
    let questions = policy["questions"].as_array().unwrap().clone();
    let requester = app.create_user("requester").await;
    let token = app.user_token_default(&requester);
    let (status, request) = app
        .post(
            &token,
            &em("v1.0", "assignmentRequests"),
            json!({ "requestType": "userAdd", "justification": "work",
                    "assignment": { "targetId": requester, "assignmentPolicyId": policy_id, "accessPackageId": f.package_id },
                    "answers": [{ "@odata.type": "#microsoft.graph.accessPackageAnswerString", "value": "reasons",
                                  "answeredQuestion": { "id": questions[0]["id"] } }] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    app.drain().await;
    let request_id = request["id"].as_str().unwrap().to_string();
    // A resource request made through the API, so both roots list one.
    let other_group = app.create_group("Walk group").await;
    app.add_group_resource(&f.catalog_id, &other_group).await;
    app.create_extension(&f.catalog_id, "accessPackageAssignmentRequestWorkflowExtension", json!({})).await;
    // Connected organizations with each identity source both schemas define.
    let tenant = grantry_domain::ids::new_id();
    let mut org_id = String::new();
    for source in [
        json!({ "@odata.type": "#microsoft.graph.domainIdentitySource", "domainName": "fabrikam.com", "displayName": "Fabrikam" }),
        json!({ "@odata.type": "#microsoft.graph.azureActiveDirectoryTenant", "tenantId": tenant, "displayName": "Woodgrove" }),
        json!({ "@odata.type": "#microsoft.graph.externalDomainFederation", "domainName": "litware.com", "issuerUri": "https://sts.litware.com/adfs", "displayName": "Litware" }),
    ] {
        let (status, o) = app
            .post(
                &app.admin,
                &em("v1.0", "connectedOrganizations"),
                json!({ "displayName": "Partner", "description": "walk", "identitySources": [source] }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{o}");
        org_id = o["id"].as_str().unwrap().to_string();
    }
    // Sponsors: a user and a group of the organization, and the user's own sponsor.
    let group = &f.group_id;
    for (list, set, id) in [("internalSponsors", "users", &approver), ("externalSponsors", "groups", group)] {
        let (status, body) = app
            .post(
                &app.admin,
                &em("v1.0", &format!("connectedOrganizations/{org_id}/{list}/$ref")),
                json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/{set}/{id}") }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/v1.0/users/{user}/sponsors/$ref"),
            json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/users/{approver}") }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    let mut found = Vec::new();
    let (c, p) = (&f.catalog_id, &f.package_id);
    let v1: Vec<(String, &str)> = vec![
        (format!("{EM}/catalogs"), "accessPackageCatalog"),
        (format!("{EM}/catalogs/{c}?$expand=accessPackages"), "accessPackageCatalog"),
        (format!("{EM}/catalogs/{c}/resources?$expand=roles,scopes"), "accessPackageResource"),
        (
            format!("{EM}/catalogs/{c}/resourceRoles?$filter=originSystem eq 'AadGroup'&$expand=resource"),
            "accessPackageResourceRole",
        ),
        (format!("{EM}/catalogs/{c}/customWorkflowExtensions"), "customCalloutExtension"),
        (format!("{EM}/accessPackages?$expand=catalog,assignmentPolicies"), "accessPackage"),
        (format!("{EM}/accessPackages/{p}?$expand=resourceRoleScopes($expand=role,scope)"), "accessPackage"),
        (format!("{EM}/accessPackages/{p}/resourceRoleScopes?$expand=role,scope"), "accessPackageResourceRoleScope"),
        (format!("{EM}/assignmentPolicies?$expand=accessPackage,catalog"), "accessPackageAssignmentPolicy"),
        (format!("{EM}/assignmentPolicies/{policy_id}"), "accessPackageAssignmentPolicy"),
        (
            format!("{EM}/assignmentRequests?$expand=requestor,accessPackage,assignment"),
            "accessPackageAssignmentRequest",
        ),
        (format!("{EM}/assignmentRequests/{request_id}"), "accessPackageAssignmentRequest"),
        (format!("{EM}/assignments?$expand=target,accessPackage,assignmentPolicy"), "accessPackageAssignment"),
        (format!("{EM}/resourceRequests?$expand=resource"), "accessPackageResourceRequest"),
        (format!("{EM}/settings"), "entitlementManagementSettings"),
        (format!("{EM}/connectedOrganizations"), "connectedOrganization"),
        (format!("{EM}/connectedOrganizations/{org_id}"), "connectedOrganization"),
        (format!("{AP}/{request_id}"), "approval"),
        (format!("{AP}/{request_id}/stages"), "approvalStage"),
        (
            format!("{EM}/connectedOrganizations/{org_id}?$expand=internalSponsors,externalSponsors"),
            "connectedOrganization",
        ),
        (format!("{EM}/connectedOrganizations/{org_id}/internalSponsors"), "directoryObject"),
        ("users".to_string(), "user"),
        (format!("users/{user}"), "user"),
        (format!("users/{user}/sponsors"), "directoryObject"),
        (format!("users/{user}/memberOf"), "directoryObject"),
        ("groups".to_string(), "group"),
        (format!("groups/{group}/members"), "directoryObject"),
        ("auditLogs/directoryAudits".to_string(), "directoryAudit"),
    ];
    for (path, ty) in &v1 {
        walk(&app, Dialect::V1, path, ty, &mut found).await;
    }
    let beta: Vec<(String, &str)> = vec![
        (format!("{EM}/accessPackageCatalogs?$expand=accessPackages"), "accessPackageCatalog"),
        (format!("{EM}/accessPackageCatalogs/{c}/accessPackageResources"), "accessPackageResource"),
        (
            format!("{EM}/accessPackageCatalogs/{c}/customAccessPackageWorkflowExtensions"),
            "customAccessPackageWorkflowExtension",
        ),
        (format!("{EM}/accessPackages?$expand=accessPackageCatalog,accessPackageAssignmentPolicies"), "accessPackage"),
        (
            format!(
                "{EM}/accessPackages/{p}?$expand=accessPackageResourceRoleScopes($expand=accessPackageResourceRole,accessPackageResourceScope)"
            ),
            "accessPackage",
        ),
        (format!("{EM}/accessPackageAssignmentPolicies"), "accessPackageAssignmentPolicy"),
        (format!("{EM}/accessPackageAssignmentPolicies/{policy_id}"), "accessPackageAssignmentPolicy"),
        (
            format!("{EM}/accessPackageAssignmentRequests?$expand=requestor,accessPackage,accessPackageAssignment"),
            "accessPackageAssignmentRequest",
        ),
        (
            format!("{EM}/accessPackageAssignments?$expand=target,accessPackage,accessPackageAssignmentPolicy"),
            "accessPackageAssignment",
        ),
        (format!("{EM}/accessPackageAssignmentResourceRoles"), "accessPackageAssignmentResourceRole"),
        (format!("{EM}/accessPackageResourceRequests"), "accessPackageResourceRequest"),
        (format!("{EM}/settings"), "entitlementManagementSettings"),
        (format!("{EM}/connectedOrganizations"), "connectedOrganization"),
        (format!("{EM}/connectedOrganizations/{org_id}"), "connectedOrganization"),
        (format!("{AP}/{request_id}"), "approval"),
        (format!("{AP}/{request_id}/steps"), "approvalStep"),
        (
            format!("{EM}/connectedOrganizations/{org_id}?$expand=internalSponsors,externalSponsors"),
            "connectedOrganization",
        ),
        (format!("{EM}/connectedOrganizations/{org_id}/internalSponsors"), "directoryObject"),
        ("users".to_string(), "user"),
        (format!("users/{user}"), "user"),
        (format!("users/{user}/sponsors"), "directoryObject"),
        (format!("users/{user}/memberOf"), "directoryObject"),
        ("groups".to_string(), "group"),
        (format!("groups/{group}/members"), "directoryObject"),
        ("auditLogs/directoryAudits".to_string(), "directoryAudit"),
    ];
    for (path, ty) in &beta {
        walk(&app, Dialect::Beta, path, ty, &mut found).await;
    }
    assert!(found.is_empty(), "{} properties outside the schema:\n{}", found.len(), found.join("\n"));
}
