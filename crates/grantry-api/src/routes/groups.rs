//! `/groups`, their members and owners.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{GraphJson, RawQuery, Root};
use crate::respond;
use crate::routes::users::{nullable_str, patch_required_str, ref_body};
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get, post};
use grantry_core::groups::{self, DirectoryObject, GroupPatch, NewGroup, ObjectRef, RefKind};
use grantry_core::listing::Listed;
use grantry_domain::model::GroupRelation;
use grantry_domain::{Error, Result};
use grantry_graph::directory::DirectoryObjectView;
use grantry_graph::{Body, directory as wire};
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/groups", get(list_groups).post(create_group))
        .route("/groups/{id}", get(get_group).patch(update_group).delete(delete_group))
        .route("/groups/{id}/members", get(list_members))
        .route("/groups/{id}/owners", get(list_owners))
        .route("/groups/{id}/members/$ref", post(add_member).delete(remove_member_by_query))
        .route("/groups/{id}/owners/$ref", post(add_owner).delete(remove_owner_by_query))
        .route("/groups/{id}/members/{member}/$ref", delete(remove_member))
        .route("/groups/{id}/owners/{member}/$ref", delete(remove_owner))
}

fn string_list(b: &Body<'_>, key: &str) -> Result<Option<Vec<String>>> {
    let Some((items, path)) = b.array(&[key])? else { return Ok(None) };
    items
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(Error::invalid_property(&path, format!("Each element of '{path}' must be a string."))),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

fn object_ref(set: Option<String>, id: String) -> ObjectRef {
    let kind = match set.as_deref() {
        Some("users") => RefKind::User,
        Some("groups") => RefKind::Group,
        _ => RefKind::Any,
    };
    ObjectRef { kind, id }
}

fn bind_list(b: &Body<'_>, key: &str) -> Result<Vec<ObjectRef>> {
    string_list(b, key)?
        .unwrap_or_default()
        .into_iter()
        .map(|url| {
            wire::parse_odata_id(&url).map(|(set, id)| object_ref(set, id)).ok_or_else(|| {
                Error::invalid_property(
                    key,
                    format!(
                        "Each element of '{key}' must be the URL of a directory object ending in its id; got '{url}'."
                    ),
                )
            })
        })
        .collect()
}

fn render(object: &DirectoryObject) -> DirectoryObjectView<'_> {
    match object {
        DirectoryObject::User(u) => DirectoryObjectView::User(wire::user(u)),
        DirectoryObject::Group(g) => DirectoryObjectView::Group(wire::group(g)),
    }
}

async fn create_group(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let input = NewGroup {
        display_name: b.required_str(&["displayName"])?,
        description: b.str(&["description"])?,
        mail_nickname: b.str(&["mailNickname"])?,
        mail_enabled: b.bool(&["mailEnabled"])?,
        security_enabled: b.bool(&["securityEnabled"])?,
        group_types: string_list(&b, "groupTypes")?.unwrap_or_default(),
        visibility: b.str(&["visibility"])?,
        members: bind_list(&b, "members@odata.bind")?,
        owners: bind_list(&b, "owners@odata.bind")?,
    };
    let group = groups::create_group(&s.app, &caller, input).await?;
    Ok(respond::created(&s, d, "groups", wire::group(&group)))
}

async fn get_group(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let group = groups::get_group(&s.app, &caller, &id).await?;
    Ok(respond::entity(&s, d, "groups", wire::group(&group)))
}

async fn list_groups(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let listed = groups::list_groups(&s.app, &caller, q.list_options()?).await?;
    Ok(respond::collection(&s, d, "groups", listed.views(wire::group), &q))
}

async fn update_group(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let patch = GroupPatch {
        display_name: patch_required_str(&b, "displayName")?,
        description: nullable_str(&b, "description")?,
        mail_nickname: nullable_str(&b, "mailNickname")?,
        mail_enabled: b.bool(&["mailEnabled"])?,
        security_enabled: b.bool(&["securityEnabled"])?,
        group_types: string_list(&b, "groupTypes")?,
        visibility: nullable_str(&b, "visibility")?,
    };
    groups::update_group(&s.app, &caller, &id, patch).await?;
    Ok(respond::no_content())
}

