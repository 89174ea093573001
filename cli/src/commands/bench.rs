//! `interstice bench`: standard workloads run in this process on in-memory nodes, at several
//! worker counts, with a progress bar, a table (throughput, speedup, efficiency, the serial
//! commit's share of the time, CPU per invocation), the simulation's step in plain Rust as a
//! baseline, the machine, `--json`, and an SVG plot of speedup against workers.
//!
//! Everything it runs is carried by the binary (the modules are compiled in by `build.rs`), so
//! an installed `interstice` benchmarks with no source checkout.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use interstice_abi::{Value, encode_into};
use interstice_runtime::net::{Client, ClientConfig, ReducerOutcome, ServerConfig, serve};
use interstice_runtime::{Durability, Node, NodeConfig, Outcome};
use interstice_store::{CommitMeta, Readable, Store, TableId};
use serde_json::json;

use super::example::embedded;
use crate::cpu::process_cpu;
use crate::error::{CliError, Result};
use crate::examples::BENCH_MODULE;
use crate::output::{Output, si};
use crate::runtime;

/// A workload of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Workload {
    /// modules/simulation: one tick (a step per region of a 512×256 Life) after another.
    Simulation,
    /// Transfers spread over 256 lanes (partitions): none conflicts with another.
    Independent,
    /// Transfers all in lane 0: each conflicts with the one before.
    Contended,
    /// An empty reducer: the cost of an invocation itself.
    Empty,
    /// Transfers over 256 lanes, as remote calls from a client over loopback, 64 in flight.
    Remote,
}

impl Workload {
    fn unit(self) -> &'static str {
        match self {
            Workload::Simulation => "cells/s",
            _ => "calls/s",
        }
    }
}

pub struct Options {
    pub workloads: Vec<Workload>,
    pub workers: Vec<usize>,
    pub seconds: f64,
    pub repeats: usize,
    pub svg: Option<PathBuf>,
}

/// The simulation's world in the benchmark.
const WIDTH: u32 = 512;
const HEIGHT: u32 = 256;
const REGIONS: u32 = 32;
/// The most workers one configuration may ask for.
const MAX_WORKERS: usize = 1024;
/// Lanes of the transfer workloads, and calls per batch.
const LANES: u32 = 256;
const IN_FLIGHT: usize = 64;

/// One measured run.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// In the workload's unit.
    throughput: f64,
    invocations_per_s: f64,
    /// Of the scheduler's window time, the share in the ordered (serial) commit.
    commit_share: f64,
    /// CPU time of the whole process per invocation.
    cpu_per_invocation: Option<Duration>,
}

