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
    sync::{Arc, PoisonError, RwLock},
};

use memchr::memmem::Finder;
use uuid::Uuid;

use crate::{
    domain::product::Product,
    store::products::{CatalogState, IndexRow, Versions, fold},
};

mod entry;

pub use entry::Entry;

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
    versions: Versions,
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
            versions,
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
        self.versions.version
    }

    /// Both versions this index reflects.
    pub fn versions(&self) -> Versions {
        self.versions
    }

    /// Whether this index is at least as new as `state`: the same catalog version and a
    /// stock version not below its.
    pub fn is_current(&self, state: &CatalogState) -> bool {
        self.versions.version == state.versions.version && self.versions >= state.versions
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
        if self.versions.version != state.versions.version || state.since > self.versions.stock {
            return Restock::Stale;
        }
        // Every changed product found before any is changed.
        let slots: Option<Vec<u32>> = state
            .changed
            .iter()
            .map(|change| {
                let slot = *self.by_id.get(&change.id)?;
                self.entry(slot).is_some().then_some(slot)
            })
            .collect();
        let Some(slots) = slots else {
            return Restock::Unknown;
        };
        for (slot, change) in slots.into_iter().zip(&state.changed) {
            if let Some(Some(place)) = self.slots.get_mut(to_usize(slot))
                && (place.product.stock, place.product.updated_at)
                    != (change.stock, change.updated_at)
            {
                *place = Arc::new(place.restocked(change.stock, change.updated_at));
            }
        }
        self.versions.stock = state.versions.stock;
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
        if version != self.versions.version + 1 {
            return false;
        }
        match change {
            Change::Upsert(row) => self.upsert(row),
            Change::Remove(id) => self.remove(id),
        }
        self.versions.version = version;
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
        if current
            .as_ref()
            .is_none_or(|c| c.versions() <= index.versions())
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
mod tests;
