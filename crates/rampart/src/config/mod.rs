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
use serde::Deserialize;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    let secs = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err("the unit must be ms, s, m, h or d".to_owned()),
    };
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
    /// `RAMPART_CORS_ORIGINS`, validated.
    pub cors: CorsPolicy,
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

/// Identity settings with documented defaults (README, "Configuration").
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `RAMPART_ACCESS_TOKEN_TTL`, default 15 min.
    pub access_token_ttl: Duration,
    /// `RAMPART_REFRESH_TOKEN_TTL`, default 7 days: the refresh cookie's `Max-Age`.
    pub refresh_token_ttl: Duration,
    /// `RAMPART_SESSION_MAX_AGE`, default 30 days: a family ends then, whatever its
    /// rotations.
    pub session_max_age: Duration,
    /// `RAMPART_REFRESH_GRACE`, default 0: how long a just-rotated refresh token may be
    /// presented once more by a concurrent request.
    pub refresh_grace: Duration,
    /// `RAMPART_ARGON2_MEMORY_KIB`, default 19456 (the minimum).
    pub argon2_memory_kib: u32,
    /// `RAMPART_ARGON2_ITERATIONS`, default 2 (the minimum).
    pub argon2_iterations: u32,
    /// `RAMPART_ARGON2_PARALLELISM`, default 1.
    pub argon2_parallelism: u32,
    /// `RAMPART_HASH_WORKERS`, default: the number of cores.
    pub hash_workers: usize,
    /// `RAMPART_HASH_QUEUE`, default 64: hash jobs that may wait; beyond, 503.
    pub hash_queue: usize,
    /// `RAMPART_MAIL_FROM`, default `Rampart <no-reply@HOST>` with the public URL's host.
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
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// `RAMPART_RATE_LIMIT_GLOBAL`, default `300/1m`; `off` (`None`) only for benchmarks:
    /// production refuses it.
    pub global: Option<RateSpec>,
    /// `RAMPART_RATE_LIMIT_LOGIN_ACCOUNT`, default `5/15m`.
    pub login_account: RateSpec,
    /// `RAMPART_RATE_LIMIT_LOGIN_IP`, default `20/15m`.
    pub login_ip: RateSpec,
    /// `RAMPART_RATE_LIMIT_REGISTER`, default `10/1h`.
    pub register: RateSpec,
    /// `RAMPART_RATE_LIMIT_FORGOT`, default `3/24h`.
    pub forgot: RateSpec,
    /// `RAMPART_RATE_LIMIT_MFA`, default `5/15m`.
    pub mfa: RateSpec,
    /// The progressive delay of forgot-password per client.
    pub forgot_slow_down: SlowDownSpec,
}

/// A progressive delay: after `after.count` requests per `after.period`, each further one
/// waits `step` more, at most `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowDownSpec {
    /// `RAMPART_SLOW_DOWN_FORGOT`, default `2/15m`.
    pub after: RateSpec,
    /// `RAMPART_SLOW_DOWN_FORGOT_STEP`, default 500 ms.
    pub step: Duration,
    /// `RAMPART_SLOW_DOWN_FORGOT_MAX`, default 10 s.
    pub max_delay: Duration,
}

