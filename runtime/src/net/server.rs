//! Serving a node over TCP.
//!
//! Per connection: the handshake runs as a task; then one blocking worker reads the requests
//! from the socket itself, runs them against the (synchronous) [`Node`] in arrival order and
//! writes the answers in that order. A second thread, started by the first subscription,
//! writes committed changes. Bad input from one peer closes that peer's connection and
//! nothing else.

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use interstice_abi::{ModuleSchema, Type, TypeRegistry, decode_fields, encode};
use parking_lot::RwLock;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::NetError;
use super::proto::{
    self, ClientKind, ErrorKind, HandshakeError, Hello, PROTOCOL_VERSION, PublishReport,
    ReducerOutcome, RemoteError, Request, RequestFrame, Response, ResponseFrame, TableChange,
    Welcome,
};
use super::wire::{BusyPoll, FrameReader, FrameWriter, ReadError};
use crate::{BadArguments, FeedEvent, FeedSink, Node, NodeError, Outcome, Principal, Published};

/// How to serve a node.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The node's id, sent in the handshake. By default, empty (set it).
    pub node_id: String,
    /// The token that makes a client admin. By default, `None`: nobody is admin, so nobody may
    /// call private modules nor publish (unless the node's [`AccessPolicy`](crate::AccessPolicy)
    /// allows anonymous publishing).
    pub admin_token: Option<String>,
    /// The largest frame accepted, in bytes. By default, 64 MiB.
    pub max_frame_length: usize,
    /// How long a new connection has to complete the handshake. By default, 10 s.
    pub handshake_timeout: Duration,
    /// How long a connection's worker polls its socket for the next request before it blocks.
    /// Polling burns a CPU for that long after each answer, and saves the wake-up of a sleeping
    /// CPU when the next request comes soon, which is most of a round trip on virtual machines
    /// (docs/BENCHMARKS.md). At most a quarter of the CPUs poll at once (at least one). `ZERO`
    /// never polls. By default, 50 µs.
    pub busy_poll: Duration,
    /// Committed changes queued for one connection's subscriptions before it counts as fallen
    /// behind and is closed. By default, 65 536.
    pub max_queued_events: usize,
    /// Connections served at once; more are refused in the handshake, except the admin's, so
    /// that idle connections cannot take every thread and the owner is never locked out. Each
    /// connection holds a thread (two once it subscribes). By default, 200.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            node_id: String::new(),
            admin_token: None,
            max_frame_length: proto::DEFAULT_MAX_FRAME_LENGTH,
            handshake_timeout: Duration::from_secs(10),
            busy_poll: Duration::from_micros(50),
            max_queued_events: 65_536,
            max_connections: 200,
        }
    }
}

