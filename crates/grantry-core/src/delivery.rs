//! Processing and delivery of assignment requests, and the end of assignments.
//!
//! Everything here runs inside a job's (or a caller's) write transaction and is idempotent:
//! a handler acts only if the entity is still in the state it expects.

use crate::audit::{self, AuditEvent};
use crate::jobs::{Job, JobContext, cancel, enqueue};
use crate::membership;
use crate::requests::{JOB_PROCESS, JOB_START};
use chrono::{DateTime, Utc};
use grantry_domain::enums::{
    AssignmentState, CustomExtensionStage, ExpirationType, RequestState, RequestStatus, RequestType, UserType,
};
use grantry_domain::model::*;
use grantry_domain::{Error, Result, ids};
use grantry_store::{Conn, Value, repo};
use serde_json::json;

pub const JOB_EXPIRE: &str = "assignment.expire";

/// The id recorded as creator of requests the service makes itself.
pub const SYSTEM_ACTOR: &str = "00000000-0000-0000-0000-000000000000";

fn record(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    entity_type: &str,
    id: &str,
    action: &str,
    detail: serde_json::Value,
) -> Result<()> {
    audit::record(c, AuditEvent { at: now, actor_id: None, entity_type, entity_id: id, action, detail })
}

pub(crate) fn set_state(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &mut AssignmentRequest,
    state: RequestState,
    status: RequestStatus,
) -> Result<()> {
    set_state_by(c, now, r, state, status, None, json!({}))
}

/// Moves a request to `state`/`status`, recording who caused it and `detail` (merged with
/// the status) in the audit trail.
pub(crate) fn set_state_by(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &mut AssignmentRequest,
    state: RequestState,
    status: RequestStatus,
    actor_id: Option<&str>,
    detail: serde_json::Value,
) -> Result<()> {
    r.state = state;
    r.status = status;
    if state.is_final() {
        r.completed_date_time = Some(now);
    }
    repo::update_later(c, r)?;
    crate::webhooks::request_event(c, now, state.v1(), r)?;
    crate::notify::request_changed(c, now, r, &detail)?;
    let mut detail = detail;
    match &mut detail {
        serde_json::Value::Object(m) => {
            m.insert("status".into(), json!(status));
        }
        _ => detail = json!({ "status": status }),
    }
    audit::record(
        c,
        AuditEvent {
            at: now,
            actor_id,
            entity_type: "accessPackageAssignmentRequest",
            entity_id: &r.id,
            action: state.v1(),
            detail,
        },
    )
}

/// Job `request.process`: approval, scheduling or delivery of a submitted request.
pub fn process_job(ctx: &JobContext, c: &mut dyn Conn, job: &Job) -> Result<()> {
    let Some(mut r) = repo::get::<AssignmentRequest>(c, &job.entity_id)? else { return Ok(()) };
    if r.state != RequestState::Submitted {
        return Ok(());
    }
    process(c, ctx.now, &mut r)
}

/// Starts approval for a submitted request, or schedules or delivers it. New requests are
/// processed in the transaction that submits them, so an accepted request is never left
/// waiting for a worker; `request.process` jobs (reprocessing) run the same steps.
pub fn process(c: &mut dyn Conn, now: DateTime<Utc>, r: &mut AssignmentRequest) -> Result<()> {
    process_with(c, now, r, None)
}

/// What the transaction submitting a request has just established: the policy it resolved
/// and the target's subject, with every rule (scope, uniqueness, separation of duties)
/// checked in this same transaction, so delivery neither looks them up nor checks again.
pub struct Checked<'a> {
    pub policy: &'a Policy,
    pub subject: &'a Subject,
}

/// [`process`] for a request whose rules were just checked in this transaction.
pub fn process_checked(c: &mut dyn Conn, now: DateTime<Utc>, r: &mut AssignmentRequest, k: &Checked) -> Result<()> {
    process_with(c, now, r, Some(k))
}

