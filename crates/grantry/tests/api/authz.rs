//! Authorization: the matrix of every operation × every kind of caller (mirrored in
//! `docs/authorization.md`, kept in sync by `authz_matrix_doc_is_in_sync`), and the abuse
//! cases an attacker would try first.
//!
//! Every delegated principal carries the same broad scopes (`DELEGATED_SCOPES`), so only
//! their roles (directory, entitlement management, policy approver/requestor, manager)
//! decide; applications carry exactly one permission. One server per role: every row
//! that changes something first makes a fresh object of its own as the administrator.

use crate::helpers::*;
use grantry_domain::enums::{AllowedTargetScope, ApproverInformationVisibility, ExpirationType};
use grantry_domain::model::{ApprovalStage, Expiration, SubjectSet};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Scopes of every delegated token in the matrix: everything a consented client could ask for.
const DELEGATED_SCOPES: &[&str] = &[
    "EntitlementManagement.ReadWrite.All",
    "EntitlementMgmt-SubjectAccess.ReadWrite",
    "User.ReadWrite.All",
    "Group.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory",
    "AccessReview.ReadWrite.All",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Anonymous,
    Requestor,
    OtherUser,
    Approver1,
    Approver2,
    Manager,
    CatalogOwner,
    CatalogReader,
    PackageManager,
    AssignmentManager,
    Iga,
    AppRead,
    AppWrite,
    AppNone,
}

const ROLES: [Role; 14] = [
    Role::Anonymous,
    Role::Requestor,
    Role::OtherUser,
    Role::Approver1,
    Role::Approver2,
    Role::Manager,
    Role::CatalogOwner,
    Role::CatalogReader,
    Role::PackageManager,
    Role::AssignmentManager,
    Role::Iga,
    Role::AppRead,
    Role::AppWrite,
    Role::AppNone,
];

impl Role {
    fn column(self) -> (&'static str, &'static str) {
        match self {
            Role::Anonymous => ("anon", "anonymous (no token)"),
            Role::Requestor => ("req", "requestor: the target user of the request and assignment"),
            Role::OtherUser => ("other", "another member user with no role"),
            Role::Approver1 => ("appr1", "approver of stage 1"),
            Role::Approver2 => ("appr2", "approver of stage 2"),
            Role::Manager => ("mgr", "the requestor's manager"),
            Role::CatalogOwner => ("owner", "Catalog owner of catalog A"),
            Role::CatalogReader => ("reader", "Catalog reader of catalog A"),
            Role::PackageManager => ("apm", "Access package manager of catalog A"),
            Role::AssignmentManager => ("aam", "Access package assignment manager of catalog A"),
            Role::Iga => ("iga", "Identity Governance Administrator (directory role)"),
            Role::AppRead => ("app-r", "application with EntitlementManagement.Read.All"),
            Role::AppWrite => ("app-rw", "application with EntitlementManagement.ReadWrite.All"),
            Role::AppNone => ("app-0", "application with no entitlement management permission (User.Read.All)"),
        }
    }

    fn catalog_role(self) -> Option<&'static str> {
        match self {
            Role::CatalogOwner => Some(CATALOG_OWNER),
            Role::CatalogReader => Some(CATALOG_READER),
            Role::PackageManager => Some(ACCESS_PACKAGE_MANAGER),
            Role::AssignmentManager => Some(ACCESS_PACKAGE_ASSIGNMENT_MANAGER),
            _ => None,
        }
    }
}

