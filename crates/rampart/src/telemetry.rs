//! Logging: one structured line per event through `tracing`, JSON by default.
//!
//! The filter comes from `RAMPART_LOG` (default `info`), in `tracing-subscriber`'s
//! `EnvFilter` syntax.
//!
//! # Two writers
//! The per-request access lines (`rampart::access` at `info`) are formatted on the request's
//! task but written by a dedicated thread (`tracing-appender`'s non-blocking writer) through a
//! buffer that is flushed whenever its queue runs empty: under load many lines leave in one
//! `write`, when idle each line is written at once (well within 100 ms). Every other line —
//! start-up, warnings, refusals, a failed request's `error` line — is written synchronously,
//! so it is on stdout before the code that logged it goes on.
//!
//! **Overload:** the queue holds [`ACCESS_QUEUE_LINES`] lines. When the writer cannot keep up
//! and it is full, further access lines are dropped (a request never waits for stdout) and
//! counted: the count is `rampart_log_lines_dropped_total` on `/metrics`. **Shutdown:** the
//! [`LogGuard`] returned by [`init`] drains the queue when dropped, after the server stopped.
//!
//! # Security
//! Nothing secret is ever handed to a log macro: secrets are `SecretString`s, request logs
//! carry no query strings, bodies or credential headers.

use std::{
    io::{self, BufWriter, Write},
    sync::OnceLock,
};

use tracing::{Level, Metadata};
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{EnvFilter, Layer, filter::filter_fn, fmt, prelude::*};

use crate::config::LogFormat;

/// Access lines the writer thread may have queued before new ones are dropped.
pub const ACCESS_QUEUE_LINES: usize = 8 * 1024;

/// Access lines dropped because the writer's queue was full (set once by [`init`]).
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Keeps the access-log writer thread alive; dropping it writes out every queued line.
#[must_use = "dropping the guard stops the access-log writer"]
pub struct LogGuard {
    _worker: Option<WorkerGuard>,
}

/// Access lines dropped so far under overload.
pub fn dropped_lines() -> usize {
    DROPPED.get().map_or(0, ErrorCounter::dropped_lines)
}

fn is_access_line(meta: &Metadata<'_>) -> bool {
    meta.target() == "rampart::access" && *meta.level() == Level::INFO
}

/// Stdout through a buffer: the writer thread flushes it each time its queue is empty.
struct BufferedStdout(BufWriter<io::Stdout>);

impl Write for BufferedStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

type Base = tracing_subscriber::layer::Layered<EnvFilter, tracing_subscriber::Registry>;

fn json_layer<S>() -> fmt::Layer<S, fmt::format::JsonFields, fmt::format::Format<fmt::format::Json>>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
}

/// Install the global subscriber; a second call is a no-op (its guard holds nothing).
pub fn init(format: LogFormat, filter: Option<&str>) -> LogGuard {
    let filter =
        EnvFilter::try_new(filter.unwrap_or("info")).unwrap_or_else(|_| EnvFilter::new("info"));
    let (access_writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(ACCESS_QUEUE_LINES)
        .lossy(true)
        .thread_name("rampart-log")
        .finish(BufferedStdout(BufWriter::with_capacity(
            64 * 1024,
            io::stdout(),
        )));
    let counter = access_writer.error_counter();
    let access = filter_fn(is_access_line);
    let others = filter_fn(|m| !is_access_line(m));
    let layers: Vec<Box<dyn Layer<Base> + Send + Sync>> = match format {
        LogFormat::Json => vec![
            json_layer()
                .with_writer(access_writer)
                .with_filter(access)
                .boxed(),
            json_layer()
                .with_writer(io::stdout)
                .with_filter(others)
                .boxed(),
        ],
        LogFormat::Pretty => vec![
            fmt::layer()
                .compact()
                .with_writer(access_writer)
                .with_filter(access)
                .boxed(),
            fmt::layer()
                .compact()
                .with_writer(io::stdout)
                .with_filter(others)
                .boxed(),
        ],
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init();
    if installed.is_err() {
        return LogGuard { _worker: None };
    }
    let _ = DROPPED.set(counter);
    LogGuard {
        _worker: Some(guard),
    }
}
