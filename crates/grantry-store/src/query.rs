//! Translation of OData `$filter` and `$orderby` into portable SQL.
//!
//! Each entity set declares a field registry: the property paths clients may filter and sort
//! on (both dialects' names, resolved case-insensitively) and the SQL expression behind each.
//! Only declared fields are filterable, every literal becomes a bound parameter, and filters
//! run in the database against indexed columns — nothing is evaluated by loading tables.

use crate::conn::Value;
use grantry_domain::{Error, Result};
use grantry_odata::ast::{BinaryOp, Expr, Function, Literal, OrderBy};

/// How values of a field are compared.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Compared as written.
    Text,
    /// Compared ignoring case (display names, user principal names, emails).
    TextIgnoreCase,
    /// An id: GUID text, compared in lower case.
    Id,
    /// An enumeration stored in its v1.0 spelling; `normalize` maps any client spelling to
    /// it, or `None` when the value is not a member.
    Enum {
        normalize: fn(&str) -> Option<&'static str>,
        allowed: fn() -> String,
    },
    /// Stored as 0/1.
    Bool,
    /// Microseconds since the epoch; literals are DateTimeOffset values.
    Time,
    Int,
}

/// One filterable property.
#[derive(Clone, Copy)]
pub struct Field {
    /// Property paths that name this field (`state`, `requestState`, `accessPackage/id`).
    pub names: &'static [&'static str],
    /// SQL expression: a column of the set's table, or a scalar subquery.
    pub sql: &'static str,
    pub kind: Kind,
}

/// Resolves `path` among `fields`, case-insensitively.
pub fn resolve<'f>(fields: &'f [Field], path: &[String]) -> Option<&'f Field> {
    let joined = path.join("/");
    fields.iter().find(|f| f.names.iter().any(|n| n.eq_ignore_ascii_case(&joined)))
}

fn supported(fields: &[Field]) -> String {
    fields.iter().filter_map(|f| f.names.first().copied()).collect::<Vec<_>>().join(", ")
}

fn filter_error(message: impl Into<String>) -> Error {
    Error::bad_request("InvalidFilter", message).with_target("$filter")
}

/// Converts a parser error into Graph's 400.
pub fn parse_error(e: grantry_odata::ParseError) -> Error {
    Error::bad_request(if e.option == "$filter" { "InvalidFilter" } else { "BadRequest" }, e.to_string())
        .with_target(e.option)
}

/// A SQL condition with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Value>,
}

/// Translates a `$filter` expression into a SQL condition over `fields`.
pub fn translate_filter(expr: &Expr, fields: &[Field]) -> Result<Sql> {
    let mut params = Vec::new();
    let text = condition(expr, fields, &mut params)?;
    Ok(Sql { text, params })
}

