//! Logging: one structured line per event through `tracing`, JSON by default.
//!
//! The filter comes from `RAMPART_LOG` (default `info`), in `tracing-subscriber`'s
//! `EnvFilter` syntax.
//!
//! # Two writers
//! The per-request access lines (`rampart::access` at `info`) are formatted on the request's
//! task and handed to a dedicated thread ([`writer`]) through one shared buffer: the thread
//! writes whatever has gathered at most [`writer::BATCH_DELAY`] (10 ms) after a batch's first
//! line, so under load many lines leave in one `write`, and when idle each line is written
//! within ~10 ms. Every other line — start-up, warnings, refusals, a failed request's `error`
//! line — is written synchronously, so it is on stdout before the code that logged it goes on.
//!
//! **Overload:** the buffer holds [`ACCESS_BUFFER_BYTES`]. When stdout cannot keep up and it
//! is full, further access lines are dropped (a request never waits for stdout) and counted:
//! the count is `rampart_log_lines_dropped_total` on `/metrics`. **Shutdown:** the
//! [`LogGuard`] returned by [`init`] writes out the buffer when dropped, after the server
//! stopped.
//!
//! # Security
//! Nothing secret is ever handed to a log macro: secrets are `SecretString`s, request logs
//! carry no query strings, bodies or credential headers.

use std::{
    cell::RefCell,
    io::{self, Write},
    net::IpAddr,
    sync::OnceLock,
    time::{SystemTime, UNIX_EPOCH},
};

use tracing::{Level, Metadata};
use tracing_subscriber::{EnvFilter, Layer, filter::filter_fn, fmt, prelude::*};

use crate::config::LogFormat;

pub mod writer;

use writer::{BatchWriter, WriterGuard};

/// Bytes of access lines that may wait for the writer thread before new ones are dropped
/// (~9 000 lines of ~230 bytes). The buffer grows only as far as a batch needs.
pub const ACCESS_BUFFER_BYTES: usize = 2 * 1024 * 1024;

/// The access-log writer, once [`init`] installed it.
static ACCESS_WRITER: OnceLock<AccessWriter> = OnceLock::new();

struct AccessWriter {
    writer: BatchWriter,
    /// The JSON format: [`write_access_line`] formats lines straight into the writer
    /// rather than through `tracing`.
    direct: bool,
}

/// Keeps the access-log writer thread alive; dropping it writes out every queued line.
#[must_use = "dropping the guard stops the access-log writer"]
pub struct LogGuard {
    _worker: Option<WriterGuard>,
}

/// Access lines dropped so far under overload.
pub fn dropped_lines() -> usize {
    ACCESS_WRITER
        .get()
        .map_or(0, |access| access.writer.dropped())
}

fn is_access_line(meta: &Metadata<'_>) -> bool {
    meta.target() == "rampart::access" && *meta.level() == Level::INFO
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
    // Without a thread (none could be started) access lines are written synchronously.
    let spawned = BatchWriter::spawn(
        "rampart-log",
        io::stdout(),
        ACCESS_BUFFER_BYTES,
        writer::BATCH_DELAY,
    )
    .ok();
    let layers = match &spawned {
        Some((writer, _)) => layers(format, writer.clone()),
        None => layers(format, io::stdout),
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .try_init();
    let Some((writer, guard)) = spawned.filter(|_| installed.is_ok()) else {
        return LogGuard { _worker: None };
    };
    let direct = format == LogFormat::Json;
    let _ = ACCESS_WRITER.set(AccessWriter { writer, direct });
    LogGuard {
        _worker: Some(guard),
    }
}

/// The access lines' layer, writing to `access`, and the one for every other line,
/// writing synchronously to stdout.
fn layers<W>(format: LogFormat, access: W) -> Vec<Box<dyn Layer<Base> + Send + Sync>>
where
    W: for<'a> fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    let is_access = filter_fn(is_access_line);
    let others = filter_fn(|m| !is_access_line(m));
    match format {
        LogFormat::Json => vec![
            json_layer()
                .with_writer(access)
                .with_filter(is_access)
                .boxed(),
            json_layer()
                .with_writer(io::stdout)
                .with_filter(others)
                .boxed(),
        ],
        LogFormat::Pretty => vec![
            fmt::layer()
                .compact()
                .with_writer(access)
                .with_filter(is_access)
                .boxed(),
            fmt::layer()
                .compact()
                .with_writer(io::stdout)
                .with_filter(others)
                .boxed(),
        ],
    }
}

/// The fields of one access line.
#[derive(Debug, Clone, Copy)]
pub struct AccessLine<'a> {
    /// The request method.
    pub method: &'a str,
    /// The matched route template, or `(unmatched)`.
    pub route: &'a str,
    /// The response status.
    pub status: u16,
    /// Milliseconds from the request's arrival at the access log to its response.
    pub latency_ms: f64,
    /// The request id.
    pub request_id: &'a str,
    /// The client address.
    pub client: Option<IpAddr>,
}

