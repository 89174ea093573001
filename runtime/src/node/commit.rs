//! The driver and the ordered commit: whoever holds the driver runs scheduler windows and
//! commits their results strictly in sequence order — the log, subscription triggers, feeds
//! for remote subscribers, remote calls and outcomes.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use interstice_scheduler::{self as sched, Ingress, Invocation, Scheduler};
use interstice_store::{Applied, CommitMeta, Lsn};

use super::{NodeInner, Outcome};
use crate::core::{Done, Task};
use crate::error::{CallFailure, NodeError};
use crate::exec::RemoteCall;
use crate::feed::Encoded;
use crate::system::{self, KeptTrigger};

/// The scheduler and its ingress. Whoever holds this lock drives windows; callers that arrive
/// meanwhile leave their work in the inbox and find it done.
pub(crate) struct Driver {
    pub scheduler: Scheduler<Task, Done>,
    pub ingress: Ingress<Task>,
    /// Windows of one invocation run so far, for timing one in [`SAMPLE_SINGLES`].
    singles: u64,
    /// Commits of larger windows so far, for timing one in [`SAMPLE_COMMITS`].
    commits: u64,
}

impl Driver {
    pub fn new(scheduler: Scheduler<Task, Done>, ingress: Ingress<Task>) -> Self {
        Driver {
            scheduler,
            ingress,
            singles: 0,
            commits: 0,
        }
    }
}

/// Timing a window takes three clock reads, about a tenth of a one-call window's wall time on
/// a virtual machine: windows of one invocation are timed one in this many, and counted this
/// many times. Windows of several invocations, where scaling is decided, are all timed.
const SAMPLE_SINGLES: u64 = 8;

/// Timing each commit took two clock reads, 6 % of an empty reducer's call: in windows of
/// several invocations, one commit in this many is timed and counted this many times.
const SAMPLE_COMMITS: u64 = 8;

/// What the node has done since it opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Scheduler windows run.
    pub windows: u64,
    /// Invocations run (committed or failed).
    pub invocations: u64,
    /// Wall time spent running windows, execution and commit included. Windows of a single
    /// invocation are timed one in eight and counted eight times (timing each would cost it
    /// a tenth of its time): a sum over many windows, not an exact figure for a few.
    pub window_nanos: u64,
    /// Of that, time in the serial, ordered commit (logging, events, outcomes), measured
    /// over the same windows, one commit in eight in windows of several invocations (counted
    /// eight times): an estimate over many commits, like `window_nanos`.
    pub commit_nanos: u64,
    /// fsyncs of the commit log (group commits, segment rolls, snapshots).
    pub log_fsyncs: u64,
    /// Log records made durable; per fsync, what group commit saves.
    pub records_durable: u64,
    /// Time since the node opened, for rates: fsyncs per second are `log_fsyncs / uptime`.
    pub uptime: std::time::Duration,
}

pub(super) struct Counters {
    opened: Instant,
    windows: AtomicU64,
    invocations: AtomicU64,
    window_nanos: AtomicU64,
    commit_nanos: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            opened: Instant::now(),
            windows: AtomicU64::new(0),
            invocations: AtomicU64::new(0),
            window_nanos: AtomicU64::new(0),
            commit_nanos: AtomicU64::new(0),
        }
    }
}

impl NodeInner {
    /// Counters since the node opened, for benchmarks and monitoring.
    pub fn stats(&self) -> NodeStats {
        let store = self.store().stats();
        NodeStats {
            windows: self.stats.windows.load(Relaxed),
            invocations: self.stats.invocations.load(Relaxed),
            window_nanos: self.stats.window_nanos.load(Relaxed),
            commit_nanos: self.stats.commit_nanos.load(Relaxed),
            log_fsyncs: store.log_fsyncs,
            records_durable: store.records_durable,
            uptime: self.stats.opened.elapsed(),
        }
    }

    /// Runs windows until the invocation filed under `ticket` has committed or failed (with
    /// everything before it and everything its commit triggered), and returns its outcome.
    pub(super) fn drive_until(&self, ticket: u64) -> Result<Outcome, NodeError> {
        let mut mine = Mine::new(ticket..ticket + 1);
        self.drive_mine(&mut mine)?;
        Ok(self.claim(&mut mine, ticket))
    }

