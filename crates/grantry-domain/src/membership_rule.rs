//! Entra's dynamic membership rule syntax, as automatic assignment policies use it in
//! `attributeRuleMembers.membershipRule`: `(user.department -eq "Sales") -and
//! -not (user.jobTitle -startsWith "Intern")`.
//!
//! Supported: comparisons of a user property with `-eq -ne -startsWith -notStartsWith
//! -contains -notContains -match -notMatch -in -notIn`, combined with `-and`, `-or` and
//! `-not` (also `!`) and parentheses. Values are double-quoted (or single-quoted) strings,
//! `true`/`false`, `null`, and `["a", "b"]` lists for `-in`/`-notIn`; inside a string a
//! backtick escapes the next character (`"say `"hi`""`), as in Entra. Operators and
//! property names are case-insensitive; comparisons of text ignore case, as Entra's do;
//! `-match` is a regular expression search (not anchored), also ignoring case.
//!
//! A rule is parsed once ([`Rule::parse`]); errors name the 1-based character position
//! of the problem and what was expected there. Evaluation needs only a way to read a
//! property ([`Subject`]), so it is the same whether the user comes from the database or a
//! test.

use regex_automata::meta::{Builder, Config, Regex};
use regex_automata::util::syntax;
use std::fmt;

/// The longest rule accepted, in characters (Entra's limit for dynamic group rules is
/// 3,072 characters).
pub const MAX_RULE_CHARS: usize = 3072;
/// How deeply parentheses and `-not` may nest.
const MAX_DEPTH: usize = 64;
/// Bound on a `-match` pattern's compiled program.
const NFA_SIZE_LIMIT: usize = 1 << 20;

/// A user property a rule can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    AccountEnabled,
    City,
    CompanyName,
    Country,
    Department,
    DisplayName,
    EmployeeId,
    EmployeeType,
    GivenName,
    JobTitle,
    Mail,
    MailNickname,
    ObjectId,
    OfficeLocation,
    PostalCode,
    PreferredLanguage,
    State,
    StreetAddress,
    Surname,
    UsageLocation,
    UserPrincipalName,
    UserType,
}

impl Property {
    /// Every property with its name after `user.`.
    pub const ALL: &'static [(Property, &'static str)] = &[
        (Property::AccountEnabled, "accountEnabled"),
        (Property::City, "city"),
        (Property::CompanyName, "companyName"),
        (Property::Country, "country"),
        (Property::Department, "department"),
        (Property::DisplayName, "displayName"),
        (Property::EmployeeId, "employeeId"),
        (Property::EmployeeType, "employeeType"),
        (Property::GivenName, "givenName"),
        (Property::JobTitle, "jobTitle"),
        (Property::Mail, "mail"),
        (Property::MailNickname, "mailNickname"),
        (Property::ObjectId, "objectId"),
        (Property::OfficeLocation, "physicalDeliveryOfficeName"),
        (Property::OfficeLocation, "officeLocation"),
        (Property::PostalCode, "postalCode"),
        (Property::PreferredLanguage, "preferredLanguage"),
        (Property::State, "state"),
        (Property::StreetAddress, "streetAddress"),
        (Property::Surname, "surname"),
        (Property::UsageLocation, "usageLocation"),
        (Property::UserPrincipalName, "userPrincipalName"),
        (Property::UserType, "userType"),
    ];

    fn parse(name: &str) -> Option<Property> {
        Self::ALL.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)).map(|(p, _)| *p)
    }

    pub fn name(self) -> &'static str {
        Self::ALL.iter().rev().find(|(p, _)| *p == self).map(|(_, n)| *n).unwrap_or("?")
    }

    fn is_bool(self) -> bool {
        self == Property::AccountEnabled
    }
}

/// A property's value as a rule sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr<'a> {
    Text(Option<&'a str>),
    Bool(bool),
}

/// What a rule is evaluated against.
pub trait Subject {
    fn attribute(&self, p: Property) -> Attr<'_>;
}

