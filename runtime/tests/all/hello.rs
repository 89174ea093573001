//! `modules/hello`, built from source with the module builder and driven through the node.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use interstice_abi::Value;
use interstice_runtime::{CallFailure, Clock, Node, NodeConfig, NodeError, Outcome};
use interstice_store::Readable;

/// hello.wasm, built once per test run.
fn hello_wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| build("hello"))
}

/// Builds `modules/<name>` of this checkout (in the shared, locked module cache).
pub fn build(name: &str) -> Vec<u8> {
    interstice_build::workspace_module(name)
}

fn open(dir: Option<&Path>, clock: Clock) -> Arc<Node> {
    Node::open(NodeConfig {
        data_dir: dir.map(Path::to_owned),
        clock,
        ..NodeConfig::default()
    })
    .unwrap()
}

fn greetings(node: &Node) -> Vec<String> {
    match node.call_query("hello", "get_greetings", &[]).unwrap() {
        Value::List(rows) => rows
            .into_iter()
            .map(|row| match row {
                Value::Struct(fields) => match &fields[2] {
                    Value::String(name) => name.clone(),
                    other => panic!("name is {other:?}"),
                },
                other => panic!("row is {other:?}"),
            })
            .collect(),
        other => panic!("get_greetings returned {other:?}"),
    }
}

/// `stats` row 0: (greetings, ticks).
fn stats(node: &Node) -> (u64, u64) {
    let id = node.store().table_id("hello.stats").unwrap();
    let row = node
        .store()
        .read()
        .get(id, &Value::U32(0))
        .unwrap()
        .expect("init created the stats row");
    match (&row[1], &row[2]) {
        (Value::U64(g), Value::U64(t)) => (*g, *t),
        other => panic!("stats row {other:?}"),
    }
}

fn hello(node: &Node, name: &str) -> Outcome {
    node.call_reducer_values("hello", "hello", &[Value::from(name)])
        .unwrap()
}

#[test]
fn call_query_restart_and_query_again() {
    let dir = tempfile::tempdir().unwrap();
    {
        let node = open(Some(dir.path()), Clock::System);
        let schema = node.install(hello_wasm()).unwrap();
        assert_eq!(schema.name, "hello");
        assert!(hello(&node, "Ada").is_committed());
        assert!(hello(&node, "Grace").is_committed());
        assert_eq!(greetings(&node), ["Ada", "Grace"]);
    }
    let node = open(Some(dir.path()), Clock::System);
    assert_eq!(
        greetings(&node),
        ["Ada", "Grace"],
        "committed rows survive a restart"
    );
    assert_eq!(stats(&node).0, 2, "init ran once, not again on restart");
    assert!(hello(&node, "Linus").is_committed());
    assert_eq!(greetings(&node), ["Ada", "Grace", "Linus"]);
}

/// The node dies after `hello` committed and before its `on_greeting` trigger ran: the
/// trigger is kept with the commit and runs when the node opens again, once.
#[test]
fn a_trigger_pending_at_a_crash_runs_when_the_node_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let left = Arc::new(AtomicU64::new(u64::MAX));
    {
        let node = Node::open(NodeConfig {
            data_dir: Some(dir.path().to_owned()),
            halt_after_windows: Some(left.clone()),
            ..NodeConfig::default()
        })
        .unwrap();
        node.install(hello_wasm()).unwrap();
        assert!(hello(&node, "Ada").is_committed());
        assert_eq!(stats(&node).0, 1);
        // One window: `hello("Grace")` commits; its trigger does not run.
        left.store(1, Ordering::SeqCst);
        let err = node
            .call_reducer_values("hello", "hello", &[Value::from("Grace")])
            .unwrap_err();
        assert!(matches!(err, NodeError::Halted), "{err}");
        assert_eq!(greetings(&node), ["Ada", "Grace"]);
        assert_eq!(stats(&node).0, 1, "the trigger has not run");
    }
    let node = open(Some(dir.path()), Clock::System);
    assert_eq!(greetings(&node), ["Ada", "Grace"]);
    assert_eq!(stats(&node).0, 2, "the kept trigger ran on open");
    let triggers = node.store().table_id("__node.triggers").unwrap();
    assert_eq!(node.store().read().len(triggers).unwrap(), 0);
    drop(node);
    // And only once.
    let node = open(Some(dir.path()), Clock::System);
    assert_eq!(stats(&node).0, 2);
    assert!(hello(&node, "Linus").is_committed());
    assert_eq!(stats(&node).0, 3);
}

#[test]
fn the_insert_subscription_fires_once_per_insert() {
    let node = open(None, Clock::System);
    node.install(hello_wasm()).unwrap();
    for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
        hello(&node, name);
        assert_eq!(stats(&node).0, i as u64 + 1);
    }
}

#[test]
fn a_failing_reducer_reports_its_error_and_commits_nothing() {
    let node = open(None, Clock::System);
    node.install(hello_wasm()).unwrap();
    let outcome = hello(&node, "");
    assert!(
        matches!(&outcome, Outcome::Failed { reason: CallFailure::Returned(m), .. } if m == "name must not be empty"),
        "{outcome:?}"
    );
    assert!(greetings(&node).is_empty());
    assert_eq!(stats(&node).0, 0, "no insert, so no subscription fired");
}

#[test]
fn subscribed_reducers_cannot_be_called_directly() {
    let node = open(None, Clock::System);
    node.install(hello_wasm()).unwrap();
    let err = node.call_reducer("hello", "on_greeting", &[]).unwrap_err();
    assert!(err.to_string().contains("hello.greetings.insert"), "{err}");
}

