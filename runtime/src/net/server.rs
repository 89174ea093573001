//! Serving a node over TCP.
//!
//! Per connection: one task reads frames; one blocking worker runs the requests against the
//! (synchronous) [`Node`] in arrival order and writes the answers in that order. Bad input
//! from one peer closes that peer's connection and nothing else.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use interstice_abi::{ModuleSchema, Type, TypeRegistry, Visibility, decode_fields, encode};
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
use crate::{FeedEvent, FeedSink, Node, NodeError, Outcome, Published};

/// How to serve a node.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The node's id, sent in the handshake. By default, empty (set it).
    pub node_id: String,
    /// The token that makes a client admin. By default, `None`: nobody is admin, so nobody may
    /// publish (unless [`allow_anonymous_publish`](Self::allow_anonymous_publish)) nor call
    /// private modules.
    pub admin_token: Option<String>,
    /// Lets clients without the token publish and remove modules. By default, `false`.
    pub allow_anonymous_publish: bool,
    /// The largest frame accepted, in bytes. By default, 64 MiB.
    pub max_frame_length: usize,
    /// How long a new connection has to complete the handshake. By default, 10 s.
    pub handshake_timeout: Duration,
    /// How often due timers are run; `None` never runs them. By default, every 10 ms.
    pub timer_interval: Option<Duration>,
    /// Requests of one connection queued for its worker before the server stops reading from
    /// that connection. By default, 1024.
    pub max_in_flight: usize,
    /// Committed changes queued for one connection's subscriptions before it counts as fallen
    /// behind and is closed. By default, 65 536.
    pub max_queued_events: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            node_id: String::new(),
            admin_token: None,
            allow_anonymous_publish: false,
            max_frame_length: proto::DEFAULT_MAX_FRAME_LENGTH,
            handshake_timeout: Duration::from_secs(10),
            timer_interval: Some(Duration::from_millis(10)),
            max_in_flight: 1024,
            max_queued_events: 65_536,
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
/// shut down. Also runs the node's due timers every [`ServerConfig::timer_interval`].
pub async fn serve(
    node: Arc<Node>,
    addr: impl ToSocketAddrs,
    config: ServerConfig,
) -> Result<Server, NetError> {
    let listener = TcpListener::bind(addr).await.map_err(NetError::Bind)?;
    let local_addr = listener.local_addr().map_err(NetError::Bind)?;
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let shared = Arc::new(Shared {
        node,
        config,
        schemas: RwLock::new(Arc::new(HashMap::new())),
    });
    shared.refresh_schemas();
    if let Some(interval) = shared.config.timer_interval {
        let (shared, cancel) = (shared.clone(), cancel.clone());
        tasks.spawn_blocking(move || run_timers(&shared.node, interval, &cancel));
    }
    tasks.spawn(accept(listener, shared, cancel.clone(), tasks.clone()));
    tracing::info!(%local_addr, "serving");
    Ok(Server {
        local_addr,
        cancel,
        tasks,
    })
}

fn run_timers(node: &Node, interval: Duration, cancel: &CancellationToken) {
    while !cancel.is_cancelled() {
        if let Err(e) = node.run_due_timers() {
            tracing::error!(error = %e, "running due timers failed");
        }
        std::thread::sleep(interval);
    }
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
    /// What requests need to know about modules, refreshed on publish, remove and misses.
    schemas: RwLock<Arc<HashMap<String, Arc<ModuleInfo>>>>,
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
    let session = match handshake(&mut framed, peer, &shared, &cancel, events).await {
        Some(session) => session,
        None => return,
    };
    tracing::debug!(%peer, admin = session.admin, node = ?session.peer_node, "connected");
    let lagged = session.lagged.clone();
    let (sink, mut frames) = framed.split();
    let sink = Arc::new(tokio::sync::Mutex::new(sink));
    // Ends this connection's helpers when it closes, and only them.
    let closing = cancel.child_token();
    tasks.spawn(write_events(
        event_queue,
        sink.clone(),
        closing.clone(),
        peer,
    ));
    let in_flight = shared.config.max_in_flight.max(1);
    let (requests, queue) = mpsc::channel::<RequestFrame>(in_flight);
    // The worker writes the answers itself: one thread hop less per request than a writer task.
    let worker_shared = shared.clone();
    let worker_closing = closing.clone();
    let runtime = tokio::runtime::Handle::current();
    tasks.spawn_blocking(move || {
        work(
            &worker_shared,
            &session,
            queue,
            &sink,
            &runtime,
            &worker_closing,
        )
    });

    loop {
        let next = tokio::select! {
            () = closing.cancelled() => break,
            () = lagged.notified() => {
                tracing::warn!(%peer, "closing connection: it fell behind its subscriptions");
                break;
            }
            next = frames.next() => next,
        };
        let frame = match next {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                tracing::warn!(%peer, error = %e, "closing connection: unreadable frame");
                break;
            }
        };
        let request = match proto::decode::<RequestFrame>(&frame) {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!(%peer, error = %e, len = frame.len(), "closing connection: malformed request");
                break;
            }
        };
        if requests.send(request).await.is_err() {
            break;
        }
    }
    // The worker answers what it has read, then closes the connection.
    drop(requests);
    tracing::debug!(%peer, "stopped reading");
}