/// A parse error: where (1-based character position in the rule) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub position: usize,
    pub message: String,
    /// The rule text around the position, with `⟦here⟧` marking it.
    pub excerpt: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at position {}: {} (near {})", self.position, self.message, self.excerpt)
    }
}

impl std::error::Error for RuleError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    StartsWith,
    NotStartsWith,
    Contains,
    NotContains,
    Match,
    NotMatch,
    In,
    NotIn,
}

const OPS: &[(Op, &str)] = &[
    (Op::Eq, "-eq"),
    (Op::Ne, "-ne"),
    (Op::StartsWith, "-startsWith"),
    (Op::NotStartsWith, "-notStartsWith"),
    (Op::Contains, "-contains"),
    (Op::NotContains, "-notContains"),
    (Op::Match, "-match"),
    (Op::NotMatch, "-notMatch"),
    (Op::In, "-in"),
    (Op::NotIn, "-notIn"),
];

fn op_names() -> String {
    OPS.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
}

#[derive(Debug, Clone)]
enum Literal {
    Text(String),
    Bool(bool),
    Null,
}

#[derive(Debug, Clone)]
enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare { property: Property, op: Op, value: Literal },
    List { property: Property, negated: bool, values: Vec<Literal> },
    Regex { property: Property, negated: bool, regex: Regex },
}

/// A parsed membership rule.
#[derive(Debug, Clone)]
pub struct Rule {
    expr: Expr,
    text: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Bang,
    /// `-word`
    Dash(String),
    /// `user.name` or a bare word (`true`, `null`, …)
    Word(String),
    Str(String),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// 0-based character index where the token starts.
    at: usize,
}

fn describe(t: Option<&Token>) -> String {
    match t.map(|t| &t.tok) {
        None => "the end of the rule".into(),
        Some(Tok::LParen) => "'('".into(),
        Some(Tok::RParen) => "')'".into(),
        Some(Tok::LBracket) => "'['".into(),
        Some(Tok::RBracket) => "']'".into(),
        Some(Tok::Comma) => "','".into(),
        Some(Tok::Bang) => "'!'".into(),
        Some(Tok::Dash(w)) => format!("'-{w}'"),
        Some(Tok::Word(w)) => format!("'{w}'"),
        Some(Tok::Str(s)) => format!("the string \"{s}\""),
    }
}

struct Parser<'a> {
    chars: &'a [char],
    tokens: Vec<Token>,
    pos: usize,
}

impl Rule {
    /// Parses `text`; the error says where and what is wrong.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let chars: Vec<char> = text.chars().collect();
        if chars.len() > MAX_RULE_CHARS {
            return Err(error_at(
                &chars,
                MAX_RULE_CHARS,
                format!("the rule is {} characters long; the limit is {MAX_RULE_CHARS}", chars.len()),
            ));
        }
        let tokens = lex(&chars)?;
        let mut p = Parser { chars: &chars, tokens, pos: 0 };
        if p.tokens.is_empty() {
            return Err(error_at(
                &chars,
                0,
                "the rule is empty; write a comparison such as (user.department -eq \"Sales\")".into(),
            ));
        }
        let expr = p.or(0)?;
        if let Some(t) = p.peek() {
            let what = describe(Some(t));
            let hint = match t.tok {
                Tok::RParen => "a ')' without its '('",
                _ => "expected -and, -or or the end of the rule",
            };
            return Err(p.err_at(t.at, format!("unexpected {what}: {hint}")));
        }
        Ok(Rule { expr, text: text.to_string() })
    }

    /// The rule as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `s` satisfies the rule.
    pub fn matches(&self, s: &dyn Subject) -> bool {
        eval(&self.expr, s)
    }
}

