//! Orders and their lines.
//!
//! # Placing an order: one writer task per database, group commit (both backends)
//! Orders queue (a bounded channel) to one writer task per database. It takes every order
//! waiting, up to [`MAX_BATCH`], into one transaction while holding this process's writer
//! turn ([`Db::writer_turn`]), and:
//!
//! ```text
//! SELECT id, name, price_cents, currency, stock FROM products WHERE id IN (…every product
//!   of the batch…) [ORDER BY id COLLATE "C" FOR UPDATE]     -- PostgreSQL: rows locked
//! -- in memory, order after order: priced against those rows, placed when every line has
//! -- the stock the orders before it left, refused (taking nothing) otherwise
//! UPDATE products SET stock = stock + CASE id WHEN $1 THEN $2 … END WHERE id IN ($1, …)
//!                                                  -- what the placed orders took, at once
//! INSERT INTO orders … VALUES (…), (…) ; INSERT INTO order_items … VALUES (…), (…)
//! UPDATE idempotency_keys …                        -- per order with an Idempotency-Key
//! COMMIT
//! ```
//!
//! and only after the commit answers each order: about 6 statements and one commit (one
//! fsync on PostgreSQL, `synchronous_commit = on`) per batch instead of 5 and one per
//! order. The decisions are exact because no other transaction can change the batch's
//! rows between its read and its commit:
//!
//! - On SQLite the batch is a `BEGIN IMMEDIATE` transaction (the database's one writer)
//!   and the writer turn keeps every other write of this process out of it.
//! - On PostgreSQL other writers do run meanwhile (admin product writes, cancels, other
//!   instances' batches): the read locks every row the batch touches (`FOR UPDATE`, which
//!   waits for a writer holding one and then reads its committed stock), so from then on
//!   they change only through the batch. Every batch of every instance takes its row
//!   locks in the same order (sorted ids, chunk after chunk), so two batches never
//!   deadlock each other; should one still meet a deadlock or serialization failure (say
//!   against a cancel), the whole batch is retried.
//!
//! Unknown products and mixed currencies are reported before a shortage. A statement or
//! the commit that fails rolls the whole batch back and fails every order in it: none is
//! acknowledged. A busy, serialization or deadlock error retries the whole batch a few
//! times first. An order whose caller went away before its batch started is skipped.
//!
//! Cancelling is one conditional `UPDATE orders … WHERE id = $1 AND status = 'placed'`:
//! only the request that flips the status gives the stock back.

use std::{
    collections::HashMap,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
};

use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Row, Transaction, any::AnyRow};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{Backend, Db, idempotency};
use crate::domain::{
    order::{
        Order, OrderItem, OrderStatus, PlaceOrder, PriceListEntry, PricingError, StoredAddress,
        price,
    },
    paging::PageRequest,
};

mod statements;
use statements::*;

/// How often a transaction that met a busy database, a serialization failure or a
/// deadlock is tried again.
const RETRIES: usize = 5;

/// The most orders one batch transaction takes.
pub const MAX_BATCH: usize = 64;

/// How many orders may wait for the writer task; a placement beyond waits to queue.
const QUEUE: usize = 1024;

/// Rows per multi-row `INSERT` (and lines per stock statement with a cached text); longer
/// runs are split, which keeps the bind parameters far below both databases' limits.
const ROWS_PER_STATEMENT: usize = 64;

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

/// Renders the answer stored for an order's idempotency key, inside its transaction.
pub type Render = Box<dyn Fn(&Order) -> String + Send + Sync>;

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

/// Place `order` for `user_id` (see the module docs). With `completion`, the body
/// `render` makes of the placed order is stored for that idempotency key in the same
/// transaction. Answers only once the order (or the refusal) is committed.
pub async fn place(
    db: &Db,
    id: Uuid,
    user_id: Uuid,
    order: &PlaceOrder,
    now: i64,
    completion: Option<&idempotency::Key<'_>>,
    render: impl Fn(&Order) -> String + Send + Sync + 'static,
) -> Result<Placed, sqlx::Error> {
    let job = Job {
        id,
        user_id,
        order: order.clone(),
        now,
        key: completion.map(|k| (k.user_id, k.key.to_owned())),
        render: Box::new(render),
    };
    db.order_queue().place(db, job).await
}

