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

#[tokio::test]
async fn assignments_announce_their_expiry_fourteen_days_and_one_day_ahead_by_the_clock() {
    use grantry_domain::enums::{AllowedTargetScope, ExpirationType};
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver, json!(["accessPackageAssignment.expiring"])).await;
    let f = app.seed_package_with_group().await;
    let policy = app
        .seed_policy(&f, AllowedTargetScope::NotSpecified, |p| {
            p.expiration = grantry_domain::model::Expiration {
                kind: ExpirationType::AfterDuration,
                end_date_time: None,
                duration: Some(chrono::Duration::days(20)),
            };
        })
        .await;
    let user = app.create_user("alex").await;
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentRequests"),
            json!({"requestType": "adminAdd", "assignment": {"targetId": user, "assignmentPolicyId": policy, "accessPackageId": f.package_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    app.drain_outbox().await;
    let advance = |duration: &'static str| {
        let app = &app;
        async move {
            let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": duration })).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            app.drain().await;
            app.drain_outbox().await;
        }
    };
    advance("P5DT23H").await;
    assert!(receiver.calls().is_empty(), "not yet fourteen days before the end");
    advance("PT2H").await;
    assert_eq!(types(&receiver), ["accessPackageAssignment.expiring"]);
    let first = receiver.calls()[0].body["data"].clone();
    assert_eq!(first["daysLeft"], 14, "{first}");
    assert_eq!(first["stage"], "assignmentFourteenDaysBeforeExpiration");
    assert!(first["endDateTime"].is_string(), "{first}");
    advance("P13D").await;
    assert_eq!(types(&receiver).len(), 2);
    assert_eq!(receiver.calls()[1].body["data"]["daysLeft"], 1);
    assert_eq!(receiver.calls()[1].body["data"]["id"], first["id"]);
    // The end passes; nothing more is announced, and every event was signed.
    advance("P30D").await;
    assert_eq!(types(&receiver).len(), 2);
    assert!(receiver.calls().iter().all(|c| c.signature_ok));
}

async fn advance(app: &TestApp, duration: &str) {
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": duration })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain().await;
    app.drain_outbox().await;
}

async fn outbox_count(app: &TestApp, state: &'static str) -> i64 {
    let app = app.state().app.clone();
    app.store
        .read(move |c| grantry_store::repo::count(c, "outbox", "state = ?", &[grantry_store::Value::from(state)]))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_receiver_that_is_gone_disables_its_subscription_until_it_is_enabled_again() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let id = subscribe(&app, &receiver, json!([])).await;
    let f = app.seed_package_with_group().await;
    receiver.answer(410);
    let first = app.create_user("first").await;
    app.admin_assign(&f, &first).await;
    app.drain_outbox().await;
    assert_eq!(receiver.calls().len(), 1, "the first 410 stops the subscription");
    let (_, sub) = app.get(&app.admin, &format!("{HOOKS}/{id}")).await;
    assert_eq!(sub["enabled"], false, "{sub}");
    assert!(sub["disabledReason"].as_str().unwrap().contains("410"), "{sub}");
    // The events owed to it are dead letters now; new events are not written for it.
    let (_, dead) = app.get(&app.admin, &format!("{HOOKS}/deadLetters")).await;
    let owed = dead["value"].as_array().unwrap().len();
    assert!(owed >= 3, "{dead}");
    assert_eq!(outbox_count(&app, "pending").await, 0);
    let second = app.create_user("second").await;
    app.admin_assign(&f, &second).await;
    app.drain_outbox().await;
    assert_eq!(receiver.calls().len(), 1);
    assert_eq!(outbox_count(&app, "pending").await, 0);

    // Enabled again (PATCH), it gets new events, and the dead letters can be replayed.
    receiver.answer(204);
    let (status, sub) = app.patch(&app.admin, &format!("{HOOKS}/{id}"), json!({ "enabled": true })).await;
    assert_eq!(status, StatusCode::OK, "{sub}");
    assert_eq!((sub["enabled"].clone(), sub["disabledReason"].clone()), (json!(true), Value::Null));
    let third = app.create_user("third").await;
    let (_, third_assignment) = app.admin_assign(&f, &third).await;
    app.drain_outbox().await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 4, "{:?}", types(&receiver));
    assert_eq!(calls[2].body["data"]["id"], third_assignment);
    let (_, dead) = app.get(&app.admin, &format!("{HOOKS}/deadLetters")).await;
    let event = dead["value"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = app.post(&app.admin, &format!("{HOOKS}/deadLetters/{event}/replay"), json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.drain_outbox().await;
    assert_eq!(receiver.calls().len(), 5);
    assert_eq!(receiver.calls()[4].id, event);

    // Delivered events are cleaned up after the retention period; dead letters stay.
    let delivered = outbox_count(&app, "delivered").await;
    assert_eq!(delivered, 4, "the third assignment's three events and the replayed one");
    let dead_before = outbox_count(&app, "dead").await;
    assert_eq!(grantry_core::outbox::clean_up(&app.state().app).await.unwrap(), 0, "too young to go");
    advance(&app, "P31D").await;
    assert_eq!(grantry_core::outbox::clean_up(&app.state().app).await.unwrap(), 4);
    assert_eq!(outbox_count(&app, "delivered").await, 0);
    assert_eq!(outbox_count(&app, "dead").await, dead_before);
}

#[tokio::test]
async fn a_receiver_asking_for_time_with_retry_after_gets_it_for_every_event_owed_to_it() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver, json!(["accessPackageAssignment.added"])).await;
    let f = app.seed_package_with_group().await;
    receiver.answer(503);
    let a = app.create_user("a").await;
    app.admin_assign(&f, &a).await;
    app.drain_outbox().await;
    advance(&app, "PT3S").await;
    let b = app.create_user("b").await;
    app.admin_assign(&f, &b).await;
    app.drain_outbox().await;
    assert_eq!(receiver.calls().len(), 2, "one event per assignment, each refused once");
    // A's retry is answered 429 with Retry-After: 60. B's retry (due 5 s after its first
    // attempt) waits as long, although B itself was never told so.
    receiver.answer_retry_after(429, 60);
    advance(&app, "PT3S").await;
    assert_eq!(receiver.calls().len(), 3);
    receiver.answer(204);
    advance(&app, "PT10S").await;
    assert_eq!(receiver.calls().len(), 3, "the destination is paused");
    advance(&app, "PT60S").await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 4, "B is sent once the pause is over");
    assert_eq!(calls[3].id, calls[1].id);
    // A itself waits for its own backoff (at least the Retry-After).
    advance(&app, "PT5M").await;
    assert_eq!(receiver.calls().len(), 5);
    assert_eq!(receiver.calls()[4].id, calls[0].id);
    assert_eq!(outbox_count(&app, "pending").await, 0);
}

