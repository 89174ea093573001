//! A model store and workload shared by the executor tests: tasks read some tables or parts of
//! tables, write a deterministic function of what they read and of their sequence number,
//! fail, panic, or emit more work; and a plain serial loop that is the oracle.
//!
//! The store is a grid of cells, `PARTS` per table: a whole-table access touches every cell of
//! the table, a part access one cell, so two conflicting tasks that overlap meet on a cell.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Once};

use interstice_scheduler::{
    AccessSet, Config, Executed, Ingress, Invocation, LaneId, Part, ResourceId, Scheduler, Seq,
    Timestamp, Work,
};

pub const TABLES: usize = 4;
pub const PARTS: usize = 3;
const CELLS: usize = TABLES * PARTS;
pub const LANE: &str = "gpu";
pub const LANE_THREAD: &str = "interstice-lane-gpu";
/// Panics carrying this marker are expected and kept off stderr.
pub const PANIC_MARKER: &str = "model task panicked on purpose";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Ok,
    Fail,
    Panic,
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub reads: Vec<u32>,
    pub writes: Vec<u32>,
    /// (table, part) pairs.
    pub part_reads: Vec<(u32, u64)>,
    pub part_writes: Vec<(u32, u64)>,
    pub exclusive: bool,
    pub behaviour: Behaviour,
    /// How many tasks the commit emits (only when it succeeded).
    pub emit: u8,
    pub depth: u8,
    pub pinned: bool,
}

impl Spec {
    pub fn access(&self) -> AccessSet {
        if self.exclusive {
            return AccessSet::exclusive();
        }
        let mut access = AccessSet::from_tables(
            self.reads.iter().map(|&t| ResourceId(t)),
            self.writes.iter().map(|&t| ResourceId(t)),
        );
        for &(t, p) in &self.part_reads {
            access = access.read_part(ResourceId(t), Part(p));
        }
        for &(t, p) in &self.part_writes {
            access = access.write_part(ResourceId(t), Part(p));
        }
        access
    }

    pub fn work(self, time: Timestamp, lane: Option<LaneId>) -> Work<Spec> {
        let access = self.access();
        let work = Work::new(self.clone(), access, time);
        match (self.pinned, lane) {
            (true, Some(lane)) => work.on_lane(lane),
            _ => work,
        }
    }

    /// The cells this task may touch, ascending, and whether it writes them.
    fn touched(&self) -> Vec<(usize, bool)> {
        let mut cells = [None; CELLS];
        let mut touch = |cell: usize, writes: bool| {
            let c: &mut Option<bool> = &mut cells[cell];
            *c = Some(c.unwrap_or(false) || writes);
        };
        if self.exclusive {
            (0..CELLS).for_each(|c| touch(c, true));
        }
        let access = self.access();
        let whole = |&t: &ResourceId| (0..PARTS).map(move |p| t.index() * PARTS + p);
        let part = |&(t, p): &(ResourceId, Part)| t.index() * PARTS + p.0 as usize;
        access
            .reads()
            .iter()
            .flat_map(whole)
            .for_each(|c| touch(c, false));
        access
            .writes()
            .iter()
            .flat_map(whole)
            .for_each(|c| touch(c, true));
        access
            .part_reads()
            .iter()
            .map(part)
            .for_each(|c| touch(c, false));
        access
            .part_writes()
            .iter()
            .map(part)
            .for_each(|c| touch(c, true));
        cells
            .iter()
            .enumerate()
            .filter_map(|(c, w)| w.map(|w| (c, w)))
            .collect()
    }
}

