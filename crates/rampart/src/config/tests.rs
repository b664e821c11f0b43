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
        ("RAMPART_CORS_ORIGINS", "https://app.example.com/path"),
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
fn the_database_acquire_timeout_defaults_to_a_second_and_is_bounded() {
    let load = |v: &str| Config::load(&vars(&[("RAMPART_DB_ACQUIRE_TIMEOUT", v)]));
    assert_eq!(
        Config::load(&vars(&[]))
            .unwrap()
            .config
            .tunables
            .db_acquire_timeout,
        Duration::from_secs(1)
    );
    assert_eq!(
        load("250ms").unwrap().config.tunables.db_acquire_timeout,
        Duration::from_millis(250)
    );
    for bad in ["0ms", "2h", "soon"] {
        let errors = load(bad).unwrap_err().to_string();
        assert!(
            errors.contains("RAMPART_DB_ACQUIRE_TIMEOUT"),
            "{bad}: {errors}"
        );
    }
}

#[test]
fn a_duration_too_long_to_count_is_an_error_not_an_overflow() {
    assert!(parse_duration("99999999999999999d").is_err());
    assert!(parse_duration("18446744073709551615m").is_err());
    assert_eq!(
        parse_duration("18446744073709551615s"),
        Ok(Duration::from_secs(u64::MAX))
    );
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

#[test]
fn a_wildcard_or_null_cors_origin_is_an_audit_finding_and_allows_nothing() {
    let c = Config::load(&vars(&[(
        "RAMPART_CORS_ORIGINS",
        "*, https://app.example.com, null",
    )]))
    .unwrap()
    .config;
    assert!(c.cors.allows("https://app.example.com"));
    for origin in ["*", "null", "https://evil.example.com"] {
        assert!(!c.cors.allows(origin), "{origin}");
    }
    assert_eq!(
        c.cors.origins().collect::<Vec<_>>(),
        ["https://app.example.com"]
    );
    let findings: Vec<String> = c
        .audit()
        .into_iter()
        .filter(|f| f.starts_with("RAMPART_CORS_ORIGINS"))
        .collect();
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert!(findings[0].contains("`*`") && findings[1].contains("`null`"));
}

#[cfg(unix)]
#[test]
fn production_audit_names_cors_star_a_world_readable_data_dir_and_a_group_readable_key_together() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let keys = dir.path().join("keys");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir(&keys).unwrap();
    std::fs::write(keys.join("prod-1.pem"), "not read by the audit").unwrap();
    std::fs::set_permissions(
        keys.join("prod-1.pem"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let c = Config::load(&vars(&[
        ("RAMPART_ENV", "production"),
        ("RAMPART_CORS_ORIGINS", "*"),
        ("RAMPART_DATA_DIR", data.to_str().unwrap()),
        ("RAMPART_KEYS_DIR", keys.to_str().unwrap()),
        ("RAMPART_SESSION_SECRET", "0123456789abcdef0123456789abcdef"),
        ("RAMPART_PUBLIC_URL", "https://api.example.com"),
        ("RAMPART_TRUSTED_PROXIES", "127.0.0.1/32"),
        ("RAMPART_SMTP_URL", "smtp://127.0.0.1:25"),
    ]))
    .unwrap()
    .config;
    let findings = c.audit();
    assert_eq!(findings.len(), 3, "{findings:#?}");
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("RAMPART_CORS_ORIGINS"))
    );
    assert!(findings.iter().any(|f| f.starts_with("RAMPART_DATA_DIR")));
    assert!(
        findings
            .iter()
            .any(|f| f.contains("prod-1.pem") && f.contains("group"))
    );
}

