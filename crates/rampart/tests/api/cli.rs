//! The `rampart` binary: zero-config serve, production refusals, check-config, shutdown.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

const BIN: &str = env!("CARGO_BIN_EXE_rampart");

/// A command with a clean environment (PATH only) in a fresh directory.
pub fn rampart(dir: &std::path::Path, args: &[&str], vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd
}

/// Wait for a child's exit, at most `bound`: a scoped thread blocks in `wait` and the
/// caller waits on its answer; past the bound the child is killed (by PID) and the test
/// fails.
pub fn wait_bounded(child: &mut std::process::Child, bound: Duration) -> std::process::ExitStatus {
    let pid = child.id();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        scope.spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(bound) {
            Ok(status) => status.unwrap(),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("process {pid} did not exit within {bound:?}");
            }
        }
    })
}

/// A `rampart serve` process in `dir` on a free loopback port, and its address once it
/// logs that it serves. Its stdout is drained by a thread until it exits.
pub fn spawn_serve(dir: &std::path::Path, vars: &[(&str, &str)]) -> (std::process::Child, String) {
    let (child, addr, _lines) = spawn_serve_logged(dir, vars);
    (child, addr)
}

/// Stop a server by its PID (SIGTERM) and wait for it, bounded.
pub fn stop_serve(mut child: std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(wait_bounded(&mut child, Duration::from_secs(35)).success());
}

#[test]
fn production_with_nothing_configured_exits_naming_every_missing_setting() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut child = rampart(dir.path(), &["serve"], &[("RAMPART_ENV", "production")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(5));
    assert!(!status.success());
    assert!(started.elapsed() < Duration::from_secs(5));
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    for name in [
        "RAMPART_SESSION_SECRET",
        "RAMPART_KEYS_DIR",
        "RAMPART_PUBLIC_URL",
        "RAMPART_TRUSTED_PROXIES",
        "RAMPART_SMTP_URL",
    ] {
        assert!(text.contains(name), "{name} not named in:\n{text}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "production created local state"
    );
}

#[test]
fn a_wildcard_cors_origin_is_refused_in_production_and_a_warning_in_development() {
    let dir = tempfile::tempdir().unwrap();
    for (env, refused) in [("production", true), ("development", false)] {
        let output = rampart(
            dir.path(),
            &["check-config"],
            &[("RAMPART_ENV", env), ("RAMPART_CORS_ORIGINS", "*")],
        )
        .output()
        .unwrap();
        assert_eq!(output.status.success(), !refused, "{env}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("RAMPART_CORS_ORIGINS"));
    }
}

#[test]
fn check_config_prints_the_configuration_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let output = rampart(
        dir.path(),
        &["check-config"],
        &[
            (
                "RAMPART_SESSION_SECRET",
                "a-very-secret-session-key-0123456789",
            ),
            (
                "DATABASE_URL",
                "postgres://app:pg-password-42@127.0.0.1:1/rampart",
            ),
            (
                "RAMPART_SMTP_URL",
                "smtp://mailer:smtp-password-42@127.0.0.1:25",
            ),
        ],
    )
    .output()
    .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("RAMPART_LISTEN"));
    assert!(stdout.contains("postgres://app:[redacted]@127.0.0.1:1/rampart"));
    for secret in ["a-very-secret", "pg-password-42", "smtp-password-42"] {
        assert!(!stdout.contains(secret));
        assert!(!String::from_utf8_lossy(&output.stderr).contains(secret));
    }
}

#[test]
fn every_subcommand_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["serve", "migrate", "check-config", "create-admin", "keys"] {
        let output = rampart(dir.path(), &[sub, "--help"], &[]).output().unwrap();
        assert!(output.status.success(), "{sub}");
        assert!(String::from_utf8_lossy(&output.stdout).contains("Usage"));
    }
}

#[test]
fn migrate_creates_the_embedded_database() {
    let dir = tempfile::tempdir().unwrap();
    let status = rampart(dir.path(), &["migrate"], &[]).status().unwrap();
    assert!(status.success());
    assert!(dir.path().join("data/rampart.db").exists());
}

