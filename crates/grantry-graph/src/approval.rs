//! Approvals: v1.0 `approval` with `stages`, beta `approval` with `steps`.

use crate::render::{Dialect, object, odata_type, ts_opt};
use grantry_domain::model::{Approval, ApprovalStageRecord};
use serde_json::{Value, json};

/// One stage (v1.0 `approvalStage`) or step (beta `approvalStep`); `assignedToMe` is
/// evaluated for `viewer`.
pub fn stage(s: &ApprovalStageRecord, dialect: Dialect, viewer: Option<&str>) -> Value {
    object([
        ("@odata.type", odata_type(dialect.pick("approvalStage", "approvalStep"))),
        ("id", json!(s.id)),
        ("displayName", json!(s.display_name)),
        ("reviewResult", json!(s.review_result.as_str())),
        ("status", json!(s.status.as_str())),
        ("assignedToMe", json!(viewer.is_some_and(|v| s.may_decide(v)))),
        // The docs example shows "" for a stage nobody has reviewed yet.
        ("justification", json!(s.justification.clone().unwrap_or_default())),
        (
            "reviewedBy",
            s.reviewed_by.as_ref().map(|i| json!({ "id": i.id, "displayName": i.display_name })).unwrap_or(Value::Null),
        ),
        ("reviewedDateTime", ts_opt(s.reviewed_date_time)),
    ])
}

pub fn approval(a: &Approval, dialect: Dialect, viewer: Option<&str>) -> Value {
    let stages: Vec<Value> = a.stages.iter().map(|s| stage(s, dialect, viewer)).collect();
    object([("id", json!(a.id)), (dialect.pick("stages", "steps"), Value::Array(stages))])
}
