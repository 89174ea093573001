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

pub use calls::{Outcome, PendingCalls};
pub use commit::NodeStats;
pub use ingress::EventSink;
pub use modules::Published;
pub use remote::RemoteNode;

use crate::authority::{Authorities, FileAuthority};
use crate::config::NodeConfig;
use crate::core::{Core, Done, Task};
use crate::error::NodeError;
use crate::exec::RemoteCall;
use crate::feed::Feeds;
use crate::system::NodeTables;
use commit::Counters;
use commit::Driver;
use ingress::Entrance;
use interstice_abi::Authority as Kind;
use timers::Pump;

/// What one durable commit sends out once it is durable: its changes for remote subscribers
/// and its calls to other nodes.
type Deferred = (
    interstice_store::Lsn,
    Vec<crate::feed::Encoded>,
    Vec<RemoteCall>,
);

/// A running Interstice node. Every method takes `&self`; [`Node::open`] hands it out in an
/// `Arc` to share. When the last handle is dropped, the node stops its own thread, detaches its
/// authorities and closes its store before `drop` returns, so its data directory can be opened
/// again at once.
pub struct Node {
    inner: Arc<NodeInner>,
}

impl std::ops::Deref for Node {
    type Target = NodeInner;

    fn deref(&self) -> &NodeInner {
        &self.inner
    }
}

impl Node {
    /// Opens (or creates) a node, recovers its store and reloads its modules, firing `load`.
    pub fn open(config: NodeConfig) -> Result<Arc<Node>, NodeError> {
        NodeInner::open(config)
    }
}

/// What a [`Node`] is, and where its methods live. The node's own thread holds only this part
/// (weakly), never the [`Node`] handle, so the last handle's drop runs on the embedder's
/// thread and can join that thread before the store closes.
pub struct NodeInner {
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
    /// Shared with the core, whose workers drop a change set nothing will read.
    feeds: Arc<Feeds>,
    /// Where committed remote calls go, in commit order; `None` without a network.
    outbound: RwLock<Option<tokio::sync::mpsc::UnboundedSender<RemoteCall>>>,
    /// Bumped whenever the set of modules changes, for the network's peers.
    modules_changed: tokio::sync::watch::Sender<u64>,
    /// The node's own thread: fires due timers and runs what authorities submit.
    pump: Pump,
    /// What durable commits send out (feeds, remote calls), held until they are durable, in
    /// commit order (`commit.rs`, `defer`).
    deferred: Mutex<std::collections::VecDeque<Deferred>>,
    /// Whether the store's refusal to commit was logged.
    poison_logged: std::sync::atomic::AtomicBool,
    /// Queries waiting for a snapshot from the running drive (`commit.rs`, `snapshot`).
    snapshot_requests: Mutex<Vec<std::sync::mpsc::SyncSender<interstice_store::ReadTransaction>>>,
}

impl NodeInner {
    fn open(config: NodeConfig) -> Result<Arc<Node>, NodeError> {
        let (store, recovery) = match &config.data_dir {
            Some(dir) => {
                for private in [dir.clone(), dir.join("modules")] {
                    create_private_dir(&private).map_err(|source| NodeError::Io {
                        context: format!("cannot create {}", private.display()),
                        source,
                    })?;
                }
                let store_config = StoreConfig::default()
                    .durability(config.durability)
                    .repair(config.repair);
                Store::open(dir.join("store"), store_config)?
            }
            None => (Store::in_memory(), RecoveryReport::default()),
        };
        for problem in recovery.problems() {
            tracing::warn!("recovery: {problem}");
        }
        if config.data_dir.is_some() {
            tracing::info!(
                records = recovery.records_replayed,
                mutations = recovery.mutations_replayed,
                snapshot = ?recovery.snapshot_lsn.map(|l| l.0),
                last_lsn = recovery.last_lsn.0,
                "recovered the node's store"
            );
        }
        let tables = NodeTables::create(&store)?;
        let next_seq = store.last_seq().map_or(0, |s| s + 1);
        let files = Arc::new(FileAuthority::new(
            config.data_dir.as_ref().map(|dir| dir.join("files")),
            config.files.clone(),
            config.limits.max_message_bytes,
        ));
        let authorities = Authorities::new(&config.authorities, files)?;
        let feeds = Arc::new(Feeds::default());
        let core = Arc::new(Core::new(
            store,
            config.limits.clone(),
            config.seed,
            authorities,
            feeds.clone(),
        )?);
        let worker_core = core.clone();
        // Lanes come with the modules of the authorities that want them (`modules.rs`).
        let scheduler = Scheduler::new(
            SchedConfig::new()
                .workers(config.workers.max(1))
                .thread_name("interstice"),
            move |inv: &Invocation<Task>| -> Done { worker_core.execute(inv) },
        )?;
        let entrance = Arc::new(Entrance::new(core.clone(), config.clock.clone()));
        let node = Arc::new(NodeInner {
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
            feeds,
            outbound: RwLock::new(None),
            modules_changed: tokio::sync::watch::Sender::new(0),
            snapshot_requests: Mutex::new(Vec::new()),
            deferred: Mutex::new(std::collections::VecDeque::new()),
            poison_logged: std::sync::atomic::AtomicBool::new(false),
        });
        // Wrapped at once: if reloading fails, dropping the handle detaches what was attached.
        let node = Arc::new(Node { inner: node });
        node.reload_modules()?;
        Pump::spawn(&node.inner)?;
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
            .load()
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

    /// The folder of the module holding the File authority (`<data dir>/files/<module>`, or a
    /// temporary folder on a memory-only node), once one is installed.
    pub fn file_folder(&self) -> Option<std::path::PathBuf> {
        self.core.authorities.files().and_then(|f| f.folder())
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
        let named = |ids: &[interstice_scheduler::ResourceId]| -> Vec<String> {
            ids.iter()
                .filter_map(|t| names.get(&t.0).cloned())
                .collect()
        };
        Some((named(access.reads()), named(access.writes())))
    }
}

/// Creates `dir` owner-only (0700 on Unix), or makes an existing one so: a node's modules and
/// data are nobody else's business.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The name of the lane of an authority's module.
pub(super) fn lane_name(kind: Kind) -> String {
    format!("{kind:?}").to_lowercase()
}

impl Drop for Node {
    fn drop(&mut self) {
        self.pump.stop();
        // Authorities hold their modules' event sinks (and so the core) and maybe threads:
        // every holder is detached, as if its module were removed.
        let mut driver = self.driver.lock();
        for schema in self.schemas() {
            self.detach_authorities(&schema, &mut driver);
        }
        drop(driver);
        self.core.authorities.close();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use interstice_abi::ABI_VERSION;

    use super::*;
    use crate::config::Clock;
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
