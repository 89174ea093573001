//! Reads: one trait, [`Readable`], for every way of looking at the tables, and the code behind
//! it, which merges a transaction's overlay or a read transaction's before-images with the
//! committed rows.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::iter::Peekable;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use interstice_abi::{IndexKind, Value};
use parking_lot::{RawRwLock, RwLockReadGuard, lock_api::ArcRwLockReadGuard};

use crate::error::{Result, StoreError};
use crate::history::Images;
use crate::read_tx::ReadAt;
use crate::store::Inner;
use crate::table::{IndexMap, Key, Row, Table, TableData, TableId, bounds_empty, key_bounds};
use crate::tx::Overlay;

mod sealed {
    pub trait Sealed {}
}

/// The read API of every way of looking at the tables, so they never drift apart:
///
/// - a [`Transaction`](crate::Transaction) reads the current committed state plus its own
///   writes;
/// - a [`ReadView`] reads the current committed state, no transaction half-applied, while
///   commits wait;
/// - a [`ReadTransaction`](crate::ReadTransaction) reads the state as of the commit at which it
///   began, while commits go on.
///
/// Bring it into scope (`use interstice_store::Readable;`) to call these methods. Sealed: only
/// this crate implements it.
pub trait Readable: sealed::Sealed {
    #[doc(hidden)]
    fn source(&self, table: TableId) -> Result<Source<'_>>;

    /// The row with primary key `pk`.
    fn get(&self, table: TableId, pk: &Value) -> Result<Option<Row>> {
        self.source(table)?.get(pk)
    }

    /// Rows whose indexed `column` equals `key`, in primary-key order. Works on hash and
    /// btree indexes, and on the primary key.
    fn find(&self, table: TableId, column: &str, key: &Value) -> Result<Vec<Row>> {
        self.source(table)?.find(column, key)
    }

    /// Rows whose btree-indexed `column` (or primary key) lies in `range`, ordered by that
    /// column, then by primary key.
    fn index_range(
        &self,
        table: TableId,
        column: &str,
        range: impl RangeBounds<Value>,
    ) -> Result<Vec<Row>> {
        self.source(table)?.index_range(
            column,
            range.start_bound().cloned(),
            range.end_bound().cloned(),
        )
    }

    /// Every row, in primary-key order, without copying the table.
    fn scan(&self, table: TableId) -> Result<Scan<'_>> {
        self.range(table, ..)
    }

    /// Rows whose primary key lies in `range`, in primary-key order.
    fn range(&self, table: TableId, range: impl RangeBounds<Value>) -> Result<Scan<'_>> {
        Ok(self
            .source(table)?
            .scan(range.start_bound().cloned(), range.end_bound().cloned()))
    }

    /// The number of rows.
    fn len(&self, table: TableId) -> Result<usize> {
        self.source(table)?.len()
    }
}

/// One table as a reader sees it: its committed rows, plus a transaction's overlay or a read
/// transaction's moment.
#[doc(hidden)]
pub struct Source<'a> {
    table: Cow<'a, Arc<Table>>,
    overlay: Option<&'a Overlay>,
    at: Option<&'a ReadAt>,
}

/// The images a read at `at` consults, if it must: `Ok(None)` when the current rows are the
/// answer. Fails when the read transaction expired or the table was dropped since.
fn images_at<'g>(
    t: &Table,
    at: Option<&ReadAt>,
    images: &'g Option<RwLockReadGuard<'_, Images>>,
) -> Result<Option<(u64, &'g Images)>> {
    let (Some(at), Some(images)) = (at, images) else {
        return Ok(None);
    };
    at.check(t)?;
    Ok((!images.from(at.version).is_empty()).then_some((at.version, &**images)))
}

/// The row with key `pk` as of `version`.
fn resolve(data: &TableData, images: &Images, version: u64, pk: &Value) -> Option<Row> {
    match images.lookup(version, pk) {
        Some(state) => state.clone(),
        None => data.get(pk).cloned(),
    }
}

impl<'a> Source<'a> {
    #[inline]
    pub(crate) fn new(
        table: Cow<'a, Arc<Table>>,
        overlay: Option<&'a Overlay>,
        at: Option<&'a ReadAt>,
    ) -> Self {
        Source { table, overlay, at }
    }

