//! The store handle: a writer thread with group commit and a pool of readers, over SQLite
//! (embedded) or PostgreSQL.
//!
//! Both backends share the same write path: one writer thread per process takes every
//! waiting caller's work, runs each inside its own savepoint of one transaction and commits
//! once. On PostgreSQL each write transaction first takes a cluster-wide advisory lock, so
//! writes from several Grantry processes sharing one database are serialized exactly as
//! SQLite's single writer serializes them; reads run on pooled connections in read-only
//! snapshot transactions and never wait for writers.

use crate::conn::Conn;
use crate::pg::{self, PgClient, PgConn};
use crate::pipe::{PgPipe, PipeConn};
use crate::sqlite::{self, SqliteConn, map_err};
use crate::stats::{Counting, WriterCounters, WriterStats, thread_cpu_ns};
use grantry_domain::{Error, ErrorKind, Result};
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Runs one caller's work inside the shared transaction and says whether it succeeded;
/// the returned closure delivers the caller's result once the commit outcome is known,
/// with the round trips the work took.
type WriteJob = Box<dyn FnOnce(&mut dyn Conn) -> (bool, Deliver) + Send>;
type Deliver = Box<dyn FnOnce(Result<()>, u64) + Send>;

/// Advisory lock held by every PostgreSQL write transaction (serializes writers across
/// processes).
pub(crate) const PG_WRITE_LOCK: i64 = 0x4752_414e_5452_5957; // "GRANTRYW"

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `PRAGMA synchronous=FULL` (the default): every acknowledged write survives power loss.
    pub synchronous_full: bool,
    /// Number of SQLite read connections.
    pub readers: usize,
    /// Most PostgreSQL read connections (opened on demand).
    pub pg_pool_size: usize,
    /// Most callers' writes committed in one transaction.
    pub max_batch: usize,
    /// Longest a read waits for a free connection before it is refused (503 with
    /// `Retry-After`).
    pub read_queue_wait: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            synchronous_full: true,
            readers: 8,
            pg_pool_size: 16,
            max_batch: 512,
            read_queue_wait: Duration::from_secs(5),
        }
    }
}

/// The share of the readers that requests marked expensive may hold at once (at least one
/// reader is always left to the others).
fn heavy_share(readers: usize) -> usize {
    (readers / 2).max(1).min(readers.saturating_sub(1).max(1))
}

/// Where a store keeps its data, parsed from a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// `postgres://…` / `postgresql://…`, or `sqlite:PATH`, `sqlite://PATH` or a bare path.
    pub fn parse(url: &str) -> Result<Location> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_string()));
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if url.contains("://") && !url.starts_with("sqlite://") {
            return Err(Error::bad_request(
                "BadRequest",
                format!(
                    "database URL '{}' is not supported; use sqlite:PATH or postgres://USER@HOST:PORT/DB",
                    pg::redact(url)
                ),
            ));
        }
        if path.is_empty() {
            return Err(Error::bad_request(
                "BadRequest",
                format!("database URL '{url}' names no file; use sqlite:PATH"),
            ));
        }
        Ok(Location::Sqlite(PathBuf::from(path)))
    }

    /// A description safe for logs (no password).
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(p) => format!("sqlite:{}", p.display()),
            Location::Postgres(u) => pg::redact(u),
        }
    }

    /// Whether a Grantry database is there already (a SQLite file; a PostgreSQL database
    /// with Grantry's tables), found without creating or changing anything.
    pub fn holds_grantry_data(&self) -> Result<bool> {
        match self {
            Location::Sqlite(path) => Ok(path.is_file()),
            Location::Postgres(url) => off_runtime(|| {
                let mut client = PgClient::connect(url)?;
                let found = PgConn(&mut client).query_one(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'meta'",
                    &[],
                )?;
                Ok(found.map(|r| r.int(0)).transpose()?.unwrap_or(0) > 0)
            }),
        }
    }
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

enum Readers {
    Sqlite(Mutex<Vec<Connection>>),
    Postgres { url: String, idle: Mutex<Vec<PgClient>> },
}