#[test]
fn a_scheduled_reducer_runs_after_its_delay() {
    let (clock, time) = Clock::manual(10_000_000);
    let node = open(None, clock);
    node.install(hello_wasm()).unwrap();
    assert!(
        node.call_reducer("hello", "start_timer", &[])
            .unwrap()
            .is_committed()
    );
    time.fetch_add(999_000, Ordering::SeqCst);
    assert_eq!(node.run_due_timers().unwrap(), 0);
    assert_eq!(stats(&node).1, 0);
    time.fetch_add(1_000, Ordering::SeqCst);
    assert_eq!(node.run_due_timers().unwrap(), 1);
    assert_eq!(stats(&node).1, 1, "tick ran");
}

#[test]
fn queries_use_the_btree_index_and_logical_time() {
    let (clock, time) = Clock::manual(1_000);
    let node = open(None, clock);
    node.install(hello_wasm()).unwrap();
    hello(&node, "early");
    time.store(5_000, Ordering::SeqCst);
    hello(&node, "late");
    let since = node
        .call_query("hello", "greetings_since", &[Value::I64(5_000)])
        .unwrap();
    let Value::List(rows) = since else {
        panic!("{since:?}")
    };
    assert_eq!(rows.len(), 1);
}

#[test]
fn connect_and_disconnect_hooks_receive_the_peer_id() {
    let node = open(None, Clock::System);
    node.install(hello_wasm()).unwrap();
    let peers = |node: &Node| -> Vec<(String, bool)> {
        let id = node.store().table_id("hello.peers").unwrap();
        node.store()
            .read()
            .scan(id)
            .unwrap()
            .map(|r| match (&r[0], &r[1]) {
                (Value::String(n), Value::Bool(c)) => (n.clone(), *c),
                other => panic!("peer row {other:?}"),
            })
            .collect()
    };
    node.peer_connected("node-b").unwrap();
    assert_eq!(peers(&node), [("node-b".to_owned(), true)]);
    node.peer_disconnected("node-b").unwrap();
    assert_eq!(peers(&node), [("node-b".to_owned(), false)]);
}

/// Subscribes a remote-style sink to `hello.greetings` inserts after `after`; returns whether
/// the node had everything after it, and the sink's receiver.
fn subscribe(
    node: &Node,
    after: Option<interstice_runtime::Position>,
) -> (
    bool,
    tokio::sync::mpsc::Receiver<interstice_runtime::FeedEvent>,
) {
    let (events, rx) = tokio::sync::mpsc::channel(2 * interstice_runtime::HISTORY);
    let sink = interstice_runtime::FeedSink {
        tag: 1,
        events,
        lagged: Arc::new(tokio::sync::Notify::new()),
    };
    let complete = node
        .subscribe_table(
            "hello",
            "greetings",
            interstice_abi::TableEvent::Insert,
            sink,
            after,
        )
        .unwrap();
    (complete, rx)
}

fn received(
    rx: &mut tokio::sync::mpsc::Receiver<interstice_runtime::FeedEvent>,
) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    while let Ok(event) = rx.try_recv() {
        out.push((event.seq, event.part));
    }
    out
}

fn open_fast(dir: &Path) -> Arc<Node> {
    Node::open(NodeConfig {
        data_dir: Some(dir.to_owned()),
        durability: interstice_runtime::Durability::Off,
        ..NodeConfig::default()
    })
    .unwrap()
}

/// A subscriber that was away while the node restarted resumes where it stopped: the changes
/// kept for it are in the log, not only in memory.
#[test]
fn a_remote_subscription_resumes_across_a_restart_of_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let (first, missed) = {
        let node = open_fast(dir.path());
        node.install(hello_wasm()).unwrap();
        let (complete, mut rx) = subscribe(&node, None);
        assert!(complete);
        assert!(hello(&node, "Ada").is_committed());
        let first = received(&mut rx);
        assert_eq!(first.len(), 1);
        // The subscriber goes away; two more greetings are committed, then the node stops.
        drop(rx);
        assert!(hello(&node, "Grace").is_committed());
        assert!(hello(&node, "Linus").is_committed());
        let (_, mut all) = subscribe(&node, first.first().copied());
        (first[0], received(&mut all))
    };
    assert_eq!(missed.len(), 2);
    let node = open_fast(dir.path());
    let (complete, mut rx) = subscribe(&node, Some(first));
    assert!(
        complete,
        "everything after the first greeting was kept across the restart"
    );
    assert_eq!(received(&mut rx), missed);
    // And the feed goes on from there.
    assert!(hello(&node, "Barbara").is_committed());
    let live = received(&mut rx);
    assert_eq!(live.len(), 1);
    assert!(live[0] > missed[1]);
}

/// Past `HISTORY` changes the oldest are dropped, in the log too: a subscriber from before
/// them is told it missed some, one after them gets the rest.
#[test]
fn a_durable_feed_keeps_the_last_history_changes_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let total = interstice_runtime::HISTORY + 10;
    let positions = {
        let node = open_fast(dir.path());
        node.install(hello_wasm()).unwrap();
        let (_, mut rx) = subscribe(&node, None);
        for i in 0..total {
            assert!(hello(&node, &format!("n{i}")).is_committed());
        }
        received(&mut rx)
    };
    assert_eq!(positions.len(), total);
    let node = open_fast(dir.path());
    let (complete, _) = subscribe(&node, Some(positions[0]));
    assert!(!complete, "the first changes were dropped");
    // The oldest kept change is the 11th: one who has it misses nothing.
    let (complete, mut rx) = subscribe(&node, Some(positions[10]));
    assert!(complete);
    assert_eq!(received(&mut rx), positions[11..]);
    let feed = node.store().table_id("__node.feed").unwrap();
    assert_eq!(
        node.store().read().len(feed).unwrap(),
        interstice_runtime::HISTORY
    );
}