    /// The table's images, read-locked, when this is a read transaction's source. Taken after
    /// the data lock (lock order).
    fn images(&self) -> Option<RwLockReadGuard<'_, Images>> {
        self.at.map(|_| self.table.images.read())
    }

    #[inline]
    fn get(self, pk: &Value) -> Result<Option<Row>> {
        let t = &**self.table;
        if let Some(ov) = self.overlay
            && let Some(state) = ov.rows.get(pk)
        {
            return Ok(state.cloned());
        }
        let data = t.data.read();
        // The hot path (reducers' point reads): no moment to resolve.
        let Some(at) = self.at else {
            return Ok(data.get(pk).cloned());
        };
        let images = t.images.read();
        at.check(t)?;
        Ok(resolve(&data, &images, at.version, pk))
    }

    fn find(self, column: &str, key: &Value) -> Result<Vec<Row>> {
        let t = &**self.table;
        if column == t.schema.primary_key {
            return Ok(self.get(key)?.into_iter().collect());
        }
        let ix = t.index_of(column)?;
        let data = t.data.read();
        let images = self.images();
        if let Some((version, images)) = images_at(t, self.at, &images)? {
            let mut pks: BTreeSet<&Value> = BTreeSet::new();
            pks.extend(data.indexes[ix].get(key).into_iter().flat_map(|p| p.iter()));
            for span in images.from(version) {
                pks.extend(span.indexes[ix].get(key).into_iter().flatten());
            }
            let col = t.indexes[ix].column;
            return Ok(pks
                .into_iter()
                .filter_map(|pk| resolve(&data, images, version, pk))
                .filter(|row| row[col] == *key)
                .collect());
        }
        let ov = self.overlay;
        let mut out: Vec<Row> = Vec::new();
        if let Some(pks) = data.indexes[ix].get(key) {
            for pk in pks.iter() {
                if ov.is_some_and(|ov| ov.rows.contains(pk)) {
                    continue;
                }
                if let Some(row) = data.get(pk) {
                    out.push(row.clone());
                }
            }
        }
        if let Some(ov) = ov
            && let Some(set) = ov.indexes[ix].get(key)
        {
            for pk in set {
                if let Some(Some(row)) = ov.rows.get(pk) {
                    out.push(row.clone());
                }
            }
            out.sort_by(|a, b| a[t.pk].cmp(&b[t.pk]));
        }
        Ok(out)
    }

    fn index_range(
        self,
        column: &str,
        lower: Bound<Value>,
        upper: Bound<Value>,
    ) -> Result<Vec<Row>> {
        let t = self.table.clone().into_owned();
        if column == t.schema.primary_key {
            let mut scan = self.scan(lower, upper);
            let rows: Vec<Row> = scan.by_ref().collect();
            scan.check()?;
            return Ok(rows);
        }
        let ix = t.index_of(column)?;
        if t.indexes[ix].kind == IndexKind::Hash {
            return Err(StoreError::NotOrdered {
                table: t.name.clone(),
                column: column.to_owned(),
            });
        }
        if bounds_empty(&lower, &upper) {
            return Ok(Vec::new());
        }
        let col = t.indexes[ix].column;
        let by_column_then_pk =
            |a: &Row, b: &Row| a[col].cmp(&b[col]).then_with(|| a[t.pk].cmp(&b[t.pk]));
        let data = t.data.read();
        let images = self.images();
        if let Some((version, images)) = images_at(&t, self.at, &images)? {
            let mut pks: BTreeSet<&Value> = BTreeSet::new();
            if let IndexMap::BTree(map) = &data.indexes[ix] {
                for (_, p) in map.range((lower.clone(), upper.clone())) {
                    pks.extend(p.iter());
                }
            }
            for span in images.from(version) {
                for (_, set) in span.indexes[ix].range((lower.clone(), upper.clone())) {
                    pks.extend(set);
                }
            }
            let bounds = (lower, upper);
            let mut out: Vec<Row> = pks
                .into_iter()
                .filter_map(|pk| resolve(&data, images, version, pk))
                .filter(|row| bounds.contains(&row[col]))
                .collect();
            out.sort_by(by_column_then_pk);
            return Ok(out);
        }
        let ov = self.overlay;
        let mut out: Vec<Row> = Vec::new();
        if let IndexMap::BTree(map) = &data.indexes[ix] {
            for (_, pks) in map.range((lower.clone(), upper.clone())) {
                for pk in pks.iter() {
                    if ov.is_some_and(|ov| ov.rows.contains(pk)) {
                        continue;
                    }
                    if let Some(row) = data.get(pk) {
                        out.push(row.clone());
                    }
                }
            }
        }
        if let Some(ov) = ov {
            let before = out.len();
            for (_, set) in ov.indexes[ix].range((lower, upper)) {
                for pk in set {
                    if let Some(Some(row)) = ov.rows.get(pk) {
                        out.push(row.clone());
                    }
                }
            }
            if out.len() > before {
                out.sort_by(by_column_then_pk);
            }
        }
        Ok(out)
    }

    fn scan(self, lower: Bound<Value>, upper: Bound<Value>) -> Scan<'a> {
        Scan::new(self.table.into_owned(), self.overlay, self.at, lower, upper)
    }

    fn len(self) -> Result<usize> {
        let t = &**self.table;
        let data = t.data.read();
        let images = self.images();
        if let Some((version, images)) = images_at(t, self.at, &images)? {
            let mut n = data.len();
            for (k, state) in images.range(version, Bound::Unbounded, Bound::Unbounded) {
                match (data.contains(&k.0), state.is_some()) {
                    (true, false) => n -= 1,
                    (false, true) => n += 1,
                    _ => {}
                }
            }
            return Ok(n);
        }
        let mut n = data.len();
        if let Some(ov) = self.overlay {
            for (pk, state) in ov.rows.iter() {
                match (data.contains(&pk.0), state.is_some()) {
                    (true, false) => n -= 1,
                    (false, true) => n += 1,
                    _ => {}
                }
            }
        }
        Ok(n)
    }
}

