//! Security events (API.md §7): one structured log line (target `rampart::security`,
//! `category = "security"`) and one database row each, readable through
//! `GET /api/v1/admin/security-events`.
//!
//! ```text
//! let events = state.events.at(&ctx);            // bind the request's context once
//! events.record(EventKind::LoginFailed, None, json!({"email": email})).await;
//! ```
//!
//! # Folding (API.md §7)
//! The four kinds an unauthenticated client can raise at request rate (`cors_rejected`,
//! `token_invalid`, `suspicious_input`, `rate_limited`) are folded per kind and client key
//! (the rate limiter's: the IPv4 address, or the IPv6 /64): the first occurrence is logged
//! and stored at once, in full, with its request id, and opens a window of
//! [`FOLD_WINDOW_MS`]; repeats within it only count in memory. When the window closes (a
//! sweep once a second, on the app's [`Clock`], and [`SecurityEvents::flush`] at shutdown)
//! one `UPDATE` adds the count to the row (`details.repeats` in the listing) and one line
//! says how many were folded. So per client and kind, a window writes at most one row and
//! two lines. At most [`FOLD_MAX_CLIENTS`] (kind, client) windows are tracked; beyond that,
//! new clients fold into one overflow window per kind, whose first event is stored in full
//! with `details.overflow = true`, and the overflow is logged when it closes.
//!
//! # Security
//! Details are chosen by the caller from safe facts (ids, an email address, a reason); no
//! password, token, cookie, `Authorization` value, secret, TOTP secret or recovery code is
//! ever passed in. Recording never fails a request: a database error is logged and dropped.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use axum::{
    extract::{FromRequestParts, MatchedPath},
    http::request::Parts,
};
use rampart_layers::{client_ip::ClientIp, request_id::RequestId};
use uuid::Uuid;

use crate::{
    clock::Clock,
    store::{Db, events},
};

/// The kinds of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum EventKind {
    LoginFailed,
    LoginSucceeded,
    AccountLocked,
    MfaFailed,
    RateLimited,
    Forbidden,
    TokenInvalid,
    TokenReused,
    PasswordChanged,
    PasswordResetRequested,
    PasswordResetCompleted,
    MfaEnabled,
    MfaDisabled,
    SessionRevoked,
    UserDeactivated,
    RoleChanged,
    CsrfFailed,
    CorsRejected,
    SuspiciousInput,
    RateLimitStoreDegraded,
}

impl EventKind {
    /// Every kind, for validating filters.
    pub const ALL: [EventKind; 20] = [
        Self::LoginFailed,
        Self::LoginSucceeded,
        Self::AccountLocked,
        Self::MfaFailed,
        Self::RateLimited,
        Self::Forbidden,
        Self::TokenInvalid,
        Self::TokenReused,
        Self::PasswordChanged,
        Self::PasswordResetRequested,
        Self::PasswordResetCompleted,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::SessionRevoked,
        Self::UserDeactivated,
        Self::RoleChanged,
        Self::CsrfFailed,
        Self::CorsRejected,
        Self::SuspiciousInput,
        Self::RateLimitStoreDegraded,
    ];

    /// The published name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginFailed => "login_failed",
            Self::LoginSucceeded => "login_succeeded",
            Self::AccountLocked => "account_locked",
            Self::MfaFailed => "mfa_failed",
            Self::RateLimited => "rate_limited",
            Self::Forbidden => "forbidden",
            Self::TokenInvalid => "token_invalid",
            Self::TokenReused => "token_reused",
            Self::PasswordChanged => "password_changed",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordResetCompleted => "password_reset_completed",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
            Self::SessionRevoked => "session_revoked",
            Self::UserDeactivated => "user_deactivated",
            Self::RoleChanged => "role_changed",
            Self::CsrfFailed => "csrf_failed",
            Self::CorsRejected => "cors_rejected",
            Self::SuspiciousInput => "suspicious_input",
            Self::RateLimitStoreDegraded => "rate_limit_store_degraded",
        }
    }

    /// Whether repeats of this kind from one client are folded (API.md §7): the kinds an
    /// unauthenticated client can raise at request rate.
    pub fn folds(self) -> bool {
        matches!(
            self,
            Self::CorsRejected | Self::TokenInvalid | Self::SuspiciousInput | Self::RateLimited
        )
    }

    /// Parse a published name.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// Where an event happened: taken from the request.
