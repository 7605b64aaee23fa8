//! Assignments, their delivered resource roles and applicable policy requirements on the
//! wire, in the v1.0 and beta shapes.

use crate::render::{Dialect, object, opt_str, ts, ts_opt};
use crate::request::schedule;
use grantry_domain::model::{
    AccessPackage, Assignment, AssignmentResourceRole, Expiration, Policy, Question, QuestionKind, Schedule,
};
use serde_json::{Value, json};

pub fn assignment(a: &Assignment, d: Dialect) -> Value {
    match d {
        Dialect::V1 => object([
            ("id", json!(a.id)),
            ("state", json!(a.state.v1())),
            ("status", json!(a.status)),
            ("expiredDateTime", ts_opt(a.expired_date_time)),
            ("schedule", schedule(&a.schedule)),
            ("customExtensionCalloutInstances", json!(a.custom_extension_callout_instances)),
        ]),
        Dialect::Beta => object([
            ("id", json!(a.id)),
            ("catalogId", json!(a.catalog_id)),
            ("accessPackageId", json!(a.access_package_id)),
            ("assignmentPolicyId", json!(a.policy_id)),
            ("targetId", json!(a.target_subject_id)),
            ("assignmentState", json!(a.state.beta())),
            ("assignmentStatus", json!(a.status)),
            ("isExtended", json!(a.is_extended)),
            ("expiredDateTime", ts_opt(a.expired_date_time)),
            ("schedule", schedule(&a.schedule)),
            ("customExtensionCalloutInstances", json!(a.custom_extension_callout_instances)),
        ]),
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

/// An access package as an expanded navigation property.
pub fn package(p: &AccessPackage, d: Dialect) -> Value {
    let mut v = object([
        ("id", json!(p.id)),
        ("displayName", json!(p.display_name)),
        ("description", opt_str(&p.description)),
        ("isHidden", json!(p.is_hidden)),
        ("createdDateTime", ts(p.created_date_time)),
        ("modifiedDateTime", ts(p.modified_date_time)),
    ]);
    if d.is_beta()
        && let Value::Object(m) = &mut v
    {
        m.insert("catalogId".into(), json!(p.catalog_id));
        m.insert("isRoleScopesVisible".into(), json!(p.is_role_scopes_visible));
        m.insert("uniqueName".into(), opt_str(&p.unique_name));
        m.insert("createdBy".into(), opt_str(&p.created_by));
        m.insert("modifiedBy".into(), opt_str(&p.modified_by));
    }
    v
}

/// A policy as an expanded navigation property of an assignment: its identity and
/// lifetime (the full policy is read from the policies endpoints).
pub fn policy_summary(p: &Policy, d: Dialect) -> Value {
    let mut v = object([
        ("id", json!(p.id)),
        ("displayName", json!(p.display_name)),
        ("description", opt_str(&p.description)),
        ("createdDateTime", ts(p.created_date_time)),
        ("modifiedDateTime", ts(p.modified_date_time)),
    ]);
    if let Value::Object(m) = &mut v {
        match d {
            Dialect::V1 => {
                m.insert("allowedTargetScope".into(), json!(p.allowed_target_scope.v1()));
                m.insert("expiration".into(), expiration(&p.expiration));
            }
            Dialect::Beta => {
                m.insert("accessPackageId".into(), json!(p.access_package_id));
            }
        }
    }
    v
}

fn expiration(e: &Expiration) -> Value {
    json!({
        "endDateTime": ts_opt(e.end_date_time),
        "duration": e.duration.map(|d| Value::String(grantry_domain::duration::format(d))).unwrap_or(Value::Null),
        "type": e.kind.v1(),
    })
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
