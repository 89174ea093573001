//! Execution of one planned window and its ordered commit.
//!
//! The hot path takes no lock. Ready pool work is a bitmap, claimed lowest position first with
//! one atomic `fetch_and` per batch; a finished invocation releases its successors with one
//! `fetch_sub` each and publishes its outcome in its own slot with one `swap`. Threads with
//! nothing to do spin briefly, then sleep on an event count (one atomic word counting sleepers
//! and wake-ups, with a condition variable behind it), which a poster touches only when it
//! released work or the driver sleeps on its slot.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crate::ingress::{Ingress, Invocation, Work};
use crate::lanes::LaneHandle;
use crate::loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use crate::loom::sync::{Arc, Condvar, Mutex, PoisonError};
use crate::plan::Plan;
use crate::scheduler::Executed;
#[cfg(loom)]
use crate::threads::Sender;

pub(crate) type ExecuteFn<T, O> = Box<dyn Fn(&Invocation<T>) -> O + Send + Sync>;

/// Where a window's runners go.
#[derive(Clone)]
pub(crate) enum Pool {
    /// One worker: the driving thread runs every pool invocation itself, in order.
    Serial,
    #[cfg(not(loom))]
    Rayon(Arc<rayon::ThreadPool>),
    #[cfg(loom)]
    Threads(Sender),
}

#[derive(Clone)]
pub(crate) struct Dispatch {
    pub(crate) pool: Pool,
    /// The live lanes when the window started, by slot.
    pub(crate) lanes: std::sync::Arc<[Option<LaneHandle>]>,
}

/// How long a thread with nothing to do spins before it sleeps. Waking a sleeping thread costs
/// both threads microseconds of CPU (a futex call, a context switch, on a virtual machine an
/// inter-processor interrupt), about what a small reducer costs; a spin this short costs less
/// than that when work comes back within it, and little when it does not. Loom models every
/// load, so under loom nothing spins.
const SPIN: Duration = if cfg!(loom) {
    Duration::ZERO
} else {
    Duration::from_micros(10)
};

/// How long a runner that finished a window waits for the next before it gives its pool
/// thread back. Windows follow each other with a gap of tens of microseconds (the driver's
/// last commits, planning the next); a runner that returned to the pool meanwhile would be
/// asleep by then, and waking it costs more than the gap: up to a millisecond when a virtual
/// machine's idle processor was halted, long enough to leave a whole window to the driver
/// alone. Spinning first, then yielding, keeps the processor awake without keeping other
/// threads of the machine from it. Nothing waits under loom.
const BETWEEN_WINDOWS: Duration = if cfg!(loom) {
    Duration::ZERO
} else {
    Duration::from_micros(250)
};

/// How long the driver waits for a driven lane's invocation before it says so in the log.
const DRIVER_PATIENCE: Duration = Duration::from_secs(1);

/// Pool positions a runner claims at most at once: enough to take the claim off the hot path,
/// few enough that the end of a window stays balanced and that a runner the operating system
/// preempts holds little back.
const BATCH: u32 = 8;

/// Slot states.
const PENDING: u32 = 0;
const DONE: u32 = 1;
/// Not done, and the driver sleeps until it is (or until work is released).
const WAITING: u32 = 2;

/// Keeps a hot atomic on a cache line of its own, so that threads hammering it do not slow
/// down the ones reading its neighbours (128 bytes: adjacent-line prefetchers pair lines).
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// One position of the reorder buffer.
struct Slot<O> {
    state: AtomicU32,
    /// Written once by whoever ran the position, taken once by the driver after it sees
    /// `DONE`; the lock is never contended, it only makes the hand-over safe without `unsafe`.
    outcome: Mutex<Option<Executed<O>>>,
}

/// An event count: sleepers register, re-check their condition, and sleep only if no
/// notification came in between. Sleepers and notifiers meet on one atomic word (the number
/// of sleepers in the low half, a wake-up counter in the high half), so a notification is an
/// atomic add when nobody sleeps, and a missed wake-up is impossible with acquire/release
/// alone: whoever comes second in the word's order sees the other.
struct Events {
    state: AtomicU64,
    lock: Mutex<()>,
    wake: Condvar,
}

