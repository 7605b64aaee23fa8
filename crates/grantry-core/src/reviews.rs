//! Access reviews of access package assignments (`/identityGovernance/accessReviews`).
//!
//! A policy whose review settings are on has one review definition, written in the same
//! transaction as the policy ([`sync_for_policy`]) and removed with it. As in Entra, the
//! access reviews API does not create or reshape these definitions: that is done through the
//! policy. Who may see what:
//! - the token needs `AccessReview.Read.All` (reads) or `AccessReview.ReadWrite.All`;
//! - applications act tenant-wide; Global Administrator, Identity Governance Administrator
//!   and User Administrator read and manage every review; Global Reader, Security Reader and
//!   Security Administrator read them;
//! - entitlement management roles on the policy's catalog: any catalog role reads its
//!   reviews, Access package manager and Catalog owner manage them;
//! - a reviewer reads the runs they review and the items they decide, with no role.

use crate::auth::CatalogRight;
use crate::jobs::JobContext;
use crate::listing::{ListOptions, Listed};
use crate::{App, Caller};
use chrono::{DateTime, Utc};
use grantry_domain::model::{
    AccessPackage, ApplyResult, Assignment, ContactedReviewer, Decision, DefinitionStatus, InstanceStatus, Policy,
    Recommendation, ReviewDecision, ReviewDefinition, ReviewInstance, ReviewStage, Reviewer, StageDecision, Subject,
    User, UserIdentity, directory_roles as dr, final_decision, removes_access,
};
use grantry_domain::{Error, Result, ids};
use grantry_store::query::{Field, Kind, Sql};
use grantry_store::{Conn, Value, repo};
use serde_json::json;

pub const REVIEW_READ: &[&str] = &["AccessReview.Read.All", "AccessReview.ReadWrite.All"];
pub const REVIEW_WRITE: &[&str] = &["AccessReview.ReadWrite.All"];

/// Directory roles that read every access review.
const READ_ROLES: &[&str] = &[
    dr::GLOBAL_ADMINISTRATOR,
    dr::IDENTITY_GOVERNANCE_ADMINISTRATOR,
    dr::USER_ADMINISTRATOR,
    dr::GLOBAL_READER,
    dr::SECURITY_READER,
    dr::SECURITY_ADMINISTRATOR,
];
/// Directory roles that manage every access review.
const WRITE_ROLES: &[&str] = &[dr::GLOBAL_ADMINISTRATOR, dr::IDENTITY_GOVERNANCE_ADMINISTRATOR, dr::USER_ADMINISTRATOR];

fn reads_all(caller: &Caller) -> bool {
    caller.is_app() || READ_ROLES.iter().any(|r| caller.has_directory_role(r))
}

fn manages_all(caller: &Caller) -> bool {
    caller.is_app() || WRITE_ROLES.iter().any(|r| caller.has_directory_role(r))
}

/// Whether the caller may read every review of `catalog_id` (not only their own items).
pub fn may_read_catalog(caller: &Caller, catalog_id: &str) -> bool {
    reads_all(caller) || caller.catalog_right(catalog_id).is_some()
}

/// Whether the caller may stop, apply, reset and remind for reviews of `catalog_id`.
pub fn may_manage_catalog(caller: &Caller, catalog_id: &str) -> bool {
    manages_all(caller) || caller.catalog_right(catalog_id).is_some_and(|r| r >= CatalogRight::ManagePackages)
}

fn not_found_definition(id: &str) -> Error {
    Error::not_found("access review schedule definition", id)
}

fn not_found_instance(id: &str) -> Error {
    Error::not_found("access review instance", id)
}

// ---------------------------------------------------------------------------------------
// The definition follows its policy.

/// Creates, updates or retires the review definition of `policy`, in the policy's write.
/// Turning reviews off keeps the definition (and its past runs) as `Completed`; no further
/// run opens. Turning them on again resumes the same series.
pub fn sync_for_policy(c: &mut dyn Conn, now: DateTime<Utc>, policy: &Policy) -> Result<()> {
    let existing: Option<ReviewDefinition> = repo::find_one(c, "policy_id = ?", &[Value::from(&policy.id)])?;
    let package_name = repo::get::<AccessPackage>(c, &policy.access_package_id)?
        .map(|p| p.display_name)
        .unwrap_or_else(|| policy.access_package_id.clone());
    match (ReviewDefinition::from_policy(policy, &package_name, existing.as_ref(), now), existing) {
        (Some(mut def), existing) => {
            if def.status == DefinitionStatus::NotStarted {
                def.next_occurrence =
                    def.settings.recurrence.first_current(now, def.settings.instance_duration_in_days);
            }
            if existing.as_ref().is_some_and(|e| e.status == DefinitionStatus::Completed) {
                // Resumed: the next run is the first one due from now on.
                def.status = DefinitionStatus::InProgress;
                def.next_occurrence =
                    def.settings.recurrence.next_at_or_after(now).map(|(n, _)| n).unwrap_or(def.next_occurrence);
            }
            if existing.is_some() {
                repo::update(c, &def)?;
            } else {
                repo::insert(c, &def)?;
            }
            schedule_next(c, &def)
        }
        (None, Some(mut existing)) if existing.status != DefinitionStatus::Completed => {
            existing.status = DefinitionStatus::Completed;
            existing.last_modified_date_time = now;
            repo::update(c, &existing)?;
            crate::jobs::cancel(c, JOB_OPEN, &existing.id)
        }
        _ => Ok(()),
    }
}

/// Removes the review series of a deleted policy, with its runs and items.
pub fn remove_for_policy(c: &mut dyn Conn, policy_id: &str) -> Result<()> {
    let Some(def) = repo::find_one::<ReviewDefinition>(c, "policy_id = ?", &[Value::from(policy_id)])? else {
        return Ok(());
    };
    remove_definition(c, &def)
}

fn remove_definition(c: &mut dyn Conn, def: &ReviewDefinition) -> Result<()> {
    let instances: Vec<ReviewInstance> = repo::find_all(c, "definition_id = ?", &[Value::from(&def.id)])?;
    for i in &instances {
        c.execute("DELETE FROM review_decision_reviewers WHERE instance_id = ?", &[Value::from(&i.id)])?;
        c.execute("DELETE FROM review_decisions WHERE instance_id = ?", &[Value::from(&i.id)])?;
        for kind in [JOB_END, JOB_APPLY, JOB_REMIND, JOB_ITEMS, JOB_STAGE, JOB_REASSIGN] {
            crate::jobs::cancel(c, kind, &i.id)?;
        }
    }
    c.execute("DELETE FROM review_instances WHERE definition_id = ?", &[Value::from(&def.id)])?;
    crate::jobs::cancel(c, JOB_OPEN, &def.id)?;
    repo::delete::<ReviewDefinition>(c, &def.id)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Reads.

/// The scope query of a definition, as SQL over `review_definitions`, so
/// `contains(scope/query, 'accessPackageAssignments')` works as in Graph.
const SCOPE_QUERY_SQL: &str = "('/identityGovernance/entitlementManagement/accessPackageAssignments?$filter=(accessPackageId eq ''' || json_extract(body, '$.accessPackageId') || ''' and assignmentPolicyId eq ''' || policy_id || ''')')";

fn definition_status(s: &str) -> Option<&'static str> {
    ["NotStarted", "InProgress", "Completed"].into_iter().find(|v| v.eq_ignore_ascii_case(s.trim()))
}

fn definition_statuses() -> String {
    "NotStarted, InProgress, Completed".into()
}

pub const DEFINITION_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field { names: &["displayName"], sql: "display_name", kind: Kind::TextIgnoreCase },
    Field {
        names: &["status"],
        sql: "status",
        kind: Kind::Enum { normalize: definition_status, allowed: definition_statuses },
    },
    Field { names: &["createdDateTime"], sql: "created_us", kind: Kind::Time },
    Field {
        names: &["scope/query", "scope/microsoft.graph.accessReviewQueryScope/query"],
        sql: SCOPE_QUERY_SQL,
        kind: Kind::Text,
    },
];

fn instance_status(s: &str) -> Option<&'static str> {
    grantry_domain::model::InstanceStatus::parse(s).map(|v| v.as_str())
}

fn instance_statuses() -> String {
    "InProgress, Completed, Applying, Applied".into()
}

pub const INSTANCE_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field {
        names: &["status"],
        sql: "status",
        kind: Kind::Enum { normalize: instance_status, allowed: instance_statuses },
    },
    Field { names: &["startDateTime"], sql: "start_us", kind: Kind::Time },
    Field { names: &["endDateTime"], sql: "end_us", kind: Kind::Time },
];

fn decision_value(s: &str) -> Option<&'static str> {
    grantry_domain::model::Decision::parse(s).map(|v| v.as_str())
}

fn decision_values() -> String {
    "NotReviewed, Approve, Deny, DontKnow".into()
}

pub const DECISION_FIELDS: &[Field] = &[
    crate::listing::ID,
    Field {
        names: &["decision"],
        sql: "decision",
        kind: Kind::Enum { normalize: decision_value, allowed: decision_values },
    },
    Field { names: &["applyResult"], sql: "apply_result", kind: Kind::Text },
    Field { names: &["principal/id"], sql: "principal_id", kind: Kind::Id },
];

/// Definitions the caller sees: all, those of catalogs where they hold a role, and those
/// with a run they review.
fn definition_scope(caller: &Caller) -> Vec<Sql> {
    if reads_all(caller) {
        return Vec::new();
    }
    let mut params = Vec::new();
    let mut clauses = Vec::new();
    if let Some(catalogs) = caller.readable_catalogs()
        && !catalogs.is_empty()
    {
        clauses.push(format!("catalog_id IN ({})", vec!["?"; catalogs.len()].join(", ")));
        params.extend(catalogs.into_iter().map(Value::from));
    }
    clauses.push(
        "id IN (SELECT i.definition_id FROM review_instances i WHERE i.id IN (SELECT r.instance_id FROM review_decision_reviewers r WHERE r.reviewer_id = ?))"
            .into(),
    );
    params.push(Value::from(caller.user_id().unwrap_or_default()));
    vec![Sql { text: format!("({})", clauses.join(" OR ")), params }]
}

