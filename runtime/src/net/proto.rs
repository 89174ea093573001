//! The messages of the Interstice protocol and their byte layout.
//!
//! Every message travels in one frame: a 4-byte big-endian length, then that many bytes (the
//! layout of `tokio_util`'s `LengthDelimitedCodec`). The two handshake frames are at most
//! [`MAX_HANDSHAKE_LENGTH`] bytes; after the handshake, frames are at most the limit the node
//! names in [`Welcome::Accepted`]. A longer frame closes the connection; an answer that would
//! be longer is replaced by an error of kind [`ErrorKind::Limit`].
//!
//! A connection starts with a handshake. The client's first frame is [`MAGIC`], the protocol
//! version as a little-endian `u16`, then a postcard-encoded [`Hello`]; the server answers with
//! the same 6-byte header and a postcard-encoded [`Welcome`]. Each side reads the other's version
//! from the header before decoding anything else, so a version mismatch is reported as such, on
//! both sides, whatever later versions change in the bodies.
//!
//! After the handshake the client sends [`RequestFrame`]s and the server answers each with
//! exactly one [`ResponseFrame`] carrying the same id, in the order the requests arrived.
//! Clients may pipeline: send many requests before reading the answers. A connection without
//! subscriptions that sends no request for the node's idle timeout is closed; clients keep it
//! open with [`Request::Ping`].
//!
//! [`Request::Subscribe`] is answered once with [`Response::Subscribed`]; from then on the
//! server also sends [`Response::Event`] frames carrying the id of that request, one per
//! committed row change, in commit order, until the connection closes. A subscriber that
//! names the position of the last change it has gets the kept changes after it first. A subscriber that falls
//! behind has its connection closed; it may connect and subscribe again.

use interstice_abi::{ModuleSchema, TableEvent, Type};
use serde::{Deserialize, Serialize};

/// The version of this protocol. Both sides must speak the same one. Version 3 added
/// [`Request::Stats`], the oversize-answer error and the admission limits.
pub const PROTOCOL_VERSION: u16 = 3;

/// The first four bytes of both handshake frames.
pub const MAGIC: [u8; 4] = *b"ISTC";

/// The default largest frame, in bytes: 64 MiB (a module upload is one frame).
pub const DEFAULT_MAX_FRAME_LENGTH: usize = 64 << 20;

/// The largest handshake frame, in bytes: a handshake is a few hundred bytes, and a connection
/// that has not finished it costs no more than this, whatever its first frame announces.
pub const MAX_HANDSHAKE_LENGTH: usize = 16 << 10;

/// Who is connecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientKind {
    /// The `interstice` command or another tool.
    Cli,
    /// Another node.
    Node,
}

/// The client's half of the handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub kind: ClientKind,
    /// The client's own node id (a UUID string), for node-to-node connections.
    pub node_id: Option<String>,
    /// The id of the node the client means to reach. When set and different from the server's
    /// id, the server refuses: the address now belongs to another node.
    pub expect_node: Option<String>,
    /// The node's admin token, which allows publishing, removing and calling private modules.
    pub admin_token: Option<String>,
}

/// The server's half of the handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Welcome {
    Accepted {
        /// The server's node id (a UUID string).
        node_id: String,
        /// Whether the client presented the admin token.
        admin: bool,
        /// The longest frame the node accepts from this client, in bytes.
        max_frame_length: u64,
    },
    Refused {
        reason: String,
    },
}

/// A request and its id. Ids are chosen by the client; the response carries the same id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFrame {
    pub id: u64,
    pub request: Request,
}

/// What a client may ask.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Answered with [`Response::Pong`].
    Ping,
    /// The schemas of the installed modules. Clients without the admin token get the public
    /// view: private modules and private tables are left out.
    Schema,
    /// Installs or upgrades a module (admin, unless the node allows anonymous publishing).
    Publish { wasm: Vec<u8> },
    /// Removes a module with its data (admin, unless the node allows anonymous publishing).
    Remove { module: String },
    /// Calls a reducer; `args` are the arguments in the ABI encoding, one after the other.
    CallReducer {
        module: String,
        reducer: String,
        args: Vec<u8>,
        /// From another node's outbox: the calling module and the call's number there. A node
        /// runs each `(its node id, module, number)` once, however often it is sent.
        origin: Option<(String, u64)>,
    },
    /// Runs a query; `args` as for [`Request::CallReducer`].
    CallQuery {
        module: String,
        query: String,
        args: Vec<u8>,
    },
    /// Streams the committed changes of `module.table` of one kind (public modules and tables
    /// only, unless admin).
    Subscribe {
        module: String,
        table: String,
        event: TableEvent,
        /// The position (`seq`, `part`) of the last change the subscriber has: the node first
        /// sends the changes after it that it still keeps. `None`: from now on.
        after: Option<(u64, u32)>,
    },
    /// The node's figures (`interstice node show`): its own counters, then each platform
    /// authority's (underruns, latency…), as label and value. Answered with
    /// [`Response::Stats`].
    Stats,
}

