//! Crash safety: the real `grantry` binary under concurrent load is killed with SIGKILL at
//! a random moment, restarted on the same data directory, and checked: every write it
//! acknowledged is there unchanged, nothing is half-written, and work that was pending
//! at the kill runs exactly once after the restart.
//!
//! Runs on SQLite (a temporary data directory) or, when the suite runs on PostgreSQL
//! (`GRANTRY_TEST_DATABASE_URL`), on a fresh PostgreSQL database of its own; the checks read
//! the database directly either way (see [`Db`]).
//!
//! Bounded: `GRANTRY_CRASH_ROUNDS` rounds (default 5), each a few seconds at most; the
//! seed is printed and `GRANTRY_CRASH_SEED` replays it. Loopback only.

use crate::helpers::{PgTestDatabase, on_postgres};
use crate::invariants;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

const EM: &str = "identityGovernance/entitlementManagement";
const SUBJECT_SCOPES: &str = "EntitlementMgmt-SubjectAccess.ReadWrite";
const ADMIN_ROLES: &str = "EntitlementManagement.ReadWrite.All,User.ReadWrite.All,Group.ReadWrite.All,GroupMember.ReadWrite.All,RoleManagement.ReadWrite.Directory,Directory.ReadWrite.All";
const WORKERS: usize = 16;

/// A small deterministic generator (splitmix64): the seed replays a run.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The seed from `var`, or one from the time; printed so a failure can be replayed.
pub fn seed_from(var: &str) -> u64 {
    std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        #[allow(clippy::disallowed_methods)]
        let t = chrono::Utc::now().timestamp_micros() as u64;
        t
    })
}

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_grantry")
}

/// Mints a token with the `grantry token` command, on the test's database.
fn token(db: &Db, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("token")
        .args(db.args())
        .args(args)
        .args(["--expires-in", "4h"])
        .env("GRANTRY_LOG", "error")
        .output()
        .expect("grantry token runs");
    assert!(out.status.success(), "grantry token failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("token is text").trim().to_string()
}

/// A `grantry serve` child process on a loopback port chosen by the system.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Server {
    fn start(db: &Db) -> Server {
        let args = db.args();
        Server::start_with(&args.iter().map(OsString::as_os_str).collect::<Vec<_>>())
    }

    /// Starts `grantry serve` with the development clock and `args` (e.g. the database).
    pub(crate) fn start_with(args: &[&OsStr]) -> Server {
        let mut child = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--dev-clock", "--log-format", "json"])
            .args(args)
            .env("GRANTRY_LOG", "info")
            .env_remove("GRANTRY_CONFIG")
            .env_remove("GRANTRY_DATABASE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("grantry serve starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // Reads the log until the process ends: the "listening" line gives the address;
        // the rest is drained so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(t) = &tx
                    && let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["fields"]["message"] == "grantry is listening"
                {
                    let _ = t.send(v["fields"]["address"].as_str().unwrap_or_default().to_string());
                    tx = None;
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("grantry serve did not report its address within 30 s");
            }
        };
        Server { child, base: format!("http://{addr}") }
    }

    /// SIGKILL: no shutdown code runs.
    pub(crate) fn kill(mut self) {
        self.child.kill().expect("kill the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), reqwest::Error> {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
    async fn post(&self, token: &str, path: &str, body: Value) -> Result<(StatusCode, Value), reqwest::Error> {
        self.call(reqwest::Method::POST, token, path, Some(&body)).await
    }
    /// A POST with `client-request-id`; also says whether the answer was a replay.
    async fn post_keyed(
        &self,
        token: &str,
        path: &str,
        crid: &str,
        body: &Value,
    ) -> Result<(StatusCode, Value, bool), reqwest::Error> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("client-request-id", crid)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = resp.status();
        let replayed = resp.headers().get("grantry-idempotent-replay").is_some();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null), replayed))
    }
    async fn get(&self, token: &str, path: &str) -> Result<(StatusCode, Value), reqwest::Error> {
        self.call(reqwest::Method::GET, token, path, None).await
    }
    /// A call that must succeed with `expected` (set-up and checks, not the load).
    async fn must(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<Value>,
        expected: StatusCode,
    ) -> Value {
        let (status, v) = self.call(method, token, path, body.as_ref()).await.expect("server answers");
        assert_eq!(status, expected, "{path}: {v}");
        v
    }
}

