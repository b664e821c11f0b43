//! API.md §1 `RAMPART_KEYS_DIR`: signing keys any tool reads. Every key file Rampart writes
//! loads in `openssl pkey`; a key made by `openssl genpkey` works as it is, its file stem
//! being its kid; which key signs and when a retired one stops verifying come from
//! `manifest.json`, never from a kid's text.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rampart::auth::keys::{KeyRing, MANIFEST_FILE};
use serde_json::{Value, json};

use crate::{
    accounts::strong_password,
    harness::{TestApp, problem},
};

const BIN: &str = env!("CARGO_BIN_EXE_rampart");
const OPENSSL: &str = "/usr/bin/openssl";
const SESSION_SECRET: &str = "a-production-session-secret-of-40-bytes!";

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// `openssl genpkey -algorithm ed25519 -out <dir>/<kid>.pem`, as an operator would, then
/// `chmod 600`.
fn openssl_genpkey(dir: &Path, kid: &str) -> PathBuf {
    let path = dir.join(format!("{kid}.pem"));
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

/// Every `.pem` file of `dir`.
fn pem_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        .collect();
    files.sort();
    files
}

/// `openssl pkey -in FILE -noout` succeeds.
fn assert_openssl_reads(path: &Path) {
    let out = Command::new(OPENSSL)
        .args(["pkey", "-noout", "-in"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl pkey refused {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A production configuration with every setting right, its keys in `dir/keys`.
fn production_vars(dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("RAMPART_ENV", "production".to_owned()),
        ("RAMPART_SESSION_SECRET", SESSION_SECRET.to_owned()),
        ("RAMPART_DATA_DIR", dir.join("data").display().to_string()),
        ("RAMPART_KEYS_DIR", dir.join("keys").display().to_string()),
        ("RAMPART_PUBLIC_URL", "https://api.example.test".to_owned()),
        ("RAMPART_TRUSTED_PROXIES", "127.0.0.1/32".to_owned()),
        ("RAMPART_SMTP_URL", "smtp://127.0.0.1:1".to_owned()),
    ]
}

/// A keys directory as an operator makes one: mode 0700.
fn keys_dir(dir: &Path) -> PathBuf {
    let keys = dir.join("keys");
    std::fs::create_dir(&keys).unwrap();
    #[cfg(unix)]
    chmod(&keys, 0o700);
    keys
}

/// `rampart ARGS` with a clean environment and `vars`, in `dir`, to completion (at most
/// 60 s: past that it is killed and the test fails).
fn rampart(dir: &Path, args: &[&str], vars: &[(&str, String)], stdin: &str) -> Output {
    use std::io::Write as _;
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RAMPART_LISTEN", "127.0.0.1:0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("rampart {args:?} did not finish within 60 s");
        }
    }
}

fn all_output(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

/// `rampart serve` in production refuses to start, and says `expected`.
fn assert_production_refuses(dir: &Path, expected: &[&str]) {
    let out = rampart(dir, &["serve"], &production_vars(dir), "");
    assert!(!out.status.success(), "production started");
    let text = all_output(&out);
    for part in expected {
        assert!(text.contains(part), "{part:?} not in:\n{text}");
    }
}

fn jwt_header(token: &str) -> Value {
    let raw = URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

#[tokio::test]
async fn the_key_generated_in_development_loads_in_openssl() {
    let app = TestApp::spawn().await;
    let files = pem_files(&app.keys_dir);
    assert_eq!(files.len(), 1);
    for file in &files {
        assert_openssl_reads(file);
        #[cfg(unix)]
        assert_eq!(mode(file), 0o600);
    }
    let kid = files[0].file_stem().unwrap().to_str().unwrap();
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], kid);
    app.stop().await;
}

#[test]
fn every_key_and_manifest_keys_rotate_writes_is_owner_only_and_loads_in_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("data/keys");
    let mut printed = Vec::new();
    for _ in 0..2 {
        let out = rampart(dir.path(), &["keys", "rotate"], &[], "");
        assert!(out.status.success(), "{}", all_output(&out));
        printed.push(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let files = pem_files(&keys);
    assert_eq!(files.len(), 2, "the previous key still verifies");
    for file in &files {
        assert_openssl_reads(file);
    }
    let manifest_path = keys.join(MANIFEST_FILE);
    #[cfg(unix)]
    {
        assert_eq!(mode(&keys), 0o700);
        for entry in std::fs::read_dir(&keys).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let current = manifest["current"].as_str().unwrap();
    assert!(printed[1].contains(current), "{}", printed[1]);
    let retired = manifest["retired"].as_array().unwrap();
    assert_eq!(retired.len(), 1);
    assert!(printed[0].contains(retired[0]["kid"].as_str().unwrap()));
    assert!(retired[0]["retire_after"].is_string());
}

/// The acceptance line of issue 11: one `openssl genpkey` key named `prod-2026-12.pem`, a
/// production configuration, and the access token of a login names that kid.
#[test]
fn production_with_one_openssl_key_starts_and_signs_with_its_file_stem_as_kid() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_dir(dir.path());
    let key = openssl_genpkey(&keys, "prod-2026-12");
    let vars = production_vars(dir.path());
    let password = strong_password();
    let admin = rampart(
        dir.path(),
        &[
            "create-admin",
            "--email",
            "ops@example.com",
            "--password-stdin",
        ],
        &vars,
        &format!("{password}\n"),
    );
    assert!(admin.status.success(), "{}", all_output(&admin));

    let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (server, addr) = crate::cli::spawn_serve(dir.path(), &borrowed);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (login, jwks) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let login = client
            .post(format!("http://{addr}/api/v1/auth/login"))
            .json(&json!({"email": "ops@example.com", "password": password}))
            .send()
            .await
            .unwrap();
        let status = login.status();
        let body: Value = login.json().await.unwrap();
        let jwks: Value = client
            .get(format!("http://{addr}/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ((status, body), jwks)
    });
    crate::cli::stop_serve(server);

    assert_eq!(login.0, 200, "{}", login.1);
    let header = jwt_header(login.1["access_token"].as_str().unwrap());
    assert_eq!(header["kid"], "prod-2026-12");
    assert_eq!(header["alg"], "EdDSA");
    let published: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(published, ["prod-2026-12"]);
    // Rampart neither rewrote nor added to the operator's keys.
    assert_openssl_reads(&key);
    assert_eq!(pem_files(&keys), [key]);
    assert!(!keys.join(MANIFEST_FILE).exists());
}

#[cfg(unix)]
#[test]
fn production_refuses_a_group_readable_key_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_dir(dir.path());
    let key = openssl_genpkey(&keys, "prod-2026-12");
    chmod(&key, 0o640);
    assert_production_refuses(dir.path(), &["prod-2026-12.pem", "group"]);
}

#[test]
fn production_refuses_several_keys_without_a_manifest_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_dir(dir.path());
    openssl_genpkey(&keys, "prod-2026-11");
    openssl_genpkey(&keys, "prod-2026-12");
    assert_production_refuses(
        dir.path(),
        &[
            "prod-2026-11, prod-2026-12",
            "rampart keys rotate",
            MANIFEST_FILE,
        ],
    );
}

