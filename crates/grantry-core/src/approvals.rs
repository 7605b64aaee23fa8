//! Approval of assignment requests: stages started one after another, decisions, automatic
//! denial when a stage times out, and escalation.
//!
//! Every transition is a compare-and-set inside a write transaction: a decision applies
//! only to the stage that is in progress, so of two approvers deciding at once the second
//! gets 409, and a timeout that races a decision finds the stage already completed and does
//! nothing.

use crate::approvers::{self, Parties};
use crate::audit::{self, AuditEvent};
use crate::auth::{CatalogRight, perms};
use crate::jobs::{self, Job, JobContext};
use crate::{App, Caller, Page, PageRequest, delivery};
use chrono::{DateTime, Utc};
use grantry_domain::enums::{RequestState, RequestStatus};
use grantry_domain::model::{
    Approval, ApprovalStageRecord, ApprovalState, AssignmentRequest, Identity, Policy, ReviewResult, StageStatus,
    Subject, User,
};
use grantry_domain::{Error, ErrorKind, Result, ids};
use grantry_store::{Conn, Value, repo};
use serde_json::json;

pub const JOB_TIMEOUT: &str = "approval.timeout";
pub const JOB_ESCALATE: &str = "approval.escalate";
/// Reminds the approvers of a stage that still waits, halfway to its deadline.
pub const JOB_REMIND: &str = "approval.remind";

/// How starting an approval went.
#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// The first stage is waiting for its approvers.
    Waiting,
    /// Nobody can approve the first stage (no approver and no fallback resolves, once the
    /// requestor and target are excluded): the request is denied.
    NoApprovers,
}

/// The directory users on both sides of a request.
pub fn parties_of(c: &mut dyn Conn, request: &AssignmentRequest) -> Result<(Option<String>, Option<String>)> {
    let target = repo::get::<Subject>(c, &request.target_subject_id)?.and_then(|s| s.object_id);
    let requestor = match &request.requestor_subject_id {
        Some(id) => repo::get::<Subject>(c, id)?.and_then(|s| s.object_id),
        None => None,
    };
    Ok((target, requestor))
}

/// Resolves the approvers of `policy`'s stage `index` and starts it at `now`.
fn start_stage(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    approval: &mut Approval,
    policy: &Policy,
    index: usize,
    request: &AssignmentRequest,
) -> Result<bool> {
    let Some(settings) = policy.approval.stages.get(index) else { return Ok(false) };
    let (target, requestor) = parties_of(c, request)?;
    let organization = match repo::get::<Subject>(c, &request.target_subject_id)? {
        Some(s) => crate::connected::organization_id_of_subject(c, &s)?,
        None => None,
    };
    let parties = Parties {
        target_user_id: target.as_deref(),
        requestor_user_id: requestor.as_deref(),
        organization_id: organization.as_deref(),
    };
    let mut primary = approvers::resolve(c, &settings.primary_approvers, &parties)?;
    if primary.is_empty() {
        primary = approvers::resolve(c, &settings.fallback_primary_approvers, &parties)?;
    }
    let mut escalation = Vec::new();
    if settings.is_escalation_enabled {
        escalation = approvers::resolve(c, &settings.escalation_approvers, &parties)?;
        if escalation.is_empty() {
            escalation = approvers::resolve(c, &settings.fallback_escalation_approvers, &parties)?;
        }
    }
    if primary.is_empty() && escalation.is_empty() {
        return Ok(false);
    }
    let due = settings.duration_before_automatic_denial.and_then(|d| now.checked_add_signed(d));
    let escalate_at = if settings.is_escalation_enabled {
        settings.duration_before_escalation.and_then(|d| now.checked_add_signed(d))
    } else {
        None
    };
    let stage = &mut approval.stages[index];
    stage.status = StageStatus::InProgress;
    stage.started_date_time = Some(now);
    stage.approver_ids = primary.clone();
    stage.escalation_approver_ids = escalation;
    stage.due_date_time = due;
    stage.escalation_date_time = escalate_at;
    for user in &primary {
        add_approver(c, &approval.id, index, user, false)?;
    }
    if let Some(due) = due {
        jobs::enqueue(c, JOB_TIMEOUT, &approval.id, due, json!({ "stage": index }))?;
        jobs::enqueue(c, JOB_REMIND, &approval.id, now + (due - now) / 2, json!({ "stage": index }))?;
    }
    if let Some(at) = escalate_at {
        jobs::enqueue(c, JOB_ESCALATE, &approval.id, at, json!({ "stage": index }))?;
    }
    Ok(true)
}

fn add_approver(c: &mut dyn Conn, approval_id: &str, index: usize, user_id: &str, escalation: bool) -> Result<()> {
    c.execute(
        "INSERT INTO approval_approvers (approval_id, stage_index, user_id, escalation) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        &[Value::from(approval_id), Value::Int(index as i64), Value::from(user_id), Value::from(escalation)],
    )?;
    Ok(())
}

