//! Integration tests of the runtime: one binary, a module per topic (as wasmtime does).

// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod authority;
mod file;
mod fuzz_corpus;
mod hello;
mod hostile;
mod lifecycle;
mod parallel;
mod partitions;
mod remote;
