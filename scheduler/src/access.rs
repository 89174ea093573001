//! Declared table access: what an invocation may read and write.

use std::fmt;

/// A table, numbered densely from zero by the runtime.
///
/// Dense numbers let the planner keep its per-table state in a flat array instead of a map,
/// which is most of what keeps planning cheap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableId(pub u32);

impl TableId {
    /// The table number as an array index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// The tables an invocation declares it reads and writes.
///
/// Both lists are kept sorted and free of duplicates, and a table that is written is not also
/// listed as read (writing implies the conflicts of reading). `exclusive` conflicts with every
/// other invocation, whatever it declares; the runtime uses it for module install and removal,
/// which change the set of tables itself.
///
/// ```
/// use interstice_scheduler::{Access, TableId};
///
/// let a = Access::new().read(TableId(2)).write(TableId(1)).read(TableId(1));
/// assert_eq!(a.reads(), &[TableId(2)]);
/// assert_eq!(a.writes(), &[TableId(1)]);
/// assert!(a.conflicts_with(&Access::new().read(TableId(1))));
/// assert!(!a.conflicts_with(&Access::new().read(TableId(2))));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Access {
    reads: Vec<TableId>,
    writes: Vec<TableId>,
    exclusive: bool,
}

impl Access {
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

    /// Builds an access set from lists in any order, possibly with duplicates.
    pub fn from_tables(
        reads: impl IntoIterator<Item = TableId>,
        writes: impl IntoIterator<Item = TableId>,
    ) -> Self {
        let mut writes: Vec<TableId> = writes.into_iter().collect();
        writes.sort_unstable();
        writes.dedup();
        let mut reads: Vec<TableId> = reads
            .into_iter()
            .filter(|t| writes.binary_search(t).is_err())
            .collect();
        reads.sort_unstable();
        reads.dedup();
        Self {
            reads,
            writes,
            exclusive: false,
        }
    }

    /// Adds a read of `table`; a no-op if the table is already read or written.
    #[must_use]
    pub fn read(mut self, table: TableId) -> Self {
        if self.writes.binary_search(&table).is_err()
            && let Err(at) = self.reads.binary_search(&table)
        {
            self.reads.insert(at, table);
        }
        self
    }

    /// Adds a write of `table`, which supersedes a read of it.
    #[must_use]
    pub fn write(mut self, table: TableId) -> Self {
        if let Ok(at) = self.reads.binary_search(&table) {
            self.reads.remove(at);
        }
        if let Err(at) = self.writes.binary_search(&table) {
            self.writes.insert(at, table);
        }
        self
    }

    /// Tables read and not written, sorted.
    pub fn reads(&self) -> &[TableId] {
        &self.reads
    }

    /// Tables written, sorted.
    pub fn writes(&self) -> &[TableId] {
        &self.writes
    }

    /// Whether this invocation conflicts with every other one.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    /// Whether two invocations must be ordered: one writes a table the other reads or writes,
    /// or either is exclusive.
    ///
    /// The planner never calls this (it sweeps instead of comparing pairs); it is the
    /// definition the sweep is tested against.
    pub fn conflicts_with(&self, other: &Access) -> bool {
        if self.exclusive || other.exclusive {
            return true;
        }
        let touches = |a: &Access, t: &TableId| {
            a.writes.binary_search(t).is_ok() || a.reads.binary_search(t).is_ok()
        };
        self.writes.iter().any(|t| touches(other, t))
            || other.writes.iter().any(|t| touches(self, t))
    }
}