struct Inner {
    writer: mpsc::Sender<WriteJob>,
    readers: Readers,
    /// One per connection. A read holds its permit until its connection is back in the
    /// pool, even when its caller has gone: permits and connections never disagree.
    reader_permits: Arc<Semaphore>,
    /// Held (besides a reader permit) by reads of expensive requests.
    heavy_permits: Arc<Semaphore>,
    read_queue_wait: Duration,
    reader_pool_size: usize,
    location: Location,
    /// What the writer thread has done so far.
    counters: Arc<WriterCounters>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Readers::Postgres { idle, .. } = &self.readers {
            pg::close_elsewhere(std::mem::take(&mut *idle.lock().unwrap_or_else(|e| e.into_inner())));
        }
    }
}

/// Runs blocking set-up work (connecting, migrating) off the async runtime's threads.
fn off_runtime<T: Send>(work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(work).join().unwrap_or_else(|_| Err(Error::internal("opening the database was interrupted")))
    })
}

impl Store {
    /// Opens the database named by `url` (see [`Location::parse`]), creating it if needed
    /// (SQLite), and applies migrations.
    pub fn open(url: &str, options: StoreOptions) -> Result<Store> {
        Self::open_location(&Location::parse(url)?, options)
    }

    pub fn open_location(location: &Location, options: StoreOptions) -> Result<Store> {
        match location {
            Location::Sqlite(path) => Self::open_sqlite(path, options),
            Location::Postgres(url) => Self::open_postgres(url, options),
        }
    }

    /// Applies migrations to the database named by `url` and returns the versions applied.
    pub fn migrate(url: &str) -> Result<Vec<i64>> {
        match Location::parse(url)? {
            Location::Sqlite(path) => Self::migrate_sqlite(&path),
            Location::Postgres(url) => off_runtime(move || {
                let mut client = PgClient::connect(&url)?;
                crate::migrate::apply_postgres(&mut client)
            }),
        }
    }

    /// Connects to the PostgreSQL database at `url` and applies migrations. Several
    /// processes may do this at once: migrations are applied under an advisory lock.
    pub fn open_postgres(url: &str, options: StoreOptions) -> Result<Store> {
        let owned = url.to_string();
        let writer_client = off_runtime(move || {
            let mut client = PgClient::connect(&owned)?;
            crate::migrate::apply_postgres(&mut client)?;
            drop(client);
            PgPipe::connect(&owned)
        })?;
        let (tx, rx) = mpsc::channel::<WriteJob>(16_384);
        let max_batch = options.max_batch.max(1);
        let writer = PgWriter {
            url: url.to_string(),
            client: Some(writer_client),
            earlier_round_trips: 0,
            saw_failure: false,
            in_transaction: false,
        };
        let counters = Arc::new(WriterCounters::default());
        let writer_counters = counters.clone();
        std::thread::Builder::new()
            .name("grantry-writer".into())
            .spawn(move || writer_loop(writer, rx, max_batch, &writer_counters))
            .map_err(|e| Error::internal(format!("cannot start the writer thread: {e}")))?;
        Ok(Store {
            inner: Arc::new(Inner {
                writer: tx,
                readers: Readers::Postgres { url: url.to_string(), idle: Mutex::new(Vec::new()) },
                reader_permits: Arc::new(Semaphore::new(options.pg_pool_size.max(1))),
                heavy_permits: Arc::new(Semaphore::new(heavy_share(options.pg_pool_size.max(1)))),
                read_queue_wait: options.read_queue_wait,
                reader_pool_size: options.pg_pool_size.max(1),
                location: Location::Postgres(url.to_string()),
                counters,
            }),
        })
    }

