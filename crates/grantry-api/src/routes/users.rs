//! `/users`, `/me`, managers, direct reports and group memberships of users.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{GraphJson, RawQuery, Root};
use crate::respond;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, put};
use grantry_core::directory::{self, NewUser, UserPatch};
use grantry_core::listing::Listed;
use grantry_domain::enums::UserType;
use grantry_domain::model::{ObjectIdentity, UserProfile};
use grantry_domain::{Error, Result};
use grantry_graph::{Body, directory as wire};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user).patch(update_user).delete(delete_user))
        .route("/me", get(me))
        .route("/users/{id}/manager", get(get_manager))
        .route("/users/{id}/manager/$ref", put(set_manager).delete(remove_manager))
        .route("/users/{id}/directReports", get(direct_reports))
        .route("/users/{id}/memberOf", get(member_of))
}

/// A nullable string property of a PATCH: absent → `None`, `null` → `Some(None)`.
pub(crate) fn nullable_str(b: &Body<'_>, key: &str) -> Result<Option<Option<String>>> {
    if !b.has(key) {
        return Ok(None);
    }
    Ok(Some(b.str(&[key])?))
}

/// A property that may be left out of a PATCH but must not be emptied.
pub(crate) fn patch_required_str(b: &Body<'_>, key: &str) -> Result<Option<String>> {
    if !b.has(key) {
        return Ok(None);
    }
    b.required_str(&[key]).map(Some)
}

/// The id named by a `$ref` body's `@odata.id`: (entity set, id).
pub(crate) fn ref_body(json: &serde_json::Value) -> Result<(Option<String>, String)> {
    let b = Body::root(json)?;
    let reference = b.str(&["@odata.id"])?.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        Error::invalid_property(
            "@odata.id",
            "'@odata.id' is required: the URL of the object to reference, e.g. https://graph.microsoft.com/v1.0/directoryObjects/{id}.",
        )
    })?;
    wire::parse_odata_id(&reference).ok_or_else(|| {
        Error::invalid_property(
            "@odata.id",
            format!("'@odata.id' must be the URL of a directory object ending in its id, e.g. https://graph.microsoft.com/v1.0/users/{{id}}; got '{reference}'."),
        )
    })
}

/// The profile attributes of a created user.
fn profile(b: &Body<'_>) -> Result<UserProfile> {
    let mut p = UserProfile::default();
    for name in PROFILE {
        if let Some(slot) = p.field_mut(name) {
            *slot = b.str(&[name])?;
        }
    }
    p.identities = identities(b)?.unwrap_or_default();
    Ok(p)
}

/// `identities` (`objectIdentity[]`), when the body has it.
fn identities(b: &Body<'_>) -> Result<Option<Vec<ObjectIdentity>>> {
    if b.get("identities").is_none_or(serde_json::Value::is_null) {
        return Ok(None);
    }
    let mut out = Vec::new();
    for item in b.objects(&["identities"])? {
        out.push(ObjectIdentity {
            sign_in_type: item.str(&["signInType"])?,
            issuer: item.str(&["issuer"])?,
            issuer_assigned_id: item.str(&["issuerAssignedId"])?,
        });
    }
    Ok(Some(out))
}

/// The profile attributes a PATCH names (`null` clears one).
fn profile_patch(b: &Body<'_>) -> Result<Vec<(&'static str, Option<String>)>> {
    let mut out = Vec::new();
    for name in PROFILE {
        if let Some(v) = nullable_str(b, name)? {
            out.push((name, v));
        }
    }
    Ok(out)
}

const PROFILE: [&str; 11] = [
    "companyName",
    "country",
    "city",
    "state",
    "streetAddress",
    "postalCode",
    "officeLocation",
    "employeeType",
    "employeeId",
    "usageLocation",
    "preferredLanguage",
];

