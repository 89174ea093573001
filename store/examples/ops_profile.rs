//! Fixed workloads for instruction counting (`valgrind --tool=callgrind`), where wall-clock
//! benchmarks are too noisy: `cargo run --release -p interstice-store --example ops_profile --
//! <single|single_logged|insert|get|logged|replay|replay_fill> <count>`.

use std::hint::black_box;
use std::sync::Arc;

use interstice_abi::{Persistence, TableSchema, Type, TypeRegistry, Value};
use interstice_store::{CommitMeta, Durability, Readable, Store, StoreConfig, TableId};

fn table(store: &Store) -> TableId {
    let schema = TableSchema::builder("items")
        .column("id", Type::U64)
        .column("qty", Type::U64)
        .column("delta", Type::I64)
        .column("name", Type::String)
        .primary_key("id")
        .persistence(Persistence::Logged)
        .build()
        .expect("schema");
    store
        .create_table("bench", schema, Arc::new(TypeRegistry::default()))
        .expect("table")
}

fn row(i: u64) -> Vec<Value> {
    vec![
        Value::U64(i),
        Value::U64(i * 3),
        Value::I64(-(i as i64)),
        Value::String(format!("item{}", i % 1000)),
    ]
}

fn meta(seq: u64) -> CommitMeta {
    CommitMeta {
        seq,
        ..CommitMeta::default()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("single", String::as_str);
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    match mode {
        "single" => {
            let store = Store::in_memory();
            let t = table(&store);
            for i in 0..n {
                let mut tx = store.begin();
                tx.insert(t, row(i)).expect("insert");
                let mut applied = tx.apply().expect("apply");
                black_box(applied.take_changes());
                black_box(store.log(applied, meta(i)).expect("log"));
            }
        }
        "single_logged" => {
            let dir = std::env::temp_dir().join(format!("ops_profile_{}", std::process::id()));
            let config = StoreConfig::default().snapshot_every_bytes(None);
            {
                let (store, _) = Store::open(&dir, config).expect("open");
                let t = table(&store);
                for i in 0..n {
                    let mut tx = store.begin();
                    tx.insert(t, row(i)).expect("insert");
                    let mut applied = tx.apply().expect("apply");
                    black_box(applied.take_changes());
                    black_box(store.log(applied, meta(i)).expect("log"));
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        "insert" => {
            let store = Store::in_memory();
            let t = table(&store);
            for b in 0..n / 1000 {
                let mut tx = store.begin();
                for i in b * 1000..(b + 1) * 1000 {
                    tx.insert(t, row(i)).expect("insert");
                }
                let _ = black_box(tx.commit(meta(b)).expect("commit"));
            }
        }
        "get" => {
            let store = Store::in_memory();
            let t = table(&store);
            let mut tx = store.begin();
            for i in 0..100_000 {
                tx.insert(t, row(i)).expect("insert");
            }
            let _ = black_box(tx.commit(meta(0)).expect("commit"));
            let tx = store.begin();
            for i in 0..n {
                black_box(
                    tx.get(t, &Value::U64(i.wrapping_mul(0x9e37_79b9) % 100_000))
                        .expect("get"),
                );
            }
        }
        "logged" | "replay" => {
            let dir = std::env::temp_dir().join(format!("ops_profile_{}", std::process::id()));
            let config = StoreConfig::default()
                .durability(Durability::Off)
                .snapshot_every_bytes(None);
            {
                let (store, _) = Store::open(&dir, config.clone()).expect("open");
                let t = table(&store);
                for b in 0..n / 100 {
                    let mut tx = store.begin();
                    for i in b * 100..(b + 1) * 100 {
                        if i >= 100 {
                            tx.delete(t, &Value::U64(i - 100)).expect("delete");
                        }
                        tx.insert(t, row(i)).expect("insert");
                    }
                    let _ = black_box(tx.commit(meta(b)).expect("commit"));
                }
            }
            if mode == "replay" {
                let (_store, report) = Store::open(&dir, config).expect("open");
                black_box(report);
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
        "replay_fill" => {
            // The recovery bench's log: `count` rows, 1000 per transaction.
            let dir = std::env::temp_dir().join(format!("ops_profile_{}", std::process::id()));
            let config = StoreConfig::default()
                .durability(Durability::Off)
                .snapshot_every_bytes(None);
            {
                let (store, _) = Store::open(&dir, config.clone()).expect("open");
                let t = table(&store);
                for b in 0..n / 1000 {
                    let mut tx = store.begin();
                    for i in b * 1000..(b + 1) * 1000 {
                        tx.insert(t, row(i)).expect("insert");
                    }
                    let _ = black_box(tx.commit(meta(b)).expect("commit"));
                }
            }
            let (_store, report) = Store::open(&dir, config).expect("open");
            black_box(report);
            let _ = std::fs::remove_dir_all(&dir);
        }
        other => panic!("unknown mode {other}"),
    }
}
