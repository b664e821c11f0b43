//! Orders and their lines.
//!
//! # Placing an order
//! An order takes its stock with **one** statement for all its lines:
//!
//! ```text
//! UPDATE products SET stock = stock - CASE id WHEN $1 THEN $2 WHEN $3 THEN $4 … END
//! WHERE id IN ($1, $3, …) AND stock >= CASE id … END
//!   AND (SELECT COUNT(*) FROM products WHERE (id = $1 AND stock >= $2) OR …) = n
//! RETURNING id, name, price_cents, currency
//! ```
//!
//! Either every line's row comes back (stock taken, and with it what pricing needs, read in
//! the same transaction) or none does (short or unknown: nothing taken). The order and all
//! its lines are then written with one multi-row `INSERT` each, and with an
//! `Idempotency-Key` the stored response in the same transaction.
//!
//! # SQLite: one writer task, group commit
//! SQLite has one writer at a time, so orders queue (a bounded channel) to one writer task
//! per database. It takes every order waiting, up to [`MAX_BATCH`], into one `BEGIN
//! IMMEDIATE` transaction while holding this process's writer turn ([`Db::writer_turn`]:
//! other writes never interleave with a batch), runs each order's stock statement in turn,
//! writes all the placed orders and their lines with one `INSERT` each, commits once, and
//! only then answers each order. An order refused for stock changed nothing (the statement
//! is all-or-nothing), so it needs no savepoint; one refused after its stock was taken
//! (mixed currencies, a total too large) gets that stock back by the inverse statement,
//! exact because nothing else writes during the batch. A statement or the commit that fails
//! rolls the whole batch back and fails every order in it: none is acknowledged. An order
//! whose caller went away before its batch started is skipped.
//!
//! # PostgreSQL: one transaction per order
//! Row locks do the work: the conditional update locks the order's rows (a row another
//! order changed meanwhile is checked again against its new stock), and an order whose
//! statement did not take every line is rolled back. A busy, serialization or deadlock
//! error is retried a few times before it becomes a 500, on both backends.
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

/// How often a transaction that met a busy database, a serialization failure or a
/// deadlock is tried again.
const RETRIES: usize = 5;

/// The most orders one SQLite transaction takes.
pub const MAX_BATCH: usize = 64;

/// How many orders may wait for the SQLite writer task; a placement beyond waits to queue.
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
    match db.backend() {
        Backend::Sqlite => db.order_queue().place(db, job).await,
        Backend::Postgres => {
            let mut attempt = 0;
            loop {
                attempt += 1;
                match place_alone(db, &job).await {
                    Err(e) if attempt < RETRIES && is_transient(&e) => continue,
                    other => return other,
                }
            }
        }
    }
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

/// An order waiting for the SQLite writer task, and where its outcome goes.
struct Queued {
    job: Job,
    reply: oneshot::Sender<Result<Placed, sqlx::Error>>,
}

/// The SQLite writer task of one database: started by the first order, started again
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

