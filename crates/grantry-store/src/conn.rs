use grantry_domain::{Error, Result};

/// A SQL value in the portable subset Grantry uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Text(s.clone())
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(v as i64)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Value::Null)
    }
}
impl From<chrono::DateTime<chrono::Utc>> for Value {
    fn from(t: chrono::DateTime<chrono::Utc>) -> Self {
        Value::Int(t.timestamp_micros())
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub struct Row(pub Vec<Value>);

impl Row {
    pub fn text(&self, i: usize) -> Result<String> {
        match self.0.get(i) {
            Some(Value::Text(s)) => Ok(s.clone()),
            other => Err(Error::internal(format!("expected text in column {i}, found {other:?}"))),
        }
    }
    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            _ => self.text(i).map(Some),
        }
    }
    pub fn int(&self, i: usize) -> Result<i64> {
        match self.0.get(i) {
            Some(Value::Int(v)) => Ok(*v),
            other => Err(Error::internal(format!("expected integer in column {i}, found {other:?}"))),
        }
    }
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            _ => self.int(i).map(Some),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Executes portable SQL inside the caller's transaction.
pub trait Conn {
    fn backend(&self) -> Backend;
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64>;

    fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Runs a write whose outcome the caller does not need before its next statement. On
    /// PostgreSQL's writer it is sent together with the next statement that must be
    /// answered (or when the caller's work ends), sparing a round trip; elsewhere it runs at
    /// once. A failure still fails the caller's work: it is returned by that later
    /// statement, by [`Conn::sync`], or ends the write with that error. Use it only where
    /// an error would be passed up anyway (`?`), never where it is caught and handled.
    fn execute_later(&mut self, sql: &str, params: &[Value]) -> Result<()> {
        self.execute(sql, params).map(|_| ())
    }

    /// Sends whatever [`Conn::execute_later`] left waiting and returns the first failure
    /// among it.
    fn sync(&mut self) -> Result<()> {
        Ok(())
    }
}