fn condition(expr: &Expr, fields: &[Field], params: &mut Vec<Value>) -> Result<String> {
    match expr {
        Expr::Binary { op: BinaryOp::And, left, right } => {
            Ok(format!("({} AND {})", condition(left, fields, params)?, condition(right, fields, params)?))
        }
        Expr::Binary { op: BinaryOp::Or, left, right } => {
            Ok(format!("({} OR {})", condition(left, fields, params)?, condition(right, fields, params)?))
        }
        Expr::Not(inner) => Ok(format!("(NOT {})", condition(inner, fields, params)?)),
        Expr::Binary { op, left, right } => comparison(*op, left, right, fields, params),
        Expr::In { operand, values } => {
            let (sql, field, _) = operand_sql(operand, fields)?;
            let mut placeholders = Vec::with_capacity(values.len());
            for v in values {
                let Expr::Literal(lit) = v else {
                    return Err(filter_error(
                        "The values of 'in' must be literals, e.g. state in ('delivered','expired').",
                    ));
                };
                params.push(literal_value(lit, field)?);
                placeholders.push("?");
            }
            Ok(format!("{sql} IN ({})", placeholders.join(", ")))
        }
        Expr::Call { function, args }
            if matches!(function, Function::Contains | Function::StartsWith | Function::EndsWith) =>
        {
            let (sql, field, _) = operand_sql(&args[0], fields)?;
            if !matches!(field.kind, Kind::Text | Kind::TextIgnoreCase | Kind::Id | Kind::Enum { .. }) {
                return Err(filter_error(format!("{}() applies to text properties only.", function.name())));
            }
            let Some(Expr::Literal(Literal::String(needle))) = args.get(1) else {
                return Err(filter_error(format!(
                    "The second argument of {}() must be a string literal.",
                    function.name()
                )));
            };
            let escaped = needle.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let pattern = match function {
                Function::Contains => format!("%{escaped}%"),
                Function::StartsWith => format!("{escaped}%"),
                _ => format!("%{escaped}"),
            };
            params.push(Value::Text(pattern));
            // Matching ignores case, as Graph's directory does for these functions.
            Ok(format!("LOWER({sql}) LIKE ? ESCAPE '\\'"))
        }
        Expr::Call { function, .. } => Err(filter_error(format!(
            "{}() cannot be used as a condition; supported conditions are comparisons (eq, ne, gt, ge, lt, le), in, contains, startswith and endswith.",
            function.name()
        ))),
        Expr::Lambda { path, .. } => {
            Err(filter_error(format!("any/all over '{}' is not supported on this collection.", path.join("/"))))
        }
        Expr::Path(path) => match resolve(fields, path) {
            Some(f @ Field { kind: Kind::Bool, .. }) => Ok(format!("{} = 1", f.sql)),
            _ => Err(filter_error(format!(
                "'{}' is not a condition; compare it with a value, e.g. {} eq '…'.",
                path.join("/"),
                path.join("/")
            ))),
        },
        Expr::Literal(Literal::Boolean(b)) => Ok(if *b { "1 = 1".into() } else { "1 = 0".into() }),
        Expr::Literal(_) => Err(filter_error("A literal alone is not a condition.")),
    }
}

/// The SQL for a property operand, possibly wrapped in tolower/toupper/trim.
fn operand_sql<'f>(expr: &Expr, fields: &'f [Field]) -> Result<(String, &'f Field, bool)> {
    match expr {
        Expr::Path(path) => {
            let field = resolve(fields, path).ok_or_else(|| {
                filter_error(format!(
                    "'{}' cannot be filtered on here; filterable properties are: {}.",
                    path.join("/"),
                    supported(fields)
                ))
            })?;
            Ok((field.sql.to_string(), field, false))
        }
        Expr::Call { function: f @ (Function::ToLower | Function::ToUpper | Function::Trim), args } => {
            let (inner, field, _) = operand_sql(&args[0], fields)?;
            let wrapped = match f {
                Function::ToLower => format!("LOWER({inner})"),
                Function::ToUpper => format!("UPPER({inner})"),
                _ => format!("TRIM({inner})"),
            };
            Ok((wrapped, field, true))
        }
        Expr::Call { function, .. } => {
            Err(filter_error(format!("{}() is not supported in this position.", function.name())))
        }
        _ => Err(filter_error("The left side of a comparison must be a property, e.g. displayName eq 'x'.")),
    }
}

fn comparison(op: BinaryOp, left: &Expr, right: &Expr, fields: &[Field], params: &mut Vec<Value>) -> Result<String> {
    // Accept `'x' eq prop` as well as `prop eq 'x'`.
    let (prop, lit, op) = match (left, right) {
        (_, Expr::Literal(l)) => (left, l, op),
        (Expr::Literal(l), _) => (right, l, flip(op)),
        _ => return Err(filter_error("Comparisons must be between a property and a literal value.")),
    };
    let (sql, field, transformed) = operand_sql(prop, fields)?;
    let sql_op = match op {
        BinaryOp::Eq => "=",
        BinaryOp::Ne => "<>",
        BinaryOp::Gt => ">",
        BinaryOp::Ge => ">=",
        BinaryOp::Lt => "<",
        BinaryOp::Le => "<=",
        BinaryOp::And | BinaryOp::Or => unreachable_logical()?,
    };
    if matches!(lit, Literal::Null) {
        return match op {
            BinaryOp::Eq => Ok(format!("{sql} IS NULL")),
            BinaryOp::Ne => Ok(format!("{sql} IS NOT NULL")),
            _ => Err(filter_error("null can only be compared with eq or ne.")),
        };
    }
    let value = literal_value(lit, field)?;
    match (field.kind, transformed) {
        (Kind::TextIgnoreCase, false) => {
            params.push(lower(value));
            Ok(format!("LOWER({sql}) {sql_op} ?"))
        }
        _ => {
            params.push(value);
            Ok(format!("{sql} {sql_op} ?"))
        }
    }
}

