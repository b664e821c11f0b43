//! Logging: one structured line per event through `tracing`, JSON by default.
//!
//! The filter comes from `RAMPART_LOG` (default `info`), in `tracing-subscriber`'s
//! `EnvFilter` syntax.
//!
//! # Security
//! Nothing secret is ever handed to a log macro: secrets are `SecretString`s, request logs
//! carry no query strings, bodies or credential headers.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::config::LogFormat;

/// Install the global subscriber; a second call is a no-op.
pub fn init(format: LogFormat, filter: Option<&str>) {
    let filter =
        EnvFilter::try_new(filter.unwrap_or("info")).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Pretty => registry.with(fmt::layer().compact()).try_init(),
    };
}