#[test]
fn every_secret_setting_is_printed_only_as_redacted() {
    let secrets: Vec<(String, String)> = settings::all()
        .filter(|s| matches!(s.show, settings::Show::Secret(_)))
        .map(|s| {
            let value = match s.key {
                "redis_url" => "redis://:leaked-redis-value@127.0.0.1:6379".to_owned(),
                key => format!("leaked-{key}-value-long-enough-to-pass-checks"),
            };
            (env_name(s.key), value)
        })
        .collect();
    assert!(secrets.len() >= 3, "{secrets:?}");
    let pairs: Vec<(&str, &str)> = secrets
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let c = Config::load(&vars(&pairs)).unwrap().config;
    let printed = format!("{:?}\n{:?}", c.redacted(), c);
    assert!(!printed.contains("leaked"), "{printed}");
    for (name, _) in &secrets {
        assert!(
            c.redacted()
                .contains(&(name.clone(), "[redacted]".to_owned())),
            "{name}"
        );
    }
}

#[test]
fn every_setting_has_one_row_and_every_default_parses() {
    let mut keys: Vec<&str> = settings::all().map(|s| s.key).collect();
    keys.sort_unstable();
    let count = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), count, "a setting is declared twice");
    // Loading nothing parses every default; any that did not would be an error.
    let c = Config::load(&vars(&[])).unwrap().config;
    assert_eq!(c.redacted().len(), count);
    assert_eq!(c.keys_dir, PathBuf::from("./data/keys"));
    assert_eq!(c.mail_outbox, PathBuf::from("./data/outbox"));
    assert_eq!(c.auth.mail_from, "Rampart <no-reply@127.0.0.1>");
    assert!(c.auth.hash_workers >= 1);
    assert!(!c.keys_dir_explicit);
}

#[test]
fn defaults_follow_the_data_dir_and_the_public_url() {
    let c = Config::load(&vars(&[
        ("RAMPART_DATA_DIR", "/srv/rampart/"),
        ("RAMPART_PUBLIC_URL", "https://api.example.com/"),
    ]))
    .unwrap()
    .config;
    assert_eq!(c.database_url.expose(), "sqlite:///srv/rampart/rampart.db");
    assert_eq!(c.keys_dir, PathBuf::from("/srv/rampart/keys"));
    assert_eq!(c.public_url, "https://api.example.com");
    assert_eq!(c.auth.mail_from, "Rampart <no-reply@api.example.com>");
}

#[test]
fn unknown_variables_warn_and_process_and_test_variables_do_not() {
    let loaded = Config::load(&vars(&[
        ("RAMPART_LISTN", "127.0.0.1:1"),
        ("RAMPART_LOG", "debug"),
        ("RAMPART_TEST_REDIS_SERVER", "/usr/bin/redis-server"),
        ("HOME", "/root"),
    ]))
    .unwrap();
    assert_eq!(loaded.warnings, ["unknown setting `listn` ignored"]);
}

#[test]
fn a_toml_file_may_give_numbers_and_refuses_a_table_for_a_setting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rampart.toml");
    std::fs::write(&path, "json_body_limit = 2048\n[listen]\nport = 1\n").unwrap();
    let errors = Config::load(&vars(&[("RAMPART_CONFIG", path.to_str().unwrap())]))
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("RAMPART_LISTEN: expected a string or a number"),
        "{errors}"
    );
    std::fs::write(&path, "json_body_limit = 2048\n").unwrap();
    let c = Config::load(&vars(&[("RAMPART_CONFIG", path.to_str().unwrap())]))
        .unwrap()
        .config;
    assert_eq!(c.tunables.json_body_limit, 2048);
}

#[test]
fn tls_files_go_together() {
    let errors = Config::load(&vars(&[("RAMPART_TLS_KEY", "/etc/rampart/key.pem")]))
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("RAMPART_TLS_CERT: RAMPART_TLS_CERT and RAMPART_TLS_KEY go together"),
        "{errors}"
    );
    let c = Config::load(&vars(&[
        ("RAMPART_TLS_CERT", "/etc/rampart/cert.pem"),
        ("RAMPART_TLS_KEY", "/etc/rampart/key.pem"),
    ]))
    .unwrap()
    .config;
    assert_eq!(
        c.tls.map(|t| t.key),
        Some(PathBuf::from("/etc/rampart/key.pem"))
    );
}
