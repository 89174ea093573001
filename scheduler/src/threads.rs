//! FIFO job queues, each drained by dedicated threads (a lane, or the pool under loom) or by a
//! thread the embedder owns (a driven lane).

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use crate::loom::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use crate::loom::thread::{Builder, JoinHandle};

/// A job runs with `None`, or is abandoned with `Some(reason)` when its queue is closed: an
/// abandoned job must still report (and release what waits for it), it only skips the work.
pub(crate) type Job = Box<dyn FnOnce(Option<&str>) + Send + 'static>;

/// Called after a job is queued (and when the queue closes), outside every lock. Plain `std`
/// `Arc`s here and for the reason: they carry no synchronisation for loom to model.
pub(crate) type Waker = std::sync::Arc<dyn Fn() + Send + Sync + 'static>;

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    shutting_down: bool,
    /// Why the queue takes no more jobs; every job sent from then on is abandoned at once.
    closed: Option<std::sync::Arc<str>>,
    waker: Option<Waker>,
}

struct Shared {
    state: Mutex<State>,
    available: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A job never runs under this lock, so a poisoned lock only means a panic between two
        // queue operations; the queue itself is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The submitting side; cheap to clone into every job that may release more work.
#[derive(Clone)]
pub(crate) struct Sender {
    shared: Arc<Shared>,
}

impl Sender {
    pub(crate) fn new() -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                available: Condvar::new(),
            }),
        }
    }

    /// Queues `job`, or abandons it on this thread if the queue is closed.
    ///
    /// Once the threads are shutting down the job runs here instead: a job's last act may be
    /// to post an outcome that lets the scheduler return and be dropped, and a pool runner it
    /// starts after that must still run (it finds nothing to do), or it would hold its
    /// window forever.
    pub(crate) fn send(&self, job: Job) {
        let mut state = self.shared.lock();
        if let Some(reason) = state.closed.clone() {
            drop(state);
            job(Some(&reason));
            return;
        }
        if state.shutting_down {
            drop(state);
            job(None);
            return;
        }
        state.jobs.push_back(job);
        let waker = state.waker.clone();
        drop(state);
        self.shared.available.notify_one();
        if let Some(waker) = waker {
            waker();
        }
    }

    /// Takes no more jobs: abandons the queued ones (on this thread) and every later one.
    pub(crate) fn close(&self, reason: &str) {
        let mut state = self.shared.lock();
        if state.closed.is_some() {
            return;
        }
        state.closed = Some(std::sync::Arc::from(reason));
        let jobs = std::mem::take(&mut state.jobs);
        let waker = state.waker.clone();
        drop(state);
        self.shared.available.notify_all();
        for job in jobs {
            job(Some(reason));
        }
        if let Some(waker) = waker {
            waker();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.shared.lock().closed.is_some()
    }

    pub(crate) fn set_waker(&self, waker: Waker) {
        self.shared.lock().waker = Some(waker);
    }

    /// Runs queued jobs on this thread until none is left (jobs they release included);
    /// returns how many ran.
    pub(crate) fn run_pending(&self) -> usize {
        let mut ran = 0;
        loop {
            let job = self.shared.lock().jobs.pop_front();
            match job {
                Some(job) => {
                    job(None);
                    ran += 1;
                }
                None => return ran,
            }
        }
    }

    /// Blocks until a job is queued, the queue is closed or `timeout` passes; returns whether
    /// a job is queued.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.shared.lock();
        while state.jobs.is_empty() && state.closed.is_none() {
            state = match deadline {
                None => self
                    .shared
                    .available
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        break;
                    };
                    self.shared
                        .available
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        !state.jobs.is_empty()
    }
}

/// Owns the threads: dropping it lets them drain the queue, then joins them.
///
/// The join handles live here and not in [`Sender`] so that a job finishing on one of these
/// threads, and dropping the last `Sender`, can never make a thread join itself.
pub(crate) struct Threads {
    sender: Sender,
    handles: Vec<JoinHandle<()>>,
}

impl Threads {
    pub(crate) fn spawn(name: &str, count: usize) -> io::Result<Self> {
        let mut threads = Self {
            sender: Sender::new(),
            handles: Vec::with_capacity(count),
        };
        for i in 0..count {
            let shared = threads.sender.shared.clone();
            let thread_name = if count == 1 {
                name.to_owned()
            } else {
                format!("{name}-{i}")
            };
            // On error `threads` is dropped here, which stops the ones already started.
            let handle = Builder::new()
                .name(thread_name)
                .spawn(move || run(&shared))?;
            threads.handles.push(handle);
        }
        Ok(threads)
    }

    pub(crate) fn sender(&self) -> &Sender {
        &self.sender
    }
}

fn run(shared: &Shared) {
    loop {
        let mut state = shared.lock();
        let job = loop {
            if let Some(job) = state.jobs.pop_front() {
                break job;
            }
            if state.shutting_down {
                return;
            }
            state = shared
                .available
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        };
        drop(state);
        job(None);
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.sender.shared.lock().shutting_down = true;
        self.sender.shared.available.notify_all();
        for handle in self.handles.drain(..) {
            // A thread only ends by panicking if a job escaped `catch_unwind`, which the
            // executor never lets happen; there is nothing more useful to do with it here.
            let _ = handle.join();
        }
    }
}
