//! What the service unit tests share: a fresh, migrated SQLite database in a temporary
//! directory, and helpers that put accounts and products in it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sqlx::{AnyConnection, AssertSqlSafe, Connection as _, Executor as _};
use uuid::Uuid;

use crate::{
    config::DatabaseUrl,
    domain::{
        product::{NewProduct, Product, ProductPatch},
        user::{Role, User},
    },
    security_events::SecurityEvents,
    store::{self, Db, users::NewUser},
};

/// A temporary store and its event log.
pub struct Fixture {
    /// The database.
    pub db: Db,
    /// Events recorded into it.
    pub events: SecurityEvents,
    /// A private directory beside the database (for files).
    pub dir: tempfile::TempDir,
}

/// A fresh, migrated SQLite database in a temporary directory.
pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::new(format!("sqlite://{}/test.db", dir.path().display()));
    let db = Db::connect(&url, 2).await.unwrap();
    db.migrate().await.unwrap();
    let events = SecurityEvents::new(db.clone(), crate::clock::Clock::system());
    Fixture { db, events, dir }
}

/// A fresh, migrated database: a new PostgreSQL database on the server
/// `RAMPART_TEST_DATABASE` names (the PostgreSQL test stage), otherwise SQLite.
pub async fn stage_fixture() -> Fixture {
    let admin = match std::env::var("RAMPART_TEST_DATABASE") {
        Ok(admin) if admin.starts_with("postgres") => admin,
        _ => return fixture().await,
    };
    let name = format!("rampart_unit_{}", Uuid::new_v4().simple());
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(&admin).await.unwrap();
    conn.execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    conn.close().await.unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let db = Db::connect(&DatabaseUrl::new(format!("{base}/{name}")), 4)
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let events = SecurityEvents::new(db.clone(), crate::clock::Clock::system());
    let dir = tempfile::tempdir().unwrap();
    Fixture { db, events, dir }
}

impl Fixture {
    /// A new verified, active account with `role`.
    pub async fn user(&self, role: Role) -> User {
        let email = format!("{}@example.com", Uuid::new_v4().simple());
        let new = NewUser {
            email: &email,
            name: "Test",
            password_hash: "not a hash",
            role,
            email_verified: true,
        };
        store::users::create(&self.db, &new, crate::clock::Clock::system().now_ms())
            .await
            .unwrap()
            .unwrap()
    }

    /// A new product.
    pub async fn product(&self, price_cents: i64, currency: &str, stock: i64) -> Product {
        let new = NewProduct {
            name: format!("Product {}", Uuid::new_v4().simple()),
            description: String::new(),
            price_cents,
            currency: currency.to_owned(),
            stock,
        };
        store::products::create(&self.db, &new, crate::clock::Clock::system().now_ms())
            .await
            .unwrap()
    }

    /// The stock of product `id`.
    pub async fn stock(&self, id: Uuid) -> i64 {
        store::products::get(&self.db, id)
            .await
            .unwrap()
            .unwrap()
            .stock
    }

    /// Set the stock of product `id`.
    pub async fn set_stock(&self, id: Uuid, stock: i64) {
        let patch = ProductPatch {
            stock: Some(stock),
            ..ProductPatch::default()
        };
        store::products::update(&self.db, id, &patch, crate::clock::Clock::system().now_ms())
            .await
            .unwrap();
    }

    /// A new session family of `user`, begun at `now`.
    pub async fn session(&self, user: &User, now: i64) -> Uuid {
        let token = Uuid::new_v4().to_string();
        store::sessions::create_family(&self.db, user.id, &token, "", "", now, 60_000, 60_000)
            .await
            .unwrap()
    }

    /// Whether session family `family` of `user` is revoked.
    pub async fn session_revoked(&self, user: &User, family: Uuid) -> bool {
        store::users::auth_status(&self.db, user.id, family)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    }

    /// How many events of `kind` concern `user_id`.
    pub async fn events_of(&self, kind: &str, user_id: Uuid) -> i64 {
        let paging = crate::domain::paging::PageRequest::default();
        let (_, total) = store::events::list(
            &self.db,
            Some(kind),
            Some(user_id),
            paging.page,
            paging.limit,
        )
        .await
        .unwrap();
        total
    }
}

/// Add `delta` to the stock of the products priced within `prices` and move their
/// `updated_at` by `later` ms, the way a writer other than the order writer must (README,
/// "Catalog search"): in one transaction, the rows first, then the stock version moved and
/// the rows stamped with it.
pub async fn change_stock_by_price(
    db: &Db,
    prices: std::ops::RangeInclusive<i64>,
    delta: i64,
    later: i64,
) {
    let mut tx = db.pool().begin().await.unwrap();
    sqlx::query(
        "UPDATE products SET stock = stock + $1, updated_at = updated_at + $2 \
         WHERE price_cents BETWEEN $3 AND $4",
    )
    .bind(delta)
    .bind(later)
    .bind(*prices.start())
    .bind(*prices.end())
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("UPDATE catalog_version SET stock_version = stock_version + 1 WHERE id = 1")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE products SET stock_version = \
         (SELECT stock_version FROM catalog_version WHERE id = 1) \
         WHERE price_cents BETWEEN $1 AND $2",
    )
    .bind(*prices.start())
    .bind(*prices.end())
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
}