/// Zero configuration: serve on SQLite in ./data, answer /health, and stop cleanly on
/// SIGTERM after finishing a request that was in flight.
#[test]
fn zero_config_serve_answers_health_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = rampart(dir.path(), &["serve"], &[("RAMPART_LISTEN", "127.0.0.1:0")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut addr = None;
    let mut lines = Vec::new();
    while addr.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no serving line; saw {lines:?}"));
        if line.contains("rampart is serving") {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            addr = Some(v["listen"].as_str().unwrap().to_owned());
        }
        lines.push(line);
    }
    let addr = addr.unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
        assert_eq!(health.status(), 200);

        // A request in flight: its head is in and the pipeline is reading its body, which
        // the `100 Continue` proves (hyper sends it when the body is first polled).
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream
            .write_all(b"POST /api/v1/admin/products HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
            .await
            .unwrap();
        let mut interim = Vec::new();
        while !interim.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
                .await
                .expect("100 Continue")
                .unwrap();
            assert_eq!(n, 1, "connection closed before 100 Continue");
            interim.push(byte[0]);
        }
        assert!(interim.starts_with(b"HTTP/1.1 100"), "{}", String::from_utf8_lossy(&interim));
        let pid = child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        // Wait until the server logs that it is draining, then finish the body.
        loop {
            let line = rx.recv_timeout(Duration::from_secs(10)).expect("shutdown line");
            if line.contains("shutting down") {
                break;
            }
        }
        stream.write_all(b"{}").await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
            .await
            .expect("in-flight request answered")
            .ok();
        // No token: what matters is that the request was answered, not cut.
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    });
    let status = wait_bounded(&mut child, Duration::from_secs(35));
    assert!(status.success(), "exit status {status:?}");
    // The reader thread ends when the child's stdout closes: drain until then.
    let mut rest = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
        rest.push(line);
    }
    assert!(
        rest.iter().any(|l| l.contains("database closed")),
        "{rest:?}"
    );
    let data = dir.path().join("data");
    for file in ["rampart.db", "session_secret"] {
        assert!(data.join(file).exists(), "{file}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("session_secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn create_admin_reads_the_password_from_stdin_and_refuses_weak_ones() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let run = |password: &str| {
        let mut child = rampart(
            dir.path(),
            &[
                "create-admin",
                "--email",
                "root@example.com",
                "--password-stdin",
            ],
            &[],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let weak = run("password");
    assert!(!weak.status.success());
    assert!(!String::from_utf8_lossy(&weak.stderr).contains("password\n"));
    let strong = run("Granite-Meadow-51-Lantern!");
    assert!(
        strong.status.success(),
        "{}",
        String::from_utf8_lossy(&strong.stderr)
    );
    assert!(String::from_utf8_lossy(&strong.stdout).contains("created verified admin"));
    let again = run("Another-Granite-77-Meadow!");
    assert!(String::from_utf8_lossy(&again.stdout).contains("promoted"));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&strong.stdout),
        String::from_utf8_lossy(&strong.stderr)
    );
    assert!(!all.contains("Granite-Meadow-51-Lantern!"));
}

#[test]
fn keys_rotate_adds_a_current_key_and_keeps_the_old_one_verifying() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("data/keys");
    assert!(
        rampart(dir.path(), &["migrate"], &[])
            .status()
            .unwrap()
            .success()
    );
    let first = rampart(dir.path(), &["keys", "rotate"], &[])
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = rampart(dir.path(), &["keys", "rotate"], &[])
        .output()
        .unwrap();
    assert!(second.status.success());
    let pems: Vec<_> = std::fs::read_dir(&keys)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "pem"))
        .collect();
    assert_eq!(pems.len(), 2, "the previous key still verifies");
    #[cfg(unix)]
    for pem in pems {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(pem.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }
}

/// A `rampart serve` process in `dir` on a free loopback port: its address, and every log
/// line up to the one saying it serves. Its stdout is drained by a thread until it exits.
fn spawn_serve_logged(
    dir: &std::path::Path,
    vars: &[(&str, &str)],
) -> (std::process::Child, String, Vec<String>) {
    let mut all = vec![("RAMPART_LISTEN", "127.0.0.1:0")];
    all.extend_from_slice(vars);
    let mut child = rampart(dir, &["serve"], &all)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rampart serve did not log its address; saw {lines:#?}");
        };
        if line.contains("rampart is serving") {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let addr = v["listen"].as_str().unwrap().to_owned();
            lines.push(line);
            return (child, addr, lines);
        }
        lines.push(line);
    }
}

