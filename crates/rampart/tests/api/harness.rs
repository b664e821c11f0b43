//! Start the real application for a test, through the same assembly as `rampart serve`,
//! and helpers named for intent.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use rampart::{
    application::Application,
    clock::Clock,
    config::Config,
    domain::product::{NewProduct, Product},
    state::AppState,
    store::{self, Db},
};
use sqlx::{AnyConnection, Connection as _, Executor as _};
use tokio::{sync::oneshot, task::JoinHandle};

/// Apps share the machine; a timing test takes it alone (a fair lock: once it waits, new
/// apps queue behind it).
static TURNS: std::sync::LazyLock<Arc<tokio::sync::RwLock<()>>> =
    std::sync::LazyLock::new(|| Arc::new(tokio::sync::RwLock::new(())));

#[allow(dead_code)]
enum Turn {
    Shared(tokio::sync::OwnedRwLockReadGuard<()>),
    Exclusive(tokio::sync::OwnedRwLockWriteGuard<()>),
}

/// A running app.
pub struct TestApp {
    scheme: &'static str,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub db: Db,
    pub state: AppState,
    pub clock: Clock,
    pub outbox: std::path::PathBuf,
    pub keys_dir: std::path::PathBuf,
    /// Held for the app's life: shared by ordinary tests, exclusive for timing tests.
    _turn: Turn,
    /// Every secret a test handled, checked against the captured logs at `stop()`.
    secrets: std::sync::Mutex<Vec<String>>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// The database URL for a fresh test database: a new PostgreSQL database when
/// `RAMPART_TEST_DATABASE` is set, otherwise a SQLite file in `dir`.
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    match std::env::var("RAMPART_TEST_DATABASE") {
        Ok(admin) if admin.starts_with("postgres") => {
            let name = format!("rampart_test_{}", uuid::Uuid::new_v4().simple());
            sqlx::any::install_default_drivers();
            let mut conn = AnyConnection::connect(&admin)
                .await
                .expect("connect to test server");
            conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .expect("create test database");
            conn.close().await.ok();
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}/rampart.db", dir.join("data").display()),
    }
}

