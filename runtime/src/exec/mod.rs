//! One running reducer or query: its transaction, what it may touch, and its deterministic
//! context (logical time, random generator). The wasm host calls land here once their bytes
//! are checked; nothing here knows about wasm.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use interstice_abi::host::{self, ErrorCode, KeyRange, LogLevel};
use interstice_abi::{TableEvent, Type, TypeRegistry, Value, decode, encode_into, encoded_len};
use interstice_store::{
    ChangeKind, ReadTransaction, Readable, Row, Store, StoreError, TableId, Transaction,
};

use crate::authority::FilePending;
use crate::error::HostCallError as HostError;
use crate::partition::{PartGrant, Parts, TableParts};

mod answer;
mod parts;
pub(crate) use answer::Answer;
use parts::int_bound;

/// What the host lets one reducer or query touch: the tables it declared (by full name,
/// `module.table`) and the calls it declared, or, without a declaration, every table of its
/// module. The scheduler plans with the same sets (`core::index`), so it can trust them.
#[derive(Clone, Debug)]
pub(crate) enum Grant {
    /// No declaration: every table of the module, read and write.
    OwnModule,
    Declared {
        /// Whole tables.
        reads: BTreeSet<String>,
        writes: BTreeSet<String>,
        /// `module.reducer` it may call or schedule, `node.module.reducer` it may call remotely.
        calls: BTreeSet<String>,
        /// Partitions of tables, as functions of the arguments (`writes(cells[region])`).
        partitions: Vec<PartGrant>,
    },
}

/// A reducer's or query's [`Grant`], and the nodes its module has bindings for (which remote
/// calls may name).
#[derive(Clone, Debug)]
pub(crate) struct Permissions {
    pub grant: Grant,
    pub nodes: Arc<BTreeSet<String>>,
    /// The function's parameters, by name: what partition declarations are evaluated with.
    pub params: Arc<[(String, Type)]>,
}

/// The most lines one invocation (with its nested calls) may add to the node's log.
const MAX_LOG_LINES: u32 = 256;

/// A function as its invocations see it: its module, name and permissions. Built once per
/// function when the module is installed and shared by every invocation: one reference count
/// per call instead of three, on lines that every worker writes.
#[derive(Debug)]
pub(crate) struct Callee {
    pub module: Arc<str>,
    pub function: Arc<str>,
    pub permissions: Arc<Permissions>,
}

/// Who is running (the [`Callee`], whose fields it derefs to) and its place in the ingress.
#[derive(Clone, Debug)]
pub(crate) struct Frame {
    pub callee: Arc<Callee>,
    /// The invocation's logical time (`ctx.now()`).
    pub timestamp: i64,
    pub seq: u64,
    /// The node's seed; the random generator is seeded from it and `seq`.
    pub seed: u64,
}

impl std::ops::Deref for Frame {
    type Target = Callee;

    fn deref(&self) -> &Callee {
        &self.callee
    }
}

/// A timer a reducer asked for with `ctx.schedule`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Scheduled {
    /// The module whose reducer runs (and whose timers table holds the timer).
    pub module: String,
    pub reducer: String,
    pub due: i64,
    pub args: Vec<u8>,
}

/// A call to a reducer of another node, queued by `ctx.call_remote` and sent after commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteCall {
    /// The calling module, for logs.
    pub from: String,
    /// The node's name in the calling module's bindings.
    pub node: String,
    pub module: String,
    pub reducer: String,
    /// The arguments, ABI-encoded; the remote node checks them.
    pub args: Vec<u8>,
    /// Its number in the calling module's outbox (`0` until committed), which the remote node
    /// dedupes on.
    pub id: u64,
}

/// The most remote calls one invocation may queue.
const MAX_REMOTE_CALLS: usize = 10_000;

/// What a host call needs to know about a table, resolved once per table by the core's index
/// (see `Core::table_meta`) and shared by every invocation that opens it.
pub(crate) struct TableMeta {
    pub id: TableId,
    /// `module.table`.
    pub name: String,
    pub columns: Vec<Type>,
    pub column_names: Vec<String>,
    pub pk: usize,
    /// The column the table is partitioned by, if it is.
    pub partition: Option<usize>,
    pub registry: Arc<TypeRegistry>,
}