/// The matrix: (operation, what it sends, expected outcome per role in `ROLES` order).
///
/// Outcomes: `A` allowed (2xx; for a list, the scenario's item is in it), `H` allowed but
/// the item is hidden from the list, `B` authorized but refused by a business rule
/// (400/409), `F` 403, `N` 404 (existence not revealed), `U` 401.
///
/// Order matters within one server: the rows that end the requestor's assignment come last.
#[rustfmt::skip]
const MATRIX: &[(&str, &str, &str)] = &[
    //                                                                            anon req other appr1 appr2 mgr owner reader apm aam iga app-r app-rw app-0
    ("catalogs.list", "GET catalogs (catalog A listed?)",                         "U H H H H H A A A A A A A F"),
    ("catalogs.get", "GET catalogs/{A}",                                          "U F F F F F A A A A A A A F"),
    ("catalogs.create", "POST catalogs",                                          "U F F F F F F F F F A F A F"),
    ("catalogs.update", "PATCH catalogs/{A}",                                     "U F F F F F A F F F A F A F"),
    ("catalogs.delete", "DELETE catalogs/{empty catalog, same role}",             "U F F F F F A F F F A F A F"),
    ("resourceRequests.create", "POST resourceRequests (adminAdd own group to A)", "U F F F F F A F F F A F F F"),
    ("resources.list", "GET catalogs/{A}/resources",                              "U F F F F F A A A A A A A F"),
    ("packages.list", "GET accessPackages (package P listed?)",                   "U H H H H H A A A A A A A F"),
    ("packages.get", "GET accessPackages/{P}",                                    "U F F F F F A A A A A A A F"),
    ("packages.create", "POST accessPackages (in A)",                             "U F F F F F A F A F A F A F"),
    ("packages.update", "PATCH accessPackages/{P}",                               "U F F F F F A F A F A F A F"),
    ("packages.delete", "DELETE accessPackages/{new package in A}",              "U F F F F F A F A F A F A F"),
    ("roleScopes.list", "GET accessPackages/{P}/resourceRoleScopes",              "U F F F F F A A A A A A A F"),
    ("roleScopes.create", "POST accessPackages/{new}/resourceRoleScopes",         "U F F F F F A F A F A F A F"),
    ("incompatible.list", "GET accessPackages/{P}/incompatibleAccessPackages",    "U F F F F F A A A A A A A F"),
    ("incompatible.add", "POST accessPackages/{new}/incompatibleAccessPackages/$ref", "U F F F F F A F A F A F A F"),
    ("incompatible.add.otherCatalog", "POST accessPackages/{new}/incompatibleAccessPackages/$ref to a package of catalog B", "U F F F F F N F N F A F A F"),
    ("incompatible.remove.otherCatalog", "DELETE accessPackages/{new}/incompatibleAccessPackages/{package of B}/$ref", "U F F F F F N F N F A F A F"),
    ("incompatible.list.otherCatalog", "GET accessPackages/{new}/incompatibleAccessPackages (B's package listed?)", "U F F F F F H H H H A A A F"),
    ("incompatible.expand.otherCatalog", "GET accessPackages/{new}?$expand=incompatibleAccessPackages (B's package listed?)", "U F F F F F H H H H A A A F"),
    ("incompatibleWith.list.otherCatalog", "GET accessPackages/{new}/accessPackagesIncompatibleWith (B's package listed?)", "U F F F F F H H H H A A A F"),
    ("incompatibleWith.expand.otherCatalog", "GET accessPackages/{new}?$expand=accessPackagesIncompatibleWith (B's package listed?)", "U F F F F F H H H H A A A F"),
    ("roleScopes.create.otherCatalog", "POST accessPackages/{new}/resourceRoleScopes with a role of catalog B", "U F F F F F B F B F B F B F"),
    ("packages.move.otherCatalog", "POST accessPackages/{new}/moveToCatalog to catalog B", "U F F F F F F F F F A F A F"),
    ("policies.list", "GET assignmentPolicies (self-service policy listed?)",     "U H H H H H A A A A A A A F"),
    ("policies.get", "GET assignmentPolicies/{self-service policy}",              "U F F F F F A A A A A A A F"),
    ("policies.create", "POST assignmentPolicies (on P)",                         "U F F F F F A F A F A F A F"),
    ("policies.update", "PATCH assignmentPolicies/{new}",                         "U F F F F F A F A F A F A F"),
    ("policies.delete", "DELETE assignmentPolicies/{new}",                        "U F F F F F A F A F A F A F"),
    ("requests.adminAdd", "POST assignmentRequests adminAdd (new user, P)",       "U F F F F F A F A A A F A F"),
    ("requests.userAdd.self", "POST assignmentRequests userAdd for oneself",      "U A A A A A A A A A A F F F"),
    ("requests.userAdd.onBehalf", "POST assignmentRequests userAdd for the requestor", "U A F F F A F F F F F F F F"),
    ("requests.userExtend", "POST assignmentRequests userUpdate (extend) of a new assignment of the requestor", "U A N N N N F F F F F F F F"),
    ("requests.get", "GET assignmentRequests/{R}",                                "U A N N N N A A A A A A A F"),
    ("requests.list", "GET assignmentRequests (R listed?)",                       "U A H H H H A A A A A A A F"),
    ("requests.filterByCurrentUser", "GET assignmentRequests/filterByCurrentUser(on='target') (R listed?)", "U A H H H H H H H H H F F F"),
    ("requests.cancel", "POST assignmentRequests/{pending, by requestor}/cancel", "U A N N N N A F A A A F A F"),
    ("requests.reprocess", "POST assignmentRequests/{partiallyDelivered}/reprocess", "U N N N N N A F A A A F A F"),
    ("requests.delete", "DELETE assignmentRequests/{delivered}",                  "U N N N N N A F A A A F A F"),
    ("assignments.get", "GET assignments/{requestor's}",                          "U A N N N N A A A A A A A F"),
    ("assignments.list", "GET assignments (requestor's listed?)",                 "U A H H H H A A A A A A A F"),
    ("assignments.filterByCurrentUser", "GET assignments/filterByCurrentUser(on='target') (listed?)", "U A H H H H H H H H H F F F"),
    ("assignments.reprocess", "POST assignments/{requestor's}/reprocess",         "U F N N N N A F A A A F A F"),
    ("approvals.get", "GET accessPackageAssignmentApprovals/{R}",                 "U A N A N N A N A A A A A F"),
    ("approvals.filterByCurrentUser", "GET accessPackageAssignmentApprovals/filterByCurrentUser(on='approver') (R listed?)", "U H H A H H H H H H H F F F"),
    ("approvals.decide.stage1", "PATCH accessPackageAssignmentApprovals/{new}/stages/{1}", "U F F A F F F F F F F F F F"),
    ("approvals.decide.stage2", "PATCH accessPackageAssignmentApprovals/{new}/stages/{2}", "U F F F A F F F F F F F F F"),
    ("getApplicablePolicyRequirements", "POST accessPackages/{P}/getApplicablePolicyRequirements", "U A A A A A A A A A A F F F"),
    ("settings.get", "GET settings",                                              "U A A A A A A A A A A A A F"),
    ("settings.update", "PATCH settings",                                         "U F F F F F F F F F A F A F"),
    ("subjects.get", "GET subjects(objectId='{requestor}')",                       "U F F F F F A A A A A A A F"),
    ("subjects.update", "PATCH subjects(objectId='{requestor}') subjectLifecycle", "U F F F F F A F F F A F A F"),
    ("users.list", "GET /users",                                                  "U A A A A A A A A A A F F A"),
    ("users.create", "POST /users",                                               "U F F F F F F F F F F F F F"),
    ("groups.list", "GET /groups",                                                "U A A A A A A A A A A F F F"),
    ("groups.create", "POST /groups",                                             "U F F F F F F F F F F F F F"),
    ("roleAssignments.em.list", "GET roleManagement/entitlementManagement/roleAssignments", "U A A A A A A A A A A A A F"),
    ("roleAssignments.em.create", "POST roleManagement/entitlementManagement/roleAssignments (reader on A)", "U F F F F F A F F F A F A F"),
    ("roleAssignments.directory.create", "POST roleManagement/directory/roleAssignments (IGA)", "U F F F F F F F F F F F F F"),
    ("devclock.get", "GET /_grantry/clock",                                       "U F F F F F F F F F A F A F"),
    ("devclock.advance", "POST /_grantry/clock/advance",                          "U F F F F F F F F F A F A F"),
    ("audit.list", "GET /_grantry/audit",                                         "U F F F F F F F F F A A A F"),
    ("auditLogs.directoryAudits.list", "GET auditLogs/directoryAudits",            "U F F F F F F F F F A A A F"),
    ("audit.accessAt", "GET /_grantry/accessAt?at=…",                            "U F F F F F F F F F A A A F"),
    ("requests.userRemove", "POST assignmentRequests userRemove of a new assignment of the requestor", "U A N N N N F F F F F F F F"),
    ("requests.adminRemove", "POST assignmentRequests adminRemove of a new assignment of the requestor", "U F N N N N A F A A A F A F"),
    ("reviews.definitions.list", "GET accessReviews/definitions (review D listed?)",  "U H H H H A A A A A A F F F"),
    ("reviews.definitions.get", "GET accessReviews/definitions/{D}",               "U N N N N A A A A A A F F F"),
    ("reviews.definitions.create", "POST accessReviews/definitions with an access package scope", "U B B B B B B B B B B F F F"),
    ("reviews.instances.list", "GET definitions/{D}/instances (run listed?)",      "U N N N N A A A A A A F F F"),
    ("reviews.decisions.list", "GET definitions/{D}/instances/{run}/decisions (requestor's item listed?)", "U N N N N A A A A A A F F F"),
    ("reviews.decisions.filterByCurrentUser", "GET …/decisions/filterByCurrentUser(on='reviewer') (item listed?)", "U N N N N A H H H H H F F F"),
    ("reviews.decide", "PATCH …/decisions/{requestor's item} (the manager reviews)", "U N N N N A F F F F F F F F"),
    ("reviews.sendReminder", "POST …/instances/{run}/sendReminder",                "U N N N N F A F A F A F F F"),
    ("reviews.instances.put", "PUT …/instances/{run} (reviewers sent unchanged)",   "U N N N N F A F A F A F F F"),
    ("reviews.stages.list", "GET …/instances/{run}/stages",                         "U N N N N A A A A A A F F F"),
    ("reviews.stop", "POST …/instances/{run}/stop",                                "U N N N N F A F A F A F F F"),
    ("reviews.definitions.stop", "POST accessReviews/definitions/{D}/stop",         "U N N N N F A F A F A F F F"),
];

/// What one scenario server holds.
struct Scenario {
    f: Fixture,
    /// Catalog B with its own package, policies and an assignment of an outsider.
    g: Fixture,
    requestor: String,
    other: String,
    approver1: String,
    approver2: String,
    manager: String,
    owner: String,
    reader: String,
    apm: String,
    aam: String,
    iga: String,
    resource_id: String,
    /// Two-stage approval policy on P (approver1, then approver2).
    approval_policy: String,
    /// The requestor's request on P, pending approval at stage 1.
    request: String,
    /// Self-service (no approval) package and policy.
    self_pkg: Fixture,
    /// Package whose policy lets the target's manager request on their behalf.
    obo_pkg: Fixture,
    held_assignment: String,
    /// Package with a one-stage approval policy, for the requestor's pending request to cancel.
    cancel_pkg: Fixture,
    /// Package whose role scope points at a group that no longer exists.
    broken_pkg: Fixture,
    /// An assignment in catalog B.
    outside_assignment: String,
    /// A manager review (the requestor's manager reviews) of the requestor's assignment of
    /// its own package in catalog A: the definition, its open run and the requestor's item.
    review: (String, String, String),
}

fn user_set(id: &str) -> SubjectSet {
    SubjectSet::SingleUser { user_id: Some(id.to_string()), description: None }
}

fn stage(primary: Vec<SubjectSet>) -> ApprovalStage {
    ApprovalStage {
        duration_before_automatic_denial: Some(chrono::Duration::days(14)),
        duration_before_escalation: None,
        is_approver_justification_required: false,
        is_escalation_enabled: false,
        primary_approvers: primary,
        fallback_primary_approvers: vec![],
        escalation_approvers: vec![],
        fallback_escalation_approvers: vec![],
        approver_information_visibility: ApproverInformationVisibility::Default,
        is_dynamic: false,
    }
}

fn held_policy(p: &mut grantry_domain::model::Policy) {
    p.requestor_settings.enable_targets_to_self_add_access = true;
    p.requestor_settings.enable_targets_to_self_update_access = true;
    p.requestor_settings.enable_targets_to_self_remove_access = true;
    p.requestor_settings.allow_custom_assignment_schedule = true;
    p.expiration = Expiration {
        kind: ExpirationType::AfterDuration,
        end_date_time: None,
        duration: Some(chrono::Duration::days(30)),
    };
}

fn reqs() -> String {
    em("v1.0", "assignmentRequests")
}

impl TestApp {
    /// A new access package in the fixture's catalog (no role scopes, no policies).
    async fn add_package_to(&self, f: &Fixture, name: &str) -> Fixture {
        use grantry_domain::model::AccessPackage;
        let mut g = f.clone();
        g.package_id = grantry_domain::ids::new_id();
        let now = self.now();
        let p = AccessPackage {
            id: g.package_id.clone(),
            catalog_id: f.catalog_id.clone(),
            display_name: name.into(),
            description: None,
            is_hidden: false,
            is_role_scopes_visible: false,
            unique_name: None,
            created_by: None,
            modified_by: None,
            created_date_time: now,
            modified_date_time: now,
        };
        self.seed(move |c| grantry_store::repo::insert(c, &p)).await;
        g
    }

