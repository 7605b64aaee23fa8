//! Assignment policies. The internal shape follows v1.0, which is the richer dialect;
//! beta's `requestorSettings.scopeType`, `durationInDays`, `approvalStages` with
//! `isBackup` approvers and so on are mapped onto it by `grantry-graph`.

use super::schedule::Expiration;
use crate::enums::{AllowedTargetScope, ApproverInformationVisibility, CustomExtensionStage};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    pub id: String,
    pub access_package_id: String,
    pub catalog_id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub allowed_target_scope: AllowedTargetScope,
    pub specific_allowed_targets: Vec<SubjectSet>,
    pub expiration: Expiration,
    pub requestor_settings: RequestorSettings,
    pub approval: ApprovalSettings,
    pub review_settings: Option<ReviewSettings>,
    pub questions: Vec<Question>,
    pub automatic_request_settings: Option<AutomaticRequestSettings>,
    pub notification_settings: Option<serde_json::Value>,
    pub verifiable_credential_settings: Option<serde_json::Value>,
    pub custom_extension_stage_settings: Vec<CustomExtensionStageSetting>,
    pub created_by: Option<String>,
    pub modified_by: Option<String>,
    pub created_date_time: DateTime<Utc>,
    pub modified_date_time: DateTime<Utc>,
}

/// Who may request, and how (v1.0 `accessPackageAssignmentRequestorSettings`; beta
/// `acceptRequests` maps to "any self or on-behalf add is enabled", `canExtend` to
/// `enable_targets_to_self_update_access`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestorSettings {
    pub enable_targets_to_self_add_access: bool,
    pub enable_targets_to_self_update_access: bool,
    pub enable_targets_to_self_remove_access: bool,
    pub allow_custom_assignment_schedule: bool,
    pub enable_on_behalf_requestors_to_add_access: bool,
    pub enable_on_behalf_requestors_to_update_access: bool,
    pub enable_on_behalf_requestors_to_remove_access: bool,
    pub on_behalf_requestors: Vec<SubjectSet>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalSettings {
    pub is_approval_required_for_add: bool,
    pub is_approval_required_for_update: bool,
    pub is_requestor_justification_required: bool,
    pub stages: Vec<ApprovalStage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalStage {
    #[serde(with = "super::serde_duration", default)]
    pub duration_before_automatic_denial: Option<Duration>,
    #[serde(with = "super::serde_duration", default)]
    pub duration_before_escalation: Option<Duration>,
    pub is_approver_justification_required: bool,
    pub is_escalation_enabled: bool,
    pub primary_approvers: Vec<SubjectSet>,
    pub fallback_primary_approvers: Vec<SubjectSet>,
    pub escalation_approvers: Vec<SubjectSet>,
    pub fallback_escalation_approvers: Vec<SubjectSet>,
    pub approver_information_visibility: ApproverInformationVisibility,
    /// `#microsoft.graph.accessPackageDynamicApprovalStage` when true.
    pub is_dynamic: bool,
}

/// `subjectSet` (v1.0) / `userSet` (beta). Unknown derived types are kept verbatim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum SubjectSet {
    SingleUser {
        user_id: Option<String>,
        description: Option<String>,
    },
    GroupMembers {
        group_id: Option<String>,
        description: Option<String>,
    },
    ConnectedOrganizationMembers {
        connected_organization_id: Option<String>,
        description: Option<String>,
    },
    RequestorManager {
        manager_level: i32,
    },
    TargetManager {
        manager_level: i32,
    },
    InternalSponsors,
    ExternalSponsors,
    TargetUserSponsors,
    TargetApplicationOwners,
    TargetAgentIdentitySponsorsOrOwners,
    SingleServicePrincipal {
        service_principal_id: Option<String>,
        description: Option<String>,
    },
    AttributeRuleMembers {
        membership_rule: Option<String>,
        description: Option<String>,
    },
    /// Any other `@odata.type`, with its properties as sent.
    Other {
        odata_type: String,
        properties: serde_json::Map<String, serde_json::Value>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalizedText {
    pub language_code: String,
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Question {
    pub id: String,
    pub text: Option<String>,
    pub localizations: Vec<LocalizedText>,
    pub is_required: bool,
    pub is_answer_editable: bool,
    pub sequence: i32,
    pub kind: QuestionKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum QuestionKind {
    TextInput { is_single_line_question: bool, regex_pattern: Option<String> },
    MultipleChoice { choices: Vec<AnswerChoice>, is_multiple_selection_allowed: bool },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnswerChoice {
    pub actual_value: String,
    pub text: Option<String>,
    pub localizations: Vec<LocalizedText>,
}

/// v1.0 `accessPackageAssignmentReviewSettings` (beta `assignmentReviewSettings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewSettings {
    pub is_enabled: bool,
    pub expiration_behavior: Option<crate::enums::ReviewExpirationBehavior>,
    pub is_recommendation_enabled: Option<bool>,
    pub is_reviewer_justification_required: Option<bool>,
    pub is_self_review: Option<bool>,
    pub primary_reviewers: Vec<SubjectSet>,
    pub fallback_reviewers: Vec<SubjectSet>,
    pub schedule: Option<super::schedule::Schedule>,
    /// Beta-only fields with no v1.0 counterpart (`reviewerType`, `recurrenceType`,
    /// `durationInDays`, `isAgenticExperienceEnabled`), kept so beta reads them back.
    pub beta_extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AutomaticRequestSettings {
    pub request_access_for_allowed_targets: bool,
    pub remove_access_when_target_leaves_allowed_targets: bool,
    #[serde(with = "super::serde_duration", default)]
    pub grace_period_before_access_removal: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomExtensionStageSetting {
    pub id: String,
    pub stage: CustomExtensionStage,
    pub custom_extension_id: String,
}

impl Policy {
    /// A policy that only administrators may assign through (v1.0 `notSpecified` scope,
    /// beta `NoSubjects`).
    pub fn is_admin_only(&self) -> bool {
        self.allowed_target_scope == AllowedTargetScope::NotSpecified
    }
}
