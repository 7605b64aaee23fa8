//! SQLite connections: pragmas, value conversion and error mapping.

use crate::conn::{Backend, Conn, Row, Value};
use grantry_domain::{Error, ErrorKind, Result};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};
use std::path::Path;

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Real(v) => ToSqlOutput::Borrowed(ValueRef::Real(*v)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

pub(crate) fn map_err(e: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(code, message) = &e {
        if code.code == rusqlite::ErrorCode::ConstraintViolation {
            let message = message.as_deref().unwrap_or("constraint");
            let (name, table) = crate::constraint::from_sqlite(message);
            return crate::constraint::conflict(name, table.as_deref(), message);
        }
        if matches!(code.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) {
            return Error::new(
                ErrorKind::Unavailable,
                "serviceNotAvailable",
                "The database is busy; retry the request.",
            );
        }
    }
    Error::internal(format!("database error: {e}"))
}

/// How long a statement waits for a lock another connection holds.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens a connection with Grantry's settings. `synchronous_full` keeps every acknowledged
/// commit on disk across power loss; it is only turned off on request.
pub(crate) fn open(path: &Path, read_only: bool, synchronous_full: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    };
    let conn = Connection::open_with_flags(path, flags).map_err(map_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(map_err)?;
    if !read_only {
        conn.pragma_update(None, "journal_mode", "WAL").map_err(map_err)?;
    }
    conn.pragma_update(None, "synchronous", if synchronous_full { "FULL" } else { "NORMAL" }).map_err(map_err)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(map_err)?;
    conn.pragma_update(None, "cache_size", -16_000).map_err(map_err)?;
    // Savepoint journals (one per caller in every group commit) and sorter spills stay in
    // memory instead of a temporary file created, written and deleted per statement.
    conn.pragma_update(None, "temp_store", "MEMORY").map_err(map_err)?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// A [`Conn`] over a rusqlite connection; the caller manages the transaction.
pub(crate) struct SqliteConn<'a>(pub &'a Connection);

pub(crate) fn to_value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Text(String::from_utf8_lossy(b).into_owned()),
    }
}

impl Conn for SqliteConn<'_> {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let mut stmt = self.0.prepare_cached(sql).map_err(map_err)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter())).map_err(map_err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(map_err)? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(to_value(row.get_ref(i).map_err(map_err)?));
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let mut stmt = self.0.prepare_cached(sql).map_err(map_err)?;
        let n = stmt.execute(rusqlite::params_from_iter(params.iter())).map_err(map_err)?;
        Ok(n as u64)
    }
}
