//! The Grantry server: configuration, start-up and shutdown. `main.rs` adds the command
//! line; tests start the same server in-process on port 0.

pub mod config;

use anyhow::Context;
use config::{Config, Database};
use grantry_api::{ApiConfig, AppState, auth::TokenKeys};
use grantry_core::App;
use grantry_domain::clock::{Clock, OffsetClock, SystemClock};
use grantry_store::{Store, StoreOptions};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{Notify, oneshot};

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub base_url: String,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    runner: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Stops accepting connections and waits for the server task to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.runner.abort();
        let _ = (&mut self.task).await;
    }

    /// Waits until the server ends (on shutdown signal).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task failed")?.context("server failed")
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
    let keys = TokenKeys::load_or_create(&store)
        .await
        .map_err(|e| anyhow::anyhow!("cannot load the signing key: {}", e.message))?;
    let app = App {
        store,
        clock,
        dev_clock,
        work_signal: Arc::new(Notify::new()),
        tenant_id: keys.tenant_id.as_str().into(),
    };
    grantry_core::catalogs::ensure_defaults(&app)
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the built-in catalog: {}", e.message))?;
    Ok(AppState {
        app,
        config: Arc::new(ApiConfig {
            public_base_url: base_url,
            body_limit: config.body_limit,
            read_timeout: config.read_timeout,
        }),
        keys: Arc::new(keys),
        inflight: Default::default(),
    })
}

/// Binds, opens the store and starts serving. `shutdown` ends the server when it resolves.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let base_url = config.public_base_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let store = open_store(&config.database)?;
    let state = build_state(store, &config, base_url.clone()).await?;
    let runner = grantry_core::jobs::spawn_runner(state.app.clone());
    let router = grantry_api::routes::router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, router, config.read_timeout, rx));
    Ok(Server { addr, base_url, state, shutdown: Some(tx), task, runner })
}

/// Accepts connections until `shutdown` resolves, then lets open requests finish (for at
/// most a few seconds). Connections are HTTP/1.1 with a header read timeout: a client that
/// does not finish sending its headers within `read_timeout` is disconnected, so slow
/// clients cannot hold connections open (the body is bounded by the same time in the
/// router).
async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    read_timeout: std::time::Duration,
    shutdown: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let service = hyper_util::service::TowerToHyperService::new(router.clone());
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder.timer(TokioTimer::new()).header_read_timeout(read_timeout);
                let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), graceful.shutdown()).await;
    Ok(())
}
