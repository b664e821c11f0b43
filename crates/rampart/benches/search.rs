//! In-process cost of one catalog search on SQLite, the three ways Rampart can answer it:
//!
//! - `old sql`: the search as it was before the index (`LOWER(name) LIKE … OR
//!   LOWER(description) LIKE …`, a `COUNT(*)` and a page query, both scanning the catalog);
//! - `sql`: today's SQL search over `products.search_text` (the index's reference and
//!   fallback), also a scan;
//! - `index`: [`Catalog::search_page`] (what the handler calls): the in-process index picks
//!   the page and counts, then one statement reads the catalog version and the page's stock
//!   by id;
//! - `request`: `GET /api/v1/products` through the whole pipeline (`app::build`, every
//!   layer, JSON) as a tower service, no network.
//!
//! at 1 000 products (all named `prod N …`) and again after 19 000 more that the queries'
//! words do not match, for `q=prod` (every one of the 1 000 matches) and for varied queries
//! (a different word and page each time, the words of `bench/search.sh`).
//!
//! `cargo bench -p rampart --bench search` prints µs per search for each.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, time::Instant};

use rampart::{
    app,
    clock::Clock,
    commerce::catalog::Catalog,
    config::Config,
    domain::product::{NewProduct, ProductQuery},
    setup,
    state::AppState,
    store::{self, Db},
};
use sqlx::Row as _;
use tower::{Service, ServiceExt};

/// The words of the 1 000 products (and of the varied queries); bench/search.sh has the
/// same list.
const WORDS: [&str; 40] = [
    "amber", "basil", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "jasmine",
    "kettle", "lantern", "meadow", "nectar", "orchid", "pepper", "quartz", "raven", "saffron",
    "thistle", "umber", "velvet", "willow", "yarrow", "zephyr", "almond", "birch", "cobalt",
    "dune", "elm", "fern", "ginger", "hazel", "iris", "juniper", "kelp", "lilac", "maple",
    "nutmeg", "olive",
];

fn product(name: String, description: String, i: usize) -> NewProduct {
    NewProduct {
        name,
        description,
        price_cents: 100 + i64::try_from(i).unwrap(),
        currency: "EUR".into(),
        stock: 1_000_000,
    }
}

/// Product `i` of the 1 000 the queries are about.
fn matching(i: usize) -> NewProduct {
    product(
        format!("prod {i} {}", WORDS[i % WORDS.len()]),
        format!("<p>a {} product</p>", WORDS[(i * 7 + 3) % WORDS.len()]),
        i,
    )
}

/// Product `i` of the 19 000 that no query word matches.
fn filler(i: usize) -> NewProduct {
    product(
        format!("item {i} xq{}", i % 97),
        "<p>stock keeping unit</p>".into(),
        i,
    )
}

/// A different query each call: a word (or its first 3–5 letters) and a page of 1–3.
struct Varied(u64);

impl Varied {
    fn next(&mut self) -> Vec<(String, String)> {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let r = (self.0 >> 33) as usize;
        let word = WORDS[r % WORDS.len()];
        let len = (3 + (r / 40) % 4).min(word.len());
        vec![
            ("q".into(), word[..len].to_owned()),
            ("page".into(), (1 + (r / 160) % 3).to_string()),
            ("limit".into(), "20".into()),
        ]
    }
}

fn parse(pairs: &[(String, String)]) -> ProductQuery {
    ProductQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap()
}

/// The search before the index, as it was: two scanning queries.
async fn old_sql(db: &Db, query: &ProductQuery) -> i64 {
    let pattern = store::products::like_pattern(query.q.as_ref().unwrap().as_str());
    let filter =
        "WHERE (LOWER(name) LIKE $1 ESCAPE '\\' OR LOWER(description) LIKE $1 ESCAPE '\\')";
    let total: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) AS total FROM products {filter}"
    )))
    .bind(pattern.clone())
    .fetch_one(db.pool())
    .await
    .unwrap()
    .try_get("total")
    .unwrap();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, name, description, price_cents, currency, stock, created_at, updated_at \
         FROM products {filter} ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    )))
    .bind(pattern)
    .bind(query.paging.rows())
    .bind(query.paging.offset())
    .fetch_all(db.pool())
    .await
    .unwrap();
    total + i64::try_from(rows.len()).unwrap()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Way {
    OldSql,
    Sql,
    Index,
    Request,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::OldSql => "old sql",
            Way::Sql => "sql",
            Way::Index => "index",
            Way::Request => "request",
        }
    }
}