/// One order to place.
pub(crate) struct Job {
    id: Uuid,
    user_id: Uuid,
    order: PlaceOrder,
    now: i64,
    /// The idempotency key (user, key) whose answer is stored with the order.
    key: Option<(Uuid, String)>,
    render: Render,
}

/// An order waiting for the writer task, and where its outcome goes.
struct Queued {
    job: Job,
    reply: oneshot::Sender<Result<Placed, sqlx::Error>>,
}

/// The writer task of one database: started by the first order, started again
/// should it ever have stopped.
#[derive(Clone, Default)]
pub(crate) struct OrderQueue {
    sender: Arc<std::sync::Mutex<Option<mpsc::Sender<Queued>>>>,
    stats: Arc<QueueStats>,
}

/// Counters of the writer task (read by tests).
#[derive(Debug, Default)]
struct QueueStats {
    /// Orders handed to the task.
    queued: AtomicUsize,
    /// Transactions it committed.
    commits: AtomicUsize,
}

impl std::fmt::Debug for OrderQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderQueue")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl OrderQueue {
    /// Queue `job` and wait for the commit of its batch.
    async fn place(&self, db: &Db, job: Job) -> Result<Placed, sqlx::Error> {
        let sender = self.sender(db);
        let (reply, outcome) = oneshot::channel();
        sender
            .send(Queued { job, reply })
            .await
            .map_err(|_| sqlx::Error::Protocol("the order writer stopped".into()))?;
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        outcome
            .await
            .map_err(|_| sqlx::Error::Protocol("the order writer stopped".into()))?
    }

    fn sender(&self, db: &Db) -> mpsc::Sender<Queued> {
        let mut slot = self
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = slot.as_ref().filter(|s| !s.is_closed()) {
            return sender.clone();
        }
        let (sender, receiver) = mpsc::channel(QUEUE);
        // The task holds the pool and the writer lock, not the `Db`: when the last `Db`
        // goes, so does the sender, and the task ends.
        tokio::spawn(write_batches(
            db.pool().clone(),
            db.backend(),
            db.writer_lock(),
            receiver,
            self.stats.clone(),
        ));
        *slot = Some(sender.clone());
        sender
    }

    /// Orders handed to the writer task so far.
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.stats.queued.load(Ordering::Relaxed)
    }

    /// Transactions the writer task committed so far.
    #[cfg(test)]
    pub(crate) fn commits(&self) -> usize {
        self.stats.commits.load(Ordering::Relaxed)
    }
}

/// The writer task: one batch after the other until every sender is gone.
async fn write_batches(
    pool: AnyPool,
    backend: Backend,
    writer: Arc<tokio::sync::Mutex<()>>,
    mut receiver: mpsc::Receiver<Queued>,
    stats: Arc<QueueStats>,
) {
    let mut batch: Vec<Queued> = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let waited = std::time::Instant::now();
        let turn = writer.lock().await;
        crate::metrics::record_writer_wait(waited.elapsed());
        // Orders that came while this one waited for its turn join the batch.
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(queued) => batch.push(queued),
                Err(_) => break,
            }
        }
        // A caller that went away (client gone, timeout) gets nothing placed.
        batch.retain(|queued| !queued.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match write_batch(&pool, backend, &batch).await {
                Err(e) if attempt < RETRIES && is_transient(&e) => continue,
                other => break other,
            }
        };
        drop(turn);
        match outcome {
            Ok(placed) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                for (queued, placed) in batch.drain(..).zip(placed) {
                    let _ = queued.reply.send(Ok(placed));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, orders = batch.len(), "an order batch failed");
                for queued in batch.drain(..) {
                    let _ = queued.reply.send(Err(copy_error(&e)));
                }
            }
        }
    }
}

