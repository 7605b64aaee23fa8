//! Automatic assignment policies: a policy whose `specificAllowedTargets` holds an
//! `attributeRuleMembers{membershipRule}` and whose `automaticRequestSettings` has
//! `requestAccessForAllowedTargets` assigns its access package to every user the rule
//! matches (a delivered `systemAdd` request each) and, with
//! `removeAccessWhenTargetLeavesAllowedTargets`, removes it from users who stop matching
//! (a `systemRemove`), after `gracePeriodBeforeAccessRemoval` on the injected clock.
//!
//! Everything runs as jobs, written in the transaction of the change that causes them:
//! - `autoassign.policy` (when the policy is created or replaced) walks the directory in
//!   bounded steps: first the users (adds), then the policy's active assignments
//!   (removals), [`SCAN`] rows or [`CHANGES`] changes per run of the job, rescheduling
//!   itself for the rest, so a rule matching 100,000 users never holds the writer long;
//! - `autoassign.user` (when a user is created, changed or deleted) evaluates that user
//!   against every automatic policy;
//! - `autoassign.remove` ends an assignment once its grace period is over, if the user
//!   still does not match.
//!
//! Handlers are idempotent: each looks at the current state (is there an active
//! assignment, an open request, a pending removal) before acting.

use crate::audit::{self, AuditEvent};
use crate::delivery::{self, SYSTEM_ACTOR};
use crate::jobs::{self, Job, JobContext};
use chrono::{DateTime, Utc};
use grantry_domain::enums::{RequestState, RequestStatus, RequestType};
use grantry_domain::membership_rule::Rule;
use grantry_domain::model::*;
use grantry_domain::{Result, ids};
use grantry_store::{Conn, Value, repo};
use serde_json::json;

pub const JOB_POLICY: &str = "autoassign.policy";
pub const JOB_USER: &str = "autoassign.user";
pub const JOB_REMOVE: &str = "autoassign.remove";

/// Most rows (users or assignments) one run of `autoassign.policy` looks at.
pub const SCAN: usize = 500;
/// Most assignments one run of `autoassign.policy` adds or removes.
pub const CHANGES: usize = 25;

pub fn handler(kind: &str) -> Option<jobs::Handler> {
    match kind {
        JOB_POLICY => Some(policy_job),
        JOB_USER => Some(user_job),
        JOB_REMOVE => Some(remove_job),
        _ => None,
    }
}

/// The membership rule of an automatic assignment policy; `None` for other policies.
pub fn automatic_rule(p: &Policy) -> Option<&str> {
    let settings = p.automatic_request_settings.as_ref()?;
    if !settings.request_access_for_allowed_targets {
        return None;
    }
    p.specific_allowed_targets.iter().find_map(|t| match t {
        SubjectSet::AttributeRuleMembers { membership_rule: Some(r), .. } => Some(r.as_str()),
        _ => None,
    })
}

/// The parsed rule of an automatic policy. Rules are checked when the policy is stored, so
/// a stored rule that no longer parses (it could only be one written by an older Grantry)
/// is treated as matching nobody and logged.
fn rule_of(p: &Policy) -> Option<Rule> {
    let text = automatic_rule(p)?;
    match Rule::parse(text) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(policy = %p.id, error = %e, "stored membership rule does not parse; the policy assigns nobody");
            None
        }
    }
}

/// In the policy's write transaction (create or replace): records whether the policy is
/// automatic and, if it is, schedules its convergence from the first user.
pub fn sync_for_policy(c: &mut dyn Conn, now: DateTime<Utc>, policy: &Policy) -> Result<()> {
    remove_for_policy(c, &policy.id)?;
    if automatic_rule(policy).is_some() {
        c.execute(
            "INSERT INTO auto_policies (policy_id, access_package_id) VALUES (?, ?)",
            &[Value::from(&policy.id), Value::from(&policy.access_package_id)],
        )?;
        jobs::enqueue(c, JOB_POLICY, &policy.id, now, json!({ "phase": "add", "after": 0 }))?;
    }
    Ok(())
}

/// In the policy's delete transaction (or before re-recording it).
pub fn remove_for_policy(c: &mut dyn Conn, policy_id: &str) -> Result<()> {
    c.execute("DELETE FROM auto_policies WHERE policy_id = ?", &[Value::from(policy_id)])?;
    jobs::cancel(c, JOB_POLICY, policy_id)
}

/// Another automatic policy of the same package, if any (a package has at most one, as
/// in Entra: two would compete for the one assignment a user may hold).
pub fn other_automatic_policy(c: &mut dyn Conn, package_id: &str, policy_id: &str) -> Result<Option<String>> {
    c.query_one(
        "SELECT policy_id FROM auto_policies WHERE access_package_id = ? AND policy_id <> ?",
        &[Value::from(package_id), Value::from(policy_id)],
    )?
    .map(|r| r.text(0))
    .transpose()
}