async fn delete_group(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    groups::delete_group(&s.app, &caller, &id).await?;
    Ok(respond::no_content())
}

async fn list_links(
    s: AppState,
    d: grantry_graph::Dialect,
    caller: grantry_core::Caller,
    id: String,
    relation: GroupRelation,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = groups::list_links(&s.app, &caller, &id, relation, q.page()?).await?;
    let items = page.items.iter().map(render).collect();
    Ok(respond::collection(&s, d, "directoryObjects", Listed { items, next: page.next, count: None }, &q))
}

async fn list_members(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    list_links(s, d, caller, id, GroupRelation::Member, q).await
}

async fn list_owners(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    list_links(s, d, caller, id, GroupRelation::Owner, q).await
}

async fn add_member(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let (set, object) = ref_body(&json)?;
    groups::add_link(&s.app, &caller, &id, GroupRelation::Member, object_ref(set, object)).await?;
    Ok(respond::no_content())
}

async fn add_owner(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let (set, object) = ref_body(&json)?;
    groups::add_link(&s.app, &caller, &id, GroupRelation::Owner, object_ref(set, object)).await?;
    Ok(respond::no_content())
}

async fn remove_member(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path((id, member)): Path<(String, String)>,
) -> ApiResult<Response> {
    groups::remove_link(&s.app, &caller, &id, GroupRelation::Member, &member).await?;
    Ok(respond::no_content())
}

async fn remove_owner(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path((id, member)): Path<(String, String)>,
) -> ApiResult<Response> {
    groups::remove_link(&s.app, &caller, &id, GroupRelation::Owner, &member).await?;
    Ok(respond::no_content())
}

/// `DELETE /groups/{id}/members/$ref?$id={url}`, the other form Graph accepts.
fn id_from_query(q: &RawQuery) -> Result<String> {
    let url = q.get("$id").filter(|v| !v.trim().is_empty()).ok_or_else(|| {
        Error::bad_request(
            "BadRequest",
            "Name the object to remove: DELETE /groups/{id}/members/{memberId}/$ref, or add ?$id=<URL of the object>.",
        )
        .with_target("$id")
    })?;
    wire::parse_odata_id(url).map(|(_, id)| id).ok_or_else(|| {
        Error::bad_request(
            "BadRequest",
            format!("$id must be the URL of a directory object ending in its id; got '{url}'."),
        )
        .with_target("$id")
    })
}

async fn remove_member_by_query(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let member = id_from_query(&q)?;
    groups::remove_link(&s.app, &caller, &id, GroupRelation::Member, &member).await?;
    Ok(respond::no_content())
}

async fn remove_owner_by_query(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let member = id_from_query(&q)?;
    groups::remove_link(&s.app, &caller, &id, GroupRelation::Owner, &member).await?;
    Ok(respond::no_content())
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    vec![
        list("/groups", "List groups", "Group"),
        create("/groups", "Create a group", "Group"),
        read("/groups/{id}", "Get a group", "Group"),
        update("/groups/{id}", "Update a group", "Group"),
        remove("/groups/{id}", "Delete a group"),
        list("/groups/{id}/members", "Members of a group", "Object"),
        list("/groups/{id}/owners", "Owners of a group", "Object"),
        op("post", "/groups/{id}/members/$ref", "Add a member", Some("Reference"), 204, None),
        remove("/groups/{id}/members/$ref", "Remove a member (?$id=)"),
        op("post", "/groups/{id}/owners/$ref", "Add an owner", Some("Reference"), 204, None),
        remove("/groups/{id}/owners/$ref", "Remove an owner (?$id=)"),
        remove("/groups/{id}/members/{member}/$ref", "Remove a member"),
        remove("/groups/{id}/owners/{member}/$ref", "Remove an owner"),
    ]
}
