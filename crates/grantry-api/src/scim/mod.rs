//! The SCIM 2.0 service provider (RFC 7643/7644) at `/scim/v2`: identity providers such
//! as Entra and Okta push the directory's users and groups here.
//!
//! SCIM has its own bearer tokens (`grantry scim token create`), its own error shape and
//! its own media type, so it sits beside the Graph roots rather than inside them. The use
//! cases are in [`grantry_core::scim`]; this module parses, filters, pages and renders.

pub mod discovery;
pub mod filter;
mod narrow;
pub mod patch;
mod render;

use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use filter::{ENTERPRISE_USER, get_ci};
use grantry_core::scim::{self as core, GroupInput, UserInput};
use grantry_domain::{Error, ErrorKind};
use serde::Serialize;
use serde_json::Value;

pub const MEDIA_TYPE: &str = "application/scim+json";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Page size when the client names none; large enough for the first page of a small
/// directory to hold everything, as `scim2-tester` expects.
const DEFAULT_COUNT: usize = 100;
/// Largest page served (`filter.maxResults` in ServiceProviderConfig).
pub const MAX_COUNT: usize = 1000;

/// A failure in SCIM's error shape (RFC 7644 §3.12).
#[derive(Debug)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    schemas: [&'static str; 1],
    /// A string, as in the RFC's examples.
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scim_type: Option<&'static str>,
    detail: &'a str,
}

impl ScimError {
    pub fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        ScimError { status: StatusCode::BAD_REQUEST, scim_type: Some(scim_type), detail: detail.into() }
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        ScimError { status: StatusCode::NOT_FOUND, scim_type: None, detail: detail.into() }
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        ScimError { status: StatusCode::INTERNAL_SERVER_ERROR, scim_type: None, detail: detail.into() }
    }
    fn unauthorized() -> Self {
        ScimError {
            status: StatusCode::UNAUTHORIZED,
            scim_type: None,
            detail: "SCIM requests need 'Authorization: Bearer <token>' with a token from `grantry scim token create NAME`; \
                     Graph access tokens are not accepted here."
                .into(),
        }
    }
    pub fn method_not_allowed() -> Self {
        Self::method_not_allowed_but("GET")
    }
    /// A 405 naming the methods the endpoint answers (`allowed`, e.g. "GET, POST").
    pub fn method_not_allowed_but(allowed: &str) -> Self {
        ScimError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            scim_type: None,
            detail: format!("This SCIM endpoint answers {allowed} only."),
        }
    }
}

const SCIM_TYPES: &[&str] = &[
    "invalidFilter",
    "tooMany",
    "uniqueness",
    "mutability",
    "invalidSyntax",
    "invalidPath",
    "noTarget",
    "invalidValue",
    "invalidVers",
    "sensitive",
];

impl From<Error> for ScimError {
    fn from(e: Error) -> Self {
        let status = crate::error::status_of(e.kind);
        let scim_type = match e.kind {
            ErrorKind::Conflict => Some("uniqueness"),
            ErrorKind::BadRequest => Some(SCIM_TYPES.iter().copied().find(|t| *t == e.code).unwrap_or("invalidValue")),
            _ => None,
        };
        if e.kind == ErrorKind::Internal {
            let ids = crate::error::current_ids();
            tracing::error!(request_id = %ids.request_id, error = %e.message, "internal error in SCIM");
            return ScimError {
                status,
                scim_type,
                detail: format!("An internal error occurred; quote request id {} when reporting it.", ids.request_id),
            };
        }
        ScimError { status, scim_type, detail: e.message }
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            schemas: [ERROR_SCHEMA],
            status: self.status.as_u16().to_string(),
            scim_type: self.scim_type,
            detail: &self.detail,
        };
        scim_json(self.status, &body)
    }
}

/// A JSON response with SCIM's media type.
pub fn scim_json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut r = (status, bytes).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
            r
        }
        Err(e) => ScimError::internal(format!("cannot serialize: {e}")).into_response(),
    }
}

type ScimResult = Result<Response, ScimError>;

/// Checks the SCIM bearer token of the request.
pub async fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ScimError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty());
    let Some(token) = token else { return Err(ScimError::unauthorized()) };
    if core::authenticate(&state.app.store, token).await? { Ok(()) } else { Err(ScimError::unauthorized()) }
}

/// A method the endpoint does not answer: 405 in SCIM's shape with an `Allow` header.
fn refuse_method(allowed: &'static str) -> impl Fn() -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    move || {
        let mut r = ScimError::method_not_allowed_but(allowed).into_response();
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allowed));
        std::future::ready(r)
    }
}

