//! Partitioned access end to end, with `modules/simulation`: the steps of one tick (each
//! writing its own partition) run together in one scheduler window, and the world after N
//! ticks is the one the plain-Rust tick computes, with the same commit log, at 1, 2, 4 and 8
//! workers. A reducer that strays outside its partitions fails with a message that names them.

use interstice_abi::{
    ABI_VERSION, Access, Field, IndexKind, IndexSchema, Type, Value, encode, encode_into,
};
use interstice_runtime::testing::{module, probe_schema};
use interstice_runtime::{Clock, Durability, Node, NodeConfig, Outcome};

use crate::hello::build;
use crate::parallel::log_records;

const WIDTH: u32 = 64;
const HEIGHT: u32 = 48;
const REGIONS: u32 = 8;
const TICKS: usize = 6;

struct Run {
    digest: u64,
    windows: u64,
    log: Vec<u8>,
}

fn run(workers: usize, wasm: &[u8]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    // Records carry the invocation's time: a clock that stands still, so runs compare.
    let (clock, _) = Clock::manual(1_700_000_000_000_000);
    let node = Node::open(NodeConfig {
        data_dir: Some(dir.path().to_owned()),
        workers,
        clock,
        durability: Durability::Off,
        ..NodeConfig::default()
    })
    .unwrap();
    node.install(wasm).unwrap();
    let mut seed = Vec::new();
    for v in [
        Value::U32(WIDTH),
        Value::U32(HEIGHT),
        Value::U32(REGIONS),
        Value::U64(42),
    ] {
        encode_into(&v, &mut seed);
    }
    let outcome = node.call_reducer("simulation", "seed", &seed).unwrap();
    assert!(outcome.is_committed(), "{outcome:?}");
    let before = node.stats().windows;
    for tick in 0..TICKS {
        let step = if tick % 2 == 0 {
            "step_even"
        } else {
            "step_odd"
        };
        let calls: Vec<(&str, &str, Vec<u8>)> = (0..REGIONS)
            .map(|r| ("simulation", step, encode(&Value::U32(r))))
            .collect();
        for outcome in node.call_many(&calls).unwrap() {
            assert!(matches!(outcome, Outcome::Committed { .. }), "{outcome:?}");
        }
    }
    let windows = node.stats().windows - before;
    // After an even number of ticks the world is back in `even`.
    let digest = match node
        .call_query("simulation", "digest", &[Value::Bool(TICKS % 2 == 1)])
        .unwrap()
    {
        Value::U64(d) => d,
        other => panic!("a digest, not {other:?}"),
    };
    drop(node);
    Run {
        digest,
        windows,
        log: log_records(&dir.path().join("store")),
    }
}

#[test]
fn a_ticks_steps_run_together_and_give_the_serial_world_at_any_worker_count() {
    let wasm = build("simulation");
    let mut world = simulation::initial_world(WIDTH, HEIGHT, 42);
    for _ in 0..TICKS {
        world = simulation::tick_native(&world);
    }
    let mut expected = simulation::Digest::new();
    for (y, cells) in (0..).zip(&world) {
        expected.line(y, cells);
    }

    let one = run(1, &wasm);
    assert_eq!(
        one.digest, expected.0,
        "one worker computes the plain-Rust world"
    );
    for workers in [2, 4, 8] {
        let many = run(workers, &wasm);
        assert_eq!(many.digest, one.digest, "{workers} workers");
        assert!(
            many.log == one.log,
            "{workers} workers wrote another commit log"
        );
        // The steps of a tick write different partitions of one table: one window per tick.
        assert_eq!(many.windows, TICKS as u64, "{workers} workers");
    }
}

/// `probe` with `items` partitioned by `v`, and a reducer `stray(p: u64)` that declares
/// `writes(items[p])` and inserts.
#[test]
fn touching_rows_outside_the_declared_partitions_is_refused_with_them_named() {
    let mut schema = probe_schema(&[(
        "stray",
        Some(Access {
            reads: vec![],
            writes: vec!["items[p]".into()],
            calls: vec![],
        }),
    )]);
    schema.tables[0].indexes.push(IndexSchema {
        column: "v".into(),
        kind: IndexKind::Partition,
        unique: false,
    });
    schema.reducers[0].args = vec![Field::new("p", Type::U64)];
    let wasm = module(
        &schema,
        ABI_VERSION,
        &["(drop (call $insert_row)) (i32.const 0)"],
    );
    let node = Node::open(NodeConfig::default()).unwrap();
    node.install(&wasm).unwrap();
    let outcome = node
        .call_reducer("probe", "stray", &encode(&Value::U64(3)))
        .unwrap();
    let Outcome::Failed { reason, .. } = outcome else {
        panic!("an insert with partition access must fail: {outcome:?}");
    };
    let reason = reason.to_string();
    assert!(reason.contains("inserts into `probe.items`"), "{reason}");
    assert!(reason.contains("items[p]"), "{reason}");
    assert!(reason.contains("whole table"), "{reason}");
}
