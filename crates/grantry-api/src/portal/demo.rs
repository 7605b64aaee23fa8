//! The demo directory a development server offers to create when its directory is empty:
//! made through the Graph API in-process, with an application token, exactly as the
//! README's walkthrough makes it with curl.

use crate::auth::{MintRequest, claims_for};
use crate::state::AppState;
use axum::body::Body;
use axum::http::{Method, Request};
use grantry_core::PrincipalKind;
use grantry_domain::{Error, Result};
use serde_json::{Value, json};
use tower::ServiceExt;

const EM: &str = "/v1.0/identityGovernance/entitlementManagement";
/// Identity Governance Administrator.
const IGA: &str = "45d8d3c5-c802-45c6-b32a-1d70b5e1e86e";

struct Api {
    router: axum::Router,
    token: String,
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Value) -> Result<Value> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .map_err(|e| Error::internal(format!("demo request: {e}")))?;
        let response =
            self.router.clone().oneshot(request).await.map_err(|e| Error::internal(format!("demo request: {e}")))?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .map_err(|e| Error::internal(format!("demo response: {e}")))?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(Error::internal(format!("demo: {path} answered {status}: {value}")));
        }
        Ok(value)
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call(Method::POST, path, body).await
    }

    async fn id(&self, path: &str, body: Value) -> Result<String> {
        let v = self.post(path, body).await?;
        v["id"].as_str().map(str::to_string).ok_or_else(|| Error::internal(format!("demo: {path} returned no id")))
    }
}

/// Creates the demo: Irene (Identity Governance Administrator), Alex (requests), Megan
/// (approves), the group "Sales reports" in catalog "Sales", and the access package "Sales
/// reports" whose policy lets every member ask, with two questions, a justification and
/// Megan's approval, for 30 days.
pub async fn create(state: &AppState) -> Result<()> {
    let now = crate::auth::wall_now();
    let id = grantry_domain::ids::new_id();
    let claims = claims_for(
        &state.keys,
        MintRequest {
            kind: PrincipalKind::App,
            object_id: id.clone(),
            app_id: id,
            display_name: Some("grantry-portal-demo".into()),
            upn: None,
            permissions: vec![
                "EntitlementManagement.ReadWrite.All".into(),
                "User.ReadWrite.All".into(),
                "Group.ReadWrite.All".into(),
                "RoleManagement.ReadWrite.Directory".into(),
            ],
            wids: Vec::new(),
            issued_at: now,
            lifetime_secs: 300,
        },
    );
    let api = Api { router: crate::routes::router(state.clone()), token: state.keys.mint(&claims)? };
    let user = |name: &str, upn: &str, title: &str| json!({ "displayName": name, "userPrincipalName": upn, "mail": upn, "jobTitle": title });
    let irene = api.id("/v1.0/users", user("Irene Admin", "irene@contoso.com", "Identity governance")).await?;
    let _alex = api.id("/v1.0/users", user("Alex Wilber", "alex@contoso.com", "Sales representative")).await?;
    let megan = api.id("/v1.0/users", user("Megan Bowen", "megan@contoso.com", "Sales manager")).await?;
    api.post(
        "/v1.0/roleManagement/directory/roleAssignments",
        json!({ "principalId": irene, "roleDefinitionId": IGA, "directoryScopeId": "/" }),
    )
    .await?;
    let group = api
        .id(
            "/v1.0/groups",
            json!({ "displayName": "Sales reports", "mailNickname": "sales-reports", "securityEnabled": true, "mailEnabled": false }),
        )
        .await?;
    let catalog = api
        .id(
            &format!("{EM}/catalogs"),
            json!({ "displayName": "Sales", "description": "Sales team resources", "state": "published" }),
        )
        .await?;
    api.post(
        &format!("{EM}/resourceRequests"),
        json!({ "requestType": "adminAdd", "resource": { "originId": group, "originSystem": "AadGroup" }, "catalog": { "id": catalog } }),
    )
    .await?;
    let resources = api.call(Method::GET, &format!("{EM}/catalogs/{catalog}/resources"), Value::Null).await?;
    let resource = resources["value"][0]["id"]
        .as_str()
        .ok_or_else(|| Error::internal("demo: the group is not a resource of the catalog"))?
        .to_string();
    let package = api
        .id(
            &format!("{EM}/accessPackages"),
            json!({ "displayName": "Sales reports", "description": "Read the monthly sales reports", "catalog": { "id": catalog } }),
        )
        .await?;
    api.post(
        &format!("{EM}/accessPackages/{package}/resourceRoleScopes"),
        json!({
            "role": { "originId": format!("Member_{group}"), "originSystem": "AadGroup", "resource": { "id": resource } },
            "scope": { "originId": group, "originSystem": "AadGroup" }
        }),
    )
    .await?;
    api.post(
        &format!("{EM}/assignmentPolicies"),
        json!({
            "displayName": "Members ask, Megan approves, 30 days",
            "description": "Any member may ask; Megan Bowen approves.",
            "allowedTargetScope": "allMemberUsers",
            "expiration": { "type": "afterDuration", "duration": "P30D" },
            "requestorSettings": { "enableTargetsToSelfAddAccess": true, "enableTargetsToSelfRemoveAccess": true, "enableTargetsToSelfUpdateAccess": true },
            "requestApprovalSettings": {
                "isApprovalRequiredForAdd": true,
                "isApprovalRequiredForUpdate": true,
                "isRequestorJustificationRequired": true,
                "stages": [{
                    "durationBeforeAutomaticDenial": "P7D",
                    "isApproverJustificationRequired": false,
                    "isEscalationEnabled": false,
                    "primaryApprovers": [{ "@odata.type": "#microsoft.graph.singleUser", "userId": megan }]
                }]
            },
            "questions": [
                {
                    "@odata.type": "#microsoft.graph.accessPackageMultipleChoiceQuestion",
                    "sequence": 1, "isRequired": true, "isAnswerEditable": true,
                    "text": "Which region do you work in?",
                    "isMultipleSelectionAllowed": false,
                    "choices": [
                        { "actualValue": "emea", "text": "Europe, Middle East and Africa" },
                        { "actualValue": "amer", "text": "Americas" },
                        { "actualValue": "apac", "text": "Asia and Pacific" }
                    ]
                },
                {
                    "@odata.type": "#microsoft.graph.accessPackageTextInputQuestion",
                    "sequence": 2, "isRequired": true, "isAnswerEditable": true,
                    "text": "Your cost center (four digits)",
                    "isSingleLineQuestion": true,
                    "regexPattern": "[0-9]{4}"
                }
            ],
            "accessPackage": { "id": package }
        }),
    )
    .await?;
    tracing::info!("portal: created the demo directory (Irene, Alex, Megan and the package Sales reports)");
    Ok(())
}
