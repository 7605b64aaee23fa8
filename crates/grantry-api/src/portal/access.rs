//! My Access: the packages a person may request, the request form with the policy's
//! questions, their requests (status, approval stages, history, cancel) and their access.

use super::session::Signed;
use super::views::{self, Section, badge, when};
use super::{Form, check_csrf, see_other, viewer};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::PageRequest;
use grantry_core::listing::ListOptions;
use grantry_core::requests::Mine;
use grantry_domain::enums::{RequestState, RequestType};
use grantry_domain::model::{
    AccessPackage, Answer, AssignmentRequest, Expiration, NewRequest, Policy, Question, QuestionKind, Schedule,
    Subject, TargetRef, User,
};
use grantry_domain::{Error, ErrorKind};
use grantry_store::query::Cursor;
use maud::{Markup, html};
use std::collections::HashMap;

const PAGE: usize = 25;

fn after_of(q: &HashMap<String, String>) -> Option<i64> {
    q.get("after").and_then(|a| a.parse().ok())
}

fn next_seq(next: &Option<Cursor>) -> Option<i64> {
    match next {
        Some(Cursor::Seq(n)) => Some(*n),
        Some(Cursor::Keys(_, n)) => Some(*n),
        None => None,
    }
}

pub(super) async fn package_names(state: &AppState, ids: Vec<String>) -> HashMap<String, AccessPackage> {
    grantry_core::packages::packages_by_ids(&state.app, ids)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect()
}

pub(super) async fn subjects(state: &AppState, ids: Vec<String>) -> HashMap<String, Subject> {
    grantry_core::listing::find_in::<Subject>(&state.app, "id", ids)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect()
}

pub(super) fn subject_name(subjects: &HashMap<String, Subject>, id: Option<&str>) -> String {
    id.and_then(|id| subjects.get(id))
        .map(|s| {
            s.display_name.clone().or(s.principal_name.clone()).or(s.email.clone()).unwrap_or_else(|| s.id.clone())
        })
        .unwrap_or_else(|| "—".into())
}

fn page(
    state: &AppState,
    signed: &Signed,
    section: Section,
    title: &str,
    status: StatusCode,
    body: Markup,
) -> Response {
    views::respond(status, views::page(state, Some(&viewer(signed)), section, title, body))
}

/// `GET /access`: packages the person may request (their policies' scope decides).
pub async fn catalog(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let search = q.get("q").map(|s| s.trim().to_lowercase()).filter(|s| !s.is_empty());
    let mut after = after_of(&q);
    let mut shown: Vec<AccessPackage> = Vec::new();
    let mut next = None;
    // A search walks the requestable packages in order until a page of matches is found.
    loop {
        let page = match grantry_core::assignments::requestable_packages(
            &state.app,
            &signed.caller,
            PageRequest { after_seq: after, size: if search.is_some() { 200 } else { PAGE } },
        )
        .await
        {
            Ok(p) => p,
            Err(e) => return views::error_page(&state, Some(&viewer(&signed)), &e),
        };
        let page_next = page.next_after_seq();
        let Some(term) = &search else {
            shown = page.items;
            next = page_next;
            break;
        };
        shown.extend(page.items.into_iter().filter(|p| {
            p.display_name.to_lowercase().contains(term)
                || p.description.as_deref().is_some_and(|d| d.to_lowercase().contains(term))
        }));
        if shown.len() >= PAGE || page_next.is_none() {
            break;
        }
        after = page_next;
    }
    let body = html! {
        p.muted { "Access packages you can request. Each bundles the groups and applications a task needs." }
        form.search role="search" method="get" action="/access" {
            label.visually-hidden for="q" { "Search packages" }
            input #q type="search" name="q" placeholder="Search by name or description" value=[q.get("q")];
            button type="submit" { "Search" }
        }
        @if shown.is_empty() {
            div.empty {
                @if search.is_some() { "No package you can request matches your search." }
                @else { "There is nothing you can request yet. Packages appear here when a policy lets you request them; ask your administrator." }
            }
        } @else {
            ul.cards {
                @for p in &shown {
                    li.card {
                        h2 { (p.display_name) }
                        @if let Some(d) = &p.description { p { (d) } }
                        a.button.primary href={"/access/packages/" (p.id)} aria-label={"Request " (p.display_name)} { "Request" }
                    }
                }
            }
        }
        @if let Some(n) = next {
            p.pager { a href={"/access?after=" (n)} { "More packages" } }
        }
    };
    page(&state, &signed, Section::Access, "Request access", StatusCode::OK, body)
}

/// Field errors of a refused request, by form field name.
type FieldErrors = HashMap<String, String>;

fn field_name(q: &Question) -> String {
    format!("q_{}", q.id)
}