    /// [`drive_until`](Self::drive_until) for consecutive tickets (one batch submitted under
    /// one lock): their outcomes, in ticket order.
    pub(super) fn drive_tickets(
        &self,
        tickets: std::ops::Range<u64>,
    ) -> Result<Vec<Outcome>, NodeError> {
        let mut mine = Mine::new(tickets.clone());
        self.drive_mine(&mut mine)?;
        Ok(tickets.map(|t| self.claim(&mut mine, t)).collect())
    }

    /// Drives, then sends what durable commits deferred. On failure the outcomes filed in
    /// `mine` go to the shared map, where whoever asks for them next finds them.
    fn drive_mine(&self, mine: &mut Mine) -> Result<(), NodeError> {
        let driven = self.drive_locked(mine);
        self.release_deferred();
        if driven.is_err() {
            self.outcomes.lock().extend(mine.drain());
        }
        driven
    }

    /// The outcome of `ticket`, one of `mine`'s. Every ticket was filed before the drive
    /// began, and every drive runs the ingress dry, so it is in `mine` or was filed in the
    /// shared map by the drive that ran it.
    fn claim(&self, mine: &mut Mine, ticket: u64) -> Outcome {
        mine.take(ticket)
            .or_else(|| self.outcomes.lock().remove(&ticket))
            .unwrap_or_else(|| lost(ticket))
    }

    /// Runs windows until the ingress is empty: what was submitted, and everything it triggers.
    pub(super) fn drive(&self) -> Result<(), NodeError> {
        self.drive_mine(&mut Mine::new(0..0))
    }

    /// Runs windows until the ingress is empty, filing the outcomes of `mine`'s tickets there
    /// and every other awaited outcome in the shared map.
    fn drive_locked(&self, mine: &mut Mine) -> Result<(), NodeError> {
        let mut driver = self.driver.lock();
        self.cascade.store(0, Ordering::Relaxed);
        loop {
            let Driver {
                scheduler,
                ingress,
                singles,
                commits,
            } = &mut *driver;
            // Between windows every applied transaction is committed: queries get their
            // snapshot here.
            self.serve_snapshots();
            self.entrance.drain_into(ingress);
            if ingress.is_empty() {
                if self.core.take_timer_hint() {
                    self.pump.ring();
                }
                return Ok(());
            }
            let single = ingress.len() == 1;
            let weight = if single {
                *singles += 1;
                if *singles % SAMPLE_SINGLES == 1 {
                    SAMPLE_SINGLES
                } else {
                    0
                }
            } else {
                1
            };
            let started = (weight > 0).then(Instant::now);
            let report = scheduler.run_window(ingress, |inv, outcome| {
                // A sampled single window times its one commit; a larger window one in
                // SAMPLE_COMMITS of its commits.
                let sample = if single {
                    weight
                } else {
                    *commits += 1;
                    if *commits % SAMPLE_COMMITS == 0 {
                        SAMPLE_COMMITS
                    } else {
                        0
                    }
                };
                let commit_started = (sample > 0).then(Instant::now);
                let work = self.commit(inv, outcome, mine);
                if let Some(commit_started) = commit_started {
                    self.stats.commit_nanos.fetch_add(
                        sample * nanos_between(commit_started, Instant::now()),
                        Relaxed,
                    );
                }
                work
            })?;
            self.stats.windows.fetch_add(1, Relaxed);
            self.stats
                .invocations
                .fetch_add(report.invocations as u64, Relaxed);
            if let Some(started) = started {
                self.stats
                    .window_nanos
                    .fetch_add(weight * nanos_between(started, Instant::now()), Relaxed);
            }
            if let Some(left) = &self.config.halt_after_windows {
                let before = left
                    .fetch_update(Relaxed, Relaxed, |n| Some(n.saturating_sub(1)))
                    .unwrap_or(0);
                if before <= 1 {
                    return Err(NodeError::Halted);
                }
            }
        }
    }

    /// A read transaction of the committed state at a point between windows, where what is
    /// applied is exactly the committed prefix of the ingress. Never holds up commits: when a
    /// drive is running, it hands one out at its next window boundary.
    pub(super) fn snapshot(&self) -> interstice_store::ReadTransaction {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.snapshot_requests.lock().push(tx);
        loop {
            if let Some(_driver) = self.driver.try_lock() {
                // Nobody drives: the state is between windows now. (The request left behind
                // is answered into a closed channel by the next drive.)
                return self.store().begin_read();
            }
            if let Ok(snapshot) = rx.recv_timeout(std::time::Duration::from_millis(1)) {
                return snapshot;
            }
        }
    }

