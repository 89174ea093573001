//! Lanes added and removed at run time, and lanes driven by a thread the test owns.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use interstice_scheduler::{
    AccessSet, Config, Error, Executed, Ingress, Invocation, LaneDriver, LaneId, ResourceId,
    Scheduler, Seq, Timestamp, Work,
};

use crate::executors::EXECUTORS;

fn write(table: u32) -> AccessSet {
    AccessSet::new().write(ResourceId(table))
}

/// Runs `ingress` on another thread while this one drives `driver` until the scheduler is
/// dropped (which closes the lane); returns what the commits saw.
fn drive_while_running<O: Send + 'static>(
    mut scheduler: Scheduler<u32, O>,
    mut ingress: Ingress<u32>,
    driver: LaneDriver,
) -> Vec<(u64, Executed<O>)> {
    thread::scope(|s| {
        let windows = s.spawn(move || {
            let mut log = Vec::new();
            scheduler
                .run_until_idle(&mut ingress, |inv, outcome| {
                    log.push((inv.seq().0, outcome));
                    None
                })
                .expect("run");
            drop(scheduler);
            log
        });
        while driver.wait(None) {
            driver.run_pending();
        }
        windows.join().expect("window thread")
    })
}

#[test]
fn a_driven_lane_runs_on_the_owner_thread_in_plan_order() {
    for workers in EXECUTORS {
        let ran: Arc<Mutex<Vec<(u32, ThreadId)>>> = Arc::default();
        let record = ran.clone();
        let mut scheduler = Scheduler::new(Config::new().workers(workers), move |inv| {
            record
                .lock()
                .expect("log")
                .push((*inv.task(), thread::current().id()));
            *inv.task()
        })
        .expect("scheduler");
        let (main, driver) = scheduler.add_driven_lane("main").expect("lane");
        let mut ingress = Ingress::new();
        // Lane work chained on table 0, pool work around it on tables 1..3, and pool work
        // that waits for the lane (reads table 0).
        for task in 0..12u32 {
            let work = match task % 4 {
                0 => Work::new(task, write(0), Timestamp(0)).on_lane(main),
                1 => Work::new(task, AccessSet::new().read(ResourceId(0)), Timestamp(0)),
                2 => Work::new(task, write(1 + task % 3), Timestamp(0)),
                _ => Work::new(task, write(0).read(ResourceId(1)), Timestamp(0)).on_lane(main),
            };
            ingress.push(work);
        }
        let log = drive_while_running(scheduler, ingress, driver);

        let seqs: Vec<u64> = log.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (0..12).collect::<Vec<_>>(), "commit order");
        assert!(
            log.iter()
                .all(|(s, o)| *o == Executed::Completed(*s as u32)),
            "{log:?}"
        );
        let ran = ran.lock().expect("log").clone();
        let owner = thread::current().id();
        let on_lane: Vec<u32> = ran
            .iter()
            .filter(|(_, t)| *t == owner)
            .map(|(task, _)| *task)
            .collect();
        assert_eq!(on_lane, [0, 3, 4, 7, 8, 11], "workers = {workers}");
        // Every task that reads table 0 ran after the lane write before it and before the next.
        let position = |task: u32| ran.iter().position(|(t, _)| *t == task).expect("ran");
        for reader in [1, 5, 9] {
            assert!(position(reader - 1) < position(reader));
            assert!(position(reader) < position(reader + 2));
        }
    }
}

