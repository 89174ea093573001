//! Throughput of real wasm reducers through the node, for 1, 2, 4, 8 and 16 workers, with a
//! contention knob (the share of invocations that conflict) and a cost knob (work per
//! reducer).
//!
//! `cargo bench -p interstice-benches --bench scaling` (add `-- --quick` for a short run;
//! `INTERSTICE_BENCH_WORKERS=1,2,4` to choose worker counts; `INTERSTICE_BENCH_COST_US=20`;
//! `INTERSTICE_BENCH_CONTENTION=0,1` to choose conflict shares, 0 to 1;
//! `INTERSTICE_BENCH_ITERS=N` to skip calibration; `INTERSTICE_BENCH_REPEATS=N` for longer
//! runs, e.g. under a profiler; `INTERSTICE_BENCH_CALLS=N` invocations per run instead of
//! 2000; `INTERSTICE_BENCH_COLD=1` to skip the untimed warm-up before each run).
//!
//! Each invocation is `workload_a.spinN(key, iters)`, which burns `iters` rounds of arithmetic
//! and updates one row of table `tN`. A conflicting invocation uses `spin0` (they all write
//! `t0`); the others spread over `spin1`..`spin15`, which never conflict with each other.
//! Configurations alternate and each figure is the median of the repeats, because the
//! machines are shared and noisy: compare the speedups (ratios within one run).

use std::time::Instant;

use interstice_abi::Value;
use interstice_benches::{args, build, median};
use interstice_runtime::{Durability, Node, NodeConfig};

/// The allocator the `interstice` binary runs with, so that these figures are the node's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Setup {
    workers: usize,
    contention: f64,
}

fn node(wasm: &[u8], workers: usize) -> std::sync::Arc<Node> {
    let node = Node::open(NodeConfig {
        workers,
        durability: Durability::Off,
        ..NodeConfig::default()
    })
    .expect("an in-memory node opens");
    node.install(wasm).expect("workload_a installs");
    node
}

/// The calls of one run: `n` invocations, a `contention` share of them on `t0`.
fn calls(n: usize, contention: f64, iters: u32) -> Vec<(&'static str, String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            // Spread the conflicting ones evenly: i * contention crosses an integer.
            let conflicting =
                ((i + 1) as f64 * contention).floor() > (i as f64 * contention).floor();
            let table = if conflicting { 0 } else { 1 + i % 15 };
            let a = args(&[Value::U64((i % 64) as u64), Value::U32(iters)]);
            ("workload_a", format!("spin{table}"), a)
        })
        .collect()
}

/// CPU time used so far by every thread of this process, in nanoseconds, where Linux tells
/// (`/proc/self/task/*/schedstat`); `None` elsewhere. Beside wall time it shows whether a
/// speedup is lost to idle cores (CPU time flat) or to extra work (CPU time up), which a
/// shared machine's noise hides in wall time alone.
fn cpu_nanos() -> Option<u64> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Calls run untimed before each timed run.
const WARM_UP: usize = 200;

