//! The built-in File authority end to end, through the `files` module (`modules/files`): what
//! it refuses (`confine.rs`), and its changes as effects of the commit (`effects.rs`).

mod confine;
mod effects;

use interstice_store::Readable;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use interstice_abi::Value;
use interstice_runtime::{Clock, Durability, FileConfig, Node, NodeConfig, Outcome};

/// The `files` module, built once per test binary.
pub fn wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| crate::hello::build("files"))
}

/// A node with a data directory, a manual clock and `files` installed.
pub struct Fixture {
    pub node: Arc<Node>,
    pub data: tempfile::TempDir,
    /// A folder outside the module's, for escape attempts to aim at.
    pub outside: tempfile::TempDir,
}

pub fn open(data: &Path, workers: usize, files: FileConfig) -> Arc<Node> {
    let (clock, _) = Clock::manual(1_700_000_000_000_000);
    Node::open(NodeConfig {
        data_dir: Some(data.to_owned()),
        workers,
        clock,
        durability: Durability::Off,
        files,
        ..NodeConfig::default()
    })
    .unwrap()
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with(FileConfig::default())
    }

    pub fn with(files: FileConfig) -> Fixture {
        let data = tempfile::tempdir().unwrap();
        let node = open(data.path(), 2, files);
        node.install(wasm()).unwrap();
        Fixture {
            node,
            data,
            outside: tempfile::tempdir().unwrap(),
        }
    }

    /// `<data>/files/files`, the module's folder.
    pub fn folder(&self) -> PathBuf {
        let folder = self.node.file_folder().unwrap();
        assert_eq!(folder, self.data.path().join("files").join("files"));
        folder
    }

    pub fn call(&self, reducer: &str, args: &[&str]) -> Outcome {
        let args: Vec<Value> = args.iter().map(|a| Value::from(*a)).collect();
        self.node
            .call_reducer_values("files", reducer, &args)
            .unwrap()
    }

    pub fn ok(&self, reducer: &str, args: &[&str]) {
        let outcome = self.call(reducer, args);
        assert!(outcome.is_committed(), "{reducer}{args:?}: {outcome:?}");
    }

    /// The message `reducer` failed with.
    pub fn refused(&self, reducer: &str, args: &[&str]) -> String {
        match self.call(reducer, args) {
            Outcome::Failed { reason, .. } => reason.to_string(),
            other => panic!("{reducer}{args:?} committed: {other:?}"),
        }
    }

    pub fn results(&self) -> Vec<String> {
        strings(&self.node, "files.results", 1)
    }

    pub fn changes(&self) -> Vec<String> {
        let paths = strings(&self.node, "files.changes", 1);
        let kinds = strings(&self.node, "files.changes", 2);
        paths
            .into_iter()
            .zip(kinds)
            .map(|(p, k)| format!("{p} {k}"))
            .collect()
    }

    /// The named figure of the File authority.
    pub fn stat(&self, label: &str) -> String {
        let label = format!("File {label}");
        self.node
            .authority_stats()
            .into_iter()
            .find(|(l, _)| *l == label)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no figure `{label}`"))
    }
}

/// Column `column` of every row of `table`, as strings.
pub fn strings(node: &Node, table: &str, column: usize) -> Vec<String> {
    let id = node.store().table_id(table).unwrap();
    node.store()
        .read()
        .scan(id)
        .unwrap()
        .map(|row| match &row[column] {
            Value::String(s) => s.clone(),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// Waits (up to a generous bound, for a loaded machine) until `done` holds.
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every file under `dir` with its content, and every folder (as `None`), by relative path.
pub fn tree(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Option<Vec<u8>>)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            if path.is_dir() {
                out.push((rel, None));
                walk(base, &path, out);
            } else {
                out.push((rel, Some(std::fs::read(&path).unwrap())));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}
