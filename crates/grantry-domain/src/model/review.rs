//! Access reviews of access package assignments: the series a policy's review settings
//! start (`accessReviewScheduleDefinition`), its runs (`accessReviewInstance`) and their
//! decision items (`accessReviewInstanceDecisionItem`).
//!
//! As in Entra, these reviews are created, changed and removed through the policy; the
//! definition is derived from it by [`ReviewDefinition::from_policy`]. The rules that do not
//! need the database (when the n-th run starts, what a run ends with) are pure functions
//! here.

use super::policy::{Policy, ReviewSettings, SubjectSet};
use crate::enums::ReviewExpirationBehavior;
use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Who reviews (a resolved `accessReviewReviewerScope`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Reviewer {
    /// The assignee reviews their own assignment (`reviewers: []`).
    SelfReview,
    /// The assignee's manager (`./manager`, `queryRoot: decisions`).
    Manager,
    /// One user (`/users/{id}`).
    User { id: String },
    /// The members of a group (`/groups/{id}/transitiveMembers`).
    GroupMembers { id: String },
}

impl Reviewer {
    /// The `accessReviewReviewerScope` query this reviewer is written as.
    pub fn query(&self) -> (String, Option<&'static str>) {
        match self {
            Reviewer::SelfReview => (String::new(), None),
            Reviewer::Manager => ("./manager".into(), Some("decisions")),
            Reviewer::User { id } => (format!("/users/{id}"), None),
            Reviewer::GroupMembers { id } => (format!("/groups/{id}/transitiveMembers"), None),
        }
    }

    /// The reviewer an `accessReviewReviewerScope` names (`query`, `queryRoot`), if it is one
    /// Grantry resolves: `/users/{id}`, `/groups/{id}/transitiveMembers` (or `/members`),
    /// `./manager` (relative to the decisions).
    pub fn from_query(query: &str, query_root: Option<&str>) -> Option<Reviewer> {
        let q = query.trim();
        let lower = q.to_ascii_lowercase();
        if lower == "./manager"
            || (lower == "manager" && query_root.is_some_and(|r| r.eq_ignore_ascii_case("decisions")))
        {
            return Some(Reviewer::Manager);
        }
        let parts: Vec<&str> = q.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            [users, id] if users.eq_ignore_ascii_case("users") && !id.is_empty() => {
                Some(Reviewer::User { id: crate::ids::normalize(id) })
            }
            [groups, id, members]
                if groups.eq_ignore_ascii_case("groups")
                    && !id.is_empty()
                    && (members.eq_ignore_ascii_case("transitiveMembers")
                        || members.eq_ignore_ascii_case("members")) =>
            {
                Some(Reviewer::GroupMembers { id: crate::ids::normalize(id) })
            }
            _ => None,
        }
    }

    /// The reviewer a policy's subject set names, if it is one reviews can use.
    fn of_subject_set(s: &SubjectSet) -> Option<Reviewer> {
        match s {
            SubjectSet::SingleUser { user_id: Some(id), .. } => Some(Reviewer::User { id: id.clone() }),
            SubjectSet::GroupMembers { group_id: Some(id), .. } => Some(Reviewer::GroupMembers { id: id.clone() }),
            SubjectSet::RequestorManager { .. } | SubjectSet::TargetManager { .. } => Some(Reviewer::Manager),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecurrenceKind {
    Weekly,
    AbsoluteMonthly,
}

/// The recurrence of a series: every `interval` weeks or months from `start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recurrence {
    pub kind: RecurrenceKind,
    pub interval: u32,
    pub start: DateTime<Utc>,
    /// False for a one-time review (no recurrence on the policy).
    pub recurring: bool,
}

impl Recurrence {
    /// When run `n` (0-based) starts; `None` past the end of a one-time review.
    pub fn occurrence(&self, n: u32) -> Option<DateTime<Utc>> {
        if n > 0 && !self.recurring {
            return None;
        }
        match self.kind {
            RecurrenceKind::Weekly => self.start.checked_add_signed(Duration::weeks(i64::from(n * self.interval))),
            RecurrenceKind::AbsoluteMonthly => self.start.checked_add_months(Months::new(n * self.interval)),
        }
    }

    /// The first run starting at or after `t`, with its index.
    pub fn next_at_or_after(&self, t: DateTime<Utc>) -> Option<(u32, DateTime<Utc>)> {
        (0..100_000u32).map_while(|n| self.occurrence(n).map(|s| (n, s))).find(|(_, s)| *s >= t)
    }

    /// The first run still running or to come at `now`, for runs `days` long: a series
    /// whose start is in the past begins with the run under way, not with every run missed.
    pub fn first_current(&self, now: DateTime<Utc>, days: i32) -> u32 {
        let length = Duration::days(i64::from(days.max(1)));
        (0..100_000u32)
            .map_while(|n| self.occurrence(n).map(|s| (n, s)))
            .find(|(_, s)| *s + length > now)
            .map(|(n, _)| n)
            .unwrap_or(0)
    }

    pub fn start_date(&self) -> NaiveDate {
        self.start.date_naive()
    }

    pub fn day_of_month(&self) -> u32 {
        self.start.day()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DefaultDecision {
    None,
    Approve,
    Deny,
    Recommendation,
}

impl DefaultDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultDecision::None => "None",
            DefaultDecision::Approve => "Approve",
            DefaultDecision::Deny => "Deny",
            DefaultDecision::Recommendation => "Recommendation",
        }
    }
}

/// `accessReviewScheduleSettings`, as a policy's review settings determine them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewScheduleSettings {
    pub instance_duration_in_days: i32,
    pub recurrence: Recurrence,
    pub default_decision_enabled: bool,
    pub default_decision: DefaultDecision,
    pub auto_apply_decisions_enabled: bool,
    pub recommendations_enabled: bool,
    pub justification_required_on_approval: bool,
    pub mail_notifications_enabled: bool,
    pub reminder_notifications_enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DefinitionStatus {
    NotStarted,
    InProgress,
    Completed,
}

impl DefinitionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DefinitionStatus::NotStarted => "NotStarted",
            DefinitionStatus::InProgress => "InProgress",
            DefinitionStatus::Completed => "Completed",
        }
    }
}

