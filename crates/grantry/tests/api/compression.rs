//! Compressed request bodies, as the Kiota-based Graph SDKs send them by default
//! (`Content-Encoding: gzip`), and compressed responses.
//!
//! The main test drives one flow through every family of routes that takes a body twice,
//! on two fresh servers: once uncompressed, once with every body compressed (gzip, deflate
//! and br in turn). Both runs must answer the same, up to ids and times.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Coding {
    Gzip,
    Deflate,
    Br,
}

impl Coding {
    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Br => "br",
        }
    }
}

fn compress(coding: Coding, data: &[u8]) -> Vec<u8> {
    match coding {
        Coding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Coding::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Coding::Br => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                w.write_all(data).unwrap();
            }
            out
        }
    }
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data).read_to_end(&mut out).unwrap();
    out
}

/// Sends `body` as JSON, compressed with `coding` when given (and the header spelled as
/// `header` says, e.g. `GZIP`), and returns the status and the JSON answer.
async fn send_as(
    app: &TestApp,
    coding: Option<(Coding, &str)>,
    method: Method,
    token: &str,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let text = body.to_string();
    let mut req =
        app.client.request(method, app.url(path)).bearer_auth(token).header("Content-Type", "application/json");
    req = match coding {
        Some((c, header)) => req.header("Content-Encoding", header).body(compress(c, text.as_bytes())),
        None => req.body(text),
    };
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap();
    let value = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    (status, value)
}

/// Replaces what differs between two servers running the same flow (the base URL, ids and
/// times) with placeholders, so the answers can be compared.
fn masked(base: &str, value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(mask_text(&s.replace(base, "<base>"))),
        Value::Array(items) => Value::Array(items.iter().map(|v| masked(base, v)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), masked(base, v))).collect()),
        other => other.clone(),
    }
}

