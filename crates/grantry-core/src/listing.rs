//! Collections with the OData query options: `$filter`, `$orderby`, `$search`, `$top`,
//! `$skiptoken`, `$count`. Each entity set passes its field registry and the conditions
//! that scope the caller's view; everything runs in the database.

use grantry_domain::{Error, Result};
use grantry_odata::ast::{Expr, OrderBy};
use grantry_store::query::{self, Cursor, Field, Kind, ListQuery, Sql};
use grantry_store::records::Record;
use grantry_store::{Conn, Value, repo};

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub filter: Option<Expr>,
    pub orderby: Vec<OrderBy>,
    pub search: Option<String>,
    pub after: Option<Cursor>,
    pub size: usize,
    pub count: bool,
}

#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub items: Vec<T>,
    /// Where the next page starts, when there is one.
    pub next: Option<Cursor>,
    /// `@odata.count`, when asked for.
    pub count: Option<i64>,
}

impl<T> Listed<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listed<U> {
        Listed { items: self.items.into_iter().map(f).collect(), next: self.next, count: self.count }
    }

    /// The items seen through `f` (views borrowing from them), with the same cursor and count.
    pub fn views<'a, U>(&'a self, f: impl FnMut(&'a T) -> U) -> Listed<U> {
        Listed { items: self.items.iter().map(f).collect(), next: self.next.clone(), count: self.count }
    }
}

impl<T> Listed<T> {
    /// A keyset page (see [`crate::page`]) of already rendered items.
    pub fn after_seq(items: Vec<T>, next_after_seq: Option<i64>) -> Self {
        Listed { items, next: next_after_seq.map(Cursor::Seq), count: None }
    }

    /// A keyset page from up to `size + 1` `(seq, item)` rows fetched by the caller: the
    /// extra row only tells that more follow.
    pub fn from_rows(mut rows: Vec<(i64, T)>, size: usize) -> Self {
        let more = rows.len() > size;
        rows.truncate(size);
        let next = if more { rows.last().map(|(seq, _)| *seq) } else { None };
        Listed::after_seq(rows.into_iter().map(|(_, t)| t).collect(), next)
    }

    /// The `seq` a keyset page continues after, when there is a next page.
    pub fn next_after_seq(&self) -> Option<i64> {
        match &self.next {
            Some(Cursor::Seq(seq)) => Some(*seq),
            Some(Cursor::Keys(_, seq)) => Some(*seq),
            None => None,
        }
    }
}

impl<T> From<Vec<T>> for Listed<T> {
    /// A whole collection on one page.
    fn from(items: Vec<T>) -> Self {
        Listed { items, next: None, count: None }
    }
}

/// `$search`: `"term"` matches display names (and descriptions, where the set has them)
/// containing the term, ignoring case; `"property:term"` searches one property.
fn search_condition(search: &str, fields: &[Field]) -> Result<Sql> {
    let raw = search.trim().trim_matches('"');
    let (targets, term): (Vec<&Field>, &str) = match raw.split_once(':') {
        Some((prop, term)) => {
            let field = query::resolve(fields, &[prop.trim().to_string()]).ok_or_else(|| {
                Error::bad_request("BadRequest", format!("'{prop}' cannot be searched here.")).with_target("$search")
            })?;
            (vec![field], term.trim())
        }
        None => (
            fields
                .iter()
                .filter(|f| {
                    f.names
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case("displayName") || n.eq_ignore_ascii_case("description"))
                })
                .collect(),
            raw,
        ),
    };
    if targets.is_empty() {
        return Err(
            Error::bad_request("BadRequest", "$search is not supported on this collection.").with_target("$search")
        );
    }
    let escaped = term.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let mut params = Vec::new();
    let text = targets
        .iter()
        .map(|f| {
            params.push(Value::Text(format!("%{escaped}%")));
            format!("LOWER({}) LIKE ? ESCAPE '\\'", f.sql)
        })
        .collect::<Vec<_>>()
        .join(" OR ");
    Ok(Sql { text, params })
}

/// Builds the list query for `options` over `fields`, within `scope` conditions.
pub fn build_query(fields: &[Field], scope: Vec<Sql>, options: &ListOptions) -> Result<ListQuery> {
    let mut q = ListQuery::new(options.size);
    q.conditions = scope;
    if let Some(filter) = &options.filter {
        q.conditions.push(query::translate_filter(filter, fields)?);
    }
    if let Some(search) = &options.search {
        q.conditions.push(search_condition(search, fields)?);
    }
    q.order = query::translate_orderby(&options.orderby, fields)?;
    q.after = options.after.clone();
    Ok(q)
}

/// Lists records of `R` with `options`, inside `scope`.
pub fn list<R: Record>(
    c: &mut dyn Conn,
    fields: &[Field],
    scope: Vec<Sql>,
    options: &ListOptions,
) -> Result<Listed<R>> {
    let q = build_query(fields, scope, options)?;
    let mut rows = query::run_list(c, R::TABLE, &q)?;
    let more = rows.len() > options.size;
    rows.truncate(options.size);
    let next = if more { rows.last().map(|(_, cursor)| cursor.clone()) } else { None };
    let items = rows.iter().map(|(body, _)| repo::from_body::<R>(body)).collect::<Result<Vec<_>>>()?;
    let count = if options.count { Some(query::run_count(c, R::TABLE, &q)?) } else { None };
    Ok(Listed { items, next, count })
}

/// The records of `R` whose `column` is one of `values` (for `$expand` and batch loads).
pub async fn find_in<R: Record>(app: &crate::App, column: &'static str, values: Vec<String>) -> Result<Vec<R>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    app.store.read(move |c| find_in_conn(c, column, values)).await
}

/// The records whose ids are among `ids` (each distinct id queried once), keyed by id; empty
/// without a query when `wanted` is false.
pub fn by_id<'a, R: Record + Clone>(
    c: &mut dyn grantry_store::Conn,
    wanted: bool,
    ids: impl Iterator<Item = &'a String>,
) -> Result<std::collections::HashMap<String, R>> {
    if !wanted {
        return Ok(Default::default());
    }
    let mut distinct: Vec<String> = ids.cloned().collect();
    distinct.sort_unstable();
    distinct.dedup();
    Ok(find_in_conn::<R>(c, "id", distinct)?.into_iter().map(|r| (r.id().to_string(), r)).collect())
}

/// [`find_in`] inside a read or write already under way.
pub fn find_in_conn<R: Record>(
    c: &mut dyn grantry_store::Conn,
    column: &'static str,
    values: Vec<String>,
) -> Result<Vec<R>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("{column} IN ({})", vec!["?"; values.len()].join(", "));
    let params: Vec<Value> = values.into_iter().map(Value::from).collect();
    repo::find_all(c, &sql, &params)
}

/// Fields every entity set shares.
pub const ID: Field = Field { names: &["id"], sql: "id", kind: Kind::Id };
