//! The node: installed modules, the ingress, reducers as transactions, events and timers.
//!
//! Every invocation enters one ingress and gets a sequence number and a logical timestamp. The
//! scheduler runs a window of them on `workers` threads — in parallel where their declared
//! access does not conflict — and this file commits their results strictly in sequence order:
//! the log, the tables and the events are the same for any number of workers (DESIGN §3–§4).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use interstice_abi::{
    ABI_VERSION, Authority, Event, IndexKind, ModuleSchema, Persistence, TableSchema, Type,
    TypeRegistry, Value, decode_fields, encode_into,
};
use interstice_scheduler::{
    self as sched, Config as SchedConfig, Ingress, Invocation, Scheduler, Seq,
};
use interstice_store::{
    CommitMeta, Durability, Lsn, RecoveryReport, Store, StoreConfig, StoreError, TableId,
};
use parking_lot::Mutex;

use crate::core::{Core, DELIVERED, Done, Installed, Lanes, OUTBOX, Origin, Reducer, TIMERS, Task};
use crate::error::{CallFailure, LoadError};
use crate::feed::{FeedSink, FeedTables, Feeds, Kept, Position, Restored};
use crate::invocation::{Access, Exec, RemoteCall};
use crate::wasm::{self, Limits};

/// Where logical time comes from. Reducers never see the wall clock: `ctx.now()` is the time the
/// ingress stamped on the invocation.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// Microseconds since the Unix epoch.
    #[default]
    System,
    /// A clock the embedder (or a test) sets by hand, in microseconds.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `micros`, and the handle that moves it.
    pub fn manual(micros: i64) -> (Clock, Arc<AtomicI64>) {
        let handle = Arc::new(AtomicI64::new(micros));
        (Clock::Manual(handle.clone()), handle)
    }

    fn now(&self) -> i64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }
}

/// How to open a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Where the node keeps modules, the commit log and snapshots. `None`: memory only.
    /// By default, `None`.
    pub data_dir: Option<PathBuf>,
    /// By default, [`Limits::default`].
    pub limits: Limits,
    /// When a commit is reported durable. By default, [`Durability::EveryCommit`].
    pub durability: Durability,
    /// Seeds every invocation's random generator (with its sequence number). By default, 0.
    pub seed: u64,
    /// By default, [`Clock::System`].
    pub clock: Clock,
    /// The most invocations one external call may trigger through subscriptions before the
    /// cascade is cut (a subscription that feeds itself). By default, 100 000.
    pub max_cascade: usize,
    /// Worker threads that run non-conflicting reducers in parallel; `1` runs them one by one
    /// (the serial reference). Results are identical for every value. By default, the number of
    /// cores.
    pub workers: usize,
    /// For crash tests: the scheduler windows left to run; once they are spent, every drive
    /// stops with [`NodeError::Halted`] and leaves what it had not run, as a process that died
    /// there would. By default, `None`: never.
    #[doc(hidden)]
    pub halt_after_windows: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: None,
            limits: Limits::default(),
            durability: Durability::EveryCommit,
            seed: 0,
            clock: Clock::System,
            max_cascade: 100_000,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            halt_after_windows: None,
        }
    }
}

/// What went wrong, for the person running the node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error("the node was halted for a test (NodeConfig::halt_after_windows)")]
    Halted,
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("no module `{0}` on this node; `interstice node schema` lists what is installed")]
    NoSuchModule(String),
    #[error("module `{module}` has no {kind} `{name}`")]
    NoSuchFunction {
        module: String,
        kind: &'static str,
        name: String,
    },
    #[error("`{module}.{reducer}` runs on `{event}` events and cannot be called directly")]
    NotCallable {
        module: String,
        reducer: String,
        event: String,
    },
    #[error("bad arguments for `{module}.{function}`: {reason}; expected ({signature})")]
    BadArguments {
        module: String,
        function: String,
        reason: String,
        signature: String,
    },
    #[error("module `{0}` is already installed; remove it first")]
    AlreadyInstalled(String),
    #[error(
        "authority {authority:?} is already held by module `{holder}`; a node grants each authority to one module"
    )]
    AuthorityTaken {
        authority: Authority,
        holder: String,
    },
    #[error("module name `{0}` is reserved for the node")]
    Reserved(String),
    #[error("query `{module}.{query}` failed: {reason}")]
    QueryFailed {
        module: String,
        query: String,
        reason: CallFailure,
    },
    #[error("the scheduler failed: {0}")]
    Scheduler(#[from] sched::Error),
    #[error("cannot upgrade module `{module}`: {reason}")]
    Incompatible { module: String, reason: String },
    #[error("{0}")]
    Unauthorized(String),
}

/// What [`Node::publish`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    Installed(ModuleSchema),
    Upgraded { from: String, to: ModuleSchema },
}

/// The outcome of one reducer invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything it wrote is committed (and durable, under the configured durability).
    Committed { seq: u64, lsn: Lsn },
    /// Nothing it wrote was committed.
    Failed { seq: u64, reason: CallFailure },
}

impl Outcome {
    pub fn is_committed(&self) -> bool {
        matches!(self, Outcome::Committed { .. })
    }
}

/// Submitted invocations waiting to enter the ingress, and their callers' outcomes.
struct Inbox {
    next_ticket: u64,
    last_timestamp: i64,
    work: Vec<sched::Work<Task>>,
}

/// The scheduler and its ingress. Whoever holds this lock drives windows; callers that arrive
/// meanwhile leave their work in the inbox and find it done.
struct Driver {
    scheduler: Scheduler<Task, Done>,
    ingress: Ingress<Task>,
}

/// A running Interstice node. Every method takes `&self`; share it behind an `Arc`.
pub struct Node {
    core: Arc<Core>,
    config: NodeConfig,
    driver: Mutex<Driver>,
    inbox: Mutex<Inbox>,
    outcomes: Mutex<HashMap<u64, Outcome>>,
    /// Invocations triggered by subscriptions in the current drive, to cut runaway cascades.
    cascade: std::sync::atomic::AtomicUsize,
    stats: Counters,
    sys_modules: TableId,
    /// `__node.triggers`: subscription triggers of durable commits that have not run yet.
    sys_triggers: TableId,
    /// `__node.feeds` and `__node.feed`: durable feeds and their kept changes.
    sys_feeds: FeedTables,
    recovery: RecoveryReport,
    /// Remote subscribers of committed changes.
    feeds: Feeds,
    /// Where committed remote calls go, in commit order; `None` without a network.
    outbound: parking_lot::RwLock<Option<tokio::sync::mpsc::UnboundedSender<RemoteCall>>>,
    /// Bumped whenever the set of modules changes, for the network's peers.
    modules_changed: tokio::sync::watch::Sender<u64>,
}

/// A reducer call as [`Node::call_reducers_from`] takes it: module, reducer, encoded arguments,
/// and, for a call from another node's outbox, the calling module and the call's number there.
pub type RemoteCallIn<'a> = (&'a str, &'a str, &'a [u8], Option<(&'a str, u64)>);

/// Another node that installed modules depend on: its address and what they subscribe to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteNode {
    /// The name the modules' bindings give it.
    pub name: String,
    pub address: String,
    /// `(module, table, event)` on that node, sorted, without duplicates.
    pub subscriptions: Vec<(String, String, interstice_abi::TableEvent)>,
}

const SYSTEM: &str = "__node";

