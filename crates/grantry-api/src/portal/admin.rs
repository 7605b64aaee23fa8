//! Administration: for people holding a directory or entitlement management role. What
//! each page shows is what the API shows the same person.

use super::session::Signed;
use super::views::{self, Section, when};
use super::{Form, check_csrf, is_admin, see_other, viewer};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use grantry_core::listing::ListOptions;
use grantry_core::requests::Mine;
use grantry_domain::Error;
use grantry_domain::enums::{AssignmentState, RequestState, RequestType};
use grantry_domain::model::NewRequest;
use grantry_store::query::Cursor;
use maud::html;
use std::collections::HashMap;

/// The refusal (403) of people without an administrative role; `None` for administrators.
pub(super) fn require_admin(state: &AppState, signed: &Signed) -> Option<Response> {
    if is_admin(signed) {
        None
    } else {
        Some(views::error_page(
            state,
            Some(&viewer(signed)),
            &Error::forbidden(
                "Administration is for Identity Governance Administrators and holders of catalog roles; you have none of these roles.",
            ),
        ))
    }
}

/// `GET /admin`: the catalogs the person may read, with keyset paging, and the form that
/// creates one.
pub async fn home(State(state): State<AppState>, signed: Signed, Query(q): Query<HashMap<String, String>>) -> Response {
    home_page(&state, &signed, q.get("after").and_then(|a| a.parse().ok()), None).await
}

/// The administration home page; `refused` is a new-catalog form the API refused (its
/// values, field errors and message).
pub(super) async fn home_page(
    state: &AppState,
    signed: &Signed,
    after: Option<i64>,
    refused: Option<(&Form, &HashMap<String, String>, &str)>,
) -> Response {
    if let Some(r) = require_admin(state, signed) {
        return r;
    }
    let options = ListOptions { after: after.map(Cursor::Seq), size: 50, ..Default::default() };
    let listed = match grantry_core::catalogs::list_catalogs(&state.app, &signed.caller, options).await {
        Ok(l) => l,
        Err(e) => return views::error_page(state, Some(&viewer(signed)), &e),
    };
    let now = state.app.now();
    let empty = Form(Vec::new());
    let no_errors = HashMap::new();
    let (values, errors, general) = match refused {
        Some((f, e, g)) => (f, e, Some(g)),
        None => (&empty, &no_errors, None),
    };
    let next = match &listed.next {
        Some(Cursor::Seq(n)) | Some(Cursor::Keys(_, n)) => Some(*n),
        None => None,
    };
    let body = html! {
        ul {
            li { a href="/admin/assignments" { "Assignments" } ": who has which access package, filtered and removed." }
            li { a href="/admin/requests" { "Requests" } ": every request, with its approval decisions and history." }
            li { a href="/admin/audit" { "Audit log" } ": every change, who made it and when." }
        }
        h2 { "Catalogs" }
        @if listed.items.is_empty() { div.empty { "No catalog you can read." } }
        @else {
            table {
                thead { tr { th scope="col" { "Catalog" } th scope="col" { "State" } th scope="col" { "Created" } } }
                tbody {
                    @for c in &listed.items {
                        tr {
                            td { a href={"/admin/catalogs/" (c.id)} { (c.display_name) } @if let Some(d) = c.description.as_ref().filter(|d| !d.is_empty()) { br; span.muted { (d) } } }
                            td { (views::badge(c.state.v1())) }
                            td { (when(c.created_date_time, now)) }
                        }
                    }
                }
            }
        }
        @if let Some(n) = next { p.pager { a href={"/admin?after=" (n)} { "More catalogs" } } }
        (super::builders::new_catalog_form(signed, values, errors, general))
    };
    let status = if refused.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    views::respond(status, views::page(state, Some(&viewer(signed)), Section::Admin, "Administration", body))
}

/// Quotes a value for an OData string literal.
fn literal(v: &str) -> String {
    format!("'{}'", v.replace('\'', "''"))
}

