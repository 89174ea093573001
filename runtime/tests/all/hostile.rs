//! Modules that break the rules: the node refuses or fails them with the stated error, commits
//! nothing for them, and keeps serving.

use interstice_abi::{ABI_VERSION, Access, Field, Type, Value, encode};
use interstice_runtime::wasm::Limits;
use interstice_runtime::{CallFailure, LoadError, Node, NodeConfig, NodeError, Outcome};
use interstice_store::Readable;
use std::sync::Arc;

use interstice_runtime::testing::{self as wat, probe_schema};

const WRITE: &str = "(drop (call $insert_row)) (i32.const 0)";

fn node_with(limits: Limits) -> Arc<Node> {
    Node::open(NodeConfig {
        limits,
        ..NodeConfig::default()
    })
    .unwrap()
}

fn node() -> Arc<Node> {
    node_with(Limits::default())
}

/// Installs `probe` with reducers `ok` (writes one row) and `bad` (runs `body`).
fn probe(node: &Node, body: &str, bad_access: Option<Access>) {
    let schema = probe_schema(&[("bad", bad_access), ("ok", None)]);
    node.install(&wat::module(&schema, ABI_VERSION, &[body, WRITE]))
        .unwrap();
}

fn items(node: &Node) -> usize {
    let id = node.store().table_id("probe.items").unwrap();
    node.store().read().len(id).unwrap()
}

fn failure(outcome: Outcome) -> CallFailure {
    match outcome {
        Outcome::Failed { reason, .. } => reason,
        Outcome::Committed { .. } => panic!("expected a failure, got {outcome:?}"),
    }
}

/// After a hostile call, the node still runs a good reducer and commits it.
fn still_serves(node: &Node) {
    let before = items(node);
    assert!(
        node.call_reducer("probe", "ok", &[])
            .unwrap()
            .is_committed()
    );
    assert_eq!(items(node), before + 1);
}

#[test]
fn malformed_bytes_are_refused() {
    let err = node().install(b"\0asm garbage").unwrap_err();
    assert!(
        matches!(err, NodeError::Load(LoadError::Invalid(_))),
        "{err}"
    );
}

/// Modules are binary wasm: the text format is not a second way in (nodes do not link a WAT
/// parser, whose input surface would be the node's too).
#[test]
fn a_module_in_the_text_format_is_refused() {
    let err = node().install(b"(module)").unwrap_err();
    assert!(
        matches!(err, NodeError::Load(LoadError::Invalid(_))),
        "{err}"
    );
}

#[test]
fn a_module_for_another_abi_version_is_refused_with_both_versions() {
    let schema = probe_schema(&[("ok", None)]);
    let err = node()
        .install(&wat::module(&schema, ABI_VERSION + 1, &[WRITE]))
        .unwrap_err();
    assert!(
        matches!(err, NodeError::Load(LoadError::AbiVersion { found, expected }) if found == ABI_VERSION + 1 && expected == ABI_VERSION),
        "{err}"
    );
    assert!(err.to_string().contains("rebuild"), "{err}");
}

