//! Durable background work.
//!
//! A job is a row in `jobs`: an action (`kind`) on an entity, due at a time. Jobs are written
//! in the same transaction as the change that causes them, so a committed change never lacks
//! its follow-up and a rolled-back one never has it. The runner claims due jobs inside a
//! write transaction and runs each handler in its own savepoint: a handler that fails is
//! rolled back alone and retried later with backoff. Handlers are idempotent: they act only
//! if the entity is still in the state they expect, so running one twice changes nothing.
//!
//! On SQLite the single writer makes claiming exclusive; on PostgreSQL the same claim uses
//! `FOR UPDATE SKIP LOCKED`, so several nodes can share the table and each job runs once.

use crate::App;
use chrono::{DateTime, Duration, Utc};
use grantry_domain::{Error, Result, ids};
use grantry_store::{Backend, Conn, Value};
use serde_json::Value as Json;
use std::sync::atomic::Ordering;

/// Most jobs run in one write transaction, so foreground writes never wait long.
const BATCH: usize = 32;
/// Longest pause between polls: due work runs within this long even without a wake-up.
pub const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub entity_id: String,
    pub due: DateTime<Utc>,
    pub attempts: i64,
    pub payload: Json,
}

/// What a handler sees besides the connection.
pub struct JobContext {
    pub now: DateTime<Utc>,
}

pub type Handler = fn(&JobContext, &mut dyn Conn, &Job) -> Result<()>;

/// The handler for each job kind. Modules that schedule work add their kinds here.
fn handler(kind: &str) -> Option<Handler> {
    #[allow(clippy::match_single_binding)]
    match kind {
        _ => crate::delivery::handler(kind)
            .or_else(|| crate::approvals::handler(kind))
            .or_else(|| crate::callouts::handler(kind))
            .or_else(|| crate::reviews::handler(kind))
            .or_else(|| crate::autoassign::handler(kind))
            .or_else(|| crate::connected::handler(kind)),
    }
}

/// Schedules `kind` for `entity_id` at `due`, in the caller's transaction.
pub fn enqueue(c: &mut dyn Conn, kind: &str, entity_id: &str, due: DateTime<Utc>, payload: Json) -> Result<()> {
    c.execute_later(
        "INSERT INTO jobs (id, kind, entity_id, due_us, attempts, lease_until_us, last_error, payload) VALUES (?, ?, ?, ?, 0, NULL, NULL, ?)",
        &[
            Value::from(ids::new_id()),
            Value::from(kind),
            Value::from(entity_id),
            Value::from(due),
            Value::Text(payload.to_string()),
        ],
    )?;
    Ok(())
}

/// Removes pending jobs of `kind` for `entity_id` (e.g. a stage timeout once the stage is
/// decided). Handlers check state anyway; this keeps the table small.
pub fn cancel(c: &mut dyn Conn, kind: &str, entity_id: &str) -> Result<()> {
    c.execute_later("DELETE FROM jobs WHERE kind = ? AND entity_id = ?", &[Value::from(kind), Value::from(entity_id)])
}

/// [`cancel`] for several kinds at once, in one statement.
pub fn cancel_kinds(c: &mut dyn Conn, kinds: &[&str], entity_id: &str) -> Result<()> {
    let marks = vec!["?"; kinds.len()].join(", ");
    let mut params = vec![Value::from(entity_id)];
    params.extend(kinds.iter().map(|k| Value::from(*k)));
    c.execute_later(&format!("DELETE FROM jobs WHERE entity_id = ? AND kind IN ({marks})"), &params)
}

fn backoff(attempts: i64) -> Duration {
    // 1s, 2s, 4s … capped at one hour.
    Duration::seconds(1i64 << attempts.clamp(0, 12)).min(Duration::hours(1))
}

/// Most expiries in one transaction: they are ended in sets (`expiry`), a few statements
/// for all of them, so a batch stays short.
const EXPIRY_BATCH: usize = 256;