/// Tunables with documented defaults (README, "Configuration").
#[derive(Debug, Clone, Copy)]
pub struct Tunables {
    /// `RAMPART_HEADER_READ_TIMEOUT`, default 10 s.
    pub header_read_timeout: Duration,
    /// `RAMPART_BODY_TIMEOUT`, default 30 s: the whole body must arrive within it.
    pub body_timeout: Duration,
    /// `RAMPART_REQUEST_TIMEOUT`, default 30 s: a handler running longer answers 503.
    pub request_timeout: Duration,
    /// `RAMPART_SHUTDOWN_GRACE`, default 30 s.
    pub shutdown_grace: Duration,
    /// `RAMPART_JSON_BODY_LIMIT`, default 10 KiB.
    pub json_body_limit: usize,
    /// `RAMPART_UPLOAD_BODY_LIMIT`, default 1 MiB.
    pub upload_body_limit: usize,
    /// `RAMPART_DB_MAX_CONNECTIONS`, default 8.
    pub db_max_connections: u32,
    /// `RAMPART_REDIS_TIMEOUT`, default 1 s: a slower Redis answer counts as Redis down.
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

/// Settings as strings, from the file and the environment.
#[derive(Debug, Default, Deserialize)]
struct Raw {
    env: Option<String>,
    listen: Option<String>,
    data_dir: Option<String>,
    database_url: Option<String>,
    redis_url: Option<String>,
    public_url: Option<String>,
    cors_origins: Option<String>,
    trusted_proxies: Option<String>,
    mail_outbox: Option<String>,
    smtp_url: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    metrics_listen: Option<String>,
    session_secret: Option<String>,
    keys_dir: Option<String>,
    rate_limit_global: Option<String>,
    rate_limit_login_account: Option<String>,
    rate_limit_login_ip: Option<String>,
    rate_limit_register: Option<String>,
    rate_limit_forgot: Option<String>,
    rate_limit_mfa: Option<String>,
    slow_down_forgot: Option<String>,
    slow_down_forgot_step: Option<String>,
    slow_down_forgot_max: Option<String>,
    log_format: Option<String>,
    header_read_timeout: Option<String>,
    body_timeout: Option<String>,
    request_timeout: Option<String>,
    shutdown_grace: Option<String>,
    json_body_limit: Option<String>,
    upload_body_limit: Option<String>,
    db_max_connections: Option<String>,
    redis_timeout: Option<String>,
    h2c: Option<String>,
    access_token_ttl: Option<String>,
    refresh_token_ttl: Option<String>,
    session_max_age: Option<String>,
    refresh_grace: Option<String>,
    argon2_memory_kib: Option<String>,
    argon2_iterations: Option<String>,
    argon2_parallelism: Option<String>,
    hash_workers: Option<String>,
    hash_queue: Option<String>,
    mail_from: Option<String>,
}

const KNOWN_KEYS: &[&str] = &[
    "env",
    "listen",
    "data_dir",
    "database_url",
    "redis_url",
    "public_url",
    "cors_origins",
    "trusted_proxies",
    "mail_outbox",
    "smtp_url",
    "tls_cert",
    "tls_key",
    "metrics_listen",
    "session_secret",
    "keys_dir",
    "rate_limit_global",
    "rate_limit_login_account",
    "rate_limit_login_ip",
    "rate_limit_register",
    "rate_limit_forgot",
    "rate_limit_mfa",
    "slow_down_forgot",
    "slow_down_forgot_step",
    "slow_down_forgot_max",
    "log_format",
    "header_read_timeout",
    "body_timeout",
    "request_timeout",
    "shutdown_grace",
    "json_body_limit",
    "upload_body_limit",
    "db_max_connections",
    "redis_timeout",
    "h2c",
    "access_token_ttl",
    "refresh_token_ttl",
    "session_max_age",
    "refresh_grace",
    "argon2_memory_kib",
    "argon2_iterations",
    "argon2_parallelism",
    "hash_workers",
    "hash_queue",
    "mail_from",
];

/// `RAMPART_*` variables that are not settings (tooling, tests).
const IGNORED_ENV: &[&str] = &["config", "log"];

/// The environment variable behind a setting key.
pub fn env_name(key: &str) -> String {
    match key {
        "database_url" | "redis_url" => key.to_ascii_uppercase(),
        _ => format!("RAMPART_{}", key.to_ascii_uppercase()),
    }
}

impl Config {
    /// Load from a snapshot of the environment (`vars`) and, when `RAMPART_CONFIG` names
    /// one, a TOML file. The caller reads `.env` first in development.
    pub fn load(vars: &HashMap<String, String>) -> Result<Loaded, ConfigErrors> {
        let mut warnings = Vec::new();
        let mut builder = config::Config::builder();
        if let Some(path) = vars.get("RAMPART_CONFIG").filter(|p| !p.is_empty()) {
            builder = builder
                .add_source(config::File::from(Path::new(path)).format(config::FileFormat::Toml));
        }
        let rampart_vars: HashMap<String, String> = vars
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("RAMPART_")?.to_ascii_lowercase();
                if IGNORED_ENV.contains(&key.as_str()) || key.starts_with("test_") {
                    return None;
                }
                Some((format!("RAMPART_{}", key.to_ascii_uppercase()), v.clone()))
            })
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("RAMPART")
                .prefix_separator("_")
                .try_parsing(false)
                .source(Some(rampart_vars)),
        );
        for key in ["DATABASE_URL", "REDIS_URL"] {
            let value = vars.get(key).filter(|v| !v.is_empty()).cloned();
            builder = builder
                .set_override_option(key.to_ascii_lowercase(), value)
                .map_err(|e| ConfigErrors(vec![e.to_string()]))?;
        }
        let built = builder
            .build()
            .map_err(|e| ConfigErrors(vec![format!("reading the configuration: {e}")]))?;
        if let Ok(table) = built
            .clone()
            .try_deserialize::<HashMap<String, config::Value>>()
        {
            for key in table.keys() {
                if !KNOWN_KEYS.contains(&key.as_str()) {
                    warnings.push(format!("unknown setting `{key}` ignored"));
                }
            }
        }
        let raw: Raw = built
            .try_deserialize()
            .map_err(|e| ConfigErrors(vec![format!("reading the configuration: {e}")]))?;
        let config = Self::from_raw(raw)?;
        Ok(Loaded { config, warnings })
    }

    fn from_raw(raw: Raw) -> Result<Self, ConfigErrors> {
        let mut errors = Vec::new();
        let mut field = |key: &str, result: Result<(), String>| {
            if let Err(e) = result {
                errors.push(format!("{}: {e}", env_name(key)));
            }
        };
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());

        let env = match non_empty(raw.env).as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(_) => {
                field("env", Err("must be `development` or `production`".into()));
                Environment::Development
            }
        };
        let listen = parse_or(
            &mut field,
            "listen",
            raw.listen,
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            |s| {
                s.parse::<SocketAddr>()
                    .map_err(|_| "expected host:port, like 127.0.0.1:8080".into())
            },
        );
        let data_dir = PathBuf::from(non_empty(raw.data_dir).unwrap_or_else(|| "./data".into()));
        let database_url = DatabaseUrl::new(
            non_empty(raw.database_url)
                .unwrap_or_else(|| format!("sqlite://{}/rampart.db", data_dir.display())),
        );
        let db = database_url.expose();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            field(
                "database_url",
                Err("must start with sqlite:// or postgres://".into()),
            );
        }
        let public_url =
            non_empty(raw.public_url).unwrap_or_else(|| "http://127.0.0.1:8080".into());
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            field(
                "public_url",
                Err("must be an http:// or https:// URL".into()),
            );
        }
        let public_url = public_url.trim_end_matches('/').to_owned();
        let origins: Vec<String> = non_empty(raw.cors_origins)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let cors = match CorsPolicy::builder().allow_origins(origins).build() {
            Ok(policy) => policy,
            Err(e) => {
                field("cors_origins", Err(e.to_string()));
                CorsPolicy::builder()
                    .build()
                    .map_err(|e| ConfigErrors(vec![e.to_string()]))?
            }
        };
        let trusted_proxies = match TrustedProxies::parse(&raw.trusted_proxies.unwrap_or_default())
        {
            Ok(p) => p,
            Err(e) => {
                field("trusted_proxies", Err(e.to_string()));
                TrustedProxies::default()
            }
        };
        let mail_outbox = non_empty(raw.mail_outbox)
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("outbox"));
        let tls = match (non_empty(raw.tls_cert), non_empty(raw.tls_key)) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.into(),
                key: key.into(),
            }),
            (None, None) => None,
            _ => {
                field(
                    "tls_cert",
                    Err("RAMPART_TLS_CERT and RAMPART_TLS_KEY go together".into()),
                );
                None
            }
        };
        let metrics_listen = match non_empty(raw.metrics_listen) {
            None => None,
            Some(s) => match s.parse::<SocketAddr>() {
                Ok(addr) if addr == listen => {
                    field(
                        "metrics_listen",
                        Err("must differ from RAMPART_LISTEN".into()),
                    );
                    None
                }
                Ok(addr) => Some(addr),
                Err(_) => {
                    field("metrics_listen", Err("expected host:port".into()));
                    None
                }
            },
        };
        let keys_dir_explicit = non_empty(raw.keys_dir.clone()).is_some();
        let keys_dir = non_empty(raw.keys_dir)
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("keys"));
        let mut rate = |key: &str, value: Option<String>, count: u32, minutes: u64| {
            let default = RateSpec {
                count,
                period: Duration::from_secs(minutes * 60),
            };
            parse_or(&mut field, key, value, default, RateSpec::parse)
        };
        let rate_limits = RateLimits {
            global: match raw.rate_limit_global {
                Some(v) if v.trim() == "off" => None,
                v => Some(rate("rate_limit_global", v, 300, 1)),
            },
            login_account: rate(
                "rate_limit_login_account",
                raw.rate_limit_login_account,
                5,
                15,
            ),
            login_ip: rate("rate_limit_login_ip", raw.rate_limit_login_ip, 20, 15),
            register: rate("rate_limit_register", raw.rate_limit_register, 10, 60),
            forgot: rate("rate_limit_forgot", raw.rate_limit_forgot, 3, 24 * 60),
            mfa: rate("rate_limit_mfa", raw.rate_limit_mfa, 5, 15),
            forgot_slow_down: SlowDownSpec {
                after: rate("slow_down_forgot", raw.slow_down_forgot, 2, 15),
                step: parse_or(
                    &mut field,
                    "slow_down_forgot_step",
                    raw.slow_down_forgot_step,
                    Duration::from_millis(500),
                    parse_duration,
                ),
                max_delay: parse_or(
                    &mut field,
                    "slow_down_forgot_max",
                    raw.slow_down_forgot_max,
                    Duration::from_secs(10),
                    parse_duration,
                ),
            },
        };
        let log_format = parse_or(
            &mut field,
            "log_format",
            raw.log_format,
            LogFormat::Json,
            |s| match s {
                "json" => Ok(LogFormat::Json),
                "pretty" => Ok(LogFormat::Pretty),
                _ => Err("must be `json` or `pretty`".into()),
            },
        );
        let size = |s: &str| {
            s.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| "expected a size in bytes above 0".to_owned())
        };
        let tunables = Tunables {
            header_read_timeout: parse_or(
                &mut field,
                "header_read_timeout",
                raw.header_read_timeout,
                Duration::from_secs(10),
                parse_duration,
            ),
            body_timeout: parse_or(
                &mut field,
                "body_timeout",
                raw.body_timeout,
                Duration::from_secs(30),
                parse_duration,
            ),
            request_timeout: parse_or(
                &mut field,
                "request_timeout",
                raw.request_timeout,
                Duration::from_secs(30),
                parse_duration,
            ),
            shutdown_grace: parse_or(
                &mut field,
                "shutdown_grace",
                raw.shutdown_grace,
                Duration::from_secs(30),
                parse_duration,
            ),
            json_body_limit: parse_or(
                &mut field,
                "json_body_limit",
                raw.json_body_limit,
                10 * 1024,
                size,
            ),
            upload_body_limit: parse_or(
                &mut field,
                "upload_body_limit",
                raw.upload_body_limit,
                1024 * 1024,
                size,
            ),
            db_max_connections: parse_or(
                &mut field,
                "db_max_connections",
                raw.db_max_connections,
                8,
                |s| {
                    s.parse::<u32>()
                        .ok()
                        .filter(|n| (1..=1000).contains(n))
                        .ok_or_else(|| "expected a number from 1 to 1000".to_owned())
                },
            ),
            redis_timeout: parse_or(
                &mut field,
                "redis_timeout",
                raw.redis_timeout,
                Duration::from_secs(1),
                parse_duration,
            ),
            h2c: parse_or(&mut field, "h2c", raw.h2c, false, |s| match s {
                "on" => Ok(true),
                "off" => Ok(false),
                _ => Err("must be `on` or `off`".into()),
            }),
        };
        let count = |min: u64, max: u64| {
            move |s: &str| {
                s.parse::<u64>()
                    .ok()
                    .filter(|n| (min..=max).contains(n))
                    .ok_or_else(|| format!("expected a whole number from {min} to {max}"))
            }
        };
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let host = public_url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':']).next())
            .filter(|h| !h.is_empty())
            .unwrap_or("localhost")
            .to_owned();
        let auth = AuthSettings {
            access_token_ttl: parse_or(
                &mut field,
                "access_token_ttl",
                raw.access_token_ttl,
                Duration::from_secs(15 * 60),
                parse_duration,
            ),
            refresh_token_ttl: parse_or(
                &mut field,
                "refresh_token_ttl",
                raw.refresh_token_ttl,
                Duration::from_secs(7 * 86_400),
                parse_duration,
            ),
            session_max_age: parse_or(
                &mut field,
                "session_max_age",
                raw.session_max_age,
                Duration::from_secs(30 * 86_400),
                parse_duration,
            ),
            refresh_grace: match non_empty(raw.refresh_grace) {
                None => Duration::ZERO,
                Some(v) if v.trim() == "0" || v.trim() == "0s" => Duration::ZERO,
                Some(v) => parse_duration(v.trim()).unwrap_or_else(|e| {
                    field("refresh_grace", Err(e));
                    Duration::ZERO
                }),
            },
            argon2_memory_kib: parse_or(
                &mut field,
                "argon2_memory_kib",
                raw.argon2_memory_kib,
                19_456,
                count(19_456, 4_194_304),
            ) as u32,
            argon2_iterations: parse_or(
                &mut field,
                "argon2_iterations",
                raw.argon2_iterations,
                2,
                count(2, 100),
            ) as u32,
            argon2_parallelism: parse_or(
                &mut field,
                "argon2_parallelism",
                raw.argon2_parallelism,
                1,
                count(1, 64),
            ) as u32,
            hash_workers: parse_or(
                &mut field,
                "hash_workers",
                raw.hash_workers,
                cores as u64,
                count(1, 256),
            ) as usize,
            hash_queue: parse_or(
                &mut field,
                "hash_queue",
                raw.hash_queue,
                64,
                count(0, 100_000),
            ) as usize,
            mail_from: non_empty(raw.mail_from)
                .unwrap_or_else(|| format!("Rampart <no-reply@{host}>")),
        };
        // The Redis client is built without TLS: refuse `rediss://` here, naming the
        // setting, rather than failing at start (and never echo the URL: it may hold a
        // password).
        let redis_url = non_empty(raw.redis_url).filter(|url| {
            let plain = url.trim().starts_with("redis://");
            if !plain {
                field(
                    "redis_url",
                    Err("must be a redis:// URL (TLS to Redis is not built in: keep Redis on a private network)".into()),
                );
            }
            plain
        });
        let config = Self {
            env,
            listen,
            data_dir,
            database_url,
            redis_url: redis_url.map(SecretString::from),
            public_url,
            cors,
            trusted_proxies,
            mail_outbox,
            smtp_url: non_empty(raw.smtp_url).map(SecretString::from),
            tls,
            metrics_listen,
            session_secret: non_empty(raw.session_secret).map(SecretString::from),
            keys_dir,
            keys_dir_explicit,
            rate_limits,
            log_format,
            tunables,
            auth,
        };
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(errors))
        }
    }
}

/// Parse `value` when given, else take `default`; a bad value is recorded and replaced by
/// the default so every other setting is still checked.
fn parse_or<T>(
    field: &mut impl FnMut(&str, Result<(), String>),
    key: &str,
    value: Option<String>,
    default: T,
    parse: impl Fn(&str) -> Result<T, String>,
) -> T {
    match value.filter(|v| !v.trim().is_empty()) {
        None => default,
        Some(v) => parse(v.trim()).unwrap_or_else(|e| {
            field(key, Err(e));
            default
        }),
    }
}

mod report;
#[cfg(test)]
mod tests;
