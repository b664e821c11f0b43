//! Files and directories only their owner may use: the data directory, the session secret,
//! the SQLite file, the signing keys and their manifest.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use std::path::Path;
//! use rampart::private_fs;
//!
//! let dir = Path::new("data/keys");
//! private_fs::create_dir(dir)?; // 0700, parents included
//! private_fs::replace(dir, "manifest.json", b"{}")?; // 0600, whole or not at all
//! # Ok(())
//! # }
//! ```
//!
//! # Security
//!
//! Modes are given at creation (`open(2)`/`mkdir(2)` with 0600/0700), never set afterwards,
//! so no other user can open a file in the moment between creating and restricting it.

use std::{
    fs::{self, File},
    io::Write as _,
    path::Path,
};

use anyhow::Context as _;

/// Create `dir` and its missing parents with mode 0700. Returns whether it was created
/// (`false` when it already existed).
pub fn create_dir(dir: &Path) -> anyhow::Result<bool> {
    if dir.is_dir() {
        return Ok(false);
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(true)
}

/// Write a file readable by its owner only (0600), replacing any previous one in place, and
/// flush it to disk.
pub fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Write `dir/name` (0600) atomically: the bytes go to a hidden temporary file that is then
/// renamed over `name`, so a crash leaves either the old file or the whole new one.
pub fn replace(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    // A dot file ending in `.tmp`: never taken for a key or a manifest.
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    write(&tmp, bytes)?;
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("creating {}", path.display()));
    }
    sync_dir(dir)
}

/// Make a rename or deletion in `dir` durable.
pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_created_directory_and_its_parents_are_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        assert!(create_dir(&dir).unwrap());
        assert!(!create_dir(&dir).unwrap(), "already there");
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&tmp.path().join("a")), 0o700);
        }
    }

    #[test]
    fn replace_writes_an_owner_only_file_and_leaves_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        replace(tmp.path(), "f.json", b"one").unwrap();
        replace(tmp.path(), "f.json", b"two").unwrap();
        assert_eq!(fs::read(tmp.path().join("f.json")).unwrap(), b"two");
        #[cfg(unix)]
        assert_eq!(mode(&tmp.path().join("f.json")), 0o600);
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
    }
}
