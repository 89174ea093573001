//! Small loom models: two pool threads plus the driving thread, which commits and also runs
//! ready tasks itself (plus a lane where a task is pinned), a handful of tasks each. The pool
//! threads run tasks through runner jobs that start and stop as the ready queue fills and
//! empties, so the models also cover a runner exiting just as new work is released.
//!
//! Each model asserts that commits arrive in sequence order, that every task runs exactly
//! once, and that the final tables equal a serial run; the tables are loom `UnsafeCell`s, so
//! two conflicting tasks overlapping, or a successor starting before its predecessor's writes
//! are visible, is reported by loom as a causality violation. A deadlock fails the model too.
#![cfg(loom)]

use interstice_scheduler::{
    Access, Config, Ingress, Invocation, Outcome, Scheduler, TableId, Timestamp, Work,
};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};

const TABLES: usize = 3;
const LANE: &str = "gpu";
const PANIC_MARKER: &str = "loom model task panics on purpose";

#[derive(Clone, Debug)]
struct Task {
    reads: &'static [u32],
    writes: &'static [u32],
    panics: bool,
    pinned: bool,
}

const fn task(reads: &'static [u32], writes: &'static [u32]) -> Task {
    Task {
        reads,
        writes,
        panics: false,
        pinned: false,
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
            cells: (0..TABLES).map(|_| UnsafeCell::new(0)).collect(),
        }
    }
}

fn effect(seq: u64, seen: u64, table: u32) -> u64 {
    seen.wrapping_mul(31) + seq * 7 + u64::from(table) + 1
}

/// What a task does to the tables; returns the sum it read. Panicking tasks write nothing.
fn apply(task: &Task, seq: u64, read: impl Fn(u32) -> u64, mut write: impl FnMut(u32, u64)) -> u64 {
    let seen: u64 = task.reads.iter().chain(task.writes).map(|&t| read(t)).sum();
    if task.panics {
        std::panic::panic_any(format!("{PANIC_MARKER} ({seq})"));
    }
    for &t in task.writes {
        write(t, effect(seq, seen, t));
    }
    seen
}

/// The serial expectation: final tables and per-task outcome.
fn serial(tasks: &[Task]) -> (Vec<u64>, Vec<Option<u64>>) {
    let mut tables = vec![0u64; TABLES];
    let mut outputs = Vec::new();
    for (seq, task) in tasks.iter().enumerate() {
        if task.panics {
            outputs.push(None);
            continue;
        }
        let snapshot = tables.clone();
        let seen = apply(
            task,
            seq as u64,
            |t| snapshot[t as usize],
            |t, v| {
                tables[t as usize] = v;
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

fn check(tasks: &'static [Task]) {
    quiet_expected_panics();
    let (expected_tables, expected_outputs) = serial(tasks);
    let with_lane = tasks.iter().any(|t| t.pinned);
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(move || {
        let tables = Arc::new(Tables::new());
        let runs: Arc<Vec<AtomicUsize>> =
            Arc::new((0..tasks.len()).map(|_| AtomicUsize::new(0)).collect());
        let mut config = Config::new().workers(3);
        if with_lane {
            config = config.lane(LANE);
        }
        let (exec_tables, exec_runs) = (tables.clone(), runs.clone());
        let mut scheduler = Scheduler::new(config, move |inv: &Invocation<Task>| {
            let seq = inv.seq().0;
            exec_runs[seq as usize].fetch_add(1, Ordering::Relaxed);
            let on_lane = loom::thread::current().name() == Some("interstice-lane-gpu");
            assert_eq!(
                on_lane,
                inv.task().pinned,
                "task {seq} ran on the wrong thread"
            );
            let cells = &exec_tables.cells;
            apply(
                inv.task(),
                seq,
                // SAFETY: reads and writes of a cell go through loom, which reports any
                // access that is not ordered after a conflicting one.
                |t| cells[t as usize].with(|p| unsafe { *p }),
                |t, v| cells[t as usize].with_mut(|p| unsafe { *p = v }),
            )
        })
        .expect("scheduler starts");
        let lane = with_lane.then(|| scheduler.lane(LANE).expect("lane declared"));

        let mut ingress = Ingress::new();
        for task in tasks {
            let access = Access::from_tables(
                task.reads.iter().map(|&t| TableId(t)),
                task.writes.iter().map(|&t| TableId(t)),
            );
            let work = Work::new(task.clone(), access, Timestamp(0));
            ingress.push(match (task.pinned, lane) {
                (true, Some(lane)) => work.on_lane(lane),
                _ => work,
            });
        }
        let mut commits = Vec::new();
        scheduler
            .run_until_idle(&mut ingress, |inv, outcome| {
                let output = match outcome {
                    Outcome::Completed(seen) => Some(seen),
                    Outcome::Panicked { message } => {
                        assert!(message.starts_with(PANIC_MARKER), "{message}");
                        None
                    }
                };
                commits.push((inv.seq().0, output));
                Vec::new()
            })
            .expect("lanes are valid");
        drop(scheduler);

        let seqs: Vec<u64> = commits.iter().map(|c| c.0).collect();
        assert_eq!(
            seqs,
            (0..tasks.len() as u64).collect::<Vec<_>>(),
            "commit order"
        );
        let outputs: Vec<_> = commits.iter().map(|c| c.1).collect();
        assert_eq!(outputs, expected_outputs);
        for (i, runs) in runs.iter().enumerate() {
            assert_eq!(runs.load(Ordering::Relaxed), 1, "task {i} run count");
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
    check(&TASKS);
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
