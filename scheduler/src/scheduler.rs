//! Execution of planned windows and their ordered commit.

use std::fmt;

use crate::error::Error;
use crate::executor::{Dispatch, ExecuteFn, Pool, Relay, Window, drive, execute_caught};
use crate::ingress::{Ingress, Invocation, LaneId, Work};
use crate::lanes::{LaneDriver, Lanes};
use crate::loom::sync::Arc;
use crate::plan::{Plan, Planner};
#[cfg(loom)]
use crate::threads::Threads;

/// What executing one invocation produced, as handed to the commit callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Executed<O> {
    /// The execute function returned (its own `Result` included: an ordinary reducer failure is
    /// the caller's business).
    Completed(O),
    /// The execute function panicked; the panic was caught so the rest of the window could go
    /// on. The invocation's successors still ran, after the panic unwound.
    Panicked {
        /// The panic message, or a placeholder when the payload was not a string.
        message: String,
    },
}

impl<O> Executed<O> {
    /// The output, if the execute function returned.
    pub fn completed(&self) -> Option<&O> {
        match self {
            Self::Completed(output) => Some(output),
            Self::Panicked { .. } => None,
        }
    }

    /// The output, or the panic message.
    pub fn into_result(self) -> Result<O, String> {
        match self {
            Self::Completed(output) => Ok(output),
            Self::Panicked { message } => Err(message),
        }
    }
}

/// Scheduler settings, as a builder; validated by [`Scheduler::new`].
#[derive(Clone, Debug)]
pub struct Config {
    workers: usize,
    lanes: Vec<String>,
    max_window: usize,
    thread_name: String,
    inline_serial_windows: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            workers: default_workers(),
            lanes: Vec::new(),
            max_window: 1024,
            thread_name: "interstice-worker".to_owned(),
            // Under loom the models must exercise the pool's dispatch path for every shape.
            inline_serial_windows: !cfg!(loom),
        }
    }
}

#[cfg(not(loom))]
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(loom)]
fn default_workers() -> usize {
    3
}

/// Windows are indexed with `u32` in the plan; this keeps far away from that limit.
const MAX_WINDOW: usize = 1 << 24;

impl Config {
    /// Default settings; see each setter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of threads that execute invocations: the calling thread (which also commits)
    /// and `workers - 1` pool threads. `1` runs every pool invocation on the calling thread
    /// in sequence order: the serial reference every other count must agree with.
    ///
    /// By default, the number of CPUs (3 under loom: two pool threads and the driver).
    #[must_use]
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Declares a pinned lane: a dedicated thread named `interstice-lane-<name>`, started with
    /// the scheduler, exactly as [`Scheduler::add_lane`] right after [`Scheduler::new`] would.
    /// Look its id up with [`Scheduler::lane`].
    ///
    /// By default, there are no lanes.
    #[must_use]
    pub fn lane(mut self, name: impl Into<String>) -> Self {
        self.lanes.push(name.into());
        self
    }

    /// Most invocations taken from the ingress into one planned window. Larger windows find
    /// more parallelism; smaller ones let emitted work run sooner.
    ///
    /// By default, 1024.
    #[must_use]
    pub fn max_window(mut self, max_window: usize) -> Self {
        self.max_window = max_window;
        self
    }

    /// Runs a window that has no parallelism — a single invocation, or a plan that is one
    /// chain — on the calling thread, exactly as one worker would, instead of handing each
    /// invocation to the pool and waiting for it. Invocations bound to a lane still run there.
    ///
    /// By default, on (off under loom, whose models must cover the pool's path).
    #[must_use]
    pub fn inline_serial_windows(mut self, inline: bool) -> Self {
        self.inline_serial_windows = inline;
        self
    }

    /// Prefix of the pool threads' names.
    ///
    /// By default, `interstice-worker`.
    #[must_use]
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }
}

/// What one window did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowReport {
    /// Invocations executed and committed.
    pub invocations: usize,
    /// Dependency edges planned (0 with one worker, which plans nothing).
    pub edges: usize,
    /// Invocations that commits pushed onto the ingress.
    pub emitted: usize,
}