    /// Opens (creating if needed) the SQLite database at `path` and applies migrations.
    pub fn open_sqlite(path: &Path, options: StoreOptions) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::files::create_private_dir(dir)?;
        }
        crate::files::create_private_file(path)?;
        let writer_conn = sqlite::open(path, false, options.synchronous_full)?;
        for warning in crate::files::permission_warnings(path) {
            tracing::warn!("{warning}");
        }
        crate::migrate::apply(&writer_conn)?;
        // Checkpoints run on their own connection and thread (see `checkpoint_loop`), so a
        // commit never waits for WAL pages to be copied into the database file.
        writer_conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(map_err)?;
        let checkpointer = sqlite::open(path, false, options.synchronous_full)?;
        let (nudge, nudges) = std::sync::mpsc::sync_channel::<()>(1);
        let reset_wanted = Arc::new(AtomicBool::new(false));
        let wants_reset = reset_wanted.clone();
        std::thread::Builder::new()
            .name("grantry-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, nudges, &wants_reset))
            .map_err(|e| Error::internal(format!("cannot start the checkpoint thread: {e}")))?;
        let mut readers = Vec::with_capacity(options.readers);
        for _ in 0..options.readers.max(1) {
            readers.push(sqlite::open(path, true, options.synchronous_full)?);
        }
        let (tx, rx) = mpsc::channel::<WriteJob>(16_384);
        let max_batch = options.max_batch.max(1);
        let counters = Arc::new(WriterCounters::default());
        let writer_counters = counters.clone();
        std::thread::Builder::new()
            .name("grantry-writer".into())
            .spawn(move || {
                writer_loop(SqliteWriter { conn: writer_conn, nudge, reset_wanted }, rx, max_batch, &writer_counters)
            })
            .map_err(|e| Error::internal(format!("cannot start the writer thread: {e}")))?;
        let permits = readers.len();
        Ok(Store {
            inner: Arc::new(Inner {
                writer: tx,
                readers: Readers::Sqlite(Mutex::new(readers)),
                reader_permits: Arc::new(Semaphore::new(permits)),
                heavy_permits: Arc::new(Semaphore::new(heavy_share(permits))),
                read_queue_wait: options.read_queue_wait,
                reader_pool_size: permits,
                location: Location::Sqlite(path.to_path_buf()),
                counters,
            }),
        })
    }

    /// Applies migrations to the database at `path` and returns the versions applied.
    pub fn migrate_sqlite(path: &Path) -> Result<Vec<i64>> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::files::create_private_dir(dir)?;
        }
        crate::files::create_private_file(path)?;
        let conn = sqlite::open(path, false, true)?;
        crate::migrate::apply(&conn)
    }

    /// Writes waiting for the writer (not counting the batch it is committing).
    pub fn write_queue_depth(&self) -> usize {
        self.inner.writer.max_capacity() - self.inner.writer.capacity()
    }

    /// What this store's writer has done so far: statements sent, callers' writes run,
    /// commits and its thread's CPU time. The difference of two snapshots taken around a
    /// piece of work is that work's cost on the writer.
    pub fn writer_stats(&self) -> WriterStats {
        self.inner.counters.snapshot()
    }

    /// Read connections in use and the most there can be.
    pub fn read_pool_use(&self) -> (usize, usize) {
        let size = self.inner.reader_pool_size;
        (size.saturating_sub(self.inner.reader_permits.available_permits()), size)
    }

    /// Where this store keeps its data.
    pub fn location(&self) -> &Location {
        &self.inner.location
    }

    /// The backend this store runs on.
    pub fn backend(&self) -> crate::Backend {
        match self.inner.location {
            Location::Sqlite(_) => crate::Backend::Sqlite,
            Location::Postgres(_) => crate::Backend::Postgres,
        }
    }

    /// Runs `work` in a write transaction shared with other callers (group commit). The
    /// result is returned only after the transaction is durably committed; if `work` fails
    /// its changes are rolled back alone and the error is returned.
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let tally = crate::stats::current_tally();
        let job: WriteJob = Box::new(move |conn: &mut dyn Conn| {
            let run = |conn: &mut dyn Conn| {
                catch_unwind(AssertUnwindSafe(|| work(conn))).unwrap_or_else(|_| {
                    Err(Error::internal("an internal error interrupted this write; nothing was saved"))
                })
            };
            let result = match &tally {
                Some(t) => t.run(conn, true, run),
                None => run(conn),
            };
            let ok = result.is_ok();
            let deliver: Deliver = Box::new(move |commit: Result<()>, round_trips: u64| {
                if let Some(t) = &tally {
                    t.round_trips(round_trips);
                }
                let _ = tx.send(commit.and(result));
            });
            (ok, deliver)
        });
        self.inner
            .writer
            .send(job)
            .await
            .map_err(|_| Error::new(ErrorKind::Unavailable, "serviceNotAvailable", "the store is shutting down"))?;
        rx.await.map_err(|_| Error::internal("the writer stopped before answering"))?
    }

    /// Runs `work` on a read connection inside a read transaction (a consistent snapshot).
    /// Reads never wait for the writer.
    ///
    /// Inside a request ([`crate::budget::scope`]) the read is bounded by what is left of
    /// the request's statement time: past it the read is interrupted and refused (400). A
    /// read whose caller goes away is interrupted too. A read that finds every connection
    /// busy for longer than the queue wait is refused with 503.
    pub async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> Result<T> + Send + 'static,
    {
        let budget = crate::budget::current();
        let limit = budget.as_ref().map(|b| b.remaining());
        if let (Some(b), Some(left)) = (&budget, limit)
            && left.is_zero()
        {
            return Err(crate::budget::exceeded(b));
        }
        let heavy = budget.as_ref().is_some_and(|b| b.is_heavy());
        let inner = self.inner.clone();
        let tally = crate::stats::current_tally();
        let acquire = async {
            let heavy_permit =
                if heavy { Some(inner.heavy_permits.clone().acquire_owned().await) } else { None }.transpose();
            let permit = inner.reader_permits.clone().acquire_owned().await;
            Ok::<_, tokio::sync::AcquireError>((heavy_permit?, permit?))
        };
        let permits = match tokio::time::timeout(self.inner.read_queue_wait, acquire).await {
            Ok(Ok(permits)) => permits,
            Ok(Err(_)) => return Err(Error::internal("the reader pool is closed")),
            Err(_) => return Err(readers_busy(self.inner.read_queue_wait)),
        };
        let control = Arc::new(ReadControl::new(limit.map(|l| Instant::now() + l)));
        // Dropped when this future is (the caller went away) or when it ends: either way a
        // read still running is interrupted.
        let _interrupt_on_drop = InterruptOnDrop(control.clone());
        let task_control = control.clone();
        let task = tokio::task::spawn_blocking(move || {
            // Released after the connection is back in the pool.
            let _permits = permits;
            let started = Instant::now();
            let result = match &inner.readers {
                Readers::Sqlite(pool) => {
                    let conn = pool
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .pop()
                        .ok_or_else(|| readers_busy(inner.read_queue_wait))?;
                    let watch = task_control.clone();
                    conn.progress_handler(SQLITE_PROGRESS_OPS, Some(move || watch.should_stop()));
                    let result = run_read(&conn, |c| match &tally {
                        Some(t) => t.run(c, false, work),
                        None => work(c),
                    });
                    conn.progress_handler(SQLITE_PROGRESS_OPS, None::<fn() -> bool>);
                    pool.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
                    result
                }
                Readers::Postgres { url, idle } => {
                    let pooled = idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
                    let mut client = match pooled {
                        Some(c) if !c.is_closed() => c,
                        _ => PgClient::connect(url)?,
                    };
                    task_control.arm(client.cancel_token());
                    let result = run_read_pg(&mut client, task_control.deadline, |c| match &tally {
                        Some(t) => t.run(c, false, work),
                        None => work(c),
                    });
                    task_control.disarm();
                    // An interrupted read's connection is closed rather than reused: a cancel
                    // sent just as the read ended must not stop the next read on it.
                    if !client.is_closed() && !task_control.stopped() {
                        idle.lock().unwrap_or_else(|e| e.into_inner()).push(client);
                    }
                    result
                }
            };
            Ok((result, started.elapsed()))
        });
        let joined = match limit {
            Some(left) => match tokio::time::timeout(left, task).await {
                Ok(joined) => joined,
                Err(_) => {
                    control.interrupt();
                    if let Some(b) = &budget {
                        b.use_up();
                        return Err(crate::budget::exceeded(b));
                    }
                    return Err(Error::internal("a read outlived its deadline"));
                }
            },
            None => task.await,
        };
        let (result, spent) = joined.map_err(|_| Error::internal("a read was interrupted"))??;
        if let Some(b) = &budget {
            b.spend(spent);
            // A statement stopped at the deadline fails with the database's own error;
            // the caller learns which limit stopped it.
            if result.is_err() && control.deadline_passed() {
                b.use_up();
                return Err(crate::budget::exceeded(b));
            }
        }
        result
    }
}

