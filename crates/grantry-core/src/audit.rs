//! The audit trail: every state change, who made it, when, and why.

use chrono::{DateTime, Utc};
use grantry_domain::{Result, ids};
use grantry_store::{Conn, Value};
use serde_json::Value as Json;

pub struct AuditEvent<'a> {
    pub at: DateTime<Utc>,
    pub actor_id: Option<&'a str>,
    pub entity_type: &'a str,
    pub entity_id: &'a str,
    pub action: &'a str,
    pub detail: Json,
}

/// Records `event` in the caller's transaction, so it exists exactly when the change does.
/// Inside the writer the row is inserted with the rest of its group commit's records, in
/// one statement just before the commit (see `grantry_store::deferred`).
pub fn record(c: &mut dyn Conn, event: AuditEvent<'_>) -> Result<()> {
    let values = vec![
        Value::from(ids::new_id()),
        Value::from(event.at),
        Value::from(event.actor_id),
        Value::from(event.entity_type),
        Value::from(event.entity_id),
        Value::from(event.action),
        Value::Text(event.detail.to_string()),
    ];
    if let Err(values) = grantry_store::deferred::push(INTO, values) {
        let sql = format!("INSERT INTO {INTO} VALUES (?, ?, ?, ?, ?, ?, ?)");
        c.execute(&sql, &values)?;
    }
    Ok(())
}

/// The audit table and the columns a record fills.
const INTO: &str = "audit_events (id, at_us, actor_id, entity_type, entity_id, action, body)";

/// One recorded event, as read back.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: String,
    pub at: DateTime<Utc>,
    pub actor_id: Option<String>,
    pub entity_type: String,
    pub entity_id: String,
    pub action: String,
    pub detail: Json,
}

/// Who may read the audit trail: applications with entitlement management read
/// permission, and Identity Governance or Global Administrators. The same callers may read
/// the server's metrics.
pub fn require_reader(caller: &crate::Caller) -> Result<()> {
    caller.require(crate::auth::perms::EM_READ)?;
    if caller.is_app() || caller.is_em_admin() {
        Ok(())
    } else {
        Err(grantry_domain::Error::forbidden(
            "The audit trail is for administrators: an application with EntitlementManagement.Read.All, or an Identity Governance Administrator or Global Administrator.",
        ))
    }
}

/// The audit trail, newest first, optionally for one entity. Paging continues *before*
/// `page.after_seq` (the token carries the `seq` of the last event shown).
pub async fn list(
    app: &crate::App,
    caller: &crate::Caller,
    entity_id: Option<String>,
    page: crate::PageRequest,
) -> Result<crate::Page<StoredEvent>> {
    require_reader(caller)?;
    app.store
        .read(move |c| {
            let mut clauses = Vec::new();
            let mut params = Vec::new();
            if let Some(e) = &entity_id {
                clauses.push("entity_id = ?");
                params.push(Value::from(ids::normalize(e)));
            }
            if let Some(before) = page.after_seq {
                clauses.push("seq < ?");
                params.push(Value::Int(before));
            }
            let where_sql = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
            let sql = format!(
                "SELECT seq, id, at_us, actor_id, entity_type, entity_id, action, body FROM audit_events {where_sql} ORDER BY seq DESC LIMIT {}",
                page.size + 1
            );
            let rows = c.query(&sql, &params)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((
                    row.int(0)?,
                    StoredEvent {
                        id: row.text(1)?,
                        at: DateTime::from_timestamp_micros(row.int(2)?).unwrap_or_default(),
                        actor_id: row.opt_text(3)?,
                        entity_type: row.text(4)?,
                        entity_id: row.text(5)?,
                        action: row.text(6)?,
                        detail: serde_json::from_str(&row.text(7)?).unwrap_or(Json::Null),
                    },
                ));
            }
            Ok(crate::Page::from_rows(out, page.size))
        })
        .await
}

/// The events of one entity, oldest first (the caller has checked who may see them).
pub fn of_entity(c: &mut dyn Conn, entity_id: &str) -> Result<Vec<StoredEvent>> {
    let rows = c.query(
        "SELECT id, at_us, actor_id, entity_type, entity_id, action, body FROM audit_events WHERE entity_id = ? ORDER BY seq LIMIT 1000",
        &[Value::from(ids::normalize(entity_id))],
    )?;
    rows.iter()
        .map(|row| {
            Ok(StoredEvent {
                id: row.text(0)?,
                at: DateTime::from_timestamp_micros(row.int(1)?).unwrap_or_default(),
                actor_id: row.opt_text(2)?,
                entity_type: row.text(3)?,
                entity_id: row.text(4)?,
                action: row.text(5)?,
                detail: serde_json::from_str(&row.text(6)?).unwrap_or(Json::Null),
            })
        })
        .collect()
}
