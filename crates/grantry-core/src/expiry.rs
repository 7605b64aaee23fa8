//! Expiry in sets: the due `assignment.expire` jobs of one runner batch are ended together,
//! with a few statements per batch instead of a dozen per assignment.
//!
//! The outcome is the same as running `delivery::expire_job` for each: every assignment
//! whose end has come is expired, the memberships it delivered are revoked (a link another
//! assignment or an administrator still holds stays), its resource roles are `Removed`, a
//! delivered `systemRemove` request records why, and the webhooks, callouts, mails and
//! audit records of each follow. Assignments extended meanwhile get their job again for the new
//! end; assignments delivering application roles are ended one by one by the same path as
//! before.

use crate::delivery::{JOB_EXPIRE, SYSTEM_ACTOR, assignment_end, group_role};
use crate::jobs::Job;
use crate::membership;
use chrono::{DateTime, Utc};
use grantry_domain::enums::{AssignmentState, CustomExtensionStage, RequestState, RequestStatus, RequestType};
use grantry_domain::model::*;
use grantry_domain::{Result, ids};
use grantry_store::{Conn, Value, repo};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

/// The justification of the request an expiry records.
pub const EXPIRED: &str = "The assignment reached the end of its schedule.";

/// `?, ?, …` for `values`, padded to a power of two by repeating the last value, so that
/// lists of any length share a few statement shapes.
fn in_list(values: &[String]) -> (String, Vec<Value>) {
    let n = values.len().max(1).next_power_of_two();
    let mut params: Vec<Value> = values.iter().map(Value::from).collect();
    let last = params.last().cloned().unwrap_or(Value::Text(String::new()));
    params.resize(n, last);
    (vec!["?"; n].join(", "), params)
}

/// Rows of `table` whose `column` is one of `keys`, decoded from their bodies.
pub(crate) fn bodies_in<R: grantry_store::records::Record>(
    c: &mut dyn Conn,
    column: &str,
    keys: &[String],
) -> Result<Vec<R>> {
    let mut out = Vec::new();
    for chunk in keys.chunks(256) {
        let (marks, params) = in_list(chunk);
        let sql = format!("SELECT body FROM {} WHERE {column} IN ({marks}) ORDER BY seq", R::TABLE);
        for row in c.query(&sql, &params)? {
            out.push(repo::from_body(&row.text(0)?)?);
        }
    }
    Ok(out)
}

/// Ends the assignments of the due expiry `jobs` (claimed by the runner in this
/// transaction) and deletes the jobs. Returns the jobs handled.
pub fn expire_jobs(c: &mut dyn Conn, now: DateTime<Utc>, jobs: &[Job]) -> Result<usize> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let token = crate::generation::token(c)?;
    crate::generation::with_known(token, || expire_jobs_known(c, now, jobs))
}

