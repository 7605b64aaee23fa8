//! Idempotent retries: a POST resent with the same `client-request-id` (after a timeout,
//! a dropped connection, or concurrently) creates nothing new and gets the first answer.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn reqs() -> String {
    format!("/v1.0/{EM}/assignmentRequests")
}

/// POSTs `body` with `client-request-id: crid`; returns status, replay header, JSON body.
async fn post_with_id(app: &TestApp, token: &str, path: &str, crid: &str, body: &Value) -> (StatusCode, bool, Value) {
    let resp = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("client-request-id", crid)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request sent");
    let status = resp.status();
    let replayed = resp.headers().get("grantry-idempotent-replay").is_some();
    assert_eq!(
        resp.headers().get("client-request-id").and_then(|v| v.to_str().ok()),
        Some(crid),
        "client-request-id is echoed"
    );
    let text = resp.text().await.expect("body");
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("JSON body") };
    (status, replayed, value)
}

fn admin_add(f: &Fixture, user: &str) -> Value {
    json!({"requestType": "adminAdd", "assignment": {"targetId": user, "assignmentPolicyId": f.admin_policy_id, "accessPackageId": f.package_id}})
}

async fn request_count(app: &TestApp, package: &str) -> i64 {
    let p = package.to_string();
    app.read(move |c| {
        Ok(c.query_one("SELECT COUNT(*) FROM requests WHERE access_package_id = ?", &[p.into()])?
            .map(|r| r.int(0))
            .transpose()?
            .unwrap_or(0))
    })
    .await
}

#[tokio::test]
async fn a_resent_request_gets_the_first_answer_and_creates_nothing() {
    let mut app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let user = app.create_user("ida").await;
    let body = admin_add(&f, &user);
    let (status, replayed, first) = post_with_id(&app, &app.admin, &reqs(), "retry-1", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert!(!replayed);
    // The same body with other whitespace and key order is the same request.
    let reordered = json!({"assignment": {"accessPackageId": f.package_id, "targetId": user, "assignmentPolicyId": f.admin_policy_id}, "requestType": "adminAdd"});
    let (status, replayed, second) = post_with_id(&app, &app.admin, &reqs(), "retry-1", &reordered).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert!(replayed, "the second answer is a replay");
    assert_eq!(first, second, "the replay is the first answer");
    assert_eq!(request_count(&app, &f.package_id).await, 1);

    // Processing moves the request on; a replay still shows what was acknowledged.
    app.drain().await;
    let (_, _, third) = post_with_id(&app, &app.admin, &reqs(), "retry-1", &body).await;
    assert_eq!(third, first);

    // Remembered durably: the answer survives a restart.
    app.restart().await;
    let (status, replayed, fourth) = post_with_id(&app, &app.admin, &reqs(), "retry-1", &body).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true), "{fourth}");
    assert_eq!(fourth["id"], first["id"]);
    assert_eq!(request_count(&app, &f.package_id).await, 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let (u1, u2) = (app.create_user("ivy").await, app.create_user("ian").await);
    let (status, _, _) = post_with_id(&app, &app.admin, &reqs(), "key-a", &admin_add(&f, &u1)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _, body) = post_with_id(&app, &app.admin, &reqs(), "key-a", &admin_add(&f, &u2)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_error(&body, "IdempotencyKeyReused");
    assert_eq!(request_count(&app, &f.package_id).await, 1);
    // Another principal's key space is its own; so is another path.
    let other_admin = app.app_token(ALL_APP_ROLES);
    let (status, replayed, body) = post_with_id(&app, &other_admin, &reqs(), "key-a", &admin_add(&f, &u2)).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{body}");
    let (status, replayed, body) =
        post_with_id(&app, &app.admin, &format!("/v1.0/{EM}/catalogs"), "key-a", &json!({"displayName": "K"})).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{body}");
    // A refused request is not remembered: fixing the body and retrying works.
    let bad = json!({"requestType": "adminAdd", "assignment": {"targetId": u1}});
    let (status, _, _) = post_with_id(&app, &app.admin, &reqs(), "key-b", &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let u3 = app.create_user("ike").await;
    let (status, replayed, body) = post_with_id(&app, &app.admin, &reqs(), "key-b", &admin_add(&f, &u3)).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{body}");
}

#[tokio::test]
async fn concurrent_duplicates_with_one_key_create_one_request() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    for round in 0..4 {
        let user = app.create_user(&format!("con{round}")).await;
        let body = admin_add(&f, &user);
        let crid = format!("concurrent-{round}");
        let path = reqs();
        let calls = (0..16).map(|_| post_with_id(&app, &app.admin, &path, &crid, &body));
        let answers = futures_util::future::join_all(calls).await;
        let ids: Vec<&Value> = answers
            .iter()
            .map(|(s, _, b)| {
                assert_eq!(*s, StatusCode::CREATED, "every duplicate gets the first answer: {b}");
                &b["id"]
            })
            .collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "one id for all: {ids:?}");
        assert_eq!(answers.iter().filter(|(_, replayed, _)| !replayed).count(), 1, "one original, the rest replays");
    }
    assert_eq!(request_count(&app, &f.package_id).await, 4);
}

#[tokio::test]
async fn other_creations_are_replayed_and_keys_expire_after_a_day() {
    let app = TestApp::spawn().await;
    let path = format!("/v1.0/{EM}/catalogs");
    let body = json!({"displayName": "Replayed"});
    let (s1, _, first) = post_with_id(&app, &app.admin, &path, "cat-1", &body).await;
    let (s2, replayed, second) = post_with_id(&app, &app.admin, &path, "cat-1", &body).await;
    assert_eq!((s1, s2, replayed), (StatusCode::CREATED, StatusCode::CREATED, true));
    assert_eq!(first["id"], second["id"]);
    let (status, b) = app.post(&app.admin, "/_grantry/clock/advance", json!({"duration": "PT25H"})).await;
    assert_eq!(status, StatusCode::OK, "{b}");
    let (s3, replayed, third) = post_with_id(&app, &app.admin, &path, "cat-1", &body).await;
    assert_eq!((s3, replayed), (StatusCode::CREATED, false), "{third}");
    assert_ne!(third["id"], first["id"], "after 24 hours the key names a new request");
}
