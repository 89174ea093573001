//! The way into the ingress: stamping invocations with their logical time and queueing them
//! for the next drive. Callers, timers, hooks, remote input and authority events all come
//! through [`Entrance::submit`]; the driver moves what waits here into the scheduler's ingress,
//! which numbers it.

use std::sync::Arc;

use interstice_abi::Event;
use interstice_scheduler as sched;
use parking_lot::{Condvar, Mutex};

use crate::config::Clock;
use crate::core::{Core, Origin, Task};
use crate::error::NodeError;

/// Submitted invocations waiting to enter the ingress.
pub(super) struct Inbox {
    next_ticket: u64,
    last_timestamp: i64,
    /// Tasks and their stamps; they become scheduler work when they enter the ingress, so
    /// their access sets and lanes are those of the modules then (an upgrade in between
    /// changes them).
    pub work: Vec<(Task, i64)>,
}

/// One invocation to submit.
pub(crate) struct Submission {
    task: Task,
    /// The logical time it is due at (a timer, a kept trigger); `None`: now.
    at: Option<i64>,
}

impl Submission {
    /// A call of `module.reducer` with encoded `args`, due now, that nobody waits for.
    pub fn call(module: impl Into<Arc<str>>, reducer: impl Into<Arc<str>>, args: Vec<u8>) -> Self {
        Submission {
            task: Task::new(module.into(), reducer.into(), args),
            at: None,
        }
    }

    /// Stamped with logical time `at` (never earlier than the invocation before it).
    pub fn at(mut self, at: i64) -> Self {
        self.at = Some(at);
        self
    }

    /// Fired by the timer with this id, which its transaction deletes.
    pub fn timer(mut self, id: u64) -> Self {
        self.task.set_timer(Some(id));
        self
    }

    /// Input another node sent, deduplicated on `origin`.
    pub fn origin(mut self, origin: Option<Origin>) -> Self {
        self.task.set_origin(origin);
        self
    }

    /// A subscription trigger kept in `__node.triggers` under this id.
    pub fn kept(mut self, id: u64) -> Self {
        self.task.set_kept(Some(id));
        self
    }
}

/// The inbox, the clock that stamps it, and the bell that wakes the node's own thread.
pub(crate) struct Entrance {
    core: Arc<Core>,
    clock: Clock,
    inbox: Mutex<Inbox>,
    wakeup: Arc<Wakeup>,
}

/// Wakes the node's thread: something waits to be driven, or timers may be due.
#[derive(Default)]
pub(crate) struct Wakeup {
    rung: Mutex<bool>,
    bell: Condvar,
}

impl Wakeup {
    pub fn ring(&self) {
        *self.rung.lock() = true;
        self.bell.notify_one();
    }

    /// Waits until rung or `timeout` passes; returns whether it was rung, and resets it.
    pub fn wait(&self, timeout: Option<std::time::Duration>) -> bool {
        let mut rung = self.rung.lock();
        if !*rung {
            match timeout {
                Some(t) => {
                    self.bell.wait_for(&mut rung, t);
                }
                None => self.bell.wait(&mut rung),
            }
        }
        std::mem::take(&mut *rung)
    }
}

impl Entrance {
    pub fn new(core: Arc<Core>, clock: Clock) -> Self {
        Entrance {
            core,
            clock,
            inbox: Mutex::new(Inbox {
                next_ticket: 0,
                last_timestamp: i64::MIN,
                work: Vec::new(),
            }),
            wakeup: Arc::new(Wakeup::default()),
        }
    }

