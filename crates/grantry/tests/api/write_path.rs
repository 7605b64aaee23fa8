//! The write path's cost, counted in statements: a delivered adminAdd and an expiry each
//! run a bounded number of statements on the writer. Statement counts do not depend on the
//! machine's speed or load, so these bounds hold on any machine and catch a regression that
//! adds lookups or writes per request.

use crate::helpers::*;
use grantry_core::{Caller, Principal, PrincipalKind};
use grantry_domain::enums::RequestType;
use grantry_domain::model::{NewRequest, TargetRef};
use grantry_store::stats::counted;

/// An application caller holding every permission (as the tests' admin token).
fn admin_caller() -> Caller {
    Caller {
        principal: Principal {
            kind: PrincipalKind::App,
            id: grantry_domain::ids::new_id(),
            display_name: Some("bench".into()),
            permissions: ALL_APP_ROLES.iter().map(|p| p.to_lowercase()).collect(),
        },
        directory_roles: Default::default(),
        em_roles: Vec::new(),
    }
}

fn admin_add(f: &Fixture, user: &str) -> NewRequest {
    NewRequest {
        request_type: RequestType::AdminAdd,
        assignment_id: None,
        target: Some(TargetRef { object_id: Some(user.to_string()), email: None, display_name: None }),
        policy_id: Some(f.admin_policy_id.clone()),
        access_package_id: Some(f.package_id.clone()),
        schedule: None,
        answers: Vec::new(),
        justification: None,
        is_validation_only: false,
    }
}

/// Most writer statements a delivered adminAdd (one group role, a new subject) may take,
/// savepoint and release included (30 before the evaluation token, deferred audit records
/// and the joined role lookup).
const ADMIN_ADD_WRITE_STATEMENTS: u64 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_admin_add_runs_a_bounded_number_of_statements() {
    let t = TestApp::spawn().await;
    let f = t.seed_package_with_group().await;
    let app = t.state().app.clone();
    let caller = admin_caller();
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(t.create_user(&format!("writer{i}")).await);
    }
    // One request first, so that every statement is prepared (on PostgreSQL a statement's
    // first use on a connection is a round trip of its own).
    let first = t.create_user("writer-first").await;
    grantry_core::requests::create_request(&app, &caller, admin_add(&f, &first)).await.expect("adminAdd");
    let before = app.store.writer_stats();
    let (_, per_request) = counted(async {
        for u in &users {
            grantry_core::requests::create_request(&app, &caller, admin_add(&f, u)).await.expect("adminAdd");
        }
    })
    .await;
    let writer = app.store.writer_stats().since(&before);
    for u in &users {
        assert!(t.is_member(&f.group_id, u).await, "the membership of {u} was delivered");
    }
    let n = users.len() as u64;
    let writes = per_request.write_statements as f64 / n as f64;
    let reads = per_request.read_statements as f64 / n as f64;
    let cpu_us = per_request.write_cpu_ns as f64 / n as f64 / 1000.0;
    println!(
        "adminAdd: {writes:.1} writer statements, {reads:.1} read statements, {cpu_us:.0} µs writer CPU per request ({} writes), {:.1} round trips",
        per_request.writes,
        per_request.write_round_trips as f64 / n as f64
    );
    // Everything the writer did meanwhile (each request alone in its transaction here, so
    // its BEGIN, COMMIT and audit insert too; the background runner's polls as well).
    println!(
        "writer in total: {:.1} statements, {:.1} round trips per request over {} transactions",
        writer.statements as f64 / n as f64,
        writer.round_trips as f64 / n as f64,
        writer.commits
    );
    assert_eq!(per_request.writes, n, "one write per request");
    assert!(
        per_request.write_statements <= ADMIN_ADD_WRITE_STATEMENTS * n,
        "{writes:.1} writer statements per adminAdd, more than {ADMIN_ADD_WRITE_STATEMENTS}"
    );
    if on_postgres() {
        assert!(
            per_request.write_round_trips <= ADMIN_ADD_ROUND_TRIPS * n,
            "{:.1} round trips per adminAdd on PostgreSQL, more than {ADMIN_ADD_ROUND_TRIPS}",
            per_request.write_round_trips as f64 / n as f64
        );
    } else {
        assert_eq!(per_request.write_round_trips, 0);
    }
}