fn mask_text(s: &str) -> String {
    let is_uuid = |w: &[u8]| {
        w.len() == 36
            && w.iter()
                .enumerate()
                .all(|(i, b)| if [8, 13, 18, 23].contains(&i) { *b == b'-' } else { b.is_ascii_hexdigit() })
    };
    let bytes = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if i + 36 <= bytes.len() && is_uuid(&bytes[i..i + 36]) {
            out.push_str("<id>");
            i += 36;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    if chrono::DateTime::parse_from_rfc3339(&out).is_ok() { "<time>".into() } else { out }
}

/// One run of the flow: sends each body compressed (cycling through the codings) or not,
/// and records each step's name, status and masked answer.
struct Run {
    app: TestApp,
    compressed: bool,
    sent: usize,
    steps: Vec<(String, StatusCode, Value)>,
}

impl Run {
    async fn send(&mut self, name: &str, method: Method, token: &str, path: &str, body: Value) -> Value {
        let codings = [Coding::Gzip, Coding::Deflate, Coding::Br];
        let coding = self.compressed.then(|| codings[self.sent % codings.len()]);
        self.sent += 1;
        let (status, value) = send_as(&self.app, coding.map(|c| (c, c.name())), method, token, path, &body).await;
        assert!(status.is_success(), "{name} ({coding:?}): {status} {value}");
        self.steps.push((name.to_string(), status, masked(&self.app.base, &value)));
        value
    }

    /// As [`Run::send`], for a creation: returns the new id.
    async fn create(&mut self, name: &str, token: &str, path: &str, body: Value) -> String {
        let created = self.send(name, Method::POST, token, path, body).await;
        created["id"].as_str().unwrap_or_else(|| panic!("{name}: {created}")).to_string()
    }
}

/// The walkthrough's flow plus an approval with answers and a removal, with every body
/// sent compressed when `compressed`. Returns each step's name, status and masked answer.
async fn flow(compressed: bool) -> Vec<(String, StatusCode, Value)> {
    let mut run = Run { app: TestApp::spawn().await, compressed, sent: 0, steps: Vec::new() };
    let admin = run.app.admin.clone();
    let base = run.app.base.clone();
    let em = |rest: &str| format!("/v1.0/{EM}/{rest}");

    let user = |name: &str, upn: &str| json!({"displayName": name, "userPrincipalName": upn, "accountEnabled": true});
    let irene = run.create("user", &admin, "/v1.0/users", user("Irene Admin", "irene@contoso.com")).await;
    let alex = run.create("user", &admin, "/v1.0/users", user("Alex Wilber", "alex@contoso.com")).await;
    let megan = run.create("user", &admin, "/v1.0/users", user("Megan Bowen", "megan@contoso.com")).await;
    let body = json!({"jobTitle": "Marketing lead", "department": "Marketing"});
    run.send("user update", Method::PATCH, &admin, &format!("/v1.0/users/{megan}"), body).await;
    let body = json!({"displayName": "Sales reports", "mailNickname": "sales-reports", "securityEnabled": true, "mailEnabled": false});
    let group = run.create("group", &admin, "/v1.0/groups", body).await;
    let body = json!({"principalId": irene, "roleDefinitionId": IGA_ROLE, "directoryScopeId": "/"});
    run.send("role assignment", Method::POST, &admin, "/v1.0/roleManagement/directory/roleAssignments", body).await;
    let body = json!({"@odata.id": format!("{base}/v1.0/users/{irene}")});
    run.send("group owner", Method::POST, &admin, &format!("/v1.0/groups/{group}/owners/$ref"), body).await;

    let irene_token = run.app.user_token_default(&irene);
    let body = json!({"displayName": "Sales", "description": "Sales resources", "state": "published"});
    let catalog = run.create("catalog", &irene_token, &em("catalogs"), body).await;
    let body = json!({"description": "Sales"});
    run.send("catalog update", Method::PATCH, &irene_token, &em(&format!("catalogs/{catalog}")), body).await;
    let body = json!({"requestType": "adminAdd", "resource": {"originId": group, "originSystem": "AadGroup"}, "catalog": {"id": catalog}});
    run.send("resource adminAdd", Method::POST, &irene_token, &em("resourceRequests"), body).await;
    let (_, resources) = run.app.get(&irene_token, &em(&format!("catalogs/{catalog}/resources"))).await;
    let resource = resources["value"][0]["id"].as_str().unwrap().to_string();
    let body = json!({"displayName": "Sales reports", "description": "Read sales reports", "catalog": {"id": catalog}});
    let package = run.create("access package", &irene_token, &em("accessPackages"), body).await;
    let body = json!({"description": "Read the sales reports"});
    run.send("access package update", Method::PATCH, &irene_token, &em(&format!("accessPackages/{package}")), body)
        .await;
    let body = json!({
        "role": {"originId": format!("Member_{group}"), "originSystem": "AadGroup", "resource": {"id": resource}},
        "scope": {"originId": group, "originSystem": "AadGroup"}
    });
    run.send(
        "role scope",
        Method::POST,
        &irene_token,
        &em(&format!("accessPackages/{package}/resourceRoleScopes")),
        body,
    )
    .await;
    let body = json!({
        "displayName": "Direct", "description": "Assigned by administrators", "allowedTargetScope": "notSpecified",
        "expiration": {"type": "afterDuration", "duration": "P30D"},
        "requestApprovalSettings": {"isApprovalRequiredForAdd": false, "isApprovalRequiredForUpdate": false},
        "accessPackage": {"id": package}
    });
    let direct = run.create("policy create (direct)", &irene_token, &em("assignmentPolicies"), body).await;
    let mut body = fixture("v1_create_questions")["request"].clone();
    body["displayName"] = json!("Self-service with approval");
    body["accessPackage"] = json!({"id": package});
    body["requestApprovalSettings"]["stages"][0]["primaryApprovers"][0]["userId"] = json!(irene);
    let self_service =
        run.create("policy create (approval, questions)", &irene_token, &em("assignmentPolicies"), body).await;
    let mut body = fixture("v1_create_direct")["request"].clone();
    body["displayName"] = json!("Direct, replaced");
    body["accessPackage"] = json!({"id": package});
    run.send("policy replace", Method::PUT, &irene_token, &em(&format!("assignmentPolicies/{direct}")), body).await;

    let body = json!({"requestType": "adminAdd", "assignment": {"targetId": alex, "assignmentPolicyId": direct, "accessPackageId": package}});
    run.create("adminAdd", &irene_token, &em("assignmentRequests"), body).await;
    run.app.drain().await;
    let (_, policy) = run.app.get(&irene_token, &em(&format!("assignmentPolicies/{self_service}"))).await;
    let question = |n: usize| policy["questions"][n]["id"].as_str().unwrap().to_string();
    let body = json!({
        "requestType": "userAdd", "justification": "Quarterly reporting",
        "assignment": {"accessPackageId": package, "assignmentPolicyId": self_service},
        "answers": [
            {"@odata.type": "#microsoft.graph.accessPackageAnswerString", "value": "KE",
             "answeredQuestion": {"@odata.type": "#microsoft.graph.accessPackageMultipleChoiceQuestion", "id": question(0)}},
            {"@odata.type": "#microsoft.graph.accessPackageAnswerString", "value": "Sales reporting",
             "answeredQuestion": {"@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "id": question(1)}}
        ]
    });
    let megan_token = run.app.user_token(&megan, SUBJECT_SCOPES);
    let request = run.create("userAdd with answers", &megan_token, &em("assignmentRequests"), body).await;
    run.app.drain().await;
    let approval = em(&format!("accessPackageAssignmentApprovals/{request}"));
    let (_, found) = run.app.get(&irene_token, &approval).await;
    let stage = found["stages"][0]["id"].as_str().unwrap_or_else(|| panic!("{found}")).to_string();
    let body = json!({"reviewResult": "Approve", "justification": "OK with me"});
    run.send("approval decision", Method::PATCH, &irene_token, &format!("{approval}/stages/{stage}"), body).await;
    run.app.drain().await;
    let body = json!({"requestType": "adminRemove", "assignment": {"targetId": alex, "assignmentPolicyId": direct, "accessPackageId": package}});
    run.create("adminRemove", &irene_token, &em("assignmentRequests"), body).await;
    run.app.drain().await;

    // What the flow did, read back uncompressed.
    for (name, path) in [
        ("requests", em("assignmentRequests?$orderby=createdDateTime&$expand=assignment")),
        ("assignments", em(&format!("assignments?$filter=accessPackage/id eq '{package}'&$expand=target"))),
        ("members", format!("/v1.0/groups/{group}/members")),
        ("audit", "/_grantry/audit?$top=200".to_string()),
    ] {
        let (status, value) = run.app.get(&admin, &path).await;
        run.steps.push((name.to_string(), status, masked(&base, &value)));
    }
    run.steps
}

#[tokio::test]
async fn compressed_bodies_behave_exactly_as_uncompressed_ones_on_every_route_family() {
    let plain = flow(false).await;
    let compressed = flow(true).await;
    assert_eq!(plain.len(), compressed.len());
    for (p, c) in plain.iter().zip(&compressed) {
        assert_eq!(p, c, "step '{}' differs when its body is compressed", p.0);
    }
    // The flow really delivered and removed access, so the comparison compared something.
    let states = |steps: &[(String, StatusCode, Value)]| {
        steps.iter().find(|s| s.0 == "assignments").unwrap().2["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["state"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let mut seen = states(&compressed);
    seen.sort();
    assert_eq!(seen, ["delivered", "expired"], "{compressed:?}");
}

#[tokio::test]
async fn content_codings_are_case_insensitive_and_identity_means_none() {
    let app = TestApp::spawn().await;
    for (i, (coding, header)) in [
        (Some(Coding::Gzip), "GZIP"),
        (Some(Coding::Gzip), "x-gzip"),
        (Some(Coding::Deflate), " Deflate "),
        (None, "identity"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"displayName": format!("Catalog {i}")});
        let text = body.to_string();
        let bytes = match coding {
            Some(c) => compress(c, text.as_bytes()),
            None => text.into_bytes(),
        };
        let resp = app
            .client
            .post(app.url(&format!("/v1.0/{EM}/catalogs")))
            .bearer_auth(&app.admin)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", header)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED, "Content-Encoding: {header}");
        let created: Value = resp.json().await.unwrap();
        assert_eq!(created["displayName"], format!("Catalog {i}"));
    }
}

#[tokio::test]
async fn an_unknown_coding_is_a_415_naming_the_supported_ones() {
    let app = TestApp::spawn().await;
    for header in ["zstd", "compress", "gzip, br", "bogus"] {
        let resp = app
            .client
            .post(app.url(&format!("/v1.0/{EM}/catalogs")))
            .bearer_auth(&app.admin)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", header)
            .header("client-request-id", "5d1f6a4e-0c1b-4a43-8a9e-3f1c2b7d9e10")
            .body("{\"displayName\":\"x\"}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{header}");
        assert_eq!(resp.headers()["accept-encoding"], "gzip, deflate, br", "{header}");
        let body: Value = resp.json().await.unwrap();
        assert_error(&body, "UnsupportedContentEncoding");
        assert!(body["error"]["message"].as_str().unwrap().contains(header.trim()), "{body}");
    }
    // Nothing was created.
    let (_, catalogs) = app.get(&app.admin, &format!("/v1.0/{EM}/catalogs?$filter=displayName eq 'x'")).await;
    assert_eq!(catalogs["value"].as_array().unwrap().len(), 0, "{catalogs}");
}

#[tokio::test]
async fn a_body_that_is_not_what_its_coding_says_is_a_400() {
    let app = TestApp::spawn().await;
    for header in ["gzip", "deflate", "br"] {
        let resp = app
            .client
            .post(app.url(&format!("/v1.0/{EM}/catalogs")))
            .bearer_auth(&app.admin)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", header)
            .body("{\"displayName\":\"not compressed at all\"}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{header}");
        let body: Value = resp.json().await.unwrap();
        assert_error(&body, "InvalidRequestBody");
        assert!(body["error"]["message"].as_str().unwrap().contains(header), "{body}");
    }
}

#[tokio::test]
async fn an_empty_compressed_body_reads_as_an_empty_one() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let user = app.create_user("uma").await;
    let (request, _) = app.admin_assign(&f, &user).await;
    // `reprocess` takes no body: a gzip of nothing, and a Content-Encoding over no bytes at
    // all, get the answer an empty body gets.
    let path = app.url(&format!("/v1.0/{EM}/assignmentRequests/{request}/reprocess"));
    let send = |encoding: Option<&'static str>, body: Vec<u8>| {
        let mut req = app.client.post(&path).bearer_auth(&app.admin).body(body);
        if let Some(e) = encoding {
            req = req.header("Content-Encoding", e);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (status, body["error"]["code"].clone())
        }
    };
    let plain = send(None, Vec::new()).await;
    assert_ne!(plain.1, "InvalidRequestBody");
    assert_eq!(send(Some("gzip"), compress(Coding::Gzip, b"")).await, plain);
    assert_eq!(send(Some("gzip"), Vec::new()).await, plain);
    assert_eq!(send(Some("br"), compress(Coding::Br, b"")).await, plain);
}

#[tokio::test]
async fn large_responses_are_gzipped_for_clients_that_accept_it() {
    let app = TestApp::spawn().await;
    for i in 0..20 {
        app.create_user(&format!("user{i}")).await;
    }
    let get = |encoding: Option<&'static str>| {
        let mut req = app.client.get(app.url("/v1.0/users")).bearer_auth(&app.admin);
        if let Some(e) = encoding {
            req = req.header("Accept-Encoding", e);
        }
        req.send()
    };
    let plain = get(None).await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let plain: Value = plain.json().await.unwrap();
    let zipped = get(Some("gzip, deflate, br")).await.unwrap();
    assert_eq!(zipped.status(), StatusCode::OK);
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    let bytes = zipped.bytes().await.unwrap();
    let unzipped: Value = serde_json::from_slice(&gunzip(&bytes)).unwrap();
    assert_eq!(unzipped, plain);
    assert!(bytes.len() < plain.to_string().len() / 2, "{} bytes compressed", bytes.len());
    // Small answers are sent as they are.
    let small = app.client.get(app.url("/health")).header("Accept-Encoding", "gzip").send().await.unwrap();
    assert!(small.headers().get("content-encoding").is_none());
}

/// 100 MiB of zeros, gzip-compressed (about 100 KB on the wire).
fn gzip_bomb() -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..100 {
        e.write_all(&zeros).unwrap();
    }
    e.finish().unwrap()
}

