//! Talking to a node: an async [`Client`] that pipelines requests, and [`BlockingClient`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use interstice_abi::{ModuleSchema, Type};
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::codec::Framed;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::NetError;
use super::proto::{
    self, ClientKind, HandshakeError, Hello, PROTOCOL_VERSION, PublishReport, ReducerOutcome,
    Request, RequestFrame, Response, ResponseFrame, TableChange, Welcome,
};
use super::wire::{self, FrameCodec};

/// How to connect.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The admin token to present. By default, `None`: public access.
    pub admin_token: Option<String>,
    /// The id of the node expected at the address; the node refuses the connection if it is
    /// another one. By default, `None`: any node.
    pub expect_node: Option<String>,
    /// The caller's own node id, when the caller is a node. By default, `None`.
    pub node_id: Option<String>,
    /// By default, [`ClientKind::Cli`].
    pub kind: ClientKind,
    /// How long to wait for the connection and the handshake. By default, 5 s.
    pub connect_timeout: Duration,
    /// How long to wait for each answer. By default, 60 s (publishing compiles the module).
    pub request_timeout: Duration,
    /// The largest frame accepted from the node, in bytes. An answer over it closes the
    /// connection, and every request waiting on it fails with
    /// [`NetError::AnswerTooLarge`]. By default, 64 MiB.
    pub max_frame_length: usize,
    /// How often to send a `Ping` so that the node does not close the connection as idle
    /// (`ServerConfig::idle_timeout`, 5 minutes by default); `None`: never. A
    /// [`BlockingClient`] pings only while one of its calls runs, since its runtime runs only
    /// then. By default, every 60 s.
    pub keep_alive: Option<Duration>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            admin_token: None,
            expect_node: None,
            node_id: None,
            kind: ClientKind::Cli,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            max_frame_length: proto::DEFAULT_MAX_FRAME_LENGTH,
            keep_alive: Some(Duration::from_secs(60)),
        }
    }
}

type Pending = Mutex<Option<HashMap<u64, oneshot::Sender<Response>>>>;

/// A committed change of a subscribed table, as a client receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionEvent {
    /// The id [`Client::subscribe`] returned.
    pub subscription: u64,
    pub change: TableChange,
}

/// How many subscription events the client holds before it stops reading from the node.
const EVENT_BUFFER: usize = 4096;

type Sink = SplitSink<Framed<TcpStream, FrameCodec>, Bytes>;

/// The id of keep-alive pings: requests are numbered from 1, so no caller waits for it.
const KEEP_ALIVE_ID: u64 = 0;

struct Inner {
    /// Requests go to the writer task, which writes whatever is queued with one flush: many
    /// requests in flight cost one system call, not one each.
    outgoing: tokio::sync::mpsc::UnboundedSender<Bytes>,
    /// Requests waiting for their answer; `None` once the connection is gone.
    pending: Arc<Pending>,
    next_id: AtomicU64,
    request_timeout: Duration,
    node_id: String,
    admin: bool,
    addr: SocketAddr,
    /// The longest frame the node accepts.
    node_max_frame: usize,
    /// Set when an answer over this client's frame limit closed the connection: its length
    /// and the limit.
    oversized: Arc<Mutex<Option<(usize, usize)>>>,
    /// Subscription events, in the order the node sent them; taken once by `events`.
    events: Mutex<Option<tokio::sync::mpsc::Receiver<SubscriptionEvent>>>,
    /// Cancelled when the connection is gone.
    closed: CancellationToken,
    /// Stops the reader when the last clone is dropped, which closes the socket.
    _stop: DropGuard,
}

