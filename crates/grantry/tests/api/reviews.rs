//! Access reviews of access package assignments: definitions made by policies, runs opened
//! on the development clock, reviewers' decisions and their effect on access.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const V1_AR: &str = "/v1.0/identityGovernance/accessReviews";
const BETA_AR: &str = "/beta/identityGovernance/accessReviews";
const REVIEWER_SCOPES: &[&str] = &["AccessReview.ReadWrite.All"];

/// Creates an admin-only policy on the fixture's package with `review` as its v1.0
/// `reviewSettings`; returns its id.
async fn review_policy(app: &TestApp, f: &Fixture, review: Value) -> String {
    let (status, body) = app
        .post(
            &app.admin,
            &em("v1.0", "assignmentPolicies"),
            json!({
                "displayName": "Reviewed access",
                "allowedTargetScope": "notSpecified",
                "accessPackage": { "id": f.package_id },
                "expiration": { "type": "noExpiration" },
                "reviewSettings": review,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// Self-review every quarter from `start`, 14 days long, unanswered access removed.
fn quarterly_self_review(start: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "isEnabled": true,
        "expirationBehavior": "removeAccess",
        "isRecommendationEnabled": true,
        "isReviewerJustificationRequired": true,
        "isSelfReview": true,
        "schedule": {
            "startDateTime": start.to_rfc3339(),
            "expiration": { "type": "afterDuration", "duration": "P14D" },
            "recurrence": { "pattern": { "type": "absoluteMonthly", "interval": 3 }, "range": { "type": "noEnd" } }
        },
        "primaryReviewers": [],
        "fallbackReviewers": []
    })
}

/// An adminAdd through `policy_id`, delivered; returns the assignment id.
async fn assign(app: &TestApp, f: &Fixture, policy_id: &str, user: &str) -> String {
    let (status, body) = app
        .post(
            &app.admin,
            &em("v1.0", "assignmentRequests"),
            json!({"requestType": "adminAdd", "assignment": {"targetId": user, "assignmentPolicyId": policy_id, "accessPackageId": f.package_id}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    let id = body["id"].as_str().unwrap();
    let (_, r) = app.get(&app.admin, &em("v1.0", &format!("assignmentRequests/{id}?$expand=assignment"))).await;
    assert_eq!(r["state"], "delivered", "{r}");
    r["assignment"]["id"].as_str().unwrap().to_string()
}

/// Moves the development clock and runs what became due.
async fn advance(app: &TestApp, duration: &str) {
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": duration })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.drain().await;
}

/// The definition of `policy_id`, found the way Graph documents it.
async fn definition_of(app: &TestApp, policy_id: &str) -> Value {
    let (status, list) = app
        .get(
            &app.admin,
            &format!(
                "{V1_AR}/definitions?$filter=contains(scope/microsoft.graph.accessReviewQueryScope/query, 'accessPackageAssignments')"
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["scope"]["query"].as_str().is_some_and(|q| q.contains(policy_id)))
        .cloned()
        .unwrap_or_else(|| panic!("no definition for policy {policy_id} in {list}"))
}

async fn instances(app: &TestApp, def_id: &str) -> Vec<Value> {
    let (status, list) = app.get(&app.admin, &format!("{V1_AR}/definitions/{def_id}/instances")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["value"].as_array().unwrap().clone()
}

async fn decisions(app: &TestApp, token: &str, def_id: &str, inst_id: &str, mine: bool) -> Vec<Value> {
    let suffix = if mine { "/filterByCurrentUser(on='reviewer')" } else { "" };
    let (status, list) =
        app.get(token, &format!("{V1_AR}/definitions/{def_id}/instances/{inst_id}/decisions{suffix}")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["value"].as_array().unwrap().clone()
}

fn item_of<'a>(items: &'a [Value], user: &str) -> &'a Value {
    items.iter().find(|d| d["principal"]["id"] == user).unwrap_or_else(|| panic!("no item for {user}"))
}

#[tokio::test]
async fn a_policy_with_review_settings_has_a_definition_in_both_dialects() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let start = app.now() + chrono::Duration::days(1);
    let policy = review_policy(&app, &f, quarterly_self_review(start)).await;

    let def = definition_of(&app, &policy).await;
    let id = def["id"].as_str().unwrap().to_string();
    assert_eq!(def["status"], "NotStarted", "{def}");
    assert_eq!(def["scope"]["@odata.type"], "#microsoft.graph.accessReviewQueryScope");
    assert_eq!(
        def["scope"]["query"],
        format!(
            "/identityGovernance/entitlementManagement/accessPackageAssignments?$filter=(accessPackageId eq '{}' and assignmentPolicyId eq '{policy}')",
            f.package_id
        )
    );
    assert_eq!(def["reviewers"], json!([]), "a self-review has no reviewer scopes");
    let settings = &def["settings"];
    assert_eq!(settings["instanceDurationInDays"], 14);
    assert_eq!(settings["recurrence"]["pattern"]["type"], "absoluteMonthly");
    assert_eq!(settings["recurrence"]["pattern"]["interval"], 3);
    assert_eq!(settings["recurrence"]["range"]["startDate"], start.date_naive().to_string());
    assert_eq!(
        (settings["defaultDecisionEnabled"].as_bool(), settings["defaultDecision"].as_str()),
        (Some(true), Some("Deny"))
    );
    assert_eq!(settings["justificationRequiredOnApproval"], true);
    assert_eq!(settings["autoApplyDecisionsEnabled"], true);
    assert!(def.get("backupReviewers").is_none(), "v1.0 has no backupReviewers");
    let (status, beta) = app.get(&app.admin, &format!("{BETA_AR}/definitions/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{beta}");
    assert_eq!(beta["backupReviewers"], json!([]), "{beta}");
    assert!(
        beta["@odata.context"]
            .as_str()
            .unwrap()
            .contains("/beta/$metadata#identityGovernance/accessReviews/definitions")
    );
    let (_, none) = app.get(&app.admin, &format!("{V1_AR}/definitions/{id}/instances")).await;
    assert_eq!(none["value"], json!([]), "no run before the start");

    // Creating the same review directly is refused, as in Entra.
    let (status, body) = app
        .post(
            &app.admin,
            &format!("{V1_AR}/definitions"),
            json!({ "displayName": "direct", "scope": def["scope"].clone(), "reviewers": [], "settings": def["settings"].clone() }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("is not supported"), "{body}");
    let (_, still) = app.get(&app.admin, &format!("{V1_AR}/definitions")).await;
    assert_eq!(still["value"].as_array().unwrap().len(), 1);

    // Permissions: the token needs AccessReview.*; catalog roles see their catalogs' reviews.
    let em_only = app.app_token(&["EntitlementManagement.ReadWrite.All"]);
    let (status, body) = app.get(&em_only, &format!("{V1_AR}/definitions")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let reader = app.create_user("reader").await;
    let outsider = app.create_user("outsider").await;
    app.grant_catalog_role(&reader, CATALOG_READER, &f.catalog_id).await;
    let reader_token = app.user_token(&reader, &["AccessReview.Read.All"]);
    let outsider_token = app.user_token(&outsider, &["AccessReview.Read.All"]);
    let (_, seen) = app.get(&reader_token, &format!("{V1_AR}/definitions")).await;
    assert_eq!(seen["value"].as_array().unwrap().len(), 1, "{seen}");
    let (_, unseen) = app.get(&outsider_token, &format!("{V1_AR}/definitions")).await;
    assert_eq!(unseen["value"], json!([]), "{unseen}");
    let (status, _) = app.get(&outsider_token, &format!("{V1_AR}/definitions/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) =
        app.put(&reader_token, &format!("{V1_AR}/definitions/{id}"), json!({ "displayName": "renamed" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // PUT changes what the policy does not say; what it says must come back unchanged.
    let mut put = def.clone();
    put["displayName"] = json!("Quarterly recertification");
    put["settings"]["autoApplyDecisionsEnabled"] = json!(false);
    let (status, body) = app.put(&app.admin, &format!("{V1_AR}/definitions/{id}"), put.clone()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, got) = app.get(&app.admin, &format!("{V1_AR}/definitions/{id}")).await;
    assert_eq!(
        (got["displayName"].as_str(), got["settings"]["autoApplyDecisionsEnabled"].as_bool()),
        (Some("Quarterly recertification"), Some(false))
    );
    put["settings"]["instanceDurationInDays"] = json!(3);
    let (status, body) = app.put(&app.admin, &format!("{V1_AR}/definitions/{id}"), put).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "PolicyOwnedProperty");
    assert_eq!(body["error"]["target"], "settings.instanceDurationInDays");

    // The policy drives the definition: turning reviews off completes it; deleting the
    // policy removes it.
    let (_, p) = app.get(&app.admin, &em("v1.0", &format!("assignmentPolicies/{policy}"))).await;
    let mut off = p.clone();
    off["reviewSettings"]["isEnabled"] = json!(false);
    let off = strip_annotations(off);
    let (status, body) = app.put(&app.admin, &em("v1.0", &format!("assignmentPolicies/{policy}")), off).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, got) = app.get(&app.admin, &format!("{V1_AR}/definitions/{id}")).await;
    assert_eq!(got["status"], "Completed", "{got}");
    assert_eq!(got["displayName"], "Quarterly recertification", "the PUT survives a policy change");
    let (status, _) = app.delete(&app.admin, &em("v1.0", &format!("assignmentPolicies/{policy}"))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&app.admin, &format!("{V1_AR}/definitions/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn strip_annotations(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|k, _| !k.starts_with("@odata"));
    }
    v
}

#[tokio::test]
async fn quarterly_self_review_removes_denied_and_unanswered_access() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let start = app.now() + chrono::Duration::days(1);
    let policy = review_policy(&app, &f, quarterly_self_review(start)).await;
    let (keeper, leaver, silent, late) = (
        app.create_user("keeper").await,
        app.create_user("leaver").await,
        app.create_user("silent").await,
        app.create_user("late").await,
    );
    for u in [&keeper, &leaver, &silent] {
        assign(&app, &f, &policy, u).await;
        assert!(app.is_member(&f.group_id, u).await);
    }
    let def = definition_of(&app, &policy).await;
    let def_id = def["id"].as_str().unwrap().to_string();

    advance(&app, "P1D").await;
    let runs = instances(&app, &def_id).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "InProgress");
    let inst = runs[0]["id"].as_str().unwrap().to_string();
    // Delivered during the run: joins the next one.
    assign(&app, &f, &policy, &late).await;
    let all = decisions(&app, &app.admin, &def_id, &inst, false).await;
    assert_eq!(all.len(), 3, "one item per assignment active at the start: {all:?}");
    let item = item_of(&all, &keeper);
    assert_eq!(item["decision"], "NotReviewed");
    assert_eq!(item["recommendation"], "Approve");
    assert!(item["recommendation@grantry.basis"].as_str().unwrap().contains("enabled"), "{item}");
    assert_eq!(item["resource"]["accessPackageId"], f.package_id);
    assert_eq!(item["reviewedBy"]["id"], "00000000-0000-0000-0000-000000000000");

    let token = |u: &str| app.user_token(u, REVIEWER_SCOPES);
    let (keeper_t, leaver_t) = (token(&keeper), token(&leaver));
    let mine = decisions(&app, &keeper_t, &def_id, &inst, true).await;
    assert_eq!(mine.len(), 1, "a self-reviewer sees only their own item");
    let keeper_item = mine[0]["id"].as_str().unwrap().to_string();
    let leaver_item = item_of(&all, &leaver)["id"].as_str().unwrap().to_string();
    let item_url = |x: &str| format!("{V1_AR}/definitions/{def_id}/instances/{inst}/decisions/{x}");

    // The review asks for a reason to keep access.
    let (status, body) = app.patch(&keeper_t, &item_url(&keeper_item), json!({ "decision": "Approve" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["target"], "justification");
    let (status, body) = app
        .patch(
            &keeper_t,
            &item_url(&keeper_item),
            json!({ "decision": "Approve", "justification": "Still on the team" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = app.patch(&leaver_t, &item_url(&leaver_item), json!({ "decision": "Deny" })).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    // Not a reviewer of that item: refused, nothing changed.
    let (status, body) = app.patch(&leaver_t, &item_url(&keeper_item), json!({ "decision": "Deny" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app.patch(&leaver_t, &item_url(&leaver_item), json!({ "decision": "Maybe" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (_, got) = app.get(&app.admin, &item_url(&keeper_item)).await;
    assert_eq!((got["decision"].as_str(), got["reviewedBy"]["id"].as_str()), (Some("Approve"), Some(keeper.as_str())));
    assert_eq!(got["justification"], "Still on the team");

    // The run ends: the unanswered item takes the default (deny), denials are applied.
    advance(&app, "P14D").await;
    let runs = instances(&app, &def_id).await;
    assert_eq!(runs[0]["status"], "Applied", "{runs:?}");
    let all = decisions(&app, &app.admin, &def_id, &inst, false).await;
    assert_eq!(item_of(&all, &keeper)["decision"], "Approve");
    assert_eq!(item_of(&all, &leaver)["decision"], "Deny");
    assert_eq!(item_of(&all, &silent)["decision"], "Deny");
    for u in [&leaver, &silent] {
        assert_eq!(item_of(&all, u)["applyResult"], "AppliedSuccessfully");
        assert!(item_of(&all, u)["appliedDateTime"].is_string());
    }
    assert!(app.is_member(&f.group_id, &keeper).await, "approved access is kept");
    assert!(!app.is_member(&f.group_id, &leaver).await, "denied access is removed");
    assert!(!app.is_member(&f.group_id, &silent).await, "unanswered access is removed by the default decision");
    // The history says why: a systemRemove request per removal.
    let (_, removals) =
        app.get(&app.admin, &em("v1.0", "assignmentRequests?$filter=requestType eq 'systemRemove'")).await;
    let removals = removals["value"].as_array().unwrap();
    assert_eq!(removals.len(), 2, "{removals:?}");
    assert!(
        removals.iter().all(|r| r["justification"].as_str().unwrap().contains("denied in access review")),
        "{removals:?}"
    );
    // Finished: no more decisions.
    let (status, body) =
        app.patch(&keeper_t, &item_url(&keeper_item), json!({ "decision": "Deny", "justification": "late" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // The next quarter reviews who has access then: the keeper and the late arrival.
    let next = start + chrono::Months::new(3);
    let wait = (next - app.now()).num_days() + 1;
    advance(&app, &format!("P{wait}D")).await;
    let runs = instances(&app, &def_id).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    let second = runs.iter().find(|r| r["id"] != inst.as_str()).unwrap();
    let items = decisions(&app, &app.admin, &def_id, second["id"].as_str().unwrap(), false).await;
    let mut who: Vec<&str> = items.iter().map(|d| d["principal"]["id"].as_str().unwrap()).collect();
    who.sort();
    let mut expected = vec![keeper.as_str(), late.as_str()];
    expected.sort();
    assert_eq!(who, expected);
}

#[tokio::test]
async fn manager_review_with_fallback_and_applied_decisions() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let (managed, unmanaged, manager, fallback) = (
        app.create_user("managed").await,
        app.create_user("unmanaged").await,
        app.create_user("manager").await,
        app.create_user("fallback").await,
    );
    app.set_manager(&managed, &manager).await;
    let start = app.now() + chrono::Duration::days(1);
    let policy = review_policy(
        &app,
        &f,
        json!({
            "isEnabled": true,
            "expirationBehavior": "keepAccess",
            "isRecommendationEnabled": true,
            "isReviewerJustificationRequired": false,
            "isSelfReview": false,
            "schedule": {
                "startDateTime": start.to_rfc3339(),
                "expiration": { "type": "afterDuration", "duration": "P7D" },
                "recurrence": { "pattern": { "type": "absoluteMonthly", "interval": 1 }, "range": { "type": "noEnd" } }
            },
            "primaryReviewers": [{ "@odata.type": "#microsoft.graph.requestorManager", "managerLevel": 1 }],
            "fallbackReviewers": [{ "@odata.type": "#microsoft.graph.singleUser", "userId": fallback }]
        }),
    )
    .await;
    let def = definition_of(&app, &policy).await;
    let def_id = def["id"].as_str().unwrap().to_string();
    assert_eq!(
        def["reviewers"],
        json!([{ "query": "./manager", "queryType": "MicrosoftGraph", "queryRoot": "decisions" }])
    );
    assert_eq!(def["fallbackReviewers"][0]["query"], format!("/users/{fallback}"));
    // Results are applied by hand for this series.
    let mut put = def.clone();
    put["settings"]["autoApplyDecisionsEnabled"] = json!(false);
    let (status, body) = app.put(&app.admin, &format!("{V1_AR}/definitions/{def_id}"), put).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    for u in [&managed, &unmanaged] {
        assign(&app, &f, &policy, u).await;
    }
    advance(&app, "P1D").await;
    let inst = instances(&app, &def_id).await[0]["id"].as_str().unwrap().to_string();
    let base = format!("{V1_AR}/definitions/{def_id}/instances/{inst}");

    let (manager_t, fallback_t) =
        (app.user_token(&manager, REVIEWER_SCOPES), app.user_token(&fallback, REVIEWER_SCOPES));
    let managers = decisions(&app, &manager_t, &def_id, &inst, true).await;
    assert_eq!(managers.len(), 1);
    assert_eq!(managers[0]["principal"]["id"], managed.as_str());
    let fallbacks = decisions(&app, &fallback_t, &def_id, &inst, true).await;
    assert_eq!(fallbacks.len(), 1, "the fallback reviews whoever has no manager");
    assert_eq!(fallbacks[0]["principal"]["id"], unmanaged.as_str());
    let (_, contacted) = app.get(&app.admin, &format!("{base}/contactedReviewers")).await;
    let mut ids: Vec<&str> = contacted["value"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    let mut expected = vec![manager.as_str(), fallback.as_str()];
    expected.sort();
    assert_eq!(ids, expected, "{contacted}");
    // The reviewer finds the run without any role.
    let (status, mine) = app
        .get(&manager_t, &format!("{V1_AR}/definitions/{def_id}/instances/filterByCurrentUser(on='reviewer')"))
        .await;
    assert_eq!((status, mine["value"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{mine}");

    let (status, body) = app
        .post(
            &manager_t,
            &format!("{base}/batchRecordDecisions"),
            json!({ "decision": "Deny", "justification": "Moved teams", "principalId": managed }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = app.post(&fallback_t, &format!("{base}/acceptRecommendations"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let all = decisions(&app, &app.admin, &def_id, &inst, false).await;
    assert_eq!(item_of(&all, &managed)["decision"], "Deny");
    assert_eq!(item_of(&all, &unmanaged)["decision"], "Approve", "the recommendation was accepted");

    // Reviewers cannot manage the run; applying needs a completed run.
    let (status, body) = app.post(&manager_t, &format!("{base}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app.post(&app.admin, &format!("{base}/applyDecisions"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = app.post(&app.admin, &format!("{base}/sendReminder"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = app.post(&app.admin, &format!("{base}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.drain().await;
    let (_, got) = app.get(&app.admin, &base).await;
    assert_eq!(got["status"], "Completed", "{got}");
    assert!(app.is_member(&f.group_id, &managed).await, "denied access stays until decisions are applied");
    let (status, body) = app
        .patch(
            &manager_t,
            &format!("{base}/decisions/{}", managers[0]["id"].as_str().unwrap()),
            json!({ "decision": "Approve" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let (status, body) = app.post(&app.admin, &format!("{base}/applyDecisions"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.drain().await;
    let (_, got) = app.get(&app.admin, &base).await;
    assert_eq!(got["status"], "Applied", "{got}");
    assert!(!app.is_member(&f.group_id, &managed).await, "the denied assignment's membership is gone");
    assert!(app.is_member(&f.group_id, &unmanaged).await);
    let all = decisions(&app, &app.admin, &def_id, &inst, false).await;
    assert_eq!(item_of(&all, &managed)["applyResult"], "AppliedSuccessfully");
    assert_eq!(item_of(&all, &managed)["appliedBy"]["id"].as_str().map(str::len), Some(36));
}

#[tokio::test]
async fn beta_quarterly_reviews_recur_over_most_of_a_year() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let start = app.now() + chrono::Duration::days(1);
    let (status, body) = app
        .post(
            &app.admin,
            &em("beta", "accessPackageAssignmentPolicies"),
            json!({
                "displayName": "Quarterly",
                "accessPackageId": f.package_id,
                "requestorSettings": { "scopeType": "NoSubjects", "acceptRequests": true },
                "accessReviewSettings": {
                    "isEnabled": true,
                    "recurrenceType": "quarterly",
                    "reviewerType": "Self",
                    "startDateTime": start.to_rfc3339(),
                    "durationInDays": 7,
                    "reviewers": []
                }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let policy = body["id"].as_str().unwrap().to_string();
    let user = app.create_user("steady").await;
    assign(&app, &f, &policy, &user).await;
    let def = definition_of(&app, &policy).await;
    let def_id = def["id"].as_str().unwrap();
    assert_eq!(def["settings"]["recurrence"]["pattern"]["interval"], 3);

    advance(&app, "P300D").await;
    let runs = instances(&app, def_id).await;
    // Starts at +0, +3, +6 and +9 months, each a week long and over.
    assert_eq!(runs.len(), 4, "{runs:?}");
    assert!(runs.iter().all(|r| r["status"] == "Applied"), "{runs:?}");
    for r in &runs {
        let items = decisions(&app, &app.admin, def_id, r["id"].as_str().unwrap(), false).await;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["decision"], "NotReviewed", "keep access when nobody answers (no default)");
    }
    assert!(app.is_member(&f.group_id, &user).await);
    let (status, beta_items) = app
        .get(
            &app.user_token(&user, REVIEWER_SCOPES),
            &format!("{BETA_AR}/decisions/filterByCurrentUser(on='reviewer')"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{beta_items}");
    let beta_items = beta_items["value"].as_array().unwrap();
    assert_eq!(beta_items.len(), 4);
    assert_eq!(beta_items[0]["target"]["userId"], user.as_str(), "beta items carry their target");
    let (_, next) = app.get(&app.admin, &format!("{V1_AR}/definitions/{def_id}")).await;
    assert_eq!(next["status"], "InProgress");
}

#[tokio::test]
async fn a_run_ending_after_a_restart_removes_access_once() {
    let mut app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let start = app.now() + chrono::Duration::days(1);
    let policy = review_policy(&app, &f, quarterly_self_review(start)).await;
    let user = app.create_user("leaving").await;
    assign(&app, &f, &policy, &user).await;
    let def_id = definition_of(&app, &policy).await["id"].as_str().unwrap().to_string();
    advance(&app, "P1D").await;
    let inst = instances(&app, &def_id).await[0]["id"].as_str().unwrap().to_string();

    app.restart().await;
    let runs = instances(&app, &def_id).await;
    assert_eq!(
        (runs.len(), runs[0]["status"].as_str()),
        (1, Some("InProgress")),
        "the restart changes nothing by itself"
    );
    // Nobody answers: the default decision (deny) removes the access when the run ends.
    advance(&app, "P14D").await;
    advance(&app, "P1D").await;
    let runs = instances(&app, &def_id).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["status"], "Applied");
    let items = decisions(&app, &app.admin, &def_id, &inst, false).await;
    assert_eq!(
        (items[0]["decision"].as_str(), items[0]["applyResult"].as_str()),
        (Some("Deny"), Some("AppliedSuccessfully"))
    );
    assert!(!app.is_member(&f.group_id, &user).await);
    let (_, removals) =
        app.get(&app.admin, &em("v1.0", "assignmentRequests?$filter=requestType eq 'systemRemove'")).await;
    assert_eq!(removals["value"].as_array().unwrap().len(), 1, "removed once: {removals}");
}

#[tokio::test]
async fn a_run_of_many_assignments_is_opened_and_applied_in_batches() {
    use grantry_domain::enums::{AssignmentState, SubjectLifecycle, SubjectType, UserType};
    use grantry_domain::model::{Assignment, Schedule, Subject, User};
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let start = app.now() + chrono::Duration::days(1);
    let policy = review_policy(&app, &f, quarterly_self_review(start)).await;
    // More assignments than one job run handles (reviews::CHUNK), written directly.
    let n = grantry_core::reviews::CHUNK * 2 + 17;
    let (fx, pid, now) = (f.clone(), policy.clone(), app.now());
    app.seed(move |c| {
        for i in 0..n {
            let uid = grantry_domain::ids::new_id();
            let sid = grantry_domain::ids::new_id();
            grantry_store::repo::insert(
                c,
                &User {
                    id: uid.clone(),
                    display_name: format!("bulk {i}"),
                    user_principal_name: format!("bulk{i}@contoso.com"),
                    mail: None,
                    given_name: None,
                    surname: None,
                    job_title: None,
                    department: None,
                    mail_nickname: None,
                    user_type: UserType::Member,
                    account_enabled: true,
                    manager_id: None,
                    external_user_state: None,
                    profile: Default::default(),
                    created_date_time: now,
                },
            )?;
            grantry_store::repo::insert(
                c,
                &Subject {
                    id: sid.clone(),
                    object_id: Some(uid),
                    email: None,
                    display_name: Some(format!("bulk {i}")),
                    principal_name: Some(format!("bulk{i}@contoso.com")),
                    subject_type: SubjectType::User,
                    subject_lifecycle: SubjectLifecycle::Governed,
                    connected_organization_id: None,
                    created_date_time: now,
                },
            )?;
            grantry_store::repo::insert(
                c,
                &Assignment {
                    id: grantry_domain::ids::new_id(),
                    access_package_id: fx.package_id.clone(),
                    catalog_id: fx.catalog_id.clone(),
                    policy_id: pid.clone(),
                    target_subject_id: sid,
                    state: AssignmentState::Delivered,
                    status: "Delivered".into(),
                    schedule: Schedule::default(),
                    answers: vec![],
                    is_extended: false,
                    expired_date_time: None,
                    created_date_time: now,
                    custom_extension_callout_instances: vec![],
                },
            )?;
        }
        Ok(())
    })
    .await;
    let def_id = definition_of(&app, &policy).await["id"].as_str().unwrap().to_string();
    advance(&app, "P1D").await;
    let inst = instances(&app, &def_id).await[0]["id"].as_str().unwrap().to_string();
    let (_, counted) = app
        .get(&app.admin, &format!("{V1_AR}/definitions/{def_id}/instances/{inst}/decisions?$count=true&$top=1"))
        .await;
    assert_eq!(counted["@odata.count"].as_u64(), Some(n as u64), "every assignment has its item: {counted}");
    advance(&app, "P14D").await;
    let (_, applied) = app
        .get(
            &app.admin,
            &format!("{V1_AR}/definitions/{def_id}/instances/{inst}/decisions?$filter=applyResult eq 'AppliedSuccessfully'&$count=true&$top=1"),
        )
        .await;
    assert_eq!(applied["@odata.count"].as_u64(), Some(n as u64), "{applied}");
    let active: i64 = app
        .read(move |c| grantry_store::repo::count(c, "assignments", "policy_id = ? AND active = 1", &[policy.into()]))
        .await;
    assert_eq!(active, 0);
}

/// A monthly review from tomorrow, `days` long, reviewed by `reviewer` with `fallback`
/// as fallback reviewer; unanswered access is removed.
fn monthly_review_by(app: &TestApp, reviewer: &str, fallback: &str, days: u32) -> Value {
    let start = app.now() + chrono::Duration::days(1);
    json!({
        "isEnabled": true,
        "expirationBehavior": "removeAccess",
        "isRecommendationEnabled": true,
        "isReviewerJustificationRequired": false,
        "isSelfReview": false,
        "schedule": {
            "startDateTime": start.to_rfc3339(),
            "expiration": { "type": "afterDuration", "duration": format!("P{days}D") },
            "recurrence": { "pattern": { "type": "absoluteMonthly", "interval": 1 }, "range": { "type": "noEnd" } }
        },
        "primaryReviewers": [{ "@odata.type": "#microsoft.graph.singleUser", "userId": reviewer }],
        "fallbackReviewers": [{ "@odata.type": "#microsoft.graph.singleUser", "userId": fallback }]
    })
}

fn user_scope(id: &str) -> Value {
    json!({ "query": format!("/users/{id}"), "queryType": "MicrosoftGraph" })
}

#[tokio::test]
async fn an_instance_put_changes_its_reviewers_and_a_definition_stop_ends_the_series() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let (ann, bo, first, fallback, second) = (
        app.create_user("ann").await,
        app.create_user("bo").await,
        app.create_user("first").await,
        app.create_user("fallback").await,
        app.create_user("second").await,
    );
    let policy = review_policy(&app, &f, monthly_review_by(&app, &first, &fallback, 7)).await;
    let def = definition_of(&app, &policy).await;
    let def_id = def["id"].as_str().unwrap().to_string();
    for u in [&ann, &bo] {
        assign(&app, &f, &policy, u).await;
    }
    advance(&app, "P1DT1H").await;
    let inst = instances(&app, &def_id).await[0].clone();
    let base = format!("{V1_AR}/definitions/{def_id}/instances/{}", inst["id"].as_str().unwrap());
    let (first_t, second_t) = (app.user_token(&first, REVIEWER_SCOPES), app.user_token(&second, REVIEWER_SCOPES));
    let inst_id = inst["id"].as_str().unwrap().to_string();
    assert_eq!(decisions(&app, &first_t, &def_id, &inst_id, true).await.len(), 2);

    // Removing a fallback reviewer is refused; changing the scope too; a reviewer cannot PUT.
    let mut put = inst.clone();
    put["fallbackReviewers"] = json!([]);
    let (status, body) = app.put(&app.admin, &base, put).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "FallbackReviewerRemoved", "{body}");
    let mut put = inst.clone();
    put["scope"]["query"] = json!("/users");
    let (status, body) = app.put(&app.admin, &base, put).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let mut put = inst.clone();
    put["reviewers"] = json!([user_scope(&second)]);
    let (status, body) = app.put(&first_t, &base, put.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let mut bad = put.clone();
    bad["reviewers"] = json!([{ "query": "/servicePrincipals/x/owners", "queryType": "MicrosoftGraph" }]);
    let (status, body) = app.put(&app.admin, &base, bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // The run's reviewers change: 200 with the run, and the items follow.
    let (status, body) = app.put(&app.admin, &base, put).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["reviewers"],
        json!([{ "query": format!("/users/{second}"), "queryType": "MicrosoftGraph", "queryRoot": null }])
    );
    assert_eq!(body["fallbackReviewers"][0]["query"], format!("/users/{fallback}"));
    app.drain().await;
    assert_eq!(decisions(&app, &second_t, &def_id, &inst_id, true).await.len(), 2);
    // The former reviewer reviews nothing in this run any more.
    let (status, body) = app.get(&first_t, &format!("{base}/decisions/filterByCurrentUser(on='reviewer')")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = app
        .post(
            &second_t,
            &format!("{base}/batchRecordDecisions"),
            json!({ "decision": "Approve", "justification": "ok" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, contacted) = app.get(&app.admin, &format!("{base}/contactedReviewers")).await;
    assert!(contacted["value"].as_array().unwrap().iter().any(|r| r["id"] == second.as_str()), "{contacted}");

    // Stopping the series: the run ends (its decisions applied), no further run opens, and
    // the policy's reviews are off.
    let (status, body) = app.post(&second_t, &format!("{V1_AR}/definitions/{def_id}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app.post(&app.admin, &format!("{V1_AR}/definitions/{def_id}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.drain().await;
    let (_, got) = app.get(&app.admin, &base).await;
    assert_eq!(got["status"], "Applied", "{got}");
    let (_, d) = app.get(&app.admin, &format!("{V1_AR}/definitions/{def_id}")).await;
    assert_eq!(d["status"], "Completed", "{d}");
    let (_, p) = app.get(&app.admin, &em("v1.0", &format!("assignmentPolicies/{policy}"))).await;
    assert_eq!(p["reviewSettings"]["isEnabled"], false, "{p}");
    assert!(app.is_member(&f.group_id, &ann).await && app.is_member(&f.group_id, &bo).await);
    advance(&app, "P70D").await;
    assert_eq!(instances(&app, &def_id).await.len(), 1, "no further run");
    let (status, body) = app.post(&app.admin, &format!("{V1_AR}/definitions/{def_id}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // A finished run's reviewers cannot change.
    let (status, body) = app.put(&app.admin, &base, got).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}

#[tokio::test]
async fn a_two_stage_review_sends_approved_items_to_the_second_stage_and_applies_the_latest_decision() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let (ann, bo, cy, first, second, fallback) = (
        app.create_user("ann").await,
        app.create_user("bo").await,
        app.create_user("cy").await,
        app.create_user("first").await,
        app.create_user("second").await,
        app.create_user("fallback").await,
    );
    let policy = review_policy(&app, &f, monthly_review_by(&app, &first, &fallback, 7)).await;
    let def = definition_of(&app, &policy).await;
    let def_id = def["id"].as_str().unwrap().to_string();
    let def_url = format!("{V1_AR}/definitions/{def_id}");
    for u in [&ann, &bo, &cy] {
        assign(&app, &f, &policy, u).await;
    }
    let stages = json!([
        { "stageId": "1", "durationInDays": 3, "recommendationsEnabled": true,
          "decisionsThatWillMoveToNextStage": ["Approve"], "reviewers": [user_scope(&first)] },
        { "stageId": "2", "dependsOn": ["1"], "durationInDays": 4, "reviewers": [user_scope(&second)],
          "fallbackReviewers": [user_scope(&fallback)] }
    ]);
    // Stages run one after another, at most three, within one recurrence period.
    for (bad, why) in [
        (json!([stages[0].clone(), { "stageId": "2", "durationInDays": 4 }]), "dependsOn"),
        (
            json!([stages[0].clone(), stages[1].clone(), { "stageId": "3", "dependsOn": ["2"], "durationInDays": 1 },
                { "stageId": "4", "dependsOn": ["3"], "durationInDays": 1 }]),
            "at most",
        ),
        (json!([{ "stageId": "1", "durationInDays": 40 }]), "recurrence period"),
        (json!([{ "stageId": "1", "durationInDays": 3, "decisionsThatWillMoveToNextStage": ["Maybe"] }]), "Maybe"),
    ] {
        let mut put = def.clone();
        put["stageSettings"] = bad;
        let (status, body) = app.put(&app.admin, &def_url, put).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(why), "{body}");
    }
    let mut put = def.clone();
    put["stageSettings"] = stages;
    let (status, body) = app.put(&app.admin, &def_url, put).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, got) = app.get(&app.admin, &def_url).await;
    assert_eq!(got["stageSettings"].as_array().map(Vec::len), Some(2), "{got}");
    assert_eq!(got["stageSettings"][1]["dependsOn"], json!(["1"]));
    assert_eq!(got["stageSettings"][0]["decisionsThatWillMoveToNextStage"], json!(["Approve"]));
    assert_eq!(got["settings"]["instanceDurationInDays"], 7, "{got}");
    // A GET-modify-PUT keeps them.
    let (status, body) = app.put(&app.admin, &def_url, got.clone()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    advance(&app, "P1DT1H").await;
    let inst = instances(&app, &def_id).await[0].clone();
    let inst_id = inst["id"].as_str().unwrap().to_string();
    let base = format!("{def_url}/instances/{inst_id}");
    let (first_t, second_t) = (app.user_token(&first, REVIEWER_SCOPES), app.user_token(&second, REVIEWER_SCOPES));
    let (status, list) = app.get(&app.admin, &format!("{base}/stages")).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed = list["value"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{list}");
    assert_eq!(listed[0]["status"], "InProgress");
    let s1 = listed[0]["id"].as_str().unwrap().to_string();
    let (status, mine) = app.get(&first_t, &format!("{base}/stages/filterByCurrentUser(on='reviewer')")).await;
    assert_eq!((status, mine["value"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{mine}");
    // The second stage's reviewer has nothing to review yet.
    let (status, _) = app.get(&second_t, &format!("{base}/stages/filterByCurrentUser(on='reviewer')")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Stage 1: ann and bo approved, cy denied.
    let (status, items) =
        app.get(&first_t, &format!("{base}/stages/{s1}/decisions/filterByCurrentUser(on='reviewer')")).await;
    assert_eq!(status, StatusCode::OK, "{items}");
    let items = items["value"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3);
    for (user, decision) in [(&ann, "Approve"), (&bo, "Approve"), (&cy, "Deny")] {
        let x = item_of(&items, user)["id"].as_str().unwrap();
        let (status, body) = app
            .patch(
                &first_t,
                &format!("{base}/stages/{s1}/decisions/{x}"),
                json!({ "decision": decision, "justification": "stage one" }),
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let (status, body) = app.post(&first_t, &format!("{base}/stages/{s1}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app.post(&app.admin, &format!("{base}/stages/{s1}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.drain().await;

    // Stage 2 opened with the approved items only; stage 1 keeps its decisions.
    let (_, list) = app.get(&app.admin, &format!("{base}/stages")).await;
    let listed = list["value"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{list}");
    assert_eq!((listed[0]["status"].as_str(), listed[1]["status"].as_str()), (Some("Completed"), Some("InProgress")));
    let s2 = listed[1]["id"].as_str().unwrap().to_string();
    assert_eq!(listed[1]["reviewers"][0]["query"], format!("/users/{second}"));
    let (_, stage2) =
        app.get(&second_t, &format!("{base}/stages/{s2}/decisions/filterByCurrentUser(on='reviewer')")).await;
    let stage2 = stage2["value"].as_array().unwrap().clone();
    assert_eq!(stage2.len(), 2, "{stage2:?}");
    assert!(stage2.iter().all(|x| x["decision"] == "NotReviewed"), "{stage2:?}");
    let (_, stage1) = app.get(&app.admin, &format!("{base}/stages/{s1}/decisions")).await;
    let stage1 = stage1["value"].as_array().unwrap().clone();
    assert_eq!(stage1.len(), 3);
    assert_eq!(item_of(&stage1, &ann)["decision"], "Approve");
    assert_eq!(item_of(&stage1, &cy)["decision"], "Deny");
    // The run shows each item's latest decision.
    let all = decisions(&app, &app.admin, &def_id, &inst_id, false).await;
    assert_eq!(item_of(&all, &ann)["decision"], "Approve");
    assert_eq!(item_of(&all, &cy)["decision"], "Deny");
    // Stage 1 is over: its reviewer decides nothing more (and no longer reviews in this run);
    // the second stage's reviewer cannot decide in stage 1 either.
    let x = item_of(&stage1, &ann)["id"].as_str().unwrap();
    let (status, body) =
        app.patch(&first_t, &format!("{base}/stages/{s1}/decisions/{x}"), json!({ "decision": "Deny" })).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) =
        app.patch(&second_t, &format!("{base}/stages/{s1}/decisions/{x}"), json!({ "decision": "Deny" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "AccessReviewStageNotInProgress", "{body}");

    // Stage 2: bo denied, ann not answered; at the end ann keeps stage 1's approval.
    let x = item_of(&stage2, &bo)["id"].as_str().unwrap();
    let (status, body) = app
        .patch(
            &second_t,
            &format!("{base}/stages/{s2}/decisions/{x}"),
            json!({ "decision": "Deny", "justification": "left" }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    advance(&app, "P5D").await;
    let (_, got) = app.get(&app.admin, &base).await;
    assert_eq!(got["status"], "Applied", "{got}");
    let all = decisions(&app, &app.admin, &def_id, &inst_id, false).await;
    assert_eq!(item_of(&all, &ann)["decision"], "Approve", "{all:?}");
    assert_eq!(item_of(&all, &bo)["decision"], "Deny");
    assert!(app.is_member(&f.group_id, &ann).await, "approved in stage 1, not answered in stage 2");
    assert!(!app.is_member(&f.group_id, &bo).await, "denied in stage 2");
    assert!(!app.is_member(&f.group_id, &cy).await, "denied in stage 1");
    let (_, list) = app.get(&app.admin, &format!("{base}/stages")).await;
    assert!(list["value"].as_array().unwrap().iter().all(|s| s["status"] == "Completed"), "{list}");
}

/// The mails kept for `name@contoso.com`, newest first.
async fn mails_to(app: &TestApp, name: &str) -> Vec<Value> {
    let (status, body) = app.get(&app.admin, &format!("/_grantry/mail?to={name}@contoso.com")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"].as_array().unwrap().clone()
}

/// The subjects of `mails`, oldest first.
fn mail_subjects(mails: &[Value]) -> Vec<String> {
    mails.iter().rev().map(|m| m["subject"].as_str().unwrap_or_default().to_string()).collect()
}

/// The plain text of mail `m`.
async fn mail_text(app: &TestApp, m: &Value) -> String {
    let (status, body) = app.get(&app.admin, &format!("/_grantry/mail/{}", m["id"].as_str().unwrap())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["text"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn each_stage_reminds_its_own_reviewers_at_its_midpoint_and_on_send_reminder() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let (ann, bo, first, second, fallback) = (
        app.create_user("ann").await,
        app.create_user("bo").await,
        app.create_user("first").await,
        app.create_user("second").await,
        app.create_user("fallback").await,
    );
    let policy = review_policy(&app, &f, monthly_review_by(&app, &first, &fallback, 7)).await;
    let def = definition_of(&app, &policy).await;
    assert_eq!(def["settings"]["reminderNotificationsEnabled"], true, "{def}");
    let def_id = def["id"].as_str().unwrap().to_string();
    let def_url = format!("{V1_AR}/definitions/{def_id}");
    for u in [&ann, &bo] {
        assign(&app, &f, &policy, u).await;
    }
    let mut put = def.clone();
    put["stageSettings"] = json!([
        { "stageId": "1", "durationInDays": 4, "decisionsThatWillMoveToNextStage": ["Approve"],
          "reviewers": [user_scope(&first)] },
        { "stageId": "2", "dependsOn": ["1"], "durationInDays": 2, "reviewers": [user_scope(&second)] }
    ]);
    let (status, body) = app.put(&app.admin, &def_url, put).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // The run opens with stage 1: only its reviewer is told.
    advance(&app, "P1DT1H").await;
    let inst = instances(&app, &def_id).await[0].clone();
    let base = format!("{def_url}/instances/{}", inst["id"].as_str().unwrap());
    assert_eq!(mail_subjects(&mails_to(&app, "first").await).len(), 1);
    assert!(mails_to(&app, "second").await.is_empty(), "stage 2 has not started");
    let first_t = app.user_token(&first, REVIEWER_SCOPES);
    let (_, stages) = app.get(&app.admin, &format!("{base}/stages")).await;
    let s1 = stages["value"][0]["id"].as_str().unwrap().to_string();
    let (_, items) =
        app.get(&first_t, &format!("{base}/stages/{s1}/decisions/filterByCurrentUser(on='reviewer')")).await;
    let x = item_of(items["value"].as_array().unwrap(), &ann)["id"].as_str().unwrap().to_string();
    let (status, body) =
        app.patch(&first_t, &format!("{base}/stages/{s1}/decisions/{x}"), json!({ "decision": "Approve" })).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Halfway through stage 1 (day 2 of 4), its reviewer, who still has bo to decide, is
    // reminded of stage 1 and its end; stage 2's reviewer is not.
    advance(&app, "P2D").await;
    let to_first = mails_to(&app, "first").await;
    assert_eq!(mail_subjects(&to_first).len(), 2, "{:?}", mail_subjects(&to_first));
    assert!(to_first[0]["subject"].as_str().unwrap().starts_with("Reminder: review access to"), "{to_first:?}");
    let text = mail_text(&app, &to_first[0]).await;
    assert!(text.contains("Stage 1 of the access review"), "{text}");
    assert!(mails_to(&app, "second").await.is_empty(), "no mail to a stage that is not under way");

    // sendReminder reminds the reviewers of the stage under way.
    let (status, body) = app.post(&app.admin, &format!("{base}/sendReminder"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(mails_to(&app, "first").await.len(), 3);
    assert!(mails_to(&app, "second").await.is_empty());

    // Stage 2 starts with ann (approved); bo stays with stage 1's answer. Its reviewer is told.
    let (status, body) = app.post(&app.admin, &format!("{base}/stages/{s1}/stop"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    app.drain().await;
    let to_second = mails_to(&app, "second").await;
    assert_eq!(mail_subjects(&to_second).len(), 1, "{:?}", mail_subjects(&to_second));
    assert!(to_second[0]["subject"].as_str().unwrap().starts_with("Action required"), "{to_second:?}");

    // Now sendReminder reminds stage 2's reviewer only: stage 1's is done.
    let (status, body) = app.post(&app.admin, &format!("{base}/sendReminder"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let to_second = mails_to(&app, "second").await;
    assert_eq!(to_second.len(), 2, "{:?}", mail_subjects(&to_second));
    assert!(mail_text(&app, &to_second[0]).await.contains("Stage 2 of the access review"));
    assert_eq!(mails_to(&app, "first").await.len(), 3, "stage 1's reviewer is not reminded of stage 2");

    // Halfway through stage 2 (day 1 of 2) its reviewer is reminded again, on the clock.
    advance(&app, "P1DT1H").await;
    assert_eq!(mails_to(&app, "second").await.len(), 3);
    assert_eq!(mails_to(&app, "first").await.len(), 3);
    // The run ends: no more reminders to anyone.
    advance(&app, "P3D").await;
    let (_, got) = app.get(&app.admin, &base).await;
    assert_eq!(got["status"], "Applied", "{got}");
    assert_eq!(mails_to(&app, "second").await.len(), 3);
    assert_eq!(mails_to(&app, "first").await.len(), 3);
    let (_, audits) = app.get(&app.admin, &format!("/_grantry/audit?entityId={}", inst["id"].as_str().unwrap())).await;
    assert!(audits.to_string().contains("reminderSent"), "{audits}");
}
