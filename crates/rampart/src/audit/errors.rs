//! The `errors` area: four client errors — an unknown route, a wrong method (`TRACE`,
//! which is also the cross-site-tracing probe and changes nothing on any server), malformed
//! JSON and a body over 1 MiB — each of which must get a calm 4xx that leaks nothing.
//!
//! A body fails when it holds a stack trace, a server file path, SQL or a database
//! driver's message, a framework's banner page, or a language's type names (parser
//! detail such as serde's "at line 1 column 5" included); a 5xx for any of these client
//! errors fails too. The patterns are deliberately specific: a false alarm in CI costs
//! more trust than a rare miss.

use std::sync::LazyLock;

use regex::Regex;
use reqwest::Method;

use super::{Area, Finding, Kind, Observed, Probe, ProbeError, Prober, Status};

/// A path no real API serves.
const UNKNOWN_PATH: &str = "/rampart-audit-7f3a9c/no-such-route";

/// The oversized body: 1 MiB and 1 KiB of valid JSON, above the usual JSON limits
/// (Express 100 kB, Rampart 10 KiB, uploads 1 MiB).
const OVERSIZED: usize = 1024 * 1024 + 1024;

/// A value the `TRACE` probe carries, to tell an echo of the request.
const TRACE_MARKER: &str = "rampart-audit-trace-5b1e";

/// What a leak is, and the patterns that show it.
const PATTERNS: &[(&str, &str)] = &[
    // Stack traces: Node.js/JS, Python, Java/.NET, Rust, Go, Ruby, PHP, a JSON "stack".
    ("stack trace", r"(?m)^\s*at \S.*:\d+:\d+\)?\s*$"),
    ("stack trace", r"Traceback \(most recent call last\)"),
    (
        "stack trace",
        r"(?m)^\s+at [\w$.<>]+\([\w$]+\.(?:java|kt|scala):\d+\)",
    ),
    ("stack trace", r"(?m)^\s+at [\w.<>`]+\(.*\) in .+:line \d+"),
    ("stack trace", r"stack backtrace:|panicked at "),
    ("stack trace", r"goroutine \d+ \["),
    ("stack trace", r"\.rb:\d+:in `"),
    ("stack trace", r"#\d+ \S+\.php\(\d+\)"),
    (
        "stack trace",
        r#""(?:stack|stacktrace|stack_trace|backtrace)"\s*:"#,
    ),
    // Server file paths.
    (
        "file path",
        r#"(?:^|[\s"'(=:\[])/(?:home|usr|var|opt|srv|app|root|etc|tmp|src|Users|workspace|build)/[\w.\-/]+"#,
    ),
    ("file path", r"\b[A-Za-z]:\\(?:[\w.\- ]+\\)+"),
    (
        "file path",
        r"node_modules/|site-packages/|\.cargo/registry",
    ),
    (
        "file path",
        r"\b[\w\-]+\.(?:rs|js|mjs|cjs|ts|py|rb|go|java|php|cs):\d+",
    ),
    // SQL and driver messages.
    (
        "SQL",
        r"(?i)\b(?:select\s+[\w*,\s.`\x22()]+?\s+from\s+\w|insert\s+into\s+\w|update\s+\w+\s+set\s|delete\s+from\s+\w)",
    ),
    (
        "SQL",
        r"(?i)syntax error at or near|you have an error in your sql syntax|unterminated quoted string|no such (?:table|column)|duplicate key value violates",
    ),
    (
        "SQL",
        r"\bSQLSTATE\b|\bSQLITE_[A-Z]+\b|\bORA-\d{5}\b|\bER_[A-Z_]{4,}\b",
    ),
    (
        "SQL",
        r"\b(?:SequelizeDatabaseError|PDOException|psycopg2|pg_query|mysqli|sqlx|QueryFailedError|PrismaClient\w*Error)\b",
    ),
    // Framework banners and default error pages.
    (
        "framework banner",
        r"Cannot (?:GET|POST|PUT|PATCH|DELETE|TRACE|OPTIONS|HEAD) /",
    ),
    (
        "framework banner",
        r"Whitelabel Error Page|\bWerkzeug\b|Django|Laravel|Symfony|Apache Tomcat|<address>Apache|nginx/\d|Microsoft-IIS|Phusion Passenger|Ruby on Rails|\bASP\.NET\b|Kestrel|X-Powered-By",
    ),
    // Type names and parser internals.
    (
        "type name",
        r"\b(?:TypeError|ReferenceError|SyntaxError|RangeError|ValueError|KeyError|AttributeError|NameError|NoMethodError|ArgumentError):",
    ),
    (
        "type name",
        r"\b(?:java|javax|jakarta|org\.springframework)\.[\w.]+",
    ),
    (
        "type name",
        r"\bSystem\.[A-Z]\w*(?:\.\w+)*Exception\b|NullPointerException",
    ),
    (
        "type name",
        r"\b(?:std|core|alloc|serde|serde_json|sqlx|tokio|hyper|axum|anyhow)::\w+",
    ),
    ("type name", r"<class '[\w.]+'>"),
    (
        "type name",
        r"at line \d+ column \d+|invalid type: \w+|expected struct \w+|unknown variant `",
    ),
];

