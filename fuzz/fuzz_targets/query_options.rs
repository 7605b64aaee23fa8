//! Every query option parser must answer any input with a value or an error, never a
//! panic, and a filter that parses must print to text that parses to the same tree.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(expr) = grantry_odata::parse_filter(text) {
        let printed = expr.to_string();
        let again = grantry_odata::parse_filter(&printed).expect("printed filter re-parses");
        assert_eq!(again, expr, "round trip of {printed}");
    }
    let _ = grantry_odata::parse_orderby(text);
    let _ = grantry_odata::parse_select(text);
    let _ = grantry_odata::parse_expand(text);
    let pairs: Vec<(String, String)> = text
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect();
    let _ = grantry_odata::parse_query(&pairs);
});
