//! Small loom models: the driving thread, which commits and also runs ready tasks itself, and
//! one pool thread (two in the `*_two_runners` models and `independent_tasks`, for races
//! between two runners), plus a lane's thread where a task is pinned, a handful of tasks each.
//! Runners claim ready tasks from the window's bitmap, spin not at all under loom, and sleep on
//! the window's event count, so the models also cover a runner going to sleep just as work is
//! released, and the driver sleeping on a slot just as it is posted.
//!
//! Each model asserts that commits arrive in sequence order, that every task runs exactly
//! once, and that the final tables equal a serial run; the tables are grids of loom
//! `UnsafeCell`s, one per (table, part), a whole-table access touching every cell of its
//! table, so two conflicting tasks overlapping, or a successor starting before its
//! predecessor's writes are visible, is reported by loom as a causality violation. A deadlock
//! fails the model too, which is how the models that make two tasks wait for each other show
//! that the scheduler lets them run at the same time.
#![cfg(loom)]

use interstice_scheduler::{
    AccessSet, Config, Executed, Ingress, Invocation, Part, ResourceId, Scheduler, Timestamp, Work,
};
use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};

const TABLES: usize = 3;
const PARTS: usize = 2;
const CELLS: usize = TABLES * PARTS;
const LANE: &str = "gpu";
const LANE_THREAD: &str = "interstice-lane-gpu";
/// The thread that owns and drives a driven lane.
const OWNER: &str = "owner";
const PANIC_MARKER: &str = "loom model task panics on purpose";

#[derive(Clone, Debug)]
struct Task {
    reads: &'static [u32],
    writes: &'static [u32],
    part_reads: &'static [(u32, u64)],
    part_writes: &'static [(u32, u64)],
    panics: bool,
    pinned: bool,
    /// Waits, inside execute, until every other `meets` task of the model has started.
    meets: bool,
}

const fn task(reads: &'static [u32], writes: &'static [u32]) -> Task {
    Task {
        reads,
        writes,
        part_reads: &[],
        part_writes: &[],
        panics: false,
        pinned: false,
        meets: false,
    }
}

const fn parts(part_reads: &'static [(u32, u64)], part_writes: &'static [(u32, u64)]) -> Task {
    Task {
        part_reads,
        part_writes,
        ..task(&[], &[])
    }
}

impl Task {
    fn access(&self) -> AccessSet {
        let mut access = AccessSet::from_tables(
            self.reads.iter().map(|&t| ResourceId(t)),
            self.writes.iter().map(|&t| ResourceId(t)),
        );
        for &(t, p) in self.part_reads {
            access = access.read_part(ResourceId(t), Part(p));
        }
        for &(t, p) in self.part_writes {
            access = access.write_part(ResourceId(t), Part(p));
        }
        access
    }

