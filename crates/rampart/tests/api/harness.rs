//! Start the real application for a test, and helpers named for intent.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use rampart::{
    app,
    clock::Clock,
    config::Config,
    domain::product::{NewProduct, Product},
    server::{self, ServeOptions},
    setup,
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

    async fn spawn_in(dir: tempfile::TempDir, vars: &[(&str, &str)], turn: Turn) -> Self {
        crate::logs::install();
        let data_dir = dir.path().join("data");
        let mut env: HashMap<String, String> = HashMap::new();
        env.insert("RAMPART_DATA_DIR".into(), data_dir.display().to_string());
        env.insert("DATABASE_URL".into(), fresh_database_url(dir.path()).await);
        for (k, v) in vars {
            env.insert((*k).into(), (*v).into());
        }
        let mut config = Config::load(&env).expect("valid test configuration").config;
        setup::prepare(&mut config).expect("prepare data dir");
        let db = Db::connect(&config.database_url, 5).await.expect("connect");
        db.migrate().await.expect("migrate");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let tls = config.tls.as_ref().map(|files| {
            server::tls_acceptor(&files.cert, &files.key).expect("test certificate loads")
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let options = ServeOptions {
            header_read_timeout: config.tunables.header_read_timeout,
            shutdown_grace: config.tunables.shutdown_grace,
            tls,
            h2c: config.tunables.h2c,
        };
        let clock = Clock::manual(rampart::store::now_ms());
        let outbox = config.mail_outbox.clone();
        let keys_dir = config.keys_dir.clone();
        let state = AppState::new(config, db.clone(), clock.clone()).expect("state");
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(server::serve(
            listener,
            app::build(state.clone()),
            options,
            async {
                let _ = rx.await;
            },
        ));
        let mut client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Ok(pem) = std::fs::read(dir.path().join("cert.pem")) {
            client =
                client.tls_certs_only([reqwest::Certificate::from_pem(&pem).expect("test cert")]);
        }
        let client = client.build().expect("client");
        Self {
            scheme,
            addr,
            client,
            db,
            state,
            clock,
            outbox,
            keys_dir,
            secrets: std::sync::Mutex::new(Vec::new()),
            _turn: turn,
            shutdown: Some(tx),
            handle: Some(handle),
            _dir: dir,
        }
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
    let expect = [
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
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
