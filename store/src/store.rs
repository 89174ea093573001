//! The store: catalog, commit sequencing, snapshots, recovery.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use interstice_abi::{Persistence, TableSchema, TypeRegistry};
use parking_lot::{Mutex, RwLock};

use crate::error::{Result, StoreError};
use crate::files;
use crate::history::Epochs;
use crate::log::{self, Durability, Log, LogStart, LogState, Poison};
use crate::read::ReadView;
use crate::read_tx::ReadTransaction;
use crate::recover::{self, RecoveryReport};
use crate::snapshot::{self, Capture, CapturedTable};
use crate::table::{CatalogEntry, Table, TableId, type_closure};
use crate::tx::{Applied, CommitMeta, Transaction};

/// A position in the commit log. Records are numbered from 1; `Lsn(0)` is "nothing yet".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lsn {}", self.0)
    }
}

/// How a store on disk behaves. Every field states its default.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// When commits become durable. By default, [`Durability::Batched`] with a 2 ms delay and
    /// 1 MiB of buffer.
    pub durability: Durability,
    /// A segment is closed once it holds this many bytes. By default, 64 MiB.
    pub segment_max_bytes: u64,
    /// Take a snapshot once this many log bytes were written since the last one. By default,
    /// 64 MiB; `None` disables the byte trigger.
    pub snapshot_every_bytes: Option<u64>,
    /// Take a snapshot once this many commits were logged since the last one. By default,
    /// `None`.
    pub snapshot_every_commits: Option<u64>,
    /// The largest log record one applied transaction may take, header included; a larger
    /// transaction fails at [`Transaction::apply`](crate::Transaction::apply) with
    /// [`StoreError::TransactionTooLarge`], applying nothing. By default, 1 GiB.
    pub max_record_bytes: usize,
    /// The most before-images (rows changed while a read transaction was open, kept for it)
    /// the store holds; see [`StoreConfig::max_before_images`]. By default, 1 Mi.
    pub max_before_images: usize,
    /// Whether [`Store::open`] may discard damaged log records that are not a torn tail (see
    /// [`StoreConfig::repair`]). By default, `false`.
    pub repair: bool,
    #[doc(hidden)]
    pub fail_writes: Option<log::FailWrites>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            durability: Durability::default(),
            segment_max_bytes: 64 << 20,
            snapshot_every_bytes: Some(64 << 20),
            snapshot_every_commits: None,
            max_record_bytes: log::DEFAULT_MAX_RECORD,
            max_before_images: 1 << 20,
            repair: false,
            fail_writes: None,
        }
    }
}

impl StoreConfig {
    /// By default, [`Durability::Batched`].
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// By default, 64 MiB.
    pub fn segment_max_bytes(mut self, bytes: u64) -> Self {
        self.segment_max_bytes = bytes;
        self
    }

    /// By default, `Some(64 MiB)`.
    pub fn snapshot_every_bytes(mut self, bytes: Option<u64>) -> Self {
        self.snapshot_every_bytes = bytes;
        self
    }

    /// By default, `None`.
    pub fn snapshot_every_commits(mut self, commits: Option<u64>) -> Self {
        self.snapshot_every_commits = commits;
        self
    }

    /// The largest log record one applied transaction may take (its operations plus a
    /// 41-byte header). Meta passed to [`Store::log`] and transactions absorbed with
    /// [`Applied::absorb`](crate::Applied::absorb) come on top; the format frames records up to
    /// 4 GiB. In-memory stores log nothing and check nothing. By default, 1 GiB.
    pub fn max_record_bytes(mut self, bytes: usize) -> Self {
        self.max_record_bytes = bytes;
        self
    }

    /// The most before-images the store keeps for open [`ReadTransaction`]s: one per row
    /// changed while one is open (shared by those that began at the same commit), about 100
    /// bytes each plus the old row, which the image shares with whoever else holds it. An apply
    /// that would pass it makes every open read transaction fail with
    /// [`StoreError::SnapshotTooOld`] and frees their images. By default, 1 Mi (1,048,576).
    pub fn max_before_images(mut self, images: usize) -> Self {
        self.max_before_images = images;
        self
    }

    /// Makes log writes fail with `os_error` once `after_bytes` bytes of records were written:
    /// for tests of what a full or read-only disk does.
    #[doc(hidden)]
    pub fn fail_writes(mut self, fail: Option<log::FailWrites>) -> Self {
        self.fail_writes = fail;
        self
    }