impl Node {
    /// Opens (or creates) a node, recovers its store and reloads its modules, firing `load`.
    pub fn open(config: NodeConfig) -> Result<Node, NodeError> {
        let engine = wasm::engine(&config.limits)?;
        let (store, recovery) = match &config.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir.join("modules")).map_err(|source| NodeError::Io {
                    context: format!("cannot create {}", dir.display()),
                    source,
                })?;
                Store::open(
                    dir.join("store"),
                    StoreConfig::default().durability(config.durability),
                )?
            }
            None => (Store::in_memory(), RecoveryReport::default()),
        };
        // The node's own tables, in the `__node` namespace no module can name.
        let system_table = |builder: interstice_abi::TableSchemaBuilder| {
            builder
                .build()
                .map_err(StoreError::from)
                .and_then(|schema| {
                    store.create_table(SYSTEM, schema, Arc::new(TypeRegistry::default()))
                })
        };
        let sys_modules = system_table(
            TableSchema::builder("modules")
                .column("name", Type::String)
                .column("installed_at", Type::U64)
                .primary_key("name"),
        )?;
        let sys_triggers = system_table(
            TableSchema::builder("triggers")
                .auto_inc_column("id", Type::U64)
                .column("module", Type::String)
                .column("reducer", Type::String)
                .column("args", Type::Bytes)
                .column("time", Type::I64)
                .primary_key("id"),
        )?;
        let sys_feeds = FeedTables {
            feeds: system_table(
                TableSchema::builder("feeds")
                    .column("table", Type::String)
                    .column("since", Type::U64)
                    .column("trimmed", Type::Bool)
                    .primary_key("table"),
            )?,
            feed: system_table(
                TableSchema::builder("feed")
                    .auto_inc_column("id", Type::U64)
                    .column("table", Type::String)
                    .column("seq", Type::U64)
                    .column("part", Type::U64)
                    .column("kind", Type::U64)
                    .column("rows", Type::Bytes)
                    .primary_key("id"),
            )?,
        };
        let next_seq = store.last_seq().map_or(0, |s| s + 1);
        let core = Arc::new(Core::new(store, engine, config.limits.clone(), config.seed));
        let worker_core = core.clone();
        let scheduler = Scheduler::new(
            SchedConfig::new()
                .workers(config.workers.max(1))
                .lane("gpu")
                .lane("audio")
                .lane("input")
                .thread_name("interstice"),
            move |inv: &Invocation<Task>| worker_core.execute(inv),
        )?;
        core.set_lanes(Lanes {
            gpu: scheduler.lane("gpu")?,
            audio: scheduler.lane("audio")?,
            input: scheduler.lane("input")?,
        });
        let node = Node {
            core,
            config,
            driver: Mutex::new(Driver {
                scheduler,
                ingress: Ingress::starting_at(Seq(next_seq)),
            }),
            inbox: Mutex::new(Inbox {
                next_ticket: 0,
                last_timestamp: i64::MIN,
                work: Vec::new(),
            }),
            outcomes: Mutex::new(HashMap::new()),
            cascade: std::sync::atomic::AtomicUsize::new(0),
            stats: Counters::default(),
            sys_modules,
            sys_triggers,
            sys_feeds,
            recovery,
            feeds: Feeds::default(),
            outbound: parking_lot::RwLock::new(None),
            modules_changed: tokio::sync::watch::Sender::new(0),
        };
        node.reload_modules()?;
        Ok(node)
    }

    /// What recovering the store found.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The underlying store, for inspection.
    pub fn store(&self) -> &Store {
        &self.core.store
    }

    /// The number of worker threads reducers run on.
    pub fn workers(&self) -> usize {
        self.driver.lock().scheduler.workers()
    }

    /// The schemas of the installed modules, by name.
    pub fn schemas(&self) -> Vec<ModuleSchema> {
        self.core
            .modules
            .read()
            .values()
            .map(|m| m.schema().clone())
            .collect()
    }

    fn reload_modules(&self) -> Result<(), NodeError> {
        let Some(dir) = &self.config.data_dir else {
            return Ok(());
        };
        let mut installed: Vec<(u64, String)> = self
            .store()
            .read()
            .scan(self.sys_modules)?
            .map(|row| (as_u64(&row[1]), as_string(&row[0])))
            .collect();
        installed.sort();
        for (_, name) in &installed {
            let path = dir.join("modules").join(format!("{name}.wasm"));
            let wasm = std::fs::read(&path).map_err(|source| NodeError::Io {
                context: format!("cannot read installed module {}", path.display()),
                source,
            })?;
            let module = self.prepare(&wasm)?;
            self.register(module)?;
        }
        self.restore_feeds()?;
        // What was committed before the node stopped comes before anything new.
        self.resume_triggers()?;
        for (_, name) in installed {
            self.fire_lifecycle(&name, &Event::Load)?;
        }
        Ok(())
    }

    /// Reinstates the durable feeds, so that changes committed from now on are kept for the
    /// remote subscribers that reconnect, after those committed before the node stopped.
    fn restore_feeds(&self) -> Result<(), NodeError> {
        let view = self.store().read();
        let mut feeds: HashMap<String, Restored> = HashMap::new();
        let mut orphans = Vec::new();
        for row in view.scan(self.sys_feeds.feeds)? {
            let name = as_string(&row[0]);
            match self.store().table_id(&name) {
                Some(table) => {
                    // A feed starts at a commit boundary.
                    let since = (as_u64(&row[1]), 0);
                    let trimmed = matches!(row[2], Value::Bool(true));
                    feeds.insert(
                        name.clone(),
                        Restored {
                            table,
                            name,
                            since,
                            trimmed,
                            kept: Vec::new(),
                        },
                    );
                }
                None => orphans.push(name),
            }
        }
        if !orphans.is_empty() {
            tracing::warn!(tables = ?orphans, "durable feeds of tables that no longer exist are ignored");
        }
        for row in view.scan(self.sys_feeds.feed)? {
            let Some(feed) = feeds.get_mut(&as_string(&row[1])) else {
                continue;
            };
            let Some(kind) = crate::feed::kind_from_code(as_u64(&row[4])) else {
                continue;
            };
            let rows = match &row[5] {
                Value::Bytes(b) => b.clone(),
                _ => continue,
            };
            let position = (as_u64(&row[2]), as_u64(&row[3]) as u32);
            feed.kept.push((
                as_u64(&row[0]),
                Kept {
                    position,
                    kind,
                    rows,
                },
            ));
        }
        drop(view);
        let mut restored: Vec<Restored> = feeds.into_values().collect();
        for feed in &mut restored {
            feed.kept.sort_by_key(|(id, _)| *id);
        }
        self.feeds.restore(restored);
        Ok(())
    }

    /// Runs the subscription triggers that durable commits emitted and that had not run when
    /// the node stopped, in the order they were emitted, at the time they were emitted for.
    fn resume_triggers(&self) -> Result<(), NodeError> {
        let mut pending: Vec<Vec<Value>> = self
            .store()
            .read()
            .scan(self.sys_triggers)?
            .map(|row| row.to_vec())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        pending.sort_by_key(|row| as_u64(&row[0]));
        tracing::info!(
            triggers = pending.len(),
            "running the subscription triggers of commits made before the node stopped"
        );
        {
            let mut inbox = self.inbox.lock();
            for row in pending {
                let mut row = row.into_iter();
                let (Some(id), Some(module), Some(reducer), Some(args), Some(time)) =
                    (row.next(), row.next(), row.next(), row.next(), row.next())
                else {
                    continue;
                };
                let args = match args {
                    Value::Bytes(b) => b,
                    _ => Vec::new(),
                };
                let task = Task {
                    pending: Some(id),
                    ..Task::new(as_string(&module).into(), as_string(&reducer).into(), args)
                };
                self.push_locked(&mut inbox, task, Some(as_i64(&time)));
            }
        }
        self.drive()
    }

    /// Installs a module: validates it, persists it, creates its tables, then fires `init`
    /// (first install only) and `load`.
    pub fn install(&self, wasm: &[u8]) -> Result<ModuleSchema, NodeError> {
        let module = self.prepare(wasm)?;
        self.install_prepared(module, wasm)
    }

    fn install_prepared(&self, module: Installed, wasm: &[u8]) -> Result<ModuleSchema, NodeError> {
        let name = module.schema().name.clone();
        let schema = module.schema().clone();
        let first_install = {
            // Tables and modules change only while no window runs.
            let _driver = self.driver.lock();
            if self.core.modules.read().contains_key(&name) {
                return Err(NodeError::AlreadyInstalled(name));
            }
            if let Some(dir) = &self.config.data_dir {
                write_atomically(&dir.join("modules").join(format!("{name}.wasm")), wasm)?;
            }
            self.register(module)?;
            let key = Value::String(name.clone());
            let first = self.store().read().get(self.sys_modules, &key)?.is_none();
            if first {
                let order = self.store().read().len(self.sys_modules)? as u64;
                let mut tx = self.store().begin();
                tx.insert(self.sys_modules, vec![key, Value::U64(order)])?;
                let _installed = tx.commit(system_meta("install", &name))?;
            }
            first
        };
        if first_install {
            self.fire_lifecycle(&name, &Event::Init)?;
        }
        self.fire_lifecycle(&name, &Event::Load)?;
        Ok(schema)
    }

    /// Installs `wasm`, or upgrades the installed module of the same name. An upgrade keeps the
    /// data: every table of the installed version must exist unchanged in the new one (new
    /// tables may be added), otherwise it is refused and nothing changes. Fires `load`.
    pub fn publish(&self, wasm: &[u8]) -> Result<Published, NodeError> {
        self.publish_if(wasm, |_| Ok(()))
    }

    /// [`publish`](Self::publish), once `allow` has accepted the validated module's schema;
    /// its error refuses the module ([`NodeError::Unauthorized`]) and nothing changes.
    pub fn publish_if(
        &self,
        wasm: &[u8],
        allow: impl FnOnce(&ModuleSchema) -> Result<(), String>,
    ) -> Result<Published, NodeError> {
        let module = self.prepare(wasm)?;
        allow(module.schema()).map_err(NodeError::Unauthorized)?;
        let name = module.schema().name.clone();
        let Some(old) = self.core.module(&name) else {
            return self
                .install_prepared(module, wasm)
                .map(Published::Installed);
        };
        for table in &old.schema().tables {
            match module.schema().table(&table.name) {
                None => {
                    return Err(NodeError::Incompatible {
                        module: name,
                        reason: format!(
                            "it drops table `{}`; removing a table loses its rows — remove the module first if that is intended",
                            table.name
                        ),
                    });
                }
                Some(new) if new != table => {
                    return Err(NodeError::Incompatible {
                        module: name,
                        reason: format!(
                            "table `{}` changed its schema; migrations are not supported yet",
                            table.name
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        let from = old.schema().version.clone();
        let schema = module.schema().clone();
        {
            let _driver = self.driver.lock();
            if let Some(dir) = &self.config.data_dir {
                write_atomically(&dir.join("modules").join(format!("{name}.wasm")), wasm)?;
            }
            self.register(module)?;
        }
        self.fire_lifecycle(&name, &Event::Load)?;
        Ok(Published::Upgraded { from, to: schema })
    }

    /// Removes a module with its tables, rows and timers. Installing it again fires `init`.
    pub fn remove(&self, name: &str) -> Result<(), NodeError> {
        let _driver = self.driver.lock();
        let module = self
            .core
            .modules
            .write()
            .remove(name)
            .ok_or_else(|| NodeError::NoSuchModule(name.to_owned()))?;
        self.core.reindex();
        let tables = module
            .schema()
            .tables
            .iter()
            .map(|t| t.name.as_str())
            .chain([TIMERS, OUTBOX, DELIVERED]);
        for table in tables {
            if let Some(id) = self.store().table_id(&format!("{name}.{table}")) {
                self.feeds.drop_table(id);
                self.store().drop_table(id)?;
            }
        }
        self.modules_changed.send_modify(|n| *n += 1);
        let mut tx = self.store().begin();
        tx.delete(self.sys_modules, &Value::String(name.to_owned()))?;
        // Its durable feeds go with its tables: the rows naming `<name>.<table>`.
        let prefix = format!("{name}.");
        let mut fed = Vec::new();
        {
            let view = self.store().read();
            for (table, name_at) in [(self.sys_feeds.feeds, 0), (self.sys_feeds.feed, 1)] {
                for row in view.scan(table)? {
                    if as_string(&row[name_at]).starts_with(&prefix) {
                        fed.push((table, row[0].clone()));
                    }
                }
            }
        }
        for (table, key) in fed {
            tx.delete(table, &key)?;
        }
        let _removed = tx.commit(system_meta("remove", name))?;
        if let Some(dir) = &self.config.data_dir {
            let path = dir.join("modules").join(format!("{name}.wasm"));
            std::fs::remove_file(&path).map_err(|source| NodeError::Io {
                context: format!("cannot remove {}", path.display()),
                source,
            })?;
        }
        Ok(())
    }

    fn prepare(&self, wasm: &[u8]) -> Result<Installed, NodeError> {
        let (compiled, first) = wasm::compile(&self.core.engine, wasm, &self.config.limits)?;
        let schema = &compiled.schema;
        if schema.name.starts_with("__") {
            return Err(NodeError::Reserved(schema.name.clone()));
        }
        let registry = Arc::new(
            schema
                .validate(ABI_VERSION)
                .map_err(|e| LoadError::BadSchema(e.to_string()))?,
        );
        for authority in &schema.authorities {
            // The installed version of the same module may hold it: that is an upgrade.
            if let Some(holder) = self.core.modules.read().values().find(|m| {
                m.schema().name != schema.name && m.schema().authorities.contains(authority)
            }) {
                return Err(NodeError::AuthorityTaken {
                    authority: *authority,
                    holder: holder.schema().name.clone(),
                });
            }
        }
        let qualify = |t: &String| {
            if t.contains('.') {
                t.clone()
            } else {
                format!("{}.{t}", schema.name)
            }
        };
        let access = |declared: &Option<interstice_abi::Access>| match declared {
            None => Access::OwnModule,
            Some(a) => Access::Declared {
                reads: a.reads.iter().map(qualify).collect(),
                writes: a.writes.iter().map(qualify).collect(),
                calls: a.calls.iter().map(qualify).collect(),
            },
        };
        let reducers = schema
            .reducers
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let reducer = Reducer {
                    name: Arc::from(r.name.as_str()),
                    index: i as u32,
                    args: r.args.iter().map(|f| f.ty.clone()).collect(),
                    access: Arc::new(access(&r.access)),
                    on: r.on.clone(),
                };
                (r.name.clone(), reducer)
            })
            .collect();
        let queries = schema
            .queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let args = q.args.iter().map(|f| f.ty.clone()).collect();
                (
                    q.name.clone(),
                    (i as u32, args, q.returns.clone(), access(&q.access)),
                )
            })
            .collect();
        Ok(Installed {
            name: Arc::from(schema.name.as_str()),
            compiled,
            registry,
            reducers,
            queries,
            pool: Mutex::new(vec![first]),
        })
    }

    /// Creates the module's tables and makes it callable. Call with the driver lock held.
    fn register(&self, module: Installed) -> Result<(), NodeError> {
        let name = module.schema().name.clone();
        for table in &module.schema().tables {
            self.store()
                .create_table(&name, table.clone(), module.registry.clone())?;
        }
        for table in host_tables().map_err(StoreError::from)? {
            self.store()
                .create_table(&name, table, Arc::new(TypeRegistry::default()))?;
        }
        self.core.modules.write().insert(name, Arc::new(module));
        self.core.reindex();
        self.modules_changed.send_modify(|n| *n += 1);
        Ok(())
    }

    fn module(&self, name: &str) -> Result<Arc<Installed>, NodeError> {
        self.core
            .module(name)
            .ok_or_else(|| NodeError::NoSuchModule(name.to_owned()))
    }

    /// Calls a reducer with encoded arguments and waits for its outcome (and for the reducers
    /// its commit triggers).
    pub fn call_reducer(
        &self,
        module: &str,
        reducer: &str,
        args: &[u8],
    ) -> Result<Outcome, NodeError> {
        let (module, reducer) = self.check_reducer_call(module, reducer, args)?;
        let ticket = self.submit(module, reducer, args.to_vec(), None, None, None);
        let outcome = self.drive_until(ticket)?;
        self.wait_durable(&outcome)?;
        Ok(outcome)
    }

    /// Calls many reducers at once, each checked as by [`call_reducer`](Self::call_reducer):
    /// the valid ones enter the ingress in the order given (one window for the scheduler), and
    /// each gets its own outcome or error, in order.
    pub fn call_reducers(&self, calls: &[(&str, &str, &[u8])]) -> Vec<Result<Outcome, NodeError>> {
        let calls: Vec<RemoteCallIn<'_>> = calls
            .iter()
            .map(|&(module, reducer, args)| (module, reducer, args, None))
            .collect();
        self.call_reducers_from(None, &calls)
    }

    /// [`call_reducers`](Self::call_reducers) for calls that node `node_id` sent from its
    /// outbox: each may carry `(calling module, outbox number)`. A call whose number this node
    /// has committed for that origin already (it was sent again after a lost answer or a
    /// reconnection) does not run again and is reported committed.
    pub fn call_reducers_from(
        &self,
        node_id: Option<&str>,
        calls: &[RemoteCallIn<'_>],
    ) -> Vec<Result<Outcome, NodeError>> {
        let tickets: Vec<Result<u64, NodeError>> = calls
            .iter()
            .map(|&(module, reducer, args, from)| {
                let (module, reducer) = self.check_reducer_call(module, reducer, args)?;
                let origin = match (node_id, from) {
                    (Some(node), Some((caller, id))) => Some(Origin {
                        key: format!("{node}/{caller}"),
                        id,
                        part: 0,
                    }),
                    _ => None,
                };
                Ok(self.submit(module, reducer, args.to_vec(), None, None, origin))
            })
            .collect();
        let outcomes: Vec<Result<Outcome, NodeError>> = tickets
            .into_iter()
            .map(|ticket| ticket.and_then(|t| self.drive_until(t)))
            .collect();
        // Durability is in log order: the last committed call being durable covers the rest.
        let last = outcomes
            .iter()
            .rev()
            .find_map(|o| o.as_ref().ok().filter(|o| o.is_committed()));
        if let Some(last) = last
            && let Err(e) = self.wait_durable(last)
        {
            let message = e.to_string();
            return outcomes
                .into_iter()
                .map(|o| match o {
                    Ok(Outcome::Committed { seq, .. }) => Ok(Outcome::Failed {
                        seq,
                        reason: CallFailure::Host(format!("not made durable: {message}")),
                    }),
                    other => other,
                })
                .collect();
        }
        outcomes
    }

    /// Checks that `module.reducer` exists, may be called from outside and takes `args`;
    /// returns the shared names to submit it under.
    fn check_reducer_call(
        &self,
        module: &str,
        reducer: &str,
        args: &[u8],
    ) -> Result<(Arc<str>, Arc<str>), NodeError> {
        let installed = self.module(module)?;
        let r = installed
            .reducers
            .get(reducer)
            .ok_or_else(|| NodeError::NoSuchFunction {
                module: module.to_owned(),
                kind: "reducer",
                name: reducer.to_owned(),
            })?;
        if let Some(event) = &r.on {
            return Err(NodeError::NotCallable {
                module: module.to_owned(),
                reducer: reducer.to_owned(),
                event: event.to_string(),
            });
        }
        decode_fields(args, &r.args, &installed.registry).map_err(|e| NodeError::BadArguments {
            module: module.to_owned(),
            function: reducer.to_owned(),
            reason: e.to_string(),
            signature: signature(&r.args),
        })?;
        Ok((installed.name.clone(), r.name.clone()))
    }

    /// Calls a reducer with typed arguments, checked against its signature.
    pub fn call_reducer_values(
        &self,
        module: &str,
        reducer: &str,
        args: &[Value],
    ) -> Result<Outcome, NodeError> {
        let installed = self.module(module)?;
        let types = installed
            .reducers
            .get(reducer)
            .map(|r| r.args.clone())
            .ok_or_else(|| NodeError::NoSuchFunction {
                module: module.to_owned(),
                kind: "reducer",
                name: reducer.to_owned(),
            })?;
        let bytes = encode_args(module, reducer, &types, args, &installed.registry)?;
        self.call_reducer(module, reducer, &bytes)
    }

    /// Submits many reducer calls at once (encoded arguments, not checked) and waits for all of
    /// them. They enter the ingress in the order given, so the scheduler sees them in one window
    /// and runs the non-conflicting ones in parallel.
    pub fn call_many(&self, calls: &[(&str, &str, Vec<u8>)]) -> Result<Vec<Outcome>, NodeError> {
        let tickets: Vec<u64> = calls
            .iter()
            .map(|(module, reducer, args)| {
                self.submit(*module, *reducer, args.clone(), None, None, None)
            })
            .collect();
        let mut outcomes = Vec::with_capacity(tickets.len());
        for ticket in tickets {
            outcomes.push(self.drive_until(ticket)?);
        }
        if let Some(last) = outcomes.iter().rev().find(|o| o.is_committed()) {
            self.wait_durable(last)?;
        }
        Ok(outcomes)
    }

    /// Runs a query over the committed state and returns its value.
    pub fn call_query(
        &self,
        module: &str,
        query: &str,
        args: &[Value],
    ) -> Result<Value, NodeError> {
        let installed = self.module(module)?;
        let (index, types, returns, access) =
            installed
                .queries
                .get(query)
                .cloned()
                .ok_or_else(|| NodeError::NoSuchFunction {
                    module: module.to_owned(),
                    kind: "query",
                    name: query.to_owned(),
                })?;
        let bytes = encode_args(module, query, &types, args, &installed.registry)?;
        // Between windows: a query never sees half of one.
        let _driver = self.driver.lock();
        let timestamp = self.stamp(None);
        let exec = Exec::new(
            self.store().clone(),
            self.core.registries(),
            Some(self.core.clone()),
            module,
            query,
            access,
            timestamp,
            self.config.seed,
            u64::MAX,
        );
        let (result, _) = self
            .core
            .run_in_instance(&installed, exec, true, index, &bytes);
        let bytes = result.map_err(|reason| NodeError::QueryFailed {
            module: module.to_owned(),
            query: query.to_owned(),
            reason,
        })?;
        interstice_abi::decode(&bytes, &returns, &installed.registry).map_err(|e| {
            NodeError::Load(LoadError::BadSchema(format!(
                "query `{module}.{query}` returned bytes that are not a {returns}: {e}"
            )))
        })
    }

    /// Runs every timer whose logical due time has come, in due order.
    pub fn run_due_timers(&self) -> Result<usize, NodeError> {
        let now = self.config.clock.now();
        let mut due: Vec<(i64, String, Value, String, Vec<u8>)> = Vec::new();
        {
            let view = self.store().read();
            for (module, table) in self.core.timer_tables() {
                for row in view.scan(table)? {
                    let at = as_i64(&row[1]);
                    if at <= now {
                        let args = match &row[3] {
                            Value::Bytes(b) => b.clone(),
                            _ => Vec::new(),
                        };
                        due.push((at, module.clone(), row[0].clone(), as_string(&row[2]), args));
                    }
                }
            }
        }
        // Due time, then module, then the order they were scheduled in.
        due.sort_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
        let count = due.len();
        for (at, module, id, reducer, args) in due {
            self.enqueue(module, reducer, args, Some(at), Some(id), None);
        }
        if count > 0 {
            self.drive()?;
        }
        Ok(count)
    }

    /// The number of timers waiting, over all modules.
    pub fn pending_timers(&self) -> Result<usize, NodeError> {
        let view = self.store().read();
        let mut n = 0;
        for (_, table) in self.core.timer_tables() {
            n += view.len(table)?;
        }
        Ok(n)
    }

    /// The logical time of a new invocation: the clock, or `at` for a timer, never earlier than
    /// the previous invocation's.
    fn stamp(&self, at: Option<i64>) -> i64 {
        self.stamp_locked(&mut self.inbox.lock(), at)
    }

    fn stamp_locked(&self, inbox: &mut Inbox, at: Option<i64>) -> i64 {
        let t = at
            .unwrap_or_else(|| self.config.clock.now())
            .max(inbox.last_timestamp);
        inbox.last_timestamp = t;
        t
    }

    /// Puts an invocation in the inbox and returns the ticket its outcome will be filed under.
    /// `origin` is set for input another node sent (see [`Origin`]).
    fn submit(
        &self,
        module: impl Into<Arc<str>>,
        reducer: impl Into<Arc<str>>,
        args: Vec<u8>,
        at: Option<i64>,
        timer: Option<Value>,
        origin: Option<Origin>,
    ) -> u64 {
        let mut inbox = self.inbox.lock();
        let ticket = inbox.next_ticket;
        inbox.next_ticket += 1;
        let task = Task {
            ticket: Some(ticket),
            timer,
            origin,
            ..Task::new(module.into(), reducer.into(), args)
        };
        self.push_locked(&mut inbox, task, at);
        ticket
    }

    /// Puts an invocation nobody waits for in the inbox: its outcome is not kept. Run it with
    /// [`drive`](Self::drive).
    fn enqueue(
        &self,
        module: impl Into<Arc<str>>,
        reducer: impl Into<Arc<str>>,
        args: Vec<u8>,
        at: Option<i64>,
        timer: Option<Value>,
        origin: Option<Origin>,
    ) {
        let task = Task {
            timer,
            origin,
            ..Task::new(module.into(), reducer.into(), args)
        };
        self.push_locked(&mut self.inbox.lock(), task, at);
    }

    fn push_locked(&self, inbox: &mut Inbox, task: Task, at: Option<i64>) {
        // Stamped under the inbox lock, so time order follows submission order.
        let time = self.stamp_locked(inbox, at);
        let work = self.core.work(task, time);
        inbox.work.push(work);
    }

    /// Routes the remote calls that committed reducers make (`ctx.call_remote`) to `outbound`,
    /// in commit order. Without it they are logged and dropped.
    pub fn set_outbound(&self, outbound: tokio::sync::mpsc::UnboundedSender<RemoteCall>) {
        *self.outbound.write() = Some(outbound);
    }

    /// The module holding the `Module` authority, which decides who may publish and remove.
    pub fn manager(&self) -> Option<String> {
        self.core
            .modules
            .read()
            .values()
            .find(|m| m.schema().authorities.contains(&Authority::Module))
            .map(|m| m.schema().name.clone())
    }

    /// Asks the module manager whether a client may `action` (`"publish"`, `"remove"`)
    /// `module`; `Ok` when there is no manager.
    pub fn authorize(&self, action: &str, module: &str, admin: bool) -> Result<(), String> {
        let Some(manager) = self.manager() else {
            return Ok(());
        };
        let args = [
            Value::String(action.to_owned()),
            Value::String(module.to_owned()),
            Value::Bool(admin),
        ];
        match self.call_query(&manager, interstice_abi::MANAGER_QUERY, &args) {
            Ok(Value::Bool(true)) => Ok(()),
            Ok(_) => Err(format!(
                "module `{manager}`, this node's module manager, does not allow you to {action} `{module}`"
            )),
            Err(e) => Err(format!(
                "module `{manager}`, this node's module manager, failed to decide: {e}"
            )),
        }
    }

    /// The remote calls to node `node` that committed and were not acknowledged yet, in
    /// module then outbox order: what a peer sends (again) when it connects.
    pub fn pending_remote(&self, node: &str) -> Result<Vec<RemoteCall>, NodeError> {
        let view = self.store().read();
        let mut calls = Vec::new();
        for (module, table) in self.core.outbox_tables() {
            for row in view.scan(table)? {
                if !matches!(&row[1], Value::String(n) if n == node) {
                    continue;
                }
                let args = match &row[4] {
                    Value::Bytes(b) => b.clone(),
                    _ => Vec::new(),
                };
                calls.push(RemoteCall {
                    from: module.clone(),
                    node: node.to_owned(),
                    module: as_string(&row[2]),
                    reducer: as_string(&row[3]),
                    args,
                    id: as_u64(&row[0]),
                });
            }
        }
        Ok(calls)
    }

    /// Forgets remote calls their node has answered, `(calling module, outbox number)`: they
    /// will not be sent again. A system commit between windows, like installing a module; the
    /// outboxes are the host's, no reducer can read them.
    pub fn ack_remote(&self, acks: &[(String, u64)]) -> Result<(), NodeError> {
        if acks.is_empty() {
            return Ok(());
        }
        let _driver = self.driver.lock();
        let mut tx = self.store().begin();
        let mut any = false;
        for (module, id) in acks {
            if let Some(table) = self.core.outbox_table(module) {
                any |= tx.delete(table, &Value::U64(*id)).is_ok();
            }
        }
        if any {
            let _acked = tx.commit(system_meta("ack", "remote calls"))?;
        }
        Ok(())
    }

    /// Changes whenever a module is installed, upgraded or removed.
    pub fn watch_modules(&self) -> tokio::sync::watch::Receiver<u64> {
        self.modules_changed.subscribe()
    }

    /// Streams the committed changes of `module.table` of kind `kind` to `sink`, in commit
    /// order, until the sink's channel closes or falls behind (then `sink.lagged` is notified).
    /// With `after`, the position of the last change the subscriber has, the changes after it
    /// that the node kept come first; returns whether they are all it missed.
    pub fn subscribe_table(
        &self,
        module: &str,
        table: &str,
        kind: interstice_abi::TableEvent,
        sink: FeedSink,
        after: Option<Position>,
    ) -> Result<bool, NodeError> {
        let installed = self.module(module)?;
        if installed.schema().table(table).is_none() {
            return Err(NodeError::NoSuchFunction {
                module: module.to_owned(),
                kind: "table",
                name: table.to_owned(),
            });
        }
        let full = format!("{module}.{table}");
        let id = self
            .store()
            .table_id(&full)
            .ok_or_else(|| NodeError::NoSuchModule(module.to_owned()))?;
        // A feed survives a restart when the table does.
        let durable = self.config.data_dir.is_some()
            && installed
                .schema()
                .table(table)
                .is_some_and(|t| t.persistence != interstice_abi::Persistence::Ephemeral);
        // Registered between windows, so the subscriber sees every commit after this one.
        let driver = self.driver.lock();
        let next_seq = driver.ingress.next_seq().0;
        let (complete, created) = self.feeds.add(
            id,
            kind,
            sink,
            after,
            next_seq,
            durable.then_some(full.as_str()),
        );
        if created {
            let mut tx = self.store().begin();
            tx.insert(
                self.sys_feeds.feeds,
                vec![
                    Value::String(full.clone()),
                    Value::U64(next_seq),
                    Value::Bool(false),
                ],
            )?;
            let _kept = tx.commit(system_meta("feed", &full))?;
        }
        Ok(complete)
    }

    /// The other nodes the installed modules depend on (their node bindings), with the
    /// tables they subscribe to there. Where two modules bind the same name to different
    /// addresses, the first module (by name) wins and the conflict is logged.
    pub fn remote_nodes(&self) -> Vec<RemoteNode> {
        let mut nodes: std::collections::BTreeMap<String, RemoteNode> = Default::default();
        for (module, installed) in self.core.modules.read().iter() {
            let schema = installed.schema();
            for dep in &schema.nodes {
                let entry = nodes.entry(dep.name.clone()).or_insert_with(|| RemoteNode {
                    name: dep.name.clone(),
                    address: dep.address.clone(),
                    subscriptions: Vec::new(),
                });
                if entry.address != dep.address {
                    tracing::warn!(
                        node = %dep.name, %module, kept = %entry.address, ignored = %dep.address,
                        "two modules bind the same node name to different addresses"
                    );
                }
            }
            for reducer in &schema.reducers {
                if let Some(Event::Table {
                    node: Some(node),
                    module,
                    table,
                    kind,
                }) = &reducer.on
                    && let Some(entry) = nodes.get_mut(node)
                {
                    entry
                        .subscriptions
                        .push((module.clone(), table.clone(), *kind));
                }
            }
        }
        nodes
            .into_values()
            .map(|mut n| {
                n.subscriptions
                    .sort_by(|a, b| (&a.0, &a.1, a.2 as u8).cmp(&(&b.0, &b.1, b.2 as u8)));
                n.subscriptions.dedup();
                n
            })
            .collect()
    }

    /// Runs the reducers subscribed to `node.module.table.<kind>` with a change that node
    /// committed at `position` (`rows` as in [`FeedEvent`](crate::FeedEvent)), in module then
    /// reducer name order, and waits for them. Returns how many it submitted. `remote_id` is the
    /// node's id: each subscriber remembers, in its invocation's transaction, the last position
    /// it got from that node, so a change sent again after a reconnection runs once. The bytes
    /// come from another node and are checked: a subscriber whose arguments they do not decode
    /// as is skipped, with a warning (its binding is likely out of date).
    #[allow(clippy::too_many_arguments)]
    pub fn deliver_remote(
        &self,
        remote_id: &str,
        node: &str,
        module: &str,
        table: &str,
        kind: interstice_abi::TableEvent,
        position: Position,
        rows: &[u8],
    ) -> Result<usize, NodeError> {
        let event = remote_event(node, module, table, kind);
        let subscribers = self.core.remote_subscribers(&event);
        let mut submitted = 0;
        for (subscriber, reducer) in &subscribers {
            let Some(installed) = self.core.module(subscriber) else {
                continue;
            };
            let Some(r) = installed.reducers.get(reducer.as_str()) else {
                continue;
            };
            if let Err(e) = decode_fields(rows, &r.args, &installed.registry) {
                tracing::warn!(
                    module = %subscriber, %reducer, %event, error = %e,
                    "a remote change does not decode as the subscriber's arguments; is the binding out of date?"
                );
                continue;
            }
            let origin = Origin {
                key: subscription_key(remote_id, &event, subscriber, reducer),
                id: position.0,
                part: position.1,
            };
            self.enqueue(
                subscriber.as_str(),
                reducer.as_str(),
                rows.to_vec(),
                None,
                None,
                Some(origin),
            );
            submitted += 1;
        }
        if submitted > 0 {
            self.drive()?;
        }
        Ok(submitted)
    }

    /// The position of the last change of `node.module.table.<kind>` that every subscriber
    /// here with a mark has from node `remote_id`: where a resumed subscription starts. `None`
    /// when none has any yet (start from now). A subscriber added since gets the replayed
    /// changes too, rather than one that was there missing them.
    pub fn remote_position(
        &self,
        remote_id: &str,
        node: &str,
        module: &str,
        table: &str,
        kind: interstice_abi::TableEvent,
    ) -> Result<Option<Position>, NodeError> {
        let event = remote_event(node, module, table, kind);
        let view = self.store().read();
        let mut least: Option<Position> = None;
        for (subscriber, reducer) in self.core.remote_subscribers(&event) {
            let Some(delivered) = self.core.delivered_table(&subscriber) else {
                continue;
            };
            let key = Value::String(subscription_key(remote_id, &event, &subscriber, &reducer));
            let Some(row) = view.get(delivered, &key)? else {
                continue;
            };
            let position = (
                as_u64(&row[1]),
                u32::try_from(as_u64(&row[2])).unwrap_or(u32::MAX),
            );
            least = Some(least.map_or(position, |l| l.min(position)));
        }
        Ok(least)
    }

    /// Fires every module's `connect` hooks with the peer's node id, in module order.
    pub fn peer_connected(&self, node_id: &str) -> Result<(), NodeError> {
        self.fire_peer(&Event::Connect, node_id)
    }

    /// Fires every module's `disconnect` hooks with the peer's node id, in module order.
    pub fn peer_disconnected(&self, node_id: &str) -> Result<(), NodeError> {
        self.fire_peer(&Event::Disconnect, node_id)
    }

    fn fire_peer(&self, event: &Event, node_id: &str) -> Result<(), NodeError> {
        let mut args = Vec::new();
        encode_into(&Value::String(node_id.to_owned()), &mut args);
        let names: Vec<String> = self.core.modules.read().keys().cloned().collect();
        let mut any = false;
        for module in names {
            any |= self.submit_hooks(&module, event, &args)?;
        }
        if any {
            self.drive()?;
        }
        Ok(())
    }

    /// Enqueues `module`'s reducers subscribed to `event`, in name order; returns whether
    /// there were any.
    fn submit_hooks(&self, module: &str, event: &Event, args: &[u8]) -> Result<bool, NodeError> {
        let installed = self.module(module)?;
        let mut hooks: Vec<&String> = installed
            .reducers
            .iter()
            .filter(|(_, r)| r.on.as_ref() == Some(event))
            .map(|(name, _)| name)
            .collect();
        hooks.sort();
        for name in &hooks {
            self.enqueue(module, name.as_str(), args.to_vec(), None, None, None);
        }
        Ok(!hooks.is_empty())
    }

    fn fire_lifecycle(&self, module: &str, event: &Event) -> Result<(), NodeError> {
        if self.submit_hooks(module, event, &[])? {
            self.drive()?;
        }
        Ok(())
    }

    /// Runs windows until the invocation filed under `ticket` has committed or failed (with
    /// everything before it and everything its commit triggered), and returns its outcome.
    fn drive_until(&self, ticket: u64) -> Result<Outcome, NodeError> {
        self.drive_for(Some(ticket))?.ok_or_else(|| {
            NodeError::Load(LoadError::Engine(format!("invocation {ticket} was lost")))
        })
    }

    /// Runs windows until the ingress is empty: what was enqueued, and everything it triggers.
    fn drive(&self) -> Result<(), NodeError> {
        self.drive_for(None).map(drop)
    }

    /// Runs windows until the ingress is empty; returns the outcome filed under `ticket`.
    fn drive_for(&self, ticket: Option<u64>) -> Result<Option<Outcome>, NodeError> {
        let mut driver = self.driver.lock();
        self.cascade.store(0, std::sync::atomic::Ordering::Relaxed);
        // This caller's own outcome skips the shared map: only invocations of other callers
        // that this drive happens to run are filed there.
        let mut mine = None;
        loop {
            let Driver { scheduler, ingress } = &mut *driver;
            {
                // Drained in place, so the inbox keeps its buffer for the next submissions.
                let mut inbox = self.inbox.lock();
                for work in inbox.work.drain(..) {
                    ingress.push(work);
                }
            }
            if ingress.is_empty() {
                return Ok(mine.or_else(|| {
                    let ticket = ticket?;
                    self.outcomes.lock().remove(&ticket)
                }));
            }
            let started = std::time::Instant::now();
            // The end of the last commit is the end of the window, give or take the push of
            // what it emitted: one clock read fewer per window (a window is often one call).
            let mut ended = None;
            let report = scheduler.run_window(ingress, |inv, outcome| {
                let commit_started = std::time::Instant::now();
                let work = self.commit(inv, outcome, ticket, &mut mine);
                let now = std::time::Instant::now();
                self.stats
                    .commit_nanos
                    .fetch_add(nanos_between(commit_started, now), Relaxed);
                ended = Some(now);
                work
            })?;
            let ended = ended.unwrap_or_else(std::time::Instant::now);
            self.stats.windows.fetch_add(1, Relaxed);
            self.stats
                .invocations
                .fetch_add(report.invocations as u64, Relaxed);
            self.stats
                .window_nanos
                .fetch_add(nanos_between(started, ended), Relaxed);
            if let Some(left) = &self.config.halt_after_windows {
                let before = left
                    .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)))
                    .unwrap_or(0);
                if before <= 1 {
                    return Err(NodeError::Halted);
                }
            }
        }
    }

    /// Counters since the node opened, for benchmarks and monitoring.
    pub fn stats(&self) -> NodeStats {
        NodeStats {
            windows: self.stats.windows.load(Relaxed),
            invocations: self.stats.invocations.load(Relaxed),
            window_nanos: self.stats.window_nanos.load(Relaxed),
            commit_nanos: self.stats.commit_nanos.load(Relaxed),
        }
    }

    /// The ordered commit: called for each invocation of a window in sequence order, on the
    /// driving thread. Logs what the worker applied, files the caller's outcome (the driving
    /// caller's, filed under `mine_ticket`, into `mine`) and returns the work its changes
    /// trigger.
    fn commit(
        &self,
        inv: &Invocation<Task>,
        outcome: sched::Outcome<Done>,
        mine_ticket: Option<u64>,
        mine: &mut Option<Outcome>,
    ) -> Vec<sched::Work<Task>> {
        let task = inv.task();
        let seq = inv.seq().0;
        let time = inv.time().0 as i64;
        // A memory-only store keeps no records, so it would build the meta for nothing.
        let persistent = self.config.data_dir.is_some();
        let meta = |applied: &interstice_store::Applied| CommitMeta {
            seq,
            timestamp: inv.time().0,
            meta: if persistent && applied.needs_log() {
                invocation_meta(task)
            } else {
                Vec::new()
            },
        };
        let (result, emitted) = match outcome {
            sched::Outcome::Completed(Done::Applied(mut applied, remote)) => {
                let changes = applied.take_changes();
                // The triggers of a change that survives a crash survive it too: they are
                // kept in this commit's record until each has run.
                let durable = persistent && applied.needs_log();
                let mut triggered = self.triggered(&changes, time);
                if let Some(done) = self.trigger_done(task) {
                    applied.absorb(done);
                }
                if durable && !triggered.is_empty() {
                    self.keep_triggers(&mut applied, &mut triggered, time);
                }
                let fed = self.feeds.encode(seq, &changes);
                if durable && !fed.is_empty() {
                    self.keep_fed(&mut applied, &fed);
                }
                let meta = meta(&applied);
                match self.store().log(applied, meta) {
                    Ok(lsn) => {
                        self.feeds.publish(fed);
                        self.send_remote(remote);
                        (Outcome::Committed { seq, lsn }, triggered)
                    }
                    Err(e) => (
                        Outcome::Failed {
                            seq,
                            reason: CallFailure::Host(e.to_string()),
                        },
                        Vec::new(),
                    ),
                }
            }
            sched::Outcome::Completed(Done::Failed { reason, cleanup }) => {
                tracing::debug!(module = %task.module, reducer = %task.reducer, %reason, "reducer failed");
                self.forget_fired(task, cleanup, &meta);
                (Outcome::Failed { seq, reason }, Vec::new())
            }
            sched::Outcome::Panicked { message } => {
                self.forget_fired(task, None, &meta);
                let reason = CallFailure::Host(format!("the node panicked running it: {message}"));
                (Outcome::Failed { seq, reason }, Vec::new())
            }
        };
        match task.ticket {
            Some(ticket) if Some(ticket) == mine_ticket => *mine = Some(result),
            Some(ticket) => {
                self.outcomes.lock().insert(ticket, result);
            }
            None => {}
        }
        emitted
    }

    /// Hands a committed invocation's remote calls to the network, in commit order.
    fn send_remote(&self, calls: Vec<RemoteCall>) {
        if calls.is_empty() {
            return;
        }
        match &*self.outbound.read() {
            Some(tx) => {
                for call in calls {
                    if tx.send(call).is_err() {
                        tracing::warn!("the network is gone; a remote call was not sent");
                        break;
                    }
                }
            }
            None => tracing::warn!(
                calls = calls.len(),
                "remote calls committed on a node without a network; they are not sent"
            ),
        }
    }

    /// Writes `triggered` to `__node.triggers` in the record of the commit that emitted them.
    fn keep_triggers(
        &self,
        applied: &mut interstice_store::Applied,
        triggered: &mut [sched::Work<Task>],
        time: i64,
    ) {
        let mut tx = self.store().begin();
        for work in triggered.iter_mut() {
            let row = vec![
                Value::U64(0),
                Value::String(work.task.module.to_string()),
                Value::String(work.task.reducer.to_string()),
                Value::Bytes(work.task.args.clone()),
                Value::I64(time),
            ];
            match tx.insert(self.sys_triggers, row) {
                Ok(row) => work.task.pending = Some(row[0].clone()),
                Err(e) => {
                    tracing::error!("cannot keep a subscription trigger: {e}");
                    break;
                }
            }
        }
        match tx.apply() {
            Ok(kept) => applied.absorb(kept),
            Err(e) => {
                tracing::error!("cannot keep subscription triggers: {e}");
                for work in triggered {
                    work.task.pending = None;
                }
            }
        }
    }

    /// Writes the changes of durable feeds to `__node.feed` in the record of their commit.
    fn keep_fed(&self, applied: &mut interstice_store::Applied, fed: &[crate::feed::Encoded]) {
        let mut tx = self.store().begin();
        let kept = self
            .feeds
            .persist(fed, &mut tx, self.sys_feeds)
            .and_then(|wrote| wrote.then(|| tx.apply()).transpose());
        match kept {
            Ok(Some(kept)) => applied.absorb(kept),
            Ok(None) => {}
            // Subscribers still get the changes; one that reconnects after a restart may be
            // told it missed some.
            Err(e) => tracing::error!("cannot keep changes for remote subscribers: {e}"),
        }
    }

    /// For an invocation that failed, so committed nothing: logs the removal of what fired it
    /// (`timer`, the timer's removal, and the kept trigger), so that it does not fire again.
    fn forget_fired(
        &self,
        task: &Task,
        timer: Option<interstice_store::Applied>,
        meta: &dyn Fn(&interstice_store::Applied) -> CommitMeta,
    ) {
        let fired = match (timer, self.trigger_done(task)) {
            (Some(mut timer), Some(trigger)) => {
                timer.absorb(trigger);
                Some(timer)
            }
            (timer, trigger) => timer.or(trigger),
        };
        if let Some(fired) = fired
            && let Err(e) = {
                let meta = meta(&fired);
                self.store().log(fired, meta)
            }
        {
            tracing::error!("cannot log the removal of a failed timer or trigger: {e}");
        }
    }

    /// Forgets the kept trigger that `task` is, applied and to be logged with its outcome.
    fn trigger_done(&self, task: &Task) -> Option<interstice_store::Applied> {
        let id = task.pending.as_ref()?;
        let mut tx = self.store().begin();
        let deleted = tx.delete(self.sys_triggers, id).and_then(|_| tx.apply());
        deleted
            .map_err(|e| tracing::error!("cannot forget a subscription trigger that ran: {e}"))
            .ok()
    }

    /// The subscriptions a commit triggers, unless the current drive has run away.
    fn triggered(&self, changes: &[interstice_store::Change], time: i64) -> Vec<sched::Work<Task>> {
        let work = self.core.events(changes, time);
        let before = self
            .cascade
            .fetch_add(work.len(), std::sync::atomic::Ordering::Relaxed);
        if before + work.len() > self.config.max_cascade {
            tracing::error!(
                "subscriptions triggered more than {} invocations from one call; dropping {} (a subscription that feeds itself?)",
                self.config.max_cascade,
                work.len()
            );
            return Vec::new();
        }
        work
    }

    fn wait_durable(&self, outcome: &Outcome) -> Result<(), NodeError> {
        // A call is reported committed once its effects are durable (DESIGN §5).
        if let (Some(_), Outcome::Committed { lsn, .. }) = (&self.config.data_dir, outcome) {
            self.store().wait_durable(*lsn)?;
        }
        Ok(())
    }
}

