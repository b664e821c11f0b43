//! What a loaded configuration says about itself, from the settings table: the insecure
//! settings production refuses (API.md §8) and the redacted printout of `check-config`.

use super::{
    settings::{self, Show},
    *,
};

impl Config {
    /// Every insecure or missing setting of API.md §8, each naming its variable: the
    /// production rules of the settings table. In production these refuse the start; in
    /// development they are warnings.
    pub fn audit(&self) -> Vec<String> {
        settings::all()
            .flat_map(|setting| (setting.production)(self))
            .collect()
    }

    /// The effective configuration as `(variable, value)` rows, every secret redacted.
    pub fn redacted(&self) -> Vec<(String, String)> {
        settings::all()
            .map(|setting| {
                let value = match setting.show {
                    Show::Value(show) => show(self).unwrap_or_else(|| "(unset)".into()),
                    Show::Secret(is_set) if is_set(self) => "[redacted]".into(),
                    Show::Secret(_) => "(unset)".into(),
                };
                (env_name(setting.key), value)
            })
            .collect()
    }
}

/// Problems with the keys directory: missing, empty, or a key others can read.
pub(super) fn audit_keys_dir(dir: &Path) -> Vec<String> {
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

pub(super) fn world_readable(path: &Path) -> bool {
    mode(path).is_some_and(|m| m & 0o004 != 0)
}

fn group_or_world_accessible(path: &Path) -> bool {
    mode(path).is_some_and(|m| m & 0o077 != 0)
}
