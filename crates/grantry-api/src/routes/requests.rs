//! Assignment requests: `assignmentRequests` (v1.0 and beta) and
//! `accessPackageAssignmentRequests` (beta, also routed on v1.0), including the old
//! paths directly under the version root and under an assignment.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{GraphJson, RawQuery, Root};
use crate::idempotency::IdempotencySlot;
use crate::respond::{self, EM};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use grantry_core::requests::{self, Mine};
use grantry_core::{App, Caller};
use grantry_domain::model::AssignmentRequest;
use grantry_domain::{Error, Result};
use grantry_graph::{Body, Dialect, assignment as awire, request as wire};
use grantry_odata::ExpandItem;
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for set in ["assignmentRequests", "accessPackageAssignmentRequests"] {
        let base = format!("/{EM}/{set}");
        r = r
            .route(&base, get(list).post(create))
            .route(&format!("{base}/{{id}}"), get(get_one).delete(delete_one))
            .route(&format!("{base}/{{id}}/cancel"), post(cancel))
            .route(&format!("{base}/{{id}}/reprocess"), post(reprocess))
            .route(&format!("{base}/{{id}}/resume"), post(resume))
            .route(&format!("{base}/filterByCurrentUser/{{args}}"), get(filter_by_current_user))
            .route(&format!("{base}/My/{{args}}"), get(my));
    }
    r.route("/accessPackageAssignmentRequests", get(list).post(create))
        .route(
            &format!("/{EM}/accessPackageAssignments/{{id}}/accessPackageAssignmentRequests"),
            post(create_for_assignment),
        )
        .route(&format!("/{EM}/assignments/{{id}}/accessPackageAssignmentRequests"), post(create_for_assignment))
        .route("/accessPackageAssignments/{id}/accessPackageAssignmentRequests", post(create_for_assignment))
}

fn set_name(d: Dialect) -> String {
    format!("{EM}/{}", d.pick("assignmentRequests", "accessPackageAssignmentRequests"))
}

/// A subject for `$expand`, with its own nested `$expand=connectedOrganization`. Connected
/// organizations are not modelled yet, so that navigation is always null.
fn subject_with(subject: Option<&grantry_domain::model::Subject>, d: Dialect, item: &ExpandItem) -> Result<Value> {
    let Some(subject) = subject else { return Ok(Value::Null) };
    let mut v = wire::subject(subject, d);
    for sub in &item.options.expand {
        if !sub.path.join("/").eq_ignore_ascii_case("connectedOrganization") {
            return Err(Error::bad_request(
                "BadRequest",
                format!(
                    "$expand: '{}' cannot be expanded on a subject; use connectedOrganization.",
                    sub.path.join("/")
                ),
            )
            .with_target("$expand"));
        }
        if let Value::Object(m) = &mut v {
            m.insert("connectedOrganization".into(), Value::Null);
        }
    }
    Ok(v)
}

pub(crate) fn expand_items(q: &RawQuery) -> Result<Vec<ExpandItem>> {
    match q.get("$expand") {
        None => Ok(Vec::new()),
        Some(e) => grantry_odata::parse_expand(e)
            .map_err(|e| Error::bad_request("BadRequest", format!("$expand: {e}")).with_target("$expand")),
    }
}

