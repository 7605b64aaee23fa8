//! Subjects, assignment requests, assignments and approvals.

use super::schedule::Schedule;
use crate::enums::{AssignmentState, RequestState, RequestType, SubjectLifecycle, SubjectType};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `accessPackageSubject`: who requests or holds assignments. `object_id` is `None` for an
/// external user that is not yet in the directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    pub id: String,
    pub object_id: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub principal_name: Option<String>,
    pub subject_type: SubjectType,
    pub subject_lifecycle: SubjectLifecycle,
    pub connected_organization_id: Option<String>,
    pub created_date_time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub question_id: String,
    /// `#microsoft.graph.accessPackageTextInputQuestion` or `...MultipleChoiceQuestion`.
    pub question_type: Option<String>,
    pub value: Option<String>,
    pub display_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentRequest {
    pub id: String,
    pub request_type: RequestType,
    pub state: RequestState,
    /// The detail beside `state`.
    pub status: crate::enums::RequestStatus,
    pub access_package_id: String,
    pub catalog_id: String,
    pub policy_id: Option<String>,
    pub assignment_id: Option<String>,
    pub target_subject_id: String,
    /// The subject who asked; `None` when an application asked.
    pub requestor_subject_id: Option<String>,
    /// The directory object id (user or application) that created the request.
    pub created_by: String,
    pub justification: Option<String>,
    pub answers: Vec<Answer>,
    pub schedule: Schedule,
    pub is_validation_only: bool,
    pub created_date_time: DateTime<Utc>,
    pub completed_date_time: Option<DateTime<Utc>>,
    pub custom_extension_callout_instances: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    pub id: String,
    pub access_package_id: String,
    pub catalog_id: String,
    pub policy_id: String,
    pub target_subject_id: String,
    pub state: AssignmentState,
    pub status: String,
    pub schedule: Schedule,
    pub answers: Vec<Answer>,
    pub is_extended: bool,
    pub expired_date_time: Option<DateTime<Utc>>,
    pub created_date_time: DateTime<Utc>,
    pub custom_extension_callout_instances: Vec<serde_json::Value>,
}

/// One delivered (or to-be-delivered) resource role of one assignment (beta
/// `accessPackageAssignmentResourceRole`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentResourceRole {
    pub id: String,
    pub assignment_id: String,
    pub access_package_id: String,
    pub subject_id: String,
    pub role_id: String,
    pub scope_id: String,
    pub origin_system: String,
    pub origin_id: String,
    /// One of [`role_status`]'s values.
    pub status: String,
    pub created_date_time: DateTime<Utc>,
}

/// The statuses of an [`AssignmentResourceRole`].
pub mod role_status {
    /// Delivered: the membership or app role assignment exists (and its provisioning
    /// target, if any, has it).
    pub const FULFILLED: &str = "Fulfilled";
    /// Not delivered in Grantry (the group or app role is gone): nothing was granted.
    pub const DELIVERY_FAILED: &str = "DeliveryFailed";
    /// The app role assignment exists in Grantry, but the push to the application's SCIM
    /// provisioning target failed for good (dead-lettered).
    pub const PROVISIONING_FAILED: &str = "ProvisioningFailed";
    /// The app role assignment exists in Grantry; a failed push to the provisioning target
    /// is being sent again (after `reprocess`).
    pub const PENDING_FULFILLMENT: &str = "PendingFulfillment";
    /// Taken back when the assignment ended.
    pub const REMOVED: &str = "Removed";
}

impl AssignmentResourceRole {
    /// Whether Grantry granted this role (so ending the assignment revokes it), whatever
    /// became of the push to a provisioning target.
    pub fn is_granted(&self) -> bool {
        matches!(
            self.status.as_str(),
            role_status::FULFILLED | role_status::PROVISIONING_FAILED | role_status::PENDING_FULFILLMENT
        )
    }

    /// Whether this role still needs work before the assignment counts as delivered.
    pub fn is_outstanding(&self) -> bool {
        matches!(
            self.status.as_str(),
            role_status::DELIVERY_FAILED | role_status::PROVISIONING_FAILED | role_status::PENDING_FULFILLMENT
        )
    }
}

/// Who a new request is for, as the client named it: a directory object id, or an email
/// address (an external user who may not be in the directory yet).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TargetRef {
    pub object_id: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

/// A create-request body, after the wire layer has read whichever shape the client sent.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRequest {
    pub request_type: RequestType,
    /// The assignment an update or remove request concerns.
    pub assignment_id: Option<String>,
    pub target: Option<TargetRef>,
    pub policy_id: Option<String>,
    pub access_package_id: Option<String>,
    /// `None` when the client sent no schedule (or one with nothing in it).
    pub schedule: Option<Schedule>,
    pub answers: Vec<Answer>,
    pub justification: Option<String>,
    pub is_validation_only: bool,
}
