//! `$orderby`, `$select`, `$expand`, the scalar options and `parse_query`.

use grantry_odata::ast::{BinaryOp, Expr};
use grantry_odata::{
    ExpandItem, MAX_DEPTH, OrderBy, ParseError, QueryOptions, parse_expand, parse_orderby, parse_query, parse_select,
};

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
}

fn query(items: &[(&str, &str)]) -> Result<QueryOptions, ParseError> {
    parse_query(&pairs(items))
}

fn segments(path: &str) -> Vec<String> {
    path.split('/').map(str::to_owned).collect()
}

fn order(path: &str, descending: bool) -> OrderBy {
    OrderBy { path: segments(path), descending }
}

fn expand(path: &str, options: QueryOptions) -> ExpandItem {
    ExpandItem { path: segments(path), options }
}

#[test]
fn orderby_items_and_directions() {
    assert_eq!(parse_orderby("displayName").expect("parses"), vec![order("displayName", false)]);
    assert_eq!(
        parse_orderby(" createdDateTime DESC , accessPackage/displayName asc,id ").expect("parses"),
        vec![order("createdDateTime", true), order("accessPackage/displayName", false), order("id", false),]
    );
}

#[test]
fn orderby_errors() {
    let err = parse_orderby("a up").expect_err("bad direction");
    assert_eq!((err.option, err.position), ("$orderby", 2));
    assert!(err.message.contains("expected 'asc' or 'desc'"), "{err}");

    let err = parse_orderby("a desc b").expect_err("missing comma");
    assert_eq!(err.position, 7);
    assert!(err.message.contains("separate $orderby items with ','"), "{err}");

    let err = parse_orderby("a,,b").expect_err("empty item");
    assert_eq!(err.position, 2);

    let err = parse_orderby("a, 1x desc").expect_err("bad name");
    assert_eq!(err.position, 3);
    assert!(err.message.contains("'1x' is not a valid property name"), "{err}");

    assert!(parse_orderby("").is_err());
    assert!(parse_orderby("a,").is_err());
    assert!(parse_orderby("*").is_err());
}

#[test]
fn select_paths_and_star() {
    assert_eq!(
        parse_select("id, displayName ,accessPackage/id").expect("parses"),
        vec![segments("id"), segments("displayName"), segments("accessPackage/id")]
    );
    assert_eq!(parse_select("*").expect("parses"), vec![segments("*")]);
    assert_eq!(
        parse_select("microsoft.graph.group/displayName").expect("parses"),
        vec![vec!["microsoft.graph.group".to_owned(), "displayName".to_owned()]]
    );
}

#[test]
fn select_errors() {
    let err = parse_select("id,,x").expect_err("empty item");
    assert_eq!((err.option, err.position), ("$select", 3));

    let err = parse_select("id, display name").expect_err("space in name");
    assert_eq!(err.position, 4);
    assert!(err.message.contains("'display name' is not a valid property name"));

    let err = parse_select("a//b").expect_err("empty segment");
    assert_eq!(err.position, 2);

    assert!(parse_select("").is_err());
    assert!(parse_select("a/*").is_err());
}

#[test]
fn expand_simple_and_star() {
    assert_eq!(
        parse_expand("accessPackage, target ,*").expect("parses"),
        vec![
            expand("accessPackage", QueryOptions::default()),
            expand("target", QueryOptions::default()),
            expand("*", QueryOptions::default()),
        ]
    );
}

#[test]
fn expand_with_options() {
    let items = parse_expand(
        "resourceRoleScopes($expand=role,scope;$select=id),accessPackageResourceRoleScopes($filter=originSystem eq 'AadGroup';$top=5;$orderby=createdDateTime desc)",
    )
    .expect("parses");
    assert_eq!(
        items,
        vec![
            expand(
                "resourceRoleScopes",
                QueryOptions {
                    expand: vec![expand("role", QueryOptions::default()), expand("scope", QueryOptions::default()),],
                    select: Some(vec![segments("id")]),
                    ..QueryOptions::default()
                }
            ),
            expand(
                "accessPackageResourceRoleScopes",
                QueryOptions {
                    filter: Some(Expr::binary(BinaryOp::Eq, Expr::path(["originSystem"]), Expr::string("AadGroup"),)),
                    top: Some(5),
                    orderby: vec![order("createdDateTime", true)],
                    ..QueryOptions::default()
                }
            ),
        ]
    );
}

