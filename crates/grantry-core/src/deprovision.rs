//! Deprovisioning: a user who leaves the directory (deleted through Graph or SCIM) or whom
//! the identity provider deactivates (SCIM `active: false`) loses the access Grantry gave
//! them in the same transaction as that change. Their open requests are canceled and each
//! active assignment is ended by a delivered `systemRemove` request
//! ([`crate::delivery::system_remove`], the path of an expiry), so the memberships it
//! delivered are revoked, callouts and webhooks fire, and the history says why.

use crate::audit::{self, AuditEvent};
use chrono::{DateTime, Utc};
use grantry_domain::Result;
use grantry_domain::model::{Assignment, AssignmentRequest, Subject};
use grantry_store::{Conn, Value, repo};
use serde_json::json;

/// Why a user's access ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Deleted through `DELETE /users/{id}` or SCIM's `DELETE /Users/{id}`.
    Deleted,
    /// Set `active: false` by a SCIM client.
    Deactivated,
}

impl Reason {
    fn justification(self) -> &'static str {
        match self {
            Reason::Deleted => "The target user was deleted from the directory.",
            Reason::Deactivated => "The target user was deactivated by the identity provider (SCIM active: false).",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Reason::Deleted => "userDeleted",
            Reason::Deactivated => "userDeactivated",
        }
    }
}

/// What [`end_access`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ended {
    pub canceled_requests: usize,
    pub removed_assignments: usize,
}

/// Cancels the open requests targeting `user_id` and removes their active assignments.
/// Runs inside the caller's write transaction, before the user row itself changes.
pub fn end_access(c: &mut dyn Conn, now: DateTime<Utc>, user_id: &str, reason: Reason) -> Result<Ended> {
    let mut ended = Ended::default();
    let subjects: Vec<Subject> = repo::find_all(c, "object_id = ?", &[Value::from(user_id)])?;
    for subject in &subjects {
        let detail = || json!({ "reason": reason.as_str(), "userId": user_id });
        let requests: Vec<AssignmentRequest> = repo::find_all(c, "target_subject_id = ?", &[Value::from(&subject.id)])?;
        for mut r in requests.into_iter().filter(|r| r.state.is_open()) {
            crate::requests::cancel_open(c, now, &mut r, None, detail())?;
            ended.canceled_requests += 1;
        }
        let assignments: Vec<Assignment> =
            repo::find_all(c, "target_subject_id = ? AND active = 1", &[Value::from(&subject.id)])?;
        for mut a in assignments {
            crate::delivery::system_remove(c, now, &mut a, reason.justification(), detail())?;
            ended.removed_assignments += 1;
        }
    }
    if ended != Ended::default() {
        audit::record(
            c,
            AuditEvent {
                at: now,
                actor_id: None,
                entity_type: "user",
                entity_id: user_id,
                action: "accessEnded",
                detail: json!({
                    "reason": reason.as_str(),
                    "canceledRequests": ended.canceled_requests,
                    "removedAssignments": ended.removed_assignments,
                }),
            },
        )?;
    }
    Ok(ended)
}