#[test]
fn a_module_without_the_required_exports_is_refused() {
    let bytes = ::wat::parse_str(r#"(module (memory (export "memory") 1))"#).unwrap();
    let err = node().install(&bytes).unwrap_err();
    assert!(err.to_string().contains("interstice_abi_version"), "{err}");
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let node = node_with(Limits {
        fuel_per_call: 5_000_000,
        ..Limits::default()
    });
    probe(
        &node,
        "(drop (call $insert_row)) (loop $l (br $l)) (i32.const 0)",
        None,
    );
    let reason = failure(node.call_reducer("probe", "bad", &[]).unwrap());
    assert!(
        matches!(reason, CallFailure::OutOfFuel { fuel: 5_000_000 }),
        "{reason}"
    );
    assert_eq!(
        items(&node),
        0,
        "the row written before the loop must not commit"
    );
    still_serves(&node);
}

#[test]
fn unbounded_memory_growth_hits_the_limit() {
    let node = node_with(Limits {
        memory_bytes: 4 << 20,
        ..Limits::default()
    });
    probe(
        &node,
        "(drop (call $insert_row)) (loop $l (drop (memory.grow (i32.const 16))) (br $l)) (i32.const 0)",
        None,
    );
    let reason = failure(node.call_reducer("probe", "bad", &[]).unwrap());
    assert!(
        matches!(reason, CallFailure::MemoryLimit { limit } if limit == 4 << 20),
        "{reason}"
    );
    assert_eq!(items(&node), 0);
    still_serves(&node);
}

#[test]
fn a_trap_after_a_write_rolls_the_write_back() {
    let node = node();
    probe(&node, "(drop (call $insert_row)) (unreachable)", None);
    let reason = failure(node.call_reducer("probe", "bad", &[]).unwrap());
    assert!(matches!(reason, CallFailure::Trap(_)), "{reason}");
    assert_eq!(items(&node), 0);
    still_serves(&node);
}

#[test]
fn an_error_return_commits_nothing_and_reports_the_message() {
    let node = node();
    probe(
        &node,
        "(drop (call $insert_row)) (call $set_error (i32.const 700) (i32.const 9)) (i32.const 1)",
        None,
    );
    let reason = failure(node.call_reducer("probe", "bad", &[]).unwrap());
    assert_eq!(reason, CallFailure::Returned("it failed".into()));
    assert_eq!(items(&node), 0);
}

#[test]
fn out_of_bounds_pointers_fail_the_call() {
    let node = node();
    for body in [
        // A row far past the end of memory.
        "(drop (call $insert (call $items) (i32.const 0x7fff0000) (i32.const 16))) (i32.const 0)",
        // A length that wraps around.
        "(drop (call $insert (call $items) (i32.const 100) (i32.const -1))) (i32.const 0)",
        // A table name outside memory.
        "(drop (call $table (i32.const 65530) (i32.const 100))) (i32.const 0)",
    ] {
        let node_for_case = self::node();
        probe(&node_for_case, body, None);
        let reason = failure(node_for_case.call_reducer("probe", "bad", &[]).unwrap());
        assert!(
            matches!(reason, CallFailure::BadPointer(_)),
            "{body}: {reason}"
        );
        still_serves(&node_for_case);
    }
    drop(node);
}

/// The module's allocator is checked like any pointer it hands over: memory that cannot hold the
/// arguments fails the call. A call without arguments asks for no memory at all.
#[test]
fn an_allocator_answering_outside_memory_fails_the_call() {
    let node = node();
    let mut schema = probe_schema(&[("break_alloc", None), ("ok", None), ("takes", None)]);
    schema.reducers[2].args = vec![Field::new("n", Type::U64)];
    // `break_alloc` points the bump allocator's next block far past the end of memory.
    let break_alloc = "(global.set $heap (i32.const 0x7fff0000)) (i32.const 0)";
    node.install(&wat::module(
        &schema,
        ABI_VERSION,
        &[break_alloc, WRITE, WRITE],
    ))
    .unwrap();
    assert!(
        node.call_reducer("probe", "break_alloc", &[])
            .unwrap()
            .is_committed()
    );
    // Same instance, no arguments: nothing is allocated, so the broken allocator is not asked.
    still_serves(&node);
    let before = items(&node);
    let reason = failure(
        node.call_reducer("probe", "takes", &encode(&Value::U64(1)))
            .unwrap(),
    );
    match &reason {
        CallFailure::BadPointer(m) => assert!(
            m.contains("interstice_alloc returned 2147418112, which cannot hold 8 bytes"),
            "{m}"
        ),
        other => panic!("expected a bad pointer, got {other}"),
    }
    assert_eq!(items(&node), before);
    still_serves(&node);
}

#[test]
fn oversized_arguments_are_refused_before_running() {
    let node = node_with(Limits {
        max_message_bytes: 1024,
        ..Limits::default()
    });
    probe(&node, WRITE, None);
    // The probe's reducers take no arguments, so any bytes are refused by the signature check;
    // an oversized row written by the module is refused by the boundary check.
    let err = node.call_reducer("probe", "bad", &[0; 4096]).unwrap_err();
    assert!(matches!(err, NodeError::BadArguments { .. }), "{err}");
    let node = node_with(Limits {
        max_message_bytes: 8,
        ..Limits::default()
    });
    probe(&node, WRITE, None);
    let reason = failure(node.call_reducer("probe", "bad", &[]).unwrap());
    assert!(
        matches!(reason, CallFailure::TooLarge { size: 16, limit: 8 }),
        "{reason}"
    );
}

#[test]
fn touching_an_undeclared_table_names_the_table_and_the_attribute() {
    let node = node();
    let reads_secret_only = Access {
        reads: vec!["secret".into()],
        ..Access::default()
    };
    probe(&node, WRITE, Some(reads_secret_only));
    let reason = failure(node.call_reducer("probe", "bad", &[]).unwrap());
    let message = reason.to_string();
    assert!(matches!(reason, CallFailure::Denied(_)), "{message}");
    assert!(message.contains("`probe.items`"), "{message}");
    assert!(message.contains("writes(items)"), "{message}");
    assert_eq!(items(&node), 0);
    still_serves(&node);
}

#[test]
fn reading_a_declared_table_but_writing_it_is_refused() {
    let node = node();
    let reads_items = Access {
        reads: vec!["items".into()],
        ..Access::default()
    };
    probe(&node, WRITE, Some(reads_items));
    let message = failure(node.call_reducer("probe", "bad", &[]).unwrap()).to_string();
    assert!(message.contains("add `writes(items)`"), "{message}");
}

#[test]
fn unknown_modules_and_reducers_are_named() {
    let node = node();
    probe(&node, WRITE, None);
    let err = node.call_reducer("nope", "ok", &[]).unwrap_err();
    assert!(err.to_string().contains("no module `nope`"), "{err}");
    let err = node.call_reducer("probe", "nope", &[]).unwrap_err();
    assert!(err.to_string().contains("no reducer `nope`"), "{err}");
    let err = node
        .call_reducer_values("probe", "ok", &[Value::U8(1)])
        .unwrap_err();
    assert!(matches!(err, NodeError::BadArguments { .. }), "{err}");
}

#[test]
fn scheduling_an_undeclared_reducer_is_refused_with_the_attribute_to_add() {
    let node = node();
    let no_calls = Access {
        writes: vec!["items".into()],
        ..Access::default()
    };
    probe(
        &node,
        "(drop (call $schedule_ok (i64.const 10))) (i32.const 0)",
        Some(no_calls),
    );
    let message = failure(node.call_reducer("probe", "bad", &[]).unwrap()).to_string();
    assert!(message.contains("add `calls(ok)`"), "{message}");
    assert_eq!(node.pending_timers().unwrap(), 0);
}

/// A module's name becomes a file name (`modules/<name>.wasm`): a schema that names itself
/// with a path, `..` or odd bytes is refused before any path is built, and removing by such a
/// name is refused too.
#[test]
fn a_module_named_like_a_path_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(NodeConfig {
        data_dir: Some(dir.path().join("node")),
        ..NodeConfig::default()
    })
    .unwrap();
    let outside = dir.path().join("outside");
    for name in [
        outside.to_str().unwrap().to_owned(),
        "../outside".to_owned(),
        "a/b".to_owned(),
        "nul\0name".to_owned(),
        "x".repeat(65),
        String::new(),
    ] {
        let mut schema = probe_schema(&[("ok", None)]);
        schema.name = name.clone();
        let err = node
            .install(&wat::module(&schema, ABI_VERSION, &["(i32.const 0)"]))
            .unwrap_err();
        assert!(
            err.to_string().contains("not a valid module name"),
            "{name:?}: {err}"
        );
        let err = node.remove(&name).unwrap_err();
        assert!(matches!(err, NodeError::InvalidName(_)), "{name:?}: {err}");
    }
    assert!(!dir.path().join("outside.wasm").exists());
    let written: Vec<_> = std::fs::read_dir(dir.path().join("node/modules"))
        .unwrap()
        .collect();
    assert!(written.is_empty(), "{written:?}");
    // The node still works.
    node.install(&wat::module(
        &probe_schema(&[("ok", None)]),
        ABI_VERSION,
        &["(i32.const 0)"],
    ))
    .unwrap();
}

