//! `$filter` parsing: real-world filters, every construct, precedence.

use grantry_odata::ast::{BinaryOp, Expr, Function, LambdaBody, LambdaKind, Literal};
use grantry_odata::parse_filter;

fn parse(input: &str) -> Expr {
    parse_filter(input).unwrap_or_else(|err| panic!("{input:?} should parse: {err}"))
}

fn path(text: &str) -> Expr {
    Expr::path(text.split('/'))
}

fn s(value: &str) -> Expr {
    Expr::string(value)
}

fn int(value: i64) -> Expr {
    Expr::integer(value)
}

fn lit(literal: Literal) -> Expr {
    Expr::Literal(literal)
}

fn cmp(op: BinaryOp, left: Expr, right: Expr) -> Expr {
    Expr::binary(op, left, right)
}

fn eq(left: Expr, right: Expr) -> Expr {
    cmp(BinaryOp::Eq, left, right)
}

fn and(left: Expr, right: Expr) -> Expr {
    Expr::binary(BinaryOp::And, left, right)
}

fn or(left: Expr, right: Expr) -> Expr {
    Expr::binary(BinaryOp::Or, left, right)
}

fn not(operand: Expr) -> Expr {
    Expr::Not(Box::new(operand))
}

fn call(function: Function, args: Vec<Expr>) -> Expr {
    Expr::Call { function, args }
}

/// Parses, checks the AST, and checks that the canonical form re-parses to it.
fn check(input: &str, expected: Expr) {
    let parsed = parse(input);
    assert_eq!(parsed, expected, "parsing {input:?}");
    let printed = parsed.to_string();
    assert_eq!(parse(&printed), expected, "re-parsing {printed:?}");
}

#[test]
fn real_world_access_package_and_state() {
    check(
        "accessPackage/id eq 'a914b616-e04e-476b-aa37-91038f0b165b' and state eq 'Delivered'",
        and(eq(path("accessPackage/id"), s("a914b616-e04e-476b-aa37-91038f0b165b")), eq(path("state"), s("Delivered"))),
    );
}

#[test]
fn real_world_contains_tolower() {
    check(
        "contains(tolower(displayName),'staff')",
        call(Function::Contains, vec![call(Function::ToLower, vec![path("displayName")]), s("staff")]),
    );
}

#[test]
fn real_world_parenthesised_resource_filter() {
    check(
        "(originSystem eq 'AadGroup' and resource/id eq '8ef2e2e5-0f68-4d8c-9a23-8dc5c7b7fb3a')",
        and(
            eq(path("originSystem"), s("AadGroup")),
            eq(path("resource/id"), s("8ef2e2e5-0f68-4d8c-9a23-8dc5c7b7fb3a")),
        ),
    );
}

#[test]
fn real_world_request_state() {
    check("(requestState eq 'PendingApproval')", eq(path("requestState"), s("PendingApproval")));
}

#[test]
fn real_world_target_object_id() {
    check(
        "target/objectid eq '7deff43e-1f17-44ef-9e5f-d516b0ba11d4'",
        eq(path("target/objectid"), s("7deff43e-1f17-44ef-9e5f-d516b0ba11d4")),
    );
}

#[test]
fn real_world_created_after_and_not_denied() {
    check(
        "createdDateTime ge 2024-01-01T00:00:00Z and not (state eq 'denied')",
        and(
            cmp(BinaryOp::Ge, path("createdDateTime"), lit(Literal::DateTimeOffset("2024-01-01T00:00:00Z".into()))),
            not(eq(path("state"), s("denied"))),
        ),
    );
}

#[test]
fn real_world_lambda_any() {
    check(
        "specificAllowedTargets/any(t: t/groupId eq 'x')",
        Expr::Lambda {
            path: vec!["specificAllowedTargets".into()],
            kind: LambdaKind::Any,
            body: Some(LambdaBody { variable: "t".into(), predicate: Box::new(eq(path("t/groupId"), s("x"))) }),
        },
    );
}

