//! The ordered queue every invocation enters through.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use crate::access::AccessSet;

/// An invocation's place in the total order; commit happens in increasing `Seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A logical timestamp chosen by the caller when the work is submitted.
///
/// The scheduler only carries it: it is what a reducer sees as "now", so that re-running the
/// same ingress gives the same result whatever the wall clock says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

/// A lane, from [`Scheduler::add_lane`](crate::Scheduler::add_lane),
/// [`add_driven_lane`](crate::Scheduler::add_driven_lane) or
/// [`Scheduler::lane`](crate::Scheduler::lane) by name.
///
/// An id stays tied to the lane it was given for: once that lane is removed, work naming it is
/// refused, even if a new lane has taken its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LaneId {
    pub(crate) index: u16,
    pub(crate) generation: u32,
}

impl LaneId {
    /// The lane's slot among the scheduler's lanes. Lanes declared with
    /// [`Config::lane`](crate::Config::lane) take slots `0, 1, …` in declaration order; a
    /// removed lane's slot is reused by the next lane added.
    pub fn index(self) -> usize {
        usize::from(self.index)
    }
}

impl fmt::Display for LaneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lane {}", self.index)?;
        if self.generation > 0 {
            write!(f, " (generation {})", self.generation)?;
        }
        Ok(())
    }
}

/// Work that has not been sequenced yet: what callers push and what commits emit.
#[derive(Clone, Debug)]
pub struct Work<T> {
    /// The caller's task (for the runtime: which reducer, with which arguments).
    pub task: T,
    /// The tables the task declares. Shared: most tasks of a function declare the same set,
    /// and a work item moves and is cloned on its way through the ingress.
    pub access: Arc<AccessSet>,
    /// The logical time the task will observe.
    pub time: Timestamp,
    /// The lane the task must run on; `None` runs it on the worker pool.
    pub lane: Option<LaneId>,
}

impl<T> Work<T> {
    /// Work for the worker pool.
    pub fn new(task: T, access: impl Into<Arc<AccessSet>>, time: Timestamp) -> Self {
        Self {
            task,
            access: access.into(),
            time,
            lane: None,
        }
    }

    /// Binds the work to a pinned lane.
    #[must_use]
    pub fn on_lane(mut self, lane: LaneId) -> Self {
        self.lane = Some(lane);
        self
    }
}

/// Sequenced work: a [`Work`] stamped by the [`Ingress`].
#[derive(Clone, Debug)]
pub struct Invocation<T> {
    seq: Seq,
    work: Work<T>,
}

impl<T> Invocation<T> {
    /// Place in the commit order.
    pub fn seq(&self) -> Seq {
        self.seq
    }

    /// The logical time given at submission.
    pub fn time(&self) -> Timestamp {
        self.work.time
    }

    /// Declared access.
    pub fn access(&self) -> &AccessSet {
        &self.work.access
    }

    /// The pinned lane, if any.
    pub fn lane(&self) -> Option<LaneId> {
        self.work.lane
    }

    /// The caller's task.
    pub fn task(&self) -> &T {
        &self.work.task
    }

    /// Gives the task back, e.g. to resubmit it.
    pub fn into_work(self) -> Work<T> {
        self.work
    }
}

/// The single ordered entry point; it hands out sequence numbers.
///
/// The ingress is owned by the driving thread and never shared: whatever order the driver
/// pushes in *is* the order of the node, which is what makes a run replayable. Work emitted
/// by commits is pushed by the scheduler during the commit, so it lands after the window being
/// committed and after anything already queued, in commit order.
#[derive(Debug)]
pub struct Ingress<T> {
    queue: VecDeque<Invocation<T>>,
    next: u64,
}

impl<T> Default for Ingress<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Ingress<T> {
    /// An empty ingress that numbers from `Seq(0)`.
    pub fn new() -> Self {
        Self::starting_at(Seq(0))
    }

    /// An empty ingress that numbers from `next`, e.g. to continue after recovery.
    pub fn starting_at(next: Seq) -> Self {
        Self {
            queue: VecDeque::new(),
            next: next.0,
        }
    }

    /// Sequences `work` and queues it; returns its sequence number.
    pub fn push(&mut self, work: Work<T>) -> Seq {
        let seq = Seq(self.next);
        self.next += 1;
        self.queue.push_back(Invocation { seq, work });
        seq
    }

    /// The number the next push will get.
    pub fn next_seq(&self) -> Seq {
        Seq(self.next)
    }

    /// Queued invocations.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queued invocations in sequence order.
    pub fn iter(&self) -> impl Iterator<Item = &Invocation<T>> {
        self.queue.iter()
    }

    /// The invocation at the front, taken off the queue.
    pub(crate) fn pop(&mut self) -> Option<Invocation<T>> {
        self.queue.pop_front()
    }

    /// Moves up to `max` invocations from the front into `into` (emptied first), whose
    /// allocation a previous window may have left.
    pub(crate) fn take_window(&mut self, max: usize, into: &mut Vec<Invocation<T>>) {
        let n = max.min(self.queue.len());
        into.clear();
        into.extend(self.queue.drain(..n));
    }
}
