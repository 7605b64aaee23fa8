//! Success responses: JSON with `@odata.context`, collections with `@odata.nextLink`.

use crate::error::ApiError;
use crate::extract::{RawQuery, encode_cursor};
use crate::state::AppState;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use grantry_core::listing::Listed;
use grantry_domain::Error;
use grantry_graph::Dialect;
use grantry_graph::wire::{Seen, Select, Selected};
use grantry_store::query::Cursor;
use serde::Serialize;

/// The Graph path of an entity set below the version root, for `@odata.context`.
pub const EM: &str = "identityGovernance/entitlementManagement";

/// A JSON body for answers that are not Graph entity sets (no `@odata.context`). On a 200,
/// `$select` keeps the named top-level properties as for entities, and the `/$count`
/// segment is refused.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    if status != StatusCode::OK {
        return match serde_json::to_vec(body) {
            Ok(bytes) => bytes_response(status, bytes),
            Err(e) => ApiError(Error::internal(format!("cannot serialize a response: {e}"))).into_response(),
        };
    }
    with_shape(|shape| {
        if shape.count_segment {
            return error_response(no_count());
        }
        let seen = Seen::default();
        let select = shape.select.as_ref();
        let bytes = match serde_json::to_vec(&Selected { value: body, select, seen: Some(&seen) }) {
            Ok(b) => b,
            Err(e) => return error_response(Error::internal(format!("cannot serialize a response: {e}"))),
        };
        if let Some(name) = select.and_then(|s| seen.missing(s)) {
            return error_response(no_such_property(name));
        }
        bytes_response(status, bytes)
    })
}

/// `{"value": [...]}`: the lists of Grantry's own endpoints (not Graph entity sets), with
/// `$select` applied to each item.
pub fn values<T: Serialize>(items: &[T]) -> Response {
    values_page(&NoHead {}, items, None)
}

/// Properties before `value` in a list of Grantry's own: none.
#[derive(Serialize)]
pub struct NoHead {}

/// A page of one of Grantry's own lists: `head`'s properties, `value` (each item through
/// `$select`) and `@odata.nextLink` when more follow.
pub fn values_page<H: Serialize, T: Serialize>(head: &H, items: &[T], next_link: Option<String>) -> Response {
    #[derive(Serialize)]
    struct Body<'a, H: Serialize, T: Serialize> {
        #[serde(flatten)]
        head: &'a H,
        value: SelectedItems<'a, T>,
        #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
        next_link: Option<String>,
    }
    with_shape(|shape| {
        if shape.count_segment {
            return error_response(no_count());
        }
        let seen = Seen::default();
        let select = shape.select.as_ref();
        let body = Body { head, value: SelectedItems { items, select, seen: &seen }, next_link };
        let bytes = match serde_json::to_vec(&body) {
            Ok(b) => b,
            Err(e) => return error_response(Error::internal(format!("cannot serialize a response: {e}"))),
        };
        if !items.is_empty()
            && let Some(name) = select.and_then(|s| seen.missing(s))
        {
            return error_response(no_such_property(name));
        }
        bytes_response(StatusCode::OK, bytes)
    })
}

fn no_count() -> Error {
    Error::bad_request("BadRequest", "The /$count segment is not supported on this collection.")
}

fn bytes_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

pub fn context_url(state: &AppState, dialect: Dialect, fragment: &str) -> String {
    format!("{}/{}/$metadata#{fragment}", state.config.public_base_url, dialect.root())
}

tokio::task_local! {
    /// The options that shape every response to the request being answered, parsed once by
    /// [`crate::middleware::odata_response`] before routing.
    pub static SHAPE: Shape;
}

/// `$select` (on GET) and the `/$count` segment.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    pub select: Option<Select>,
    pub count_segment: bool,
}

fn with_shape<R>(f: impl FnOnce(&Shape) -> R) -> R {
    let mut f = Some(f);
    match SHAPE.try_with(|shape| (f.take().expect("called once"))(shape)) {
        Ok(r) => r,
        Err(_) => (f.take().expect("not called"))(&Shape::default()),
    }
}

/// An entity with `@odata.context` first.
#[derive(Serialize)]
struct WithContext<'a, T: Serialize> {
    #[serde(rename = "@odata.context")]
    context: &'a str,
    #[serde(flatten)]
    value: T,
}

