//! Access reviews for reviewers: the runs with items waiting for the signed-in person, and
//! one run's items with their recommendations, decided one by one or by accepting the
//! recommendations.

use super::session::Signed;
use super::views::{self, Section, badge, when};
use super::{Form, check_csrf, see_other, viewer};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::listing::ListOptions;
use grantry_core::reviews::RecordInput;
use grantry_domain::model::{Decision, ReviewDecision};
use grantry_domain::{Error, ErrorKind};
use maud::html;
use std::collections::{BTreeMap, HashMap};

/// Most items listed on one page.
const ITEMS: usize = 200;

/// `GET /reviews`: the runs in which the person reviews something.
pub async fn inbox(State(state): State<AppState>, signed: Signed) -> Response {
    let options = ListOptions { size: ITEMS, ..Default::default() };
    let items = match grantry_core::reviews::list_my_decisions_everywhere(&state.app, &signed.caller, options).await {
        Ok(l) => l.items,
        Err(e) => return views::error_page(&state, Some(&viewer(&signed)), &e),
    };
    // (definition, instance) → (package, undecided, all)
    let mut runs: BTreeMap<(String, String), (String, usize, usize)> = BTreeMap::new();
    for it in &items {
        let e = runs
            .entry((it.definition_id.clone(), it.instance_id.clone()))
            .or_insert_with(|| (it.access_package_display_name.clone(), 0, 0));
        if it.decision == Decision::NotReviewed {
            e.1 += 1;
        }
        e.2 += 1;
    }
    let mut instances = HashMap::new();
    for (d, i) in runs.keys() {
        if let Ok(inst) = grantry_core::reviews::get_instance(&state.app, &signed.caller, d, i).await {
            instances.insert(i.clone(), inst);
        }
    }
    let now = state.app.now();
    let body = html! {
        p.muted { "Access reviews ask you to confirm whether people still need the access they have." }
        @if runs.is_empty() {
            div.empty { "You have no access to review." }
        } @else {
            table {
                thead { tr { th scope="col" { "Access package" } th scope="col" { "To decide" } th scope="col" { "Status" } th scope="col" { "Ends" } } }
                tbody {
                    @for ((d, i), (package, open, all)) in &runs {
                        tr {
                            td { a href={"/reviews/" (d) "/instances/" (i)} { (package) } }
                            td { (open) " of " (all) }
                            td { @if let Some(inst) = instances.get(i) { (badge(inst.status.as_str())) } }
                            td { @if let Some(inst) = instances.get(i) { (when(inst.end_date_time, now)) } }
                        }
                    }
                }
            }
        }
    };
    views::respond(
        StatusCode::OK,
        views::page(&state, Some(&viewer(&signed)), Section::Reviews, "Access reviews", body),
    )
}

