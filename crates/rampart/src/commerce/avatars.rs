//! Avatar storage: the upload is checked (its magic bytes must be the declared type),
//! written under a random name inside `$RAMPART_DATA_DIR/avatars` (directory 0700, file
//! 0600), first to a temporary file and then renamed, so a reader never sees half an
//! image; the replaced file is removed.
//!
//! # Security
//! No client-supplied name or path is ever used, and a stored name is checked again for
//! the shape this module gives names before it is joined to a path.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use bytes::Bytes;
use uuid::Uuid;

use crate::{
    domain::avatar::ImageType,
    store::{self, Db, avatars::Avatar},
};

/// The avatar service.
#[derive(Debug, Clone)]
pub struct Avatars {
    db: Db,
    dir: PathBuf,
}

/// What became of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// Stored; any earlier avatar is gone.
    Stored,
    /// The bytes are not an image of the declared type: nothing stored.
    TypeMismatch,
}

/// A stored image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Its checked type.
    pub kind: ImageType,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// Where avatars live inside the data directory.
pub fn avatars_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("avatars")
}

impl Avatars {
    /// Avatars recorded in `db`, their files under `data_dir`.
    pub fn new(db: Db, data_dir: &Path) -> Self {
        Self {
            db,
            dir: avatars_dir(data_dir),
        }
    }

    /// Make `bytes`, declared as `declared`, the avatar of `user_id` at `now`.
    pub async fn upload(
        &self,
        user_id: Uuid,
        declared: ImageType,
        bytes: Bytes,
        now: i64,
    ) -> anyhow::Result<Upload> {
        if !declared.matches(&bytes) {
            return Ok(Upload::TypeMismatch);
        }
        let name = new_file_name(declared);
        let (dir, file) = (self.dir.clone(), name.clone());
        tokio::task::spawn_blocking(move || write_file(&dir, &file, &bytes))
            .await
            .context("avatar writer")?
            .context("writing an avatar")?;
        let avatar = Avatar {
            file_name: name,
            media_type: declared.media_type().to_owned(),
        };
        let replaced = store::avatars::set(&self.db, user_id, &avatar, now)
            .await
            .context("database")?;
        if let Some(old) = replaced.filter(|o| is_own_file_name(&o.file_name))
            && let Err(e) = tokio::fs::remove_file(self.dir.join(&old.file_name)).await
        {
            tracing::warn!(error = %e, "old avatar not removed");
        }
        Ok(Upload::Stored)
    }

    /// The avatar of `user_id`, if it has one.
    pub async fn get(&self, user_id: Uuid) -> anyhow::Result<Option<Image>> {
        let Some(avatar) = store::avatars::get(&self.db, user_id)
            .await
            .context("database")?
            .filter(|a| is_own_file_name(&a.file_name))
        else {
            return Ok(None);
        };
        let Some(kind) = ImageType::parse_stored(&avatar.media_type) else {
            return Ok(None);
        };
        match tokio::fs::read(self.dir.join(&avatar.file_name)).await {
            Ok(bytes) => Ok(Some(Image { kind, bytes })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context("reading an avatar")),
        }
    }
}

/// Whether `name` has the shape of a name [`new_file_name`] makes (32 hex digits, a dot,
/// a known extension).
fn is_own_file_name(name: &str) -> bool {
    let Some((stem, ext)) = name.split_once('.') else {
        return false;
    };
    stem.len() == 32
        && stem.bytes().all(|b| b.is_ascii_hexdigit())
        && ["png", "jpg", "webp"].contains(&ext)
}

fn new_file_name(kind: ImageType) -> String {
    format!("{}.{}", Uuid::new_v4().simple(), kind.extension())
}

/// Write `bytes` to `dir/name` through a temporary file (blocking).
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::{
        fs::{DirBuilder, OpenOptions, Permissions},
        io::Write as _,
        os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _},
    };
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, Permissions::from_mode(0o700))?;
    let temp = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, dir.join(name))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{commerce::testing, domain::user::Role};

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    const NOW: i64 = 1_800_000_000_000;

    fn files(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn only_names_this_module_makes_are_accepted_as_stored_names() {
        assert!(is_own_file_name(&new_file_name(ImageType::Png)));
        assert!(is_own_file_name(&new_file_name(ImageType::Webp)));
        for bad in [
            "../../etc/passwd",
            "0123456789abcdef0123456789abcdef.html",
            "0123456789abcdef0123456789abcdef",
            "/0123456789abcdef0123456789abcde.png",
            ".0123456789abcdef0123456789abcdef.png.tmp",
        ] {
            assert!(!is_own_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_written_file_is_private_and_no_temporary_file_remains() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let avatars = avatars_dir(dir.path());
        write_file(&avatars, "a.png", b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&avatars), 0o700);
        assert_eq!(mode(&avatars.join("a.png")), 0o600);
        assert_eq!(files(&avatars), ["a.png"]);
    }

    #[tokio::test]
    async fn an_upload_is_served_back_and_replacing_it_removes_the_old_file() {
        let f = testing::fixture().await;
        let avatars = Avatars::new(f.db.clone(), f.dir.path());
        let alice = f.user(Role::User).await;
        assert_eq!(avatars.get(alice.id).await.unwrap(), None);
        let stored = avatars.upload(alice.id, ImageType::Png, Bytes::from_static(PNG), NOW);
        assert_eq!(stored.await.unwrap(), Upload::Stored);
        let first = files(&avatars_dir(f.dir.path()));
        let again = avatars.upload(alice.id, ImageType::Png, Bytes::from_static(PNG), NOW + 1);
        assert_eq!(again.await.unwrap(), Upload::Stored);
        let second = files(&avatars_dir(f.dir.path()));
        assert_eq!(second.len(), 1, "{second:?}");
        assert_ne!(first, second);
        let image = avatars.get(alice.id).await.unwrap().unwrap();
        assert_eq!((image.kind, image.bytes.as_slice()), (ImageType::Png, PNG));
    }

    #[tokio::test]
    async fn bytes_of_another_type_than_declared_are_refused_and_nothing_is_stored() {
        let f = testing::fixture().await;
        let avatars = Avatars::new(f.db.clone(), f.dir.path());
        let alice = f.user(Role::User).await;
        let html = Bytes::from_static(b"<html><script>alert(1)</script></html>");
        let refused = avatars
            .upload(alice.id, ImageType::Png, html, NOW)
            .await
            .unwrap();
        assert_eq!(refused, Upload::TypeMismatch);
        let as_jpeg = avatars.upload(alice.id, ImageType::Jpeg, Bytes::from_static(PNG), NOW);
        assert_eq!(as_jpeg.await.unwrap(), Upload::TypeMismatch);
        assert!(!avatars_dir(f.dir.path()).exists());
        assert_eq!(avatars.get(alice.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_stored_name_of_another_shape_is_never_read() {
        let f = testing::fixture().await;
        let avatars = Avatars::new(f.db.clone(), f.dir.path());
        let alice = f.user(Role::User).await;
        std::fs::write(f.dir.path().join("secret.txt"), b"secret").unwrap();
        let planted = Avatar {
            file_name: "../secret.txt".into(),
            media_type: "image/png".into(),
        };
        store::avatars::set(&f.db, alice.id, &planted, NOW)
            .await
            .unwrap();
        assert_eq!(avatars.get(alice.id).await.unwrap(), None);
    }
}
