//! Assignments, their delivered resource roles and applicable policy requirements on the
//! wire, in the v1.0 and beta shapes.

pub use crate::catalog::PackageView;
use crate::policy::QuestionView;
use crate::render::Dialect;
use crate::request::{ExpirationView, ScheduleView, SubjectView};
use crate::wire::{EmptyList, Nav, Null, Ts, ts_opt};
use grantry_domain::model::{Assignment, AssignmentResourceRole, Policy};
use serde::Serialize;
use serde_json::Value;

/// An assignment in the dialect of the URL, with the navigation properties `$expand` named.
#[derive(Serialize)]
#[serde(untagged)]
pub enum AssignmentView<'a> {
    V1(AssignmentV1<'a>),
    Beta(AssignmentBeta<'a>),
}

/// The related entities of an assignment that `$expand` asked for; `None` leaves the
/// navigation property out, `Some(None)` sends `null`.
#[derive(Default)]
pub struct AssignmentNavs<'a> {
    pub target: Nav<SubjectView<'a>>,
    pub access_package: Nav<PackageView<'a>>,
    pub policy: Nav<PolicySummaryView<'a>>,
}

/// v1.0 `accessPackageAssignment`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentV1<'a> {
    #[serde(rename = "@odata.type", skip_serializing_if = "Option::is_none")]
    odata_type: Option<&'static str>,
    id: &'a str,
    state: &'static str,
    status: &'a str,
    expired_date_time: Option<Ts>,
    schedule: ScheduleView<'a>,
    custom_extension_callout_instances: &'a [Value],
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Nav<SubjectView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_package: Nav<PackageView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignment_policy: Nav<PolicySummaryView<'a>>,
}

/// beta `accessPackageAssignment`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentBeta<'a> {
    #[serde(rename = "@odata.type", skip_serializing_if = "Option::is_none")]
    odata_type: Option<&'static str>,
    id: &'a str,
    catalog_id: &'a str,
    access_package_id: &'a str,
    assignment_policy_id: &'a str,
    target_id: &'a str,
    assignment_state: &'static str,
    assignment_status: &'a str,
    is_extended: bool,
    expired_date_time: Option<Ts>,
    schedule: ScheduleView<'a>,
    custom_extension_callout_instances: &'a [Value],
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Nav<SubjectView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_package: Nav<PackageView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_package_assignment_policy: Nav<PolicySummaryView<'a>>,
}

impl<'a> AssignmentView<'a> {
    pub fn new(a: &'a Assignment, d: Dialect, navs: AssignmentNavs<'a>) -> Self {
        match d {
            Dialect::V1 => AssignmentView::V1(AssignmentV1 {
                odata_type: None,
                id: &a.id,
                state: a.state.v1(),
                status: &a.status,
                expired_date_time: ts_opt(a.expired_date_time),
                schedule: ScheduleView::new(&a.schedule),
                custom_extension_callout_instances: &a.custom_extension_callout_instances,
                target: navs.target,
                access_package: navs.access_package,
                assignment_policy: navs.policy,
            }),
            Dialect::Beta => AssignmentView::Beta(AssignmentBeta {
                odata_type: None,
                id: &a.id,
                catalog_id: &a.catalog_id,
                access_package_id: &a.access_package_id,
                assignment_policy_id: &a.policy_id,
                target_id: &a.target_subject_id,
                assignment_state: a.state.beta(),
                assignment_status: &a.status,
                is_extended: a.is_extended,
                expired_date_time: ts_opt(a.expired_date_time),
                schedule: ScheduleView::new(&a.schedule),
                custom_extension_callout_instances: &a.custom_extension_callout_instances,
                target: navs.target,
                access_package: navs.access_package,
                access_package_assignment_policy: navs.policy,
            }),
        }
    }

    /// With `@odata.type` (the old beta create answers with it).
    pub fn typed(mut self) -> Self {
        const TYPE: &str = "#microsoft.graph.accessPackageAssignment";
        match &mut self {
            AssignmentView::V1(a) => a.odata_type = Some(TYPE),
            AssignmentView::Beta(a) => a.odata_type = Some(TYPE),
        }
        self
    }
}

/// Beta `accessPackageAssignmentResourceRole`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRoleView<'a> {
    id: &'a str,
    origin_id: &'a str,
    origin_system: &'a str,
    status: &'a str,
}

impl<'a> ResourceRoleView<'a> {
    pub fn new(r: &'a AssignmentResourceRole) -> Self {
        ResourceRoleView { id: &r.id, origin_id: &r.origin_id, origin_system: &r.origin_system, status: &r.status }
    }
}