fn process_with(c: &mut dyn Conn, now: DateTime<Utc>, r: &mut AssignmentRequest, k: Option<&Checked>) -> Result<()> {
    let loaded;
    let policy = match (k, &r.policy_id) {
        (Some(k), _) => Some(k.policy),
        (None, Some(p)) => {
            loaded = repo::get::<Policy>(c, p)?;
            loaded.as_ref()
        }
        (None, None) => None,
    };
    // Administrators' direct assignments do not wait for approval (as through Graph in
    // Entra); users' adds and updates do when the policy requires it.
    let needs_approval = policy.as_ref().is_some_and(|p| {
        let a = &p.approval;
        r.request_type.is_user()
            && !a.stages.is_empty()
            && ((r.request_type.is_add() && a.is_approval_required_for_add)
                || (r.request_type.is_update() && a.is_approval_required_for_update))
    });
    if needs_approval && let Some(policy) = policy {
        // A dynamic first stage asks the workflow for its approvers first (beta's
        // assignmentRequestDeterminingApprovalRequirements); the resume starts the approval.
        if crate::callouts::determine_approval(c, now, r, policy)? {
            return Ok(());
        }
        return crate::approvals::start_for_request(c, now, r, policy);
    }
    advance_with(c, now, r, k)
}

/// Continues a request that needs no (more) approval: waits for a future start, or delivers.
pub fn advance(c: &mut dyn Conn, now: DateTime<Utc>, r: &mut AssignmentRequest) -> Result<()> {
    advance_with(c, now, r, None)
}

/// [`advance`] for a request whose policy and target subject hold for delivery (checked in
/// this transaction, or read under an evaluation token that is still current).
pub fn advance_checked(c: &mut dyn Conn, now: DateTime<Utc>, r: &mut AssignmentRequest, k: &Checked) -> Result<()> {
    advance_with(c, now, r, Some(k))
}

fn advance_with(c: &mut dyn Conn, now: DateTime<Utc>, r: &mut AssignmentRequest, k: Option<&Checked>) -> Result<()> {
    if r.request_type.is_add()
        && let Some(start) = r.schedule.start_date_time
        && start > now
    {
        enqueue(c, JOB_START, &r.id, start, json!({}))?;
        return set_state(c, now, r, RequestState::Scheduled, RequestStatus::PendingNotBefore);
    }
    deliver_with(c, now, r, k)
}

/// Job `request.start`: a scheduled request whose start has come.
pub fn start_job(ctx: &JobContext, c: &mut dyn Conn, job: &Job) -> Result<()> {
    let Some(mut r) = repo::get::<AssignmentRequest>(c, &job.entity_id)? else { return Ok(()) };
    if r.state != RequestState::Scheduled {
        return Ok(());
    }
    deliver(c, ctx.now, &mut r)
}

/// When an assignment's access ends, if ever.
pub fn assignment_end(a: &Assignment) -> Option<DateTime<Utc>> {
    let start = a.schedule.start_date_time.unwrap_or(a.created_date_time);
    match a.schedule.expiration.kind {
        ExpirationType::NoExpiration | ExpirationType::NotSpecified => None,
        _ => a.schedule.expiration.end_date_time.or_else(|| a.schedule.expiration.end_for(start)),
    }
}

/// Delivers a request now, whatever its type.
pub fn deliver(c: &mut dyn Conn, now: DateTime<Utc>, r: &mut AssignmentRequest) -> Result<()> {
    deliver_with(c, now, r, None)
}

fn deliver_with(c: &mut dyn Conn, now: DateTime<Utc>, r: &mut AssignmentRequest, k: Option<&Checked>) -> Result<()> {
    if r.request_type.is_add() {
        deliver_add(c, now, r, k)
    } else if r.request_type.is_remove() {
        deliver_remove(c, now, r)
    } else {
        deliver_update(c, now, r)
    }
}

