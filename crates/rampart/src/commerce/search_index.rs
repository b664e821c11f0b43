//! An exact in-process index of the catalog's search text, so that a search costs what its
//! matches cost, not what the catalog costs.
//!
//! Every product's search text (its folded name and description, see
//! [`store::products::search_text`]) is cut into every gram of 1, 2 and 3 bytes; each gram
//! keeps the sorted list of the products containing it (their *slots*: positions in
//! `created_at, id` order, so walking a list backwards is the API's newest-first order).
//!
//! - A query of 1–3 bytes (once folded) is answered by its gram's list alone: exact, no
//!   text is read, the total is the list's length.
//! - A longer query takes the shortest list among its trigrams and checks each of those
//!   candidates' text for the whole query (a real substring test, with one searcher built
//!   per query), so its cost follows the candidates, which contain every match.
//!
//! Each product also keeps its JSON as the API shows it, cut around the two fields that
//! change without a catalog write (`stock` and `updated_at`, see [`Entry::write_json`]), so
//! a page is written straight into the response buffer instead of being cloned, converted
//! and serialized product by product. Those two fields are kept current by
//! [`Index::restock`] from the rows whose stock version moved (migration 0008), so a page
//! needs no read of its products' rows.
//!
//! ```
//! use rampart::commerce::search_index::Index;
//! use rampart::domain::product::Product;
//! use rampart::store::products::{IndexRow, search_text};
//! let row = |n: u8, name: &str| IndexRow {
//!     product: Product {
//!         id: uuid::Uuid::from_bytes([n; 16]),
//!         name: name.into(),
//!         description: String::new(),
//!         price_cents: 100,
//!         currency: "EUR".into(),
//!         stock: 1,
//!         created_at: i64::from(n),
//!         updated_at: i64::from(n),
//!     },
//!     search_text: search_text(name, ""),
//! };
//! let index = Index::build(1, vec![row(1, "Green Tea"), row(2, "Black tea"), row(3, "Coffee")]);
//! let hits = index.search(Some("TEA"), None, None, 0, 20);
//! assert_eq!(hits.total, 2);
//! let names: Vec<String> = hits.products().into_iter().map(|p| p.name).collect();
//! assert_eq!(names, ["Black tea", "Green Tea"]);
//! ```
//!
//! Memory: per product, the product itself (its name and description), its search text,
//! its JSON (the name and description again, escaped, and ~150 bytes of fields), 4 bytes
//! per distinct gram of that text (at most 3 per byte) and about 150 bytes of bookkeeping;
//! see [`Index::heap_bytes`].
//!
//! [`store::products::search_text`]: crate::store::products::search_text

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
    io::Write as _,
    sync::{Arc, PoisonError, RwLock},
};

use memchr::memmem::Finder;
use serde::Serialize;
use uuid::Uuid;

use crate::{
    domain::{product::Product, rfc3339},
    store::products::{CatalogState, IndexRow, Versions, fold},
};

/// A multiplicative hash for the `u32` gram keys: grams are not chosen by clients (only
/// looked up), so a keyed hash buys nothing and costs a third of the build.
#[derive(Default)]
pub struct GramHasher(u64);

impl Hasher for GramHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }

    fn finish(&self) -> u64 {
        let h = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^ (h >> 29)
    }
}

type Grams = HashMap<u32, Vec<u32>, BuildHasherDefault<GramHasher>>;

/// One indexed product: the product as its last versioned write left it, its search text
/// and its JSON.
#[derive(Debug, Clone)]
pub struct Entry {
    product: Product,
    text: Box<str>,
    /// `{"id":…,"name":…,"description":…,"price_cents":…,"currency":…,"stock":`
    json_head: Box<str>,
    /// `,"created_at":"…","updated_at":`
    json_created: Box<str>,
    /// `"…"}`: the product's own `updated_at` and the closing brace.
    json_updated: Box<str>,
}

/// The fields of the API's product body (`http::products::ProductBody`, whose field order
/// this keeps) that only a versioned write changes.
#[derive(Serialize)]
struct Head<'a> {
    id: Uuid,
    name: &'a str,
    description: &'a str,
    price_cents: i64,
    currency: &'a str,
}

