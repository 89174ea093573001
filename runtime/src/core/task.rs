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
    /// The partitions its declarations came to with its arguments, set when it becomes
    /// work; the host checks its rows against them.
    pub parts: Option<Arc<crate::partition::Parts>>,
    /// What only timers, remote input and kept triggers carry. Boxed: a task moves several
    /// times on its way through the node, and the common call moves faster without them.
    attached: Option<Box<Attached>>,
}

#[derive(Clone, Debug, Default)]
struct Attached {
    /// The id of the `__timers` row that fired this invocation.
    timer: Option<u64>,
    /// Set for input another node sent.
    origin: Option<Origin>,
    /// The `__node.triggers` row that keeps this subscription trigger across a crash until it
    /// has run; deleted in the record of its outcome.
    kept: Option<u64>,
}

impl Task {
    /// A call of `module.reducer` that nobody waits for, with nothing else attached.
    pub fn new(module: Arc<str>, reducer: Arc<str>, args: Vec<u8>) -> Task {
        Task {
            ticket: None,
            module,
            reducer,
            args,
            parts: None,
            attached: None,
        }
    }

    /// The id of the `__timers` row that fired this invocation.
    pub fn timer(&self) -> Option<u64> {
        self.attached.as_ref().and_then(|a| a.timer)
    }

    /// Where it came from, for input another node sent.
    pub fn origin(&self) -> Option<&Origin> {
        self.attached.as_ref().and_then(|a| a.origin.as_ref())
    }

    /// The `__node.triggers` row that keeps this subscription trigger, if it is one.
    pub fn kept(&self) -> Option<u64> {
        self.attached.as_ref().and_then(|a| a.kept)
    }

    pub fn set_timer(&mut self, id: Option<u64>) {
        self.attach(id.is_some(), |a| a.timer = id);
    }

    pub fn set_origin(&mut self, origin: Option<Origin>) {
        self.attach(origin.is_some(), |a| a.origin = origin);
    }

    pub fn set_kept(&mut self, id: Option<u64>) {
        self.attach(id.is_some(), |a| a.kept = id);
    }

    /// Changes what is attached; clearing something never attached allocates nothing.
    fn attach(&mut self, setting: bool, change: impl FnOnce(&mut Attached)) {
        match &mut self.attached {
            Some(attached) => change(attached),
            None if setting => change(self.attached.get_or_insert_default()),
            None => {}
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