/// The group and relation an AadGroup resource role (`Member_{id}` / `Owner_{id}`) grants.
pub(crate) fn group_role(role: &ResourceRole) -> Option<(String, GroupRelation)> {
    if !role.origin_system.eq_ignore_ascii_case(origin_system::AAD_GROUP) {
        return None;
    }
    let (kind, gid) = role.origin_id.split_once('_')?;
    let rel = if kind.eq_ignore_ascii_case("Owner") { GroupRelation::Owner } else { GroupRelation::Member };
    Some((ids::normalize(gid), rel))
}

/// The service principal and app role an AadApplication resource role grants (the role's
/// originId is the app role's id, its resource's originId the service principal's id).
fn app_role(c: &mut dyn Conn, role: &ResourceRole) -> Result<Option<(String, String)>> {
    if !role.origin_system.eq_ignore_ascii_case(origin_system::AAD_APPLICATION) {
        return Ok(None);
    }
    Ok(repo::get::<Resource>(c, &role.resource_id)?.map(|r| (r.origin_id, ids::normalize(&role.origin_id))))
}

/// Creates a guest user for an external subject and links the subject to it.
fn provision_guest(c: &mut dyn Conn, now: DateTime<Utc>, subject: &mut Subject) -> Result<String> {
    let email = subject.email.clone().ok_or_else(|| Error::internal("external subject without email"))?;
    let upn = format!("{}#EXT#@grantry.local", email.replace('@', "_"));
    let existing: Option<User> = repo::find_one(c, "upn_lower = ?", &[Value::from(upn.to_lowercase())])?;
    let user_id = match existing {
        Some(u) => u.id,
        None => {
            let u = User {
                id: ids::new_id(),
                display_name: subject.display_name.clone().unwrap_or_else(|| email.clone()),
                user_principal_name: upn,
                mail: Some(email.clone()),
                given_name: None,
                surname: None,
                job_title: None,
                department: None,
                mail_nickname: email.split('@').next().map(str::to_string),
                user_type: UserType::Guest,
                account_enabled: true,
                manager_id: None,
                external_user_state: Some("Accepted".into()),
                profile: Default::default(),
                created_date_time: now,
            };
            repo::insert(c, &u)?;
            record(c, now, "user", &u.id, "guestInvited", json!({ "mail": email }))?;
            crate::autoassign::user_changed(c, now, &u.id)?;
            u.id
        }
    };
    subject.object_id = Some(user_id.clone());
    subject.principal_name = Some(format!("{}#EXT#@grantry.local", email.replace('@', "_")));
    repo::update(c, subject)?;
    Ok(user_id)
}

/// Whether an assignment being delivered already has role records (a redelivery).
#[derive(Clone, Copy)]
enum RolesOf {
    NewAssignment,
    Existing,
}