    /// Answers the queries waiting for a snapshot; called by the driver between windows.
    fn serve_snapshots(&self) {
        let waiting = std::mem::take(&mut *self.snapshot_requests.lock());
        for request in waiting {
            // A query that stopped waiting has dropped its receiver.
            let _ = request.try_send(self.store().begin_read());
        }
    }

    /// The ordered commit: called for each invocation of a window in sequence order, on the
    /// driving thread. Logs what the worker applied, files the caller's outcome (the driving
    /// caller's into `mine`, others' in the shared map) and returns the work its changes
    /// trigger.
    fn commit(
        &self,
        inv: &Invocation<Task>,
        outcome: sched::Executed<Done>,
        mine: &mut Mine,
    ) -> Vec<sched::Work<Task>> {
        let task = inv.task();
        let seq = inv.seq().0;
        let time = inv.time().0 as i64;
        // A memory-only store keeps no records, so it would build the meta for nothing.
        let persistent = self.config.data_dir.is_some();
        let meta = |applied: &Applied| CommitMeta {
            seq,
            timestamp: inv.time().0,
            meta: if persistent && applied.needs_log() {
                invocation_meta(task)
            } else {
                Vec::new()
            },
        };
        let (result, emitted) = match outcome {
            sched::Executed::Completed(Done::Applied(mut applied, remote)) => {
                let changes = applied.take_changes();
                // The triggers of a change that survives a crash survive it too: they are
                // kept in this commit's record until each has run.
                let durable = persistent && applied.needs_log();
                // Empty when the worker found nothing here would read them (`Core::execute`).
                let mut triggered = if changes.is_empty() {
                    Vec::new()
                } else {
                    self.triggered(&changes, time)
                };
                if let Some(done) = self.trigger_done(task) {
                    applied.absorb(done);
                }
                if durable && !triggered.is_empty() {
                    self.keep_triggers(&mut applied, &mut triggered, time);
                }
                let fed = if changes.is_empty() {
                    Vec::new()
                } else {
                    self.feeds.encode(seq, &changes)
                };
                if durable && !fed.is_empty() {
                    self.keep_fed(&mut applied, &fed);
                }
                let meta = meta(&applied);
                match self.store().log(applied, meta) {
                    Ok(lsn) => {
                        self.defer(lsn, fed, remote);
                        (Outcome::Committed { seq, lsn }, triggered)
                    }
                    Err(e) => {
                        self.note_store_error(&e);
                        (
                            Outcome::Failed {
                                seq,
                                reason: CallFailure::Host(e.to_string()),
                            },
                            Vec::new(),
                        )
                    }
                }
            }
            sched::Executed::Completed(Done::Failed { reason, cleanup }) => {
                tracing::debug!(module = %task.module, reducer = %task.reducer, %reason, "reducer failed");
                self.forget_fired(task, cleanup, &meta);
                (Outcome::Failed { seq, reason }, Vec::new())
            }
            sched::Executed::Panicked { message } => {
                self.forget_fired(task, None, &meta);
                let reason = CallFailure::Host(format!("the node panicked running it: {message}"));
                (Outcome::Failed { seq, reason }, Vec::new())
            }
        };
        // File changes are effects of the commit: written now that its record is in the log.
        self.core
            .authorities
            .settle_files(seq, matches!(result, Outcome::Committed { .. }));
        if let Some(ticket) = task.ticket
            && let Some(result) = mine.file(ticket, result)
        {
            self.outcomes.lock().insert(ticket, result);
        }
        emitted
    }

    /// Keeps what a commit sends out — changes for remote subscribers, calls to other nodes —
    /// until the commit is durable (rule R1: nothing leaves the node that a crash could take
    /// back). A memory-only node has nothing to wait for.
    fn defer(&self, lsn: Lsn, fed: Vec<Encoded>, remote: Vec<RemoteCall>) {
        if fed.is_empty() && remote.is_empty() {
            return;
        }
        if self.config.data_dir.is_none() {
            self.feeds.publish(fed);
            self.send_remote(remote);
            return;
        }
        self.deferred.lock().push_back((lsn, fed, remote));
    }

