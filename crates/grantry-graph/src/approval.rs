//! Approvals: v1.0 `approval` with `stages`, beta `approval` with `steps`.

use crate::render::Dialect;
use crate::wire::{Ts, ts_opt};
use grantry_domain::model::{Approval, ApprovalStageRecord, Identity};
use serde::Serialize;

/// One stage (v1.0 `approvalStage`) or step (beta `approvalStep`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageView<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    id: &'a str,
    display_name: &'a str,
    review_result: &'static str,
    status: &'static str,
    assigned_to_me: bool,
    justification: &'a str,
    reviewed_by: Option<IdentityView<'a>>,
    reviewed_date_time: Option<Ts>,
}

/// `identity`: who decided a stage.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityView<'a> {
    id: &'a str,
    display_name: Option<&'a str>,
}

impl<'a> IdentityView<'a> {
    pub fn new(i: &'a Identity) -> Self {
        IdentityView { id: &i.id, display_name: i.display_name.as_deref() }
    }
}

/// A stage or step; `assignedToMe` is evaluated for `viewer`.
pub fn stage<'a>(s: &'a ApprovalStageRecord, dialect: Dialect, viewer: Option<&str>) -> StageView<'a> {
    StageView {
        odata_type: dialect.pick("#microsoft.graph.approvalStage", "#microsoft.graph.approvalStep"),
        id: &s.id,
        display_name: &s.display_name,
        review_result: s.review_result.as_str(),
        status: s.status.as_str(),
        assigned_to_me: viewer.is_some_and(|v| s.may_decide(v)),
        // The docs example shows "" for a stage nobody has reviewed yet.
        justification: s.justification.as_deref().unwrap_or_default(),
        reviewed_by: s.reviewed_by.as_ref().map(IdentityView::new),
        reviewed_date_time: ts_opt(s.reviewed_date_time),
    }
}

/// `approval`: its `stages` (v1.0) or `steps` (beta).
#[derive(Serialize)]
pub struct ApprovalView<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stages: Option<Vec<StageView<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<Vec<StageView<'a>>>,
}

pub fn approval<'a>(a: &'a Approval, dialect: Dialect, viewer: Option<&str>) -> ApprovalView<'a> {
    let stages: Vec<StageView<'a>> = a.stages.iter().map(|s| stage(s, dialect, viewer)).collect();
    match dialect {
        Dialect::V1 => ApprovalView { id: &a.id, stages: Some(stages), steps: None },
        Dialect::Beta => ApprovalView { id: &a.id, stages: None, steps: Some(stages) },
    }
}
