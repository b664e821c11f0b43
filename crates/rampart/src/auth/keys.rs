//! Ed25519 signing keys for access tokens, kept in a directory (`RAMPART_KEYS_DIR`): one
//! PKCS#8 PEM file per key, named `<kid>.pem`, mode 0600.
//!
//! A kid records when its key was created (`k20261122T223300Z-1a2b3c4d`, UTC), so kids sort
//! by age. The newest key signs. An older key stopped signing when the next one was created,
//! at time T; it keeps verifying until T + the longest token lifetime, then it is retired:
//! left out of verification and of the JWKS, and deleted by the next [`KeyRing::rotate`].
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use std::{path::Path, time::Duration};
//! use rampart::auth::keys::KeyRing;
//!
//! let dir = Path::new("data/keys");
//! let now = time::OffsetDateTime::now_utc();
//! let lifetime = Duration::from_secs(15 * 60);
//! let new_kid = KeyRing::rotate(dir, now, lifetime)?;
//! let ring = KeyRing::load(dir, now, lifetime)?;
//! assert_eq!(ring.current_kid(), new_kid);
//! # Ok(())
//! # }
//! ```
//!
//! # Security
//!
//! - [`KeyRing::load`] refuses a key file that group or others may access, and a `.pem` file
//!   whose name is not a kid (its age, hence its retirement, would be unknown).
//! - The JWKS holds public material only: `kty`, `crv`, `x`, `kid`, `alg`, `use`; never `d`.
//! - Time is passed in, never read here. Retirement is computed at load and checked again at
//!   each verification, so a long-running ring stops accepting a key on time; its JWKS stays
//!   as of load until the ring is reloaded.
//! - A running process learns of a rotation only when it reloads the directory: with several
//!   instances, every one must reload before the new key's tokens verify everywhere.

use std::{
    fmt,
    fs::{self, File},
    io::Read as _,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, bail};
use aws_lc_rs::{
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair as _},
};
use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore as _;
use serde_json::{Value, json};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use zeroize::Zeroizing;

use crate::setup::write_private;

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";
/// `k` + `YYYYMMDD` + `T` + `HHMMSS` + `Z-` + 8 hex digits.
const KID_LEN: usize = 26;
/// Far larger than any Ed25519 PKCS#8 PEM (about 170 bytes): refuse to read anything bigger.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// The keys that sign and verify access tokens, loaded from a keys directory.
pub struct KeyRing {
    /// Every key that may still verify, oldest first; the last one is the current key.
    keys: Vec<RingKey>,
    /// The PKCS#8 document of the current key (zeroized on drop).
    signing: EncodingKey,
    max_token_lifetime: Duration,
}

/// A key that may verify: public material only.
struct RingKey {
    kid: String,
    /// The raw 32-byte Ed25519 public key (the JWK `x`).
    public: Vec<u8>,
    decoding: DecodingKey,
    /// Unix seconds after which the key no longer verifies; `None` for the current key.
    retires_at: Option<i64>,
}

/// A `<kid>.pem` file found in the directory.
struct StoredKey {
    kid: String,
    /// Unix seconds, from the kid.
    created: i64,
    path: PathBuf,
}

