//! The files of a keys directory: which names are kids, reading a file only its owner may
//! read, and the PEM form of PKCS#8 documents (RFC 7468 §10).

use std::{
    fs::{self, File},
    io::Read as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use zeroize::Zeroizing;

pub(super) const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
pub(super) const PEM_END: &str = "-----END PRIVATE KEY-----";
/// The longest kid.
pub(super) const MAX_KID_LEN: usize = 64;
/// What a kid may be, for error messages.
pub(super) const KID_RULE: &str =
    "1-64 characters of A-Z a-z 0-9 . _ -, not starting with a dot and without `..`";

/// Whether `kid` may name a key: 1–64 characters of `[A-Za-z0-9._-]`, not starting with a
/// dot (hidden files, `.` and `..`) and without `..`, so no kid can ever be read as a path.
pub fn is_valid_kid(kid: &str) -> bool {
    (1..=MAX_KID_LEN).contains(&kid.len())
        && kid
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && !kid.starts_with('.')
        && !kid.contains("..")
}

/// A `<kid>.pem` file of a keys directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyFile {
    pub kid: String,
    pub path: PathBuf,
}

/// The `<kid>.pem` files of `dir`, sorted by kid. Files not ending in `.pem` are not keys
/// and are skipped; a `.pem` file whose stem is not a valid kid is an error naming the rule.
pub(super) fn list(dir: &Path) -> anyhow::Result<Vec<KeyFile>> {
    let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut keys = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if path.extension().is_none_or(|e| e != "pem") {
            continue;
        }
        let kid = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if !is_valid_kid(kid) {
            bail!(
                "{}: a key file is named <kid>.pem, and a kid is {KID_RULE}; rename or remove this file",
                path.display()
            );
        }
        keys.push(KeyFile {
            kid: kid.to_owned(),
            path,
        });
    }
    keys.sort_by(|a, b| a.kid.cmp(&b.kid));
    Ok(keys)
}

/// Read a file of at most `max_len` bytes, refusing one that group or others may access (a
/// key file leaks its key; a manifest others may change could revive a retired key).
pub(super) fn read_private(path: &Path, max_len: u64) -> anyhow::Result<Zeroizing<String>> {
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
                "{} is readable by group or others (mode {mode:04o}, want 0600: chmod 600 it)",
                path.display()
            );
        }
    }
    if meta.len() > max_len {
        bail!(
            "{} is too large ({} bytes, at most {max_len})",
            path.display(),
            meta.len()
        );
    }
    let mut text = Zeroizing::new(String::new());
    file.take(max_len)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(text)
}

/// The DER of a `PRIVATE KEY` (unencrypted PKCS#8, RFC 5958) PEM document. Text around the
/// block (OpenSSL may write explanatory lines before it) is ignored.
pub(super) fn pem_to_der(pem: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let not_pem = "not a PEM `PRIVATE KEY` (unencrypted PKCS#8) document";
    let (_, rest) = pem.split_once(PEM_BEGIN).context(not_pem)?;
    let (body, _) = rest.split_once(PEM_END).context(not_pem)?;
    let b64: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    let der = STANDARD
        .decode(b64.as_bytes())
        .context("the PEM body is not base64")?;
    Ok(Zeroizing::new(der))
}

/// PEM-encode a PKCS#8 document: base64 in 64-column lines (RFC 7468 §2).
pub(super) fn der_to_pem(der: &[u8]) -> Zeroizing<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kids_are_file_stems_of_a_safe_alphabet() {
        for kid in [
            "prod-2026-12",
            "k20261122T223320Z-1a2b3c4d",
            "a",
            "A.b_c-9",
            &"x".repeat(64),
        ] {
            assert!(is_valid_kid(kid), "{kid}");
        }
    }

    #[test]
    fn a_kid_that_could_be_a_path_or_is_too_long_is_not_a_kid() {
        for kid in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/b",
            "a..b",
            ".hidden",
            "a b",
            "é",
            "a\0b",
            &"x".repeat(65),
        ] {
            assert!(!is_valid_kid(kid), "{kid:?}");
        }
    }

    #[test]
    fn pem_round_trips_and_tolerates_text_around_the_block() {
        let der = [0x30_u8, 0x2e, 0x02, 0x01, 0x00];
        let pem = der_to_pem(&der);
        assert!(pem.starts_with(PEM_BEGIN) && pem.ends_with(&format!("{PEM_END}\n")));
        assert_eq!(&*pem_to_der(&pem).unwrap(), &der);
        let annotated = format!("ED25519 Private-Key:\n{}\ntrailing\n", &*pem);
        assert_eq!(&*pem_to_der(&annotated).unwrap(), &der);
        assert!(pem_to_der("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err());
        assert!(pem_to_der(&format!("{PEM_BEGIN}\n!!!!\n{PEM_END}")).is_err());
    }
}
