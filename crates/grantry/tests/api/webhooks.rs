//! Event webhooks: administrators subscribe a URL (`/_grantry/webhooks`); lifecycle events
//! arrive Standard Webhooks-signed, in order per assignment even across retries; events that
//! cannot be delivered are dead-lettered and can be replayed.

use crate::helpers::*;
use crate::receiver::Receiver;
use reqwest::StatusCode;
use serde_json::{Value, json};

const HOOKS: &str = "/_grantry/webhooks";

async fn subscribe(app: &TestApp, receiver: &Receiver, event_types: Value) -> String {
    let (status, created) = app
        .post(
            &app.admin,
            HOOKS,
            json!({ "url": receiver.url("/events"), "eventTypes": event_types, "description": "SIEM" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    receiver.expect_secret(secret);
    created["id"].as_str().unwrap().to_string()
}

fn types(receiver: &Receiver) -> Vec<String> {
    receiver.calls().iter().map(|c| c.body["type"].as_str().unwrap_or_default().to_string()).collect()
}

async fn admin_remove(app: &TestApp, assignment: &str) {
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentRequests"),
            json!({ "requestType": "adminRemove", "assignment": { "id": assignment } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
}

#[tokio::test]
async fn lifecycle_events_arrive_signed_and_in_order_per_assignment_even_across_retries() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let id = subscribe(&app, &receiver, json!([])).await;
    let (status, list) = app.get(&app.admin, HOOKS).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["value"][0]["id"], id);
    assert!(list["value"][0].get("secret").is_none(), "the secret is shown once");
    let (status, one) = app.get(&app.admin, &format!("{HOOKS}/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["url"], receiver.url("/events"));

    // The receiver fails the first event: the others for the same assignment wait for it.
    receiver.answer(503);
    let f = app.seed_package_with_group().await;
    let user = app.create_user("alex").await;
    let (request_id, assignment_id) = app.admin_assign(&f, &user).await;
    app.drain_outbox().await;
    assert_eq!(types(&receiver), ["accessPackageAssignmentRequest.created"]);
    receiver.answer(204);
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": "PT10S" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain_outbox().await;
    admin_remove(&app, &assignment_id).await;
    app.drain_outbox().await;
    assert_eq!(
        types(&receiver),
        [
            "accessPackageAssignmentRequest.created",
            "accessPackageAssignmentRequest.created",
            "accessPackageAssignment.added",
            "accessPackageAssignmentRequest.delivered",
            "accessPackageAssignmentRequest.created",
            "accessPackageAssignment.removed",
            "accessPackageAssignmentRequest.delivered",
        ]
    );
    let calls = receiver.calls();
    assert!(calls.iter().all(|c| c.signature_ok), "every event is signed");
    assert_eq!(calls[0].id, calls[1].id, "the retry carries the same event id");
    let mut ids: Vec<&str> = calls[1..].iter().map(|c| c.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6, "one id per event");
    assert_eq!(calls[1].body["data"]["id"], request_id);
    assert_eq!(calls[2].body["data"]["id"], assignment_id);
    assert_eq!(calls[3].body["data"]["state"], "delivered");
    assert!(calls[3].body["timestamp"].as_str().unwrap().ends_with('Z'));
    // Nothing is sent twice.
    let (_, _) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": "P2D" })).await;
    app.drain_outbox().await;
    assert_eq!(receiver.calls().len(), 7);
}

#[tokio::test]
async fn undeliverable_events_are_dead_lettered_and_can_be_replayed() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver, json!(["accessPackageAssignment.*"])).await;
    receiver.answer(400);
    let f = app.seed_package_with_group().await;
    let user = app.create_user("alex").await;
    let (_, assignment_id) = app.admin_assign(&f, &user).await;
    app.drain_outbox().await;
    assert_eq!(types(&receiver), ["accessPackageAssignment.added"], "only the subscribed family");

    let (status, dead) = app.get(&app.admin, &format!("{HOOKS}/deadLetters")).await;
    assert_eq!(status, StatusCode::OK, "{dead}");
    let dead = dead["value"].as_array().unwrap().clone();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["type"], "accessPackageAssignment.added");
    assert_eq!(dead[0]["lastStatus"], 400);
    assert_eq!(dead[0]["payload"]["data"]["id"], assignment_id);
    let event = dead[0]["id"].as_str().unwrap().to_string();

    // Refusals.
    let user_token = app.user_token_default(&user);
    for (method, path) in [
        ("GET", format!("{HOOKS}/deadLetters")),
        ("POST", format!("{HOOKS}/deadLetters/{event}/replay")),
        ("GET", HOOKS.to_string()),
    ] {
        let (status, _) = if method == "GET" {
            app.get(&user_token, &path).await
        } else {
            app.post(&user_token, &path, json!({})).await
        };
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
    }
    let (status, _) = app
        .post(&app.admin, &format!("{HOOKS}/deadLetters/00000000-0000-0000-0000-000000000000/replay"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    receiver.answer(200);
    let (status, body) = app.post(&app.admin, &format!("{HOOKS}/deadLetters/{event}/replay"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    app.drain_outbox().await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].id, event, "replayed with the same event id");
    assert!(calls[1].signature_ok);
    let (_, dead) = app.get(&app.admin, &format!("{HOOKS}/deadLetters")).await;
    assert_eq!(dead["value"], json!([]));
    // A delivered event is not replayed again.
    let (status, _) = app.post(&app.admin, &format!("{HOOKS}/deadLetters/{event}/replay"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn subscriptions_are_validated_and_deleted() {
    let app = TestApp::spawn().await;
    for (body, target) in [
        (json!({ "url": "ftp://example.com/x" }), "url"),
        (json!({ "url": "https://u:p@example.com/x" }), "url"),
        (json!({}), "url"),
        (json!({ "url": "https://example.com/x", "eventTypes": ["nonsense"] }), "eventTypes[0]"),
        (json!({ "url": "https://example.com/x", "eventTypes": [1] }), "eventTypes"),
    ] {
        let (status, resp) = app.post(&app.admin, HOOKS, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert_eq!(resp["error"]["target"], target, "{resp}");
    }
    let user = app.create_user("someone").await;
    let (status, _) = app.post(&app.user_token_default(&user), HOOKS, json!({ "url": "https://example.com/x" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, created) = app.post(&app.admin, HOOKS, json!({ "url": "https://example.com/x" })).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, _) = app.delete(&app.admin, &format!("{HOOKS}/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&app.admin, &format!("{HOOKS}/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = app.get(&app.admin, HOOKS).await;
    assert_eq!(list["value"], json!([]));
}