const SLEEPER: u64 = 1;
const EPOCH: u64 = 1 << 32;

impl Events {
    fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// Registers a sleeper; returns the epoch to pass to [`sleep`](Self::sleep). The caller
    /// must re-check its condition after this and before sleeping.
    fn register(&self) -> u64 {
        (self.state.fetch_add(SLEEPER, Ordering::AcqRel) + SLEEPER) / EPOCH
    }

    /// Sleeps unless a notification came since `epoch`, at most `timeout`; then unregisters.
    /// Returns whether the timeout passed.
    fn sleep(&self, epoch: u64, timeout: Option<Duration>) -> bool {
        let guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut timed_out = false;
        if self.state.load(Ordering::Acquire) / EPOCH == epoch {
            match timeout {
                None => drop(
                    self.wake
                        .wait(guard)
                        .unwrap_or_else(PoisonError::into_inner),
                ),
                Some(timeout) => {
                    let (guard, result) = self
                        .wake
                        .wait_timeout(guard, timeout)
                        .unwrap_or_else(PoisonError::into_inner);
                    drop(guard);
                    timed_out = result.timed_out();
                }
            }
        } else {
            drop(guard);
        }
        self.unregister();
        timed_out
    }

    /// Unregisters a sleeper that did not sleep after all.
    fn unregister(&self) {
        self.state.fetch_sub(SLEEPER, Ordering::AcqRel);
    }

    /// Wakes every sleeper; the caller has made its news visible first.
    fn notify(&self) {
        let before = self.state.fetch_add(EPOCH, Ordering::AcqRel);
        if !before.is_multiple_of(EPOCH) {
            // Taking the lock orders this after a sleeper's epoch check, so the sleeper is
            // either in `wait` (and woken) or will see the new epoch.
            drop(self.lock.lock().unwrap_or_else(PoisonError::into_inner));
            self.wake.notify_all();
        }
    }
}

/// Counts a bounded spin before sleeping.
struct Spin {
    until: Option<Instant>,
    rounds: u32,
}

impl Spin {
    fn new() -> Self {
        Self {
            until: None,
            rounds: 0,
        }
    }

    /// Spins a little and returns true while the budget lasts; false once it is spent (and
    /// re-arms for the next idle spell).
    fn spin(&mut self) -> bool {
        if SPIN.is_zero() {
            return false;
        }
        self.rounds += 1;
        // Reading the clock costs tens of nanoseconds: once every 32 rounds.
        if self.rounds % 32 == 1 {
            let now = Instant::now();
            match self.until {
                None => self.until = Some(now + SPIN),
                Some(until) if now >= until => {
                    self.reset();
                    return false;
                }
                Some(_) => {}
            }
        }
        std::hint::spin_loop();
        true
    }

    fn reset(&mut self) {
        self.until = None;
        self.rounds = 0;
    }
}

/// The most invocations a kept buffer has room for (about 1 MiB): a node configured with huge
/// windows does not hold the largest one's buffer for ever.
const MAX_SPARE: usize = 8192;

/// The number of windows posted, and the one running (until it is finished).
type Posted<T, O> = (u64, Option<Arc<Window<T, O>>>);

/// Hands windows to the pool's runners. A runner that leaves a window takes the next one
/// from here if it is posted within [`BETWEEN_WINDOWS`], so back-to-back windows reuse
/// running threads instead of spawning a job (and waking a thread) per window.
pub(crate) struct Relay<T, O> {
    /// The window now running, until it is finished; with the number of windows posted so far.
    current: Mutex<Posted<T, O>>,
    /// `current`'s count, readable without the lock.
    posted: Padded<AtomicU64>,
    /// Runner jobs spawned and not yet gone: in a window, waiting for one, or queued on the
    /// pool. Both this and `posted` are sequentially consistent (touched once per window), so a
    /// runner that leaves as a window is posted either is counted by the driver, which then
    /// spawns another, or sees the window and takes it.
    live: Padded<AtomicU32>,
    /// A finished window for a waiting runner to drop: freeing a window's invocations takes the
    /// driver tens of microseconds between two windows, while the runners have nothing to do.
    retired: Mutex<Option<Arc<Window<T, O>>>>,
    /// Whether `retired` holds one, so that waiting runners need not take the lock to know.
    has_retired: AtomicBool,
    /// The emptied invocation buffer of a retired window, for the next one: a window's
    /// buffer is large enough that allocating it anew often costs fresh pages.
    spare: Mutex<Vec<Invocation<T>>>,
    /// Set when the scheduler is dropped: waiting runners leave at once.
    closed: AtomicBool,
}

