//! Declared table access: what an invocation may read and write, by table or by partition.

use std::fmt;

use smallvec::SmallVec;

/// Most invocations declare a handful of tables, so the lists live inline: the runtime clones
/// a reducer's access set for every call, and this keeps that clone free of allocations. Four
/// partitions cover a region and its two neighbours (a simulation's step) without one either.
type Tables = SmallVec<[ResourceId; 4]>;
type Parts = SmallVec<[(ResourceId, Part); 4]>;

/// Something tasks read and write — for the runtime, a table (`to_sched` maps the store's
/// table id to one) — numbered densely from zero. Its own name, not `TableId`: the store's
/// `TableId` is a different type with its own numbering rules.
///
/// Dense numbers let the planner keep its per-table state in a flat array instead of a map,
/// which is most of what keeps planning cheap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceId(pub u32);

impl ResourceId {
    /// The table number as an array index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// A partition of a table: a partition key value that the runtime computes from a call's
/// arguments (for `writes(cells[region])`, the value of `region`).
///
/// The scheduler only compares parts for equality; what a value means, and that a reducer
/// touches only rows of the parts it declared, is the runtime's business.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Part(pub u64);

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// The tables, and partitions of tables, an invocation declares it reads and writes.
///
/// Two invocations conflict when one writes something the other reads or writes, where a
/// whole table covers every partition of it:
///
/// | one side | other side | conflict |
/// |---|---|---|
/// | whole write of `t` | anything on `t` | yes |
/// | whole read of `t` | any write on `t` (whole or part) | yes |
/// | whole read of `t` | whole or part read of `t` | no |
/// | part `p` of `t`, one writes | part `p` of `t` | yes |
/// | part `p` of `t` | part `q ≠ p` of `t` | no |
///
/// `exclusive` conflicts with every other invocation, whatever it declares; the runtime uses
/// it for module install and removal, which change the set of tables itself.
///
/// Every list is kept sorted and free of duplicates, and nothing is listed that another entry
/// already implies (a written table is not also read; a whole-written table has no parts; a
/// whole-read table has no part reads; a written part is not also read), so two equal sets
/// compare equal whatever order they were built in.
///
/// ```
/// use interstice_scheduler::{AccessSet, Part, ResourceId};
///
/// let a = AccessSet::new().read(ResourceId(2)).write(ResourceId(1)).read(ResourceId(1));
/// assert_eq!(a.reads(), &[ResourceId(2)]);
/// assert_eq!(a.writes(), &[ResourceId(1)]);
/// assert!(a.conflicts_with(&AccessSet::new().read(ResourceId(1))));
/// assert!(!a.conflicts_with(&AccessSet::new().read(ResourceId(2))));
///
/// // Neighbouring regions of one table: disjoint writes, shared reads.
/// let cells = ResourceId(0);
/// let region = |r: u64| {
///     AccessSet::new()
///         .write_part(cells, Part(r))
///         .read_part(cells, Part(r - 1))
///         .read_part(cells, Part(r + 1))
/// };
/// assert!(!region(2).conflicts_with(&region(5)));
/// assert!(region(2).conflicts_with(&region(3)));
/// assert!(region(2).conflicts_with(&AccessSet::new().read(cells)));
/// ```
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct AccessSet {
    reads: Tables,
    writes: Tables,
    part_reads: Parts,
    part_writes: Parts,
    exclusive: bool,
}

// By hand: `SmallVec`'s own `clone` goes element by element; these are `Copy`, so a copy of
// the slice is one `memcpy` (and nothing on the heap for short lists).
impl Clone for AccessSet {
    fn clone(&self) -> Self {
        AccessSet {
            reads: SmallVec::from_slice(&self.reads),
            writes: SmallVec::from_slice(&self.writes),
            part_reads: SmallVec::from_slice(&self.part_reads),
            part_writes: SmallVec::from_slice(&self.part_writes),
            exclusive: self.exclusive,
        }
    }
}

/// Removes every entry of `table` from a list sorted by table.
fn remove_table(parts: &mut Parts, table: ResourceId) {
    let start = parts.partition_point(|&(t, _)| t < table);
    let end = parts.partition_point(|&(t, _)| t <= table);
    parts.drain(start..end);
}

fn insert_sorted<A: smallvec::Array>(list: &mut SmallVec<A>, key: A::Item)
where
    A::Item: Ord,
{
    if let Err(at) = list.binary_search(&key) {
        list.insert(at, key);
    }
}

impl AccessSet {
    /// An access set that touches nothing (conflicts only with exclusive invocations).
    pub fn new() -> Self {
        Self::default()
    }

    /// An access set that conflicts with every other invocation.
    pub fn exclusive() -> Self {
        Self {
            exclusive: true,
            ..Self::default()
        }
    }

