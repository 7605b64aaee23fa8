//! Who is told what, as Entra does it: each function runs in the transaction of the change
//! it reports and writes one mail per recipient through [`crate::mail::enqueue`].
//!
//! - Approvers of the stage that starts waiting (`approvalPending`), and the escalation
//!   approvers when it escalates (`approvalEscalated`).
//! - For users' own requests (`userAdd`, `userUpdate`, `userExtend`, `userRemove`), the
//!   person who asked and the person it is for: `requestApproved` (only when access does not
//!   follow at once: a later start, or a workflow to wait for; Entra's "access delivered"
//!   mail says it otherwise), `requestDenied` (also when no decision came in time),
//!   `accessDelivered`, `deliveryFailed`, `requestCanceled` (by an administrator).
//!   Administrators' direct assignments send none, as in Entra.
//! - The assignee 14 days and 1 day before access ends (`accessExpiring`, with the extend
//!   link when the policy lets them extend).
//! - The stage's other approvers when one of them decided it (`approvalDecided`), all of
//!   them when nobody decided in time (`approvalExpired`), and halfway to the stage's
//!   deadline while it waits (`approvalReminder`).
//! - The assignee when access ended: its schedule ran out or an access review removed it
//!   (`accessEnded`).
//! - Reviewers when a review run starts (`reviewStarted`) and when reminded
//!   (`reviewReminder`), when the review's mail settings are on.
//!
//! A policy whose `notificationSettings` (beta `accessPackageNotificationSettings`) has
//! `isAssignmentNotificationDisabled: true` sends no `accessDelivered`, `accessExpiring` or
//! `accessEnded` mails: the assignment mails Entra's switch turns off. Approval mails are not affected.

use crate::mail::{self, Notice};
use chrono::{DateTime, Utc};
use grantry_domain::Result;
use grantry_domain::enums::{RequestState, RequestStatus};
use grantry_domain::model::{
    AccessPackage, Approval, Assignment, AssignmentRequest, OutboxMessage, Policy, ReviewInstance, Subject, User,
};
use grantry_store::{Conn, repo};
use serde_json::{Map, Value, json};

/// How dates read in mails.
pub fn date(t: DateTime<Utc>) -> String {
    t.format("%-d %B %Y, %H:%M UTC").to_string()
}

fn package_name(c: &mut dyn Conn, id: &str) -> Result<String> {
    Ok(repo::get::<AccessPackage>(c, id)?.map(|p| p.display_name).unwrap_or_else(|| id.to_string()))
}

/// The directory user behind a subject, and a name to show for it.
fn subject_user(c: &mut dyn Conn, subject_id: Option<&str>) -> Result<(Option<String>, String)> {
    let Some(id) = subject_id else { return Ok((None, String::new())) };
    let Some(s) = repo::get::<Subject>(c, id)? else { return Ok((None, String::new())) };
    let user = match &s.object_id {
        Some(o) => repo::get::<User>(c, o)?,
        None => None,
    };
    let name = user
        .as_ref()
        .map(|u| u.display_name.clone())
        .or(s.display_name.clone())
        .or(s.email.clone())
        .or(s.principal_name.clone())
        .unwrap_or_default();
    Ok((s.object_id, name))
}

