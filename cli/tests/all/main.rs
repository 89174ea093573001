//! End to end through the real `interstice` binary: nodes are child processes on loopback, each
//! test with its own `INTERSTICE_HOME`.

// Helpers outside #[test] functions unwrap too: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bindings;
mod examples;
mod faults;
mod json;
mod publish;
mod registry;
mod support;
mod usage;
