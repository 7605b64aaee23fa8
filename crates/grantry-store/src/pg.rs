//! PostgreSQL connections: placeholder rewriting, value conversion and error mapping.
//!
//! The synchronous `postgres` client runs a small runtime of its own for each call, so it
//! is only ever used from threads that are not driving async tasks (the writer thread and
//! `spawn_blocking`).

use crate::conn::{Backend, Conn, Row, Value};
use grantry_domain::{Error, ErrorKind, Result};
use postgres::error::SqlState;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls, Statement};
use std::collections::HashMap;

/// Most prepared statements kept per connection; the cache is emptied when full (statements
/// built with a variable number of placeholders would otherwise grow it without bound).
const STATEMENT_CACHE: usize = 512;

/// A connection with its prepared statements, keyed by the portable SQL text.
pub(crate) struct PgClient {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl PgClient {
    pub(crate) fn connect(url: &str) -> Result<PgClient> {
        let client = Client::connect(url, NoTls).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                "serviceNotAvailable",
                format!("cannot connect to PostgreSQL at {}: {}", redact(url), with_causes(&e)),
            )
        })?;
        Ok(PgClient { client, statements: HashMap::new() })
    }

    /// Cancels the statement this connection is running, from another thread.
    pub(crate) fn cancel_token(&self) -> postgres::CancelToken {
        self.client.cancel_token()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Runs one or more statements without parameters (simple query protocol).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<()> {
        self.client.batch_execute(sql).map_err(map_err)
    }

    /// Runs a query without parameters and hands each row to `f` as it arrives, so a large
    /// result is never held in memory at once.
    pub(crate) fn for_each_row(&mut self, sql: &str, mut f: impl FnMut(Vec<Value>)) -> Result<()> {
        use postgres::fallible_iterator::FallibleIterator;
        let mut rows = self.client.query_raw(sql, std::iter::empty::<&(dyn ToSql + Sync)>()).map_err(map_err)?;
        while let Some(row) = rows.next().map_err(map_err)? {
            f((0..row.len()).map(|i| column_value(&row, i)).collect::<Result<Vec<_>>>()?);
        }
        Ok(())
    }

    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let statement = self.client.prepare(&rewrite_placeholders(sql)).map_err(map_err)?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

/// An error's message followed by its causes ("error connecting to server: Connection
/// refused …").
pub(crate) fn with_causes(e: &postgres::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Drops `clients` on a thread of their own: closing a synchronous client blocks, which is
/// not allowed on a thread that drives async tasks.
pub(crate) fn close_elsewhere(clients: Vec<PgClient>) {
    if clients.is_empty() {
        return;
    }
    let _ = std::thread::Builder::new().name("grantry-pg-close".into()).spawn(move || drop(clients));
}

/// Hides the password of a connection URL in messages.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.rsplit_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Rewrites `?` placeholders as `$1`, `$2`, … outside string literals, quoted identifiers
/// and comments.
pub(crate) fn rewrite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut chars = sql.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\'' | '"' => {
                out.push(ch);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == ch {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(ch);
                for inner in chars.by_ref() {
                    out.push(inner);
                    if inner == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(ch),
        }
    }
    out
}

pub(crate) fn map_err(e: postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if code.code().starts_with("23") {
            return crate::constraint::conflict(db.constraint().map(str::to_string), db.table(), db.message());
        }
        if *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::LOCK_NOT_AVAILABLE
            || *code == SqlState::TOO_MANY_CONNECTIONS
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
        {
            return Error::new(
                ErrorKind::Unavailable,
                "serviceNotAvailable",
                "The database is busy; retry the request.",
            );
        }
        return Error::internal(format!("database error: {} ({})", db.message(), code.code()));
    }
    if e.is_closed() {
        return Error::new(
            ErrorKind::Unavailable,
            "serviceNotAvailable",
            "The database connection was lost; retry the request.",
        );
    }
    Error::internal(format!("database error: {}", with_causes(&e)))
}

/// A bound parameter: converted to whatever type the server expects for its position.
#[derive(Debug)]
pub(crate) struct Param<'a>(&'a Value);

/// Parameters to bind, converted on the way to the types the statement expects.
pub(crate) fn bind(values: &[Value]) -> Vec<Param<'_>> {
    values.iter().map(Param).collect()
}

