//! `rampart audit URL`: a black-box posture check of any HTTP API.
//!
//! It sends a bounded set of requests to the URL (at most [`MAX_REQUESTS`], each under a
//! per-request timeout, all under a total deadline) and grades what comes back:
//!
//! | area | what is probed |
//! |---|---|
//! | `headers` | every security header of API.md §2 on the URL and on error answers, graded against helmet 8's defaults and the MDN HTTP Observatory rules |
//! | `cors` | a foreign origin, `null`, a look-alike of the target's origin, a preflight |
//! | `cookie` | every `Set-Cookie` seen: `Secure`, `HttpOnly`, `SameSite`, `__Host-`/`__Secure-` |
//! | `errors` | an unknown route, a wrong method, malformed JSON, an oversized body |
//! | `rate-limit` | a burst of at most [`rate_limit::BURST`] requests that stops at the first sign of a limit |
//! | `tls` | protocol and certificate of an `https` URL; a warning over plain HTTP |
//!
//! ```text
//! rampart audit https://api.example.com/ --format json --strict
//! ```
//!
//! Exit status: 0 when nothing fails (warnings pass unless `--strict`), 1 when a check
//! fails or the target cannot be reached, 2 for usage errors.
//!
//! # Security
//! The HTTP probes accept any certificate (the `tls` area judges trust separately, so a
//! development server with a self-signed certificate can still be audited); they never
//! send credentials. Everything the target answers is untrusted: evidence is stripped of
//! control characters and shortened before it is printed.

mod cookies;
mod cors;
mod errors;
mod headers;
mod rate_limit;
mod report;
mod tls;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use reqwest::{Method, header::HeaderMap};
use serde::Serialize;
use tokio::time::Instant;
use url::Url;

/// The most requests one audit sends, whatever the answers.
pub const MAX_REQUESTS: usize = 48;

/// The most bytes of a response body kept for inspection.
const MAX_BODY: usize = 64 * 1024;

/// `rampart audit` arguments.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// The URL to audit (`http` or `https`); its path is the route the probes use.
    #[arg(value_parser = parse_target)]
    pub url: Url,
    /// Output format: a table for people, JSON for CI.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Exit 1 on warnings too, not only on failures.
    #[arg(long)]
    pub strict: bool,
    /// Per-request timeout (`500ms`, `10s`, `1m`).
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
    /// Deadline for the whole audit.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    pub deadline: Duration,
    /// PEM file of CA certificates to trust, besides the system's, in the `tls`
    /// certificate check (for a private CA or a self-signed development certificate).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

/// How findings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One aligned line per finding.
    Table,
    /// One JSON document.
    Json,
}

fn parse_target(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some() => Ok(url),
        "http" | "https" => Err("the URL needs a host".to_owned()),
        other => Err(format!("the scheme must be http or https, not {other}")),
    }
}

fn parse_positive_duration(raw: &str) -> Result<Duration, String> {
    match crate::config::parse_duration(raw)? {
        d if d.is_zero() => Err("the duration must be above 0".to_owned()),
        d => Ok(d),
    }
}

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to fix.
    Pass,
    /// Weaker than it should be; fails only under `--strict`.
    Warn,
    /// A real weakness.
    Fail,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Area {
    /// Security response headers.
    #[serde(rename = "headers")]
    Headers,
    /// Cross-origin resource sharing.
    #[serde(rename = "cors")]
    Cors,
    /// `Set-Cookie` attributes.
    #[serde(rename = "cookie")]
    Cookie,
    /// What error answers leak.
    #[serde(rename = "errors")]
    Errors,
    /// Whether a rate limit is visible.
    #[serde(rename = "rate-limit")]
    RateLimit,
    /// Transport security.
    #[serde(rename = "tls")]
    Tls,
}

impl Area {
    fn as_str(self) -> &'static str {
        match self {
            Self::Headers => "headers",
            Self::Cors => "cors",
            Self::Cookie => "cookie",
            Self::Errors => "errors",
            Self::RateLimit => "rate-limit",
            Self::Tls => "tls",
        }
    }
}

/// One graded observation.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Pass, warn or fail.
    pub status: Status,
    /// The area.
    pub area: Area,
    /// The check within the area; for headers the exact lower-case header field.
    pub check: String,
    /// What was seen (target-controlled text, cleaned and shortened).
    pub evidence: String,
}