#[tokio::test]
async fn a_compression_bomb_is_a_413_and_memory_stays_bounded() {
    let server = crate::binary::Process::spawn(&[]);
    let token = server.token(&["--app", "bomber", "--roles", "EntitlementManagement.ReadWrite.All"]);
    let client = reqwest::Client::new();
    let ready = client.get(format!("{}/ready", server.base)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let before = server.peak_rss_kib();
    let bomb = gzip_bomb();
    assert!(bomb.len() < 1024 * 1024, "{} bytes", bomb.len());
    for path in [format!("/v1.0/{EM}/catalogs"), format!("/v1.0/{EM}/assignmentRequests"), "/v1.0/users".into()] {
        for coding in ["gzip", "GZip"] {
            let resp = client
                .post(format!("{}{path}", server.base))
                .bearer_auth(&token)
                .header("Content-Type", "application/json")
                .header("Content-Encoding", coding)
                .header("client-request-id", grantry_domain::ids::new_id())
                .body(bomb.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
            let body: Value = resp.json().await.unwrap();
            assert_error(&body, "RequestEntityTooLarge");
            assert!(body["error"]["message"].as_str().unwrap().contains("decompressed"), "{body}");
        }
    }
    // Each bomb would take 100 MiB decoded; the server read at most the body limit (4 MiB)
    // of each before refusing it.
    let grown_mib = server.peak_rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 48, "peak memory grew by {grown_mib} MiB while refusing compressed bombs");
    let (status, _) = {
        let resp = client.get(format!("{}/health", server.base)).send().await.unwrap();
        (resp.status(), ())
    };
    assert_eq!(status, StatusCode::OK);
}