/// The failure of a batch, for each of its orders: the kinds that say the database is
/// unreachable stay those kinds; the others keep their message.
fn copy_error(error: &sqlx::Error) -> sqlx::Error {
    match error {
        sqlx::Error::Io(e) => sqlx::Error::Io(std::io::Error::new(e.kind(), e.to_string())),
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::WorkerCrashed => sqlx::Error::WorkerCrashed,
        other => sqlx::Error::Protocol(format!("the order batch failed: {other}")),
    }
}

/// One transaction for every order of `batch` (see the module docs).
async fn write_batch(
    pool: &AnyPool,
    backend: Backend,
    batch: &[Queued],
) -> Result<Vec<Placed>, sqlx::Error> {
    let mut tx = match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => pool.begin().await?,
    };
    let mut products: Vec<Uuid> = batch
        .iter()
        .flat_map(|queued| queued.job.order.stock_needed())
        .map(|(id, _)| id)
        .collect();
    products.sort_unstable();
    products.dedup();
    let mut stocked = read_products(&mut tx, backend, &products).await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut taken: std::collections::BTreeMap<Uuid, i64> = Default::default();
    for Queued { job, .. } in batch {
        let outcome = decide(job, &mut stocked);
        if let Placed::Placed(order) = &outcome {
            for (product, quantity) in job.order.stock_needed() {
                *taken.entry(product).or_default() += quantity;
            }
            if let Some((user_id, key)) = &job.key {
                let key = idempotency::Key {
                    user_id: *user_id,
                    key,
                };
                idempotency::complete(&mut *tx, &key, PLACED_STATUS, &(job.render)(order)).await?;
            }
        }
        outcomes.push(outcome);
    }
    // The stock every placed order took, one statement for all of them.
    let change: Vec<(Uuid, i64)> = taken.into_iter().map(|(id, q)| (id, -q)).collect();
    add_stock(&mut tx, &change).await?;
    let placed: Vec<&Order> = outcomes
        .iter()
        .filter_map(|o| match o {
            Placed::Placed(order) => Some(order),
            _ => None,
        })
        .collect();
    insert_orders(&mut tx, backend, &placed).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// What pricing and the stock check need of a product, read at the start of a batch.
pub(super) struct Stocked {
    entry: PriceListEntry,
    stock: i64,
}

/// The outcome of `job` against `stocked` (the batch's rows, with the stock the orders
/// before it in the batch left): unknown products and mixed currencies are reported
/// before a shortage, as a refusal that takes nothing; a placed order takes its stock
/// from `stocked`.
fn decide(job: &Job, stocked: &mut HashMap<Uuid, Stocked>) -> Placed {
    let needed = job.order.stock_needed();
    let catalog: HashMap<Uuid, PriceListEntry> = needed
        .iter()
        .filter_map(|(id, _)| stocked.get(id).map(|s| (*id, s.entry.clone())))
        .collect();
    let enough = needed
        .iter()
        .all(|(id, quantity)| stocked.get(id).is_some_and(|s| s.stock >= *quantity));
    let (items, total_cents, currency) = match price(&job.order, &catalog) {
        Ok(priced) => priced,
        Err(e) => return Placed::NotPriced(e),
    };
    if !enough {
        return Placed::OutOfStock;
    }
    for (id, quantity) in &needed {
        if let Some(s) = stocked.get_mut(id) {
            s.stock -= quantity;
        }
    }
    let address = &job.order.shipping_address;
    Placed::Placed(Order {
        id: job.id,
        user_id: job.user_id,
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
        coupon_code: job
            .order
            .coupon_code
            .as_ref()
            .map(|c| c.as_str().to_owned()),
        created_at: job.now,
    })
}

/// `$1, $2, … $n`.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
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
        // One statement for every line; a deleted product has nothing to restore.
        add_stock(&mut tx, &restore).await?;
    }
    tx.commit().await?;
    Ok(flipped)
}

#[cfg(test)]
mod tests;