#[test]
fn a_dropped_driver_fails_its_invocations_and_the_rest_commits() {
    for workers in EXECUTORS {
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let mut scheduler = Scheduler::new(
            Config::new().workers(workers),
            move |inv: &Invocation<u32>| {
                counted.fetch_add(1, Ordering::Relaxed);
                *inv.task()
            },
        )
        .expect("scheduler");
        let (main, driver) = scheduler.add_driven_lane("main").expect("lane");
        drop(driver);
        let mut ingress = Ingress::new();
        ingress.push(Work::new(0, write(0), Timestamp(0)).on_lane(main));
        ingress.push(Work::new(1, write(0), Timestamp(0)));
        ingress.push(Work::new(2, write(1), Timestamp(0)).on_lane(main));
        ingress.push(Work::new(3, write(2), Timestamp(0)));
        let mut log = Vec::new();
        scheduler
            .run_until_idle(&mut ingress, |inv, outcome| {
                log.push((inv.seq().0, outcome));
                None
            })
            .expect("run");
        let not_run = |o: &Executed<u32>| {
            matches!(o, Executed::Panicked { message }
                if message.contains("lane `main` has no driver") && message.contains("not run"))
        };
        assert!(not_run(&log[0].1), "{log:?}");
        assert_eq!(
            log[1],
            (1, Executed::Completed(1)),
            "its successor still ran"
        );
        assert!(not_run(&log[2].1), "{log:?}");
        assert_eq!(log[3], (3, Executed::Completed(3)));
        assert_eq!(runs.load(Ordering::Relaxed), 2, "lane work never ran");
    }
}

#[test]
fn dropping_the_driver_abandons_what_is_queued() {
    for workers in EXECUTORS {
        let mut scheduler =
            Scheduler::new(Config::new().workers(workers), |inv: &Invocation<u32>| {
                *inv.task()
            })
            .expect("scheduler");
        let (main, driver) = scheduler.add_driven_lane("main").expect("lane");
        let (queued, on_queue) = mpsc::channel();
        driver.set_waker(move || {
            let _ = queued.send(());
        });
        let mut ingress = Ingress::new();
        ingress.push(Work::new(0, write(0), Timestamp(0)));
        ingress.push(Work::new(1, write(0), Timestamp(0)).on_lane(main));
        ingress.push(Work::new(2, write(0), Timestamp(0)));
        let log = thread::scope(|s| {
            let windows = s.spawn(move || {
                let mut log = Vec::new();
                scheduler
                    .run_until_idle(&mut ingress, |inv, outcome| {
                        log.push((inv.seq().0, outcome));
                        None
                    })
                    .expect("run");
                log
            });
            // The job is queued (the waker says so), then its driver goes away unrun.
            on_queue.recv().expect("a job was queued");
            drop(driver);
            windows.join().expect("window thread")
        });
        assert_eq!(log[0], (0, Executed::Completed(0)));
        assert!(
            matches!(&log[1].1, Executed::Panicked { message } if message.contains("no driver")),
            "{log:?}"
        );
        assert_eq!(log[2], (2, Executed::Completed(2)));
    }
}

/// Counts the lane threads that have ended: a thread-local whose destructor runs as the thread
/// exits, before a join of it returns.
struct ExitMark(Arc<AtomicUsize>);

