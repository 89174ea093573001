//! Connections to the other nodes that installed modules depend on.
//!
//! Each node binding of an installed module (`src/bindings/node_<name>.toml`) becomes one peer:
//! a connection kept open with reconnection and exponential backoff. On every connect the peer
//! subscribes to the tables the modules subscribe to on that node (`<node>.<module>.<table>.
//! <event>`) and fires the modules' `connect` hooks with the remote node's id; when the
//! connection is lost it fires `disconnect`. Remote changes enter this node's ingress through
//! `Node::deliver_remote`, one at a time, in the order the other node committed them. Remote
//! reducer calls that committed reducers queue (`ctx.call_remote`) are sent in commit order;
//! they wait in the module's outbox (on disk) until the peer answers, and every connect sends
//! what is still there first. The peer runs each `(node, module, outbox number)` once, so a
//! call sent again after a lost answer or a restart is not run twice.
//!
//! The changes a peer commits while this node is disconnected are replayed when it reconnects:
//! each subscription resumes after the last change its subscribers committed, from what the peer
//! kept (its last `HISTORY` changes of each subscribed table); a subscriber that missed more is
//! told so and logs it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use interstice_abi::TableEvent;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::NetError;
use super::client::{Client, ClientConfig};
use super::proto::{ClientKind, ReducerOutcome};
use crate::{Node, Position, RemoteCall, RemoteNode};

/// How to reach the other nodes.
#[derive(Clone, Debug)]
pub struct PeersConfig {
    /// This node's id, sent in the handshake. By default, empty (set it).
    pub node_id: String,
    /// Addresses that replace the ones in the bindings, by node name (`--peer name=addr`).
    /// By default, none.
    pub addresses: HashMap<String, String>,
    /// The first wait before reconnecting; it doubles up to `backoff_max`. By default, 100 ms.
    pub backoff_min: Duration,
    /// By default, 5 s.
    pub backoff_max: Duration,
    /// How long a remote call may wait for its answer. By default, 30 s.
    pub request_timeout: Duration,
    /// Remote calls queued in memory for one peer; beyond it they wait in the outbox for the
    /// next connection. By default, 100 000.
    pub max_queued_calls: usize,
}

impl Default for PeersConfig {
    fn default() -> Self {
        PeersConfig {
            node_id: String::new(),
            addresses: HashMap::new(),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_queued_calls: 100_000,
        }
    }
}