/// Renders a request with the navigation properties named in `$expand`.
async fn render(app: &App, d: Dialect, r: &AssignmentRequest, expand: &[ExpandItem]) -> Result<Value> {
    let mut v = wire::request(r, d);
    if expand.is_empty() {
        return Ok(v);
    }
    let (package, requestor, assignment, target) = requests::request_related(app, r).await?;
    let Value::Object(map) = &mut v else { return Ok(v) };
    for item in expand {
        let name = item.path.join("/");
        match name.to_ascii_lowercase().as_str() {
            "accesspackage" => {
                map.insert(
                    "accessPackage".into(),
                    package.as_ref().map(|p| awire::package(p, d)).unwrap_or(Value::Null),
                );
            }
            "requestor" => {
                map.insert("requestor".into(), subject_with(requestor.as_ref(), d, item)?);
            }
            "target" => {
                map.insert("target".into(), subject_with(target.as_ref(), d, item)?);
            }
            "assignment" | "accesspackageassignment" => {
                let mut a = assignment.as_ref().map(|a| awire::assignment(a, d)).unwrap_or(Value::Null);
                if let (Some(asg), Value::Object(am)) = (&assignment, &mut a) {
                    for sub in &item.options.expand {
                        let (t, p, pol) = grantry_core::assignments::assignment_related(app, asg).await?;
                        match sub.path.join("/").to_ascii_lowercase().as_str() {
                            "target" => {
                                am.insert(
                                    "target".into(),
                                    t.as_ref().map(|s| wire::subject(s, d)).unwrap_or(Value::Null),
                                );
                            }
                            "accesspackage" => {
                                am.insert(
                                    "accessPackage".into(),
                                    p.as_ref().map(|p| awire::package(p, d)).unwrap_or(Value::Null),
                                );
                            }
                            "assignmentpolicy" | "accesspackageassignmentpolicy" => {
                                am.insert(
                                    d.pick("assignmentPolicy", "accessPackageAssignmentPolicy").into(),
                                    pol.as_ref().map(|p| awire::policy_summary(p, d)).unwrap_or(Value::Null),
                                );
                            }
                            other => return Err(unknown_expand(other, "assignment")),
                        }
                    }
                }
                map.insert(d.pick("assignment", "accessPackageAssignment").into(), a);
            }
            other => return Err(unknown_expand(other, "accessPackageAssignmentRequest")),
        }
    }
    Ok(v)
}

pub(crate) fn unknown_expand(name: &str, on: &str) -> Error {
    Error::bad_request(
        "BadRequest",
        format!(
            "$expand: '{name}' is not a navigation property of {on} that Grantry expands; use accessPackage, requestor, assignment (beta accessPackageAssignment) with target, accessPackage or assignmentPolicy."
        ),
    )
    .with_target("$expand")
}

async fn respond_created(s: &AppState, d: Dialect, r: &AssignmentRequest) -> Response {
    respond::created(s, d, &set_name(d), wire::request(r, d))
}

async fn create_with(
    s: &AppState,
    d: Dialect,
    caller: &Caller,
    json: &Value,
    assignment_id: Option<String>,
    slot: Option<IdempotencySlot>,
) -> ApiResult<Response> {
    let body = grantry_graph::Body::root(json)?;
    let mut input = wire::parse_new_request_body(&body)?;
    crate::schema::check(&body, d, "accessPackageAssignmentRequest")?;
    if input.assignment_id.is_none() {
        input.assignment_id = assignment_id.map(|a| grantry_domain::ids::normalize(&a));
    }
    // The response is recorded for idempotent retries in the request's own transaction;
    // it must be the exact body `respond_created` sends.
    let save = slot.as_ref().filter(|_| !input.is_validation_only).map(|slot| {
        let state = s.clone();
        grantry_core::idempotency::Save::<AssignmentRequest> {
            key: slot.key.clone(),
            status: 201,
            render: Box::new(move |r: &AssignmentRequest| {
                respond::created_value(&state, d, &set_name(d), wire::request(r, d)).to_string()
            }),
        }
    });
    let recorded = save.is_some();
    let r = requests::create_request_recorded(&s.app, caller, input, save).await?;
    if recorded && let Some(slot) = &slot {
        slot.mark_recorded();
    }
    Ok(respond_created(s, d, &r).await)
}

async fn create(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    slot: Option<Extension<IdempotencySlot>>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    create_with(&s, d, &caller, &json, None, slot.map(|Extension(x)| x)).await
}

async fn create_for_assignment(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    slot: Option<Extension<IdempotencySlot>>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    create_with(&s, d, &caller, &json, Some(id), slot.map(|Extension(x)| x)).await
}

async fn get_one(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let expand = expand_items(&q)?;
    let r = requests::get_request(&s.app, &caller, &id).await?;
    Ok(respond::entity(&s, d, &set_name(d), render(&s.app, d, &r, &expand).await?))
}