/// A list page's filters as its query string gives them: each form field's value (blank
/// ones dropped) and where the next keyset page starts.
struct ListQuery {
    values: Vec<(&'static str, Option<String>)>,
}

impl ListQuery {
    /// Reads the filters and the page of a list page: `fields` pairs each form field with the
    /// OData property its value must equal. Returns the filters and the list options (the
    /// `$filter` they make, the page after `after`, 50 rows).
    fn read(q: &HashMap<String, String>, fields: &[(&'static str, &str)]) -> Result<(ListQuery, ListOptions), Error> {
        let get = |k: &str| q.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let values: Vec<(&'static str, Option<String>)> = fields.iter().map(|(name, _)| (*name, get(name))).collect();
        let clauses: Vec<String> = fields
            .iter()
            .zip(&values)
            .filter_map(|((_, property), (_, value))| value.as_ref().map(|v| format!("{property} eq {}", literal(v))))
            .collect();
        let filter = if clauses.is_empty() {
            None
        } else {
            Some(
                grantry_odata::parse_filter(&clauses.join(" and "))
                    .map_err(|e| Error::bad_request("BadFilter", format!("The filter cannot be used: {e:?}")))?,
            )
        };
        let options = ListOptions {
            filter,
            after: q.get("after").and_then(|a| a.parse().ok()).map(Cursor::Seq),
            size: 50,
            ..Default::default()
        };
        Ok((ListQuery { values }, options))
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values.iter().find(|(n, _)| *n == name).and_then(|(_, v)| v.as_deref())
    }

    /// The link to the page after `next` on `path`, keeping the filters.
    fn next_link(&self, path: &str, next: &Option<Cursor>) -> Option<String> {
        let after = match next {
            Some(Cursor::Seq(n)) | Some(Cursor::Keys(_, n)) => *n,
            None => return None,
        };
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("after", &after.to_string());
        for (name, value) in &self.values {
            if let Some(v) = value {
                query.append_pair(name, v);
            }
        }
        Some(format!("{path}?{}", query.finish()))
    }
}

/// `GET /admin/assignments`: assignments the person may read, filtered by package, person
/// (email or user principal name) and state, with keyset paging.
pub async fn assignments(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = require_admin(&state, &signed) {
        return r;
    }
    let (filters, options) =
        match ListQuery::read(&q, &[("package", "accessPackage/id"), ("person", "target/email"), ("state", "state")]) {
            Ok(read) => read,
            Err(e) => return views::error_page(&state, Some(&viewer(&signed)), &e),
        };
    let (package, person, wanted_state) = (filters.value("package"), filters.value("person"), filters.value("state"));
    let listed =
        match grantry_core::assignments::list_assignments(&state.app, &signed.caller, Mine::All, options, None).await {
            Ok(l) => l,
            Err(e) => return views::error_page(&state, Some(&viewer(&signed)), &e),
        };
    let packages = grantry_core::packages::list_packages(
        &state.app,
        &signed.caller,
        ListOptions { size: 200, ..Default::default() },
    )
    .await
    .map(|l| l.items)
    .unwrap_or_default();
    let names =
        super::access::package_names(&state, listed.items.iter().map(|a| a.access_package_id.clone()).collect()).await;
    let people =
        super::access::subjects(&state, listed.items.iter().map(|a| a.target_subject_id.clone()).collect()).await;
    let now = state.app.now();
    let next = filters.next_link("/admin/assignments", &listed.next);
    let body = html! {
        @if q.contains_key("removed") { p.notice role="status" { "The removal was requested; access ends as the request is delivered." } }
        form.row method="get" action="/admin/assignments" aria-label="Filter assignments" {
            div.field {
                label for="package" { "Access package" }
                select #package name="package" {
                    option value="" { "Any" }
                    @for p in &packages { option value=(p.id) selected[package == Some(p.id.as_str())] { (p.display_name) } }
                }
            }
            div.field {
                label for="person" { "Person (email or sign-in name)" }
                input #person type="text" name="person" value=[person];
            }
            div.field {
                label for="state" { "State" }
                select #state name="state" {
                    option value="" { "Any" }
                    @for s in AssignmentState::ALL { option value=(s.v1()) selected[wanted_state == Some(s.v1())] { (s.v1()) } }
                }
            }
            div { button type="submit" { "Filter" } }
        }
        @if listed.items.is_empty() { div.empty { "No assignment matches." } }
        @else {
            table {
                thead { tr { th scope="col" { "Person" } th scope="col" { "Access package" } th scope="col" { "State" } th scope="col" { "Ends" } th scope="col" { span.visually-hidden { "Actions" } } } }
                tbody {
                    @for a in &listed.items {
                        tr {
                            td { (super::access::subject_name(&people, Some(&a.target_subject_id))) }
                            td { (names.get(&a.access_package_id).map(|p| p.display_name.as_str()).unwrap_or("(removed package)")) }
                            td { (views::badge(a.state.v1())) }
                            td { @match a.schedule.expiration.end_date_time { Some(end) => (when(end, now)), None => "—" } }
                            td {
                                @if a.state.is_active() {
                                    form method="post" action={"/admin/assignments/" (a.id) "/remove"} {
                                        input type="hidden" name="csrf" value=(signed.session.csrf);
                                        button.danger type="submit" aria-label={"Remove this access of " (super::access::subject_name(&people, Some(&a.target_subject_id)))} { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(href) = &next { p.pager { a href=(href) { "Next page" } } }
    };
    views::respond(StatusCode::OK, views::page(&state, Some(&viewer(&signed)), Section::Admin, "Assignments", body))
}

/// `POST /admin/assignments/{id}/remove`: an adminRemove request (the API's rules decide).
pub async fn remove(State(state): State<AppState>, signed: Signed, Path(id): Path<String>, form: Form) -> Response {
    if let Some(r) = check_csrf(&state, &signed, &form) {
        return r;
    }
    let input = NewRequest {
        request_type: RequestType::AdminRemove,
        assignment_id: Some(grantry_domain::ids::normalize(&id)),
        target: None,
        policy_id: None,
        access_package_id: None,
        schedule: None,
        answers: Vec::new(),
        justification: Some("Removed in the portal's administration".into()),
        is_validation_only: false,
    };
    match grantry_core::requests::create_request(&state.app, &signed.caller, input).await {
        Ok(_) => see_other("/admin/assignments?removed=1"),
        Err(e) => views::error_page(&state, Some(&viewer(&signed)), &e),
    }
}

/// `GET /admin/requests`: the requests the person may read, filtered by package and state,
/// newest first within keyset pages; each links to its page with the approval decisions and
/// history.
pub async fn requests(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = require_admin(&state, &signed) {
        return r;
    }
    let (filters, options) = match ListQuery::read(&q, &[("package", "accessPackage/id"), ("state", "state")]) {
        Ok(read) => read,
        Err(e) => return views::error_page(&state, Some(&viewer(&signed)), &e),
    };
    let (package, wanted_state) = (filters.value("package"), filters.value("state"));
    let listed = match grantry_core::requests::list_requests(&state.app, &signed.caller, Mine::All, options).await {
        Ok(l) => l,
        Err(e) => return views::error_page(&state, Some(&viewer(&signed)), &e),
    };
    let packages = grantry_core::packages::list_packages(
        &state.app,
        &signed.caller,
        ListOptions { size: 200, ..Default::default() },
    )
    .await
    .map(|l| l.items)
    .unwrap_or_default();
    let names =
        super::access::package_names(&state, listed.items.iter().map(|r| r.access_package_id.clone()).collect()).await;
    let people =
        super::access::subjects(&state, listed.items.iter().map(|r| r.target_subject_id.clone()).collect()).await;
    let now = state.app.now();
    let next = filters.next_link("/admin/requests", &listed.next);
    let body = html! {
        form.row method="get" action="/admin/requests" aria-label="Filter requests" {
            div.field {
                label for="package" { "Access package" }
                select #package name="package" {
                    option value="" { "Any" }
                    @for p in &packages { option value=(p.id) selected[package == Some(p.id.as_str())] { (p.display_name) } }
                }
            }
            div.field {
                label for="state" { "State" }
                select #state name="state" {
                    option value="" { "Any" }
                    @for s in RequestState::ALL { option value=(s.v1()) selected[wanted_state == Some(s.v1())] { (s.v1()) } }
                }
            }
            div { button type="submit" { "Filter" } }
        }
        @if listed.items.is_empty() { div.empty { "No request matches." } }
        @else {
            table {
                thead { tr { th scope="col" { "Access package" } th scope="col" { "For" } th scope="col" { "Type" } th scope="col" { "State" } th scope="col" { "Submitted" } } }
                tbody {
                    @for r in &listed.items {
                        tr {
                            td { a href={"/access/requests/" (r.id)} { (names.get(&r.access_package_id).map(|p| p.display_name.as_str()).unwrap_or("(removed package)")) } }
                            td { (super::access::subject_name(&people, Some(&r.target_subject_id))) }
                            td { (r.request_type.v1()) }
                            td { (views::badge(r.state.v1())) }
                            td { (when(r.created_date_time, now)) }
                        }
                    }
                }
            }
        }
        @if let Some(href) = &next { p.pager { a href=(href) { "Next page" } } }
    };
    views::respond(StatusCode::OK, views::page(&state, Some(&viewer(&signed)), Section::Admin, "Requests", body))
}

/// `GET /admin/audit`: the audit log as the API's directoryAudits serve it (newest first,
/// keyset pages), for those the API lets read it.
pub async fn audit(
    State(state): State<AppState>,
    signed: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = require_admin(&state, &signed) {
        return r;
    }
    let query = grantry_core::directory_audits::AuditQuery {
        filter: None,
        ascending: false,
        page: grantry_core::PageRequest { after_seq: q.get("after").and_then(|a| a.parse().ok()), size: 50 },
    };
    let page = match grantry_core::directory_audits::list(&state.app, &signed.caller, query).await {
        Ok(p) => p,
        Err(e) => return views::error_page(&state, Some(&viewer(&signed)), &e),
    };
    let now = state.app.now();
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let body = html! {
        @if page.items.is_empty() { div.empty { "Nothing has been recorded yet." } }
        @else {
            table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Activity" } th scope="col" { "By" } th scope="col" { "Target" } th scope="col" { "Result" } } }
                tbody {
                    @for e in &page.items {
                        tr {
                            td {
                                @match e["activityDateTime"].as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
                                    Some(at) => (when(at.with_timezone(&chrono::Utc), now)),
                                    None => "—",
                                }
                            }
                            td { (text(&e["activityDisplayName"]).unwrap_or_default()) }
                            td {
                                (text(&e["initiatedBy"]["user"]["displayName"])
                                    .or(text(&e["initiatedBy"]["user"]["userPrincipalName"]))
                                    .or(text(&e["initiatedBy"]["app"]["displayName"]))
                                    .unwrap_or_else(|| "Grantry".into()))
                            }
                            td {
                                (e["targetResources"].as_array().map(|t| t.iter().filter_map(|r| text(&r["displayName"]).or(text(&r["id"]))).collect::<Vec<_>>().join(", ")).unwrap_or_default())
                            }
                            td { (text(&e["result"]).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        @if let Some(n) = page.next_after_seq() { p.pager { a href={"/admin/audit?after=" (n)} { "Older entries" } } }
    };
    views::respond(StatusCode::OK, views::page(&state, Some(&viewer(&signed)), Section::Admin, "Audit log", body))
}
