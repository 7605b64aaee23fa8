//! Graceful shutdown of the real binary: SIGTERM (what systemd, Docker and Kubernetes send)
//! during a write load. Requests in flight are answered, nothing acknowledged is lost, the
//! log says when the shutdown starts and ends, and the process exits 0.

use crate::binary::Process;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Requests held in flight across the signal.
const HELD: usize = 3;
const WRITERS: usize = 4;

/// A `POST /v1.0/users` whose headers the server has read and whose body it is waiting for
/// (it answered `100 Continue`): certainly in flight when the signal arrives.
struct HeldRequest {
    stream: TcpStream,
    body: Vec<u8>,
}

async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(60), stream.read(&mut byte))
            .await
            .expect("the server answers within a minute")
            .expect("read");
        assert!(n > 0, "the connection closed before a response head: {}", String::from_utf8_lossy(buf));
        buf.push(byte[0]);
    }
    String::from_utf8_lossy(&std::mem::take(buf)).into_owned()
}

impl HeldRequest {
    async fn open(base: &str, token: &str, upn: &str) -> HeldRequest {
        let addr = base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let body = json!({ "displayName": "Held", "userPrincipalName": upn }).to_string().into_bytes();
        let head = format!(
            "POST /v1.0/users HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("send head");
        let interim = read_head(&mut stream, &mut Vec::new()).await;
        assert!(interim.starts_with("HTTP/1.1 100"), "expected 100 Continue, got {interim}");
        HeldRequest { stream, body }
    }

    /// Sends the body and reads the answer.
    async fn finish(mut self) -> (u16, Value) {
        self.stream.write_all(&self.body).await.expect("send body");
        let head = read_head(&mut self.stream, &mut Vec::new()).await;
        let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
        let length: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
            .and_then(|v| v.parse().ok())
            .expect("a Content-Length");
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).await.expect("response body");
        (status, serde_json::from_slice(&body).expect("JSON body"))
    }
}

/// Creates users until told to stop or the server stops accepting; reports each
/// acknowledged (201) user as it comes.
async fn writer(
    base: String,
    token: String,
    n: usize,
    stop: Arc<AtomicBool>,
    acked: mpsc::UnboundedSender<(String, String)>,
) -> Vec<String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let mut server_errors = Vec::new();
    for i in 0.. {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let upn = format!("load-{n}-{i}@contoso.com");
        let sent = client
            .post(format!("{base}/v1.0/users"))
            .bearer_auth(&token)
            .json(&json!({ "displayName": format!("Load {n} {i}"), "userPrincipalName": upn }))
            .send()
            .await;
        // A refused connection: the server no longer accepts; this writer is done.
        let Ok(resp) = sent else { break };
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status == StatusCode::CREATED {
            let _ = acked.send((body["id"].as_str().expect("id").to_string(), upn));
        } else if status.is_server_error() {
            server_errors.push(format!("{status} {body}"));
        }
    }
    server_errors
}

async fn wait_for_output(server: &Process, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server.output().contains(needle) {
        assert!(Instant::now() < deadline, "no '{needle}' in the log:\n{}", server.output());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_requests_in_flight_and_loses_no_acknowledged_write() {
    let mut server = Process::spawn(&["--shutdown-grace", "30"]);
    let token = server.token(&["--app", "loader", "--roles", "User.ReadWrite.All"]);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| tokio::spawn(writer(server.base.clone(), token.clone(), n, stop.clone(), tx.clone())))
        .collect();
    drop(tx);
    // The load is under way before the signal.
    let mut acked = Vec::new();
    while acked.len() < 40 {
        acked.push(rx.recv().await.expect("writers acknowledge users"));
    }
    let mut held = Vec::new();
    for i in 0..HELD {
        held.push(HeldRequest::open(&server.base, &token, &format!("held-{i}@contoso.com")).await);
    }
    server.signal("TERM");
    wait_for_output(&server, "shutting down").await;
    // Accepted before the signal, finished after it: each is answered and committed.
    for (i, request) in held.into_iter().enumerate() {
        let (status, body) = request.finish().await;
        assert_eq!(status, 201, "held request {i}: {body}");
        acked.push((body["id"].as_str().expect("id").to_string(), format!("held-{i}@contoso.com")));
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        let server_errors = w.await.expect("writer ends");
        assert!(server_errors.is_empty(), "5xx answers during the shutdown: {server_errors:?}");
    }
    while let Some(a) = rx.recv().await {
        acked.push(a);
    }
    let status = server.wait(Duration::from_secs(60));
    let log = server.output();
    assert_eq!(status.code(), Some(0), "exit status {status:?}; log:\n{log}");
    assert_eq!(log.matches("shutting down:").count(), 1, "{log}");
    assert_eq!(log.matches("shut down: every request in flight was answered").count(), 1, "{log}");
    assert!(log.contains("SIGTERM"), "{log}");

    // Every acknowledged user is there after a restart.
    server.restart(&[]);
    let client = reqwest::Client::new();
    for (id, upn) in &acked {
        let resp = client.get(format!("{}/v1.0/users/{id}", server.base)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "acknowledged user {upn} ({id}) is lost");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["userPrincipalName"], upn.as_str());
    }
    println!("SIGTERM test: {} writes acknowledged, all present after the restart", acked.len());
}