#[tokio::test]
async fn a_retry_after_given_as_an_http_date_is_honoured() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver, json!(["accessPackageAssignment.added"])).await;
    let f = app.seed_package_with_group().await;
    // Two minutes from the server's clock, as an IMF-fixdate.
    let at = app.state().app.now() + chrono::Duration::seconds(120);
    receiver.answer_retry_at(503, &at.format("%a, %d %b %Y %H:%M:%S GMT").to_string());
    let a = app.create_user("a").await;
    app.admin_assign(&f, &a).await;
    app.drain_outbox().await;
    assert_eq!(receiver.calls().len(), 1);
    receiver.answer(204);
    advance(&app, "PT60S").await;
    assert_eq!(receiver.calls().len(), 1, "the receiver asked for two minutes, not the usual five seconds");
    advance(&app, "PT61S").await;
    assert_eq!(receiver.calls().len(), 2);
    assert_eq!(outbox_count(&app, "pending").await, 0);
}

#[tokio::test]
async fn subscriptions_can_be_changed_and_bad_changes_change_nothing() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let id = subscribe(&app, &receiver, json!(["accessPackageAssignment.added"])).await;
    let path = format!("{HOOKS}/{id}");
    let (_, before) = app.get(&app.admin, &path).await;
    for (body, target) in [
        (json!({ "url": "ftp://example.com/x" }), "url"),
        (json!({ "url": "https://u:p@example.com/x" }), "url"),
        (json!({ "eventTypes": ["nonsense"] }), "eventTypes[0]"),
        (json!({ "eventTypes": "accessPackageAssignment.*" }), "eventTypes"),
        (json!({ "enabled": null }), "enabled"),
        (json!({ "enabled": "yes" }), "enabled"),
        (json!({ "secret": "whsec_x" }), "secret"),
    ] {
        let (status, resp) = app.patch(&app.admin, &path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert_eq!(resp["error"]["target"], target, "{resp}");
    }
    let user = app.create_user("someone").await;
    let (status, _) = app.patch(&app.user_token_default(&user), &path, json!({ "description": "x" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.patch(&app.admin, &format!("{HOOKS}/00000000-0000-0000-0000-000000000000"), json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, after) = app.get(&app.admin, &path).await;
    assert_eq!(after, before, "nothing changed");

    let (status, changed) = app
        .patch(
            &app.admin,
            &path,
            json!({ "eventTypes": ["accessPackageAssignmentRequest.delivered"], "description": null }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["eventTypes"], json!(["accessPackageAssignmentRequest.delivered"]));
    assert_eq!(changed["description"], Value::Null);
    assert!(changed.get("secret").is_none());
    let f = app.seed_package_with_group().await;
    let u = app.create_user("u").await;
    app.admin_assign(&f, &u).await;
    app.drain_outbox().await;
    assert_eq!(types(&receiver), ["accessPackageAssignmentRequest.delivered"], "the new event types apply");
    assert!(receiver.calls()[0].signature_ok, "still signed with the same secret");
}
