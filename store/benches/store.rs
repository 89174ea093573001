//! Store throughput: inserts, point lookups, logged commits with group commit, recovery replay.
//!
//! Run with `cargo bench -p interstice-store`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use interstice_abi::{Persistence, TableSchema, Type, TypeRegistry, Value};
use interstice_store::{CommitMeta, Durability, Lsn, Readable, Store, StoreConfig, TableId};

/// `items(id u64 pk, qty u64, delta i64, name String)`.
fn schema(persistence: Persistence) -> TableSchema {
    TableSchema::builder("items")
        .column("id", Type::U64)
        .column("qty", Type::U64)
        .column("delta", Type::I64)
        .column("name", Type::String)
        .primary_key("id")
        .persistence(persistence)
        .build()
        .expect("valid schema")
}

fn row(i: u64) -> Vec<Value> {
    vec![
        Value::U64(i),
        Value::U64(i * 3),
        Value::I64(-(i as i64)),
        Value::String(format!("item{}", i % 1000)),
    ]
}

fn table(store: &Store, persistence: Persistence) -> TableId {
    store
        .create_table(
            "bench",
            schema(persistence),
            Arc::new(TypeRegistry::default()),
        )
        .expect("table")
}

fn fill(store: &Store, t: TableId, from: u64, rows: u64, per_tx: u64) -> Lsn {
    let mut lsn = Lsn(0);
    let mut i = from;
    while i < from + rows {
        let mut tx = store.begin();
        for k in i..(i + per_tx).min(from + rows) {
            tx.insert(t, row(k)).expect("insert");
        }
        lsn = tx
            .commit(CommitMeta {
                seq: i,
                timestamp: i,
                meta: Vec::new(),
            })
            .expect("commit")
            .lsn;
        i += per_tx;
    }
    lsn
}

fn i_seq(base: u64, chunk: u64) -> u64 {
    base / 100 + chunk
}

fn quick(c: &mut Criterion) -> criterion::BenchmarkGroup<'_, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group("store");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g
}

