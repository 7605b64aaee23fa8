//! Who held which access package, and so which group, at a given instant
//! (`GET /_grantry/accessAt?at=…`), a question Entra's audit log cannot answer directly.
//!
//! An assignment is held from the moment it was delivered (its `createdDateTime`: Grantry
//! creates an assignment when it delivers it) until it ended (`expiredDateTime`), and only
//! if delivery happened (delivered, partially delivered, or since ended). The groups it gave
//! are read from the membership grants and revocations recorded for it in the audit trail,
//! up to the instant; an assignment with no such records (data loaded directly into the
//! database) falls back to its delivered roles.

use crate::{App, Caller, Page, PageRequest};
use chrono::{DateTime, Utc};
use grantry_domain::model::{AccessPackage, Assignment, AssignmentResourceRole, Group, ResourceRole, Subject};
use grantry_domain::{Result, ids};
use grantry_store::{Conn, Value, repo};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// What to look for.
#[derive(Debug, Clone)]
pub struct AccessAtQuery {
    pub at: DateTime<Utc>,
    pub access_package_id: Option<String>,
    /// The directory object id of the person (the subject's `objectId`).
    pub user_id: Option<String>,
    /// Only assignments that gave membership (or ownership) of this group.
    pub group_id: Option<String>,
    pub page: PageRequest,
}

/// The assignments held at `query.at`, oldest first, one entry per assignment.
pub async fn access_at(app: &App, caller: &Caller, query: AccessAtQuery) -> Result<Page<HeldAccess>> {
    crate::audit::require_reader(caller)?;
    app.store
        .read(move |c| {
            let at_us = query.at.timestamp_micros();
            let mut clauses = vec![
                "created_us <= ?".to_string(),
                "(expired_us IS NULL OR expired_us > ?)".to_string(),
                "state IN ('delivered', 'partiallyDelivered', 'expired')".to_string(),
            ];
            let mut params = vec![Value::Int(at_us), Value::Int(at_us)];
            if let Some(p) = &query.access_package_id {
                clauses.push("access_package_id = ?".into());
                params.push(Value::from(ids::normalize(p)));
            }
            if let Some(u) = &query.user_id {
                let subjects: Vec<Subject> =
                    repo::find_all(c, "object_id = ?", &[Value::from(ids::normalize(u))]).unwrap_or_default();
                if subjects.is_empty() {
                    return Ok(Page::from(Vec::new()));
                }
                clauses.push(format!("target_subject_id IN ({})", vec!["?"; subjects.len()].join(", ")));
                params.extend(subjects.iter().map(|s| Value::from(&s.id)));
            }
            if let Some(after) = query.page.after_seq {
                clauses.push("seq > ?".into());
                params.push(Value::Int(after));
            }
            let sql = format!(
                "SELECT seq, body FROM assignments WHERE {} ORDER BY seq LIMIT {}",
                clauses.join(" AND "),
                query.page.size + 1
            );
            let rows = c.query(&sql, &params)?;
            let mut out = Vec::new();
            for row in rows {
                let seq = row.int(0)?;
                let a: Assignment = serde_json::from_str(&row.text(1)?)
                    .map_err(|e| grantry_domain::Error::internal(format!("assignment body: {e}")))?;
                // A state recorded as ended only counts when the end is known.
                if a.state == grantry_domain::enums::AssignmentState::Expired && a.expired_date_time.is_none() {
                    continue;
                }
                let groups = groups_at(c, &a, at_us)?;
                if let Some(g) = &query.group_id
                    && !groups.iter().any(|x| x.id == ids::normalize(g))
                {
                    // Keep the position so paging continues past it.
                    out.push((seq, None));
                    continue;
                }
                out.push((seq, Some(entry(c, &a, groups)?)));
            }
            let page = Page::from_rows(out, query.page.size);
            Ok(Page { items: page.items.into_iter().flatten().collect(), next: page.next, count: None })
        })
        .await
}

