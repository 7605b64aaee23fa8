//! Availability under hostile clients: a signed-in user with no role sending the most
//! expensive queries they can, many at once, and abandoning them, must not starve other
//! callers' reads (they once got 500 for half a minute).

use crate::helpers::*;
use grantry_store::budget::{self, RequestBudget};
use grantry_store::{Store, StoreOptions};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The documented limits (docs/errors.md).
const MAX_FILTER_TERMS: usize = 50;
const MAX_UNINDEXED_TERMS_WITH_COUNT: usize = 5;

/// A read that runs for minutes unless it is stopped (portable: SQLite and PostgreSQL).
const ENDLESS: &str =
    "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 2000000000) SELECT COUNT(*) FROM r";

/// A store with a single reader, on the backend the suite runs on.
fn one_reader_store(dir: &tempfile::TempDir, pg: &Option<PgTestDatabase>) -> Store {
    let options = StoreOptions { readers: 1, pg_pool_size: 1, ..Default::default() };
    match pg {
        Some(db) => Store::open_postgres(&db.url, options).expect("open"),
        None => Store::open_sqlite(&dir.path().join("one.db"), options).expect("open"),
    }
}

async fn endless(store: &Store) -> grantry_domain::Result<()> {
    store.read(|c| c.query(ENDLESS, &[]).map(|_| ())).await
}

async fn quick(store: &Store) -> grantry_domain::Result<()> {
    store.read(|c| c.query("SELECT 1", &[]).map(|_| ())).await
}

