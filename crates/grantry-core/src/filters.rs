//! The `$filter` forms documented for requests and assignments, translated to SQL on the
//! tables' columns: `accessPackage/id eq`, `state eq` / `requestState eq` /
//! `assignmentState eq`, `target/objectId eq`, `assignmentPolicy/id eq`, `requestType eq`,
//! `createdDateTime` comparisons, `id eq`, joined with `and`. Anything else is refused with
//! a message that lists what is supported.

use chrono::DateTime;
use grantry_domain::enums::{AssignmentState, RequestState, RequestType};
use grantry_domain::{Error, Result, ids};
use grantry_odata::Expr;
use grantry_odata::ast::{BinaryOp, Literal};
use grantry_store::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Requests,
    Assignments,
}

const SUPPORTED_REQUESTS: &str = "accessPackage/id eq, state eq (or requestState eq), requestType eq, target/objectId eq, assignmentPolicy/id eq, createdDateTime ge/gt/le/lt, id eq, joined with 'and'";
const SUPPORTED_ASSIGNMENTS: &str = "accessPackage/id eq, state eq (or assignmentState eq), target/objectId eq, assignmentPolicy/id eq, createdDateTime ge/gt/le/lt, id eq, joined with 'and'";

fn unsupported(table: Table, what: &str) -> Error {
    let supported = if table == Table::Requests { SUPPORTED_REQUESTS } else { SUPPORTED_ASSIGNMENTS };
    Error::bad_request("BadRequest", format!("$filter: {what} is not supported here; supported forms: {supported}."))
        .with_target("$filter")
}

/// `a AND b` of two optional clauses.
pub fn join(a: &str, b: &str) -> String {
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, true) => String::new(),
        (true, false) => b.to_string(),
        (false, true) => a.to_string(),
        (false, false) => format!("({a}) AND ({b})"),
    }
}

fn text(l: &Literal) -> Option<String> {
    match l {
        Literal::String(s) | Literal::Guid(s) | Literal::DateTimeOffset(s) | Literal::Date(s) => Some(s.clone()),
        Literal::Enum { value, .. } => Some(value.clone()),
        _ => None,
    }
}

pub fn translate(expr: &Expr, table: Table) -> Result<(String, Vec<Value>)> {
    match expr {
        Expr::Binary { op: BinaryOp::And, left, right } => {
            let (l, mut lp) = translate(left, table)?;
            let (r, rp) = translate(right, table)?;
            lp.extend(rp);
            Ok((format!("({l}) AND ({r})"), lp))
        }
        Expr::Binary { op, left, right } => {
            let (path, lit) = match (left.as_ref(), right.as_ref()) {
                (Expr::Path(p), Expr::Literal(l)) => (p, l),
                _ => return Err(unsupported(table, &format!("'{expr}'"))),
            };
            let name = path.join("/").to_ascii_lowercase();
            let value = text(lit).ok_or_else(|| unsupported(table, &format!("the value in '{expr}'")))?;
            let sql_op = match op {
                BinaryOp::Eq => "=",
                BinaryOp::Ge => ">=",
                BinaryOp::Gt => ">",
                BinaryOp::Le => "<=",
                BinaryOp::Lt => "<",
                _ => return Err(unsupported(table, &format!("the operator in '{expr}'"))),
            };
            let eq_only = |sql: &str, v: Value| -> Result<(String, Vec<Value>)> {
                if *op != BinaryOp::Eq {
                    return Err(unsupported(table, &format!("'{expr}' (only 'eq' works on {name})")));
                }
                Ok((sql.to_string(), vec![v]))
            };
            match name.as_str() {
                "id" => eq_only("id = ?", Value::from(ids::normalize(&value))),
                "accesspackage/id" | "accesspackageid" => {
                    eq_only("access_package_id = ?", Value::from(ids::normalize(&value)))
                }
                "assignmentpolicy/id" | "accesspackageassignmentpolicy/id" | "assignmentpolicyid" => {
                    eq_only("policy_id = ?", Value::from(ids::normalize(&value)))
                }
                "target/objectid" => eq_only(
                    "target_subject_id IN (SELECT id FROM subjects WHERE object_id = ?)",
                    Value::from(ids::normalize(&value)),
                ),
                "target/id" | "targetid" => eq_only("target_subject_id = ?", Value::from(ids::normalize(&value))),
                "state" | "requeststate" if table == Table::Requests => {
                    let s = RequestState::parse(&value).ok_or_else(|| {
                        Error::bad_request(
                            "BadRequest",
                            format!(
                                "$filter: '{value}' is not a request state; use one of: {}.",
                                RequestState::allowed()
                            ),
                        )
                        .with_target("$filter")
                    })?;
                    eq_only("state = ?", Value::from(s.v1()))
                }
                "state" | "assignmentstate" if table == Table::Assignments => {
                    let s = AssignmentState::parse(&value).ok_or_else(|| {
                        Error::bad_request(
                            "BadRequest",
                            format!(
                                "$filter: '{value}' is not an assignment state; use one of: {}.",
                                AssignmentState::allowed()
                            ),
                        )
                        .with_target("$filter")
                    })?;
                    eq_only("state = ?", Value::from(s.v1()))
                }
                "requesttype" if table == Table::Requests => {
                    let t = RequestType::parse(&value).ok_or_else(|| {
                        Error::bad_request(
                            "BadRequest",
                            format!(
                                "$filter: '{value}' is not a request type; use one of: {}.",
                                RequestType::allowed()
                            ),
                        )
                        .with_target("$filter")
                    })?;
                    eq_only("request_type = ?", Value::from(t.v1()))
                }
                "createddatetime" => {
                    let t = DateTime::parse_from_rfc3339(&value)
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .or_else(|_| {
                            chrono::NaiveDate::parse_from_str(&value, "%Y-%m-%d")
                                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
                        })
                        .map_err(|_| unsupported(table, &format!("the date '{value}'")))?;
                    Ok((format!("created_us {sql_op} ?"), vec![Value::from(t)]))
                }
                _ => Err(unsupported(table, &format!("the property '{}'", path.join("/")))),
            }
        }
        _ => Err(unsupported(table, &format!("'{expr}'"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_documented_forms() {
        let e =
            grantry_odata::parse_filter("accessPackage/id eq 'A1' and state eq 'Delivered' and target/objectid eq 'U'")
                .unwrap();
        let (sql, params) = translate(&e, Table::Assignments).unwrap();
        assert!(sql.contains("access_package_id = ?") && sql.contains("state = ?") && sql.contains("subjects"));
        assert_eq!(params[0], Value::from("a1"));
        assert_eq!(params[1], Value::from("delivered"));
        let e = grantry_odata::parse_filter("requestState eq 'PendingApproval'").unwrap();
        assert_eq!(translate(&e, Table::Requests).unwrap().1[0], Value::from("pendingApproval"));
        let e = grantry_odata::parse_filter("startswith(displayName,'a')").unwrap();
        assert_eq!(translate(&e, Table::Requests).unwrap_err().code, "BadRequest");
    }
}
