//! Orders: place (with its optional `Idempotency-Key`), list, read and cancel.
//!
//! - Prices and totals come from the catalog; stock is checked and taken inside a group
//!   commit of the orders waiting, on both backends ([`store::orders`]), never oversold,
//!   answered once committed.
//! - An `Idempotency-Key` is scoped to the user. It is claimed with a conditional insert
//!   before anything runs; the first answer is stored (a success in the order's own
//!   transaction) and replayed for 24 h for the same key and the same request; the same key
//!   with another request is [`Placement::KeyReused`], while the first still runs
//!   [`Placement::InFlight`]. Client errors of the placement itself (unknown product, short
//!   stock, mixed currencies) are answers too and are stored; a server-side failure frees the
//!   key, and so does a placement whose future is dropped (client gone, timeout).
//! - Owners see their own orders, admins every order; for anyone else an existing order is
//!   the same `None` as an unknown id, and the probe is recorded as a `forbidden` event.
//!
//! What a stored answer looks like is the caller's business ([`Answers`]): the service
//! stores and replays it byte for byte.

use anyhow::Context as _;
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::{
    domain::{
        order::{IdempotencyKey, Order, PlaceOrder, PricingError},
        paging::{PageOf, PageRequest},
        user::{Role, User},
    },
    security_events::{EventContext, EventKind, SecurityEvents},
    store::{
        self, Db,
        idempotency::{self, Claim},
        orders::Placed,
    },
};

pub use crate::store::orders::PLACED_STATUS;

/// How long an answer is replayed for its `Idempotency-Key`.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The order service.
#[derive(Debug, Clone)]
pub struct Orders {
    db: Db,
    events: SecurityEvents,
    stale_after_ms: i64,
}

/// An order to place for `customer`.
#[derive(Debug, Clone)]
pub struct PlaceOrderCommand {
    /// Who orders.
    pub customer: Uuid,
    /// The checked order.
    pub order: PlaceOrder,
    /// The `Idempotency-Key`, if the client sent one.
    pub idempotency: Option<Idempotency>,
}

/// An `Idempotency-Key` and the fingerprint of the request it came with.
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// The key.
    pub key: IdempotencyKey,
    /// A hash of the canonical request: the same request always hashes the same.
    pub request_hash: String,
}

/// Why an order was not placed, with nothing stored and no stock taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown products, mixed currencies, or a total too large.
    NotPriced(PricingError),
    /// Some product has too little stock.
    OutOfStock,
}

/// What became of a placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Stored, stock taken.
    Placed(Order),
    /// Refused (and, with a key, that answer stored for replays).
    Refused(Refusal),
    /// The key's first answer, exactly as [`Answers`] rendered it then.
    Replayed {
        /// Its status.
        status: u16,
        /// Its body.
        body: String,
    },
    /// The key's first request is still running.
    InFlight,
    /// The key was used with another request.
    KeyReused,
}

/// How the caller renders the answers stored for an `Idempotency-Key`.
pub trait Answers: Sync {
    /// The body of the answer to a placed order.
    fn placed(&self, order: &Order) -> String;
    /// The status and body of the answer to a refusal.
    fn refused(&self, refusal: &Refusal) -> (u16, String);
}

impl Orders {
    /// Orders in `db`, probes recorded in `events`. A claimed key still in flight after
    /// twice `request_timeout` belongs to a request that died without committing: it is
    /// taken over.
    pub fn new(db: Db, events: SecurityEvents, request_timeout: Duration) -> Self {
        let stale_after_ms = i64::try_from(request_timeout.as_millis())
            .unwrap_or(i64::MAX / 4)
            .saturating_mul(2);
        Self {
            db,
            events,
            stale_after_ms,
        }
    }

