//! Lanes: invocations that must run on one particular thread (GPU, audio, input), either a
//! thread the scheduler spawns or one the embedder owns and drives through a [`LaneDriver`].

use std::fmt;
// Names and the per-window snapshot carry no synchronisation for loom to model.
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::ingress::{LaneId, Seq};
use crate::threads::{Sender, Threads};

/// What a window needs of a live lane: where to send its jobs, and what to say when the
/// driver waits for one.
#[derive(Clone)]
pub(crate) struct LaneHandle {
    pub(crate) sender: Sender,
    pub(crate) name: Arc<str>,
    pub(crate) driven: bool,
}

struct Lane {
    handle: LaneHandle,
    /// `None` for a driven lane.
    thread: Option<Threads>,
}

impl Drop for Lane {
    fn drop(&mut self) {
        // A spawned lane's thread is joined by `Threads`; a driven lane is closed so that its
        // driver stops waiting for jobs that will never come.
        if self.thread.is_none() {
            self.handle.sender.close(&format!(
                "lane `{}` was removed, so the invocation was not run",
                self.handle.name
            ));
        }
    }
}

struct Slot {
    generation: u32,
    lane: Option<Lane>,
}

/// The live lanes of a scheduler, by slot. A removed lane's slot is reused with the next
/// generation, so a stale [`LaneId`] is refused instead of reaching the new lane.
#[derive(Default)]
pub(crate) struct Lanes {
    slots: Vec<Slot>,
    /// What windows take: one clone of an `Arc` per window, rebuilt when lanes change.
    handles: Arc<[Option<LaneHandle>]>,
}

impl fmt::Debug for Lanes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.slots.iter().filter_map(|s| s.lane.as_ref()))
            .finish()
    }
}

impl fmt::Debug for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.handle.driven {
            "driven"
        } else {
            "thread"
        };
        write!(f, "{} ({kind})", self.handle.name)
    }
}

impl Lanes {
    /// Adds a lane named `name`: a thread of its own, or (`driven`) a queue that a
    /// [`LaneDriver`] drains.
    pub(crate) fn add(&mut self, name: String, driven: bool) -> Result<(LaneId, Sender), Error> {
        if self.find(&name).is_some() {
            return Err(Error::DuplicateLane { name });
        }
        let free = self.slots.iter().position(|s| s.lane.is_none());
        let slot = free.unwrap_or(self.slots.len());
        let index = u16::try_from(slot).map_err(|_| Error::TooManyLanes)?;
        let (sender, thread) = if driven {
            (Sender::new(), None)
        } else {
            let thread_name = format!("interstice-lane-{name}");
            let threads = Threads::spawn(&thread_name, 1).map_err(|source| Error::ThreadSpawn {
                name: thread_name,
                source,
            })?;
            (threads.sender().clone(), Some(threads))
        };
        let lane = Lane {
            handle: LaneHandle {
                sender: sender.clone(),
                name: Arc::from(name.as_str()),
                driven,
            },
            thread,
        };
        if free.is_none() {
            self.slots.push(Slot {
                generation: 0,
                lane: None,
            });
        }
        let entry = &mut self.slots[slot];
        entry.lane = Some(lane);
        let id = LaneId {
            index,
            generation: entry.generation,
        };
        self.rebuild();
        Ok((id, sender))
    }

    /// Removes a live lane: its thread is joined, or its driver told it is closed.
    pub(crate) fn remove(&mut self, lane: LaneId) -> Result<(), Error> {
        let slot = self
            .slots
            .get_mut(lane.index())
            .filter(|s| s.generation == lane.generation && s.lane.is_some())
            .ok_or(Error::NoSuchLane { lane })?;
        let removed = slot.lane.take();
        slot.generation = slot.generation.wrapping_add(1);
        self.rebuild();
        // Dropped last, once no window can reach it (a spawned lane's thread is joined here).
        drop(removed);
        Ok(())
    }

    pub(crate) fn find(&self, name: &str) -> Option<LaneId> {
        self.slots.iter().enumerate().find_map(|(i, s)| {
            let lane = s.lane.as_ref()?;
            (*lane.handle.name == *name).then_some(LaneId {
                index: i as u16,
                generation: s.generation,
            })
        })
    }

