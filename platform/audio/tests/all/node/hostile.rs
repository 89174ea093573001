//! Hand-written modules that abuse the Audio authority: whatever they do, the device plays
//! silence or clamped samples, the callback keeps its accounting, and the node carries on.

use interstice_abi::{ABI_VERSION, Authority as Kind, Event, Field, ModuleSchema, Type, platform};
use interstice_audio::AudioConfig;
use interstice_runtime::testing::{module_importing, probe_schema};

use super::{Rig, RigConfig, wait_for};

const IMPORTS: &str = r#"(import "interstice_audio" "write_samples" (func $write_samples (param i32 i32) (result i64)))"#;

/// 256 frames × 2 channels of f32.
const BLOCK_FRAMES: u32 = 256;
const BLOCK_BYTES: i32 = 256 * 2 * 4;
/// Where the bodies below keep their samples: clear of the schema (4096..) and the heap
/// (32768..).
const SAMPLES_AT: i32 = 16384;

/// A module `hostile` claiming Audio (or not): reducer `play` is its `audio_output` hook
/// running `play`, reducer `poke` an ordinary reducer running `poke`.
fn hostile(claims: bool, play: &str, poke: &str) -> Vec<u8> {
    hostile_version("0.1.0", claims, play, poke)
}

fn hostile_version(version: &str, claims: bool, play: &str, poke: &str) -> Vec<u8> {
    let mut schema: ModuleSchema = probe_schema(&[("play", None), ("poke", None)]);
    schema.name = "hostile".into();
    schema.version = version.into();
    // Without the authority it may not have the hook either; it only imports the host call.
    if claims {
        schema.authorities = vec![Kind::Audio];
        schema
            .types
            .extend(platform::definitions(platform::AUDIO_BLOCK).expect("a platform type"));
        schema.reducers[0].on = Some(Event::AudioOutput);
        schema.reducers[0].args = vec![Field::new(
            "block",
            Type::Named(platform::AUDIO_BLOCK.into()),
        )];
    }
    module_importing(&schema, ABI_VERSION, IMPORTS, &[play, poke])
}

/// Fills the block's bytes with `byte`, writes them, succeeds.
fn fill_and_write(byte: u8) -> String {
    format!(
        "(memory.fill (i32.const {SAMPLES_AT}) (i32.const {byte}) (i32.const {BLOCK_BYTES})) \
         (drop (call $write_samples (i32.const {SAMPLES_AT}) (i32.const {BLOCK_BYTES}))) (i32.const 0)"
    )
}

/// Stores `bits` as every sample of the block, writes them, succeeds. The loop counts in the
/// dispatch function's `$len` parameter, which the bodies may reuse.
fn store_and_write(bits: u32) -> String {
    format!(
        "(local.set $len (i32.const 0)) \
         (block $done (loop $fill \
           (br_if $done (i32.ge_u (local.get $len) (i32.const {BLOCK_BYTES}))) \
           (i32.store (i32.add (i32.const {SAMPLES_AT}) (local.get $len)) (i32.const {bits})) \
           (local.set $len (i32.add (local.get $len) (i32.const 4))) \
           (br $fill))) \
         (drop (call $write_samples (i32.const {SAMPLES_AT}) (i32.const {BLOCK_BYTES}))) (i32.const 0)",
        bits = bits as i32
    )
}

fn config() -> RigConfig<'static> {
    RigConfig {
        audio: AudioConfig::default()
            .block_frames(BLOCK_FRAMES)
            .target_blocks(3)
            .capture(false),
        period: 128,
        // A spinning hook gives up after a few milliseconds.
        fuel: Some(2_000_000),
        ..RigConfig::default()
    }
}

/// Installs `play` as the hook and plays 64 periods (32 blocks) once the ring holds them.
fn run(play: &str) -> (Rig, Vec<f32>) {
    let mut rig = Rig::new(config());
    rig.install(&hostile(true, play, "(i32.const 0)"));
    let samples = rig.play_gated(64);
    (rig, samples)
}

#[test]
fn nan_and_infinite_samples_play_as_silence() {
    // 0xffffffff is a NaN; then +inf and -inf.
    for play in [
        fill_and_write(0xff),
        store_and_write(0x7f80_0000),
        store_and_write(0xff80_0000),
    ] {
        let (rig, samples) = run(&play);
        assert!(samples.iter().all(|&s| s == 0.0), "{play}");
        let stats = rig.audio.engine_stats().expect("open").snapshot().output;
        assert!(stats.blocks_pushed >= 32, "{stats:?}");
        assert!(stats.samples_fixed >= 32 * 512, "{stats:?}");
        assert_eq!(stats.underruns, 0);
    }
}

#[test]
fn huge_samples_are_clamped() {
    // 0x7f7f7f7f ≈ 3.4e38, 0xc2c80000 = -100.0.
    for (play, expected) in [
        (fill_and_write(0x7f), 1.0),
        (store_and_write(0xc2c8_0000), -1.0),
    ] {
        let (rig, samples) = run(&play);
        assert!(samples.iter().all(|&s| s == expected), "{play}");
        let stats = rig.audio.engine_stats().expect("open").snapshot().output;
        assert!(stats.samples_fixed >= 32 * 512, "{stats:?}");
    }
}

