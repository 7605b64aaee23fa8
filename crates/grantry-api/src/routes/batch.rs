//! JSON batching: `POST /v1.0/$batch` and `POST /beta/$batch`.
//!
//! The batch is checked as a whole first (1 to 20 requests, ids unique ignoring case, a
//! dependency pattern Graph accepts); a batch that fails a check is answered 400 in Graph's
//! envelope and nothing runs. Then every item is turned into an HTTP request of its own and
//! sent through the same router a direct call goes through (path normalisation, request
//! ids, body limits, idempotency, throttling, authentication with the batch's bearer
//! token, the handlers), so each item is authorized and validated as its own call. Items
//! are separate calls: no transaction spans them.

use crate::error::{ApiError, ApiResult};
use crate::extract::GraphJson;
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::post;
use grantry_domain::Error;
use grantry_graph::Dialect;
use serde_json::{Map, Value};
use tower::ServiceExt;

/// Most requests one batch may carry (Graph's limit).
pub const MAX_REQUESTS: usize = 20;

/// The whole router, put into every request from outside it, so the `$batch` handler can
/// send its items through it. The router it holds does not carry this extension itself, so
/// an item can never be a batch of its own (Graph does not nest batches either).
#[derive(Clone)]
pub struct Dispatcher(pub Router);

pub fn routes() -> Router<AppState> {
    Router::new().route("/$batch", post(batch))
}

/// One parsed item.
struct Item {
    id: String,
    method: Method,
    /// Path and query under the batch's root, e.g. `/v1.0/users?$top=1`, or the reason the
    /// item's URL cannot be served (answered as that item's 400).
    target: Result<String, String>,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<Result<Vec<u8>, String>>,
    depends_on: Option<usize>,
}

/// One item's answer.
struct Answer {
    status: u16,
    headers: AnswerHeaders,
    body: Option<AnswerBody>,
}

/// An item's response headers, in the order received, repeated names joined by `, `.
struct AnswerHeaders(Vec<(String, String)>);

impl serde::Serialize for AnswerHeaders {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// An item's body: its JSON as the handler wrote it, or other content as a string.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum AnswerBody {
    Json(Box<serde_json::value::RawValue>),
    Text(String),
}

/// One entry of `responses`.
#[derive(serde::Serialize)]
struct ItemResponse {
    id: String,
    status: u16,
    headers: AnswerHeaders,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<AnswerBody>,
}

/// The batch response.
#[derive(serde::Serialize)]
struct BatchResponse {
    responses: Vec<ItemResponse>,
}

fn bad_batch(message: impl Into<String>) -> ApiError {
    ApiError(Error::bad_request("BadRequest", message))
}

/// Looks up `name` in a JSON object ignoring case (clients spell `dependsOn`, `depends_on`
/// and `Headers` in several ways).
fn member<'a>(obj: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    obj.iter().find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n))).map(|(_, v)| v)
}

async fn batch(
    State(state): State<AppState>,
    axum::Extension(dialect): axum::Extension<Dialect>,
    dispatcher: Option<axum::Extension<Dispatcher>>,
    request_headers: HeaderMap,
    GraphJson(body): GraphJson,
) -> ApiResult<Response> {
    let Some(axum::Extension(Dispatcher(router))) = dispatcher else {
        return Err(bad_batch("A $batch request cannot be sent inside another batch."));
    };
    let items = parse(&state, dialect, &request_headers, &body)?;
    let answers = run(router, &request_headers, items).await;
    let responses = answers
        .into_iter()
        .map(|(id, a)| ItemResponse { id, status: a.status, headers: a.headers, body: a.body })
        .collect();
    Ok(crate::respond::json_response(StatusCode::OK, &BatchResponse { responses }))
}

