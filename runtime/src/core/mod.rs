//! What the node's workers share: installed modules, the store, the host calls, and the
//! execute path that runs one reducer invocation on whatever thread the scheduler picks.

mod index;
mod task;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use interstice_abi::host::ErrorCode;
use interstice_abi::{Authority, Event, ModuleSchema, Type, TypeRegistry, Value};
use interstice_scheduler::{self as sched, Invocation, LaneId, Timestamp, Work};
use interstice_store::{Applied, Change, Store, TableId};
use parking_lot::Mutex;
use wasmtime::{Engine, Linker};

pub(crate) use index::{HostTables, to_sched};
pub(crate) use task::{Done, Origin, Task};

use crate::authority::Authorities;
use crate::error::{BadArguments, CallFailure, HostCallError, LoadError};
use crate::exec::{Callee, Exec, Frame, Scheduled, encode_change};
use crate::feed::Feeds;
use crate::system::{self, Delivered, OutboxCall, Timer};
use crate::wasm::{
    self, Call, CompiledModule, HostState, Limits, ModuleInstance, RunOutput, Running,
};
use index::Index;

/// How deep reducers and queries may call each other at run time. The scheduler does not
/// depend on it: it plans with the closure over the whole call graph (`index.rs`).
const MAX_CALL_DEPTH: u32 = 8;

/// Maps keyed by module, reducer or table names, looked up on every call. foldhash instead of
/// std's SipHash: the keys are short, and hashing them was a visible share of a call.
pub(crate) type NameMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

pub(crate) struct Reducer {
    /// The reducer's name, shared with every [`Task`] that calls it.
    pub name: Arc<str>,
    pub index: u32,
    pub args: Vec<Type>,
    pub on: Option<Event>,
    /// What each invocation's frame shares: its name and permissions among them.
    pub callee: Arc<Callee>,
}

pub(crate) struct Query {
    pub index: u32,
    pub args: Vec<Type>,
    pub returns: Type,
    pub callee: Arc<Callee>,
}

/// An installed module.
pub(crate) struct Installed {
    pub compiled: CompiledModule,
    /// The module's name, shared with every [`Task`] that calls it.
    pub name: Arc<str>,
    pub registry: Arc<TypeRegistry>,
    pub reducers: NameMap<Reducer>,
    pub queries: NameMap<Query>,
    /// Idle instances. A worker takes one for a call and puts it back, so the pool grows to one
    /// instance per worker that runs this module at once. Boxed: an instance moves out and
    /// back on every call, and a pointer is cheaper to move than the instance.
    pub pool: Mutex<Vec<(u64, Box<ModuleInstance>)>>,
}

/// This thread's number for the instance pools: a worker takes back the instance it ran last,
/// whose memory is still in its core's caches.
fn thread_key() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static KEY: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    KEY.with(|k| *k)
}

impl Installed {
    pub fn schema(&self) -> &ModuleSchema {
        &self.compiled.schema
    }
}

pub(crate) struct Core {
    pub store: Store,
    pub engine: Engine,
    /// The host calls every instance is linked with: the core's and the authorities'.
    pub linker: Linker<HostState>,
    pub limits: Limits,
    pub seed: u64,
    /// Read by every invocation, written by an install: swapped whole, so that reading takes
    /// no lock (a lock's counter is a cache line that every worker would write per call).
    pub modules: ArcSwap<BTreeMap<String, Arc<Installed>>>,
    pub authorities: Authorities,
    /// Derived from `modules` by [`reindex`](Self::reindex); swapped whole like them.
    index: ArcSwap<Index>,
    /// The lane of each authority that has one.
    lanes: Mutex<HashMap<Authority, LaneId>>,
    /// Set when an invocation scheduled a timer, so the node's thread looks for due ones.
    timer_hint: AtomicBool,
    /// The node's remote subscriptions: a commit encodes the changes of fed tables for them.
    feeds: Arc<Feeds>,
}

impl Core {
    pub fn new(
        store: Store,
        limits: Limits,
        seed: u64,
        authorities: Authorities,
        feeds: Arc<Feeds>,
    ) -> Result<Self, LoadError> {
        let engine = wasm::engine(&limits)?;
        let mut linker = Linker::new(&engine);
        wasm::link(&mut linker)?;
        authorities.link(&mut linker)?;
        Ok(Core {
            store,
            engine,
            linker,
            limits,
            seed,
            modules: ArcSwap::from_pointee(BTreeMap::new()),
            authorities,
            index: ArcSwap::from_pointee(Index::default()),
            lanes: Mutex::new(HashMap::new()),
            timer_hint: AtomicBool::new(false),
            feeds,
        })
    }

