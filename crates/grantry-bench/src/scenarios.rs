//! The scenarios (B1–B14), the baselines, and the set-up around them.

use crate::Args;
use crate::load::{self, LoadSpec, Outcome, Samples, Summary};
use crate::report::{self, Machine, Report, Row};
use crate::seed::{self, Manifest, Sizes};
use anyhow::{Context, bail};
use grantry::config::{Config, Database};
use grantry_api::auth::{MintRequest, TokenKeys, claims_for};
use grantry_core::PrincipalKind;
use grantry_store::{Location, Store, StoreOptions, Value};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const EM: &str = "/v1.0/identityGovernance/entitlementManagement";

/// The scope of a delegated token for self-service requests and approvals.
const SUBJECT_SCOPES: &[&str] = &["EntitlementMgmt-SubjectAccess.ReadWrite"];

const ALL_APP_ROLES: &[&str] = &[
    "EntitlementManagement.ReadWrite.All",
    "User.ReadWrite.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory",
    "Directory.ReadWrite.All",
];

/// Everything a scenario needs: where to send requests and the dataset's ids.
#[derive(Clone)]
pub struct Ctx {
    pub base: Arc<str>,
    pub client: reqwest::Client,
    pub auth: Arc<str>,
    /// One application token per load worker for reads, so that concurrent readers are
    /// separate callers (as many applications are) and the per-caller limit on queries with
    /// `$filter` does not refuse a single token's 64 concurrent reads.
    pub readers: Arc<Vec<Arc<str>>>,
    pub manifest: Arc<Manifest>,
    /// Next fresh (user, package) pair.
    pub pairs: Arc<AtomicU64>,
    /// A handle on the same database, for checks (counts, delivery polling).
    pub store: Store,
    /// The server's token keys (shared through the database), to mint users' tokens.
    pub keys: Arc<TokenKeys>,
    /// The server's process id when it is not this process.
    pub server_pid: Option<u32>,
    pub args: Arc<Args>,
}

impl Ctx {
    fn spec(&self, default_concurrency: usize) -> LoadSpec {
        LoadSpec {
            concurrency: self.args.concurrency.unwrap_or(default_concurrency).max(1),
            duration: self.args.duration,
            warmup: self.args.warmup,
            rate: None,
        }
    }

    /// POSTs an adminAdd for the next never-assigned pair; returns the status and the body.
    async fn admin_add(&self) -> (u16, Option<serde_json::Value>) {
        let n = self.pairs.fetch_add(1, Ordering::Relaxed);
        let (user, p) = self.manifest.fresh_pair(n);
        let body = json!({"requestType": "adminAdd", "assignment": {
            "targetId": user, "assignmentPolicyId": self.manifest.policy_ids[p], "accessPackageId": self.manifest.package_ids[p]}});
        self.post(&format!("{EM}/assignmentRequests"), &body).await
    }

    async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, Option<serde_json::Value>) {
        self.send(reqwest::Method::POST, path, &self.auth, Some(body)).await
    }

    /// Sends `method path` with the `authorization` header `auth` and an optional JSON body;
    /// returns the status (0 on a transport error) and the JSON body, if any.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, Option<serde_json::Value>) {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).header("authorization", auth);
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body.to_string());
        }
        let res = req.send().await;
        match res {
            Ok(r) => {
                let status = r.status().as_u16();
                let bytes = r.bytes().await.ok();
                (status, bytes.and_then(|b| serde_json::from_slice(&b).ok()))
            }
            Err(_) => (0, None),
        }
    }

    /// GETs `url` (absolute, or a path); returns the status and the body bytes.
    async fn get(&self, url: &str, auth: bool) -> (u16, Vec<u8>) {
        self.get_with(url, auth.then_some(&*self.auth)).await
    }

    /// A read as load worker `worker`'s own caller.
    async fn get_as(&self, url: &str, worker: usize) -> (u16, Vec<u8>) {
        let auth = &self.readers[worker % self.readers.len()];
        self.get_with(url, Some(auth)).await
    }

    async fn get_with(&self, url: &str, auth: Option<&str>) -> (u16, Vec<u8>) {
        let url = if url.starts_with("http") { url.to_string() } else { format!("{}{url}", self.base) };
        let mut req = self.client.get(url);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
            }
            Err(_) => (0, Vec::new()),
        }
    }

    fn list_url(&self, package: usize) -> String {
        format!(
            "{EM}/assignments?$filter=accessPackage/id%20eq%20'{}'&$expand=target&$top=100",
            self.manifest.package_ids[package]
        )
    }

    /// `Bearer …` for a delegated token of directory user `user_id` with the self-service
    /// scope (HS256: a few microseconds to mint).
    fn user_auth(&self, user_id: &str) -> anyhow::Result<String> {
        let token = mint(&self.keys, PrincipalKind::User, user_id, SUBJECT_SCOPES, 3600)?;
        Ok(format!("Bearer {token}"))
    }

    /// The state of request `id` in the database (`None` while it does not exist).
    async fn request_state(&self, id: &str) -> Option<String> {
        let id = id.to_string();
        self.store
            .read(move |c| {
                c.query_one("SELECT state FROM requests WHERE id = ?", &[Value::from(id)])?
                    .map(|r| r.text(0))
                    .transpose()
            })
            .await
            .ok()
            .flatten()
    }

    fn rss(&self) -> Option<f64> {
        report::peak_rss_mib(self.server_pid)
    }
    fn reset_rss(&self) {
        report::reset_peak_rss(self.server_pid)
    }

    async fn count(&self, sql: &'static str) -> i64 {
        self.store
            .read(move |c| Ok(c.query_one(sql, &[])?.map(|r| r.int(0)).transpose()?.unwrap_or(0)))
            .await
            .unwrap_or(-1)
    }
}

fn row(ctx: &Ctx, scenario: &str, what: &str, conc: usize, s: Summary, target: &str, met: Option<bool>) -> Row {
    Row {
        scenario: scenario.into(),
        what: what.into(),
        concurrency: conc,
        summary: s,
        vs_floor: None,
        peak_rss_mib: ctx.rss(),
        target: target.into(),
        met,
        notes: String::new(),
    }
}

/// A token for `object_id` (an app, or a directory user) holding `permissions`.
fn mint(
    keys: &TokenKeys,
    kind: PrincipalKind,
    object_id: &str,
    permissions: &[&str],
    lifetime_secs: i64,
) -> anyhow::Result<String> {
    #[allow(clippy::disallowed_methods)] // tokens follow the wall clock
    let now = chrono::Utc::now().timestamp();
    keys.mint(&claims_for(
        keys,
        MintRequest {
            kind,
            object_id: object_id.to_string(),
            app_id: object_id.to_string(),
            display_name: Some("grantry-bench".into()),
            upn: None,
            permissions: permissions.iter().map(|s| s.to_string()).collect(),
            wids: vec![],
            issued_at: now,
            lifetime_secs,
        },
    ))
    .map_err(|e| anyhow::anyhow!(e.message))
}

/// The process's writer totals: statements, callers' writes, CPU nanoseconds.
fn writer_totals() -> (u64, u64, u64) {
    let m = grantry_domain::metrics::global();
    (
        m.writer_statements.load(Ordering::Relaxed),
        m.writer_jobs.load(Ordering::Relaxed),
        m.writer_cpu_ns.load(Ordering::Relaxed),
    )
}

fn ok_if(status: u16, want: u16) -> (Outcome, usize) {
    (if status == want { Outcome::Ok } else { Outcome::Error }, 0)
}

