//! The catalog: search and read for anyone, create, change and delete for admins (the
//! HTTP layer checks the role; input arrives parsed and sanitized, see
//! [`crate::domain::product`]).
//!
//! A change is one statement over the given fields only, so it never writes back a stale
//! stock over a concurrent order's decrement; deleting a product leaves placed orders their
//! copy of its name and price.
//!
//! # Search
//!
//! Searches are answered by an exact in-process index ([`super::search_index`]) that picks
//! the page's products and counts the matches; the page's stock and `updated_at` (which
//! orders change without moving the version) are then read by id in one statement that
//! also reads the catalog version. That read is batched ([`crate::store::batch`]): the
//! searches waiting while one runs share the next statement, which started after each of
//! them arrived, so nothing is cached. Every admin write of a product moves that version in its
//! own transaction, so:
//!
//! - this instance applies its own writes to the index before the write's response;
//! - any instance whose index is behind the version it just read (another instance wrote)
//!   rebuilds the index from the database and picks again, so a product written anywhere is
//!   in the very next search everywhere;
//! - after a few rounds lost to a stream of concurrent writes, the SQL search answers.

use std::sync::Arc;

use anyhow::Context as _;
use uuid::Uuid;

use super::search_index::{Change, Entry, Index, SearchIndex};
use crate::{
    domain::{
        paging::{PageOf, PageRequest},
        product::{NewProduct, Product, ProductPatch, ProductQuery},
    },
    store::{
        self, Db,
        batch::{BatchRead, Batched},
        products::{IndexRow, STOCK_READ_MAX_IDS, Stock, StockSnapshot, search_text},
    },
};

/// How many times a search picks from a rebuilt index before the SQL search answers.
const PICKS: usize = 3;

/// The catalog service (cheap to clone: every clone shares one search index).
#[derive(Debug, Clone)]
pub struct Catalog {
    db: Db,
    index: Arc<SearchIndex>,
    stock: Arc<Batched<StockRead>>,
}

/// One statement reads the catalog version and the stock of every page waiting for it.
#[derive(Debug)]
struct StockRead;

impl BatchRead for StockRead {
    /// A page's product ids.
    type Ask = Vec<Uuid>;
    type Answer = Arc<StockSnapshot>;
    type Read = Arc<StockSnapshot>;
    /// As many pages of the largest size as the largest statement holds.
    const MAX_ASKS: usize = STOCK_READ_MAX_IDS / crate::domain::paging::Limit::MAX as usize;
    const READERS: usize = 2;

    async fn read(&self, db: &Db, pages: &[Vec<Uuid>]) -> Result<Self::Read, sqlx::Error> {
        let ids = pages.iter().flatten().copied().collect();
        Ok(Arc::new(store::products::version_and_stock(db, ids).await?))
    }

    fn answer(read: &Self::Read, _: &Vec<Uuid>) -> Self::Answer {
        Arc::clone(read)
    }
}

/// One page of a search, as [`Catalog::search_page`] answers it.
#[derive(Debug)]
pub struct CatalogPage {
    /// The page and size asked for.
    pub request: PageRequest,
    /// Every match, on every page.
    pub total: i64,
    /// The page's products.
    pub items: PageItems,
}

/// The products of a [`CatalogPage`], newest first.
#[derive(Debug)]
pub enum PageItems {
    /// From the index: each entry with its current stock and `updated_at`.
    Indexed(Vec<(Arc<Entry>, Stock)>),
    /// From the SQL search (the fallback).
    Products(Vec<Product>),
}

impl CatalogPage {
    /// The page as products (copies of the indexed ones, with their stock now).
    pub fn to_page(&self) -> PageOf<Product> {
        let items = match &self.items {
            PageItems::Products(products) => products.clone(),
            PageItems::Indexed(entries) => entries
                .iter()
                .map(|(entry, now)| Product {
                    stock: now.stock,
                    updated_at: now.updated_at,
                    ..entry.product().clone()
                })
                .collect(),
        };
        PageOf::new(self.request, (items, self.total))
    }
}

