//! Node to node: remote calls queued by reducers, remote table subscriptions, connect and
//! disconnect, reconnection. Two nodes in one process, on loopback.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use interstice_abi::{ABI_VERSION, Access, NodeDependency, TableEvent, Value};
use interstice_runtime::net::{
    self, Client, ClientConfig, ErrorKind, Peers, PeersConfig, ServerConfig,
};
use interstice_runtime::testing::{module, probe_schema};
use interstice_runtime::{CallFailure, FeedSink, Node, NodeConfig, Outcome};
use interstice_store::Readable;

use crate::hello::build;

fn memory_node() -> Arc<Node> {
    Node::open(NodeConfig::default()).unwrap()
}

/// The probe module with node `peer` bound, reducers `bad` (with `access`) and `ok`.
fn probe_with_peer(node: &Node, bad: &str, access: Option<Access>, bind: bool) {
    let mut schema = probe_schema(&[("bad", access), ("ok", None)]);
    if bind {
        schema.nodes = vec![NodeDependency {
            name: "peer".into(),
            address: "127.0.0.1:1".into(),
        }];
    }
    node.install(&module(&schema, ABI_VERSION, &[bad, "(i32.const 0)"]))
        .unwrap();
}

fn failure(outcome: Outcome) -> CallFailure {
    match outcome {
        Outcome::Failed { reason, .. } => reason,
        other => panic!("expected a failure, got {other:?}"),
    }
}

const CALL_PEER: &str = "(drop (call $call_peer)) (i32.const 0)";

#[test]
fn a_remote_call_to_an_unbound_node_is_refused_with_what_to_run() {
    let node = memory_node();
    probe_with_peer(&node, CALL_PEER, None, false);
    let message = failure(node.call_reducer("probe", "bad", &[]).unwrap()).to_string();
    assert!(message.contains("no binding for node `peer`"), "{message}");
    assert!(
        message.contains("interstice bindings add node peer"),
        "{message}"
    );
}

#[test]
fn a_declared_reducer_must_declare_its_remote_calls() {
    let node = memory_node();
    let no_calls = Access {
        writes: vec!["items".into()],
        ..Access::default()
    };
    probe_with_peer(&node, CALL_PEER, Some(no_calls), true);
    let message = failure(node.call_reducer("probe", "bad", &[]).unwrap()).to_string();
    assert!(
        message.contains("add `calls(peer.hello.hello)`"),
        "{message}"
    );
}

#[test]
fn a_schema_naming_an_unbound_node_is_refused_at_load() {
    let node = memory_node();
    let calls_unbound = Access {
        calls: vec!["elsewhere.hello.hello".into()],
        ..Access::default()
    };
    let schema = probe_schema(&[("bad", Some(calls_unbound))]);
    let err = node
        .install(&module(&schema, ABI_VERSION, &["(i32.const 0)"]))
        .unwrap_err();
    assert!(err.to_string().contains("node `elsewhere`"), "{err}");
}

#[test]
fn bad_pointers_to_call_remote_fail_the_call_not_the_node() {
    let node = memory_node();
    let body = "(drop (call $call_remote (i32.const -8) (i32.const 16) (i32.const 0) (i32.const 0))) (i32.const 0)";
    probe_with_peer(&node, body, None, true);
    let reason = failure(node.call_reducer("probe", "bad", &[]).unwrap());
    assert!(matches!(reason, CallFailure::BadPointer(_)), "{reason}");
    assert!(
        node.call_reducer("probe", "ok", &[])
            .unwrap()
            .is_committed()
    );
}

