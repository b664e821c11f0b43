//! The table of settings: every setting declared once, with its default, parser, secrecy,
//! production rule and documentation line.
//!
//! [`Config::load`] parses each given value (or the default) with the row's parser, in
//! table order; `check-config` prints each row's value (a secret only as `[redacted]`);
//! [`Config::audit`] runs each row's production rule; a test compares the table with
//! README.md's. A default may name `$RAMPART_DATA_DIR` or read settings above its row.

use rampart_layers::cors::CorsError;

use super::*;

mod general;
mod tuning;

pub(crate) use Fallback::{Derived, Unset, Value};

/// Every setting, in the order `check-config` prints them.
pub(crate) fn all() -> impl Iterator<Item = &'static Setting> {
    grouped().into_iter().flat_map(|(_, settings)| settings)
}

/// The settings of each README table.
pub(crate) fn grouped() -> [(Group, &'static [Setting]); 3] {
    [
        (Group::Main, general::GENERAL),
        (Group::Tunables, tuning::TUNABLES),
        (Group::Identity, tuning::IDENTITY),
    ]
}

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
    all().find(|s| s.key == key)
}

/// The setting of an environment variable.
pub(crate) fn find_env(name: &str) -> Option<&'static Setting> {
    all().find(|s| env_name(s.key) == name)
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

pub(super) fn no_rule(_: &Config) -> Vec<String> {
    Vec::new()
}

/// Store a parsed value.
pub(super) fn set<T>(slot: &mut T, parsed: Result<T, String>) -> Result<(), String> {
    *slot = parsed?;
    Ok(())
}

pub(super) fn address(v: &str, error: &str) -> Result<SocketAddr, String> {
    v.parse().map_err(|_| error.to_owned())
}

pub(super) fn size(v: &str) -> Result<usize, String> {
    v.parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "expected a size in bytes above 0".to_owned())
}

pub(super) fn whole<T: TryFrom<u64>>(v: &str, min: u64, max: u64) -> Result<T, String> {
    v.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| format!("expected a whole number from {min} to {max}"))
}

pub(super) fn secs(d: Duration) -> Option<String> {
    Some(format!("{}s", d.as_secs_f64()))
}

/// The TLS pair, started by whichever of its two settings comes first.
pub(super) fn tls_files(c: &mut Config) -> &mut TlsFiles {
    c.tls.get_or_insert_with(|| TlsFiles {
        cert: PathBuf::new(),
        key: PathBuf::new(),
    })
}

/// Exact origins go into the policy; `*` and `null` (which the policy refuses to hold)
/// are kept aside for the audit; anything else that is not an origin is an error.
pub(super) fn cors_origins(c: &mut Config, v: &str) -> Result<(), String> {
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
