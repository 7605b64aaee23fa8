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
    /// Beta-only details with no v1.0 counterpart, kept so beta reads them back:
    /// `approvalMode` when it is `Parallel` (stages still run one after another), and
    /// `allowedRequestorsIsBackup` (the `isBackup` flags of beta `allowedRequestors`, in the
    /// order of `specific_allowed_targets`).
    #[serde(default)]
    pub beta_extra: serde_json::Map<String, serde_json::Value>,
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
    /// Beta `acceptRequests: false`: the policy takes no new requests at all (not even
    /// administrators' direct assignments). v1.0 cannot express it; it survives a v1.0 PUT.
    #[serde(default)]
    pub rejects_new_requests: bool,
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

/// A policy as read from a request body (either dialect), before the service fills in
/// what it owns: id, package, catalog, question ids, timestamps, `createdBy`.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    /// The access package named in the body, and the property that named it
    /// (`accessPackage.id` or `accessPackageId`), for error messages.
    pub access_package: Option<(String, String)>,
    /// The `id` sent in the body (PUT bodies carry it); informational.
    pub id: Option<String>,
    pub display_name: String,
    pub description: Option<String>,
    pub allowed_target_scope: AllowedTargetScope,
    pub specific_allowed_targets: Vec<SubjectSet>,
    pub expiration: Expiration,
    pub requestor_settings: RequestorSettings,
    pub approval: ApprovalSettings,
    pub review_settings: Option<ReviewSettings>,
    /// Question ids are those sent (possibly empty); the service decides which to keep.
    pub questions: Vec<Question>,
    pub automatic_request_settings: Option<AutomaticRequestSettings>,
    pub notification_settings: Option<serde_json::Value>,
    pub verifiable_credential_settings: Option<serde_json::Value>,
    pub custom_extension_stage_settings: Vec<CustomExtensionStageSetting>,
    pub beta_extra: serde_json::Map<String, serde_json::Value>,
    /// Whether the body said anything about beta `acceptRequests`; when it did not, an
    /// update keeps the policy's current `rejects_new_requests`.
    pub accept_requests_given: bool,
    /// Whether the body used beta names (for error targets in validation).
    pub beta_names: bool,
}

impl PolicyInput {
    /// The policy this input describes, with the service-owned fields given.
    pub fn into_policy(
        self,
        id: String,
        access_package_id: String,
        catalog_id: String,
        created_by: Option<String>,
        created: DateTime<Utc>,
        modified: DateTime<Utc>,
    ) -> Policy {
        Policy {
            id,
            access_package_id,
            catalog_id,
            display_name: self.display_name,
            description: self.description,
            allowed_target_scope: self.allowed_target_scope,
            specific_allowed_targets: self.specific_allowed_targets,
            expiration: self.expiration,
            requestor_settings: self.requestor_settings,
            approval: self.approval,
            review_settings: self.review_settings,
            questions: self.questions,
            automatic_request_settings: self.automatic_request_settings,
            notification_settings: self.notification_settings,
            verifiable_credential_settings: self.verifiable_credential_settings,
            custom_extension_stage_settings: self.custom_extension_stage_settings,
            created_by: created_by.clone(),
            modified_by: created_by,
            created_date_time: created,
            modified_date_time: modified,
            beta_extra: self.beta_extra,
        }
    }
}

/// The most approval stages a policy may have.
pub const MAX_APPROVAL_STAGES: usize = 3;

/// Entra's shortest stage timeout for a stage that forwards to alternate (escalation)
/// approvers, in days.
pub const MIN_TIMEOUT_WITH_ESCALATION_DAYS: i64 = 4;

fn invalid(target: &str, message: impl Into<String>) -> crate::Error {
    crate::Error::bad_request("InvalidPolicy", message).with_target(target)
}

