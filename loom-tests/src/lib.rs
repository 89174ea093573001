//! Loom models of the scheduler's dependency counting, ready dispatch and reorder buffer.
//!
//! The models are in `tests/models.rs` and only exist under `--cfg loom`, where the scheduler
//! swaps every lock, atomic and thread for loom's (see `scheduler/src/loom.rs`) and runs its
//! pool on loom threads. Run them with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p loom-tests --release
//! ```
//!
//! In a normal build this crate is empty, so the workspace test run stays fast.

#![forbid(unsafe_code)]