impl Finding {
    fn new(status: Status, area: Area, check: &str, evidence: &str) -> Self {
        Self {
            status,
            area,
            check: clean(check, 64),
            evidence: clean(evidence, 240),
        }
    }
}

/// Target-controlled text made safe to print: control characters (terminal escapes
/// included) become `?`, and it is cut to `max` characters.
fn clean(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// Why a probe was sent, which decides what grades it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The URL itself.
    Baseline,
    /// A client error the target should answer calmly.
    Error,
    /// A cross-origin request.
    Cors,
    /// Part of the rate-limit burst.
    Burst,
}

/// One answer, as far as the audit reads it.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    pub kind: Kind,
    /// `METHOD /path`.
    pub label: String,
    pub status: u16,
    pub headers: HeaderMap,
    /// The first [`MAX_BODY`] bytes, lossily decoded.
    pub body: String,
}

impl Observed {
    /// A header's value as text (`None` when absent or not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Why a probe got no answer.
#[derive(Debug, Clone)]
pub(crate) struct ProbeError {
    /// The per-request timeout or the deadline passed.
    pub timed_out: bool,
    pub message: String,
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A request to send.
pub(crate) struct Probe {
    pub kind: Kind,
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
}

impl Probe {
    pub fn new(kind: Kind, method: Method, url: Url) -> Self {
        Self {
            kind,
            method,
            url,
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }
}

/// Sends probes within the audit's bounds and keeps every answer.
pub(crate) struct Prober {
    client: reqwest::Client,
    target: Url,
    timeout: Duration,
    deadline: Instant,
    sent: usize,
    seen: Vec<Observed>,
}

impl Prober {
    fn new(args: &AuditArgs) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // Trust is the `tls` area's verdict; the HTTP probes must reach the target.
            .tls_danger_accept_invalid_certs(true)
            .connect_timeout(args.timeout)
            .user_agent(concat!("rampart-audit/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            target: args.url.clone(),
            timeout: args.timeout,
            deadline: Instant::now() + args.deadline,
            sent: 0,
            seen: Vec::new(),
        })
    }

    /// The audited URL.
    pub fn target(&self) -> &Url {
        &self.target
    }

    /// A URL on the target's origin.
    pub fn on_origin(&self, path: &str) -> Url {
        let mut url = self.target.clone();
        url.set_path(path);
        url.set_query(None);
        url
    }

    /// Requests sent so far.
    pub fn sent(&self) -> usize {
        self.sent
    }

    /// Every answer so far.
    pub fn seen(&self) -> &[Observed] {
        &self.seen
    }

    /// The time left for one more request: the per-request timeout, or less near the
    /// deadline.
    pub fn time_left(&self) -> Option<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        (!left.is_zero()).then(|| left.min(self.timeout))
    }

    /// Send one probe and read at most [`MAX_BODY`] bytes of its answer.
    pub async fn send(&mut self, probe: Probe) -> Result<Observed, ProbeError> {
        if self.sent >= MAX_REQUESTS {
            return Err(ProbeError {
                timed_out: false,
                message: format!("not sent: the audit sends at most {MAX_REQUESTS} requests"),
            });
        }
        let Some(limit) = self.time_left() else {
            return Err(ProbeError {
                timed_out: true,
                message: "not sent: the audit's deadline has passed".to_owned(),
            });
        };
        let label = format!("{} {}", probe.method, probe.url.path());
        let mut request = self.client.request(probe.method, probe.url);
        for (name, value) in probe.headers {
            request = request.header(name, value);
        }
        if let Some(body) = probe.body {
            request = request.body(body);
        }
        self.sent += 1;
        let exchange = async {
            let mut response = request.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let mut body = Vec::new();
            // A body that breaks off is still evidence: keep what arrived.
            while body.len() < MAX_BODY {
                match response.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    Ok(None) | Err(_) => break,
                }
            }
            body.truncate(MAX_BODY);
            Ok::<_, reqwest::Error>((status, headers, body))
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(Ok((status, headers, body))) => {
                let observed = Observed {
                    kind: probe.kind,
                    label,
                    status,
                    headers,
                    body: String::from_utf8_lossy(&body).into_owned(),
                };
                self.seen.push(observed.clone());
                Ok(observed)
            }
            Ok(Err(e)) => Err(ProbeError {
                timed_out: e.is_timeout(),
                message: describe(&e),
            }),
            Err(_) => Err(ProbeError {
                timed_out: true,
                message: format!("no answer within {limit:?}"),
            }),
        }
    }
}