/// Creates the approval of `request` (same id) and starts its first stage. The caller has
/// put the request in `pendingApproval`.
pub fn begin(c: &mut dyn Conn, now: DateTime<Utc>, request: &AssignmentRequest, policy: &Policy) -> Result<Begin> {
    let mut approval = fresh(now, request, policy);
    if !start_stage(c, now, &mut approval, policy, 0, request)? {
        approval.state = ApprovalState::Denied;
        repo::insert(c, &approval)?;
        return Ok(Begin::NoApprovers);
    }
    repo::insert(c, &approval)?;
    Ok(Begin::Waiting)
}

/// The approval of `request` under `policy`, no stage started.
fn fresh(now: DateTime<Utc>, request: &AssignmentRequest, policy: &Policy) -> Approval {
    let stages = policy
        .approval
        .stages
        .iter()
        .enumerate()
        .map(|(i, _)| ApprovalStageRecord {
            id: ids::new_id(),
            index: i,
            display_name: format!("Stage {}", i + 1),
            status: StageStatus::NotStarted,
            review_result: ReviewResult::NotReviewed,
            reviewed_by: None,
            reviewed_date_time: None,
            justification: None,
            approver_ids: Vec::new(),
            escalation_approver_ids: Vec::new(),
            escalated: false,
            started_date_time: None,
            due_date_time: None,
            escalation_date_time: None,
        })
        .collect();
    Approval {
        id: request.id.clone(),
        policy_id: policy.id.clone(),
        state: ApprovalState::Pending,
        stages,
        created_date_time: now,
    }
}

/// The first (dynamic) stage of `policy` decided by the custom extension's workflow, in
/// its resume: the approval is recorded with that stage completed by the workflow's caller;
/// approved, the policy's next stage starts, or the request is approved.
pub(crate) fn decide_first_by_workflow(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    request: &AssignmentRequest,
    policy: &Policy,
    decision: Decision<'_>,
) -> Result<Outcome> {
    let mut approval = fresh(now, request, policy);
    let Some(stage) = approval.stages.first_mut() else {
        return Err(Error::conflict("NoApprovalStage", "The request's policy has no approval stage to decide."));
    };
    stage.status = StageStatus::Completed;
    stage.started_date_time = Some(now);
    stage.review_result = if decision.approve { ReviewResult::Approved } else { ReviewResult::Denied };
    stage.reviewed_by =
        Some(Identity { id: decision.approver_id.to_string(), display_name: decision.approver_name.clone() });
    stage.reviewed_date_time = Some(now);
    stage.justification = decision.justification.clone();
    let outcome = if !decision.approve {
        approval.state = ApprovalState::Denied;
        Outcome::Denied
    } else if policy.approval.stages.len() > 1 {
        if start_stage(c, now, &mut approval, policy, 1, request)? {
            Outcome::NextStage
        } else {
            approval.state = ApprovalState::Denied;
            Outcome::NoApprovers
        }
    } else {
        approval.state = ApprovalState::Approved;
        Outcome::Approved
    };
    repo::insert(c, &approval)?;
    audit::record(
        c,
        AuditEvent {
            at: now,
            actor_id: Some(decision.approver_id),
            entity_type: "approval",
            entity_id: &approval.id,
            action: if decision.approve { "stageApproved" } else { "stageDenied" },
            detail: json!({ "stage": 1, "stageId": approval.stages[0].id, "justification": decision.justification, "by": "customExtension" }),
        },
    )?;
    Ok(outcome)
}

/// Moves request `r` on after a decision of its approval: the next stage, delivery (with
/// the approved stage's callout first), or denial.
pub(crate) fn continue_after(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &mut AssignmentRequest,
    outcome: Outcome,
    actor: &str,
    detail: serde_json::Value,
) -> Result<()> {
    continue_after_with(c, now, r, outcome, actor, detail, None)
}