    /// Compiles `wasm` with this node's host calls and validates it; returns the module and
    /// its first instance.
    pub fn compile(&self, wasm: &[u8]) -> Result<(CompiledModule, ModuleInstance), LoadError> {
        let provided = |kind| self.authorities.get(kind).is_some();
        wasm::compile(&self.engine, &self.linker, wasm, &self.limits, &provided)
    }

    /// Whether a timer was scheduled since the last time this was asked.
    pub fn take_timer_hint(&self) -> bool {
        self.timer_hint.swap(false, Ordering::Relaxed)
    }

    /// The authorities that have a lane.
    pub fn laned(&self) -> Vec<Authority> {
        self.lanes.lock().keys().copied().collect()
    }

    /// Forgets the lane of `authority`, returning it.
    pub fn take_lane(&self, authority: Authority) -> Option<LaneId> {
        self.lanes.lock().remove(&authority)
    }

    pub fn set_lane(&self, authority: Authority, lane: LaneId) {
        self.lanes.lock().insert(authority, lane);
    }

    pub fn module(&self, name: &str) -> Option<Arc<Installed>> {
        self.modules.load().get(name).cloned()
    }

    pub fn host_tables(&self, module: &str) -> Option<HostTables> {
        self.index.load().host_tables.get(module).copied()
    }

    /// Every module's host tables, in module order.
    pub fn all_host_tables(&self) -> Vec<(String, HostTables)> {
        let mut tables: Vec<(String, HostTables)> = self
            .index
            .load()
            .host_tables
            .iter()
            .map(|(m, t)| (m.clone(), *t))
            .collect();
        tables.sort_by(|a, b| a.0.cmp(&b.0));
        tables
    }

    /// The `(module, reducer)` subscribed to `event`, a table event of another node.
    pub fn remote_subscribers(&self, event: &Event) -> Vec<(String, String)> {
        self.index
            .load()
            .remote_subscribers
            .get(event)
            .cloned()
            .unwrap_or_default()
    }

    /// The scheduler's access set of `module.reducer`: its own and everything it may call.
    pub fn access(&self, module: &str, reducer: &str) -> Option<Arc<sched::AccessSet>> {
        self.index
            .load()
            .access
            .get(module)
            .and_then(|r| r.get(reducer))
            .cloned()
    }

    /// Rebuilds everything derived from the set of modules.
    pub fn reindex(&self) {
        // Under the lanes' lock, so that reindexes run one at a time and the last to run,
        // which saw every install before it, is the one that stays.
        let lanes = self.lanes.lock();
        let modules = self.modules.load_full();
        let mut index = Index::build(&self.store, &modules, &lanes);
        index.modules = modules;
        self.index.store(Arc::new(index));
    }

    /// A context for `frame`, over this node's store and tables.
    pub fn exec(self: &Arc<Self>, frame: Frame) -> Exec {
        self.exec_in(&self.index.load(), frame)
    }

    /// [`exec`](Self::exec) with the index the caller already holds.
    fn exec_in(&self, index: &Index, frame: Frame) -> Exec {
        Exec::new(
            &self.store,
            index.registries.clone(),
            index
                .resolver
                .clone()
                .unwrap_or_else(|| Arc::new(|_: &str| None)),
            frame,
        )
    }

    /// The scheduler's work item for `task`.
    pub fn work(&self, mut task: Task, time: i64) -> Work<Task> {
        let index = self.index.load();
        let mut access = index
            .access
            .get(&*task.module)
            .and_then(|reducers| reducers.get(&*task.reducer))
            .cloned()
            // Unknown reducers fail when they run; until then they conflict with nothing.
            .unwrap_or_default();
        // Most nodes have no partitioned reducer: skip the lookups then.
        if !index.part_plans.is_empty()
            && let Some(plan) = index
                .part_plans
                .get(&*task.module)
                .and_then(|reducers| reducers.get(&*task.reducer))
        {
            let (planned, parts) = plan.plan(&access, &task.args);
            access = planned;
            task.parts = parts;
        }
        if (task.timer().is_some() || task.origin().is_some())
            && let Some(host) = index.host_tables.get(&*task.module)
        {
            let mut own = Arc::unwrap_or_clone(access);
            if task.timer().is_some() {
                own = own.write(to_sched(host.timers));
            }
            if task.origin().is_some() {
                // Input from other nodes for one module serialises on its `__delivered`, so a
                // duplicate runs after the original and sees it.
                own = own.write(to_sched(host.delivered));
            }
            access = Arc::new(own);
        }
        let lane = if index.lanes.is_empty() {
            None
        } else {
            index.lanes.get(&*task.module).copied()
        };
        let work = Work::new(task, access, Timestamp(time.max(0) as u64));
        match lane {
            Some(lane) => work.on_lane(lane),
            None => work,
        }
    }