pub async fn main(args: Args) -> anyhow::Result<()> {
    let mut sizes = match args.scale {
        Some(s) => Sizes::scaled(s),
        None => Sizes::named(&args.dataset)?,
    };
    if let Some(n) = args.expiring {
        sizes.expiring = n.min(sizes.assignments);
    }
    let mut report = Report { machine: Some(Machine::probe()), ..Default::default() };
    let tmp = tempfile::Builder::new().prefix("grantry-bench-").tempdir()?;
    let dir: PathBuf = args.data_dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;

    // Where the dataset lives: SQLite in the data directory, or the PostgreSQL database.
    let location = match &args.database_url {
        Some(url) => match Location::parse(url).map_err(|e| anyhow::anyhow!(e.message))? {
            l @ Location::Postgres(_) => l,
            Location::Sqlite(_) => bail!(
                "--database-url takes a postgres://USER@HOST:PORT/DB URL; without it the dataset is SQLite in --data-dir"
            ),
        },
        None => Location::Sqlite(dir.join("grantry.db")),
    };
    let pg_url = match &location {
        Location::Postgres(url) => Some(url.clone()),
        Location::Sqlite(_) => None,
    };
    if args.scenario.eq_ignore_ascii_case("b5x2") && pg_url.is_none() {
        bail!("b5x2 runs two servers on one database: give a PostgreSQL database with --database-url");
    }

    // The dataset.
    let manifest = match Manifest::read(&dir)? {
        Some(m) if m.sizes == sizes && m.database == location.describe() => {
            eprintln!("reusing the dataset in {} (seeded in {:.1}s)", m.database, m.seed_secs);
            m
        }
        Some(m) if m.sizes == sizes => bail!(
            "the manifest in {} describes a dataset in {}, not {}; use another --data-dir",
            dir.display(),
            m.database,
            location.describe()
        ),
        Some(_) => bail!("{} holds a dataset of other sizes; use another --data-dir", dir.display()),
        None => {
            if args.url.is_some() {
                bail!(
                    "--url needs the --data-dir of the running server's seeded database (run the 'seed' scenario first)"
                );
            }
            eprintln!("seeding {sizes:?} into {} …", location.describe());
            let m = seed::seed(&dir, &location, sizes).await?;
            eprintln!("seeded {} rows in {:.1}s", m.rows, m.seed_secs);
            m
        }
    };
    report.dataset = json!({ "sizes": manifest.sizes, "seed_secs": manifest.seed_secs, "rows": manifest.rows,
                             "seed_rows_per_s": manifest.rows as f64 / manifest.seed_secs.max(1e-9) });
    if args.scenario == "seed" {
        finish(&args, report)?;
        return Ok(());
    }
    let scenario = args.scenario.to_ascii_lowercase();
    let run_all = scenario == "all";

    // Store baselines (no HTTP) on a scratch SQLite database (not run for a PostgreSQL
    // dataset unless asked for).
    if scenario == "sqlite" || (pg_url.is_none() && (run_all || scenario == "b1")) {
        let (rows_per_s, commits_per_s) = sqlite_baseline(tmp.path()).await?;
        report.baselines.insert("sqlite_batched_rows_per_s".into(), json!(rows_per_s.round()));
        report.baselines.insert("sqlite_single_commits_per_s".into(), json!(commits_per_s.round()));
    }
    if scenario == "sqlite" {
        finish(&args, report)?;
        return Ok(());
    }

    // B9 spawns the server binary itself, before anything else holds the database.
    if run_all || scenario == "b9" {
        let rows = b9(&args, &dir, &location).await?;
        report.rows.extend(rows);
        if scenario == "b9" {
            finish(&args, report)?;
            return Ok(());
        }
    }

    // The server: in-process, spawned (b10) or given (--url).
    let mut server = None;
    let mut child = None;
    let (base, server_pid) = if let Some(url) = &args.url {
        (url.trim_end_matches('/').to_string(), args.pid)
    } else if scenario == "b10" {
        let (c, base) = spawn_grantry(&args, &dir, &location).await?;
        let pid = c.id();
        child = Some(c);
        (base, pid)
    } else {
        let database = match &location {
            Location::Sqlite(path) => Database::Sqlite(path.clone()),
            Location::Postgres(url) => Database::Postgres(url.clone()),
        };
        let mail = grantry::config::MailConfig::resolve(args.smtp_url.clone(), args.mail_from.clone(), None)?;
        let config = Config { dev_clock: true, mail, ..Config::for_test(database, dir.join("keys")) };
        let s = grantry::start(config).await?;
        let base = s.base_url.clone();
        server = Some(s);
        (base, None)
    };
    let store = match &server {
        Some(s) => s.state.app.store.clone(),
        None => Store::open_location(&location, StoreOptions { readers: 2, pg_pool_size: 4, ..Default::default() })
            .map_err(|e| anyhow::anyhow!("open the database for checks: {}", e.message))?,
    };
    let keys = TokenKeys::load_or_create(&store, &dir.join("keys")).await.map_err(|e| anyhow::anyhow!(e.message))?;
    // Long enough to outlive the development clock moved forward by b7.
    let token = mint(&keys, PrincipalKind::App, "b0000000-0000-4000-8000-000000000001", ALL_APP_ROLES, 400 * 86_400)?;
    let readers = (0..64)
        .map(|i| {
            let app = format!("b0000000-0000-4000-8001-{:012}", i + 1);
            mint(&keys, PrincipalKind::App, &app, ALL_APP_ROLES, 400 * 86_400).map(|t| Arc::from(format!("Bearer {t}")))
        })
        .collect::<anyhow::Result<Vec<Arc<str>>>>()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?;
    let pairs = Arc::new(AtomicU64::new(manifest.pairs_used));
    let ctx = Ctx {
        base: base.into(),
        client,
        auth: format!("Bearer {token}").into(),
        readers: Arc::new(readers),
        manifest: Arc::new(manifest),
        pairs,
        store,
        keys: Arc::new(keys),
        server_pid,
        args: Arc::new(args.clone()),
    };

    // The HTTP floor, at the concurrency the scenarios use.
    let floor = floor(&ctx, if scenario == "b2" { 1 } else { 32 }).await;
    report.baselines.insert("http_floor_health_rps".into(), json!(floor.summary.throughput.round()));
    report.baselines.insert("http_floor_health_p99_ms".into(), json!(floor.summary.p99_ms));
    report.rows.push(floor.clone());
    let floor_rps = floor.summary.throughput;

    let mut wanted: Vec<&str> =
        if run_all { vec!["b1", "b2", "b4", "b5", "b8", "b3", "b6", "b7"] } else { vec![scenario.as_str()] };
    if run_all && pg_url.is_some() {
        wanted.insert(4, "b5x2");
    }
    for s in wanted {
        ctx.reset_rss();
        let writer_before = writer_totals();
        let rows = match s {
            "b1" => vec![b1(&ctx, "b1", 32).await],
            "b1m" => b1_metrics(&ctx, server.is_some()).await?,
            "b1n" => b1_notifications(&ctx).await?,
            "b2" => vec![b1(&ctx, "b2", 1).await],
            "b3" => b3(&ctx).await?,
            "b4" => vec![b4(&ctx).await],
            "b5" => b5(&ctx).await,
            "b5x2" => b5x2(&ctx, &location).await?,
            "b6" | "b10" => b6(&ctx, s).await,
            "b7" => b7(&ctx).await,
            "b8" => vec![b8(&ctx).await],
            "b11" => b11(&ctx).await?,
            "b12" => b12(&ctx).await?,
            "b13" => b13(&ctx).await?,
            "b14" => vec![b14(&ctx).await],
            "floor" => vec![],
            other => bail!("unknown scenario '{other}'"),
        };
        // What the writer did during the scenario (warm-up included), when the server runs in
        // this process: statements and writer-thread CPU per write transaction's caller.
        let (statements, writes, cpu_ns) = writer_totals();
        let writer_note = (ctx.server_pid.is_none() && ctx.args.url.is_none()).then(|| {
            let w = writes.saturating_sub(writer_before.1).max(1) as f64;
            format!(
                "writer: {:.1} statements and {:.0} µs CPU per write ({} writes)",
                statements.saturating_sub(writer_before.0) as f64 / w,
                cpu_ns.saturating_sub(writer_before.2) as f64 / w / 1000.0,
                writes.saturating_sub(writer_before.1)
            )
        });
        for mut r in rows {
            if let Some(note) = &writer_note {
                r.notes = if r.notes.is_empty() { note.clone() } else { format!("{}; {note}", r.notes) };
            }
            r.vs_floor = Some(r.summary.throughput / floor_rps.max(1e-9));
            eprintln!(
                "{} {}: {:.0}/s p50 {:.2} ms p99 {:.2} ms errors {}",
                r.scenario, r.what, r.summary.throughput, r.summary.p50_ms, r.summary.p99_ms, r.summary.errors
            );
            report.rows.push(r);
        }
    }

    // Remember which fresh pairs were used, so a rerun on this directory starts after them.
    let mut m = (*ctx.manifest).clone();
    m.pairs_used = ctx.pairs.load(Ordering::Relaxed);
    let _ = m.write(&dir);
    if let Some(s) = server {
        s.stop().await;
    }
    if let Some(mut c) = child {
        let _ = c.kill().await;
    }
    finish(&args, report)
}

