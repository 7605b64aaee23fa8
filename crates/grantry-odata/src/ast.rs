//! Syntax tree for `$filter` expressions and the parsed query options.
//!
//! Every type here prints (via [`fmt::Display`]) in a canonical OData form
//! that parses back to an equal value, which is what nextLinks are built from.

use std::fmt;

/// A `$filter` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal value such as `'Delivered'`, `42` or `2024-05-01T10:00:00Z`.
    Literal(Literal),
    /// A property path such as `accessPackage/id`, segments kept as written
    /// (the consumer resolves them case-insensitively). Inside a lambda the
    /// first segment may be the range variable. Never empty when parsed.
    Path(Vec<String>),
    /// `not <expr>`.
    Not(Box<Expr>),
    /// A comparison (`eq`, `ne`, `gt`, `ge`, `lt`, `le`) or a logical
    /// `and` / `or`.
    Binary { op: BinaryOp, left: Box<Expr>, right: Box<Expr> },
    /// `<operand> in (<value>, ...)`; `values` is never empty when parsed.
    In { operand: Box<Expr>, values: Vec<Expr> },
    /// A built-in function call such as `startswith(displayName,'a')`. The
    /// argument count has been checked against [`Function::arity`].
    Call { function: Function, args: Vec<Expr> },
    /// `path/any(x: ...)`, `path/all(x: ...)` or `path/any()`.
    Lambda {
        /// The collection the lambda ranges over (never empty when parsed).
        path: Vec<String>,
        kind: LambdaKind,
        /// `None` only for `any()`, which is true when the collection is not
        /// empty.
        body: Option<LambdaBody>,
    },
}

/// The `x: predicate` part of a lambda.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaBody {
    /// The range variable; paths inside `predicate` that start with it refer
    /// to the current element of the collection.
    pub variable: String,
    pub predicate: Box<Expr>,
}

/// `any` or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LambdaKind {
    Any,
    All,
}

impl LambdaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::All => "all",
        }
    }
}

/// Binary operators: the six comparisons plus `and` / `or`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    And,
    Or,
}

impl BinaryOp {
    /// The comparison operators, in the order the parser tries them.
    pub const COMPARISONS: [BinaryOp; 6] =
        [BinaryOp::Eq, BinaryOp::Ne, BinaryOp::Gt, BinaryOp::Ge, BinaryOp::Lt, BinaryOp::Le];

    /// The canonical (lower-case) keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
            Self::And => "and",
            Self::Or => "or",
        }
    }

    pub fn is_comparison(self) -> bool {
        !self.is_logical()
    }

    pub fn is_logical(self) -> bool {
        matches!(self, Self::And | Self::Or)
    }
}

impl fmt::Display for BinaryOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The built-in functions the parser knows. Which of them a data source can
/// evaluate is for the consumer to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    StartsWith,
    EndsWith,
    Contains,
    ToLower,
    ToUpper,
    Trim,
    Length,
    IndexOf,
    Concat,
    Substring,
}

impl Function {
    pub const ALL: [Function; 10] = [
        Function::StartsWith,
        Function::EndsWith,
        Function::Contains,
        Function::ToLower,
        Function::ToUpper,
        Function::Trim,
        Function::Length,
        Function::IndexOf,
        Function::Concat,
        Function::Substring,
    ];

    /// The canonical (lower-case) name.
    pub fn name(self) -> &'static str {
        match self {
            Self::StartsWith => "startswith",
            Self::EndsWith => "endswith",
            Self::Contains => "contains",
            Self::ToLower => "tolower",
            Self::ToUpper => "toupper",
            Self::Trim => "trim",
            Self::Length => "length",
            Self::IndexOf => "indexof",
            Self::Concat => "concat",
            Self::Substring => "substring",
        }
    }

    /// Looks a function up by name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|function| function.name().eq_ignore_ascii_case(name))
    }

    /// The smallest and largest number of arguments the function takes.
    pub fn arity(self) -> (usize, usize) {
        match self {
            Self::ToLower | Self::ToUpper | Self::Trim | Self::Length => (1, 1),
            Self::StartsWith | Self::EndsWith | Self::Contains | Self::IndexOf | Self::Concat => (2, 2),
            Self::Substring => (2, 3),
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A literal value in a `$filter`.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Boolean(bool),
    Integer(i64),
    /// A number with a fraction or an exponent. `text` is the literal as
    /// written (it is what gets printed), so that digits beyond `f64`
    /// precision are not lost; keep the two consistent when building one.
    Decimal {
        value: f64,
        text: String,
    },
    /// A string, with `''` already unescaped to `'`.
    String(String),
    /// A GUID (bare or `guid'…'`), normalised to lower case.
    Guid(String),
    /// A date-time with offset such as `2024-05-01T10:00:00.1234567+00:00`,
    /// validated and kept as written.
    DateTimeOffset(String),
    /// A date such as `2024-05-01`, validated and kept as written.
    Date(String),
    /// The ISO 8601 duration inside `duration'…'`, e.g. `P30D`.
    Duration(String),
    /// An enum member such as
    /// `microsoft.graph.accessPackageRequestState'delivered'`.
    Enum {
        type_name: String,
        value: String,
    },
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("null"),
            Self::Boolean(value) => write!(f, "{value}"),
            Self::Integer(value) => write!(f, "{value}"),
            Self::Decimal { text, .. } => f.write_str(text),
            Self::String(value) => write_quoted(f, value),
            Self::Guid(text) | Self::DateTimeOffset(text) | Self::Date(text) => f.write_str(text),
            Self::Duration(text) => {
                f.write_str("duration")?;
                write_quoted(f, text)
            }
            Self::Enum { type_name, value } => {
                f.write_str(type_name)?;
                write_quoted(f, value)
            }
        }
    }
}