fn mix(mut x: u64) -> u64 {
    // splitmix64 finaliser: cheap, and every input bit reaches every output bit.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// What the model store records: values, and guards that detect overlapping conflicting tasks.
#[derive(Debug, Default)]
pub struct Store {
    values: [AtomicU64; CELLS],
    /// Per cell: number of readers inside, or -1 for a writer inside.
    guards: [AtomicI64; CELLS],
    pub overlaps: AtomicUsize,
    pub misplaced: AtomicUsize,
    pub runs: AtomicUsize,
}

pub type Output = Result<u64, String>;

impl Store {
    pub fn values(&self) -> Vec<u64> {
        self.values
            .iter()
            .map(|v| v.load(Ordering::Relaxed))
            .collect()
    }

    /// Runs one task on the model: the reducer of these tests.
    pub fn execute(&self, seq: Seq, time: Timestamp, spec: &Spec) -> Output {
        self.runs.fetch_add(1, Ordering::Relaxed);
        let touched = spec.touched();
        for &(t, writes) in &touched {
            let clash = if writes {
                self.guards[t]
                    .compare_exchange(0, -1, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
            } else {
                self.guards[t].fetch_add(1, Ordering::AcqRel) < 0
            };
            if clash {
                self.overlaps.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut h = mix(seq.0 ^ (time.0 << 32));
        for &(t, _) in &touched {
            h = mix(h ^ self.values[t].load(Ordering::Relaxed));
        }
        // Give a conflicting task that was wrongly let in a chance to show up.
        for _ in 0..64 {
            std::hint::spin_loop();
        }
        let result = match spec.behaviour {
            Behaviour::Ok => {
                for &(t, writes) in &touched {
                    if writes {
                        self.values[t].store(mix(h ^ t as u64), Ordering::Relaxed);
                    }
                }
                Ok(h)
            }
            Behaviour::Fail => Err(format!("task {seq} failed")),
            Behaviour::Panic => Err(String::new()),
        };
        for &(t, writes) in &touched {
            if writes {
                self.guards[t].store(0, Ordering::Release);
            } else {
                self.guards[t].fetch_sub(1, Ordering::AcqRel);
            }
        }
        if spec.behaviour == Behaviour::Panic {
            std::panic::panic_any(format!("{PANIC_MARKER}: {seq}"));
        }
        result
    }
}

/// One line of the commit log.
pub type LogEntry = (u64, u64, Result<u64, String>);

/// The commit step shared by the scheduler runs and the oracle: log, then emit derived work.
pub fn commit(
    log: &mut Vec<LogEntry>,
    seq: Seq,
    time: Timestamp,
    spec: &Spec,
    outcome: Result<Output, String>,
    lane: Option<LaneId>,
) -> Vec<Work<Spec>> {
    let flat = match outcome {
        Ok(output) => output,
        Err(panic) => Err(format!("panic: {panic}")),
    };
    let succeeded = flat.is_ok();
    log.push((seq.0, time.0, flat));
    if !succeeded || spec.depth >= 2 {
        return Vec::new();
    }
    (0..u64::from(spec.emit))
        .map(|k| {
            let h = mix(seq.0 * 31 + k);
            let table = |x: u64| (x % TABLES as u64) as u32;
            let part = |x: u64| (table(x), (x >> 4) % PARTS as u64);
            let child = Spec {
                reads: vec![table(h)],
                writes: if h & 0x10 == 0 {
                    vec![table(h >> 8)]
                } else {
                    Vec::new()
                },
                part_reads: vec![part(h >> 24)],
                part_writes: if h & 0x20 == 0 {
                    vec![part(h >> 32)]
                } else {
                    Vec::new()
                },
                exclusive: false,
                behaviour: if h.is_multiple_of(7) {
                    Behaviour::Fail
                } else {
                    Behaviour::Ok
                },
                emit: (h >> 20) as u8 % 2,
                depth: spec.depth + 1,
                pinned: h & 0x100 != 0,
            };
            child.work(Timestamp(time.0 + 1 + k), lane)
        })
        .collect()
}

/// Everything a run produces that must not depend on the number of workers.
#[derive(Debug, PartialEq, Eq)]
pub struct Run {
    pub log: Vec<LogEntry>,
    pub values: Vec<u64>,
}

pub fn quiet_expected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let expected = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|m| m.starts_with(PANIC_MARKER));
            if !expected {
                default(info);
            }
        }));
    });
}

/// Runs `workload` on a scheduler with `workers` workers and a "gpu" lane.
pub fn run_scheduler(workload: &[Spec], workers: usize, max_window: usize) -> Run {
    run_scheduler_with(workload, workers, max_window, true)
}

