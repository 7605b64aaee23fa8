//! Recursive-descent parser for `$filter` expressions.
//!
//! Grammar, loosest binding first (keywords are case-insensitive):
//!
//! ```text
//! or_expr    = and_expr *( "or" and_expr )
//! and_expr   = not_expr *( "and" not_expr )
//! not_expr   = "not" not_expr / comparison
//! comparison = primary [ cmp_op primary / "in" "(" or_expr *( "," or_expr ) ")" ]
//! primary    = literal / "(" or_expr ")" / function "(" [ args ] ")"
//!            / path [ "/" ( "any" / "all" ) "(" [ var ":" or_expr ] ")" ]
//! ```
//!
//! `not` binds more loosely than comparisons, so `not a eq 1` means
//! `not (a eq 1)`: that is how such filters are meant in practice, although
//! the OData ABNF alone would read `(not a) eq 1`.

use crate::ast::{BinaryOp, Expr, Function, LambdaBody, LambdaKind, Literal};
use crate::error::{ParseError, snippet};
use crate::lexer::{Lexer, Token, TokenKind};
use crate::{MAX_DEPTH, check_length};

/// Parses a complete `$filter` value; errors name `option`.
pub(crate) fn parse(input: &str, option: &'static str) -> Result<Expr, ParseError> {
    check_length(input, option)?;
    if input.trim().is_empty() {
        return Err(ParseError::new(
            option,
            0,
            "the filter is empty; expected an expression such as displayName eq 'x'",
        ));
    }
    let mut parser = Parser::new(input, option)?;
    let expr = parser.parse_or()?;
    match parser.token.kind {
        TokenKind::Eof => Ok(expr),
        TokenKind::RParen => Err(parser.error(
            parser.token.start,
            format!("unbalanced parentheses: the ')' at position {} has no matching '('", parser.token.start),
        )),
        _ => Err(parser.expected_operator(&expr, "")),
    }
}

/// The most terms a filter may have: each one costs every row the query scans.
pub const MAX_FILTER_TERMS: usize = 50;

/// The most terms that no index can serve (`contains`, `endswith`) a filter may have when
/// `$count=true` asks for a count over every matching row.
pub const MAX_UNINDEXED_TERMS_WITH_COUNT: usize = 5;

/// Refuses a filter with more than [`MAX_FILTER_TERMS`] terms (the query options check it;
/// [`crate::parse_filter`] alone parses any filter within the length limit).
pub(crate) fn check_terms(expr: &Expr, option: &'static str) -> Result<(), ParseError> {
    let terms = count_terms(expr);
    if terms > MAX_FILTER_TERMS {
        return Err(ParseError::new(
            option,
            0,
            format!(
                "the filter has {terms} terms (comparisons, function calls and 'in' values); the limit is {MAX_FILTER_TERMS}: split the query or use 'in' with fewer values"
            ),
        ));
    }
    Ok(())
}

/// Comparisons, function calls and `in` values of `expr` (`and`, `or` and `not` only join
/// them).
pub fn count_terms(expr: &Expr) -> usize {
    match expr {
        Expr::Binary { op, left, right } if op.is_logical() => count_terms(left) + count_terms(right),
        Expr::Not(inner) => count_terms(inner),
        Expr::In { values, .. } => values.len().max(1),
        Expr::Lambda { body: Some(body), .. } => 1 + count_terms(&body.predicate),
        _ => 1,
    }
}

/// Calls to `contains` and `endswith` in `expr`: no index serves them, so each one is
/// evaluated on every row.
pub fn count_unindexed_terms(expr: &Expr) -> usize {
    match expr {
        Expr::Binary { left, right, .. } => count_unindexed_terms(left) + count_unindexed_terms(right),
        Expr::Not(inner) => count_unindexed_terms(inner),
        Expr::In { operand, values } => {
            count_unindexed_terms(operand) + values.iter().map(count_unindexed_terms).sum::<usize>()
        }
        Expr::Lambda { body: Some(body), .. } => count_unindexed_terms(&body.predicate),
        Expr::Call { function, args } => {
            let own = usize::from(matches!(function, Function::Contains | Function::EndsWith));
            own + args.iter().map(count_unindexed_terms).sum::<usize>()
        }
        _ => 0,
    }
}

const KEYWORD_OPERATORS: [&str; 16] =
    ["eq", "ne", "gt", "ge", "lt", "le", "and", "or", "in", "has", "add", "sub", "mul", "div", "divby", "mod"];

