//! What the writer does, counted: statements sent, callers' writes run, commits and the
//! writer thread's CPU time. Statement counts are deterministic for a given request, so they
//! measure the write path's cost on any machine, busy or quiet.

use crate::conn::{Backend, Conn, Row, Value};
use grantry_domain::Result;
use std::sync::atomic::{AtomicU64, Ordering};

/// Running totals of one store's writer (and, summed over stores, the process's metrics).
#[derive(Debug, Default)]
pub(crate) struct WriterCounters {
    statements: AtomicU64,
    jobs: AtomicU64,
    commits: AtomicU64,
    cpu_ns: AtomicU64,
    round_trips: AtomicU64,
}

/// A snapshot of a writer's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Statements the writer sent to the database: the callers' statements and its own
    /// (`BEGIN`, `SAVEPOINT`, `RELEASE`, `COMMIT`, the advisory lock).
    pub statements: u64,
    /// Callers' writes run (one per `Store::write`).
    pub jobs: u64,
    /// Transactions committed.
    pub commits: u64,
    /// CPU time of the writer thread, in nanoseconds.
    pub cpu_ns: u64,
    /// Round trips to the database server (PostgreSQL; 0 for the embedded database): each
    /// a wait for the server's answers to the statements sent together.
    pub round_trips: u64,
}

impl WriterStats {
    /// The totals accrued between `earlier` and `self`.
    pub fn since(&self, earlier: &WriterStats) -> WriterStats {
        WriterStats {
            statements: self.statements.saturating_sub(earlier.statements),
            jobs: self.jobs.saturating_sub(earlier.jobs),
            commits: self.commits.saturating_sub(earlier.commits),
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            round_trips: self.round_trips.saturating_sub(earlier.round_trips),
        }
    }
}

impl WriterCounters {
    pub(crate) fn snapshot(&self) -> WriterStats {
        WriterStats {
            statements: self.statements.load(Ordering::Relaxed),
            jobs: self.jobs.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            cpu_ns: self.cpu_ns.load(Ordering::Relaxed),
            round_trips: self.round_trips.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn statements(&self, n: u64) {
        self.statements.fetch_add(n, Ordering::Relaxed);
        grantry_domain::metrics::global().writer_statements.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn job(&self) {
        self.jobs.fetch_add(1, Ordering::Relaxed);
        grantry_domain::metrics::global().writer_jobs.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn commit(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn round_trips(&self, n: u64) {
        self.round_trips.fetch_add(n, Ordering::Relaxed);
        grantry_domain::metrics::global().writer_round_trips.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn cpu(&self, ns: u64) {
        self.cpu_ns.fetch_add(ns, Ordering::Relaxed);
        grantry_domain::metrics::global().writer_cpu_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// CPU time consumed so far by the calling thread, in nanoseconds (0 where unavailable).
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec and the clock id is a constant the C
    // library knows; the call writes nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

/// A [`Conn`] that counts the statements sent through it.
pub(crate) struct Counting<'a> {
    pub(crate) inner: &'a mut dyn Conn,
    pub(crate) sent: u64,
}

impl Conn for Counting<'_> {
    fn backend(&self) -> Backend {
        self.inner.backend()
    }
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.sent += 1;
        self.inner.query(sql, params)
    }
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.sent += 1;
        self.inner.execute(sql, params)
    }
    fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        self.sent += 1;
        self.inner.query_one(sql, params)
    }
    fn execute_later(&mut self, sql: &str, params: &[Value]) -> Result<()> {
        self.sent += 1;
        self.inner.execute_later(sql, params)
    }
    fn sync(&mut self) -> Result<()> {
        self.inner.sync()
    }
}

/// Statements and writer CPU of the reads and writes made inside [`counted`].
#[derive(Debug, Default)]
struct Tally {
    write_statements: AtomicU64,
    writes: AtomicU64,
    write_cpu_ns: AtomicU64,
    read_statements: AtomicU64,
    reads: AtomicU64,
    write_round_trips: AtomicU64,
}

/// What the work inside [`counted`] cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    /// Statements the writer ran for this work: the callers' own statements plus the
    /// savepoint and release around each (the batch's `BEGIN`/`COMMIT`, shared by every
    /// caller in it, are not counted).
    pub write_statements: u64,
    /// `Store::write` calls.
    pub writes: u64,
    /// CPU time the writer thread spent running this work's closures, in nanoseconds.
    pub write_cpu_ns: u64,
    /// Round trips to PostgreSQL the writer made for this work: its statements, sent in
    /// pipelines, and the wait for its queued writes at its end (the batch's commit, shared
    /// by every caller in it, is not counted; 0 on the embedded database).
    pub write_round_trips: u64,
    /// Statements run on read connections (`BEGIN`/`COMMIT` not counted).
    pub read_statements: u64,
    /// `Store::read` calls.
    pub reads: u64,
}

tokio::task_local! {
    static TALLY: std::sync::Arc<Tally>;
}

/// Runs `work` and returns what its reads and writes cost on the store (statements, and
/// the writer's CPU time). Only reads and writes awaited within `work`'s own task count.
pub async fn counted<F: std::future::Future>(work: F) -> (F::Output, Counted) {
    let tally = std::sync::Arc::new(Tally::default());
    let out = TALLY.scope(tally.clone(), work).await;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    (
        out,
        Counted {
            write_statements: load(&tally.write_statements),
            writes: load(&tally.writes),
            write_cpu_ns: load(&tally.write_cpu_ns),
            write_round_trips: load(&tally.write_round_trips),
            read_statements: load(&tally.read_statements),
            reads: load(&tally.reads),
        },
    )
}

/// The tally of the task under way, if it is counting.
pub(crate) fn current_tally() -> Option<TallyHandle> {
    TALLY.try_with(|t| TallyHandle(t.clone())).ok()
}

pub(crate) struct TallyHandle(std::sync::Arc<Tally>);

impl TallyHandle {
    /// Adds the round trips a write took (known once the writer has ended it).
    pub(crate) fn round_trips(&self, n: u64) {
        self.0.write_round_trips.fetch_add(n, Ordering::Relaxed);
    }

    /// Runs `work` on `conn`, adding its statements (and, for writes, its CPU time and the
    /// savepoint and release around it) to the tally.
    pub(crate) fn run<T>(&self, conn: &mut dyn Conn, write: bool, work: impl FnOnce(&mut dyn Conn) -> T) -> T {
        let cpu = if write { thread_cpu_ns() } else { 0 };
        let mut counting = Counting { inner: conn, sent: 0 };
        let out = work(&mut counting);
        let t = &self.0;
        if write {
            t.write_statements.fetch_add(counting.sent + 2, Ordering::Relaxed);
            t.writes.fetch_add(1, Ordering::Relaxed);
            t.write_cpu_ns.fetch_add(thread_cpu_ns().saturating_sub(cpu), Ordering::Relaxed);
        } else {
            t.read_statements.fetch_add(counting.sent, Ordering::Relaxed);
            t.reads.fetch_add(1, Ordering::Relaxed);
        }
        out
    }
}
