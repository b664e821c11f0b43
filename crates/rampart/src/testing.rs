//! Test-only helpers shared by the unit tests of every module.

use std::time::Duration;

/// Poll `probe` until it gives a value, failing with `what` after 10 s. For work that runs
/// off the caller's path (detached mail, key releases): it waits on the condition itself,
/// checking every few milliseconds, never on a fixed delay.
pub(crate) async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut ticks = tokio::time::interval(Duration::from_millis(2));
    loop {
        ticks.tick().await;
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within 10 s"
        );
    }
}
