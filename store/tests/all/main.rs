//! Integration tests of the store, one module per topic.

// Tests may unwrap: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod basic;
mod concurrency;
mod crash;
mod damage;
mod faults;
mod fuzz_corpus;
mod group_commit;
mod model;
mod persistence;
mod read_tx;
mod util;