/// The reader's connection and its permit are released together: a read whose caller
/// went away is interrupted, so the only connection serves the next read at once.
#[tokio::test]
async fn a_read_whose_caller_is_gone_is_interrupted_and_frees_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgTestDatabase::create();
    let store = one_reader_store(&dir, &pg);
    for _ in 0..3 {
        // The caller gives up after 200 ms (the timeout drops the read's future).
        assert!(tokio::time::timeout(Duration::from_millis(200), endless(&store)).await.is_err());
        let started = Instant::now();
        let next = tokio::time::timeout(Duration::from_secs(10), quick(&store)).await;
        assert!(matches!(next, Ok(Ok(()))), "the reader stayed busy: {next:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    }
}

/// A read past the request's statement time is stopped and refused with 400 naming the
/// limit; the connection serves the next read.
#[tokio::test]
async fn a_read_past_the_request_budget_is_stopped_with_400() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgTestDatabase::create();
    let store = one_reader_store(&dir, &pg);
    let started = Instant::now();
    let result = budget::scope(RequestBudget::new(Duration::from_millis(100), true), endless(&store)).await;
    let e = result.expect_err("an endless read must be stopped");
    assert_eq!(e.code, "QueryTooExpensive", "{e:?}");
    assert!(e.message.contains("100 ms"), "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    // A request that has used up its budget reads nothing more.
    let budget = RequestBudget::new(Duration::from_millis(100), false);
    let spent = budget::scope(budget, async {
        let first = endless(&store).await;
        let second = quick(&store).await;
        (first, second)
    })
    .await;
    assert_eq!(spent.0.unwrap_err().code, "QueryTooExpensive");
    assert_eq!(spent.1.unwrap_err().code, "QueryTooExpensive");
    // Outside that request the connection is free.
    let next = tokio::time::timeout(Duration::from_secs(10), quick(&store)).await;
    assert!(matches!(next, Ok(Ok(()))), "{next:?}");
}

/// `count` users with long display names, so that `contains` filters are costly.
async fn seed_users(app: &TestApp, count: usize) {
    let template = app.create_user("template").await;
    app.seed(move |c| {
        let t: grantry_domain::model::User = grantry_store::repo::get(c, &template)?.expect("template");
        for i in 0..count {
            let mut u = t.clone();
            u.id = grantry_domain::ids::new_id();
            u.display_name = format!("{} {i}", "Member of a rather large organisation ".repeat(10));
            u.user_principal_name = format!("bulk{i}@contoso.com");
            u.mail = Some(u.user_principal_name.clone());
            grantry_store::repo::insert(c, &u)?;
        }
        Ok(())
    })
    .await;
}

/// The most expensive user list a plain user may ask for: the most terms a filter may
/// have, none served by an index, none matching, the largest page.
fn hostile_query(terms: usize) -> String {
    let filter: Vec<String> = (0..terms).map(|i| format!("contains(displayName,'zq{i}xj')")).collect();
    format!("/v1.0/users?$filter={}&$top=999", filter.join(" or "))
}

#[tokio::test]
async fn filter_size_and_count_over_unindexed_terms_are_limited_with_400() {
    let app = TestApp::spawn().await;
    let user = app.create_user("uma").await;
    let token = app.user_token(&user, &["User.Read.All"]);
    let (status, body) = app.get(&token, &hostile_query(MAX_FILTER_TERMS)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get(&token, &hostile_query(MAX_FILTER_TERMS + 1)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "InvalidFilter");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("the limit is {}", MAX_FILTER_TERMS)), "{message}");
    // `in` values count as terms too.
    let many: Vec<String> = (0..60).map(|i| format!("'u{i}@contoso.com'")).collect();
    let (status, body) = app.get(&token, &format!("/v1.0/users?$filter=mail in ({})", many.join(","))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let n = MAX_UNINDEXED_TERMS_WITH_COUNT;
    let (status, body) = app.get(&token, &format!("{}&$count=true", hostile_query(n))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = app.get(&token, &format!("{}&$count=true", hostile_query(n + 1))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("$count") && message.contains(&format!("is {n}")), "{message}");
}

#[tokio::test]
async fn a_query_over_the_statement_budget_is_400_and_the_next_request_is_served() {
    let app = TestApp::spawn_with(Options { statement_budget: Duration::from_millis(100), ..Options::default() }).await;
    seed_users(&app, 10_000).await;
    let user = app.create_user("vic").await;
    let token = app.user_token(&user, &["User.Read.All"]);
    let (status, body) = app.get(&token, &hostile_query(MAX_FILTER_TERMS)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", excerpt(&body));
    assert_error(&body, "QueryTooExpensive");
    assert!(body["error"]["message"].as_str().unwrap().contains("100 ms"), "{body}");
    let (status, body) = app.get(&token, &format!("/v1.0/users/{user}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn one_caller_over_its_expensive_queries_is_throttled_with_429_and_retry_after() {
    let app = TestApp::spawn_with(Options { expensive_queries_per_caller: 1, ..Options::default() }).await;
    seed_users(&app, 10_000).await;
    let user = app.create_user("wren").await;
    let token = app.user_token(&user, &["User.Read.All"]);
    let send = || {
        let url = app.url(&hostile_query(MAX_FILTER_TERMS));
        let request = app.client.get(url).bearer_auth(&token);
        async move {
            let r = request.send().await.unwrap();
            let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            (r.status(), retry_after)
        }
    };
    let answers = futures_util::future::join_all((0..6).map(|_| send())).await;
    let throttled: Vec<_> = answers.iter().filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS).collect();
    assert!(!throttled.is_empty(), "{answers:?}");
    assert!(throttled.iter().all(|(_, r)| r.as_deref() == Some("1")), "{answers:?}");
    assert!(answers.iter().all(|(s, _)| !s.is_server_error()), "{answers:?}");
    // Another caller is not affected, and the slot is free again once the queries end.
    let other = app.create_user("xena").await;
    let (status, _) =
        app.get(&app.user_token(&other, &["User.Read.All"]), "/v1.0/users?$filter=displayName eq 'x'").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get(&token, "/v1.0/users?$filter=displayName eq 'x'").await;
    assert_eq!(status, StatusCode::OK);
}

/// Twenty users send the most expensive query they can, over and over, abandoning half of
/// them after 100 ms; meanwhile another user's cheap reads keep being answered quickly,
/// and nobody gets a 500.
#[tokio::test]
async fn cheap_reads_stay_fast_while_twenty_users_run_the_most_expensive_query() {
    let app = TestApp::spawn().await;
    seed_users(&app, 10_000).await;
    let victim = app.create_user("yara").await;
    let victim_token = app.user_token(&victim, &["User.Read.All"]);
    let mut attackers = Vec::new();
    for i in 0..20 {
        let id = app.create_user(&format!("attacker{i}")).await;
        attackers.push(app.user_token(&id, &["User.Read.All"]));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut handles = Vec::new();
    for (i, token) in attackers.into_iter().enumerate() {
        let (client, url, stop) = (app.client.clone(), app.url(&hostile_query(MAX_FILTER_TERMS)), stop.clone());
        handles.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut request = client.get(&url).bearer_auth(&token);
                if i % 2 == 0 {
                    request = request.timeout(Duration::from_millis(100));
                }
                if let Ok(r) = request.send().await {
                    statuses.push(r.status());
                }
            }
            statuses
        }));
    }
    // Let the attack get under way: the first attackers' queries are running.
    let (status, _) = app.get(&victim_token, &hostile_query(1)).await;
    assert!(!status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE);
    let mut latencies = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        let (status, body) = app.get(&victim_token, &format!("/v1.0/users/{victim}")).await;
        latencies.push(started.elapsed());
        assert_eq!(status, StatusCode::OK, "{}", excerpt(&body));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = Vec::new();
    for h in handles {
        seen.extend(h.await.unwrap());
    }
    assert!(
        seen.iter().all(|s| !s.is_server_error() || *s == StatusCode::SERVICE_UNAVAILABLE),
        "an attacker got a server error other than 503: {seen:?}"
    );
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    // The latency figure is the benchmark's to measure (BENCHMARKS.md, B11, release build).
    // This debug build may share its cores with other tests, so it checks only what no load
    // excuses: a cheap read is never left queued behind the expensive ones until their
    // statement budget (5 s) runs out.
    eprintln!("cheap GET p99 under attack: {p99:?}");
    assert!(p99 < Duration::from_secs(5), "cheap GET p99 {p99:?} under attack; all: {latencies:?}");
}

fn excerpt(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(400).collect()
}
