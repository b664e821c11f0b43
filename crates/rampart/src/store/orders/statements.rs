//! The statement texts of the order writer: built once per row count and kept, fixed
//! fragments and numbered (or, on SQLite, anonymous) placeholders only, and the
//! statements that run them.

use super::*;

/// `rows` cut into chunks of [`ROWS_PER_STATEMENT`] rows, then of the powers of two the
/// rest is made of (largest first): at most 7 statement texts per kind, each prepared once
/// per connection. One text per row count instead (1–64) kept 64 large prepared
/// statements per kind on every pooled connection, tens of MiB in all.
pub(super) fn power_of_two_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let size = if rows.len() >= ROWS_PER_STATEMENT {
            ROWS_PER_STATEMENT
        } else {
            1 << rows.len().ilog2()
        };
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

/// The text of a statement for `n` rows (or lines), built once per `n` up to
/// [`ROWS_PER_STATEMENT`] and kept; fixed fragments and numbered placeholders only.
pub(super) fn cached_sql(
    cache: &'static [OnceLock<String>; ROWS_PER_STATEMENT],
    n: usize,
    build: fn(usize) -> String,
) -> AssertSqlSafe<std::borrow::Cow<'static, str>> {
    match n.checked_sub(1).and_then(|i| cache.get(i)) {
        Some(slot) => AssertSqlSafe(std::borrow::Cow::Borrowed(
            slot.get_or_init(|| build(n)).as_str(),
        )),
        None => AssertSqlSafe(std::borrow::Cow::Owned(build(n))),
    }
}

/// `CASE id WHEN $1 THEN $2 WHEN $3 THEN $4 … END` for `n` (id, quantity) pairs.
pub(super) fn quantity_case(n: usize) -> String {
    let whens: String = (0..n)
        .map(|i| format!(" WHEN ${} THEN ${}", 2 * i + 1, 2 * i + 2))
        .collect();
    format!("CASE id{whens} END")
}