/// Writes a connection's subscription events, in the order the commit produced them, batching
/// whatever is queued into one flush.
async fn write_events(
    mut queue: mpsc::Receiver<FeedEvent>,
    sink: Arc<tokio::sync::Mutex<Sink>>,
    closing: CancellationToken,
    peer: SocketAddr,
) {
    let frame = |event: FeedEvent| {
        Bytes::from(proto::encode(&ResponseFrame {
            id: event.subscription,
            response: Response::Event(TableChange {
                seq: event.seq,
                part: event.part,
                kind: event.kind,
                rows: event.rows,
            }),
        }))
    };
    loop {
        let event = tokio::select! {
            () = closing.cancelled() => return,
            event = queue.recv() => event,
        };
        let Some(event) = event else { return };
        let mut sink = sink.lock().await;
        let mut written = sink.feed(frame(event)).await.is_ok();
        while written && let Ok(event) = queue.try_recv() {
            written = sink.feed(frame(event)).await.is_ok();
        }
        if !written || sink.flush().await.is_err() {
            tracing::debug!(%peer, "cannot write events; the connection is closing");
            closing.cancel();
            return;
        }
    }
}

async fn handshake(
    framed: &mut Framed<TcpStream, LengthDelimitedCodec>,
    peer: SocketAddr,
    shared: &Shared,
    cancel: &CancellationToken,
    events: mpsc::Sender<FeedEvent>,
) -> Option<Session> {
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
    Some(Session {
        admin,
        peer,
        peer_node,
        events,
        lagged: Arc::new(tokio::sync::Notify::new()),
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type Sink = SplitSink<Framed<TcpStream, LengthDelimitedCodec>, Bytes>;

/// The connection's blocking worker: runs requests in order and writes the answers in order,
/// flushing whenever no more requests are queued. Reducer calls that are queued together run
/// as one batch, so the scheduler sees them in one window.
fn work(
    shared: &Shared,
    session: &Session,
    mut queue: mpsc::Receiver<RequestFrame>,
    sink: &tokio::sync::Mutex<Sink>,
    runtime: &tokio::runtime::Handle,
    closing: &CancellationToken,
) {
    if let Some(id) = &session.peer_node
        && let Err(e) = shared.node.peer_connected(id)
    {
        tracing::error!(peer = %session.peer, node = %id, error = %e, "connect hooks failed");
    }
    // A peer that stops reading blocks the write; shutting down must not wait for it, but
    // answers that can be written still are.
    let write = |frames: Vec<Bytes>, flush: bool| {
        runtime.block_on(async {
            tokio::select! {
                biased;
                written = async {
                    let mut sink = sink.lock().await;
                    for frame in frames {
                        sink.feed(frame).await?;
                    }
                    if flush {
                        sink.flush().await?;
                    }
                    Ok::<(), std::io::Error>(())
                } => written.is_ok(),
                () = closing.cancelled() => false,
            }
        })
    };
    let mut held: Option<RequestFrame> = None;
    while let Some(first) = held.take().or_else(|| queue.blocking_recv()) {
        let mut batch = vec![first];
        if matches!(batch[0].request, Request::CallReducer { .. }) {
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(next) if matches!(next.request, Request::CallReducer { .. }) => {
                        batch.push(next)
                    }
                    Ok(next) => {
                        held = Some(next);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        let ids: Vec<u64> = batch.iter().map(|r| r.id).collect();
        let responses =
            std::panic::catch_unwind(AssertUnwindSafe(|| shared.handle_batch(session, batch)))
                .unwrap_or_else(|_| {
                    tracing::error!(peer = %session.peer, "request handler panicked");
                    ids.iter()
                        .map(|_| {
                            error(
                                ErrorKind::Internal,
                                "the node failed on this request; see its log",
                            )
                        })
                        .collect()
                });
        let frames = ids
            .into_iter()
            .zip(responses)
            .map(|(id, response)| Bytes::from(proto::encode(&ResponseFrame { id, response })))
            .collect();
        let flush = held.is_none() && queue.is_empty();
        if !write(frames, flush) {
            tracing::debug!(peer = %session.peer, "cannot write; dropping the connection");
            break;
        }
    }
    closing.cancel();
    runtime.block_on(async {
        let mut sink = sink.lock().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    });
    if let Some(id) = &session.peer_node
        && let Err(e) = shared.node.peer_disconnected(id)
    {
        tracing::error!(peer = %session.peer, node = %id, error = %e, "disconnect hooks failed");
    }
    tracing::debug!(peer = %session.peer, "disconnected");
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
        NodeError::NoSuchModule(_) | NodeError::NoSuchFunction { .. } => ErrorKind::NotFound,
        NodeError::Unauthorized(_) => ErrorKind::Unauthorized,
        NodeError::NotCallable { .. } | NodeError::BadArguments { .. } => ErrorKind::BadRequest,
        NodeError::Load(_)
        | NodeError::AlreadyInstalled(_)
        | NodeError::AuthorityTaken { .. }
        | NodeError::Reserved(_)
        | NodeError::Incompatible { .. } => ErrorKind::Refused,
        _ => ErrorKind::Internal,
    };
    error(kind, e.to_string())
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
            Request::Schema => {
                let mut schemas = self.node.schemas();
                if !session.admin {
                    schemas.retain(|s| s.visibility == Visibility::Public);
                    for schema in &mut schemas {
                        schema.tables.retain(|t| t.visibility == Visibility::Public);
                    }
                }
                Response::Schema(schemas)
            }
            Request::Publish { wasm } => {
                let result = if session.admin || self.node.manager().is_none() {
                    if let Some(refused) = self.check_manager(session, "publish") {
                        return refused;
                    }
                    self.node.publish(&wasm)
                } else {
                    // The module manager decides, once it knows which module this is.
                    self.node.publish_if(&wasm, |schema| {
                        self.node.authorize("publish", &schema.name, session.admin)
                    })
                };
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
                if session.admin || self.node.manager().is_none() {
                    if let Some(refused) = self.check_manager(session, "remove modules") {
                        return refused;
                    }
                } else if let Err(reason) = self.node.authorize("remove", &module, session.admin) {
                    return error(ErrorKind::Unauthorized, reason);
                }
                let result = self.node.remove(&module);
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
                let info = match self.module_for(session, &module) {
                    Ok(info) => info,
                    Err(refused) => return refused,
                };
                let visible = info
                    .schema
                    .table(&table)
                    .is_some_and(|t| t.visibility == Visibility::Public || session.admin);
                if !visible {
                    return error(
                        ErrorKind::NotFound,
                        format!(
                            "module `{module}` has no public table `{table}`; only `#[table(public)]` tables can be subscribed to from other nodes"
                        ),
                    );
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
                        let signature = types
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ");
                        return error(
                            ErrorKind::BadRequest,
                            format!(
                                "bad arguments for `{module}.{query}`: {e}; expected ({signature})"
                            ),
                        );
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

    /// Refuses publish and remove to non-admins unless anonymous publishing is allowed. A
    /// module holding the `Module` authority replaces this policy for non-admins.
    fn check_manager(&self, session: &Session, what: &str) -> Option<Response> {
        if session.admin || self.config.allow_anonymous_publish {
            return None;
        }
        Some(error(
            ErrorKind::Unauthorized,
            format!(
                "only the node's admin may {what}: connect with its admin token, or start the node with --allow-anonymous-publish"
            ),
        ))
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
        if info.schema.visibility == Visibility::Private && !session.admin {
            return Err(error(
                ErrorKind::Unauthorized,
                format!("module `{module}` is private: only the node's admin may call it"),
            ));
        }
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
