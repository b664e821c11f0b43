//! The listener: HTTP/1.1 and HTTP/2 over TCP or TLS (rustls, TLS 1.2+), with the
//! connection-level limits a tower layer cannot enforce, and graceful shutdown.
//!
//! - over TLS, HTTP/2 is chosen by ALPN (`h2`), HTTP/1.1 otherwise; over plain TCP,
//!   HTTP/1.1 only, or also cleartext HTTP/2 with prior knowledge (h2c) when
//!   `RAMPART_H2C=on` (for a proxy in front that speaks it);
//! - the request head must arrive within the header read timeout (slowloris), else the
//!   connection is closed; the TLS handshake gets the same deadline, and a connection with
//!   no request in progress is closed once it has idled that long (on HTTP/2: GOAWAY), so
//!   a client that connects and never asks holds nothing;
//! - heads larger than 64 KiB are refused by the protocol layer itself (431, or on HTTP/2
//!   a 431 and a reset stream); smaller ones reach the pipeline, which applies the
//!   contract's 16 KiB limit with a full problem response;
//! - HTTP/2: at most 100 concurrent streams per connection; a peer that resets streams
//!   faster than they are accepted ("rapid reset", CVE-2023-44487) or makes the server
//!   reset too many of its streams gets GOAWAY (`ENHANCE_YOUR_CALM`); one whose requests are
//!   accepted and then cancelled more than 200 times within a second is disconnected
//!   (like nginx's fix for the same attack: a reset stream costs the server a request's
//!   start, and the peer nothing); a keep-alive ping that goes unanswered for the header
//!   read timeout closes the connection;
//! - on shutdown: stop accepting, let in-flight requests finish for up to the grace
//!   period (HTTP/2 peers get GOAWAY), then return so the caller can close the database.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use axum::{body::Body, extract::Request, response::Response};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use rampart_layers::client_ip::ConnectionInfo;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::{net::TcpListener, sync::watch};
use tokio_rustls::TlsAcceptor;
use tower::{Service, ServiceExt as _};

/// Request heads (HTTP/1.1 buffer, HTTP/2 decoded header list) beyond this are refused
/// before the pipeline; the pipeline's own limit (16 KiB) is below it.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Concurrent HTTP/2 streams per connection (`SETTINGS_MAX_CONCURRENT_STREAMS`).
pub const MAX_CONCURRENT_STREAMS: u32 = 100;
/// Streams a peer may reset before the server accepted them; beyond, GOAWAY (the rapid
/// reset mitigation of CVE-2023-44487).
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// Streams the server may reset because of the peer's protocol errors; beyond, GOAWAY.
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 100;
/// Requests a peer may cancel (reset, or disconnect) within [`CANCEL_WINDOW`]; beyond,
/// the connection is dropped.
const MAX_CANCELLED_PER_WINDOW: u32 = 2 * MAX_CONCURRENT_STREAMS;
const CANCEL_WINDOW: Duration = Duration::from_secs(1);

/// Connection-level settings.
#[derive(Clone)]
pub struct ServeOptions {
    /// Deadline for the TLS handshake, for each request head, and for an idle connection.
    pub header_read_timeout: Duration,
    /// How long in-flight requests may run after shutdown begins.
    pub shutdown_grace: Duration,
    /// TLS, when configured.
    pub tls: Option<TlsAcceptor>,
    /// Cleartext HTTP/2 with prior knowledge beside HTTP/1.1 (`RAMPART_H2C`); ignored with
    /// TLS, where ALPN decides.
    pub h2c: bool,
}

/// Load a rustls acceptor from PEM files (certificate chain, private key); TLS 1.2 and 1.3
/// only, HTTP/2 or HTTP/1.1 by ALPN.
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading RAMPART_TLS_CERT ({})", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing RAMPART_TLS_CERT ({})", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("RAMPART_TLS_CERT ({}) holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading RAMPART_TLS_KEY ({})", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("RAMPART_TLS_CERT and RAMPART_TLS_KEY do not form a usable pair")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// One connection builder per protocol choice, configured once.
struct Builders {
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
    either: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(options: &ServeOptions) -> Self {
        let mut base = auto::Builder::new(TokioExecutor::new());
        base.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout)
            .max_buf_size(MAX_HEAD_BYTES);
        base.http2()
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_HEAD_BYTES as u32)
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
            .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
            .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS)
            .keep_alive_interval(options.header_read_timeout)
            .keep_alive_timeout(options.header_read_timeout);
        Self {
            http1: base.clone().http1_only(),
            http2: base.clone().http2_only(),
            either: base,
        }
    }
}