/// Runs windows of invocations from an [`Ingress`] in parallel and commits them in order.
///
/// `T` is the caller's task type and `O` what its execute function returns. The execute
/// function is given once, at construction, and must be `'static` because pinned lanes are
/// long-lived threads that outlive any one call; sharing it through an `Arc` keeps the crate
/// free of `unsafe` lifetime erasure.
pub struct Scheduler<T, O> {
    execute: Arc<ExecuteFn<T, O>>,
    pool: Pool,
    planner: Planner,
    /// Hands each window to the pool's runners, which stay between windows.
    relay: Arc<Relay<T, O>>,
    workers: usize,
    max_window: usize,
    inline_serial_windows: bool,
    // Lanes are joined before the pool threads (under loom), so that a runner a lane job
    // starts as it finishes still finds a pool.
    lanes: Lanes,
    #[cfg(loom)]
    _pool_threads: Option<Threads>,
}

impl<T, O> Drop for Scheduler<T, O> {
    /// Runners waiting between windows hold the last window, and through it `execute` and
    /// whatever that captured (a node's store, with its data directory's lock). They are let
    /// go here and waited for, so that all of it is released before `drop` returns: a node
    /// dropped and opened again at once must find its directory free.
    fn drop(&mut self) {
        // On one of the pool's own threads a runner would wait for itself. Under loom runners
        // never wait between windows and the pool's threads are joined as the fields drop.
        #[cfg(not(loom))]
        {
            self.relay.close();
            if let Pool::Rayon(pool) = &self.pool
                && pool.current_thread_index().is_none()
            {
                while self.relay.live_runners() > 0 {
                    std::thread::yield_now();
                }
            }
        }
    }
}

impl<T, O> fmt::Debug for Scheduler<T, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("workers", &self.workers)
            .field("lanes", &self.lanes)
            .field("max_window", &self.max_window)
            .finish_non_exhaustive()
    }
}