impl KeyRing {
    /// Load the keys of `dir` as of `now`. `max_token_lifetime` is the longest lifetime of a
    /// token these keys sign: a replaced key keeps verifying that long after its replacement.
    ///
    /// Fails when the directory holds no key, when a key file may be read by group or others,
    /// when a `.pem` file is not named `<kid>.pem`, or when a key does not parse.
    pub fn load(
        dir: &Path,
        now: OffsetDateTime,
        max_token_lifetime: Duration,
    ) -> anyhow::Result<Self> {
        let stored = list_keys(dir)?;
        if stored.is_empty() {
            bail!(
                "no signing key in {} (want <kid>.pem files; `rampart keys rotate` creates one)",
                dir.display()
            );
        }
        let now = now.unix_timestamp();
        let max_secs = duration_secs(max_token_lifetime);
        let mut keys = Vec::with_capacity(stored.len());
        let mut signing = None;
        for (i, key) in stored.iter().enumerate() {
            // Every key file is checked, retired ones included: a readable file leaks a key
            // whatever its age.
            let pem = read_private_file(&key.path)?;
            let retires_at = retires_at(&stored, i, max_secs);
            if retires_at.is_some_and(|t| now > t) {
                continue;
            }
            let der =
                pem_to_der(&pem).with_context(|| format!("reading {}", key.path.display()))?;
            let pair = Ed25519KeyPair::from_pkcs8(&der)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("{} is not an Ed25519 key", key.path.display()))?;
            let public = pair.public_key().as_ref().to_vec();
            if retires_at.is_none() {
                signing = Some(EncodingKey::from_ed_der(&der));
            }
            keys.push(RingKey {
                kid: key.kid.clone(),
                decoding: DecodingKey::from_ed_der(&public),
                public,
                retires_at,
            });
        }
        let signing = signing.context("the newest key did not load")?;
        Ok(Self {
            keys,
            signing,
            max_token_lifetime,
        })
    }

    /// For development: create `dir` (mode 0700) and a first key when it holds none, then
    /// [`load`](Self::load) it.
    pub fn load_or_generate(
        dir: &Path,
        now: OffsetDateTime,
        max_token_lifetime: Duration,
    ) -> anyhow::Result<Self> {
        private_dir(dir)?;
        if list_keys(dir)?.is_empty() {
            write_new_key(dir, now)?;
        }
        Self::load(dir, now, max_token_lifetime)
    }

    /// Create a new key in `dir` (created 0700 if missing), current from `now` on, and
    /// delete the files of keys retired as of `now`. Returns the new kid.
    ///
    /// The newest kid is always the current key: a rotation within the same second as the
    /// previous one is dated a second later; a newest key dated more than a minute ahead
    /// (a clock set back) is refused.
    pub fn rotate(
        dir: &Path,
        now: OffsetDateTime,
        max_token_lifetime: Duration,
    ) -> anyhow::Result<String> {
        private_dir(dir)?;
        let now_secs = now.unix_timestamp();
        // Kids are dated to the second and the newest is current: a second rotation within
        // the same second is dated one second later. A newest key more than a minute in the
        // future means the clock was set back: refuse rather than guess.
        let mut stamp = now;
        if let Some(newest) = list_keys(dir)?.last() {
            if newest.created > now_secs + 60 {
                bail!(
                    "the newest key {} is dated in the future; check the clock",
                    newest.kid
                );
            }
            if newest.created >= now_secs {
                stamp = now + time::Duration::seconds(newest.created - now_secs + 1);
            }
        }
        let kid = write_new_key(dir, stamp)?;
        let stored = list_keys(dir)?;
        let max_secs = duration_secs(max_token_lifetime);
        for (i, key) in stored.iter().enumerate() {
            if retires_at(&stored, i, max_secs).is_some_and(|t| now_secs > t) {
                fs::remove_file(&key.path)
                    .with_context(|| format!("deleting retired key {}", key.path.display()))?;
            }
        }
        sync_dir(dir)?;
        Ok(kid)
    }

    /// The kid of the key that signs.
    pub fn current_kid(&self) -> &str {
        self.keys.last().map_or("", |k| k.kid.as_str())
    }

    /// The kids of every key that may still verify (as of load), oldest first.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    /// The longest token lifetime this ring was loaded for.
    pub fn max_token_lifetime(&self) -> Duration {
        self.max_token_lifetime
    }

    /// The JSON Web Key Set (RFC 7517, keys as RFC 8037 OKP) of every key that may still
    /// verify as of load, newest first: public material only.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .rev()
            .map(|k| {
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(&k.public),
                    "kid": k.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        json!({ "keys": keys })
    }

    /// The current key, to sign with.
    pub(crate) fn signing_key(&self) -> &EncodingKey {
        &self.signing
    }

    /// The public key named `kid`, if it may verify at `now_unix`.
    pub(crate) fn verifying_key(&self, kid: &str, now_unix: i64) -> Option<&DecodingKey> {
        self.keys
            .iter()
            .find(|k| k.kid == kid)
            .filter(|k| k.retires_at.is_none_or(|t| now_unix <= t))
            .map(|k| &k.decoding)
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("kids", &self.kids().collect::<Vec<_>>())
            .field("current", &self.current_kid())
            .field("max_token_lifetime", &self.max_token_lifetime)
            .finish_non_exhaustive()
    }
}

