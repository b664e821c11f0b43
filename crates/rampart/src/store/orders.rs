//! Orders and their lines.
//!
//! Placing an order is one write transaction: every product's stock is decremented by a
//! conditional `UPDATE products SET stock = stock - $1 WHERE id = $2 AND stock >= $1
//! RETURNING …` (no row back means short or unknown), which also yields the price read
//! inside the same transaction, and the order, its lines and (with an `Idempotency-Key`) the stored
//! response are written before the one commit. Any shortfall rolls everything back.
//!
//! # Concurrency
//! On SQLite the transaction starts with `BEGIN IMMEDIATE`, so it takes the write lock at
//! once and waits for it under the busy timeout, instead of failing with `SQLITE_BUSY` when
//! a read transaction would have to upgrade. On PostgreSQL the conditional update locks the
//! row; rows are locked in product-id order, so two orders cannot deadlock. A busy,
//! serialization or deadlock error is retried a few times before it becomes a 500. On
//! SQLite, write transactions of one process also queue on an in-process lock first
//! ([`Db::writer_turn`]), so they wait in line rather than in SQLite's sleeping busy handler.
//! Cancelling is one conditional `UPDATE orders … WHERE id = $1 AND status = 'placed'`:
//! only the request that flips the status gives the stock back.

use std::collections::HashMap;

use sqlx::{Any, AssertSqlSafe, Row, Transaction, any::AnyRow};
use uuid::Uuid;

use super::{Backend, Db, idempotency};
use crate::domain::{
    order::{
        Order, OrderItem, OrderStatus, PlaceOrder, PriceListEntry, PricingError, StoredAddress,
        price,
    },
    paging::PageRequest,
};

/// How often a transaction that met a busy database, a serialization failure or a
/// deadlock is tried again.
const RETRIES: usize = 5;

/// The status stored with the answer to a placed order.
pub const PLACED_STATUS: u16 = 201;

/// What became of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// Stored, stock taken.
    Placed(Order),
    /// Nothing stored: pricing failed (unknown products, mixed currencies, too large).
    NotPriced(PricingError),
    /// Nothing stored: some product has too little stock.
    OutOfStock,
}

/// A write transaction and, on SQLite, this process's writer turn, held until it ends.
pub(crate) struct WriteTx {
    /// The transaction.
    pub tx: Transaction<'static, Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// Start a write transaction (see the module docs).
pub(crate) async fn begin_write(db: &Db) -> Result<WriteTx, sqlx::Error> {
    let turn = db.writer_turn().await;
    let tx = match db.backend() {
        Backend::Sqlite => db.pool().begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => db.pool().begin().await?,
    };
    Ok(WriteTx { tx, _turn: turn })
}

/// Whether `error` is a transient conflict worth another try: SQLite busy/locked
/// (extended codes included), PostgreSQL serialization failure or deadlock.
pub(crate) fn is_transient(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    match code.as_str() {
        "40001" | "40P01" => true,
        numeric => numeric
            .parse::<i32>()
            .is_ok_and(|c| matches!(c & 0xff, 5 | 6)),
    }
}

/// Place `order` for `user_id` (see the module docs). With `completion`, the rendered
/// `201` body is stored for that idempotency key in the same transaction.
pub async fn place(
    db: &Db,
    id: Uuid,
    user_id: Uuid,
    order: &PlaceOrder,
    now: i64,
    completion: Option<&idempotency::Key<'_>>,
    render: impl Fn(&Order) -> String,
) -> Result<Placed, sqlx::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_place(db, id, user_id, order, now, completion, &render).await {
            Err(e) if attempt < RETRIES && is_transient(&e) => continue,
            other => return other,
        }
    }
}