impl TableMeta {
    pub fn new(
        id: TableId,
        name: String,
        schema: &interstice_abi::TableSchema,
        registry: Arc<TypeRegistry>,
    ) -> Self {
        TableMeta {
            id,
            name,
            columns: schema.columns.iter().map(|c| c.ty.clone()).collect(),
            column_names: schema.columns.iter().map(|c| c.name.clone()).collect(),
            pk: schema.primary_key_index().unwrap_or(0),
            partition: schema.partition_column(),
            registry,
        }
    }
}

/// A table opened by one invocation: the shared description, and whether this invocation's
/// declared access lets it write.
struct Handle {
    meta: Arc<TableMeta>,
    writable: bool,
    /// With access to only some partitions of the table: which, and its partition column.
    parts: Option<(usize, TableParts)>,
}

impl std::ops::Deref for Handle {
    type Target = TableMeta;

    fn deref(&self) -> &TableMeta {
        &self.meta
    }
}

/// Whether `full` is `module.<something>`, without building the prefix.
fn in_module(full: &str, module: &str) -> bool {
    full.len() > module.len() && full.starts_with(module) && full.as_bytes()[module.len()] == b'.'
}

struct Cursor {
    handle: usize,
    after: Option<Value>,
    done: bool,
}

/// The context of one reducer or query call: what its host calls act on.
pub(crate) struct Exec {
    pub tx: Transaction,
    /// For a query from outside: the committed state it reads, which never holds up commits.
    /// `None`: reads go through `tx` (reducers, hooks, and queries called by reducers).
    snapshot: Option<ReadTransaction>,
    registries: Arc<BTreeMap<String, Arc<TypeRegistry>>>,
    /// Resolves tables once for all invocations; a table it does not know is resolved here.
    tables: TableResolver,
    /// How many calls deep this invocation is (0: called from outside).
    depth: u32,
    frame: Frame,
    rng: u64,
    handles: Vec<Handle>,
    cursors: Vec<Cursor>,
    pub scheduled: Vec<Scheduled>,
    pub remote: Vec<RemoteCall>,
    /// Lines logged so far by this invocation (nested calls included), for the cap.
    log_lines: u32,
    /// File changes of the File module, applied after commit (`authority/file.rs`).
    pub files: FilePending,
    /// What its partition declarations came to with its arguments; `None` where there are
    /// none, or they count as whole tables.
    parts: Option<Arc<Parts>>,
}

/// Runs `$body` with `$reader` bound to what the invocation reads: its snapshot if it has one,
/// else its transaction (which sees its own writes).
macro_rules! read {
    ($self:ident, |$reader:ident| $body:expr) => {
        match &$self.snapshot {
            Some($reader) => $body,
            None => {
                let $reader = &$self.tx;
                $body
            }
        }
    };
}

/// Resolves `module.table` to what host calls need, if the node knows it.
pub(crate) type TableResolver = Arc<dyn Fn(&str) -> Option<Arc<TableMeta>> + Send + Sync>;

impl Exec {
    pub fn new(
        store: &Store,
        registries: Arc<BTreeMap<String, Arc<TypeRegistry>>>,
        tables: TableResolver,
        frame: Frame,
    ) -> Self {
        Exec {
            // The store is reached through the transaction: one handle fewer to count per call.
            tx: store.begin(),
            snapshot: None,
            registries,
            tables,
            depth: 0,
            rng: frame.seed ^ frame.seq.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            frame,
            handles: Vec::new(),
            cursors: Vec::new(),
            scheduled: Vec::new(),
            remote: Vec::new(),
            log_lines: 0,
            files: FilePending::default(),
            parts: None,
        }
    }

    /// The partitions it may touch, evaluated from its arguments.
    pub fn with_parts(mut self, parts: Option<Arc<Parts>>) -> Self {
        self.parts = parts;
        self
    }

    /// A context that reads `snapshot` instead of a transaction: a query from outside.
    pub fn reading(mut self, snapshot: ReadTransaction) -> Self {
        self.snapshot = Some(snapshot);
        self
    }

    /// Fails if the snapshot being read expired (too many changes were committed while it was
    /// open): a scan cut short by that must not be taken for a whole answer.
    pub fn check_snapshot(&self) -> Result<(), StoreError> {
        match &self.snapshot {
            Some(snapshot) => snapshot.check(),
            None => Ok(()),
        }
    }

    pub fn frame(&self) -> &Frame {
        &self.frame
    }