/// What the catalog set-up made.
struct World {
    admin: String,
    package_id: String,
    group_id: String,
    admin_policy: String,
    approval_policy: String,
    approver_token: String,
    /// Users that only receive access.
    pool: Vec<String>,
    /// Users that ask for access themselves: (id, token).
    requesters: Vec<(String, String)>,
}

async fn seed_world(db: &Db, client: &Client, admin: String) -> World {
    use reqwest::Method as M;
    let created = StatusCode::CREATED;
    let mut users = Vec::new();
    for i in 0..72 {
        let v = client
            .must(M::POST, &admin, "/v1.0/users", Some(json!({"displayName": format!("u{i}"), "userPrincipalName": format!("u{i}@contoso.com"), "mail": format!("u{i}@contoso.com")})), created)
            .await;
        users.push(v["id"].as_str().expect("user id").to_string());
    }
    let group = client
        .must(
            M::POST,
            &admin,
            "/v1.0/groups",
            Some(
                json!({"displayName": "Crash", "mailNickname": "crash", "mailEnabled": false, "securityEnabled": true}),
            ),
            created,
        )
        .await["id"]
        .as_str()
        .expect("group id")
        .to_string();
    let catalog = client
        .must(M::POST, &admin, &format!("/v1.0/{EM}/catalogs"), Some(json!({"displayName": "Crash catalog"})), created)
        .await["id"]
        .as_str()
        .expect("catalog id")
        .to_string();
    client
        .must(
            M::POST,
            &admin,
            &format!("/v1.0/{EM}/resourceRequests"),
            Some(json!({"requestType": "adminAdd", "resource": {"originId": group, "originSystem": "AadGroup"}, "catalog": {"id": catalog}})),
            created,
        )
        .await;
    let resources =
        client.must(M::GET, &admin, &format!("/v1.0/{EM}/catalogs/{catalog}/resources"), None, StatusCode::OK).await;
    let resource = resources["value"][0]["id"].as_str().expect("resource id").to_string();
    let package = client
        .must(
            M::POST,
            &admin,
            &format!("/v1.0/{EM}/accessPackages"),
            Some(json!({"displayName": "Crash access", "catalog": {"id": catalog}})),
            created,
        )
        .await["id"]
        .as_str()
        .expect("package id")
        .to_string();
    client
        .must(
            M::POST,
            &admin,
            &format!("/v1.0/{EM}/accessPackages/{package}/resourceRoleScopes"),
            Some(json!({
                "role": {"originId": format!("Member_{group}"), "originSystem": "AadGroup", "resource": {"id": resource}},
                "scope": {"originId": group, "originSystem": "AadGroup"}
            })),
            created,
        )
        .await;
    let approver = users[0].clone();
    let admin_policy = client
        .must(
            M::POST,
            &admin,
            &format!("/v1.0/{EM}/assignmentPolicies"),
            Some(json!({"displayName": "Direct", "description": "admins assign", "allowedTargetScope": "notSpecified",
                        "expiration": {"type": "noExpiration"}, "accessPackage": {"id": package}})),
            created,
        )
        .await["id"]
        .as_str()
        .expect("policy id")
        .to_string();
    let approval_policy = client
        .must(
            M::POST,
            &admin,
            &format!("/v1.0/{EM}/assignmentPolicies"),
            Some(json!({"displayName": "Ask", "description": "one approval stage", "allowedTargetScope": "allMemberUsers",
                        "expiration": {"type": "noExpiration"},
                        "requestorSettings": {"enableTargetsToSelfAddAccess": true, "enableTargetsToSelfRemoveAccess": true},
                        "requestApprovalSettings": {"isApprovalRequiredForAdd": true, "isApprovalRequiredForUpdate": false, "stages": [
                            {"durationBeforeAutomaticDenial": "P14D", "isApproverJustificationRequired": false, "isEscalationEnabled": false,
                             "primaryApprovers": [{"@odata.type": "#microsoft.graph.singleUser", "userId": approver}]}]},
                        "accessPackage": {"id": package}})),
            created,
        )
        .await["id"]
        .as_str()
        .expect("policy id")
        .to_string();
    let approver_token = token(db, &["--user", &approver, "--scopes", SUBJECT_SCOPES]);
    let requesters =
        users[1..11].iter().map(|u| (u.clone(), token(db, &["--user", u, "--scopes", SUBJECT_SCOPES]))).collect();
    World {
        admin,
        package_id: package,
        group_id: group,
        admin_policy,
        approval_policy,
        approver_token,
        pool: users[11..].to_vec(),
        requesters,
    }
}

/// A request the server acknowledged with 201.
#[derive(Debug, Clone)]
struct Acked {
    id: String,
    request_type: String,
    target_user: String,
    created: String,
}

