//! Committed table data: rows by primary key, pk order, secondary indexes, auto_inc counters.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::mem::Discriminant;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use interstice_abi::{IndexKind, Persistence, TableSchema, Type, TypeDef, TypeRegistry, Value};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::history::Images;
use crate::rows::{Ordered, PkIndex};

/// A row: its column values in schema order. Shared, so scans, change sets and snapshots hand
/// out rows without copying them.
pub type Row = Arc<[Value]>;

thread_local! {
    /// The values of the row being decoded on this thread, before they move into their `Row`.
    static DECODED: std::cell::RefCell<Vec<Value>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Decodes a row's encoded fields (`types` in column order) into a [`Row`] with one allocation.
/// Collecting a fallible decode into an `Arc<[Value]>` builds a `Vec` and copies it into a
/// second allocation; here the values go through a buffer kept per thread, and the `Row` is
/// allocated once at its exact size. Rows are decoded once per row a reducer writes and per
/// mutation replayed at recovery.
pub fn decode_row(
    bytes: &[u8],
    types: &[Type],
    registry: &TypeRegistry,
) -> std::result::Result<Row, interstice_abi::DecodeError> {
    DECODED.with_borrow_mut(|values| {
        values.clear();
        let decoded = interstice_abi::decode_fields_into(bytes, types, registry, values);
        // On error, what was decoded before it is dropped here.
        let row = decoded.map(|()| values.drain(..).collect());
        values.clear();
        row
    })
}

pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A primary key as stored in maps: a [`Value`] whose comparison has an inlined fast path for
/// the common key types. `Value::cmp` is a large out-of-line match; B-tree inserts and hash
/// probes call it often enough that it dominated insert profiles.
#[derive(Clone, Debug)]
#[repr(transparent)]
pub(crate) struct Key(pub Value);

impl std::hash::Hash for Key {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Equal keys are equal values of the same kind, so hashing each kind one fixed way
        // keeps `Hash` and `Eq` in agreement; the common integer keys skip `Value::hash`.
        match &self.0 {
            Value::U64(v) => state.write_u64(*v),
            Value::I64(v) => state.write_i64(*v),
            v => v.hash(state),
        }
    }
}

impl Key {
    /// Views a value as a key without cloning it (for lookups).
    pub fn from_ref(v: &Value) -> &Key {
        // SAFETY: `Key` is `repr(transparent)` over `Value`, so the layouts are identical, and
        // the returned reference borrows `v` for the same lifetime.
        unsafe { &*(v as *const Value as *const Key) }
    }
}

impl Ord for Key {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Must agree with `Value::cmp`, which it short-cuts for same-kind keys.
        match (&self.0, &other.0) {
            (Value::U64(a), Value::U64(b)) => a.cmp(b),
            (Value::I64(a), Value::I64(b)) => a.cmp(b),
            (Value::U32(a), Value::U32(b)) => a.cmp(b),
            (Value::I32(a), Value::I32(b)) => a.cmp(b),
            (Value::String(a), Value::String(b)) => a.as_bytes().cmp(b.as_bytes()),
            (a, b) => a.cmp(b),
        }
    }
}