fn benches(c: &mut Criterion) {
    let mut g = quick(c);

    const INSERTS: u64 = 20_000;
    g.throughput(Throughput::Elements(INSERTS));
    g.bench_function("insert_in_memory_1000_per_tx", |b| {
        b.iter_batched(
            || {
                let store = Store::in_memory();
                let t = table(&store, Persistence::Logged);
                // Rows are built outside the timing: that is the caller's work.
                let batches: Vec<Vec<Vec<Value>>> = (0..INSERTS / 1000)
                    .map(|b| (b * 1000..(b + 1) * 1000).map(row).collect())
                    .collect();
                (store, t, batches)
            },
            |(store, t, batches)| {
                for (seq, batch) in batches.into_iter().enumerate() {
                    let mut tx = store.begin();
                    for r in batch {
                        tx.insert(t, r).expect("insert");
                    }
                    let meta = CommitMeta {
                        seq: seq as u64,
                        ..CommitMeta::default()
                    };
                    black_box(tx.commit(meta).expect("commit").lsn);
                }
                // Returned, so dropping the table is not timed.
                store
            },
            BatchSize::PerIteration,
        )
    });

    // The runtime's unit of work: a reducer call that inserts one row. Fresh stores every 10k
    // calls (set up outside the timing) keep the table at a realistic, steady size.
    g.throughput(Throughput::Elements(1));
    for (name, persistent) in [
        ("single_row_tx_in_memory", false),
        ("single_row_tx_logged_batched", true),
    ] {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let dir = tempfile::tempdir().expect("tempdir");
                    let store = if persistent {
                        let config = StoreConfig::default().snapshot_every_bytes(None);
                        Store::open(dir.path(), config).expect("open").0
                    } else {
                        Store::in_memory()
                    };
                    let t = table(&store, Persistence::Logged);
                    let n = (iters - done).min(10_000);
                    let rows: Vec<Vec<Value>> = (0..n).map(row).collect();
                    let start = std::time::Instant::now();
                    for (seq, r) in rows.into_iter().enumerate() {
                        let mut tx = store.begin();
                        tx.insert(t, r).expect("insert");
                        let mut applied = tx.apply().expect("apply");
                        black_box(applied.take_changes());
                        let meta = CommitMeta {
                            seq: seq as u64,
                            ..CommitMeta::default()
                        };
                        black_box(store.log(applied, meta).expect("log"));
                    }
                    total += start.elapsed();
                    done += n;
                }
                total
            })
        });
    }

    let store = Store::in_memory();
    let t = table(&store, Persistence::Logged);
    const ROWS: u64 = 100_000;
    fill(&store, t, 0, ROWS, 10_000);
    let keys: Vec<Value> = (0..1000u64)
        .map(|i| Value::U64(i.wrapping_mul(0x9e37_79b9) % ROWS))
        .collect();
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("pk_lookup_view_table_ref", |b| {
        b.iter(|| {
            let view = store.read();
            let tr = view.table_ref(t).expect("table");
            for k in &keys {
                black_box(tr.get(k));
            }
        })
    });
    g.bench_function("pk_lookup_transaction_get", |b| {
        b.iter(|| {
            let tx = store.begin();
            for k in &keys {
                black_box(tx.get(t, k).expect("get"));
            }
        })
    });
    g.throughput(Throughput::Elements(ROWS));
    g.bench_function("scan_100k", |b| {
        b.iter(|| {
            let tx = store.begin();
            black_box(tx.scan(t).expect("scan").count())
        })
    });

    // Steady state: each iteration inserts a batch and deletes the previous one, so the table
    // stays small and the figure is about the commit path, not about a growing heap.
    const LOGGED: u64 = 10_000;
    g.throughput(Throughput::Elements(2 * LOGGED));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StoreConfig::default()
        .durability(Durability::Batched {
            max_delay: Duration::from_millis(2),
            max_bytes: 1 << 20,
        })
        .snapshot_every_bytes(None);
    let (logged, _) = Store::open(dir.path(), config).expect("open");
    let lt = table(&logged, Persistence::Logged);
    let mut next = 0;
    fill(&logged, lt, next, LOGGED, 100);
    g.bench_function("logged_commit_batched_100_per_tx", |b| {
        b.iter(|| {
            let mut lsn = Lsn(0);
            for chunk in 0..LOGGED / 100 {
                let mut tx = logged.begin();
                for k in 0..100 {
                    let i = next + chunk * 100 + k;
                    tx.delete(lt, &Value::U64(i)).expect("delete");
                    tx.insert(lt, row(i + LOGGED)).expect("insert");
                }
                let meta = CommitMeta {
                    seq: i_seq(next, chunk),
                    ..CommitMeta::default()
                };
                lsn = tx.commit(meta).expect("commit").lsn;
            }
            next += LOGGED;
            logged.wait_durable(lsn).expect("durable");
        })
    });
    drop(logged);

    // The runtime's committing thread under `Durability::EveryCommit`: one-row transactions
    // applied and logged one after another, then one wait for the last of every 100 (as the
    // callers waiting for their calls do). Before group commit, every `log` fsynced.
    g.throughput(Throughput::Elements(100));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StoreConfig::default()
        .durability(Durability::EveryCommit)
        .snapshot_every_bytes(None);
    let (every, _) = Store::open(dir.path(), config).expect("open");
    let et = table(&every, Persistence::Logged);
    let mut seq = 0u64;
    g.bench_function("every_commit_log_100_then_wait", |b| {
        b.iter(|| {
            let mut lsn = Lsn(0);
            for _ in 0..100 {
                seq += 1;
                let mut tx = every.begin();
                tx.insert(et, row(seq)).expect("insert");
                let applied = tx.apply().expect("apply");
                let meta = CommitMeta {
                    seq,
                    ..CommitMeta::default()
                };
                lsn = every.log(applied, meta).expect("log");
            }
            every.wait_durable(lsn).expect("durable");
        })
    });
    drop(every);

    const REPLAY: u64 = 200_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StoreConfig::default()
        .durability(Durability::Off)
        .snapshot_every_bytes(None);
    {
        let (s, _) = Store::open(dir.path(), config.clone()).expect("open");
        let t = table(&s, Persistence::Logged);
        fill(&s, t, 0, REPLAY, 1000);
    }
    g.throughput(Throughput::Elements(REPLAY));
    g.bench_function("recovery_replay_200k", |b| {
        // Each store is dropped (unlocking the directory) outside the timing.
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = std::time::Instant::now();
                let (s, report) = Store::open(dir.path(), config.clone()).expect("open");
                total += start.elapsed();
                assert_eq!(report.mutations_replayed, REPLAY);
                drop(s);
            }
            total
        })
    });
    g.finish();
}

criterion_group!(store, benches);
criterion_main!(store);