#[test]
fn only_committed_reducers_send_their_remote_calls_in_commit_order() {
    let node = memory_node();
    // `bad` queues a call, then fails: nothing may leave.
    probe_with_peer(&node, "(drop (call $call_peer)) (i32.const 1)", None, true);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    node.set_outbound(tx);
    let calls: Vec<(&str, &str, &[u8])> = vec![("probe", "bad", &[]); 3];
    for outcome in node.call_reducers(&calls) {
        assert!(!outcome.unwrap().is_committed());
    }
    assert!(rx.try_recv().is_err(), "a failed reducer sent its call");

    let node = memory_node();
    probe_with_peer(&node, CALL_PEER, None, true);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    node.set_outbound(tx);
    let calls: Vec<(&str, &str, &[u8])> = vec![("probe", "bad", &[]); 3];
    let seqs: Vec<u64> = node
        .call_reducers(&calls)
        .into_iter()
        .map(|o| match o.unwrap() {
            Outcome::Committed { seq, .. } => seq,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seqs.len(), 3);
    for _ in 0..3 {
        let call = rx.try_recv().unwrap();
        assert_eq!(
            (
                call.node.as_str(),
                call.module.as_str(),
                call.reducer.as_str()
            ),
            ("peer", "hello", "hello")
        );
        assert_eq!(call.from, "probe");
    }
    assert!(rx.try_recv().is_err());
}

#[test]
fn a_subscriber_that_falls_behind_is_dropped_and_told() {
    let node = memory_node();
    node.install(&build("hello")).unwrap();
    let (events, mut queue) = tokio::sync::mpsc::channel(2);
    let lagged = Arc::new(tokio::sync::Notify::new());
    let sink = FeedSink {
        tag: 9,
        events,
        lagged: lagged.clone(),
    };
    node.subscribe_table("hello", "greetings", TableEvent::Insert, sink, None)
        .unwrap();
    for name in ["a", "b", "c", "d"] {
        let outcome = node
            .call_reducer_values("hello", "hello", &[Value::String(name.into())])
            .unwrap();
        assert!(outcome.is_committed());
    }
    // Two fit; the third found the queue full and dropped the subscription.
    let first = queue.try_recv().unwrap();
    assert_eq!((first.subscription, first.kind), (9, TableEvent::Insert));
    assert!(queue.try_recv().is_ok());
    assert!(queue.try_recv().is_err());
    {
        let notified = lagged.notified();
        tokio::pin!(notified);
        // `notify_one` stored a permit: this completes at once.
        assert!(futures_poll_once(notified.as_mut()));
    }
    let err = node
        .subscribe_table(
            "hello",
            "nope",
            TableEvent::Insert,
            FeedSink {
                tag: 1,
                events: tokio::sync::mpsc::channel(1).0,
                lagged,
            },
            None,
        )
        .unwrap_err();
    assert!(err.to_string().contains("table `nope`"), "{err}");
}

fn futures_poll_once<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> bool {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    future.poll(&mut cx).is_ready()
}

/// Polls `check` on a blocking thread until it holds, or fails the test after a minute.
async fn eventually(what: &str, mut check: impl FnMut() -> bool + Send + 'static) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (done, back) = tokio::task::spawn_blocking(move || (check(), check))
            .await
            .unwrap();
        if done {
            return;
        }
        check = back;
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn strings(value: Value, field: usize) -> Vec<String> {
    match value {
        Value::List(rows) => rows
            .into_iter()
            .map(|row| match row {
                Value::Struct(fields) => match &fields[field] {
                    Value::String(s) => s.clone(),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn received(node: &Node) -> Vec<String> {
    strings(node.call_query("caller", "received", &[]).unwrap(), 2)
}

/// `(node_id, connected)` of caller's `connections` rows.
fn connections(node: &Node) -> Vec<(String, bool)> {
    match node.call_query("caller", "connections", &[]).unwrap() {
        Value::List(rows) => rows
            .into_iter()
            .map(|row| match row {
                Value::Struct(f) => match (&f[1], &f[2]) {
                    (Value::String(id), Value::Bool(c)) => (id.clone(), *c),
                    other => panic!("{other:?}"),
                },
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn server_config(id: &str) -> ServerConfig {
    ServerConfig {
        node_id: id.into(),
        ..ServerConfig::default()
    }
}

fn peers_config(hello: std::net::SocketAddr) -> PeersConfig {
    PeersConfig {
        node_id: "caller-node".into(),
        addresses: HashMap::from([("hello_node".to_owned(), hello.to_string())]),
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        ..PeersConfig::default()
    }
}

/// Calls `module.reducer(name)` on a blocking thread and expects it to commit.
async fn say(node: &Arc<Node>, module: &'static str, reducer: &'static str, name: &str) {
    let (node, name) = (node.clone(), name.to_owned());
    let outcome = tokio::task::spawn_blocking(move || {
        node.call_reducer_values(module, reducer, &[Value::String(name)])
    })
    .await
    .unwrap()
    .unwrap();
    assert!(outcome.is_committed(), "{outcome:?}");
}

/// A hello node served on loopback and a caller node whose peers reach it, once the caller has
/// connected and its greeting came back.
async fn hello_and_caller() -> (Arc<Node>, net::Server, Arc<Node>, Peers) {
    let (hello_wasm, caller_wasm) =
        tokio::task::spawn_blocking(|| (build("hello"), build("caller")))
            .await
            .unwrap();
    let hello = memory_node();
    hello.install(&hello_wasm).unwrap();
    let server = net::serve(hello.clone(), "127.0.0.1:0", server_config("hello-node"))
        .await
        .unwrap();
    let caller = memory_node();
    caller.install(&caller_wasm).unwrap();
    let peers = Peers::start(caller.clone(), peers_config(server.local_addr()));
    let c = caller.clone();
    eventually("the greeting sent on connect", move || {
        received(&c) == ["caller"]
    })
    .await;
    (hello, server, caller, peers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caller_sees_hello_commits_in_order_and_survives_a_restart_of_hello() {
    // On connect, caller greets hello; the greeting comes back through the subscription.
    let (hello, server, caller, peers) = hello_and_caller().await;
    let addr = server.local_addr();
    assert_eq!(connections(&caller), [("hello-node".to_owned(), true)]);

    // Commits on hello arrive in hello's commit order, whoever made them.
    for name in ["A", "B", "C"] {
        say(&hello, "hello", "hello", name).await;
    }
    say(&caller, "caller", "greet", "D").await;
    let c = caller.clone();
    eventually("A, B, C and D", move || received(&c).len() == 5).await;
    assert_eq!(received(&caller), ["caller", "A", "B", "C", "D"]);

    // Hello saw caller connect, under caller's node id.
    let peers_table = hello.store().table_id("hello.peers").unwrap();
    let rows: Vec<_> = hello.store().read().scan(peers_table).unwrap().collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], Value::String("caller-node".into()));

    // Hello goes away: caller records the disconnect.
    server.shutdown().await;
    let c = caller.clone();
    eventually("the disconnect", move || connections(&c).len() == 2).await;
    assert_eq!(connections(&caller)[1], ("hello-node".to_owned(), false));

    // Calls made meanwhile wait for hello and leave in commit order once it is back.
    for name in ["E", "F"] {
        say(&caller, "caller", "greet", name).await;
    }
    let server = net::serve(hello.clone(), addr, server_config("hello-node"))
        .await
        .unwrap();
    let c = caller.clone();
    eventually("the reconnection", move || connections(&c).len() == 3).await;
    assert_eq!(connections(&caller)[2], ("hello-node".to_owned(), true));
    let c = caller.clone();
    eventually("E, F and the second hello", move || received(&c).len() == 8).await;
    assert_eq!(
        received(&caller)[5..],
        ["E", "F", "caller"],
        "queued calls first, then the connect hook's"
    );
    peers.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_to_private_modules_and_tables_are_refused() {
    let hello_wasm = tokio::task::spawn_blocking(|| build("hello"))
        .await
        .unwrap();
    let hello = memory_node();
    hello.install(&hello_wasm).unwrap();
    let server = net::serve(hello.clone(), "127.0.0.1:0", server_config("h"))
        .await
        .unwrap();
    let client = Client::connect(&server.local_addr().to_string(), ClientConfig::default())
        .await
        .unwrap();
    // `stats` is not `#[table(public)]`.
    let err = client
        .subscribe("hello", "stats", TableEvent::Update, None)
        .await
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::NotFound), "{err}");
    assert!(err.to_string().contains("no public table `stats`"), "{err}");
    let err = client
        .subscribe("nope", "t", TableEvent::Insert, None)
        .await
        .unwrap_err();
    assert_eq!(err.remote_kind(), Some(ErrorKind::NotFound), "{err}");
    // A public table streams its changes, tagged with the subscription.
    let mut events = client.events().unwrap();
    let (id, complete) = client
        .subscribe("hello", "greetings", TableEvent::Insert, None)
        .await
        .unwrap();
    assert!(complete);
    let greet = |name: &'static str| {
        let h = hello.clone();
        tokio::task::spawn_blocking(move || {
            h.call_reducer_values("hello", "hello", &[Value::String(name.into())])
        })
    };
    greet("Z").await.unwrap().unwrap();
    let event = events.recv().await.unwrap();
    assert_eq!(event.subscription, id);
    assert_eq!(event.change.kind, TableEvent::Insert);
    let z = (event.change.seq, event.change.part);

    // A subscriber that had Z gets what came after it first, then the rest live.
    greet("W").await.unwrap().unwrap();
    let late = Client::connect(&server.local_addr().to_string(), ClientConfig::default())
        .await
        .unwrap();
    let mut late_events = late.events().unwrap();
    let (_, complete) = late
        .subscribe("hello", "greetings", TableEvent::Insert, Some(z))
        .await
        .unwrap();
    assert!(complete, "everything after Z is kept");
    greet("V").await.unwrap().unwrap();
    let mut names = Vec::new();
    for _ in 0..2 {
        let change = late_events.recv().await.unwrap().change;
        assert!((change.seq, change.part) > z);
        let ty = interstice_abi::Type::Named("Greetings".into());
        match interstice_abi::decode(&change.rows, &ty, &hello_registry(&hello)).unwrap() {
            Value::Struct(fields) => names.push(fields[2].clone()),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(names, [Value::from("W"), Value::from("V")]);
    // One that stopped before the node kept anything is told it may have missed some.
    let (_, complete) = late
        .subscribe("hello", "greetings", TableEvent::Insert, Some((0, 0)))
        .await
        .unwrap();
    assert!(!complete);
    server.shutdown().await;
}

fn hello_registry(node: &Node) -> interstice_abi::TypeRegistry {
    node.schemas()
        .into_iter()
        .find(|s| s.name == "hello")
        .unwrap()
        .registry()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_committed_while_the_subscriber_was_away_arrive_once_on_reconnect() {
    let (hello, server, caller, peers) = hello_and_caller().await;
    let addr = server.local_addr();

    // Caller goes away; hello goes on committing.
    peers.shutdown().await;
    for name in ["P", "Q"] {
        say(&hello, "hello", "hello", name).await;
    }
    let peers = Peers::start(caller.clone(), peers_config(addr));
    let c = caller.clone();
    eventually("P, Q and the second greeting", move || {
        received(&c).len() >= 4
    })
    .await;
    // P and Q once each, in hello's order; the first greeting not again.
    assert_eq!(received(&caller), ["caller", "P", "Q", "caller"]);
    peers.shutdown().await;
    server.shutdown().await;
}

fn greeting_names(node: &Node) -> Vec<String> {
    strings(node.call_query("hello", "get_greetings", &[]).unwrap(), 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_from_another_nodes_outbox_runs_once_however_often_it_is_sent() {
    let hello_wasm = tokio::task::spawn_blocking(|| build("hello"))
        .await
        .unwrap();
    let hello = memory_node();
    hello.install(&hello_wasm).unwrap();
    let server = net::serve(hello.clone(), "127.0.0.1:0", server_config("h"))
        .await
        .unwrap();
    let addr = server.local_addr().to_string();
    let as_node = ClientConfig {
        kind: net::ClientKind::Node,
        node_id: Some("n1".into()),
        ..ClientConfig::default()
    };
    let node = Client::connect(&addr, as_node.clone()).await.unwrap();
    let call = |client: &Client, name: &str, origin: Option<(String, u64)>| {
        let (client, args) = (client.clone(), interstice_abi::encode(&Value::from(name)));
        async move {
            client
                .start_call_reducer("hello", "hello", args, origin)
                .await
                .unwrap()
                .await
                .unwrap()
        }
    };
    let origin = |id| Some(("caller".to_owned(), id));
    // Sent twice (a lost answer, a reconnection): committed both times, run once.
    for _ in 0..2 {
        let outcome = call(&node, "seven", origin(7)).await;
        assert!(
            matches!(outcome, net::ReducerOutcome::Committed { .. }),
            "{outcome:?}"
        );
    }
    // An older number was run already too; a newer one runs.
    call(&node, "six", origin(6)).await;
    call(&node, "eight", origin(8)).await;
    // On a new connection of the same node, the numbers still hold.
    let again = Client::connect(&addr, as_node).await.unwrap();
    call(&again, "seven", origin(7)).await;
    // The numbers are per calling module and per node; a CLI's origin means nothing.
    call(&again, "other module", Some(("else".to_owned(), 7))).await;
    let cli = Client::connect(&addr, ClientConfig::default())
        .await
        .unwrap();
    call(&cli, "cli", origin(7)).await;
    call(&cli, "cli", origin(7)).await;
    let h = hello.clone();
    let names = tokio::task::spawn_blocking(move || greeting_names(&h))
        .await
        .unwrap();
    assert_eq!(names, ["seven", "eight", "other module", "cli", "cli"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_calls_committed_while_the_peer_is_down_survive_a_restart_and_arrive_once() {
    let (hello_wasm, caller_wasm) =
        tokio::task::spawn_blocking(|| (build("hello"), build("caller")))
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let open_caller = {
        let data = dir.path().to_owned();
        move || {
            Node::open(NodeConfig {
                data_dir: Some(data.clone()),
                ..NodeConfig::default()
            })
            .unwrap()
        }
    };
    // Where hello will be, once it runs.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let caller = open_caller();
    caller.install(&caller_wasm).unwrap();
    let peers = Peers::start(caller.clone(), peers_config(addr));
    for name in ["X", "Y"] {
        say(&caller, "caller", "greet", name).await;
    }
    assert_eq!(caller.pending_remote("hello_node").unwrap().len(), 2);
    // The caller node goes away with its calls unsent, and comes back from its data.
    peers.shutdown().await;
    drop(caller);
    let caller = tokio::task::spawn_blocking(open_caller).await.unwrap();
    let pending = caller.pending_remote("hello_node").unwrap();
    let names: Vec<&str> = pending.iter().map(|c| c.reducer.as_str()).collect();
    assert_eq!(names, ["hello", "hello"]);

    let hello = memory_node();
    hello.install(&hello_wasm).unwrap();
    let server = net::serve(hello.clone(), addr, server_config("hello-node"))
        .await
        .unwrap();
    let peers = Peers::start(caller.clone(), peers_config(addr));
    let h = hello.clone();
    eventually("X, Y and the greeting on connect", move || {
        greeting_names(&h).len() >= 3
    })
    .await;
    let c = caller.clone();
    eventually("the outbox to empty", move || {
        c.pending_remote("hello_node").unwrap().is_empty()
    })
    .await;
    // Every call exactly once, the ones from before the restart first.
    assert_eq!(greeting_names(&hello), ["X", "Y", "caller"]);
    peers.shutdown().await;
    server.shutdown().await;
}
