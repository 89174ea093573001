//! What the node's workers share: installed modules, the store, and the execute path that
//! runs one reducer invocation on whatever thread the scheduler picks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use interstice_abi::{Authority, Event, ModuleSchema, TableEvent, Type, TypeRegistry, Value};
use interstice_scheduler::{self as sched, Invocation, LaneId, Timestamp, Work};
use interstice_store::{Applied, Change, Store, TableId};
use parking_lot::{Mutex, RwLock};
use wasmtime::Engine;

use crate::error::CallFailure;
use crate::invocation::{Access, Exec, RemoteCall, Scheduled, TableMeta, encode_change};
use crate::wasm::{CompiledModule, Limits, ModuleInstance};

/// The per-module table that holds the module's pending timers.
pub(crate) const TIMERS: &str = "__timers";

/// The per-module table of remote calls committed but not yet acknowledged by their node.
pub(crate) const OUTBOX: &str = "__outbox";

/// The per-module table of what arrived from other nodes: per origin, the position of the
/// last call or change the module committed. Per module, so that input from the network
/// conflicts only with other input for the same module.
pub(crate) const DELIVERED: &str = "__delivered";

/// Where a call from another node's outbox came from: the node's id and the calling module,
/// and the call's number in that module's outbox. The receiving node remembers the highest
/// number it committed per origin, in the same transaction, so a call sent twice runs once.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    /// `node_id/module` for a call; for a change streamed by a remote subscription,
    /// `node_id|module.table.event|subscriber module.reducer`.
    pub key: String,
    /// The call's outbox number, or the change's `seq` on its node.
    pub id: u64,
    /// `0` for a call; the change's index in its commit.
    pub part: u32,
}

/// Maps keyed by module, reducer or table names, looked up on every call. foldhash instead of
/// std's SipHash: the keys are short, and hashing them was a visible share of a call.
pub(crate) type NameMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// One reducer invocation, as the scheduler carries it.
#[derive(Clone, Debug)]
pub(crate) struct Task {
    /// Set when an external caller waits for this invocation's outcome.
    pub ticket: Option<u64>,
    /// Shared, not owned: a call clones the installed module's and reducer's names instead of
    /// allocating two strings that travel through the inbox, the ingress and the commit.
    pub module: Arc<str>,
    pub reducer: Arc<str>,
    pub args: Vec<u8>,
    /// The primary key of the timer row that fired this invocation.
    pub timer: Option<Value>,
    /// Set for a call another node's outbox sent.
    pub origin: Option<Origin>,
    /// The `__node.triggers` row that keeps this subscription trigger across a crash until it
    /// has run; deleted in the record of its outcome.
    pub pending: Option<Value>,
}

impl Task {
    /// A call of `module.reducer` that nobody waits for, with nothing else attached.
    pub fn new(module: Arc<str>, reducer: Arc<str>, args: Vec<u8>) -> Task {
        Task {
            ticket: None,
            module,
            reducer,
            args,
            timer: None,
            origin: None,
            pending: None,
        }
    }
}

/// What executing an invocation produced, handed to the ordered commit.
pub(crate) enum Done {
    /// Applied in memory; the commit logs it, then sends its remote calls.
    Applied(Applied, Vec<RemoteCall>),
    /// Nothing of the reducer was applied. `cleanup` removes the timer that fired it, so a failing
    /// timer does not fire forever.
    Failed {
        reason: CallFailure,
        cleanup: Option<Applied>,
    },
}

pub(crate) struct Reducer {
    /// The reducer's name, shared with every [`Task`] that calls it.
    pub name: Arc<str>,
    pub index: u32,
    pub args: Vec<Type>,
    /// Shared with each invocation's context, which would otherwise clone the declared sets.
    pub access: Arc<Access>,
    pub on: Option<Event>,
}

/// An installed module.
pub(crate) struct Installed {
    pub compiled: CompiledModule,
    /// The module's name, shared with every [`Task`] that calls it.
    pub name: Arc<str>,
    pub registry: Arc<TypeRegistry>,
    pub reducers: NameMap<Reducer>,
    /// Per query: its number, argument types, result type and declared access.
    pub queries: HashMap<String, (u32, Vec<Type>, Type, Access)>,
    /// Idle instances. A worker takes one for a call and puts it back, so the pool grows to one
    /// instance per worker that runs this module at once.
    pub pool: Mutex<Vec<ModuleInstance>>,
}