/// The review series of one policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewDefinition {
    pub id: String,
    pub policy_id: String,
    pub access_package_id: String,
    pub catalog_id: String,
    pub display_name: String,
    pub description_for_admins: String,
    pub description_for_reviewers: String,
    pub created_by: Option<String>,
    pub created_date_time: DateTime<Utc>,
    pub last_modified_date_time: DateTime<Utc>,
    pub status: DefinitionStatus,
    pub reviewers: Vec<Reviewer>,
    pub fallback_reviewers: Vec<Reviewer>,
    pub settings: ReviewScheduleSettings,
    /// Index of the next run to open.
    pub next_occurrence: u32,
    /// What a definition PUT changed that the policy does not say; kept when the policy changes.
    #[serde(default)]
    pub overrides: DefinitionOverrides,
    /// Multi-stage reviews (`stageSettings`, set by a definition PUT): empty for one stage.
    #[serde(default)]
    pub stage_settings: Vec<StageSetting>,
}

/// One stage of a multi-stage review (`accessReviewStageSettings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageSetting {
    pub stage_id: String,
    pub depends_on: Vec<String>,
    pub duration_in_days: i32,
    /// The decisions with which an item goes on to the next stage (`Approve`, `Deny`,
    /// `DontKnow`, `NotReviewed`, `Recommendation`: the decision agrees with the
    /// recommendation); `None`: every item goes on.
    pub decisions_that_will_move_to_next_stage: Option<Vec<String>>,
    pub reviewers: Vec<Reviewer>,
    pub fallback_reviewers: Vec<Reviewer>,
    pub recommendations_enabled: Option<bool>,
}

