//! The catalog.

use sqlx::{Any, AssertSqlSafe, Row, Transaction, any::AnyRow};
use uuid::Uuid;

use super::{Backend, Db};
use crate::domain::product::{NewProduct, Product, ProductPatch, ProductQuery};

fn from_row(row: &AnyRow) -> Result<Product, sqlx::Error> {
    let id: String = row.try_get("id")?;
    Ok(Product {
        id: Uuid::parse_str(&id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        price_cents: row.try_get("price_cents")?,
        currency: row.try_get("currency")?,
        stock: row.try_get("stock")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: &str = "id, name, description, price_cents, currency, stock, created_at, updated_at";

/// Escape `%`, `_` and `\` so a search text is matched literally by `LIKE … ESCAPE '\'`.
pub fn like_pattern(text: &str) -> String {
    escaped_pattern(&text.to_lowercase())
}

fn escaped_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Case folding for search: each character's Unicode lowercase, whatever its neighbours
/// (so the folding of a text is the folding of its parts put together, and a substring
/// stays a substring).
pub fn fold(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// A product's search text, stored in `products.search_text`: its folded name and
/// description joined by a newline, which no search text can contain (`q` has no control
/// characters), so no match spans both fields. Both backends then search it with the same
/// case-sensitive substring test, whatever their own `LOWER` and locale would do.
pub fn search_text(name: &str, description: &str) -> String {
    let mut text = String::with_capacity(name.len() + description.len() + 1);
    text.extend(name.chars().flat_map(char::to_lowercase));
    text.push('\n');
    text.extend(description.chars().flat_map(char::to_lowercase));
    text
}

/// One page of products matching `query`, newest first, and the total count, by SQL
/// alone (a scan of the catalog): the reference the in-process index is tested against,
/// and its fallback.
pub async fn search(db: &Db, query: &ProductQuery) -> Result<(Vec<Product>, i64), sqlx::Error> {
    // The SQL text is assembled from fixed fragments only; every value is a bind parameter.
    let mut conditions: Vec<String> = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if query.q.is_some() {
        conditions.push(format!("search_text LIKE {} ESCAPE '\\'", next()));
    }
    if query.min_price.is_some() {
        conditions.push(format!("price_cents >= {}", next()));
    }
    if query.max_price.is_some() {
        conditions.push(format!("price_cents <= {}", next()));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let limit_param = next();
    let offset_param = next();

    let count_sql = format!("SELECT COUNT(*) AS total FROM products{filter}");
    let page_sql = format!(
        "SELECT {COLUMNS} FROM products{filter} ORDER BY created_at DESC, id DESC \
         LIMIT {limit_param} OFFSET {offset_param}"
    );
    let pattern = query.q.as_ref().map(|q| escaped_pattern(&fold(q.as_str())));

    let mut count = sqlx::query(AssertSqlSafe(count_sql));
    let mut page = sqlx::query(AssertSqlSafe(page_sql));
    if let Some(p) = &pattern {
        count = count.bind(p.clone());
        page = page.bind(p.clone());
    }
    for bound in [query.min_price, query.max_price].into_iter().flatten() {
        count = count.bind(bound);
        page = page.bind(bound);
    }
    page = page.bind(query.paging.rows()).bind(query.paging.offset());

    let total: i64 = count.fetch_one(db.pool()).await?.try_get("total")?;
    let rows = page.fetch_all(db.pool()).await?;
    let products = rows.iter().map(from_row).collect::<Result<_, _>>()?;
    Ok((products, total))
}

/// What the search index keeps of a product: the product (its `stock` and `updated_at` as
/// of the index's stock version, see [`catalog_state`]) and its [`search_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    /// The product.
    pub product: Product,
    /// See [`search_text`].
    pub search_text: String,
}

/// The two versions of the catalog: `version` moves with every admin write of a product
/// (create, change, delete), `stock` with every write that changes a product's stock or
/// `updated_at` without one (orders; migration 0008). Ordered by the catalog version, then
/// the stock version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Versions {
    /// The catalog version.
    pub version: i64,
    /// The stock version.
    pub stock: i64,
}

/// Both versions and every product with its search text, read in one statement (one
/// snapshot). Rows stored before the search text existed (migration 0005 leaves it empty)
/// get it here.
pub async fn index_rows(db: &Db) -> Result<(Versions, Vec<IndexRow>), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT v.version AS version, v.stock_version AS stock_version, p.id AS id, \
         p.name AS name, p.description AS description, \
         p.price_cents AS price_cents, p.currency AS currency, p.stock AS stock, \
         p.created_at AS created_at, p.updated_at AS updated_at, p.search_text AS search_text \
         FROM catalog_version v LEFT JOIN products p ON 1 = 1 WHERE v.id = 1",
    )
    .fetch_all(db.pool())
    .await?;
    let mut versions = Versions::default();
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        versions = Versions {
            version: row.try_get("version")?,
            stock: row.try_get("stock_version")?,
        };
        if row.try_get::<Option<String>, _>("id")?.is_none() {
            continue;
        }
        let product = from_row(row)?;
        let mut text: String = row.try_get("search_text")?;
        if text.is_empty() {
            text = search_text(&product.name, &product.description);
            sqlx::query("UPDATE products SET search_text = $1 WHERE id = $2 AND search_text = ''")
                .bind(text.clone())
                .bind(product.id.to_string())
                .execute(db.pool())
                .await?;
        }
        out.push(IndexRow {
            product,
            search_text: text,
        });
    }
    Ok((versions, out))
}

/// The statement of [`catalog_state`] around a dialect's string aggregate.
macro_rules! catalog_state_sql {
    ($aggregate:literal) => {
        concat!(
            "SELECT v.version AS version, v.stock_version AS stock_version, \
             CASE WHEN v.stock_version > $1 THEN (SELECT ",
            $aggregate,
            "(p.id || ',' || p.stock || ',' || p.updated_at, ';') FROM products p \
             WHERE p.stock_version > $1 AND p.stock_version <= v.stock_version) END AS stock \
             FROM catalog_version v WHERE v.id = 1"
        )
    };
}

/// Both versions and, when the stock version is past `$1`, every product stamped after
/// `$1` (and up to the version read: each writer stamps its rows with the version it moved
/// to, and on PostgreSQL holds the `catalog_version` row until it commits, so no row below
/// the version read is still to come). Without a stock change nothing but the one
/// `catalog_version` row is read. The products come back folded into one text,
/// `id,stock,updated_at` joined by `;`, so one row crosses from the database whatever
/// their number: on SQLite each row is a hand-over from the driver's worker thread.
///
/// The range has both ends (`> $1 AND <= v.stock_version`) so that PostgreSQL's generic
/// plan of the prepared statement, which cannot know `$1`, estimates a narrow range and
/// probes `products_stock_version` instead of scanning the table.
const CATALOG_STATE_SQLITE: &str = catalog_state_sql!("group_concat");
/// [`CATALOG_STATE_SQLITE`] in PostgreSQL's words (`string_agg`).
const CATALOG_STATE_POSTGRES: &str = catalog_state_sql!("string_agg");

/// The current stock and `updated_at` of a product (what changes without moving the
/// catalog version: orders take and give back stock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock {
    /// The product.
    pub id: Uuid,
    /// Units in stock.
    pub stock: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// The catalog's versions and the [`Stock`] of the products whose stock changed after
/// stock version `since`, read in one statement (one snapshot).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogState {
    /// Both versions.
    pub versions: Versions,
    /// The stock version the changes start after.
    pub since: i64,
    /// Every product stamped in `(since, versions.stock]`, by id (empty when `since` is
    /// not below the stock version).
    pub changed: Vec<Stock>,
}

