//! Pipelined remote calls against a node on disk, for each durability mode:
//! `cargo bench -p interstice-runtime --bench durable`.
//!
//! One client pipelines `hello.hello(name)` with 64 calls in flight over loopback to a node
//! whose data directory is in the system's temporary folder (set `TMPDIR` to measure another
//! disk), and prints calls/s, p50/p99 latency and commits per fsync for a memory-only node,
//! `Durability::Off` (logged, never fsynced), `Batched` and `EveryCommit` (the default). In the
//! same run it measures the disk's own floor: a 200-byte `write` + `fdatasync`, one at a time.
//! The same 64 spread over four connections shows concurrent clients sharing fsyncs. With
//! one call in flight, `EveryCommit` should cost about one fsync plus the call.
//! A plain binary rather than criterion: calls/s and percentiles are the numbers wanted.

use std::io::Write;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use interstice_abi::{Value, encode};
use interstice_build::workspace_module;
use interstice_runtime::net::{self, Client, ClientConfig, ReducerOutcome, ServerConfig};
use interstice_runtime::{Durability, Node, NodeConfig};

const IN_FLIGHT: usize = 64;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// `write` + `fdatasync` of 200 bytes to a file in `dir`, `rounds` times.
fn fsync_floor(dir: &std::path::Path, rounds: usize) -> Vec<Duration> {
    let mut file = std::fs::File::create(dir.join("floor")).expect("create");
    let bytes = [7u8; 200];
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            file.write_all(&bytes).expect("write");
            file.sync_data().expect("fsync");
            start.elapsed()
        })
        .collect()
}

struct Run {
    calls_per_s: f64,
    p50: Duration,
    p99: Duration,
    commits_per_fsync: Option<f64>,
}

impl Run {
    fn print(&self, label: &str) {
        println!(
            "  {label:<30} {:>9.0} calls/s   p50 {:>8.1} µs   p99 {:>8.1} µs   commits per fsync {}",
            self.calls_per_s,
            micros(self.p50),
            micros(self.p99),
            self.commits_per_fsync
                .map_or("-".to_owned(), |c| format!("{c:.1}"))
        );
    }
}

/// `total` calls from `connections` connections, `in_flight` at a time in all (shared
/// evenly), each timed from send to answer.
fn run(
    durability: Option<Durability>,
    total: usize,
    in_flight: usize,
    connections: usize,
    wasm: &[u8],
) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    let node = Node::open(NodeConfig {
        data_dir: durability.map(|_| dir.path().join("node")),
        durability: durability.unwrap_or(Durability::Off),
        ..NodeConfig::default()
    })
    .expect("open node");
    node.install(wasm).expect("install hello");
    let before = node.store().stats();
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = server_runtime
        .block_on(net::serve(
            node.clone(),
            "127.0.0.1:0",
            ServerConfig::default(),
        ))
        .expect("serve");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let address = server.local_addr().to_string();
    let (elapsed, mut latencies) = runtime.block_on(async {
        let mut clients = Vec::with_capacity(connections);
        for _ in 0..connections {
            clients.push(
                Client::connect(&address, ClientConfig::default())
                    .await
                    .expect("connect"),
            );
        }
        let args = encode(&Value::from("Ada"));
        let start = Instant::now();
        let share = total / connections;
        let per = (in_flight / connections).max(1);
        let runs = clients.iter().map(|client| {
            let args = args.clone();
            async move {
                let mut latencies = Vec::with_capacity(share);
                let mut pending = FuturesUnordered::new();
                let (mut sent, mut done) = (0, 0);
                while done < share {
                    while sent < share && pending.len() < per {
                        let call = client.call_reducer("hello", "hello", args.clone());
                        let sent_at = Instant::now();
                        pending.push(async move { (call.await, sent_at.elapsed()) });
                        sent += 1;
                    }
                    if let Some((outcome, latency)) = pending.next().await {
                        assert!(matches!(outcome, Ok(ReducerOutcome::Committed { .. })));
                        latencies.push(latency);
                        done += 1;
                    }
                }
                latencies
            }
        });
        let latencies: Vec<Duration> = futures_util::future::join_all(runs)
            .await
            .into_iter()
            .flatten()
            .collect();
        (start.elapsed(), latencies)
    });
    server_runtime.block_on(server.shutdown());
    let after = node.store().stats();
    latencies.sort();
    let fsyncs = after.log_fsyncs - before.log_fsyncs;
    let durable = after.records_durable - before.records_durable;
    Run {
        calls_per_s: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        commits_per_fsync: (fsyncs > 0).then(|| durable as f64 / fsyncs as f64),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs a quick smoke version.
    let quick = !std::env::args().any(|a| a == "--bench");
    let scale = if quick { 50 } else { 1 };
    let wasm = workspace_module("hello");
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut floor = fsync_floor(tmp.path(), 1000 / scale);
    floor.sort();
    println!(
        "disk floor: write 200 B + fdatasync          p50 {:>8.1} µs   p99 {:>8.1} µs   ({} in {})",
        micros(percentile(&floor, 0.5)),
        micros(percentile(&floor, 0.99)),
        floor.len(),
        tmp.path().display()
    );
    let modes: [(&str, Option<Durability>, usize); 4] = [
        ("memory only", None, 100_000),
        ("Off (logged, no fsync)", Some(Durability::Off), 100_000),
        (
            "Batched (fsync every 10 ms)",
            Some(Durability::Batched {
                max_delay: Duration::from_millis(10),
                max_bytes: 1 << 20,
            }),
            100_000,
        ),
        (
            "EveryCommit (the default)",
            Some(Durability::EveryCommit),
            50_000,
        ),
    ];
    println!("\n{IN_FLIGHT} calls in flight from one connection:");
    for (label, durability, total) in modes {
        let r = run(durability, total / scale, IN_FLIGHT, 1, &wasm);
        r.print(label);
    }
    println!(
        "\n{IN_FLIGHT} calls in flight from four connections ({} each):",
        IN_FLIGHT / 4
    );
    for (label, durability) in [
        ("Off (logged, no fsync)", Some(Durability::Off)),
        ("EveryCommit (the default)", Some(Durability::EveryCommit)),
    ] {
        let r = run(durability, 50_000 / scale, IN_FLIGHT, 4, &wasm);
        r.print(label);
    }
    println!("\none call in flight:");
    for (label, durability) in [
        ("Off (logged, no fsync)", Some(Durability::Off)),
        ("EveryCommit (the default)", Some(Durability::EveryCommit)),
    ] {
        let r = run(durability, 2000 / scale, 1, 1, &wasm);
        r.print(label);
    }
}