    /// Table events of a committed transaction, in commit order, as new work.
    pub fn events(&self, changes: &[Change], time: i64) -> Vec<Work<Task>> {
        let tasks: Vec<Task> = {
            let index = self.index.load();
            if index.subscribers.is_empty() {
                return Vec::new();
            }
            let mut tasks = Vec::new();
            for change in changes {
                let Some(subs) = index.subscribers.get(&change.table) else {
                    continue;
                };
                let (kind, args) = encode_change(&change.kind);
                for sub in subs.iter().filter(|s| s.kind == kind) {
                    tasks.push(Task::new(
                        sub.module.clone(),
                        sub.reducer.clone(),
                        args.clone(),
                    ));
                }
            }
            tasks
        };
        tasks
            .into_iter()
            .map(|task| self.work(task, time))
            .collect()
    }

    /// Whether the commit of `changes` reads them: to trigger subscribers of their tables, or
    /// to feed a remote subscriber. Both sets change only between windows (under the driver's
    /// lock: installs, feed registrations), so what a worker sees here is what the commit of
    /// the same window sees.
    fn wants_changes(&self, index: &Index, changes: &[Change]) -> bool {
        if self.feeds.any() {
            return true;
        }
        !index.subscribers.is_empty()
            && changes
                .iter()
                .any(|c| index.subscribers.contains_key(&c.table))
    }

    /// Runs one invocation and applies its writes in memory. Called on a worker or a lane; the
    /// scheduler guarantees nothing that conflicts with it runs meanwhile.
    pub fn execute(self: &Arc<Self>, inv: &Invocation<Task>) -> Done {
        let task = inv.task();
        let fail = |reason: CallFailure| Done::Failed {
            cleanup: self.drop_timer(task),
            reason,
        };
        // One load for the call: its module, its context and, after it, whether its changes
        // are wanted. Modules change only between windows, with the index.
        let index = self.index.load();
        let Some(module) = index.modules.get(&*task.module) else {
            return fail(CallFailure::Host(format!(
                "no module `{}` on this node",
                task.module
            )));
        };
        let Some(reducer) = module.reducers.get(&*task.reducer) else {
            return fail(CallFailure::Host(format!(
                "module `{}` has no reducer `{}`",
                task.module, task.reducer
            )));
        };
        if let Some(origin) = task.origin()
            && self.seen(&task.module, origin)
        {
            // Sent again after a lost answer or a reconnection: it committed the first time.
            return match self.store.begin().apply() {
                Ok(nothing) => Done::Applied(nothing, Vec::new()),
                Err(e) => fail(CallFailure::Host(e.to_string())),
            };
        }
        let frame = Frame {
            callee: reducer.callee.clone(),
            timestamp: inv.time().0 as i64,
            seq: inv.seq().0,
            seed: self.seed,
        };
        let running = || Running {
            exec: self.exec_in(&index, frame).with_parts(task.parts.clone()),
            core: self.clone(),
            // `render` and `audio_output` hooks produce frames and samples, not state.
            read_only: reducer.on.as_ref().is_some_and(Event::is_read_only),
            hook: reducer.on.clone(),
        };
        let call = Call {
            query: false,
            index: reducer.index,
            args: &task.args,
            fuel: self.limits.fuel_per_call,
        };
        self.run(module, running, call, |running, output| {
            // The authority of a platform hook finishes what the hook started (a frame, a
            // block), on this thread, and may fail it.
            let finished = match reducer.on.as_ref().and_then(|e| Some((e, e.authority()?))) {
                Some((event, kind)) => match self.authorities.get(kind) {
                    Some(authority) => authority
                        .finish_hook(&task.module, event, output.result.is_ok())
                        .map_err(|e| CallFailure::Host(format!("{kind:?}: {e}"))),
                    None => Ok(()),
                },
                None => Ok(()),
            };
            if let Err(reason) = output.result.and(finished) {
                return fail(reason);
            }
            let exec = &mut running.exec;
            if let Err(e) = self.host_writes(task, exec) {
                return fail(CallFailure::Host(e.to_string()));
            }
            match exec.tx.apply_taken() {
                Ok(mut applied) => {
                    // Dropped here, on the thread that made them and while they are in its
                    // cache, rather than by the serial commit, when nothing there reads them.
                    if !self.wants_changes(&index, applied.changes()) {
                        drop(applied.take_changes());
                    }
                    // Visible to the invocations after it from now on, like its table writes;
                    // written to disk by the ordered commit.
                    if !exec.files.is_empty() {
                        let files = std::mem::take(&mut exec.files);
                        self.authorities.stage_files(inv.seq().0, files);
                    }
                    Done::Applied(applied, std::mem::take(&mut exec.remote))
                }
                Err(e) => fail(CallFailure::Host(e.to_string())),
            }
        })
    }