/// How many SQLite virtual-machine steps run between two checks of a read's deadline.
const SQLITE_PROGRESS_OPS: std::os::raw::c_int = 10_000;

fn readers_busy(waited: Duration) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "serviceNotAvailable",
        format!(
            "Every database reader stayed busy for {} ms; retry after the time in Retry-After.",
            waited.as_millis()
        ),
    )
}

/// What stops one read: its deadline, or its caller going away.
struct ReadControl {
    deadline: Option<Instant>,
    stop: AtomicBool,
    /// Cancels the PostgreSQL statement running for this read.
    cancel: Mutex<Option<postgres::CancelToken>>,
}

impl ReadControl {
    fn new(deadline: Option<Instant>) -> ReadControl {
        ReadControl { deadline, stop: AtomicBool::new(false), cancel: Mutex::new(None) }
    }

    fn deadline_passed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Polled by SQLite while a statement runs: true aborts it.
    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.deadline_passed()
    }

    fn arm(&self, token: postgres::CancelToken) {
        *self.cancel.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
    }

    fn disarm(&self) {
        self.cancel.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    fn interrupt(&self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(token) = self.cancel.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // Cancelling opens a connection of its own: not on the async runtime's threads.
            std::thread::spawn(move || {
                let _ = token.cancel_query(postgres::NoTls);
            });
        }
    }
}