/// Delivers every role scope of the assignment's package not yet fulfilled. Returns the
/// number of roles that could not be delivered.
fn deliver_roles(c: &mut dyn Conn, now: DateTime<Utc>, a: &Assignment, member_id: &str, of: RolesOf) -> Result<usize> {
    // The package's role scopes with their resource roles, in one query.
    let rows = c.query(
        "SELECT s.body, r.body FROM role_scopes s LEFT JOIN resource_roles r ON r.id = s.role_id \
         WHERE s.access_package_id = ? ORDER BY s.seq",
        &[Value::from(&a.access_package_id)],
    )?;
    let mut scopes: Vec<(RoleScope, Option<ResourceRole>)> = Vec::with_capacity(rows.len());
    for row in rows {
        let role = match row.opt_text(1)? {
            Some(body) => Some(repo::from_body::<ResourceRole>(&body)?),
            None => None,
        };
        scopes.push((repo::from_body(&row.text(0)?)?, role));
    }
    let existing: Vec<AssignmentResourceRole> = match of {
        RolesOf::NewAssignment => Vec::new(),
        RolesOf::Existing => repo::find_all(c, "assignment_id = ?", &[Value::from(&a.id)])?,
    };
    let mut failed = 0;
    for (rs, role) in scopes {
        let prior = existing.iter().find(|x| x.role_id == rs.role_id && x.scope_id == rs.scope_id);
        // Granted already (a push to a provisioning target may still owe it: that is
        // retried by the outbox, not granted twice).
        if prior.is_some_and(AssignmentResourceRole::is_granted) {
            continue;
        }
        let app = match &role {
            Some(role) => app_role(c, role)?,
            None => None,
        };
        let ok = match &role {
            None => false,
            Some(_) if app.is_some() => {
                let (sp_id, app_role_id) = app.clone().unwrap_or_default();
                let granted = crate::applications::grant(c, now, &sp_id, &app_role_id, member_id)?;
                if granted {
                    record(
                        c,
                        now,
                        "appRoleAssignment",
                        &sp_id,
                        "granted",
                        json!({ "principalId": member_id, "appRoleId": app_role_id, "assignmentId": a.id }),
                    )?;
                }
                granted
            }
            Some(role) => match group_role(role) {
                Some((gid, rel)) => {
                    if membership::grant_if_group(c, &gid, rel, member_id)? {
                        record(
                            c,
                            now,
                            "groupMembership",
                            &gid,
                            "granted",
                            json!({ "memberId": member_id, "relation": rel.as_str(), "assignmentId": a.id }),
                        )?;
                        true
                    } else {
                        false
                    }
                }
                // Other origin systems have nothing to deliver into in Grantry itself.
                None => true,
            },
        };
        if !ok {
            failed += 1;
        }
        grantry_domain::metrics::global().deliveries.add(
            delivery_label(role.as_ref().map(|r| r.origin_system.as_str())),
            if ok { "fulfilled" } else { "failed" },
            1,
        );
        let status = if ok { role_status::FULFILLED } else { role_status::DELIVERY_FAILED }.to_string();
        match prior {
            Some(p) => {
                let mut p = p.clone();
                p.status = status;
                repo::update_later(c, &p)?;
            }
            None => {
                let (origin_system, origin_id) =
                    role.as_ref().map(|r| (r.origin_system.clone(), r.origin_id.clone())).unwrap_or_default();
                repo::insert_later(
                    c,
                    &AssignmentResourceRole {
                        id: ids::new_id(),
                        assignment_id: a.id.clone(),
                        access_package_id: a.access_package_id.clone(),
                        subject_id: a.target_subject_id.clone(),
                        role_id: rs.role_id.clone(),
                        scope_id: rs.scope_id.clone(),
                        origin_system,
                        origin_id,
                        status,
                        created_date_time: now,
                    },
                )?;
            }
        }
    }
    Ok(failed)
}

/// The origin system as a metrics label: the known ones, so clients cannot grow the label
/// set without bound.
fn delivery_label(origin: Option<&str>) -> &'static str {
    match origin {
        Some(o) if o.eq_ignore_ascii_case(origin_system::AAD_GROUP) => origin_system::AAD_GROUP,
        Some(o) if o.eq_ignore_ascii_case(origin_system::AAD_APPLICATION) => origin_system::AAD_APPLICATION,
        Some(o) if o.eq_ignore_ascii_case(origin_system::SHAREPOINT_ONLINE) => origin_system::SHAREPOINT_ONLINE,
        Some(_) => "other",
        None => "missingRole",
    }
}

/// Removes every membership the assignment delivered.
fn revoke_roles(c: &mut dyn Conn, now: DateTime<Utc>, a: &Assignment) -> Result<()> {
    let subject = repo::get::<Subject>(c, &a.target_subject_id)?;
    let member = subject.and_then(|s| s.object_id);
    let roles: Vec<AssignmentResourceRole> = repo::find_all(c, "assignment_id = ?", &[Value::from(&a.id)])?;
    for mut r in roles {
        if !r.is_granted() {
            continue;
        }
        if let (Some(member), Some(role)) = (&member, repo::get::<ResourceRole>(c, &r.role_id)?) {
            if let Some((gid, rel)) = group_role(&role) {
                membership::revoke(c, &gid, rel, member)?;
                record(
                    c,
                    now,
                    "groupMembership",
                    &gid,
                    "revoked",
                    json!({ "memberId": member, "relation": rel.as_str(), "assignmentId": a.id }),
                )?;
            } else if let Some((sp_id, app_role_id)) = app_role(c, &role)? {
                crate::applications::revoke(c, now, &sp_id, &app_role_id, member)?;
                record(
                    c,
                    now,
                    "appRoleAssignment",
                    &sp_id,
                    "revoked",
                    json!({ "principalId": member, "appRoleId": app_role_id, "assignmentId": a.id }),
                )?;
            }
        }
        r.status = role_status::REMOVED.into();
        repo::update(c, &r)?;
    }
    Ok(())
}

