//! The one application assembly: everything `rampart serve` does between reading the
//! configuration and answering requests, in one place, so that the integration tests start
//! exactly what production starts.
//!
//! [`Application::build`] runs the production checks, prepares the data directory,
//! connects to the database (with the configured pool size) and migrates it, loads the TLS
//! certificate, binds the listener and builds the [`AppState`]; [`Application::run`] starts
//! the key reloader and serves until the shutdown future resolves, then drains and closes
//! the database.
//!
//! ```no_run
//! # async fn example(loaded: rampart::config::Loaded) -> anyhow::Result<()> {
//! use rampart::{application::Application, clock::Clock, server};
//!
//! let app = Application::build(loaded, Clock::system()).await?;
//! app.run(server::shutdown_signal()).await
//! # }
//! ```
//!
//! # Security
//! In production nothing is created, opened or bound before the configuration passed the
//! audit ([`Config::audit`]): a refused start leaves no local state behind. In development
//! missing secrets and keys are generated first, then every remaining insecure setting is
//! logged as a warning.

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::{
    app,
    clock::Clock,
    config::{Config, Environment, Loaded},
    server::{self, ServeOptions},
    setup,
    state::AppState,
    store::Db,
};

/// How often a running server re-reads its signing keys, so a `rampart keys rotate` is
/// picked up within a minute.
pub const KEY_RELOAD_EVERY: Duration = Duration::from_secs(60);

/// A built application: checked configuration, migrated database, bound listener and the
/// shared state, not yet serving.
pub struct Application {
    state: AppState,
    listener: TcpListener,
    local_addr: SocketAddr,
    options: ServeOptions,
    key_reload_every: Duration,
    /// The metrics listener's task, when `RAMPART_METRICS_LISTEN` is set.
    metrics: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
    /// The plain-HTTP redirect listener's task, when `RAMPART_HTTP_REDIRECT_LISTEN` is set.
    redirect: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
}

impl Application {
    /// Check, prepare and assemble everything `serve` needs; `clock` is the one time
    /// source of the whole application (the system clock in production, a manual one in
    /// tests). Fails, without serving, on any refused setting or start-up error.
    pub async fn build(loaded: Loaded, clock: Clock) -> anyhow::Result<Self> {
        let Loaded {
            mut config,
            warnings,
        } = loaded;
        for warning in &warnings {
            tracing::warn!(warning = warning.as_str(), "configuration");
        }
        // Production refuses before touching anything; development first generates what is
        // missing, then warns about what remains insecure.
        if config.env == Environment::Production {
            enforce(&config)?;
        }
        let created = setup::prepare(&mut config)?;
        for path in &created.0 {
            tracing::info!(path = %path.display(), "created");
        }
        if config.env == Environment::Development {
            enforce(&config)?;
        }
        let tls = match &config.tls {
            Some(files) => Some(server::tls_acceptor(&files.cert, &files.key)?),
            None => None,
        };
        if config.env == Environment::Production
            && tls.is_some()
            && config.http_redirect_listen.is_none()
        {
            // Not a refusal: port 80 may be answered by something else in front.
            tracing::warn!(
                setting = "RAMPART_HTTP_REDIRECT_LISTEN",
                "TLS is on but plain HTTP is not redirected: clients that type http:// get no answer"
            );
        }
        let db = open_database(&config).await?;
        let options = ServeOptions {
            header_read_timeout: config.tunables.header_read_timeout,
            shutdown_grace: config.tunables.shutdown_grace,
            h2c: config.tunables.h2c,
            tls,
        };
        // Past this point a failure closes the pool (SQLite checkpoints its WAL at close).
        match Self::assemble(config, db.clone(), clock, options).await {
            Ok(app) => Ok(app),
            Err(e) => {
                db.close().await;
                Err(e)
            }
        }
    }

    async fn assemble(
        config: Config,
        db: Db,
        clock: Clock,
        options: ServeOptions,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding RAMPART_LISTEN ({})", config.listen))?;
        let local_addr = listener.local_addr().context("the listener's address")?;
        let state = AppState::new(config, db, clock)?;
        state
            .catalog
            .warm()
            .await
            .context("building the catalog's search index")?;
        // Bound before the server reports that it serves, so a scrape right after works.
        let metrics = match state.config.metrics_listen {
            Some(addr) => Some(crate::metrics::spawn(addr, state.clone()).await?),
            None => None,
        };
        let redirect = match state.config.http_redirect_listen {
            Some(addr) => Some(crate::redirect::spawn(addr, &state.config.public_url).await?),
            None => None,
        };
        Ok(Self {
            state,
            listener,
            local_addr,
            options,
            key_reload_every: KEY_RELOAD_EVERY,
            metrics,
            redirect,
        })
    }

    /// The address the listener is bound to (the real port when `RAMPART_LISTEN` asked
    /// for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The metrics listener's address, when one is configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(addr, _)| *addr)
    }

    /// The plain-HTTP redirect listener's address, when one is configured.
    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect.as_ref().map(|(addr, _)| *addr)
    }

    /// Whether the listener serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.options.tls.is_some()
    }

    /// Re-read the signing keys every `every` instead of [`KEY_RELOAD_EVERY`] (a test
    /// that rotates keys need not wait a minute).
    pub fn key_reload_every(mut self, every: Duration) -> Self {
        self.key_reload_every = every;
        self
    }

    /// The shared state every handler sees.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` resolves, with the key reloader running; then stop accepting,
    /// drain in-flight requests for up to the grace period and close the database.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Self {
            state,
            listener,
            local_addr,
            options,
            key_reload_every,
            metrics,
            redirect,
        } = self;
        let config = &state.config;
        tracing::info!(
            listen = %local_addr,
            scheme = if options.tls.is_some() { "https" } else { "http" },
            env = ?config.env,
            database = %config.database_url,
            data_dir = %config.data_dir.display(),
            "rampart is serving"
        );
        let reloader = state.spawn_key_reloader(key_reload_every);
        let db = state.db.clone();
        let events = state.events.clone();
        let result = server::serve(listener, app::build(state), options, shutdown).await;
        events.flush().await;
        reloader.abort();
        for (_, task) in [metrics, redirect].into_iter().flatten() {
            task.abort();
        }
        db.close().await;
        tracing::info!("database closed; bye");
        result
    }
}

/// Connect with the configured pool size (`RAMPART_DB_MAX_CONNECTIONS`) and apply every
/// pending migration.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    let t = &config.tunables;
    let db = Db::connect_with(
        &config.database_url,
        t.db_max_connections,
        t.db_acquire_timeout,
    )
    .await?;
    if let Err(e) = db.migrate().await {
        db.close().await;
        return Err(e);
    }
    Ok(db)
}

/// Refuse production on any finding; in development warn about each.
fn enforce(config: &Config) -> anyhow::Result<()> {
    let findings = config.audit();
    if config.env == Environment::Production && !findings.is_empty() {
        for f in &findings {
            tracing::error!(setting = f.as_str(), "insecure or missing setting");
        }
        anyhow::bail!(
            "production refuses to start:\n  - {}",
            findings.join("\n  - ")
        );
    }
    for f in &findings {
        tracing::warn!(
            finding = f.as_str(),
            "insecure setting, accepted in development only"
        );
    }
    Ok(())
}
