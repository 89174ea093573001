//! Persistence, timers and determinism, with hand-written modules.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use interstice_abi::ABI_VERSION;
use interstice_runtime::{Clock, Durability, Node, NodeConfig, Outcome};
use interstice_store::Readable;

use interstice_runtime::testing::{self as wat, probe_schema};

/// `write_now` inserts a row holding `ctx.now()`, `write_random` one holding `random()`,
/// `timer` schedules `ok` in 1000 ms, `ok` inserts the constant row.
fn install_probe(node: &Node) {
    let schema = probe_schema(&[
        ("ok", None),
        ("timer", None),
        ("write_now", None),
        ("write_random", None),
    ]);
    let bytes = wat::module(
        &schema,
        ABI_VERSION,
        &[
            "(drop (call $insert_row)) (i32.const 0)",
            "(drop (call $schedule_ok (i64.const 1000))) (i32.const 0)",
            "(drop (call $insert_value (call $now))) (i32.const 0)",
            "(drop (call $insert_value (call $random))) (i32.const 0)",
        ],
    );
    node.install(&bytes).unwrap();
}

fn open(dir: &Path, clock: Clock) -> Arc<Node> {
    Node::open(NodeConfig {
        data_dir: Some(dir.to_owned()),
        clock,
        seed: 42,
        ..NodeConfig::default()
    })
    .unwrap()
}

fn rows(node: &Node) -> Vec<Vec<interstice_abi::Value>> {
    let id = node.store().table_id("probe.items").unwrap();
    node.store()
        .read()
        .scan(id)
        .unwrap()
        .map(|r| r.to_vec())
        .collect()
}

#[test]
fn committed_rows_and_modules_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, _) = Clock::manual(1_000_000);
    {
        let node = open(dir.path(), clock.clone());
        install_probe(&node);
        for _ in 0..3 {
            assert!(
                node.call_reducer("probe", "ok", &[])
                    .unwrap()
                    .is_committed()
            );
        }
    }
    let node = open(dir.path(), clock);
    assert_eq!(
        node.schemas().len(),
        1,
        "the module is reloaded from the data directory"
    );
    assert_eq!(rows(&node).len(), 3);
    assert!(
        node.call_reducer("probe", "ok", &[])
            .unwrap()
            .is_committed()
    );
    assert_eq!(rows(&node).len(), 4);
}

#[test]
fn now_is_the_ingress_time_not_the_wall_clock() {
    let (clock, time) = Clock::manual(5_000_000);
    let node = Node::open(NodeConfig {
        clock,
        ..NodeConfig::default()
    })
    .unwrap();
    install_probe(&node);
    node.call_reducer("probe", "write_now", &[]).unwrap();
    time.store(7_000_000, Ordering::SeqCst);
    node.call_reducer("probe", "write_now", &[]).unwrap();
    let values: Vec<_> = rows(&node).into_iter().map(|r| r[1].clone()).collect();
    assert_eq!(
        values,
        [
            interstice_abi::Value::U64(5_000_000),
            interstice_abi::Value::U64(7_000_000)
        ]
    );
}

#[test]
fn a_scheduled_reducer_runs_when_its_logical_time_comes_and_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, time) = Clock::manual(1_000_000);
    {
        let node = open(dir.path(), clock.clone());
        install_probe(&node);
        assert!(
            node.call_reducer("probe", "timer", &[])
                .unwrap()
                .is_committed()
        );
        assert_eq!(node.pending_timers().unwrap(), 1);
        time.store(1_999_999, Ordering::SeqCst);
        assert_eq!(node.run_due_timers().unwrap(), 0, "not due yet");
    }
    // The timer is in the log: a restarted node still has it.
    let node = open(dir.path(), clock);
    assert_eq!(node.pending_timers().unwrap(), 1);
    time.store(2_000_000, Ordering::SeqCst);
    assert_eq!(node.run_due_timers().unwrap(), 1);
    assert_eq!(rows(&node).len(), 1, "`ok` ran once");
    assert_eq!(node.pending_timers().unwrap(), 0);
    assert_eq!(node.run_due_timers().unwrap(), 0, "and only once");
}

