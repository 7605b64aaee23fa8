//! `GET /metrics`: who may read it, and that it is valid Prometheus text whose figures
//! follow what the server did. Metrics are per process and the tests of this binary share
//! one, so figures are compared before and after this test's own requests.

use crate::helpers::*;
use reqwest::StatusCode;
use std::collections::{BTreeMap, BTreeSet};

/// One sample line: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition format strictly: every line is a comment (`# HELP`/`# TYPE`)
/// or a sample of a family declared by a `# TYPE` line before it.
fn parse(text: &str) -> Vec<Sample> {
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                    assert!(typed.insert(name.to_string(), kind.to_string()).is_none(), "family typed twice: {line}");
                }
                (Some("HELP"), Some(_), Some(_)) => {}
                _ => panic!("bad comment line: {line}"),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
                (name.to_string(), parse_labels(body, line))
            }
        };
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "bad metric name: {line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix).filter(|f| typed.get(*f).is_some_and(|k| k == "histogram")))
            .unwrap_or(&name)
            .to_string();
        assert!(typed.contains_key(&family), "sample of an undeclared family: {line}");
        samples.push(Sample { name, labels, value });
    }
    samples
}

fn parse_labels(body: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label value not quoted: {line}");
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("bad escape: {line}"),
                },
                Some('"') => break,
                Some(c) => value.push(c),
                None => panic!("unterminated label value: {line}"),
            }
        }
        labels.insert(key, value);
        match chars.next() {
            Some(',') | None => {}
            Some(c) => panic!("unexpected {c:?} after a label: {line}"),
        }
    }
    labels
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.value)
}

async fn scrape(app: &TestApp, url: &str, token: Option<&str>) -> (StatusCode, String, String) {
    let mut req = app.client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, resp.text().await.unwrap())
}

