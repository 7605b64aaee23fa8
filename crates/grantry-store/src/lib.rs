//! Grantry's persistence.
//!
//! Use cases talk to the database through [`Conn`], a small executor for portable SQL
//! (`?` placeholders, integers for booleans and timestamps, JSON text bodies), so the same
//! repository code serves SQLite (embedded, the default) and PostgreSQL. On both, all writes
//! of a process go through one writer thread that commits many callers' work in one
//! transaction (group commit), each caller isolated by a savepoint; on PostgreSQL an
//! advisory lock serializes write transactions across processes. Reads run on a pool of
//! separate connections and never wait for the writer.

pub mod backup;
pub mod budget;
mod conn;
pub mod constraint;
pub mod copy;
pub mod deferred;
mod files;
pub mod migrate;
mod pg;
#[cfg(test)]
mod pg_tests;
mod pipe;
pub mod query;
pub mod records;
pub mod repo;
mod sqlite;
pub mod stats;
mod store;
#[cfg(test)]
mod test_db;
#[cfg(test)]
mod writer_tests;

pub use conn::{Backend, Conn, Row, Value};
pub use constraint::Constraint;
pub use files::permission_warnings;
pub use stats::WriterStats;
pub use store::{Location, Store, StoreOptions};
