//! Security headers on every response, errors included: helmet 8's defaults made stricter
//! for an API (`X-Frame-Options: DENY`, a JSON CSP of `default-src 'none'; frame-ancestors
//! 'none'`, a `Permissions-Policy`, `Cache-Control: no-store`).
//!
//! ```
//! use rampart_layers::headers::{SecurityHeaders, SecurityHeadersLayer};
//! let layer = SecurityHeadersLayer::new(SecurityHeaders::api());
//! ```
//!
//! A header a handler already set (an uploaded file's sandbox CSP, a cacheable asset's
//! `Cache-Control`) is kept: the layer fills in, it never overwrites.
//!
//! # Security
//! `Strict-Transport-Security` is sent only when the client's connection is HTTPS — TLS here,
//! or HTTPS reported by a trusted proxy through [`crate::client_ip::ClientIp`]. Over plain
//! HTTP browsers ignore it anyway, and sending it there would advertise a promise that
//! nothing keeps.

mod service;

pub use service::{SecurityHeadersLayer, SecurityHeadersService};

use http::{HeaderMap, HeaderName, HeaderValue, header};

const X_POWERED_BY: HeaderName = HeaderName::from_static("x-powered-by");

/// The HSTS value: one year, subdomains included.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// A Content-Security-Policy that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentSecurityPolicy(HeaderValue);

/// Why a CSP was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CspError {
    /// A directive name is not a known CSP directive.
    #[error("unknown CSP directive `{0}`")]
    UnknownDirective(String),
    /// The policy has characters a header cannot carry, or is empty.
    #[error("the policy is empty or not a valid header value")]
    Invalid,
    /// `frame-ancestors` is missing: clickjacking protection would rest on XFO alone.
    #[error("the policy must set frame-ancestors")]
    MissingFrameAncestors,
}

const KNOWN_DIRECTIVES: &[&str] = &[
    "default-src",
    "script-src",
    "script-src-elem",
    "script-src-attr",
    "style-src",
    "style-src-elem",
    "style-src-attr",
    "img-src",
    "font-src",
    "connect-src",
    "media-src",
    "object-src",
    "frame-src",
    "child-src",
    "worker-src",
    "manifest-src",
    "form-action",
    "frame-ancestors",
    "base-uri",
    "sandbox",
    "upgrade-insecure-requests",
    "report-to",
    "report-uri",
];

impl ContentSecurityPolicy {
    /// Parse and validate a policy: known directives only, `frame-ancestors` required.
    pub fn parse(policy: &str) -> Result<Self, CspError> {
        let mut has_frame_ancestors = false;
        let mut any = false;
        for directive in policy.split(';').map(str::trim).filter(|d| !d.is_empty()) {
            any = true;
            let name = directive.split_whitespace().next().unwrap_or_default();
            let name = name.to_ascii_lowercase();
            if !KNOWN_DIRECTIVES.contains(&name.as_str()) {
                return Err(CspError::UnknownDirective(name));
            }
            has_frame_ancestors |= name == "frame-ancestors";
        }
        if !any {
            return Err(CspError::Invalid);
        }
        if !has_frame_ancestors {
            return Err(CspError::MissingFrameAncestors);
        }
        HeaderValue::from_str(policy)
            .map(Self)
            .map_err(|_| CspError::Invalid)
    }

    /// The policy for JSON APIs: nothing may load, nothing may frame.
    pub fn json_api() -> Self {
        Self(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ))
    }

    /// The header value.
    pub fn value(&self) -> &HeaderValue {
        &self.0
    }
}

/// The set of headers the layer adds.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    /// The fixed headers, the map a response starts from over plain HTTP.
    plain: HeaderMap,
    /// The same with HSTS, over HTTPS.
    https: HeaderMap,
}

impl SecurityHeaders {
    /// The preset for JSON APIs.
    pub fn api() -> Self {
        Self::with_csp(ContentSecurityPolicy::json_api())
    }

    /// helmet 8's set with the given CSP, `Cache-Control: no-store` included.
    pub fn with_csp(csp: ContentSecurityPolicy) -> Self {
        let s = HeaderValue::from_static;
        let fixed = vec![
            (header::CONTENT_SECURITY_POLICY, csp.0),
            (header::X_CONTENT_TYPE_OPTIONS, s("nosniff")),
            (header::X_FRAME_OPTIONS, s("DENY")),
            (header::REFERRER_POLICY, s("no-referrer")),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                s("same-origin"),
            ),
            (
                HeaderName::from_static("cross-origin-resource-policy"),
                s("same-origin"),
            ),
            (HeaderName::from_static("origin-agent-cluster"), s("?1")),
            (header::X_DNS_PREFETCH_CONTROL, s("off")),
            (HeaderName::from_static("x-download-options"), s("noopen")),
            (
                HeaderName::from_static("x-permitted-cross-domain-policies"),
                s("none"),
            ),
            (header::X_XSS_PROTECTION, s("0")),
            (
                HeaderName::from_static("permissions-policy"),
                s(
                    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), \
                   interest-cohort=()",
                ),
            ),
            (header::CACHE_CONTROL, s("no-store")),
        ];
        let plain: HeaderMap = fixed.into_iter().collect();
        let mut https = plain.clone();
        https.insert(header::STRICT_TRANSPORT_SECURITY, s(HSTS));
        Self { plain, https }
    }

    /// The headers sent on every response (HSTS aside, which depends on the connection).
    pub fn fixed(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.plain.iter()
    }

    /// Give `headers` (a response's) every fixed header it lacks — one it set itself is
    /// kept —, HSTS exactly when the client's connection is HTTPS (whatever the handler
    /// said), and no `Server` or `X-Powered-By` banner.
    ///
    /// The response's headers are moved onto a copy of a prepared map rather than the
    /// fixed headers inserted one by one: a copy costs less than a dozen hashed lookups and
    /// inserts, and a response sets only a few headers of its own.
    pub fn apply(&self, headers: &mut HeaderMap, https: bool) {
        let template = if https { &self.https } else { &self.plain };
        let own = std::mem::replace(headers, template.clone());
        let mut current: Option<HeaderName> = None;
        let mut dropped = false;
        // The map yields each name once, with its first value; further values follow
        // without a name.
        for (name, value) in own {
            match name {
                Some(name) => {
                    dropped = name == header::STRICT_TRANSPORT_SECURITY
                        || name == header::SERVER
                        || name == X_POWERED_BY;
                    if !dropped {
                        headers.insert(&name, value);
                    }
                    current = Some(name);
                }
                None => {
                    if let (Some(name), false) = (&current, dropped) {
                        headers.append(name, value);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csp_without_frame_ancestors_is_refused() {
        assert_eq!(
            ContentSecurityPolicy::parse("default-src 'self'"),
            Err(CspError::MissingFrameAncestors)
        );
    }

    #[test]
    fn a_misspelt_directive_is_refused() {
        assert_eq!(
            ContentSecurityPolicy::parse("defualt-src 'none'; frame-ancestors 'none'"),
            Err(CspError::UnknownDirective("defualt-src".into()))
        );
    }

    #[test]
    fn a_header_injection_is_refused() {
        assert_eq!(
            ContentSecurityPolicy::parse("frame-ancestors 'none'\r\nSet-Cookie: a=b"),
            Err(CspError::Invalid)
        );
    }
}