    /// Place an order at `now` (see the module docs).
    pub async fn place(
        &self,
        command: PlaceOrderCommand,
        answers: &'static impl Answers,
        now: i64,
    ) -> anyhow::Result<Placement> {
        let key = command.idempotency.as_ref().map(|i| idempotency::Key {
            user_id: command.customer,
            key: i.key.as_str(),
        });
        // The claim runs in a task of its own, which makes the guard that frees the key the
        // moment it claims it: if this future is dropped while the claim is in flight (the
        // client went away), the task still finishes, and its unclaimed output — the guard —
        // is dropped, freeing the key. A claim can never be left behind without its guard.
        let mut guard = None;
        if let (Some(key), Some(given)) = (&key, &command.idempotency) {
            let ttl_ms = i64::try_from(IDEMPOTENCY_TTL.as_millis()).unwrap_or(i64::MAX / 4);
            let (db, user_id, key, hash) = (
                self.db.clone(),
                key.user_id,
                key.key.to_owned(),
                given.request_hash.clone(),
            );
            let stale_after_ms = self.stale_after_ms;
            let claiming = tokio::spawn(async move {
                let key = idempotency::Key { user_id, key: &key };
                let claim =
                    idempotency::claim(&db, &key, &hash, now, ttl_ms, stale_after_ms).await?;
                let guard = matches!(claim, Claim::Claimed).then(|| ReleaseOnDrop::new(&db, key));
                Ok::<_, sqlx::Error>((claim, guard))
            });
            let (claim, claimed) = claiming
                .await
                .context("idempotency claim task")?
                .context("database")?;
            match claim {
                Claim::Claimed => guard = claimed,
                Claim::Replay { status, body } => return Ok(Placement::Replayed { status, body }),
                Claim::InFlight => return Ok(Placement::InFlight),
                Claim::Mismatch => return Ok(Placement::KeyReused),
            }
        }
        // Should this future be dropped the order transaction rolls back, and the guard
        // frees the key: its delete only touches a row still in flight, never a completed
        // one. A server-side error below returns early and frees it the same way.
        let placed = store::orders::place(
            &self.db,
            Uuid::new_v4(),
            command.customer,
            &command.order,
            now,
            key.as_ref(),
            move |order| answers.placed(order),
        )
        .await
        .context("database")?;
        let refusal = match placed {
            Placed::Placed(order) => {
                disarm(&mut guard);
                return Ok(Placement::Placed(order));
            }
            Placed::NotPriced(e) => Refusal::NotPriced(e),
            Placed::OutOfStock => Refusal::OutOfStock,
        };
        if let Some(key) = &key {
            let (status, body) = answers.refused(&refusal);
            idempotency::complete(self.db.pool(), key, status, &body)
                .await
                .context("database")?;
            disarm(&mut guard);
        }
        Ok(Placement::Refused(refusal))
    }

    /// One page of the orders `viewer` may see, newest first: their own, or every order
    /// for an admin.
    pub async fn list(&self, viewer: &User, paging: PageRequest) -> anyhow::Result<PageOf<Order>> {
        let owner = (viewer.role != Role::Admin).then_some(viewer.id);
        let page = store::orders::list(&self.db, owner, paging)
            .await
            .context("database")?;
        Ok(PageOf::new(paging, page))
    }

    /// The order `id` if `viewer` may see it; another user's order is the same `None` as
    /// an unknown id, and the probe is recorded.
    pub async fn get(
        &self,
        viewer: &User,
        id: Uuid,
        ctx: &EventContext,
    ) -> anyhow::Result<Option<Order>> {
        let Some(order) = store::orders::get(&self.db, id).await.context("database")? else {
            return Ok(None);
        };
        if order.user_id == viewer.id || viewer.role == Role::Admin {
            return Ok(Some(order));
        }
        self.events
            .record(
                ctx,
                EventKind::Forbidden,
                Some(viewer.id),
                json!({"resource": "order", "order_id": id}),
            )
            .await;
        Ok(None)
    }

    /// Cancel the order `id` at `now` and give its stock back, exactly once however many
    /// cancels race; cancelling a cancelled order changes nothing. The order as it is
    /// after, or `None` as for [`Orders::get`].
    pub async fn cancel(
        &self,
        viewer: &User,
        id: Uuid,
        ctx: &EventContext,
        now: i64,
    ) -> anyhow::Result<Option<Order>> {
        let Some(order) = self.get(viewer, id, ctx).await? else {
            return Ok(None);
        };
        store::orders::cancel(&self.db, &order, now)
            .await
            .context("database")?;
        store::orders::get(&self.db, id).await.context("database")
    }
}

/// Frees a claimed idempotency key unless disarmed (see [`Orders::place`]).
struct ReleaseOnDrop {
    db: Db,
    user_id: Uuid,
    key: Option<String>,
}

