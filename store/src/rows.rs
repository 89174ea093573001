//! The two structures holding a table's committed rows: by primary key (hash) and in primary-key
//! order. Both store only the row: its key is read from the row's primary-key column, so no key
//! is kept or cloned twice.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::ops::Bound;

use hashbrown::HashTable;
use interstice_abi::{Type, Value};

use crate::table::{Key, Row};

/// The integer type of a primary key, whose values the hash table keeps inline.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IntKey {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
}

impl IntKey {
    fn of(ty: &Type) -> Option<Self> {
        Some(match ty {
            Type::U8 => IntKey::U8,
            Type::U16 => IntKey::U16,
            Type::U32 => IntKey::U32,
            Type::U64 => IntKey::U64,
            Type::I8 => IntKey::I8,
            Type::I16 => IntKey::I16,
            Type::I32 => IntKey::I32,
            Type::I64 => IntKey::I64,
            _ => return None,
        })
    }

    /// The value's bits, when it is of this type (a key of another type matches no row).
    #[inline]
    fn bits(self, v: &Value) -> Option<u64> {
        Some(match (self, v) {
            (IntKey::U64, Value::U64(x)) => *x,
            (IntKey::I64, Value::I64(x)) => *x as u64,
            (IntKey::U32, Value::U32(x)) => u64::from(*x),
            (IntKey::I32, Value::I32(x)) => i64::from(*x) as u64,
            (IntKey::U16, Value::U16(x)) => u64::from(*x),
            (IntKey::I16, Value::I16(x)) => i64::from(*x) as u64,
            (IntKey::U8, Value::U8(x)) => u64::from(*x),
            (IntKey::I8, Value::I8(x)) => i64::from(*x) as u64,
            _ => return None,
        })
    }
}

/// Rows by primary key. Each row sits with a tag: for an integer key, the key itself (compared
/// without reading the row, and rehashed without it); otherwise the key's hash (growing never
/// reads a row; a lookup reads only rows whose hash matches).
pub(crate) struct PkIndex {
    rows: HashTable<(u64, Row)>,
    hasher: foldhash::fast::RandomState,
    pk: usize,
    int: Option<IntKey>,
}

impl PkIndex {
    pub fn new(pk: usize, ty: &Type) -> Self {
        PkIndex {
            rows: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            pk,
            int: IntKey::of(ty),
        }
    }

    /// (hash, tag) of `key`; `None` when no row can have it.
    #[inline]
    fn tag(&self, key: &Value) -> Option<(u64, u64)> {
        match self.int {
            Some(int) => {
                let bits = int.bits(key)?;
                Some((self.hasher.hash_one(bits), bits))
            }
            None => {
                let hash = self.hasher.hash_one(Key::from_ref(key));
                Some((hash, hash))
            }
        }
    }

    /// Whether the slot `(tag, row)` holds `key`, whose tag is `tag`.
    #[inline]
    fn holds(&self, slot: &(u64, Row), tag: u64, key: &Value) -> bool {
        slot.0 == tag
            && (self.int.is_some() || Key::from_ref(&slot.1[self.pk]) == Key::from_ref(key))
    }

    #[inline]
    pub fn get(&self, key: &Value) -> Option<&Row> {
        let (hash, tag) = self.tag(key)?;
        self.rows
            .find(hash, |slot| self.holds(slot, tag, key))
            .map(|(_, r)| r)
    }

    pub fn contains(&self, key: &Value) -> bool {
        self.get(key).is_some()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Room for `additional` more rows without growing on the way.
    pub fn reserve(&mut self, additional: usize) {
        let (int, hasher) = (self.int, &self.hasher);
        self.rows
            .reserve(additional, |(t, _)| rehash(int, hasher, *t));
    }

    /// Adds a row whose key is absent; false (and nothing changes) when it is present.
    pub fn insert(&mut self, row: Row) -> bool {
        let Some((hash, tag)) = self.tag(&row[self.pk]) else {
            return false;
        };
        let (pk, int, hasher) = (self.pk, self.int, &self.hasher);
        let entry = self.rows.entry(
            hash,
            |(t, r)| {
                *t == tag && (int.is_some() || Key::from_ref(&r[pk]) == Key::from_ref(&row[pk]))
            },
            |(t, _)| rehash(int, hasher, *t),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert((tag, row));
                true
            }
        }
    }