fn finish(args: &Args, mut report: Report) -> anyhow::Result<()> {
    if let Some(m) = &mut report.machine {
        m.loadavg_end = report::loadavg();
    }
    report.print_table();
    let doc = serde_json::to_string_pretty(&report)?;
    if args.json {
        println!("{doc}");
    }
    if let Some(out) = &args.out {
        std::fs::write(out, &doc).with_context(|| format!("write {}", out.display()))?;
    }
    Ok(())
}

/// Baseline (a): the same assignment rows inserted through the store in batches of 1,000
/// (no HTTP), and single-row commits one after another (the fsync ceiling).
async fn sqlite_baseline(scratch: &Path) -> anyhow::Result<(f64, f64)> {
    let path = scratch.join("baseline.db");
    let store = Store::open_sqlite(&path, StoreOptions::default()).map_err(|e| anyhow::anyhow!(e.message))?;
    #[allow(clippy::disallowed_methods)]
    let now = grantry_domain::clock::truncate_micros(chrono::Utc::now());
    let make = move |i: usize| grantry_domain::model::Assignment {
        id: format!("{i:08x}-0000-4000-8000-000000000000"),
        access_package_id: format!("pkg{}", i % 1000),
        catalog_id: "cat".into(),
        policy_id: format!("pol{}", i % 1000),
        target_subject_id: format!("sub{i}"),
        state: grantry_domain::enums::AssignmentState::Delivered,
        status: "Delivered".into(),
        schedule: Default::default(),
        answers: vec![],
        is_extended: false,
        expired_date_time: None,
        created_date_time: now,
        custom_extension_callout_instances: vec![],
    };
    let total = 50_000;
    let t = Instant::now();
    for b in 0..total / 1000 {
        store
            .write(move |c| {
                for i in b * 1000..(b + 1) * 1000 {
                    grantry_store::repo::insert(c, &make(i))?;
                }
                Ok(())
            })
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    let rows_per_s = total as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed() < Duration::from_secs(2) {
        let a = make(total + n);
        store.write(move |c| grantry_store::repo::insert(c, &a)).await.map_err(|e| anyhow::anyhow!(e.message))?;
        n += 1;
    }
    let commits_per_s = n as f64 / t.elapsed().as_secs_f64();
    drop(store);
    let _ = std::fs::remove_file(&path);
    Ok((rows_per_s, commits_per_s))
}

/// Baseline (b): GET /health through the same server stack and client.
async fn floor(ctx: &Ctx, conc: usize) -> Row {
    let mut spec = ctx.spec(conc);
    spec.concurrency = ctx.args.concurrency.unwrap_or(conc);
    spec.duration = spec.duration.min(Duration::from_secs(5));
    let c = ctx.clone();
    let (mut s, t) = load::run(&spec, 1, move |_, _| {
        let c = c.clone();
        async move { ok_if(c.get("/health", false).await.0, 200) }
    })
    .await;
    row(ctx, "base", "HTTP floor: GET /health", spec.concurrency, s.remove(0).summary(t), "", None)
}

/// B1/B2: adminAdd under a no-approval policy, delivered into a group.
async fn b1(ctx: &Ctx, name: &str, conc: usize) -> Row {
    let spec = ctx.spec(conc);
    let c = ctx.clone();
    let (mut s, t) = load::run(&spec, 1, move |_, _| {
        let c = c.clone();
        async move { ok_if(c.admin_add().await.0, 201) }
    })
    .await;
    let s = s.remove(0).summary(t);
    let (target, met) = if name == "b1" {
        ("≥10,000/s, p99 ≤ 20 ms", s.throughput >= 10_000.0 && s.p99_ms <= 20.0)
    } else {
        ("p50 ≤ 1 ms, p99 ≤ 5 ms", s.p50_ms <= 1.0 && s.p99_ms <= 5.0)
    };
    let met = met && s.errors == 0;
    row(ctx, name, "POST adminAdd (201)", spec.concurrency, s, target, Some(met))
}

/// B1 with metrics recorded, then not, in alternating rounds (on, off, on, off) of the
/// in-process server, so that drift on a busy machine weighs on both; the first row's note
/// gives what recording costs.
async fn b1_metrics(ctx: &Ctx, in_process: bool) -> anyhow::Result<Vec<Row>> {
    if !in_process {
        bail!("b1m turns metrics off inside the server it starts; run it without --url");
    }
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        grantry_domain::metrics::set_enabled(true);
        on.push(b1(ctx, "b1m", 32).await);
        grantry_domain::metrics::set_enabled(false);
        off.push(b1(ctx, "b1m", 32).await);
    }
    grantry_domain::metrics::set_enabled(!ctx.args.no_metrics);
    let mean = |rows: &[Row]| rows.iter().map(|r| r.summary.throughput).sum::<f64>() / rows.len().max(1) as f64;
    let (with, without) = (mean(&on), mean(&off));
    let cost = (1.0 - with / without.max(1e-9)) * 100.0;
    let mut a = on.pop().context("no round ran")?;
    a.what = "POST adminAdd, metrics on (last round)".into();
    a.target = "throughput within 3 % of metrics off".into();
    a.met = Some(cost <= 3.0 && on.iter().chain(&off).all(|r| r.summary.errors == 0));
    a.notes = format!("mean of 2 rounds each: on {with:.0}/s, off {without:.0}/s; recording costs {cost:.1} %");
    let mut b = off.pop().context("no round ran")?;
    b.what = "POST adminAdd, metrics off (last round)".into();
    b.target = String::new();
    b.met = None;
    Ok(vec![a, b])
}

/// Turns the assignment mails ("you now have access", expiry, "access has ended") of the
/// dataset's B1 policies off or on, as an administrator would with the policy's
/// `notificationSettings.isAssignmentNotificationDisabled`.
async fn set_assignment_mails(ctx: &Ctx, on: bool) -> anyhow::Result<()> {
    let ids = ctx.manifest.policy_ids.clone();
    for chunk in ids.chunks(500) {
        let chunk = chunk.to_vec();
        ctx.store
            .write(move |c| {
                for id in &chunk {
                    if let Some(mut p) = grantry_store::repo::get::<grantry_domain::model::Policy>(c, id)? {
                        p.notification_settings = Some(json!({ "isAssignmentNotificationDisabled": !on }));
                        grantry_store::repo::update(c, &p)?;
                    }
                }
                Ok(())
            })
            .await
            .map_err(|e| anyhow::anyhow!("setting the policies' notifications: {}", e.message))?;
    }
    Ok(())
}

/// B1 with notifications on (each delivery writes the assignee's "you now have access"
/// mail, sent over SMTP with `--smtp-url`), then with the policies' assignment mails
/// turned off, in alternating rounds: the foreground cost of notifications (target: p99
/// on within 10 % of off).
async fn b1_notifications(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let (mut on, mut off) = (Vec::new(), Vec::new());
    let mails = || ctx.count("SELECT COUNT(*) FROM outbox WHERE kind = 'mail'");
    let (mut mails_on, mut mails_off) = (0, 0);
    for _ in 0..2 {
        set_assignment_mails(ctx, true).await?;
        let before = mails().await;
        on.push(b1(ctx, "b1n", 32).await);
        mails_on += mails().await - before;
        set_assignment_mails(ctx, false).await?;
        let before = mails().await;
        off.push(b1(ctx, "b1n", 32).await);
        mails_off += mails().await - before;
    }
    set_assignment_mails(ctx, true).await?;
    let mean = |rows: &[Row], f: fn(&Row) -> f64| rows.iter().map(f).sum::<f64>() / rows.len().max(1) as f64;
    let (p99_on, p99_off) = (mean(&on, |r| r.summary.p99_ms), mean(&off, |r| r.summary.p99_ms));
    let (rate_on, rate_off) = (mean(&on, |r| r.summary.throughput), mean(&off, |r| r.summary.throughput));
    let how = if ctx.args.smtp_url.is_some() { "sent over SMTP" } else { "kept (no SMTP)" };
    let mut a = on.pop().context("no round ran")?;
    a.what = "POST adminAdd, notifications on (last round)".into();
    a.target = "p99 within 10 % of notifications off".into();
    a.met = Some(p99_on <= p99_off * 1.1 && on.iter().chain(&off).all(|r| r.summary.errors == 0));
    a.notes = format!(
        "mean of 2 rounds each: on {rate_on:.0}/s p99 {p99_on:.2} ms, off {rate_off:.0}/s p99 {p99_off:.2} ms; \
         {mails_on} mails written with notifications on ({how}), {mails_off} with them off"
    );
    let mut b = off.pop().context("no round ran")?;
    b.what = "POST adminAdd, notifications off (last round)".into();
    b.target = String::new();
    b.met = None;
    Ok(vec![a, b])
}

