//! Tables as a module sees them: the [`Table`] trait that `#[table]` implements, and the
//! handles through which reducers and queries read and write rows.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use interstice_abi::host::ErrorCode;
use interstice_abi::{IntersticeType, TableSchema, from_bytes};

use crate::host_calls::{status, with_encoded, with_result};
use crate::{Error, Result, sys};

/// A struct marked `#[table]`: its rows, its name and its schema. Implemented by the macro.
pub trait Table: IntersticeType {
    /// The table's name: the struct name in lowercase unless `#[table(name = "...")]`.
    const NAME: &'static str;
    /// The column names, in declaration order.
    const COLUMNS: &'static [&'static str];
    /// The type of the `#[primary_key]` column.
    type Key: IntersticeType;

    /// The primary key of this row.
    fn key(&self) -> &Self::Key;

    /// The schema the module exports for this table.
    fn schema() -> TableSchema;
}

/// What a table handle may do. [`ReadWrite`] handles (reducers) have every method,
/// [`ReadOnly`] ones (queries) only the reading ones: `insert` on a query's handle does not
/// compile.
pub trait AccessMode: sealed::Sealed {}

/// The access of a reducer: read and write.
#[derive(Debug)]
pub enum ReadWrite {}

/// The access of a query: read only.
#[derive(Debug)]
pub enum ReadOnly {}

impl AccessMode for ReadWrite {}
impl AccessMode for ReadOnly {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::ReadWrite {}
    impl Sealed for super::ReadOnly {}
}

/// Something that opens table handles: [`Tables`] and [`Current`](crate::Current).
///
/// Every `#[table]` generates an extension trait named like the table (`greetings`) with one
/// method, implemented for every `TableAccess`, so `ctx.current.tables.greetings()` (and
/// `ctx.current.greetings()`) work wherever that trait is in scope.
pub trait TableAccess {
    type Mode: AccessMode;

    /// The handle of table `T` of this module.
    fn table<T: Table>(&self) -> TableHandle<T, Self::Mode>;
}

/// The tables of the current module, as one invocation sees them.
///
/// The host hands out a table handle per invocation; this caches it, so asking for the same
/// table twice costs one host call.
pub struct Tables<M = ReadWrite> {
    handles: RefCell<Vec<(&'static str, Result<i32>)>>,
    mode: PhantomData<M>,
}

impl<M> Tables<M> {
    pub(crate) fn new() -> Self {
        Tables {
            handles: RefCell::new(Vec::new()),
            mode: PhantomData,
        }
    }

    fn handle(&self, name: &'static str) -> Result<i32> {
        // Names are each table's `NAME` constant, so the same table comes back with the same
        // pointer: compared first, it spares comparing the bytes on every access.
        let same = |n: &&str| std::ptr::eq(*n, name) || *n == name;
        if let Some((_, id)) = self.handles.borrow().iter().find(|(n, _)| same(n)) {
            return id.clone();
        }
        // SAFETY: the pointer and length describe `name`, alive for the call.
        let ret = unsafe { sys::host_table(sys::ptr(name.as_ptr()), sys::len(name.len())) };
        let id = status(ret.into()).map(|id| id as i32);
        self.handles.borrow_mut().push((name, id.clone()));
        id
    }
}

impl<M: AccessMode> TableAccess for Tables<M> {
    type Mode = M;

    fn table<T: Table>(&self) -> TableHandle<T, M> {
        TableHandle {
            id: self.handle(T::NAME),
            marker: PhantomData,
        }
    }
}

impl<M> std::fmt::Debug for Tables<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tables").finish_non_exhaustive()
    }
}

/// One table of the current module, typed by its row.
///
/// Keys are passed as `impl Borrow<Key>`, so both `get(5)` and `get(&id)` work. Every method
/// is one host call (`scan` one per batch of rows).
pub struct TableHandle<T, M = ReadWrite> {
    id: Result<i32>,
    marker: PhantomData<(fn() -> T, M)>,
}

impl<T, M> std::fmt::Debug for TableHandle<T, M>
where
    T: Table,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableHandle")
            .field("table", &T::NAME)
            .finish_non_exhaustive()
    }
}

impl<T: Table> TableHandle<T, ReadOnly> {
    /// A read-only handle on table `name` (`module.table`) of another module on this node.
    pub(crate) fn foreign(name: &str) -> Self {
        // SAFETY: the pointer and length describe `name`, alive for the call.
        let ret = unsafe { sys::host_table(sys::ptr(name.as_ptr()), sys::len(name.len())) };
        TableHandle {
            id: status(ret.into()).map(|id| id as i32),
            marker: PhantomData,
        }
    }
}

/// Rows of one batch of `scan`.
const SCAN_BATCH: i32 = 128;

