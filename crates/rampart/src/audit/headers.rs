//! The `headers` area: each security header of API.md §2, graded against helmet 8's
//! defaults and the MDN HTTP Observatory rules, on the URL and on every error answer
//! (a header missing on a 404 is as missing as on a 200).
//!
//! A header helmet 8 sets and the Observatory scores (CSP, HSTS over HTTPS,
//! `X-Content-Type-Options`, framing, `Referrer-Policy`, COOP, CORP) fails when absent
//! or weak; the minor ones (`Origin-Agent-Cluster`, `X-DNS-Prefetch-Control`,
//! `X-Download-Options`, `X-Permitted-Cross-Domain-Policies`, `Permissions-Policy`,
//! `Cache-Control`) warn. A `Server` banner naming a stack or a version and any
//! `X-Powered-By` fail.

use reqwest::header::HeaderMap;

use super::{Area, Finding, Observed, Status};

/// One year, the HSTS `max-age` helmet 8 and the Observatory ask for.
const ONE_YEAR: u64 = 31_536_000;

type Grade = (Status, String);

/// A header check: its field name and how one answer is graded (`https` is the scheme).
type Check = (&'static str, fn(&HeaderMap, bool) -> Grade);

/// Every header check over `responses` (the baseline first): each check reports the
/// worst answer it saw, naming the request for anything short of a pass.
pub(crate) fn check(responses: &[&Observed], https: bool) -> Vec<Finding> {
    let checks: [Check; 16] = [
        ("content-security-policy", |h, _| csp(h)),
        ("strict-transport-security", hsts),
        ("x-content-type-options", |h, _| nosniff(h)),
        ("x-frame-options", |h, _| framing(h)),
        ("referrer-policy", |h, _| referrer_policy(h)),
        ("cross-origin-opener-policy", |h, _| coop(h)),
        ("cross-origin-resource-policy", |h, _| corp(h)),
        ("origin-agent-cluster", |h, _| {
            expect(h, "origin-agent-cluster", &["?1"], Status::Warn)
        }),
        ("x-dns-prefetch-control", |h, _| {
            expect(h, "x-dns-prefetch-control", &["off"], Status::Warn)
        }),
        ("x-download-options", |h, _| {
            expect(h, "x-download-options", &["noopen"], Status::Warn)
        }),
        ("x-permitted-cross-domain-policies", |h, _| {
            expect(
                h,
                "x-permitted-cross-domain-policies",
                &["none", "master-only"],
                Status::Warn,
            )
        }),
        ("x-xss-protection", |h, _| xss_protection(h)),
        ("permissions-policy", |h, _| permissions_policy(h)),
        ("cache-control", |h, _| cache_control(h)),
        ("server", |h, _| server(h)),
        ("x-powered-by", |h, _| powered_by(h)),
    ];
    checks
        .iter()
        .map(|(field, grade)| {
            let mut worst: Option<(Grade, &str, u16)> = None;
            for response in responses {
                let graded = grade(&response.headers, https);
                if worst.as_ref().is_none_or(|(w, _, _)| graded.0 > w.0) {
                    worst = Some((graded, &response.label, response.status));
                }
            }
            match worst {
                Some(((Status::Pass, evidence), _, _)) => {
                    Finding::new(Status::Pass, Area::Headers, field, &evidence)
                }
                Some(((status, evidence), label, code)) => Finding::new(
                    status,
                    Area::Headers,
                    field,
                    &format!("{evidence} (on {label}, {code})"),
                ),
                None => Finding::new(Status::Warn, Area::Headers, field, "no answer to grade"),
            }
        })
        .collect()
}

/// Every value of a header, joined as one field value would be (RFC 9110 §5.3).
fn value(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap_or("<not ASCII>"))
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn pass(evidence: impl Into<String>) -> Grade {
    (Status::Pass, evidence.into())
}

/// A header whose value must be one of `good` (case-insensitively); `missing` is the
/// verdict when it is absent or different.
fn expect(headers: &HeaderMap, name: &str, good: &[&str], missing: Status) -> Grade {
    match value(headers, name) {
        None => (missing, format!("absent; helmet 8 sends {}", good[0])),
        Some(v) if good.iter().any(|g| v.trim().eq_ignore_ascii_case(g)) => pass(v),
        Some(v) => (missing, format!("{v:?}, expected {}", good.join(" or "))),
    }
}

/// A parsed policy: lower-case directive names and their sources.
fn directives(policy: &str) -> Vec<(String, Vec<String>)> {
    policy
        .split(';')
        .filter_map(|d| {
            let mut parts = d.split_ascii_whitespace();
            let name = parts.next()?.to_ascii_lowercase();
            Some((name, parts.map(str::to_owned).collect()))
        })
        .collect()
}

fn sources<'a>(policy: &'a [(String, Vec<String>)], name: &str) -> Option<&'a [String]> {
    policy
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s.as_slice())
}