fn type_error(value: &Value, ty: &Type) -> Box<dyn std::error::Error + Sync + Send> {
    format!("cannot bind {value:?} as {ty}").into()
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let int = |v: &Value| -> std::result::Result<i64, Box<dyn std::error::Error + Sync + Send>> {
            match v {
                Value::Int(i) => Ok(*i),
                Value::Real(f) if f.fract() == 0.0 => Ok(*f as i64),
                Value::Text(s) => s.trim().parse::<i64>().map_err(|_| type_error(v, ty)),
                _ => Err(type_error(v, ty)),
            }
        };
        let value = self.0;
        if matches!(value, Value::Null) {
            return Ok(IsNull::Yes);
        }
        match *ty {
            Type::INT8 => int(value)?.to_sql(ty, out),
            Type::INT4 => i32::try_from(int(value)?).map_err(|_| type_error(value, ty))?.to_sql(ty, out),
            Type::INT2 => i16::try_from(int(value)?).map_err(|_| type_error(value, ty))?.to_sql(ty, out),
            Type::BOOL => (int(value)? != 0).to_sql(ty, out),
            Type::FLOAT8 | Type::FLOAT4 => {
                let f = match value {
                    Value::Real(f) => *f,
                    Value::Int(i) => *i as f64,
                    Value::Text(s) => s.trim().parse::<f64>().map_err(|_| type_error(value, ty))?,
                    Value::Null => return Ok(IsNull::Yes),
                };
                if *ty == Type::FLOAT4 { (f as f32).to_sql(ty, out) } else { f.to_sql(ty, out) }
            }
            _ => {
                let text = match value {
                    Value::Text(s) => s.clone(),
                    Value::Int(i) => i.to_string(),
                    Value::Real(f) => f.to_string(),
                    Value::Null => return Ok(IsNull::Yes),
                };
                <&str as ToSql>::to_sql(&text.as_str(), ty, out)
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A NUMERIC (e.g. the result of `SUM` over BIGINT or a literal like `2.5`): an integer
/// when it has no fractional digits and fits, else a float.
struct Numeric(Value);

impl<'a> postgres::types::FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let word = |i: usize| -> std::result::Result<i16, Box<dyn std::error::Error + Sync + Send>> {
            raw.get(i * 2..i * 2 + 2)
                .map(|b| i16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "truncated numeric".into())
        };
        let (ndigits, weight, sign, dscale) = (word(0)?, word(1)?, word(2)? as u16, word(3)?);
        if sign == 0xC000 {
            return Ok(Numeric(Value::Real(f64::NAN)));
        }
        let negative = sign == 0x4000;
        let mut float = 0f64;
        let mut int: Option<i128> = Some(0);
        for i in 0..ndigits.max(0) as usize {
            let digit = word(4 + i)?;
            let exponent = i32::from(weight) - i as i32;
            float += f64::from(digit) * 10_000f64.powi(exponent);
            int = match (int, exponent >= 0) {
                (Some(acc), true) => u32::try_from(exponent)
                    .ok()
                    .and_then(|e| 10_000i128.checked_pow(e))
                    .and_then(|p| p.checked_mul(i128::from(digit)))
                    .and_then(|v| acc.checked_add(v)),
                (acc, false) if digit == 0 => acc,
                _ => None,
            };
        }
        let int = int.map(|v| if negative { -v } else { v }).and_then(|v| i64::try_from(v).ok());
        Ok(Numeric(match int {
            Some(v) if dscale == 0 => Value::Int(v),
            _ => Value::Real(if negative { -float } else { float }),
        }))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

pub(crate) fn column_value(row: &postgres::Row, i: usize) -> Result<Value> {
    let ty = row.columns()[i].type_().clone();
    let bad = |e: postgres::Error| Error::internal(format!("cannot read column {i} ({ty}): {e}"));
    Ok(match ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i).map_err(bad)?.map(Value::Int),
        Type::INT4 => row.try_get::<_, Option<i32>>(i).map_err(bad)?.map(|v| Value::Int(v.into())),
        Type::INT2 => row.try_get::<_, Option<i16>>(i).map_err(bad)?.map(|v| Value::Int(v.into())),
        Type::BOOL => row.try_get::<_, Option<bool>>(i).map_err(bad)?.map(|v| Value::Int(v.into())),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(i).map_err(bad)?.map(Value::Real),
        Type::FLOAT4 => row.try_get::<_, Option<f32>>(i).map_err(bad)?.map(|v| Value::Real(v.into())),
        Type::NUMERIC => row.try_get::<_, Option<Numeric>>(i).map_err(bad)?.map(|n| n.0),
        _ => row.try_get::<_, Option<String>>(i).map_err(bad)?.map(Value::Text),
    }
    .unwrap_or(Value::Null))
}

/// A [`Conn`] over a PostgreSQL connection; the caller manages the transaction.
pub(crate) struct PgConn<'a>(pub &'a mut PgClient);

impl Conn for PgConn<'_> {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let statement = self.0.statement(sql)?;
        let bound = bind(params);
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = self.0.client.query(&statement, &refs).map_err(map_err)?;
        rows.iter()
            .map(|row| (0..row.len()).map(|i| column_value(row, i)).collect::<Result<Vec<_>>>().map(Row))
            .collect()
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let statement = self.0.statement(sql)?;
        let bound = bind(params);
        let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        self.0.client.execute(&statement, &refs).map_err(map_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_literals() {
        assert_eq!(
            rewrite_placeholders("SELECT a FROM t WHERE a = ? AND b = ?"),
            "SELECT a FROM t WHERE a = $1 AND b = $2"
        );
        assert_eq!(
            rewrite_placeholders("SELECT '?' , \"x?\" FROM t WHERE a LIKE ? ESCAPE '\\' AND b = ?"),
            "SELECT '?' , \"x?\" FROM t WHERE a LIKE $1 ESCAPE '\\' AND b = $2"
        );
        assert_eq!(
            rewrite_placeholders("SELECT 'it''s ?' WHERE x = ? -- why?\n AND y = ?"),
            "SELECT 'it''s ?' WHERE x = $1 -- why?\n AND y = $2"
        );
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