/// Most round trips to PostgreSQL a delivered adminAdd may take on the writer (its
/// statements are sent in pipelines; about 13 before, one per statement).
const ADMIN_ADD_ROUND_TRIPS: u64 = 6;

/// Most writer statements one expiry (assignment ended, membership revoked, systemRemove
/// request recorded) may take, the job's own bookkeeping included.
const EXPIRY_WRITE_STATEMENTS: u64 = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_runs_a_bounded_number_of_statements() {
    let t = TestApp::spawn().await;
    let f = t.seed_package_with_group().await;
    let app = t.state().app.clone();
    let caller = admin_caller();
    let mut users = Vec::new();
    for i in 0..10 {
        let u = t.create_user(&format!("expiring{i}")).await;
        let mut input = admin_add(&f, &u);
        let end = t.now() + chrono::Duration::days(1);
        input.schedule = Some(grantry_domain::model::Schedule {
            start_date_time: None,
            expiration: grantry_domain::model::Expiration {
                kind: grantry_domain::enums::ExpirationType::AfterDateTime,
                end_date_time: Some(end),
                duration: None,
            },
            recurrence: None,
        });
        grantry_core::requests::create_request(&app, &caller, input).await.expect("adminAdd");
        users.push(u);
    }
    let clock = app.dev_clock.clone().expect("development clock");
    app.advance_dev_clock(&clock, chrono::Duration::days(2)).await.expect("advance");
    let (ran, cost) = counted(grantry_core::jobs::drain(&app)).await;
    let ran = ran.expect("drain") as u64;
    // The background runner may have taken some of the expiries; whatever ran here counts.
    t.drain().await;
    for u in &users {
        assert!(!t.is_member(&f.group_id, u).await, "the membership of {u} was revoked");
    }
    // Each assignee is told once that their access ended, and each expiry is recorded as a
    // delivered systemRemove request.
    let (mails, removes) = t
        .read(|c| {
            let mails = grantry_store::repo::count(c, "outbox", "kind = 'mail' AND body LIKE '%accessEnded%'", &[])?;
            let removes = grantry_store::repo::count(
                c,
                "requests",
                "body LIKE '%systemRemove%' AND body LIKE '%\"delivered\"%'",
                &[],
            )?;
            Ok((mails, removes))
        })
        .await;
    assert_eq!((mails, removes), (users.len() as i64, users.len() as i64));
    if ran > 0 {
        let per = cost.write_statements as f64 / ran as f64;
        let cpu_us = cost.write_cpu_ns as f64 / ran as f64 / 1000.0;
        println!("expiry: {per:.1} writer statements, {cpu_us:.0} µs writer CPU per expiry ({ran} run here)");
        assert!(
            cost.write_statements <= EXPIRY_WRITE_STATEMENTS * ran,
            "{per:.1} writer statements per expiry, more than {EXPIRY_WRITE_STATEMENTS}"
        );
    }
}

/// Most writer statements an approver's decision may take when it approves the only stage
/// and the request is delivered (one group role; the requestor's "access delivered" mail),
/// savepoint and release included.
const APPROVE_WRITE_STATEMENTS: u64 = 19;