#[test]
fn real_world_in_list() {
    check(
        "state in ('delivered', 'partiallyDelivered')",
        Expr::In { operand: Box::new(path("state")), values: vec![s("delivered"), s("partiallyDelivered")] },
    );
}

#[test]
fn real_world_escaped_quote() {
    check("displayName eq 'O''Brien'", eq(path("displayName"), s("O'Brien")));
}

#[test]
fn graph_property_paths() {
    for text in [
        "accessPackage/id",
        "target/objectId",
        "assignmentPolicy/id",
        "catalog/id",
        "requestor/objectId",
        "resource/id",
    ] {
        check(&format!("{text} eq 'x'"), eq(path(text), s("x")));
    }
}

#[test]
fn all_comparison_operators() {
    for op in BinaryOp::COMPARISONS {
        check(&format!("a {op} 1"), cmp(op, path("a"), int(1)));
    }
}

#[test]
fn keywords_are_case_insensitive_and_names_kept_as_written() {
    check(
        "DisplayName EQ 'x' And NOT Enabled Eq TRUE Or Id IN ('a')",
        or(
            and(eq(path("DisplayName"), s("x")), not(eq(path("Enabled"), lit(Literal::Boolean(true))))),
            Expr::In { operand: Box::new(path("Id")), values: vec![s("a")] },
        ),
    );
    check(
        "STARTSWITH(displayName,'a') and ToLower(x) eq 'b'",
        and(
            call(Function::StartsWith, vec![path("displayName"), s("a")]),
            eq(call(Function::ToLower, vec![path("x")]), s("b")),
        ),
    );
    check("a eq NULL", eq(path("a"), lit(Literal::Null)));
    check("a eq False", eq(path("a"), lit(Literal::Boolean(false))));
}

#[test]
fn precedence_or_binds_loosest() {
    check("a eq 1 or b eq 2 and c eq 3", or(eq(path("a"), int(1)), and(eq(path("b"), int(2)), eq(path("c"), int(3)))));
}

#[test]
fn precedence_not_applies_to_the_comparison() {
    check("not a eq 1 and b eq 2", and(not(eq(path("a"), int(1))), eq(path("b"), int(2))));
}

#[test]
fn precedence_parentheses_override() {
    check(
        "(a eq 1 or b eq 2) and c eq 3",
        and(or(eq(path("a"), int(1)), eq(path("b"), int(2))), eq(path("c"), int(3))),
    );
}

#[test]
fn logical_operators_are_left_associative() {
    check("a or b or c", or(or(path("a"), path("b")), path("c")));
    check("a and b and c", and(and(path("a"), path("b")), path("c")));
    check("a or (b or c)", or(path("a"), or(path("b"), path("c"))));
}

#[test]
fn not_nests_and_applies_to_bare_operands() {
    check("not not a", not(not(path("a"))));
    check("not contains(displayName,'x')", not(call(Function::Contains, vec![path("displayName"), s("x")])));
    check("not(a)", not(path("a")));
}

#[test]
fn redundant_parentheses_and_spaces() {
    check("  ((( a   eq   1 )))   and ( ( b ) eq ( 'x' ) ) ", and(eq(path("a"), int(1)), eq(path("b"), s("x"))));
    check("a eq 1\tand\nb eq 2", and(eq(path("a"), int(1)), eq(path("b"), int(2))));
}

#[test]
fn in_list_variants() {
    check("state in ('a')", Expr::In { operand: Box::new(path("state")), values: vec![s("a")] });
    check(
        "id in (1,2,3) and x eq 1",
        and(Expr::In { operand: Box::new(path("id")), values: vec![int(1), int(2), int(3)] }, eq(path("x"), int(1))),
    );
    check(
        "not state in ( 'a' , 'b' )",
        not(Expr::In { operand: Box::new(path("state")), values: vec![s("a"), s("b")] }),
    );
}

