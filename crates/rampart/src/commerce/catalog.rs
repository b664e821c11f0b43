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
//! the page's products and counts the matches. Before it picks, a search reads the
//! catalog's two versions in one statement ([`store::products::catalog_state`]): the
//! catalog version, which every admin write of a product moves in its own transaction,
//! and the stock version, which every write that changes stock without one (orders) moves
//! in its own, stamping the rows it changed. The same statement returns the stock and
//! `updated_at` of the rows stamped since the index's stock version (none, when no order
//! came between), which the index takes before it picks. That read is batched
//! ([`crate::store::batch`]): the searches waiting while one runs share the next
//! statement, which started after each of them arrived, so nothing is cached. So:
//!
//! - this instance applies its own admin writes to the index before the write's response;
//! - any instance whose index is behind the catalog version it just read (another instance
//!   wrote) rebuilds the index from the database and reads again, so a product written
//!   anywhere is in the very next search everywhere;
//! - a stock change committed anywhere is on the very next page everywhere, without a read
//!   of the page's rows;
//! - after a few rounds lost to a stream of concurrent writes, the SQL search answers.

use std::sync::Arc;

use anyhow::Context as _;
use uuid::Uuid;

use super::search_index::{Change, Entry, Index, Restock, SearchIndex};
use crate::{
    domain::{
        paging::{PageOf, PageRequest},
        product::{NewProduct, Product, ProductPatch, ProductQuery},
    },
    store::{
        self, Db,
        batch::{BatchRead, Batched},
        products::{CatalogState, IndexRow, search_text},
    },
};

/// How many times a search picks from a rebuilt index before the SQL search answers.
const PICKS: usize = 3;

/// The catalog service (cheap to clone: every clone shares one search index).
#[derive(Debug, Clone)]
pub struct Catalog {
    db: Db,
    index: Arc<SearchIndex>,
    state: Arc<Batched<StateRead>>,
}

/// One statement reads the catalog's state for every search waiting for it.
#[derive(Debug)]
struct StateRead;

impl BatchRead for StateRead {
    /// The stock version of the asker's index.
    type Ask = i64;
    type Answer = Arc<CatalogState>;
    type Read = Arc<CatalogState>;
    /// The statement is the same for any number of searches.
    const MAX_ASKS: usize = 256;
    const READERS: usize = 2;

    async fn read(&self, db: &Db, since: &[i64]) -> Result<Self::Read, sqlx::Error> {
        // The changes since the oldest asker's version are every asker's.
        let since = since.iter().copied().min().unwrap_or(0);
        Ok(Arc::new(store::products::catalog_state(db, since).await?))
    }

