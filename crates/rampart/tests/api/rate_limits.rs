//! API.md §6: the global and route limits, trusted proxies, Redis shared across instances,
//! and what happens when Redis goes away.

use std::time::{Duration, Instant};

use rampart::{
    domain::paging::{Limit, Page},
    store::events,
};
use rampart_layers::rate_limit::StoreHealth;
use serde_json::json;

use crate::{
    accounts::{fresh_email, strong_password},
    harness::{TestApp, eventually, problem},
    redis::RedisServer,
};

async fn get_as(app: &TestApp, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url("/api/v1/products"));
    if let Some(xff) = forwarded_for {
        request = request.header("x-forwarded-for", xff);
    }
    request.send().await.unwrap()
}

/// A login to `email` with a fresh wrong password (remembered as a secret for the log
/// check).
async fn wrong_login(app: &TestApp, email: &str) -> reqwest::Response {
    let wrong = strong_password();
    app.secret(&wrong);
    app.post(
        "/api/v1/auth/login",
        json!({"email": email, "password": wrong}),
    )
    .await
}

/// Every `RateLimit` member of a response, joined.
fn ratelimit_fields(response: &reqwest::Response) -> String {
    let values: Vec<&str> = response
        .headers()
        .get_all("ratelimit")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    values.join(", ")
}

/// Events of `kind` stored, once there are at least `at_least`: events are recorded off
/// the response path.
async fn events_of(app: &TestApp, kind: &str, at_least: usize) -> Vec<events::EventRow> {
    eventually(&format!("{at_least} {kind} events"), || async {
        let (rows, _) = events::list(
            &app.db,
            Some(kind),
            None,
            Page::default(),
            Limit::parse("100").unwrap(),
        )
        .await
        .unwrap();
        (rows.len() >= at_least).then_some(rows)
    })
    .await
}

