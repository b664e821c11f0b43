//! The `tls` area, for `https` URLs: which protocol the server negotiates and whether its
//! certificate is trusted, valid now and 30 days from now, and valid for the URL's host.
//! Over plain HTTP it is one warning: TLS is not in use.
//!
//! Two handshakes with rustls: one offering TLS 1.3 and 1.2 (what the server prefers, and
//! its ALPN answer to `h2, http/1.1`), one offering TLS 1.2 alone. The certificate is
//! checked with webpki against the system's roots plus `--ca-cert FILE`.
//!
//! # What it cannot probe
//! rustls implements only TLS 1.2 and 1.3, so the audit cannot offer SSL 3, TLS 1.0 or
//! TLS 1.1 and cannot tell whether the server would still accept them; nor does it try
//! weak cipher suites (rustls has none) or check revocation (OCSP, CRLs). Use a dedicated
//! scanner (`testssl.sh`, `sslyze`) for those.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::{
        WebPkiServerVerifier,
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    },
    crypto::CryptoProvider,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject as _};
use url::{Host, Url};

use super::{Area, Finding, Status};

/// A certificate expiring sooner than this warns.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30 * 86_400);

/// The certificates of a PEM file (for `--ca-cert`).
pub(crate) fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if certs.is_empty() {
        anyhow::bail!("no CERTIFICATE in the file");
    }
    Ok(certs)
}

/// What webpki said about the server's chain.
#[derive(Debug, Default)]
struct Verdicts {
    now: Option<Result<(), rustls::Error>>,
    later: Option<Result<(), rustls::Error>>,
}

/// A verifier that records webpki's verdict and lets the handshake finish, so the
/// protocol can be reported for an untrusted server too. Nothing but the handshake is
/// ever sent over such a connection.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    verdicts: Mutex<Verdicts>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verify = |at| {
            self.inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, at)
                .map(|_| ())
        };
        let later = UnixTime::since_unix_epoch(Duration::from_secs(now.as_secs()) + EXPIRY_MARGIN);
        if let Ok(mut verdicts) = self.verdicts.lock() {
            verdicts.now = Some(verify(now));
            verdicts.later = Some(verify(later));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What one handshake showed.
struct Handshake {
    version: String,
    suite: String,
    alpn: Option<String>,
}

/// Grade the transport of `url`, within `budget`.
pub(crate) async fn check(
    url: &Url,
    extra_roots: Vec<CertificateDer<'static>>,
    budget: Duration,
) -> Vec<Finding> {
    if url.scheme() != "https" {
        return vec![Finding::new(
            Status::Warn,
            Area::Tls,
            "tls",
            "plain HTTP: TLS is not in use (fine on loopback or behind a TLS proxy, nowhere else)",
        )];
    }
    match probe(url, extra_roots, budget).await {
        Ok(findings) => findings,
        Err(e) => vec![Finding::new(
            Status::Fail,
            Area::Tls,
            "protocol",
            &format!("cannot check TLS: {e:#}"),
        )],
    }
}

async fn probe(
    url: &Url,
    extra_roots: Vec<CertificateDer<'static>>,
    budget: Duration,
) -> anyhow::Result<Vec<Finding>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped; the verdict then says "not trusted".
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    roots.add_parsable_certificates(extra_roots);
    let inner =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let host = match url.host() {
        Some(Host::Domain(d)) => d.to_owned(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        None => anyhow::bail!("the URL has no host"),
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let name = ServerName::try_from(host.clone())?;
    let recording = Arc::new(Recording {
        inner,
        verdicts: Mutex::new(Verdicts::default()),
    });
    let both = [&rustls::version::TLS13, &rustls::version::TLS12];
    let preferred = handshake(
        &host,
        port,
        &name,
        &provider,
        recording.clone(),
        &both,
        budget,
    )
    .await;
    let tls12 = handshake(
        &host,
        port,
        &name,
        &provider,
        recording.clone(),
        &[&rustls::version::TLS12],
        budget,
    )
    .await;
    let mut findings = Vec::new();
    let limits = "TLS 1.0/1.1 not probed: rustls cannot offer them";
    findings.push(match (&preferred, &tls12) {
        (Ok(h), tls12) => Finding::new(
            Status::Pass,
            Area::Tls,
            "protocol",
            &format!(
                "negotiated {} ({}), ALPN {}; TLS 1.2 {}; {limits}",
                h.version,
                h.suite,
                h.alpn.as_deref().unwrap_or("none"),
                if tls12.is_ok() { "accepted" } else { "refused" },
            ),
        ),
        (Err(e), _) => Finding::new(
            Status::Fail,
            Area::Tls,
            "protocol",
            &format!("no TLS 1.2 or 1.3 handshake: {e:#}; {limits}"),
        ),
    });
    let verdicts = recording
        .verdicts
        .lock()
        .map_err(|_| anyhow::anyhow!("the verifier's record is poisoned"))?;
    findings.push(certificate(&host, &verdicts));
    Ok(findings)
}

fn certificate(host: &str, verdicts: &Verdicts) -> Finding {
    use rustls::CertificateError as E;
    let (status, evidence) = match (&verdicts.now, &verdicts.later) {
        (None, _) => (Status::Fail, "no certificate was presented".to_owned()),
        (Some(Ok(())), Some(Ok(()))) => (
            Status::Pass,
            format!("trusted chain, valid for {host}, still valid in 30 days"),
        ),
        (Some(Ok(())), _) => (
            Status::Warn,
            format!("trusted and valid for {host}, but it expires within 30 days"),
        ),
        (Some(Err(rustls::Error::InvalidCertificate(e))), _) => (
            Status::Fail,
            match e {
                E::UnknownIssuer => "not trusted: issued by an unknown CA (self-signed?); \
                    --ca-cert FILE trusts a private CA"
                    .to_owned(),
                E::Expired | E::ExpiredContext { .. } => "expired".to_owned(),
                E::NotValidYet | E::NotValidYetContext { .. } => "not valid yet".to_owned(),
                E::NotValidForName | E::NotValidForNameContext { .. } => {
                    format!("not valid for {host}")
                }
                E::Revoked => "revoked".to_owned(),
                other => format!("invalid: {other}"),
            },
        ),
        (Some(Err(e)), _) => (Status::Fail, format!("invalid: {e}")),
    };
    Finding::new(status, Area::Tls, "certificate", &evidence)
}

async fn handshake(
    host: &str,
    port: u16,
    name: &ServerName<'static>,
    provider: &Arc<CryptoProvider>,
    verifier: Arc<Recording>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    budget: Duration,
) -> anyhow::Result<Handshake> {
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect((host, port)).await?;
        let tls = connector.connect(name.clone(), tcp).await?;
        let (_, connection) = tls.get_ref();
        Ok::<_, std::io::Error>(Handshake {
            version: connection
                .protocol_version()
                .map_or("?".to_owned(), |v| format!("{v:?}")),
            suite: connection
                .negotiated_cipher_suite()
                .map_or("?".to_owned(), |s| format!("{:?}", s.suite())),
            alpn: connection
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
        })
    };
    match tokio::time::timeout(budget, exchange).await {
        Ok(result) => Ok(result?),
        Err(_) => anyhow::bail!("no handshake within {budget:?}"),
    }
}
