//! The table of settings: every setting declared once, with its default, parser, secrecy,
//! production rule and documentation line.
//!
//! [`Config::load`] parses each given value (or the default) with the row's parser, in
//! table order; `check-config` prints each row's value (a secret only as `[redacted]`);
//! [`Config::audit`] runs each row's production rule; a test compares the table with
//! README.md's. A default may name `$RAMPART_DATA_DIR` or read settings above its row.

use rampart_layers::cors::CorsError;

use super::{report, *};

/// Which README table documents a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    /// "Configuration".
    Main,
    /// "Tunables, each with its default".
    Tunables,
    /// "Identity tunables".
    Identity,
}

/// What a setting is when it is not given.
pub(crate) enum Fallback {
    /// This text, parsed like a given value; `$RAMPART_DATA_DIR` stands for that setting.
    Value(&'static str),
    /// Nothing; the README says this text.
    Unset(#[cfg_attr(not(test), allow(dead_code))] &'static str),
    /// Computed from the settings above: the README's text, and the computation.
    Derived(
        #[cfg_attr(not(test), allow(dead_code))] &'static str,
        fn(&Config) -> String,
    ),
}

/// How `check-config` shows a setting.
pub(crate) enum Show {
    /// The value, `None` when unset.
    Value(fn(&Config) -> Option<String>),
    /// A secret: only whether it is set.
    Secret(fn(&Config) -> bool),
}

/// One setting.
pub(crate) struct Setting {
    /// The TOML key; the variable is [`env_name`] of it.
    pub key: &'static str,
    /// Its README table.
    #[cfg_attr(not(test), allow(dead_code))] // the documentation: read by the README check
    pub group: Group,
    /// Its default.
    pub default: Fallback,
    /// The README's "meaning" cell.
    #[cfg_attr(not(test), allow(dead_code))]
    pub doc: &'static str,
    /// Parse a non-empty, trimmed value into the configuration.
    pub parse: fn(&mut Config, &str) -> Result<(), String>,
    /// Its line in `check-config`.
    pub show: Show,
    /// What production refuses about it (API.md §8); development warns instead.
    pub production: fn(&Config) -> Vec<String>,
}

impl Setting {
    /// The default as text to parse, when there is one.
    pub fn default_value(&self, config: &Config) -> Option<String> {
        match self.default {
            Fallback::Value(text) => Some(
                text.replace(
                    "$RAMPART_DATA_DIR",
                    config
                        .data_dir
                        .to_str()
                        .unwrap_or_default()
                        .trim_end_matches('/'),
                ),
            ),
            Fallback::Unset(_) => None,
            Fallback::Derived(_, compute) => Some(compute(config)),
        }
    }

    /// The default as README.md writes it.
    #[cfg(test)]
    pub fn documented_default(&self) -> String {
        match self.default {
            Fallback::Value(text) => format!("`{text}`"),
            Fallback::Unset(text) | Fallback::Derived(text, _) => text.to_owned(),
        }
    }
}

/// A variable read from the environment only, outside the table (by the command line or
/// the logger), documented in the README all the same.
#[cfg_attr(not(test), allow(dead_code))] // `default` and `doc`: read by the README check
pub(crate) struct ProcessVariable {
    /// The variable.
    pub name: &'static str,
    /// The README's default cell.
    pub default: &'static str,
    /// The README's meaning cell.
    pub doc: &'static str,
}

/// `RAMPART_*` variables that are not settings.
pub(crate) const PROCESS_VARIABLES: &[ProcessVariable] = &[
    ProcessVariable {
        name: "RAMPART_CONFIG",
        default: "unset",
        doc: "a TOML file with any of these settings (environment only; the environment wins over it)",
    },
    ProcessVariable {
        name: "RAMPART_LOG",
        default: "`info`",
        doc: "log filter (`tracing` `EnvFilter` syntax, e.g. `info,rampart::access=warn`)",
    },
];

/// The setting of a TOML key.
pub(crate) fn find(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// The setting of an environment variable.
pub(crate) fn find_env(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| env_name(s.key) == name)
}

/// A `RAMPART_*` variable that is neither a setting, a process variable nor a test's.
pub(crate) fn is_unknown_env(name: &str) -> bool {
    name.starts_with("RAMPART_")
        && !name.starts_with("RAMPART_TEST_")
        && find_env(name).is_none()
        && !PROCESS_VARIABLES.iter().any(|p| p.name == name)
}

/// Rules that span settings.
pub(crate) fn cross_checks(config: &Config) -> Vec<String> {
    let mut errors = Vec::new();
    if config
        .tls
        .as_ref()
        .is_some_and(|t| t.cert.as_os_str().is_empty() || t.key.as_os_str().is_empty())
    {
        errors.push(format!(
            "{}: RAMPART_TLS_CERT and RAMPART_TLS_KEY go together",
            env_name("tls_cert")
        ));
    }
    errors
}

use Fallback::{Derived, Unset, Value};
use Group::{Identity, Main, Tunables as Tune};

/// Every setting, in the order `check-config` prints them.
pub(crate) static SETTINGS: &[Setting] = &[
    Setting {
        key: "env",
        group: Main,
        default: Value("development"),
        doc: "`production` refuses to start with any insecure or missing setting",
        parse: |c, v| {
            c.env = match v {
                "development" => Environment::Development,
                "production" => Environment::Production,
                _ => return Err("must be `development` or `production`".into()),
            };
            Ok(())
        },
        show: Show::Value(|c| {
            Some(match c.env {
                Environment::Development => "development".into(),
                Environment::Production => "production".into(),
            })
        }),
        production: no_rule,
    },
    Setting {
        key: "listen",
        group: Main,
        default: Value("127.0.0.1:8080"),
        doc: "public listener",
        parse: |c, v| {
            set(
                &mut c.listen,
                address(v, "expected host:port, like 127.0.0.1:8080"),
            )
        },
        show: Show::Value(|c| Some(c.listen.to_string())),
        production: no_rule,
    },
    Setting {
        key: "data_dir",
        group: Main,
        default: Value("./data"),
        doc: "local state for the embedded default",
        parse: |c, v| set(&mut c.data_dir, Ok(v.into())),
        show: Show::Value(|c| Some(c.data_dir.display().to_string())),
        production: |c| {
            let readable = c.database_url.is_sqlite() && report::world_readable(&c.data_dir);
            readable
                .then(|| {
                    format!(
                        "RAMPART_DATA_DIR ({}) is readable by others",
                        c.data_dir.display()
                    )
                })
                .into_iter()
                .collect()
        },
    },
    Setting {
        key: "database_url",
        group: Main,
        default: Value("sqlite://$RAMPART_DATA_DIR/rampart.db"),
        doc: "`sqlite://…` or `postgres://…`",
        parse: |c, v| {
            if !["sqlite:", "postgres://", "postgresql://"]
                .iter()
                .any(|p| v.starts_with(p))
            {
                return Err("must start with sqlite:// or postgres://".into());
            }
            c.database_url = DatabaseUrl::new(v.to_owned());
            Ok(())
        },
        // `DatabaseUrl`'s `Display` redacts the password.
        show: Show::Value(|c| Some(c.database_url.to_string())),
        production: |c| {
            c.database_url
                .sqlite_path()
                .filter(|db| report::world_readable(db))
                .map(|db| {
                    format!(
                        "DATABASE_URL: the database file {} is readable by others",
                        db.display()
                    )
                })
                .into_iter()
                .collect()
        },
    },
    Setting {
        key: "redis_url",
        group: Main,
        default: Unset("unset"),
        doc: "rate limits shared and exact across every instance (`redis://[:password@]host:port[/db]`; TLS to Redis is not built in, so `rediss://` is refused: keep Redis on a private network)",
        // The Redis client is built without TLS: refuse `rediss://` here, naming the
        // setting, rather than failing at start (and never echo the URL: it may hold a
        // password).
        parse: |c, v| {
            if !v.starts_with("redis://") {
                return Err("must be a redis:// URL (TLS to Redis is not built in: keep Redis on a private network)".into());
            }
            c.redis_url = Some(SecretString::from(v.to_owned()));
            Ok(())
        },
        show: Show::Secret(|c| c.redis_url.is_some()),
        production: no_rule,
    },
    Setting {
        key: "public_url",
        group: Main,
        default: Value("http://127.0.0.1:8080"),
        doc: "token issuer and base of links in mail",
        parse: |c, v| {
            if !(v.starts_with("http://") || v.starts_with("https://")) {
                return Err("must be an http:// or https:// URL".into());
            }
            c.public_url = v.trim_end_matches('/').to_owned();
            Ok(())
        },
        show: Show::Value(|c| Some(c.public_url.clone())),
        production: |c| {
            (!c.public_url.starts_with("https://"))
                .then(|| "RAMPART_PUBLIC_URL is not an https:// URL".to_owned())
                .into_iter()
                .collect()
        },
    },
    Setting {
        key: "cors_origins",
        group: Main,
        default: Unset("empty: no cross-origin access"),
        doc: "comma-separated exact origins (`https://app.example.com`); `*` and `null` are never honoured: production refuses them, development warns and ignores them (no cross-origin access through them)",
        parse: cors_origins,
        show: Show::Value(|c| Some(c.cors.origins().collect::<Vec<_>>().join(","))),
        production: |c| {
            c.cors_ignored
                .iter()
                .map(|origin| {
                    format!(
                        "RAMPART_CORS_ORIGINS allows `{origin}`, which is never honoured with credentials: \
                         list each allowed origin exactly (development ignores it: no cross-origin access through it)"
                    )
                })
                .collect()
        },
    },
    Setting {
        key: "trusted_proxies",
        group: Main,
        default: Unset("empty"),
        doc: "comma-separated CIDRs whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed",
        parse: |c, v| {
            set(
                &mut c.trusted_proxies,
                TrustedProxies::parse(v).map_err(|e| e.to_string()),
            )
        },
        show: Show::Value(|c| {
            let networks = c.trusted_proxies.networks().iter();
            Some(
                networks
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            )
        }),
        production: |c| {
            (c.tls.is_none() && c.trusted_proxies.is_empty())
                .then(|| {
                    "neither TLS (RAMPART_TLS_CERT, RAMPART_TLS_KEY) nor a trusted proxy \
                     (RAMPART_TRUSTED_PROXIES) is configured"
                        .to_owned()
                })
                .into_iter()
                .collect()
        },
    },
    Setting {
        key: "mail_outbox",
        group: Main,
        default: Value("$RAMPART_DATA_DIR/outbox"),
        doc: "directory for `.eml` files",
        parse: |c, v| set(&mut c.mail_outbox, Ok(v.into())),
        show: Show::Value(|c| Some(c.mail_outbox.display().to_string())),
        production: no_rule,
    },
    Setting {
        key: "smtp_url",
        group: Main,
        default: Unset("unset"),
        doc: "send mail over SMTP instead of the outbox",
        parse: |c, v| set(&mut c.smtp_url, Ok(Some(SecretString::from(v.to_owned())))),
        show: Show::Secret(|c| c.smtp_url.is_some()),
        production: |c| {
            c.smtp_url
                .is_none()
                .then(|| {
                    "RAMPART_SMTP_URL is not set: mail goes to the outbox directory".to_owned()
                })
                .into_iter()
                .collect()
        },
    },
    Setting {
        key: "tls_cert",
        group: Main,
        default: Unset("unset"),
        doc: TLS_DOC,
        parse: |c, v| {
            tls_files(c).cert = v.into();
            Ok(())
        },
        show: Show::Value(|c| c.tls.as_ref().map(|t| t.cert.display().to_string())),
        production: no_rule,
    },
    Setting {
        key: "tls_key",
        group: Main,
        default: Unset("unset"),
        doc: TLS_DOC,
        parse: |c, v| {
            tls_files(c).key = v.into();
            Ok(())
        },
        show: Show::Value(|c| c.tls.as_ref().map(|t| t.key.display().to_string())),
        production: no_rule,
    },
    Setting {
        key: "metrics_listen",
        group: Main,
        default: Unset("unset"),
        doc: "separate listener for Prometheus metrics; must differ from `RAMPART_LISTEN`",
        parse: |c, v| match address(v, "expected host:port")? {
            addr if addr == c.listen => Err("must differ from RAMPART_LISTEN".into()),
            addr => set(&mut c.metrics_listen, Ok(Some(addr))),
        },
        show: Show::Value(|c| c.metrics_listen.map(|a| a.to_string())),
        production: no_rule,
    },
    Setting {
        key: "session_secret",
        group: Main,
        default: Unset("generated in development"),
        doc: "≥ 32 bytes",
        parse: |c, v| {
            set(
                &mut c.session_secret,
                Ok(Some(SecretString::from(v.to_owned()))),
            )
        },
        show: Show::Secret(|c| c.session_secret.is_some()),
        production: |c| match &c.session_secret {
            None => vec!["RAMPART_SESSION_SECRET is not set".to_owned()],
            Some(s) if s.expose_secret().len() < 32 => {
                vec!["RAMPART_SESSION_SECRET is shorter than 32 bytes".to_owned()]
            }
            Some(_) => Vec::new(),
        },
    },
    Setting {
        key: "keys_dir",
        group: Main,
        default: Value("$RAMPART_DATA_DIR/keys"),
        doc: "Ed25519 signing keys, `<kid>.pem`, mode 0600",
        parse: |c, v| set(&mut c.keys_dir, Ok(v.into())),
        show: Show::Value(|c| Some(c.keys_dir.display().to_string())),
        production: |c| {
            if c.keys_dir_explicit {
                report::audit_keys_dir(&c.keys_dir)
            } else {
                vec!["RAMPART_KEYS_DIR is not set".to_owned()]
            }
        },
    },
    Setting {
        key: "rate_limit_global",
        group: Main,
        default: Value("300/1m"),
        doc: "per client, all routes; `N/duration` with `s`, `m`, `h`, `d`; `off` only for benchmarks (production refuses it)",
        parse: |c, v| match v {
            "off" => set(&mut c.rate_limits.global, Ok(None)),
            v => set(&mut c.rate_limits.global, RateSpec::parse(v).map(Some)),
        },
        show: Show::Value(|c| {
            Some(
                c.rate_limits
                    .global
                    .map_or_else(|| "off".into(), |g| g.to_string()),
            )
        }),
        production: |c| {
            c.rate_limits
                .global
                .is_none()
                .then(|| "RAMPART_RATE_LIMIT_GLOBAL is off: clients are not limited".to_owned())
                .into_iter()
                .collect()
        },
    },
    Setting {
        key: "rate_limit_login_account",
        group: Main,
        default: Value("5/15m"),
        doc: "failed logins per account",
        parse: |c, v| set(&mut c.rate_limits.login_account, RateSpec::parse(v)),
        show: Show::Value(|c| Some(c.rate_limits.login_account.to_string())),
        production: no_rule,
    },
    Setting {
        key: "rate_limit_login_ip",
        group: Main,
        default: Value("20/15m"),
        doc: "failed logins per client",
        parse: |c, v| set(&mut c.rate_limits.login_ip, RateSpec::parse(v)),
        show: Show::Value(|c| Some(c.rate_limits.login_ip.to_string())),
        production: no_rule,
    },
    Setting {
        key: "rate_limit_register",
        group: Main,
        default: Value("10/1h"),
        doc: "registrations per client",
        parse: |c, v| set(&mut c.rate_limits.register, RateSpec::parse(v)),
        show: Show::Value(|c| Some(c.rate_limits.register.to_string())),
        production: no_rule,
    },
    Setting {
        key: "rate_limit_forgot",
        group: Main,
        default: Value("3/24h"),
        doc: "forgot-password requests per address",
        parse: |c, v| set(&mut c.rate_limits.forgot, RateSpec::parse(v)),
        show: Show::Value(|c| Some(c.rate_limits.forgot.to_string())),
        production: no_rule,
    },
    Setting {
        key: "rate_limit_mfa",
        group: Main,
        default: Value("5/15m"),
        doc: "failed MFA codes per `mfa_token` and per account",
        parse: |c, v| set(&mut c.rate_limits.mfa, RateSpec::parse(v)),
        show: Show::Value(|c| Some(c.rate_limits.mfa.to_string())),
        production: no_rule,
    },
    Setting {
        key: "slow_down_forgot",
        group: Main,
        default: Value("2/15m"),
        doc: "forgot-password requests per client before each further one is delayed",
        parse: |c, v| {
            set(
                &mut c.rate_limits.forgot_slow_down.after,
                RateSpec::parse(v),
            )
        },
        show: Show::Value(|c| Some(c.rate_limits.forgot_slow_down.after.to_string())),
        production: no_rule,
    },
    Setting {
        key: "slow_down_forgot_step",
        group: Main,
        default: Value("500ms"),
        doc: "the delay added by each further request",
        parse: |c, v| set(&mut c.rate_limits.forgot_slow_down.step, parse_duration(v)),
        show: Show::Value(|c| secs(c.rate_limits.forgot_slow_down.step)),
        production: no_rule,
    },
    Setting {
        key: "slow_down_forgot_max",
        group: Main,
        default: Value("10s"),
        doc: "the longest delay",
        parse: |c, v| {
            set(
                &mut c.rate_limits.forgot_slow_down.max_delay,
                parse_duration(v),
            )
        },
        show: Show::Value(|c| secs(c.rate_limits.forgot_slow_down.max_delay)),
        production: no_rule,
    },
    Setting {
        key: "log_format",
        group: Main,
        default: Value("json"),
        doc: "`json` or `pretty`",
        parse: |c, v| {
            c.log_format = match v {
                "json" => LogFormat::Json,
                "pretty" => LogFormat::Pretty,
                _ => return Err("must be `json` or `pretty`".into()),
            };
            Ok(())
        },
        show: Show::Value(|c| {
            Some(match c.log_format {
                LogFormat::Json => "json".into(),
                LogFormat::Pretty => "pretty".into(),
            })
        }),
        production: no_rule,
    },
    Setting {
        key: "header_read_timeout",
        group: Tune,
        default: Value("10s"),
        doc: "the request head (and a TLS handshake) must arrive within it, or the connection is closed",
        parse: |c, v| set(&mut c.tunables.header_read_timeout, parse_duration(v)),
        show: Show::Value(|c| secs(c.tunables.header_read_timeout)),
        production: no_rule,
    },
    Setting {
        key: "body_timeout",
        group: Tune,
        default: Value("30s"),
        doc: "the whole request body must arrive within it, or 408 and the connection is closed",
        parse: |c, v| set(&mut c.tunables.body_timeout, parse_duration(v)),
        show: Show::Value(|c| secs(c.tunables.body_timeout)),
        production: no_rule,
    },
    Setting {
        key: "request_timeout",
        group: Tune,
        default: Value("30s"),
        doc: "a request still running after it is answered 503",
        parse: |c, v| set(&mut c.tunables.request_timeout, parse_duration(v)),
        show: Show::Value(|c| secs(c.tunables.request_timeout)),
        production: no_rule,
    },
    Setting {
        key: "shutdown_grace",
        group: Tune,
        default: Value("30s"),
        doc: "how long in-flight requests may finish after SIGTERM/SIGINT",
        parse: |c, v| set(&mut c.tunables.shutdown_grace, parse_duration(v)),
        show: Show::Value(|c| secs(c.tunables.shutdown_grace)),
        production: no_rule,
    },
    Setting {
        key: "json_body_limit",
        group: Tune,
        default: Value("10240"),
        doc: "bytes, JSON bodies",
        parse: |c, v| set(&mut c.tunables.json_body_limit, size(v)),
        show: Show::Value(|c| Some(c.tunables.json_body_limit.to_string())),
        production: no_rule,
    },
    Setting {
        key: "upload_body_limit",
        group: Tune,
        default: Value("1048576"),
        doc: "bytes, uploads",
        parse: |c, v| set(&mut c.tunables.upload_body_limit, size(v)),
        show: Show::Value(|c| Some(c.tunables.upload_body_limit.to_string())),
        production: no_rule,
    },
    Setting {
        key: "db_max_connections",
        group: Tune,
        default: Value("8"),
        doc: "database pool size",
        parse: |c, v| {
            let n = v.parse::<u32>().ok().filter(|n| (1..=1000).contains(n));
            set(
                &mut c.tunables.db_max_connections,
                n.ok_or_else(|| "expected a number from 1 to 1000".into()),
            )
        },
        show: Show::Value(|c| Some(c.tunables.db_max_connections.to_string())),
        production: no_rule,
    },
    Setting {
        key: "redis_timeout",
        group: Tune,
        default: Value("1s"),
        doc: "a Redis connection or answer slower than this counts as Redis down",
        parse: |c, v| set(&mut c.tunables.redis_timeout, parse_duration(v)),
        show: Show::Value(|c| secs(c.tunables.redis_timeout)),
        production: no_rule,
    },
    Setting {
        key: "access_token_ttl",
        group: Identity,
        default: Value("15m"),
        doc: "access-token lifetime",
        parse: |c, v| set(&mut c.auth.access_token_ttl, parse_duration(v)),
        show: Show::Value(|c| secs(c.auth.access_token_ttl)),
        production: no_rule,
    },
    Setting {
        key: "refresh_token_ttl",
        group: Identity,
        default: Value("7d"),
        doc: "refresh-token lifetime, the cookie's `Max-Age`",
        parse: |c, v| set(&mut c.auth.refresh_token_ttl, parse_duration(v)),
        show: Show::Value(|c| secs(c.auth.refresh_token_ttl)),
        production: no_rule,
    },
    Setting {
        key: "session_max_age",
        group: Identity,
        default: Value("30d"),
        doc: "a session family ends this long after its login, whatever the rotations",
        parse: |c, v| set(&mut c.auth.session_max_age, parse_duration(v)),
        show: Show::Value(|c| secs(c.auth.session_max_age)),
        production: no_rule,
    },
    Setting {
        key: "refresh_grace",
        group: Identity,
        default: Value("0s"),
        doc: "a just-rotated refresh token may be presented once more within it (several tabs)",
        parse: |c, v| match v {
            "0" | "0s" => set(&mut c.auth.refresh_grace, Ok(Duration::ZERO)),
            v => set(&mut c.auth.refresh_grace, parse_duration(v)),
        },
        show: Show::Value(|c| secs(c.auth.refresh_grace)),
        production: no_rule,
    },
    Setting {
        key: "argon2_memory_kib",
        group: Identity,
        default: Value("19456"),
        doc: "Argon2id memory (minimum 19456)",
        parse: |c, v| set(&mut c.auth.argon2_memory_kib, whole(v, 19_456, 4_194_304)),
        show: Show::Value(|c| Some(c.auth.argon2_memory_kib.to_string())),
        production: no_rule,
    },
    Setting {
        key: "argon2_iterations",
        group: Identity,
        default: Value("2"),
        doc: "Argon2id passes (minimum 2)",
        parse: |c, v| set(&mut c.auth.argon2_iterations, whole(v, 2, 100)),
        show: Show::Value(|c| Some(c.auth.argon2_iterations.to_string())),
        production: no_rule,
    },
    Setting {
        key: "argon2_parallelism",
        group: Identity,
        default: Value("1"),
        doc: "Argon2id lanes",
        parse: |c, v| set(&mut c.auth.argon2_parallelism, whole(v, 1, 64)),
        show: Show::Value(|c| Some(c.auth.argon2_parallelism.to_string())),
        production: no_rule,
    },
    Setting {
        key: "hash_workers",
        group: Identity,
        default: Derived("cores", |_| {
            let cores = std::thread::available_parallelism().map_or(2, usize::from);
            cores.min(256).to_string()
        }),
        doc: "concurrent password hashes",
        parse: |c, v| set(&mut c.auth.hash_workers, whole(v, 1, 256)),
        show: Show::Value(|c| Some(c.auth.hash_workers.to_string())),
        production: no_rule,
    },
    Setting {
        key: "hash_queue",
        group: Identity,
        default: Value("64"),
        doc: "hash jobs that may wait (at most 5 s) for a worker; beyond that, 503 with `Retry-After`",
        parse: |c, v| set(&mut c.auth.hash_queue, whole(v, 0, 100_000)),
        show: Show::Value(|c| Some(c.auth.hash_queue.to_string())),
        production: no_rule,
    },
    Setting {
        key: "mail_from",
        group: Identity,
        default: Derived("`Rampart <no-reply@HOST>`", |c| {
            let host = c
                .public_url
                .split("://")
                .nth(1)
                .and_then(|rest| rest.split(['/', ':']).next())
                .filter(|h| !h.is_empty())
                .unwrap_or("localhost");
            format!("Rampart <no-reply@{host}>")
        }),
        doc: "sender of every mail (HOST from `RAMPART_PUBLIC_URL`)",
        parse: |c, v| set(&mut c.auth.mail_from, Ok(v.to_owned())),
        show: Show::Value(|c| Some(c.auth.mail_from.clone())),
        production: no_rule,
    },
];

const TLS_DOC: &str = "PEM files; serve HTTPS with rustls (TLS 1.2 and 1.3)";

fn no_rule(_: &Config) -> Vec<String> {
    Vec::new()
}

/// Store a parsed value.
fn set<T>(slot: &mut T, parsed: Result<T, String>) -> Result<(), String> {
    *slot = parsed?;
    Ok(())
}

fn address(v: &str, error: &str) -> Result<SocketAddr, String> {
    v.parse().map_err(|_| error.to_owned())
}

fn size(v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "expected a size in bytes above 0".to_owned())
}

fn whole<T: TryFrom<u64>>(v: &str, min: u64, max: u64) -> Result<T, String> {
    v.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("expected a whole number from {min} to {max}"))
}

fn secs(d: Duration) -> Option<String> {
    Some(format!("{}s", d.as_secs_f64()))
}

/// The TLS pair, started by whichever of its two settings comes first.
fn tls_files(c: &mut Config) -> &mut TlsFiles {
    c.tls.get_or_insert_with(|| TlsFiles {
        cert: PathBuf::new(),
        key: PathBuf::new(),
    })
}

/// Exact origins go into the policy; `*` and `null` (which the policy refuses to hold)
/// are kept aside for the audit; anything else that is not an origin is an error.
fn cors_origins(c: &mut Config, v: &str) -> Result<(), String> {
    let mut exact = Vec::new();
    c.cors_ignored.clear();
    for origin in v.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match CorsPolicy::builder().allow_origins([origin]).build() {
            Ok(_) => exact.push(origin.to_owned()),
            Err(CorsError::Wildcard | CorsError::NullOrigin) => {
                c.cors_ignored.push(origin.to_owned())
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let policy = CorsPolicy::builder().allow_origins(exact).build();
    set(&mut c.cors, policy.map_err(|e| e.to_string()))
}
