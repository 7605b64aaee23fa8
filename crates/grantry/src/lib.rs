//! The Grantry server: configuration, start-up and shutdown. `main.rs` adds the command
//! line; tests start the same server in-process on port 0.

pub mod ascode;
pub mod config;
pub mod tls;

use anyhow::Context;
use config::{Config, Database};
use grantry_api::{ApiConfig, AppState, auth::TokenKeys};
use grantry_core::App;
use grantry_domain::clock::{Clock, OffsetClock, SystemClock};
use grantry_store::{Store, StoreOptions};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, oneshot, watch};

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    /// The address serving `GET /metrics` without a token, with `--metrics-listen`.
    pub metrics_addr: Option<SocketAddr>,
    pub base_url: String,
    pub state: AppState,
    shutdown_grace: Duration,
    stop_accepting: Option<oneshot::Sender<()>>,
    stop_jobs: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Served>,
    runner: tokio::task::JoinHandle<()>,
    /// The `--metrics-listen` server: it stops accepting with the main one.
    metrics: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<Served>)>,
    sender: tokio::task::JoinHandle<()>,
}

/// How the connections ended once the server stopped accepting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// Connections open when the server stopped accepting.
    pub open_at_stop: usize,
    /// Whether every one of them finished within the grace period.
    pub all_finished: bool,
}

/// What a graceful shutdown achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    pub open_connections: usize,
    /// False when the grace period ran out with requests or a job batch still running.
    pub completed: bool,
}

impl Server {
    /// Stops accepting connections, stops background work at once and waits for the server
    /// task to end (tests restart servers this way; see [`Server::shutdown`] for the
    /// process's own shutdown).
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop_accepting.take() {
            let _ = tx.send(());
        }
        if let Some((tx, task)) = self.metrics.take() {
            let _ = tx.send(());
            let _ = task.await;
        }
        self.runner.abort();
        self.sender.abort();
        let _ = (&mut self.task).await;
    }

    /// The shutdown on SIGTERM or Ctrl-C: stop accepting connections, let requests in
    /// flight finish and the background runner end its batch under way, both within the
    /// grace period, then wait for the writer to commit everything queued before. Every
    /// write acknowledged to a client was committed before it was acknowledged, so nothing
    /// acknowledged is lost even when the grace period runs out.
    pub async fn shutdown(mut self) -> ShutdownReport {
        let deadline = tokio::time::Instant::now() + self.shutdown_grace;
        if let Some(tx) = self.stop_accepting.take() {
            let _ = tx.send(());
        }
        if let Some((tx, _)) = self.metrics.take() {
            // Scrapes are short and change nothing; its task ends with the process.
            let _ = tx.send(());
        }
        let _ = self.stop_jobs.send(true);
        let served = (&mut self.task).await.unwrap_or(Served { open_at_stop: 0, all_finished: false });
        let runner_done = tokio::time::timeout_at(deadline, &mut self.runner).await.is_ok();
        if !runner_done {
            self.runner.abort();
        }
        // Calls in flight are waited for within the grace period; one cut short is sent
        // again after the restart (the receiver recognises it by its webhook-id).
        let sender_done = tokio::time::timeout_at(deadline, &mut self.sender).await.is_ok();
        if !sender_done {
            self.sender.abort();
        }
        // A no-op write queues behind every write already sent: when it returns, they are
        // committed (or failed and were answered so).
        let flushed =
            tokio::time::timeout_at(deadline, self.state.app.store.write(|_| Ok(()))).await.is_ok_and(|r| r.is_ok());
        ShutdownReport {
            open_connections: served.open_at_stop,
            completed: served.all_finished && runner_done && sender_done && flushed,
        }
    }
}

/// Opens the store named by the configuration (creating and migrating it).
pub fn open_store(database: &Database) -> anyhow::Result<Store> {
    let opened = match database {
        Database::Sqlite(path) => Store::open_sqlite(path, StoreOptions::default()),
        Database::Postgres(url) => Store::open_postgres(url, StoreOptions::default()),
    };
    opened.map_err(|e| anyhow::anyhow!("cannot open the database {}: {}", database.describe(), e.message))
}