fn question_form(q: &Question, values: &[&str], error: Option<&String>) -> Markup {
    let name = field_name(q);
    let hint_id = format!("{name}_hint");
    let err_id = format!("{name}_error");
    let text = q.text.clone().unwrap_or_default();
    let described = if error.is_some() { format!("{hint_id} {err_id}") } else { hint_id.clone() };
    html! {
        @match &q.kind {
            QuestionKind::MultipleChoice { choices, is_multiple_selection_allowed } => {
                fieldset aria-describedby=(described) {
                    legend { (text) @if q.is_required { " " span.hint { "(required)" } } }
                    span.hint #(hint_id) { @if *is_multiple_selection_allowed { "Choose one or more." } @else { "Choose one." } }
                    @for (i, ch) in choices.iter().enumerate() {
                        @let id = format!("{name}_{i}");
                        div.choice {
                            input #(id) type=(if *is_multiple_selection_allowed { "checkbox" } else { "radio" }) name=(name)
                                value=(ch.actual_value) checked[values.contains(&ch.actual_value.as_str())];
                            " "
                            label for=(id) { (ch.text.clone().unwrap_or_else(|| ch.actual_value.clone())) }
                        }
                    }
                    @if let Some(e) = error { p.field-error #(err_id) { (e) } }
                }
            }
            QuestionKind::TextInput { is_single_line_question, regex_pattern } => {
                div.field {
                    label for=(name) { (text) @if q.is_required { " " span.hint { "(required)" } } }
                    span.hint #(hint_id) {
                        @if let Some(p) = regex_pattern.as_ref().filter(|p| !p.is_empty()) { "Must match the pattern " code { (p) } "." }
                    }
                    @let value = values.first().copied().unwrap_or("");
                    @if *is_single_line_question {
                        input #(name) type="text" name=(name) value=(value) required[q.is_required]
                            aria-invalid=[error.map(|_| "true")] aria-describedby=(described);
                    } @else {
                        textarea #(name) name=(name) required[q.is_required]
                            aria-invalid=[error.map(|_| "true")] aria-describedby=(described) { (value) }
                    }
                    @if let Some(e) = error { p.field-error #(err_id) { (e) } }
                }
            }
        }
    }
}

pub(super) fn describe_policy(p: &Policy) -> Markup {
    let stages = p.approval.stages.len();
    html! {
        dl.facts {
            dt { "Approval" }
            dd {
                @if !p.approval.is_approval_required_for_add || stages == 0 { "Not needed: access is granted at once." }
                @else if stages == 1 { "One approval stage." }
                @else { (stages) " approval stages, one after another." }
            }
            dt { "Access lasts" }
            dd {
                @match (&p.expiration.duration, &p.expiration.end_date_time) {
                    (Some(d), _) => { (human_duration(*d)) " after it is granted" }
                    (None, Some(end)) => { "until " (end.format("%Y-%m-%d").to_string()) }
                    _ => { "until it is removed" }
                }
            }
        }
    }
}

/// `30 days`, `12 hours`; other lengths as ISO 8601 (`PT90M`).
fn human_duration(d: chrono::Duration) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if d.num_seconds() > 0 && d.num_seconds() % 86_400 == 0 {
        plural(d.num_days(), "day")
    } else if d.num_seconds() > 0 && d.num_seconds() % 3600 == 0 {
        plural(d.num_hours(), "hour")
    } else {
        grantry_domain::duration::format(d)
    }
}