/// Reads and checks the whole batch (see the module documentation).
fn parse(state: &AppState, dialect: Dialect, request_headers: &HeaderMap, body: &Value) -> ApiResult<Vec<Item>> {
    let obj = body.as_object().ok_or_else(|| bad_batch("The batch body must be a JSON object with 'requests'."))?;
    let Some(Value::Array(requests)) = member(obj, &["requests"]) else {
        return Err(bad_batch("Invalid batch payload format: the body must have a 'requests' array."));
    };
    if requests.is_empty() {
        return Err(bad_batch("Invalid batch payload format: 'requests' is empty; send at least one request."));
    }
    if requests.len() > MAX_REQUESTS {
        return Err(bad_batch(format!(
            "Number of batch request steps exceeds the maximum value of {MAX_REQUESTS} (got {}).",
            requests.len()
        )));
    }
    let mut items: Vec<Item> = Vec::with_capacity(requests.len());
    let mut dependencies: Vec<Option<String>> = Vec::with_capacity(requests.len());
    for (index, raw) in requests.iter().enumerate() {
        let item = raw.as_object().ok_or_else(|| {
            bad_batch(format!("Invalid batch payload format: request {} is not an object.", index + 1))
        })?;
        let id = match member(item, &["id"]) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(bad_batch(format!("Request {} has no 'id'; every request needs one.", index + 1))),
        };
        if items.iter().any(|i| i.id.eq_ignore_ascii_case(&id)) {
            return Err(bad_batch(format!(
                "Request id '{id}' appears more than once in the batch; ids must be unique."
            )));
        }
        let method = match member(item, &["method"]) {
            Some(Value::String(m)) => Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
                .map_err(|_| bad_batch(format!("Request '{id}' has an invalid 'method': '{m}'.")))?,
            _ => return Err(bad_batch(format!("Request '{id}' has no 'method'."))),
        };
        let url = match member(item, &["url"]) {
            Some(Value::String(u)) if !u.trim().is_empty() => u.trim().to_string(),
            _ => return Err(bad_batch(format!("Request '{id}' has no 'url'."))),
        };
        let mut headers = Vec::new();
        let mut content_type = None;
        match member(item, &["headers"]) {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) => {
                for (name, value) in h {
                    let value = match value {
                        Value::String(s) => s.clone(),
                        Value::Array(parts) => parts
                            .iter()
                            .map(|p| p.as_str().map(str::to_string).unwrap_or_else(|| p.to_string()))
                            .collect::<Vec<_>>()
                            .join(", "),
                        Value::Null => continue,
                        other => other.to_string(),
                    };
                    let (Ok(name), Ok(value)) =
                        (HeaderName::from_bytes(name.trim().as_bytes()), HeaderValue::from_str(value.trim()))
                    else {
                        return Err(bad_batch(format!(
                            "Request '{id}' has a header that is not valid HTTP: '{name}'."
                        )));
                    };
                    if name == header::CONTENT_TYPE {
                        content_type = value.to_str().ok().map(|v| v.to_ascii_lowercase());
                    }
                    if !FORWARDED_AS_SENT.contains(&name) {
                        headers.push((name, value));
                    }
                }
            }
            Some(_) => return Err(bad_batch(format!("Request '{id}': 'headers' must be an object."))),
        }
        let body = match member(item, &["body"]) {
            None | Some(Value::Null) => None,
            Some(b) => {
                let Some(ct) = &content_type else {
                    return Err(bad_batch(format!(
                        "Request '{id}' has a body but no Content-Type header; add \"headers\": {{\"Content-Type\": \"application/json\"}}."
                    )));
                };
                Some(item_body(b, ct))
            }
        };
        let depends = match member(item, &["dependsOn", "depends_on"]) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(bad_batch(format!("Request '{id}': 'dependsOn' must list request ids."))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(bad_batch(format!("Request '{id}': 'dependsOn' must be an array of request ids."))),
        };
        if depends.len() > 1 {
            return Err(bad_batch(format!(
                "Request '{id}' depends on {} requests; a request may depend on one other request only.",
                depends.len()
            )));
        }
        let depends = depends.into_iter().next();
        let depends_on = match &depends {
            None => None,
            Some(d) => match items.iter().position(|i| i.id.eq_ignore_ascii_case(d)) {
                Some(p) => Some(p),
                None => {
                    return Err(bad_batch(format!(
                        "Invalid dependency for request Id {id}: '{d}' is not an earlier request of this batch."
                    )));
                }
            },
        };
        dependencies.push(depends);
        items.push(Item {
            id,
            method,
            target: target_of(state, dialect, request_headers, &url),
            headers,
            body,
            depends_on,
        });
    }
    check_pattern(&items)?;
    Ok(items)
}

/// Item headers replaced by the batch's own (the batch's token authorizes every item) or
/// set from the item's body.
const FORWARDED_AS_SENT: &[HeaderName] = &[
    header::AUTHORIZATION,
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONTENT_ENCODING,
    header::CONNECTION,
    header::EXPECT,
];

/// An item's body as bytes: a JSON value is serialized; a string is base64 (either
/// alphabet, padded or not), as Graph's clients send non-JSON content and as the Python
/// SDK sends `{}` and arrays.
fn item_body(body: &Value, content_type: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    match body {
        Value::String(s) => {
            let s = s.trim();
            let decoded = [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(s).ok());
            match decoded {
                Some(bytes) => Ok(bytes),
                // A JSON string that is not base64 under a JSON content type: the client
                // meant the string itself.
                None if content_type.contains("json") => Ok(body.to_string().into_bytes()),
                None => Err("The request's body is a string that is not base64-encoded content.".into()),
            }
        }
        other => Ok(other.to_string().into_bytes()),
    }
}

