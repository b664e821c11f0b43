//! What a loaded configuration says about itself: the insecure settings production
//! refuses (API.md §8) and the redacted printout of `check-config`.

use super::*;

impl Config {
    /// Every insecure or missing setting of API.md §8, each naming its variable. In
    /// production these refuse the start; in development they are warnings.
    pub fn audit(&self) -> Vec<String> {
        let mut findings = Vec::new();
        match &self.session_secret {
            None => findings.push("RAMPART_SESSION_SECRET is not set".to_owned()),
            Some(s) if s.expose_secret().len() < 32 => {
                findings.push("RAMPART_SESSION_SECRET is shorter than 32 bytes".to_owned())
            }
            Some(_) => {}
        }
        if !self.keys_dir_explicit {
            findings.push("RAMPART_KEYS_DIR is not set".to_owned());
        } else {
            findings.extend(audit_keys_dir(&self.keys_dir));
        }
        if !self.public_url.starts_with("https://") {
            findings.push("RAMPART_PUBLIC_URL is not an https:// URL".to_owned());
        }
        if self.tls.is_none() && self.trusted_proxies.is_empty() {
            findings.push(
                "neither TLS (RAMPART_TLS_CERT, RAMPART_TLS_KEY) nor a trusted proxy \
                 (RAMPART_TRUSTED_PROXIES) is configured"
                    .to_owned(),
            );
        }
        if self.rate_limits.global.is_none() {
            findings.push("RAMPART_RATE_LIMIT_GLOBAL is off: clients are not limited".to_owned());
        }
        if self.smtp_url.is_none() {
            findings
                .push("RAMPART_SMTP_URL is not set: mail goes to the outbox directory".to_owned());
        }
        if self.database_url.is_sqlite() {
            if world_readable(&self.data_dir) {
                findings.push(format!(
                    "RAMPART_DATA_DIR ({}) is readable by others",
                    self.data_dir.display()
                ));
            }
            if let Some(db) = self.database_url.sqlite_path()
                && world_readable(&db)
            {
                findings.push(format!(
                    "DATABASE_URL: the database file {} is readable by others",
                    db.display()
                ));
            }
        }
        findings
    }