impl Installed {
    pub fn schema(&self) -> &ModuleSchema {
        &self.compiled.schema
    }
}

/// A reducer subscribed to changes of one table.
#[derive(Clone)]
struct Subscriber {
    kind: TableEvent,
    module: Arc<str>,
    reducer: Arc<str>,
}

/// Derived from the installed modules; rebuilt when a module comes or goes.
#[derive(Default)]
struct Index {
    registries: Arc<BTreeMap<String, Arc<TypeRegistry>>>,
    subscribers: HashMap<TableId, Vec<Subscriber>>,
    /// The scheduler's view of each reducer's access: `(module, reducer)` → table ids.
    access: HashMap<(String, String), sched::Access>,
    /// The same, by module then reducer, for lookups without building a key.
    access_by_module: NameMap<NameMap<sched::Access>>,
    timers: NameMap<TableId>,
    outboxes: NameMap<TableId>,
    delivered: NameMap<TableId>,
    /// Reducers subscribed to tables of other nodes, by event, in module then reducer order.
    remote_subscribers: HashMap<Event, Vec<(String, String)>>,
    lanes: NameMap<LaneId>,
    /// Every module table by full name, as host calls open it.
    tables: NameMap<Arc<TableMeta>>,
}

/// The lanes for modules holding a platform authority.
#[derive(Clone, Copy)]
pub(crate) struct Lanes {
    pub gpu: LaneId,
    pub audio: LaneId,
    pub input: LaneId,
}

pub(crate) struct Core {
    pub store: Store,
    pub engine: Engine,
    pub limits: Limits,
    pub seed: u64,
    pub modules: RwLock<BTreeMap<String, Arc<Installed>>>,
    index: RwLock<Index>,
    lanes: Mutex<Option<Lanes>>,
}

impl Core {
    pub fn new(store: Store, engine: Engine, limits: Limits, seed: u64) -> Self {
        Core {
            store,
            engine,
            limits,
            seed,
            modules: RwLock::new(BTreeMap::new()),
            index: RwLock::new(Index::default()),
            lanes: Mutex::new(None),
        }
    }

    pub fn set_lanes(&self, lanes: Lanes) {
        *self.lanes.lock() = Some(lanes);
    }

    pub fn module(&self, name: &str) -> Option<Arc<Installed>> {
        self.modules.read().get(name).cloned()
    }

    pub fn registries(&self) -> Arc<BTreeMap<String, Arc<TypeRegistry>>> {
        self.index.read().registries.clone()
    }

    /// The host calls' view of table `module.table`, if a module declares it.
    pub fn table_meta(&self, full: &str) -> Option<Arc<TableMeta>> {
        self.index.read().tables.get(full).cloned()
    }

    pub fn timers_table(&self, module: &str) -> Option<TableId> {
        self.index.read().timers.get(module).copied()
    }

    /// The `(module, reducer)` subscribed to `event`, a table event of another node.
    pub fn remote_subscribers(&self, event: &Event) -> Vec<(String, String)> {
        self.index
            .read()
            .remote_subscribers
            .get(event)
            .cloned()
            .unwrap_or_default()
    }

    pub fn delivered_table(&self, module: &str) -> Option<TableId> {
        self.index.read().delivered.get(module).copied()
    }

    pub fn outbox_table(&self, module: &str) -> Option<TableId> {
        self.index.read().outboxes.get(module).copied()
    }

    /// Every module's outbox, in module order.
    pub fn outbox_tables(&self) -> Vec<(String, TableId)> {
        let index = self.index.read();
        let mut tables: Vec<(String, TableId)> = index
            .outboxes
            .iter()
            .map(|(m, t)| (m.clone(), *t))
            .collect();
        tables.sort();
        tables
    }

    pub fn timer_tables(&self) -> Vec<(String, TableId)> {
        let index = self.index.read();
        let mut tables: Vec<(String, TableId)> =
            index.timers.iter().map(|(m, t)| (m.clone(), *t)).collect();
        tables.sort();
        tables
    }

