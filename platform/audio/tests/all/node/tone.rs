//! The real `modules/audio` through a node: the tone in its table is what the device plays.

use interstice_abi::Value;

use super::{Rig, RigConfig, audio_wasm};
use crate::support::{RATE, frequency};

/// Peak of channel 0 over one block of `frames` frames starting at frame `at`.
fn peak(samples: &[f32], at: usize, frames: usize) -> f32 {
    samples[at * 2..(at + frames) * 2]
        .iter()
        .step_by(2)
        .fold(0.0, |m, s| m.max(s.abs()))
}

/// Blocks of 512 frames, 4 ahead, device periods of 256 frames; two seconds at the table's
/// 440 Hz, then `set_tone 660 0.2` and two seconds more.
#[test]
fn the_tone_in_the_table_is_what_plays_and_set_tone_changes_it() {
    const BLOCK: usize = 512;
    let mut rig = Rig::new(RigConfig::default());
    rig.install(audio_wasm());
    assert_eq!(rig.node.lanes(), ["audio"]);
    let device = rig.audio.device().expect("the virtual device is open");
    assert!(
        device.starts_with("virtual device, f32, 2 ch, 48000 Hz"),
        "{device}"
    );

    let two_seconds = 2 * RATE as usize / 256;
    let mut samples = rig.play_gated(two_seconds);
    rig.call("audio", "set_tone", &[Value::F64(660.0), Value::F64(0.2)])
        .expect("set_tone commits");
    samples.extend(rig.play_gated(two_seconds));

    let stats = rig.audio.engine_stats().expect("open").snapshot().output;
    let hooks = rig.audio.hook_stats();
    println!("{stats:?}\n{hooks:?}");
    assert_eq!(stats.underruns, 0, "{stats:?}");
    assert_eq!(stats.blocks_silenced, 0, "{stats:?}");
    assert_eq!(stats.samples_fixed, 0);
    assert_eq!((hooks.blocks_failed, hooks.blocks_wrong_length), (0, 0));
    assert!(samples.iter().all(|s| s.is_finite()));
    assert!(
        samples.chunks(2).all(|f| f[0] == f[1]),
        "every channel alike"
    );

    // Block 0 is the first thing played: nothing was lost at the start.
    for (i, frame) in samples.chunks(2).take(BLOCK).enumerate() {
        let expected = 0.25 * (std::f64::consts::TAU * 440.0 * i as f64 / 48_000.0).sin();
        assert!((f64::from(frame[0]) - expected).abs() < 1e-6, "frame {i}");
    }

    // The volume says where the tone changed: a whole block, after the call.
    let frames = samples.len() / 2;
    let blocks = frames / BLOCK;
    let switch = (0..blocks)
        .find(|&b| (peak(&samples, b * BLOCK, BLOCK) - 0.2).abs() < 0.01)
        .expect("the new volume is heard");
    assert!(
        switch * BLOCK >= two_seconds * 256 - 4 * BLOCK,
        "not before the call"
    );
    for b in 0..blocks {
        let expected = if b < switch { 0.25 } else { 0.2 };
        let p = peak(&samples, b * BLOCK, BLOCK);
        assert!((p - expected).abs() < 0.01, "block {b} peaks at {p}");
    }
    let before = frequency(&samples[..switch * BLOCK * 2], 2, RATE);
    let after = frequency(&samples[switch * BLOCK * 2..], 2, RATE);
    println!("switched at block {switch}: {before:.4} Hz, then {after:.4} Hz");
    assert!((before - 440.0).abs() < 0.5, "measured {before} Hz");
    assert!((after - 660.0).abs() < 0.5, "measured {after} Hz");

    // The node's stats carry the authority's figures.
    let figures = rig.node.authority_stats();
    let figure = |label: &str| {
        figures
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no `{label}` in {figures:?}"))
    };
    assert_eq!(figure("Audio block"), "512 frames (10.7 ms)");
    assert!(figure("Audio underruns").starts_with("0 "));
    assert!(figure("Audio output latency").ends_with(" ms"));
    assert!(figure("Audio ring fill").ends_with("of 2048 frames"));
}

/// A bad tone is refused with a reason, and what plays does not change.
#[test]
fn set_tone_refuses_what_cannot_play() {
    let mut rig = Rig::new(RigConfig::default());
    rig.install(audio_wasm());
    for (frequency, volume, says) in [
        (0.0, 0.5, "frequency 0 Hz is out of range"),
        (f64::NAN, 0.5, "out of range"),
        (440.0, 2.0, "volume 2 is out of range"),
    ] {
        let err = rig
            .call(
                "audio",
                "set_tone",
                &[Value::F64(frequency), Value::F64(volume)],
            )
            .expect_err("refused");
        assert!(err.contains(says), "{err}");
    }
    let samples = rig.play_gated(100);
    assert!((frequency(&samples, 2, RATE) - 440.0).abs() < 0.5);
}

/// Removing the module closes its device; installing it again opens a new one.
#[test]
fn removing_the_module_closes_the_device() {
    let mut rig = Rig::new(RigConfig::default());
    rig.install(audio_wasm());
    rig.play_gated(8);
    rig.node.remove("audio").expect("removed");
    assert!(rig.audio.engine_stats().is_none());
    let why = rig.audio.device().expect_err("closed");
    assert!(why.contains("no module holds the Audio authority"), "{why}");
    rig.device = None;
    rig.install(audio_wasm());
    let samples = rig.play_gated(8);
    assert!(samples.iter().any(|&s| s != 0.0));
}