/// The running peer connections. They stop on [`Peers::shutdown`] or when this is dropped.
pub struct Peers {
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Peers {
    /// Starts connecting to the nodes the installed modules depend on, and follows the set of
    /// modules as they are published and removed. Must be called inside a tokio runtime.
    pub fn start(node: Arc<Node>, config: PeersConfig) -> Peers {
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let (outbound, calls) = mpsc::unbounded_channel();
        node.set_outbound(outbound);
        tasks.spawn(supervise(
            node,
            Arc::new(config),
            calls,
            cancel.clone(),
            tasks.clone(),
        ));
        Peers { cancel, tasks }
    }

    /// Closes every peer connection (firing `disconnect`) and waits for that.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A peer's queue of calls outlives its connection task, which is restarted when what the
/// modules need from that node changes.
struct Queue {
    tx: mpsc::Sender<RemoteCall>,
    rx: Arc<Mutex<mpsc::Receiver<RemoteCall>>>,
}

struct Running {
    wanted: RemoteNode,
    stop: CancellationToken,
}

async fn supervise(
    node: Arc<Node>,
    config: Arc<PeersConfig>,
    mut calls: mpsc::UnboundedReceiver<RemoteCall>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    let mut modules = node.watch_modules();
    let mut queues: HashMap<String, Queue> = HashMap::new();
    let mut running: HashMap<String, Running> = HashMap::new();
    // Recomputed when the modules change, not for every call routed.
    let mut modules_changed = true;
    loop {
        if !std::mem::take(&mut modules_changed) {
            tokio::select! {
                () = cancel.cancelled() => return,
                changed = modules.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    modules_changed = true;
                }
                call = calls.recv() => {
                    let Some(call) = call else { return };
                    route(&queues, call);
                    // Drain what else is queued before waiting again.
                    while let Ok(call) = calls.try_recv() {
                        route(&queues, call);
                    }
                }
            }
            continue;
        }
        let wanted: Vec<RemoteNode> = node
            .remote_nodes()
            .into_iter()
            .map(|mut n| {
                if let Some(address) = config.addresses.get(&n.name) {
                    n.address = address.clone();
                }
                n
            })
            .collect();
        running.retain(|name, r| {
            let keep = wanted.iter().any(|w| w == &r.wanted);
            if !keep {
                tracing::debug!(node = %name, "peer no longer needed as it was");
                r.stop.cancel();
            }
            keep
        });
        for want in wanted {
            if running.contains_key(&want.name) {
                continue;
            }
            let queue = queues.entry(want.name.clone()).or_insert_with(|| {
                let (tx, rx) = mpsc::channel(config.max_queued_calls.max(1));
                Queue {
                    tx,
                    rx: Arc::new(Mutex::new(rx)),
                }
            });
            let stop = cancel.child_token();
            tasks.spawn(peer(
                node.clone(),
                config.clone(),
                want.clone(),
                queue.rx.clone(),
                stop.clone(),
            ));
            running.insert(want.name.clone(), Running { wanted: want, stop });
        }
    }
}

fn route(queues: &HashMap<String, Queue>, call: RemoteCall) {
    match queues.get(&call.node) {
        Some(queue) => {
            if let Err(e) = queue.tx.try_send(call) {
                let call = match e {
                    mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c) => c,
                };
                tracing::error!(
                    node = %call.node, module = %call.module, reducer = %call.reducer, from = %call.from,
                    "too many remote calls waiting for this node; this one stays in the outbox until the next connection"
                );
            }
        }
        None => tracing::warn!(
            node = %call.node, from = %call.from,
            "no connection to this node yet; the call waits in the outbox for the first one"
        ),
    }
}