impl PartialOrd for Key {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Key {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        // Must agree with `Key::cmp` (and so with `Value`'s equality).
        match (&self.0, &other.0) {
            (Value::U64(a), Value::U64(b)) => a == b,
            (Value::I64(a), Value::I64(b)) => a == b,
            (Value::U32(a), Value::U32(b)) => a == b,
            (Value::I32(a), Value::I32(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (a, b) => a == b,
        }
    }
}

impl Eq for Key {}

/// `(lower, upper)` as bounds over keys, for `BTreeMap::range`.
pub(crate) fn key_bounds<'a>(
    lower: &'a Bound<Value>,
    upper: &'a Bound<Value>,
) -> (Bound<&'a Key>, Bound<&'a Key>) {
    (
        lower.as_ref().map(Key::from_ref),
        upper.as_ref().map(Key::from_ref),
    )
}

/// Identifies a table for the lifetime of the store directory: ids of non-ephemeral tables are
/// recorded durably and never reused, even after a drop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableId(pub u32);

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What the catalog persists about a table: enough to decode its rows without module code.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct CatalogEntry {
    pub owner: String,
    pub schema: TableSchema,
    /// The user types the columns refer to (transitively), sorted by name.
    pub types: Vec<TypeDef>,
}

/// The user types `schema` needs, sorted by name, so two registries that agree on them compare
/// equal even when they define other, unrelated types.
pub(crate) fn type_closure(schema: &TableSchema, registry: &TypeRegistry) -> Result<Vec<TypeDef>> {
    let mut seen: BTreeMap<String, TypeDef> = BTreeMap::new();
    let mut stack: Vec<&Type> = schema.columns.iter().map(|c| &c.ty).collect();
    while let Some(ty) = stack.pop() {
        match ty {
            Type::List(inner) | Type::Option(inner) => stack.push(inner),
            Type::Named(name) if !seen.contains_key(name) => {
                let def = registry
                    .get(name)
                    .map_err(|source| StoreError::TypeMismatch {
                        table: schema.name.clone(),
                        column: String::new(),
                        source,
                    })?;
                seen.insert(name.clone(), def.clone());
                match def {
                    TypeDef::Struct { fields, .. } => stack.extend(fields.iter().map(|f| &f.ty)),
                    TypeDef::Enum { variants, .. } => {
                        stack.extend(variants.iter().flat_map(|v| v.fields.iter()).map(|f| &f.ty))
                    }
                }
            }
            _ => {}
        }
    }
    Ok(seen.into_values().collect())
}

#[derive(Debug)]
pub(crate) struct IndexDef {
    pub column: usize,
    pub kind: IndexKind,
    pub unique: bool,
}

/// A table: its immutable definition and its committed data behind a lock.
pub(crate) struct Table {
    pub id: TableId,
    /// `owner.table`.
    pub name: String,
    pub entry: CatalogEntry,
    pub schema: Arc<TableSchema>,
    pub registry: Arc<TypeRegistry>,
    pub types: Vec<Type>,
    /// Per column: the one `Value` variant a scalar type accepts.
    scalar: Vec<Option<Discriminant<Value>>>,
    pub pk: usize,
    pub indexes: Vec<IndexDef>,
    /// Whether any index is unique (inserts then check it).
    pub has_unique: bool,
    /// Positions of the auto_inc columns; `TableData::counters` is parallel to it.
    pub auto_inc: Vec<usize>,
    pub persistence: Persistence,
    pub dropped: AtomicBool,
    pub data: Arc<RwLock<TableData>>,
    /// Rows as open read transactions saw them (see `history`). Locked after `data`.
    pub images: RwLock<Images>,
}

impl Table {
    pub fn new(id: TableId, entry: CatalogEntry, registry: Arc<TypeRegistry>) -> Self {
        let schema = Arc::new(entry.schema.clone());
        // The schema was validated before it reached here, so the primary key exists.
        let pk = schema.primary_key_index().unwrap_or(0);
        let indexes: Vec<IndexDef> = schema
            .indexes
            .iter()
            .filter_map(|ix| {
                Some(IndexDef {
                    column: schema.column_index(&ix.column)?,
                    kind: ix.kind,
                    unique: ix.unique,
                })
            })
            .collect();
        let auto_inc: Vec<usize> = schema
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.auto_inc)
            .map(|(i, _)| i)
            .collect();
        let data = TableData {
            by_pk: PkIndex::new(pk, &schema.columns[pk].ty),
            order: Ordered::new(pk),
            indexes: indexes
                .iter()
                .map(|ix| match ix.kind {
                    IndexKind::Hash => IndexMap::Hash(FastMap::default()),
                    IndexKind::BTree | IndexKind::Partition => IndexMap::BTree(BTreeMap::new()),
                })
                .collect(),
            counters: vec![0; auto_inc.len()],
            version: 0,
        };
        Table {
            id,
            name: format!("{}.{}", entry.owner, schema.name),
            types: schema.columns.iter().map(|c| c.ty.clone()).collect(),
            scalar: schema
                .columns
                .iter()
                .map(|c| scalar_variant(&c.ty))
                .collect(),
            persistence: schema.persistence,
            entry,
            schema,
            registry,
            pk,
            has_unique: indexes.iter().any(|ix| ix.unique),
            indexes,
            auto_inc,
            dropped: AtomicBool::new(false),
            data: Arc::new(RwLock::new(data)),
            images: RwLock::new(Images::default()),
        }
    }

    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    pub fn column(&self, name: &str) -> Result<usize> {
        self.schema
            .column_index(name)
            .ok_or_else(|| StoreError::UnknownColumn {
                table: self.name.clone(),
                column: name.to_owned(),
            })
    }

