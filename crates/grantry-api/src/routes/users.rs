//! `/users`, `/me`.

use crate::auth::Authed;
use crate::error::ApiResult;
use crate::extract::{GraphJson, RawQuery, Root};
use crate::respond;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use grantry_core::directory::{self, NewUser};
use grantry_domain::enums::UserType;
use grantry_graph::{Body, directory as wire};

pub fn routes() -> Router<AppState> {
    Router::new().route("/users", get(list_users).post(create_user)).route("/users/{id}", get(get_user))
}

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

async fn list_users(
    State(s): State<AppState>,
    Root(d): Root,
    Authed(caller): Authed,
    q: RawQuery,
) -> ApiResult<Response> {
    let listed = directory::list_users(&s.app, &caller, q.list_options()?).await?;
    Ok(respond::listed(&s, d, "users", listed.map(|u| wire::user(&u)), &q))
}