#[cfg(unix)]
#[test]
fn production_with_cors_star_world_readable_data_and_group_readable_key_names_all_three() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let keys = dir.path().join("keys");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let keys_var = keys.to_str().unwrap();
    let made = rampart(
        dir.path(),
        &["keys", "rotate"],
        &[("RAMPART_KEYS_DIR", keys_var)],
    )
    .output()
    .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let key = std::fs::read_dir(&keys)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "pem"))
        .expect("a key file");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();

    let mut child = rampart(
        dir.path(),
        &["serve"],
        &[
            ("RAMPART_ENV", "production"),
            ("RAMPART_LISTEN", "127.0.0.1:0"),
            ("RAMPART_CORS_ORIGINS", "*"),
            ("RAMPART_DATA_DIR", data.to_str().unwrap()),
            ("RAMPART_KEYS_DIR", keys_var),
            // Everything else is right, so exactly the three wrong settings are named.
            (
                "RAMPART_SESSION_SECRET",
                "0123456789abcdef0123456789abcdef-prod",
            ),
            ("RAMPART_PUBLIC_URL", "https://api.example.com"),
            ("RAMPART_TRUSTED_PROXIES", "127.0.0.1/32"),
            ("RAMPART_SMTP_URL", "smtp://127.0.0.1:25"),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(10));
    assert!(!status.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let refusal = stderr
        .split_once("production refuses to start:")
        .map(|(_, list)| list.to_owned())
        .unwrap_or_else(|| panic!("no refusal in:\n{stderr}"));
    let named: Vec<&str> = refusal
        .lines()
        .filter(|l| l.trim_start().starts_with("- "))
        .collect();
    assert_eq!(named.len(), 3, "{refusal}");
    assert!(
        named
            .iter()
            .any(|l| l.contains("RAMPART_CORS_ORIGINS") && l.contains('*')),
        "{refusal}"
    );
    assert!(
        named
            .iter()
            .any(|l| l.contains("RAMPART_DATA_DIR") && l.contains("readable by others")),
        "{refusal}"
    );
    let key_name = key.file_name().unwrap().to_str().unwrap();
    assert!(
        named
            .iter()
            .any(|l| l.contains("RAMPART_KEYS_DIR") && l.contains(key_name) && l.contains("group")),
        "{refusal}"
    );
    assert!(
        !data.join("rampart.db").exists(),
        "production refused after creating state"
    );
}

#[test]
fn development_with_cors_star_starts_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr, lines) =
        spawn_serve_logged(dir.path(), &[("RAMPART_CORS_ORIGINS", "*,null")]);
    for origin in ["`*`", "`null`"] {
        assert!(
            lines.iter().any(|l| l.contains("\"WARN\"")
                && l.contains("RAMPART_CORS_ORIGINS")
                && l.contains(origin)),
            "no warning about {origin} in {lines:#?}"
        );
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let base = format!("http://{addr}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match client.get(format!("{base}/health")).send().await {
                Ok(r) if r.status() == 200 => break,
                outcome => assert!(Instant::now() < deadline, "/health: {outcome:?}"),
            }
            tokio::task::yield_now().await;
        }
        // Whatever the origin, a simple request or a preflight: no CORS grant at all, so
        // never `*` beside credentials.
        for origin in ["https://evil.example.com", "null", "*"] {
            let simple = client
                .get(format!("{base}/api/v1/products"))
                .header("Origin", origin)
                .send()
                .await
                .unwrap();
            let preflight = client
                .request(reqwest::Method::OPTIONS, format!("{base}/api/v1/products"))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "GET")
                .send()
                .await
                .unwrap();
            for response in [simple, preflight] {
                let headers = response.headers();
                assert_eq!(
                    headers.get("access-control-allow-origin"),
                    None,
                    "{origin}: {headers:?}"
                );
                assert_eq!(
                    headers.get("access-control-allow-credentials"),
                    None,
                    "{origin}: {headers:?}"
                );
            }
        }
    });
    stop_serve(child);
}
