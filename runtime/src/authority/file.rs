//! The built-in `File` authority: its module reads, writes, lists and watches files in a
//! folder of its own, `<data dir>/files/<module>/` (on a memory-only node, a temporary folder
//! removed when the node closes).
//!
//! - Confinement (`disk.rs`, `path.rs`): paths are relative and checked before use; every
//!   name is opened from the folder's descriptor with `O_NOFOLLOW`, so no link is followed,
//!   and only regular files and folders are used.
//! - Transactions (`view.rs`): a reducer's changes are recorded, checked against its view
//!   (the disk, the committed changes not applied yet, its own), staged when its transaction
//!   applies and written to disk by the ordered commit once its record is in the log; a failed
//!   reducer changes nothing.
//! - Determinism: every reducer of the module writes the host table `<module>.__files` in the
//!   scheduler's eyes (its queries read it), so file access is ordered like table access and a
//!   reducer sees exactly the changes of the invocations before it, at any worker count.
//! - Watching (`watch.rs`): a thread polls the watched paths and submits `file_changed`
//!   invocations through the ingress.
//!
//! # Host calls (import module `interstice_file`)
//!
//! Paths are UTF-8 (`path`, `len`); answers go through the result buffer like the core calls'
//! (`interstice_abi::host`): a length, or a negative `ErrorCode` with a message.
//!
//! | import | signature | answer |
//! |---|---|---|
//! | `read` | `(path, len) -> i64` | the file's bytes |
//! | `list` | `(path, len) -> i64` | `Vec<DirEntry { name: String, kind: FileKind }>`, by name |
//! | `metadata` | `(path, len) -> i64` | `Option<FileMetadata { kind: FileKind, size: u64, modified: i64 }>` |
//! | `write`, `append` | `(path, len, data, data_len) -> i64` | `0` once recorded |
//! | `remove`, `create_dir`, `watch`, `unwatch` | `(path, len) -> i64` | `0` once recorded |
//!
//! `FileKind` is an enum `File | Dir | Symlink | Other`, encoded by variant number.

mod disk;
mod path;
mod view;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use interstice_abi::host::ErrorCode;
use interstice_abi::{Authority as Kind, Value};
use parking_lot::{Condvar, Mutex};
use wasmtime::{Caller, Linker};

pub use disk::Hook;
pub(crate) use view::Pending;

use super::{AuthorityProvider, Holder};
use crate::error::{HostCallError, LoadError};
use crate::node::EventSink;
use crate::wasm::{HostCall, HostState, Running};
use disk::{Meta, Root};
use path::{FileError, MAX_PATH, RelPath};
use view::{Change, Entry, MAX_CHANGES, Op, Quota, Usage, View};

/// The import namespace of the File authority's host calls.
const NAMESPACE: &str = "interstice_file";

/// The most paths a module may watch at once.
const MAX_WATCHES: usize = 64;

/// How the File authority treats its module's folder. Set in
/// [`NodeConfig::files`](crate::NodeConfig::files).
#[derive(Clone)]
pub struct FileConfig {
    /// The most bytes of regular files the folder may hold. By default, 256 MiB.
    pub max_bytes: u64,
    /// The most files and folders it may hold. By default, 10 000.
    pub max_entries: u64,
    /// How often watched paths are looked at. By default, 250 ms.
    pub poll_interval: Duration,
    /// For tests: called just before a file is opened (or a new one renamed onto it), to swap
    /// what is there between the check and the use. By default, `None`.
    #[doc(hidden)]
    pub before_open: Option<Hook>,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            max_bytes: 256 << 20,
            max_entries: 10_000,
            poll_interval: Duration::from_millis(250),
            before_open: None,
        }
    }
}

impl std::fmt::Debug for FileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileConfig")
            .field("max_bytes", &self.max_bytes)
            .field("max_entries", &self.max_entries)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

/// Where module folders are made.
enum Location {
    Dir(PathBuf),
    /// A memory-only node's: made when a module first needs it.
    Temp(Option<tempfile::TempDir>),
}

/// The module holding the authority and its folder.
struct Folder {
    root: Root,
    /// What is on disk, kept up to date by the changes the authority applies.
    usage: Usage,
}

#[derive(Default)]
struct State {
    /// The module holding the authority.
    holder: Option<String>,
    /// Its folder, or why it could not be opened.
    folder: Option<Result<Folder, String>>,
    /// Changes of invocations whose transactions applied, by sequence number, until the
    /// ordered commit writes them (or drops them, when logging failed).
    staged: BTreeMap<u64, Vec<Op>>,
    watches: BTreeSet<RelPath>,
    /// What the watched paths looked like at the last look.
    snapshot: BTreeMap<RelPath, Meta>,
    sink: Option<EventSink>,
}