    /// How many calls deep this invocation is (0: called from outside).
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// A context for `frame` called from this one: it works in this invocation's transaction
    /// (moved over until [`unnest`](Self::unnest)) one level deeper, with its own seed.
    pub fn nest(&mut self, mut frame: Frame) -> Exec {
        frame.seed = self.frame.seed ^ u64::from(self.depth + 1).rotate_left(32);
        frame.seq = self.frame.seq;
        frame.timestamp = self.frame.timestamp;
        let store = self.tx.store();
        let tx = std::mem::replace(&mut self.tx, store.begin());
        let mut nested = Exec::new(&store, self.registries.clone(), self.tables.clone(), frame);
        nested.tx = tx;
        // The callee sees the caller's file changes, like its table writes.
        nested.files = std::mem::take(&mut self.files);
        nested.depth = self.depth + 1;
        nested
    }

    /// Takes back the transaction a nested call worked in, and its effects.
    pub fn unnest(&mut self, nested: &mut Exec) {
        std::mem::swap(&mut self.tx, &mut nested.tx);
        self.files = std::mem::take(&mut nested.files);
        self.scheduled.append(&mut nested.scheduled);
        self.remote.append(&mut nested.remote);
        self.log_lines = self.log_lines.saturating_add(nested.log_lines);
    }

    /// Fails unless this function declared that it calls `full` (`module.function`).
    pub fn check_call(&self, what: &str, full: &str) -> Result<(), HostError> {
        let declared = match &self.frame.permissions.grant {
            Grant::Declared { calls, .. } => calls.contains(full),
            Grant::OwnModule => false,
        };
        if declared {
            return Ok(());
        }
        Err(HostError::fatal(
            ErrorCode::Denied,
            format!(
                "`{}.{}` calls {what} `{full}` without declaring it; add `calls({full})` to its attribute",
                self.frame.module, self.frame.function
            ),
        ))
    }

    fn handle(&self, table: i32) -> Result<&Handle, HostError> {
        usize::try_from(table)
            .ok()
            .and_then(|i| self.handles.get(i))
            .ok_or_else(|| {
                HostError::fatal(ErrorCode::BadInput, format!("no table handle {table}"))
            })
    }

    fn writable(&self, table: i32) -> Result<&Handle, HostError> {
        let handle = self.handle(table)?;
        if !handle.writable {
            let local = handle
                .name
                .strip_prefix(&*self.frame.module)
                .and_then(|rest| rest.strip_prefix('.'));
            return Err(HostError::fatal(
                ErrorCode::Denied,
                match local {
                    Some(local) => format!(
                        "reducer `{}.{}` writes table `{local}` without declaring it; add `writes({local})` to its #[reducer(...)]",
                        self.frame.module, self.frame.function
                    ),
                    None => format!(
                        "reducer `{}.{}` cannot write `{}`: a module may only write its own tables; call a reducer of that module instead",
                        self.frame.module, self.frame.function, handle.name
                    ),
                },
            ));
        }
        Ok(handle)
    }

    /// A row a guest hands over, decoded straight into a shared row (one allocation).
    fn decode_row(handle: &Handle, bytes: &[u8]) -> Result<Row, HostError> {
        interstice_store::decode_row(bytes, &handle.columns, &handle.registry).map_err(|e| {
            HostError::fatal(
                ErrorCode::BadInput,
                format!("a row for `{}` does not decode: {e}", handle.name),
            )
        })
    }

    fn decode_key(handle: &Handle, column: usize, bytes: &[u8]) -> Result<Value, HostError> {
        let ty = handle.columns.get(column).ok_or_else(|| {
            HostError::fatal(
                ErrorCode::BadInput,
                format!("no column {column} in `{}`", handle.name),
            )
        })?;
        decode(bytes, ty, &handle.registry).map_err(|e| {
            HostError::fatal(
                ErrorCode::BadInput,
                format!(
                    "a key for `{}.{}` does not decode: {e}",
                    handle.name, handle.column_names[column]
                ),
            )
        })
    }

    fn column(handle: &Handle, column: i32) -> Result<usize, HostError> {
        if column == -1 {
            return Ok(handle.pk);
        }
        usize::try_from(column)
            .ok()
            .filter(|&c| c < handle.columns.len())
            .ok_or_else(|| {
                HostError::fatal(
                    ErrorCode::BadInput,
                    format!("no column {column} in `{}`", handle.name),
                )
            })
    }
}

