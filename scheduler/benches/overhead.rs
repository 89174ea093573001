//! What going parallel costs per invocation: windows of 1024 tasks that spin for a fixed
//! amount of work, at 1 and 2 workers, through `run_until_idle`, in two shapes: independent
//! (each task writes a table of its own) and 15 chains (task `i` writes table `i % 15`, the
//! shape of the runtime's scaling bench without contention). Prints, per task cost and worker count, the median over samples of:
//! wall time per invocation, CPU time per invocation (all threads of the process, from
//! `/proc/self/task/*/schedstat`), the overhead per invocation (CPU per invocation minus that
//! of a plain loop running the same tasks, measured alongside) and the speedup over one
//! worker.
//!
//! Run with `cargo bench -p interstice-scheduler --bench overhead`. `INTERSTICE_BENCH_COSTS_US`
//! (default `0,2,5,20`), `INTERSTICE_BENCH_WORKERS` (default `1,2`) and
//! `INTERSTICE_BENCH_SAMPLES` (default 15) and `INTERSTICE_BENCH_SAMPLE_MS` (default 30; longer
//! samples make the CPU column usable under `chrt`, whose threads are accounted at scheduler
//! ticks) choose the runs; `INTERSTICE_BENCH_SPIN_PER_US` fixes the spin rate instead of
//! calibrating it, to compare builds run one after the other. On a shared machine compare the
//! columns of one run (and alternate builds), not figures across runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use interstice_scheduler::{
    AccessSet, Config, Ingress, Invocation, ResourceId, Scheduler, Timestamp, Work,
};

const WINDOW: usize = 1024;

/// CPU time of every thread of this process so far, in nanoseconds; `None` off Linux.
fn cpu_nanos() -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// A fixed amount of work (not a fixed time, so a descheduled task costs no CPU).
fn spin(iters: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..iters {
        x = black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    x
}

/// Spin iterations per microsecond on this machine.
fn calibrate() -> f64 {
    let iters = 2_000_000;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        black_box(spin(iters));
        best = best.min(start.elapsed().as_secs_f64());
    }
    iters as f64 / (best * 1e6)
}

fn list(var: &str, default: &[u64]) -> Vec<u64> {
    std::env::var(var).map_or_else(
        |_| default.to_vec(),
        |v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The same tasks in a plain loop, no scheduler: (wall ns, CPU ns) per invocation.
fn plain(iters: u64, windows: usize) -> (f64, Option<f64>) {
    let cpu_before = cpu_nanos();
    let started = Instant::now();
    let mut sum = 0u64;
    for _ in 0..windows * WINDOW {
        sum = sum.wrapping_add(spin(black_box(iters)));
    }
    let wall = started.elapsed().as_nanos() as f64;
    black_box(sum);
    let n = (windows * WINDOW) as f64;
    let cpu = cpu_before
        .zip(cpu_nanos())
        .map(|(before, after)| after.saturating_sub(before) as f64 / n);
    (wall / n, cpu)
}

/// One sample: enough windows for the sample time; returns (wall ns, CPU ns) per invocation. `chains`
/// 0 gives every task a table of its own.
fn sample(scheduler: &mut Scheduler<u64, u64>, windows: usize, chains: u32) -> (f64, Option<f64>) {
    let mut ingress = Ingress::new();
    let cpu_before = cpu_nanos();
    let started = Instant::now();
    let mut sum = 0u64;
    for _ in 0..windows {
        for i in 0..WINDOW as u32 {
            let table = if chains == 0 { i } else { i % chains };
            ingress.push(Work::new(
                0,
                AccessSet::new().write(ResourceId(table)),
                Timestamp(0),
            ));
        }
        scheduler
            .run_until_idle(&mut ingress, |_, outcome| {
                sum = sum.wrapping_add(outcome.into_result().unwrap_or(0));
                None
            })
            .expect("run");
    }
    let wall = started.elapsed().as_nanos() as f64;
    black_box(sum);
    let n = (windows * WINDOW) as f64;
    let cpu = cpu_before
        .zip(cpu_nanos())
        .map(|(before, after)| after.saturating_sub(before) as f64 / n);
    (wall / n, cpu)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let costs = list("INTERSTICE_BENCH_COSTS_US", &[0, 2, 5, 20]);
    let workers = list("INTERSTICE_BENCH_WORKERS", &[1, 2]);
    let samples = list("INTERSTICE_BENCH_SAMPLES", &[15])[0].max(1) as usize;
    let sample_us = list("INTERSTICE_BENCH_SAMPLE_MS", &[30])[0].max(1) as f64 * 1e3;
    // A fixed rate makes runs of different builds comparable: each process calibrates at its
    // own moment, and this machine's speed varies between them by more than the difference
    // being measured.
    let per_us = std::env::var("INTERSTICE_BENCH_SPIN_PER_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(calibrate);
    println!("spin calibration: {per_us:.0} iterations per µs; {WINDOW} invocations per window");
    println!(
        "{:>7} {:>8} {:>7} {:>12} {:>12} {:>14} {:>8}",
        "chains", "task µs", "workers", "wall ns/inv", "CPU ns/inv", "overhead ns", "speedup"
    );
    for chains in [0u32, 15] {
        for &cost in &costs {
            let iters = (cost as f64 * per_us) as u64;
            let windows = (sample_us / ((cost as f64).max(0.2) * WINDOW as f64)).ceil() as usize;
            let mut serial_wall = None;
            let loop_cpu = median(
                (0..samples)
                    .filter_map(|_| plain(iters, windows).1)
                    .collect::<Vec<_>>(),
            );
            for &w in &workers {
                let mut scheduler = Scheduler::new(
                    Config::new().workers(w as usize).max_window(WINDOW),
                    move |_: &Invocation<u64>| spin(iters),
                )
                .expect("scheduler starts");
                // Warm up: threads started, caches and allocator primed.
                sample(&mut scheduler, windows, chains);
                let runs: Vec<_> = (0..samples)
                    .map(|_| sample(&mut scheduler, windows, chains))
                    .collect();
                let wall = median(runs.iter().map(|r| r.0).collect());
                let cpu = runs
                    .iter()
                    .map(|r| r.1)
                    .collect::<Option<Vec<f64>>>()
                    .map(median);
                let serial = *serial_wall.get_or_insert(wall);
                let cpu_text = cpu.map_or("-".to_owned(), |c| format!("{c:.0}"));
                let overhead = cpu.map_or("-".to_owned(), |c| format!("{:.0}", c - loop_cpu));
                println!(
                    "{chains:>7} {cost:>8} {w:>7} {wall:>12.0} {cpu_text:>12} {overhead:>14} {:>7.2}x",
                    serial / wall
                );
                drop(scheduler);
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