    /// The position in `indexes` of the index on column `name`.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        let column = self.column(name)?;
        self.indexes
            .iter()
            .position(|ix| ix.column == column)
            .ok_or_else(|| StoreError::NotIndexed {
                table: self.name.clone(),
                column: name.to_owned(),
            })
    }

    /// Checks column count and types of a row supplied by a caller.
    pub fn check_row(&self, row: &[Value]) -> Result<()> {
        if row.len() != self.types.len() {
            return Err(StoreError::WrongColumnCount {
                table: self.name.clone(),
                expected: self.types.len(),
                found: row.len(),
            });
        }
        for (i, value) in row.iter().enumerate() {
            // A scalar column takes exactly one variant: comparing discriminants skips the
            // general checker (and its registry) on the hot path.
            if self.scalar[i] == Some(std::mem::discriminant(value)) {
                continue;
            }
            self.types[i]
                .check(value, &self.registry)
                .map_err(|source| StoreError::TypeMismatch {
                    table: self.name.clone(),
                    column: self.schema.columns[i].name.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    pub fn check_key(&self, key: &Value) -> Result<()> {
        self.types[self.pk]
            .check(key, &self.registry)
            .map_err(|source| StoreError::TypeMismatch {
                table: self.name.clone(),
                column: self.schema.primary_key.clone(),
                source,
            })
    }
}

/// The discriminant of the only `Value` variant a scalar type accepts.
fn scalar_variant(ty: &Type) -> Option<Discriminant<Value>> {
    let sample = match ty {
        Type::Bool => Value::Bool(false),
        Type::U8 => Value::U8(0),
        Type::U16 => Value::U16(0),
        Type::U32 => Value::U32(0),
        Type::U64 => Value::U64(0),
        Type::I8 => Value::I8(0),
        Type::I16 => Value::I16(0),
        Type::I32 => Value::I32(0),
        Type::I64 => Value::I64(0),
        Type::F32 => Value::F32(0.0),
        Type::F64 => Value::F64(0.0),
        Type::String => Value::String(String::new()),
        Type::Bytes => Value::Bytes(Vec::new()),
        Type::List(_) | Type::Option(_) | Type::Named(_) => return None,
    };
    Some(std::mem::discriminant(&sample))
}

/// The primary keys of the rows holding one index key. Almost always one.
#[derive(Clone, Debug)]
pub(crate) enum Pks {
    One(Value),
    Many(BTreeSet<Value>),
}

impl Pks {
    pub fn iter(&self) -> PksIter<'_> {
        match self {
            Pks::One(v) => PksIter::One(Some(v)),
            Pks::Many(set) => PksIter::Many(set.iter()),
        }
    }

    fn add(&mut self, pk: Value) {
        match self {
            Pks::One(v) => {
                if *v != pk {
                    let first = std::mem::replace(v, Value::Bool(false));
                    *self = Pks::Many(BTreeSet::from([first, pk]));
                }
            }
            Pks::Many(set) => {
                set.insert(pk);
            }
        }
    }

    /// Removes `pk`; true when nothing is left.
    fn remove(&mut self, pk: &Value) -> bool {
        match self {
            Pks::One(v) => v == pk,
            Pks::Many(set) => {
                set.remove(pk);
                set.is_empty()
            }
        }
    }
}

pub(crate) enum PksIter<'a> {
    One(Option<&'a Value>),
    Many(std::collections::btree_set::Iter<'a, Value>),
}

impl<'a> Iterator for PksIter<'a> {
    type Item = &'a Value;
    fn next(&mut self) -> Option<&'a Value> {
        match self {
            PksIter::One(v) => v.take(),
            PksIter::Many(it) => it.next(),
        }
    }
}

pub(crate) enum IndexMap {
    Hash(FastMap<Value, Pks>),
    BTree(BTreeMap<Value, Pks>),
}

impl IndexMap {
    pub fn get(&self, key: &Value) -> Option<&Pks> {
        match self {
            IndexMap::Hash(m) => m.get(key),
            IndexMap::BTree(m) => m.get(key),
        }
    }

    fn add(&mut self, key: Value, pk: Value) {
        let slot = match self {
            IndexMap::Hash(m) => m.entry(key),
            IndexMap::BTree(m) => {
                m.entry(key)
                    .and_modify(|p| p.add(pk.clone()))
                    .or_insert_with(|| Pks::One(pk));
                return;
            }
        };
        slot.and_modify(|p| p.add(pk.clone()))
            .or_insert_with(|| Pks::One(pk));
    }

    fn remove(&mut self, key: &Value, pk: &Value) {
        match self {
            IndexMap::Hash(m) => {
                if m.get_mut(key).is_some_and(|p| p.remove(pk)) {
                    m.remove(key);
                }
            }
            IndexMap::BTree(m) => {
                if m.get_mut(key).is_some_and(|p| p.remove(pk)) {
                    m.remove(key);
                }
            }
        }
    }

    fn clear(&mut self) {
        match self {
            IndexMap::Hash(m) => m.clear(),
            IndexMap::BTree(m) => m.clear(),
        }
    }
}

/// The committed rows of a table.
///
/// Rows live twice, as cheap `Arc` clones: by primary key for point lookups (the hot path of
/// reducers) and in primary-key order for scans, which is what makes iteration deterministic
/// whatever the history (`rows.rs`).
pub(crate) struct TableData {
    pub by_pk: PkIndex,
    pub order: Ordered,
    pub indexes: Vec<IndexMap>,
    pub counters: Vec<i128>,
    /// Bumped by every apply; lets a commit notice a concurrent writer (a scheduler bug).
    pub version: u64,
}

impl TableData {
    #[inline]
    pub fn get(&self, pk: &Value) -> Option<&Row> {
        self.by_pk.get(pk)
    }

    pub fn contains(&self, pk: &Value) -> bool {
        self.by_pk.contains(pk)
    }

    pub fn len(&self) -> usize {
        self.by_pk.len()
    }

    /// Adds a row whose key is absent. Returns false (and changes nothing) when it is present.
    pub fn insert(&mut self, table: &Table, row: Row) -> bool {
        if !self.by_pk.insert(row.clone()) {
            return false;
        }
        if !table.indexes.is_empty() {
            let pk = &row[table.pk];
            for (ix, map) in table.indexes.iter().zip(&mut self.indexes) {
                map.add(row[ix.column].clone(), pk.clone());
            }
        }
        self.raise_counters(table, &row);
        self.order.insert(row);
        true
    }

    /// Replaces the row with the same key; returns the old one, or `None` (and changes nothing)
    /// when there is none.
    pub fn replace(&mut self, table: &Table, row: Row) -> Option<Row> {
        let old = self.by_pk.replace(row.clone())?;
        let pk = &row[table.pk];
        for (ix, map) in table.indexes.iter().zip(&mut self.indexes) {
            let (before, after) = (&old[ix.column], &row[ix.column]);
            if before != after {
                map.remove(before, pk);
                map.add(after.clone(), pk.clone());
            }
        }
        self.raise_counters(table, &row);
        self.order.replace(row);
        Some(old)
    }

    pub fn remove(&mut self, table: &Table, pk: &Value) -> Option<Row> {
        let old = self.by_pk.remove(pk)?;
        self.order.remove(pk);
        for (ix, map) in table.indexes.iter().zip(&mut self.indexes) {
            map.remove(&old[ix.column], pk);
        }
        Some(old)
    }

    pub fn clear(&mut self) {
        self.by_pk.clear();
        self.order.clear();
        self.indexes.iter_mut().for_each(IndexMap::clear);
    }

    /// Keeps counters at least as high as every stored auto_inc value, so replaying rows alone
    /// already yields counters that never hand out a stored value again.
    fn raise_counters(&mut self, table: &Table, row: &[Value]) {
        for (counter, &col) in self.counters.iter_mut().zip(&table.auto_inc) {
            if let Some(v) = row[col].as_i128() {
                *counter = (*counter).max(v);
            }
        }
    }

    /// Committed rows with keys in `(lower, upper)`, at most `limit` of them, in key order.
    pub fn batch(
        &self,
        lower: &Bound<Value>,
        upper: &Bound<Value>,
        limit: usize,
        out: &mut Vec<Row>,
    ) {
        if bounds_empty(lower, upper) {
            return;
        }
        let (lower, upper) = key_bounds(lower, upper);
        out.extend(self.order.range(lower, upper).take(limit).cloned());
    }
}

/// `BTreeMap::range` panics on inverted bounds; an inverted range is simply empty here.
pub(crate) fn bounds_empty(lower: &Bound<Value>, upper: &Bound<Value>) -> bool {
    match (lower, upper) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b))
        | (Bound::Excluded(a), Bound::Excluded(b)) => a >= b,
        _ => false,
    }
}
