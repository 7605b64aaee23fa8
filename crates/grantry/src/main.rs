//! The `grantry` command: `serve`, `token`, `app`, `keys`, `migrate`, `backup`, `copy`, and
//! `export`, `plan` and `apply` (access as code).

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use grantry::config::{self, Database, LogFormat, ServeArgs};
use grantry_api::auth::{MintRequest, TokenKeys, claims_for};
use grantry_api::keyring;
use grantry_core::PrincipalKind;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    name = "grantry",
    version,
    about = "Grantry: entitlement management that speaks the Microsoft Graph API (/v1.0 and /beta)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (default: 127.0.0.1:8080, embedded SQLite under ./grantry-data).
    Serve(Box<ServeArgs>),
    /// Print an access token signed by this server's key (read from its database).
    ///
    /// Either --user (a delegated token for a directory user) or --app (an application
    /// token with the given --roles).
    Token(TokenArgs),
    /// Create the database if needed and apply pending schema migrations, then exit.
    Migrate(DbArgs),
    /// Register applications that obtain tokens from POST /{tenant}/oauth2/v2.0/token with
    /// a client secret (the client credentials grant, as with Entra).
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    /// Write a development CA and a certificate it signed for --hostname, to serve HTTPS
    /// with (`--tls-cert DIR/cert.pem --tls-key DIR/key.pem`; clients trust DIR/ca.pem).
    Cert(CertArgs),
    /// Manage the token signing keys (kept in the key directory, not in the database).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Copy the embedded SQLite database into a new file while the server runs.
    ///
    /// The copy is consistent as of the moment it starts: it holds every write the server
    /// acknowledged before then. An existing --out file is never overwritten. For
    /// PostgreSQL use pg_dump (see docs/operations.md).
    Backup(BackupArgs),
    /// Copy an embedded SQLite database into a new, empty PostgreSQL database.
    ///
    /// The source is read as one consistent snapshot (stop the server first, or a running
    /// server's writes after the copy starts are not in it). The target gets the schema and
    /// every row in one transaction, verified table by table (row counts and checksums)
    /// before it commits; a target that holds any data is refused.
    Copy(CopyArgs),
    /// Write the governance configuration of a server (catalogs, resources, custom
    /// extensions, access packages, role scopes, incompatibilities, policies) as YAML.
    ///
    /// Names are the keys, sorted; users are named by userPrincipalName and groups by
    /// display name. Ids are left out (--ids writes them to a separate file).
    Export(ExportArgs),
    /// Show what `apply FILE` would change on the server and, for each change, who gains
    /// and who loses access. Writes nothing. Ends with the plan's id for `apply --plan`.
    Plan(PlanArgs),
    /// Make the changes `plan FILE` shows, all or nothing (see docs/operations.md).
    ///
    /// With --plan ID, only if the server is still as it was when that plan was made.
    Apply(ApplyArgs),
    /// SCIM 2.0 provisioning at /scim/v2 (identity providers push users and groups).
    Scim {
        #[command(subcommand)]
        command: ScimCommand,
    },
}

#[derive(clap::Args)]
struct ExportArgs {
    #[command(flatten)]
    connect: grantry::ascode::ConnectArgs,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Also write the ids behind the names to this file.
    #[arg(long, value_name = "FILE")]
    ids: Option<PathBuf>,
}

#[derive(clap::Args)]
struct PlanArgs {
    #[command(flatten)]
    connect: grantry::ascode::ConnectArgs,
    /// The configuration file (as written by `grantry export`).
    file: PathBuf,
}

#[derive(clap::Args)]
struct ApplyArgs {
    #[command(flatten)]
    connect: grantry::ascode::ConnectArgs,
    /// The configuration file.
    file: PathBuf,
    /// The id `grantry plan` printed: apply only if the plan is still the same.
    #[arg(long, value_name = "ID", required_unless_present = "force")]
    plan: Option<String>,
    /// Apply without a reviewed plan (whatever the server holds now).
    #[arg(long, conflicts_with = "plan")]
    force: bool,
}

#[derive(Subcommand)]
enum ScimCommand {
    /// Manage the bearer tokens SCIM clients (Entra, Okta…) authenticate with.
    Token {
        #[command(subcommand)]
        command: ScimTokenCommand,
    },
}

