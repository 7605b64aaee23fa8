//! Graph's error envelope, produced for every failure in one place.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use grantry_domain::{Error, ErrorKind};
use serde_json::json;

tokio::task_local! {
    /// The ids of the request being served, for `innerError` and response headers.
    pub static REQUEST_IDS: RequestIds;
}

#[derive(Debug, Clone)]
pub struct RequestIds {
    pub request_id: String,
    pub client_request_id: String,
}

pub fn current_ids() -> RequestIds {
    REQUEST_IDS
        .try_with(|ids| ids.clone())
        .unwrap_or_else(|_| RequestIds { request_id: grantry_domain::ids::new_id(), client_request_id: String::new() })
}

/// An [`Error`] on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub Error);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut e = self.0;
        let ids = current_ids();
        if e.kind == ErrorKind::Internal {
            // Internals stay in the log; the client gets the request id to quote.
            tracing::error!(request_id = %ids.request_id, error = %e.message, "internal error");
            e.message = format!(
                "An internal error occurred; nothing was changed. Quote request-id {} when reporting it.",
                ids.request_id
            );
        }
        grantry_domain::limits::clip_message(&mut e.message);
        let status = status_of(e.kind);
        // As Graph: the client's id when it sent one, otherwise the request id, so the
        // field always names something the client can quote.
        let client_request_id =
            if ids.client_request_id.is_empty() { ids.request_id.clone() } else { ids.client_request_id.clone() };
        let mut error = json!({
            "code": e.code,
            "message": e.message,
            "innerError": {
                "date": chrono_now_text(),
                "request-id": ids.request_id,
                "client-request-id": client_request_id,
            }
        });
        if let Some(target) = &e.target {
            error["target"] = json!(target);
            error["details"] = json!([{ "code": e.code, "message": e.message, "target": target }]);
        }
        let body = json!({ "error": error }).to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
            // Graph's clients and SDKs retry after this many seconds.
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            let challenge = format!(
                "Bearer realm=\"grantry\", error=\"invalid_token\", error_description=\"{}\"",
                e.message.replace('"', "'")
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            } else {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"grantry\""));
            }
        }
        response
    }
}

impl ApiError {
    /// The error in OAuth 2.0's shape, for the token endpoint (internal details stay in
    /// the log, as for Graph's envelope).
    pub fn into_response_oauth(self) -> Response {
        let ids = current_ids();
        let status = status_of(self.0.kind);
        let description = if self.0.kind == ErrorKind::Internal {
            tracing::error!(request_id = %ids.request_id, error = %self.0.message, "internal error");
            format!("An internal error occurred. Quote request-id {} when reporting it.", ids.request_id)
        } else {
            self.0.message
        };
        let error = if status.is_server_error() { "temporarily_unavailable" } else { "invalid_request" };
        let body = json!({ "error": error, "error_description": description, "trace_id": ids.request_id }).to_string();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// The error envelope's `date`. It is informational, so the wall clock is the right source.
#[allow(clippy::disallowed_methods)]
fn chrono_now_text() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

pub fn not_found_route(method: &str, path: &str) -> ApiError {
    ApiError(Error::new(
        ErrorKind::NotFound,
        "UnknownResource",
        format!(
            "No resource matches {method} {path}. Check the path against the Graph entitlement management API (v1.0 or beta)."
        ),
    ))
}