pub fn routes() -> Router<AppState> {
    let not_allowed = refuse_method("GET");
    let collection = "GET, POST";
    let member = "GET, PUT, PATCH, DELETE";
    // The path normaliser lowercases the `Users` and `Groups` segments (shared with Graph).
    Router::new()
        .route("/scim/v2/users", get(list_users).post(create_user).fallback(refuse_method(collection)))
        .route("/scim/v2/users/.search", post(search_users).fallback(refuse_method("POST")))
        .route(
            "/scim/v2/users/{id}",
            get(get_user).put(replace_user).patch(patch_user).delete(delete_user).fallback(refuse_method(member)),
        )
        .route("/scim/v2/groups", get(list_groups).post(create_group).fallback(refuse_method(collection)))
        .route("/scim/v2/groups/.search", post(search_groups).fallback(refuse_method("POST")))
        .route(
            "/scim/v2/groups/{id}",
            get(get_group).put(replace_group).patch(patch_group).delete(delete_group).fallback(refuse_method(member)),
        )
        .route("/scim/v2/.search", post(search_all).fallback(refuse_method("POST")))
        .route("/scim/v2/ServiceProviderConfig", get(discovery::service_provider_config).fallback(not_allowed.clone()))
        .route("/scim/v2/ResourceTypes", get(discovery::resource_types).fallback(not_allowed.clone()))
        .route("/scim/v2/ResourceTypes/{id}", get(discovery::resource_type).fallback(not_allowed.clone()))
        .route("/scim/v2/Schemas", get(discovery::schemas).fallback(not_allowed.clone()))
        .route("/scim/v2/Schemas/{id}", get(discovery::schema).fallback(not_allowed))
        .route("/scim/v2", get(scim_not_found))
        .route("/scim/v2/{*rest}", axum::routing::any(scim_not_found))
}

async fn scim_not_found() -> ScimError {
    ScimError::not_found(
        "No such SCIM endpoint; the endpoints are /Users, /Groups, /ServiceProviderConfig, /ResourceTypes and /Schemas.",
    )
}

pub fn base_url(state: &AppState) -> String {
    format!("{}/scim/v2", state.config.public_base_url)
}

fn parse_body(bytes: &Bytes) -> Result<Value, ScimError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ScimError::bad("invalidSyntax", format!("The body is not valid JSON: {e}.")))?;
    if !value.is_object() {
        return Err(ScimError::bad("invalidSyntax", "The body must be a JSON object."));
    }
    Ok(value)
}

/// Query parameters, names lowercased.
fn query_params(raw: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    raw.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k).to_ascii_lowercase(), decode(v))
        })
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

// ---- reading bodies -------------------------------------------------------------------

fn opt_string(obj: &Value, key: &str, what: &str) -> Result<Option<String>, ScimError> {
    match get_ci(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ScimError::bad("invalidValue", format!("'{what}' must be a string, not {other}."))),
    }
}

/// A boolean, accepting Entra's "True"/"False" strings.
fn opt_bool(obj: &Value, key: &str) -> Result<Option<bool>, ScimError> {
    match get_ci(obj, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(ScimError::bad("invalidValue", format!("'{key}' must be true or false, not {other}."))),
    }
}

/// The user's address: the primary email, else the first (Grantry keeps one).
fn primary_email(body: &Value) -> Result<Option<String>, ScimError> {
    let emails = match get_ci(body, "emails") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ScimError::bad("invalidValue", "'emails' must be an array of {value, type, primary}.")),
    };
    let mut first = None;
    for e in emails {
        let value = opt_string(e, "value", "emails.value")?;
        let primary = opt_bool(e, "primary")?.unwrap_or(false);
        if primary && value.is_some() {
            return Ok(value);
        }
        if first.is_none() {
            first = value;
        }
    }
    Ok(first)
}