impl<T, O> Relay<T, O> {
    /// Lets every waiting runner go. Called as the scheduler is dropped, so that nothing keeps
    /// its last window (and the `execute` that window holds) for a moment longer.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Runner jobs spawned and not yet gone.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn live_runners(&self) -> u32 {
        self.live.load(Ordering::SeqCst)
    }
}

impl<T, O> Relay<T, O>
where
    T: Send + Sync + 'static,
    O: Send + 'static,
{
    pub(crate) fn new() -> Self {
        Self {
            current: Mutex::new((0, None)),
            posted: Padded(AtomicU64::new(0)),
            live: Padded(AtomicU32::new(0)),
            retired: Mutex::new(None),
            has_retired: AtomicBool::new(false),
            spare: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        }
    }

    /// An empty buffer for the next window's invocations, with the last one's allocation when
    /// a runner gave it back.
    pub(crate) fn spare(&self) -> Vec<Invocation<T>> {
        std::mem::take(&mut *self.spare.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Hands `window`, finished, to a waiting runner to drop, or drops it here when no runner
    /// is live (checked again after handing it over, against a runner leaving meanwhile, which
    /// looks at `retired` after it stops counting itself live).
    pub(crate) fn retire(relay: &Arc<Self>, window: Arc<Window<T, O>>) {
        let this = &**relay;
        if this.live.load(Ordering::SeqCst) == 0 {
            return;
        }
        let previous = {
            let mut retired = this.retired.lock().unwrap_or_else(PoisonError::into_inner);
            this.has_retired.store(true, Ordering::SeqCst);
            retired.replace(window)
        };
        drop(previous);
        if this.live.load(Ordering::SeqCst) == 0 {
            drop(this.take_retired());
        }
    }

    fn take_retired(&self) -> Option<Arc<Window<T, O>>> {
        if !self.has_retired.load(Ordering::SeqCst) {
            return None;
        }
        // The flag changes with the slot, under its lock, so it never says empty while a
        // window waits there.
        let mut retired = self.retired.lock().unwrap_or_else(PoisonError::into_inner);
        self.has_retired.store(false, Ordering::SeqCst);
        retired.take()
    }

    /// Drops a retired window on this runner's thread, keeping its invocation buffer for the
    /// next window when nothing else holds the window any more.
    fn drop_retired(&self) {
        let Some(window) = self.take_retired() else {
            return;
        };
        if let Ok(window) = Arc::try_unwrap(window) {
            let mut invocations = window.invocations;
            invocations.clear();
            let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
            if invocations.capacity() <= MAX_SPARE && spare.capacity() < invocations.capacity() {
                *spare = invocations;
            }
        }
    }

    fn lock(&self) -> crate::loom::sync::MutexGuard<'_, Posted<T, O>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Posts `window` on `relay` and starts the runner jobs it needs beyond those still live.
    fn post(relay: &Arc<Self>, window: &Arc<Window<T, O>>) {
        let this = &**relay;
        let wanted = window.seats.load(Ordering::Acquire);
        if wanted == 0 {
            return;
        }
        {
            let mut current = this.lock();
            current.0 += 1;
            current.1 = Some(window.clone());
            this.posted.store(current.0, Ordering::SeqCst);
        }
        let live = this.live.load(Ordering::SeqCst);
        for _ in live..wanted {
            this.live.fetch_add(1, Ordering::SeqCst);
            start_runner(relay, &window.dispatch.pool);
        }
    }

    /// Forgets `window` once it is finished, so that nothing here keeps its invocations alive.
    fn finished(&self, window: &Arc<Window<T, O>>) {
        let mut current = self.lock();
        if current.1.as_ref().is_some_and(|w| Arc::ptr_eq(w, window)) {
            current.1 = None;
        }
    }

    /// The window posted after the `seen`th, waiting for one at most [`BETWEEN_WINDOWS`];
    /// `None` when none came, and the runner is no longer live.
    fn next(&self, seen: &mut u64) -> Option<Arc<Window<T, O>>> {
        let started = Instant::now();
        let mut rounds = 0u32;
        loop {
            // Under loom runners never wait (`BETWEEN_WINDOWS` is zero), so the flag, which
            // would only add states to every model, is not read there.
            if !BETWEEN_WINDOWS.is_zero() && self.closed.load(Ordering::Relaxed) {
                break;
            }
            if self.posted.load(Ordering::SeqCst) != *seen {
                let current = self.lock();
                *seen = current.0;
                match &current.1 {
                    Some(window) if window.take_seat() => return Some(window.clone()),
                    // Enough runners have it: one too many waits for nothing, so this one
                    // gives its thread back.
                    Some(_) => break,
                    // Finished before this runner came: wait for the one after.
                    None => continue,
                }
            }
            if self.has_retired.load(Ordering::Relaxed) {
                self.drop_retired();
                continue;
            }
            rounds += 1;
            // The clock costs tens of nanoseconds: once every 32 rounds.
            if rounds.is_multiple_of(32) {
                let waited = started.elapsed();
                if waited >= BETWEEN_WINDOWS {
                    break;
                }
                if waited >= SPIN {
                    std::thread::yield_now();
                    continue;
                }
            }
            if BETWEEN_WINDOWS.is_zero() {
                break;
            }
            std::hint::spin_loop();
        }
        self.live.fetch_sub(1, Ordering::SeqCst);
        self.drop_retired();
        if self.posted.load(Ordering::SeqCst) == *seen
            || (!BETWEEN_WINDOWS.is_zero() && self.closed.load(Ordering::SeqCst))
        {
            return None;
        }
        // A window came as this runner was leaving, and the driver may have counted on it.
        self.live.fetch_add(1, Ordering::SeqCst);
        let current = self.lock();
        *seen = current.0;
        match &current.1 {
            Some(window) if window.take_seat() => Some(window.clone()),
            _ => {
                drop(current);
                self.live.fetch_sub(1, Ordering::SeqCst);
                None
            }
        }
    }
}

/// The state of one window, shared by the driver and every job of the window.
pub(crate) struct Window<T, O> {
    invocations: Vec<Invocation<T>>,
    plan: Plan,
    /// Whether positions are released through the plan; an empty plan means the driver runs
    /// the window in place, in order (sending lane work to its lane one at a time).
    parallel: bool,
    /// Unfinished predecessors per position; whoever brings one to zero makes it ready.
    pending: Box<[AtomicU32]>,
    /// Ready pool positions, one bit each (an allocation of its own, away from the rest).
    ready: Box<[AtomicU64]>,
    /// The word of `ready` that holds the next position to commit: everything below is
    /// committed, so claims start there. Only a hint, so relaxed.
    low_word: Padded<AtomicU32>,
    slots: Box<[Slot<O>]>,
    events: Padded<Events>,
    /// Pool positions that wait for a predecessor and are not released yet. Once it is zero
    /// and no ready bit is left, all pool work is claimed and a runner leaves, so its pool
    /// thread is free for the next window at once instead of sleeping until this one is
    /// committed. Counting releases rather than claims keeps claims to one atomic operation,
    /// and a release already wakes sleeping runners.
    unreleased: Padded<AtomicU32>,
    /// Set once the last position is committed (or a commit panicked): runners leave.
    finished: AtomicBool,
    /// Runners still wanted: one per pool thread, no more than there are pool positions. A
    /// runner takes a seat to join; one that finds none leaves the relay, so a pool that grew
    /// for large windows shrinks for small ones instead of spinning for nothing.
    seats: AtomicU32,
    workers: u32,
    execute: Arc<ExecuteFn<T, O>>,
    dispatch: Dispatch,
}

impl<T, O> Window<T, O>
where
    T: Send + Sync + 'static,
    O: Send + 'static,
{
    pub(crate) fn new(
        invocations: Vec<Invocation<T>>,
        plan: Plan,
        execute: Arc<ExecuteFn<T, O>>,
        dispatch: Dispatch,
        workers: usize,
    ) -> Self {
        let n = invocations.len();
        let parallel = !plan.is_empty();
        let mut unreleased = 0;
        let mut pool_positions = 0;
        let mut ready = vec![0u64; n.div_ceil(64)];
        if parallel {
            for (i, inv) in invocations.iter().enumerate() {
                if inv.lane().is_some() {
                    continue;
                }
                pool_positions += 1;
                if plan.in_degree(i) == 0 {
                    ready[i / 64] |= 1 << (i % 64);
                } else {
                    unreleased += 1;
                }
            }
        }
        Self {
            pending: (0..plan.len())
                .map(|i| AtomicU32::new(plan.in_degree(i)))
                .collect(),
            ready: ready.into_iter().map(AtomicU64::new).collect(),
            low_word: Padded(AtomicU32::new(0)),
            slots: (0..n)
                .map(|_| Slot {
                    state: AtomicU32::new(PENDING),
                    outcome: Mutex::new(None),
                })
                .collect(),
            events: Padded(Events::new()),
            unreleased: Padded(AtomicU32::new(unreleased)),
            seats: AtomicU32::new((workers - 1).min(pool_positions) as u32),
            finished: AtomicBool::new(false),
            workers: workers as u32,
            invocations,
            plan,
            parallel,
            execute,
            dispatch,
        }
    }

    /// Takes one of the window's seats, if one is left.
    fn take_seat(&self) -> bool {
        self.seats
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| s.checked_sub(1))
            .is_ok()
    }

    fn execute_caught(&self, i: usize) -> Executed<O> {
        execute_caught(&self.execute, &self.invocations[i])
    }

    /// Claims ready pool positions, lowest first, all from one word of the bitmap: one, or
    /// (`batch`) up to half this thread's fair share of the word's ready positions, at most
    /// [`BATCH`], so that a batch never holds back work that idle threads could run. Returns
    /// the word and the bits claimed.
    fn claim(&self, batch: bool) -> Option<(usize, u64)> {
        let start = self.low_word.load(Ordering::Relaxed) as usize;
        for (w, word) in self.ready.iter().enumerate().skip(start) {
            let mut bits = word.load(Ordering::Relaxed);
            while bits != 0 {
                let max = if batch {
                    (bits.count_ones() / (2 * self.workers)).clamp(1, BATCH)
                } else {
                    1
                };
                let mut mask = 0;
                let mut rest = bits;
                for _ in 0..max {
                    if rest == 0 {
                        break;
                    }
                    let lowest = rest & rest.wrapping_neg();
                    mask |= lowest;
                    rest ^= lowest;
                }
                // Acquire: the claim reads what the releasing thread (and every predecessor
                // it synchronised with) wrote.
                let before = word.fetch_and(!mask, Ordering::AcqRel);
                let got = before & mask;
                if got != 0 {
                    return Some((w, got));
                }
                bits = before & !mask;
            }
        }
        None
    }

    /// Whether no pool work is left to claim in this window, ever: a runner's cue to leave.
    fn all_claimed(&self) -> bool {
        // Acquire: seeing the last release's decrement, this thread sees its ready bit too.
        (self.unreleased.load(Ordering::Acquire) == 0 && !self.has_ready())
            || self.finished.load(Ordering::Acquire)
    }

    fn has_ready(&self) -> bool {
        let start = self.low_word.load(Ordering::Relaxed) as usize;
        self.ready
            .iter()
            .skip(start)
            .any(|w| w.load(Ordering::Acquire) != 0)
    }

    /// The outcome at `i`, if it is posted.
    fn take_if_done(&self, i: usize) -> Option<Executed<O>> {
        if self.slots[i].state.load(Ordering::Acquire) != DONE {
            return None;
        }
        self.slots[i]
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The name of the driven lane position `i` is bound to, if it is.
    fn driven_lane(&self, i: usize) -> Option<&str> {
        let lane = self.invocations[i].lane()?;
        match self.dispatch.lanes.get(lane.index()) {
            Some(Some(handle)) if handle.driven => Some(&handle.name),
            _ => None,
        }
    }
}

/// Commits the window in sequence order, executing in place what the plan leaves to the
/// driver (everything, when it planned nothing) and waiting for the rest, which the driver
/// helps execute; returns how much work the commits emitted.
pub(crate) fn drive<T, O, C, I>(
    window: &Arc<Window<T, O>>,
    relay: &Arc<Relay<T, O>>,
    ingress: &mut Ingress<T>,
    commit: &mut C,
) -> usize
where
    T: Send + Sync + 'static,
    O: Send + 'static,
    C: FnMut(&Invocation<T>, Executed<O>) -> I,
    I: IntoIterator<Item = Work<T>>,
{
    // Runners leave once the window is finished, even if a commit panics and unwinds from
    // here: otherwise each would sleep for ever on a pool thread.
    struct Finish<'a, T, O>
    where
        T: Send + Sync + 'static,
        O: Send + 'static,
    {
        window: &'a Arc<Window<T, O>>,
        relay: &'a Relay<T, O>,
    }
    impl<T, O> Drop for Finish<'_, T, O>
    where
        T: Send + Sync + 'static,
        O: Send + 'static,
    {
        fn drop(&mut self) {
            self.window.finished.store(true, Ordering::Release);
            self.window.events.notify();
            self.relay.finished(self.window);
        }
    }
    let _finish = Finish { window, relay };
    if window.parallel {
        for root in window.plan.roots() {
            dispatch_to_lane(window, root);
        }
        Relay::post(relay, window);
    }
    let mut emitted = 0;
    for next in 0..window.invocations.len() {
        let on_lane = window.invocations[next].lane().is_some();
        let outcome = if window.parallel || on_lane {
            if !window.parallel {
                dispatch_to_lane(window, next);
            }
            await_outcome(window, next)
        } else {
            window.execute_caught(next)
        };
        for work in commit(&window.invocations[next], outcome) {
            ingress.push(work);
            emitted += 1;
        }
        if (next + 1) % 64 == 0 {
            window
                .low_word
                .store(((next + 1) / 64) as u32, Ordering::Relaxed);
        }
    }
    emitted
}

/// Returns the outcome at `next` once it is posted. Meanwhile the driver runs ready
/// invocations itself, one at a time so that it commits as soon as it can, spins briefly
/// when none is ready, and then sleeps until `next` is posted or work is released.
fn await_outcome<T, O>(window: &Arc<Window<T, O>>, next: usize) -> Executed<O>
where
    T: Send + Sync + 'static,
    O: Send + 'static,
{
    let mut spin = Spin::new();
    let mut warned = false;
    loop {
        if let Some(outcome) = window.take_if_done(next) {
            return outcome;
        }
        if let Some((w, bit)) = window.claim(false) {
            run_one(window, w * 64 + bit.trailing_zeros() as usize);
            spin.reset();
            continue;
        }
        if spin.spin() {
            continue;
        }
        let epoch = window.events.register();
        let state = &window.slots[next].state;
        let pending =
            match state.compare_exchange(PENDING, WAITING, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => true,
                Err(now) => now == WAITING,
            };
        if !pending || window.has_ready() {
            window.events.unregister();
            continue;
        }
        let driven = window.driven_lane(next).filter(|_| !warned);
        let timed_out = window.events.sleep(epoch, driven.map(|_| DRIVER_PATIENCE));
        if let Some(lane) = driven.filter(|_| timed_out)
            && window.slots[next].state.load(Ordering::Acquire) != DONE
        {
            warned = true;
            tracing::warn!(
                seq = %window.invocations[next].seq(),
                lane = %lane,
                "the commit waits for an invocation on driven lane `{lane}` that its driver \
                 has not run for a second: call `LaneDriver::run_pending` from the thread \
                 that owns the lane"
            );
        }
    }
}

/// Starts a job on the pool that runs the relay's windows, one after another, until none
/// comes for [`BETWEEN_WINDOWS`].
fn start_runner<T, O>(relay: &Arc<Relay<T, O>>, pool: &Pool)
where
    T: Send + Sync + 'static,
    O: Send + 'static,
{
    let relay = relay.clone();
    let job = move || {
        let mut seen = 0;
        while let Some(window) = relay.next(&mut seen) {
            run_runner(&window);
        }
    };
    match pool {
        #[cfg(not(loom))]
        Pool::Rayon(pool) => pool.spawn(job),
        #[cfg(loom)]
        Pool::Threads(sender) => sender.send(Box::new(move |_: Option<&str>| job())),
        Pool::Serial => unreachable!("the serial driver starts no runners"),
    }
}

/// A pool thread's loop for one window: claim a batch of ready positions, run them, and when
/// none is ready spin, then sleep until work is released; leave once every pool position of
/// the window is claimed, so the thread is free for the next window.
fn run_runner<T, O>(window: &Arc<Window<T, O>>)
where
    T: Send + Sync + 'static,
    O: Send + 'static,
{
    let mut spin = Spin::new();
    loop {
        if let Some((w, mut bits)) = window.claim(true) {
            while bits != 0 {
                run_one(window, w * 64 + bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
            spin.reset();
            continue;
        }
        if window.all_claimed() {
            return;
        }
        if spin.spin() {
            continue;
        }
        let epoch = window.events.register();
        if window.has_ready() || window.all_claimed() {
            window.events.unregister();
            continue;
        }
        window.events.sleep(epoch, None);
    }
}

/// Sends position `i`, if it is bound to a lane, to that lane's queue. If the lane is closed
/// (a driven lane whose driver was dropped) the job is abandoned: it reports
/// [`Executed::Panicked`] with the reason, without running, and still releases its successors.
fn dispatch_to_lane<T, O>(window: &Arc<Window<T, O>>, i: usize)
where
    T: Send + Sync + 'static,
    O: Send + 'static,
{
    let Some(lane) = window.invocations[i].lane() else {
        return;
    };
    // `run_window` checked every lane of the window, so the slot is live.
    let Some(Some(handle)) = window.dispatch.lanes.get(lane.index()) else {
        unreachable!("lanes are checked before a window starts");
    };
    let job_window = window.clone();
    handle
        .sender
        .send(Box::new(move |abandoned: Option<&str>| match abandoned {
            None => run_one(&job_window, i),
            Some(reason) => finish(
                &job_window,
                i,
                Executed::Panicked {
                    message: reason.to_owned(),
                },
            ),
        }));
}

/// Runs position `i`: execute, then [`finish`].
fn run_one<T, O>(window: &Arc<Window<T, O>>, i: usize)
where
    T: Send + Sync + 'static,
    O: Send + 'static,
{
    let outcome = window.execute_caught(i);
    finish(window, i, outcome);
}

/// Releases the successors of position `i` and posts its outcome.
///
/// Successors are released only after `execute` has returned (or unwound), which is the
/// happens-before edge that lets `execute` write shared state: the `AcqRel` decrement that
/// reaches zero synchronises with every predecessor's decrement, and the claim of the released
/// bit with that. Released pool work becomes a bit of the ready map; released lane work goes
/// to its lane.
fn finish<T, O>(window: &Arc<Window<T, O>>, i: usize, outcome: Executed<O>)
where
    T: Send + Sync + 'static,
    O: Send + 'static,
{
    let mut released = false;
    if window.parallel {
        for &succ in window.plan.successors(i) {
            let succ = succ as usize;
            if window.pending[succ].fetch_sub(1, Ordering::AcqRel) == 1 {
                if window.invocations[succ].lane().is_some() {
                    dispatch_to_lane(window, succ);
                } else {
                    window.ready[succ / 64].fetch_or(1 << (succ % 64), Ordering::AcqRel);
                    window.unreleased.fetch_sub(1, Ordering::AcqRel);
                    released = true;
                }
            }
        }
    }
    *window.slots[i]
        .outcome
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(outcome);
    let before = window.slots[i].state.swap(DONE, Ordering::AcqRel);
    if released || before == WAITING {
        window.events.notify();
    }
}

/// Runs `execute`, turning a panic into [`Executed::Panicked`] so the rest of the window goes on.
pub(crate) fn execute_caught<T, O>(
    execute: &ExecuteFn<T, O>,
    invocation: &Invocation<T>,
) -> Executed<O> {
    match catch_unwind(AssertUnwindSafe(|| execute(invocation))) {
        Ok(output) => Executed::Completed(output),
        Err(payload) => Executed::Panicked {
            message: panic_message(payload.as_ref()),
        },
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
