use super::*;
use crate::{domain::rfc3339, store::products::search_text};

fn row(n: u8, created_at: i64, price_cents: i64, name: &str, description: &str) -> IndexRow {
    IndexRow {
        product: Product {
            id: Uuid::from_bytes([n; 16]),
            name: name.into(),
            description: description.into(),
            price_cents,
            currency: "EUR".into(),
            stock: 1,
            created_at,
            updated_at: created_at,
        },
        search_text: search_text(name, description),
    }
}

fn id(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}

fn state(version: i64, since: i64, stock: i64, changed: &[(u8, i64)]) -> CatalogState {
    CatalogState {
        versions: Versions { version, stock },
        since,
        changed: changed
            .iter()
            .map(|&(n, stock)| crate::store::products::Stock {
                id: id(n),
                stock,
                updated_at: 50,
            })
            .collect(),
    }
}

fn stock_of(index: &Index, n: u8) -> (i64, i64) {
    let entry = index.entry(index.by_id[&id(n)]).unwrap();
    (entry.product.stock, entry.product.updated_at)
}

#[test]
fn stock_changes_apply_at_the_same_version_without_a_gap_and_never_backwards() {
    let rows = vec![
        row(1, 10, 100, "Green tea", ""),
        row(2, 20, 100, "Black tea", ""),
    ];
    let mut index = Index::build_at(
        Versions {
            version: 5,
            stock: 3,
        },
        rows,
    );
    assert_eq!(index.restock(&state(5, 0, 3, &[])), Restock::Current);
    // Another catalog version: nothing applies.
    assert_eq!(index.restock(&state(6, 3, 4, &[(1, 9)])), Restock::Stale);
    assert_eq!(index.restock(&state(4, 3, 4, &[(1, 9)])), Restock::Stale);
    // Changes that start past the index's stock version leave a gap.
    assert_eq!(index.restock(&state(5, 4, 5, &[(1, 9)])), Restock::Stale);
    assert_eq!(stock_of(&index, 1), (1, 10));
    // A product the index does not hold at the same version: only a rebuild mends it.
    assert_eq!(
        index.restock(&state(5, 3, 4, &[(1, 9), (7, 2)])),
        Restock::Unknown
    );
    assert_eq!(stock_of(&index, 1), (1, 10), "nothing applied");
    assert_eq!(index.versions().stock, 3);

    assert_eq!(index.restock(&state(5, 2, 4, &[(1, 9)])), Restock::Current);
    assert_eq!(
        (stock_of(&index, 1), stock_of(&index, 2)),
        ((9, 50), (1, 20))
    );
    assert_eq!(
        index.versions(),
        Versions {
            version: 5,
            stock: 4
        }
    );
    // An older read (a lower stock version) changes nothing back.
    assert_eq!(index.restock(&state(5, 0, 3, &[(1, 1)])), Restock::Current);
    assert_eq!(stock_of(&index, 1), (9, 50));
    // The page's JSON carries the new stock and `updated_at`.
    let hits = index.search(Some("green"), None, None, 0, 20);
    let mut json = Vec::new();
    hits.entries[0].write_json(&mut json);
    let text = String::from_utf8(json).unwrap();
    assert!(text.contains("\"stock\":9,"), "{text}");
    assert!(
        text.contains(&format!("\"updated_at\":\"{}\"", rfc3339(50))),
        "{text}"
    );
    // Compaction and the version's own changes keep the stock version.
    assert!(index.apply(6, Change::Remove(id(2))));
    assert_eq!(
        index.versions(),
        Versions {
            version: 6,
            stock: 4
        }
    );
}

/// The reference: read every text.
fn scan(rows: &[IndexRow], q: &str) -> Vec<Uuid> {
    let needle = fold(q);
    let mut matching: Vec<&IndexRow> = rows
        .iter()
        .filter(|r| r.search_text.contains(&needle))
        .collect();
    matching.sort_by_key(|r| std::cmp::Reverse((r.product.created_at, r.product.id)));
    matching.iter().map(|r| r.product.id).collect()
}

#[test]
fn short_and_long_queries_find_exactly_the_products_containing_them() {
    let rows = vec![
        row(1, 10, 100, "Green tea", "<p>from Japan</p>"),
        row(2, 20, 200, "Black TEA", "strong"),
        row(3, 30, 300, "Coffee", "not tea at all"),
        row(4, 30, 400, "Café crème", "ÉCLAIR"),
    ];
    let index = Index::build(1, rows.clone());
    for q in [
        "t", "te", "tea", "TEA ", "a t", "coffee", "é", "CAFÉ", "éclair", "x", "zzzz",
    ] {
        let hits = index.search(Some(q), None, None, 0, 100);
        assert_eq!(hits.ids(), scan(&rows, q), "{q:?}");
        assert_eq!(hits.total, hits.entries.len());
    }
}