/// Encodes a row the way the ABI lays out a struct: its columns one after another. Callers
/// size `out` first ([`row_encoded_len`]), so that the row is copied once.
pub(crate) fn encode_row(row: &[Value], out: &mut Vec<u8>) {
    row.iter().for_each(|v| encode_into(v, out));
}

pub(crate) fn row_encoded_len(row: &[Value]) -> usize {
    row.iter().map(encoded_len).sum()
}

/// A committed change as its subscribers get it: its event, and the row (insert, delete) or
/// the old row then the new one (update), ABI-encoded.
pub(crate) fn encode_change(change: &ChangeKind) -> (TableEvent, Vec<u8>) {
    let mut out = Vec::with_capacity(match change {
        ChangeKind::Insert(row) | ChangeKind::Delete(row) => row_encoded_len(row),
        ChangeKind::Update { old, new } => row_encoded_len(old) + row_encoded_len(new),
    });
    let kind = match change {
        ChangeKind::Insert(row) => {
            encode_row(row, &mut out);
            TableEvent::Insert
        }
        ChangeKind::Update { old, new } => {
            encode_row(old, &mut out);
            encode_row(new, &mut out);
            TableEvent::Update
        }
        ChangeKind::Delete(row) => {
            encode_row(row, &mut out);
            TableEvent::Delete
        }
    };
    (kind, out)
}

/// Store errors as the module sees them. Constraint violations fail the reducer (ARCHITECTURE.md,
/// rule D4).
fn store_error(e: StoreError) -> HostError {
    match e {
        StoreError::NoSuchRow { .. } => HostError::new(ErrorCode::NoSuchRow, e.to_string()),
        StoreError::DuplicateKey { .. }
        | StoreError::UniqueViolation { .. }
        | StoreError::AutoIncOverflow { .. } => {
            HostError::fatal(ErrorCode::Constraint, e.to_string())
        }
        StoreError::TypeMismatch { .. }
        | StoreError::WrongColumnCount { .. }
        | StoreError::UnknownColumn { .. }
        | StoreError::NotIndexed { .. }
        | StoreError::NotOrdered { .. } => HostError::fatal(ErrorCode::BadInput, e.to_string()),
        _ => HostError::fatal(ErrorCode::Other, e.to_string()),
    }
}

fn to_bound(b: host::Bound) -> Bound<Value> {
    match b {
        host::Bound::Unbounded => Bound::Unbounded,
        host::Bound::Included(v) => Bound::Included(v),
        host::Bound::Excluded(v) => Bound::Excluded(v),
    }
}

impl Exec {
    pub fn table(&mut self, name: &str) -> Result<i32, HostError> {
        let full = if name.contains('.') {
            name.to_owned()
        } else {
            let mut full = String::with_capacity(self.frame.module.len() + 1 + name.len());
            full.push_str(&self.frame.module);
            full.push('.');
            full.push_str(name);
            full
        };
        if full.starts_with("__") || full.split('.').nth(1).is_some_and(|t| t.starts_with("__")) {
            return Err(HostError::fatal(
                ErrorCode::Denied,
                format!("`{name}` is reserved for the node"),
            ));
        }
        let own = in_module(&full, &self.frame.module);
        let mut parts = None;
        let (readable, writable) = match &self.frame.permissions.grant {
            Grant::OwnModule => (own, own),
            Grant::Declared {
                reads,
                writes,
                partitions,
                ..
            } => {
                let w = own && writes.contains(&full);
                let whole = (w || reads.contains(&full) || writes.contains(&full), w);
                let declared = partitions.iter().filter(|g| *g.table == *full);
                match (whole, declared.clone().next()) {
                    ((false, _), Some(_)) => {
                        let writes_some = own && declared.clone().any(|g| g.write);
                        // Evaluated from the arguments; when that was not possible the
                        // declarations count as the whole table, as the planner took them.
                        parts = self
                            .parts
                            .as_ref()
                            .map(|p| p.get(full.as_str()).cloned().unwrap_or_default());
                        (true, writes_some)
                    }
                    (whole, _) => whole,
                }
            }
        };
        if !readable {
            let hint = if own { name.to_owned() } else { full.clone() };
            return Err(HostError::fatal(
                ErrorCode::Denied,
                format!(
                    "`{}.{}` touches table `{full}` without declaring it; add `reads({hint})` or `writes({hint})` to its #[reducer(...)]",
                    self.frame.module, self.frame.function
                ),
            ));
        }
        if let Some(i) = self.handles.iter().position(|h| h.name == full) {
            return Ok(i as i32);
        }
        // The index resolves each table once for all invocations; one it has not indexed is
        // resolved from the store here.
        let meta = match (self.tables)(&full) {
            Some(meta) => meta,
            None => {
                let store = self.tx.store();
                let id = store.table_id(&full).ok_or_else(|| {
                    HostError::new(
                        ErrorCode::NotFound,
                        format!("no table `{full}` on this node"),
                    )
                })?;
                let schema = store.schema(id).map_err(|_| {
                    HostError::new(ErrorCode::NotFound, format!("no table `{full}`"))
                })?;
                let owner = full.split('.').next().unwrap_or_default();
                let registry = self.registries.get(owner).cloned().unwrap_or_default();
                Arc::new(TableMeta::new(id, full.clone(), &schema, registry))
            }
        };
        let parts = match (parts, meta.partition) {
            (Some(parts), Some(column)) => Some((column, parts)),
            (Some(_), None) => {
                return Err(HostError::fatal(
                    ErrorCode::Denied,
                    format!("`{full}` is not partitioned; declare the whole table"),
                ));
            }
            (None, _) => None,
        };
        self.handles.push(Handle {
            meta,
            writable,
            parts,
        });
        Ok((self.handles.len() - 1) as i32)
    }

