//! The PostgreSQL writer's connection: statements sent in pipelines, so a caller's write
//! costs a few round trips, not one per statement.
//!
//! The writer runs callers' work one after another inside one transaction. Most of what it
//! sends needs no answer before the next statement: the transaction's `BEGIN` and advisory
//! lock, each caller's `SAVEPOINT` and `RELEASE`, the writes a caller marks with
//! [`Conn::execute_later`], the batch's audit rows and its `COMMIT`. Those are queued and sent
//! together with the next statement whose answer is needed (a query, or an `execute` whose
//! row count the caller reads), all in one network write; the server runs them in order and
//! the answers come back together. That is one round trip where there were several.
//!
//! Every queued statement's outcome is still checked: the first failure among those sent
//! together is the result of the round trip, so a failed write surfaces at the caller's next
//! statement (or when the writer ends the caller's work), and the caller's savepoint is
//! rolled back as before. A failure of the writer's own statements (`BEGIN`, a savepoint)
//! breaks the whole batch: nothing of it is committed and every caller in it is answered
//! with the error.
//!
//! Round trips are counted: they are what a write costs on PostgreSQL beyond the server's
//! own work, and their number per request is fixed by the code (prepared statements aside:
//! the first use of a statement text on a connection prepares it, one round trip more).

use crate::conn::{Backend, Conn, Row, Value};
use crate::pg::{bind, column_value, map_err, rewrite_placeholders};
use grantry_domain::{Error, ErrorKind, Result};
use postgres::types::ToSql;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use tokio_postgres::{Client, NoTls, Statement};

/// Most prepared statements kept; emptied when full (as the readers' cache).
const STATEMENT_CACHE: usize = 512;

/// Who queued a statement: a caller's failure fails that caller; the writer's own failure
/// fails the batch.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owner {
    Writer,
    Caller,
}

enum Queued {
    /// Statements without parameters (simple query protocol; several may be joined by `;`).
    Simple(String),
    Execute(Statement, Vec<Value>),
}

/// The statement whose answer a round trip waits for, after everything queued.
enum Tail {
    None,
    Prepare(String),
    Query(Statement, Vec<Value>),
    Execute(Statement, Vec<Value>),
    Simple(String),
}

enum TailOut {
    None,
    Prepared(Statement),
    Rows(Vec<tokio_postgres::Row>),
    Count(u64),
}

/// A writer connection over tokio-postgres, driven by a runtime of its own (the writer
/// thread drives no other async work).
pub(crate) struct PgPipe {
    runtime: tokio::runtime::Runtime,
    client: Client,
    statements: HashMap<String, Statement>,
    queued: Vec<(Owner, Queued)>,
    /// The first failure of the writer's own queued statements since the batch began.
    broken: Option<Error>,
    round_trips: u64,
}

type Sent<'a> = Pin<Box<dyn Future<Output = std::result::Result<TailOut, tokio_postgres::Error>> + 'a>>;

