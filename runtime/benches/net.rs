//! Remote reducer calls over loopback: `cargo bench -p interstice-runtime --bench net`.
//!
//! An in-process server (memory-only node, `hello` installed) and one client on the same
//! machine. Prints round-trip latency percentiles of sequential calls (ping, and
//! `hello.hello(name)`), and the throughput of pipelined calls from one connection with 64 in
//! flight. Then node to node: a second node with `modules/caller` bound to the first, and how
//! fast hello's commits reach it (remote subscription) and its remote calls commit on hello.
//! A plain binary rather than criterion: percentiles and calls/s are the numbers wanted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use interstice_abi::{Value, encode};
use interstice_build::workspace_module;
use interstice_runtime::net::{
    self, Client, ClientConfig, Peers, PeersConfig, ReducerOutcome, ServerConfig,
};
use interstice_runtime::{Node, NodeConfig};
use interstice_store::Readable;

const SEQUENTIAL: usize = 20_000;
const PIPELINED: usize = 200_000;
const IN_FLIGHT: usize = 64;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what:<44} p50 {:>7.1} µs   p99 {:>7.1} µs   p99.9 {:>7.1} µs   ({} calls)",
        percentile(&samples, 0.50).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
        percentile(&samples, 0.999).as_secs_f64() * 1e6,
        samples.len()
    );
}

/// The floor: a 16-byte echo between two threads over loopback with plain blocking sockets,
/// which is what any request/answer over TCP on this machine costs before any protocol. With
/// `poll`, the echoing side polls a non-blocking socket instead of sleeping in `read`, as the
/// server's workers do after each answer; with `poll_both`, the asking side does too.
fn tcp_echo(rounds: usize, poll: bool, poll_both: bool) -> Vec<Duration> {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let echo = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let _ = stream.set_nodelay(true);
        let _ = stream.set_nonblocking(poll);
        let mut buf = [0u8; 16];
        while read_full(&mut stream, &mut buf) {
            if stream.write_all(&buf).is_err() {
                return;
            }
        }
    });
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let _ = stream.set_nodelay(true);
    let _ = stream.set_nonblocking(poll_both);
    let mut buf = [7u8; 16];
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        stream.write_all(&buf).expect("write");
        assert!(read_full(&mut stream, &mut buf), "the echo closed");
        samples.push(start.elapsed());
    }
    drop(stream);
    let _ = echo.join();
    samples
}

/// Fills `buf` from a blocking or a non-blocking (polled) socket; `false` when it closed.
fn read_full(stream: &mut std::net::TcpStream, buf: &mut [u8]) -> bool {
    use std::io::Read;
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]) {
            Ok(0) => return false,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
    }
    true
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs a quick smoke version.
    let quick = !std::env::args().any(|a| a == "--bench");
    let scale = if quick { 100 } else { 1 };
    let wasm = workspace_module("hello");
    let workers = std::env::var("BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok());
    let node = Node::open(NodeConfig {
        workers: workers.unwrap_or(NodeConfig::default().workers),
        ..NodeConfig::default()
    })
    .expect("open node");
    node.install(&wasm).expect("install hello");
    let args = encode(&Value::from("Ada"));

    report(
        "tcp echo, plain sockets (floor)",
        tcp_echo(SEQUENTIAL / scale, false, false),
    );
    report(
        "tcp echo, the echoing side polls",
        tcp_echo(SEQUENTIAL / scale, true, false),
    );
    report(
        "tcp echo, both sides poll",
        tcp_echo(SEQUENTIAL / scale, true, true),
    );

    // The in-process baseline: what the network adds is the difference.
    let mut local = Vec::with_capacity(SEQUENTIAL / scale);
    for _ in 0..SEQUENTIAL / scale {
        let start = Instant::now();
        let outcome = node.call_reducer("hello", "hello", &args).expect("call");
        local.push(start.elapsed());
        assert!(outcome.is_committed());
    }
    report("in-process call_reducer", local);

    // The server on its own runtime, as in `interstice node start`; the client on the main
    // thread, as in the CLI's blocking client.
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let serve = |node_id: &str, busy_poll| {
        server_runtime
            .block_on(net::serve(
                node.clone(),
                "127.0.0.1:0",
                ServerConfig {
                    node_id: node_id.into(),
                    busy_poll,
                    ..ServerConfig::default()
                },
            ))
            .expect("serve")
    };
    let server = serve("bench", ServerConfig::default().busy_poll);
    // The same without the server's busy poll, to show what it buys.
    let unpolled = serve("bench-unpolled", Duration::ZERO);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let quiet = Client::connect(&unpolled.local_addr().to_string(), ClientConfig::default())
            .await
            .expect("connect");
        sequential(&quiet, &args, scale, " (no busy poll)").await;
        let client = Client::connect(&server.local_addr().to_string(), ClientConfig::default())
            .await
            .expect("connect");
        sequential(&client, &args, scale, "").await;

        let total = PIPELINED / scale;
        let start = Instant::now();
        let mut in_flight = FuturesUnordered::new();
        let mut sent = 0;
        let mut done = 0;
        while done < total {
            while sent < total && in_flight.len() < IN_FLIGHT {
                in_flight.push(client.call_reducer("hello", "hello", args.clone()));
                sent += 1;
            }
            if let Some(result) = in_flight.next().await {
                assert!(matches!(result, Ok(ReducerOutcome::Committed { .. })));
                done += 1;
            }
        }
        let elapsed = start.elapsed();
        println!(
            "remote call_reducer ({IN_FLIGHT} in flight)    {:>9.0} calls/s   ({total} calls in {:.2} s)",
            total as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64()
        );
    });

    node_to_node(&node, server.local_addr(), &runtime, &args, scale);
    server_runtime.block_on(server.shutdown());
    server_runtime.block_on(unpolled.shutdown());
}