/// Text a module hands over for people is capped: a 60 000-byte error comes back cut to the
/// 4 KiB limit and says so, and one invocation adds at most 256 lines (each cut to 4 KiB) to
/// the node's log however many it writes.
#[test]
fn errors_and_log_lines_are_capped() {
    use std::io::Write;
    use std::sync::Mutex;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let node = Node::open(NodeConfig {
        workers: 1,
        ..NodeConfig::default()
    })
    .unwrap();
    let schema = probe_schema(&[("shout", None), ("chatter", None)]);
    let wasm = wat::module_importing(
        &schema,
        ABI_VERSION,
        r#"(import "interstice" "log" (func $log (param i32 i32 i32)))"#,
        &[
            // An error of 60 000 bytes (whatever the memory holds from 0).
            "(call $set_error (i32.const 0) (i32.const 60000)) (i32.const 1)",
            // 1000 lines of 60 000 bytes.
            "(local.set $index (i32.const 0))
             (block $done (loop $again
               (br_if $done (i32.ge_u (local.get $index) (i32.const 1000)))
               (call $log (i32.const 2) (i32.const 0) (i32.const 60000))
               (local.set $index (i32.add (local.get $index) (i32.const 1)))
               (br $again)))
             (i32.const 0)",
        ],
    );
    node.install(&wasm).unwrap();
    match node.call_reducer("probe", "shout", &[]).unwrap() {
        Outcome::Failed {
            reason: CallFailure::Returned(message),
            ..
        } => {
            assert!(message.len() < 4200, "{} bytes", message.len());
            assert!(
                message.ends_with("(60000 bytes, cut to 4096)"),
                "{message:?}"
            );
        }
        other => panic!("{other:?}"),
    }

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    let outcome = tracing::subscriber::with_default(subscriber, || {
        node.call_reducer("probe", "chatter", &[]).unwrap()
    });
    assert!(outcome.is_committed(), "{outcome:?}");
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines.len(),
        257,
        "256 lines and the one saying the rest were dropped"
    );
    assert!(lines.iter().all(|l| l.len() < 4400), "a line was not cut");
    assert!(
        lines[256].contains("the rest are dropped"),
        "{}",
        lines[256]
    );
}