fn reviews_in(c: &mut dyn Conn, user_id: Option<&str>, instance_id: &str) -> Result<bool> {
    let Some(uid) = user_id else { return Ok(false) };
    Ok(c.query_one(
        "SELECT 1 FROM review_decision_reviewers WHERE instance_id = ? AND reviewer_id = ?",
        &[Value::from(instance_id), Value::from(uid)],
    )?
    .is_some())
}

fn reviews_in_definition(c: &mut dyn Conn, user_id: Option<&str>, definition_id: &str) -> Result<bool> {
    let Some(uid) = user_id else { return Ok(false) };
    Ok(c.query_one(
        "SELECT 1 FROM review_decision_reviewers r JOIN review_instances i ON i.id = r.instance_id WHERE i.definition_id = ? AND r.reviewer_id = ?",
        &[Value::from(definition_id), Value::from(uid)],
    )?
    .is_some())
}

pub async fn list_definitions(app: &App, caller: &Caller, options: ListOptions) -> Result<Listed<ReviewDefinition>> {
    caller.require(REVIEW_READ)?;
    let scope = definition_scope(caller);
    app.store.read(move |c| crate::listing::list(c, DEFINITION_FIELDS, scope, &options)).await
}

/// Definitions with at least one run the caller reviews (`filterByCurrentUser(on='reviewer')`).
pub async fn list_my_definitions(app: &App, caller: &Caller, options: ListOptions) -> Result<Listed<ReviewDefinition>> {
    caller.require(REVIEW_READ)?;
    let uid = caller.user_id().unwrap_or_default().to_string();
    let scope = vec![Sql {
        text: "id IN (SELECT i.definition_id FROM review_instances i WHERE i.id IN (SELECT r.instance_id FROM review_decision_reviewers r WHERE r.reviewer_id = ?))".into(),
        params: vec![Value::from(uid)],
    }];
    app.store.read(move |c| crate::listing::list(c, DEFINITION_FIELDS, scope, &options)).await
}

/// Loads a definition the caller may see; `full` tells whether they see all of it (not only
/// as a reviewer).
fn visible_definition(c: &mut dyn Conn, caller: &Caller, id: &str) -> Result<(ReviewDefinition, bool)> {
    let def = repo::get::<ReviewDefinition>(c, &ids::normalize(id))?.ok_or_else(|| not_found_definition(id))?;
    if may_read_catalog(caller, &def.catalog_id) {
        return Ok((def, true));
    }
    if reviews_in_definition(c, caller.user_id(), &def.id)? {
        return Ok((def, false));
    }
    Err(not_found_definition(id))
}

pub async fn get_definition(app: &App, caller: &Caller, id: &str) -> Result<ReviewDefinition> {
    caller.require(REVIEW_READ)?;
    let caller = caller.clone();
    let id = id.to_string();
    app.store.read(move |c| visible_definition(c, &caller, &id).map(|(d, _)| d)).await
}

/// A run of a definition, checked to belong to it and to be visible to the caller; the
/// flag tells whether the caller sees all its items.
fn visible_instance(
    c: &mut dyn Conn,
    caller: &Caller,
    definition_id: &str,
    instance_id: &str,
) -> Result<(ReviewDefinition, ReviewInstance, bool)> {
    let (def, full) = visible_definition(c, caller, definition_id)?;
    let inst = repo::get::<ReviewInstance>(c, &ids::normalize(instance_id))?
        .filter(|i| i.definition_id == def.id)
        .ok_or_else(|| not_found_instance(instance_id))?;
    if full {
        return Ok((def, inst, true));
    }
    if reviews_in(c, caller.user_id(), &inst.id)? {
        return Ok((def, inst, false));
    }
    Err(not_found_instance(instance_id))
}

pub async fn list_instances(
    app: &App,
    caller: &Caller,
    definition_id: &str,
    options: ListOptions,
    only_mine: bool,
) -> Result<Listed<ReviewInstance>> {
    caller.require(REVIEW_READ)?;
    let caller = caller.clone();
    let definition_id = definition_id.to_string();
    app.store
        .read(move |c| {
            let (def, full) = visible_definition(c, &caller, &definition_id)?;
            let mut scope = vec![Sql { text: "definition_id = ?".into(), params: vec![Value::from(&def.id)] }];
            if only_mine || !full {
                scope.push(Sql {
                    text: "id IN (SELECT r.instance_id FROM review_decision_reviewers r WHERE r.reviewer_id = ?)"
                        .into(),
                    params: vec![Value::from(caller.user_id().unwrap_or_default())],
                });
            }
            crate::listing::list(c, INSTANCE_FIELDS, scope, &options)
        })
        .await
}

pub async fn get_instance(
    app: &App,
    caller: &Caller,
    definition_id: &str,
    instance_id: &str,
) -> Result<ReviewInstance> {
    caller.require(REVIEW_READ)?;
    let caller = caller.clone();
    let (d, i) = (definition_id.to_string(), instance_id.to_string());
    app.store.read(move |c| visible_instance(c, &caller, &d, &i).map(|(_, inst, _)| inst)).await
}

/// The decision items a call addresses: those of a run (`…/instances/{i}/decisions`), or
/// those that reached one of its stages (`…/stages/{s}/decisions`). Reads and decisions go
/// through one path for both.
#[derive(Debug, Clone, Copy)]
pub struct ItemsAt<'a> {
    pub definition_id: &'a str,
    pub instance_id: &'a str,
    pub stage_id: Option<&'a str>,
}

impl<'a> ItemsAt<'a> {
    /// The items of a run.
    pub fn run(definition_id: &'a str, instance_id: &'a str) -> Self {
        ItemsAt { definition_id, instance_id, stage_id: None }
    }

    /// The items that reached stage `stage_id` of a run.
    pub fn stage(definition_id: &'a str, instance_id: &'a str, stage_id: &'a str) -> Self {
        ItemsAt { definition_id, instance_id, stage_id: Some(stage_id) }
    }

    fn owned(&self) -> (String, String, Option<String>) {
        (self.definition_id.to_string(), self.instance_id.to_string(), self.stage_id.map(str::to_string))
    }
}

/// Where an [`ItemsAt`] led: the run's ids as stored and, for a stage, the stage's id and
/// position.
#[derive(Debug, Clone)]
pub struct ItemsPlace {
    pub definition_id: String,
    pub instance_id: String,
    pub stage: Option<(String, usize)>,
}

impl ItemsPlace {
    /// An item as shown here: in a stage, with that stage's decision; in a run, with the
    /// latest decision any stage made (Graph's decision item shows it across stages).
    pub fn show(&self, item: &ReviewDecision) -> ReviewDecision {
        match &self.stage {
            Some((_, index)) => item.in_stage(*index).unwrap_or_else(|| item.clone()),
            None => item.shown(),
        }
    }
}

/// The run an [`ItemsAt`] names, visible to the caller (with whether they see all of it),
/// and the place it leads to.
fn items_place(
    c: &mut dyn Conn,
    caller: &Caller,
    (d, i, s): (&str, &str, Option<&str>),
) -> Result<(ReviewInstance, bool, ItemsPlace)> {
    let (_, inst, full) = visible_instance(c, caller, d, i)?;
    let stage = match s {
        Some(s) => {
            let stage = find_stage(&inst, s)?;
            Some((stage.id.clone(), stage.index))
        }
        None => None,
    };
    let place = ItemsPlace { definition_id: inst.definition_id.clone(), instance_id: inst.id.clone(), stage };
    Ok((inst, full, place))
}

/// The decision items at `at` (with `only_mine`, those the caller reviews; a reviewer
/// without a role sees only theirs). A stage lists the items that reached it. Items are as
/// stored; [`ItemsPlace::show`] gives them as Graph shows them there.
pub async fn list_decisions(
    app: &App,
    caller: &Caller,
    at: ItemsAt<'_>,
    options: ListOptions,
    only_mine: bool,
) -> Result<(ItemsPlace, Listed<ReviewDecision>)> {
    caller.require(REVIEW_READ)?;
    let caller = caller.clone();
    let (d, i, s) = at.owned();
    app.store
        .read(move |c| {
            let (inst, full, place) = items_place(c, &caller, (&d, &i, s.as_deref()))?;
            let mut scope = vec![Sql { text: "instance_id = ?".into(), params: vec![Value::from(&inst.id)] }];
            if let Some((_, index)) = &place.stage {
                scope.push(Sql { text: "stage >= ?".into(), params: vec![Value::from(*index as i64)] });
            }
            if only_mine || !full {
                scope.push(mine_condition(&caller, &inst.id));
            }
            let page = crate::listing::list(c, DECISION_FIELDS, scope, &options)?;
            Ok((place, page))
        })
        .await
}

fn mine_condition(caller: &Caller, instance_id: &str) -> Sql {
    Sql {
        text: "id IN (SELECT r.decision_id FROM review_decision_reviewers r WHERE r.instance_id = ? AND r.reviewer_id = ?)"
            .into(),
        params: vec![Value::from(instance_id), Value::from(caller.user_id().unwrap_or_default())],
    }
}

fn is_reviewer_of(c: &mut dyn Conn, caller: &Caller, decision_id: &str) -> Result<bool> {
    let Some(uid) = caller.user_id() else { return Ok(false) };
    Ok(c.query_one(
        "SELECT 1 FROM review_decision_reviewers WHERE decision_id = ? AND reviewer_id = ?",
        &[Value::from(decision_id), Value::from(uid)],
    )?
    .is_some())
}

