//! Integration tests of the runtime: one binary, a module per topic (as wasmtime does).

mod hello;
mod hostile;
mod lifecycle;
mod parallel;