impl<T: Table, M> TableHandle<T, M> {
    /// The table's name.
    pub fn name(&self) -> &'static str {
        T::NAME
    }

    fn id(&self) -> Result<i32> {
        self.id.clone()
    }

    /// The row with primary key `key`, if any.
    ///
    /// On a table the reducer holds only partitions of (`reads(cells[region])`), the row must
    /// be in one of them: a key that reaches no row there fails the call, the same way as a
    /// row of another partition, since another reducer may be changing that row meanwhile.
    pub fn get(&self, key: impl Borrow<T::Key>) -> Result<Option<T>> {
        let id = self.id()?;
        // SAFETY: the pointer and length describe `key`, alive for the call.
        let ret = with_encoded(key.borrow(), |key| unsafe {
            sys::host_get(id, sys::ptr(key.as_ptr()), sys::len(key.len()))
        });
        with_result(ret, decode_rows::<_>(T::NAME))
    }

    /// The number of rows.
    pub fn count(&self) -> Result<u64> {
        let id = self.id()?;
        // SAFETY: plain integers.
        status(unsafe { sys::host_count(id) })
    }

    /// Every row in primary-key order, fetched from the host in batches as the iterator
    /// advances (never the whole table at once).
    ///
    /// A host error in the middle of a scan fails the invocation (the reducer traps with the
    /// error as its reason); use [`try_scan`](Self::try_scan) to handle it instead.
    pub fn scan(&self) -> Scan<T> {
        Scan(self.try_scan())
    }

    /// Like [`scan`](Self::scan), yielding the host's errors instead of failing.
    pub fn try_scan(&self) -> TryScan<T> {
        let cursor = self.id().and_then(|id| {
            // SAFETY: a plain integer.
            status(unsafe { sys::host_scan(id) }.into()).map(|c| c as i32)
        });
        TryScan {
            cursor: Some(cursor),
            batch: Vec::new().into_iter(),
        }
    }

    /// Rows whose primary key lies in `range`, in key order.
    pub fn range(&self, range: impl RangeBounds<T::Key>) -> Result<Vec<T>> {
        self.range_column(-1, range)
    }

    /// Rows whose indexed column `column` equals `key`. Prefer the generated
    /// `find_by_<column>` methods, which know the column's type.
    pub fn lookup<K: IntersticeType>(&self, column: &str, key: &K) -> Result<Vec<T>> {
        self.lookup_column(column_index::<T>(column)?, key)
    }

    #[doc(hidden)]
    pub fn lookup_column<K: IntersticeType>(&self, column: i32, key: &K) -> Result<Vec<T>> {
        let id = self.id()?;
        // SAFETY: the pointer and length describe `key`, alive for the call.
        let ret = with_encoded(key, |key| unsafe {
            sys::host_lookup(id, column, sys::ptr(key.as_ptr()), sys::len(key.len()))
        });
        with_result(ret, decode_rows::<_>(T::NAME))
    }

    #[doc(hidden)]
    pub fn lookup_unique_column<K: IntersticeType>(
        &self,
        column: i32,
        key: &K,
    ) -> Result<Option<T>> {
        Ok(self.lookup_column(column, key)?.into_iter().next())
    }

    /// Rows whose btree-indexed column `column` lies in `range`, in key order.
    #[doc(hidden)]
    pub fn range_column<K: IntersticeType>(
        &self,
        column: i32,
        range: impl RangeBounds<K>,
    ) -> Result<Vec<T>> {
        let range = encode_range(&range);
        let id = self.id()?;
        // SAFETY: the pointer and length describe `range`, alive for the call.
        let ret =
            unsafe { sys::host_range(id, column, sys::ptr(range.as_ptr()), sys::len(range.len())) };
        with_result(ret, decode_rows::<_>(T::NAME))
    }
}

impl<T: Table> TableHandle<T, ReadWrite> {
    /// Inserts `row` and returns it as stored: `auto_inc` columns given as `0` hold their
    /// generated values.
    pub fn insert(&self, row: T) -> Result<T> {
        // SAFETY: `write` passes a pointer and length describing live bytes.
        self.write(|t, p, l| unsafe { sys::host_insert(t, p, l) }, &row)
    }

    /// Replaces the row with the same primary key. On a table held by partitions, both rows
    /// must be in partitions the reducer writes (see [`get`](Self::get)). The old row is not
    /// handed back, which spares copying and decoding it (a tenth of a simulation step's
    /// work); [`replace`](Self::replace) returns it. Takes the row or a reference to it, so
    /// that a reducer writing many rows can fill and write one row again and again.
    pub fn update(&self, row: impl Borrow<T>) -> Result<()> {
        // SAFETY: `call` passes a pointer and length describing live bytes. The result buffer
        // (the old row) is left unread; the next host call overwrites it.
        let ret = self.call(|t, p, l| unsafe { sys::host_update(t, p, l) }, row.borrow())?;
        status(ret).map(drop)
    }

    /// Replaces the row with the same primary key, as [`update`](Self::update) does, and
    /// returns the old one (as `std::mem::replace` returns the old value).
    pub fn replace(&self, row: T) -> Result<T> {
        // SAFETY: `write` passes a pointer and length describing live bytes.
        self.write(|t, p, l| unsafe { sys::host_update(t, p, l) }, &row)
    }

    /// Deletes the row with primary key `key` and returns it.
    pub fn delete(&self, key: impl Borrow<T::Key>) -> Result<T> {
        // SAFETY: `write` passes a pointer and length describing live bytes.
        self.write(|t, p, l| unsafe { sys::host_delete(t, p, l) }, key.borrow())
    }

