//! The audit trail in Graph's shape: `directoryAudit` entries (`/auditLogs/directoryAudits`)
//! made from Grantry's own records (`audit_events`), one entry per recorded change, with
//! the activity named as Entra names it where Entra has a name for it.
//!
//! `$filter` is evaluated on the rendered entries, so every property Graph documents as
//! filterable can be used (`activityDateTime`, `category`, `activityDisplayName`,
//! `loggedByService`, `operationType`, `result`, `initiatedBy/user/id`,
//! `initiatedBy/app/appId`, `targetResources/any(t: t/id eq '…')`, …). Bounds on
//! `activityDateTime` also narrow the SQL scan. A request examines at most
//! [`MAX_SCANNED`] records; a page that is not full by then ends with a nextLink that
//! continues the scan, as Graph's own audit pages may.

use crate::{App, Caller, Page, PageRequest};
use chrono::{DateTime, Utc};
use grantry_domain::{Error, Result, ids};
use grantry_odata::Expr;
use grantry_odata::ast::{BinaryOp, Function, LambdaKind, Literal};
use grantry_store::{Conn, Value};
use serde_json::{Map, Value as Json, json};
use std::collections::HashMap;

/// Records one request examines at most.
pub const MAX_SCANNED: usize = 5000;
const CHUNK: usize = 500;

/// Who may read the directory audits: `AuditLog.Read.All` or entitlement management read,
/// as an application or an Identity Governance (or Global) Administrator.
pub fn require_reader(caller: &Caller) -> Result<()> {
    let mut any_of = vec!["AuditLog.Read.All"];
    any_of.extend_from_slice(crate::auth::perms::EM_READ);
    caller.require(&any_of)?;
    if caller.is_app() || caller.is_em_admin() {
        Ok(())
    } else {
        Err(Error::forbidden(
            "The audit logs are for administrators: an application with AuditLog.Read.All or EntitlementManagement.Read.All, or an Identity Governance Administrator or Global Administrator.",
        ))
    }
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub filter: Option<Expr>,
    /// Oldest first (`$orderby=activityDateTime asc`); newest first otherwise.
    pub ascending: bool,
    pub page: PageRequest,
}

/// The properties of `directoryAudit` (for `$filter` and `$orderby` checks).
pub const PROPERTIES: &[&str] = &[
    "id",
    "category",
    "correlationId",
    "result",
    "resultReason",
    "activityDisplayName",
    "activityDateTime",
    "loggedByService",
    "operationType",
    "initiatedBy",
    "targetResources",
    "additionalDetails",
];

/// Checks that a filter names only `directoryAudit` properties and uses what the
/// evaluator understands, so a typo is a 400 rather than an empty page.
pub fn check_filter(expr: &Expr) -> Result<()> {
    fn walk(e: &Expr, vars: &[String]) -> Result<()> {
        match e {
            Expr::Literal(_) => Ok(()),
            Expr::Path(p) => {
                let first = &p[0];
                if vars.iter().any(|v| v == first) || PROPERTIES.iter().any(|n| n.eq_ignore_ascii_case(first)) {
                    Ok(())
                } else {
                    Err(invalid(format!(
                        "Could not find a property named '{first}' on type 'microsoft.graph.directoryAudit'."
                    )))
                }
            }
            Expr::Not(inner) => walk(inner, vars),
            Expr::Binary { left, right, .. } => {
                walk(left, vars)?;
                walk(right, vars)
            }
            Expr::In { operand, values } => {
                walk(operand, vars)?;
                values.iter().try_for_each(|v| walk(v, vars))
            }
            Expr::Call { function, args } => match function {
                Function::StartsWith
                | Function::EndsWith
                | Function::Contains
                | Function::ToLower
                | Function::ToUpper => args.iter().try_for_each(|a| walk(a, vars)),
                other => Err(invalid(format!("The function '{other}' is not supported on directory audits."))),
            },
            Expr::Lambda { path, body, .. } => {
                walk(&Expr::Path(path.clone()), vars)?;
                match body {
                    Some(b) => {
                        let mut inner = vars.to_vec();
                        inner.push(b.variable.clone());
                        walk(&b.predicate, &inner)
                    }
                    None => Ok(()),
                }
            }
        }
    }
    walk(expr, &[])
}

fn invalid(message: String) -> Error {
    Error::bad_request("InvalidFilter", message).with_target("$filter")
}