struct InterruptOnDrop(Arc<ReadControl>);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        self.0.interrupt();
    }
}

fn run_read<T>(conn: &Connection, work: impl FnOnce(&mut dyn Conn) -> Result<T>) -> Result<T> {
    conn.execute_batch("BEGIN").map_err(map_err)?;
    let result = catch_unwind(AssertUnwindSafe(|| work(&mut SqliteConn(conn))))
        .unwrap_or_else(|_| Err(Error::internal("an internal error interrupted this read")));
    let _ = conn.execute_batch("COMMIT");
    result
}

fn run_read_pg<T>(
    client: &mut PgClient,
    deadline: Option<Instant>,
    work: impl FnOnce(&mut dyn Conn) -> Result<T>,
) -> Result<T> {
    client.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
    // The server stops any statement that runs past the read's deadline by itself, even
    // if the cancel sent when the deadline passes is lost.
    if let Some(deadline) = deadline {
        let ms = deadline.saturating_duration_since(Instant::now()).as_millis().max(1);
        client.batch(&format!("SET LOCAL statement_timeout = {ms}"))?;
    }
    let result = catch_unwind(AssertUnwindSafe(|| work(&mut PgConn(&mut *client))))
        .unwrap_or_else(|_| Err(Error::internal("an internal error interrupted this read")));
    if client.batch("COMMIT").is_err() {
        let _ = client.batch("ROLLBACK");
    }
    result
}

/// The writer's side of a backend: opening a write transaction, isolating each caller's
/// work in a savepoint, and committing.
trait Writer {
    /// Opens a write transaction; the statements it takes are counted by `begin_statements`.
    fn begin(&mut self) -> Result<()>;
    fn begin_statements(&self) -> u64 {
        1
    }
    /// Opens the savepoint of the next caller's work.
    fn savepoint(&mut self) -> Result<()>;
    /// Runs a caller's work; also says how many statements it sent.
    fn run(&mut self, job: WriteJob) -> (bool, Deliver, u64);
    /// Ends a caller's work: kept (`ok`) or rolled back to its savepoint. Returns the
    /// caller's own failure found while ending it (its work is then undone) and the
    /// statements sent.
    fn finish(&mut self, ok: bool) -> (Option<Error>, u64);
    /// Inserts the batch's deferred rows; returns the statements it ran.
    fn flush(&mut self, rows: Vec<crate::deferred::PendingRows>) -> Result<u64>;
    fn commit(&mut self) -> Result<()>;
    fn rollback(&mut self);
    /// Called after each successful commit.
    fn committed(&mut self) {}
    /// Called after a batch's callers have been answered, before the next batch begins.
    fn between_batches(&mut self) {}

    /// Round trips to the database server so far (0 for the embedded database).
    fn round_trips(&self) -> u64 {
        0
    }
}

struct SqliteWriter {
    conn: Connection,
    /// Tells the checkpoint thread that the WAL has grown; dropped with the writer, which
    /// stops that thread.
    nudge: std::sync::mpsc::SyncSender<()>,
    /// Set by the checkpoint thread when the WAL has grown past [`WAL_RESET_FRAMES`].
    reset_wanted: Arc<AtomicBool>,
}

