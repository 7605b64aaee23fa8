//! Parser for OData v4 system query options as Microsoft Graph uses them:
//! `$filter`, `$select`, `$expand`, `$orderby`, `$top`, `$skip`,
//! `$skiptoken`, `$count` and `$search`.
//!
//! The crate only parses: it produces an [`ast::Expr`] / [`QueryOptions`]
//! and leaves name resolution and evaluation to the consumer. Every parser
//! takes already percent-decoded text (so `+` is not a space here), never
//! panics, and rejects values longer than [`MAX_INPUT_LEN`] bytes or nested
//! deeper than [`MAX_DEPTH`] levels.
//!
//! ```
//! use grantry_odata::{parse_filter, ast::{BinaryOp, Expr}};
//!
//! let expr = parse_filter("state eq 'Delivered' AND not (isExpired eq true)").unwrap();
//! let Expr::Binary { op, .. } = &expr else { panic!() };
//! assert_eq!(*op, BinaryOp::And);
//! assert_eq!(expr.to_string(), "state eq 'Delivered' and not isExpired eq true");
//! ```

pub mod ast;
mod error;
mod filter;
mod lexer;
mod literal;
mod options;

pub use ast::{ExpandItem, Expr, OrderBy, QueryOptions};
pub use error::ParseError;
pub use filter::{MAX_FILTER_TERMS, MAX_UNINDEXED_TERMS_WITH_COUNT, count_terms, count_unindexed_terms};

/// The longest option value accepted, in bytes.
pub const MAX_INPUT_LEN: usize = 8 * 1024;

/// The deepest nesting accepted: parentheses, function calls, lambdas, `in`
/// lists and `not` in a `$filter`, and levels of `$expand`.
pub const MAX_DEPTH: usize = 100;

/// Parses a `$filter` value such as
/// `accessPackage/id eq '…' and state eq 'Delivered'`.
pub fn parse_filter(input: &str) -> Result<Expr, ParseError> {
    filter::parse(input, "$filter")
}

/// Parses a `$orderby` value: comma-separated `path [asc|desc]` items.
pub fn parse_orderby(input: &str) -> Result<Vec<OrderBy>, ParseError> {
    options::parse_orderby(input)
}

/// Parses a `$select` value: comma-separated property paths, or `*`
/// (returned as the path `["*"]`).
pub fn parse_select(input: &str) -> Result<Vec<Vec<String>>, ParseError> {
    options::parse_select(input)
}

/// Parses a `$expand` value: comma-separated navigation paths (or `*`), each
/// optionally followed by `(…)` holding `;`-separated options (`$select`,
/// `$filter`, `$expand`, `$orderby`, `$top`, `$skip`, `$count`, `$search`).
pub fn parse_expand(input: &str) -> Result<Vec<ExpandItem>, ParseError> {
    options::parse_expand(input, 1)
}

/// Parses the query string of a request from already percent-decoded
/// key/value pairs.
///
/// Option names are matched case-insensitively with or without the `$`
/// prefix. An option given twice, or an unknown name starting with `$`, is an
/// error; other parameters are ignored.
pub fn parse_query(pairs: &[(String, String)]) -> Result<QueryOptions, ParseError> {
    options::parse_query(pairs)
}

pub(crate) fn check_length(input: &str, option: &'static str) -> Result<(), ParseError> {
    if input.len() > MAX_INPUT_LEN {
        return Err(ParseError::new(
            option,
            MAX_INPUT_LEN,
            format!("the value is too long ({} bytes; the limit is {MAX_INPUT_LEN})", input.len()),
        ));
    }
    Ok(())
}