#[derive(Subcommand)]
enum ScimTokenCommand {
    /// Create a token; prints it (shown only now; stored as a hash). Give it to the
    /// identity provider as its "Secret Token" with the tenant URL https://HOST/scim/v2.
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// A name for the token, e.g. entra-provisioning.
        name: String,
    },
    /// List the tokens (names and hints only).
    List(DbArgs),
    /// Revoke a token by name; requests bearing it are refused from then on.
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        name: String,
    },
}

#[derive(clap::Args)]
struct CopyArgs {
    /// The SQLite database to copy: sqlite:PATH.
    #[arg(long, value_name = "URL")]
    from: String,
    /// The empty PostgreSQL database to copy into: postgres://USER[:PASSWORD]@HOST[:PORT]/DB.
    #[arg(long, value_name = "URL")]
    to: String,
}

#[derive(clap::Args)]
struct BackupArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The backup file to create (must not exist yet).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum AppCommand {
    /// Register an application; prints its client id, a client secret (shown only now;
    /// stored as a hash) and the tenant id.
    Create {
        #[command(flatten)]
        db: DbArgs,
        /// The application's display name.
        name: String,
        /// Graph application permissions its tokens carry, comma-separated.
        #[arg(long, value_name = "ROLES")]
        roles: String,
        /// Lifetime of the client secret (e.g. 180d); default: no expiry.
        #[arg(long, value_name = "LIFETIME")]
        secret_expires_in: Option<String>,
        /// The client id an external identity provider gave the application (its tokens'
        /// azp, appid or client_id claim), so its application tokens are accepted
        /// [default: a new random id].
        #[arg(long, value_name = "ID")]
        client_id: Option<String>,
    },
    /// List the registered applications and their secrets (hints only).
    List(DbArgs),
    /// Remove an application (by appId, object id or name); its tokens stop working.
    Remove {
        #[command(flatten)]
        db: DbArgs,
        app: String,
    },
    /// Add or remove client secrets.
    Secret {
        #[command(subcommand)]
        command: SecretCommand,
    },
}

#[derive(Subcommand)]
enum SecretCommand {
    /// Add a client secret to an application; prints it (shown only now) and its key id.
    Add {
        #[command(flatten)]
        db: DbArgs,
        app: String,
        /// A name for the secret.
        #[arg(long)]
        name: Option<String>,
        /// Lifetime of the secret (e.g. 180d); default: no expiry.
        #[arg(long, value_name = "LIFETIME")]
        expires_in: Option<String>,
    },
    /// Remove a client secret by its key id (see `grantry app list`).
    Remove {
        #[command(flatten)]
        db: DbArgs,
        app: String,
        key_id: String,
    },
}

#[derive(clap::Args)]
struct CertArgs {
    /// Write a self-signed development certificate (the only kind this command makes).
    #[arg(long, required = true)]
    self_signed: bool,
    /// Host name (or IP address) the certificate is for; repeat for several.
    #[arg(long = "hostname", value_name = "H", required = true)]
    hostnames: Vec<String>,
    /// Directory to write ca.pem, cert.pem and key.pem into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new signing key and retire the current one. Tokens signed by the retired key
    /// keep verifying until they expire; keys retired more than 30 days ago are deleted.
    /// Running servers pick the new key up within seconds.
    Rotate(KeyDirArgs),
    /// List the signing keys: id, creation time, and whether each signs or is retired.
    List(KeyDirArgs),
}

#[derive(clap::Args)]
struct KeyDirArgs {
    /// Data directory (the key directory defaults to `keys` in it).
    #[arg(long, env = "GRANTRY_DATA_DIR", value_name = "DIR", default_value = config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Directory of the token signing keys.
    #[arg(long, env = "GRANTRY_KEY_DIR", value_name = "DIR")]
    key_dir: Option<PathBuf>,
}

impl KeyDirArgs {
    fn dir(&self) -> PathBuf {
        self.key_dir.clone().unwrap_or_else(|| config::default_key_dir(&self.data_dir))
    }
}