impl SqliteWriter {
    fn batch(&mut self, sql: &str) -> Result<()> {
        // Cached statements: the savepoint statements run several times per caller, and
        // parsing them each time was a visible part of the writer's time.
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            self.conn.prepare_cached(statement).and_then(|mut s| s.execute([])).map_err(map_err)?;
        }
        Ok(())
    }
}

impl Writer for SqliteWriter {
    fn begin(&mut self) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(map_err)
    }
    fn savepoint(&mut self) -> Result<()> {
        self.batch("SAVEPOINT job")
    }
    fn run(&mut self, job: WriteJob) -> (bool, Deliver, u64) {
        let mut conn = SqliteConn(&self.conn);
        let mut counting = Counting { inner: &mut conn, sent: 0 };
        let (ok, deliver) = job(&mut counting);
        (ok, deliver, counting.sent)
    }
    fn finish(&mut self, ok: bool) -> (Option<Error>, u64) {
        if ok {
            // A release that fails undoes this caller's work alone.
            match self.batch("RELEASE job") {
                Ok(()) => (None, 1),
                Err(e) => {
                    let _ = self.batch("ROLLBACK TO job; RELEASE job");
                    (Some(e), 3)
                }
            }
        } else {
            (self.batch("ROLLBACK TO job; RELEASE job").err(), 2)
        }
    }
    fn flush(&mut self, rows: Vec<crate::deferred::PendingRows>) -> Result<u64> {
        crate::deferred::flush(&mut SqliteConn(&self.conn), rows)
    }
    fn commit(&mut self) -> Result<()> {
        self.batch("COMMIT")
    }
    fn rollback(&mut self) {
        let _ = self.batch("ROLLBACK");
    }
    fn committed(&mut self) {
        // A nudge already pending covers this commit too.
        let _ = self.nudge.try_send(());
    }
    fn between_batches(&mut self) {
        if self.reset_wanted.swap(false, Ordering::Relaxed) {
            reset_wal(&self.conn);
        }
    }
}

/// WAL frames (pages of 4 KiB) past which the log is started over (64 MiB). Passive
/// checkpoints copy pages into the database file but cannot start the log over while
/// readers keep taking snapshots and commits keep coming, so under steady load the WAL
/// would grow without end; and after an unclean stop the next start reads all of it back
/// (SQLite's WAL recovery), so the time to start would grow with it.
const WAL_RESET_FRAMES: i64 = if cfg!(test) { 256 } else { 16_384 };

/// How long a reset waits for reads still using the log before it gives up until later.
const WAL_RESET_WAIT: Duration = Duration::from_millis(50);

/// Copies what is left of the WAL into the database file and empties the log (a
/// truncating checkpoint), on the writer's connection between two batches, so no write
/// is under way. It waits at most [`WAL_RESET_WAIT`] for reads that started on older
/// pages; if they are still running, the log is left as it is and the next checkpoint
/// asks again.
fn reset_wal(conn: &Connection) {
    let _ = conn.busy_timeout(WAL_RESET_WAIT);
    let done = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
    let _ = conn.busy_timeout(sqlite::BUSY_TIMEOUT);
    match done {
        Ok(0) => tracing::debug!("WAL started over"),
        Ok(_) => tracing::debug!("WAL not started over: reads still use it; retrying after the next checkpoint"),
        Err(e) => tracing::warn!(error = %e, "WAL reset failed; retrying after the next checkpoint"),
    }
}

/// Least time between two checkpoints while commits keep coming.
/// (The test build checks more often, so that a test's bound on the WAL does not depend on
/// how fast the machine writes.)
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(if cfg!(test) { 10 } else { 200 });

