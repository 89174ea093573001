//! The Interstice node: hosts sandboxed WebAssembly modules and runs their reducers as
//! transactions over the store.
//!
//! Architecture Invariant: the runtime never trusts a module. Every pointer, length, name and
//! value a module hands over is checked in `wasm.rs` before use.

mod core;
mod error;
mod feed;
mod invocation;
pub mod net;
mod node;
#[doc(hidden)]
pub mod testing;
pub mod wasm;

pub use error::{CallFailure, LoadError};
pub use feed::{FeedEvent, FeedSink, HISTORY, Position};
pub use interstice_store::{Durability, Lsn};
pub use invocation::RemoteCall;
pub use node::{Clock, Node, NodeConfig, NodeError, NodeStats, Outcome, Published, RemoteNode};
