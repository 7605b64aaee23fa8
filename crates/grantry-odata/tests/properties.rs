//! Property tests: no input makes a parser panic, and printed syntax trees
//! parse back to themselves.

use grantry_odata::ast::{BinaryOp, Expr, Function, LambdaBody, LambdaKind, Literal};
use grantry_odata::{
    ExpandItem, OrderBy, QueryOptions, parse_expand, parse_filter, parse_orderby, parse_query, parse_select,
};
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------
// Arbitrary input never panics.

/// Pieces of OData syntax, so that random input gets deep into the parsers
/// rather than failing at the first character.
const FRAGMENTS: &[&str] = &[
    "a",
    "b/c",
    "x",
    "eq",
    "ne",
    "and",
    "or",
    "not",
    "in",
    "has",
    "any",
    "all",
    "true",
    "null",
    "'s'",
    "'",
    "''",
    "(",
    ")",
    ",",
    ":",
    "/",
    "*",
    ";",
    "=",
    "$filter=",
    "$expand=",
    "$select=",
    "$top=",
    "$orderby=",
    "desc",
    "1",
    "-2",
    "1.5",
    "1e",
    "2024-05-01",
    "2024-05-01T10:00:00Z",
    "T",
    "a914b616-e04e-476b-aa37-91038f0b165b",
    "guid'",
    "duration'P1D'",
    "ns.t'v'",
    "contains",
    "tolower",
    "substring",
    "startswith(",
    "x/any(y:",
    "\"",
    "é",
    "\u{0}",
    " ",
    "  ",
    "+",
    "-",
];

fn odata_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof![select(FRAGMENTS).prop_map(str::to_owned), "[ -~]{0,3}"], 0..40)
        .prop_map(|parts| parts.concat())
}

fn any_input() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), odata_soup(), "[a-z0-9 '()/,:;=$.*\"-]{0,60}"]
}

fn try_everything(input: &str) {
    let _ = parse_filter(input);
    let _ = parse_orderby(input);
    let _ = parse_select(input);
    let _ = parse_expand(input);
    for key in ["$filter", "$expand", "$top", "$count", "$search", "$x", "select"] {
        let _ = parse_query(&[(key.to_owned(), input.to_owned())]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsers_never_panic(input in any_input()) {
        try_everything(&input);
    }

    #[test]
    fn parse_query_never_panics(
        pairs in prop::collection::vec((any_input(), any_input()), 0..6),
    ) {
        let _ = parse_query(&pairs);
    }

    #[test]
    fn error_positions_are_within_the_input(input in any_input()) {
        if let Err(err) = parse_filter(&input) {
            prop_assert!(err.position <= input.len(), "{err} for {input:?}");
            prop_assert!(!err.message.is_empty());
        }
        if let Err(err) = parse_expand(&input) {
            prop_assert!(err.position <= input.len(), "{err} for {input:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// Printed trees re-parse to themselves.

const RESERVED: &[&str] = &[
    "and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "in", "has", "add", "sub", "mul", "div", "divby", "mod",
    "true", "false", "null", "any", "all",
];

fn ident() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,6}".prop_filter("keywords are not names", |name| {
        !RESERVED.iter().any(|keyword| keyword.eq_ignore_ascii_case(name))
    })
}

fn path() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(ident(), 1..4)
}

fn decimal() -> impl Strategy<Value = Literal> {
    (any::<bool>(), 0u32..100_000, "[0-9]{1,6}", prop::option::of(-30i32..30)).prop_map(
        |(negative, whole, fraction, exponent)| {
            let sign = if negative { "-" } else { "" };
            let exponent = exponent.map(|e| format!("e{e}")).unwrap_or_default();
            let text = format!("{sign}{whole}.{fraction}{exponent}");
            let value = text.parse().unwrap_or(0.0);
            Literal::Decimal { value, text }
        },
    )
}

fn date_text() -> impl Strategy<Value = String> {
    (0u32..10_000, 1u32..=12, 1u32..=28).prop_map(|(year, month, day)| format!("{year:04}-{month:02}-{day:02}"))
}

fn date_time_text() -> impl Strategy<Value = String> {
    (
        date_text(),
        0u32..24,
        0u32..60,
        prop::option::of((0u32..60, prop::option::of("[0-9]{1,7}"))),
        prop_oneof![
            Just("Z".to_owned()),
            (select(&["+", "-"][..]), 0u32..15, 0u32..60)
                .prop_map(|(sign, hours, minutes)| format!("{sign}{hours:02}:{minutes:02}")),
        ],
    )
        .prop_map(|(date, hour, minute, seconds, zone)| {
            let seconds = match seconds {
                None => String::new(),
                Some((second, None)) => format!(":{second:02}"),
                Some((second, Some(fraction))) => format!(":{second:02}.{fraction}"),
            };
            format!("{date}T{hour:02}:{minute:02}{seconds}{zone}")
        })
}

fn duration_text() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::option::of(0u32..1000), prop::option::of(0u32..24), prop::option::of(0u32..60))
        .prop_filter("a duration needs a component", |(_, d, h, m)| d.is_some() || h.is_some() || m.is_some())
        .prop_map(|(negative, days, hours, minutes)| {
            let mut text = if negative { "-P" } else { "P" }.to_owned();
            if let Some(days) = days {
                text.push_str(&format!("{days}D"));
            }
            if hours.is_some() || minutes.is_some() {
                text.push('T');
                if let Some(hours) = hours {
                    text.push_str(&format!("{hours}H"));
                }
                if let Some(minutes) = minutes {
                    text.push_str(&format!("{minutes}M"));
                }
            }
            text
        })
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        Just(Literal::Null),
        any::<bool>().prop_map(Literal::Boolean),
        any::<i64>().prop_map(Literal::Integer),
        decimal(),
        any::<String>().prop_map(Literal::String),
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".prop_map(Literal::Guid),
        date_time_text().prop_map(Literal::DateTimeOffset),
        date_text().prop_map(Literal::Date),
        duration_text().prop_map(Literal::Duration),
        (
            "[a-z]{1,8}(\\.[a-zA-Z]{1,8}){1,2}",
            any::<String>().prop_filter("enum members are not empty", |v| !v.is_empty()),
        )
            .prop_map(|(type_name, value)| Literal::Enum { type_name, value }),
    ]
}