fn deliver_add(c: &mut dyn Conn, now: DateTime<Utc>, r: &mut AssignmentRequest, k: Option<&Checked>) -> Result<()> {
    let (mut subject, policy_expiration) = match k {
        Some(k) => (k.subject.clone(), Some(k.policy.expiration.clone())),
        None => {
            let Some(subject) = repo::get::<Subject>(c, &r.target_subject_id)? else {
                return set_state(c, now, r, RequestState::DeliveryFailed, RequestStatus::DeliveryFailed);
            };
            let active = c.query_one(
                "SELECT 1 FROM assignments WHERE target_subject_id = ? AND access_package_id = ? AND active = 1",
                &[Value::from(&subject.id), Value::from(&r.access_package_id)],
            )?;
            if active.is_some() {
                return set_state(c, now, r, RequestState::DeliveryFailed, RequestStatus::DeliveryFailed);
            }
            // Separation of duties, checked again where the assignment is written: two requests for
            // mutually incompatible packages may both have passed the check at submission (neither
            // was delivered yet), and only the first to be delivered may win. The check and the
            // insert run in one write transaction; SQLite has a single writer, so nothing can come
            // between them. On PostgreSQL two transactions could, so the target's subject row is
            // locked first: the no-op UPDATE takes a row lock there (like SELECT ... FOR UPDATE)
            // and is portable SQL that costs nothing on SQLite.
            c.execute("UPDATE subjects SET id = id WHERE id = ?", &[Value::from(&subject.id)])?;
            let target =
                crate::requests::Target { user: None, subject: Some(subject.clone()), email: None, display_name: None };
            if let Err(e) = crate::requests::check_incompatible(c, &r.access_package_id, &target) {
                return set_state_by(
                    c,
                    now,
                    r,
                    RequestState::DeliveryFailed,
                    RequestStatus::DeliveryFailed,
                    None,
                    json!({ "reason": e.message }),
                );
            }
            let policy = match &r.policy_id {
                Some(p) => repo::get::<Policy>(c, p)?,
                None => None,
            };
            (subject, policy.map(|p| p.expiration))
        }
    };
    let member_id = match subject.object_id.clone() {
        Some(o) => o,
        None => provision_guest(c, now, &mut subject)?,
    };
    let start = r.schedule.start_date_time.filter(|s| *s <= now).unwrap_or(now);
    let pattern = if r.schedule.expiration.kind != ExpirationType::NotSpecified {
        r.schedule.expiration.clone()
    } else {
        policy_expiration.unwrap_or_default()
    };
    let end = pattern.end_for(start);
    let mut a = Assignment {
        id: ids::new_id(),
        access_package_id: r.access_package_id.clone(),
        catalog_id: r.catalog_id.clone(),
        policy_id: r.policy_id.clone().unwrap_or_default(),
        target_subject_id: subject.id.clone(),
        state: AssignmentState::Delivering,
        status: "Delivering".into(),
        schedule: Schedule {
            start_date_time: Some(start),
            expiration: Expiration {
                kind: pattern.kind,
                end_date_time: end.or(pattern.end_date_time),
                duration: pattern.duration,
            },
            recurrence: None,
        },
        answers: r.answers.clone(),
        is_extended: false,
        expired_date_time: None,
        created_date_time: now,
        custom_extension_callout_instances: Vec::new(),
    };
    // The roles first, then the assignment in its final state: one insert, no update.
    let failed = deliver_roles(c, now, &a, &member_id, RolesOf::NewAssignment)?;
    let (astate, rstate, status) = if failed == 0 {
        (AssignmentState::Delivered, RequestState::Delivered, RequestStatus::Delivered)
    } else {
        (AssignmentState::PartiallyDelivered, RequestState::PartiallyDelivered, RequestStatus::PartiallyDelivered)
    };
    a.state = astate;
    a.status = status.as_str().into();
    // Sent with the next statement: a second active assignment for the target is refused
    // there (the database's constraint), and reported as such.
    repo::insert_later(c, &a)?;
    crate::connected::assignment_delivered(c, now, &member_id).map_err(crate::requests::map_conflict)?;
    crate::webhooks::assignment_event(c, now, "added", &a)?;
    record(
        c,
        now,
        "accessPackageAssignment",
        &a.id,
        astate.v1(),
        json!({ "requestId": r.id, "targetSubjectId": a.target_subject_id }),
    )?;
    if let Some(end) = assignment_end(&a) {
        enqueue(c, JOB_EXPIRE, &a.id, end, json!({}))?;
    }
    r.assignment_id = Some(a.id.clone());
    set_state(c, now, r, rstate, status)?;
    crate::callouts::schedule_pre_expiry(c, now, &a)?;
    crate::callouts::fire_for_request_with(
        c,
        now,
        CustomExtensionStage::AssignmentRequestGranted,
        r,
        k.map(|k| k.policy),
    )
}