/// Claims and runs one batch of jobs due at `now`: up to [`BATCH`] jobs one by one, and
/// the due expiries among the first [`EXPIRY_BATCH`] in one set. Returns how many ran
/// (succeeded or not).
pub async fn run_batch(app: &App) -> Result<usize> {
    let now = app.now();
    app.store
        .write(move |c| {
            let lock = if c.backend() == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
            let sql = format!(
                "SELECT id, kind, entity_id, due_us, attempts, payload FROM jobs WHERE due_us <= ? ORDER BY due_us, seq LIMIT {EXPIRY_BATCH}{lock}"
            );
            let rows = c.query(&sql, &[Value::from(now)])?;
            let ctx = JobContext { now };
            let mut ran = 0;
            let mut singles = 0;
            let mut expiries = Vec::new();
            for row in rows {
                let job = Job {
                    id: row.text(0)?,
                    kind: row.text(1)?,
                    entity_id: row.text(2)?,
                    due: DateTime::from_timestamp_micros(row.int(3)?).unwrap_or(now),
                    attempts: row.int(4)?,
                    payload: serde_json::from_str(&row.text(5)?).unwrap_or(Json::Null),
                };
                let metrics = grantry_domain::metrics::global();
                if job.kind == crate::delivery::JOB_EXPIRE {
                    expiries.push(job);
                    continue;
                }
                // The rest stay due for the next batch.
                if singles == BATCH {
                    continue;
                }
                singles += 1;
                ran += 1;
                metrics.job_lag_seconds.observe((now - job.due).to_std().unwrap_or_default().as_secs_f64());
                metrics.jobs_running.fetch_add(1, Ordering::Relaxed);
                let outcome = run_one(&ctx, c, &job);
                metrics.jobs_running.fetch_sub(1, Ordering::Relaxed);
                outcome?;
            }
            ran += run_expiries(&ctx, c, &expiries)?;
            Ok(ran)
        })
        .await
}

/// Ends the due expiries in one set; should that fail, runs each as a job of its own (so
/// one bad assignment is retried alone, with backoff, and the others still expire).
fn run_expiries(ctx: &JobContext, c: &mut dyn Conn, jobs: &[Job]) -> Result<usize> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let metrics = grantry_domain::metrics::global();
    for job in jobs {
        metrics.job_lag_seconds.observe((ctx.now - job.due).to_std().unwrap_or_default().as_secs_f64());
    }
    match in_savepoint(c, |c| crate::expiry::expire_jobs(c, ctx.now, jobs).map(|_| ()))? {
        Ok(()) => {
            metrics.job_runs.add(crate::delivery::JOB_EXPIRE, "ok", jobs.len() as u64);
        }
        Err(e) => {
            tracing::warn!(jobs = jobs.len(), error = %e, "expiring a set of assignments failed; expiring them one by one");
            for job in jobs {
                run_one(ctx, c, job)?;
            }
        }
    }
    Ok(jobs.len())
}

/// Runs `work` in a savepoint of the transaction under way: its changes are kept if it
/// succeeds and undone alone if it fails. The outer error is the store's; the inner result
/// is `work`'s.
pub(crate) fn in_savepoint(c: &mut dyn Conn, work: impl FnOnce(&mut dyn Conn) -> Result<()>) -> Result<Result<()>> {
    // Sent with the work's first statement on PostgreSQL.
    c.execute_later("SAVEPOINT work", &[])?;
    let deferred = grantry_store::deferred::mark();
    // The work's deferred writes are sent with the release and must have succeeded before
    // the work is kept. A release that fails (a deferred write failed, or the work hid a
    // failed statement) undoes the work like any failure.
    let outcome = work(c).and_then(|()| c.execute("RELEASE SAVEPOINT work", &[]).map(|_| ()));
    if let Err(e) = &outcome {
        // Records deferred by the undone work go with it.
        grantry_store::deferred::truncate(deferred);
        if c.execute("ROLLBACK TO SAVEPOINT work", &[]).is_err() {
            // The savepoint was never made: a write deferred before it failed, which is the
            // enclosing work's failure, not this work's.
            return Err(e.clone());
        }
        c.execute("RELEASE SAVEPOINT work", &[])?;
    }
    Ok(outcome)
}