/// Serve `app` on `listener` until `shutdown` resolves, then drain.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let builders = Arc::new(Builders::new(&options));
    // Every connection task holds a receiver until it ends: `closed()` is "all drained".
    let (stop, _) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            info: ConnectionInfo {
                peer,
                tls: options.tls.is_some(),
            },
            idle_limit: options.header_read_timeout,
            stop: stop.subscribe(),
        };
        let app = app.clone();
        let builders = builders.clone();
        let tls = options.tls.clone();
        let h2c = options.h2c;
        tokio::spawn(async move {
            match tls {
                None => {
                    let builder = if h2c {
                        &builders.either
                    } else {
                        &builders.http1
                    };
                    connection.run(builder, TokioIo::new(stream), app).await;
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(connection.idle_limit, acceptor.accept(stream)).await;
                    let Ok(Ok(stream)) = handshake else {
                        log_handshake_failure(peer);
                        return;
                    };
                    let builder = if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                        &builders.http2
                    } else {
                        &builders.http1
                    };
                    connection.run(builder, TokioIo::new(stream), app).await;
                }
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, draining in-flight requests");
    let _ = stop.send(());
    if tokio::time::timeout(options.shutdown_grace, stop.closed())
        .await
        .is_err()
    {
        tracing::warn!("grace period over: remaining connections are closed");
    }
    Ok(())
}

/// One accepted connection.
struct Connection {
    info: ConnectionInfo,
    idle_limit: Duration,
    /// Changes (or closes) when the server shuts down.
    stop: watch::Receiver<()>,
}

impl Connection {
    /// Serve requests until the peer leaves, the connection idles past its limit, or the
    /// server shuts down (then in-flight requests finish first).
    async fn run<I, S>(mut self, builder: &auto::Builder<TokioExecutor>, io: I, app: S)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
        S::Future: Send,
    {
        let streams = Arc::new(Streams {
            activity: Activity::new(),
            cancelled: std::sync::Mutex::new((tokio::time::Instant::now(), 0)),
            flood: tokio::sync::Notify::new(),
        });
        let flood = streams.clone();
        let info = self.info;
        // hyper calls through `&self`, a tower service through `&mut self`: one copy of the
        // stack per connection, called in turn (a connection's requests reach the service
        // one after the other), instead of a copy of the whole stack per request.
        let own = std::sync::Mutex::new(app.clone());
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(info);
            let guard = InFlight::enter(streams.clone());
            let response = call_ready(&own, &app, request);
            async move {
                let response = response.await;
                guard.complete();
                response
            }
        });
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let idle = idle_for(&flood.activity, self.idle_limit);
        tokio::pin!(idle);
        let mut draining = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(client = %info.peer.ip(), error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = self.stop.changed(), if !draining => {
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
                () = &mut idle, if !draining => {
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
                () = flood.flood.notified() => {
                    tracing::warn!(client = %info.peer.ip(), "requests cancelled in a flood (HTTP/2 rapid reset): connection dropped");
                    break;
                }
            }
        }
    }
}

/// What a connection's requests report to it.
struct Streams {
    /// Requests in flight now, and when the last one ended.
    activity: Activity,
    /// Start of the current window and the requests cancelled within it.
    cancelled: std::sync::Mutex<(tokio::time::Instant, u32)>,
    /// Woken when the cancellations of one window exceed the budget.
    flood: tokio::sync::Notify,
}

impl Streams {
    fn cancelled(&self) {
        let Ok(mut window) = self.cancelled.lock() else {
            return;
        };
        let now = tokio::time::Instant::now();
        if now.duration_since(window.0) > CANCEL_WINDOW {
            *window = (now, 0);
        }
        window.1 += 1;
        if window.1 > MAX_CANCELLED_PER_WINDOW {
            self.flood.notify_one();
        }
    }
}