async fn try_place(
    db: &Db,
    id: Uuid,
    user_id: Uuid,
    order: &PlaceOrder,
    now: i64,
    completion: Option<&idempotency::Key<'_>>,
    render: &impl Fn(&Order) -> String,
) -> Result<Placed, sqlx::Error> {
    let WriteTx { mut tx, _turn } = begin_write(db).await?;
    let needed = order.stock_needed();
    // Each conditional update hands back what pricing needs of the row it changed, so the
    // common case reads nothing more; a line it did not change is short or unknown.
    let mut catalog = HashMap::with_capacity(needed.len());
    let mut missed = Vec::new();
    for (product_id, quantity) in &needed {
        let row = sqlx::query(
            "UPDATE products SET stock = stock - $1 WHERE id = $2 AND stock >= $1 \
             RETURNING id, name, price_cents, currency",
        )
        .bind(*quantity)
        .bind(product_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        match row {
            Some(row) => {
                let (id, entry) = price_list_entry(&row)?;
                catalog.insert(id, entry);
            }
            None => missed.push(*product_id),
        }
    }
    let short = !missed.is_empty();
    if short {
        // Unknown products and mixed currencies are reported before a shortage.
        catalog.extend(price_list(&mut tx, missed.into_iter()).await?);
    }
    let (items, total_cents, currency) = match price(order, &catalog) {
        Ok(priced) => priced,
        Err(e) => {
            tx.rollback().await?;
            return Ok(Placed::NotPriced(e));
        }
    };
    if short {
        tx.rollback().await?;
        return Ok(Placed::OutOfStock);
    }
    let address = &order.shipping_address;
    let placed = Order {
        id,
        user_id,
        status: OrderStatus::Placed,
        items,
        total_cents,
        currency,
        shipping_address: StoredAddress {
            street: address.street.clone(),
            city: address.city.clone(),
            postal_code: address.postal_code.as_str().to_owned(),
            country: address.country.as_str().to_owned(),
        },
        coupon_code: order.coupon_code.as_ref().map(|c| c.as_str().to_owned()),
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO orders (id, user_id, status, total_cents, currency, street, city, \
         postal_code, country, coupon_code, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(placed.id.to_string())
    .bind(user_id.to_string())
    .bind(placed.status.as_str())
    .bind(placed.total_cents)
    .bind(placed.currency.clone())
    .bind(placed.shipping_address.street.clone())
    .bind(placed.shipping_address.city.clone())
    .bind(placed.shipping_address.postal_code.clone())
    .bind(placed.shipping_address.country.clone())
    .bind(placed.coupon_code.clone())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for (line_no, item) in placed.items.iter().enumerate() {
        sqlx::query(
            "INSERT INTO order_items (order_id, line_no, product_id, name, quantity, \
             unit_price_cents, line_total_cents) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(placed.id.to_string())
        .bind(i64::try_from(line_no).unwrap_or(i64::MAX))
        .bind(item.product_id.to_string())
        .bind(item.name.clone())
        .bind(item.quantity)
        .bind(item.unit_price_cents)
        .bind(item.line_total_cents)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(key) = completion {
        idempotency::complete(&mut *tx, key, PLACED_STATUS, &render(&placed)).await?;
    }
    tx.commit().await?;
    Ok(Placed::Placed(placed))
}

/// `$1, $2, … $n`.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn price_list(
    tx: &mut Transaction<'static, Any>,
    ids: impl Iterator<Item = Uuid>,
) -> Result<HashMap<Uuid, PriceListEntry>, sqlx::Error> {
    let ids: Vec<String> = ids.map(|id| id.to_string()).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    // Fixed fragments and numbered placeholders only; every id is a bind parameter.
    let sql = format!(
        "SELECT id, name, price_cents, currency FROM products WHERE id IN ({})",
        placeholders(ids.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for id in &ids {
        query = query.bind(id.clone());
    }
    let rows = query.fetch_all(&mut **tx).await?;
    rows.iter().map(price_list_entry).collect()
}

fn price_list_entry(row: &AnyRow) -> Result<(Uuid, PriceListEntry), sqlx::Error> {
    let id: String = row.try_get("id")?;
    Ok((
        parse_uuid(&id)?,
        PriceListEntry {
            name: row.try_get("name")?,
            price_cents: row.try_get("price_cents")?,
            currency: row.try_get("currency")?,
        },
    ))
}

fn parse_uuid(raw: &str) -> Result<Uuid, sqlx::Error> {
    Uuid::parse_str(raw).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

const ORDER_COLUMNS: &str = "id, user_id, status, total_cents, currency, street, city, \
                             postal_code, country, coupon_code, created_at";

fn order_from_row(row: &AnyRow) -> Result<Order, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let user_id: String = row.try_get("user_id")?;
    let status: String = row.try_get("status")?;
    Ok(Order {
        id: parse_uuid(&id)?,
        user_id: parse_uuid(&user_id)?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| sqlx::Error::Decode("unknown order status".into()))?,
        items: Vec::new(),
        total_cents: row.try_get("total_cents")?,
        currency: row.try_get("currency")?,
        shipping_address: StoredAddress {
            street: row.try_get("street")?,
            city: row.try_get("city")?,
            postal_code: row.try_get("postal_code")?,
            country: row.try_get("country")?,
        },
        coupon_code: row.try_get("coupon_code")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Fill in the lines of `orders` with one query.
async fn with_items(db: &Db, mut orders: Vec<Order>) -> Result<Vec<Order>, sqlx::Error> {
    if orders.is_empty() {
        return Ok(orders);
    }
    let sql = format!(
        "SELECT order_id, product_id, name, quantity, unit_price_cents, line_total_cents \
         FROM order_items WHERE order_id IN ({}) ORDER BY order_id, line_no",
        placeholders(orders.len())
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for order in &orders {
        query = query.bind(order.id.to_string());
    }
    let rows = query.fetch_all(db.pool()).await?;
    let mut lines: HashMap<Uuid, Vec<OrderItem>> = HashMap::new();
    for row in &rows {
        let order_id: String = row.try_get("order_id")?;
        let product_id: String = row.try_get("product_id")?;
        lines
            .entry(parse_uuid(&order_id)?)
            .or_default()
            .push(OrderItem {
                product_id: parse_uuid(&product_id)?,
                name: row.try_get("name")?,
                quantity: row.try_get("quantity")?,
                unit_price_cents: row.try_get("unit_price_cents")?,
                line_total_cents: row.try_get("line_total_cents")?,
            });
    }
    for order in &mut orders {
        order.items = lines.remove(&order.id).unwrap_or_default();
    }
    Ok(orders)
}

/// The order with `id`, if any (whoever owns it: the caller decides who may see it).
pub async fn get(db: &Db, id: Uuid) -> Result<Option<Order>, sqlx::Error> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(db.pool())
    .await?;
    let Some(order) = row.as_ref().map(order_from_row).transpose()? else {
        return Ok(None);
    };
    Ok(with_items(db, vec![order]).await?.pop())
}

/// One page of orders, newest first: those of `owner`, or every order for `None`; and
/// the total count.
pub async fn list(
    db: &Db,
    owner: Option<Uuid>,
    paging: PageRequest,
) -> Result<(Vec<Order>, i64), sqlx::Error> {
    let (limit, offset) = (paging.rows(), paging.offset());
    let (total, rows) = match owner {
        Some(user_id) => {
            let total: i64 = sqlx::query("SELECT COUNT(*) AS total FROM orders WHERE user_id = $1")
                .bind(user_id.to_string())
                .fetch_one(db.pool())
                .await?
                .try_get("total")?;
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = $1 \
                 ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
            )))
            .bind(user_id.to_string())
            .bind(limit)
            .bind(offset)
            .fetch_all(db.pool())
            .await?;
            (total, rows)
        }
        None => {
            let total: i64 = sqlx::query("SELECT COUNT(*) AS total FROM orders")
                .fetch_one(db.pool())
                .await?
                .try_get("total")?;
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT {ORDER_COLUMNS} FROM orders \
                 ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
            )))
            .bind(limit)
            .bind(offset)
            .fetch_all(db.pool())
            .await?;
            (total, rows)
        }
    };
    let orders = rows
        .iter()
        .map(order_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((with_items(db, orders).await?, total))
}

/// Cancel the order with `id` and give its stock back, exactly once however many cancels
/// race: only the request whose conditional update flips `placed` to `cancelled` restores
/// stock, in the same transaction. Whether this call cancelled it.
pub async fn cancel(db: &Db, order: &Order, now: i64) -> Result<bool, sqlx::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_cancel(db, order, now).await {
            Err(e) if attempt < RETRIES && is_transient(&e) => continue,
            other => return other,
        }
    }
}

async fn try_cancel(db: &Db, order: &Order, now: i64) -> Result<bool, sqlx::Error> {
    let WriteTx { mut tx, _turn } = begin_write(db).await?;
    let flipped = sqlx::query(
        "UPDATE orders SET status = 'cancelled', cancelled_at = $1 \
         WHERE id = $2 AND status = 'placed'",
    )
    .bind(now)
    .bind(order.id.to_string())
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if flipped {
        let mut restore: Vec<(Uuid, i64)> = Vec::new();
        for item in &order.items {
            match restore.iter_mut().find(|(id, _)| *id == item.product_id) {
                Some((_, qty)) => *qty += item.quantity,
                None => restore.push((item.product_id, item.quantity)),
            }
        }
        restore.sort_by_key(|(id, _)| *id);
        for (product_id, quantity) in restore {
            // A deleted product has nothing to restore: zero rows is fine.
            sqlx::query("UPDATE products SET stock = stock + $1 WHERE id = $2")
                .bind(quantity)
                .bind(product_id.to_string())
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(flipped)
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_are_numbered_from_one() {
        assert_eq!(placeholders(3), "$1, $2, $3");
    }
}
