//! A real deployment (issue 11; API.md §6, §8): PostgreSQL, Redis, two `rampart serve`
//! processes in production mode, and Debian's nginx in front of them as an HTTPS load
//! balancer running `deploy/nginx.conf` itself. Everything is proved through the proxy.
//!
//! Needs `RAMPART_TEST_DATABASE` (a PostgreSQL server) and `RAMPART_TEST_NGINX` (the nginx
//! binary), which scripts/test.sh's `deploy` stage sets; without them the test fails, naming
//! them. Clients connect from 127.0.0.2 and 127.0.0.3 while nginx connects to Rampart from
//! 127.0.0.1, the one trusted proxy, so "the client's address" is observable on loopback.

use std::{
    net::{IpAddr, SocketAddr, TcpListener},
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};

use crate::harness::eventually;

const BIN: &str = env!("CARGO_BIN_EXE_rampart");
/// The configuration the README documents, with its `${...}` placeholders.
const NGINX_SITE: &str = include_str!("../../../../deploy/nginx.conf");
const ADMIN_EMAIL: &str = "ops@example.com";
const ADMIN_PASSWORD: &str = "Quartz-Lantern-Harbor-73";
const ALICE: &str = "127.0.0.2";
const MALLORY: &str = "127.0.0.3";
/// Failed logins per client in this deployment.
const LOGIN_IP_LIMIT: usize = 6;

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the deployment test needs PostgreSQL (RAMPART_TEST_DATABASE) and \
             nginx (RAMPART_TEST_NGINX); run it through ./scripts/test.sh (stage `deploy`)"
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private directory (mode 0700), as production requires of data and keys.
fn private_dir(path: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    path.to_owned()
}

/// `rampart ARGS` with exactly `vars` (and PATH) in `dir`.
fn rampart(dir: &Path, args: &[&str], vars: &[(String, String)]) -> Command {
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

/// A child process stopped by its PID (SIGTERM, then SIGKILL past a bound) when dropped.
struct Process {
    name: &'static str,
    child: Option<Child>,
}

impl Process {
    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGTERM, then wait for the exit at most `bound`.
    fn terminate(&mut self, bound: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("still running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM {}", self.name);
        crate::cli::wait_bounded(&mut child, bound)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.terminate(Duration::from_secs(10));
        }
    }
}

/// A `rampart serve` process and its address.
fn serve(dir: &Path, vars: &[(String, String)]) -> (Process, SocketAddr) {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (child, addr) = crate::cli::spawn_serve(dir, &vars);
    (
        Process {
            name: "rampart serve",
            child: Some(child),
        },
        addr.parse().unwrap(),
    )
}

/// nginx running `deploy/nginx.conf` in front of `upstreams`, in its own directory.
fn start_nginx(
    binary: &str,
    dir: &Path,
    port: u16,
    upstreams: [SocketAddr; 2],
    cert: &Path,
    key: &Path,
) -> Process {
    use std::os::unix::fs::PermissionsExt as _;
    // nginx's workers may run as another user (when the test runs as root): let them in.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let access_log = dir.join("access.log");
    let site = NGINX_SITE
        .replace("${RAMPART_1}", &upstreams[0].to_string())
        .replace("${RAMPART_2}", &upstreams[1].to_string())
        .replace("${LISTEN}", &format!("127.0.0.1:{port}"))
        .replace("${SERVER_NAME}", "localhost")
        .replace("${TLS_CERT}", &cert.display().to_string())
        .replace("${TLS_KEY}", &key.display().to_string())
        .replace("${ACCESS_LOG}", &access_log.display().to_string());
    let left: Vec<&str> = site
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && line.contains("${"))
        .collect();
    assert!(
        left.is_empty(),
        "placeholders of deploy/nginx.conf left: {left:?}"
    );
    std::fs::write(dir.join("rampart.conf"), site).unwrap();
    // The main context a distribution's nginx.conf would give, with every path in `dir`;
    // temp paths only for the modules this build has.
    let build = Command::new(binary).arg("-V").output().unwrap();
    let build = String::from_utf8_lossy(&build.stderr).into_owned();
    let mut temp_paths = String::new();
    for module in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let flag = format!("--http-{}-temp-path", module.replace('_', "-"));
        if module == "client_body" || module == "proxy" || build.contains(&flag) {
            temp_paths += &format!("    {module}_temp_path {}/{module}_temp;\n", dir.display());
        }
    }
    let main = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n{temp_paths}    include {d}/rampart.conf;\n}}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let test = Command::new(binary)
        .args(["-t", "-q", "-p"])
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "nginx -t refused the configuration: {}{}",
        String::from_utf8_lossy(&test.stderr),
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    );
    let child = Command::new(binary)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
    Process {
        name: "nginx",
        child: Some(child),
    }
}

