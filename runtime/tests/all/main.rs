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

/// Every file below `dir`, at any depth (unordered).
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}