    /// Sends what durable commits deferred, in commit order, once they are durable. Called
    /// after every drive, outside the driver lock: it may wait for an fsync.
    pub(super) fn release_deferred(&self) {
        let Some(last) = self.deferred.lock().back().map(|(lsn, ..)| *lsn) else {
            return;
        };
        if let Err(e) = self.store().wait_durable(last) {
            // Never sent: remote calls stay in their outbox and go after a restart; the
            // changes were not durable, so no subscriber may see them.
            self.note_store_error(&e);
            return;
        }
        let durable = self.store().durable_lsn();
        // Under the lock, so that two releasing threads keep commit order.
        let mut deferred = self.deferred.lock();
        while deferred.front().is_some_and(|(lsn, ..)| *lsn <= durable) {
            if let Some((_, fed, remote)) = deferred.pop_front() {
                self.feeds.publish(fed);
                self.send_remote(remote);
            }
        }
    }

    /// Logs, once, at error level, that the store refuses commits and what to do about it:
    /// clients are told with each refusal, the operator needs a line in the node's log.
    pub(super) fn note_store_error(&self, e: &interstice_store::StoreError) {
        if let Some(poisoned) = self.store().poisoned()
            && !self.poison_logged.swap(true, Ordering::Relaxed)
        {
            tracing::error!(
                "the node refuses every commit from now on: {poisoned}. Restart the node once the cause is fixed; it recovers every acknowledged commit from its log (first failure: {e})"
            );
        }
    }

    /// Hands a committed invocation's remote calls to the network, in commit order.
    fn send_remote(&self, calls: Vec<RemoteCall>) {
        if calls.is_empty() {
            return;
        }
        match &*self.outbound.read() {
            Some(tx) => {
                for call in calls {
                    if tx.send(call).is_err() {
                        tracing::warn!("the network is gone; a remote call was not sent");
                        break;
                    }
                }
            }
            None => tracing::warn!(
                calls = calls.len(),
                "remote calls committed on a node without a network; they are not sent"
            ),
        }
    }

    /// Writes `triggered` to `__node.triggers` in the record of the commit that emitted them.
    fn keep_triggers(&self, applied: &mut Applied, triggered: &mut [sched::Work<Task>], time: i64) {
        let mut tx = self.store().begin();
        for work in triggered.iter_mut() {
            let row = KeptTrigger {
                id: 0,
                module: work.task.module.to_string(),
                reducer: work.task.reducer.to_string(),
                args: work.task.args.clone(),
                time,
            };
            match system::insert(&mut tx, self.tables.triggers, row) {
                Ok(row) => work.task.set_kept(Some(row.id)),
                Err(e) => {
                    tracing::error!("cannot keep a subscription trigger: {e}");
                    break;
                }
            }
        }
        match tx.apply() {
            Ok(kept) => applied.absorb(kept),
            Err(e) => {
                tracing::error!("cannot keep subscription triggers: {e}");
                for work in triggered {
                    work.task.set_kept(None);
                }
            }
        }
    }

    /// Writes the changes of durable feeds to `__node.feed` in the record of their commit.
    fn keep_fed(&self, applied: &mut Applied, fed: &[Encoded]) {
        let mut tx = self.store().begin();
        let kept = self
            .feeds
            .persist(fed, &mut tx, self.tables)
            .and_then(|wrote| wrote.then(|| tx.apply().map_err(Into::into)).transpose());
        match kept {
            Ok(Some(kept)) => applied.absorb(kept),
            Ok(None) => {}
            // Subscribers still get the changes; one that reconnects after a restart may be
            // told it missed some.
            Err(e) => tracing::error!("cannot keep changes for remote subscribers: {e}"),
        }
    }

    /// For an invocation that failed, so committed nothing: logs the removal of what fired it
    /// (`timer`, the timer's removal, and the kept trigger), so that it does not fire again.
    fn forget_fired(
        &self,
        task: &Task,
        timer: Option<Applied>,
        meta: &dyn Fn(&Applied) -> CommitMeta,
    ) {
        let fired = match (timer, self.trigger_done(task)) {
            (Some(mut timer), Some(trigger)) => {
                timer.absorb(trigger);
                Some(timer)
            }
            (timer, trigger) => timer.or(trigger),
        };
        if let Some(fired) = fired
            && let Err(e) = {
                let meta = meta(&fired);
                self.store().log(fired, meta)
            }
        {
            tracing::error!("cannot log the removal of a failed timer or trigger: {e}");
        }
    }