#[allow(clippy::too_many_arguments)]
fn render_form(
    state: &AppState,
    signed: &Signed,
    package: &AccessPackage,
    policies: &[Policy],
    policy: &Policy,
    reports: &[User],
    values: &Form,
    errors: &FieldErrors,
    general: Option<&str>,
    status: StatusCode,
) -> Response {
    let mut questions = policy.questions.clone();
    questions.sort_by_key(|q| q.sequence);
    let justification_required = policy.approval.is_requestor_justification_required;
    let body = html! {
        @if let Some(d) = &package.description { p { (d) } }
        @if policies.len() > 1 {
            nav aria-label="Policies" {
                p { "This package can be requested under several policies:" }
                ul {
                    @for p in policies {
                        li {
                            @if p.id == policy.id { strong { (p.display_name) } " (chosen)" }
                            @else { a href={"/access/packages/" (package.id) "?policy=" (p.id)} { (p.display_name) } }
                        }
                    }
                }
            }
        }
        h2 { (policy.display_name) }
        @if let Some(d) = policy.description.as_ref().filter(|d| !d.is_empty()) { p.muted { (d) } }
        (describe_policy(policy))
        @if let Some(g) = general { p.error role="alert" { (g) } }
        form.stack method="post" action={"/access/packages/" (package.id)} novalidate {
            input type="hidden" name="csrf" value=(signed.session.csrf);
            input type="hidden" name="policy" value=(policy.id);
            @if !reports.is_empty() {
                div.field {
                    label for="for" { "Request for" }
                    span.hint { "The policy lets managers request access for their direct reports." }
                    select #for name="for" aria-invalid=[errors.get("for").map(|_| "true")] {
                        option value="" { "Myself" }
                        @for u in reports { option value=(u.id) selected[values.get("for") == Some(u.id.as_str())] { (u.display_name) } }
                    }
                    @if let Some(e) = errors.get("for") { p.field-error { (e) } }
                }
            }
            @for q in &questions {
                (question_form(q, &values.all(&field_name(q)), errors.get(&field_name(q))))
            }
            div.field {
                label for="justification" { "Why do you need this access?" @if justification_required { " " span.hint { "(required)" } } }
                textarea #justification name="justification" required[justification_required]
                    aria-invalid=[errors.get("justification").map(|_| "true")] { (values.get("justification").unwrap_or("")) }
                @if let Some(e) = errors.get("justification") { p.field-error { (e) } }
            }
            @if policy.requestor_settings.allow_custom_assignment_schedule {
                div.field {
                    label for="start" { "Start on " span.hint { "(optional; today when empty)" } }
                    input #start type="date" name="start" value=(values.get("start").unwrap_or(""))
                        aria-invalid=[errors.get("start").map(|_| "true")];
                    @if let Some(e) = errors.get("start") { p.field-error { (e) } }
                }
                div.field {
                    label for="end" { "End on " span.hint { "(optional; when the policy's expiration says when empty)" } }
                    input #end type="date" name="end" value=(values.get("end").unwrap_or(""))
                        aria-invalid=[errors.get("end").map(|_| "true")];
                    @if let Some(e) = errors.get("end") { p.field-error { (e) } }
                }
            }
            div.row {
                button.primary type="submit" { "Submit request" }
                a href="/access" { "Cancel" }
            }
        }
    };
    page(state, signed, Section::Access, &format!("Request {}", package.display_name), status, body)
}

/// The package and the policies under which the person may request it.
async fn requestable(state: &AppState, signed: &Signed, id: &str) -> Result<(AccessPackage, Vec<Policy>), Response> {
    let policies = grantry_core::assignments::applicable_policy_requirements(&state.app, &signed.caller, id)
        .await
        .map_err(|e| views::error_page(state, Some(&viewer(signed)), &e))?;
    let package = package_names(state, vec![grantry_domain::ids::normalize(id)]).await.into_values().next();
    match package {
        Some(p) if !policies.is_empty() => Ok((p, policies)),
        // Not requestable (or not there): the same answer, so nothing leaks.
        _ => Err(views::error_page(
            state,
            Some(&viewer(signed)),
            &Error::not_found("accessPackage", id).with_message_suffix(),
        )),
    }
}

trait Suffix {
    fn with_message_suffix(self) -> Self;
}

impl Suffix for Error {
    fn with_message_suffix(mut self) -> Self {
        self.message = "There is no access package you can request with this id.".into();
        self
    }
}

/// The person's direct reports, when `policy` lets managers request for them.
async fn reports_for(state: &AppState, signed: &Signed, policy: &Policy) -> Vec<User> {
    let Some(me) = signed.caller.user_id() else { return Vec::new() };
    if !policy.requestor_settings.enable_on_behalf_requestors_to_add_access {
        return Vec::new();
    }
    grantry_core::directory::direct_reports(&state.app, &signed.caller, me, PageRequest { after_seq: None, size: 200 })
        .await
        .map(|p| p.items)
        .unwrap_or_default()
}

