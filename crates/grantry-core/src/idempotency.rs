//! Idempotent retries of POSTs that carry `client-request-id`.
//!
//! The response to a successful POST is remembered for [`TTL_HOURS`] under (principal id,
//! client-request-id, method, path), with a hash of the request body. A retry with the same
//! key and body gets the remembered response; a retry with the same key and another body is
//! refused ([`key_reused`]). Use cases that create entities record the response in the same
//! transaction as the entity ([`Save`]), so a creation that committed always has its answer
//! on record, even when the client never saw it. Serialising concurrent retries of one key
//! (the in-flight wait) is the HTTP layer's job.

use chrono::{DateTime, Duration, Utc};
use grantry_domain::{Error, ErrorKind, Result};
use grantry_store::{Conn, Value};

/// How long a response is remembered.
pub const TTL_HOURS: i64 = 24;

/// What identifies one logical request across retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub principal_id: String,
    pub client_request_id: String,
    pub method: String,
    pub path: String,
    /// Hash of the request body (hex), to tell a retry from a different request.
    pub body_hash: String,
}

impl Key {
    /// One string naming the key (for the in-flight map).
    pub fn slot(&self) -> String {
        format!("{}\n{}\n{}\n{}", self.principal_id, self.client_request_id, self.method, self.path)
    }
}

/// A remembered response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub status: u16,
    pub body: String,
    pub body_hash: String,
}

/// How a creating use case records its response in its own transaction: the status and a
/// function that renders the created entity exactly as the response body will show it.
pub struct Save<T> {
    pub key: Key,
    pub status: u16,
    pub render: Box<dyn FnOnce(&T) -> String + Send>,
}

impl<T> Save<T> {
    /// Records the rendered response of `entity` (inside the creation's transaction).
    pub fn record(self, c: &mut dyn Conn, entity: &T, now: DateTime<Utc>) -> Result<()> {
        let body = (self.render)(entity);
        save(c, &self.key, self.status, &body, now)
    }
}

/// The 409 for a key sent again with a different body.
pub fn key_reused(key: &Key) -> Error {
    Error::new(
        ErrorKind::Conflict,
        "IdempotencyKeyReused",
        format!(
            "client-request-id '{}' was already used for a different {} {} in the last {TTL_HOURS} hours; send a new client-request-id for a new request, or resend the original body to retry it.",
            key.client_request_id, key.method, key.path
        ),
    )
    .with_target("client-request-id")
}

fn params(key: &Key) -> Vec<Value> {
    vec![
        Value::from(&key.principal_id),
        Value::from(&key.client_request_id),
        Value::from(&key.method),
        Value::from(&key.path),
    ]
}

const WHERE_KEY: &str = "principal_id = ? AND client_request_id = ? AND method = ? AND path = ?";

/// The response remembered for `key`, if one younger than the TTL exists.
pub fn find(c: &mut dyn Conn, key: &Key, now: DateTime<Utc>) -> Result<Option<Stored>> {
    let mut p = params(key);
    p.push(Value::from(now - Duration::hours(TTL_HOURS)));
    let row = c.query_one(
        &format!("SELECT status, response, body_hash FROM idempotency_keys WHERE {WHERE_KEY} AND created_us > ?"),
        &p,
    )?;
    row.map(|r| Ok(Stored { status: u16::try_from(r.int(0)?).unwrap_or(200), body: r.text(1)?, body_hash: r.text(2)? }))
        .transpose()
}

/// Remembers `body` as the response to `key`. Drops expired entries of the same key (and a
/// bounded number of other expired entries, so the table does not grow without end).
pub fn save(c: &mut dyn Conn, key: &Key, status: u16, body: &str, now: DateTime<Utc>) -> Result<()> {
    let cutoff = Value::from(now - Duration::hours(TTL_HOURS));
    let mut p = params(key);
    p.push(cutoff.clone());
    c.execute(&format!("DELETE FROM idempotency_keys WHERE {WHERE_KEY} AND created_us <= ?"), &p)?;
    c.execute(
        "DELETE FROM idempotency_keys WHERE seq IN (SELECT seq FROM idempotency_keys WHERE created_us <= ? ORDER BY created_us LIMIT 100)",
        &[cutoff],
    )?;
    let mut p = params(key);
    p.extend([Value::from(&key.body_hash), Value::Int(i64::from(status)), Value::from(body), Value::from(now)]);
    c.execute(
        "INSERT INTO idempotency_keys (principal_id, client_request_id, method, path, body_hash, status, response, created_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        &p,
    )
    .map_err(|e| {
        if e.kind == ErrorKind::Conflict { key_reused(key) } else { e }
    })?;
    Ok(())
}

/// [`find`] on a read connection.
pub async fn lookup(app: &crate::App, key: &Key) -> Result<Option<Stored>> {
    let (key, now) = (key.clone(), app.now());
    app.store.read(move |c| find(c, &key, now)).await
}

/// [`save`] in its own write (for responses of use cases that do not record them).
pub async fn remember(app: &crate::App, key: &Key, status: u16, body: String) -> Result<()> {
    let (key, now) = (key.clone(), app.now());
    app.store.write(move |c| save(c, &key, status, &body, now)).await
}