/// Ends an active assignment: expired, memberships revoked, expiry job dropped.
pub fn end_assignment(c: &mut dyn Conn, now: DateTime<Utc>, a: &mut Assignment) -> Result<()> {
    revoke_roles(c, now, a)?;
    a.state = AssignmentState::Expired;
    a.status = "Expired".into();
    a.expired_date_time = Some(now);
    repo::update(c, a)?;
    cancel(c, JOB_EXPIRE, &a.id)?;
    crate::webhooks::assignment_event(c, now, "removed", a)?;
    record(c, now, "accessPackageAssignment", &a.id, "expired", json!({}))?;
    crate::connected::assignment_ended(c, now, &a.target_subject_id)
}

fn deliver_remove(c: &mut dyn Conn, now: DateTime<Utc>, r: &mut AssignmentRequest) -> Result<()> {
    let Some(aid) = r.assignment_id.clone() else {
        return set_state(c, now, r, RequestState::DeliveryFailed, RequestStatus::DeliveryFailed);
    };
    if let Some(mut a) = repo::get::<Assignment>(c, &aid)?
        && a.state.is_active()
    {
        end_assignment(c, now, &mut a)?;
    }
    set_state(c, now, r, RequestState::Delivered, RequestStatus::Delivered)?;
    crate::callouts::fire_for_request(c, now, CustomExtensionStage::AssignmentRequestRemoved, r)
}

