//! Notification mail end to end, against a real SMTP server: aiosmtpd (PyPI), run by
//! `tests/mail/smtp_sink.py` as a child process on a loopback port, which prints each mail
//! it receives as a JSON line. Each notification arrives once with the right recipients,
//! subject and portal link; an SMTP server that is down gets its mails once it is back,
//! none lost and none twice; a server killed with SIGKILL before sending sends after its
//! restart, once; many mails to one person become a digest; a policy can turn assignment
//! mails off. Without SMTP, mails are kept and administrators read them at /_grantry/mail.
//!
//! scripts/test installs aiosmtpd into a cached virtual environment and names its python
//! in GRANTRY_MAIL_PYTHON. Without it these tests say so and pass, unless
//! GRANTRY_REQUIRE_MAIL_TESTS is set (scripts/test sets it, so CI never skips them).

use crate::helpers::*;
use crate::pyserver::{Component, free_port};
use grantry_domain::enums::{AllowedTargetScope, ApproverInformationVisibility, ExpirationType};
use grantry_domain::model::{ApprovalStage, Expiration, Policy, SubjectSet};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest a mail may take to arrive.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
const BASE: &str = "https://grantry.example.com";
const FROM: &str = "Grantry <grantry@example.com>";

/// aiosmtpd, run by `tests/mail/smtp_sink.py`.
const AIOSMTPD: Component = Component {
    name: "aiosmtpd",
    module: "aiosmtpd",
    python_env: "GRANTRY_MAIL_PYTHON",
    venv: "grantry-mail-venv",
    require_env: "GRANTRY_REQUIRE_MAIL_TESTS",
    needed_by: "the mail tests",
    quiet: false,
};

/// The SMTP server of one test.
pub struct SmtpSink {
    port: u16,
    child: Option<tokio::process::Child>,
    mails: Arc<Mutex<Vec<Value>>>,
}

impl SmtpSink {
    /// A port for the server, not yet listening; `None` (after saying why) when aiosmtpd is
    /// missing and the tests are not required.
    pub fn reserve() -> Option<SmtpSink> {
        AIOSMTPD.available().then(|| SmtpSink {
            port: free_port(),
            child: None,
            mails: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// A running server.
    pub async fn start() -> Option<SmtpSink> {
        let mut sink = SmtpSink::reserve()?;
        sink.up().await;
        Some(sink)
    }

    /// Starts the server on its port (again).
    pub async fn up(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/mail/smtp_sink.py");
        let (child, mut lines) = AIOSMTPD.spawn([script.to_string(), self.port.to_string()], "ready").await;
        let mails = self.mails.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    mails.lock().unwrap().push(v);
                }
            }
        });
        self.child = Some(child);
    }

    /// `--smtp-url` for this server (plain SMTP on loopback).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    pub fn mail_config(&self) -> grantry::config::MailConfig {
        grantry::config::MailConfig::resolve(Some(self.url()), Some(FROM.into()), None).expect("mail settings")
    }

    pub fn mails(&self) -> Vec<Value> {
        self.mails.lock().unwrap().clone()
    }

    /// The mails whose envelope recipients include `address`.
    pub fn to(&self, address: &str) -> Vec<Value> {
        self.mails()
            .into_iter()
            .filter(|m| m["rcptTos"].as_array().is_some_and(|r| r.iter().any(|a| a == address)))
            .collect()
    }

    /// Waits until `n` mails arrived (true), or the time is up (false).
    pub async fn wait_for(&self, n: usize, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < deadline {
            if self.mails().len() >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.mails().len() >= n
    }
}

fn user_set(id: &str) -> SubjectSet {
    SubjectSet::SingleUser { user_id: Some(id.to_string()), description: None }
}

fn stage(approver: &str, escalate_to: Option<&str>) -> ApprovalStage {
    ApprovalStage {
        duration_before_automatic_denial: Some(chrono::Duration::days(14)),
        duration_before_escalation: escalate_to.map(|_| chrono::Duration::days(2)),
        is_approver_justification_required: false,
        is_escalation_enabled: escalate_to.is_some(),
        primary_approvers: vec![user_set(approver)],
        fallback_primary_approvers: vec![],
        escalation_approvers: escalate_to.map(user_set).into_iter().collect(),
        fallback_escalation_approvers: vec![],
        approver_information_visibility: ApproverInformationVisibility::Default,
        is_dynamic: false,
    }
}