/// An HTTPS client of the proxy, connecting from `ip`.
fn client_from(ip: &str, nginx: SocketAddr, cert_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .resolve("localhost", nginx)
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A plain-HTTP client straight to an instance (bypassing the proxy), from `ip`.
fn direct_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The upstreams nginx logged for requests matching `what` from `client`.
fn upstreams_logged(access_log: &Path, client: &str, what: &str) -> Vec<String> {
    std::fs::read_to_string(access_log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.starts_with(&format!("{client} ")) && line.contains(what))
        .filter_map(|line| {
            line.split_whitespace()
                .find_map(|field| field.strip_prefix("upstream="))
                .map(str::to_owned)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behind_nginx_share_limits_and_revocations_and_survive_a_sigterm() {
    let server = required_env("RAMPART_TEST_DATABASE");
    assert!(
        server.starts_with("postgres"),
        "RAMPART_TEST_DATABASE must name a PostgreSQL server for the deployment test"
    );
    let nginx_binary = required_env("RAMPART_TEST_NGINX");
    let root = tempfile::tempdir().unwrap();
    let database_url = crate::harness::fresh_database_url(root.path()).await;
    let redis = crate::redis::RedisServer::start();

    // The proxy's certificate.
    let tls_dir = private_dir(&root.path().join("tls"));
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_pem = cert.pem().into_bytes();
    std::fs::write(tls_dir.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(tls_dir.join("key.pem"), key.serialize_pem()).unwrap();

    // Production settings every instance shares: one database, one Redis, one keys
    // directory, one session secret.
    let nginx_port = free_port();
    let keys_dir = root.path().join("keys");
    let mut shared: Vec<(String, String)> = [
        ("RAMPART_ENV", "production".to_owned()),
        ("DATABASE_URL", database_url),
        ("REDIS_URL", redis.url()),
        (
            "RAMPART_PUBLIC_URL",
            format!("https://localhost:{nginx_port}"),
        ),
        ("RAMPART_TRUSTED_PROXIES", "127.0.0.1/32".to_owned()),
        ("RAMPART_KEYS_DIR", keys_dir.display().to_string()),
        (
            "RAMPART_SESSION_SECRET",
            format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        ),
        // Never reached here: production only needs a mailer that is not the outbox.
        ("RAMPART_SMTP_URL", "smtp://127.0.0.1:1".to_owned()),
        (
            "RAMPART_RATE_LIMIT_LOGIN_IP",
            format!("{LOGIN_IP_LIMIT}/15m"),
        ),
        // The load below is one client: keep the global limit out of its way.
        ("RAMPART_RATE_LIMIT_GLOBAL", "100000/1m".to_owned()),
        ("RAMPART_SHUTDOWN_GRACE", "20s".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let ops_dir = private_dir(&root.path().join("ops"));
    shared.push((
        "RAMPART_DATA_DIR".to_owned(),
        ops_dir.join("data").display().to_string(),
    ));
    let keys = rampart(&ops_dir, &["keys", "rotate"], &shared)
        .output()
        .unwrap();
    assert!(
        keys.status.success(),
        "{}",
        String::from_utf8_lossy(&keys.stderr)
    );
    // Upgrades: migrations first, once, then the instances (which find nothing to do).
    let migrate = rampart(&ops_dir, &["migrate"], &shared).output().unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let mut create = rampart(
        &ops_dir,
        &["create-admin", "--email", ADMIN_EMAIL, "--password-stdin"],
        &shared,
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = create.stdin.take().unwrap();
        writeln!(stdin, "{ADMIN_PASSWORD}").unwrap();
    }
    let created = create.wait_with_output().unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    shared.pop();

    let instance = |name: &str| {
        let dir = private_dir(&root.path().join(name));
        let mut vars = shared.clone();
        vars.push((
            "RAMPART_DATA_DIR".to_owned(),
            private_dir(&dir.join("data")).display().to_string(),
        ));
        serve(&dir, &vars)
    };
    let (mut first, first_addr) = instance("instance-1");
    let (mut second, second_addr) = instance("instance-2");

    let nginx_dir = root.path().join("nginx");
    std::fs::create_dir(&nginx_dir).unwrap();
    let mut nginx = start_nginx(
        &nginx_binary,
        &nginx_dir,
        nginx_port,
        [first_addr, second_addr],
        &tls_dir.join("cert.pem"),
        &tls_dir.join("key.pem"),
    );
    let nginx_addr = SocketAddr::from(([127, 0, 0, 1], nginx_port));
    let access_log = nginx_dir.join("access.log");
    let url = |path: &str| format!("https://localhost:{nginx_port}{path}");
    let alice = client_from(ALICE, nginx_addr, &cert_pem);
    let mallory = client_from(MALLORY, nginx_addr, &cert_pem);
    eventually("nginx serving /health", || async {
        let response = alice.get(url("/health")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;

    // HSTS behind the proxy's HTTPS (and HTTP/2 to the proxy); none over plain HTTP, even
    // when an untrusted client claims HTTPS itself.
    let response = alice.get(url("/health")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    for addr in [first_addr, second_addr] {
        let direct = direct_from(ALICE)
            .get(format!("http://{addr}/health"))
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .unwrap();
        assert_eq!(direct.status(), 200);
        assert!(
            direct.headers().get("strict-transport-security").is_none(),
            "an untrusted peer's X-Forwarded-Proto was believed"
        );
    }

    // Client IPs: the session records the client nginx saw, not nginx, and not what the
    // client wrote into X-Forwarded-For itself.
    let login = alice
        .post(url("/api/v1/auth/login"))
        .header("x-forwarded-for", "198.51.100.9")
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let token = login.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let sessions: Value = alice
        .get(url("/api/v1/me/sessions"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["items"][0]["ip"], ALICE, "{sessions}");

    // Shared rate limits: one budget of failed logins per client across both instances
    // (each would allow LOGIN_IP_LIMIT on its own), and only for that client.
    for i in 0..LOGIN_IP_LIMIT {
        let response = mallory
            .post(url("/api/v1/auth/login"))
            .json(&json!({"email": format!("nobody{i}@example.com"), "password": "not-the-password-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "failed login {i}");
    }
    let limited = mallory
        .post(url("/api/v1/auth/login"))
        .json(&json!({"email": "nobody-last@example.com", "password": "not-the-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    let served_by = eventually("nginx logging mallory's logins", || async {
        let upstreams = upstreams_logged(&access_log, MALLORY, "POST /api/v1/auth/login");
        (upstreams.len() > LOGIN_IP_LIMIT).then_some(upstreams)
    })
    .await;
    for addr in [first_addr, second_addr] {
        assert!(
            served_by.contains(&addr.to_string()),
            "{addr} served none of the failed logins: {served_by:?}"
        );
    }
    let other_client = alice
        .post(url("/api/v1/auth/login"))
        .json(&json!({"email": "nobody@example.com", "password": "not-the-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other_client.status(),
        401,
        "another client shares mallory's budget"
    );

    // A logout on one instance is refused by every instance on the very next request.
    for addr in [first_addr, second_addr] {
        let me = direct_from(ALICE)
            .get(format!("http://{addr}/api/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 200, "{addr} before the logout");
    }
    let logout = alice
        .post(url("/api/v1/auth/logout-all"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let next = alice
        .get(url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), 401);
    for addr in [first_addr, second_addr] {
        let me = direct_from(ALICE)
            .get(format!("http://{addr}/api/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), 401, "{addr} still accepts a logged-out token");
    }

    // No 5xx while one instance is stopped with SIGTERM under load: nginx retries the
    // idempotent requests that meet the stopping instance on the other one.
    let stop_load = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for _ in 0..6 {
        let (client, stop_load, done, failures) = (
            alice.clone(),
            stop_load.clone(),
            done.clone(),
            failures.clone(),
        );
        let target = url("/api/v1/products?limit=5");
        load.push(tokio::spawn(async move {
            while !stop_load.load(Ordering::Relaxed) {
                match client.get(&target).send().await {
                    Ok(response) if response.status().is_server_error() => {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("status {}", response.status()));
                    }
                    Ok(response) => {
                        let _ = response.bytes().await;
                    }
                    Err(e) => failures.lock().unwrap().push(format!("error {e}")),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let reached = |n: usize| {
        let done = done.clone();
        move || {
            let done = done.clone();
            async move { (done.load(Ordering::Relaxed) >= n).then_some(()) }
        }
    };
    eventually("100 requests under load", reached(100)).await;
    let first_pid = first.pid();
    let stopped = tokio::task::spawn_blocking(move || {
        let status = first.terminate(Duration::from_secs(30));
        (first, status)
    })
    .await
    .unwrap();
    assert!(
        stopped.1.success(),
        "instance {first_pid} exited with {}",
        stopped.1
    );
    let after_stop = done.load(Ordering::Relaxed);
    eventually(
        "200 more requests with one instance",
        reached(after_stop + 200),
    )
    .await;
    stop_load.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
    // For the record: requests nginx had to send to a second instance ("A, B" in the log).
    let log = std::fs::read_to_string(&access_log).unwrap_or_default();
    let retried = log
        .lines()
        .filter(|line| line.contains("GET /api/v1/products") && line.contains(", "))
        .count();
    eprintln!(
        "{} requests under load, {retried} retried on the other instance by nginx",
        done.load(Ordering::Relaxed)
    );
    let upstreams = upstreams_logged(&access_log, ALICE, "GET /api/v1/products");
    assert!(
        upstreams.iter().any(|u| u == &first_addr.to_string()),
        "the stopped instance served none of the load"
    );

    // The survivor and the proxy stop cleanly too.
    let status = tokio::task::spawn_blocking(move || second.terminate(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(status.success());
    let status = tokio::task::spawn_blocking(move || nginx.terminate(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(status.success() || status.code().is_none());
    drop(redis);
}
