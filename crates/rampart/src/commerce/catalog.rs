//! The catalog: search and read for anyone, create, change and delete for admins (the
//! HTTP layer checks the role; input arrives parsed and sanitized, see
//! [`crate::domain::product`]).
//!
//! A change is one statement over the given fields only, so it never writes back a stale
//! stock over a concurrent order's decrement; deleting a product leaves placed orders their
//! copy of its name and price.

use anyhow::Context as _;
use uuid::Uuid;

use crate::{
    domain::{
        paging::PageOf,
        product::{NewProduct, Product, ProductPatch, ProductQuery},
    },
    store::{self, Db},
};

/// The catalog service.
#[derive(Debug, Clone)]
pub struct Catalog {
    db: Db,
}

impl Catalog {
    /// The catalog in `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// One page of the products matching `query`, newest first, with the true total.
    pub async fn search(&self, query: &ProductQuery) -> anyhow::Result<PageOf<Product>> {
        let found = store::products::search(&self.db, query)
            .await
            .context("database")?;
        Ok(PageOf::new(query.paging, found))
    }

    /// The product `id`, if any.
    pub async fn get(&self, id: Uuid) -> anyhow::Result<Option<Product>> {
        store::products::get(&self.db, id).await.context("database")
    }

    /// Add a product, stamped `now`.
    pub async fn create(&self, new: &NewProduct, now: i64) -> anyhow::Result<Product> {
        store::products::create(&self.db, new, now)
            .await
            .context("database")
    }

    /// Change the given fields of product `id`; `None` when there is no such product.
    pub async fn update(
        &self,
        id: Uuid,
        patch: &ProductPatch,
        now: i64,
    ) -> anyhow::Result<Option<Product>> {
        store::products::update(&self.db, id, patch, now)
            .await
            .context("database")
    }

    /// Delete product `id`; whether it existed.
    pub async fn delete(&self, id: Uuid) -> anyhow::Result<bool> {
        store::products::delete(&self.db, id)
            .await
            .context("database")
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
