//! The outbox sender: delivers [`OutboxMessage`]s at least once, each in order behind older
//! messages with the same ordering key, with backoff, and dead-letters what cannot be
//! delivered.
//!
//! A message is written by [`enqueue`] in the transaction of the change that causes it, so
//! a committed change never lacks its message (and survives kill -9 with it). The sender
//! claims due messages in a short write (a lease), does the I/O outside any transaction,
//! then records the outcome and runs the kind's follow-up in another short write. A crash
//! between the I/O and the record means one more attempt with the same `webhook-id`, which
//! receivers use to take effect once.
//!
//! The network is behind [`Transport`] (the `grantry-outbound` crate: allow-list, time and
//! size bounds); signing is here, in [`sign`], the one signer for every kind.

use crate::App;
use chrono::{DateTime, Duration, Utc};
use grantry_domain::model::{CustomExtension, OutboxKind, OutboxMessage, OutboxState, SignedBy};
use grantry_domain::{Error, Result};
use grantry_store::{Conn, Value, repo};
use std::future::Future;
use std::pin::Pin;

/// Messages claimed per round.
const BATCH: usize = 16;
pub use grantry_domain::model::{DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT_MS};
/// How long a claim holds a message beyond its timeout, in case the sender dies.
const LEASE_MARGIN: Duration = Duration::seconds(60);

/// One HTTP call to make (a POST, except for SCIM pushes).
#[derive(Clone)]
pub struct OutboundRequest {
    /// `POST`, `GET`, `PUT`, `PATCH` or `DELETE`.
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: std::time::Duration,
}

/// Names the headers but never their values (a bearer token, a signature) nor the body.
impl std::fmt::Debug for OutboundRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>())
            .field("body_bytes", &self.body.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Mints the bearer tokens callouts carry when their extension's
/// `authenticationConfiguration` asks for a token: short-lived JWTs from Grantry's own
/// issuer, which receivers verify with the keys Grantry publishes (its JWKS). Implemented
/// by the API's key ring; tokens are minted per attempt and never stored or logged.
pub trait TokenIssuer: Send + Sync {
    fn bearer_for(&self, audience: &str) -> Result<String>;
}

/// How the messages of one owner are authenticated: the Standard Webhooks secret, and the
/// audience of a bearer token when one is asked for.
#[derive(Clone)]
pub struct Credentials {
    pub secret: String,
    pub bearer_audience: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// 2xx. `body` is the start of the answer, when it is JSON.
    Delivered { status: u16, body: Option<serde_json::Value> },
    /// Worth retrying: a network error, a timeout, 408, 429 or 5xx.
    Retry { status: Option<u16>, error: String, retry_after: Option<RetryAfter> },
    /// Retrying will not help: the destination is not allowed, or the receiver refused (4xx,
    /// 3xx).
    Refused { status: Option<u16>, error: String },
}

/// A receiver's `Retry-After`: a number of seconds, or an HTTP-date (RFC 9110 §10.2.3).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryAfter {
    Seconds(u64),
    At(DateTime<Utc>),
}

impl RetryAfter {
    /// Reads the header's value: delay-seconds, or an HTTP-date in any of the three forms
    /// recipients must accept (IMF-fixdate, RFC 850, asctime). Anything else is ignored.
    pub fn parse(value: &str) -> Option<RetryAfter> {
        let v = value.trim();
        if let Ok(seconds) = v.parse::<u64>() {
            return Some(RetryAfter::Seconds(seconds));
        }
        if let Ok(t) = DateTime::parse_from_rfc2822(v) {
            return Some(RetryAfter::At(t.with_timezone(&Utc)));
        }
        let bare = v.strip_suffix(" GMT").unwrap_or(v);
        ["%A, %d-%b-%y %H:%M:%S", "%a %b %e %H:%M:%S %Y"]
            .iter()
            .find_map(|f| chrono::NaiveDateTime::parse_from_str(bare, f).ok())
            .map(|t| RetryAfter::At(t.and_utc()))
    }