#[derive(clap::Args)]
struct DbArgs {
    /// Directory of the embedded database (used when --database is not given).
    #[arg(long, env = "GRANTRY_DATA_DIR", value_name = "DIR", default_value = config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Database URL (`sqlite:PATH` or `postgres://USER@HOST:PORT/DB`).
    #[arg(long, env = "GRANTRY_DATABASE", value_name = "URL")]
    database: Option<String>,
}

#[derive(clap::Args)]
struct TokenArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Directory of the token signing keys (default: `keys` in the data directory).
    #[arg(long, env = "GRANTRY_KEY_DIR", value_name = "DIR")]
    key_dir: Option<PathBuf>,
    /// Delegated token for this user (object id or userPrincipalName).
    #[arg(long, conflicts_with = "app", required_unless_present = "app")]
    user: Option<String>,
    /// Delegated scopes, comma- or space-separated.
    #[arg(
        long,
        requires = "user",
        default_value = "EntitlementManagement.ReadWrite.All,User.ReadWrite.All,Group.ReadWrite.All,RoleManagement.ReadWrite.Directory"
    )]
    scopes: String,
    /// Application token for an application of this name.
    #[arg(long)]
    app: Option<String>,
    /// Application roles (permissions), comma-separated.
    #[arg(long, requires = "app", default_value = "EntitlementManagement.ReadWrite.All")]
    roles: String,
    /// Lifetime: seconds, or a number with s/m/h/d (e.g. 90m, 12h), or ISO-8601 (PT1H);
    /// at most 30 days.
    #[arg(long, default_value = "1h")]
    expires_in: String,
}

fn split_list(s: &str) -> Vec<String> {
    s.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()).map(str::to_string).collect()
}

fn parse_lifetime(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    if s.starts_with('P') || s.starts_with('p') {
        return grantry_domain::duration::parse(s).map(|d| d.num_seconds()).map_err(|e| anyhow::anyhow!(e));
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 =
        num.parse().with_context(|| format!("--expires-in '{s}' is not a lifetime like 3600, 90m, 12h or PT1H"))?;
    Ok(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => bail!("--expires-in '{s}' has an unknown unit; use s, m, h or d"),
    })
}

fn open(db: &DbArgs) -> anyhow::Result<grantry_store::Store> {
    grantry::open_store(&config::parse_database(db.database.as_deref(), &db.data_dir)?)
}

fn expiry(
    now: chrono::DateTime<chrono::Utc>,
    lifetime: Option<&str>,
) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    let Some(lifetime) = lifetime else { return Ok(None) };
    let secs = parse_lifetime(lifetime)?;
    if secs <= 0 {
        bail!("a secret's lifetime must be positive");
    }
    Ok(Some(now + chrono::Duration::seconds(secs)))
}

fn print_app(a: &grantry_core::applications::Application) {
    println!("{}  {}  roles: {}", a.app_id, a.display_name, a.roles.join(","));
    for s in &a.secrets {
        let expires = s.expires.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_else(|| "never".into());
        println!("    secret {}  {}…  expires {expires}", s.key_id, s.hint);
    }
}

async fn run_scim_token(command: ScimTokenCommand) -> anyhow::Result<()> {
    use grantry_core::scim;
    let err = |e: grantry_domain::Error| anyhow::anyhow!(e.message);
    // Token times follow the wall clock, as application secrets do.
    #[allow(clippy::disallowed_methods)]
    let now = grantry_domain::clock::truncate_micros(chrono::Utc::now());
    match command {
        ScimTokenCommand::Create { db, name } => {
            let (token, secret) = scim::create_token(&open(&db)?, now, &name).await.map_err(err)?;
            println!("{secret}");
            eprintln!("SCIM token '{}' created; it is shown only now (Grantry keeps only its hash).", token.name);
        }
        ScimTokenCommand::List(db) => {
            for t in scim::list_tokens(&open(&db)?).await.map_err(err)? {
                println!("{}  {}…  created {}", t.name, t.hint, t.created.format("%Y-%m-%dT%H:%M:%SZ"));
            }
        }
        ScimTokenCommand::Revoke { db, name } => {
            scim::revoke_token(&open(&db)?, &name).await.map_err(err)?;
            println!("revoked {name}");
        }
    }
    Ok(())
}