/// The path and query an item URL names under the batch's root. Graph takes URLs relative
/// to the version root (`/users` or `users`); Grantry also takes an absolute URL of this
/// server under the same root (the Python SDK sends those) and a relative URL that repeats
/// the root (`/v1.0/users`).
fn target_of(state: &AppState, dialect: Dialect, request_headers: &HeaderMap, url: &str) -> Result<String, String> {
    let root = dialect.root();
    let lower = url.to_ascii_lowercase();
    let path_and_query = if lower.starts_with("http://") || lower.starts_with("https://") {
        let uri: Uri = url.parse().map_err(|_| format!("The request URL '{url}' is not a valid URL."))?;
        let authority = uri.authority().map(|a| a.as_str().to_ascii_lowercase()).unwrap_or_default();
        let host = request_headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let public = state.config.public_base_url.to_ascii_lowercase();
        let public_authority =
            public.split_once("://").map(|(_, rest)| rest.split('/').next().unwrap_or("")).unwrap_or("");
        if authority != host && authority != public_authority {
            return Err(format!(
                "The request URL '{url}' names another server; batch items take URLs relative to /{root}, such as '/users'."
            ));
        }
        let pq = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
        let under = format!("/{root}/");
        if !(pq.starts_with(&under) || pq == format!("/{root}") || pq.starts_with(&format!("/{root}?"))) {
            return Err(format!(
                "The request URL '{url}' is not under /{root}; the version in the batch URL applies to every request."
            ));
        }
        pq
    } else {
        let relative = url.trim_start_matches('/');
        let repeats_root =
            relative.strip_prefix(root).is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']));
        if repeats_root { format!("/{relative}") } else { format!("/{root}/{relative}") }
    };
    let path = path_and_query.split('?').next().unwrap_or("");
    if path.split('/').any(|s| s.eq_ignore_ascii_case("$batch") || s.eq_ignore_ascii_case("%24batch")) {
        return Err("A $batch request cannot be sent inside another batch.".into());
    }
    // Graph's URLs carry spaces and quotes unescaped in `$filter`; escape what a URI may
    // not hold, keeping what is already escaped.
    let escaped: String = path_and_query
        .chars()
        .map(|c| match c {
            ' ' => "%20".to_string(),
            '"' => "%22".to_string(),
            '<' => "%3C".to_string(),
            '>' => "%3E".to_string(),
            '`' => "%60".to_string(),
            '{' => "%7B".to_string(),
            '}' => "%7D".to_string(),
            '|' => "%7C".to_string(),
            '\\' => "%5C".to_string(),
            '^' => "%5E".to_string(),
            c if c.is_ascii_control() => format!("%{:02X}", c as u32),
            c if !c.is_ascii() => {
                let mut buf = [0u8; 4];
                c.encode_utf8(&mut buf).bytes().map(|b| format!("%{b:02X}")).collect()
            }
            c => c.to_string(),
        })
        .collect();
    escaped.parse::<Uri>().map_err(|_| format!("The request URL '{url}' is not a valid URL."))?;
    Ok(escaped)
}

/// Graph runs three dependency patterns only: parallel (no request depends on another),
/// sequential (each request depends on the one before it) and "same" (every request that
/// depends on one names the same request); anything else is refused whole.
fn check_pattern(items: &[Item]) -> ApiResult<()> {
    let deps: Vec<Option<usize>> = items.iter().map(|i| i.depends_on).collect();
    if deps.iter().all(Option::is_none) {
        return Ok(());
    }
    let sequential = deps.iter().enumerate().all(|(i, d)| if i == 0 { d.is_none() } else { *d == Some(i - 1) });
    let named: Vec<usize> = deps.iter().flatten().copied().collect();
    let same = named.windows(2).all(|w| w[0] == w[1]);
    if sequential || same {
        Ok(())
    } else {
        Err(bad_batch(
            "Batch should be either fully sequential or fully parallel: each request depends on the one before it, \
             or every dependent request depends on the same request.",
        ))
    }
}

