//! SCIM filters as SQL: the part of a filter the store can answer from indexed columns
//! (`eq`, `co`, `sw` and `pr` on `userName`, `externalId`, `displayName`, `emails.value`,
//! joined by `and`/`or`) becomes a [`Narrowing`], a condition every match meets. It may
//! admit more rows than match (comparisons are made case-insensitively, and a userName
//! is compared with both the stored one and the userPrincipalName), never fewer; the list
//! tests each admitted row against the whole filter.

use super::filter::{CORE_GROUP, CORE_USER, Filter, Op, Path};
use grantry_core::scim::Narrowing;
use grantry_store::Value as Sql;
use serde_json::Value;

/// The columns (as SQL expressions over `t` and `s`, lower-cased) that hold `path`'s value.
fn columns(path: &Path, groups: bool) -> Option<&'static [&'static str]> {
    let core = if groups { CORE_GROUP } else { CORE_USER };
    if path.filter.is_some() || path.extension.as_deref().is_some_and(|e| !e.eq_ignore_ascii_case(core)) {
        return None;
    }
    let attr = path.attr.to_ascii_lowercase();
    let sub = path.sub.as_deref().map(str::to_ascii_lowercase);
    Some(match (groups, attr.as_str(), sub.as_deref()) {
        (_, "externalid", None) => &["LOWER(s.external_id)"],
        (_, "displayname", None) => &["LOWER(t.display_name)"],
        (false, "username", None) => &["LOWER(s.user_name)", "t.upn_lower"],
        (false, "emails", Some("value")) => &["t.mail_lower"],
        _ => return None,
    })
}

fn escape_like(s: &str) -> String {
    s.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// The narrowing of `filter` for users (`groups` false) or groups; `None` admits every row.
pub fn narrowing(filter: &Filter, groups: bool) -> Option<Narrowing> {
    match filter {
        Filter::And(a, b) => match (narrowing(a, groups), narrowing(b, groups)) {
            (Some(x), Some(y)) => Some(join(x, "AND", y)),
            (Some(x), None) | (None, Some(x)) => Some(x),
            (None, None) => None,
        },
        Filter::Or(a, b) => Some(join(narrowing(a, groups)?, "OR", narrowing(b, groups)?)),
        Filter::Not(_) => None,
        Filter::Present(path) => {
            let cols = columns(path, groups)?;
            // userName and a user's displayName are always there.
            if cols.contains(&"t.upn_lower") || cols.contains(&"LOWER(t.display_name)") {
                return None;
            }
            Some(Narrowing {
                sql: cols.iter().map(|c| format!("{c} IS NOT NULL")).collect::<Vec<_>>().join(" OR "),
                params: vec![],
            })
        }
        Filter::Compare(path, op @ (Op::Eq | Op::Co | Op::Sw), Value::String(wanted)) => {
            let cols = columns(path, groups)?;
            let escaped = escape_like(wanted);
            let pattern = match op {
                Op::Eq => escaped,
                Op::Co => format!("%{escaped}%"),
                _ => format!("{escaped}%"),
            };
            Some(Narrowing {
                sql: cols.iter().map(|c| format!("{c} LIKE ? ESCAPE '\\'")).collect::<Vec<_>>().join(" OR "),
                params: cols.iter().map(|_| Sql::from(pattern.as_str())).collect(),
            })
        }
        Filter::Compare(..) => None,
    }
}

fn join(a: Narrowing, op: &str, b: Narrowing) -> Narrowing {
    let mut params = a.params;
    params.extend(b.params);
    Narrowing { sql: format!("({}) {op} ({})", a.sql, b.sql), params }
}

#[cfg(test)]
mod tests {
    use super::super::filter::parse;
    use super::*;

    fn sql(f: &str, groups: bool) -> Option<String> {
        narrowing(&parse(f).unwrap(), groups).map(|n| n.sql)
    }

    #[test]
    fn indexed_comparisons_become_sql_and_the_rest_admits_everything() {
        assert_eq!(sql(r#"externalId eq "a""#, false).unwrap(), "LOWER(s.external_id) LIKE ? ESCAPE '\\'");
        assert!(sql(r#"userName sw "ad""#, false).unwrap().contains("t.upn_lower LIKE"));
        assert!(sql(r#"emails.value co "@contoso""#, false).unwrap().contains("t.mail_lower"));
        assert!(sql(r#"displayName eq "x" and title pr"#, false).unwrap().contains("display_name"));
        assert_eq!(sql(r#"displayName eq "x" or title pr"#, false), None);
        assert_eq!(sql(r#"not (userName eq "x")"#, false), None);
        assert_eq!(sql(r#"userName pr"#, false), None);
        assert_eq!(sql(r#"userName eq "x""#, true), None, "groups have no userName");
        assert_eq!(sql(r#"emails[type eq "work"].value eq "x""#, false), None);
        let n = narrowing(&parse(r#"displayName co "50%_off""#).unwrap(), true).unwrap();
        assert_eq!(n.params, vec![Sql::from("%50\\%\\_off%")]);
    }
}
