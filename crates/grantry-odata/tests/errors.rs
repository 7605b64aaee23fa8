//! Errors: positions, messages, and the input limits.

use grantry_odata::{
    MAX_DEPTH, MAX_INPUT_LEN, ParseError, parse_expand, parse_filter, parse_orderby, parse_query, parse_select,
};

fn filter_error(input: &str) -> ParseError {
    match parse_filter(input) {
        Ok(expr) => panic!("{input:?} should not parse, got {expr:?}"),
        Err(err) => {
            assert_eq!(err.option, "$filter");
            err
        }
    }
}

/// Asserts the error position and that the message contains `fragment`.
fn assert_filter_error(input: &str, position: usize, fragment: &str) {
    let err = filter_error(input);
    assert_eq!(err.position, position, "position for {input:?}: {err}");
    assert!(err.message.contains(fragment), "message for {input:?} should contain {fragment:?}: {err}");
}

#[test]
fn display_format() {
    let err = filter_error("(a eq 1 or b eq 2");
    assert_eq!(
        err.to_string(),
        "Syntax error at position 17 in '$filter': expected a closing ')' for the '(' at position 0"
    );
}

#[test]
fn missing_operator_names_the_previous_token() {
    assert_filter_error("displayName 'x'", 12, "expected an operator such as 'eq' after 'displayName'");
    assert_filter_error("x eq 1 x", 7, "expected 'and' or 'or' after '1'");
    assert_filter_error("(a eq 1 b)", 8, "expected 'and' or 'or', or a closing ')', after '1'");
}

#[test]
fn unterminated_string() {
    assert_filter_error("a eq 'x' and b eq 'abc", 18, "unterminated string literal starting at position 18");
    assert_filter_error(
        "displayName eq 'O'Brien'",
        18,
        "expected 'and' or 'or' after 'O'; a quote inside a string must be doubled",
    );
}

#[test]
fn unknown_function() {
    assert_filter_error("a eq 1 and foo(a) eq 1", 11, "unknown function 'foo'");
    assert_filter_error("a/b(x)", 3, "only 'any' and 'all'");
    assert_filter_error("any(x: x eq 1)", 0, "must follow a collection path");
}

#[test]
fn unbalanced_parentheses() {
    assert_filter_error("a eq 1)", 6, "unbalanced parentheses: the ')' at position 6 has no matching '('");
    assert_filter_error("((a eq 1)", 9, "expected a closing ')' for the '(' at position 0");
    assert_filter_error("contains(a,'b'", 14, "expected a closing ')'");
}

#[test]
fn missing_operands() {
    assert_filter_error("a eq", 4, "after 'eq' but found the end of the input");
    assert_filter_error("a eq 1 and", 10, "after 'and'");
    assert_filter_error("eq 'x'", 0, "but found 'eq'");
    assert_filter_error("a eq )", 5, "but found ')'");
    assert_filter_error("a/", 2, "expected a property name after '/'");
    assert_filter_error("tolower(a,)", 10, "after ','");
}

#[test]
fn empty_filter() {
    assert_filter_error("", 0, "empty");
    assert_filter_error("   ", 0, "empty");
    assert_filter_error("()", 1, "but found ')'");
}

#[test]
fn unsupported_operators() {
    assert_filter_error("a has 'x'", 2, "'has' operator is not supported");
    assert_filter_error("a add 1 eq 2", 2, "arithmetic operator 'add'");
    assert_filter_error("a eq 1 eq 2", 7, "cannot be chained");
    assert_filter_error("a = 'x'", 2, "use 'eq'");
    assert_filter_error("a eq 1 && b eq 2", 7, "use 'and'");
    assert_filter_error("a eq \"x\"", 5, "single quotes");
    assert_filter_error("a+eq+1", 1, "unexpected character '+'");
    assert_filter_error("a eq not b", 5, "'not' cannot stand here");
}

#[test]
fn in_list_errors() {
    assert_filter_error("state in 'a'", 9, "expected '(' after 'in'");
    assert_filter_error("state in ()", 10, "at least one value");
    assert_filter_error("state in ('a' 'b')", 14, "or a closing ')'");
}

