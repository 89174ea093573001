//! Timers (`ctx.schedule`) and the node's own thread, the pump, which fires them when they are
//! due and runs what authorities submit — so an embedded node that never serves the network
//! still fires its timers.

use interstice_store::Readable;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use interstice_abi::Value;
use parking_lot::Mutex;

use super::NodeInner;
use super::ingress::{Submission, Wakeup};
use crate::error::NodeError;
use crate::system::{HostRow, Timer};

/// How often the pump looks for due timers while some are pending.
const TIMER_TICK: Duration = Duration::from_millis(10);

impl NodeInner {
    /// Runs every timer whose logical due time has come, in due order; returns how many.
    pub fn run_due_timers(&self) -> Result<usize, NodeError> {
        // One caller at a time, so a timer is never submitted twice (the pump and an
        // embedder may both ask).
        let _firing = self.pump.firing.lock();
        let now = self.entrance.clock().now();
        let mut due: Vec<(i64, String, Timer)> = Vec::new();
        {
            let view = self.store().read();
            let until = (
                std::ops::Bound::Unbounded,
                std::ops::Bound::Included(Value::I64(now)),
            );
            for (module, host) in self.core.all_host_tables() {
                for row in view.index_range(host.timers, "due", until.clone())? {
                    let timer = Timer::from_values(&row)?;
                    due.push((timer.due, module.clone(), timer));
                }
            }
        }
        // Due time, then module, then the order they were scheduled in.
        due.sort_by(|a, b| (a.0, &a.1, a.2.id).cmp(&(b.0, &b.1, b.2.id)));
        let count = due.len();
        self.entrance
            .submit_all(due.into_iter().map(|(at, module, timer)| {
                Submission::call(module, timer.reducer, timer.args)
                    .timer(timer.id)
                    .at(at)
            }));
        if count > 0 {
            self.drive()?;
        }
        Ok(count)
    }

    /// The number of timers waiting, over all modules.
    pub fn pending_timers(&self) -> Result<usize, NodeError> {
        let view = self.store().read();
        let mut n = 0;
        for (_, host) in self.core.all_host_tables() {
            n += view.len(host.timers)?;
        }
        Ok(n)
    }
}

/// The node's own thread.
pub(super) struct Pump {
    wakeup: Arc<Wakeup>,
    stopping: AtomicBool,
    thread: Mutex<Option<(JoinHandle<()>, ThreadId)>>,
    /// Held while due timers are collected and run.
    firing: Mutex<()>,
}

impl Pump {
    pub fn new(wakeup: Arc<Wakeup>) -> Self {
        Pump {
            wakeup,
            stopping: AtomicBool::new(false),
            thread: Mutex::new(None),
            firing: Mutex::new(()),
        }
    }

    /// Starts the thread. It fires timers only on the system clock: a manual clock moves when
    /// the embedder says so, and the embedder then calls [`Node::run_due_timers`].
    pub fn spawn(node: &Arc<NodeInner>) -> Result<(), NodeError> {
        let weak = Arc::downgrade(node);
        let fire_timers = node.entrance.clock().is_system();
        let wakeup = node.pump.wakeup.clone();
        let handle = std::thread::Builder::new()
            .name("interstice-pump".into())
            .spawn(move || run(&weak, &wakeup, fire_timers))
            .map_err(|source| NodeError::Io {
                context: "cannot start the node's timer thread".into(),
                source,
            })?;
        let id = handle.thread().id();
        *node.pump.thread.lock() = Some((handle, id));
        Ok(())
    }

    /// Wakes the thread: work waits in the inbox, or a timer was set.
    pub fn ring(&self) {
        self.wakeup.ring();
    }

    /// Stops the thread and waits for it, unless this is it (the last handle to the node was
    /// dropped there).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wakeup.ring();
        let thread = self.thread.lock().take();
        if let Some((handle, id)) = thread
            && id != std::thread::current().id()
        {
            let _ = handle.join();
        }
    }
}

fn run(node: &Weak<NodeInner>, wakeup: &Wakeup, fire_timers: bool) {
    // The first turn looks for timers a previous run of the node left.
    let mut timeout = Some(Duration::ZERO);
    loop {
        wakeup.wait(timeout);
        let Some(node) = node.upgrade() else {
            return;
        };
        if node.pump.stopping.load(Ordering::Acquire) {
            return;
        }
        let mut ran = false;
        if fire_timers {
            match node.run_due_timers() {
                Ok(n) => ran |= n > 0,
                Err(e) => tracing::error!(error = %e, "running due timers failed"),
            }
        }
        if !node.entrance.is_empty() {
            ran = true;
            if let Err(e) = node.drive() {
                tracing::error!(error = %e, "running submitted events failed");
            }
        }
        // Nobody waits for what timers and events commit: make it durable now rather than
        // at the next caller's fsync.
        if ran && let Err(e) = node.store().sync() {
            node.note_store_error(&e);
        }
        let pending = fire_timers && node.pending_timers().is_ok_and(|n| n > 0);
        timeout = pending.then_some(TIMER_TICK);
    }
}