/// The same calls from the same empty state give byte-identical commit logs.
#[test]
fn the_same_calls_give_identical_commit_logs() {
    let run = || {
        let dir = tempfile::tempdir().unwrap();
        let (clock, time) = Clock::manual(1_000_000);
        let node = open(dir.path(), clock);
        install_probe(&node);
        for i in 0..50 {
            time.fetch_add(17 * i, Ordering::SeqCst);
            let reducer = ["ok", "write_now", "write_random", "timer"][i as usize % 4];
            let outcome = node.call_reducer("probe", reducer, &[]).unwrap();
            assert!(matches!(outcome, Outcome::Committed { .. }));
        }
        node.run_due_timers().unwrap();
        drop(node);
        let mut files: Vec<_> = crate::files_under(&dir.path().join("store"));
        files.sort();
        let logs: Vec<(String, Vec<u8>)> = files
            .into_iter()
            .filter(|p| !p.ends_with("LOCK"))
            .map(|p| {
                (
                    p.strip_prefix(dir.path()).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        (logs, dir)
    };
    let (first, _a) = run();
    let (second, _b) = run();
    assert!(!first.is_empty());
    assert!(
        first.iter().map(|(_, b)| b.len()).sum::<usize>() > 1000,
        "the log holds the calls"
    );
    assert_eq!(first, second);
}

#[test]
fn publishing_again_upgrades_in_place_and_keeps_the_rows() {
    let node = Node::open(NodeConfig::default()).unwrap();
    install_probe(&node);
    node.call_reducer("probe", "ok", &[]).unwrap();
    let schema = probe_schema(&[("ok", None), ("twice", None)]);
    let v2 = wat::module(
        &schema,
        ABI_VERSION,
        &[
            "(drop (call $insert_row)) (i32.const 0)",
            "(drop (call $insert_row)) (drop (call $insert_row)) (i32.const 0)",
        ],
    );
    let published = node.publish(&v2).unwrap();
    assert!(matches!(
        published,
        interstice_runtime::Published::Upgraded { .. }
    ));
    assert_eq!(rows(&node).len(), 1, "the upgrade kept the row");
    assert!(
        node.call_reducer("probe", "twice", &[])
            .unwrap()
            .is_committed()
    );
    assert_eq!(rows(&node).len(), 3);
    assert!(
        node.call_reducer("probe", "timer", &[]).is_err(),
        "the old reducer is gone"
    );
}

#[test]
fn an_upgrade_that_changes_a_table_is_refused_and_changes_nothing() {
    let node = Node::open(NodeConfig::default()).unwrap();
    install_probe(&node);
    let mut schema = probe_schema(&[("ok", None)]);
    schema.tables[0].columns[1].ty = interstice_abi::Type::U32;
    if let interstice_abi::TypeDef::Struct { fields, .. } = &mut schema.types[0] {
        fields[1].ty = interstice_abi::Type::U32;
    }
    let err = node
        .publish(&wat::module(&schema, ABI_VERSION, &["(i32.const 0)"]))
        .unwrap_err();
    assert!(
        err.to_string().contains("table `items` changed its schema"),
        "{err}"
    );
    assert!(
        node.call_reducer("probe", "timer", &[])
            .unwrap()
            .is_committed(),
        "v1 still runs"
    );
}

#[test]
fn removing_a_module_drops_its_tables_and_timers() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, _) = Clock::manual(0);
    let node = open(dir.path(), clock.clone());
    install_probe(&node);
    node.call_reducer("probe", "ok", &[]).unwrap();
    node.call_reducer("probe", "timer", &[]).unwrap();
    node.remove("probe").unwrap();
    assert!(node.store().table_id("probe.items").is_none());
    assert_eq!(node.pending_timers().unwrap(), 0);
    assert!(node.call_reducer("probe", "ok", &[]).is_err());
    drop(node);
    let node = open(dir.path(), clock);
    assert!(
        node.schemas().is_empty(),
        "it stays removed after a restart"
    );
    install_probe(&node);
    assert!(rows(&node).is_empty(), "a new install starts empty");
}

/// The node fires its own timers: an embedded node that never serves the network runs a timer
/// when it is due.
#[test]
fn an_embedded_node_fires_its_timers_by_itself() {
    let node = Node::open(NodeConfig::default()).unwrap();
    let schema = probe_schema(&[("ok", None), ("timer", None)]);
    let bytes = wat::module(
        &schema,
        ABI_VERSION,
        &[
            "(drop (call $insert_row)) (i32.const 0)",
            "(drop (call $schedule_ok (i64.const 5))) (i32.const 0)",
        ],
    );
    node.install(&bytes).unwrap();
    assert!(
        node.call_reducer("probe", "timer", &[])
            .unwrap()
            .is_committed()
    );
    // Nobody calls `run_due_timers`: the node's thread must.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while rows(&node).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the timer never fired; {} pending",
            node.pending_timers().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(rows(&node).len(), 1);
    assert_eq!(node.pending_timers().unwrap(), 0);
}

/// The scheduler plans a reducer with everything it may call, however deep the declared
/// chain and through cycles, so it never runs it beside a reducer that conflicts with any of
/// them.
#[test]
fn a_callers_planned_access_is_the_closure_of_what_it_may_call() {
    use interstice_abi::Access;
    let node = Node::open(NodeConfig::default()).unwrap();
    let calls = |names: &[&str]| Access {
        reads: vec![],
        writes: vec![],
        calls: names.iter().map(|n| (*n).to_owned()).collect(),
    };
    // c0 → c1 → … → c11, which writes `items`: deeper than the nesting limit of 8.
    let mut reducers: Vec<(String, Option<Access>)> = (0..11)
        .map(|i| {
            (
                format!("c{i:02}"),
                Some(calls(&[&format!("c{:02}", i + 1)])),
            )
        })
        .collect();
    reducers.push((
        "c11".into(),
        Some(Access {
            reads: vec![],
            writes: vec!["items".into()],
            calls: vec![],
        }),
    ));
    // cycle_a → cycle_b → cycle_a, and cycle_b reads `secret`.
    reducers.push(("cycle_a".into(), Some(calls(&["cycle_b"]))));
    reducers.push((
        "cycle_b".into(),
        Some(Access {
            reads: vec!["secret".into()],
            writes: vec![],
            calls: vec!["cycle_a".into()],
        }),
    ));
    let named: Vec<(&str, Option<Access>)> = reducers
        .iter()
        .map(|(n, a)| (n.as_str(), a.clone()))
        .collect();
    let schema = probe_schema(&named);
    let bodies: Vec<&str> = named.iter().map(|_| "(i32.const 0)").collect();
    node.install(&wat::module(&schema, ABI_VERSION, &bodies))
        .unwrap();
    // Declaring a call of one's own module also lets a reducer schedule it, so the module's
    // timers table is written too.
    let (reads, writes) = node.planned_access("probe", "c00").unwrap();
    assert!(reads.is_empty(), "{reads:?}");
    assert_eq!(writes, ["probe.items", "probe.__timers"]);
    for reducer in ["cycle_a", "cycle_b"] {
        let (reads, writes) = node.planned_access("probe", reducer).unwrap();
        assert_eq!(reads, ["probe.secret"], "{reducer}");
        assert_eq!(writes, ["probe.__timers"], "{reducer}");
    }
}

/// A node's data directory and the modules it keeps are owner-only.
#[cfg(unix)]
#[test]
fn the_data_directory_and_module_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (clock, _) = Clock::manual(0);
    let node = open(&data, clock);
    install_probe(&node);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("modules")), 0o700);
    assert_eq!(mode(&data.join("modules/probe.wasm")), 0o600);
}

