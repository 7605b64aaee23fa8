//! Hand-written lexer for `$filter` expressions.
//!
//! Keywords (`eq`, `and`, `true`, …) are returned as identifiers: whether a
//! word is an operator depends on where it stands, which only the parser
//! knows. Literals are fully recognised and validated here, so the parser
//! sees a finished [`Literal`].

use crate::ast::Literal;
use crate::error::{ParseError, snippet};
use crate::literal::{Temporal, is_duration, is_guid, scan_temporal};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// A name, possibly namespace-qualified (`microsoft.graph.group`).
    Ident(String),
    Literal(Literal),
    LParen,
    RParen,
    Comma,
    Colon,
    Slash,
    Star,
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    /// Byte offsets of the token in the input.
    pub start: usize,
    pub end: usize,
}

pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    option: &'static str,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(src: &'a str, option: &'static str) -> Self {
        Self { src, pos: 0, option }
    }

    pub(crate) fn next_token(&mut self) -> Result<Token, ParseError> {
        while self.peek_char().is_some_and(is_space) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(first) = self.peek_char() else {
            return Ok(Token { kind: TokenKind::Eof, start, end: start });
        };
        let kind = match first {
            '(' => self.single(TokenKind::LParen),
            ')' => self.single(TokenKind::RParen),
            ',' => self.single(TokenKind::Comma),
            ':' => self.single(TokenKind::Colon),
            '/' => self.single(TokenKind::Slash),
            '*' => self.single(TokenKind::Star),
            '\'' => TokenKind::Literal(Literal::String(self.string()?)),
            '-' if self.byte_at(start + 1).is_some_and(|b| b.is_ascii_digit()) => self.number()?,
            c if c.is_ascii_digit() => self.numeric()?,
            c if is_ident_start(c) => self.word()?,
            other => return Err(self.unexpected_char(other)),
        };
        Ok(Token { kind, start, end: self.pos })
    }

    fn error(&self, position: usize, message: impl Into<String>) -> ParseError {
        ParseError::new(self.option, position, message)
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or_default()
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn byte_at(&self, index: usize) -> Option<u8> {
        self.src.as_bytes().get(index).copied()
    }

    fn single(&mut self, kind: TokenKind) -> TokenKind {
        self.pos += 1;
        kind
    }

    /// A quoted string starting at the current `'`; `''` stands for one quote.
    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut value = String::new();
        loop {
            let rest = self.rest();
            let Some(quote) = rest.find('\'') else {
                return Err(self.error(start, format!("unterminated string literal starting at position {start}")));
            };
            value.push_str(rest.get(..quote).unwrap_or_default());
            self.pos += quote + 1;
            if self.byte_at(self.pos) == Some(b'\'') {
                value.push('\'');
                self.pos += 1;
            } else {
                return Ok(value);
            }
        }
    }

    /// Something starting with a digit: a GUID, a date or date-time, or a
    /// number. GUIDs are tried first because `7deff43e-…` also starts like a
    /// number.
    fn numeric(&mut self) -> Result<TokenKind, ParseError> {
        if let Some(guid) = self.guid() {
            return Ok(TokenKind::Literal(Literal::Guid(guid)));
        }
        let bytes = self.rest().as_bytes();
        let looks_like_date =
            bytes.get(..4).is_some_and(|y| y.iter().all(u8::is_ascii_digit)) && bytes.get(4) == Some(&b'-');
        if looks_like_date {
            return self.temporal();
        }
        self.number()
    }

    fn guid(&mut self) -> Option<String> {
        let bytes = self.rest().as_bytes();
        let candidate = bytes.get(..36)?;
        // `…0b165bx` or `…-1234` is not a GUID followed by something else.
        let glued = bytes.get(36).is_some_and(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !is_guid(candidate) || glued {
            return None;
        }
        self.pos += 36;
        // The candidate is ASCII, so this conversion cannot fail.
        std::str::from_utf8(candidate).ok().map(str::to_ascii_lowercase)
    }

    fn temporal(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.pos;
        let rest = self.rest();
        let (kind, len) = scan_temporal(rest.as_bytes()).map_err(|msg| self.error(start, msg))?;
        let text = rest.get(..len).unwrap_or_default().to_owned();
        self.pos += len;
        self.reject_glued("date", start)?;
        Ok(TokenKind::Literal(match kind {
            Temporal::Date => Literal::Date(text),
            Temporal::DateTimeOffset => Literal::DateTimeOffset(text),
        }))
    }

    /// An integer or decimal, optionally negative:
    /// `-?digits(.digits)?([eE][+-]?digits)?`.
    fn number(&mut self) -> Result<TokenKind, ParseError> {
        let start = self.pos;
        let mut end = start;
        if self.byte_at(end) == Some(b'-') {
            end += 1;
        }
        end = self.skip_digits(end);
        let mut is_decimal = false;
        if self.byte_at(end) == Some(b'.') {
            let after = self.skip_digits(end + 1);
            if after == end + 1 {
                return Err(self.error(end, "expected digits after the decimal point"));
            }
            end = after;
            is_decimal = true;
        }
        if matches!(self.byte_at(end), Some(b'e' | b'E')) {
            let mut digits = end + 1;
            if matches!(self.byte_at(digits), Some(b'+' | b'-')) {
                digits += 1;
            }
            let after = self.skip_digits(digits);
            if after == digits {
                return Err(self.error(end, "expected digits in the exponent of the number"));
            }
            end = after;
            is_decimal = true;
        }
        let text = self.src.get(start..end).unwrap_or_default();
        self.pos = end;
        self.reject_glued("number", start)?;

        if is_decimal {
            match text.parse::<f64>() {
                Ok(value) if value.is_finite() => {
                    Ok(TokenKind::Literal(Literal::Decimal { value, text: text.to_owned() }))
                }
                _ => Err(self.error(start, format!("the number {text} is out of range"))),
            }
        } else {
            text.parse::<i64>()
                .map(|value| TokenKind::Literal(Literal::Integer(value)))
                .map_err(|_| self.error(start, format!("the integer {text} does not fit in a 64-bit signed integer")))
        }
    }

    fn skip_digits(&self, mut index: usize) -> usize {
        while self.byte_at(index).is_some_and(|b| b.is_ascii_digit()) {
            index += 1;
        }
        index
    }

    /// A literal running straight into letters (`12abc`, `2024-05-01x`) is a
    /// typo rather than two tokens.
    fn reject_glued(&self, what: &str, start: usize) -> Result<(), ParseError> {
        match self.peek_char() {
            Some(c) if is_ident_continue(c) || c == '.' => {
                let end = self.rest().find(|c: char| !is_ident_continue(c) && c != '.');
                let end = self.pos + end.unwrap_or(self.rest().len());
                let text = self.src.get(start..end).unwrap_or_default();
                Err(self.error(start, format!("invalid {what} literal '{}'", snippet(text))))
            }
            _ => Ok(()),
        }
    }

    /// A word: a bare GUID that starts with a letter, an identifier (possibly
    /// dotted), or a typed literal `guid'…'`, `duration'…'`, `Ns.Type'…'`.
    fn word(&mut self) -> Result<TokenKind, ParseError> {
        if let Some(guid) = self.guid() {
            return Ok(TokenKind::Literal(Literal::Guid(guid)));
        }
        let start = self.pos;
        self.skip_ident_part();
        while self.peek_char() == Some('.')
            && self.rest().get(1..).and_then(|r| r.chars().next()).is_some_and(is_ident_start)
        {
            self.pos += 1;
            self.skip_ident_part();
        }
        let word = self.src.get(start..self.pos).unwrap_or_default();

        // Only known prefixes and qualified names start a typed literal, so
        // that `name eq'x'` still lexes as `name`, `eq`, `'x'`.
        let is_guid_prefix = word.eq_ignore_ascii_case("guid");
        let is_duration_prefix = word.eq_ignore_ascii_case("duration");
        let is_enum_type = word.contains('.');
        if self.peek_char() != Some('\'') || !(is_guid_prefix || is_duration_prefix || is_enum_type) {
            return Ok(TokenKind::Ident(word.to_owned()));
        }
        let value_start = self.pos;
        let value = self.string()?;
        let literal = if is_guid_prefix {
            if !is_guid(value.as_bytes()) {
                return Err(self.error(
                    value_start,
                    format!("invalid GUID '{}'; expected 32 hex digits in the form 8-4-4-4-12", snippet(&value)),
                ));
            }
            Literal::Guid(value.to_ascii_lowercase())
        } else if is_duration_prefix {
            if !is_duration(&value) {
                return Err(self.error(
                    value_start,
                    format!(
                        "invalid duration '{}'; expected an ISO 8601 duration such as 'P30D' or 'PT12H'",
                        snippet(&value)
                    ),
                ));
            }
            Literal::Duration(value)
        } else {
            if value.is_empty() {
                return Err(self.error(value_start, "an enum literal needs a member name"));
            }
            Literal::Enum { type_name: word.to_owned(), value }
        };
        Ok(TokenKind::Literal(literal))
    }

    fn skip_ident_part(&mut self) {
        let len = self
            .rest()
            .char_indices()
            .find(|&(index, c)| if index == 0 { !is_ident_start(c) } else { !is_ident_continue(c) })
            .map_or(self.rest().len(), |(index, _)| index);
        self.pos += len;
    }

    fn unexpected_char(&self, c: char) -> ParseError {
        let hint = match c {
            '=' => "; use 'eq' to compare values, e.g. name eq 'x'",
            '!' => "; use 'ne' or 'not'",
            '<' | '>' => "; use 'lt', 'le', 'gt' or 'ge'",
            '&' => "; use 'and'",
            '|' => "; use 'or'",
            '"' => "; string literals are enclosed in single quotes, e.g. 'value'",
            '+' => "; if it stands for a space, encode spaces as %20",
            _ => "",
        };
        let shown = if c.is_control() { c.escape_debug().to_string() } else { c.to_string() };
        self.error(self.pos, format!("unexpected character '{shown}'{hint}"))
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

pub(crate) fn is_ident_continue(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `text` is a property or type name: identifier parts joined by dots.
pub(crate) fn is_identifier(text: &str) -> bool {
    text.split('.').all(|part| {
        let mut chars = part.chars();
        chars.next().is_some_and(is_ident_start) && chars.all(is_ident_continue)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<TokenKind> {
        let mut lexer = Lexer::new(src, "$filter");
        let mut out = Vec::new();
        loop {
            let token = lexer.next_token().expect("lexes");
            if token.kind == TokenKind::Eof {
                return out;
            }
            out.push(token.kind);
        }
    }

    fn ident(s: &str) -> TokenKind {
        TokenKind::Ident(s.into())
    }

    fn lit(l: Literal) -> TokenKind {
        TokenKind::Literal(l)
    }

    #[test]
    fn words_and_punctuation() {
        assert_eq!(
            kinds("a/b eq'x'"),
            vec![ident("a"), TokenKind::Slash, ident("b"), ident("eq"), lit(Literal::String("x".into()))]
        );
        assert_eq!(
            kinds("f(x: *,)"),
            vec![
                ident("f"),
                TokenKind::LParen,
                ident("x"),
                TokenKind::Colon,
                TokenKind::Star,
                TokenKind::Comma,
                TokenKind::RParen
            ]
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(kinds("-12"), vec![lit(Literal::Integer(-12))]);
        assert_eq!(kinds("1.5e3"), vec![lit(Literal::Decimal { value: 1500.0, text: "1.5e3".into() })]);
        assert_eq!(kinds("-9223372036854775808"), vec![lit(Literal::Integer(i64::MIN))]);
    }

    #[test]
    fn guids_starting_with_digits_or_letters() {
        assert_eq!(
            kinds("7DEFF43E-1f17-44ef-9e5f-d516b0ba11d4"),
            vec![lit(Literal::Guid("7deff43e-1f17-44ef-9e5f-d516b0ba11d4".into()))]
        );
        assert_eq!(
            kinds("a914b616-e04e-476b-aa37-91038f0b165b"),
            vec![lit(Literal::Guid("a914b616-e04e-476b-aa37-91038f0b165b".into()))]
        );
    }

    #[test]
    fn lexer_errors_have_positions() {
        let mut lexer = Lexer::new("a eq 12abc", "$filter");
        for _ in 0..2 {
            lexer.next_token().expect("lexes");
        }
        let err = lexer.next_token().expect_err("glued number");
        assert_eq!(err.position, 5);
        assert_eq!(err.message, "invalid number literal '12abc'");
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("displayName"));
        assert!(is_identifier("microsoft.graph.group"));
        assert!(is_identifier("_x1"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("1a"));
        assert!(!is_identifier("a."));
        assert!(!is_identifier("a b"));
    }
}