async fn render(
    state: &AppState,
    signed: &Signed,
    definition: &str,
    instance: &str,
    notice: Option<String>,
    error: Option<(&str, &Error)>,
) -> Response {
    let inst = match grantry_core::reviews::get_instance(&state.app, &signed.caller, definition, instance).await {
        Ok(i) => i,
        Err(e) => return views::error_page(state, Some(&viewer(signed)), &e),
    };
    let options = ListOptions { size: ITEMS, ..Default::default() };
    let items: Vec<ReviewDecision> = match grantry_core::reviews::list_decisions(
        &state.app,
        &signed.caller,
        grantry_core::reviews::ItemsAt::run(definition, instance),
        options,
        true,
    )
    .await
    {
        Ok((_, l)) => l.items,
        Err(e) => return views::error_page(state, Some(&viewer(signed)), &e),
    };
    let now = state.app.now();
    let open = inst.status == grantry_domain::model::InstanceStatus::InProgress;
    let justification_required = inst.settings.justification_required_on_approval;
    let title = items
        .first()
        .map(|i| format!("Review of {}", i.access_package_display_name))
        .unwrap_or_else(|| "Access review".into());
    let body = html! {
        @if let Some(n) = &notice { p.notice role="status" { (n) } }
        @if let Some((_, e)) = &error { p.error role="alert" { (e.message) } }
        dl.facts {
            dt { "Status" } dd { (badge(inst.status.as_str())) }
            dt { "Started" } dd { (when(inst.start_date_time, now)) }
            dt { "Ends" } dd { (when(inst.end_date_time, now)) }
        }
        @if open && items.iter().any(|i| i.decision == Decision::NotReviewed) {
            form method="post" action={"/reviews/" (definition) "/instances/" (instance) "/accept"} {
                input type="hidden" name="csrf" value=(signed.session.csrf);
                button type="submit" { "Accept all recommendations" }
            }
        }
        @if items.is_empty() { div.empty { "Nothing in this review is yours to decide." } }
        @for it in &items {
            section.card {
                h2 { (it.principal.display_name) " " span.muted { "(" (it.principal.user_principal_name) ")" } }
                dl.facts {
                    dt { "Access" } dd { (it.access_package_display_name) " — " (it.policy_display_name) }
                    dt { "Recommendation" } dd { (badge(it.recommendation.as_str())) " " span.muted { (it.recommendation_basis) } }
                    dt { "Decision" } dd {
                        (badge(it.decision.as_str()))
                        @if let Some(by) = &it.reviewed_by { " by " (by.display_name) }
                        @if let Some(j) = it.justification.as_ref().filter(|j| !j.is_empty()) { ": “" (j) "”" }
                    }
                }
                @if open {
                    @let item_error = error.filter(|(id, _)| *id == it.id.as_str()).map(|(_, e)| e);
                    form.stack method="post" action={"/reviews/" (definition) "/instances/" (instance) "/decisions/" (it.id)} {
                        input type="hidden" name="csrf" value=(signed.session.csrf);
                        fieldset {
                            legend { "Does " (it.principal.display_name) " still need this access?" }
                            @for (value, label) in [("Approve", "Yes, approve"), ("Deny", "No, deny"), ("DontKnow", "I don't know")] {
                                @let id = format!("{}_{value}", it.id);
                                div.choice {
                                    input #(id) type="radio" name="decision" value=(value) checked[it.decision.as_str() == value] required;
                                    " " label for=(id) { (label) }
                                }
                            }
                        }
                        div.field {
                            @let jid = format!("{}_justification", it.id);
                            label for=(jid) { "Justification" @if justification_required { " " span.hint { "(required to approve)" } } }
                            textarea #(jid) name="justification" aria-invalid=[item_error.map(|_| "true")] { (it.justification.clone().unwrap_or_default()) }
                            @if let Some(e) = item_error { p.field-error { (e.message) } }
                        }
                        div { button.primary type="submit" { "Save decision" } }
                    }
                }
            }
        }
        p { a href="/reviews" { "All my reviews" } }
    };
    let status = error.map(|(_, e)| crate::error::status_of(e.kind)).unwrap_or(StatusCode::OK);
    views::respond(status, views::page(state, Some(&viewer(signed)), Section::Reviews, &title, body))
}

/// `GET /reviews/{definitionId}/instances/{instanceId}`.
pub async fn instance(
    State(state): State<AppState>,
    signed: Signed,
    Path((definition, instance)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let notice = q
        .get("saved")
        .map(|_| "Your decision was saved.".to_string())
        .or(q.get("accepted").map(|n| format!("Accepted the recommendation for {n} item(s).")));
    render(&state, &signed, &definition, &instance, notice, None).await
}

/// `POST …/decisions/{itemId}`: one decision.
pub async fn decide(
    State(state): State<AppState>,
    signed: Signed,
    Path((definition, instance, item)): Path<(String, String, String)>,
    form: Form,
) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let decision = match form.get("decision") {
        Some("Approve") => Decision::Approve,
        Some("Deny") => Decision::Deny,
        Some("DontKnow") => Decision::DontKnow,
        _ => {
            let e = Error::bad_request("DecisionRequired", "Choose approve, deny or don't know.");
            return render(&state, &signed, &definition, &instance, None, Some((&item, &e))).await;
        }
    };
    let input = RecordInput {
        decision,
        justification: form.get("justification").map(str::trim).filter(|j| !j.is_empty()).map(str::to_string),
        principal_id: None,
        resource_id: None,
    };
    match grantry_core::reviews::record_decision(
        &state.app,
        &signed.caller,
        grantry_core::reviews::ItemsAt::run(&definition, &instance),
        &item,
        input,
    )
    .await
    {
        Ok(()) => see_other(&format!("/reviews/{definition}/instances/{instance}?saved=1")),
        Err(e) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Conflict) => {
            render(&state, &signed, &definition, &instance, None, Some((&item, &e))).await
        }
        Err(e) => views::error_page(&state, Some(&viewer(&signed)), &e),
    }
}

/// `POST …/accept`: every undecided item of the person's takes its recommendation.
pub async fn accept(
    State(state): State<AppState>,
    signed: Signed,
    Path((definition, instance)): Path<(String, String)>,
    form: Form,
) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    match grantry_core::reviews::accept_recommendations(&state.app, &signed.caller, &definition, &instance).await {
        Ok(n) => see_other(&format!("/reviews/{definition}/instances/{instance}?accepted={n}")),
        Err(e) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Conflict) => {
            render(&state, &signed, &definition, &instance, None, Some(("", &e))).await
        }
        Err(e) => views::error_page(&state, Some(&viewer(&signed)), &e),
    }
}
