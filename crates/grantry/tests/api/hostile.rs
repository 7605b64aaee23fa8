//! Hostile input: limits on bodies, query options and URLs, bytes that are not UTF-8, slow
//! clients, and random JSON posted to every create endpoint. The answer is always a 4xx in
//! Graph's error envelope (or a closed connection for a client too slow to send its
//! headers), never a 5xx.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends raw bytes as one HTTP/1.1 request and returns the status line and the rest.
async fn raw(app: &TestApp, request: &[u8]) -> String {
    let addr = app.server.as_ref().unwrap().addr;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> u16 {
    response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn a_huge_filter_is_a_400() {
    let app = TestApp::spawn().await;
    let filter = format!("displayName eq '{}'", "a".repeat(9 * 1024));
    for path in ["/v1.0/users", &em("v1.0", "accessPackages"), &em("v1.0", "assignmentRequests")] {
        let (status, body) = app.get(&app.admin, &format!("{path}?$filter={filter}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    // Deeply nested parentheses and long chains of `or` stay 400 too.
    let nested = format!("{}displayName eq 'a'{}", "(".repeat(2000), ")".repeat(2000));
    let chain = vec!["displayName eq 'a'"; 300].join(" or ");
    for filter in [nested, chain] {
        let (status, body) = app.get(&app.admin, &format!("{}?$filter={filter}", em("v1.0", "accessPackages"))).await;
        assert!(status.is_client_error() || status.is_success(), "{status} {body}");
    }
}

#[tokio::test]
async fn bytes_that_are_not_utf8_in_the_path_or_query_are_a_400() {
    let app = TestApp::spawn().await;
    let token = &app.admin;
    for path in [
        "/v1.0/users/%FF%FE".to_string(),
        format!("/v1.0/{EM}/accessPackages/%C3%28"),
        format!("/v1.0/{EM}/accessPackages('%FF')"),
        "/v1.0/users?$filter=displayName%20eq%20'%FF'".to_string(),
        "/v1.0/users?$select=%FF".to_string(),
        "/v1.0/users?%FF=1".to_string(),
        format!("/v1.0/{EM}/assignmentRequests/filterByCurrentUser(on='%FF')"),
    ] {
        let resp = app.client.get(app.url(&path)).bearer_auth(token).send().await.unwrap();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND, "{path}: {status} {body}");
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    // Raw bytes above 0x7F straight in the request line.
    let response = raw(&app, b"GET /v1.0/users/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    let status = status_of(&response);
    assert!((400..500).contains(&status) || response.is_empty(), "{response}");
}

#[tokio::test]
async fn very_long_urls_are_refused_without_a_5xx() {
    let app = TestApp::spawn().await;
    for len in [16 * 1024, 200 * 1024, 1024 * 1024] {
        let path = format!("/v1.0/users/{}", "a".repeat(len));
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            app.admin
        );
        let response = raw(&app, request.as_bytes()).await;
        let status = status_of(&response);
        assert!((400..500).contains(&status) || response.is_empty(), "{len}: {}", &response[..response.len().min(300)]);
        let query = format!("/v1.0/users?$search=\"{}\"", "a".repeat(len));
        let request = format!(
            "GET {query} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            app.admin
        );
        let response = raw(&app, request.as_bytes()).await;
        let status = status_of(&response);
        assert!((400..500).contains(&status) || response.is_empty(), "{len}: {}", &response[..response.len().min(300)]);
    }
    // The server still answers.
    assert_eq!(app.get(&app.admin, "/v1.0/users").await.0, StatusCode::OK);
}

#[tokio::test]
async fn oversized_and_deeply_nested_bodies_are_refused() {
    let app = TestApp::spawn_with(Options { body_limit: 64 * 1024, ..Options::default() }).await;
    let big = json!({ "displayName": "x".repeat(100 * 1024) });
    let (status, body) = app.post(&app.admin, &em("v1.0", "catalogs"), big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let deep = format!("{{\"displayName\": {}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let resp = app
        .client
        .post(app.url(&em("v1.0", "catalogs")))
        .bearer_auth(&app.admin)
        .header("Content-Type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

/// Opens a connection, sends `head`, then trickles `trickle` one byte every 300 ms; returns
/// how long until the server closed the connection (or answered).
async fn trickle(app: &TestApp, head: &str, trickle: &[u8]) -> (Duration, String) {
    let addr = app.server.as_ref().unwrap().addr;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let bytes = trickle.to_vec();
    let writer_task = tokio::spawn(async move {
        for b in bytes {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if writer.write_all(&[b]).await.is_err() {
                break;
            }
        }
    });
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), reader.read_to_end(&mut out)).await;
    writer_task.abort();
    assert!(read.is_ok(), "the server kept a slow client's connection open for 15 s");
    (started.elapsed(), String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn a_client_sending_headers_slowly_is_disconnected() {
    let app = TestApp::spawn_with(Options { read_timeout: Duration::from_secs(1), ..Options::default() }).await;
    let (elapsed, response) = trickle(
        &app,
        "GET /health HTTP/1.1\r\nHost: x\r\n",
        "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".as_bytes(),
    )
    .await;
    assert!(elapsed < Duration::from_secs(5), "disconnected only after {elapsed:?}");
    assert!(response.is_empty() || status_of(&response) == 408, "{response}");
    assert_eq!(app.get("", "/health").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_client_sending_its_body_slowly_is_refused() {
    let app = TestApp::spawn_with(Options { read_timeout: Duration::from_secs(1), ..Options::default() }).await;
    let body = json!({"displayName": "slow catalog"}).to_string();
    let head = format!(
        "POST /v1.0/{EM}/catalogs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        app.admin,
        body.len()
    );
    let (elapsed, response) = trickle(&app, &head, body.as_bytes()).await;
    assert!(elapsed < Duration::from_secs(5), "answered only after {elapsed:?}");
    let status = status_of(&response);
    assert!((400..500).contains(&status), "{response}");
    let (_, catalogs) = app.get(&app.admin, &em("v1.0", "catalogs")).await;
    assert!(!catalogs.to_string().contains("slow catalog"), "a timed-out body was acted upon");
}

// ---------------------------------------------------------------------------------------
// Random bodies through the real server.

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Property names the endpoints read, so random bodies reach past the first lookup.
    const KEYS: &[&str] = &[
        "displayName",
        "description",
        "catalog",
        "catalogId",
        "id",
        "accessPackage",
        "accessPackageId",
        "assignment",
        "assignmentPolicyId",
        "targetId",
        "target",
        "objectId",
        "email",
        "requestType",
        "justification",
        "schedule",
        "startDateTime",
        "expiration",
        "type",
        "endDateTime",
        "duration",
        "allowedTargetScope",
        "specificAllowedTargets",
        "requestorSettings",
        "requestApprovalSettings",
        "stages",
        "primaryApprovers",
        "questions",
        "answers",
        "resource",
        "originId",
        "originSystem",
        "role",
        "scope",
        "principalId",
        "roleDefinitionId",
        "appScopeId",
        "directoryScopeId",
        "userPrincipalName",
        "accountEnabled",
        "mailNickname",
        "securityEnabled",
        "mailEnabled",
        "@odata.type",
        "@odata.id",
        "isExternallyVisible",
        "state",
        "reviewResult",
        "isHidden",
        "automaticRequestSettings",
        "durationBeforeAutomaticDenial",
        "text",
        "choices",
        "isValidationOnly",
    ];

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            ".{0,40}".prop_map(Value::from),
            (0usize..200_000).prop_map(|n| Value::from("x".repeat(n))),
            prop::sample::select(vec![
                "adminAdd",
                "userAdd",
                "userRemove",
                "adminRemove",
                "userUpdate",
                "userExtend",
                "Approve",
                "Deny",
                "notSpecified",
                "allMemberUsers",
                "AadGroup",
                "P30D",
                "PT-1S",
                "P99999999D",
                "9999-12-31T23:59:59Z",
                "0000-01-01T00:00:00Z",
                "afterDuration",
                "afterDateTime",
                "noExpiration",
                "#microsoft.graph.singleUser",
                "#microsoft.graph.textInputQuestion",
                "00000000-0000-0000-0000-000000000000",
                "' or 1=1 --",
                "\u{0}",
                "/AccessPackageCatalog/x",
                "https://graph.microsoft.com/v1.0/users/x",
            ])
            .prop_map(Value::from),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(
                    (prop::sample::select(KEYS.to_vec()).prop_map(String::from), inner.clone()),
                    0..8
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                prop::collection::vec((".{0,12}", inner), 0..3).prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn body() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => prop::collection::vec((prop::sample::select(KEYS.to_vec()).prop_map(String::from), json_value()), 0..10)
                .prop_map(|kv| Value::Object(kv.into_iter().collect()).to_string()),
            1 => json_value().prop_map(|v| v.to_string()),
            // Deep nesting and broken JSON.
            1 => (1usize..200).prop_map(|n| format!("{{\"displayName\": {}1{}}}", "[".repeat(n), "]".repeat(n))),
            1 => ".{0,60}".prop_map(|s| format!("{{\"displayName\": \"{s}")),
        ]
    }

    #[test]
    fn random_json_bodies_never_yield_a_5xx() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (app, endpoints) = rt.block_on(async {
            let app = TestApp::spawn().await;
            let f = app.seed_package_with_group().await;
            let user = app.create_user("fuzzed").await;
            let (_, assignment) = app.admin_assign(&f, &user).await;
            let endpoints: Vec<(reqwest::Method, String)> = vec![
                (reqwest::Method::POST, em("v1.0", "catalogs")),
                (reqwest::Method::PATCH, em("v1.0", &format!("catalogs/{}", f.catalog_id))),
                (reqwest::Method::POST, em("v1.0", "accessPackages")),
                (reqwest::Method::PATCH, em("v1.0", &format!("accessPackages/{}", f.package_id))),
                (reqwest::Method::POST, em("v1.0", "assignmentPolicies")),
                (reqwest::Method::POST, format!("/beta/{EM}/accessPackageAssignmentPolicies")),
                (reqwest::Method::PUT, em("v1.0", &format!("assignmentPolicies/{}", f.self_policy_id))),
                (reqwest::Method::POST, em("v1.0", "assignmentRequests")),
                (reqwest::Method::POST, format!("/beta/{EM}/accessPackageAssignmentRequests")),
                (reqwest::Method::POST, format!("/beta/{EM}/accessPackageAssignments")),
                (reqwest::Method::POST, em("v1.0", &format!("assignments/{assignment}/reprocess"))),
                (reqwest::Method::POST, em("v1.0", "resourceRequests")),
                (reqwest::Method::POST, em("v1.0", &format!("accessPackages/{}/resourceRoleScopes", f.package_id))),
                (
                    reqwest::Method::POST,
                    em("v1.0", &format!("accessPackages/{}/incompatibleAccessPackages/$ref", f.package_id)),
                ),
                (
                    reqwest::Method::POST,
                    em("v1.0", &format!("accessPackages/{}/getApplicablePolicyRequirements", f.package_id)),
                ),
                (reqwest::Method::PATCH, em("v1.0", "settings")),
                (reqwest::Method::POST, "/v1.0/users".to_string()),
                (reqwest::Method::PATCH, format!("/v1.0/users/{user}")),
                (reqwest::Method::POST, "/v1.0/groups".to_string()),
                (reqwest::Method::POST, "/v1.0/roleManagement/entitlementManagement/roleAssignments".to_string()),
                (reqwest::Method::POST, "/v1.0/roleManagement/directory/roleAssignments".to_string()),
                (reqwest::Method::POST, "/_grantry/clock/advance".to_string()),
            ];
            (app, endpoints)
        });
        let cases: u32 = std::env::var("GRANTRY_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases, ..ProptestConfig::default() });
        let strategy = (0..endpoints.len(), body());
        runner
            .run(&strategy, |(i, body)| {
                let (method, path) = &endpoints[i];
                let (status, text) = rt.block_on(async {
                    let resp = app
                        .client
                        .request(method.clone(), app.url(path))
                        .bearer_auth(&app.admin)
                        .header("Content-Type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("sent");
                    (resp.status(), resp.text().await.unwrap_or_default())
                });
                prop_assert!(!status.is_server_error(), "{method} {path} answered {status}: {text}\nbody: {body:.500}");
                if status.is_client_error() {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    prop_assert!(
                        v["error"]["code"].is_string(),
                        "{method} {path} {status} without the envelope: {text}"
                    );
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async { drop(app) });
    }
}

/// A client that sends its whole body before reading the answer (curl, Python's requests,
/// most SDKs) gets the 413 envelope, not a reset connection, and nothing is written.
#[tokio::test]
async fn an_oversized_body_sent_whole_gets_the_413_envelope() {
    let app = TestApp::spawn_with(Options { body_limit: 64 * 1024, ..Options::default() }).await;
    let addr = app.server.as_ref().unwrap().addr;
    for declared in [true, false] {
        let payload = format!(
            "{{\"displayName\":\"big\",\"userPrincipalName\":\"big@contoso.com\",\"jobTitle\":\"{}\"}}",
            "x".repeat(3 * 1024 * 1024)
        );
        let head = if declared {
            format!(
                "POST /v1.0/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                app.admin,
                payload.len()
            )
        } else {
            // Chunked: the size is only known as the body arrives.
            format!(
                "POST /v1.0/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                app.admin
            )
        };
        let mut request = head.into_bytes();
        if declared {
            request.extend_from_slice(payload.as_bytes());
        } else {
            for chunk in payload.as_bytes().chunks(16 * 1024) {
                request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                request.extend_from_slice(chunk);
                request.extend_from_slice(b"\r\n");
            }
            request.extend_from_slice(b"0\r\n\r\n");
        }
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // The whole body first, then the answer.
        stream.write_all(&request).await.expect("the server reads (and throws away) the whole body");
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
        let response = String::from_utf8_lossy(&out).into_owned();
        assert_eq!(status_of(&response), 413, "declared {declared}: {response}");
        let body: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap_or("")).unwrap();
        assert_error(&body, "RequestEntityTooLarge");
    }
    let (_, users) = app.get(&app.admin, "/v1.0/users?$filter=displayName eq 'big'").await;
    assert_eq!(users["value"].as_array().unwrap().len(), 0, "no handler saw the body: {users}");
}

/// A client that waits for `100 Continue` is refused on its declared length, before it
/// sends anything.
#[tokio::test]
async fn an_oversized_declared_length_is_refused_before_the_body_is_sent() {
    let app = TestApp::spawn_with(Options { body_limit: 64 * 1024, ..Options::default() }).await;
    let head = format!(
        "POST /v1.0/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        app.admin,
        10 * 1024 * 1024
    );
    let response = raw(&app, head.as_bytes()).await;
    assert_eq!(status_of(&response), 413, "{response}");
    assert!(!response.contains("100 Continue"), "{response}");
}