/// Most round trips to PostgreSQL the same decision may take on the writer.
const APPROVE_ROUND_TRIPS: u64 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_that_delivers_runs_a_bounded_number_of_statements() {
    use grantry_domain::enums::{AllowedTargetScope, ApproverInformationVisibility};
    use grantry_domain::model::{Approval, ApprovalStage, SubjectSet};
    let t = TestApp::spawn().await;
    let f = t.seed_package_with_group().await;
    let app = t.state().app.clone();
    let approver = t.create_user("approver").await;
    let stage = ApprovalStage {
        duration_before_automatic_denial: Some(chrono::Duration::days(14)),
        duration_before_escalation: None,
        is_approver_justification_required: false,
        is_escalation_enabled: false,
        primary_approvers: vec![SubjectSet::SingleUser { user_id: Some(approver.clone()), description: None }],
        fallback_primary_approvers: vec![],
        escalation_approvers: vec![],
        fallback_escalation_approvers: vec![],
        approver_information_visibility: ApproverInformationVisibility::Default,
        is_dynamic: false,
    };
    let policy = t
        .seed_policy(&f, AllowedTargetScope::AllMemberUsers, move |p| {
            p.requestor_settings.enable_targets_to_self_add_access = true;
            p.approval.is_approval_required_for_add = true;
            p.approval.stages = vec![stage];
        })
        .await;
    // Eleven people ask for the package; the first decision prepares the statements.
    let mut flows = Vec::new();
    for i in 0..11 {
        let user = t.create_user(&format!("asking{i}")).await;
        let token = t.user_token(&user, SUBJECT_SCOPES);
        let (status, r) = t
            .post(
                &token,
                &format!("/v1.0/{EM}/assignmentRequests"),
                serde_json::json!({"requestType": "userAdd", "assignment": {"accessPackageId": f.package_id, "assignmentPolicyId": policy}, "justification": "I need it"}),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{r}");
        flows.push((user, r["id"].as_str().unwrap().to_string()));
    }
    t.drain().await;
    let mut decisions = Vec::new();
    for (user, id) in &flows {
        let aid = id.clone();
        let approval: Approval = t.read(move |c| grantry_store::repo::get(c, &aid)).await.expect("an approval");
        decisions.push((user.clone(), id.clone(), approval.stages[0].id.clone()));
    }
    let caller = Caller {
        principal: Principal {
            kind: PrincipalKind::User,
            id: approver.clone(),
            display_name: Some("approver".into()),
            permissions: SUBJECT_SCOPES.iter().map(|p| p.to_lowercase()).collect(),
        },
        directory_roles: Default::default(),
        em_roles: Vec::new(),
    };
    let approve = || grantry_core::approvals::Review { approve: true, justification: Some("fine".into()) };
    let (_, first, first_stage) = &decisions[0];
    grantry_core::approvals::review_stage(&app, &caller, first, first_stage, approve()).await.expect("approve");
    let (_, cost) = counted(async {
        for (_, id, stage) in &decisions[1..] {
            grantry_core::approvals::review_stage(&app, &caller, id, stage, approve()).await.expect("approve");
        }
    })
    .await;
    for (user, _, _) in &decisions {
        assert!(t.is_member(&f.group_id, user).await, "the membership of {user} was delivered");
    }
    let n = (decisions.len() - 1) as u64;
    let per = |v: u64| v as f64 / n as f64;
    println!(
        "approve: {:.1} writer statements, {:.1} read statements, {:.0} µs writer CPU, {:.1} round trips per decision ({} writes)",
        per(cost.write_statements),
        per(cost.read_statements),
        per(cost.write_cpu_ns) / 1000.0,
        per(cost.write_round_trips),
        cost.writes
    );
    assert_eq!(cost.writes, n, "one write per decision");
    assert!(
        cost.write_statements <= APPROVE_WRITE_STATEMENTS * n,
        "{:.1} writer statements per approval, more than {APPROVE_WRITE_STATEMENTS}",
        per(cost.write_statements)
    );
    if on_postgres() {
        assert!(
            cost.write_round_trips <= APPROVE_ROUND_TRIPS * n,
            "{:.1} round trips per approval on PostgreSQL, more than {APPROVE_ROUND_TRIPS}",
            per(cost.write_round_trips)
        );
    }
}