/// In the transaction that creates, changes or deletes user `user_id`: schedules the
/// user's evaluation against the automatic policies, if there are any (one pending
/// evaluation per user is enough).
pub fn user_changed(c: &mut dyn Conn, now: DateTime<Utc>, user_id: &str) -> Result<()> {
    if c.query_one("SELECT 1 FROM auto_policies LIMIT 1", &[])?.is_none() {
        return Ok(());
    }
    let pending = c
        .query_one(
            "SELECT 1 FROM jobs WHERE kind = ? AND entity_id = ?",
            &[Value::from(JOB_USER), Value::from(user_id)],
        )?
        .is_some();
    if pending {
        return Ok(());
    }
    jobs::enqueue(c, JOB_USER, user_id, now, json!({}))
}

fn automatic_policies(c: &mut dyn Conn) -> Result<Vec<Policy>> {
    repo::find_all(c, "id IN (SELECT policy_id FROM auto_policies)", &[])
}

/// The active assignment of `subject_id` to `package_id`, if any.
fn active_assignment(c: &mut dyn Conn, subject_id: &str, package_id: &str) -> Result<Option<Assignment>> {
    repo::find_one(
        c,
        "target_subject_id = ? AND access_package_id = ? AND active = 1",
        &[Value::from(subject_id), Value::from(package_id)],
    )
}

/// What converging one user did.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    None,
    Added,
    Removed,
}

/// Brings one user's access through `policy` in line with the rule: `user` is `None` when
/// the user no longer exists.
fn converge_user(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    policy: &Policy,
    rule: &Rule,
    user_id: &str,
    user: Option<&User>,
) -> Result<Change> {
    let subject = crate::requests::subject_by_object_id(c, user_id)?;
    let active = match &subject {
        Some(s) => active_assignment(c, &s.id, &policy.access_package_id)?,
        None => None,
    };
    match user {
        Some(u) if rule.matches(u) => match active {
            Some(a) => {
                if a.policy_id == policy.id {
                    // Back in scope before the grace period ended: the access stays.
                    jobs::cancel(c, JOB_REMOVE, &a.id)?;
                }
                Ok(Change::None)
            }
            None => add(c, now, policy, u),
        },
        _ => match active {
            Some(mut a) if a.policy_id == policy.id => leave(c, now, policy, &mut a, user.is_none()),
            _ => Ok(Change::None),
        },
    }
}

/// Assigns the package to a matching user through a delivered `systemAdd` request.
fn add(c: &mut dyn Conn, now: DateTime<Utc>, policy: &Policy, user: &User) -> Result<Change> {
    let subject = crate::requests::ensure_user_subject(c, user, now)?;
    let open = c.query_one(
        "SELECT 1 FROM requests WHERE target_subject_id = ? AND access_package_id = ? AND open_kind = 'add'",
        &[Value::from(&subject.id), Value::from(&policy.access_package_id)],
    )?;
    if open.is_some() {
        // The user's own request is under way; a later evaluation sees its outcome.
        return Ok(Change::None);
    }
    let target = crate::requests::Target {
        subject: Some(subject.clone()),
        user: Some(user.clone()),
        email: user.mail.clone(),
        display_name: Some(user.display_name.clone()),
    };
    if let Err(e) = crate::requests::check_incompatible(c, &policy.access_package_id, &target) {
        tracing::info!(policy = %policy.id, user = %user.id, reason = %e.message, "automatic assignment skipped");
        return Ok(Change::None);
    }
    let mut r = AssignmentRequest {
        id: ids::new_id(),
        request_type: RequestType::SystemAdd,
        state: RequestState::Submitted,
        status: RequestStatus::Accepted,
        access_package_id: policy.access_package_id.clone(),
        catalog_id: policy.catalog_id.clone(),
        policy_id: Some(policy.id.clone()),
        assignment_id: None,
        target_subject_id: subject.id.clone(),
        requestor_subject_id: None,
        created_by: SYSTEM_ACTOR.into(),
        justification: Some("The user matches the membership rule of an automatic assignment policy.".into()),
        answers: Vec::new(),
        schedule: Schedule::default(),
        is_validation_only: false,
        created_date_time: now,
        completed_date_time: None,
        custom_extension_callout_instances: Vec::new(),
    };
    repo::insert(c, &r)?;
    audit::record(
        c,
        AuditEvent {
            at: now,
            actor_id: None,
            entity_type: "accessPackageAssignmentRequest",
            entity_id: &r.id,
            action: "submitted",
            detail: json!({ "requestType": "systemAdd", "policyId": policy.id, "automatic": true }),
        },
    )?;
    delivery::process(c, now, &mut r)?;
    Ok(Change::Added)
}