/// Grade one CSP policy (Observatory "content-security-policy" rules).
fn grade_policy(policy: &str) -> Grade {
    let parsed = directives(policy);
    let default = sources(&parsed, "default-src");
    let Some(script) = sources(&parsed, "script-src").or(default) else {
        return (
            Status::Fail,
            format!("{policy:?} has no default-src or script-src: scripts may load from anywhere"),
        );
    };
    let lower: Vec<String> = script.iter().map(|s| s.to_ascii_lowercase()).collect();
    if lower.iter().any(|s| s == "'unsafe-eval'") {
        return (Status::Fail, format!("{policy:?} allows 'unsafe-eval'"));
    }
    // CSP 2+: a nonce, a hash or 'strict-dynamic' makes browsers ignore 'unsafe-inline'.
    let inline_ignored = lower
        .iter()
        .any(|s| s.starts_with("'nonce-") || s.starts_with("'sha") || s == "'strict-dynamic'");
    if lower.iter().any(|s| s == "'unsafe-inline'") && !inline_ignored {
        return (
            Status::Fail,
            format!("{policy:?} allows 'unsafe-inline' scripts"),
        );
    }
    for name in ["default-src", "script-src", "object-src", "frame-ancestors"] {
        if let Some(wide) = sources(&parsed, name).and_then(|s| {
            s.iter().find(|s| {
                let s = s.to_ascii_lowercase();
                s == "*"
                    || s == "http:"
                    || s == "https:"
                    || (name != "frame-ancestors" && s == "data:")
            })
        }) {
            return (Status::Fail, format!("{name} allows any source ({wide})"));
        }
    }
    if sources(&parsed, "frame-ancestors").is_none() {
        return (
            Status::Fail,
            format!("{policy:?} has no frame-ancestors: any site may frame it"),
        );
    }
    let style = sources(&parsed, "style-src").or(default).unwrap_or(&[]);
    if style
        .iter()
        .any(|s| s.eq_ignore_ascii_case("'unsafe-inline'"))
    {
        return (Status::Warn, format!("{policy:?} allows inline styles"));
    }
    pass(policy)
}

