//! The store handle: a writer thread with group commit and a pool of readers.

use crate::conn::Conn;
use crate::sqlite::{self, SqliteConn, map_err};
use grantry_domain::{Error, ErrorKind, Result};
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Runs one caller's work inside the shared transaction and says whether it succeeded;
/// the returned closure delivers the caller's result once the commit outcome is known.
type WriteJob = Box<dyn FnOnce(&mut dyn Conn) -> (bool, Deliver) + Send>;
type Deliver = Box<dyn FnOnce(Result<()>) + Send>;

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `PRAGMA synchronous=FULL` (the default): every acknowledged write survives power loss.
    pub synchronous_full: bool,
    /// Number of read connections.
    pub readers: usize,
    /// Most callers' writes committed in one transaction.
    pub max_batch: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { synchronous_full: true, readers: 8, max_batch: 512 }
    }
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    writer: mpsc::Sender<WriteJob>,
    readers: Mutex<Vec<Connection>>,
    reader_permits: Semaphore,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and applies migrations.
    pub fn open_sqlite(path: &Path, options: StoreOptions) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::internal(format!("cannot create the data directory {}: {e}", dir.display())))?;
        }
        let writer_conn = sqlite::open(path, false, options.synchronous_full)?;
        crate::migrate::apply(&writer_conn)?;
        let mut readers = Vec::with_capacity(options.readers);
        for _ in 0..options.readers.max(1) {
            readers.push(sqlite::open(path, true, options.synchronous_full)?);
        }
        let (tx, rx) = mpsc::channel::<WriteJob>(16_384);
        let max_batch = options.max_batch.max(1);
        std::thread::Builder::new()
            .name("grantry-writer".into())
            .spawn(move || writer_loop(writer_conn, rx, max_batch))
            .map_err(|e| Error::internal(format!("cannot start the writer thread: {e}")))?;
        let permits = readers.len();
        Ok(Store {
            inner: Arc::new(Inner {
                writer: tx,
                readers: Mutex::new(readers),
                reader_permits: Semaphore::new(permits),
                path: path.to_path_buf(),
            }),
        })
    }

    /// Applies migrations to the database at `path` and returns the versions applied.
    pub fn migrate_sqlite(path: &Path) -> Result<Vec<i64>> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = sqlite::open(path, false, true)?;
        crate::migrate::apply(&conn)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
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
        let job: WriteJob = Box::new(move |conn: &mut dyn Conn| {
            let result = catch_unwind(AssertUnwindSafe(|| work(conn))).unwrap_or_else(|_| {
                Err(Error::internal("an internal error interrupted this write; nothing was saved"))
            });
            let ok = result.is_ok();
            let deliver: Deliver = Box::new(move |commit: Result<()>| {
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
    pub async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> Result<T> + Send + 'static,
    {
        let _permit =
            self.inner.reader_permits.acquire().await.map_err(|_| Error::internal("the reader pool is closed"))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop()
                .ok_or_else(|| Error::internal("no read connection available"))?;
            let result = run_read(&conn, work);
            inner.readers.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
            result
        })
        .await
        .map_err(|_| Error::internal("a read was interrupted"))?
    }
}

fn run_read<T>(conn: &Connection, work: impl FnOnce(&mut dyn Conn) -> Result<T>) -> Result<T> {
    conn.execute_batch("BEGIN").map_err(map_err)?;
    let result = catch_unwind(AssertUnwindSafe(|| work(&mut SqliteConn(conn))))
        .unwrap_or_else(|_| Err(Error::internal("an internal error interrupted this read")));
    let _ = conn.execute_batch("COMMIT");
    result
}

/// The single writer: takes every job waiting (up to `max_batch`), runs each inside its own
/// savepoint of one transaction, commits once, then answers every caller.
fn writer_loop(conn: Connection, mut rx: mpsc::Receiver<WriteJob>, max_batch: usize) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut delivers = Vec::with_capacity(batch.len());
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE").map_err(map_err) {
            for job in batch.drain(..) {
                // Answer without running: nothing can be written.
                let (_, deliver) = (job)(&mut FailingConn(e.clone()));
                deliver(Err(e.clone()));
            }
            continue;
        }
        for job in batch.drain(..) {
            let savepoint = conn.execute_batch("SAVEPOINT job").map_err(map_err);
            if let Err(e) = savepoint {
                let (_, deliver) = (job)(&mut FailingConn(e.clone()));
                delivers.push((deliver, Some(e)));
                continue;
            }
            let (ok, deliver) = (job)(&mut SqliteConn(&conn));
            let finish = if ok { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
            let finished = conn.execute_batch(finish).map_err(map_err).err();
            delivers.push((deliver, finished));
        }
        let commit = conn.execute_batch("COMMIT").map_err(map_err);
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for (deliver, own_error) in delivers {
            match (&commit, own_error) {
                (Err(e), _) => deliver(Err(e.clone())),
                (Ok(()), Some(e)) => deliver(Err(e)),
                (Ok(()), None) => deliver(Ok(())),
            }
        }
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
