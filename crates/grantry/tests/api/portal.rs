//! The web portal over plain HTTP, as a browser without scripts uses it: cookies, forms,
//! redirects. (`browser.rs` drives the same pages in headless Chromium.)

use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::json;
use std::collections::HashMap;

/// A cookie-keeping client that never follows redirects.
pub struct Visitor {
    client: reqwest::Client,
    base: String,
    pub cookies: HashMap<String, String>,
    /// `Set-Cookie` headers as last received, whole (for their attributes).
    pub last_set_cookies: Vec<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> String {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
    }
    /// The value of the first hidden `csrf` field.
    pub fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").unwrap_or_else(|| panic!("no csrf field in: {}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

impl Visitor {
    pub fn new(app: &TestApp) -> Visitor {
        Visitor {
            client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            base: app.base.clone(),
            cookies: HashMap::new(),
            last_set_cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn finish(&mut self, response: reqwest::Response) -> Page {
        let status = response.status();
        let headers = response.headers().clone();
        self.last_set_cookies = headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_string()).collect();
        for c in &self.last_set_cookies {
            let pair = c.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        Page { status, headers, body: response.text().await.unwrap() }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header("accept", "text/html,application/xhtml+xml")
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = form_body(form);
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("accept", "text/html")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", self.cookie_header())
            .body(body)
            .send()
            .await
            .unwrap();
        self.finish(r).await
    }

    /// Signs in with `--dev-login` as `user_id`.
    pub async fn sign_in_dev(&mut self, user_id: &str) {
        let page = self.get("/sign-in").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let csrf = page.csrf();
        let done = self.post("/sign-in/dev", &[("csrf", &csrf), ("user", user_id), ("return", "/access")]).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        assert_eq!(done.location(), "/access");
        assert!(self.cookies.contains_key("grantry_session"));
    }
}

fn form_body(form: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in form.iter().enumerate() {
        if i > 0 {
            s.push('&');
        }
        s.push_str(&percent(k));
        s.push('=');
        s.push_str(&percent(v));
    }
    s
}

fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A development server (`--dev-clock --dev-login`) with the demo directory, and the ids
/// of its people by first name.
pub async fn demo_app() -> (TestApp, HashMap<String, String>) {
    let app = TestApp::spawn_with(Options { dev_login: true, ..Default::default() }).await;
    let people = create_demo(&app).await;
    (app, people)
}

/// Creates the demo directory through the sign-in page's button.
pub async fn create_demo(app: &TestApp) -> HashMap<String, String> {
    let mut v = Visitor::new(app);
    let page = v.get("/sign-in").await;
    assert!(page.body.contains("The directory is empty"), "{}", page.body);
    let csrf = page.csrf();
    let done = v.post("/sign-in/dev/demo", &[("csrf", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let (_, users) = app.get(&app.admin, "/v1.0/users?$select=id,displayName").await;
    users["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let first = u["displayName"].as_str().unwrap().split(' ').next().unwrap().to_lowercase();
            (first, u["id"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The demo package's id and its policy's question ids (choice, text).
async fn demo_package(app: &TestApp) -> (String, String, String) {
    let (_, packages) = app.get(&app.admin, &format!("/v1.0/{EM}/accessPackages?$expand=assignmentPolicies")).await;
    let p = packages["value"].as_array().unwrap().iter().find(|p| p["displayName"] == "Sales reports").unwrap().clone();
    let policy_id = p["assignmentPolicies"][0]["id"].as_str().unwrap().to_string();
    let (_, policy) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentPolicies/{policy_id}")).await;
    let qs = policy["questions"].as_array().unwrap();
    (
        p["id"].as_str().unwrap().to_string(),
        qs[0]["id"].as_str().unwrap().to_string(),
        qs[1]["id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn the_root_answers_json_to_clients_and_the_portal_to_browsers() {
    let app = TestApp::spawn().await;
    let (status, index) = app.get("", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(index["service"], "Grantry", "{index}");
    let mut v = Visitor::new(&app);
    let page = v.get("/").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/sign-in");
    // Without --dev-login or an OpenID client, the sign-in page says how to configure it…
    let page = v.get("/sign-in").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Sign-in is not configured"), "{}", page.body);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    assert!(page.headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    // …and the development sign-in does not exist.
    let csrf = v.cookies["grantry_sign_in"].clone();
    let refused = v.post("/sign-in/dev", &[("csrf", &csrf), ("user", &grantry_domain::ids::new_id())]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    // Pages need a session.
    let page = v.get("/access/requests").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/sign-in?return=%2Faccess%2Frequests");
}

#[tokio::test]
async fn request_with_questions_approve_and_see_access_arrive_then_expire() {
    let (app, people) = demo_app().await;
    let (package, region, cost_center) = demo_package(&app).await;
    let mut alex = Visitor::new(&app);
    alex.sign_in_dev(&people["alex"]).await;
    // The session cookie: HttpOnly, SameSite=Lax, not Secure over plain HTTP, with an expiry.
    let cookie = alex.last_set_cookies.iter().find(|c| c.starts_with("grantry_session=")).unwrap().clone();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Max-Age=28800"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");

    let page = alex.get("/access").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Sales reports") && page.body.contains("Development server"), "{}", page.body);
    let form = alex.get(&format!("/access/packages/{package}")).await;
    assert!(
        form.body.contains("Which region do you work in?") && form.body.contains("Your cost center"),
        "{}",
        form.body
    );
    let csrf = form.csrf();
    let policy = {
        let at = form.body.find("name=\"policy\" value=\"").unwrap() + "name=\"policy\" value=\"".len();
        form.body[at..at + 36].to_string()
    };
    let q_region = format!("q_{region}");
    let q_cost = format!("q_{cost_center}");
    // The API's validation, shown next to the field.
    let refused = alex
        .post(
            &format!("/access/packages/{package}"),
            &[
                ("csrf", &csrf),
                ("policy", &policy),
                (&q_region, "emea"),
                (&q_cost, "12ab"),
                ("justification", "Monthly review"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("This answer must match the pattern [0-9]{4}."), "{}", refused.body);
    // A form without the session's CSRF token is refused and changes nothing.
    let forged = alex
        .post(
            &format!("/access/packages/{package}"),
            &[("csrf", "forged"), ("policy", &policy), (&q_region, "emea"), (&q_cost, "1234"), ("justification", "x")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(forged.body.contains("CSRF"), "{}", forged.body);
    let (_, requests) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests")).await;
    assert_eq!(requests["value"].as_array().unwrap().len(), 0, "{requests}");

    let submitted = alex
        .post(
            &format!("/access/packages/{package}"),
            &[
                ("csrf", &csrf),
                ("policy", &policy),
                (&q_region, "emea"),
                (&q_cost, "1234"),
                ("justification", "Monthly review"),
            ],
        )
        .await;
    assert_eq!(submitted.status, StatusCode::SEE_OTHER, "{}", submitted.body);
    let request_path = submitted.location();
    let request_id = request_path.trim_start_matches("/access/requests/").split('?').next().unwrap().to_string();
    let page = alex.get(&request_path).await;
    assert!(
        page.body.contains("Pending approval") && page.body.contains("Europe, Middle East and Africa"),
        "{}",
        page.body
    );
    let (_, r) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{request_id}")).await;
    assert_eq!(r["state"], "pendingApproval", "{r}");
    assert_eq!(r["answers"].as_array().unwrap().len(), 2, "{r}");

    // Megan's inbox, in a session of her own.
    let mut megan = Visitor::new(&app);
    megan.sign_in_dev(&people["megan"]).await;
    let inbox = megan.get("/approvals").await;
    assert!(inbox.body.contains(&format!("/approvals/{request_id}")), "{}", inbox.body);
    let approval = megan.get(&format!("/approvals/{request_id}")).await;
    assert!(approval.body.contains("Monthly review") && approval.body.contains("1234"), "{}", approval.body);
    let stage = {
        let at = approval.body.find("name=\"stage\" value=\"").unwrap() + "name=\"stage\" value=\"".len();
        approval.body[at..at + 36].to_string()
    };
    // Alex can see his request's approval but has nothing to decide on it.
    let own = alex.get(&format!("/approvals/{request_id}")).await;
    assert!(own.body.contains("nothing for you to decide"), "{}", own.body);
    let megan_csrf = megan.get("/approvals").await.csrf();
    let decided = megan
        .post(
            &format!("/approvals/{request_id}"),
            &[("csrf", &megan_csrf), ("stage", &stage), ("decision", "approve"), ("justification", "Fine")],
        )
        .await;
    assert_eq!(decided.status, StatusCode::SEE_OTHER, "{}", decided.body);
    app.drain().await;
    let access = alex.get("/access/assignments").await;
    assert!(access.body.contains("Sales reports") && access.body.contains("in 30 days"), "{}", access.body);
    let history = megan.get("/approvals").await;
    assert!(
        history.body.contains("Your past decisions") && history.body.contains("badge-Approved"),
        "{}",
        history.body
    );

    // Thirty-one days later (the development clock) the access has ended.
    let (status, _) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": "P31D" })).await;
    assert_eq!(status, StatusCode::OK);
    app.drain().await;
    let access = alex.get("/access/assignments").await;
    assert!(access.body.contains("You have no active access") && access.body.contains("Ended"), "{}", access.body);
}

#[tokio::test]
async fn pages_enforce_the_apis_authorization() {
    let (app, people) = demo_app().await;
    let (package, region, cost_center) = demo_package(&app).await;
    // Alex asks (through the API, as the portal would).
    let alex_token = app.user_token(&people["alex"], &["EntitlementMgmt-SubjectAccess.ReadWrite"]);
    let (_, policies) =
        app.get(&app.admin, &format!("/v1.0/{EM}/assignmentPolicies?$filter=accessPackage/id eq '{package}'")).await;
    let policy = policies["value"][0]["id"].as_str().unwrap().to_string();
    let (status, r) = app
        .post(
            &alex_token,
            &format!("/v1.0/{EM}/assignmentRequests"),
            json!({ "requestType": "userAdd", "justification": "x",
                    "assignment": { "accessPackageId": package, "assignmentPolicyId": policy },
                    "answers": [
                        { "@odata.type": "#microsoft.graph.accessPackageAnswerString", "value": "amer", "answeredQuestion": { "@odata.type": "#microsoft.graph.accessPackageMultipleChoiceQuestion", "id": region } },
                        { "@odata.type": "#microsoft.graph.accessPackageAnswerString", "value": "4321", "answeredQuestion": { "@odata.type": "#microsoft.graph.accessPackageTextInputQuestion", "id": cost_center } }
                    ] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    let request_id = r["id"].as_str().unwrap().to_string();

    // Irene's request page for Alex's request: she is an administrator, so she may read it.
    let mut irene = Visitor::new(&app);
    irene.sign_in_dev(&people["irene"]).await;
    assert_eq!(irene.get(&format!("/access/requests/{request_id}")).await.status, StatusCode::OK);
    let admin = irene.get("/admin").await;
    assert_eq!(admin.status, StatusCode::OK);
    assert!(admin.body.contains("Sales"), "{}", admin.body);

    // Megan approves but is no requestor or administrator: another user's request is not
    // found for her, and the administration is refused.
    let mut megan = Visitor::new(&app);
    megan.sign_in_dev(&people["megan"]).await;
    let other = megan.get(&format!("/access/requests/{request_id}")).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.body);
    let mut alex = Visitor::new(&app);
    alex.sign_in_dev(&people["alex"]).await;
    let admin = alex.get("/admin").await;
    assert_eq!(admin.status, StatusCode::FORBIDDEN, "{}", admin.body);
    assert!(!alex.get("/access").await.body.contains("href=\"/admin\""));
    // Alex cannot decide his own request, even by posting the form.
    let (_, approval) = app.get(&app.admin, &format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{request_id}")).await;
    let stage = approval["stages"][0]["id"].as_str().unwrap_or_else(|| panic!("{approval}")).to_string();
    let csrf = alex.get("/approvals").await.csrf();
    let refused = alex
        .post(&format!("/approvals/{request_id}"), &[("csrf", &csrf), ("stage", &stage), ("decision", "approve")])
        .await;
    assert!(refused.status.is_client_error(), "{}: {}", refused.status, refused.body);
    let (_, r) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{request_id}")).await;
    assert_eq!(r["state"], "pendingApproval", "{r}");
    // Megan cannot cancel Alex's request; Alex can.
    let csrf_m = megan.get("/approvals").await.csrf();
    let refused = megan.post(&format!("/access/requests/{request_id}/cancel"), &[("csrf", &csrf_m)]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    let canceled = alex.post(&format!("/access/requests/{request_id}/cancel"), &[("csrf", &csrf)]).await;
    assert_eq!(canceled.status, StatusCode::SEE_OTHER, "{}", canceled.body);
    let (_, r) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{request_id}")).await;
    assert_eq!(r["state"], "canceled", "{r}");

    // Signing out needs the token too, and ends the session.
    let refused = alex.post("/sign-out", &[("csrf", "nope")]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = alex.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = alex.get("/access").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(after.location().starts_with("/sign-in"), "{}", after.location());
    // A session cookie someone kept after sign-out opens nothing.
    let mut replay = Visitor::new(&app);
    replay.cookies.insert("grantry_session".into(), "stolen-or-old".into());
    assert_eq!(replay.get("/access").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_disabled_person_is_signed_out() {
    let (app, people) = demo_app().await;
    let mut alex = Visitor::new(&app);
    alex.sign_in_dev(&people["alex"]).await;
    let (status, _) =
        app.patch(&app.admin, &format!("/v1.0/users/{}", people["alex"]), json!({ "accountEnabled": false })).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let page = alex.get("/access").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(page.location().contains("disabled"), "{}", page.location());
}

/// A policy on the demo package through which administrators assign and people may remove
/// their access themselves,
/// reviewed by the people themselves every quarter from an hour from now.
async fn reviewed_policy(app: &TestApp, package: &str) -> String {
    let start = app.now() + chrono::Duration::hours(1);
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentPolicies"),
            json!({
                "displayName": "Assigned by administrators, reviewed quarterly",
                "allowedTargetScope": "allMemberUsers",
                "accessPackage": { "id": package },
                "expiration": { "type": "noExpiration" },
                "requestorSettings": { "enableTargetsToSelfAddAccess": false, "enableTargetsToSelfRemoveAccess": true },
                "reviewSettings": {
                    "isEnabled": true, "expirationBehavior": "removeAccess", "isRecommendationEnabled": true,
                    "isReviewerJustificationRequired": true, "isSelfReview": true,
                    "schedule": {
                        "startDateTime": start.to_rfc3339(),
                        "expiration": { "type": "afterDuration", "duration": "P14D" },
                        "recurrence": { "pattern": { "type": "absoluteMonthly", "interval": 3 }, "range": { "type": "noEnd" } }
                    },
                    "primaryReviewers": [], "fallbackReviewers": []
                }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_string()
}

async fn admin_add(app: &TestApp, package: &str, policy: &str, user: &str) -> String {
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentRequests"),
            json!({ "requestType": "adminAdd", "assignment": { "targetId": user, "assignmentPolicyId": policy, "accessPackageId": package } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    let id = body["id"].as_str().unwrap();
    let (_, r) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{id}?$expand=assignment")).await;
    assert_eq!(r["state"], "delivered", "{r}");
    r["assignment"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn reviewers_decide_people_remove_their_access_and_administrators_filter_and_remove() {
    let (app, people) = demo_app().await;
    let (package, _, _) = demo_package(&app).await;
    let policy = reviewed_policy(&app, &package).await;
    let alex_assignment = admin_add(&app, &package, &policy, &people["alex"]).await;
    let megan_assignment = admin_add(&app, &package, &policy, &people["megan"]).await;

    // The quarterly self-review opens: Alex reviews his own access.
    let (status, _) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": "PT2H" })).await;
    assert_eq!(status, StatusCode::OK);
    app.drain().await;
    let mut alex = Visitor::new(&app);
    alex.sign_in_dev(&people["alex"]).await;
    let inbox = alex.get("/reviews").await;
    assert_eq!(inbox.status, StatusCode::OK, "{}", inbox.body);
    let at = inbox.body.find("href=\"/reviews/").unwrap_or_else(|| panic!("{}", inbox.body)) + "href=\"".len();
    let run = inbox.body[at..at + inbox.body[at..].find('"').unwrap()].to_string();
    let page = alex.get(&run).await;
    assert!(page.body.contains("Does Alex Wilber still need this access?"), "{}", page.body);
    let item = {
        let at = page.body.find("/decisions/").unwrap() + "/decisions/".len();
        page.body[at..at + 36].to_string()
    };
    let csrf = page.csrf();
    // Approving needs a justification in this review: the API's refusal is shown at the item.
    let refused = alex.post(&format!("{run}/decisions/{item}"), &[("csrf", &csrf), ("decision", "Approve")]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(refused.body.contains("requires a justification"), "{}", refused.body);
    let saved = alex
        .post(
            &format!("{run}/decisions/{item}"),
            &[("csrf", &csrf), ("decision", "Approve"), ("justification", "Still on the team")],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert!(alex.get(&saved.location()).await.body.contains("Still on the team"));
    // Megan reviews only her own item: Alex's is not hers to decide.
    let mut megan = Visitor::new(&app);
    megan.sign_in_dev(&people["megan"]).await;
    let csrf_m = megan.get("/reviews").await.csrf();
    let refused = megan
        .post(&format!("{run}/decisions/{item}"), &[("csrf", &csrf_m), ("decision", "Deny"), ("justification", "x")])
        .await;
    assert!(refused.status.is_client_error(), "{}: {}", refused.status, refused.body);

    // Irene filters the assignments.
    let mut irene = Visitor::new(&app);
    irene.sign_in_dev(&people["irene"]).await;
    let all = irene.get("/admin/assignments").await;
    assert!(all.body.contains("Alex Wilber") && all.body.contains("Megan Bowen"), "{}", all.body);
    let one = irene.get("/admin/assignments?person=alex%40contoso.com&state=delivered").await;
    assert!(one.body.contains("Alex Wilber") && !one.body.contains("Megan Bowen"), "{}", one.body);
    let none = irene.get("/admin/assignments?state=expired").await;
    assert!(none.body.contains("No assignment matches"), "{}", none.body);
    // Alex may not use the administration's removal, even by posting the form: as in the
    // API, someone else's assignment is not found for him.
    let refused = alex.post(&format!("/admin/assignments/{megan_assignment}/remove"), &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    let csrf_i = irene.get("/admin").await.csrf();
    let removed = irene.post(&format!("/admin/assignments/{megan_assignment}/remove"), &[("csrf", &csrf_i)]).await;
    assert_eq!(removed.status, StatusCode::SEE_OTHER, "{}", removed.body);
    // Alex removes his own access.
    let mine = alex.get("/access/assignments").await;
    assert!(mine.body.contains(&format!("/access/assignments/{alex_assignment}/remove")), "{}", mine.body);
    let done = alex.post(&format!("/access/assignments/{alex_assignment}/remove"), &[("csrf", &csrf)]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert!(done.location().starts_with("/access/requests/"), "{}", done.location());
    app.drain().await;
    for id in [&alex_assignment, &megan_assignment] {
        let (_, a) = app.get(&app.admin, &format!("/v1.0/{EM}/assignments/{id}")).await;
        assert_eq!(a["state"], "expired", "{a}");
    }
    assert!(alex.get("/access/assignments").await.body.contains("You have no active access"));
}

#[tokio::test]
async fn the_builders_refuse_requestors_and_foreign_forms_and_show_the_apis_validation_next_to_the_field() {
    let (app, people) = demo_app().await;
    let (package, _, _) = demo_package(&app).await;
    let (_, catalogs) = app.get(&app.admin, &format!("/v1.0/{EM}/catalogs?$filter=displayName eq 'Sales'")).await;
    let catalog = catalogs["value"][0]["id"].as_str().unwrap().to_string();
    // A requestor sees none of the builders and cannot post to them.
    let mut alex = Visitor::new(&app);
    alex.sign_in_dev(&people["alex"]).await;
    let csrf = alex.get("/access").await.csrf();
    for path in [
        format!("/admin/catalogs/{catalog}"),
        format!("/admin/packages/{package}"),
        format!("/admin/packages/{package}/policies/new"),
    ] {
        assert_eq!(alex.get(&path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let page = alex.post("/admin/catalogs", &[("csrf", &csrf), ("displayName", "Mine"), ("state", "published")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    let page =
        alex.post(&format!("/admin/catalogs/{catalog}/packages"), &[("csrf", &csrf), ("displayName", "Sneaky")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    // An administrator's form without the session's CSRF token is refused.
    let mut irene = Visitor::new(&app);
    irene.sign_in_dev(&people["irene"]).await;
    let page = irene.post("/admin/catalogs", &[("csrf", "forged"), ("displayName", "Forged")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    // The API's validation, next to the field.
    let csrf = irene.get("/admin").await.csrf();
    let page = irene.post("/admin/catalogs", &[("csrf", &csrf), ("displayName", " "), ("state", "published")]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("id=\"displayName_error\""), "{}", page.body);
    let megan = format!("user:{}", people["megan"]);
    let page = irene
        .post(
            &format!("/admin/packages/{package}/policies"),
            &[
                ("csrf", &csrf),
                ("displayName", "Too quick"),
                ("allowedTargetScope", "allMemberUsers"),
                ("selfAdd", "on"),
                ("stage1Approver", &megan),
                ("stage1Days", "0"),
                ("expiration", "noExpiration"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    let at = page.body.find("id=\"stage1Days_error\"").unwrap_or_else(|| panic!("{}", page.body));
    assert!(page.body[at..].contains("must be longer than zero"), "{}", page.body);
    assert!(page.body.contains("value=\"Too quick\""), "the form keeps what was typed: {}", page.body);
    let (_, policies) =
        app.get(&app.admin, &format!("/v1.0/{EM}/assignmentPolicies?$filter=accessPackage/id eq '{package}'")).await;
    assert_eq!(policies["value"].as_array().unwrap().len(), 1, "nothing was written: {policies}");
    // A valid form creates the policy the API then serves.
    let page = irene
        .post(
            &format!("/admin/packages/{package}/policies"),
            &[
                ("csrf", &csrf),
                ("displayName", "Managers ask for their reports"),
                ("allowedTargetScope", "allMemberUsers"),
                ("selfAdd", "on"),
                ("selfExtend", "on"),
                ("customSchedule", "on"),
                ("onBehalf", "on"),
                ("stage1Approver", &megan),
                ("stage1Days", "5"),
                ("expiration", "afterDuration"),
                ("expirationDays", "90"),
                ("reviewEnabled", "on"),
                ("reviewRecurrence", "quarterly"),
                ("reviewDays", "10"),
                ("reviewers", "manager"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let (_, policies) = app
        .get(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentPolicies?$filter=displayName eq 'Managers ask for their reports'"),
        )
        .await;
    let p = &policies["value"][0];
    assert_eq!(p["expiration"]["duration"], "P90D", "{p}");
    assert_eq!(p["requestorSettings"]["enableOnBehalfRequestorsToAddAccess"], true, "{p}");
    assert_eq!(p["requestorSettings"]["allowCustomAssignmentSchedule"], true, "{p}");
    assert_eq!(p["requestApprovalSettings"]["stages"][0]["durationBeforeAutomaticDenial"], "P5D", "{p}");
    assert_eq!(p["reviewSettings"]["isEnabled"], true, "{p}");
}

#[tokio::test]
async fn people_extend_their_access_managers_request_for_reports_with_an_end_date_and_administrators_read_requests_and_the_audit_log()
 {
    let (app, people) = demo_app().await;
    let (package, _, _) = demo_package(&app).await;
    let (alex, megan) = (people["alex"].clone(), people["megan"].clone());
    let (status, body) = app
        .put(
            &app.admin,
            &format!("/v1.0/users/{alex}/manager/$ref"),
            json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/users/{megan}") }),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let (_, policies) =
        app.get(&app.admin, &format!("/v1.0/{EM}/assignmentPolicies?$filter=accessPackage/id eq '{package}'")).await;
    let demo_policy = policies["value"][0]["id"].as_str().unwrap().to_string();
    // Alex has the package; the demo policy lets people extend.
    let assignment = admin_add(&app, &package, &demo_policy, &alex).await;
    let mut a = Visitor::new(&app);
    a.sign_in_dev(&alex).await;
    let page = a.get("/access/assignments").await;
    assert!(page.body.contains(&format!("/access/assignments/{assignment}/extend")), "{}", page.body);
    let form = a.get(&format!("/access/assignments/{assignment}/extend")).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    let csrf = form.csrf();
    let refused = a.post(&format!("/access/assignments/{assignment}/extend"), &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "the policy wants a justification: {}", refused.body);
    let done = a
        .post(
            &format!("/access/assignments/{assignment}/extend"),
            &[("csrf", &csrf), ("justification", "Another quarter")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let request = done.location().trim_start_matches("/access/requests/").split('?').next().unwrap().to_string();
    let (_, r) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{request}")).await;
    // v1.0 names userExtend `userUpdate`.
    assert_eq!(r["requestType"], "userUpdate", "{r}");

    // A policy that lets managers ask for their reports and choose an end date.
    let (status, p) = app
        .post(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentPolicies"),
            json!({
                "displayName": "Managers ask for their reports",
                "allowedTargetScope": "allMemberUsers",
                "accessPackage": { "id": package },
                "expiration": { "type": "afterDuration", "duration": "P90D" },
                "requestorSettings": { "enableTargetsToSelfAddAccess": true, "allowCustomAssignmentSchedule": true,
                    "enableOnBehalfRequestorsToAddAccess": true,
                    "onBehalfRequestors": [{ "@odata.type": "#microsoft.graph.targetManager", "managerLevel": 1 }] },
                "requestApprovalSettings": { "isApprovalRequiredForAdd": false, "stages": [] }
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let policy = p["id"].as_str().unwrap().to_string();
    // Dan, Megan's other report, has no access yet.
    let (status, dan) = app
        .post(
            &app.admin,
            "/v1.0/users",
            json!({ "displayName": "Dan Jump", "userPrincipalName": "dan@contoso.com", "mail": "dan@contoso.com" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{dan}");
    let dan = dan["id"].as_str().unwrap().to_string();
    let (status, body) = app
        .put(
            &app.admin,
            &format!("/v1.0/users/{dan}/manager/$ref"),
            json!({ "@odata.id": format!("https://graph.microsoft.com/v1.0/users/{megan}") }),
        )
        .await;
    assert!(status.is_success(), "{body}");
    let mut m = Visitor::new(&app);
    m.sign_in_dev(&megan).await;
    let form = m.get(&format!("/access/packages/{package}?policy={policy}")).await;
    assert!(form.body.contains("Request for") && form.body.contains(&format!("value=\"{dan}\"")), "{}", form.body);
    let csrf = form.csrf();
    let end = (app.now() + chrono::Duration::days(20)).format("%Y-%m-%d").to_string();
    let done = m
        .post(
            &format!("/access/packages/{package}"),
            &[("csrf", &csrf), ("policy", &policy), ("for", &dan), ("end", &end), ("justification", "Dan covers EMEA")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let request = done.location().trim_start_matches("/access/requests/").split('?').next().unwrap().to_string();
    let (_, r) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentRequests/{request}?$expand=requestor")).await;
    assert_eq!(r["requestType"], "userAdd", "{r}");
    assert!(r["schedule"]["expiration"]["endDateTime"].as_str().unwrap_or("").starts_with(&end), "{r}");
    // Someone who is not a report is refused.
    let irene = people["irene"].clone();
    let refused =
        m.post(&format!("/access/packages/{package}"), &[("csrf", &csrf), ("policy", &policy), ("for", &irene)]).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);

    // Administrators see every request and the audit log; requestors do not.
    let mut i = Visitor::new(&app);
    i.sign_in_dev(&irene).await;
    let page = i.get("/admin/requests").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("userExtend") && page.body.contains("Dan Jump"), "{}", page.body);
    let page = i.get("/admin/audit").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("<time"), "{}", page.body);
    assert_eq!(a.get("/admin/audit").await.status, StatusCode::FORBIDDEN);
    assert_eq!(a.get("/admin/requests").await.status, StatusCode::FORBIDDEN);
    // The time-zone script is served from the binary.
    let js = m.get("/portal/static/portal.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.body.contains("Intl.DateTimeFormat"));
}

/// The administration's list pages with many packages and assignments: keyset pages stay
/// as cheap deep in the list as on its first page. The size comes from
/// GRANTRY_PORTAL_LIST_N (default 300 so the suite stays quick); BENCHMARKS.md has the
/// command that measures with 10,000 and prints the latencies.
#[tokio::test]
async fn administration_list_pages_stay_fast_with_many_packages_and_assignments() {
    use grantry_domain::model::{AccessPackage, Assignment};
    let n: usize = std::env::var("GRANTRY_PORTAL_LIST_N").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let (app, people) = demo_app().await;
    let (package, _, _) = demo_package(&app).await;
    let (_, policies) =
        app.get(&app.admin, &format!("/v1.0/{EM}/assignmentPolicies?$filter=accessPackage/id eq '{package}'")).await;
    let policy = policies["value"][0]["id"].as_str().unwrap().to_string();
    let first = admin_add(&app, &package, &policy, &people["alex"]).await;
    // N packages in the demo catalog, each with one assignment like Alex's, written in bulk.
    let started = std::time::Instant::now();
    let (p, f) = (package.clone(), first.clone());
    app.state()
        .app
        .store
        .write(move |c| {
            let template: AccessPackage = grantry_store::repo::get(c, &p)?.expect("the demo package");
            let assignment: Assignment = grantry_store::repo::get(c, &f)?.expect("Alex's assignment");
            for i in 0..n {
                let mut pk = template.clone();
                pk.id = grantry_domain::ids::new_id();
                pk.display_name = format!("Package {i:05}");
                grantry_store::repo::insert(c, &pk)?;
                let mut a = assignment.clone();
                a.id = grantry_domain::ids::new_id();
                a.access_package_id = pk.id.clone();
                grantry_store::repo::insert(c, &a)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    eprintln!("seeded {n} packages and {n} assignments in {:?}", started.elapsed());
    let mut irene = Visitor::new(&app);
    irene.sign_in_dev(&people["irene"]).await;
    let mut report = Vec::new();
    for (name, first_path) in [
        ("assignments", "/admin/assignments"),
        ("requests", "/admin/requests"),
        ("catalogs", "/admin"),
        ("audit", "/admin/audit"),
    ] {
        // Walk up to ten pages: the first and the deepest are timed alike.
        let mut path = first_path.to_string();
        let mut times = Vec::new();
        for _ in 0..10 {
            let t = std::time::Instant::now();
            let page = irene.get(&path).await;
            times.push(t.elapsed());
            assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
            let Some(at) = page.body.find(&format!("href=\"{first_path}?after=")) else { break };
            let rest = &page.body[at + 6..];
            path = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
        }
        times.sort();
        let (median, worst) = (times[times.len() / 2], *times.last().unwrap());
        report.push(format!("{name}: {} pages, median {median:?}, slowest {worst:?}", times.len()));
        assert!(worst < std::time::Duration::from_secs(5), "{name} took {worst:?}");
    }
    eprintln!("portal list pages with {n} packages and assignments: {}", report.join("; "));
}

/// The id of the policy named `name`.
async fn policy_named(app: &TestApp, name: &str) -> Option<serde_json::Value> {
    let (_, policies) =
        app.get(&app.admin, &format!("/v1.0/{EM}/assignmentPolicies?$filter=displayName eq '{name}'")).await;
    policies["value"].as_array().and_then(|v| v.first().cloned())
}

#[tokio::test]
async fn administrators_edit_and_delete_policies_in_the_policy_form() {
    let (app, people) = demo_app().await;
    let (package, _, _) = demo_package(&app).await;
    let demo_policy = policy_named(&app, "Members ask, Megan approves, 30 days").await.expect("the demo policy");
    let policy = demo_policy["id"].as_str().unwrap().to_string();
    let mut irene = Visitor::new(&app);
    irene.sign_in_dev(&people["irene"]).await;
    let page = irene.get(&format!("/admin/packages/{package}")).await;
    assert!(page.body.contains(&format!("href=\"/admin/packages/{package}/policies/{policy}\"")), "{}", page.body);

    // The form opens filled with the policy.
    let page = irene.get(&format!("/admin/packages/{package}/policies/{policy}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("value=\"Members ask, Megan approves, 30 days\""), "{}", page.body);
    assert!(page.body.contains(&format!("<option value=\"user:{}\" selected", people["megan"])), "{}", page.body);
    assert!(page.body.contains("value=\"30\""), "the expiration's days: {}", page.body);
    assert!(page.body.contains("Save policy"), "{}", page.body);
    let csrf = page.csrf();
    // A refusal shows next to its field and changes nothing.
    let megan = format!("user:{}", people["megan"]);
    let edit = format!("/admin/packages/{package}/policies/{policy}");
    let page = irene
        .post(
            &edit,
            &[
                ("csrf", &csrf),
                ("displayName", "Members ask, Megan approves, 60 days"),
                ("allowedTargetScope", "allMemberUsers"),
                ("selfAdd", "on"),
                ("stage1Approver", &megan),
                ("stage1Days", "0"),
                ("expiration", "afterDuration"),
                ("expirationDays", "60"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("id=\"stage1Days_error\""), "{}", page.body);
    assert!(page.body.contains(&format!("action=\"{edit}\"")), "still the edit form: {}", page.body);
    assert!(policy_named(&app, "Members ask, Megan approves, 60 days").await.is_none(), "nothing was written");
    // Saved: the API serves the policy changed, under the same id.
    let page = irene
        .post(
            &edit,
            &[
                ("csrf", &csrf),
                ("displayName", "Members ask, Megan approves, 60 days"),
                ("allowedTargetScope", "allMemberUsers"),
                ("selfAdd", "on"),
                ("selfRemove", "on"),
                ("justificationRequired", "on"),
                ("stage1Approver", &megan),
                ("stage1Days", "7"),
                ("q1Text", "Which region?"),
                ("q1Kind", "choice"),
                ("q1Choices", "emea\namer"),
                ("q1Required", "on"),
                ("expiration", "afterDuration"),
                ("expirationDays", "60"),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert!(page.location().contains("changed=policy-saved"), "{}", page.location());
    let (_, p) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentPolicies/{policy}")).await;
    assert_eq!(p["displayName"], "Members ask, Megan approves, 60 days", "{p}");
    assert_eq!(p["expiration"]["duration"], "P60D", "{p}");
    assert_eq!(p["requestApprovalSettings"]["stages"][0]["durationBeforeAutomaticDenial"], "P7D", "{p}");
    assert_eq!(p["requestorSettings"]["enableTargetsToSelfRemoveAccess"], true, "{p}");
    assert_eq!(p["questions"].as_array().map(Vec::len), Some(1), "{p}");
    let page = irene.get(&page.location()).await;
    assert!(page.body.contains("The policy was saved."), "{}", page.body);

    // Deleting is refused with the API's message while an assignment was made through it.
    let assignment = admin_add(&app, &package, &policy, &people["alex"]).await;
    let page = irene.post(&format!("{edit}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{}", page.body);
    assert!(page.body.contains("active assignment(s)"), "{}", page.body);
    assert!(
        page.body.contains(&format!("id=\"policy-{policy}_error\"")),
        "the message is at the policy: {}",
        page.body
    );
    let (status, _) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentPolicies/{policy}")).await;
    assert_eq!(status, StatusCode::OK);
    // Once the access is removed, the policy goes.
    let (status, body) = app
        .post(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentRequests"),
            json!({"requestType": "adminRemove", "assignment": {"id": assignment}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    app.drain().await;
    let page = irene.post(&format!("{edit}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let (status, _) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentPolicies/{policy}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(irene.get(&page.location()).await.body.contains("The policy was deleted."));

    // A requestor can neither open nor change nor delete a policy; a foreign form is refused.
    let other = reviewed_policy(&app, &package).await;
    let mut alex = Visitor::new(&app);
    alex.sign_in_dev(&people["alex"]).await;
    let alex_csrf = alex.get("/access").await.csrf();
    let other_path = format!("/admin/packages/{package}/policies/{other}");
    assert_eq!(alex.get(&other_path).await.status, StatusCode::FORBIDDEN);
    let page = alex.post(&format!("{other_path}/delete"), &[("csrf", &alex_csrf)]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    let page = alex
        .post(
            &other_path,
            &[("csrf", &alex_csrf), ("displayName", "Mine now"), ("allowedTargetScope", "allMemberUsers")],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    let page = irene.post(&format!("{other_path}/delete"), &[("csrf", "forged")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    let (status, _) = app.get(&app.admin, &format!("/v1.0/{EM}/assignmentPolicies/{other}")).await;
    assert_eq!(status, StatusCode::OK, "still there");
    // A policy of another package is not found under this one.
    let page = irene.get(&format!("/admin/packages/{}/policies/{other}", "00000000-0000-0000-0000-000000000001")).await;
    assert!(matches!(page.status, StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST), "{}", page.status);
}

#[tokio::test]
async fn pickers_search_the_directory_on_the_server_with_and_without_scripts() {
    let (app, people) = demo_app().await;
    let (package, _, _) = demo_package(&app).await;
    // More people than a picker lists.
    for n in 0..60 {
        app.create_user(&format!("filler{n:02}")).await;
    }
    let mut irene = Visitor::new(&app);
    irene.sign_in_dev(&people["irene"]).await;
    let megan = format!("user:{}", people["megan"]);
    let alex = format!("user:{}", people["alex"]);

    // Without scripts: the search box is a GET form; the pickers list what matches.
    let page = irene.get(&format!("/admin/packages/{package}/policies/new")).await;
    assert!(page.body.contains("name=\"find\""), "{}", page.body);
    assert!(page.body.contains("filler00") && !page.body.contains("filler59"), "the first 50 only: {}", page.body);
    let page = irene.get(&format!("/admin/packages/{package}/policies/new?find=megan")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(&format!("<option value=\"{megan}\"")), "{}", page.body);
    assert!(!page.body.contains(&format!("<option value=\"{alex}\"")), "{}", page.body);
    assert!(!page.body.contains("filler"), "{}", page.body);

    // With scripts: the same search as JSON.
    let r = irene.get("/admin/pickers/users?search=MEG").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let found: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let values: Vec<&str> = found["value"].as_array().unwrap().iter().filter_map(|c| c["value"].as_str()).collect();
    assert_eq!(values, [megan.as_str()], "{found}");
    assert!(found["value"][0]["label"].as_str().unwrap().contains("megan@contoso.com"), "{found}");
    let r = irene.get("/admin/pickers/users?search=filler").await;
    let found: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(found["value"].as_array().unwrap().len(), 50, "at most 50: {found}");
    let r = irene.get("/admin/pickers/groups?search=sales").await;
    let found: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(found["value"].as_array().unwrap().iter().any(|c| c["label"] == "Sales reports"), "{found}");
    let r = irene.get("/admin/pickers/resources?search=sales").await;
    let found: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(found["value"][0]["value"].as_str().unwrap().starts_with("AadGroup:"), "{found}");
    // A quote in the search is a literal, not OData.
    let r = irene.get("/admin/pickers/users?search=o%27brien").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(irene.get("/admin/pickers/planets?search=x").await.status, StatusCode::NOT_FOUND);
    // The catalog's resource picker narrows the same way.
    let (_, catalogs) = app.get(&app.admin, &format!("/v1.0/{EM}/catalogs?$filter=displayName eq 'Sales'")).await;
    let catalog = catalogs["value"][0]["id"].as_str().unwrap().to_string();
    app.create_group("Finance ledgers").await;
    let page = irene.get(&format!("/admin/catalogs/{catalog}?find=finance")).await;
    assert!(page.body.contains("Group: Finance ledgers"), "{}", page.body);
    let page = irene.get(&format!("/admin/catalogs/{catalog}?find=nothing-like-it")).await;
    assert!(!page.body.contains("Group: Finance ledgers"), "{}", page.body);

    // Without a session there is no search.
    let mut stranger = Visitor::new(&app);
    let r = stranger.get("/admin/pickers/users?search=meg").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/sign-in"), "{}", r.location());
}