#[test]
fn hooks_that_fail_or_write_the_wrong_amount_play_silence() {
    let valid = fill_and_write(0x3e);
    let cases = [
        // Burns its fuel.
        ("(loop $spin (br $spin)) (i32.const 0)".to_owned(), "fuel"),
        // Traps.
        ("(unreachable)".to_owned(), "failed"),
        // Returns an error.
        ("(i32.const 1)".to_owned(), "failed"),
        // Too few samples.
        (
            format!(
                "(drop (call $write_samples (i32.const {SAMPLES_AT}) (i32.const 100))) (i32.const 0)"
            ),
            "length",
        ),
        // Nothing at all.
        ("(i32.const 0)".to_owned(), "length"),
        // Too many: a second block's worth.
        (
            format!(
                "{} (drop (call $write_samples (i32.const {SAMPLES_AT}) (i32.const 8))) (i32.const 0)",
                valid.trim_end_matches("(i32.const 0)")
            ),
            "failed",
        ),
        // Not whole samples.
        (
            format!(
                "(drop (call $write_samples (i32.const {SAMPLES_AT}) (i32.const 2047))) (i32.const 0)"
            ),
            "failed",
        ),
        // Outside its memory, and a negative length.
        (
            format!(
                "(drop (call $write_samples (i32.const 65000) (i32.const {BLOCK_BYTES}))) (i32.const 0)"
            ),
            "failed",
        ),
        (
            format!(
                "(drop (call $write_samples (i32.const {SAMPLES_AT}) (i32.const -4))) (i32.const 0)"
            ),
            "failed",
        ),
    ];
    for (play, kind) in cases {
        let (rig, samples) = run(&play);
        assert!(samples.iter().all(|&s| s == 0.0), "{play}");
        let stats = rig.audio.engine_stats().expect("open").snapshot().output;
        let hooks = rig.audio.hook_stats();
        assert_eq!(stats.blocks_pushed, 0, "{play}: {stats:?}");
        assert!(stats.blocks_silenced >= 32, "{play}: {stats:?}");
        match kind {
            "length" => assert!(hooks.blocks_wrong_length >= 32, "{play}: {hooks:?}"),
            _ => assert!(hooks.blocks_failed >= 32, "{play}: {hooks:?}"),
        }
        // The node is fine: its other reducers run.
        rig.call("hostile", "poke", &[]).expect("poke commits");
    }
}

/// The callback never waits for the module: a device ticking as fast as it can while every
/// hook burns its fuel plays silence, and every frame it played is accounted for.
#[test]
fn a_spinning_module_cannot_stall_the_callback() {
    let mut rig = Rig::new(config());
    rig.install(&hostile(
        true,
        "(loop $spin (br $spin)) (i32.const 0)",
        "(i32.const 0)",
    ));
    let samples = rig.play_now(2000);
    assert!(samples.iter().all(|&s| s == 0.0));
    let stats = rig.audio.engine_stats().expect("open").snapshot().output;
    assert_eq!(stats.callbacks, 2000);
    assert_eq!(stats.played_frames + stats.underrun_frames, 2000 * 128);
    assert_eq!(stats.blocks_pushed, 0);
}

#[test]
fn samples_written_outside_the_hook_are_refused_and_change_nothing() {
    let valid = fill_and_write(0x3e);
    let mut rig = Rig::new(config());
    rig.install(&hostile(true, &valid, &valid));
    let before = rig.play_gated(16);
    for _ in 0..20 {
        let err = rig.call("hostile", "poke", &[]).expect_err("refused");
        assert!(err.contains("only for the audio_output hook"), "{err}");
    }
    let after = rig.play_gated(64);
    let level = f32::from_le_bytes([0x3e; 4]);
    assert!(before.iter().chain(&after).all(|&s| s == level));
    let stats = rig.audio.engine_stats().expect("open").snapshot().output;
    assert_eq!((stats.blocks_silenced, stats.underruns), (0, 0));
    assert!(rig.audio.hook_stats().writes_refused >= 20);
}

#[test]
fn the_host_call_needs_the_authority_and_one_output_hook() {
    let mut rig = Rig::new(config());
    let err = rig
        .node
        .install(&hostile(false, "(i32.const 0)", "(i32.const 0)"))
        .expect_err("refused");
    assert!(
        err.to_string().contains("without claiming the authority"),
        "{err}"
    );

    let mut schema = probe_schema(&[("a", None), ("b", None)]);
    schema.name = "twice".into();
    schema.authorities = vec![Kind::Audio];
    schema
        .types
        .extend(platform::definitions(platform::AUDIO_BLOCK).expect("a platform type"));
    for reducer in &mut schema.reducers {
        reducer.on = Some(Event::AudioOutput);
        reducer.args = vec![Field::new(
            "block",
            Type::Named(platform::AUDIO_BLOCK.into()),
        )];
    }
    let wasm = module_importing(
        &schema,
        ABI_VERSION,
        "",
        &["(i32.const 0)", "(i32.const 0)"],
    );
    let err = rig.node.install(&wasm).expect_err("refused");
    assert!(
        err.to_string().contains("2 audio_output hooks (a, b)"),
        "{err}"
    );

    // Neither attached anything.
    rig.take_device();
    assert!(rig.device.is_none());
    assert!(rig.audio.engine_stats().is_none());
}

/// An upgrade swaps the hook: the device is reopened and the new hook's blocks play.
#[test]
fn an_upgrade_replaces_the_hook() {
    let mut rig = Rig::new(config());
    rig.install(&hostile(true, &fill_and_write(0xff), "(i32.const 0)"));
    rig.play_gated(8);
    let upgraded = hostile_version("0.2.0", true, &fill_and_write(0x3e), "(i32.const 0)");
    rig.node.publish(&upgraded).expect("upgraded");
    rig.device = None;
    rig.take_device();
    wait_for("the new hook's blocks", || {
        rig.audio
            .engine_stats()
            .is_some_and(|s| s.snapshot().output.blocks_pushed > 0)
    });
    let samples = rig.play_gated(16);
    let level = f32::from_le_bytes([0x3e; 4]);
    assert!(samples.iter().all(|&s| s == level), "{:?}", &samples[..8]);
}