/// Runs the items: those with no dependency at once and side by side, then the dependent
/// ones one after another in the batch's order, each only if what it depends on succeeded
/// (otherwise it is answered 424 without running). Answers come back in the batch's order.
async fn run(router: Router, request_headers: &HeaderMap, items: Vec<Item>) -> Vec<(String, Answer)> {
    let authorization = request_headers.get(header::AUTHORIZATION).cloned();
    let host = request_headers.get(header::HOST).cloned();
    let ids: Vec<String> = items.iter().map(|i| i.id.clone()).collect();
    let mut answers: Vec<Option<Answer>> = items.iter().map(|_| None).collect();
    let mut independent = tokio::task::JoinSet::new();
    let mut dependent = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        if item.depends_on.is_none() {
            let (router, authorization, host) = (router.clone(), authorization.clone(), host.clone());
            independent.spawn(async move { (index, call(router, authorization, host, item).await) });
        } else {
            dependent.push((index, item));
        }
    }
    while let Some(done) = independent.join_next().await {
        match done {
            Ok((index, answer)) => answers[index] = Some(answer),
            Err(e) => tracing::error!(error = %e, "a batch item's task failed"),
        }
    }
    for (index, item) in dependent {
        let succeeded =
            item.depends_on.and_then(|d| answers[d].as_ref()).is_some_and(|a| (200..300).contains(&a.status));
        let answer = if succeeded {
            call(router.clone(), authorization.clone(), host.clone(), item).await
        } else {
            envelope(
                StatusCode::FAILED_DEPENDENCY,
                Error::bad_request(
                    "FailedDependency",
                    format!("Request '{}' was not run because the request it depends on did not succeed.", item.id),
                ),
            )
            .await
        };
        answers[index] = Some(answer);
    }
    let mut out = Vec::with_capacity(ids.len());
    for (id, answer) in ids.into_iter().zip(answers) {
        let answer = match answer {
            Some(a) => a,
            None => envelope(StatusCode::INTERNAL_SERVER_ERROR, Error::internal("a batch item's task failed")).await,
        };
        out.push((id, answer));
    }
    out
}

/// Sends one item through the router and reads its answer.
async fn call(router: Router, authorization: Option<HeaderValue>, host: Option<HeaderValue>, item: Item) -> Answer {
    let target = match item.target {
        Ok(t) => t,
        Err(message) => return envelope(StatusCode::BAD_REQUEST, Error::bad_request("BadRequest", message)).await,
    };
    let body = match item.body {
        None => None,
        Some(Ok(bytes)) => Some(bytes),
        Some(Err(message)) => {
            return envelope(StatusCode::BAD_REQUEST, Error::bad_request("InvalidRequestBody", message)).await;
        }
    };
    let mut builder = axum::http::Request::builder().method(item.method).uri(target);
    for (name, value) in item.headers {
        builder = builder.header(name, value);
    }
    if let Some(a) = authorization {
        builder = builder.header(header::AUTHORIZATION, a);
    }
    if let Some(h) = host {
        builder = builder.header(header::HOST, h);
    }
    let request: Request = match &body {
        Some(bytes) => {
            builder = builder.header(header::CONTENT_LENGTH, bytes.len());
            builder.body(Body::from(bytes.clone()))
        }
        None => builder.body(Body::empty()),
    }
    .unwrap_or_else(|_| Request::new(Body::empty()));
    let response = match router.oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    read_answer(response).await
}

/// An item's status, headers and body, as the batch response carries them.
async fn read_answer(response: Response) -> Answer {
    let (parts, body) = response.into_parts();
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in &parts.headers {
        if matches!(name.as_str(), "content-length" | "connection" | "transfer-encoding" | "keep-alive" | "date") {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        let name = display_name(name.as_str());
        match headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            None => headers.push((name, value.to_string())),
        }
    }
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let body = if bytes.is_empty() || parts.status == StatusCode::NO_CONTENT {
        None
    } else {
        let is_json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
        // JSON is checked, not parsed into a tree: the item's bytes go into the batch as they are.
        let raw = if is_json { std::str::from_utf8(&bytes).ok() } else { None };
        match raw.and_then(|text| serde_json::value::RawValue::from_string(text.trim().to_string()).ok()) {
            Some(json) => Some(AnswerBody::Json(json)),
            None => Some(AnswerBody::Text(String::from_utf8_lossy(&bytes).into_owned())),
        }
    };
    Answer { status: parts.status.as_u16(), headers: AnswerHeaders(headers), body }
}

/// An item answered in Graph's error envelope without running it.
async fn envelope(status: StatusCode, error: Error) -> Answer {
    let mut response = axum::response::IntoResponse::into_response(ApiError(error));
    *response.status_mut() = status;
    read_answer(response).await
}

/// Header names as Graph spells them in batch responses (`Content-Type`, `OData-Version`).
fn display_name(name: &str) -> String {
    match name {
        "etag" => "ETag".into(),
        "odata-version" => "OData-Version".into(),
        "request-id" | "client-request-id" => name.into(),
        _ => name
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

/// The operations `routes()` serves, for the OpenAPI document.
pub fn describe() -> Vec<crate::openapi::RouteDoc> {
    vec![crate::openapi::op(
        "post",
        "/$batch",
        "JSON batching: up to 20 requests, each run and authorized as its own call",
        Some("Object"),
        200,
        Some("Object"),
    )]
}