/// One peer: connect, subscribe, fire `connect`, serve events and calls until the connection
/// breaks, fire `disconnect`, wait, and again.
async fn peer(
    node: Arc<Node>,
    config: Arc<PeersConfig>,
    want: RemoteNode,
    queue: Arc<Mutex<mpsc::Receiver<RemoteCall>>>,
    stop: CancellationToken,
) {
    let name = want.name.clone();
    let address = want.address.clone();
    // Exclusive for this task's life: a restarted task takes over the same queue in order.
    let mut queue = tokio::select! {
        () = stop.cancelled() => return,
        queue = queue.lock_owned() => queue,
    };
    let client_config = ClientConfig {
        kind: ClientKind::Node,
        node_id: Some(config.node_id.clone()),
        request_timeout: config.request_timeout,
        ..ClientConfig::default()
    };
    let mut backoff = config.backoff_min;
    let mut failures = 0u32;
    loop {
        let connected = tokio::select! {
            () = stop.cancelled() => return,
            connected = Client::connect(&address, client_config.clone()) => connected,
        };
        match connected {
            Err(e) => {
                if failures == 0 {
                    tracing::warn!(node = %name, %address, error = %e, "cannot reach peer; retrying with backoff");
                } else {
                    tracing::debug!(node = %name, %address, error = %e, failures, "peer still unreachable");
                }
                failures = failures.saturating_add(1);
            }
            Ok(client) => {
                failures = 0;
                backoff = config.backoff_min;
                let remote_id = client.node_id().to_owned();
                tracing::info!(node = %name, %address, id = %remote_id, "connected to peer");
                let stopped = serve_peer(&node, &want, &client, &mut queue, &stop).await;
                tracing::info!(node = %name, id = %remote_id, "disconnected from peer");
                if stopped {
                    return;
                }
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(config.backoff_max);
    }
}

/// What a peer hands to its node, in order, on one blocking thread.
enum Work {
    /// Remote calls the peer answered: `(calling module, outbox number)`.
    Acked(Vec<(String, u64)>),
    Connected(String),
    Change {
        module: String,
        table: String,
        kind: TableEvent,
        position: Position,
        rows: Vec<u8>,
    },
    Disconnected(String),
}

/// Runs a peer's work against the node: hooks and remote changes, strictly in arrival order.
fn deliver(node: &Node, peer: &str, remote_id: &str, mut work: mpsc::Receiver<Work>) {
    let mut held = None;
    while let Some(mut item) = held.take().or_else(|| work.blocking_recv()) {
        // Acknowledgements that queued up together are forgotten in one system commit.
        if let Work::Acked(acks) = &mut item {
            while let Ok(next) = work.try_recv() {
                match next {
                    Work::Acked(more) => acks.extend(more),
                    other => {
                        held = Some(other);
                        break;
                    }
                }
            }
        }
        let result = match &item {
            Work::Acked(acks) => node.ack_remote(acks),
            Work::Connected(id) => node.peer_connected(id).map(drop),
            Work::Change {
                module,
                table,
                kind,
                position,
                rows,
            } => node
                .deliver_remote(remote_id, peer, module, table, *kind, *position, rows)
                .map(drop),
            Work::Disconnected(id) => node.peer_disconnected(id).map(drop),
        };
        if let Err(e) = result {
            let what = match item {
                Work::Acked(_) => "forgetting answered remote calls",
                Work::Connected(_) => "connect hooks",
                Work::Change { .. } => "a remote change",
                Work::Disconnected(_) => "disconnect hooks",
            };
            tracing::error!(node = %peer, error = %e, "{what} failed");
        }
    }
}

/// Serves one connection; returns whether the peer was stopped (rather than disconnected).
/// Fires `connect` once subscribed and `disconnect` when done, through the same queue as the
/// changes, so a module sees connect, changes, disconnect in that order.
async fn serve_peer(
    node: &Arc<Node>,
    want: &RemoteNode,
    client: &Client,
    queue: &mut mpsc::Receiver<RemoteCall>,
    stop: &CancellationToken,
) -> bool {
    let name = &want.name;
    let Some(mut events) = client.events() else {
        return false;
    };
    let remote_id = client.node_id().to_owned();
    let mut subscriptions: HashMap<u64, (String, String, TableEvent)> = HashMap::new();
    for (module, table, kind) in &want.subscriptions {
        // Resume where every subscriber here stopped, so what the peer committed meanwhile
        // (and still keeps) arrives too; subscribers skip what they already had.
        let after = {
            let (node, id, name) = (node.clone(), remote_id.clone(), name.clone());
            let (module, table, kind) = (module.clone(), table.clone(), *kind);
            tokio::task::spawn_blocking(move || {
                node.remote_position(&id, &name, &module, &table, kind)
            })
            .await
            .ok()
            .and_then(Result::ok)
            .flatten()
        };
        match client.subscribe(module, table, *kind, after).await {
            Ok((id, complete)) => {
                if !complete {
                    tracing::warn!(
                        node = %name, %module, %table, event = ?kind, ?after,
                        "the peer no longer keeps every change committed while we were away; some were missed"
                    );
                }
                subscriptions.insert(id, (module.clone(), table.clone(), *kind));
            }
            Err(e) => tracing::error!(
                node = %name, %module, %table, event = ?kind, error = %e,
                "cannot subscribe on peer; its events will not arrive"
            ),
        }
    }
    let (work, work_queue) = mpsc::channel(1024);
    let worker = {
        let (node, name, id) = (node.clone(), name.clone(), remote_id.clone());
        tokio::task::spawn_blocking(move || deliver(&node, &name, &id, work_queue))
    };
    let _ = work.send(Work::Connected(remote_id.clone())).await;
    let mut answers: FuturesUnordered<Answering> = FuturesUnordered::new();
    // What committed before this connection and was never answered goes first, in outbox
    // order; the queue may hold some of it too, which `sent` skips.
    let mut sent: HashMap<String, u64> = HashMap::new();
    let pending = {
        let (node, name) = (node.clone(), name.clone());
        tokio::task::spawn_blocking(move || node.pending_remote(&name)).await
    };
    match pending {
        Ok(Ok(pending)) => {
            if !pending.is_empty() {
                tracing::info!(node = %name, calls = pending.len(), "sending remote calls committed while the peer was away");
            }
            for call in pending {
                send(client, call, &mut sent, &mut answers).await;
            }
        }
        Ok(Err(e)) => tracing::error!(node = %name, error = %e, "cannot read the outbox"),
        Err(e) => tracing::error!(node = %name, error = %e, "cannot read the outbox"),
    }
    let stopped = loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break true,
            () = client.closed() => break false,
            Some(answer) = answers.next(), if !answers.is_empty() => {
                if let Some(ack) = settled(answer) && work.send(Work::Acked(vec![ack])).await.is_err() {
                    break false;
                }
            }
            event = events.recv() => {
                let Some(event) = event else { break false };
                let Some((module, table, _)) = subscriptions.get(&event.subscription) else {
                    continue;
                };
                let change = Work::Change {
                    module: module.clone(),
                    table: table.clone(),
                    kind: event.change.kind,
                    position: (event.change.seq, event.change.part),
                    rows: event.change.rows,
                };
                if work.send(change).await.is_err() {
                    break false;
                }
            }
            call = queue.recv() => {
                let Some(call) = call else { break true };
                send(client, call, &mut sent, &mut answers).await;
            }
        }
    };
    if !answers.is_empty() {
        tracing::info!(
            node = %name, calls = answers.len(),
            "remote calls were in flight when the connection ended; they will be sent again"
        );
    }
    let _ = work.send(Work::Disconnected(remote_id)).await;
    drop(work);
    let _ = worker.await;
    stopped
}