    /// The operator's way past damage recovery refuses to discard on its own (a corrupt record
    /// in the middle of the log, a missing segment, a damaged snapshot with nothing to fall
    /// back on): with `true`, [`Store::open`] keeps the records before the damage, truncates
    /// the log there and renames everything after it to `*.corrupt` (never deleting it), and
    /// reports it in [`RecoveryReport::corruption`]. Use it once, after reading the error
    /// that `open` returned without it. By default, `false`: such damage fails `open` with
    /// [`StoreError::Corrupt`] and nothing on disk changes.
    pub fn repair(mut self, repair: bool) -> Self {
        self.repair = repair;
        self
    }
}

/// Counters of the commit log since the store was opened ([`Store::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// fsyncs of log segments (group commits, segment and catalog rolls, snapshots).
    pub log_fsyncs: u64,
    /// Log records that became durable (under [`Durability::Off`]: handed to the OS).
    pub records_durable: u64,
    /// Before-images held now for open [`ReadTransaction`]s.
    pub before_images: usize,
}

impl StoreStats {
    /// Records made durable per fsync: what group commit saves.
    pub fn records_per_fsync(&self) -> f64 {
        self.records_durable as f64 / self.log_fsyncs.max(1) as f64
    }
}

/// A table as the catalog describes it.
#[derive(Clone, Debug)]
pub struct TableInfo {
    pub id: TableId,
    /// `owner.table`.
    pub name: String,
    pub schema: Arc<TableSchema>,
}

pub(crate) struct Catalog {
    pub by_id: BTreeMap<TableId, Arc<Table>>,
    pub by_name: HashMap<String, TableId>,
    pub next_id: u32,
    /// `by_id` as an immutable array indexed by id, republished after every catalog change.
    /// Transactions take it at `begin`, so their table lookups need no lock.
    published: Arc<Tables>,
}

/// Tables by id (`TableId(i)` at index `i`), as of one moment. A table dropped since is still
/// here, with its `dropped` flag set.
pub(crate) type Tables = Vec<Option<Arc<Table>>>;

/// Ids beyond this are not published (they would make the array huge); lookups of them take
/// the catalog lock instead.
const MAX_PUBLISHED: usize = 1 << 16;

impl Catalog {
    pub fn publish(&mut self) {
        let len = self
            .by_id
            .keys()
            .next_back()
            .map_or(0, |id| id.0 as usize + 1);
        if len > MAX_PUBLISHED {
            // Ids this sparse only come from a strange log; lookups fall back to the lock.
            self.published = Arc::new(Vec::new());
            return;
        }
        let mut tables = vec![None; len];
        for (id, t) in &self.by_id {
            tables[id.0 as usize] = Some(t.clone());
        }
        self.published = Arc::new(tables);
    }
}

struct Workers {
    flusher: Option<JoinHandle<()>>,
    snapshots: Option<(mpsc::Sender<Capture>, JoinHandle<()>)>,
}

/// Shared state behind [`Store`] handles and transactions.
///
/// Lock order (a thread only ever takes locks rightwards): `ddl` → `log.sync` → `log.state` →
/// `gate` → `catalog` → table data locks in ascending `TableId` → `snapshot_io`. Transactions
/// take one table lock at a time, never nested. Nothing that holds `gate` waits for `log.state`,
/// and the only places that take `gate` while holding `log.state` use `try_write`, so a thread
/// holding a [`ReadView`] may still call [`Store::log`].
pub(crate) struct Inner {
    pub gate: RwLock<()>,
    /// Applies so far (changed under the gate, exclusively): read transactions' clock.
    pub version: AtomicU64,
    /// Open read transactions and the before-images kept for them.
    pub epochs: Epochs,
    catalog: RwLock<Catalog>,
    /// The catalog's `published` array, readable without its lock: every transaction takes
    /// it, and a lock's counter is a cache line that every worker would write.
    published: ArcSwap<Tables>,
    ddl: Mutex<()>,
    pub log: Arc<Log>,
    /// Applied transactions whose record is not yet in the log buffer (counted for a
    /// persistent store only: it is what a snapshot waits on).
    pub outstanding: AtomicU64,
    poison: Arc<Poison>,
    config: StoreConfig,
    /// `config.max_record_bytes`, at most what the format frames.
    pub max_record: usize,
    snapshot_pending: Arc<AtomicBool>,
    snapshot_io: Arc<Mutex<()>>,
    snapshot_error: Arc<Mutex<Option<String>>>,
    workers: Mutex<Workers>,
    _lock: Option<File>,
}