impl StageSetting {
    /// Whether an item decided `d` (recommended `r`) in this stage goes on to the next one.
    pub fn moves_on(&self, d: Decision, r: Recommendation) -> bool {
        let Some(list) = &self.decisions_that_will_move_to_next_stage else { return true };
        list.iter().any(|v| {
            v.eq_ignore_ascii_case(d.as_str())
                || (v.eq_ignore_ascii_case("Recommendation")
                    && matches!(
                        (d, r),
                        (Decision::Approve, Recommendation::Approve) | (Decision::Deny, Recommendation::Deny)
                    ))
        })
    }
}

/// The most stages a review has (as in Graph).
pub const MAX_STAGES: usize = 3;

/// The decisions a stage may name in `decisionsThatWillMoveToNextStage`.
pub const STAGE_DECISIONS: &[&str] = &["Approve", "Deny", "DontKnow", "NotReviewed", "Recommendation"];

/// The members of a definition its PUT may change: the policy does not determine them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionOverrides {
    pub display_name: Option<String>,
    pub description_for_admins: Option<String>,
    pub description_for_reviewers: Option<String>,
    pub auto_apply_decisions_enabled: Option<bool>,
    pub mail_notifications_enabled: Option<bool>,
    pub reminder_notifications_enabled: Option<bool>,
    /// `stageSettings`: `Some(vec![])` turns a multi-stage review back into one stage.
    #[serde(default)]
    pub stage_settings: Option<Vec<StageSetting>>,
}

impl DefinitionOverrides {
    fn apply(&self, d: &mut ReviewDefinition) {
        if let Some(v) = &self.display_name {
            d.display_name = v.clone();
        }
        if let Some(v) = &self.description_for_admins {
            d.description_for_admins = v.clone();
        }
        if let Some(v) = &self.description_for_reviewers {
            d.description_for_reviewers = v.clone();
        }
        if let Some(v) = self.auto_apply_decisions_enabled {
            d.settings.auto_apply_decisions_enabled = v;
        }
        if let Some(v) = self.mail_notifications_enabled {
            d.settings.mail_notifications_enabled = v;
        }
        if let Some(v) = self.reminder_notifications_enabled {
            d.settings.reminder_notifications_enabled = v;
        }
        if let Some(v) = &self.stage_settings {
            d.stage_settings = v.clone();
            if !v.is_empty() {
                d.settings.instance_duration_in_days = v.iter().map(|s| s.duration_in_days.max(1)).sum();
            }
        }
    }
}

/// The run length used when a policy gives none: Entra's portal default.
pub const DEFAULT_DURATION_DAYS: i32 = 14;