/// A running server. It stops when [`Server::shutdown`] is called or when it is dropped.
pub struct Server {
    local_addr: SocketAddr,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl Server {
    /// The address it listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets every connection finish the requests it has read, and waits.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Binds `addr` and serves `node` on the current tokio runtime until the returned [`Server`] is
/// shut down.
pub async fn serve(
    node: Arc<Node>,
    addr: impl ToSocketAddrs,
    config: ServerConfig,
) -> Result<Server, NetError> {
    let listener = TcpListener::bind(addr).await.map_err(NetError::Bind)?;
    let local_addr = listener.local_addr().map_err(NetError::Bind)?;
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let pollers = std::thread::available_parallelism().map_or(1, |n| (n.get() / 4).max(1));
    let shared = Arc::new(Shared {
        node,
        poll: BusyPoll::new(config.busy_poll, pollers),
        config,
        schemas: RwLock::new(Arc::new(HashMap::new())),
        connections: AtomicUsize::new(0),
    });
    shared.refresh_schemas();
    tasks.spawn(accept(listener, shared, cancel.clone(), tasks.clone()));
    tracing::info!(%local_addr, "serving");
    Ok(Server {
        local_addr,
        cancel,
        tasks,
    })
}

async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                tasks.spawn(connection(
                    stream,
                    peer,
                    shared.clone(),
                    cancel.clone(),
                    tasks.clone(),
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// What every connection shares.
struct Shared {
    node: Arc<Node>,
    config: ServerConfig,
    poll: BusyPoll,
    /// What requests need to know about modules, refreshed on publish, remove and misses.
    schemas: RwLock<Arc<HashMap<String, Arc<ModuleInfo>>>>,
    /// Connections past the handshake.
    connections: AtomicUsize,
}

/// A served connection's place in [`ServerConfig::max_connections`], given back on drop.
struct Slot(Arc<Shared>);

impl Slot {
    /// A place for a new connection, if one is free or the connection is the admin's.
    fn take(shared: &Arc<Shared>, admin: bool) -> Option<Slot> {
        let before = shared.connections.fetch_add(1, Ordering::AcqRel);
        if before >= shared.config.max_connections && !admin {
            shared.connections.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot(shared.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

struct ModuleInfo {
    schema: ModuleSchema,
    registry: TypeRegistry,
    queries: HashMap<String, (Vec<Type>, Type)>,
}

/// One authenticated connection.
struct Session {
    admin: bool,
    peer: SocketAddr,
    /// The id of the connecting node, for node-to-node connections.
    peer_node: Option<String>,
    /// Where this connection's subscriptions send committed changes.
    events: mpsc::Sender<FeedEvent>,
    /// Notified when this connection fell behind its subscriptions.
    lagged: Arc<tokio::sync::Notify>,
}

impl Session {
    fn principal(&self) -> Principal {
        if self.admin {
            Principal::Admin
        } else {
            Principal::Anonymous
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    let _ = stream.set_nodelay(true);
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(shared.config.max_frame_length)
        .new_codec();
    let mut framed = Framed::new(stream, codec);
    let (events, event_queue) = mpsc::channel(shared.config.max_queued_events.max(1));
    let (session, slot) = match handshake(&mut framed, peer, &shared, &cancel, events).await {
        Some(accepted) => accepted,
        None => return,
    };
    tracing::debug!(%peer, admin = session.admin, node = ?session.peer_node, "connected");
    // From here on the socket is blocking and belongs to this connection's threads.
    let parts = framed.into_parts();
    let handles = parts.io.into_std().and_then(|stream| {
        stream.set_nonblocking(false)?;
        Ok((stream.try_clone()?, stream.try_clone()?, stream))
    });
    let (read, write, control) = match handles {
        Ok(handles) => handles,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "closing connection: cannot hand the socket over");
            return;
        }
    };
    let reader = FrameReader::new(read, &parts.read_buf, shared.config.max_frame_length);
    let writer = Arc::new(FrameWriter::new(write));
    // Cancelled when the connection must end now: it broke, fell behind, or its worker ended.
    let closed = CancellationToken::new();
    let lagged = session.lagged.clone();
    let worker = Worker {
        _slot: slot,
        shared: shared.clone(),
        session,
        writer,
        closed: closed.clone(),
        events: Some(event_queue),
        tasks: tasks.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    tasks.spawn_blocking(move || worker.run(reader));

    // Unblocks the threads, which wait in system calls, by shutting the socket down.
    tokio::select! {
        () = closed.cancelled() => {}
        () = lagged.notified() => {
            tracing::warn!(%peer, "closing connection: it fell behind its subscriptions");
            closed.cancel();
        }
        () = cancel.cancelled() => {
            // Stop reading; the worker answers what it has read, for up to a second.
            let _ = control.shutdown(Shutdown::Read);
            let _ = tokio::time::timeout(Duration::from_secs(1), closed.cancelled()).await;
        }
    }
    let _ = control.shutdown(Shutdown::Both);
    tracing::debug!(%peer, "socket shut down");
}

/// Writes a connection's subscription events, in the order the commit produced them, batching
/// whatever is queued into one write.
fn write_events(
    mut queue: mpsc::Receiver<FeedEvent>,
    writer: &FrameWriter,
    closed: &CancellationToken,
    runtime: &tokio::runtime::Handle,
    peer: SocketAddr,
) {
    let frame = |out: &mut Vec<u8>, event: FeedEvent| {
        let payload = proto::encode(&ResponseFrame {
            id: event.subscription,
            response: Response::Event(TableChange {
                seq: event.seq,
                part: event.part,
                kind: event.kind,
                rows: event.rows,
            }),
        });
        FrameWriter::frame(out, &payload);
    };
    let mut out = Vec::new();
    loop {
        let event = runtime.block_on(async {
            tokio::select! {
                () = closed.cancelled() => None,
                event = queue.recv() => event,
            }
        });
        let Some(event) = event else { return };
        out.clear();
        frame(&mut out, event);
        while out.len() < WRITE_BATCH
            && let Ok(event) = queue.try_recv()
        {
            frame(&mut out, event);
        }
        if let Err(e) = writer.send(&out) {
            tracing::debug!(%peer, error = %e, "cannot write events; the connection is closing");
            closed.cancel();
            return;
        }
    }
}

/// Answers or events gathered for one write stop at about this many bytes.
const WRITE_BATCH: usize = 256 << 10;

async fn handshake(
    framed: &mut Framed<TcpStream, LengthDelimitedCodec>,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    cancel: &CancellationToken,
    events: mpsc::Sender<FeedEvent>,
) -> Option<(Session, Slot)> {
    let first = tokio::select! {
        () = cancel.cancelled() => return None,
        first = tokio::time::timeout(shared.config.handshake_timeout, framed.next()) => first,
    };
    let frame = match first {
        Err(_) => {
            tracing::warn!(%peer, "closing connection: no handshake in time");
            return None;
        }
        Ok(None) => return None,
        Ok(Some(Err(e))) => {
            tracing::warn!(%peer, error = %e, "closing connection: unreadable handshake");
            return None;
        }
        Ok(Some(Ok(frame))) => frame,
    };
    let refuse = |reason: String| {
        tracing::warn!(%peer, %reason, "refused connection");
        Bytes::from(proto::encode_handshake(&Welcome::Refused { reason }))
    };
    let hello: Hello = match proto::decode_handshake(&frame) {
        Ok(hello) => hello,
        Err(HandshakeError::NotInterstice) => {
            tracing::warn!(%peer, "closing connection: not an Interstice handshake");
            return None;
        }
        Err(HandshakeError::Version(theirs)) => {
            let reason = format!(
                "the client speaks protocol version {theirs}, this node speaks version {PROTOCOL_VERSION}; use matching versions of interstice"
            );
            let _ = framed.send(refuse(reason)).await;
            return None;
        }
        Err(HandshakeError::Malformed(e)) => {
            let _ = framed
                .send(refuse(format!("malformed handshake: {e}")))
                .await;
            return None;
        }
    };
    if let Some(expected) = hello
        .expect_node
        .as_ref()
        .filter(|expected| **expected != shared.config.node_id)
    {
        let reason = format!(
            "this is node {}, not {expected}; the address now belongs to another node",
            shared.config.node_id
        );
        let _ = framed.send(refuse(reason)).await;
        return None;
    }
    let admin = match (&shared.config.admin_token, &hello.admin_token) {
        (Some(ours), Some(theirs)) => {
            if constant_time_eq(ours.as_bytes(), theirs.as_bytes()) {
                true
            } else {
                let _ = framed
                    .send(refuse(
                        "wrong admin token; connect without one for public access".into(),
                    ))
                    .await;
                return None;
            }
        }
        _ => false,
    };
    let Some(slot) = Slot::take(shared, admin) else {
        let reason = format!(
            "this node already serves {} connections, its limit; try again later",
            shared.config.max_connections
        );
        let _ = framed.send(refuse(reason)).await;
        return None;
    };
    let welcome = Welcome::Accepted {
        node_id: shared.config.node_id.clone(),
        admin,
    };
    framed
        .send(Bytes::from(proto::encode_handshake(&welcome)))
        .await
        .ok()?;
    let peer_node = match hello.kind {
        ClientKind::Node => hello.node_id.filter(|id| !id.is_empty() && id.len() <= 128),
        ClientKind::Cli => None,
    };
    let session = Session {
        admin,
        peer,
        peer_node,
        events,
        lagged: Arc::new(tokio::sync::Notify::new()),
    };
    Some((session, slot))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One connection's worker and what it needs.
struct Worker {
    _slot: Slot,
    shared: Arc<Shared>,
    session: Session,
    writer: Arc<FrameWriter>,
    closed: CancellationToken,
    /// Taken by the first subscription, which starts the thread that writes events.
    events: Option<mpsc::Receiver<FeedEvent>>,
    tasks: TaskTracker,
    runtime: tokio::runtime::Handle,
}

impl Worker {
    /// Reads requests, runs them in order and writes the answers in order, writing whenever
    /// no further request is already read. Reducer calls that arrived together run as one
    /// batch, so the scheduler sees them in one window.
    fn run(mut self, mut reader: FrameReader) {
        let (shared, peer) = (self.shared.clone(), self.session.peer);
        if let Some(id) = &self.session.peer_node
            && let Err(e) = shared.node.peer_connected(id)
        {
            tracing::error!(%peer, node = %id, error = %e, "connect hooks failed");
        }
        let mut out = Vec::new();
        let mut held: Option<RequestFrame> = None;
        let mut stop = false;
        while !stop {
            let first = match held.take() {
                Some(first) => first,
                None => match next_request(&mut reader, &shared.poll, peer) {
                    Some(first) => first,
                    None => break,
                },
            };
            let mut batch = vec![first];
            if matches!(batch[0].request, Request::CallReducer { .. }) {
                while batch.len() < MAX_BATCH && reader.has_frame() {
                    match buffered_request(&mut reader, peer) {
                        Some(next) if matches!(next.request, Request::CallReducer { .. }) => {
                            batch.push(next)
                        }
                        Some(next) => {
                            held = Some(next);
                            break;
                        }
                        None => {
                            stop = true;
                            break;
                        }
                    }
                }
            }
            if self.events.is_some()
                && batch
                    .iter()
                    .any(|r| matches!(r.request, Request::Subscribe { .. }))
            {
                self.start_writing_events();
            }
            let ids: Vec<u64> = batch.iter().map(|r| r.id).collect();
            let responses = std::panic::catch_unwind(AssertUnwindSafe(|| {
                shared.handle_batch(&self.session, batch)
            }))
            .unwrap_or_else(|_| {
                tracing::error!(%peer, "request handler panicked");
                ids.iter()
                    .map(|_| {
                        error(
                            ErrorKind::Internal,
                            "the node failed on this request; see its log",
                        )
                    })
                    .collect()
            });
            for (id, response) in ids.into_iter().zip(responses) {
                FrameWriter::frame(&mut out, &proto::encode(&ResponseFrame { id, response }));
            }
            let more = held.is_some() || (!stop && reader.has_frame());
            if !more || out.len() >= WRITE_BATCH {
                if let Err(e) = self.writer.send(&out) {
                    tracing::debug!(%peer, error = %e, "cannot write; dropping the connection");
                    break;
                }
                out.clear();
            }
        }
        self.closed.cancel();
        if let Some(id) = &self.session.peer_node
            && let Err(e) = shared.node.peer_disconnected(id)
        {
            tracing::error!(%peer, node = %id, error = %e, "disconnect hooks failed");
        }
        tracing::debug!(%peer, "disconnected");
    }

    fn start_writing_events(&mut self) {
        let Some(queue) = self.events.take() else {
            return;
        };
        let (writer, closed, runtime) = (
            self.writer.clone(),
            self.closed.clone(),
            self.runtime.clone(),
        );
        let peer = self.session.peer;
        self.tasks.spawn_blocking_on(
            move || write_events(queue, &writer, &closed, &runtime, peer),
            &self.runtime,
        );
    }
}

/// The next request, waiting for it; `None` when the connection ends, with the reason logged
/// when it is not a plain close.
fn next_request(
    reader: &mut FrameReader,
    poll: &BusyPoll,
    peer: SocketAddr,
) -> Option<RequestFrame> {
    match reader.next(poll) {
        Ok(Some(frame)) => decode_request(frame, peer),
        Ok(None) => None,
        Err(e) => {
            unreadable(&e, peer);
            None
        }
    }
}

/// The next request if it is already read.
fn buffered_request(reader: &mut FrameReader, peer: SocketAddr) -> Option<RequestFrame> {
    match reader.buffered() {
        Ok(Some(frame)) => decode_request(frame, peer),
        Ok(None) => None,
        Err(e) => {
            unreadable(&e, peer);
            None
        }
    }
}

fn unreadable(e: &ReadError, peer: SocketAddr) {
    match e {
        // A reset or a shutdown of the socket is how connections end, not bad input.
        ReadError::Io(e) => tracing::debug!(%peer, error = %e, "connection ended"),
        e => tracing::warn!(%peer, error = %e, "closing connection: unreadable frame"),
    }
}

fn decode_request(frame: &[u8], peer: SocketAddr) -> Option<RequestFrame> {
    match proto::decode::<RequestFrame>(frame) {
        Ok(request) => Some(request),
        Err(e) => {
            tracing::warn!(%peer, error = %e, len = frame.len(), "closing connection: malformed request");
            None
        }
    }
}

/// The most queued reducer calls of one connection run as one batch.
const MAX_BATCH: usize = 256;

fn error(kind: ErrorKind, message: impl Into<String>) -> Response {
    Response::Error(RemoteError {
        kind,
        message: message.into(),
    })
}

fn reducer_response(outcome: Result<Outcome, NodeError>) -> Response {
    match outcome {
        Ok(Outcome::Committed { seq, lsn }) => {
            Response::Reducer(ReducerOutcome::Committed { seq, lsn: lsn.0 })
        }
        Ok(Outcome::Failed { seq, reason }) => Response::Reducer(ReducerOutcome::Failed {
            seq,
            reason: reason.to_string(),
        }),
        Err(e) => node_error(&e),
    }
}

fn node_error(e: &NodeError) -> Response {
    let kind = match e {
        NodeError::NoSuchModule(_)
        | NodeError::NoSuchFunction { .. }
        | NodeError::NotSubscribable { .. } => ErrorKind::NotFound,
        NodeError::Unauthorized(_) => ErrorKind::Unauthorized,
        NodeError::NotCallable { .. } | NodeError::BadArguments(_) => ErrorKind::BadRequest,
        NodeError::Load(_)
        | NodeError::AlreadyInstalled(_)
        | NodeError::AuthorityTaken { .. }
        | NodeError::AuthorityMissing { .. }
        | NodeError::AuthorityRefused { .. }
        | NodeError::Reserved(_)
        | NodeError::Incompatible { .. } => ErrorKind::Refused,
        _ => ErrorKind::Internal,
    };
    error(kind, e.to_string())
}

/// The node's counters, then its authorities' figures.
fn node_figures(node: &Node) -> Vec<(String, String)> {
    let stats = node.stats();
    let mut figures = vec![
        ("invocations".to_owned(), stats.invocations.to_string()),
        ("windows".to_owned(), stats.windows.to_string()),
        ("workers".to_owned(), node.workers().to_string()),
    ];
    figures.extend(node.authority_stats());
    figures
}

impl Shared {
    /// Answers a batch: one request of any kind, or reducer calls, which run together.
    fn handle_batch(&self, session: &Session, batch: Vec<RequestFrame>) -> Vec<Response> {
        if !batch
            .iter()
            .all(|r| matches!(r.request, Request::CallReducer { .. }))
        {
            return batch
                .into_iter()
                .map(|r| self.handle(session, r.id, r.request))
                .collect();
        }
        let mut responses: Vec<Option<Response>> = Vec::with_capacity(batch.len());
        let mut calls = Vec::with_capacity(batch.len());
        for frame in &batch {
            let Request::CallReducer {
                module,
                reducer,
                args,
                origin,
            } = &frame.request
            else {
                continue;
            };
            match self.module_for(session, module) {
                Ok(_) => {
                    responses.push(None);
                    let origin = origin.as_ref().map(|(m, id)| (m.as_str(), *id));
                    calls.push((module.as_str(), reducer.as_str(), args.as_slice(), origin));
                }
                Err(refused) => responses.push(Some(refused)),
            }
        }
        // Only another node's calls carry an origin worth deduplicating on: its id is the
        // one it gave in the handshake.
        let mut outcomes = self
            .node
            .call_reducers_from(session.peer_node.as_deref(), &calls)
            .into_iter();
        responses
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| match outcomes.next() {
                    Some(outcome) => reducer_response(outcome),
                    None => error(ErrorKind::Internal, "a batched call lost its outcome"),
                })
            })
            .collect()
    }

    fn handle(&self, session: &Session, id: u64, request: Request) -> Response {
        match request {
            Request::Ping => Response::Pong,
            Request::Stats => Response::Stats(node_figures(&self.node)),
            Request::Schema => Response::Schema(self.node.schemas_for(session.principal())),
            Request::Publish { wasm } => {
                let result = self.node.publish_as(session.principal(), &wasm);
                self.refresh_schemas();
                match result {
                    Ok(Published::Installed(schema)) => {
                        tracing::info!(peer = %session.peer, module = %schema.name, version = %schema.version, "installed");
                        Response::Published(PublishReport::Installed {
                            module: schema.name,
                            version: schema.version,
                        })
                    }
                    Ok(Published::Upgraded { from, to }) => {
                        tracing::info!(peer = %session.peer, module = %to.name, %from, to = %to.version, "upgraded");
                        Response::Published(PublishReport::Upgraded {
                            module: to.name,
                            from,
                            to: to.version,
                        })
                    }
                    Err(e) => {
                        tracing::info!(peer = %session.peer, error = %e, "publish refused");
                        node_error(&e)
                    }
                }
            }
            Request::Remove { module } => {
                let result = self.node.remove_as(session.principal(), &module);
                self.refresh_schemas();
                match result {
                    Ok(()) => {
                        tracing::info!(peer = %session.peer, %module, "removed");
                        Response::Removed
                    }
                    Err(e) => node_error(&e),
                }
            }
            request @ Request::CallReducer { .. } => {
                let mut answers = self.handle_batch(session, vec![RequestFrame { id, request }]);
                answers.pop().unwrap_or_else(|| {
                    error(ErrorKind::Internal, "a reducer call lost its outcome")
                })
            }
            Request::Subscribe {
                module,
                table,
                event,
                after,
            } => {
                if let Err(refused) =
                    self.node
                        .check_subscription(session.principal(), &module, &table)
                {
                    return node_error(&refused);
                }
                let sink = FeedSink {
                    tag: id,
                    events: session.events.clone(),
                    lagged: session.lagged.clone(),
                };
                match self
                    .node
                    .subscribe_table(&module, &table, event, sink, after)
                {
                    Ok(complete) => {
                        tracing::info!(peer = %session.peer, %module, %table, ?event, ?after, complete, "subscribed");
                        Response::Subscribed { complete }
                    }
                    Err(e) => node_error(&e),
                }
            }
            Request::CallQuery {
                module,
                query,
                args,
            } => {
                let info = match self.module_for(session, &module) {
                    Ok(info) => info,
                    Err(refused) => return refused,
                };
                let Some((types, returns)) = info.queries.get(&query) else {
                    return node_error(&NodeError::NoSuchFunction {
                        module,
                        kind: "query",
                        name: query,
                    });
                };
                let values = match decode_fields(&args, types, &info.registry) {
                    Ok(values) => values,
                    Err(e) => {
                        let bad = BadArguments::new(&module, &query, types, e);
                        return node_error(&NodeError::BadArguments(bad));
                    }
                };
                match self.node.call_query(&module, &query, &values) {
                    Ok(value) => Response::Query {
                        value: encode(&value),
                        ty: returns.clone(),
                    },
                    Err(e) => node_error(&e),
                }
            }
        }
    }

    /// The module's info, refusing private modules to non-admins.
    fn module_for(&self, session: &Session, module: &str) -> Result<Arc<ModuleInfo>, Response> {
        let cached = self.schemas.read().get(module).cloned();
        let info = match cached {
            Some(info) => info,
            None => {
                self.refresh_schemas();
                let found = self.schemas.read().get(module).cloned();
                found.ok_or_else(|| node_error(&NodeError::NoSuchModule(module.to_owned())))?
            }
        };
        crate::policy::may_use(session.principal(), &info.schema).map_err(|e| node_error(&e))?;
        Ok(info)
    }

    fn refresh_schemas(&self) {
        let map = self
            .node
            .schemas()
            .into_iter()
            .filter_map(|schema| {
                // Installed schemas were validated on install; one that no longer builds a
                // registry is left out and its calls are answered "no such module".
                let registry = schema.registry().ok()?;
                let queries = schema
                    .queries
                    .iter()
                    .map(|q| {
                        (
                            q.name.clone(),
                            (
                                q.args.iter().map(|a| a.ty.clone()).collect(),
                                q.returns.clone(),
                            ),
                        )
                    })
                    .collect();
                Some((
                    schema.name.clone(),
                    Arc::new(ModuleInfo {
                        schema,
                        registry,
                        queries,
                    }),
                ))
            })
            .collect();
        *self.schemas.write() = Arc::new(map);
    }
}