/// Dropping the last handle to a node closes its store before `drop` returns, so the same
/// data directory opens again at once and reads every commit, with a pool worker and the
/// node's own thread (whose first turn looks for timers) busy right up to the drop. It failed
/// under load when the pump thread could hold the last reference and close the node after
/// `drop` had returned.
#[test]
fn a_dropped_node_lets_go_of_its_data_directory_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..40u64 {
        let node = Node::open(NodeConfig {
            data_dir: Some(dir.path().to_owned()),
            workers: 2,
            seed: 42,
            ..NodeConfig::default()
        })
        .unwrap_or_else(|e| panic!("round {round}: the data directory is still held: {e}"));
        if round == 0 {
            install_probe(&node);
        }
        assert_eq!(rows(&node).len() as u64, round * 3, "round {round}");
        let calls: Vec<(&str, &str, Vec<u8>)> =
            (0..3).map(|_| ("probe", "ok", Vec::new())).collect();
        assert!(
            node.call_many(&calls)
                .unwrap()
                .iter()
                .all(Outcome::is_committed)
        );
        drop(node);
    }
}

/// Group commit, seen from the node: a batch of calls waits for one fsync, not one each, and
/// the node's stats say so (`interstice node show`: log fsyncs, commits per fsync).
#[test]
fn a_batch_of_durable_calls_shares_its_fsync_and_the_stats_count_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(NodeConfig {
        data_dir: Some(dir.path().to_owned()),
        workers: 2,
        durability: Durability::EveryCommit,
        ..NodeConfig::default()
    })
    .unwrap();
    install_probe(&node);
    let before = node.stats();
    let calls: Vec<(&str, &str, Vec<u8>)> = (0..64).map(|_| ("probe", "ok", Vec::new())).collect();
    let outcomes = node.call_many(&calls).unwrap();
    assert!(outcomes.iter().all(Outcome::is_committed), "{outcomes:?}");
    let after = node.stats();
    let records = after.records_durable - before.records_durable;
    let fsyncs = after.log_fsyncs - before.log_fsyncs;
    assert!(records >= 64, "every call's record is durable: {records}");
    assert!(
        (1..=2).contains(&fsyncs),
        "64 calls made durable by {fsyncs} fsyncs"
    );
    assert!(after.uptime >= before.uptime);
}