fn csp(headers: &HeaderMap) -> Grade {
    // Every policy delivered is enforced, so the strictest one decides.
    let policies: Vec<String> = headers
        .get_all("content-security-policy")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| {
            v.split(',')
                .map(|p| p.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|p| !p.is_empty())
        .collect();
    if policies.is_empty() {
        return if headers.contains_key("content-security-policy-report-only") {
            (
                Status::Fail,
                "only Content-Security-Policy-Report-Only, which enforces nothing".to_owned(),
            )
        } else {
            (Status::Fail, "absent".to_owned())
        };
    }
    policies
        .iter()
        .map(|p| grade_policy(p))
        .min_by_key(|(status, _)| *status)
        .unwrap_or_else(|| (Status::Fail, "absent".to_owned()))
}

fn hsts(headers: &HeaderMap, https: bool) -> Grade {
    let Some(v) = value(headers, "strict-transport-security") else {
        return if https {
            (Status::Fail, "absent over HTTPS".to_owned())
        } else {
            pass("absent over plain HTTP, where browsers ignore it (RFC 6797 §8.1)")
        };
    };
    if !https {
        return pass(format!(
            "{v} (sent over plain HTTP, where browsers ignore it)"
        ));
    }
    let parsed = directives(&v.replace(',', ";"));
    let max_age = parsed.iter().find_map(|(name, _)| {
        name.strip_prefix("max-age=")
            .map(|n| n.trim_matches('"').parse::<u64>().ok())
    });
    match max_age {
        None | Some(None) => (Status::Fail, format!("{v:?} has no valid max-age")),
        Some(Some(age)) if age < ONE_YEAR => (
            Status::Fail,
            format!("max-age={age} is under one year ({ONE_YEAR})"),
        ),
        Some(Some(_)) if !parsed.iter().any(|(n, _)| n == "includesubdomains") => (
            Status::Warn,
            format!("{v} lacks includeSubDomains (helmet 8 sends it)"),
        ),
        Some(Some(_)) => pass(v),
    }
}

fn nosniff(headers: &HeaderMap) -> Grade {
    match value(headers, "x-content-type-options") {
        None => (
            Status::Fail,
            "absent: browsers may sniff content types".to_owned(),
        ),
        Some(v) if v.trim().eq_ignore_ascii_case("nosniff") => pass(v),
        Some(v) => (Status::Fail, format!("{v:?} is not nosniff")),
    }
}

fn framing(headers: &HeaderMap) -> Grade {
    let frame_ancestors = headers
        .get_all("content-security-policy")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            directives(v)
                .into_iter()
                .find(|(n, _)| n == "frame-ancestors")
                .map(|(_, s)| s.join(" "))
        });
    match (value(headers, "x-frame-options"), frame_ancestors) {
        (Some(v), _)
            if v.trim().eq_ignore_ascii_case("deny")
                || v.trim().eq_ignore_ascii_case("sameorigin") =>
        {
            pass(v)
        }
        // The Observatory accepts CSP frame-ancestors in place of X-Frame-Options.
        (v, Some(fa)) if !fa.split(' ').any(|s| s == "*") => pass(format!(
            "{}; CSP frame-ancestors {fa} protects",
            v.map_or("absent".to_owned(), |v| format!("{v:?}")),
        )),
        (None, _) => (
            Status::Fail,
            "absent, and no CSP frame-ancestors: any site may frame it".to_owned(),
        ),
        (Some(v), _) => (
            Status::Fail,
            format!("{v:?} is not DENY or SAMEORIGIN (ALLOW-FROM is ignored by browsers)"),
        ),
    }
}

fn referrer_policy(headers: &HeaderMap) -> Grade {
    let Some(v) = value(headers, "referrer-policy") else {
        return (
            Status::Fail,
            "absent; helmet 8 sends no-referrer".to_owned(),
        );
    };
    // Browsers apply the last policy they understand.
    let known = [
        "no-referrer",
        "same-origin",
        "strict-origin",
        "strict-origin-when-cross-origin",
        "origin",
        "origin-when-cross-origin",
        "no-referrer-when-downgrade",
        "unsafe-url",
    ];
    let effective = v
        .split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .rfind(|p| known.contains(&p.as_str()));
    match effective.as_deref() {
        Some(
            "no-referrer" | "same-origin" | "strict-origin" | "strict-origin-when-cross-origin",
        ) => pass(v),
        Some(p) => (Status::Fail, format!("{p} sends the URL to other origins")),
        None => (Status::Fail, format!("{v:?} is not a referrer policy")),
    }
}

fn coop(headers: &HeaderMap) -> Grade {
    match value(headers, "cross-origin-opener-policy") {
        None => (
            Status::Fail,
            "absent; helmet 8 sends same-origin".to_owned(),
        ),
        Some(v)
            if [
                "same-origin",
                "same-origin-allow-popups",
                "noopener-allow-popups",
            ]
            .contains(&v.trim().to_ascii_lowercase().as_str()) =>
        {
            pass(v)
        }
        Some(v) => (
            Status::Fail,
            format!("{v:?} lets other origins keep a handle on the window"),
        ),
    }
}

fn corp(headers: &HeaderMap) -> Grade {
    match value(headers, "cross-origin-resource-policy") {
        None => (
            Status::Fail,
            "absent; helmet 8 sends same-origin".to_owned(),
        ),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "same-origin" | "same-site" => pass(v),
            "cross-origin" => (
                Status::Warn,
                "cross-origin: any site may embed the responses".to_owned(),
            ),
            _ => (Status::Fail, format!("{v:?} is not a resource policy")),
        },
    }
}

