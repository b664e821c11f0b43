//! [`Now`]: the one time source of this kit (rate limits, slow-down), injectable so an
//! application feeds its own clock and tests move time instead of sleeping.
//!
//! ```
//! use std::sync::{Arc, atomic::{AtomicI64, Ordering}};
//! use rampart_layers::clock::Now;
//! let manual = Arc::new(AtomicI64::new(1_000));
//! let now = Now::from_fn({ let m = manual.clone(); move || m.load(Ordering::SeqCst) });
//! manual.fetch_add(500, Ordering::SeqCst);
//! assert_eq!(now.ms(), 1_500);
//! ```
//!
//! [`Now::system`] is the only place in the kit that reads the wall clock.

use std::{fmt, sync::Arc};

/// The time source of limits: Unix milliseconds.
#[derive(Clone)]
pub struct Now(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Now {
    /// The system's wall clock: the default for an application without a clock of its own.
    pub fn system() -> Self {
        Self(Arc::new(|| {
            let since = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        }))
    }

    /// Any function, such as a test's manual clock.
    pub fn from_fn(f: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Unix milliseconds now.
    pub fn ms(&self) -> i64 {
        (self.0)()
    }
}

impl fmt::Debug for Now {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Now")
    }
}