pub fn user_input(body: &Value) -> Result<UserInput, ScimError> {
    let user_name = opt_string(body, "userName", "userName")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ScimError::bad("invalidValue", "'userName' is required, e.g. \"adele@contoso.com\"."))?;
    let null = Value::Null;
    let name = get_ci(body, "name").unwrap_or(&null);
    let enterprise = get_ci(body, ENTERPRISE_USER).unwrap_or(&null);
    let manager_id = match get_ci(enterprise, "manager") {
        None | Some(Value::Null) => None,
        // Entra sends the manager's id as a plain string when mapped that way.
        Some(Value::String(s)) => Some(s.clone()),
        // `value` is the manager's id; a `$ref` alone names it by its URI.
        Some(m @ Value::Object(_)) => match opt_string(m, "value", "manager.value")? {
            Some(v) => Some(v),
            None => opt_string(m, "$ref", "manager.$ref")?
                .and_then(|r| r.trim_end_matches('/').rsplit('/').next().map(str::to_string)),
        },
        Some(_) => {
            return Err(ScimError::bad("invalidValue", "'manager' must be an object {\"value\": \"<user id>\"}."));
        }
    }
    .filter(|s| !s.trim().is_empty());
    Ok(UserInput {
        user_name: user_name.trim().to_string(),
        display_name: opt_string(body, "displayName", "displayName")?,
        given_name: opt_string(name, "givenName", "name.givenName")?,
        family_name: opt_string(name, "familyName", "name.familyName")?,
        formatted_name: opt_string(name, "formatted", "name.formatted")?,
        mail: primary_email(body)?,
        title: opt_string(body, "title", "title")?,
        department: opt_string(enterprise, "department", "department")?,
        manager_id,
        external_id: opt_string(body, "externalId", "externalId")?,
        active: opt_bool(body, "active")?.unwrap_or(true),
    })
}

pub fn group_input(body: &Value) -> Result<GroupInput, ScimError> {
    let display_name = opt_string(body, "displayName", "displayName")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ScimError::bad("invalidValue", "'displayName' is required."))?;
    let members = match get_ci(body, "members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|m| {
                opt_string(m, "value", "members.value")?
                    .ok_or_else(|| ScimError::bad("invalidValue", "Each member needs a 'value' (the member's id)."))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ScimError::bad("invalidValue", "'members' must be an array of {\"value\": \"<id>\"}.")),
    };
    Ok(GroupInput { display_name, external_id: opt_string(body, "externalId", "externalId")?, members })
}

// ---- listing ---------------------------------------------------------------------------

/// Filters, pages and projects rendered resources into a ListResponse.
/// A list's query: its filter, `startIndex` and `count`.
struct ListQuery {
    filter: Option<filter::Filter>,
    start: usize,
    count: usize,
}

fn list_query(params: &[(String, String)]) -> Result<ListQuery, ScimError> {
    let filter = match param(params, "filter").filter(|f| !f.trim().is_empty()) {
        Some(f) => Some(
            filter::parse(f)
                .map_err(|e| ScimError::bad("invalidFilter", format!("The filter '{f}' is invalid: {e}.")))?,
        ),
        None => None,
    };
    let number = |name: &str| -> Result<Option<i64>, ScimError> {
        param(params, name)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| ScimError::bad("invalidValue", format!("'{name}' must be an integer, not '{v}'.")))
            })
            .transpose()
    };
    // RFC 7644 §3.4.2.4: startIndex below 1 means 1, a negative count means 0.
    let start = number("startindex")?.unwrap_or(1).max(1) as usize;
    let count = number("count")?.map(|c| c.max(0) as usize).unwrap_or(DEFAULT_COUNT).min(MAX_COUNT);
    Ok(ListQuery { filter, start, count })
}

/// One page of users: the filter narrowed to SQL, tested exactly on each row read.
async fn user_page(
    state: &AppState,
    q: &ListQuery,
    start: usize,
    count: usize,
) -> Result<(usize, Vec<Value>), ScimError> {
    let base = base_url(state);
    let narrowing = q.filter.as_ref().and_then(|f| narrow::narrowing(f, false));
    let (f, b) = (q.filter.clone(), base.clone());
    let keep: core::Keep<core::ScimUser> = std::sync::Arc::new(move |u: &core::ScimUser| {
        f.as_ref().is_none_or(|f| render::user(&b, u).is_ok_and(|r| filter::matches(f, &r)))
    });
    let (total, users) = core::page(&state.app, narrowing, keep, start, count).await?;
    Ok((total, users.iter().map(|u| render::user(&base, u)).collect::<Result<Vec<_>, _>>()?))
}