/// The catalog's [`CatalogState`] after stock version `since` (see
/// [`CATALOG_STATE_SQLITE`]).
pub async fn catalog_state(db: &Db, since: i64) -> Result<CatalogState, sqlx::Error> {
    let sql = match db.backend() {
        Backend::Sqlite => CATALOG_STATE_SQLITE,
        Backend::Postgres => CATALOG_STATE_POSTGRES,
    };
    let row = sqlx::query(sql).bind(since).fetch_one(db.pool()).await?;
    let folded: Option<&str> = row.try_get("stock")?;
    let mut state = CatalogState {
        versions: Versions {
            version: row.try_get("version")?,
            stock: row.try_get("stock_version")?,
        },
        since,
        changed: Vec::new(),
    };
    for product in folded.unwrap_or_default().split_terminator(';') {
        state.changed.push(unfold_stock(product).ok_or_else(|| {
            sqlx::Error::Decode(format!("a malformed stock entry: {product:?}").into())
        })?);
    }
    state.changed.sort_unstable_by_key(|s| s.id);
    Ok(state)
}

/// One `id,stock,updated_at` of the folded stock text.
fn unfold_stock(text: &str) -> Option<Stock> {
    let mut fields = text.split(',');
    let stock = Stock {
        id: Uuid::parse_str(fields.next()?).ok()?,
        stock: fields.next()?.parse().ok()?,
        updated_at: fields.next()?.parse().ok()?,
    };
    fields.next().is_none().then_some(stock)
}