/// `own`'s answer when it is ready at once (every layer of the stack is, so far), else
/// a copy of `app` that waits for readiness, as `oneshot` does.
fn call_ready<S>(
    own: &std::sync::Mutex<S>,
    app: &S,
    request: Request,
) -> futures_util::future::Either<S::Future, tower::util::Oneshot<S, Request>>
where
    S: Service<Request> + Clone,
{
    use futures_util::future::Either;
    let mut own = own
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match own.poll_ready(&mut cx) {
        std::task::Poll::Ready(Ok(())) => Either::Left(own.call(request)),
        // Not ready, or failed: the copy's own `poll_ready` will say so again.
        _ => Either::Right(app.clone().oneshot(request)),
    }
}

/// Counts a request as in flight for as long as it lives; dropped before its response
/// (the peer reset the stream or went away), it counts as cancelled.
struct InFlight {
    streams: Arc<Streams>,
    completed: bool,
}

impl InFlight {
    fn enter(streams: Arc<Streams>) -> Self {
        streams.activity.enter();
        Self {
            streams,
            completed: false,
        }
    }

    fn complete(mut self) {
        self.completed = true;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.streams.activity.leave();
        if !self.completed {
            self.streams.cancelled();
        }
    }
}

/// How busy a connection is: its requests in flight, and when the last one ended.
///
/// Plain atomics, no notification: a request's start and end cost two atomic updates and
/// a clock read, and [`idle_for`] wakes at most twice per idle limit to look.
struct Activity {
    in_flight: AtomicUsize,
    /// The connection's start: `idle_since` counts from here.
    base: tokio::time::Instant,
    /// When the in-flight count last fell to zero, in nanoseconds after `base`.
    idle_since: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            base: tokio::time::Instant::now(),
            idle_since: AtomicU64::new(0),
        }
    }

    fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn leave(&self) {
        // Stamped before the count falls: whoever then reads zero reads this end or a later one.
        let ended = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.idle_since.fetch_max(ended, Ordering::AcqRel);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// When the connection will have idled for `limit`, if no request is in flight now.
    fn idle_deadline(&self, limit: Duration) -> Option<tokio::time::Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = Duration::from_nanos(self.idle_since.load(Ordering::Acquire));
        Some(self.base + since + limit)
    }
}

/// Resolves once no request has been in flight for `limit` in a row.
async fn idle_for(activity: &Activity, limit: Duration) {
    loop {
        let now = tokio::time::Instant::now();
        match activity.idle_deadline(limit) {
            Some(deadline) if deadline <= now => return,
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            // Busy: look again after a whole limit (it cannot be idle for longer by then).
            None => tokio::time::sleep_until(now + limit).await,
        }
    }
}