    /// How long to wait from `now` (a date in the past asks for no wait).
    pub fn wait_from(self, now: DateTime<Utc>) -> Duration {
        match self {
            RetryAfter::Seconds(s) => Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX).min(86_400 * 365)),
            RetryAfter::At(t) => (t - now).max(Duration::zero()),
        }
    }
}

pub type Sending<'a> = Pin<Box<dyn Future<Output = Attempt> + Send + 'a>>;

/// A GET of a small JSON document: the parsed document, or why there is none.
pub type Fetching<'a> = Pin<Box<dyn Future<Output = std::result::Result<serde_json::Value, String>> + Send + 'a>>;

/// Makes the HTTP calls. Implementations check the destination against the outbound
/// allow-list and bound time, size and redirects.
pub trait Transport: Send + Sync {
    fn send(&self, request: OutboundRequest) -> Sending<'_>;

    /// GETs a JSON document (an OpenID discovery document, a JWK set) within `timeout`.
    fn get_json(&self, url: String, timeout: std::time::Duration) -> Fetching<'_> {
        let _ = (url, timeout);
        Box::pin(async { Err("outbound calls are disabled".to_string()) })
    }
}

/// A transport that refuses everything (for tools that never send).
pub struct NoTransport;

impl Transport for NoTransport {
    fn send(&self, _: OutboundRequest) -> Sending<'_> {
        Box::pin(async { Attempt::Refused { status: None, error: "outbound calls are disabled".into() } })
    }
}

/// Writes `message` in the transaction under way. Wake the sender after the commit with
/// [`App::outbox_signal`].
pub fn enqueue(c: &mut dyn Conn, message: &OutboxMessage) -> Result<()> {
    repo::insert(c, message)
}

/// The Standard Webhooks `v1` signature of one attempt: HMAC-SHA256 with the secret's bytes
/// over `{id}.{timestamp}.{body}`, in standard base64.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String> {
    use base64::Engine as _;
    use hmac::Mac;
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| Error::internal("a signing secret is not valid base64"))?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key)
        .map_err(|_| Error::internal("a signing secret cannot key HMAC"))?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())))
}

/// The wait before attempt `attempts + 1`: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h,
/// 24 h (the Standard Webhooks schedule), plus up to 10% jitter so that many messages that
/// failed together do not retry together.
pub fn backoff(attempts: u32) -> Duration {
    const SCHEDULE: [i64; 9] = [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400];
    let base = SCHEDULE[(attempts.saturating_sub(1) as usize).min(SCHEDULE.len() - 1)];
    let jitter = i64::from(uuid::Uuid::new_v4().as_bytes()[0]) * base / 2550;
    Duration::seconds(base + jitter)
}

fn credentials_of(c: &mut dyn Conn, m: &OutboxMessage) -> Result<Option<Credentials>> {
    Ok(match &m.signed_by {
        SignedBy::CustomExtension(id) => repo::get::<CustomExtension>(c, id)?.map(|e| Credentials {
            bearer_audience: crate::callouts::bearer_audience(&e, &m.url),
            secret: e.signing_secret,
        }),
        SignedBy::WebhookSubscription(id) => {
            crate::webhooks::secret_of(c, id)?.map(|secret| Credentials { secret, bearer_audience: None })
        }
        SignedBy::Unsigned | SignedBy::ProvisioningTarget(_) => None,
    })
}

/// The ids of the messages this process's senders hold: claimed, not yet recorded. A lease
/// held by another process (another node, or one killed while it sent) is waited out by
/// the lease's expiry, not by [`drain`].
/// `released` counts the messages let go, so that [`drain`] can tell that one was recorded
/// while it read the table (its row may still look leased in what it read).
#[derive(Default)]
pub struct Held {
    ids: std::sync::Mutex<std::collections::HashSet<String>>,
    released: std::sync::atomic::AtomicU64,
}

