//! Configuration: command-line flags, then `GRANTRY_*` environment variables, then an
//! optional TOML file, then defaults — in that order of precedence.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "./grantry-data";
/// The default largest request body, in bytes.
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Settings of `grantry serve` as given (flags or environment); `None` means "not given".
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "GRANTRY_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Directory for the embedded database, used when --database is not given
    /// [default: ./grantry-data].
    #[arg(long, env = "GRANTRY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite:PATH` (embedded) or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` (several servers may share it)
    /// [default: sqlite:<data-dir>/grantry.db].
    #[arg(long, env = "GRANTRY_DATABASE", value_name = "URL")]
    pub database: Option<String>,
    /// Externally visible base URL, used in @odata.context and @odata.nextLink
    /// [default: http://<listen address>].
    #[arg(long, env = "GRANTRY_PUBLIC_BASE_URL", value_name = "URL")]
    pub public_base_url: Option<String>,
    /// Log format: text or json [default: text]. Text has no colour codes unless standard
    /// error is a terminal and NO_COLOR is unset.
    #[arg(long, env = "GRANTRY_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Largest request body accepted, in bytes [default: 4194304].
    #[arg(long, env = "GRANTRY_BODY_LIMIT", value_name = "BYTES")]
    pub body_limit: Option<usize>,
    /// Enable the development clock (POST /_grantry/clock/advance) [default: false]. Never
    /// enable it in production: it lets administrators move time forward.
    #[arg(long, env = "GRANTRY_DEV_CLOCK", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub dev_clock: Option<bool>,
    /// Seconds a client may take to send a request's headers, and its body, before it is
    /// disconnected (headers) or answered 408 (body) [default: 15].
    #[arg(long, env = "GRANTRY_READ_TIMEOUT", value_name = "SECONDS")]
    pub read_timeout: Option<u64>,
    /// Seconds to let in-flight requests finish after SIGTERM or Ctrl-C before exiting
    /// anyway [default: 30].
    #[arg(long, env = "GRANTRY_SHUTDOWN_GRACE", value_name = "SECONDS")]
    pub shutdown_grace: Option<u64>,
    /// PEM certificate chain to serve HTTPS with (with --tls-key) [default: none, plain HTTP].
    #[arg(long, env = "GRANTRY_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert [default: none].
    #[arg(long, env = "GRANTRY_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Directory of the token signing keys (private keys, kept out of the database)
    /// [default: <data-dir>/keys]. Servers sharing a PostgreSQL database must share this
    /// directory too.
    #[arg(long, env = "GRANTRY_KEY_DIR", value_name = "DIR")]
    pub key_dir: Option<PathBuf>,
    /// Also serve GET /metrics on this address, without a token (keep it on a private
    /// network) [default: none]. On the main address /metrics needs an administrator's
    /// token.
    #[arg(long, env = "GRANTRY_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Destinations outbound calls (custom extension callouts, event webhooks) may reach
    /// besides public addresses: host names, host:port and CIDR ranges, comma-separated (e.g.
    /// `127.0.0.0/8,hooks.internal:8443`). Loopback, private and link-local addresses are
    /// refused unless listed [default: none].
    #[arg(long, env = "GRANTRY_OUTBOUND_ALLOW", value_name = "LIST")]
    pub outbound_allow: Option<String>,
    /// Milliseconds of database statement time one request may use; a request that needs
    /// more is stopped and answered 400 [default: 5000].
    #[arg(long, env = "GRANTRY_STATEMENT_BUDGET_MS", value_name = "MS")]
    pub statement_budget_ms: Option<u64>,
    /// Expensive queries (with $filter, $search, $orderby or $count) one caller may run at
    /// once; more are answered 429 with Retry-After [default: 4].
    #[arg(long, env = "GRANTRY_EXPENSIVE_QUERIES_PER_CALLER", value_name = "N")]
    pub expensive_queries_per_caller: Option<usize>,
    /// Trust access tokens from this OpenID issuer (its `iss`, e.g.
    /// https://login.example.com/realms/corp); keys come from its discovery document. More
    /// issuers, and their options, go in `[[oidc]]` tables of the configuration file
    /// [default: none].
    #[arg(long, env = "GRANTRY_OIDC_ISSUER", value_name = "URL", requires = "oidc_audience")]
    pub oidc_issuer: Option<String>,
    /// The audiences (aud) --oidc-issuer's tokens must carry for Grantry, comma-separated
    /// [default: none].
    #[arg(long, env = "GRANTRY_OIDC_AUDIENCE", value_name = "AUD", requires = "oidc_issuer")]
    pub oidc_audience: Option<String>,
    /// Let anyone sign in to the web portal as any directory user, picked from a list
    /// (development only: refused unless --dev-clock is on) [default: false].
    #[arg(long, env = "GRANTRY_DEV_LOGIN", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub dev_login: Option<bool>,
    /// The web portal's client id at the organization's OpenID provider, for people to sign
    /// in with it (authorization code flow with PKCE; the provider is --oidc-issuer, or
    /// --portal-issuer when several are trusted) [default: none].
    #[arg(long, env = "GRANTRY_PORTAL_CLIENT_ID", value_name = "ID")]
    pub portal_client_id: Option<String>,
    /// The portal client's secret at the provider (prefer the environment variable)
    /// [default: none, a public client].
    #[arg(long, env = "GRANTRY_PORTAL_CLIENT_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub portal_client_secret: Option<String>,
    /// Which trusted OpenID issuer people sign in to the portal with, when several are
    /// configured [default: the only one].
    #[arg(long, env = "GRANTRY_PORTAL_ISSUER", value_name = "URL")]
    pub portal_issuer: Option<String>,
    /// Hours a portal session lasts after sign-in [default: 8].
    #[arg(long, env = "GRANTRY_PORTAL_SESSION_HOURS", value_name = "HOURS")]
    pub portal_session_hours: Option<u64>,
    /// SMTP server for notification mail: smtp://[USER:PASSWORD@]HOST[:PORT] (STARTTLS,
    /// port 587 by default), smtps://… (implicit TLS, port 465), or smtp://HOST:PORT?tls=none
    /// (plain, for a local relay). Without it mails are kept and administrators read them at
    /// GET /_grantry/mail [default: none].
    #[arg(long, env = "GRANTRY_SMTP_URL", value_name = "URL")]
    pub smtp_url: Option<String>,
    /// Sender of notification mail, `ADDRESS` or `Name <ADDRESS>` [default: Grantry
    /// <grantry@localhost>; required with --smtp-url].
    #[arg(long, env = "GRANTRY_MAIL_FROM", value_name = "ADDRESS")]
    pub mail_from: Option<String>,
    /// Directory of mail templates overriding the built-in ones (NAME.subject, NAME.txt,
    /// NAME.html; see docs/operations.md) [default: none].
    #[arg(long, env = "GRANTRY_MAIL_TEMPLATES", value_name = "DIR")]
    pub mail_templates: Option<PathBuf>,
    /// Optional TOML configuration file (flags and GRANTRY_* variables override it)
    /// [default: none].
    #[arg(long, env = "GRANTRY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The same settings read from a TOML file (keys as in the table in the README).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database: Option<String>,
    public_base_url: Option<String>,
    log_format: Option<String>,
    body_limit: Option<usize>,
    dev_clock: Option<bool>,
    read_timeout: Option<u64>,
    shutdown_grace: Option<u64>,
    key_dir: Option<PathBuf>,
    metrics_listen: Option<String>,
    outbound_allow: Option<Vec<String>>,
    statement_budget_ms: Option<u64>,
    expensive_queries_per_caller: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    oidc: Option<Vec<FileOidc>>,
    dev_login: Option<bool>,
    portal_client_id: Option<String>,
    portal_client_secret: Option<String>,
    portal_issuer: Option<String>,
    portal_session_hours: Option<u64>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    mail_templates: Option<PathBuf>,
}