/// One decision item at `at`: it must belong to the run (and, for a stage, have reached it)
/// and be visible to the caller.
pub async fn get_decision(
    app: &App,
    caller: &Caller,
    at: ItemsAt<'_>,
    decision_id: &str,
) -> Result<(ItemsPlace, ReviewDecision)> {
    caller.require(REVIEW_READ)?;
    let caller = caller.clone();
    let (d, i, s) = at.owned();
    let x = decision_id.to_string();
    app.store
        .read(move |c| {
            let (inst, full, place) = items_place(c, &caller, (&d, &i, s.as_deref()))?;
            let not_found = || Error::not_found("access review decision item", &x);
            let item = repo::get::<ReviewDecision>(c, &ids::normalize(&x))?
                .filter(|it| it.instance_id == inst.id)
                .filter(|it| place.stage.as_ref().is_none_or(|(_, index)| it.in_stage(*index).is_some()))
                .ok_or_else(not_found)?;
            if !full && !is_reviewer_of(c, &caller, &item.id)? {
                return Err(not_found());
            }
            Ok((place, item))
        })
        .await
}

// ---------------------------------------------------------------------------------------
// The lifecycle, driven by jobs on the injected clock.

/// Opens the next run of a series when its start comes (entity: the definition).
pub const JOB_OPEN: &str = "review.open";
/// Ends a run when its time is up or it was stopped: default decisions, then auto-apply
/// (entity: the instance).
pub const JOB_END: &str = "review.end";
/// Applies the decisions of a completed run (`applyDecisions`; entity: the instance).
pub const JOB_APPLY: &str = "review.apply";
/// Reminds reviewers with undecided items at a run's midpoint (entity: the instance).
pub const JOB_REMIND: &str = "review.remind";
/// Lists the next items of a run being opened (entity: the instance).
pub const JOB_ITEMS: &str = "review.items";
/// Ends a stage of a multi-stage run and moves its items on to the next (entity: the instance).
pub const JOB_STAGE: &str = "review.stage";
/// Resolves the reviewers of a run's items again after its reviewers changed (entity: the instance).
pub const JOB_REASSIGN: &str = "review.reassign";

/// Items handled per job run: a run with many items is opened, ended and applied over
/// several short transactions, so foreground writes never wait long behind it.
pub const CHUNK: usize = 200;
/// Items ended or applied per job run: applying a denial removes an assignment (requests,
/// memberships, audit, mail), so these runs take fewer items and foreground writes get
/// the writer between them.
pub const APPLY_CHUNK: usize = 50;

/// Job kinds handled here, for the runner's table.
pub fn handler(kind: &str) -> Option<crate::jobs::Handler> {
    match kind {
        JOB_OPEN => Some(open_job),
        JOB_END => Some(end_job),
        JOB_APPLY => Some(apply_job),
        JOB_REMIND => Some(remind_job),
        JOB_ITEMS => Some(items_job),
        JOB_STAGE => Some(stage_job),
        JOB_REASSIGN => Some(reassign_job),
        _ => None,
    }
}

/// Schedules the opening of the definition's next run (replacing any scheduled one).
fn schedule_next(c: &mut dyn Conn, def: &ReviewDefinition) -> Result<()> {
    crate::jobs::cancel(c, JOB_OPEN, &def.id)?;
    if def.status == DefinitionStatus::Completed {
        return Ok(());
    }
    if let Some(start) = def.settings.recurrence.occurrence(def.next_occurrence) {
        crate::jobs::enqueue(c, JOB_OPEN, &def.id, start, json!({}))?;
    }
    Ok(())
}

fn after_of(job: &crate::jobs::Job) -> Option<i64> {
    job.payload.get("after").and_then(serde_json::Value::as_i64)
}

/// Job `review.open`: creates run `next_occurrence` of the series (once), then lists one
/// item per assignment of the policy active at the run's start, `CHUNK` at a time.
fn open_job(ctx: &JobContext, c: &mut dyn Conn, job: &crate::jobs::Job) -> Result<()> {
    let Some(mut def) = repo::get::<ReviewDefinition>(c, &job.entity_id)? else { return Ok(()) };
    if def.status == DefinitionStatus::Completed {
        return Ok(());
    }
    let n = def.next_occurrence;
    let Some(start) = def.settings.recurrence.occurrence(n) else { return Ok(()) };
    if start > ctx.now {
        // The policy's schedule moved after this job was written.
        return schedule_next(c, &def);
    }
    let exists = repo::find_one::<ReviewInstance>(
        c,
        "definition_id = ? AND occurrence = ?",
        &[Value::from(&def.id), Value::from(i64::from(n))],
    )?
    .is_some();
    if !exists {
        let days = chrono::Duration::days(i64::from(def.settings.instance_duration_in_days.max(1)));
        let stages = match def.stage_settings.first() {
            Some(first) => vec![ReviewStage {
                id: ids::new_id(),
                stage_id: first.stage_id.clone(),
                index: 0,
                start_date_time: start,
                end_date_time: start + chrono::Duration::days(i64::from(first.duration_in_days.max(1))),
                status: InstanceStatus::InProgress,
                reviewers: first.reviewers.clone(),
                fallback_reviewers: first.fallback_reviewers.clone(),
            }],
            None => Vec::new(),
        };
        let inst = ReviewInstance {
            id: ids::new_id(),
            definition_id: def.id.clone(),
            catalog_id: def.catalog_id.clone(),
            occurrence: n,
            start_date_time: start,
            end_date_time: start + days,
            status: InstanceStatus::InProgress,
            reviewers: def.reviewers.clone(),
            fallback_reviewers: def.fallback_reviewers.clone(),
            contacted_reviewers: Vec::new(),
            settings: def.settings.clone(),
            last_reminder_date_time: None,
            stages,
            stage_settings: def.stage_settings.clone(),
        };
        repo::insert(c, &inst)?;
        crate::jobs::enqueue(c, JOB_END, &inst.id, inst.end_date_time, json!({}))?;
        if let Some(first) = inst.stages.first()
            && inst.stage_settings.len() > 1
        {
            crate::jobs::enqueue(c, JOB_STAGE, &inst.id, first.end_date_time, json!({ "stage": 0 }))?;
        }
        schedule_reminder(c, &inst)?;
        audit_instance(c, ctx.now, &inst, "started", json!({ "definitionId": def.id, "occurrence": n }))?;
        add_items(c, ctx.now, &inst.id, 0)?;
    }
    def.next_occurrence = n + 1;
    def.status = DefinitionStatus::InProgress;
    def.last_modified_date_time = ctx.now;
    repo::update(c, &def)?;
    schedule_next(c, &def)
}

fn audit_instance(
    c: &mut dyn Conn,
    at: DateTime<Utc>,
    inst: &ReviewInstance,
    action: &str,
    detail: serde_json::Value,
) -> Result<()> {
    crate::audit::record(
        c,
        crate::audit::AuditEvent {
            at,
            actor_id: None,
            entity_type: "accessReviewInstance",
            entity_id: &inst.id,
            action,
            detail,
        },
    )
}

fn identity_of(u: &User) -> UserIdentity {
    UserIdentity {
        id: u.id.clone(),
        display_name: u.display_name.clone(),
        user_principal_name: u.user_principal_name.clone(),
    }
}

/// The users one reviewer scope names for an assignee.
fn resolve(c: &mut dyn Conn, reviewer: &Reviewer, principal: Option<&User>) -> Result<Vec<String>> {
    Ok(match reviewer {
        Reviewer::SelfReview => principal.map(|u| vec![u.id.clone()]).unwrap_or_default(),
        Reviewer::Manager => principal.and_then(|u| u.manager_id.clone()).into_iter().collect(),
        Reviewer::User { id } => vec![id.clone()],
        Reviewer::GroupMembers { id } => crate::membership::member_ids(c, id)?,
    })
}

/// Who decides an item: the primary reviewers, or the fallback reviewers when those
/// resolve to nobody (e.g. the assignee has no manager). Only existing, enabled users.
fn reviewers_for(
    c: &mut dyn Conn,
    (primary, fallback): (&[Reviewer], &[Reviewer]),
    principal: Option<&User>,
) -> Result<Vec<User>> {
    let mut out: Vec<User> = Vec::new();
    for set in [primary, fallback] {
        for r in set.iter() {
            for id in resolve(c, r, principal)? {
                if out.iter().any(|u| u.id == id) {
                    continue;
                }
                if let Some(u) = repo::get::<User>(c, &id)?.filter(|u| u.account_enabled) {
                    out.push(u);
                }
            }
        }
        if !out.is_empty() {
            break;
        }
    }
    Ok(out)
}

/// The recommendation for an assignee, and what it rests on. Grantry has no sign-in data,
/// so it recommends from the directory and the policy alone.
fn recommend(
    c: &mut dyn Conn,
    inst: &ReviewInstance,
    policy: Option<&Policy>,
    subject: &Subject,
    user: Option<&User>,
) -> Result<(Recommendation, String)> {
    if !inst.settings.recommendations_enabled {
        return Ok((Recommendation::NoInfoAvailable, "Recommendations are turned off for this review.".into()));
    }
    let Some(user) = user else {
        return Ok((Recommendation::Deny, "The assignee no longer exists in the directory.".into()));
    };
    if !user.account_enabled {
        return Ok((Recommendation::Deny, "The assignee's account is disabled (accountEnabled is false).".into()));
    }
    if let Some(policy) = policy.filter(|p| !p.is_admin_only()) {
        let catalog = crate::catalogs::load_catalog(c, &policy.catalog_id)?;
        let target = crate::requests::Target {
            subject: Some(subject.clone()),
            user: Some(user.clone()),
            email: None,
            display_name: None,
        };
        if !crate::requests::in_scope(c, policy, &catalog, &target, None)? {
            return Ok((
                Recommendation::Deny,
                format!(
                    "The assignee no longer matches the policy's scope (allowedTargetScope {}).",
                    policy.allowed_target_scope.v1()
                ),
            ));
        }
        return Ok((
            Recommendation::Approve,
            "The assignee's account is enabled and still matches the policy's scope; sign-in activity is not known to Grantry and was not considered.".into(),
        ));
    }
    Ok((
        Recommendation::Approve,
        "The assignee's account is enabled; sign-in activity is not known to Grantry and was not considered.".into(),
    ))
}

