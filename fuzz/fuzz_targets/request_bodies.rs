//! The request-body parsers (policies in both dialects, assignment requests) must answer
//! any JSON with a value or an error naming the problem, never a panic.

#![no_main]

use grantry_graph::{Body, Dialect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let _ = grantry_graph::request::parse_new_request(&json);
    if let Ok(body) = Body::root(&json) {
        let _ = grantry_graph::policy::parse_policy(&body, Dialect::V1);
        let _ = grantry_graph::policy::parse_policy(&body, Dialect::Beta);
        let _ = grantry_graph::policy::parse_subject_set(&body);
    }
});