pub fn run(out: Output, options: Options) -> Result<()> {
    let Options {
        mut workloads,
        mut workers,
        seconds,
        repeats,
        svg,
    } = options;
    if workloads.is_empty() {
        workloads = vec![
            Workload::Simulation,
            Workload::Independent,
            Workload::Contended,
            Workload::Empty,
            Workload::Remote,
        ];
    }
    workloads.sort();
    workloads.dedup();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if workers.is_empty() {
        workers = std::iter::successors(Some(1), |w| Some(w * 2))
            .take_while(|&w| w <= cores)
            .collect();
        if workers.last() != Some(&cores) {
            workers.push(cores);
        }
    }
    if workers.contains(&0) {
        return Err(CliError::usage("--workers counts must be at least 1"));
    }
    if let Some(&w) = workers.iter().find(|&&w| w > MAX_WORKERS) {
        return Err(CliError::usage(format!(
            "--workers {w} is more than {MAX_WORKERS}: each worker is a thread"
        )));
    }
    workers.sort_unstable();
    workers.dedup();
    if !(seconds > 0.0 && seconds <= 600.0) {
        return Err(CliError::usage(
            "--seconds must be more than 0 and at most 600",
        ));
    }
    let repeats = repeats.max(1);
    let machine = machine(cores);
    out.say(format!(
        "{machine}\n{} workload(s) × workers {:?} × {repeats} repeat(s), {seconds} s each; configurations alternate, figures are medians",
        workloads.len(),
        workers
    ));

    let runs = (workloads.len() * workers.len() * repeats) as u64 + 1;
    let bar = ProgressBar::new(runs);
    if out.json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} (ETA {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut samples: Vec<Vec<Vec<Sample>>> = vec![vec![Vec::new(); workers.len()]; workloads.len()];
    let mut ceilings: Vec<Vec<f64>> = vec![Vec::new(); workers.len()];
    // Repeats outermost and workers alternating inside, so that a slow spell of a shared
    // machine spreads over every configuration instead of landing on one.
    for _ in 0..repeats {
        for (wi, workload) in workloads.iter().enumerate() {
            for (ki, &w) in workers.iter().enumerate() {
                bar.set_message(format!("{workload:?} on {w} worker(s)"));
                samples[wi][ki].push(measure(*workload, w, seconds)?);
                bar.inc(1);
            }
        }
        bar.set_message("plain threads");
        for (ki, &w) in workers.iter().enumerate() {
            ceilings[ki].push(plain_threads_speedup(w));
        }
    }
    let ceilings: Vec<f64> = ceilings.iter_mut().map(|c| median_f64(c)).collect();
    bar.set_message("the simulation in plain Rust");
    let native = native_cells_per_s(seconds);
    let (wasm_rule, native_store) = if workloads.contains(&Workload::Simulation) {
        bar.set_message("the simulation's rule alone, in wasm");
        let rule = wasm_rule_cells_per_s(seconds)?;
        bar.set_message("the simulation's step in plain Rust over the store");
        (Some(rule), Some(native_store_cells_per_s(seconds)?))
    } else {
        (None, None)
    };
    bar.finish_and_clear();

    let medians: Vec<Vec<Sample>> = samples
        .iter()
        .map(|per| per.iter().map(|s| median(s)).collect())
        .collect();
    let mut rows = Vec::new();
    let mut table = format!(
        "{:<12} {:>7} {:>16} {:>8} {:>10} {:>14} {:>12}\n",
        "workload", "workers", "throughput", "speedup", "efficiency", "serial commit", "CPU/invoc."
    );
    for (wi, workload) in workloads.iter().enumerate() {
        let base = medians[wi][0].throughput;
        for (ki, &w) in workers.iter().enumerate() {
            let s = medians[wi][ki];
            let speedup = s.throughput / base;
            table.push_str(&format!(
                "{:<12} {:>7} {:>16} {:>7.2}× {:>9.0}% {:>13.1}% {:>12}\n",
                format!("{workload:?}").to_lowercase(),
                w,
                format!("{} {}", si(s.throughput), workload.unit()),
                speedup,
                speedup / w as f64 * 100.0,
                s.commit_share * 100.0,
                s.cpu_per_invocation.map_or("-".to_owned(), |c| format!(
                    "{:.2} µs",
                    c.as_secs_f64() * 1e6
                )),
            ));
            rows.push(json!({
                "workload": format!("{workload:?}").to_lowercase(),
                "workers": w,
                "throughput": s.throughput,
                "unit": workload.unit(),
                "invocations_per_s": s.invocations_per_s,
                "speedup": speedup,
                "efficiency": speedup / w as f64,
                "serial_commit_share": s.commit_share,
                "cpu_per_invocation_us": s.cpu_per_invocation.map(|c| c.as_secs_f64() * 1e6),
            }));
        }
    }
    let wasm_one = workloads
        .iter()
        .position(|w| *w == Workload::Simulation)
        .map(|wi| medians[wi][0].throughput);
    let ratio = wasm_one.map(|wasm| native / wasm);
    let rule_ratio = wasm_rule.map(|wasm| native / wasm);
    let store_ratio = native_store
        .zip(wasm_one)
        .map(|(native, wasm)| native / wasm);
    if let Some(path) = &svg {
        plot(path, &workloads, &workers, &medians)?;
    }
    out.done(
        json!({
            "machine": machine,
            "cores": cores,
            "seconds": seconds,
            "repeats": repeats,
            "rows": rows,
            "plain_threads_speedup": workers.iter().zip(&ceilings)
                .map(|(w, s)| json!({"workers": w, "speedup": s}))
                .collect::<Vec<_>>(),
            "native_simulation_cells_per_s": native,
            "simulation_wasm_over_native": ratio,
            "wasm_rule_cells_per_s": wasm_rule,
            "rule_wasm_over_native": rule_ratio,
            "native_store_cells_per_s": native_store,
            "simulation_wasm_over_native_store": store_ratio,
            "svg": svg.as_ref().map(|p| p.display().to_string()),
        }),
        || {
            let mut text = table;
            text.push_str(&format!(
                "\nthe simulation's tick in plain Rust, one thread: {} cells/s",
                si(native)
            ));
            if let Some(ratio) = ratio {
                text.push_str(&format!(
                    "; through the node at 1 worker (wasm), the same tick takes {ratio:.2}× its time"
                ));
            }
            if let (Some(cells), Some(ratio)) = (wasm_rule, rule_ratio) {
                text.push_str(&format!(
                    "\nthe same plain-Rust tick compiled to wasm, in one query (no store, no host calls): {} cells/s, {ratio:.2}× the native time",
                    si(cells)
                ));
            }
            if let (Some(cells), Some(ratio)) = (native_store, store_ratio) {
                text.push_str(&format!(
                    "\nthe same step in plain Rust over the store (one transaction per region: the same reads, rule and writes; no wasm, no host calls, no scheduler): {} cells/s; through the node at 1 worker it takes {ratio:.2}× this time",
                    si(cells)
                ));
            }
            text.push_str(&format!(
                "\nplain threads (a busy loop, no Interstice) on this machine, same runs: {}",
                workers
                    .iter()
                    .zip(&ceilings)
                    .map(|(w, s)| format!("{w} → {s:.2}×"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            text.push_str(
                "\nserial commit: the share of the scheduler's time spent in the ordered commit, which no worker count speeds up",
            );
            if let Some(path) = &svg {
                text.push_str(&format!("\nplot: {}", path.display()));
            }
            text
        },
    );
    Ok(())
}

fn measure(workload: Workload, workers: usize, seconds: f64) -> Result<Sample> {
    let node = memory_node(workers)?;
    let install = |module: &str| {
        let wasm = embedded::wasm(module)
            .ok_or_else(|| CliError::new(format!("this build does not carry `{module}`")))?;
        node.install(wasm)
            .map_err(|e| CliError::new(format!("cannot install {module}: {e}")))
    };
    let check = |outcome: Result<Outcome, interstice_runtime::NodeError>| match outcome {
        Ok(Outcome::Committed { .. }) => Ok(()),
        Ok(Outcome::Failed { reason, .. }) => {
            Err(CliError::new(format!("a call failed: {reason}")))
        }
        Err(e) => Err(CliError::new(format!("a call failed: {e}"))),
    };
    let warmup = Duration::from_secs_f64((seconds / 5.0).min(0.5));
    let measure_for = Duration::from_secs_f64(seconds);
    // Runs `step` (which returns the units and invocations it did) for the warm-up, then for
    // the measurement.
    let timed = |step: &mut dyn FnMut() -> Result<(f64, u64)>| -> Result<Sample> {
        let end = Instant::now() + warmup;
        while Instant::now() < end {
            step()?;
        }
        let before = node.stats();
        let cpu_before = process_cpu();
        let started = Instant::now();
        let (mut units, mut invocations) = (0.0, 0u64);
        while started.elapsed() < measure_for {
            let (u, i) = step()?;
            units += u;
            invocations += i;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let after = node.stats();
        let window = after
            .window_nanos
            .saturating_sub(before.window_nanos)
            .max(1);
        let commit = after.commit_nanos.saturating_sub(before.commit_nanos);
        Ok(Sample {
            throughput: units / elapsed,
            invocations_per_s: invocations as f64 / elapsed,
            commit_share: commit as f64 / window as f64,
            cpu_per_invocation: process_cpu()
                .zip(cpu_before)
                .map(|(a, b)| (a - b) / invocations.max(1) as u32),
        })
    };
    let lane_args = |lane: u32, amount: Option<i64>| {
        let mut out = Vec::new();
        encode_into(&Value::U32(lane), &mut out);
        if let Some(amount) = amount {
            encode_into(&Value::I64(amount), &mut out);
        }
        out
    };
    match workload {
        Workload::Simulation => {
            seeded_simulation(&node)?;
            let mut tick = 0u64;
            timed(&mut || {
                let ticks =
                    super::simulation::ticks_per_batch(u64::from(WIDTH) * u64::from(HEIGHT));
                let calls = super::simulation::tick_calls(tick, ticks, REGIONS);
                tick += ticks;
                for outcome in node
                    .call_many(&calls)
                    .map_err(|e| CliError::new(e.to_string()))?
                {
                    check(Ok(outcome))?;
                }
                let steps = u64::from(REGIONS) * ticks;
                Ok((f64::from(WIDTH) * f64::from(HEIGHT) * ticks as f64, steps))
            })
        }
        Workload::Independent | Workload::Contended | Workload::Empty => {
            install(BENCH_MODULE)?;
            check(node.call_reducer_values("bench", "setup", &[Value::U32(LANES)]))?;
            let mut next = 0u32;
            timed(&mut || {
                let calls: Vec<(&str, &str, Vec<u8>)> = (0..LANES)
                    .map(|i| {
                        next = next.wrapping_add(1);
                        match workload {
                            Workload::Contended => ("bench", "transfer", lane_args(0, Some(1))),
                            Workload::Empty => ("bench", "noop", lane_args(i, None)),
                            _ => ("bench", "transfer", lane_args(i, Some(1))),
                        }
                    })
                    .collect();
                for outcome in node
                    .call_many(&calls)
                    .map_err(|e| CliError::new(e.to_string()))?
                {
                    check(Ok(outcome))?;
                }
                Ok((f64::from(LANES), u64::from(LANES)))
            })
        }
        Workload::Remote => {
            install(BENCH_MODULE)?;
            check(node.call_reducer_values("bench", "setup", &[Value::U32(LANES)]))?;
            let rt = runtime()?;
            let (server, client) = rt.block_on(async {
                let server = serve(node.clone(), "127.0.0.1:0", ServerConfig::default())
                    .await
                    .map_err(|e| CliError::new(format!("cannot serve on loopback: {e}")))?;
                let client =
                    Client::connect(&server.local_addr().to_string(), ClientConfig::default())
                        .await
                        .map_err(|e| CliError::new(format!("cannot connect over loopback: {e}")))?;
                Ok::<_, CliError>((server, client))
            })?;
            let mut lane = 0u32;
            let sample = timed(&mut || {
                let calls = (0..IN_FLIGHT).map(|_| {
                    lane = (lane + 1) % LANES;
                    let client = client.clone();
                    let args = lane_args(lane, Some(1));
                    async move { client.call_reducer("bench", "transfer", args).await }
                });
                let outcomes = rt.block_on(futures_util::future::join_all(calls));
                for outcome in outcomes {
                    match outcome {
                        Ok(ReducerOutcome::Committed { .. }) => {}
                        Ok(other) => {
                            return Err(CliError::new(format!("a remote call failed: {other:?}")));
                        }
                        Err(e) => return Err(CliError::new(format!("a remote call failed: {e}"))),
                    }
                }
                Ok((IN_FLIGHT as f64, IN_FLIGHT as u64))
            });
            rt.block_on(server.shutdown());
            sample
        }
    }
}

/// Cells per second of the simulation's tick in plain Rust, on this thread.
fn native_cells_per_s(seconds: f64) -> f64 {
    let mut world = simulation::initial_world(WIDTH, HEIGHT, 42);
    let started = Instant::now();
    let mut ticks = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        world = simulation::tick_native(std::hint::black_box(&world));
        ticks += 1;
    }
    ticks as f64 * f64::from(WIDTH) * f64::from(HEIGHT) / started.elapsed().as_secs_f64()
}

/// Cells per second of the plain-Rust tick compiled into the simulation module and run by its
/// `forecast` query: wasm against native for the same code, with the store, the host calls
/// and the scheduler left out (one scan of the world per query, a few per cent of it).
fn wasm_rule_cells_per_s(seconds: f64) -> Result<f64> {
    /// Ticks per query: long enough that the query's scan of the world is small beside them,
    /// well inside a call's fuel.
    const TICKS: u32 = 100;
    let node = memory_node(1)?;
    seeded_simulation(&node)?;
    let forecast = || {
        node.call_query(
            "simulation",
            "forecast",
            &[Value::Bool(false), Value::U32(TICKS)],
        )
        .map_err(|e| CliError::new(format!("the forecast query failed: {e}")))
    };
    forecast()?;
    let started = Instant::now();
    let mut ticks = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        forecast()?;
        ticks += u64::from(TICKS);
    }
    Ok(ticks as f64 * f64::from(WIDTH) * f64::from(HEIGHT) / started.elapsed().as_secs_f64())
}

/// Cells per second of the simulation's step written in plain Rust against the node's store:
/// per region one store transaction that reads the region's lines and the line on each side,
/// computes the region's next lines with the module's own rule and updates them, then commits.
/// The same reads, rule and writes as the module's step, without wasm, the host calls and the
/// scheduler: what the sandbox and the scheduling cost, beside the tick over plain vectors
/// that leaves the store out as well.
fn native_store_cells_per_s(seconds: f64) -> Result<f64> {
    let node = memory_node(1)?;
    seeded_simulation(&node)?;
    let mut steps = NativeSteps::new(node.store())?;
    steps.tick(node.store())?;
    let started = Instant::now();
    let mut ticks = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        steps.tick(node.store())?;
        ticks += 1;
    }
    Ok(ticks as f64 * f64::from(WIDTH) * f64::from(HEIGHT) / started.elapsed().as_secs_f64())
}

/// The simulation's steps as native code over the store (see [`native_store_cells_per_s`]).
struct NativeSteps {
    /// `even`, `odd`: the buffer even ticks read, the one odd ticks read.
    buffers: [TableId; 2],
    /// Each region's first and last line.
    bands: Vec<(u32, u32)>,
    world: simulation::World,
    tick: u64,
    /// Commit sequence numbers far above the node's own, which this memory node never logs.
    seq: u64,
}

impl NativeSteps {
    fn new(store: &Store) -> Result<Self> {
        let table = |name: &str| {
            store
                .table_id(name)
                .ok_or_else(|| CliError::new(format!("no table {name} after seeding")))
        };
        let world = simulation::World {
            id: 0,
            width: WIDTH,
            height: HEIGHT,
            regions: REGIONS,
        };
        let bands = (0..REGIONS)
            .map(|region| {
                let lines =
                    (0..HEIGHT).filter(|&y| simulation::region_of(y, HEIGHT, REGIONS) == region);
                (lines.clone().min().unwrap_or(0), lines.max().unwrap_or(0))
            })
            .collect();
        Ok(NativeSteps {
            buffers: [table("simulation.even")?, table("simulation.odd")?],
            bands,
            world,
            tick: 0,
            seq: 1 << 40,
        })
    }

    fn tick(&mut self, store: &Store) -> Result<()> {
        let front = self.buffers[(self.tick % 2) as usize];
        let back = self.buffers[((self.tick + 1) % 2) as usize];
        let fail =
            |e: interstice_store::StoreError| CliError::new(format!("the native step failed: {e}"));
        for (region, &(first, last)) in (0u32..).zip(&self.bands) {
            let mut tx = store.begin();
            let mut lines = Vec::new();
            for y in first.saturating_sub(1)..=(last + 1).min(HEIGHT - 1) {
                if let Some(row) = tx.get(front, &Value::U32(y)).map_err(fail)? {
                    let Some(Value::Bytes(cells)) = row.get(2) else {
                        return Err(CliError::new(format!("line {y} holds no cells")));
                    };
                    lines.push((y, cells.clone()));
                }
            }
            let band = simulation::Band::new(lines);
            let mut columns = Vec::new();
            for y in band.lines_in(region, &self.world) {
                // The store keeps the row, so each line gets its own vector, as on the host
                // side of the module's update.
                let mut cells = Vec::with_capacity(WIDTH as usize);
                band.next_line_into(y, &mut columns, &mut cells);
                tx.update(
                    back,
                    vec![Value::U32(y), Value::U32(region), Value::Bytes(cells)],
                )
                .map_err(fail)?;
            }
            self.seq += 1;
            tx.commit(CommitMeta {
                seq: self.seq,
                ..CommitMeta::default()
            })
            .map(drop)
            .map_err(fail)?;
        }
        self.tick += 1;
        Ok(())
    }
}

/// A node in memory, with no log, on `workers` workers.
fn memory_node(workers: usize) -> Result<Arc<Node>> {
    Node::open(NodeConfig {
        workers,
        durability: Durability::Off,
        ..NodeConfig::default()
    })
    .map_err(|e| CliError::new(format!("cannot open an in-memory node: {e}")))
}

/// Installs the simulation on `node` and seeds the bench's world.
fn seeded_simulation(node: &Node) -> Result<()> {
    let wasm = embedded::wasm("simulation")
        .ok_or_else(|| CliError::new("this build does not carry `simulation`"))?;
    node.install(wasm)
        .map_err(|e| CliError::new(format!("cannot install simulation: {e}")))?;
    let seed = [
        Value::U32(WIDTH),
        Value::U32(HEIGHT),
        Value::U32(REGIONS),
        Value::U64(42),
    ];
    match node.call_reducer_values("simulation", "seed", &seed) {
        Ok(Outcome::Committed { .. }) => Ok(()),
        Ok(other) => Err(CliError::new(format!(
            "seeding the simulation failed: {other:?}"
        ))),
        Err(e) => Err(CliError::new(format!("seeding the simulation failed: {e}"))),
    }
}

/// The median by throughput.
fn median(samples: &[Sample]) -> Sample {
    let mut sorted = samples.to_vec();
    sorted.sort_by(|a, b| a.throughput.total_cmp(&b.throughput));
    sorted[sorted.len() / 2]
}

/// How much faster `workers` threads finish a busy loop each than one thread finishes one:
/// the ceiling this machine gives any parallel code right now. Shared machines have spells
/// when their cores run slower together (another tenant, cores that share a physical one),
/// and this tells such a spell from a loss in the runtime.
fn plain_threads_speedup(workers: usize) -> f64 {
    fn spin() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..30_000_000u64 {
            x = std::hint::black_box(x.rotate_left(7).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ i);
        }
        std::hint::black_box(x);
    }
    if workers <= 1 {
        return 1.0;
    }
    let started = Instant::now();
    spin();
    let one = started.elapsed().as_secs_f64();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(spin);
        }
    });
    let many = started.elapsed().as_secs_f64();
    workers as f64 * one / many.max(1e-9)
}