    /// Host-side writes that belong to the invocation's transaction: the timer that fired it,
    /// the timers it set, its remote calls and the mark of the input it consumed. All are in
    /// the reducer's access set (`index.rs`), so they are atomic with it and deterministic.
    fn host_writes(&self, task: &Task, exec: &mut Exec) -> Result<(), system::SystemError> {
        // Most calls have neither a timer nor an origin, and looking the tables up is not free.
        let host = (task.timer().is_some() || task.origin().is_some())
            .then(|| self.host_tables(&task.module))
            .flatten();
        if let (Some(timer), Some(host)) = (task.timer(), host) {
            exec.tx.delete(host.timers, &Value::U64(timer))?;
        }
        if !exec.scheduled.is_empty() {
            self.timer_hint.store(true, Ordering::Relaxed);
        }
        for Scheduled {
            module,
            reducer,
            due,
            args,
        } in std::mem::take(&mut exec.scheduled)
        {
            if let Some(host) = self.host_tables(&module) {
                let timer = Timer {
                    id: 0,
                    due,
                    reducer,
                    args,
                };
                system::insert(&mut exec.tx, host.timers, timer)?;
            }
        }
        // Remote calls wait in their module's outbox until their node acknowledges them, so a
        // committed call survives a restart; the number is what the node dedupes on.
        let mut remote = std::mem::take(&mut exec.remote);
        for call in &mut remote {
            if let Some(host) = self.host_tables(&call.from) {
                let row = OutboxCall {
                    id: 0,
                    node: call.node.clone(),
                    module: call.module.clone(),
                    reducer: call.reducer.clone(),
                    args: call.args.clone(),
                };
                call.id = system::insert(&mut exec.tx, host.outbox, row)?.id;
            }
        }
        exec.remote = remote;
        if let (Some(origin), Some(host)) = (task.origin(), host) {
            let row = Delivered {
                origin: origin.key.clone(),
                last: origin.id,
                part: u64::from(origin.part),
            };
            let key = Value::String(origin.key.clone());
            if system::get::<Delivered>(&exec.tx, host.delivered, key)?.is_some() {
                system::update(&mut exec.tx, host.delivered, row)?;
            } else {
                system::insert(&mut exec.tx, host.delivered, row)?;
            }
        }
        Ok(())
    }

    /// Whether `module` committed the input from `origin` already.
    fn seen(&self, module: &str, origin: &Origin) -> bool {
        let Some(host) = self.host_tables(module) else {
            return false;
        };
        let key = Value::String(origin.key.clone());
        match system::get::<Delivered>(&self.store.read(), host.delivered, key) {
            Ok(Some(row)) => row.position() >= (origin.id, u64::from(origin.part)),
            Ok(None) => false,
            Err(e) => {
                // Running it again is the safe side only if it never ran; say so loudly.
                tracing::error!(%module, error = %e, "cannot read what was delivered");
                false
            }
        }
    }

    /// Deletes the timer that fired `task`, in a transaction of its own.
    fn drop_timer(&self, task: &Task) -> Option<Applied> {
        let timer = task.timer()?;
        let host = self.host_tables(&task.module)?;
        let mut tx = self.store.begin();
        tx.delete(host.timers, &Value::U64(timer)).ok()?;
        tx.apply().ok()
    }

