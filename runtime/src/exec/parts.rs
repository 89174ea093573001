//! The checks of partition access (ARCHITECTURE.md, rule C5): with only some partitions of a
//! table granted, which rows and operations an invocation may reach.

use std::ops::Bound;

use interstice_abi::Value;
use interstice_abi::host::ErrorCode;

use super::{Exec, Grant, Handle, HostError};
use crate::partition::{self, TableParts};

impl Exec {
    /// The invocation's partition declarations of `handle`'s table, as written, for messages.
    fn declared(&self, handle: &Handle) -> String {
        let Grant::Declared { partitions, .. } = &self.frame.permissions.grant else {
            return String::new();
        };
        partitions
            .iter()
            .filter(|g| *g.table == *handle.name)
            .map(|g| &*g.declared)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Refuses `what` on a table this invocation may touch only some partitions of: it could
    /// reach rows of other partitions, which other invocations may be writing in parallel.
    pub(super) fn whole_needed(
        &self,
        handle: &Handle,
        what: &str,
        instead: &str,
    ) -> Result<(), HostError> {
        if handle.parts.is_none() {
            return Ok(());
        }
        Err(HostError::fatal(
            ErrorCode::Denied,
            format!(
                "`{}.{}` {what} `{}`, which needs the whole table, but it declared only partitions of it ({}); {instead}, or declare the whole table in its #[reducer(...)]",
                self.frame.module,
                self.frame.function,
                handle.name,
                self.declared(handle)
            ),
        ))
    }

    /// Fails unless partition `value` of the table is one this invocation may read (or, with
    /// `write`, write).
    pub(super) fn check_part(
        &self,
        handle: &Handle,
        value: &Value,
        write: bool,
        what: &str,
    ) -> Result<(), HostError> {
        let Some((column, parts)) = &handle.parts else {
            return Ok(());
        };
        let allowed = partition::key(value).is_some_and(|v| allows(parts, v, write));
        if allowed {
            return Ok(());
        }
        let (kind, ranges) = granted(parts, write);
        Err(HostError::fatal(
            ErrorCode::Denied,
            format!(
                "`{}.{}` {what} partition {} = {} of `{}`, outside the partitions it {kind} ({}: {} with these arguments); add it to its #[reducer(...)], or declare the whole table",
                self.frame.module,
                self.frame.function,
                handle.column_names[*column],
                partition::key(value).map_or_else(|| format!("{value:?}"), |v| v.to_string()),
                handle.name,
                self.declared(handle),
                ranges,
            ),
        ))
    }

    /// The partition of `row` checked, if the table has partition access.
    pub(super) fn check_row(
        &self,
        handle: &Handle,
        row: &[Value],
        write: bool,
        what: &str,
    ) -> Result<(), HostError> {
        match &handle.parts {
            Some((column, _)) => match row.get(*column) {
                Some(value) => self.check_part(handle, value, write, what),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// An operation by primary key (`get`, `update`, `delete`) on a table this invocation holds
    /// only partitions of: `found` is the row the key reached (for `update`, the old row),
    /// which must be in one of them. A key that reaches no row fails the same way: whether a
    /// key is absent, or present in a partition another invocation holds, can depend on that
    /// invocation, which may run beside this one and delete or move its own rows; both come
    /// to the same failure with the same message, so the outcome is the serial order's.
    pub(super) fn check_keyed(
        &self,
        handle: &Handle,
        key: &Value,
        found: Option<&[Value]>,
        write: bool,
        what: &str,
    ) -> Result<(), HostError> {
        let Some((column, parts)) = &handle.parts else {
            return Ok(());
        };
        if *column == handle.pk {
            // The key is the partition: absent or not, it is decided inside the partition.
            return self.check_part(handle, key, write, what);
        }
        let allowed = found
            .and_then(|row| row.get(*column))
            .and_then(partition::key)
            .is_some_and(|v| allows(parts, v, write));
        if allowed {
            return Ok(());
        }
        Err(self.keyed_denial(handle, key, write, what))
    }

    /// The failure of [`check_keyed`](Self::check_keyed): one message whether the key reached
    /// no row or a row of another partition.
    pub(super) fn keyed_denial(
        &self,
        handle: &Handle,
        key: &Value,
        write: bool,
        what: &str,
    ) -> HostError {
        let Some((column, parts)) = &handle.parts else {
            return HostError::fatal(ErrorCode::Denied, format!("{what}: not partitioned"));
        };
        let (kind, ranges) = granted(parts, write);
        HostError::fatal(
            ErrorCode::Denied,
            format!(
                "`{}.{}` {what} key {} of `{}`, which is in none of the partitions it {kind} ({}: {} = {} with these arguments); on a table held by partitions, a row reached by its key must be in one of them",
                self.frame.module,
                self.frame.function,
                partition::key(key).map_or_else(|| format!("{key:?}"), |v| v.to_string()),
                handle.name,
                self.declared(handle),
                handle.column_names[*column],
                ranges,
            ),
        )
    }

    /// A lookup by `column`: on the partition column, a partition it may read; on any other
    /// column (the primary key included, unless it is the partition column) the whole table.
    pub(super) fn check_lookup(
        &self,
        handle: &Handle,
        column: usize,
        key: &Value,
    ) -> Result<(), HostError> {
        match &handle.parts {
            Some((partition, _)) if *partition == column => {
                self.check_part(handle, key, false, "looks up")
            }
            // By primary key: checked on the row it finds (`check_keyed`).
            Some(_) if column == handle.pk => Ok(()),
            Some((partition, _)) => self.whole_needed(
                handle,
                &format!("looks up `{}` in", handle.column_names[column]),
                &format!(
                    "look rows up by the partition column `{}` instead",
                    handle.column_names[*partition]
                ),
            ),
            None => Ok(()),
        }
    }
}

/// Whether `parts` let an invocation read (or, with `write`, write) partition `v`.
fn allows(parts: &TableParts, v: i128, write: bool) -> bool {
    if write {
        parts.writes.contains(v)
    } else {
        parts.may_read(v)
    }
}

/// For messages: what the invocation does with its partitions ("reads" or "writes") and which
/// they are ("none" when there are none).
fn granted(parts: &TableParts, write: bool) -> (&'static str, String) {
    let (kind, ranges) = if write {
        ("writes", parts.writes.to_string())
    } else {
        let mut all = parts.reads.clone();
        all.extend(&parts.writes);
        ("reads", all.to_string())
    };
    if ranges.is_empty() {
        (kind, "none".to_owned())
    } else {
        (kind, ranges)
    }
}

/// An integer bound as the inclusive value it comes to (`step` 1 for a lower bound, -1 for an
/// upper one); `None` when unbounded or not an integer.
pub(super) fn int_bound(b: &Bound<Value>, step: i128) -> Option<i128> {
    match b {
        Bound::Included(v) => partition::key(v),
        Bound::Excluded(v) => partition::key(v).map(|v| v + step),
        Bound::Unbounded => None,
    }
}