/// One page of groups, as [`user_page`].
async fn group_page(
    state: &AppState,
    q: &ListQuery,
    start: usize,
    count: usize,
) -> Result<(usize, Vec<Value>), ScimError> {
    let base = base_url(state);
    let narrowing = q.filter.as_ref().and_then(|f| narrow::narrowing(f, true));
    let (f, b) = (q.filter.clone(), base.clone());
    let keep: core::Keep<core::ScimGroup> = std::sync::Arc::new(move |g: &core::ScimGroup| {
        f.as_ref().is_none_or(|f| render::group(&b, g).is_ok_and(|r| filter::matches(f, &r)))
    });
    let (total, groups) = core::page(&state.app, narrowing, keep, start, count).await?;
    Ok((total, groups.iter().map(|g| render::group(&base, g)).collect::<Result<Vec<_>, _>>()?))
}

fn list_body(params: &[(String, String)], start: usize, total: usize, page: Vec<Value>) -> ScimResult {
    let page: Vec<Value> = page
        .into_iter()
        .map(|r| project(r, param(params, "attributes"), param(params, "excludedattributes")))
        .collect();
    let body = render::ListResponse {
        schemas: [LIST_SCHEMA],
        total_results: total,
        start_index: start,
        items_per_page: page.len(),
        resources: page,
    };
    Ok(scim_json(StatusCode::OK, &body))
}

async fn list_users_with(state: &AppState, params: &[(String, String)]) -> ScimResult {
    let q = list_query(params)?;
    let (total, page) = user_page(state, &q, q.start, q.count).await?;
    list_body(params, q.start, total, page)
}

async fn list_groups_with(state: &AppState, params: &[(String, String)]) -> ScimResult {
    let q = list_query(params)?;
    let (total, page) = group_page(state, &q, q.start, q.count).await?;
    list_body(params, q.start, total, page)
}

/// Users, then groups, as one list.
async fn list_all_with(state: &AppState, params: &[(String, String)]) -> ScimResult {
    let q = list_query(params)?;
    let (users, mut page) = user_page(state, &q, q.start, q.count).await?;
    let group_start = q.start.saturating_sub(users).max(1);
    let (groups, more) = group_page(state, &q, group_start, q.count - page.len()).await?;
    page.extend(more);
    list_body(params, q.start, users + groups, page)
}

/// Applies `attributes` / `excludedAttributes` (top-level names) to a resource; `id`,
/// `schemas` and `meta` always stay.
fn project(resource: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let names =
        |s: &str| s.split(',').map(|n| n.trim().to_ascii_lowercase()).filter(|n| !n.is_empty()).collect::<Vec<_>>();
    let Value::Object(mut map) = resource else { return resource };
    let keep_always = |k: &str| matches!(k.to_ascii_lowercase().as_str(), "id" | "schemas" | "meta");
    // Keep `name.givenName` when asked for `name.givenName`: compare the first segment.
    let top = |n: &String| -> String {
        match filter::parse_patch_path(n) {
            Ok(p) => p.extension.unwrap_or(p.attr).to_ascii_lowercase(),
            Err(_) => n.clone(),
        }
    };
    if let Some(list) = attributes.filter(|s| !s.trim().is_empty()) {
        let wanted: Vec<String> = names(list).iter().map(top).collect();
        map.retain(|k, _| keep_always(k) || wanted.contains(&k.to_ascii_lowercase()));
    } else if let Some(list) = excluded.filter(|s| !s.trim().is_empty()) {
        let unwanted: Vec<String> = names(list).iter().map(top).collect();
        map.retain(|k, _| keep_always(k) || !unwanted.contains(&k.to_ascii_lowercase()));
    }
    Value::Object(map)
}

fn single(status: StatusCode, resource: Value, location: Option<&str>, params: &[(String, String)]) -> Response {
    let resource = project(resource, param(params, "attributes"), param(params, "excludedattributes"));
    let mut r = scim_json(status, &resource);
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    r
}

/// The query parameters a `POST …/.search` body stands for (RFC 7644 §3.4.3).
fn search_params(bytes: &Bytes) -> Result<Vec<(String, String)>, ScimError> {
    let body = parse_body(bytes)?;
    let mut params = Vec::new();
    for (key, name) in [
        ("filter", "filter"),
        ("startIndex", "startindex"),
        ("count", "count"),
        ("attributes", "attributes"),
        ("excludedAttributes", "excludedattributes"),
    ] {
        let value = match get_ci(&body, key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ScimError::bad("invalidValue", format!("'{key}' must be an array of attribute names.")))?
                .join(","),
            Some(other) => return Err(ScimError::bad("invalidValue", format!("'{key}' cannot be {other}."))),
        };
        params.push((name.to_string(), value));
    }
    Ok(params)
}

