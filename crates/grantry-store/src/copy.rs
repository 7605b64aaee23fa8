//! Copying the embedded SQLite database into an empty PostgreSQL database.
//!
//! The source is read in one read transaction (a consistent snapshot, so a running server
//! may keep writing to it); the target receives the schema and every row in one
//! transaction, which also re-reads every row it wrote and compares row counts and a
//! checksum per table with the source before committing. A copy that does not verify is
//! rolled back: the target is either a complete, verified copy or left as it was.

use crate::conn::{Conn, Value};
use crate::pg::{PgClient, PgConn};
use crate::sqlite::{self, map_err};
use grantry_domain::{Error, ErrorKind, Result};
use std::collections::BTreeSet;
use std::path::Path;

/// What was copied of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    pub table: String,
    pub rows: u64,
    /// Order-independent checksum of the rows, equal on both sides.
    pub checksum: u64,
}

/// Progress of a copy, for display.
#[derive(Debug, Clone)]
pub enum Progress<'a> {
    /// `done` of `total` rows of `table` copied.
    Rows { table: &'a str, done: u64, total: u64 },
    /// Re-reading what was written and comparing it with the source.
    Verifying { table: &'a str },
}

fn refused(message: String) -> Error {
    Error::new(ErrorKind::BadRequest, "BadRequest", message)
}

/// Most parameters in one INSERT (PostgreSQL allows 65,535).
const MAX_PARAMS: usize = 30_000;
/// Most rows in one INSERT.
const MAX_ROWS: usize = 500;

/// The checksum of a set of rows: each row hashed (FNV-1a over a typed encoding of its
/// values, then mixed), and the hashes added, so the order rows come back in (which
/// differs between the backends' collations) does not matter.
#[derive(Default)]
struct Checksum {
    rows: u64,
    sum: u64,
}

impl Checksum {
    fn add(&mut self, row: &[Value]) {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for v in row {
            match v {
                Value::Null => feed(&[0]),
                Value::Int(i) => {
                    feed(&[1]);
                    feed(&i.to_le_bytes());
                }
                Value::Real(f) => {
                    feed(&[2]);
                    feed(&f.to_bits().to_le_bytes());
                }
                Value::Text(s) => {
                    feed(&[3]);
                    feed(&(s.len() as u64).to_le_bytes());
                    feed(s.as_bytes());
                }
            }
        }
        // splitmix64's finalizer, so that sums of similar rows do not cancel out.
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.sum = self.sum.wrapping_add(z ^ (z >> 31));
        self.rows += 1;
    }
}

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// Copies the SQLite database at `source` into the empty PostgreSQL database at
/// `target_url`. Blocking: run it off the async runtime.
pub fn sqlite_to_postgres(
    source: &Path,
    target_url: &str,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Vec<TableCopy>> {
    if !source.is_file() {
        return Err(refused(format!("there is no database at {}", source.display())));
    }
    let src = sqlite::open(source, true, true)?;
    // One read transaction for the whole copy: the snapshot of one instant.
    src.execute_batch("BEGIN").map_err(map_err)?;
    let versions: BTreeSet<i64> = src
        .prepare("SELECT version FROM schema_migrations")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| refused(format!("{} is not a Grantry database ({e})", source.display())))?;
    let known: BTreeSet<i64> = crate::migrate::SQLITE.iter().map(|(v, _, _)| *v).collect();
    if let Some(newer) = versions.difference(&known).next() {
        return Err(refused(format!(
            "{} has schema version {newer}, newer than this grantry knows; copy it with the grantry release that wrote it",
            source.display()
        )));
    }
    if versions != known {
        return Err(refused(format!(
            "{} is not on the latest schema; run `grantry migrate --database sqlite:{}` first (with no server running on it)",
            source.display(),
            source.display()
        )));
    }
    let tables: Vec<String> = src
        .prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT IN ('schema_migrations', 'eval_generation') ORDER BY name",
        )
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(map_err)?;

    let mut client = PgClient::connect(target_url)?;
    ensure_empty(&mut client, &tables)?;
    crate::migrate::apply_postgres(&mut client)?;

    // Writers of Grantry servers started on the target meanwhile wait for this transaction.
    client.batch(&format!("BEGIN; SELECT pg_advisory_xact_lock({})", crate::store::PG_WRITE_LOCK))?;
    let copied = (|| {
        let mut copied = Vec::with_capacity(tables.len());
        for table in &tables {
            copied.push(copy_table(&src, &mut client, table, progress)?);
        }
        for expected in &copied {
            progress(Progress::Verifying { table: &expected.table });
            let found = target_checksum(&mut client, &expected.table, &columns(&src, &expected.table)?)?;
            if found.rows != expected.rows || found.sum != expected.checksum {
                return Err(Error::internal(format!(
                    "verification failed for table {}: the source has {} rows (checksum {:016x}), the copy {} (checksum {:016x}); nothing was kept",
                    expected.table, expected.rows, expected.checksum, found.rows, found.sum
                )));
            }
        }
        Ok(copied)
    })();
    match copied {
        Ok(copied) => {
            client.batch("COMMIT")?;
            Ok(copied)
        }
        Err(e) => {
            let _ = client.batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Refuses a target holding anything but (at most) Grantry's empty schema.
fn ensure_empty(client: &mut PgClient, grantry_tables: &[String]) -> Result<()> {
    let mut conn = PgConn(client);
    let existing = conn.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name",
        &[],
    )?;
    for row in existing {
        let table = row.text(0)?;
        // The evaluation token is the target's own: its triggers set it as rows arrive.
        if table == "schema_migrations" || table == "eval_generation" {
            continue;
        }
        if !grantry_tables.contains(&table) {
            return Err(refused(format!(
                "the target database is not empty: it has a table '{table}'; copy into a new, empty database (e.g. createdb grantry)"
            )));
        }
        let rows = conn.query_one(&format!("SELECT 1 FROM {} LIMIT 1", quote(&table)), &[])?;
        if rows.is_some() {
            return Err(refused(format!(
                "the target database is not empty: table '{table}' has rows; copy into a new, empty database (e.g. createdb grantry)"
            )));
        }
    }
    Ok(())
}

fn columns(src: &rusqlite::Connection, table: &str) -> Result<Vec<String>> {
    src.prepare(&format!("SELECT name FROM pragma_table_info({})", sql_literal(table)))
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(map_err)
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn copy_table(
    src: &rusqlite::Connection,
    client: &mut PgClient,
    table: &str,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<TableCopy> {
    let cols = columns(src, table)?;
    let target_cols: BTreeSet<String> = PgConn(&mut *client)
        .query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?",
            &[Value::from(table)],
        )?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<_>>()?;
    let source_cols: BTreeSet<String> = cols.iter().cloned().collect();
    if source_cols != target_cols {
        return Err(Error::internal(format!(
            "table {table} has columns {source_cols:?} in SQLite but {target_cols:?} in PostgreSQL"
        )));
    }
    let identity = PgConn(&mut *client)
        .query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? AND is_identity = 'YES'",
            &[Value::from(table)],
        )?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<Vec<_>>>()?;
    let total: i64 =
        src.query_row(&format!("SELECT COUNT(*) FROM {}", quote(table)), [], |r| r.get(0)).map_err(map_err)?;
    let total = total as u64;
    let column_list = cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    let overriding = if identity.is_empty() { "" } else { " OVERRIDING SYSTEM VALUE" };
    let per_insert = (MAX_PARAMS / cols.len().max(1)).clamp(1, MAX_ROWS);
    let insert_sql = |rows: usize| {
        let one = format!("({})", vec!["?"; cols.len()].join(", "));
        format!("INSERT INTO {} ({column_list}){overriding} VALUES {}", quote(table), vec![one; rows].join(", "))
    };
    let full_insert = insert_sql(per_insert);

    let mut checksum = Checksum::default();
    let mut pending: Vec<Value> = Vec::with_capacity(per_insert * cols.len());
    let mut pending_rows = 0usize;
    let mut done = 0u64;
    progress(Progress::Rows { table, done, total });
    let mut stmt = src.prepare(&format!("SELECT {column_list} FROM {}", quote(table))).map_err(map_err)?;
    let mut rows = stmt.query([]).map_err(map_err)?;
    while let Some(row) = rows.next().map_err(map_err)? {
        let start = pending.len();
        for i in 0..cols.len() {
            pending.push(sqlite::to_value(row.get_ref(i).map_err(map_err)?));
        }
        checksum.add(&pending[start..]);
        pending_rows += 1;
        if pending_rows == per_insert {
            PgConn(&mut *client).execute(&full_insert, &pending)?;
            done += pending_rows as u64;
            pending.clear();
            pending_rows = 0;
            progress(Progress::Rows { table, done, total });
        }
    }
    if pending_rows > 0 {
        PgConn(&mut *client).execute(&insert_sql(pending_rows), &pending)?;
        done += pending_rows as u64;
        progress(Progress::Rows { table, done, total });
    }
    // Identity columns continue after the copied values.
    for col in identity {
        PgConn(&mut *client).query(
            &format!(
                "SELECT setval(pg_get_serial_sequence({}, {}), COALESCE(MAX({}), 0) + 1, false) FROM {}",
                sql_literal(table),
                sql_literal(&col),
                quote(&col),
                quote(table)
            ),
            &[],
        )?;
    }
    Ok(TableCopy { table: table.to_string(), rows: checksum.rows, checksum: checksum.sum })
}

/// Row count and checksum of `table` on the target, read inside the copy's transaction.
fn target_checksum(client: &mut PgClient, table: &str, cols: &[String]) -> Result<Checksum> {
    let column_list = cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
    let mut checksum = Checksum::default();
    client.for_each_row(&format!("SELECT {column_list} FROM {}", quote(table)), |row| checksum.add(&row))?;
    Ok(checksum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_ignore_row_order_but_not_values() {
        let rows = [
            vec![Value::Int(1), Value::Text("a".into()), Value::Null],
            vec![Value::Int(2), Value::Text("b".into()), Value::Real(1.5)],
        ];
        let (mut forward, mut backward) = (Checksum::default(), Checksum::default());
        rows.iter().for_each(|r| forward.add(r));
        rows.iter().rev().for_each(|r| backward.add(r));
        assert_eq!((forward.rows, forward.sum), (backward.rows, backward.sum));
        let mut changed = Checksum::default();
        changed.add(&rows[0]);
        changed.add(&[Value::Int(2), Value::Text("b".into()), Value::Real(1.25)]);
        assert_ne!(forward.sum, changed.sum);
        // Type matters: the text "1" is not the integer 1.
        let (mut int, mut text) = (Checksum::default(), Checksum::default());
        int.add(&[Value::Int(1)]);
        text.add(&[Value::Text("1".into())]);
        assert_ne!(int.sum, text.sum);
    }
}