#[derive(Default)]
struct Tally {
    acked: Vec<Acked>,
    /// Requests whose approval was acknowledged (204).
    approved: Vec<String>,
    statuses: BTreeMap<u16, usize>,
    server_errors: Vec<String>,
    /// An adminAdd (client-request-id, body) that had no answer when the server died.
    unanswered: Option<(String, Value)>,
}

async fn worker(client: Client, world: Arc<World>, mut rng: Rng, stop: Arc<AtomicBool>, deadline: Instant) -> Tally {
    let mut t = Tally::default();
    let reqs = format!("/v1.0/{EM}/assignmentRequests");
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let pick = rng.below(100);
        let outcome = if pick < 40 {
            // Sent with a client-request-id: if the kill cuts it off, it is retried after
            // the restart and must not create a second request.
            let user = world.pool[rng.below(world.pool.len())].clone();
            let body = json!({"requestType": "adminAdd", "assignment": {"targetId": user, "assignmentPolicyId": world.admin_policy, "accessPackageId": world.package_id}});
            let crid = format!("crash-{:016x}", rng.next_u64());
            match client.post_keyed(&world.admin, &reqs, &crid, &body).await {
                Ok((s, v, _)) => Ok(((s, v), Some(user))),
                Err(e) => {
                    t.unanswered = Some((crid, body));
                    Err(e)
                }
            }
        } else if pick < 65 {
            let (user, token) = world.requesters[rng.below(world.requesters.len())].clone();
            let body = json!({"requestType": "userAdd", "assignment": {"accessPackageId": world.package_id, "assignmentPolicyId": world.approval_policy}, "justification": "crash test"});
            client.post(&token, &reqs, body).await.map(|r| (r, Some(user)))
        } else if pick < 85 {
            let list = format!("/v1.0/{EM}/accessPackageAssignmentApprovals/filterByCurrentUser(on='approver')");
            match client.get(&world.approver_token, &list).await {
                Err(e) => Err(e),
                Ok((_, v)) => {
                    let items = v["value"].as_array().cloned().unwrap_or_default();
                    if items.is_empty() {
                        continue;
                    }
                    let a = &items[rng.below(items.len())];
                    let (id, sid) =
                        (a["id"].as_str().unwrap_or_default(), a["stages"][0]["id"].as_str().unwrap_or_default());
                    let path = format!("/v1.0/{EM}/accessPackageAssignmentApprovals/{id}/stages/{sid}");
                    let r = client
                        .call(
                            reqwest::Method::PATCH,
                            &world.approver_token,
                            &path,
                            Some(&json!({"reviewResult": "Approve", "justification": "ok"})),
                        )
                        .await;
                    if let Ok((StatusCode::NO_CONTENT, _)) = &r {
                        t.approved.push(id.to_string());
                    }
                    r.map(|r| (r, None))
                }
            }
        } else {
            let list = format!("/v1.0/{EM}/assignments?$filter=state eq 'delivered'&$top=20");
            match client.get(&world.admin, &list).await {
                Err(e) => Err(e),
                Ok((_, v)) => {
                    let items = v["value"].as_array().cloned().unwrap_or_default();
                    if items.is_empty() {
                        continue;
                    }
                    let a = &items[rng.below(items.len())];
                    let body = json!({"requestType": "adminRemove", "assignment": {"id": a["id"]}});
                    client.post(&world.admin, &reqs, body).await.map(|r| (r, None))
                }
            }
        };
        match outcome {
            // The server is gone (killed): this worker's round is over.
            Err(_) => break,
            Ok(((status, body), target)) => {
                *t.statuses.entry(status.as_u16()).or_default() += 1;
                if status.is_server_error() {
                    t.server_errors.push(format!("{status}: {body}"));
                }
                if status == StatusCode::CREATED {
                    let target_user = target.unwrap_or_default();
                    t.acked.push(Acked {
                        id: body["id"].as_str().unwrap_or_default().to_string(),
                        request_type: body["requestType"].as_str().unwrap_or_default().to_string(),
                        target_user,
                        created: body["createdDateTime"].as_str().unwrap_or_default().to_string(),
                    });
                }
            }
        }
    }
    t
}

/// The database the servers run on, read directly (not through the API) by the checks.
enum Db {
    /// SQLite: the data directory (the database is the file `grantry.db` in it).
    Sqlite(PathBuf),
    /// PostgreSQL: the database URL, a connection to it, and the signing key directory
    /// the servers and `grantry token` share.
    Postgres(String, PgConn, PathBuf),
}