#[tokio::test]
async fn metrics_follow_requests_writes_and_deliveries() {
    let app = TestApp::spawn_with(Options { metrics_listen: true, ..Options::default() }).await;
    let url = app.url("/metrics");

    // Main listener: a token is needed, and one that may read the audit trail.
    let (status, _, body) = scrape(&app, &url, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let reader = app.app_token(&["User.Read.All"]);
    let (status, _, body) = scrape(&app, &url, Some(&reader)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, content_type, before) = scrape(&app, &url, Some(&app.admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let before = parse(&before);

    // Known traffic: users created and read, a miss, and one delivered assignment.
    let fixture = app.seed_package_with_group().await;
    let mut users = Vec::new();
    for i in 0..3 {
        users.push(app.create_user(&format!("metrics{i}")).await);
    }
    for id in &users {
        let (status, _) = app.get(&app.admin, &format!("/v1.0/users/{id}")).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = app.get(&app.admin, "/v1.0/users/00000000-0000-4000-8000-000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.admin_assign(&fixture, &users[0]).await;

    // The separate listener serves the same exposition without a token.
    let metrics_addr = app.server.as_ref().unwrap().metrics_addr.expect("metrics listener");
    let (status, content_type, text) = scrape(&app, &format!("http://{metrics_addr}/metrics"), None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let (status, _, _) = scrape(&app, &format!("http://{metrics_addr}/v1.0/users"), Some(&app.admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the metrics listener serves nothing else");
    let after = parse(&text);

    let requests = |samples: &[Sample], route: &str, method: &str, status: &str| {
        value(
            samples,
            "grantry_http_request_duration_seconds_count",
            &[("route", route), ("method", method), ("status", status)],
        )
        .unwrap_or(0.0)
    };
    // Route templates, not paths: the three reads are one series.
    let read = ("/v1.0/users/{id}", "GET");
    assert!(requests(&after, read.0, read.1, "200") - requests(&before, read.0, read.1, "200") >= 3.0);
    assert!(requests(&after, read.0, read.1, "404") - requests(&before, read.0, read.1, "404") >= 1.0);
    assert!(requests(&after, "/v1.0/users", "POST", "201") - requests(&before, "/v1.0/users", "POST", "201") >= 3.0);
    assert!(
        after.iter().all(|s| s.labels.get("route").is_none_or(|r| !r.contains(&users[0]))),
        "no series is labelled with an id"
    );

    // Every histogram series is cumulative and ends in +Inf == _count.
    let mut series: BTreeSet<(String, Vec<(String, String)>)> = BTreeSet::new();
    for s in after.iter().filter(|s| s.name.ends_with("_bucket")) {
        let family = s.name.trim_end_matches("_bucket").to_string();
        let labels: Vec<_> = s.labels.iter().filter(|(k, _)| *k != "le").map(|(k, v)| (k.clone(), v.clone())).collect();
        series.insert((family, labels));
    }
    assert!(!series.is_empty());
    for (family, labels) in &series {
        let buckets: Vec<&Sample> = after
            .iter()
            .filter(|s| {
                s.name == format!("{family}_bucket")
                    && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v))
                    && s.labels.len() == labels.len() + 1
            })
            .collect();
        assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value), "{family} {labels:?} not cumulative");
        let last = buckets.last().unwrap();
        assert_eq!(last.labels["le"], "+Inf");
        let label_refs: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(Some(last.value), value(&after, &format!("{family}_count"), &label_refs), "{family}");
    }

    // The writer committed this test's writes; jobs and deliveries were counted.
    let commits = |s: &[Sample]| value(s, "grantry_writer_commit_seconds_count", &[]).unwrap_or(0.0);
    assert!(commits(&after) > commits(&before));
    assert!(value(&after, "grantry_writer_batch_size_count", &[]).unwrap() >= 1.0);
    let delivered = |s: &[Sample]| {
        value(s, "grantry_deliveries_total", &[("origin_system", "AadGroup"), ("outcome", "fulfilled")]).unwrap_or(0.0)
    };
    assert!(delivered(&after) - delivered(&before) >= 1.0, "the assignment's group membership was delivered");
    for gauge in [
        "grantry_writer_queue_depth",
        "grantry_jobs_due",
        "grantry_jobs_oldest_due_seconds",
        "grantry_jobs_retrying",
        "grantry_jobs_running",
        "grantry_db_read_connections_in_use",
    ] {
        assert!(value(&after, gauge, &[]).is_some_and(|v| v >= 0.0), "{gauge}");
    }
    assert!(value(&after, "grantry_db_read_connections_max", &[]).unwrap() >= 1.0);
}

#[tokio::test]
async fn outbound_calls_and_the_outbox_are_counted_and_every_family_is_exposed() {
    let app = TestApp::spawn().await;
    let receiver = crate::receiver::Receiver::start().await;
    let (status, created) = app
        .post(
            &app.admin,
            "/_grantry/webhooks",
            serde_json::json!({ "url": receiver.url("/events"), "eventTypes": ["accessPackageAssignment.added"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let url = app.url("/metrics");
    let (_, _, before) = scrape(&app, &url, Some(&app.admin)).await;
    let before = parse(&before);
    let calls = |s: &[Sample], outcome: &str| {
        value(s, "grantry_outbound_calls_total", &[("kind", "webhook"), ("outcome", outcome)]).unwrap_or(0.0)
    };

    // The receiver fails once (retry), then takes the event (delivered).
    receiver.answer(503);
    let f = app.seed_package_with_group().await;
    let user = app.create_user("metrics-outbound").await;
    app.admin_assign(&f, &user).await;
    app.drain_outbox().await;
    let (_, _, owed) = scrape(&app, &url, Some(&app.admin)).await;
    let owed = parse(&owed);
    assert!(calls(&owed, "retry") - calls(&before, "retry") >= 1.0);
    assert!(
        value(&owed, "grantry_outbox_messages", &[("kind", "webhook"), ("state", "pending")]).unwrap() >= 1.0,
        "the event waits in the outbox"
    );
    receiver.answer(204);
    let (status, body) =
        app.post(&app.admin, "/_grantry/clock/advance", serde_json::json!({ "duration": "PT1M" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain_outbox().await;
    let (_, _, text) = scrape(&app, &url, Some(&app.admin)).await;
    let after = parse(&text);
    assert!(calls(&after, "delivered") - calls(&before, "delivered") >= 1.0);
    assert_eq!(value(&after, "grantry_outbox_messages", &[("kind", "webhook"), ("state", "pending")]), Some(0.0));

    // Every family the operations guide lists is declared, with its type.
    for (family, kind) in [
        ("grantry_http_request_duration_seconds", "histogram"),
        ("grantry_writer_batch_size", "histogram"),
        ("grantry_writer_commit_seconds", "histogram"),
        ("grantry_writer_commit_failures_total", "counter"),
        ("grantry_writer_queue_depth", "gauge"),
        ("grantry_jobs_due", "gauge"),
        ("grantry_jobs_running", "gauge"),
        ("grantry_jobs_retrying", "gauge"),
        ("grantry_jobs_oldest_due_seconds", "gauge"),
        ("grantry_job_runs_total", "counter"),
        ("grantry_job_lag_seconds", "histogram"),
        ("grantry_deliveries_total", "counter"),
        ("grantry_outbound_calls_total", "counter"),
        ("grantry_outbox_messages", "gauge"),
        ("grantry_db_read_connections_in_use", "gauge"),
        ("grantry_db_read_connections_max", "gauge"),
    ] {
        assert!(text.contains(&format!("# TYPE {family} {kind}\n")), "{family} ({kind}) missing:\n{text}");
    }
}
