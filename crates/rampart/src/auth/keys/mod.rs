//! Ed25519 signing keys for access tokens, kept in a directory (`RAMPART_KEYS_DIR`): one
//! PKCS#8 PEM file per key named `<kid>.pem` (mode 0600), and a `manifest.json` saying which
//! key signs and until when each retired key still verifies.
//!
//! - A kid is the file stem: 1–64 characters of `[A-Za-z0-9._-]`, not starting with a dot and
//!   without `..`. Nothing is read from its text; `rampart keys rotate` names its keys
//!   `k<UTC time>-<8 hex digits>` only so that a listing reads in order.
//! - Files Rampart writes are PKCS#8 v1 (RFC 8410: the 48-byte document without the public
//!   key), as `openssl genpkey -algorithm ed25519` writes them, so `openssl pkey` and Python's
//!   `cryptography` read them. Reading accepts v1 and v2.
//! - With no manifest, a lone key signs and never retires; several keys without a manifest
//!   are an error naming the fix, since which one signs would be a guess.
//! - [`KeyRing::rotate`] adds a key, makes it current, retires the previous current key at
//!   `now` + the longest token lifetime, and deletes the files of keys retired before `now`.
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
//! - [`KeyRing::load`] refuses any key file or manifest that group or others may access —
//!   every `.pem` file, whether the manifest names it or not: a readable file leaks its key
//!   whatever its state.
//! - A kid never becomes a path: kids from the manifest are matched against the directory's
//!   listing, and a kid in a token is only looked up among the loaded keys.
//! - A `.pem` file the manifest does not name never verifies (it is reported as a warning),
//!   so dropping a file into the directory cannot add a trusted key on its own.
//! - The JWKS holds public material only: `kty`, `crv`, `x`, `kid`, `alg`, `use`; never `d`.
//! - Time is passed in, never read here. Retirement is checked at load and again at each
//!   verification, so a long-running ring stops accepting a key on time; its JWKS stays as of
//!   load until the ring is reloaded.
//! - A running process learns of a rotation only when it reloads the directory: with several
//!   instances, every one must reload before the new key's tokens verify everywhere.

mod file;
mod manifest;
#[cfg(test)]
mod tests;

use std::{fmt, fs, path::Path, time::Duration};

use anyhow::{Context as _, bail};
use aws_lc_rs::{
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair as _},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore as _;
use serde_json::{Value, json};
use time::{OffsetDateTime, UtcOffset};

pub use self::file::is_valid_kid;
pub use self::manifest::FILE_NAME as MANIFEST_FILE;
use self::{
    file::KeyFile,
    manifest::{Manifest, Retired},
};
use crate::private_fs;

/// Far larger than any Ed25519 PKCS#8 PEM (about 120–170 bytes): refuse to read anything
/// bigger.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// The keys that sign and verify access tokens, loaded from a keys directory.
pub struct KeyRing {
    /// Every key that may still verify: retired ones by retirement time, the current key
    /// last.
    keys: Vec<RingKey>,
    /// The PKCS#8 document of the current key.
    signing: EncodingKey,
    max_token_lifetime: Duration,
    /// What load found odd but not fatal (a key file the manifest does not name).
    warnings: Vec<String>,
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

/// Which key files load, and how: the current key and the retired keys still verifying.
struct Plan<'a> {
    current: &'a KeyFile,
    verifying: Vec<(&'a KeyFile, i64)>,
    warnings: Vec<String>,
}

impl KeyRing {
    /// Load the keys of `dir` as of `now`. `max_token_lifetime` is the longest lifetime of a
    /// token these keys sign ([`rotate`](Self::rotate) keeps a replaced key verifying that
    /// long; a token service refuses a longer lifetime).
    ///
    /// Fails when the directory holds no key; when a key file or the manifest may be read by
    /// group or others; when a `.pem` file is not named `<kid>.pem`; when there are several
    /// keys and no manifest; when the manifest names a key whose file is missing; or when a
    /// key is not an Ed25519 PKCS#8 key.
    pub fn load(
        dir: &Path,
        now: OffsetDateTime,
        max_token_lifetime: Duration,
    ) -> anyhow::Result<Self> {
        let files = file::list(dir)?;
        // Every key file is checked, unused ones included: a readable file leaks a key
        // whatever its state.
        for key in &files {
            file::read_private(&key.path, MAX_KEY_FILE_LEN)?;
        }
        let manifest = Manifest::read(dir)?;
        let plan = plan(dir, &files, manifest.as_ref(), now.unix_timestamp())?;

        let mut keys = Vec::with_capacity(plan.verifying.len() + 1);
        for (key, retires_at) in &plan.verifying {
            let (_, public) = read_key(key)?;
            keys.push(RingKey::new(&key.kid, public, Some(*retires_at)));
        }
        let (der, public) = read_key(plan.current)?;
        keys.push(RingKey::new(&plan.current.kid, public, None));
        Ok(Self {
            keys,
            signing: EncodingKey::from_ed_der(&der),
            max_token_lifetime,
            warnings: plan.warnings,
        })
    }

