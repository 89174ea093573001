//! How a node is opened: [`NodeConfig`] and the logical [`Clock`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use interstice_store::Durability;

use crate::authority::{AuthorityProvider, FileConfig};
use crate::policy::AccessPolicy;
use crate::wasm::Limits;

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

    /// The current time, in microseconds.
    pub fn now(&self) -> i64 {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
                .unwrap_or(0),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Whether the node's own timer thread may fire timers: a manual clock moves only when the
    /// embedder says so, so it fires them itself with [`Node::run_due_timers`](crate::Node::run_due_timers).
    pub(crate) fn is_system(&self) -> bool {
        matches!(self, Clock::System)
    }
}

/// How to open a node.
#[derive(Clone)]
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
    /// Who may publish, remove and call what. By default, [`AccessPolicy::default`]: only the
    /// admin publishes and removes.
    pub policy: AccessPolicy,
    /// The platform authorities this node grants (Gpu, Input, Audio…), each an implementation
    /// of [`AuthorityProvider`]; the `Module` and `File` authorities are always there. A module that
    /// claims an authority the node does not provide is refused. By default, none.
    pub authorities: Vec<Arc<dyn AuthorityProvider>>,
    /// Discards damaged history so that the node can open: the log is cut at the first damage
    /// that is not a torn last write, and what followed is moved aside as `*.corrupt` files
    /// (never deleted). Without it, such damage stops the node with the file, the offset and
    /// what would be lost. By default, `false`; the operator asks for it
    /// (`interstice node repair`).
    pub repair: bool,
    /// Quotas and watching of the built-in File authority's folder. By default,
    /// [`FileConfig::default`].
    pub files: FileConfig,
    /// For crash tests: the scheduler windows left to run; once they are spent, every drive
    /// stops with [`NodeError::Halted`](crate::NodeError::Halted) and leaves what it had not
    /// run, as a process that died there would. By default, `None`: never.
    #[doc(hidden)]
    pub halt_after_windows: Option<Arc<AtomicU64>>,
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
            policy: AccessPolicy::default(),
            authorities: Vec::new(),
            repair: false,
            files: FileConfig::default(),
            halt_after_windows: None,
        }
    }
}

impl std::fmt::Debug for NodeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeConfig")
            .field("data_dir", &self.data_dir)
            .field("limits", &self.limits)
            .field("durability", &self.durability)
            .field("seed", &self.seed)
            .field("clock", &self.clock)
            .field("max_cascade", &self.max_cascade)
            .field("workers", &self.workers)
            .field("policy", &self.policy)
            .field(
                "authorities",
                &self
                    .authorities
                    .iter()
                    .map(|a| a.kind())
                    .collect::<Vec<_>>(),
            )
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}