fn unreachable_logical() -> Result<&'static str> {
    Err(filter_error("and/or must join conditions."))
}

fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Ge => BinaryOp::Le,
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Le => BinaryOp::Ge,
        other => other,
    }
}

fn lower(v: Value) -> Value {
    match v {
        Value::Text(s) => Value::Text(s.to_lowercase()),
        other => other,
    }
}

/// The bound value of `lit` for a comparison with `field`.
fn literal_value(lit: &Literal, field: &Field) -> Result<Value> {
    let name = field.names.first().copied().unwrap_or("property");
    let mismatch = |expected: &str| filter_error(format!("'{name}' is compared with {expected}; got {lit}."));
    match field.kind {
        Kind::Text | Kind::TextIgnoreCase => match lit {
            Literal::String(s) | Literal::Guid(s) => Ok(Value::Text(s.clone())),
            _ => Err(mismatch("a string such as 'x'")),
        },
        Kind::Id => match lit {
            Literal::String(s) | Literal::Guid(s) => Ok(Value::Text(s.trim().to_ascii_lowercase())),
            _ => Err(mismatch("an id in quotes")),
        },
        Kind::Enum { normalize, allowed } => {
            let text = match lit {
                Literal::String(s) => s.as_str(),
                Literal::Enum { value, .. } => value.as_str(),
                _ => return Err(mismatch("a quoted value")),
            };
            normalize(text).map(|v| Value::Text(v.to_string())).ok_or_else(|| {
                filter_error(format!("'{text}' is not a value of '{name}'; allowed values: {}.", allowed()))
            })
        }
        Kind::Bool => match lit {
            Literal::Boolean(b) => Ok(Value::Int(*b as i64)),
            _ => Err(mismatch("true or false")),
        },
        Kind::Int => match lit {
            Literal::Integer(i) => Ok(Value::Int(*i)),
            _ => Err(mismatch("a whole number")),
        },
        Kind::Time => {
            let text = match lit {
                Literal::DateTimeOffset(s) | Literal::String(s) => s.clone(),
                Literal::Date(d) => format!("{d}T00:00:00Z"),
                _ => return Err(mismatch("a date-time such as 2024-05-01T00:00:00Z")),
            };
            chrono::DateTime::parse_from_rfc3339(&text)
                .map(|t| Value::Int(t.timestamp_micros()))
                .map_err(|_| mismatch("a date-time such as 2024-05-01T00:00:00Z"))
        }
    }
}