/// [`continue_after`], with the request's policy and target subject known to hold for its
/// delivery (read under an evaluation token that is still current).
fn continue_after_with(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &mut AssignmentRequest,
    outcome: Outcome,
    actor: &str,
    detail: serde_json::Value,
    checked: Option<&delivery::Checked>,
) -> Result<()> {
    match outcome {
        Outcome::NextStage => delivery::set_state_by(
            c,
            now,
            r,
            RequestState::PendingApproval,
            RequestStatus::PendingApproval,
            Some(actor),
            detail,
        ),
        Outcome::Approved => {
            audit::record(
                c,
                AuditEvent {
                    at: now,
                    actor_id: Some(actor),
                    entity_type: "accessPackageAssignmentRequest",
                    entity_id: &r.id,
                    action: "approved",
                    detail,
                },
            )?;
            crate::webhooks::request_event(c, now, "approved", r)?;
            if crate::callouts::fire_and_maybe_hold_with(
                c,
                now,
                grantry_domain::enums::CustomExtensionStage::AssignmentRequestApproved,
                r,
                checked.map(|k| k.policy),
            )? {
                // Access waits for the workflow: tell the requestor it was approved.
                return crate::notify::request_approved(c, now, r);
            }
            match checked {
                Some(k) => delivery::advance_checked(c, now, r, k)?,
                None => delivery::advance(c, now, r)?,
            }
            // Delivered at once, the "access delivered" mail says it all; a later start
            // gets its own "approved" mail.
            if r.state == RequestState::Scheduled {
                crate::notify::request_approved(c, now, r)?;
            }
            Ok(())
        }
        Outcome::Denied => {
            delivery::set_state_by(c, now, r, RequestState::Denied, RequestStatus::Denied, Some(actor), detail)
        }
        Outcome::NoApprovers => delivery::set_state_by(
            c,
            now,
            r,
            RequestState::Denied,
            RequestStatus::Denied,
            Some(actor),
            json!({ "approvalId": r.id, "reason": "The stage was approved, but no approver could be resolved for the next stage." }),
        ),
    }
}

/// What a decision led to, for the request's processing.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Another stage now waits.
    NextStage,
    /// Every stage approved: deliver.
    Approved,
    /// Denied by the approver.
    Denied,
    /// The stage was approved, but nobody can approve the next one: denied.
    NoApprovers,
}

/// An approver's decision on stage `stage_id` of approval `approval_id`.
pub struct Decision<'a> {
    pub approver_id: &'a str,
    pub approver_name: Option<String>,
    pub approve: bool,
    pub justification: Option<String>,
}

/// The refusal for a requestor or target deciding their own request.
pub fn self_approval() -> Error {
    Error::new(
        ErrorKind::Forbidden,
        "SelfApprovalNotAllowed",
        "You cannot approve or deny a request for your own access, nor one you made; another approver must decide it.",
    )
    .with_target("reviewResult")
}

/// What a decision reads: the approval and its request, the directory users on both sides
/// of the request, and the policy.
#[derive(Debug, Clone)]
pub struct DecisionFacts {
    pub approval: Approval,
    pub request: AssignmentRequest,
    pub target_user_id: Option<String>,
    pub requestor_user_id: Option<String>,
    pub policy: Option<Policy>,
}

impl DecisionFacts {
    /// Reads them for approval `approval_id` (404 when it or its request is missing).
    pub fn load(c: &mut dyn Conn, approval_id: &str) -> Result<DecisionFacts> {
        let approval =
            repo::get::<Approval>(c, approval_id)?.ok_or_else(|| Error::not_found("approval", approval_id))?;
        let request =
            repo::get::<AssignmentRequest>(c, approval_id)?.ok_or_else(|| Error::not_found("approval", approval_id))?;
        let (target_user_id, requestor_user_id) = parties_of(c, &request)?;
        let policy = repo::get::<Policy>(c, &approval.policy_id)?;
        Ok(DecisionFacts { approval, request, target_user_id, requestor_user_id, policy })
    }
}

/// Applies `decision` (compare-and-set on the stage in progress).
pub fn decide(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    approval_id: &str,
    stage_id: &str,
    decision: Decision<'_>,
) -> Result<Outcome> {
    let mut facts = DecisionFacts::load(c, approval_id)?;
    decide_with(c, now, &mut facts, stage_id, decision)
}

