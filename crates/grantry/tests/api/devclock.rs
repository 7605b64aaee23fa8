//! The development clock.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn advance_moves_time_forward_for_administrators() {
    let app = TestApp::spawn().await;
    let (status, before) = app.get(&app.admin, "/_grantry/clock").await;
    assert_eq!(status, StatusCode::OK, "{before}");
    let (status, after) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": "P30D" })).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after["offset"], "P30D");
    let t0 = chrono::DateTime::parse_from_rfc3339(before["now"].as_str().unwrap()).unwrap();
    let t1 = chrono::DateTime::parse_from_rfc3339(after["now"].as_str().unwrap()).unwrap();
    assert!(t1 - t0 >= chrono::Duration::days(30));

    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": "-P1D" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "InvalidRequestBody");
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": "soon" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let reader = app.app_token(&["EntitlementManagement.Read.All"]);
    let (status, _) = app.post(&reader, "/_grantry/clock/advance", json!({ "duration": "P1D" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_clock_is_refused_unless_enabled() {
    let app = TestApp::spawn_with(Options { dev_clock: false, ..Default::default() }).await;
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": "P1D" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "DevClockDisabled");
}

#[tokio::test]
async fn the_clock_keeps_its_offset_across_a_restart() {
    let mut app = TestApp::spawn().await;
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": "P30D" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let catalog = app.create_catalog("Made in the future").await;
    let (_, made) = app.get(&app.admin, &em("v1.0", &format!("catalogs/{catalog}"))).await;
    let created = chrono::DateTime::parse_from_rfc3339(made["createdDateTime"].as_str().unwrap()).unwrap();

    app.restart().await;
    let (status, clock) = app.get(&app.admin, "/_grantry/clock").await;
    assert_eq!(status, StatusCode::OK, "{clock}");
    assert_eq!(clock["offset"], "P30D", "{clock}");
    let now = chrono::DateTime::parse_from_rfc3339(clock["now"].as_str().unwrap()).unwrap();
    assert!(now >= created, "after the restart the clock reads {now}, before the catalog made at {created}");

    // Advancing again adds to the stored offset.
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": "P1D" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["offset"], "P31D", "{body}");
    app.restart().await;
    let (_, clock) = app.get(&app.admin, "/_grantry/clock").await;
    assert_eq!(clock["offset"], "P31D", "{clock}");
}