    pub fn insert(&mut self, table: i32, row: &[u8]) -> Result<Answer, HostError> {
        let handle = self.writable(table)?;
        self.whole_needed(
            handle,
            "inserts into",
            "a new row's key (and an auto_inc counter) is shared by every partition; insert from a reducer that writes the whole table",
        )?;
        let (id, values) = (handle.id, Self::decode_row(handle, row)?);
        Ok(Answer::Row(
            self.tx.insert(id, values).map_err(store_error)?,
        ))
    }

    pub fn update(&mut self, table: i32, row: &[u8]) -> Result<Answer, HostError> {
        let handle = self.writable(table)?;
        let (id, values) = (handle.id, Self::decode_row(handle, row)?);
        self.check_row(handle, &values, true, "updates a row into")?;
        let key = handle.parts.is_some().then(|| values[handle.pk].clone());
        let old = self.tx.update(id, values);
        // Checked after the fact: failing undoes the whole invocation.
        let handle = self.handle(table)?;
        let old = match (old, key) {
            (Err(StoreError::NoSuchRow { .. }), Some(key)) => {
                return Err(self.keyed_denial(handle, &key, true, "updates"));
            }
            (old, key) => {
                let old = old.map_err(store_error)?;
                if let Some(key) = key {
                    self.check_keyed(handle, &key, Some(&old), true, "updates")?;
                }
                old
            }
        };
        Ok(Answer::Row(old))
    }

    pub fn delete(&mut self, table: i32, key: &[u8]) -> Result<Answer, HostError> {
        let handle = self.writable(table)?;
        let (id, key) = (handle.id, Self::decode_key(handle, handle.pk, key)?);
        let partial = handle.parts.is_some();
        let old = self.tx.delete(id, &key);
        let handle = self.handle(table)?;
        let old = match old {
            Err(StoreError::NoSuchRow { .. }) if partial => {
                return Err(self.keyed_denial(handle, &key, true, "deletes"));
            }
            old => old.map_err(store_error)?,
        };
        self.check_keyed(handle, &key, Some(&old), true, "deletes")?;
        Ok(Answer::Row(old))
    }

    pub fn get(&mut self, table: i32, key: &[u8]) -> Result<Answer, HostError> {
        let handle = self.handle(table)?;
        let (id, key) = (handle.id, Self::decode_key(handle, handle.pk, key)?);
        self.check_lookup(handle, handle.pk, &key)?;
        let row = read!(self, |r| r.get(id, &key)).map_err(store_error)?;
        self.check_keyed(handle, &key, row.as_deref(), false, "gets")?;
        Ok(Answer::MaybeRow(row))
    }