/// [`decide`] on facts read in this transaction, or read earlier and known unchanged since;
/// updates `facts.approval` as it stores it.
pub fn decide_with(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    facts: &mut DecisionFacts,
    stage_id: &str,
    decision: Decision<'_>,
) -> Result<Outcome> {
    let approval_id = facts.approval.id.clone();
    let approval_id = approval_id.as_str();
    let approval = &mut facts.approval;
    let request = &facts.request;
    let index = approval
        .stages
        .iter()
        .position(|s| s.id.eq_ignore_ascii_case(stage_id))
        .ok_or_else(|| Error::not_found("approval stage", stage_id))?;
    if Some(decision.approver_id) == facts.target_user_id.as_deref()
        || Some(decision.approver_id) == facts.requestor_user_id.as_deref()
    {
        return Err(self_approval());
    }
    let stage = &approval.stages[index];
    if stage.status == StageStatus::NotStarted {
        return Err(Error::bad_request(
            "StageNotActive",
            "This stage has not started yet; the stage in progress must be decided first.",
        ));
    }
    let is_stage_approver = stage.approver_ids.iter().any(|a| a == decision.approver_id)
        || stage.escalation_approver_ids.iter().any(|a| a == decision.approver_id);
    if !is_stage_approver {
        return Err(Error::forbidden("You are not an approver of this stage of the request."));
    }
    match stage.status {
        StageStatus::InProgress if approval.state == ApprovalState::Pending => {}
        StageStatus::Expired => {
            return Err(Error::conflict(
                "StageExpired",
                "Nobody decided this stage in time, so the request was denied automatically; the requestor must submit a new request.",
            ));
        }
        StageStatus::InProgress | StageStatus::Completed | StageStatus::NotStarted => {
            return Err(Error::conflict(
                "StageAlreadyDecided",
                "This stage has already been decided (the first decision in a stage settles it), or the request is no longer pending.",
            ));
        }
    }
    if stage.due_date_time.is_some_and(|d| d <= now) {
        // The timeout job is due and will deny the request; a late decision does not count.
        return Err(Error::conflict(
            "StageExpired",
            "This stage reached its deadline (durationBeforeAutomaticDenial) without a decision; the request is denied automatically.",
        ));
    }
    if !stage.may_decide(decision.approver_id) {
        return Err(Error::forbidden(
            "You are an escalation approver of this stage; you can decide once the stage has been escalated.",
        ));
    }
    let policy = &facts.policy;
    let justification_required = policy
        .as_ref()
        .and_then(|p| p.approval.stages.get(index))
        .is_some_and(|s| s.is_approver_justification_required);
    if justification_required && decision.justification.as_deref().is_none_or(|j| j.trim().is_empty()) {
        return Err(Error::bad_request(
            "JustificationRequired",
            "This stage requires a justification with the decision; add 'justification'.",
        )
        .with_target("justification"));
    }
    let stage = &mut approval.stages[index];
    stage.status = StageStatus::Completed;
    stage.review_result = if decision.approve { ReviewResult::Approved } else { ReviewResult::Denied };
    stage.reviewed_by =
        Some(Identity { id: decision.approver_id.to_string(), display_name: decision.approver_name.clone() });
    stage.reviewed_date_time = Some(now);
    stage.justification = decision.justification.clone();
    // This stage's timeout and escalation no longer apply; the next stage schedules its own.
    jobs::cancel_kinds(c, &[JOB_TIMEOUT, JOB_ESCALATE, JOB_REMIND], approval_id)?;
    crate::notify::approval_decided(c, now, request, approval, index, decision.approver_id, decision.approve)?;
    audit::record(
        c,
        AuditEvent {
            at: now,
            actor_id: Some(decision.approver_id),
            entity_type: "approval",
            entity_id: approval_id,
            action: if decision.approve { "stageApproved" } else { "stageDenied" },
            detail: json!({ "stage": index + 1, "stageId": approval.stages[index].id, "justification": decision.justification }),
        },
    )?;
    let outcome = if !decision.approve {
        approval.state = ApprovalState::Denied;
        Outcome::Denied
    } else if index + 1 < approval.stages.len() {
        match policy {
            Some(p) if start_stage(c, now, approval, p, index + 1, request)? => Outcome::NextStage,
            _ => {
                approval.state = ApprovalState::Denied;
                Outcome::NoApprovers
            }
        }
    } else {
        approval.state = ApprovalState::Approved;
        Outcome::Approved
    };
    repo::update_later(c, &*approval)?;
    Ok(outcome)
}

/// Job: an undecided stage reached its deadline; the request is denied. Returns whether it
/// acted (false when the stage was decided in time).
pub fn on_timeout(c: &mut dyn Conn, now: DateTime<Utc>, approval_id: &str, index: usize) -> Result<bool> {
    let Some(mut approval) = repo::get::<Approval>(c, approval_id)? else { return Ok(false) };
    let still_waiting = approval.state == ApprovalState::Pending
        && approval
            .stages
            .get(index)
            .is_some_and(|s| s.status == StageStatus::InProgress && s.due_date_time.is_some_and(|d| d <= now));
    if !still_waiting {
        return Ok(false);
    }
    approval.stages[index].status = StageStatus::Expired;
    approval.state = ApprovalState::TimedOut;
    repo::update(c, &approval)?;
    Ok(true)
}

/// Job: a stage reached its escalation time; escalation approvers may now decide too.
pub fn on_escalate(c: &mut dyn Conn, now: DateTime<Utc>, approval_id: &str, index: usize) -> Result<bool> {
    let Some(mut approval) = repo::get::<Approval>(c, approval_id)? else { return Ok(false) };
    let due = approval.state == ApprovalState::Pending
        && approval.stages.get(index).is_some_and(|s| {
            s.status == StageStatus::InProgress && !s.escalated && s.escalation_date_time.is_some_and(|d| d <= now)
        });
    if !due {
        return Ok(false);
    }
    let stage = &mut approval.stages[index];
    stage.escalated = true;
    let escalation = stage.escalation_approver_ids.clone();
    repo::update(c, &approval)?;
    for user in &escalation {
        add_approver(c, approval_id, index, user, true)?;
    }
    audit::record(
        c,
        AuditEvent {
            at: now,
            actor_id: None,
            entity_type: "approval",
            entity_id: approval_id,
            action: "stageEscalated",
            detail: json!({ "stage": index + 1, "escalationApprovers": escalation }),
        },
    )?;
    Ok(true)
}