/// `GET /access/packages/{id}`: the request form.
pub async fn request_form(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (package, policies) = match requestable(&state, &signed, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let policy = q
        .get("policy")
        .and_then(|p| policies.iter().find(|x| x.id.eq_ignore_ascii_case(p)))
        .unwrap_or(&policies[0])
        .clone();
    let reports = reports_for(&state, &signed, &policy).await;
    render_form(
        &state,
        &signed,
        &package,
        &policies,
        &policy,
        &reports,
        &Form(Vec::new()),
        &HashMap::new(),
        None,
        StatusCode::OK,
    )
}

/// The answers of the form, in the policy's question order.
fn answers_of(policy: &Policy, form: &Form) -> Vec<Answer> {
    let mut out = Vec::new();
    for q in &policy.questions {
        let values: Vec<&str> = form.all(&field_name(q)).into_iter().map(str::trim).filter(|v| !v.is_empty()).collect();
        if values.is_empty() {
            continue;
        }
        let (question_type, display) = match &q.kind {
            QuestionKind::MultipleChoice { choices, .. } => (
                "#microsoft.graph.accessPackageMultipleChoiceQuestion",
                values
                    .iter()
                    .map(|v| {
                        choices
                            .iter()
                            .find(|c| c.actual_value == *v)
                            .and_then(|c| c.text.clone())
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            QuestionKind::TextInput { .. } => ("#microsoft.graph.accessPackageTextInputQuestion", values.join(",")),
        };
        out.push(Answer {
            question_id: q.id.clone(),
            question_type: Some(question_type.into()),
            value: Some(values.join(",")),
            display_value: Some(display),
        });
    }
    out
}

/// Places an API refusal next to the field it is about.
fn place_error(e: &Error, policy: &Policy, answers: &[Answer]) -> (FieldErrors, Option<String>) {
    let mut errors = HashMap::new();
    let target = e.target.clone().unwrap_or_default();
    let question = if let Some(i) = target.strip_prefix("answers[").and_then(|t| t.strip_suffix(']')) {
        i.parse::<usize>().ok().and_then(|i| answers.get(i)).map(|a| a.question_id.clone())
    } else if target == "answers" {
        policy.questions.iter().find(|q| e.message.contains(&q.id)).map(|q| q.id.clone())
    } else {
        None
    };
    let friendly = |q: &Question| match (e.code.as_str(), &q.kind) {
        ("AnswerRequired", _) => "Answer this question.".to_string(),
        ("AnswerInvalid", QuestionKind::TextInput { regex_pattern: Some(p), .. }) => {
            format!("This answer must match the pattern {p}.")
        }
        _ => e.message.clone(),
    };
    match question.and_then(|id| policy.questions.iter().find(|q| q.id == id)) {
        Some(q) => {
            errors.insert(field_name(q), friendly(q));
            (errors, Some("Some answers need attention.".into()))
        }
        None if target == "justification" || e.message.to_lowercase().contains("justification") => {
            errors.insert("justification".into(), e.message.clone());
            (errors, Some("The request needs a justification.".into()))
        }
        None if target.starts_with("schedule") => {
            let field = if target.contains("expiration") || target.contains("endDateTime") { "end" } else { "start" };
            errors.insert(field.into(), e.message.clone());
            (errors, Some(e.message.clone()))
        }
        None => (errors, Some(e.message.clone())),
    }
}

/// `POST /access/packages/{id}`: submits the request (the API's validation decides).
pub async fn submit(State(state): State<AppState>, signed: Signed, Path(id): Path<String>, form: Form) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let (package, policies) = match requestable(&state, &signed, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(policy) = form.get("policy").and_then(|p| policies.iter().find(|x| x.id.eq_ignore_ascii_case(p))).cloned()
    else {
        return views::error_page(
            &state,
            Some(&viewer(&signed)),
            &Error::bad_request("PolicyNotFound", "Choose one of the policies this package offers you."),
        );
    };
    let answers = answers_of(&policy, &form);
    let justification = form.get("justification").map(str::trim).filter(|j| !j.is_empty()).map(str::to_string);
    let reports = reports_for(&state, &signed, &policy).await;
    let refuse = |errors: FieldErrors, general: &str, status: StatusCode| {
        render_form(&state, &signed, &package, &policies, &policy, &reports, &form, &errors, Some(general), status)
    };
    let schedule = match schedule_of(&form) {
        Ok(s) => s,
        Err((field, message)) => {
            let errors = HashMap::from([(field.to_string(), "Enter a date as YYYY-MM-DD.".to_string())]);
            return refuse(errors, message, StatusCode::BAD_REQUEST);
        }
    };
    if policy.approval.is_requestor_justification_required && justification.is_none() {
        let errors = HashMap::from([("justification".to_string(), "Say why you need this access.".to_string())]);
        return refuse(errors, "The request needs a justification.", StatusCode::BAD_REQUEST);
    }
    // For a direct report: only one the form offered (the API decides whether the policy
    // lets this person request for them).
    let target = match form.get("for").map(str::trim).filter(|f| !f.is_empty()) {
        None => None,
        Some(f) => match reports.iter().find(|u| u.id.eq_ignore_ascii_case(f)) {
            Some(u) => Some(TargetRef { object_id: Some(u.id.clone()), ..Default::default() }),
            None => {
                let errors =
                    HashMap::from([("for".to_string(), "Choose yourself or one of your direct reports.".to_string())]);
                return refuse(
                    errors,
                    "You can request for yourself or your direct reports only.",
                    StatusCode::BAD_REQUEST,
                );
            }
        },
    };
    let input = NewRequest {
        request_type: RequestType::UserAdd,
        assignment_id: None,
        target,
        policy_id: Some(policy.id.clone()),
        access_package_id: Some(package.id.clone()),
        schedule,
        answers: answers.clone(),
        justification,
        is_validation_only: false,
    };
    match grantry_core::requests::create_request(&state.app, &signed.caller, input).await {
        Ok(r) => see_other(&format!("/access/requests/{}?submitted=1", r.id)),
        Err(e) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Conflict | ErrorKind::Forbidden) => {
            let (mut errors, general) = place_error(&e, &policy, &answers);
            if e.kind == ErrorKind::Forbidden && form.get("for").is_some_and(|f| !f.is_empty()) {
                errors.insert("for".into(), e.message.clone());
            }
            refuse(errors, general.as_deref().unwrap_or(&e.message), crate::error::status_of(e.kind))
        }
        Err(e) => views::error_page(&state, Some(&viewer(&signed)), &e),
    }
}

/// The schedule the form asks for (`start` and `end` dates, midnight UTC and the end of
/// that day); `None` when neither is given. A date that does not parse names its field.
fn schedule_of(form: &Form) -> Result<Option<Schedule>, (&'static str, &'static str)> {
    let date = |name: &'static str,
                message: &'static str|
     -> Result<Option<chrono::NaiveDate>, (&'static str, &'static str)> {
        match form.get(name).map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Some).map_err(|_| (name, message)),
        }
    };
    let start = date("start", "The start date is not a date.")?;
    let end = date("end", "The end date is not a date.")?;
    if start.is_none() && end.is_none() {
        return Ok(None);
    }
    Ok(Some(Schedule {
        start_date_time: start.and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc()),
        expiration: match end.and_then(|d| d.and_hms_opt(23, 59, 59)) {
            Some(t) => Expiration {
                kind: grantry_domain::enums::ExpirationType::AfterDateTime,
                end_date_time: Some(t.and_utc()),
                duration: None,
            },
            None => Expiration::default(),
        },
        ..Default::default()
    }))
}

