//! `manifest.json` in a keys directory: which key signs, and until when each retired key
//! still verifies. `rampart keys rotate` writes it; an operator may write it by hand.
//!
//! ```json
//! {
//!   "current": "prod-2026-12",
//!   "retired": [
//!     { "kid": "prod-2026-11", "retire_after": "2026-12-01T14:45:30Z" }
//!   ]
//! }
//! ```
//!
//! `retire_after` is an RFC 3339 time: the key verifies up to and including that second,
//! never after it.

use std::path::Path;

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::file::{self, KID_RULE, is_valid_kid};
use crate::private_fs;

/// The file name of the manifest inside the keys directory.
pub const FILE_NAME: &str = "manifest.json";
/// Far larger than any sensible manifest.
const MAX_LEN: u64 = 64 * 1024;

/// A parsed, validated manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Manifest {
    /// The kid of the key that signs.
    pub current: String,
    /// Keys that no longer sign, each with the last Unix second at which it verifies.
    pub retired: Vec<Retired>,
}

/// A key that no longer signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Retired {
    pub kid: String,
    /// Unix seconds; the key verifies while `now <= retire_after`.
    pub retire_after: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    current: String,
    #[serde(default)]
    retired: Vec<RetiredDocument>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetiredDocument {
    kid: String,
    retire_after: String,
}

impl Manifest {
    /// The manifest of `dir`, `None` when there is none. Fails when it may be read by group or
    /// others, does not parse, names something that is not a kid, names a kid twice, or gives
    /// a time that is not RFC 3339.
    pub fn read(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = dir.join(FILE_NAME);
        // Only "no such entry" means no manifest: a dangling link or an unreadable file is
        // an error below, never a silent fall-back to the no-manifest rule.
        if let Err(e) = std::fs::symlink_metadata(&path)
            && e.kind() == std::io::ErrorKind::NotFound
        {
            return Ok(None);
        }
        let text = file::read_private(&path, MAX_LEN)?;
        Self::parse(&text)
            .map(Some)
            .with_context(|| format!("{} (see the README, \"Signing keys\")", path.display()))
    }

    fn parse(text: &str) -> anyhow::Result<Self> {
        let doc: Document = serde_json::from_str(text).context("not a key manifest")?;
        let kid = |kid: String, field: &str| -> anyhow::Result<String> {
            if !is_valid_kid(&kid) {
                bail!("{field} {kid:?} is not a kid ({KID_RULE})");
            }
            Ok(kid)
        };
        let current = kid(doc.current, "`current`")?;
        let mut retired = Vec::with_capacity(doc.retired.len());
        for r in doc.retired {
            let kid = kid(r.kid, "a retired")?;
            if kid == current || retired.iter().any(|x: &Retired| x.kid == kid) {
                bail!("{kid} is named more than once");
            }
            let at = OffsetDateTime::parse(&r.retire_after, &Rfc3339).with_context(|| {
                format!(
                    "the retire_after of {kid} ({:?}) is not an RFC 3339 time like 2026-12-01T14:45:30Z",
                    r.retire_after
                )
            })?;
            retired.push(Retired {
                kid,
                retire_after: at.unix_timestamp(),
            });
        }
        Ok(Self { current, retired })
    }

    /// Write the manifest into `dir` (0600), atomically.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let mut retired = Vec::with_capacity(self.retired.len());
        for r in &self.retired {
            let at = OffsetDateTime::from_unix_timestamp(r.retire_after)
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok())
                .with_context(|| format!("the retirement time of {} is out of range", r.kid))?;
            retired.push(RetiredDocument {
                kid: r.kid.clone(),
                retire_after: at,
            });
        }
        let doc = Document {
            current: self.current.clone(),
            retired,
        };
        let mut text = serde_json::to_string_pretty(&doc).context("writing the key manifest")?;
        text.push('\n');
        private_fs::replace(dir, FILE_NAME, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_round_trips_through_its_file() {
        let tmp = tempfile::tempdir().unwrap();
        let manifest = Manifest {
            current: "prod-2026-12".to_owned(),
            retired: vec![Retired {
                kid: "prod-2026-11".to_owned(),
                retire_after: 1_796_136_330,
            }],
        };
        manifest.write(tmp.path()).unwrap();
        let text = std::fs::read_to_string(tmp.path().join(FILE_NAME)).unwrap();
        assert!(
            text.contains("\"retire_after\": \"2026-12-01T14:45:30Z\""),
            "{text}"
        );
        assert_eq!(Manifest::read(tmp.path()).unwrap(), Some(manifest));
    }

    #[test]
    fn no_file_is_no_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::read(tmp.path()).unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_dangling_manifest_link_is_an_error_not_an_absent_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(tmp.path().join("gone.json"), tmp.path().join(FILE_NAME))
            .unwrap();
        assert!(Manifest::read(tmp.path()).is_err());
    }

    #[test]
    fn a_manifest_naming_a_path_or_an_overlong_kid_is_refused() {
        for (text, expected) in [
            (r#"{"current": "../secret"}"#, "is not a kid"),
            (r#"{"current": "a/b"}"#, "is not a kid"),
            (
                &format!(r#"{{"current": "{}"}}"#, "k".repeat(65)),
                "is not a kid",
            ),
            (
                r#"{"current": "a", "retired": [{"kid": "..", "retire_after": "2026-12-01T00:00:00Z"}]}"#,
                "is not a kid",
            ),
        ] {
            let err = Manifest::parse(text).unwrap_err();
            assert!(format!("{err:#}").contains(expected), "{text}: {err:#}");
        }
    }

    #[test]
    fn a_malformed_manifest_is_refused_with_its_reason() {
        for (text, expected) in [
            ("", "not a key manifest"),
            (r#"{"retired": []}"#, "not a key manifest"),
            (r#"{"current": "a", "extra": 1}"#, "not a key manifest"),
            (
                r#"{"current": "a", "retired": [{"kid": "b", "retire_after": "tomorrow"}]}"#,
                "not an RFC 3339 time",
            ),
            (
                r#"{"current": "a", "retired": [{"kid": "a", "retire_after": "2026-12-01T00:00:00Z"}]}"#,
                "more than once",
            ),
            (
                r#"{"current": "a", "retired": [{"kid": "b", "retire_after": "2026-12-01T00:00:00Z"},
                    {"kid": "b", "retire_after": "2026-12-02T00:00:00Z"}]}"#,
                "more than once",
            ),
        ] {
            let err = Manifest::parse(text).unwrap_err();
            assert!(format!("{err:#}").contains(expected), "{text}: {err:#}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_manifest_others_may_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(FILE_NAME);
        std::fs::write(&path, r#"{"current": "a"}"#).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Manifest::read(tmp.path()).unwrap_err();
        assert!(
            format!("{err:#}").contains("readable by group or others"),
            "{err:#}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Manifest::read(tmp.path()).unwrap().is_some());
    }
}