/// Seconds to run `calls` on `node`, all submitted at once, and the CPU seconds it took.
fn run(node: &Node, calls: &[(&'static str, String, Vec<u8>)]) -> (f64, Option<f64>) {
    let refs: Vec<(&str, &str, Vec<u8>)> = calls
        .iter()
        .map(|(m, r, a)| (*m, r.as_str(), a.clone()))
        .collect();
    if std::env::var_os("INTERSTICE_BENCH_COLD").is_none() {
        // Untimed, so that the timed calls find the pool's threads awake, as a node under load
        // does: the configurations alternate, and a node idle for the others' runs has let its
        // threads sleep (waking one costs up to a millisecond on a virtual machine).
        node.call_many(&refs[..refs.len().min(WARM_UP)])
            .expect("calls run");
    }
    let cpu_before = cpu_nanos();
    let started = Instant::now();
    let outcomes = node.call_many(&refs).expect("calls run");
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_before
        .zip(cpu_nanos())
        .map(|(before, after)| after.saturating_sub(before) as f64 / 1e9);
    assert!(
        outcomes.iter().all(|o| o.is_committed()),
        "every spin commits"
    );
    (elapsed, cpu)
}

/// The `iters` that make one reducer cost about `target_us` on one worker.
fn calibrate(wasm: &[u8], target_us: f64) -> u32 {
    let node = node(wasm, 1);
    let mut iters = 1_000u32;
    loop {
        let batch = calls(200, 1.0, iters);
        let per_call_us = run(&node, &batch).0 * 1e6 / 200.0;
        if per_call_us >= target_us * 0.9 || iters > 1 << 26 {
            let scaled = f64::from(iters) * target_us / per_call_us;
            return scaled.clamp(1.0, f64::from(u32::MAX)) as u32;
        }
        iters = iters.saturating_mul(4);
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let workers: Vec<usize> = std::env::var("INTERSTICE_BENCH_WORKERS")
        .ok()
        .map(|s| s.split(',').filter_map(|w| w.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 4, 8, 16]);
    let cost_us: f64 = std::env::var("INTERSTICE_BENCH_COST_US")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20.0);
    let contentions: Vec<f64> = std::env::var("INTERSTICE_BENCH_CONTENTION")
        .ok()
        .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![0.0, 0.5, 1.0]);
    let (mut n, mut repeats) = if quick { (400, 3) } else { (2000, 5) };
    if let Some(calls) = std::env::var("INTERSTICE_BENCH_CALLS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        n = calls;
    }
    // More repeats give a profiler (`perf record`) a steady state to look at.
    if let Some(r) = std::env::var("INTERSTICE_BENCH_REPEATS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        repeats = r;
    }

    let wasm = build("workload_a").unwrap_or_else(|e| panic!("building modules/workload_a: {e}"));
    // A fixed count makes runs comparable across processes (calibration follows the load).
    let fixed: Option<u32> = std::env::var("INTERSTICE_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok());
    let iters = fixed.unwrap_or_else(|| calibrate(&wasm, cost_us));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // With a fixed count the cost is whatever it comes to here: the table's first row says.
    let cost = match fixed {
        Some(_) => "INTERSTICE_BENCH_ITERS".to_owned(),
        None => format!("~{cost_us} us"),
    };
    println!(
        "scaling: {n} invocations of {iters} iters ({cost}) per run, median of {repeats}, {cores} cores"
    );
    println!();
    println!(
        "| contention | workers | invocations/s | speedup vs 1 | serial commit share | CPU per invocation | per window |"
    );
    println!("|---|---|---|---|---|---|---|");

    for contention in contentions {
        let setups: Vec<Setup> = workers
            .iter()
            .map(|&workers| Setup {
                workers,
                contention,
            })
            .collect();
        let nodes: Vec<std::sync::Arc<Node>> =
            setups.iter().map(|s| node(&wasm, s.workers)).collect();
        let batch = calls(n, contention, iters);
        let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); setups.len()];
        let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); setups.len()];
        for _ in 0..repeats {
            // Alternate configurations within a repeat, so drift hits all of them alike.
            for (i, node) in nodes.iter().enumerate() {
                let (wall, used) = run(node, &batch);
                seconds[i].push(wall);
                cpu[i].extend(used);
            }
        }
        let base = median(&mut seconds[0].clone());
        for (i, setup) in setups.iter().enumerate() {
            let secs = median(&mut seconds[i]);
            let stats = nodes[i].stats();
            let commit_share = stats.commit_nanos as f64 / stats.window_nanos.max(1) as f64;
            let cpu_per_call = if cpu[i].is_empty() {
                "n/a".to_owned()
            } else {
                format!("{:.1} us", median(&mut cpu[i]) * 1e6 / n as f64)
            };
            println!(
                "| {:.0} % | {} | {:.0} | {:.2}x | {:.1} % | {cpu_per_call} | {:.0} invocations |",
                setup.contention * 100.0,
                setup.workers,
                n as f64 / secs,
                base / secs,
                commit_share * 100.0,
                stats.invocations as f64 / stats.windows.max(1) as f64,
            );
        }
    }
}