impl Inner {
    /// The catalog as of now, for a transaction's lock-free table lookups.
    pub fn tables(&self) -> Arc<Tables> {
        self.published.load_full()
    }

    /// Makes the catalog's new `published` array the one transactions take. The caller holds
    /// the catalog's write lock, so these stores happen in the order of the changes.
    fn republish(&self, catalog: &mut Catalog) {
        catalog.publish();
        self.published.store(catalog.published.clone());
    }

    pub fn table(&self, id: TableId) -> Result<Arc<Table>> {
        self.catalog
            .read()
            .by_id
            .get(&id)
            .cloned()
            .ok_or(StoreError::NoSuchTable(id))
    }

    /// Counts an apply. The caller holds the gate exclusively, so no other writer races this
    /// load and store (cheaper than a read-modify-write).
    pub fn bump_version(&self) {
        let v = self.version.load(Ordering::Relaxed);
        self.version.store(v + 1, Ordering::Release);
    }

    pub fn is_persistent(&self) -> bool {
        self.log.dir.is_some()
    }

    pub fn check_poisoned(&self) -> Result<()> {
        self.poison.check()
    }

    pub fn poison(&self, reason: String) {
        self.poison.set(reason, None);
    }

    fn dir(&self) -> Option<&Path> {
        self.log.dir.as_deref()
    }

    /// Captures the state at the end of the log, if no applied transaction is missing from it.
    /// The caller holds `log.state`, so the log cannot move meanwhile.
    fn try_capture(&self, st: &mut LogState) -> Result<Option<Capture>> {
        let Some(_gate) = self.gate.try_write() else {
            return Ok(None);
        };
        if self.outstanding.load(Ordering::Acquire) != 0 {
            return Ok(None);
        }
        let lsn = st.next_lsn - 1;
        let catalog = self.catalog.read();
        let mut tables = Vec::new();
        for t in catalog.by_id.values() {
            if t.persistence == Persistence::Ephemeral {
                continue;
            }
            let data = t.data.read();
            tables.push(CapturedTable {
                id: t.id,
                entry: t.entry.clone(),
                counters: data.counters.clone(),
                rows: data.order.values().cloned().collect(),
            });
        }
        let capture = Capture {
            lsn,
            last_seq: st.last_seq,
            next_table_id: catalog.next_id,
            tables,
        };
        drop(catalog);
        drop(_gate);
        // Start a new segment after the snapshot's lsn, so the segments it covers are closed
        // and can be compacted without touching the one being appended to.
        self.log.roll(st)?;
        st.bytes_since_snapshot = 0;
        st.commits_since_snapshot = 0;
        st.last_snapshot_lsn = lsn;
        Ok(Some(capture))
    }

    fn snapshot_due(&self, st: &LogState) -> bool {
        self.config
            .snapshot_every_bytes
            .is_some_and(|b| st.bytes_since_snapshot >= b)
            || self
                .config
                .snapshot_every_commits
                .is_some_and(|c| st.commits_since_snapshot >= c)
    }
}

fn write_snapshot(dir: &Path, io: &Mutex<()>, capture: &Capture) -> Result<()> {
    // Every live non-ephemeral table is in the capture; ephemeral ones never reach the log.
    let persistence: HashMap<TableId, Persistence> = capture
        .tables
        .iter()
        .map(|t| (t.id, t.entry.schema.persistence))
        .collect();
    let _io = io.lock();
    snapshot::write(dir, capture).map_err(|e| StoreError::io("writing a snapshot", e))?;
    snapshot::retire(dir, &persistence)
        .map_err(|e| StoreError::io("compacting log segments after a snapshot", e))
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.log.shutdown();
        let mut workers = std::mem::replace(
            &mut *self.workers.lock(),
            Workers {
                flusher: None,
                snapshots: None,
            },
        );
        if let Some(h) = workers.flusher.take() {
            let _ = h.join();
        }
        // A final flush for policies without a flusher (and in case the flusher stopped).
        let last = self.log.state.lock().next_lsn - 1;
        if self.poison.check().is_ok() {
            let _ = self.log.make_durable(last);
        }
        if let Some((tx, h)) = workers.snapshots.take() {
            drop(tx);
            let _ = h.join();
        }
    }
}