/// B4: refusals (already assigned; policy of another package) — answered without a write.
async fn b4(ctx: &Ctx) -> Row {
    let spec = ctx.spec(32);
    let before = ctx.count("SELECT COUNT(*) FROM requests").await;
    let c = ctx.clone();
    let (mut s, t) = load::run(&spec, 1, move |_, n| {
        let c = c.clone();
        async move {
            let m = &c.manifest;
            let (body, want) = if n % 2 == 0 {
                // Already assigned: every assigned user holds the hot package 0.
                let u = &m.user_ids[(n as usize / 2) % m.assigned_count()];
                (
                    json!({"requestType": "adminAdd", "assignment": {"targetId": u,
                        "assignmentPolicyId": m.policy_ids[0], "accessPackageId": m.package_ids[0]}}),
                    409,
                )
            } else {
                // A policy that belongs to another package.
                let (u, p) = m.fresh_pair(n);
                let other = (p + 1) % m.package_ids.len();
                (
                    json!({"requestType": "adminAdd", "assignment": {"targetId": u,
                        "assignmentPolicyId": m.policy_ids[other], "accessPackageId": m.package_ids[p]}}),
                    400,
                )
            };
            ok_if(c.post(&format!("{EM}/assignmentRequests"), &body).await.0, want)
        }
    })
    .await;
    let after = ctx.count("SELECT COUNT(*) FROM requests").await;
    let s = s.remove(0).summary(t);
    let met = s.throughput >= 30_000.0 && s.errors == 0 && before == after;
    let mut r =
        row(ctx, "b4", "refusals (409 duplicate / 400 policy)", spec.concurrency, s, "≥30,000/s, no write", Some(met));
    r.notes = format!("requests rows before {before}, after {after}");
    r
}

/// B5: list assignments of one package with the target expanded, 100 a page; then the
/// latency of page 1 against the deepest page (page 3,000 on the large dataset).
async fn b5(ctx: &Ctx) -> Vec<Row> {
    let spec = ctx.spec(32);
    let c = ctx.clone();
    let (mut s, t) = load::run(&spec, 1, move |w, _| {
        let c = c.clone();
        async move { ok_if(c.get_as(&c.list_url(0), w).await.0, 200) }
    })
    .await;
    let s = s.remove(0).summary(t);
    let met = s.throughput >= 5_000.0 && s.p99_ms <= 15.0 && s.errors == 0;
    let mut rows = vec![row(
        ctx,
        "b5",
        "list page 1 ($filter,$expand,$top=100)",
        spec.concurrency,
        s,
        "≥5,000/s, p99 ≤ 15 ms",
        Some(met),
    )];

    // Walk the nextLinks to page 3,000 (or the last page).
    let first = ctx.list_url(0);
    let mut url = first.clone();
    let mut page = 1;
    let walk = Instant::now();
    while page < 3000 {
        let (status, body) = ctx.get(&url, true).await;
        if status != 200 {
            break;
        }
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        match v.get("@odata.nextLink").and_then(|l| l.as_str()) {
            Some(next) => {
                url = next.to_string();
                page += 1;
            }
            None => break,
        }
    }
    let walk_secs = walk.elapsed().as_secs_f64();
    let time = |u: String| {
        let c = ctx.clone();
        async move {
            let mut lat = Samples::default();
            for _ in 0..200 {
                let t0 = Instant::now();
                let (status, _) = c.get(&u, true).await;
                if status == 200 {
                    lat.latencies_us.push(t0.elapsed().as_micros() as u32);
                } else {
                    lat.errors += 1;
                }
            }
            lat
        }
    };
    let t1 = Instant::now();
    let p1 = time(first).await.summary(t1.elapsed());
    let t2 = Instant::now();
    let pn = time(url).await.summary(t2.elapsed());
    let ratio = pn.p50_ms / p1.p50_ms.max(1e-9);
    let mut r1 = row(ctx, "b5", "page 1, one client", 1, p1, "", None);
    r1.notes = "for the deep-page ratio".into();
    let mut rn =
        row(ctx, "b5", &format!("page {page}, one client"), 1, pn, "p50 within 1.2× of page 1", Some(ratio <= 1.2));
    rn.notes = format!("ratio {ratio:.2}; walked {page} pages in {walk_secs:.1}s");
    rows.push(r1);
    rows.push(rn);
    rows
}

