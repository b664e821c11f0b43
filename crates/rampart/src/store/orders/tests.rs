use super::*;
use crate::{
    commerce::testing::{self, Fixture},
    domain::{order::OrderFields, user::Role},
};

const NOW: i64 = 1_800_000_000_000;

/// The stage's backend (see [`testing::stage_fixture`]): the batch tests below run on
/// whichever backend the stage tests.
async fn fixture() -> Fixture {
    testing::stage_fixture().await
}

/// Run each statement of `statements` (one list per backend).
async fn run_all(f: &Fixture, sqlite: &[&'static str], postgres: &[&'static str]) {
    let statements = match f.db.backend() {
        Backend::Sqlite => sqlite,
        Backend::Postgres => postgres,
    };
    for sql in statements {
        sqlx::query(*sql).execute(f.db.pool()).await.unwrap();
    }
}

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

/// Queue every order of `orders` while the writer's lock is held, so the writer task
/// takes them all into one batch once it is free; their ids and outcomes, in order.
async fn one_batch(
    f: &Fixture,
    user: Uuid,
    orders: Vec<PlaceOrder>,
) -> Vec<(Uuid, Result<Placed, sqlx::Error>)> {
    let turn = f.db.writer_lock().lock_owned().await;
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
    let f = fixture().await;
    let alice = f.user(Role::User).await;
    let scarce = f.product(100, "EUR", 3).await;
    let plenty = f.product(250, "EUR", 100).await;
    let dollars = f.product(100, "USD", 50).await;
    let mut orders: Vec<PlaceOrder> = (0..8)
        .map(|_| order_of(&[(scarce.id, 1), (plenty.id, 1)], "Berlin"))
        .collect();
    // Refusals inside the batch: mixed currencies (in stock, refused by pricing), an
    // unknown product, and a short line beside a plentiful one.
    orders.push(order_of(&[(scarce.id, 1), (dollars.id, 1)], "Berlin"));
    orders.push(order_of(&[(Uuid::new_v4(), 1), (plenty.id, 1)], "Berlin"));
    orders.push(order_of(&[(plenty.id, 2), (scarce.id, 4)], "Berlin"));
    // Both in stock, refused by pricing: takes nothing.
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

/// Queue four good orders and one to `Nowhere` (which the injected failure refuses) in one
/// batch: every order fails, nothing is kept, and the writer goes on with the next batch.
async fn assert_the_batch_fails_whole(f: &Fixture, message: &str) {
    let alice = f.user(Role::User).await;
    let tea = f.product(100, "EUR", 10).await;
    let mut orders: Vec<PlaceOrder> = (0..4).map(|_| order_of(&[(tea.id, 1)], "Berlin")).collect();
    orders.push(order_of(&[(tea.id, 1)], "Nowhere"));
    let commits = f.db.order_queue().commits();
    for (_, outcome) in one_batch(f, alice.id, orders).await {
        let error = outcome.unwrap_err().to_string();
        assert!(error.contains(message), "{error}");
    }
    assert_eq!(f.db.order_queue().commits(), commits, "nothing committed");
    assert_eq!(orders_stored(f).await, 0);
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
async fn a_failed_batch_fails_every_order_in_it_and_keeps_nothing() {
    let f = fixture().await;
    // One order of the batch makes its INSERT fail.
    run_all(
        &f,
        &[
            "CREATE TRIGGER refuse_nowhere BEFORE INSERT ON orders WHEN NEW.city = 'Nowhere' \
           BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
        ],
        &[
            "CREATE FUNCTION refuse_nowhere() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.city = 'Nowhere' THEN RAISE EXCEPTION 'injected failure'; END IF; \
             RETURN NEW; END $$",
            "CREATE TRIGGER refuse_nowhere BEFORE INSERT ON orders FOR EACH ROW \
             EXECUTE FUNCTION refuse_nowhere()",
        ],
    )
    .await;
    assert_the_batch_fails_whole(&f, "injected failure").await;
}

#[tokio::test]
async fn a_batch_whose_commit_fails_acknowledges_none_of_its_orders() {
    let f = fixture().await;
    // Every statement of the batch succeeds; the order to `Nowhere` leaves a row behind
    // whose deferred foreign key is only checked by the COMMIT, which then fails.
    run_all(
        &f,
        &[
            "CREATE TABLE nowhere (id TEXT PRIMARY KEY)",
            "CREATE TABLE to_nowhere (id TEXT REFERENCES nowhere (id) \
             DEFERRABLE INITIALLY DEFERRED)",
            "CREATE TRIGGER refuse_nowhere AFTER INSERT ON orders WHEN NEW.city = 'Nowhere' \
             BEGIN INSERT INTO to_nowhere (id) VALUES (NEW.id); END",
        ],
        &[
            "CREATE TABLE nowhere (id TEXT PRIMARY KEY)",
            "CREATE TABLE to_nowhere (id TEXT REFERENCES nowhere (id) \
             DEFERRABLE INITIALLY DEFERRED)",
            "CREATE FUNCTION refuse_nowhere() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.city = 'Nowhere' THEN INSERT INTO to_nowhere (id) VALUES (NEW.id); \
             END IF; RETURN NEW; END $$",
            "CREATE TRIGGER refuse_nowhere AFTER INSERT ON orders FOR EACH ROW \
             EXECUTE FUNCTION refuse_nowhere()",
        ],
    )
    .await;
    let message = match f.db.backend() {
        Backend::Sqlite => "FOREIGN KEY constraint failed",
        Backend::Postgres => "to_nowhere",
    };
    assert_the_batch_fails_whole(&f, message).await;
}

#[tokio::test]
async fn an_idempotency_answer_is_stored_in_the_batch_with_its_order() {
    let f = fixture().await;
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

/// The stock version and the (product, stock) of the rows stamped after `since`, by id.
async fn stamped_since(f: &Fixture, since: i64) -> (i64, Vec<(Uuid, i64)>) {
    let state = crate::store::products::catalog_state(&f.db, since)
        .await
        .unwrap();
    let changed = state.changed.iter().map(|s| (s.id, s.stock)).collect();
    (state.versions.stock, changed)
}

fn by_id(mut rows: Vec<(Uuid, i64)>) -> Vec<(Uuid, i64)> {
    rows.sort();
    rows
}

/// Every write that changes stock moves the stock version once, in its own transaction,
/// and stamps exactly the products it changed: what lets every instance's search index
/// read only those (`store::products::catalog_state`).
#[tokio::test]
async fn a_batch_and_a_cancel_each_move_the_stock_version_once_and_stamp_their_products() {
    let f = fixture().await;
    let alice = f.user(Role::User).await;
    let tea = f.product(100, "EUR", 10).await;
    let cake = f.product(300, "EUR", 10).await;
    let untouched = f.product(500, "EUR", 10).await;
    let version = crate::store::products::catalog_state(&f.db, 0)
        .await
        .unwrap()
        .versions
        .version;
    assert_eq!(stamped_since(&f, 0).await, (0, vec![]));

    let outcomes = one_batch(
        &f,
        alice.id,
        vec![
            order_of(&[(tea.id, 1)], "Berlin"),
            order_of(&[(tea.id, 2), (cake.id, 1)], "Berlin"),
            // Refused: takes nothing, stamps nothing.
            order_of(&[(untouched.id, 11)], "Berlin"),
        ],
    )
    .await;
    assert_eq!(
        stamped_since(&f, 0).await,
        (1, by_id(vec![(tea.id, 7), (cake.id, 9)])),
        "one batch, one stock version, its two products"
    );
    let after = crate::store::products::catalog_state(&f.db, 0)
        .await
        .unwrap();
    assert_eq!(after.versions.version, version, "no catalog version moved");

    let Ok(Placed::Placed(second)) = &outcomes[1].1 else {
        panic!("the second order was not placed: {:?}", outcomes[1].1);
    };
    assert!(cancel(&f.db, second, NOW + 1).await.unwrap());
    assert_eq!(
        stamped_since(&f, 1).await,
        (2, by_id(vec![(tea.id, 9), (cake.id, 10)])),
        "only what the cancel gave back, after 1"
    );

    // A cancel that changes nothing (already cancelled) moves nothing.
    assert!(!cancel(&f.db, second, NOW + 2).await.unwrap());
    assert_eq!(stamped_since(&f, 2).await, (2, vec![]));
}
