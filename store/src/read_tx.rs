//! Read transactions: the committed state as of one commit, read while commits go on.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;

use crate::error::{Result, StoreError};
use crate::history::Epoch;
use crate::read::{Readable, Source};
use crate::store::{Inner, Tables};
use crate::table::{Table, TableId};

/// The moment a read transaction reads at.
pub(crate) struct ReadAt {
    /// The store's commit version when it began: the state after that many applies.
    pub version: u64,
    epoch: Arc<Epoch>,
    cap: usize,
    /// A table this read transaction read was dropped while it read it.
    dropped: Mutex<Option<String>>,
}

impl ReadAt {
    /// Whether reads of `table` at this moment can still be answered exactly.
    pub fn check(&self, table: &Table) -> Result<()> {
        self.expired()?;
        if table.is_dropped() {
            *self.dropped.lock() = Some(table.name.clone());
            return Err(StoreError::TableDropped {
                table: table.name.clone(),
            });
        }
        Ok(())
    }

    fn expired(&self) -> Result<()> {
        if self.epoch.expired.load(Ordering::Acquire) {
            return Err(StoreError::SnapshotTooOld { limit: self.cap });
        }
        Ok(())
    }

    /// Whether every read so far was exact.
    pub fn status(&self) -> Result<()> {
        self.expired()?;
        match &*self.dropped.lock() {
            Some(table) => Err(StoreError::TableDropped {
                table: table.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// A read-only view of the committed state as of the commit at which it began, that never
/// holds up commits: applies go on while it is open, and it keeps seeing its moment.
///
/// It reads through [`Readable`]. While it is open, an apply that changes a row keeps the row's
/// previous state (a *before-image*) for it, once per row; read transactions that began at the
/// same commit share them, and they are freed when the last of those is dropped. With none
/// open, an apply pays one atomic load. Images are capped
/// ([`StoreConfig::max_before_images`](crate::StoreConfig::max_before_images)): an apply that
/// would pass the cap makes every open read transaction fail its reads from then on with
/// [`StoreError::SnapshotTooOld`], rather than let memory grow without bound. A scan that this
/// cuts short ends early: call [`check`](Self::check) before trusting what was read.
///
/// Tables created after it began read as empty; a table dropped since fails with
/// [`StoreError::TableDropped`]. It is `Send` and `Sync`, and may outlive the [`Store`](crate::Store) handle.
pub struct ReadTransaction {
    store: Arc<Inner>,
    tables: Arc<Tables>,
    at: ReadAt,
}

impl ReadTransaction {
    pub(crate) fn new(store: Arc<Inner>) -> Self {
        let (version, epoch, tables) = {
            // Under the gate: no apply is half done, and none starts until the epoch is open.
            let _gate = store.gate.read_recursive();
            let version = store.version.load(Ordering::Acquire);
            let epoch = store.epochs.join(version);
            (version, epoch, store.tables())
        };
        ReadTransaction {
            at: ReadAt {
                version,
                epoch,
                cap: store.epochs.cap(),
                dropped: Mutex::new(None),
            },
            store,
            tables,
        }
    }

    /// Ok while every read so far was exact; fails when the read transaction expired (or a
    /// table it read was dropped), which may have cut a scan short.
    pub fn check(&self) -> Result<()> {
        self.at.status()
    }
}

impl Readable for ReadTransaction {
    fn source(&self, table: TableId) -> Result<Source<'_>> {
        self.at.expired()?;
        let t = match self.tables.get(table.0 as usize) {
            Some(Some(t)) => Cow::Borrowed(t),
            // Created since (or not published): it was empty at this moment, and the images
            // of every row written since say so.
            _ => Cow::Owned(self.store.table(table)?),
        };
        if t.is_dropped() {
            return Err(StoreError::TableDropped {
                table: t.name.clone(),
            });
        }
        Ok(Source::new(t, None, Some(&self.at)))
    }
}

impl Drop for ReadTransaction {
    fn drop(&mut self) {
        let _gate = self.store.gate.read_recursive();
        self.store.epochs.leave(self.at.version);
    }
}

impl fmt::Debug for ReadTransaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadTransaction")
            .field("version", &self.at.version)
            .finish_non_exhaustive()
    }
}