fn expire_jobs_known(c: &mut dyn Conn, now: DateTime<Utc>, jobs: &[Job]) -> Result<usize> {
    let ids: Vec<String> = jobs.iter().map(|j| j.entity_id.clone()).collect();
    let assignments: Vec<Assignment> = bodies_in(c, "id", &ids)?;
    let mut due: Vec<Assignment> = Vec::new();
    for a in assignments {
        if !a.state.is_active() {
            continue;
        }
        let Some(end) = assignment_end(&a) else { continue };
        if end > now {
            // Extended after its job was written: wait for the new end.
            crate::jobs::enqueue(c, JOB_EXPIRE, &a.id, end, json!({}))?;
            continue;
        }
        due.push(a);
    }
    let job_ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    for chunk in job_ids.chunks(256) {
        let (marks, params) = in_list(chunk);
        c.execute(&format!("DELETE FROM jobs WHERE id IN ({marks})"), &params)?;
    }
    if due.is_empty() {
        return Ok(jobs.len());
    }

    // What the assignments delivered, and to whom.
    let due_ids: Vec<String> = due.iter().map(|a| a.id.clone()).collect();
    let delivered: Vec<AssignmentResourceRole> = bodies_in(c, "assignment_id", &due_ids)?;
    let mut role_ids: Vec<String> = delivered.iter().map(|r| r.role_id.clone()).collect();
    role_ids.sort();
    role_ids.dedup();
    let roles: HashMap<String, ResourceRole> =
        bodies_in::<ResourceRole>(c, "id", &role_ids)?.into_iter().map(|r| (r.id.clone(), r)).collect();
    let mut subject_ids: Vec<String> = due.iter().map(|a| a.target_subject_id.clone()).collect();
    subject_ids.sort();
    subject_ids.dedup();
    let members: HashMap<String, Option<String>> =
        bodies_in::<Subject>(c, "id", &subject_ids)?.into_iter().map(|s| (s.id, s.object_id)).collect();

    // Assignments that delivered application roles take the one-by-one path.
    let one_by_one: Vec<String> = delivered
        .iter()
        .filter(|r| r.is_granted())
        .filter(|r| roles.get(&r.role_id).is_some_and(|role| group_role(role).is_none() && is_app_role(role)))
        .map(|r| r.assignment_id.clone())
        .collect();
    let (singles, mut set): (Vec<Assignment>, Vec<Assignment>) =
        due.into_iter().partition(|a| one_by_one.contains(&a.id));
    for mut a in singles {
        crate::delivery::system_remove(c, now, &mut a, EXPIRED, json!({}))?;
        crate::notify::access_ended(c, now, &a, EXPIRED)?;
    }
    if set.is_empty() {
        return Ok(jobs.len());
    }

    // Memberships: one decrement per link for every assignment that delivered it.
    let mut links: BTreeMap<(String, &'static str, String), i64> = BTreeMap::new();
    let mut removed_roles = Vec::new();
    for mut r in delivered.into_iter().filter(|r| r.is_granted() && set.iter().any(|a| a.id == r.assignment_id)) {
        let member = set
            .iter()
            .find(|a| a.id == r.assignment_id)
            .and_then(|a| members.get(&a.target_subject_id).cloned().flatten());
        if let (Some(member), Some((gid, rel))) = (member, roles.get(&r.role_id).and_then(group_role)) {
            *links.entry((gid.clone(), rel.as_str(), member.clone())).or_default() += 1;
            crate::audit::record(
                c,
                crate::audit::AuditEvent {
                    at: now,
                    actor_id: None,
                    entity_type: "groupMembership",
                    entity_id: &gid,
                    action: "revoked",
                    detail: json!({ "memberId": member, "relation": rel.as_str(), "assignmentId": r.assignment_id }),
                },
            )?;
        }
        r.status = "Removed".into();
        removed_roles.push(r);
    }
    let links: Vec<_> = links.into_iter().collect();
    for chunk in links.chunks(64) {
        membership::revoke_many(c, chunk)?;
    }
    repo::upsert_many(c, &removed_roles)?;

    // The assignments, their pending expiry jobs, events and records.
    for a in set.iter_mut() {
        a.state = AssignmentState::Expired;
        a.status = "Expired".into();
        a.expired_date_time = Some(now);
    }
    repo::upsert_many(c, &set)?;
    let set_ids: Vec<String> = set.iter().map(|a| a.id.clone()).collect();
    for chunk in set_ids.chunks(256) {
        let (marks, mut params) = in_list(chunk);
        params.insert(0, Value::from(JOB_EXPIRE));
        c.execute(&format!("DELETE FROM jobs WHERE kind = ? AND entity_id IN ({marks})"), &params)?;
    }
    let mut requests = Vec::with_capacity(set.len());
    for a in &set {
        crate::webhooks::assignment_event(c, now, "removed", a)?;
        crate::audit::record(
            c,
            crate::audit::AuditEvent {
                at: now,
                actor_id: None,
                entity_type: "accessPackageAssignment",
                entity_id: &a.id,
                action: "expired",
                detail: json!({}),
            },
        )?;
        requests.push(system_remove_request(a, now));
    }
    repo::insert_many(c, &requests)?;
    let mut policy_ids: Vec<String> = set.iter().map(|a| a.policy_id.clone()).collect();
    policy_ids.sort();
    policy_ids.dedup();
    let policies: HashMap<String, Policy> =
        bodies_in::<Policy>(c, "id", &policy_ids)?.into_iter().map(|p| (p.id.clone(), p)).collect();
    for r in requests.iter_mut() {
        crate::audit::record(
            c,
            crate::audit::AuditEvent {
                at: now,
                actor_id: None,
                entity_type: "accessPackageAssignmentRequest",
                entity_id: &r.id,
                action: "delivered",
                detail: json!({ "requestType": "systemRemove", "assignmentId": r.assignment_id }),
            },
        )?;
        let policy = r.policy_id.as_ref().and_then(|p| policies.get(p));
        crate::callouts::fire_for_request_with(c, now, CustomExtensionStage::AssignmentRequestRemoved, r, policy)?;
    }
    // The assignees are told their access has ended.
    crate::notify::access_ended_many(c, now, &set, EXPIRED, &policies, &members)?;
    Ok(jobs.len())
}

fn is_app_role(role: &ResourceRole) -> bool {
    role.origin_system.eq_ignore_ascii_case(origin_system::AAD_APPLICATION)
}

/// The delivered `systemRemove` request that records an expiry.
fn system_remove_request(a: &Assignment, now: DateTime<Utc>) -> AssignmentRequest {
    AssignmentRequest {
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
        justification: Some(EXPIRED.to_string()),
        answers: Vec::new(),
        schedule: Schedule::default(),
        is_validation_only: false,
        created_date_time: now,
        completed_date_time: Some(now),
        custom_extension_callout_instances: Vec::new(),
    }
}