#[test]
fn expand_commas_and_semicolons_inside_parentheses_and_quotes() {
    let items = parse_expand("a($select=x,y;$filter=n eq 'p,q;(r'),b").expect("parses");
    assert_eq!(items.len(), 2);
    assert_eq!(items.first().and_then(|item| item.options.select.clone()), Some(vec![segments("x"), segments("y")]));
    assert_eq!(
        items.first().and_then(|item| item.options.filter.clone()),
        Some(Expr::binary(BinaryOp::Eq, Expr::path(["n"]), Expr::string("p,q;(r"),))
    );
}

#[test]
fn expand_nested_and_option_name_forms() {
    let items = parse_expand("a(expand=b($SELECT=x;$Top=1);$count=true)").expect("parses");
    assert_eq!(
        items,
        vec![expand(
            "a",
            QueryOptions {
                expand: vec![expand(
                    "b",
                    QueryOptions { select: Some(vec![segments("x")]), top: Some(1), ..QueryOptions::default() }
                )],
                count: true,
                ..QueryOptions::default()
            }
        )]
    );
}

#[test]
fn expand_errors_point_into_the_whole_value() {
    let err = parse_expand("a,b($filter=n eq)").expect_err("bad nested filter");
    assert_eq!((err.option, err.position), ("$expand", 16));
    assert!(err.message.starts_with("in $filter of 'b': expected a property"), "{err}");

    let err = parse_expand("a($expand=b($filter=x eq 'y' z))").expect_err("deep error");
    assert_eq!(err.position, 29);
    assert!(err.message.starts_with("in $expand of 'a': in $filter of 'b': expected 'and' or 'or'"), "{err}");

    let err = parse_expand("a($top=-1)").expect_err("bad top");
    assert_eq!(err.position, 7);
    assert!(err.message.contains("non-negative integer"), "{err}");

    let err = parse_expand("a($levels=2)").expect_err("unsupported option");
    assert_eq!(err.position, 2);
    assert!(err.message.contains("'$levels'"), "{err}");

    let err = parse_expand("a($skiptoken=x)").expect_err("skiptoken");
    assert!(err.message.contains("'$skiptoken'"), "{err}");

    let err = parse_expand("a($top=1;$top=2)").expect_err("duplicate");
    assert!(err.message.contains("more than once"), "{err}");

    let err = parse_expand("a(x)").expect_err("no '='");
    assert!(err.message.contains("expected '='"), "{err}");

    let err = parse_expand("a()").expect_err("empty options");
    assert_eq!(err.position, 2);

    let err = parse_expand("a($top=1").expect_err("unclosed");
    assert_eq!(err.position, 8);
    assert!(err.message.contains("expected a closing ')'"), "{err}");

    let err = parse_expand("a)").expect_err("extra ')'");
    assert!(err.message.contains("unbalanced parentheses"), "{err}");

    let err = parse_expand("a($top=1)b").expect_err("text after ')'");
    assert_eq!(err.position, 9);

    let err = parse_expand("a($filter=x eq 'y)").expect_err("unterminated quote");
    assert!(err.message.contains("unterminated string literal"), "{err}");

    assert!(parse_expand("").is_err());
    assert!(parse_expand("a,,b").is_err());
    assert!(parse_expand("a/").is_err());
}

#[test]
fn expand_depth_limit() {
    let nested = |levels: usize| {
        let mut text = "x".to_owned();
        for _ in 1..levels {
            text = format!("x($expand={text})");
        }
        text
    };
    assert!(parse_expand(&nested(MAX_DEPTH)).is_ok());
    let err = parse_expand(&nested(MAX_DEPTH + 1)).expect_err("too deep");
    assert!(err.message.contains("nested too deeply"), "{err}");
}

#[test]
fn query_all_options() {
    let options = query(&[
        ("$filter", "state eq 'Delivered'"),
        ("$select", "id,state"),
        ("$expand", "target"),
        ("$orderby", "createdDateTime desc"),
        ("$top", "10"),
        ("$skip", "20"),
        ("$skiptoken", "opaque+token=="),
        ("$count", "TRUE"),
        ("$search", "\"displayName:staff\""),
    ])
    .expect("parses");
    assert_eq!(
        options,
        QueryOptions {
            filter: Some(Expr::binary(BinaryOp::Eq, Expr::path(["state"]), Expr::string("Delivered"),)),
            select: Some(vec![segments("id"), segments("state")]),
            expand: vec![expand("target", QueryOptions::default())],
            orderby: vec![order("createdDateTime", true)],
            top: Some(10),
            skip: Some(20),
            skiptoken: Some("opaque+token==".to_owned()),
            count: true,
            search: Some("displayName:staff".to_owned()),
        }
    );
}

