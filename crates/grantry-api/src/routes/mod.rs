//! The route table. Every resource module contributes its routes to one table that is
//! mounted under both `/v1.0` and `/beta`; the root's [`Dialect`] travels in the request
//! and selects the rendering. Both dialects' segment names are accepted under both roots.

mod applications;
mod approvals;
mod assignments;
mod audit;
pub mod batch;
mod catalogs;
mod connected;
mod devclock;
mod environments;
mod extensions;
mod groups;
mod identity;
mod mail;
mod metadata;
mod packages;
mod policies;
mod provisioning;
mod rbac;
mod requests;
mod reviews;
mod users;
mod webhooks;

pub use identity::ClientThrottle;

use crate::error::{ApiError, not_found_route};
use crate::middleware::{DecodedFrom, odata_response, request_encoding, request_ids, rewrite_request};
use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use grantry_domain::{Error, ErrorKind};
use grantry_graph::Dialect;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::SizeAbove;
use tower_http::decompression::RequestDecompressionLayer;

/// Responses at least this large are gzip-compressed for clients that accept it (as Graph
/// does for large collections); smaller ones gain nothing from it.
const COMPRESS_ABOVE: u64 = 1024;

pub use metadata::document as metadata_document;

/// The routes of one Graph root.
fn graph_routes() -> Router<AppState> {
    Router::new()
        .merge(users::routes())
        .merge(groups::routes())
        .merge(rbac::routes())
        .merge(metadata::routes())
        .merge(requests::routes())
        .merge(assignments::routes())
        .merge(catalogs::routes())
        .merge(connected::routes())
        .merge(extensions::routes())
        .merge(packages::routes())
        .merge(environments::routes())
        .merge(policies::routes())
        .merge(approvals::routes())
        .merge(applications::routes())
        .merge(reviews::routes())
        .merge(batch::routes())
        .merge(audit::graph_routes())
}

/// The operations of one Graph root, as `graph_routes()` serves them (for the OpenAPI
/// document).
pub fn describe_graph() -> Vec<crate::openapi::RouteDoc> {
    [
        users::describe(),
        groups::describe(),
        rbac::describe(),
        metadata::describe(),
        requests::describe(),
        assignments::describe(),
        catalogs::describe(),
        connected::describe(),
        extensions::describe(),
        packages::describe(),
        environments::describe(),
        policies::describe(),
        approvals::describe(),
        applications::describe(),
        reviews::describe(),
        batch::describe(),
        audit::describe_graph(),
    ]
    .concat()
}

/// The operations served outside the Graph roots.
pub fn describe_root() -> Vec<crate::openapi::RouteDoc> {
    use crate::openapi::{op, read};
    [
        devclock::describe(),
        audit::describe(),
        webhooks::describe(),
        mail::describe(),
        provisioning::describe(),
        identity::describe(),
        vec![
            read("/", "Index: the API roots, documents and health endpoints", "Object"),
            read("/health", "Liveness", "Object"),
            read("/ready", "Readiness: the database answers", "Object"),
            op("get", "/openapi.json", "This document", None, 200, Some("Object")),
        ],
    ]
    .concat()
}