/// Adds the items of a run for the policy's assignments active at its start, `CHUNK` at a
/// time after assignment `seq` `after`; schedules itself again while more remain.
fn add_items(c: &mut dyn Conn, now: DateTime<Utc>, instance_id: &str, after: i64) -> Result<()> {
    let Some(mut inst) = repo::get::<ReviewInstance>(c, instance_id)? else { return Ok(()) };
    if inst.status != InstanceStatus::InProgress {
        return Ok(());
    }
    let Some(def) = repo::get::<ReviewDefinition>(c, &inst.definition_id)? else { return Ok(()) };
    let policy = repo::get::<Policy>(c, &def.policy_id)?;
    let package_name = repo::get::<AccessPackage>(c, &def.access_package_id)?
        .map(|p| p.display_name)
        .unwrap_or_else(|| def.access_package_id.clone());
    // Assignments delivered after the start join the next run.
    let rows: Vec<(i64, Assignment)> = repo::list(
        c,
        "policy_id = ? AND active = 1 AND created_us <= ?",
        &[Value::from(&def.policy_id), Value::from(inst.start_date_time)],
        Some(after),
        CHUNK,
    )?;
    for (_, a) in &rows {
        let Some(subject) = repo::get::<Subject>(c, &a.target_subject_id)? else { continue };
        let user = match &subject.object_id {
            Some(oid) => repo::get::<User>(c, oid)?,
            None => None,
        };
        let principal = match (&user, &subject) {
            (Some(u), _) => identity_of(u),
            (None, s) => UserIdentity {
                id: s.object_id.clone().unwrap_or_else(|| s.id.clone()),
                display_name: s.display_name.clone().unwrap_or_default(),
                user_principal_name: s.principal_name.clone().or(s.email.clone()).unwrap_or_default(),
            },
        };
        let reviewers = reviewers_for(c, inst.current_reviewers(), user.as_ref())?;
        let (recommendation, basis) = recommend(c, &inst, policy.as_ref(), &subject, user.as_ref())?;
        let item = ReviewDecision {
            id: ids::new_id(),
            instance_id: inst.id.clone(),
            definition_id: def.id.clone(),
            assignment_id: a.id.clone(),
            principal,
            policy_id: def.policy_id.clone(),
            policy_display_name: policy.as_ref().map(|p| p.display_name.clone()).unwrap_or_default(),
            access_package_id: def.access_package_id.clone(),
            access_package_display_name: package_name.clone(),
            decision: Decision::NotReviewed,
            justification: None,
            recommendation,
            recommendation_basis: basis,
            reviewed_by: None,
            reviewed_date_time: None,
            apply_result: ApplyResult::New,
            applied_by: None,
            applied_date_time: None,
            reviewer_ids: reviewers.iter().map(|u| u.id.clone()).collect(),
            stages: if inst.is_multi_stage() { vec![new_stage_decision(0)] } else { Vec::new() },
        };
        let exists = c
            .query_one(
                "SELECT 1 FROM review_decisions WHERE instance_id = ? AND assignment_id = ?",
                &[Value::from(&inst.id), Value::from(&a.id)],
            )?
            .is_some();
        if exists {
            continue;
        }
        repo::insert(c, &item)?;
        add_reviewers(c, now, &mut inst, &item.id, &reviewers, &package_name)?;
    }
    repo::update(c, &inst)?;
    if rows.len() == CHUNK
        && let Some((seq, _)) = rows.last()
    {
        crate::jobs::enqueue(c, JOB_ITEMS, &inst.id, now, json!({ "after": seq }))?;
    }
    Ok(())
}

fn new_stage_decision(index: usize) -> StageDecision {
    StageDecision {
        stage_index: index,
        decision: Decision::NotReviewed,
        justification: None,
        reviewed_by: None,
        reviewed_date_time: None,
    }
}

/// Makes `reviewers` the people who decide item `item_id` now, and tells those the run has
/// not contacted yet (in this stage) that they have items to review.
fn add_reviewers(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    inst: &mut ReviewInstance,
    item_id: &str,
    reviewers: &[User],
    package_name: &str,
) -> Result<()> {
    let stage = inst.current_stage().map(|s| s.index).unwrap_or(0);
    for u in reviewers {
        c.execute(
            "INSERT INTO review_decision_reviewers (decision_id, instance_id, reviewer_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            &[Value::from(item_id), Value::from(&inst.id), Value::from(&u.id)],
        )?;
        let first_contact = !inst.contacted_reviewers.iter().any(|r| r.id == u.id);
        if first_contact {
            inst.contacted_reviewers.push(ContactedReviewer {
                id: u.id.clone(),
                display_name: u.display_name.clone(),
                user_principal_name: u.user_principal_name.clone(),
                created_date_time: now,
            });
        }
        // Each stage's reviewers are told once (the mail's id carries the stage).
        if first_contact || stage > 0 {
            crate::notify::review_started(c, now, inst, package_name, &u.id, stage)?;
        }
    }
    Ok(())
}

/// Job `review.items`: the next items of a run being opened.
fn items_job(ctx: &JobContext, c: &mut dyn Conn, job: &crate::jobs::Job) -> Result<()> {
    add_items(c, ctx.now, &job.entity_id, after_of(job).unwrap_or(0))
}

/// Job `review.end`: when the run's time is up (or it was stopped), it is completed;
/// unanswered items take the default decision, and with auto-apply the decisions are
/// applied, `CHUNK` items per run of the job.
fn end_job(ctx: &JobContext, c: &mut dyn Conn, job: &crate::jobs::Job) -> Result<()> {
    let Some(mut inst) = repo::get::<ReviewInstance>(c, &job.entity_id)? else { return Ok(()) };
    let after = match after_of(job) {
        Some(after) => after,
        None => {
            if inst.status != InstanceStatus::InProgress {
                return Ok(());
            }
            if inst.end_date_time > ctx.now {
                return crate::jobs::enqueue(c, JOB_END, &inst.id, inst.end_date_time, json!({}));
            }
            inst.status = if inst.settings.auto_apply_decisions_enabled {
                InstanceStatus::Applying
            } else {
                InstanceStatus::Completed
            };
            complete_stage(&mut inst, ctx.now);
            repo::update(c, &inst)?;
            for kind in [JOB_REMIND, JOB_STAGE, JOB_REASSIGN] {
                crate::jobs::cancel(c, kind, &inst.id)?;
            }
            audit_instance(c, ctx.now, &inst, "completed", json!({}))?;
            0
        }
    };
    let def = repo::get::<ReviewDefinition>(c, &inst.definition_id)?;
    let items: Vec<(i64, ReviewDecision)> =
        repo::list(c, "instance_id = ?", &[Value::from(&inst.id)], Some(after), APPLY_CHUNK)?;
    for (_, mut item) in items.iter().cloned() {
        if item.decision == Decision::NotReviewed && !item.stages.is_empty() {
            // A multi-stage item ends with the latest decision any stage made.
            let (d, j, by, at) = item.latest();
            (item.decision, item.justification, item.reviewed_by, item.reviewed_date_time) = (d, j, by, at);
        }
        let decided = final_decision(item.decision, &inst.settings, item.recommendation);
        if decided != item.decision {
            item.decision = decided;
            item.justification = Some(format!(
                "Not reviewed before the review ended; the default decision ({}) was taken.",
                inst.settings.default_decision.as_str()
            ));
            item.reviewed_date_time = Some(ctx.now);
        }
        if inst.settings.auto_apply_decisions_enabled {
            apply_item(c, ctx.now, &mut item, def.as_ref(), None)?;
        }
        repo::update(c, &item)?;
    }
    match items.last() {
        Some((seq, _)) if items.len() == APPLY_CHUNK => {
            crate::jobs::enqueue(c, JOB_END, &inst.id, ctx.now, json!({ "after": seq }))
        }
        _ => {
            if inst.settings.auto_apply_decisions_enabled {
                inst.status = InstanceStatus::Applied;
                repo::update(c, &inst)?;
                audit_instance(c, ctx.now, &inst, "applied", json!({ "automatic": true }))?;
            }
            Ok(())
        }
    }
}

/// Applies one item: a deny removes the assignment through a system remove request;
/// other decisions keep access. Items already applied are left alone.
fn apply_item(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    item: &mut ReviewDecision,
    def: Option<&ReviewDefinition>,
    by: Option<UserIdentity>,
) -> Result<()> {
    if item.apply_result != ApplyResult::New || item.decision == Decision::NotReviewed {
        return Ok(());
    }
    if removes_access(item.decision) {
        match repo::get::<Assignment>(c, &item.assignment_id)?.filter(|a| a.state.is_active()) {
            Some(mut a) => {
                let review = def.map(|d| d.display_name.as_str()).unwrap_or("an access review");
                let why = match &item.justification {
                    Some(j) => format!("Access was denied in access review '{review}': {j}"),
                    None => format!("Access was denied in access review '{review}'."),
                };
                crate::delivery::system_remove(
                    c,
                    now,
                    &mut a,
                    &why,
                    json!({ "accessReviewInstanceId": item.instance_id, "accessReviewDecisionId": item.id }),
                )?;
                crate::notify::access_ended(
                    c,
                    now,
                    &a,
                    &format!("Your access was reviewed in '{review}' and not kept."),
                )?;
                item.apply_result = ApplyResult::AppliedSuccessfully;
            }
            None => item.apply_result = ApplyResult::AppliedSuccessfullyButObjectNotFound,
        }
    } else {
        item.apply_result = ApplyResult::AppliedSuccessfully;
    }
    item.applied_date_time = Some(now);
    item.applied_by = by;
    Ok(())
}