impl TestApp {
    /// The app with its defaults.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// The app serving HTTPS with a fresh self-signed certificate for `localhost`.
    pub async fn spawn_tls() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("self-signed");
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).expect("write cert");
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("write key");
        let cert_path = dir.path().join("cert.pem").display().to_string();
        let key_path = dir.path().join("key.pem").display().to_string();
        let turn = Turn::Shared(TURNS.clone().read_owned().await);
        Self::spawn_in(
            dir,
            &[
                ("RAMPART_TLS_CERT", &cert_path),
                ("RAMPART_TLS_KEY", &key_path),
            ],
            turn,
        )
        .await
    }

    /// The app with extra configuration variables.
    pub async fn spawn_with(vars: &[(&str, &str)]) -> Self {
        let turn = Turn::Shared(TURNS.clone().read_owned().await);
        Self::spawn_in(tempfile::tempdir().expect("tempdir"), vars, turn).await
    }

    /// The app, with no other app of this binary running meanwhile: for tests that compare
    /// timings, which the load of parallel tests would blur.
    pub async fn spawn_alone_with(vars: &[(&str, &str)]) -> Self {
        let turn = Turn::Exclusive(TURNS.clone().write_owned().await);
        Self::spawn_in(tempfile::tempdir().expect("tempdir"), vars, turn).await
    }

    /// The configuration the app gets: a data dir in `dir`, a fresh database, a free
    /// loopback port, then `vars`.
    async fn environment(dir: &std::path::Path, vars: &[(&str, &str)]) -> HashMap<String, String> {
        let mut env: HashMap<String, String> = HashMap::new();
        env.insert(
            "RAMPART_DATA_DIR".into(),
            dir.join("data").display().to_string(),
        );
        env.insert("DATABASE_URL".into(), fresh_database_url(dir).await);
        env.insert("RAMPART_LISTEN".into(), "127.0.0.1:0".into());
        for (k, v) in vars {
            env.insert((*k).into(), (*v).into());
        }
        env
    }

    /// Build the app through the same [`Application::build`] as `rampart serve`
    /// (production checks, data dir, pool size, TLS, listener, state), on a manual clock
    /// that starts at the current time; the error when it refuses to start.
    pub async fn try_spawn_with(vars: &[(&str, &str)]) -> anyhow::Result<Self> {
        let turn = Turn::Shared(TURNS.clone().read_owned().await);
        Self::try_spawn_in(tempfile::tempdir().expect("tempdir"), vars, turn, None).await
    }

    /// The app with its defaults, re-reading its signing keys every `every` instead of once
    /// a minute.
    pub async fn spawn_reloading_keys_every(every: std::time::Duration) -> Self {
        let turn = Turn::Shared(TURNS.clone().read_owned().await);
        Self::try_spawn_in(
            tempfile::tempdir().expect("tempdir"),
            &[],
            turn,
            Some(every),
        )
        .await
        .expect("the test app starts")
    }

    async fn spawn_in(dir: tempfile::TempDir, vars: &[(&str, &str)], turn: Turn) -> Self {
        Self::try_spawn_in(dir, vars, turn, None)
            .await
            .expect("the test app starts")
    }

    async fn try_spawn_in(
        dir: tempfile::TempDir,
        vars: &[(&str, &str)],
        turn: Turn,
        key_reload_every: Option<std::time::Duration>,
    ) -> anyhow::Result<Self> {
        crate::logs::install();
        let env = Self::environment(dir.path(), vars).await;
        let loaded = Config::load(&env)?;
        let clock = Clock::manual(Clock::system().now_ms());
        let mut application = Application::build(loaded, clock.clone()).await?;
        if let Some(every) = key_reload_every {
            application = application.key_reload_every(every);
        }
        let addr = application.local_addr();
        let scheme = if application.is_tls() {
            "https"
        } else {
            "http"
        };
        let state = application.state().clone();
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(application.run(async {
            let _ = rx.await;
        }));
        let mut client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Ok(pem) = std::fs::read(dir.path().join("cert.pem")) {
            client =
                client.tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("test cert")]);
        }
        let client = client.build().expect("client");
        Ok(Self {
            scheme,
            addr,
            client,
            db: state.db.clone(),
            outbox: state.config.mail_outbox.clone(),
            keys_dir: state.config.keys_dir.clone(),
            state,
            clock,
            secrets: std::sync::Mutex::new(Vec::new()),
            _turn: turn,
            shutdown: Some(tx),
            handle: Some(handle),
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:port{path}`.
    pub fn url(&self, path: &str) -> String {
        match self.scheme {
            "https" => format!("https://localhost:{}{path}", self.addr.port()),
            _ => format!("http://{}{path}", self.addr),
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Insert a product directly (stock 10), without going through the admin API.
    pub async fn product(&self, name: &str, price_cents: i64) -> Product {
        store::products::create(
            &self.db,
            &NewProduct {
                name: name.to_owned(),
                description: format!("About {name}"),
                price_cents,
                currency: "EUR".to_owned(),
                stock: 10,
            },
            self.clock.now_ms(),
        )
        .await
        .expect("insert product")
    }

    /// Remember a secret (password, token, cookie, TOTP secret, recovery code) that must
    /// never appear in a log line.
    pub fn secret(&self, value: &str) {
        self.secrets.lock().unwrap().push(value.to_owned());
    }

    /// Stop the server and wait for it to drain; then no secret this test handled may be in
    /// any log line captured so far (from every test of the binary).
    pub async fn stop(mut self) {
        let logs = crate::logs::captured();
        for secret in self.secrets.lock().unwrap().iter() {
            assert!(
                !logs.contains(secret.as_str()),
                "a secret appeared in the logs"
            );
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.expect("server task").expect("server result");
        }
    }
}

/// Poll `probe` until it answers `Some`, for at most 10 s: for effects that happen off the
/// response path (mail, security events). It returns as soon as the condition holds.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut ticks = tokio::time::interval(std::time::Duration::from_millis(10));
    loop {
        ticks.tick().await;
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within 10 s"
        );
    }
}

/// The JSON body of a problem response, after checking its media type.
pub async fn problem(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "status {}",
        response.status()
    );
    response.json().await.expect("problem body is JSON")
}

/// The headers every response must carry (API.md §2), HSTS aside.
pub fn assert_security_headers(headers: &reqwest::header::HeaderMap) {
    assert_eq!(
        headers
            .get("content-security-policy")
            .map(|v| v.to_str().unwrap()),
        Some("default-src 'none'; frame-ancestors 'none'"),
        "header content-security-policy"
    );
    assert_security_headers_but_csp(headers);
}

/// [`assert_security_headers`] without the CSP, for a page, whose policy is its own.
pub fn assert_security_headers_but_csp(headers: &reqwest::header::HeaderMap) {
    let expect = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("origin-agent-cluster", "?1"),
        ("x-dns-prefetch-control", "off"),
        ("x-download-options", "noopen"),
        ("x-permitted-cross-domain-policies", "none"),
        ("x-xss-protection", "0"),
        ("cache-control", "no-store"),
    ];
    for (name, value) in expect {
        assert_eq!(
            headers.get(name).map(|v| v.to_str().unwrap()),
            Some(value),
            "header {name}"
        );
    }
    let permissions = headers["permissions-policy"].to_str().unwrap();
    for feature in ["camera=()", "microphone=()", "geolocation=()"] {
        assert!(permissions.contains(feature), "{permissions}");
    }
    assert!(headers.get("x-powered-by").is_none());
    assert!(headers.get("server").is_none());
    let id = headers["x-request-id"].to_str().unwrap();
    assert!((1..=64).contains(&id.len()));
}
