//! Access tokens: short-lived JWTs signed with Ed25519 (`alg: EdDSA`, `typ: at+jwt`, `kid`),
//! as RFC 9068 profiles them, with the claims of [`AccessClaims`].
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use std::{path::Path, time::Duration};
//! use rampart::auth::{keys::KeyRing, tokens::{TokenService, TokenSettings}};
//!
//! let now = time::OffsetDateTime::now_utc();
//! let keys = KeyRing::load(Path::new("data/keys"), now, Duration::from_secs(15 * 60))?;
//! let tokens = TokenService::new(keys, TokenSettings::new("https://api.example.com"))?;
//! let (token, _claims) =
//!     tokens.issue(uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), "user", now.unix_timestamp())?;
//! let claims = tokens.verify(&token, now.unix_timestamp())?;
//! # let _ = claims;
//! # Ok(())
//! # }
//! ```
//!
//! # Security
//!
//! - Only `EdDSA` is accepted, checked before any key is chosen: `alg: none`, HMAC tokens
//!   keyed with the public key (algorithm confusion), RSA and ECDSA tokens are invalid.
//! - The `kid` picks among the ring's own keys only; an unknown or retired kid is invalid.
//!   Nothing in a token (`jku`, `jwk`, `x5u`, `x5c`) is ever used to find a key, and a token
//!   with `crit` is refused (RFC 7515 §4.1.11: we understand no extension).
//! - `typ` must be `at+jwt` (RFC 9068 §4), so no other JWT signed by these keys passes.
//! - [`TokenError::Expired`] is reported only for a token whose signature, issuer and
//!   audience are good; anything else is [`TokenError::Invalid`], which says nothing more.
//! - Time is passed in: `exp` and `nbf` are checked here against the caller's `now`, with a
//!   leeway of at most 30 s.
//! - This checks the token alone. Whether the user is still active and the session family
//!   not revoked is the caller's check, on every request.

use std::{fmt, sync::Arc, time::Duration};

use anyhow::{Context as _, bail};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    keys::KeyRing,
    token_cache::{self, TokenCache, Verified},
};

/// The `aud` of every access token.
pub const AUDIENCE: &str = "rampart";
/// The `typ` header of an access token (RFC 9068 §2.1).
pub const TOKEN_TYPE: &str = "at+jwt";
/// The default access-token lifetime: 15 minutes.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// The default clock-skew leeway on `exp` and `nbf`: 30 seconds, also the most allowed.
pub const DEFAULT_LEEWAY: Duration = MAX_LEEWAY;
/// The largest leeway [`TokenService::new`] accepts.
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);

/// How long a signing key keeps verifying after it stopped signing: the longest token it
/// signed (`access_token_lifetime`) plus the verification leeway. Used by the server when it
/// loads and reloads the keys, and by `keys rotate`.
pub fn key_retention(access_token_lifetime: Duration) -> Duration {
    access_token_lifetime + DEFAULT_LEEWAY
}
/// Longer than any token this service issues (about 500 bytes): refused unparsed.
const MAX_TOKEN_LEN: usize = 4096;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the public URL.
    pub iss: String,
    /// Audience: [`AUDIENCE`].
    pub aud: String,
    /// The user's id.
    pub sub: Uuid,
    /// The session family (one per login).
    pub sid: Uuid,
    /// The user's role when the token was issued.
    pub role: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Not before, Unix seconds.
    pub nbf: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// A random token id (UUID v4).
    pub jti: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Signed by us for this audience and issuer, but past `exp` + leeway.
    #[error("token expired")]
    Expired,
    /// Anything else: malformed, wrong algorithm or type, unknown key, bad signature, wrong
    /// issuer or audience, not yet valid, a claim missing.
    #[error("invalid token")]
    Invalid,
}

/// How [`TokenService`] issues and checks tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// `iss`: the public URL.
    pub issuer: String,
    /// `aud`: [`AUDIENCE`] by default.
    pub audience: String,
    /// From `iat` to `exp`: [`DEFAULT_LIFETIME`] by default; at most the key ring's
    /// `max_token_lifetime`.
    pub lifetime: Duration,
    /// Clock skew allowed on `exp` and `nbf`: [`DEFAULT_LEEWAY`] by default, at most
    /// [`MAX_LEEWAY`].
    pub leeway: Duration,
}

impl TokenSettings {
    /// The defaults, for tokens issued by `issuer` (the public URL).
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: AUDIENCE.to_owned(),
            lifetime: DEFAULT_LIFETIME,
            leeway: DEFAULT_LEEWAY,
        }
    }
}

/// Issues and verifies access tokens with the keys of a [`KeyRing`]. Cheap to clone.
#[derive(Clone)]
pub struct TokenService {
    inner: Arc<Inner>,
}