static COMPILED: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    PATTERNS
        .iter()
        .filter_map(|(kind, pattern)| Regex::new(pattern).ok().map(|re| (*kind, re)))
        .collect()
});

/// Every leak in a body: its kind and the text that shows it.
fn leaks(body: &str) -> Vec<(&'static str, String)> {
    let mut found: Vec<(&'static str, String)> = Vec::new();
    for (kind, re) in COMPILED.iter() {
        if found.iter().any(|(k, _)| k == kind) {
            continue;
        }
        if let Some(m) = re.find(body) {
            found.push((kind, m.as_str().trim().chars().take(60).collect()));
        }
    }
    found
}

/// Send the error probes and grade them.
pub(crate) async fn check(prober: &mut Prober) -> Vec<Finding> {
    let target = prober.target().clone();
    let json = ("content-type", "application/json");
    let mut oversized = b"{\"rampart_audit\":\"".to_vec();
    oversized.resize(OVERSIZED - 2, b'a');
    oversized.extend_from_slice(b"\"}");
    let probes = [
        (
            "unknown-route",
            Probe::new(Kind::Error, Method::GET, prober.on_origin(UNKNOWN_PATH)),
        ),
        (
            "wrong-method",
            Probe::new(Kind::Error, Method::TRACE, target.clone())
                .header("x-rampart-audit", TRACE_MARKER),
        ),
        (
            "malformed-json",
            Probe::new(Kind::Error, Method::POST, target.clone())
                .header(json.0, json.1)
                .body(b"{\"rampart_audit\": [1, 2,".to_vec()),
        ),
        (
            "oversized-body",
            Probe::new(Kind::Error, Method::POST, target)
                .header(json.0, json.1)
                .body(oversized),
        ),
    ];
    let mut findings = Vec::new();
    for (check, probe) in probes {
        let answer = prober.send(probe).await;
        findings.push(grade(check, answer));
    }
    findings
}

fn grade(check: &str, answer: Result<Observed, ProbeError>) -> Finding {
    let response = match answer {
        Ok(response) => response,
        // A server may close the connection on a body it will not read (RFC 9112 §9.6).
        Err(e) if check == "oversized-body" && !e.timed_out => {
            return Finding::new(
                Status::Pass,
                Area::Errors,
                check,
                &format!("closed the connection before the body was sent: {e}"),
            );
        }
        Err(e) => {
            return Finding::new(
                Status::Warn,
                Area::Errors,
                check,
                &format!("no answer: {e}"),
            );
        }
    };
    let summary = format!(
        "{} {}",
        response.status,
        response
            .header("content-type")
            .unwrap_or("(no content type)")
    );
    let found = leaks(&response.body);
    if !found.is_empty() {
        let list: Vec<String> = found.iter().map(|(k, s)| format!("{k}: {s:?}")).collect();
        return Finding::new(
            Status::Fail,
            Area::Errors,
            check,
            &format!("{summary} leaks {}", list.join("; ")),
        );
    }
    let (status, evidence) = match (check, response.status) {
        (_, 500..=599) => (
            Status::Fail,
            format!("{summary}: a server error for a client's mistake"),
        ),
        ("wrong-method", 200..=299) if response.body.contains(TRACE_MARKER) => (
            Status::Fail,
            format!("{summary}: TRACE echoes the request (cross-site tracing)"),
        ),
        ("unknown-route", 200..=299) => (
            Status::Warn,
            format!("{summary}: an unknown path is answered as if it existed"),
        ),
        ("wrong-method", 200..=299) => (Status::Warn, format!("{summary}: TRACE is allowed")),
        ("malformed-json", 200..=299) => (
            Status::Warn,
            format!("{summary}: malformed JSON was accepted"),
        ),
        ("oversized-body", 200..=299) => (
            Status::Warn,
            format!("{summary}: a body of {OVERSIZED} bytes was accepted"),
        ),
        _ => (Status::Pass, format!("{summary}, no leak")),
    };
    Finding::new(status, Area::Errors, check, &evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(COMPILED.len(), PATTERNS.len());
    }

    fn kinds(body: &str) -> Vec<&'static str> {
        leaks(body).into_iter().map(|(k, _)| k).collect()
    }

    #[test]
    fn a_node_stack_trace_with_sql_is_seen_for_what_it_is() {
        let body = "SequelizeDatabaseError: syntax error at or near \"}\"\n    at Query.run (/app/node_modules/sequelize/lib/query.js:76:25)\n    at async /app/server.js:42:7\nSQL: SELECT * FROM users WHERE id = '{'";
        let found = kinds(body);
        for kind in ["stack trace", "file path", "SQL"] {
            assert!(found.contains(&kind), "{kind} in {found:?}");
        }
    }

    #[test]
    fn framework_pages_and_type_names_are_seen() {
        assert_eq!(kinds("<pre>Cannot GET /x</pre>"), ["framework banner"]);
        assert!(kinds("TypeError: Cannot read properties of undefined").contains(&"type name"));
        assert!(
            kinds("Failed to parse the request body as JSON: expected value at line 1 column 5")
                .contains(&"type name")
        );
        assert!(kinds("thread 'main' panicked at src/main.rs:3:5").contains(&"stack trace"));
        assert!(
            kinds("Traceback (most recent call last):\n  File \"/srv/app.py\", line 3")
                .contains(&"stack trace")
        );
    }

    #[test]
    fn rampart_s_problem_bodies_leak_nothing() {
        for body in [
            r#"{"type":"about:blank","title":"Not Found","status":404,"detail":"The requested resource does not exist.","code":"not_found","request_id":"19c801f9874e4ddd9388bc8ac4798399"}"#,
            r#"{"type":"about:blank","title":"Bad Request","status":400,"detail":"One or more fields are invalid.","code":"validation_failed","request_id":"5726c376","errors":[{"field":"body","message":"not valid UTF-8 JSON (line 1, column 5)"}]}"#,
            r#"{"type":"about:blank","title":"Payload Too Large","status":413,"code":"payload_too_large"}"#,
        ] {
            assert_eq!(kinds(body), Vec::<&str>::new(), "{body}");
        }
    }

    fn observed(status: u16, body: &str) -> Result<Observed, ProbeError> {
        Ok(Observed {
            kind: Kind::Error,
            label: "POST /".to_owned(),
            status,
            headers: reqwest::header::HeaderMap::new(),
            body: body.to_owned(),
        })
    }

    #[test]
    fn a_server_error_for_a_client_error_fails_and_a_calm_4xx_passes() {
        assert_eq!(
            grade("malformed-json", observed(500, "oops")).status,
            Status::Fail
        );
        assert_eq!(
            grade("malformed-json", observed(400, "{}")).status,
            Status::Pass
        );
        assert_eq!(
            grade("oversized-body", observed(413, "")).status,
            Status::Pass
        );
        assert_eq!(
            grade("oversized-body", observed(200, "")).status,
            Status::Warn
        );
        let echo = format!("TRACE / HTTP/1.1\r\nx-rampart-audit: {TRACE_MARKER}");
        assert_eq!(
            grade("wrong-method", observed(200, &echo)).status,
            Status::Fail
        );
    }
}