impl ReviewDefinition {
    /// The definition `policy` calls for (None when its reviews are off), keeping `existing`'s
    /// identity, creation and progress. `package_name` names the series.
    pub fn from_policy(
        policy: &Policy,
        package_name: &str,
        existing: Option<&ReviewDefinition>,
        now: DateTime<Utc>,
    ) -> Option<ReviewDefinition> {
        let r: &ReviewSettings = policy.review_settings.as_ref().filter(|r| r.is_enabled)?;
        let schedule = r.schedule.clone().unwrap_or_default();
        let duration_days = schedule
            .expiration
            .duration
            .map(|d| i32::try_from(d.num_days().max(1)).unwrap_or(i32::MAX))
            .or_else(|| {
                schedule.expiration.end_date_time.and_then(|end| {
                    schedule.start_date_time.map(|s| i32::try_from((end - s).num_days().max(1)).unwrap_or(1))
                })
            })
            .unwrap_or(DEFAULT_DURATION_DAYS);
        let start = schedule.start_date_time.or(existing.map(|e| e.settings.recurrence.start)).unwrap_or(now);
        let recurrence = recurrence_of(schedule.recurrence.as_ref(), start);
        let self_review =
            r.is_self_review == Some(true) || r.beta_extra.get("reviewerType").and_then(|v| v.as_str()) == Some("Self");
        let reviewers: Vec<Reviewer> = if self_review {
            vec![Reviewer::SelfReview]
        } else {
            let named: Vec<Reviewer> = r.primary_reviewers.iter().filter_map(Reviewer::of_subject_set).collect();
            if named.is_empty() { vec![Reviewer::SelfReview] } else { named }
        };
        let fallback_reviewers = r.fallback_reviewers.iter().filter_map(Reviewer::of_subject_set).collect();
        let (default_enabled, default_decision) = match r.expiration_behavior {
            Some(ReviewExpirationBehavior::RemoveAccess) => (true, DefaultDecision::Deny),
            Some(ReviewExpirationBehavior::AcceptAccessRecommendation) => (true, DefaultDecision::Recommendation),
            _ => (false, DefaultDecision::None),
        };
        let settings = ReviewScheduleSettings {
            instance_duration_in_days: duration_days,
            recurrence,
            default_decision_enabled: default_enabled,
            default_decision,
            auto_apply_decisions_enabled: true,
            recommendations_enabled: r.is_recommendation_enabled.unwrap_or(true),
            justification_required_on_approval: r.is_reviewer_justification_required.unwrap_or(true),
            mail_notifications_enabled: true,
            reminder_notifications_enabled: true,
        };
        let status = match existing.map(|e| e.status) {
            Some(DefinitionStatus::InProgress) => DefinitionStatus::InProgress,
            _ => DefinitionStatus::NotStarted,
        };
        let overrides = existing.map(|e| e.overrides.clone()).unwrap_or_default();
        let mut def = ReviewDefinition {
            id: existing.map(|e| e.id.clone()).unwrap_or_else(crate::ids::new_id),
            policy_id: policy.id.clone(),
            access_package_id: policy.access_package_id.clone(),
            catalog_id: policy.catalog_id.clone(),
            display_name: format!("{package_name}: {}", policy.display_name),
            description_for_admins: format!(
                "Review of the assignments of access package '{package_name}' made through policy '{}'.",
                policy.display_name
            ),
            description_for_reviewers: format!("Does this person still need access package '{package_name}'?"),
            created_by: existing.map(|e| e.created_by.clone()).unwrap_or_else(|| policy.created_by.clone()),
            created_date_time: existing.map(|e| e.created_date_time).unwrap_or(now),
            last_modified_date_time: now,
            status,
            reviewers,
            fallback_reviewers,
            settings,
            next_occurrence: existing.map(|e| e.next_occurrence).unwrap_or(0),
            overrides,
            stage_settings: Vec::new(),
        };
        def.overrides.clone().apply(&mut def);
        Some(def)
    }

    /// Records `overrides` and applies them.
    pub fn set_overrides(&mut self, overrides: DefinitionOverrides) {
        overrides.apply(self);
        self.overrides = overrides;
    }

    /// The classic query scope Entra shows for an access package review (and that clients
    /// find with `contains(scope/…/query, 'accessPackageAssignments')`).
    pub fn scope_query(&self) -> String {
        format!(
            "/identityGovernance/entitlementManagement/accessPackageAssignments?$filter=(accessPackageId eq '{}' and assignmentPolicyId eq '{}')",
            self.access_package_id, self.policy_id
        )
    }

    pub fn is_self_review(&self) -> bool {
        self.reviewers.iter().all(|r| *r == Reviewer::SelfReview)
    }
}