/// A transaction's version of one row: `None` when it deleted it.
type OverlayEntry<'a> = (&'a Key, Option<&'a Row>);

const FIRST_BATCH: usize = 32;
const MAX_BATCH: usize = 1024;

/// An iterator over rows in primary-key order.
///
/// It copies no table: it takes the table's read lock for one batch of rows at a time (`Arc`
/// clones) and resumes after the last key it returned. Between batches it holds no lock, so an
/// iterator kept alive by a slow consumer never blocks a commit. That gives the same answer as
/// holding the lock throughout, because nothing writes a table while a transaction that reads
/// it runs (the scheduler's guarantee) or while a [`ReadView`] is open (the store's gate), and a
/// [`ReadTransaction`](crate::ReadTransaction) merges in the before-images of what changed.
/// The transaction's own writes are merged in key order.
///
/// A scan over a read transaction that expires (or whose table is dropped) midway ends early;
/// [`ReadTransaction::check`](crate::ReadTransaction::check) then fails, and so does
/// [`Scan::check`].
pub struct Scan<'a> {
    table: Arc<Table>,
    lower: Bound<Value>,
    upper: Bound<Value>,
    batch: std::vec::IntoIter<Row>,
    batch_size: usize,
    done: bool,
    head: Option<Row>,
    overlay: Option<Peekable<std::vec::IntoIter<OverlayEntry<'a>>>>,
    at: Option<&'a ReadAt>,
}

impl<'a> Scan<'a> {
    fn new(
        table: Arc<Table>,
        ov: Option<&'a Overlay>,
        at: Option<&'a ReadAt>,
        lower: Bound<Value>,
        upper: Bound<Value>,
    ) -> Self {
        let empty = bounds_empty(&lower, &upper);
        let overlay = match ov {
            Some(ov) if !empty && !ov.rows.is_empty() => {
                Some(ov.sorted(&lower, &upper).into_iter().peekable())
            }
            _ => None,
        };
        Scan {
            table,
            lower,
            upper,
            batch: Vec::new().into_iter(),
            batch_size: FIRST_BATCH,
            done: empty,
            head: None,
            overlay,
            at,
        }
    }

    /// Fails when a read transaction's scan ended early: the rows it gave are a prefix only.
    /// Other scans never fail.
    pub fn check(&self) -> Result<()> {
        match self.at {
            Some(at) => at.status(),
            None => Ok(()),
        }
    }

    fn next_committed(&mut self) -> Option<Row> {
        loop {
            if let Some(row) = self.batch.next() {
                return Some(row);
            }
            if self.done {
                return None;
            }
            let mut rows = Vec::with_capacity(self.batch_size);
            self.fetch(&mut rows);
            self.batch_size = (self.batch_size * 2).min(MAX_BATCH);
            self.batch = rows.into_iter();
        }
    }