fn log_handshake_failure(peer: SocketAddr) {
    tracing::debug!(client = %peer.ip(), "TLS handshake failed or timed out");
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streams() -> Arc<Streams> {
        Arc::new(Streams {
            activity: Activity::new(),
            cancelled: std::sync::Mutex::new((tokio::time::Instant::now(), 0)),
            flood: tokio::sync::Notify::new(),
        })
    }

    fn cancel(streams: &Arc<Streams>, times: u32) {
        for _ in 0..times {
            drop(InFlight::enter(streams.clone()));
        }
    }

    async fn flooded(streams: &Streams) -> bool {
        tokio::time::timeout(Duration::ZERO, streams.flood.notified())
            .await
            .is_ok()
    }

    /// A service that counts its copies and is ready only after `pending` polls.
    struct Counted {
        copies: Arc<AtomicUsize>,
        pending: Arc<AtomicUsize>,
    }

    impl Counted {
        fn new(pending: usize) -> Self {
            Self {
                copies: Arc::new(AtomicUsize::new(0)),
                pending: Arc::new(AtomicUsize::new(pending)),
            }
        }
        fn copies(&self) -> usize {
            self.copies.load(Ordering::SeqCst)
        }
    }

    impl Clone for Counted {
        fn clone(&self) -> Self {
            self.copies.fetch_add(1, Ordering::SeqCst);
            Self {
                copies: Arc::clone(&self.copies),
                pending: Arc::clone(&self.pending),
            }
        }
    }

    impl Service<Request> for Counted {
        type Response = Response;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response, Infallible>>;

        fn poll_ready(
            &mut self,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Infallible>> {
            let left = self.pending.load(Ordering::SeqCst);
            if left == 0 {
                return std::task::Poll::Ready(Ok(()));
            }
            self.pending.store(left - 1, Ordering::SeqCst);
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }

        fn call(&mut self, request: Request) -> Self::Future {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = http::StatusCode::OK;
            response
                .headers_mut()
                .insert("x-path", request.uri().path().parse().unwrap());
            std::future::ready(Ok(response))
        }
    }

    #[tokio::test]
    async fn a_ready_stack_is_called_on_the_connections_own_copy() {
        let app = Counted::new(0);
        let own = std::sync::Mutex::new(app.clone());
        for path in ["/a", "/b", "/c"] {
            let request = Request::builder().uri(path).body(Body::empty()).unwrap();
            let response = call_ready(&own, &app, request).await.unwrap();
            assert_eq!(response.headers()["x-path"], path);
            assert!(matches!(
                call_ready(&own, &app, Request::new(Body::empty())),
                futures_util::future::Either::Left(_)
            ));
        }
        assert_eq!(app.copies(), 1, "one copy per connection, none per request");
    }

    #[tokio::test]
    async fn a_stack_not_ready_is_waited_for_on_a_copy_and_still_answers() {
        let app = Counted::new(1);
        let own = std::sync::Mutex::new(app.clone());
        let request = Request::builder().uri("/late").body(Body::empty()).unwrap();
        let future = call_ready(&own, &app, request);
        assert!(matches!(future, futures_util::future::Either::Right(_)));
        assert_eq!(app.copies(), 2, "the request waits on a copy of its own");
        let response = future.await.unwrap();
        assert_eq!(response.headers()["x-path"], "/late");
        // Ready now: the next request takes the connection's copy again.
        assert!(matches!(
            call_ready(&own, &app, Request::new(Body::empty())),
            futures_util::future::Either::Left(_)
        ));
    }

    #[tokio::test]
    async fn cancellations_within_the_budget_leave_the_connection_alone() {
        let streams = streams();
        cancel(&streams, MAX_CANCELLED_PER_WINDOW);
        assert!(!flooded(&streams).await);
        // Once the window has passed the budget is whole again.
        if let Ok(mut window) = streams.cancelled.lock() {
            window.0 -= CANCEL_WINDOW + Duration::from_millis(1);
        }
        cancel(&streams, MAX_CANCELLED_PER_WINDOW);
        assert!(!flooded(&streams).await);
        // Completed requests never count.
        for _ in 0..1000 {
            InFlight::enter(streams.clone()).complete();
        }
        assert!(!flooded(&streams).await);
        assert_eq!(streams.activity.in_flight.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn one_cancellation_past_the_budget_within_a_window_drops_the_connection() {
        let streams = streams();
        cancel(&streams, MAX_CANCELLED_PER_WINDOW + 1);
        assert!(flooded(&streams).await);
    }

    #[tokio::test]
    async fn a_connection_idle_for_the_limit_is_closed_and_one_in_use_is_not() {
        let activity = Activity::new();
        let limit = Duration::from_millis(50);
        activity.enter();
        {
            let idle = idle_for(&activity, limit);
            tokio::pin!(idle);
            // Busy for longer than the limit: not idle.
            assert!(
                tokio::time::timeout(Duration::from_millis(200), &mut idle)
                    .await
                    .is_err()
            );
            activity.leave();
            assert!(activity.idle_deadline(limit).is_some());
            assert!(
                tokio::time::timeout(Duration::from_secs(10), &mut idle)
                    .await
                    .is_ok()
            );
        }
        // A request that ends restarts the count: the deadline moves with the last end.
        let first = activity.idle_deadline(limit);
        activity.enter();
        assert_eq!(activity.idle_deadline(limit), None);
        activity.leave();
        assert!(activity.idle_deadline(limit) >= first);
    }
}