pub(super) struct Shared {
    config: FileConfig,
    /// The most bytes one read returns (`Limits::max_message_bytes`).
    max_read: usize,
    location: Mutex<Location>,
    state: Mutex<State>,
    /// Whether `state.staged` may hold anything: the commit of every other invocation
    /// skips the lock.
    any_staged: AtomicBool,
    stop: Mutex<bool>,
    wake: Condvar,
    failed_writes: AtomicU64,
    events: AtomicU64,
}

/// The built-in `File` authority.
pub struct FileAuthority {
    shared: Arc<Shared>,
    watcher: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl FileAuthority {
    /// Module folders go in `dir`, or in a temporary folder when it is `None` (a memory-only
    /// node); one read returns at most `max_read` bytes.
    pub(crate) fn new(dir: Option<PathBuf>, config: FileConfig, max_read: usize) -> Self {
        FileAuthority {
            shared: Arc::new(Shared {
                config,
                max_read,
                location: Mutex::new(match dir {
                    Some(dir) => Location::Dir(dir),
                    None => Location::Temp(None),
                }),
                state: Mutex::new(State::default()),
                any_staged: AtomicBool::new(false),
                stop: Mutex::new(false),
                wake: Condvar::new(),
                failed_writes: AtomicU64::new(0),
                events: AtomicU64::new(0),
            }),
            watcher: Mutex::new(None),
        }
    }

    /// The folder of the module holding the authority, once it is attached.
    pub fn folder(&self) -> Option<PathBuf> {
        match &self.shared.state.lock().folder {
            Some(Ok(folder)) => Some(folder.root.path().to_owned()),
            _ => None,
        }
    }

    /// Keeps the changes of invocation `seq`, whose transaction applied, for the commit.
    pub(crate) fn stage(&self, seq: u64, pending: Pending) {
        let mut state = self.shared.state.lock();
        state.staged.insert(seq, pending.ops);
        self.shared.any_staged.store(true, Ordering::Relaxed);
    }

    /// Invocation `seq` was committed (its changes are written) or not (they are dropped).
    pub(crate) fn settle(&self, seq: u64, committed: bool) {
        if !self.shared.any_staged.load(Ordering::Relaxed) {
            return;
        }
        let mut state = self.shared.state.lock();
        let Some(ops) = state.staged.remove(&seq) else {
            return;
        };
        self.shared
            .any_staged
            .store(!state.staged.is_empty(), Ordering::Relaxed);
        if committed {
            self.shared.apply(&mut state, ops);
        }
    }

    /// The node is closing: stops watching and lets go of the module (and of the node, which
    /// its event sink holds), and removes a memory-only node's folder.
    pub(crate) fn close(&self) {
        self.stop_watching();
        *self.shared.state.lock() = State::default();
        if let Location::Temp(temp) = &mut *self.shared.location.lock() {
            temp.take();
        }
    }

    fn stop_watching(&self) {
        *self.shared.stop.lock() = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.watcher.lock().take()
            && thread.join().is_err()
        {
            tracing::error!("the File authority's watcher panicked");
        }
    }

    fn open_folder(&self, module: &str) -> Result<Folder, String> {
        let base = match &mut *self.shared.location.lock() {
            Location::Dir(dir) => dir.clone(),
            Location::Temp(temp) => match temp {
                Some(dir) => dir.path().to_owned(),
                None => {
                    let dir = tempfile::Builder::new()
                        .prefix("interstice-files-")
                        .tempdir()
                        .map_err(|e| format!("cannot make a temporary folder: {e}"))?;
                    let path = dir.path().to_owned();
                    *temp = Some(dir);
                    path
                }
            },
        };
        let path = base.join(module);
        let root = Root::open(&path, self.shared.config.before_open.clone())
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let mut usage = Usage::default();
        root.walk(&RelPath::root(), usize::MAX, true, &mut |_, meta| {
            usage.add(Usage::of(Some(meta)));
        })
        .map_err(|e| format!("cannot look through {}: {e}", path.display()))?;
        Ok(Folder { root, usage })
    }
}

impl AuthorityProvider for FileAuthority {
    fn kind(&self) -> Kind {
        Kind::File
    }

    fn imports(&self) -> Option<&'static str> {
        Some(NAMESPACE)
    }

    fn link(&self, linker: &mut Linker<HostState>) -> Result<(), LoadError> {
        link(linker, &self.shared).map_err(|e| LoadError::Engine(e.to_string()))
    }