async fn list_with(s: &AppState, d: Dialect, caller: &Caller, q: &RawQuery, mine: Mine) -> ApiResult<Response> {
    let expand = expand_items(q)?;
    let listed = requests::list_requests(&s.app, caller, mine, q.list_options()?).await?;
    let mut items = Vec::with_capacity(listed.items.len());
    for r in &listed.items {
        items.push(render(&s.app, d, r, &expand).await?);
    }
    let listed = grantry_core::listing::Listed { items, next: listed.next, count: listed.count };
    Ok(respond::listed(s, d, &set_name(d), listed, q))
}

async fn list(State(s): State<AppState>, Root(d): Root, Authed(caller): Authed, q: RawQuery) -> ApiResult<Response> {
    list_with(&s, d, &caller, &q, Mine::All).await
}

async fn filter_by_current_user(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(args): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let mine = Mine::parse_on(&args, &[Mine::Target, Mine::CreatedBy, Mine::Approver])?;
    list_with(&s, d, &caller, &q, mine).await
}

async fn my(State(s): State<AppState>, Root(d): Root, Authed(caller): Authed, q: RawQuery) -> ApiResult<Response> {
    list_with(&s, d, &caller, &q, Mine::Mine).await
}

async fn delete_one(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    requests::delete_request(&s.app, &caller, &id).await?;
    Ok(respond::no_content())
}

async fn cancel(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    requests::cancel_request(&s.app, &caller, &id).await?;
    Ok(respond::no_content())
}

/// `resume`: `{source, type, data: {stage, customExtensionStageInstanceId,
/// customExtensionStageInstanceDetail, state?}}`.
async fn resume(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    use grantry_domain::enums::{CustomExtensionStage, RequestState};
    let b = Body::root(&json)?;
    let data = b.object(&["data"])?.ok_or_else(|| {
        Error::invalid_property(
            "data",
            "'data' is required: {\"customExtensionStageInstanceId\": \"…\", \"stage\": \"…\", \"customExtensionStageInstanceDetail\": \"…\"}.",
        )
    })?;
    let instance_id = data.required_str(&["customExtensionStageInstanceId"])?;
    let stage = data.enumeration(&["stage"], CustomExtensionStage::parse, &CustomExtensionStage::allowed())?;
    let end_state = match data.str(&["state"])? {
        None => None,
        Some(s) if s.eq_ignore_ascii_case("denied") => Some(RequestState::Denied),
        Some(s) if s.eq_ignore_ascii_case("canceled") || s.eq_ignore_ascii_case("cancelled") => {
            Some(RequestState::Canceled)
        }
        Some(other) => {
            return Err(Error::invalid_property(
                "data.state",
                format!("'data.state' is '{other}'; send \"denied\" or \"canceled\" to end the request, or omit it to continue."),
            )
            .into());
        }
    };
    let input = grantry_core::callouts::Resume {
        instance_id,
        stage,
        detail: data.str(&["customExtensionStageInstanceDetail"])?,
        end_state,
        source: b.str(&["source"])?,
    };
    requests::resume_request(&s.app, &caller, &id, input).await?;
    Ok(respond::no_content())
}

async fn reprocess(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    requests::reprocess_request(&s.app, &caller, &id).await?;
    s.app.work_signal.notify_one();
    Ok(respond::accepted())
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    let b = em("assignmentRequests");
    vec![
        list(b.clone(), "List assignment requests", "Request"),
        create(b.clone(), "Create an assignment request", "Request"),
        read(format!("{b}/{{id}}"), "Get an assignment request", "Request"),
        remove(format!("{b}/{{id}}"), "Delete a finished assignment request"),
        action(format!("{b}/{{id}}/cancel"), "Cancel an assignment request"),
        action(format!("{b}/{{id}}/reprocess"), "Reprocess a failed assignment request"),
        action(format!("{b}/{{id}}/resume"), "Answer the custom extension callout a request waits for"),
        list(format!("{b}/filterByCurrentUser/{{args}}"), "The caller's requests (on='target'|'createdBy')", "Request"),
        list(format!("{b}/My/{{args}}"), "The caller's requests (beta)", "Request"),
        create("/accessPackageAssignmentRequests", "Create an assignment request (beta shortcut)", "Request"),
        create(em("assignments/{id}/accessPackageAssignmentRequests"), "Request about an assignment", "Request"),
    ]
}