#[tokio::test]
async fn the_21st_request_of_a_20_per_minute_client_is_429_and_others_are_unaffected() {
    let app = TestApp::spawn_with(&[
        ("RAMPART_RATE_LIMIT_GLOBAL", "20/1m"),
        ("RAMPART_TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    for i in 0..20 {
        let response = get_as(&app, Some("198.51.100.1")).await;
        assert_eq!(response.status(), 200, "request {i}");
        assert_eq!(
            response.headers()["ratelimit-policy"],
            "\"global\";q=20;w=60"
        );
        let remaining = format!("\"global\";r={};", 19 - i);
        assert!(
            response.headers()["ratelimit"]
                .to_str()
                .unwrap()
                .starts_with(&remaining)
        );
    }
    let limited = get_as(&app, Some("198.51.100.1")).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "3");
    assert_eq!(
        limited.headers()["ratelimit-policy"],
        "\"global\";q=20;w=60"
    );
    assert_eq!(limited.headers()["ratelimit"], "\"global\";r=0;t=60");
    assert_eq!(problem(limited).await["code"], "rate_limited");
    // Another client behind the same proxy is unaffected.
    assert_eq!(get_as(&app, Some("198.51.100.2")).await.status(), 200);
    // Clients inside one IPv6 /64 share the budget of their prefix.
    for _ in 0..20 {
        get_as(&app, Some("2001:db8:1:2::1")).await;
    }
    assert_eq!(
        get_as(&app, Some("2001:db8:1:2:ffff::9")).await.status(),
        429
    );
    assert_eq!(get_as(&app, Some("2001:db8:1:3::1")).await.status(), 200);
    // Refusals are security events: one per client and minute, however many 429s.
    get_as(&app, Some("198.51.100.1")).await;
    let refused = events_of(&app, "rate_limited", 2).await;
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().any(|e| e.ip == "198.51.100.1"));
    app.stop().await;
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_does_not_change_the_key() {
    let app = TestApp::spawn_with(&[("RAMPART_RATE_LIMIT_GLOBAL", "20/1m")]).await;
    for i in 0..20 {
        let spoof = format!("203.0.113.{i}");
        assert_eq!(get_as(&app, Some(&spoof)).await.status(), 200);
    }
    assert_eq!(get_as(&app, Some("203.0.113.250")).await.status(), 429);
    assert_eq!(get_as(&app, None).await.status(), 429);
    app.stop().await;
}

#[tokio::test]
async fn half_a_window_after_the_limit_about_half_the_limit_is_admitted_again() {
    let app = TestApp::spawn_with(&[("RAMPART_RATE_LIMIT_GLOBAL", "20/1m")]).await;
    for _ in 0..20 {
        assert_eq!(app.get("/health").await.status(), 200);
    }
    assert_eq!(app.get("/health").await.status(), 429);
    app.clock.advance(Duration::from_secs(30));
    let mut admitted = 0;
    for _ in 0..20 {
        if app.get("/health").await.status() == 200 {
            admitted += 1;
        }
    }
    assert_eq!(
        admitted, 10,
        "a sliding limit gives back half in half a window"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_sixth_failed_login_of_an_account_is_429_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    let (email, password) = (fresh_email(), strong_password());
    app.secret(&password);
    app.verified_user(&email, &password).await;
    // Successes do not count.
    for _ in 0..6 {
        app.login(&email, &password).await;
    }
    for i in 0..5 {
        let response = wrong_login(&app, &email).await;
        assert_eq!(response.status(), 401, "failure {i}");
        let fields = ratelimit_fields(&response);
        assert!(
            fields.contains(&format!("\"login-account\";r={}", 4 - i)),
            "{fields}"
        );
    }
    let locked = app
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(locked.status(), 429);
    assert_eq!(locked.headers()["retry-after"], "180");
    assert_eq!(problem(locked).await["code"], "rate_limited");
    // Another account from the same client is not locked.
    let (other, other_password) = (fresh_email(), strong_password());
    app.secret(&other_password);
    app.verified_user(&other, &other_password).await;
    app.login(&other, &other_password).await;
    // One interval (15 min / 5) later the right password works again.
    app.clock.advance(Duration::from_secs(180));
    app.login(&email, &password).await;
    assert_eq!(events_of(&app, "account_locked", 1).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_successful_login_clears_the_accounts_failures_but_not_the_clients() {
    let app = TestApp::spawn_with(&[("RAMPART_RATE_LIMIT_LOGIN_IP", "10/15m")]).await;
    let (email, password) = (fresh_email(), strong_password());
    app.secret(&password);
    app.verified_user(&email, &password).await;
    for _ in 0..4 {
        assert_eq!(wrong_login(&app, &email).await.status(), 401);
    }
    app.login(&email, &password).await;
    // The account has its 5 attempts again; the client keeps its 4 failures of 10.
    let after = wrong_login(&app, &email).await;
    assert_eq!(after.status(), 401);
    let after = ratelimit_fields(&after);
    assert!(after.contains("\"login-account\";r=4"), "{after}");
    assert!(after.contains("\"login-ip\";r=5"), "{after}");
    app.stop().await;
}

#[tokio::test]
async fn twenty_failed_logins_from_one_client_block_its_21st_whatever_the_account() {
    let app = TestApp::spawn_with(&[("RAMPART_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let login_from = |xff: &'static str| {
        let wrong = strong_password();
        app.secret(&wrong);
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", xff)
            .json(&json!({"email": fresh_email(), "password": wrong}))
            .send()
    };
    for i in 0..20 {
        assert_eq!(login_from("192.0.2.10").await.unwrap().status(), 401, "{i}");
    }
    let blocked = login_from("192.0.2.10").await.unwrap();
    assert_eq!(blocked.status(), 429);
    assert!(
        blocked.headers()["ratelimit-policy"]
            .to_str()
            .unwrap()
            .contains("\"login-ip\";q=20;w=900")
    );
    assert_eq!(login_from("192.0.2.11").await.unwrap().status(), 401);
    app.stop().await;
}

#[tokio::test]
async fn the_11th_registration_of_a_client_within_an_hour_is_429() {
    let app = TestApp::spawn().await;
    for i in 0..10 {
        let response = app
            .register(&fresh_email(), &strong_password(), "Someone")
            .await;
        assert_eq!(response.status(), 202, "{i}");
        assert!(response.headers().contains_key("ratelimit-policy"));
    }
    let refused = app
        .register(&fresh_email(), &strong_password(), "Someone")
        .await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    app.stop().await;
}

#[tokio::test]
async fn forgot_password_is_limited_per_address_alike_for_known_and_unknown_ones() {
    let app = TestApp::spawn_with(&[
        ("RAMPART_SLOW_DOWN_FORGOT_STEP", "1ms"),
        ("RAMPART_SLOW_DOWN_FORGOT_MAX", "10ms"),
    ])
    .await;
    let known = fresh_email();
    app.verified_user(&known, &strong_password()).await;
    let unknown = fresh_email();
    let mut answers = Vec::new();
    for address in [&known, &unknown] {
        for _ in 0..3 {
            let ok = app
                .post("/api/v1/auth/forgot-password", json!({"email": address}))
                .await;
            assert_eq!(ok.status(), 202);
        }
        let refused = app
            .post("/api/v1/auth/forgot-password", json!({"email": address}))
            .await;
        assert_eq!(refused.status(), 429);
        let headers = (
            refused.headers()["retry-after"].clone(),
            refused.headers()["ratelimit"].clone(),
        );
        let mut body = problem(refused).await;
        body.as_object_mut().unwrap().remove("request_id");
        answers.push((headers, body));
    }
    assert_eq!(answers[0], answers[1], "the 429 reveals nothing");
    app.stop().await;
}

#[tokio::test]
async fn forgot_password_slows_down_a_client_after_two_requests() {
    let app = TestApp::spawn_with(&[("RAMPART_SLOW_DOWN_FORGOT_STEP", "300ms")]).await;
    let mut took = Vec::new();
    for _ in 0..4 {
        let started = Instant::now();
        let response = app
            .post(
                "/api/v1/auth/forgot-password",
                json!({"email": fresh_email()}),
            )
            .await;
        assert_eq!(response.status(), 202);
        took.push(started.elapsed());
    }
    // The 3rd waits one step, the 4th two.
    assert!(took[2] >= Duration::from_millis(300), "{took:?}");
    assert!(took[3] >= Duration::from_millis(600), "{took:?}");
    assert!(took[0] < Duration::from_millis(300), "{took:?}");
    app.stop().await;
}

fn redis_vars(redis: &RedisServer, global: &str) -> Vec<(String, String)> {
    vec![
        ("REDIS_URL".to_owned(), redis.url()),
        ("RAMPART_RATE_LIMIT_GLOBAL".to_owned(), global.to_owned()),
    ]
}

async fn spawn_on(vars: &[(String, String)]) -> TestApp {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    TestApp::spawn_with(&vars).await
}

#[tokio::test]
async fn two_instances_sharing_redis_admit_exactly_the_limit() {
    let redis = RedisServer::start();
    let vars = redis_vars(&redis, "100/1m");
    let a = spawn_on(&vars).await;
    let b = spawn_on(&vars).await;
    let requests = (0..400).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.client.get(app.url("/health")).send()
    });
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((ok, limited), (100, 300));
    assert!(!a.state.limits.is_degraded() && !b.state.limits.is_degraded());
    a.stop().await;
    b.stop().await;
}

#[test]
fn two_rampart_serve_processes_sharing_redis_admit_exactly_the_limit() {
    let redis = RedisServer::start();
    let url = redis.url();
    let vars = [
        ("REDIS_URL", url.as_str()),
        ("RAMPART_RATE_LIMIT_GLOBAL", "100/1m"),
    ];
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, addr_a) = crate::cli::spawn_serve(dir_a.path(), &vars);
    let (b, addr_b) = crate::cli::spawn_serve(dir_b.path(), &vars);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let started = Instant::now();
    let statuses: Vec<u16> = runtime.block_on(async {
        let client = reqwest::Client::new();
        let requests = (0..400).map(|i| {
            let addr = if i % 2 == 0 { &addr_a } else { &addr_b };
            client.get(format!("http://{addr}/health")).send()
        });
        futures_util::future::join_all(requests)
            .await
            .into_iter()
            .map(|r| r.unwrap().status().as_u16())
            .collect()
    });
    let elapsed = started.elapsed();
    crate::cli::stop_serve(a);
    crate::cli::stop_serve(b);
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(ok + limited, 400, "no other answer: {statuses:?}");
    // These processes run on the real clock, and the limit slides: the budget of 100 gets
    // one request back every 600 ms the burst lasts. Two separate counts would admit 200.
    let refilled = usize::try_from(elapsed.as_millis() / 600).unwrap();
    assert!(
        (100..=100 + refilled).contains(&ok),
        "{ok} admitted in {elapsed:?}"
    );
}

#[tokio::test]
async fn login_failures_are_shared_through_redis_and_a_success_anywhere_clears_them() {
    let redis = RedisServer::start();
    let vars = redis_vars(&redis, "300/1m");
    let a = spawn_on(&vars).await;
    let b = spawn_on(&vars).await;
    // One account, known to both instances' databases.
    let (email, password) = (fresh_email(), strong_password());
    for app in [&a, &b] {
        app.secret(&password);
        app.verified_user(&email, &password).await;
    }
    for _ in 0..3 {
        assert_eq!(wrong_login(&a, &email).await.status(), 401);
    }
    let fourth = wrong_login(&b, &email).await;
    assert!(
        fourth
            .headers()
            .get_all("ratelimit")
            .iter()
            .any(|v| v == "\"login-account\";r=1;t=720"),
        "b counts a's failures"
    );
    b.login(&email, &password).await;
    let after = wrong_login(&a, &email).await;
    assert!(
        after
            .headers()
            .get_all("ratelimit")
            .iter()
            .any(|v| v == "\"login-account\";r=4;t=180"),
        "a success on b cleared the account on a"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_redis_script_decides_exactly_like_the_memory_store() {
    use rampart_layers::rate_limit::{MemoryStore, Mode, Quota, RedisStore, Store};
    let redis = RedisServer::start();
    let remote = RedisStore::new(&redis.url(), "eq:", Duration::from_secs(5)).unwrap();
    let local = MemoryStore::default();
    let quota = Quota::new(5, Duration::from_secs(10)).unwrap();
    // A fixed pseudo-random walk over two keys, every mode, refusals included. Time only
    // moves forward, by at least 50 ms a step, so it runs ahead of the real clock that
    // Redis expires keys by.
    let mut seed: u64 = 0x5eed;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut now_ms: i64 = 1_800_000_000_000;
    let mut refused = 0;
    for step in 0..300 {
        now_ms += 50 + i64::try_from(next() % 1500).unwrap();
        let key = if next() % 3 == 0 { "a" } else { "b" };
        let mode = match next() % 4 {
            0 => Mode::Peek,
            1 | 2 => Mode::Take,
            _ => Mode::Hit { cap: 8 },
        };
        let expected = local.decide(key, &quota, mode, now_ms).await.unwrap();
        let got = remote.decide(key, &quota, mode, now_ms).await.unwrap();
        assert_eq!(got, expected, "step {step}: {mode:?} on {key}");
        refused += usize::from(!got.allowed);
        if step % 50 == 0 {
            remote.forget(key).await.unwrap();
            local.forget(key).await.unwrap();
        }
    }
    assert!(
        refused > 10,
        "the walk must reach the limit: {refused} refusals"
    );
}

async fn wait_for_health(app: &TestApp, healthy: bool) {
    let mut health = app.state.limits.health().unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        health.wait_for(|h| (*h == StoreHealth::Healthy) == healthy),
    )
    .await
    .expect("the store's health changed in time")
    .unwrap();
}

#[tokio::test]
async fn when_redis_stops_limits_continue_per_instance_and_resume_when_it_is_back() {
    let mut redis = RedisServer::start();
    let vars = redis_vars(&redis, "20/1m");
    let a = spawn_on(&vars).await;
    let b = spawn_on(&vars).await;
    for _ in 0..20 {
        assert_eq!(a.get("/health").await.status(), 200);
    }
    assert_eq!(b.get("/health").await.status(), 429, "shared through Redis");

    redis.stop();
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(b.get("/health").await.status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "no 5xx: {statuses:?}"
    );
    // Per instance: b's own budget of 20, never unlimited.
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 20);
    assert!(b.state.limits.is_degraded());
    // a notices too, at its next request, which it decides alone (with a budget of its
    // own, untouched so far).
    assert_eq!(a.get("/health").await.status(), 200);
    assert!(a.state.limits.is_degraded());
    let degraded = events_of(&b, "rate_limit_store_degraded", 1).await;
    assert_eq!(degraded.len(), 1);
    assert!(degraded[0].details.contains("redis"));

    redis.restart();
    wait_for_health(&a, true).await;
    wait_for_health(&b, true).await;
    // Shared again: a restarted Redis without persistence starts from zero, and what a
    // spends, b cannot.
    for _ in 0..20 {
        assert_eq!(a.get("/health").await.status(), 200);
    }
    assert_eq!(b.get("/health").await.status(), 429);
    a.stop().await;
    b.stop().await;
}

/// Send a wrong-password login for `email` on a raw connection and wait until its hash job
/// runs; the caller then abandons or completes it.
async fn login_in_flight(app: &TestApp, email: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let wrong = strong_password();
    app.secret(&wrong);
    let body = json!({"email": email, "password": wrong}).to_string();
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        app.addr,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    while app.state.hasher.running() == 0 {
        assert!(
            Instant::now() < deadline,
            "the login never reached the hash pool"
        );
        ticks.tick().await;
    }
    stream
}

#[tokio::test]
async fn a_login_the_client_abandons_before_its_answer_is_not_a_failure() {
    // One hash worker, one failure allowed per account: whether the abandoned attempt
    // counted decides the next login's answer.
    let app = TestApp::spawn_with(&[
        ("RAMPART_HASH_WORKERS", "1"),
        ("RAMPART_RATE_LIMIT_LOGIN_ACCOUNT", "1/15m"),
    ])
    .await;
    let (email, password) = (fresh_email(), strong_password());
    app.secret(&password);
    app.verified_user(&email, &password).await;

    let abandoned = login_in_flight(&app, &email).await;
    drop(abandoned);
    // The worker frees once the abandoned job ends; a full login after it (on another
    // account, through the same single worker) gives the abandoned request every chance
    // to have finished, had it not been dropped.
    let probe = strong_password();
    app.secret(&probe);
    let _probe_done = app
        .state
        .hasher
        .verify(
            &rampart::domain::password::Password::unchecked(probe.clone()),
            None,
        )
        .await
        .unwrap();
    let other = app
        .post(
            "/api/v1/auth/login",
            json!({"email": fresh_email(), "password": probe}),
        )
        .await;
    assert_eq!(other.status(), 401);
    app.login(&email, &password).await;

    // The control: the same attempt completed is a failure, and the account is locked.
    let mut completed = login_in_flight(&app, &email).await;
    let mut answer = Vec::new();
    tokio::io::AsyncReadExt::read_buf(&mut completed, &mut answer)
        .await
        .unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 401"));
    let locked = app
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(locked.status(), 429);
    app.stop().await;
}