#[derive(Debug, Clone, Default)]
pub struct EventContext {
    /// The request id.
    pub request_id: String,
    /// The client address.
    pub ip: String,
    /// The user agent, at most 200 characters, control characters removed.
    pub user_agent: String,
    /// The route template.
    pub route: String,
}

/// A bounded, printable user agent.
pub fn clean_user_agent(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(200).collect()
}

impl EventContext {
    /// The context of a request.
    pub fn from_parts(parts: &Parts) -> Self {
        Self {
            request_id: parts
                .extensions
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            ip: parts
                .extensions
                .get::<ClientIp>()
                .map(|c| c.ip.to_string())
                .unwrap_or_default(),
            user_agent: parts
                .headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(clean_user_agent)
                .unwrap_or_default(),
            route: parts
                .extensions
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_owned())
                .unwrap_or_else(|| parts.uri.path().chars().take(200).collect()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for EventContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts))
    }
}

/// How long repeats of a folded kind from one client join the first one's row.
pub const FOLD_WINDOW_MS: i64 = 60_000;

/// How many (kind, client) folding windows are tracked at once; beyond, new clients share one
/// overflow window per kind.
pub const FOLD_MAX_CLIENTS: usize = 10_000;

/// How often open windows are checked for closing (real time; whether one closed is read
/// from the app's clock).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The client named in the log line of an overflow window.
const OVERFLOW_CLIENT: &str = "(overflow)";

/// One open folding window: the row of its first event and the repeats counted since.
#[derive(Debug, Clone)]
struct Window {
    id: Uuid,
    kind: EventKind,
    client: String,
    request_id: String,
    opened_at: i64,
    last_at: i64,
    repeats: u64,
}

/// The open windows, bounded by [`FOLD_MAX_CLIENTS`] plus one overflow window per kind.
#[derive(Debug, Default)]
struct Folding {
    open: HashMap<(EventKind, String), Window>,
    overflow: HashMap<EventKind, Window>,
}

/// What to do with one occurrence of a folded kind.
enum Fold {
    /// Record it in full (it opened a window); `overflow` when it opened the kind's overflow
    /// window because the table is full.
    First { overflow: bool },
    /// Counted in an open window; nothing to write now.
    Repeat,
}

impl Folding {
    /// Count one occurrence at `now`, opening a window with row `id` when none is open. A
    /// window found past its end is closed here (and returned, to be written) rather than
    /// extended.
    fn occur(
        &mut self,
        kind: EventKind,
        client: &str,
        request_id: &str,
        id: Uuid,
        now: i64,
    ) -> (Fold, Option<Window>) {
        let open = |client: &str| Window {
            id,
            kind,
            client: client.to_owned(),
            request_id: request_id.to_owned(),
            opened_at: now,
            last_at: now,
            repeats: 0,
        };
        let due = |w: &Window| now - w.opened_at >= FOLD_WINDOW_MS;
        let key = (kind, client.to_owned());
        let mut closed = None;
        match self.open.get_mut(&key) {
            Some(w) if !due(w) => {
                w.repeats += 1;
                w.last_at = now;
                return (Fold::Repeat, None);
            }
            Some(_) => closed = self.open.remove(&key),
            None => {}
        }
        if self.open.len() < FOLD_MAX_CLIENTS {
            self.open.insert(key, open(client));
            return (Fold::First { overflow: false }, closed);
        }
        match self.overflow.get_mut(&kind) {
            Some(w) if !due(w) => {
                w.repeats += 1;
                w.last_at = now;
                return (Fold::Repeat, closed);
            }
            Some(_) => {
                // The table is full, so no client window was closed above.
                closed = self.overflow.remove(&kind);
            }
            None => {}
        }
        self.overflow.insert(kind, open(OVERFLOW_CLIENT));
        (Fold::First { overflow: true }, closed)
    }