/// `$1, $3, …`: the ids of `n` (id, quantity) pairs.
pub(super) fn pair_ids(n: usize) -> String {
    (0..n)
        .map(|i| format!("${}", 2 * i + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn add_stock_sql(n: usize) -> String {
    format!(
        "UPDATE products SET stock = stock + {} WHERE id IN ({})",
        quantity_case(n),
        pair_ids(n)
    )
}

/// Add `lines`' quantities (distinct products; negative to take) to their stock, in one
/// statement per [`ROWS_PER_STATEMENT`] lines; a deleted product has nothing to restore.
/// Then [`stamp_stock_change`] for them, in the same transaction.
pub(super) async fn add_stock(
    conn: &mut AnyConnection,
    lines: &[(Uuid, i64)],
) -> Result<(), sqlx::Error> {
    static CACHE: [OnceLock<String>; ROWS_PER_STATEMENT] =
        [const { OnceLock::new() }; ROWS_PER_STATEMENT];
    for chunk in power_of_two_chunks(lines) {
        let mut query = sqlx::query(cached_sql(&CACHE, chunk.len(), add_stock_sql));
        for (product_id, quantity) in chunk {
            query = query.bind(product_id.to_string()).bind(*quantity);
        }
        query.execute(&mut *conn).await?;
    }
    let ids: Vec<Uuid> = lines.iter().map(|(id, _)| *id).collect();
    stamp_stock_change(conn, &ids).await
}

pub(super) fn stamp_sql(n: usize) -> String {
    format!(
        "UPDATE products SET stock_version = \
         (SELECT stock_version FROM catalog_version WHERE id = 1) WHERE id IN ({})",
        placeholders(n)
    )
}

/// Move the catalog's stock version by one and stamp the rows of `products` (distinct)
/// with it, in the transaction that changed their stock (migration 0008): what lets every
/// instance's search index read only the products whose stock changed since it last
/// looked. Called once the rows are written, so their row locks are held before the
/// `catalog_version` row's, the order every catalog writer keeps (no deadlock); on
/// PostgreSQL that row stays locked until the commit, so stock versions commit in order.
pub(super) async fn stamp_stock_change(
    conn: &mut AnyConnection,
    products: &[Uuid],
) -> Result<(), sqlx::Error> {
    static CACHE: [OnceLock<String>; ROWS_PER_STATEMENT] =
        [const { OnceLock::new() }; ROWS_PER_STATEMENT];
    if products.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE catalog_version SET stock_version = stock_version + 1 WHERE id = 1")
        .execute(&mut *conn)
        .await?;
    for chunk in power_of_two_chunks(products) {
        let mut query = sqlx::query(cached_sql(&CACHE, chunk.len(), stamp_sql));
        for product_id in chunk {
            query = query.bind(product_id.to_string());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The products of a batch with their stock; on PostgreSQL their rows locked, in id order:
/// `COLLATE "C"` makes the order the bytes' order, the same on every database and the
/// order of the sorted [`Uuid`]s, so chunks read one after the other keep it too (SQLite
/// has no row locks: the batch's `BEGIN IMMEDIATE` holds the whole database).
pub(super) fn read_products_sql(n: usize) -> String {
    format!(
        "SELECT id, name, price_cents, currency, stock FROM products WHERE id IN ({})",
        placeholders(n)
    )
}

pub(super) fn lock_products_sql(n: usize) -> String {
    format!(
        "{} ORDER BY id COLLATE \"C\" FOR UPDATE",
        read_products_sql(n)
    )
}

/// Read (and on PostgreSQL lock) the rows of `products` (sorted, distinct), in that order.
pub(super) async fn read_products(
    conn: &mut AnyConnection,
    backend: Backend,
    products: &[Uuid],
) -> Result<HashMap<Uuid, Stocked>, sqlx::Error> {
    static READ: [OnceLock<String>; ROWS_PER_STATEMENT] =
        [const { OnceLock::new() }; ROWS_PER_STATEMENT];
    static LOCK: [OnceLock<String>; ROWS_PER_STATEMENT] =
        [const { OnceLock::new() }; ROWS_PER_STATEMENT];
    let (cache, build): (_, fn(usize) -> String) = match backend {
        Backend::Sqlite => (&READ, read_products_sql),
        Backend::Postgres => (&LOCK, lock_products_sql),
    };
    let mut stocked = HashMap::with_capacity(products.len());
    for chunk in power_of_two_chunks(products) {
        let mut query = sqlx::query(cached_sql(cache, chunk.len(), build));
        for product_id in chunk {
            query = query.bind(product_id.to_string());
        }
        for row in query.fetch_all(&mut *conn).await? {
            let (id, entry) = price_list_entry(&row)?;
            let stock = row.try_get("stock")?;
            stocked.insert(id, Stocked { entry, stock });
        }
    }
    Ok(stocked)
}

/// `($1, …, $cols), ($cols+1, …), …` for `rows` rows.
pub(super) fn values(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let row = (1..=cols)
                .map(|c| format!("${}", r * cols + c))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({row})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(?, …), (?, …), …`: SQLite's anonymous parameters, bound in order. sqlx looks up the
/// name of every numbered parameter by a linear scan inside SQLite, which makes a
/// statement with hundreds of `$N` cost quadratic time to bind (seen in the profile).
pub(super) fn anonymous_values(rows: usize, cols: usize) -> String {
    let row = format!("({})", vec!["?"; cols].join(", "));
    vec![row; rows].join(", ")
}

pub(super) const INSERT_ORDERS: &str = "INSERT INTO orders (id, user_id, status, total_cents, currency, \
                             street, city, postal_code, country, coupon_code, created_at) \
                             VALUES ";
pub(super) const INSERT_ITEMS: &str = "INSERT INTO order_items (order_id, line_no, product_id, name, \
                            quantity, unit_price_cents, line_total_cents) VALUES ";

pub(super) fn insert_orders_sql(rows: usize) -> String {
    format!("{INSERT_ORDERS}{}", values(rows, 11))
}

pub(super) fn insert_orders_sqlite(rows: usize) -> String {
    format!("{INSERT_ORDERS}{}", anonymous_values(rows, 11))
}

pub(super) fn insert_items_sql(rows: usize) -> String {
    format!("{INSERT_ITEMS}{}", values(rows, 7))
}

pub(super) fn insert_items_sqlite(rows: usize) -> String {
    format!("{INSERT_ITEMS}{}", anonymous_values(rows, 7))
}

/// Write `orders` and all their lines: one multi-row `INSERT` for the orders and one for
/// the lines (per [`ROWS_PER_STATEMENT`] rows).
pub(super) async fn insert_orders(
    conn: &mut AnyConnection,
    backend: Backend,
    orders: &[&Order],
) -> Result<(), sqlx::Error> {
    type Cache = [OnceLock<String>; ROWS_PER_STATEMENT];
    /// Where a statement's texts are kept, and how one is built.
    type Texts = (&'static Cache, fn(usize) -> String);
    static ORDERS: Cache = [const { OnceLock::new() }; ROWS_PER_STATEMENT];
    static ITEMS: Cache = [const { OnceLock::new() }; ROWS_PER_STATEMENT];
    static ORDERS_SQLITE: Cache = [const { OnceLock::new() }; ROWS_PER_STATEMENT];
    static ITEMS_SQLITE: Cache = [const { OnceLock::new() }; ROWS_PER_STATEMENT];
    let (orders_sql, items_sql): (Texts, Texts) = match backend {
        Backend::Sqlite => (
            (&ORDERS_SQLITE, insert_orders_sqlite),
            (&ITEMS_SQLITE, insert_items_sqlite),
        ),
        Backend::Postgres => ((&ORDERS, insert_orders_sql), (&ITEMS, insert_items_sql)),
    };
    for chunk in power_of_two_chunks(orders) {
        let mut query = sqlx::query(cached_sql(orders_sql.0, chunk.len(), orders_sql.1));
        for order in chunk {
            let address = &order.shipping_address;
            query = query
                .bind(order.id.to_string())
                .bind(order.user_id.to_string())
                .bind(order.status.as_str())
                .bind(order.total_cents)
                .bind(order.currency.clone())
                .bind(address.street.clone())
                .bind(address.city.clone())
                .bind(address.postal_code.clone())
                .bind(address.country.clone())
                .bind(order.coupon_code.clone())
                .bind(order.created_at);
        }
        query.execute(&mut *conn).await?;
    }
    let lines: Vec<(&Order, i64, &OrderItem)> = orders
        .iter()
        .flat_map(|order| {
            order
                .items
                .iter()
                .enumerate()
                .map(move |(n, item)| (*order, i64::try_from(n).unwrap_or(i64::MAX), item))
        })
        .collect();
    for chunk in power_of_two_chunks(&lines) {
        let mut query = sqlx::query(cached_sql(items_sql.0, chunk.len(), items_sql.1));
        for (order, line_no, item) in chunk {
            query = query
                .bind(order.id.to_string())
                .bind(*line_no)
                .bind(item.product_id.to_string())
                .bind(item.name.clone())
                .bind(item.quantity)
                .bind(item.unit_price_cents)
                .bind(item.line_total_cents);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