#[test]
fn every_function() {
    let cases = [
        ("startswith(a,'x')", Function::StartsWith, 2),
        ("endswith(a,'x')", Function::EndsWith, 2),
        ("contains(a,'x')", Function::Contains, 2),
        ("tolower(a)", Function::ToLower, 1),
        ("toupper(a)", Function::ToUpper, 1),
        ("trim(a)", Function::Trim, 1),
        ("length(a)", Function::Length, 1),
        ("indexof(a,'x')", Function::IndexOf, 2),
        ("concat(a,'x')", Function::Concat, 2),
        ("substring(a,1)", Function::Substring, 2),
        ("substring(a,1,2)", Function::Substring, 3),
    ];
    for (text, function, arity) in cases {
        let Expr::Call { function: parsed, args } = parse(text) else {
            panic!("{text} is not a call");
        };
        assert_eq!(parsed, function, "{text}");
        assert_eq!(args.len(), arity, "{text}");
        assert_eq!(args.first(), Some(&path("a")));
    }
    check(
        "length(trim(displayName)) gt 3",
        cmp(BinaryOp::Gt, call(Function::Length, vec![call(Function::Trim, vec![path("displayName")])]), int(3)),
    );
    check(
        "indexof(concat(a, 'b'), 'c') eq -1",
        eq(call(Function::IndexOf, vec![call(Function::Concat, vec![path("a"), s("b")]), s("c")]), int(-1)),
    );
}

#[test]
fn lambdas() {
    check("members/any()", Expr::Lambda { path: vec!["members".into()], kind: LambdaKind::Any, body: None });
    check(
        "a/b/ALL(x: x/state eq 'active' and x/c/any(y: y eq 1))",
        Expr::Lambda {
            path: vec!["a".into(), "b".into()],
            kind: LambdaKind::All,
            body: Some(LambdaBody {
                variable: "x".into(),
                predicate: Box::new(and(
                    eq(path("x/state"), s("active")),
                    Expr::Lambda {
                        path: vec!["x".into(), "c".into()],
                        kind: LambdaKind::Any,
                        body: Some(LambdaBody { variable: "y".into(), predicate: Box::new(eq(path("y"), int(1))) }),
                    },
                )),
            }),
        },
    );
    check(
        "not tags/any(t:t eq 'x') or tags/any()",
        or(
            not(Expr::Lambda {
                path: vec!["tags".into()],
                kind: LambdaKind::Any,
                body: Some(LambdaBody { variable: "t".into(), predicate: Box::new(eq(path("t"), s("x"))) }),
            }),
            Expr::Lambda { path: vec!["tags".into()], kind: LambdaKind::Any, body: None },
        ),
    );
}

#[test]
fn string_literals() {
    check("a eq ''", eq(path("a"), s("")));
    check("a eq ''''", eq(path("a"), s("'")));
    check("a eq 'x y (z), and eq'", eq(path("a"), s("x y (z), and eq")));
    check("a eq 'ünïcödé ✓'", eq(path("a"), s("ünïcödé ✓")));
    check("a eq 'a+b'", eq(path("a"), s("a+b")));
    check("a eq'x'", eq(path("a"), s("x")));
}

#[test]
fn numeric_literals() {
    check("a eq 42", eq(path("a"), int(42)));
    check("a eq -42", eq(path("a"), int(-42)));
    check("a eq 9223372036854775807", eq(path("a"), int(i64::MAX)));
    check("a eq -9223372036854775808", eq(path("a"), int(i64::MIN)));
    for (text, value) in [("1.5", 1.5), ("-0.25", -0.25), ("1e3", 1000.0), ("2.5E-2", 0.025), ("1.10", 1.1)] {
        check(
            &format!("a lt {text}"),
            cmp(BinaryOp::Lt, path("a"), lit(Literal::Decimal { value, text: text.into() })),
        );
    }
}

#[test]
fn guid_literals() {
    let guid = "a914b616-e04e-476b-aa37-91038f0b165b";
    check(&format!("id eq {guid}"), eq(path("id"), lit(Literal::Guid(guid.into()))));
    check("id eq A914B616-E04E-476B-AA37-91038F0B165B", eq(path("id"), lit(Literal::Guid(guid.into()))));
    check(
        "id eq 7deff43e-1f17-44ef-9e5f-d516b0ba11d4",
        eq(path("id"), lit(Literal::Guid("7deff43e-1f17-44ef-9e5f-d516b0ba11d4".into()))),
    );
    check(&format!("id eq guid'{}'", guid.to_uppercase()), eq(path("id"), lit(Literal::Guid(guid.into()))));
    check(&format!("id eq GUID'{guid}'"), eq(path("id"), lit(Literal::Guid(guid.into()))));
}

