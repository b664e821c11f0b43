//! The catalog.

use sqlx::{AssertSqlSafe, Row, any::AnyRow};
use uuid::Uuid;

use super::Db;
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
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// One page of products matching `query`, newest first, and the total count.
pub async fn search(db: &Db, query: &ProductQuery) -> Result<(Vec<Product>, i64), sqlx::Error> {
    // The SQL text is assembled from fixed fragments only; every value is a bind parameter.
    let mut conditions: Vec<String> = Vec::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    if query.q.is_some() {
        conditions.push(format!(
            "(LOWER(name) LIKE {p} ESCAPE '\\' OR LOWER(description) LIKE {p} ESCAPE '\\')",
            p = next()
        ));
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
    let pattern = query.q.as_ref().map(|q| like_pattern(q.as_str()));

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

/// Insert a product created at `now` (Unix ms) and return it.
pub async fn create(db: &Db, new: &NewProduct, now: i64) -> Result<Product, sqlx::Error> {
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
    sqlx::query(
        "INSERT INTO products (id, name, description, price_cents, currency, stock, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(product.id.to_string())
    .bind(product.name.clone())
    .bind(product.description.clone())
    .bind(product.price_cents)
    .bind(product.currency.clone())
    .bind(product.stock)
    .bind(product.created_at)
    .bind(product.updated_at)
    .execute(db.pool())
    .await?;
    Ok(product)
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
    let result = sqlx::query(
        "UPDATE products SET name = COALESCE($1, name), description = COALESCE($2, description), \
         price_cents = COALESCE($3, price_cents), currency = COALESCE($4, currency), \
         stock = COALESCE($5, stock), updated_at = $6 WHERE id = $7",
    )
    .bind(patch.name.clone())
    .bind(patch.description.clone())
    .bind(patch.price_cents)
    .bind(patch.currency.clone())
    .bind(patch.stock)
    .bind(now)
    .bind(id.to_string())
    .execute(db.pool())
    .await?;
    if result.rows_affected() == 0 {
        return Ok(None);
    }
    get(db, id).await
}

/// Delete the product with `id`; whether it existed. Orders keep their copy of its name
/// and price.
pub async fn delete(db: &Db, id: Uuid) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM products WHERE id = $1")
        .bind(id.to_string())
        .execute(db.pool())
        .await?;
    Ok(result.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_metacharacters_are_escaped() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
        assert_eq!(like_pattern("' OR 1=1 --"), "%' or 1=1 --%");
    }
}
