//! The `cors` area: does the target let other origins read its answers?
//!
//! Four requests: a simple `GET` from a foreign origin, from `null` (sandboxed frames,
//! `file:` pages), from a look-alike of the target's own origin
//! (`https://target.example.audit-evil.example`, which naive suffix or prefix matching
//! lets through), and a preflight. Reflecting the caller's origin fails, with or without
//! credentials; `*` with `Access-Control-Allow-Credentials: true` fails; a bare `*`
//! warns (fine for a public, credential-free API, not for anything else).

use reqwest::Method;

use super::{Area, Finding, Kind, Probe, Prober, Status};

/// An origin no allowlist should hold.
const FOREIGN: &str = "https://rampart-audit.example";

/// Send the CORS probes and grade them.
pub(crate) async fn check(prober: &mut Prober) -> Vec<Finding> {
    let target = prober.target().clone();
    let look_alike = format!(
        "{}://{}.audit-evil.example",
        target.scheme(),
        target.host_str().unwrap_or("target")
    );
    let mut findings = Vec::new();
    for (check, origin) in [
        ("foreign-origin", FOREIGN.to_owned()),
        ("null-origin", "null".to_owned()),
        ("look-alike-origin", look_alike),
    ] {
        let probe =
            Probe::new(Kind::Cors, Method::GET, target.clone()).header("origin", origin.clone());
        findings.push(grade(check, &origin, prober.send(probe).await));
    }
    let preflight = Probe::new(Kind::Cors, Method::OPTIONS, target)
        .header("origin", FOREIGN)
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        );
    findings.push(grade("preflight", FOREIGN, prober.send(preflight).await));
    findings
}

fn grade(check: &str, origin: &str, answer: Result<super::Observed, super::ProbeError>) -> Finding {
    let response = match answer {
        Ok(response) => response,
        Err(e) => {
            return Finding::new(Status::Warn, Area::Cors, check, &format!("no answer: {e}"));
        }
    };
    let credentials = response
        .header("access-control-allow-credentials")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let with = if credentials {
        " with Access-Control-Allow-Credentials: true"
    } else {
        ""
    };
    let (status, evidence) = match response
        .header("access-control-allow-origin")
        .map(str::trim)
    {
        None => (
            Status::Pass,
            format!(
                "Origin {origin}: {} without Access-Control-Allow-Origin",
                response.status
            ),
        ),
        Some(allowed) if allowed.eq_ignore_ascii_case(origin) => (
            Status::Fail,
            format!("reflects Origin {origin} in Access-Control-Allow-Origin{with}"),
        ),
        Some("*") if credentials => (
            Status::Fail,
            "Access-Control-Allow-Origin: * with Access-Control-Allow-Credentials: true".to_owned(),
        ),
        Some("*") => (
            Status::Warn,
            "Access-Control-Allow-Origin: *: any site may read the answers".to_owned(),
        ),
        Some(allowed) => (
            Status::Pass,
            format!("Origin {origin}: answers for its own allowed origin {allowed} only"),
        ),
    };
    Finding::new(status, Area::Cors, check, &evidence)
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

    use super::super::Observed;
    use super::*;

    fn answer(pairs: &[(&str, &str)]) -> Result<Observed, super::super::ProbeError> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        Ok(Observed {
            kind: Kind::Cors,
            label: "GET /".to_owned(),
            status: 200,
            headers,
            body: String::new(),
        })
    }

    #[test]
    fn a_reflected_origin_fails_and_a_missing_header_passes() {
        let reflected = answer(&[("access-control-allow-origin", FOREIGN)]);
        assert_eq!(
            grade("foreign-origin", FOREIGN, reflected).status,
            Status::Fail
        );
        let null = answer(&[("access-control-allow-origin", "null")]);
        assert_eq!(grade("null-origin", "null", null).status, Status::Fail);
        assert_eq!(
            grade("foreign-origin", FOREIGN, answer(&[])).status,
            Status::Pass
        );
        let fixed = answer(&[("access-control-allow-origin", "https://app.example")]);
        assert_eq!(grade("foreign-origin", FOREIGN, fixed).status, Status::Pass);
    }

    #[test]
    fn a_wildcard_with_credentials_fails_and_alone_warns() {
        let both = answer(&[
            ("access-control-allow-origin", "*"),
            ("access-control-allow-credentials", "true"),
        ]);
        assert_eq!(grade("foreign-origin", FOREIGN, both).status, Status::Fail);
        let star = answer(&[("access-control-allow-origin", "*")]);
        assert_eq!(grade("foreign-origin", FOREIGN, star).status, Status::Warn);
    }
}