#[test]
fn query_empty_and_unrelated_parameters() {
    assert_eq!(query(&[]).expect("parses"), QueryOptions::default());
    assert!(query(&[]).expect("parses").is_empty());
    assert_eq!(query(&[("api-version", "1"), ("foo", "bar")]).expect("parses"), QueryOptions::default());
}

#[test]
fn query_option_names_with_or_without_dollar_any_case() {
    let options = query(&[("$Filter", "a eq 1"), ("TOP", "3"), ("count", "false")]).expect("parses");
    assert!(options.filter.is_some());
    assert_eq!(options.top, Some(3));
    assert!(!options.count);
}

#[test]
fn query_duplicate_option_is_rejected() {
    let err = query(&[("$top", "1"), ("top", "2")]).expect_err("duplicate");
    assert_eq!(err.option, "$top");
    assert!(err.message.contains("more than once"), "{err}");

    let err = query(&[("$filter", "a eq 1"), ("$FILTER", "b eq 1")]).expect_err("duplicate");
    assert_eq!(err.option, "$filter");
}

#[test]
fn query_unknown_dollar_option_is_rejected() {
    let err = query(&[("$foo", "1")]).expect_err("unknown");
    assert_eq!(err.option, "query");
    assert!(err.message.contains("'$foo'"), "{err}");
    assert!(query(&[("$format", "json")]).is_err());
}

#[test]
fn query_scalar_option_errors() {
    for bad in ["-1", "1.5", "", " 1", "ten", "+1"] {
        let err = query(&[("$top", bad)]).expect_err("bad $top");
        assert_eq!(err.option, "$top");
        assert!(err.message.contains("non-negative integer"), "{err}");
    }
    let err = query(&[("$skip", "99999999999999999999999")]).expect_err("too large");
    assert!(err.message.contains("too large"), "{err}");
    assert_eq!(query(&[("$top", "0")]).expect("parses").top, Some(0));

    let err = query(&[("$count", "yes")]).expect_err("bad $count");
    assert_eq!(err.option, "$count");
    assert!(err.message.contains("'true' or 'false'"), "{err}");
}

#[test]
fn query_errors_name_their_option() {
    let err = query(&[("$select", "id"), ("$filter", "a eq")]).expect_err("bad filter");
    assert_eq!((err.option, err.position), ("$filter", 4));
    let err = query(&[("$orderby", "a sideways")]).expect_err("bad orderby");
    assert_eq!(err.option, "$orderby");
}

#[test]
fn search_quotes() {
    let search = |value: &str| query(&[("$search", value)]).expect("parses").search;
    assert_eq!(search("\"a b\""), Some("a b".to_owned()));
    assert_eq!(search("plain"), Some("plain".to_owned()));
    assert_eq!(search("\"\"x\"\""), Some("\"x\"".to_owned()));
    assert_eq!(search("\""), Some("\"".to_owned()));
    assert_eq!(search("\"unbalanced"), Some("\"unbalanced".to_owned()));
}

#[test]
fn to_pairs_round_trips() {
    let input = pairs(&[
        ("$filter", "STATE eq 'x' AND (a eq 1)"),
        ("$select", "id, state"),
        ("$expand", "target($select=id;$filter=startswith(displayName,'a');$expand=manager($top=1)),*"),
        ("$orderby", "a desc, b ASC"),
        ("$top", "10"),
        ("$skip", "5"),
        ("$skiptoken", "abc"),
        ("$count", "true"),
        ("$search", "\"hello world\""),
    ]);
    let options = parse_query(&input).expect("parses");
    let printed = options.to_pairs();
    assert_eq!(
        printed,
        pairs(&[
            ("$filter", "STATE eq 'x' and a eq 1"),
            ("$select", "id,state"),
            ("$expand", "target($filter=startswith(displayName,'a');$select=id;$expand=manager($top=1)),*",),
            ("$orderby", "a desc,b"),
            ("$top", "10"),
            ("$skip", "5"),
            ("$skiptoken", "abc"),
            ("$count", "true"),
            ("$search", "\"hello world\""),
        ])
    );
    assert_eq!(parse_query(&printed).expect("re-parses"), options);
}