/// Writes `value` as an OData string literal, doubling embedded quotes.
fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("'")?;
    f.write_str(&value.replace('\'', "''"))?;
    f.write_str("'")
}

impl Expr {
    /// A property path from its segments.
    pub fn path<I, S>(segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Path(segments.into_iter().map(Into::into).collect())
    }

    /// A string literal.
    pub fn string(value: impl Into<String>) -> Self {
        Self::Literal(Literal::String(value.into()))
    }

    /// An integer literal.
    pub fn integer(value: i64) -> Self {
        Self::Literal(Literal::Integer(value))
    }

    /// A binary operation.
    pub fn binary(op: BinaryOp, left: Expr, right: Expr) -> Self {
        Self::Binary { op, left: Box::new(left), right: Box::new(right) }
    }

    fn precedence(&self) -> Precedence {
        match self {
            Self::Binary { op: BinaryOp::Or, .. } => Precedence::Or,
            Self::Binary { op: BinaryOp::And, .. } => Precedence::And,
            Self::Not(_) => Precedence::Not,
            Self::Binary { .. } | Self::In { .. } => Precedence::Comparison,
            Self::Literal(_) | Self::Path(_) | Self::Call { .. } | Self::Lambda { .. } => Precedence::Primary,
        }
    }

    /// Writes `self`, parenthesised if it binds more loosely than `min`.
    fn write_at(&self, f: &mut fmt::Formatter<'_>, min: Precedence) -> fmt::Result {
        if self.precedence() < min {
            f.write_str("(")?;
            self.write_bare(f)?;
            f.write_str(")")
        } else {
            self.write_bare(f)
        }
    }

    fn write_bare(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Literal(literal) => write!(f, "{literal}"),
            Self::Path(path) => write_path(f, path),
            Self::Not(operand) => {
                f.write_str("not ")?;
                operand.write_at(f, Precedence::Not)
            }
            Self::Binary { op, left, right } => {
                // `and` / `or` are left-associative, so a right operand of the
                // same precedence needs parentheses; comparisons do not chain.
                let (left_min, right_min) = match op {
                    BinaryOp::Or => (Precedence::Or, Precedence::And),
                    BinaryOp::And => (Precedence::And, Precedence::Not),
                    _ => (Precedence::Primary, Precedence::Primary),
                };
                left.write_at(f, left_min)?;
                write!(f, " {op} ")?;
                right.write_at(f, right_min)
            }
            Self::In { operand, values } => {
                operand.write_at(f, Precedence::Primary)?;
                f.write_str(" in (")?;
                write_list(f, values)?;
                f.write_str(")")
            }
            Self::Call { function, args } => {
                write!(f, "{function}(")?;
                write_list(f, args)?;
                f.write_str(")")
            }
            Self::Lambda { path, kind, body } => {
                write_path(f, path)?;
                write!(f, "/{}(", kind.as_str())?;
                if let Some(body) = body {
                    write!(f, "{}: ", body.variable)?;
                    body.predicate.write_at(f, Precedence::Or)?;
                }
                f.write_str(")")
            }
        }
    }
}

/// Binding strength, loosest first; `not` binds more loosely than a
/// comparison so that `not a eq 1` means `not (a eq 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Precedence {
    Or,
    And,
    Not,
    Comparison,
    Primary,
}

fn write_path(f: &mut fmt::Formatter<'_>, path: &[String]) -> fmt::Result {
    f.write_str(&path.join("/"))
}

fn write_list(f: &mut fmt::Formatter<'_>, items: &[Expr]) -> fmt::Result {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(",")?;
        }
        item.write_at(f, Precedence::Or)?;
    }
    Ok(())
}

impl fmt::Display for Expr {
    /// Prints the canonical form: lower-case keywords, single spaces, and
    /// only the parentheses that precedence requires.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_at(f, Precedence::Or)
    }
}

/// One `$orderby` item: a property path and its direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    pub path: Vec<String>,
    pub descending: bool,
}

impl fmt::Display for OrderBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_path(f, &self.path)?;
        if self.descending {
            f.write_str(" desc")?;
        }
        Ok(())
    }
}

/// One `$expand` item: a navigation path (or `["*"]`) and the options given
/// in parentheses after it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExpandItem {
    pub path: Vec<String>,
    pub options: QueryOptions,
}