impl<T, O> Scheduler<T, O>
where
    T: Send + Sync + 'static,
    O: Send + 'static,
{
    /// Starts the pool and the lanes.
    ///
    /// `execute` runs each invocation, on a pool worker or on its lane. It may apply the
    /// invocation's writes to shared in-memory state: an invocation's successors start only
    /// after its `execute` has returned, and nothing that conflicts with it runs meanwhile.
    pub fn new<F>(config: Config, execute: F) -> Result<Self, Error>
    where
        F: Fn(&Invocation<T>) -> O + Send + Sync + 'static,
    {
        if config.workers == 0 {
            return Err(Error::InvalidConfig("workers must be at least 1"));
        }
        if config.max_window == 0 || config.max_window > MAX_WINDOW {
            return Err(Error::InvalidConfig(
                "max_window must be between 1 and 16777216",
            ));
        }
        let mut lanes = Lanes::default();
        for name in config.lanes {
            lanes.add(name, false)?;
        }

        #[cfg(loom)]
        let mut pool_threads = None;
        // The driving thread is a worker too (see `run_window`), so the pool has one fewer.
        let pool_threads_wanted = config.workers - 1;
        let pool =
            if config.workers == 1 {
                Pool::Serial
            } else {
                #[cfg(not(loom))]
                {
                    let prefix = config.thread_name.clone();
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(pool_threads_wanted)
                        .thread_name(move |i| format!("{prefix}-{i}"))
                        .build()?;
                    Pool::Rayon(Arc::new(pool))
                }
                #[cfg(loom)]
                {
                    let threads = Threads::spawn(&config.thread_name, pool_threads_wanted)
                        .map_err(|source| Error::ThreadSpawn {
                            name: config.thread_name.clone(),
                            source,
                        })?;
                    let sender = threads.sender().clone();
                    pool_threads = Some(threads);
                    Pool::Threads(sender)
                }
            };

        Ok(Self {
            execute: Arc::new(Box::new(execute)),
            pool,
            planner: Planner::new(),
            relay: Arc::new(Relay::new()),
            workers: config.workers,
            max_window: config.max_window,
            inline_serial_windows: config.inline_serial_windows,
            lanes,
            #[cfg(loom)]
            _pool_threads: pool_threads,
        })
    }

    /// Adds a lane now: a dedicated thread named `interstice-lane-<name>` that runs the work
    /// bound to it, e.g. for a module that holds the GPU authority. Names must be unique
    /// among live lanes.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateLane`] if a live lane has that name, [`Error::TooManyLanes`], or
    /// [`Error::ThreadSpawn`].
    pub fn add_lane(&mut self, name: impl Into<String>) -> Result<LaneId, Error> {
        Ok(self.lanes.add(name.into(), false)?.0)
    }

    /// Adds a lane that has no thread of its own: its work runs on the thread that calls
    /// [`LaneDriver::run_pending`] (e.g. the main thread that runs winit's event loop). See
    /// [`LaneDriver`] for what happens while the driver does not run it, and when it is
    /// dropped.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use interstice_scheduler::{AccessSet, Config, Ingress, Scheduler, ResourceId, Timestamp, Work};
    ///
    /// let mut scheduler = Scheduler::new(Config::new().workers(2), |_inv| {
    ///     std::thread::current().id()
    /// })?;
    /// let (main, driver) = scheduler.add_driven_lane("main")?;
    /// let owner = std::thread::current().id();
    ///
    /// // The window runs on another thread; this one owns the lane and drives it.
    /// let done = Arc::new(AtomicBool::new(false));
    /// let finished = done.clone();
    /// let window = std::thread::spawn(move || {
    ///     let mut ingress = Ingress::new();
    ///     ingress.push(Work::new((), AccessSet::new().write(ResourceId(0)), Timestamp(0)).on_lane(main));
    ///     ingress.push(Work::new((), AccessSet::new().write(ResourceId(1)), Timestamp(0)));
    ///     let mut threads = Vec::new();
    ///     scheduler.run_until_idle(&mut ingress, |_inv, outcome| {
    ///         threads.push(outcome.into_result().expect("no panic"));
    ///         None
    ///     })?;
    ///     finished.store(true, Ordering::Release);
    ///     Ok::<_, interstice_scheduler::Error>(threads)
    /// });
    /// let waker = std::thread::current();
    /// driver.set_waker(move || waker.unpark());
    /// while !done.load(Ordering::Acquire) {
    ///     // An event loop would do its own work here, and sleep until woken.
    ///     if driver.run_pending() == 0 {
    ///         std::thread::park_timeout(std::time::Duration::from_millis(10));
    ///     }
    /// }
    /// let threads = window.join().expect("window thread")?;
    /// assert_eq!(threads[0], owner);
    /// assert_ne!(threads[1], owner);
    /// # Ok::<(), interstice_scheduler::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateLane`] if a live lane has that name, or [`Error::TooManyLanes`].
    pub fn add_driven_lane(
        &mut self,
        name: impl Into<String>,
    ) -> Result<(LaneId, LaneDriver), Error> {
        let name = name.into();
        let (lane, sender) = self.lanes.add(name.clone(), true)?;
        Ok((lane, LaneDriver::new(sender, lane, name)))
    }

    /// Removes a lane, e.g. when the module that holds its authority is removed. A spawned
    /// lane's thread is joined; a driven lane is closed, which ends its driver's
    /// [`wait`](LaneDriver::wait). Work naming the lane afterwards is refused by
    /// [`run_window`](Self::run_window) with [`Error::LaneRemoved`]; the name is free again.
    ///
    /// # Errors
    ///
    /// [`Error::NoSuchLane`] if the lane is not live.
    pub fn remove_lane(&mut self, lane: LaneId) -> Result<(), Error> {
        self.lanes.remove(lane)
    }

    /// The id of the live lane named `name`.
    ///
    /// Work bound to a lane runs on that lane's thread and nowhere else, in its place in the
    /// plan and the commit order:
    ///
    /// ```
    /// use interstice_scheduler::{AccessSet, Config, Ingress, Scheduler, ResourceId, Timestamp, Work};
    ///
    /// let mut scheduler = Scheduler::new(Config::new().workers(2).lane("gpu"), |_inv| {
    ///     std::thread::current().name().map(str::to_owned)
    /// })?;
    /// let gpu = scheduler.lane("gpu")?;
    /// let mut ingress = Ingress::new();
    /// ingress.push(Work::new("draw", AccessSet::new().read(ResourceId(0)), Timestamp(0)).on_lane(gpu));
    /// ingress.push(Work::new("tick", AccessSet::new().write(ResourceId(0)), Timestamp(0)));
    /// let mut threads = Vec::new();
    /// scheduler.run_until_idle(&mut ingress, |_inv, outcome| {
    ///     threads.push(outcome.into_result().ok().flatten());
    ///     None
    /// })?;
    /// assert_eq!(threads[0].as_deref(), Some("interstice-lane-gpu"));
    /// assert_ne!(threads[1].as_deref(), Some("interstice-lane-gpu"));
    /// assert!(scheduler.lane("audio").is_err());
    /// # Ok::<(), interstice_scheduler::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::UnknownLane`] if no live lane has that name.
    pub fn lane(&self, name: &str) -> Result<LaneId, Error> {
        self.lanes.find(name).ok_or_else(|| Error::UnknownLane {
            name: name.to_owned(),
        })
    }

    /// The number of pool workers.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Takes up to `max_window` invocations from the front of `ingress`, executes them
    /// (in parallel where their access allows) and commits them in sequence order.
    ///
    /// `commit` is called once per invocation, strictly in sequence order, while later
    /// invocations may still be running. The work it returns is pushed onto `ingress` at once,
    /// so it is sequenced in commit order after everything already queued; it runs in a later
    /// window.
    ///
    /// This thread is one of the workers: between commits it executes ready invocations, and
    /// it sleeps only when there is nothing to commit and nothing to run. So the pool has one
    /// thread fewer than [`Config::workers`], and there are never more runnable threads than
    /// workers. It must not be one of this scheduler's own pool threads.
    ///
    /// # Errors
    ///
    /// [`Error::LaneOutOfRange`] or [`Error::LaneRemoved`] if an invocation of the window
    /// names a lane this scheduler does not have (any more); the ingress is then left
    /// untouched.
    pub fn run_window<C, I>(
        &mut self,
        ingress: &mut Ingress<T>,
        mut commit: C,
    ) -> Result<WindowReport, Error>
    where
        C: FnMut(&Invocation<T>, Executed<O>) -> I,
        I: IntoIterator<Item = Work<T>>,
    {
        let mut pinned = false;
        for inv in ingress.iter().take(self.max_window) {
            if let Some(lane) = inv.lane() {
                self.lanes.check(inv.seq(), lane)?;
                pinned = true;
            }
        }
        let n = ingress.len().min(self.max_window);
        if n == 0 {
            return Ok(WindowReport::default());
        }
        // A lone invocation has nothing to overlap with: no plan, no hand-off to the pool.
        let lone = n == 1 && self.inline_serial_windows;
        if !pinned && (lone || matches!(self.pool, Pool::Serial)) {
            return Ok(self.run_serial(ingress, n, &mut commit));
        }
        let mut invocations = self.relay.spare();
        ingress.take_window(n, &mut invocations);
        // An empty plan is what tells `drive` to run the window in place.
        let parallel = !(matches!(self.pool, Pool::Serial) || lone);
        let mut plan = if parallel {
            self.planner
                .plan(invocations.iter().map(Invocation::access))
        } else {
            Plan::default()
        };
        let edges = plan.edge_count();
        // Nothing to overlap: run it as the serial reference does (and with its empty plan,
        // so no job releases successors behind the driver's back).
        if parallel && self.inline_serial_windows && is_chain(&plan) {
            plan = Plan::default();
        }
        tracing::trace!(invocations = n, edges, "planned window");
        let window = Arc::new(Window::new(
            invocations,
            plan,
            self.execute.clone(),
            Dispatch {
                pool: self.pool.clone(),
                lanes: self.lanes.handles(),
            },
            self.workers,
        ));

        let emitted = drive(&window, &self.relay, ingress, &mut commit);
        Relay::retire(&self.relay, window);
        Ok(WindowReport {
            invocations: n,
            edges,
            emitted,
        })
    }

    /// Runs the first `n` invocations of `ingress` one after another on this thread, each
    /// committed as soon as it has executed: the serial reference, and the whole of a window
    /// that has nothing to overlap and nothing pinned.
    ///
    /// No window object, plan or reorder buffer: a call through the node is often a window
    /// of one, and their setup (an `Arc`, a slot per invocation, the dispatch handles) cost
    /// more than the invocation's own bookkeeping. Work a commit emits goes to the back of the
    /// ingress, behind the `n` taken from the front, exactly as it does after a planned window.
    fn run_serial<C, I>(
        &mut self,
        ingress: &mut Ingress<T>,
        n: usize,
        commit: &mut C,
    ) -> WindowReport
    where
        C: FnMut(&Invocation<T>, Executed<O>) -> I,
        I: IntoIterator<Item = Work<T>>,
    {
        let mut emitted = 0;
        for _ in 0..n {
            let Some(invocation) = ingress.pop() else {
                break;
            };
            let outcome = execute_caught(&self.execute, &invocation);
            for work in commit(&invocation, outcome) {
                ingress.push(work);
                emitted += 1;
            }
        }
        WindowReport {
            invocations: n,
            edges: 0,
            emitted,
        }
    }

    /// Runs windows until the ingress is empty, including the work commits emit; returns the
    /// number of invocations committed.
    ///
    /// # Errors
    ///
    /// As [`run_window`](Self::run_window); windows already run stay committed.
    pub fn run_until_idle<C, I>(
        &mut self,
        ingress: &mut Ingress<T>,
        mut commit: C,
    ) -> Result<usize, Error>
    where
        C: FnMut(&Invocation<T>, Executed<O>) -> I,
        I: IntoIterator<Item = Work<T>>,
    {
        let mut committed = 0;
        while !ingress.is_empty() {
            committed += self.run_window(ingress, &mut commit)?.invocations;
        }
        Ok(committed)
    }
}