fn binary_op() -> impl Strategy<Value = BinaryOp> {
    select(
        &[
            BinaryOp::Eq,
            BinaryOp::Ne,
            BinaryOp::Gt,
            BinaryOp::Ge,
            BinaryOp::Lt,
            BinaryOp::Le,
            BinaryOp::And,
            BinaryOp::Or,
        ][..],
    )
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![literal().prop_map(Expr::Literal), path().prop_map(Expr::Path)];
    leaf.prop_recursive(5, 48, 4, |inner| {
        let args = inner.clone();
        let call = select(&Function::ALL[..]).prop_flat_map(move |function| {
            let (min, max) = function.arity();
            prop::collection::vec(args.clone(), min..=max).prop_map(move |args| Expr::Call { function, args })
        });
        let lambda =
            (path(), any::<bool>(), prop::option::of((ident(), inner.clone()))).prop_map(|(path, all, body)| {
                let body = body.map(|(variable, predicate)| LambdaBody { variable, predicate: Box::new(predicate) });
                // `all()` without a condition is not valid OData.
                let kind = if all && body.is_some() { LambdaKind::All } else { LambdaKind::Any };
                Expr::Lambda { path, kind, body }
            });
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            (binary_op(), inner.clone(), inner.clone()).prop_map(|(op, left, right)| Expr::binary(op, left, right)),
            (inner.clone(), prop::collection::vec(inner.clone(), 1..4))
                .prop_map(|(operand, values)| Expr::In { operand: Box::new(operand), values }),
            call,
            lambda,
        ]
    })
}

fn select_item() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![1 => Just(vec!["*".to_owned()]), 4 => path()]
}

fn orderby() -> impl Strategy<Value = OrderBy> {
    (path(), any::<bool>()).prop_map(|(path, descending)| OrderBy { path, descending })
}

/// Options as `$expand` items carry them (no `$skiptoken`).
fn nested_options(depth: u32) -> BoxedStrategy<QueryOptions> {
    let expand =
        if depth == 0 { Just(Vec::new()).boxed() } else { prop::collection::vec(expand_item(depth - 1), 0..3).boxed() };
    (
        prop::option::of(expr()),
        prop::option::of(prop::collection::vec(select_item(), 1..4)),
        expand,
        prop::collection::vec(orderby(), 0..3),
        prop::option::of(any::<u64>()),
        prop::option::of(any::<u64>()),
        any::<bool>(),
        prop::option::of("[a-z ]{0,12}"),
    )
        .prop_map(|(filter, select, expand, orderby, top, skip, count, search)| QueryOptions {
            filter,
            select,
            expand,
            orderby,
            top,
            skip,
            skiptoken: None,
            count,
            search,
        })
        .boxed()
}

fn expand_item(depth: u32) -> BoxedStrategy<ExpandItem> {
    (prop_oneof![1 => Just(vec!["*".to_owned()]), 4 => path()], nested_options(depth))
        .prop_map(|(path, options)| ExpandItem { path, options })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn printed_filter_reparses_to_the_same_tree(expr in expr()) {
        let printed = expr.to_string();
        let reparsed = parse_filter(&printed);
        prop_assert_eq!(reparsed.as_ref(), Ok(&expr), "printed as {:?}", printed);
    }

    #[test]
    fn printed_query_options_reparse_to_the_same_options(
        mut options in nested_options(2),
        skiptoken in prop::option::of(any::<String>()),
    ) {
        options.skiptoken = skiptoken;
        let pairs = options.to_pairs();
        // Very large generated trees may exceed the input limit; skip those.
        prop_assume!(pairs.iter().all(|(_, v)| v.len() <= grantry_odata::MAX_INPUT_LEN));
        prop_assert_eq!(parse_query(&pairs), Ok(options), "printed as {:?}", pairs);
    }
}
