//! The `cookie` area: every `Set-Cookie` the audit's requests received, one finding per
//! cookie name (RFC 6265bis attributes and prefixes).
//!
//! `Secure` and `HttpOnly` missing fail (a cookie scripts must read is rarely worth the
//! risk on an API); `SameSite` missing warns (browsers differ on the default);
//! `SameSite=None` without `Secure` fails; `__Secure-` needs `Secure`; `__Host-` needs
//! `Secure`, `Path=/` and no `Domain`. Prefixes are matched case-insensitively, as
//! browsers do.

use super::{Area, Finding, Observed, Status};

/// The attributes of one `Set-Cookie` that matter here.
#[derive(Debug, Default, PartialEq, Eq)]
struct SetCookie {
    name: String,
    secure: bool,
    http_only: bool,
    same_site: Option<String>,
    path: Option<String>,
    domain: Option<String>,
}

fn parse(header: &str) -> Option<SetCookie> {
    let mut parts = header.split(';');
    let (name, _) = parts.next()?.split_once('=')?;
    let mut cookie = SetCookie {
        name: name.trim().to_owned(),
        ..SetCookie::default()
    };
    for attribute in parts {
        let (key, value) = attribute
            .split_once('=')
            .map_or((attribute, ""), |(k, v)| (k, v));
        let value = value.trim().to_owned();
        match key.trim().to_ascii_lowercase().as_str() {
            "secure" => cookie.secure = true,
            "httponly" => cookie.http_only = true,
            "samesite" => cookie.same_site = Some(value),
            "path" => cookie.path = Some(value),
            "domain" => cookie.domain = Some(value),
            _ => {}
        }
    }
    (!cookie.name.is_empty()).then_some(cookie)
}

/// Grade every cookie seen (first occurrence of each name).
pub(crate) fn check(seen: &[Observed]) -> Vec<Finding> {
    let mut cookies: Vec<(SetCookie, &str)> = Vec::new();
    for response in seen {
        for value in response.headers.get_all("set-cookie") {
            let Some(cookie) = value.to_str().ok().and_then(parse) else {
                continue;
            };
            if !cookies.iter().any(|(c, _)| c.name == cookie.name) {
                cookies.push((cookie, &response.label));
            }
        }
    }
    if cookies.is_empty() {
        return vec![Finding::new(
            Status::Pass,
            Area::Cookie,
            "set-cookie",
            &format!("no Set-Cookie on the {} answers audited", seen.len()),
        )];
    }
    cookies
        .iter()
        .map(|(cookie, label)| {
            let (status, evidence) = grade(cookie);
            Finding::new(
                status,
                Area::Cookie,
                &cookie.name,
                &format!("{evidence} (from {label})"),
            )
        })
        .collect()
}

fn grade(cookie: &SetCookie) -> (Status, String) {
    let mut problems: Vec<(Status, String)> = Vec::new();
    if !cookie.secure {
        problems.push((Status::Fail, "no Secure".to_owned()));
    }
    if !cookie.http_only {
        problems.push((Status::Fail, "no HttpOnly".to_owned()));
    }
    match cookie
        .same_site
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => problems.push((Status::Warn, "no SameSite".to_owned())),
        Some("strict" | "lax") => {}
        Some("none") if cookie.secure => {
            problems.push((
                Status::Warn,
                "SameSite=None: sent on cross-site requests".to_owned(),
            ));
        }
        Some("none") => problems.push((Status::Fail, "SameSite=None without Secure".to_owned())),
        Some(other) => problems.push((Status::Warn, format!("SameSite={other} is not a value"))),
    }
    let lower = cookie.name.to_ascii_lowercase();
    if lower.starts_with("__secure-") && !cookie.secure {
        problems.push((Status::Fail, "__Secure- prefix without Secure".to_owned()));
    }
    if lower.starts_with("__host-") {
        if !cookie.secure {
            problems.push((Status::Fail, "__Host- prefix without Secure".to_owned()));
        }
        if cookie.path.as_deref() != Some("/") {
            problems.push((Status::Fail, "__Host- prefix without Path=/".to_owned()));
        }
        if cookie.domain.is_some() {
            problems.push((Status::Fail, "__Host- prefix with a Domain".to_owned()));
        }
    }
    match problems.iter().map(|(s, _)| *s).max() {
        None => (
            Status::Pass,
            format!(
                "Secure; HttpOnly; SameSite={}",
                cookie.same_site.as_deref().unwrap_or_default()
            ),
        ),
        Some(status) => {
            let reasons: Vec<&str> = problems.iter().map(|(_, r)| r.as_str()).collect();
            (status, reasons.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(header: &str) -> Status {
        grade(&parse(header).unwrap()).0
    }

    #[test]
    fn rampart_s_cookies_pass() {
        assert_eq!(
            status(
                "__Secure-rampart_refresh=x; HttpOnly; Secure; SameSite=Strict; Path=/api/v1/auth; Max-Age=604800"
            ),
            Status::Pass
        );
        assert_eq!(
            status("__Host-rampart_session=x; HttpOnly; Secure; SameSite=Lax; Path=/"),
            Status::Pass
        );
    }

    #[test]
    fn a_cookie_without_flags_fails_naming_each() {
        let (s, evidence) = grade(&parse("session=abc123").unwrap());
        assert_eq!(s, Status::Fail);
        for flag in ["Secure", "HttpOnly", "SameSite"] {
            assert!(evidence.contains(flag), "{evidence}");
        }
    }

    #[test]
    fn prefix_rules_are_enforced() {
        assert_eq!(
            status("__Host-id=1; Secure; HttpOnly; SameSite=Lax; Path=/; Domain=example.com"),
            Status::Fail
        );
        assert_eq!(
            status("__Host-id=1; Secure; HttpOnly; SameSite=Lax; Path=/app"),
            Status::Fail
        );
        assert_eq!(
            status("__host-id=1; HttpOnly; SameSite=Lax; Path=/"),
            Status::Fail
        );
        assert_eq!(
            status("__Secure-id=1; HttpOnly; SameSite=Lax"),
            Status::Fail
        );
    }

    #[test]
    fn only_missing_same_site_warns() {
        assert_eq!(status("id=1; Secure; HttpOnly"), Status::Warn);
    }
}