/// What the node has done since it opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Scheduler windows run.
    pub windows: u64,
    /// Invocations run (committed or failed).
    pub invocations: u64,
    /// Wall time spent running windows, execution and commit included.
    pub window_nanos: u64,
    /// Of that, time in the serial, ordered commit (logging, events, outcomes).
    pub commit_nanos: u64,
}

#[derive(Default)]
struct Counters {
    windows: AtomicU64,
    invocations: AtomicU64,
    window_nanos: AtomicU64,
    commit_nanos: AtomicU64,
}

fn nanos_between(from: std::time::Instant, to: std::time::Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_nanos()).unwrap_or(u64::MAX)
}

fn system_meta(what: &str, module: &str) -> CommitMeta {
    CommitMeta {
        seq: 0,
        timestamp: 0,
        meta: format!("{what} {module}").into_bytes(),
    }
}

/// The record's meta: module, reducer and arguments, laid out as the ABI encodes a
/// `(String, String, Bytes)` (each a varint length, then the bytes), written straight from the
/// task instead of through cloned `Value`s.
fn invocation_meta(task: &Task) -> Vec<u8> {
    let parts = [task.module.as_bytes(), task.reducer.as_bytes(), &task.args];
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 10).sum());
    for part in parts {
        interstice_abi::encode_varint(part.len() as u64, &mut out);
        out.extend_from_slice(part);
    }
    out
}

