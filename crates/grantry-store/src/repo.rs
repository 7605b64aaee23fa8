//! Generic persistence of [`Record`]s plus a few shared helpers. Entity-specific queries
//! live with the use cases that need them (grantry-core), written in the same portable SQL.

use crate::conn::{Conn, Row, Value};
use crate::records::Record;
use grantry_domain::{Error, Result};

fn column_list<R: Record>(r: &R) -> (Vec<&'static str>, Vec<Value>) {
    r.columns().into_iter().unzip()
}

fn to_body<R: Record>(r: &R) -> Result<String> {
    serde_json::to_string(r).map_err(|e| Error::internal(format!("cannot serialize {}: {e}", R::TABLE)))
}

pub fn from_body<R: Record>(body: &str) -> Result<R> {
    serde_json::from_str(body).map_err(|e| Error::internal(format!("stored {} row is unreadable: {e}", R::TABLE)))
}

fn insert_statement<R: Record>(r: &R) -> Result<(String, Vec<Value>)> {
    let (names, mut values) = column_list(r);
    let placeholders = vec!["?"; names.len() + 2].join(", ");
    let sql = format!("INSERT INTO {} (id, {}, body) VALUES ({placeholders})", R::TABLE, names.join(", "));
    let mut params = vec![Value::from(r.id())];
    params.append(&mut values);
    params.push(Value::Text(to_body(r)?));
    Ok((sql, params))
}

fn update_statement<R: Record>(r: &R) -> Result<(String, Vec<Value>)> {
    let (names, mut values) = column_list(r);
    let sets: Vec<String> = names.iter().map(|n| format!("{n} = ?")).collect();
    let sql = format!("UPDATE {} SET {}, body = ? WHERE id = ?", R::TABLE, sets.join(", "));
    values.push(Value::Text(to_body(r)?));
    values.push(Value::from(r.id()));
    Ok((sql, values))
}

pub fn insert<R: Record>(c: &mut dyn Conn, r: &R) -> Result<()> {
    let (sql, params) = insert_statement(r)?;
    c.execute(&sql, &params)?;
    Ok(())
}

/// [`insert`] with [`Conn::execute_later`]: for a row whose insert cannot conflict with
/// anything the caller would handle (a failure still fails the caller's work).
pub fn insert_later<R: Record>(c: &mut dyn Conn, r: &R) -> Result<()> {
    let (sql, params) = insert_statement(r)?;
    c.execute_later(&sql, &params)
}

/// [`insert_later`], unless a row with the same id exists already (then nothing is
/// written): for rows whose id names what they are, such as a mail per event and recipient.
pub fn insert_new_later<R: Record>(c: &mut dyn Conn, r: &R) -> Result<()> {
    let (mut sql, params) = insert_statement(r)?;
    sql.push_str(" ON CONFLICT (id) DO NOTHING");
    c.execute_later(&sql, &params)
}

/// Rewrites the row of `r`; false when no such row exists.
pub fn update<R: Record>(c: &mut dyn Conn, r: &R) -> Result<bool> {
    let (sql, values) = update_statement(r)?;
    Ok(c.execute(&sql, &values)? > 0)
}

/// [`update`] with [`Conn::execute_later`], for a caller that does not look at whether the
/// row existed.
pub fn update_later<R: Record>(c: &mut dyn Conn, r: &R) -> Result<()> {
    let (sql, values) = update_statement(r)?;
    c.execute_later(&sql, &values)
}

pub fn get<R: Record>(c: &mut dyn Conn, id: &str) -> Result<Option<R>> {
    let sql = format!("SELECT body FROM {} WHERE id = ?", R::TABLE);
    match c.query_one(&sql, &[Value::from(id)])? {
        Some(row) => Ok(Some(from_body(&row.text(0)?)?)),
        None => Ok(None),
    }
}

pub fn delete<R: Record>(c: &mut dyn Conn, id: &str) -> Result<bool> {
    let sql = format!("DELETE FROM {} WHERE id = ?", R::TABLE);
    Ok(c.execute(&sql, &[Value::from(id)])? > 0)
}

