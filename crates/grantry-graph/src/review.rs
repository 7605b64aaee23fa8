//! Access reviews on the wire: `accessReviewScheduleDefinition`, `accessReviewInstance`,
//! `accessReviewInstanceDecisionItem` and `accessReviewReviewer`, rendered from typed
//! structs. The dialects differ in a few members: beta adds `backupReviewers` on the
//! definition, `errors` on the instance, and `target` and `principalResourceMembership` on
//! the decision item; v1.0 has none of them.

use crate::render::Dialect;
use chrono::{DateTime, SecondsFormat, Utc};
use grantry_domain::model::{
    ContactedReviewer, RecurrenceKind, ReviewDecision, ReviewDefinition, ReviewInstance, ReviewScheduleSettings,
    ReviewStage, Reviewer, StageSetting, UserIdentity,
};
use serde::{Serialize, Serializer};
use serde_json::Value;

const ZERO_ID: &str = "00000000-0000-0000-0000-000000000000";

fn ts<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn ts_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ts(t, s),
        None => s.serialize_none(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireIdentity {
    pub id: String,
    pub display_name: String,
    pub user_principal_name: String,
}

impl WireIdentity {
    fn of(u: Option<&UserIdentity>) -> WireIdentity {
        match u {
            Some(u) => WireIdentity {
                id: u.id.clone(),
                display_name: u.display_name.clone(),
                user_principal_name: u.user_principal_name.clone(),
            },
            // Graph shows an all-zero identity until someone has acted.
            None => {
                WireIdentity { id: ZERO_ID.into(), display_name: String::new(), user_principal_name: String::new() }
            }
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryScope {
    #[serde(rename = "@odata.type")]
    pub odata_type: &'static str,
    pub query: String,
    pub query_type: &'static str,
    pub query_root: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewerScope {
    pub query: String,
    pub query_type: &'static str,
    pub query_root: Option<&'static str>,
}

/// `accessReviewReviewerScope[]`; a self-review has none (`[]`).
fn reviewer_scopes(reviewers: &[Reviewer]) -> Vec<ReviewerScope> {
    reviewers
        .iter()
        .filter(|r| **r != Reviewer::SelfReview)
        .map(|r| {
            let (query, query_root) = r.query();
            ReviewerScope { query, query_type: "MicrosoftGraph", query_root }
        })
        .collect()
}

fn scope(query: String) -> QueryScope {
    QueryScope {
        odata_type: "#microsoft.graph.accessReviewQueryScope",
        query,
        query_type: "MicrosoftGraph",
        query_root: None,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecurrencePattern {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub interval: u32,
    pub month: u32,
    pub day_of_month: u32,
    pub days_of_week: Vec<String>,
    pub first_day_of_week: &'static str,
    pub index: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecurrenceRange {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub number_of_occurrences: u32,
    pub recurrence_time_zone: Option<String>,
    pub start_date: String,
    pub end_date: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatternedRecurrence {
    pub pattern: RecurrencePattern,
    pub range: RecurrenceRange,
}

#[derive(Serialize)]
pub struct ApplyAction {
    #[serde(rename = "@odata.type")]
    pub odata_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSettings {
    pub mail_notifications_enabled: bool,
    pub reminder_notifications_enabled: bool,
    pub justification_required_on_approval: bool,
    pub default_decision_enabled: bool,
    pub default_decision: &'static str,
    pub instance_duration_in_days: i32,
    pub auto_apply_decisions_enabled: bool,
    pub recommendations_enabled: bool,
    pub recommendation_look_back_duration: Option<String>,
    pub decision_histories_for_reviewers_enabled: bool,
    pub recurrence: PatternedRecurrence,
    pub apply_actions: Vec<ApplyAction>,
}

fn settings(s: &ReviewScheduleSettings) -> ScheduleSettings {
    let r = &s.recurrence;
    ScheduleSettings {
        mail_notifications_enabled: s.mail_notifications_enabled,
        reminder_notifications_enabled: s.reminder_notifications_enabled,
        justification_required_on_approval: s.justification_required_on_approval,
        default_decision_enabled: s.default_decision_enabled,
        default_decision: s.default_decision.as_str(),
        instance_duration_in_days: s.instance_duration_in_days,
        auto_apply_decisions_enabled: s.auto_apply_decisions_enabled,
        recommendations_enabled: s.recommendations_enabled,
        recommendation_look_back_duration: None,
        decision_histories_for_reviewers_enabled: false,
        recurrence: PatternedRecurrence {
            pattern: RecurrencePattern {
                kind: match r.kind {
                    RecurrenceKind::Weekly => "weekly",
                    RecurrenceKind::AbsoluteMonthly => "absoluteMonthly",
                },
                interval: r.interval,
                month: 0,
                day_of_month: if r.kind == RecurrenceKind::AbsoluteMonthly { r.day_of_month() } else { 0 },
                days_of_week: Vec::new(),
                first_day_of_week: "sunday",
                index: "first",
            },
            range: RecurrenceRange {
                kind: if r.recurring { "noEnd" } else { "numbered" },
                number_of_occurrences: if r.recurring { 0 } else { 1 },
                recurrence_time_zone: None,
                start_date: r.start_date().to_string(),
                end_date: None,
            },
        },
        apply_actions: vec![ApplyAction { odata_type: "#microsoft.graph.removeAccessApplyAction" }],
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionWire {
    pub id: String,
    pub display_name: String,
    pub description_for_admins: String,
    pub description_for_reviewers: String,
    pub created_by: WireIdentity,
    #[serde(serialize_with = "ts")]
    pub created_date_time: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub last_modified_date_time: DateTime<Utc>,
    pub status: &'static str,
    pub scope: QueryScope,
    pub instance_enumeration_scope: Option<QueryScope>,
    pub reviewers: Vec<ReviewerScope>,
    pub fallback_reviewers: Vec<ReviewerScope>,
    /// Beta only: the deprecated name of `fallbackReviewers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_reviewers: Option<Vec<ReviewerScope>>,
    pub additional_notification_recipients: Vec<Value>,
    pub stage_settings: Vec<StageSettingWire>,
    pub settings: ScheduleSettings,
}

pub fn definition(d: &ReviewDefinition, dialect: Dialect) -> DefinitionWire {
    DefinitionWire {
        id: d.id.clone(),
        display_name: d.display_name.clone(),
        description_for_admins: d.description_for_admins.clone(),
        description_for_reviewers: d.description_for_reviewers.clone(),
        created_by: WireIdentity {
            id: ZERO_ID.into(),
            display_name: d.created_by.clone().unwrap_or_default(),
            user_principal_name: String::new(),
        },
        created_date_time: d.created_date_time,
        last_modified_date_time: d.last_modified_date_time,
        status: d.status.as_str(),
        scope: scope(d.scope_query()),
        instance_enumeration_scope: None,
        reviewers: reviewer_scopes(&d.reviewers),
        fallback_reviewers: reviewer_scopes(&d.fallback_reviewers),
        backup_reviewers: dialect.is_beta().then(|| reviewer_scopes(&d.fallback_reviewers)),
        additional_notification_recipients: Vec::new(),
        stage_settings: d.stage_settings.iter().map(stage_setting).collect(),
        settings: settings(&d.settings),
    }
}

/// `accessReviewStageSettings`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageSettingWire {
    pub stage_id: String,
    pub depends_on: Vec<String>,
    pub duration_in_days: i32,
    pub decisions_that_will_move_to_next_stage: Vec<String>,
    pub reviewers: Vec<ReviewerScope>,
    pub fallback_reviewers: Vec<ReviewerScope>,
    pub recommendations_enabled: bool,
    pub recommendation_insight_settings: Vec<Value>,
}

fn stage_setting(s: &StageSetting) -> StageSettingWire {
    StageSettingWire {
        stage_id: s.stage_id.clone(),
        depends_on: s.depends_on.clone(),
        duration_in_days: s.duration_in_days,
        decisions_that_will_move_to_next_stage: s.decisions_that_will_move_to_next_stage.clone().unwrap_or_default(),
        reviewers: reviewer_scopes(&s.reviewers),
        fallback_reviewers: reviewer_scopes(&s.fallback_reviewers),
        recommendations_enabled: s.recommendations_enabled.unwrap_or(true),
        recommendation_insight_settings: Vec::new(),
    }
}

/// `accessReviewStage`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StageWire {
    pub id: String,
    #[serde(serialize_with = "ts")]
    pub start_date_time: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub end_date_time: DateTime<Utc>,
    pub status: &'static str,
    pub reviewers: Vec<ReviewerScope>,
    pub fallback_reviewers: Vec<ReviewerScope>,
}

pub fn stage(s: &ReviewStage) -> StageWire {
    StageWire {
        id: s.id.clone(),
        start_date_time: s.start_date_time,
        end_date_time: s.end_date_time,
        status: s.status.as_str(),
        reviewers: reviewer_scopes(&s.reviewers),
        fallback_reviewers: reviewer_scopes(&s.fallback_reviewers),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceWire {
    pub id: String,
    #[serde(serialize_with = "ts")]
    pub start_date_time: DateTime<Utc>,
    #[serde(serialize_with = "ts")]
    pub end_date_time: DateTime<Utc>,
    pub status: &'static str,
    pub scope: QueryScope,
    pub reviewers: Vec<ReviewerScope>,
    pub fallback_reviewers: Vec<ReviewerScope>,
    /// Beta only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<Value>>,
}

pub fn instance(i: &ReviewInstance, d: &ReviewDefinition, dialect: Dialect) -> InstanceWire {
    InstanceWire {
        id: i.id.clone(),
        start_date_time: i.start_date_time,
        end_date_time: i.end_date_time,
        status: i.status.as_str(),
        scope: scope(d.scope_query()),
        reviewers: reviewer_scopes(&i.reviewers),
        fallback_reviewers: reviewer_scopes(&i.fallback_reviewers),
        errors: dialect.is_beta().then(Vec::new),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrincipalWire {
    #[serde(rename = "@odata.type")]
    pub odata_type: &'static str,
    pub id: String,
    pub display_name: String,
    pub user_principal_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyResourceWire {
    #[serde(rename = "@odata.type")]
    pub odata_type: &'static str,
    pub id: String,
    pub display_name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub access_package_id: String,
    pub access_package_display_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserTargetWire {
    #[serde(rename = "@odata.type")]
    pub odata_type: &'static str,
    pub user_id: String,
    pub user_display_name: String,
    pub user_principal_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipWire {
    pub membership_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionWire {
    pub id: String,
    /// The instance's id, despite the name (as in Graph).
    pub access_review_id: String,
    pub decision: &'static str,
    pub justification: Option<String>,
    pub recommendation: &'static str,
    /// What the recommendation rests on, as an OData annotation of `recommendation`.
    #[serde(rename = "recommendation@grantry.basis")]
    pub recommendation_basis: String,
    pub apply_result: &'static str,
    #[serde(serialize_with = "ts_opt")]
    pub reviewed_date_time: Option<DateTime<Utc>>,
    #[serde(serialize_with = "ts_opt")]
    pub applied_date_time: Option<DateTime<Utc>>,
    pub reviewed_by: WireIdentity,
    pub applied_by: WireIdentity,
    pub principal: PrincipalWire,
    pub principal_link: String,
    pub resource: PolicyResourceWire,
    pub resource_link: String,
    /// Beta only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<UserTargetWire>,
    /// Beta only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal_resource_membership: Option<MembershipWire>,
}

/// Renders a decision item; links are absolute under `base` (the server's public URL).
pub fn decision(x: &ReviewDecision, dialect: Dialect, base: &str) -> DecisionWire {
    let root = dialect.root();
    DecisionWire {
        id: x.id.clone(),
        access_review_id: x.instance_id.clone(),
        decision: x.decision.as_str(),
        justification: x.justification.clone(),
        recommendation: x.recommendation.as_str(),
        recommendation_basis: x.recommendation_basis.clone(),
        apply_result: x.apply_result.as_str(),
        reviewed_date_time: x.reviewed_date_time,
        applied_date_time: x.applied_date_time,
        reviewed_by: WireIdentity::of(x.reviewed_by.as_ref()),
        applied_by: WireIdentity::of(x.applied_by.as_ref()),
        principal: PrincipalWire {
            odata_type: "#microsoft.graph.userIdentity",
            id: x.principal.id.clone(),
            display_name: x.principal.display_name.clone(),
            user_principal_name: x.principal.user_principal_name.clone(),
        },
        principal_link: format!("{base}/{root}/users/{}", x.principal.id),
        resource: PolicyResourceWire {
            odata_type: "#microsoft.graph.accessReviewInstanceDecisionItemAccessPackageAssignmentPolicyResource",
            id: x.policy_id.clone(),
            display_name: x.access_package_display_name.clone(),
            kind: "AccessPackageAssignmentPolicy",
            access_package_id: x.access_package_id.clone(),
            access_package_display_name: x.access_package_display_name.clone(),
        },
        resource_link: format!(
            "{base}/{root}/identityGovernance/entitlementManagement/{}/{}",
            dialect.pick("assignmentPolicies", "accessPackageAssignmentPolicies"),
            x.policy_id
        ),
        target: dialect.is_beta().then(|| UserTargetWire {
            odata_type: "#microsoft.graph.accessReviewInstanceDecisionItemUserTarget",
            user_id: x.principal.id.clone(),
            user_display_name: x.principal.display_name.clone(),
            user_principal_name: x.principal.user_principal_name.clone(),
        }),
        principal_resource_membership: dialect.is_beta().then_some(MembershipWire { membership_type: "direct" }),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactedReviewerWire {
    pub id: String,
    pub display_name: String,
    pub user_principal_name: String,
    #[serde(serialize_with = "ts")]
    pub created_date_time: DateTime<Utc>,
}

pub fn contacted_reviewer(r: &ContactedReviewer) -> ContactedReviewerWire {
    ContactedReviewerWire {
        id: r.id.clone(),
        display_name: r.display_name.clone(),
        user_principal_name: r.user_principal_name.clone(),
        created_date_time: r.created_date_time,
    }
}

/// A typed rendering as a JSON value, for the response helpers.
pub fn to_json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
