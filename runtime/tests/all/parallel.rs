//! The parallel scheduler end to end: real wasm modules with overlapping declared access give
//! byte-identical commit logs, tables and outcomes for 1 and 4 workers.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use interstice_abi::{Value, encode_into};
use interstice_runtime::{Clock, Durability, Node, NodeConfig, Outcome};
use interstice_store::Readable;

use crate::hello::build;

const MODULES: [&str; 3] = ["workload_a", "workload_b", "workload_c"];

/// A small deterministic generator, so both runs see the same calls.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn args(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    values.iter().for_each(|v| encode_into(v, &mut out));
    out
}

/// One random call: a module, a reducer and its encoded arguments.
fn random_call(rng: &mut Rng) -> (&'static str, String, Vec<u8>) {
    let module = MODULES[rng.below(3) as usize];
    let key = Value::U64(rng.below(6));
    let (reducer, args) = match rng.below(13) {
        0..=3 => (
            format!("spin{}", rng.below(16)),
            args(&[key, Value::U32(rng.below(200) as u32)]),
        ),
        4 => ("transfer".into(), args(&[key, Value::U64(rng.below(50))])),
        5 => ("mix".into(), args(&[key])),
        6 => ("fail_after_write".into(), args(&[key])),
        7 => ("sweep".into(), args(&[key])),
        8 => ("pull".into(), args(&[key])),
        9 => (
            "relay".into(),
            args(&[key, Value::U32(rng.below(100) as u32)]),
        ),
        10 => ("relay_fail".into(), args(&[key])),
        _ => ("copy_value".into(), args(&[key])),
    };
    (module, reducer, args)
}

struct Run {
    outcomes: Vec<Outcome>,
    tables: Vec<(String, Vec<Vec<Value>>)>,
    log: Vec<u8>,
    _dir: tempfile::TempDir,
}

fn run(workers: usize, wasm: &[Vec<u8>]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let (clock, time) = Clock::manual(1_700_000_000_000_000);
    let node = Node::open(NodeConfig {
        data_dir: Some(dir.path().to_owned()),
        workers,
        clock,
        seed: 7,
        // Records are still written; only the fsyncs are skipped, to keep the test quick.
        durability: Durability::Off,
        ..NodeConfig::default()
    })
    .unwrap();
    assert_eq!(node.workers(), workers);
    for bytes in wasm {
        node.install(bytes).unwrap();
    }
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut outcomes = Vec::new();
    // Batches of 50 enter the ingress together, so the scheduler has parallel work.
    for _ in 0..40 {
        let calls: Vec<(&str, String, Vec<u8>)> = (0..50).map(|_| random_call(&mut rng)).collect();
        let calls: Vec<(&str, &str, Vec<u8>)> = calls
            .iter()
            .map(|(m, r, a)| (*m, r.as_str(), a.clone()))
            .collect();
        outcomes.extend(node.call_many(&calls).unwrap());
        time.fetch_add(1_000, Ordering::SeqCst);
    }
    let mut tables = Vec::new();
    for info in node.store().tables() {
        let rows = node
            .store()
            .read()
            .scan(info.id)
            .unwrap()
            .map(|r| r.to_vec())
            .collect();
        tables.push((info.name, rows));
    }
    drop(node);
    let log = log_records(&dir.path().join("store"));
    Run {
        outcomes,
        tables,
        log,
        _dir: dir,
    }
}

/// The bytes of every log segment, in order. Segment boundaries follow snapshots, which a
/// background thread takes, so compare the records, not the files: skip each file's header.
pub fn log_records(dir: &Path) -> Vec<u8> {
    let mut files: Vec<PathBuf> = crate::files_under(dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "seg" || e == "hist"))
        .collect();
    files.sort_by_key(|p| p.file_name().map(|n| n.to_owned()));
    let mut out = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        out.extend_from_slice(bytes.get(8..).unwrap_or_default());
    }
    out
}

