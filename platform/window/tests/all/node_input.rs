//! Input is deterministic: the same events give the same tables and the same commit log on
//! one worker and on four, and a node restarted from its log has the same tables, no window
//! and no input needed.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use interstice_abi::Value;
use interstice_runtime::{Clock, Durability, Node, NodeConfig};
use interstice_store::Readable;
use interstice_window::{InputEvent, MouseButton, PlatformConfig, WheelUnit, WindowPlatform};

use crate::node_common::*;

/// A fixed pseudo-random sequence of events: arrows, clicks, motion, wheel, other keys.
fn events() -> Vec<InputEvent> {
    let mut state = 0x5eed_0001_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..300)
        .map(|_| {
            let n = next();
            let pressed = n & 1 == 0;
            match (n >> 1) % 6 {
                0 => key("ArrowLeft", pressed),
                1 => key("ArrowRight", pressed),
                2 => InputEvent::MouseButton {
                    button: if n & 2 == 0 {
                        MouseButton::Left
                    } else {
                        MouseButton::Right
                    },
                    pressed,
                },
                3 => InputEvent::PointerMoved {
                    x: (n % 640) as f64,
                    y: (n % 480) as f64,
                },
                4 => InputEvent::Wheel {
                    dx: 0.0,
                    dy: 1.0,
                    unit: WheelUnit::Lines,
                },
                _ => key("KeyQ", pressed),
            }
        })
        .collect()
}

fn key(code: &str, pressed: bool) -> InputEvent {
    InputEvent::Key {
        code: code.into(),
        key: String::new(),
        pressed,
        repeat: false,
    }
}

type Tables = Vec<(String, Vec<Vec<Value>>)>;

fn open(
    platform: &WindowPlatform,
    dir: &Path,
    workers: usize,
) -> (
    std::sync::Arc<Node>,
    std::sync::Arc<std::sync::atomic::AtomicI64>,
) {
    let (clock, time) = Clock::manual(1_700_000_000_000_000);
    let node = Node::open(NodeConfig {
        data_dir: Some(dir.to_owned()),
        workers,
        clock,
        seed: 3,
        durability: Durability::Off,
        authorities: platform.authorities(),
        ..NodeConfig::default()
    })
    .expect("node");
    (node, time)
}

/// Every table but the GPU handles (host state, made again by `load` on each start).
fn tables(node: &Node) -> Tables {
    let mut out = Vec::new();
    for info in node.store().tables() {
        if info.name == "graphics.scene" {
            continue;
        }
        let rows = node
            .store()
            .read()
            .scan(info.id)
            .expect("scan")
            .map(|r| r.to_vec())
            .collect();
        out.push((info.name, rows));
    }
    out
}

/// The records of every log segment, headers skipped (segment boundaries follow snapshots).
fn log_records(dir: &Path) -> Vec<u8> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "seg" || e == "hist") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort_by_key(|p| p.file_name().map(|n| n.to_owned()));
    files
        .iter()
        .flat_map(|f| {
            std::fs::read(f)
                .expect("segment")
                .get(8..)
                .unwrap_or_default()
                .to_vec()
        })
        .collect()
}

struct Run {
    tables: Tables,
    log: Vec<u8>,
    dir: tempfile::TempDir,
}

fn run(workers: usize) -> Option<Run> {
    let platform = platform(PlatformConfig::default())?;
    let dir = tempfile::tempdir().expect("temp dir");
    let (node, time) = open(&platform, dir.path(), workers);
    node.install(graphics_wasm()).expect("install graphics");
    for (i, event) in events().iter().enumerate() {
        assert_eq!(platform.deliver_input(event), 1);
        if i % 7 == 0 {
            time.fetch_add(1_000, Ordering::SeqCst);
        }
    }
    // Runs after every event delivered before it.
    let outcome = node
        .call_reducer_values("graphics", "rotate", &[Value::F32(0.0)])
        .expect("call");
    assert!(outcome.is_committed());
    let tables = tables(&node);
    drop(node);
    let log = log_records(&dir.path().join("store"));
    Some(Run { tables, log, dir })
}

#[test]
fn the_same_input_gives_the_same_tables_and_log_on_one_and_four_workers_and_after_a_restart() {
    let Some(serial) = run(1) else {
        return;
    };
    let Some(parallel) = run(4) else {
        return;
    };
    assert_eq!(serial.tables, parallel.tables, "same tables");
    assert_eq!(serial.log, parallel.log, "same commit log");
    // The events did something: the triangle turned and changed colour.
    let triangle = &serial
        .tables
        .iter()
        .find(|(name, _)| name == "graphics.triangle")
        .expect("triangle table")
        .1[0];
    assert_ne!(triangle[4], Value::F32(0.0), "{triangle:?}");
    assert_ne!(triangle[5], Value::U32(0), "{triangle:?}");

    // A restart replays the log: same tables, with no input and no window.
    let platform = platform(PlatformConfig::default()).expect("the GPU was there a moment ago");
    let (node, _) = open(&platform, serial.dir.path(), 2);
    assert_eq!(tables(&node), serial.tables, "same tables after a restart");
    assert_eq!(platform.frames().rendered, 0);
}