    fn attach(&self, holder: Holder) -> Result<(), String> {
        self.stop_watching();
        let folder = self.open_folder(&holder.module);
        let failed = folder.as_ref().err().cloned();
        *self.shared.state.lock() = State {
            holder: Some(holder.module),
            folder: Some(folder),
            sink: Some(holder.events),
            ..State::default()
        };
        if let Some(reason) = failed {
            return Err(reason);
        }
        *self.shared.stop.lock() = false;
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("interstice-file-watch".into())
            .spawn(move || watch::run(&shared))
            .map_err(|e| format!("cannot start the file watcher: {e}"))?;
        *self.watcher.lock() = Some(thread);
        Ok(())
    }

    fn detach(&self, module: &str) {
        if self.shared.state.lock().holder.as_deref() != Some(module) {
            return;
        }
        self.stop_watching();
        *self.shared.state.lock() = State::default();
    }

    fn stats(&self) -> Vec<(String, String)> {
        let state = self.shared.state.lock();
        // Every node has the authority; only one whose module holds it has figures.
        if state.holder.is_none() {
            return Vec::new();
        }
        let config = &self.shared.config;
        let mut stats = Vec::new();
        if let Some(Ok(folder)) = &state.folder {
            stats.push(("folder".into(), folder.root.path().display().to_string()));
            stats.push((
                "bytes".into(),
                format!("{} of {}", folder.usage.bytes, config.max_bytes),
            ));
            stats.push((
                "entries".into(),
                format!("{} of {}", folder.usage.entries, config.max_entries),
            ));
        }
        stats.push(("watched paths".into(), state.watches.len().to_string()));
        stats.push((
            "change events".into(),
            self.shared.events.load(Ordering::Relaxed).to_string(),
        ));
        stats.push((
            "changes that failed after commit".into(),
            self.shared
                .failed_writes
                .load(Ordering::Relaxed)
                .to_string(),
        ));
        stats
    }
}

/// The invocation making a file host call and the holder's folder, or why the call cannot
/// go on: outside of an invocation, or with no usable folder.
fn running_and_folder<'a, 's>(
    call: &'a mut HostCall<'_, '_>,
    state: &'s State,
) -> Result<(&'a mut Running, &'s Folder), HostCallError> {
    let Some(running) = call.running_mut() else {
        return Err(HostCallError::fatal(
            ErrorCode::Other,
            "host call outside of a reducer or query",
        ));
    };
    match &state.folder {
        Some(Ok(folder)) => Ok((running, folder)),
        Some(Err(reason)) => Err(FileError::Unavailable(reason.clone()).into()),
        None => Err(FileError::Unavailable("not attached".into()).into()),
    }
}

impl Shared {
    fn quota(&self, folder: &Folder) -> Quota {
        Quota {
            max_bytes: self.config.max_bytes,
            max_entries: self.config.max_entries,
            applied: folder.usage,
        }
    }

    /// Writes committed changes to disk, in order. The invocation is committed, so a change
    /// that fails now (the disk is full, something was swapped in) is logged and counted.
    fn apply(&self, state: &mut State, ops: Vec<Op>) {
        let Some(Ok(folder)) = &mut state.folder else {
            return;
        };
        for op in ops {
            let path = &op.path;
            let before = folder.root.stat(path).ok().flatten();
            let done = match &op.change {
                Change::Write(bytes) => folder.root.write(path, bytes),
                Change::Append(bytes) => folder.root.append(path, bytes),
                Change::Remove => folder.root.remove(path),
                Change::CreateDir => folder.root.create_dir(path),
                Change::Watch => {
                    state.watches.insert(path.clone());
                    let seen = watch::scan(&folder.root, path, self.config.max_entries);
                    state.snapshot.extend(seen);
                    continue;
                }
                Change::Unwatch => {
                    state.watches.remove(path);
                    let watches = &state.watches;
                    state
                        .snapshot
                        .retain(|p, _| watches.iter().any(|w| p.is_within(w)));
                    continue;
                }
            };
            if let Err(e) = done {
                self.failed_writes.fetch_add(1, Ordering::Relaxed);
                tracing::error!(folder = %folder.root.path().display(), error = %e, "a committed file change could not be written");
            }
            let after = folder.root.stat(path).ok().flatten();
            folder
                .usage
                .add(Usage::of(after.as_ref()).minus(Usage::of(before.as_ref())));
            // The module's own changes are not reported back to it: they would feed its
            // `file_changed` hook with what it did itself.
            if state.watches.iter().any(|w| path.is_within(w)) {
                match after {
                    Some(meta) => state.snapshot.insert(path.clone(), meta),
                    None => state.snapshot.remove(path),
                };
            }
        }
    }

