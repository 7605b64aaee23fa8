//! The approvals inbox: requests waiting for the signed-in approver, each with the
//! requestor's answers and justification, the decision form, and past decisions.

use super::access::{package_names, policy_of, stages_view, subject_name, subjects};
use super::session::Signed;
use super::views::{self, Section, badge, when};
use super::{Form, check_csrf, see_other, viewer};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::PageRequest;
use grantry_core::approvals::Review;
use grantry_domain::model::{Approval, AssignmentRequest};
use grantry_domain::{Error, ErrorKind};
use maud::html;
use std::collections::HashMap;

/// `GET /approvals`.
pub async fn inbox(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let pending = match grantry_core::approvals::list_awaiting(
        &state.app,
        &signed.caller,
        PageRequest { after_seq: q.get("after").and_then(|a| a.parse().ok()), size: 50 },
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return views::error_page(&state, Some(&viewer(&signed)), &e),
    };
    let decided = grantry_core::approvals::decided_by_caller(&state.app, &signed.caller, 20).await.unwrap_or_default();
    let mut rows: Vec<(Approval, AssignmentRequest)> = Vec::new();
    for a in pending.items.iter().chain(decided.iter()) {
        if let Ok(pair) = grantry_core::approvals::approval_with_request(&state.app, &signed.caller, &a.id).await {
            rows.push(pair);
        }
    }
    let names = package_names(&state, rows.iter().map(|(_, r)| r.access_package_id.clone()).collect()).await;
    let people = subjects(
        &state,
        rows.iter()
            .flat_map(|(_, r)| std::iter::once(r.target_subject_id.clone()).chain(r.requestor_subject_id.clone()))
            .collect(),
    )
    .await;
    let now = state.app.now();
    let pending_ids: Vec<&str> = pending.items.iter().map(|a| a.id.as_str()).collect();
    let (waiting, past): (Vec<_>, Vec<_>) = rows.iter().partition(|(a, _)| pending_ids.contains(&a.id.as_str()));
    let package = |r: &AssignmentRequest| {
        names.get(&r.access_package_id).map(|p| p.display_name.clone()).unwrap_or_else(|| "(removed package)".into())
    };
    let body = html! {
        @if q.contains_key("decided") { p.notice role="status" { "Your decision was recorded." } }
        h2 { "Waiting for you" }
        @if waiting.is_empty() {
            div.empty { "No request is waiting for your approval." }
        } @else {
            table {
                thead { tr { th scope="col" { "Package" } th scope="col" { "For" } th scope="col" { "Requested by" } th scope="col" { "Submitted" } th scope="col" { "Stage" } } }
                tbody {
                    @for (a, r) in &waiting {
                        tr {
                            td { a href={"/approvals/" (a.id)} { (package(r)) } }
                            td { (subject_name(&people, Some(&r.target_subject_id))) }
                            td { (subject_name(&people, r.requestor_subject_id.as_deref())) }
                            td { (when(r.created_date_time, now)) }
                            td {
                                @if let Some(s) = a.current_stage() {
                                    (s.index + 1) " of " (a.stages.len())
                                    @if s.escalated { " " span.badge { "Escalated" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(n) = pending.next_after_seq() { p.pager { a href={"/approvals?after=" (n)} { "More" } } }
        h2 { "Your past decisions" }
        @if past.is_empty() { p.muted { "You have not decided any request yet." } }
        @else {
            ul {
                @for (a, r) in &past {
                    @let mine = a.stages.iter().find(|s| s.reviewed_by.as_ref().is_some_and(|b| b.id == signed.session.user_id));
                    li {
                        a href={"/approvals/" (a.id)} { (package(r)) } " for " (subject_name(&people, Some(&r.target_subject_id))) ": "
                        @if let Some(s) = mine {
                            (badge(s.review_result.as_str()))
                            @if let Some(at) = s.reviewed_date_time { " " (when(at, now)) }
                        }
                    }
                }
            }
        }
    };
    views::respond(StatusCode::OK, views::page(&state, Some(&viewer(&signed)), Section::Approvals, "Approvals", body))
}

async fn render(state: &AppState, signed: &Signed, id: &str, error: Option<&Error>, justification: &str) -> Response {
    let (approval, r) = match grantry_core::approvals::approval_with_request(&state.app, &signed.caller, id).await {
        Ok(x) => x,
        Err(e) => return views::error_page(state, Some(&viewer(signed)), &e),
    };
    let package = package_names(state, vec![r.access_package_id.clone()]).await.remove(&r.access_package_id);
    let policy = policy_of(state, r.policy_id.as_deref()).await;
    let people =
        subjects(state, std::iter::once(r.target_subject_id.clone()).chain(r.requestor_subject_id.clone()).collect())
            .await;
    let now = state.app.now();
    let stage = approval.current_stage().filter(|s| s.may_decide(&signed.session.user_id));
    let justification_required = stage
        .and_then(|s| policy.as_ref().and_then(|p| p.approval.stages.get(s.index)))
        .is_some_and(|s| s.is_approver_justification_required);
    let title = format!("Approve {}", package.as_ref().map(|p| p.display_name.as_str()).unwrap_or("a request"));
    let body = html! {
        @if let Some(e) = error { p.error role="alert" { (e.message) } }
        dl.facts {
            dt { "For" } dd { (subject_name(&people, Some(&r.target_subject_id))) }
            dt { "Requested by" } dd { (subject_name(&people, r.requestor_subject_id.as_deref())) }
            dt { "Submitted" } dd { (when(r.created_date_time, now)) }
            dt { "Request" } dd { (badge(r.state.v1())) " " span.muted { (r.status) } }
            dt { "Justification" } dd { (r.justification.clone().unwrap_or_else(|| "—".into())) }
        }
        h2 { "Answers" }
        @if r.answers.is_empty() { p.muted { "No questions were asked." } }
        @else {
            dl.facts {
                @for a in &r.answers {
                    @let question = policy.as_ref().and_then(|p| p.questions.iter().find(|q| q.id == a.question_id)).and_then(|q| q.text.clone());
                    dt { (question.unwrap_or_else(|| a.question_id.clone())) }
                    dd { (a.display_value.clone().or(a.value.clone()).unwrap_or_default()) }
                }
            }
        }
        h2 { "Stages" }
        (stages_view(&approval, now))
        @if let Some(s) = stage {
            h2 { "Your decision" }
            form.stack method="post" action={"/approvals/" (approval.id)} {
                input type="hidden" name="csrf" value=(signed.session.csrf);
                input type="hidden" name="stage" value=(s.id);
                fieldset {
                    legend { "Decision" }
                    div.choice { input #approve type="radio" name="decision" value="approve" required; " " label for="approve" { "Approve" } }
                    div.choice { input #deny type="radio" name="decision" value="deny"; " " label for="deny" { "Deny" } }
                }
                div.field {
                    label for="justification" { "Justification" @if justification_required { " " span.hint { "(required)" } } }
                    textarea #justification name="justification" required[justification_required] { (justification) }
                }
                div { button.primary type="submit" { "Submit decision" } }
            }
        } @else {
            p.muted { "There is nothing for you to decide on this request now." }
        }
        p { a href="/approvals" { "Back to approvals" } }
    };
    let status = error.map(|e| crate::error::status_of(e.kind)).unwrap_or(StatusCode::OK);
    views::respond(status, views::page(state, Some(&viewer(signed)), Section::Approvals, &title, body))
}

/// `GET /approvals/{id}`.
pub async fn approval(State(state): State<AppState>, signed: Signed, Path(id): Path<String>) -> Response {
    render(&state, &signed, &id, None, "").await
}

/// `POST /approvals/{id}`: approve or deny the stage in progress.
pub async fn decide(State(state): State<AppState>, signed: Signed, Path(id): Path<String>, form: Form) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let justification = form.get("justification").unwrap_or("").trim().to_string();
    let approve = match form.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            let e = Error::bad_request("DecisionRequired", "Choose Approve or Deny.");
            return render(&state, &signed, &id, Some(&e), &justification).await;
        }
    };
    let stage = form.get("stage").unwrap_or_default().to_string();
    let review = Review { approve, justification: (!justification.is_empty()).then(|| justification.clone()) };
    match grantry_core::approvals::review_stage(&state.app, &signed.caller, &id, &stage, review).await {
        Ok(()) => see_other("/approvals?decided=1"),
        Err(e) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Conflict) => {
            render(&state, &signed, &id, Some(&e), &justification).await
        }
        Err(e) => views::error_page(&state, Some(&viewer(&signed)), &e),
    }
}