/// A set of typed tables with transactions, a commit log and snapshots.
///
/// Cheap to clone: clones share the same tables. `Send + Sync`: many transactions may run at
/// once on different threads, provided no two of them write a table the other reads or writes
/// (the scheduler's contract; a violation is detected at apply as [`StoreError::Conflict`] for
/// written tables).
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir())
            .finish_non_exhaustive()
    }
}

impl Store {
    pub(crate) fn from_inner(inner: Arc<Inner>) -> Self {
        Store { inner }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// A store that never touches the disk: every table behaves as ephemeral.
    pub fn in_memory() -> Store {
        Self::build(
            None,
            StoreConfig::default(),
            1,
            0,
            None,
            empty_catalog(),
            None,
        )
    }

    fn build(
        dir: Option<PathBuf>,
        config: StoreConfig,
        next_lsn: u64,
        last_snapshot_lsn: u64,
        last_seq: Option<u64>,
        catalog: Catalog,
        lock: Option<File>,
    ) -> Store {
        let poison = Arc::new(Poison::default());
        let persistent = dir.is_some();
        let start = LogStart {
            next_lsn,
            last_snapshot_lsn,
            last_seq,
        };
        let log = Arc::new(Log::new(
            dir.clone(),
            start,
            config.durability,
            config.segment_max_bytes.max(1),
            poison.clone(),
            config.fail_writes,
        ));
        let flusher = (persistent && matches!(config.durability, Durability::Batched { .. }))
            .then(|| {
                let log = log.clone();
                std::thread::Builder::new()
                    .name("interstice-log-flusher".into())
                    .spawn(move || log.run_flusher())
                    .ok()
            })
            .flatten();
        let snapshot_pending = Arc::new(AtomicBool::new(false));
        let snapshot_io = Arc::new(Mutex::new(()));
        let snapshot_error = Arc::new(Mutex::new(None));
        let snapshots = dir.clone().and_then(|dir| {
            let (tx, rx) = mpsc::channel::<Capture>();
            let pending = snapshot_pending.clone();
            let io = snapshot_io.clone();
            let error = snapshot_error.clone();
            let handle = std::thread::Builder::new()
                .name("interstice-snapshots".into())
                .spawn(move || {
                    for capture in rx {
                        if let Err(e) = write_snapshot(&dir, &io, &capture) {
                            *error.lock() = Some(e.to_string());
                        }
                        pending.store(false, Ordering::Release);
                    }
                })
                .ok()?;
            Some((tx, handle))
        });
        Store {
            inner: Arc::new(Inner {
                gate: RwLock::new(()),
                version: AtomicU64::new(0),
                epochs: Epochs::new(config.max_before_images),
                published: ArcSwap::new(catalog.published.clone()),
                catalog: RwLock::new(catalog),
                ddl: Mutex::new(()),
                log,
                outstanding: AtomicU64::new(0),
                poison,
                max_record: config
                    .max_record_bytes
                    .min(log::MAX_BODY + log::RECORD_HEADER),
                config,
                snapshot_pending,
                snapshot_io,
                snapshot_error,
                workers: Mutex::new(Workers { flusher, snapshots }),
                _lock: lock,
            }),
        }
    }

    /// Opens (creating if needed) the store in `dir` and recovers it: the newest valid
    /// snapshot, then the log after it.
    ///
    /// A torn write at the end of the last segment (a record cut short by a crash, never
    /// acknowledged as durable) is cut off and reported in [`RecoveryReport::corruption`]. A
    /// damaged newest snapshot is set aside and recovery falls back on the previous one, which
    /// loses nothing; see [`RecoveryReport::snapshots_rejected`]. Any other damage (a bad record
    /// with intact records after it, a missing segment, a damaged snapshot with nothing to fall
    /// back on) fails with [`StoreError::Corrupt`], naming the file, the offset and what would be
    /// lost, and changes nothing on disk; [`StoreConfig::repair`] discards it explicitly.
    ///
    /// Fails with [`StoreError::Locked`] when another store has `dir` open.
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<(Store, RecoveryReport)> {
        let dir = dir.as_ref().to_path_buf();
        files::create_dir(&dir)
            .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        let lock_path = dir.join("LOCK");
        let lock = files::owner_only()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::io(format!("opening {}", lock_path.display()), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StoreError::Locked { dir }),
            Err(TryLockError::Error(e)) => {
                return Err(StoreError::io(
                    format!("locking {}", lock_path.display()),
                    e,
                ));
            }
        }
        let recover::Recovered {
            catalog,
            report,
            next_lsn,
        } = recover::recover(&dir, config.repair)?;
        let snap = report.snapshot_lsn.map_or(0, |l| l.0);
        let store = Self::build(
            Some(dir),
            config,
            next_lsn,
            snap,
            report.last_seq,
            catalog,
            Some(lock),
        );
        Ok((store, report))
    }