/// Job `review.apply`: applies a completed run's decisions, `CHUNK` items at a time.
fn apply_job(ctx: &JobContext, c: &mut dyn Conn, job: &crate::jobs::Job) -> Result<()> {
    let Some(mut inst) = repo::get::<ReviewInstance>(c, &job.entity_id)? else { return Ok(()) };
    if inst.status != InstanceStatus::Applying {
        return Ok(());
    }
    let after = after_of(job).unwrap_or(0);
    let by: Option<UserIdentity> = serde_json::from_value(job.payload["by"].clone()).ok();
    let def = repo::get::<ReviewDefinition>(c, &inst.definition_id)?;
    let items: Vec<(i64, ReviewDecision)> =
        repo::list(c, "instance_id = ?", &[Value::from(&inst.id)], Some(after), APPLY_CHUNK)?;
    for (_, mut item) in items.iter().cloned() {
        let before = item.apply_result;
        apply_item(c, ctx.now, &mut item, def.as_ref(), by.clone())?;
        if item.apply_result != before {
            repo::update(c, &item)?;
        }
    }
    match items.last() {
        Some((seq, _)) if items.len() == APPLY_CHUNK => {
            crate::jobs::enqueue(c, JOB_APPLY, &inst.id, ctx.now, json!({ "after": seq, "by": job.payload["by"] }))
        }
        _ => {
            inst.status = InstanceStatus::Applied;
            repo::update(c, &inst)?;
            audit_instance(c, ctx.now, &inst, "applied", json!({ "automatic": false }))
        }
    }
}

/// Schedules the automatic reminder of the part of `inst` under way, when its settings
/// turn reminders on (Entra reminds at the midpoint): for a run with stages, at the
/// midpoint of the stage under way (each stage's reviewers are reminded in their stage);
/// otherwise at the midpoint of the run. A reminder scheduled before is replaced.
fn schedule_reminder(c: &mut dyn Conn, inst: &ReviewInstance) -> Result<()> {
    crate::jobs::cancel(c, JOB_REMIND, &inst.id)?;
    if !inst.settings.reminder_notifications_enabled {
        return Ok(());
    }
    let (start, end, payload) = match inst.current_stage() {
        Some(s) => (s.start_date_time, s.end_date_time, json!({ "stage": s.index })),
        None => (inst.start_date_time, inst.end_date_time, json!({})),
    };
    crate::jobs::enqueue(c, JOB_REMIND, &inst.id, start + (end - start) / 2, payload)
}

/// Job `review.remind`: at the midpoint of a run (or of the stage it was scheduled for),
/// reminds the reviewers who still have undecided items. A stage's reminder does nothing
/// once that stage has ended.
fn remind_job(ctx: &JobContext, c: &mut dyn Conn, job: &crate::jobs::Job) -> Result<()> {
    let Some(mut inst) = repo::get::<ReviewInstance>(c, &job.entity_id)? else { return Ok(()) };
    if inst.status != InstanceStatus::InProgress {
        return Ok(());
    }
    if let Some(stage) = job.payload.get("stage").and_then(serde_json::Value::as_u64) {
        let current = inst.current_stage().filter(|s| s.status == InstanceStatus::InProgress).map(|s| s.index);
        if current != Some(stage as usize) {
            return Ok(());
        }
    }
    remind(c, ctx.now, &mut inst, None)
}

/// Reminds by mail (when the review's mail settings are on) every reviewer with undecided
/// items in the part of the run under way: for a run with stages, only the reviewers of
/// the stage under way, about the items that reached it. The reminder, with whom it was
/// for, is in the audit trail.
fn remind(c: &mut dyn Conn, now: DateTime<Utc>, inst: &mut ReviewInstance, actor: Option<&str>) -> Result<()> {
    let stage = inst.current_stage().map(|s| s.index as i64).unwrap_or(0);
    let rows = c.query(
        "SELECT DISTINCT r.reviewer_id FROM review_decision_reviewers r JOIN review_decisions d ON d.id = r.decision_id \
         WHERE r.instance_id = ? AND d.stage = ? AND d.decision = 'NotReviewed' ORDER BY r.reviewer_id",
        &[Value::from(&inst.id), Value::from(stage)],
    )?;
    let pending: Vec<String> = rows.iter().map(|r| r.text(0)).collect::<Result<_>>()?;
    crate::notify::review_reminder(c, now, inst, &pending)?;
    inst.last_reminder_date_time = Some(now);
    repo::update(c, inst)?;
    let stage_id = inst.current_stage().map(|s| s.stage_id.clone());
    crate::audit::record(
        c,
        crate::audit::AuditEvent {
            at: now,
            actor_id: actor,
            entity_type: "accessReviewInstance",
            entity_id: &inst.id,
            action: "reminderSent",
            detail: json!({ "reviewerIds": pending, "stage": stage_id }),
        },
    )
}

// ---------------------------------------------------------------------------------------
// Reviewers' decisions and administrators' actions.

/// A decision as sent by a reviewer (PATCH, `batchRecordDecisions`, `recordAllDecisions`).
#[derive(Debug, Clone)]
pub struct RecordInput {
    pub decision: Decision,
    pub justification: Option<String>,
    /// Restricts a batch to the items of this principal.
    pub principal_id: Option<String>,
    /// Restricts a batch to the items of this resource (the policy).
    pub resource_id: Option<String>,
}

fn not_in_progress(inst: &ReviewInstance) -> Error {
    Error::conflict(
        "AccessReviewInstanceNotInProgress",
        format!(
            "Access review instance '{}' is {}; decisions can only be recorded or changed while it is InProgress.",
            inst.id,
            inst.status.as_str()
        ),
    )
}

fn caller_identity(c: &mut dyn Conn, caller: &Caller) -> Result<UserIdentity> {
    let uid = caller.user_id().ok_or_else(|| {
        Error::forbidden("Decisions are recorded by a signed-in reviewer; an application cannot decide review items.")
    })?;
    Ok(match repo::get::<User>(c, uid)? {
        Some(u) => identity_of(&u),
        None => UserIdentity { id: uid.to_string(), display_name: String::new(), user_principal_name: String::new() },
    })
}

fn check_justification(inst: &ReviewInstance, input: &RecordInput) -> Result<()> {
    if input.decision == Decision::Approve
        && inst.settings.justification_required_on_approval
        && input.justification.as_deref().is_none_or(|j| j.trim().is_empty())
    {
        return Err(Error::invalid_property(
            "justification",
            "This review requires a justification to approve access: send 'justification' with the decision.",
        ));
    }
    Ok(())
}

fn set_decision(item: &mut ReviewDecision, input: &RecordInput, by: &UserIdentity, now: DateTime<Utc>) {
    item.decision = input.decision;
    item.justification = input.justification.clone().filter(|j| !j.trim().is_empty());
    if input.decision == Decision::NotReviewed {
        item.reviewed_by = None;
        item.reviewed_date_time = None;
    } else {
        item.reviewed_by = Some(by.clone());
        item.reviewed_date_time = Some(now);
    }
    sync_stage_entry(item);
}

/// Copies the item's decision into the entry of the stage it is in (multi-stage runs).
fn sync_stage_entry(item: &mut ReviewDecision) {
    let (decision, justification, by, at) =
        (item.decision, item.justification.clone(), item.reviewed_by.clone(), item.reviewed_date_time);
    if let Some(s) = item.stages.last_mut() {
        s.decision = decision;
        s.justification = justification;
        s.reviewed_by = by;
        s.reviewed_date_time = at;
    }
}

/// Marks the stage under way completed (when the run ends).
fn complete_stage(inst: &mut ReviewInstance, now: DateTime<Utc>) {
    if let Some(s) = inst.stages.last_mut()
        && s.status == InstanceStatus::InProgress
    {
        s.status = InstanceStatus::Completed;
        s.end_date_time = s.end_date_time.min(now);
    }
}

/// PATCH of a decision item by one of its reviewers, while the run is in progress. Through
/// a stage (`…/stages/{s}/decisions/{id}`), the stage must be the one under way and the item
/// must have reached it.
pub async fn record_decision(
    app: &App,
    caller: &Caller,
    at: ItemsAt<'_>,
    item_id: &str,
    input: RecordInput,
) -> Result<()> {
    caller.require(REVIEW_WRITE)?;
    let caller = caller.clone();
    let now = app.now();
    let (d, i, stage) = at.owned();
    let x = item_id.to_string();
    app.store
        .write(move |c| {
            let (_, inst, _) = visible_instance(c, &caller, &d, &i)?;
            let mut item = repo::get::<ReviewDecision>(c, &ids::normalize(&x))?
                .filter(|it| it.instance_id == inst.id)
                .ok_or_else(|| Error::not_found("access review decision item", &x))?;
            if !is_reviewer_of(c, &caller, &item.id)? {
                return Err(Error::forbidden(format!(
                    "You are not a reviewer of decision item '{}'; only its reviewers may decide it.",
                    item.id
                )));
            }
            if inst.status != InstanceStatus::InProgress {
                return Err(not_in_progress(&inst));
            }
            if let Some(stage) = &stage {
                let current = current_stage_of(&inst, stage)?;
                if item.stage() != current {
                    return Err(Error::conflict(
                        "AccessReviewItemNotInStage",
                        format!(
                            "Decision item '{}' did not go on to stage '{stage}'; it cannot be decided there.",
                            item.id
                        ),
                    ));
                }
            }
            check_justification(&inst, &input)?;
            let by = caller_identity(c, &caller)?;
            set_decision(&mut item, &input, &by, now);
            repo::update(c, &item)?;
            Ok(())
        })
        .await
}

/// The index of stage `stage_id` of `inst`, which must be the stage under way.
fn current_stage_of(inst: &ReviewInstance, stage_id: &str) -> Result<usize> {
    let stage = find_stage(inst, stage_id)?;
    if stage.status != InstanceStatus::InProgress || inst.current_stage().map(|s| s.index) != Some(stage.index) {
        return Err(Error::conflict(
            "AccessReviewStageNotInProgress",
            format!(
                "Stage '{}' of access review instance '{}' is {}; decisions are recorded in the stage under way.",
                stage.id,
                inst.id,
                stage.status.as_str()
            ),
        ));
    }
    Ok(stage.index)
}

fn find_stage<'a>(inst: &'a ReviewInstance, stage_id: &str) -> Result<&'a ReviewStage> {
    let key = ids::normalize(stage_id);
    inst.stages
        .iter()
        .find(|s| s.id == key || s.id.eq_ignore_ascii_case(stage_id))
        .ok_or_else(|| Error::not_found("access review stage", stage_id))
}

