//! The settings of README.md's "Tunables" and "Identity tunables" tables.

use super::{Derived, Setting, Show, Value, no_rule, secs, set, size, whole};
use crate::config::*;

/// Timeouts and sizes.
pub(crate) static TUNABLES: &[Setting] = &[
    Setting {
        key: "header_read_timeout",
        default: Value("10s"),
        doc: "the request head (and a TLS handshake) must arrive within it, or the connection is closed",
        parse: |c, v| set(&mut c.tunables.header_read_timeout, parse_duration(v)),
        show: Show::Value(|c| secs(c.tunables.header_read_timeout)),
        production: no_rule,
    },
    Setting {
        key: "body_timeout",
        default: Value("30s"),
        doc: "the whole request body must arrive within it, or 408 and the connection is closed",
        parse: |c, v| set(&mut c.tunables.body_timeout, parse_duration(v)),
        show: Show::Value(|c| secs(c.tunables.body_timeout)),
        production: no_rule,
    },
    Setting {
        key: "request_timeout",
        default: Value("30s"),
        doc: "a request still running after it is answered 503",
        parse: |c, v| set(&mut c.tunables.request_timeout, parse_duration(v)),
        show: Show::Value(|c| secs(c.tunables.request_timeout)),
        production: no_rule,
    },
    Setting {
        key: "shutdown_grace",
        default: Value("30s"),
        doc: "how long in-flight requests may finish after SIGTERM/SIGINT",
        parse: |c, v| set(&mut c.tunables.shutdown_grace, parse_duration(v)),
        show: Show::Value(|c| secs(c.tunables.shutdown_grace)),
        production: no_rule,
    },
    Setting {
        key: "json_body_limit",
        default: Value("10240"),
        doc: "bytes, JSON bodies",
        parse: |c, v| set(&mut c.tunables.json_body_limit, size(v)),
        show: Show::Value(|c| Some(c.tunables.json_body_limit.to_string())),
        production: no_rule,
    },
    Setting {
        key: "upload_body_limit",
        default: Value("1048576"),
        doc: "bytes, uploads",
        parse: |c, v| set(&mut c.tunables.upload_body_limit, size(v)),
        show: Show::Value(|c| Some(c.tunables.upload_body_limit.to_string())),
        production: no_rule,
    },
    Setting {
        key: "db_max_connections",
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
        key: "db_acquire_timeout",
        default: Value("1s"),
        doc: "the longest a request waits for a database connection (opening one included) and the bound of each reachability check; past it, or while the database is known down, the answer is 503 `unavailable`",
        parse: |c, v| {
            // sqlx adds it to `Instant::now()`: a huge value would overflow there.
            let d = parse_duration(v).and_then(|d| {
                (!d.is_zero() && d <= std::time::Duration::from_secs(3600))
                    .then_some(d)
                    .ok_or("expected a duration from 1ms to 1h".into())
            });
            set(&mut c.tunables.db_acquire_timeout, d)
        },
        show: Show::Value(|c| secs(c.tunables.db_acquire_timeout)),
        production: no_rule,
    },
    Setting {
        key: "redis_timeout",
        default: Value("1s"),
        doc: "a Redis connection or answer slower than this counts as Redis down",
        parse: |c, v| set(&mut c.tunables.redis_timeout, parse_duration(v)),
        show: Show::Value(|c| secs(c.tunables.redis_timeout)),
        production: no_rule,
    },
    Setting {
        key: "h2c",
        default: Value("off"),
        doc: "`on`: also serve cleartext HTTP/2 with prior knowledge (h2c) on a plain-HTTP listener, for a proxy that speaks it; over TLS, HTTP/2 is always offered by ALPN",
        parse: |c, v| {
            let on = match v {
                "on" => Ok(true),
                "off" => Ok(false),
                _ => Err("must be `on` or `off`".to_owned()),
            };
            set(&mut c.tunables.h2c, on)
        },
        show: Show::Value(|c| Some(if c.tunables.h2c { "on" } else { "off" }.to_owned())),
        production: no_rule,
    },
];

/// Token lifetimes, password hashing, the mail sender.
pub(crate) static IDENTITY: &[Setting] = &[
    Setting {
        key: "access_token_ttl",
        default: Value("15m"),
        doc: "access-token lifetime",
        parse: |c, v| set(&mut c.auth.access_token_ttl, parse_duration(v)),
        show: Show::Value(|c| secs(c.auth.access_token_ttl)),
        production: no_rule,
    },
    Setting {
        key: "refresh_token_ttl",
        default: Value("7d"),
        doc: "refresh-token lifetime, the cookie's `Max-Age`",
        parse: |c, v| set(&mut c.auth.refresh_token_ttl, parse_duration(v)),
        show: Show::Value(|c| secs(c.auth.refresh_token_ttl)),
        production: no_rule,
    },
    Setting {
        key: "session_max_age",
        default: Value("30d"),
        doc: "a session family ends this long after its login, whatever the rotations",
        parse: |c, v| set(&mut c.auth.session_max_age, parse_duration(v)),
        show: Show::Value(|c| secs(c.auth.session_max_age)),
        production: no_rule,
    },
    Setting {
        key: "page_session_idle",
        default: Value("30m"),
        doc: "a browser-page session ends after this long without a request",
        parse: |c, v| set(&mut c.auth.page_session_idle, parse_duration(v)),
        show: Show::Value(|c| secs(c.auth.page_session_idle)),
        production: no_rule,
    },
    Setting {
        key: "page_session_max_age",
        default: Value("12h"),
        doc: "a browser-page session ends this long after it began, however active",
        parse: |c, v| set(&mut c.auth.page_session_max_age, parse_duration(v)),
        show: Show::Value(|c| secs(c.auth.page_session_max_age)),
        production: no_rule,
    },
    Setting {
        key: "refresh_grace",
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
        default: Value("19456"),
        doc: "Argon2id memory (minimum 19456)",
        parse: |c, v| set(&mut c.auth.argon2_memory_kib, whole(v, 19_456, 4_194_304)),
        show: Show::Value(|c| Some(c.auth.argon2_memory_kib.to_string())),
        production: no_rule,
    },
    Setting {
        key: "argon2_iterations",
        default: Value("2"),
        doc: "Argon2id passes (minimum 2)",
        parse: |c, v| set(&mut c.auth.argon2_iterations, whole(v, 2, 100)),
        show: Show::Value(|c| Some(c.auth.argon2_iterations.to_string())),
        production: no_rule,
    },
    Setting {
        key: "argon2_parallelism",
        default: Value("1"),
        doc: "Argon2id lanes",
        parse: |c, v| set(&mut c.auth.argon2_parallelism, whole(v, 1, 64)),
        show: Show::Value(|c| Some(c.auth.argon2_parallelism.to_string())),
        production: no_rule,
    },
    Setting {
        key: "hash_workers",
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
        default: Value("64"),
        doc: "hash jobs that may wait (at most 5 s) for a worker; beyond that, 503 with `Retry-After`",
        parse: |c, v| set(&mut c.auth.hash_queue, whole(v, 0, 100_000)),
        show: Show::Value(|c| Some(c.auth.hash_queue.to_string())),
        production: no_rule,
    },
    Setting {
        key: "mail_from",
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