/// A self-service policy of the fixture's package, shaped by `edit`.
async fn self_service(app: &TestApp, f: &Fixture, edit: impl FnOnce(&mut Policy) + Send + 'static) -> String {
    app.seed_policy(f, AllowedTargetScope::AllMemberUsers, move |p| {
        p.requestor_settings.enable_targets_to_self_add_access = true;
        edit(p);
    })
    .await
}

/// A self-service policy that bob approves (carol after two days, when `escalate`).
async fn approved_by(app: &TestApp, f: &Fixture, approver: &str, escalate_to: Option<&str>) -> String {
    let stages = vec![stage(approver, escalate_to)];
    self_service(app, f, move |p| {
        p.approval.is_approval_required_for_add = true;
        p.approval.stages = stages;
    })
    .await
}

fn reqs(rest: &str) -> String {
    format!("/v1.0/{EM}/assignmentRequests{rest}")
}

/// `user` asks for the package through `policy`; returns the request id once processed
/// and its mails sent.
async fn request_access(app: &TestApp, f: &Fixture, user: &str, policy: &str) -> String {
    let token = app.user_token(user, SUBJECT_SCOPES);
    let (status, r) = app
        .post(
            &token,
            &reqs(""),
            json!({"requestType": "userAdd", "assignment": {"accessPackageId": f.package_id, "assignmentPolicyId": policy}, "justification": "<b>audit</b> & \"review\""}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    settle(app).await;
    r["id"].as_str().unwrap().to_string()
}

async fn settle(app: &TestApp) {
    app.drain().await;
    app.drain_outbox().await;
}

async fn advance(app: &TestApp, duration: &str) {
    let (status, body) = app.post(&app.admin, "/_grantry/clock/advance", json!({ "duration": duration })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    settle(app).await;
}

async fn decide(app: &TestApp, user: &str, request_id: &str, approve: bool) {
    let path = format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{request_id}");
    let (_, a) = app.get(&app.admin, &path).await;
    let stage = a["stages"].as_array().unwrap().iter().find(|s| s["status"] == "InProgress").expect("a stage waits");
    let sid = stage["id"].as_str().unwrap();
    let token = app.user_token(user, SUBJECT_SCOPES);
    let result = if approve { "Approve" } else { "Deny" };
    let (status, body) = app
        .patch(&token, &format!("{path}/stages/{sid}"), json!({"reviewResult": result, "justification": "decided"}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    settle(app).await;
}

/// The mails administrators see for `address` (newest first).
async fn kept(app: &TestApp, address: &str) -> Vec<Value> {
    let (status, body) = app.get(&app.admin, &format!("/_grantry/mail?to={address}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"].as_array().unwrap().clone()
}

fn subjects(mails: &[Value]) -> Vec<String> {
    mails.iter().map(|m| m["subject"].as_str().unwrap_or_default().to_string()).collect()
}

/// How many mails went out for these notifications: each sent alone, or one per digest.
fn sends(listed: &[Value]) -> usize {
    let sent: Vec<&Value> = listed.iter().filter(|m| m["status"] == "sent").collect();
    let alone = sent.iter().filter(|m| m["digestId"].is_null()).count();
    let digests: std::collections::BTreeSet<&str> = sent.iter().filter_map(|m| m["digestId"].as_str()).collect();
    alone + digests.len()
}

fn addr(name: &str) -> String {
    format!("{name}@contoso.com")
}

#[tokio::test]
async fn each_notification_reaches_the_people_who_must_act_once_over_smtp() {
    let Some(sink) = SmtpSink::start().await else { return };
    let app = TestApp::spawn_with(Options {
        mail: sink.mail_config(),
        public_base_url: Some(BASE.into()),
        ..Options::default()
    })
    .await;
    let f = app.seed_package_with_group().await;
    let (alice, bob, carol, dave, erin) = (
        app.create_user("alice").await,
        app.create_user("bob").await,
        app.create_user("carol").await,
        app.create_user("dave").await,
        app.create_user("erin").await,
    );
    let policy = approved_by(&app, &f, &bob, Some(&carol)).await;

    // A request waits for bob: he is told, with the request's facts and the approval link.
    let first = request_access(&app, &f, &alice, &policy).await;
    assert!(sink.wait_for(1, SMTP_TIMEOUT).await, "bob's mail never arrived");
    let to_bob = sink.to(&addr("bob"));
    assert_eq!(to_bob.len(), 1, "{to_bob:?}");
    let m = &to_bob[0];
    assert!(m["subject"].as_str().unwrap().starts_with("Action required: approve or deny alice's request for"), "{m}");
    assert_eq!(m["mailFrom"], "grantry@example.com");
    assert!(m["to"].as_str().unwrap().contains("bob@contoso.com"), "{m}");
    assert_eq!(
        m["messageId"],
        format!("<{}@grantry>", grantry_core::mail::mail_id(&format!("approval:{first}:stage0:pending"), &bob))
    );
    let link = format!("{BASE}/approvals/{first}");
    assert!(m["text"].as_str().unwrap().contains(&link), "{m}");
    assert!(m["html"].as_str().unwrap().contains(&format!("href=\"{link}\"")), "{m}");
    // What the requestor typed is escaped in the HTML part, kept as typed in the text.
    assert!(m["html"].as_str().unwrap().contains("&lt;b&gt;audit&lt;/b&gt; &amp; &quot;review&quot;"), "{m}");
    assert!(m["text"].as_str().unwrap().contains("<b>audit</b> & \"review\""), "{m}");

    // Two days pass: the request is forwarded to carol, the escalation approver.
    advance(&app, "P2DT1M").await;
    assert!(sink.wait_for(2, SMTP_TIMEOUT).await);
    let to_carol = sink.to(&addr("carol"));
    assert_eq!(to_carol.len(), 1, "{:?}", sink.mails());
    assert!(to_carol[0]["subject"].as_str().unwrap().contains("forwarded request"), "{}", to_carol[0]);
    assert!(to_carol[0]["text"].as_str().unwrap().contains(&link));

    // Carol approves: alice has access, and is told so with a link to her access.
    decide(&app, &carol, &first, true).await;
    assert!(sink.wait_for(3, SMTP_TIMEOUT).await);
    let to_alice = sink.to(&addr("alice"));
    assert_eq!(subjects(&to_alice).len(), 1, "{to_alice:?}");
    assert!(to_alice[0]["subject"].as_str().unwrap().starts_with("You now have access to"), "{}", to_alice[0]);
    assert!(to_alice[0]["text"].as_str().unwrap().contains(&format!("{BASE}/access/assignments")));

    // Bob denies dave's request: dave is told.
    let second = request_access(&app, &f, &dave, &policy).await;
    assert!(sink.wait_for(4, SMTP_TIMEOUT).await);
    decide(&app, &bob, &second, false).await;
    assert!(sink.wait_for(5, SMTP_TIMEOUT).await);
    let to_dave = sink.to(&addr("dave"));
    assert_eq!(to_dave.len(), 1, "{to_dave:?}");
    assert!(to_dave[0]["subject"].as_str().unwrap().starts_with("Request denied to"), "{}", to_dave[0]);
    assert!(to_dave[0]["text"].as_str().unwrap().contains(&format!("{BASE}/access/requests/{second}")));

    // An administrator cancels erin's request: erin is told; erin canceling her own is not.
    let third = request_access(&app, &f, &erin, &policy).await;
    assert!(sink.wait_for(6, SMTP_TIMEOUT).await);
    let (status, body) = app.post(&app.admin, &reqs(&format!("/{third}/cancel")), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    settle(&app).await;
    assert!(sink.wait_for(7, SMTP_TIMEOUT).await);
    let to_erin = sink.to(&addr("erin"));
    assert_eq!(to_erin.len(), 1, "{to_erin:?}");
    assert!(to_erin[0]["subject"].as_str().unwrap().contains("was canceled"), "{}", to_erin[0]);

    // Nothing more comes, however long the server runs; administrators see every mail sent.
    advance(&app, "P15D").await;
    let all = sink.mails();
    assert_eq!(all.len(), 8, "{all:?}");
    // One per request bob approves, and word that carol decided the escalated one.
    let to_bob = sink.to(&addr("bob"));
    assert_eq!(to_bob.len(), 4, "{to_bob:?}");
    assert!(
        to_bob.iter().any(|m| m["subject"].as_str().unwrap().starts_with("Request approved for alice to")),
        "{to_bob:?}"
    );
    let (status, listed) = app.get(&app.admin, "/_grantry/mail").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed = listed["value"].as_array().unwrap();
    assert_eq!(listed.len(), 8, "{listed:?}");
    assert!(listed.iter().all(|m| m["status"] == "sent"), "{listed:?}");
    let id = listed[0]["id"].as_str().unwrap();
    let (status, one) = app.get(&app.admin, &format!("/_grantry/mail/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert!(one["html"].as_str().unwrap().contains("<a href="), "{one}");
    // Only administrators read mail.
    let (status, _) = app.get(&app.user_token(&alice, SUBJECT_SCOPES), "/_grantry/mail").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn mails_owed_while_the_smtp_server_is_down_are_sent_once_when_it_is_back() {
    let Some(mut sink) = SmtpSink::reserve() else { return };
    let app = TestApp::spawn_with(Options { mail: sink.mail_config(), ..Options::default() }).await;
    let f = app.seed_package_with_group().await;
    let (alice, bob) = (app.create_user("alice").await, app.create_user("bob").await);
    let policy = approved_by(&app, &f, &bob, None).await;

    // The server is down: the request goes through all the same, and its mail waits.
    let id = request_access(&app, &f, &alice, &policy).await;
    let (status, r) = app.get(&app.admin, &reqs(&format!("/{id}"))).await;
    assert_eq!((status, r["state"].as_str()), (StatusCode::OK, Some("pendingApproval")), "{r}");
    let waiting = kept(&app, &addr("bob")).await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0]["status"], "pending", "{waiting:?}");
    assert!(waiting[0]["lastError"].as_str().is_some_and(|e| !e.is_empty()), "{waiting:?}");
    // Retried while down: still owed.
    advance(&app, "PT1M").await;
    assert_eq!(kept(&app, &addr("bob")).await[0]["status"], "pending");

    // Back up: past the next retry the mail goes out, once.
    sink.up().await;
    advance(&app, "PT10M").await;
    assert!(sink.wait_for(1, SMTP_TIMEOUT).await, "the mail never arrived");
    advance(&app, "P1D").await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0]["rcptTos"], json!([addr("bob")]));
    assert_eq!(kept(&app, &addr("bob")).await[0]["status"], "sent");
}

#[tokio::test]
async fn many_mails_to_one_person_are_rate_limited_into_a_digest() {
    let Some(sink) = SmtpSink::start().await else { return };
    let app = TestApp::spawn_with(Options {
        mail: sink.mail_config(),
        public_base_url: Some(BASE.into()),
        ..Options::default()
    })
    .await;
    let f = app.seed_package_with_group().await;
    let bob = app.create_user("bob").await;
    let policy = approved_by(&app, &f, &bob, None).await;
    // More requests than bob may get mails an hour.
    let n = grantry_core::mail::HOURLY_LIMIT as usize * 2 + 5;
    let mut requests = Vec::new();
    for i in 0..n {
        let user = app.create_user(&format!("user{i}")).await;
        let token = app.user_token(&user, SUBJECT_SCOPES);
        let (status, r) = app
            .post(
                &token,
                &reqs(""),
                json!({"requestType": "userAdd", "assignment": {"accessPackageId": f.package_id, "assignmentPolicyId": policy}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
        requests.push(r["id"].as_str().unwrap().to_string());
    }
    settle(&app).await;
    let limit = grantry_core::mail::HOURLY_LIMIT as usize;
    // Within the hour bob gets at most the limit (some may already be digests); the rest wait.
    let first_hour = sends(&kept(&app, &addr("bob")).await);
    assert!(first_hour <= limit, "{first_hour} mails in the first hour");
    assert!(sink.wait_for(first_hour, SMTP_TIMEOUT).await);
    assert_eq!(sink.to(&addr("bob")).len(), first_hour);
    // An hour later, everything still owed goes out as one digest.
    advance(&app, "PT1H1M").await;
    advance(&app, "PT2H").await;
    let listed = kept(&app, &addr("bob")).await;
    assert!(listed.iter().all(|m| m["status"] == "sent"), "{listed:?}");
    let total = sends(&listed);
    assert!(total <= first_hour + 1, "{total} mails after the first hour's {first_hour}");
    assert!(sink.wait_for(total, SMTP_TIMEOUT).await);
    let to_bob = sink.to(&addr("bob"));
    assert_eq!(to_bob.len(), total);
    assert!(to_bob.len() <= limit + 1, "{} mails for {n} requests", to_bob.len());
    assert!(to_bob.len() < n);
    let digest = to_bob.iter().find(|m| m["subject"].as_str().unwrap().contains("notifications from Grantry"));
    let digest = digest.unwrap_or_else(|| panic!("no digest: {:?}", subjects(&to_bob)));
    assert!(digest["messageId"].as_str().unwrap().starts_with("<digest-"), "{digest}");
    // Every request is in exactly one mail, with its link.
    for r in &requests {
        let link = format!("{BASE}/approvals/{r}");
        let holding = to_bob.iter().filter(|m| m["text"].as_str().unwrap().contains(&link)).count();
        assert_eq!(holding, 1, "request {r} is in {holding} mails");
    }
    // Administrators see each notification, the digested ones with their digest.
    let listed = kept(&app, &addr("bob")).await;
    assert_eq!(listed.len(), n);
    assert!(listed.iter().all(|m| m["status"] == "sent"), "{listed:?}");
    assert!(listed.iter().filter(|m| !m["digestId"].is_null()).count() >= n - limit);
}

#[tokio::test]
async fn without_smtp_mails_are_kept_and_a_policy_can_turn_assignment_mails_off() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let (alice, bob, frank) =
        (app.create_user("alice").await, app.create_user("bob").await, app.create_user("frank").await);
    // A user without a mail address is skipped, and that is recorded.
    let (status, nomail) = app
        .post(&app.admin, "/v1.0/users", json!({"displayName": "Nomail", "userPrincipalName": "nomail@contoso.com"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{nomail}");
    let nomail = nomail["id"].as_str().unwrap().to_string();

    // Assignment mails off: no "you now have access", but approvers are still told.
    let quiet = approved_by(&app, &f, &bob, None).await;
    let quiet_id = quiet.clone();
    app.seed(move |c| {
        let mut p: Policy = grantry_store::repo::get(c, &quiet_id)?.unwrap();
        p.notification_settings = Some(json!({"isAssignmentNotificationDisabled": true}));
        grantry_store::repo::update(c, &p).map(|_| ())
    })
    .await;
    let r = request_access(&app, &f, &alice, &quiet).await;
    assert_eq!(subjects(&kept(&app, &addr("bob")).await).len(), 1);
    decide(&app, &bob, &r, true).await;
    assert!(kept(&app, &addr("alice")).await.is_empty(), "assignment mails are off for this policy");

    // The same with the switch on its default: frank is told, and the mail is kept.
    let loud = self_service(&app, &f, |_| {}).await;
    request_access(&app, &f, &frank, &loud).await;
    let to_frank = kept(&app, &addr("frank")).await;
    assert_eq!(to_frank.len(), 1, "{to_frank:?}");
    assert_eq!(to_frank[0]["status"], "kept");
    assert!(to_frank[0]["subject"].as_str().unwrap().starts_with("You now have access to"), "{to_frank:?}");

    request_access(&app, &f, &nomail, &loud).await;
    let (_, all) = app.get(&app.admin, "/_grantry/mail").await;
    let skipped: Vec<&Value> =
        all["value"].as_array().unwrap().iter().filter(|m| m["recipientId"] == nomail.as_str()).collect();
    assert_eq!(skipped.len(), 1, "{all}");
    assert_eq!(skipped[0]["status"], "skipped");
    assert!(skipped[0]["lastError"].as_str().unwrap().contains("no mail address"), "{}", skipped[0]);
}

#[tokio::test]
async fn assignees_are_reminded_fourteen_days_and_one_day_before_access_ends() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let (alice, gina) = (app.create_user("alice").await, app.create_user("gina").await);
    let thirty_days = |p: &mut Policy| {
        p.expiration = Expiration {
            kind: ExpirationType::AfterDuration,
            end_date_time: None,
            duration: Some(chrono::Duration::days(30)),
        };
    };
    let extendable = self_service(&app, &f, move |p| {
        thirty_days(p);
        p.requestor_settings.enable_targets_to_self_update_access = true;
    })
    .await;
    let fixed = self_service(&app, &f, thirty_days).await;
    request_access(&app, &f, &alice, &extendable).await;
    request_access(&app, &f, &gina, &fixed).await;
    assert_eq!(kept(&app, &addr("alice")).await.len(), 1, "the delivered mail");

    advance(&app, "P16DT1H").await;
    let to_alice = kept(&app, &addr("alice")).await;
    assert_eq!(to_alice.len(), 2, "{:?}", subjects(&to_alice));
    assert!(to_alice[0]["subject"].as_str().unwrap().starts_with("Extend access for"), "{:?}", subjects(&to_alice));
    let (_, one) = app.get(&app.admin, &format!("/_grantry/mail/{}", to_alice[0]["id"].as_str().unwrap())).await;
    assert!(one["text"].as_str().unwrap().contains("14 days"), "{one}");
    assert!(one["text"].as_str().unwrap().contains("/access/assignments"), "{one}");
    let to_gina = kept(&app, &addr("gina")).await;
    assert!(to_gina[0]["subject"].as_str().unwrap().contains("ends on"), "no extend link: {:?}", subjects(&to_gina));

    advance(&app, "P13D").await;
    let to_alice = kept(&app, &addr("alice")).await;
    assert_eq!(to_alice.len(), 3, "{:?}", subjects(&to_alice));
    let (_, one) = app.get(&app.admin, &format!("/_grantry/mail/{}", to_alice[0]["id"].as_str().unwrap())).await;
    assert!(one["text"].as_str().unwrap().contains("(1 day from now)"), "{one}");
    // At the end, alice is told her access has ended; then nothing more.
    advance(&app, "P3D").await;
    let to_alice = kept(&app, &addr("alice")).await;
    assert_eq!(to_alice.len(), 4, "{:?}", subjects(&to_alice));
    assert!(to_alice[0]["subject"].as_str().unwrap().starts_with("Access has ended for"), "{:?}", subjects(&to_alice));
    let (_, one) = app.get(&app.admin, &format!("/_grantry/mail/{}", to_alice[0]["id"].as_str().unwrap())).await;
    assert!(one["text"].as_str().unwrap().contains("end of its schedule"), "{one}");
    assert!(one["text"].as_str().unwrap().contains(&format!("/access/packages/{}", f.package_id)), "{one}");
    advance(&app, "P30D").await;
    assert_eq!(kept(&app, &addr("alice")).await.len(), 4);
}

#[tokio::test]
async fn approvers_are_reminded_and_told_when_another_approver_decided_or_the_request_expired() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let (alice, dave, bob, cathy) = (
        app.create_user("alice").await,
        app.create_user("dave").await,
        app.create_user("bob").await,
        app.create_user("cathy").await,
    );
    let mut two = stage(&bob, None);
    two.primary_approvers.push(user_set(&cathy));
    let policy = self_service(&app, &f, move |p| {
        p.approval.is_approval_required_for_add = true;
        p.approval.stages = vec![two];
    })
    .await;
    let first = request_access(&app, &f, &alice, &policy).await;
    let second = request_access(&app, &f, &dave, &policy).await;
    for who in ["bob", "cathy"] {
        assert_eq!(kept(&app, &addr(who)).await.len(), 2, "both requests wait for {who}");
    }

    // Halfway to the 14-day deadline, both approvers are reminded of both requests, once.
    advance(&app, "P7DT1H").await;
    for who in ["bob", "cathy"] {
        let mails = kept(&app, &addr(who)).await;
        let reminders: Vec<&Value> =
            mails.iter().filter(|m| m["subject"].as_str().unwrap().starts_with("Reminder: approve or deny")).collect();
        assert_eq!(reminders.len(), 2, "{:?}", subjects(&mails));
        assert!(reminders.iter().all(|m| m["link"].as_str().unwrap().contains("/approvals/")), "{reminders:?}");
    }
    advance(&app, "P1D").await;
    assert_eq!(kept(&app, &addr("bob")).await.len(), 4, "one reminder per request and stage");

    // Bob approves alice's request: cathy is told it no longer waits for her; bob is not.
    decide(&app, &bob, &first, true).await;
    let to_cathy = kept(&app, &addr("cathy")).await;
    assert_eq!(to_cathy.len(), 5, "{:?}", subjects(&to_cathy));
    assert!(
        to_cathy[0]["subject"].as_str().unwrap().starts_with("Request approved for alice to"),
        "{:?}",
        subjects(&to_cathy)
    );
    assert!(to_cathy[0]["link"].as_str().unwrap().ends_with(&format!("/approvals/{first}")), "{}", to_cathy[0]);
    let (_, one) = app.get(&app.admin, &format!("/_grantry/mail/{}", to_cathy[0]["id"].as_str().unwrap())).await;
    assert!(one["text"].as_str().unwrap().contains("bob approved"), "{one}");
    assert_eq!(kept(&app, &addr("bob")).await.len(), 4);

    // Nobody decides dave's: at the deadline both approvers learn it expired, and dave too.
    advance(&app, "P7D").await;
    for who in ["bob", "cathy"] {
        let mails = kept(&app, &addr(who)).await;
        assert!(mails[0]["subject"].as_str().unwrap().starts_with("Request has expired for"), "{:?}", subjects(&mails));
        assert!(mails[0]["link"].as_str().unwrap().ends_with(&format!("/approvals/{second}")), "{}", mails[0]);
    }
    assert_eq!(kept(&app, &addr("bob")).await.len(), 5);
    assert_eq!(kept(&app, &addr("cathy")).await.len(), 6);
    let to_dave = kept(&app, &addr("dave")).await;
    assert!(
        to_dave[0]["subject"].as_str().unwrap().starts_with("Your request has expired for"),
        "{:?}",
        subjects(&to_dave)
    );
}

/// The real binary, killed with SIGKILL while a mail is owed (the SMTP server is down): after
/// the restart the mail is sent, once, with the id it was written with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_owed_at_sigkill_is_sent_once_by_the_restarted_binary() {
    use crate::crash::{Server, bin};
    use std::ffi::{OsStr, OsString};
    let Some(mut sink) = SmtpSink::reserve() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let pg = if on_postgres() { PgTestDatabase::create() } else { None };
    let db_args: Vec<OsString> = match &pg {
        Some(p) => vec!["--database".into(), p.url.clone().into(), "--key-dir".into(), dir.path().join("keys").into()],
        None => vec!["--data-dir".into(), dir.path().into()],
    };
    let mut serve_args = db_args.clone();
    serve_args.extend([
        "--smtp-url".into(),
        sink.url().into(),
        "--mail-from".into(),
        FROM.into(),
        "--public-base-url".into(),
        BASE.into(),
    ]);
    let serve_args: Vec<&OsStr> = serve_args.iter().map(OsString::as_os_str).collect();
    let mut server = Server::start_with(&serve_args);
    let token = |args: &[&str]| {
        let out = std::process::Command::new(bin())
            .arg("token")
            .args(&db_args)
            .args(args)
            .args(["--expires-in", "1h"])
            .env("GRANTRY_LOG", "error")
            .output()
            .expect("grantry token runs");
        assert!(out.status.success(), "grantry token: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let admin = token(&["--app", "mail-crash", "--roles", "EntitlementManagement.ReadWrite.All,User.ReadWrite.All"]);
    let http = reqwest::Client::new();
    let post = |base: String, token: String, path: String, body: Value| {
        let http = http.clone();
        async move {
            let resp = http
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .header("Content-Type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("the server answers");
            let status = resp.status();
            let v: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap_or(Value::Null);
            assert!(status.is_success(), "{path}: {status} {v}");
            v
        }
    };
    let base = server.base.clone();
    let id = |v: Value| v["id"].as_str().unwrap().to_string();
    let user = |name: &str| json!({"displayName": name, "userPrincipalName": format!("{name}@contoso.com"), "mail": format!("{name}@contoso.com")});
    let alice = id(post(base.clone(), admin.clone(), "/v1.0/users".into(), user("alice")).await);
    let bob = id(post(base.clone(), admin.clone(), "/v1.0/users".into(), user("bob")).await);
    let catalog =
        id(post(base.clone(), admin.clone(), format!("/v1.0/{EM}/catalogs"), json!({"displayName": "Crash"})).await);
    let package = id(post(
        base.clone(),
        admin.clone(),
        format!("/v1.0/{EM}/accessPackages"),
        json!({"displayName": "Crash", "catalog": {"id": catalog}}),
    )
    .await);
    let policy = id(post(
        base.clone(),
        admin.clone(),
        format!("/v1.0/{EM}/assignmentPolicies"),
        json!({
            "displayName": "Approved by bob",
            "allowedTargetScope": "allMemberUsers",
            "expiration": {"type": "noExpiration"},
            "accessPackage": {"id": package},
            "requestorSettings": {"enableTargetsToSelfAddAccess": true},
            "requestApprovalSettings": {
                "isApprovalRequiredForAdd": true,
                "stages": [{
                    "durationBeforeAutomaticDenial": "P14D",
                    "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": bob}]
                }]
            }
        }),
    )
    .await);

    // The SMTP server is down: the approver's mail, written with the request, stays owed.
    let alice_token = token(&["--user", &alice, "--scopes", "EntitlementMgmt-SubjectAccess.ReadWrite"]);
    let request = id(post(
        base.clone(),
        alice_token,
        format!("/v1.0/{EM}/assignmentRequests"),
        json!({"requestType": "userAdd", "assignment": {"accessPackageId": package, "assignmentPolicyId": policy}}),
    )
    .await);
    server.kill();

    // Back up: the SMTP server, then Grantry on the same database.
    sink.up().await;
    server = Server::start_with(&serve_args);
    let base = server.base.clone();
    // Past the first retry's backoff.
    post(base.clone(), admin.clone(), "/_grantry/clock/advance".into(), json!({"duration": "PT1M"})).await;
    assert!(sink.wait_for(1, SMTP_TIMEOUT).await, "the mail never arrived");
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "sent once: {mails:?}");
    assert_eq!(mails[0]["rcptTos"], json!(["bob@contoso.com"]));
    let expected = grantry_core::mail::mail_id(&format!("approval:{request}:stage0:pending"), &bob);
    assert_eq!(mails[0]["messageId"], format!("<{expected}@grantry>"), "with the id it was written with");
    assert!(mails[0]["text"].as_str().unwrap().contains(&format!("{BASE}/approvals/{request}")));
    // Recorded as sent (the SMTP server has it a moment before Grantry records it).
    let deadline = tokio::time::Instant::now() + SMTP_TIMEOUT;
    loop {
        let listed: Value = http
            .get(format!("{base}/_grantry/mail"))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("JSON");
        if listed["value"][0]["status"] == "sent" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never recorded as sent: {listed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing more is sent, however long the server runs.
    post(base.clone(), admin.clone(), "/_grantry/clock/advance".into(), json!({"duration": "P3D"})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.mails().len(), 1, "{:?}", sink.mails());
    server.kill();
}

#[tokio::test]
async fn reviewers_are_told_when_a_review_starts_and_reminded_at_its_midpoint() {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let (alice, hank) = (app.create_user("alice").await, app.create_user("hank").await);
    let start = app.now() + chrono::Duration::days(1);
    let review = json!({
        "isEnabled": true,
        "expirationBehavior": "keepAccess",
        "isRecommendationEnabled": true,
        "isReviewerJustificationRequired": false,
        "isSelfReview": true,
        "schedule": {
            "startDateTime": start.to_rfc3339(),
            "expiration": { "type": "afterDuration", "duration": "P14D" },
            "recurrence": { "pattern": { "type": "absoluteMonthly", "interval": 3 }, "range": { "type": "noEnd" } }
        },
        "primaryReviewers": [],
        "fallbackReviewers": []
    });
    let (status, policy) = app
        .post(
            &app.admin,
            &format!("/v1.0/{EM}/assignmentPolicies"),
            json!({"displayName": "Reviewed", "allowedTargetScope": "notSpecified", "accessPackage": {"id": f.package_id},
                   "expiration": {"type": "noExpiration"}, "reviewSettings": review}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{policy}");
    for user in [&alice, &hank] {
        let (status, body) = app
            .post(
                &app.admin,
                &reqs(""),
                json!({"requestType": "adminAdd", "assignment": {"targetId": user, "assignmentPolicyId": policy["id"], "accessPackageId": f.package_id}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    settle(&app).await;
    assert!(kept(&app, &addr("alice")).await.is_empty(), "administrators' assignments send no mail");

    // The run opens: each reviewer (here each assignee, reviewing themselves) is told once.
    advance(&app, "P1DT1H").await;
    let to_alice = kept(&app, &addr("alice")).await;
    assert_eq!(to_alice.len(), 1, "{:?}", subjects(&to_alice));
    assert!(to_alice[0]["subject"].as_str().unwrap().starts_with("Action required: review access to"), "{to_alice:?}");
    assert!(to_alice[0]["link"].as_str().unwrap().contains("/reviews/"), "{to_alice:?}");
    assert!(to_alice[0]["link"].as_str().unwrap().contains("/instances/"), "{to_alice:?}");
    assert_eq!(kept(&app, &addr("hank")).await.len(), 1);

    // Halfway through, those who have not decided are reminded.
    advance(&app, "P7D").await;
    let to_alice = kept(&app, &addr("alice")).await;
    assert_eq!(to_alice.len(), 2, "{:?}", subjects(&to_alice));
    assert!(to_alice[0]["subject"].as_str().unwrap().starts_with("Reminder: review access to"), "{to_alice:?}");
    advance(&app, "P10D").await;
    assert_eq!(kept(&app, &addr("alice")).await.len(), 2, "nothing more after the run ends");
}
