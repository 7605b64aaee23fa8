//! Schema migrations, applied in order and recorded in `schema_migrations`.

use crate::conn::{Conn, Value};
use grantry_domain::Result;

/// (version, name, SQL) for SQLite, in order. Never edit a released migration; add one.
pub const SQLITE: &[(i64, &str, &str)] = &[
    (1, "foundation", include_str!("../migrations/sqlite/0001_foundation.sql")),
    (2, "catalogs", include_str!("../migrations/sqlite/0002_catalogs.sql")),
    (10, "approvals", include_str!("../migrations/sqlite/0010_approvals.sql")),
    (20, "idempotency", include_str!("../migrations/sqlite/0020_idempotency.sql")),
    (40, "custom_extensions", include_str!("../migrations/sqlite/0040_custom_extensions.sql")),
    (41, "outbox", include_str!("../migrations/sqlite/0041_outbox.sql")),
    (42, "webhooks", include_str!("../migrations/sqlite/0042_webhooks.sql")),
    (130, "applications", include_str!("../migrations/sqlite/0130_applications.sql")),
    (150, "access_reviews", include_str!("../migrations/sqlite/0150_access_reviews.sql")),
    (160, "scim", include_str!("../migrations/sqlite/0160_scim.sql")),
    (170, "mail", include_str!("../migrations/sqlite/0170_mail.sql")),
    (180, "portal", include_str!("../migrations/sqlite/0180_portal.sql")),
    (190, "scim_user_name", include_str!("../migrations/sqlite/0190_scim_user_name.sql")),
    (191, "app_roles", include_str!("../migrations/sqlite/0191_app_roles.sql")),
    (210, "automatic_assignment", include_str!("../migrations/sqlite/0210_automatic_assignment.sql")),
    (220, "connected_organizations", include_str!("../migrations/sqlite/0220_connected_organizations.sql")),
    (230, "provisioning", include_str!("../migrations/sqlite/0230_provisioning.sql")),
    (250, "eval_generation", include_str!("../migrations/sqlite/0250_eval_generation.sql")),
    (252, "connected_generation", include_str!("../migrations/sqlite/0252_connected_generation.sql")),
    (260, "review_stages", include_str!("../migrations/sqlite/0260_review_stages.sql")),
    (290, "outbox_pending_key", include_str!("../migrations/sqlite/0290_outbox_pending_key.sql")),
];

/// The same migrations for PostgreSQL: the same versions and names, PostgreSQL types
/// (`BIGINT` identity `seq`, `BIGINT` timestamps and booleans). Add each new migration to
/// both lists.
pub const POSTGRES: &[(i64, &str, &str)] = &[
    (1, "foundation", include_str!("../migrations/postgres/0001_foundation.sql")),
    (2, "catalogs", include_str!("../migrations/postgres/0002_catalogs.sql")),
    (10, "approvals", include_str!("../migrations/postgres/0010_approvals.sql")),
    (20, "idempotency", include_str!("../migrations/postgres/0020_idempotency.sql")),
    (40, "custom_extensions", include_str!("../migrations/postgres/0040_custom_extensions.sql")),
    (41, "outbox", include_str!("../migrations/postgres/0041_outbox.sql")),
    (42, "webhooks", include_str!("../migrations/postgres/0042_webhooks.sql")),
    (130, "applications", include_str!("../migrations/postgres/0130_applications.sql")),
    (150, "access_reviews", include_str!("../migrations/postgres/0150_access_reviews.sql")),
    (160, "scim", include_str!("../migrations/postgres/0160_scim.sql")),
    (170, "mail", include_str!("../migrations/postgres/0170_mail.sql")),
    (180, "portal", include_str!("../migrations/postgres/0180_portal.sql")),
    (190, "scim_user_name", include_str!("../migrations/postgres/0190_scim_user_name.sql")),
    (191, "app_roles", include_str!("../migrations/postgres/0191_app_roles.sql")),
    (210, "automatic_assignment", include_str!("../migrations/postgres/0210_automatic_assignment.sql")),
    (220, "connected_organizations", include_str!("../migrations/postgres/0220_connected_organizations.sql")),
    (230, "provisioning", include_str!("../migrations/postgres/0230_provisioning.sql")),
    (250, "eval_generation", include_str!("../migrations/postgres/0250_eval_generation.sql")),
    (252, "connected_generation", include_str!("../migrations/postgres/0252_connected_generation.sql")),
    (260, "review_stages", include_str!("../migrations/postgres/0260_review_stages.sql")),
    (290, "outbox_pending_key", include_str!("../migrations/postgres/0290_outbox_pending_key.sql")),
];

/// Advisory lock taken by the migration transaction on PostgreSQL, so that processes
/// starting at once apply each migration exactly once.
const PG_MIGRATION_LOCK: i64 = 0x4752_414e_5452_594d; // "GRANTRYM"

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

/// Applies the PostgreSQL migrations not yet recorded, all in one transaction under an
/// advisory lock (PostgreSQL's DDL is transactional). Returns the versions applied.
pub(crate) fn apply_postgres(client: &mut crate::pg::PgClient) -> Result<Vec<i64>> {
    use crate::pg::PgConn;
    client.batch(&format!(
        "BEGIN; SET LOCAL client_min_messages = warning; SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK}); \
         CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_us BIGINT NOT NULL)"
    ))?;
    let result = (|| {
        let mut applied = Vec::new();
        for (version, name, sql) in POSTGRES {
            let done = PgConn(&mut *client)
                .query_one("SELECT version FROM schema_migrations WHERE version = ?", &[Value::Int(*version)])?
                .is_some();
            if done {
                continue;
            }
            client.batch(sql)?;
            PgConn(&mut *client).execute(
                "INSERT INTO schema_migrations (version, name, applied_us) VALUES (?, ?, 0)",
                &[Value::Int(*version), Value::from(*name)],
            )?;
            applied.push(*version);
        }
        Ok(applied)
    })();
    match result {
        Ok(applied) => {
            client.batch("COMMIT")?;
            Ok(applied)
        }
        Err(e) => {
            let _ = client.batch("ROLLBACK");
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_backends_have_the_same_migrations() {
        let sqlite: Vec<(i64, &str)> = super::SQLITE.iter().map(|(v, n, _)| (*v, *n)).collect();
        let postgres: Vec<(i64, &str)> = super::POSTGRES.iter().map(|(v, n, _)| (*v, *n)).collect();
        assert_eq!(
            sqlite, postgres,
            "add every migration for both SQLite and PostgreSQL, with the same version and name"
        );
        assert!(sqlite.windows(2).all(|w| w[0].0 < w[1].0), "migrations must be listed in increasing version order");
    }
}