/// Sequential pings and `hello.hello` calls: one in flight at a time.
async fn sequential(client: &Client, args: &[u8], scale: usize, label: &str) {
    for _ in 0..1000 / scale {
        client.ping().await.expect("warm up");
    }
    let mut pings = Vec::with_capacity(SEQUENTIAL / scale);
    for _ in 0..SEQUENTIAL / scale {
        pings.push(client.ping().await.expect("ping"));
    }
    report(&format!("remote ping{label}"), pings);

    let mut calls = Vec::with_capacity(SEQUENTIAL / scale);
    for _ in 0..SEQUENTIAL / scale {
        let start = Instant::now();
        let outcome = client
            .call_reducer("hello", "hello", args.to_vec())
            .await
            .expect("call");
        calls.push(start.elapsed());
        assert!(matches!(outcome, ReducerOutcome::Committed { .. }));
    }
    report(&format!("remote call_reducer{label}"), calls);
}

/// Rows in `table` of `node`.
fn rows(node: &Node, table: &str) -> usize {
    let id = node.store().table_id(table).expect("table");
    node.store().read().len(id).expect("count")
}

/// Waits until `node`'s `table` has `n` rows.
fn wait_rows(node: &Node, table: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while rows(node, table) < n {
        assert!(Instant::now() < deadline, "{table} never reached {n} rows");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A second node running `modules/caller`, bound to the hello node: how fast hello's commits
/// reach it through the remote subscription, and how fast its remote calls commit on hello.
fn node_to_node(
    hello: &Arc<Node>,
    hello_addr: std::net::SocketAddr,
    client_runtime: &tokio::runtime::Runtime,
    args: &[u8],
    scale: usize,
) {
    let wasm = workspace_module("caller");
    let caller = Node::open(NodeConfig::default()).expect("open caller");
    caller.install(&wasm).expect("install caller");
    let caller_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let peers = {
        let _inside = caller_runtime.enter();
        Peers::start(
            caller.clone(),
            PeersConfig {
                node_id: "caller".into(),
                addresses: [("hello_node".to_owned(), hello_addr.to_string())].into(),
                ..PeersConfig::default()
            },
        )
    };
    // Connecting greets hello once; that greeting comes back.
    wait_rows(&caller, "caller.received", 1);

    let total = PIPELINED / 10 / scale;
    let start = Instant::now();
    client_runtime.block_on(async {
        let client = Client::connect(&hello_addr.to_string(), ClientConfig::default())
            .await
            .expect("connect");
        let mut in_flight = FuturesUnordered::new();
        for _ in 0..total {
            in_flight.push(client.call_reducer("hello", "hello", args.to_vec()));
            if in_flight.len() >= IN_FLIGHT {
                in_flight.next().await;
            }
        }
        while in_flight.next().await.is_some() {}
    });
    wait_rows(&caller, "caller.received", 1 + total);
    let elapsed = start.elapsed();
    println!(
        "node to node: hello commits → caller's subscription {:>7.0} changes/s   ({total} in {:.2} s)",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );

    let greetings = rows(hello, "hello.greetings");
    let name = encode(&Value::from("node"));
    let calls: Vec<(&str, &str, &[u8])> = vec![("caller", "greet", &name); total];
    let start = Instant::now();
    for outcome in caller.call_reducers(&calls) {
        assert!(outcome.expect("greet").is_committed());
    }
    wait_rows(hello, "hello.greetings", greetings + total);
    let elapsed = start.elapsed();
    println!(
        "node to node: caller.greet → hello.hello     {:>7.0} calls/s     ({total} committed on hello in {:.2} s)",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    caller_runtime.block_on(peers.shutdown());
}
