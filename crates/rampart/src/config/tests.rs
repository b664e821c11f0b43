//! Tests of configuration loading, validation, refusals and redaction.
use super::*;

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn nothing_configured_gives_the_development_defaults() {
    let c = Config::load(&vars(&[])).unwrap().config;
    assert_eq!(c.env, Environment::Development);
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.database_url.expose(), "sqlite://./data/rampart.db");
    assert_eq!(
        c.rate_limits.global,
        Some(RateSpec {
            count: 300,
            period: Duration::from_secs(60)
        })
    );
    assert_eq!(
        c.rate_limits.forgot_slow_down.step,
        Duration::from_millis(500)
    );
    assert_eq!(
        c.rate_limits.forgot_slow_down.max_delay,
        Duration::from_secs(10)
    );
    assert_eq!(c.tunables.json_body_limit, 10 * 1024);
}

#[test]
fn every_bad_value_is_named_at_once() {
    let err = Config::load(&vars(&[
        ("RAMPART_LISTEN", "nope"),
        ("RAMPART_RATE_LIMIT_GLOBAL", "0/1m"),
        ("RAMPART_CORS_ORIGINS", "*"),
    ]))
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("RAMPART_LISTEN"), "{text}");
    assert!(text.contains("RAMPART_RATE_LIMIT_GLOBAL"), "{text}");
    assert!(text.contains("RAMPART_CORS_ORIGINS"), "{text}");
}

#[test]
fn production_audit_names_every_missing_setting() {
    let c = Config::load(&vars(&[("RAMPART_ENV", "production")]))
        .unwrap()
        .config;
    let findings = c.audit().join("\n");
    for name in [
        "RAMPART_SESSION_SECRET",
        "RAMPART_KEYS_DIR",
        "RAMPART_PUBLIC_URL",
        "RAMPART_TRUSTED_PROXIES",
        "RAMPART_SMTP_URL",
    ] {
        assert!(findings.contains(name), "{name} missing from {findings}");
    }
}

#[test]
fn a_global_limit_that_is_off_is_an_insecure_setting() {
    let c = Config::load(&vars(&[("RAMPART_RATE_LIMIT_GLOBAL", "off")]))
        .unwrap()
        .config;
    assert_eq!(c.rate_limits.global, None);
    assert!(
        c.audit()
            .iter()
            .any(|f| f.contains("RAMPART_RATE_LIMIT_GLOBAL"))
    );
    assert!(Config::load(&vars(&[("RAMPART_RATE_LIMIT_MFA", "off")])).is_err());
}

#[test]
fn a_short_session_secret_is_refused() {
    let c = Config::load(&vars(&[("RAMPART_SESSION_SECRET", "short")]))
        .unwrap()
        .config;
    assert!(
        c.audit()
            .iter()
            .any(|f| f.contains("shorter than 32 bytes"))
    );
}

#[test]
fn secrets_never_appear_in_the_printed_configuration() {
    let c = Config::load(&vars(&[
        (
            "RAMPART_SESSION_SECRET",
            "s3cr3t-session-secret-of-enough-length",
        ),
        ("DATABASE_URL", "postgres://app:hunter2pass@db:5432/rampart"),
        ("REDIS_URL", "redis://:redispass@cache:6379"),
        ("RAMPART_SMTP_URL", "smtps://mail:smtppass@smtp.example.com"),
    ]))
    .unwrap()
    .config;
    let printed = format!("{:?}\n{:?}", c.redacted(), c);
    for secret in ["s3cr3t", "hunter2pass", "redispass", "smtppass"] {
        assert!(!printed.contains(secret), "{secret} leaked");
    }
    assert!(printed.contains("postgres://app:[redacted]@db:5432/rampart"));
}

#[test]
fn a_toml_file_is_read_and_the_environment_wins_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:9000\"\nrate_limit_global = \"50/1m\"\nlog_format = \"pretty\"\nbogus = 1\n",
    )
    .unwrap();
    let loaded = Config::load(&vars(&[
        ("RAMPART_CONFIG", path.to_str().unwrap()),
        ("RAMPART_LOG_FORMAT", "json"),
    ]))
    .unwrap();
    assert_eq!(loaded.config.listen.port(), 9000);
    assert_eq!(loaded.config.rate_limits.global.map(|g| g.count), Some(50));
    assert_eq!(loaded.config.log_format, LogFormat::Json);
    assert!(loaded.warnings.iter().any(|w| w.contains("bogus")));
}

#[test]
fn rate_specs_and_durations_parse() {
    assert_eq!(
        RateSpec::parse("5/15m").unwrap().period,
        Duration::from_secs(900)
    );
    assert_eq!(RateSpec::parse("3/24h").unwrap().count, 3);
    assert!(RateSpec::parse("5").is_err());
    assert!(RateSpec::parse("5/15y").is_err());
    assert!(parse_duration("0s").is_err());
}

#[test]
fn a_redis_url_must_be_plain_redis_and_is_never_echoed() {
    assert!(
        Config::load(&vars(&[("REDIS_URL", "redis://:pw@127.0.0.1:6379/0")]))
            .unwrap()
            .config
            .redis_url
            .is_some()
    );
    for bad in ["rediss://:hunter2@cache:6380", "http://:hunter2@cache"] {
        let errors = Config::load(&vars(&[("REDIS_URL", bad)]))
            .unwrap_err()
            .to_string();
        assert!(errors.contains("REDIS_URL"), "{errors}");
        assert!(!errors.contains("hunter2"), "{errors}");
    }
}
