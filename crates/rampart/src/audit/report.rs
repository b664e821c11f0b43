//! Printing a [`Report`]: an aligned table for people, one JSON document for CI.
//!
//! JSON shape: `{"target","requests","passed","strict_passed","summary":{"pass","warn","fail"},
//! "findings":[{"status","area","check","evidence"}]}`.

use serde_json::json;

use super::{Report, Status};

/// The table: one line per finding, then a summary line.
pub(crate) fn table(report: &Report) -> String {
    let check_width = report
        .findings
        .iter()
        .map(|f| f.check.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "{:<6} {:<10} {:<check_width$} EVIDENCE\n",
        "STATUS", "AREA", "CHECK"
    );
    for f in &report.findings {
        out.push_str(&format!(
            "{:<6} {:<10} {:<check_width$} {}\n",
            f.status.as_str(),
            f.area.as_str(),
            f.check,
            f.evidence
        ));
    }
    out.push_str(&format!(
        "{} pass, {} warn, {} fail; {} requests to {}",
        report.count(Status::Pass),
        report.count(Status::Warn),
        report.count(Status::Fail),
        report.requests,
        super::clean(&report.target, 200),
    ));
    out
}

/// The JSON document.
pub(crate) fn json(report: &Report) -> String {
    let document = json!({
        "target": report.target,
        "requests": report.requests,
        "passed": report.passes(false),
        "strict_passed": report.passes(true),
        "summary": {
            "pass": report.count(Status::Pass),
            "warn": report.count(Status::Warn),
            "fail": report.count(Status::Fail),
        },
        "findings": report.findings,
    });
    serde_json::to_string_pretty(&document).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::{Area, Finding};
    use super::*;

    fn report() -> Report {
        Report {
            target: "http://127.0.0.1:8080/".to_owned(),
            requests: 3,
            findings: vec![
                Finding::new(Status::Pass, Area::Headers, "x-frame-options", "DENY"),
                Finding::new(Status::Warn, Area::Tls, "tls", "plain HTTP"),
            ],
        }
    }

    #[test]
    fn warnings_pass_unless_strict() {
        let r = report();
        assert!(r.passes(false));
        assert!(!r.passes(true));
    }

    #[test]
    fn json_names_area_check_and_status() {
        let doc: serde_json::Value = serde_json::from_str(&json(&report())).unwrap();
        assert_eq!(doc["findings"][0]["area"], "headers");
        assert_eq!(doc["findings"][0]["check"], "x-frame-options");
        assert_eq!(doc["findings"][1]["status"], "warn");
        assert_eq!(doc["summary"]["warn"], 1);
        assert_eq!(doc["passed"], true);
        assert_eq!(doc["strict_passed"], false);
    }

    #[test]
    fn the_table_aligns_one_line_per_finding() {
        let text = table(&report());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(
            lines[1].starts_with("pass   headers    x-frame-options DENY"),
            "{text}"
        );
        assert!(
            lines[3].contains("1 pass, 1 warn, 0 fail; 3 requests"),
            "{text}"
        );
    }
}
