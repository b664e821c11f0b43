//! API.md §9 at the HTTP level: the session cookie, fixation, CSRF, expiry, the admin
//! page's role check, the per-response nonce, MFA through the pages.

use std::time::Duration;

use rampart::{
    domain::{
        paging::{Limit, Page as PageNumber},
        password::Password,
        user::Role,
    },
    store::{events, users},
};
use regex::Regex;
use reqwest::{StatusCode, redirect::Policy};
use totp_rs::{Algorithm, Builder, Secret};
use uuid::Uuid;

use crate::{
    accounts::{fresh_email, strong_password},
    harness::{TestApp, assert_security_headers_but_csp, eventually, problem},
};

/// The exact `Set-Cookie` of a session (API.md §9).
const COOKIE_SHAPE: &str =
    r"^__Host-rampart_session=([A-Za-z0-9_-]{43}); HttpOnly; Secure; SameSite=Lax; Path=/$";

/// A browser without JavaScript: one cookie, no redirects followed.
pub struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    pub cookie: Option<String>,
}

/// A page as the browser got it.
pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub html: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }

    pub fn csrf(&self) -> String {
        capture(&self.html, r#"name="csrf_token" value="([^"]+)""#).expect("a CSRF field")
    }

    pub fn set_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|v| v.starts_with("__Host-rampart_session="))
    }

    pub fn nonce(&self) -> String {
        let csp = self.headers["content-security-policy"].to_str().unwrap();
        capture(csp, r"style-src 'nonce-([A-Za-z0-9_-]+)'").expect("a nonce in the CSP")
    }
}

pub fn capture(text: &str, pattern: &str) -> Option<String> {
    Regex::new(pattern)
        .unwrap()
        .captures(text)
        .map(|c| c[1].to_owned())
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .unwrap();
        Self {
            app,
            client,
            cookie: None,
        }
    }

    async fn page(&mut self, response: reqwest::Response) -> Page {
        let page = Page {
            status: response.status(),
            headers: response.headers().clone(),
            html: response.text().await.unwrap(),
        };
        if let Some(set) = page.set_cookie() {
            let value = set
                .strip_prefix("__Host-rampart_session=")
                .and_then(|v| v.split(';').next())
                .unwrap()
                .to_owned();
            self.cookie = if value.is_empty() {
                None
            } else {
                self.app.secret(&value);
                Some(value)
            };
        }
        if page.html.contains("csrf_token") {
            self.app.secret(&page.csrf());
        }
        page
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => request.header("cookie", format!("__Host-rampart_session={c}")),
            None => request,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.with_cookie(self.client.get(self.app.url(path)));
        let response = request.send().await.unwrap();
        self.page(response).await
    }

    /// A form POST with `fields` and extra `headers`.
    pub async fn post_with(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let response = self.post_raw(path, fields, headers).await;
        self.page(response).await
    }

    /// A form POST, its response as it came.
    pub async fn post_raw(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.with_cookie(self.client.post(self.app.url(path)));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post_with(path, fields, &[]).await
    }

    /// Open the login page and sign in; the page the login led to.
    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200);
        let csrf = form.csrf();
        self.post(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }
}

/// A verified account made in the store; (email, password, id).
pub async fn account(app: &TestApp, role: Role) -> (String, String, Uuid) {
    let email = fresh_email();
    let password = strong_password();
    app.secret(&password);
    let hash = app
        .state
        .hasher
        .hash(&Password::unchecked(password.clone()))
        .await
        .unwrap();
    let user = users::create(
        &app.db,
        &users::NewUser {
            email: &email,
            name: "Page User",
            password_hash: &hash,
            role,
            email_verified: true,
        },
        app.clock.now_ms(),
    )
    .await
    .unwrap()
    .unwrap();
    (email, password, user.id)
}

/// The stored events of `kind`, once there are at least `at_least`.
async fn events_of(app: &TestApp, kind: &str, at_least: usize) -> Vec<events::EventRow> {
    eventually(&format!("{at_least} {kind} events"), || async {
        let (rows, _) = events::list(
            &app.db,
            Some(kind),
            None,
            PageNumber::default(),
            Limit::parse("100").unwrap(),
        )
        .await
        .unwrap();
        (rows.len() >= at_least).then_some(rows)
    })
    .await
}

