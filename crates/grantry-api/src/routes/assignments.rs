//! Assignments (`assignments`, beta `accessPackageAssignments`), their delivered resource
//! roles (beta), and the end-user package functions `getApplicablePolicyRequirements` and
//! `filterByCurrentUser(on='allowedRequestor')`.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::expand::{self, AssignmentExpand};
use crate::extract::{GraphJson, RawQuery, Root};
use crate::respond::{self, EM};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use grantry_core::Caller;
use grantry_core::assignments;
use grantry_core::listing::Listed;
use grantry_core::related;
use grantry_core::requests::{self, Mine};
use grantry_domain::enums::RequestType;
use grantry_domain::model::Assignment;
use grantry_domain::{Error, ErrorKind, Result};
use grantry_graph::assignment::{AssignmentView, PackageView, RequirementsView, ResourceRoleView};
use grantry_graph::{Dialect, request as rwire};
use serde_json::{Value, json};

pub fn routes() -> Router<AppState> {
    let mut r = Router::new();
    for set in ["assignments", "accessPackageAssignments"] {
        let base = format!("/{EM}/{set}");
        r = r
            .route(&base, get(list).post(create_direct))
            .route(&format!("{base}/{{id}}"), get(get_one))
            .route(&format!("{base}/{{id}}/reprocess"), post(reprocess))
            .route(&format!("{base}/filterByCurrentUser/{{args}}"), get(filter_by_current_user))
            .route(&format!("{base}/My/{{args}}"), get(my))
            .route(&format!("{base}/additionalAccess/{{args}}"), get(additional_access));
    }
    let roles = format!("/{EM}/accessPackageAssignmentResourceRoles");
    r.route("/accessPackageAssignments", post(create_direct))
        .route(&roles, get(list_roles))
        .route(&format!("{roles}/{{id}}"), get(get_role))
        .route(&format!("{roles}/My/{{args}}"), get(my_roles))
        .route(&format!("/{EM}/accessPackages/{{id}}/getApplicablePolicyRequirements"), post(requirements))
        .route(&format!("/{EM}/accessPackages/filterByCurrentUser/{{args}}"), get(allowed_packages))
}

fn set_name(d: Dialect) -> String {
    format!("{EM}/{}", d.pick("assignments", "accessPackageAssignments"))
}

/// One assignment with the navigation properties `$expand` names.
async fn render_one(s: &AppState, d: Dialect, a: &Assignment, expand: &AssignmentExpand) -> ApiResult<Response> {
    let related = related::assignments_related(&s.app, std::slice::from_ref(a), expand.wanted()).await?;
    let related = related.into_iter().next().unwrap_or_default();
    Ok(respond::entity(s, d, &set_name(d), AssignmentView::new(a, d, expand.navs(d, &related))))
}

async fn respond_page(
    s: &AppState,
    d: Dialect,
    q: &RawQuery,
    listed: Listed<Assignment>,
    expand: &AssignmentExpand,
) -> ApiResult<Response> {
    // One read for the whole page's related entities (not one per row).
    let related = related::assignments_related(&s.app, &listed.items, expand.wanted()).await?;
    let items: Vec<AssignmentView<'_>> =
        listed.items.iter().zip(&related).map(|(a, rel)| AssignmentView::new(a, d, expand.navs(d, rel))).collect();
    Ok(respond::collection(s, d, &set_name(d), Listed { items, next: listed.next.clone(), count: listed.count }, q))
}

fn assignment_expand(items: &[grantry_odata::ExpandItem]) -> Result<AssignmentExpand> {
    AssignmentExpand::parse(items, "accessPackageAssignment")
}

async fn list_with(s: &AppState, d: Dialect, caller: &Caller, q: &RawQuery, mine: Mine) -> ApiResult<Response> {
    let (options, expand) = q.list_options_and_expand()?;
    let expand = assignment_expand(&expand)?;
    let page = assignments::list_assignments(&s.app, caller, mine, options, None).await?;
    respond_page(s, d, q, page, &expand).await
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
    let mine = Mine::parse_on(&args, &[Mine::Target, Mine::CreatedBy])?;
    list_with(&s, d, &caller, &q, mine).await
}

async fn my(State(s): State<AppState>, Root(d): Root, Authed(caller): Authed, q: RawQuery) -> ApiResult<Response> {
    list_with(&s, d, &caller, &q, Mine::Target).await
}

/// Reads `name='value'` from a function's argument segment such as
/// `(accessPackageId='a',incompatibleAccessPackageId='b')`.
fn function_arg(args: &str, name: &str) -> Option<String> {
    let inner = args.trim().trim_start_matches('(').trim_end_matches(')');
    inner.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().trim_matches('\'').to_string())
    })
}

async fn additional_access(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(args): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let (options, expand) = q.list_options_and_expand()?;
    let expand = assignment_expand(&expand)?;
    let a = function_arg(&args, "accessPackageId").unwrap_or_default();
    let b = function_arg(&args, "incompatibleAccessPackageId").unwrap_or_default();
    let page = assignments::additional_access(&s.app, &caller, &a, &b, options).await?;
    respond_page(&s, d, &q, page, &expand).await
}