/// Translates `$orderby` into SQL sort keys over `fields`. `seq` is appended by the caller
/// as the final tie-breaker so the order is total.
pub fn translate_orderby(items: &[OrderBy], fields: &[Field]) -> Result<Vec<(String, bool)>> {
    items
        .iter()
        .map(|item| {
            let field = resolve(fields, &item.path).ok_or_else(|| {
                Error::bad_request(
                    "BadRequest",
                    format!(
                        "'{}' cannot be sorted on here; sortable properties are: {}.",
                        item.path.join("/"),
                        supported(fields)
                    ),
                )
                .with_target("$orderby")
            })?;
            Ok((sort_key(field), item.descending))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use grantry_domain::enums::AssignmentState;

    const FIELDS: &[Field] = &[
        Field { names: &["id"], sql: "id", kind: Kind::Id },
        Field {
            names: &["state", "assignmentState"],
            sql: "state",
            kind: Kind::Enum {
                normalize: |s| AssignmentState::parse(s).map(|v| v.v1()),
                allowed: AssignmentState::allowed,
            },
        },
        Field { names: &["accessPackage/id", "accessPackageId"], sql: "access_package_id", kind: Kind::Id },
        Field {
            names: &["target/objectId"],
            sql: "(SELECT object_id FROM subjects WHERE subjects.id = assignments.target_subject_id)",
            kind: Kind::Id,
        },
        Field { names: &["displayName"], sql: "display_name", kind: Kind::TextIgnoreCase },
        Field { names: &["createdDateTime"], sql: "created_us", kind: Kind::Time },
        Field { names: &["isHidden"], sql: "is_hidden", kind: Kind::Bool },
    ];

    fn sql(filter: &str) -> Result<Sql> {
        translate_filter(&grantry_odata::parse_filter(filter).map_err(parse_error)?, FIELDS)
    }

    #[test]
    fn documented_filters_translate() {
        let s = sql("accessPackage/id eq 'A914B616-E04E-476B-AA37-91038F0B165B' and state eq 'Delivered'").unwrap();
        assert_eq!(s.text, "(access_package_id = ? AND state = ?)");
        assert_eq!(s.params, vec![Value::from("a914b616-e04e-476b-aa37-91038f0b165b"), Value::from("delivered")]);

        let s = sql("target/objectid eq '7deff43e-1f17-44ef-9e5f-d516b0ba11d4'").unwrap();
        assert!(s.text.starts_with("(SELECT object_id FROM subjects"));

        let s = sql("contains(tolower(displayName),'Staff')").unwrap();
        assert_eq!(s.text, "LOWER(LOWER(display_name)) LIKE ? ESCAPE '\\'");
        assert_eq!(s.params, vec![Value::from("%staff%")]);

        let s = sql("displayName eq 'Sales' or not (isHidden)").unwrap();
        assert_eq!(s.text, "(LOWER(display_name) = ? OR (NOT is_hidden = 1))");

        let s = sql("createdDateTime ge 2024-01-01T00:00:00Z and state in ('delivered','Expired')").unwrap();
        assert_eq!(s.text, "(created_us >= ? AND state IN (?, ?))");
        assert_eq!(s.params[2], Value::from("expired"));
    }

    #[test]
    fn refusals_name_what_to_fix() {
        let e = sql("color eq 'red'").unwrap_err();
        assert_eq!(e.code, "InvalidFilter");
        assert!(e.message.contains("filterable properties are"), "{}", e.message);
        let e = sql("state eq 'someNewState'").unwrap_err();
        assert!(e.message.contains("allowed values"), "{}", e.message);
        let e = sql("isHidden eq 'yes'").unwrap_err();
        assert!(e.message.contains("true or false"));
        let e = sql("contains(displayName,'50%_off')").unwrap();
        assert_eq!(e.params, vec![Value::from("%50\\%\\_off%")]);
        assert!(sql("state eq").is_err());
    }
}

/// Where a page continues: after a `seq` (default order), or after a row's sort-key values
/// and `seq` (with `$orderby`).
#[derive(Debug, Clone, PartialEq)]
pub enum Cursor {
    Seq(i64),
    Keys(Vec<Value>, i64),
}

/// A list query: conditions (the caller's scope and the client's `$filter`, all ANDed),
/// sort keys and a page.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub conditions: Vec<Sql>,
    /// (SQL expression, descending); `seq` is always the final tie-breaker. Expressions
    /// must never be NULL ([`translate_orderby`] makes them so).
    pub order: Vec<(String, bool)>,
    pub after: Option<Cursor>,
    pub limit: usize,
}

impl ListQuery {
    pub fn new(limit: usize) -> Self {
        ListQuery { limit, ..Default::default() }
    }

    pub fn and(mut self, text: impl Into<String>, params: Vec<Value>) -> Self {
        self.conditions.push(Sql { text: text.into(), params });
        self
    }

    pub fn and_sql(mut self, sql: Option<Sql>) -> Self {
        if let Some(s) = sql {
            self.conditions.push(s);
        }
        self
    }

    /// The WHERE clause (without keyword; "1 = 1" when empty) and its parameters.
    pub fn where_clause(&self) -> (String, Vec<Value>) {
        if self.conditions.is_empty() {
            return ("1 = 1".into(), Vec::new());
        }
        let text = self.conditions.iter().map(|c| format!("({})", c.text)).collect::<Vec<_>>().join(" AND ");
        let params = self.conditions.iter().flat_map(|c| c.params.iter().cloned()).collect();
        (text, params)
    }

    /// The keyset condition that continues after `cursor`.
    fn after_condition(&self) -> Option<Sql> {
        match &self.after {
            None => None,
            Some(Cursor::Seq(seq)) => Some(Sql { text: "seq > ?".into(), params: vec![Value::Int(*seq)] }),
            Some(Cursor::Keys(values, seq)) => {
                if values.len() != self.order.len() {
                    return Some(Sql { text: "1 = 0".into(), params: Vec::new() });
                }
                // (k1 > v1) OR (k1 = v1 AND k2 > v2) OR … OR (all equal AND seq > s), with
                // each comparison's direction following its key's order.
                let mut alternatives = Vec::new();
                let mut params = Vec::new();
                for i in 0..=self.order.len() {
                    let mut terms = Vec::new();
                    for (j, (key, _)) in self.order.iter().enumerate().take(i) {
                        terms.push(format!("{key} = ?"));
                        params.push(values[j].clone());
                    }
                    if i < self.order.len() {
                        let (key, desc) = &self.order[i];
                        terms.push(format!("{key} {} ?", if *desc { "<" } else { ">" }));
                        params.push(values[i].clone());
                    } else {
                        terms.push("seq > ?".into());
                        params.push(Value::Int(*seq));
                    }
                    alternatives.push(format!("({})", terms.join(" AND ")));
                }
                Some(Sql { text: alternatives.join(" OR "), params })
            }
        }
    }
}

/// The sort-key expression of `field`. Sort keys never hold NULL (which sorts differently
/// per database, and cannot be compared in a keyset condition): a missing value reads as
/// a value of the column's own type that sorts after every real one for numbers and
/// before every real one for text ('').
fn sort_key(field: &Field) -> String {
    match field.kind {
        Kind::TextIgnoreCase => format!("COALESCE(LOWER({}), '')", field.sql),
        Kind::Text | Kind::Id | Kind::Enum { .. } => format!("COALESCE({}, '')", field.sql),
        Kind::Bool | Kind::Time | Kind::Int => format!("COALESCE({}, {})", field.sql, i64::MAX),
    }
}

/// Runs `query` against `table`, returning `(body, cursor-after-this-row)` for up to `limit + 1`
/// rows (the extra row tells the caller there is a next page).
pub fn run_list(c: &mut dyn crate::Conn, table: &str, query: &ListQuery) -> Result<Vec<(String, Cursor)>> {
    let (mut where_text, mut params) = query.where_clause();
    if let Some(after) = query.after_condition() {
        where_text = format!("({where_text}) AND ({})", after.text);
        params.extend(after.params);
    }
    let key_columns: String = query.order.iter().map(|(k, _)| format!(", {k}")).collect();
    let order_by: String =
        query.order.iter().map(|(k, desc)| format!("{k} {}, ", if *desc { "DESC" } else { "ASC" })).collect();
    let sql = format!(
        "SELECT seq, body{key_columns} FROM {table} WHERE {where_text} ORDER BY {order_by}seq LIMIT {}",
        query.limit + 1
    );
    let rows = c.query(&sql, &params)?;
    rows.into_iter()
        .map(|row| {
            let seq = row.int(0)?;
            let body = row.text(1)?;
            let cursor = if query.order.is_empty() { Cursor::Seq(seq) } else { Cursor::Keys(row.0[2..].to_vec(), seq) };
            Ok((body, cursor))
        })
        .collect()
}

/// Counts the rows `query` selects (ignoring its page).
pub fn run_count(c: &mut dyn crate::Conn, table: &str, query: &ListQuery) -> Result<i64> {
    let (where_text, params) = query.where_clause();
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE {where_text}");
    Ok(c.query_one(&sql, &params)?.map(|r| r.int(0)).transpose()?.unwrap_or(0))
}