impl Policy {
    /// Checks the rules a policy must satisfy whatever dialect it came in. `beta` chooses
    /// the property names used in error targets and messages.
    pub fn validate(&self, beta: bool) -> crate::Result<()> {
        let n = |v1: &'static str, b: &'static str| if beta { b } else { v1 };
        if self.display_name.trim().is_empty() {
            return Err(invalid("displayName", "'displayName' is required and must not be empty."));
        }
        // Who may be assigned.
        let targets = n("specificAllowedTargets", "requestorSettings.allowedRequestors");
        let scope_name = n("allowedTargetScope", "requestorSettings.scopeType");
        let scope = if beta { self.allowed_target_scope.beta() } else { self.allowed_target_scope.v1() };
        let specific = matches!(
            self.allowed_target_scope,
            AllowedTargetScope::SpecificDirectoryUsers
                | AllowedTargetScope::SpecificConnectedOrganizationUsers
                | AllowedTargetScope::SpecificDirectoryServicePrincipals
        );
        if specific && self.specific_allowed_targets.is_empty() {
            return Err(invalid(
                targets,
                format!("'{scope_name}' is '{scope}', which needs at least one subject set in '{targets}'."),
            ));
        }
        if self.allowed_target_scope == AllowedTargetScope::NotSpecified && !self.specific_allowed_targets.is_empty() {
            return Err(invalid(
                targets,
                format!(
                    "'{scope_name}' is '{scope}' (administrators assign directly), so '{targets}' must be empty; choose a specific scope to name who may request."
                ),
            ));
        }
        for (i, s) in self.specific_allowed_targets.iter().enumerate() {
            validate_subject_set(s, &format!("{targets}[{i}]"))?;
            if let SubjectSet::AttributeRuleMembers { membership_rule: Some(rule), .. } = s {
                let path = format!("{targets}[{i}].membershipRule");
                crate::membership_rule::Rule::parse(rule)
                    .map_err(|e| invalid(&path, format!("'{path}' is not a valid membership rule: {e}.")))?;
            }
        }
        if self.automatic_request_settings.as_ref().is_some_and(|a| a.request_access_for_allowed_targets) {
            let rules = self
                .specific_allowed_targets
                .iter()
                .filter(|s| matches!(s, SubjectSet::AttributeRuleMembers { .. }))
                .count();
            if self.allowed_target_scope != AllowedTargetScope::SpecificDirectoryUsers
                || rules != 1
                || self.specific_allowed_targets.len() != 1
            {
                return Err(invalid(
                    targets,
                    format!(
                        "'automaticRequestSettings.requestAccessForAllowedTargets' is true, so the policy assigns automatically: set '{scope_name}' to '{}' and '{targets}' to exactly one '#microsoft.graph.attributeRuleMembers' with a 'membershipRule'.",
                        if beta {
                            AllowedTargetScope::SpecificDirectoryUsers.beta()
                        } else {
                            AllowedTargetScope::SpecificDirectoryUsers.v1()
                        }
                    ),
                ));
            }
        }
        for (i, s) in self.requestor_settings.on_behalf_requestors.iter().enumerate() {
            let path = format!("requestorSettings.onBehalfRequestors[{i}]");
            validate_subject_set(s, &path)?;
            // Only these name a requestor; any other kind would be stored and then match
            // nobody.
            if !matches!(
                s,
                SubjectSet::SingleUser { .. } | SubjectSet::GroupMembers { .. } | SubjectSet::TargetManager { .. }
            ) {
                return Err(invalid(
                    &format!("{path}.@odata.type"),
                    format!(
                        "'{path}' is a '{}', which cannot name who requests on behalf of others; use '#microsoft.graph.singleUser', '#microsoft.graph.groupMembers' or '#microsoft.graph.targetManager'.",
                        s.type_name()
                    ),
                ));
            }
        }
        // Lifetime.
        match self.expiration.kind {
            crate::enums::ExpirationType::AfterDateTime if self.expiration.end_date_time.is_none() => {
                return Err(invalid(
                    "expiration.endDateTime",
                    "'expiration.type' is 'afterDateTime', which needs 'expiration.endDateTime'.",
                ));
            }
            crate::enums::ExpirationType::AfterDuration => match self.expiration.duration {
                None => {
                    return Err(invalid(
                        "expiration.duration",
                        "'expiration.type' is 'afterDuration', which needs 'expiration.duration' (e.g. 'P365D').",
                    ));
                }
                Some(d) if d <= Duration::zero() => {
                    return Err(invalid(
                        n("expiration.duration", "durationInDays"),
                        "The assignment lifetime must be longer than zero.",
                    ));
                }
                _ => {}
            },
            _ => {}
        }
        // Approval.
        let stages = n("requestApprovalSettings.stages", "requestApprovalSettings.approvalStages");
        let a = &self.approval;
        if a.stages.len() > MAX_APPROVAL_STAGES {
            return Err(invalid(
                stages,
                format!("A policy has at most {MAX_APPROVAL_STAGES} approval stages; got {}.", a.stages.len()),
            ));
        }
        if (a.is_approval_required_for_add || a.is_approval_required_for_update) && a.stages.is_empty() {
            let flag = if a.is_approval_required_for_add {
                n("requestApprovalSettings.isApprovalRequiredForAdd", "requestApprovalSettings.isApprovalRequired")
            } else {
                n(
                    "requestApprovalSettings.isApprovalRequiredForUpdate",
                    "requestApprovalSettings.isApprovalRequiredForExtension",
                )
            };
            return Err(invalid(
                stages,
                format!("'{flag}' is true but '{stages}' is empty: add at least one stage, or set '{flag}' to false."),
            ));
        }
        for (i, stage) in a.stages.iter().enumerate() {
            let path = format!("{stages}[{i}]");
            let denial_name = n("durationBeforeAutomaticDenial", "approvalStageTimeOutInDays");
            let escalation_name = n("durationBeforeEscalation", "escalationTimeInMinutes");
            if let Some(d) = stage.duration_before_automatic_denial
                && d <= Duration::zero()
            {
                return Err(invalid(
                    &format!("{path}.{denial_name}"),
                    format!("'{path}.{denial_name}' must be longer than zero."),
                ));
            }
            if stage.primary_approvers.is_empty() && stage.fallback_primary_approvers.is_empty() && !stage.is_dynamic {
                return Err(invalid(
                    &format!("{path}.primaryApprovers"),
                    format!("Stage {} has no approvers: add at least one primary (or fallback) approver.", i + 1),
                ));
            }
            if stage.is_escalation_enabled {
                if stage.escalation_approvers.is_empty() && stage.fallback_escalation_approvers.is_empty() {
                    return Err(invalid(
                        &format!("{path}.escalationApprovers"),
                        format!("'{path}.isEscalationEnabled' is true, which needs at least one escalation approver."),
                    ));
                }
                match stage.duration_before_escalation {
                    Some(e) if e > Duration::zero() => {
                        if let Some(d) = stage.duration_before_automatic_denial
                            && e >= d
                        {
                            return Err(invalid(
                                &format!("{path}.{escalation_name}"),
                                format!(
                                    "'{path}.{escalation_name}' must be shorter than '{path}.{denial_name}', or the request is denied before it is escalated."
                                ),
                            ));
                        }
                    }
                    _ => {
                        return Err(invalid(
                            &format!("{path}.{escalation_name}"),
                            format!(
                                "'{path}.isEscalationEnabled' is true, which needs a positive '{path}.{escalation_name}'."
                            ),
                        ));
                    }
                }
            } else if let Some(e) = stage.duration_before_escalation
                && e < Duration::zero()
            {
                return Err(invalid(
                    &format!("{path}.{escalation_name}"),
                    format!("'{path}.{escalation_name}' must not be negative."),
                ));
            }
            if stage.is_escalation_enabled
                && let Some(d) = stage.duration_before_automatic_denial
                && d < Duration::days(MIN_TIMEOUT_WITH_ESCALATION_DAYS)
            {
                return Err(invalid(
                    &format!("{path}.{denial_name}"),
                    format!(
                        "Stage {} forwards requests to alternate (escalation) approvers, which needs '{path}.{denial_name}' of at least {MIN_TIMEOUT_WITH_ESCALATION_DAYS} days; got {}.",
                        i + 1,
                        crate::duration::format(d)
                    ),
                ));
            }
            for (list, sets) in [
                ("primaryApprovers", &stage.primary_approvers),
                (n("fallbackPrimaryApprovers", "primaryApprovers"), &stage.fallback_primary_approvers),
                ("escalationApprovers", &stage.escalation_approvers),
                (n("fallbackEscalationApprovers", "escalationApprovers"), &stage.fallback_escalation_approvers),
            ] {
                for (j, s) in sets.iter().enumerate() {
                    validate_subject_set(s, &format!("{path}.{list}[{j}]"))?;
                }
            }
        }
        // The requestor's manager, and each kind of sponsor, approve in one stage at most.
        for (what, is_kind) in [
            (
                "The requestor's manager",
                (|s: &SubjectSet| matches!(s, SubjectSet::RequestorManager { .. })) as fn(&SubjectSet) -> bool,
            ),
            ("Internal sponsors", |s: &SubjectSet| matches!(s, SubjectSet::InternalSponsors)),
            ("External sponsors", |s: &SubjectSet| matches!(s, SubjectSet::ExternalSponsors)),
            ("The target's sponsors", |s: &SubjectSet| matches!(s, SubjectSet::TargetUserSponsors)),
        ] {
            let using: Vec<usize> = a
                .stages
                .iter()
                .enumerate()
                .filter(|(_, st)| st.primary_approvers.iter().any(is_kind))
                .map(|(i, _)| i)
                .collect();
            if let [first, second, ..] = using.as_slice() {
                return Err(invalid(
                    &format!("{stages}[{second}].primaryApprovers"),
                    format!(
                        "{what} can approve in one stage only; stages {} and {} both name them.",
                        first + 1,
                        second + 1
                    ),
                ));
            }
        }
        // Reviews.
        if let Some(r) = &self.review_settings {
            let base = n("reviewSettings", "accessReviewSettings");
            for (list, sets) in [
                (n("primaryReviewers", "reviewers"), &r.primary_reviewers),
                (n("fallbackReviewers", "reviewers"), &r.fallback_reviewers),
            ] {
                for (j, s) in sets.iter().enumerate() {
                    validate_subject_set(s, &format!("{base}.{list}[{j}]"))?;
                }
            }
            if let Some(d) = r.schedule.as_ref().and_then(|s| s.expiration.duration)
                && d <= Duration::zero()
            {
                return Err(invalid(
                    &format!("{base}.{}", n("schedule.expiration.duration", "durationInDays")),
                    "The length of each review must be longer than zero.",
                ));
            }
        }
        if let Some(a) = &self.automatic_request_settings
            && let Some(g) = a.grace_period_before_access_removal
            && g < Duration::zero()
        {
            return Err(invalid(
                "automaticRequestSettings.gracePeriodBeforeAccessRemoval",
                "'automaticRequestSettings.gracePeriodBeforeAccessRemoval' must not be negative.",
            ));
        }
        // Questions.
        for (i, q) in self.questions.iter().enumerate() {
            let path = format!("questions[{i}]");
            if q.text.as_deref().is_none_or(|t| t.trim().is_empty()) {
                return Err(invalid(
                    &format!("{path}.text"),
                    format!("'{path}.text' is required: every question needs the text shown to requestors."),
                ));
            }
            for (j, l) in q.localizations.iter().enumerate() {
                if l.language_code.trim().is_empty() {
                    return Err(invalid(
                        &format!("{path}.{}[{j}].languageCode", n("localizations", "text.localizedTexts")),
                        "Every localized text needs a 'languageCode' such as 'fr-CA'.",
                    ));
                }
            }
            if let QuestionKind::MultipleChoice { choices, .. } = &q.kind {
                if choices.is_empty() {
                    return Err(invalid(
                        &format!("{path}.choices"),
                        format!("'{path}' is a multiple choice question, which needs at least one entry in 'choices'."),
                    ));
                }
                let mut seen = std::collections::HashSet::new();
                for (j, c) in choices.iter().enumerate() {
                    if c.actual_value.trim().is_empty() {
                        return Err(invalid(
                            &format!("{path}.choices[{j}].actualValue"),
                            "Every choice needs a non-empty 'actualValue' (the value stored as the answer).",
                        ));
                    }
                    if !seen.insert(c.actual_value.as_str()) {
                        return Err(invalid(
                            &format!("{path}.choices[{j}].actualValue"),
                            format!(
                                "Two choices of '{path}' have the actualValue '{}'; values must be unique.",
                                c.actual_value
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Checks one subject set: ids present and GUID-shaped, manager levels in range.
impl SubjectSet {
    /// The v1.0 type name without its namespace (`singleUser`).
    pub fn type_name(&self) -> &str {
        match self {
            SubjectSet::SingleUser { .. } => "singleUser",
            SubjectSet::GroupMembers { .. } => "groupMembers",
            SubjectSet::ConnectedOrganizationMembers { .. } => "connectedOrganizationMembers",
            SubjectSet::RequestorManager { .. } => "requestorManager",
            SubjectSet::TargetManager { .. } => "targetManager",
            SubjectSet::InternalSponsors => "internalSponsors",
            SubjectSet::ExternalSponsors => "externalSponsors",
            SubjectSet::TargetUserSponsors => "targetUserSponsors",
            SubjectSet::TargetApplicationOwners => "targetApplicationOwners",
            SubjectSet::TargetAgentIdentitySponsorsOrOwners => "targetAgentIdentitySponsorsOrOwners",
            SubjectSet::SingleServicePrincipal { .. } => "singleServicePrincipal",
            SubjectSet::AttributeRuleMembers { .. } => "attributeRuleMembers",
            SubjectSet::Other { odata_type, .. } => {
                odata_type.trim_start_matches('#').trim_start_matches("microsoft.graph.")
            }
        }
    }
}

pub fn validate_subject_set(s: &SubjectSet, path: &str) -> crate::Result<()> {
    let need_id = |id: &Option<String>, v1: &str, what: &str| -> crate::Result<()> {
        match id {
            Some(id) if crate::ids::is_guid(id) => Ok(()),
            Some(id) => Err(invalid(
                &format!("{path}.{v1}"),
                format!("'{path}.{v1}' must be the object id (a GUID) of the {what}; got '{id}'."),
            )),
            None => Err(invalid(
                &format!("{path}.{v1}"),
                format!("'{path}' names no {what}: set '{v1}' (beta: 'id') to its object id."),
            )),
        }
    };
    match s {
        SubjectSet::SingleUser { user_id, .. } => need_id(user_id, "userId", "user"),
        SubjectSet::GroupMembers { group_id, .. } => need_id(group_id, "groupId", "group"),
        SubjectSet::ConnectedOrganizationMembers { connected_organization_id, .. } => {
            need_id(connected_organization_id, "connectedOrganizationId", "connected organization")
        }
        SubjectSet::SingleServicePrincipal { service_principal_id, .. } => {
            need_id(service_principal_id, "servicePrincipalId", "service principal")
        }
        SubjectSet::RequestorManager { manager_level } if !(1..=2).contains(manager_level) => Err(invalid(
            &format!("{path}.managerLevel"),
            format!("'{path}.managerLevel' must be 1 (the manager) or 2 (the manager's manager); got {manager_level}."),
        )),
        SubjectSet::TargetManager { manager_level } if !(1..=4).contains(manager_level) => Err(invalid(
            &format!("{path}.managerLevel"),
            format!("'{path}.managerLevel' must be between 1 and 4; got {manager_level}."),
        )),
        SubjectSet::AttributeRuleMembers { membership_rule, .. }
            if membership_rule.as_deref().is_none_or(|r| r.trim().is_empty()) =>
        {
            Err(invalid(&format!("{path}.membershipRule"), format!("'{path}.membershipRule' is required.")))
        }
        _ => Ok(()),
    }
}