/// Records `input` on every item of `instance` the caller reviews that matches its
/// principal and resource; returns how many.
fn record_many(
    c: &mut dyn Conn,
    caller: &Caller,
    inst: &ReviewInstance,
    input: &RecordInput,
    now: DateTime<Utc>,
) -> Result<usize> {
    check_justification(inst, input)?;
    let by = caller_identity(c, caller)?;
    let mine = mine_condition(caller, &inst.id);
    let items: Vec<ReviewDecision> = repo::find_all(c, &format!("instance_id = ? AND {}", mine.text), &{
        let mut p = vec![Value::from(&inst.id)];
        p.extend(mine.params);
        p
    })?;
    let mut n = 0;
    for mut item in items {
        if input.principal_id.as_deref().is_some_and(|p| !p.eq_ignore_ascii_case(&item.principal.id))
            || input.resource_id.as_deref().is_some_and(|r| !r.eq_ignore_ascii_case(&item.policy_id))
        {
            continue;
        }
        set_decision(&mut item, input, &by, now);
        repo::update(c, &item)?;
        n += 1;
    }
    Ok(n)
}

/// `batchRecordDecisions` on one run.
pub async fn batch_record(
    app: &App,
    caller: &Caller,
    definition_id: &str,
    instance_id: &str,
    input: RecordInput,
) -> Result<usize> {
    caller.require(REVIEW_WRITE)?;
    let caller = caller.clone();
    let now = app.now();
    let (d, i) = (definition_id.to_string(), instance_id.to_string());
    app.store
        .write(move |c| {
            let (_, inst, _) = visible_instance(c, &caller, &d, &i)?;
            if !reviews_in(c, caller.user_id(), &inst.id)? {
                return Err(Error::forbidden(format!(
                    "You are not a reviewer in access review instance '{}'; only its reviewers may record decisions.",
                    inst.id
                )));
            }
            if inst.status != InstanceStatus::InProgress {
                return Err(not_in_progress(&inst));
            }
            record_many(c, &caller, &inst, &input, now)
        })
        .await
}

/// Beta `recordAllDecisions`: on the caller's items in every run in progress.
pub async fn record_all(app: &App, caller: &Caller, input: RecordInput) -> Result<usize> {
    caller.require(REVIEW_WRITE)?;
    let caller = caller.clone();
    let now = app.now();
    app.store
        .write(move |c| {
            let uid = caller.user_id().unwrap_or_default().to_string();
            let instances: Vec<ReviewInstance> = repo::find_all(
                c,
                "status = 'InProgress' AND id IN (SELECT r.instance_id FROM review_decision_reviewers r WHERE r.reviewer_id = ?)",
                &[Value::from(uid)],
            )?;
            let mut n = 0;
            for inst in &instances {
                n += record_many(c, &caller, inst, &input, now)?;
            }
            Ok(n)
        })
        .await
}

/// Beta `accessReviews/decisions/filterByCurrentUser(on='reviewer')`: the caller's items in
/// every run.
pub async fn list_my_decisions_everywhere(
    app: &App,
    caller: &Caller,
    options: ListOptions,
) -> Result<Listed<ReviewDecision>> {
    caller.require(REVIEW_READ)?;
    let uid = caller.user_id().unwrap_or_default().to_string();
    let scope = vec![Sql {
        text: "id IN (SELECT r.decision_id FROM review_decision_reviewers r WHERE r.reviewer_id = ?)".into(),
        params: vec![Value::from(uid)],
    }];
    app.store.read(move |c| crate::listing::list(c, DECISION_FIELDS, scope, &options)).await
}

/// `acceptRecommendations`: the caller's undecided items take their recommendation.
pub async fn accept_recommendations(
    app: &App,
    caller: &Caller,
    definition_id: &str,
    instance_id: &str,
) -> Result<usize> {
    caller.require(REVIEW_WRITE)?;
    let caller = caller.clone();
    let now = app.now();
    let (d, i) = (definition_id.to_string(), instance_id.to_string());
    app.store
        .write(move |c| {
            let (_, inst, _) = visible_instance(c, &caller, &d, &i)?;
            if !reviews_in(c, caller.user_id(), &inst.id)? {
                return Err(Error::forbidden(format!(
                    "You are not a reviewer in access review instance '{}'; recommendations are accepted by its reviewers.",
                    inst.id
                )));
            }
            if inst.status != InstanceStatus::InProgress {
                return Err(not_in_progress(&inst));
            }
            let by = caller_identity(c, &caller)?;
            let mine = mine_condition(&caller, &inst.id);
            let mut params = vec![Value::from(&inst.id)];
            params.extend(mine.params);
            let items: Vec<ReviewDecision> =
                repo::find_all(c, &format!("instance_id = ? AND decision = 'NotReviewed' AND {}", mine.text), &params)?;
            let mut n = 0;
            for mut item in items {
                let decision = match item.recommendation {
                    Recommendation::Approve => Decision::Approve,
                    Recommendation::Deny => Decision::Deny,
                    Recommendation::NoInfoAvailable => continue,
                };
                let input = RecordInput {
                    decision,
                    justification: Some(format!("Accepted the recommendation: {}", item.recommendation_basis)),
                    principal_id: None,
                    resource_id: None,
                };
                set_decision(&mut item, &input, &by, now);
                repo::update(c, &item)?;
                n += 1;
            }
            Ok(n)
        })
        .await
}

/// Loads a run the caller may manage (stop, apply, reset, remind).
fn managed_instance(c: &mut dyn Conn, caller: &Caller, d: &str, i: &str) -> Result<(ReviewDefinition, ReviewInstance)> {
    let (def, inst, _) = visible_instance(c, caller, d, i)?;
    if !may_manage_catalog(caller, &def.catalog_id) {
        return Err(Error::forbidden(format!(
            "Managing this review needs Identity Governance Administrator, User Administrator, or the Access package manager or Catalog owner role on catalog '{}'.",
            def.catalog_id
        )));
    }
    Ok((def, inst))
}

/// `stop`: ends a run now; its end (default decisions, auto-apply) follows at once.
pub async fn stop(app: &App, caller: &Caller, definition_id: &str, instance_id: &str) -> Result<()> {
    caller.require(REVIEW_WRITE)?;
    let caller = caller.clone();
    let now = app.now();
    let (d, i) = (definition_id.to_string(), instance_id.to_string());
    app.store
        .write(move |c| {
            let (_, mut inst) = managed_instance(c, &caller, &d, &i)?;
            if inst.status != InstanceStatus::InProgress {
                return Err(Error::conflict(
                    "AccessReviewInstanceNotInProgress",
                    format!(
                        "Access review instance '{}' is {}; only a run in progress can be stopped.",
                        inst.id,
                        inst.status.as_str()
                    ),
                ));
            }
            stop_in(c, now, &mut inst, caller.id())
        })
        .await?;
    app.work_signal.notify_one();
    Ok(())
}

/// Ends run `inst` now (stopped by `actor`): its end (default decisions, auto-apply) follows.
fn stop_in(c: &mut dyn Conn, now: DateTime<Utc>, inst: &mut ReviewInstance, actor: &str) -> Result<()> {
    inst.end_date_time = now;
    inst.status =
        if inst.settings.auto_apply_decisions_enabled { InstanceStatus::Applying } else { InstanceStatus::Completed };
    complete_stage(inst, now);
    repo::update(c, inst)?;
    for kind in [JOB_END, JOB_REMIND, JOB_ITEMS, JOB_STAGE, JOB_REASSIGN] {
        crate::jobs::cancel(c, kind, &inst.id)?;
    }
    audit_instance(c, now, inst, "stopped", json!({ "by": actor }))?;
    crate::jobs::enqueue(c, JOB_END, &inst.id, now, json!({ "after": 0 }))
}

/// `applyDecisions`: applies a completed run's decisions (denied access is removed).
pub async fn apply_decisions(app: &App, caller: &Caller, definition_id: &str, instance_id: &str) -> Result<()> {
    caller.require(REVIEW_WRITE)?;
    let caller = caller.clone();
    let now = app.now();
    let (d, i) = (definition_id.to_string(), instance_id.to_string());
    app.store
        .write(move |c| {
            let (_, mut inst) = managed_instance(c, &caller, &d, &i)?;
            if inst.status != InstanceStatus::Completed {
                return Err(Error::conflict(
                    "AccessReviewInstanceNotCompleted",
                    format!(
                        "Access review instance '{}' is {}; decisions are applied once it is Completed (stop it first, or wait for its end).",
                        inst.id,
                        inst.status.as_str()
                    ),
                ));
            }
            let by = caller_identity(c, &caller).ok();
            inst.status = InstanceStatus::Applying;
            repo::update(c, &inst)?;
            crate::jobs::enqueue(c, JOB_APPLY, &inst.id, now, json!({ "after": 0, "by": by }))
        })
        .await?;
    app.work_signal.notify_one();
    Ok(())
}

/// `resetDecisions`: every item of a run in progress goes back to `NotReviewed`.
pub async fn reset_decisions(app: &App, caller: &Caller, definition_id: &str, instance_id: &str) -> Result<()> {
    caller.require(REVIEW_WRITE)?;
    let caller = caller.clone();
    let (d, i) = (definition_id.to_string(), instance_id.to_string());
    app.store
        .write(move |c| {
            let (_, inst) = managed_instance(c, &caller, &d, &i)?;
            if inst.status != InstanceStatus::InProgress {
                return Err(not_in_progress(&inst));
            }
            let stage = inst.current_stage().map(|s| s.index as i64).unwrap_or(0);
            let items: Vec<ReviewDecision> = repo::find_all(
                c,
                "instance_id = ? AND stage = ? AND decision <> 'NotReviewed'",
                &[Value::from(&inst.id), Value::from(stage)],
            )?;
            for mut item in items {
                item.decision = Decision::NotReviewed;
                item.justification = None;
                item.reviewed_by = None;
                item.reviewed_date_time = None;
                sync_stage_entry(&mut item);
                repo::update(c, &item)?;
            }
            Ok(())
        })
        .await
}