    /// Forgets the kept trigger that `task` is, applied and to be logged with its outcome.
    fn trigger_done(&self, task: &Task) -> Option<Applied> {
        let id = task.kept()?;
        let mut tx = self.store().begin();
        let deleted = tx
            .delete(self.tables.triggers, &interstice_abi::Value::U64(id))
            .and_then(|_| tx.apply());
        deleted
            .map_err(|e| tracing::error!("cannot forget a subscription trigger that ran: {e}"))
            .ok()
    }

    /// The subscriptions a commit triggers, unless the current drive has run away.
    fn triggered(&self, changes: &[interstice_store::Change], time: i64) -> Vec<sched::Work<Task>> {
        let work = self.core.events(changes, time);
        let before = self.cascade.fetch_add(work.len(), Ordering::Relaxed);
        if before + work.len() > self.config.max_cascade {
            tracing::error!(
                "subscriptions triggered more than {} invocations from one call; dropping {} (a subscription that feeds itself?)",
                self.config.max_cascade,
                work.len()
            );
            return Vec::new();
        }
        work
    }

    /// Waits until `outcome`'s effects are durable: a call is reported committed only then.
    pub(super) fn wait_durable(&self, outcome: &Outcome) -> Result<(), NodeError> {
        if let (Some(_), Outcome::Committed { lsn, .. }) = (&self.config.data_dir, outcome) {
            self.store()
                .wait_durable(*lsn)
                .inspect_err(|e| self.note_store_error(e))?;
        }
        Ok(())
    }
}

/// The outcomes the driving caller waits for, a range of consecutive tickets: filed here, not
/// in the shared map, so that a batch's commits take no lock for them. A single call (the
/// common case) keeps its outcome inline, with no allocation.
struct Mine {
    first: u64,
    len: u64,
    one: Option<Outcome>,
    many: Vec<Option<Outcome>>,
}

impl Mine {
    fn new(tickets: std::ops::Range<u64>) -> Self {
        let len = tickets.end.saturating_sub(tickets.start);
        Mine {
            first: tickets.start,
            len,
            one: None,
            many: if len > 1 {
                tickets.map(|_| None).collect()
            } else {
                Vec::new()
            },
        }
    }

    fn slot(&mut self, ticket: u64) -> Option<&mut Option<Outcome>> {
        let i = ticket.checked_sub(self.first).filter(|&i| i < self.len)?;
        if self.len == 1 {
            Some(&mut self.one)
        } else {
            self.many.get_mut(usize::try_from(i).ok()?)
        }
    }

    /// Files `outcome` if `ticket` is one of ours; hands it back otherwise.
    fn file(&mut self, ticket: u64, outcome: Outcome) -> Option<Outcome> {
        match self.slot(ticket) {
            Some(slot) => {
                *slot = Some(outcome);
                None
            }
            None => Some(outcome),
        }
    }

    fn take(&mut self, ticket: u64) -> Option<Outcome> {
        self.slot(ticket)?.take()
    }

    /// Everything filed so far, by ticket.
    fn drain(&mut self) -> Vec<(u64, Outcome)> {
        (self.first..self.first + self.len)
            .filter_map(|t| Some((t, self.take(t)?)))
            .collect()
    }
}

/// The outcome of an awaited invocation that nobody filed: a bug, reported as a failure.
fn lost(ticket: u64) -> Outcome {
    Outcome::Failed {
        seq: 0,
        reason: CallFailure::Host(format!("the outcome of invocation {ticket} was not kept")),
    }
}

fn nanos_between(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_nanos()).unwrap_or(u64::MAX)
}

/// The record's meta: module, reducer and arguments, laid out as the ABI encodes a
/// `(String, String, Bytes)` (each a varint length, then the bytes), written straight from the
/// task instead of through cloned `Value`s.
fn invocation_meta(task: &Task) -> Vec<u8> {
    let parts = [task.module.as_bytes(), task.reducer.as_bytes(), &task.args];
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 10).sum());
    for part in parts {
        interstice_abi::encode_varint(part.len() as u64, &mut out);
        out.extend_from_slice(part);
    }
    out
}

/// The meta of a commit the node makes itself (install, remove, acknowledgements).
pub(super) fn system_meta(what: &str, module: &str) -> CommitMeta {
    CommitMeta {
        seq: 0,
        timestamp: 0,
        meta: format!("{what} {module}").into_bytes(),
    }
}