impl Held {
    fn set(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    fn holds(&self, id: &str) -> bool {
        self.set().contains(id)
    }
    fn release<'a>(&self, ids: impl IntoIterator<Item = &'a String>) {
        let mut set = self.set();
        for id in ids {
            set.remove(id);
        }
        self.released.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn releases(&self) -> u64 {
        self.released.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A message claimed for one attempt: mails may carry others folded into one digest.
struct Claimed {
    message: OutboxMessage,
    credentials: Option<Credentials>,
    folded: Vec<OutboxMessage>,
}

/// Claims up to [`BATCH`] due messages: pending, due, not leased, and first in line for
/// their ordering key. Returns them with their owners' credentials. A mail is first
/// planned against its recipient's rate limit ([`crate::mail::plan`]): it may wait, or take
/// the other mails waiting for the same person along as a digest.
async fn claim(app: &App) -> Result<Vec<Claimed>> {
    let now = app.now();
    // Marked held before the claim commits, so that [`drain`] never sees a lease of this
    // process that it does not know about.
    let held = app.outbox_held.clone();
    let marked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let marking = marked.clone();
    let claimed = app
        .store
        .write(move |c| {
            let sql = format!(
                "SELECT body FROM outbox o WHERE o.state = 'pending' AND o.next_attempt_us <= ? \
                 AND (o.lease_until_us IS NULL OR o.lease_until_us <= ?) \
                 AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.ordering_key = o.ordering_key \
                                 AND p.state = 'pending' AND p.seq < o.seq) \
                 ORDER BY o.seq LIMIT {BATCH}"
            );
            let rows = c.query(&sql, &[Value::from(now), Value::from(now)])?;
            let mut claimed = Vec::new();
            for row in rows {
                let mut m: OutboxMessage = repo::from_body(&row.text(0)?)?;
                // Still in flight here, though its lease ran out (the development clock
                // jumped past it): its outcome is about to be recorded.
                if held.holds(&m.id) {
                    continue;
                }
                let mut folded = Vec::new();
                if m.kind == OutboxKind::Mail {
                    match crate::mail::plan(c, &m, now, &|id| held.holds(id))? {
                        crate::mail::Plan::Defer(until) => {
                            m.next_attempt_date_time = until;
                            repo::update(c, &m)?;
                            continue;
                        }
                        crate::mail::Plan::Single => {}
                        crate::mail::Plan::Digest(others) => folded = others,
                    }
                }
                let lease = Some(now + Duration::milliseconds(i64::from(m.timeout_ms)) + LEASE_MARGIN);
                m.lease_until = lease;
                repo::update(c, &m)?;
                for f in &mut folded {
                    f.lease_until = lease;
                    repo::update(c, f)?;
                }
                let credentials = credentials_of(c, &m)?;
                claimed.push(Claimed { message: m, credentials, folded });
            }
            let ids: Vec<String> = claimed
                .iter()
                .flat_map(|one| std::iter::once(&one.message).chain(&one.folded))
                .map(|m| m.id.clone())
                .collect();
            held.set().extend(ids.iter().cloned());
            marking.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(ids);
            Ok(claimed)
        })
        .await;
    if claimed.is_err() {
        app.outbox_held.release(marked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter());
    }
    claimed
}

/// The request for one attempt of `m`, signed with `secret` at `now`, carrying `bearer`
/// when one was minted.
fn request_for(m: &OutboxMessage, secret: &str, bearer: Option<String>, now: DateTime<Utc>) -> Result<OutboundRequest> {
    let body = serde_json::to_vec(&m.payload).map_err(|e| Error::internal(e.to_string()))?;
    let timestamp = now.timestamp();
    let signature = sign(secret, &m.id, timestamp, &body)?;
    let mut headers = vec![
        ("content-type".into(), "application/json".into()),
        ("webhook-id".into(), m.id.clone()),
        ("webhook-timestamp".into(), timestamp.to_string()),
        ("webhook-signature".into(), signature),
        ("user-agent".into(), concat!("Grantry/", env!("CARGO_PKG_VERSION")).into()),
    ];
    if let Some(token) = bearer {
        headers.push(("authorization".into(), format!("Bearer {token}")));
    }
    Ok(OutboundRequest {
        method: "POST",
        url: m.url.clone(),
        headers,
        body,
        timeout: std::time::Duration::from_millis(u64::from(m.timeout_ms)),
    })
}

/// What a kind does once a message is delivered or dead-lettered, in the write that records
/// it. The one place that dispatches on the kind.
fn follow_up(c: &mut dyn Conn, m: &OutboxMessage, attempt: &Attempt, now: DateTime<Utc>) -> Result<()> {
    match m.kind {
        OutboxKind::Callout => crate::callouts::after_delivery(c, m, attempt, now),
        // The dead-letter list is the record; a 410 also disables the subscription.
        OutboxKind::Webhook => crate::webhooks::after_delivery(c, m, attempt, now),
        // The mail's row is the record (`GET /_grantry/mail`).
        OutboxKind::Mail => Ok(()),
        // The message's row is the record (`GET /_grantry/provisioning/{id}` shows failures);
        // the assignment a grant was for shows whether its push arrived.
        OutboxKind::Scim => crate::provisioning::after_delivery(c, m, attempt, now),
    }
}

/// Holds back every pending message to `url` that is due before `until` and not in flight.
fn pause_destination(c: &mut dyn Conn, url: &str, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
    let waiting: Vec<OutboxMessage> = repo::find_all(
        c,
        "state = 'pending' AND next_attempt_us < ? AND json_extract(body, '$.url') = ?",
        &[Value::from(until), Value::from(url)],
    )?;
    for mut m in waiting.into_iter().filter(|m| m.lease_until.is_none_or(|l| l <= now)) {
        m.next_attempt_date_time = until;
        m.lease_until = None;
        repo::update(c, &m)?;
    }
    Ok(())
}

/// Records the outcome of one attempt of `m` (and of the mails folded into it).
async fn record(app: &App, m: OutboxMessage, folded: Vec<OutboxMessage>, attempt: Attempt) -> Result<()> {
    let now = app.now();
    app.store
        .write(move |c| {
            let digest = (!folded.is_empty()).then(|| m.id.clone());
            record_one(c, &m, &attempt, now, digest.as_deref())?;
            for f in &folded {
                record_one(c, f, &attempt, now, digest.as_deref())?;
            }
            Ok(())
        })
        .await
}

/// Records `attempt` of the claimed `m`, in the write under way.
fn record_one(
    c: &mut dyn Conn,
    m: &OutboxMessage,
    attempt: &Attempt,
    now: DateTime<Utc>,
    digest: Option<&str>,
) -> Result<()> {
    {
        {
            // The message may have been replayed or changed meanwhile; only the claim we
            // hold is recorded.
            let Some(mut current) = repo::get::<OutboxMessage>(c, &m.id)? else { return Ok(()) };
            if current.state != OutboxState::Pending || current.lease_until != m.lease_until {
                return Ok(());
            }
            if current.kind == OutboxKind::Mail {
                crate::mail::note_outcome(&mut current, attempt, digest);
            }
            current.attempts += 1;
            current.lease_until = None;
            let outcome = match attempt {
                Attempt::Delivered { .. } => "delivered",
                Attempt::Retry { .. } => "retry",
                Attempt::Refused { .. } => "refused",
            };
            grantry_domain::metrics::global().outbound_calls.add(current.kind.as_str(), outcome, 1);
            let mut pause_until = None;
            let finished = match attempt {
                Attempt::Delivered { status, .. } => {
                    current.state = OutboxState::Delivered;
                    current.last_status = Some(*status);
                    current.last_error = None;
                    true
                }
                Attempt::Retry { status, error, retry_after } => {
                    current.last_status = *status;
                    current.last_error = Some(error.clone());
                    if current.attempts >= current.max_attempts {
                        current.state = OutboxState::Dead;
                        true
                    } else {
                        let wait = backoff(current.attempts);
                        let asked = retry_after.map(|r| r.wait_from(now));
                        current.next_attempt_date_time = now + wait.max(asked.unwrap_or(wait)).min(Duration::days(1));
                        // A receiver that asks for time (429, 503 with Retry-After) gets it for
                        // everything Grantry owes it, not only for this message.
                        pause_until = asked.map(|a| now + a.min(Duration::days(1)));
                        false
                    }
                }
                Attempt::Refused { status, error } => {
                    current.state = OutboxState::Dead;
                    current.last_status = *status;
                    current.last_error = Some(error.clone());
                    true
                }
            };
            if finished {
                current.finished_date_time = Some(now);
            }
            repo::update(c, &current)?;
            if let Some(until) = pause_until
                && current.kind != OutboxKind::Mail
            {
                pause_destination(c, &current.url, until, now)?;
            }
            if finished {
                follow_up(c, &current, attempt, now)?;
            }
            Ok(())
        }
    }
}

/// Sends one claimed message and records the outcome.
async fn deliver(app: &App, transport: &dyn Transport, claimed: Claimed) -> Result<()> {
    let Claimed { message: m, credentials, folded } = claimed;
    let attempt = if m.kind == OutboxKind::Mail {
        crate::mail::send(app, &m, &folded).await
    } else if m.kind == OutboxKind::Scim {
        crate::provisioning::send(app, transport, &m).await
    } else {
        let prepared = match credentials {
            None => Err("the signing secret's owner no longer exists".to_string()),
            Some(credentials) => bearer(app, credentials.bearer_audience.as_deref())
                .and_then(|token| request_for(&m, &credentials.secret, token, app.now()).map_err(|e| e.message)),
        };
        match prepared {
            Ok(request) => transport.send(request).await,
            Err(error) => Attempt::Refused { status: None, error },
        }
    };
    match &attempt {
        Attempt::Delivered { status, .. } => {
            tracing::info!(id = %m.id, kind = m.kind.as_str(), status, "outbox message delivered")
        }
        Attempt::Retry { error, .. } | Attempt::Refused { error, .. } => {
            tracing::warn!(id = %m.id, kind = m.kind.as_str(), attempt = m.attempts + 1, error = %error, "outbox attempt failed")
        }
    }
    record(app, m, folded, attempt).await
}

/// A fresh bearer token for `audience`, when one is asked for.
fn bearer(app: &App, audience: Option<&str>) -> std::result::Result<Option<String>, String> {
    let Some(audience) = audience else { return Ok(None) };
    let issuer = app.token_issuer.as_ref().ok_or("no token issuer is configured to mint the bearer token")?;
    issuer.bearer_for(audience).map(Some).map_err(|e| format!("the bearer token cannot be minted: {}", e.message))
}

/// Claims due messages and sends them (concurrently). Returns how many were attempted.
pub async fn run_once(app: &App) -> Result<usize> {
    let claimed = claim(app).await?;
    let n = claimed.len();
    let mut sends = tokio::task::JoinSet::new();
    for one in claimed {
        let app = app.clone();
        let ids: Vec<String> = std::iter::once(&one.message).chain(&one.folded).map(|m| m.id.clone()).collect();
        sends.spawn(async move {
            let transport = app.transport.clone();
            let outcome = deliver(&app, transport.as_ref(), one).await;
            app.outbox_held.release(&ids);
            outcome
        });
    }
    let mut first_error = None;
    while let Some(done) = sends.join_next().await {
        let outcome = done.unwrap_or_else(|e| Err(Error::internal(format!("an outbox send panicked: {e}"))));
        if let Err(e) = outcome {
            first_error.get_or_insert(e);
        }
    }
    if n > 0 {
        app.outbox_recorded.notify_waiters();
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

/// Sends until nothing is due now, waiting for messages another sender holds (e.g. the
/// background one) to be recorded. For tests and `grantry` tools; returns how many attempts
/// this call made.
pub async fn drain(app: &App) -> Result<usize> {
    let mut total = 0;
    for _ in 0..1000 {
        let recorded = app.outbox_recorded.notified();
        let ran = run_once(app).await?;
        total += ran;
        if ran > 0 {
            continue;
        }
        if !outstanding(app).await? {
            break;
        }
        // Another sender holds a message that is due (or is about to claim the next one
        // behind it): wait until it records an outcome, then look again.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), recorded).await;
    }
    Ok(total)
}

/// Whether a message is due now and first in line for its ordering key, and free to claim or
/// held by a sender of this process (whose outcome [`drain`] can wait for).
async fn outstanding(app: &App) -> Result<bool> {
    let now = app.now();
    // A message recorded while the table was read may still look leased in what was read,
    // though no longer held: then look again rather than conclude nothing is outstanding.
    let releases = app.outbox_held.releases();
    let due: Vec<(String, Option<i64>)> = app
        .store
        .read(move |c| {
            c.query(
                "SELECT o.id, o.lease_until_us FROM outbox o WHERE o.state = 'pending' AND o.next_attempt_us <= ? \
                 AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.ordering_key = o.ordering_key \
                                 AND p.state = 'pending' AND p.seq < o.seq) ORDER BY o.seq LIMIT 200",
                &[Value::from(now)],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.opt_int(1)?)))
            .collect()
        })
        .await?;
    let now_us = now.timestamp_micros();
    Ok(app.outbox_held.releases() != releases
        || due.iter().any(|(id, lease)| lease.is_none_or(|l| l <= now_us) || app.outbox_held.holds(id)))
}

/// When the next pending message is due, if any.
async fn next_due(app: &App) -> Result<Option<DateTime<Utc>>> {
    app.store
        .read(|c| {
            Ok(c.query_one("SELECT MIN(next_attempt_us) FROM outbox WHERE state = 'pending'", &[])?
                .and_then(|r| r.opt_int(0).ok().flatten())
                .and_then(DateTime::from_timestamp_micros))
        })
        .await
}

/// The background sender of this node: sends what is due, then sleeps until the next
/// message is due, a wake-up arrives (`App::outbox_signal`), or the poll interval passes.
/// It ends between two rounds once `stop` turns true (or its sender is gone); what is left
/// is sent at the next start, since messages are rows.
pub fn spawn_sender(app: App, mut stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut cleaned: Option<std::time::Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            if cleaned.is_none_or(|at| at.elapsed() >= CLEANUP_INTERVAL) {
                cleaned = Some(std::time::Instant::now());
                if let Err(e) = clean_up(&app).await {
                    tracing::warn!(error = %e, "the outbox clean-up failed; trying again later");
                }
            }
            let woken = app.outbox_signal.notified();
            match run_once(&app).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "the outbox sender failed; retrying"),
            }
            let wait = match next_due(&app).await {
                Ok(Some(due)) => (due - app.now()).to_std().unwrap_or_default().min(crate::jobs::POLL_INTERVAL),
                _ => crate::jobs::POLL_INTERVAL,
            };
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(wait.max(std::time::Duration::from_millis(10))) => {}
                changed = stop.changed() => if changed.is_err() { break },
            }
        }
    })
}

