//! A bounded cache of access tokens whose signature already verified, so a client that
//! sends the same token on every request pays for one Ed25519 verification (~24 µs)
//! instead of one per request.
//!
//! ```
//! use rampart::auth::token_cache::{TokenCache, Verified};
//! # let claims = rampart::auth::tokens::AccessClaims {
//! #     iss: "https://api.example.com".into(), aud: "rampart".into(),
//! #     sub: uuid::Uuid::new_v4(), sid: uuid::Uuid::new_v4(), role: "user".into(),
//! #     iat: 0, nbf: 0, exp: 900, jti: "j".into(),
//! # };
//! let cache = TokenCache::new(10_000);
//! cache.insert("header.payload.signature", Verified { claims, kid: "k1".into() });
//! assert!(cache.get("header.payload.signature").is_some());
//! assert!(cache.get("header.payload.signaturf").is_none());
//! ```
//!
//! # Security
//!
//! - The key is the SHA-256 of the **whole** token string: header, payload and signature.
//!   A token that differs from a verified one in any byte (a tampered claim, a swapped
//!   signature, a changed `kid`) has another key and goes through full verification; a
//!   forgery would need a SHA-256 second preimage.
//! - Only tokens that passed every check of [`super::tokens::TokenService::verify`] are
//!   inserted. A hit only skips the signature: the caller re-checks `nbf`/`exp` against its
//!   clock and that the signing key still verifies, on every hit, and the revocation check
//!   (account active, session family live) runs on every request whatever the cache says.
//! - Bounded: `capacity` entries (the server uses [`DEFAULT_CAPACITY`]; quick_cache rounds it
//!   up to a multiple of its shard count, so a few more at most); when full,
//!   the least recently useful entry is evicted (quick_cache's S3-FIFO-like policy). Filling it
//!   needs genuinely issued tokens, so an attacker cannot grow it, only churn it, which
//!   costs the victims one extra verification each.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use super::tokens::AccessClaims;

/// How many verified tokens the server remembers: 10 000 entries of about 300 bytes each
/// (key, claims, kid), so at most ~3 MiB; more than the tokens of 10 000 clients active
/// within one access-token lifetime.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// What a verified token established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Its claims.
    pub claims: AccessClaims,
    /// The key that verified it, checked again at each hit (a retired key ends its tokens).
    pub kid: String,
}

/// A fixed-capacity map from the SHA-256 of a whole token to what its verification
/// established. Shared by every request (internally sharded and locked).
pub struct TokenCache {
    entries: quick_cache::sync::Cache<[u8; 32], Arc<Verified>>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("len", &self.entries.len())
            .field("capacity", &self.entries.capacity())
            .finish()
    }
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    /// An empty cache of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    /// What the verification of exactly `token` established, if it is still remembered.
    pub fn get(&self, token: &str) -> Option<Arc<Verified>> {
        self.entries.get(&key(token))
    }

    /// Remember that `token` verified. Call only after a full, successful verification.
    pub fn insert(&self, token: &str, verified: Verified) {
        self.entries.insert(key(token), Arc::new(verified));
    }

    /// Forget every token (the signing keys changed).
    pub fn clear(&self) {
        self.entries.clear();
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most it remembers.
    pub fn capacity(&self) -> u64 {
        self.entries.capacity()
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn verified(jti: &str) -> Verified {
        Verified {
            claims: AccessClaims {
                iss: "https://api.example.test".into(),
                aud: "rampart".into(),
                sub: Uuid::new_v4(),
                sid: Uuid::new_v4(),
                role: "user".into(),
                iat: 0,
                nbf: 0,
                exp: 900,
                jti: jti.into(),
            },
            kid: "k1".into(),
        }
    }

    #[test]
    fn only_the_exact_token_hits() {
        let cache = TokenCache::new(16);
        let token = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln";
        cache.insert(token, verified("a"));
        assert_eq!(cache.get(token).unwrap().claims.jti, "a");
        // Every one-byte change, a prefix and an extension miss.
        for i in 0..token.len() {
            let mut bytes = token.as_bytes().to_vec();
            bytes[i] ^= 1;
            let changed = String::from_utf8(bytes).unwrap();
            assert!(cache.get(&changed).is_none(), "byte {i}");
        }
        assert!(cache.get(&token[..token.len() - 1]).is_none());
        assert!(cache.get(&format!("{token}=")).is_none());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = TokenCache::new(128);
        for i in 0..1_000 {
            cache.insert(&format!("token-{i}"), verified(&i.to_string()));
            assert!(cache.len() <= 128, "{}", cache.len());
        }
        assert!(!cache.is_empty());
        assert_eq!(cache.capacity(), 128);
        cache.clear();
        assert!(cache.is_empty());
    }
}