/// Reads the policy's `patternedRecurrence` (as stored from either dialect). Weekly and
/// monthly patterns are honoured as Graph documents; yearly is twelve months; none is a
/// one-time review.
pub fn recurrence_of(r: Option<&serde_json::Value>, start: DateTime<Utc>) -> Recurrence {
    let once = Recurrence { kind: RecurrenceKind::AbsoluteMonthly, interval: 1, start, recurring: false };
    let Some(r) = r else { return once };
    let pattern = &r["pattern"];
    let interval = pattern["interval"].as_u64().filter(|n| *n > 0).and_then(|n| u32::try_from(n).ok()).unwrap_or(1);
    let numbered_once = r["range"]["type"].as_str().is_some_and(|t| t.eq_ignore_ascii_case("numbered"))
        && r["range"]["numberOfOccurrences"].as_i64() == Some(1);
    let recurring = !numbered_once;
    match pattern["type"].as_str().map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("weekly" | "daily") => Recurrence { kind: RecurrenceKind::Weekly, interval, start, recurring },
        Some("absolutemonthly" | "relativemonthly") => {
            Recurrence { kind: RecurrenceKind::AbsoluteMonthly, interval, start, recurring }
        }
        Some("absoluteyearly" | "relativeyearly") => {
            Recurrence { kind: RecurrenceKind::AbsoluteMonthly, interval: interval * 12, start, recurring }
        }
        _ => once,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceStatus {
    InProgress,
    Completed,
    Applying,
    Applied,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::InProgress => "InProgress",
            InstanceStatus::Completed => "Completed",
            InstanceStatus::Applying => "Applying",
            InstanceStatus::Applied => "Applied",
        }
    }

    pub fn parse(s: &str) -> Option<InstanceStatus> {
        [InstanceStatus::InProgress, InstanceStatus::Completed, InstanceStatus::Applying, InstanceStatus::Applied]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// One run of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewInstance {
    pub id: String,
    pub definition_id: String,
    pub catalog_id: String,
    /// Which run of the series (0-based).
    pub occurrence: u32,
    pub start_date_time: DateTime<Utc>,
    pub end_date_time: DateTime<Utc>,
    pub status: InstanceStatus,
    pub reviewers: Vec<Reviewer>,
    pub fallback_reviewers: Vec<Reviewer>,
    /// The people asked to review (resolved at the start), for `contactedReviewers`.
    pub contacted_reviewers: Vec<ContactedReviewer>,
    /// Copied from the definition at the start: later policy changes affect later runs only.
    pub settings: ReviewScheduleSettings,
    pub last_reminder_date_time: Option<DateTime<Utc>>,
    /// The stages of a multi-stage run, each added when the one before it ends.
    #[serde(default)]
    pub stages: Vec<ReviewStage>,
    /// The definition's stage settings when the run started (empty: one stage).
    #[serde(default)]
    pub stage_settings: Vec<StageSetting>,
}

impl ReviewInstance {
    pub fn is_multi_stage(&self) -> bool {
        !self.stage_settings.is_empty()
    }

    /// The stage under way (the last one added).
    pub fn current_stage(&self) -> Option<&ReviewStage> {
        self.stages.last()
    }

    /// Who reviews now: the current stage's reviewers, or the run's.
    pub fn current_reviewers(&self) -> (&[Reviewer], &[Reviewer]) {
        match self.stages.last() {
            Some(s) => (&s.reviewers, &s.fallback_reviewers),
            None => (&self.reviewers, &self.fallback_reviewers),
        }
    }
}

/// One stage of a multi-stage run (`accessReviewStage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewStage {
    pub id: String,
    /// The `stageId` of its settings.
    pub stage_id: String,
    /// 0-based position.
    pub index: usize,
    pub start_date_time: DateTime<Utc>,
    pub end_date_time: DateTime<Utc>,
    pub status: InstanceStatus,
    pub reviewers: Vec<Reviewer>,
    pub fallback_reviewers: Vec<Reviewer>,
}

/// An item's decision in one stage of a multi-stage run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageDecision {
    pub stage_index: usize,
    pub decision: Decision,
    pub justification: Option<String>,
    pub reviewed_by: Option<UserIdentity>,
    pub reviewed_date_time: Option<DateTime<Utc>>,
}

/// `accessReviewReviewer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactedReviewer {
    pub id: String,
    pub display_name: String,
    pub user_principal_name: String,
    pub created_date_time: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    NotReviewed,
    Approve,
    Deny,
    DontKnow,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::NotReviewed => "NotReviewed",
            Decision::Approve => "Approve",
            Decision::Deny => "Deny",
            Decision::DontKnow => "DontKnow",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        [Decision::NotReviewed, Decision::Approve, Decision::Deny, Decision::DontKnow]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recommendation {
    Approve,
    Deny,
    NoInfoAvailable,
}

