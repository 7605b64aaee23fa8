//! Approvals of assignment requests: `accessPackageAssignmentApprovals/{id}` with its
//! `stages` (v1.0) or `steps` (beta), decisions by PATCH of a stage, and the approvals
//! waiting for the signed-in approver.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{GraphJson, RawQuery, Root};
use crate::respond::{self, EM};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use grantry_core::approvals::{self, Review};
use grantry_core::listing::Listed;
use grantry_core::requests::Mine;
use grantry_domain::model::{Approval, StageStatus};
use grantry_domain::{Error, Result};
use grantry_graph::{Body, Dialect, approval as wire};

const SET: &str = "accessPackageAssignmentApprovals";

pub fn routes() -> Router<AppState> {
    let base = format!("/{EM}/{SET}");
    let mut r = Router::new()
        .route(&base, get(list_all))
        .route(&format!("{base}/{{id}}"), get(get_one))
        .route(&format!("{base}/filterByCurrentUser/{{args}}"), get(filter_by_current_user));
    for seg in ["stages", "steps"] {
        r = r
            .route(&format!("{base}/{{id}}/{seg}"), get(list_stages))
            .route(&format!("{base}/{{id}}/{seg}/{{sid}}"), get(get_stage).patch(patch_stage));
    }
    r.route(&format!("{base}/{{id}}/pendingSteps"), get(list_pending))
        .route(&format!("{base}/{{id}}/completedSteps"), get(list_completed))
}

fn set_name() -> String {
    format!("{EM}/{SET}")
}

fn stages_set(d: Dialect, id: &str) -> String {
    format!("{EM}/{SET}('{id}')/{}", d.pick("stages", "steps"))
}

async fn get_one(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let a = approvals::get_approval(&s.app, &caller, &id).await?;
    Ok(respond::entity(&s, d, &set_name(), wire::approval(&a, d, caller.user_id())))
}

/// The collection itself is not listable in Graph; point at the function that is.
async fn list_all(Authed(_caller): Authed) -> ApiResult<Response> {
    Err(Error::bad_request(
        "BadRequest",
        "accessPackageAssignmentApprovals cannot be listed; use accessPackageAssignmentApprovals/filterByCurrentUser(on='approver') for the approvals waiting for you, or GET one by its id (the request id).",
    )
    .into())
}

async fn filter_by_current_user(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(args): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    Mine::parse_on(&args, &[Mine::Approver])?;
    let page = approvals::list_awaiting(&s.app, &caller, q.page()?).await?;
    let items = page.items.iter().map(|a| wire::approval(a, d, caller.user_id())).collect();
    Ok(respond::collection(&s, d, &set_name(), Listed { items, next: page.next, count: None }, &q))
}

async fn stages_where(
    s: &AppState,
    d: Dialect,
    caller: &grantry_core::Caller,
    id: &str,
    q: &RawQuery,
    keep: impl Fn(StageStatus) -> bool,
) -> ApiResult<Response> {
    let a: Approval = approvals::get_approval(&s.app, caller, id).await?;
    let items: Vec<_> =
        a.stages.iter().filter(|st| keep(st.status)).map(|st| wire::stage(st, d, caller.user_id())).collect();
    Ok(respond::collection(s, d, &stages_set(d, &a.id), Listed::from(items), q))
}

async fn list_stages(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    stages_where(&s, d, &caller, &id, &q, |_| true).await
}

async fn list_pending(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    stages_where(&s, d, &caller, &id, &q, |st| st == StageStatus::InProgress).await
}

async fn list_completed(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    stages_where(&s, d, &caller, &id, &q, |st| matches!(st, StageStatus::Completed | StageStatus::Expired)).await
}

async fn get_stage(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<Response> {
    let a = approvals::get_approval(&s.app, &caller, &id).await?;
    let st = a
        .stages
        .iter()
        .find(|st| st.id.eq_ignore_ascii_case(sid.trim()))
        .ok_or_else(|| Error::not_found(d.pick("approval stage", "approval step"), &sid))?;
    Ok(respond::entity(&s, d, &stages_set(d, &a.id), wire::stage(st, d, caller.user_id())))
}

/// Parses `{reviewResult, justification}`; `reviewResult` is `Approve`/`Deny` in any case
/// (the read values `Approved`/`Denied` are accepted too).
fn parse_review(body: &Body<'_>) -> Result<Review> {
    let result = body.str(&["reviewResult"])?.ok_or_else(|| {
        Error::invalid_property(
            "reviewResult",
            "'reviewResult' is required: send \"Approve\" or \"Deny\" (with a 'justification' if the stage requires one).",
        )
    })?;
    let approve = match result.trim().to_ascii_lowercase().as_str() {
        "approve" | "approved" => true,
        "deny" | "denied" => false,
        _ => {
            return Err(Error::invalid_property(
                "reviewResult",
                format!("'reviewResult' must be \"Approve\" or \"Deny\"; got '{result}'."),
            ));
        }
    };
    let justification = body.str(&["justification"])?.filter(|j| !j.trim().is_empty());
    Ok(Review { approve, justification })
}

async fn patch_stage(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path((id, sid)): Path<(String, String)>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let body = Body::root(&json)?;
    let review = parse_review(&body)?;
    crate::schema::check(&body, d, d.pick("approvalStage", "approvalStep"))?;
    approvals::review_stage(&s.app, &caller, &id, &sid, review).await?;
    Ok(respond::no_content())
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    let b = em("accessPackageAssignmentApprovals");
    vec![
        list(b.clone(), "List approvals", "Approval"),
        read(format!("{b}/{{id}}"), "Get an approval", "Approval"),
        list(format!("{b}/filterByCurrentUser/{{args}}"), "Approvals awaiting the caller (on='approver')", "Approval"),
        list(format!("{b}/{{id}}/stages"), "Stages of an approval", "Object"),
        read(format!("{b}/{{id}}/stages/{{sid}}"), "A stage of an approval", "ApprovalStage"),
        update(format!("{b}/{{id}}/stages/{{sid}}"), "Decide a stage", "ApprovalStage"),
        list(format!("{b}/{{id}}/steps"), "Steps of an approval (beta)", "Object"),
        read(format!("{b}/{{id}}/steps/{{sid}}"), "A step of an approval (beta)", "ApprovalStage"),
        update(format!("{b}/{{id}}/steps/{{sid}}"), "Decide a step (beta)", "ApprovalStage"),
        list(format!("{b}/{{id}}/pendingSteps"), "Pending steps (beta)", "Object"),
        list(format!("{b}/{{id}}/completedSteps"), "Completed steps (beta)", "Object"),
    ]
}