/// The product with `id`, if any.
pub async fn get(db: &Db, id: Uuid) -> Result<Option<Product>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, name, description, price_cents, currency, stock, created_at, updated_at \
         FROM products WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(db.pool())
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// A write transaction and, on SQLite, this process's writer turn, held until it ends.
struct WriteTx {
    tx: Transaction<'static, Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

async fn begin_write(db: &Db) -> Result<WriteTx, sqlx::Error> {
    let turn = db.writer_turn().await;
    let tx = match db.backend() {
        Backend::Sqlite => db.pool().begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => db.pool().begin().await?,
    };
    Ok(WriteTx { tx, _turn: turn })
}

/// Move the catalog to its next version (in the write's transaction) and return it.
async fn bump_version(tx: &mut Transaction<'static, Any>) -> Result<i64, sqlx::Error> {
    sqlx::query("UPDATE catalog_version SET version = version + 1 WHERE id = 1 RETURNING version")
        .fetch_one(&mut **tx)
        .await?
        .try_get("version")
}

/// Insert a product created at `now` (Unix ms) and return it.
pub async fn create(db: &Db, new: &NewProduct, now: i64) -> Result<Product, sqlx::Error> {
    create_versioned(db, new, now).await.map(|(p, _)| p)
}

/// Insert a product created at `now` (Unix ms); the product and the catalog version its
/// transaction moved the catalog to.
pub async fn create_versioned(
    db: &Db,
    new: &NewProduct,
    now: i64,
) -> Result<(Product, i64), sqlx::Error> {
    let product = Product {
        id: Uuid::new_v4(),
        name: new.name.clone(),
        description: new.description.clone(),
        price_cents: new.price_cents,
        currency: new.currency.clone(),
        stock: new.stock,
        created_at: now,
        updated_at: now,
    };
    let mut write = begin_write(db).await?;
    sqlx::query(
        "INSERT INTO products (id, name, description, price_cents, currency, stock, created_at, \
         updated_at, search_text) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(product.id.to_string())
    .bind(product.name.clone())
    .bind(product.description.clone())
    .bind(product.price_cents)
    .bind(product.currency.clone())
    .bind(product.stock)
    .bind(product.created_at)
    .bind(product.updated_at)
    .bind(search_text(&product.name, &product.description))
    .execute(&mut *write.tx)
    .await?;
    let version = bump_version(&mut write.tx).await?;
    write.tx.commit().await?;
    Ok((product, version))
}

/// Apply `patch` to the product with `id` in one statement (only the given columns change,
/// so a concurrent order's stock decrement is never overwritten by a stale value) and
/// return the product, or `None` when there is no such product.
pub async fn update(
    db: &Db,
    id: Uuid,
    patch: &ProductPatch,
    now: i64,
) -> Result<Option<Product>, sqlx::Error> {
    Ok(update_versioned(db, id, patch, now).await?.map(|(p, _)| p))
}

/// [`update`], and the catalog version its transaction moved the catalog to.
pub async fn update_versioned(
    db: &Db,
    id: Uuid,
    patch: &ProductPatch,
    now: i64,
) -> Result<Option<(Product, i64)>, sqlx::Error> {
    let mut write = begin_write(db).await?;
    let row = sqlx::query(
        "UPDATE products SET name = COALESCE($1, name), description = COALESCE($2, description), \
         price_cents = COALESCE($3, price_cents), currency = COALESCE($4, currency), \
         stock = COALESCE($5, stock), updated_at = $6 WHERE id = $7 \
         RETURNING id, name, description, price_cents, currency, stock, created_at, updated_at",
    )
    .bind(patch.name.clone())
    .bind(patch.description.clone())
    .bind(patch.price_cents)
    .bind(patch.currency.clone())
    .bind(patch.stock)
    .bind(now)
    .bind(id.to_string())
    .fetch_optional(&mut *write.tx)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let product = from_row(&row)?;
    if patch.name.is_some() || patch.description.is_some() {
        // The row is this transaction's now (row lock, or SQLite's one writer).
        sqlx::query("UPDATE products SET search_text = $1 WHERE id = $2")
            .bind(search_text(&product.name, &product.description))
            .bind(id.to_string())
            .execute(&mut *write.tx)
            .await?;
    }
    let version = bump_version(&mut write.tx).await?;
    write.tx.commit().await?;
    Ok(Some((product, version)))
}

/// Delete the product with `id`; whether it existed. Orders keep their copy of its name
/// and price.
pub async fn delete(db: &Db, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(delete_versioned(db, id).await?.is_some())
}

/// [`delete`]: the catalog version its transaction moved the catalog to, `None` when there
/// was no such product.
pub async fn delete_versioned(db: &Db, id: Uuid) -> Result<Option<i64>, sqlx::Error> {
    let mut write = begin_write(db).await?;
    let result = sqlx::query("DELETE FROM products WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *write.tx)
        .await?;
    if result.rows_affected() != 1 {
        return Ok(None);
    }
    let version = bump_version(&mut write.tx).await?;
    write.tx.commit().await?;
    Ok(Some(version))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use uuid::Uuid;

    use super::{Stock, catalog_state, fold, like_pattern, search_text, unfold_stock};

    #[test]
    fn a_folded_stock_entry_is_read_exactly_or_refused() {
        let id = Uuid::new_v4();
        assert_eq!(
            unfold_stock(&format!("{id},7,1800000000000")),
            Some(Stock {
                id,
                stock: 7,
                updated_at: 1_800_000_000_000
            })
        );
        for bad in [
            format!("{id},7"),
            format!("{id},7,1,2"),
            format!("{id},x,1"),
            "not-an-id,7,1".to_owned(),
            String::new(),
        ] {
            assert_eq!(unfold_stock(&bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn the_catalog_state_returns_exactly_the_rows_stamped_after_the_version_asked() {
        let f = crate::commerce::testing::stage_fixture().await;
        let a = f.product(100, "EUR", 3).await;
        let b = f.product(200, "EUR", 5).await;
        let start = catalog_state(&f.db, 0).await.unwrap();
        assert_eq!(
            start.versions.stock, 0,
            "creating products moves the catalog version only"
        );
        assert!(start.versions.version > 1);
        assert!(start.changed.is_empty());

        crate::commerce::testing::change_stock_by_price(&f.db, 100..=100, -1, 0).await;
        let one = catalog_state(&f.db, 0).await.unwrap();
        assert_eq!(
            one.versions.version, start.versions.version,
            "stock moves no catalog version"
        );
        assert_eq!(one.versions.stock, 1);
        let stock = |id, stock, updated_at| Stock {
            id,
            stock,
            updated_at,
        };
        assert_eq!(one.changed, [stock(a.id, 2, a.updated_at)]);

        crate::commerce::testing::change_stock_by_price(&f.db, 200..=200, 4, 10).await;
        let mut both = vec![
            stock(a.id, 2, a.updated_at),
            stock(b.id, 9, b.updated_at + 10),
        ];
        both.sort_by_key(|s| s.id);
        let since_start = catalog_state(&f.db, 0).await.unwrap();
        assert_eq!(since_start.versions.stock, 2);
        assert_eq!(since_start.changed, both, "everything after 0");
        let since_one = catalog_state(&f.db, 1).await.unwrap();
        assert_eq!(
            since_one.changed,
            [stock(b.id, 9, b.updated_at + 10)],
            "only after 1"
        );
        let current = catalog_state(&f.db, 2).await.unwrap();
        assert!(
            current.changed.is_empty(),
            "nothing after the current version"
        );
        assert_eq!(current.since, 2);
        assert!(catalog_state(&f.db, 7).await.unwrap().changed.is_empty());
    }

    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(like_pattern("' OR 1=1 --"), "%' or 1=1 --%");
    }

    #[test]
    fn search_text_folds_each_character_and_keeps_the_fields_apart() {
        assert_eq!(search_text("CAFÉ Σ", "<B>İ</B>"), "café σ\n<b>i\u{307}</b>");
        assert_eq!(
            fold("ΟΔΟΣ"),
            "οδοσ",
            "no final-sigma context: Σ alone finds it"
        );
    }
}