    pub fn lookup(&mut self, table: i32, column: i32, key: &[u8]) -> Result<Answer, HostError> {
        let handle = self.handle(table)?;
        let column = Self::column(handle, column)?;
        let key = Self::decode_key(handle, column, key)?;
        self.check_lookup(handle, column, &key)?;
        let (id, name) = (handle.id, &handle.column_names[column]);
        if column == handle.pk {
            let row = read!(self, |r| r.get(id, &key)).map_err(store_error)?;
            self.check_keyed(handle, &key, row.as_deref(), false, "looks up")?;
            return Ok(Answer::Rows(row.into_iter().collect()));
        }
        let rows = read!(self, |r| r.find(id, name, &key)).map_err(store_error)?;
        Ok(Answer::Rows(rows))
    }

    pub fn range(&mut self, table: i32, column: i32, range: &[u8]) -> Result<Answer, HostError> {
        let handle = self.handle(table)?;
        let column = Self::column(handle, column)?;
        let range =
            KeyRange::decode(range, &handle.columns[column], &handle.registry).map_err(|e| {
                HostError::fatal(
                    ErrorCode::BadInput,
                    format!("a key range does not decode: {e}"),
                )
            })?;
        let bounds = (to_bound(range.start), to_bound(range.end));
        if let Some((partition, parts)) = &handle.parts {
            let within = *partition == column
                && match (int_bound(&bounds.0, 1), int_bound(&bounds.1, -1)) {
                    (Some(lo), Some(hi)) => {
                        let mut all = parts.reads.clone();
                        all.extend(&parts.writes);
                        all.covers(lo, hi)
                    }
                    _ => false,
                };
            if !within {
                self.whole_needed(
                    handle,
                    "reads a range of",
                    &format!(
                        "read a range of the partition column `{}` within its partitions",
                        handle.column_names[*partition]
                    ),
                )?;
            }
        }
        let (id, name) = (handle.id, &handle.column_names[column]);
        let rows: Vec<Row> = if column == handle.pk {
            let rows = read!(self, |r| r.range(id, bounds).map(Iterator::collect));
            self.check_snapshot().map_err(store_error)?;
            rows.map_err(store_error)?
        } else {
            read!(self, |r| r.index_range(id, name, bounds)).map_err(store_error)?
        };
        Ok(Answer::Rows(rows))
    }

    pub fn scan(&mut self, table: i32) -> Result<i32, HostError> {
        let handle = self.handle(table)?;
        self.whole_needed(
            handle,
            "scans",
            "look its partitions up by the partition column instead",
        )?;
        if self.cursors.len() >= 1024 {
            return Err(HostError::fatal(
                ErrorCode::Other,
                "more than 1024 open scans in one call",
            ));
        }
        self.cursors.push(Cursor {
            handle: table as usize,
            after: None,
            done: false,
        });
        Ok((self.cursors.len() - 1) as i32)
    }

    pub fn next(&mut self, cursor: i32, max_rows: i32) -> Result<Answer, HostError> {
        let index = usize::try_from(cursor)
            .ok()
            .filter(|&i| i < self.cursors.len())
            .ok_or_else(|| HostError::fatal(ErrorCode::BadInput, format!("no cursor {cursor}")))?;
        let max = usize::try_from(max_rows).unwrap_or(0).clamp(1, 4096);
        let c = &self.cursors[index];
        if c.done {
            return Ok(Answer::Rows(Vec::new()));
        }
        let id = self.handles[c.handle].id;
        let lower = match &c.after {
            None => Bound::Unbounded,
            Some(key) => Bound::Excluded(key.clone()),
        };
        let pk = self.handles[c.handle].pk;
        let rows: Vec<Row> = read!(self, |r| r
            .range(id, (lower, Bound::Unbounded))
            .map(|scan| scan.take(max).collect()))
        .map_err(store_error)?;
        self.check_snapshot().map_err(store_error)?;
        let c = &mut self.cursors[index];
        c.done = rows.len() < max;
        c.after = rows.last().map(|r| r[pk].clone());
        Ok(Answer::Rows(rows))
    }

    pub fn count(&mut self, table: i32) -> Result<u64, HostError> {
        let handle = self.handle(table)?;
        self.whole_needed(
            handle,
            "counts the rows of",
            "count its partitions' rows by lookups instead",
        )?;
        let id = handle.id;
        read!(self, |r| r.len(id))
            .map(|n| n as u64)
            .map_err(store_error)
    }

    pub fn clear(&mut self, table: i32) -> Result<u64, HostError> {
        let handle = self.writable(table)?;
        self.whole_needed(
            handle,
            "clears",
            "delete its partitions' rows one by one instead",
        )?;
        let id = handle.id;
        self.tx.clear(id).map(|n| n as u64).map_err(store_error)
    }