/// `value` as JSON (serde_json's escaping, the same as the API's serializer).
fn json<T: Serialize + ?Sized>(value: &T) -> String {
    // Serializing strings, numbers and a UUID into memory cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// `"<updated_at as RFC 3339>"}`.
fn json_updated(updated_at: i64) -> String {
    let mut out = json(&rfc3339(updated_at));
    out.push('}');
    out
}

impl Entry {
    fn new(row: IndexRow) -> Self {
        let p = &row.product;
        let mut head = json(&Head {
            id: p.id,
            name: &p.name,
            description: &p.description,
            price_cents: p.price_cents,
            currency: &p.currency,
        });
        head.pop();
        head.push_str(",\"stock\":");
        let created = format!(
            ",\"created_at\":{},\"updated_at\":",
            json(&rfc3339(p.created_at))
        );
        let updated = json_updated(p.updated_at);
        Self {
            json_head: head.into_boxed_str(),
            json_created: created.into_boxed_str(),
            json_updated: updated.into_boxed_str(),
            product: row.product,
            text: row.search_text.into_boxed_str(),
        }
    }

    /// The product (its `stock` and `updated_at` as of the index's stock version).
    pub fn product(&self) -> &Product {
        &self.product
    }

    /// This entry with `stock` and `updated_at` in place of its own.
    fn restocked(&self, stock: i64, updated_at: i64) -> Self {
        let mut entry = self.clone();
        entry.product.stock = stock;
        if updated_at != entry.product.updated_at {
            entry.product.updated_at = updated_at;
            entry.json_updated = json_updated(updated_at).into_boxed_str();
        }
        entry
    }

    /// Append the product's JSON body to `out`: the very bytes serde_json writes for
    /// `http::products::ProductBody`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.json_head.as_bytes());
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{}", self.product.stock);
        out.extend_from_slice(self.json_created.as_bytes());
        out.extend_from_slice(self.json_updated.as_bytes());
    }

    fn json_bytes(&self) -> usize {
        self.json_head.len() + self.json_created.len() + self.json_updated.len()
    }

    fn key(&self) -> (i64, Uuid) {
        (self.product.created_at, self.product.id)
    }

    fn id(&self) -> Uuid {
        self.product.id
    }

    fn price(&self) -> i64 {
        self.product.price_cents
    }

    fn into_row(self) -> IndexRow {
        IndexRow {
            product: self.product,
            search_text: self.text.into_string(),
        }
    }
}

/// One page of matches: the entries on the page, newest first, and how many match in all.
#[derive(Debug, Clone, Default)]
pub struct Hits {
    /// The entries of the page (shared with the index: no product is copied).
    pub entries: Vec<Arc<Entry>>,
    /// Every match, on every page.
    pub total: usize,
}

impl Hits {
    /// The ids of the page's products.
    pub fn ids(&self) -> Vec<Uuid> {
        self.entries.iter().map(|e| e.product.id).collect()
    }

    /// Copies of the page's products.
    pub fn products(&self) -> Vec<Product> {
        self.entries.iter().map(|e| e.product.clone()).collect()
    }
}

/// What [`Index::restock`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restock {
    /// The index is at the state's catalog version and at least its stock version.
    Current,
    /// The index is at another catalog version (or the state's changes start past the
    /// index's stock version): read again, or rebuild.
    Stale,
    /// A changed product is not in the index at the same catalog version: rebuild.
    Unknown,
}

/// A change to apply to an [`Index`].
#[derive(Debug, Clone)]
pub enum Change {
    /// A product was created, or its indexed fields changed.
    Upsert(IndexRow),
    /// A product was deleted.
    Remove(Uuid),
}

/// The key of a gram of 1–3 bytes: its length in the top byte, the bytes below.
fn gram_key(bytes: &[u8]) -> u32 {
    let mut key = 0u32;
    for b in bytes {
        key = (key << 8) | u32::from(*b);
    }
    let len = match bytes.len() {
        1 => 1u32,
        2 => 2,
        _ => 3,
    };
    key | (len << 24)
}