fn deliver_update(c: &mut dyn Conn, now: DateTime<Utc>, r: &mut AssignmentRequest) -> Result<()> {
    let aid = r.assignment_id.clone().unwrap_or_default();
    let Some(mut a) = repo::get::<Assignment>(c, &aid)?.filter(|a| a.state.is_active()) else {
        return set_state(c, now, r, RequestState::DeliveryFailed, RequestStatus::DeliveryFailed);
    };
    let requested = &r.schedule;
    if let Some(start) = requested.start_date_time {
        a.schedule.start_date_time = Some(start);
    }
    if requested.expiration.kind != ExpirationType::NotSpecified {
        let start = a.schedule.start_date_time.unwrap_or(a.created_date_time);
        let e = &requested.expiration;
        a.schedule.expiration =
            Expiration { kind: e.kind, end_date_time: e.end_for(start).or(e.end_date_time), duration: e.duration };
        a.is_extended = true;
    } else if r.request_type.is_user() && r.answers.is_empty() {
        // An extension that names no new end renews for the policy's lifetime from now.
        if let Some(policy) = repo::get::<Policy>(c, &a.policy_id)?
            && let Some(end) = policy.expiration.end_for(now)
            && assignment_end(&a).is_none_or(|current| end > current)
        {
            a.schedule.expiration = Expiration {
                kind: policy.expiration.kind,
                end_date_time: Some(end),
                duration: policy.expiration.duration,
            };
            a.is_extended = true;
        }
    }
    if r.request_type == RequestType::UserExtend {
        a.is_extended = true;
    }
    for ans in &r.answers {
        match a.answers.iter_mut().find(|x| x.question_id.eq_ignore_ascii_case(&ans.question_id)) {
            Some(x) => {
                x.value = ans.value.clone();
                if ans.display_value.is_some() {
                    x.display_value = ans.display_value.clone();
                }
                if ans.question_type.is_some() {
                    x.question_type = ans.question_type.clone();
                }
            }
            None => a.answers.push(ans.clone()),
        }
    }
    repo::update(c, &a)?;
    cancel(c, JOB_EXPIRE, &a.id)?;
    if let Some(end) = assignment_end(&a) {
        enqueue(c, JOB_EXPIRE, &a.id, end, json!({}))?;
    }
    // A new end has its own 14-day and 1-day points (those already passed for the old end
    // come again for a later one).
    cancel(c, crate::callouts::JOB_PRE_EXPIRY, &a.id)?;
    crate::callouts::schedule_pre_expiry(c, now, &a)?;
    record(
        c,
        now,
        "accessPackageAssignment",
        &a.id,
        "updated",
        json!({ "requestId": r.id, "isExtended": a.is_extended }),
    )?;
    set_state(c, now, r, RequestState::Delivered, RequestStatus::Delivered)
}

/// Re-runs delivery of a request that failed in whole or in part.
pub fn redeliver(c: &mut dyn Conn, now: DateTime<Utc>, r: &mut AssignmentRequest) -> Result<()> {
    let existing = match &r.assignment_id {
        Some(aid) => repo::get::<Assignment>(c, aid)?,
        None => None,
    };
    match existing {
        Some(mut a) if r.request_type.is_add() && a.state.is_active() => {
            let subject = repo::get::<Subject>(c, &a.target_subject_id)?;
            let member = subject.and_then(|s| s.object_id).unwrap_or_default();
            let failed = deliver_roles(c, now, &a, &member, RolesOf::Existing)?;
            // App roles whose push to a provisioning target failed for good are sent again;
            // the outbox's outcome settles the request (`provisioning::after_delivery`).
            let pushing = crate::provisioning::retry_failed(c, now, &a, &member)?;
            let (astate, rstate, status) = if failed == 0 && pushing == 0 {
                (AssignmentState::Delivered, RequestState::Delivered, RequestStatus::Delivered)
            } else if failed == 0 {
                (AssignmentState::Delivering, RequestState::Delivering, RequestStatus::Delivering)
            } else {
                (
                    AssignmentState::PartiallyDelivered,
                    RequestState::PartiallyDelivered,
                    RequestStatus::PartiallyDelivered,
                )
            };
            a.state = astate;
            a.status = status.as_str().into();
            repo::update(c, &a)?;
            set_state(c, now, r, rstate, status)
        }
        _ => deliver(c, now, r),
    }
}

