//! Throughput of native busy-loop tasks (~20 µs each) at 1 and 2 workers, with 0 %, 50 % and
//! 100 % of the tasks writing one shared table (the rest write a table of their own).
//!
//! Run with `cargo bench -p interstice-scheduler --bench execute`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use interstice_scheduler::{
    AccessSet, Config, Ingress, Invocation, ResourceId, Scheduler, Timestamp, Work,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

const TASKS: usize = 256;
const TASK_TIME: Duration = Duration::from_micros(20);

fn busy(for_: Duration) -> u64 {
    let start = Instant::now();
    let mut spins = 0u64;
    while start.elapsed() < for_ {
        spins = black_box(spins + 1);
    }
    spins
}

fn execute(c: &mut Criterion) {
    let mut group = c.benchmark_group("execute");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(TASKS as u64));
    for workers in [1usize, 2] {
        for contention in [0u32, 50, 100] {
            let mut scheduler = Scheduler::new(
                Config::new().workers(workers).max_window(TASKS),
                |_: &Invocation<()>| busy(TASK_TIME),
            )
            .expect("scheduler starts");
            group.bench_function(
                BenchmarkId::new(
                    format!("workers{workers}"),
                    format!("contention{contention}"),
                ),
                |b| {
                    b.iter(|| {
                        let mut ingress = Ingress::new();
                        for i in 0..TASKS as u32 {
                            // Spread the shared-table writers evenly through the window.
                            let shared = (i * contention) / 100 != ((i + 1) * contention) / 100;
                            let table = if shared {
                                ResourceId(0)
                            } else {
                                ResourceId(1 + i)
                            };
                            ingress.push(Work::new(
                                (),
                                AccessSet::new().write(table),
                                Timestamp(0),
                            ));
                        }
                        let mut spins = 0;
                        scheduler
                            .run_until_idle(&mut ingress, |_, outcome| {
                                spins += outcome.into_result().unwrap_or(0);
                                None
                            })
                            .expect("run");
                        black_box(spins)
                    });
                },
            );
        }
    }
    group.finish();
}

/// The scheduler's own cost per invocation (plan, dispatch, reorder, commit) with tasks that
/// do nothing, in windows of 1024.
fn overhead(c: &mut Criterion) {
    const N: usize = 1024;
    let mut group = c.benchmark_group("overhead");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(N as u64));
    for workers in [1usize, 2] {
        for contention in [0u32, 100] {
            let mut scheduler = Scheduler::new(
                Config::new().workers(workers).max_window(N),
                |inv: &Invocation<()>| inv.seq().0,
            )
            .expect("scheduler starts");
            group.bench_function(
                BenchmarkId::new(
                    format!("workers{workers}"),
                    format!("contention{contention}"),
                ),
                |b| {
                    b.iter(|| {
                        let mut ingress = Ingress::new();
                        for i in 0..N as u32 {
                            let table = if contention == 100 {
                                ResourceId(0)
                            } else {
                                ResourceId(1 + i)
                            };
                            ingress.push(Work::new(
                                (),
                                AccessSet::new().write(table),
                                Timestamp(0),
                            ));
                        }
                        let mut sum = 0;
                        scheduler
                            .run_until_idle(&mut ingress, |_, outcome| {
                                sum += outcome.into_result().unwrap_or(0);
                                None
                            })
                            .expect("run");
                        black_box(sum)
                    });
                },
            );
        }
    }
    group.finish();
}

/// The machine's own ceiling: the same 256 busy tasks split over two plain threads, no
/// scheduler. On a shared machine, compare the scheduler against this, not against 2x.
fn baseline(c: &mut Criterion) {
    let mut group = c.benchmark_group("baseline");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(TASKS as u64));
    for threads in [1usize, 2] {
        group.bench_function(BenchmarkId::new("plain_threads", threads), |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..TASKS / threads {
                                black_box(busy(TASK_TIME));
                            }
                        });
                    }
                });
            });
        });
    }
    group.finish();
}

criterion_group!(benches, execute, overhead, baseline);
criterion_main!(benches);