/// `call_many_pipelined` runs a batch and hands back its outcomes only once they are durable:
/// two batches in flight, the second run while the first is still unwaited, and after both
/// waits the log is durable up to the last commit, and a reopened node holds every row.
#[test]
fn pipelined_batches_are_durable_once_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let config = || NodeConfig {
        data_dir: Some(dir.path().to_owned()),
        workers: 2,
        seed: 42,
        durability: Durability::EveryCommit,
        ..NodeConfig::default()
    };
    {
        let node = Node::open(config()).unwrap();
        install_probe(&node);
        let calls: Vec<(&str, &str, Vec<u8>)> =
            (0..4).map(|_| ("probe", "ok", Vec::new())).collect();
        let first = node.call_many_pipelined(&calls).unwrap();
        let second = node.call_many_pipelined(&calls).unwrap();
        assert_eq!((first.len(), second.len()), (4, 4));
        let first = first.wait().unwrap();
        let second = second.wait().unwrap();
        let seqs: Vec<u64> = first
            .iter()
            .chain(&second)
            .map(|o| match o {
                Outcome::Committed { seq, .. } => *seq,
                Outcome::Failed { reason, .. } => panic!("a call failed: {reason}"),
            })
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "in call order: {seqs:?}"
        );
        let Some(Outcome::Committed { lsn, .. }) = second.last() else {
            panic!("the last call committed");
        };
        assert!(node.store().durable_lsn() >= *lsn, "waited for, so durable");
        assert_eq!(rows(&node).len(), 8);
    }
    let node = Node::open(config()).unwrap();
    assert_eq!(
        rows(&node).len(),
        8,
        "every waited-for call survives a restart"
    );
}
