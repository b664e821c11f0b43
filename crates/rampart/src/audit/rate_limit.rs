//! The `rate-limit` area: is a limit visible within a short burst?
//!
//! Up to [`BURST`] `GET`s of the URL, one after another, stopping at the first answer
//! that shows a limit: a 429, or the IETF `RateLimit`/`RateLimit-Policy` headers
//! (draft-ietf-httpapi-ratelimit-headers), or the older `X-RateLimit-*` ones. A 429
//! ends the burst at once — its `Retry-After` is honoured by sending nothing more — and
//! so does a `RateLimit` header whose remaining quota is 0. The evidence says how many
//! requests were sent.

use reqwest::Method;

use super::{Area, Finding, Kind, Observed, Probe, Prober, Status};

/// The most requests the burst sends.
pub const BURST: usize = 30;

const HEADERS: &[&str] = &[
    "ratelimit",
    "ratelimit-policy",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-rate-limit-limit",
];

/// Run the burst and grade it.
pub(crate) async fn check(prober: &mut Prober) -> Vec<Finding> {
    // An earlier probe may already have been limited: then the burst must not start.
    if let Some(limited) = prober.seen().iter().find(|o| o.status == 429) {
        return vec![limited_finding(limited, 0)];
    }
    let target = prober.target().clone();
    for sent in 1..=BURST {
        let probe = Probe::new(Kind::Burst, Method::GET, target.clone());
        let response = match prober.send(probe).await {
            Ok(response) => response,
            Err(e) => {
                return vec![Finding::new(
                    Status::Warn,
                    Area::RateLimit,
                    "burst",
                    &format!("request {sent} of the burst got no answer: {e}"),
                )];
            }
        };
        if response.status == 429 {
            return vec![limited_finding(&response, sent)];
        }
        let shown: Vec<String> = HEADERS
            .iter()
            .filter_map(|name| response.header(name).map(|v| format!("{name}: {v}")))
            .collect();
        if !shown.is_empty() {
            return vec![Finding::new(
                Status::Pass,
                Area::RateLimit,
                "burst",
                &format!(
                    "{} after {sent} request{} of at most {BURST}",
                    shown.join("; "),
                    if sent == 1 { "" } else { "s" }
                ),
            )];
        }
    }
    vec![Finding::new(
        Status::Fail,
        Area::RateLimit,
        "burst",
        &format!(
            "{BURST} requests in a row: no 429 and no RateLimit, RateLimit-Policy or X-RateLimit-* header"
        ),
    )]
}

fn limited_finding(response: &Observed, sent: usize) -> Finding {
    let when = if sent == 0 {
        format!("{} was already limited", response.label)
    } else {
        format!(
            "429 after {sent} request{}",
            if sent == 1 { "" } else { "s" }
        )
    };
    match response.header("retry-after") {
        Some(after) => Finding::new(
            Status::Pass,
            Area::RateLimit,
            "burst",
            &format!("{when}, Retry-After: {after}; nothing more sent"),
        ),
        None => Finding::new(
            Status::Warn,
            Area::RateLimit,
            "burst",
            &format!("{when} without Retry-After: clients cannot tell when to come back"),
        ),
    }
}