impl Recommendation {
    pub fn as_str(self) -> &'static str {
        match self {
            Recommendation::Approve => "Approve",
            Recommendation::Deny => "Deny",
            Recommendation::NoInfoAvailable => "NoInfoAvailable",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyResult {
    New,
    AppliedSuccessfully,
    AppliedSuccessfullyButObjectNotFound,
    AppliedWithUnknownFailure,
}

impl ApplyResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyResult::New => "New",
            ApplyResult::AppliedSuccessfully => "AppliedSuccessfully",
            ApplyResult::AppliedSuccessfullyButObjectNotFound => "AppliedSuccessfullyButObjectNotFound",
            ApplyResult::AppliedWithUnknownFailure => "AppliedWithUnknownFailure",
        }
    }
}

/// A user as a decision item names them (`userIdentity`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    pub id: String,
    pub display_name: String,
    pub user_principal_name: String,
}

/// One assignment under review in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewDecision {
    pub id: String,
    pub instance_id: String,
    pub definition_id: String,
    pub assignment_id: String,
    pub principal: UserIdentity,
    pub policy_id: String,
    pub policy_display_name: String,
    pub access_package_id: String,
    pub access_package_display_name: String,
    pub decision: Decision,
    pub justification: Option<String>,
    pub recommendation: Recommendation,
    /// What the recommendation is based on, in words (Grantry has no sign-in data).
    pub recommendation_basis: String,
    pub reviewed_by: Option<UserIdentity>,
    pub reviewed_date_time: Option<DateTime<Utc>>,
    pub apply_result: ApplyResult,
    pub applied_by: Option<UserIdentity>,
    pub applied_date_time: Option<DateTime<Utc>>,
    /// Users who may decide this item (resolved at the run's start).
    pub reviewer_ids: Vec<String>,
    /// In a multi-stage run: the item's decision in each stage it reached, in order. The
    /// item's own `decision` is that of the stage under way; [`ReviewDecision::latest`]
    /// is the latest decision made in any stage.
    #[serde(default)]
    pub stages: Vec<StageDecision>,
}

impl ReviewDecision {
    /// The last stage the item reached (0 in a one-stage run).
    pub fn stage(&self) -> usize {
        self.stages.last().map(|s| s.stage_index).unwrap_or(0)
    }

    /// The latest decision made in any stage, with its justification, reviewer and time
    /// (Graph's decision item shows it across stages).
    pub fn latest(&self) -> (Decision, Option<String>, Option<UserIdentity>, Option<DateTime<Utc>>) {
        if self.decision != Decision::NotReviewed {
            return (self.decision, self.justification.clone(), self.reviewed_by.clone(), self.reviewed_date_time);
        }
        match self.stages.iter().rev().find(|s| s.decision != Decision::NotReviewed) {
            Some(s) => (s.decision, s.justification.clone(), s.reviewed_by.clone(), s.reviewed_date_time),
            None => (Decision::NotReviewed, None, None, None),
        }
    }

    /// The item as the run shows it: with the latest decision made in any stage.
    pub fn shown(&self) -> ReviewDecision {
        let mut out = self.clone();
        if !self.stages.is_empty() {
            (out.decision, out.justification, out.reviewed_by, out.reviewed_date_time) = self.latest();
        }
        out
    }

    /// The item as stage `index` saw it: that stage's decision in the item's fields.
    pub fn in_stage(&self, index: usize) -> Option<ReviewDecision> {
        let s = self.stages.iter().find(|s| s.stage_index == index)?;
        let mut out = self.clone();
        if index != self.stage() {
            out.decision = s.decision;
            out.justification = s.justification.clone();
            out.reviewed_by = s.reviewed_by.clone();
            out.reviewed_date_time = s.reviewed_date_time;
        }
        Some(out)
    }
}

