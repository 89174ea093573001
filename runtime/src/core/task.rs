//! What the scheduler carries for one invocation, and what executing it produces.

use std::sync::Arc;

use interstice_store::Applied;

use crate::error::CallFailure;
use crate::exec::RemoteCall;

/// Where input from another node came from. The receiving module remembers the position of
/// the last input it committed per origin (its `__delivered`), in the same transaction, so
/// input sent twice runs once.
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
    /// The id of the `__timers` row that fired this invocation.
    pub timer: Option<u64>,
    /// Set for input another node sent.
    pub origin: Option<Origin>,
    /// The `__node.triggers` row that keeps this subscription trigger across a crash until it
    /// has run; deleted in the record of its outcome.
    pub kept: Option<u64>,
    /// The partitions its declarations came to with its arguments, set when it becomes
    /// work; the host checks its rows against them.
    pub parts: Option<Arc<crate::partition::Parts>>,
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
            kept: None,
            parts: None,
        }
    }
}

/// What executing an invocation produced, handed to the ordered commit.
pub(crate) enum Done {
    /// Applied in memory; the commit logs it, then sends its remote calls.
    Applied(Applied, Vec<RemoteCall>),
    /// Nothing of the reducer was applied. `cleanup` removes the timer that fired it, so a
    /// failing timer does not fire forever.
    Failed {
        reason: CallFailure,
        cleanup: Option<Applied>,
    },
}