    /// For development: create `dir` (mode 0700) and a first key when it holds no key and no
    /// manifest, then [`load`](Self::load) it.
    pub fn load_or_generate(
        dir: &Path,
        now: OffsetDateTime,
        max_token_lifetime: Duration,
    ) -> anyhow::Result<Self> {
        private_fs::create_dir(dir)?;
        let files = file::list(dir)?;
        if files.is_empty() && Manifest::read(dir)?.is_none() {
            write_new_key(dir, now, &files)?;
        }
        Self::load(dir, now, max_token_lifetime)
    }

    /// Create a new key in `dir` (created 0700 if missing) and make it current from `now` on.
    /// The key that signed until now keeps verifying until `now + max_token_lifetime`; with no
    /// manifest, every key already in `dir` does (nothing says which one signed). Keys retired
    /// before `now` are dropped from the manifest and their files deleted; a `.pem` file the
    /// manifest did not name is left alone. Returns the new kid.
    pub fn rotate(
        dir: &Path,
        now: OffsetDateTime,
        max_token_lifetime: Duration,
    ) -> anyhow::Result<String> {
        private_fs::create_dir(dir)?;
        let files = file::list(dir)?;
        let has_file = |kid: &str| files.iter().any(|f| f.kid == kid);
        let now_secs = now.unix_timestamp();
        let retire_after = now_secs.saturating_add(duration_secs(max_token_lifetime));

        let (mut retired, previous) = match Manifest::read(dir)? {
            Some(m) => (m.retired, vec![m.current]),
            None => (Vec::new(), files.iter().map(|f| f.kid.clone()).collect()),
        };
        for kid in previous.into_iter().filter(|kid| has_file(kid)) {
            retired.push(Retired { kid, retire_after });
        }
        // A retired key past its time, or whose file is gone, verifies nothing any more.
        let (keep, expired): (Vec<Retired>, Vec<Retired>) = retired
            .into_iter()
            .partition(|r| r.retire_after >= now_secs && has_file(&r.kid));

        let kid = write_new_key(dir, now, &files)?;
        Manifest {
            current: kid.clone(),
            retired: keep,
        }
        .write(dir)?;
        // Deleted only once the manifest no longer names them: a crash in between leaves
        // files no manifest names, which never verify.
        for key in files
            .iter()
            .filter(|f| expired.iter().any(|r| r.kid == f.kid))
        {
            fs::remove_file(&key.path)
                .with_context(|| format!("deleting retired key {}", key.path.display()))?;
        }
        private_fs::sync_dir(dir)?;
        Ok(kid)
    }

    /// The kid of the key that signs.
    pub fn current_kid(&self) -> &str {
        self.keys.last().map_or("", |k| k.kid.as_str())
    }

    /// The kids of every key that may still verify (as of load): retired keys in order of
    /// retirement, then the current key.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    /// The longest token lifetime this ring was loaded for.
    pub fn max_token_lifetime(&self) -> Duration {
        self.max_token_lifetime
    }