/// Re-grants the memberships of a delivered assignment that have gone missing.
pub fn reenforce(c: &mut dyn Conn, now: DateTime<Utc>, a: &Assignment) -> Result<()> {
    let subject = repo::get::<Subject>(c, &a.target_subject_id)?;
    let Some(member) = subject.and_then(|s| s.object_id) else { return Ok(()) };
    let roles: Vec<AssignmentResourceRole> = repo::find_all(c, "assignment_id = ?", &[Value::from(&a.id)])?;
    for r in roles.iter().filter(|r| r.is_granted()) {
        if let Some(role) = repo::get::<ResourceRole>(c, &r.role_id)?
            && let Some((sp_id, app_role_id)) = app_role(c, &role)?
            && !crate::applications::has_app_role(c, &sp_id, &app_role_id, &member)?
            && crate::applications::grant(c, now, &sp_id, &app_role_id, &member)?
        {
            record(
                c,
                now,
                "appRoleAssignment",
                &sp_id,
                "granted",
                json!({ "principalId": member, "appRoleId": app_role_id, "assignmentId": a.id, "reprocess": true }),
            )?;
        }
        if let Some(role) = repo::get::<ResourceRole>(c, &r.role_id)?
            && let Some((gid, rel)) = group_role(&role)
            && repo::get::<Group>(c, &gid)?.is_some()
        {
            let linked = c
                .query_one(
                    "SELECT 1 FROM group_links WHERE group_id = ? AND relation = ? AND member_id = ?",
                    &[Value::from(&gid), Value::from(rel.as_str()), Value::from(&member)],
                )?
                .is_some();
            if !linked {
                membership::grant(c, &gid, rel, &member)?;
                record(
                    c,
                    now,
                    "groupMembership",
                    &gid,
                    "granted",
                    json!({ "memberId": member, "relation": rel.as_str(), "assignmentId": a.id, "reprocess": true }),
                )?;
            }
        }
    }
    Ok(())
}

/// Job `assignment.expire`: ends an assignment whose time is up, recording a systemRemove.
pub fn expire_job(ctx: &JobContext, c: &mut dyn Conn, job: &Job) -> Result<()> {
    let Some(mut a) = repo::get::<Assignment>(c, &job.entity_id)? else { return Ok(()) };
    if !a.state.is_active() {
        return Ok(());
    }
    let Some(end) = assignment_end(&a) else { return Ok(()) };
    if end > ctx.now {
        // The assignment was extended after this job was written: wait for the new end.
        return enqueue(c, JOB_EXPIRE, &a.id, end, json!({}));
    }
    let why = "The assignment reached the end of its schedule.";
    system_remove(c, ctx.now, &mut a, why, json!({}))?;
    crate::notify::access_ended(c, ctx.now, &a, why)
}

/// Ends an active assignment the service itself removes (its schedule ran out, or an access
/// review denied it), recorded as a delivered `systemRemove` request whose justification
/// says why, so the memberships go and the history shows the reason. `detail` is added to
/// the request's audit record.
pub fn system_remove(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    a: &mut Assignment,
    justification: &str,
    detail: serde_json::Value,
) -> Result<AssignmentRequest> {
    end_assignment(c, now, a)?;
    let mut r = AssignmentRequest {
        id: ids::new_id(),
        request_type: RequestType::SystemRemove,
        state: RequestState::Delivered,
        status: RequestStatus::Delivered,
        access_package_id: a.access_package_id.clone(),
        catalog_id: a.catalog_id.clone(),
        policy_id: Some(a.policy_id.clone()),
        assignment_id: Some(a.id.clone()),
        target_subject_id: a.target_subject_id.clone(),
        requestor_subject_id: None,
        created_by: SYSTEM_ACTOR.into(),
        justification: Some(justification.to_string()),
        answers: Vec::new(),
        schedule: Schedule::default(),
        is_validation_only: false,
        created_date_time: now,
        completed_date_time: Some(now),
        custom_extension_callout_instances: Vec::new(),
    };
    repo::insert(c, &r)?;
    let mut audit_detail = json!({ "requestType": "systemRemove", "assignmentId": a.id });
    if let (Some(m), serde_json::Value::Object(extra)) = (audit_detail.as_object_mut(), detail) {
        m.extend(extra);
    }
    record(c, now, "accessPackageAssignmentRequest", &r.id, "delivered", audit_detail)?;
    crate::callouts::fire_for_request(c, now, CustomExtensionStage::AssignmentRequestRemoved, &mut r)?;
    Ok(r)
}

/// Job kinds handled here, for the runner's table.
pub fn handler(kind: &str) -> Option<crate::jobs::Handler> {
    match kind {
        JOB_PROCESS => Some(process_job),
        JOB_START => Some(start_job),
        JOB_EXPIRE => Some(expire_job),
        _ => None,
    }
}