/// One `[[oidc]]` table: a trusted external issuer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct FileOidc {
    issuer: String,
    audiences: Vec<String>,
    jwks_uri: Option<String>,
    user_claim: Option<String>,
    app_claim: Option<String>,
    #[serde(default)]
    auto_provision: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl Database {
    /// A description for messages and logs (no password).
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("sqlite:{}", path.display()),
            Database::Postgres(url) => grantry_store::Location::Postgres(url.clone()).describe(),
        }
    }
}

/// Never prints a PostgreSQL password.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The files of the HTTPS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Fully resolved settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database: Database,
    /// Directory of the token signing keys.
    pub key_dir: PathBuf,
    /// Certificate chain and private key (PEM) to serve HTTPS with.
    pub tls: Option<Tls>,
    pub public_base_url: Option<String>,
    pub log_format: LogFormat,
    pub body_limit: usize,
    pub dev_clock: bool,
    /// How long a client may take to send a request's headers, and its body: a client
    /// slower than that is disconnected (headers) or answered 408 (body).
    pub read_timeout: std::time::Duration,
    /// How long a shutdown (SIGTERM, Ctrl-C) waits for in-flight requests and the
    /// background batch under way before the process exits anyway.
    pub shutdown_grace: std::time::Duration,
    /// A second address serving only `GET /metrics`, without a token.
    pub metrics_listen: Option<SocketAddr>,
    /// Which destinations outbound calls may reach besides public addresses.
    pub outbound_allow: grantry_outbound::AllowList,
    /// Database statement time one request may use (see [`DEFAULT_STATEMENT_BUDGET`]).
    pub statement_budget: std::time::Duration,
    /// Expensive queries one caller may run at once.
    pub expensive_queries_per_caller: usize,
    /// Trusted external OpenID issuers.
    pub oidc: Vec<grantry_api::oidc::OidcIssuer>,
    /// `--dev-login`: the portal lets anyone act as any directory user.
    pub dev_login: bool,
    /// Portal sign-in through one of the trusted issuers.
    pub portal_sign_in: Option<grantry_api::portal::PortalSignIn>,
    /// How long a portal session lasts.
    pub portal_session_lifetime: std::time::Duration,
    /// Notification mail: where it is sent (none: kept), from whom, which templates.
    pub mail: MailConfig,
}