    /// Deletes every row; returns how many there were.
    pub fn clear(&self) -> Result<u64> {
        let id = self.id()?;
        // SAFETY: a plain integer.
        status(unsafe { sys::host_clear(id) })
    }

    fn write<V: IntersticeType>(
        &self,
        call: impl FnOnce(i32, i32, i32) -> i64,
        value: &V,
    ) -> Result<T> {
        with_result(self.call(call, value)?, decode_rows::<_>(T::NAME))
    }

    /// Encodes `value` and hands it to the host call `call` with this table's handle; returns
    /// what the call returned.
    fn call<V: IntersticeType>(
        &self,
        call: impl FnOnce(i32, i32, i32) -> i64,
        value: &V,
    ) -> Result<i64> {
        let id = self.id()?;
        Ok(with_encoded(value, |bytes| {
            call(id, sys::ptr(bytes.as_ptr()), sys::len(bytes.len()))
        }))
    }
}

fn column_index<T: Table>(column: &str) -> Result<i32> {
    T::COLUMNS
        .iter()
        .position(|c| *c == column)
        .map(|i| i as i32)
        .ok_or_else(|| {
            Error::new(
                ErrorCode::NotFound,
                format!(
                    "table `{}` has no column `{column}`; its columns are {}",
                    T::NAME,
                    T::COLUMNS.join(", ")
                ),
            )
        })
}

/// Decodes what the host returned for table `table`; bytes that do not fit are reported as an
/// error, never a panic.
fn decode_rows<R: IntersticeType>(table: &str) -> impl FnOnce(&[u8]) -> Result<R> + '_ {
    move |bytes| {
        from_bytes(bytes).map_err(|e| {
        Error::new(
            ErrorCode::BadInput,
            format!(
                "the host returned bytes that are not rows of table `{table}` as this module defines them: {e}"
            ),
        )
    })
    }
}

/// The bytes of an `interstice_abi::host::KeyRange`: per bound a tag (`0` unbounded,
/// `1` included, `2` excluded) and the key.
pub(crate) fn encode_range<K: IntersticeType>(range: &impl RangeBounds<K>) -> Vec<u8> {
    let mut out = Vec::new();
    for bound in [range.start_bound(), range.end_bound()] {
        match bound {
            Bound::Unbounded => out.push(0),
            Bound::Included(k) => {
                out.push(1);
                k.encode(&mut out);
            }
            Bound::Excluded(k) => {
                out.push(2);
                k.encode(&mut out);
            }
        }
    }
    out
}

/// The rows of a table, batch by batch; see [`TableHandle::try_scan`].
pub struct TryScan<T> {
    /// `None` once the scan is over (finished or failed).
    cursor: Option<Result<i32>>,
    batch: std::vec::IntoIter<T>,
}

impl<T: Table> Iterator for TryScan<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(row) = self.batch.next() {
                return Some(Ok(row));
            }
            let cursor = match self.cursor.take()? {
                Ok(cursor) => cursor,
                Err(e) => return Some(Err(e)),
            };
            // SAFETY: plain integers.
            let ret = unsafe { sys::host_next(cursor, SCAN_BATCH) };
            let rows: Vec<T> = match with_result(ret, decode_rows(T::NAME)) {
                Ok(rows) => rows,
                Err(e) => return Some(Err(e)),
            };
            if rows.is_empty() {
                return None;
            }
            self.cursor = Some(Ok(cursor));
            self.batch = rows.into_iter();
        }
    }
}

/// The rows of a table, batch by batch; see [`TableHandle::scan`].
pub struct Scan<T>(TryScan<T>);

impl<T: Table> Iterator for Scan<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self.0.next()? {
            Ok(row) => Some(row),
            // Deliberate: a scan that cannot continue leaves the invocation without a
            // consistent answer, and failing it commits nothing (ARCHITECTURE.md, rule D4).
            Err(e) => panic!("scan of table `{}` failed: {e}", T::NAME),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use interstice_abi::host::{Bound as AbiBound, KeyRange};
    use interstice_abi::{Type, TypeRegistry, Value};

    #[test]
    fn ranges_encode_like_the_abi_key_range() {
        let abi = |start, end| KeyRange { start, end }.encode();
        assert_eq!(
            encode_range(&(3i64..10)),
            abi(
                AbiBound::Included(Value::I64(3)),
                AbiBound::Excluded(Value::I64(10))
            )
        );
        assert_eq!(
            encode_range(&(..="m".to_owned())),
            abi(AbiBound::Unbounded, AbiBound::Included(Value::from("m")))
        );
        assert_eq!(
            encode_range::<u64>(&(..)),
            abi(AbiBound::Unbounded, AbiBound::Unbounded)
        );
        let bytes = encode_range(&(5u32..));
        let back = KeyRange::decode(&bytes, &Type::U32, &TypeRegistry::default()).unwrap();
        assert_eq!(back.start, AbiBound::Included(Value::U32(5)));
    }
}
