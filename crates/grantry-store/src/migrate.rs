//! Schema migrations, applied in order and recorded in `schema_migrations`.

use crate::conn::{Conn, Value};
use grantry_domain::Result;

/// (version, name, SQL) for SQLite, in order. Never edit a released migration; add one.
pub const SQLITE: &[(i64, &str, &str)] = &[
    (1, "foundation", include_str!("../migrations/sqlite/0001_foundation.sql")),
    (2, "catalogs", include_str!("../migrations/sqlite/0002_catalogs.sql")),
    (10, "approvals", include_str!("../migrations/sqlite/0010_approvals.sql")),
    (20, "idempotency", include_str!("../migrations/sqlite/0020_idempotency.sql")),
];

/// Applies the migrations not yet recorded. Returns the versions applied.
pub(crate) fn apply(conn: &rusqlite::Connection) -> Result<Vec<i64>> {
    use crate::sqlite::{SqliteConn, map_err};
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_us INTEGER NOT NULL)",
    )
    .map_err(map_err)?;
    let mut applied = Vec::new();
    for (version, name, sql) in SQLITE {
        let done = SqliteConn(conn)
            .query_one("SELECT version FROM schema_migrations WHERE version = ?", &[Value::Int(*version)])?
            .is_some();
        if done {
            continue;
        }
        conn.execute_batch("BEGIN IMMEDIATE").map_err(map_err)?;
        let result = conn.execute_batch(sql).map_err(map_err).and_then(|_| {
            SqliteConn(conn).execute(
                "INSERT INTO schema_migrations (version, name, applied_us) VALUES (?, ?, 0)",
                &[Value::Int(*version), Value::from(*name)],
            )
        });
        match result {
            Ok(_) => conn.execute_batch("COMMIT").map_err(map_err)?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
        applied.push(*version);
    }
    Ok(applied)
}