/// [`run_scheduler`], choosing whether windows without parallelism run inline.
pub fn run_scheduler_with(
    workload: &[Spec],
    workers: usize,
    max_window: usize,
    inline: bool,
) -> Run {
    run_scheduler_on(workload, workers, max_window, inline, LaneKind::Thread)
}

/// How the "gpu" lane of a model run gets its thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LaneKind {
    /// A thread the scheduler spawns ([`Config::lane`]).
    Thread,
    /// The test's own thread, through a `LaneDriver`, while the windows run on another.
    Driven,
}

/// [`run_scheduler_with`], with the lane of `kind`.
pub fn run_scheduler_on(
    workload: &[Spec],
    workers: usize,
    max_window: usize,
    inline: bool,
    kind: LaneKind,
) -> Run {
    quiet_expected_panics();
    let store = Arc::new(Store::default());
    let exec_store = store.clone();
    let owner = std::thread::current().id();
    let mut config = Config::new()
        .workers(workers)
        .max_window(max_window)
        .inline_serial_windows(inline);
    if kind == LaneKind::Thread {
        config = config.lane(LANE);
    }
    let mut scheduler = Scheduler::new(config, move |inv: &Invocation<Spec>| {
        let on_lane = match kind {
            LaneKind::Thread => std::thread::current().name() == Some(LANE_THREAD),
            LaneKind::Driven => std::thread::current().id() == owner,
        };
        if on_lane != inv.lane().is_some() {
            exec_store.misplaced.fetch_add(1, Ordering::Relaxed);
        }
        exec_store.execute(inv.seq(), inv.time(), inv.task())
    })
    .expect("scheduler starts");
    let (lane, driver) = match kind {
        LaneKind::Thread => (scheduler.lane(LANE).expect("lane declared"), None),
        LaneKind::Driven => {
            let (lane, driver) = scheduler.add_driven_lane(LANE).expect("lane added");
            (lane, Some(driver))
        }
    };
    let mut ingress = Ingress::new();
    for (i, spec) in workload.iter().enumerate() {
        ingress.push(spec.clone().work(Timestamp(i as u64 * 10), Some(lane)));
    }
    let run = move || {
        let mut log = Vec::new();
        scheduler
            .run_until_idle(&mut ingress, |inv, outcome: Executed<Output>| {
                commit(
                    &mut log,
                    inv.seq(),
                    inv.time(),
                    inv.task(),
                    outcome.into_result(),
                    Some(lane),
                )
            })
            .expect("run");
        // Dropping the scheduler closes a driven lane, which ends its driver's loop.
        drop(scheduler);
        log
    };
    let log = match driver {
        None => run(),
        Some(driver) => std::thread::scope(|s| {
            let windows = s.spawn(run);
            while driver.wait(None) {
                driver.run_pending();
            }
            windows.join().expect("window thread")
        }),
    };
    assert_eq!(
        store.overlaps.load(Ordering::Relaxed),
        0,
        "conflicting tasks overlapped"
    );
    assert_eq!(
        store.misplaced.load(Ordering::Relaxed),
        0,
        "a task ran on the wrong thread"
    );
    assert_eq!(
        store.runs.load(Ordering::Relaxed),
        log.len(),
        "a task ran twice or never"
    );
    Run {
        log,
        values: store.values(),
    }
}

/// The oracle: a plain loop, one task at a time, no scheduler.
pub fn run_serial_loop(workload: &[Spec]) -> Run {
    quiet_expected_panics();
    let store = Store::default();
    let mut queue: VecDeque<(Seq, Timestamp, Spec)> = VecDeque::new();
    let mut next = 0;
    for (i, spec) in workload.iter().enumerate() {
        queue.push_back((Seq(next), Timestamp(i as u64 * 10), spec.clone()));
        next += 1;
    }
    let mut log = Vec::new();
    while let Some((seq, time, spec)) = queue.pop_front() {
        let outcome =
            catch_unwind(AssertUnwindSafe(|| store.execute(seq, time, &spec))).map_err(|payload| {
                payload
                    .downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_default()
            });
        for work in commit(&mut log, seq, time, &spec, outcome, None) {
            queue.push_back((Seq(next), work.time, work.task));
            next += 1;
        }
    }
    Run {
        log,
        values: store.values(),
    }
}