    /// The cells the task touches, ascending, and whether it writes them.
    fn cells(&self) -> Vec<(usize, bool)> {
        let mut cells = [None; CELLS];
        let mut touch = |cell: usize, write: bool| {
            let c: &mut Option<bool> = &mut cells[cell];
            *c = Some(c.unwrap_or(false) || write);
        };
        let whole = |&t: &u32| (0..PARTS).map(move |p| t as usize * PARTS + p);
        let part = |&(t, p): &(u32, u64)| t as usize * PARTS + p as usize;
        self.reads
            .iter()
            .flat_map(whole)
            .for_each(|c| touch(c, false));
        self.writes
            .iter()
            .flat_map(whole)
            .for_each(|c| touch(c, true));
        self.part_reads
            .iter()
            .map(part)
            .for_each(|c| touch(c, false));
        self.part_writes
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

struct Tables {
    cells: Vec<UnsafeCell<u64>>,
}

// SAFETY: every access goes through loom's `with`/`with_mut`, which is exactly what the models
// check: the scheduler must never let a write overlap another access to the same cell.
unsafe impl Sync for Tables {}

impl Tables {
    fn new() -> Self {
        Self {
            cells: (0..CELLS).map(|_| UnsafeCell::new(0)).collect(),
        }
    }
}

fn effect(seq: u64, seen: u64, cell: usize) -> u64 {
    seen.wrapping_mul(31) + seq * 7 + cell as u64 + 1
}

/// What a task does to the cells; returns the sum it read. Panicking tasks write nothing.
fn apply(
    task: &Task,
    seq: u64,
    read: impl Fn(usize) -> u64,
    mut write: impl FnMut(usize, u64),
) -> u64 {
    let cells = task.cells();
    let seen: u64 = cells.iter().map(|&(c, _)| read(c)).sum();
    if task.panics {
        std::panic::panic_any(format!("{PANIC_MARKER} ({seq})"));
    }
    for &(c, w) in &cells {
        if w {
            write(c, effect(seq, seen, c));
        }
    }
    seen
}

/// The serial expectation: final tables and per-task outcome. Tasks that panic, or that are
/// pinned to a lane whose driver is dropped (`lane_lost`), leave no trace.
fn serial(tasks: &[Task], lane_lost: bool) -> (Vec<u64>, Vec<Option<u64>>) {
    let mut tables = vec![0u64; CELLS];
    let mut outputs = Vec::new();
    for (seq, task) in tasks.iter().enumerate() {
        if task.panics || (task.pinned && lane_lost) {
            outputs.push(None);
            continue;
        }
        let snapshot = tables.clone();
        let seen = apply(
            task,
            seq as u64,
            |c| snapshot[c],
            |c, v| {
                tables[c] = v;
            },
        );
        outputs.push(Some(seen));
    }
    (tables, outputs)
}

fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
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

/// Where pinned tasks run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LaneMode {
    /// A lane thread the scheduler spawns.
    Thread,
    /// A driven lane, drained by an owner thread the model spawns.
    Driven,
    /// A driven lane whose owner drops the driver without running anything.
    DriverDropped,
}

/// Runs a model with the driver and one pool thread (plus a lane's thread where a task is
/// pinned): the driver claims work too, so claims still race.
fn check(tasks: &'static [Task]) {
    check_with(tasks, LaneMode::Thread, 2);
}

/// Runs a model with two pool threads beside the driver, for races between two runners.
fn check_two_runners(tasks: &'static [Task]) {
    check_with(tasks, LaneMode::Thread, 3);
}

fn check_with(tasks: &'static [Task], mode: LaneMode, workers: usize) {
    quiet_expected_panics();
    let lane_lost = mode == LaneMode::DriverDropped;
    let (expected_tables, expected_outputs) = serial(tasks, lane_lost);
    let with_lane = tasks.iter().any(|t| t.pinned);
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(move || {
        let tables = Arc::new(Tables::new());
        let runs: Arc<Vec<AtomicUsize>> =
            Arc::new((0..tasks.len()).map(|_| AtomicUsize::new(0)).collect());
        let meeting = tasks.iter().filter(|t| t.meets).count();
        let arrived = Arc::new((Mutex::new(0usize), Condvar::new()));
        let exec_arrived = arrived.clone();
        let driven = with_lane && mode != LaneMode::Thread;
        let mut config = Config::new().workers(workers);
        if with_lane && !driven {
            config = config.lane(LANE);
        }
        let lane_thread = if driven { OWNER } else { LANE_THREAD };
        let (exec_tables, exec_runs) = (tables.clone(), runs.clone());
        let mut scheduler = Scheduler::new(config, move |inv: &Invocation<Task>| {
            let seq = inv.seq().0;
            exec_runs[seq as usize].fetch_add(1, Ordering::Relaxed);
            let on_lane = loom::thread::current().name() == Some(lane_thread);
            assert_eq!(
                on_lane,
                inv.task().pinned,
                "task {seq} ran on the wrong thread"
            );
            if inv.task().meets {
                // Only returns once the other meeting tasks have started: if the scheduler
                // ordered them, this never returns and loom reports a deadlock.
                let (count, all_in) = &*exec_arrived;
                let mut count = count.lock().expect("rendezvous lock");
                *count += 1;
                all_in.notify_all();
                while *count < meeting {
                    count = all_in.wait(count).expect("rendezvous lock");
                }
            }
            let cells = &exec_tables.cells;
            apply(
                inv.task(),
                seq,
                // SAFETY: reads and writes of a cell go through loom, which reports any
                // access that is not ordered after a conflicting one.
                |c| cells[c].with(|p| unsafe { *p }),
                |c, v| cells[c].with_mut(|p| unsafe { *p = v }),
            )
        })
        .expect("scheduler starts");
        let (lane, owner) = if !with_lane {
            (None, None)
        } else if driven {
            let (lane, driver) = scheduler.add_driven_lane(LANE).expect("lane added");
            let owner = loom::thread::Builder::new()
                .name(OWNER.to_owned())
                .spawn(move || {
                    if mode == LaneMode::DriverDropped {
                        drop(driver);
                        return;
                    }
                    // Runs the lane until the scheduler is dropped, which closes it.
                    while driver.wait(None) {
                        driver.run_pending();
                    }
                })
                .expect("owner thread");
            (Some(lane), Some(owner))
        } else {
            (Some(scheduler.lane(LANE).expect("lane declared")), None)
        };

        let mut ingress = Ingress::new();
        for task in tasks {
            let work = Work::new(task.clone(), task.access(), Timestamp(0));
            ingress.push(match (task.pinned, lane) {
                (true, Some(lane)) => work.on_lane(lane),
                _ => work,
            });
        }
        let mut commits = Vec::new();
        scheduler
            .run_until_idle(&mut ingress, |inv, outcome| {
                let output = match outcome {
                    Executed::Completed(seen) => Some(seen),
                    Executed::Panicked { message } => {
                        let lost = lane_lost && inv.task().pinned;
                        if lost {
                            assert!(message.contains("has no driver"), "{message}");
                        } else {
                            assert!(message.starts_with(PANIC_MARKER), "{message}");
                        }
                        None
                    }
                };
                commits.push((inv.seq().0, output));
                Vec::new()
            })
            .expect("lanes are valid");
        drop(scheduler);
        if let Some(owner) = owner {
            owner.join().expect("owner thread");
        }

        let seqs: Vec<u64> = commits.iter().map(|c| c.0).collect();
        assert_eq!(
            seqs,
            (0..tasks.len() as u64).collect::<Vec<_>>(),
            "commit order"
        );
        let outputs: Vec<_> = commits.iter().map(|c| c.1).collect();
        assert_eq!(outputs, expected_outputs);
        for (i, runs) in runs.iter().enumerate() {
            let expected = usize::from(!(lane_lost && tasks[i].pinned));
            assert_eq!(runs.load(Ordering::Relaxed), expected, "task {i} run count");
        }
        let finals: Vec<u64> = tables
            .cells
            .iter()
            .map(|c| c.with(|p| unsafe { *p }))
            .collect();
        assert_eq!(finals, expected_tables);
    });
}

#[test]
fn chain() {
    static TASKS: [Task; 3] = [task(&[], &[0]), task(&[0], &[0]), task(&[], &[0])];
    check(&TASKS);
}

#[test]
fn fork() {
    static TASKS: [Task; 3] = [task(&[], &[0]), task(&[0], &[1]), task(&[0], &[2])];
    check(&TASKS);
}

#[test]
fn diamond() {
    static TASKS: [Task; 4] = [
        task(&[], &[0]),
        task(&[0], &[1]),
        task(&[0], &[2]),
        task(&[1, 2], &[0]),
    ];
    check(&TASKS);
}

#[test]
fn readers_around_a_writer() {
    static TASKS: [Task; 4] = [
        task(&[0], &[1]),
        task(&[0], &[2]),
        task(&[], &[0]),
        task(&[0], &[]),
    ];
    check(&TASKS);
}

#[test]
fn independent_tasks() {
    static TASKS: [Task; 3] = [task(&[], &[0]), task(&[], &[1]), task(&[], &[2])];
    check_two_runners(&TASKS);
}

#[test]
fn pinned_task() {
    static TASKS: [Task; 3] = [
        task(&[], &[0]),
        Task {
            pinned: true,
            ..task(&[0], &[1])
        },
        task(&[1], &[0]),
    ];
    check(&TASKS);
}

#[test]
fn failing_task_releases_its_successor() {
    static TASKS: [Task; 3] = [
        Task {
            panics: true,
            ..task(&[], &[0])
        },
        task(&[0], &[1]),
        task(&[], &[2]),
    ];
    check(&TASKS);
}

/// Two tasks writing different parts of one table (and reading the same part of another) are
/// not ordered: each waits inside execute for the other to start, which only ends if they run
/// at the same time.
#[test]
fn different_parts_of_one_table_run_together() {
    static TASKS: [Task; 2] = [
        Task {
            meets: true,
            ..parts(&[(2, 1)], &[(0, 0)])
        },
        Task {
            meets: true,
            ..parts(&[(2, 1)], &[(0, 1)])
        },
    ];
    check(&TASKS);
}

/// A whole-table read between two part writes of that table never overlaps either; the part
/// writers themselves are free to.
#[test]
fn whole_table_and_part_never_overlap() {
    static TASKS: [Task; 3] = [
        parts(&[], &[(0, 0)]),
        task(&[0], &[1]),
        parts(&[(1, 0)], &[(0, 1)]),
    ];
    check(&TASKS);
}

/// A lane driven by an owner thread: pool work before and after the lane's task, which runs on
/// the owner, in its place.
#[test]
fn driven_lane() {
    static TASKS: [Task; 3] = [
        task(&[], &[0]),
        Task {
            pinned: true,
            ..task(&[0], &[1])
        },
        task(&[1], &[0]),
    ];
    check_with(&TASKS, LaneMode::Driven, 2);
}

/// The owner drains the lane while the pool runs independent work beside it, and a task that
/// waits for both.
#[test]
fn driven_lane_beside_the_pool() {
    static TASKS: [Task; 3] = [
        Task {
            pinned: true,
            ..task(&[], &[0])
        },
        task(&[], &[1]),
        task(&[0, 1], &[2]),
    ];
    check_with(&TASKS, LaneMode::Driven, 2);
}

/// The owner drops its driver, maybe before the lane's task is queued, maybe after: the task
/// never runs, commits as not run, and its successor still runs.
#[test]
fn dropped_driver() {
    static TASKS: [Task; 3] = [
        Task {
            pinned: true,
            ..task(&[], &[0])
        },
        task(&[0], &[1]),
        task(&[], &[2]),
    ];
    check_with(&TASKS, LaneMode::DriverDropped, 2);
}

#[test]
fn fork_two_runners() {
    static TASKS: [Task; 3] = [task(&[], &[0]), task(&[0], &[1]), task(&[0], &[2])];
    check_two_runners(&TASKS);
}

#[test]
fn different_parts_two_runners() {
    static TASKS: [Task; 3] = [
        parts(&[], &[(0, 0)]),
        parts(&[], &[(0, 1)]),
        task(&[0], &[]),
    ];
    check_two_runners(&TASKS);
}
