//! The Interstice node: hosts sandboxed WebAssembly modules and runs their reducers as
//! transactions over the store.
//!
//! ```
//! use interstice_runtime::{Node, NodeConfig};
//!
//! let node = Node::open(NodeConfig::default())?; // memory only
//! assert!(node.schemas().is_empty());
//! // node.install(&wasm)?; node.call_reducer("hello", "hello", &args)?; …
//! # Ok::<(), interstice_runtime::NodeError>(())
//! ```
//!
//! # Core concepts
//!
//! - A [`Node`] hosts modules: `install`/`publish`/`remove` them, call their reducers (each a
//!   transaction whose [`Outcome`] comes back once it is durable) and queries.
//! - Every invocation enters one ingress and is run by the scheduler, in parallel where the
//!   declared access of reducers does not conflict, and committed in sequence order.
//! - Platform capabilities (a window and GPU, audio, files, module management) are
//!   [`AuthorityProvider`](authority::AuthorityProvider) implementations given to the node in
//!   [`NodeConfig::authorities`].
//! - [`net`] serves a node over TCP to the CLI and to other nodes.
//!
//! Architecture Invariant: the runtime never trusts a module. Every pointer, length, name and
//! value a module hands over is checked (`wasm/guest.rs`) before use.

#![forbid(unsafe_code)]

pub mod authority;
mod config;
mod core;
mod error;
mod exec;
mod feed;
pub mod net;
mod node;
mod partition;
mod policy;
mod system;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod wasm;

pub use authority::FileConfig;
pub use config::{Clock, NodeConfig};
pub use error::{BadArguments, CallFailure, HostCallError, LoadError, NodeError};
pub use exec::RemoteCall;
pub use feed::{FeedEvent, FeedSink, HISTORY, Position};
pub use interstice_store::{Durability, Lsn};
pub use node::{
    EventSink, Node, NodeInner, NodeStats, Outcome, PendingCalls, Published, RemoteNode,
};
pub use policy::{AccessPolicy, Principal};
pub use system::SystemTableError;
/// The wasmtime the host is built on, for authorities that link host calls.
pub use wasmtime;