/// When key `i` of `keys` (sorted oldest first) stops verifying: the creation of the next
/// key plus the longest token lifetime. `None` for the newest key.
fn retires_at(keys: &[StoredKey], i: usize, max_secs: i64) -> Option<i64> {
    keys.get(i + 1)
        .map(|next| next.created.saturating_add(max_secs))
}

fn duration_secs(d: Duration) -> i64 {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// The `<kid>.pem` files of `dir`, oldest first. Other files are ignored; a `.pem` file not
/// named after a kid is an error.
fn list_keys(dir: &Path) -> anyhow::Result<Vec<StoredKey>> {
    let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().is_none_or(|e| e != "pem") {
            continue;
        }
        let kid = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let Some(created) = kid_created(&kid) else {
            bail!(
                "{}: a key file must be named <kid>.pem with a kid like k20261122T223300Z-1a2b3c4d (its creation time, UTC)",
                path.display()
            );
        };
        keys.push(StoredKey { kid, created, path });
    }
    // Same-second kids order by their random suffix: arbitrary but stable.
    keys.sort_by(|a, b| a.kid.cmp(&b.kid));
    Ok(keys)
}

/// A kid for a key created at `now`: `k` + UTC time + 8 random hex digits.
fn new_kid(now: OffsetDateTime) -> anyhow::Result<String> {
    let t = now.to_offset(UtcOffset::UTC);
    if !(1970..=9999).contains(&t.year()) {
        bail!("cannot name a key created in year {}", t.year());
    }
    let mut suffix = [0u8; 4];
    rand::rng().fill_bytes(&mut suffix);
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "k{:04}{:02}{:02}T{:02}{:02}{:02}Z-{suffix}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// The creation time (Unix seconds) a kid records, if it is a well-formed kid.
fn kid_created(kid: &str) -> Option<i64> {
    let b = kid.as_bytes();
    let well_formed = b.len() == KID_LEN
        && b[0] == b'k'
        && b[1..9].iter().all(u8::is_ascii_digit)
        && b[9] == b'T'
        && b[10..16].iter().all(u8::is_ascii_digit)
        && &b[16..18] == b"Z-"
        && b[18..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    if !well_formed {
        return None;
    }
    let num = |range: std::ops::Range<usize>| kid.get(range).and_then(|s| s.parse::<u16>().ok());
    let date = Date::from_calendar_date(
        i32::from(num(1..5)?),
        Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?,
        u8::try_from(num(7..9)?).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(
        u8::try_from(num(10..12)?).ok()?,
        u8::try_from(num(12..14)?).ok()?,
        u8::try_from(num(14..16)?).ok()?,
    )
    .ok()?;
    Some(
        PrimitiveDateTime::new(date, time)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Generate a key and write it as `<kid>.pem` (0600), atomically: a crash leaves either
/// no key or a whole one.
fn write_new_key(dir: &Path, now: OffsetDateTime) -> anyhow::Result<String> {
    let kid = new_kid(now)?;
    let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("generating an Ed25519 key")?;
    let pem = der_to_pem(document.as_ref());
    // Not `.pem`, so a half-written file is never taken for a key.
    let tmp = dir.join(format!(".{kid}.pem.tmp"));
    let path = dir.join(format!("{kid}.pem"));
    write_private(&tmp, pem.as_bytes())?;
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("creating {}", path.display()));
    }
    sync_dir(dir)?;
    Ok(kid)
}

/// Read a key file, refusing one that group or others may access.
fn read_private_file(path: &Path) -> anyhow::Result<Zeroizing<String>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // The metadata of the open file, not of the path: nothing can swap the file in between.
    let meta = file
        .metadata()
        .with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "key file {} is readable by group or others (mode {mode:04o}, want 0600)",
                path.display()
            );
        }
    }
    if meta.len() > MAX_KEY_FILE_LEN {
        bail!("{} is too large to be an Ed25519 key", path.display());
    }
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_KEY_FILE_LEN)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(text)
}

