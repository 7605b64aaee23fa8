//! How each entity maps to its table: the indexed columns derived from it. The entity
//! itself is stored whole in `body`, so columns can never disagree with it.

use crate::conn::Value;
use grantry_domain::model::*;
use serde::{Serialize, de::DeserializeOwned};

pub trait Record: Serialize + DeserializeOwned + Send + 'static {
    const TABLE: &'static str;
    fn id(&self) -> &str;
    /// Indexed columns other than `seq`, `id` and `body`.
    fn columns(&self) -> Vec<(&'static str, Value)>;
}

fn lower(s: &Option<String>) -> Value {
    s.as_ref().map(|s| s.to_lowercase()).into()
}

impl Record for User {
    const TABLE: &'static str = "users";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("upn_lower", self.user_principal_name.to_lowercase().into()),
            ("mail_lower", lower(&self.mail)),
            ("display_name", (&self.display_name).into()),
            ("user_type", self.user_type.v1().into()),
            ("account_enabled", self.account_enabled.into()),
            ("manager_id", self.manager_id.clone().into()),
            ("created_us", self.created_date_time.into()),
        ]
    }
}

impl Record for ConnectedOrganization {
    const TABLE: &'static str = "connected_organizations";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("display_name", (&self.display_name).into()),
            ("state", self.state.v1().into()),
            ("created_us", self.created_date_time.into()),
            ("modified_us", self.modified_date_time.into()),
        ]
    }
}

impl Record for Group {
    const TABLE: &'static str = "groups";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![("display_name", (&self.display_name).into()), ("created_us", self.created_date_time.into())]
    }
}

impl Record for RoleAssignment {
    const TABLE: &'static str = "role_assignments";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        let scope = self.app_scope_id.clone().or_else(|| self.directory_scope_id.clone()).unwrap_or_else(|| "/".into());
        vec![
            ("provider", self.provider.as_str().into()),
            ("principal_id", (&self.principal_id).into()),
            ("role_definition_id", (&self.role_definition_id).into()),
            ("scope", scope.into()),
            ("created_us", self.created_date_time.into()),
        ]
    }
}

impl Record for Catalog {
    const TABLE: &'static str = "catalogs";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("display_name", (&self.display_name).into()),
            ("state", self.state.v1().into()),
            ("catalog_type", self.catalog_type.v1().into()),
            ("unique_name", self.unique_name.clone().into()),
            ("created_us", self.created_date_time.into()),
            ("modified_us", self.modified_date_time.into()),
        ]
    }
}

impl Record for Resource {
    const TABLE: &'static str = "resources";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("catalog_id", (&self.catalog_id).into()),
            ("origin_id", (&self.origin_id).into()),
            ("origin_system", (&self.origin_system).into()),
            ("display_name", self.display_name.clone().into()),
            ("created_us", self.created_date_time.into()),
        ]
    }
}

impl Record for ResourceRole {
    const TABLE: &'static str = "resource_roles";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("resource_id", (&self.resource_id).into()),
            ("catalog_id", (&self.catalog_id).into()),
            ("origin_id", (&self.origin_id).into()),
            ("origin_system", (&self.origin_system).into()),
            ("display_name", (&self.display_name).into()),
        ]
    }
}

impl Record for ResourceScope {
    const TABLE: &'static str = "resource_scopes";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("resource_id", (&self.resource_id).into()),
            ("catalog_id", (&self.catalog_id).into()),
            ("origin_id", (&self.origin_id).into()),
            ("origin_system", (&self.origin_system).into()),
        ]
    }
}

impl Record for ResourceRequest {
    const TABLE: &'static str = "resource_requests";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("catalog_id", (&self.catalog_id).into()),
            ("request_type", self.request_type.v1().into()),
            ("state", self.state.v1().into()),
            ("created_us", self.created_date_time.into()),
        ]
    }
}

impl Record for AccessPackage {
    const TABLE: &'static str = "access_packages";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("catalog_id", (&self.catalog_id).into()),
            ("display_name", (&self.display_name).into()),
            ("is_hidden", self.is_hidden.into()),
            ("unique_name", self.unique_name.clone().into()),
            ("created_us", self.created_date_time.into()),
            ("modified_us", self.modified_date_time.into()),
        ]
    }
}

impl Record for RoleScope {
    const TABLE: &'static str = "role_scopes";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("access_package_id", (&self.access_package_id).into()),
            ("role_id", (&self.role_id).into()),
            ("scope_id", (&self.scope_id).into()),
            ("created_us", self.created_date_time.into()),
        ]
    }
}

impl Record for Policy {
    const TABLE: &'static str = "policies";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("access_package_id", (&self.access_package_id).into()),
            ("catalog_id", (&self.catalog_id).into()),
            ("display_name", (&self.display_name).into()),
            ("allowed_target_scope", self.allowed_target_scope.v1().into()),
            ("created_us", self.created_date_time.into()),
            ("modified_us", self.modified_date_time.into()),
        ]
    }
}