struct Inner {
    keys: KeyRing,
    issuer: String,
    audience: String,
    lifetime: Duration,
    lifetime_secs: i64,
    leeway_secs: i64,
    validation: Validation,
}

impl TokenService {
    /// Build the service. Fails on an empty issuer or audience, a zero lifetime, a lifetime
    /// longer than the ring keeps replaced keys verifying, or a leeway over [`MAX_LEEWAY`].
    pub fn new(keys: KeyRing, settings: TokenSettings) -> anyhow::Result<Self> {
        let TokenSettings {
            issuer,
            audience,
            lifetime,
            leeway,
        } = settings;
        if issuer.trim().is_empty() {
            bail!("the token issuer must not be empty");
        }
        if audience.trim().is_empty() {
            bail!("the token audience must not be empty");
        }
        if lifetime < Duration::from_secs(1) {
            bail!("the access-token lifetime must be at least one second");
        }
        if lifetime > keys.max_token_lifetime() {
            bail!(
                "the access-token lifetime ({} s) is longer than the signing keys are kept verifying ({} s)",
                lifetime.as_secs(),
                keys.max_token_lifetime().as_secs()
            );
        }
        if leeway > MAX_LEEWAY {
            bail!(
                "the token leeway must be at most {} s",
                MAX_LEEWAY.as_secs()
            );
        }
        let lifetime_secs =
            i64::try_from(lifetime.as_secs()).context("the access-token lifetime is too long")?;
        let leeway_secs = i64::try_from(leeway.as_secs()).unwrap_or(0);

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        // The clock is injected: `exp` and `nbf` are checked in `verify` against its `now`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;

        Ok(Self {
            inner: Arc::new(Inner {
                keys,
                issuer,
                audience,
                lifetime,
                lifetime_secs,
                leeway_secs,
                validation,
            }),
        })
    }

    /// Issue a token for user `sub` in session family `sid`, valid from `now_unix` for the
    /// configured lifetime, signed with the current key.
    pub fn issue(
        &self,
        sub: Uuid,
        sid: Uuid,
        role: &str,
        now_unix: i64,
    ) -> anyhow::Result<(String, AccessClaims)> {
        let inner = &*self.inner;
        let claims = AccessClaims {
            iss: inner.issuer.clone(),
            aud: inner.audience.clone(),
            sub,
            sid,
            role: role.to_owned(),
            iat: now_unix,
            nbf: now_unix,
            exp: now_unix
                .checked_add(inner.lifetime_secs)
                .context("the token expiry overflows")?,
            jti: Uuid::new_v4().to_string(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.to_owned());
        header.kid = Some(inner.keys.current_kid().to_owned());
        let token = jsonwebtoken::encode(&header, &claims, inner.keys.signing_key())
            .context("signing an access token")?;
        Ok((token, claims))
    }

    /// Verify `token` at `now_unix`: algorithm, type, key, signature, issuer, audience,
    /// required claims, then `nbf` and `exp` with the leeway.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<AccessClaims, TokenError> {
        self.verify_with_kid(token, now_unix)
            .map(|(claims, _)| claims)
    }

    /// [`Self::verify`], also answering the `kid` of the key that verified.
    fn verify_with_kid(
        &self,
        token: &str,
        now_unix: i64,
    ) -> Result<(AccessClaims, String), TokenError> {
        let inner = &*self.inner;
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        // `alg: none` and unknown algorithms fail to parse here.
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        // Decided before a key is chosen, so no key is ever used with another algorithm.
        if header.alg != Algorithm::EdDSA
            || !header.typ.as_deref().is_some_and(is_access_token_type)
            || header.crit.is_some()
        {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.as_deref().ok_or(TokenError::Invalid)?;
        let key = inner
            .keys
            .verifying_key(kid, now_unix)
            .ok_or(TokenError::Invalid)?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &inner.validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        // Also checked by `decode`; kept here so the policy reads in one place.
        if claims.iss != inner.issuer || claims.aud != inner.audience {
            return Err(TokenError::Invalid);
        }
        self.check_times(&claims, now_unix)?;
        Ok((claims, kid.to_owned()))
    }

    /// `nbf` and `exp` against `now_unix`, with the leeway: the part of [`Self::verify`]
    /// that depends on the time, so it runs again on every use of a cached verification.
    fn check_times(&self, claims: &AccessClaims, now_unix: i64) -> Result<(), TokenError> {
        let leeway = self.inner.leeway_secs;
        if claims.nbf > now_unix.saturating_add(leeway) {
            return Err(TokenError::Invalid);
        }
        if now_unix > claims.exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        Ok(())
    }

    /// The access-token lifetime (`expires_in` of a login answer).
    pub fn lifetime(&self) -> Duration {
        self.inner.lifetime
    }

    /// The keys this service signs and verifies with.
    pub fn keys(&self) -> &KeyRing {
        &self.inner.keys
    }
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("TokenService")
            .field("keys", &inner.keys)
            .field("issuer", &inner.issuer)
            .field("audience", &inner.audience)
            .field("lifetime", &inner.lifetime)
            .field("leeway_secs", &inner.leeway_secs)
            .finish()
    }
}