impl fmt::Display for ExpandItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_path(f, &self.path)?;
        let pairs = self.options.to_pairs();
        if !pairs.is_empty() {
            f.write_str("(")?;
            for (index, (name, value)) in pairs.iter().enumerate() {
                if index > 0 {
                    f.write_str(";")?;
                }
                write!(f, "{name}={value}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// The parsed system query options of a request (or of one `$expand` item).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryOptions {
    pub filter: Option<Expr>,
    /// `None` when `$select` was not given; `["*"]` is an item for `*`.
    pub select: Option<Vec<Vec<String>>>,
    pub expand: Vec<ExpandItem>,
    pub orderby: Vec<OrderBy>,
    pub top: Option<u64>,
    pub skip: Option<u64>,
    /// Opaque; only ever set at the top level.
    pub skiptoken: Option<String>,
    pub count: bool,
    /// The search string with one pair of surrounding double quotes removed.
    pub search: Option<String>,
}

impl QueryOptions {
    /// True when no option is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The options as `($name, value)` pairs in canonical form, for building
    /// links such as `@odata.nextLink`. Values are not percent-encoded; feeding
    /// them (decoded) to [`crate::parse_query`] gives back equal options.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        let mut push = |name: &str, value: String| pairs.push((name.to_owned(), value));
        if let Some(filter) = &self.filter {
            push("$filter", filter.to_string());
        }
        if let Some(select) = &self.select {
            let items: Vec<String> = select.iter().map(|path| path.join("/")).collect();
            push("$select", items.join(","));
        }
        if !self.expand.is_empty() {
            push("$expand", join_display(&self.expand));
        }
        if !self.orderby.is_empty() {
            push("$orderby", join_display(&self.orderby));
        }
        if let Some(top) = self.top {
            push("$top", top.to_string());
        }
        if let Some(skip) = self.skip {
            push("$skip", skip.to_string());
        }
        if let Some(token) = &self.skiptoken {
            push("$skiptoken", token.clone());
        }
        if self.count {
            push("$count", "true".to_owned());
        }
        if let Some(search) = &self.search {
            push("$search", format!("\"{search}\""));
        }
        pairs
    }
}

fn join_display<T: fmt::Display>(items: &[T]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eq(path: &str, value: i64) -> Expr {
        Expr::binary(BinaryOp::Eq, Expr::path([path]), Expr::integer(value))
    }

    #[test]
    fn prints_only_needed_parentheses() {
        let or_of_ands = Expr::binary(BinaryOp::Or, eq("a", 1), Expr::binary(BinaryOp::And, eq("b", 2), eq("c", 3)));
        assert_eq!(or_of_ands.to_string(), "a eq 1 or b eq 2 and c eq 3");

        let and_of_ors = Expr::binary(BinaryOp::And, Expr::binary(BinaryOp::Or, eq("a", 1), eq("b", 2)), eq("c", 3));
        assert_eq!(and_of_ors.to_string(), "(a eq 1 or b eq 2) and c eq 3");

        let right_nested = Expr::binary(BinaryOp::Or, eq("a", 1), Expr::binary(BinaryOp::Or, eq("b", 2), eq("c", 3)));
        assert_eq!(right_nested.to_string(), "a eq 1 or (b eq 2 or c eq 3)");

        let not_cmp = Expr::Not(Box::new(eq("a", 1)));
        assert_eq!(not_cmp.to_string(), "not a eq 1");

        let cmp_of_not =
            Expr::binary(BinaryOp::Eq, Expr::Not(Box::new(Expr::path(["a"]))), Expr::Literal(Literal::Boolean(false)));
        assert_eq!(cmp_of_not.to_string(), "(not a) eq false");
    }

    #[test]
    fn prints_literals() {
        let cases = [
            (Literal::Null, "null"),
            (Literal::Boolean(true), "true"),
            (Literal::Integer(-5), "-5"),
            (Literal::Decimal { value: 1.50, text: "1.50".into() }, "1.50"),
            (Literal::String("O'Brien".into()), "'O''Brien'"),
            (Literal::Duration("P30D".into()), "duration'P30D'"),
            (Literal::Enum { type_name: "microsoft.graph.x".into(), value: "a".into() }, "microsoft.graph.x'a'"),
        ];
        for (literal, text) in cases {
            assert_eq!(literal.to_string(), text);
        }
    }

    #[test]
    fn function_lookup_is_case_insensitive() {
        assert_eq!(Function::from_name("StartsWith"), Some(Function::StartsWith));
        assert_eq!(Function::from_name("TOLOWER"), Some(Function::ToLower));
        assert_eq!(Function::from_name("foo"), None);
    }

    #[test]
    fn expand_item_display() {
        let item = ExpandItem {
            path: vec!["members".into()],
            options: QueryOptions {
                select: Some(vec![vec!["id".into()], vec!["displayName".into()]]),
                top: Some(5),
                ..QueryOptions::default()
            },
        };
        assert_eq!(item.to_string(), "members($select=id,displayName;$top=5)");
    }
}