/// `sendReminder`: reminds the reviewers who still have undecided items.
pub async fn send_reminder(app: &App, caller: &Caller, definition_id: &str, instance_id: &str) -> Result<()> {
    caller.require(REVIEW_WRITE)?;
    let caller = caller.clone();
    let now = app.now();
    let (d, i) = (definition_id.to_string(), instance_id.to_string());
    app.store
        .write(move |c| {
            let (_, mut inst) = managed_instance(c, &caller, &d, &i)?;
            if inst.status != InstanceStatus::InProgress {
                return Err(not_in_progress(&inst));
            }
            remind(c, now, &mut inst, Some(caller.id()))
        })
        .await
}

/// `contactedReviewers` of a run.
pub async fn contacted_reviewers(
    app: &App,
    caller: &Caller,
    definition_id: &str,
    instance_id: &str,
) -> Result<Vec<ContactedReviewer>> {
    get_instance(app, caller, definition_id, instance_id).await.map(|i| i.contacted_reviewers)
}

// ---------------------------------------------------------------------------------------
// The definition through the access reviews API.

fn managed_definition(c: &mut dyn Conn, caller: &Caller, id: &str) -> Result<ReviewDefinition> {
    let (def, _) = visible_definition(c, caller, id)?;
    if !may_manage_catalog(caller, &def.catalog_id) {
        return Err(Error::forbidden(format!(
            "Changing this review needs Identity Governance Administrator, User Administrator, or the Access package manager or Catalog owner role on catalog '{}'.",
            def.catalog_id
        )));
    }
    Ok(def)
}

/// PUT of a definition: the members the policy does not determine (names, descriptions,
/// auto-apply, mail and reminders) change, for future runs; the caller has checked that
/// the rest matches.
pub async fn replace_definition(
    app: &App,
    caller: &Caller,
    id: &str,
    overrides: grantry_domain::model::DefinitionOverrides,
) -> Result<()> {
    caller.require(REVIEW_WRITE)?;
    let caller = caller.clone();
    let now = app.now();
    let id = id.to_string();
    app.store
        .write(move |c| {
            let mut def = managed_definition(c, &caller, &id)?;
            // Recompute from the policy so a removed override falls back to the policy's value.
            if let Some(policy) = repo::get::<Policy>(c, &def.policy_id)? {
                let package_name = repo::get::<AccessPackage>(c, &policy.access_package_id)?
                    .map(|p| p.display_name)
                    .unwrap_or_default();
                let mut base = def.clone();
                base.overrides = Default::default();
                if let Some(fresh) = ReviewDefinition::from_policy(&policy, &package_name, Some(&base), now) {
                    def = ReviewDefinition { status: def.status, next_occurrence: def.next_occurrence, ..fresh };
                }
            }
            def.set_overrides(overrides);
            def.last_modified_date_time = now;
            repo::update(c, &def)?;
            crate::audit::record(
                c,
                crate::audit::AuditEvent {
                    at: now,
                    actor_id: Some(caller.id()),
                    entity_type: "accessReviewScheduleDefinition",
                    entity_id: &def.id,
                    action: "replace",
                    detail: json!({ "overrides": def.overrides }),
                },
            )
        })
        .await
}

/// DELETE of a definition: the series ends with its runs and items, and the policy's
/// reviews are turned off, so the two never disagree.
pub async fn delete_definition(app: &App, caller: &Caller, id: &str) -> Result<()> {
    caller.require(REVIEW_WRITE)?;
    let caller = caller.clone();
    let now = app.now();
    let id = id.to_string();
    app.store
        .write(move |c| {
            let def = managed_definition(c, &caller, &id)?;
            if let Some(mut policy) = repo::get::<Policy>(c, &def.policy_id)?
                && let Some(r) = policy.review_settings.as_mut()
            {
                r.is_enabled = false;
                policy.modified_date_time = now;
                repo::update(c, &policy)?;
            }
            remove_definition(c, &def)?;
            crate::audit::record(
                c,
                crate::audit::AuditEvent {
                    at: now,
                    actor_id: Some(caller.id()),
                    entity_type: "accessReviewScheduleDefinition",
                    entity_id: &def.id,
                    action: "delete",
                    detail: json!({ "policyId": def.policy_id }),
                },
            )
        })
        .await
}

// ---------------------------------------------------------------------------------------
// Multi-stage runs.

fn days(n: i32) -> chrono::Duration {
    chrono::Duration::days(i64::from(n.max(1)))
}

/// Job `review.stage`: stage `stage` of a run ends (its time is up, or it was stopped);
/// the next stage starts with its reviewers, and the items whose decision lets them go on
/// move to it, `CHUNK` at a time. The last stage ends with the run (`review.end`).
fn stage_job(ctx: &JobContext, c: &mut dyn Conn, job: &crate::jobs::Job) -> Result<()> {
    let Some(mut inst) = repo::get::<ReviewInstance>(c, &job.entity_id)? else { return Ok(()) };
    if inst.status != InstanceStatus::InProgress {
        return Ok(());
    }
    let k = job.payload.get("stage").and_then(serde_json::Value::as_u64).unwrap_or(0) as usize;
    if let Some(after) = after_of(job) {
        return move_items(c, ctx.now, &mut inst, k, after);
    }
    let Some(current) = inst.current_stage().cloned() else { return Ok(()) };
    if current.index != k || current.status != InstanceStatus::InProgress || k + 1 >= inst.stage_settings.len() {
        return Ok(());
    }
    if current.end_date_time > ctx.now {
        return crate::jobs::enqueue(c, JOB_STAGE, &inst.id, current.end_date_time, json!({ "stage": k }));
    }
    let next = inst.stage_settings[k + 1].clone();
    if let Some(s) = inst.stages.last_mut() {
        s.status = InstanceStatus::Completed;
    }
    let start = ctx.now;
    inst.stages.push(ReviewStage {
        id: ids::new_id(),
        stage_id: next.stage_id.clone(),
        index: k + 1,
        start_date_time: start,
        end_date_time: start + days(next.duration_in_days),
        status: InstanceStatus::InProgress,
        reviewers: next.reviewers.clone(),
        fallback_reviewers: next.fallback_reviewers.clone(),
    });
    // The run ends when its last stage does.
    let rest: i32 = inst.stage_settings[k + 1..].iter().map(|s| s.duration_in_days.max(1)).sum();
    inst.end_date_time = start + days(rest);
    repo::update(c, &inst)?;
    crate::jobs::cancel(c, JOB_END, &inst.id)?;
    crate::jobs::enqueue(c, JOB_END, &inst.id, inst.end_date_time, json!({}))?;
    crate::jobs::cancel(c, JOB_REASSIGN, &inst.id)?;
    schedule_reminder(c, &inst)?;
    audit_instance(c, ctx.now, &inst, "stageCompleted", json!({ "stage": current.stage_id, "next": next.stage_id }))?;
    move_items(c, ctx.now, &mut inst, k, 0)
}

/// Moves the items of stage `k` (after `seq` `after`) on to stage `k + 1` when their
/// decision lets them; the others keep their decision and have no reviewer any more.
fn move_items(c: &mut dyn Conn, now: DateTime<Utc>, inst: &mut ReviewInstance, k: usize, after: i64) -> Result<()> {
    let Some(setting) = inst.stage_settings.get(k).cloned() else { return Ok(()) };
    let package_name = package_of(c, inst)?;
    let rows: Vec<(i64, ReviewDecision)> = repo::list(
        c,
        "instance_id = ? AND stage = ?",
        &[Value::from(&inst.id), Value::from(k as i64)],
        Some(after),
        CHUNK,
    )?;
    for (_, mut item) in rows.iter().cloned() {
        c.execute("DELETE FROM review_decision_reviewers WHERE decision_id = ?", &[Value::from(&item.id)])?;
        if !setting.moves_on(item.decision, item.recommendation) {
            item.reviewer_ids.clear();
            repo::update(c, &item)?;
            continue;
        }
        item.stages.push(new_stage_decision(k + 1));
        item.decision = Decision::NotReviewed;
        item.justification = None;
        item.reviewed_by = None;
        item.reviewed_date_time = None;
        let user = repo::get::<User>(c, &item.principal.id)?;
        let reviewers = reviewers_for(c, inst.current_reviewers(), user.as_ref())?;
        item.reviewer_ids = reviewers.iter().map(|u| u.id.clone()).collect();
        repo::update(c, &item)?;
        add_reviewers(c, now, inst, &item.id, &reviewers, &package_name)?;
    }
    repo::update(c, inst)?;
    match rows.last() {
        Some((seq, _)) if rows.len() == CHUNK => {
            crate::jobs::enqueue(c, JOB_STAGE, &inst.id, now, json!({ "stage": k, "after": seq }))
        }
        _ => match inst.current_stage() {
            Some(s) if s.index + 1 < inst.stage_settings.len() => {
                crate::jobs::enqueue(c, JOB_STAGE, &inst.id, s.end_date_time, json!({ "stage": s.index }))
            }
            _ => Ok(()),
        },
    }
}

fn package_of(c: &mut dyn Conn, inst: &ReviewInstance) -> Result<String> {
    let Some(def) = repo::get::<ReviewDefinition>(c, &inst.definition_id)? else { return Ok(String::new()) };
    Ok(repo::get::<AccessPackage>(c, &def.access_package_id)?.map(|p| p.display_name).unwrap_or(def.access_package_id))
}

