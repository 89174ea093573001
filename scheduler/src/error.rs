//! The scheduler's error type.

use crate::ingress::{LaneId, Seq};

/// What can go wrong building or driving a [`Scheduler`](crate::Scheduler).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A lane was looked up by a name that no live lane has.
    #[error(
        "unknown lane `{name}`: add it with `Scheduler::add_lane(\"{name}\")` (or `Config::lane(\"{name}\")`) first"
    )]
    UnknownLane {
        /// The name asked for.
        name: String,
    },
    /// Queued work names a lane this scheduler does not have (a `LaneId` from another
    /// scheduler). Nothing of the window was run or removed from the ingress.
    #[error(
        "invocation {seq} is pinned to {lane} but this scheduler has {lanes} lane slot(s); take lane ids from the scheduler that runs the work"
    )]
    LaneOutOfRange {
        /// The offending invocation.
        seq: Seq,
        /// The lane it names.
        lane: LaneId,
        /// How many lanes the scheduler has.
        lanes: usize,
    },
    /// Queued work names a lane that has been removed. Nothing of the window was run or
    /// removed from the ingress.
    #[error(
        "invocation {seq} is pinned to {lane}, which was removed; drop work for a lane before removing it"
    )]
    LaneRemoved {
        /// The offending invocation.
        seq: Seq,
        /// The lane it names.
        lane: LaneId,
    },
    /// [`Scheduler::remove_lane`](crate::Scheduler::remove_lane) was given a lane that is not
    /// live (removed already, or from another scheduler).
    #[error("{lane} is not a lane of this scheduler (removed already, or from another scheduler)")]
    NoSuchLane {
        /// The lane asked for.
        lane: LaneId,
    },
    /// More than 65535 lanes would be live at once.
    #[error(
        "too many lanes: at most 65535 can be live at once; remove lanes that are no longer used"
    )]
    TooManyLanes,
    /// A lane with this name is already live.
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