pub fn code_at(secret: &str, unix: i64) -> String {
    let totp = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(Secret::try_from_base32(secret.trim_end_matches('=')).unwrap())
        .build()
        .unwrap();
    totp.generate(u64::try_from(unix).unwrap()).to_string()
}

#[tokio::test]
async fn the_login_page_opens_a_session_whose_cookie_has_exactly_the_host_attributes() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    let page = browser.get("/login").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let cookie = page.set_cookie().expect("a session cookie");
    assert!(
        Regex::new(COOKIE_SHAPE).unwrap().is_match(&cookie),
        "{cookie}"
    );
    assert!(!cookie.to_ascii_lowercase().contains("domain"));
    assert_security_headers_but_csp(&page.headers);
    assert_eq!(page.headers["cache-control"], "no-store");
    // The same session the next time: no new cookie.
    let again = browser.get("/login").await;
    assert!(again.set_cookie().is_none());
    assert_eq!(again.csrf(), page.csrf());
    app.stop().await;
}

#[tokio::test]
async fn every_page_has_a_fresh_nonce_in_its_policy_and_no_inline_script() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    let one = browser.get("/login").await;
    let two = browser.get("/login").await;
    let (n1, n2) = (one.nonce(), two.nonce());
    assert_ne!(n1, n2);
    assert!(n1.len() >= 22);
    let handler = Regex::new(r"\son[a-z]+=").unwrap();
    for page in [&one, &two] {
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none';"), "{csp}");
        for directive in [
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{csp}");
        }
        assert!(!csp.contains("unsafe-inline"));
        assert!(
            page.html
                .contains(&format!("<style nonce=\"{}\">", page.nonce()))
        );
        assert!(!page.html.contains("<script"));
        assert!(!handler.is_match(&page.html));
    }
    app.stop().await;
}