#[test]
fn function_arity() {
    assert_filter_error("startswith(a)", 0, "function 'startswith' takes 2 arguments but 1 was given");
    assert_filter_error("x eq tolower()", 5, "function 'tolower' takes 1 argument but 0 were given");
    assert_filter_error("substring(a,1,2,3) eq 'x'", 0, "takes 2 to 3 arguments but 4 were given");
    assert_filter_error("startswith(a 'x')", 13, "or ',' or ')'");
}

#[test]
fn lambda_errors() {
    assert_filter_error("a/any(x eq 1)", 8, "expected ':' after the range variable 'x'");
    assert_filter_error("a/all()", 6, "'all' needs a condition");
    assert_filter_error("a/any(: x)", 6, "expected a range variable");
    assert_filter_error("a/any(x: x eq 1", 15, "expected a closing ')'");
}

#[test]
fn literal_errors() {
    assert_filter_error("a eq 12abc", 5, "invalid number literal '12abc'");
    assert_filter_error("a eq 1.", 6, "expected digits after the decimal point");
    assert_filter_error("a eq 99999999999999999999", 5, "64-bit");
    assert_filter_error("a eq 1e999", 5, "out of range");
    assert_filter_error("a eq 2024-13-01", 5, "month 13 is out of range");
    assert_filter_error("a eq 2023-02-29", 5, "day 29 is out of range");
    assert_filter_error("a eq 2024-05-01T10:00:00", 5, "time zone");
    assert_filter_error("a eq 2024-05-01T24:00:00Z", 5, "out of range");
    assert_filter_error("a eq guid'xyz'", 9, "invalid GUID 'xyz'");
    assert_filter_error("a eq duration'30D'", 13, "invalid duration '30D'");
    assert_filter_error("a eq microsoft.graph.x''", 22, "needs a member name");
    assert_filter_error("a eq -", 5, "unexpected character '-'");
}

#[test]
fn positions_are_byte_offsets() {
    // 'é' is two bytes, so the error is at byte 10, not character 9.
    assert_filter_error("é eq 'x' y", 10, "after 'x'");
}

#[test]
fn nesting_limit() {
    let too_deep = MAX_DEPTH + 1;
    let input = format!("{}a eq 1{}", "(".repeat(too_deep), ")".repeat(too_deep));
    assert_filter_error(&input, MAX_DEPTH, "nested too deeply");

    let nots = format!("{}a", "not ".repeat(too_deep));
    assert_filter_error(&nots, 4 * MAX_DEPTH, "nested too deeply");

    let calls = format!("{}a{}", "tolower(".repeat(too_deep), ")".repeat(too_deep));
    assert_filter_error(&calls, 8 * MAX_DEPTH + 7, "nested too deeply");

    // Far deeper than the limit must still fail cleanly rather than overflow.
    let huge = "(".repeat(8000);
    assert_filter_error(&huge, MAX_DEPTH, "nested too deeply");
}

#[test]
fn input_length_limit() {
    let long = format!("a eq '{}'", "x".repeat(MAX_INPUT_LEN));
    let err = filter_error(&long);
    assert_eq!(err.position, MAX_INPUT_LEN);
    assert!(err.message.contains("too long"), "{err}");

    let at_limit = format!("a eq '{}'", "x".repeat(MAX_INPUT_LEN - 7));
    assert_eq!(at_limit.len(), MAX_INPUT_LEN);
    assert!(parse_filter(&at_limit).is_ok());

    let long_select = vec!["abc"; 3000].join(",");
    assert!(parse_select(&long_select).expect_err("too long").message.contains("too long"));
    assert!(parse_orderby(&long_select).is_err());
    assert!(parse_expand(&long_select).is_err());
    let pairs = vec![("$skiptoken".to_owned(), "x".repeat(MAX_INPUT_LEN + 1))];
    assert_eq!(parse_query(&pairs).expect_err("too long").option, "$skiptoken");
}