async fn create_user(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let input = NewUser {
        display_name: b.required_str(&["displayName"])?,
        user_principal_name: b.required_str(&["userPrincipalName"])?,
        mail: b.str(&["mail"])?,
        given_name: b.str(&["givenName"])?,
        surname: b.str(&["surname"])?,
        job_title: b.str(&["jobTitle"])?,
        department: b.str(&["department"])?,
        mail_nickname: b.str(&["mailNickname"])?,
        user_type: b.enumeration(&["userType"], UserType::parse, &UserType::allowed())?.unwrap_or(UserType::Member),
        account_enabled: b.bool(&["accountEnabled"])?.unwrap_or(true),
        profile: profile(&b)?,
    };
    let user = directory::create_user(&s.app, &caller, input).await?;
    Ok(respond::created(&s, d, "users", wire::user(&user)))
}

async fn get_user(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let user = directory::get_user(&s.app, &caller, &id).await?;
    Ok(respond::entity(&s, d, "users", wire::user(&user)))
}

async fn me(State(s): State<AppState>, Root(d): Root, Authed(caller): Authed) -> ApiResult<Response> {
    let user = directory::me(&s.app, &caller).await?;
    Ok(respond::entity(&s, d, "users", wire::user(&user)))
}

async fn update_user(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let b = Body::root(&json)?;
    let patch = UserPatch {
        display_name: patch_required_str(&b, "displayName")?,
        user_principal_name: patch_required_str(&b, "userPrincipalName")?,
        mail: nullable_str(&b, "mail")?,
        given_name: nullable_str(&b, "givenName")?,
        surname: nullable_str(&b, "surname")?,
        job_title: nullable_str(&b, "jobTitle")?,
        department: nullable_str(&b, "department")?,
        account_enabled: b.bool(&["accountEnabled"])?,
        user_type: b.enumeration(&["userType"], UserType::parse, &UserType::allowed())?,
        profile: profile_patch(&b)?,
        identities: identities(&b)?,
    };
    directory::update_user(&s.app, &caller, &id, patch).await?;
    Ok(respond::no_content())
}

async fn delete_user(State(s): State<AppState>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    directory::delete_user(&s.app, &caller, &id).await?;
    Ok(respond::no_content())
}

async fn list_users(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let listed = directory::list_users(&s.app, &caller, q.list_options()?).await?;
    Ok(respond::collection(&s, d, "users", listed.views(wire::user), &q))
}

async fn get_manager(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let manager = directory::get_manager(&s.app, &caller, &id).await?;
    Ok(respond::entity(&s, d, "directoryObjects", wire::user(&manager)))
}

async fn set_manager(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
    GraphJson(json): GraphJson,
) -> ApiResult<Response> {
    let (_, manager_id) = ref_body(&json)?;
    directory::set_manager(&s.app, &caller, &id, &manager_id).await?;
    Ok(respond::no_content())
}

async fn remove_manager(
    State(s): State<AppState>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    directory::remove_manager(&s.app, &caller, &id).await?;
    Ok(respond::no_content())
}

async fn direct_reports(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = directory::direct_reports(&s.app, &caller, &id, q.page()?).await?;
    let items = page.items.iter().map(wire::user).collect();
    Ok(respond::collection(&s, d, "directoryObjects", Listed { items, next: page.next, count: None }, &q))
}

async fn member_of(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    Path(id): Path<String>,
    q: RawQuery,
) -> ApiResult<Response> {
    let page = directory::member_of(&s.app, &caller, &id, q.page()?).await?;
    let items = page.items.iter().map(wire::group).collect();
    Ok(respond::collection(&s, d, "directoryObjects", Listed { items, next: page.next, count: None }, &q))
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::*;
    vec![
        list("/users", "List users", "User"),
        create("/users", "Create a user", "User"),
        read("/users/{id}", "Get a user", "User"),
        update("/users/{id}", "Update a user", "User"),
        remove("/users/{id}", "Delete a user"),
        read("/me", "The signed-in user", "User"),
        read("/users/{id}/manager", "A user's manager", "User"),
        op("put", "/users/{id}/manager/$ref", "Set a user's manager", Some("Reference"), 204, None),
        remove("/users/{id}/manager/$ref", "Remove a user's manager"),
        list("/users/{id}/directReports", "A user's direct reports", "User"),
        list("/users/{id}/memberOf", "Groups a user is a member of", "Group"),
    ]
}
