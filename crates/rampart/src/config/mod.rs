//! Typed configuration: environment variables (a `.env` file in development only), and an
//! optional TOML file named by `RAMPART_CONFIG`; the environment wins over the file.
//!
//! ```text
//! RAMPART_ENV=production RAMPART_PUBLIC_URL=https://api.example.com rampart check-config
//! ```
//!
//! Every setting has the name API.md §1 gives it; a TOML file uses the same names without
//! the `RAMPART_` prefix, in lower case (`listen = "0.0.0.0:8080"`, `database_url = "…"`).
//!
//! Each setting is declared once, in the tables of `settings/` (name, default, parser,
//! secret or not, production rule, documentation line): loading, unknown-key warnings,
//! `check-config`'s printout, the production audit and the README check all read it. To
//! add a setting: a field here, a row there, a row in README.md's table.
//!
//! # Security
//! Secrets (`RAMPART_SESSION_SECRET`, `REDIS_URL`, `RAMPART_SMTP_URL`, the database password)
//! are [`SecretString`]s or redacting newtypes: `Debug` and [`Config::redacted`] never show
//! them. Production mode refuses to start on any insecure setting ([`Config::audit`]),
//! naming every one of them at once.

use std::{
    collections::HashMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use rampart_layers::{client_ip::TrustedProxies, cors::CorsPolicy};
use secrecy::{ExposeSecret, SecretString};

/// Development or production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Generates what is missing and warns about insecure settings.
    Development,
    /// Refuses to start on any insecure or missing setting.
    Production,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// `N/duration`, as in `300/1m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateSpec {
    /// Requests allowed per period.
    pub count: u32,
    /// The period.
    pub period: Duration,
}

impl RateSpec {
    /// Parse `N/<number><s|m|h|d>` (`300/1m`, `5/15m`, `3/24h`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (count, period) = raw
            .trim()
            .split_once('/')
            .ok_or_else(|| "expected N/duration, like 300/1m".to_owned())?;
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| "the count must be a whole number above 0".to_owned())?;
        let period = parse_duration(period.trim())?;
        Ok(Self { count, period })
    }
}

impl fmt::Display for RateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}s", self.count, self.period.as_secs())
    }
}

/// Parse `<number><ms|s|m|h|d>`; a bare number is seconds.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| "expected a duration like 30s, 15m, 24h or 7d".to_owned())?;
    let scale = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err("the unit must be ms, s, m, h or d".to_owned()),
    };
    // Found by the property tests: `99999999999999999d` overflowed (a panic in debug, a
    // wrapped, wrong duration in release).
    let secs = n
        .checked_mul(scale)
        .ok_or_else(|| "the duration is too long".to_owned())?;
    if secs == 0 {
        return Err("the duration must be above 0".to_owned());
    }
    Ok(Duration::from_secs(secs))
}

/// A database URL whose password never appears in `Debug` or `Display`.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    /// Wrap a URL.
    pub fn new(url: String) -> Self {
        Self(SecretString::from(url))
    }

    /// The full URL, password included: only for connecting.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether this is a SQLite URL.
    pub fn is_sqlite(&self) -> bool {
        self.expose().starts_with("sqlite:")
    }

    /// The SQLite file, when this is a SQLite URL naming one.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.expose().strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or_default();
        (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url_password(self.expose()))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// `scheme://user:password@host/…` → `scheme://user:[redacted]@host/…`.
fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            if userinfo.contains(':') {
                format!("{scheme}://{user}:[redacted]@{host}{tail}")
            } else {
                url.to_owned()
            }
        }
        None => url.to_owned(),
    }
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `RAMPART_ENV`.
    pub env: Environment,
    /// `RAMPART_LISTEN`.
    pub listen: SocketAddr,
    /// `RAMPART_DATA_DIR`.
    pub data_dir: PathBuf,
    /// `DATABASE_URL`.
    pub database_url: DatabaseUrl,
    /// `REDIS_URL`.
    pub redis_url: Option<SecretString>,
    /// `RAMPART_PUBLIC_URL`.
    pub public_url: String,
    /// `RAMPART_CORS_ORIGINS`, validated: exact origins only.
    pub cors: CorsPolicy,
    /// The entries of `RAMPART_CORS_ORIGINS` that are never honoured (`*`, `null`):
    /// production refuses them, development ignores them with a warning.
    pub cors_ignored: Vec<String>,
    /// `RAMPART_TRUSTED_PROXIES`.
    pub trusted_proxies: TrustedProxies,
    /// `RAMPART_MAIL_OUTBOX`.
    pub mail_outbox: PathBuf,
    /// `RAMPART_SMTP_URL`.
    pub smtp_url: Option<SecretString>,
    /// `RAMPART_TLS_CERT` and `RAMPART_TLS_KEY`.
    pub tls: Option<TlsFiles>,
    /// `RAMPART_METRICS_LISTEN`.
    pub metrics_listen: Option<SocketAddr>,
    /// `RAMPART_HTTP_REDIRECT_LISTEN`: the plain-HTTP listener that redirects to HTTPS.
    pub http_redirect_listen: Option<SocketAddr>,
    /// `RAMPART_SESSION_SECRET` (in development generated into the data dir when unset).
    pub session_secret: Option<SecretString>,
    /// `RAMPART_KEYS_DIR`, and whether it was set explicitly.
    pub keys_dir: PathBuf,
    /// Whether `RAMPART_KEYS_DIR` was given.
    pub keys_dir_explicit: bool,
    /// The rate limits of API.md §1.
    pub rate_limits: RateLimits,
    /// `RAMPART_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// Timeouts and sizes with their own overrides.
    pub tunables: Tunables,
    /// Token lifetimes, password hashing, mail sender.
    pub auth: AuthSettings,
}

