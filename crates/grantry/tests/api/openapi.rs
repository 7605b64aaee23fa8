//! The OpenAPI document: served at /openapi.json without a token, committed as
//! docs/openapi.json, and every operation in it is routed.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

#[tokio::test]
async fn openapi_document_is_served_and_matches_the_committed_file() {
    let app = TestApp::spawn().await;
    let resp = app.client.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let served = resp.text().await.unwrap();
    let doc: Value = serde_json::from_str(&served).expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let path = format!("{}/../../docs/openapi.json", env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != served {
        if std::env::var_os("GRANTRY_UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, &served).expect("write docs/openapi.json");
        } else {
            panic!(
                "docs/openapi.json differs from the document the route table generates; regenerate it with \
                 `GRANTRY_UPDATE_OPENAPI=1 cargo test -p grantry --test api openapi`"
            );
        }
    }
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::spawn().await;
    let doc = grantry_api::openapi::document();
    let paths = doc["paths"].as_object().unwrap();
    let mut missing = Vec::new();
    for (template, ops) in paths {
        let path: String = template
            .split('/')
            .map(|seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some("args") => "(on='target')".to_string(),
                Some(_) => grantry_domain::ids::new_id(),
                None => seg.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in ops.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut req = app.client.request(m.clone(), app.url(&path)).bearer_auth(&app.admin);
            if m != Method::GET && m != Method::DELETE {
                req = req.header("Content-Type", "application/json").body("{}");
            }
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null);
            let unknown = body["error"]["code"] == "UnknownResource" || status == StatusCode::METHOD_NOT_ALLOWED;
            assert!(!status.is_server_error(), "{m} {path}: {status} {body}");
            if unknown {
                missing.push(format!("{m} {template}"));
            }
        }
    }
    assert!(missing.is_empty(), "documented but not routed:\n{}", missing.join("\n"));
}