    /// Take the windows that closed by `now` (all of them when `all`).
    fn close(&mut self, now: i64, all: bool) -> Vec<Window> {
        let closed = |w: &Window| all || now - w.opened_at >= FOLD_WINDOW_MS;
        let mut out = Vec::new();
        let keys: Vec<(EventKind, String)> = self
            .open
            .iter()
            .filter(|(_, w)| closed(w))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some(w) = self.open.remove(&k) {
                out.push(w);
            }
        }
        let kinds: Vec<EventKind> = self
            .overflow
            .iter()
            .filter(|(_, w)| closed(w))
            .map(|(k, _)| *k)
            .collect();
        for k in kinds {
            if let Some(w) = self.overflow.remove(&k) {
                out.push(w);
            }
        }
        out
    }
}

/// The client key of an event's address, as the rate limiter computes it: the IPv4
/// address, or the IPv6 /64. Never coarser.
fn client_key(ip: &str) -> String {
    ip.parse::<IpAddr>().map_or_else(
        |_| "unknown".to_owned(),
        |ip| ClientIp { ip, https: false }.key().to_string(),
    )
}

#[derive(Debug)]
struct Inner {
    db: Db,
    clock: Clock,
    folding: Mutex<Folding>,
    /// Held while windows are being closed, so that a caller of [`SecurityEvents::flush`]
    /// returns only once a concurrent sweep's writes are done too.
    closing: tokio::sync::Mutex<()>,
}

impl Inner {
    fn folding(&self) -> std::sync::MutexGuard<'_, Folding> {
        self.folding.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Close the windows due by the clock (all of them when `all`).
    async fn close(&self, all: bool) {
        let _closing = self.closing.lock().await;
        let closed = self.folding().close(self.clock.now_ms(), all);
        for w in closed {
            self.write_closed(w).await;
        }
    }

    /// One line and one update for a closed window that had repeats.
    async fn write_closed(&self, w: Window) {
        if w.repeats == 0 {
            return;
        }
        let repeats = i64::try_from(w.repeats).unwrap_or(i64::MAX);
        tracing::warn!(
            target: "rampart::security",
            category = "security",
            event = w.kind.as_str(),
            request_id = w.request_id.as_str(),
            client = w.client.as_str(),
            repeats,
            overflow = w.client == OVERFLOW_CLIENT,
            "security event repeated"
        );
        if let Err(e) = events::add_repeats(&self.db, w.id, repeats, w.last_at).await {
            tracing::error!(target: "rampart::security", error = %e, event = w.kind.as_str(), "security event repeats not stored");
        }
    }
}

/// Records events.
#[derive(Debug, Clone)]
pub struct SecurityEvents {
    inner: Arc<Inner>,
}

impl SecurityEvents {
    /// Events stored in `db`, stamped by `clock` (the application's one clock, so that an
    /// event and the rows written in the same request show the same time). Inside a Tokio
    /// runtime this starts the sweep that closes folding windows; it ends with the last
    /// clone.
    pub fn new(db: Db, clock: Clock) -> Self {
        let inner = Arc::new(Inner {
            db,
            clock,
            folding: Mutex::new(Folding::default()),
            closing: tokio::sync::Mutex::new(()),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep(Arc::downgrade(&inner)));
        }
        Self { inner }
    }

    /// A recorder bound to the context of one request, for services that record several
    /// events (or one of several kinds) while handling it.
    pub fn at<'a>(&'a self, ctx: &'a EventContext) -> Recorder<'a> {
        Recorder { events: self, ctx }
    }

    /// Close every open folding window now, writing its count: at shutdown.
    pub async fn flush(&self) {
        self.inner.close(true).await;
    }

    /// Close the folding windows that are due by the clock (the sweep does this every
    /// second).
    pub async fn close_due(&self) {
        self.inner.close(false).await;
    }

    /// Log and store one event; a repeat of a folded kind within its window is only
    /// counted (see the module documentation).
    pub async fn record(
        &self,
        ctx: &EventContext,
        kind: EventKind,
        user_id: Option<Uuid>,
        details: serde_json::Value,
    ) {
        self.prepare(ctx, kind, user_id, details).store().await;
    }

