//! `/roleManagement/directory` and `/roleManagement/entitlementManagement`: role
//! definitions and role assignments.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{GraphJson, RawQuery, Root};
use crate::respond;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use grantry_core::listing::Listed;
use grantry_core::rbac::{self, AssignmentView, Expand, NewRoleAssignment, RoleDefinition};
use grantry_domain::model::RoleProvider;
use grantry_graph::directory::{RoleAssignmentView, RoleDefinitionView};
use grantry_graph::{Body, directory as wire};

const DIRECTORY: &str = "roleManagement/directory";
const EM: &str = "roleManagement/entitlementManagement";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/roleManagement/directory/roleAssignments",
            get(|s, r, a, q| list(s, r, a, q, RoleProvider::Directory))
                .post(|s, r, a, b| create(s, r, a, b, RoleProvider::Directory)),
        )
        .route(
            "/roleManagement/directory/roleAssignments/{id}",
            get(|s, r, a, p, q| get_one(s, r, a, p, q, RoleProvider::Directory))
                .delete(|s, a, p| remove(s, a, p, RoleProvider::Directory)),
        )
        .route(
            "/roleManagement/directory/roleDefinitions",
            get(|s, r, a, q| definitions(s, r, a, q, RoleProvider::Directory)),
        )
        .route(
            "/roleManagement/directory/roleDefinitions/{id}",
            get(|s, r, a, p| definition(s, r, a, p, RoleProvider::Directory)),
        )
        .route(
            "/roleManagement/entitlementManagement/roleAssignments",
            get(|s, r, a, q| list(s, r, a, q, RoleProvider::EntitlementManagement))
                .post(|s, r, a, b| create(s, r, a, b, RoleProvider::EntitlementManagement)),
        )
        .route(
            "/roleManagement/entitlementManagement/roleAssignments/{id}",
            get(|s, r, a, p, q| get_one(s, r, a, p, q, RoleProvider::EntitlementManagement))
                .delete(|s, a, p| remove(s, a, p, RoleProvider::EntitlementManagement)),
        )
        .route(
            "/roleManagement/entitlementManagement/roleDefinitions",
            get(|s, r, a, q| definitions(s, r, a, q, RoleProvider::EntitlementManagement)),
        )
        .route(
            "/roleManagement/entitlementManagement/roleDefinitions/{id}",
            get(|s, r, a, p| definition(s, r, a, p, RoleProvider::EntitlementManagement)),
        )
}

fn base(provider: RoleProvider) -> &'static str {
    match provider {
        RoleProvider::Directory => DIRECTORY,
        RoleProvider::EntitlementManagement => EM,
    }
}

fn render_definition(r: &RoleDefinition) -> RoleDefinitionView<'static> {
    wire::role_definition(r.id, r.display_name, r.description)
}

/// A built-in role's definition by id, for `$expand=roleDefinition`.
fn definition_of(id: &str) -> Option<RoleDefinitionView<'_>> {
    rbac::role_name(id).map(|name| {
        let description = grantry_domain::model::em_roles::ALL
            .iter()
            .find(|(rid, ..)| *rid == id)
            .map(|(_, _, description, _)| *description);
        wire::role_definition(id, name, description)
    })
}

fn render(view: &AssignmentView, expand: Expand) -> RoleAssignmentView<'_> {
    let mut v = wire::role_assignment(&view.assignment);
    if expand.principal {
        v = v.with_principal(view.principal.as_ref().map(wire::user));
    }
    if expand.role_definition {
        v = v.with_role_definition(definition_of(&view.assignment.role_definition_id));
    }
    v
}

async fn create(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    GraphJson(json): GraphJson,
    provider: RoleProvider,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let input = NewRoleAssignment {
        principal_id: b.required_str(&["principalId"])?,
        role_definition_id: b.required_str(&["roleDefinitionId"])?,
        scope: match provider {
            RoleProvider::Directory => b.str(&["directoryScopeId"])?,
            RoleProvider::EntitlementManagement => b.str(&["appScopeId"])?,
        },
    };
    let a = match provider {
        RoleProvider::Directory => rbac::create_directory_assignment(&s.app, &caller, input).await?,
        RoleProvider::EntitlementManagement => rbac::create_em_assignment(&s.app, &caller, input).await?,
    };
    let set = format!("{}/roleAssignments", base(provider));
    Ok(respond::created(&s, d, &set, wire::role_assignment(&a)))
}

async fn list(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
    provider: RoleProvider,
) -> ApiResult<Response> {
    let expand = rbac::parse_expand(q.get("$expand"))?;
    let page =
        rbac::list_assignments(&s.app, &caller, provider, q.get("$filter"), expand, q.page_with_own_filter()?).await?;
    let items: Vec<_> = page.items.iter().map(|v| render(v, expand)).collect();
    let set = format!("{}/roleAssignments", base(provider));
    Ok(respond::collection(&s, d, &set, Listed { items, next: page.next, count: None }, &q))
}

async fn get_one(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
    provider: RoleProvider,
) -> ApiResult<Response> {
    let expand = rbac::parse_expand(q.get("$expand"))?;
    let view = rbac::get_assignment(&s.app, &caller, provider, &id, expand).await?;
    let set = format!("{}/roleAssignments", base(provider));
    Ok(respond::entity(&s, d, &set, render(&view, expand)))
}

async fn remove(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    provider: RoleProvider,
) -> ApiResult<Response> {
    rbac::delete_assignment(&s.app, &caller, provider, &id).await?;
    Ok(respond::no_content())
}

async fn definitions(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
    provider: RoleProvider,
) -> ApiResult<Response> {
    let all = match provider {
        RoleProvider::Directory => rbac::directory_role_definitions(&caller)?,
        RoleProvider::EntitlementManagement => rbac::em_role_definitions(&caller)?,
    };
    let items: Vec<_> = all.iter().map(render_definition).collect();
    let set = format!("{}/roleDefinitions", base(provider));
    Ok(respond::collection(&s, d, &set, Listed::from(items), &q))
}

async fn definition(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    provider: RoleProvider,
) -> ApiResult<Response> {
    let found = match provider {
        RoleProvider::Directory => rbac::directory_role_definition(&caller, &id)?,
        RoleProvider::EntitlementManagement => rbac::em_role_definition(&caller, &id)?,
    };
    let set = format!("{}/roleDefinitions", base(provider));
    Ok(respond::entity(&s, d, &set, render_definition(&found)))
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    let mut v = Vec::new();
    for p in ["/roleManagement/directory", "/roleManagement/entitlementManagement"] {
        v.push(list(format!("{p}/roleAssignments"), "List role assignments", "RoleAssignment"));
        v.push(create(format!("{p}/roleAssignments"), "Assign a role", "RoleAssignment"));
        v.push(read(format!("{p}/roleAssignments/{{id}}"), "Get a role assignment", "RoleAssignment"));
        v.push(remove(format!("{p}/roleAssignments/{{id}}"), "Remove a role assignment"));
        v.push(list(format!("{p}/roleDefinitions"), "List role definitions", "Object"));
        v.push(read(format!("{p}/roleDefinitions/{{id}}"), "Get a role definition", "Object"));
    }
    v
}
