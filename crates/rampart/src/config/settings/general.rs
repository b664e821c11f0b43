//! The settings of README.md's first table: where Rampart listens, stores, sends mail,
//! and how it limits clients.

use super::{Setting, Show, Unset, Value, address, cors_origins, no_rule, secs, set, tls_files};
use crate::config::{report, *};

/// In the order `check-config` prints them.
pub(crate) static GENERAL: &[Setting] = &[
    Setting {
        key: "env",
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
        default: Value("$RAMPART_DATA_DIR/outbox"),
        doc: "directory for `.eml` files",
        parse: |c, v| set(&mut c.mail_outbox, Ok(v.into())),
        show: Show::Value(|c| Some(c.mail_outbox.display().to_string())),
        production: no_rule,
    },
    Setting {
        key: "smtp_url",
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
        key: "http_redirect_listen",
        default: Unset("unset"),
        doc: "with TLS on: a plain-HTTP listener that answers every request with a 308 to the same path on the `RAMPART_PUBLIC_URL` origin; must differ from `RAMPART_LISTEN`",
        parse: |c, v| match address(v, "expected host:port")? {
            addr if addr == c.listen && addr.port() != 0 => {
                Err("must differ from RAMPART_LISTEN".into())
            }
            addr => set(&mut c.http_redirect_listen, Ok(Some(addr))),
        },
        show: Show::Value(|c| c.http_redirect_listen.map(|a| a.to_string())),
        production: no_rule,
    },
    Setting {
        key: "session_secret",
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
        default: Value("5/15m"),
        doc: "failed logins per account",
        parse: |c, v| set(&mut c.rate_limits.login_account, RateSpec::parse(v)),
        show: Show::Value(|c| Some(c.rate_limits.login_account.to_string())),
        production: no_rule,
    },
    Setting {
        key: "rate_limit_login_ip",
        default: Value("20/15m"),
        doc: "failed logins per client",
        parse: |c, v| set(&mut c.rate_limits.login_ip, RateSpec::parse(v)),
        show: Show::Value(|c| Some(c.rate_limits.login_ip.to_string())),
        production: no_rule,
    },
    Setting {
        key: "rate_limit_register",
        default: Value("10/1h"),
        doc: "registrations per client",
        parse: |c, v| set(&mut c.rate_limits.register, RateSpec::parse(v)),
        show: Show::Value(|c| Some(c.rate_limits.register.to_string())),
        production: no_rule,
    },
    Setting {
        key: "rate_limit_forgot",
        default: Value("3/24h"),
        doc: "forgot-password requests per address",
        parse: |c, v| set(&mut c.rate_limits.forgot, RateSpec::parse(v)),
        show: Show::Value(|c| Some(c.rate_limits.forgot.to_string())),
        production: no_rule,
    },
    Setting {
        key: "rate_limit_mfa",
        default: Value("5/15m"),
        doc: "failed MFA codes per `mfa_token` and per account",
        parse: |c, v| set(&mut c.rate_limits.mfa, RateSpec::parse(v)),
        show: Show::Value(|c| Some(c.rate_limits.mfa.to_string())),
        production: no_rule,
    },
    Setting {
        key: "slow_down_forgot",
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
        default: Value("500ms"),
        doc: "the delay added by each further request",
        parse: |c, v| set(&mut c.rate_limits.forgot_slow_down.step, parse_duration(v)),
        show: Show::Value(|c| secs(c.rate_limits.forgot_slow_down.step)),
        production: no_rule,
    },
    Setting {
        key: "slow_down_forgot_max",
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
];

const TLS_DOC: &str = "PEM files; serve HTTPS with rustls (TLS 1.2 and 1.3)";
