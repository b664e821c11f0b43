//! Server-side sessions of the browser pages: the `__Host-rampart_session` cookie, the
//! keys derived from `RAMPART_SESSION_SECRET`, and the SQL store (the source of truth on
//! both backends).
//!
//! ```text
//! let session = store.create(None, &ctx, now).await?;      // GET /login: pre-login
//! let signed = store.rotate(&session, Some(login), now).await?; // login: a new id
//! store.destroy(&signed).await?;                            // logout
//! ```
//!
//! # Security
//! - The cookie value is 256 random bits; the database keeps only its HMAC-SHA256 under a
//!   key derived from the session secret, so neither a database leak nor a log line hands
//!   out a live session. [`SessionId`] never formats its value.
//! - Expiry (idle and absolute) is judged with the app's [`Clock`](crate::clock::Clock)
//!   time; an expired row is deleted when met, and every new session sweeps the expired
//!   rows of all.
//! - The id is replaced at login and at every privilege change (password, MFA, role);
//!   the old row is deleted in the same step, so a fixed or stolen pre-login id is dead.

use aws_lc_rs::hmac;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sqlx::Row as _;
use uuid::Uuid;

use super::cache::{Cache, Cached};
use crate::{
    auth::random::{looks_like_token, new_token},
    security_events::{EventContext, clean_user_agent},
    store::{Db, users::parse_uuid},
};

/// The session cookie's name: `__Host-` makes the browser refuse it unless it is `Secure`,
/// has `Path=/` and no `Domain` (RFC 6265bis §4.1.3.2).
pub const COOKIE: &str = "__Host-rampart_session";

/// The `Set-Cookie` value that hands `id` to the browser: exactly the attributes of
/// API.md §9, on every scheme (browsers treat `http://127.0.0.1` as a secure context).
pub fn set_cookie(id: &SessionId) -> String {
    format!("{COOKIE}={}; HttpOnly; Secure; SameSite=Lax; Path=/", id.0)
}

/// The `Set-Cookie` value that removes the cookie (after logout).
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=0")
}

/// The session id a request's `Cookie` header carries, if it has the shape of one.
pub fn cookie_id(headers: &http::HeaderMap) -> Option<SessionId> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
        .filter(|v| looks_like_token(v))
        .map(|v| SessionId(v.to_owned()))
}

/// A session id as the cookie carries it. Its `Debug` is redacted: it is a credential.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

impl SessionId {
    fn fresh() -> Self {
        Self(new_token())
    }
}

/// The HMAC keys of the pages, derived from `RAMPART_SESSION_SECRET` with HKDF-SHA256
/// (RFC 5869), one per purpose, so a secret of any length works and no purpose's tag can
/// stand in for another's.
pub struct Keys {
    storage: hmac::Key,
    csrf: hmac::Key,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

/// HKDF-SHA256 with an output of one hash length: PRK = HMAC(salt, IKM), OKM = T(1) =
/// HMAC(PRK, info || 0x01) (RFC 5869 §2.2–2.3). Infallible for this length.
fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, salt), ikm);
    let mut input = info.to_vec();
    input.push(1);
    let okm = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()), &input);
    let mut out = [0u8; 32];
    out.copy_from_slice(&okm.as_ref()[..32]);
    out
}

const SALT: &[u8] = b"rampart browser pages v1";

impl Keys {
    /// Derive the keys from `secret`.
    pub fn derive(secret: &[u8]) -> Self {
        let key = |info: &[u8]| hmac::Key::new(hmac::HMAC_SHA256, &hkdf_sha256(SALT, secret, info));
        Self {
            storage: key(b"session id storage"),
            csrf: key(b"csrf token"),
        }
    }

    /// The stored form of a session id: its HMAC, hex.
    fn storage_key(&self, id: &SessionId) -> String {
        hmac::sign(&self.storage, id.0.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The CSRF token of session `id`: HMAC-SHA256 over the id, base64url.
    pub fn csrf_token(&self, id: &SessionId) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.csrf, id.0.as_bytes()).as_ref())
    }

    /// Whether `token` is the CSRF token of session `id`, compared in constant time
    /// (`hmac::verify`).
    pub fn csrf_matches(&self, id: &SessionId, token: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(token.as_bytes()) {
            Ok(tag) => hmac::verify(&self.csrf, id.0.as_bytes(), &tag).is_ok(),
            Err(_) => false,
        }
    }
}

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// Without a request, a session ends after this many milliseconds.
    pub idle_ms: i64,
    /// A session ends this many milliseconds after it began.
    pub absolute_ms: i64,
}