impl ReleaseOnDrop {
    fn new(db: &Db, key: idempotency::Key<'_>) -> Self {
        Self {
            db: db.clone(),
            user_id: key.user_id,
            key: Some(key.key.to_owned()),
        }
    }

    fn disarm(&mut self) {
        self.key = None;
    }
}

/// Keep the key: its answer is stored.
fn disarm(guard: &mut Option<ReleaseOnDrop>) {
    if let Some(guard) = guard {
        guard.disarm();
    }
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        // No runtime (shutting down): the stale limit frees the key later.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (db, user_id) = (self.db.clone(), self.user_id);
        runtime.spawn(async move {
            let key = idempotency::Key { user_id, key: &key };
            if let Err(e) = idempotency::release(&db, &key).await {
                tracing::error!(error = %e, "idempotency key not released");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        commerce::testing::{self, Fixture},
        domain::order::{OrderFields, OrderStatus},
    };

    /// Answers as plain text, so a replay can be compared byte for byte.
    struct Text;

    impl Answers for Text {
        fn placed(&self, order: &Order) -> String {
            format!("placed {} {}", order.id, order.total_cents)
        }
        fn refused(&self, refusal: &Refusal) -> (u16, String) {
            (409, format!("{refusal:?}"))
        }
    }

    const NOW: i64 = 1_800_000_000_000;

    fn order_of(lines: &[(Uuid, i64)]) -> PlaceOrder {
        PlaceOrder::parse(OrderFields {
            items: lines.iter().map(|(id, q)| (id.to_string(), *q)).collect(),
            street: "1 Main Street".into(),
            city: "Berlin".into(),
            postal_code: "10115".into(),
            country: "DE".into(),
            coupon_code: None,
        })
        .unwrap()
    }

    fn command(customer: &User, lines: &[(Uuid, i64)], key: Option<&str>) -> PlaceOrderCommand {
        PlaceOrderCommand {
            customer: customer.id,
            order: order_of(lines),
            idempotency: key.map(|k| Idempotency {
                key: IdempotencyKey::parse(k.as_bytes()).unwrap(),
                request_hash: format!("hash of {lines:?}"),
            }),
        }
    }

    fn service(f: &Fixture) -> Orders {
        Orders::new(f.db.clone(), f.events.clone(), Duration::from_secs(30))
    }

    #[tokio::test]
    async fn an_order_is_priced_from_the_catalog_and_takes_its_stock() {
        let f = testing::fixture().await;
        let alice = f.user(Role::User).await;
        let tea = f.product(250, "EUR", 10).await;
        let placed = service(&f)
            .place(command(&alice, &[(tea.id, 3)], None), &Text, NOW)
            .await
            .unwrap();
        let Placement::Placed(order) = placed else {
            panic!("{placed:?}")
        };
        assert_eq!((order.total_cents, order.created_at), (750, NOW));
        assert_eq!(order.status, OrderStatus::Placed);
        assert_eq!(f.stock(tea.id).await, 7);
    }

    #[tokio::test]
    async fn short_stock_is_refused_and_takes_nothing() {
        let f = testing::fixture().await;
        let alice = f.user(Role::User).await;
        let plenty = f.product(100, "EUR", 10).await;
        let scarce = f.product(100, "EUR", 1).await;
        let placed = service(&f)
            .place(
                command(&alice, &[(plenty.id, 4), (scarce.id, 2)], None),
                &Text,
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(placed, Placement::Refused(Refusal::OutOfStock));
        assert_eq!(
            (f.stock(plenty.id).await, f.stock(scarce.id).await),
            (10, 1)
        );
    }

    #[tokio::test]
    async fn a_key_replays_its_first_answer_and_refuses_another_request() {
        let f = testing::fixture().await;
        let orders = service(&f);
        let alice = f.user(Role::User).await;
        let tea = f.product(100, "EUR", 10).await;
        let first = orders
            .place(command(&alice, &[(tea.id, 1)], Some("k")), &Text, NOW)
            .await
            .unwrap();
        let Placement::Placed(order) = first else {
            panic!("{first:?}")
        };
        let again = orders
            .place(command(&alice, &[(tea.id, 1)], Some("k")), &Text, NOW + 1)
            .await
            .unwrap();
        assert_eq!(
            again,
            Placement::Replayed {
                status: PLACED_STATUS,
                body: Text.placed(&order)
            }
        );
        let other = orders
            .place(command(&alice, &[(tea.id, 2)], Some("k")), &Text, NOW + 2)
            .await
            .unwrap();
        assert_eq!(other, Placement::KeyReused);
        assert_eq!(f.stock(tea.id).await, 9, "one order only");
    }

    #[tokio::test]
    async fn a_stored_refusal_is_replayed_until_the_key_expires() {
        let f = testing::fixture().await;
        let orders = service(&f);
        let alice = f.user(Role::User).await;
        let tea = f.product(100, "EUR", 1).await;
        let short = command(&alice, &[(tea.id, 2)], Some("retry"));
        let first = orders.place(short.clone(), &Text, NOW).await.unwrap();
        assert_eq!(first, Placement::Refused(Refusal::OutOfStock));
        let (status, body) = Text.refused(&Refusal::OutOfStock);
        let replayed = orders.place(short.clone(), &Text, NOW + 1).await.unwrap();
        assert_eq!(replayed, Placement::Replayed { status, body });
        f.set_stock(tea.id, 5).await;
        let ttl = i64::try_from(IDEMPOTENCY_TTL.as_millis()).unwrap();
        let later = orders.place(short, &Text, NOW + ttl).await.unwrap();
        assert!(matches!(later, Placement::Placed(_)), "{later:?}");
    }

    #[tokio::test]
    async fn a_key_in_flight_is_refused_until_it_goes_stale() {
        let f = testing::fixture().await;
        let orders = service(&f);
        let alice = f.user(Role::User).await;
        let tea = f.product(100, "EUR", 10).await;
        let cmd = command(&alice, &[(tea.id, 1)], Some("slow"));
        let given = cmd.idempotency.clone().unwrap();
        let key = idempotency::Key {
            user_id: alice.id,
            key: given.key.as_str(),
        };
        let claim = idempotency::claim(&f.db, &key, &given.request_hash, NOW, 1_000_000, 60_000);
        assert_eq!(claim.await.unwrap(), Claim::Claimed);
        let busy = orders.place(cmd.clone(), &Text, NOW + 1).await.unwrap();
        assert_eq!(busy, Placement::InFlight);
        assert_eq!(f.stock(tea.id).await, 10);
        // Twice the 30 s request timeout later the claim is a dead request's: taken over.
        let taken = orders.place(cmd, &Text, NOW + 60_000).await.unwrap();
        assert!(matches!(taken, Placement::Placed(_)), "{taken:?}");
    }

    #[tokio::test]
    async fn a_dropped_placement_frees_its_key() {
        let f = testing::fixture().await;
        let alice = f.user(Role::User).await;
        let guard = ReleaseOnDrop::new(
            &f.db,
            idempotency::Key {
                user_id: alice.id,
                key: "gone",
            },
        );
        let key = idempotency::Key {
            user_id: alice.id,
            key: "gone",
        };
        let claim = idempotency::claim(&f.db, &key, "h", NOW, 1_000_000, 60_000);
        assert_eq!(claim.await.unwrap(), Claim::Claimed);
        drop(guard);
        // The release runs on the runtime; poll (bounded) until the key claims again.
        crate::testing::eventually("the key was not released", || async {
            let again = idempotency::claim(&f.db, &key, "h", NOW, 1_000_000, 60_000);
            (again.await.unwrap() == Claim::Claimed).then_some(())
        })
        .await;
    }

    #[tokio::test]
    async fn a_placement_abandoned_while_waiting_to_write_frees_its_key_and_takes_nothing() {
        let f = testing::fixture().await;
        let orders = service(&f);
        let alice = f.user(Role::User).await;
        let tea = f.product(100, "EUR", 10).await;
        let cmd = command(&alice, &[(tea.id, 1)], Some("abandoned"));
        let given = cmd.idempotency.clone().unwrap();
        let key = idempotency::Key {
            user_id: alice.id,
            key: given.key.as_str(),
        };
        // Hold the writer turn, so the placement claims its key and then waits to write.
        let turn = f.db.writer_turn().await;
        let task = tokio::spawn({
            let (orders, cmd) = (orders.clone(), cmd.clone());
            async move { orders.place(cmd, &Text, NOW).await }
        });
        // Read the claim without taking it (a probing claim would take a free key).
        let pending = || async {
            let row: (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM idempotency_keys \
                 WHERE user_id = $1 AND idempotency_key = $2 AND status IS NULL",
            )
            .bind(alice.id.to_string())
            .bind(given.key.as_str())
            .fetch_one(f.db.pool())
            .await
            .unwrap();
            row.0
        };
        crate::testing::eventually("the placement never claimed its key", || async {
            (pending().await == 1).then_some(())
        })
        .await;
        task.abort(); // the client went away
        assert!(task.await.unwrap_err().is_cancelled());
        drop(turn);
        crate::testing::eventually("the abandoned claim was not released", || async {
            (pending().await == 0).then_some(())
        })
        .await;
        let again = idempotency::claim(&f.db, &key, &given.request_hash, NOW, 1_000_000, 60_000);
        assert_eq!(again.await.unwrap(), Claim::Claimed);
        assert_eq!(f.stock(tea.id).await, 10);
    }

    #[tokio::test]
    async fn another_users_order_is_hidden_and_the_probe_recorded_but_an_admin_sees_it() {
        let f = testing::fixture().await;
        let orders = service(&f);
        let (alice, bob) = (f.user(Role::User).await, f.user(Role::User).await);
        let admin = f.user(Role::Admin).await;
        let tea = f.product(100, "EUR", 10).await;
        let Placement::Placed(order) = orders
            .place(command(&alice, &[(tea.id, 2)], None), &Text, NOW)
            .await
            .unwrap()
        else {
            panic!("not placed")
        };
        let ctx = EventContext::default();
        assert_eq!(orders.get(&bob, order.id, &ctx).await.unwrap(), None);
        assert_eq!(
            orders.cancel(&bob, order.id, &ctx, NOW).await.unwrap(),
            None
        );
        assert_eq!(orders.get(&bob, Uuid::new_v4(), &ctx).await.unwrap(), None);
        assert_eq!(f.stock(tea.id).await, 8, "bob's cancel changed nothing");
        assert_eq!(
            f.events_of("forbidden", bob.id).await,
            2,
            "random ids are not probes"
        );
        let bobs = orders.list(&bob, PageRequest::default()).await.unwrap();
        assert_eq!((bobs.items.len(), bobs.total), (0, 0));
        let all = orders.list(&admin, PageRequest::default()).await.unwrap();
        assert_eq!(all.total, 1);
        let seen = orders.get(&admin, order.id, &ctx).await.unwrap();
        assert_eq!(seen.map(|o| o.id), Some(order.id));
    }

    #[tokio::test]
    async fn a_cancel_gives_the_stock_back_once() {
        let f = testing::fixture().await;
        let orders = service(&f);
        let alice = f.user(Role::User).await;
        let tea = f.product(100, "EUR", 10).await;
        let Placement::Placed(order) = orders
            .place(
                command(&alice, &[(tea.id, 3), (tea.id, 1)], None),
                &Text,
                NOW,
            )
            .await
            .unwrap()
        else {
            panic!("not placed")
        };
        let ctx = EventContext::default();
        for _ in 0..2 {
            let cancelled = orders
                .cancel(&alice, order.id, &ctx, NOW + 5)
                .await
                .unwrap();
            assert_eq!(cancelled.map(|o| o.status), Some(OrderStatus::Cancelled));
        }
        assert_eq!(f.stock(tea.id).await, 10);
    }

    #[tokio::test]
    async fn a_list_is_paged_newest_first_with_the_true_total() {
        let f = testing::fixture().await;
        let orders = service(&f);
        let alice = f.user(Role::User).await;
        let tea = f.product(100, "EUR", 10).await;
        for i in 0..3 {
            let placed = orders
                .place(command(&alice, &[(tea.id, 1)], None), &Text, NOW + i)
                .await
                .unwrap();
            assert!(matches!(placed, Placement::Placed(_)));
        }
        let second = PageRequest::parse([("limit", "2"), ("page", "2")]).unwrap();
        let page = orders.list(&alice, second).await.unwrap();
        assert_eq!((page.items.len(), page.total), (1, 3));
        assert_eq!(page.items[0].created_at, NOW, "the oldest is last");
        let past = PageRequest::parse([("page", "9")]).unwrap();
        let page = orders.list(&alice, past).await.unwrap();
        assert_eq!((page.items.len(), page.total), (0, 3));
    }
}
