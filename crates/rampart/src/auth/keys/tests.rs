use std::{path::PathBuf, process::Command};

use base64::engine::general_purpose::STANDARD;

use super::{
    file::{PEM_BEGIN, PEM_END, pem_to_der},
    *,
};

/// 2026-11-22T22:33:20Z.
const T0: i64 = 1_795_386_800;
const LIFETIME: Duration = Duration::from_secs(15 * 60);
const OPENSSL: &str = "/usr/bin/openssl";

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

fn key_path(dir: &Path, kid: &str) -> PathBuf {
    dir.join(format!("{kid}.pem"))
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// `openssl genpkey -algorithm ed25519 -out <dir>/<kid>.pem`, then mode 0600.
fn openssl_genpkey(dir: &Path, kid: &str) -> PathBuf {
    let path = key_path(dir, kid);
    let status = Command::new(OPENSSL)
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    #[cfg(unix)]
    chmod(&path, 0o600);
    path
}

/// Whether `openssl pkey -in FILE -noout` reads the file, with its error output.
fn openssl_reads(path: &Path) -> (bool, String) {
    let out = Command::new(OPENSSL)
        .args(["pkey", "-noout", "-in"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The raw public key OpenSSL derives from a key file (the last 32 bytes of its SPKI).
fn openssl_public_key(path: &Path) -> Vec<u8> {
    let out = Command::new(OPENSSL)
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout[out.stdout.len() - 32..].to_vec()
}

fn jwks_kids(ring: &KeyRing) -> Vec<String> {
    ring.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn write_manifest(dir: &Path, text: &str) {
    private_fs::write(&dir.join(MANIFEST_FILE), text.as_bytes()).unwrap();
}

fn rfc3339(secs: i64) -> String {
    at(secs)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn error_of(result: anyhow::Result<KeyRing>) -> String {
    format!("{:#}", result.unwrap_err())
}

#[test]
fn generated_kids_record_their_creation_time_in_utc_and_are_valid_kids() {
    let kid = new_kid(at(0)).unwrap();
    assert!(kid.starts_with("k20261122T223320Z-"), "{kid}");
    assert!(is_valid_kid(&kid));
    let offset = at(0).to_offset(UtcOffset::from_hms(5, 30, 0).unwrap());
    assert!(new_kid(offset).unwrap().starts_with("k20261122T223320Z-"));
}

#[test]
fn a_generated_key_is_an_owner_only_pkcs8_v1_file_that_openssl_reads() {
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
    // RFC 8410 §7: version 0 (v1), no attached public key: 48 bytes of DER.
    let der = pem_to_der(&text).unwrap();
    assert_eq!(der.len(), 48);
    assert_eq!(&der[..5], &[0x30, 0x2e, 0x02, 0x01, 0x00]);
    let (ok, err) = openssl_reads(&path);
    assert!(ok, "openssl pkey refused a key Rampart wrote: {err}");
    assert_eq!(openssl_public_key(&path), ring.keys[0].public);
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temporary file");
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
    let err = error_of(KeyRing::load(tmp.path(), at(0), LIFETIME));
    assert!(err.contains("no signing key"), "{err}");
}

#[test]
fn an_openssl_genpkey_key_with_any_kid_signs_alone_without_a_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let path = openssl_genpkey(tmp.path(), "prod-2026-12");
    let ring = KeyRing::load(tmp.path(), at(0), LIFETIME).unwrap();
    assert_eq!(ring.current_kid(), "prod-2026-12");
    assert_eq!(ring.kids().collect::<Vec<_>>(), ["prod-2026-12"]);
    assert!(ring.warnings().is_empty());
    let x = URL_SAFE_NO_PAD
        .decode(ring.jwks()["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    assert_eq!(x, openssl_public_key(&path));
    // A lone key never retires.
    assert!(
        ring.verifying_key("prod-2026-12", T0 + 10 * 365 * 86_400)
            .is_some()
    );
}

#[test]
fn a_pkcs8_v2_key_written_by_earlier_versions_still_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let v2 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    assert!(
        v2.as_ref().len() > 48,
        "a v2 document carries the public key"
    );
    let kid = "k20261122T223320Z-1a2b3c4d";
    private_fs::write(
        &key_path(tmp.path(), kid),
        file::der_to_pem(v2.as_ref()).as_bytes(),
    )
    .unwrap();
    let ring = KeyRing::load(tmp.path(), at(0), LIFETIME).unwrap();
    assert_eq!(ring.current_kid(), kid);
    let pair = Ed25519KeyPair::from_pkcs8(v2.as_ref()).unwrap();
    assert_eq!(ring.keys[0].public, pair.public_key().as_ref());
}

#[cfg(unix)]
#[test]
fn load_refuses_any_key_file_readable_by_group_or_others() {
    let tmp = tempfile::tempdir().unwrap();
    let path = openssl_genpkey(tmp.path(), "prod-2026-12");
    for bad in [0o644, 0o640, 0o604, 0o660] {
        chmod(&path, bad);
        let err = error_of(KeyRing::load(tmp.path(), at(0), LIFETIME));
        assert!(
            err.contains("readable by group or others"),
            "{bad:o}: {err}"
        );
        assert!(err.contains("prod-2026-12.pem"), "{err}");
    }
    chmod(&path, 0o600);
    assert!(KeyRing::load(tmp.path(), at(0), LIFETIME).is_ok());

    // A file the manifest does not name is checked too: it is a key all the same.
    let other = openssl_genpkey(tmp.path(), "spare");
    write_manifest(tmp.path(), r#"{"current": "prod-2026-12"}"#);
    chmod(&other, 0o640);
    let err = error_of(KeyRing::load(tmp.path(), at(0), LIFETIME));
    assert!(err.contains("spare.pem"), "{err}");
}

#[test]
fn a_pem_file_whose_name_is_not_a_kid_is_refused_naming_the_rule() {
    for name in [
        "....pem".to_owned(),
        "...pem".to_owned(),
        ".hidden.pem".to_owned(),
        "a b.pem".to_owned(),
        "a..b.pem".to_owned(),
        format!("{}.pem", "k".repeat(65)),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        openssl_genpkey(tmp.path(), "prod-2026-12");
        private_fs::write(&tmp.path().join(&name), b"x").unwrap();
        let err = error_of(KeyRing::load(tmp.path(), at(0), LIFETIME));
        assert!(err.contains("a kid is 1-64 characters"), "{name}: {err}");
        assert!(err.contains(&name), "{name}: {err}");
    }
    // 64 characters is a kid.
    let tmp = tempfile::tempdir().unwrap();
    let longest = "k".repeat(64);
    openssl_genpkey(tmp.path(), &longest);
    let ring = KeyRing::load(tmp.path(), at(0), LIFETIME).unwrap();
    assert_eq!(ring.current_kid(), longest);
}

#[test]
fn a_key_file_that_is_not_an_ed25519_pkcs8_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = key_path(tmp.path(), "prod");
    for content in [
        &b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"[..],
        b"hello",
        b"",
    ] {
        private_fs::write(&path, content).unwrap();
        let err = error_of(KeyRing::load(tmp.path(), at(0), LIFETIME));
        assert!(err.contains("prod.pem"), "{err}");
    }
    // An EC key is a PKCS#8 document, but not an Ed25519 one.
    let status = Command::new(OPENSSL)
        .args([
            "genpkey",
            "-algorithm",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    #[cfg(unix)]
    chmod(&path, 0o600);
    let err = error_of(KeyRing::load(tmp.path(), at(0), LIFETIME));
    assert!(
        err.contains("not an unencrypted Ed25519 PKCS#8 key"),
        "{err}"
    );
}

#[test]
fn several_keys_without_a_manifest_are_an_error_naming_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    openssl_genpkey(tmp.path(), "prod-2026-11");
    openssl_genpkey(tmp.path(), "prod-2026-12");
    let err = error_of(KeyRing::load(tmp.path(), at(0), LIFETIME));
    for part in [
        "prod-2026-11, prod-2026-12",
        "rampart keys rotate",
        "manifest.json",
        "which one signs",
    ] {
        assert!(err.contains(part), "{part} not in: {err}");
    }
    write_manifest(tmp.path(), r#"{"current": "prod-2026-11"}"#);
    let ring = KeyRing::load(tmp.path(), at(0), LIFETIME).unwrap();
    assert_eq!(ring.current_kid(), "prod-2026-11");
}

#[test]
fn a_manifest_naming_a_missing_key_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    openssl_genpkey(tmp.path(), "prod-2026-12");
    write_manifest(tmp.path(), r#"{"current": "prod-2027-01"}"#);
    let err = error_of(KeyRing::load(tmp.path(), at(0), LIFETIME));
    assert!(err.contains("prod-2027-01"), "{err}");
    assert!(err.contains("does not exist"), "{err}");

    // A retired key that should still verify must be there too…
    let manifest = format!(
        r#"{{"current": "prod-2026-12", "retired": [{{"kid": "gone", "retire_after": "{}"}}]}}"#,
        rfc3339(60)
    );
    write_manifest(tmp.path(), &manifest);
    let err = error_of(KeyRing::load(tmp.path(), at(0), LIFETIME));
    assert!(
        err.contains("gone") && err.contains("does not exist"),
        "{err}"
    );
    // …but past its time it is simply over.
    assert!(KeyRing::load(tmp.path(), at(61), LIFETIME).is_ok());

    // A manifest kid that would be a path is refused before anything is opened.
    write_manifest(tmp.path(), r#"{"current": "../prod-2026-12"}"#);
    let err = error_of(KeyRing::load(tmp.path(), at(0), LIFETIME));
    assert!(err.contains("is not a kid"), "{err}");
}

#[test]
fn a_key_file_the_manifest_does_not_name_never_verifies_and_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    openssl_genpkey(tmp.path(), "prod-2026-12");
    openssl_genpkey(tmp.path(), "dropped-in");
    write_manifest(tmp.path(), r#"{"current": "prod-2026-12"}"#);
    let ring = KeyRing::load(tmp.path(), at(0), LIFETIME).unwrap();
    assert_eq!(ring.kids().collect::<Vec<_>>(), ["prod-2026-12"]);
    assert!(ring.verifying_key("dropped-in", T0).is_none());
    assert_eq!(jwks_kids(&ring), ["prod-2026-12"]);
    assert_eq!(ring.warnings().len(), 1);
    assert!(
        ring.warnings()[0].contains("dropped-in.pem"),
        "{:?}",
        ring.warnings()
    );
}

#[test]
fn a_hand_written_retirement_time_is_honoured_to_the_second() {
    let tmp = tempfile::tempdir().unwrap();
    openssl_genpkey(tmp.path(), "new");
    openssl_genpkey(tmp.path(), "old");
    let manifest = format!(
        r#"{{"current": "new", "retired": [{{"kid": "old", "retire_after": "{}"}}]}}"#,
        rfc3339(100)
    );
    write_manifest(tmp.path(), &manifest);
    let ring = KeyRing::load(tmp.path(), at(0), LIFETIME).unwrap();
    assert_eq!(ring.current_kid(), "new");
    assert_eq!(jwks_kids(&ring), ["new", "old"]);
    assert!(ring.verifying_key("old", T0 + 100).is_some());
    assert!(ring.verifying_key("old", T0 + 101).is_none());
    let later = KeyRing::load(tmp.path(), at(101), LIFETIME).unwrap();
    assert_eq!(jwks_kids(&later), ["new"]);
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
fn every_file_rotate_writes_is_owner_only_and_every_key_loads_in_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    for i in 0..3 {
        KeyRing::rotate(&dir, at(i * 10), LIFETIME).unwrap();
    }
    let files = pem_files(&dir);
    assert_eq!(files.len(), 3);
    for name in &files {
        let (ok, err) = openssl_reads(&dir.join(name));
        assert!(ok, "openssl pkey refused {name}: {err}");
    }
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir), 0o700);
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    let names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        4,
        "three keys and the manifest, no temporary: {names:?}"
    );
    assert!(names.contains(&MANIFEST_FILE.to_owned()));
}

#[test]
fn rotate_without_a_manifest_keeps_every_existing_key_verifying_for_the_retention() {
    let tmp = tempfile::tempdir().unwrap();
    openssl_genpkey(tmp.path(), "a");
    openssl_genpkey(tmp.path(), "b");
    assert!(KeyRing::load(tmp.path(), at(0), LIFETIME).is_err());
    let kid = KeyRing::rotate(tmp.path(), at(0), LIFETIME).unwrap();
    let ring = KeyRing::load(tmp.path(), at(0), LIFETIME).unwrap();
    assert_eq!(ring.current_kid(), kid);
    for old in ["a", "b"] {
        assert!(ring.verifying_key(old, T0 + 900).is_some(), "{old}");
        assert!(ring.verifying_key(old, T0 + 901).is_none(), "{old}");
    }
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

    // `first` retired at 100 + 900; `second` verifies until 1200 + 900.
    let ring = KeyRing::load(tmp.path(), at(1200), LIFETIME).unwrap();
    assert_eq!(jwks_kids(&ring), vec![third.clone(), second.clone()]);
    assert!(!jwks_kids(&ring).contains(&first));
    let ring = KeyRing::load(tmp.path(), at(2101), LIFETIME).unwrap();
    assert_eq!(jwks_kids(&ring), vec![third.clone()]);

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
    let path = key_path(tmp.path(), &third);
    assert_eq!(x, openssl_public_key(&path));
    let der = pem_to_der(&fs::read_to_string(&path).unwrap()).unwrap();
    let text = jwks.to_string();
    assert!(!text.contains("\"d\""));
    // The private seed is the last 32 bytes of a v1 document.
    assert!(!text.contains(&URL_SAFE_NO_PAD.encode(&der[16..])));
    assert!(!text.contains(&STANDARD.encode(&*der)[..20]));
}

#[test]
fn rotate_deletes_retired_key_files_only_and_leaves_unnamed_files_alone() {
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
    openssl_genpkey(tmp.path(), "unnamed");
    let third = KeyRing::rotate(tmp.path(), at(1001), LIFETIME).unwrap();
    assert_eq!(
        pem_files(tmp.path()),
        vec![
            format!("{second}.pem"),
            format!("{third}.pem"),
            "unnamed.pem".to_owned()
        ]
    );
    let ring = KeyRing::load(tmp.path(), at(1001), LIFETIME).unwrap();
    assert_eq!(
        ring.kids().collect::<Vec<_>>(),
        [second.as_str(), third.as_str()]
    );
    assert!(ring.warnings()[0].contains("unnamed.pem"));
}

#[test]
fn a_second_rotation_within_one_second_becomes_current() {
    let tmp = tempfile::tempdir().unwrap();
    let first = KeyRing::rotate(tmp.path(), at(0), LIFETIME).unwrap();
    let second = KeyRing::rotate(tmp.path(), at(0), LIFETIME).unwrap();
    assert_ne!(second, first);
    let ring = KeyRing::load(tmp.path(), at(1), LIFETIME).unwrap();
    assert_eq!(ring.current_kid(), second);
    assert_eq!(
        ring.kids().collect::<Vec<_>>(),
        [first.as_str(), second.as_str()]
    );
}

#[test]
fn debug_output_names_kids_only() {
    let tmp = tempfile::tempdir().unwrap();
    let ring = KeyRing::load_or_generate(tmp.path(), at(0), LIFETIME).unwrap();
    let debug = format!("{ring:?}");
    assert!(debug.contains(ring.current_kid()));
    let pem = fs::read_to_string(key_path(tmp.path(), ring.current_kid())).unwrap();
    let body = pem.lines().nth(1).unwrap().to_owned();
    assert!(!debug.contains(&body[..16]));
}
