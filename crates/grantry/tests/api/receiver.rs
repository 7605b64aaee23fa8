//! A webhook receiver for the tests: an HTTP server on loopback (port 0) that records every
//! call, checks its Standard Webhooks signature, and answers with the status the test sets.
//! It can be stopped and started again on the same port, to play a receiver that is down.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Call {
    pub id: String,
    pub signature_ok: bool,
    pub body: Value,
    pub raw: Vec<u8>,
    /// The `Authorization` header, when the call carried one.
    pub authorization: Option<String>,
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
    connection_tests: Mutex<Vec<Call>>,
    secrets: Mutex<Vec<String>>,
    status: Mutex<u16>,
    retry_after: Mutex<Option<String>>,
    /// Woken at every call.
    arrived: tokio::sync::Notify,
}

pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

async fn record(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let id = header("webhook-id");
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap_or_default();
    let secrets = shared.secrets.lock().unwrap().clone();
    let signature_ok = secrets.iter().any(|secret| {
        let expected = grantry_core::outbox::sign(secret, &id, timestamp, &body).unwrap();
        header("webhook-signature").split(' ').any(|s| s == expected)
    });
    // Entra's connection test (made when an extension is created) is kept apart, so that
    // the tests count the callouts of the lifecycle.
    let is_connection_test = serde_json::from_slice::<Value>(&body)
        .is_ok_and(|b| b["Stage"] == grantry_core::callouts::CONNECTION_TEST_STAGE);
    let list = if is_connection_test { &shared.connection_tests } else { &shared.calls };
    list.lock().unwrap().push(Call {
        id,
        signature_ok,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
        authorization: headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_string),
    });
    shared.arrived.notify_waiters();
    let status = StatusCode::from_u16(*shared.status.lock().unwrap()).unwrap();
    match shared.retry_after.lock().unwrap().clone() {
        Some(value) => (status, [("retry-after", value)]).into_response(),
        None => status.into_response(),
    }
}

impl Receiver {
    /// Starts a receiver answering 202 on a free loopback port.
    pub async fn start() -> Receiver {
        let shared = Arc::new(Shared { status: Mutex::new(202), ..Default::default() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut r = Receiver { addr, shared, task: None };
        r.serve(listener);
        r
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let app = Router::new().route("/{*path}", post(record)).with_state(self.shared.clone());
        self.task = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A secret calls may be signed with.
    pub fn expect_secret(&self, secret: &str) {
        self.shared.secrets.lock().unwrap().push(secret.to_string());
    }

    pub fn answer(&self, status: u16) {
        *self.shared.status.lock().unwrap() = status;
        *self.shared.retry_after.lock().unwrap() = None;
    }

    /// Answers `status` with `Retry-After: seconds`.
    pub fn answer_retry_after(&self, status: u16, seconds: u64) {
        *self.shared.status.lock().unwrap() = status;
        *self.shared.retry_after.lock().unwrap() = Some(seconds.to_string());
    }

    /// Answers `status` with `Retry-After: date` (an HTTP-date).
    pub fn answer_retry_at(&self, status: u16, date: &str) {
        *self.shared.status.lock().unwrap() = status;
        *self.shared.retry_after.lock().unwrap() = Some(date.to_string());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// The connection-test calls made when extensions were created.
    pub fn connection_tests(&self) -> Vec<Call> {
        self.shared.connection_tests.lock().unwrap().clone()
    }

    /// Waits (woken by each call, at most `limit`) until `n` calls have arrived; returns
    /// whether they did.
    pub async fn wait_for(&self, n: usize, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let arrived = self.shared.arrived.notified();
            if self.shared.calls.lock().unwrap().len() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.shared.calls.lock().unwrap().len() >= n;
            }
        }
    }

    /// Stops listening: calls now fail to connect.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}