    /// The effective configuration as `(variable, value)` rows, every secret redacted.
    pub fn redacted(&self) -> Vec<(String, String)> {
        let secret = |s: &Option<SecretString>| {
            if s.is_some() { "[redacted]" } else { "(unset)" }.to_owned()
        };
        let path = |p: &Path| p.display().to_string();
        let r = &self.rate_limits;
        let t = &self.tunables;
        let rows: Vec<(&str, String)> = vec![
            (
                "env",
                match self.env {
                    Environment::Development => "development".into(),
                    Environment::Production => "production".into(),
                },
            ),
            ("listen", self.listen.to_string()),
            ("data_dir", path(&self.data_dir)),
            ("database_url", self.database_url.to_string()),
            ("redis_url", secret(&self.redis_url)),
            ("public_url", self.public_url.clone()),
            (
                "cors_origins",
                self.cors.origins().collect::<Vec<_>>().join(","),
            ),
            (
                "trusted_proxies",
                self.trusted_proxies
                    .networks()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("mail_outbox", path(&self.mail_outbox)),
            ("smtp_url", secret(&self.smtp_url)),
            (
                "tls_cert",
                self.tls
                    .as_ref()
                    .map_or("(unset)".into(), |t| path(&t.cert)),
            ),
            (
                "tls_key",
                self.tls.as_ref().map_or("(unset)".into(), |t| path(&t.key)),
            ),
            (
                "metrics_listen",
                self.metrics_listen
                    .map_or("(unset)".into(), |a| a.to_string()),
            ),
            ("session_secret", secret(&self.session_secret)),
            ("keys_dir", path(&self.keys_dir)),
            (
                "rate_limit_global",
                r.global.map_or_else(|| "off".to_owned(), |g| g.to_string()),
            ),
            ("rate_limit_login_account", r.login_account.to_string()),
            ("rate_limit_login_ip", r.login_ip.to_string()),
            ("rate_limit_register", r.register.to_string()),
            ("rate_limit_forgot", r.forgot.to_string()),
            ("rate_limit_mfa", r.mfa.to_string()),
            ("slow_down_forgot", r.forgot_slow_down.after.to_string()),
            (
                "slow_down_forgot_step",
                format!("{}s", r.forgot_slow_down.step.as_secs_f64()),
            ),
            (
                "slow_down_forgot_max",
                format!("{}s", r.forgot_slow_down.max_delay.as_secs_f64()),
            ),
            (
                "log_format",
                match self.log_format {
                    LogFormat::Json => "json".into(),
                    LogFormat::Pretty => "pretty".into(),
                },
            ),
            (
                "header_read_timeout",
                format!("{}s", t.header_read_timeout.as_secs_f64()),
            ),
            ("body_timeout", format!("{}s", t.body_timeout.as_secs_f64())),
            (
                "request_timeout",
                format!("{}s", t.request_timeout.as_secs_f64()),
            ),
            (
                "shutdown_grace",
                format!("{}s", t.shutdown_grace.as_secs_f64()),
            ),
            ("json_body_limit", t.json_body_limit.to_string()),
            ("upload_body_limit", t.upload_body_limit.to_string()),
            ("db_max_connections", t.db_max_connections.to_string()),
            (
                "redis_timeout",
                format!("{}s", t.redis_timeout.as_secs_f64()),
            ),
            ("h2c", if t.h2c { "on" } else { "off" }.into()),
            (
                "access_token_ttl",
                format!("{}s", self.auth.access_token_ttl.as_secs()),
            ),
            (
                "refresh_token_ttl",
                format!("{}s", self.auth.refresh_token_ttl.as_secs()),
            ),
            (
                "session_max_age",
                format!("{}s", self.auth.session_max_age.as_secs()),
            ),
            (
                "refresh_grace",
                format!("{}s", self.auth.refresh_grace.as_secs_f64()),
            ),
            ("argon2_memory_kib", self.auth.argon2_memory_kib.to_string()),
            ("argon2_iterations", self.auth.argon2_iterations.to_string()),
            (
                "argon2_parallelism",
                self.auth.argon2_parallelism.to_string(),
            ),
            ("hash_workers", self.auth.hash_workers.to_string()),
            ("hash_queue", self.auth.hash_queue.to_string()),
            ("mail_from", self.auth.mail_from.clone()),
        ];
        rows.into_iter().map(|(k, v)| (env_name(k), v)).collect()
    }
}

/// Problems with the keys directory: missing, empty, or a key others can read.
fn audit_keys_dir(dir: &Path) -> Vec<String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(_) => {
            return vec![format!(
                "RAMPART_KEYS_DIR ({}) cannot be read",
                dir.display()
            )];
        }
    };
    let mut keys = 0;
    let mut findings = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "pem") {
            keys += 1;
            if group_or_world_accessible(&path) {
                findings.push(format!(
                    "RAMPART_KEYS_DIR: key file {} is readable by group or others (want mode 0600)",
                    path.display()
                ));
            }
        }
    }
    if keys == 0 {
        findings.push(format!(
            "RAMPART_KEYS_DIR ({}) holds no key (<kid>.pem)",
            dir.display()
        ));
    }
    findings
}

#[cfg(unix)]
fn mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).ok().map(|m| m.permissions().mode())
}

#[cfg(not(unix))]
fn mode(_path: &Path) -> Option<u32> {
    None
}

fn world_readable(path: &Path) -> bool {
    mode(path).is_some_and(|m| m & 0o004 != 0)
}

fn group_or_world_accessible(path: &Path) -> bool {
    mode(path).is_some_and(|m| m & 0o077 != 0)
}
