//! API.md §9 end to end in real headless Chromium (Debian's `chromium` and
//! `chromium-driver`), driven over WebDriver by `fantoccini`: each test starts its own
//! chromedriver on a free loopback port in a temp dir and kills it by its PID. After every
//! step the browser console must hold no error and no CSP violation.
//!
//! Without the binaries these tests fail (they do not skip): `scripts/test.sh` installs
//! them.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator, wd::WebDriverCompatibleCommand};
use rampart::{domain::user::Role, store::users};
use serde_json::{Value, json};

use crate::{
    harness::TestApp,
    pages::{account, code_at},
};

/// The binaries scripts/test.sh checked, or Debian's paths.
fn binary(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

/// `POST /session/{id}/se/log {"type":"browser"}`: the console entries since the last
/// read (chromedriver's log endpoint; `goog:loggingPrefs` turns the console log on).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// A headless Chromium behind its own chromedriver.
struct Chrome {
    client: Client,
    driver: Child,
    _dir: tempfile::TempDir,
}

impl Chrome {
    async fn start() -> Self {
        let chromedriver = binary("RAMPART_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = binary("RAMPART_TEST_CHROMIUM", "/usr/bin/chromium");
        for binary in [&chromedriver, &chromium] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: install the Debian packages chromium and chromium-driver \
                 (scripts/test.sh does as root)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .arg(format!(
                "--log-path={}",
                dir.path().join("chromedriver.log").display()
            ))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = dir.path().join("profile");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-extensions".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        if is_root() {
            args.push("--no-sandbox".to_owned());
        }
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let caps = caps.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut ticks = tokio::time::interval(Duration::from_millis(100));
        let client = loop {
            ticks.tick().await;
            let attempt =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await;
            match attempt {
                Ok(client) => break client,
                Err(e) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "chromedriver did not start a session within 30 s: {e}"
                ),
            }
        };
        Self {
            client,
            driver,
            _dir: dir,
        }
    }

    /// The console entries since the last read.
    async fn console(&self) -> Vec<Value> {
        let entries = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("browser log");
        entries.as_array().cloned().unwrap_or_default()
    }

    /// The console since the last read holds no error and no CSP violation.
    async fn assert_clean_console(&self, after: &str) {
        let bad: Vec<Value> = self
            .console()
            .await
            .into_iter()
            .filter(|e| {
                let message = e["message"].as_str().unwrap_or_default();
                e["level"] == "SEVERE"
                    || message.contains("Content Security Policy")
                    || message.contains("Refused to")
            })
            .collect();
        assert!(bad.is_empty(), "console after {after}: {bad:?}");
    }

    async fn goto(&self, app: &TestApp, path: &str) {
        self.client.goto(&app.url(path)).await.unwrap();
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Wait (at most 10 s) until the page's path and query are `path`.
    async fn wait_for_path(&self, path: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut ticks = tokio::time::interval(Duration::from_millis(50));
        loop {
            ticks.tick().await;
            let url = self.client.current_url().await.unwrap();
            let here = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            };
            if here == path {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let source = self.client.source().await.unwrap_or_default();
                let console = self.console().await;
                panic!("still on {here}, not {path}: {source}\nconsole: {console:?}");
            }
        }
    }

    async fn sign_in(&self, app: &TestApp, email: &str, password: &str) {
        self.goto(app, "/login").await;
        self.assert_clean_console("opening /login").await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("#sign-in").await;
    }

    async fn stop(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
        })
}