    pub fn wakeup(&self) -> Arc<Wakeup> {
        self.wakeup.clone()
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Stamps `submission` and queues it for a caller that waits for its outcome; returns
    /// the ticket the outcome will be filed under.
    pub fn submit_awaited(&self, submission: Submission) -> u64 {
        self.submit_awaited_all(std::iter::once(submission)).start
    }

    /// Queues `submissions` in order under one lock, so their tickets are consecutive (the
    /// range returned) and nothing else is queued between them.
    pub fn submit_awaited_all(
        &self,
        submissions: impl IntoIterator<Item = Submission>,
    ) -> std::ops::Range<u64> {
        let mut inbox = self.inbox.lock();
        let first = inbox.next_ticket;
        let mut now = None;
        for mut submission in submissions {
            submission.task.ticket = Some(inbox.next_ticket);
            inbox.next_ticket += 1;
            self.push_locked(&mut inbox, submission, &mut now);
        }
        first..inbox.next_ticket
    }

    /// Queues invocations nobody waits for (their outcomes are not kept), stamped in order.
    pub fn submit_all(&self, submissions: impl IntoIterator<Item = Submission>) {
        let mut inbox = self.inbox.lock();
        let mut now = None;
        for s in submissions {
            self.push_locked(&mut inbox, s, &mut now);
        }
    }

    /// Queues `submission`. The clock is read once per batch (`now` keeps the reading): the
    /// calls submitted together share a logical time, as calls within one microsecond always
    /// did, and a batch of small calls spends no clock read on each.
    fn push_locked(&self, inbox: &mut Inbox, submission: Submission, now: &mut Option<i64>) {
        let Submission { task, at } = submission;
        let at = at.unwrap_or_else(|| *now.get_or_insert_with(|| self.clock.now()));
        // Stamped under the inbox lock, so time order follows submission order.
        let time = self.stamp_locked(inbox, Some(at));
        inbox.work.push((task, time));
    }

    /// The logical time of a new invocation: the clock, or `at`, never earlier than the
    /// previous invocation's.
    pub fn stamp(&self, at: Option<i64>) -> i64 {
        self.stamp_locked(&mut self.inbox.lock(), at)
    }

    fn stamp_locked(&self, inbox: &mut Inbox, at: Option<i64>) -> i64 {
        let t = at
            .unwrap_or_else(|| self.clock.now())
            .max(inbox.last_timestamp);
        inbox.last_timestamp = t;
        t
    }

    /// Moves what waits into `ingress`, keeping the inbox's buffer for the next submissions.
    pub fn drain_into(&self, ingress: &mut sched::Ingress<Task>) {
        let mut inbox = self.inbox.lock();
        for (task, time) in inbox.work.drain(..) {
            ingress.push(self.core.work(task, time));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.inbox.lock().work.is_empty()
    }

    /// The submissions of `module`'s reducers subscribed to `event`, in name order.
    pub fn hooks(
        &self,
        module: &str,
        event: &Event,
        args: &[u8],
    ) -> Result<Vec<Submission>, NodeError> {
        let installed = self
            .core
            .module(module)
            .ok_or_else(|| NodeError::NoSuchModule(module.to_owned()))?;
        let mut hooks: Vec<&Arc<str>> = installed
            .reducers
            .values()
            .filter(|r| r.on.as_ref() == Some(event))
            .map(|r| &r.name)
            .collect();
        hooks.sort();
        Ok(hooks
            .into_iter()
            .map(|name| Submission::call(installed.name.clone(), name.clone(), args.to_vec()))
            .collect())
    }
}

/// Where an authority's events enter the node: each becomes an invocation of its module's
/// hooks for that event, sequenced and timestamped like any call, and run by the node's own
/// thread. It never waits for the invocation, so a platform thread that drives a lane may use
/// it freely.
#[derive(Clone)]
pub struct EventSink {
    module: String,
    entrance: Arc<Entrance>,
}

impl EventSink {
    pub(crate) fn new(module: String, entrance: Arc<Entrance>) -> Self {
        EventSink { module, entrance }
    }

    /// The module the events go to.
    pub fn module(&self) -> &str {
        &self.module
    }

    /// Submits `event` with its encoded arguments to the module's hooks for it; returns how
    /// many hooks there are (0: the module does not subscribe to it).
    pub fn submit(&self, event: &Event, args: Vec<u8>) -> Result<usize, NodeError> {
        let hooks = self.entrance.hooks(&self.module, event, &args)?;
        let count = hooks.len();
        if count > 0 {
            self.entrance.submit_all(hooks);
            self.entrance.wakeup.ring();
        }
        Ok(count)
    }
}