#[test]
fn production_refuses_a_manifest_naming_a_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_dir(dir.path());
    openssl_genpkey(&keys, "prod-2026-12");
    let manifest = keys.join(MANIFEST_FILE);
    std::fs::write(&manifest, r#"{"current": "prod-2027-01"}"#).unwrap();
    #[cfg(unix)]
    chmod(&manifest, 0o600);
    assert_production_refuses(dir.path(), &["prod-2027-01", "does not exist"]);
}

#[test]
fn a_key_file_whose_stem_is_not_a_kid_stops_the_start_naming_the_rule() {
    for name in ["...pem".to_owned(), format!("{}.pem", "k".repeat(65))] {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys_dir(dir.path());
        openssl_genpkey(&keys, "prod-2026-12");
        let path = keys.join(&name);
        std::fs::copy(keys.join("prod-2026-12.pem"), &path).unwrap();
        #[cfg(unix)]
        chmod(&path, 0o600);
        assert_production_refuses(dir.path(), &[&name, "a kid is 1-64 characters"]);
    }
}

/// How long a key keeps verifying after it stopped signing, as `rampart keys rotate` uses.
fn retention(app: &TestApp) -> Duration {
    app.state.config.auth.access_token_ttl + rampart::auth::tokens::DEFAULT_LEEWAY
}

fn now(app: &TestApp) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(app.clock.now_secs()).unwrap()
}

#[tokio::test]
async fn a_retired_key_stops_verifying_after_its_time_even_for_an_unexpired_token() {
    let app = TestApp::spawn().await;
    let (_, _, session) = app.signed_in_user().await;
    let old_kid = jwt_header(&session.access)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    // Retire the old key one minute from now, much sooner than its tokens expire.
    KeyRing::rotate(&app.keys_dir, now(&app), Duration::from_secs(60)).unwrap();
    app.state
        .tokens
        .reload(&app.keys_dir, now(&app), retention(&app));
    assert_eq!(
        app.get_bearer("/api/v1/me", &session.access).await.status(),
        200
    );

    app.clock.advance(Duration::from_secs(60));
    assert_eq!(
        app.get_bearer("/api/v1/me", &session.access).await.status(),
        200
    );
    app.clock.advance(Duration::from_secs(1));
    let response = app.get_bearer("/api/v1/me", &session.access).await;
    assert_eq!(response.status(), 401);
    // Not `token_expired`: the token's own `exp` is still 14 minutes away.
    assert_eq!(problem(response).await["code"], "invalid_token");

    app.state
        .tokens
        .reload(&app.keys_dir, now(&app), retention(&app));
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 1);
    assert!(!kids.contains(&old_kid.as_str()), "{kids:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_broken_manifest_on_reload_keeps_the_running_keys() {
    let app = TestApp::spawn().await;
    let (_, _, before) = app.signed_in_user().await;
    let kid = jwt_header(&before.access)["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let manifest = app.keys_dir.join(MANIFEST_FILE);
    std::fs::write(&manifest, r#"{"current": "not-there"}"#).unwrap();
    #[cfg(unix)]
    chmod(&manifest, 0o600);
    app.state
        .tokens
        .reload(&app.keys_dir, now(&app), retention(&app));

    assert_eq!(
        app.get_bearer("/api/v1/me", &before.access).await.status(),
        200
    );
    let (_, _, after) = app.signed_in_user().await;
    assert_eq!(jwt_header(&after.access)["kid"], kid.as_str());
    app.stop().await;
}
