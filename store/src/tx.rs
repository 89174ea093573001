//! Transactions: a private overlay over the committed tables, applied atomically.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use interstice_abi::{Persistence, Value};
use parking_lot::RwLockWriteGuard;

use crate::error::{Result, StoreError};
use crate::log::{self, OpKind};
use crate::read::Readable;
use crate::rows::OverlayRows;
use crate::store::{Inner, Tables};
use crate::table::{Key, Row, Table, TableData, TableId};
use crate::{Lsn, Store};

/// One effect of a committed transaction, in operation order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub table: TableId,
    pub kind: ChangeKind,
}

/// What happened to a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Insert(Row),
    Update { old: Row, new: Row },
    Delete(Row),
}

/// Caller data stored with a commit-log record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitMeta {
    /// The ingress sequence number; `log` must be called in increasing `seq` order.
    pub seq: u64,
    /// The logical (ingress) timestamp.
    pub timestamp: u64,
    /// Opaque bytes, e.g. the reducer name and arguments.
    pub meta: Vec<u8>,
}

/// A transaction that [`Transaction::commit`] applied and logged.
#[derive(Debug)]
#[must_use]
pub struct Commit {
    /// The record's position in the log: pass it to [`Store::wait_durable`]. For a transaction
    /// that changed no persistent table, the lsn of the latest record before it.
    pub lsn: Lsn,
    pub changes: Vec<Change>,
}

/// The writes a transaction made to one table, visible only to that transaction.
pub(crate) struct Overlay {
    pub table: Arc<Table>,
    /// Primary key → the row's state in this transaction. Hashed: point operations are the
    /// hot path; the rare scan of a written table sorts what it needs.
    pub rows: OverlayRows,
    /// Per secondary index: key → primary keys of the rows present in `rows`.
    pub indexes: Vec<BTreeMap<Value, BTreeSet<Value>>>,
    /// auto_inc counters, loaded from the committed table when the overlay is created (at the
    /// transaction's first write of the table).
    counters: Vec<i128>,
    base_version: u64,
    written: bool,
}

impl Overlay {
    fn new(table: Arc<Table>) -> Self {
        let (base_version, counters) = {
            let data = table.data.read();
            (data.version, data.counters.clone())
        };
        Overlay {
            indexes: vec![BTreeMap::new(); table.indexes.len()],
            rows: OverlayRows::new(table.pk),
            table,
            counters,
            base_version,
            written: false,
        }
    }

    /// Fails when the table was dropped or written by another transaction since this one
    /// started writing it. `data` is the table's data, write-locked.
    fn check_base(&self, data: &TableData) -> Result<()> {
        if self.table.is_dropped() {
            return Err(StoreError::TableDropped {
                table: self.table.name.clone(),
            });
        }
        // A partitioned table is written by several transactions at once, each in partitions
        // of its own (the caller plans them so, and refuses them inserts, which could collide
        // on a key across partitions): they touch disjoint rows, so another's commit since this
        // one began is no conflict.
        let partitioned = self.table.schema.partition_column().is_some();
        if data.version != self.base_version && !partitioned {
            return Err(StoreError::Conflict {
                table: self.table.name.clone(),
            });
        }
        Ok(())
    }

    /// After applying: raises the committed counters and bumps the version.
    fn publish_counters(&self, data: &mut TableData) {
        for (c, &n) in data.counters.iter_mut().zip(&self.counters) {
            *c = (*c).max(n);
        }
        data.version += 1;
    }

    /// This transaction's rows (and deletions) with keys within bounds, in key order.
    pub fn sorted(&self, lower: &Bound<Value>, upper: &Bound<Value>) -> Vec<(&Key, Option<&Row>)> {
        let bounds = crate::table::key_bounds(lower, upper);
        let mut out: Vec<(&Key, Option<&Row>)> = self
            .rows
            .iter()
            .filter(|(k, _)| bounds.contains(*k))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out
    }

