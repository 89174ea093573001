//! Fixed call workloads for instruction counting (`valgrind --tool=callgrind`), where the
//! wall-clock `call` bench is too noisy on a shared machine: `cargo run --release -p
//! interstice-runtime --example call_profile -- <empty|insert|update64> <count>`. The node and module are
//! the `call` bench's: one worker, memory only.

use interstice_runtime::testing::call_probe_node;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reducer = args.get(1).map_or("empty", String::as_str);
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let node = call_probe_node();
    for _ in 0..n {
        let outcome = node.call_reducer("probe", reducer, &[]).expect("call");
        assert!(outcome.is_committed(), "{outcome:?}");
    }
}
