//! The checks of partition access (ARCHITECTURE.md, rule C5): with only some partitions of a
//! table granted, which rows and operations an invocation may reach.

use std::ops::Bound;

use interstice_abi::Value;
use interstice_abi::host::ErrorCode;

use super::{Exec, Handle, HostError};
use crate::partition;

impl Exec {
    /// Refuses `what` on a table this invocation may touch only some partitions of: it could
    /// reach rows of other partitions, which other invocations may be writing in parallel.
    pub(super) fn whole_needed(
        &self,
        handle: &Handle,
        what: &str,
        instead: &str,
    ) -> Result<(), HostError> {
        let Some((_, parts)) = &handle.parts else {
            return Ok(());
        };
        Err(HostError::fatal(
            ErrorCode::Denied,
            format!(
                "`{}.{}` {what} `{}`, which needs the whole table, but it declared only partitions of it ({}); {instead}, or declare the whole table in its #[reducer(...)]",
                self.frame.module,
                self.frame.function,
                handle.name,
                parts.declared.join(", ")
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
        let allowed = match partition::key(value) {
            Some(v) if write => parts.writes.contains(v),
            Some(v) => parts.may_read(v),
            None => false,
        };
        if allowed {
            return Ok(());
        }
        let (kind, ranges) = if write {
            ("writes", parts.writes.to_string())
        } else {
            ("reads", {
                let mut all = parts.reads.clone();
                all.extend(&parts.writes);
                all.to_string()
            })
        };
        Err(HostError::fatal(
            ErrorCode::Denied,
            format!(
                "`{}.{}` {what} partition {} = {} of `{}`, outside the partitions it {kind} ({}: {} with these arguments); add it to its #[reducer(...)], or declare the whole table",
                self.frame.module,
                self.frame.function,
                handle.column_names[*column],
                partition::key(value).map_or_else(|| format!("{value:?}"), |v| v.to_string()),
                handle.name,
                parts.declared.join(", "),
                if ranges.is_empty() {
                    "none".to_owned()
                } else {
                    ranges
                },
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

/// An integer bound as the inclusive value it comes to (`step` 1 for a lower bound, -1 for an
/// upper one); `None` when unbounded or not an integer.
pub(super) fn int_bound(b: &Bound<Value>, step: i128) -> Option<i128> {
    match b {
        Bound::Included(v) => partition::key(v),
        Bound::Excluded(v) => partition::key(v).map(|v| v + step),
        Bound::Unbounded => None,
    }
}
