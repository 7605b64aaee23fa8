//! PostgreSQL-only behaviour: several processes sharing one database, value binding. These
//! run when `GRANTRY_TEST_DATABASE_URL` names a PostgreSQL server and pass trivially
//! otherwise (`scripts/test` runs them against a throwaway server).

use crate::test_db::{PgDb, pg_server_url};
use crate::{Backend, Store, StoreOptions, Value, repo};

fn server() -> Option<String> {
    let url = pg_server_url();
    if url.is_none() {
        eprintln!("GRANTRY_TEST_DATABASE_URL is not set; skipping a PostgreSQL-only test");
    }
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_starting_together_migrate_once_and_their_writes_are_serialized() {
    let Some(server) = server() else { return };
    let db = PgDb::create(&server);
    // Four "servers" open the same empty database at once.
    let opened: Vec<Store> = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..4).map(|_| s.spawn(|| Store::open_postgres(&db.url, StoreOptions::default()))).collect();
        handles.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    let migrations = opened[0]
        .read(|c| c.query_one("SELECT COUNT(*) FROM schema_migrations", &[]).map(|r| r.map(|r| r.int(0))))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(migrations as usize, crate::migrate::POSTGRES.len());
    assert_eq!(opened[0].backend(), Backend::Postgres);

    // Read-modify-write from every server at once: none is lost, because write
    // transactions are serialized across processes as on SQLite.
    repo_put(&opened[0], "0").await;
    let mut tasks = Vec::new();
    for store in &opened {
        for _ in 0..25 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .write(|c| {
                        let n: i64 = repo::meta_get(c, "counter")?.and_then(|v| v.parse().ok()).unwrap_or(-1000);
                        repo::meta_put(c, "counter", &(n + 1).to_string())
                    })
                    .await
                    .unwrap()
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = opened[3].read(|c| repo::meta_get(c, "counter")).await.unwrap();
    assert_eq!(n.as_deref(), Some("100"));
    // A later start finds nothing to do.
    let db_url = db.url.clone();
    let again = std::thread::spawn(move || Store::migrate(&db_url)).join().unwrap().unwrap();
    assert!(again.is_empty());
    drop(opened);
}

async fn repo_put(store: &Store, value: &'static str) {
    store.write(move |c| repo::meta_put(c, "counter", value)).await.unwrap();
}

#[tokio::test]
async fn values_round_trip_and_null_binds_to_any_column() {
    let Some(server) = server() else { return };
    let db = PgDb::create(&server);
    let url = db.url.clone();
    let store = std::thread::spawn(move || Store::open(&url, StoreOptions::default())).join().unwrap().unwrap();
    store
        .write(|c| {
            c.execute(
                "INSERT INTO jobs (id, kind, entity_id, due_us, attempts, lease_until_us, last_error, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                &[
                    Value::from("j1"),
                    Value::from("k"),
                    Value::from("e"),
                    Value::Int(i64::MAX),
                    Value::from(true),
                    Value::Null,
                    Value::Null,
                    Value::from("{\"a\":\"it's ? here\"}"),
                ],
            )
        })
        .await
        .unwrap();
    let row = store
        .read(|c| {
            c.query_one(
                "SELECT due_us, attempts, lease_until_us, last_error, payload, 1, 2.5, SUM(attempts) OVER (), -12345678901.0 * 1000 \
                 FROM jobs WHERE id = ? AND payload LIKE '%?%'",
                &[Value::from("j1")],
            )
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.0,
        vec![
            Value::Int(i64::MAX),
            Value::Int(1),
            Value::Null,
            Value::Null,
            Value::from("{\"a\":\"it's ? here\"}"),
            Value::Int(1),
            Value::Real(2.5),
            Value::Int(1),
            Value::Real(-12_345_678_901_000.0),
        ]
    );
    // SQLite's json_extract exists for text properties of JSON bodies.
    let a = store
        .read(|c| c.query_one("SELECT json_extract(payload, '$.a'), json_extract(payload, '$.b') FROM jobs", &[]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.0, vec![Value::from("it's ? here"), Value::Null]);
    // Unique violations are conflicts that name the table.
    let e = store
        .write(|c| {
            c.execute(
                "INSERT INTO jobs (id, kind, entity_id, due_us, attempts, payload) VALUES ('j1', 'k', 'e', 0, 0, '{}')",
                &[],
            )
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind, grantry_domain::ErrorKind::Conflict);
    assert!(e.message.contains("jobs."), "{}", e.message);
}