async fn search_users(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ScimResult {
    authorize(&state, &headers).await?;
    let params = search_params(&body)?;
    list_users_with(&state, &params).await
}

async fn search_groups(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ScimResult {
    authorize(&state, &headers).await?;
    let params = search_params(&body)?;
    list_groups_with(&state, &params).await
}

/// `POST /.search` at the root: users, then groups.
async fn search_all(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> ScimResult {
    authorize(&state, &headers).await?;
    let params = search_params(&body)?;
    list_all_with(&state, &params).await
}

// ---- users -----------------------------------------------------------------------------

async fn list_users(State(state): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> ScimResult {
    authorize(&state, &headers).await?;
    list_users_with(&state, &query_params(q.as_deref())).await
}

async fn create_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ScimResult {
    authorize(&state, &headers).await?;
    let input = user_input(&parse_body(&body)?)?;
    let created = core::create_user(&state.app, input).await?;
    let base = base_url(&state);
    let location = format!("{base}/Users/{}", created.user.id);
    Ok(single(StatusCode::CREATED, render::user(&base, &created)?, Some(&location), &query_params(q.as_deref())))
}

async fn get_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ScimResult {
    authorize(&state, &headers).await?;
    let user = core::get_user(&state.app, &id).await?;
    Ok(single(StatusCode::OK, render::user(&base_url(&state), &user)?, None, &query_params(q.as_deref())))
}

async fn replace_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult {
    authorize(&state, &headers).await?;
    let input = user_input(&parse_body(&body)?)?;
    let user = core::update_user(&state.app, &id, move |_| Ok(input)).await?;
    Ok(single(StatusCode::OK, render::user(&base_url(&state), &user)?, None, &[]))
}

/// Errors raised inside the write (the PATCH itself) travel as domain errors with the
/// scimType as code, so they keep their scimType on the way out.
fn to_domain(e: ScimError) -> Error {
    let kind = match e.status {
        StatusCode::BAD_REQUEST => ErrorKind::BadRequest,
        StatusCode::NOT_FOUND => ErrorKind::NotFound,
        StatusCode::CONFLICT => ErrorKind::Conflict,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, e.scim_type.unwrap_or("internal"), e.detail)
}

async fn patch_user(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult {
    authorize(&state, &headers).await?;
    let body = parse_body(&body)?;
    let base = base_url(&state);
    let inner_base = base.clone();
    let user = core::update_user(&state.app, &id, move |current| {
        let mut resource = render::user(&inner_base, current).map_err(to_domain)?;
        patch::apply(&mut resource, &body).map_err(to_domain)?;
        user_input(&resource).map_err(to_domain)
    })
    .await?;
    Ok(single(StatusCode::OK, render::user(&base, &user)?, None, &[]))
}

async fn delete_user(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> ScimResult {
    authorize(&state, &headers).await?;
    core::delete_user(&state.app, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- groups ----------------------------------------------------------------------------

async fn list_groups(State(state): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> ScimResult {
    authorize(&state, &headers).await?;
    list_groups_with(&state, &query_params(q.as_deref())).await
}

async fn create_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> ScimResult {
    authorize(&state, &headers).await?;
    let input = group_input(&parse_body(&body)?)?;
    let created = core::create_group(&state.app, input).await?;
    let base = base_url(&state);
    let location = format!("{base}/Groups/{}", created.group.id);
    Ok(single(StatusCode::CREATED, render::group(&base, &created)?, Some(&location), &query_params(q.as_deref())))
}

async fn get_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ScimResult {
    authorize(&state, &headers).await?;
    let group = core::get_group(&state.app, &id).await?;
    Ok(single(StatusCode::OK, render::group(&base_url(&state), &group)?, None, &query_params(q.as_deref())))
}

async fn replace_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult {
    authorize(&state, &headers).await?;
    let input = group_input(&parse_body(&body)?)?;
    let group = core::update_group(&state.app, &id, move |_| Ok(input)).await?;
    Ok(single(StatusCode::OK, render::group(&base_url(&state), &group)?, None, &[]))
}

/// Answers 204, as Entra expects for groups (Okta accepts it too).
async fn patch_group(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> ScimResult {
    authorize(&state, &headers).await?;
    let body = parse_body(&body)?;
    let base = base_url(&state);
    core::update_group(&state.app, &id, move |current| {
        let mut resource = render::group(&base, current).map_err(to_domain)?;
        patch::apply(&mut resource, &body).map_err(to_domain)?;
        group_input(&resource).map_err(to_domain)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_group(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> ScimResult {
    authorize(&state, &headers).await?;
    core::delete_group(&state.app, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