/// B11: availability under hostile clients. 20 users with no role each send, over and
/// over, the most expensive query a plain user may: every user whose display name contains
/// one of 50 strings (the most terms a filter may have, none served by an index, none
/// matching), 999 to a page. Meanwhile another user reads one user by id (a cheap GET);
/// its latency is measured.
async fn b11(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let users = &ctx.manifest.user_ids;
    if users.len() < 22 {
        bail!("b11 needs at least 22 users in the dataset");
    }
    let scope = &["User.Read.All"];
    let bearer = |id: &str| -> anyhow::Result<String> {
        Ok(format!("Bearer {}", mint(&ctx.keys, PrincipalKind::User, id, scope, 3600)?))
    };
    let filter: Vec<String> =
        (0..grantry_odata::MAX_FILTER_TERMS).map(|i| format!("contains(displayName,'zq{i}xj')")).collect();
    let hostile = format!("{}/v1.0/users?$filter={}&$top=999", ctx.base, filter.join(" or "));
    let attackers: Vec<String> = users[..20].iter().map(|u| bearer(u)).collect::<anyhow::Result<_>>()?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<u16, u64>::new()));
    let mut tasks = Vec::new();
    for auth in attackers {
        let (client, url, stop, answered) = (ctx.client.clone(), hostile.clone(), stop.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let status = match client.get(&url).header("authorization", &auth).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let _ = r.bytes().await;
                        status
                    }
                    Err(_) => 0,
                };
                *answered.lock().unwrap_or_else(|e| e.into_inner()).entry(status).or_default() += 1;
            }
        }));
    }
    // The attack is under way before measuring.
    tokio::time::sleep(ctx.args.warmup.max(Duration::from_secs(1))).await;
    let victim = bearer(&users[20])?;
    let cheap = format!("{}/v1.0/users/{}", ctx.base, users[21]);
    let mut samples = Samples::default();
    let started = Instant::now();
    while started.elapsed() < ctx.args.duration {
        let t0 = Instant::now();
        let ok = match ctx.client.get(&cheap).header("authorization", &victim).send().await {
            Ok(r) => r.status().as_u16() == 200 && r.bytes().await.is_ok(),
            Err(_) => false,
        };
        if ok {
            samples.latencies_us.push(t0.elapsed().as_micros() as u32);
        } else {
            samples.errors += 1;
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let s = samples.summary(elapsed);
    let met = s.p99_ms < 50.0 && s.errors == 0;
    let mut r = row(
        ctx,
        "b11",
        "cheap GET users/{id} while 20 users run the most expensive user query",
        1,
        s,
        "p99 < 50 ms, no error",
        Some(met),
    );
    let answered = answered.lock().unwrap_or_else(|e| e.into_inner()).clone();
    r.notes = format!(
        "attackers' answers: {}",
        answered.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
    );
    Ok(vec![r])
}

/// B6 (and B10 when the server is a spawned binary): 80 % reads, 20 % adminAdd writes.
async fn b6(ctx: &Ctx, name: &str) -> Vec<Row> {
    let spec = ctx.spec(64);
    let (read, write, t) = mixed(ctx, &spec).await;
    let total = Summary {
        ops: read.ops + write.ops,
        errors: read.errors + write.errors,
        secs: t.as_secs_f64(),
        throughput: (read.ops + write.ops) as f64 / t.as_secs_f64(),
        p50_ms: read.p50_ms.max(write.p50_ms),
        p99_ms: read.p99_ms.max(write.p99_ms),
        p999_ms: read.p999_ms.max(write.p999_ms),
        max_ms: read.max_ms.max(write.max_ms),
    };
    let rss = ctx.rss();
    let mut rows = vec![];
    let met = total.throughput >= 10_000.0 && write.p99_ms <= 30.0 && total.errors == 0;
    rows.push(row(
        ctx,
        name,
        "mixed 80/20: all ops",
        spec.concurrency,
        total,
        "≥10,000 ops/s, write p99 ≤ 30 ms",
        Some(met),
    ));
    rows.push(row(ctx, name, "mixed 80/20: reads", spec.concurrency, read, "", None));
    rows.push(row(ctx, name, "mixed 80/20: writes (adminAdd)", spec.concurrency, write, "", None));
    if name == "b10" || ctx.server_pid.is_some() {
        let mut r = rows[0].clone();
        r.scenario = "b10".into();
        r.what = "peak RSS of the server under B6".into();
        r.target = "≤ 256 MiB".into();
        r.met = rss.map(|m| m <= 256.0);
        r.notes = "server process only (spawned binary)".into();
        rows.push(r);
    } else {
        rows[0].notes = "RSS is of this process: server and load generator together".into();
    }
    rows
}

/// The B6 mix; returns (reads, writes, measured time).
async fn mixed(ctx: &Ctx, spec: &LoadSpec) -> (Summary, Summary, Duration) {
    let c = ctx.clone();
    let (mut s, t) = load::run(spec, 2, move |w, n| {
        let c = c.clone();
        async move {
            if n % 5 == 4 {
                (ok_if(c.admin_add().await.0, 201).0, 1)
            } else {
                let m = &c.manifest;
                // Reads: a package's assignments (first page), a user, a package.
                let path = match n % 5 {
                    0 | 1 => c.list_url((n as usize * 7919) % m.package_ids.len()),
                    2 => format!("/v1.0/users/{}", m.user_ids[(n as usize * 104_729) % m.user_ids.len()]),
                    _ => format!("{EM}/accessPackages/{}", m.package_ids[(n as usize * 31) % m.package_ids.len()]),
                };
                (ok_if(c.get_as(&path, w).await.0, 200).0, 0)
            }
        }
    })
    .await;
    let write = s.remove(1).summary(t);
    let read = s.remove(0).summary(t);
    (read, write, t)
}

/// B7: a slice of assignments expires at once (the development clock moves past their end)
/// while the B6 mix runs at half rate.
async fn b7(ctx: &Ctx) -> Vec<Row> {
    let expiring = ctx.count("SELECT COUNT(*) FROM jobs WHERE kind = 'assignment.expire'").await;
    let mut spec = ctx.spec(64);
    // Half of the rate the mix reaches unpaced, measured briefly first.
    let mut probe = spec.clone();
    probe.duration = Duration::from_secs(3);
    let (r, w, t) = mixed(ctx, &probe).await;
    let rate = (r.ops + w.ops) as f64 / t.as_secs_f64() / 2.0;
    spec.rate = Some(rate);
    let (quiet_r, quiet_w, _) = mixed(ctx, &spec).await;

    let c = ctx.clone();
    let fg_spec = spec.clone();
    let fg = tokio::spawn(async move { mixed(&c, &fg_spec).await });
    tokio::time::sleep(spec.warmup).await;
    let started = Instant::now();
    let before_exp = ctx.count("SELECT COUNT(*) FROM assignments WHERE state = 'expired'").await;
    let c = ctx.clone();
    let advance = tokio::spawn(async move { c.post("/_grantry/clock/advance", &json!({"duration": "P31D"})).await.0 });
    let mut done_after = None;
    while started.elapsed() < Duration::from_secs(120) {
        let left = ctx.count("SELECT COUNT(*) FROM jobs WHERE kind = 'assignment.expire'").await;
        if left == 0 {
            done_after = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let advance_status = advance.await.unwrap_or(0);
    let expired = ctx.count("SELECT COUNT(*) FROM assignments WHERE state = 'expired'").await - before_exp;
    // Memberships left that only expired assignments granted.
    let dangling = ctx
        .count(
            "SELECT COUNT(*) FROM assignment_resource_roles r JOIN assignments a ON a.id = r.assignment_id \
             WHERE a.state = 'expired' AND r.status = 'Fulfilled'",
        )
        .await;
    let (busy_r, busy_w, _) = fg.await.unwrap_or((quiet_r.clone(), quiet_w.clone(), Duration::ZERO));
    let mut rows = vec![];
    let secs = done_after.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN);
    let exp_summary = Summary {
        ops: expired.max(0) as u64,
        errors: if advance_status == 200 { 0 } else { 1 },
        secs,
        throughput: expired.max(0) as f64 / secs,
        p50_ms: 0.0,
        p99_ms: 0.0,
        p999_ms: 0.0,
        max_ms: 0.0,
    };
    let met = done_after.is_some_and(|d| d <= Duration::from_secs(60)) && expired >= expiring && dangling == 0;
    let mut r =
        row(ctx, "b7", "assignments expired at once", 0, exp_summary, "all expired + revoked ≤ 60 s", Some(met));
    r.notes = format!("{expired} of {expiring} expired in {secs:.1}s; {dangling} roles left fulfilled");
    rows.push(r);
    let p99_quiet = quiet_r.p99_ms.max(quiet_w.p99_ms);
    let p99_busy = busy_r.p99_ms.max(busy_w.p99_ms);
    let mut q = row(ctx, "b7", "B6 at half rate, before", spec.concurrency, quiet_r, "", None);
    q.notes = format!("write p99 {:.2} ms", quiet_w.p99_ms);
    rows.push(q);
    let mut b = row(
        ctx,
        "b7",
        "B6 at half rate, during expiry",
        spec.concurrency,
        busy_r,
        "foreground p99 ≤ 2× before",
        Some(p99_busy <= 2.0 * p99_quiet),
    );
    b.notes = format!("write p99 {:.2} ms; p99 {p99_busy:.2} vs {p99_quiet:.2} ms before", busy_w.p99_ms);
    rows.push(b);
    rows
}

/// B12: an automatic assignment policy whose membership rule matches 17 of the dataset's
/// 50 departments (102,000 users of the large dataset) on a new package: time until every
/// matching user holds an assignment, while adminAdd requests keep arriving (their p99
/// before and during the convergence).
async fn b12(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    const DEPARTMENTS: usize = 17;
    let users = ctx.manifest.sizes.users;
    let expected = (0..users).filter(|u| u % 50 < DEPARTMENTS).count() as i64;
    let names: Vec<String> = (0..DEPARTMENTS).map(|d| format!("\"Dept {d}\"")).collect();
    let rule = format!("user.department -in [{}]", names.join(", "));
    let (status, package) = ctx
        .post(
            &format!("{EM}/accessPackages"),
            &json!({ "displayName": "B12 automatic", "catalog": { "id": ctx.manifest.catalog_id } }),
        )
        .await;
    let package_id = package.as_ref().and_then(|p| p["id"].as_str()).map(str::to_string);
    let Some(package_id) = package_id.filter(|_| status == 201) else {
        bail!("b12: creating the package answered {status}: {package:?}");
    };
    let spec = ctx.spec(4);
    let foreground = |ctx: &Ctx| {
        let c = ctx.clone();
        let spec = spec.clone();
        async move {
            let (mut s, t) = load::run(&spec, 1, move |_, _| {
                let c = c.clone();
                async move { ok_if(c.admin_add().await.0, 201) }
            })
            .await;
            s.remove(0).summary(t)
        }
    };
    let quiet = foreground(ctx).await;
    let policy = json!({
        "displayName": "B12 automatic",
        "allowedTargetScope": "specificDirectoryUsers",
        "specificAllowedTargets": [{ "@odata.type": "#microsoft.graph.attributeRuleMembers", "membershipRule": rule }],
        "automaticRequestSettings": { "requestAccessForAllowedTargets": true, "removeAccessWhenTargetLeavesAllowedTargets": true },
        "accessPackage": { "id": package_id },
    });
    let started = Instant::now();
    let (status, created) = ctx.post(&format!("{EM}/assignmentPolicies"), &policy).await;
    let Some(policy_id) = created.as_ref().and_then(|p| p["id"].as_str()).map(str::to_string).filter(|_| status == 201)
    else {
        bail!("b12: creating the policy answered {status}: {created:?}");
    };
    let fg = tokio::spawn(foreground(ctx));
    let active = |ctx: &Ctx| {
        let (store, p) = (ctx.store.clone(), policy_id.clone());
        async move {
            store
                .read(move |c| {
                    Ok(c.query_one(
                        "SELECT COUNT(*) FROM assignments WHERE policy_id = ? AND active = 1",
                        &[Value::from(p)],
                    )?
                    .map(|r| r.int(0))
                    .transpose()?
                    .unwrap_or(0))
                })
                .await
                .unwrap_or(-1)
        }
    };
    let mut done_after = None;
    let mut assigned = 0;
    while started.elapsed() < Duration::from_secs(1800) {
        assigned = active(ctx).await;
        if assigned >= expected {
            done_after = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let busy = fg.await.unwrap_or_else(|_| quiet.clone());
    let secs = done_after.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN);
    let converged = Summary {
        ops: assigned.max(0) as u64,
        errors: if done_after.is_some() { 0 } else { 1 },
        secs,
        throughput: assigned.max(0) as f64 / secs,
        p50_ms: 0.0,
        p99_ms: 0.0,
        p999_ms: 0.0,
        max_ms: 0.0,
    };
    let mut r = row(
        ctx,
        "b12",
        "automatic policy: matching users assigned",
        0,
        converged,
        "all assigned",
        Some(done_after.is_some()),
    );
    r.notes = format!("{assigned} of {expected} users assigned in {secs:.1}s");
    let p99_quiet = quiet.p99_ms;
    let mut q = row(ctx, "b12", "adminAdd, before", spec.concurrency, quiet, "", None);
    q.notes = format!("p99 {p99_quiet:.2} ms");
    let met = busy.p99_ms <= 2.0 * p99_quiet.max(1.0) && busy.errors == 0;
    let mut b = row(ctx, "b12", "adminAdd, during convergence", spec.concurrency, busy, "p99 ≤ 2× before", Some(met));
    b.notes = format!("p99 {:.2} vs {p99_quiet:.2} ms before", b.summary.p99_ms);
    Ok(vec![r, q, b])
}

/// B8: time from sending an adminAdd until its membership exists (the request is delivered
/// in the same transaction that adds the membership).
async fn b8(ctx: &Ctx) -> Row {
    let spec = ctx.spec(4);
    let c = ctx.clone();
    let (mut s, t) = load::run(&spec, 1, move |_, _| {
        let c = c.clone();
        async move {
            let (status, body) = c.admin_add().await;
            let Some(id) = body.and_then(|b| b.get("id").and_then(|i| i.as_str()).map(str::to_string)) else {
                return (Outcome::Error, 0);
            };
            if status != 201 {
                return (Outcome::Error, 0);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                let id = id.clone();
                let state = c
                    .store
                    .read(move |c| {
                        c.query_one("SELECT state FROM requests WHERE id = ?", &[Value::from(id)])?
                            .map(|r| r.text(0))
                            .transpose()
                    })
                    .await
                    .ok()
                    .flatten();
                match state.as_deref() {
                    Some("delivered") => return (Outcome::Ok, 0),
                    Some("submitted") | Some("delivering") | None => {}
                    Some(_) => return (Outcome::Error, 0),
                }
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            (Outcome::Error, 0)
        }
    })
    .await;
    let s = s.remove(0).summary(t);
    let met = s.p99_ms <= 20.0 && s.errors == 0;
    let mut r = row(ctx, "b8", "adminAdd → membership exists", spec.concurrency, s, "p99 ≤ 20 ms", Some(met));
    r.notes = "latency includes polling every 0.5 ms".into();
    r
}

/// Polls the state of request `id` until it leaves the states in `passing` (or 10 s pass),
/// every 0.5 ms at first, doubling to at most 4 ms; returns the state it reached.
async fn wait_state(ctx: &Ctx, id: &str, passing: &[&str]) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pause = Duration::from_micros(500);
    loop {
        let state = ctx.request_state(id).await;
        match state.as_deref() {
            None => {}
            Some(s) if passing.contains(&s) => {}
            Some(_) => return state,
        }
        if Instant::now() >= deadline {
            return state;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(4));
    }
}

/// Why B3 flows failed, by step, and how long each step of the measured flows took.
#[derive(Default)]
struct FlowLog {
    errors: std::collections::BTreeMap<String, u64>,
    /// Per measured flow: create, wait for the approval, approver's GET + PATCH, wait for
    /// delivery (microseconds).
    steps: Vec<[u32; 4]>,
}

/// One B3 flow: a fresh user asks for a package under its approval policy (`userAdd` with
/// the user's own token), the package's approver reads the approval and approves its stage,
/// and the flow ends when the request is delivered (its membership exists: both are written
/// in the same transaction). Returns the step durations, or the step that failed.
async fn b3_flow(ctx: &Ctx, approver_auth: &[String]) -> Result<[Duration; 4], String> {
    let n = ctx.pairs.fetch_add(1, Ordering::Relaxed);
    let (user, p) = ctx.manifest.fresh_pair(n);
    let m = &ctx.manifest;
    let user_auth = ctx.user_auth(user).map_err(|e| format!("mint: {e}"))?;
    let t0 = Instant::now();
    let body = json!({"requestType": "userAdd", "justification": "benchmark",
        "assignment": {"accessPackageId": m.package_ids[p], "assignmentPolicyId": m.approval_policy_ids[p]}});
    let (status, created) =
        ctx.send(reqwest::Method::POST, &format!("{EM}/assignmentRequests"), &user_auth, Some(&body)).await;
    let id = created.as_ref().and_then(|b| b.get("id")).and_then(|i| i.as_str()).map(str::to_string);
    let Some(id) = id.filter(|_| status == 201) else {
        let code = created.as_ref().and_then(|b| b.pointer("/error/code")).and_then(|c| c.as_str()).unwrap_or("");
        return Err(format!("userAdd answered {status} {code}"));
    };
    let t1 = Instant::now();
    match wait_state(ctx, &id, &["submitted"]).await.as_deref() {
        Some("pendingApproval") => {}
        other => return Err(format!("request reached {other:?} instead of pendingApproval")),
    }
    let t2 = Instant::now();
    let approver = &approver_auth[p % approver_auth.len().max(1)];
    let path = format!("{EM}/accessPackageAssignmentApprovals/{id}");
    let (status, approval) = ctx.send(reqwest::Method::GET, &path, approver, None).await;
    let stage = approval
        .as_ref()
        .and_then(|a| a.pointer("/stages/0/id"))
        .and_then(|s| s.as_str())
        .filter(|_| status == 200)
        .ok_or_else(|| format!("GET approval answered {status}"))?;
    let decision = json!({"reviewResult": "Approve", "justification": "benchmark"});
    let (status, _) =
        ctx.send(reqwest::Method::PATCH, &format!("{path}/stages/{stage}"), approver, Some(&decision)).await;
    if status != 204 {
        return Err(format!("PATCH stage answered {status}"));
    }
    let t3 = Instant::now();
    match wait_state(ctx, &id, &["pendingApproval", "delivering"]).await.as_deref() {
        Some("delivered") => {}
        other => return Err(format!("request reached {other:?} instead of delivered")),
    }
    Ok([t1 - t0, t2 - t1, t3 - t2, t3.elapsed()])
}

/// B3: create → approve → delivered, 32 flows at once.
async fn b3(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let spec = ctx.spec(32);
    let approver_auth: Arc<Vec<String>> =
        Arc::new(ctx.manifest.approver_ids.iter().map(|a| ctx.user_auth(a)).collect::<anyhow::Result<_>>()?);
    if approver_auth.is_empty() {
        bail!("the dataset has no approvers; seed it again with this grantry-bench");
    }
    let log = Arc::new(std::sync::Mutex::new(FlowLog::default()));
    let measure_from = Instant::now() + spec.warmup;
    let (c, l) = (ctx.clone(), log.clone());
    let (mut s, t) = load::run(&spec, 1, move |_, _| {
        let (c, l, approver_auth) = (c.clone(), l.clone(), approver_auth.clone());
        async move {
            let started = Instant::now();
            let result = b3_flow(&c, &approver_auth).await;
            let mut log = l.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok(steps) => {
                    if started >= measure_from {
                        log.steps.push(steps.map(|d| d.as_micros().min(u32::MAX as u128) as u32));
                    }
                    (Outcome::Ok, 0)
                }
                Err(why) => {
                    *log.errors.entry(why).or_default() += 1;
                    (Outcome::Error, 0)
                }
            }
        }
    })
    .await;
    let s = s.remove(0).summary(t);
    let met = s.throughput >= 3_000.0 && s.errors == 0;
    let mut r = row(ctx, "b3", "userAdd → approve → delivered", spec.concurrency, s, "≥ 3,000 flows/s", Some(met));
    let log = log.lock().unwrap_or_else(|e| e.into_inner());
    let median = |k: usize| {
        let mut v: Vec<u32> = log.steps.iter().map(|s| s[k]).collect();
        v.sort_unstable();
        v.get(v.len() / 2).map(|&us| us as f64 / 1000.0).unwrap_or(0.0)
    };
    r.notes = format!(
        "p50 per step: create {:.2} ms, until pendingApproval {:.2} ms, approver GET+PATCH {:.2} ms, until delivered {:.2} ms; states polled every 0.5–4 ms",
        median(0),
        median(1),
        median(2),
        median(3)
    );
    if !log.errors.is_empty() {
        r.notes.push_str(&format!("; errors: {:?}", log.errors));
    }
    Ok(vec![r])
}

/// B5's read workload (page 1 of package 0's assignments) on one node, then spread over two
/// nodes, both `grantry serve` processes on the same PostgreSQL database: `concurrency`
/// clients per node.
async fn b5x2(ctx: &Ctx, location: &Location) -> anyhow::Result<Vec<Row>> {
    if !matches!(location, Location::Postgres(_)) {
        bail!("b5x2 runs two servers on one database: give a PostgreSQL database with --database-url");
    }
    let spec = ctx.spec(32);
    let dir = ctx.args.data_dir.clone().unwrap_or_else(std::env::temp_dir);
    let (mut a, base_a) = spawn_grantry(&ctx.args, &dir, location).await?;
    let (mut b, base_b) = spawn_grantry(&ctx.args, &dir, location).await?;
    let bases: Arc<Vec<String>> = Arc::new(vec![base_a, base_b]);
    let pids = [a.id().unwrap_or(0), b.id().unwrap_or(0)];
    // Where the CPU went during the measured time: the machine as a whole, PostgreSQL's
    // processes, each node, and this process (the load generator and the idle in-process
    // server).
    let groups = move || {
        report::cpu_sample(&[
            report::Procs::Named("postgres"),
            report::Procs::Pid(pids[0]),
            report::Procs::Pid(pids[1]),
            report::Procs::This,
        ])
    };
    let run = |nodes: usize| {
        let mut spec = spec.clone();
        spec.concurrency *= nodes;
        let (c, bases) = (ctx.clone(), bases.clone());
        async move {
            let warmup = spec.warmup;
            let before = tokio::spawn(async move {
                tokio::time::sleep(warmup).await;
                (Instant::now(), groups())
            });
            let (mut s, t) = load::run(&spec, 1, move |w, _| {
                let (c, bases) = (c.clone(), bases.clone());
                async move {
                    let url = format!("{}{}", bases[w % nodes], c.list_url(0));
                    ok_if(c.get_as(&url, w).await.0, 200)
                }
            })
            .await;
            let cpu = match before.await {
                Ok((t0, b)) => {
                    let (busy, cores) = groups().since(&b, t0.elapsed());
                    format!(
                        "CPU: machine {:.0} % busy; cores used: postgres {:.2}, node A {:.2}, node B {:.2}, load generator {:.2}",
                        busy * 100.0,
                        cores[0],
                        cores[1],
                        cores[2],
                        cores[3]
                    )
                }
                Err(_) => String::new(),
            };
            (s.remove(0).summary(t), cpu)
        }
    };
    let (one, cpu_one) = run(1).await;
    let (two, cpu_two) = run(2).await;
    let _ = a.kill().await;
    let _ = b.kill().await;
    let ratio = two.throughput / one.throughput.max(1e-9);
    let mut rows = vec![];
    let mut r1 = row(ctx, "b5x2", "list page 1, one node (spawned)", spec.concurrency, one, "", None);
    r1.peak_rss_mib = None;
    r1.notes = format!("grantry serve on PostgreSQL; {cpu_one}");
    rows.push(r1);
    let mut r2 = row(
        ctx,
        "b5x2",
        "list page 1, two nodes (spawned)",
        spec.concurrency * 2,
        two,
        "≥ 1.8× one node",
        Some(ratio >= 1.8),
    );
    r2.peak_rss_mib = None;
    r2.notes = format!("{ratio:.2}× one node; clients alternate between the nodes; {cpu_two}");
    rows.push(r2);
    Ok(rows)
}

/// The `grantry` binary next to this program (both are built into the same target dir).
fn grantry_bin(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(b) = &args.grantry_bin {
        return Ok(b.clone());
    }
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name("grantry");
    if !bin.exists() {
        bail!("{} not found: build it with `cargo build --release -p grantry` or pass --grantry-bin", bin.display());
    }
    Ok(bin)
}

/// Spawns `grantry serve` on the dataset; returns the child and its base URL once /ready
/// answers 200.
async fn spawn_grantry(
    args: &Args,
    dir: &Path,
    location: &Location,
) -> anyhow::Result<(tokio::process::Child, String)> {
    let (child, base, _) = spawn_timed(args, dir, location).await?;
    Ok((child, base))
}

/// Spawns `grantry serve` on the dataset (SQLite in `dir`, or the PostgreSQL database);
/// returns the child, its base URL and the time until /ready answered 200.
async fn spawn_timed(
    args: &Args,
    dir: &Path,
    location: &Location,
) -> anyhow::Result<(tokio::process::Child, String, Duration)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().timeout(Duration::from_millis(500)).build()?;
    let t0 = Instant::now();
    let mut cmd = tokio::process::Command::new(grantry_bin(args)?);
    cmd.arg("serve").arg("--listen").arg(format!("127.0.0.1:{port}")).arg("--key-dir").arg(dir.join("keys"));
    match location {
        Location::Sqlite(_) => cmd.arg("--data-dir").arg(dir),
        // The URL goes through the environment, so a password never shows in `ps`.
        Location::Postgres(url) => cmd.env("GRANTRY_DATABASE", url),
    };
    if let (Some(url), Some(from)) = (&args.smtp_url, &args.mail_from) {
        // Through the environment too: the URL may hold a password.
        cmd.env("GRANTRY_SMTP_URL", url).env("GRANTRY_MAIL_FROM", from);
    }
    let mut child = cmd
        .env("GRANTRY_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("spawn grantry")?;
    loop {
        if let Ok(r) = client.get(format!("{base}/ready")).send().await
            && r.status().as_u16() == 200
        {
            return Ok((child, base, t0.elapsed()));
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill().await;
            bail!("grantry did not become ready within 60 s");
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!("grantry exited before it was ready: {status}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// B9: cold start of the binary on the dataset, then restart after kill -9 during writes.
async fn b9(args: &Args, dir: &Path, location: &Location) -> anyhow::Result<Vec<Row>> {
    let mut rows = vec![];
    let one = |what: &str, d: Duration| {
        let secs = d.as_secs_f64();
        Row {
            scenario: "b9".into(),
            what: what.into(),
            concurrency: 0,
            summary: Summary {
                ops: 1,
                errors: 0,
                secs,
                throughput: 0.0,
                p50_ms: secs * 1000.0,
                p99_ms: secs * 1000.0,
                p999_ms: secs * 1000.0,
                max_ms: secs * 1000.0,
            },
            vs_floor: None,
            peak_rss_mib: None,
            target: "ready ≤ 1 s".into(),
            met: Some(d <= Duration::from_secs(1)),
            notes: "spawn → /ready 200 (p50 column)".into(),
        }
    };
    let (mut child, base, cold) = spawn_timed(args, dir, location).await?;
    rows.push(one("cold start", cold));
    // Writes in flight, then kill -9.
    let manifest = Manifest::read(dir)?.context("manifest")?;
    let store = Store::open_location(location, StoreOptions { readers: 1, pg_pool_size: 1, ..Default::default() })
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let keys = TokenKeys::load_or_create(&store, &dir.join("keys")).await.map_err(|e| anyhow::anyhow!(e.message))?;
    drop(store);
    let token = mint(&keys, PrincipalKind::App, "b0000000-0000-4000-8000-000000000009", ALL_APP_ROLES, 3600)?;
    let client = reqwest::Client::new();
    let mut writers = vec![];
    // Use pairs from the far end of the fresh range, so other scenarios' pairs stay unused.
    let base_n = u64::MAX / 2;
    for w in 0..16u64 {
        let (client, base, token, manifest) = (client.clone(), base.clone(), token.clone(), manifest.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..10_000u64 {
                let (user, p) = manifest.fresh_pair(base_n + w * 10_000 + i);
                let body = json!({"requestType": "adminAdd", "assignment": {"targetId": user,
                    "assignmentPolicyId": manifest.policy_ids[p], "accessPackageId": manifest.package_ids[p]}});
                if client
                    .post(format!("{base}{EM}/assignmentRequests"))
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.start_kill()?; // SIGKILL
    let _ = child.wait().await;
    for w in writers {
        let _ = w.await;
    }
    let (mut child, _, restart) = spawn_timed(args, dir, location).await?;
    rows.push(one("restart after kill -9 under writes", restart));
    let _ = child.kill().await;
    let _ = child.wait().await;
    Ok(rows)
}

/// Polls `sql` (one integer, no parameters) until `done` holds or `limit` passes; returns
/// how long it took, or `None` on time-out.
async fn wait_until(ctx: &Ctx, sql: &'static str, limit: Duration, done: impl Fn(i64) -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if done(ctx.count(sql).await) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// B13: an access review of up to 100,000 assignments (one decision item each; the
/// dataset's assigned users, so fewer on the small and medium datasets) ends with the
/// default decision Deny and auto-apply: time until every decision is applied (each
/// assignment removed by a systemRemove request), and the foreground p99 of adminAdd
/// requests (4 clients) before and while it runs.
async fn b13(ctx: &Ctx) -> anyhow::Result<Vec<Row>> {
    let n = ctx.manifest.assigned_count().min(100_000);
    let (status, package) = ctx
        .post(
            &format!("{EM}/accessPackages"),
            &json!({ "displayName": "B13 reviewed", "catalog": { "id": ctx.manifest.catalog_id } }),
        )
        .await;
    let Some(package_id) =
        package.as_ref().and_then(|p| p["id"].as_str()).map(str::to_string).filter(|_| status == 201)
    else {
        bail!("b13: creating the package answered {status}: {package:?}");
    };
    let (_, clock) = ctx.get("/_grantry/clock", true).await;
    let clock: serde_json::Value = serde_json::from_slice(&clock).context("b13: read the development clock")?;
    let now: chrono::DateTime<chrono::Utc> =
        clock["now"].as_str().unwrap_or_default().parse().context("b13: the server needs --dev-clock")?;
    let start = now + chrono::Duration::minutes(1);
    let policy = json!({
        "displayName": "B13 reviewed", "allowedTargetScope": "notSpecified",
        "expiration": { "type": "noExpiration" }, "accessPackage": { "id": package_id },
        "reviewSettings": { "isEnabled": true, "isSelfReview": true, "expirationBehavior": "removeAccess",
            "isReviewerJustificationRequired": false, "isRecommendationEnabled": false,
            "schedule": { "startDateTime": start.to_rfc3339(),
                "expiration": { "type": "afterDuration", "duration": "P7D" },
                "recurrence": { "pattern": { "type": "absoluteMonthly", "interval": 1 }, "range": { "type": "noEnd" } } },
            "primaryReviewers": [], "fallbackReviewers": [] }
    });
    let (status, created) = ctx.post(&format!("{EM}/assignmentPolicies"), &policy).await;
    let Some(policy_id) = created.as_ref().and_then(|p| p["id"].as_str()).map(str::to_string).filter(|_| status == 201)
    else {
        bail!("b13: creating the policy answered {status}: {created:?}");
    };
    // The assignments under review, written straight into the database (as the dataset is).
    let catalog = ctx.manifest.catalog_id.clone();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let (chunk, package_id, policy_id, catalog) =
            (chunk.to_vec(), package_id.clone(), policy_id.clone(), catalog.clone());
        ctx.store
            .write(move |c| {
                for u in chunk {
                    let a = grantry_domain::model::Assignment {
                        id: seed::id_n(0xb13a, u),
                        access_package_id: package_id.clone(),
                        catalog_id: catalog.clone(),
                        policy_id: policy_id.clone(),
                        target_subject_id: seed::id_n(0x05e7, u),
                        state: grantry_domain::enums::AssignmentState::Delivered,
                        status: "Delivered".into(),
                        schedule: Default::default(),
                        answers: vec![],
                        is_extended: false,
                        expired_date_time: None,
                        created_date_time: now,
                        custom_extension_callout_instances: vec![],
                    };
                    grantry_store::repo::insert(c, &a)?;
                }
                Ok(())
            })
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    let spec = ctx.spec(4);
    let foreground = |ctx: &Ctx| {
        let c = ctx.clone();
        let spec = spec.clone();
        async move {
            let (mut s, t) = load::run(&spec, 1, move |_, _| {
                let c = c.clone();
                async move { ok_if(c.admin_add().await.0, 201) }
            })
            .await;
            s.remove(0).summary(t)
        }
    };
    let quiet = foreground(ctx).await;
    // The run opens and lists its items (not measured).
    let c = ctx.clone();
    let opening = tokio::spawn(async move { c.post("/_grantry/clock/advance", &json!({"duration": "PT2M"})).await.0 });
    let target = n as i64;
    let listed =
        wait_until(ctx, "SELECT COUNT(*) FROM review_decisions", Duration::from_secs(3600), |c| c >= target).await;
    let _ = opening.await;
    if listed.is_none() {
        bail!("b13: the review run did not list its {n} items within an hour");
    }
    // The run ends: every item takes the default decision and is applied, under load.
    let fg = tokio::spawn(foreground(ctx));
    let started = Instant::now();
    let c = ctx.clone();
    let ending = tokio::spawn(async move { c.post("/_grantry/clock/advance", &json!({"duration": "P8D"})).await.0 });
    let applied = wait_until(
        ctx,
        "SELECT COUNT(*) FROM review_instances WHERE status = 'Applied'",
        Duration::from_secs(3600),
        |c| c >= 1,
    )
    .await
    .map(|_| started.elapsed());
    let _ = ending.await;
    let removed = ctx.count("SELECT COUNT(*) FROM requests WHERE request_type = 'systemRemove'").await;
    let busy = fg.await.unwrap_or_else(|_| quiet.clone());
    let secs = applied.map(|d| d.as_secs_f64()).unwrap_or(f64::NAN);
    let summary = Summary {
        ops: n as u64,
        errors: if applied.is_some() { 0 } else { 1 },
        secs,
        throughput: n as f64 / secs,
        p50_ms: 0.0,
        p99_ms: 0.0,
        p999_ms: 0.0,
        max_ms: 0.0,
    };
    let mut r = row(ctx, "b13", "review decisions applied", 0, summary, "100,000 applied", Some(applied.is_some()));
    r.notes = format!("{n} decisions (Deny by default) applied in {secs:.1}s; {removed} systemRemove requests");
    let mut rows = vec![r];
    rows.push(row(ctx, "b13", "adminAdd before the review ends", spec.concurrency, quiet.clone(), "", None));
    let mut b = row(
        ctx,
        "b13",
        "adminAdd while decisions are applied",
        spec.concurrency,
        busy.clone(),
        "foreground p99 ≤ 2× before",
        Some(busy.p99_ms <= 2.0 * quiet.p99_ms),
    );
    b.notes = format!("p99 {:.2} ms vs {:.2} ms before", busy.p99_ms, quiet.p99_ms);
    rows.push(b);
    Ok(rows)
}

/// B14: userAdd requests under the packages' approval policies by fresh users with their
/// own tokens, 32 clients: each request waits for an approver, who is told by mail (written
/// to the outbox with the request). Run it with and without --smtp-url to compare the
/// foreground p99 with notifications sent and kept.
async fn b14(ctx: &Ctx) -> Row {
    let spec = ctx.spec(32);
    let before = ctx.count("SELECT COUNT(*) FROM outbox WHERE kind = 'mail'").await;
    let c = ctx.clone();
    let (mut s, t) = load::run(&spec, 1, move |_, _| {
        let c = c.clone();
        async move {
            let n = c.pairs.fetch_add(1, Ordering::Relaxed);
            let (user, p) = c.manifest.fresh_pair(n);
            let Ok(auth) = c.user_auth(user) else { return (Outcome::Error, 0) };
            let body = json!({"requestType": "userAdd", "justification": "benchmark",
                "assignment": {"accessPackageId": c.manifest.package_ids[p], "assignmentPolicyId": c.manifest.approval_policy_ids[p]}});
            ok_if(c.send(reqwest::Method::POST, &format!("{EM}/assignmentRequests"), &auth, Some(&body)).await.0, 201)
        }
    })
    .await;
    let mails = ctx.count("SELECT COUNT(*) FROM outbox WHERE kind = 'mail'").await - before;
    let how = if ctx.args.smtp_url.is_some() { "sent over SMTP" } else { "kept (no SMTP)" };
    let mut r =
        row(ctx, "b14", "userAdd needing approval, approver mail", spec.concurrency, s.remove(0).summary(t), "", None);
    r.notes = format!("{mails} notification mails written, {how}");
    r
}
