//! Approvals of assignment requests. An approval has the id of its request and one stage
//! per policy stage; stages run one after another, and the first decision in a stage
//! settles it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ApprovalState {
    /// A stage is waiting for a decision.
    Pending,
    Approved,
    Denied,
    /// A stage timed out: the request was denied automatically.
    TimedOut,
    /// The request was canceled while waiting.
    Canceled,
}

/// `reviewResult` of a stage as read (`NotReviewed`, `Approved`, `Denied`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewResult {
    NotReviewed,
    Approved,
    Denied,
}

impl ReviewResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewResult::NotReviewed => "NotReviewed",
            ReviewResult::Approved => "Approved",
            ReviewResult::Denied => "Denied",
        }
    }
}

/// `status` of a stage (`NotStarted`, `InProgress`, `Completed`, `Expired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StageStatus {
    NotStarted,
    InProgress,
    Completed,
    Expired,
}

impl StageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::NotStarted => "NotStarted",
            StageStatus::InProgress => "InProgress",
            StageStatus::Completed => "Completed",
            StageStatus::Expired => "Expired",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub id: String,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalStageRecord {
    pub id: String,
    /// 0-based position in the policy's stages.
    pub index: usize,
    pub display_name: String,
    pub status: StageStatus,
    pub review_result: ReviewResult,
    pub reviewed_by: Option<Identity>,
    pub reviewed_date_time: Option<DateTime<Utc>>,
    pub justification: Option<String>,
    /// Users who may decide now (primary approvers, or their fallbacks when the primary
    /// sets resolved to nobody). Never contains the requestor or the target.
    pub approver_ids: Vec<String>,
    /// Users added when the stage escalates.
    pub escalation_approver_ids: Vec<String>,
    pub escalated: bool,
    pub started_date_time: Option<DateTime<Utc>>,
    /// When an undecided stage denies the request automatically.
    pub due_date_time: Option<DateTime<Utc>>,
    /// When the stage escalates, if escalation is enabled.
    pub escalation_date_time: Option<DateTime<Utc>>,
}

impl ApprovalStageRecord {
    /// Whether `user_id` may decide this stage now.
    pub fn may_decide(&self, user_id: &str) -> bool {
        self.approver_ids.iter().any(|a| a == user_id)
            || (self.escalated && self.escalation_approver_ids.iter().any(|a| a == user_id))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Approval {
    /// Equal to the request id.
    pub id: String,
    pub policy_id: String,
    pub state: ApprovalState,
    pub stages: Vec<ApprovalStageRecord>,
    pub created_date_time: DateTime<Utc>,
}

impl Approval {
    /// The stage waiting for a decision, if any.
    pub fn current_stage(&self) -> Option<&ApprovalStageRecord> {
        self.stages.iter().find(|s| s.status == StageStatus::InProgress)
    }
}