/// Whether every invocation of the plan must wait for the one before it (a single invocation
/// included), so that running them in order on one thread loses no parallelism.
fn is_chain(plan: &Plan) -> bool {
    (1..plan.len()).all(|j| plan.successors(j - 1).contains(&(j as u32)))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::{AccessSet, ResourceId, Timestamp};

    /// A task that counts its drops: whatever holds a finished window holds its tasks.
    struct Counted(u64, Arc<AtomicUsize>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Back-to-back windows reuse the runners the relay holds (never more jobs than the pool
    /// could need, even counting a runner replaced as it gave up), every window still commits
    /// in order, and once windows stop coming every runner gives its pool thread back and
    /// nothing keeps a finished window's tasks alive.
    #[test]
    fn runners_stay_between_windows_then_give_their_threads_back() {
        let pool_threads = 2;
        let dropped = Arc::new(AtomicUsize::new(0));
        let mut scheduler = Scheduler::new(
            Config::new().workers(pool_threads + 1),
            |inv: &Invocation<Counted>| inv.task().0 * 2,
        )
        .unwrap();
        let mut ingress = Ingress::new();
        let mut run = |scheduler: &mut Scheduler<Counted, u64>, round: u64| {
            for i in 0..64u64 {
                let access = AccessSet::new().write(ResourceId((i % 8) as u32));
                let task = Counted(round * 64 + i, dropped.clone());
                ingress.push(Work::new(task, access, Timestamp(0)));
            }
            let mut committed = Vec::new();
            scheduler
                .run_window(&mut ingress, |inv, outcome| {
                    committed.push((inv.task().0, outcome.into_result().unwrap()));
                    Vec::new()
                })
                .unwrap();
            let expected: Vec<(u64, u64)> =
                (round * 64..round * 64 + 64).map(|t| (t, t * 2)).collect();
            assert_eq!(committed, expected);
            assert!(
                scheduler.relay.live_runners() as usize <= 2 * pool_threads,
                "{} runner jobs for {pool_threads} pool threads",
                scheduler.relay.live_runners()
            );
        };
        for round in 0..50 {
            run(&mut scheduler, round);
        }
        run(&mut scheduler, 50);
        let deadline = Instant::now() + Duration::from_secs(30);
        while scheduler.relay.live_runners() > 0 {
            assert!(
                Instant::now() < deadline,
                "runners still held with no window coming"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            51 * 64,
            "every task of every finished window is dropped"
        );
    }

    /// What `execute` captured is released by the time the scheduler's `drop` returns, even
    /// with runners waiting between windows right then (a node's store, dropped with it, must
    /// let go of its directory at once).
    #[test]
    fn dropping_the_scheduler_releases_what_execute_holds() {
        for round in 0..20u64 {
            let held = Arc::new(round);
            let watch = Arc::downgrade(&held);
            let mut scheduler =
                Scheduler::new(Config::new().workers(3), move |inv: &Invocation<u64>| {
                    inv.task() + *held
                })
                .unwrap();
            let mut ingress = Ingress::new();
            for i in 0..64u64 {
                let access = AccessSet::new().write(ResourceId((i % 8) as u32));
                ingress.push(Work::new(i, access, Timestamp(0)));
            }
            let mut sum = 0;
            scheduler
                .run_window(&mut ingress, |_, outcome| {
                    sum += outcome.into_result().unwrap();
                    Vec::new()
                })
                .unwrap();
            assert_eq!(sum, (0..64).sum::<u64>() + 64 * round);
            drop(scheduler);
            assert!(
                watch.upgrade().is_none(),
                "round {round}: a runner still holds what `execute` captured"
            );
        }
    }
}