/// Copies committed WAL pages into the database file (a passive checkpoint: it never blocks
/// the writer or readers) after commits, at most once per [`CHECKPOINT_INTERVAL`]. Durability
/// does not depend on it: a commit is durable once its WAL frames are synced. Ends when the
/// writer is gone.
fn checkpoint_loop(conn: Connection, nudges: std::sync::mpsc::Receiver<()>, reset_wanted: &AtomicBool) {
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::Instant;
    let mut next = Instant::now();
    while nudges.recv().is_ok() {
        // Too soon after the last checkpoint: let the commits of the interval accumulate.
        while let Some(left) = next.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            match nudges.recv_timeout(left) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        // (busy, frames in the log, frames copied into the database file)
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            // Right after a passive checkpoint little is left to copy: the writer's reset
            // holds up the next batch only briefly.
            Ok(frames) if frames >= WAL_RESET_FRAMES => reset_wanted.store(true, Ordering::Relaxed),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying after the next commit"),
        }
        next = Instant::now() + CHECKPOINT_INTERVAL;
    }
}

/// The PostgreSQL writer connection (pipelined, see [`crate::pipe`]), reopened when the
/// server drops it.
struct PgWriter {
    url: String,
    client: Option<PgPipe>,
    /// Round trips of connections dropped since (the count goes on across reconnections).
    earlier_round_trips: u64,
    /// Whether the work under way had a statement fail (and may have carried on, leaving
    /// the transaction aborted): its release is then checked before the next caller runs.
    saw_failure: bool,
    /// Between `begin` and the end of the commit or rollback.
    in_transaction: bool,
}

impl PgWriter {
    /// The connection, reopened if the server dropped it, but only between transactions:
    /// a transaction whose connection was lost is gone with everything queued in it, so
    /// within one the loss is an error (the batch fails and nobody is told it committed).
    fn client(&mut self) -> Result<&mut PgPipe> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            if self.in_transaction {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "serviceNotAvailable",
                    "The database connection was lost; retry the request.",
                ));
            }
            if let Some(old) = self.client.take() {
                self.earlier_round_trips += old.round_trips();
            }
            self.client = Some(PgPipe::connect(&self.url)?);
        }
        self.client.as_mut().ok_or_else(|| Error::internal("no database connection"))
    }

    /// Undoes the caller's work, before the next caller's statements (sent with them).
    fn roll_back_job(&mut self) {
        if let Some(client) = self.client.as_mut() {
            client.drop_callers_queued();
            client.queue_simple("ROLLBACK TO job; RELEASE job");
        }
    }
}

impl Writer for PgWriter {
    fn begin(&mut self) -> Result<()> {
        // Sent with the first statement of the batch's first caller (or with the commit).
        self.in_transaction = false;
        let client = self.client()?;
        let _ = client.take_broken();
        client.discard_queued();
        client.queue_simple(&format!("BEGIN; SELECT pg_advisory_xact_lock({PG_WRITE_LOCK})"));
        self.in_transaction = true;
        Ok(())
    }
    fn begin_statements(&self) -> u64 {
        2
    }
    fn savepoint(&mut self) -> Result<()> {
        self.saw_failure = false;
        self.client()?.queue_simple("SAVEPOINT job");
        Ok(())
    }
    fn run(&mut self, job: WriteJob) -> (bool, Deliver, u64) {
        match self.client() {
            Ok(client) => {
                let mut conn = PipeConn { pipe: client, failed: false };
                let mut counting = Counting { inner: &mut conn, sent: 0 };
                let (ok, deliver) = job(&mut counting);
                let sent = counting.sent;
                self.saw_failure = conn.failed;
                (ok, deliver, sent)
            }
            Err(e) => {
                let (ok, deliver) = job(&mut FailingConn(e));
                (ok, deliver, 0)
            }
        }
    }
    fn finish(&mut self, ok: bool) -> (Option<Error>, u64) {
        if !ok {
            self.roll_back_job();
            return (None, 2);
        }
        let checked = self.saw_failure;
        let Some(client) = self.client.as_mut() else {
            return (Some(Error::internal("no database connection")), 1);
        };
        if client.callers_queued() || checked {
            // The caller's writes still waiting are sent now (with the release when its
            // work hid a failure): they must have succeeded before the next caller runs.
            let sent = if checked { client.simple_now("RELEASE job") } else { client.sync() };
            if let Err(e) = sent {
                self.roll_back_job();
                return (Some(e), 3);
            }
            if checked {
                return (None, 1);
            }
        }
        client.queue_simple("RELEASE job");
        (None, 1)
    }
    fn flush(&mut self, rows: Vec<crate::deferred::PendingRows>) -> Result<u64> {
        let client = self.client()?;
        crate::deferred::flush(&mut PipeConn { pipe: client, failed: false }, rows)
    }
    fn commit(&mut self) -> Result<()> {
        let client = self.client()?;
        // Everything still queued (the last release, the audit rows) goes with the commit.
        let committed = client.simple_now("COMMIT");
        let outcome = match client.take_broken() {
            Some(e) => Err(e),
            None => committed,
        };
        if outcome.is_ok() {
            self.in_transaction = false;
        }
        outcome
    }
    fn rollback(&mut self) {
        if let Some(client) = self.client.as_mut().filter(|c| !c.is_closed()) {
            client.discard_queued();
            let _ = client.simple_now("ROLLBACK");
            let _ = client.take_broken();
        }
        self.in_transaction = false;
    }
    fn round_trips(&self) -> u64 {
        self.earlier_round_trips + self.client.as_ref().map_or(0, |c| c.round_trips())
    }
}