#[test]
fn no_match_spans_the_name_and_the_description() {
    let index = Index::build(1, vec![row(1, 1, 1, "ab", "cd")]);
    assert_eq!(index.search(Some("bc"), None, None, 0, 10).total, 0);
    assert_eq!(index.search(Some("b c"), None, None, 0, 10).total, 0);
    assert_eq!(index.search(Some("abc"), None, None, 0, 10).total, 0);
    assert_eq!(index.search(Some("cd"), None, None, 0, 10).total, 1);
}

#[test]
fn pages_come_newest_first_with_the_true_total_past_the_end() {
    let rows: Vec<IndexRow> = (1..=9)
        .map(|n| row(n, i64::from(n % 3), i64::from(n) * 10, "prod", ""))
        .collect();
    let index = Index::build(1, rows.clone());
    let all = scan(&rows, "prod");
    for q in [Some("prod"), Some("pr"), None] {
        let page = index.search(q, None, None, 2, 3);
        assert_eq!((page.ids().as_slice(), page.total), (&all[2..5], 9));
        let past = index.search(q, None, None, 90, 3);
        assert_eq!((past.entries.len(), past.total), (0, 9));
    }
    let priced = index.search(Some("ro"), Some(30), Some(60), 0, 10);
    assert_eq!(priced.total, 4);
    assert!(
        priced
            .ids()
            .iter()
            .all(|i| (3..=6).contains(&i.as_bytes()[0]))
    );
}

#[test]
fn changes_apply_in_version_order_only() {
    let mut index = Index::build(5, vec![row(1, 10, 100, "Green tea", "")]);
    assert!(!index.apply(7, Change::Remove(id(1))), "a skipped version");
    assert_eq!(index.version(), 5);
    assert!(index.apply(6, Change::Upsert(row(2, 20, 100, "Mint tea", ""))));
    assert!(index.apply(7, Change::Upsert(row(1, 10, 100, "Green coffee", ""))));
    assert_eq!(index.search(Some("tea"), None, None, 0, 10).ids(), [id(2)]);
    assert_eq!(
        index.search(Some("coffee"), None, None, 0, 10).ids(),
        [id(1)]
    );
    // Older than the newest: inserted in order all the same.
    assert!(index.apply(8, Change::Upsert(row(3, 15, 100, "Old tea", ""))));
    assert_eq!(
        index.search(Some("tea"), None, None, 0, 10).ids(),
        [id(2), id(3)]
    );
    assert!(index.apply(9, Change::Remove(id(2))));
    assert_eq!(index.search(Some("tea"), None, None, 0, 10).ids(), [id(3)]);
    assert_eq!(index.search(Some("t"), None, None, 0, 10).total, 1);
    assert_eq!((index.version(), index.len()), (9, 2));
}

#[test]
fn many_deletions_compact_the_slots() {
    let mut index = Index::build(
        0,
        (0..200u8)
            .map(|n| row(n, i64::from(n), 1, "x", ""))
            .collect(),
    );
    for n in 0..150u8 {
        assert!(index.apply(i64::from(n) + 1, Change::Remove(id(n))));
    }
    assert_eq!(index.len(), 50);
    assert!(index.slots.len() <= 100, "{} slots", index.slots.len());
    let hits = index.search(Some("x"), None, None, 0, 100);
    assert_eq!(hits.total, 50);
    assert_eq!(hits.ids().first(), Some(&id(199)));
}

#[test]
fn memory_per_product_stays_within_the_documented_bound() {
    let description = "<p>A long description of a fine product, with many words.</p>".repeat(4);
    let rows: Vec<IndexRow> = (0..1000u32)
        .map(|n| {
            let mut r = row(0, i64::from(n), 100, &format!("Product {n}"), &description);
            r.product.id = Uuid::from_u128(u128::from(n));
            r
        })
        .collect();
    let text_bytes: usize = rows
        .iter()
        .map(|r| r.search_text.len() + r.product.name.len() + r.product.description.len())
        .sum();
    let index = Index::build(1, rows);
    // The texts, at most 3 grams of 4 bytes per byte of search text, the JSON (the
    // name and description again, ~150 bytes of other fields), ~300 bytes of
    // bookkeeping each.
    let bound = text_bytes * 8 + 1000 * 450;
    assert!(
        index.heap_bytes() <= bound,
        "{} > {bound}",
        index.heap_bytes()
    );
}
