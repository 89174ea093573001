//! A hostile producer: NaNs, huge values, wrong lengths, then nothing at all (a hook that
//! burns its fuel). The device must hear only samples in [-1, 1], silence where nothing
//! came, and every missing frame must be counted.

use interstice_audio::{AudioConfig, SampleFormat, StreamFormat, VirtualDevice};

use crate::support::stereo_f32;

/// What the hostile hook returns for block `index`; `None` is a hook that failed.
fn hostile(index: u64) -> Option<Vec<f32>> {
    let samples = 64 * 2;
    match index % 6 {
        0 => Some(vec![f32::NAN; samples]),
        1 => Some((0..samples).map(|i| (i as f32 - 64.0) * 1e35).collect()),
        2 => Some(vec![f32::INFINITY; samples]),
        3 => Some(vec![0.5; samples + 1]),
        4 => None,
        _ => Some(
            (0..samples)
                .map(|i| if i % 2 == 0 { f32::MAX } else { f32::MIN })
                .collect(),
        ),
    }
}

/// Plays the hostile hook for 60 periods, then nothing. Every hostile block sanitises to
/// silence or full scale, so the device may see only `[min, silence, max]` of its format.
fn run<T>(format: SampleFormat, [min, silence, max]: [T; 3])
where
    T: interstice_audio::DeviceSample + Default + PartialEq + std::fmt::Debug,
{
    let output = StreamFormat {
        sample_format: format,
        ..stereo_f32()
    };
    let config = AudioConfig::default().block_frames(64).target_blocks(2);
    let (mut dev, mut io) = VirtualDevice::new(output, None, 64, &config).expect("a device");
    let mut out = vec![T::default(); 64 * 2];
    let mut silent_periods = 0;
    for tick in 0..120u64 {
        // The hook answers for 60 periods, then stops producing for good.
        if tick < 60 {
            while let Some(request) = io.output.wants_block() {
                match hostile(request.index) {
                    Some(block) => {
                        let _ = io.output.push_block(&block);
                    }
                    None => {
                        io.output.push_silence().expect("a wanted block");
                    }
                }
            }
        }
        dev.render(&mut out);
        assert!(
            out.iter().all(|&s| s == min || s == silence || s == max),
            "tick {tick}: {out:?}"
        );
        if tick >= 61 {
            // Both blocks ahead have been played: nothing but silence from here on.
            assert!(out.iter().all(|&s| s == silence), "tick {tick}: {out:?}");
            silent_periods += 1;
        }
    }
    let stats = io.stats.snapshot().output;
    // Blocks 0..=60 were produced (two ahead, then one per period) and played in periods
    // 0..=60; the 59 periods after that found nothing.
    assert_eq!(silent_periods, 59);
    assert_eq!(stats.underruns, 59);
    assert_eq!(stats.underrun_frames, 59 * 64);
    assert_eq!(stats.played_frames, 61 * 64);
    assert_eq!(stats.blocks_pushed + stats.blocks_silenced, 61);
    // Blocks 3, 9, 15, … (wrong length) and 4, 10, … (failed hook) became silence.
    assert_eq!(stats.blocks_silenced, 20);
    assert!(stats.samples_fixed > 0);
}

#[test]
fn hostile_blocks_never_reach_the_device_outside_full_scale_f32() {
    run::<f32>(SampleFormat::F32, [-1.0, 0.0, 1.0]);
}

#[test]
fn hostile_blocks_never_wrap_an_integer_device() {
    run::<i16>(SampleFormat::I16, [i16::MIN, 0, i16::MAX]);
    run::<u8>(SampleFormat::U8, [0, 128, u8::MAX]);
    run::<u32>(SampleFormat::U32, [0, 1 << 31, u32::MAX]);
}

#[test]
fn hostile_blocks_are_played_as_silence_or_full_scale_exactly() {
    let config = AudioConfig::default().block_frames(64).target_blocks(6);
    let (mut dev, mut io) = VirtualDevice::new(stereo_f32(), None, 64, &config).expect("a device");
    while let Some(request) = io.output.wants_block() {
        match hostile(request.index) {
            Some(block) => {
                let _ = io.output.push_block(&block);
            }
            None => {
                io.output.push_silence().expect("a wanted block");
            }
        }
    }
    let periods: Vec<Vec<f32>> = (0..6).map(|_| dev.tick().to_vec()).collect();
    assert!(periods[0].iter().all(|&s| s == 0.0), "NaN became silence");
    assert!(
        periods[1][..128]
            .iter()
            .all(|&s| s == -1.0 || s == 0.0 || s == 1.0)
    );
    assert_eq!(periods[1][0], -1.0);
    assert_eq!(periods[1][127], 1.0);
    assert!(
        periods[2].iter().all(|&s| s == 0.0),
        "infinity became silence"
    );
    assert!(
        periods[3].iter().all(|&s| s == 0.0),
        "a wrong length became silence"
    );
    assert!(
        periods[4].iter().all(|&s| s == 0.0),
        "a failed hook became silence"
    );
    assert!(
        periods[5].chunks(2).all(|f| f == [1.0, -1.0]),
        "extremes were clamped"
    );
}