/// One page of directory audits.
pub async fn list(app: &App, caller: &Caller, query: AuditQuery) -> Result<Page<Json>> {
    require_reader(caller)?;
    if let Some(f) = &query.filter {
        check_filter(f)?;
    }
    app.store
        .read(move |c| {
            let (from_us, to_us) = query.filter.as_ref().map(time_bounds).unwrap_or((None, None));
            let mut out: Vec<(i64, Json)> = Vec::new();
            let mut position = query.page.after_seq;
            let mut scanned = 0usize;
            let mut exhausted = false;
            let mut names = Names::default();
            while out.len() < query.page.size && scanned < MAX_SCANNED {
                let mut clauses = Vec::new();
                let mut params = Vec::new();
                if let Some(p) = position {
                    clauses.push(if query.ascending { "seq > ?" } else { "seq < ?" });
                    params.push(Value::Int(p));
                }
                if let Some(f) = from_us {
                    clauses.push("at_us >= ?");
                    params.push(Value::Int(f));
                }
                if let Some(t) = to_us {
                    clauses.push("at_us <= ?");
                    params.push(Value::Int(t));
                }
                let where_sql =
                    if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
                let order = if query.ascending { "ASC" } else { "DESC" };
                let sql = format!(
                    "SELECT seq, id, at_us, actor_id, entity_type, entity_id, action, body FROM audit_events {where_sql} ORDER BY seq {order} LIMIT {CHUNK}"
                );
                let rows = c.query(&sql, &params)?;
                let fetched = rows.len();
                for row in rows {
                    let seq = row.int(0)?;
                    scanned += 1;
                    position = Some(seq);
                    let event = crate::audit::StoredEvent {
                        id: row.text(1)?,
                        at: DateTime::from_timestamp_micros(row.int(2)?).unwrap_or_default(),
                        actor_id: row.opt_text(3)?,
                        entity_type: row.text(4)?,
                        entity_id: row.text(5)?,
                        action: row.text(6)?,
                        detail: serde_json::from_str(&row.text(7)?).unwrap_or(Json::Null),
                    };
                    let entry = render(c, &mut names, &event)?;
                    if query.filter.as_ref().is_none_or(|f| matches(f, &entry, &HashMap::new())) {
                        out.push((seq, entry));
                        if out.len() == query.page.size {
                            break;
                        }
                    }
                }
                if fetched < CHUNK && out.len() < query.page.size {
                    exhausted = true;
                    break;
                }
            }
            let next_after_seq = if exhausted { None } else { position };
            Ok(Page::after_seq(out.into_iter().map(|(_, e)| e).collect(), next_after_seq))
        })
        .await
}

/// One directory audit entry by id.
pub async fn get(app: &App, caller: &Caller, id: &str) -> Result<Json> {
    require_reader(caller)?;
    let id = ids::normalize(id);
    app.store
        .read(move |c| {
            let row = c.query_one(
                "SELECT id, at_us, actor_id, entity_type, entity_id, action, body FROM audit_events WHERE id = ?",
                &[Value::from(&id)],
            )?;
            let Some(row) = row else {
                return Err(Error::not_found("directoryAudit", &id));
            };
            let event = crate::audit::StoredEvent {
                id: row.text(0)?,
                at: DateTime::from_timestamp_micros(row.int(1)?).unwrap_or_default(),
                actor_id: row.opt_text(2)?,
                entity_type: row.text(3)?,
                entity_id: row.text(4)?,
                action: row.text(5)?,
                detail: serde_json::from_str(&row.text(6)?).unwrap_or(Json::Null),
            };
            render(c, &mut Names::default(), &event)
        })
        .await
}

/// Lower and upper bounds on `activityDateTime` implied by the filter's top-level `and`
/// terms, in microseconds (inclusive; the filter itself decides the exact edges).
fn time_bounds(expr: &Expr) -> (Option<i64>, Option<i64>) {
    let mut from = None;
    let mut to = None;
    fn terms<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
        match e {
            Expr::Binary { op: BinaryOp::And, left, right } => {
                terms(left, out);
                terms(right, out);
            }
            other => out.push(other),
        }
    }
    let mut all = Vec::new();
    terms(expr, &mut all);
    for t in all {
        let Expr::Binary { op, left, right } = t else { continue };
        let (path, lit, op) = match (&**left, &**right) {
            (Expr::Path(p), Expr::Literal(l)) => (p, l, *op),
            (Expr::Literal(l), Expr::Path(p)) => (p, l, flip(*op)),
            _ => continue,
        };
        if !(path.len() == 1 && path[0].eq_ignore_ascii_case("activityDateTime")) {
            continue;
        }
        let Some(at) = literal_time(lit) else { continue };
        let us = at.timestamp_micros();
        match op {
            BinaryOp::Ge | BinaryOp::Gt => from = Some(from.map_or(us, |f: i64| f.max(us))),
            BinaryOp::Le | BinaryOp::Lt => to = Some(to.map_or(us, |t: i64| t.min(us))),
            BinaryOp::Eq => {
                from = Some(us);
                to = Some(us);
            }
            _ => {}
        }
    }
    (from, to)
}

fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Ge => BinaryOp::Le,
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Le => BinaryOp::Ge,
        other => other,
    }
}

fn literal_time(lit: &Literal) -> Option<DateTime<Utc>> {
    match lit {
        Literal::DateTimeOffset(s) | Literal::String(s) => {
            DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc))
        }
        Literal::Date(s) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc()),
        _ => None,
    }
}

// ---- evaluation of $filter on a rendered entry ------------------------------------------

/// A value a filter term evaluates to.
#[derive(Debug, Clone)]
enum V {
    Null,
    Bool(bool),
    Num(f64),
    Text(String),
    Time(DateTime<Utc>),
    List(Vec<Json>),
    Object,
}

fn of_json(j: &Json) -> V {
    match j {
        Json::Null => V::Null,
        Json::Bool(b) => V::Bool(*b),
        Json::Number(n) => V::Num(n.as_f64().unwrap_or_default()),
        Json::String(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) if s.len() >= 20 && s.as_bytes().get(10) == Some(&b'T') => V::Time(t.with_timezone(&Utc)),
            _ => V::Text(s.clone()),
        },
        Json::Array(a) => V::List(a.clone()),
        Json::Object(_) => V::Object,
    }
}

fn lookup<'a>(obj: &'a Json, path: &[String]) -> Option<&'a Json> {
    let mut cur = obj;
    for seg in path {
        let map = cur.as_object()?;
        cur = map.iter().find(|(k, _)| k.eq_ignore_ascii_case(seg)).map(|(_, v)| v)?;
    }
    Some(cur)
}

fn value(e: &Expr, entry: &Json, vars: &HashMap<String, Json>) -> V {
    match e {
        Expr::Literal(l) => match l {
            Literal::Null => V::Null,
            Literal::Boolean(b) => V::Bool(*b),
            Literal::Integer(i) => V::Num(*i as f64),
            Literal::Decimal { value, .. } => V::Num(*value),
            Literal::String(s) => V::Text(s.clone()),
            Literal::Guid(s) => V::Text(s.clone()),
            Literal::DateTimeOffset(_) | Literal::Date(_) => literal_time(l).map(V::Time).unwrap_or(V::Null),
            Literal::Duration(s) => V::Text(s.clone()),
            Literal::Enum { value, .. } => V::Text(value.clone()),
        },
        Expr::Path(p) => {
            let (root, rest) = match vars.get(&p[0]) {
                Some(bound) => (bound, &p[1..]),
                None => (entry, &p[..]),
            };
            lookup(root, rest).map(of_json).unwrap_or(V::Null)
        }
        Expr::Call { function: Function::ToLower, args } => match value(&args[0], entry, vars) {
            V::Text(s) => V::Text(s.to_lowercase()),
            other => other,
        },
        Expr::Call { function: Function::ToUpper, args } => match value(&args[0], entry, vars) {
            V::Text(s) => V::Text(s.to_uppercase()),
            other => other,
        },
        other => V::Bool(matches(other, entry, vars)),
    }
}