impl Record for CustomExtension {
    const TABLE: &'static str = "custom_extensions";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("catalog_id", (&self.catalog_id).into()),
            ("display_name", (&self.display_name).into()),
            ("kind", self.kind.type_name().into()),
            ("created_us", self.created_date_time.into()),
            ("modified_us", self.last_modified_date_time.into()),
        ]
    }
}

impl Record for OutboxMessage {
    const TABLE: &'static str = "outbox";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("kind", self.kind.as_str().into()),
            ("ordering_key", (&self.ordering_key).into()),
            ("state", self.state.as_str().into()),
            ("next_attempt_us", self.next_attempt_date_time.into()),
            ("lease_until_us", self.lease_until.into()),
            ("created_us", self.created_date_time.into()),
        ]
    }
}

impl Record for WebhookSubscription {
    const TABLE: &'static str = "webhook_subscriptions";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![("url", (&self.url).into()), ("created_us", self.created_date_time.into())]
    }
}

impl Record for Subject {
    const TABLE: &'static str = "subjects";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("object_id", self.object_id.clone().into()),
            ("email_lower", lower(&self.email)),
            ("created_us", self.created_date_time.into()),
        ]
    }
}

impl Record for AssignmentRequest {
    const TABLE: &'static str = "requests";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        let open_kind: Option<&str> = if !self.state.is_open() || self.is_validation_only {
            None
        } else if self.request_type.is_add() {
            Some("add")
        } else if self.request_type.is_update() {
            Some("update")
        } else {
            Some("remove")
        };
        vec![
            ("request_type", self.request_type.v1().into()),
            ("state", self.state.v1().into()),
            ("status", self.status.as_str().into()),
            ("access_package_id", (&self.access_package_id).into()),
            ("catalog_id", (&self.catalog_id).into()),
            ("policy_id", self.policy_id.clone().into()),
            ("assignment_id", self.assignment_id.clone().into()),
            ("target_subject_id", (&self.target_subject_id).into()),
            ("requestor_subject_id", self.requestor_subject_id.clone().into()),
            ("created_by", (&self.created_by).into()),
            ("open_kind", open_kind.into()),
            ("created_us", self.created_date_time.into()),
            ("completed_us", self.completed_date_time.into()),
        ]
    }
}

impl Record for Assignment {
    const TABLE: &'static str = "assignments";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("access_package_id", (&self.access_package_id).into()),
            ("catalog_id", (&self.catalog_id).into()),
            ("policy_id", (&self.policy_id).into()),
            ("target_subject_id", (&self.target_subject_id).into()),
            ("state", self.state.v1().into()),
            ("status", (&self.status).into()),
            ("active", self.state.is_active().then_some(1i64).into()),
            ("created_us", self.created_date_time.into()),
            ("expired_us", self.expired_date_time.into()),
        ]
    }
}

impl Record for Approval {
    const TABLE: &'static str = "approvals";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        let state = match self.state {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            ApprovalState::TimedOut => "timedOut",
            ApprovalState::Canceled => "canceled",
        };
        vec![("state", state.into()), ("created_us", self.created_date_time.into())]
    }
}

impl Record for AssignmentResourceRole {
    const TABLE: &'static str = "assignment_resource_roles";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("assignment_id", (&self.assignment_id).into()),
            ("access_package_id", (&self.access_package_id).into()),
            ("subject_id", (&self.subject_id).into()),
            ("role_id", (&self.role_id).into()),
            ("scope_id", (&self.scope_id).into()),
            ("origin_system", (&self.origin_system).into()),
            ("origin_id", (&self.origin_id).into()),
            ("status", (&self.status).into()),
        ]
    }
}

impl Record for ReviewDefinition {
    const TABLE: &'static str = "review_definitions";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("policy_id", (&self.policy_id).into()),
            ("catalog_id", (&self.catalog_id).into()),
            ("display_name", (&self.display_name).into()),
            ("status", self.status.as_str().into()),
            ("created_us", self.created_date_time.into()),
        ]
    }
}

impl Record for ReviewInstance {
    const TABLE: &'static str = "review_instances";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("definition_id", (&self.definition_id).into()),
            ("catalog_id", (&self.catalog_id).into()),
            ("occurrence", i64::from(self.occurrence).into()),
            ("status", self.status.as_str().into()),
            ("start_us", self.start_date_time.into()),
            ("end_us", self.end_date_time.into()),
        ]
    }
}

impl Record for ReviewDecision {
    const TABLE: &'static str = "review_decisions";
    fn id(&self) -> &str {
        &self.id
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("instance_id", (&self.instance_id).into()),
            ("assignment_id", (&self.assignment_id).into()),
            ("principal_id", (&self.principal.id).into()),
            ("decision", self.decision.as_str().into()),
            ("apply_result", self.apply_result.as_str().into()),
            ("stage", (self.stage() as i64).into()),
        ]
    }
}