/// How notification mail is sent.
#[derive(Debug, Clone, Default)]
pub struct MailConfig {
    /// The SMTP server; `None` keeps mails for administrators to read.
    pub smtp: Option<grantry_outbound::smtp::SmtpConfig>,
    /// The sender; `None` is [`grantry_core::mail::DEFAULT_FROM`].
    pub from: Option<String>,
    /// A directory of templates overriding the built-in ones.
    pub templates: Option<PathBuf>,
}

impl MailConfig {
    /// Checks the settings, so that a bad SMTP URL, sender or template directory stops the
    /// start with a clear message.
    pub fn resolve(
        smtp_url: Option<String>,
        from: Option<String>,
        templates: Option<PathBuf>,
    ) -> anyhow::Result<MailConfig> {
        let smtp = match smtp_url.map(|u| u.trim().to_string()).filter(|u| !u.is_empty()) {
            None => None,
            Some(url) => Some(
                grantry_outbound::smtp::SmtpConfig::parse(&url)
                    .map_err(|e| anyhow::anyhow!("SMTP URL (--smtp-url): {e}"))?,
            ),
        };
        let from = from.map(|f| f.trim().to_string()).filter(|f| !f.is_empty());
        match &from {
            Some(f) => {
                grantry_outbound::smtp::parse_mailbox(f)
                    .map_err(|e| anyhow::anyhow!("mail sender (--mail-from): {e}"))?;
            }
            None if smtp.is_some() => bail!(
                "--smtp-url needs a sender: give --mail-from ADDRESS (e.g. 'Grantry <grantry@example.com>'), an address the SMTP server accepts mail from"
            ),
            None => {}
        }
        if let Some(dir) = &templates {
            grantry_core::mail::Templates::with_overrides(dir)
                .map_err(|e| anyhow::anyhow!("mail templates (--mail-templates): {e}"))?;
        }
        Ok(MailConfig { smtp, from, templates })
    }
}