    /// Runs reducer (or, with `query`, query) `name` for the invocation `caller`, inside its
    /// transaction, with at most `fuel`; returns its result and the fuel it used.
    pub fn call_nested(
        self: &Arc<Self>,
        caller: &mut Exec,
        query: bool,
        name: &str,
        args: &[u8],
        fuel: u64,
    ) -> Result<(Vec<u8>, u64), HostCallError> {
        let what = if query { "query" } else { "reducer" };
        let full = if name.contains('.') {
            name.to_owned()
        } else {
            format!("{}.{name}", caller.frame().module)
        };
        caller.check_call(what, &full)?;
        if caller.depth() >= MAX_CALL_DEPTH {
            return Err(HostCallError::fatal(
                ErrorCode::Other,
                format!("calls nest deeper than {MAX_CALL_DEPTH} levels (at `{full}`)"),
            ));
        }
        let (module_name, function) = full.split_once('.').unwrap_or_default();
        let module = self.module(module_name).ok_or_else(|| {
            HostCallError::fatal(
                ErrorCode::NotFound,
                format!("no module `{module_name}` on this node"),
            )
        })?;
        let (index, arg_types, callee) = if query {
            let q = module.queries.get(function).ok_or_else(|| {
                HostCallError::fatal(ErrorCode::NotFound, format!("no query `{full}`"))
            })?;
            (q.index, &q.args, q.callee.clone())
        } else {
            let r = module.reducers.get(function).ok_or_else(|| {
                HostCallError::fatal(ErrorCode::NotFound, format!("no reducer `{full}`"))
            })?;
            if let Some(event) = &r.on {
                return Err(HostCallError::fatal(
                    ErrorCode::Denied,
                    format!("`{full}` runs on `{event}` events and cannot be called"),
                ));
            }
            (r.index, &r.args, r.callee.clone())
        };
        interstice_abi::decode_fields(args, arg_types, &module.registry).map_err(|e| {
            let bad = BadArguments::new(module_name, function, arg_types, e);
            HostCallError::fatal(ErrorCode::BadInput, bad.to_string())
        })?;
        let frame = Frame {
            callee,
            ..caller.frame().clone()
        };
        let nested = caller.nest(frame);
        let running = move || Running {
            exec: nested,
            core: self.clone(),
            read_only: query,
            hook: None,
        };
        let call = Call {
            query,
            index,
            args,
            fuel,
        };
        let output = self.run(&module, running, call, |running, output| {
            caller.unnest(&mut running.exec);
            output
        });
        match output.result {
            Ok(bytes) => Ok((bytes, output.fuel_used)),
            // Its writes are in the shared transaction and cannot be taken back alone, so a
            // failed nested call fails the caller.
            Err(reason) => Err(HostCallError::fatal(
                ErrorCode::Other,
                format!("nested call to `{full}` failed: {reason}"),
            )),
        }
    }

    /// Runs a call in an instance of `installed` taken from its pool (or a new one), and puts
    /// the instance back if it is still sound. `running` and `finish` are as in
    /// [`ModuleInstance::run`].
    pub fn run<R>(
        &self,
        installed: &Installed,
        running: impl FnOnce() -> Running,
        call: Call<'_>,
        finish: impl FnOnce(&mut Running, RunOutput) -> R,
    ) -> R {
        let key = thread_key();
        let instance = {
            let mut pool = installed.pool.lock();
            match pool.iter().rposition(|(k, _)| *k == key) {
                Some(i) => Some(pool.swap_remove(i).1),
                None => pool.pop().map(|(_, i)| i),
            }
        };
        let mut instance = match instance {
            Some(i) => i,
            None => match installed.compiled.instantiate(&self.engine, &self.limits) {
                Ok(i) => Box::new(i),
                Err(e) => {
                    let output = RunOutput {
                        result: Err(CallFailure::Host(e.to_string())),
                        fuel_used: 0,
                    };
                    return finish(&mut running(), output);
                }
            },
        };
        let (finished, reusable) = instance.run(running, call, finish);
        if reusable {
            installed.pool.lock().push((key, instance));
        }
        finished
    }

    /// The table ids of `module.table`, when it exists.
    pub fn table_id(&self, module: &str, table: &str) -> Option<TableId> {
        self.store.table_id(&format!("{module}.{table}"))
    }
}
