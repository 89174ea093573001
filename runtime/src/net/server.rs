//! Serving a node over TCP.
//!
//! Per connection: the handshake runs as a task; then one blocking worker reads the requests
//! from the socket itself, runs them against the (synchronous) [`Node`] in arrival order and
//! writes the answers in that order. A second thread, started by the first subscription,
//! writes committed changes. Bad input from one peer closes that peer's connection and
//! nothing else; what a peer can make the node hold (threads, memory, time) is bounded by
//! [`ServerConfig`] (docs/RELIABILITY.md, "Network").

use std::collections::HashMap;
use std::net::{Shutdown, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use parking_lot::RwLock;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::NetError;
use super::admission::{Class, Handshakes, Place, Places};
use super::proto::{
    self, ClientKind, ErrorKind, HandshakeError, Hello, PROTOCOL_VERSION, Request, RequestFrame,
    Response, ResponseFrame, TableChange, Welcome,
};
use super::requests::{ModuleInfo, error};
use super::wire::{
    BusyPoll, FrameBudget, FrameCodec, FrameReader, FrameWriter, ReadError, ReadLimits, Socket,
};
use crate::{FeedEvent, Node, Principal};

/// How to serve a node. Every limit applies to one connection, or to all of them together,
/// whatever the clients do; docs/RELIABILITY.md ("Network") says what each one guards against.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The node's id, sent in the handshake. By default, empty (set it).
    pub node_id: String,
    /// The token that makes a client admin. By default, `None`: nobody is admin, so nobody may
    /// call private modules nor publish (unless the node's [`AccessPolicy`](crate::AccessPolicy)
    /// allows anonymous publishing).
    pub admin_token: Option<String>,
    /// The largest frame accepted after the handshake, in bytes (a module upload is one
    /// frame), and the largest answer sent: an answer that would be larger is replaced by an
    /// error of kind [`ErrorKind::Limit`] naming both sizes. By default, 64 MiB.
    pub max_frame_length: usize,
    /// Memory for the parts of frames larger than 64 KiB that are being read, across the
    /// connections of everyone but the admin. A connection whose frame needs more than is left
    /// waits, until its frame timeout, and is then closed. At least `max_frame_length` (a
    /// smaller value counts as that). By default, 256 MiB.
    pub frame_memory: usize,
    /// How long a new connection has to complete the handshake. By default, 10 s.
    pub handshake_timeout: Duration,
    /// Connections accepted and not yet through their handshake; when one more comes, the
    /// oldest of them is closed. By default, 128.
    pub max_handshakes: usize,
    /// How long a connection without subscriptions may send no request before it is closed.
    /// Clients keep a connection open with `Ping` requests (the client's
    /// [`keep_alive`](super::ClientConfig::keep_alive)). By default, 5 minutes.
    pub idle_timeout: Duration,
    /// How long a frame may take to arrive once its first bytes came; a connection whose frame
    /// is slower is closed. By default, 2 minutes (a 64 MiB upload then needs 0.6 MB/s).
    pub frame_timeout: Duration,
    /// How long a write to a client may make no progress (the client reads nothing) before
    /// its connection is closed. By default, 30 s.
    pub write_timeout: Duration,
    /// How long a connection's worker polls its socket for the next request before it blocks.
    /// Polling burns a CPU for that long after each answer, and saves the wake-up of a sleeping
    /// CPU when the next request comes soon, which is most of a round trip on virtual machines
    /// (docs/BENCHMARKS.md). At most a quarter of the CPUs poll at once (at least one). `ZERO`
    /// never polls. By default, 50 µs.
    pub busy_poll: Duration,
    /// Committed changes queued for one connection's subscriptions before it counts as fallen
    /// behind and is closed. By default, 65 536.
    pub max_queued_events: usize,
    /// Subscriptions one connection may hold; more are answered with an error of kind
    /// [`ErrorKind::Limit`]. By default, 256.
    pub max_subscriptions: usize,
    /// Connections served at once for clients without the admin token that are not other
    /// nodes; more are refused in the handshake. Each connection holds a thread (two once it
    /// subscribes). The admin's connections are never refused, so the owner is never locked
    /// out. By default, 128.
    pub max_anonymous_connections: usize,
    /// Connections served at once for other nodes (a handshake that gives a node id), counted
    /// apart from the anonymous ones so that clients cannot keep the node's peers out. By
    /// default, 64.
    pub max_peer_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            node_id: String::new(),
            admin_token: None,
            max_frame_length: proto::DEFAULT_MAX_FRAME_LENGTH,
            frame_memory: 256 << 20,
            handshake_timeout: Duration::from_secs(10),
            max_handshakes: 128,
            idle_timeout: Duration::from_secs(5 * 60),
            frame_timeout: Duration::from_secs(2 * 60),
            write_timeout: Duration::from_secs(30),
            busy_poll: Duration::from_micros(50),
            max_queued_events: 65_536,
            max_subscriptions: 256,
            max_anonymous_connections: 128,
            max_peer_connections: 64,
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
        budget: Arc::new(FrameBudget::new(
            config.frame_memory.max(config.max_frame_length),
        )),
        handshakes: Handshakes::new(config.max_handshakes),
        places: Arc::new(Places::default()),
        config,
        schemas: RwLock::new(Arc::new(HashMap::new())),
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
pub(super) struct Shared {
    pub node: Arc<Node>,
    pub config: ServerConfig,
    poll: BusyPoll,
    /// Memory for large frames of every connection but the admin's.
    budget: Arc<FrameBudget>,
    handshakes: Handshakes,
    places: Arc<Places>,
    /// What requests need to know about modules, refreshed on publish, remove and misses.
    pub schemas: RwLock<Arc<HashMap<String, Arc<ModuleInfo>>>>,
}

/// One connection past its handshake.
pub(super) struct Session {
    pub admin: bool,
    pub peer: SocketAddr,
    /// The id of the connecting node, for node-to-node connections.
    pub peer_node: Option<String>,
    /// Where this connection's subscriptions send committed changes.
    pub events: mpsc::Sender<FeedEvent>,
    /// Notified when this connection fell behind its subscriptions.
    pub lagged: Arc<tokio::sync::Notify>,
    /// The subscriptions made on this connection; a connection with one is never idle.
    pub subscriptions: AtomicUsize,
}

impl Session {
    pub fn principal(&self) -> Principal {
        if self.admin {
            Principal::Admin
        } else {
            Principal::Anonymous
        }
    }

    fn class(&self) -> Class {
        match (self.admin, &self.peer_node) {
            (true, _) => Class::Admin,
            (false, Some(_)) => Class::Peer,
            (false, None) => Class::Anonymous,
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
    let mut framed = Framed::new(stream, FrameCodec::new(proto::MAX_HANDSHAKE_LENGTH));
    let (events, event_queue) = mpsc::channel(shared.config.max_queued_events.max(1));
    let in_handshake = shared.handshakes.enter();
    let accepted = handshake(
        &mut framed,
        peer,
        &shared,
        &cancel,
        &in_handshake.evicted,
        events,
    )
    .await;
    drop(in_handshake);
    let Some((session, place)) = accepted else {
        return;
    };
    tracing::debug!(%peer, admin = session.admin, node = ?session.peer_node, "connected");
    // From here on the socket is blocking and belongs to this connection's threads, which
    // share it (one file descriptor per connection).
    let parts = framed.into_parts();
    let handed = parts.io.into_std().and_then(|stream| {
        stream.set_nonblocking(false)?;
        let stream = Arc::new(stream);
        let writer = FrameWriter::new(stream.clone(), shared.config.write_timeout)?;
        Ok((stream, writer))
    });
    let (stream, writer) = match handed {
        Ok(handed) => handed,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "closing connection: cannot hand the socket over");
            return;
        }
    };
    let limits = ReadLimits {
        max_frame: shared.config.max_frame_length,
        frame_timeout: shared.config.frame_timeout.max(Duration::from_millis(1)),
        budget: (!session.admin).then(|| shared.budget.clone()),
    };
    let reader = FrameReader::new(Socket::new(stream.clone()), &parts.read_buf, limits);
    // Cancelled when the connection must end now: it broke, fell behind, or its worker ended.
    let closed = CancellationToken::new();
    let lagged = session.lagged.clone();
    let worker = Worker {
        _place: place,
        shared: shared.clone(),
        session,
        writer: Arc::new(writer),
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
            let _ = stream.shutdown(Shutdown::Read);
            let _ = tokio::time::timeout(Duration::from_secs(1), closed.cancelled()).await;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    tracing::debug!(%peer, "socket shut down");
}

/// Encodes the answer to request `id`, or, when it would not fit the frame limit, an error
/// that says so.
fn answer(id: u64, response: Response, max: usize, peer: SocketAddr) -> Vec<u8> {
    let payload = proto::encode(&ResponseFrame { id, response });
    if payload.len() <= max {
        return payload;
    }
    tracing::warn!(%peer, len = payload.len(), max, "answer over the frame limit; sending an error instead");
    let message = format!(
        "the answer is {} bytes, over the node's frame limit of {max} bytes; ask for less (a query whose arguments select fewer rows), or raise the node's frame limit",
        payload.len()
    );
    proto::encode(&ResponseFrame {
        id,
        response: error(ErrorKind::Limit, message),
    })
}

/// Writes a connection's subscription events, in the order the commit produced them, batching
/// whatever is queued into one write.
fn write_events(
    mut queue: mpsc::Receiver<FeedEvent>,
    writer: &FrameWriter,
    closed: &CancellationToken,
    runtime: &tokio::runtime::Handle,
    (peer, max): (SocketAddr, usize),
) {
    // A change the subscriber cannot be sent would leave a hole in what it has: the
    // connection ends instead, and the subscriber learns it when it resumes.
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
        if payload.len() > max {
            tracing::error!(%peer, len = payload.len(), max, "closing connection: a committed change is over the frame limit");
            return false;
        }
        FrameWriter::frame(out, &payload);
        true
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
        let mut framed = frame(&mut out, event);
        while framed
            && out.len() < WRITE_BATCH
            && let Ok(event) = queue.try_recv()
        {
            framed = frame(&mut out, event);
        }
        if !framed {
            closed.cancel();
            return;
        }
        if let Err(e) = writer.send(&out) {
            written_off(&e, peer);
            closed.cancel();
            return;
        }
    }
}

/// Logs why a write failed: a client that reads nothing is worth a warning, a connection that
/// ended is not.
fn written_off(e: &std::io::Error, peer: SocketAddr) {
    if e.kind() == std::io::ErrorKind::TimedOut {
        tracing::warn!(%peer, error = %e, "closing connection: it does not read its answers");
    } else {
        tracing::debug!(%peer, error = %e, "cannot write; the connection is closing");
    }
}

/// Answers or events gathered for one write stop at about this many bytes.
const WRITE_BATCH: usize = 256 << 10;

async fn handshake(
    framed: &mut Framed<TcpStream, FrameCodec>,
    peer: SocketAddr,
    shared: &Arc<Shared>,
    cancel: &CancellationToken,
    evicted: &CancellationToken,
    events: mpsc::Sender<FeedEvent>,
) -> Option<(Session, Place)> {
    let first = tokio::select! {
        () = cancel.cancelled() => return None,
        () = evicted.cancelled() => {
            tracing::warn!(
                %peer,
                "closing connection: more than {} connections are in their handshake and this is the oldest",
                shared.config.max_handshakes
            );
            return None;
        }
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
        subscriptions: AtomicUsize::new(0),
    };
    let class = session.class();
    let (limit, whose) = match class {
        Class::Peer => (shared.config.max_peer_connections, "node-to-node"),
        _ => (shared.config.max_anonymous_connections, "anonymous"),
    };
    let Some(place) = shared.places.take(class, limit) else {
        let reason = format!(
            "this node already serves {limit} {whose} connections, its limit; try again later (the admin token is never refused)"
        );
        let _ = framed.send(refuse(reason)).await;
        return None;
    };
    let welcome = Welcome::Accepted {
        node_id: shared.config.node_id.clone(),
        admin,
        max_frame_length: shared.config.max_frame_length as u64,
    };
    framed
        .send(Bytes::from(proto::encode_handshake(&welcome)))
        .await
        .ok()?;
    Some((session, place))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One connection's worker and what it needs.
struct Worker {
    _place: Place,
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
                None => match next_request(&mut reader, &shared.poll, self.idle(), peer) {
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
            let max = shared.config.max_frame_length;
            for (id, response) in ids.into_iter().zip(responses) {
                FrameWriter::frame(&mut out, &answer(id, response, max, peer));
            }
            let more = held.is_some() || (!stop && reader.has_frame());
            if !more || out.len() >= WRITE_BATCH {
                if let Err(e) = self.writer.send(&out) {
                    written_off(&e, peer);
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

    /// How long to wait for the next request before the connection counts as idle; `None`
    /// while it has subscriptions: it is waiting for their events.
    fn idle(&self) -> Option<Duration> {
        (self.session.subscriptions.load(Ordering::Relaxed) == 0).then(|| {
            self.shared
                .config
                .idle_timeout
                .max(Duration::from_millis(1))
        })
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
        let to = (self.session.peer, self.shared.config.max_frame_length);
        self.tasks.spawn_blocking_on(
            move || write_events(queue, &writer, &closed, &runtime, to),
            &self.runtime,
        );
    }
}

/// The next request, waiting for it; `None` when the connection ends, with the reason logged
/// when it is not a plain close.
fn next_request(
    reader: &mut FrameReader,
    poll: &BusyPoll,
    idle: Option<Duration>,
    peer: SocketAddr,
) -> Option<RequestFrame> {
    match reader.next(poll, idle) {
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
        // Clients that forget a connection are not attacks.
        ReadError::Idle(_) => tracing::info!(%peer, error = %e, "closing connection: idle"),
        e => tracing::warn!(%peer, error = %e, "closing connection"),
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