/// `GET /access/requests`: the person's requests (as target or requestor), newest first
/// within each page.
pub async fn requests(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let options = ListOptions { after: after_of(&q).map(Cursor::Seq), size: PAGE, ..Default::default() };
    let listed = match grantry_core::requests::list_requests(&state.app, &signed.caller, Mine::Mine, options).await {
        Ok(l) => l,
        Err(e) => return views::error_page(&state, Some(&viewer(&signed)), &e),
    };
    let names = package_names(&state, listed.items.iter().map(|r| r.access_package_id.clone()).collect()).await;
    let now = state.app.now();
    let body = html! {
        @if listed.items.is_empty() {
            div.empty { "You have no requests yet. " a href="/access" { "Request access" } " to a package to start." }
        } @else {
            table {
                thead { tr { th scope="col" { "Package" } th scope="col" { "Type" } th scope="col" { "State" } th scope="col" { "Submitted" } } }
                tbody {
                    @for r in &listed.items {
                        tr {
                            td { a href={"/access/requests/" (r.id)} { (names.get(&r.access_package_id).map(|p| p.display_name.as_str()).unwrap_or("(removed package)")) } }
                            td { (r.request_type.v1()) }
                            td { (badge(r.state.v1())) " " span.muted { (r.status) } }
                            td { (when(r.created_date_time, now)) }
                        }
                    }
                }
            }
        }
        @if let Some(n) = next_seq(&listed.next) { p.pager { a href={"/access/requests?after=" (n)} { "Older requests" } } }
    };
    page(&state, &signed, Section::Requests, "My requests", StatusCode::OK, body)
}

fn answers_list(answers: &[Answer], policy: Option<&Policy>) -> Markup {
    html! {
        @if answers.is_empty() { p.muted { "No questions were asked." } }
        @else {
            dl.facts {
                @for a in answers {
                    @let question = policy.and_then(|p| p.questions.iter().find(|q| q.id == a.question_id)).and_then(|q| q.text.clone());
                    dt { (question.unwrap_or_else(|| a.question_id.clone())) }
                    dd { (a.display_value.clone().or(a.value.clone()).unwrap_or_default()) }
                }
            }
        }
    }
}

pub(super) async fn policy_of(state: &AppState, id: Option<&str>) -> Option<Policy> {
    let id = id?.to_string();
    grantry_core::listing::find_in::<Policy>(&state.app, "id", vec![id]).await.ok()?.into_iter().next()
}

pub(super) fn stages_view(approval: &grantry_domain::model::Approval, now: chrono::DateTime<chrono::Utc>) -> Markup {
    html! {
        ol.timeline {
            @for s in &approval.stages {
                li {
                    strong { "Stage " (s.index + 1) } " " (badge(s.status.as_str()))
                    @if s.review_result != grantry_domain::model::ReviewResult::NotReviewed { " " (badge(s.review_result.as_str())) }
                    @if s.escalated { " " span.badge { "Escalated" } }
                    @if let Some(by) = &s.reviewed_by {
                        br; "Decided by " (by.display_name.clone().unwrap_or_else(|| by.id.clone()))
                        @if let Some(at) = s.reviewed_date_time { ", " (when(at, now)) }
                        @if let Some(j) = s.justification.as_ref().filter(|j| !j.is_empty()) { ": “" (j) "”" }
                    }
                    @if s.status == grantry_domain::model::StageStatus::InProgress {
                        @if let Some(due) = s.due_date_time { br; "Denied automatically if undecided " (when(due, now)) }
                    }
                }
            }
        }
    }
}

