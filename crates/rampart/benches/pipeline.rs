//! In-process cost of the global rate limiter: `GET /health` through the whole pipeline
//! (`app::build`, every layer), called as a tower service with no network, with
//! `RAMPART_RATE_LIMIT_GLOBAL=off` and with a quota no run can spend, alternately.
//!
//! `cargo bench -p rampart --bench pipeline` prints the time per request of each and the
//! limiter's share. Time on a shared VM is noisy; instructions are not: `bench/
//! limiter-instructions.sh` runs one configuration at a time (`pipeline -- off 20000`)
//! under callgrind. `bench/rate-limit-cost.sh` measures end to end with wrk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, time::Instant};

use rampart::{app, clock::Clock, config::Config, setup, state::AppState, store::Db};
use tower::{Service, ServiceExt};

const REQUESTS: u32 = 200_000;
const ROUNDS: usize = 5;

async fn per_request_ns(limit: &str, requests: u32) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut env = HashMap::new();
    env.insert(
        "RAMPART_DATA_DIR".to_owned(),
        dir.path().join("data").display().to_string(),
    );
    env.insert("RAMPART_RATE_LIMIT_GLOBAL".to_owned(), limit.to_owned());
    let mut config = Config::load(&env).unwrap().config;
    setup::prepare(&mut config).unwrap();
    let db = Db::connect(&config.database_url, 2).await.unwrap();
    db.migrate().await.unwrap();
    let mut service = app::build(AppState::new(config, db, Clock::system()).unwrap());
    let started = Instant::now();
    for _ in 0..requests {
        let request = http::Request::get("/health")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), 200);
    }
    started.elapsed().as_nanos() as f64 / f64::from(requests)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // `pipeline -- off|on N`: one configuration only, N requests (for callgrind).
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let [mode, n] = args.as_slice() {
        let limit = if mode == "off" { "off" } else { "100000000/1h" };
        let n: u32 = n.parse().expect("a number of requests");
        let ns = runtime.block_on(per_request_ns(limit, n));
        println!("{mode}: {n} requests, {ns:.0} ns/request");
        return;
    }
    runtime.block_on(async {
        let (mut off, mut on) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            // Alternate which goes first, so a drift of the machine favours neither.
            if round % 2 == 0 {
                off.push(per_request_ns("off", REQUESTS).await);
                on.push(per_request_ns("100000000/1h", REQUESTS).await);
            } else {
                on.push(per_request_ns("100000000/1h", REQUESTS).await);
                off.push(per_request_ns("off", REQUESTS).await);
            }
            println!(
                "round {}: limiter off {:.0} ns/request, on {:.0} ns/request",
                round + 1,
                off[round],
                on[round]
            );
        }
        let (off, on) = (median(off), median(on));
        println!(
            "median: off {off:.0} ns, on {on:.0} ns: the limiter adds {:.0} ns per request ({:.1} % of the in-process pipeline)",
            on - off,
            100.0 * (on - off) / off
        );
    });
}
