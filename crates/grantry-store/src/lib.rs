//! Grantry's persistence.
//!
//! Use cases talk to the database through [`Conn`], a small executor for portable SQL
//! (`?` placeholders, integers for booleans and timestamps, JSON text bodies), so the same
//! repository code serves SQLite and, later, PostgreSQL. On SQLite all writes go through one
//! writer thread that commits many callers' work in one transaction (group commit), each
//! caller isolated by a savepoint; reads run on a pool of separate connections and never
//! wait for the writer.

mod conn;
pub mod migrate;
pub mod query;
pub mod records;
pub mod repo;
mod sqlite;
mod store;
#[cfg(test)]
mod writer_tests;

pub use conn::{Backend, Conn, Row, Value};
pub use store::{Store, StoreOptions};
