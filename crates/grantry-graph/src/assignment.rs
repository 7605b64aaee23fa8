//! Assignments, their delivered resource roles and applicable policy requirements on the
//! wire, in the v1.0 and beta shapes.

pub use crate::catalog::PackageView;
use crate::render::{Dialect, object, opt_str};
use crate::request::{ExpirationView, ScheduleView, SubjectView, schedule};
use crate::wire::{Nav, Ts, ts_opt};
use grantry_domain::model::{Assignment, AssignmentResourceRole, Policy, Question, QuestionKind, Schedule};
use serde::Serialize;
use serde_json::{Value, json};

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
pub fn resource_role(r: &AssignmentResourceRole) -> Value {
    object([
        ("id", json!(r.id)),
        ("originId", json!(r.origin_id)),
        ("originSystem", json!(r.origin_system)),
        ("status", json!(r.status)),
    ])
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

fn question(q: &Question, d: Dialect) -> Value {
    let (kind, extra): (&str, Vec<(&'static str, Value)>) = match &q.kind {
        QuestionKind::TextInput { is_single_line_question, regex_pattern } => (
            "accessPackageTextInputQuestion",
            vec![("isSingleLineQuestion", json!(is_single_line_question)), ("regexPattern", json!(regex_pattern))],
        ),
        QuestionKind::MultipleChoice { choices, is_multiple_selection_allowed } => {
            let choices: Vec<Value> = choices
                .iter()
                .map(|c| match d {
                    Dialect::V1 => json!({"actualValue": c.actual_value, "text": c.text, "localizations": c.localizations}),
                    Dialect::Beta => json!({"actualValue": c.actual_value, "displayValue": {"defaultText": c.text, "localizedTexts": []}}),
                })
                .collect();
            (
                "accessPackageMultipleChoiceQuestion",
                vec![
                    ("choices", Value::Array(choices)),
                    (
                        d.pick("isMultipleSelectionAllowed", "allowsMultipleSelection"),
                        json!(is_multiple_selection_allowed),
                    ),
                ],
            )
        }
    };
    let text = match d {
        Dialect::V1 => json!(q.text),
        Dialect::Beta => json!({"defaultText": q.text, "localizedTexts": []}),
    };
    let mut pairs = vec![
        ("@odata.type", json!(format!("#microsoft.graph.{kind}"))),
        ("id", json!(q.id)),
        ("sequence", json!(q.sequence)),
        ("isRequired", json!(q.is_required)),
        ("isAnswerEditable", json!(q.is_answer_editable)),
        ("text", text),
    ];
    if d == Dialect::V1 {
        pairs.push(("localizations", json!(q.localizations)));
    }
    pairs.extend(extra);
    object(pairs)
}

/// `accessPackageAssignmentRequestRequirements` for one policy.
pub fn requirements(p: &Policy, d: Dialect) -> Value {
    let sched = schedule(&Schedule { start_date_time: None, expiration: p.expiration.clone(), recurrence: None });
    let questions: Vec<Value> = p.questions.iter().map(|q| question(q, d)).collect();
    let approval = &p.approval;
    let has_stages = !approval.stages.is_empty();
    match d {
        Dialect::V1 => object([
            ("policyId", json!(p.id)),
            ("policyDisplayName", json!(p.display_name)),
            ("policyDescription", opt_str(&p.description)),
            ("isApprovalRequiredForAdd", json!(approval.is_approval_required_for_add && has_stages)),
            ("isApprovalRequiredForUpdate", json!(approval.is_approval_required_for_update && has_stages)),
            ("isRequestorJustificationRequired", json!(approval.is_requestor_justification_required)),
            ("allowCustomAssignmentSchedule", json!(p.requestor_settings.allow_custom_assignment_schedule)),
            ("schedule", sched),
            ("questions", Value::Array(questions)),
        ]),
        Dialect::Beta => object([
            ("policyId", json!(p.id)),
            ("policyDisplayName", json!(p.display_name)),
            ("policyDescription", opt_str(&p.description)),
            ("isApprovalRequired", json!(approval.is_approval_required_for_add && has_stages)),
            ("isApprovalRequiredForExtension", json!(approval.is_approval_required_for_update && has_stages)),
            ("isRequestorJustificationRequired", json!(approval.is_requestor_justification_required)),
            ("isCustomAssignmentScheduleAllowed", json!(p.requestor_settings.allow_custom_assignment_schedule)),
            ("schedule", sched),
            ("questions", Value::Array(questions)),
            ("existingAnswers", json!([])),
            ("verifiableCredentialRequirementStatus", Value::Null),
        ]),
    }
}