fn index_row(product: &Product) -> IndexRow {
    IndexRow {
        product: product.clone(),
        search_text: search_text(&product.name, &product.description),
    }
}

fn to_usize(n: i64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Catalog {
    /// The catalog in `db`, with an index not yet built (the first search or
    /// [`Catalog::warm`] builds it).
    pub fn new(db: Db) -> Self {
        Self {
            stock: Arc::new(Batched::new(db.clone(), StockRead)),
            db,
            index: Arc::default(),
        }
    }

    /// Build the search index now (at start), instead of at the first search.
    pub async fn warm(&self) -> anyhow::Result<()> {
        self.rebuild(None).await
    }

    /// Rebuild the index from the database, unless another request already brought it to
    /// `seen` (the version a search read) or beyond; `None` rebuilds whatever the version.
    async fn rebuild(&self, seen: Option<i64>) -> anyhow::Result<()> {
        let _turn = self.index.rebuild_turn().await;
        if let (Some(seen), Some(have)) = (seen, self.index.version())
            && have >= seen
        {
            return Ok(());
        }
        let (version, rows) = store::products::index_rows(&self.db)
            .await
            .context("database")?;
        let index = tokio::task::spawn_blocking(move || Index::build(version, rows))
            .await
            .context("building the search index")?;
        self.index.install(index);
        Ok(())
    }

    /// One page of the products matching `query`, newest first, with the true total.
    pub async fn search(&self, query: &ProductQuery) -> anyhow::Result<PageOf<Product>> {
        Ok(self.search_page(query).await?.to_page())
    }

    /// [`Catalog::search`], with the page's products as the index holds them (no copies).
    pub async fn search_page(&self, query: &ProductQuery) -> anyhow::Result<CatalogPage> {
        let (offset, limit) = (
            to_usize(query.paging.offset()),
            to_usize(query.paging.rows()),
        );
        let mut seen = None;
        for _ in 0..PICKS {
            let picked = self.index.read(|index| {
                let hits = index.search(
                    query.q.as_ref().map(|q| q.as_str()),
                    query.min_price,
                    query.max_price,
                    offset,
                    limit,
                );
                (index.version(), hits)
            });
            let Some((version, hits)) = picked else {
                self.rebuild(seen).await?;
                continue;
            };
            let now = self
                .stock
                .ask(hits.ids())
                .await
                .map_err(anyhow::Error::new)
                .context("database")?;
            // Each of the page's products with its stock now; `None` if one is gone.
            let items: Option<Vec<(Arc<Entry>, Stock)>> = hits
                .entries
                .into_iter()
                .map(|entry| {
                    let stock = now.get(entry.product().id)?;
                    Some((entry, stock))
                })
                .collect();
            if let Some(items) = items.filter(|_| now.version == version) {
                return Ok(CatalogPage {
                    request: query.paging,
                    total: i64::try_from(hits.total).unwrap_or(i64::MAX),
                    items: PageItems::Indexed(items),
                });
            }
            // Behind the database; or, at the same version, rows the index does not
            // know of (a write that did not move the version): rebuild either way.
            seen = (now.version != version).then_some(now.version);
            self.rebuild(seen).await?;
        }
        let (products, total) = store::products::search(&self.db, query)
            .await
            .context("database")?;
        Ok(CatalogPage {
            request: query.paging,
            total,
            items: PageItems::Products(products),
        })
    }

    /// The product `id`, if any.
    pub async fn get(&self, id: Uuid) -> anyhow::Result<Option<Product>> {
        store::products::get(&self.db, id).await.context("database")
    }

    /// Add a product, stamped `now`.
    pub async fn create(&self, new: &NewProduct, now: i64) -> anyhow::Result<Product> {
        // Held from before the write until the index has it: a search that reads the new
        // version meanwhile waits for this instead of rebuilding.
        let _turn = self.index.rebuild_turn().await;
        let (product, version) = store::products::create_versioned(&self.db, new, now)
            .await
            .context("database")?;
        self.index
            .apply(version, Change::Upsert(index_row(&product)));
        Ok(product)
    }

    /// Change the given fields of product `id`; `None` when there is no such product.
    pub async fn update(
        &self,
        id: Uuid,
        patch: &ProductPatch,
        now: i64,
    ) -> anyhow::Result<Option<Product>> {
        let _turn = self.index.rebuild_turn().await;
        let updated = store::products::update_versioned(&self.db, id, patch, now)
            .await
            .context("database")?;
        Ok(updated.map(|(product, version)| {
            self.index
                .apply(version, Change::Upsert(index_row(&product)));
            product
        }))
    }

    /// Delete product `id`; whether it existed.
    pub async fn delete(&self, id: Uuid) -> anyhow::Result<bool> {
        let _turn = self.index.rebuild_turn().await;
        let version = store::products::delete_versioned(&self.db, id)
            .await
            .context("database")?;
        if let Some(version) = version {
            self.index.apply(version, Change::Remove(id));
        }
        Ok(version.is_some())
    }

    /// The version of this process's index (`None` before it is built).
    pub fn index_version(&self) -> Option<i64> {
        self.index.version()
    }

    /// How many products this process's index holds and its heap memory in bytes (`None`
    /// before it is built).
    pub fn index_size(&self) -> Option<(usize, usize)> {
        self.index.read(|index| (index.len(), index.heap_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        commerce::testing,
        domain::{paging::PageRequest, product::ProductFields},
    };

    const NOW: i64 = 1_767_225_600_000;

    fn new_product(name: &str, price_cents: i64) -> NewProduct {
        NewProduct::parse(ProductFields {
            name: Some(name.into()),
            description: Some("<b>Nice</b><script>x</script>".into()),
            price_cents: Some(price_cents),
            currency: Some("eur".into()),
            stock: Some(4),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_created_product_is_found_changed_and_deleted() {
        let f = testing::fixture().await;
        let catalog = Catalog::new(f.db.clone());
        let tea = catalog
            .create(&new_product("Green tea", 250), NOW)
            .await
            .unwrap();
        assert_eq!(tea.description, "<b>Nice</b>");
        assert_eq!(catalog.get(tea.id).await.unwrap().as_ref(), Some(&tea));
        let patch = ProductPatch {
            price_cents: Some(300),
            ..ProductPatch::default()
        };
        let changed = catalog
            .update(tea.id, &patch, NOW + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((changed.price_cents, changed.stock), (300, 4));
        assert!(catalog.delete(tea.id).await.unwrap());
        assert!(!catalog.delete(tea.id).await.unwrap());
        assert_eq!(catalog.get(tea.id).await.unwrap(), None);
        assert_eq!(catalog.update(tea.id, &patch, NOW + 1).await.unwrap(), None);
    }

    #[tokio::test]
    async fn search_matches_literally_and_a_page_past_the_end_keeps_the_total() {
        let f = testing::fixture().await;
        let catalog = Catalog::new(f.db.clone());
        for name in ["50% off tea", "500 g tea", "Coffee"] {
            catalog.create(&new_product(name, 100), NOW).await.unwrap();
        }
        let query = |pairs: &[(&str, &str)]| ProductQuery::parse(pairs.iter().copied()).unwrap();
        let percent = catalog.search(&query(&[("q", "50%")])).await.unwrap();
        assert_eq!(percent.total, 1, "% is data, not a wildcard");
        let teas = catalog
            .search(&query(&[("q", "TEA"), ("limit", "1"), ("page", "5")]))
            .await
            .unwrap();
        assert_eq!((teas.items.len(), teas.total), (0, 2));
        assert_eq!(teas.request, query(&[("limit", "1"), ("page", "5")]).paging);
        let all = catalog.search(&ProductQuery::default()).await.unwrap();
        assert_eq!((all.items.len(), all.request), (3, PageRequest::default()));
    }
}

/// The index against the SQL search over random catalogs and queries.
#[cfg(test)]
mod differential {
    use proptest::{prelude::*, test_runner::TestCaseError};

    use super::*;
    use crate::{commerce::testing, domain::product::ProductFields};

    /// LIKE syntax, quotes, a backslash, ASCII in both cases, and letters whose folding is
    /// not ASCII's: accented capitals, a dotted capital I (folds to two characters), sharp
    /// s, the three sigmas, the Kelvin sign (folds to an ASCII k), HTML the sanitizer
    /// rewrites.
    /// (`a` and `b` often, so that texts share grams without containing one another.)
    const ALPHABET: &[char] = &[
        'a', 'A', 'b', 'B', 'a', 'b', 'a', 'b', 'a', 'b', 'o', '%', '_', '\\', '\'', '"', ' ', 'é',
        'É', 'İ', 'i', 'ß', 'Σ', 'σ', 'ς', '\u{212A}', 'k', '<', '&', ';',
    ];

    fn text(len: std::ops::Range<usize>) -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(ALPHABET), len)
            .prop_map(|chars| chars.into_iter().collect())
    }

    #[derive(Debug, Clone)]
    struct Written {
        name: String,
        description: String,
        price_cents: i64,
        /// Milliseconds after the start: few values, so creation times tie.
        at: i64,
    }

    fn written() -> impl Strategy<Value = Written> {
        (text(1..8), text(0..12), 0..5i64, 0..4i64).prop_map(|(name, description, p, at)| Written {
            name,
            description,
            price_cents: p * 100,
            at,
        })
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Rename(usize, String),
        Describe(usize, String),
        Reprice(usize, i64),
        Restock(usize, i64),
        Delete(usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (any::<usize>(), text(1..8)).prop_map(|(i, t)| Edit::Rename(i, t)),
            (any::<usize>(), text(0..12)).prop_map(|(i, t)| Edit::Describe(i, t)),
            (any::<usize>(), 0..5i64).prop_map(|(i, p)| Edit::Reprice(i, p * 100)),
            (any::<usize>(), 0..9i64).prop_map(|(i, s)| Edit::Restock(i, s)),
            any::<usize>().prop_map(Edit::Delete),
        ]
    }

    /// A search text: random, a piece of a written text, or two pieces of written texts
    /// put together (whose grams are all in the catalog, though it may not contain them).
    #[derive(Debug, Clone)]
    enum Q {
        Random(String),
        Slice(usize, usize, usize),
        Splice((usize, usize, usize), (usize, usize, usize)),
    }

    impl Q {
        fn resolve(&self, texts: &[Vec<char>]) -> String {
            let slice = |(t, start, len): (usize, usize, usize)| -> String {
                let Some(text) = texts.get(t % texts.len().max(1)) else {
                    return String::new();
                };
                let start = start % text.len().max(1);
                text.iter().skip(start).take(len).collect()
            };
            let q = match self {
                Q::Random(q) => q.clone(),
                Q::Slice(t, start, len) => slice((*t, *start, 1 + len % 7)),
                Q::Splice(a, b) => slice((a.0, a.1, 1 + a.2 % 3)) + &slice((b.0, b.1, 1 + b.2 % 3)),
            };
            if q.is_empty() { "a".to_owned() } else { q }
        }
    }

    type Query = (Option<Q>, Option<i64>, Option<i64>, u32, u32);

    fn query() -> impl Strategy<Value = Query> {
        let q = prop_oneof![
            text(1..7).prop_map(Q::Random),
            any::<(usize, usize, usize)>().prop_map(|(t, s, l)| Q::Slice(t, s, l)),
            any::<((usize, usize, usize), (usize, usize, usize))>()
                .prop_map(|(a, b)| Q::Splice(a, b)),
        ];
        (
            proptest::option::weighted(0.9, q),
            proptest::option::of(0..5i64),
            proptest::option::of(0..5i64),
            1..5u32,
            1..5u32,
        )
    }

    fn pairs((q, min, span, page, limit): &Query, texts: &[Vec<char>]) -> Vec<(String, String)> {
        let mut pairs = vec![
            ("page".to_owned(), page.to_string()),
            ("limit".to_owned(), limit.to_string()),
        ];
        if let Some(q) = q {
            pairs.push(("q".to_owned(), q.resolve(texts)));
        }
        if let Some(min) = min {
            pairs.push(("min_price".to_owned(), (min * 100).to_string()));
        }
        if let Some(span) = span {
            let max = min.unwrap_or(0) + span;
            pairs.push(("max_price".to_owned(), (max * 100).to_string()));
        }
        pairs
    }

    fn fields(w: &Written) -> ProductFields {
        ProductFields {
            name: Some(w.name.clone()),
            description: Some(w.description.clone()),
            price_cents: Some(w.price_cents),
            currency: Some("EUR".into()),
            stock: Some(3),
        }
    }

    async fn check(
        catalog: Vec<Written>,
        edits: Vec<Edit>,
        queries: Vec<Query>,
    ) -> Result<(), TestCaseError> {
        const START: i64 = 1_767_225_600_000;
        let f = testing::fixture().await;
        let live = Catalog::new(f.db.clone());
        live.warm().await.unwrap();
        let mut ids = Vec::new();
        for w in &catalog {
            // A name the domain refuses (blank once trimmed) is not written.
            if let Ok(new) = NewProduct::parse(fields(w)) {
                ids.push(live.create(&new, START + w.at).await.unwrap().id);
            }
        }
        for e in edits {
            let pick = |i: usize| ids.get(i % ids.len().max(1)).copied();
            let (i, patch) = match e {
                Edit::Rename(i, t) => (
                    i,
                    ProductFields {
                        name: Some(t),
                        ..Default::default()
                    },
                ),
                Edit::Describe(i, t) => (
                    i,
                    ProductFields {
                        description: Some(t),
                        ..Default::default()
                    },
                ),
                Edit::Reprice(i, p) => (
                    i,
                    ProductFields {
                        price_cents: Some(p),
                        ..Default::default()
                    },
                ),
                Edit::Restock(i, s) => (
                    i,
                    ProductFields {
                        stock: Some(s),
                        ..Default::default()
                    },
                ),
                Edit::Delete(i) => {
                    if let Some(id) = pick(i) {
                        live.delete(id).await.unwrap();
                    }
                    continue;
                }
            };
            if let (Some(id), Ok(patch)) = (pick(i), ProductPatch::parse(patch)) {
                live.update(id, &patch, START + 10).await.unwrap();
            }
        }
        let db_version = store::products::version_and_stock(&f.db, Vec::new())
            .await
            .unwrap()
            .version;
        // Orders take stock without moving the version: the pages must show it all the same.
        sqlx::query("UPDATE products SET stock = stock + 7 WHERE price_cents < 200")
            .execute(f.db.pool())
            .await
            .unwrap();
        prop_assert_eq!(
            live.index_version(),
            Some(db_version),
            "own writes applied in step"
        );
        let rebuilt = Catalog::new(f.db.clone());
        let texts: Vec<Vec<char>> = catalog
            .iter()
            .flat_map(|w| [w.name.chars().collect(), w.description.chars().collect()])
            .collect();
        for query in &queries {
            let pairs = pairs(query, &texts);
            let query =
                ProductQuery::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
            let (rows, total) = store::products::search(&f.db, &query).await.unwrap();
            let expected_ids: Vec<Uuid> = rows.iter().map(|p| p.id).collect();
            let picked = live
                .index
                .read(|index| {
                    index.search(
                        query.q.as_ref().map(|q| q.as_str()),
                        query.min_price,
                        query.max_price,
                        to_usize(query.paging.offset()),
                        to_usize(query.paging.rows()),
                    )
                })
                .unwrap();
            prop_assert_eq!(&picked.ids(), &expected_ids, "ids of {:?}", &pairs);
            prop_assert_eq!(
                i64::try_from(picked.total).unwrap(),
                total,
                "total of {:?}",
                &pairs
            );
            let expected = PageOf::new(query.paging, (rows, total));
            prop_assert_eq!(&live.search(&query).await.unwrap(), &expected);
            prop_assert_eq!(&rebuilt.search(&query).await.unwrap(), &expected);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn the_index_answers_exactly_what_the_sql_search_answers(
            catalog in proptest::collection::vec(written(), 0..24),
            edits in proptest::collection::vec(edit(), 0..8),
            queries in proptest::collection::vec(query(), 1..16),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(check(catalog, edits, queries))?;
        }
    }
}