/// Builds the application around `store`.
pub async fn build_state(store: Store, config: &Config, base_url: String) -> anyhow::Result<AppState> {
    let dev_clock = config.dev_clock.then(|| Arc::new(OffsetClock::default()));
    let clock: Arc<dyn Clock> = match &dev_clock {
        Some(c) => c.clone(),
        None => Arc::new(SystemClock),
    };
    let keys = Arc::new(
        TokenKeys::load_or_create(&store, &config.key_dir)
            .await
            .map_err(|e| anyhow::anyhow!("cannot load the signing key: {}", e.message))?,
    );
    let app = App {
        store,
        clock,
        dev_clock,
        work_signal: Arc::new(Notify::new()),
        outbox_signal: Arc::new(Notify::new()),
        outbox_recorded: Arc::new(Notify::new()),
        outbox_held: Default::default(),
        transport: Arc::new(grantry_outbound::HttpTransport::new(config.outbound_allow.clone())),
        token_issuer: Some(keys.clone()),
        tenant_id: keys.tenant_id.as_str().into(),
        mail: Arc::new(mail_settings(config, &base_url)?),
    };
    // The development clock resumes at the offset it had reached, so nothing made while it
    // was advanced is dated in the future after a restart.
    let stored_offset = app
        .stored_clock_offset()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the development clock's offset: {}", e.message))?;
    match &app.dev_clock {
        Some(clock) => clock.advance_to(stored_offset),
        None if stored_offset > chrono::Duration::zero() => tracing::warn!(
            offset = %grantry_domain::duration::format(stored_offset),
            "this database's development clock was advanced; without --dev-clock the server follows the wall clock, so records made while it was advanced are dated in the future"
        ),
        None => {}
    }
    grantry_core::catalogs::ensure_defaults(&app)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the built-in catalog: {}", e.message))?;
    Ok(AppState {
        app,
        config: Arc::new(ApiConfig {
            public_base_url: base_url.clone(),
            body_limit: config.body_limit,
            read_timeout: config.read_timeout,
            statement_budget: config.statement_budget,
            portal: grantry_api::portal::PortalConfig {
                dev_login: config.dev_login,
                sign_in: config.portal_sign_in.clone(),
                session_lifetime: config.portal_session_lifetime,
                secure_cookies: config.tls.is_some() || base_url.starts_with("https://"),
            },
        }),
        expensive_slots: Arc::new(grantry_api::throttle::CallerSlots::new(config.expensive_queries_per_caller)),
        keys,
        oidc: Arc::new(external_issuers(config)),
        inflight: Default::default(),
        client_throttle: Default::default(),
    })
}

/// Notification mail as configured: SMTP (checked when the configuration was read) or kept.
fn mail_settings(config: &Config, base_url: &str) -> anyhow::Result<grantry_core::mail::MailSettings> {
    let mut settings = grantry_core::mail::MailSettings::kept(base_url);
    if let Some(dir) = &config.mail.templates {
        settings.templates = grantry_core::mail::Templates::with_overrides(dir)
            .map_err(|e| anyhow::anyhow!("mail templates (--mail-templates): {e}"))?;
    }
    if let Some(from) = &config.mail.from {
        settings.from = from.clone();
    }
    match &config.mail.smtp {
        Some(smtp) => {
            let mailer = grantry_outbound::smtp::SmtpMailer::new(smtp).map_err(|e| anyhow::anyhow!("SMTP: {e}"))?;
            tracing::info!(server = %smtp.describe(), from = %settings.from, "notification mail goes out through SMTP");
            settings.mailer = Some(Arc::new(mailer));
        }
        None => tracing::info!(
            "no SMTP server configured (--smtp-url): notification mails are kept; administrators read them at GET /_grantry/mail"
        ),
    }
    Ok(settings)
}