    fn unindex(&mut self, row: &Row) {
        let pk = &row[self.table.pk];
        for (ix, map) in self.table.indexes.iter().zip(&mut self.indexes) {
            let key = &row[ix.column];
            if let Some(set) = map.get_mut(key) {
                set.remove(pk);
                if set.is_empty() {
                    map.remove(key);
                }
            }
        }
    }

    fn index(&mut self, row: &Row) {
        let pk = &row[self.table.pk];
        for (ix, map) in self.table.indexes.iter().zip(&mut self.indexes) {
            map.entry(row[ix.column].clone())
                .or_default()
                .insert(pk.clone());
        }
    }

    /// The row with key `pk` as this transaction sees it.
    pub fn get(&self, data: &TableData, pk: &Value) -> Option<Row> {
        match self.rows.get(pk) {
            Some(state) => state.cloned(),
            None => data.get(pk).cloned(),
        }
    }

    /// Some row other than `except` holding `key` in unique index `ix`.
    fn unique_holder(&self, data: &TableData, ix: usize, key: &Value, except: &Value) -> bool {
        if self.indexes[ix]
            .get(key)
            .is_some_and(|set| set.iter().any(|pk| pk != except))
        {
            return true;
        }
        data.indexes[ix]
            .get(key)
            .is_some_and(|pks| pks.iter().any(|pk| pk != except && !self.rows.contains(pk)))
    }

