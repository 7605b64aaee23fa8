//! Test databases: SQLite in a temporary directory, or, when `GRANTRY_TEST_DATABASE_URL`
//! names a PostgreSQL server, a fresh database on it (dropped at the end).

use crate::{Store, StoreOptions};

pub(crate) const TEST_DATABASE_ENV: &str = "GRANTRY_TEST_DATABASE_URL";

pub(crate) fn pg_server_url() -> Option<String> {
    std::env::var(TEST_DATABASE_ENV).ok().filter(|u| !u.trim().is_empty())
}

/// Runs `sql` on the server's maintenance database, off the async runtime.
fn admin(server_url: &str, sql: String) {
    let url = server_url.to_string();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect to the test server");
        client.batch_execute(&sql).expect("admin statement");
    })
    .join()
    .expect("admin thread");
}

/// A fresh PostgreSQL database, dropped with this value.
pub(crate) struct PgDb {
    server_url: String,
    name: String,
    pub url: String,
}

impl PgDb {
    pub fn create(server_url: &str) -> PgDb {
        let name = format!("grantry_store_test_{}", grantry_domain::ids::new_id().replace('-', ""));
        admin(server_url, format!("CREATE DATABASE {name}"));
        let base = server_url.split('?').next().unwrap_or(server_url);
        let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
        let host_end = base[scheme_end..].find('/').map(|i| scheme_end + i).unwrap_or(base.len());
        let url = format!("{}/{name}", &base[..host_end]);
        PgDb { server_url: server_url.to_string(), name, url }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        admin(&self.server_url, format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// Keeps a test's database alive.
pub(crate) enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] PgDb),
}

/// A store on the backend the tests run against.
pub(crate) fn open() -> (TestDb, Store) {
    match pg_server_url() {
        Some(server) => {
            let db = PgDb::create(&server);
            let store = Store::open_postgres(&db.url, StoreOptions::default()).unwrap();
            (TestDb::Postgres(db), store)
        }
        None => {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open_sqlite(&dir.path().join("t.db"), StoreOptions::default()).unwrap();
            (TestDb::Sqlite(dir), store)
        }
    }
}