/// The single writer: takes every job waiting (up to `max_batch`), runs each inside its own
/// savepoint of one transaction, commits once, then answers every caller.
fn writer_loop(mut conn: impl Writer, mut rx: mpsc::Receiver<WriteJob>, max_batch: usize, counters: &WriterCounters) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let cpu_before = thread_cpu_ns();
        let trips_before = conn.round_trips();
        let mut sent = conn.begin_statements();
        let batch_size = batch.len();
        let started = std::time::Instant::now();
        let mut delivers = Vec::with_capacity(batch.len());
        let mut deferred_rows = Vec::new();
        if let Err(e) = conn.begin() {
            for job in batch.drain(..) {
                // Answer without running: nothing can be written.
                let (_, deliver) = (job)(&mut FailingConn(e.clone()));
                deliver(Err(e.clone()), 0);
            }
            counters.statements(sent);
            counters.round_trips(conn.round_trips().saturating_sub(trips_before));
            continue;
        }
        for job in batch.drain(..) {
            counters.job();
            sent += 1;
            let job_trips = conn.round_trips();
            if let Err(e) = conn.savepoint() {
                let (_, deliver) = (job)(&mut FailingConn(e.clone()));
                delivers.push((deliver, Some(e), 0));
                continue;
            }
            crate::deferred::begin();
            let (ok, deliver, own) = conn.run(job);
            let rows = crate::deferred::end();
            let (finished, ending) = conn.finish(ok);
            sent += own + ending;
            if ok && finished.is_none() {
                deferred_rows.extend(rows);
            }
            delivers.push((deliver, finished, conn.round_trips().saturating_sub(job_trips)));
        }
        // The batch's deferred rows (audit records), then the commit: both or neither.
        let flushed = if deferred_rows.is_empty() { Ok(0) } else { conn.flush(deferred_rows) };
        sent += *flushed.as_ref().unwrap_or(&1) + 1;
        let commit = flushed.and_then(|_| conn.commit());
        let metrics = grantry_domain::metrics::global();
        if commit.is_err() {
            sent += 1;
            conn.rollback();
            metrics.writer_commit_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else {
            conn.committed();
            counters.commit();
        }
        counters.statements(sent);
        counters.round_trips(conn.round_trips().saturating_sub(trips_before));
        counters.cpu(thread_cpu_ns().saturating_sub(cpu_before));
        metrics.writer_batch_size.observe(batch_size as f64);
        metrics.writer_commit_seconds.observe(started.elapsed().as_secs_f64());
        for (deliver, own_error, trips) in delivers {
            match (&commit, own_error) {
                (Err(e), _) => deliver(Err(e.clone()), trips),
                (Ok(()), Some(e)) => deliver(Err(e), trips),
                (Ok(()), None) => deliver(Ok(()), trips),
            }
        }
        conn.between_batches();
    }
}

/// A connection that fails every statement; used to answer jobs that cannot run.
struct FailingConn(Error);

impl Conn for FailingConn {
    fn backend(&self) -> crate::Backend {
        crate::Backend::Sqlite
    }
    fn query(&mut self, _: &str, _: &[crate::Value]) -> Result<Vec<crate::Row>> {
        Err(self.0.clone())
    }
    fn execute(&mut self, _: &str, _: &[crate::Value]) -> Result<u64> {
        Err(self.0.clone())
    }
}