/// What an undecided item ends as when its run ends.
pub fn final_decision(d: Decision, settings: &ReviewScheduleSettings, recommendation: Recommendation) -> Decision {
    if d != Decision::NotReviewed || !settings.default_decision_enabled {
        return d;
    }
    match settings.default_decision {
        DefaultDecision::Approve => Decision::Approve,
        DefaultDecision::Deny => Decision::Deny,
        DefaultDecision::Recommendation => match recommendation {
            Recommendation::Approve => Decision::Approve,
            Recommendation::Deny => Decision::Deny,
            Recommendation::NoInfoAvailable => Decision::NotReviewed,
        },
        DefaultDecision::None => Decision::NotReviewed,
    }
}

/// Whether applying `d` removes the assignment (only a deny does; approve, don't know and
/// not reviewed keep access).
pub fn removes_access(d: Decision) -> bool {
    d == Decision::Deny
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn quarterly_recurrence_steps_three_months_from_the_start() {
        let r = recurrence_of(
            Some(&serde_json::json!({"pattern":{"type":"absoluteMonthly","interval":3},"range":{"type":"noEnd"}})),
            at("2026-01-31T09:00:00Z"),
        );
        assert_eq!(r.occurrence(0), Some(at("2026-01-31T09:00:00Z")));
        assert_eq!(r.occurrence(1), Some(at("2026-04-30T09:00:00Z")));
        assert_eq!(r.occurrence(4), Some(at("2027-01-31T09:00:00Z")));
        assert_eq!(r.next_at_or_after(at("2026-02-01T00:00:00Z")), Some((1, at("2026-04-30T09:00:00Z"))));
    }

    #[test]
    fn yearly_and_weekly_and_one_time() {
        let start = at("2026-03-02T00:00:00Z");
        let yearly = recurrence_of(Some(&serde_json::json!({"pattern":{"type":"absoluteYearly","interval":1}})), start);
        assert_eq!(yearly.occurrence(1), Some(at("2027-03-02T00:00:00Z")));
        let weekly = recurrence_of(Some(&serde_json::json!({"pattern":{"type":"weekly","interval":1}})), start);
        assert_eq!(weekly.occurrence(2), Some(at("2026-03-16T00:00:00Z")));
        let once = recurrence_of(None, start);
        assert_eq!(once.occurrence(0), Some(start));
        assert_eq!(once.occurrence(1), None);
    }

    #[test]
    fn default_decision_fills_only_unanswered_items() {
        let settings = ReviewScheduleSettings {
            instance_duration_in_days: 7,
            recurrence: recurrence_of(None, at("2026-01-01T00:00:00Z")),
            default_decision_enabled: true,
            default_decision: DefaultDecision::Deny,
            auto_apply_decisions_enabled: true,
            recommendations_enabled: true,
            justification_required_on_approval: false,
            mail_notifications_enabled: true,
            reminder_notifications_enabled: true,
        };
        let rec = Recommendation::NoInfoAvailable;
        assert_eq!(final_decision(Decision::NotReviewed, &settings, rec), Decision::Deny);
        assert_eq!(final_decision(Decision::Approve, &settings, rec), Decision::Approve);
        assert_eq!(final_decision(Decision::DontKnow, &settings, rec), Decision::DontKnow);
        let by_recommendation =
            ReviewScheduleSettings { default_decision: DefaultDecision::Recommendation, ..settings };
        assert_eq!(final_decision(Decision::NotReviewed, &by_recommendation, Recommendation::Deny), Decision::Deny);
        assert_eq!(final_decision(Decision::NotReviewed, &by_recommendation, rec), Decision::NotReviewed);
        let off = ReviewScheduleSettings { default_decision_enabled: false, ..by_recommendation };
        assert_eq!(final_decision(Decision::NotReviewed, &off, Recommendation::Deny), Decision::NotReviewed);
        assert!(removes_access(Decision::Deny) && !removes_access(Decision::DontKnow));
    }
}