async fn run_app(command: AppCommand) -> anyhow::Result<()> {
    use grantry_core::applications;
    let err = |e: grantry_domain::Error| anyhow::anyhow!(e.message);
    // Secret times follow the wall clock, as tokens do.
    #[allow(clippy::disallowed_methods)]
    let now = grantry_domain::clock::truncate_micros(chrono::Utc::now());
    match command {
        AppCommand::Create { db, name, roles, secret_expires_in, client_id } => {
            let store = open(&db)?;
            let expires = expiry(now, secret_expires_in.as_deref())?;
            let tenant = grantry_api::auth::tenant_id(&store).await.map_err(err)?;
            let (app, secret) = applications::create_with_client_id(
                &store,
                now,
                &name,
                &split_list(&roles),
                expires,
                client_id.as_deref(),
            )
            .await
            .map_err(err)?;
            println!("client_id:     {}", app.app_id);
            println!("client_secret: {secret}");
            println!("tenant_id:     {tenant}");
            println!("roles:         {}", app.roles.join(","));
            eprintln!("The secret is shown only now; Grantry keeps only its hash.");
        }
        AppCommand::List(db) => {
            let store = open(&db)?;
            for app in store.read(applications::all).await.map_err(err)? {
                print_app(&app);
            }
        }
        AppCommand::Remove { db, app } => {
            let removed = applications::remove(&open(&db)?, &app).await.map_err(err)?;
            println!("removed {} ({})", removed.display_name, removed.app_id);
        }
        AppCommand::Secret { command: SecretCommand::Add { db, app, name, expires_in } } => {
            let expires = expiry(now, expires_in.as_deref())?;
            let (app, info, secret) =
                applications::add_secret(&open(&db)?, now, &app, name, expires).await.map_err(err)?;
            println!("client_id:     {}", app.app_id);
            println!("client_secret: {secret}");
            println!("key_id:        {}", info.key_id);
            eprintln!("The secret is shown only now; Grantry keeps only its hash.");
        }
        AppCommand::Secret { command: SecretCommand::Remove { db, app, key_id } } => {
            applications::remove_secret(&open(&db)?, &app, &key_id).await.map_err(err)?;
            println!("removed secret {key_id}");
        }
    }
    Ok(())
}