#[test]
fn two_thousand_random_calls_commit_identically_on_one_and_four_workers() {
    let wasm: Vec<Vec<u8>> = MODULES.iter().map(|m| build(m)).collect();
    let serial = run(1, &wasm);
    let parallel = run(4, &wasm);

    assert_eq!(serial.outcomes.len(), 2000);
    let committed = serial.outcomes.iter().filter(|o| o.is_committed()).count();
    assert!(committed > 1500, "most calls commit ({committed})");
    assert!(committed < 2000, "fail_after_write fails");
    assert_eq!(
        serial.outcomes, parallel.outcomes,
        "same outcome for every call"
    );
    assert_eq!(serial.tables, parallel.tables, "same table contents");
    assert!(
        serial.log.len() > 50_000,
        "the log holds the calls ({} bytes)",
        serial.log.len()
    );
    assert!(serial.log == parallel.log, "byte-identical commit logs");
    // The subscription fired once per committed `mix`, in every module.
    for module in MODULES {
        let counted = serial
            .tables
            .iter()
            .find(|(n, _)| n == &format!("{module}.t4"))
            .and_then(|(_, rows)| rows.iter().find(|r| r[0] == Value::U64(0)))
            .map(|r| r[1].clone());
        let logged = serial
            .tables
            .iter()
            .find(|(n, _)| n == &format!("{module}.log"))
            .map(|(_, rows)| rows.len() as u64)
            .unwrap_or(0);
        if logged > 0 {
            assert!(counted.is_some(), "{module}: count_log ran");
        }
    }
}

fn row(node: &Node, table: &str, key: u64) -> Option<Vec<Value>> {
    let id = node.store().table_id(table).unwrap();
    node.store()
        .read()
        .get(id, &Value::U64(key))
        .unwrap()
        .map(|r| r.to_vec())
}

#[test]
fn nested_calls_run_in_the_callers_transaction() {
    let node = Node::open(NodeConfig {
        workers: 2,
        ..NodeConfig::default()
    })
    .unwrap();
    for module in MODULES {
        node.install(&build(module)).unwrap();
    }
    let call = |module: &str, reducer: &str, values: &[Value]| {
        node.call_reducer(module, reducer, &args(values)).unwrap()
    };

    // A reducer calling another module's reducer: both writes commit together.
    assert!(call("workload_a", "relay", &[Value::U64(3), Value::U32(10)]).is_committed());
    assert_eq!(row(&node, "workload_a.t8", 3).unwrap()[1], Value::U64(10));
    assert!(
        row(&node, "workload_b.t9", 3).is_some(),
        "the callee wrote in the same transaction"
    );

    // A failing callee fails the caller, and neither's writes commit.
    let outcome = call("workload_a", "relay_fail", &[Value::U64(4)]);
    let Outcome::Failed { reason, .. } = outcome else {
        panic!("relay_fail committed")
    };
    let message = reason.to_string();
    assert!(
        message.contains("nested call to `workload_b.fail_after_write` failed: refused key 4"),
        "{message}"
    );
    assert!(row(&node, "workload_a.t8", 4).is_none());
    assert!(row(&node, "workload_b.t2", 4).is_none());

    // A panic fails the reducer with the panic's message, the reducer's name and the place.
    let outcome = call("workload_a", "panic_after_write", &[Value::U64(6)]);
    let Outcome::Failed { reason, .. } = outcome else {
        panic!("panic_after_write committed")
    };
    let message = reason.to_string();
    assert!(
        message.contains("panicked while running reducer `panic_after_write` at ")
            && message.contains("common.rs")
            && message.contains("no key 6 here"),
        "{message}"
    );
    assert!(row(&node, "workload_a.t2", 6).is_none());

    // `replace` hands back the row it replaced; `update` (in `upsert`) writes the same way.
    for (value, replaced) in [(5, 0), (9, 5), (2, 9)] {
        assert!(
            call(
                "workload_a",
                "exchange",
                &[Value::U64(7), Value::U64(value)]
            )
            .is_committed()
        );
        assert_eq!(
            row(&node, "workload_a.t11", 7).unwrap()[1],
            Value::U64(value)
        );
        assert_eq!(
            row(&node, "workload_a.t12", 7).unwrap()[1],
            Value::U64(replaced),
            "after setting {value}"
        );
    }

    // A reducer calling a query of another module.
    assert!(call("workload_b", "spin0", &[Value::U64(5), Value::U32(3)]).is_committed());
    let value = row(&node, "workload_b.t0", 5).unwrap()[1].clone();
    assert!(call("workload_a", "copy_value", &[Value::U64(5)]).is_committed());
    assert_eq!(row(&node, "workload_a.t10", 5).unwrap()[1], value);
}
