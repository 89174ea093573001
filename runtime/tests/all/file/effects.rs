//! File changes are effects of the commit: none for a failed reducer, visible to the reducer
//! that made them, written in commit order, identical at any worker count, never needed to
//! rebuild tables; and watched paths feed `file_changed` hooks.

use interstice_store::Readable;
use std::sync::atomic::Ordering;
use std::time::Duration;

use interstice_abi::{Value, encode_into};
use interstice_runtime::{Clock, Durability, FileConfig, Node, NodeConfig, Outcome};

use super::{Fixture, eventually, open, strings, tree, wasm};

#[test]
fn a_failed_reducer_leaves_no_file() {
    let f = Fixture::new();
    let message = f.refused("write_then_fail", &["ghost", "boo"]);
    assert!(message.contains("changed my mind"), "{message}");
    assert!(!f.folder().join("ghost").exists());
    assert!(
        f.refused("read", &["ghost"])
            .contains("`ghost` does not exist")
    );
    assert_eq!(f.stat("entries"), "0 of 10000");
}

#[test]
fn a_reducer_reads_its_own_pending_writes() {
    let f = Fixture::new();
    f.ok("mkdir", &["d"]);
    f.ok("write", &["d/old.txt", "old"]);
    f.ok("write_and_read", &["d/new.txt", "hello"]);
    assert_eq!(
        f.results(),
        ["d/new.txt=hello | d/new.txt: file 5 | d: new.txt/file, old.txt/file"]
    );
    assert_eq!(
        std::fs::read_to_string(f.folder().join("d/new.txt")).unwrap(),
        "hello"
    );
}

fn args(values: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    values
        .iter()
        .for_each(|v| encode_into(&Value::from(*v), &mut out));
    out
}

#[test]
fn writes_land_in_commit_order_and_each_call_sees_those_before_it() {
    let data = tempfile::tempdir().unwrap();
    let node = open(data.path(), 4, FileConfig::default());
    node.install(wasm()).unwrap();
    // One batch: one scheduler window, on four workers.
    let calls = [
        ("write", args(&["a", "1"])),
        ("append", args(&["a", "2"])),
        ("read", args(&["a"])),
        ("write", args(&["b", "x"])),
        ("copy", args(&["a", "c"])),
        ("append", args(&["a", "3"])),
        ("remove", args(&["b"])),
        ("read", args(&["c"])),
        ("read", args(&["a"])),
        ("read", args(&["b"])),
    ];
    let calls: Vec<(&str, &str, Vec<u8>)> = calls
        .iter()
        .map(|(r, a)| ("files", *r, a.clone()))
        .collect();
    let outcomes = node.call_many(&calls).unwrap();
    let committed: Vec<bool> = outcomes.iter().map(Outcome::is_committed).collect();
    assert_eq!(
        committed,
        [true, true, true, true, true, true, true, true, true, false]
    );
    assert_eq!(
        strings(&node, "files.results", 1),
        ["a=12", "c=12", "a=123"]
    );
    let folder = node.file_folder().unwrap();
    assert_eq!(
        tree(&folder),
        [
            ("a".to_owned(), Some(b"123".to_vec())),
            ("c".to_owned(), Some(b"12".to_vec())),
        ]
    );
}

#[test]
fn watched_paths_changed_from_outside_become_file_changed_invocations() {
    let f = Fixture::with(FileConfig {
        poll_interval: Duration::from_millis(10),
        ..FileConfig::default()
    });
    f.ok("watch", &["inbox"]);
    let inbox = f.folder().join("inbox");
    std::fs::create_dir(&inbox).unwrap();
    std::fs::write(inbox.join("a.txt"), "1").unwrap();
    eventually("the creation events", || f.changes().len() >= 2);
    assert_eq!(f.changes(), ["inbox created", "inbox/a.txt created"]);

    // The module's own change is not reported back to it.
    f.ok("write", &["inbox/own.txt", "mine"]);
    std::fs::write(inbox.join("a.txt"), "grown").unwrap();
    eventually("the modification event", || f.changes().len() >= 3);
    std::fs::remove_file(inbox.join("a.txt")).unwrap();
    eventually("the removal event", || f.changes().len() >= 4);
    // A path outside the watched one is not reported.
    std::fs::write(f.folder().join("elsewhere"), "x").unwrap();
    f.ok("unwatch", &["inbox"]);
    std::fs::write(inbox.join("late.txt"), "x").unwrap();
    // Watching again looks at what is there now: nothing to report.
    f.ok("watch", &["inbox"]);
    std::fs::write(inbox.join("b.txt"), "x").unwrap();
    eventually("the last event", || f.changes().len() >= 5);
    assert_eq!(
        f.changes(),
        [
            "inbox created",
            "inbox/a.txt created",
            "inbox/a.txt modified",
            "inbox/a.txt removed",
            "inbox/b.txt created",
        ]
    );
    assert_eq!(f.stat("change events"), "5");
}

/// A small deterministic generator, so every run makes the same calls.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const PATHS: [&str; 6] = ["a", "b", "d", "d/x", "d/y", "e/z"];

