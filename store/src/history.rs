//! Before-images: what rows looked like when an open read transaction began.
//!
//! A read transaction pins the store's commit version `v` as an *epoch*; read transactions that
//! begin at the same version share one. While any epoch is open, an apply that writes a row
//! first records the row's state before the write (the row, or "absent"), once per row, into a
//! *span* of the written table labelled with the newest open epoch. A reader at `v` looks a key
//! up in the spans labelled `v` or later, oldest first: the first image it finds is the row as
//! of `v`; with none, the row has not changed since and the current row is the answer. When an
//! epoch's last reader goes, its span moves into the span of the previous open epoch (whose
//! images, older, win) or is freed when there is none. With no epoch open, an apply pays one
//! atomic load.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use interstice_abi::Value;
use parking_lot::Mutex;

use crate::table::{Key, Row, Table};

/// The images one table recorded while one epoch was the newest open one.
pub(crate) struct Span {
    /// The epoch's version.
    pub label: u64,
    /// Primary key → the row before its first write since then (`None`: it did not exist).
    pub rows: BTreeMap<Key, Option<Row>>,
    /// Per secondary index: value → primary keys of the rows above holding it.
    pub indexes: Vec<BTreeMap<Value, BTreeSet<Value>>>,
}

impl Span {
    fn new(label: u64, indexes: usize) -> Self {
        Span {
            label,
            rows: BTreeMap::new(),
            indexes: vec![BTreeMap::new(); indexes],
        }
    }

    /// Stores the image of `pk` unless one is there already (the older one wins).
    fn insert(&mut self, table: &Table, pk: &Value, before: Option<&Row>) -> bool {
        let std::collections::btree_map::Entry::Vacant(slot) = self.rows.entry(Key(pk.clone()))
        else {
            return false;
        };
        slot.insert(before.cloned());
        if let Some(row) = before {
            for (ix, map) in table.indexes.iter().zip(&mut self.indexes) {
                map.entry(row[ix.column].clone())
                    .or_default()
                    .insert(pk.clone());
            }
        }
        true
    }
}

/// A table's before-images, spans in ascending label order. Every label is the version of an
/// open epoch.
#[derive(Default)]
pub(crate) struct Images {
    spans: Vec<Span>,
}

impl Images {
    /// The spans a reader at `version` consults, oldest first.
    pub fn from(&self, version: u64) -> &[Span] {
        let first = self.spans.partition_point(|s| s.label < version);
        &self.spans[first..]
    }

    /// The row with key `pk` as of `version`, when it changed since: `Some(None)` if it did not
    /// exist then. `None`: unchanged, the current row is the answer.
    pub fn lookup(&self, version: u64, pk: &Value) -> Option<&Option<Row>> {
        self.from(version)
            .iter()
            .find_map(|s| s.rows.get(Key::from_ref(pk)))
    }

    /// Every key with an image for `version` within bounds, with its state then, in key order.
    pub fn range<'a>(
        &'a self,
        version: u64,
        lower: Bound<&Key>,
        upper: Bound<&Key>,
    ) -> BTreeMap<&'a Key, &'a Option<Row>> {
        let mut out = BTreeMap::new();
        for span in self.from(version) {
            for (k, v) in span.rows.range((lower, upper)) {
                out.entry(k).or_insert(v);
            }
        }
        out
    }

    /// Records the state of `pk` before a write, into the span labelled `label` (the newest
    /// open epoch). Returns whether it stored a new image.
    fn record(&mut self, table: &Table, label: u64, pk: &Value, before: Option<&Row>) -> bool {
        if self.spans.last().is_none_or(|s| s.label != label) {
            self.spans.push(Span::new(label, table.indexes.len()));
        }
        match self.spans.last_mut() {
            Some(span) => span.insert(table, pk, before),
            None => false,
        }
    }

    /// The epoch `label` closed: its span moves into the span of `into` (the previous open
    /// epoch), or goes when there is none. Returns how many images that freed and the spans to
    /// drop (outside any lock).
    fn retire(&mut self, table: &Table, label: u64, into: Option<u64>) -> (usize, Option<Span>) {
        let Ok(i) = self.spans.binary_search_by_key(&label, |s| s.label) else {
            return (0, None);
        };
        let mut span = self.spans.remove(i);
        let Some(into) = into else {
            return (span.rows.len(), Some(span));
        };
        // No span lies between the previous open epoch and this one: each label is an open
        // epoch's. So the previous span, if any, is `into`'s.
        match i.checked_sub(1).map(|j| &mut self.spans[j]) {
            Some(prev) if prev.label == into => {
                let mut freed = 0;
                for (k, v) in std::mem::take(&mut span.rows) {
                    if !prev.insert(table, &k.0, v.as_ref()) {
                        freed += 1;
                    }
                }
                (freed, Some(span))
            }
            _ => {
                span.label = into;
                self.spans.insert(i, span);
                (0, None)
            }
        }
    }

    /// Forgets everything; returns how many images that freed.
    fn clear(&mut self) -> usize {
        let n = self.spans.iter().map(|s| s.rows.len()).sum();
        self.spans.clear();
        n
    }
}