/// The tables the host keeps for every module, invisible to it (`__` names are refused to
/// modules): its timers, its outbox of remote calls, and what it got from other nodes.
fn host_tables() -> Result<[TableSchema; 3], interstice_abi::SchemaError> {
    let timers = TableSchema::builder(TIMERS)
        .auto_inc_column("id", Type::U64)
        .column("due", Type::I64)
        .column("reducer", Type::String)
        .column("args", Type::Bytes)
        .primary_key("id")
        .index("due", IndexKind::BTree, false);
    let outbox = TableSchema::builder(OUTBOX)
        .auto_inc_column("id", Type::U64)
        .column("node", Type::String)
        .column("module", Type::String)
        .column("reducer", Type::String)
        .column("args", Type::Bytes)
        .primary_key("id");
    let delivered = TableSchema::builder(DELIVERED)
        .column("origin", Type::String)
        .column("last", Type::U64)
        .column("part", Type::U64)
        .primary_key("origin");
    Ok([
        timers.persistence(Persistence::Logged).build()?,
        outbox.persistence(Persistence::Logged).build()?,
        delivered.persistence(Persistence::Logged).build()?,
    ])
}

fn remote_event(node: &str, module: &str, table: &str, kind: interstice_abi::TableEvent) -> Event {
    Event::Table {
        node: Some(node.to_owned()),
        module: module.to_owned(),
        table: table.to_owned(),
        kind,
    }
}