    /// Checks that `lane`, named by invocation `seq`, is a live lane of this scheduler.
    pub(crate) fn check(&self, seq: Seq, lane: LaneId) -> Result<(), Error> {
        match self.slots.get(lane.index()) {
            None => Err(Error::LaneOutOfRange {
                seq,
                lane,
                lanes: self.slots.len(),
            }),
            Some(s) if s.generation != lane.generation || s.lane.is_none() => {
                Err(Error::LaneRemoved { seq, lane })
            }
            Some(_) => Ok(()),
        }
    }

    pub(crate) fn handles(&self) -> Arc<[Option<LaneHandle>]> {
        self.handles.clone()
    }

    fn rebuild(&mut self) {
        self.handles = self
            .slots
            .iter()
            .map(|s| s.lane.as_ref().map(|l| l.handle.clone()))
            .collect();
    }
}

/// The owner's side of a driven lane ([`Scheduler::add_driven_lane`]): the lane has no thread
/// of its own, and its invocations run on whichever thread calls [`run_pending`] — typically
/// a thread that must own them, like the process's main thread that runs winit's event loop
/// (the pattern of bevy's `MainThreadExecutor`).
///
/// The scheduler queues a lane invocation once its predecessors are done; it keeps its place
/// in the plan and in the commit order like any other. While it waits in the queue the rest of
/// the window goes on as far as the plan allows, but the commit cannot pass it: a window with
/// work on a driven lane ends only once the driver has run it. So the owner must call
/// [`run_pending`] from its loop, woken by [`wait`] or by the waker it sets; and it must not be
/// the thread blocked in [`Scheduler::run_window`] of the same scheduler. A driver that has not
/// run a queued invocation for a second is named in a `tracing` warning by the waiting window.
///
/// Dropping the driver closes the lane: every invocation queued on it, and every later one,
/// is not run and commits as [`Executed::Panicked`] with a message that says so (its
/// successors still run). Running them on another thread instead would break what the lane
/// exists for. Removing the lane ([`Scheduler::remove_lane`]) or dropping the scheduler closes
/// it too, which ends a driver's [`wait`].
///
/// [`run_pending`]: Self::run_pending
/// [`wait`]: Self::wait
/// [`Scheduler::add_driven_lane`]: crate::Scheduler::add_driven_lane
/// [`Scheduler::run_window`]: crate::Scheduler::run_window
/// [`Scheduler::remove_lane`]: crate::Scheduler::remove_lane
/// [`Executed::Panicked`]: crate::Executed::Panicked
pub struct LaneDriver {
    sender: Sender,
    lane: LaneId,
    name: String,
}

impl fmt::Debug for LaneDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LaneDriver")
            .field("lane", &self.lane)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl LaneDriver {
    pub(crate) fn new(sender: Sender, lane: LaneId, name: String) -> Self {
        Self { sender, lane, name }
    }

    /// The lane this driver runs.
    pub fn lane(&self) -> LaneId {
        self.lane
    }

    /// The lane's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the lane's queued invocations on this thread, and those queued meanwhile, until
    /// none is left; returns how many ran. Never blocks waiting for more.
    pub fn run_pending(&self) -> usize {
        self.sender.run_pending()
    }

    /// Blocks until an invocation is queued, the lane is closed, or `timeout` (if any)
    /// passes; returns whether one is queued. For an owner that has no loop of its own:
    /// `while driver.wait(None) { driver.run_pending(); }` runs the lane until it is closed.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        self.sender.wait(timeout)
    }

    /// Sets what to call whenever an invocation is queued on the lane (and once when the
    /// lane is closed), so the owner's own loop can be woken, e.g. through winit's
    /// `EventLoopProxy::send_event`. It is called on the thread that queued the invocation (a
    /// worker, or the thread running the window), outside the scheduler's locks; it must be
    /// quick and must not run the invocation itself. Replaces any previous waker.
    pub fn set_waker(&self, waker: impl Fn() + Send + Sync + 'static) {
        self.sender.set_waker(Arc::new(waker));
    }

    /// Whether the lane is closed (removed, or its scheduler dropped): nothing more will be
    /// queued.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

impl Drop for LaneDriver {
    fn drop(&mut self) {
        self.sender.close(&format!(
            "not run: lane `{}` has no driver (its LaneDriver was dropped)",
            self.name
        ));
    }
}
