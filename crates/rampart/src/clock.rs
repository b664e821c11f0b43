//! Time as a value passed around, so expiry, lockout and rotation logic can be tested by
//! moving a clock instead of sleeping.
//!
//! This is the one place Rampart reads the wall clock: stores, security events, rate
//! limits, tokens, mail and `keys rotate` all take their time from a [`Clock`] (or from a
//! time stamp a caller read from one), so that after a test advances a manual clock the
//! database rows, the events and the limits all agree.
//!
//! ```
//! use std::time::Duration;
//! use rampart::clock::Clock;
//!
//! let clock = Clock::manual(1_000);
//! clock.advance(Duration::from_secs(1));
//! assert_eq!(clock.now_ms(), 2_000);
//! ```

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use time::{OffsetDateTime, PrimitiveDateTime};

/// The system clock, or a manual one for tests.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// Wall-clock time.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock that stands at `start_ms` until advanced.
    pub fn manual(start_ms: i64) -> Self {
        Self(Some(Arc::new(AtomicI64::new(start_ms))))
    }

    /// Milliseconds since the Unix epoch, the schema's time unit.
    pub fn now_ms(&self) -> i64 {
        match &self.0 {
            Some(t) => t.load(Ordering::SeqCst),
            None => system_now_ms(),
        }
    }

    /// Seconds since the Unix epoch.
    pub fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// The current time as a calendar date and time in UTC (saturating at the ends of the
    /// `time` crate's range, which a manual clock could pass).
    pub fn now_utc(&self) -> OffsetDateTime {
        let ms = self.now_ms();
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or_else(|_| {
            if ms < 0 {
                PrimitiveDateTime::MIN.assume_utc()
            } else {
                PrimitiveDateTime::MAX.assume_utc()
            }
        })
    }

    /// The current time as a [`SystemTime`], for APIs that want one (mail `Date`).
    pub fn now_system_time(&self) -> SystemTime {
        let ms = self.now_ms();
        let offset = Duration::from_millis(ms.unsigned_abs());
        let moved = if ms >= 0 {
            UNIX_EPOCH.checked_add(offset)
        } else {
            UNIX_EPOCH.checked_sub(offset)
        };
        // Out of the platform's range only for absurd manual clocks.
        moved.unwrap_or(UNIX_EPOCH)
    }

    /// Move a manual clock forward; no effect on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(t) = &self.0 {
            let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }
}

/// The system time source: milliseconds since the Unix epoch (negative before it).
fn system_now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(Duration::from_secs(2));
        assert_eq!(clock.now_secs(), 3);
        assert!(Clock::system().now_ms() > 1_600_000_000_000);
    }

    #[test]
    fn clones_of_a_manual_clock_share_its_time() {
        let clock = Clock::manual(0);
        let other = clock.clone();
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(other.now_ms(), 1_500);
        assert_eq!(other.now_secs(), 1);
    }

    #[test]
    fn every_view_of_the_time_agrees() {
        let clock = Clock::manual(1_800_000_000_123);
        assert_eq!(clock.now_utc().unix_timestamp(), 1_800_000_000);
        assert_eq!(clock.now_utc().millisecond(), 123);
        let since = clock.now_system_time().duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(since.as_millis(), 1_800_000_000_123);
        let before = Clock::manual(-1_500);
        assert_eq!(before.now_secs(), -2);
        assert!(before.now_system_time() < UNIX_EPOCH);
    }

    #[test]
    fn a_clock_far_out_of_the_calendar_saturates_instead_of_panicking() {
        assert_eq!(
            Clock::manual(i64::MAX).now_utc(),
            PrimitiveDateTime::MAX.assume_utc()
        );
        assert_eq!(
            Clock::manual(i64::MIN).now_utc(),
            PrimitiveDateTime::MIN.assume_utc()
        );
        assert!(Clock::manual(i64::MIN).now_system_time() < UNIX_EPOCH);
    }

    #[test]
    fn the_system_clock_follows_the_wall_clock() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let read = Clock::system().now_ms();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        assert!(i64::try_from(before.as_millis()).unwrap() <= read);
        assert!(read <= i64::try_from(after.as_millis()).unwrap());
    }
}