    fn answer(read: &Self::Read, _: &i64) -> Self::Answer {
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
    /// From the index (each entry with its stock and `updated_at` as of a read that began
    /// after the search).
    Indexed(Vec<Arc<Entry>>),
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
                .map(|entry| entry.product().clone())
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
            state: Arc::new(Batched::new(db.clone(), StateRead)),
            db,
            index: Arc::default(),
        }
    }

    /// Build the search index now (at start), instead of at the first search.
    pub async fn warm(&self) -> anyhow::Result<()> {
        self.rebuild(|_| false).await
    }

    /// Rebuild the index from the database, unless, once it is this request's turn, the
    /// index already is what the request needs (`enough`: another request or one of this
    /// process's writes brought it there meanwhile), so that the searches that found the
    /// index behind at once rebuild it once.
    async fn rebuild(&self, enough: impl Fn(&Index) -> bool) -> anyhow::Result<()> {
        let _turn = self.index.rebuild_turn().await;
        if self.index.read(enough) == Some(true) {
            return Ok(());
        }
        let (versions, rows) = store::products::index_rows(&self.db)
            .await
            .context("database")?;
        let index = tokio::task::spawn_blocking(move || Index::build_at(versions, rows))
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
        for _ in 0..PICKS {
            let Some(known) = self.index.read(Index::versions) else {
                // Any index will do: the next round reads the state against it.
                self.rebuild(|_| true).await?;
                continue;
            };
            let state = self
                .state
                .ask(known.stock)
                .await
                .map_err(anyhow::Error::new)
                .context("database")?;
            match self.index.restock(&state) {
                Restock::Current => {}
                // Behind the database (rebuild unless a write of this process is bringing
                // the index there), or ahead of the read (read again).
                Restock::Stale => {
                    let seen = state.versions.version;
                    if seen > known.version {
                        self.rebuild(|index| index.version() >= seen).await?;
                    }
                    continue;
                }
                // At the same version, a row the index does not know of (a write that
                // did not move the version): rebuild, unless another search just did.
                Restock::Unknown => {
                    self.rebuild(|index| index.is_current(&state)).await?;
                    continue;
                }
            }
            let picked = self.index.read(|index| {
                index.is_current(&state).then(|| {
                    index.search(
                        query.q.as_ref().map(|q| q.as_str()),
                        query.min_price,
                        query.max_price,
                        offset,
                        limit,
                    )
                })
            });
            // `None`: one of this process's writes moved the index on meanwhile.
            if let Some(Some(hits)) = picked {
                return Ok(CatalogPage {
                    request: query.paging,
                    total: i64::try_from(hits.total).unwrap_or(i64::MAX),
                    items: PageItems::Indexed(hits.entries),
                });
            }
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

    /// A stock change stamped on a product the index does not hold at the same catalog
    /// version (a row written outside Rampart without moving the version) makes the next
    /// search rebuild the index, once however many searches find it, and show the row.
    #[tokio::test]
    async fn a_stamped_row_the_index_does_not_know_makes_it_rebuild_once() {
        let f = testing::stage_fixture().await;
        let catalog = Catalog::new(f.db.clone());
        catalog
            .create(&new_product("Green tea", 250), NOW)
            .await
            .unwrap();
        let query = ProductQuery::parse([("q", "tea")]).unwrap();
        assert_eq!(catalog.search(&query).await.unwrap().total, 1);
        let stray = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO products (id, name, description, price_cents, currency, stock, \
             created_at, updated_at, search_text) \
             VALUES ($1, 'Stray tea', '', 777, 'EUR', 1, $2, $2, 'stray tea\n')",
        )
        .bind(stray.to_string())
        .bind(NOW + 1)
        .execute(f.db.pool())
        .await
        .unwrap();
        assert_eq!(
            catalog.search(&query).await.unwrap().total,
            1,
            "unseen: the write moved no version (README: what a writer outside Rampart must do)"
        );
        testing::change_stock_by_price(&f.db, 777..=777, 4, 0).await;
        let builds = catalog.index.installs();
        let searches: Vec<_> = (0..8).map(|_| catalog.search(&query)).collect();
        for page in futures_util::future::join_all(searches).await {
            let page = page.unwrap();
            assert_eq!(page.total, 2);
            assert_eq!(page.items[0].id, stray);
            assert_eq!(page.items[0].stock, 5);
        }
        assert_eq!(
            catalog.index.installs(),
            builds + 1,
            "one rebuild for eight searches"
        );
    }

    /// Two instances over one database (two indexes, two batched readers): an order
    /// placed and cancelled anywhere is on the very next page of each, and a product
    /// written through one is in the other's very next search.
    #[tokio::test]
    async fn every_instance_shows_a_stock_change_and_a_new_product_on_its_very_next_search() {
        use crate::{
            domain::{
                order::{OrderFields, PlaceOrder},
                user::Role,
            },
            store::orders::{self, Placed},
        };

        let f = testing::stage_fixture().await;
        let (one, two) = (Catalog::new(f.db.clone()), Catalog::new(f.db.clone()));
        let tea = one
            .create(&new_product("Green tea", 250), NOW)
            .await
            .unwrap();
        let query = ProductQuery::parse([("q", "tea")]).unwrap();
        let stock_seen =
            |page: PageOf<Product>| -> Vec<i64> { page.items.iter().map(|p| p.stock).collect() };
        for catalog in [&one, &two] {
            assert_eq!(stock_seen(catalog.search(&query).await.unwrap()), [4]);
        }

        let alice = f.user(Role::User).await;
        let order = PlaceOrder::parse(OrderFields {
            items: vec![(tea.id.to_string(), 3)],
            street: "1 Main Street".into(),
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
            coupon_code: None,
        })
        .unwrap();
        let placed = orders::place(&f.db, Uuid::new_v4(), alice.id, &order, NOW, None, |_| {
            String::new()
        })
        .await
        .unwrap();
        let Placed::Placed(placed) = placed else {
            panic!("not placed: {placed:?}");
        };
        for catalog in [&one, &two] {
            assert_eq!(
                stock_seen(catalog.search(&query).await.unwrap()),
                [1],
                "the order"
            );
            let page = catalog.search_page(&query).await.unwrap();
            assert!(
                matches!(page.items, PageItems::Indexed(_)),
                "from the index"
            );
        }
        assert!(orders::cancel(&f.db, &placed, NOW + 1).await.unwrap());
        for catalog in [&two, &one] {
            assert_eq!(
                stock_seen(catalog.search(&query).await.unwrap()),
                [4],
                "the cancel"
            );
        }

        let black = two
            .create(&new_product("Black tea", 300), NOW + 5)
            .await
            .unwrap();
        let names: Vec<String> = one
            .search(&query)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(
            names,
            [black.name, tea.name],
            "written through the other instance"
        );
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
        let db_version = store::products::catalog_state(&f.db, 0)
            .await
            .unwrap()
            .versions
            .version;
        // Orders take stock without moving the version: the pages must show it all the same.
        testing::change_stock_by_price(&f.db, i64::MIN..=199, 7, 3).await;
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