/// How long a delivered message is kept (to show what was sent, and because a waiting
/// callout's stage is read from its message): longer than the longest callback wait (14
/// days).
pub const DELIVERED_RETENTION: Duration = Duration::days(30);
/// Most rows one clean-up deletes, so that it never holds the writer long.
const CLEANUP_BATCH: usize = 1000;
/// How often a sender cleans up.
const CLEANUP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes delivered messages written more than [`DELIVERED_RETENTION`] ago (at most
/// [`CLEANUP_BATCH`]); dead-lettered and pending ones stay. Returns how many went.
pub async fn clean_up(app: &App) -> Result<usize> {
    let now = app.now();
    let before = now - DELIVERED_RETENTION;
    app.store
        .write(move |c| {
            crate::mail::clean_up(c, now)?;
            c.execute(
                &format!(
                    "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE state = 'delivered' \
                     AND created_us < ? ORDER BY seq LIMIT {CLEANUP_BATCH})"
                ),
                &[Value::from(before)],
            )
            .map(|n| n as usize)
        })
        .await
}

/// Dead-lettered messages of `kind`, newest first, at most `limit`.
pub fn dead_letters(c: &mut dyn Conn, kind: OutboxKind, limit: usize) -> Result<Vec<OutboxMessage>> {
    let rows = c.query(
        &format!("SELECT body FROM outbox WHERE state = 'dead' AND kind = ? ORDER BY seq DESC LIMIT {limit}"),
        &[Value::from(kind.as_str())],
    )?;
    rows.iter().map(|r| repo::from_body(&r.text(0)?)).collect()
}

/// Puts a dead-lettered message back in line, due now, with a fresh attempt count. Its id
/// (the receiver's idempotency key) stays the same.
pub fn replay(c: &mut dyn Conn, id: &str, now: DateTime<Utc>) -> Result<OutboxMessage> {
    let mut m = repo::get::<OutboxMessage>(c, id)?.ok_or_else(|| Error::not_found("outbox message", id))?;
    if m.state != OutboxState::Dead {
        return Err(Error::conflict(
            "NotDeadLettered",
            format!("The message '{id}' is {}; only dead-lettered messages can be replayed.", m.state.as_str()),
        ));
    }
    m.state = OutboxState::Pending;
    m.attempts = 0;
    m.next_attempt_date_time = now;
    m.lease_until = None;
    m.finished_date_time = None;
    repo::update(c, &m)?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks reference library (1.3.0), as recorded in
    /// the project's integrations reference (§4.3): secret bytes 0x01..0x20.
    #[test]
    fn signatures_match_the_standard_webhooks_reference() {
        let body = br#"{"type":"accessPackageAssignmentRequest.created","timestamp":"2026-01-02T03:04:05Z","data":{"id":"r1"}}"#;
        let sig = sign("whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=", "msg_01", 1_767_323_045, body).unwrap();
        assert_eq!(sig, "v1,6+7+6PVAFuHmdgBOu9Lk9Lh3FjMuzQcbd5fK/LcZwHo=");
        // Another id, time or body gives another signature.
        assert_ne!(
            sign("whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=", "msg_02", 1_767_323_045, body).unwrap(),
            sig
        );
        assert!(sign("whsec_not base64!", "msg_01", 1, body).is_err());
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_any_http_date_form() {
        let at = DateTime::parse_from_rfc3339("1994-11-06T08:49:37Z").unwrap().with_timezone(&Utc);
        assert_eq!(RetryAfter::parse(" 120 "), Some(RetryAfter::Seconds(120)));
        assert_eq!(RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT"), Some(RetryAfter::At(at)));
        assert_eq!(RetryAfter::parse("Sunday, 06-Nov-94 08:49:37 GMT"), Some(RetryAfter::At(at)));
        assert_eq!(RetryAfter::parse("Sun Nov  6 08:49:37 1994"), Some(RetryAfter::At(at)));
        assert_eq!(RetryAfter::parse("soon"), None);
        assert_eq!(RetryAfter::At(at).wait_from(at - Duration::seconds(90)), Duration::seconds(90));
        assert_eq!(RetryAfter::At(at).wait_from(at + Duration::seconds(90)), Duration::zero());
    }

    #[test]
    fn backoff_follows_the_schedule_with_bounded_jitter() {
        for (attempts, base) in [(1, 5), (2, 300), (3, 1800), (9, 86_400), (20, 86_400)] {
            let d = backoff(attempts).num_seconds();
            assert!(d >= base && d <= base + base / 10, "{attempts}: {d}");
        }
    }
}