/// Identity settings (their defaults are in the settings table, `settings/`).
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// `RAMPART_ACCESS_TOKEN_TTL`.
    pub access_token_ttl: Duration,
    /// `RAMPART_REFRESH_TOKEN_TTL`: the refresh cookie's `Max-Age`.
    pub refresh_token_ttl: Duration,
    /// `RAMPART_SESSION_MAX_AGE`: a family ends then, whatever its rotations.
    pub session_max_age: Duration,
    /// `RAMPART_PAGE_SESSION_IDLE`: a browser session ends after this long unused.
    pub page_session_idle: Duration,
    /// `RAMPART_PAGE_SESSION_MAX_AGE`: a browser session ends this long after it began.
    pub page_session_max_age: Duration,
    /// `RAMPART_REFRESH_GRACE`: how long a just-rotated refresh token may be presented
    /// once more by a concurrent request.
    pub refresh_grace: Duration,
    /// `RAMPART_ARGON2_MEMORY_KIB`.
    pub argon2_memory_kib: u32,
    /// `RAMPART_ARGON2_ITERATIONS`.
    pub argon2_iterations: u32,
    /// `RAMPART_ARGON2_PARALLELISM`.
    pub argon2_parallelism: u32,
    /// `RAMPART_HASH_WORKERS`.
    pub hash_workers: usize,
    /// `RAMPART_HASH_QUEUE`: hash jobs that may wait; beyond, 503.
    pub hash_queue: usize,
    /// `RAMPART_MAIL_FROM`.
    pub mail_from: String,
}

/// PEM files for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// The rate limits of API.md §1 and §6.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimits {
    /// `RAMPART_RATE_LIMIT_GLOBAL`; `None` when `off` (only for benchmarks: production
    /// refuses it).
    pub global: Option<RateSpec>,
    /// `RAMPART_RATE_LIMIT_LOGIN_ACCOUNT`.
    pub login_account: RateSpec,
    /// `RAMPART_RATE_LIMIT_LOGIN_IP`.
    pub login_ip: RateSpec,
    /// `RAMPART_RATE_LIMIT_REGISTER`.
    pub register: RateSpec,
    /// `RAMPART_RATE_LIMIT_FORGOT`.
    pub forgot: RateSpec,
    /// `RAMPART_RATE_LIMIT_MFA`.
    pub mfa: RateSpec,
    /// The progressive delay of forgot-password per client.
    pub forgot_slow_down: SlowDownSpec,
}

/// A progressive delay: after `after.count` requests per `after.period`, each further one
/// waits `step` more, at most `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SlowDownSpec {
    /// `RAMPART_SLOW_DOWN_FORGOT`.
    pub after: RateSpec,
    /// `RAMPART_SLOW_DOWN_FORGOT_STEP`.
    pub step: Duration,
    /// `RAMPART_SLOW_DOWN_FORGOT_MAX`.
    pub max_delay: Duration,
}

/// Timeouts and sizes (their defaults are in the settings table, `settings/`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tunables {
    /// `RAMPART_HEADER_READ_TIMEOUT`.
    pub header_read_timeout: Duration,
    /// `RAMPART_BODY_TIMEOUT`: the whole body must arrive within it.
    pub body_timeout: Duration,
    /// `RAMPART_REQUEST_TIMEOUT`: a handler running longer answers 503.
    pub request_timeout: Duration,
    /// `RAMPART_SHUTDOWN_GRACE`.
    pub shutdown_grace: Duration,
    /// `RAMPART_JSON_BODY_LIMIT`.
    pub json_body_limit: usize,
    /// `RAMPART_UPLOAD_BODY_LIMIT`.
    pub upload_body_limit: usize,
    /// `RAMPART_DB_MAX_CONNECTIONS`.
    pub db_max_connections: u32,
    /// `RAMPART_DB_ACQUIRE_TIMEOUT`: the longest wait for a database connection, opening
    /// one included; it also bounds each check of the reachability probe.
    pub db_acquire_timeout: Duration,
    /// `RAMPART_REDIS_TIMEOUT`: a slower Redis answer counts as Redis down.
    pub redis_timeout: Duration,
    /// `RAMPART_H2C`, default off: cleartext HTTP/2 (prior knowledge) on a plain listener.
    pub h2c: bool,
}

