//! Scheduling behaviour, checked on every executor configuration with the same expectation
//! (bevy's habit): one worker is the serial reference, the others must agree with it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use interstice_scheduler::{
    AccessSet, Config, Error, Executed, Ingress, Invocation, ResourceId, Scheduler, Seq, Timestamp,
    Work,
};

use crate::model::{
    Behaviour, LANE, LANE_THREAD, PANIC_MARKER, Spec, quiet_expected_panics, run_scheduler,
    run_serial_loop,
};

/// Worker counts every scheduling test runs on; 1 is the serial reference.
pub const EXECUTORS: [usize; 4] = [1, 2, 4, 8];

/// Runs `test` on every executor and checks they all give the same answer.
fn on_every_executor<R: PartialEq + std::fmt::Debug>(test: impl Fn(usize) -> R) -> R {
    let reference = test(1);
    for workers in &EXECUTORS[1..] {
        assert_eq!(
            test(*workers),
            reference,
            "workers = {workers} disagrees with serial"
        );
    }
    reference
}

fn spec(reads: &[u32], writes: &[u32]) -> Spec {
    Spec {
        reads: reads.to_vec(),
        writes: writes.to_vec(),
        part_reads: Vec::new(),
        part_writes: Vec::new(),
        exclusive: false,
        behaviour: Behaviour::Ok,
        emit: 0,
        depth: 2,
        pinned: false,
    }
}

fn check_shape(workload: &[Spec]) {
    let oracle = run_serial_loop(workload);
    let run = on_every_executor(|workers| run_scheduler(workload, workers, 1024));
    assert_eq!(run, oracle);
    let seqs: Vec<u64> = run.log.iter().map(|e| e.0).collect();
    assert_eq!(seqs, (0..workload.len() as u64).collect::<Vec<_>>());
}

#[test]
fn chain() {
    check_shape(&[spec(&[], &[0]), spec(&[], &[0]), spec(&[0], &[0])]);
}

#[test]
fn fork_and_join() {
    check_shape(&[
        spec(&[], &[0, 1]),
        spec(&[0], &[2]),
        spec(&[1], &[3]),
        spec(&[2, 3], &[0]),
    ]);
}

#[test]
fn readers_around_a_writer() {
    check_shape(&[
        spec(&[0], &[]),
        spec(&[0], &[1]),
        spec(&[], &[0]),
        spec(&[0], &[2]),
        spec(&[0], &[3]),
    ]);
}

#[test]
fn exclusive_task_in_the_middle() {
    let mut exclusive = spec(&[], &[]);
    exclusive.exclusive = true;
    check_shape(&[
        spec(&[], &[0]),
        spec(&[], &[1]),
        exclusive,
        spec(&[0], &[2]),
        spec(&[1], &[3]),
    ]);
}

#[test]
fn many_independent_tasks() {
    let workload: Vec<_> = (0..64).map(|i| spec(&[], &[i % 4])).collect();
    check_shape(&workload);
}

#[test]
fn a_panic_is_isolated_and_reported_in_order() {
    quiet_expected_panics();
    let mut panicking = spec(&[], &[0]);
    panicking.behaviour = Behaviour::Panic;
    let mut failing = spec(&[0], &[1]);
    failing.behaviour = Behaviour::Fail;
    let workload = [
        spec(&[], &[0]),
        panicking,
        spec(&[0], &[2]),
        failing,
        spec(&[1], &[0]),
    ];
    let run = on_every_executor(|workers| run_scheduler(&workload, workers, 1024));
    assert_eq!(run, run_serial_loop(&workload));
    let outcomes: Vec<_> = run.log.iter().map(|e| e.2.clone()).collect();
    assert!(outcomes[0].is_ok());
    assert_eq!(
        outcomes[1],
        Err(format!("panic: {PANIC_MARKER}: #1")),
        "the panic message reaches commit"
    );
    assert!(
        outcomes[2].is_ok(),
        "the panicking task's successor still ran"
    );
    assert_eq!(outcomes[3], Err("task #3 failed".to_owned()));
    assert!(outcomes[4].is_ok());
}

/// Emitted work gets the next sequence numbers in commit order, after what was already queued.
#[test]
fn emitted_work_is_sequenced_after_the_window_in_commit_order() {
    let log = on_every_executor(|workers| {
        let mut scheduler = Scheduler::new(
            Config::new().workers(workers).max_window(3),
            |inv: &Invocation<&'static str>| inv.task().to_string(),
        )
        .unwrap();
        let mut ingress = Ingress::new();
        for name in ["a", "b", "c", "d"] {
            ingress.push(Work::new(name, AccessSet::new(), Timestamp(1)));
        }
        let mut log = Vec::new();
        scheduler
            .run_until_idle(&mut ingress, |inv, outcome| {
                log.push((inv.seq().0, inv.time().0, outcome.into_result().unwrap()));
                let children: &[&'static str] = match *inv.task() {
                    "a" => &["a1", "a2"],
                    "c" => &["c1"],
                    "a1" => &["a1x"],
                    _ => &[],
                };
                children
                    .iter()
                    .map(|&c| Work::new(c, AccessSet::new(), Timestamp(inv.time().0 + 1)))
                    .collect::<Vec<_>>()
            })
            .unwrap();
        log
    });
    let expected: Vec<(u64, u64, String)> = [
        (0, 1, "a"),
        (1, 1, "b"),
        (2, 1, "c"),
        (3, 1, "d"),
        (4, 2, "a1"),
        (5, 2, "a2"),
        (6, 2, "c1"),
        (7, 3, "a1x"),
    ]
    .into_iter()
    .map(|(s, t, n)| (s, t, n.to_owned()))
    .collect();
    assert_eq!(log, expected);
}