/// Rows matching `where_sql` (may be empty), in `seq` order after `after_seq`, at most
/// `limit`. Returns `(seq, record)` pairs so callers can build keyset page tokens.
pub fn list<R: Record>(
    c: &mut dyn Conn,
    where_sql: &str,
    params: &[Value],
    after_seq: Option<i64>,
    limit: usize,
) -> Result<Vec<(i64, R)>> {
    let mut clauses = Vec::new();
    if !where_sql.trim().is_empty() {
        clauses.push(format!("({where_sql})"));
    }
    let mut all_params = params.to_vec();
    if let Some(after) = after_seq {
        clauses.push("seq > ?".into());
        all_params.push(Value::Int(after));
    }
    let where_clause = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    let sql = format!("SELECT seq, body FROM {} {where_clause} ORDER BY seq LIMIT {}", R::TABLE, limit);
    c.query(&sql, &all_params)?.into_iter().map(|row| decode_seq_body(&row)).collect()
}

/// Decodes a `(seq, body)` row.
pub fn decode_seq_body<R: Record>(row: &Row) -> Result<(i64, R)> {
    Ok((row.int(0)?, from_body(&row.text(1)?)?))
}

/// All rows matching `where_sql`, in `seq` order.
pub fn find_all<R: Record>(c: &mut dyn Conn, where_sql: &str, params: &[Value]) -> Result<Vec<R>> {
    Ok(list::<R>(c, where_sql, params, None, usize::MAX >> 1)?.into_iter().map(|(_, r)| r).collect())
}

pub fn find_one<R: Record>(c: &mut dyn Conn, where_sql: &str, params: &[Value]) -> Result<Option<R>> {
    Ok(list::<R>(c, where_sql, params, None, 1)?.into_iter().next().map(|(_, r)| r))
}

pub fn count(c: &mut dyn Conn, table: &str, where_sql: &str, params: &[Value]) -> Result<i64> {
    let where_clause = if where_sql.trim().is_empty() { String::new() } else { format!("WHERE {where_sql}") };
    let sql = format!("SELECT COUNT(*) FROM {table} {where_clause}");
    c.query_one(&sql, params)?.map(|r| r.int(0)).transpose().map(|n| n.unwrap_or(0))
}

pub fn meta_get(c: &mut dyn Conn, key: &str) -> Result<Option<String>> {
    c.query_one("SELECT value FROM meta WHERE key = ?", &[Value::from(key)])?.map(|r| r.text(0)).transpose()
}

pub fn meta_put(c: &mut dyn Conn, key: &str, value: &str) -> Result<()> {
    c.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[Value::from(key), Value::from(value)],
    )?;
    Ok(())
}

/// Most rows in one multi-row statement of [`insert_many`] / [`upsert_many`]. Rows go in
/// power-of-two chunks (64, 32, …, 1), so each table's statements come in a few shapes,
/// each prepared once.
const MANY_ROWS: usize = 64;

fn many<R: Record>(c: &mut dyn Conn, rows: &[R], upsert: bool) -> Result<()> {
    let mut rest = rows;
    while let Some(first) = rest.first() {
        let mut chunk = MANY_ROWS;
        while chunk > rest.len() {
            chunk /= 2;
        }
        let (now, later) = rest.split_at(chunk);
        let (names, _) = column_list(first);
        let tuple = format!("({})", vec!["?"; names.len() + 2].join(", "));
        let mut sql = format!(
            "INSERT INTO {} (id, {}, body) VALUES {}",
            R::TABLE,
            names.join(", "),
            vec![tuple.as_str(); chunk].join(", ")
        );
        if upsert {
            let sets: Vec<String> = names.iter().map(|n| format!("{n} = excluded.{n}")).collect();
            sql.push_str(&format!(" ON CONFLICT (id) DO UPDATE SET {}, body = excluded.body", sets.join(", ")));
        }
        let mut params = Vec::with_capacity(chunk * (names.len() + 2));
        for r in now {
            let (_, mut values) = column_list(r);
            params.push(Value::from(r.id()));
            params.append(&mut values);
            params.push(Value::Text(to_body(r)?));
        }
        c.execute(&sql, &params)?;
        rest = later;
    }
    Ok(())
}

/// Inserts `rows` in a few multi-row statements.
pub fn insert_many<R: Record>(c: &mut dyn Conn, rows: &[R]) -> Result<()> {
    many(c, rows, false)
}

/// Rewrites the existing rows of `rows` (matched by id) in a few multi-row statements.
pub fn upsert_many<R: Record>(c: &mut dyn Conn, rows: &[R]) -> Result<()> {
    many(c, rows, true)
}
