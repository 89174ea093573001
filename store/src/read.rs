//! Reads shared by transactions and consistent views: index lookups and pk-ordered scans that
//! merge a transaction's overlay with the committed rows.

use std::cmp::Ordering;
use std::iter::Peekable;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use interstice_abi::{IndexKind, Value};
use parking_lot::{RawRwLock, RwLockReadGuard, lock_api::ArcRwLockReadGuard};

use crate::error::{Result, StoreError};
use crate::store::Inner;
use crate::table::{IndexMap, Key, Row, Table, TableData, TableId, bounds_empty};
use crate::tx::Overlay;

/// Rows whose indexed `column` equals `key`, in primary-key order.
pub(crate) fn find(t: &Table, ov: Option<&Overlay>, column: &str, key: &Value) -> Result<Vec<Row>> {
    let data = t.data.read();
    if column == t.schema.primary_key {
        let row = match ov {
            Some(ov) => ov.get(&data, key),
            None => data.get(key).cloned(),
        };
        return Ok(row.into_iter().collect());
    }
    let ix = t.index_of(column)?;
    let mut out: Vec<Row> = Vec::new();
    if let Some(pks) = data.indexes[ix].get(key) {
        for pk in pks.iter() {
            if ov.is_some_and(|ov| ov.rows.contains_key(Key::from_ref(pk))) {
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
            if let Some(Some(row)) = ov.rows.get(Key::from_ref(pk)) {
                out.push(row.clone());
            }
        }
        out.sort_by(|a, b| a[t.pk].cmp(&b[t.pk]));
    }
    Ok(out)
}

/// Rows whose btree-indexed `column` is within bounds, ordered by (column, primary key).
pub(crate) fn index_range(
    t: &Arc<Table>,
    ov: Option<&Overlay>,
    column: &str,
    lower: Bound<Value>,
    upper: Bound<Value>,
) -> Result<Vec<Row>> {
    if column == t.schema.primary_key {
        return Ok(Scan::new(t.clone(), ov, lower, upper).collect());
    }
    let ix = t.index_of(column)?;
    if t.indexes[ix].kind != IndexKind::BTree {
        return Err(StoreError::NotOrdered {
            table: t.name.clone(),
            column: column.to_owned(),
        });
    }
    if bounds_empty(&lower, &upper) {
        return Ok(Vec::new());
    }
    let data = t.data.read();
    let mut out: Vec<Row> = Vec::new();
    if let IndexMap::BTree(map) = &data.indexes[ix] {
        for (_, pks) in map.range((lower.clone(), upper.clone())) {
            for pk in pks.iter() {
                if ov.is_some_and(|ov| ov.rows.contains_key(Key::from_ref(pk))) {
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
                if let Some(Some(row)) = ov.rows.get(Key::from_ref(pk)) {
                    out.push(row.clone());
                }
            }
        }
        if out.len() > before {
            let col = t.indexes[ix].column;
            out.sort_by(|a, b| a[col].cmp(&b[col]).then_with(|| a[t.pk].cmp(&b[t.pk])));
        }
    }
    Ok(out)
}

/// A transaction's version of one row: `None` when it deleted it.
type OverlayEntry<'a> = (&'a Key, &'a Option<Row>);

const FIRST_BATCH: usize = 32;
const MAX_BATCH: usize = 1024;

/// An iterator over rows in primary-key order.
///
/// It copies no table: it takes the table's read lock for one batch of rows at a time (`Arc`
/// clones) and resumes after the last key it returned. Between batches it holds no lock, so an
/// iterator kept alive by a slow consumer never blocks a commit. That gives the same answer as
/// holding the lock throughout, because nothing writes a table while a transaction that reads
/// it runs (the scheduler's guarantee) or while a [`ReadView`] is open (the store's gate).
/// The transaction's own writes are merged in key order.
pub struct Scan<'a> {
    table: Arc<Table>,
    lower: Bound<Value>,
    upper: Bound<Value>,
    batch: std::vec::IntoIter<Row>,
    batch_size: usize,
    done: bool,
    head: Option<Row>,
    overlay: Option<Peekable<std::vec::IntoIter<OverlayEntry<'a>>>>,
}

impl<'a> Scan<'a> {
    pub(crate) fn new(
        table: Arc<Table>,
        ov: Option<&'a Overlay>,
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
        }
    }

    fn next_committed(&mut self) -> Option<Row> {
        if let Some(row) = self.batch.next() {
            return Some(row);
        }
        if self.done {
            return None;
        }
        let mut rows = Vec::with_capacity(self.batch_size);
        self.table
            .data
            .read()
            .batch(&self.lower, &self.upper, self.batch_size, &mut rows);
        if rows.len() < self.batch_size {
            self.done = true;
        }
        self.batch_size = (self.batch_size * 2).min(MAX_BATCH);
        if let Some(last) = rows.last() {
            self.lower = Bound::Excluded(last[self.table.pk].clone());
        }
        self.batch = rows.into_iter();
        self.batch.next()
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

/// A consistent view of the committed state: no transaction is half-applied in it.
///
/// Commits wait while a view is open (it holds the store's gate shared), so keep views short,
/// and never apply or commit on a thread that holds one: that thread would wait for itself.
pub struct ReadView<'s> {
    pub(crate) store: &'s Inner,
    pub(crate) _gate: RwLockReadGuard<'s, ()>,
}

impl<'s> ReadView<'s> {
    fn table(&self, table: TableId) -> Result<Arc<Table>> {
        self.store.table(table)
    }

    /// Locks one table for reading, for many fast lookups without a lock per lookup.
    pub fn table_ref(&self, table: TableId) -> Result<TableRef<'_>> {
        let t = self.table(table)?;
        let guard = t.data.read_arc();
        Ok(TableRef {
            table: t,
            guard,
            _view: std::marker::PhantomData,
        })
    }

    /// The row with primary key `pk`.
    pub fn get(&self, table: TableId, pk: &Value) -> Result<Option<Row>> {
        Ok(self.table(table)?.data.read().get(pk).cloned())
    }

    /// Rows whose indexed `column` equals `key`, in primary-key order.
    pub fn find(&self, table: TableId, column: &str, key: &Value) -> Result<Vec<Row>> {
        find(&*self.table(table)?, None, column, key)
    }

    /// Rows whose btree-indexed `column` lies in `range`, ordered by (column, primary key).
    pub fn index_range(
        &self,
        table: TableId,
        column: &str,
        range: impl RangeBounds<Value>,
    ) -> Result<Vec<Row>> {
        index_range(
            &self.table(table)?,
            None,
            column,
            range.start_bound().cloned(),
            range.end_bound().cloned(),
        )
    }

    /// Every row in primary-key order.
    pub fn scan(&self, table: TableId) -> Result<Scan<'_>> {
        self.range(table, ..)
    }

    /// Rows whose primary key lies in `range`, in primary-key order.
    pub fn range(&self, table: TableId, range: impl RangeBounds<Value>) -> Result<Scan<'_>> {
        Ok(Scan::new(
            self.table(table)?,
            None,
            range.start_bound().cloned(),
            range.end_bound().cloned(),
        ))
    }

    /// The number of rows.
    pub fn len(&self, table: TableId) -> Result<usize> {
        Ok(self.table(table)?.data.read().len())
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
