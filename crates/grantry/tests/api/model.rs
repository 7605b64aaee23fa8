//! Model-based testing: proptest generates short random sequences of operations (create a
//! policy, request access as administrator or user, approve, deny, cancel, extend,
//! adminRemove, advance the clock by days) and runs them against the real server and a
//! small reference model of what each user should have. After every step the server's
//! requests, assignments and group memberships must match the model, and the database
//! invariants must hold. proptest shrinks a failure to a minimal sequence.
//!
//! Bounded: `GRANTRY_MODEL_CASES` cases (default 16) of at most 12 steps.

use crate::helpers::*;
use crate::invariants::assert_holds;
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::json;
use std::collections::BTreeMap;

const USERS: usize = 3;
/// Days an approval stage waits before the request is denied.
const STAGE_DAYS: i64 = 2;

#[derive(Debug, Clone)]
pub enum Op {
    /// A self-service policy for all members; `approval` adds one stage decided by the
    /// approver; `expire_days` bounds the assignments it makes.
    CreatePolicy {
        approval: bool,
        expire_days: Option<i64>,
    },
    /// An adminAdd (or the user's own userAdd) through policy number `policy` (0: the
    /// admin-only policy, 1: self-service without approval, 2…: created ones).
    Add {
        user: usize,
        policy: usize,
        admin: bool,
    },
    Approve {
        user: usize,
    },
    Deny {
        user: usize,
    },
    Cancel {
        user: usize,
    },
    /// The user's userExtend of their assignment.
    Extend {
        user: usize,
    },
    AdminRemove {
        user: usize,
    },
    Advance {
        days: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    prop_oneof![
        1 => (any::<bool>(), prop::option::of(1i64..5)).prop_map(|(approval, expire_days)| Op::CreatePolicy { approval, expire_days }),
        3 => (user.clone(), 0usize..5, any::<bool>()).prop_map(|(user, policy, admin)| Op::Add { user, policy, admin }),
        2 => user.clone().prop_map(|user| Op::Approve { user }),
        1 => user.clone().prop_map(|user| Op::Deny { user }),
        1 => user.clone().prop_map(|user| Op::Cancel { user }),
        1 => user.clone().prop_map(|user| Op::Extend { user }),
        1 => user.clone().prop_map(|user| Op::AdminRemove { user }),
        1 => (1i64..4).prop_map(|days| Op::Advance { days }),
    ]
}

#[derive(Debug, Clone)]
struct ModelPolicy {
    id: String,
    admin_only: bool,
    approval: bool,
    expire_days: Option<i64>,
}

#[derive(Debug, Clone)]
struct Pending {
    request: String,
    deadline_day: i64,
    policy: usize,
}

#[derive(Debug, Clone)]
struct Active {
    id: String,
    policy: usize,
    end_day: Option<i64>,
}

#[derive(Debug, Default, Clone)]
struct UserModel {
    pending: Option<Pending>,
    active: Option<Active>,
}

/// The reference model: what each user should have, and the final state of every request.
#[derive(Debug, Default)]
struct Model {
    day: i64,
    policies: Vec<ModelPolicy>,
    users: Vec<UserModel>,
    /// Expected state of every request the run made.
    requests: BTreeMap<String, &'static str>,
}

impl Model {
    /// Time passes: stages past their deadline deny, assignments past their end expire.
    fn advance(&mut self, days: i64) {
        self.day += days;
        let day = self.day;
        for u in &mut self.users {
            if let Some(p) = u.pending.take_if(|p| p.deadline_day <= day) {
                self.requests.insert(p.request, "denied");
            }
            u.active.take_if(|a| a.end_day.is_some_and(|e| e <= day));
        }
    }