    fn check_unique(&self, data: &TableData, row: &Row, old: Option<&Row>) -> Result<()> {
        let t = &self.table;
        let pk = &row[t.pk];
        for (i, ix) in t.indexes.iter().enumerate() {
            let key = &row[ix.column];
            if !ix.unique || old.is_some_and(|o| &o[ix.column] == key) {
                continue;
            }
            if self.unique_holder(data, i, key, pk) {
                return Err(StoreError::UniqueViolation {
                    table: t.name.clone(),
                    column: t.schema.columns[ix.column].name.clone(),
                    value: key.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A transaction: reads see the committed state of each table plus this transaction's own
/// writes; [`apply`](Transaction::apply) publishes all writes at once; dropping it leaves no trace.
///
/// An operation that fails (a constraint violation, a type error) has no effect: the transaction
/// stays usable, and committing it commits only the operations that succeeded. Runtimes that
/// want all-or-nothing reducers drop the transaction on the first error.
pub struct Transaction {
    store: Arc<Inner>,
    /// The catalog as of `begin`: table lookups without the catalog lock or an `Arc` clone.
    tables: Arc<Tables>,
    overlays: Vec<Overlay>,
    /// The changes made so far, in operation order (handed to `Applied` as they are).
    ops: Vec<Change>,
}

impl Transaction {
    pub(crate) fn new(store: Arc<Inner>) -> Self {
        Transaction {
            tables: store.tables(),
            store,
            overlays: Vec::new(),
            ops: Vec::new(),
        }
    }

    /// The store this transaction belongs to (a new handle: for occasional use, not per
    /// operation).
    pub fn store(&self) -> Store {
        Store::from_inner(self.store.clone())
    }

    /// Resolves a table id. A table dropped since `begin` is gone, as in the live catalog; one
    /// created since (or not in the published array) is looked up under the catalog lock.
    #[inline]
    fn table(&self, id: TableId) -> Result<Cow<'_, Arc<Table>>> {
        match self.tables.get(id.0 as usize) {
            Some(Some(t)) if !t.is_dropped() => Ok(Cow::Borrowed(t)),
            _ => Ok(Cow::Owned(self.store.table(id)?)),
        }
    }

    fn slot(&mut self, table: TableId) -> Result<usize> {
        if let Some(i) = self.overlays.iter().position(|o| o.table.id == table) {
            return Ok(i);
        }
        let t = self.table(table)?.into_owned();
        self.overlays.push(Overlay::new(t));
        Ok(self.overlays.len() - 1)
    }

    #[inline]
    fn overlay(&self, table: TableId) -> Option<&Overlay> {
        self.overlays.iter().find(|o| o.table.id == table)
    }

    /// Resolves `table` for a read: its overlay when this transaction touched it.
    #[inline]
    pub(crate) fn parts(&self, table: TableId) -> Result<(Cow<'_, Arc<Table>>, Option<&Overlay>)> {
        match self.overlay(table) {
            Some(o) => Ok((Cow::Borrowed(&o.table), Some(o))),
            None => Ok((self.table(table)?, None)),
        }
    }

    fn writable(&mut self, table: TableId) -> Result<usize> {
        let slot = self.slot(table)?;
        let ov = &self.overlays[slot];
        if ov.table.is_dropped() {
            return Err(StoreError::TableDropped {
                table: ov.table.name.clone(),
            });
        }
        Ok(slot)
    }

    /// Inserts a row and returns it as stored: a `0` in an `auto_inc` column is replaced by
    /// the table's next value.
    pub fn insert(&mut self, table: TableId, row: impl Into<Row>) -> Result<Row> {
        let mut row: Row = row.into();
        let slot = self.writable(table)?;
        let ov = &mut self.overlays[slot];
        let t: &Table = &ov.table;
        t.check_row(&row)?;
        for (k, &col) in t.auto_inc.iter().enumerate() {
            if row[col].as_i128() == Some(0) {
                let last = ov.counters[k];
                let value =
                    row[col]
                        .with_integer(last + 1)
                        .ok_or_else(|| StoreError::AutoIncOverflow {
                            table: t.name.clone(),
                            column: t.schema.columns[col].name.clone(),
                            ty: t.types[col].to_string(),
                            last,
                        })?;
                // A row fresh from a decode is not shared yet, so it is changed in place.
                match Arc::get_mut(&mut row) {
                    Some(values) => values[col] = value,
                    None => {
                        let mut values = row.to_vec();
                        values[col] = value;
                        row = values.into();
                    }
                }
            }
        }
        let pk = &row[t.pk];
        let duplicate = || StoreError::DuplicateKey {
            table: t.name.clone(),
            key: pk.clone(),
        };
        let hash = ov.rows.hash(pk);
        match ov.rows.get_hashed(hash, pk) {
            Some(Some(_)) => return Err(duplicate()),
            // Deleted earlier in this transaction: the key is free.
            Some(None) => {
                if t.has_unique {
                    ov.check_unique(&t.data.read(), &row, None)?;
                }
            }
            None => {
                let data = t.data.read();
                if data.contains(pk) {
                    return Err(duplicate());
                }
                if t.has_unique {
                    ov.check_unique(&data, &row, None)?;
                }
            }
        }
        if !ov.indexes.is_empty() {
            ov.index(&row);
        }
        // A generated value is the counter plus one, so raising counters to the row's values
        // also accounts for explicit values above them.
        raise(&mut ov.counters, &ov.table.auto_inc, &row);
        ov.rows.set_hashed(hash, row.clone(), true);
        ov.written = true;
        self.ops.push(Change {
            table,
            kind: ChangeKind::Insert(row.clone()),
        });
        Ok(row)
    }

    /// Replaces the row with the same primary key; returns the row it replaced.
    pub fn update(&mut self, table: TableId, row: impl Into<Row>) -> Result<Row> {
        let row: Row = row.into();
        let slot = self.writable(table)?;
        let ov = &mut self.overlays[slot];
        // Borrowed, not cloned: the table's reference count is a cache line every worker
        // writing the table would share.
        let t: &Table = &ov.table;
        t.check_row(&row)?;
        let pk = &row[t.pk];
        let old = {
            let data = t.data.read();
            let old = ov.get(&data, pk).ok_or_else(|| StoreError::NoSuchRow {
                table: t.name.clone(),
                key: pk.clone(),
            })?;
            ov.check_unique(&data, &row, Some(&old))?;
            old
        };
        raise(&mut ov.counters, &t.auto_inc, &row);
        if !ov.indexes.is_empty() {
            if let Some(Some(prev)) = ov.rows.get(pk).map(|s| s.cloned()) {
                ov.unindex(&prev);
            }
            ov.index(&row);
        }
        ov.rows.set(row.clone(), true);
        ov.written = true;
        self.ops.push(Change {
            table,
            kind: ChangeKind::Update {
                old: old.clone(),
                new: row,
            },
        });
        Ok(old)
    }

    /// Deletes the row with primary key `pk`; returns it.
    pub fn delete(&mut self, table: TableId, pk: &Value) -> Result<Row> {
        let slot = self.writable(table)?;
        let ov = &mut self.overlays[slot];
        let t: &Table = &ov.table;
        t.check_key(pk)?;
        let old = ov
            .get(&t.data.read(), pk)
            .ok_or_else(|| StoreError::NoSuchRow {
                table: t.name.clone(),
                key: pk.clone(),
            })?;
        if !ov.indexes.is_empty()
            && let Some(Some(prev)) = ov.rows.get(pk).map(|s| s.cloned())
        {
            ov.unindex(&prev);
        }
        ov.rows.set(old.clone(), false);
        ov.written = true;
        self.ops.push(Change {
            table,
            kind: ChangeKind::Delete(old.clone()),
        });
        Ok(old)
    }

    /// Deletes every row; returns how many. Each row shows up as a delete in the change set.
    pub fn clear(&mut self, table: TableId) -> Result<usize> {
        self.writable(table)?;
        let t = self.parts(table)?.0;
        let pks: Vec<Value> = self.scan(table)?.map(|r| r[t.pk].clone()).collect();
        for pk in &pks {
            self.delete(table, pk)?;
        }
        Ok(pks.len())
    }

    /// The changes made so far, in operation order.
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.ops.iter()
    }

    /// Publishes every write at once, atomically for [`Store::read`] views. The result must be
    /// handed to [`Store::log`] (in sequence order); dropping it instead poisons the store, because
    /// memory would then hold a transaction the log will never have.
    ///
    /// Fails, applying nothing, when the store is poisoned, the transaction's log record would
    /// exceed [`StoreConfig::max_record_bytes`](crate::StoreConfig::max_record_bytes)
    /// ([`StoreError::TransactionTooLarge`]; the store stays usable), a written table was
    /// dropped, or another transaction wrote one of the same tables meanwhile (which the
    /// scheduler rules out).
    pub fn apply(mut self) -> Result<Applied> {
        self.apply_taken()
    }

    /// [`apply`](Self::apply) for a transaction that lives inside something larger: its writes
    /// are taken out and applied, and it is left empty (committing it again does nothing).
    pub fn apply_taken(&mut self) -> Result<Applied> {
        let store = self.store.clone();
        store.check_poisoned()?;
        if self.ops.is_empty() {
            // Read-only: nothing to publish, so don't make readers and writers wait on the gate.
            return Ok(Applied {
                store,
                changes: Vec::new(),
                payload: Vec::new(),
                logged: false,
                armed: true,
            });
        }
        let persistent = store.is_persistent();
        let mut payload = Vec::new();
        let logged = if persistent {
            let logged = self.encode_ops(&mut payload);
            let bytes = log::record_len(0, payload.len());
            if logged && bytes > store.max_record {
                return Err(StoreError::TransactionTooLarge {
                    bytes: bytes as u64,
                    limit: store.max_record as u64,
                });
            }
            logged
        } else {
            self.overlays
                .iter()
                .any(|ov| ov.written && ov.table.persistence != Persistence::Ephemeral)
        };
        let overlays = std::mem::take(&mut self.overlays);
        let ops = std::mem::take(&mut self.ops);
        {
            let _gate = store.gate.write();
            // Open read transactions need the rows' previous states; with none open this is
            // the only cost.
            let mut images = match store.epochs.recording.load(Ordering::Acquire) {
                0 => None,
                v => Some(Images::new(&store, v - 1)),
            };
            if let [ov] = &overlays[..] {
                // One table (the common case): every op is on it, and it was written.
                let mut data = ov.table.data.write();
                ov.check_base(&data)?;
                store.bump_version();
                let inserts = ops
                    .iter()
                    .filter(|c| matches!(c.kind, ChangeKind::Insert(_)))
                    .count();
                if inserts > 1 {
                    // One growth step at most, not one per doubling on the way.
                    data.by_pk.reserve(inserts);
                }
                for change in &ops {
                    if let Some(images) = &mut images {
                        images.record(&store, &ov.table, change);
                    }
                    apply_change(&ov.table, &mut data, change);
                }
                ov.publish_counters(&mut data);
            } else {
                let mut order: Vec<usize> = (0..overlays.len())
                    .filter(|&i| overlays[i].written)
                    .collect();
                order.sort_by_key(|&i| overlays[i].table.id);
                let mut guards: Vec<Option<RwLockWriteGuard<'_, TableData>>> =
                    overlays.iter().map(|_| None).collect();
                for &i in &order {
                    let ov = &overlays[i];
                    let guard = ov.table.data.write();
                    ov.check_base(&guard)?;
                    guards[i] = Some(guard);
                }
                store.bump_version();
                for change in &ops {
                    let slot = overlays.iter().position(|o| o.table.id == change.table);
                    if let Some(i) = slot
                        && let Some(data) = guards[i].as_mut()
                    {
                        if let Some(images) = &mut images {
                            images.record(&store, &overlays[i].table, change);
                        }
                        apply_change(&overlays[i].table, data, change);
                    }
                }
                for &i in &order {
                    if let Some(data) = guards[i].as_mut() {
                        overlays[i].publish_counters(data);
                    }
                }
            }
            if logged && persistent {
                // Under the gate, so a snapshot (which takes the gate) sees this count and
                // the tables agree. A memory-only store takes no snapshot, and its workers
                // need not share this counter's cache line.
                store.outstanding.fetch_add(1, Ordering::AcqRel);
            }
        }
        Ok(Applied {
            store,
            changes: ops,
            payload,
            logged,
            armed: true,
        })
    }

    /// Applies and logs: for callers that commit one transaction at a time. Under
    /// [`Durability::EveryCommit`](crate::Durability::EveryCommit) it also waits until the
    /// record is durable, as that policy promises; under the others, pass
    /// [`Commit::lsn`] to [`Store::wait_durable`] before reporting the commit.
    pub fn commit(self, meta: CommitMeta) -> Result<Commit> {
        let store = Store::from_inner(self.store.clone());
        let mut applied = self.apply()?;
        let changes = applied.take_changes();
        let lsn = store.log(applied, meta)?;
        if store.inner().log.durability == crate::Durability::EveryCommit {
            store.wait_durable(lsn)?;
        }
        Ok(Commit { lsn, changes })
    }

    /// Encodes the log payload; returns whether there is anything to log.
    fn encode_ops(&self, out: &mut Vec<u8>) -> bool {
        // What each logged change writes, sized before anything is encoded: the payload is
        // allocated once and each row copied into it once.
        let logged = self.ops.iter().filter_map(|change| {
            let t = &self.overlay(change.table)?.table;
            if t.persistence == Persistence::Ephemeral {
                return None;
            }
            let (kind, values): (_, &[Value]) = match &change.kind {
                ChangeKind::Insert(row) => (OpKind::Insert, row),
                ChangeKind::Update { new, .. } => (OpKind::Update, new),
                ChangeKind::Delete(row) => (OpKind::Delete, std::slice::from_ref(&row[t.pk])),
            };
            let len: usize = values.iter().map(interstice_abi::encoded_len).sum();
            Some((kind, t.id, values, len))
        });
        out.reserve(logged.clone().map(|(.., len)| log::op_len(len)).sum());
        let mut any = false;
        for (kind, table, values, len) in logged {
            any = true;
            log::put_op_with(out, kind, table, len, |out| log::encode_row(values, out));
        }
        for ov in &self.overlays {
            let t = &ov.table;
            if !ov.written || t.persistence == Persistence::Ephemeral {
                continue;
            }
            for (&col, &value) in t.auto_inc.iter().zip(&ov.counters) {
                any = true;
                log::put_counter(out, t.id, col, value);
            }
        }
        any
    }
}

/// Raises auto_inc `counters` (parallel to the columns `auto_inc`) to at least `row`'s values.
fn raise(counters: &mut [i128], auto_inc: &[usize], row: &[Value]) {
    for (counter, &col) in counters.iter_mut().zip(auto_inc) {
        if let Some(v) = row[col].as_i128() {
            *counter = (*counter).max(v);
        }
    }
}

/// An apply's recording of before-images for open read transactions.
struct Images {
    /// The newest open epoch's version; `None` once the cap was passed.
    label: Option<u64>,
    open: Vec<Arc<crate::history::Epoch>>,
}

impl Images {
    fn new(store: &Inner, label: u64) -> Self {
        Images {
            label: Some(label),
            open: store.epochs.open(),
        }
    }

    /// Keeps the row `change` is about to overwrite (or its absence) for the open epochs.
    fn record(&mut self, store: &Inner, table: &Arc<Table>, change: &Change) {
        let Some(label) = self.label else {
            return;
        };
        let (pk, before) = match &change.kind {
            ChangeKind::Insert(row) => (&row[table.pk], None),
            ChangeKind::Update { old, .. } => (&old[table.pk], Some(old)),
            ChangeKind::Delete(row) => (&row[table.pk], Some(row)),
        };
        if store.epochs.record(table, label, pk, before) {
            store.epochs.expire(&self.open);
            self.label = None;
        }
    }
}

/// Applies one recorded change to committed data. The transaction checked every constraint
/// against the same state, so this cannot fail.
fn apply_change(table: &Table, data: &mut TableData, change: &Change) {
    match &change.kind {
        ChangeKind::Insert(row) => {
            data.insert(table, row.clone());
        }
        ChangeKind::Update { new, .. } => {
            data.replace(table, new.clone());
        }
        ChangeKind::Delete(row) => {
            data.remove(table, &row[table.pk]);
        }
    }
}

/// A transaction applied in memory and not yet in the log. Hand it to [`Store::log`].
#[must_use = "an applied transaction must be logged with Store::log; dropping it poisons the store"]
pub struct Applied {
    store: Arc<Inner>,
    changes: Vec<Change>,
    pub(crate) payload: Vec<u8>,
    /// Whether the transaction wrote a persistent table (and so needs a log record).
    pub(crate) logged: bool,
    pub(crate) armed: bool,
}

impl Applied {
    /// The change set, in operation order.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Takes the change set out (e.g. to turn it into events before logging).
    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }

    /// Whether [`Store::log`] will append a record (the transaction wrote a persistent table).
    pub fn needs_log(&self) -> bool {
        self.logged
    }

    /// Takes `other`'s writes into this transaction's log record, so that [`Store::log`] writes
    /// both as one record and recovery finds both or neither. Both must be applied and not yet
    /// logged; `other` was applied after `self` and is replayed after it. Its changes are
    /// appended to this change set.
    pub fn absorb(&mut self, mut other: Applied) {
        other.disarm();
        self.changes.append(&mut other.changes);
        self.payload.append(&mut other.payload);
        if other.logged {
            if self.logged && self.store.is_persistent() {
                // `apply` counted two records that will now be one.
                self.store.outstanding.fetch_sub(1, Ordering::AcqRel);
            }
            self.logged = true;
        }
    }

    pub(crate) fn disarm(&mut self) {
        self.armed = false;
    }
}

impl std::fmt::Debug for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applied")
            .field("changes", &self.changes.len())
            .field("payload_bytes", &self.payload.len())
            .field("logged", &self.logged)
            .finish()
    }
}

impl Drop for Applied {
    fn drop(&mut self) {
        if self.armed && self.logged {
            if self.store.is_persistent() {
                self.store.outstanding.fetch_sub(1, Ordering::AcqRel);
            }
            self.store.poison(
                "an applied transaction was dropped without being logged, so memory holds changes the log lacks; reopen the store".to_owned(),
            );
        }
    }
}