fn xss_protection(headers: &HeaderMap) -> Grade {
    match value(headers, "x-xss-protection") {
        None => pass("absent (browsers removed the XSS auditor)"),
        Some(v) if v.trim() == "0" => pass(v),
        Some(v) => (
            Status::Warn,
            format!("{v:?} turns on the legacy XSS auditor, itself a leak; helmet 8 sends 0"),
        ),
    }
}

fn permissions_policy(headers: &HeaderMap) -> Grade {
    let Some(v) = value(headers, "permissions-policy") else {
        return (
            Status::Warn,
            "absent: camera, microphone and geolocation are not disabled".to_owned(),
        );
    };
    let compact: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    let missing: Vec<&str> = ["camera", "microphone", "geolocation"]
        .into_iter()
        .filter(|f| !compact.contains(&format!("{f}=()")))
        .collect();
    if missing.is_empty() {
        pass(v)
    } else {
        (
            Status::Warn,
            format!("{v:?} does not disable {}", missing.join(", ")),
        )
    }
}

fn cache_control(headers: &HeaderMap) -> Grade {
    match value(headers, "cache-control") {
        Some(v) if v.to_ascii_lowercase().contains("no-store") => pass(v),
        Some(v) => (
            Status::Warn,
            format!("{v:?} without no-store: caches may keep tokens or personal data"),
        ),
        None => (
            Status::Warn,
            "absent: caches may keep tokens or personal data".to_owned(),
        ),
    }
}

/// Products whose name in a `Server` banner tells an attacker which exploits to try.
const STACKS: &[&str] = &[
    "express",
    "node",
    "nginx",
    "openresty",
    "apache",
    "httpd",
    "iis",
    "kestrel",
    "gunicorn",
    "uvicorn",
    "hypercorn",
    "werkzeug",
    "waitress",
    "tornado",
    "jetty",
    "tomcat",
    "undertow",
    "wildfly",
    "puma",
    "unicorn",
    "passenger",
    "thin",
    "webrick",
    "lighttpd",
    "caddy",
    "envoy",
    "cowboy",
    "hyper",
    "axum",
    "actix",
    "rocket",
    "warp",
    "php",
    "deno",
    "bun",
    "litespeed",
];

fn server(headers: &HeaderMap) -> Grade {
    let Some(v) = value(headers, "server") else {
        return pass("absent");
    };
    let lower = v.to_ascii_lowercase();
    let named = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|word| STACKS.contains(&word));
    if named || v.contains('/') || v.chars().any(|c| c.is_ascii_digit()) {
        (
            Status::Fail,
            format!("{v:?} names the stack or its version"),
        )
    } else {
        (
            Status::Warn,
            format!("{v:?}: a banner helps fingerprinting"),
        )
    }
}