    fn deliver(&mut self, user: usize, policy: usize, assignment: String) {
        let end_day = self.policies[policy].expire_days.map(|d| self.day + d);
        self.users[user].active = Some(Active { id: assignment, policy, end_day });
    }
}

struct World {
    app: TestApp,
    f: Fixture,
    approver: String,
    users: Vec<String>,
}

fn reqs() -> String {
    format!("/v1.0/{EM}/assignmentRequests")
}

async fn assignment_of(app: &TestApp, request: &str) -> String {
    let (_, r) = app.get(&app.admin, &format!("{}/{request}?$expand=assignment", reqs())).await;
    r["assignment"]["id"].as_str().unwrap_or_else(|| panic!("request {request} has no assignment: {r}")).to_string()
}

async fn step(w: &World, m: &mut Model, op: &Op) {
    let app = &w.app;
    match op.clone() {
        Op::CreatePolicy { approval, expire_days } => {
            let stages = if approval {
                json!([{"durationBeforeAutomaticDenial": format!("P{STAGE_DAYS}D"), "isApproverJustificationRequired": false, "isEscalationEnabled": false,
                         "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": w.approver}]}])
            } else {
                json!([])
            };
            let expiration = match expire_days {
                Some(d) => json!({"type": "afterDuration", "duration": format!("P{d}D")}),
                None => json!({"type": "noExpiration"}),
            };
            let (status, p) = app
                .post(
                    &app.admin,
                    &format!("/v1.0/{EM}/assignmentPolicies"),
                    json!({"displayName": format!("model {}", m.policies.len()), "description": "model", "allowedTargetScope": "allMemberUsers",
                           "expiration": expiration,
                           "requestorSettings": {"enableTargetsToSelfAddAccess": true, "enableTargetsToSelfUpdateAccess": true, "enableTargetsToSelfRemoveAccess": true},
                           "requestApprovalSettings": {"isApprovalRequiredForAdd": approval, "isApprovalRequiredForUpdate": false, "stages": stages},
                           "accessPackage": {"id": w.f.package_id}}),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{p}");
            m.policies.push(ModelPolicy {
                id: p["id"].as_str().unwrap().to_string(),
                admin_only: false,
                approval,
                expire_days,
            });
        }
        Op::Add { user, policy, admin } => {
            let policy = policy % m.policies.len();
            let p = m.policies[policy].clone();
            let uid = &w.users[user];
            let (token, body) = if admin {
                (
                    app.admin.clone(),
                    json!({"requestType": "adminAdd", "assignment": {"targetId": uid, "assignmentPolicyId": p.id, "accessPackageId": w.f.package_id}}),
                )
            } else {
                (
                    app.user_token(uid, SUBJECT_SCOPES),
                    json!({"requestType": "userAdd", "assignment": {"assignmentPolicyId": p.id, "accessPackageId": w.f.package_id}}),
                )
            };
            let (status, r) = app.post(&token, &reqs(), body).await;
            let u = &m.users[user];
            let refused = u.pending.is_some() || u.active.is_some() || (!admin && p.admin_only);
            if refused {
                assert!(status.is_client_error(), "{op:?}: expected a refusal, got {status}: {r}");
                return;
            }
            assert_eq!(status, StatusCode::CREATED, "{op:?}: {r}");
            let id = r["id"].as_str().unwrap().to_string();
            app.drain().await;
            if !admin && p.approval {
                m.requests.insert(id.clone(), "pendingApproval");
                m.users[user].pending = Some(Pending { request: id, deadline_day: m.day + STAGE_DAYS, policy });
            } else {
                m.requests.insert(id.clone(), "delivered");
                let a = assignment_of(app, &id).await;
                m.deliver(user, policy, a);
            }
        }
        Op::Approve { user } | Op::Deny { user } => {
            let Some(p) = m.users[user].pending.clone() else { return };
            let approve = matches!(op, Op::Approve { .. });
            let (_, a) =
                app.get(&app.admin, &format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{}", p.request)).await;
            let sid = a["stages"][0]["id"].as_str().unwrap_or_else(|| panic!("no stage: {a}")).to_string();
            let token = app.user_token(&w.approver, SUBJECT_SCOPES);
            let (status, b) = app
                .patch(
                    &token,
                    &format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{}/stages/{sid}", p.request),
                    json!({"reviewResult": if approve { "Approve" } else { "Deny" }, "justification": "model"}),
                )
                .await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{op:?}: {b}");
            app.drain().await;
            m.users[user].pending = None;
            if approve {
                m.requests.insert(p.request.clone(), "delivered");
                let a = assignment_of(app, &p.request).await;
                m.deliver(user, p.policy, a);
            } else {
                m.requests.insert(p.request, "denied");
            }
        }
        Op::Cancel { user } => {
            let Some(p) = m.users[user].pending.clone() else { return };
            let token = app.user_token(&w.users[user], SUBJECT_SCOPES);
            let (status, b) = app.post(&token, &format!("{}/{}/cancel", reqs(), p.request), json!({})).await;
            assert_eq!(status, StatusCode::NO_CONTENT, "{op:?}: {b}");
            app.drain().await;
            m.users[user].pending = None;
            m.requests.insert(p.request, "canceled");
        }
        Op::Extend { user } => {
            let Some(a) = m.users[user].active.clone() else { return };
            let p = m.policies[a.policy].clone();
            let token = app.user_token(&w.users[user], SUBJECT_SCOPES);
            let (status, r) = app
                .post(
                    &token,
                    &reqs(),
                    json!({"requestType": "userExtend", "assignment": {"accessPackageId": w.f.package_id, "assignmentPolicyId": p.id}}),
                )
                .await;
            if p.admin_only {
                assert!(status.is_client_error(), "{op:?}: expected a refusal, got {status}: {r}");
                return;
            }
            assert_eq!(status, StatusCode::CREATED, "{op:?}: {r}");
            app.drain().await;
            m.requests.insert(r["id"].as_str().unwrap().to_string(), "delivered");
            if let (Some(d), Some(active)) = (p.expire_days, m.users[user].active.as_mut()) {
                active.end_day = Some(m.day + d);
            }
        }
        Op::AdminRemove { user } => {
            let Some(a) = m.users[user].active.clone() else { return };
            let (status, r) =
                app.post(&app.admin, &reqs(), json!({"requestType": "adminRemove", "assignment": {"id": a.id}})).await;
            assert_eq!(status, StatusCode::CREATED, "{op:?}: {r}");
            app.drain().await;
            m.requests.insert(r["id"].as_str().unwrap().to_string(), "delivered");
            m.users[user].active = None;
        }
        Op::Advance { days } => {
            let (status, b) =
                app.post(&app.admin, "/_grantry/clock/advance", json!({"duration": format!("P{days}D")})).await;
            assert_eq!(status, StatusCode::OK, "{b}");
            m.advance(days);
        }
    }
}

/// The server agrees with the model: every request's state, each user's active
/// assignment and membership, and the database invariants.
async fn compare(w: &World, m: &Model, context: &str) {
    let app = &w.app;
    for (id, expected) in &m.requests {
        let (status, r) = app.get(&app.admin, &format!("{}/{id}", reqs())).await;
        assert_eq!(status, StatusCode::OK, "{context}: {r}");
        assert_eq!(r["state"], *expected, "{context}: request {id}: {r}");
    }
    for (i, u) in m.users.iter().enumerate() {
        let uid = w.users[i].clone();
        let p = w.f.package_id.clone();
        let active: Vec<String> = app
            .read(move |c| {
                c.query(
                    "SELECT a.id FROM assignments a JOIN subjects s ON s.id = a.target_subject_id WHERE s.object_id = ? AND a.access_package_id = ? AND a.active = 1",
                    &[uid.into(), p.into()],
                )?
                .iter()
                .map(|r| r.text(0))
                .collect()
            })
            .await;
        let expected: Vec<String> = u.active.iter().map(|a| a.id.clone()).collect();
        assert_eq!(active, expected, "{context}: user {i}'s active assignments");
        assert_eq!(
            app.is_member(&w.f.group_id, &w.users[i]).await,
            u.active.is_some(),
            "{context}: user {i}'s membership"
        );
        if let Some(a) = &u.active {
            let (_, got) = app.get(&app.admin, &format!("/v1.0/{EM}/assignments/{}", a.id)).await;
            let end = &got["schedule"]["expiration"]["endDateTime"];
            assert_eq!(end.is_string(), a.end_day.is_some(), "{context}: user {i}'s assignment end: {got}");
        }
    }
    assert_holds(app, context).await;
}

/// Runs `ops` against a fresh server and the model, comparing after every step.
pub async fn run(ops: &[Op]) {
    let app = TestApp::spawn().await;
    let f = app.seed_package_with_group().await;
    let approver = app.create_user("approver").await;
    let mut users = Vec::new();
    for i in 0..USERS {
        users.push(app.create_user(&format!("m{i}")).await);
    }
    let mut m = Model {
        policies: vec![
            ModelPolicy { id: f.admin_policy_id.clone(), admin_only: true, approval: false, expire_days: None },
            ModelPolicy { id: f.self_policy_id.clone(), admin_only: false, approval: false, expire_days: None },
        ],
        users: vec![UserModel::default(); USERS],
        ..Default::default()
    };
    let w = World { app, f, approver, users };
    for (i, op) in ops.iter().enumerate() {
        step(&w, &mut m, op).await;
        compare(&w, &m, &format!("after step {i} {op:?}")).await;
    }
}

fn cases() -> u32 {
    std::env::var("GRANTRY_MODEL_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(16)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_server_follows_the_model(ops in prop::collection::vec(op(), 1..=12)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(run(&ops));
    }
}

/// A fixed sequence through every operation (kept as a regression test: approval, expiry
/// and renewal, extension, denial, cancellation and removal of one user after another).
#[tokio::test]
async fn a_fixed_sequence_follows_the_model() {
    use Op::*;
    run(&[
        CreatePolicy { approval: true, expire_days: Some(3) },
        Add { user: 0, policy: 2, admin: false },
        Approve { user: 0 },
        Add { user: 1, policy: 2, admin: false },
        Advance { days: 2 },
        Extend { user: 0 },
        Advance { days: 2 },
        Add { user: 1, policy: 2, admin: false },
        Deny { user: 1 },
        Add { user: 2, policy: 2, admin: false },
        Cancel { user: 2 },
        Add { user: 2, policy: 0, admin: true },
        Extend { user: 2 },
        AdminRemove { user: 0 },
        Advance { days: 3 },
        Add { user: 0, policy: 1, admin: false },
    ])
    .await;
}
