//! Deterministic parallel scheduling of reducer invocations.
//!
//! Invocations enter an ordered [`Ingress`], which gives each a sequence number. The
//! [`Scheduler`] takes a window of them, plans which must wait for which from their declared
//! table [`AccessSet`], runs the rest in parallel on a worker pool (or on a pinned lane), and
//! calls the commit callback strictly in sequence order on the calling thread. The result is
//! the result of running them one by one, whatever the number of workers.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use interstice_scheduler::{AccessSet, Config, Ingress, Executed, Scheduler, ResourceId, Timestamp, Work};
//!
//! // Two tables of a toy store; the execute function applies writes directly, which is safe
//! // because conflicting invocations never overlap and successors start after it returns.
//! let tables = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
//! let store = tables.clone();
//! let mut scheduler = Scheduler::new(Config::new().workers(2), move |inv| {
//!     let add: &u64 = inv.task();
//!     for t in inv.access().writes() {
//!         store[t.index()].fetch_add(*add, Ordering::Relaxed);
//!     }
//!     inv.seq().0
//! })?;
//!
//! let mut ingress = Ingress::new();
//! for i in 0..4u64 {
//!     let access = AccessSet::new().write(ResourceId((i % 2) as u32));
//!     ingress.push(Work::new(i + 1, access, Timestamp(100)));
//! }
//! let mut log = Vec::new();
//! scheduler.run_until_idle(&mut ingress, |inv, outcome| {
//!     log.push((inv.seq().0, outcome));
//!     // A commit may emit more work, e.g. a subscription trigger; none here.
//!     Vec::new()
//! })?;
//! assert_eq!(log.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [0, 1, 2, 3]);
//! assert!(log.iter().all(|(s, o)| *o == Executed::Completed(*s)));
//! assert_eq!(tables[0].load(Ordering::Relaxed), 1 + 3);
//! assert_eq!(tables[1].load(Ordering::Relaxed), 2 + 4);
//! # Ok::<(), interstice_scheduler::Error>(())
//! ```
//!
//! # Core concepts
//!
//! - [`Work`] is what a caller (or a commit) submits: a task, its [`AccessSet`], a logical
//!   [`Timestamp`] and optionally a [`LaneId`]. The [`Ingress`] turns it into an
//!   [`Invocation`] with a [`Seq`].
//! - An [`AccessSet`] names whole tables, or partitions ([`Part`]) of a table, read and written;
//!   a whole table covers all its parts, and different parts of one table do not conflict.
//! - The [`Planner`] turns a window of access sets into a [`Plan`]: a DAG with an edge
//!   `i → j` (`i < j`) that orders conflicting invocations. [`Plan::to_dot`] shows it.
//! - The execute function runs an invocation and returns an output; a panic in it becomes
//!   [`Executed::Panicked`] and does not disturb the rest of the window.
//! - The commit callback receives each [`Executed`] in sequence order and returns new work,
//!   which is sequenced after the window in commit order.
//! - A lane is where invocations that must run on one particular thread (GPU, audio, input)
//!   go; they keep their place in the plan and the commit order. A lane is a thread the
//!   scheduler spawns ([`Scheduler::add_lane`], [`Config::lane`]) or one the embedder owns and
//!   drives ([`Scheduler::add_driven_lane`], [`LaneDriver`]); lanes come and go with the
//!   modules that need them ([`Scheduler::remove_lane`]).
//!
//! Architecture Invariant: the scheduler knows nothing about wasmtime or the store. It is
//! generic over the task type, and all it knows of a task is its declared access and lane.
//!
//! Architecture Invariant: every synchronisation type comes from [`loom`](crate::loom), so the
//! same dependency counting, ready dispatch and reorder buffer are model-checked under
//! `--cfg loom`, where the pool is made of loom threads instead of rayon.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod access;
mod error;
mod executor;
mod ingress;
mod lanes;
mod loom;
mod plan;
mod scheduler;
mod threads;

pub use crate::access::{AccessSet, Part, ResourceId};
pub use crate::error::Error;
pub use crate::ingress::{Ingress, Invocation, LaneId, Seq, Timestamp, Work};
pub use crate::lanes::LaneDriver;
pub use crate::plan::{Plan, Planner};
pub use crate::scheduler::{Config, Executed, Scheduler, WindowReport};