fn median_f64(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(1.0)
}

/// The processor's model and the cores this process may use.
fn machine(cores: usize) -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    format!(
        "{model}, {cores} core(s) available, {}",
        std::env::consts::OS
    )
}

/// Speedup against workers for each workload, with the ideal line, as SVG.
fn plot(
    path: &std::path::Path,
    workloads: &[Workload],
    workers: &[usize],
    medians: &[Vec<Sample>],
) -> Result<()> {
    use plotters::prelude::*;
    let max_w = *workers.last().unwrap_or(&1) as f64;
    let max_speedup = medians
        .iter()
        .flat_map(|per| per.iter().map(|s| s.throughput / per[0].throughput))
        .fold(max_w, f64::max);
    let failed =
        |e: &dyn std::fmt::Display| CliError::new(format!("cannot draw {}: {e}", path.display()));
    let root = SVGBackend::new(path, (720, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| failed(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "interstice bench: speedup against workers",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d(1f64..max_w.max(2.0), 0f64..(max_speedup * 1.1).max(2.0))
        .map_err(|e| failed(&e))?;
    chart
        .configure_mesh()
        .light_line_style(RGBColor(240, 240, 240))
        .bold_line_style(RGBColor(200, 200, 200))
        .x_labels(max_w as usize)
        .x_label_formatter(&|w| format!("{w:.0}"))
        .y_label_formatter(&|s| format!("{s:.1}×"))
        .x_desc("workers")
        .y_desc("speedup over 1 worker")
        .draw()
        .map_err(|e| failed(&e))?;
    chart
        .draw_series(LineSeries::new(
            [(1.0, 1.0), (max_w, max_w)],
            BLACK.stroke_width(1),
        ))
        .map_err(|e| failed(&e))?
        .label("ideal")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK));
    for (i, (workload, per)) in workloads.iter().zip(medians).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = workers
            .iter()
            .zip(per)
            .map(|(&w, s)| (w as f64, s.throughput / per[0].throughput))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| failed(&e))?
            .label(format!("{workload:?}").to_lowercase())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| failed(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| failed(&e))?;
    root.present().map_err(|e| failed(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The native baseline is only a baseline if it computes what the module does: three
    /// ticks of it and three ticks of the module's steps reach the same world.
    #[test]
    fn the_native_steps_over_the_store_are_the_modules_steps() {
        let digest = |node: &Node| {
            node.call_query("simulation", "digest", &[Value::Bool(true)])
                .expect("digest")
        };
        let native = memory_node(1).expect("node");
        seeded_simulation(&native).expect("seed");
        let before = digest(&native);
        let mut steps = NativeSteps::new(native.store()).expect("tables");
        for _ in 0..3 {
            steps.tick(native.store()).expect("tick");
        }
        let wasm = memory_node(2).expect("node");
        seeded_simulation(&wasm).expect("seed");
        for outcome in wasm
            .call_many(&super::super::simulation::tick_calls(0, 3, REGIONS))
            .expect("ticks")
        {
            assert!(matches!(outcome, Outcome::Committed { .. }), "{outcome:?}");
        }
        assert_eq!(digest(&native), digest(&wasm));
        assert_ne!(digest(&native), before, "the world changed");
    }
}