/// Whether the policy turned off assignment mails (`isAssignmentNotificationDisabled`).
fn assignment_mails_off(policy: Option<&Policy>) -> bool {
    policy
        .and_then(|p| p.notification_settings.as_ref())
        .and_then(|s| s.get("isAssignmentNotificationDisabled"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// A request mail's variables, and the directory users it is for and who asked for it.
type RequestFacts = (Map<String, Value>, Option<String>, Option<String>);

/// The facts every request mail carries.
fn request_vars(c: &mut dyn Conn, r: &AssignmentRequest) -> Result<RequestFacts> {
    let (target_user, target_name) = subject_user(c, Some(&r.target_subject_id))?;
    let (requestor_user, requestor_name) = if r.requestor_subject_id.as_deref() == Some(r.target_subject_id.as_str()) {
        (target_user.clone(), target_name.clone())
    } else {
        subject_user(c, r.requestor_subject_id.as_deref())?
    };
    let mut vars = Map::new();
    vars.insert("packageName".into(), json!(package_name(c, &r.access_package_id)?));
    vars.insert("targetName".into(), json!(target_name));
    vars.insert(
        "requestorName".into(),
        json!(if requestor_name.is_empty() { target_name.clone() } else { requestor_name }),
    );
    let for_target = requestor_user.is_some() && target_user.is_some() && requestor_user != target_user;
    vars.insert("forTarget".into(), json!(for_target));
    vars.insert("requestDate".into(), json!(date(r.created_date_time)));
    vars.insert("justification".into(), json!(r.justification.clone().unwrap_or_default()));
    Ok((vars, target_user, requestor_user))
}

/// The requestor's side of a request: the person it is for and the person who asked,
/// linked to the request.
fn to_requestor(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &AssignmentRequest,
    event: &str,
    template: &'static str,
    extra: Map<String, Value>,
) -> Result<()> {
    let path = format!("/access/requests/{}", r.id);
    to_requestor_at(c, now, r, event, template, extra, &path)
}

fn reason_of(detail: &Value) -> String {
    detail.get("reason").and_then(Value::as_str).unwrap_or_default().to_string()
}

/// A request moved to `r.state` (`delivery::set_state_by`): tells the people who must act
/// or who asked. `detail` is what the audit record says about the change.
pub fn request_changed(c: &mut dyn Conn, now: DateTime<Utc>, r: &AssignmentRequest, detail: &Value) -> Result<()> {
    if r.is_validation_only {
        return Ok(());
    }
    match r.state {
        RequestState::PendingApproval => approvers(c, now, r, r.status == RequestStatus::PendingApprovalEscalated),
        RequestState::Denied => {
            let mut extra = Map::new();
            extra.insert("expired".into(), json!(r.status == RequestStatus::Expired));
            extra.insert("reason".into(), json!(reason_of(detail)));
            to_requestor(c, now, r, "denied", "requestDenied", extra)
        }
        RequestState::Delivered | RequestState::PartiallyDelivered
            if r.request_type.is_user() && !r.request_type.is_remove() =>
        {
            let policy = match &r.policy_id {
                Some(p) => repo::get::<Policy>(c, p)?,
                None => None,
            };
            if assignment_mails_off(policy.as_ref()) {
                return Ok(());
            }
            let end = match &r.assignment_id {
                Some(a) => repo::get::<Assignment>(c, a)?.and_then(|a| crate::delivery::assignment_end(&a)),
                None => None,
            };
            let mut extra = Map::new();
            extra.insert("extended".into(), json!(r.request_type.is_update()));
            extra.insert("partial".into(), json!(r.state == RequestState::PartiallyDelivered));
            extra.insert("endDate".into(), json!(end.map(date).unwrap_or_default()));
            let state = r.state.v1();
            to_requestor_at(c, now, r, state, "accessDelivered", extra, "/access/assignments")
        }
        RequestState::DeliveryFailed => {
            let mut extra = Map::new();
            extra.insert("reason".into(), json!(reason_of(detail)));
            to_requestor(c, now, r, "deliveryFailed", "deliveryFailed", extra)
        }
        _ => Ok(()),
    }
}

/// [`to_requestor`] linking to `path` instead of the request.
fn to_requestor_at(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &AssignmentRequest,
    event: &str,
    template: &'static str,
    extra: Map<String, Value>,
    path: &str,
) -> Result<()> {
    if !r.request_type.is_user() || r.is_validation_only {
        return Ok(());
    }
    let (mut vars, target, requestor) = request_vars(c, r)?;
    vars.extend(extra);
    let mut recipients: Vec<String> = target.into_iter().collect();
    if let Some(q) = requestor
        && !recipients.contains(&q)
    {
        recipients.push(q);
    }
    for user in recipients {
        let notice =
            Notice { event: format!("request:{}:{event}", r.id), template, path: path.to_string(), vars: vars.clone() };
        mail::enqueue(c, now, &user, notice)?;
    }
    Ok(())
}

/// The approvers of the stage in progress: its approvers when it starts, its escalation
/// approvers when it escalates.
fn approvers(c: &mut dyn Conn, now: DateTime<Utc>, r: &AssignmentRequest, escalated: bool) -> Result<()> {
    let Some(approval) = repo::get::<Approval>(c, &r.id)? else { return Ok(()) };
    let Some(stage) = approval.current_stage() else { return Ok(()) };
    let (mut vars, _, _) = request_vars(c, r)?;
    vars.insert("dueDate".into(), json!(stage.due_date_time.map(date).unwrap_or_default()));
    vars.insert(
        "stage".into(),
        json!(if approval.stages.len() > 1 { (stage.index + 1).to_string() } else { String::new() }),
    );
    let (users, template, what) = if escalated {
        (&stage.escalation_approver_ids, "approvalEscalated", "escalated")
    } else {
        (&stage.approver_ids, "approvalPending", "pending")
    };
    for user in users.clone() {
        mail::enqueue(
            c,
            now,
            &user,
            Notice {
                event: format!("approval:{}:stage{}:{what}", r.id, stage.index),
                template,
                path: format!("/approvals/{}", r.id),
                vars: vars.clone(),
            },
        )?;
    }
    Ok(())
}

/// The people who could decide stage `index`: its approvers, and its escalation approvers
/// once it escalated; `except` (who decided it) is left out.
fn stage_people(approval: &Approval, index: usize, except: Option<&str>) -> Vec<String> {
    let Some(stage) = approval.stages.get(index) else { return Vec::new() };
    let mut out: Vec<String> = Vec::new();
    let escalation = if stage.escalated { stage.escalation_approver_ids.as_slice() } else { &[] };
    for id in stage.approver_ids.iter().chain(escalation) {
        if Some(id.as_str()) != except && !out.contains(id) {
            out.push(id.clone());
        }
    }
    out
}

/// A stage's variables beside the request's: its number (in multi-stage approvals) and due date.
fn stage_vars(
    c: &mut dyn Conn,
    r: &AssignmentRequest,
    approval: &Approval,
    index: usize,
) -> Result<Map<String, Value>> {
    let (mut vars, _, _) = request_vars(c, r)?;
    let due = approval.stages.get(index).and_then(|s| s.due_date_time);
    vars.insert("dueDate".into(), json!(due.map(date).unwrap_or_default()));
    vars.insert("stage".into(), json!(if approval.stages.len() > 1 { (index + 1).to_string() } else { String::new() }));
    Ok(vars)
}

fn to_stage(c: &mut dyn Conn, now: DateTime<Utc>, people: Vec<String>, notice: impl Fn() -> Notice) -> Result<()> {
    for user in people {
        mail::enqueue(c, now, &user, notice())?;
    }
    Ok(())
}

/// Stage `index` of `r`'s approval was decided by `decider`: the stage's other approvers
/// are told it no longer waits for them (Entra's "Request approved for … to …"; Grantry
/// also tells them of a denial).
pub fn approval_decided(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &AssignmentRequest,
    approval: &Approval,
    index: usize,
    decider: &str,
    approved: bool,
) -> Result<()> {
    if r.is_validation_only {
        return Ok(());
    }
    let people = stage_people(approval, index, Some(decider));
    if people.is_empty() {
        return Ok(());
    }
    let mut vars = stage_vars(c, r, approval, index)?;
    let stage = &approval.stages[index];
    let decider_name = match repo::get::<User>(c, decider)? {
        Some(u) => u.display_name,
        None => {
            stage.reviewed_by.as_ref().and_then(|b| b.display_name.clone()).unwrap_or_else(|| "Another approver".into())
        }
    };
    vars.insert("deciderName".into(), json!(decider_name));
    vars.insert("approved".into(), json!(approved));
    vars.insert("justification".into(), json!(stage.justification.clone().unwrap_or_default()));
    let event = format!("approval:{}:stage{index}:decided", r.id);
    let path = format!("/approvals/{}", r.id);
    to_stage(c, now, people, || Notice {
        event: event.clone(),
        template: "approvalDecided",
        path: path.clone(),
        vars: vars.clone(),
    })
}

/// Nobody decided stage `index` before its deadline: its approvers are told the request
/// expired (Entra's "Request has expired for …").
pub fn approval_expired(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &AssignmentRequest,
    approval: &Approval,
    index: usize,
) -> Result<()> {
    if r.is_validation_only {
        return Ok(());
    }
    let people = stage_people(approval, index, None);
    let vars = stage_vars(c, r, approval, index)?;
    let event = format!("approval:{}:stage{index}:expired", r.id);
    let path = format!("/approvals/{}", r.id);
    to_stage(c, now, people, || Notice {
        event: event.clone(),
        template: "approvalExpired",
        path: path.clone(),
        vars: vars.clone(),
    })
}

/// Halfway to stage `index`'s deadline, its approvers are reminded that it still waits.
pub fn approval_reminder(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &AssignmentRequest,
    approval: &Approval,
    index: usize,
) -> Result<()> {
    if r.is_validation_only {
        return Ok(());
    }
    let people = stage_people(approval, index, None);
    let vars = stage_vars(c, r, approval, index)?;
    let event = format!("approval:{}:stage{index}:reminder", r.id);
    let path = format!("/approvals/{}", r.id);
    to_stage(c, now, people, || Notice {
        event: event.clone(),
        template: "approvalReminder",
        path: path.clone(),
        vars: vars.clone(),
    })
}

/// Every stage of a request was approved, but access does not follow at once (it starts
/// later, or a workflow must answer first).
pub fn request_approved(c: &mut dyn Conn, now: DateTime<Utc>, r: &AssignmentRequest) -> Result<()> {
    let mut extra = Map::new();
    let start = r.schedule.start_date_time.filter(|s| *s > now);
    extra.insert("startDate".into(), json!(start.map(date).unwrap_or_default()));
    to_requestor(c, now, r, "approved", "requestApproved", extra)
}

/// An administrator (`actor_user_id`, not the requestor nor the target) canceled `r`.
pub fn request_canceled(c: &mut dyn Conn, now: DateTime<Utc>, r: &AssignmentRequest, actor_name: &str) -> Result<()> {
    let mut extra = Map::new();
    extra.insert("actorName".into(), json!(actor_name));
    to_requestor(c, now, r, "canceled", "requestCanceled", extra)
}

/// `days` days before `a` ends (at `end`): tells the assignee.
pub fn assignment_expiring(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    a: &Assignment,
    end: DateTime<Utc>,
    days: i64,
) -> Result<()> {
    let policy = repo::get::<Policy>(c, &a.policy_id)?;
    if assignment_mails_off(policy.as_ref()) {
        return Ok(());
    }
    let (Some(user), _) = subject_user(c, Some(&a.target_subject_id))? else { return Ok(()) };
    let can_extend = policy.as_ref().is_some_and(|p| p.requestor_settings.enable_targets_to_self_update_access);
    let mut vars = Map::new();
    vars.insert("packageName".into(), json!(package_name(c, &a.access_package_id)?));
    vars.insert("endDate".into(), json!(date(end)));
    vars.insert("daysLeft".into(), json!(days.to_string()));
    vars.insert("oneDay".into(), json!(days == 1));
    vars.insert("canExtend".into(), json!(can_extend));
    mail::enqueue(
        c,
        now,
        &user,
        Notice {
            event: format!("assignment:{}:expiring:{days}:{}", a.id, end.timestamp()),
            template: "accessExpiring",
            path: "/access/assignments".into(),
            vars,
        },
    )
}

/// `a` ended (its schedule ran out, or an access review removed it): the assignee is told
/// (Entra's "Access has ended for …"), unless the policy turned assignment mails off.
/// `reason` says why.
pub fn access_ended(c: &mut dyn Conn, now: DateTime<Utc>, a: &Assignment, reason: &str) -> Result<()> {
    let policy = repo::get::<Policy>(c, &a.policy_id)?;
    if assignment_mails_off(policy.as_ref()) {
        return Ok(());
    }
    let (Some(user), _) = subject_user(c, Some(&a.target_subject_id))? else { return Ok(()) };
    let mut vars = Map::new();
    vars.insert("packageName".into(), json!(package_name(c, &a.access_package_id)?));
    vars.insert("endDate".into(), json!(date(a.expired_date_time.unwrap_or(now))));
    vars.insert("reason".into(), json!(reason));
    mail::enqueue(
        c,
        now,
        &user,
        Notice {
            event: format!("assignment:{}:ended", a.id),
            template: "accessEnded",
            path: format!("/access/packages/{}", a.access_package_id),
            vars,
        },
    )
}

/// [`access_ended`] for many assignments ended together (expiry in sets): the same mails,
/// with the users, packages and already-written mails read in a few statements. `policies`
/// and `members` (subject id → user id) are what the caller has loaded already.
pub fn access_ended_many(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    ended: &[Assignment],
    reason: &str,
    policies: &std::collections::HashMap<String, Policy>,
    members: &std::collections::HashMap<String, Option<String>>,
) -> Result<()> {
    use std::collections::HashMap;
    let told: Vec<(&Assignment, &str)> = ended
        .iter()
        .filter(|a| !assignment_mails_off(policies.get(&a.policy_id)))
        .filter_map(|a| members.get(&a.target_subject_id).and_then(|m| m.as_deref()).map(|u| (a, u)))
        .collect();
    if told.is_empty() {
        return Ok(());
    }
    let user_ids: Vec<String> = told.iter().map(|(_, u)| u.to_string()).collect();
    let users: HashMap<String, User> =
        crate::expiry::bodies_in::<User>(c, "id", &user_ids)?.into_iter().map(|u| (u.id.clone(), u)).collect();
    let package_ids: Vec<String> = told.iter().map(|(a, _)| a.access_package_id.clone()).collect();
    let packages: HashMap<String, String> = crate::expiry::bodies_in::<AccessPackage>(c, "id", &package_ids)?
        .into_iter()
        .map(|p| (p.id.clone(), p.display_name))
        .collect();
    let mut messages = Vec::with_capacity(told.len());
    for (a, user_id) in told {
        let Some(user) = users.get(user_id) else { continue };
        let mut vars = Map::new();
        let name = packages.get(&a.access_package_id).cloned().unwrap_or_else(|| a.access_package_id.clone());
        vars.insert("packageName".into(), json!(name));
        vars.insert("endDate".into(), json!(date(a.expired_date_time.unwrap_or(now))));
        vars.insert("reason".into(), json!(reason));
        let notice = Notice {
            event: format!("assignment:{}:ended", a.id),
            template: "accessEnded",
            path: format!("/access/packages/{}", a.access_package_id),
            vars,
        };
        messages.extend(mail::message_for(now, user, notice));
    }
    // A mail is written once: drop those an earlier run wrote.
    let ids: Vec<String> = messages.iter().map(|m| m.id.clone()).collect();
    let written: std::collections::HashSet<String> =
        crate::expiry::bodies_in::<OutboxMessage>(c, "id", &ids)?.into_iter().map(|m| m.id).collect();
    messages.retain(|m| !written.contains(&m.id));
    repo::insert_many(c, &messages)
}

fn review_notice(inst: &ReviewInstance, package: &str, event: String, template: &'static str) -> Notice {
    let mut vars = Map::new();
    vars.insert("packageName".into(), json!(package));
    vars.insert("endDate".into(), json!(date(inst.end_date_time)));
    Notice { event, template, path: format!("/reviews/{}/instances/{}", inst.definition_id, inst.id), vars }
}

/// A review run (or stage `stage` of a multi-stage run) started and `reviewer` has items
/// to decide.
pub fn review_started(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    inst: &ReviewInstance,
    package: &str,
    reviewer: &str,
    stage: usize,
) -> Result<()> {
    if !inst.settings.mail_notifications_enabled {
        return Ok(());
    }
    let event = if stage == 0 {
        format!("review:{}:started", inst.id)
    } else {
        format!("review:{}:stage{stage}:started", inst.id)
    };
    let mut notice = review_notice(inst, package, event, "reviewStarted");
    if let Some(s) = inst.current_stage() {
        notice.vars.insert("endDate".into(), json!(date(s.end_date_time)));
        notice.vars.insert("stage".into(), json!((s.index + 1).to_string()));
    }
    mail::enqueue(c, now, reviewer, notice)
}

/// A reminder to the reviewers who still have undecided items of a run (of its stage under
/// way, for a run with stages: the mail names the stage and its end).
pub fn review_reminder(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    inst: &ReviewInstance,
    reviewers: &[String],
) -> Result<()> {
    if !inst.settings.mail_notifications_enabled {
        return Ok(());
    }
    let package = match repo::get::<grantry_domain::model::ReviewDefinition>(c, &inst.definition_id)? {
        Some(d) => package_name(c, &d.access_package_id)?,
        None => String::new(),
    };
    let stage = inst.current_stage();
    for reviewer in reviewers {
        let event = match stage {
            Some(s) => format!("review:{}:stage{}:reminder:{}", inst.id, s.index, now.timestamp_micros()),
            None => format!("review:{}:reminder:{}", inst.id, now.timestamp_micros()),
        };
        let mut notice = review_notice(inst, &package, event, "reviewReminder");
        if let Some(s) = stage {
            notice.vars.insert("endDate".into(), json!(date(s.end_date_time)));
            notice.vars.insert("stage".into(), json!((s.index + 1).to_string()));
        }
        mail::enqueue(c, now, reviewer, notice)?;
    }
    Ok(())
}