/// One commit version pinned by read transactions.
pub(crate) struct Epoch {
    /// Set when keeping this epoch's view would have exceeded the image cap; its readers fail.
    pub expired: AtomicBool,
}

/// The open epochs of a store, and the tables holding images for them.
///
/// Lock order: `live` → `tables` → a table's images. `live` is taken only under the store's
/// gate, shared (`begin_read`, a read transaction's drop), so an apply (gate exclusive) never
/// meets it; `tables` is also taken by an apply that records or expires.
pub(crate) struct Epochs {
    /// The version of the newest open, unexpired epoch plus one; 0 when there is none. The one
    /// atomic load an apply makes.
    pub recording: AtomicU64,
    /// Images held across all tables.
    held: AtomicUsize,
    cap: usize,
    /// Version → the epoch and its number of readers.
    live: Mutex<BTreeMap<u64, (Arc<Epoch>, usize)>>,
    /// Tables that may hold images.
    tables: Mutex<Vec<Arc<Table>>>,
}

impl Epochs {
    pub fn new(cap: usize) -> Self {
        Epochs {
            recording: AtomicU64::new(0),
            held: AtomicUsize::new(0),
            cap,
            live: Mutex::new(BTreeMap::new()),
            tables: Mutex::new(Vec::new()),
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// A reader begins at `version`, the store's current one (the caller holds the gate, so
    /// no apply runs and no version is newer).
    pub fn join(&self, version: u64) -> Arc<Epoch> {
        let mut live = self.live.lock();
        let (epoch, readers) = live.entry(version).or_insert_with(|| {
            let epoch = Epoch {
                expired: AtomicBool::new(false),
            };
            (Arc::new(epoch), 0)
        });
        *readers += 1;
        let epoch = epoch.clone();
        if !epoch.expired.load(Ordering::Acquire) {
            self.recording.store(version + 1, Ordering::Release);
        }
        epoch
    }

    /// A reader at `version` is gone (the caller holds the gate shared). When it was the
    /// epoch's last, the epoch's spans move into the previous open epoch's, or are freed.
    pub fn leave(&self, version: u64) {
        let mut live = self.live.lock();
        let Some((_, readers)) = live.get_mut(&version) else {
            return;
        };
        *readers -= 1;
        if *readers > 0 {
            return;
        }
        live.remove(&version);
        // An expired previous epoch reads nothing: its readers fail. Older ones are expired
        // too (expiry takes every open epoch), so the images can go.
        let into = live
            .range(..version)
            .next_back()
            .filter(|(_, (e, _))| !e.expired.load(Ordering::Acquire))
            .map(|(v, _)| *v);
        let recording = live
            .iter()
            .next_back()
            .filter(|(_, (e, _))| !e.expired.load(Ordering::Acquire))
            .map_or(0, |(v, _)| v + 1);
        self.recording.store(recording, Ordering::Release);
        // Still under `live`, so retirements never interleave.
        let mut garbage = Vec::new();
        let mut tables = self.tables.lock();
        tables.retain(|t| {
            let mut images = t.images.write();
            let (freed, span) = images.retire(t, version, into);
            self.held.fetch_sub(freed, Ordering::Relaxed);
            garbage.extend(span);
            !images.spans.is_empty()
        });
        drop(tables);
        drop(live);
        drop(garbage);
    }

    /// The open epochs, for an apply that records images (it may have to expire them).
    pub fn open(&self) -> Vec<Arc<Epoch>> {
        self.live.lock().values().map(|(e, _)| e.clone()).collect()
    }

    /// Records the state of `pk` in `table` before a write, for the epoch `label`. The caller
    /// is an apply: it holds the gate exclusively and the table's data locked for writing.
    /// Returns true when the images held now pass the cap.
    pub fn record(&self, table: &Arc<Table>, label: u64, pk: &Value, before: Option<&Row>) -> bool {
        let (stored, first) = {
            let mut images = table.images.write();
            let first = images.spans.is_empty();
            (images.record(table, label, pk, before), first)
        };
        if !stored {
            return false;
        }
        if first {
            let mut tables = self.tables.lock();
            if !tables.iter().any(|t| Arc::ptr_eq(t, table)) {
                tables.push(table.clone());
            }
        }
        self.held.fetch_add(1, Ordering::Relaxed) + 1 > self.cap
    }

    /// Called by an apply that passed the cap, holding the gate exclusively: every open epoch
    /// expires (its readers fail from now on), every image is freed, and recording stops until
    /// a new read transaction begins.
    pub fn expire(&self, open: &[Arc<Epoch>]) {
        for e in open {
            e.expired.store(true, Ordering::Release);
        }
        self.recording.store(0, Ordering::Release);
        let tables = std::mem::take(&mut *self.tables.lock());
        for t in tables {
            let freed = t.images.write().clear();
            self.held.fetch_sub(freed, Ordering::Relaxed);
        }
    }

    /// A table was dropped: its images go.
    pub fn forget(&self, table: &Table) {
        let freed = table.images.write().clear();
        self.held.fetch_sub(freed, Ordering::Relaxed);
    }
}