    /// Creates table `owner.<schema.name>` and returns its id. Creating a table that exists
    /// with an identical schema (as after a restart) returns the existing id.
    pub fn create_table(
        &self,
        owner: &str,
        schema: TableSchema,
        registry: Arc<TypeRegistry>,
    ) -> Result<TableId> {
        schema.validate(&registry)?;
        let types = type_closure(&schema, &registry)?;
        let name = format!("{owner}.{}", schema.name);
        let entry = CatalogEntry {
            owner: owner.to_owned(),
            schema,
            types,
        };
        let inner = &self.inner;
        let _ddl = inner.ddl.lock();
        if let Some(existing) = self.lookup(&name) {
            let t = inner.table(existing)?;
            if t.entry != entry {
                return Err(StoreError::SchemaMismatch {
                    table: name,
                    reason: mismatch_reason(&t.entry, &entry),
                });
            }
            return Ok(existing);
        }
        inner.check_poisoned()?;
        let logged = inner.is_persistent() && entry.schema.persistence != Persistence::Ephemeral;
        let mut st = inner.log.state.lock();
        let id = TableId(inner.catalog.read().next_id);
        if logged {
            let blob = postcard::to_stdvec(&entry).map_err(|e| StoreError::Encode {
                what: format!("the catalog entry of `{name}`"),
                reason: e.to_string(),
            })?;
            let mut ops = Vec::new();
            log::put_op(&mut ops, log::OpKind::CreateTable, id, &blob);
            self.log_catalog_change(&mut st, &ops)?;
        }
        let table = Table::new(id, entry, registry);
        let mut catalog = inner.catalog.write();
        catalog.next_id += 1;
        catalog.by_name.insert(name, id);
        catalog.by_id.insert(id, Arc::new(table));
        inner.republish(&mut catalog);
        Ok(id)
    }

    /// Appends a catalog record and makes it durable before the change becomes visible, so a
    /// table id is never handed out twice.
    fn log_catalog_change(&self, st: &mut LogState, ops: &[u8]) -> Result<()> {
        let log = &self.inner.log;
        let lsn = st.next_lsn;
        log.append(st, lsn, 0, 0, &[], ops)?;
        st.next_lsn += 1;
        log.roll(st)
    }

    /// Drops a table and its rows. Its id is never reused.
    pub fn drop_table(&self, id: TableId) -> Result<()> {
        let inner = &self.inner;
        let _ddl = inner.ddl.lock();
        let t = inner.table(id)?;
        inner.check_poisoned()?;
        let mut st = inner.log.state.lock();
        if inner.is_persistent() && t.persistence != Persistence::Ephemeral {
            let mut ops = Vec::new();
            log::put_drop(&mut ops, id);
            self.log_catalog_change(&mut st, &ops)?;
        }
        let mut catalog = inner.catalog.write();
        catalog.by_id.remove(&id);
        catalog.by_name.remove(&t.name);
        inner.republish(&mut catalog);
        t.dropped.store(true, Ordering::Release);
        let mut data = t.data.write();
        data.clear();
        inner.epochs.forget(&t);
        drop(data);
        Ok(())
    }

    fn lookup(&self, name: &str) -> Option<TableId> {
        self.inner.catalog.read().by_name.get(name).copied()
    }

    /// The id of table `owner.table`.
    pub fn table_id(&self, full_name: &str) -> Option<TableId> {
        self.lookup(full_name)
    }

    /// Every table, by id.
    pub fn tables(&self) -> Vec<TableInfo> {
        self.inner
            .catalog
            .read()
            .by_id
            .values()
            .map(|t| TableInfo {
                id: t.id,
                name: t.name.clone(),
                schema: t.schema.clone(),
            })
            .collect()
    }