/// The request was canceled: close its approval so nothing more can be decided.
pub fn cancel(c: &mut dyn Conn, approval_id: &str) -> Result<()> {
    if let Some(mut approval) = repo::get::<Approval>(c, approval_id)?
        && approval.state == ApprovalState::Pending
    {
        approval.state = ApprovalState::Canceled;
        for stage in approval.stages.iter_mut().filter(|s| s.status == StageStatus::InProgress) {
            stage.status = StageStatus::Completed;
        }
        repo::update(c, &approval)?;
    }
    jobs::cancel(c, JOB_TIMEOUT, approval_id)?;
    jobs::cancel(c, JOB_ESCALATE, approval_id)?;
    jobs::cancel(c, JOB_REMIND, approval_id)?;
    Ok(())
}

/// Whether `user_id` is or was an approver of any stage of `approval_id`.
pub fn is_approver(c: &mut dyn Conn, approval_id: &str, user_id: &str) -> Result<bool> {
    Ok(c.query_one(
        "SELECT 1 FROM approval_approvers WHERE approval_id = ? AND user_id = ?",
        &[Value::from(approval_id), Value::from(user_id)],
    )?
    .is_some())
}

/// The display name of a user, for `reviewedBy`.
pub fn user_name(c: &mut dyn Conn, user_id: &str) -> Result<Option<String>> {
    Ok(repo::get::<User>(c, user_id)?.map(|u| u.display_name))
}

/// A request in `pendingApproval` whose approval is still pending.
pub fn pending_request(c: &mut dyn Conn, approval_id: &str) -> Result<Option<AssignmentRequest>> {
    Ok(repo::get::<AssignmentRequest>(c, approval_id)?.filter(|r| r.state == RequestState::PendingApproval))
}

/// Approvals whose stage in progress `user_id` may decide now, oldest first.
pub fn awaiting_ids(c: &mut dyn Conn, user_id: &str) -> Result<Vec<String>> {
    let rows = c.query(
        "SELECT DISTINCT a.seq, a.id FROM approval_approvers aa JOIN approvals a ON a.id = aa.approval_id \
         WHERE aa.user_id = ? AND a.state = 'pending' ORDER BY a.seq",
        &[Value::from(user_id)],
    )?;
    let mut out = Vec::new();
    for row in rows {
        let id = row.text(1)?;
        if let Some(a) = repo::get::<Approval>(c, &id)?
            && a.current_stage().is_some_and(|s| s.may_decide(user_id))
        {
            out.push(id);
        }
    }
    Ok(out)
}

/// `id IN (…)` over `ids` (or a clause matching nothing), for list queries.
pub fn id_in(column: &str, ids: &[String]) -> (String, Vec<Value>) {
    if ids.is_empty() {
        return ("1 = 0".into(), Vec::new());
    }
    (format!("{column} IN ({})", vec!["?"; ids.len()].join(", ")), ids.iter().map(Value::from).collect())
}

// ---------------------------------------------------------------------------------------
// The request's side: starting approval, decisions, timeouts and escalation.
// ---------------------------------------------------------------------------------------

/// A submitted request whose policy requires approval: starts the approval and moves the
/// request to `pendingApproval`, or denies it when nobody could approve.
pub fn start_for_request(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    r: &mut AssignmentRequest,
    policy: &Policy,
) -> Result<()> {
    match begin(c, now, r, policy)? {
        Begin::Waiting => delivery::set_state_by(
            c,
            now,
            r,
            RequestState::PendingApproval,
            RequestStatus::PendingApproval,
            None,
            json!({ "approvalId": r.id, "stages": policy.approval.stages.len() }),
        ),
        Begin::NoApprovers => delivery::set_state_by(
            c,
            now,
            r,
            RequestState::Denied,
            RequestStatus::Denied,
            None,
            json!({ "reason": "No approver could be resolved for stage 1: its primary and fallback approvers resolve to nobody once the requestor and target are excluded." }),
        ),
    }
}

/// Whether the caller may read the approval of `request`: approvers of any stage, the
/// requestor, the target, and administrators of its catalog.
fn may_view(c: &mut dyn Conn, caller: &Caller, request: &AssignmentRequest) -> Result<bool> {
    if caller.has_permission(perms::EM_READ)
        && caller.may_in_catalog(&request.catalog_id, CatalogRight::ManageAssignments)
    {
        return Ok(true);
    }
    let Some(uid) = caller.user_id() else { return Ok(false) };
    if is_approver(c, &request.id, uid)? {
        return Ok(true);
    }
    let (target, requestor) = parties_of(c, request)?;
    Ok(target.as_deref() == Some(uid) || requestor.as_deref() == Some(uid))
}

