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
mod tests {
    use std::path::Path;

    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    use jsonwebtoken::EncodingKey;
    use serde_json::{Value, json};
    use time::OffsetDateTime;

    use super::*;

    /// 2026-11-22T22:33:20Z.
    const T0: i64 = 1_795_386_800;
    const ISSUER: &str = "https://api.example.test";
    const LEEWAY: i64 = 30;
    const LIFETIME: i64 = 900;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(T0 + secs).unwrap()
    }

    fn ring(dir: &Path, now: i64) -> KeyRing {
        KeyRing::load_or_generate(dir, at(now), DEFAULT_LIFETIME).unwrap()
    }

    fn service(keys: KeyRing) -> TokenService {
        TokenService::new(keys, TokenSettings::new(ISSUER)).unwrap()
    }

    fn issue(tokens: &TokenService, now: i64) -> (String, AccessClaims) {
        tokens
            .issue(Uuid::new_v4(), Uuid::new_v4(), "user", T0 + now)
            .unwrap()
    }

    fn b64(json: &Value) -> String {
        URL_SAFE_NO_PAD.encode(json.to_string())
    }

    fn part(token: &str, i: usize) -> Value {
        let raw = URL_SAFE_NO_PAD
            .decode(token.split('.').nth(i).unwrap())
            .unwrap();
        serde_json::from_slice(&raw).unwrap()
    }

    /// The public key as an attacker reads it from the JWKS.
    fn public_x(tokens: &TokenService) -> String {
        tokens.keys().jwks()["keys"][0]["x"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Sign any header and claims with the service's own current key.
    fn sign_with_our_key(tokens: &TokenService, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, tokens.keys().signing_key()).unwrap()
    }

    fn our_header(tokens: &TokenService) -> Header {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.to_owned());
        header.kid = Some(tokens.keys().current_kid().to_owned());
        header
    }

    #[test]
    fn an_issued_token_verifies_and_carries_its_claims() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = service(ring(tmp.path(), 0));
        let (sub, sid) = (Uuid::new_v4(), Uuid::new_v4());
        let (token, claims) = tokens.issue(sub, sid, "admin", T0).unwrap();

        assert_eq!(tokens.verify(&token, T0), Ok(claims.clone()));
        assert_eq!(claims.iss, ISSUER);
        assert_eq!(claims.aud, AUDIENCE);
        assert_eq!((claims.sub, claims.sid), (sub, sid));
        assert_eq!(claims.role, "admin");
        assert_eq!(
            (claims.iat, claims.nbf, claims.exp),
            (T0, T0, T0 + LIFETIME)
        );
        assert_eq!(Uuid::parse_str(&claims.jti).unwrap().get_version_num(), 4);

        let header = part(&token, 0);
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["kid"], tokens.keys().current_kid());
        assert_eq!(tokens.lifetime(), DEFAULT_LIFETIME);
    }

    #[test]
    fn every_token_gets_its_own_jti() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = service(ring(tmp.path(), 0));
        assert_ne!(issue(&tokens, 0).1.jti, issue(&tokens, 0).1.jti);
    }

    #[test]
    fn an_alg_none_token_is_invalid() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = service(ring(tmp.path(), 0));
        let (token, _) = issue(&tokens, 0);
        let payload = token.split('.').nth(1).unwrap();
        let kid = tokens.keys().current_kid();
        for alg in ["none", "None", "NONE"] {
            let header = b64(&json!({"alg": alg, "typ": "at+jwt", "kid": kid}));
            let forged = format!("{header}.{payload}.");
            assert_eq!(
                tokens.verify(&forged, T0),
                Err(TokenError::Invalid),
                "{alg}"
            );
        }
    }

    #[test]
    fn hmac_tokens_keyed_with_the_public_key_are_invalid() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = service(ring(tmp.path(), 0));
        let (_, claims) = issue(&tokens, 0);
        let x = public_x(&tokens);
        let raw = URL_SAFE_NO_PAD.decode(&x).unwrap();
        // The SubjectPublicKeyInfo PEM of the same key (RFC 8410), as a confused verifier
        // would read it from a file.
        let mut spki = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        spki.extend_from_slice(&raw);
        let public_pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&spki)
        );
        let private_pem = std::fs::read(
            tmp.path()
                .join(format!("{}.pem", tokens.keys().current_kid())),
        )
        .unwrap();
        let secrets: [&[u8]; 4] = [&raw, x.as_bytes(), public_pem.as_bytes(), &private_pem];
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            for secret in secrets {
                let mut header = Header::new(alg);
                header.typ = Some(TOKEN_TYPE.to_owned());
                header.kid = Some(tokens.keys().current_kid().to_owned());
                let forged =
                    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret))
                        .unwrap();
                assert_eq!(tokens.verify(&forged, T0), Err(TokenError::Invalid));
            }
        }
    }

    #[test]
    fn rsa_and_ecdsa_headers_are_invalid_even_over_a_good_signature() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = service(ring(tmp.path(), 0));
        let (token, _) = issue(&tokens, 0);
        let mut pieces = token.split('.');
        let (_, payload, signature) = (
            pieces.next().unwrap(),
            pieces.next().unwrap(),
            pieces.next().unwrap(),
        );
        let kid = tokens.keys().current_kid();
        for alg in ["RS256", "PS256", "ES256", "ES384", "Ed25519", "eddsa"] {
            let header = b64(&json!({"alg": alg, "typ": "at+jwt", "kid": kid}));
            let forged = format!("{header}.{payload}.{signature}");
            assert_eq!(
                tokens.verify(&forged, T0),
                Err(TokenError::Invalid),
                "{alg}"
            );
        }
    }

    #[test]
    fn a_token_with_an_unknown_or_missing_kid_is_invalid() {
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        let tokens = service(ring(ours.path(), 0));
        let attacker = service(ring(theirs.path(), 0));

        // Their key, their kid: not one of ours.
        let (forged, _) = issue(&attacker, 0);
        assert_eq!(tokens.verify(&forged, T0), Err(TokenError::Invalid));

        // Their key under our kid: the signature fails.
        let (_, claims) = issue(&attacker, 0);
        let mut header = our_header(&attacker);
        header.kid = Some(tokens.keys().current_kid().to_owned());
        let forged = jsonwebtoken::encode(&header, &claims, attacker.keys().signing_key()).unwrap();
        assert_eq!(tokens.verify(&forged, T0), Err(TokenError::Invalid));

        // Our key, no kid or a path for a kid.
        let claims = serde_json::to_value(issue(&tokens, 0).1).unwrap();
        let mut header = our_header(&tokens);
        header.kid = None;
        let token = sign_with_our_key(&tokens, &header, &claims);
        assert_eq!(tokens.verify(&token, T0), Err(TokenError::Invalid));
        header.kid = Some(format!("../{}", tokens.keys().current_kid()));
        let token = sign_with_our_key(&tokens, &header, &claims);
        assert_eq!(tokens.verify(&token, T0), Err(TokenError::Invalid));
    }

    #[test]
    fn a_tampered_payload_is_invalid() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = service(ring(tmp.path(), 0));
        let (token, claims) = issue(&tokens, 0);
        let pieces: Vec<&str> = token.split('.').collect();
        let mut payload = part(&token, 1);
        payload["role"] = json!("admin");
        let forged = format!("{}.{}.{}", pieces[0], b64(&payload), pieces[2]);
        assert_eq!(tokens.verify(&forged, T0), Err(TokenError::Invalid));

        // A tampered token is Invalid even once it would have expired.
        let late = claims.exp + LEEWAY + 1;
        assert_eq!(tokens.verify(&forged, late), Err(TokenError::Invalid));
        // A truncated or garbled signature too.
        let cut = &token[..token.len() - 4];
        assert_eq!(tokens.verify(cut, T0), Err(TokenError::Invalid));
        for garbage in ["", ".", "..", "a.b.c", "a.b.c.d", &format!("{token}.")] {
            assert_eq!(
                tokens.verify(garbage, T0),
                Err(TokenError::Invalid),
                "{garbage}"
            );
        }
    }

    #[test]
    fn a_token_for_another_audience_is_invalid() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = service(ring(tmp.path(), 0));
        let other = TokenService::new(
            ring(tmp.path(), 0),
            TokenSettings {
                audience: "billing".to_owned(),
                ..TokenSettings::new(ISSUER)
            },
        )
        .unwrap();
        let (token, claims) = issue(&other, 0);
        assert_eq!(tokens.verify(&token, T0), Err(TokenError::Invalid));
        // Not `Expired` either, once past its expiry.
        let late = claims.exp + LEEWAY + 1;
        assert_eq!(tokens.verify(&token, late), Err(TokenError::Invalid));

        // An audience array holding ours is not our token's shape.
        let mut payload = serde_json::to_value(&claims).unwrap();
        payload["aud"] = json!([AUDIENCE, "billing"]);
        let token = sign_with_our_key(&tokens, &our_header(&tokens), &payload);
        assert_eq!(tokens.verify(&token, T0), Err(TokenError::Invalid));
    }

    #[test]
    fn a_token_from_another_issuer_is_invalid() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = service(ring(tmp.path(), 0));
        let other = service_with_issuer(ring(tmp.path(), 0), "https://evil.example.test");
        let (token, claims) = issue(&other, 0);
        assert_eq!(tokens.verify(&token, T0), Err(TokenError::Invalid));
        let late = claims.exp + LEEWAY + 1;
        assert_eq!(tokens.verify(&token, late), Err(TokenError::Invalid));
    }

    fn service_with_issuer(keys: KeyRing, issuer: &str) -> TokenService {
        TokenService::new(keys, TokenSettings::new(issuer)).unwrap()
    }

    #[test]
    fn a_token_past_its_expiry_and_the_leeway_is_expired_and_within_the_leeway_valid() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = service(ring(tmp.path(), 0));
        let (token, claims) = issue(&tokens, 0);
        assert!(tokens.verify(&token, claims.exp).is_ok());
        assert!(tokens.verify(&token, claims.exp + LEEWAY).is_ok());
        assert_eq!(
            tokens.verify(&token, claims.exp + LEEWAY + 1),
            Err(TokenError::Expired)
        );
        assert_eq!(
            tokens.verify(&token, claims.exp + 86_400),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_not_yet_valid_beyond_the_leeway_is_invalid() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = service(ring(tmp.path(), 0));
        let (token, claims) = issue(&tokens, 0);
        assert!(tokens.verify(&token, claims.nbf - LEEWAY).is_ok());
        assert_eq!(
            tokens.verify(&token, claims.nbf - LEEWAY - 1),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn a_token_missing_a_required_claim_is_invalid() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = service(ring(tmp.path(), 0));
        let (_, claims) = issue(&tokens, 0);
        let full = serde_json::to_value(&claims).unwrap();
        let header = our_header(&tokens);
        assert!(
            tokens
                .verify(&sign_with_our_key(&tokens, &header, &full), T0)
                .is_ok()
        );
        for claim in [
            "iss", "aud", "sub", "sid", "role", "iat", "nbf", "exp", "jti",
        ] {
            let mut payload = full.clone();
            payload.as_object_mut().unwrap().remove(claim);
            let token = sign_with_our_key(&tokens, &header, &payload);
            assert_eq!(
                tokens.verify(&token, T0),
                Err(TokenError::Invalid),
                "{claim}"
            );
        }
        let mut payload = full.clone();
        payload["sub"] = json!("not-a-uuid");
        let token = sign_with_our_key(&tokens, &header, &payload);
        assert_eq!(tokens.verify(&token, T0), Err(TokenError::Invalid));
    }

    #[test]
    fn a_token_of_another_type_signed_by_our_key_is_invalid() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = service(ring(tmp.path(), 0));
        let claims = serde_json::to_value(issue(&tokens, 0).1).unwrap();
        let mut header = our_header(&tokens);
        for typ in [None, Some("JWT"), Some("id+jwt"), Some("")] {
            header.typ = typ.map(str::to_owned);
            let token = sign_with_our_key(&tokens, &header, &claims);
            assert_eq!(
                tokens.verify(&token, T0),
                Err(TokenError::Invalid),
                "{typ:?}"
            );
        }
        header.typ = Some("application/at+jwt".to_owned());
        let token = sign_with_our_key(&tokens, &header, &claims);
        assert!(tokens.verify(&token, T0).is_ok());
    }

    #[test]
    fn a_token_with_a_critical_header_extension_is_invalid() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = service(ring(tmp.path(), 0));
        let claims = serde_json::to_value(issue(&tokens, 0).1).unwrap();
        let mut header = our_header(&tokens);
        header.crit = Some(vec!["exp".to_owned()]);
        let token = sign_with_our_key(&tokens, &header, &claims);
        assert_eq!(tokens.verify(&token, T0), Err(TokenError::Invalid));
    }

    #[test]
    fn a_token_signed_by_a_replaced_key_verifies_until_the_key_retires() {
        let tmp = tempfile::tempdir().unwrap();
        let before = service(ring(tmp.path(), 0));
        let old_kid = before.keys().current_kid().to_owned();
        let (old_token, _) = issue(&before, 10);

        let new_kid = KeyRing::rotate(tmp.path(), at(20), DEFAULT_LIFETIME).unwrap();
        let after = service(KeyRing::load(tmp.path(), at(30), DEFAULT_LIFETIME).unwrap());
        assert_eq!(after.keys().current_kid(), new_kid);
        let (new_token, _) = issue(&after, 30);
        assert_eq!(part(&new_token, 0)["kid"], new_kid.as_str());
        assert!(after.verify(&new_token, T0 + 30).is_ok());
        assert_eq!(part(&old_token, 0)["kid"], old_kid.as_str());
        assert!(after.verify(&old_token, T0 + 30).is_ok());
        // The old key retires at 20 + 900: its tokens are then unknown, not merely expired,
        // both for the ring loaded before and for one loaded after.
        assert!(after.verify(&old_token, T0 + 20 + LIFETIME).is_ok());
        assert_eq!(
            after.verify(&old_token, T0 + 20 + LIFETIME + 1),
            Err(TokenError::Invalid)
        );
        let later_ring = KeyRing::load(tmp.path(), at(20 + LIFETIME + 1), DEFAULT_LIFETIME);
        let later = service(later_ring.unwrap());
        assert_eq!(
            later.verify(&old_token, T0 + 20 + LIFETIME + 1),
            Err(TokenError::Invalid)
        );
        assert!(later.verify(&new_token, T0 + 20 + LIFETIME + 1).is_ok());
    }

    #[test]
    fn unsafe_settings_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let refused =
            |settings: TokenSettings| TokenService::new(ring(tmp.path(), 0), settings).is_err();
        let base = TokenSettings::new(ISSUER);
        assert!(refused(TokenSettings {
            leeway: Duration::from_secs(31),
            ..base.clone()
        }));
        assert!(refused(TokenSettings {
            lifetime: Duration::ZERO,
            ..base.clone()
        }));
        assert!(refused(TokenSettings {
            lifetime: DEFAULT_LIFETIME + Duration::from_secs(1),
            ..base.clone()
        }));
        assert!(refused(TokenSettings::new(" ")));
        assert!(refused(TokenSettings {
            audience: String::new(),
            ..base.clone()
        }));
        assert!(!refused(base));
    }
}

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
mod cache_tests {
    use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
    use serde_json::{Value, json};
    use time::OffsetDateTime;

