//! Custom extension callouts end to end: a receiver started by the test (on loopback)
//! checks each call's Standard Webhooks signature and records it. Every stage fires once
//! with Entra's payload; a receiver that is down is retried until it answers, and the
//! effect happens once; destinations outside the allow-list are refused; a request waits for
//! `resume` and times out by the development clock.

use crate::helpers::*;
use crate::receiver::Receiver;
use grantry_domain::enums::{AllowedTargetScope, ApproverInformationVisibility, CustomExtensionStage, ExpirationType};
use grantry_domain::model::{ApprovalStage, CustomExtensionStageSetting, Expiration, Policy, SubjectSet};
use reqwest::StatusCode;
use serde_json::{Value, json};

const REQUEST_EXT: &str = "accessPackageAssignmentRequestWorkflowExtension";
const ASSIGNMENT_EXT: &str = "accessPackageAssignmentWorkflowExtension";

fn reqs(rest: &str) -> String {
    format!("/v1.0/{EM}/assignmentRequests{rest}")
}

async fn advance(app: &TestApp, duration: &str) {
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": duration })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain().await;
    app.drain_outbox().await;
}

/// Creates an extension calling `url` and returns (id, secret).
async fn extension(app: &TestApp, catalog: &str, kind: &str, url: &str, extra: Value) -> (String, String) {
    let mut body = json!({
        "endpointConfiguration": { "@odata.type": "#microsoft.graph.httpRequestEndpoint", "targetUrl": url }
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let created = app.create_extension(catalog, kind, body).await;
    (created["id"].as_str().unwrap().to_string(), created["@grantry.signingSecret"].as_str().unwrap().to_string())
}

fn settings(pairs: &[(CustomExtensionStage, &str)]) -> Vec<CustomExtensionStageSetting> {
    pairs
        .iter()
        .map(|(stage, ext)| CustomExtensionStageSetting {
            id: grantry_domain::ids::new_id(),
            stage: *stage,
            custom_extension_id: ext.to_string(),
        })
        .collect()
}

fn approval_stage(approver: &str) -> ApprovalStage {
    ApprovalStage {
        duration_before_automatic_denial: Some(chrono::Duration::days(14)),
        duration_before_escalation: None,
        is_approver_justification_required: false,
        is_escalation_enabled: false,
        primary_approvers: vec![SubjectSet::SingleUser { user_id: Some(approver.to_string()), description: None }],
        fallback_primary_approvers: vec![],
        escalation_approvers: vec![],
        fallback_escalation_approvers: vec![],
        approver_information_visibility: ApproverInformationVisibility::Default,
        is_dynamic: false,
    }
}

/// A self-service policy of the fixture's package, shaped by `edit`.
async fn self_service(app: &TestApp, f: &Fixture, edit: impl FnOnce(&mut Policy) + Send + 'static) -> String {
    app.seed_policy(f, AllowedTargetScope::AllMemberUsers, move |p| {
        p.requestor_settings.enable_targets_to_self_add_access = true;
        p.requestor_settings.enable_targets_to_self_remove_access = true;
        edit(p);
    })
    .await
}

async fn request_access(app: &TestApp, f: &Fixture, user: &str, policy: &str) -> Value {
    let token = app.user_token(user, SUBJECT_SCOPES);
    let (status, r) = app
        .post(
            &token,
            &reqs(""),
            json!({"requestType": "userAdd", "assignment": {"accessPackageId": f.package_id, "assignmentPolicyId": policy}, "justification": "for the audit"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    app.drain().await;
    app.drain_outbox().await;
    r
}

async fn request(app: &TestApp, id: &str) -> Value {
    let (status, r) = app.get(&app.admin, &reqs(&format!("/{id}?$expand=assignment"))).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    r
}

fn stages(receiver: &Receiver) -> Vec<String> {
    receiver.calls().iter().map(|c| c.body["Stage"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn every_stage_calls_out_once_with_entras_payload_signed() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let f = app.seed_package_with_group().await;
    let (req_ext, req_secret) = extension(&app, &f.catalog_id, REQUEST_EXT, &receiver.url("/request"), json!({})).await;
    let (exp_ext, exp_secret) =
        extension(&app, &f.catalog_id, ASSIGNMENT_EXT, &receiver.url("/expiry"), json!({})).await;
    receiver.expect_secret(&req_secret);
    receiver.expect_secret(&exp_secret);
    let approver = app.create_user("approver").await;
    let user = app.create_user("requester").await;
    let (re, ee, ap) = (req_ext.clone(), exp_ext.clone(), approver.clone());
    let policy = self_service(&app, &f, move |p| {
        p.approval.is_approval_required_for_add = true;
        p.approval.stages = vec![approval_stage(&ap)];
        p.expiration = Expiration {
            kind: ExpirationType::AfterDuration,
            end_date_time: None,
            duration: Some(chrono::Duration::days(30)),
        };
        p.custom_extension_stage_settings = settings(&[
            (CustomExtensionStage::AssignmentRequestCreated, &re),
            (CustomExtensionStage::AssignmentRequestApproved, &re),
            (CustomExtensionStage::AssignmentRequestGranted, &re),
            (CustomExtensionStage::AssignmentRequestRemoved, &re),
            (CustomExtensionStage::AssignmentFourteenDaysBeforeExpiration, &ee),
            (CustomExtensionStage::AssignmentOneDayBeforeExpiration, &ee),
        ]);
    })
    .await;

    // Created: the documented flat PascalCase body, signed.
    let r = request_access(&app, &f, &user, &policy).await;
    let rid = r["id"].as_str().unwrap().to_string();
    assert_eq!(stages(&receiver), ["assignmentRequestCreated"]);
    let call = &receiver.calls()[0];
    assert!(call.signature_ok, "signature of {call:?}");
    let body = &call.body;
    assert_eq!(body["AccessPackageAssignmentRequestId"], rid);
    assert_eq!(
        body["CallbackUriPath"],
        format!("/identityGovernance/entitlementManagement/accessPackageAssignmentRequests/{rid}/resume")
    );
    assert_eq!(body["RequestType"], "UserAdd");
    assert_eq!(body["AccessPackage"]["Id"], f.package_id);
    assert_eq!(body["AccessPackageCatalog"]["Id"], f.catalog_id);
    assert_eq!(body["Assignment"]["AssignmentPolicy"]["Id"], policy);
    assert_eq!(body["Assignment"]["Target"]["ObjectId"], user);
    assert_eq!(body["Requestor"]["ObjectId"], user);
    let instance = body["CustomExtensionStageInstanceId"].as_str().unwrap().to_string();
    assert_eq!(call.id, instance, "webhook-id is the stage instance id");
    assert!(!call.raw.windows(6).any(|w| w == b"whsec_"), "no secret in the payload");
    let got = request(&app, &rid).await;
    let instances = got["customExtensionCalloutInstances"].as_array().unwrap().clone();
    assert_eq!(instances.len(), 1, "{got}");
    assert_eq!(instances[0]["id"], instance);
    assert_eq!(instances[0]["customExtensionId"], req_ext);
    assert_eq!(instances[0]["status"], "calloutSent");

    // Approved, then granted.
    let approver_token = app.user_token(&approver, SUBJECT_SCOPES);
    let (_, a) = app.get(&approver_token, &format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{rid}")).await;
    let stage = a["stages"][0]["id"].as_str().unwrap_or_else(|| panic!("{a}")).to_string();
    let (status, body) = app
        .patch(
            &approver_token,
            &format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{rid}/stages/{stage}"),
            json!({"reviewResult": "Approve", "justification": "fine"}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    app.drain().await;
    app.drain_outbox().await;
    assert_eq!(
        stages(&receiver),
        ["assignmentRequestCreated", "assignmentRequestApproved", "assignmentRequestGranted"]
    );
    let got = request(&app, &rid).await;
    assert_eq!(got["state"], "delivered", "{got}");
    assert_eq!(got["customExtensionCalloutInstances"].as_array().unwrap().len(), 3);
    let granted = &receiver.calls()[2].body;
    assert_eq!(granted["Assignment"]["Id"], got["assignment"]["id"]);
    assert_eq!(granted["Assignment"]["State"], "Delivered");

    // Fourteen days and one day before the end, then the end itself.
    advance(&app, "P16D").await;
    assert_eq!(stages(&receiver).len(), 4);
    let fourteen = &receiver.calls()[3].body;
    assert_eq!(fourteen["Stage"], "assignmentFourteenDaysBeforeExpiration");
    assert!(fourteen.get("CallbackUriPath").is_none());
    assert_eq!(fourteen["Assignment"]["Id"], got["assignment"]["id"]);
    advance(&app, "P13D").await;
    assert_eq!(stages(&receiver)[4], "assignmentOneDayBeforeExpiration");
    advance(&app, "P2D").await;
    assert_eq!(
        stages(&receiver),
        [
            "assignmentRequestCreated",
            "assignmentRequestApproved",
            "assignmentRequestGranted",
            "assignmentFourteenDaysBeforeExpiration",
            "assignmentOneDayBeforeExpiration",
            "assignmentRequestRemoved",
        ]
    );
    assert!(receiver.calls().iter().all(|c| c.signature_ok));
    let (_, assignment) =
        app.get(&app.admin, &format!("/v1.0/{EM}/assignments/{}", got["assignment"]["id"].as_str().unwrap())).await;
    assert_eq!(assignment["customExtensionCalloutInstances"].as_array().unwrap().len(), 2, "{assignment}");
    // Nothing fires twice.
    advance(&app, "P30D").await;
    assert_eq!(receiver.calls().len(), 6);
    // The audit trail has each callout.
    let (_, audit) = app.get(&app.admin, "/_grantry/audit?$top=500").await;
    let sent = audit["value"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|e| e["entityType"] == "customExtensionCalloutInstance" && e["action"] == "calloutSent")
                .count()
        })
        .unwrap_or_default();
    assert_eq!(sent, 6, "{audit}");
}

#[tokio::test]
async fn pre_expiry_callouts_reach_assignments_made_before_the_policy_named_them_and_follow_a_new_end() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let f = app.seed_package_with_group().await;
    let (ext, secret) = extension(&app, &f.catalog_id, ASSIGNMENT_EXT, &receiver.url("/expiry"), json!({})).await;
    receiver.expect_secret(&secret);
    let policy = self_service(&app, &f, |p| {
        p.requestor_settings.enable_targets_to_self_update_access = true;
        p.expiration = Expiration {
            kind: ExpirationType::AfterDuration,
            end_date_time: None,
            duration: Some(chrono::Duration::days(20)),
        };
    })
    .await;
    let user = app.create_user("holder").await;
    let r = request_access(&app, &f, &user, &policy).await;
    let got = request(&app, r["id"].as_str().unwrap()).await;
    assert_eq!(got["state"], "delivered", "{got}");
    let aid = got["assignment"]["id"].as_str().unwrap().to_string();
    // An assignment that lacks its pre-expiry points, as one copied in or delivered by an
    // older version would.
    app.state()
        .app
        .store
        .write(|c| c.execute("DELETE FROM jobs WHERE kind = 'callout.preExpiry'", &[]).map(|_| ()))
        .await
        .unwrap();
    // The policy gains both pre-expiry stages.
    let path = format!("/v1.0/{EM}/assignmentPolicies/{policy}");
    let (_, mut body) = app.get(&app.admin, &path).await;
    body.as_object_mut().unwrap().remove("@odata.context");
    body["customExtensionStageSettings"] = json!([
        { "stage": "assignmentFourteenDaysBeforeExpiration", "customExtension": { "id": ext } },
        { "stage": "assignmentOneDayBeforeExpiration", "customExtension": { "id": ext } }
    ]);
    let (status, resp) = app.put(&app.admin, &path, body).await;
    assert!(status.is_success(), "{resp}");
    advance(&app, "P7D").await;
    assert_eq!(stages(&receiver), ["assignmentFourteenDaysBeforeExpiration"]);
    assert_eq!(receiver.calls()[0].body["Assignment"]["Id"], aid);

    // The holder extends: the policy's 20 days again from now. The new end has its own
    // 14-day point, and the old end's 1-day point is gone.
    let token = app.user_token(&user, SUBJECT_SCOPES);
    let (status, resp) = app
        .post(
            &token,
            &reqs(""),
            json!({"requestType": "userUpdate", "assignment": {"id": aid}, "justification": "longer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    app.drain().await;
    advance(&app, "P5D").await;
    assert_eq!(stages(&receiver).len(), 1);
    advance(&app, "P2D").await;
    assert_eq!(stages(&receiver), ["assignmentFourteenDaysBeforeExpiration", "assignmentFourteenDaysBeforeExpiration"]);
    advance(&app, "P13D").await;
    assert_eq!(
        stages(&receiver),
        [
            "assignmentFourteenDaysBeforeExpiration",
            "assignmentFourteenDaysBeforeExpiration",
            "assignmentOneDayBeforeExpiration"
        ],
        "one 1-day callout, for the new end"
    );
    assert!(receiver.calls().iter().all(|c| c.signature_ok));
}

#[tokio::test]
async fn a_receiver_that_is_down_is_retried_until_it_answers_and_gets_each_callout_once() {
    let app = TestApp::spawn().await;
    let mut receiver = Receiver::start().await;
    let (f, policy) = granted_setup(&app, &receiver).await;
    receiver.stop().await;
    let user = app.create_user("requester").await;
    let r = request_access(&app, &f, &user, &policy).await;
    let rid = r["id"].as_str().unwrap().to_string();
    // Delivered access does not wait for the callout.
    assert_eq!(request(&app, &rid).await["state"], "delivered");
    let pending = |app: &TestApp| {
        let app = app.state().app.clone();
        async move { app.store.read(|c| grantry_store::repo::count(c, "outbox", "state = 'pending'", &[])).await.unwrap() }
    };
    assert_eq!(pending(&app).await, 1);
    advance(&app, "PT10S").await;
    advance(&app, "PT10M").await;
    assert_eq!(pending(&app).await, 1, "still pending after failed attempts");
    let got = request(&app, &rid).await;
    assert_eq!(got["customExtensionCalloutInstances"][0]["status"], Value::Null, "{got}");

    // Back, but failing with 503 once: retried, same webhook-id.
    receiver.restart().await;
    receiver.answer(503);
    advance(&app, "PT1H").await;
    assert_eq!(receiver.calls().len(), 1);
    receiver.answer(202);
    advance(&app, "PT3H").await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].id, calls[1].id, "a retry carries the same webhook-id");
    assert!(calls.iter().all(|c| c.signature_ok));
    assert_eq!(pending(&app).await, 0);
    let got = request(&app, &rid).await;
    assert_eq!(got["customExtensionCalloutInstances"][0]["status"], "calloutSent", "{got}");
    advance(&app, "P3D").await;
    assert_eq!(receiver.calls().len(), 2, "nothing is sent after a 2xx");
}

#[tokio::test]
async fn destinations_outside_the_allow_list_are_refused_and_recorded() {
    let app = TestApp::spawn_with(Options { outbound_allow: vec![], ..Options::default() }).await;
    let receiver = Receiver::start().await;
    let f = app.seed_package_with_group().await;
    let (ext, _) = extension(&app, &f.catalog_id, REQUEST_EXT, &receiver.url("/hook"), json!({})).await;
    let e = ext.clone();
    let policy = self_service(&app, &f, move |p| {
        p.custom_extension_stage_settings = settings(&[(CustomExtensionStage::AssignmentRequestCreated, &e)]);
    })
    .await;
    let user = app.create_user("requester").await;
    let r = request_access(&app, &f, &user, &policy).await;
    assert!(receiver.calls().is_empty(), "loopback is refused by default");
    let got = request(&app, r["id"].as_str().unwrap()).await;
    let instance = &got["customExtensionCalloutInstances"][0];
    assert_eq!(instance["status"], "calloutFailed", "{got}");
    assert!(instance["detail"].as_str().unwrap().contains("not allowed"), "{instance}");
    assert_eq!(got["state"], "delivered", "a callout that is not waited for does not stop the request");
}

/// A created-stage extension that waits for its callback (one hour).
/// A self-service package whose policy calls one extension at `/hook` when access is granted.
async fn granted_setup(app: &TestApp, receiver: &Receiver) -> (Fixture, String) {
    let f = app.seed_package_with_group().await;
    let (ext, secret) = extension(app, &f.catalog_id, REQUEST_EXT, &receiver.url("/hook"), json!({})).await;
    receiver.expect_secret(&secret);
    let policy = self_service(app, &f, move |p| {
        p.custom_extension_stage_settings = settings(&[(CustomExtensionStage::AssignmentRequestGranted, &ext)]);
    })
    .await;
    (f, policy)
}

async fn waiting_setup(app: &TestApp, receiver: &Receiver) -> (Fixture, String, String) {
    let f = app.seed_package_with_group().await;
    let (ext, secret) = extension(
        app,
        &f.catalog_id,
        REQUEST_EXT,
        &receiver.url("/wait"),
        json!({ "callbackConfiguration": { "@odata.type": "#microsoft.graph.customExtensionCallbackConfiguration", "timeoutDuration": "PT1H" } }),
    )
    .await;
    receiver.expect_secret(&secret);
    let e = ext.clone();
    let policy = self_service(app, &f, move |p| {
        p.custom_extension_stage_settings = settings(&[(CustomExtensionStage::AssignmentRequestCreated, &e)]);
    })
    .await;
    (f, policy, ext)
}

#[tokio::test]
async fn an_endpoint_answering_410_gone_disables_its_extension_until_an_administrator_changes_it() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (f, policy, ext) = waiting_setup(&app, &receiver).await;
    let path = format!("/v1.0/{EM}/catalogs/{}/customWorkflowExtensions/{ext}", f.catalog_id);
    receiver.answer(410);
    let first = app.create_user("first").await;
    let r = request_access(&app, &f, &first, &policy).await;
    assert_eq!(receiver.calls().len(), 1);
    let got = request(&app, r["id"].as_str().unwrap()).await;
    assert_eq!(got["customExtensionCalloutInstances"][0]["status"], "calloutFailed", "{got}");
    assert_ne!(got["state"], "delivered", "the answer it waited for can never come: {got}");
    // Administrators see why Grantry stopped calling it.
    let (status, shown) = app.get(&app.admin, &path).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    let reason = shown["@grantry.disabled"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("410 Gone"), "{shown}");
    // Later stages are not called; their callouts are recorded as failed, with the reason.
    let second = app.create_user("second").await;
    let r = request_access(&app, &f, &second, &policy).await;
    assert_eq!(receiver.calls().len(), 1, "a disabled extension is not called");
    let got = request(&app, r["id"].as_str().unwrap()).await;
    let instance = &got["customExtensionCalloutInstances"][0];
    assert_eq!(instance["status"], "calloutFailed", "{got}");
    assert!(instance["detail"].as_str().unwrap().contains("disabled"), "{instance}");
    assert_eq!(got["state"], "deliveryFailed", "a request does not go on without the workflow it waits for: {got}");
    // A change by an administrator enables it again.
    let (status, body) = app.patch(&app.admin, &path, json!({ "description": "moved to the new endpoint" })).await;
    assert!(status.is_success(), "{body}");
    let (_, shown) = app.get(&app.admin, &path).await;
    assert!(shown.get("@grantry.disabled").is_none(), "{shown}");
    receiver.answer(202);
    let third = app.create_user("third").await;
    let r = request_access(&app, &f, &third, &policy).await;
    assert_eq!(receiver.calls().len(), 2, "called again");
    let got = request(&app, r["id"].as_str().unwrap()).await;
    assert_eq!(got["status"], "WaitingForCallback", "{got}");
}

/// The resume body of the v1.0 docs (graph-api reference A9) for `instance`.
fn resume_body(instance: &str, state: Option<&str>) -> Value {
    json!({
        "source": "LogicApp",
        "type": "microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestCreated",
        "data": {
            "@odata.type": "#microsoft.graph.accessPackageAssignmentRequestCallbackData",
            "stage": "assignmentRequestCreated",
            "customExtensionStageInstanceId": instance,
            "customExtensionStageInstanceDetail": "approved by external system",
            "state": state
        }
    })
}

#[tokio::test]
async fn a_request_waits_for_resume_and_refusals_change_nothing() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (f, policy, _) = waiting_setup(&app, &receiver).await;
    let user = app.create_user("requester").await;
    let r = request_access(&app, &f, &user, &policy).await;
    let rid = r["id"].as_str().unwrap().to_string();
    assert_eq!(receiver.calls().len(), 1);
    let call = receiver.calls()[0].body.clone();
    assert_eq!(call["CallbackConfiguration"]["DurationBeforeTimeout"], "PT1H");
    let instance = call["CustomExtensionStageInstanceId"].as_str().unwrap().to_string();
    let waiting = request(&app, &rid).await;
    assert_eq!(waiting["status"], "WaitingForCallback", "{waiting}");
    assert_eq!(waiting["state"], "submitted");
    assert_eq!(waiting["customExtensionCalloutInstances"][0]["status"], "waitingForCallback");
    assert!(!app.is_member(&f.group_id, &user).await, "no access before the resume");
    let (_, beta) = app.get(&app.admin, &format!("/beta/{EM}/accessPackageAssignmentRequests/{rid}")).await;
    assert_eq!(beta["requestStatus"], "WaitingForCallback", "{beta}");

    // Refusals: nothing changes.
    let path = reqs(&format!("/{rid}/resume"));
    let stranger = app.create_user("stranger").await;
    let cases = vec![
        (app.admin.clone(), resume_body("00000000-0000-0000-0000-000000000001", None), StatusCode::BAD_REQUEST),
        (app.admin.clone(), json!({ "source": "x" }), StatusCode::BAD_REQUEST),
        (app.admin.clone(), resume_body(&instance, Some("approved")), StatusCode::BAD_REQUEST),
        (
            app.admin.clone(),
            {
                let mut b = resume_body(&instance, None);
                b["data"]["stage"] = json!("assignmentRequestApproved");
                b
            },
            StatusCode::BAD_REQUEST,
        ),
        (
            app.admin.clone(),
            {
                let mut b = resume_body(&instance, None);
                b["data"]["approvalStage"] = json!({ "primaryApprovers": [] });
                b
            },
            StatusCode::BAD_REQUEST,
        ),
        (app.user_token(&user, SUBJECT_SCOPES), resume_body(&instance, None), StatusCode::FORBIDDEN),
        (app.user_token_default(&stranger), resume_body(&instance, None), StatusCode::NOT_FOUND),
        (app.app_token(&["EntitlementManagement.Read.All"]), resume_body(&instance, None), StatusCode::FORBIDDEN),
    ];
    for (token, body, expected) in cases {
        let (status, resp) = app.post(&token, &path, body.clone()).await;
        assert_eq!(status, expected, "{body}: {resp}");
        assert!(resp["error"]["code"].is_string(), "{resp}");
    }
    let (status, _) =
        app.post(&app.admin, &reqs("/00000000-0000-0000-0000-000000000009/resume"), resume_body(&instance, None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.drain().await;
    let unchanged = request(&app, &rid).await;
    assert_eq!(unchanged["status"], "WaitingForCallback");
    assert_eq!(unchanged["customExtensionCalloutInstances"], waiting["customExtensionCalloutInstances"]);

    // The resume (beta path, instance id in upper case as Entra's examples show) continues it.
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/beta/{EM}/accessPackageAssignmentRequests/{rid}/resume"),
            resume_body(&instance.to_uppercase(), None),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.drain().await;
    let done = request(&app, &rid).await;
    assert_eq!(done["state"], "delivered", "{done}");
    assert!(app.is_member(&f.group_id, &user).await);
    let i = &done["customExtensionCalloutInstances"][0];
    assert_eq!(i["status"], "callbackReceived");
    assert_eq!(i["detail"], "approved by external system");

    // A second resume, and a resume of a finished request, are refused.
    let (status, resp) = app.post(&app.admin, &path, resume_body(&instance, None)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{resp}");
    assert_eq!(request(&app, &rid).await["customExtensionCalloutInstances"], done["customExtensionCalloutInstances"]);
}

#[tokio::test]
async fn a_resume_can_deny_and_silence_times_out_by_the_clock() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (f, policy, _) = waiting_setup(&app, &receiver).await;

    let denied_user = app.create_user("denied").await;
    let r = request_access(&app, &f, &denied_user, &policy).await;
    let rid = r["id"].as_str().unwrap().to_string();
    let instance = receiver.calls()[0].body["CustomExtensionStageInstanceId"].as_str().unwrap().to_string();
    let (status, body) =
        app.post(&app.admin, &reqs(&format!("/{rid}/resume")), resume_body(&instance, Some("denied"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.drain().await;
    let denied = request(&app, &rid).await;
    assert_eq!(denied["state"], "denied", "{denied}");
    assert!(!app.is_member(&f.group_id, &denied_user).await);

    let silent_user = app.create_user("silent").await;
    let r = request_access(&app, &f, &silent_user, &policy).await;
    let rid = r["id"].as_str().unwrap().to_string();
    let instance = receiver.calls()[1].body["CustomExtensionStageInstanceId"].as_str().unwrap().to_string();
    advance(&app, "PT59M").await;
    assert_eq!(request(&app, &rid).await["status"], "WaitingForCallback");
    advance(&app, "PT2M").await;
    let timed_out = request(&app, &rid).await;
    assert_eq!(timed_out["state"], "deliveryFailed", "{timed_out}");
    assert_eq!(timed_out["customExtensionCalloutInstances"][0]["status"], "callbackTimedOut");
    assert!(!app.is_member(&f.group_id, &silent_user).await);
    let (status, _) = app.post(&app.admin, &reqs(&format!("/{rid}/resume")), resume_body(&instance, None)).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_pending_callout_survives_a_restart_and_is_sent_once() {
    let mut app = TestApp::spawn().await;
    let mut receiver = Receiver::start().await;
    let (f, policy) = granted_setup(&app, &receiver).await;
    receiver.stop().await;
    let user = app.create_user("requester").await;
    let r = request_access(&app, &f, &user, &policy).await;
    let rid = r["id"].as_str().unwrap().to_string();
    // The server goes away with the callout still owed; it comes back on the same database.
    app.restart().await;
    receiver.restart().await;
    advance(&app, "PT10S").await;
    advance(&app, "PT1H").await;
    let calls = receiver.calls();
    assert_eq!(calls.len(), 1, "sent once after the restart");
    assert!(calls[0].signature_ok);
    assert_eq!(calls[0].body["AccessPackageAssignmentRequestId"], rid);
    assert_eq!(request(&app, &rid).await["customExtensionCalloutInstances"][0]["status"], "calloutSent");
}

/// Verifies `token` as a receiver would: with the keys the server publishes, for its
/// issuer and `audience`. Returns the claims.
async fn verify_with_jwks(app: &TestApp, token: &str, audience: &str) -> Value {
    let (status, jwks) = app.get("", "/common/discovery/v2.0/keys").await;
    assert_eq!(status, StatusCode::OK, "{jwks}");
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks).unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.expect("kid");
    let key = jsonwebtoken::DecodingKey::from_jwk(set.find(&kid).expect("the signing key is published")).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[app.state().keys.issuer()]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).expect("the callout token verifies").claims
}

#[tokio::test]
async fn callouts_carry_the_bearer_token_their_authentication_configuration_asks_for() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let f = app.seed_package_with_group().await;
    let auth = |resource: Option<&str>| match resource {
        Some(r) => json!({ "authenticationConfiguration": {
            "@odata.type": "#microsoft.graph.azureAdTokenAuthentication", "resourceId": r } }),
        None => json!({ "authenticationConfiguration": {
            "@odata.type": "#microsoft.graph.azureAdPopTokenAuthentication" } }),
    };
    let (token_ext, s1) =
        extension(&app, &f.catalog_id, REQUEST_EXT, &receiver.url("/token"), auth(Some("api://receiver"))).await;
    let (pop_ext, s2) = extension(&app, &f.catalog_id, REQUEST_EXT, &receiver.url("/pop"), auth(None)).await;
    let (graph_ext, _) =
        extension(&app, &f.catalog_id, REQUEST_EXT, &receiver.url("/graph"), auth(Some("https://graph.microsoft.com")))
            .await;
    receiver.expect_secret(&s1);
    receiver.expect_secret(&s2);
    let (t, p, g) = (token_ext.clone(), pop_ext.clone(), graph_ext.clone());
    let policy = self_service(&app, &f, move |policy| {
        policy.custom_extension_stage_settings = settings(&[
            (CustomExtensionStage::AssignmentRequestCreated, &t),
            (CustomExtensionStage::AssignmentRequestGranted, &p),
            (CustomExtensionStage::AssignmentRequestRemoved, &g),
        ]);
    })
    .await;
    let user = app.create_user("requester").await;
    let r = request_access(&app, &f, &user, &policy).await;
    let rid = r["id"].as_str().unwrap().to_string();
    let calls = receiver.calls();
    assert_eq!(stages(&receiver), ["assignmentRequestCreated", "assignmentRequestGranted"], "{calls:?}");
    assert!(calls.iter().all(|c| c.signature_ok), "still signed");

    // azureAdTokenAuthentication: a bearer token for its resourceId, from Grantry's issuer.
    let bearer = calls[0].authorization.as_deref().and_then(|h| h.strip_prefix("Bearer ")).expect("a bearer token");
    let claims = verify_with_jwks(&app, bearer, "api://receiver").await;
    assert_eq!(claims["appid"], "810dcf14-1858-4bf2-8134-4c369fa3235b");
    assert_eq!(claims["tid"], app.state().keys.tenant_id.as_str());
    assert!(claims.get("roles").is_none() && claims.get("scp").is_none(), "{claims}");
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 300);
    // The token opens nothing on Grantry's own API.
    let (status, _) = app.get(bearer, &reqs(&format!("/{rid}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // azureAdPopTokenAuthentication: a bearer token whose audience is the receiver's origin.
    let bearer = calls[1].authorization.as_deref().and_then(|h| h.strip_prefix("Bearer ")).expect("a bearer token");
    verify_with_jwks(&app, bearer, &format!("http://{}", receiver.addr)).await;

    // Grantry's own API audience: no token is minted, the callout fails saying why.
    let assignment = request(&app, &rid).await["assignment"]["id"].clone();
    let (status, body) = app
        .post(
            &app.user_token(&user, SUBJECT_SCOPES),
            &reqs(""),
            json!({"requestType": "userRemove", "assignment": {"id": assignment}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let removal = body["id"].as_str().unwrap().to_string();
    app.drain().await;
    app.drain_outbox().await;
    // The removal request's own created stage is called (with a token); its removed stage is not.
    assert_eq!(
        stages(&receiver),
        ["assignmentRequestCreated", "assignmentRequestGranted", "assignmentRequestCreated"],
        "nothing sent for the removed stage"
    );
    let got = request(&app, &removal).await;
    let instance = got["customExtensionCalloutInstances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["customExtensionId"] == graph_ext.as_str())
        .unwrap_or_else(|| panic!("{got}"))
        .clone();
    assert_eq!(instance["status"], "calloutFailed", "{got}");
    assert!(instance["detail"].as_str().unwrap().contains("own API audience"), "{instance}");
}

/// The real binary, killed with SIGKILL while a callout is owed (its receiver is down):
/// after the restart the callout is sent, once, with the id it was written with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callout_owed_at_sigkill_is_sent_once_by_the_restarted_binary() {
    use crate::crash::{Server, bin};
    use std::ffi::{OsStr, OsString};
    let dir = tempfile::tempdir().expect("temp dir");
    let pg = if on_postgres() { PgTestDatabase::create() } else { None };
    let db_args: Vec<OsString> = match &pg {
        Some(p) => vec!["--database".into(), p.url.clone().into(), "--key-dir".into(), dir.path().join("keys").into()],
        None => vec!["--data-dir".into(), dir.path().into()],
    };
    let mut serve_args = db_args.clone();
    serve_args.extend(["--outbound-allow".into(), "127.0.0.0/8".into()]);
    let serve_args: Vec<&OsStr> = serve_args.iter().map(OsString::as_os_str).collect();
    let mut server = Server::start_with(&serve_args);
    let out = std::process::Command::new(bin())
        .arg("token")
        .args(&db_args)
        .args(["--app", "callout-crash", "--expires-in", "1h", "--roles"])
        .arg("EntitlementManagement.ReadWrite.All,User.ReadWrite.All")
        .env("GRANTRY_LOG", "error")
        .output()
        .expect("grantry token runs");
    assert!(out.status.success(), "grantry token: {}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let http = reqwest::Client::new();
    let call = |base: String, method: reqwest::Method, path: String, body: Option<Value>| {
        let (http, token) = (http.clone(), token.clone());
        async move {
            let mut req = http.request(method, format!("{base}{path}")).bearer_auth(token);
            if let Some(b) = body {
                req = req.header("Content-Type", "application/json").body(b.to_string());
            }
            let resp = req.send().await.expect("the server answers");
            let status = resp.status();
            let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null);
            (status, v)
        }
    };
    let post = |base: &str, path: String, body: Value| call(base.to_string(), reqwest::Method::POST, path, Some(body));
    let created = |(status, v): (StatusCode, Value)| {
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v
    };

    let mut receiver = Receiver::start().await;
    let base = server.base.clone();
    let catalog = created(post(&base, format!("/v1.0/{EM}/catalogs"), json!({"displayName": "Crash"})).await);
    let catalog = catalog["id"].as_str().unwrap().to_string();
    let extension = created(
        post(
            &base,
            format!("/v1.0/{EM}/catalogs/{catalog}/customWorkflowExtensions"),
            json!({
                "@odata.type": format!("#microsoft.graph.{REQUEST_EXT}"),
                "displayName": "ticketing",
                "endpointConfiguration": { "@odata.type": "#microsoft.graph.httpRequestEndpoint", "targetUrl": receiver.url("/hook") }
            }),
        )
        .await,
    );
    receiver.expect_secret(extension["@grantry.signingSecret"].as_str().unwrap());
    let package = created(
        post(&base, format!("/v1.0/{EM}/accessPackages"), json!({"displayName": "Crash", "catalog": {"id": catalog}}))
            .await,
    );
    let package = package["id"].as_str().unwrap().to_string();
    let policy = created(
        post(
            &base,
            format!("/v1.0/{EM}/assignmentPolicies"),
            json!({"displayName": "Direct", "allowedTargetScope": "notSpecified", "expiration": {"type": "noExpiration"},
                   "accessPackage": {"id": package},
                   "customExtensionStageSettings": [{"stage": "assignmentRequestCreated", "customExtension": {"id": extension["id"]}}]}),
        )
        .await,
    );
    let user = created(
        post(
            &base,
            "/v1.0/users".into(),
            json!({"displayName": "Casey", "userPrincipalName": "casey@contoso.com", "mail": "casey@contoso.com"}),
        )
        .await,
    );

    // The receiver is down: the callout written with the request stays owed.
    receiver.stop().await;
    let request = created(
        post(
            &base,
            format!("/v1.0/{EM}/assignmentRequests"),
            json!({"requestType": "adminAdd", "assignment": {"targetId": user["id"], "assignmentPolicyId": policy["id"], "accessPackageId": package}}),
        )
        .await,
    );
    let rid = request["id"].as_str().unwrap().to_string();
    let (_, got) = call(base.clone(), reqwest::Method::GET, format!("/v1.0/{EM}/assignmentRequests/{rid}"), None).await;
    let instance = got["customExtensionCalloutInstances"][0].clone();
    assert_eq!(instance["status"], Value::Null, "owed, not sent: {got}");
    let instance_id = instance["id"].as_str().unwrap().to_string();
    server.kill();

    // Back up: the receiver, then the server on the same database.
    receiver.restart().await;
    server = Server::start_with(&serve_args);
    let base = server.base.clone();
    // Past the first retry's backoff. The answer comes once the due messages this server
    // may claim were sent; one the killed process held waits for its lease to run out and
    // goes out with the background sender.
    let (status, body) = post(&base, "/_grantry/clock/advance".into(), json!({"duration": "PT1M"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(receiver.wait_for(1, std::time::Duration::from_secs(30)).await, "the callout never arrived");
    let calls = receiver.calls();
    assert_eq!(calls.len(), 1, "sent once: {calls:?}");
    assert!(calls[0].signature_ok);
    assert_eq!(calls[0].id, instance_id, "with the id it was written with");
    assert_eq!(calls[0].body["AccessPackageAssignmentRequestId"], rid);
    // Recorded a moment after the receiver has it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let got = loop {
        let (_, got) =
            call(base.clone(), reqwest::Method::GET, format!("/v1.0/{EM}/assignmentRequests/{rid}"), None).await;
        if got["customExtensionCalloutInstances"][0]["status"] == "calloutSent"
            || tokio::time::Instant::now() > deadline
        {
            break got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(got["customExtensionCalloutInstances"][0]["status"], "calloutSent", "{got}");
    assert_eq!(got["state"], "delivered", "{got}");
    // Nothing more is sent, however long the server runs.
    let (status, _) = post(&base, "/_grantry/clock/advance".into(), json!({"duration": "P3D"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(receiver.calls().len(), 1);
    server.kill();
}

#[tokio::test]
async fn a_workflow_names_the_approvers_of_a_dynamic_stage_through_resume() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let f = app.seed_package_with_group().await;
    let (ext, secret) = extension(
        &app,
        &f.catalog_id,
        REQUEST_EXT,
        &receiver.url("/approvers"),
        json!({ "callbackConfiguration": { "@odata.type": "#microsoft.graph.customExtensionCallbackConfiguration", "timeoutDuration": "PT1H" } }),
    )
    .await;
    receiver.expect_secret(&secret);
    let approver = app.create_user("approver").await;
    let e = ext.clone();
    let policy = self_service(&app, &f, move |p| {
        p.approval.is_approval_required_for_add = true;
        let mut dynamic = approval_stage("unused");
        dynamic.primary_approvers.clear();
        dynamic.is_dynamic = true;
        p.approval.stages = vec![dynamic];
        p.custom_extension_stage_settings =
            settings(&[(CustomExtensionStage::AssignmentRequestDeterminingApprovalRequirements, &e)]);
    })
    .await;
    let user = app.create_user("requester").await;
    let r = request_access(&app, &f, &user, &policy).await;
    let rid = r["id"].as_str().unwrap().to_string();
    assert_eq!(stages(&receiver), ["assignmentRequestDeterminingApprovalRequirements"]);
    let instance = receiver.calls()[0].body["CustomExtensionStageInstanceId"].as_str().unwrap().to_string();
    let waiting = request(&app, &rid).await;
    assert_eq!(waiting["status"], "WaitingForCallback", "{waiting}");

    // The documented dynamic-approval answer (integrations reference §2.7).
    let answer = |approval_stage: Value| {
        json!({ "source": "LogicApps",
                "type": "microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestCreated",
                "data": { "@odata.type": "microsoft.graph.assignmentRequestApprovalStageCallbackData",
                          "stage": "assignmentRequestDeterminingApprovalRequirements",
                          "customExtensionStageInstanceId": instance,
                          "customExtensionStageInstanceDetail": "A approval stage from Logic Apps",
                          "approvalStage": approval_stage } })
    };
    let path = reqs(&format!("/{rid}/resume"));
    // Refusals change nothing: no stage, a malformed stage, an approval stage at another stage.
    let mut no_stage = answer(Value::Null);
    no_stage["data"].as_object_mut().unwrap().remove("approvalStage");
    let (status, resp) = app.post(&app.admin, &path, no_stage).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    assert_eq!(resp["error"]["target"], "data.approvalStage", "{resp}");
    let (status, resp) =
        app.post(&app.admin, &path, answer(json!({ "durationBeforeAutomaticDenial": "two days" }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    assert_eq!(
        request(&app, &rid).await["customExtensionCalloutInstances"],
        waiting["customExtensionCalloutInstances"]
    );

    let (status, resp) = app
        .post(
            &app.admin,
            &path,
            answer(json!({ "durationBeforeAutomaticDenial": "P2D", "isApproverJustificationRequired": false,
                           "isEscalationEnabled": false, "escalationApprovers": [],
                           "fallbackPrimaryApprovers": [], "fallbackEscalationApprovers": [],
                           "primaryApprovers": [ { "@odata.type": "#microsoft.graph.singleUser",
                                                   "userId": approver, "isBackup": false, "description": "the data owner" } ] })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{resp}");
    app.drain().await;
    let pending = request(&app, &rid).await;
    assert_eq!(pending["state"], "pendingApproval", "{pending}");
    assert_eq!(pending["customExtensionCalloutInstances"][0]["status"], "callbackReceived");
    // The approver the workflow named decides, within the two days it gave.
    let approver_token = app.user_token(&approver, SUBJECT_SCOPES);
    let (status, a) = app.get(&approver_token, &format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{rid}")).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    let stage = a["stages"][0]["id"].as_str().unwrap_or_else(|| panic!("{a}")).to_string();
    let (status, body) = app
        .patch(
            &approver_token,
            &format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{rid}/stages/{stage}"),
            json!({"reviewResult": "Approve", "justification": "fine"}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    app.drain().await;
    assert_eq!(request(&app, &rid).await["state"], "delivered");
    assert!(app.is_member(&f.group_id, &user).await);
}

#[tokio::test]
async fn a_resume_with_a_decision_approves_or_denies_the_stage_it_was_asked_about() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let f = app.seed_package_with_group().await;
    let (ext, secret) = extension(
        &app,
        &f.catalog_id,
        REQUEST_EXT,
        &receiver.url("/decide"),
        json!({ "callbackConfiguration": { "@odata.type": "#microsoft.graph.customExtensionCallbackConfiguration", "timeoutDuration": "PT1H" } }),
    )
    .await;
    receiver.expect_secret(&secret);
    let second_approver = app.create_user("second").await;
    let e = ext.clone();
    let two = second_approver.clone();
    // The workflow decides the first stage; a person decides the second.
    let policy = self_service(&app, &f, move |p| {
        p.approval.is_approval_required_for_add = true;
        let mut dynamic = approval_stage("unused");
        dynamic.primary_approvers.clear();
        dynamic.is_dynamic = true;
        p.approval.stages = vec![dynamic, approval_stage(&two)];
        p.custom_extension_stage_settings =
            settings(&[(CustomExtensionStage::AssignmentRequestDeterminingApprovalRequirements, &e)]);
    })
    .await;
    let decide = |instance: &str, state: &str| {
        json!({ "source": "LogicApps",
                "type": "microsoft.graph.accessPackageCustomExtensionStage.assignmentRequestDeterminingApprovalRequirements",
                "data": { "@odata.type": "#microsoft.graph.accessPackageAssignmentRequestCallbackData",
                          "stage": "assignmentRequestDeterminingApprovalRequirements",
                          "customExtensionStageInstanceId": instance,
                          "customExtensionStageInstanceDetail": "checked against the HR system",
                          "state": state } })
    };

    // Approved by the workflow: stage 1 is recorded as its decision, stage 2 waits.
    let user = app.create_user("requester").await;
    let rid = request_access(&app, &f, &user, &policy).await["id"].as_str().unwrap().to_string();
    let instance = receiver.calls()[0].body["CustomExtensionStageInstanceId"].as_str().unwrap().to_string();
    let (status, resp) = app.post(&app.admin, &reqs(&format!("/{rid}/resume")), decide(&instance, "approved")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{resp}");
    app.drain().await;
    let pending = request(&app, &rid).await;
    assert_eq!(pending["state"], "pendingApproval", "{pending}");
    let (status, a) = app.get(&app.admin, &format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{rid}")).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["stages"][0]["reviewResult"], "Approved", "{a}");
    assert_eq!(a["stages"][0]["justification"], "checked against the HR system", "{a}");
    assert_eq!(a["stages"][1]["status"], "InProgress", "{a}");
    let token = app.user_token(&second_approver, SUBJECT_SCOPES);
    let stage = a["stages"][1]["id"].as_str().unwrap().to_string();
    let (status, body) = app
        .patch(
            &token,
            &format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{rid}/stages/{stage}"),
            json!({"reviewResult": "Approve", "justification": "fine"}),
        )
        .await;
    assert!(status.is_success(), "{body}");
    app.drain().await;
    assert_eq!(request(&app, &rid).await["state"], "delivered");

    // Denied by the workflow: the request is denied and the approval says by whom.
    let other = app.create_user("other").await;
    let rid = request_access(&app, &f, &other, &policy).await["id"].as_str().unwrap().to_string();
    let instance = receiver.calls()[1].body["CustomExtensionStageInstanceId"].as_str().unwrap().to_string();
    // "approved" answers only a callout that asks about a stage; a wrong value changes nothing.
    let (status, resp) = app.post(&app.admin, &reqs(&format!("/{rid}/resume")), decide(&instance, "maybe")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    assert_eq!(request(&app, &rid).await["status"], "WaitingForCallback");
    let (status, resp) = app.post(&app.admin, &reqs(&format!("/{rid}/resume")), decide(&instance, "denied")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{resp}");
    app.drain().await;
    assert_eq!(request(&app, &rid).await["state"], "denied");
    let (_, a) = app.get(&app.admin, &format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{rid}")).await;
    assert_eq!(a["stages"][0]["reviewResult"], "Denied", "{a}");
    assert!(!app.is_member(&f.group_id, &other).await);
}

#[tokio::test]
async fn an_approved_state_at_a_stage_that_decides_nothing_is_refused() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (f, policy, _) = waiting_setup(&app, &receiver).await;
    let user = app.create_user("requester").await;
    let rid = request_access(&app, &f, &user, &policy).await["id"].as_str().unwrap().to_string();
    let instance = receiver.calls()[0].body["CustomExtensionStageInstanceId"].as_str().unwrap().to_string();
    let (status, resp) =
        app.post(&app.admin, &reqs(&format!("/{rid}/resume")), resume_body(&instance, Some("approved"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{resp}");
    assert_eq!(resp["error"]["target"], "data.state", "{resp}");
    assert_eq!(request(&app, &rid).await["status"], "WaitingForCallback");
}

#[tokio::test]
async fn creating_an_extension_makes_entras_connection_test_call_once() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let f = app.seed_package_with_group().await;
    let (ext, secret) = extension(&app, &f.catalog_id, REQUEST_EXT, &receiver.url("/hook"), json!({})).await;
    receiver.expect_secret(&secret);
    app.drain_outbox().await;
    let tests = receiver.connection_tests();
    assert_eq!(tests.len(), 1, "{tests:?}");
    let call = &tests[0];
    assert!(call.signature_ok);
    assert_eq!(call.body["Stage"], "CustomExtensionConnectionTest");
    assert_eq!(call.body["CustomExtensionId"], ext);
    assert_eq!(call.body["CustomExtensionStageInstanceId"], call.id.as_str());
    assert!(call.authorization.as_deref().is_some_and(|a| a.starts_with("Bearer ")), "PoP asks for a token");
    assert!(receiver.calls().is_empty(), "no lifecycle callout");
    // A Logic App endpoint is not called; a refused destination is recorded as a failure.
    app.create_extension(&f.catalog_id, REQUEST_EXT, json!({})).await;
    let refusing = TestApp::spawn_with(Options { outbound_allow: vec![], ..Options::default() }).await;
    let g = refusing.seed_package_with_group().await;
    extension(&refusing, &g.catalog_id, REQUEST_EXT, &receiver.url("/hook"), json!({})).await;
    app.drain_outbox().await;
    refusing.drain_outbox().await;
    assert_eq!(receiver.connection_tests().len(), 1, "called once, and only where allowed");
    for (app, action) in [(&app, "connectionTestSucceeded"), (&refusing, "connectionTestFailed")] {
        let (_, audit) = app.get(&app.admin, "/_grantry/audit?$top=500").await;
        let found = audit["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["entityType"] == "customCalloutExtension" && e["action"] == action)
            .count();
        assert_eq!(found, 1, "{action}: {audit}");
    }
    // Nothing is retried.
    advance(&app, "P1D").await;
    assert_eq!(receiver.connection_tests().len(), 1);
}