    /// A new package of catalog A that an administrator marks incompatible with catalog B's
    /// package (`reversed`: B's package marks it); returns its id.
    async fn linked_to_other_catalog(&self, sc: &Scenario, name: &str, reversed: bool) -> String {
        let p = self.add_package_to(&sc.f, name).await.package_id;
        let (from, to) = if reversed { (&sc.g.package_id, &p) } else { (&p, &sc.g.package_id) };
        let (status, body) = self
            .post(
                &self.admin,
                &em("v1.0", &format!("accessPackages/{from}/incompatibleAccessPackages/$ref")),
                json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/{EM}/accessPackages/{to}")}),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        p
    }

    /// `user` asks for `package` through `policy` (self-service); returns the request id.
    /// A package of catalog A whose policy has a monthly manager review, the requestor
    /// assigned through it, and the review's first run open; returns (definition, run, item).
    async fn open_review(&self, f: &Fixture, requestor: &str) -> (String, String, String) {
        let pkg = self.add_package_to(f, "Reviewed").await;
        let start = self.now() + chrono::Duration::minutes(1);
        let (status, body) = self
            .post(
                &self.admin,
                &em("v1.0", "assignmentPolicies"),
                json!({
                    "displayName": "Reviewed monthly", "allowedTargetScope": "notSpecified",
                    "expiration": { "type": "noExpiration" }, "accessPackage": { "id": pkg.package_id },
                    "reviewSettings": {
                        "isEnabled": true, "isSelfReview": false, "expirationBehavior": "keepAccess",
                        "isReviewerJustificationRequired": false,
                        "schedule": {
                            "startDateTime": start.to_rfc3339(),
                            "expiration": { "type": "afterDuration", "duration": "P14D" },
                            "recurrence": { "pattern": { "type": "absoluteMonthly", "interval": 1 }, "range": { "type": "noEnd" } }
                        },
                        "primaryReviewers": [{ "@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1 }]
                    }
                }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let policy = body["id"].as_str().unwrap().to_string();
        let (status, body) = self
            .post(
                &self.admin,
                &reqs(),
                json!({"requestType": "adminAdd", "assignment": {"targetId": requestor, "assignmentPolicyId": policy, "accessPackageId": pkg.package_id}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = self.post(&self.admin, "/_grantry/clock/advance", json!({ "duration": "PT2M" })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        self.drain().await;
        let ar = "/v1.0/identityGovernance/accessReviews/definitions";
        let (_, defs) = self.get(&self.admin, ar).await;
        let def = defs["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["scope"]["query"].as_str().is_some_and(|q| q.contains(&policy)))
            .unwrap_or_else(|| panic!("no definition: {defs}"))["id"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, runs) = self.get(&self.admin, &format!("{ar}/{def}/instances")).await;
        let run = runs["value"][0]["id"].as_str().unwrap_or_else(|| panic!("no run: {runs}")).to_string();
        let (_, items) = self.get(&self.admin, &format!("{ar}/{def}/instances/{run}/decisions")).await;
        let item = items["value"][0]["id"].as_str().unwrap_or_else(|| panic!("no item: {items}")).to_string();
        (def, run, item)
    }

    async fn user_request(&self, user: &str, package: &str, policy: &str) -> String {
        let token = self.user_token(user, SUBJECT_SCOPES);
        let (status, r) = self
            .post(
                &token,
                &reqs(),
                json!({"requestType": "userAdd", "assignment": {"accessPackageId": package, "assignmentPolicyId": policy}, "justification": "needed"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
        self.drain().await;
        r["id"].as_str().unwrap().to_string()
    }

    async fn stage_id(&self, request: &str, n: usize) -> String {
        let (_, a) = self.get(&self.admin, &em("v1.0", &format!("accessPackageAssignmentApprovals/{request}"))).await;
        a["stages"][n]["id"].as_str().unwrap_or_else(|| panic!("no stage {n}: {a}")).to_string()
    }

    async fn approve_stage(&self, user: &str, request: &str, n: usize) -> (StatusCode, Value) {
        let sid = self.stage_id(request, n).await;
        let token = self.user_token(user, SUBJECT_SCOPES);
        let path = em("v1.0", &format!("accessPackageAssignmentApprovals/{request}/stages/{sid}"));
        self.patch(&token, &path, json!({"reviewResult": "Approve", "justification": "fine"})).await
    }

    /// A new package in catalog A that the requestor then holds through a 30-day
    /// self-service policy (self update and remove enabled); returns the assignment id.
    async fn fresh_held_assignment(&self, sc: &Scenario) -> String {
        let mut p = self.add_package_to(&sc.f, "Held").await;
        p.self_policy_id = self.seed_policy(&p, AllowedTargetScope::AllMemberUsers, held_policy).await;
        let r = self.user_request(&sc.requestor, &p.package_id, &p.self_policy_id).await;
        self.assignment_of_request(&r).await
    }

    async fn assignment_of_request(&self, request: &str) -> String {
        let (_, r) = self.get(&self.admin, &format!("{}/{request}?$expand=assignment", reqs())).await;
        r["assignment"]["id"].as_str().unwrap_or_else(|| panic!("no assignment: {r}")).to_string()
    }
}

async fn scenario(app: &TestApp) -> Scenario {
    let f = app.seed_package_with_group().await;
    let g = app.seed_package_with_group().await;
    let mut users = Vec::new();
    for name in ["requestor", "other", "approver1", "approver2", "manager", "owner", "reader", "apm", "aam", "iga"] {
        users.push(app.create_user(name).await);
    }
    let [requestor, other, approver1, approver2, manager, owner, reader, apm, aam, iga]: [String; 10] =
        users.try_into().unwrap();
    app.set_manager(&requestor, &manager).await;
    app.grant_catalog_role(&owner, CATALOG_OWNER, &f.catalog_id).await;
    app.grant_catalog_role(&reader, CATALOG_READER, &f.catalog_id).await;
    app.grant_catalog_role(&apm, ACCESS_PACKAGE_MANAGER, &f.catalog_id).await;
    app.grant_catalog_role(&aam, ACCESS_PACKAGE_ASSIGNMENT_MANAGER, &f.catalog_id).await;
    app.grant_directory_role(&iga, IGA_ROLE).await;
    let path = em("v1.0", &format!("catalogs/{}/resources", f.catalog_id));
    let (_, body) = app.get(&app.admin, &path).await;
    let resource_id = body["value"][0]["id"].as_str().unwrap_or_else(|| panic!("no resource: {body}")).to_string();

    let (a1, a2) = (approver1.clone(), approver2.clone());
    let approval_policy = app
        .seed_policy(&f, AllowedTargetScope::AllMemberUsers, move |p| {
            p.requestor_settings.enable_targets_to_self_add_access = true;
            p.approval.is_approval_required_for_add = true;
            p.approval.stages = vec![stage(vec![user_set(&a1)]), stage(vec![user_set(&a2)])];
        })
        .await;
    let request = app.user_request(&requestor, &f.package_id, &approval_policy).await;

    let mut self_pkg = app.add_package_to(&f, "Self service").await;
    self_pkg.self_policy_id = app
        .seed_policy(&self_pkg, AllowedTargetScope::AllMemberUsers, |p| {
            p.requestor_settings.enable_targets_to_self_add_access = true;
        })
        .await;
    let mut obo_pkg = app.add_package_to(&f, "On behalf").await;
    obo_pkg.self_policy_id = app
        .seed_policy(&obo_pkg, AllowedTargetScope::AllMemberUsers, |p| {
            p.requestor_settings.enable_targets_to_self_add_access = true;
            p.requestor_settings.enable_on_behalf_requestors_to_add_access = true;
            p.requestor_settings.on_behalf_requestors = vec![SubjectSet::TargetManager { manager_level: 1 }];
        })
        .await;
    let mut held_pkg = app.add_package_to(&f, "Held").await;
    held_pkg.self_policy_id = app.seed_policy(&held_pkg, AllowedTargetScope::AllMemberUsers, held_policy).await;
    let held = app.user_request(&requestor, &held_pkg.package_id, &held_pkg.self_policy_id).await;
    let held_assignment = app.assignment_of_request(&held).await;
    let mut cancel_pkg = app.add_package_to(&f, "Cancel").await;
    let a1 = approver1.clone();
    cancel_pkg.self_policy_id = app
        .seed_policy(&cancel_pkg, AllowedTargetScope::AllMemberUsers, move |p| {
            p.requestor_settings.enable_targets_to_self_add_access = true;
            p.approval.is_approval_required_for_add = true;
            p.approval.stages = vec![stage(vec![user_set(&a1)])];
        })
        .await;

    // A package granting a group that is then deleted: its deliveries fail partially.
    let gone = app.create_group("gone").await;
    let gone_resource = app.add_group_resource(&f.catalog_id, &gone).await;
    let mut broken_pkg = f.clone();
    broken_pkg.package_id = app.create_package(&f.catalog_id, "Broken").await;
    app.add_member_role_scope(&broken_pkg.package_id, &gone_resource, &gone).await;
    broken_pkg.admin_policy_id = app.seed_policy(&broken_pkg, AllowedTargetScope::NotSpecified, |_| {}).await;
    let gid = gone.clone();
    app.seed(move |c| c.execute("DELETE FROM groups WHERE id = ?", &[gid.into()]).map(|_| ())).await;

    let outsider = app.create_user("outsider").await;
    let (_, outside_assignment) = app.admin_assign(&g, &outsider).await;
    let review = app.open_review(&f, &requestor).await;
    Scenario {
        f,
        g,
        requestor,
        other,
        approver1,
        approver2,
        manager,
        owner,
        reader,
        apm,
        aam,
        iga,
        resource_id,
        approval_policy,
        request,
        self_pkg,
        obo_pkg,
        held_assignment,
        cancel_pkg,
        broken_pkg,
        outside_assignment,
        review,
    }
}

impl Scenario {
    fn user_of(&self, role: Role) -> Option<&str> {
        Some(match role {
            Role::Requestor => &self.requestor,
            Role::OtherUser => &self.other,
            Role::Approver1 => &self.approver1,
            Role::Approver2 => &self.approver2,
            Role::Manager => &self.manager,
            Role::CatalogOwner => &self.owner,
            Role::CatalogReader => &self.reader,
            Role::PackageManager => &self.apm,
            Role::AssignmentManager => &self.aam,
            Role::Iga => &self.iga,
            _ => return None,
        })
    }

    fn token(&self, app: &TestApp, role: Role) -> String {
        match role {
            Role::Anonymous => String::new(),
            Role::AppRead => app.app_token(&["EntitlementManagement.Read.All"]),
            Role::AppWrite => app.app_token(&["EntitlementManagement.ReadWrite.All"]),
            Role::AppNone => app.app_token(&["User.Read.All"]),
            r => app.user_token(self.user_of(r).unwrap(), DELEGATED_SCOPES),
        }
    }
}

/// Performs one operation as `role` (setting up what it needs as the administrator first);
/// returns the response and, for lists, the id that should (or should not) be in it.
async fn perform(app: &TestApp, sc: &Scenario, role: Role, op: &str) -> (StatusCode, Value, Option<String>) {
    let token = sc.token(app, role);
    let t = token.as_str();
    let me = sc.user_of(role).map(str::to_string);
    let f = &sc.f;
    let e = |rest: &str| em("v1.0", rest);
    let (status, body, item): (StatusCode, Value, Option<String>) = match op {
        "catalogs.list" => {
            let (s, b) = app.get(t, &e("catalogs")).await;
            (s, b, Some(f.catalog_id.clone()))
        }
        "catalogs.get" => with_none(app.get(t, &e(&format!("catalogs/{}", f.catalog_id))).await),
        "catalogs.create" => with_none(app.post(t, &e("catalogs"), json!({"displayName": "New"})).await),
        "catalogs.update" => {
            with_none(app.patch(t, &e(&format!("catalogs/{}", f.catalog_id)), json!({"description": "edited"})).await)
        }
        "catalogs.delete" => {
            let id = app.create_catalog("Disposable").await;
            if let (Some(r), Some(u)) = (role.catalog_role(), &me) {
                app.grant_catalog_role(u, r, &id).await;
            }
            with_none(app.delete(t, &e(&format!("catalogs/{id}"))).await)
        }
        "resourceRequests.create" => {
            let group = app.insert_group("owned").await;
            if let Some(u) = &me {
                app.insert_group_owner(&group, u).await;
            }
            with_none(
                app.post(
                    t,
                    &e("resourceRequests"),
                    json!({"requestType": "adminAdd", "resource": {"originId": group, "originSystem": "AadGroup"}, "catalog": {"id": f.catalog_id}}),
                )
                .await,
            )
        }
        "resources.list" => with_none(app.get(t, &e(&format!("catalogs/{}/resources", f.catalog_id))).await),
        "packages.list" => {
            let (s, b) = app.get(t, &e("accessPackages")).await;
            (s, b, Some(f.package_id.clone()))
        }
        "packages.get" => with_none(app.get(t, &e(&format!("accessPackages/{}", f.package_id))).await),
        "packages.create" => with_none(
            app.post(t, &e("accessPackages"), json!({"displayName": "New", "catalog": {"id": f.catalog_id}})).await,
        ),
        "packages.update" => with_none(
            app.patch(t, &e(&format!("accessPackages/{}", f.package_id)), json!({"description": "edited"})).await,
        ),
        "packages.delete" => {
            let p = app.add_package_to(f, "Disposable").await;
            with_none(app.delete(t, &e(&format!("accessPackages/{}", p.package_id))).await)
        }
        "roleScopes.list" => {
            with_none(app.get(t, &e(&format!("accessPackages/{}/resourceRoleScopes", f.package_id))).await)
        }
        "roleScopes.create" => {
            let p = app.add_package_to(f, "Scoped").await;
            with_none(
                app.post(
                    t,
                    &e(&format!("accessPackages/{}/resourceRoleScopes", p.package_id)),
                    json!({
                        "role": { "originId": format!("Member_{}", f.group_id), "originSystem": "AadGroup", "resource": { "id": sc.resource_id } },
                        "scope": { "originId": f.group_id, "originSystem": "AadGroup" }
                    }),
                )
                .await,
            )
        }
        "incompatible.list" => {
            with_none(app.get(t, &e(&format!("accessPackages/{}/incompatibleAccessPackages", f.package_id))).await)
        }
        "incompatible.add" => {
            let p = app.add_package_to(f, "Exclusive").await;
            let target = format!("https://graph.microsoft.com/v1.0/{EM}/accessPackages/{}", f.package_id);
            with_none(
                app.post(
                    t,
                    &e(&format!("accessPackages/{}/incompatibleAccessPackages/$ref", p.package_id)),
                    json!({"@odata.id": target}),
                )
                .await,
            )
        }
        "incompatible.add.otherCatalog" => {
            let p = app.add_package_to(f, "Reaching").await;
            let target = format!("https://graph.microsoft.com/v1.0/{EM}/accessPackages/{}", sc.g.package_id);
            with_none(
                app.post(
                    t,
                    &e(&format!("accessPackages/{}/incompatibleAccessPackages/$ref", p.package_id)),
                    json!({"@odata.id": target}),
                )
                .await,
            )
        }
        "incompatible.remove.otherCatalog" => {
            let p = app.linked_to_other_catalog(sc, "Unlinking", false).await;
            with_none(
                app.delete(
                    t,
                    &e(&format!("accessPackages/{}/incompatibleAccessPackages/{}/$ref", p, sc.g.package_id)),
                )
                .await,
            )
        }
        "incompatible.list.otherCatalog" => {
            let p = app.linked_to_other_catalog(sc, "Listing", false).await;
            let (s, b) = app.get(t, &e(&format!("accessPackages/{p}/incompatibleAccessPackages"))).await;
            (s, b, Some(sc.g.package_id.clone()))
        }
        "incompatible.expand.otherCatalog" => {
            let p = app.linked_to_other_catalog(sc, "Expanding", false).await;
            let (s, b) = app.get(t, &e(&format!("accessPackages/{p}?$expand=incompatibleAccessPackages"))).await;
            (s, b, Some(sc.g.package_id.clone()))
        }
        "incompatibleWith.list.otherCatalog" => {
            let p = app.linked_to_other_catalog(sc, "Reversed", true).await;
            let (s, b) = app.get(t, &e(&format!("accessPackages/{p}/accessPackagesIncompatibleWith"))).await;
            (s, b, Some(sc.g.package_id.clone()))
        }
        "incompatibleWith.expand.otherCatalog" => {
            let p = app.linked_to_other_catalog(sc, "Reversed and expanded", true).await;
            let (s, b) = app.get(t, &e(&format!("accessPackages/{p}?$expand=accessPackagesIncompatibleWith"))).await;
            (s, b, Some(sc.g.package_id.clone()))
        }
        "roleScopes.create.otherCatalog" => {
            let p = app.add_package_to(f, "Foreign role").await;
            with_none(
                app.post(
                    t,
                    &e(&format!("accessPackages/{}/resourceRoleScopes", p.package_id)),
                    json!({
                        "role": { "id": sc.g.role_id, "originSystem": "AadGroup" },
                        "scope": { "originId": sc.g.group_id, "originSystem": "AadGroup" }
                    }),
                )
                .await,
            )
        }
        "packages.move.otherCatalog" => {
            let p = app.add_package_to(f, "Moving").await;
            with_none(
                app.post(
                    t,
                    &e(&format!("accessPackages/{}/moveToCatalog", p.package_id)),
                    json!({"catalogId": sc.g.catalog_id}),
                )
                .await,
            )
        }
        "policies.list" => {
            let (s, b) = app.get(t, &e("assignmentPolicies")).await;
            (s, b, Some(f.self_policy_id.clone()))
        }
        "policies.get" => with_none(app.get(t, &e(&format!("assignmentPolicies/{}", f.self_policy_id))).await),
        "policies.create" => with_none(
            app.post(
                t,
                &e("assignmentPolicies"),
                json!({"displayName": "New", "description": "new", "allowedTargetScope": "notSpecified", "accessPackage": {"id": f.package_id}}),
            )
            .await,
        ),
        "policies.update" => {
            let id = app.seed_policy(f, AllowedTargetScope::NotSpecified, |_| {}).await;
            with_none(app.patch(t, &e(&format!("assignmentPolicies/{id}")), json!({"description": "edited"})).await)
        }
        "policies.delete" => {
            let id = app.seed_policy(f, AllowedTargetScope::NotSpecified, |_| {}).await;
            with_none(app.delete(t, &e(&format!("assignmentPolicies/{id}"))).await)
        }
        "requests.adminAdd" => {
            let target = app.create_user(&format!("t{}", &grantry_domain::ids::new_id()[24..])).await;
            with_none(
                app.post(
                    t,
                    &reqs(),
                    json!({"requestType": "adminAdd", "assignment": {"targetId": target, "assignmentPolicyId": f.admin_policy_id, "accessPackageId": f.package_id}}),
                )
                .await,
            )
        }
        "requests.userAdd.self" => with_none(
            app.post(
                t,
                &reqs(),
                json!({"requestType": "userAdd", "assignment": {"accessPackageId": sc.self_pkg.package_id, "assignmentPolicyId": sc.self_pkg.self_policy_id}}),
            )
            .await,
        ),
        "requests.userAdd.onBehalf" => with_none(
            app.post(
                t,
                &reqs(),
                json!({"requestType": "userAdd", "assignment": {"targetId": sc.requestor, "accessPackageId": sc.obo_pkg.package_id, "assignmentPolicyId": sc.obo_pkg.self_policy_id}}),
            )
            .await,
        ),
        "requests.userExtend" => {
            let held = app.fresh_held_assignment(sc).await;
            let end = (app.now() + chrono::Duration::days(20)).to_rfc3339();
            with_none(
                app.post(
                    t,
                    &reqs(),
                    json!({"requestType": "userUpdate", "assignment": {"id": held}, "schedule": {"expiration": {"type": "afterDateTime", "endDateTime": end}}}),
                )
                .await,
            )
        }
        "requests.userRemove" => {
            let held = app.fresh_held_assignment(sc).await;
            with_none(app.post(t, &reqs(), json!({"requestType": "userRemove", "assignment": {"id": held}})).await)
        }
        "requests.adminRemove" => {
            let held = app.fresh_held_assignment(sc).await;
            with_none(app.post(t, &reqs(), json!({"requestType": "adminRemove", "assignment": {"id": held}})).await)
        }
        "requests.get" => with_none(app.get(t, &format!("{}/{}", reqs(), sc.request)).await),
        "requests.list" => {
            let (s, b) = app.get(t, &reqs()).await;
            (s, b, Some(sc.request.clone()))
        }
        "requests.filterByCurrentUser" => {
            let (s, b) = app.get(t, &format!("{}/filterByCurrentUser(on='target')", reqs())).await;
            (s, b, Some(sc.request.clone()))
        }
        "requests.cancel" => {
            // One open request per target and package: cancel what an earlier row left.
            let open = app
                .read({
                    let (u, p) = (sc.requestor.clone(), sc.cancel_pkg.package_id.clone());
                    move |c| {
                        c.query_one(
                            "SELECT id FROM requests WHERE target_subject_id = ? AND access_package_id = ? AND open_kind IS NOT NULL",
                            &[u.into(), p.into()],
                        )?
                        .map(|r| r.text(0))
                        .transpose()
                    }
                })
                .await;
            let id = match open {
                Some(id) => id,
                None => app.user_request(&sc.requestor, &sc.cancel_pkg.package_id, &sc.cancel_pkg.self_policy_id).await,
            };
            with_none(app.post(t, &format!("{}/{id}/cancel", reqs()), json!({})).await)
        }
        "requests.reprocess" => {
            let target = app.create_user(&format!("t{}", &grantry_domain::ids::new_id()[24..])).await;
            let (s, r) = app
                .post(
                    &app.admin,
                    &reqs(),
                    json!({"requestType": "adminAdd", "assignment": {"targetId": target, "assignmentPolicyId": sc.broken_pkg.admin_policy_id, "accessPackageId": sc.broken_pkg.package_id}}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{r}");
            app.drain().await;
            let id = r["id"].as_str().unwrap();
            let (_, now) = app.get(&app.admin, &format!("{}/{id}", reqs())).await;
            assert_eq!(now["state"], "partiallyDelivered", "{now}");
            with_none(app.post(t, &format!("{}/{id}/reprocess", reqs()), json!({})).await)
        }
        "requests.delete" => {
            let target = app.create_user(&format!("t{}", &grantry_domain::ids::new_id()[24..])).await;
            let (id, _) = app.admin_assign(f, &target).await;
            with_none(app.delete(t, &format!("{}/{id}", reqs())).await)
        }
        "assignments.get" => with_none(app.get(t, &e(&format!("assignments/{}", sc.held_assignment))).await),
        "assignments.list" => {
            let (s, b) = app.get(t, &e("assignments")).await;
            (s, b, Some(sc.held_assignment.clone()))
        }
        "assignments.filterByCurrentUser" => {
            let (s, b) = app.get(t, &e("assignments/filterByCurrentUser(on='target')")).await;
            (s, b, Some(sc.held_assignment.clone()))
        }
        "assignments.reprocess" => {
            with_none(app.post(t, &e(&format!("assignments/{}/reprocess", sc.held_assignment)), json!({})).await)
        }
        "approvals.get" => with_none(app.get(t, &e(&format!("accessPackageAssignmentApprovals/{}", sc.request))).await),
        "approvals.filterByCurrentUser" => {
            let (s, b) = app.get(t, &e("accessPackageAssignmentApprovals/filterByCurrentUser(on='approver')")).await;
            (s, b, Some(sc.request.clone()))
        }
        "approvals.decide.stage1" | "approvals.decide.stage2" => {
            let u = app.create_user(&format!("t{}", &grantry_domain::ids::new_id()[24..])).await;
            let id = app.user_request(&u, &f.package_id, &sc.approval_policy).await;
            let n = if op.ends_with('1') { 0 } else { 1 };
            if n == 1 {
                let (s, b) = app.approve_stage(&sc.approver1, &id, 0).await;
                assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
                app.drain().await;
            }
            let sid = app.stage_id(&id, n).await;
            let path = e(&format!("accessPackageAssignmentApprovals/{id}/stages/{sid}"));
            with_none(app.patch(t, &path, json!({"reviewResult": "Approve", "justification": "fine"})).await)
        }
        "getApplicablePolicyRequirements" => with_none(
            app.post(t, &e(&format!("accessPackages/{}/getApplicablePolicyRequirements", f.package_id)), json!({}))
                .await,
        ),
        "settings.get" => with_none(app.get(t, &e("settings")).await),
        "subjects.get" => with_none(app.get(t, &e(&format!("subjects(objectId='{}')", sc.requestor))).await),
        "subjects.update" => with_none(
            app.patch(
                t,
                &e(&format!("subjects(objectId='{}')", sc.requestor)),
                json!({"subjectLifecycle": "notDefined"}),
            )
            .await,
        ),
        "settings.update" => with_none(app.patch(t, &e("settings"), json!({"externalUserLifecycleAction": "none"})).await),
        "users.list" => with_none(app.get(t, "/v1.0/users").await),
        "users.create" => {
            let n = &grantry_domain::ids::new_id()[24..];
            with_none(
                app.post(t, "/v1.0/users", json!({"displayName": n, "userPrincipalName": format!("{n}@contoso.com")}))
                    .await,
            )
        }
        "groups.list" => with_none(app.get(t, "/v1.0/groups").await),
        "groups.create" => with_none(
            app.post(
                t,
                "/v1.0/groups",
                json!({"displayName": "g", "mailNickname": "g", "mailEnabled": false, "securityEnabled": true}),
            )
            .await,
        ),
        "roleAssignments.em.list" => {
            with_none(app.get(t, "/v1.0/roleManagement/entitlementManagement/roleAssignments").await)
        }
        "roleAssignments.em.create" => {
            let u = app.create_user(&format!("t{}", &grantry_domain::ids::new_id()[24..])).await;
            with_none(
                app.post(
                    t,
                    "/v1.0/roleManagement/entitlementManagement/roleAssignments",
                    json!({"principalId": u, "roleDefinitionId": CATALOG_READER, "appScopeId": format!("/AccessPackageCatalog/{}", f.catalog_id)}),
                )
                .await,
            )
        }
        "roleAssignments.directory.create" => {
            let u = app.create_user(&format!("t{}", &grantry_domain::ids::new_id()[24..])).await;
            with_none(
                app.post(
                    t,
                    "/v1.0/roleManagement/directory/roleAssignments",
                    json!({"principalId": u, "roleDefinitionId": IGA_ROLE, "directoryScopeId": "/"}),
                )
                .await,
            )
        }
        "devclock.get" => with_none(app.get(t, "/_grantry/clock").await),
        "devclock.advance" => with_none(app.post(t, "/_grantry/clock/advance", json!({"duration": "PT1S"})).await),
        "audit.list" => with_none(app.get(t, "/_grantry/audit").await),
        "auditLogs.directoryAudits.list" => with_none(app.get(t, "/v1.0/auditLogs/directoryAudits").await),
        "audit.accessAt" => with_none(app.get(t, "/_grantry/accessAt?at=2030-01-01T00:00:00Z").await),
        op if op.starts_with("reviews.") => {
            let (def, run, item) = &sc.review;
            let ar = "/v1.0/identityGovernance/accessReviews/definitions";
            let runs = format!("{ar}/{def}/instances");
            let decisions = format!("{runs}/{run}/decisions");
            match op {
                "reviews.definitions.list" => {
                    let (s, b) = app.get(t, ar).await;
                    (s, b, Some(def.clone()))
                }
                "reviews.definitions.get" => with_none(app.get(t, &format!("{ar}/{def}")).await),
                "reviews.definitions.create" => {
                    let (_, d) = app.get(&app.admin, &format!("{ar}/{def}")).await;
                    with_none(
                        app.post(t, ar, json!({"displayName": "direct", "scope": d["scope"], "reviewers": [], "settings": d["settings"]}))
                            .await,
                    )
                }
                "reviews.instances.list" => {
                    let (s, b) = app.get(t, &runs).await;
                    (s, b, Some(run.clone()))
                }
                "reviews.decisions.list" => {
                    let (s, b) = app.get(t, &decisions).await;
                    (s, b, Some(item.clone()))
                }
                "reviews.decisions.filterByCurrentUser" => {
                    let (s, b) = app.get(t, &format!("{decisions}/filterByCurrentUser(on='reviewer')")).await;
                    (s, b, Some(item.clone()))
                }
                "reviews.decide" => {
                    with_none(app.patch(t, &format!("{decisions}/{item}"), json!({"decision": "Approve", "justification": "still needed"})).await)
                }
                "reviews.sendReminder" => with_none(app.post(t, &format!("{runs}/{run}/sendReminder"), json!({})).await),
                "reviews.stop" => with_none(app.post(t, &format!("{runs}/{run}/stop"), json!({})).await),
                "reviews.instances.put" => {
                    let (_, current) = app.get(&app.admin, &format!("{runs}/{run}")).await;
                    with_none(app.put(t, &format!("{runs}/{run}"), current).await)
                }
                "reviews.stages.list" => with_none(app.get(t, &format!("{runs}/{run}/stages")).await),
                "reviews.definitions.stop" => with_none(app.post(t, &format!("{ar}/{def}/stop"), json!({})).await),
                other => panic!("no such operation {other}"),
            }
        }
        other => panic!("no such operation {other}"),
    };
    (status, body, item)
}

fn with_none((s, b): (StatusCode, Value)) -> (StatusCode, Value, Option<String>) {
    (s, b, None)
}

/// The outcome letter of a response (see `MATRIX`).
fn classify(status: StatusCode, body: &Value, item: Option<&str>) -> char {
    if status.is_success() {
        return match item {
            Some(id) if !body.to_string().contains(id) => 'H',
            _ => 'A',
        };
    }
    assert!(!status.is_server_error(), "a server error: {status} {body}");
    assert!(body["error"]["code"].is_string(), "not the error envelope: {status} {body}");
    match status {
        StatusCode::UNAUTHORIZED => 'U',
        StatusCode::FORBIDDEN => 'F',
        StatusCode::NOT_FOUND => 'N',
        StatusCode::BAD_REQUEST | StatusCode::CONFLICT => 'B',
        _ => '?',
    }
}

fn expected(row: &str, role: Role) -> char {
    let i = ROLES.iter().position(|r| *r == role).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells.len(), ROLES.len(), "row {row:?} has {} cells", cells.len());
    cells[i].chars().next().unwrap()
}

/// Runs every row of the matrix as `role` on one server; fails listing every cell that
/// differs from the table.
async fn run_role(role: Role) {
    let app = TestApp::spawn().await;
    let sc = scenario(&app).await;
    let mut wrong = Vec::new();
    for (op, _, row) in MATRIX {
        let (status, body, item) = perform(&app, &sc, role, op).await;
        let got = classify(status, &body, item.as_deref());
        let want = expected(row, role);
        if got != want {
            wrong.push(format!("{op}: expected {want}, got {got} ({status} {})", truncate(&body)));
        }
    }
    assert!(wrong.is_empty(), "{:?} differs from the matrix in {} cells:\n{}", role, wrong.len(), wrong.join("\n"));
}

fn truncate(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 300 { format!("{}…", &s[..300]) } else { s }
}

macro_rules! matrix_tests {
    ($($name:ident => $role:expr),* $(,)?) => {
        $(#[tokio::test] async fn $name() { run_role($role).await })*
    };
}

matrix_tests! {
    matrix_anonymous => Role::Anonymous,
    matrix_requestor => Role::Requestor,
    matrix_other_user => Role::OtherUser,
    matrix_approver_stage_1 => Role::Approver1,
    matrix_approver_stage_2 => Role::Approver2,
    matrix_manager => Role::Manager,
    matrix_catalog_owner => Role::CatalogOwner,
    matrix_catalog_reader => Role::CatalogReader,
    matrix_access_package_manager => Role::PackageManager,
    matrix_assignment_manager => Role::AssignmentManager,
    matrix_identity_governance_administrator => Role::Iga,
    matrix_app_read => Role::AppRead,
    matrix_app_read_write => Role::AppWrite,
    matrix_app_without_permission => Role::AppNone,
}

// ---------------------------------------------------------------------------------------
// The document mirrors the table.

fn matrix_markdown() -> String {
    let mut out = String::new();
    out.push_str("| operation | request |");
    for r in ROLES {
        out.push_str(&format!(" {} |", r.column().0));
    }
    out.push_str("\n|---|---|");
    for _ in ROLES {
        out.push_str(":-:|");
    }
    out.push('\n');
    for (op, what, row) in MATRIX {
        out.push_str(&format!("| `{op}` | {} |", what.replace('|', "\\|")));
        for cell in row.split_whitespace() {
            let shown = match cell {
                "A" => "allow",
                "H" => "hidden",
                "B" => "4xx rule",
                "F" => "403",
                "N" => "404",
                "U" => "401",
                other => other,
            };
            out.push_str(&format!(" {shown} |"));
        }
        out.push('\n');
    }
    out.push_str("\nColumns:\n\n");
    for r in ROLES {
        let (short, long) = r.column();
        out.push_str(&format!("- `{short}`: {long}\n"));
    }
    out
}

const START: &str = "<!-- authz-matrix:start (generated from crates/grantry/tests/api/authz.rs) -->\n";
const END: &str = "<!-- authz-matrix:end -->";

#[test]
fn authz_matrix_doc_is_in_sync() {
    let path = format!("{}/../../docs/authorization.md", env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = matrix_markdown();
    let (Some(s), Some(e)) = (doc.find(START), doc.find(END)) else {
        panic!("{path} lacks the matrix markers; see authz.rs")
    };
    let current = &doc[s + START.len()..e];
    if current != generated {
        if std::env::var_os("GRANTRY_UPDATE_DOCS").is_some() {
            let updated = format!("{}{START}{generated}{}", &doc[..s], &doc[e..]);
            std::fs::write(&path, updated).expect("write the doc");
        } else {
            panic!(
                "docs/authorization.md does not match the matrix in tests/api/authz.rs; regenerate it with \
                 `GRANTRY_UPDATE_DOCS=1 cargo test -p grantry --test api authz_matrix_doc`"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Abuse cases.

#[tokio::test]
async fn requestor_cannot_approve_their_own_request_even_when_listed_as_approver() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let user = app.create_user("selfish").await;
    let u2 = user.clone();
    let policy = app
        .seed_policy(&f, AllowedTargetScope::AllMemberUsers, move |p| {
            p.requestor_settings.enable_targets_to_self_add_access = true;
            p.approval.is_approval_required_for_add = true;
            p.approval.stages = vec![stage(vec![user_set(&u2)])];
        })
        .await;
    let id = app.user_request(&user, &f.package_id, &policy).await;
    let (_, r) = app.get(&app.admin, &format!("{}/{id}", reqs())).await;
    // Either nobody is left to approve (denied at once), or the stage waits; the requestor
    // may never decide it.
    if r["state"] == "pendingApproval" {
        let sid = app.stage_id(&id, 0).await;
        let token = app.user_token(&user, DELEGATED_SCOPES);
        let path = em("v1.0", &format!("accessPackageAssignmentApprovals/{id}/stages/{sid}"));
        let (status, body) = app.patch(&token, &path, json!({"reviewResult": "Approve", "justification": "me"})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_error(&body, "accessDenied");
    } else {
        assert_eq!(r["state"], "denied", "{r}");
    }
    app.drain().await;
    assert!(!app.is_member(&f.group_id, &user).await, "the requestor approved themselves");
}

#[tokio::test]
async fn requesting_on_behalf_of_someone_who_is_not_a_direct_report_is_refused() {
    let app = TestApp::spawn().await;
    let sc = scenario(&app).await;
    // `other` is nobody's manager; `manager` manages only the requestor.
    let stranger = app.create_user("stranger").await;
    for (caller, target) in [(&sc.other, &sc.requestor), (&sc.manager, &stranger)] {
        let token = app.user_token(caller, DELEGATED_SCOPES);
        let (status, body) = app
            .post(
                &token,
                &reqs(),
                json!({"requestType": "userAdd", "assignment": {"targetId": target, "accessPackageId": sc.obo_pkg.package_id, "assignmentPolicyId": sc.obo_pkg.self_policy_id}}),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_error(&body, "RequestorNotAllowed");
    }
}

#[tokio::test]
async fn reading_another_users_request_or_assignment_by_id_is_not_found() {
    let app = TestApp::spawn().await;
    let sc = scenario(&app).await;
    let token = app.user_token(&sc.other, DELEGATED_SCOPES);
    for path in [
        format!("{}/{}", reqs(), sc.request),
        format!("{}/{}?$expand=assignment", reqs(), sc.request),
        em("v1.0", &format!("assignments/{}", sc.held_assignment)),
        em("v1.0", &format!("assignments/{}?$expand=target", sc.held_assignment)),
        em("v1.0", &format!("accessPackageAssignmentApprovals/{}", sc.request)),
        format!("/beta/{EM}/accessPackageAssignments/{}", sc.held_assignment),
        format!("/beta/{EM}/accessPackageAssignmentRequests/{}", sc.request),
    ] {
        let (status, body) = app.get(&token, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_error(&body, "ResourceNotFound");
    }
}

#[tokio::test]
async fn catalog_roles_do_not_reach_outside_their_catalog() {
    let app = TestApp::spawn().await;
    let sc = scenario(&app).await;
    let (g, outside) = (&sc.g, &sc.outside_assignment);
    // An administrator links P (in A) with B's package both ways.
    app.linked_to_other_catalog(&sc, "Linked", false).await;
    app.linked_to_other_catalog(&sc, "Linked back", true).await;
    for user in [&sc.owner, &sc.reader, &sc.apm, &sc.aam] {
        let token = app.user_token(user, DELEGATED_SCOPES);
        let denied = |s: StatusCode| s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND;
        for path in [
            em("v1.0", &format!("catalogs/{}", g.catalog_id)),
            em("v1.0", &format!("accessPackages/{}", g.package_id)),
            em("v1.0", &format!("accessPackages/{}?$expand=assignmentPolicies", g.package_id)),
            em("v1.0", &format!("assignmentPolicies/{}", g.self_policy_id)),
            em("v1.0", &format!("assignments/{outside}")),
            em("v1.0", &format!("catalogs/{}/resources", g.catalog_id)),
            em("v1.0", &format!("catalogs/{}/accessPackages", g.catalog_id)),
        ] {
            let (status, body) = app.get(&token, &path).await;
            assert!(denied(status), "{path}: {status} {body}");
        }
        // Lists are filtered to catalog A: nothing of B appears, whatever is expanded.
        for path in [
            em("v1.0", "accessPackages?$expand=catalog,assignmentPolicies"),
            em("v1.0", "accessPackages?$expand=incompatibleAccessPackages,incompatibleGroups"),
            em("v1.0", "assignmentPolicies?$expand=accessPackage"),
            em("v1.0", "assignments?$expand=accessPackage($expand=catalog),target"),
            em("v1.0", "assignmentRequests?$expand=accessPackage,assignment"),
            em("v1.0", "catalogs"),
            em("v1.0", &format!("assignments?$filter=accessPackage/id eq '{}'", g.package_id)),
            em("v1.0", &format!("assignmentRequests?$filter=accessPackage/id eq '{}'", g.package_id)),
        ] {
            let (status, body) = app.get(&token, &path).await;
            assert!(status.is_success() || status == StatusCode::BAD_REQUEST, "{path}: {status} {body}");
            let text = body.to_string();
            for id in [&g.catalog_id, &g.package_id, &g.self_policy_id, outside] {
                assert!(!text.contains(id.as_str()), "{path} leaks {id} of catalog B: {text}");
            }
        }
        // Writes into catalog B.
        let (status, body) = app
            .post(
                &token,
                &reqs(),
                json!({"requestType": "adminAdd", "assignment": {"targetId": sc.other, "assignmentPolicyId": g.admin_policy_id, "accessPackageId": g.package_id}}),
            )
            .await;
        assert!(denied(status), "adminAdd into B: {status} {body}");
        let (status, body) = app
            .post(&token, &em("v1.0", "accessPackages"), json!({"displayName": "x", "catalog": {"id": g.catalog_id}}))
            .await;
        assert!(denied(status), "package into B: {status} {body}");
        let (status, body) = app
            .patch(&token, &em("v1.0", &format!("accessPackages/{}", g.package_id)), json!({"description": "x"}))
            .await;
        assert!(denied(status), "edit package of B: {status} {body}");
        // Moving a package of A into B needs rights in B too.
        let (status, body) = app
            .post(
                &token,
                &em("v1.0", &format!("accessPackages/{}/moveToCatalog", sc.f.package_id)),
                json!({"catalogId": g.catalog_id}),
            )
            .await;
        assert!(denied(status), "move into B: {status} {body}");
        // Linking a package of A with one of B answers exactly as for a package that does
        // not exist: ids of B cannot be probed.
        let add = |other: String| {
            let token = token.clone();
            let app = &app;
            let path = em("v1.0", &format!("accessPackages/{}/incompatibleAccessPackages/$ref", sc.f.package_id));
            async move {
                let url = format!("https://graph.microsoft.com/v1.0/{EM}/accessPackages/{other}");
                app.post(&token, &path, json!({"@odata.id": url})).await
            }
        };
        let (status_b, body_b) = add(g.package_id.clone()).await;
        let (status_none, body_none) = add(grantry_domain::ids::new_id()).await;
        assert!(denied(status_b), "link to B: {status_b} {body_b}");
        assert_eq!(status_b, status_none, "{body_b} vs {body_none}");
        assert_eq!(body_b["error"]["code"], body_none["error"]["code"]);
        // Role scopes: a role of B is as unknown as a role that does not exist.
        let p = app.add_package_to(&sc.f, "Probe").await;
        let path = em("v1.0", &format!("accessPackages/{}/resourceRoleScopes", p.package_id));
        for role in [g.role_id.clone(), grantry_domain::ids::new_id()] {
            let body = json!({"role": {"id": role}, "scope": {"originId": g.group_id}});
            let (status, body) = app.post(&token, &path, body).await;
            assert!(status.is_client_error(), "{status} {body}");
            let text = body.to_string();
            assert!(!text.contains(&g.catalog_id) && !text.contains(&g.group_id), "leaks B: {text}");
        }
    }
}

#[tokio::test]
async fn expand_and_select_reveal_nothing_the_caller_may_not_read() {
    let app = TestApp::spawn().await;
    let sc = scenario(&app).await;
    // The manager asks on the requestor's behalf; the requestor then reads their requests
    // and assignments with every expansion a client could ask for.
    let mtoken = app.user_token(&sc.manager, DELEGATED_SCOPES);
    let (status, body) = app
        .post(
            &mtoken,
            &reqs(),
            json!({"requestType": "userAdd", "assignment": {"targetId": sc.requestor, "accessPackageId": sc.obo_pkg.package_id, "assignmentPolicyId": sc.obo_pkg.self_policy_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    let token = app.user_token(&sc.requestor, DELEGATED_SCOPES);
    let outsiders = [&sc.other, &sc.owner, &sc.reader, &sc.apm, &sc.aam, &sc.iga, &sc.outside_assignment];
    for path in [
        format!("{}/{}?$expand=requestor,assignment($expand=target),accessPackage", reqs(), sc.request),
        format!("{}/filterByCurrentUser(on='target')?$expand=requestor,assignment($expand=target)", reqs()),
        format!("{}?$expand=requestor,assignment($expand=target)", reqs()),
        em("v1.0", "assignments/filterByCurrentUser(on='target')?$expand=target,accessPackage"),
        em("v1.0", &format!("assignments/{}?$expand=target,accessPackage,assignmentPolicy", sc.held_assignment)),
        em("v1.0", &format!("assignments/{}?$select=id,target", sc.held_assignment)),
    ] {
        let (status, body) = app.get(&token, &path).await;
        assert!(status.is_success() || status == StatusCode::BAD_REQUEST, "{path}: {status} {body}");
        let text = body.to_string();
        for id in outsiders {
            assert!(!text.contains(id.as_str()), "{path} leaks {id}: {text}");
        }
    }
    // The other user's lists stay empty of the requestor's data whatever they expand.
    let otoken = app.user_token(&sc.other, DELEGATED_SCOPES);
    for path in [
        format!("{}?$expand=requestor,assignment($expand=target)", reqs()),
        em("v1.0", "assignments?$expand=target"),
        em("v1.0", "assignments/filterByCurrentUser(on='target')?$expand=target"),
        em("v1.0", "accessPackageAssignmentApprovals/filterByCurrentUser(on='approver')"),
    ] {
        let (status, body) = app.get(&otoken, &path).await;
        assert!(status.is_success() || status == StatusCode::BAD_REQUEST, "{path}: {status} {body}");
        let text = body.to_string();
        for id in [&sc.requestor, &sc.request, &sc.held_assignment] {
            assert!(!text.contains(id.as_str()), "{path} leaks {id}: {text}");
        }
    }
}

#[tokio::test]
async fn tokens_of_disabled_or_deleted_users_are_refused() {
    let app = TestApp::spawn().await;
    let (disabled, deleted) = (app.create_user("disabled").await, app.create_user("deleted").await);
    app.grant_directory_role(&disabled, IGA_ROLE).await;
    app.grant_directory_role(&deleted, IGA_ROLE).await;
    let (dt, xt) = (app.user_token(&disabled, DELEGATED_SCOPES), app.user_token(&deleted, DELEGATED_SCOPES));
    assert_eq!(app.get(&dt, &em("v1.0", "catalogs")).await.0, StatusCode::OK);
    let (status, body) =
        app.patch(&app.admin, &format!("/v1.0/users/{disabled}"), json!({"accountEnabled": false})).await;
    assert!(status.is_success(), "{body}");
    let (status, body) = app.delete(&app.admin, &format!("/v1.0/users/{deleted}")).await;
    assert!(status.is_success(), "{body}");
    for token in [&dt, &xt] {
        for path in [em("v1.0", "catalogs"), "/v1.0/me".to_string(), reqs()] {
            let (status, body) = app.get(token, &path).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
            assert!(body["error"]["code"].is_string(), "{body}");
        }
    }
    // A token for an id that never existed is refused as well.
    let ghost = app.user_token(&grantry_domain::ids::new_id(), DELEGATED_SCOPES);
    assert_eq!(app.get(&ghost, &em("v1.0", "catalogs")).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_malformed_or_wrongly_signed_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.create_user("alice").await;
    let good = app.user_token(&user, DELEGATED_SCOPES);
    let expired = app.expired_token(&user);
    // Same claims, signed with another key.
    let parts: Vec<&str> = good.split('.').collect();
    let forged_sig = format!("{}.{}.{}", parts[0], parts[1], "c2lnbmF0dXJl");
    // Claims edited (a role added) under the original signature.
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    claims["idtyp"] = json!("app");
    claims["roles"] = json!(["EntitlementManagement.ReadWrite.All"]);
    let tampered = format!("{}.{}.{}", parts[0], engine.encode(claims.to_string()), parts[2]);
    // alg "none".
    let none_header = engine.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{}.", parts[1]);
    // Signed with a key of another Grantry server.
    let other = TestApp::spawn().await;
    let foreign = other.user_token(&user, DELEGATED_SCOPES);
    for (name, token) in [
        ("expired", expired.as_str()),
        ("forged signature", &forged_sig),
        ("tampered claims", &tampered),
        ("alg none", &unsigned),
        ("other server", &foreign),
        ("garbage", "not-a-jwt"),
        ("empty segments", ".."),
    ] {
        for path in [em("v1.0", "catalogs"), "/v1.0/me".to_string()] {
            let (status, body) = app.get(token, &path).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{name} on {path}: {body}");
            assert!(body["error"]["code"].is_string(), "{name}: {body}");
        }
    }
    // Odd Authorization headers.
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer  ", "bearer\tx", "Token abc"] {
        let resp = app.client.get(app.url("/v1.0/me")).header("Authorization", header).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{header}");
    }
    assert_eq!(app.get(&good, "/v1.0/me").await.0, StatusCode::OK);
}

#[tokio::test]
async fn concurrent_requests_for_incompatible_packages_deliver_at_most_one() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let mut other = app.add_package_to(&f, "Incompatible").await;
    other.self_policy_id = app
        .seed_policy(&other, AllowedTargetScope::AllMemberUsers, |p| {
            p.requestor_settings.enable_targets_to_self_add_access = true;
        })
        .await;
    let target = format!("https://graph.microsoft.com/v1.0/{EM}/accessPackages/{}", other.package_id);
    let (status, body) = app
        .post(
            &app.admin,
            &em("v1.0", &format!("accessPackages/{}/incompatibleAccessPackages/$ref", f.package_id)),
            json!({"@odata.id": target}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for round in 0..5 {
        let user = app.create_user(&format!("racer{round}")).await;
        let token = app.user_token(&user, SUBJECT_SCOPES);
        let send = |pkg: String, policy: String| {
            let (app, token) = (&app, token.clone());
            async move {
                app.post(
                    &token,
                    &reqs(),
                    json!({"requestType": "userAdd", "assignment": {"accessPackageId": pkg, "assignmentPolicyId": policy}}),
                )
                .await
            }
        };
        let (a, b) = tokio::join!(
            send(f.package_id.clone(), f.self_policy_id.clone()),
            send(other.package_id.clone(), other.self_policy_id.clone())
        );
        for (status, body) in [&a, &b] {
            assert!(
                *status == StatusCode::CREATED || *status == StatusCode::BAD_REQUEST,
                "a refusal must be a 4xx: {status} {body}"
            );
        }
        app.drain().await;
        let uid = user.clone();
        let active: i64 = app
            .read(move |c| {
                c.query_one(
                    "SELECT COUNT(*) FROM assignments WHERE target_subject_id = ? AND active = 1",
                    &[uid.into()],
                )?
                .map(|r| r.int(0))
                .transpose()
                .map(|n| n.unwrap_or(0))
            })
            .await;
        assert!(active <= 1, "round {round}: both incompatible packages were delivered");
        assert_eq!(active, 1, "round {round}: one of the two should be delivered");
    }
}
