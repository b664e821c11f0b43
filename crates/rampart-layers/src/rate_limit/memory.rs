//! The in-process store: one TAT per key in sharded maps.
//!
//! Memory is about 100 bytes per key with a live budget; keys whose budget is full again
//! are swept as the map grows, so an idle key costs nothing.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::Mutex,
};

use super::{BoxFuture, Decision, Mode, Quota, Store, StoreError, gcra};

const SHARDS: usize = 16;

/// Keys per shard above which a write first sweeps the shard's expired keys.
const SWEEP_ABOVE: usize = 4_096;

/// Limits for one instance. Exact within it; another instance keeps its own counts.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
}

#[derive(Debug, Default)]
struct Shard {
    tats: HashMap<String, u64>,
    sweep_at: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl MemoryStore {
    /// Decide synchronously (the store never waits).
    pub fn decide_local(&self, key: &str, quota: &Quota, mode: Mode, now_ms: i64) -> Decision {
        let now_us = u64::try_from(now_ms).unwrap_or(0).saturating_mul(1_000);
        let index = usize::try_from(self.hasher.hash_one(key)).unwrap_or(0) % SHARDS;
        // A poisoned shard still holds valid numbers: keep using it.
        let mut shard = self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let step = gcra::step(shard.tats.get(key).copied(), now_us, quota, mode);
        if let Some(tat) = step.store_tat_us {
            if shard.tats.len() >= SWEEP_ABOVE.max(shard.sweep_at) {
                shard.tats.retain(|_, t| *t > now_us);
                shard.sweep_at = shard.tats.len() * 2;
            }
            match shard.tats.get_mut(key) {
                Some(t) => *t = tat,
                None => {
                    shard.tats.insert(key.to_owned(), tat);
                }
            }
        }
        Decision::from_gcra(quota, step.allowed, step.ahead_us)
    }

    /// Forget `key` at once.
    pub fn forget_local(&self, key: &str) {
        let index = usize::try_from(self.hasher.hash_one(key)).unwrap_or(0) % SHARDS;
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .tats
            .remove(key);
    }

    /// Keys currently held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.tats.len()))
            .sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Store for MemoryStore {
    fn decide<'a>(
        &'a self,
        key: &'a str,
        quota: &'a Quota,
        mode: Mode,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        let decision = self.decide_local(key, quota, mode, now_ms);
        Box::pin(async move { Ok(decision) })
    }

    fn forget<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.forget_local(key);
        Box::pin(async { Ok(()) })
    }

    fn decide_now(&self, key: &str, quota: &Quota, mode: Mode, now_ms: i64) -> Option<Decision> {
        Some(self.decide_local(key, quota, mode, now_ms))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn keys_are_independent_and_expired_keys_are_swept() {
        let store = MemoryStore::default();
        let quota = Quota::new(1, Duration::from_secs(1)).unwrap();
        assert!(store.decide_local("a", &quota, Mode::Take, 0).allowed);
        assert!(!store.decide_local("a", &quota, Mode::Take, 0).allowed);
        assert!(store.decide_local("b", &quota, Mode::Take, 0).allowed);
        for i in 0..(SWEEP_ABOVE * SHARDS * 2) {
            store.decide_local(&format!("k{i}"), &quota, Mode::Take, 0);
        }
        // Much later, every old key is expired: writes sweep them away.
        for i in 0..(SWEEP_ABOVE * SHARDS * 2) {
            store.decide_local(&format!("n{i}"), &quota, Mode::Take, 10_000);
        }
        assert!(store.len() <= SWEEP_ABOVE * SHARDS * 2 + SHARDS * SWEEP_ABOVE);
        assert!(store.decide_local("a", &quota, Mode::Take, 10_000).allowed);
    }
}