impl Config {
    /// A server on loopback with an OS-chosen port (127.0.0.1:0), plain HTTP and every
    /// other setting at its default — the base that tests and benchmarks start from, so
    /// a new setting needs its default here only. Override fields with struct-update
    /// syntax: `Config { dev_clock: true, ..Config::for_test(database, key_dir) }`.
    pub fn for_test(database: Database, key_dir: PathBuf) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database,
            key_dir,
            tls: None,
            public_base_url: None,
            log_format: LogFormat::Text,
            body_limit: DEFAULT_BODY_LIMIT,
            dev_clock: false,
            read_timeout: DEFAULT_READ_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            metrics_listen: None,
            outbound_allow: grantry_outbound::AllowList::default(),
            statement_budget: DEFAULT_STATEMENT_BUDGET,
            expensive_queries_per_caller: DEFAULT_EXPENSIVE_QUERIES_PER_CALLER,
            oidc: Vec::new(),
            dev_login: false,
            portal_sign_in: None,
            portal_session_lifetime: grantry_api::portal::DEFAULT_SESSION_LIFETIME,
            mail: MailConfig::default(),
        }
    }
}

/// The default of [`Config::statement_budget`]: far above what any query of a
/// well-formed client needs, short enough that one request cannot hold a reader for long.
pub const DEFAULT_STATEMENT_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// The default of [`Config::expensive_queries_per_caller`].
pub const DEFAULT_EXPENSIVE_QUERIES_PER_CALLER: usize = 4;

/// The default of [`Config::read_timeout`].
pub const DEFAULT_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The default of [`Config::shutdown_grace`]: what systemd and Kubernetes wait before
/// sending SIGKILL is 90 s and 30 s; staying within the shorter one means a stop under
/// either never kills a request Grantry could still finish.
pub const DEFAULT_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

impl ServeArgs {
    pub fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = self.listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen
            .parse()
            .with_context(|| format!("listen address '{listen}' is not of the form IP:PORT (e.g. 127.0.0.1:8080)"))?;
        let metrics_listen = match self.metrics_listen.or(file.metrics_listen) {
            None => None,
            Some(a) => Some(a.parse::<SocketAddr>().with_context(|| {
                format!("metrics listen address '{a}' is not of the form IP:PORT (e.g. 127.0.0.1:9090)")
            })?),
        };
        let data_dir = self.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database = parse_database(self.database.or(file.database).as_deref(), &data_dir)?;
        let key_dir = self.key_dir.or(file.key_dir).unwrap_or_else(|| default_key_dir(&data_dir));
        let tls = match (self.tls_cert.or(file.tls_cert), self.tls_key.or(file.tls_key)) {
            (Some(cert), Some(key)) => Some(Tls { cert, key }),
            (None, None) => None,
            _ => bail!("HTTPS needs both a certificate (--tls-cert) and its private key (--tls-key)"),
        };
        let log_format = match self.log_format.or(file.log_format).as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("log format '{other}' is not supported; use 'text' or 'json'"),
        };
        let public_base_url =
            self.public_base_url.or(file.public_base_url).map(|u| u.trim_end_matches('/').to_string());
        if let Some(url) = &public_base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("public base URL '{url}' must start with http:// or https://");
        }
        let oidc = resolve_oidc(self.oidc_issuer, self.oidc_audience, file.oidc.unwrap_or_default())?;
        let dev_clock = self.dev_clock.or(file.dev_clock).unwrap_or(false);
        let dev_login = self.dev_login.or(file.dev_login).unwrap_or(false);
        if dev_login && !dev_clock {
            bail!(
                "--dev-login lets anyone sign in to the portal as any user, so it is refused unless --dev-clock marks this server as a development server"
            );
        }
        let portal_sign_in = resolve_portal(
            self.portal_client_id.or(file.portal_client_id),
            self.portal_client_secret.or(file.portal_client_secret),
            self.portal_issuer.or(file.portal_issuer),
            &oidc,
        )?;
        let portal_session_lifetime = match self.portal_session_hours.or(file.portal_session_hours) {
            Some(0) => bail!("a portal session must last at least 1 hour"),
            Some(h) => std::time::Duration::from_secs(h * 3600),
            None => grantry_api::portal::DEFAULT_SESSION_LIFETIME,
        };
        let mail = MailConfig::resolve(
            self.smtp_url.or(file.smtp_url),
            self.mail_from.or(file.mail_from),
            self.mail_templates.or(file.mail_templates),
        )?;
        Ok(Config {
            oidc,
            mail,
            dev_login,
            portal_sign_in,
            portal_session_lifetime,
            listen,
            database,
            key_dir,
            tls,
            public_base_url,
            log_format,
            body_limit: self.body_limit.or(file.body_limit).unwrap_or(DEFAULT_BODY_LIMIT),
            dev_clock,
            read_timeout: match self.read_timeout.or(file.read_timeout) {
                Some(0) => bail!("the read timeout must be at least 1 second"),
                Some(secs) => std::time::Duration::from_secs(secs),
                None => DEFAULT_READ_TIMEOUT,
            },
            shutdown_grace: self
                .shutdown_grace
                .or(file.shutdown_grace)
                .map(std::time::Duration::from_secs)
                .unwrap_or(DEFAULT_SHUTDOWN_GRACE),
            metrics_listen,
            outbound_allow: match (self.outbound_allow, file.outbound_allow) {
                (Some(list), _) => grantry_outbound::AllowList::parse(&list),
                (None, Some(items)) => grantry_outbound::AllowList::from_items(&items),
                (None, None) => Ok(grantry_outbound::AllowList::default()),
            }
            .map_err(|e| anyhow::anyhow!("outbound allow-list: {e}"))?,
            statement_budget: match self.statement_budget_ms.or(file.statement_budget_ms) {
                Some(0) => bail!("the statement budget must be at least 1 ms"),
                Some(ms) => std::time::Duration::from_millis(ms),
                None => DEFAULT_STATEMENT_BUDGET,
            },
            expensive_queries_per_caller: match self.expensive_queries_per_caller.or(file.expensive_queries_per_caller)
            {
                Some(0) => bail!("expensive queries per caller must be at least 1"),
                Some(n) => n,
                None => DEFAULT_EXPENSIVE_QUERIES_PER_CALLER,
            },
        })
    }
}