    /// What loading found odd but not fatal, for the log: each names the file and why it is
    /// not used.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The JSON Web Key Set (RFC 7517, keys as RFC 8037 OKP) of every key that may still
    /// verify as of load, the current key first: public material only.
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

impl RingKey {
    fn new(kid: &str, public: Vec<u8>, retires_at: Option<i64>) -> Self {
        Self {
            kid: kid.to_owned(),
            decoding: DecodingKey::from_ed_der(&public),
            public,
            retires_at,
        }
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

/// Decide from the manifest (or its absence) which files load: see the module docs.
fn plan<'a>(
    dir: &Path,
    files: &'a [KeyFile],
    manifest: Option<&Manifest>,
    now: i64,
) -> anyhow::Result<Plan<'a>> {
    let fix = format!(
        "run `rampart keys rotate` (it writes {dir}/{name}), or write {name} by hand (README, \"Signing keys\")",
        dir = dir.display(),
        name = manifest::FILE_NAME,
    );
    let Some(manifest) = manifest else {
        return match files {
            [] => bail!(
                "no signing key in {} (want a <kid>.pem file: `rampart keys rotate` creates one, \
                 and so does `openssl genpkey -algorithm ed25519 -out <kid>.pem`)",
                dir.display()
            ),
            [lone] => Ok(Plan {
                current: lone,
                verifying: Vec::new(),
                warnings: Vec::new(),
            }),
            several => {
                let kids: Vec<&str> = several.iter().map(|f| f.kid.as_str()).collect();
                bail!(
                    "{} holds {} keys ({}) and no {}, so which one signs is unknown: {fix}",
                    dir.display(),
                    kids.len(),
                    kids.join(", "),
                    manifest::FILE_NAME
                )
            }
        };
    };
    let find = |kid: &str| files.iter().find(|f| f.kid == kid);
    let missing = |kid: &str, role: &str| {
        anyhow::anyhow!(
            "{}/{} names {kid} as {role} but {}/{kid}.pem does not exist: restore the file, or {fix}",
            dir.display(),
            manifest::FILE_NAME,
            dir.display()
        )
    };
    let current =
        find(&manifest.current).ok_or_else(|| missing(&manifest.current, "the current key"))?;
    let mut verifying = Vec::new();
    for r in &manifest.retired {
        // Past its time a retired key is gone whether or not its file still is.
        if r.retire_after < now {
            continue;
        }
        let key = find(&r.kid).ok_or_else(|| missing(&r.kid, "a retired key still verifying"))?;
        verifying.push((key, r.retire_after));
    }
    verifying.sort_by_key(|(_, t)| *t);
    let named =
        |kid: &str| kid == manifest.current || manifest.retired.iter().any(|r| r.kid == kid);
    let warnings = files
        .iter()
        .filter(|f| !named(&f.kid))
        .map(|f| {
            format!(
                "{}: not named in {}, so it neither signs nor verifies",
                f.path.display(),
                manifest::FILE_NAME
            )
        })
        .collect();
    Ok(Plan {
        current,
        verifying,
        warnings,
    })
}

/// Read and parse a key file: its PKCS#8 document and raw public key.
fn read_key(key: &KeyFile) -> anyhow::Result<(zeroize::Zeroizing<Vec<u8>>, Vec<u8>)> {
    let pem = file::read_private(&key.path, MAX_KEY_FILE_LEN)?;
    let der = file::pem_to_der(&pem).with_context(|| format!("reading {}", key.path.display()))?;
    // PKCS#8 v1 or v2 (RFC 5958); a v2 document's public key must match its private key.
    let pair = Ed25519KeyPair::from_pkcs8(&der)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| {
            format!(
                "{} is not an unencrypted Ed25519 PKCS#8 key",
                key.path.display()
            )
        })?;
    Ok((der, pair.public_key().as_ref().to_vec()))
}

fn duration_secs(d: Duration) -> i64 {
    let secs = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    i64::try_from(secs).unwrap_or(i64::MAX)
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

/// Generate a key and write it as `<kid>.pem` (0600, PKCS#8 v1), atomically: a crash leaves
/// either no key or a whole one. The kid is one no file of `existing` has.
fn write_new_key(dir: &Path, now: OffsetDateTime, existing: &[KeyFile]) -> anyhow::Result<String> {
    let mut kid = new_kid(now)?;
    while existing.iter().any(|f| f.kid == kid) {
        kid = new_kid(now)?;
    }
    // v1 (RFC 8410 §7): what OpenSSL 3 and Python's `cryptography` read; v2 they do not.
    let document = Ed25519KeyPair::generate_pkcs8v1(&SystemRandom::new())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("generating an Ed25519 key")?;
    let pem = file::der_to_pem(document.as_ref());
    private_fs::replace(dir, &format!("{kid}.pem"), pem.as_bytes())?;
    Ok(kid)
}
