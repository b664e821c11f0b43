//! Issue 9: one clock for every time stamp, and one application assembly shared by
//! `rampart serve` and these tests.

use std::time::Duration;

use rampart::store::users;
use serde_json::json;
use sqlx::Row as _;

use crate::{
    accounts::{fresh_email, strong_password},
    harness::{TestApp, eventually},
};

/// The `Date` header of a mail, as Unix seconds.
fn mail_date(mail: &str) -> i64 {
    let value = mail
        .lines()
        .find_map(|line| line.strip_prefix("Date: "))
        .expect("a Date header");
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822)
        .expect("an RFC 5322 date")
        .unix_timestamp()
}

#[tokio::test]
async fn after_the_manual_clock_moves_rows_events_and_mail_all_show_its_time() {
    let app = TestApp::spawn().await;
    // Forty days ahead of the wall clock: a stamp taken from the system time would show.
    app.clock.advance(Duration::from_secs(40 * 24 * 60 * 60));
    let now = app.clock.now_ms();
    let (email, password) = (fresh_email(), strong_password());

    assert_eq!(app.register(&email, &password, "Clock").await.status(), 202);
    let user = users::credentials_by_email(&app.db, &email)
        .await
        .unwrap()
        .expect("the account")
        .user;
    assert_eq!(user.created_at, now, "the row's created_at");
    let mail = &app.wait_for_mails(&email, 1).await[0];
    assert_eq!(mail_date(mail), app.clock.now_secs(), "the mail's Date");

    let refused = app
        .post(
            "/api/v1/auth/login",
            json!({"email": email, "password": "Not-The-Password-4711"}),
        )
        .await;
    assert_eq!(refused.status(), 401);
    let occurred_at: i64 = eventually("a login_failed event", || async {
        sqlx::query("SELECT occurred_at FROM security_events WHERE type = 'login_failed'")
            .fetch_optional(app.db.pool())
            .await
            .unwrap()
            .map(|row| row.get("occurred_at"))
    })
    .await;
    assert_eq!(occurred_at, now, "the event's occurred_at");

    let product = app.product("Clockwork", 1_200).await;
    let stored = rampart::store::products::get(&app.db, product.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.created_at, stored.updated_at), (now, now));
    app.stop().await;
}

#[tokio::test]
async fn a_production_start_that_serve_refuses_is_refused_by_the_test_harness_too() {
    let refused = TestApp::try_spawn_with(&[("RAMPART_ENV", "production")]).await;
    let error = format!("{:#}", refused.err().expect("production without settings"));
    assert!(error.contains("production refuses to start"), "{error}");
    for name in ["RAMPART_SESSION_SECRET", "RAMPART_KEYS_DIR"] {
        assert!(error.contains(name), "{name} not named in: {error}");
    }
}

#[tokio::test]
async fn the_test_app_uses_the_configured_pool_size() {
    let default = TestApp::spawn().await;
    assert_eq!(default.db.pool().options().get_max_connections(), 8);
    default.stop().await;
    let small = TestApp::spawn_with(&[("RAMPART_DB_MAX_CONNECTIONS", "3")]).await;
    assert_eq!(small.db.pool().options().get_max_connections(), 3);
    assert_eq!(small.get("/health").await.status(), 200);
    small.stop().await;
}

/// The kids the running app publishes.
async fn published_kids(app: &TestApp) -> Vec<String> {
    let jwks: serde_json::Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_key_rotated_by_the_cli_is_picked_up_by_the_running_app_without_a_restart() {
    let app = TestApp::spawn_reloading_keys_every(Duration::from_millis(50)).await;
    let before = published_kids(&app).await;
    assert_eq!(before.len(), 1);
    let data_dir = app.keys_dir.parent().unwrap().display().to_string();
    let rotated = std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["keys", "rotate"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RAMPART_DATA_DIR", &data_dir)
        .env("RAMPART_KEYS_DIR", app.keys_dir.display().to_string())
        .output()
        .unwrap();
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let after = eventually("the rotated key in the JWKS", || async {
        let kids = published_kids(&app).await;
        (kids.len() == 2).then_some(kids)
    })
    .await;
    assert!(after.contains(&before[0]), "the old key still verifies");
    app.stop().await;
}