/// The whole router, wrapped so that path normalisation happens before routing.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    let read_timeout = state.config.read_timeout;
    let inner = Router::new()
        .nest("/v1.0", graph_routes().layer(Extension(Dialect::V1)))
        .nest("/beta", graph_routes().layer(Extension(Dialect::Beta)))
        .merge(devclock::routes())
        .merge(audit::routes())
        .merge(webhooks::routes())
        .merge(mail::routes())
        .merge(provisioning::routes())
        .merge(identity::routes())
        .merge(crate::scim::routes())
        .merge(crate::portal::routes())
        .route("/", get(root))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(crate::metrics::scrape))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        // Inside the idempotency layer, which runs a request's handler as a task of its own.
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::throttle::layer))
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::idempotency::layer))
        .layer(axum::middleware::from_fn_with_state((read_timeout, body_limit), bounded_body))
        // Compressed bodies are decoded outside the body limit, so the limit, the
        // idempotency hash and the handlers all see decoded bytes, and a small compressed
        // body that inflates past the limit is stopped as it streams.
        .layer(RequestDecompressionLayer::new().gzip(true).deflate(true).br(true))
        .layer(axum::middleware::from_fn(request_encoding))
        .layer(axum::middleware::from_fn(odata_response))
        .layer(axum::middleware::from_fn(request_ids))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(on_panic))
        // Outermost, so the layers above see responses uncompressed.
        .layer(CompressionLayer::new().gzip(true).compress_when(SizeAbove::new(COMPRESS_ABOVE)))
        // Outside everything else, so a request's time includes all of its handling; it
        // runs after routing (Router::layer wraps each route), so the template is known.
        .layer(axum::middleware::from_fn(crate::metrics::record))
        .with_state(state);
    // Rewriting inside a Router layer would run after routing; this wrapper runs before.
    let app = Router::new().fallback_service(tower::ServiceExt::map_request(inner, rewrite_request));
    // `$batch` sends its items through the whole router, handed to it in each request (the
    // router it gets lacks this extension, so items cannot be batches themselves).
    app.clone().layer(Extension(batch::Dispatcher(app)))
}

async fn fallback(req: Request) -> Response {
    not_found_route(req.method().as_str(), req.uri().path()).into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    ApiError(Error::new(
        ErrorKind::MethodNotAllowed,
        "MethodNotAllowed",
        format!(
            "{} is not supported on {}; see the API reference for the methods this resource accepts.",
            req.method(),
            req.uri().path()
        ),
    ))
    .into_response()
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError(Error::internal("a handler panicked")).into_response()
}

/// `GET /` for browsers (`Accept: text/html`): the portal.
async fn root(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if crate::portal::wants_html(&headers) {
        return crate::portal::home(&state, &headers).await;
    }
    index(State(state)).await
}

/// `GET /` for other clients, `/v1.0` and `/beta` (no token needed): where a newcomer goes
/// from here.
pub(crate) async fn index(State(state): State<AppState>) -> Response {
    let base = &state.config.public_base_url;
    crate::respond::json_response(
        axum::http::StatusCode::OK,
        &Index {
            service: "Grantry",
            version: env!("CARGO_PKG_VERSION"),
            description: "Entitlement management speaking the Microsoft Graph API. Send requests to an API root with a bearer token from `grantry token` (see `grantry token --help`).",
            api_roots: Roots { v1: format!("{base}/v1.0"), beta: format!("{base}/beta") },
            metadata: Roots { v1: format!("{base}/v1.0/$metadata"), beta: format!("{base}/beta/$metadata") },
            openapi: format!("{base}/openapi.json"),
            health: format!("{base}/health"),
            ready: format!("{base}/ready"),
            documentation: Documentation {
                grantry: "README.md and docs/ in the Grantry source",
                graph_api: "https://learn.microsoft.com/graph/api/resources/entitlementmanagement-overview",
            },
        },
    )
}

/// The answer to `GET /`: where things are.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    service: &'static str,
    version: &'static str,
    description: &'static str,
    api_roots: Roots,
    metadata: Roots,
    openapi: String,
    health: String,
    ready: String,
    documentation: Documentation,
}

