//! What the identity services' unit tests share: the application state over a fresh
//! SQLite file in a temporary directory, with a manual clock, and helpers named for intent.

use std::collections::HashMap;

use secrecy::SecretString;
use uuid::Uuid;

use crate::{
    clock::Clock,
    config::Config,
    domain::{
        paging::{Limit, Page},
        password::Password,
        user::{Role, User},
    },
    security_events::EventContext,
    state::AppState,
    store::{Db, events, users},
};

/// Where the manual clock starts (2025-06-15).
pub const START_MS: i64 = 1_750_000_000_000;
/// A password every strength check accepts.
pub const PASSWORD: &str = "correct horse battery staple 42";

/// A state over a temporary database; the directory lives as long as this.
pub struct TestState {
    pub state: AppState,
    pub clock: Clock,
    pub ctx: EventContext,
    _dir: tempfile::TempDir,
}

impl TestState {
    /// The defaults, development mode, the outbox in the temporary directory.
    pub async fn new() -> Self {
        Self::with(&[]).await
    }

    /// The defaults with extra configuration variables.
    pub async fn with(vars: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut env: HashMap<String, String> = HashMap::new();
        env.insert("RAMPART_DATA_DIR".into(), data.display().to_string());
        env.insert(
            "DATABASE_URL".into(),
            format!("sqlite://{}/rampart.db", data.display()),
        );
        for (k, v) in vars {
            env.insert((*k).into(), (*v).into());
        }
        let mut config = Config::load(&env).expect("test configuration").config;
        crate::setup::prepare(&mut config).expect("prepare the data dir");
        let db = Db::connect(&config.database_url, 2).await.expect("connect");
        db.migrate().await.expect("migrate");
        let clock = Clock::manual(START_MS);
        let state = AppState::new(config, db, clock.clone()).expect("state");
        let ctx = EventContext {
            request_id: "req-1".into(),
            ip: "192.0.2.7".into(),
            user_agent: "unit-test".into(),
            route: "/test".into(),
        };
        Self {
            state,
            clock,
            ctx,
            _dir: dir,
        }
    }

    /// The clock's time.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// An account with [`PASSWORD`], stored directly.
    pub async fn user(&self, email: &str, verified: bool) -> User {
        let hash = self
            .state
            .hasher
            .hash(&Password::unchecked(PASSWORD.to_owned()))
            .await
            .expect("hash");
        users::create(
            &self.state.db,
            &users::NewUser {
                email,
                name: "Ada",
                password_hash: &hash,
                role: Role::User,
                email_verified: verified,
            },
            self.now(),
        )
        .await
        .expect("insert")
        .expect("new address")
    }

    /// The events recorded so far, with their users and details, in no particular order
    /// (rows stamped in the same millisecond have no order).
    pub async fn events(&self) -> Vec<(String, Option<Uuid>, serde_json::Value)> {
        let (rows, _) = events::list(
            &self.state.db,
            None,
            None,
            Page::default(),
            Limit::parse("100").expect("limit"),
        )
        .await
        .expect("events");
        rows.into_iter()
            .map(|r| {
                let details = serde_json::from_str(&r.details).expect("details are JSON");
                (r.kind, r.user_id, details)
            })
            .collect()
    }

    /// The kinds of the events so far, sorted by name.
    pub async fn event_kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.events().await.into_iter().map(|e| e.0).collect();
        kinds.sort();
        kinds
    }

    /// Every mail in the outbox, as raw text.
    pub fn outbox(&self) -> Vec<String> {
        let dir = &self.state.config.mail_outbox;
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// Wait (at most 10 s, polling) until the outbox holds `n` mails; return them.
    pub async fn mails(&self, n: usize) -> Vec<String> {
        crate::testing::eventually(&format!("{n} mails arriving"), || async {
            let mails = self.outbox();
            (mails.len() >= n).then_some(mails)
        })
        .await
    }
}

/// A secret from a literal.
pub fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// The token of the first `{path}?token=` link in `mail`.
pub fn token_in(mail: &str, path: &str) -> String {
    let marker = format!("{path}?token=");
    let start = mail.find(&marker).expect("link in mail") + marker.len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}
