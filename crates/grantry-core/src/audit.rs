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
pub fn record(c: &mut dyn Conn, event: AuditEvent<'_>) -> Result<()> {
    c.execute(
        "INSERT INTO audit_events (id, at_us, actor_id, entity_type, entity_id, action, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
        &[
            Value::from(ids::new_id()),
            Value::from(event.at),
            Value::from(event.actor_id),
            Value::from(event.entity_type),
            Value::from(event.entity_id),
            Value::from(event.action),
            Value::Text(event.detail.to_string()),
        ],
    )?;
    Ok(())
}