    pub fn schedule(&mut self, reducer: &str, delay_ms: i64, args: &[u8]) -> Result<(), HostError> {
        if delay_ms < 0 {
            return Err(HostError::new(ErrorCode::BadInput, "a negative delay"));
        }
        if let Grant::Declared { calls, .. } = &self.frame.permissions.grant
            && !calls.contains(&format!("{}.{reducer}", self.frame.module))
        {
            return Err(HostError::fatal(
                ErrorCode::Denied,
                format!(
                    "reducer `{}.{}` schedules `{reducer}` without declaring it; add `calls({reducer})` to its #[reducer(...)]",
                    self.frame.module, self.frame.function
                ),
            ));
        }
        if self.scheduled.len() >= 10_000 {
            return Err(HostError::fatal(
                ErrorCode::Other,
                "more than 10 000 timers scheduled in one call",
            ));
        }
        let due = self
            .frame
            .timestamp
            .saturating_add(delay_ms.saturating_mul(1000));
        self.scheduled.push(Scheduled {
            module: self.frame.module.to_string(),
            reducer: reducer.to_owned(),
            due,
            args: args.to_vec(),
        });
        Ok(())
    }

    pub fn call_remote(&mut self, name: &str, args: &[u8]) -> Result<(), HostError> {
        let Some((node, target)) = interstice_abi::remote_target(name) else {
            return Err(HostError::new(
                ErrorCode::BadInput,
                format!("`{name}` is not a remote reducer; write `node.module.reducer`"),
            ));
        };
        let (module, reducer) = target.split_once('.').unwrap_or_default();
        if module.is_empty() || reducer.is_empty() || reducer.contains('.') {
            return Err(HostError::new(
                ErrorCode::BadInput,
                format!("`{name}` is not a remote reducer; write `node.module.reducer`"),
            ));
        }
        if !self.frame.permissions.nodes.contains(node) {
            return Err(HostError::fatal(
                ErrorCode::Denied,
                format!(
                    "`{}.{}` calls `{name}`, but module `{}` has no binding for node `{node}`; run `interstice bindings add node {node}` in its folder and rebuild",
                    self.frame.module, self.frame.function, self.frame.module
                ),
            ));
        }
        if let Grant::Declared { calls, .. } = &self.frame.permissions.grant
            && !calls.contains(name)
        {
            return Err(HostError::fatal(
                ErrorCode::Denied,
                format!(
                    "`{}.{}` calls `{name}` without declaring it; add `calls({name})` to its #[reducer(...)]",
                    self.frame.module, self.frame.function
                ),
            ));
        }
        if self.remote.len() >= MAX_REMOTE_CALLS {
            return Err(HostError::fatal(
                ErrorCode::Other,
                format!("more than {MAX_REMOTE_CALLS} remote calls queued in one invocation"),
            ));
        }
        self.remote.push(RemoteCall {
            from: self.frame.module.to_string(),
            node: node.to_owned(),
            module: module.to_owned(),
            reducer: reducer.to_owned(),
            args: args.to_vec(),
            id: 0,
        });
        Ok(())
    }

    pub fn now(&self) -> i64 {
        self.frame.timestamp
    }

    pub fn random(&mut self) -> u64 {
        // splitmix64: tiny, fast and good enough for game logic; seeded per invocation.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn log(&mut self, level: LogLevel, message: &str) {
        self.log_lines = self.log_lines.saturating_add(1);
        if self.log_lines > MAX_LOG_LINES {
            if self.log_lines == MAX_LOG_LINES + 1 {
                tracing::warn!(
                    target: "interstice::module",
                    module = %self.frame.module,
                    "more than {MAX_LOG_LINES} lines logged by one invocation of `{}`; the rest are dropped",
                    self.frame.function
                );
            }
            return;
        }
        let module = &self.frame.module;
        match level {
            LogLevel::Error => tracing::error!(target: "interstice::module", %module, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "interstice::module", %module, "{message}"),
            LogLevel::Info => tracing::info!(target: "interstice::module", %module, "{message}"),
            LogLevel::Debug => tracing::debug!(target: "interstice::module", %module, "{message}"),
            LogLevel::Trace => tracing::trace!(target: "interstice::module", %module, "{message}"),
        }
    }
}