/// `GET accessPackageAssignmentApprovals/{id}`.
pub async fn get_approval(app: &App, caller: &Caller, id: &str) -> Result<Approval> {
    caller.require(perms::EM_SUBJECT_READ)?;
    let id = ids::normalize(id);
    let caller = caller.clone();
    app.store
        .read(move |c| {
            let approval = repo::get::<Approval>(c, &id)?.ok_or_else(|| Error::not_found("approval", &id))?;
            let request = repo::get::<AssignmentRequest>(c, &id)?.ok_or_else(|| Error::not_found("approval", &id))?;
            if may_view(c, &caller, &request)? { Ok(approval) } else { Err(Error::not_found("approval", &id)) }
        })
        .await
}

/// `GET accessPackageAssignmentApprovals/filterByCurrentUser(on='approver')`.
pub async fn list_awaiting(app: &App, caller: &Caller, page: PageRequest) -> Result<Page<Approval>> {
    let Some(uid) = caller.user_id().map(str::to_string) else {
        return Err(Error::forbidden(
            "filterByCurrentUser(on='approver') lists the approvals waiting for the signed-in user; call it with a delegated token.",
        ));
    };
    caller.require(perms::EM_SUBJECT_READ)?;
    app.store
        .read(move |c| {
            let ids = awaiting_ids(c, &uid)?;
            let (sql, params) = id_in("id", &ids);
            Ok(Page::from_rows(repo::list::<Approval>(c, &sql, &params, page.after_seq, page.size + 1)?, page.size))
        })
        .await
}

/// An approval with its request (the requestor's answers and justification), for the
/// people `get_approval` shows it to: approvers of any stage, the requestor, the target and
/// the catalog's assignment managers.
pub async fn approval_with_request(app: &App, caller: &Caller, id: &str) -> Result<(Approval, AssignmentRequest)> {
    caller.require(perms::EM_SUBJECT_READ)?;
    let id = ids::normalize(id);
    let caller = caller.clone();
    app.store
        .read(move |c| {
            let approval = repo::get::<Approval>(c, &id)?.ok_or_else(|| Error::not_found("approval", &id))?;
            let request = repo::get::<AssignmentRequest>(c, &id)?.ok_or_else(|| Error::not_found("approval", &id))?;
            if may_view(c, &caller, &request)? {
                Ok((approval, request))
            } else {
                Err(Error::not_found("approval", &id))
            }
        })
        .await
}

/// The approvals in which the signed-in user decided a stage, newest first (at most
/// `limit`).
pub async fn decided_by_caller(app: &App, caller: &Caller, limit: usize) -> Result<Vec<Approval>> {
    let Some(uid) = caller.user_id().map(str::to_string) else {
        return Err(Error::forbidden("Only a signed-in approver has a history of decisions."));
    };
    caller.require(perms::EM_SUBJECT_READ)?;
    app.store
        .read(move |c| {
            // Stages are stored in the approval's body; the decider's id is a normalized
            // GUID, so the pattern cannot contain LIKE's wildcards.
            let pattern = format!("%\"reviewedBy\":{{\"id\":\"{uid}\"%");
            let rows = c.query(
                &format!("SELECT body FROM approvals WHERE body LIKE ? ORDER BY seq DESC LIMIT {}", limit.min(500)),
                &[Value::from(pattern)],
            )?;
            rows.iter()
                .map(|r| {
                    serde_json::from_str::<Approval>(&r.text(0)?)
                        .map_err(|e| Error::internal(format!("an approval cannot be read: {e}")))
                })
                .filter(|a| {
                    a.as_ref()
                        .map_or(true, |a| a.stages.iter().any(|s| s.reviewed_by.as_ref().is_some_and(|b| b.id == uid)))
                })
                .collect()
        })
        .await
}

/// An approver's decision as sent in a PATCH of a stage (or step).
#[derive(Debug, Clone)]
pub struct Review {
    pub approve: bool,
    pub justification: Option<String>,
}