#[tokio::test]
async fn pages_render_without_console_errors_and_an_admin_deactivates_a_user_in_chromium() {
    let app = TestApp::spawn().await;
    let (admin_email, admin_password, _) = account(&app, Role::Admin).await;
    let (email, _, user_id) = account(&app, Role::User).await;
    let chrome = Chrome::start().await;
    // The console check sees what it must refuse: an error written to the console.
    chrome.goto(&app, "/login").await;
    chrome
        .client
        .execute("console.error('rampart console probe')", vec![])
        .await
        .unwrap();
    let probe = chrome.console().await;
    assert!(
        probe.iter().any(|e| e["level"] == "SEVERE"
            && e["message"]
                .as_str()
                .unwrap_or_default()
                .contains("rampart console probe")),
        "{probe:?}"
    );
    chrome.sign_in(&app, &admin_email, &admin_password).await;
    chrome.wait_for_path("/account").await;
    assert_eq!(chrome.text("#email").await, admin_email);
    chrome.assert_clean_console("the login").await;
    chrome.goto(&app, "/admin").await;
    chrome.assert_clean_console("opening /admin").await;
    let row =
        format!("//tr[td[@class='user-email' and text()='{email}']]//button[@value='deactivate']");
    chrome
        .client
        .find(Locator::XPath(&row))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    chrome.wait_for_path("/admin?done=changed").await;
    chrome.assert_clean_console("deactivating").await;
    let state =
        format!("//tr[td[@class='user-email' and text()='{email}']]/td[@class='user-state']");
    let state = chrome.client.find(Locator::XPath(&state)).await.unwrap();
    assert_eq!(state.text().await.unwrap(), "deactivated");
    assert!(!users::get(&app.db, user_id).await.unwrap().unwrap().active);
    chrome.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn totp_enrolment_then_logout_and_a_login_with_a_code_in_chromium() {
    let app = TestApp::spawn().await;
    let (email, password, user_id) = account(&app, Role::User).await;
    let chrome = Chrome::start().await;
    chrome.sign_in(&app, &email, &password).await;
    chrome.wait_for_path("/account").await;
    chrome.click("#setup-mfa").await;
    chrome.wait_for_path("/account/mfa/setup").await;
    chrome.assert_clean_console("opening the enrolment").await;
    // The QR code is inline SVG markup, drawn without any request or script.
    let qr = chrome.client.find(Locator::Css("#qr svg")).await.unwrap();
    assert!(qr.is_displayed().await.unwrap());
    let secret = chrome.text("#totp-secret").await;
    app.secret(&secret);
    chrome
        .fill("#code", &code_at(&secret, app.clock.now_secs()))
        .await;
    chrome.click("#confirm-mfa").await;
    chrome.wait_for_path("/account/mfa/confirm").await;
    let codes = chrome
        .client
        .find_all(Locator::Css("#recovery-codes li"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    chrome.assert_clean_console("confirming").await;
    assert!(
        users::get(&app.db, user_id)
            .await
            .unwrap()
            .unwrap()
            .mfa_enabled
    );
    chrome.click("#logout").await;
    chrome.wait_for_path("/login").await;
    chrome.sign_in(&app, &email, &password).await;
    chrome.wait_for_path("/login").await;
    chrome
        .client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css("#verify"))
        .await
        .unwrap();
    app.clock.advance(Duration::from_secs(30));
    chrome
        .fill("#code", &code_at(&secret, app.clock.now_secs()))
        .await;
    chrome.click("#verify").await;
    chrome.wait_for_path("/account").await;
    assert!(chrome.text("#mfa-state").await.starts_with("On"));
    chrome.assert_clean_console("the login with a code").await;
    chrome.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn revoking_a_session_from_the_account_page_in_chromium() {
    let app = TestApp::spawn().await;
    let (email, password, _) = account(&app, Role::User).await;
    let api = app.login(&email, &password).await;
    let chrome = Chrome::start().await;
    chrome.sign_in(&app, &email, &password).await;
    chrome.wait_for_path("/account").await;
    let rows = chrome
        .client
        .find_all(Locator::Css("tr.session"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    // The API session: the row not marked as this browser.
    chrome
        .client
        .find(Locator::XPath(
            "//tr[@class='session'][not(.//strong)]//button",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    chrome.wait_for_path("/account?done=revoked").await;
    chrome.assert_clean_console("revoking").await;
    let rows = chrome
        .client
        .find_all(Locator::Css("tr.session"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        app.get_bearer("/api/v1/me", &api.access).await.status(),
        401
    );
    chrome.stop().await;
    app.stop().await;
}
