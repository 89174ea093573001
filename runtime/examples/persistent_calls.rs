//! `hello.hello` calls on a persistent node, each with its `on_greeting` trigger:
//! `cargo run --release -p interstice-runtime --example persistent_calls`.
//!
//! `Durability::Off` and one worker, so what is measured is the serial commit path (log
//! records, kept triggers, kept feed changes) rather than fsync. Prints the median of 7 runs of
//! 20 000 calls, without and then with a remote-style subscriber on `hello.greetings`, whose
//! feed is durable.

use std::sync::Arc;
use std::time::Instant;

use interstice_abi::{TableEvent, Value, encode};
use interstice_build::workspace_module;
use interstice_runtime::{FeedSink, Node, NodeConfig};
use interstice_store::Durability;

fn main() {
    for subscribed in [false, true] {
        measure(subscribed);
    }
}

fn measure(subscribed: bool) {
    let wasm = workspace_module("hello");
    let args = encode(&Value::from("Ada"));
    let calls = 20_000;
    let mut runs = Vec::new();
    for _ in 0..7 {
        let dir = tempfile::tempdir().expect("temporary directory");
        let node = Node::open(NodeConfig {
            data_dir: Some(dir.path().to_owned()),
            durability: Durability::Off,
            workers: 1,
            ..NodeConfig::default()
        })
        .expect("open node");
        node.install(&wasm).expect("install hello");
        let (events, mut rx) = tokio::sync::mpsc::channel(64);
        if subscribed {
            let sink = FeedSink {
                tag: 1,
                events,
                lagged: Arc::new(tokio::sync::Notify::new()),
            };
            node.subscribe_table("hello", "greetings", TableEvent::Insert, sink, None)
                .expect("subscribe");
        }
        let start = Instant::now();
        for _ in 0..calls {
            let outcome = node.call_reducer("hello", "hello", &args).expect("call");
            assert!(outcome.is_committed());
            // Drained as it goes, as a connection's writer would.
            while rx.try_recv().is_ok() {}
        }
        runs.push(start.elapsed().as_secs_f64() * 1e6 / f64::from(calls));
    }
    runs.sort_by(f64::total_cmp);
    let shown: Vec<String> = runs.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "persistent hello.hello (with its trigger){}: median {:.2} µs per call; runs {}",
        if subscribed { ", subscribed" } else { "" },
        runs[runs.len() / 2],
        shown.join(", ")
    );
}
