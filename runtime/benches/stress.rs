//! Attacks on a node's network, and what they cost it:
//! `cargo bench -p interstice-runtime --bench stress` (about a minute and a half).
//!
//! An in-process server (memory-only node, `hello` installed, default limits but a 3 s idle
//! timeout so that its effect shows) attacked over loopback as an outsider would. For each
//! attack: the process's resident memory (the most `VmRSS` of /proc/self/status seen while it
//! lasts; the attackers' sockets cost little next to it) and the round trip of a well-behaved
//! client's pings (p50/p99), next to a baseline without attack; for the query attack, the
//! latency of a commit instead. docs/RELIABILITY.md ("Network") has the figures.
//! A plain binary rather than criterion: percentiles and memory are the numbers wanted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use interstice_abi::{Value, encode};
use interstice_build::workspace_module;
use interstice_runtime::net::{self, Client, ClientConfig, ClientKind, ServerConfig, proto};
use interstice_runtime::{Node, NodeConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "stress-token";
/// How long each measurement lasts.
const MEASURE: Duration = Duration::from_secs(3);
const IDLE_TIMEOUT: Duration = Duration::from_secs(3);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The process's resident memory, in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Samples RSS every 50 ms until dropped; `peak` is the most seen.
struct RssWatch {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssWatch {
    fn start() -> RssWatch {
        let peak = Arc::new(AtomicU64::new(rss_mib().to_bits()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let now = rss_mib();
                if now > f64::from_bits(p.load(Ordering::Relaxed)) {
                    p.store(now.to_bits(), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RssWatch { peak, stop }
    }

    fn peak(&self) -> f64 {
        f64::from_bits(self.peak.load(Ordering::Relaxed))
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Sequential pings for `MEASURE`; failed pings are counted apart.
async fn pings(client: &Client) -> (Vec<Duration>, usize) {
    let end = Instant::now() + MEASURE;
    let (mut samples, mut failed) = (Vec::new(), 0);
    while Instant::now() < end {
        match client.ping().await {
            Ok(rtt) => samples.push(rtt),
            Err(_) => {
                failed += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    samples.sort();
    (samples, failed)
}

fn row(what: &str, rss: f64, (samples, failed): &(Vec<Duration>, usize), notes: &str) {
    let us = |p| percentile(samples, p).as_secs_f64() * 1e6;
    let failed = if *failed > 0 {
        format!(", {failed} pings failed")
    } else {
        String::new()
    };
    println!(
        "{what:<52} {rss:>8.0} MiB   ping p50 {:>9.0} µs  p99 {:>9.0} µs   {notes}{failed}",
        us(0.5),
        us(0.99),
    );
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut bytes = (payload.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(payload);
    bytes
}

fn hello_frame(kind: ClientKind, node_id: Option<&str>) -> Vec<u8> {
    // The handshake's layout (interstice_runtime::net::proto): magic, version, postcard Hello.
    let mut body = proto::MAGIC.to_vec();
    body.extend_from_slice(&proto::PROTOCOL_VERSION.to_le_bytes());
    let hello = proto::Hello {
        kind,
        node_id: node_id.map(str::to_owned),
        expect_node: None,
        admin_token: None,
    };
    body.extend(postcard::to_allocvec(&hello).expect("encode hello"));
    frame(&body)
}

/// A raw connection through the handshake without the token; `None` if the node refused it.
async fn tokenless(addr: &str) -> Option<TcpStream> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(&hello_frame(ClientKind::Cli, None))
        .await
        .ok()?;
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await.ok()?;
    let mut welcome = vec![0; u32::from_be_bytes(header) as usize];
    stream.read_exact(&mut welcome).await.ok()?;
    let accepted = postcard::from_bytes::<proto::Welcome>(&welcome[6..]).ok()?;
    matches!(accepted, proto::Welcome::Accepted { .. }).then_some(stream)
}

/// How many of `streams` the node has closed (a read ends or fails at once).
async fn closed_by_node(streams: &mut [TcpStream]) -> usize {
    let mut closed = 0;
    for stream in streams {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(20), stream.read(&mut byte)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            closed += 1;
        }
    }
    closed
}

/// Well-behaved clients ping often enough for the bench's short idle timeout.
fn client_config(token: Option<&str>) -> ClientConfig {
    ClientConfig {
        admin_token: token.map(str::to_owned),
        keep_alive: Some(IDLE_TIMEOUT / 3),
        ..ClientConfig::default()
    }
}

fn main() {
    // `cargo test --benches` runs the binary without `--bench`: nothing to smoke-test here
    // that the unit tests do not, and the attacks take a minute.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let node = Node::open(NodeConfig::default()).expect("open node");
    node.install(&workspace_module("hello"))
        .expect("install hello");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let config = ServerConfig {
        node_id: "stress".into(),
        admin_token: Some(TOKEN.into()),
        idle_timeout: IDLE_TIMEOUT,
        ..ServerConfig::default()
    };
    let server = runtime
        .block_on(net::serve(node.clone(), "127.0.0.1:0", config.clone()))
        .expect("serve");
    let addr = server.local_addr().to_string();
    println!(
        "limits: {} anonymous and {} node-to-node connections, {} in handshake, {} MiB of frame memory, idle timeout {IDLE_TIMEOUT:?}",
        config.max_anonymous_connections,
        config.max_peer_connections,
        config.max_handshakes,
        config.frame_memory >> 20
    );
    runtime.block_on(async {
        let probe = Client::connect(&addr, client_config(None))
            .await
            .expect("connect");
        for _ in 0..1000 {
            probe.ping().await.expect("warm up");
        }
        let watch = RssWatch::start();
        let base = pings(&probe).await;
        row("baseline", watch.peak(), &base, "");
        drop(watch);

        announce_large_frames(&addr, &probe).await;
        before_the_handshake(&addr, &probe).await;
        idle_connections(&addr, &probe).await;
        frames_that_fill_the_budget(&addr, &probe).await;
    });
    queries_against_commits(&node, &addr, &runtime);
    runtime.block_on(server.shutdown());
}

/// Attack 1: 100 tokenless connections announce 64 MiB frames and send 10 bytes.
async fn announce_large_frames(addr: &str, probe: &Client) {
    let watch = RssWatch::start();
    let mut held = Vec::new();
    for _ in 0..100 {
        if let Some(mut stream) = tokenless(addr).await {
            let mut bytes = (64u32 << 20).to_be_bytes().to_vec();
            bytes.extend_from_slice(&[7; 10]);
            let _ = stream.write_all(&bytes).await;
            held.push(stream);
        }
    }
    let measured = pings(probe).await;
    row(
        "100 tokenless conns announce 64 MiB, send 10 bytes",
        watch.peak(),
        &measured,
        &format!("{} held", held.len()),
    );
}

/// Attack 2: 40 connections announce 64 MiB frames before the handshake.
async fn before_the_handshake(addr: &str, probe: &Client) {
    let watch = RssWatch::start();
    let mut held = Vec::new();
    for _ in 0..40 {
        if let Ok(mut stream) = TcpStream::connect(addr).await {
            let mut bytes = (64u32 << 20).to_be_bytes().to_vec();
            bytes.extend_from_slice(&[7; 10]);
            let _ = stream.write_all(&bytes).await;
            held.push(stream);
        }
    }
    let measured = pings(probe).await;
    let closed = closed_by_node(&mut held).await;
    row(
        "40 pre-handshake conns announce 64 MiB",
        watch.peak(),
        &measured,
        &format!("{closed}/{} closed by the node", held.len()),
    );
}

/// Attack 3: 250 idle tokenless connections, then new clients of each kind.
async fn idle_connections(addr: &str, probe: &Client) {
    let watch = RssWatch::start();
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..250 {
        match tokenless(addr).await {
            Some(stream) => held.push(stream),
            None => refused += 1,
        }
    }
    let verdict = |r: Result<Client, net::NetError>| match r {
        Ok(_) => "in".to_owned(),
        Err(e) => format!("refused ({e})"),
    };
    let start = Instant::now();
    let admin = Client::connect(addr, client_config(Some(TOKEN))).await;
    let admin_time = start.elapsed();
    let anonymous = verdict(Client::connect(addr, client_config(None)).await);
    let peer = verdict(
        Client::connect(
            addr,
            ClientConfig {
                kind: ClientKind::Node,
                node_id: Some("peer-node".into()),
                ..client_config(None)
            },
        )
        .await,
    );
    let measured = pings(probe).await;
    row(
        "250 idle tokenless connections",
        watch.peak(),
        &measured,
        &format!("{} accepted, {refused} refused", held.len()),
    );
    println!(
        "    then: admin {} ({:.1} ms to connect); tokenless {anonymous}; peer {peer}",
        verdict(admin),
        admin_time.as_secs_f64() * 1e3
    );
    // The idle timeout gives the places back.
    tokio::time::sleep(IDLE_TIMEOUT + Duration::from_secs(1)).await;
    let closed = closed_by_node(&mut held).await;
    let later = verdict(Client::connect(addr, client_config(None)).await);
    println!(
        "    after the idle timeout: {closed}/{} closed by the node; tokenless {later}",
        held.len()
    );
}

/// Attack 4 (the budget): 8 tokenless connections each send 48 MiB of a 64 MiB frame, from a
/// small buffer sent again and again so that the attackers' memory stays small.
async fn frames_that_fill_the_budget(addr: &str, probe: &Client) {
    let watch = RssWatch::start();
    let mut senders = Vec::new();
    for _ in 0..8 {
        let Some(mut stream) = tokenless(addr).await else {
            continue;
        };
        senders.push(tokio::spawn(async move {
            let _ = stream.write_all(&(64u32 << 20).to_be_bytes()).await;
            let block = vec![7u8; 64 << 10];
            for _ in 0..(48 << 20) / block.len() {
                if stream.write_all(&block).await.is_err() {
                    break;
                }
            }
            stream
        }));
    }
    // Let them send what the node takes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let measured = pings(probe).await;
    row(
        "8 tokenless conns send 48 MiB of 64 MiB frames",
        watch.peak(),
        &measured,
        "frame memory: 256 MiB",
    );
    for sender in senders {
        sender.abort();
    }
}

/// Attack 5: 4 tokenless clients loop a query of about 100 ms while a client commits to
/// another module (`probe`, one row per call), so that the commits do not grow what the query
/// reads.
fn queries_against_commits(node: &Arc<Node>, addr: &str, runtime: &tokio::runtime::Runtime) {
    use interstice_runtime::testing::{module, probe_schema};
    let probe = module(
        &probe_schema(&[("insert", None)]),
        interstice_abi::ABI_VERSION,
        &["(drop (call $insert_row)) (i32.const 0)"],
    );
    node.install(&probe).expect("install probe");
    // Greetings until `get_greetings` takes about 100 ms in process, or until one more step
    // would make it run out of fuel (the node's per-call limit), whichever comes first.
    let name = encode(&Value::from("a greeting of some length"));
    let query_time = || {
        let start = Instant::now();
        let result = node.call_query("hello", "get_greetings", &[]);
        (start.elapsed(), result.is_ok())
    };
    let greet = |n: usize| {
        let calls: Vec<(&str, &str, &[u8])> = vec![("hello", "hello", &name); n];
        for outcome in node.call_reducers(&calls) {
            assert!(outcome.expect("call").is_committed());
        }
    };
    const STEP: usize = 2500;
    let mut rows = 0;
    loop {
        greet(STEP);
        rows += STEP;
        let (took, ok) = query_time();
        if !ok {
            // Start again with one step less.
            node.remove("hello").expect("remove hello");
            node.install(&workspace_module("hello"))
                .expect("install hello");
            rows -= STEP;
            greet(rows);
            break;
        }
        if took >= Duration::from_millis(100) || rows >= 400_000 {
            break;
        }
    }
    let (took, ok) = query_time();
    assert!(ok, "the calibrated query fails");
    println!(
        "query hello.get_greetings over {rows} rows: {:.0} ms in process (a step of {STEP} more rows runs out of fuel, or passes 100 ms)",
        took.as_secs_f64() * 1e3
    );
    runtime.block_on(async {
        // `probe` is private: the committing client is the admin.
        let committer = Client::connect(addr, client_config(Some(TOKEN)))
            .await
            .expect("connect");
        let commits = |committer: Client| async move {
            let end = Instant::now() + MEASURE;
            let mut samples = Vec::new();
            while Instant::now() < end {
                let start = Instant::now();
                let outcome = committer
                    .call_reducer("probe", "insert", Vec::new())
                    .await
                    .expect("commit");
                assert!(matches!(outcome, net::ReducerOutcome::Committed { .. }));
                samples.push(start.elapsed());
            }
            samples.sort();
            samples
        };
        let report = |what: &str, samples: &[Duration], notes: &str| {
            let ms = |p| percentile(samples, p).as_secs_f64() * 1e3;
            println!(
                "{what:<52} commit p50 {:>7.2} ms  p99 {:>7.2} ms   ({} commits) {notes}",
                ms(0.5),
                ms(0.99),
                samples.len()
            );
        };
        let quiet = commits(committer.clone()).await;
        report("commits, no queries", &quiet, "");

        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let mut loops = Vec::new();
        for _ in 0..4 {
            let client = Client::connect(addr, client_config(None))
                .await
                .expect("connect");
            let (stop, served) = (stop.clone(), served.clone());
            loops.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if client
                        .call_query("hello", "get_greetings", Vec::new())
                        .await
                        .is_ok()
                    {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let loaded = commits(committer).await;
        stop.store(true, Ordering::Relaxed);
        for l in loops {
            let _ = l.await;
        }
        report(
            "commits while 4 tokenless clients loop the query",
            &loaded,
            &format!("({} queries answered)", served.load(Ordering::Relaxed)),
        );
    });
    queries_in_process(node);
}

/// The same commits against the same query, without the network: whether commits wait for
/// queries in the node, or only for the CPU. Four threads loop `call_query` in process, then
/// four threads only burn CPU, while this thread commits to `probe`.
fn queries_in_process(node: &Arc<Node>) {
    let commits = || {
        let end = Instant::now() + MEASURE;
        let mut samples = Vec::new();
        while Instant::now() < end {
            let start = Instant::now();
            let outcome = node.call_reducer("probe", "insert", &[]).expect("commit");
            assert!(outcome.is_committed());
            samples.push(start.elapsed());
        }
        samples.sort();
        samples
    };
    let report = |what: &str, samples: &[Duration], notes: String| {
        let ms = |p| percentile(samples, p).as_secs_f64() * 1e3;
        println!(
            "{what:<52} commit p50 {:>7.2} ms  p99 {:>7.2} ms   ({} commits) {notes}",
            ms(0.5),
            ms(0.99),
            samples.len()
        );
    };
    let under = |what: &str, work: &(dyn Fn() + Sync)| {
        let stop = AtomicBool::new(false);
        let done = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        work();
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(500));
            let samples = commits();
            stop.store(true, Ordering::Relaxed);
            report(
                what,
                &samples,
                format!("({} loops done)", done.load(Ordering::Relaxed)),
            );
        });
    };
    report("in process: commits, no queries", &commits(), String::new());
    under("in process: 4 threads loop the query", &|| {
        let _ = node.call_query("hello", "get_greetings", &[]);
    });
    under("in process: 4 threads burn CPU (no node)", &|| {
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        std::hint::black_box(x);
    });
}