/// `GET /access/requests/{id}`: one request, its approval and its history.
pub async fn request(
    State(state): State<AppState>,
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let r: AssignmentRequest = match grantry_core::requests::get_request(&state.app, &signed.caller, &id).await {
        Ok(r) => r,
        Err(e) => return views::error_page(&state, Some(&viewer(&signed)), &e),
    };
    let history = grantry_core::requests::history(&state.app, &signed.caller, &r.id).await.unwrap_or_default();
    let approval = grantry_core::approvals::get_approval(&state.app, &signed.caller, &r.id).await.ok();
    let package = package_names(&state, vec![r.access_package_id.clone()]).await.remove(&r.access_package_id);
    let policy = policy_of(&state, r.policy_id.as_deref()).await;
    let mut subject_ids = vec![r.target_subject_id.clone()];
    subject_ids.extend(r.requestor_subject_id.clone());
    let people = subjects(&state, subject_ids).await;
    let actor_ids: Vec<String> = history.iter().filter_map(|h| h.actor_id.clone()).collect();
    let actors = user_names(&state, actor_ids).await;
    let now = state.app.now();
    let cancellable =
        matches!(r.state, RequestState::Submitted | RequestState::PendingApproval | RequestState::Scheduled);
    let title = package.as_ref().map(|p| p.display_name.clone()).unwrap_or_else(|| "Request".into());
    let body = html! {
        @if q.contains_key("submitted") { p.notice role="status" { "Your request was submitted." } }
        @if q.contains_key("canceled") { p.notice role="status" { "The request was canceled." } }
        dl.facts {
            dt { "State" } dd { (badge(r.state.v1())) " " span.muted { (r.status) } }
            dt { "Type" } dd { (r.request_type.v1()) }
            dt { "For" } dd { (subject_name(&people, Some(&r.target_subject_id))) }
            dt { "Requested by" } dd { (subject_name(&people, r.requestor_subject_id.as_deref())) }
            dt { "Submitted" } dd { (when(r.created_date_time, now)) }
            @if let Some(done) = r.completed_date_time { dt { "Completed" } dd { (when(done, now)) } }
            @if let Some(p) = &policy { dt { "Policy" } dd { (p.display_name) } }
            dt { "Justification" } dd { (r.justification.clone().unwrap_or_else(|| "—".into())) }
        }
        h2 { "Answers" }
        (answers_list(&r.answers, policy.as_ref()))
        @if let Some(a) = &approval {
            h2 { "Approval" }
            (stages_view(a, now))
        }
        @if cancellable {
            form method="post" action={"/access/requests/" (r.id) "/cancel"} {
                input type="hidden" name="csrf" value=(signed.session.csrf);
                button.danger type="submit" { "Cancel this request" }
            }
        }
        h2 { "History" }
        @if history.is_empty() { p.muted { "Nothing recorded yet." } }
        @else {
            ol.timeline {
                @for h in &history {
                    li {
                        (when(h.at, now)) " — " strong { (h.action) }
                        @if let Some(a) = &h.actor_id { " by " (actors.get(a).cloned().unwrap_or_else(|| a.clone())) }
                    }
                }
            }
        }
        p { a href="/access/requests" { "All my requests" } }
    };
    page(&state, &signed, Section::Requests, &title, StatusCode::OK, body)
}

pub(super) async fn user_names(state: &AppState, ids: Vec<String>) -> HashMap<String, String> {
    state
        .app
        .store
        .read(move |c| {
            let mut out = HashMap::new();
            for id in ids {
                if let Some(name) = grantry_core::approvals::user_name(c, &id)? {
                    out.insert(id, name);
                }
            }
            Ok(out)
        })
        .await
        .unwrap_or_default()
}

/// `POST /access/requests/{id}/cancel`.
pub async fn cancel(State(state): State<AppState>, signed: Signed, Path(id): Path<String>, form: Form) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    match grantry_core::requests::cancel_request(&state.app, &signed.caller, &id).await {
        Ok(()) => see_other(&format!("/access/requests/{}?canceled=1", grantry_domain::ids::normalize(&id))),
        Err(e) => views::error_page(&state, Some(&viewer(&signed)), &e),
    }
}