/// The trusted external issuers, fetched through an outbound client whose allow-list also
/// admits each issuer's (and configured `jwks_uri`'s) host and port: the operator named
/// them, so they need no `--outbound-allow` entry even on a private address.
fn external_issuers(config: &Config) -> grantry_api::oidc::ExternalIssuers {
    if config.oidc.is_empty() {
        return grantry_api::oidc::ExternalIssuers::none();
    }
    let mut allow = config.outbound_allow.clone();
    for issuer in &config.oidc {
        for url in std::iter::once(&issuer.issuer).chain(issuer.jwks_uri.as_ref()) {
            // Checked when the configuration was read.
            if let Ok((host, port)) = grantry_outbound::trusted_https_url(url) {
                allow = allow.with_host_port(&host, port);
            }
        }
    }
    let transport = Arc::new(grantry_outbound::HttpTransport::new(allow));
    grantry_api::oidc::ExternalIssuers::new(config.oidc.clone(), transport)
}

/// Binds, opens the store and starts serving. `shutdown` ends the server when it resolves.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let metrics_listener = match config.metrics_listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at).await.with_context(|| format!("cannot listen on {at} for metrics"))?,
        ),
        None => None,
    };
    // Read the certificate before anything else, so a bad file stops the start at once.
    let acceptor = match &config.tls {
        Some(t) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(&t.cert, &t.key)?)),
        None => None,
    };
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let base_url = config.public_base_url.clone().unwrap_or_else(|| format!("{scheme}://{addr}"));
    let store = open_store(&config.database)?;
    let state = build_state(store, &config, base_url.clone()).await?;
    let (stop_jobs, jobs_stopped) = watch::channel(false);
    let runner = grantry_core::jobs::spawn_runner(state.app.clone(), jobs_stopped.clone());
    let sender = grantry_core::outbox::spawn_sender(state.app.clone(), jobs_stopped);
    let router = grantry_api::routes::router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, router, config.read_timeout, config.shutdown_grace, acceptor, rx));
    let (metrics_addr, metrics) = match metrics_listener {
        Some(listener) => {
            let at = listener.local_addr()?;
            let (tx, rx) = oneshot::channel::<()>();
            let router = grantry_api::metrics::open_router(state.clone());
            // Metrics stay plain HTTP on their own (internal) port.
            let task = tokio::spawn(serve(listener, router, config.read_timeout, config.shutdown_grace, None, rx));
            (Some(at), Some((tx, task)))
        }
        None => (None, None),
    };
    Ok(Server {
        addr,
        metrics_addr,
        base_url,
        state,
        shutdown_grace: config.shutdown_grace,
        stop_accepting: Some(tx),
        stop_jobs,
        task,
        runner,
        metrics,
        sender,
    })
}

/// Accepts connections until `shutdown` resolves, then lets open requests finish (for at
/// most `grace`): idle keep-alive connections close at once, a connection with a request
/// under way closes after answering it. Plain connections are HTTP/1.1; HTTPS connections
/// are HTTP/2 or HTTP/1.1 as ALPN decides. HTTP/1.1 has a header read timeout: a client
/// that does not finish sending its headers within `read_timeout` is disconnected, so slow
/// clients cannot hold connections open (the body is bounded by the same time in the
/// router); the TLS handshake has the same bound.
async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    read_timeout: Duration,
    grace: Duration,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shutdown: oneshot::Receiver<()>,
) -> Served {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open = Arc::new(AtomicUsize::new(0));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(router.clone());
                if let Some(acceptor) = &acceptor {
                    let (acceptor, watcher, open) = (acceptor.clone(), graceful.watcher(), open.clone());
                    open.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        serve_tls(acceptor, watcher, stream, service, read_timeout).await;
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                    continue;
                }
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder.timer(TokioTimer::new()).header_read_timeout(read_timeout);
                let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                let open = open.clone();
                open.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let open_at_stop = open.load(Ordering::SeqCst);
    let all_finished = tokio::time::timeout(grace, graceful.shutdown()).await.is_ok();
    Served { open_at_stop, all_finished }
}

/// Serves one HTTPS connection: the TLS handshake (bounded by `read_timeout`), then HTTP/2
/// or HTTP/1.1 as ALPN chose, watched by the graceful shutdown.
async fn serve_tls(
    acceptor: tokio_rustls::TlsAcceptor,
    watcher: hyper_util::server::graceful::Watcher,
    stream: tokio::net::TcpStream,
    service: hyper_util::service::TowerToHyperService<axum::Router>,
    read_timeout: Duration,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let stream = match tokio::time::timeout(read_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(read_timeout);
    builder.http2().timer(TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
