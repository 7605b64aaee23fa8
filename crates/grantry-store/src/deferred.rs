//! Rows the writer inserts at the end of its batch instead of one statement per row.
//!
//! Append-only records that nothing reads back inside the transaction that writes them (the
//! audit trail) are collected while a caller's work runs and inserted for every caller of a
//! group commit at once, in multi-row `INSERT`s just before `COMMIT`: one statement (one
//! round trip on PostgreSQL) for hundreds of rows. They are part of the same transaction as
//! the change that caused them, so they exist exactly when it does: the rows of a caller
//! whose work fails are dropped with its savepoint, and a batch whose insert fails is not
//! committed at all.
//!
//! Outside the writer's jobs (tools, migrations) [`push`] declines and the caller inserts
//! the row itself.

use crate::conn::{Conn, Value};
use grantry_domain::Result;
use std::cell::RefCell;

/// One deferred row: the table and column list, and the values.
struct Pending {
    into: &'static str,
    values: Vec<Value>,
}

thread_local! {
    /// `Some` while the writer runs a caller's work on this thread.
    static ROWS: RefCell<Option<Vec<Pending>>> = const { RefCell::new(None) };
}

/// Defers the insert of one row into `into` (`"table (col, col, …)"`, the same text for
/// every row of that table). Returns the values back when nothing is collecting rows on
/// this thread: the caller must insert them itself.
pub fn push(into: &'static str, values: Vec<Value>) -> std::result::Result<(), Vec<Value>> {
    ROWS.with(|rows| match rows.borrow_mut().as_mut() {
        Some(rows) => {
            rows.push(Pending { into, values });
            Ok(())
        }
        None => Err(values),
    })
}

/// How many rows are pending: a mark to [`truncate`] back to when the work since fails.
pub fn mark() -> usize {
    ROWS.with(|rows| rows.borrow().as_ref().map_or(0, Vec::len))
}

/// Drops the rows deferred since `mark` (the work that deferred them was rolled back).
pub fn truncate(mark: usize) {
    ROWS.with(|rows| {
        if let Some(rows) = rows.borrow_mut().as_mut() {
            rows.truncate(mark);
        }
    });
}

/// Starts collecting a caller's rows (the writer, before running its work).
pub(crate) fn begin() {
    ROWS.with(|rows| *rows.borrow_mut() = Some(Vec::new()));
}

/// Stops collecting and returns the caller's rows.
pub(crate) fn end() -> Vec<PendingRows> {
    ROWS.with(|rows| rows.borrow_mut().take().unwrap_or_default()).into_iter().map(PendingRows).collect()
}

/// A caller's deferred row, held by the writer until the batch is flushed.
pub(crate) struct PendingRows(Pending);

/// Most rows in one statement. Groups are split into power-of-two chunks (256, 128, …, 1),
/// so a table's inserts come in at most nine shapes, each prepared once and then cached.
const MAX_ROWS: usize = 256;

/// Inserts `rows` with as few statements as possible; returns how many it ran.
pub(crate) fn flush(c: &mut dyn Conn, rows: Vec<PendingRows>) -> Result<u64> {
    let mut statements = 0;
    let mut rows = rows.into_iter().map(|r| r.0).peekable();
    while let Some(first) = rows.next() {
        let width = first.values.len().max(1);
        let into = first.into;
        let mut group = vec![first];
        while let Some(next) = rows.peek() {
            if next.into != into || next.values.len() != width {
                break;
            }
            group.extend(rows.next());
        }
        let mut group = group.into_iter();
        let mut left = group.len();
        while left > 0 {
            let mut chunk = MAX_ROWS;
            while chunk > left {
                chunk /= 2;
            }
            let tuple = format!("({})", vec!["?"; width].join(", "));
            let sql = format!("INSERT INTO {into} VALUES {}", vec![tuple.as_str(); chunk].join(", "));
            let values: Vec<Value> = group.by_ref().take(chunk).flat_map(|p| p.values).collect();
            c.execute_later(&sql, &values)?;
            statements += 1;
            left -= chunk;
        }
    }
    Ok(statements)
}