    /// Replaces the row with the same key; returns the old one (`None`: absent, no change).
    pub fn replace(&mut self, row: Row) -> Option<Row> {
        let (hash, tag) = self.tag(&row[self.pk])?;
        let (pk, int) = (self.pk, self.int);
        let (_, slot) = self.rows.find_mut(hash, |(t, r)| {
            *t == tag && (int.is_some() || Key::from_ref(&r[pk]) == Key::from_ref(&row[pk]))
        })?;
        Some(std::mem::replace(slot, row))
    }

    pub fn remove(&mut self, key: &Value) -> Option<Row> {
        let (hash, tag) = self.tag(key)?;
        let (pk, int) = (self.pk, self.int);
        match self.rows.find_entry(hash, |(t, r)| {
            *t == tag && (int.is_some() || Key::from_ref(&r[pk]) == Key::from_ref(key))
        }) {
            Ok(entry) => Some(entry.remove().0.1),
            Err(_) => None,
        }
    }

    pub fn clear(&mut self) {
        self.rows.clear();
    }
}

/// The hash of a slot from its tag alone.
#[inline]
fn rehash(int: Option<IntKey>, hasher: &foldhash::fast::RandomState, tag: u64) -> u64 {
    match int {
        Some(_) => hasher.hash_one(tag),
        None => tag,
    }
}

/// A transaction's writes to one table by primary key: the row as the transaction left it, or,
/// for a key it deleted, the row it deleted (kept for its key). No key is stored apart from its
/// row; each slot keeps its hash, so growing never reads a row again.
pub(crate) struct OverlayRows {
    /// (hash, row, present): `present == false` marks a deletion.
    slots: HashTable<(u64, Row, bool)>,
    hasher: foldhash::fast::RandomState,
    pk: usize,
}

impl OverlayRows {
    pub fn new(pk: usize) -> Self {
        OverlayRows {
            slots: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            pk,
        }
    }

    #[inline]
    pub fn hash(&self, key: &Value) -> u64 {
        self.hasher.hash_one(Key::from_ref(key))
    }

    /// The transaction's state of `key` (`hash` is [`hash`](Self::hash)`(key)`): `None` when
    /// it did not touch it, `Some(None)` when it deleted it.
    #[inline]
    pub fn get_hashed(&self, hash: u64, key: &Value) -> Option<Option<&Row>> {
        let pk = self.pk;
        self.slots
            .find(hash, |(h, r, _)| {
                *h == hash && Key::from_ref(&r[pk]) == Key::from_ref(key)
            })
            .map(|(_, r, present)| present.then_some(r))
    }

    #[inline]
    pub fn get(&self, key: &Value) -> Option<Option<&Row>> {
        self.get_hashed(self.hash(key), key)
    }

    pub fn contains(&self, key: &Value) -> bool {
        self.get(key).is_some()
    }

    /// Records the state of `row`'s key: present with this row, or deleted (`row` is then the
    /// row deleted).
    pub fn set_hashed(&mut self, hash: u64, row: Row, present: bool) {
        let pk = self.pk;
        match self.slots.entry(
            hash,
            |(h, r, _)| *h == hash && Key::from_ref(&r[pk]) == Key::from_ref(&row[pk]),
            |(h, _, _)| *h,
        ) {
            hashbrown::hash_table::Entry::Occupied(mut slot) => {
                *slot.get_mut() = (hash, row, present);
            }
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert((hash, row, present));
            }
        }
    }

    pub fn set(&mut self, row: Row, present: bool) {
        self.set_hashed(self.hash(&row[self.pk]), row, present);
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Every key the transaction touched, with its state (`None`: deleted), in no order.
    pub fn iter(&self) -> impl Iterator<Item = (&Key, Option<&Row>)> {
        let pk = self.pk;
        self.slots
            .iter()
            .map(move |(_, r, present)| (Key::from_ref(&r[pk]), present.then_some(r)))
    }
}

/// Chunks hold at most this many rows; an append to a full last chunk starts a new one, an
/// insert into a full chunk elsewhere splits it.
const CHUNK_MAX: usize = 512;
/// A chunk this small after a removal merges with its successor when both fit in one.
const CHUNK_MIN: usize = CHUNK_MAX / 4;

/// Rows in primary-key order: sorted chunks of rows, with the last key of every chunk but the
/// last alongside for binary search. Appending a key above every other (auto_inc ids, replay)
/// is a `push`; other inserts and removals shift at most half a chunk. Scans walk the chunks.
pub(crate) struct Ordered {
    pk: usize,
    /// Non-empty, each sorted; every key of a chunk is below every key of the next. Deques, so
    /// removing the oldest rows (queues, expiring data) shifts nothing.
    chunks: Vec<VecDeque<Row>>,
    /// The last key of each chunk but the last (whose last row says it).
    maxes: Vec<Key>,
    len: usize,
}

