//! A remote store with a local fallback: limits never fail open and never fail the request.
//!
//! While the primary (Redis) answers, every decision is its. The first error switches to
//! the fallback [`MemoryStore`] (per-instance limits) and reports
//! [`StoreHealth::Degraded`]; a prober started with [`FallbackStore::spawn_prober`] pings
//! the primary and switches back, reporting [`StoreHealth::Healthy`], as soon as it answers.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};
use std::time::Duration;

use tokio::sync::watch;

use super::{BoxFuture, Decision, MemoryStore, Mode, Quota, Store, StoreError};

/// Which store decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreHealth {
    /// The primary store.
    Healthy,
    /// The fallback, since the primary failed with this error.
    Degraded(String),
}

/// The primary store while it answers, the memory store otherwise.
#[derive(Debug)]
pub struct FallbackStore {
    primary: Arc<dyn Store>,
    fallback: MemoryStore,
    degraded: AtomicBool,
    health: watch::Sender<StoreHealth>,
}

impl FallbackStore {
    /// `primary`, backed by a fresh memory store. It starts healthy; the first failed
    /// decision degrades it.
    pub fn new(primary: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            primary,
            fallback: MemoryStore::default(),
            degraded: AtomicBool::new(false),
            health: watch::Sender::new(StoreHealth::Healthy),
        })
    }

    /// Every change of health, for logs and security events.
    pub fn subscribe(&self) -> watch::Receiver<StoreHealth> {
        self.health.subscribe()
    }

    /// Whether the fallback decides now.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::SeqCst)
    }

    fn degrade(&self, error: &StoreError) {
        if !self.degraded.swap(true, Ordering::SeqCst) {
            tracing::warn!(error = %error, "rate-limit store degraded: per-instance limits until it answers");
            self.health
                .send_replace(StoreHealth::Degraded(error.to_string()));
        }
    }

    /// Ping the primary every `every` while degraded, and switch back when it answers.
    /// Ends when the store is dropped.
    pub fn spawn_prober(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(store) = weak.upgrade() else { return };
                if store.is_degraded() && store.primary.ping().await.is_ok() {
                    store.degraded.store(false, Ordering::SeqCst);
                    tracing::info!("rate-limit store restored: shared limits again");
                    store.health.send_replace(StoreHealth::Healthy);
                }
            }
        });
    }
}

impl Store for FallbackStore {
    fn forget<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            // Both: the key may have counts in either, from before and during an outage.
            self.fallback.forget_local(key);
            if !self.is_degraded()
                && let Err(e) = self.primary.forget(key).await
            {
                self.degrade(&e);
            }
            Ok(())
        })
    }

    fn decide<'a>(
        &'a self,
        key: &'a str,
        quota: &'a Quota,
        mode: Mode,
        now_ms: i64,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        Box::pin(async move {
            if !self.is_degraded() {
                match self.primary.decide(key, quota, mode, now_ms).await {
                    Ok(decision) => return Ok(decision),
                    Err(e) => self.degrade(&e),
                }
            }
            Ok(self.fallback.decide_local(key, quota, mode, now_ms))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// A primary that fails while `down` is set.
    #[derive(Debug, Default)]
    struct Flaky {
        down: AtomicBool,
        inner: MemoryStore,
    }

    impl Store for Flaky {
        fn decide<'a>(
            &'a self,
            key: &'a str,
            quota: &'a Quota,
            mode: Mode,
            now_ms: i64,
        ) -> BoxFuture<'a, Result<Decision, StoreError>> {
            let down = self.down.load(Ordering::SeqCst);
            Box::pin(async move {
                if down {
                    return Err(StoreError("connection refused".into()));
                }
                self.inner.decide(key, quota, mode, now_ms).await
            })
        }

        fn forget<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
            self.inner.forget(key)
        }

        fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
            let down = self.down.load(Ordering::SeqCst);
            Box::pin(async move {
                if down {
                    Err(StoreError("connection refused".into()))
                } else {
                    Ok(())
                }
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_primary_degrades_to_local_limits_and_recovers() {
        let primary = Arc::new(Flaky::default());
        let store = FallbackStore::new(primary.clone());
        let mut health = store.subscribe();
        store.spawn_prober(Duration::from_millis(100));
        let quota = Quota::new(3, Duration::from_secs(60)).unwrap();
        assert!(
            store
                .decide("k", &quota, Mode::Take, 0)
                .await
                .unwrap()
                .allowed
        );
        primary.down.store(true, Ordering::SeqCst);
        // Degraded: still limited (3 per instance), never an error.
        let admitted = futures_util::future::join_all(
            (0..5).map(|_| store.decide("k", &quota, Mode::Take, 0)),
        )
        .await
        .into_iter()
        .filter(|d| d.as_ref().unwrap().allowed)
        .count();
        assert_eq!(admitted, 3);
        assert!(store.is_degraded());
        health.changed().await.unwrap();
        assert!(matches!(
            *health.borrow_and_update(),
            StoreHealth::Degraded(_)
        ));
        primary.down.store(false, Ordering::SeqCst);
        health.changed().await.unwrap();
        assert_eq!(*health.borrow(), StoreHealth::Healthy);
        // Back on the primary, which remembers its own count (1 of 3).
        assert_eq!(
            store
                .decide("k", &quota, Mode::Take, 0)
                .await
                .unwrap()
                .remaining,
            1
        );
    }
}
