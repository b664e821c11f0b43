//! The generic cell rate algorithm (GCRA), the sliding limit every store implements.
//!
//! A key's whole state is one number, its theoretical arrival time (TAT): the instant at
//! which the key's budget would be full again. A quota of `limit` per `period` admits one
//! request every `interval = period / limit` and lets up to `limit` arrive at once
//! (tolerance = `period`). There is no window edge, so there is no 2× burst at one: after
//! spending the whole budget, waiting half the period gives back half of it.
//!
//! The Redis store runs the same arithmetic as a Lua script (`redis.rs`); both are tested
//! against the same sequences.

use std::time::Duration;

use super::{Decision, Mode, Quota};

/// What a decision does to a key: the answer and, when the state changes, the new TAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Step {
    /// Whether the request is within the quota.
    pub allowed: bool,
    /// How far the key's TAT lies ahead of now after the decision, in microseconds.
    pub ahead_us: u64,
    /// The TAT to store, when it changes.
    pub store_tat_us: Option<u64>,
}

/// Decide one request at `now_us` for a key whose stored TAT is `tat_us`.
pub(crate) fn step(tat_us: Option<u64>, now_us: u64, quota: &Quota, mode: Mode) -> Step {
    let interval = quota.interval_us();
    let tat = tat_us.unwrap_or(now_us).max(now_us);
    let new_tat = tat.saturating_add(interval);
    if let Mode::Hit { cap } = mode {
        // Always counted, but never more than `cap` requests ahead, so a flood cannot push
        // the key's recovery arbitrarily far into the future.
        let capped = new_tat.min(now_us.saturating_add(interval.saturating_mul(u64::from(cap))));
        return Step {
            allowed: true,
            ahead_us: capped - now_us,
            store_tat_us: Some(capped),
        };
    }
    if new_tat.saturating_sub(quota.tolerance_us()) > now_us {
        return Step {
            allowed: false,
            ahead_us: tat - now_us,
            store_tat_us: None,
        };
    }
    match mode {
        Mode::Take => Step {
            allowed: true,
            ahead_us: new_tat - now_us,
            store_tat_us: Some(new_tat),
        },
        _ => Step {
            allowed: true,
            ahead_us: tat - now_us,
            store_tat_us: None,
        },
    }
}

impl Decision {
    /// The decision a store reports for `allowed` with the key's TAT `ahead_us` past now.
    pub fn from_gcra(quota: &Quota, allowed: bool, ahead_us: u64) -> Self {
        let interval = quota.interval_us();
        let used = ahead_us.div_ceil(interval);
        let limit = u64::from(quota.limit());
        let retry_after_us = if allowed {
            0
        } else {
            (ahead_us + interval).saturating_sub(quota.tolerance_us())
        };
        Self {
            allowed,
            limit: quota.limit(),
            remaining: u32::try_from(limit.saturating_sub(used)).unwrap_or(0),
            used: u32::try_from(used).unwrap_or(u32::MAX),
            reset: Duration::from_micros(ahead_us),
            retry_after: Duration::from_micros(retry_after_us),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_US: u64 = 60_000_000;

    fn run(quota: &Quota, tat: &mut Option<u64>, now: u64, mode: Mode) -> bool {
        let s = step(*tat, now, quota, mode);
        if let Some(t) = s.store_tat_us {
            *tat = Some(t);
        }
        s.allowed
    }

    #[test]
    fn exactly_the_limit_is_admitted_at_once() {
        let quota = Quota::new(20, Duration::from_secs(60)).unwrap();
        let mut tat = None;
        let now = 1_000 * MINUTE_US;
        let admitted = (0..25)
            .filter(|_| run(&quota, &mut tat, now, Mode::Take))
            .count();
        assert_eq!(admitted, 20);
    }

    #[test]
    fn half_a_window_later_about_half_the_limit_is_admitted_never_the_whole() {
        let quota = Quota::new(20, Duration::from_secs(60)).unwrap();
        let mut tat = None;
        let start = 1_000 * MINUTE_US;
        for _ in 0..20 {
            assert!(run(&quota, &mut tat, start, Mode::Take));
        }
        let later = start + MINUTE_US / 2;
        let admitted = (0..20)
            .filter(|_| run(&quota, &mut tat, later, Mode::Take))
            .count();
        assert_eq!(admitted, 10);
    }

    #[test]
    fn a_peek_never_spends_budget() {
        let quota = Quota::new(2, Duration::from_secs(60)).unwrap();
        let mut tat = None;
        for _ in 0..10 {
            assert!(run(&quota, &mut tat, 5, Mode::Peek));
        }
        assert!(run(&quota, &mut tat, 5, Mode::Take));
        assert!(run(&quota, &mut tat, 5, Mode::Take));
        assert!(!run(&quota, &mut tat, 5, Mode::Peek));
    }

    #[test]
    fn a_refused_request_reports_when_to_retry_and_what_remains() {
        let quota = Quota::new(5, Duration::from_secs(15 * 60)).unwrap();
        let mut tat = None;
        for _ in 0..5 {
            run(&quota, &mut tat, 0, Mode::Take);
        }
        let s = step(tat, 0, &quota, Mode::Take);
        let d = Decision::from_gcra(&quota, s.allowed, s.ahead_us);
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after, Duration::from_secs(3 * 60));
        assert_eq!(d.reset, Duration::from_secs(15 * 60));
    }

    #[test]
    fn hits_are_counted_up_to_their_cap() {
        let quota = Quota::new(2, Duration::from_secs(15 * 60)).unwrap();
        let mut tat = None;
        let mut levels = Vec::new();
        for _ in 0..30 {
            let s = step(tat, 0, &quota, Mode::Hit { cap: 22 });
            tat = s.store_tat_us;
            levels.push(Decision::from_gcra(&quota, s.allowed, s.ahead_us).used);
        }
        assert_eq!(&levels[..4], &[1, 2, 3, 4]);
        assert_eq!(*levels.last().unwrap(), 22);
    }

    proptest::proptest! {
        #[test]
        fn any_span_admits_at_most_the_burst_plus_what_the_rate_refills(
            gaps in proptest::collection::vec(0u64..5_000_000, 1..300),
        ) {
            // 10 per 10 s: a burst of 10, then one per second.
            let quota = Quota::new(10, Duration::from_secs(10)).unwrap();
            let mut tat = None;
            let mut now = 0u64;
            let mut admitted = Vec::new();
            for gap in gaps {
                now += gap;
                if run(&quota, &mut tat, now, Mode::Take) {
                    admitted.push(now);
                }
            }
            // Half a period never holds more than the burst plus half the limit: the 2x
            // of a fixed window's edge cannot happen.
            for (i, t) in admitted.iter().enumerate() {
                let in_span = admitted[i..].iter().take_while(|u| **u < t + 5_000_000).count();
                proptest::prop_assert!(in_span <= 15, "{in_span} within half a period");
            }
        }
    }
}
