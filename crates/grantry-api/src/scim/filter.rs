//! SCIM filters (RFC 7644 §3.4.2.2) and attribute paths, evaluated on a rendered resource.
//!
//! Attribute names and operators are case-insensitive; string comparisons too, except on
//! `id` and `externalId` (caseExact in RFC 7643). An attribute a resource lacks matches
//! nothing (and `pr` is false), as the RFC asks.

use serde_json::Value;

/// One step of a path: an attribute, optionally narrowed by a value filter, optionally
/// followed by a sub-attribute (`emails[type eq "work"].value`).
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// The schema URN the attribute was qualified with, if it is an extension's.
    pub extension: Option<String>,
    pub attr: String,
    pub filter: Option<Box<Filter>>,
    pub sub: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare(Path, Op, Value),
    Present(Path),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
    OpenBracket,
    CloseBracket,
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&ch) = chars.peek() {
        match ch {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                out.push(match ch {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    '[' => Token::OpenBracket,
                    _ => Token::CloseBracket,
                });
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(other) => s.push(other),
                            None => break,
                        },
                        '"' => {
                            closed = true;
                            break;
                        }
                        other => s.push(other),
                    }
                }
                if !closed {
                    return Err("a quoted value is not closed with '\"'".into());
                }
                out.push(Token::Str(s));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | '"') {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push(Token::Word(w));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(k))
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.next();
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            self.next();
            left = Filter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.keyword("not") {
            self.next();
            if self.next() != Some(Token::Open) {
                return Err("'not' must be followed by a parenthesised filter, e.g. not (active eq true)".into());
            }
            let inner = self.or()?;
            self.expect_close()?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if self.peek() == Some(&Token::Open) {
            self.next();
            let inner = self.or()?;
            self.expect_close()?;
            return Ok(inner);
        }
        self.comparison()
    }

    fn expect_close(&mut self) -> Result<(), String> {
        match self.next() {
            Some(Token::Close) => Ok(()),
            _ => Err("a '(' is not closed with ')'".into()),
        }
    }

    fn comparison(&mut self) -> Result<Filter, String> {
        let Some(Token::Word(attr)) = self.next() else {
            return Err("expected an attribute name, e.g. userName eq \"adele@contoso.com\"".into());
        };
        let mut path = parse_path_word(&attr)?;
        if self.peek() == Some(&Token::OpenBracket) {
            self.next();
            let inner = self.or()?;
            if self.next() != Some(Token::CloseBracket) {
                return Err("a '[' is not closed with ']'".into());
            }
            path.filter = Some(Box::new(inner));
            if let Some(Token::Word(w)) = self.peek()
                && let Some(sub) = w.strip_prefix('.')
            {
                path.sub = Some(sub.to_string());
                self.next();
            } else {
                // `emails[type eq "work"]` alone: some value matches.
                return Ok(Filter::Present(path));
            }
        }
        let Some(Token::Word(op)) = self.next() else {
            return Err(format!("expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after '{attr}'"));
        };
        let op = match op.to_ascii_lowercase().as_str() {
            "pr" => return Ok(Filter::Present(path)),
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            other => {
                return Err(format!("'{other}' is not a SCIM operator; use eq, ne, co, sw, ew, gt, ge, lt, le or pr"));
            }
        };
        let value = match self.next() {
            Some(Token::Str(s)) => Value::String(s),
            Some(Token::Word(w)) => match w.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => match w.parse::<f64>() {
                    Ok(n) => serde_json::Number::from_f64(n).map(Value::Number).unwrap_or(Value::String(w)),
                    // A bare token (Entra's documentation has `externalId eq jyoung`).
                    Err(_) => Value::String(w),
                },
            },
            _ => return Err(format!("expected a value after '{attr}'")),
        };
        Ok(Filter::Compare(path, op, value))
    }
}