/// A policy as an expanded navigation property of an assignment: its identity and
/// lifetime (the full policy is read from the policies endpoints).
#[derive(Serialize)]
#[serde(untagged)]
pub enum PolicySummaryView<'a> {
    V1(PolicySummaryV1<'a>),
    Beta(PolicySummaryBeta<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySummaryV1<'a> {
    id: &'a str,
    display_name: &'a str,
    description: Option<&'a str>,
    created_date_time: Ts,
    modified_date_time: Ts,
    allowed_target_scope: &'static str,
    expiration: ExpirationView,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicySummaryBeta<'a> {
    id: &'a str,
    display_name: &'a str,
    description: Option<&'a str>,
    created_date_time: Ts,
    modified_date_time: Ts,
    access_package_id: &'a str,
}

impl<'a> PolicySummaryView<'a> {
    pub fn new(p: &'a Policy, d: Dialect) -> Self {
        match d {
            Dialect::V1 => PolicySummaryView::V1(PolicySummaryV1 {
                id: &p.id,
                display_name: &p.display_name,
                description: p.description.as_deref(),
                created_date_time: Ts(p.created_date_time),
                modified_date_time: Ts(p.modified_date_time),
                allowed_target_scope: p.allowed_target_scope.v1(),
                expiration: ExpirationView::new(&p.expiration),
            }),
            Dialect::Beta => PolicySummaryView::Beta(PolicySummaryBeta {
                id: &p.id,
                display_name: &p.display_name,
                description: p.description.as_deref(),
                created_date_time: Ts(p.created_date_time),
                modified_date_time: Ts(p.modified_date_time),
                access_package_id: &p.access_package_id,
            }),
        }
    }
}

/// `accessPackageAssignmentRequestRequirements` for one policy, in the dialect's names.
#[derive(Serialize)]
#[serde(untagged)]
pub enum RequirementsView<'a> {
    V1(RequirementsV1<'a>),
    Beta(RequirementsBeta<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequirementsV1<'a> {
    policy_id: &'a str,
    policy_display_name: &'a str,
    policy_description: Option<&'a str>,
    is_approval_required_for_add: bool,
    is_approval_required_for_update: bool,
    is_requestor_justification_required: bool,
    allow_custom_assignment_schedule: bool,
    schedule: PolicyScheduleView,
    questions: Vec<QuestionView<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequirementsBeta<'a> {
    policy_id: &'a str,
    policy_display_name: &'a str,
    policy_description: Option<&'a str>,
    is_approval_required: bool,
    is_approval_required_for_extension: bool,
    is_requestor_justification_required: bool,
    is_custom_assignment_schedule_allowed: bool,
    schedule: PolicyScheduleView,
    questions: Vec<QuestionView<'a>>,
    existing_answers: EmptyList,
    verifiable_credential_requirement_status: Null,
}

/// The schedule a policy offers: no start, no recurrence, the policy's expiration.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyScheduleView {
    start_date_time: Null,
    recurrence: Null,
    expiration: ExpirationView,
}

impl<'a> RequirementsView<'a> {
    pub fn new(p: &'a Policy, d: Dialect) -> Self {
        let schedule = PolicyScheduleView {
            start_date_time: Null,
            recurrence: Null,
            expiration: ExpirationView::new(&p.expiration),
        };
        let questions = p.questions.iter().map(|q| QuestionView::new(q, d)).collect();
        let approval = &p.approval;
        let has_stages = !approval.stages.is_empty();
        match d {
            Dialect::V1 => RequirementsView::V1(RequirementsV1 {
                policy_id: &p.id,
                policy_display_name: &p.display_name,
                policy_description: p.description.as_deref(),
                is_approval_required_for_add: approval.is_approval_required_for_add && has_stages,
                is_approval_required_for_update: approval.is_approval_required_for_update && has_stages,
                is_requestor_justification_required: approval.is_requestor_justification_required,
                allow_custom_assignment_schedule: p.requestor_settings.allow_custom_assignment_schedule,
                schedule,
                questions,
            }),
            Dialect::Beta => RequirementsView::Beta(RequirementsBeta {
                policy_id: &p.id,
                policy_display_name: &p.display_name,
                policy_description: p.description.as_deref(),
                is_approval_required: approval.is_approval_required_for_add && has_stages,
                is_approval_required_for_extension: approval.is_approval_required_for_update && has_stages,
                is_requestor_justification_required: approval.is_requestor_justification_required,
                is_custom_assignment_schedule_allowed: p.requestor_settings.allow_custom_assignment_schedule,
                schedule,
                questions,
                existing_answers: EmptyList,
                verifiable_credential_requirement_status: Null,
            }),
        }
    }
}