/// One random call of the `files` module, or of `workload_a` (which runs beside it).
fn random_call(rng: &mut Rng) -> (&'static str, String, Vec<u8>) {
    let path = PATHS[rng.below(PATHS.len() as u64) as usize];
    let other = PATHS[rng.below(PATHS.len() as u64) as usize];
    let text = format!("t{}", rng.below(1000));
    let (reducer, args) = match rng.below(12) {
        0 | 1 => ("write", args(&[path, &text])),
        2 | 3 => ("append", args(&[path, &text])),
        4 => ("remove", args(&[path])),
        5 => ("mkdir", args(&[path])),
        6 | 7 => ("read", args(&[path])),
        8 => ("copy", args(&[path, other])),
        9 => ("list", args(&[path])),
        10 => ("write_then_fail", args(&[path, &text])),
        _ => {
            let mut out = Vec::new();
            encode_into(&Value::U64(rng.below(6)), &mut out);
            encode_into(&Value::U32(rng.below(50) as u32), &mut out);
            return ("workload_a", format!("spin{}", rng.below(16)), out);
        }
    };
    ("files", reducer.to_owned(), args)
}

struct Run {
    outcomes: Vec<Outcome>,
    tables: Vec<(String, Vec<Vec<Value>>)>,
    files: Vec<(String, Option<Vec<u8>>)>,
    log: Vec<u8>,
}

fn run(workers: usize, workload: &[u8]) -> Run {
    let data = tempfile::tempdir().unwrap();
    let (clock, time) = Clock::manual(1_700_000_000_000_000);
    let node = Node::open(NodeConfig {
        data_dir: Some(data.path().to_owned()),
        workers,
        clock,
        seed: 3,
        durability: Durability::Off,
        ..NodeConfig::default()
    })
    .unwrap();
    node.install(wasm()).unwrap();
    node.install(workload).unwrap();
    let mut rng = Rng(0x0f11_e5ee_d000_0001);
    let mut outcomes = Vec::new();
    for _ in 0..12 {
        let calls: Vec<(&str, String, Vec<u8>)> = (0..40).map(|_| random_call(&mut rng)).collect();
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
    let files = tree(&node.file_folder().unwrap());
    drop(node);
    let log = crate::parallel::log_records(&data.path().join("store"));
    Run {
        outcomes,
        tables,
        files,
        log,
    }
}

#[test]
fn random_file_workloads_are_identical_on_one_and_four_workers() {
    let workload = crate::hello::build("workload_a");
    let serial = run(1, &workload);
    let parallel = run(4, &workload);
    let committed = serial.outcomes.iter().filter(|o| o.is_committed()).count();
    assert!(committed > 150, "enough calls commit ({committed})");
    assert!(committed < serial.outcomes.len(), "some are refused");
    let reads = serial
        .tables
        .iter()
        .find(|(n, _)| n == "files.results")
        .map_or(0, |(_, rows)| rows.len());
    assert!(reads > 20, "reads found files ({reads})");
    assert!(
        serial.files.len() >= 3,
        "files were written: {:?}",
        serial.files
    );
    // Compared without printing them: a failure would print thousands of lines.
    assert_eq!(serial.outcomes.len(), parallel.outcomes.len());
    let differs = serial
        .outcomes
        .iter()
        .zip(&parallel.outcomes)
        .position(|(a, b)| a != b);
    assert_eq!(differs, None, "the first call whose outcome differs");
    assert!(serial.tables == parallel.tables, "same tables");
    assert!(serial.files == parallel.files, "same files");
    assert!(serial.log == parallel.log, "byte-identical commit logs");
}

#[test]
fn a_restart_after_the_file_changed_gives_the_same_tables() {
    let data = tempfile::tempdir().unwrap();
    let node = open(data.path(), 2, FileConfig::default());
    node.install(wasm()).unwrap();
    let call = |node: &Node, reducer: &str, values: &[&str]| {
        let values: Vec<Value> = values.iter().map(|v| Value::from(*v)).collect();
        let outcome = node.call_reducer_values("files", reducer, &values).unwrap();
        assert!(outcome.is_committed(), "{outcome:?}");
    };
    call(&node, "write", &["config", "v1"]);
    call(&node, "read", &["config"]);
    let before = strings(&node, "files.results", 1);
    assert_eq!(before, ["config=v1"]);
    let folder = node.file_folder().unwrap();
    drop(node);

    // Changed while the node was down: recovery replays what the reducer wrote, not the read.
    std::fs::write(folder.join("config"), "v2").unwrap();
    let node = open(data.path(), 2, FileConfig::default());
    assert_eq!(strings(&node, "files.results", 1), before);
    // A new read is a new input.
    call(&node, "read", &["config"]);
    assert_eq!(
        strings(&node, "files.results", 1),
        ["config=v1", "config=v2"]
    );
}

#[test]
fn a_memory_only_node_gives_its_file_module_a_temporary_folder() {
    let node = Node::open(NodeConfig::default()).unwrap();
    node.install(wasm()).unwrap();
    let folder = node.file_folder().unwrap();
    let outcome = node
        .call_reducer_values("files", "write", &["note".into(), "hi".into()])
        .unwrap();
    assert!(outcome.is_committed(), "{outcome:?}");
    assert_eq!(std::fs::read_to_string(folder.join("note")).unwrap(), "hi");
    drop(node);
    assert!(!folder.exists(), "{} outlived its node", folder.display());
}
