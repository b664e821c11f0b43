//! CSRF protection of every state-changing form POST of the pages.
//!
//! Two checks, both must pass:
//! 1. Where the browser says where the request comes from, it must come from here:
//!    `Sec-Fetch-Site: cross-site` is refused (`same-origin`, `same-site` and `none` — a
//!    typed URL or bookmark — pass), and an `Origin` header must be the origin of
//!    `RAMPART_PUBLIC_URL` or the origin the request itself was sent to (its `Host` on
//!    this connection's scheme), so the pages work both under their public name and when
//!    reached directly on loopback. `Origin: null` is refused, except beside
//!    `Sec-Fetch-Site: same-origin`: the pages' own `Referrer-Policy: no-referrer` makes
//!    browsers send `null` on same-origin form posts (Fetch, "serializing a request
//!    origin"), and fetch metadata cannot be set by page content. A request with neither
//!    header is judged by the token alone.
//! 2. The synchronizer token: the hidden field `csrf_token` must be the HMAC of this
//!    session's id ([`super::session::Keys::csrf_token`]), compared in constant time.
//!    A token of another session, a forged one or none is refused.
//!
//! Every refusal is 403 `csrf_failed` and a `csrf_failed` security event, and changes no
//! session (no `Set-Cookie`).

use http::{HeaderMap, header};

use super::session::{BrowserSession, Keys};

/// Why a form POST was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Sec-Fetch-Site: cross-site`.
    CrossSite,
    /// An `Origin` that is not this server's.
    ForeignOrigin,
    /// No session cookie, or one of an ended session: no token can match.
    NoSession,
    /// No `csrf_token` field.
    MissingToken,
    /// A `csrf_token` that is not this session's.
    WrongToken,
}

impl Refusal {
    /// The reason, for the event's details.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CrossSite => "cross-site request",
            Self::ForeignOrigin => "foreign origin",
            Self::NoSession => "no session",
            Self::MissingToken => "missing token",
            Self::WrongToken => "wrong token",
        }
    }
}

/// The origins a form may be posted from: the public URL's and the request's own.
pub fn allowed_origins(public_origin: &str, headers: &HeaderMap, https: bool) -> Vec<String> {
    let mut origins = vec![public_origin.to_owned()];
    if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        let scheme = if https { "https" } else { "http" };
        origins.push(format!("{scheme}://{}", host.to_ascii_lowercase()));
    }
    origins
}

/// The fetch-metadata and origin check (step 1 of the module docs).
pub fn check_source(headers: &HeaderMap, allowed: &[String]) -> Result<(), Refusal> {
    let site = headers
        .get("sec-fetch-site")
        .map(|s| s.to_str().map(str::to_ascii_lowercase));
    let same_origin = matches!(&site, Some(Ok(s)) if s == "same-origin");
    if let Some(site) = site {
        match site.as_deref() {
            Ok("same-origin" | "same-site" | "none") => {}
            _ => return Err(Refusal::CrossSite),
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().map(str::to_ascii_lowercase);
        match origin {
            Ok(o) if allowed.iter().any(|a| a.eq_ignore_ascii_case(&o)) => {}
            Ok(o) if o == "null" && same_origin => {}
            _ => return Err(Refusal::ForeignOrigin),
        }
    }
    Ok(())
}

/// The token check (step 2 of the module docs).
pub fn check_token(
    keys: &Keys,
    session: Option<&BrowserSession>,
    token: Option<&str>,
) -> Result<(), Refusal> {
    let session = session.ok_or(Refusal::NoSession)?;
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(Refusal::MissingToken)?;
    if keys.csrf_matches(&session.id, token) {
        Ok(())
    } else {
        Err(Refusal::WrongToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn same_origin_and_headerless_requests_pass_and_cross_site_ones_do_not() {
        let allowed = allowed_origins(
            "https://id.example.com",
            &headers(&[("host", "127.0.0.1:8080")]),
            false,
        );
        assert_eq!(allowed[1], "http://127.0.0.1:8080");
        assert_eq!(check_source(&headers(&[]), &allowed), Ok(()));
        for site in ["same-origin", "same-site", "none"] {
            let h = headers(&[
                ("sec-fetch-site", site),
                ("origin", "https://id.example.com"),
            ]);
            assert_eq!(check_source(&h, &allowed), Ok(()), "{site}");
        }
        let h = headers(&[("origin", "http://127.0.0.1:8080")]);
        assert_eq!(check_source(&h, &allowed), Ok(()));
        let h = headers(&[("sec-fetch-site", "cross-site")]);
        assert_eq!(check_source(&h, &allowed), Err(Refusal::CrossSite));
        // `null` is this site's own post only when fetch metadata says so.
        let h = headers(&[("sec-fetch-site", "same-origin"), ("origin", "null")]);
        assert_eq!(check_source(&h, &allowed), Ok(()));
        let h = headers(&[("sec-fetch-site", "same-site"), ("origin", "null")]);
        assert_eq!(check_source(&h, &allowed), Err(Refusal::ForeignOrigin));
        for origin in [
            "https://evil.example",
            "null",
            "https://id.example.com.evil.example",
        ] {
            let mut h = HeaderMap::new();
            h.insert("origin", origin.parse().unwrap());
            assert_eq!(
                check_source(&h, &allowed),
                Err(Refusal::ForeignOrigin),
                "{origin}"
            );
        }
    }
}