/// `GET /access/assignments`: what the person has, with when it ends.
pub async fn assignments(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let options = ListOptions { after: after_of(&q).map(Cursor::Seq), size: PAGE, ..Default::default() };
    let listed = match grantry_core::assignments::list_assignments(
        &state.app,
        &signed.caller,
        Mine::Target,
        options,
        None,
    )
    .await
    {
        Ok(l) => l,
        Err(e) => return views::error_page(&state, Some(&viewer(&signed)), &e),
    };
    let names = package_names(&state, listed.items.iter().map(|a| a.access_package_id.clone()).collect()).await;
    let policy_ids: Vec<String> = listed.items.iter().map(|a| a.policy_id.clone()).collect();
    let policies = grantry_core::listing::find_in::<Policy>(&state.app, "id", policy_ids).await.unwrap_or_default();
    let removable: Vec<&str> = policies
        .iter()
        .filter(|p| !p.is_admin_only() && p.requestor_settings.enable_targets_to_self_remove_access)
        .map(|p| p.id.as_str())
        .collect();
    let extendable: Vec<&str> = policies
        .iter()
        .filter(|p| !p.is_admin_only() && p.requestor_settings.enable_targets_to_self_update_access)
        .map(|p| p.id.as_str())
        .collect();
    let now = state.app.now();
    let (active, ended): (Vec<_>, Vec<_>) = listed.items.iter().partition(|a| a.state.is_active());
    let body = html! {
        @if active.is_empty() {
            div.empty { "You have no active access. " a href="/access" { "Request access" } " to get some." }
        } @else {
            table {
                thead { tr { th scope="col" { "Package" } th scope="col" { "State" } th scope="col" { "Since" } th scope="col" { "Ends" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for a in &active {
                        tr {
                            td { (names.get(&a.access_package_id).map(|p| p.display_name.as_str()).unwrap_or("(removed package)")) }
                            td { (badge(a.state.v1())) }
                            td { (when(a.schedule.start_date_time.unwrap_or(a.created_date_time), now)) }
                            td {
                                @match a.schedule.expiration.end_date_time {
                                    Some(end) => (when(end, now)),
                                    None => "Does not expire",
                                }
                            }
                            td { div.row {
                                @if extendable.contains(&a.policy_id.as_str()) {
                                    a.button href={"/access/assignments/" (a.id) "/extend"} aria-label={"Extend my access to " (names.get(&a.access_package_id).map(|p| p.display_name.as_str()).unwrap_or("this package"))} { "Extend" }
                                }
                                @if removable.contains(&a.policy_id.as_str()) {
                                    form method="post" action={"/access/assignments/" (a.id) "/remove"} {
                                        input type="hidden" name="csrf" value=(signed.session.csrf);
                                        button.danger type="submit" aria-label={"Remove my access to " (names.get(&a.access_package_id).map(|p| p.display_name.as_str()).unwrap_or("this package"))} { "Remove" }
                                    }
                                }
                            } }
                        }
                    }
                }
            }
        }
        @if !ended.is_empty() {
            h2 { "Ended" }
            ul {
                @for a in &ended {
                    li {
                        (names.get(&a.access_package_id).map(|p| p.display_name.as_str()).unwrap_or("(removed package)"))
                        " " (badge(a.state.v1()))
                        @if let Some(at) = a.expired_date_time { " " (when(at, now)) }
                    }
                }
            }
        }
        @if let Some(n) = next_seq(&listed.next) { p.pager { a href={"/access/assignments?after=" (n)} { "More" } } }
    };
    page(&state, &signed, Section::Assignments, "My access", StatusCode::OK, body)
}

/// `POST /access/assignments/{id}/remove`: a userRemove request for one's own assignment
/// (the policy must let people remove their access; the API's rules decide).
pub async fn remove(State(state): State<AppState>, signed: Signed, Path(id): Path<String>, form: Form) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let assignment = match grantry_core::assignments::get_assignment(&state.app, &signed.caller, &id).await {
        Ok(a) => a,
        Err(e) => return views::error_page(&state, Some(&viewer(&signed)), &e),
    };
    let input = NewRequest {
        request_type: RequestType::UserRemove,
        assignment_id: Some(assignment.id.clone()),
        target: None,
        policy_id: None,
        access_package_id: Some(assignment.access_package_id.clone()),
        schedule: None,
        answers: Vec::new(),
        justification: None,
        is_validation_only: false,
    };
    match grantry_core::requests::create_request(&state.app, &signed.caller, input).await {
        Ok(r) => see_other(&format!("/access/requests/{}?submitted=1", r.id)),
        Err(e) => views::error_page(&state, Some(&viewer(&signed)), &e),
    }
}

/// The assignment, its package and its policy, for extending it.
async fn extendable(
    state: &AppState,
    signed: &Signed,
    id: &str,
) -> Result<(grantry_domain::model::Assignment, Option<AccessPackage>, Policy), Response> {
    let assignment = grantry_core::assignments::get_assignment(&state.app, &signed.caller, id)
        .await
        .map_err(|e| views::error_page(state, Some(&viewer(signed)), &e))?;
    let package =
        package_names(state, vec![assignment.access_package_id.clone()]).await.remove(&assignment.access_package_id);
    match policy_of(state, Some(&assignment.policy_id)).await {
        Some(p) => Ok((assignment, package, p)),
        None => Err(views::error_page(
            state,
            Some(&viewer(signed)),
            &Error::not_found("accessPackageAssignmentPolicy", &assignment.policy_id),
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn render_extend(
    state: &AppState,
    signed: &Signed,
    assignment: &grantry_domain::model::Assignment,
    package: Option<&AccessPackage>,
    policy: &Policy,
    values: &Form,
    errors: &FieldErrors,
    general: Option<&str>,
    status: StatusCode,
) -> Response {
    let now = state.app.now();
    let name = package.map(|p| p.display_name.clone()).unwrap_or_else(|| "this package".into());
    let justification_required = policy.approval.is_requestor_justification_required;
    let body = html! {
        dl.facts {
            dt { "Access ends" }
            dd { @match assignment.schedule.expiration.end_date_time { Some(end) => (when(end, now)), None => "Does not expire" } }
        }
        (describe_policy(policy))
        @if let Some(g) = general { p.error role="alert" { (g) } }
        form.stack method="post" action={"/access/assignments/" (assignment.id) "/extend"} novalidate {
            input type="hidden" name="csrf" value=(signed.session.csrf);
            div.field {
                label for="justification" { "Why do you need it longer?" @if justification_required { " " span.hint { "(required)" } } }
                textarea #justification name="justification" required[justification_required]
                    aria-invalid=[errors.get("justification").map(|_| "true")] { (values.get("justification").unwrap_or("")) }
                @if let Some(e) = errors.get("justification") { p.field-error { (e) } }
            }
            @if policy.requestor_settings.allow_custom_assignment_schedule {
                div.field {
                    label for="end" { "End on " span.hint { "(optional; the policy's expiration when empty)" } }
                    input #end type="date" name="end" value=(values.get("end").unwrap_or(""))
                        aria-invalid=[errors.get("end").map(|_| "true")];
                    @if let Some(e) = errors.get("end") { p.field-error { (e) } }
                }
            }
            div.row {
                button.primary type="submit" { "Ask to extend" }
                a href="/access/assignments" { "Cancel" }
            }
        }
    };
    page(state, signed, Section::Assignments, &format!("Extend {name}"), status, body)
}

/// `GET /access/assignments/{id}/extend`: the form that asks to extend one's access
/// (a userExtend request; the policy must let people extend).
pub async fn extend_form(State(state): State<AppState>, signed: Signed, Path(id): Path<String>) -> Response {
    match extendable(&state, &signed, &id).await {
        Ok((a, package, policy)) => render_extend(
            &state,
            &signed,
            &a,
            package.as_ref(),
            &policy,
            &Form(Vec::new()),
            &HashMap::new(),
            None,
            StatusCode::OK,
        ),
        Err(r) => r,
    }
}

/// `POST /access/assignments/{id}/extend`: a userExtend request (the API's rules decide).
pub async fn extend(State(state): State<AppState>, signed: Signed, Path(id): Path<String>, form: Form) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let (assignment, package, policy) = match extendable(&state, &signed, &id).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let refuse = |errors: FieldErrors, general: &str, status: StatusCode| {
        render_extend(&state, &signed, &assignment, package.as_ref(), &policy, &form, &errors, Some(general), status)
    };
    let schedule = match schedule_of(&form) {
        Ok(s) => s,
        Err((field, message)) => {
            let errors = HashMap::from([(field.to_string(), "Enter a date as YYYY-MM-DD.".to_string())]);
            return refuse(errors, message, StatusCode::BAD_REQUEST);
        }
    };
    let justification = form.get("justification").map(str::trim).filter(|j| !j.is_empty()).map(str::to_string);
    if policy.approval.is_requestor_justification_required && justification.is_none() {
        let errors = HashMap::from([("justification".to_string(), "Say why you need this access longer.".to_string())]);
        return refuse(errors, "The request needs a justification.", StatusCode::BAD_REQUEST);
    }
    let input = NewRequest {
        request_type: RequestType::UserExtend,
        assignment_id: Some(assignment.id.clone()),
        target: None,
        policy_id: Some(policy.id.clone()),
        access_package_id: Some(assignment.access_package_id.clone()),
        schedule,
        answers: Vec::new(),
        justification,
        is_validation_only: false,
    };
    match grantry_core::requests::create_request(&state.app, &signed.caller, input).await {
        Ok(r) => see_other(&format!("/access/requests/{}?submitted=1", r.id)),
        Err(e) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Conflict) => {
            let (errors, general) = place_error(&e, &policy, &[]);
            refuse(errors, general.as_deref().unwrap_or(&e.message), crate::error::status_of(e.kind))
        }
        Err(e) => views::error_page(&state, Some(&viewer(&signed)), &e),
    }
}
