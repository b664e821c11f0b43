//! The listener: HTTP/1.1 over TCP or TLS (rustls, TLS 1.2+), with the connection-level
//! limits a tower layer cannot enforce, and graceful shutdown.
//!
//! - the request head must arrive within the header read timeout (slowloris), else the
//!   connection is closed; the TLS handshake gets the same deadline;
//! - heads larger than 64 KiB are refused by hyper itself (431); smaller ones reach the
//!   pipeline, which applies the contract's 16 KiB limit with a full problem response;
//! - on shutdown: stop accepting, let in-flight requests finish for up to the grace
//!   period, then return so the caller can close the database.

use std::{
    convert::Infallible, future::Future, net::SocketAddr, path::Path, sync::Arc, time::Duration,
};

use anyhow::Context as _;
use axum::{body::Body, extract::Request, response::Response};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use rampart_layers::client_ip::ConnectionInfo;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::{Service, ServiceExt as _};

/// Connection-level settings.
#[derive(Clone)]
pub struct ServeOptions {
    /// Deadline for the TLS handshake and for each request head.
    pub header_read_timeout: Duration,
    /// How long in-flight requests may run after shutdown begins.
    pub shutdown_grace: Duration,
    /// TLS, when configured.
    pub tls: Option<TlsAcceptor>,
}

/// Load a rustls acceptor from PEM files (certificate chain, private key); TLS 1.2 and 1.3
/// only, HTTP/1.1 by ALPN.
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
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
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
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .max_buf_size(64 * 1024);
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
        let tls = options.tls.clone();
        let connection_info = ConnectionInfo {
            peer,
            tls: tls.is_some(),
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(connection_info);
            app.clone().oneshot(request)
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let handshake_deadline = options.header_read_timeout;
        tokio::spawn(async move {
            match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(handshake_deadline, acceptor.accept(stream)).await;
                    if let Ok(Ok(stream)) = handshake {
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(conn).await;
                    } else {
                        log_handshake_failure(peer);
                    }
                }
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: no new connections, draining in-flight requests");
    if tokio::time::timeout(options.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over: remaining connections are closed");
    }
    Ok(())
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