    /// Builds an access set from lists of whole tables in any order, possibly with duplicates.
    pub fn from_tables(
        reads: impl IntoIterator<Item = ResourceId>,
        writes: impl IntoIterator<Item = ResourceId>,
    ) -> Self {
        let mut writes: Tables = writes.into_iter().collect();
        writes.sort_unstable();
        writes.dedup();
        let mut reads: Tables = reads
            .into_iter()
            .filter(|t| writes.binary_search(t).is_err())
            .collect();
        reads.sort_unstable();
        reads.dedup();
        Self {
            reads,
            writes,
            ..Self::default()
        }
    }

    /// Adds a read of the whole of `table`; a no-op if the table is already read or written.
    /// It covers (and so drops) the reads of parts of `table`.
    #[must_use]
    pub fn read(mut self, table: ResourceId) -> Self {
        if self.writes.binary_search(&table).is_err() {
            insert_sorted(&mut self.reads, table);
            remove_table(&mut self.part_reads, table);
        }
        self
    }

    /// Adds a write of the whole of `table`, which supersedes every read of it and every
    /// access to its parts.
    #[must_use]
    pub fn write(mut self, table: ResourceId) -> Self {
        if let Ok(at) = self.reads.binary_search(&table) {
            self.reads.remove(at);
        }
        remove_table(&mut self.part_reads, table);
        remove_table(&mut self.part_writes, table);
        insert_sorted(&mut self.writes, table);
        self
    }

    /// Adds a read of partition `part` of `table`; a no-op if the whole table is read or
    /// written, or the part is written.
    #[must_use]
    pub fn read_part(mut self, table: ResourceId, part: Part) -> Self {
        self.add_read_part(table, part);
        self
    }

    /// [`read_part`](Self::read_part) in place: adding many parts then moves no set around.
    pub fn add_read_part(&mut self, table: ResourceId, part: Part) {
        if self.writes.binary_search(&table).is_err()
            && self.reads.binary_search(&table).is_err()
            && self.part_writes.binary_search(&(table, part)).is_err()
        {
            insert_sorted(&mut self.part_reads, (table, part));
        }
    }

    /// Adds a write of partition `part` of `table`, which supersedes a read of that part; a
    /// no-op if the whole table is written.
    #[must_use]
    pub fn write_part(mut self, table: ResourceId, part: Part) -> Self {
        self.add_write_part(table, part);
        self
    }

    /// [`write_part`](Self::write_part) in place.
    pub fn add_write_part(&mut self, table: ResourceId, part: Part) {
        if self.writes.binary_search(&table).is_err() {
            if let Ok(at) = self.part_reads.binary_search(&(table, part)) {
                self.part_reads.remove(at);
            }
            insert_sorted(&mut self.part_writes, (table, part));
        }
    }

    /// Whole tables read and not written, sorted.
    pub fn reads(&self) -> &[ResourceId] {
        &self.reads
    }

    /// Whole tables written, sorted.
    pub fn writes(&self) -> &[ResourceId] {
        &self.writes
    }

    /// Partitions read (and not covered by a whole-table access or a write of the same part),
    /// sorted.
    pub fn part_reads(&self) -> &[(ResourceId, Part)] {
        &self.part_reads
    }

    /// Partitions written (of tables not written whole), sorted.
    pub fn part_writes(&self) -> &[(ResourceId, Part)] {
        &self.part_writes
    }

    /// Whether this invocation conflicts with every other one.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// Every declared item: table, part (`None` for the whole table), and whether it is
    /// written.
    fn items(&self) -> impl Iterator<Item = (ResourceId, Option<Part>, bool)> + '_ {
        let whole = |write| move |&t: &ResourceId| (t, None, write);
        let part = |write| move |&(t, p): &(ResourceId, Part)| (t, Some(p), write);
        self.reads
            .iter()
            .map(whole(false))
            .chain(self.writes.iter().map(whole(true)))
            .chain(self.part_reads.iter().map(part(false)))
            .chain(self.part_writes.iter().map(part(true)))
    }

    /// Whether two invocations must be ordered: one writes something the other reads or
    /// writes (a whole table overlapping each of its parts), or either is exclusive.
    ///
    /// The planner never calls this (it sweeps instead of comparing pairs); it is the
    /// definition the sweep is tested against.
    pub fn conflicts_with(&self, other: &AccessSet) -> bool {
        if self.exclusive || other.exclusive {
            return true;
        }
        self.items().any(|(t, p, w)| {
            other
                .items()
                .any(|(u, q, v)| (w || v) && t == u && (p.is_none() || q.is_none() || p == q))
        })
    }
}