type Pipeline = tower::util::BoxCloneService<
    http::Request<axum::body::Body>,
    axum::response::Response,
    std::convert::Infallible,
>;

struct Bench {
    db: Db,
    catalog: Catalog,
    service: Pipeline,
}

impl Bench {
    /// µs per search over about `budget_ms` of searches.
    async fn time(&mut self, way: Way, varied: bool, budget_ms: u128) -> f64 {
        let mut queries = Varied(7);
        let prod = vec![
            ("q".to_owned(), "prod".to_owned()),
            ("limit".to_owned(), "20".to_owned()),
        ];
        let started = Instant::now();
        let mut n = 0u32;
        while n < 20 || started.elapsed().as_millis() < budget_ms {
            let pairs = if varied { queries.next() } else { prod.clone() };
            match way {
                Way::OldSql => {
                    std::hint::black_box(old_sql(&self.db, &parse(&pairs)).await);
                }
                Way::Sql => {
                    std::hint::black_box(
                        store::products::search(&self.db, &parse(&pairs))
                            .await
                            .unwrap(),
                    );
                }
                Way::Index => {
                    std::hint::black_box(self.catalog.search_page(&parse(&pairs)).await.unwrap());
                }
                Way::Request => {
                    let uri = format!(
                        "/api/v1/products?{}",
                        pairs
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join("&")
                    );
                    let request = http::Request::get(uri)
                        .body(axum::body::Body::empty())
                        .unwrap();
                    let response = self
                        .service
                        .ready()
                        .await
                        .unwrap()
                        .call(request)
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200);
                    std::hint::black_box(
                        axum::body::to_bytes(response.into_body(), 1 << 20)
                            .await
                            .unwrap(),
                    );
                }
            }
            n += 1;
        }
        started.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    }
}

async fn report(bench: &mut Bench, products: usize) {
    for varied in [false, true] {
        let mut line = format!(
            "{products:>6} products, {:<7}:",
            if varied { "varied" } else { "q=prod" }
        );
        let mut old = 0.0;
        for way in [Way::OldSql, Way::Sql, Way::Index, Way::Request] {
            let us = bench.time(way, varied, 1500).await;
            if way == Way::OldSql {
                old = us;
            }
            line.push_str(&format!(" {} {us:>8.1} µs", way.name()));
            if way == Way::Index {
                line.push_str(&format!(" ({:.0}x)", old / us));
            }
            line.push(';');
        }
        println!("{line}");
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut env = HashMap::new();
        env.insert(
            "RAMPART_DATA_DIR".to_owned(),
            dir.path().join("data").display().to_string(),
        );
        env.insert("RAMPART_RATE_LIMIT_GLOBAL".to_owned(), "off".to_owned());
        env.insert("RAMPART_LOG".to_owned(), "warn".to_owned());
        let mut config = Config::load(&env).unwrap().config;
        setup::prepare(&mut config).unwrap();
        let db = Db::connect(&config.database_url, 4).await.unwrap();
        db.migrate().await.unwrap();
        let state = AppState::new(config, db.clone(), Clock::system()).unwrap();
        let catalog = state.catalog.clone();
        catalog.warm().await.unwrap();
        let mut bench = Bench {
            db: db.clone(),
            catalog: catalog.clone(),
            service: Pipeline::new(app::build(state)),
        };
        let mut now = 1_767_225_600_000;
        for i in 0..1000 {
            now += 1;
            catalog.create(&matching(i), now).await.unwrap();
        }
        report(&mut bench, 1000).await;
        for i in 0..19_000 {
            now += 1;
            catalog.create(&filler(i), now).await.unwrap();
        }
        report(&mut bench, 20_000).await;
        let (products, bytes) = catalog.index_size().unwrap();
        println!(
            "index: {products} products, {:.1} MiB of heap, {} bytes per product",
            bytes as f64 / (1 << 20) as f64,
            bytes / products
        );
        let started = Instant::now();
        let rebuilt = Catalog::new(db.clone());
        rebuilt.warm().await.unwrap();
        println!(
            "rebuilding the index of 20 000 products from the database: {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
    });
}