    /// The path a host call names, checked; also checks that the caller holds the authority
    /// and, for a change, may write.
    fn path(
        &self,
        call: &mut HostCall<'_, '_>,
        ptr: i32,
        len: i32,
        change: bool,
    ) -> wasmtime::Result<Result<RelPath, HostCallError>> {
        let module = call.module_or_trap()?;
        if self.state.lock().holder.as_deref() != Some(module.as_str()) {
            return Ok(Err(HostCallError::fatal(
                ErrorCode::Denied,
                format!(
                    "module `{module}` does not hold the File authority; add `File` to `interstice_module!(authorities: [..])`"
                ),
            )));
        }
        if change && call.read_only() {
            return Ok(Err(HostCallError::fatal(
                ErrorCode::Denied,
                "queries and read-only hooks cannot change files; do it in a #[reducer]",
            )));
        }
        if usize::try_from(len).is_ok_and(|len| len > MAX_PATH) {
            return Ok(Err(FileError::Refused {
                path: "…".into(),
                reason: path::Refusal::TooLong(len as usize),
            }
            .into()));
        }
        let bytes = call.read(ptr, len)?;
        match String::from_utf8(bytes) {
            Ok(text) => Ok(RelPath::parse(&text).map_err(Into::into)),
            Err(_) => Ok(Err(HostCallError::new(
                ErrorCode::BadInput,
                "a path that is not UTF-8",
            ))),
        }
    }