/// Every problem found while loading, all at once.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<String>);

/// A loaded configuration and the warnings loading produced.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Unknown settings and the like.
    pub warnings: Vec<String>,
}

/// The environment variable behind a setting key.
pub fn env_name(key: &str) -> String {
    match key {
        "database_url" | "redis_url" => key.to_ascii_uppercase(),
        _ => format!("RAMPART_{}", key.to_ascii_uppercase()),
    }
}

impl Config {
    /// Load from a snapshot of the environment (`vars`) and, when `RAMPART_CONFIG` names
    /// one, a TOML file; the environment wins over the file. The caller reads `.env` first
    /// in development. Every setting comes from the table in `settings/`.
    pub fn load(vars: &HashMap<String, String>) -> Result<Loaded, ConfigErrors> {
        let mut warnings = Vec::new();
        let mut errors = Vec::new();
        let mut given: HashMap<&'static str, String> = HashMap::new();
        if let Some(path) = vars.get("RAMPART_CONFIG").filter(|p| !p.trim().is_empty()) {
            for (key, value) in read_toml(Path::new(path))? {
                match (settings::find(&key), value.into_string()) {
                    (None, _) => warnings.push(format!("unknown setting `{key}` ignored")),
                    (Some(s), Ok(v)) => {
                        given.insert(s.key, v);
                    }
                    (Some(s), Err(_)) => errors.push(format!(
                        "{}: expected a string or a number",
                        env_name(s.key)
                    )),
                }
            }
        }
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        for name in names {
            match settings::find_env(name) {
                Some(s) => {
                    given.insert(s.key, vars[name].clone());
                }
                None if settings::is_unknown_env(name) => warnings.push(format!(
                    "unknown setting `{}` ignored",
                    name.trim_start_matches("RAMPART_").to_ascii_lowercase()
                )),
                None => {}
            }
        }
        given.retain(|_, v| !v.trim().is_empty());

        let mut config = Self::blank()?;
        for setting in settings::all() {
            if let Some(value) = given.get(setting.key) {
                match (setting.parse)(&mut config, value.trim()) {
                    Ok(()) => continue,
                    Err(e) => errors.push(format!("{}: {e}", env_name(setting.key))),
                }
            }
            // Not given, or given wrong: the default, so every later setting is still
            // checked against sensible values.
            if let Some(default) = setting.default_value(&config)
                && let Err(e) = (setting.parse)(&mut config, &default)
            {
                errors.push(format!(
                    "{}: the default {default} is invalid: {e}",
                    env_name(setting.key)
                ));
            }
        }
        config.keys_dir_explicit = given.contains_key("keys_dir");
        errors.extend(settings::cross_checks(&config));
        if errors.is_empty() {
            Ok(Loaded { config, warnings })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Zero values that the settings table overwrites: the settings whose default is
    /// "unset" keep them.
    fn blank() -> Result<Self, ConfigErrors> {
        Ok(Self {
            env: Environment::Development,
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            data_dir: PathBuf::new(),
            database_url: DatabaseUrl::new(String::new()),
            redis_url: None,
            public_url: String::new(),
            cors: CorsPolicy::builder()
                .build()
                .map_err(|e| ConfigErrors(vec![e.to_string()]))?,
            cors_ignored: Vec::new(),
            trusted_proxies: TrustedProxies::default(),
            mail_outbox: PathBuf::new(),
            smtp_url: None,
            tls: None,
            metrics_listen: None,
            http_redirect_listen: None,
            session_secret: None,
            keys_dir: PathBuf::new(),
            keys_dir_explicit: false,
            rate_limits: RateLimits::default(),
            log_format: LogFormat::Json,
            tunables: Tunables::default(),
            auth: AuthSettings::default(),
        })
    }
}

/// The top-level keys of a TOML file.
fn read_toml(path: &Path) -> Result<Vec<(String, config::Value)>, ConfigErrors> {
    let reading =
        |e: config::ConfigError| ConfigErrors(vec![format!("reading the configuration: {e}")]);
    let table = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .build()
        .map_err(reading)?
        .try_deserialize::<HashMap<String, config::Value>>()
        .map_err(reading)?;
    let mut entries: Vec<_> = table
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

#[cfg(test)]
mod readme_check;
mod report;
mod settings;
#[cfg(test)]
mod tests;