async fn get_one(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let expand = assignment_expand(&expand::items(&q)?)?;
    let a = assignments::get_assignment(&s.app, &caller, &id).await?;
    render_one(&s, d, &a, &expand).await
}

async fn reprocess(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    assignments::reprocess_assignment(&s.app, &caller, &id).await?;
    Ok(respond::accepted())
}

/// The old beta `POST accessPackageAssignments` (seed: "Create accessPackageAssignment"):
/// an adminAdd request through the same rules, processed before answering; 201 with the
/// assignment once delivered.
async fn create_direct(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let mut body = json.clone();
    if let Value::Object(m) = &mut body {
        m.insert("requestType".into(), json!("AdminAdd"));
        let mut assignment = serde_json::Map::new();
        for key in [
            "targetId",
            "target",
            "assignmentPolicyId",
            "assignmentPolicy",
            "accessPackageId",
            "accessPackage",
            "schedule",
        ] {
            if let Some(v) = m.get(key) {
                assignment.insert(key.into(), v.clone());
            }
        }
        m.insert("accessPackageAssignment".into(), Value::Object(assignment));
        m.remove("schedule");
    }
    let mut input = rwire::parse_new_request(&body)?;
    input.request_type = RequestType::AdminAdd;
    let r = requests::create_request(&s.app, &caller, input).await?;
    grantry_core::jobs::drain(&s.app).await?;
    let r = requests::get_request(&s.app, &caller, &r.id).await?;
    let Some(aid) = r.assignment_id.clone() else {
        return Err(Error::new(
            ErrorKind::Conflict,
            "InvalidRequestState",
            format!("The assignment was not delivered: its request '{}' is {} ({}).", r.id, r.state.v1(), r.status),
        )
        .into());
    };
    let a = assignments::get_assignment(&s.app, &caller, &aid).await?;
    Ok(respond::created(&s, d, &set_name(d), AssignmentView::new(&a, d, Default::default()).typed()))
}

fn roles_set() -> String {
    format!("{EM}/accessPackageAssignmentResourceRoles")
}

async fn list_roles(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = assignments::list_resource_roles(&s.app, &caller, false, q.page()?).await?;
    Ok(respond::collection(&s, d, &roles_set(), page.views(ResourceRoleView::new), &q))
}

async fn my_roles(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = assignments::list_resource_roles(&s.app, &caller, true, q.page()?).await?;
    Ok(respond::collection(&s, d, &roles_set(), page.views(ResourceRoleView::new), &q))
}

async fn get_role(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let r = assignments::get_resource_role(&s.app, &caller, &id).await?;
    Ok(respond::entity(&s, d, &roles_set(), ResourceRoleView::new(&r)))
}

async fn requirements(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let policies = assignments::applicable_policy_requirements(&s.app, &caller, &id).await?;
    let items: Vec<RequirementsView<'_>> = policies.iter().map(|p| RequirementsView::new(p, d)).collect();
    let set = "Collection(microsoft.graph.accessPackageAssignmentRequestRequirements)";
    Ok(respond::collection(&s, d, set, Listed::from(items), &q))
}

async fn allowed_packages(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(args): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let on = function_arg(&args, "on").unwrap_or_default();
    if !on.eq_ignore_ascii_case("allowedRequestor") {
        return Err(Error::bad_request(
            "BadRequest",
            format!("accessPackages/filterByCurrentUser: 'on' must be 'allowedRequestor'; got '{on}'."),
        )
        .with_target("on")
        .into());
    }
    let page = assignments::requestable_packages(&s.app, &caller, q.page()?).await?;
    let items: Vec<PackageView<'_>> = page.items.iter().map(|p| PackageView::new(p, d)).collect();
    let page = Listed { items, next: page.next, count: None };
    Ok(respond::collection(&s, d, &format!("{EM}/accessPackages"), page, &q))
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    let b = em("assignments");
    let roles = em("accessPackageAssignmentResourceRoles");
    vec![
        list(b.clone(), "List assignments", "Assignment"),
        create(b.clone(), "Create an assignment directly (beta)", "Assignment"),
        read(format!("{b}/{{id}}"), "Get an assignment", "Assignment"),
        action(format!("{b}/{{id}}/reprocess"), "Reprocess an assignment"),
        list(format!("{b}/filterByCurrentUser/{{args}}"), "The caller's assignments", "Assignment"),
        list(format!("{b}/My/{{args}}"), "The caller's assignments (beta)", "Assignment"),
        list(format!("{b}/additionalAccess/{{args}}"), "Additional access (beta)", "Assignment"),
        list(roles.clone(), "Delivered resource roles (beta)", "Object"),
        read(format!("{roles}/{{id}}"), "A delivered resource role (beta)", "Object"),
        list(format!("{roles}/My/{{args}}"), "The caller's delivered resource roles (beta)", "Object"),
        op(
            "post",
            em("accessPackages/{id}/getApplicablePolicyRequirements"),
            "Policies the caller may request through",
            Some("Object"),
            200,
            Some("Collection"),
        ),
        list(em("accessPackages/filterByCurrentUser/{args}"), "Packages the caller may request", "AccessPackage"),
    ]
}