    use super::*;

    /// 2026-11-22T22:33:20Z.
    const T0: i64 = 1_795_386_800;
    const ISSUER: &str = "https://api.example.test";

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(T0 + secs).unwrap()
    }

    fn shared(dir: &std::path::Path) -> SharedTokens {
        let keys = KeyRing::load_or_generate(dir, at(0), DEFAULT_LIFETIME).unwrap();
        SharedTokens::new(keys, TokenSettings::new(ISSUER)).unwrap()
    }

    fn issue(tokens: &SharedTokens, now: i64) -> String {
        tokens
            .issue(Uuid::new_v4(), Uuid::new_v4(), "user", T0 + now)
            .unwrap()
            .0
    }

    fn with_payload(token: &str, edit: impl FnOnce(&mut Value)) -> String {
        let pieces: Vec<&str> = token.split('.').collect();
        let mut payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(pieces[1]).unwrap()).unwrap();
        edit(&mut payload);
        let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
        format!("{}.{payload}.{}", pieces[0], pieces[2])
    }

    #[test]
    fn a_verified_token_is_cached_and_a_tampered_sibling_of_it_is_still_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = shared(tmp.path());
        let token = issue(&tokens, 0);
        let claims = tokens.verify(&token, T0).unwrap();
        assert_eq!(tokens.cache().len(), 1);
        assert_eq!(tokens.verify(&token, T0), Ok(claims.clone()));

        // The cached token's payload with a claim changed, under its good signature.
        let admin = with_payload(&token, |p| p["role"] = json!("admin"));
        assert_eq!(tokens.verify(&admin, T0), Err(TokenError::Invalid));
        let other = with_payload(&token, |p| p["sub"] = json!(Uuid::new_v4()));
        assert_eq!(tokens.verify(&other, T0), Err(TokenError::Invalid));
        let later = with_payload(&token, |p| p["exp"] = json!(claims.exp + 3_600));
        assert_eq!(tokens.verify(&later, T0), Err(TokenError::Invalid));
        // Another good token's signature on the cached token's header and payload.
        let sibling = issue(&tokens, 0);
        tokens.verify(&sibling, T0).unwrap();
        let (head, _) = token.rsplit_once('.').unwrap();
        let (_, signature) = sibling.rsplit_once('.').unwrap();
        let swapped = format!("{head}.{signature}");
        assert_eq!(tokens.verify(&swapped, T0), Err(TokenError::Invalid));
        // A truncated signature.
        assert_eq!(
            tokens.verify(&token[..token.len() - 2], T0),
            Err(TokenError::Invalid)
        );
        // Refusals are never cached.
        assert_eq!(tokens.cache().len(), 2);
        assert_eq!(tokens.verify(&admin, T0), Err(TokenError::Invalid));
    }

    #[test]
    fn a_cached_token_is_judged_by_the_time_of_each_use() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = shared(tmp.path());
        let token = issue(&tokens, 0);
        let exp = tokens.verify(&token, T0).unwrap().exp;
        assert!(tokens.verify(&token, exp + 30).is_ok(), "within the leeway");
        assert_eq!(tokens.verify(&token, exp + 31), Err(TokenError::Expired));
        assert_eq!(tokens.cache().len(), 1);

        // A token not valid before T0+100, cached when it became valid, is not valid earlier.
        let future = issue(&tokens, 100);
        assert!(tokens.verify(&future, T0 + 100).is_ok());
        assert_eq!(tokens.verify(&future, T0 + 69), Err(TokenError::Invalid));
    }

    #[test]
    fn a_cached_token_ends_with_its_key() {
        let tmp = tempfile::tempdir().unwrap();
        let tokens = shared(tmp.path());
        let old = issue(&tokens, 0);
        tokens.verify(&old, T0).unwrap();

        // A reload that changes nothing keeps the cache; a new key empties it.
        tokens.reload(tmp.path(), at(10), DEFAULT_LIFETIME);
        assert_eq!(tokens.cache().len(), 1);
        KeyRing::rotate(tmp.path(), at(20), DEFAULT_LIFETIME).unwrap();
        tokens.reload(tmp.path(), at(20), DEFAULT_LIFETIME);
        assert!(tokens.cache().is_empty());

        // Cached again, then its key retires (20 s + the retention): refused though cached,
        // as unknown, not expired.
        let old = issue(&tokens, 20);
        let kid_of = |t: &str| -> Value {
            serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(t.split('.').next().unwrap())
                    .unwrap(),
            )
            .unwrap()
        };
        let claims = tokens.verify(&old, T0 + 20).unwrap();
        assert_eq!(tokens.cache().len(), 1);
        KeyRing::rotate(tmp.path(), at(30), DEFAULT_LIFETIME).unwrap();
        tokens.reload(tmp.path(), at(30), DEFAULT_LIFETIME);
        let old_again = issue(&tokens, 30);
        assert_ne!(kid_of(&old)["kid"], kid_of(&old_again)["kid"]);
        // Re-cached under the new ring, still verifying until the key retires.
        assert!(tokens.verify(&old, T0 + 30).is_ok());
        let retires = T0 + 30 + DEFAULT_LIFETIME.as_secs() as i64;
        assert!(
            claims.exp + 30 >= retires,
            "the token outlives the key here"
        );
        assert!(tokens.verify(&old, retires).is_ok());
        assert_eq!(tokens.verify(&old, retires + 1), Err(TokenError::Invalid));
    }
}
