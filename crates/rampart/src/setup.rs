//! Local state for the embedded default: the data directory, the development session
//! secret, the keys directory and the outbox, created on first start with private modes.

use std::{
    fs,
    path::{Path, PathBuf},
};

use rand::RngCore as _;
use secrecy::SecretString;

use crate::{
    config::{Config, Environment},
    private_fs,
};

/// What `prepare` created, for the start-up log.
#[derive(Debug, Default)]
pub struct Created(pub Vec<PathBuf>);

/// Make sure the directories exist and, in development, generate the session secret when
/// none is configured (persisted in `$RAMPART_DATA_DIR/session_secret`, mode 0600).
pub fn prepare(config: &mut Config) -> anyhow::Result<Created> {
    let mut created = Created::default();
    if config.database_url.is_sqlite() || config.env == Environment::Development {
        private_dir(&config.data_dir, &mut created)?;
    }
    if config.env == Environment::Development {
        private_dir(&config.keys_dir, &mut created)?;
        if config.smtp_url.is_none() {
            private_dir(&config.mail_outbox, &mut created)?;
        }
        if config.session_secret.is_none() {
            let path = config.data_dir.join("session_secret");
            config.session_secret = Some(load_or_generate_secret(&path, &mut created)?);
        }
    }
    if let Some(db) = config.database_url.sqlite_path() {
        // SQLite gives its -wal and -shm files the mode of the database file: create that
        // one private, before SQLite creates it with the process umask.
        if !db.exists() {
            if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
                private_dir(dir, &mut created)?;
            }
            private_fs::write(&db, b"")?;
            created.0.push(db);
        }
    }
    Ok(created)
}

fn private_dir(dir: &Path, created: &mut Created) -> anyhow::Result<()> {
    if private_fs::create_dir(dir)? {
        created.0.push(dir.to_owned());
    }
    Ok(())
}

fn load_or_generate_secret(path: &Path, created: &mut Created) -> anyhow::Result<SecretString> {
    if let Ok(text) = fs::read_to_string(path) {
        let text = text.trim().to_owned();
        if text.len() >= 32 {
            return Ok(SecretString::from(text));
        }
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    private_fs::write(path, secret.as_bytes())?;
    created.0.push(path.to_owned());
    Ok(SecretString::from(secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn development_state_is_private_and_stable_across_starts() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let vars: HashMap<String, String> =
            [("RAMPART_DATA_DIR".to_owned(), data.display().to_string())].into();
        let mut config = Config::load(&vars).unwrap().config;
        let created = prepare(&mut config).unwrap();
        assert!(created.0.contains(&data.join("session_secret")));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&data.join("session_secret")), 0o600);
            assert_eq!(mode(&data), 0o700);
            assert_eq!(mode(&data.join("keys")), 0o700);
            assert_eq!(mode(&data.join("rampart.db")), 0o600);
        }
        let first = fs::read_to_string(data.join("session_secret")).unwrap();
        let mut again = Config::load(&vars).unwrap().config;
        prepare(&mut again).unwrap();
        assert_eq!(
            fs::read_to_string(data.join("session_secret")).unwrap(),
            first
        );
    }
}
