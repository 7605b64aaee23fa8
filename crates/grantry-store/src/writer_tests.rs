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
