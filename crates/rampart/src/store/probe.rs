//! Whether the database is reachable, kept by a background probe.
//!
//! A database outage is a temporary condition, not an internal error (API.md §3: 503
//! `unavailable` with `Retry-After`). Without this, every request that needs the database
//! would wait out the pool's acquire deadline while sqlx retries a refused connect, and a
//! restart would read as a burst of slow failures. The probe holds one connection of its
//! own, outside the pool, so a pool that is merely busy never reads as down: it pings that
//! connection every [`UP_EVERY`] and, when the ping fails, opens a fresh one at once; while
//! the database is down it retries every [`DOWN_EVERY`], each attempt bounded by the acquire
//! timeout. Requests that see an unreachable-database error wake it early
//! ([`Reachability::suspect`]), so the state flips within one failed connect.
//!
//! While [`Reachability::is_down`], the request gate (`http::health::DatabaseGateLayer`) answers
//! 503 at once and `/health/ready` answers 503 without touching the pool.
//!
//! Only PostgreSQL is probed: SQLite is a file opened by this process, not a server that
//! can go away.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sqlx::{AnyConnection, Connection as _};
use tokio::{sync::Notify, task::JoinHandle};

/// How often a reachable database is checked.
pub const UP_EVERY: Duration = Duration::from_secs(1);
/// How often an unreachable database is tried again.
pub const DOWN_EVERY: Duration = Duration::from_millis(250);

/// The shared reachability state.
#[derive(Debug, Default)]
pub struct Reachability {
    down: AtomicBool,
    wake: Notify,
}

impl Reachability {
    /// Whether the last check found the database unreachable.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// A request saw an unreachable-database error: check now rather than at the next tick.
    pub fn suspect(&self) {
        self.wake.notify_one();
    }

    /// Record a check's outcome; returns whether it changed the state.
    fn record(&self, reachable: bool) -> bool {
        self.down.swap(!reachable, Ordering::AcqRel) == reachable
    }
}

/// The probe task; aborted when the last handle to it is dropped.
#[derive(Debug)]
pub struct Probe(JoinHandle<()>);

impl Drop for Probe {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Probe {
    /// Start probing the database at `url` (which holds its credentials: never logged).
    pub fn spawn(url: String, bound: Duration, state: Arc<Reachability>) -> Self {
        Self(tokio::spawn(run(url, bound, state)))
    }

    /// Stop probing.
    pub fn stop(&self) {
        self.0.abort();
    }
}

async fn run(url: String, bound: Duration, state: Arc<Reachability>) {
    let mut conn: Option<AnyConnection> = None;
    loop {
        let reachable = check(&mut conn, &url, bound).await;
        if state.record(reachable) {
            if reachable {
                tracing::info!("database reachable again");
            } else {
                tracing::warn!("database unreachable: requests that need it answer 503");
            }
        }
        let pause = if reachable { UP_EVERY } else { DOWN_EVERY };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = state.wake.notified() => {}
        }
    }
}

/// Ping the held connection; when that fails, open a fresh one. Each step is bounded.
async fn check(conn: &mut Option<AnyConnection>, url: &str, bound: Duration) -> bool {
    if let Some(held) = conn.as_mut()
        && matches!(tokio::time::timeout(bound, held.ping()).await, Ok(Ok(())))
    {
        return true;
    }
    // A connection whose ping failed or timed out is in no known state: drop it.
    *conn = None;
    match tokio::time::timeout(bound, AnyConnection::connect(url)).await {
        Ok(Ok(fresh)) => {
            *conn = Some(fresh);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_change_is_reported_once() {
        let state = Reachability::default();
        assert!(!state.is_down());
        assert!(!state.record(true));
        assert!(state.record(false));
        assert!(state.is_down());
        assert!(!state.record(false));
        assert!(state.record(true));
        assert!(!state.is_down());
    }

    #[tokio::test]
    async fn a_refused_connect_marks_the_database_down_within_one_bound() {
        // A port nothing listens on: bind one, note it, close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        sqlx::any::install_default_drivers();
        let state = Arc::new(Reachability::default());
        let started = std::time::Instant::now();
        let _probe = Probe::spawn(
            format!("postgres://nobody@127.0.0.1:{port}/none"),
            Duration::from_secs(1),
            state.clone(),
        );
        crate::testing::eventually("the probe to mark the database down", || {
            let state = state.clone();
            async move { state.is_down().then_some(()) }
        })
        .await;
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