    /// Rebuilds everything derived from the set of modules: subscriptions, the scheduler's
    /// access sets, lanes.
    pub fn reindex(&self) {
        let modules = self.modules.read();
        let lanes = *self.lanes.lock();
        let mut index = Index::default();
        let mut registries = BTreeMap::new();
        for (name, module) in modules.iter() {
            registries.insert(name.clone(), module.registry.clone());
            let mut own_tables = Vec::new();
            for table in &module.schema().tables {
                let full = format!("{name}.{}", table.name);
                if let Some(id) = self.store.table_id(&full) {
                    own_tables.push(id);
                    let meta = TableMeta::new(id, full.clone(), table, module.registry.clone());
                    index.tables.insert(full, Arc::new(meta));
                }
            }
            let timers = self.store.table_id(&format!("{name}.{TIMERS}"));
            if let Some(t) = timers {
                index.timers.insert(name.clone(), t);
            }
            let outbox = self.store.table_id(&format!("{name}.{OUTBOX}"));
            if let Some(t) = outbox {
                index.outboxes.insert(name.clone(), t);
            }
            if let Some(t) = self.store.table_id(&format!("{name}.{DELIVERED}")) {
                index.delivered.insert(name.clone(), t);
            }
            if let Some(lanes) = lanes {
                let authorities = &module.schema().authorities;
                let lane = [
                    (Authority::Gpu, lanes.gpu),
                    (Authority::Audio, lanes.audio),
                    (Authority::Input, lanes.input),
                ]
                .into_iter()
                .find(|(a, _)| authorities.contains(a));
                if let Some((_, lane)) = lane {
                    index.lanes.insert(name.clone(), lane);
                }
            }
            // Subscribers in module order, then reducer name order: a deterministic trigger
            // order.
            let mut reducers: Vec<(&String, &Reducer)> = module.reducers.iter().collect();
            reducers.sort_by_key(|(n, _)| *n);
            for (reducer, r) in reducers {
                let access = match &*r.access {
                    Access::OwnModule => sched::Access::from_tables(
                        [],
                        own_tables
                            .iter()
                            .copied()
                            .chain(timers)
                            .chain(outbox)
                            .map(to_sched),
                    ),
                    Access::Declared {
                        reads,
                        writes,
                        calls,
                    } => {
                        let ids = |names: &BTreeSet<String>| -> Vec<sched::TableId> {
                            names
                                .iter()
                                .filter_map(|n| self.store.table_id(n))
                                .map(to_sched)
                                .collect()
                        };
                        // Scheduling one of its own reducers writes the module's timers.
                        let schedules = calls.iter().any(|c| {
                            c.starts_with(&format!("{name}."))
                                && interstice_abi::remote_target(c).is_none()
                        });
                        // Calling another node writes the module's outbox.
                        let remote = calls
                            .iter()
                            .any(|c| interstice_abi::remote_target(c).is_some());
                        sched::Access::from_tables(
                            ids(reads),
                            ids(writes)
                                .into_iter()
                                .chain(timers.filter(|_| schedules).map(to_sched))
                                .chain(outbox.filter(|_| remote).map(to_sched)),
                        )
                    }
                };
                index.access.insert((name.clone(), reducer.clone()), access);
                if let Some(Event::Table {
                    node: None,
                    module: owner,
                    table,
                    kind,
                }) = &r.on
                    && let Some(id) = self.store.table_id(&format!("{owner}.{table}"))
                {
                    index.subscribers.entry(id).or_default().push(Subscriber {
                        kind: *kind,
                        module: module.name.clone(),
                        reducer: r.name.clone(),
                    });
                }
                if let Some(event @ Event::Table { node: Some(_), .. }) = &r.on {
                    index
                        .remote_subscribers
                        .entry(event.clone())
                        .or_default()
                        .push((name.clone(), reducer.clone()));
                }
            }
        }
        // A nested call runs inside the caller's transaction, so the caller's effective access is
        // the union over everything it may call, transitively (DESIGN §4).
        let calls: Vec<((String, String), Vec<String>)> = modules
            .iter()
            .flat_map(|(name, module)| {
                module
                    .reducers
                    .iter()
                    .filter_map(move |(reducer, r)| match &*r.access {
                        Access::Declared { calls, .. } if !calls.is_empty() => Some((
                            (name.clone(), reducer.clone()),
                            calls.iter().cloned().collect(),
                        )),
                        _ => None,
                    })
            })
            .collect();
        for _ in 0..8 {
            let mut changed = false;
            for (caller, callees) in &calls {
                let mut access = index.access.get(caller).cloned().unwrap_or_default();
                let before = access.clone();
                for callee in callees {
                    let Some((m, f)) = callee.split_once('.') else {
                        continue;
                    };
                    if let Some(a) = index.access.get(&(m.to_owned(), f.to_owned())) {
                        access = sched::Access::from_tables(
                            access.reads().iter().chain(a.reads()).copied(),
                            access.writes().iter().chain(a.writes()).copied(),
                        );
                    } else if let Some(module) = modules.get(m)
                        && module.queries.contains_key(f)
                    {
                        // A query may read any table of its module.
                        let reads = module
                            .schema()
                            .tables
                            .iter()
                            .filter_map(|t| self.store.table_id(&format!("{m}.{}", t.name)))
                            .map(to_sched);
                        access = sched::Access::from_tables(
                            access.reads().iter().copied().chain(reads),
                            access.writes().iter().copied(),
                        );
                    }
                }
                if access != before {
                    index.access.insert(caller.clone(), access);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        for ((module, reducer), access) in &index.access {
            index
                .access_by_module
                .entry(module.clone())
                .or_default()
                .insert(reducer.clone(), access.clone());
        }
        index.registries = Arc::new(registries);
        *self.index.write() = index;
    }

    /// The scheduler's work item for `task`.
    pub fn work(&self, task: Task, time: i64) -> Work<Task> {
        let index = self.index.read();
        let mut access = index
            .access_by_module
            .get(&*task.module)
            .and_then(|reducers| reducers.get(&*task.reducer))
            .cloned()
            // Unknown reducers fail when they run; until then they conflict with nothing.
            .unwrap_or_default();
        if task.timer.is_some()
            && let Some(t) = index.timers.get(&*task.module)
        {
            access = access.write(to_sched(*t));
        }
        if task.origin.is_some()
            && let Some(t) = index.delivered.get(&*task.module)
        {
            // Input from other nodes for one module serialises on its `__delivered`, so a
            // duplicate runs after the original and sees it.
            access = access.write(to_sched(*t));
        }
        let lane = index.lanes.get(&*task.module).copied();
        let work = Work::new(task, access, Timestamp(time.max(0) as u64));
        match lane {
            Some(lane) => work.on_lane(lane),
            None => work,
        }
    }

    /// Table events of a committed transaction, in commit order, as new work.
    pub fn events(&self, changes: &[Change], time: i64) -> Vec<Work<Task>> {
        let mut out = Vec::new();
        let tasks: Vec<Task> = {
            let index = self.index.read();
            if index.subscribers.is_empty() {
                return out;
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
        for task in tasks {
            out.push(self.work(task, time));
        }
        out
    }

    /// Runs one invocation and applies its writes in memory. Called on a worker or a lane; the
    /// scheduler guarantees nothing that conflicts with it runs meanwhile.
    pub fn execute(self: &Arc<Self>, inv: &Invocation<Task>) -> Done {
        let task = inv.task();
        let time = inv.time().0 as i64;
        let fail = |reason: CallFailure| Done::Failed {
            cleanup: self.drop_timer(task),
            reason,
        };
        let Some(module) = self.module(&task.module) else {
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
        if let Some(origin) = &task.origin
            && self.seen(&task.module, origin)
        {
            // Sent again after a lost answer or a reconnection: it committed the first time.
            return match self.store.begin().apply() {
                Ok(nothing) => Done::Applied(nothing, Vec::new()),
                Err(e) => fail(CallFailure::Host(e.to_string())),
            };
        }
        let exec = Exec::new(
            self.store.clone(),
            self.registries(),
            Some(self.clone()),
            task.module.clone(),
            task.reducer.clone(),
            reducer.access.clone(),
            time,
            self.seed,
            inv.seq().0,
        );
        let (result, exec) = self.run_in_instance(&module, exec, false, reducer.index, &task.args);
        let mut exec = match (result, exec) {
            (Ok(_), Some(exec)) => exec,
            (Err(reason), _) => return fail(reason),
            (Ok(_), None) => return fail(CallFailure::Host("the invocation was lost".into())),
        };
        // Host-side writes that belong to the same transaction: the timer that fired it, and
        // the timers it set. Both are in the reducer's declared access (see `reindex`).
        let host_writes = (|| -> Result<(), interstice_store::StoreError> {
            // The timer first: most calls have none, and looking its table up is not free.
            if let Some(timer) = &task.timer
                && let Some(t) = self.timers_table(&task.module)
            {
                exec.tx.delete(t, timer)?;
            }
            for Scheduled {
                module,
                reducer,
                due,
                args,
            } in std::mem::take(&mut exec.scheduled)
            {
                if let Some(t) = self.timers_table(&module) {
                    exec.tx.insert(
                        t,
                        vec![
                            Value::U64(0),
                            Value::I64(due),
                            Value::String(reducer),
                            Value::Bytes(args),
                        ],
                    )?;
                }
            }
            // Remote calls wait in their module's outbox until their node acknowledges them,
            // so a committed call survives a restart; the number is what the node dedupes on.
            for call in &mut exec.remote {
                if let Some(t) = self.outbox_table(&call.from) {
                    let row = exec.tx.insert(
                        t,
                        vec![
                            Value::U64(0),
                            Value::String(call.node.clone()),
                            Value::String(call.module.clone()),
                            Value::String(call.reducer.clone()),
                            Value::Bytes(call.args.clone()),
                        ],
                    )?;
                    if let Some(Value::U64(id)) = row.first() {
                        call.id = *id;
                    }
                }
            }
            if let Some(origin) = &task.origin
                && let Some(delivered) = self.delivered_table(&task.module)
            {
                let row = vec![
                    Value::String(origin.key.clone()),
                    Value::U64(origin.id),
                    Value::U64(u64::from(origin.part)),
                ];
                let key = Value::String(origin.key.clone());
                if exec.tx.get(delivered, &key)?.is_some() {
                    exec.tx.update(delivered, row)?;
                } else {
                    exec.tx.insert(delivered, row)?;
                }
            }
            Ok(())
        })();
        if let Err(e) = host_writes {
            return fail(CallFailure::Host(e.to_string()));
        }
        match exec.tx.apply() {
            Ok(applied) => Done::Applied(applied, std::mem::take(&mut exec.remote)),
            Err(e) => fail(CallFailure::Host(e.to_string())),
        }
    }

    /// Whether `module` committed the input from `origin` already.
    fn seen(&self, module: &str, origin: &Origin) -> bool {
        let Some(delivered) = self.delivered_table(module) else {
            return false;
        };
        let key = Value::String(origin.key.clone());
        let Ok(Some(row)) = self.store.read().get(delivered, &key) else {
            return false;
        };
        match (row.get(1), row.get(2)) {
            (Some(Value::U64(last)), Some(Value::U64(part))) => {
                (*last, *part) >= (origin.id, u64::from(origin.part))
            }
            _ => false,
        }
    }

    /// Deletes the timer that fired `task`, in a transaction of its own.
    fn drop_timer(&self, task: &Task) -> Option<Applied> {
        let timer = task.timer.as_ref()?;
        let table = self.timers_table(&task.module)?;
        let mut tx = self.store.begin();
        tx.delete(table, timer).ok()?;
        tx.apply().ok()
    }

    /// Runs a call in an instance of `installed` with `fuel` (a nested call gets what its
    /// caller has left); returns its result, the fuel it used and its context.
    pub fn run_nested(
        &self,
        installed: &Installed,
        exec: Exec,
        query: bool,
        index: u32,
        args: &[u8],
        fuel: u64,
    ) -> (Result<Vec<u8>, CallFailure>, u64, Option<Box<Exec>>) {
        let instance = installed.pool.lock().pop();
        let mut instance = match instance {
            Some(i) => i,
            None => match installed.compiled.instantiate(&self.engine, &self.limits) {
                Ok(i) => i,
                Err(e) => return (Err(CallFailure::Host(e.to_string())), 0, None),
            },
        };
        let output = instance.run_with_fuel(Box::new(exec), query, index, args, fuel);
        if output.reusable {
            installed.pool.lock().push(instance);
        }
        let exec = output.invocation.as_any().downcast::<Exec>().ok();
        (output.result, output.fuel_used, exec)
    }

    /// Runs a top-level call in an instance of `installed` with the full fuel budget.
    pub fn run_in_instance(
        &self,
        installed: &Installed,
        exec: Exec,
        query: bool,
        index: u32,
        args: &[u8],
    ) -> (Result<Vec<u8>, CallFailure>, Option<Box<Exec>>) {
        let (result, _, exec) = self.run_nested(
            installed,
            exec,
            query,
            index,
            args,
            self.limits.fuel_per_call,
        );
        (result, exec)
    }
}

pub(crate) fn to_sched(id: TableId) -> sched::TableId {
    sched::TableId(id.0)
}