impl Ordered {
    pub fn new(pk: usize) -> Self {
        Ordered {
            pk,
            chunks: Vec::new(),
            maxes: Vec::new(),
            len: 0,
        }
    }

    #[inline]
    fn key<'r>(&self, row: &'r Row) -> &'r Key {
        Key::from_ref(&row[self.pk])
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// The chunk that holds `key` or would (the caller checked there is one), and the position
    /// in it.
    fn locate(&self, key: &Key) -> (usize, Result<usize, usize>) {
        let ci = self.maxes.partition_point(|m| m < key);
        let pos = self.chunks[ci].binary_search_by(|r| self.key(r).cmp(key));
        (ci, pos)
    }

    /// Adds a row whose key is absent; false (and nothing changes) when it is present.
    pub fn insert(&mut self, row: Row) -> bool {
        let key = Key::from_ref(&row[self.pk]);
        let last = self.chunks.last().and_then(|c| c.back());
        match last {
            None => self.chunks.push(VecDeque::from([row])),
            Some(max) if key > self.key(max) => {
                let n = self.chunks.len();
                if self.chunks[n - 1].len() >= CHUNK_MAX {
                    let max = self.key(max).clone();
                    self.maxes.push(max);
                    let mut chunk = VecDeque::with_capacity(CHUNK_MAX);
                    chunk.push_back(row);
                    self.chunks.push(chunk);
                } else {
                    self.chunks[n - 1].push_back(row);
                }
            }
            Some(_) => {
                let (ci, pos) = self.locate(key);
                let Err(pos) = pos else {
                    return false;
                };
                // The key is below the chunk's last, so its max stays.
                self.chunks[ci].insert(pos, row);
                if self.chunks[ci].len() > CHUNK_MAX {
                    let tail = self.chunks[ci].split_off(CHUNK_MAX / 2);
                    if let Some(last) = self.chunks[ci].back() {
                        let max = self.key(last).clone();
                        self.maxes.insert(ci, max);
                    }
                    self.chunks.insert(ci + 1, tail);
                }
            }
        }
        self.len += 1;
        true
    }

    /// Replaces the row with the same key; returns the old one (`None`: absent, no change).
    pub fn replace(&mut self, row: Row) -> Option<Row> {
        if self.chunks.is_empty() {
            return None;
        }
        let (ci, pos) = self.locate(Key::from_ref(&row[self.pk]));
        let pos = pos.ok()?;
        Some(std::mem::replace(&mut self.chunks[ci][pos], row))
    }

    pub fn remove(&mut self, key: &Value) -> Option<Row> {
        if self.chunks.is_empty() {
            return None;
        }
        let (ci, pos) = self.locate(Key::from_ref(key));
        let pos = pos.ok()?;
        let row = self.chunks[ci].remove(pos)?;
        self.len -= 1;
        let has_max = ci < self.maxes.len();
        let len = self.chunks[ci].len();
        if len == 0 {
            self.chunks.remove(ci);
            // The chunk's max goes; for the last chunk, the previous one's max becomes implied.
            if has_max {
                self.maxes.remove(ci);
            } else {
                self.maxes.pop();
            }
            return Some(row);
        }
        if pos == len
            && has_max
            && let Some(last) = self.chunks[ci].back()
        {
            self.maxes[ci] = self.key(last).clone();
        }
        if len < CHUNK_MIN
            && self
                .chunks
                .get(ci + 1)
                .is_some_and(|next| len + next.len() <= CHUNK_MAX)
        {
            let next = self.chunks.remove(ci + 1);
            self.chunks[ci].extend(next);
            // The merged chunk's max is the next one's (or implied, if it was the last).
            self.maxes.remove(ci);
        }
        Some(row)
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.maxes.clear();
        self.len = 0;
    }

    /// Every row in key order.
    pub fn values(&self) -> impl Iterator<Item = &Row> {
        self.chunks.iter().flatten()
    }

    /// Rows with keys within bounds, in key order.
    pub fn range<'a>(&'a self, lower: Bound<&Key>, upper: Bound<&'a Key>) -> Range<'a> {
        let (chunk, pos) = match lower {
            _ if self.chunks.is_empty() => (0, 0),
            Bound::Unbounded => (0, 0),
            Bound::Included(k) => match self.locate(k) {
                (ci, Ok(p) | Err(p)) => (ci, p),
            },
            Bound::Excluded(k) => match self.locate(k) {
                (ci, Ok(p)) => (ci, p + 1),
                (ci, Err(p)) => (ci, p),
            },
        };
        Range {
            rows: self,
            chunk,
            pos,
            upper,
        }
    }
}