/// The SQLite writer task: one batch after the other until every sender is gone.
async fn write_batches(
    pool: AnyPool,
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
            match write_batch(&pool, &batch).await {
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

/// One SQLite transaction for every order of `batch` (see the module docs).
async fn write_batch(pool: &AnyPool, batch: &[Queued]) -> Result<Vec<Placed>, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for Queued { job, .. } in batch {
        let (outcome, taken) = take_and_price(&mut tx, job).await?;
        if !matches!(outcome, Placed::Placed(_)) && !taken.is_empty() {
            give_back(&mut tx, &taken).await?;
        }
        if let (Placed::Placed(order), Some((user_id, key))) = (&outcome, &job.key) {
            let key = idempotency::Key {
                user_id: *user_id,
                key,
            };
            idempotency::complete(&mut *tx, &key, PLACED_STATUS, &(job.render)(order)).await?;
        }
        outcomes.push(outcome);
    }
    let placed: Vec<&Order> = outcomes
        .iter()
        .filter_map(|o| match o {
            Placed::Placed(order) => Some(order),
            _ => None,
        })
        .collect();
    insert_orders(&mut tx, Backend::Sqlite, &placed).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// One PostgreSQL transaction for one order (see the module docs).
async fn place_alone(db: &Db, job: &Job) -> Result<Placed, sqlx::Error> {
    let WriteTx { mut tx, _turn } = begin_write(db).await?;
    let (outcome, _taken) = take_and_price(&mut tx, job).await?;
    let Placed::Placed(order) = &outcome else {
        tx.rollback().await?;
        return Ok(outcome);
    };
    insert_orders(&mut tx, db.backend(), &[order]).await?;
    if let Some((user_id, key)) = &job.key {
        let key = idempotency::Key {
            user_id: *user_id,
            key,
        };
        idempotency::complete(&mut *tx, &key, PLACED_STATUS, &(job.render)(order)).await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Take the stock of `job`'s lines and price it: the outcome, and the lines whose stock
/// the statement took (all of them when placed; on a refusal, what the caller must give
/// back or roll back).
async fn take_and_price(
    conn: &mut AnyConnection,
    job: &Job,
) -> Result<(Placed, Vec<(Uuid, i64)>), sqlx::Error> {
    let needed = job.order.stock_needed();
    let rows = take_stock(conn, &needed).await?;
    let mut catalog = rows
        .iter()
        .map(price_list_entry)
        .collect::<Result<HashMap<_, _>, _>>()?;
    let taken: Vec<(Uuid, i64)> = needed
        .iter()
        .filter(|(id, _)| catalog.contains_key(id))
        .copied()
        .collect();
    let short = taken.len() < needed.len();
    if short {
        // Unknown products and mixed currencies are reported before a shortage.
        catalog = price_list(conn, needed.iter().map(|(id, _)| *id)).await?;
    }
    let (items, total_cents, currency) = match price(&job.order, &catalog) {
        Ok(priced) => priced,
        Err(e) => return Ok((Placed::NotPriced(e), taken)),
    };
    if short {
        return Ok((Placed::OutOfStock, taken));
    }
    let address = &job.order.shipping_address;
    let placed = Order {
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
    };
    Ok((Placed::Placed(placed), taken))
}

/// `rows` cut into chunks of [`ROWS_PER_STATEMENT`] rows, then of the powers of two the
/// rest is made of (largest first): at most 7 statement texts per kind, each prepared once
/// per connection. One text per row count instead (1–64) kept 64 large prepared
/// statements per kind on every pooled connection, tens of MiB in all.
fn power_of_two_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
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
fn cached_sql(
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
fn quantity_case(n: usize) -> String {
    let whens: String = (0..n)
        .map(|i| format!(" WHEN ${} THEN ${}", 2 * i + 1, 2 * i + 2))
        .collect();
    format!("CASE id{whens} END")
}

/// `$1, $3, …`: the ids of `n` (id, quantity) pairs.
fn pair_ids(n: usize) -> String {
    (0..n)
        .map(|i| format!("${}", 2 * i + 1))
        .collect::<Vec<_>>()
        .join(", ")
}

fn take_stock_sql(n: usize) -> String {
    let case = quantity_case(n);
    let mut sql = format!(
        "UPDATE products SET stock = stock - {case} WHERE id IN ({}) AND stock >= {case}",
        pair_ids(n)
    );
    if n > 1 {
        // All or nothing: every line must have the stock before any is taken.
        let enough = (0..n)
            .map(|i| format!("(id = ${} AND stock >= ${})", 2 * i + 1, 2 * i + 2))
            .collect::<Vec<_>>()
            .join(" OR ");
        sql.push_str(&format!(
            " AND (SELECT COUNT(*) FROM products WHERE {enough}) = {n}"
        ));
    }
    sql.push_str(" RETURNING id, name, price_cents, currency");
    sql
}

fn give_back_sql(n: usize) -> String {
    format!(
        "UPDATE products SET stock = stock + {} WHERE id IN ({})",
        quantity_case(n),
        pair_ids(n)
    )
}

/// Take `needed` (distinct products, sorted) in one statement; the rows it changed.
async fn take_stock(
    conn: &mut AnyConnection,
    needed: &[(Uuid, i64)],
) -> Result<Vec<AnyRow>, sqlx::Error> {
    static CACHE: [OnceLock<String>; ROWS_PER_STATEMENT] =
        [const { OnceLock::new() }; ROWS_PER_STATEMENT];
    let mut query = sqlx::query(cached_sql(&CACHE, needed.len(), take_stock_sql));
    for (product_id, quantity) in needed {
        query = query.bind(product_id.to_string()).bind(*quantity);
    }
    query.fetch_all(conn).await
}

/// Give `lines` (distinct products) their stock back in one statement per
/// [`ROWS_PER_STATEMENT`] lines; a deleted product has nothing to restore.
async fn give_back(conn: &mut AnyConnection, lines: &[(Uuid, i64)]) -> Result<(), sqlx::Error> {
    static CACHE: [OnceLock<String>; ROWS_PER_STATEMENT] =
        [const { OnceLock::new() }; ROWS_PER_STATEMENT];
    for chunk in power_of_two_chunks(lines) {
        let mut query = sqlx::query(cached_sql(&CACHE, chunk.len(), give_back_sql));
        for (product_id, quantity) in chunk {
            query = query.bind(product_id.to_string()).bind(*quantity);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `($1, …, $cols), ($cols+1, …), …` for `rows` rows.
fn values(rows: usize, cols: usize) -> String {
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
fn anonymous_values(rows: usize, cols: usize) -> String {
    let row = format!("({})", vec!["?"; cols].join(", "));
    vec![row; rows].join(", ")
}

const INSERT_ORDERS: &str = "INSERT INTO orders (id, user_id, status, total_cents, currency, \
                             street, city, postal_code, country, coupon_code, created_at) \
                             VALUES ";
const INSERT_ITEMS: &str = "INSERT INTO order_items (order_id, line_no, product_id, name, \
                            quantity, unit_price_cents, line_total_cents) VALUES ";

fn insert_orders_sql(rows: usize) -> String {
    format!("{INSERT_ORDERS}{}", values(rows, 11))
}

fn insert_orders_sqlite(rows: usize) -> String {
    format!("{INSERT_ORDERS}{}", anonymous_values(rows, 11))
}

fn insert_items_sql(rows: usize) -> String {
    format!("{INSERT_ITEMS}{}", values(rows, 7))
}

fn insert_items_sqlite(rows: usize) -> String {
    format!("{INSERT_ITEMS}{}", anonymous_values(rows, 7))
}

/// Write `orders` and all their lines: one multi-row `INSERT` for the orders and one for
/// the lines (per [`ROWS_PER_STATEMENT`] rows).
async fn insert_orders(
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

/// `$1, $2, … $n`.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn price_list(
    conn: &mut AnyConnection,
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
    let rows = query.fetch_all(conn).await?;
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
        // One statement for every line; a deleted product has nothing to restore.
        give_back(&mut tx, &restore).await?;
    }
    tx.commit().await?;
    Ok(flipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        commerce::testing::{self, Fixture},
        domain::{order::OrderFields, user::Role},
    };

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn rows_go_in_chunks_of_at_most_seven_sizes_and_none_is_lost() {
        let mut sizes = std::collections::BTreeSet::new();
        for n in 0..=300usize {
            let rows: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = power_of_two_chunks(&rows).collect();
            assert_eq!(chunks.concat(), rows, "{n} rows");
            for chunk in &chunks {
                assert!(chunk.len().is_power_of_two() && chunk.len() <= ROWS_PER_STATEMENT);
                sizes.insert(chunk.len());
            }
        }
        assert_eq!(sizes.len(), 7);
    }

    #[test]
    fn placeholders_are_numbered_from_one() {
        assert_eq!(placeholders(3), "$1, $2, $3");
        assert_eq!(values(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(anonymous_values(2, 2), "(?, ?), (?, ?)");
        assert_eq!(pair_ids(3), "$1, $3, $5");
        assert_eq!(
            quantity_case(2),
            "CASE id WHEN $1 THEN $2 WHEN $3 THEN $4 END"
        );
    }

    fn order_of(lines: &[(Uuid, i64)], city: &str) -> PlaceOrder {
        PlaceOrder::parse(OrderFields {
            items: lines.iter().map(|(id, q)| (id.to_string(), *q)).collect(),
            street: "1 Main Street".into(),
            city: city.into(),
            postal_code: "10115".into(),
            country: "DE".into(),
            coupon_code: None,
        })
        .unwrap()
    }

    /// Queue every order of `orders` while the writer turn is held, so the writer task
    /// takes them all into one batch once it is free; their ids and outcomes, in order.
    async fn one_batch(
        f: &Fixture,
        user: Uuid,
        orders: Vec<PlaceOrder>,
    ) -> Vec<(Uuid, Result<Placed, sqlx::Error>)> {
        let turn = f.db.writer_turn().await;
        let before = f.db.order_queue().queued();
        let tasks: Vec<_> = orders
            .into_iter()
            .map(|order| {
                let (db, id) = (f.db.clone(), Uuid::new_v4());
                let task = tokio::spawn(async move {
                    place(&db, id, user, &order, NOW, None, |_| String::new()).await
                });
                (id, task)
            })
            .collect();
        let n = tasks.len();
        crate::testing::eventually("the orders were not queued", || async {
            (f.db.order_queue().queued() - before == n).then_some(())
        })
        .await;
        drop(turn);
        let mut outcomes = Vec::new();
        for (id, task) in tasks {
            outcomes.push((id, task.await.unwrap()));
        }
        outcomes
    }

    async fn orders_stored(f: &Fixture) -> i64 {
        let row: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM orders")
            .fetch_one(f.db.pool())
            .await
            .unwrap();
        row.0
    }

    #[tokio::test]
    async fn a_batch_commits_once_and_each_answer_is_what_it_committed() {
        let f = testing::fixture().await;
        let alice = f.user(Role::User).await;
        let scarce = f.product(100, "EUR", 3).await;
        let plenty = f.product(250, "EUR", 100).await;
        let dollars = f.product(100, "USD", 50).await;
        let mut orders: Vec<PlaceOrder> = (0..8)
            .map(|_| order_of(&[(scarce.id, 1), (plenty.id, 1)], "Berlin"))
            .collect();
        // Refusals inside the batch: mixed currencies (its stock is taken, then given
        // back), an unknown product, and a short line beside a plentiful one.
        orders.push(order_of(&[(scarce.id, 1), (dollars.id, 1)], "Berlin"));
        orders.push(order_of(&[(Uuid::new_v4(), 1), (plenty.id, 1)], "Berlin"));
        orders.push(order_of(&[(plenty.id, 2), (scarce.id, 4)], "Berlin"));
        // Both in stock: taken by the statement, given back when pricing refuses.
        orders.push(order_of(&[(plenty.id, 1), (dollars.id, 1)], "Berlin"));
        let commits = f.db.order_queue().commits();
        let outcomes = one_batch(&f, alice.id, orders).await;
        assert_eq!(f.db.order_queue().commits(), commits + 1, "one transaction");

        let mut placed = 0;
        for (n, (id, outcome)) in outcomes.iter().enumerate() {
            let stored = get(&f.db, *id).await.unwrap();
            match outcome.as_ref().unwrap() {
                Placed::Placed(order) => {
                    placed += 1;
                    assert!(n < 8, "order {n} was placed");
                    assert_eq!(stored.as_ref(), Some(order), "the answer is what is stored");
                    assert_eq!(order.total_cents, 350);
                }
                refused => {
                    assert_eq!(stored, None, "a refused order is not stored: {refused:?}");
                    let expected = match n {
                        0..8 => Placed::OutOfStock,
                        8 | 11 => Placed::NotPriced(PricingError::MixedCurrencies),
                        9 => Placed::NotPriced(PricingError::UnknownProducts(vec![0])),
                        _ => Placed::OutOfStock,
                    };
                    assert_eq!(refused, &expected, "order {n}");
                }
            }
        }
        assert_eq!(placed, 3, "exactly the scarce stock was sold");
        assert_eq!(orders_stored(&f).await, 3);
        assert_eq!(f.stock(scarce.id).await, 0);
        assert_eq!(
            f.stock(plenty.id).await,
            97,
            "refused orders took none of it"
        );
        assert_eq!(f.stock(dollars.id).await, 50, "given back");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_order_in_it_and_keeps_nothing() {
        let f = testing::fixture().await;
        let alice = f.user(Role::User).await;
        let tea = f.product(100, "EUR", 10).await;
        // One order of the batch makes its INSERT fail.
        sqlx::query(
            "CREATE TRIGGER refuse_nowhere BEFORE INSERT ON orders WHEN NEW.city = 'Nowhere' \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        )
        .execute(f.db.pool())
        .await
        .unwrap();
        let mut orders: Vec<PlaceOrder> =
            (0..4).map(|_| order_of(&[(tea.id, 1)], "Berlin")).collect();
        orders.push(order_of(&[(tea.id, 1)], "Nowhere"));
        let commits = f.db.order_queue().commits();
        for (_, outcome) in one_batch(&f, alice.id, orders).await {
            let error = outcome.unwrap_err().to_string();
            assert!(error.contains("injected failure"), "{error}");
        }
        assert_eq!(f.db.order_queue().commits(), commits, "nothing committed");
        assert_eq!(orders_stored(&f).await, 0);
        assert_eq!(f.stock(tea.id).await, 10, "no stock taken");
        // The writer goes on with the next batch.
        let next = order_of(&[(tea.id, 2)], "Berlin");
        let placed = place(&f.db, Uuid::new_v4(), alice.id, &next, NOW, None, |_| {
            String::new()
        });
        assert!(matches!(placed.await.unwrap(), Placed::Placed(_)));
        assert_eq!(f.stock(tea.id).await, 8);
    }

    #[tokio::test]
    async fn an_idempotency_answer_is_stored_in_the_batch_with_its_order() {
        let f = testing::fixture().await;
        let alice = f.user(Role::User).await;
        let tea = f.product(100, "EUR", 10).await;
        let key = idempotency::Key {
            user_id: alice.id,
            key: "batch",
        };
        let claim = idempotency::claim(&f.db, &key, "h", NOW, 1_000_000, 60_000);
        assert_eq!(claim.await.unwrap(), idempotency::Claim::Claimed);
        let order = order_of(&[(tea.id, 1)], "Berlin");
        let placed = place(
            &f.db,
            Uuid::new_v4(),
            alice.id,
            &order,
            NOW,
            Some(&key),
            |o| format!("placed {}", o.id),
        );
        let Placed::Placed(order) = placed.await.unwrap() else {
            panic!("not placed")
        };
        let again = idempotency::claim(&f.db, &key, "h", NOW + 1, 1_000_000, 60_000);
        assert_eq!(
            again.await.unwrap(),
            idempotency::Claim::Replay {
                status: PLACED_STATUS,
                body: format!("placed {}", order.id)
            }
        );
    }
}
