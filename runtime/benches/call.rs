//! End-to-end cost of one reducer call through the node's call path (no network), serial,
//! against the same logic as plain Rust over the store.
//!
//! `cargo bench -p interstice-runtime --bench call`

use criterion::{Criterion, criterion_group, criterion_main};
use interstice_abi::Value;
use interstice_runtime::testing::call_probe_node;
use interstice_store::{CommitMeta, Store};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("call");
    group.sample_size(20);
    group.measurement_time(std::time::Duration::from_secs(3));

    // One worker: the serial call path (the scaling bench covers parallel windows).
    let node = call_probe_node();
    group.bench_function("wasm/empty_reducer", |b| {
        b.iter(|| node.call_reducer("probe", "empty", &[]).expect("call"))
    });
    group.bench_function("wasm/insert_one_row", |b| {
        b.iter(|| node.call_reducer("probe", "insert", &[]).expect("call"))
    });
    // 64 updates of one row in one call: less the empty call, the per-row cost of an update
    // inside a reducer (host call, decoding, the transaction's overlay, apply).
    group.bench_function("wasm/update_64_rows", |b| {
        b.iter(|| node.call_reducer("probe", "update64", &[]).expect("call"))
    });

    // The same logic without wasm: one transaction inserting one row, applied and logged.
    let store = node.store().clone();
    let items = store.table_id("probe.items").expect("table");
    let mut seq = 1 << 40;
    group.bench_function("native/insert_one_row", |b| {
        b.iter(|| {
            let mut tx = Store::begin(&store);
            tx.insert(items, vec![Value::U64(0), Value::U64(7)])
                .expect("insert");
            seq += 1;
            tx.commit(CommitMeta {
                seq,
                ..CommitMeta::default()
            })
            .expect("commit")
        })
    });
    group.bench_function("native/empty_transaction", |b| {
        b.iter(|| {
            seq += 1;
            store
                .begin()
                .commit(CommitMeta {
                    seq,
                    ..CommitMeta::default()
                })
                .expect("commit")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