/// The DER of a `PRIVATE KEY` (PKCS#8, RFC 5958) PEM document.
fn pem_to_der(pem: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let body = pem
        .trim()
        .strip_prefix(PEM_BEGIN)
        .and_then(|rest| rest.strip_suffix(PEM_END))
        .context("not a PEM `PRIVATE KEY` (unencrypted PKCS#8) document")?;
    let b64: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    let der = STANDARD
        .decode(b64.as_bytes())
        .context("the PEM body is not base64")?;
    Ok(Zeroizing::new(der))
}

/// PEM-encode a PKCS#8 document: base64 in 64-column lines (RFC 7468).
fn der_to_pem(der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(STANDARD.encode(der));
    let mut pem = Zeroizing::new(String::with_capacity(b64.len() + 80));
    pem.push_str(PEM_BEGIN);
    for (i, c) in b64.chars().enumerate() {
        if i % 64 == 0 {
            pem.push('\n');
        }
        pem.push(c);
    }
    pem.push('\n');
    pem.push_str(PEM_END);
    pem.push('\n');
    pem
}

fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
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
        .with_context(|| format!("creating {}", dir.display()))
}

/// Make a rename or deletion in `dir` durable.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
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

    /// 2026-11-22T22:33:20Z.
    const T0: i64 = 1_795_386_800;
    const LIFETIME: Duration = Duration::from_secs(15 * 60);

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(T0 + secs).unwrap()
    }

    fn pem_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".pem"))
            .collect();
        names.sort();
        names
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn kids_record_their_creation_time_in_utc_and_sort_by_it() {
        let kid = new_kid(at(0)).unwrap();
        assert!(kid.starts_with("k20261122T223320Z-"), "{kid}");
        assert_eq!(kid.len(), KID_LEN);
        assert_eq!(kid_created(&kid), Some(T0));
        let later = new_kid(at(1)).unwrap();
        assert!(later > kid);
        let offset = at(0).to_offset(UtcOffset::from_hms(5, 30, 0).unwrap());
        assert!(new_kid(offset).unwrap().starts_with("k20261122T223320Z-"));
    }

    #[test]
    fn malformed_kids_are_not_kids() {
        for kid in [
            "",
            "k20261122T223320Z-1a2b3c4",
            "k20261122T223320Z-1A2B3C4D",
            "k20261322T223320Z-1a2b3c4d",
            "k20261122T253320Z-1a2b3c4d",
            "x20261122T223320Z-1a2b3c4d",
            "../../etc/passwd",
        ] {
            assert_eq!(kid_created(kid), None, "{kid}");
        }
    }

    #[test]
    fn a_generated_key_is_an_owner_only_pkcs8_pem_file_in_an_owner_only_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        let ring = KeyRing::load_or_generate(&dir, at(0), LIFETIME).unwrap();
        let files = pem_files(&dir);
        assert_eq!(files, vec![format!("{}.pem", ring.current_kid())]);
        let path = dir.join(&files[0]);
        #[cfg(unix)]
        {
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&dir), 0o700);
        }
        let text = fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.first(), Some(&PEM_BEGIN));
        assert_eq!(lines.last(), Some(&PEM_END));
        assert!(lines.iter().all(|l| l.len() <= 64));
        let der = pem_to_der(&text).unwrap();
        assert!(Ed25519KeyPair::from_pkcs8(&der).is_ok());
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn load_or_generate_keeps_the_existing_key_across_starts() {
        let tmp = tempfile::tempdir().unwrap();
        let first = KeyRing::load_or_generate(tmp.path(), at(0), LIFETIME).unwrap();
        let again = KeyRing::load_or_generate(tmp.path(), at(60), LIFETIME).unwrap();
        assert_eq!(first.current_kid(), again.current_kid());
        assert_eq!(first.jwks(), again.jwks());
        assert_eq!(pem_files(tmp.path()).len(), 1);
    }

    #[test]
    fn load_fails_when_the_directory_holds_no_key() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("README"), "not a key").unwrap();
        let err = KeyRing::load(tmp.path(), at(0), LIFETIME).unwrap_err();
        assert!(err.to_string().contains("no signing key"), "{err:#}");
    }

    #[cfg(unix)]
    #[test]
    fn load_refuses_a_key_file_readable_by_group_or_others() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let ring = KeyRing::load_or_generate(tmp.path(), at(0), LIFETIME).unwrap();
        let path = tmp.path().join(format!("{}.pem", ring.current_kid()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = KeyRing::load(tmp.path(), at(0), LIFETIME).unwrap_err();
        assert!(
            err.to_string().contains("readable by group or others"),
            "{err:#}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(KeyRing::load(tmp.path(), at(0), LIFETIME).is_err());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(KeyRing::load(tmp.path(), at(0), LIFETIME).is_ok());
    }

    #[test]
    fn a_pem_file_not_named_after_a_kid_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        KeyRing::load_or_generate(tmp.path(), at(0), LIFETIME).unwrap();
        write_private(&tmp.path().join("production.pem"), b"x").unwrap();
        let err = KeyRing::load(tmp.path(), at(0), LIFETIME).unwrap_err();
        assert!(err.to_string().contains("<kid>.pem"), "{err:#}");
    }

    #[test]
    fn a_key_file_that_is_not_an_ed25519_pkcs8_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let kid = new_kid(at(0)).unwrap();
        let path = tmp.path().join(format!("{kid}.pem"));
        write_private(
            &path,
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        assert!(KeyRing::load(tmp.path(), at(0), LIFETIME).is_err());
        write_private(&path, b"hello").unwrap();
        assert!(KeyRing::load(tmp.path(), at(0), LIFETIME).is_err());
    }

    #[test]
    fn a_pkcs8_v1_key_as_openssl_writes_it_loads() {
        let tmp = tempfile::tempdir().unwrap();
        let kid = new_kid(at(0)).unwrap();
        let v1 = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new()).unwrap();
        let pem = der_to_pem(v1.as_ref());
        write_private(&tmp.path().join(format!("{kid}.pem")), pem.as_bytes()).unwrap();
        let ring = KeyRing::load(tmp.path(), at(0), LIFETIME).unwrap();
        assert_eq!(ring.current_kid(), kid);
    }

    #[test]
    fn rotate_makes_the_new_key_current_and_the_old_one_verify_until_it_retires() {
        let tmp = tempfile::tempdir().unwrap();
        let old = KeyRing::load_or_generate(tmp.path(), at(0), LIFETIME).unwrap();
        let old_kid = old.current_kid().to_owned();
        let new_kid = KeyRing::rotate(tmp.path(), at(100), LIFETIME).unwrap();
        assert_ne!(new_kid, old_kid);

        let ring = KeyRing::load(tmp.path(), at(100), LIFETIME).unwrap();
        assert_eq!(ring.current_kid(), new_kid);
        assert!(ring.verifying_key(&old_kid, T0 + 100 + 900).is_some());
        assert!(ring.verifying_key(&old_kid, T0 + 100 + 901).is_none());
        assert!(ring.verifying_key(&new_kid, T0 + 100_000).is_some());
        assert!(
            ring.verifying_key("k20261122T223320Z-00000000", T0)
                .is_none()
        );

        let later = KeyRing::load(tmp.path(), at(100 + 901), LIFETIME).unwrap();
        assert_eq!(later.kids().collect::<Vec<_>>(), vec![new_kid.as_str()]);
    }

    #[test]
    fn jwks_lists_exactly_the_keys_that_may_still_verify_and_no_private_material() {
        let tmp = tempfile::tempdir().unwrap();
        let first = KeyRing::load_or_generate(tmp.path(), at(0), LIFETIME)
            .unwrap()
            .current_kid()
            .to_owned();
        let second = KeyRing::rotate(tmp.path(), at(100), LIFETIME).unwrap();
        let third = KeyRing::rotate(tmp.path(), at(1200), LIFETIME).unwrap();

        let kids = |ring: &KeyRing| -> Vec<String> {
            ring.jwks()["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect()
        };
        // `first` retired at 100 + 900; `second` verifies until 1200 + 900.
        let ring = KeyRing::load(tmp.path(), at(1200), LIFETIME).unwrap();
        assert_eq!(kids(&ring), vec![third.clone(), second.clone()]);
        assert!(!kids(&ring).contains(&first));
        let ring = KeyRing::load(tmp.path(), at(2101), LIFETIME).unwrap();
        assert_eq!(kids(&ring), vec![third.clone()]);

        let jwks = ring.jwks();
        let key = &jwks["keys"][0];
        let mut fields: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        assert_eq!(fields, ["alg", "crv", "kid", "kty", "use", "x"]);
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert_eq!(key["alg"], "EdDSA");
        assert_eq!(key["use"], "sig");
        let x = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
        assert_eq!(x.len(), 32);
        let pem = fs::read_to_string(tmp.path().join(format!("{third}.pem"))).unwrap();
        let der = pem_to_der(&pem).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(&der).unwrap();
        assert_eq!(x, pair.public_key().as_ref());
        let text = jwks.to_string();
        assert!(!text.contains("\"d\""));
        assert!(!text.contains(&STANDARD.encode(&*der)[..20]));
    }

    #[test]
    fn rotate_deletes_retired_key_files_only() {
        let tmp = tempfile::tempdir().unwrap();
        let first = KeyRing::load_or_generate(tmp.path(), at(0), LIFETIME)
            .unwrap()
            .current_kid()
            .to_owned();
        let second = KeyRing::rotate(tmp.path(), at(100), LIFETIME).unwrap();
        // `first` still verifies until 1000: kept.
        assert_eq!(
            pem_files(tmp.path()),
            vec![format!("{first}.pem"), format!("{second}.pem")]
        );
        let third = KeyRing::rotate(tmp.path(), at(1001), LIFETIME).unwrap();
        assert_eq!(
            pem_files(tmp.path()),
            vec![format!("{second}.pem"), format!("{third}.pem")]
        );
        #[cfg(unix)]
        assert_eq!(mode(&tmp.path().join(format!("{third}.pem"))), 0o600);
    }

    #[test]
    fn a_second_rotation_within_one_second_becomes_the_newest_key() {
        let tmp = tempfile::tempdir().unwrap();
        let first = KeyRing::rotate(tmp.path(), at(0), LIFETIME).unwrap();
        let second = KeyRing::rotate(tmp.path(), at(0), LIFETIME).unwrap();
        assert!(second > first, "{second} must sort after {first}");
        let ring = KeyRing::load(tmp.path(), at(1), LIFETIME).unwrap();
        assert_eq!(ring.current_kid(), second);
        assert_eq!(ring.kids().count(), 2);
    }

    #[test]
    fn a_clock_set_back_by_more_than_a_minute_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let kid = KeyRing::rotate(tmp.path(), at(0), LIFETIME).unwrap();
        assert!(KeyRing::rotate(tmp.path(), at(-120), LIFETIME).is_err());
        assert_eq!(pem_files(tmp.path()), vec![format!("{kid}.pem")]);
    }

    #[test]
    fn debug_output_names_kids_only() {
        let tmp = tempfile::tempdir().unwrap();
        let ring = KeyRing::load_or_generate(tmp.path(), at(0), LIFETIME).unwrap();
        let debug = format!("{ring:?}");
        assert!(debug.contains(ring.current_kid()));
        let pem = fs::read_to_string(tmp.path().join(format!("{}.pem", ring.current_kid())));
        let body = pem.unwrap().lines().nth(1).unwrap().to_owned();
        assert!(!debug.contains(&body[..16]));
    }
}