/// One assignment held at the instant asked about.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldAccess {
    pub assignment_id: String,
    pub access_package: PackageRef,
    pub catalog_id: String,
    pub assignment_policy_id: String,
    pub target: Option<TargetRef>,
    /// When the assignment was delivered.
    pub held_from: Timestamp,
    /// When it ended, if it has.
    pub held_until: Option<Timestamp>,
    pub groups: Vec<HeldGroup>,
}

/// A timestamp as Graph writes them (UTC, `Z`, as few fraction digits as needed).
#[derive(Debug, Clone, Copy)]
pub struct Timestamp(pub DateTime<Utc>);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PackageRef {
    pub id: String,
    pub display_name: Option<String>,
}

/// The person who held the access.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    pub id: String,
    pub object_id: Option<String>,
    pub display_name: Option<String>,
    pub principal_name: Option<String>,
    pub email: Option<String>,
}

/// A group the assignment gave, and how (`member` or `owner`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldGroup {
    pub id: String,
    pub display_name: Option<String>,
    pub relation: String,
}

fn entry(c: &mut dyn Conn, a: &Assignment, groups: Vec<HeldGroup>) -> Result<HeldAccess> {
    let package = repo::get::<AccessPackage>(c, &a.access_package_id)?;
    let subject = repo::get::<Subject>(c, &a.target_subject_id)?;
    Ok(HeldAccess {
        assignment_id: a.id.clone(),
        access_package: PackageRef { id: a.access_package_id.clone(), display_name: package.map(|p| p.display_name) },
        catalog_id: a.catalog_id.clone(),
        assignment_policy_id: a.policy_id.clone(),
        target: subject.map(|s| TargetRef {
            id: s.id,
            object_id: s.object_id,
            display_name: s.display_name,
            principal_name: s.principal_name,
            email: s.email,
        }),
        held_from: Timestamp(a.created_date_time),
        held_until: a.expired_date_time.map(Timestamp),
        groups,
    })
}

/// The groups `a` gave at `at_us`: `[{id, displayName, relation}]`.
fn groups_at(c: &mut dyn Conn, a: &Assignment, at_us: i64) -> Result<Vec<HeldGroup>> {
    let roles: Vec<AssignmentResourceRole> = repo::find_all(c, "assignment_id = ?", &[Value::from(&a.id)])?;
    // (group, relation) → held, from the roles first, then from the recorded history.
    let mut held: BTreeMap<(String, String), bool> = BTreeMap::new();
    for r in &roles {
        if r.created_date_time.timestamp_micros() > at_us {
            continue;
        }
        let Some(role) = repo::get::<ResourceRole>(c, &r.role_id)? else { continue };
        let Some((gid, rel)) = crate::delivery::group_role(&role) else { continue };
        let key = (gid.clone(), rel.as_str().to_string());
        if held.contains_key(&key) {
            continue;
        }
        let history = c.query(
            "SELECT action, body FROM audit_events WHERE entity_id = ? AND entity_type = 'groupMembership' AND at_us <= ? ORDER BY seq",
            &[Value::from(&gid), Value::Int(at_us)],
        )?;
        let mut state: Option<bool> = None;
        for h in history {
            let body: Json = serde_json::from_str(&h.text(1)?).unwrap_or(Json::Null);
            if body["assignmentId"].as_str() == Some(a.id.as_str())
                && body["relation"].as_str().is_none_or(|x| x == key.1)
            {
                state = Some(h.text(0)? == "granted");
            }
        }
        held.insert(key, state.unwrap_or(r.is_granted() || r.status == "Removed"));
    }
    let mut out = Vec::new();
    for ((gid, relation), is_held) in held {
        if !is_held {
            continue;
        }
        let name = repo::get::<Group>(c, &gid)?.map(|g| g.display_name);
        out.push(HeldGroup { id: gid, display_name: name, relation });
    }
    Ok(out)
}