#[test]
fn pinned_tasks_run_on_their_lane_and_keep_their_place() {
    let log = on_every_executor(|workers| {
        let mut scheduler = Scheduler::new(
            Config::new().workers(workers).lane("audio").lane(LANE),
            |_: &Invocation<u32>| std::thread::current().name().map(str::to_owned),
        )
        .unwrap();
        let gpu = scheduler.lane(LANE).unwrap();
        let audio = scheduler.lane("audio").unwrap();
        let mut ingress = Ingress::new();
        let table = |t| AccessSet::new().write(ResourceId(t));
        ingress.push(Work::new(0, table(0), Timestamp(0)).on_lane(gpu));
        ingress.push(Work::new(1, table(0), Timestamp(0)));
        ingress.push(Work::new(2, table(1), Timestamp(0)).on_lane(audio));
        ingress.push(Work::new(3, table(1), Timestamp(0)).on_lane(gpu));
        ingress.push(Work::new(4, table(2), Timestamp(0)));
        let mut log = Vec::new();
        scheduler
            .run_until_idle(&mut ingress, |inv, outcome| {
                let thread = outcome.into_result().unwrap();
                let on = match thread.as_deref() {
                    Some(LANE_THREAD) => "gpu",
                    Some("interstice-lane-audio") => "audio",
                    _ => "pool",
                };
                log.push((inv.seq().0, *inv.task(), on));
                Vec::new()
            })
            .unwrap();
        log
    });
    assert_eq!(
        log,
        [
            (0, 0, "gpu"),
            (1, 1, "pool"),
            (2, 2, "audio"),
            (3, 3, "gpu"),
            (4, 4, "pool")
        ]
    );
}

/// The execute function may write shared state without its own locking: conflicting tasks are
/// ordered, so a plain counter under a `Mutex` that is only ever uncontended stays exact.
#[test]
fn successors_observe_their_predecessors_writes() {
    let total = on_every_executor(|workers| {
        let counter = Arc::new(Mutex::new(Vec::new()));
        let seen = counter.clone();
        let mut scheduler = Scheduler::new(
            Config::new().workers(workers),
            move |inv: &Invocation<()>| {
                let mut v = seen.try_lock().expect("conflicting tasks never overlap");
                v.push(inv.seq().0);
                v.len()
            },
        )
        .unwrap();
        let mut ingress = Ingress::new();
        for _ in 0..200 {
            ingress.push(Work::new(
                (),
                AccessSet::new().write(ResourceId(7)),
                Timestamp(0),
            ));
        }
        let mut outputs = Vec::new();
        scheduler
            .run_until_idle(&mut ingress, |_, outcome| {
                outputs.push(outcome.into_result().unwrap());
                Vec::new()
            })
            .unwrap();
        let order = counter.lock().unwrap().clone();
        assert_eq!(order, (0..200).collect::<Vec<_>>());
        outputs
    });
    assert_eq!(total, (1..=200).collect::<Vec<_>>());
}

#[test]
fn every_task_runs_exactly_once_with_a_single_table_hotspot() {
    on_every_executor(|workers| {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let mut scheduler = Scheduler::new(
            Config::new().workers(workers).max_window(17),
            move |inv: &Invocation<u32>| {
                counted.fetch_add(1, Ordering::Relaxed);
                inv.seq()
            },
        )
        .unwrap();
        let mut ingress = Ingress::new();
        for i in 0..100u32 {
            let access = if i % 3 == 0 {
                AccessSet::new().write(ResourceId(0))
            } else {
                AccessSet::new().read(ResourceId(0))
            };
            ingress.push(Work::new(i, access, Timestamp(0)));
        }
        let mut seqs = Vec::new();
        let committed = scheduler
            .run_until_idle(&mut ingress, |inv, outcome| {
                assert_eq!(outcome, Executed::Completed(inv.seq()));
                seqs.push(inv.seq());
                Vec::new()
            })
            .unwrap();
        assert_eq!(committed, 100);
        assert_eq!(runs.load(Ordering::Relaxed), 100);
        assert_eq!(seqs, (0..100).map(Seq).collect::<Vec<_>>());
    });
}

#[test]
fn unknown_lane_name_is_a_typed_error() {
    let scheduler = Scheduler::new(
        Config::new().workers(2).lane("gpu"),
        |_: &Invocation<()>| {},
    )
    .unwrap();
    let err = scheduler.lane("audio").unwrap_err();
    assert!(matches!(&err, Error::UnknownLane { name } if name == "audio"));
    assert!(
        err.to_string().contains("Scheduler::add_lane(\"audio\")"),
        "{err}"
    );
}