fn error_at(chars: &[char], at: usize, message: String) -> RuleError {
    let at = at.min(chars.len());
    let from = at.saturating_sub(20);
    let to = (at + 20).min(chars.len());
    let before: String = chars[from..at].iter().collect();
    let after: String = chars[at..to].iter().collect();
    let excerpt = format!(
        "'{}{before}⟦here⟧{after}{}'",
        if from > 0 { "…" } else { "" },
        if to < chars.len() { "…" } else { "" }
    );
    RuleError { position: at + 1, message, excerpt }
}

fn lex(chars: &[char]) -> Result<Vec<Token>, RuleError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let at = i;
        let simple = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            ',' => Some(Tok::Comma),
            '!' => Some(Tok::Bang),
            _ => None,
        };
        if let Some(tok) = simple {
            out.push(Token { tok, at });
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' || c == '“' || c == '”' {
            let close = |x: char| if c == '\'' { x == '\'' } else { x == '"' || x == '”' || x == '“' };
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(error_at(
                            chars,
                            at,
                            format!(
                                "this string is never closed: add the closing {c} (write `{c} for a quote inside it)"
                            ),
                        ));
                    }
                    Some('`') => {
                        match chars.get(i + 1) {
                            Some(n) => s.push(*n),
                            None => {
                                return Err(error_at(
                                    chars,
                                    i,
                                    "a backtick must be followed by the character it escapes".into(),
                                ));
                            }
                        }
                        i += 2;
                    }
                    Some(x) if close(*x) => {
                        i += 1;
                        break;
                    }
                    Some(x) => {
                        s.push(*x);
                        i += 1;
                    }
                }
            }
            out.push(Token { tok: Tok::Str(s), at });
            continue;
        }
        if c == '-' {
            let mut j = i + 1;
            while j < chars.len() && chars[j].is_ascii_alphabetic() {
                j += 1;
            }
            if j == i + 1 {
                return Err(error_at(chars, at, "a '-' must start an operator such as -eq, -and or -not".into()));
            }
            out.push(Token { tok: Tok::Dash(chars[i + 1..j].iter().collect()), at });
            i = j;
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_alphanumeric() || matches!(chars[j], '_' | '.')) {
                j += 1;
            }
            out.push(Token { tok: Tok::Word(chars[i..j].iter().collect()), at });
            i = j;
            continue;
        }
        return Err(error_at(chars, at, format!("unexpected character '{c}'")));
    }
    Ok(out)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    fn end(&self) -> usize {
        self.chars.len()
    }

    fn here(&self) -> usize {
        self.peek().map(|t| t.at).unwrap_or(self.end())
    }

    fn err_at(&self, at: usize, message: String) -> RuleError {
        error_at(self.chars, at, message)
    }

    fn is_dash(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Dash(w), .. }) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self, depth: usize) -> Result<Expr, RuleError> {
        let mut left = self.and(depth)?;
        while self.is_dash("or") {
            self.next();
            let right = self.and(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, RuleError> {
        let mut left = self.unary(depth)?;
        while self.is_dash("and") {
            self.next();
            let right = self.unary(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, RuleError> {
        if depth >= MAX_DEPTH {
            return Err(self.err_at(self.here(), format!("the rule nests more than {MAX_DEPTH} levels deep")));
        }
        if self.is_dash("not") || matches!(self.peek(), Some(Token { tok: Tok::Bang, .. })) {
            self.next();
            return Ok(Expr::Not(Box::new(self.unary(depth + 1)?)));
        }
        if matches!(self.peek(), Some(Token { tok: Tok::LParen, .. })) {
            let open = self.next().map(|t| t.at).unwrap_or(0);
            let inner = self.or(depth + 1)?;
            return match self.next() {
                Some(Token { tok: Tok::RParen, .. }) => Ok(inner),
                other => {
                    let at = other.as_ref().map(|t| t.at).unwrap_or(self.end());
                    Err(self.err_at(
                        at,
                        format!(
                            "expected ')' to close the '(' at position {}, found {}",
                            open + 1,
                            describe(other.as_ref())
                        ),
                    ))
                }
            };
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, RuleError> {
        let t = self.next();
        let (name, at) = match &t {
            Some(Token { tok: Tok::Word(w), at }) => (w.clone(), *at),
            other => {
                let at = other.as_ref().map(|t| t.at).unwrap_or(self.end());
                return Err(self.err_at(
                    at,
                    format!("expected a user property such as user.department, found {}", describe(other.as_ref())),
                ));
            }
        };
        let property = match name.split_once('.') {
            Some((obj, prop)) if obj.eq_ignore_ascii_case("user") => Property::parse(prop).ok_or_else(|| {
                self.err_at(
                    at + 5,
                    format!(
                        "'{prop}' is not a user property rules can test; use one of: {}",
                        Property::ALL.iter().map(|(_, n)| *n).collect::<Vec<_>>().join(", ")
                    ),
                )
            })?,
            Some((obj, _)) => {
                return Err(self.err_at(
                    at,
                    format!("rules of access package policies test users: write user.<property>, not {obj}.<property>"),
                ));
            }
            None => {
                return Err(
                    self.err_at(at, format!("expected a user property such as user.department, found '{name}'"))
                );
            }
        };
        let op_tok = self.next();
        let (op, op_at) = match &op_tok {
            Some(Token { tok: Tok::Dash(w), at }) => match OPS.iter().find(|(_, n)| n[1..].eq_ignore_ascii_case(w)) {
                Some((op, _)) => (*op, *at),
                None => {
                    return Err(
                        self.err_at(*at, format!("'-{w}' is not a comparison operator; use one of: {}", op_names()))
                    );
                }
            },
            other => {
                let at = other.as_ref().map(|t| t.at).unwrap_or(self.end());
                return Err(self.err_at(
                    at,
                    format!(
                        "expected an operator such as -eq after 'user.{}', found {}",
                        property.name(),
                        describe(other.as_ref())
                    ),
                ));
            }
        };
        let value_at = self.here();
        match op {
            Op::In | Op::NotIn => {
                let values = self.list(property)?;
                Ok(Expr::List { property, negated: op == Op::NotIn, values })
            }
            _ => {
                if property.is_bool() && !matches!(op, Op::Eq | Op::Ne) {
                    return Err(self.err_at(
                        op_at,
                        format!("user.{} is true or false: compare it with -eq or -ne", property.name()),
                    ));
                }
                let value = self.literal(property)?;
                match op {
                    Op::Match | Op::NotMatch => {
                        let Literal::Text(pattern) = value else {
                            return Err(self.err_at(value_at, "-match needs a quoted regular expression".into()));
                        };
                        let regex = compile_regex(&pattern).map_err(|why| {
                            self.err_at(value_at, format!("the regular expression does not compile: {why}"))
                        })?;
                        Ok(Expr::Regex { property, negated: op == Op::NotMatch, regex })
                    }
                    Op::StartsWith | Op::NotStartsWith | Op::Contains | Op::NotContains
                        if !matches!(value, Literal::Text(_)) =>
                    {
                        Err(self.err_at(value_at, format!("{} needs a quoted string", op_name(op))))
                    }
                    _ => Ok(Expr::Compare { property, op, value }),
                }
            }
        }
    }

    fn literal(&mut self, property: Property) -> Result<Literal, RuleError> {
        let t = self.next();
        let at = t.as_ref().map(|t| t.at).unwrap_or(self.end());
        let lit = match &t {
            Some(Token { tok: Tok::Str(s), .. }) => Literal::Text(s.clone()),
            Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case("true") => Literal::Bool(true),
            Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case("false") => Literal::Bool(false),
            Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case("null") => Literal::Null,
            other => {
                return Err(self.err_at(
                    at,
                    format!(
                        "expected a value (a quoted string, true, false or null), found {}",
                        describe(other.as_ref())
                    ),
                ));
            }
        };
        match (&lit, property.is_bool()) {
            (Literal::Text(s), true) => match s.to_ascii_lowercase().as_str() {
                "true" => Ok(Literal::Bool(true)),
                "false" => Ok(Literal::Bool(false)),
                _ => Err(self.err_at(at, format!("user.{} is true or false, not \"{s}\"", property.name()))),
            },
            (Literal::Bool(_), false) => {
                Err(self.err_at(at, format!("user.{} is text: put the value in double quotes", property.name())))
            }
            _ => Ok(lit),
        }
    }

    fn list(&mut self, property: Property) -> Result<Vec<Literal>, RuleError> {
        match self.next() {
            Some(Token { tok: Tok::LBracket, .. }) => {}
            other => {
                let at = other.as_ref().map(|t| t.at).unwrap_or(self.end());
                return Err(self.err_at(
                    at,
                    format!("-in and -notIn need a list such as [\"a\", \"b\"], found {}", describe(other.as_ref())),
                ));
            }
        }
        let mut values = Vec::new();
        if matches!(self.peek(), Some(Token { tok: Tok::RBracket, .. })) {
            self.next();
            return Ok(values);
        }
        loop {
            values.push(self.literal(property)?);
            match self.next() {
                Some(Token { tok: Tok::Comma, .. }) => {}
                Some(Token { tok: Tok::RBracket, .. }) => return Ok(values),
                other => {
                    let at = other.as_ref().map(|t| t.at).unwrap_or(self.end());
                    return Err(
                        self.err_at(at, format!("expected ',' or ']' in the list, found {}", describe(other.as_ref())))
                    );
                }
            }
        }
    }
}

fn op_name(op: Op) -> &'static str {
    OPS.iter().find(|(o, _)| *o == op).map(|(_, n)| *n).unwrap_or("?")
}

fn compile_regex(pattern: &str) -> Result<Regex, String> {
    Builder::new()
        .configure(Config::new().nfa_size_limit(Some(NFA_SIZE_LIMIT)))
        .syntax(syntax::Config::new().case_insensitive(true).nest_limit(MAX_DEPTH as u32))
        .build(pattern)
        .map_err(|e| e.to_string().lines().map(str::trim).rfind(|l| !l.is_empty()).unwrap_or_default().to_string())
}

fn text_eq(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

fn literal_eq(attr: &Attr, lit: &Literal) -> bool {
    match (attr, lit) {
        (Attr::Text(None), Literal::Null) => true,
        (Attr::Text(Some(a)), Literal::Text(b)) => text_eq(a, b),
        (Attr::Bool(a), Literal::Bool(b)) => a == b,
        _ => false,
    }
}

fn eval(e: &Expr, s: &dyn Subject) -> bool {
    match e {
        Expr::And(a, b) => eval(a, s) && eval(b, s),
        Expr::Or(a, b) => eval(a, s) || eval(b, s),
        Expr::Not(a) => !eval(a, s),
        Expr::Compare { property, op, value } => {
            let attr = s.attribute(*property);
            match op {
                Op::Eq => literal_eq(&attr, value),
                Op::Ne => !literal_eq(&attr, value),
                _ => {
                    let (Attr::Text(Some(a)), Literal::Text(b)) = (&attr, value) else {
                        // A missing value neither starts with nor contains anything.
                        return matches!(op, Op::NotStartsWith | Op::NotContains);
                    };
                    let (a, b) = (a.to_lowercase(), b.to_lowercase());
                    match op {
                        Op::StartsWith => a.starts_with(&b),
                        Op::NotStartsWith => !a.starts_with(&b),
                        Op::Contains => a.contains(&b),
                        Op::NotContains => !a.contains(&b),
                        _ => false,
                    }
                }
            }
        }
        Expr::List { property, negated, values } => {
            let attr = s.attribute(*property);
            values.iter().any(|v| literal_eq(&attr, v)) != *negated
        }
        Expr::Regex { property, negated, regex } => {
            let hit = match s.attribute(*property) {
                Attr::Text(Some(a)) => regex.is_match(a),
                _ => false,
            };
            hit != *negated
        }
    }
}

impl Subject for crate::model::User {
    fn attribute(&self, p: Property) -> Attr<'_> {
        fn t(v: &Option<String>) -> Attr<'_> {
            Attr::Text(v.as_deref())
        }
        let x = &self.profile;
        match p {
            Property::AccountEnabled => Attr::Bool(self.account_enabled),
            Property::City => t(&x.city),
            Property::CompanyName => t(&x.company_name),
            Property::Country => t(&x.country),
            Property::Department => t(&self.department),
            Property::DisplayName => Attr::Text(Some(&self.display_name)),
            Property::EmployeeId => t(&x.employee_id),
            Property::EmployeeType => t(&x.employee_type),
            Property::GivenName => t(&self.given_name),
            Property::JobTitle => t(&self.job_title),
            Property::Mail => t(&self.mail),
            Property::MailNickname => t(&self.mail_nickname),
            Property::ObjectId => Attr::Text(Some(&self.id)),
            Property::OfficeLocation => t(&x.office_location),
            Property::PostalCode => t(&x.postal_code),
            Property::PreferredLanguage => t(&x.preferred_language),
            Property::State => t(&x.state),
            Property::StreetAddress => t(&x.street_address),
            Property::Surname => t(&self.surname),
            Property::UsageLocation => t(&x.usage_location),
            Property::UserPrincipalName => Attr::Text(Some(&self.user_principal_name)),
            Property::UserType => Attr::Text(Some(self.user_type.v1())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct U(HashMap<&'static str, &'static str>, bool);

    impl Subject for U {
        fn attribute(&self, p: Property) -> Attr<'_> {
            if p == Property::AccountEnabled {
                return Attr::Bool(self.1);
            }
            Attr::Text(self.0.get(p.name()).copied())
        }
    }

    fn user(pairs: &[(&'static str, &'static str)]) -> U {
        U(pairs.iter().copied().collect(), true)
    }

    fn yes(rule: &str, u: &U) -> bool {
        Rule::parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}")).matches(u)
    }

    fn err(rule: &str) -> RuleError {
        Rule::parse(rule).expect_err(rule)
    }

    #[test]
    fn comparisons() {
        let u = user(&[("department", "Sales"), ("jobTitle", "Account Manager"), ("country", "FR")]);
        assert!(yes(r#"(user.department -eq "Sales")"#, &u));
        assert!(yes(r#"user.department -eq "sales""#, &u), "text comparisons ignore case");
        assert!(!yes(r#"user.department -ne "SALES""#, &u));
        assert!(yes(r#"user.jobTitle -startsWith "account""#, &u));
        assert!(!yes(r#"user.jobTitle -notStartsWith "Account""#, &u));
        assert!(yes(r#"user.jobTitle -contains "MANAGER""#, &u));
        assert!(yes(r#"user.jobTitle -notContains "intern""#, &u));
        assert!(yes(r#"user.jobTitle -match "^acc.*ger$""#, &u));
        assert!(yes(r#"user.jobTitle -notMatch "^intern""#, &u));
        assert!(yes(r#"user.country -in ["DE", "fr"]"#, &u));
        assert!(!yes(r#"user.country -notIn ["DE", "FR"]"#, &u));
        assert!(yes(r#"user.country -in ['DE', 'FR']"#, &u), "single quotes too");
        assert!(yes(r#"user.city -eq null"#, &u));
        assert!(!yes(r#"user.city -ne null"#, &u));
        assert!(!yes(r#"user.city -startsWith "P""#, &u), "a missing value starts with nothing");
        assert!(yes(r#"user.city -notContains "P""#, &u));
        assert!(yes(r#"user.accountEnabled -eq true"#, &u));
        assert!(yes(r#"user.accountEnabled -ne "false""#, &u));
        assert!(yes(r#"USER.DEPARTMENT -EQ "Sales""#, &u), "names and operators ignore case");
    }

    #[test]
    fn boolean_logic_and_precedence() {
        let u = user(&[("department", "Sales"), ("country", "FR")]);
        assert!(yes(r#"user.department -eq "Sales" -and user.country -eq "FR""#, &u));
        assert!(!yes(r#"user.department -eq "Sales" -and user.country -eq "DE""#, &u));
        assert!(yes(r#"user.department -eq "HR" -or user.country -eq "FR""#, &u));
        // -and binds tighter than -or.
        assert!(yes(r#"user.department -eq "Sales" -or user.country -eq "DE" -and user.city -eq "X""#, &u));
        assert!(!yes(r#"(user.department -eq "Sales" -or user.country -eq "DE") -and user.city -eq "X""#, &u));
        assert!(yes(r#"-not (user.department -eq "HR")"#, &u));
        assert!(!yes(r#"-not user.department -eq "Sales""#, &u));
        assert!(yes(r#"!(user.department -eq "HR") -and ((user.country -eq "FR"))"#, &u));
    }

    #[test]
    fn escapes() {
        let u = user(&[("jobTitle", "The \"Boss\"")]);
        assert!(yes("user.jobTitle -eq \"The `\"Boss`\"\"", &u));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let e = err(r#"(user.department -eqq "Sales")"#);
        assert_eq!(e.position, 18);
        assert!(e.message.contains("'-eqq' is not a comparison operator"), "{e}");
        assert!(e.to_string().contains("⟦here⟧-eqq"), "{e}");

        let e = err(r#"(user.department -eq "Sales""#);
        assert_eq!(e.position, 29, "just after the last character");
        assert!(e.message.contains("expected ')' to close the '(' at position 1"), "{e}");

        let e = err(r#"user.departement -eq "Sales""#);
        assert_eq!(e.position, 6);
        assert!(e.message.contains("'departement' is not a user property"), "{e}");

        let e = err(r#"user.department -eq "Sales"#);
        assert_eq!(e.position, 21);
        assert!(e.message.contains("never closed"), "{e}");

        let e = err(r#"user.department -eq "Sales")"#);
        assert_eq!(e.position, 28);
        assert!(e.message.contains("')' without its '('"), "{e}");

        let e = err(r#"user.department "Sales""#);
        assert_eq!(e.position, 17);
        assert!(e.message.contains("expected an operator"), "{e}");

        let e = err(r#"user.department -eq Sales"#);
        assert_eq!(e.position, 21);
        assert!(e.message.contains("expected a value"), "{e}");

        let e = err(r#"user.department -eq "a" -andd user.city -eq "b""#);
        assert_eq!(e.position, 25);

        let e = err(r#"user.accountEnabled -eq "yes""#);
        assert!(e.message.contains("true or false"), "{e}");
        let e = err(r#"user.accountEnabled -contains "t""#);
        assert!(e.message.contains("-eq or -ne"), "{e}");
        let e = err(r#"user.department -eq true"#);
        assert!(e.message.contains("double quotes"), "{e}");
        let e = err(r#"user.department -in "Sales""#);
        assert!(e.message.contains("need a list"), "{e}");
        let e = err(r#"user.department -match "(""#);
        assert!(e.message.contains("does not compile"), "{e}");
        let e = err(r#"device.deviceOSType -eq "iPad""#);
        assert!(e.message.contains("test users"), "{e}");
        let e = err("   ");
        assert!(e.message.contains("empty"), "{e}");
        let e = err(&format!("{}user.city -eq \"x\"{}", "(".repeat(100), ")".repeat(100)));
        assert!(e.message.contains("nests"), "{e}");
        let e = err(&"x".repeat(MAX_RULE_CHARS + 1));
        assert!(e.message.contains("limit"), "{e}");
        let e = err(r#"user.city -eq "a" & user.city -eq "b""#);
        assert!(e.message.contains("unexpected character '&'"), "{e}");
    }

    #[test]
    fn properties_have_names() {
        for (p, n) in Property::ALL {
            assert_eq!(Property::parse(n), Some(*p));
        }
        assert_eq!(Property::OfficeLocation.name(), "officeLocation");
    }
}