    /// Runs `f` on the calling invocation's view of the folder.
    fn with_view<R>(
        &self,
        call: &mut HostCall<'_, '_>,
        f: impl FnOnce(&View<'_>) -> Result<R, FileError>,
    ) -> wasmtime::Result<Result<R, HostCallError>> {
        let state = self.state.lock();
        let (running, folder) = match running_and_folder(call, &state) {
            Ok(both) => both,
            Err(e) => return Ok(Err(e)),
        };
        let view = View {
            root: &folder.root,
            staged: state.staged.values().map(Vec::as_slice).collect(),
            own: &running.exec.files.ops,
        };
        Ok(f(&view).map_err(Into::into))
    }

    /// Checks `change` of the path at `ptr` against the view and records it in the invocation.
    fn change(
        &self,
        call: &mut HostCall<'_, '_>,
        (ptr, len): (i32, i32),
        data: Option<(i32, i32)>,
        make: impl FnOnce(Vec<u8>) -> Change,
    ) -> wasmtime::Result<Result<Vec<u8>, HostCallError>> {
        let path = match self.path(call, ptr, len, true)? {
            Ok(path) => path,
            Err(e) => return Ok(Err(e)),
        };
        let bytes = match data {
            Some((ptr, len)) => call.read(ptr, len)?,
            None => Vec::new(),
        };
        let change = make(bytes);
        let state = self.state.lock();
        let (running, folder) = match running_and_folder(call, &state) {
            Ok(both) => both,
            Err(e) => return Ok(Err(e)),
        };
        let pending = &mut running.exec.files;
        if pending.ops.len() >= MAX_CHANGES {
            return Ok(Err(FileError::TooManyChanges(MAX_CHANGES).into()));
        }
        let carried: u64 = pending
            .ops
            .iter()
            .chain(state.staged.values().flatten())
            .map(|op| match &op.change {
                Change::Write(b) | Change::Append(b) => b.len() as u64,
                _ => 0,
            })
            .sum();
        if let Change::Write(b) | Change::Append(b) = &change
            && carried.saturating_add(b.len() as u64) > self.config.max_bytes
        {
            return Ok(Err(FileError::PendingTooLarge {
                limit: self.config.max_bytes,
            }
            .into()));
        }
        if change == Change::Watch {
            let mut watched: BTreeSet<&RelPath> = state.watches.iter().collect();
            for op in state.staged.values().flatten().chain(&pending.ops) {
                match op.change {
                    Change::Watch => watched.insert(&op.path),
                    Change::Unwatch => watched.remove(&op.path),
                    _ => false,
                };
            }
            if !watched.contains(&path) && watched.len() >= MAX_WATCHES {
                return Ok(Err(FileError::TooManyWatches(MAX_WATCHES).into()));
            }
        }
        let planned = {
            let view = View {
                root: &folder.root,
                staged: state.staged.values().map(Vec::as_slice).collect(),
                own: &pending.ops,
            };
            view.plan(&path, change, &self.quota(folder))
        };
        match planned {
            Ok(ops) => {
                pending.ops.extend(ops);
                Ok(Ok(Vec::new()))
            }
            Err(e) => Ok(Err(e.into())),
        }
    }
}

/// The kind of a path as the SDK's `FileKind` encodes it: its variant number.
fn kind_value(state: &Entry<'_>) -> Value {
    let variant = match state {
        Entry::File(_) => 0,
        Entry::Dir(_) => 1,
        Entry::Other(meta) if meta.kind == path::Kind::Symlink => 2,
        Entry::Other(_) | Entry::Missing => 3,
    };
    Value::Enum {
        variant,
        fields: Vec::new(),
    }
}

/// `Option<FileMetadata>` as the SDK decodes it: kind, size, modified (µs since the epoch;
/// the invocation's logical time for a change not written yet).
fn metadata_value(state: &Entry<'_>, now: i64) -> Value {
    let micros = |meta: &Meta| meta.modified_ns.div_euclid(1000);
    let (size, modified) = match state {
        Entry::Missing => return Value::Option(None),
        Entry::File(file) => (
            file.size,
            match (&file.disk, file.pending) {
                (Some(meta), false) => micros(meta),
                _ => now,
            },
        ),
        Entry::Dir(meta) => (0, meta.as_ref().map_or(now, micros)),
        Entry::Other(meta) => (0, micros(meta)),
    };
    Value::Option(Some(Box::new(Value::Struct(vec![
        kind_value(state),
        Value::U64(size),
        Value::I64(modified),
    ]))))
}

fn link(linker: &mut Linker<HostState>, shared: &Arc<Shared>) -> wasmtime::Result<()> {
    type Answer = wasmtime::Result<i64>;
    let ns = NAMESPACE;

    let s = shared.clone();
    linker.func_wrap(
        ns,
        "read",
        move |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> Answer {
            let mut call = HostCall::new(&mut caller);
            let result = match s.path(&mut call, ptr, len, false)? {
                Ok(path) => s.with_view(&mut call, |view| view.read(&path, s.max_read))?,
                Err(e) => Err(e),
            };
            call.finish(result)
        },
    )?;
    let s = shared.clone();
    linker.func_wrap(
        ns,
        "list",
        move |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> Answer {
            let mut call = HostCall::new(&mut caller);
            let result = match s.path(&mut call, ptr, len, false)? {
                Ok(path) => s.with_view(&mut call, |view| {
                    let entries = view.list(&path)?;
                    Ok(interstice_abi::encode(&Value::List(
                        entries
                            .iter()
                            .map(|(name, state)| {
                                Value::Struct(vec![Value::String(name.clone()), kind_value(state)])
                            })
                            .collect(),
                    )))
                })?,
                Err(e) => Err(e),
            };
            call.finish(result)
        },
    )?;
    let s = shared.clone();
    linker.func_wrap(
        ns,
        "metadata",
        move |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> Answer {
            let mut call = HostCall::new(&mut caller);
            let now = call.stamp().map_or(0, |(time, _)| time);
            let result = match s.path(&mut call, ptr, len, false)? {
                Ok(path) => s.with_view(&mut call, |view| {
                    let state = view.state(&path)?;
                    Ok(interstice_abi::encode(&metadata_value(&state, now)))
                })?,
                Err(e) => Err(e),
            };
            call.finish(result)
        },
    )?;
    let s = shared.clone();
    linker.func_wrap(
        ns,
        "write",
        move |mut caller: Caller<'_, HostState>, p: i32, l: i32, d: i32, n: i32| -> Answer {
            let mut call = HostCall::new(&mut caller);
            let result = s.change(&mut call, (p, l), Some((d, n)), Change::Write)?;
            call.finish(result)
        },
    )?;
    let s = shared.clone();
    linker.func_wrap(
        ns,
        "append",
        move |mut caller: Caller<'_, HostState>, p: i32, l: i32, d: i32, n: i32| -> Answer {
            let mut call = HostCall::new(&mut caller);
            let result = s.change(&mut call, (p, l), Some((d, n)), Change::Append)?;
            call.finish(result)
        },
    )?;
    for (name, change) in [
        ("remove", Change::Remove),
        ("create_dir", Change::CreateDir),
        ("watch", Change::Watch),
        ("unwatch", Change::Unwatch),
    ] {
        let s = shared.clone();
        linker.func_wrap(
            ns,
            name,
            move |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> Answer {
                let mut call = HostCall::new(&mut caller);
                let change = change.clone();
                let result = s.change(&mut call, (ptr, len), None, move |_| change)?;
                call.finish(result)
            },
        )?;
    }
    Ok(())
}