/// A nullable text value of a row.
type Text = Option<String>;

impl Db {
    /// The `grantry serve` / `grantry token` options that select this database.
    fn args(&self) -> Vec<OsString> {
        match self {
            Db::Sqlite(dir) => vec!["--data-dir".into(), dir.into()],
            Db::Postgres(url, _, keys) => vec!["--database".into(), url.into(), "--key-dir".into(), keys.into()],
        }
    }

    /// The single integer of a counting query (no parameters).
    fn count(&self, sql: &str) -> i64 {
        self.count_with(sql, None)
    }

    /// The single integer of a counting query with at most one `?` parameter.
    fn count_with(&self, sql: &str, param: Option<&str>) -> i64 {
        match self {
            Db::Sqlite(dir) => {
                let c = open_ro(dir);
                let params: Vec<&str> = param.into_iter().collect();
                c.query_row(sql, rusqlite::params_from_iter(params), |r| r.get::<_, i64>(0))
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
            Db::Postgres(_, pg, _) => {
                let (q, param) = (pg_sql(sql), param.map(str::to_string));
                pg.run(move |c| {
                    let params: Vec<&(dyn postgres::types::ToSql + Sync)> =
                        param.iter().map(|p| p as &(dyn postgres::types::ToSql + Sync)).collect();
                    c.query_one(&q, &params)?.try_get::<_, i64>(0)
                })
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        }
    }

    /// The rows of a query whose columns are all text (or NULL), with at most one `?`
    /// parameter.
    fn texts(&self, sql: &str, param: Option<&str>) -> Vec<Vec<Text>> {
        match self {
            Db::Sqlite(dir) => {
                let c = open_ro(dir);
                let params: Vec<&str> = param.into_iter().collect();
                let mut stmt = c.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let n = stmt.column_count();
                stmt.query_map(rusqlite::params_from_iter(params), |r| (0..n).map(|i| r.get::<_, Text>(i)).collect())
                    .and_then(|rows| rows.collect::<Result<Vec<Vec<Text>>, _>>())
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
            Db::Postgres(_, pg, _) => {
                let (q, param) = (pg_sql(sql), param.map(str::to_string));
                pg.run(move |c| {
                    let params: Vec<&(dyn postgres::types::ToSql + Sync)> =
                        param.iter().map(|p| p as &(dyn postgres::types::ToSql + Sync)).collect();
                    c.query(&q, &params)?
                        .iter()
                        .map(|r| (0..r.len()).map(|i| r.try_get::<_, Text>(i)).collect())
                        .collect::<Result<Vec<Vec<Text>>, _>>()
                })
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
            }
        }
    }

    /// The first row of [`Db::texts`], if any.
    fn row(&self, sql: &str, param: &str) -> Option<Vec<Text>> {
        self.texts(sql, Some(param)).into_iter().next()
    }

    /// Integrity and every invariant, read directly from the database.
    fn check(&self, context: &str) {
        match self {
            Db::Sqlite(dir) => {
                let c = open_ro(dir);
                let integrity: String =
                    c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
                assert_eq!(integrity, "ok", "{context}: PRAGMA integrity_check");
            }
            // PostgreSQL has no `PRAGMA integrity_check` (its own WAL recovery makes a crash
            // safe); in its place every table must still be readable in full: a
            // `SELECT count(*)` of each succeeds. The invariants below apply to both.
            Db::Postgres(..) => {
                let tables = self.texts("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()", None);
                assert!(!tables.is_empty(), "{context}: no tables in the PostgreSQL database");
                for t in tables.into_iter().filter_map(|r| r.into_iter().next().flatten()) {
                    self.count(&format!("SELECT count(*) FROM \"{t}\""));
                }
            }
        }
        let broken = invariants::violations(|sql| self.count(sql));
        assert!(broken.is_empty(), "{context}: invariants broken: {broken:#?}");
    }
}

fn open_ro(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(dir.join("grantry.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the database read-only")
}

/// `?` placeholders as PostgreSQL's `$1` (the queries here take at most one).
fn pg_sql(sql: &str) -> String {
    sql.replacen('?', "$1", 1)
}

type PgJob = Box<dyn FnOnce(&mut postgres::Client) + Send>;

/// One synchronous PostgreSQL connection on a thread of its own (the synchronous client
/// must not run on the test's async runtime); queries are sent to it and waited for.
struct PgConn {
    jobs: Option<mpsc::Sender<PgJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PgConn {
    fn connect(url: &str) -> PgConn {
        let url = url.to_string();
        let (jobs, rx) = mpsc::channel::<PgJob>();
        let (ready_tx, ready) = mpsc::channel::<Result<(), String>>();
        let thread = std::thread::spawn(move || {
            let mut client = match postgres::Client::connect(&url, postgres::NoTls) {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            for job in rx {
                job(&mut client);
            }
        });
        match ready.recv() {
            Ok(Ok(())) => PgConn { jobs: Some(jobs), thread: Some(thread) },
            Ok(Err(e)) => panic!("cannot connect to the test database: {e}"),
            Err(_) => panic!("the PostgreSQL connection thread ended"),
        }
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = mpsc::channel();
        let job: PgJob = Box::new(move |c| {
            let _ = tx.send(f(c).map_err(|e| e.to_string()));
        });
        self.jobs.as_ref().expect("connection open").send(job).map_err(|_| "the PostgreSQL thread ended")?;
        rx.recv().map_err(|_| "the PostgreSQL thread ended".to_string())?
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug, Default)]
struct Report {
    rounds: usize,
    kills: usize,
    acknowledged: usize,
    approvals_acknowledged: usize,
    pending_at_kill: usize,
    /// Keyed POSTs cut off by the kill and resent after the restart.
    retried_after_kill: usize,
    /// Of those, the ones that had committed before the kill (answered by a replay).
    retried_replayed: usize,
    lost_writes: usize,
    duplicate_grants: usize,
    server_errors: usize,
    statuses: BTreeMap<u16, usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_and_pending_work_runs_once() {
    let rounds: usize = std::env::var("GRANTRY_CRASH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let seed = seed_from("GRANTRY_CRASH_SEED");
    println!("crash test: seed {seed} (GRANTRY_CRASH_SEED={seed} replays it), {rounds} rounds");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    // Declared before `db`: the database is dropped after the connection to it is closed.
    let pg = if on_postgres() { PgTestDatabase::create() } else { None };
    let db = match &pg {
        Some(p) => Db::Postgres(p.url.clone(), PgConn::connect(&p.url), dir.path().join("keys")),
        None => Db::Sqlite(dir.path().to_path_buf()),
    };
    println!("crash test: on {}", if pg.is_some() { "PostgreSQL" } else { "SQLite" });
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
    let mut server = Server::start(&db);
    // After the start: `grantry token` uses the database the server created.
    let admin = token(&db, &["--app", "crash-admin", "--roles", ADMIN_ROLES]);
    let mut client = Client { http: http.clone(), base: server.base.clone() };
    let world = Arc::new(seed_world(&db, &client, admin).await);
    let mut all_acked: HashMap<String, Acked> = HashMap::new();
    let mut all_approved: Vec<String> = Vec::new();
    let mut report = Report::default();
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + Duration::from_secs(10);
        let tasks: Vec<_> = (0..WORKERS)
            .map(|_| {
                let r = Rng::new(rng.next_u64());
                tokio::spawn(worker(client.clone(), world.clone(), r, stop.clone(), deadline))
            })
            .collect();
        // Let the load run for a random while, then kill the server mid-flight.
        let kill_after = Duration::from_millis(300 + rng.below(1700) as u64);
        tokio::time::sleep(kill_after).await;
        server.kill();
        report.kills += 1;
        stop.store(true, Ordering::SeqCst);
        let mut round_acked = 0;
        let mut unanswered = Vec::new();
        for t in tasks {
            let t = t.await.expect("worker ends");
            round_acked += t.acked.len();
            report.approvals_acknowledged += t.approved.len();
            report.server_errors += t.server_errors.len();
            assert!(t.server_errors.is_empty(), "round {round} (seed {seed}): 5xx answers: {:?}", t.server_errors);
            for (s, n) in t.statuses {
                *report.statuses.entry(s).or_default() += n;
            }
            for a in t.acked {
                all_acked.insert(a.id.clone(), a);
            }
            all_approved.extend(t.approved);
            unanswered.extend(t.unanswered);
        }
        report.acknowledged += round_acked;

        // The database as the kill left it: intact and consistent before any recovery code.
        db.check(&format!("round {round} (seed {seed}) after SIGKILL"));
        let pending: Vec<String> = db
            .texts("SELECT id FROM requests WHERE state = 'submitted'", None)
            .into_iter()
            .map(|r| r.into_iter().next().flatten().expect("request id"))
            .collect();
        report.pending_at_kill += pending.len();
        // Which of the cut-off keyed POSTs committed before the kill (and with which id).
        let committed: HashMap<String, String> = unanswered
            .iter()
            .filter_map(|(crid, _)| {
                db.row("SELECT response FROM idempotency_keys WHERE client_request_id = ?", crid)
                    .and_then(|r| r.into_iter().next().flatten())
                    .map(|body| {
                        let v: Value = serde_json::from_str(&body).expect("stored response is JSON");
                        (crid.clone(), v["id"].as_str().unwrap_or_default().to_string())
                    })
            })
            .collect();

        server = Server::start(&db);
        client = Client { http: http.clone(), base: server.base.clone() };
        // The client retries what got no answer: a committed one is replayed with its id,
        // an uncommitted one is made now (or refused); never both.
        let reqs = format!("/v1.0/{EM}/assignmentRequests");
        for (crid, body) in &unanswered {
            let (status, got, replayed) =
                client.post_keyed(&world.admin, &reqs, crid, body).await.expect("server answers");
            assert!(!status.is_server_error(), "round {round}: retry of {crid}: {status} {got}");
            report.retried_after_kill += 1;
            match committed.get(crid) {
                Some(id) => {
                    assert!(
                        replayed && status == StatusCode::CREATED,
                        "round {round}: committed {crid} must be replayed: {status} {got}"
                    );
                    assert_eq!(
                        got["id"].as_str(),
                        Some(id.as_str()),
                        "round {round}: replay of {crid} names another request"
                    );
                    report.retried_replayed += 1;
                }
                None => assert!(!replayed, "round {round}: {crid} did not commit, yet was replayed: {got}"),
            }
            if status == StatusCode::CREATED {
                let id = got["id"].as_str().unwrap_or_default().to_string();
                let target_user = body["assignment"]["targetId"].as_str().unwrap_or_default().to_string();
                let (request_type, created) = (
                    got["requestType"].as_str().unwrap_or_default().to_string(),
                    got["createdDateTime"].as_str().unwrap_or_default().to_string(),
                );
                all_acked.insert(id.clone(), Acked { id, request_type, target_user, created });
            }
        }
        // Every acknowledged request is there, as acknowledged.
        for a in all_acked.values() {
            let (status, got) = client
                .get(&world.admin, &format!("/v1.0/{EM}/assignmentRequests/{}", a.id))
                .await
                .expect("server answers");
            let same = status == StatusCode::OK
                && got["requestType"] == a.request_type.as_str()
                && got["createdDateTime"] == a.created.as_str();
            let row = db.row(
                "SELECT r.request_type, r.access_package_id, s.object_id FROM requests r LEFT JOIN subjects s ON s.id = r.target_subject_id WHERE r.id = ?",
                &a.id,
            );
            let stored_same = row.as_deref().is_some_and(|r| match r {
                [Some(t), Some(p), target] => {
                    t == &a.request_type
                        && p == &world.package_id
                        && (a.target_user.is_empty() || target.as_deref() == Some(a.target_user.as_str()))
                }
                _ => false,
            });
            if !(same && stored_same) {
                report.lost_writes += 1;
                panic!(
                    "round {round} (seed {seed}): acknowledged request {a:?} is lost or changed: {status} {got} / {row:?}"
                );
            }
        }
        // Acknowledged approvals are not undone.
        for id in &all_approved {
            let state = db
                .row("SELECT state FROM requests WHERE id = ?", id)
                .and_then(|r| r.into_iter().next().flatten())
                .expect("approved request exists");
            if state == "pendingApproval" || state == "submitted" {
                report.lost_writes += 1;
                panic!("round {round} (seed {seed}): approval of {id} was acknowledged but the request is {state}");
            }
        }
        // Work pending at the kill runs once after the restart.
        let (status, body) =
            client.post(&world.admin, "/_grantry/clock/advance", json!({"duration": "PT0S"})).await.expect("advance");
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            db.count("SELECT COUNT(*) FROM requests WHERE state = 'submitted'"),
            0,
            "round {round}: submitted requests remain after the restart drained"
        );
        for id in &pending {
            let state = db
                .row("SELECT state FROM requests WHERE id = ?", id)
                .and_then(|r| r.into_iter().next().flatten())
                .expect("pending request exists");
            let delivered = db.count_with(
                "SELECT COUNT(*) FROM audit_events e WHERE e.entity_id = ? AND e.action = 'delivered'",
                Some(id),
            );
            assert_ne!(state, "submitted", "round {round}: request {id} pending at the kill was not processed");
            assert!(delivered <= 1, "round {round}: request {id} was delivered {delivered} times");
        }
        let duplicates = db.count(
            "SELECT COUNT(*) FROM (SELECT target_subject_id FROM assignments WHERE active = 1 GROUP BY target_subject_id, access_package_id HAVING COUNT(*) > 1) x",
        ) + db.count("SELECT COUNT(*) FROM group_links WHERE granted > 1");
        report.duplicate_grants += duplicates as usize;
        db.check(&format!("round {round} (seed {seed}) after restart"));
        let members = db.count(&format!("SELECT COUNT(*) FROM group_links WHERE group_id = '{}'", world.group_id));
        println!(
            "round {round}: killed after {} ms, {round_acked} requests acknowledged, {} pending at the kill, {members} members now",
            kill_after.as_millis(),
            pending.len()
        );
        report.rounds += 1;
    }
    server.kill();
    println!("crash test result (seed {seed}): {report:?}");
    assert_eq!(report.lost_writes, 0);
    assert_eq!(report.duplicate_grants, 0);
    assert_eq!(report.server_errors, 0);
    assert!(report.acknowledged > 0, "the load acknowledged nothing: {report:?}");
}

/// A review run of every pool user's assignment ends (default decision Deny, auto-apply) and
/// the server is killed with SIGKILL while it applies the decisions: after the restart each
/// denied assignment is removed exactly once (one `systemRemove` request, one "access has
/// ended" mail), approved access stays, and the run is `Applied`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_ending_under_sigkill_removes_denied_access_once() {
    use reqwest::Method as M;
    let seed = seed_from("GRANTRY_CRASH_SEED");
    println!("review crash test: seed {seed} (GRANTRY_CRASH_SEED={seed} replays it)");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let pg = if on_postgres() { PgTestDatabase::create() } else { None };
    let db = match &pg {
        Some(p) => Db::Postgres(p.url.clone(), PgConn::connect(&p.url), dir.path().join("keys")),
        None => Db::Sqlite(dir.path().to_path_buf()),
    };
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
    let server = Server::start(&db);
    let admin = token(&db, &["--app", "crash-admin", "--roles", ADMIN_ROLES]);
    let client = Client { http: http.clone(), base: server.base.clone() };
    let world = seed_world(&db, &client, admin).await;
    let (_, clock) = client.get(&world.admin, "/_grantry/clock").await.expect("clock");
    let now: chrono::DateTime<chrono::Utc> = clock["now"].as_str().expect("now").parse().expect("a time");
    let start = now + chrono::Duration::minutes(1);
    let policy = client
        .must(
            M::POST,
            &world.admin,
            &format!("/v1.0/{EM}/assignmentPolicies"),
            Some(json!({"displayName": "Reviewed", "allowedTargetScope": "notSpecified",
                "expiration": {"type": "noExpiration"}, "accessPackage": {"id": world.package_id},
                "reviewSettings": {"isEnabled": true, "isSelfReview": true, "expirationBehavior": "removeAccess",
                    "isReviewerJustificationRequired": false, "isRecommendationEnabled": true,
                    "schedule": {"startDateTime": start.to_rfc3339(),
                        "expiration": {"type": "afterDuration", "duration": "P7D"},
                        "recurrence": {"pattern": {"type": "absoluteMonthly", "interval": 1}, "range": {"type": "noEnd"}}},
                    "primaryReviewers": [], "fallbackReviewers": []}})),
            StatusCode::CREATED,
        )
        .await["id"]
        .as_str()
        .expect("policy id")
        .to_string();
    // More assignees than one job run applies (reviews::CHUNK), so the kill can fall
    // between two batches of the run's end.
    let mut assignees = world.pool.clone();
    for i in 0..(grantry_core::reviews::CHUNK + 150) {
        let v = client
            .must(
                M::POST,
                &world.admin,
                "/v1.0/users",
                Some(json!({"displayName": format!("r{i}"), "userPrincipalName": format!("r{i}@contoso.com"), "mail": format!("r{i}@contoso.com")})),
                StatusCode::CREATED,
            )
            .await;
        assignees.push(v["id"].as_str().expect("user id").to_string());
    }
    for user in &assignees {
        client
            .must(
                M::POST,
                &world.admin,
                &format!("/v1.0/{EM}/assignmentRequests"),
                Some(json!({"requestType": "adminAdd", "assignment": {"targetId": user, "assignmentPolicyId": policy, "accessPackageId": world.package_id}})),
                StatusCode::CREATED,
            )
            .await;
    }
    client
        .must(M::POST, &world.admin, "/_grantry/clock/advance", Some(json!({"duration": "PT2M"})), StatusCode::OK)
        .await;
    let ar = "/v1.0/identityGovernance/accessReviews/definitions";
    let reviews_admin = token(&db, &["--app", "crash-reviews", "--roles", "AccessReview.ReadWrite.All"]);
    let defs = client.must(M::GET, &reviews_admin, ar, None, StatusCode::OK).await;
    let def = defs["value"]
        .as_array()
        .expect("definitions")
        .iter()
        .find(|d| d["scope"]["query"].as_str().is_some_and(|q| q.contains(&policy)))
        .expect("the policy's definition")["id"]
        .as_str()
        .expect("definition id")
        .to_string();
    let runs = client.must(M::GET, &reviews_admin, &format!("{ar}/{def}/instances"), None, StatusCode::OK).await;
    let run = runs["value"][0]["id"].as_str().expect("a run is open").to_string();
    let n = assignees.len();
    assert_eq!(db.count_with("SELECT COUNT(*) FROM review_decisions WHERE instance_id = ?", Some(&run)), n as i64);
    // Five assignees keep their access; nobody else answers.
    let keep: Vec<String> = assignees[..5].to_vec();
    for user in &keep {
        let t = token(&db, &["--user", user, "--scopes", "AccessReview.ReadWrite.All"]);
        let base = format!("{ar}/{def}/instances/{run}/decisions");
        let mine =
            client.must(M::GET, &t, &format!("{base}/filterByCurrentUser(on='reviewer')"), None, StatusCode::OK).await;
        let item = mine["value"][0]["id"].as_str().expect("own item").to_string();
        client
            .must(M::PATCH, &t, &format!("{base}/{item}"), Some(json!({"decision": "Approve"})), StatusCode::NO_CONTENT)
            .await;
    }

    // The run's end comes due; the server is killed while it applies the decisions.
    let ender = {
        let client = client.clone();
        let admin = world.admin.clone();
        tokio::spawn(async move { client.post(&admin, "/_grantry/clock/advance", json!({"duration": "P8D"})).await })
    };
    // Killed as soon as the first batch of removals has committed (plus a random moment),
    // so the kill falls in the middle of applying.
    let watch = Instant::now();
    while db.count("SELECT COUNT(*) FROM requests WHERE request_type = 'systemRemove'") == 0
        && watch.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(rng.below(40) as u64)).await;
    server.kill();
    let _ = ender.await;
    let removed_at_kill = db.count("SELECT COUNT(*) FROM requests WHERE request_type = 'systemRemove'");
    println!("review crash test: killed with {removed_at_kill} of {} removals done", n - keep.len());
    db.check("review run ending, after SIGKILL");

    let server = Server::start(&db);
    let client = Client { http, base: server.base.clone() };
    let (status, body) =
        client.post(&world.admin, "/_grantry/clock/advance", json!({"duration": "PT0S"})).await.expect("advance");
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = client.must(M::GET, &reviews_admin, &format!("{ar}/{def}/instances/{run}"), None, StatusCode::OK).await;
    assert_eq!(got["status"], "Applied", "{got}");
    assert_eq!(
        db.count_with(
            "SELECT COUNT(*) FROM review_decisions WHERE instance_id = ? AND apply_result = 'New'",
            Some(&run)
        ),
        0,
        "every decision is applied"
    );
    let denied = (n - keep.len()) as i64;
    assert_eq!(db.count("SELECT COUNT(*) FROM requests WHERE request_type = 'systemRemove'"), denied);
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM (SELECT assignment_id FROM requests WHERE request_type = 'systemRemove' GROUP BY assignment_id HAVING COUNT(*) > 1) x"
        ),
        0,
        "an assignment was removed twice"
    );
    assert_eq!(db.count("SELECT COUNT(*) FROM outbox WHERE kind = 'mail' AND body LIKE '%accessEnded%'"), denied);
    let members = db.count(&format!(
        "SELECT COUNT(*) FROM group_links WHERE group_id = '{}' AND (granted > 0 OR direct = 1)",
        world.group_id
    ));
    assert_eq!(members, keep.len() as i64, "only the approved assignees are still members");
    for user in &keep {
        assert_eq!(
            db.count(&format!(
                "SELECT COUNT(*) FROM group_links WHERE group_id = '{}' AND member_id = '{user}' AND granted > 0",
                world.group_id
            )),
            1
        );
    }
    db.check("review run ending, after the restart");
    server.kill();
}
