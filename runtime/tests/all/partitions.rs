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
    /// The `forecast` query's digest, asked before the first tick, of the world `TICKS` later.
    forecast: u64,
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
    let forecast = match node
        .call_query(
            "simulation",
            "forecast",
            &[Value::Bool(false), Value::U32(TICKS as u32)],
        )
        .unwrap()
    {
        Value::U64(d) => d,
        other => panic!("a digest, not {other:?}"),
    };
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
        forecast,
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
    assert_eq!(
        one.forecast, expected.0,
        "the forecast, one query running the plain-Rust tick in wasm, saw it coming"
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

/// `probe` with `items` partitioned by `v` and rows (1, v = 3), (2, v = 5); reducers taking
/// `p: u64` that get, update or delete by primary key with only `items[p]` declared.
fn keyed_probe() -> std::sync::Arc<Node> {
    use interstice_store::Readable;
    let part = |name: &str, write: bool| {
        let declared = vec!["items[p]".to_owned()];
        let access = if write {
            Access {
                reads: vec![],
                writes: declared,
                calls: vec![],
            }
        } else {
            Access {
                reads: declared,
                writes: vec![],
                calls: vec![],
            }
        };
        (name.to_owned(), Some(access))
    };
    let reducers = [
        ("seed".to_owned(), None),
        part("get_1", false),
        part("get_99", false),
        part("update_99", true),
        part("delete_1", true),
    ];
    let named: Vec<(&str, Option<Access>)> = reducers
        .iter()
        .map(|(n, a)| (n.as_str(), a.clone()))
        .collect();
    let mut schema = probe_schema(&named);
    schema.tables[0].indexes.push(IndexSchema {
        column: "v".into(),
        kind: IndexKind::Partition,
        unique: false,
    });
    for reducer in &mut schema.reducers[1..] {
        reducer.args = vec![Field::new("p", Type::U64)];
    }
    let key = |k: u64| format!("(i64.store (i32.const 900) (i64.const {k}))");
    let get = |k: u64| {
        format!(
            "{} (drop (call $get (call $items) (i32.const 900) (i32.const 8))) (i32.const 0)",
            key(k)
        )
    };
    let bodies = [
        "(drop (call $insert_value (i64.const 3))) (drop (call $insert_value (i64.const 5))) (i32.const 0)".to_owned(),
        get(1),
        get(99),
        // The new row (99, v = 3) is in partition 3; no row 99 exists.
        "(i64.store (i32.const 900) (i64.const 99)) (i64.store (i32.const 908) (i64.const 3)) (drop (call $update (call $items) (i32.const 900) (i32.const 16))) (i32.const 0)".to_owned(),
        format!(
            "{} (drop (call $delete (call $items) (i32.const 900) (i32.const 8))) (i32.const 0)",
            key(1)
        ),
    ];
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let wasm = interstice_runtime::testing::module_importing(
        &schema,
        ABI_VERSION,
        r#"(import "interstice" "get" (func $get (param i32 i32 i32) (result i64)))
  (import "interstice" "update" (func $update (param i32 i32 i32) (result i64)))
  (import "interstice" "delete" (func $delete (param i32 i32 i32) (result i64)))"#,
        &bodies,
    );
    let node = Node::open(NodeConfig::default()).unwrap();
    node.install(&wasm).unwrap();
    assert!(
        node.call_reducer("probe", "seed", &[])
            .unwrap()
            .is_committed()
    );
    let items = node.store().table_id("probe.items").unwrap();
    let rows: Vec<Vec<Value>> = node
        .store()
        .read()
        .scan(items)
        .unwrap()
        .map(|r| r.to_vec())
        .collect();
    assert_eq!(
        rows,
        [
            vec![Value::U64(1), Value::U64(3)],
            vec![Value::U64(2), Value::U64(5)]
        ]
    );
    node
}

fn failure(node: &Node, reducer: &str, p: u64) -> Option<String> {
    match node
        .call_reducer("probe", reducer, &encode(&Value::U64(p)))
        .unwrap()
    {
        Outcome::Committed { .. } => None,
        Outcome::Failed { reason, .. } => Some(reason.to_string()),
    }
}

/// A reducer holding partitions of a table may reach a row by its primary key only if the row
/// is in one of them. A key that reaches no row fails the same way, with the same message: a
/// reducer running beside it may be deleting that row in its own partition, so "absent" and
/// "elsewhere" must not give different outcomes (or the parallel run would differ from the
/// serial one).
#[test]
fn a_row_reached_by_key_must_be_in_a_declared_partition() {
    use interstice_store::Readable;
    let node = keyed_probe();
    // Row 1 is in partition 3.
    assert_eq!(failure(&node, "get_1", 3), None);
    let elsewhere = failure(&node, "get_1", 5).expect("row 1 is in partition 3, not 5");
    assert!(
        elsewhere
            .contains("gets key 1 of `probe.items`, which is in none of the partitions it reads"),
        "{elsewhere}"
    );
    assert!(elsewhere.contains("items[p]: v = 5"), "{elsewhere}");
    // Absent, it fails exactly as present elsewhere would (only the key differs).
    let absent = failure(&node, "get_99", 5).expect("no row 99");
    assert_eq!(
        absent,
        elsewhere
            .replace("key 1", "key 99")
            .replace("get_1", "get_99")
    );
    // An update or delete by a key that reaches nothing fails too, where a table held whole
    // would let the reducer handle "no such row".
    let update = failure(&node, "update_99", 3).expect("no row 99 to update");
    assert!(
        update.contains(
            "updates key 99 of `probe.items`, which is in none of the partitions it writes"
        ),
        "{update}"
    );
    let delete = failure(&node, "delete_1", 5).expect("row 1 is in partition 3");
    assert!(delete.contains("deletes key 1"), "{delete}");
    assert_eq!(failure(&node, "delete_1", 3), None);
    let items = node.store().table_id("probe.items").unwrap();
    assert_eq!(node.store().read().len(items).unwrap(), 1);
}
