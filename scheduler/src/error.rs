//! The scheduler's error type.

use crate::ingress::{LaneId, Seq};

/// What can go wrong building or driving a [`Scheduler`](crate::Scheduler).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A lane was looked up by a name that was never declared.
    #[error(
        "unknown lane `{name}`: declare it with `Config::lane(\"{name}\")` before building the scheduler"
    )]
    UnknownLane {
        /// The name asked for.
        name: String,
    },
    /// Queued work names a lane this scheduler does not have (a `LaneId` from another
    /// scheduler). Nothing of the window was run or removed from the ingress.
    #[error("invocation {seq} is pinned to lane {} but this scheduler has {lanes} lane(s); take lane ids from `Scheduler::lane` of the scheduler that runs the work", lane.index())]
    LaneOutOfRange {
        /// The offending invocation.
        seq: Seq,
        /// The lane it names.
        lane: LaneId,
        /// How many lanes the scheduler has.
        lanes: usize,
    },
    /// The same lane name was declared twice.
    #[error("lane `{name}` is declared twice; lane names must be unique")]
    DuplicateLane {
        /// The repeated name.
        name: String,
    },
    /// A configuration value is out of range.
    #[error("invalid scheduler configuration: {0}")]
    InvalidConfig(&'static str),
    /// The worker pool could not be started.
    #[cfg(not(loom))]
    #[error("could not start the worker pool: {0}")]
    PoolBuild(#[from] rayon::ThreadPoolBuildError),
    /// A dedicated thread (a lane, or a worker under loom) could not be started.
    #[error("could not start thread `{name}`: {source}")]
    ThreadSpawn {
        /// The thread's name.
        name: String,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
}