fn powered_by(headers: &HeaderMap) -> Grade {
    match value(headers, "x-powered-by") {
        None => pass("absent"),
        Some(v) => (Status::Fail, format!("{v:?} names the framework")),
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderName, HeaderValue};

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn status(pairs: &[(&str, &str)], grade: fn(&HeaderMap) -> Grade) -> Status {
        grade(&map(pairs)).0
    }

    #[test]
    fn the_json_api_policy_passes() {
        let h = [(
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        )];
        assert_eq!(status(&h, csp), Status::Pass);
    }

    #[test]
    fn weak_policies_fail_for_the_right_reason() {
        for (policy, reason) in [
            (
                "default-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
                "unsafe-inline",
            ),
            (
                "script-src 'self' 'unsafe-eval'; frame-ancestors 'none'",
                "unsafe-eval",
            ),
            ("default-src *; frame-ancestors 'none'", "any source"),
            ("default-src https:; frame-ancestors 'none'", "any source"),
            ("default-src 'self'", "frame-ancestors"),
            ("img-src 'self'; frame-ancestors 'none'", "no default-src"),
        ] {
            let (s, evidence) = csp(&map(&[("content-security-policy", policy)]));
            assert_eq!(s, Status::Fail, "{policy}");
            assert!(evidence.contains(reason), "{policy}: {evidence}");
        }
        assert_eq!(status(&[], csp), Status::Fail);
        let report_only = [("content-security-policy-report-only", "default-src 'none'")];
        assert_eq!(status(&report_only, csp), Status::Fail);
    }

    #[test]
    fn a_nonce_makes_unsafe_inline_harmless() {
        let policy =
            "default-src 'self'; script-src 'nonce-abc' 'unsafe-inline'; frame-ancestors 'none'";
        assert_eq!(
            status(&[("content-security-policy", policy)], csp),
            Status::Pass
        );
    }

    #[test]
    fn hsts_needs_a_year_over_https_only() {
        let year = map(&[(
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        )]);
        assert_eq!(hsts(&year, true).0, Status::Pass);
        let day = map(&[(
            "strict-transport-security",
            "max-age=86400; includeSubDomains",
        )]);
        assert_eq!(hsts(&day, true).0, Status::Fail);
        let no_sub = map(&[("strict-transport-security", "max-age=63072000")]);
        assert_eq!(hsts(&no_sub, true).0, Status::Warn);
        assert_eq!(hsts(&HeaderMap::new(), true).0, Status::Fail);
        assert_eq!(hsts(&HeaderMap::new(), false).0, Status::Pass);
    }

    #[test]
    fn framing_is_protected_by_x_frame_options_or_frame_ancestors() {
        assert_eq!(
            status(&[("x-frame-options", "DENY")], framing),
            Status::Pass
        );
        let fa = [(
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'self'",
        )];
        assert_eq!(status(&fa, framing), Status::Pass);
        assert_eq!(status(&[], framing), Status::Fail);
        let allow = [("x-frame-options", "ALLOW-FROM https://a.example")];
        assert_eq!(status(&allow, framing), Status::Fail);
    }

    #[test]
    fn referrer_policy_takes_the_last_known_value() {
        assert_eq!(
            status(&[("referrer-policy", "no-referrer")], referrer_policy),
            Status::Pass
        );
        let list = [("referrer-policy", "no-referrer, unsafe-url")];
        assert_eq!(status(&list, referrer_policy), Status::Fail);
        let fallback = [(
            "referrer-policy",
            "unsafe-url, strict-origin-when-cross-origin",
        )];
        assert_eq!(status(&fallback, referrer_policy), Status::Pass);
        assert_eq!(status(&[], referrer_policy), Status::Fail);
    }

    #[test]
    fn server_banners_naming_a_stack_or_version_fail() {
        assert_eq!(status(&[("server", "Express")], server), Status::Fail);
        assert_eq!(status(&[("server", "nginx/1.25.3")], server), Status::Fail);
        assert_eq!(
            status(&[("server", "Microsoft-IIS/10.0")], server),
            Status::Fail
        );
        assert_eq!(status(&[("server", "frontdoor")], server), Status::Warn);
        assert_eq!(status(&[], server), Status::Pass);
        assert_eq!(
            status(&[("x-powered-by", "PHP/8.3")], powered_by),
            Status::Fail
        );
    }

    #[test]
    fn permissions_policy_must_disable_the_three_features() {
        let good = [(
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        )];
        assert_eq!(status(&good, permissions_policy), Status::Pass);
        let partial = [("permissions-policy", "camera=()")];
        assert_eq!(status(&partial, permissions_policy), Status::Warn);
    }

    #[test]
    fn the_worst_answer_decides_and_is_named() {
        let good = Observed {
            kind: super::super::Kind::Baseline,
            label: "GET /".to_owned(),
            status: 200,
            headers: map(&[("x-content-type-options", "nosniff")]),
            body: String::new(),
        };
        let bad = Observed {
            label: "GET /missing".to_owned(),
            status: 404,
            headers: HeaderMap::new(),
            ..good.clone()
        };
        let findings = check(&[&good, &bad], false);
        let xcto = findings
            .iter()
            .find(|f| f.check == "x-content-type-options")
            .unwrap();
        assert_eq!(xcto.status, Status::Fail);
        assert!(
            xcto.evidence.contains("GET /missing, 404"),
            "{}",
            xcto.evidence
        );
    }
}
