//! The network protocol shared by the CLI and other nodes: framing, handshake,
//! requests, a server and a client. The byte layout is documented in [`proto`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use interstice_runtime::net::{self, Client, ClientConfig, ServerConfig};
//! use interstice_runtime::{Node, NodeConfig};
//!
//! let node = Node::open(NodeConfig::default())?;
//! let server = net::serve(node, "127.0.0.1:0", ServerConfig::default()).await?;
//! let client = Client::connect(&server.local_addr().to_string(), ClientConfig::default()).await?;
//! println!("round trip: {:?}", client.ping().await?);
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Architecture Invariant: the network layer never runs guest code itself and never holds a
//! lock of the node; it calls the node's API — the public [`Node`](crate::Node) methods, and
//! the crate-private glue of `node/remote.rs` and `node/calls.rs` for what only other nodes
//! send (their calls with an origin, remote input, acknowledgements, positions, module
//! watches) — from one blocking worker per connection, so the node's determinism does not
//! depend on the network.

mod admission;
mod client;
#[doc(hidden)]
pub mod fuzzing;
mod peers;
pub mod proto;
mod requests;
mod server;
mod wire;

use std::time::Duration;

pub use client::{BlockingClient, Client, ClientConfig, SubscriptionEvent};
pub use peers::{Peers, PeersConfig};
pub use proto::{
    ClientKind, ErrorKind, PROTOCOL_VERSION, PublishReport, ReducerOutcome, RemoteError, Request,
    Response, TableChange,
};
pub use server::{Server, ServerConfig, serve};

/// What went wrong talking to a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    #[error("cannot listen: {0}")]
    Bind(std::io::Error),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connection error: {0}")]
    Io(std::io::Error),
    #[error(
        "this client speaks protocol version {ours}, the node speaks version {theirs}; use matching versions of interstice"
    )]
    Version { ours: u16, theirs: u16 },
    #[error("the node refused the connection: {0}")]
    Refused(String),
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("the connection to the node was closed")]
    Closed,
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error(
        "the request is {len} bytes, over the node's frame limit of {max} bytes; send less (a smaller module, shorter arguments)"
    )]
    RequestTooLarge { len: usize, max: usize },
    #[error(
        "the node's answer is {len} bytes, over this client's frame limit of {max} bytes; ask for less, or raise ClientConfig::max_frame_length"
    )]
    AnswerTooLarge { len: usize, max: usize },
    #[error("{0}")]
    Remote(RemoteError),
}

impl NetError {
    /// The class of the node's error, when the node answered with one.
    pub fn remote_kind(&self) -> Option<ErrorKind> {
        match self {
            NetError::Remote(e) => Some(e.kind),
            _ => None,
        }
    }
}

#[cfg(test)]
mod attack_tests;
#[cfg(test)]
mod tests;