/// An iterator over a key range of [`Ordered`].
pub(crate) struct Range<'a> {
    rows: &'a Ordered,
    chunk: usize,
    pos: usize,
    upper: Bound<&'a Key>,
}

impl<'a> Iterator for Range<'a> {
    type Item = &'a Row;

    fn next(&mut self) -> Option<&'a Row> {
        let chunks = &self.rows.chunks;
        while self.chunk < chunks.len() && self.pos >= chunks[self.chunk].len() {
            self.chunk += 1;
            self.pos = 0;
        }
        let row = chunks.get(self.chunk)?.get(self.pos)?;
        let key = self.rows.key(row);
        let within = match self.upper {
            Bound::Unbounded => true,
            Bound::Included(u) => key <= u,
            Bound::Excluded(u) => key < u,
        };
        if !within {
            self.chunk = chunks.len();
            return None;
        }
        self.pos += 1;
        Some(row)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;

    /// Random inserts, replaces and removes against a `BTreeMap`, with range checks; enough
    /// rows to split and merge chunks many times. Integer keys (kept inline by `PkIndex`) and
    /// string keys (compared through the row), ordered alike (zero-padded).
    fn check_against_a_btreemap(ty: Type, key: fn(u64) -> Value) {
        let row = |k: u64, v: u64| -> Row { Arc::from(vec![key(k), Value::U64(v)]) };
        let mut model: BTreeMap<u64, u64> = BTreeMap::new();
        let mut ordered = Ordered::new(0);
        let mut by_pk = PkIndex::new(0, &ty);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for step in 0..40_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Appends early on, then random keys, then mostly removals of the oldest.
            let k = match step {
                0..5_000 => step * 2,
                5_000..30_000 => x % 8_000,
                _ => model.keys().next().copied().unwrap_or(0),
            };
            let op = if step >= 30_000 { 6 } else { x % 7 };
            match op {
                0..=3 => {
                    let fresh = !model.contains_key(&k);
                    assert_eq!(ordered.insert(row(k, step)), fresh);
                    assert_eq!(by_pk.insert(row(k, step)), fresh);
                    model.entry(k).or_insert(step);
                }
                4 => {
                    let had = model.contains_key(&k);
                    assert_eq!(ordered.replace(row(k, step)).is_some(), had);
                    assert_eq!(by_pk.replace(row(k, step)).is_some(), had);
                    if had {
                        model.insert(k, step);
                    }
                }
                _ => {
                    let had = model.remove(&k).is_some();
                    assert_eq!(ordered.remove(&key(k)).is_some(), had);
                    assert_eq!(by_pk.remove(&key(k)).is_some(), had);
                }
            }
            assert_eq!(ordered.len(), model.len());
            assert_eq!(by_pk.len(), model.len());
            if step % 997 == 0 {
                let all: Vec<Value> = ordered.values().map(|r| r[0].clone()).collect();
                let want: Vec<Value> = model.keys().map(|&k| key(k)).collect();
                assert_eq!(all, want);
                for (&k, &v) in &model {
                    let got = by_pk.get(&key(k)).map(|r| r[1].clone());
                    assert_eq!(got, Some(Value::U64(v)));
                }
                assert!(by_pk.get(&Value::Bool(true)).is_none());
                let (lo, hi) = (Key(key(x % 8_000)), Key(key(x % 8_000 + 700)));
                for (lower, upper) in [
                    (Bound::Included(&lo), Bound::Excluded(&hi)),
                    (Bound::Excluded(&lo), Bound::Included(&hi)),
                    (Bound::Unbounded, Bound::Excluded(&lo)),
                    (Bound::Excluded(&hi), Bound::Unbounded),
                ] {
                    let got: Vec<Value> =
                        ordered.range(lower, upper).map(|r| r[0].clone()).collect();
                    let bounds = (lower.map(|k| k.0.clone()), upper.map(|k| k.0.clone()));
                    let want: Vec<Value> = model
                        .keys()
                        .map(|&k| key(k))
                        .filter(|k| std::ops::RangeBounds::contains(&bounds, k))
                        .collect();
                    assert_eq!(got, want, "{lower:?}..{upper:?}");
                }
            }
        }
    }

    #[test]
    fn integer_keys_match_a_btreemap() {
        check_against_a_btreemap(Type::U64, Value::U64);
        check_against_a_btreemap(Type::I32, |k| Value::I32(k as i32 - 4_000));
    }

    #[test]
    fn string_keys_match_a_btreemap() {
        check_against_a_btreemap(Type::String, |k| Value::String(format!("{k:08}")));
    }
}