/// The origin under which a subscriber remembers its last change from a remote node.
fn subscription_key(remote_id: &str, event: &Event, module: &str, reducer: &str) -> String {
    // The event string names the node by its binding; the id pins the node itself, whose
    // sequence numbers the positions are.
    format!("{remote_id}|{event}|{module}.{reducer}")
}

fn signature(types: &[Type]) -> String {
    types
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn encode_args(
    module: &str,
    function: &str,
    types: &[Type],
    args: &[Value],
    registry: &TypeRegistry,
) -> Result<Vec<u8>, NodeError> {
    let bad = |reason: String| NodeError::BadArguments {
        module: module.to_owned(),
        function: function.to_owned(),
        reason,
        signature: signature(types),
    };
    if types.len() != args.len() {
        return Err(bad(format!("{} arguments given", args.len())));
    }
    let mut out = Vec::new();
    for (i, (ty, value)) in types.iter().zip(args).enumerate() {
        ty.check(value, registry)
            .map_err(|e| bad(format!("argument {}: {e}", i + 1)))?;
        encode_into(value, &mut out);
    }
    Ok(out)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    use std::io::Write;
    let io = |context: String| move |source| NodeError::Io { context, source };
    let tmp = path.with_extension("wasm.tmp");
    let mut file =
        std::fs::File::create(&tmp).map_err(io(format!("cannot write {}", tmp.display())))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io(format!("cannot install {}", path.display())))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

fn as_u64(v: &Value) -> u64 {
    match v {
        Value::U64(n) => *n,
        _ => 0,
    }
}

fn as_i64(v: &Value) -> i64 {
    match v {
        Value::I64(n) => *n,
        _ => 0,
    }
}

fn as_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use interstice_abi::ABI_VERSION;

    use super::*;
    use crate::testing::{self, probe_schema};

    /// Timers and hooks have nobody waiting for their outcome; none may be kept.
    #[test]
    fn outcomes_nobody_waits_for_are_not_kept() {
        let (clock, now) = Clock::manual(1_000_000);
        let node = Node::open(NodeConfig {
            clock,
            ..NodeConfig::default()
        })
        .unwrap();
        let schema = probe_schema(&[("ok", None), ("timer", None)]);
        let wasm = testing::module(
            &schema,
            ABI_VERSION,
            &[
                "(drop (call $insert_row)) (i32.const 0)",
                "(drop (call $schedule_ok (i64.const 1000))) (i32.const 0)",
            ],
        );
        node.install(&wasm).unwrap();
        for _ in 0..3 {
            assert!(
                node.call_reducer("probe", "timer", &[])
                    .unwrap()
                    .is_committed()
            );
        }
        now.fetch_add(2_000_000, Ordering::SeqCst);
        assert_eq!(node.run_due_timers().unwrap(), 3);
        assert_eq!(node.pending_timers().unwrap(), 0);
        assert!(node.outcomes.lock().is_empty());
    }
}
