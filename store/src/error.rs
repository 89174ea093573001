//! The store's error type.

use std::io;
use std::path::PathBuf;

use interstice_abi::{SchemaError, TypeError, Value};

use crate::{Loss, TableId};

/// Everything that can go wrong in the store.
///
/// Constraint violations (`DuplicateKey`, `UniqueViolation`, `TypeMismatch`, `WrongColumnCount`,
/// `UnknownColumn`, `NoSuchRow`, `AutoIncOverflow`) come from a single transaction operation:
/// that operation had no effect and the transaction stays usable. The runtime is expected to
/// abort the reducer (drop the transaction), which leaves no trace.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("no table with id {0}")]
    NoSuchTable(TableId),
    #[error("table `{table}` was dropped")]
    TableDropped { table: String },
    #[error("invalid schema: {0}")]
    InvalidSchema(#[from] SchemaError),
    #[error(
        "table `{table}` already exists with a different schema ({reason}); migrations are not supported yet"
    )]
    SchemaMismatch { table: String, reason: String },
    #[error("table `{table}` has {expected} columns, but the row has {found}")]
    WrongColumnCount {
        table: String,
        expected: usize,
        found: usize,
    },
    #[error("column `{table}.{column}`: {source}")]
    TypeMismatch {
        table: String,
        column: String,
        source: TypeError,
    },
    #[error("table `{table}` has no column `{column}`")]
    UnknownColumn { table: String, column: String },
    #[error(
        "column `{table}.{column}` has no index; add #[index(hash)] or #[index(btree)] to look rows up by it"
    )]
    NotIndexed { table: String, column: String },
    #[error(
        "column `{table}.{column}` has a hash index, which cannot scan ranges; use #[index(btree)]"
    )]
    NotOrdered { table: String, column: String },
    #[error("table `{table}` already has a row with primary key {key:?}")]
    DuplicateKey { table: String, key: Value },
    #[error("unique column `{table}.{column}` already holds {value:?}")]
    UniqueViolation {
        table: String,
        column: String,
        value: Value,
    },
    #[error("table `{table}` has no row with primary key {key:?}")]
    NoSuchRow { table: String, key: Value },
    #[error("auto_inc column `{table}.{column}` of type {ty} has no value left after {last}")]
    AutoIncOverflow {
        table: String,
        column: String,
        ty: String,
        last: i128,
    },
    #[error(
        "table `{table}` was changed by another transaction while this one wrote it; the scheduler must not run conflicting transactions at once"
    )]
    Conflict { table: String },
    /// A write or fsync of the commit log failed (or, with `cause: None`, an applied
    /// transaction was dropped unlogged) earlier: memory may be ahead of the log, so every
    /// apply and log fails until the store is reopened.
    #[error("the store refuses commits: {reason}")]
    Poisoned {
        reason: String,
        cause: Option<WriteFailure>,
    },
    /// Writing or fsyncing the commit log failed just now; the store is poisoned since.
    #[error("{context} failed: {source}. {}", .kind.remedy())]
    LogWrite {
        context: String,
        kind: WriteFailure,
        #[source]
        source: io::Error,
    },
    #[error(
        "the store directory {dir} is in use by another store (it holds the lock on {dir}/LOCK)"
    )]
    Locked { dir: PathBuf },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// Damage that recovery will not discard on its own. Nothing on disk was changed.
    #[error(
        "{file}: corrupt at byte {offset}: {reason}. Opening would discard {would_lose} after it, so the store refuses to open and changed nothing on disk. To discard them and open with the records before it, open once with StoreConfig::repair(true) (every discarded byte is kept in a *.corrupt file), or restore the directory from a backup"
    )]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
        /// What discarding it would lose.
        would_lose: Loss,
    },
    /// Fails [`Transaction::apply`](crate::Transaction::apply) with nothing applied: the store
    /// stays usable.
    #[error(
        "the transaction is too large to log: its record would take {bytes} bytes, over the limit of {limit} bytes (StoreConfig::max_record_bytes); nothing was applied: split the work into smaller transactions"
    )]
    TransactionTooLarge { bytes: u64, limit: u64 },
    /// A [`ReadTransaction`](crate::ReadTransaction) can no longer be answered exactly.
    #[error(
        "this read transaction is too old: keeping its view would take more than {limit} before-images (rows changed since it began; StoreConfig::max_before_images). Begin a new read transaction, keep them shorter, or raise the limit"
    )]
    SnapshotTooOld { limit: usize },
    #[error("cannot encode {what}: {reason}")]
    Encode { what: String, reason: String },
    #[error(
        "a snapshot needs a moment with no applied-but-unlogged transaction; none came within {waited_ms} ms"
    )]
    SnapshotBusy { waited_ms: u64 },
}

/// What a failed write of the commit log ran into, as far as the OS error tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteFailure {
    /// No space left on the device, or the disk quota is used up.
    NoSpace,
    /// The file system is mounted read-only (Linux remounts it so after I/O errors).
    ReadOnly,
    /// Any other I/O error.
    Other,
}

impl WriteFailure {
    pub fn of(error: &io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => WriteFailure::NoSpace,
            io::ErrorKind::ReadOnlyFilesystem => WriteFailure::ReadOnly,
            _ => WriteFailure::Other,
        }
    }

    /// What the operator should do, in sentences.
    pub fn remedy(self) -> &'static str {
        match self {
            WriteFailure::NoSpace => {
                "The disk is full: free space on the file system that holds the store directory (or raise the quota), then restart the node. Memory may be ahead of the log, so the store refuses commits until it is reopened; reopening recovers every durable commit from disk"
            }
            WriteFailure::ReadOnly => {
                "The file system is read-only: remount it read-write (the kernel log says why it went read-only, often after I/O errors), then restart the node. Memory may be ahead of the log, so the store refuses commits until it is reopened; reopening recovers every durable commit from disk"
            }
            WriteFailure::Other => {
                "Check the disk and the kernel log, then restart the node. Memory may be ahead of the log, so the store refuses commits until it is reopened; reopening recovers every durable commit from disk"
            }
        }
    }
}

impl StoreError {
    /// For [`LogWrite`](Self::LogWrite) and a [`Poisoned`](Self::Poisoned) store: what the
    /// failed write ran into.
    pub fn write_failure(&self) -> Option<WriteFailure> {
        match self {
            StoreError::LogWrite { kind, .. } => Some(*kind),
            StoreError::Poisoned { cause, .. } => *cause,
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