fn text_of(v: &V) -> Option<String> {
    match v {
        V::Text(s) => Some(s.clone()),
        V::Time(t) => Some(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        V::Num(n) => Some(n.to_string()),
        V::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn compare(op: BinaryOp, a: &V, b: &V) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (a, b) {
        (V::Null, V::Null) => Some(Ordering::Equal),
        (V::Null, _) | (_, V::Null) => None,
        (V::Time(x), V::Time(y)) => Some(x.cmp(y)),
        (V::Time(x), V::Text(s)) | (V::Text(s), V::Time(x)) => {
            // A time compared with a string literal: read the string as a time.
            let y = DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc));
            let o = y.map(|y| x.cmp(&y));
            if matches!(a, V::Text(_)) { o.map(Ordering::reverse) } else { o }
        }
        (V::Num(x), V::Num(y)) => x.partial_cmp(y),
        (V::Bool(x), V::Bool(y)) => Some(x.cmp(y)),
        (V::Text(x), V::Text(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        _ => None,
    };
    match op {
        BinaryOp::Eq => ordering == Some(Ordering::Equal),
        BinaryOp::Ne => ordering != Some(Ordering::Equal),
        BinaryOp::Gt => ordering == Some(Ordering::Greater),
        BinaryOp::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
        BinaryOp::Lt => ordering == Some(Ordering::Less),
        BinaryOp::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        BinaryOp::And | BinaryOp::Or => false,
    }
}

/// Whether `entry` satisfies `e`.
fn matches(e: &Expr, entry: &Json, vars: &HashMap<String, Json>) -> bool {
    match e {
        Expr::Binary { op: BinaryOp::And, left, right } => matches(left, entry, vars) && matches(right, entry, vars),
        Expr::Binary { op: BinaryOp::Or, left, right } => matches(left, entry, vars) || matches(right, entry, vars),
        Expr::Binary { op, left, right } => compare(*op, &value(left, entry, vars), &value(right, entry, vars)),
        Expr::Not(inner) => !matches(inner, entry, vars),
        Expr::In { operand, values } => {
            let v = value(operand, entry, vars);
            values.iter().any(|x| compare(BinaryOp::Eq, &v, &value(x, entry, vars)))
        }
        Expr::Call { function, args } if args.len() == 2 => {
            let (Some(a), Some(b)) = (text_of(&value(&args[0], entry, vars)), text_of(&value(&args[1], entry, vars)))
            else {
                return false;
            };
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            match function {
                Function::StartsWith => a.starts_with(&b),
                Function::EndsWith => a.ends_with(&b),
                Function::Contains => a.contains(&b),
                _ => false,
            }
        }
        Expr::Lambda { path, kind, body } => {
            let items = match value(&Expr::Path(path.clone()), entry, vars) {
                V::List(items) => items,
                _ => Vec::new(),
            };
            let Some(body) = body else { return !items.is_empty() };
            let test = |item: &Json| {
                let mut inner = vars.clone();
                inner.insert(body.variable.clone(), item.clone());
                matches(&body.predicate, entry, &inner)
            };
            match kind {
                LambdaKind::Any => items.iter().any(test),
                LambdaKind::All => items.iter().all(test),
            }
        }
        Expr::Literal(Literal::Boolean(b)) => *b,
        Expr::Path(_) => matches!(value(e, entry, vars), V::Bool(true)),
        _ => false,
    }
}

// ---- rendering -----------------------------------------------------------------------------

/// Display names of the people and applications a page mentions, read once each.
#[derive(Default)]
struct Names {
    actors: HashMap<String, Json>,
}

impl Names {
    fn initiator(&mut self, c: &mut dyn Conn, actor: Option<&str>) -> Result<Json> {
        let Some(actor) = actor.filter(|a| *a != crate::delivery::SYSTEM_ACTOR) else {
            return Ok(json!({
                "user": null,
                "app": { "appId": null, "displayName": "Grantry", "servicePrincipalId": null, "servicePrincipalName": "Grantry" },
            }));
        };
        if let Some(known) = self.actors.get(actor) {
            return Ok(known.clone());
        }
        let found = if let Some(u) = grantry_store::repo::get::<grantry_domain::model::User>(c, actor)? {
            json!({
                "user": { "id": u.id, "displayName": u.display_name, "userPrincipalName": u.user_principal_name, "ipAddress": null },
                "app": null,
            })
        } else {
            let row = c.query_one(
                "SELECT app_id, sp_id, display_name FROM applications WHERE app_id = ? OR sp_id = ? OR id = ?",
                &[Value::from(actor), Value::from(actor), Value::from(actor)],
            )?;
            let app = match row {
                Some(r) => {
                    json!({ "appId": r.text(0)?, "displayName": r.text(2)?, "servicePrincipalId": r.text(1)?, "servicePrincipalName": r.text(2)? })
                }
                None => {
                    json!({ "appId": actor, "displayName": null, "servicePrincipalId": null, "servicePrincipalName": null })
                }
            };
            json!({ "user": null, "app": app })
        };
        self.actors.insert(actor.to_string(), found.clone());
        Ok(found)
    }
}

/// How one recorded change is named in Graph's audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub display_name: String,
    pub category: &'static str,
    pub operation_type: &'static str,
    pub target_type: &'static str,
    pub result: &'static str,
}

/// Graph's `type` of a target resource of `entity_type`.
fn target_type(entity_type: &str) -> &'static str {
    match entity_type {
        "accessPackage" => "AccessPackage",
        "catalog" => "AccessPackageCatalog",
        "accessPackageAssignmentPolicy" => "AccessPackageAssignmentPolicy",
        "accessPackageAssignmentRequest" => "AccessPackageAssignmentRequest",
        "accessPackageAssignment" => "AccessPackageAssignment",
        "approval" => "Approval",
        "resource" => "AccessPackageResource",
        "customCalloutExtension" => "CustomCalloutExtension",
        "customExtensionCalloutInstance" => "CustomExtensionCalloutInstance",
        "settings" => "EntitlementManagementSettings",
        "accessReviewInstance" => "AccessReviewInstance",
        "accessReviewScheduleDefinition" => "AccessReviewScheduleDefinition",
        "roleAssignment" => "RoleAssignment",
        "user" => "User",
        "groupMembership" => "Group",
        "webhookSubscription" | "webhookEvent" => "WebhookSubscription",
        _ => "Other",
    }
}