    /// The next batch of committed rows (as of the read transaction's moment, for one).
    fn fetch(&mut self, rows: &mut Vec<Row>) {
        let table = self.table.clone();
        let data = table.data.read();
        let images = self.at.map(|_| table.images.read());
        let at = match images_at(&table, self.at, &images) {
            Ok(at) => at,
            Err(_) => {
                // `check` reports it.
                self.done = true;
                return;
            }
        };
        let Some((version, images)) = at else {
            data.batch(&self.lower, &self.upper, self.batch_size, rows);
            if rows.len() < self.batch_size {
                self.done = true;
            }
            if let Some(last) = rows.last() {
                self.lower = Bound::Excluded(last[table.pk].clone());
            }
            return;
        };
        if bounds_empty(&self.lower, &self.upper) {
            self.done = true;
            return;
        }
        let (lower, upper) = key_bounds(&self.lower, &self.upper);
        let pk = table.pk;
        let current: Vec<(&Key, &Row)> = data
            .order
            .range(lower, upper)
            .take(self.batch_size)
            .map(|r| (Key::from_ref(&r[pk]), r))
            .collect();
        // Up to the last current key of a full batch; images past it come in the next one.
        let cut = match current.last() {
            Some((k, _)) if current.len() == self.batch_size => Some(*k),
            _ => None,
        };
        let mut merged: BTreeMap<&Key, Option<&Row>> = images
            .range(version, lower, cut.map_or(upper, Bound::Included))
            .into_iter()
            .map(|(k, state)| (k, state.as_ref()))
            .collect();
        for (k, row) in current {
            merged.entry(k).or_insert(Some(row));
        }
        rows.extend(merged.into_values().flatten().cloned());
        match cut {
            Some(k) => self.lower = Bound::Excluded(k.0.clone()),
            None => self.done = true,
        }
    }
}

impl Iterator for Scan<'_> {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        loop {
            if self.head.is_none() {
                self.head = self.next_committed();
            }
            let Some(overlay) = self.overlay.as_mut() else {
                return self.head.take();
            };
            let order = match (&self.head, overlay.peek()) {
                (None, None) => return None,
                (Some(_), None) => return self.head.take(),
                (None, Some(_)) => Ordering::Greater,
                (Some(c), Some((k, _))) => Key::from_ref(&c[self.table.pk]).cmp(*k),
            };
            match order {
                Ordering::Less => return self.head.take(),
                Ordering::Equal | Ordering::Greater => {
                    if order == Ordering::Equal {
                        // The transaction's version of this row wins.
                        self.head = None;
                    }
                    if let Some((_, Some(row))) = overlay.next() {
                        return Some(row.clone());
                    }
                }
            }
        }
    }
}

/// A consistent view of the current committed state: no transaction is half-applied in it.
///
/// Commits wait while a view is open (it holds the store's gate shared), so keep views short,
/// and never apply or commit on a thread that holds one: that thread would wait for itself.
/// [`Store::begin_read`](crate::Store::begin_read) gives a view that never holds up commits.
pub struct ReadView<'s> {
    pub(crate) store: &'s Inner,
    pub(crate) _gate: RwLockReadGuard<'s, ()>,
}

impl sealed::Sealed for ReadView<'_> {}

impl Readable for ReadView<'_> {
    fn source(&self, table: TableId) -> Result<Source<'_>> {
        Ok(Source::new(
            Cow::Owned(self.store.table(table)?),
            None,
            None,
        ))
    }
}

impl sealed::Sealed for crate::Transaction {}

impl Readable for crate::Transaction {
    #[inline]
    fn source(&self, table: TableId) -> Result<Source<'_>> {
        let (t, ov) = self.parts(table)?;
        Ok(Source::new(t, ov, None))
    }
}

impl<'s> ReadView<'s> {
    /// Locks one table for reading, for many fast lookups without a lock per lookup.
    pub fn table_ref(&self, table: TableId) -> Result<TableRef<'_>> {
        let t = self.store.table(table)?;
        let guard = t.data.read_arc();
        Ok(TableRef {
            table: t,
            guard,
            _view: std::marker::PhantomData,
        })
    }
}

/// One table locked for reading inside a [`ReadView`].
pub struct TableRef<'v> {
    table: Arc<Table>,
    guard: ArcRwLockReadGuard<RawRwLock, TableData>,
    _view: std::marker::PhantomData<&'v ()>,
}

impl TableRef<'_> {
    /// The row with primary key `pk`, borrowed: no reference count is touched.
    pub fn get(&self, pk: &Value) -> Option<&Row> {
        self.guard.get(pk)
    }

    pub fn len(&self) -> usize {
        self.guard.len()
    }

    pub fn is_empty(&self) -> bool {
        self.guard.len() == 0
    }

    /// Every row in primary-key order, borrowed.
    pub fn iter(&self) -> impl Iterator<Item = &Row> {
        self.guard.order.values()
    }

    /// The table's full name, `owner.table`.
    pub fn name(&self) -> &str {
        &self.table.name
    }
}

impl sealed::Sealed for crate::ReadTransaction {}
