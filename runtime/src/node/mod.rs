//! The node: installed modules, the ingress, reducers as transactions, events and timers.
//!
//! Every invocation enters one ingress and gets a sequence number and a logical timestamp. The
//! scheduler runs a window of them on `workers` threads — in parallel where their declared
//! access does not conflict — and `commit.rs` commits their results strictly in sequence order:
//! the log, the tables and the events are the same for any number of workers.
//!
//! The jobs, one file each: `modules.rs` (install, publish, upgrade, remove), `calls.rs`
//! (reducer calls, queries, argument checks), `ingress.rs` (stamping and submitting),
//! `commit.rs` (the driver and the ordered commit), `timers.rs` (due timers and the node's own
//! thread that fires them), `remote.rs` (what the network layer needs).

mod calls;
mod commit;
mod ingress;
mod modules;
mod remote;
mod timers;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use interstice_abi::ModuleSchema;
use interstice_scheduler::{Config as SchedConfig, Ingress, Invocation, Scheduler, Seq};
use interstice_store::{RecoveryReport, Store, StoreConfig};
use parking_lot::{Mutex, RwLock};

pub use calls::Outcome;
pub use commit::NodeStats;
pub use ingress::EventSink;
pub use modules::Published;
pub use remote::RemoteNode;

use crate::authority::{Authorities, Lane};
use crate::config::NodeConfig;
use crate::core::{Core, Done, Task};
use crate::error::NodeError;
use crate::exec::RemoteCall;
use crate::feed::Feeds;
use crate::system::NodeTables;
use commit::{Counters, Driver};
use ingress::Entrance;
use interstice_abi::Authority as Kind;
use timers::Pump;

/// A running Interstice node. Every method takes `&self`; [`Node::open`] hands it out in an
/// `Arc` to share.
pub struct Node {
    core: Arc<Core>,
    config: NodeConfig,
    driver: Mutex<Driver>,
    /// Where invocations wait to enter the ingress; shared with authorities and the pump.
    entrance: Arc<Entrance>,
    /// Outcomes of invocations whose callers wait for them, by ticket, filed by whichever
    /// caller's drive ran them.
    outcomes: Mutex<HashMap<u64, Outcome>>,
    /// Invocations triggered by subscriptions in the current drive, to cut runaway cascades.
    cascade: AtomicUsize,
    stats: Counters,
    tables: NodeTables,
    recovery: RecoveryReport,
    /// Remote subscribers of committed changes.
    feeds: Feeds,
    /// Where committed remote calls go, in commit order; `None` without a network.
    outbound: RwLock<Option<tokio::sync::mpsc::UnboundedSender<RemoteCall>>>,
    /// Bumped whenever the set of modules changes, for the network's peers.
    modules_changed: tokio::sync::watch::Sender<u64>,
    /// The node's own thread: fires due timers and runs what authorities submit.
    pump: Pump,
}

impl Node {
    /// Opens (or creates) a node, recovers its store and reloads its modules, firing `load`.
    pub fn open(config: NodeConfig) -> Result<Arc<Node>, NodeError> {
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
        let tables = NodeTables::create(&store)?;
        let next_seq = store.last_seq().map_or(0, |s| s + 1);
        let authorities = Authorities::new(&config.authorities)?;
        let core = Arc::new(Core::new(
            store,
            config.limits.clone(),
            config.seed,
            authorities,
        )?);
        let worker_core = core.clone();
        // A lane for each authority that wants its modules on a thread of their own.
        let laned: Vec<Kind> = core
            .authorities
            .kinds()
            .filter(|k| {
                core.authorities
                    .get(*k)
                    .is_some_and(|a| a.lane() != Lane::Pool)
            })
            .collect();
        let mut sched_config = SchedConfig::new()
            .workers(config.workers.max(1))
            .thread_name("interstice");
        for kind in &laned {
            sched_config = sched_config.lane(lane_name(*kind));
        }
        let scheduler = Scheduler::new(sched_config, move |inv: &Invocation<Task>| -> Done {
            worker_core.execute(inv)
        })?;
        for kind in laned {
            core.set_lane(kind, scheduler.lane(&lane_name(kind))?);
        }
        let entrance = Arc::new(Entrance::new(core.clone(), config.clock.clone()));
        let node = Arc::new(Node {
            core,
            driver: Mutex::new(Driver::new(scheduler, Ingress::starting_at(Seq(next_seq)))),
            pump: Pump::new(entrance.wakeup()),
            entrance,
            config,
            outcomes: Mutex::new(HashMap::new()),
            cascade: AtomicUsize::new(0),
            stats: Counters::default(),
            tables,
            recovery,
            feeds: Feeds::default(),
            outbound: RwLock::new(None),
            modules_changed: tokio::sync::watch::Sender::new(0),
        });
        node.reload_modules()?;
        Pump::spawn(&node)?;
        Ok(node)
    }

    /// What recovering the store found.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The rules for clients that are not the admin.
    pub fn policy(&self) -> &crate::policy::AccessPolicy {
        &self.config.policy
    }

    /// The underlying store, for inspection.
    pub fn store(&self) -> &Store {
        &self.core.store
    }

    /// The number of worker threads reducers run on.
    pub fn workers(&self) -> usize {
        self.driver.lock().scheduler.workers()
    }

    /// The schemas of the installed modules, in name order.
    pub fn schemas(&self) -> Vec<ModuleSchema> {
        self.core
            .modules
            .read()
            .values()
            .map(|m| m.schema().clone())
            .collect()
    }

    /// The lanes (threads of their own) that modules of platform authorities run on.
    pub fn lanes(&self) -> Vec<String> {
        let mut kinds = self.core.laned();
        kinds.sort();
        kinds.into_iter().map(lane_name).collect()
    }

    /// Figures of the authorities (audio underruns, frames rendered…), as label and value.
    pub fn authority_stats(&self) -> Vec<(String, String)> {
        self.core.authorities.stats()
    }

    /// The tables `module.reducer` is planned with: what it declares and, transitively,
    /// everything it may call (its own timers and outbox included), as `(reads, writes)` of
    /// full table names. `None` for an unknown reducer.
    pub fn planned_access(
        &self,
        module: &str,
        reducer: &str,
    ) -> Option<(Vec<String>, Vec<String>)> {
        let access = self.core.access(module, reducer)?;
        let names: HashMap<u32, String> = self
            .store()
            .tables()
            .into_iter()
            .map(|t| (t.id.0, t.name))
            .collect();
        let named = |ids: &[interstice_scheduler::TableId]| -> Vec<String> {
            ids.iter()
                .filter_map(|t| names.get(&t.0).cloned())
                .collect()
        };
        Some((named(access.reads()), named(access.writes())))
    }
}

/// The name of the lane of an authority's module.
fn lane_name(kind: Kind) -> String {
    format!("{kind:?}").to_lowercase()
}

impl Drop for Node {
    fn drop(&mut self) {
        self.pump.stop();
        // Platforms release what their modules hold (a device, a window, threads that feed
        // the ingress) when the node closes, as when the modules are removed.
        for schema in self.schemas() {
            self.detach_authorities(&schema);
        }
    }
}