/// A response and the id of the request it answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseFrame {
    pub id: u64,
    pub response: Response,
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Pong,
    Schema(Vec<ModuleSchema>),
    Published(PublishReport),
    Removed,
    Reducer(ReducerOutcome),
    /// A query's value in the ABI encoding, and its type (named types are the module's).
    Query {
        value: Vec<u8>,
        ty: Type,
    },
    /// The subscription is in place: every commit after this answer is streamed. `complete`
    /// says whether the changes sent for `after` are all the subscriber missed (`false`: the
    /// node no longer kept some, or restarted since).
    Subscribed {
        complete: bool,
    },
    /// One committed change for a subscription (the id is the subscribing request's).
    Event(TableChange),
    /// The node's figures, as label and value, in a stable order.
    Stats(Vec<(String, String)>),
    Error(RemoteError),
}

/// A committed row change streamed to a subscriber.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableChange {
    /// The sequence number of the invocation that committed it.
    pub seq: u64,
    /// Its index among that commit's changes: `(seq, part)` is its position.
    pub part: u32,
    pub kind: TableEvent,
    /// The row (insert, delete), or the old row then the new one (update), ABI-encoded.
    pub rows: Vec<u8>,
}

/// What publishing did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublishReport {
    Installed {
        module: String,
        version: String,
    },
    Upgraded {
        module: String,
        from: String,
        to: String,
    },
}

/// The outcome of a remote reducer call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReducerOutcome {
    /// Everything it wrote is committed (and durable, under the node's durability setting).
    Committed { seq: u64, lsn: u64 },
    /// Nothing it wrote was committed.
    Failed { seq: u64, reason: String },
}

/// A request the node could not carry out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub kind: ErrorKind,
    pub message: String,
}

/// The class of a [`RemoteError`], for programs that react to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request needs the node's admin token.
    Unauthorized,
    /// No such module, reducer or query.
    NotFound,
    /// Malformed arguments, or a reducer that cannot be called directly.
    BadRequest,
    /// The node refused a module (invalid, incompatible upgrade, authority taken...).
    Refused,
    /// The node failed (I/O, store).
    Internal,
    /// A limit of the node: an answer longer than its frame limit, too many subscriptions.
    Limit,
}

/// Why a handshake frame could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HandshakeError {
    NotInterstice,
    Version(u16),
    Malformed(String),
}

pub(crate) fn encode_handshake<T: Serialize>(body: &T) -> Vec<u8> {
    let header = || {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&PROTOCOL_VERSION.to_le_bytes());
        out
    };
    // Serialising plain data cannot fail; an empty body would be refused by the peer.
    postcard::to_extend(body, header()).unwrap_or_else(|_| header())
}

pub(crate) fn decode_handshake<T: for<'de> Deserialize<'de>>(
    frame: &[u8],
) -> Result<T, HandshakeError> {
    if frame.len() < 6 || frame[..4] != MAGIC {
        return Err(HandshakeError::NotInterstice);
    }
    let version = u16::from_le_bytes([frame[4], frame[5]]);
    if version != PROTOCOL_VERSION {
        return Err(HandshakeError::Version(version));
    }
    postcard::from_bytes(&frame[6..]).map_err(|e| HandshakeError::Malformed(e.to_string()))
}

pub(crate) fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    postcard::to_allocvec(message).unwrap_or_default()
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(frame: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_frames_round_trip_and_name_the_version() {
        let hello = Hello {
            kind: ClientKind::Cli,
            node_id: None,
            expect_node: Some("n".into()),
            admin_token: Some("t".into()),
        };
        let frame = encode_handshake(&hello);
        assert_eq!(&frame[..4], b"ISTC");
        assert_eq!(decode_handshake::<Hello>(&frame), Ok(hello));
        let mut other = frame.clone();
        other[4] = 9;
        assert_eq!(
            decode_handshake::<Hello>(&other),
            Err(HandshakeError::Version(9))
        );
        assert_eq!(
            decode_handshake::<Hello>(b"GET / HTTP/1.1"),
            Err(HandshakeError::NotInterstice)
        );
        assert!(matches!(
            decode_handshake::<Hello>(&frame[..7]),
            Err(HandshakeError::Malformed(_))
        ));
    }

    #[test]
    fn requests_round_trip() {
        let frame = RequestFrame {
            id: 7,
            request: Request::CallReducer {
                module: "hello".into(),
                reducer: "hello".into(),
                args: vec![3, b'A', b'd', b'a'],
                origin: Some(("caller".into(), 9)),
            },
        };
        assert_eq!(decode::<RequestFrame>(&encode(&frame)).ok(), Some(frame));
        assert!(decode::<RequestFrame>(&[0xff; 3]).is_err());
        let frame = RequestFrame {
            id: 8,
            request: Request::Stats,
        };
        assert_eq!(decode::<RequestFrame>(&encode(&frame)).ok(), Some(frame));
        let answer = ResponseFrame {
            id: 8,
            response: Response::Stats(vec![("Audio underruns".into(), "0".into())]),
        };
        assert_eq!(decode::<ResponseFrame>(&encode(&answer)).ok(), Some(answer));
    }
}