#[test]
fn a_lane_id_from_another_scheduler_is_refused_without_losing_work() {
    for workers in EXECUTORS {
        let other = Scheduler::new(
            Config::new().workers(1).lane("a").lane("b"),
            |_: &Invocation<()>| (),
        )
        .unwrap();
        let foreign = other.lane("b").unwrap();
        let mut scheduler = Scheduler::new(
            Config::new().workers(workers).lane("a"),
            |_: &Invocation<()>| (),
        )
        .unwrap();
        let mut ingress = Ingress::new();
        ingress.push(Work::new((), AccessSet::new(), Timestamp(0)));
        ingress.push(Work::new((), AccessSet::new(), Timestamp(0)).on_lane(foreign));
        let err = scheduler
            .run_window(&mut ingress, |_, _| Vec::new())
            .unwrap_err();
        assert!(
            matches!(err, Error::LaneOutOfRange { seq: Seq(1), .. }),
            "{err}"
        );
        assert_eq!(ingress.len(), 2, "nothing was taken from the ingress");
    }
}

#[test]
fn invalid_configurations_are_refused() {
    let build = |config: Config| Scheduler::new(config, |_: &Invocation<()>| ()).map(|_| ());
    assert!(matches!(
        build(Config::new().workers(0)),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        build(Config::new().max_window(0)),
        Err(Error::InvalidConfig(_))
    ));
    assert!(matches!(
        build(Config::new().lane("gpu").lane("gpu")),
        Err(Error::DuplicateLane { name }) if name == "gpu"
    ));
}

#[test]
fn an_empty_ingress_is_an_empty_window() {
    let mut scheduler = Scheduler::new(Config::new().workers(2), |_: &Invocation<()>| ()).unwrap();
    let mut ingress = Ingress::new();
    let report = scheduler
        .run_window(&mut ingress, |_, _| Vec::new())
        .unwrap();
    assert_eq!(report.invocations, 0);
}

#[test]
fn window_report_counts_edges_and_emitted_work() {
    let mut scheduler = Scheduler::new(Config::new().workers(2), |_: &Invocation<u8>| ()).unwrap();
    let mut ingress = Ingress::starting_at(Seq(10));
    for i in 0..3 {
        ingress.push(Work::new(
            i,
            AccessSet::new().write(ResourceId(0)),
            Timestamp(0),
        ));
    }
    let report = scheduler
        .run_window(&mut ingress, |inv, _| {
            (*inv.task() == 0).then(|| Work::new(9, AccessSet::new(), Timestamp(0)))
        })
        .unwrap();
    assert_eq!(
        (report.invocations, report.edges, report.emitted),
        (3, 2, 1)
    );
    assert_eq!(
        ingress.iter().map(Invocation::seq).collect::<Vec<_>>(),
        [Seq(13)]
    );
}

/// A commit that panics unwinds out of `run_window`; the pool must still serve later windows
/// (its threads must not stay behind in the failed one). The tasks of the second window wait
/// for each other, so it only completes if a pool thread runs one while the driver runs the
/// other.
#[test]
fn a_panicking_commit_leaves_the_pool_usable() {
    let arrived = Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
    let meet = arrived.clone();
    let mut scheduler = Scheduler::new(Config::new().workers(2), move |inv: &Invocation<bool>| {
        if !*inv.task() {
            return true;
        }
        let (count, all_in) = &*meet;
        let mut count = count.lock().unwrap();
        *count += 1;
        all_in.notify_all();
        // Long enough never to fire on a working scheduler; it only turns a hang into
        // a failure.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while *count < 2 && std::time::Instant::now() < deadline {
            count = all_in
                .wait_timeout(count, std::time::Duration::from_millis(100))
                .unwrap()
                .0;
        }
        *count >= 2
    })
    .unwrap();
    let mut ingress = Ingress::new();
    for t in 0..4 {
        ingress.push(Work::new(
            false,
            AccessSet::new().write(ResourceId(t)),
            Timestamp(0),
        ));
    }
    quiet_expected_panics();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        scheduler.run_window(&mut ingress, |inv, _| -> Vec<Work<bool>> {
            std::panic::panic_any(format!("{PANIC_MARKER}: commit of {}", inv.seq()))
        })
    }));
    assert!(failed.is_err(), "the commit's panic reaches the caller");

    let mut ingress = Ingress::new();
    ingress.push(Work::new(
        true,
        AccessSet::new().write(ResourceId(0)),
        Timestamp(0),
    ));
    ingress.push(Work::new(
        true,
        AccessSet::new().write(ResourceId(1)),
        Timestamp(0),
    ));
    let mut met = Vec::new();
    scheduler
        .run_until_idle(&mut ingress, |_, outcome| {
            met.push(outcome.into_result().unwrap());
            None
        })
        .unwrap();
    assert_eq!(met, [true, true], "both tasks ran at the same time");
}