/// RFC 9068 §4: `at+jwt` or `application/at+jwt`; media types compare case-insensitively.
fn is_access_token_type(typ: &str) -> bool {
    typ.eq_ignore_ascii_case(TOKEN_TYPE) || typ.eq_ignore_ascii_case("application/at+jwt")
}

#[cfg(test)]
mod tests;

/// A [`TokenService`] whose key ring is re-read from its directory, so a running server
/// starts signing with a key made by `rampart keys rotate` (and publishes it in the JWKS)
/// without a restart. Cheap to clone; every clone sees the reloads.
///
/// Its [`verify`](Self::verify) remembers the tokens that verified in a bounded
/// [`TokenCache`] keyed by the whole token, so a token presented again skips the
/// signature check (but never the time checks, nor the check that its key still
/// verifies). The cache is emptied whenever a reload changes the keys.
#[derive(Clone)]
pub struct SharedTokens {
    current: Arc<std::sync::RwLock<TokenService>>,
    settings: TokenSettings,
    cache: Arc<TokenCache>,
}

impl std::fmt::Debug for SharedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTokens").finish_non_exhaustive()
    }
}

impl SharedTokens {
    /// Share `keys` with `settings`.
    pub fn new(keys: KeyRing, settings: TokenSettings) -> anyhow::Result<Self> {
        for warning in keys.warnings() {
            tracing::warn!(warning = warning.as_str(), "signing keys");
        }
        let service = TokenService::new(keys, settings.clone())?;
        Ok(Self {
            current: Arc::new(std::sync::RwLock::new(service)),
            settings,
            cache: Arc::new(TokenCache::new(token_cache::DEFAULT_CAPACITY)),
        })
    }

    /// The service as of the last reload.
    pub fn get(&self) -> TokenService {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Issue with the current key (see [`TokenService::issue`]).
    pub fn issue(
        &self,
        sub: Uuid,
        sid: Uuid,
        role: &str,
        now_unix: i64,
    ) -> anyhow::Result<(String, AccessClaims)> {
        self.get().issue(sub, sid, role, now_unix)
    }

    /// Verify (see [`TokenService::verify`]): a token that verified before and is still in
    /// the cache skips the signature check; its `nbf`, `exp` and key are checked again.
    pub fn verify(&self, token: &str, now_unix: i64) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let service = self.get();
        if let Some(hit) = self.cache.get(token)
            && service.keys().verifying_key(&hit.kid, now_unix).is_some()
        {
            service.check_times(&hit.claims, now_unix)?;
            return Ok(hit.claims.clone());
        }
        let (claims, kid) = service.verify_with_kid(token, now_unix)?;
        self.cache.insert(
            token,
            Verified {
                claims: claims.clone(),
                kid,
            },
        );
        Ok(claims)
    }

    /// The cache of verified tokens.
    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    /// The JWKS of the keys that may verify.
    pub fn jwks(&self) -> serde_json::Value {
        self.get().keys().jwks()
    }

    /// Re-read the key directory; keep the old ring when the new one cannot be loaded.
    pub fn reload(&self, dir: &std::path::Path, now: time::OffsetDateTime, retention: Duration) {
        let service = crate::auth::keys::KeyRing::load(dir, now, retention)
            .and_then(|keys| TokenService::new(keys, self.settings.clone()));
        match service {
            Ok(service) => {
                if let Ok(mut guard) = self.current.write() {
                    if guard.keys().current_kid() != service.keys().current_kid() {
                        tracing::info!(kid = service.keys().current_kid(), "signing key changed");
                    }
                    // Logged once, when it appears, not at every reload.
                    for warning in service.keys().warnings() {
                        if !guard.keys().warnings().contains(warning) {
                            tracing::warn!(warning = warning.as_str(), "signing keys");
                        }
                    }
                    // A key removed or replaced under its kid ends its cached tokens at once.
                    if guard.keys().jwks() != service.keys().jwks() {
                        self.cache.clear();
                    }
                    *guard = service;
                }
            }
            Err(e) => tracing::error!(error = format!("{e:#}"), "signing keys not reloaded"),
        }
    }
}

#[cfg(test)]
mod cache_tests;