/// Where the data lives, for the start-up line: the SQLite file as an absolute path, or the
/// PostgreSQL URL without its password.
fn data_location(database: &Database) -> String {
    match database {
        Database::Sqlite(path) => format!("sqlite:{}", absolute(path).display()),
        Database::Postgres(_) => database.describe(),
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The command that mints a token this server accepts: the same program, pointed at the
/// same database and key directory by absolute paths, so it works from any directory. A
/// PostgreSQL password is shown as `***` (the log must not carry it).
fn token_command(database: &Database, key_dir: &Path) -> String {
    let program = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .map(|p| if p.components().count() > 1 { absolute(&p) } else { p })
        .unwrap_or_else(|| PathBuf::from("grantry"));
    let key_dir = absolute(key_dir);
    let key_dir_arg = format!(" --key-dir {}", shell_quote(&key_dir.display().to_string()));
    let target = match database {
        Database::Sqlite(path) => {
            let path = absolute(path);
            match path.parent() {
                Some(dir) if path.file_name() == Some(std::ffi::OsStr::new("grantry.db")) => {
                    // The key directory is implied when it is the data directory's own.
                    let keys = if key_dir == config::default_key_dir(dir) { "" } else { &key_dir_arg };
                    format!("--data-dir {}{keys}", shell_quote(&dir.display().to_string()))
                }
                _ => format!("--database {}{key_dir_arg}", shell_quote(&format!("sqlite:{}", path.display()))),
            }
        }
        Database::Postgres(_) => format!("--database {}{key_dir_arg}", shell_quote(&database.describe())),
    };
    format!(
        "{} token {target} --app setup --roles {}",
        shell_quote(&program.display().to_string()),
        "EntitlementManagement.ReadWrite.All,User.ReadWrite.All,Group.ReadWrite.All,RoleManagement.ReadWrite.Directory"
    )
}

/// Quotes `s` for a POSIX shell when it holds anything but plain path characters.
fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._:@=,+-%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `grantry token` never creates a database: a token signed by a fresh one would be
/// refused by the server, which uses another. Says where it looked and how to point it at
/// the server's database.
fn refuse_without_database(database: &Database, args: &DbArgs) -> anyhow::Result<()> {
    let location = match database {
        Database::Sqlite(path) => grantry_store::Location::Sqlite(path.clone()),
        Database::Postgres(url) => grantry_store::Location::Postgres(url.clone()),
    };
    let how = "Start the server first (`grantry serve` creates its database and prints the `grantry token` command \
               for it), or point this command at the running server's database with --data-dir DIR or --database URL \
               (or GRANTRY_DATA_DIR / GRANTRY_DATABASE), the same as the server's.";
    let found = location
        .holds_grantry_data()
        .map_err(|e| anyhow::anyhow!("cannot read the database {}: {}. {how}", database.describe(), e.message))?;
    if found {
        return Ok(());
    }
    let looked_at = match database {
        Database::Sqlite(path) if args.database.is_none() => {
            let dir = absolute(&args.data_dir);
            let default = if args.data_dir == Path::new(config::DEFAULT_DATA_DIR) {
                format!(" (the default --data-dir {}, relative to the current directory)", config::DEFAULT_DATA_DIR)
            } else {
                String::new()
            };
            format!(
                "no Grantry database in the data directory {}{default}: {} does not exist",
                dir.display(),
                absolute(path).display()
            )
        }
        Database::Sqlite(path) => {
            format!("no Grantry database at {}: the file does not exist", absolute(path).display())
        }
        Database::Postgres(_) => format!(
            "the PostgreSQL database {} holds no Grantry data (no Grantry server has started on it)",
            database.describe()
        ),
    };
    bail!("{looked_at}. {how}")
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("GRANTRY_LOG").unwrap_or_else(|_| "info".into());
    // Colour only for a person at a terminal (https://no-color.org: any non-empty NO_COLOR
    // turns it off); journald, docker logs and files get plain text.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// SIGTERM (what systemd, Docker and Kubernetes send to stop a service) and SIGINT (Ctrl-C):
/// both start the same graceful shutdown.
struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> anyhow::Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignals {
                term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
                int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Waits for the next stop signal and names it.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// `grantry copy`: progress on standard error (redrawn in place on a terminal, one line
/// per table otherwise), the verified tables on standard output.
async fn copy(args: CopyArgs) -> anyhow::Result<()> {
    use std::io::{IsTerminal, Write};
    let source = match grantry_store::Location::parse(&args.from).map_err(|e| anyhow::anyhow!(e.message))? {
        grantry_store::Location::Sqlite(path) => path,
        grantry_store::Location::Postgres(_) => bail!("--from must be the SQLite database to copy (sqlite:PATH)"),
    };
    let target = match grantry_store::Location::parse(&args.to).map_err(|e| anyhow::anyhow!(e.message))? {
        grantry_store::Location::Postgres(url) => url,
        grantry_store::Location::Sqlite(_) => {
            bail!(
                "--to must be a PostgreSQL database (postgres://USER@HOST:PORT/DB); to copy SQLite to SQLite use grantry backup"
            )
        }
    };
    let shown_target = grantry_store::Location::Postgres(target.clone()).describe();
    let shown_source = format!("sqlite:{}", source.display());
    let started = std::time::Instant::now();
    let (from, to) = (shown_source.clone(), shown_target.clone());
    let copied = tokio::task::spawn_blocking(move || {
        let terminal = std::io::stderr().is_terminal();
        let mut err = std::io::stderr();
        let mut verifying = false;
        let mut report = |p: grantry_store::copy::Progress<'_>| match p {
            grantry_store::copy::Progress::Rows { table, done, total } => {
                if terminal {
                    let _ = write!(err, "\r\x1b[2Kcopying {table}: {done}/{total} rows");
                    if done == total {
                        let _ = writeln!(err);
                    }
                } else if done == total {
                    let _ = writeln!(err, "copied {table}: {total} rows");
                }
            }
            grantry_store::copy::Progress::Verifying { .. } => {
                if !verifying {
                    let _ = writeln!(err, "verifying row counts and checksums of every table");
                    verifying = true;
                }
            }
        };
        grantry_store::copy::sqlite_to_postgres(&source, &target, &mut report)
    })
    .await
    .context("the copy was interrupted")?
    .map_err(|e| anyhow::anyhow!("cannot copy {from} to {to}: {}", e.message))?;
    let rows: u64 = copied.iter().map(|t| t.rows).sum();
    for t in &copied {
        println!("{:<40} {:>10} rows  checksum {:016x}  verified", t.table, t.rows, t.checksum);
    }
    println!(
        "copied {shown_source} to {shown_target}: {} tables, {rows} rows, verified, in {:.1} s",
        copied.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn read_as_code_file(path: &Path) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((path.display().to_string(), text))
}

/// Bad input is shown as FILE:LINE: message lines, without anyhow's "Error:" chain.
fn input_errors(e: anyhow::Error) -> anyhow::Error {
    match e.downcast::<grantry::ascode::InputErrors>() {
        Ok(errors) => {
            eprintln!("{errors}");
            eprintln!("the file was refused; nothing was changed");
            std::process::exit(2)
        }
        Err(e) => e,
    }
}

async fn as_code_export(args: ExportArgs) -> anyhow::Result<()> {
    let graph = grantry::ascode::Graph::connect(&args.connect).await?;
    let exported = grantry::ascode::export(&graph, &grantry::ascode::progress()).await;
    grantry::ascode::progress_done();
    let exported = exported?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, &exported.yaml).with_context(|| format!("cannot write {}", path.display()))?
        }
        None => print!("{}", exported.yaml),
    }
    if let Some(path) = &args.ids {
        std::fs::write(path, &exported.ids).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

async fn as_code_plan(args: PlanArgs) -> anyhow::Result<()> {
    let (file, text) = read_as_code_file(&args.file)?;
    let graph = grantry::ascode::Graph::connect(&args.connect).await?;
    let plan = grantry::ascode::plan(&graph, &file, &text, &grantry::ascode::progress()).await;
    grantry::ascode::progress_done();
    let plan = plan.map_err(input_errors)?;
    print!("{}", plan.render(graph.base()));
    if !plan.steps.is_empty() {
        println!("apply it with: grantry apply {file} --plan {}", plan.id);
    }
    Ok(())
}

async fn as_code_apply(args: ApplyArgs) -> anyhow::Result<()> {
    let (file, text) = read_as_code_file(&args.file)?;
    let graph = grantry::ascode::Graph::connect(&args.connect).await?;
    let result = grantry::ascode::apply(&graph, &file, &text, args.plan.as_deref(), &grantry::ascode::progress()).await;
    grantry::ascode::progress_done();
    let (plan, applied) = result.map_err(input_errors)?;
    for line in applied.done.iter().chain(&applied.notes) {
        println!("{line}");
    }
    println!("applied plan {}: {} change(s) to {}", plan.id, applied.done.len(), graph.base());
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            init_logging(config.log_format);
            // Listen for signals before serving, so a stop that comes at once is graceful too.
            let mut signals = StopSignals::listen()?;
            let server = grantry::start(config.clone()).await?;
            // The message stays exactly "grantry is listening": scripts and tests look for it.
            tracing::info!(address = %server.addr, base_url = %server.base_url, index = %format!("{}/", server.base_url), metrics_address = ?server.metrics_addr, database = ?config.database, dev_clock = config.dev_clock, "grantry is listening");
            let data = data_location(&config.database);
            tracing::info!("data is kept in {data}");
            let token_command = token_command(&config.database, &config.key_dir);
            let password_note =
                if token_command.contains(":***@") { " (put the password in place of ***)" } else { "" };
            tracing::info!("get a token for this server with: {token_command}{password_note}");
            if let Some(clock) = &server.state.app.dev_clock {
                let offset = grantry_domain::duration::format(clock.offset());
                tracing::warn!(
                    "DEVELOPMENT CLOCK ON: administrators can move time forward (POST /_grantry/clock/advance; offset now {offset}). Never run production with --dev-clock."
                );
            }
            if config.dev_login {
                eprintln!(
                    "\n  *** DEVELOPMENT SIGN-IN ON (--dev-login): anyone can sign in to the portal as any directory user. ***\n  *** Never run a real server with it.                                                                  ***\n"
                );
                tracing::warn!(
                    "DEVELOPMENT SIGN-IN ON: the portal lets anyone sign in as any directory user (--dev-login). Never run production with it."
                );
            }
            let portal_note = match (&config.portal_sign_in, config.dev_login) {
                (Some(_), _) => "people sign in with the organization's OpenID provider",
                (None, true) => "pick a user to sign in as",
                (None, false) => "sign-in needs --portal-client-id with --oidc-issuer, or --dev-clock --dev-login",
            };
            tracing::info!("web portal: open {}/ in a browser ({portal_note})", server.base_url);
            let signal = signals.next().await;
            tracing::info!(
                signal,
                grace_seconds = config.shutdown_grace.as_secs(),
                "shutting down: no longer accepting connections, finishing requests in flight"
            );
            tokio::select! {
                report = server.shutdown() => {
                    if report.completed {
                        tracing::info!(open_connections = report.open_connections, "shut down: every request in flight was answered and every write committed");
                    } else {
                        tracing::warn!(open_connections = report.open_connections, grace_seconds = config.shutdown_grace.as_secs(), "shut down when the grace period ran out: requests or background work still running were abandoned (none of them had been acknowledged)");
                    }
                }
                again = signals.next() => {
                    tracing::warn!(signal = again, "second stop signal: exiting at once (acknowledged writes are committed)");
                    std::process::exit(1);
                }
            }
            Ok(())
        }
        Command::Migrate(db) => {
            let database = config::parse_database(db.database.as_deref(), &db.data_dir)?;
            let applied = match &database {
                Database::Sqlite(path) => grantry_store::Store::migrate_sqlite(path),
                Database::Postgres(url) => grantry_store::Store::migrate(url),
            }
            .map_err(|e| anyhow::anyhow!("cannot migrate {}: {}", database.describe(), e.message))?;
            if applied.is_empty() {
                println!("{}: schema is up to date", database.describe());
            } else {
                println!("{}: applied migrations {:?}", database.describe(), applied);
            }
            Ok(())
        }
        Command::Backup(args) => {
            let database = config::parse_database(args.db.database.as_deref(), &args.db.data_dir)?;
            let Database::Sqlite(source) = &database else {
                bail!(
                    "grantry backup copies the embedded SQLite database; {} is PostgreSQL: back it up with pg_dump or a base backup (see docs/operations.md)",
                    database.describe()
                );
            };
            let (source, out) = (source.clone(), args.out.clone());
            let summary = tokio::task::spawn_blocking(move || grantry_store::backup::backup_sqlite(&source, &out))
                .await
                .context("the backup was interrupted")?
                .map_err(|e| anyhow::anyhow!("cannot back up {}: {}", database.describe(), e.message))?;
            let rows: i64 = summary.rows.iter().map(|(_, n)| n).sum();
            println!(
                "backed up {} to {}: {} bytes, {} tables, {} rows, integrity check ok",
                database.describe(),
                args.out.display(),
                summary.bytes,
                summary.rows.len(),
                rows
            );
            Ok(())
        }
        Command::App { command } => run_app(command).await,
        Command::Scim { command: ScimCommand::Token { command } } => run_scim_token(command).await,
        Command::Cert(args) => {
            let _ = args.self_signed;
            let written = grantry::tls::self_signed(&args.hostnames, &args.out)?;
            println!("certificate: {}", written.cert.display());
            println!("private key: {}", written.key.display());
            println!("CA to trust: {}", written.ca.display());
            Ok(())
        }
        Command::Keys { command } => {
            #[allow(clippy::disallowed_methods)] // key times follow the wall clock, as tokens do
            let now = chrono::Utc::now().timestamp();
            match command {
                KeysCommand::Rotate(args) => {
                    let dir = args.dir();
                    if keyring::load(&dir).map_err(|e| anyhow::anyhow!(e.message))?.active().is_none() {
                        bail!("{} has no signing key yet; it is created when the server first starts", dir.display());
                    }
                    let kid = keyring::rotate(&dir, now).map_err(|e| anyhow::anyhow!(e.message))?;
                    println!("{kid}");
                }
                KeysCommand::List(args) => {
                    let set = keyring::load(&args.dir()).map_err(|e| anyhow::anyhow!(e.message))?;
                    let active = set.active().map(|k| k.kid.clone());
                    for key in &set.keys {
                        let created = chrono::DateTime::from_timestamp(key.created, 0).unwrap_or_default();
                        let state = match key.retired {
                            _ if Some(&key.kid) == active.as_ref() => "signing".to_string(),
                            Some(at) => format!(
                                "retired {}",
                                chrono::DateTime::from_timestamp(at, 0)
                                    .unwrap_or_default()
                                    .format("%Y-%m-%dT%H:%M:%SZ")
                            ),
                            None => "verifying".to_string(),
                        };
                        println!("{}  ES256  created {}  {state}", key.kid, created.format("%Y-%m-%dT%H:%M:%SZ"));
                    }
                }
            }
            Ok(())
        }
        Command::Copy(args) => copy(args).await,
        Command::Export(args) => as_code_export(args).await,
        Command::Plan(args) => as_code_plan(args).await,
        Command::Apply(args) => as_code_apply(args).await,
        Command::Token(args) => {
            let database = config::parse_database(args.db.database.as_deref(), &args.db.data_dir)?;
            refuse_without_database(&database, &args.db)?;
            let store = grantry::open_store(&database)?;
            let key_dir = args.key_dir.clone().unwrap_or_else(|| config::default_key_dir(&args.db.data_dir));
            // Nor a signing key: the server would not know it.
            if keyring::load(&key_dir).map_err(|e| anyhow::anyhow!(e.message))?.active().is_none() {
                bail!(
                    "no signing key in the key directory {}. Start the server first (it creates its key and prints the \
                     `grantry token` command for it), or point this command at the server's key directory with --key-dir DIR \
                     (or GRANTRY_KEY_DIR), the same as the server's.",
                    absolute(&key_dir).display()
                );
            }
            let lifetime = parse_lifetime(&args.expires_in)?;
            if lifetime <= 0 {
                bail!("--expires-in must be positive");
            }
            // Retired keys are kept this long, so no token may outlive its key.
            if lifetime > keyring::MAX_TOKEN_LIFETIME_SECS {
                bail!("--expires-in must be at most 30 days (30d)");
            }
            let keys = TokenKeys::load_or_create(&store, &key_dir).await.map_err(|e| anyhow::anyhow!(e.message))?;
            #[allow(clippy::disallowed_methods)] // token lifetimes follow the wall clock
            let now = chrono::Utc::now().timestamp();
            let request = if let Some(app) = args.app {
                let app_id = grantry_domain::ids::new_id();
                MintRequest {
                    kind: PrincipalKind::App,
                    object_id: app_id.clone(),
                    app_id,
                    display_name: Some(app),
                    upn: None,
                    permissions: split_list(&args.roles),
                    wids: Vec::new(),
                    issued_at: now,
                    lifetime_secs: lifetime,
                }
            } else {
                let who = args.user.unwrap_or_default();
                let key = who.clone();
                let (user, wids) = store
                    .read(move |c| {
                        let user = grantry_core::directory::find_user(c, &key)?;
                        let wids = match &user {
                            Some(u) => c
                                .query(
                                    "SELECT role_definition_id FROM role_assignments WHERE principal_id = ? AND provider = 'directory'",
                                    &[grantry_store::Value::from(&u.id)],
                                )?
                                .iter()
                                .map(|r| r.text(0))
                                .collect::<grantry_domain::Result<Vec<_>>>()?,
                            None => Vec::new(),
                        };
                        Ok((user, wids))
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!(e.message))?;
                let user = user.with_context(|| {
                    format!("no user '{who}' exists in this Grantry database; create it first with POST /v1.0/users")
                })?;
                MintRequest {
                    kind: PrincipalKind::User,
                    object_id: user.id.clone(),
                    app_id: "a0c7e1e4-0000-4000-8000-6772616e7472".into(),
                    display_name: Some(user.display_name.clone()),
                    upn: Some(user.user_principal_name.clone()),
                    permissions: split_list(&args.scopes),
                    wids,
                    issued_at: now,
                    lifetime_secs: lifetime,
                }
            };
            let token = keys.mint(&claims_for(&keys, request)).map_err(|e| anyhow::anyhow!(e.message))?;
            println!("{token}");
            Ok(())
        }
    }
}