/// `PATCH accessPackageAssignmentApprovals/{id}/stages/{stageId}`: records the decision
/// and moves the request on (next stage, delivery or denial) in the same transaction.
pub async fn review_stage(app: &App, caller: &Caller, approval_id: &str, stage_id: &str, review: Review) -> Result<()> {
    let Some(uid) = caller.user_id().map(str::to_string) else {
        return Err(Error::forbidden(
            "Approval decisions are made by a signed-in approver; an application token cannot approve or deny requests. Call with a delegated token of the approver.",
        ));
    };
    caller.require(perms::EM_SUBJECT)?;
    let (approval_id, stage_id) = (ids::normalize(approval_id), ids::normalize(stage_id));
    let now = app.now();
    // What the decision and the delivery after it read, read first on a reader; the writer
    // relies on it while nothing it came from has changed (see `Seen`).
    let (aid, approver) = (approval_id.clone(), uid.clone());
    let seen = app.store.read(move |c| Seen::read(c, &aid, &approver)).await?;
    app.store
        .write(move |c| {
            if let Some(seen) = seen
                && let Some(current) = seen.still_current(c)?
            {
                return crate::generation::with_known(current, || decide_seen(c, now, seen, &stage_id, &uid, review));
            }
            let name = user_name(c, &uid)?;
            let justification = review.justification.clone();
            let outcome = decide(
                c,
                now,
                &approval_id,
                &stage_id,
                Decision {
                    approver_id: &uid,
                    approver_name: name,
                    approve: review.approve,
                    justification: justification.clone(),
                },
            )?;
            let Some(mut r) = pending_request(c, &approval_id)? else { return Ok(()) };
            let detail = json!({ "approvalId": approval_id, "stageId": stage_id, "justification": justification });
            continue_after(c, now, &mut r, outcome, &uid, detail)
        })
        .await?;
    app.work_signal.notify_one();
    app.outbox_signal.notify_one();
    Ok(())
}

/// An approval's body and its request's, with the evaluation token, in one query.
const APPROVAL_AND_REQUEST: &str = "SELECT a.body, r.body, (SELECT token FROM eval_generation WHERE id = 1) \
     FROM approvals a JOIN requests r ON r.id = a.id WHERE a.id = ?";

/// What an approver's decision and the delivery after it read, read on a reader before the
/// write: the approval and its request as stored, the parties, the policy, the approver's
/// name and the target's subject, with the evaluation token of that moment. While the
/// token is unchanged none of the users, subjects, policies or incompatibilities behind them
/// changed; while the approval's and the request's rows are unchanged nobody decided,
/// canceled or timed out in between. The writer checks both in one query and then decides
/// on what was read here, as it does for a new request.
struct Seen {
    token: i64,
    approval_body: String,
    request_body: String,
    facts: DecisionFacts,
    approver_name: Option<String>,
    /// The target's subject, when delivery may rely on what was read here: an add, under a
    /// policy found, for a package without incompatibilities (separation of duties depends
    /// on the target's other assignments, which other requests change).
    subject: Option<Subject>,
}

impl Seen {
    fn read(c: &mut dyn Conn, approval_id: &str, approver: &str) -> Result<Option<Seen>> {
        let Some(row) = c.query_one(APPROVAL_AND_REQUEST, &[Value::from(approval_id)])? else { return Ok(None) };
        let (approval_body, request_body, token) = (row.text(0)?, row.text(1)?, row.opt_int(2)?.unwrap_or(0));
        let approval: Approval = repo::from_body(&approval_body)?;
        let request: AssignmentRequest = repo::from_body(&request_body)?;
        let (target_user_id, requestor_user_id) = parties_of(c, &request)?;
        let policy = repo::get::<Policy>(c, &approval.policy_id)?;
        let approver_name = user_name(c, approver)?;
        let subject = if request.request_type.is_add() && policy.is_some() {
            let package = Value::from(&request.access_package_id);
            let incompatible = c.query_one(
                "SELECT 1 FROM incompatible_packages WHERE access_package_id = ? OR other_id = ? \
                 UNION ALL SELECT 1 FROM incompatible_groups WHERE access_package_id = ?",
                &[package.clone(), package.clone(), package],
            )?;
            match incompatible {
                Some(_) => None,
                None => repo::get::<Subject>(c, &request.target_subject_id)?,
            }
        } else {
            None
        };
        let facts = DecisionFacts { approval, request, target_user_id, requestor_user_id, policy };
        Ok(Some(Seen { token, approval_body, request_body, facts, approver_name, subject }))
    }

    /// The evaluation token, when neither it nor the approval and its request have changed
    /// since they were read.
    fn still_current(&self, c: &mut dyn Conn) -> Result<Option<i64>> {
        let Some(row) = c.query_one(APPROVAL_AND_REQUEST, &[Value::from(&self.facts.approval.id)])? else {
            return Ok(None);
        };
        let token = row.opt_int(2)?.unwrap_or(0);
        let unchanged = token == self.token && row.text(0)? == self.approval_body && row.text(1)? == self.request_body;
        Ok(unchanged.then_some(token))
    }
}