/// A job kind as a metrics label (kinds are Grantry's own, but rows could hold anything).
fn job_label(kind: &str) -> &str {
    if handler(kind).is_some() { kind } else { "unknown" }
}

fn run_one(ctx: &JobContext, c: &mut dyn Conn, job: &Job) -> Result<()> {
    let Some(handle) = handler(&job.kind) else {
        tracing::error!(kind = %job.kind, id = %job.id, "no handler for job kind; dropping it");
        c.execute("DELETE FROM jobs WHERE id = ?", &[Value::from(&job.id)])?;
        return Ok(());
    };
    let outcome = in_savepoint(c, |c| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(ctx, c, job)))
            .unwrap_or_else(|_| Err(Error::internal("job handler panicked")))
    })?;
    let runs = &grantry_domain::metrics::global().job_runs;
    runs.add(job_label(&job.kind), if outcome.is_ok() { "ok" } else { "failed" }, 1);
    match outcome {
        Ok(()) => {
            c.execute("DELETE FROM jobs WHERE id = ?", &[Value::from(&job.id)])?;
        }
        Err(e) => {
            tracing::warn!(kind = %job.kind, id = %job.id, attempts = job.attempts + 1, error = %e, "job failed; will retry");
            c.execute(
                "UPDATE jobs SET attempts = attempts + 1, due_us = ?, last_error = ? WHERE id = ?",
                &[Value::from(ctx.now + backoff(job.attempts)), Value::from(e.to_string()), Value::from(&job.id)],
            )?;
        }
    }
    Ok(())
}

/// Runs batches until no job is due at the current time. Returns the number run.
pub async fn drain(app: &App) -> Result<usize> {
    drain_unless(app, || false).await
}

/// As [`drain`], checking `stopping` before each batch: a shutdown waits for the batch under
/// way (one transaction) and starts no other.
async fn drain_unless(app: &App, stopping: impl Fn() -> bool) -> Result<usize> {
    let mut total = 0;
    // Handlers may enqueue follow-ups that are due at once; keep going until none are due,
    // with a bound so a handler that always reschedules itself cannot loop forever.
    for _ in 0..10_000 {
        if stopping() {
            break;
        }
        let ran = run_batch(app).await?;
        total += ran;
        if ran == 0 {
            break;
        }
    }
    Ok(total)
}

/// When the next job is due, if any.
pub async fn next_due(app: &App) -> Result<Option<DateTime<Utc>>> {
    app.store
        .read(|c| {
            Ok(c.query_one("SELECT MIN(due_us) FROM jobs", &[])?
                .and_then(|r| r.opt_int(0).ok().flatten())
                .and_then(DateTime::from_timestamp_micros))
        })
        .await
}

/// The background runner: drains due work, then sleeps until the next job is due, a
/// wake-up arrives (`App::work_signal`), or the poll interval passes. It ends, between two
/// batches, once `stop` turns true (or its sender is gone); work left due runs at the next
/// start, since jobs are rows.
pub fn spawn_runner(app: App, mut stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let stopping = || *stop.borrow();
            if stopping() {
                break;
            }
            match drain_unless(&app, stopping).await {
                // Jobs may have written outbox messages (callouts): let the sender know.
                Ok(n) if n > 0 => app.outbox_signal.notify_one(),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "background work failed; retrying"),
            }
            let wait = match next_due(&app).await {
                Ok(Some(due)) => (due - app.now()).to_std().unwrap_or_default().min(POLL_INTERVAL),
                _ => POLL_INTERVAL,
            };
            tokio::select! {
                _ = app.work_signal.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                changed = stop.changed() => if changed.is_err() { break },
            }
        }
    })
}