/// A reqwest error with its causes, which say what actually went wrong.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The outcome of an audit.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The audited URL.
    pub target: String,
    /// Requests sent (TLS handshakes not counted).
    pub requests: usize,
    /// Every finding, by area.
    pub findings: Vec<Finding>,
}

impl Report {
    fn count(&self, status: Status) -> usize {
        self.findings.iter().filter(|f| f.status == status).count()
    }

    /// Whether the audit passes: nothing failed, and with `strict` nothing warned.
    pub fn passes(&self, strict: bool) -> bool {
        self.count(Status::Fail) == 0 && !(strict && self.count(Status::Warn) > 0)
    }
}

/// Why `rampart audit` could not produce a report: the message for stderr and the exit
/// code (2 for a bad argument).
pub struct Stopped {
    /// What went wrong, without the `rampart audit:` prefix.
    pub message: String,
    /// The process's exit code.
    pub code: ExitCode,
}

/// Run `rampart audit`: the report as text, and whether it passes (the CLI prints it).
pub fn run(args: AuditArgs) -> Result<(String, bool), Stopped> {
    let extra_roots = match &args.ca_cert {
        Some(path) => tls::read_certificates(path).map_err(|e| Stopped {
            message: format!("--ca-cert {}: {e}", path.display()),
            code: ExitCode::from(2),
        })?,
        None => Vec::new(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Stopped {
            message: format!("cannot start the runtime: {e}"),
            code: ExitCode::FAILURE,
        })?;
    let report = runtime
        .block_on(audit(&args, extra_roots))
        .map_err(|e| Stopped {
            message: format!("{e:#}"),
            code: ExitCode::FAILURE,
        })?;
    let text = match args.format {
        Format::Table => report::table(&report),
        Format::Json => report::json(&report),
    };
    Ok((text, report.passes(args.strict)))
}

/// Probe the target and grade every answer.
pub async fn audit(
    args: &AuditArgs,
    extra_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
) -> anyhow::Result<Report> {
    let mut prober = Prober::new(args)?;
    let target = prober.target().clone();
    prober
        .send(Probe::new(Kind::Baseline, Method::GET, target.clone()))
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", clean(target.as_str(), 200)))?;
    let mut findings = errors::check(&mut prober).await;
    findings.extend(cors::check(&mut prober).await);
    findings.extend(rate_limit::check(&mut prober).await);
    let https = target.scheme() == "https";
    let graded: Vec<&Observed> = prober
        .seen()
        .iter()
        .filter(|o| matches!(o.kind, Kind::Baseline | Kind::Error))
        .collect();
    findings.extend(headers::check(&graded, https));
    findings.extend(cookies::check(prober.seen()));
    let budget = prober.time_left().unwrap_or(Duration::ZERO);
    findings.extend(tls::check(&target, extra_roots, budget).await);
    // Stable: within an area the checks keep the order they were made in.
    findings.sort_by_key(|f| f.area);
    Ok(Report {
        target: target.to_string(),
        requests: prober.sent(),
        findings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_target_text_cannot_reach_the_terminal() {
        let evidence = clean("Express\u{1b}[2J\r\nSet-Cookie: x", 240);
        assert!(!evidence.chars().any(char::is_control), "{evidence:?}");
        assert!(evidence.starts_with("Express?[2J??"));
    }

    #[test]
    fn long_evidence_is_cut() {
        let evidence = clean(&"a".repeat(1000), 10);
        assert_eq!(evidence, format!("{}…", "a".repeat(10)));
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_targets() {
        assert!(parse_target("http://127.0.0.1:8080").is_ok());
        assert!(parse_target("https://api.example.com/v1/").is_ok());
        assert!(parse_target("ftp://example.com").is_err());
        assert!(parse_target("file:///etc/passwd").is_err());
        assert!(parse_target("not a url").is_err());
    }

    #[test]
    fn a_zero_timeout_is_refused() {
        assert!(parse_positive_duration("0ms").is_err());
        assert_eq!(
            parse_positive_duration("500ms"),
            Ok(Duration::from_millis(500))
        );
    }
}
