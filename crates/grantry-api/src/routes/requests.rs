//! Assignment requests: `assignmentRequests` (v1.0 and beta) and
//! `accessPackageAssignmentRequests` (beta, also routed on v1.0), including the old
//! paths directly under the version root and under an assignment.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::expand::{self, RequestExpand};
use crate::extract::{GraphJson, RawQuery, Root};
use crate::idempotency::IdempotencySlot;
use crate::respond::{self, EM};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use grantry_core::Caller;
use grantry_core::listing::Listed;
use grantry_core::related;
use grantry_core::requests::{self, Mine};
use grantry_domain::Error;
use grantry_domain::model::AssignmentRequest;
use grantry_graph::request::{self as wire, RequestView};
use grantry_graph::{Body, Dialect};
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

/// A request as its typed view, without navigation properties.
fn view(r: &AssignmentRequest, d: Dialect) -> RequestView<'_> {
    RequestView::new(r, d, Default::default())
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
    // it must be the exact body `respond::created` sends.
    let save = slot.as_ref().filter(|_| !input.is_validation_only).map(|slot| {
        let state = s.clone();
        grantry_core::idempotency::Save::<AssignmentRequest> {
            key: slot.key.clone(),
            status: 201,
            render: Box::new(move |r: &AssignmentRequest| respond::created_body(&state, d, &set_name(d), view(r, d))),
        }
    });
    let recorded = save.is_some();
    let r = requests::create_request_recorded(&s.app, caller, input, save).await?;
    if recorded && let Some(slot) = &slot {
        slot.mark_recorded();
    }
    Ok(respond::created(s, d, &set_name(d), view(&r, d)))
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
    let expand = RequestExpand::parse(&expand::items(&q)?)?;
    let r = requests::get_request(&s.app, &caller, &id).await?;
    let related = related::requests_related(&s.app, std::slice::from_ref(&r), expand.wanted()).await?;
    let related = related.into_iter().next().unwrap_or_default();
    Ok(respond::entity(&s, d, &set_name(d), RequestView::new(&r, d, expand.navs(d, &related))))
}

async fn list_with(s: &AppState, d: Dialect, caller: &Caller, q: &RawQuery, mine: Mine) -> ApiResult<Response> {
    let (options, expand) = q.list_options_and_expand()?;
    let expand = RequestExpand::parse(&expand)?;
    let listed = requests::list_requests(&s.app, caller, mine, options).await?;
    // One read for the whole page's related entities (not one per row).
    let related = related::requests_related(&s.app, &listed.items, expand.wanted()).await?;
    let items: Vec<RequestView<'_>> =
        listed.items.iter().zip(&related).map(|(r, rel)| RequestView::new(r, d, expand.navs(d, rel))).collect();
    let page = Listed { items, next: listed.next.clone(), count: listed.count };
    Ok(respond::collection(s, d, &set_name(d), page, q))
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
    let mut approved = false;
    let end_state = match data.str(&["state"])? {
        None => None,
        Some(s) if s.eq_ignore_ascii_case("approved") || s.eq_ignore_ascii_case("approve") => {
            approved = true;
            None
        }
        Some(s) if s.eq_ignore_ascii_case("denied") => Some(RequestState::Denied),
        Some(s) if s.eq_ignore_ascii_case("canceled") || s.eq_ignore_ascii_case("cancelled") => {
            Some(RequestState::Canceled)
        }
        Some(other) => {
            return Err(Error::invalid_property(
                "data.state",
                format!("'data.state' is '{other}'; send \"denied\" or \"canceled\" to end the request (\"approved\" or \"denied\" to decide an approval stage the callout asks about), or omit it to continue."),
            )
            .into());
        }
    };
    let input = grantry_core::callouts::Resume {
        instance_id,
        stage,
        detail: data.str(&["customExtensionStageInstanceDetail"])?,
        end_state,
        approved,
        source: b.str(&["source"])?,
        approval_stage: match data.object(&["approvalStage"])? {
            Some(stage) => Some(grantry_graph::policy::parse_approval_stage(&stage)?),
            None => None,
        },
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