    /// The schema of a table.
    pub fn schema(&self, id: TableId) -> Result<Arc<TableSchema>> {
        Ok(self.inner.table(id)?.schema.clone())
    }

    /// Starts a transaction. It reads the current committed state of each table as it goes.
    pub fn begin(&self) -> Transaction {
        Transaction::new(self.inner.clone())
    }

    /// A read-only view of the committed state as of now that never holds up commits: applies
    /// go on while it is open and it keeps seeing this moment. For long reads (queries); see
    /// [`ReadTransaction`] for what it costs while open.
    pub fn begin_read(&self) -> ReadTransaction {
        ReadTransaction::new(self.inner.clone())
    }

    /// A view of the current committed state in which no transaction is half-applied. Commits
    /// wait while it is open: keep it short, or use [`begin_read`](Self::begin_read).
    pub fn read(&self) -> ReadView<'_> {
        ReadView {
            store: &self.inner,
            _gate: self.inner.gate.read_recursive(),
        }
    }

    /// Appends an applied transaction to the commit log. Call it in sequence order: the log's
    /// order is the order of these calls. Returns the record's lsn; see
    /// [`wait_durable`](Self::wait_durable) for when it is on disk. It never fsyncs (except
    /// when starting a snapshot or a new segment): durability is `wait_durable`'s job, so that
    /// the commits waiting at one moment share one fsync.
    ///
    /// A transaction that wrote no persistent table writes no record; its lsn is the latest.
    /// If writing fails the store is poisoned: it refuses every later apply and log.
    pub fn log(&self, mut applied: Applied, meta: CommitMeta) -> Result<Lsn> {
        applied.disarm();
        let inner = &self.inner;
        if !applied.logged {
            return Ok(Lsn(inner.log.state.lock().next_lsn - 1));
        }
        let mut st = inner.log.state.lock();
        if inner.is_persistent() {
            // Counted by `apply` for a persistent store only.
            inner.outstanding.fetch_sub(1, Ordering::AcqRel);
        }
        inner.check_poisoned()?;
        let lsn = st.next_lsn;
        if inner.is_persistent()
            && let Err(e) = inner.log.append(
                &mut st,
                lsn,
                meta.seq,
                meta.timestamp,
                &meta.meta,
                &applied.payload,
            )
        {
            // `apply` checked the operations against the limit; only meta or absorbed
            // transactions of gigabytes get here, and memory already holds the changes.
            inner.poison(format!(
                "a transaction was applied but its log record cannot be written ({e})"
            ));
            return Err(e);
        }
        st.next_lsn += 1;
        st.last_seq = Some(st.last_seq.map_or(meta.seq, |s| s.max(meta.seq)));
        if !inner.is_persistent() {
            return Ok(Lsn(lsn));
        }
        st.commits_since_snapshot += 1;
        if inner.snapshot_due(&st)
            && !inner.snapshot_pending.load(Ordering::Acquire)
            && let Some(capture) = inner.try_capture(&mut st)?
        {
            self.send_capture(capture);
        }
        inner.log.after_append(st, lsn)?;
        Ok(Lsn(lsn))
    }

    fn send_capture(&self, capture: Capture) {
        let workers = self.inner.workers.lock();
        if let Some((tx, _)) = &workers.snapshots {
            self.inner.snapshot_pending.store(true, Ordering::Release);
            if tx.send(capture).is_err() {
                self.inner.snapshot_pending.store(false, Ordering::Release);
            }
        }
    }

    /// The largest [`CommitMeta::seq`] of any transaction record this store holds: logged since
    /// it was opened, recovered from the log, or remembered by a snapshot. `None` when no
    /// transaction was ever logged. A runtime continues its ingress sequence numbers after it.
    pub fn last_seq(&self) -> Option<u64> {
        self.inner.log.state.lock().last_seq
    }

    /// Why the store refuses commits, if it does: a [`StoreError::Poisoned`] whose message
    /// says what failed and what to do, and whose
    /// [`write_failure`](StoreError::write_failure) tells a full disk from a read-only one.
    /// The runtime logs it once, at error level, when a commit first fails.
    pub fn poisoned(&self) -> Option<StoreError> {
        self.inner.poison.error()
    }

    /// Counters of the commit log since the store was opened, and the before-images held.
    pub fn stats(&self) -> StoreStats {
        let log = &self.inner.log;
        StoreStats {
            log_fsyncs: log.fsyncs.load(Ordering::Relaxed),
            records_durable: log.records_durable.load(Ordering::Relaxed),
            before_images: self.inner.epochs.held(),
        }
    }

    /// The highest lsn known to be on disk (for `Durability::Off`: handed to the OS).
    pub fn durable_lsn(&self) -> Lsn {
        Lsn(self.inner.log.durable_lsn())
    }

    /// Blocks until `lsn` is durable. Fails if the store is poisoned, or if writing or fsyncing
    /// fails (which poisons it).
    ///
    /// Under [`Durability::EveryCommit`] the first waiter writes out everything logged so far
    /// and fsyncs once; every waiter whose record that covers returns with it. Under
    /// [`Durability::Batched`] the flusher thread does the same on its schedule.
    pub fn wait_durable(&self, lsn: Lsn) -> Result<()> {
        if !self.inner.is_persistent() {
            return Ok(());
        }
        let last = self.inner.log.state.lock().next_lsn - 1;
        self.inner.log.wait_durable(lsn.0.min(last))
    }

    /// Writes and fsyncs everything logged so far; returns the durable lsn.
    pub fn sync(&self) -> Result<Lsn> {
        if !self.inner.is_persistent() {
            return Ok(Lsn(self.inner.log.state.lock().next_lsn - 1));
        }
        let last = self.inner.log.state.lock().next_lsn - 1;
        self.inner.log.make_durable(last)?;
        Ok(self.durable_lsn())
    }

    /// Takes a snapshot now and returns the lsn it covers once it is durable (`None` for an
    /// in-memory store or an empty log). Waits (up to 10 s) for a moment when every applied
    /// transaction has been logged.
    pub fn snapshot(&self) -> Result<Option<Lsn>> {
        let inner = &self.inner;
        let Some(dir) = inner.dir() else {
            return Ok(None);
        };
        let start = Instant::now();
        let capture = loop {
            {
                let mut st = inner.log.state.lock();
                inner.check_poisoned()?;
                if st.next_lsn == 1 {
                    return Ok(None);
                }
                if st.last_snapshot_lsn == st.next_lsn - 1 && st.last_snapshot_lsn > 0 {
                    return Ok(Some(Lsn(st.last_snapshot_lsn)));
                }
                if let Some(capture) = inner.try_capture(&mut st)? {
                    break capture;
                }
            }
            if start.elapsed() > Duration::from_secs(10) {
                return Err(StoreError::SnapshotBusy {
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        write_snapshot(dir, &inner.snapshot_io, &capture)?;
        Ok(Some(Lsn(capture.lsn)))
    }

    /// The error of the last automatic snapshot, if it failed. Failed snapshots lose nothing
    /// (the log still has every record); the next one is tried after the next interval.
    pub fn last_snapshot_error(&self) -> Option<String> {
        self.inner.snapshot_error.lock().clone()
    }

    /// Flushes and syncs the log, waits for a running snapshot, and releases this handle. The
    /// directory is unlocked once every clone and transaction is gone.
    pub fn close(self) -> Result<()> {
        self.sync()?;
        drop(self.inner.snapshot_io.lock());
        while self.inner.snapshot_pending.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

pub(crate) fn empty_catalog() -> Catalog {
    Catalog {
        by_id: BTreeMap::new(),
        by_name: HashMap::new(),
        next_id: 1,
        published: Arc::new(Vec::new()),
    }
}

fn mismatch_reason(old: &CatalogEntry, new: &CatalogEntry) -> String {
    let (a, b) = (&old.schema, &new.schema);
    if a.columns != b.columns {
        "its columns differ".to_owned()
    } else if a.primary_key != b.primary_key {
        format!(
            "primary key `{}` instead of `{}`",
            b.primary_key, a.primary_key
        )
    } else if a.indexes != b.indexes {
        "its indexes differ".to_owned()
    } else if a.persistence != b.persistence {
        format!(
            "persistence {:?} instead of {:?}",
            b.persistence, a.persistence
        )
    } else if old.types != new.types {
        "the user types of its columns differ".to_owned()
    } else {
        "its visibility differs".to_owned()
    }
}