#[test]
fn temporal_literals() {
    for text in ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00.1234567+00:00", "2024-05-01T10:00-08:00"] {
        check(&format!("d ge {text}"), cmp(BinaryOp::Ge, path("d"), lit(Literal::DateTimeOffset(text.into()))));
    }
    check("d eq 2024-05-01", eq(path("d"), lit(Literal::Date("2024-05-01".into()))));
    check(
        "d ge 2024-05-01 and d lt 2024-06-01",
        and(
            cmp(BinaryOp::Ge, path("d"), lit(Literal::Date("2024-05-01".into()))),
            cmp(BinaryOp::Lt, path("d"), lit(Literal::Date("2024-06-01".into()))),
        ),
    );
}

#[test]
fn duration_literals() {
    check("duration eq duration'P30D'", eq(path("duration"), lit(Literal::Duration("P30D".into()))));
    check("d le duration'PT12H30M'", cmp(BinaryOp::Le, path("d"), lit(Literal::Duration("PT12H30M".into()))));
}

#[test]
fn enum_literals() {
    check(
        "state eq microsoft.graph.accessPackageRequestState'delivered'",
        eq(
            path("state"),
            lit(Literal::Enum {
                type_name: "microsoft.graph.accessPackageRequestState".into(),
                value: "delivered".into(),
            }),
        ),
    );
    check(
        "state in (microsoft.graph.s'a', microsoft.graph.s'b,c')",
        Expr::In {
            operand: Box::new(path("state")),
            values: vec![
                lit(Literal::Enum { type_name: "microsoft.graph.s".into(), value: "a".into() }),
                lit(Literal::Enum { type_name: "microsoft.graph.s".into(), value: "b,c".into() }),
            ],
        },
    );
}

#[test]
fn literal_on_the_left_and_literal_alone() {
    check("'x' eq a", eq(s("x"), path("a")));
    check("true", lit(Literal::Boolean(true)));
    check("isEnabled", path("isEnabled"));
}

#[test]
fn qualified_path_segments() {
    check("microsoft.graph.group/displayName eq 'x'", eq(path("microsoft.graph.group/displayName"), s("x")));
}

#[test]
fn canonical_form() {
    let cases = [
        ("(a EQ 1)  OR ((b eq 2) AND (c eq 3))", "a eq 1 or b eq 2 and c eq 3"),
        ("NOT (a eq 1)", "not a eq 1"),
        ("not (a or b)", "not (a or b)"),
        ("state IN ('a' , 'b')", "state in ('a','b')"),
        ("X/Any( t : t/Y eq 'O''B' )", "X/any(t: t/Y eq 'O''B')"),
        ("id eq GUID'A914B616-E04E-476B-AA37-91038F0B165B'", "id eq a914b616-e04e-476b-aa37-91038f0b165b"),
    ];
    for (input, canonical) in cases {
        assert_eq!(parse(input).to_string(), canonical, "{input}");
    }
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let depth = grantry_odata::MAX_DEPTH;
    let input = format!("{}a eq 1{}", "(".repeat(depth), ")".repeat(depth));
    assert_eq!(parse(&input), eq(path("a"), int(1)));
    let nots = format!("{}a", "not ".repeat(depth));
    assert!(parse_filter(&nots).is_ok());
}

#[test]
fn long_flat_chains_parse_and_print() {
    // Each `or` deepens the (left-leaning) tree; the input limit bounds how
    // deep it can get, and printing and dropping such a tree must not overflow.
    let input = vec!["a"; 1600].join(" or ");
    assert!(input.len() <= grantry_odata::MAX_INPUT_LEN);
    let expr = parse(&input);
    assert_eq!(expr.to_string(), input);
}