impl PgPipe {
    pub(crate) fn connect(url: &str) -> Result<PgPipe> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the writer's database runtime: {e}")))?;
        let (client, connection) = runtime.block_on(tokio_postgres::connect(url, NoTls)).map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                "serviceNotAvailable",
                format!("cannot connect to PostgreSQL at {}: {}", crate::pg::redact(url), crate::pg::with_causes(&e)),
            )
        })?;
        runtime.spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "the writer's PostgreSQL connection ended");
            }
        });
        Ok(PgPipe { runtime, client, statements: HashMap::new(), queued: Vec::new(), broken: None, round_trips: 0 })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Round trips made so far.
    pub(crate) fn round_trips(&self) -> u64 {
        self.round_trips
    }

    /// Queues statements of the writer's own (no parameters), sent with the next round trip.
    pub(crate) fn queue_simple(&mut self, sql: &str) {
        self.queued.push((Owner::Writer, Queued::Simple(sql.to_string())));
    }

    /// Whether a caller's statements wait to be sent.
    pub(crate) fn callers_queued(&self) -> bool {
        self.queued.iter().any(|(owner, _)| *owner == Owner::Caller)
    }

    /// Forgets the caller's queued statements (its work failed before they were sent).
    pub(crate) fn drop_callers_queued(&mut self) {
        self.queued.retain(|(owner, _)| *owner == Owner::Writer);
    }

    /// The failure that broke the batch, if one did; clears it (a new batch begins clean).
    pub(crate) fn take_broken(&mut self) -> Option<Error> {
        self.broken.take()
    }

    /// Forgets everything queued (the transaction is being abandoned).
    pub(crate) fn discard_queued(&mut self) {
        self.queued.clear();
    }

    /// Sends everything queued and, after it, `sql` (statements without parameters); waits
    /// for all of it.
    pub(crate) fn simple_now(&mut self, sql: &str) -> Result<()> {
        self.round_trip(Tail::Simple(sql.to_string())).map(|_| ())
    }

    /// Sends everything queued; the first failure among it is the result.
    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.queued.is_empty() {
            return Ok(());
        }
        self.round_trip(Tail::None).map(|_| ())
    }

    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        // Preparing is a round trip; whatever is queued goes first (in order: the server
        // may be waiting for a queued rollback before it can parse anything).
        let statement = match self.round_trip(Tail::Prepare(rewrite_placeholders(sql)))? {
            TailOut::Prepared(statement) => statement,
            _ => return Err(Error::internal("preparing a statement returned no statement")),
        };
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Sends every queued statement and then `tail` in one pipeline, and waits for all
    /// their answers. A queued caller's failure is returned (the first one); a queued
    /// statement of the writer's own that fails also breaks the batch.
    fn round_trip(&mut self, tail: Tail) -> Result<TailOut> {
        let queued = std::mem::take(&mut self.queued);
        self.round_trips += 1;
        let client = &self.client;
        let mut owners = Vec::with_capacity(queued.len());
        let mut sent: Vec<Sent<'_>> = Vec::with_capacity(queued.len() + 1);
        for (owner, q) in &queued {
            owners.push(*owner);
            sent.push(match q {
                Queued::Simple(sql) => Box::pin(async move { client.batch_execute(sql).await.map(|()| TailOut::None) }),
                Queued::Execute(statement, values) => Box::pin(async move {
                    let bound = bind(values);
                    let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                    client.execute(statement, &refs).await.map(TailOut::Count)
                }),
            });
        }
        let has_tail = !matches!(tail, Tail::None);
        match &tail {
            Tail::None => {}
            Tail::Prepare(sql) => sent.push(Box::pin(async move { client.prepare(sql).await.map(TailOut::Prepared) })),
            Tail::Simple(sql) => {
                sent.push(Box::pin(async move { client.batch_execute(sql).await.map(|()| TailOut::None) }))
            }
            Tail::Execute(statement, values) => sent.push(Box::pin(async move {
                let bound = bind(values);
                let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                client.execute(statement, &refs).await.map(TailOut::Count)
            })),
            Tail::Query(statement, values) => sent.push(Box::pin(async move {
                let bound = bind(values);
                let refs: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                client.query(statement, &refs).await.map(TailOut::Rows)
            })),
        }
        let results = self.runtime.block_on(join_in_order(sent));
        let mut results = results.into_iter();
        let mut first_error: Option<Error> = None;
        for owner in owners {
            let Some(result) = results.next() else { break };
            if let Err(e) = result {
                let e = map_err(e);
                if owner == Owner::Writer && self.broken.is_none() {
                    self.broken = Some(e.clone());
                }
                first_error.get_or_insert(e);
            }
        }
        let tail_out = if has_tail { results.next() } else { None };
        if let Some(e) = first_error {
            return Err(e);
        }
        match tail_out {
            None => Ok(TailOut::None),
            Some(r) => r.map_err(map_err),
        }
    }
}

/// Polls every future in order until all are done, so each sends its request (on its first
/// poll) in the order given: tokio-postgres writes them to the server together and reads
/// the answers in the same order.
async fn join_in_order<'a>(mut futures: Vec<Sent<'a>>) -> Vec<std::result::Result<TailOut, tokio_postgres::Error>> {
    let mut done: Vec<Option<std::result::Result<TailOut, tokio_postgres::Error>>> =
        futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, slot) in futures.iter_mut().zip(done.iter_mut()) {
            if slot.is_some() {
                continue;
            }
            match future.as_mut().poll(cx) {
                Poll::Ready(out) => *slot = Some(out),
                Poll::Pending => pending = true,
            }
        }
        if pending { Poll::Pending } else { Poll::Ready(()) }
    })
    .await;
    done.into_iter().map(|r| r.expect("every future finished")).collect()
}

/// A [`Conn`] over the writer's pipelined connection, for one caller's work.
pub(crate) struct PipeConn<'a> {
    pub(crate) pipe: &'a mut PgPipe,
    /// Whether a statement of this work failed (the work may have gone on regardless).
    pub(crate) failed: bool,
}

impl PipeConn<'_> {
    fn noted<T>(&mut self, result: Result<T>) -> Result<T> {
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}

impl Conn for PipeConn<'_> {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let sent = self.pipe.statement(sql).and_then(|s| self.pipe.round_trip(Tail::Query(s, params.to_vec())));
        match self.noted(sent)? {
            TailOut::Rows(rows) => rows
                .iter()
                .map(|row| (0..row.len()).map(|i| column_value(row, i)).collect::<Result<Vec<_>>>().map(Row))
                .collect(),
            _ => Ok(Vec::new()),
        }
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let sent = self.pipe.statement(sql).and_then(|s| self.pipe.round_trip(Tail::Execute(s, params.to_vec())));
        match self.noted(sent)? {
            TailOut::Count(n) => Ok(n),
            _ => Ok(0),
        }
    }

    fn execute_later(&mut self, sql: &str, params: &[Value]) -> Result<()> {
        let statement = self.pipe.statement(sql);
        let statement = self.noted(statement)?;
        self.pipe.queued.push((Owner::Caller, Queued::Execute(statement, params.to_vec())));
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        let synced = self.pipe.sync();
        self.noted(synced)
    }
}