/// Parses a whole filter expression.
pub fn parse(input: &str) -> Result<Filter, String> {
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Err("the filter is empty".into());
    }
    let mut p = Parser { tokens, at: 0 };
    let f = p.or()?;
    if p.at < p.tokens.len() {
        return Err("unexpected text after the end of the filter (join expressions with 'and' or 'or')".into());
    }
    Ok(f)
}

/// Splits `urn:...:User:department`, `name.familyName` or `userName` into a path.
fn parse_path_word(word: &str) -> Result<Path, String> {
    let (extension, rest) = split_urn(word);
    let (attr, sub) = match rest.split_once('.') {
        Some((a, s)) => (a.to_string(), Some(s.to_string())),
        None => (rest.to_string(), None),
    };
    if attr.is_empty() || !attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$') {
        return Err(format!("'{word}' is not an attribute path"));
    }
    Ok(Path { extension, attr, filter: None, sub })
}

/// Separates a schema URN prefix from the attribute; core schema prefixes are dropped.
fn split_urn(word: &str) -> (Option<String>, &str) {
    for urn in [ENTERPRISE_USER, CORE_USER, CORE_GROUP] {
        if word.get(..urn.len()).is_some_and(|head| head.eq_ignore_ascii_case(urn))
            && word.as_bytes().get(urn.len()) == Some(&b':')
        {
            let rest = &word[urn.len() + 1..];
            return (if urn == ENTERPRISE_USER { Some(ENTERPRISE_USER.to_string()) } else { None }, rest);
        }
    }
    (None, word)
}

/// Parses a PATCH path: `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub`, or an
/// extension's `urn:...:attr`. A path that is only the extension URN targets the whole
/// extension object (attr = the URN).
pub fn parse_patch_path(path: &str) -> Result<Path, String> {
    let path = path.trim();
    if path.eq_ignore_ascii_case(ENTERPRISE_USER) {
        return Ok(Path { extension: None, attr: ENTERPRISE_USER.to_string(), filter: None, sub: None });
    }
    match path.find('[') {
        None => parse_path_word(path),
        Some(open) => {
            let close = path.rfind(']').ok_or_else(|| format!("'{path}': a '[' is not closed with ']'"))?;
            let mut p = parse_path_word(&path[..open])?;
            p.filter = Some(Box::new(parse(&path[open + 1..close])?));
            let tail = &path[close + 1..];
            if let Some(sub) = tail.strip_prefix('.') {
                p.sub = Some(sub.to_string());
            } else if !tail.is_empty() {
                return Err(format!("'{path}': unexpected '{tail}' after ']'"));
            }
            Ok(p)
        }
    }
}

/// The value of `key` in `obj`, matching the name case-insensitively.
pub fn get_ci<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

/// The object holding the path's attribute: the resource, or its extension object.
pub fn container<'a>(resource: &'a Value, path: &Path) -> Option<&'a Value> {
    match &path.extension {
        Some(urn) => get_ci(resource, urn),
        None => Some(resource),
    }
}

fn values_at<'a>(resource: &'a Value, path: &Path) -> Vec<&'a Value> {
    let Some(top) = container(resource, path).and_then(|c| get_ci(c, &path.attr)) else { return Vec::new() };
    let items: Vec<&Value> = match top {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    };
    let items = items.into_iter().filter(|v| path.filter.as_ref().is_none_or(|f| matches(f, v)));
    match &path.sub {
        None => items.collect(),
        Some(sub) => items.filter_map(|v| get_ci(v, sub)).filter(|v| !v.is_null()).collect(),
    }
}

fn case_exact(path: &Path) -> bool {
    path.extension.is_none() && (path.attr.eq_ignore_ascii_case("id") || path.attr.eq_ignore_ascii_case("externalId"))
}