    /// The synchronous half of [`Self::record`]: count the event, fold it or write its log
    /// line, and return what is left to store. The pipeline calls this before answering, so
    /// every occurrence is counted by the time its response is sent, and stores off the
    /// response path.
    pub fn prepare(
        &self,
        ctx: &EventContext,
        kind: EventKind,
        user_id: Option<Uuid>,
        mut details: serde_json::Value,
    ) -> PendingEvent {
        crate::metrics::record_security_event(kind.as_str());
        let id = Uuid::new_v4();
        let occurred_at = self.inner.clock.now_ms();
        let mut closed = None;
        if kind.folds() {
            let (fold, was_open) = self.inner.folding().occur(
                kind,
                &client_key(&ctx.ip),
                &ctx.request_id,
                id,
                occurred_at,
            );
            closed = was_open;
            match fold {
                Fold::Repeat => {
                    return PendingEvent {
                        inner: self.inner.clone(),
                        row: None,
                        closed,
                    };
                }
                Fold::First { overflow: true } => {
                    if let Some(map) = details.as_object_mut() {
                        map.insert("overflow".to_owned(), true.into());
                    }
                }
                Fold::First { overflow: false } => {}
            }
        }
        let details = details.to_string();
        let user = user_id.map(|u| u.to_string()).unwrap_or_default();
        tracing::warn!(
            target: "rampart::security",
            category = "security",
            event = kind.as_str(),
            request_id = ctx.request_id.as_str(),
            ip = ctx.ip.as_str(),
            user_agent = ctx.user_agent.as_str(),
            user_id = user.as_str(),
            route = ctx.route.as_str(),
            details = details.as_str(),
            "security event"
        );
        let row = events::EventRow {
            id,
            kind: kind.as_str().to_owned(),
            occurred_at,
            request_id: ctx.request_id.clone(),
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
            user_id,
            route: ctx.route.clone(),
            details,
        };
        PendingEvent {
            inner: self.inner.clone(),
            row: Some(row),
            closed,
        }
    }
}

/// What [`SecurityEvents::prepare`] left to write: the event's row unless it was folded,
/// and the window it closed, if any.
#[derive(Debug)]
#[must_use = "an event is stored only by `store`"]
pub struct PendingEvent {
    inner: Arc<Inner>,
    row: Option<events::EventRow>,
    closed: Option<Window>,
}

impl PendingEvent {
    /// Write it. Never fails: a database error is logged and dropped.
    pub async fn store(self) {
        if let Some(w) = self.closed {
            self.inner.write_closed(w).await;
        }
        if let Some(row) = self.row
            && let Err(e) = events::insert(&self.inner.db, &row).await
        {
            tracing::error!(target: "rampart::security", error = %e, event = row.kind.as_str(), "security event not stored");
        }
    }
}

/// Close due windows every [`SWEEP_EVERY`] until the recorder is dropped.
async fn sweep(inner: Weak<Inner>) {
    let mut ticks = tokio::time::interval(SWEEP_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.close(false).await;
    }
}

/// [`SecurityEvents`] with the context of one request already bound.
#[derive(Debug, Clone, Copy)]
pub struct Recorder<'a> {
    events: &'a SecurityEvents,
    ctx: &'a EventContext,
}

impl<'a> Recorder<'a> {
    /// Log and store one event of `kind` about `user_id` (see [`SecurityEvents::record`]).
    pub async fn record(self, kind: EventKind, user_id: Option<Uuid>, details: serde_json::Value) {
        self.events.record(self.ctx, kind, user_id, details).await;
    }