impl Drop for ExitMark {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

thread_local! {
    static EXIT: std::cell::RefCell<Option<ExitMark>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn lanes_come_and_go() {
    let exited = Arc::new(AtomicUsize::new(0));
    let mark = exited.clone();
    let mut scheduler = Scheduler::new(Config::new().workers(2), move |inv: &Invocation<u32>| {
        if inv.lane().is_some() {
            EXIT.with(|e| *e.borrow_mut() = Some(ExitMark(mark.clone())));
        }
        thread::current().name().map(str::to_owned)
    })
    .expect("scheduler");
    let run = |scheduler: &mut Scheduler<u32, Option<String>>, lane: LaneId| {
        let mut ingress = Ingress::new();
        ingress.push(Work::new(0, write(0), Timestamp(0)).on_lane(lane));
        ingress.push(Work::new(1, write(1), Timestamp(0)));
        let mut threads = Vec::new();
        let result = scheduler.run_until_idle(&mut ingress, |_, outcome| {
            threads.push(outcome.into_result().expect("no panic"));
            None
        });
        (result.map(|_| threads), ingress.len())
    };

    let gpu = scheduler.add_lane("gpu").expect("added");
    assert_eq!(scheduler.lane("gpu").expect("found"), gpu);
    let (threads, _) = run(&mut scheduler, gpu);
    assert_eq!(
        threads.expect("ran")[0].as_deref(),
        Some("interstice-lane-gpu")
    );
    assert!(matches!(
        scheduler.add_lane("gpu"),
        Err(Error::DuplicateLane { name }) if name == "gpu"
    ));

    scheduler.remove_lane(gpu).expect("removed");
    assert_eq!(
        exited.load(Ordering::SeqCst),
        1,
        "the lane thread was joined"
    );
    let (result, left) = run(&mut scheduler, gpu);
    assert!(
        matches!(result, Err(Error::LaneRemoved { seq: Seq(0), lane }) if lane == gpu),
        "{result:?}"
    );
    assert_eq!(left, 2, "nothing was taken from the ingress");
    assert!(matches!(
        scheduler.remove_lane(gpu),
        Err(Error::NoSuchLane { lane }) if lane == gpu
    ));
    assert!(matches!(
        scheduler.lane("gpu"),
        Err(Error::UnknownLane { .. })
    ));

    // The name and the slot are free again, but the old id stays dead.
    let again = scheduler.add_lane("gpu").expect("added again");
    assert_eq!(again.index(), gpu.index());
    assert_ne!(again, gpu);
    assert!(matches!(
        run(&mut scheduler, gpu).0,
        Err(Error::LaneRemoved { .. })
    ));
    let (threads, _) = run(&mut scheduler, again);
    assert_eq!(
        threads.expect("ran")[0].as_deref(),
        Some("interstice-lane-gpu")
    );
}

#[test]
fn a_driver_learns_when_its_lane_closes() {
    let mut scheduler =
        Scheduler::new(Config::new().workers(2), |_: &Invocation<u32>| ()).expect("scheduler");
    let (main, driver) = scheduler.add_driven_lane("main").expect("lane");
    let woken = Arc::new(AtomicUsize::new(0));
    let wakes = woken.clone();
    driver.set_waker(move || {
        wakes.fetch_add(1, Ordering::SeqCst);
    });
    assert!(
        !driver.wait(Some(Duration::from_millis(1))),
        "nothing queued"
    );
    assert!(!driver.is_closed());
    assert_eq!(driver.run_pending(), 0);
    thread::scope(|s| {
        let waiting = s.spawn(|| driver.wait(None));
        scheduler.remove_lane(main).expect("removed");
        assert!(
            !waiting.join().expect("driver thread"),
            "closed, nothing queued"
        );
    });
    assert!(driver.is_closed());
    assert_eq!(
        woken.load(Ordering::SeqCst),
        1,
        "the waker heard of the close"
    );
    assert_eq!(driver.lane(), main);
    assert_eq!(driver.name(), "main");
}

#[test]
fn a_driven_lane_name_is_unique_and_the_waker_hears_each_job() {
    let mut scheduler = Scheduler::new(
        Config::new().workers(1).lane("main"),
        |_: &Invocation<u32>| (),
    )
    .expect("scheduler");
    assert!(matches!(
        scheduler.add_driven_lane("main"),
        Err(Error::DuplicateLane { .. })
    ));
    let (ui, driver) = scheduler.add_driven_lane("ui").expect("lane");
    let woken = Arc::new(AtomicUsize::new(0));
    let wakes = woken.clone();
    driver.set_waker(move || {
        wakes.fetch_add(1, Ordering::SeqCst);
    });
    let mut ingress = Ingress::new();
    for task in 0..3 {
        ingress.push(Work::new(task, write(task), Timestamp(0)).on_lane(ui));
    }
    let log = drive_while_running(scheduler, ingress, driver);
    assert_eq!(log.len(), 3);
    // One wake per job, and one for the close when the scheduler is dropped.
    assert_eq!(woken.load(Ordering::SeqCst), 4);
}