/// The decision on what [`Seen`] read (still current), then the request moved on: the next
/// stage, delivery (relying on the subject and policy read, unless the target meanwhile
/// got an active assignment of the package, which the full path turns into a failed
/// delivery) or denial.
fn decide_seen(
    c: &mut dyn Conn,
    now: DateTime<Utc>,
    seen: Seen,
    stage_id: &str,
    approver: &str,
    review: Review,
) -> Result<()> {
    let Seen { mut facts, approver_name, subject, .. } = seen;
    let outcome = decide_with(
        c,
        now,
        &mut facts,
        stage_id,
        Decision {
            approver_id: approver,
            approver_name,
            approve: review.approve,
            justification: review.justification.clone(),
        },
    )?;
    let DecisionFacts { approval, mut request, policy, .. } = facts;
    if request.state != RequestState::PendingApproval {
        return Ok(());
    }
    let detail = json!({ "approvalId": approval.id, "stageId": stage_id, "justification": review.justification });
    let deliverable = match (&subject, &policy) {
        (Some(subject), Some(policy)) if outcome == Outcome::Approved => {
            let active = c.query_one(
                "SELECT 1 FROM assignments WHERE target_subject_id = ? AND access_package_id = ? AND active = 1",
                &[Value::from(&subject.id), Value::from(&request.access_package_id)],
            )?;
            active.is_none().then_some(delivery::Checked { policy, subject })
        }
        _ => None,
    };
    continue_after_with(c, now, &mut request, outcome, approver, detail, deliverable.as_ref())
}

fn stage_of(job: &Job) -> usize {
    job.payload.get("stage").and_then(|v| v.as_u64()).map(|v| v as usize).unwrap_or(0)
}

/// Job `approval.timeout`: the stage in progress was not decided in time; the request is
/// denied with status `Expired` and cannot be approved any more.
pub fn timeout_job(ctx: &JobContext, c: &mut dyn Conn, job: &Job) -> Result<()> {
    let index = stage_of(job);
    if !on_timeout(c, ctx.now, &job.entity_id, index)? {
        return Ok(());
    }
    jobs::cancel(c, JOB_ESCALATE, &job.entity_id)?;
    jobs::cancel(c, JOB_REMIND, &job.entity_id)?;
    if let (Some(approval), Some(r)) =
        (repo::get::<Approval>(c, &job.entity_id)?, repo::get::<AssignmentRequest>(c, &job.entity_id)?)
    {
        crate::notify::approval_expired(c, ctx.now, &r, &approval, index)?;
    }
    audit::record(
        c,
        AuditEvent {
            at: ctx.now,
            actor_id: None,
            entity_type: "approval",
            entity_id: &job.entity_id,
            action: "stageTimedOut",
            detail: json!({ "stage": index + 1 }),
        },
    )?;
    if let Some(mut r) = pending_request(c, &job.entity_id)? {
        delivery::set_state_by(
            c,
            ctx.now,
            &mut r,
            RequestState::Denied,
            RequestStatus::Expired,
            None,
            json!({ "reason": format!("Stage {} was not decided before its deadline (durationBeforeAutomaticDenial).", index + 1) }),
        )?;
    }
    Ok(())
}

/// Job `approval.escalate`: escalation approvers may now decide; the request shows
/// `PendingApprovalEscalated`.
pub fn escalate_job(ctx: &JobContext, c: &mut dyn Conn, job: &Job) -> Result<()> {
    if !on_escalate(c, ctx.now, &job.entity_id, stage_of(job))? {
        return Ok(());
    }
    if let Some(mut r) = pending_request(c, &job.entity_id)? {
        delivery::set_state_by(
            c,
            ctx.now,
            &mut r,
            RequestState::PendingApproval,
            RequestStatus::PendingApprovalEscalated,
            None,
            json!({ "stage": stage_of(job) + 1 }),
        )?;
    }
    Ok(())
}

/// Job `approval.remind`: halfway to a stage's deadline, its approvers who have not
/// decided are reminded (escalation approvers too once it has escalated).
pub fn remind_job(ctx: &JobContext, c: &mut dyn Conn, job: &Job) -> Result<()> {
    let index = stage_of(job);
    let Some(approval) = repo::get::<Approval>(c, &job.entity_id)? else { return Ok(()) };
    let waiting = approval.state == ApprovalState::Pending
        && approval.stages.get(index).is_some_and(|s| s.status == StageStatus::InProgress);
    if !waiting {
        return Ok(());
    }
    let Some(r) = pending_request(c, &job.entity_id)? else { return Ok(()) };
    crate::notify::approval_reminder(c, ctx.now, &r, &approval, index)
}

/// Job kinds handled here, for the runner's table.
pub fn handler(kind: &str) -> Option<jobs::Handler> {
    match kind {
        JOB_TIMEOUT => Some(timeout_job),
        JOB_ESCALATE => Some(escalate_job),
        JOB_REMIND => Some(remind_job),
        _ => None,
    }
}
