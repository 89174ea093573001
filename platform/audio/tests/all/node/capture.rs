//! Captured buffers are input like any other: the same captured sound gives the same tables
//! at any number of workers, and a restart rebuilds them from the log with no device.

use std::path::Path;

use interstice_abi::{Value, encode, encode_varint};
use interstice_audio::{AudioConfig, CaptureStats};

use super::{Rig, RigConfig, audio_wasm, wait_for};
use crate::support::stereo_f32;

const BLOCK: u32 = 512;
const BUFFERS: u64 = 40;
const CHUNK: usize = 300;

/// The captured sound: stereo, a different level every 700 frames, the channels apart.
fn sound(frame: usize) -> [f32; 2] {
    let level = ((frame / 700) % 5) as f32 / 5.0;
    let t = frame as f32 * 0.01;
    [level * t.sin(), -level * (t * 2.0).sin()]
}

fn config(data_dir: &Path, workers: usize, capture: bool) -> RigConfig<'_> {
    RigConfig {
        audio: AudioConfig::default()
            .block_frames(BLOCK)
            .target_blocks(4)
            .capture_blocks(8),
        input: capture.then(stereo_f32),
        workers,
        data_dir: Some(data_dir),
        ..RigConfig::default()
    }
}

fn capture_stats(rig: &Rig) -> CaptureStats {
    let stats = rig.audio.engine_stats().expect("open").snapshot();
    stats.capture.expect("capture is open")
}

fn buffers(rig: &Rig) -> u64 {
    match rig.rows("audio.input_totals").first().map(|row| &row[1]) {
        Some(Value::U64(n)) => *n,
        _ => 0,
    }
}

/// Captures `BUFFERS` buffers in chunks that do not line up with them, never more than the
/// capture ring holds (so nothing is dropped), and waits until the module has them all.
fn capture_all(rig: &mut Rig) {
    let frames = BUFFERS as usize * BLOCK as usize;
    let capacity = capture_stats(rig).ring_capacity_frames as u64;
    let mut at = 0;
    while at < frames {
        let n = CHUNK.min(frames - at);
        wait_for("room in the capture ring", || {
            capture_stats(rig).ring_fill_frames + n as u64 <= capacity
        });
        let chunk: Vec<f32> = (at..at + n).flat_map(sound).collect();
        let device = rig.device.as_mut().expect("a device");
        assert_eq!(device.capture(&chunk), Some(n));
        at += n;
    }
    wait_for("every buffer in the tables", || buffers(rig) == BUFFERS);
    assert_eq!(capture_stats(rig).overruns, 0);
}

type Tables = (Vec<Vec<Value>>, Vec<Vec<Value>>);

fn tables(rig: &Rig) -> Tables {
    (rig.rows("audio.inputs"), rig.rows("audio.input_totals"))
}

/// Every file under `dir`, read whole.
fn files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(std::fs::read(&path).expect("a readable file"));
        }
    }
    out
}

/// What the log's record of buffer `index`'s invocation carries as its meta: the module, the
/// hook and its `AudioCapture` argument, each length-prefixed.
fn recorded_invocation(index: u64) -> Vec<u8> {
    let first = index as usize * BLOCK as usize;
    let samples = (first..first + BLOCK as usize)
        .flat_map(sound)
        .map(Value::F32)
        .collect();
    let args = encode(&Value::Struct(vec![
        Value::U64(index),
        Value::U32(BLOCK),
        Value::U16(2),
        Value::U32(48_000),
        Value::List(samples),
        Value::U64(0),
    ]));
    let mut meta = Vec::new();
    for part in [&b"audio"[..], b"record", &args] {
        encode_varint(part.len() as u64, &mut meta);
        meta.extend_from_slice(part);
    }
    meta
}

#[test]
fn captured_buffers_give_the_same_tables_at_any_worker_count_and_after_a_restart() {
    let mut runs: Vec<Tables> = Vec::new();
    for workers in [1, 4] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut rig = Rig::new(config(dir.path(), workers, true));
        rig.install(audio_wasm());
        capture_all(&mut rig);
        let captured = tables(&rig);
        assert_eq!(captured.0.len(), BUFFERS.min(64) as usize);
        drop(rig);
        // The node's last threads let go of its store (writing out what it buffered) just
        // after it is dropped; until then the store is locked.
        wait_for("the closed node's store to be free", || {
            interstice_store::Store::open(
                dir.path().join("store"),
                interstice_store::StoreConfig::default(),
            )
            .is_ok()
        });

        // The log holds each buffer as its invocation's argument.
        let log = files(dir.path());
        for index in [0, 7, BUFFERS - 1] {
            let record = recorded_invocation(index);
            assert!(
                log.iter()
                    .any(|f| f.windows(record.len()).any(|w| w == record)),
                "buffer {index} is not in the log"
            );
        }

        // No capture device now: the tables come back from the log alone.
        let restarted = Rig::new(config(dir.path(), workers, false));
        assert_eq!(
            tables(&restarted),
            captured,
            "after a restart, {workers} workers"
        );
        runs.push(captured);
    }
    assert_eq!(runs[0], runs[1], "1 worker and 4 workers");
}