/// Who signed in to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedInAs {
    /// The account.
    pub user_id: Uuid,
    /// The session family its login opened.
    pub family_id: Uuid,
}

/// A live browser session.
#[derive(Debug, Clone)]
pub struct BrowserSession {
    /// The id the cookie carries.
    pub id: SessionId,
    key: String,
    /// The account, once signed in.
    pub signed_in: Option<SignedInAs>,
    /// The role the account had when this id was issued.
    pub role: Option<String>,
    /// The hash of the step-up token of a login waiting for its second factor.
    pub mfa_pending: Option<String>,
    /// When the session began (Unix ms); the absolute expiry counts from here.
    pub created_at: i64,
    /// The last request (Unix ms), at a minute's resolution.
    pub last_seen_at: i64,
    /// The absolute expiry (Unix ms).
    pub expires_at: i64,
}

/// Why a session gets a new id.
#[derive(Debug, Clone, Copy)]
pub enum Rotation<'a> {
    /// A login: the account and its role.
    Login(SignedInAs, &'a str),
    /// A privilege change of the signed-in account (password, MFA), or its role changed
    /// (the new role).
    Privilege(Option<&'a str>),
}

impl BrowserSession {
    fn cached(&self) -> Cached {
        Cached {
            user_id: self.signed_in.map(|s| s.user_id.to_string()),
            family_id: self.signed_in.map(|s| s.family_id.to_string()),
            role: self.role.clone(),
            mfa_pending: self.mfa_pending.clone(),
            created_at: self.created_at,
            last_seen_at: self.last_seen_at,
            expires_at: self.expires_at,
        }
    }

    fn from_cached(id: &SessionId, key: &str, copy: Cached) -> Result<Self, sqlx::Error> {
        let user_id = opt_uuid(copy.user_id)?;
        let family_id = opt_uuid(copy.family_id)?;
        Ok(Self {
            id: id.clone(),
            key: key.to_owned(),
            signed_in: user_id
                .zip(family_id)
                .map(|(user_id, family_id)| SignedInAs { user_id, family_id }),
            role: copy.role,
            mfa_pending: copy.mfa_pending,
            created_at: copy.created_at,
            last_seen_at: copy.last_seen_at,
            expires_at: copy.expires_at,
        })
    }
}

/// How often `last_seen_at` is written: a request within this of the last write leaves it.
const TOUCH_EVERY_MS: i64 = 60_000;

/// The sessions, in the database.
#[derive(Debug, Clone)]
pub struct SessionStore {
    db: Db,
    keys: std::sync::Arc<Keys>,
    lifetimes: Lifetimes,
    cache: Option<Cache>,
}

fn opt_uuid(raw: Option<String>) -> Result<Option<Uuid>, sqlx::Error> {
    raw.map(|r| parse_uuid(&r)).transpose()
}

impl SessionStore {
    /// Sessions in `db`, ids stored under `keys`, with `cache` (Redis) in front.
    pub fn new(
        db: Db,
        keys: std::sync::Arc<Keys>,
        lifetimes: Lifetimes,
        cache: Option<Cache>,
    ) -> Self {
        Self {
            db,
            keys,
            lifetimes,
            cache,
        }
    }

    fn idle_end(&self, s: &BrowserSession) -> i64 {
        s.last_seen_at.saturating_add(self.lifetimes.idle_ms)
    }

    async fn cache_put(&self, s: &BrowserSession, now: i64) {
        if let Some(cache) = &self.cache {
            cache.put(&s.key, &s.cached(), self.idle_end(s), now).await;
        }
    }

    async fn cache_forget(&self, keys: &[String]) {
        if let Some(cache) = &self.cache {
            cache.forget(keys).await;
        }
    }

    /// The keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Open a session (pre-login when `signed_in` is `None`) and sweep expired ones.
    pub async fn create(
        &self,
        signed_in: Option<SignedInAs>,
        role: Option<&str>,
        ctx: &EventContext,
        now: i64,
    ) -> Result<BrowserSession, sqlx::Error> {
        self.sweep(now).await?;
        let id = SessionId::fresh();
        let session = BrowserSession {
            key: self.keys.storage_key(&id),
            id,
            signed_in,
            role: role.map(str::to_owned),
            mfa_pending: None,
            created_at: now,
            last_seen_at: now,
            expires_at: now.saturating_add(self.lifetimes.absolute_ms),
        };
        self.insert(&session, ctx).await?;
        Ok(session)
    }

    async fn insert(&self, s: &BrowserSession, ctx: &EventContext) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO browser_sessions (id_hash, user_id, family_id, role, mfa_pending, \
             created_at, last_seen_at, expires_at, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&s.key)
        .bind(s.signed_in.map(|a| a.user_id.to_string()))
        .bind(s.signed_in.map(|a| a.family_id.to_string()))
        .bind(s.role.clone())
        .bind(s.mfa_pending.clone())
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(&ctx.ip)
        .bind(clean_user_agent(&ctx.user_agent))
        .execute(self.db.pool())
        .await?;
        self.cache_put(s, s.last_seen_at).await;
        Ok(())
    }

    /// Delete every session past its idle or absolute expiry.
    pub async fn sweep(&self, now: i64) -> Result<u64, sqlx::Error> {
        let done = sqlx::query(
            "DELETE FROM browser_sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
        )
        .bind(now)
        .bind(now.saturating_sub(self.lifetimes.idle_ms))
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// The live session of `id`, its last use noted; an expired one is deleted. The cache
    /// answers first when there is one; a miss, an error or an expired copy goes to the
    /// database.
    pub async fn load(
        &self,
        id: &SessionId,
        now: i64,
    ) -> Result<Option<BrowserSession>, sqlx::Error> {
        let key = self.keys.storage_key(id);
        if let Some(cache) = &self.cache
            && let Some(copy) = cache.get(&key, now).await
            && let Ok(session) = BrowserSession::from_cached(id, &key, copy)
            && now < session.expires_at
            && now < self.idle_end(&session)
        {
            return self.touched(session, now).await.map(Some);
        }
        let row = sqlx::query(
            "SELECT user_id, family_id, role, mfa_pending, created_at, last_seen_at, expires_at \
             FROM browser_sessions WHERE id_hash = $1",
        )
        .bind(&key)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let copy = Cached {
            user_id: row.try_get("user_id")?,
            family_id: row.try_get("family_id")?,
            role: row.try_get("role")?,
            mfa_pending: row.try_get("mfa_pending")?,
            created_at: row.try_get("created_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            expires_at: row.try_get("expires_at")?,
        };
        let session = BrowserSession::from_cached(id, &key, copy)?;
        if now >= session.expires_at || now >= self.idle_end(&session) {
            self.destroy(&session).await?;
            return Ok(None);
        }
        if now - session.last_seen_at < TOUCH_EVERY_MS {
            self.cache_put(&session, now).await;
            return Ok(Some(session));
        }
        self.touched(session, now).await.map(Some)
    }

    /// `session` with its last use noted (at a minute's resolution), in the database and
    /// the cache.
    async fn touched(
        &self,
        mut session: BrowserSession,
        now: i64,
    ) -> Result<BrowserSession, sqlx::Error> {
        if now - session.last_seen_at >= TOUCH_EVERY_MS {
            sqlx::query("UPDATE browser_sessions SET last_seen_at = $1 WHERE id_hash = $2")
                .bind(now)
                .bind(&session.key)
                .execute(self.db.pool())
                .await?;
            session.last_seen_at = now;
            self.cache_put(&session, now).await;
        }
        Ok(session)
    }

    /// Replace `old` by a session with a new id (login, privilege change). The old id is
    /// dead at once.
    pub async fn rotate(
        &self,
        old: &BrowserSession,
        change: Rotation<'_>,
        ctx: &EventContext,
        now: i64,
    ) -> Result<BrowserSession, sqlx::Error> {
        self.destroy(old).await?;
        let id = SessionId::fresh();
        let mut fresh = BrowserSession {
            key: self.keys.storage_key(&id),
            id,
            mfa_pending: None,
            last_seen_at: now,
            ..old.clone()
        };
        match change {
            Rotation::Login(who, role) => {
                // A login starts both lifetimes afresh; a privilege change does not.
                fresh.signed_in = Some(who);
                fresh.role = Some(role.to_owned());
                fresh.created_at = now;
                fresh.expires_at = now.saturating_add(self.lifetimes.absolute_ms);
            }
            Rotation::Privilege(Some(role)) => fresh.role = Some(role.to_owned()),
            Rotation::Privilege(None) => {}
        }
        self.insert(&fresh, ctx).await?;
        Ok(fresh)
    }

    /// Note (or with `None` clear) the step-up token a login in this session waits on.
    pub async fn set_mfa_pending(
        &self,
        session: &BrowserSession,
        token_hash: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE browser_sessions SET mfa_pending = $1 WHERE id_hash = $2")
            .bind(token_hash)
            .bind(&session.key)
            .execute(self.db.pool())
            .await?;
        self.cache_forget(std::slice::from_ref(&session.key)).await;
        Ok(())
    }

    /// End `session`.
    pub async fn destroy(&self, session: &BrowserSession) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM browser_sessions WHERE id_hash = $1")
            .bind(&session.key)
            .execute(self.db.pool())
            .await?;
        self.cache_forget(std::slice::from_ref(&session.key)).await;
        Ok(())
    }

    /// End every browser session of session family `family_id`.
    pub async fn destroy_family(&self, family_id: Uuid) -> Result<(), sqlx::Error> {
        let keys = self
            .keys_where("family_id = $1", family_id.to_string(), String::new())
            .await?;
        sqlx::query("DELETE FROM browser_sessions WHERE family_id = $1")
            .bind(family_id.to_string())
            .execute(self.db.pool())
            .await?;
        self.cache_forget(&keys).await;
        Ok(())
    }

    /// End every browser session of `user_id`, except `keep`'s.
    pub async fn destroy_user(
        &self,
        user_id: Uuid,
        keep: Option<&BrowserSession>,
    ) -> Result<(), sqlx::Error> {
        let keep = keep.map(|k| k.key.clone()).unwrap_or_default();
        let keys = self
            .keys_where(
                "user_id = $1 AND id_hash <> $2",
                user_id.to_string(),
                keep.clone(),
            )
            .await?;
        sqlx::query("DELETE FROM browser_sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user_id.to_string())
            .bind(keep)
            .execute(self.db.pool())
            .await?;
        self.cache_forget(&keys).await;
        Ok(())
    }

    /// The stored keys of the rows matching `condition` (on `$1`, `$2`), for the cache.
    async fn keys_where(
        &self,
        condition: &'static str,
        first: String,
        second: String,
    ) -> Result<Vec<String>, sqlx::Error> {
        if self.cache.is_none() {
            return Ok(Vec::new());
        }
        let sql = match condition {
            "family_id = $1" => "SELECT id_hash FROM browser_sessions WHERE family_id = $1",
            _ => "SELECT id_hash FROM browser_sessions WHERE user_id = $1 AND id_hash <> $2",
        };
        let mut query = sqlx::query(sql).bind(first);
        if sql.contains("$2") {
            query = query.bind(second);
        }
        let rows = query.fetch_all(self.db.pool()).await?;
        rows.iter().map(|r| r.try_get("id_hash")).collect()
    }

    /// The session families of `user_id` that a browser session is signed in to.
    pub async fn browser_families(&self, user_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT DISTINCT family_id FROM browser_sessions WHERE user_id = $1 \
             AND family_id IS NOT NULL",
        )
        .bind(user_id.to_string())
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| parse_uuid(&r.try_get::<String, _>("family_id")?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_derivation_is_rfc_5869_hkdf_sha256() {
        // RFC 5869 test case 1: the first 32 bytes of its OKM are T(1).
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let okm = hkdf_sha256(&salt, &ikm, &info);
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn a_csrf_token_verifies_for_its_session_only_and_under_its_secret_only() {
        let keys = Keys::derive(b"short dev secret");
        let (a, b) = (SessionId::fresh(), SessionId::fresh());
        let token = keys.csrf_token(&a);
        assert!(keys.csrf_matches(&a, &token));
        assert!(!keys.csrf_matches(&b, &token));
        assert!(!keys.csrf_matches(&a, ""));
        assert!(!keys.csrf_matches(&a, "not base64 !!"));
        assert!(!Keys::derive(b"another secret").csrf_matches(&a, &token));
        // The storage key is another derivation: a stored hash is no CSRF token.
        assert_ne!(keys.storage_key(&a), keys.csrf_token(&a));
    }

    #[test]
    fn the_cookie_has_exactly_the_host_prefix_attributes_and_its_id_is_never_printed() {
        let id = SessionId::fresh();
        let cookie = set_cookie(&id);
        assert_eq!(
            cookie,
            format!(
                "__Host-rampart_session={}; HttpOnly; Secure; SameSite=Lax; Path=/",
                id.0
            )
        );
        assert!(!format!("{id:?}").contains(&id.0));
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            format!("a=1; {COOKIE}={}", id.0).parse().unwrap(),
        );
        assert_eq!(cookie_id(&headers), Some(id));
        headers.insert(
            http::header::COOKIE,
            format!("{COOKIE}=' OR 1=1 --").parse().unwrap(),
        );
        assert_eq!(cookie_id(&headers), None);
    }
}