/// Job `review.reassign`: the items of the stage under way get the run's (or stage's)
/// current reviewers, `CHUNK` at a time; reviewers new to the run are told.
fn reassign_job(ctx: &JobContext, c: &mut dyn Conn, job: &crate::jobs::Job) -> Result<()> {
    let Some(mut inst) = repo::get::<ReviewInstance>(c, &job.entity_id)? else { return Ok(()) };
    if inst.status != InstanceStatus::InProgress {
        return Ok(());
    }
    let after = after_of(job).unwrap_or(0);
    let stage = inst.current_stage().map(|s| s.index).unwrap_or(0);
    let package_name = package_of(c, &inst)?;
    let rows: Vec<(i64, ReviewDecision)> = repo::list(
        c,
        "instance_id = ? AND stage = ?",
        &[Value::from(&inst.id), Value::from(stage as i64)],
        Some(after),
        CHUNK,
    )?;
    for (_, mut item) in rows.iter().cloned() {
        let user = repo::get::<User>(c, &item.principal.id)?;
        let reviewers = reviewers_for(c, inst.current_reviewers(), user.as_ref())?;
        c.execute("DELETE FROM review_decision_reviewers WHERE decision_id = ?", &[Value::from(&item.id)])?;
        item.reviewer_ids = reviewers.iter().map(|u| u.id.clone()).collect();
        repo::update(c, &item)?;
        add_reviewers(c, ctx.now, &mut inst, &item.id, &reviewers, &package_name)?;
    }
    repo::update(c, &inst)?;
    match rows.last() {
        Some((seq, _)) if rows.len() == CHUNK => {
            crate::jobs::enqueue(c, JOB_REASSIGN, &inst.id, ctx.now, json!({ "after": seq }))
        }
        _ => Ok(()),
    }
}

/// New reviewers of a run in progress (instance PUT) or of its stage under way (stage
/// PATCH). As in Graph, fallback reviewers can only be added: one missing is a 409.
fn change_reviewers(
    current: (&[Reviewer], &[Reviewer]),
    reviewers: Option<Vec<Reviewer>>,
    fallback: Option<Vec<Reviewer>>,
) -> Result<(Vec<Reviewer>, Vec<Reviewer>)> {
    let reviewers = reviewers.unwrap_or_else(|| current.0.to_vec());
    let fallback = fallback.unwrap_or_else(|| current.1.to_vec());
    if let Some(gone) = current.1.iter().find(|r| !fallback.contains(r)) {
        return Err(Error::conflict(
            "FallbackReviewerRemoved",
            format!(
                "Fallback reviewers can only be added to a review in progress; '{}' is missing from 'fallbackReviewers'. Send the current ones with any new ones.",
                gone.query().0
            ),
        )
        .with_target("fallbackReviewers"));
    }
    let reviewers = if reviewers.is_empty() { vec![Reviewer::SelfReview] } else { reviewers };
    Ok((reviewers, fallback))
}

/// New reviewers of a run in progress (instance PUT; its scope is sent unchanged), or of
/// the stage under way when `at` names one (stage PATCH). A run with stages changes its
/// reviewers through the stage under way. The items are assigned to the new reviewers in
/// the background. Returns the run and, for a stage, the stage.
pub async fn change_reviewers_at(
    app: &App,
    caller: &Caller,
    at: ItemsAt<'_>,
    reviewers: Option<Vec<Reviewer>>,
    fallback: Option<Vec<Reviewer>>,
) -> Result<(ReviewInstance, Option<ReviewStage>)> {
    caller.require(REVIEW_WRITE)?;
    let caller = caller.clone();
    let now = app.now();
    let (d, i, s) = at.owned();
    let out = app
        .store
        .write(move |c| {
            let (_, mut inst) = managed_instance(c, &caller, &d, &i)?;
            if inst.status != InstanceStatus::InProgress {
                return Err(Error::conflict(
                    "AccessReviewInstanceNotInProgress",
                    format!(
                        "Access review instance '{}' is {}; reviewers can only be changed while it is InProgress.",
                        inst.id,
                        inst.status.as_str()
                    ),
                ));
            }
            let stage = match &s {
                Some(s) => Some(current_stage_of(&inst, s)?),
                None if inst.is_multi_stage() => {
                    return Err(Error::bad_request(
                        "MultiStageReview",
                        "This review has stages: change the reviewers of the stage under way with PATCH …/stages/{stageId}.",
                    )
                    .with_target("reviewers"));
                }
                None => None,
            };
            let (r, f) = match stage {
                Some(k) => {
                    let st = &mut inst.stages[k];
                    (&mut st.reviewers, &mut st.fallback_reviewers)
                }
                None => (&mut inst.reviewers, &mut inst.fallback_reviewers),
            };
            let (new_r, new_f) = change_reviewers((r.as_slice(), f.as_slice()), reviewers, fallback)?;
            (*r, *f) = (new_r, new_f);
            repo::update(c, &inst)?;
            reassign_soon(c, now, &inst, caller.id())?;
            let stage = stage.map(|k| inst.stages[k].clone());
            Ok((inst, stage))
        })
        .await?;
    app.work_signal.notify_one();
    Ok(out)
}

fn reassign_soon(c: &mut dyn Conn, now: DateTime<Utc>, inst: &ReviewInstance, actor: &str) -> Result<()> {
    crate::jobs::cancel(c, JOB_REASSIGN, &inst.id)?;
    crate::jobs::enqueue(c, JOB_REASSIGN, &inst.id, now, json!({}))?;
    let (r, f) = inst.current_reviewers();
    let show = |v: &[Reviewer]| v.iter().map(|r| r.query().0).collect::<Vec<_>>();
    crate::audit::record(
        c,
        crate::audit::AuditEvent {
            at: now,
            actor_id: Some(actor),
            entity_type: "accessReviewInstance",
            entity_id: &inst.id,
            action: "reviewersChanged",
            detail: json!({ "reviewers": show(r), "fallbackReviewers": show(f) }),
        },
    )
}

/// The stages of a run (an empty list for a one-stage run); with `only_mine`, those where
/// the caller reviews an item now (`filterByCurrentUser(on='reviewer')`).
pub async fn list_stages(
    app: &App,
    caller: &Caller,
    (definition_id, instance_id): (&str, &str),
    only_mine: bool,
) -> Result<(ReviewInstance, Vec<ReviewStage>)> {
    caller.require(REVIEW_READ)?;
    let caller = caller.clone();
    let (d, i) = (definition_id.to_string(), instance_id.to_string());
    app.store
        .read(move |c| {
            let (_, inst, full) = visible_instance(c, &caller, &d, &i)?;
            let mine = reviews_in(c, caller.user_id(), &inst.id)?;
            let stages = inst
                .stages
                .iter()
                .filter(|s| {
                    let current = inst.current_stage().map(|x| x.index) == Some(s.index);
                    (full && !only_mine) || (mine && current && s.status == InstanceStatus::InProgress)
                })
                .cloned()
                .collect();
            Ok((inst, stages))
        })
        .await
}

pub async fn get_stage(
    app: &App,
    caller: &Caller,
    (definition_id, instance_id, stage_id): (&str, &str, &str),
) -> Result<(ReviewInstance, ReviewStage)> {
    caller.require(REVIEW_READ)?;
    let caller = caller.clone();
    let (d, i, s) = (definition_id.to_string(), instance_id.to_string(), stage_id.to_string());
    app.store
        .read(move |c| {
            let (_, inst, _) = visible_instance(c, &caller, &d, &i)?;
            let stage = find_stage(&inst, &s)?.clone();
            Ok((inst, stage))
        })
        .await
}

/// Stage `stop`: the stage under way ends now; the next one starts (or, for the last
/// stage, the run ends).
pub async fn stop_stage(
    app: &App,
    caller: &Caller,
    (definition_id, instance_id, stage_id): (&str, &str, &str),
) -> Result<()> {
    caller.require(REVIEW_WRITE)?;
    let caller = caller.clone();
    let now = app.now();
    let (d, i, s) = (definition_id.to_string(), instance_id.to_string(), stage_id.to_string());
    app.store
        .write(move |c| {
            let (_, mut inst) = managed_instance(c, &caller, &d, &i)?;
            if inst.status != InstanceStatus::InProgress {
                return Err(not_in_progress(&inst));
            }
            let index = current_stage_of(&inst, &s)?;
            if index + 1 >= inst.stage_settings.len() {
                return stop_in(c, now, &mut inst, caller.id());
            }
            inst.stages[index].end_date_time = now;
            repo::update(c, &inst)?;
            crate::jobs::cancel(c, JOB_STAGE, &inst.id)?;
            crate::jobs::enqueue(c, JOB_STAGE, &inst.id, now, json!({ "stage": index }))
        })
        .await?;
    app.work_signal.notify_one();
    Ok(())
}

/// Definition `stop`: the series ends. Its run in progress stops (its end follows), no
/// further run opens, and the policy's reviews are turned off so the two agree.
pub async fn stop_definition(app: &App, caller: &Caller, id: &str) -> Result<()> {
    caller.require(REVIEW_WRITE)?;
    let caller = caller.clone();
    let now = app.now();
    let id = id.to_string();
    app.store
        .write(move |c| {
            let mut def = managed_definition(c, &caller, &id)?;
            if def.status == DefinitionStatus::Completed {
                return Err(Error::conflict(
                    "AccessReviewDefinitionCompleted",
                    format!("Access review schedule definition '{}' has already ended.", def.id),
                ));
            }
            let running: Vec<ReviewInstance> =
                repo::find_all(c, "definition_id = ? AND status = 'InProgress'", &[Value::from(&def.id)])?;
            for mut inst in running {
                stop_in(c, now, &mut inst, caller.id())?;
            }
            def.status = DefinitionStatus::Completed;
            def.last_modified_date_time = now;
            repo::update(c, &def)?;
            crate::jobs::cancel(c, JOB_OPEN, &def.id)?;
            if let Some(mut policy) = repo::get::<Policy>(c, &def.policy_id)?
                && let Some(r) = policy.review_settings.as_mut()
                && r.is_enabled
            {
                r.is_enabled = false;
                policy.modified_date_time = now;
                repo::update(c, &policy)?;
            }
            crate::audit::record(
                c,
                crate::audit::AuditEvent {
                    at: now,
                    actor_id: Some(caller.id()),
                    entity_type: "accessReviewScheduleDefinition",
                    entity_id: &def.id,
                    action: "stop",
                    detail: json!({ "policyId": def.policy_id }),
                },
            )
        })
        .await?;
    app.work_signal.notify_one();
    Ok(())
}
