//! Two threads transacting on the same tables at once, each in partitions of its own, as a
//! node's workers do for a simulation's steps: what sharing the tables costs per transaction,
//! against one thread alone, measured in the same run.
//!
//! `cargo run --release -p interstice-store --example shared_tables -- [seconds] [rounds]
//! [shared|own|own-back]`
//!
//! Each transaction reads one row of a small table every thread reads (`world`), the rows of
//! its partition and one beside it in `front`, and updates the rows of its partition in
//! `back` (8 rows of 512 bytes), then applies and logs. Rounds alternate one thread and two;
//! it prints transactions per second for each and the ratio of two threads to one (2.00 when
//! sharing costs nothing). With `own`, each thread has tables of its own instead (the same
//! work, nothing shared but the store): what is left is the store's own serial parts. With
//! `own-back`, the threads share the tables they read and each writes a table of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use interstice_abi::{IndexKind, Persistence, TableSchema, Type, TypeRegistry, Value};
use interstice_store::{CommitMeta, Readable, Store, TableId};

const REGIONS: u32 = 32;
const LINES: u32 = 8;

fn lines_table(store: &Store, name: &str) -> TableId {
    let schema = TableSchema::builder(name)
        .column("y", Type::U32)
        .column("region", Type::U32)
        .column("cells", Type::Bytes)
        .primary_key("y")
        .index("region", IndexKind::Partition, false)
        .persistence(Persistence::Stateful)
        .build()
        .expect("a valid schema");
    store
        .create_table("bench", schema, Arc::new(TypeRegistry::default()))
        .expect("a new table")
}

fn world_table(store: &Store, name: &str) -> TableId {
    let schema = TableSchema::builder(format!("{name}world"))
        .column("id", Type::U32)
        .column("width", Type::U32)
        .primary_key("id")
        .build()
        .expect("a valid schema");
    store
        .create_table("bench", schema, Arc::new(TypeRegistry::default()))
        .expect("a new table")
}

struct Tables {
    world: TableId,
    front: TableId,
    back: TableId,
}

fn seed(store: &Store, name: &str) -> Tables {
    let tables = Tables {
        world: world_table(store, name),
        front: lines_table(store, &format!("{name}front")),
        back: lines_table(store, &format!("{name}back")),
    };
    let mut tx = store.begin();
    tx.insert(tables.world, vec![Value::U32(0), Value::U32(512)])
        .expect("insert");
    for y in 0..REGIONS * LINES {
        for t in [tables.front, tables.back] {
            let row = vec![
                Value::U32(y),
                Value::U32(y / LINES),
                Value::Bytes(vec![1; 512]),
            ];
            tx.insert(t, row).expect("insert");
        }
    }
    let _ = tx.commit(CommitMeta::default()).expect("commit");
    tables
}

/// One step of `region`: the reads and writes described above.
fn step(store: &Store, t: &Tables, region: u32, seq: u64) {
    let mut tx = store.begin();
    let world = tx.get(t.world, &Value::U32(0)).expect("get");
    assert!(world.is_some(), "the world row exists");
    let lines = tx
        .find(t.front, "region", &Value::U32(region))
        .expect("find");
    assert_eq!(lines.len(), LINES as usize);
    let beside = (region * LINES + LINES) % (REGIONS * LINES);
    let below = tx.get(t.front, &Value::U32(beside)).expect("get");
    for line in &lines {
        let y = line[0].clone();
        let cells = match (&line[2], &below) {
            (Value::Bytes(c), Some(_)) => c.clone(),
            _ => vec![0; 512],
        };
        tx.update(t.back, vec![y, Value::U32(region), Value::Bytes(cells)])
            .expect("update");
    }
    let applied = tx.apply().expect("apply");
    store
        .log(
            applied,
            CommitMeta {
                seq,
                ..CommitMeta::default()
            },
        )
        .expect("log");
}

/// Transactions per second with `threads` threads for `time`, thread `i` taking the regions
/// `i`, `i + threads`, …
fn run(store: &Arc<Store>, tables: &Arc<Vec<Tables>>, threads: u32, time: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (store, tables, stop, done) =
                (store.clone(), tables.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                let mut region = i;
                while !stop.load(Ordering::Relaxed) {
                    step(&store, &tables[i as usize % tables.len()], region, n);
                    region = (region + threads) % REGIONS;
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(time);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("a bench thread panicked");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let rounds: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let mode = args.get(3).map_or("shared", String::as_str);
    let store = Arc::new(Store::in_memory());
    let mut sets: Vec<Tables> = match mode {
        "shared" => vec![seed(&store, "t0")],
        "own" | "own-back" => vec![seed(&store, "t0"), seed(&store, "t1")],
        other => {
            eprintln!("unknown mode `{other}`: use shared, own or own-back");
            std::process::exit(2);
        }
    };
    if mode == "own-back" {
        sets[1].world = sets[0].world;
        sets[1].front = sets[0].front;
    }
    let tables = Arc::new(sets);
    let time = Duration::from_secs_f64(seconds);
    run(&store, &tables, 2, Duration::from_millis(200));
    let mut ratios = Vec::new();
    for _ in 0..rounds {
        let one = run(&store, &tables, 1, time);
        let two = run(&store, &tables, 2, time);
        ratios.push(two / one);
        println!(
            "1 thread {:>9.0} tx/s   2 threads {:>9.0} tx/s   ratio {:.2}",
            one,
            two,
            two / one
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!("median ratio {:.2}", ratios[ratios.len() / 2]);
}
