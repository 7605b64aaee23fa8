//! Idempotent retries: a POST that carries `client-request-id` is answered once.
//!
//! For an authenticated POST with a `client-request-id` header, this layer:
//! 1. waits while another request with the same (principal, client-request-id, method,
//!    path) is being processed (the in-flight map), so a retry that overtakes the original
//!    gets the original's answer rather than racing it;
//! 2. replays the remembered response if there is one (`Grantry-Idempotent-Replay: true`),
//!    or answers 409 `IdempotencyKeyReused` if the remembered request had another body;
//! 3. otherwise runs the request and remembers a 2xx response for 24 hours. Use cases that
//!    support it record the response in the creation's own transaction (see
//!    [`IdempotencySlot`]); the others are recorded in a write right after.
//!
//! The request runs in a task of its own, so a client that disconnects (or times out)
//! does not cut it short: its retry waits for the outcome instead of racing it.

use crate::error::{ApiError, REQUEST_IDS, current_ids};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use grantry_core::idempotency::{self, Key};
use grantry_domain::{Error, ErrorKind};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Responses larger than this are not remembered (creations answer far less).
const MAX_REMEMBERED: usize = 1024 * 1024;

/// Header set on a replayed response.
pub const REPLAY_HEADER: &str = "grantry-idempotent-replay";

/// The requests being processed, by idempotency key.
#[derive(Default)]
pub struct InFlight {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds one key's slot; releasing it removes the slot when nobody else waits for it.
struct Held {
    inflight: Arc<InFlight>,
    slot: String,
    entry: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl InFlight {
    async fn acquire(self: &Arc<Self>, slot: String) -> Held {
        let entry = {
            let mut map = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(slot.clone()).or_default().clone()
        };
        let guard = entry.clone().lock_owned().await;
        Held { inflight: self.clone(), slot, entry, guard: Some(guard) }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self.inflight.slots.lock().unwrap_or_else(|e| e.into_inner());
        // The map's reference and ours: nobody else holds or waits for the slot.
        if Arc::strong_count(&self.entry) == 2 {
            map.remove(&self.slot);
        }
    }
}

/// Put in the request's extensions for a POST with `client-request-id`: a use case that
/// records its response in its own transaction takes the key and marks it recorded.
#[derive(Clone)]
pub struct IdempotencySlot {
    pub key: Key,
    recorded: Arc<AtomicBool>,
}

impl IdempotencySlot {
    /// Tells the layer the response is recorded already (in the creation's transaction).
    pub fn mark_recorded(&self) {
        self.recorded.store(true, Ordering::SeqCst);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hash of the body: of its JSON, re-serialized with sorted keys (so whitespace and key
/// order do not matter), or of its bytes when it is not JSON.
fn body_hash(bytes: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(bytes).ok().map(|v| v.to_string());
    let data = canonical.as_deref().map(str::as_bytes).unwrap_or(bytes);
    hex(&Sha256::digest(data))
}

/// The bearer token of `req`, if it has one.
fn bearer_of(req: &Request) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    Some(value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?.trim().to_string())
}

async fn principal_of(state: &AppState, token: Option<String>) -> Option<String> {
    let token = token?;
    let token = token.as_str();
    match crate::auth::external_issuer(state, token).ok()? {
        // A token of a trusted issuer: its subject at that issuer.
        Some(index) => Some(state.oidc.verify(index, token).await.ok()?.subject_key()),
        None => {
            let claims = state.keys.verify(token).ok()?;
            Some(grantry_domain::ids::normalize(&claims.oid))
        }
    }
}

fn replay(stored: idempotency::Stored) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body.clone()).into_response();
    if !stored.body.is_empty() {
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response.headers_mut().insert(REPLAY_HEADER, HeaderValue::from_static("true"));
    response
}

/// The layer (see the module documentation).
pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || req.uri().path().starts_with("/_grantry") {
        return next.run(req).await;
    }
    let Some(client_request_id) = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
    else {
        return next.run(req).await;
    };
    // Unauthenticated requests go on to be refused by the handler, never remembered.
    let Some(principal_id) = principal_of(&state, bearer_of(&req)).await else { return next.run(req).await };
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, state.config.body_limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError(Error::new(
                ErrorKind::PayloadTooLarge,
                "RequestEntityTooLarge",
                "The request body is larger than the server accepts (or could not be read); send a smaller body.",
            ))
            .into_response();
        }
    };
    let key = Key {
        principal_id,
        client_request_id,
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        body_hash: body_hash(&bytes),
    };
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    let ids = current_ids();
    // Run in a task of its own: a dropped connection must not abandon the request while
    // it still holds the key (a retry would then race the original).
    let task = tokio::spawn(REQUEST_IDS.scope(ids, run(state, key, req, next)));
    match task.await {
        Ok(response) => response,
        Err(_) => ApiError(Error::internal("the request was interrupted")).into_response(),
    }
}

async fn run(state: AppState, key: Key, mut req: Request, next: Next) -> Response {
    let _held = state.inflight.acquire(key.slot()).await;
    match idempotency::lookup(&state.app, &key).await {
        Ok(Some(stored)) if stored.body_hash == key.body_hash => return replay(stored),
        Ok(Some(_)) => return ApiError(idempotency::key_reused(&key)).into_response(),
        Ok(None) => {}
        Err(e) => return ApiError(e).into_response(),
    }
    let slot = IdempotencySlot { key: key.clone(), recorded: Arc::new(AtomicBool::new(false)) };
    req.extensions_mut().insert(slot.clone());
    let response = next.run(req).await;
    if !response.status().is_success() || slot.recorded.load(Ordering::SeqCst) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_REMEMBERED).await {
        Ok(b) => b,
        Err(_) => {
            tracing::warn!(path = %key.path, "response too large to remember for idempotent retries");
            return ApiError(Error::internal("the response could not be read")).into_response();
        }
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if let Err(e) = idempotency::remember(&state.app, &key, parts.status.as_u16(), text).await {
        // The change is made; only the memory of its answer is missing. Say so in the log
        // and answer normally.
        tracing::warn!(error = %e, path = %key.path, "could not remember the response for idempotent retries");
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}