/// Bytes no search text can contain (`q` has no control characters): grams holding one
/// are never asked for, so they are not stored. The newline between name and description
/// is one of them, so no gram spans both fields.
fn unsearchable(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// The distinct gram keys of `text`, sorted.
fn grams_of(text: &[u8]) -> Vec<u32> {
    let mut keys = Vec::with_capacity(text.len() * 3);
    for start in 0..text.len() {
        for len in 1..=3 {
            let Some(window) = text.get(start..start + len) else {
                break;
            };
            if window.last().is_some_and(|b| unsearchable(*b)) {
                break;
            }
            keys.push(gram_key(window));
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The catalog's search index at one catalog version and stock version (see the module
/// docs).
#[derive(Debug, Default)]
pub struct Index {
    version: i64,
    stock_version: i64,
    /// In `(created_at, id)` order; `None` where a product was deleted.
    slots: Vec<Option<Arc<Entry>>>,
    by_id: HashMap<Uuid, u32>,
    grams: Grams,
    live: usize,
}

impl Index {
    /// The index of `rows`, as of catalog `version` and stock version 0.
    pub fn build(version: i64, rows: Vec<IndexRow>) -> Self {
        Self::build_at(Versions { version, stock: 0 }, rows)
    }

    /// The index of `rows`, as of `versions` (the snapshot they were read in).
    pub fn build_at(versions: Versions, rows: Vec<IndexRow>) -> Self {
        let mut entries: Vec<Entry> = rows.into_iter().map(Entry::new).collect();
        entries.sort_unstable_by_key(Entry::key);
        let mut index = Self {
            version: versions.version,
            stock_version: versions.stock,
            slots: Vec::with_capacity(entries.len()),
            by_id: HashMap::with_capacity(entries.len()),
            grams: Grams::default(),
            live: 0,
        };
        for entry in entries {
            index.push(entry);
        }
        index
    }

    /// The catalog version this index reflects.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// Both versions this index reflects.
    pub fn versions(&self) -> Versions {
        Versions {
            version: self.version,
            stock: self.stock_version,
        }
    }

    /// Whether this index is at least as new as `state`: the same catalog version and a
    /// stock version not below its.
    pub fn is_current(&self, state: &CatalogState) -> bool {
        self.version == state.versions.version && self.stock_version >= state.versions.stock
    }

    /// Bring the stock and `updated_at` of the products in `state` up to it: only when
    /// `state` is at this index's catalog version and its changes start at or below this
    /// index's stock version (so nothing between is missed). What then holds:
    /// [`Index::is_current`]. A changed product the index does not hold at the same
    /// version leaves it as it was ([`Restock::Unknown`]: only a rebuild mends it).
    pub fn restock(&mut self, state: &CatalogState) -> Restock {
        if self.is_current(state) {
            return Restock::Current;
        }
        if self.version != state.versions.version || state.since > self.stock_version {
            return Restock::Stale;
        }
        let mut slots = Vec::with_capacity(state.changed.len());
        for change in &state.changed {
            match self.by_id.get(&change.id) {
                Some(&slot) if self.entry(slot).is_some() => slots.push(slot),
                _ => return Restock::Unknown,
            }
        }
        for (slot, change) in slots.into_iter().zip(&state.changed) {
            if let Some(Some(place)) = self.slots.get_mut(to_usize(slot))
                && (place.product.stock, place.product.updated_at)
                    != (change.stock, change.updated_at)
            {
                *place = Arc::new(place.restocked(change.stock, change.updated_at));
            }
        }
        self.stock_version = state.versions.stock;
        Restock::Current
    }

    /// How many products it holds.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether it holds no product.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The heap memory it holds, in bytes (capacities, so an upper estimate).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let texts: usize = self
            .slots
            .iter()
            .flatten()
            .map(|e| {
                size_of::<Entry>()
                    + e.text.len()
                    + e.json_bytes()
                    + e.product.name.capacity()
                    + e.product.description.capacity()
                    + e.product.currency.capacity()
            })
            .sum();
        let postings: usize = self.grams.values().map(|p| p.capacity() * 4).sum();
        texts
            + postings
            + self.slots.capacity() * size_of::<Option<Arc<Entry>>>()
            + self.grams.capacity() * (size_of::<(u32, Vec<u32>)>() + 1)
            + self.by_id.capacity() * (size_of::<(Uuid, u32)>() + 1)
    }

    /// Append `entry`, whose key is above every other.
    fn push(&mut self, entry: Entry) {
        let Ok(slot) = u32::try_from(self.slots.len()) else {
            return;
        };
        for key in grams_of(entry.text.as_bytes()) {
            self.grams.entry(key).or_default().push(slot);
        }
        self.by_id.insert(entry.id(), slot);
        self.slots.push(Some(Arc::new(entry)));
        self.live += 1;
    }

    fn unlist(&mut self, slot: u32, text: &str) {
        for key in grams_of(text.as_bytes()) {
            if let Some(posting) = self.grams.get_mut(&key) {
                if let Ok(at) = posting.binary_search(&slot) {
                    posting.remove(at);
                }
                if posting.is_empty() {
                    self.grams.remove(&key);
                }
            }
        }
    }

    fn list(&mut self, slot: u32, text: &str) {
        for key in grams_of(text.as_bytes()) {
            let posting = self.grams.entry(key).or_default();
            if let Err(at) = posting.binary_search(&slot) {
                posting.insert(at, slot);
            }
        }
    }

    /// Every entry, for a rebuild (at the same versions).
    fn into_rows(self) -> Vec<IndexRow> {
        self.slots
            .into_iter()
            .flatten()
            .map(|e| Arc::try_unwrap(e).unwrap_or_else(|shared| (*shared).clone()))
            .map(Entry::into_row)
            .collect()
    }

    /// Apply the change that moved the catalog to `version`. Only the change right after
    /// this index's version applies (`false` otherwise: another write came between, and
    /// the index stays at its version until it is rebuilt).
    pub fn apply(&mut self, version: i64, change: Change) -> bool {
        if version != self.version + 1 {
            return false;
        }
        match change {
            Change::Upsert(row) => self.upsert(row),
            Change::Remove(id) => self.remove(id),
        }
        self.version = version;
        true
    }

    fn upsert(&mut self, row: IndexRow) {
        let entry = Entry::new(row);
        if let Some(&slot) = self.by_id.get(&entry.id()) {
            let same_place = self
                .entry(slot)
                .is_some_and(|old| old.product.created_at == entry.product.created_at);
            if same_place {
                let old = self.slots.get_mut(to_usize(slot)).and_then(Option::take);
                if let Some(old) = old
                    && old.text != entry.text
                {
                    self.unlist(slot, &old.text);
                    self.list(slot, &entry.text);
                }
                if let Some(place) = self.slots.get_mut(to_usize(slot)) {
                    *place = Some(Arc::new(entry));
                }
                return;
            }
            // A new creation time moves it.
            self.remove(entry.id());
        }
        let newest = self.slots.iter().rev().flatten().next().map(|e| e.key());
        if newest.is_none_or(|k| k < entry.key()) {
            self.push(entry);
        } else {
            // Rare (two products in one millisecond, or a clock step back): slots are
            // positions in key order, so insert by rebuilding.
            let versions = self.versions();
            let mut rows = std::mem::take(self).into_rows();
            rows.push(entry.into_row());
            *self = Self::build_at(versions, rows);
        }
    }

    fn remove(&mut self, id: Uuid) {
        let Some(slot) = self.by_id.remove(&id) else {
            return;
        };
        if let Some(old) = self.slots.get_mut(to_usize(slot)).and_then(Option::take) {
            self.unlist(slot, &old.text);
            self.live -= 1;
        }
        // Deleted slots stay until they outnumber the live ones.
        if self.slots.len() > 64 && self.slots.len() > 2 * self.live {
            let versions = self.versions();
            let rows = std::mem::take(self).into_rows();
            *self = Self::build_at(versions, rows);
        }
    }

    fn entry(&self, slot: u32) -> Option<&Arc<Entry>> {
        self.slots.get(to_usize(slot)).and_then(Option::as_ref)
    }

    /// The page `[offset, offset + limit)` of the products whose search text contains
    /// `query` (folded here; `None` matches all) and whose price is within the bounds,
    /// newest first, and their total.
    pub fn search(
        &self,
        query: Option<&str>,
        min_price: Option<i64>,
        max_price: Option<i64>,
        offset: usize,
        limit: usize,
    ) -> Hits {
        let folded = query.map(fold);
        let needle = folded.as_deref().filter(|q| !q.is_empty());
        let priced = min_price.is_some() || max_price.is_some();
        let price_ok = |e: &Entry| {
            min_price.is_none_or(|m| e.price() >= m) && max_price.is_none_or(|m| e.price() <= m)
        };
        let mut hits = Hits {
            entries: Vec::with_capacity(limit.min(128)),
            total: 0,
        };
        let mut take = |e: &Arc<Entry>| {
            if hits.total >= offset && hits.entries.len() < limit {
                hits.entries.push(Arc::clone(e));
            }
            hits.total += 1;
        };
        let Some(needle) = needle else {
            for e in self.slots.iter().rev().flatten().filter(|e| price_ok(e)) {
                take(e);
            }
            return hits;
        };
        let bytes = needle.as_bytes();
        if bytes.iter().any(|b| unsearchable(*b)) {
            // Not indexed (no `q` the API accepts gets here): read every text.
            for e in self.slots.iter().rev().flatten() {
                if price_ok(e) && e.text.contains(needle) {
                    take(e);
                }
            }
            return hits;
        }
        if bytes.len() <= 3 {
            let Some(posting) = self.grams.get(&gram_key(bytes)) else {
                return hits;
            };
            if !priced {
                return Hits {
                    entries: posting
                        .iter()
                        .rev()
                        .skip(offset)
                        .take(limit)
                        .filter_map(|s| self.entry(*s).map(Arc::clone))
                        .collect(),
                    total: posting.len(),
                };
            }
            for e in posting.iter().rev().filter_map(|s| self.entry(*s)) {
                if price_ok(e) {
                    take(e);
                }
            }
            return hits;
        }
        let mut shortest: Option<&Vec<u32>> = None;
        for window in bytes.windows(3) {
            let Some(posting) = self.grams.get(&gram_key(window)) else {
                return hits;
            };
            if shortest.is_none_or(|s| posting.len() < s.len()) {
                shortest = Some(posting);
            }
        }
        let finder = Finder::new(bytes);
        for e in shortest
            .into_iter()
            .flatten()
            .rev()
            .filter_map(|s| self.entry(*s))
        {
            if price_ok(e) && finder.find(e.text.as_bytes()).is_some() {
                take(e);
            }
        }
        hits
    }
}

/// The index shared by every request of one process: the current [`Index`] (none until
/// the first build) and the lock that lets one rebuild, or one of this process's catalog
/// writes with its change to the index, run at a time.
#[derive(Default)]
pub struct SearchIndex {
    current: RwLock<Option<Index>>,
    rebuild: tokio::sync::Mutex<()>,
    installs: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("SearchIndex")
            .field("version", &current.as_ref().map(Index::version))
            .field("products", &current.as_ref().map(Index::len))
            .finish()
    }
}

impl SearchIndex {
    /// The version of the current index; `None` before the first build.
    pub fn version(&self) -> Option<i64> {
        self.read(|index| index.version())
    }

    /// Run `f` on the current index; `None` before the first build.
    pub fn read<T>(&self, f: impl FnOnce(&Index) -> T) -> Option<T> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().map(f)
    }

    /// [`Index::restock`] the current index to `state`, taking the write lock only when
    /// there is something to change.
    pub fn restock(&self, state: &CatalogState) -> Restock {
        let current = self.read(|index| index.is_current(state));
        if current == Some(true) {
            return Restock::Current;
        }
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        current
            .as_mut()
            .map_or(Restock::Stale, |index| index.restock(state))
    }

    /// Apply the change that moved the catalog to `version` (see [`Index::apply`]).
    pub fn apply(&self, version: i64, change: Change) -> bool {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        current
            .as_mut()
            .is_some_and(|index| index.apply(version, change))
    }

    /// Install `index` unless the current one is newer.
    pub fn install(&self, index: Index) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let key = |v: Versions| (v.version, v.stock);
        if current
            .as_ref()
            .is_none_or(|c| key(c.versions()) <= key(index.versions()))
        {
            *current = Some(index);
        }
        self.installs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many indexes were built and offered to [`SearchIndex::install`] so far.
    pub fn installs(&self) -> u64 {
        self.installs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Wait for the turn to rebuild or to write (one at a time per process; a write takes
    /// it before the write's transaction and leaves it once the index has the change).
    pub async fn rebuild_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.rebuild.lock().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::products::search_text;

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
}
