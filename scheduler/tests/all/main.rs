//! The scheduler's integration tests, one binary with a module per topic.
//!
//! Loom builds replace every lock with a loom one that only works inside `loom::model`; the
//! loom models live in the `loom-tests` crate, so these tests are for normal builds only.
#![cfg(not(loom))]

mod access;
mod differential;
mod executors;
mod lanes;
mod model;
mod planner;
