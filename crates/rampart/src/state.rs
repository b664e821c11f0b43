//! What every handler shares.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;

use crate::{
    auth::{
        keys::KeyRing,
        password::{HashParams, PasswordHasher},
        revocation::RevocationChecks,
        tokens::{SharedTokens, TokenSettings, key_retention},
    },
    clock::Clock,
    commerce::catalog::Catalog,
    config::{Config, Environment},
    mail::Mailer,
    rate_limits::RateLimiters,
    security_events::SecurityEvents,
    store::Db,
};

/// How long a hash job may wait for a worker before the request gets 503.
const HASH_QUEUE_DEADLINE: Duration = Duration::from_secs(5);

/// Shared application state: one reference count to clone (every request clones it into
/// its extractors), the parts reached through `Deref`.
#[derive(Clone)]
pub struct AppState(Arc<Parts>);

impl std::ops::Deref for AppState {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// What every handler shares.
pub struct Parts {
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// The database.
    pub db: Db,
    /// The time source.
    pub clock: Clock,
    /// The security event log.
    pub events: SecurityEvents,
    /// Password hashing, off the async runtime.
    pub hasher: PasswordHasher,
    /// Access tokens and the JWKS.
    pub tokens: SharedTokens,
    /// Outgoing mail.
    pub mailer: Mailer,
    /// The rate limits and slow-downs of API.md §6.
    pub limits: RateLimiters,
    /// The revocation check of every authenticated request.
    pub revocation: RevocationChecks,
    /// The catalog and its search index.
    pub catalog: Catalog,
}

impl AppState {
    /// Build the state: load (in development, create) the signing keys, size the hashing
    /// pool, choose the mailer.
    pub fn new(config: Config, db: Db, clock: Clock) -> anyhow::Result<Self> {
        let auth = &config.auth;
        let now = clock.now_utc();
        let retention = key_retention(auth.access_token_ttl);
        let keys = match config.env {
            Environment::Development => KeyRing::load_or_generate(&config.keys_dir, now, retention),
            Environment::Production => KeyRing::load(&config.keys_dir, now, retention),
        }
        .context("loading the signing keys (RAMPART_KEYS_DIR)")?;
        let settings = TokenSettings {
            lifetime: auth.access_token_ttl,
            ..TokenSettings::new(config.public_url.clone())
        };
        let tokens = SharedTokens::new(keys, settings).context("access token settings")?;
        let params = HashParams::new(
            auth.argon2_memory_kib,
            auth.argon2_iterations,
            auth.argon2_parallelism,
        )
        .map_err(|e| anyhow::anyhow!("password hashing parameters: {e}"))?;
        let hasher = PasswordHasher::new(
            params,
            auth.hash_workers,
            auth.hash_queue,
            HASH_QUEUE_DEADLINE,
        );
        let mailer = match &config.smtp_url {
            Some(url) => Mailer::smtp(url, &auth.mail_from).context("RAMPART_SMTP_URL")?,
            None => Mailer::outbox(&config.mail_outbox, &auth.mail_from)
                .context("RAMPART_MAIL_OUTBOX")?,
        }
        .with_clock(clock.clone());
        let events = SecurityEvents::new(db.clone(), clock.clone());
        let limits = RateLimiters::new(&config, &clock, &events).context("rate limits")?;
        Ok(Self(Arc::new(Parts {
            revocation: RevocationChecks::new(db.clone()),
            catalog: Catalog::new(db.clone()),
            events,
            limits,
            config: Arc::new(config),
            db,
            clock,
            hasher,
            tokens,
            mailer,
        })))
    }
}

impl AppState {
    /// Re-read the signing keys every `every` (see [`SharedTokens`]), at the state's clock
    /// time, until the returned task is aborted or the runtime stops.
    pub fn spawn_key_reloader(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let tokens = self.tokens.clone();
        let dir = self.config.keys_dir.clone();
        let retention = key_retention(self.config.auth.access_token_ttl);
        let clock = self.clock.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                tokens.reload(&dir, clock.now_utc(), retention);
            }
        })
    }
}