#[tokio::test]
async fn a_login_replaces_the_session_id_and_the_pre_login_id_is_dead() {
    let app = TestApp::spawn().await;
    let (email, password, _) = account(&app, Role::User).await;
    let mut browser = Browser::new(&app);
    let form = browser.get("/login").await;
    let pre_login = browser.cookie.clone().unwrap();
    let stale_csrf = form.csrf();
    let done = browser
        .post(
            "/login",
            &[
                ("csrf_token", &stale_csrf),
                ("email", &email),
                ("password", &password),
            ],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), "/account");
    let cookie = done.set_cookie().expect("a new session cookie");
    assert!(
        Regex::new(COOKIE_SHAPE).unwrap().is_match(&cookie),
        "{cookie}"
    );
    let signed_in = browser.cookie.clone().unwrap();
    assert_ne!(signed_in, pre_login);
    let account = browser.get("/account").await;
    assert_eq!(account.status, 200);
    assert!(account.html.contains(&email));
    // The fixed (pre-login) id: no account, and its token no longer passes.
    let mut attacker = Browser::new(&app);
    attacker.cookie = Some(pre_login);
    let page = attacker.get("/account").await;
    assert_eq!(
        (page.status, page.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
    let refused = attacker
        .post(
            "/account/profile",
            &[("csrf_token", &stale_csrf), ("name", "Mallory")],
        )
        .await;
    assert_eq!(refused.status, 403);
    app.stop().await;
}

#[tokio::test]
async fn the_same_wrong_answer_for_an_unknown_address_and_a_wrong_password() {
    let app = TestApp::spawn().await;
    let (email, _, _) = account(&app, Role::User).await;
    let mut browser = Browser::new(&app);
    let wrong = browser.sign_in(&email, "Wrong-Password-123456").await;
    let unknown = browser
        .sign_in(&fresh_email(), "Wrong-Password-123456")
        .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    let message = |p: &Page| capture(&p.html, r#"id="error">([^<]+)<"#).unwrap();
    assert_eq!(message(&wrong), message(&unknown));
    assert!(wrong.set_cookie().is_none() && unknown.set_cookie().is_none());
    // The API's limits apply: the login route's RateLimit fields are on the page.
    assert!(wrong.headers.contains_key("ratelimit-policy"));
    events_of(&app, "login_failed", 2).await;
    app.stop().await;
}

#[tokio::test]
async fn a_form_post_without_a_token_with_a_forged_one_or_another_sessions_is_refused() {
    let app = TestApp::spawn().await;
    let (email, password, _) = account(&app, Role::User).await;
    let mut victim = Browser::new(&app);
    victim.sign_in(&email, &password).await;
    let mut other = Browser::new(&app);
    let others_token = other.get("/login").await.csrf();
    let forged = "A".repeat(43);
    for token in [None, Some(forged.as_str()), Some(others_token.as_str())] {
        let mut fields = vec![("name", "Changed By Attacker")];
        if let Some(t) = token {
            fields.push(("csrf_token", t));
        }
        let response = victim.post_raw("/account/profile", &fields, &[]).await;
        assert_eq!(response.status(), 403, "{token:?}");
        assert!(response.headers().get("set-cookie").is_none());
        assert_eq!(problem(response).await["code"], "csrf_failed");
    }
    // A browser asking for HTML gets a page that names the code.
    let html = victim
        .post_with(
            "/account/profile",
            &[("name", "x")],
            &[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")],
        )
        .await;
    assert_eq!(html.status, 403);
    assert_eq!(html.headers["content-type"], "text/html; charset=utf-8");
    assert!(html.html.contains("csrf_failed"));
    assert!(html.set_cookie().is_none());
    let refused = events_of(&app, "csrf_failed", 4).await;
    assert!(refused.iter().any(|e| e.details.contains("wrong token")));
    assert!(refused.iter().any(|e| e.details.contains("missing token")));
    // Nothing changed, and the victim's session still works.
    let account = victim.get("/account").await;
    assert_eq!(account.status, 200);
    assert!(!account.html.contains("Changed By Attacker"));
    app.stop().await;
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused_even_with_the_right_token() {
    let app = TestApp::spawn().await;
    let (email, password, _) = account(&app, Role::User).await;
    let mut browser = Browser::new(&app);
    let csrf = browser.get("/login").await.csrf();
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("email", &email),
        ("password", &password),
    ];
    for headers in [
        &[("sec-fetch-site", "cross-site")][..],
        &[("origin", "https://evil.example")][..],
        &[("origin", "null")][..],
    ] {
        let refused = browser.post_with("/login", &fields, headers).await;
        assert_eq!(refused.status, 403, "{headers:?}");
        assert!(refused.set_cookie().is_none());
        assert!(refused.html.contains("csrf_failed"));
    }
    events_of(&app, "csrf_failed", 3).await;
    // The same form from this origin passes.
    let origin = app.url("");
    let origin = origin.trim_end_matches('/');
    let ok = browser
        .post_with(
            "/login",
            &fields,
            &[("sec-fetch-site", "same-origin"), ("origin", origin)],
        )
        .await;
    assert_eq!(ok.status, 303);
    app.stop().await;
}

#[tokio::test]
async fn an_idle_or_too_old_session_sends_the_browser_back_to_login() {
    let app = TestApp::spawn_with(&[
        ("RAMPART_PAGE_SESSION_IDLE", "30m"),
        ("RAMPART_PAGE_SESSION_MAX_AGE", "1h"),
    ])
    .await;
    let (email, password, _) = account(&app, Role::User).await;
    let mut idle = Browser::new(&app);
    idle.sign_in(&email, &password).await;
    let mut busy = Browser::new(&app);
    busy.sign_in(&email, &password).await;
    for _ in 0..2 {
        app.clock.advance(Duration::from_secs(25 * 60));
        assert_eq!(busy.get("/account").await.status, 200);
    }
    // 50 minutes without a request: idle past 30 minutes.
    let page = idle.get("/account").await;
    assert_eq!(
        (page.status, page.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
    // 75 minutes after its login, however busy: past the absolute hour.
    app.clock.advance(Duration::from_secs(25 * 60));
    let page = busy.get("/account").await;
    assert_eq!(
        (page.status, page.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_non_admin_on_the_admin_page_gets_403_and_a_forbidden_event() {
    let app = TestApp::spawn().await;
    let (email, password, user_id) = account(&app, Role::User).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&email, &password).await;
    let page = browser.get("/admin").await;
    assert_eq!(page.status, 403);
    assert!(page.html.contains("forbidden"));
    let forbidden = events_of(&app, "forbidden", 1).await;
    assert_eq!(forbidden[0].user_id, Some(user_id));
    // Nor can it post to the admin forms, with a valid token.
    let csrf = browser.get("/account").await.csrf();
    let post = browser
        .post(
            &format!("/admin/users/{user_id}"),
            &[("csrf_token", &csrf), ("action", "promote")],
        )
        .await;
    assert_eq!(post.status, 403);
    events_of(&app, "forbidden", 2).await;
    let stored = users::get(&app.db, user_id).await.unwrap().unwrap();
    assert_eq!(stored.role, Role::User);
    // Signed out, the admin page sends to the login page.
    let page = Browser::new(&app).get("/admin").await;
    assert_eq!(
        (page.status, page.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
    app.stop().await;
}

#[tokio::test]
async fn an_admin_deactivates_an_account_and_its_page_session_ends_at_once() {
    let app = TestApp::spawn().await;
    let (admin_email, admin_password, _) = account(&app, Role::Admin).await;
    let (email, password, user_id) = account(&app, Role::User).await;
    let mut user = Browser::new(&app);
    user.sign_in(&email, &password).await;
    let mut admin = Browser::new(&app);
    admin.sign_in(&admin_email, &admin_password).await;
    let page = admin
        .get(&format!("/admin?q={}", email.split('@').next().unwrap()))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains(&email));
    let done = admin
        .post(
            &format!("/admin/users/{user_id}"),
            &[("csrf_token", &page.csrf()), ("action", "deactivate")],
        )
        .await;
    assert_eq!(
        (done.status, done.location()),
        (StatusCode::SEE_OTHER, "/admin?done=changed")
    );
    let page = user.get("/account").await;
    assert_eq!(
        (page.status, page.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
    events_of(&app, "user_deactivated", 1).await;
    // The event log, filtered by type, shows it.
    let log = admin.get("/admin?type=user_deactivated").await;
    assert!(log.html.contains("user_deactivated"));
    app.stop().await;
}

#[tokio::test]
async fn a_role_change_gives_the_promoted_accounts_session_a_new_id() {
    let app = TestApp::spawn().await;
    let (email, password, user_id) = account(&app, Role::User).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&email, &password).await;
    let before = browser.cookie.clone().unwrap();
    users::update_admin(
        &app.db,
        user_id,
        Some(Role::Admin),
        None,
        app.clock.now_ms(),
    )
    .await
    .unwrap();
    let page = browser.get("/admin").await;
    assert_eq!(page.status, 200);
    assert!(page.set_cookie().is_some());
    assert_ne!(browser.cookie.clone().unwrap(), before);
    let mut old = Browser::new(&app);
    old.cookie = Some(before);
    assert_eq!(old.get("/account").await.status, 303);
    app.stop().await;
}

#[tokio::test]
async fn totp_enrolment_then_a_login_with_a_code_through_the_pages() {
    let app = TestApp::spawn().await;
    let (email, password, user_id) = account(&app, Role::User).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&email, &password).await;
    let csrf = browser.get("/account").await.csrf();
    let setup = browser
        .post("/account/mfa/setup", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(setup.status, 200);
    assert!(setup.html.contains("<svg"));
    let secret = capture(&setup.html, r#"id="totp-secret">([A-Z2-7=]+)<"#).unwrap();
    app.secret(&secret);
    let wrong = browser
        .post(
            "/account/mfa/confirm",
            &[("csrf_token", &setup.csrf()), ("code", "000000")],
        )
        .await;
    assert_eq!(wrong.status, 400);
    let code = code_at(&secret, app.clock.now_secs());
    let codes = browser
        .post(
            "/account/mfa/confirm",
            &[("csrf_token", &wrong.csrf()), ("code", &code)],
        )
        .await;
    assert_eq!(codes.status, 200);
    assert_eq!(codes.html.matches("<li><code>").count(), 10);
    assert!(
        codes.set_cookie().is_some(),
        "a privilege change rotates the id"
    );
    assert!(
        users::get(&app.db, user_id)
            .await
            .unwrap()
            .unwrap()
            .mfa_enabled
    );
    let logout = browser
        .post("/logout", &[("csrf_token", &codes.csrf())])
        .await;
    assert_eq!(
        (logout.status, logout.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
    assert!(logout.set_cookie().unwrap().contains("Max-Age=0"));
    // The password now only leads to the code step.
    let step = browser.sign_in(&email, &password).await;
    assert_eq!(step.status, 200);
    assert!(step.html.contains("name=\"mfa_token\""));
    let mfa_token = capture(&step.html, r#"name="mfa_token" value="([^"]+)""#).unwrap();
    app.secret(&mfa_token);
    assert_eq!(browser.get("/account").await.status, 303);
    let bad = browser
        .post(
            "/login/mfa",
            &[
                ("csrf_token", &step.csrf()),
                ("mfa_token", &mfa_token),
                ("code", "123456"),
            ],
        )
        .await;
    assert_eq!(bad.status, 401);
    app.clock.advance(Duration::from_secs(30));
    let code = code_at(&secret, app.clock.now_secs());
    // The step-up token is bound to this browser's session: another one cannot use it.
    let mut thief = Browser::new(&app);
    let thief_csrf = thief.get("/login").await.csrf();
    let stolen = thief
        .post(
            "/login/mfa",
            &[
                ("csrf_token", &thief_csrf),
                ("mfa_token", &mfa_token),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(stolen.status, 401);
    let done = browser
        .post(
            "/login/mfa",
            &[
                ("csrf_token", &bad.csrf()),
                ("mfa_token", &mfa_token),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(
        (done.status, done.location()),
        (StatusCode::SEE_OTHER, "/account")
    );
    assert_eq!(browser.get("/account").await.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn the_account_page_lists_api_and_browser_sessions_and_revokes_them() {
    let app = TestApp::spawn().await;
    let (email, password, _) = account(&app, Role::User).await;
    let api = app.login(&email, &password).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&email, &password).await;
    let page = browser.get("/account").await;
    assert_eq!(page.html.matches("class=\"session\"").count(), 2);
    assert!(page.html.contains("(API)") && page.html.contains("(browser)"));
    let me = app.get_bearer("/api/v1/me/sessions", &api.access).await;
    let listed: serde_json::Value = me.json().await.unwrap();
    let api_id = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoked = browser
        .post(
            "/account/sessions/revoke",
            &[("csrf_token", &page.csrf()), ("session_id", &api_id)],
        )
        .await;
    assert_eq!(revoked.status, 303);
    assert_eq!(
        app.get_bearer("/api/v1/me", &api.access).await.status(),
        401
    );
    events_of(&app, "session_revoked", 1).await;
    assert_eq!(browser.get("/account").await.status, 200);
    app.stop().await;
}

#[tokio::test]
async fn form_bodies_are_taken_by_the_page_routes_only() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=a%40example.com&password=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let response = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let big = format!("csrf_token=x&name={}", "a".repeat(11 * 1024));
    let response = app
        .client
        .post(app.url("/account/profile"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    app.stop().await;
}

const SHARED_SECRET: &str = "pages-test-secret-0123456789abcdef";

/// The cached session copies in `redis`: (key, value).
async fn cached_sessions(redis: &crate::redis::RedisServer) -> Vec<(String, String)> {
    let client = ::redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("rampart:page-session:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut copies = Vec::new();
    for key in keys {
        let value: Option<String> = ::redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if let Some(value) = value {
            copies.push((key, value));
        }
    }
    copies
}

#[tokio::test]
async fn two_instances_sharing_redis_see_the_same_browser_session() {
    let redis = crate::redis::RedisServer::start();
    let url = redis.url();
    let a = TestApp::spawn_with(&[
        ("REDIS_URL", url.as_str()),
        ("RAMPART_SESSION_SECRET", SHARED_SECRET),
    ])
    .await;
    let database = a.state.config.database_url.expose().to_owned();
    let b = TestApp::spawn_with(&[
        ("REDIS_URL", url.as_str()),
        ("RAMPART_SESSION_SECRET", SHARED_SECRET),
        ("DATABASE_URL", database.as_str()),
    ])
    .await;
    let (email, password, _) = account(&a, Role::User).await;
    let mut on_a = Browser::new(&a);
    assert_eq!(on_a.sign_in(&email, &password).await.status, 303);
    // The session is in the shared cache, under its HMAC, never under the cookie's id.
    let copies = cached_sessions(&redis).await;
    assert!(!copies.is_empty());
    let cookie = on_a.cookie.clone().unwrap();
    assert!(
        copies
            .iter()
            .all(|(k, v)| !k.contains(&cookie) && !v.contains(&cookie))
    );
    let mut on_b = Browser::new(&b);
    on_b.cookie = Some(cookie);
    let page = on_b.get("/account").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains(&email));
    // Logging out on B ends it on A too.
    let out = on_b.post("/logout", &[("csrf_token", &page.csrf())]).await;
    assert_eq!(out.status, 303);
    assert_eq!(on_a.get("/account").await.status, 303);
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn with_redis_stopped_no_request_is_answered_as_signed_in_from_a_stale_or_forged_session() {
    let mut redis = crate::redis::RedisServer::start();
    let url = redis.url();
    let app = TestApp::spawn_with(&[
        ("REDIS_URL", url.as_str()),
        ("RAMPART_SESSION_SECRET", SHARED_SECRET),
    ])
    .await;
    let (email, password, _) = account(&app, Role::User).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&email, &password).await;
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200);
    let copies = cached_sessions(&redis).await;
    assert_eq!(copies.len(), 1);
    redis.stop();
    // Redis down: the database answers, no 503; logout still ends the session.
    assert_eq!(browser.get("/account").await.status, 200);
    let stale_cookie = browser.cookie.clone().unwrap();
    let out = browser
        .post("/logout", &[("csrf_token", &page.csrf())])
        .await;
    assert_eq!(out.status, 303);
    let login = Browser::new(&app).get("/login").await;
    assert_eq!(login.status, 200);
    // Redis comes back holding the copy the logout could not delete.
    redis.restart();
    let client = ::redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (key, value) = &copies[0];
    let _: () = ::redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query_async(&mut conn)
        .await
        .unwrap();
    app.clock.advance(Duration::from_secs(2));
    let mut stale = Browser::new(&app);
    stale.cookie = Some(stale_cookie);
    let page = stale.get("/account").await;
    assert_eq!(
        (page.status, page.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
    // A forged id is nobody, with Redis up or down.
    let mut forged = Browser::new(&app);
    forged.cookie = Some("A".repeat(43));
    assert_eq!(forged.get("/account").await.status, 303);
    redis.stop();
    assert_eq!(forged.get("/account").await.status, 303);
    app.stop().await;
}

#[tokio::test]
async fn a_cached_session_whose_family_was_revoked_elsewhere_is_not_signed_in() {
    let redis = crate::redis::RedisServer::start();
    let url = redis.url();
    let app = TestApp::spawn_with(&[("REDIS_URL", url.as_str())]).await;
    let (email, password, _) = account(&app, Role::User).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&email, &password).await;
    assert_eq!(browser.get("/account").await.status, 200);
    assert_eq!(cached_sessions(&redis).await.len(), 1);
    // logout-all through the API revokes every family in the database only.
    let api = app.login(&email, &password).await;
    let response = app
        .post_bearer("/api/v1/auth/logout-all", &api.access, None)
        .await;
    assert_eq!(response.status(), 204);
    let page = browser.get("/account").await;
    assert_eq!(
        (page.status, page.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_short_session_secret_in_development_still_keys_working_sessions() {
    let app = TestApp::spawn_with(&[("RAMPART_SESSION_SECRET", "sixteen-bytes-ok")]).await;
    let (email, password, _) = account(&app, Role::User).await;
    let mut browser = Browser::new(&app);
    let done = browser.sign_in(&email, &password).await;
    assert_eq!(
        (done.status, done.location()),
        (StatusCode::SEE_OTHER, "/account")
    );
    assert_eq!(browser.get("/account").await.status, 200);
    app.stop().await;
}