struct Parser<'a> {
    src: &'a str,
    lexer: Lexer<'a>,
    /// The current (not yet consumed) token.
    token: Token,
    /// Span of the last consumed token, for "after 'x'" in messages.
    previous: Option<(usize, usize)>,
    /// Current nesting of parentheses, calls, lambdas, `in` lists and `not`.
    depth: usize,
    option: &'static str,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str, option: &'static str) -> Result<Self, ParseError> {
        let mut lexer = Lexer::new(src, option);
        let token = lexer.next_token()?;
        Ok(Self { src, lexer, token, previous: None, depth: 0, option })
    }

    fn error(&self, position: usize, message: impl Into<String>) -> ParseError {
        ParseError::new(self.option, position, message)
    }

    /// Consumes the current token and returns it.
    fn advance(&mut self) -> Result<Token, ParseError> {
        let next = self.lexer.next_token()?;
        let token = std::mem::replace(&mut self.token, next);
        self.previous = Some((token.start, token.end));
        Ok(token)
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(&self.token.kind, TokenKind::Ident(word) if word.eq_ignore_ascii_case(keyword))
    }

    fn at_comparison(&self) -> Option<BinaryOp> {
        let TokenKind::Ident(word) = &self.token.kind else {
            return None;
        };
        BinaryOp::COMPARISONS.into_iter().find(|op| word.eq_ignore_ascii_case(op.as_str()))
    }

    /// Guards recursion: every construct that can contain a whole expression
    /// goes through here, so hostile input cannot exhaust the stack.
    fn enter(&mut self, position: usize) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(
                self.error(position, format!("the expression is nested too deeply (the limit is {MAX_DEPTH} levels)"))
            );
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// The source text of a token, quoted for a message (string literals
    /// already carry their quotes).
    fn quoted(&self, (start, end): (usize, usize)) -> String {
        let text = snippet(self.src.get(start..end).unwrap_or_default());
        if text.starts_with('\'') { text } else { format!("'{text}'") }
    }

    fn previous_text(&self) -> String {
        self.previous.map(|span| self.quoted(span)).unwrap_or_default()
    }

    /// The current token for a message, or "the end of the input".
    fn found(&self) -> String {
        match self.token.kind {
            TokenKind::Eof => "the end of the input".to_owned(),
            _ => self.quoted((self.token.start, self.token.end)),
        }
    }

    /// The error for a token that cannot continue `expr`; `alternative`
    /// names another token that would have been accepted (e.g. "a closing ')'").
    fn expected_operator(&self, expr: &Expr, alternative: &str) -> ParseError {
        let wanted = match expr {
            Expr::Path(_) | Expr::Literal(_) => "an operator such as 'eq'",
            Expr::Call { .. } => "an operator such as 'eq' or 'and'",
            _ => "'and' or 'or'",
        };
        let previous = self.previous_text();
        let mut message = if alternative.is_empty() {
            format!("expected {wanted} after {previous}")
        } else {
            format!("expected {wanted}, or {alternative}, after {previous}")
        };
        // `'O'Brien'`: a string immediately followed by more text is almost
        // always an unescaped quote.
        let glued_to_string = self
            .previous
            .is_some_and(|(start, end)| end == self.token.start && self.src.as_bytes().get(start) == Some(&b'\''));
        if glued_to_string {
            message.push_str("; a quote inside a string must be doubled, e.g. 'O''Brien'");
        }
        self.error(self.token.start, message)
    }

    fn expected_operand(&self) -> ParseError {
        let message = match self.previous {
            Some(_) => format!(
                "expected a property, value or function call after {} but found {}",
                self.previous_text(),
                self.found()
            ),
            None => format!("expected a property, value or function call but found {}", self.found()),
        };
        self.error(self.token.start, message)
    }

    /// Consumes the `)` that closes the `(` at `open`, or explains what is
    /// missing. `inner` is the last expression parsed inside.
    fn close_paren(&mut self, open: usize, inner: Option<&Expr>) -> Result<(), ParseError> {
        match (&self.token.kind, inner) {
            (TokenKind::RParen, _) => {
                self.advance()?;
                Ok(())
            }
            (TokenKind::Eof, _) => {
                Err(self.error(self.token.start, format!("expected a closing ')' for the '(' at position {open}")))
            }
            (_, Some(expr)) => Err(self.expected_operator(expr, "a closing ')'")),
            (_, None) => {
                Err(self.error(self.token.start, format!("expected a closing ')' but found {}", self.found())))
            }
        }
    }

    fn parse_or(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.parse_and()?;
        while self.at_keyword("or") {
            self.advance()?;
            let right = self.parse_and()?;
            left = Expr::binary(BinaryOp::Or, left, right);
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.parse_not()?;
        while self.at_keyword("and") {
            self.advance()?;
            let right = self.parse_not()?;
            left = Expr::binary(BinaryOp::And, left, right);
        }
        Ok(left)
    }

    fn parse_not(&mut self) -> Result<Expr, ParseError> {
        if !self.at_keyword("not") {
            return self.parse_comparison();
        }
        let not = self.advance()?;
        self.enter(not.start)?;
        let operand = self.parse_not()?;
        self.leave();
        Ok(Expr::Not(Box::new(operand)))
    }

    fn parse_comparison(&mut self) -> Result<Expr, ParseError> {
        let left = self.parse_primary()?;
        let expr = if let Some(op) = self.at_comparison() {
            self.advance()?;
            let right = self.parse_primary()?;
            Expr::binary(op, left, right)
        } else if self.at_keyword("in") {
            self.advance()?;
            self.parse_in_list(left)?
        } else {
            self.reject_unsupported_operator()?;
            return Ok(left);
        };
        if self.at_comparison().is_some() || self.at_keyword("in") {
            return Err(self.error(
                self.token.start,
                format!(
                    "comparisons cannot be chained: {} cannot follow {}; combine comparisons with 'and' or group them with parentheses",
                    self.found(),
                    self.previous_text()
                ),
            ));
        }
        self.reject_unsupported_operator()?;
        Ok(expr)
    }

    /// Gives a clear message for OData operators this parser does not support.
    fn reject_unsupported_operator(&self) -> Result<(), ParseError> {
        let TokenKind::Ident(word) = &self.token.kind else {
            return Ok(());
        };
        let word = word.to_ascii_lowercase();
        let message = match word.as_str() {
            "has" => "the 'has' operator is not supported; compare enum values with 'eq' instead".to_owned(),
            "add" | "sub" | "mul" | "div" | "divby" | "mod" => {
                format!("the arithmetic operator '{word}' is not supported")
            }
            _ => return Ok(()),
        };
        Err(self.error(self.token.start, message))
    }

    fn parse_in_list(&mut self, operand: Expr) -> Result<Expr, ParseError> {
        if self.token.kind != TokenKind::LParen {
            return Err(self.error(
                self.token.start,
                format!("expected '(' after 'in' but found {}; write e.g. state in ('a','b')", self.found()),
            ));
        }
        let open = self.advance()?.start;
        self.enter(open)?;
        if self.token.kind == TokenKind::RParen {
            return Err(self.error(self.token.start, "the list after 'in' must contain at least one value"));
        }
        let mut values = vec![self.parse_or()?];
        while self.token.kind == TokenKind::Comma {
            self.advance()?;
            values.push(self.parse_or()?);
        }
        self.close_paren(open, values.last())?;
        self.leave();
        Ok(Expr::In { operand: Box::new(operand), values })
    }

    fn parse_primary(&mut self) -> Result<Expr, ParseError> {
        match &self.token.kind {
            TokenKind::LParen => {
                let open = self.advance()?.start;
                self.enter(open)?;
                let inner = self.parse_or()?;
                self.close_paren(open, Some(&inner))?;
                self.leave();
                Ok(inner)
            }
            TokenKind::Literal(literal) => {
                let literal = literal.clone();
                self.advance()?;
                Ok(Expr::Literal(literal))
            }
            TokenKind::Ident(word) => {
                let word = word.clone();
                if let Some(literal) = keyword_literal(&word) {
                    self.advance()?;
                    return Ok(Expr::Literal(literal));
                }
                if word.eq_ignore_ascii_case("not") {
                    return Err(self.error(
                        self.token.start,
                        "'not' cannot stand here; put it before a comparison or in parentheses, e.g. a eq (not b)",
                    ));
                }
                if is_keyword_operator(&word) {
                    return Err(self.expected_operand());
                }
                let name = self.advance()?;
                if self.token.kind == TokenKind::LParen {
                    self.parse_call(&word, name.start)
                } else {
                    self.parse_path(word)
                }
            }
            _ => Err(self.expected_operand()),
        }
    }

    fn parse_call(&mut self, name: &str, name_start: usize) -> Result<Expr, ParseError> {
        let Some(function) = Function::from_name(name) else {
            let message = if ["any", "all"].iter().any(|l| name.eq_ignore_ascii_case(l)) {
                format!(
                    "'{name}' must follow a collection path, e.g. members/{}(x: x/id eq '…')",
                    name.to_ascii_lowercase()
                )
            } else {
                format!("unknown function '{}'", snippet(name))
            };
            return Err(self.error(name_start, message));
        };
        let open = self.advance()?.start;
        self.enter(open)?;
        let mut args = Vec::new();
        if self.token.kind != TokenKind::RParen {
            args.push(self.parse_or()?);
            while self.token.kind == TokenKind::Comma {
                self.advance()?;
                args.push(self.parse_or()?);
            }
        }
        if let Some(last) = args.last()
            && !matches!(self.token.kind, TokenKind::RParen | TokenKind::Eof)
        {
            return Err(self.expected_operator(last, "',' or ')'"));
        }
        self.close_paren(open, None)?;
        self.leave();

        let (min, max) = function.arity();
        if !(min..=max).contains(&args.len()) {
            let expected = if min == max {
                format!("{min} argument{}", if min == 1 { "" } else { "s" })
            } else {
                format!("{min} to {max} arguments")
            };
            return Err(self.error(
                name_start,
                format!(
                    "function '{function}' takes {expected} but {} {} given",
                    args.len(),
                    if args.len() == 1 { "was" } else { "were" }
                ),
            ));
        }
        Ok(Expr::Call { function, args })
    }

    /// A property path whose first segment has been consumed, possibly
    /// ending in a lambda.
    fn parse_path(&mut self, first: String) -> Result<Expr, ParseError> {
        let mut path = vec![first];
        while self.token.kind == TokenKind::Slash {
            self.advance()?;
            let TokenKind::Ident(segment) = &self.token.kind else {
                return Err(self.error(
                    self.token.start,
                    format!("expected a property name after '/' but found {}", self.found()),
                ));
            };
            let segment = segment.clone();
            self.advance()?;
            if self.token.kind == TokenKind::LParen {
                let kind = if segment.eq_ignore_ascii_case("any") {
                    LambdaKind::Any
                } else if segment.eq_ignore_ascii_case("all") {
                    LambdaKind::All
                } else {
                    return Err(self.error(
                        self.token.start,
                        format!(
                            "unexpected '(' after '{}'; only 'any' and 'all' can be applied to a path",
                            snippet(&segment)
                        ),
                    ));
                };
                return self.parse_lambda(path, kind);
            }
            path.push(segment);
        }
        if self.token.kind == TokenKind::LParen {
            return Err(self.error(
                self.token.start,
                "unexpected '(' after a path; only 'any' and 'all' can be applied to a path",
            ));
        }
        Ok(Expr::Path(path))
    }

    fn parse_lambda(&mut self, path: Vec<String>, kind: LambdaKind) -> Result<Expr, ParseError> {
        let open = self.advance()?.start;
        self.enter(open)?;
        let body = if self.token.kind == TokenKind::RParen {
            if kind == LambdaKind::All {
                return Err(self.error(self.token.start, "'all' needs a condition, e.g. all(x: x/state eq 'active')"));
            }
            None
        } else {
            Some(self.parse_lambda_body(kind)?)
        };
        self.close_paren(open, body.as_ref().map(|body| &*body.predicate))?;
        self.leave();
        Ok(Expr::Lambda { path, kind, body })
    }

    /// `x: predicate` inside `any(` / `all(`.
    fn parse_lambda_body(&mut self, kind: LambdaKind) -> Result<LambdaBody, ParseError> {
        let variable = match &self.token.kind {
            TokenKind::Ident(name)
                if !name.contains('.') && !is_keyword_operator(name) && keyword_literal(name).is_none() =>
            {
                name.clone()
            }
            _ => {
                return Err(self.error(
                    self.token.start,
                    format!(
                        "expected a range variable such as 'x' after '{}(' but found {}",
                        kind.as_str(),
                        self.found()
                    ),
                ));
            }
        };
        self.advance()?;
        if self.token.kind != TokenKind::Colon {
            return Err(self.error(
                self.token.start,
                format!(
                    "expected ':' after the range variable '{variable}', e.g. {}({variable}: {variable}/id eq '…')",
                    kind.as_str()
                ),
            ));
        }
        self.advance()?;
        let predicate = self.parse_or()?;
        Ok(LambdaBody { variable, predicate: Box::new(predicate) })
    }
}

fn keyword_literal(word: &str) -> Option<Literal> {
    if word.eq_ignore_ascii_case("true") {
        Some(Literal::Boolean(true))
    } else if word.eq_ignore_ascii_case("false") {
        Some(Literal::Boolean(false))
    } else if word.eq_ignore_ascii_case("null") {
        Some(Literal::Null)
    } else {
        None
    }
}

fn is_keyword_operator(word: &str) -> bool {
    KEYWORD_OPERATORS.iter().any(|keyword| word.eq_ignore_ascii_case(keyword))
}