type Answer = (RemoteCall, Result<ReducerOutcome, NetError>);

/// A remote call's answer on its way.
type Answering = std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + Send>>;

/// Writes `call` now (so calls leave in commit order) unless this connection sent it already;
/// its answer joins `answers`.
async fn send(
    client: &Client,
    call: RemoteCall,
    sent: &mut HashMap<String, u64>,
    answers: &mut FuturesUnordered<Answering>,
) {
    let last = sent.entry(call.from.clone()).or_insert(0);
    if call.id != 0 && call.id <= *last {
        return;
    }
    *last = call.id;
    let origin = (call.id != 0).then(|| (call.from.clone(), call.id));
    match client
        .start_call_reducer(&call.module, &call.reducer, call.args.clone(), origin)
        .await
    {
        Ok(answer) => answers.push(Box::pin(async move { (call, answer.await) })),
        Err(e) => {
            let _ = settled((call, Err(e)));
        }
    }
}

/// Logs an answer; returns the call to forget when the peer has decided it (committed, failed,
/// or refused), and `None` when it may not have arrived and must be sent again.
fn settled((call, answer): Answer) -> Option<(String, u64)> {
    let decided = match answer {
        Ok(ReducerOutcome::Committed { seq, .. }) => {
            tracing::debug!(
                node = %call.node, module = %call.module, reducer = %call.reducer, seq,
                "remote call committed"
            );
            true
        }
        Ok(ReducerOutcome::Failed { reason, .. }) => {
            tracing::warn!(
                node = %call.node, module = %call.module, reducer = %call.reducer, from = %call.from,
                %reason, "remote call failed on the peer"
            );
            true
        }
        Err(NetError::Remote(e)) => {
            tracing::warn!(
                node = %call.node, module = %call.module, reducer = %call.reducer, from = %call.from,
                error = %e, "the peer refused a remote call"
            );
            true
        }
        Err(e) => {
            tracing::debug!(
                node = %call.node, module = %call.module, reducer = %call.reducer,
                error = %e, "no answer to a remote call; it stays in the outbox"
            );
            false
        }
    };
    (decided && call.id != 0).then_some((call.from, call.id))
}
