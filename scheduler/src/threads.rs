//! Dedicated threads fed from a FIFO: the pinned lanes, and the worker pool under loom.

use std::collections::VecDeque;
use std::io;

use crate::loom::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use crate::loom::thread::{Builder, JoinHandle};

pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Default)]
struct State {
    jobs: VecDeque<Job>,
    shutting_down: bool,
}

/// The submitting side; cheap to clone into every job that may release more work.
#[derive(Clone)]
pub(crate) struct Sender {
    shared: Arc<Shared>,
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

impl Sender {
    pub(crate) fn send(&self, job: Job) {
        let mut state = self.shared.lock();
        state.jobs.push_back(job);
        drop(state);
        self.shared.available.notify_one();
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
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            available: Condvar::new(),
        });
        let mut threads = Self {
            sender: Sender {
                shared: shared.clone(),
            },
            handles: Vec::with_capacity(count),
        };
        for i in 0..count {
            let shared = shared.clone();
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
        job();
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
