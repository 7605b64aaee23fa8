//! Round trips of the documented policy bodies through the internal model.

use super::*;
use chrono::{TimeZone, Utc};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let text = match name {
        "v1_two_stage" => include_str!("../../grantry/tests/api/fixtures/v1_create_external_two_stage.json"),
        "v1_auto" => include_str!("../../grantry/tests/api/fixtures/v1_create_auto_assignment.json"),
        "v1_questions" => include_str!("../../grantry/tests/api/fixtures/v1_create_questions.json"),
        "v1_direct" => include_str!("../../grantry/tests/api/fixtures/v1_create_direct.json"),
        "v1_put" => include_str!("../../grantry/tests/api/fixtures/v1_put_all_users.json"),
        "beta_direct" => include_str!("../../grantry/tests/api/fixtures/beta_create_direct.json"),
        "beta_multistage" => include_str!("../../grantry/tests/api/fixtures/beta_create_multistage.json"),
        "beta_questions" => include_str!("../../grantry/tests/api/fixtures/beta_create_questions.json"),
        "beta_handlers" => include_str!("../../grantry/tests/api/fixtures/beta_create_extension_handlers.json"),
        "beta_put" => include_str!("../../grantry/tests/api/fixtures/beta_put_questions.json"),
        "seed003" => include_str!("../../grantry/tests/api/fixtures/seed003_beta_create_placeholders.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str::<Value>(text).unwrap()["request"].clone()
}

fn to_policy(body: &Value, d: Dialect) -> Policy {
    let input = parse_policy(&Body::root(body).unwrap(), d).unwrap();
    let t = Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap();
    input.into_policy("p1".into(), "pkg".into(), "cat".into(), Some("admin".into()), t, t)
}

/// Every property of `expected` appears in `actual` with the same value, allowing the
/// leniencies of §13.2 on the expected side (strings for booleans and numbers, `@odata.type`
/// without `#`).
#[track_caller]
fn assert_subset(expected: &Value, actual: &Value, path: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                // `@odata.type` on a non-polymorphic value is redundant and not echoed.
                if k == "@odata.type" && !a.contains_key(k) {
                    continue;
                }
                let av = a.get(k).unwrap_or(&Value::Null);
                assert_subset(ev, av, &format!("{path}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            assert_eq!(e.len(), a.len(), "{path}: {expected} vs {actual}");
            if path.ends_with("Approvers") || path.ends_with("reviewers") || path.ends_with("Requestors") {
                // Beta approver lists come back primaries first, then `isBackup` ones.
                for (i, ev) in e.iter().enumerate() {
                    let found = a
                        .iter()
                        .any(|av| std::panic::catch_unwind(|| assert_subset(ev, av, &format!("{path}[{i}]"))).is_ok());
                    assert!(found, "{path}[{i}]: {ev} not in {actual}");
                }
                return;
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                assert_subset(ev, av, &format!("{path}[{i}]"));
            }
        }
        (Value::String(e), Value::Bool(a)) => assert_eq!(e.parse::<bool>().ok(), Some(*a), "{path}"),
        (Value::String(e), Value::Number(a)) => assert_eq!(e, &a.to_string(), "{path}"),
        (Value::String(e), Value::String(a)) if path.ends_with("@odata.type") => {
            assert_eq!(e.trim_start_matches('#'), a.trim_start_matches('#'), "{path}")
        }
        (Value::String(e), Value::String(a)) if path.ends_with("DateTime") => {
            assert_eq!(parse_datetime(e), parse_datetime(a), "{path}")
        }
        (Value::String(e), Value::String(a)) if path.ends_with(".id") || path.ends_with("Id") => {
            assert_eq!(e.to_lowercase(), a.to_lowercase(), "{path}")
        }
        _ => assert_eq!(expected, actual, "{path}"),
    }
}

fn parse_datetime(s: &str) -> Option<chrono::DateTime<Utc>> {
    crate::body::parse_datetime(s)
}

fn without(mut v: Value, keys: &[&str]) -> Value {
    if let Value::Object(m) = &mut v {
        for k in keys {
            m.remove(*k);
        }
    }
    v
}

#[test]
fn v1_bodies_read_back_unchanged_on_v1() {
    for name in ["v1_two_stage", "v1_auto", "v1_questions", "v1_direct", "v1_put"] {
        let body = fixture(name);
        let out = render_policy(&to_policy(&body, Dialect::V1), Dialect::V1);
        assert_subset(&without(body, &["accessPackage", "id"]), &out, name);
    }
}

#[test]
fn beta_bodies_read_back_unchanged_on_beta() {
    for name in ["beta_direct", "beta_multistage", "beta_questions", "beta_put"] {
        let body = fixture(name);
        let out = render_policy(&to_policy(&body, Dialect::Beta), Dialect::Beta);
        assert_subset(&without(body, &["accessPackageId", "id"]), &out, name);
    }
}

#[test]
fn seed_003_with_real_values_reads_back_on_beta() {
    let mut body = fixture("seed003");
    body["requestorSettings"]["scopeType"] = json!("SpecificDirectorySubjects");
    body["requestorSettings"]["allowedRequestors"][0]["id"] = json!("7deff43e-1f17-44ef-9e5f-d516b0ba11d4");
    body["requestApprovalSettings"]["approvalMode"] = json!("SingleStage");
    body["accessReviewSettings"]["recurrenceType"] = json!("monthly");
    body["accessReviewSettings"]["reviewerType"] = json!("Reviewers");
    let p = to_policy(&body, Dialect::Beta);
    assert_eq!(p.expiration.kind, ExpirationType::AfterDateTime);
    assert_eq!(p.expiration.duration, Some(Duration::days(14)));
    let out = render_policy(&p, Dialect::Beta);
    let expected = without(body, &["accessPackageId", "createdBy", "modifiedBy", "@odata.type"]);
    // The reviewer and approvers without ids read back as sent; the seed's approval stage
    // escalation time is minutes.
    assert_subset(&expected, &out, "seed003");
    assert_eq!(out["requestApprovalSettings"]["approvalStages"][0]["escalationTimeInMinutes"], 7);
}

#[test]
fn seed_003_placeholders_name_the_field_and_the_allowed_values() {
    let body = fixture("seed003");
    let err = parse_policy(&Body::root(&body).unwrap(), Dialect::Beta).unwrap_err();
    assert_eq!(err.code, "InvalidRequestBody");
    assert_eq!(err.target.as_deref(), Some("requestorSettings.scopeType"));
    assert!(
        err.message.contains("Scope Type value") && err.message.contains("SpecificDirectorySubjects"),
        "{}",
        err.message
    );
    let mut body = body;
    body["requestorSettings"]["scopeType"] = json!("NoSubjects");
    let err = parse_policy(&Body::root(&body).unwrap(), Dialect::Beta).unwrap_err();
    assert_eq!(err.target.as_deref(), Some("requestApprovalSettings.approvalMode"));
    assert!(err.message.contains("SingleStage"), "{}", err.message);
}

#[test]
fn v1_converts_to_beta_per_13_1() {
    let p = to_policy(&fixture("v1_two_stage"), Dialect::V1);
    let b = render_policy(&p, Dialect::Beta);
    assert_eq!(b["accessPackageId"], "pkg");
    assert_eq!(b["requestorSettings"]["scopeType"], "AllConfiguredConnectedOrganizationSubjects");
    assert_eq!(b["requestorSettings"]["acceptRequests"], true);
    assert_eq!(b["canExtend"], true);
    assert_eq!(b["durationInDays"], 0);
    assert_eq!(b["expirationDateTime"], Value::Null);
    let ra = &b["requestApprovalSettings"];
    assert_eq!(ra["isApprovalRequired"], true);
    assert_eq!(ra["isApprovalRequiredForExtension"], false);
    assert_eq!(ra["approvalMode"], "Serial");
    let s0 = &ra["approvalStages"][0];
    assert_eq!(s0["approvalStageTimeOutInDays"], 14);
    assert_eq!(s0["escalationTimeInMinutes"], 0);
    let approvers = s0["primaryApprovers"].as_array().unwrap();
    assert_eq!(approvers.len(), 3);
    assert_eq!(approvers[0], json!({"@odata.type": "#microsoft.graph.internalSponsors", "isBackup": false}));
    assert_eq!(approvers[1]["isBackup"], true);
    assert_eq!(approvers[1]["id"], "7deff43e-1f17-44ef-9e5f-d516b0ba11d4");
    assert!(approvers[1].get("userId").is_none());
    let r = &b["accessReviewSettings"];
    assert_eq!(r["recurrenceType"], "quarterly");
    assert_eq!(r["reviewerType"], "Reviewers");
    assert_eq!(r["durationInDays"], 14);
    assert_eq!(r["accessReviewTimeoutBehavior"], "keepAccess");
    assert_eq!(r["reviewers"][0]["id"], "1623f912-5e86-41c2-af47-39dd67582b66");
    assert!(b.get("allowedTargetScope").is_none() && b.get("reviewSettings").is_none());

    let q = render_policy(&to_policy(&fixture("v1_questions"), Dialect::V1), Dialect::Beta);
    assert_eq!(q["questions"][0]["allowsMultipleSelection"], false);
    assert_eq!(q["questions"][0]["text"]["defaultText"], "What country are you working from?");
    assert_eq!(q["questions"][0]["choices"][0]["displayValue"]["defaultText"], "Kenya");
    assert_eq!(q["questions"][1]["text"]["localizedTexts"][0]["languageCode"], "fr-CA");
}

#[test]
fn beta_converts_to_v1_per_13_1() {
    let p = to_policy(&fixture("beta_multistage"), Dialect::Beta);
    let v = render_policy(&p, Dialect::V1);
    assert_eq!(v["allowedTargetScope"], "allConfiguredConnectedOrganizationUsers");
    assert_eq!(v["expiration"], json!({"type": "afterDuration", "duration": "P365D", "endDateTime": null}));
    assert_eq!(v["requestorSettings"]["enableTargetsToSelfAddAccess"], true);
    assert_eq!(v["requestorSettings"]["enableTargetsToSelfRemoveAccess"], true);
    assert_eq!(v["requestorSettings"]["enableTargetsToSelfUpdateAccess"], false);
    let s0 = &v["requestApprovalSettings"]["stages"][0];
    assert_eq!(s0["durationBeforeAutomaticDenial"], "P14D");
    assert_eq!(s0["durationBeforeEscalation"], "P8D");
    assert_eq!(s0["primaryApprovers"], json!([{"@odata.type": "#microsoft.graph.externalSponsors"}]));
    assert_eq!(s0["fallbackPrimaryApprovers"][0]["@odata.type"], "#microsoft.graph.groupMembers");
    assert_eq!(s0["fallbackPrimaryApprovers"][0]["groupId"], "string (identifier)");
    assert_eq!(s0["escalationApprovers"], json!([]));
    assert_eq!(s0["fallbackEscalationApprovers"][0]["userId"], "string (identifier)");
    let r = &v["reviewSettings"];
    assert_eq!(r["isSelfReview"], true);
    assert_eq!(r["schedule"]["expiration"]["duration"], "P25D");
    assert_eq!(r["schedule"]["recurrence"]["pattern"], json!({"type": "absoluteMonthly", "interval": 3}));
    assert!(v.get("durationInDays").is_none() && v.get("accessReviewSettings").is_none());

    let q = render_policy(&to_policy(&fixture("beta_questions"), Dialect::Beta), Dialect::V1);
    assert_eq!(q["questions"][0]["text"], "what state are you from?");
    assert_eq!(q["questions"][0]["localizations"][0]["languageCode"], "es");
    assert_eq!(q["questions"][0]["isMultipleSelectionAllowed"], false);
    assert_eq!(q["questions"][0]["choices"][0]["localizations"][0]["text"], "Arizona");
    assert_eq!(q["questions"][1]["@odata.type"], "#microsoft.graph.accessPackageTextInputQuestion");

    let none = render_policy(&to_policy(&fixture("beta_direct"), Dialect::Beta), Dialect::V1);
    assert_eq!(none["expiration"]["type"], "noExpiration");
    assert_eq!(none["allowedTargetScope"], "notSpecified");
}

#[test]
fn beta_body_on_v1_and_v1_body_on_beta_are_read() {
    let p = to_policy(&fixture("beta_handlers"), Dialect::V1);
    assert_eq!(p.expiration.duration, Some(Duration::days(365)));
    assert_eq!(p.custom_extension_stage_settings.len(), 2);
    assert!(p.requestor_settings.enable_targets_to_self_add_access);
    let p = to_policy(&fixture("v1_two_stage"), Dialect::Beta);
    assert_eq!(p.approval.stages.len(), 2);
}

#[test]
fn lenient_input_forms() {
    let body = json!({
        "displayName": "x",
        "allowedTargetScope": "AllMemberUsers",
        "expiration": {"@odata.type": "microsoft.graph.expirationPattern", "type": "AfterDuration", "duration": "365 days, 0:00:00"},
        "requestApprovalSettings": {"isApprovalRequiredForAdd": "TRUE", "stages": [{
            "durationBeforeAutomaticDenial": "14 days, 0:00:00",
            "approverInformationVisibility": "NotVisible",
            "primaryApprovers": [{"@odata.type": "microsoft.graph.requestorManager", "managerLevel": "2"}]
        }]}
    });
    let p = to_policy(&body, Dialect::V1);
    assert_eq!(p.expiration.duration, Some(Duration::days(365)));
    assert_eq!(p.approval.stages[0].duration_before_automatic_denial, Some(Duration::days(14)));
    assert_eq!(p.approval.stages[0].primary_approvers, vec![SubjectSet::RequestorManager { manager_level: 2 }]);
    assert_eq!(p.approval.stages[0].approver_information_visibility, ApproverInformationVisibility::NotVisible);
    let v = render_policy(&p, Dialect::V1);
    assert_eq!(v["expiration"]["duration"], "P365D");
    assert_eq!(v["requestApprovalSettings"]["stages"][0]["approverInformationVisibility"], "notVisible");
}

#[test]
fn bad_regex_and_bad_subject_set_type_are_refused() {
    let body = json!({"displayName": "x", "questions": [{"@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "text": "q", "regexPattern": "[a-"}]});
    let err = parse_policy(&Body::root(&body).unwrap(), Dialect::V1).unwrap_err();
    assert_eq!((err.code.as_str(), err.target.as_deref()), ("InvalidPolicy", Some("questions[0].regexPattern")));
    let body = json!({"displayName": "x", "allowedTargetScope": "specificDirectoryUsers", "specificAllowedTargets": [{"@odata.type": "#microsoft.graph.singelUser"}]});
    let err = parse_policy(&Body::root(&body).unwrap(), Dialect::V1).unwrap_err();
    assert_eq!(err.target.as_deref(), Some("specificAllowedTargets[0].@odata.type"));
}