fn compare(found: &Value, op: Op, wanted: &Value, exact: bool) -> bool {
    use std::cmp::Ordering;
    let ordering = match (found, wanted) {
        (Value::String(a), Value::String(b)) => {
            let (a, b) = if exact { (a.clone(), b.clone()) } else { (a.to_lowercase(), b.to_lowercase()) };
            match op {
                Op::Co => return a.contains(&b),
                Op::Sw => return a.starts_with(&b),
                Op::Ew => return a.ends_with(&b),
                _ => a.cmp(&b),
            }
        }
        (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
        // Entra may send booleans as strings.
        (Value::Bool(a), Value::String(b)) => match b.to_ascii_lowercase().as_str() {
            "true" => a.cmp(&true),
            "false" => a.cmp(&false),
            _ => return false,
        },
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Less),
            _ => return false,
        },
        _ => return false,
    };
    match op {
        Op::Eq => ordering == Ordering::Equal,
        Op::Ne => ordering != Ordering::Equal,
        Op::Gt => ordering == Ordering::Greater,
        Op::Ge => ordering != Ordering::Less,
        Op::Lt => ordering == Ordering::Less,
        Op::Le => ordering != Ordering::Greater,
        Op::Co | Op::Sw | Op::Ew => false,
    }
}

/// Whether the resource (or a multi-valued attribute's element) matches the filter.
pub fn matches(filter: &Filter, resource: &Value) -> bool {
    match filter {
        Filter::And(a, b) => matches(a, resource) && matches(b, resource),
        Filter::Or(a, b) => matches(a, resource) || matches(b, resource),
        Filter::Not(f) => !matches(f, resource),
        Filter::Present(path) => values_at(resource, path).iter().any(|v| match v {
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            Value::Null => false,
            _ => true,
        }),
        Filter::Compare(path, Op::Ne, wanted) => {
            !values_at(resource, path).iter().any(|v| compare(v, Op::Eq, wanted, case_exact(path)))
        }
        Filter::Compare(path, Op::Eq, Value::Null) => values_at(resource, path).is_empty(),
        Filter::Compare(path, op, wanted) => {
            values_at(resource, path).iter().any(|v| compare(v, *op, wanted, case_exact(path)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "id": "ID1", "userName": "Adele@Contoso.com", "externalId": "adele", "displayName": "Adele Vance",
            "active": true, "emails": [{"value": "adele@contoso.com", "type": "work", "primary": true}],
            "name": {"familyName": "Vance"},
            ENTERPRISE_USER: {"department": "Sales"}
        })
    }

    fn check(f: &str) -> bool {
        matches(&parse(f).unwrap(), &user())
    }

    #[test]
    fn filters_as_clients_send_them() {
        assert!(check(r#"userName eq "adele@contoso.com""#));
        assert!(check(r#"USERNAME EQ "ADELE@contoso.com""#));
        assert!(check("externalId eq adele"));
        assert!(!check(r#"externalId eq "ADELE""#));
        assert!(check(r#"displayName co "vance" and emails.value sw "adele@""#));
        assert!(check(r#"emails[type eq "work"].value eq "adele@contoso.com""#));
        assert!(check(r#"emails[type eq "work"]"#));
        assert!(check(r#"displayName eq "nobody" or name.familyName pr"#));
        assert!(check(r#"not (active eq false)"#));
        assert!(check(r#"active eq "True""#));
        assert!(check(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "sales""#));
        assert!(!check(r#"title pr"#));
        assert!(!check(r#"(userName eq "x" or displayName eq "y") and active eq true"#));
    }

    #[test]
    fn bad_filters_are_refused() {
        for bad in [
            "",
            "userName",
            "userName eq",
            "userName zz \"a\"",
            "(userName eq \"a\"",
            "userName eq \"a",
            "userName eq \"a\" extra",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patch_paths() {
        let p = parse_patch_path(r#"members[value eq "u1"]"#).unwrap();
        assert_eq!(p.attr, "members");
        assert!(p.filter.is_some());
        let p = parse_patch_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager").unwrap();
        assert_eq!((p.extension.as_deref(), p.attr.as_str()), (Some(ENTERPRISE_USER), "manager"));
        let p = parse_patch_path("name.givenName").unwrap();
        assert_eq!((p.attr.as_str(), p.sub.as_deref()), ("name", Some("givenName")));
    }
}