/// A connection to a node. Cheap to clone; clones share the connection, and requests from any
/// of them may be in flight at once. Must be used inside a tokio runtime.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Connects to `addr` and performs the handshake.
    pub async fn connect(addr: &str, config: ClientConfig) -> Result<Client, NetError> {
        tokio::time::timeout(config.connect_timeout, Self::connect_now(addr, &config))
            .await
            .map_err(|_| NetError::Timeout {
                what: format!("connecting to {addr}"),
                after: config.connect_timeout,
            })?
    }

    async fn connect_now(addr: &str, config: &ClientConfig) -> Result<Client, NetError> {
        let connect = |source| NetError::Connect {
            addr: addr.to_owned(),
            source,
        };
        let stream = TcpStream::connect(addr).await.map_err(connect)?;
        let peer = stream.peer_addr().map_err(connect)?;
        let _ = stream.set_nodelay(true);
        let mut framed = Framed::new(stream, FrameCodec::new(proto::MAX_HANDSHAKE_LENGTH));
        let hello = Hello {
            kind: config.kind,
            node_id: config.node_id.clone(),
            expect_node: config.expect_node.clone(),
            admin_token: config.admin_token.clone(),
        };
        framed
            .send(Bytes::from(proto::encode_handshake(&hello)))
            .await
            .map_err(NetError::Io)?;
        let frame = match framed.next().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Err(NetError::Io(e)),
            None => {
                return Err(NetError::Refused(format!(
                    "{addr} closed the connection during the handshake; is it an Interstice node of the same version?"
                )));
            }
        };
        let (node_id, admin, node_max_frame) = match proto::decode_handshake::<Welcome>(&frame) {
            Ok(Welcome::Accepted {
                node_id,
                admin,
                max_frame_length,
            }) => (
                node_id,
                admin,
                usize::try_from(max_frame_length).unwrap_or(usize::MAX),
            ),
            Ok(Welcome::Refused { reason }) => return Err(NetError::Refused(reason)),
            Err(HandshakeError::Version(theirs)) => {
                return Err(NetError::Version {
                    ours: PROTOCOL_VERSION,
                    theirs,
                });
            }
            Err(HandshakeError::NotInterstice) => {
                return Err(NetError::Protocol(format!(
                    "{addr} does not speak the Interstice protocol"
                )));
            }
            Err(HandshakeError::Malformed(e)) => {
                return Err(NetError::Protocol(format!("malformed handshake: {e}")));
            }
        };

        framed.codec_mut().max = config.max_frame_length;
        let (sink, mut frames) = framed.split();
        let (outgoing, queued) = tokio::sync::mpsc::unbounded_channel();
        let pending: Arc<Pending> = Arc::new(Mutex::new(Some(HashMap::new())));
        let stop = CancellationToken::new();
        let closed = CancellationToken::new();
        let (events, events_rx) = tokio::sync::mpsc::channel(EVENT_BUFFER);
        let reader_pending = pending.clone();
        let reader_stop = stop.clone();
        let reader_closed = closed.clone();
        let oversized = Arc::new(Mutex::new(None));
        let reader_oversized = oversized.clone();
        tokio::spawn(async move {
            loop {
                let frame = tokio::select! {
                    () = reader_stop.cancelled() => break,
                    frame = frames.next() => frame,
                };
                let frame = match frame {
                    Some(Ok(frame)) => frame,
                    Some(Err(e)) => {
                        if let Some((len, max)) = wire::too_long(&e) {
                            tracing::warn!(%peer, len, max, "an answer over this client's frame limit; closing the connection");
                            *reader_oversized.lock() = Some((len, max));
                        }
                        break;
                    }
                    None => break,
                };
                let Ok(ResponseFrame { id, response }) = proto::decode::<ResponseFrame>(&frame)
                else {
                    tracing::warn!(%peer, "malformed response; closing the connection");
                    break;
                };
                if let Response::Event(change) = response {
                    // Waiting here holds back reading: a slow consumer slows the node's
                    // sender, which drops the subscription rather than the node waiting.
                    let event = SubscriptionEvent {
                        subscription: id,
                        change,
                    };
                    let _ = events.send(event).await;
                    continue;
                }
                let waiter = reader_pending.lock().as_mut().and_then(|p| p.remove(&id));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(response);
                }
            }
            // Every request still waiting learns that the connection is gone.
            reader_pending.lock().take();
            reader_closed.cancel();
        });
        tokio::spawn(write_requests(
            queued,
            sink,
            pending.clone(),
            stop.clone(),
            closed.clone(),
        ));
        if let Some(every) = config.keep_alive {
            tokio::spawn(keep_alive(every, outgoing.clone(), stop.clone()));
        }
        Ok(Client {
            inner: Arc::new(Inner {
                outgoing,
                pending,
                next_id: AtomicU64::new(1),
                request_timeout: config.request_timeout,
                node_id,
                admin,
                addr: peer,
                node_max_frame,
                oversized,
                events: Mutex::new(Some(events_rx)),
                closed,
                _stop: stop.drop_guard(),
            }),
        })
    }

    /// The id the node gave in the handshake.
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// Whether the node accepted the admin token.
    pub fn is_admin(&self) -> bool {
        self.inner.admin
    }

    /// The node's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Waits until the connection is gone (the node closed it, or it broke).
    pub async fn closed(&self) {
        self.inner.closed.cancelled().await
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }

    /// The events of every subscription of this connection, in the order the node committed
    /// them. Can be taken once; `None` after that. The stream ends with the connection.
    pub fn events(&self) -> Option<tokio::sync::mpsc::Receiver<SubscriptionEvent>> {
        self.inner.events.lock().take()
    }

    /// Subscribes to the committed changes of `module.table` of kind `event`; returns the
    /// subscription's id, which tags its events in [`events`](Self::events), and whether the
    /// node could send everything after `after` (the position of the last change the caller
    /// has; `None`: from now on).
    pub async fn subscribe(
        &self,
        module: &str,
        table: &str,
        event: interstice_abi::TableEvent,
        after: Option<(u64, u32)>,
    ) -> Result<(u64, bool), NetError> {
        let request = Request::Subscribe {
            module: module.to_owned(),
            table: table.to_owned(),
            event,
            after,
        };
        let (id, response) = self.request_with_id(request).await?;
        match response {
            Response::Subscribed { complete } => Ok((id, complete)),
            other => Err(unexpected(&other)),
        }
    }

    /// Sends one request and waits for its answer, at most the configured request timeout.
    pub async fn request(&self, request: Request) -> Result<Response, NetError> {
        self.request_with_id(request)
            .await
            .map(|(_, response)| response)
    }

    async fn request_with_id(&self, request: Request) -> Result<(u64, Response), NetError> {
        let (id, rx) = self.register()?;
        // One timer bounds the whole exchange, writing included.
        let exchange = async {
            self.write(id, request)?;
            rx.await.map_err(|_| self.closed_error())
        };
        let result = match tokio::time::timeout(self.inner.request_timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(self.timed_out()),
        };
        self.settle(id, result).map(|r| (id, r))
    }

    /// Files a waiter for the answer to a new request id.
    fn register(&self) -> Result<(u64, oneshot::Receiver<Response>), NetError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match self.inner.pending.lock().as_mut() {
            Some(pending) => pending.insert(id, tx),
            None => return Err(self.closed_error()),
        };
        Ok((id, rx))
    }

    fn write(&self, id: u64, request: Request) -> Result<(), NetError> {
        let frame = Bytes::from(proto::encode(&RequestFrame { id, request }));
        // The node would close the connection, failing every request on it.
        let max = self.inner.node_max_frame;
        if frame.len() > max {
            return Err(NetError::RequestTooLarge {
                len: frame.len(),
                max,
            });
        }
        self.inner
            .outgoing
            .send(frame)
            .map_err(|_| self.closed_error())
    }

    /// Why requests can no longer be answered.
    fn closed_error(&self) -> NetError {
        match *self.inner.oversized.lock() {
            Some((len, max)) => NetError::AnswerTooLarge { len, max },
            None => NetError::Closed,
        }
    }

    /// Turns an answer into the caller's result, forgetting the request when it got none.
    fn settle(&self, id: u64, result: Result<Response, NetError>) -> Result<Response, NetError> {
        match result {
            Ok(Response::Error(e)) => Err(NetError::Remote(e)),
            Ok(response) => Ok(response),
            Err(e) => {
                self.forget(id);
                Err(e)
            }
        }
    }

    fn forget(&self, id: u64) {
        if let Some(pending) = self.inner.pending.lock().as_mut() {
            pending.remove(&id);
        }
    }

    fn timed_out(&self) -> NetError {
        NetError::Timeout {
            what: "the node's answer".into(),
            after: self.inner.request_timeout,
        }
    }

    /// Writes a reducer call now and returns a future of its outcome: calls started one after
    /// another reach the node in that order, without waiting for each other's answers.
    /// `origin` (calling module, outbox number) makes the node run the call at most once.
    pub async fn start_call_reducer(
        &self,
        module: &str,
        reducer: &str,
        args: Vec<u8>,
        origin: Option<(String, u64)>,
    ) -> Result<
        impl std::future::Future<Output = Result<ReducerOutcome, NetError>> + Send + 'static,
        NetError,
    > {
        let request = Request::CallReducer {
            module: module.to_owned(),
            reducer: reducer.to_owned(),
            args,
            origin,
        };
        let (id, rx) = self.register()?;
        if let Err(e) = self.write(id, request) {
            self.forget(id);
            return Err(e);
        }
        let client = self.clone();
        Ok(async move {
            let answer = tokio::time::timeout(client.inner.request_timeout, rx).await;
            let result = match answer {
                Ok(answer) => answer.map_err(|_| client.closed_error()),
                Err(_) => Err(client.timed_out()),
            };
            match client.settle(id, result)? {
                Response::Reducer(outcome) => Ok(outcome),
                other => Err(unexpected(&other)),
            }
        })
    }

    /// Round-trip time of one ping.
    pub async fn ping(&self) -> Result<Duration, NetError> {
        let start = Instant::now();
        match self.request(Request::Ping).await? {
            Response::Pong => Ok(start.elapsed()),
            other => Err(unexpected(&other)),
        }
    }

    /// The node's figures: its counters, then each authority's, as label and value.
    pub async fn stats(&self) -> Result<Vec<(String, String)>, NetError> {
        match self.request(Request::Stats).await? {
            Response::Stats(figures) => Ok(figures),
            other => Err(unexpected(&other)),
        }
    }

    /// The installed modules' schemas (the public view unless admin).
    pub async fn schema(&self) -> Result<Vec<ModuleSchema>, NetError> {
        match self.request(Request::Schema).await? {
            Response::Schema(schemas) => Ok(schemas),
            other => Err(unexpected(&other)),
        }
    }

    /// Installs or upgrades a module.
    pub async fn publish(&self, wasm: Vec<u8>) -> Result<PublishReport, NetError> {
        match self.request(Request::Publish { wasm }).await? {
            Response::Published(report) => Ok(report),
            other => Err(unexpected(&other)),
        }
    }

    /// Removes a module and its data.
    pub async fn remove(&self, module: &str) -> Result<(), NetError> {
        match self
            .request(Request::Remove {
                module: module.to_owned(),
            })
            .await?
        {
            Response::Removed => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    /// Calls a reducer with ABI-encoded arguments.
    pub async fn call_reducer(
        &self,
        module: &str,
        reducer: &str,
        args: Vec<u8>,
    ) -> Result<ReducerOutcome, NetError> {
        let request = Request::CallReducer {
            module: module.to_owned(),
            reducer: reducer.to_owned(),
            args,
            origin: None,
        };
        match self.request(request).await? {
            Response::Reducer(outcome) => Ok(outcome),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs a query with ABI-encoded arguments; returns the encoded value and its type.
    pub async fn call_query(
        &self,
        module: &str,
        query: &str,
        args: Vec<u8>,
    ) -> Result<(Vec<u8>, Type), NetError> {
        let request = Request::CallQuery {
            module: module.to_owned(),
            query: query.to_owned(),
            args,
        };
        match self.request(request).await? {
            Response::Query { value, ty } => Ok((value, ty)),
            other => Err(unexpected(&other)),
        }
    }
}

/// Writes queued requests in order, flushing once per batch; a failed write ends the
/// connection for everyone waiting on it.
async fn write_requests(
    mut queued: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
    mut sink: Sink,
    pending: Arc<Pending>,
    stop: CancellationToken,
    closed: CancellationToken,
) {
    loop {
        let frame = tokio::select! {
            () = stop.cancelled() => break,
            () = closed.cancelled() => break,
            frame = queued.recv() => frame,
        };
        let Some(frame) = frame else { break };
        let mut written = sink.feed(frame).await.is_ok();
        while written && let Ok(frame) = queued.try_recv() {
            written = sink.feed(frame).await.is_ok();
        }
        if !written || sink.flush().await.is_err() {
            // Nothing more can be sent: whoever waits for an answer learns it now.
            pending.lock().take();
            closed.cancel();
            break;
        }
    }
    let _ = sink.close().await;
}

/// Pings every `every` until the client is dropped, so that the node does not close the
/// connection as idle. The answers carry [`KEEP_ALIVE_ID`], which no caller waits for.
async fn keep_alive(
    every: Duration,
    outgoing: tokio::sync::mpsc::UnboundedSender<Bytes>,
    stop: CancellationToken,
) {
    let ping = Bytes::from(proto::encode(&RequestFrame {
        id: KEEP_ALIVE_ID,
        request: Request::Ping,
    }));
    let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is now: the handshake just happened.
    ticks.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if outgoing.send(ping.clone()).is_err() {
            return;
        }
    }
}

fn unexpected(response: &Response) -> NetError {
    NetError::Protocol(format!("unexpected answer {response:?}"))
}

/// A [`Client`] with its own single-threaded runtime, for synchronous callers.
pub struct BlockingClient {
    runtime: tokio::runtime::Runtime,
    client: Client,
}

impl BlockingClient {
    /// Connects to `addr`. Must not be called from inside a tokio runtime.
    pub fn connect(addr: &str, config: ClientConfig) -> Result<BlockingClient, NetError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(NetError::Io)?;
        let client = runtime.block_on(Client::connect(addr, config))?;
        Ok(BlockingClient { runtime, client })
    }

    /// The async client, e.g. to pipeline requests with [`BlockingClient::block_on`].
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs a future on this client's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    pub fn node_id(&self) -> &str {
        self.client.node_id()
    }

    pub fn is_admin(&self) -> bool {
        self.client.is_admin()
    }

    pub fn request(&self, request: Request) -> Result<Response, NetError> {
        self.block_on(self.client.request(request))
    }

    pub fn ping(&self) -> Result<Duration, NetError> {
        self.block_on(self.client.ping())
    }

    pub fn schema(&self) -> Result<Vec<ModuleSchema>, NetError> {
        self.block_on(self.client.schema())
    }

    pub fn stats(&self) -> Result<Vec<(String, String)>, NetError> {
        self.block_on(self.client.stats())
    }

    pub fn publish(&self, wasm: Vec<u8>) -> Result<PublishReport, NetError> {
        self.block_on(self.client.publish(wasm))
    }

    pub fn remove(&self, module: &str) -> Result<(), NetError> {
        self.block_on(self.client.remove(module))
    }

    pub fn call_reducer(
        &self,
        module: &str,
        reducer: &str,
        args: Vec<u8>,
    ) -> Result<ReducerOutcome, NetError> {
        self.block_on(self.client.call_reducer(module, reducer, args))
    }

    pub fn call_query(
        &self,
        module: &str,
        query: &str,
        args: Vec<u8>,
    ) -> Result<(Vec<u8>, Type), NetError> {
        self.block_on(self.client.call_query(module, query, args))
    }
}