/// Words of a camelCase name: `accessPackageAssignmentPolicy` → `access package assignment policy`.
fn words(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars() {
        if ch.is_ascii_uppercase() {
            out.push(' ');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(f) => f.to_uppercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

/// Names a recorded change as Entra's audit log would (its activity names where Entra has
/// one; a plain description of the change otherwise).
pub fn activity(entity_type: &str, action: &str, detail: &Json) -> Activity {
    let category = match entity_type {
        "roleAssignment" => "RoleManagement",
        "user" => "UserManagement",
        "groupMembership" => "GroupManagement",
        _ => "EntitlementManagement",
    };
    let noun = match entity_type {
        "catalog" => "access package catalog".to_string(),
        "resource" => "access package resource".to_string(),
        "settings" => "entitlement management settings".to_string(),
        other => words(other),
    };
    let request_type = detail.get("requestType").and_then(Json::as_str).unwrap_or("");
    let (name, operation_type, result): (String, &'static str, &'static str) = match (entity_type, action) {
        (_, "create") => (format!("Create {noun}"), "Add", "success"),
        (_, "update" | "replace") => (format!("Update {noun}"), "Update", "success"),
        (_, "delete") => (format!("Delete {noun}"), "Delete", "success"),
        ("accessPackage", "moveToCatalog") => ("Move access package to another catalog".into(), "Update", "success"),
        ("accessPackage", "addResourceRoleScope") => ("Add resource role to access package".into(), "Add", "success"),
        ("accessPackage", "removeResourceRoleScope") => {
            ("Remove resource role from access package".into(), "Delete", "success")
        }
        ("accessPackage", "updateIncompatibilities") => {
            ("Update incompatible access of access package".into(), "Update", "success")
        }
        ("resource", "add") => ("Add resource to catalog".into(), "Add", "success"),
        ("resource", "remove") => ("Remove resource from catalog".into(), "Delete", "success"),
        ("accessPackageAssignmentRequest", "submitted") => (
            match request_type {
                "userAdd" => "User requests access package assignment".into(),
                "userUpdate" => "User requests access package assignment extension".into(),
                "userRemove" => "User requests to remove access package assignment".into(),
                "adminAdd" => "Administrator directly assigns user to access package".into(),
                "adminUpdate" => "Administrator updates access package assignment".into(),
                "adminRemove" => "Administrator removes user from access package".into(),
                other => format!("Submit access package assignment request ({other})"),
            },
            "Add",
            "success",
        ),
        ("accessPackageAssignmentRequest", "approved") => {
            ("Approve access package assignment request".into(), "Update", "success")
        }
        ("accessPackageAssignmentRequest", "denied") => {
            ("Deny access package assignment request".into(), "Update", "success")
        }
        ("accessPackageAssignmentRequest", "canceled") => {
            ("Cancel access package assignment request".into(), "Update", "success")
        }
        ("accessPackageAssignmentRequest", "delivered") => (
            if request_type == "systemRemove" {
                "Remove access package assignment".into()
            } else {
                "Fulfill access package assignment request".into()
            },
            "Update",
            "success",
        ),
        ("accessPackageAssignmentRequest", "delivering") => {
            ("Access package assignment request ready to be fulfilled".into(), "Update", "success")
        }
        ("accessPackageAssignmentRequest", "deliveryFailed") => {
            ("Fulfill access package assignment request".into(), "Update", "failure")
        }
        ("accessPackageAssignmentRequest", "partiallyDelivered") => {
            ("Partially fulfill access package assignment request".into(), "Update", "failure")
        }
        ("accessPackageAssignmentRequest", "deleted") => {
            ("Delete access package assignment request".into(), "Delete", "success")
        }
        ("accessPackageAssignmentRequest", "reprocess") => {
            ("Reprocess access package assignment request".into(), "Update", "success")
        }
        ("accessPackageAssignment", "delivered") => ("Create access package assignment".into(), "Assign", "success"),
        ("accessPackageAssignment", "partiallyDelivered") => {
            ("Create access package assignment".into(), "Assign", "failure")
        }
        ("accessPackageAssignment", "expired") => ("Remove access package assignment".into(), "Unassign", "success"),
        ("approval", "stageApproved") => {
            ("Approve access package assignment request stage".into(), "Update", "success")
        }
        ("approval", "stageDenied") => ("Deny access package assignment request stage".into(), "Update", "success"),
        ("approval", "stageEscalated") => {
            ("Escalate access package assignment request approval".into(), "Update", "success")
        }
        ("approval", "stageTimedOut") => {
            ("Access package assignment request approval expired".into(), "Update", "timeout")
        }
        ("groupMembership", "granted") => ("Add member to group".into(), "Assign", "success"),
        ("groupMembership", "revoked") => ("Remove member from group".into(), "Unassign", "success"),
        ("roleAssignment", _) => (format!("{} role assignment", capitalised(&words(action))), "Other", "success"),
        ("user", "guestInvited") => ("Invite external user".into(), "Add", "success"),
        (_, other) => (format!("{} {noun}", capitalised(&words(other))), "Other", "success"),
    };
    Activity { display_name: name, category, operation_type, target_type: target_type(entity_type), result }
}

/// The related objects a record's detail names, as further target resources.
const RELATED: &[(&str, &str)] = &[
    ("accessPackageId", "AccessPackage"),
    ("catalogId", "AccessPackageCatalog"),
    ("assignmentId", "AccessPackageAssignment"),
    ("requestId", "AccessPackageAssignmentRequest"),
    ("targetSubjectId", "AccessPackageSubject"),
    ("memberId", "User"),
    ("policyId", "AccessPackageAssignmentPolicy"),
];

fn render(c: &mut dyn Conn, names: &mut Names, e: &crate::audit::StoredEvent) -> Result<Json> {
    let activity = activity(&e.entity_type, &e.action, &e.detail);
    let detail = e.detail.as_object().cloned().unwrap_or_default();
    let modified: Vec<Json> = detail
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| json!({ "displayName": k, "oldValue": null, "newValue": v.to_string() }))
        .collect();
    let display_name = detail.get("displayName").and_then(Json::as_str);
    let mut targets = vec![json!({
        "id": e.entity_id,
        "displayName": display_name,
        "type": activity.target_type,
        "userPrincipalName": null,
        "groupId": if e.entity_type == "groupMembership" { Json::String(e.entity_id.clone()) } else { Json::Null },
        "modifiedProperties": modified,
    })];
    for (key, kind) in RELATED {
        if let Some(Json::String(id)) = detail.get(*key)
            && id != &e.entity_id
        {
            targets.push(json!({
                "id": id, "displayName": null, "type": kind, "userPrincipalName": null, "groupId": null, "modifiedProperties": [],
            }));
        }
    }
    let mut additional = Map::new();
    additional.insert("key".into(), json!("grantryRecord"));
    additional.insert("value".into(), json!(format!("{}:{}", e.entity_type, e.action)));
    Ok(json!({
        "id": e.id,
        "category": activity.category,
        "correlationId": e.entity_id,
        "result": activity.result,
        "resultReason": detail.get("status").and_then(Json::as_str).unwrap_or(""),
        "activityDisplayName": activity.display_name,
        "activityDateTime": e.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        "loggedByService": match activity.category {
            "EntitlementManagement" => "Entitlement Management",
            _ => "Core Directory",
        },
        "operationType": activity.operation_type,
        "initiatedBy": names.initiator(c, e.actor_id.as_deref())?,
        "targetResources": targets,
        "additionalDetails": [Json::Object(additional)],
    }))
}