fn entity_bytes<T: Serialize>(
    state: &AppState,
    dialect: Dialect,
    set: &str,
    value: &T,
    select: Option<&Select>,
) -> Result<Vec<u8>, Error> {
    let context = context_url(state, dialect, &format!("{set}/$entity"));
    let seen = Seen::default();
    let body = WithContext { context: &context, value: Selected { value, select, seen: Some(&seen) } };
    let bytes = serde_json::to_vec(&body).map_err(|e| Error::internal(format!("cannot serialize a response: {e}")))?;
    if let Some(name) = select.and_then(|s| seen.missing(s)) {
        return Err(no_such_property(name));
    }
    Ok(bytes)
}

fn no_such_property(name: &str) -> Error {
    Error::bad_request("BadRequest", format!("Could not find a property named '{name}' to $select on this resource."))
        .with_target("$select")
}

fn error_response(e: Error) -> Response {
    ApiError(e).into_response()
}

/// 200 with one entity; `set` is the entity set path, e.g. `identityGovernance/entitlementManagement/catalogs`.
/// `$select` is applied while serializing.
pub fn entity<T: Serialize>(state: &AppState, dialect: Dialect, set: &str, value: T) -> Response {
    with_shape(|shape| match entity_bytes(state, dialect, set, &value, shape.select.as_ref()) {
        Ok(bytes) => bytes_response(StatusCode::OK, bytes),
        Err(e) => error_response(e),
    })
}

pub fn created<T: Serialize>(state: &AppState, dialect: Dialect, set: &str, value: T) -> Response {
    match entity_bytes(state, dialect, set, &value, None) {
        Ok(bytes) => bytes_response(StatusCode::CREATED, bytes),
        Err(e) => ApiError(e).into_response(),
    }
}

/// The body [`created`] sends.
pub fn created_body<T: Serialize>(state: &AppState, dialect: Dialect, set: &str, value: T) -> String {
    entity_bytes(state, dialect, set, &value, None)
        .map(|b| String::from_utf8(b).unwrap_or_default())
        .unwrap_or_default()
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

#[derive(Serialize)]
struct CollectionBody<'a, T: Serialize> {
    #[serde(rename = "@odata.context")]
    context: String,
    #[serde(rename = "@odata.count", skip_serializing_if = "Option::is_none")]
    count: Option<i64>,
    value: SelectedItems<'a, T>,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
}

/// The items of a page through `$select`; the first item's properties are checked against
/// the names selected.
struct SelectedItems<'a, T> {
    items: &'a [T],
    select: Option<&'a Select>,
    seen: &'a Seen,
}

impl<T: Serialize> Serialize for SelectedItems<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.items.len()))?;
        for (i, value) in self.items.iter().enumerate() {
            let seen = (i == 0).then_some(self.seen);
            seq.serialize_element(&Selected { value, select: self.select, seen })?;
        }
        seq.end()
    }
}

/// 200 with a page of a collection: `@odata.count` when asked for, `@odata.nextLink` (same
/// path and options, with a new `$skiptoken`) when more rows follow, `$select` applied while
/// serializing; under the `/$count` segment, the count alone as text.
pub fn collection<T: Serialize>(
    state: &AppState,
    dialect: Dialect,
    set: &str,
    listed: Listed<T>,
    query: &RawQuery,
) -> Response {
    with_shape(|shape| {
        if shape.count_segment {
            let Some(n) = listed.count else {
                return error_response(no_count());
            };
            let mut r = (StatusCode::OK, n.to_string()).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            return r;
        }
        let seen = Seen::default();
        let select = shape.select.as_ref();
        let body = CollectionBody {
            context: context_url(state, dialect, set),
            count: listed.count,
            value: SelectedItems { items: &listed.items, select, seen: &seen },
            next_link: listed.next.as_ref().map(|cursor| next_link(state, query, cursor)),
        };
        let bytes = match serde_json::to_vec(&body) {
            Ok(b) => b,
            Err(e) => return error_response(Error::internal(format!("cannot serialize a response: {e}"))),
        };
        if !listed.items.is_empty()
            && let Some(name) = select.and_then(|s| seen.missing(s))
        {
            return error_response(no_such_property(name));
        }
        bytes_response(StatusCode::OK, bytes)
    })
}

/// The same path and options with `$skiptoken` for `cursor`.
pub fn next_link(state: &AppState, query: &RawQuery, cursor: &Cursor) -> String {
    let token = encode_cursor(cursor);
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut parts: Vec<String> = query
        .pairs
        .iter()
        .filter(|(k, _)| !k.trim_start_matches('$').eq_ignore_ascii_case("skiptoken"))
        .map(|(k, v)| format!("{}={}", k, utf8_percent_encode(v, NON_ALPHANUMERIC)))
        .collect();
    parts.push(format!("$skiptoken={token}"));
    format!("{}{}?{}", state.config.public_base_url, query.path, parts.join("&"))
}
