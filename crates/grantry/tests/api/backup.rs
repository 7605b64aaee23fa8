//! `grantry backup`: an online copy of the embedded database taken while writes run is
//! intact and holds every write acknowledged before it began; a server started on it
//! serves them (and accepts the tokens of the original, whose signing key it carries).
//!
//! Always on SQLite, whatever backend the suite runs on (the command refuses PostgreSQL,
//! whose backups are pg_dump's).

use crate::crash::bin;
use crate::helpers::{ALL_APP_ROLES, TestApp};
use grantry::config::{Config, Database};
use reqwest::StatusCode;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// A server on the SQLite database at `db`.
pub(crate) async fn sqlite_server(db: &Path) -> grantry::Server {
    grantry::start(Config::for_test(Database::Sqlite(db.to_path_buf()), db.with_file_name("keys")))
        .await
        .expect("server starts")
}

fn run_backup(db: &Path, out: &Path) -> std::process::Output {
    Command::new(bin())
        .arg("backup")
        .arg("--database")
        .arg(format!("sqlite:{}", db.display()))
        .arg("--out")
        .arg(out)
        .env("GRANTRY_LOG", "error")
        .output()
        .expect("grantry backup runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_while_writes_run_restores_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("grantry.db");
    let server = sqlite_server(&db).await;
    let mut app = TestApp {
        base: server.base_url.clone(),
        server: Some(server),
        client: reqwest::Client::new(),
        dir: tempfile::tempdir().unwrap(),
        admin: String::new(),
        pg: None,
    };
    app.admin = app.app_token(ALL_APP_ROLES);
    let app = Arc::new(app);

    // Writers create users until told to stop; each acknowledged id is recorded.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0usize);
    let count_tx = Arc::new(count_tx);
    let mut writers = Vec::new();
    for w in 0..8 {
        let (app, acked, stop, count) = (app.clone(), acked.clone(), stop_rx.clone(), count_tx.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !*stop.borrow() {
                i += 1;
                let name = format!("w{w}n{i}");
                let (status, body) = app
                    .post(
                        &app.admin,
                        "/v1.0/users",
                        json!({ "displayName": name, "userPrincipalName": format!("{name}@contoso.com") }),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
                let mut ids = acked.lock().unwrap();
                ids.push(body["id"].as_str().unwrap().to_string());
                count.send_replace(ids.len());
            }
        }));
    }
    count_rx.wait_for(|n| *n >= 100).await.unwrap();

    // Everything acknowledged up to now must be in the backup.
    let before: Vec<String> = acked.lock().unwrap().clone();
    let out: PathBuf = dir.path().join("backup.db");
    let (db2, out2) = (db.clone(), out.clone());
    let output = tokio::task::spawn_blocking(move || run_backup(&db2, &out2)).await.unwrap();
    let after_backup = acked.lock().unwrap().len();
    assert!(output.status.success(), "backup failed: {}", String::from_utf8_lossy(&output.stderr));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("integrity check ok"), "{report}");
    // More writes to prove they keep being acknowledged after the backup.
    count_rx.wait_for(|n| *n >= after_backup + 20).await.unwrap();
    stop_tx.send_replace(true);
    for w in writers {
        w.await.unwrap();
    }
    let all: Vec<String> = acked.lock().unwrap().clone();
    assert!(all.len() > before.len());

    // An existing file is never overwritten.
    let copy = std::fs::read(&out).unwrap();
    let (db2, out2) = (db.clone(), out.clone());
    let again = tokio::task::spawn_blocking(move || run_backup(&db2, &out2)).await.unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"), "{again:?}");
    assert_eq!(std::fs::read(&out).unwrap(), copy);

    // PostgreSQL is pointed at its own tools.
    let pg = Command::new(bin())
        .args(["backup", "--database", "postgres://grantry@127.0.0.1:1/grantry", "--out"])
        .arg(dir.path().join("pg.db"))
        .output()
        .unwrap();
    assert!(!pg.status.success());
    assert!(String::from_utf8_lossy(&pg.stderr).contains("pg_dump"), "{pg:?}");

    let app = Arc::into_inner(app).expect("writers are done");
    app.server.expect("running").stop().await;

    // The backup passes SQLite's integrity check.
    {
        let conn = rusqlite::Connection::open(&out).unwrap();
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }

    // Restore as docs/operations.md says: the backup becomes grantry.db of a data directory.
    let restored_dir = tempfile::tempdir().unwrap();
    let restored_db = restored_dir.path().join("grantry.db");
    std::fs::copy(&out, &restored_db).unwrap();
    // The signing keys are not in the database: they are restored from their own backup.
    let keys = restored_dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    for key in std::fs::read_dir(db.with_file_name("keys")).unwrap() {
        let key = key.unwrap().path();
        std::fs::copy(&key, keys.join(key.file_name().unwrap())).unwrap();
    }
    let restored = sqlite_server(&restored_db).await;
    let client = reqwest::Client::new();
    let get = |id: &str| client.get(format!("{}/v1.0/users/{id}", restored.base_url)).bearer_auth(&app.admin).send();
    for id in &before {
        let resp = get(id).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "user {id}, acknowledged before the backup, is in it");
    }
    // Nothing in the backup was invented: every user in it is one the writers created.
    let resp = client
        .get(format!("{}/v1.0/users?$top=999&$select=id", restored.base_url))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    let listed: Vec<String> =
        body["value"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()).collect();
    assert!(listed.iter().all(|id| all.contains(id)), "the backup holds only users the writers created");
    // The restored server takes writes.
    let resp = client
        .post(format!("{}/v1.0/users", restored.base_url))
        .bearer_auth(&app.admin)
        .json(&json!({ "displayName": "after", "userPrincipalName": "after@contoso.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    restored.stop().await;
}

/// Runs a PostgreSQL client tool (`pg_dump`, `pg_restore`) and insists it succeeds.
fn pg_tool(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// The PostgreSQL story of docs/operations.md: `pg_dump -Fc` while the server takes writes,
/// `pg_restore --no-owner` into an empty database, a server started on it with the key
/// directory restored beside it serves every write acknowledged before the dump began and
/// takes new ones. Runs when the suite runs on PostgreSQL (the SQLite story is above).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pg_dump_taken_while_writes_run_restores_every_acknowledged_write() {
    if !crate::helpers::on_postgres() {
        return;
    }
    let app = Arc::new(TestApp::spawn().await);
    let source = app.pg.as_ref().expect("on PostgreSQL").url.clone();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0usize);
    let count_tx = Arc::new(count_tx);
    let mut writers = Vec::new();
    for w in 0..4 {
        let (app, acked, stop, count) = (app.clone(), acked.clone(), stop_rx.clone(), count_tx.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !*stop.borrow() {
                i += 1;
                let name = format!("pg{w}n{i}");
                let (status, body) = app
                    .post(
                        &app.admin,
                        "/v1.0/users",
                        json!({ "displayName": name, "userPrincipalName": format!("{name}@contoso.com") }),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED, "{body}");
                let mut ids = acked.lock().unwrap();
                ids.push(body["id"].as_str().unwrap().to_string());
                count.send_replace(ids.len());
            }
        }));
    }
    count_rx.wait_for(|n| *n >= 50).await.unwrap();
    let before: Vec<String> = acked.lock().unwrap().clone();
    let dump = app.dir.path().join("grantry.dump");
    let (src, file) = (source.clone(), dump.to_string_lossy().into_owned());
    tokio::task::spawn_blocking(move || pg_tool("pg_dump", &["-Fc", "-d", &src, "-f", &file])).await.unwrap();
    let after_dump = acked.lock().unwrap().len();
    count_rx.wait_for(|n| *n >= after_dump + 10).await.unwrap();
    stop_tx.send_replace(true);
    for w in writers {
        w.await.unwrap();
    }
    let all: Vec<String> = acked.lock().unwrap().clone();

    // Restore into an empty database and start a server on it with the original's keys.
    let restored_db = crate::helpers::PgTestDatabase::create().expect("on PostgreSQL");
    let (target, file) = (restored_db.url.clone(), dump.to_string_lossy().into_owned());
    tokio::task::spawn_blocking(move || pg_tool("pg_restore", &["--no-owner", "-d", &target, &file])).await.unwrap();
    let restored =
        grantry::start(Config::for_test(Database::Postgres(restored_db.url.clone()), app.dir.path().join("keys")))
            .await
            .expect("a server starts on the restored database");
    let client = reqwest::Client::new();
    for id in &before {
        let resp =
            client.get(format!("{}/v1.0/users/{id}", restored.base_url)).bearer_auth(&app.admin).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "user {id}, acknowledged before the dump, is in it");
    }
    let resp = client
        .get(format!("{}/v1.0/users?$top=999&$select=id", restored.base_url))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    let listed: Vec<&str> = body["value"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert!(listed.iter().all(|id| all.iter().any(|a| a == id)), "the dump holds only users the writers created");
    let resp = client
        .post(format!("{}/v1.0/users", restored.base_url))
        .bearer_auth(&app.admin)
        .json(&json!({ "displayName": "after", "userPrincipalName": "after-restore@contoso.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    restored.stop().await;
}
