//! Tests of the group-committing writer: many callers in one transaction, each isolated.
//! They run on PostgreSQL when `GRANTRY_TEST_DATABASE_URL` is set (see `test_db`).

use crate::test_db::open;
use crate::{Store, Value, repo};
use grantry_domain::{Error, ErrorKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_all_commit_and_a_failing_one_is_rolled_back_alone() {
    let (_dir, store) = open();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(move |c| {
                    repo::meta_put(c, &format!("k{i}"), "v")?;
                    if i % 10 == 0 {
                        // Written, then the caller fails: its write must disappear.
                        repo::meta_put(c, &format!("bad{i}"), "v")?;
                        return Err(Error::bad_request("Nope", "refused"));
                    }
                    Ok(i)
                })
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(e.code, "Nope"),
        }
    }
    assert_eq!(ok, 180);
    let (kept, bad) = store
        .read(|c| Ok((repo::count(c, "meta", "key LIKE 'k%'", &[])?, repo::count(c, "meta", "key LIKE 'bad%'", &[])?)))
        .await
        .unwrap();
    assert_eq!((kept, bad), (180, 0));
}

#[tokio::test]
async fn constraint_violations_are_conflicts_and_panics_are_contained() {
    let (_dir, store) = open();
    let insert = |store: Store| async move {
        store
            .write(|c| {
                c.execute("INSERT INTO catalogs (id, display_name, state, catalog_type, unique_name, created_us, modified_us, body) VALUES ('c1', 'x', 'published', 'userManaged', NULL, 0, 0, '{}')", &[])
            })
            .await
    };
    insert(store.clone()).await.unwrap();
    let e = insert(store.clone()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);

    let e = store.write(|_c| -> grantry_domain::Result<()> { panic!("boom") }).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Internal);
    // The writer survives.
    store.write(|c| repo::meta_put(c, "after", "panic")).await.unwrap();
    let v = store.read(|c| repo::meta_get(c, "after")).await.unwrap();
    assert_eq!(v.as_deref(), Some("panic"));
    let n = store.read(|c| c.query("SELECT id FROM catalogs WHERE id = ?", &[Value::from("c1")])).await.unwrap();
    assert_eq!(n.len(), 1);
}

/// Under steady writes with reads running all the time, the WAL is still started over, so
/// it stays bounded and a start after an unclean stop has little of it to read back (the
/// test build starts it over past 256 frames instead of 16,384).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_under_steady_writes_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = Store::open_sqlite(&path, crate::StoreOptions::default()).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (store, stop) = (store.clone(), stop.clone());
        readers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                store.read(|c| repo::count(c, "meta", "key LIKE 'w%'", &[])).await.unwrap();
            }
        }));
    }
    let page = "x".repeat(3000);
    let mut largest = 0;
    // About 4,000 pages written: 16 times the test build's limit.
    for round in 0..100 {
        let mut writes = Vec::new();
        for i in 0..40 {
            let (store, page) = (store.clone(), page.clone());
            writes.push(tokio::spawn(async move {
                store.write(move |c| repo::meta_put(c, &format!("w{round}-{i}"), &page)).await
            }));
        }
        for w in writes {
            w.await.unwrap().unwrap();
        }
        largest = largest.max(std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len()));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.await.unwrap();
    }
    let frame = 4096 + 24;
    assert!(largest < 1200 * frame, "the WAL grew to {largest} bytes ({} frames)", largest / frame);
    assert_eq!(store.read(|c| repo::count(c, "meta", "key LIKE 'w%'", &[])).await.unwrap(), 4000);
}

/// Inserts a meta row without waiting for the database's answer.
fn put_later(c: &mut dyn crate::Conn, key: &str) -> grantry_domain::Result<()> {
    c.execute_later("INSERT INTO meta (key, value) VALUES (?, 'v')", &[Value::from(key)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_write_that_fails_fails_its_caller_alone() {
    let (_dir, store) = open();
    store.write(|c| put_later(c, "taken")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(move |c| {
                    put_later(c, &format!("mine{i}"))?;
                    match i % 3 {
                        // The duplicate is found only when the writer ends this work.
                        0 => put_later(c, "taken"),
                        // ... or at the next statement that waits for an answer.
                        1 => {
                            put_later(c, "taken")?;
                            c.query("SELECT key FROM meta WHERE key = ?", &[Value::from("x")]).map(|_| ())
                        }
                        _ => Ok(()),
                    }
                })
                .await
        }));
    }
    let mut failed = 0;
    for t in tasks {
        if let Err(e) = t.await.unwrap() {
            assert_eq!(e.kind, ErrorKind::Conflict, "{e:?}");
            failed += 1;
        }
    }
    assert_eq!(failed, 40);
    let kept = store.read(|c| repo::count(c, "meta", "key LIKE 'mine%'", &[])).await.unwrap();
    assert_eq!(kept, 20, "only the callers whose writes all succeeded kept theirs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_that_hides_a_failed_statement_is_rolled_back_alone() {
    let (_dir, store) = open();
    store.write(|c| put_later(c, "taken")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(move |c| {
                    put_later(c, &format!("mine{i}"))?;
                    if i % 2 == 0 {
                        // The failure is ignored; on PostgreSQL the transaction is now
                        // aborted, so the work cannot be kept.
                        let _ = c.execute("INSERT INTO meta (key, value) VALUES ('taken', 'v')", &[]);
                    }
                    Ok(())
                })
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    let kept = store.read(|c| repo::count(c, "meta", "key LIKE 'mine%'", &[])).await.unwrap();
    assert_eq!(kept, ok, "every caller answered with success kept its write, and no other");
    assert!(ok >= 10);
}

#[tokio::test]
async fn deferred_writes_ride_with_the_next_statement_on_postgresql() {
    let (_dir, store) = open();
    // Prepare the statements once: a statement text's first use on a connection is a
    // round trip of its own.
    let work = |c: &mut dyn crate::Conn, n: usize| -> grantry_domain::Result<i64> {
        for k in 0..n {
            put_later(c, &format!("k{n}-{k}"))?;
        }
        let row = c.query_one("SELECT COUNT(*) FROM meta", &[])?;
        for k in 0..n {
            put_later(c, &format!("after{n}-{k}"))?;
        }
        Ok(row.map(|r| r.int(0)).transpose()?.unwrap_or(0))
    };
    store.write(move |c| work(c, 1)).await.unwrap();
    let (seen, cost) = crate::stats::counted(store.write(move |c| work(c, 5))).await;
    assert_eq!(seen.unwrap(), 2 + 5);
    assert_eq!(cost.write_statements, 11 + 2);
    let expected = match store.backend() {
        // The query (with the five inserts before it), then the five after it when the
        // writer ends the work; BEGIN, the savepoint, the release and COMMIT ride along.
        crate::Backend::Postgres => 2,
        crate::Backend::Sqlite => 0,
    };
    assert_eq!(cost.write_round_trips, expected);
    let before = store.writer_stats();
    store.write(move |c| work(c, 3)).await.unwrap();
    let batch = store.writer_stats().since(&before);
    // The same two, and the commit.
    assert_eq!(batch.round_trips, if expected == 0 { 0 } else { expected + 1 });
}