    /// The request context this recorder writes.
    pub fn context(&self) -> &'a EventContext {
        self.ctx
    }

    /// The log it writes to.
    pub fn events(&self) -> &'a SecurityEvents {
        self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("nope"), None);
    }

    #[tokio::test]
    async fn a_bound_recorder_stores_its_requests_context_with_each_event() {
        let t = crate::auth::testing::TestState::new().await;
        let user = Uuid::new_v4();
        let recorder = t.state.events.at(&t.ctx);
        recorder
            .record(
                EventKind::MfaDisabled,
                Some(user),
                serde_json::json!({"n": 1}),
            )
            .await;
        recorder
            .record(EventKind::RateLimited, None, serde_json::json!({"n": 2}))
            .await;
        let (rows, total) = events::list(
            &t.state.db,
            Some("mfa_disabled"),
            None,
            crate::domain::paging::Page::default(),
            crate::domain::paging::Limit::default(),
        )
        .await
        .unwrap();
        assert_eq!(total, 1);
        let row = &rows[0];
        assert_eq!(row.user_id, Some(user));
        assert_eq!(row.details, r#"{"n":1}"#);
        assert_eq!(
            (
                row.request_id.as_str(),
                row.ip.as_str(),
                row.user_agent.as_str(),
                row.route.as_str()
            ),
            ("req-1", "192.0.2.7", "unit-test", "/test")
        );
    }

    /// Every stored event of `kind`: (ip, request id, details).
    async fn stored(
        t: &crate::auth::testing::TestState,
        kind: &str,
    ) -> Vec<(String, String, serde_json::Value)> {
        let (rows, _) = events::list(
            &t.state.db,
            Some(kind),
            None,
            crate::domain::paging::Page::default(),
            crate::domain::paging::Limit::default(),
        )
        .await
        .unwrap();
        rows.into_iter()
            .map(|r| {
                (
                    r.ip,
                    r.request_id,
                    serde_json::from_str(&r.details).unwrap(),
                )
            })
            .collect()
    }

    fn from(ip: &str, request_id: &str) -> EventContext {
        EventContext {
            request_id: request_id.to_owned(),
            ip: ip.to_owned(),
            user_agent: "unit-test".to_owned(),
            route: "/test".to_owned(),
        }
    }

    #[tokio::test]
    async fn repeats_of_a_flood_kind_from_one_client_fold_into_the_first_row_until_the_window_closes()
     {
        let t = crate::auth::testing::TestState::new().await;
        let events = &t.state.events;
        for i in 0..5 {
            let ctx = from("192.0.2.1", &format!("req-{i}"));
            events
                .record(
                    &ctx,
                    EventKind::TokenInvalid,
                    None,
                    serde_json::json!({"n": i}),
                )
                .await;
        }
        // The first is stored at once, in full, with its own request id; the rest are counted.
        let rows = stored(&t, "token_invalid").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].1, "req-0");
        assert_eq!(rows[0].2, serde_json::json!({"n": 0}));
        // Before the window ends nothing more is written, even by a sweep.
        t.clock.advance(Duration::from_millis(
            u64::try_from(FOLD_WINDOW_MS - 1).unwrap(),
        ));
        events.close_due().await;
        assert_eq!(
            stored(&t, "token_invalid").await[0].2,
            serde_json::json!({"n": 0})
        );
        t.clock.advance(Duration::from_millis(1));
        events.close_due().await;
        let rows = stored(&t, "token_invalid").await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].2, serde_json::json!({"n": 0, "repeats": 4}));
        // A new window opens a new row.
        events
            .record(
                &from("192.0.2.1", "req-9"),
                EventKind::TokenInvalid,
                None,
                serde_json::json!({}),
            )
            .await;
        assert_eq!(stored(&t, "token_invalid").await.len(), 2);
    }

    #[tokio::test]
    async fn an_event_after_the_window_ends_writes_the_old_count_and_opens_a_new_row() {
        let t = crate::auth::testing::TestState::new().await;
        let events = &t.state.events;
        let ctx = from("192.0.2.3", "first");
        for _ in 0..3 {
            events
                .record(
                    &ctx,
                    EventKind::SuspiciousInput,
                    None,
                    serde_json::json!({}),
                )
                .await;
        }
        t.clock.advance(Duration::from_millis(
            u64::try_from(FOLD_WINDOW_MS).unwrap(),
        ));
        // No sweep in between: the late event itself closes the window it finds expired.
        events
            .record(
                &from("192.0.2.3", "second"),
                EventKind::SuspiciousInput,
                None,
                serde_json::json!({}),
            )
            .await;
        // (Waits for a sweep that may have closed it first to finish its write.)
        events.close_due().await;
        let mut rows = stored(&t, "suspicious_input").await;
        rows.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].1.as_str(), &rows[0].2["repeats"]),
            ("first", &serde_json::json!(2))
        );
        assert_eq!(rows[1].1, "second");
        assert!(rows[1].2.get("repeats").is_none());
    }

    #[tokio::test]
    async fn folding_keys_by_ipv4_address_and_ipv6_64_and_leaves_other_kinds_alone() {
        let t = crate::auth::testing::TestState::new().await;
        let events = &t.state.events;
        for (ip, id) in [
            ("192.0.2.1", "a"),
            ("192.0.2.2", "b"),
            ("2001:db8:1:2::1", "c"),
            ("2001:db8:1:2:ffff::9", "d"),
            ("2001:db8:1:3::1", "e"),
        ] {
            events
                .record(
                    &from(ip, id),
                    EventKind::CorsRejected,
                    None,
                    serde_json::json!({}),
                )
                .await;
            events
                .record(
                    &from(ip, id),
                    EventKind::SuspiciousInput,
                    None,
                    serde_json::json!({}),
                )
                .await;
            events
                .record(
                    &from(ip, id),
                    EventKind::LoginFailed,
                    None,
                    serde_json::json!({}),
                )
                .await;
            events
                .record(
                    &from(ip, id),
                    EventKind::LoginFailed,
                    None,
                    serde_json::json!({}),
                )
                .await;
        }
        let mut ids: Vec<String> = stored(&t, "cors_rejected")
            .await
            .into_iter()
            .map(|r| r.1)
            .collect();
        ids.sort();
        assert_eq!(ids, ["a", "b", "c", "e"], "one /64 is one client");
        assert_eq!(
            stored(&t, "suspicious_input").await.len(),
            4,
            "kinds fold apart"
        );
        assert_eq!(
            stored(&t, "login_failed").await.len(),
            10,
            "other kinds never fold"
        );
        events.flush().await;
        let c = stored(&t, "cors_rejected").await;
        let c = c.iter().find(|r| r.1 == "c").unwrap();
        assert_eq!(c.2["repeats"], 1);
    }

    #[test]
    fn a_full_table_folds_new_clients_into_one_overflow_window_per_kind() {
        let mut folding = Folding::default();
        let now = 0;
        for i in 0..FOLD_MAX_CLIENTS {
            let client = format!("client-{i}");
            let (fold, _) =
                folding.occur(EventKind::TokenInvalid, &client, "r", Uuid::new_v4(), now);
            assert!(matches!(fold, Fold::First { overflow: false }));
        }
        let (first, _) =
            folding.occur(EventKind::TokenInvalid, "late-1", "r1", Uuid::new_v4(), now);
        assert!(matches!(first, Fold::First { overflow: true }));
        for i in 0..100 {
            let (fold, _) = folding.occur(
                EventKind::TokenInvalid,
                &format!("late-{i}"),
                "r",
                Uuid::new_v4(),
                now,
            );
            assert!(matches!(fold, Fold::Repeat));
        }
        let (other_kind, _) =
            folding.occur(EventKind::CorsRejected, "late-1", "r", Uuid::new_v4(), now);
        assert!(matches!(other_kind, Fold::First { overflow: true }));
        // A tracked client still folds into its own window.
        let (own, _) = folding.occur(
            EventKind::TokenInvalid,
            "client-7",
            "r",
            Uuid::new_v4(),
            now,
        );
        assert!(matches!(own, Fold::Repeat));
        assert_eq!(folding.open.len(), FOLD_MAX_CLIENTS);
        assert_eq!(folding.overflow.len(), 2);
        let closed = folding.close(now + FOLD_WINDOW_MS, false);
        assert_eq!(closed.len(), FOLD_MAX_CLIENTS + 2);
        let overflow = closed
            .iter()
            .find(|w| w.client == OVERFLOW_CLIENT && w.kind == EventKind::TokenInvalid)
            .unwrap();
        assert_eq!(
            (overflow.repeats, overflow.request_id.as_str()),
            (100, "r1")
        );
        assert!(folding.open.is_empty() && folding.overflow.is_empty());
    }

    #[test]
    fn the_client_key_is_never_coarser_than_the_rate_limiters() {
        assert_eq!(client_key("192.0.2.1"), "192.0.2.1");
        assert_eq!(client_key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::");
        assert_eq!(client_key(""), "unknown");
    }

    #[test]
    fn a_user_agent_is_bounded_and_printable() {
        let ua = clean_user_agent(&format!("evil\r\nX-Injected: 1{}", "a".repeat(500)));
        assert!(!ua.contains('\n'));
        assert_eq!(ua.chars().count(), 200);
    }
}