impl AccessLine<'_> {
    /// The line exactly as the JSON formatter writes an access event (the same keys in the
    /// same order, the same timestamp and number formats), newline included.
    fn write_json(&self, out: &mut Vec<u8>, now: SystemTime) {
        out.extend_from_slice(b"{\"timestamp\":\"");
        write_timestamp(out, now);
        out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\",\"method\":");
        json_str(out, self.method);
        out.extend_from_slice(b",\"route\":");
        json_str(out, self.route);
        out.extend_from_slice(b",\"status\":");
        let _ = serde_json::to_writer(&mut *out, &self.status);
        out.extend_from_slice(b",\"latency_ms\":");
        let _ = serde_json::to_writer(&mut *out, &self.latency_ms);
        out.extend_from_slice(b",\"request_id\":");
        json_str(out, self.request_id);
        out.extend_from_slice(b",\"client\":\"");
        // An address's text is digits, dots, hex and colons: nothing to escape.
        match self.client {
            Some(IpAddr::V4(ip)) => write_ipv4(out, ip),
            Some(ip) => {
                let _ = write!(out, "{ip}");
            }
            None => {}
        }
        out.extend_from_slice(b"\",\"target\":\"rampart::access\"}\n");
    }
}

/// Dotted decimal, as `Ipv4Addr`'s `Display` writes it, without the formatting machinery.
fn write_ipv4(out: &mut Vec<u8>, ip: std::net::Ipv4Addr) {
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        if octet >= 100 {
            out.push(b'0' + octet / 100);
        }
        if octet >= 10 {
            out.push(b'0' + octet / 10 % 10);
        }
        out.push(b'0' + octet % 10);
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

/// `2026-12-01T20:04:19.565111Z`: RFC 3339 in UTC with microseconds, as
/// `tracing-subscriber` writes it. The part up to the second is formatted once a second
/// per thread.
fn write_timestamp(out: &mut Vec<u8>, now: SystemTime) {
    thread_local! {
        static SECOND: RefCell<(u64, [u8; 19])> = const { RefCell::new((u64::MAX, [0; 19])) };
    }
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            *text = civil_second(secs);
            *cached = secs;
        }
        out.extend_from_slice(text);
    });
    let _ = write!(out, ".{:06}Z", since.subsec_micros());
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix second, in UTC.
fn civil_second(secs: u64) -> [u8; 19] {
    let at = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut text = [0u8; 19];
    let mut cursor = io::Cursor::new(&mut text[..]);
    let _ = write!(
        cursor,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    text
}

/// Write `line` to the access log's writer thread; `false` when [`init`] installed no
/// JSON access writer (the pretty format, or a test's own subscriber), so the caller logs
/// it through `tracing` instead. A full queue drops the line and counts it.
pub fn write_access_line(line: &AccessLine<'_>) -> bool {
    let Some(AccessWriter { writer, .. }) = ACCESS_WRITER.get().filter(|access| access.direct)
    else {
        return false;
    };
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUFFER.with_borrow_mut(|buf| {
        buf.clear();
        line.write_json(buf, SystemTime::now());
        writer.push(buf);
    });
    true
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// What `tracing-subscriber`'s JSON formatter writes, captured.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn the_direct_line_is_the_json_formatters_line() {
        let captured = Captured::default();
        let subscriber =
            tracing_subscriber::registry().with(json_layer().with_writer(captured.clone()));
        let (method, route, status, latency_ms) = ("GET", "/api/v1/products/{id}", 404u16, 0.117);
        let (request_id, client) = ("client-id_1.2", "2001:db8::1");
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                target: "rampart::access",
                method, route, status, latency_ms, request_id, client,
                "request"
            );
        });
        let theirs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let stamp = theirs
            .split("\"timestamp\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        let parsed =
            time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339)
                .unwrap();
        let now = SystemTime::from(parsed);
        let mut ours = Vec::new();
        AccessLine {
            method,
            route,
            status,
            latency_ms,
            request_id,
            client: client.parse().ok(),
        }
        .write_json(&mut ours, now);
        assert_eq!(String::from_utf8(ours).unwrap(), theirs);
    }

    #[test]
    fn ipv4_addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.200.9.99",
            "255.255.255.255",
            "1.20.100.5",
        ] {
            let ip: std::net::Ipv4Addr = ip.parse().unwrap();
            let mut out = Vec::new();
            write_ipv4(&mut out, ip);
            assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
        }
    }

    #[test]
    fn strings_are_escaped_and_the_clock_is_utc_with_microseconds() {
        let mut out = Vec::new();
        let now = UNIX_EPOCH + Duration::from_micros(1_764_619_459_000_042);
        AccessLine {
            method: "GET",
            route: "(unmatched)\"\n",
            status: 200,
            latency_ms: 1.5,
            request_id: "",
            client: None,
        }
        .write_json(&mut out, now);
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.starts_with("{\"timestamp\":\"2025-12-01T20:04:19.000042Z\""),
            "{line}"
        );
        assert!(
            line.ends_with("}\n") && line.matches('\n').count() == 1,
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["route"], "(unmatched)\"\n");
        assert_eq!(v["client"], "");
        assert_eq!(v["latency_ms"], 1.5);
    }
}