/// The trusted issuers: the file's `[[oidc]]` tables, and the one of `--oidc-issuer` (which
/// replaces a table for the same issuer). Each is checked: an https URL (plain http only on
/// loopback), at least one audience, no issuer twice.
fn resolve_oidc(
    flag_issuer: Option<String>,
    flag_audience: Option<String>,
    tables: Vec<FileOidc>,
) -> anyhow::Result<Vec<grantry_api::oidc::OidcIssuer>> {
    use grantry_api::oidc::OidcIssuer;
    let nonempty = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let mut issuers: Vec<OidcIssuer> = tables
        .into_iter()
        .map(|t| OidcIssuer {
            issuer: t.issuer.trim().to_string(),
            audiences: t.audiences.iter().map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect(),
            jwks_uri: nonempty(t.jwks_uri),
            user_claim: nonempty(t.user_claim),
            app_claim: nonempty(t.app_claim),
            auto_provision: t.auto_provision,
        })
        .collect();
    if let Some(issuer) = flag_issuer {
        let issuer = issuer.trim().to_string();
        let audiences = flag_audience
            .unwrap_or_default()
            .split(',')
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        issuers.retain(|i| i.issuer.trim_end_matches('/') != issuer.trim_end_matches('/'));
        issuers.push(OidcIssuer {
            issuer,
            audiences,
            jwks_uri: None,
            user_claim: None,
            app_claim: None,
            auto_provision: false,
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for i in &issuers {
        grantry_outbound::trusted_https_url(&i.issuer).map_err(|e| anyhow::anyhow!("OpenID issuer: {e}"))?;
        if let Some(uri) = &i.jwks_uri {
            grantry_outbound::trusted_https_url(uri)
                .map_err(|e| anyhow::anyhow!("jwks_uri of OpenID issuer {}: {e}", i.issuer))?;
        }
        if i.audiences.is_empty() {
            bail!(
                "OpenID issuer {} needs at least one audience (--oidc-audience, or audiences = [...]): the aud its tokens carry for Grantry",
                i.issuer
            );
        }
        if i.issuer.starts_with("https://sts.grantry.local/") {
            bail!("OpenID issuer {} is Grantry's own issuer, which is always trusted", i.issuer);
        }
        if !seen.insert(i.issuer.trim_end_matches('/').to_string()) {
            bail!("OpenID issuer {} is configured twice", i.issuer);
        }
    }
    Ok(issuers)
}

/// Portal sign-in: a client id needs a trusted issuer to sign in with (the only one, or the
/// one named); a secret or issuer without a client id is a mistake.
fn resolve_portal(
    client_id: Option<String>,
    client_secret: Option<String>,
    issuer: Option<String>,
    trusted: &[grantry_api::oidc::OidcIssuer],
) -> anyhow::Result<Option<grantry_api::portal::PortalSignIn>> {
    let nonempty = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let (client_id, client_secret, issuer) = (nonempty(client_id), nonempty(client_secret), nonempty(issuer));
    let Some(client_id) = client_id else {
        if client_secret.is_some() || issuer.is_some() {
            bail!("--portal-client-secret and --portal-issuer need --portal-client-id");
        }
        return Ok(None);
    };
    let chosen = match &issuer {
        Some(name) => trusted.iter().find(|i| i.issuer.trim_end_matches('/') == name.trim_end_matches('/')),
        None if trusted.len() == 1 => trusted.first(),
        None if trusted.is_empty() => {
            bail!("--portal-client-id needs the OpenID issuer people sign in with: configure it with --oidc-issuer")
        }
        None => bail!("several OpenID issuers are trusted; name the portal's with --portal-issuer"),
    };
    let Some(chosen) = chosen else {
        bail!("--portal-issuer must be one of the trusted OpenID issuers (--oidc-issuer, [[oidc]])");
    };
    Ok(Some(grantry_api::portal::PortalSignIn { issuer: chosen.issuer.clone(), client_id, client_secret }))
}

/// The key directory when none is configured: `keys` in the data directory.
pub fn default_key_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read configuration file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("configuration file {} is not valid", path.display()))
}

/// `sqlite:PATH`, `sqlite://PATH` or a bare path, or `postgres://…` / `postgresql://…`;
/// without a URL, `grantry.db` in `data_dir`.
pub fn parse_database(url: Option<&str>, data_dir: &Path) -> anyhow::Result<Database> {
    match url.map(str::trim) {
        None => Ok(Database::Sqlite(data_dir.join("grantry.db"))),
        Some(u) => match grantry_store::Location::parse(u) {
            Ok(grantry_store::Location::Postgres(url)) => Ok(Database::Postgres(url)),
            Ok(grantry_store::Location::Sqlite(path)) => Ok(Database::Sqlite(path)),
            Err(e) => bail!("{}", e.message),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_choose_the_backend() {
        let dir = Path::new("/data");
        assert_eq!(parse_database(None, dir).unwrap(), Database::Sqlite(PathBuf::from("/data/grantry.db")));
        assert_eq!(parse_database(Some("sqlite:/x/g.db"), dir).unwrap(), Database::Sqlite(PathBuf::from("/x/g.db")));
        assert_eq!(parse_database(Some("g.db"), dir).unwrap(), Database::Sqlite(PathBuf::from("g.db")));
        assert_eq!(
            parse_database(Some("postgres://u:secret@db:5432/grantry"), dir).unwrap(),
            Database::Postgres("postgres://u:secret@db:5432/grantry".into())
        );
        assert!(matches!(parse_database(Some("postgresql://db/g"), dir).unwrap(), Database::Postgres(_)));
        let e = parse_database(Some("mysql://db/g"), dir).unwrap_err().to_string();
        assert!(e.contains("postgres://"), "{e}");
        assert!(parse_database(Some("sqlite:"), dir).is_err());
        // Passwords never reach logs.
        let shown = format!("{:?}", Database::Postgres("postgres://u:secret@db/g".into()));
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn dev_login_needs_the_dev_clock_and_portal_sign_in_needs_an_issuer() {
        let e = ServeArgs { dev_login: Some(true), ..Default::default() }.resolve().unwrap_err().to_string();
        assert!(e.contains("--dev-clock"), "{e}");
        let c = ServeArgs { dev_login: Some(true), dev_clock: Some(true), ..Default::default() }.resolve().unwrap();
        assert!(c.dev_login && c.portal_sign_in.is_none());
        let e = ServeArgs { portal_client_id: Some("portal".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(e.to_string().contains("--oidc-issuer"), "{e}");
        let c = ServeArgs {
            portal_client_id: Some("portal".into()),
            portal_client_secret: Some("s".into()),
            oidc_issuer: Some("https://idp.example.com".into()),
            oidc_audience: Some("api://grantry".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap();
        let sign_in = c.portal_sign_in.unwrap();
        assert_eq!((sign_in.issuer.as_str(), sign_in.client_id.as_str()), ("https://idp.example.com", "portal"));
        let e = ServeArgs {
            portal_client_id: Some("portal".into()),
            portal_issuer: Some("https://other.example.com".into()),
            oidc_issuer: Some("https://idp.example.com".into()),
            oidc_audience: Some("api://grantry".into()),
            ..Default::default()
        }
        .resolve()
        .unwrap_err();
        assert!(e.to_string().contains("trusted"), "{e}");
    }

    #[test]
    fn mail_settings_are_checked_at_start() {
        let ok = MailConfig::resolve(
            Some("smtp://u:secret@mail.example.com:587".into()),
            Some("Grantry <g@example.com>".into()),
            None,
        )
        .unwrap();
        assert_eq!(ok.smtp.as_ref().unwrap().port, 587);
        assert!(!format!("{ok:?}").contains("secret"));
        assert!(MailConfig::resolve(None, None, None).unwrap().smtp.is_none());
        let refused = |url: Option<&str>, from: Option<&str>, dir: Option<PathBuf>| {
            MailConfig::resolve(url.map(str::to_string), from.map(str::to_string), dir).unwrap_err().to_string()
        };
        let e = refused(Some("http://mail.example.com"), Some("g@example.com"), None);
        assert!(e.contains("--smtp-url") && e.contains("smtp://"), "{e}");
        let e = refused(Some("smtp://u:secret@mail.example.com?tls=none"), Some("g@example.com"), None);
        assert!(e.contains("unencrypted") && !e.contains("secret"), "{e}");
        assert!(refused(Some("smtp://mail.example.com"), None, None).contains("--mail-from"));
        assert!(refused(None, Some("not an address"), None).contains("--mail-from"));
        assert!(refused(None, None, Some(PathBuf::from("/nonexistent/templates"))).contains("--mail-templates"));
    }

    #[test]
    fn oidc_issuers_from_flags_and_file() {
        let table = |issuer: &str, audiences: &[&str]| FileOidc {
            issuer: issuer.into(),
            audiences: audiences.iter().map(|a| a.to_string()).collect(),
            jwks_uri: None,
            user_claim: Some("email".into()),
            app_claim: None,
            auto_provision: true,
        };
        let issuers = resolve_oidc(
            Some("https://idp.example.com/".into()),
            Some("api://grantry, 00000003-0000-0000-c000-000000000000".into()),
            vec![table("https://idp.example.com", &["x"]), table("http://127.0.0.1:5556/dex", &["grantry"])],
        )
        .unwrap();
        // The flag replaces the file's table for the same issuer.
        assert_eq!(issuers.len(), 2);
        assert_eq!(issuers[0].issuer, "http://127.0.0.1:5556/dex");
        assert!(issuers[0].auto_provision);
        assert_eq!(issuers[1].audiences, vec!["api://grantry", "00000003-0000-0000-c000-000000000000"]);
        assert_eq!(issuers[1].user_claim, None);

        let refused = |flag: Option<&str>, tables: Vec<FileOidc>| {
            resolve_oidc(flag.map(str::to_string), Some("aud".into()), tables).unwrap_err().to_string()
        };
        assert!(refused(Some("http://idp.example.com"), vec![]).contains("plain http"));
        assert!(refused(None, vec![table("https://a.example.com", &[])]).contains("at least one audience"));
        assert!(
            refused(None, vec![table("https://a.example.com", &["x"]), table("https://a.example.com/", &["y"])])
                .contains("twice")
        );
        assert!(refused(Some("not a url"), vec![]).contains("not a URL"));
    }
}