#[derive(serde::Serialize)]
struct Roots {
    #[serde(rename = "v1.0")]
    v1: String,
    beta: String,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Documentation {
    grantry: &'static str,
    graph_api: &'static str,
}

/// `{"status": …}` of the health and readiness probes.
#[derive(serde::Serialize)]
struct Status {
    status: &'static str,
}

/// Liveness: the process answers.
async fn health() -> Response {
    crate::respond::json_response(axum::http::StatusCode::OK, &Status { status: "ok" })
}

/// Readiness: the database answers reads.
async fn ready(State(state): State<AppState>) -> Response {
    match state.app.store.read(|c| c.query_one("SELECT 1", &[])).await {
        Ok(_) => crate::respond::json_response(axum::http::StatusCode::OK, &Status { status: "ready" }),
        Err(e) => ApiError(Error::new(
            ErrorKind::Unavailable,
            "serviceNotAvailable",
            format!("The database is not available: {}", e.message),
        ))
        .into_response(),
    }
}

/// At most this many bytes of an oversized body are read and thrown away so that a client
/// that sends its whole body before reading the answer (most do) gets the 413 instead of a
/// connection reset; past it, the connection is closed.
const DRAIN_AT_MOST: u64 = 64 * 1024 * 1024;

/// Reads a request body whole within `read_timeout` (and at most `body_limit` bytes) before
/// the handler runs: a client that trickles its body is answered 408 instead of holding a
/// connection and a task for as long as it likes. (A per-read idle timeout would not do:
/// one byte every second never trips it.) A body over the limit never reaches a handler: a
/// declared `Content-Length` over it is refused before anything is read (at once when the
/// client waits for `100 Continue`), and the rest of an oversized body is read and thrown
/// away, within the same time and up to [`DRAIN_AT_MOST`], so the client gets the 413.
async fn bounded_body(
    State((read_timeout, body_limit)): State<(std::time::Duration, usize)>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::Method;
    use axum::http::header::{CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
    use http_body_util::BodyExt;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS)
        && !req.headers().contains_key(CONTENT_LENGTH)
        && !req.headers().contains_key(TRANSFER_ENCODING)
    {
        return next.run(req).await;
    }
    let deadline = tokio::time::Instant::now() + read_timeout;
    let decoded_from = req.extensions().get::<DecodedFrom>().map(|d| d.0);
    let declared: Option<u64> =
        req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    let waits_for_continue =
        req.headers().get(EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let (parts, mut body) = req.into_parts();
    // Compressed bodies are limited by their decoded size, which the header does not give.
    if decoded_from.is_none() && declared.is_some_and(|n| n > body_limit as u64) {
        if !waits_for_continue {
            drain(&mut body, deadline).await;
        }
        return too_large(body_limit, None);
    }
    let mut bytes = bytes::BytesMut::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return read_timed_out(read_timeout),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                let text = e.to_string();
                return if let Some(coding) = decoded_from {
                    if text.contains("length limit") {
                        too_large(body_limit, decoded_from)
                    } else {
                        ApiError(Error::bad_request(
                            "InvalidRequestBody",
                            format!(
                                "The request body is not valid {coding} data, as its Content-Encoding says: {text}"
                            ),
                        ))
                        .into_response()
                    }
                } else {
                    ApiError(Error::bad_request(
                        "InvalidRequestBody",
                        format!("The request body could not be read: {text}"),
                    ))
                    .into_response()
                };
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else { continue };
        if bytes.len() + data.len() > body_limit {
            // A compressed body is not drained: that would mean inflating it further.
            if decoded_from.is_none() {
                drain(&mut body, deadline).await;
            }
            return too_large(body_limit, decoded_from);
        }
        bytes.extend_from_slice(&data);
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes.freeze()))).await
}

/// Reads and discards the rest of `body` until it ends, `deadline` passes or
/// [`DRAIN_AT_MOST`] bytes have gone by.
async fn drain(body: &mut axum::body::Body, deadline: tokio::time::Instant) {
    use http_body_util::BodyExt;
    let mut drained = 0u64;
    while drained < DRAIN_AT_MOST {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    drained += data.len() as u64;
                }
            }
            _ => return,
        }
    }
}

fn too_large(body_limit: usize, decoded_from: Option<&'static str>) -> Response {
    let after = if decoded_from.is_some() { " once decompressed" } else { "" };
    let mut response = ApiError(Error::new(
        ErrorKind::PayloadTooLarge,
        "RequestEntityTooLarge",
        format!("The request body is larger{after} than the server accepts ({body_limit} bytes); send a smaller body."),
    ))
    .into_response();
    // Whatever is left of the body is not read, so the connection cannot carry another
    // request: say so, rather than let the client reuse it and fail.
    response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    response
}

fn read_timed_out(read_timeout: std::time::Duration) -> Response {
    let mut response = ApiError(Error::bad_request(
        "RequestTimeout",
        format!("The request body did not arrive within {} seconds; send it at once.", read_timeout.as_secs_f32()),
    ))
    .into_response();
    *response.status_mut() = axum::http::StatusCode::REQUEST_TIMEOUT;
    response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    response
}

/// The OpenAPI document of this server (no authentication).
async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], crate::openapi::document_text()).into_response()
}