/// A user who no longer matches (or no longer exists): removes the access now, after the
/// grace period, or not at all, as the policy says. A deleted user's access always goes.
fn leave(c: &mut dyn Conn, now: DateTime<Utc>, policy: &Policy, a: &mut Assignment, gone: bool) -> Result<Change> {
    let settings = policy.automatic_request_settings.clone().unwrap_or(AutomaticRequestSettings {
        request_access_for_allowed_targets: true,
        remove_access_when_target_leaves_allowed_targets: false,
        grace_period_before_access_removal: None,
    });
    if !gone && !settings.remove_access_when_target_leaves_allowed_targets {
        return Ok(Change::None);
    }
    let grace = settings.grace_period_before_access_removal.filter(|g| *g > chrono::Duration::zero());
    match grace {
        Some(g) if !gone => {
            let pending = c
                .query_one(
                    "SELECT 1 FROM jobs WHERE kind = ? AND entity_id = ?",
                    &[Value::from(JOB_REMOVE), Value::from(&a.id)],
                )?
                .is_some();
            if !pending {
                jobs::enqueue(c, JOB_REMOVE, &a.id, now + g, json!({ "policyId": policy.id }))?;
            }
            Ok(Change::None)
        }
        _ => {
            remove(c, now, policy, a, gone)?;
            Ok(Change::Removed)
        }
    }
}

fn remove(c: &mut dyn Conn, now: DateTime<Utc>, policy: &Policy, a: &mut Assignment, gone: bool) -> Result<()> {
    jobs::cancel(c, JOB_REMOVE, &a.id)?;
    let why = if gone {
        "The user no longer exists in the directory."
    } else {
        "The user no longer matches the membership rule of the automatic assignment policy."
    };
    delivery::system_remove(c, now, a, why, json!({ "policyId": policy.id, "automatic": true })).map(|_| ())
}

/// Job `autoassign.policy`: one bounded step of a policy's convergence. Phase `add` walks
/// the users after `after` (seq); phase `remove` walks the policy's active assignments.
fn policy_job(ctx: &JobContext, c: &mut dyn Conn, job: &Job) -> Result<()> {
    let Some(policy) = repo::get::<Policy>(c, &job.entity_id)? else { return Ok(()) };
    let Some(rule) = rule_of(&policy) else { return Ok(()) };
    let after = job.payload["after"].as_i64().unwrap_or(0);
    let phase = job.payload["phase"].as_str().unwrap_or("add");
    let mut changes = 0;
    let mut last = after;
    let mut more = false;
    if phase == "add" {
        let users: Vec<(i64, User)> = repo::list(c, "", &[], Some(after), SCAN)?;
        more = users.len() == SCAN;
        for (seq, u) in &users {
            last = *seq;
            if converge_user(c, ctx.now, &policy, &rule, &u.id, Some(u))? != Change::None {
                changes += 1;
                if changes >= CHANGES {
                    more = true;
                    break;
                }
            }
        }
        if !more {
            return jobs::enqueue(c, JOB_POLICY, &policy.id, ctx.now, json!({ "phase": "remove", "after": 0 }));
        }
        return jobs::enqueue(c, JOB_POLICY, &policy.id, ctx.now, json!({ "phase": "add", "after": last }));
    }
    let assignments: Vec<(i64, Assignment)> =
        repo::list(c, "policy_id = ? AND active = 1", &[Value::from(&policy.id)], Some(after), SCAN)?;
    more |= assignments.len() == SCAN;
    for (seq, a) in &assignments {
        last = *seq;
        let object_id = repo::get::<Subject>(c, &a.target_subject_id)?.and_then(|s| s.object_id);
        let Some(object_id) = object_id else { continue };
        let user = repo::get::<User>(c, &object_id)?;
        if converge_user(c, ctx.now, &policy, &rule, &object_id, user.as_ref())? != Change::None {
            changes += 1;
            if changes >= CHANGES {
                more = true;
                break;
            }
        }
    }
    if more {
        jobs::enqueue(c, JOB_POLICY, &policy.id, ctx.now, json!({ "phase": "remove", "after": last }))?;
    }
    Ok(())
}

/// Job `autoassign.user`: one user against every automatic policy.
fn user_job(ctx: &JobContext, c: &mut dyn Conn, job: &Job) -> Result<()> {
    let user = repo::get::<User>(c, &job.entity_id)?;
    for policy in automatic_policies(c)? {
        let Some(rule) = rule_of(&policy) else { continue };
        converge_user(c, ctx.now, &policy, &rule, &job.entity_id, user.as_ref())?;
    }
    Ok(())
}

/// Job `autoassign.remove`: the grace period of an assignment whose user left the rule is
/// over; it ends unless the user matches again (or the policy stopped being automatic).
fn remove_job(ctx: &JobContext, c: &mut dyn Conn, job: &Job) -> Result<()> {
    let Some(mut a) = repo::get::<Assignment>(c, &job.entity_id)? else { return Ok(()) };
    if !a.state.is_active() {
        return Ok(());
    }
    let Some(policy) = repo::get::<Policy>(c, &a.policy_id)? else { return Ok(()) };
    let Some(rule) = rule_of(&policy) else { return Ok(()) };
    if !policy.automatic_request_settings.as_ref().is_some_and(|s| s.remove_access_when_target_leaves_allowed_targets) {
        return Ok(());
    }
    let object_id = repo::get::<Subject>(c, &a.target_subject_id)?.and_then(|s| s.object_id);
    let user = match &object_id {
        Some(o) => repo::get::<User>(c, o)?,
        None => None,
    };
    if user.as_ref().is_some_and(|u| rule.matches(u)) {
        return Ok(());
    }
    remove(c, ctx.now, &policy, &mut a, user.is_none())
}
