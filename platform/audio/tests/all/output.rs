//! The output path on the virtual device: sanitising, block accounting, underruns, formats,
//! tones.

use std::time::Duration;

use interstice_audio::{AudioConfig, BlockError, SampleFormat, StreamFormat, VirtualDevice};

use crate::support::{RATE, Tone, device, fill, frequency, stereo_f32};

#[test]
fn nan_infinities_and_huge_values_become_silence_or_full_scale() {
    let (mut dev, mut io) = device(4, 1, 4);
    let request = io
        .output
        .wants_block()
        .expect("an empty ring wants a block");
    assert_eq!(request.samples(), 8);
    let block = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        1e30,
        -1e30,
        1.0000001,
        -0.5,
        f32::MIN_POSITIVE,
    ];
    let report = io
        .output
        .push_block(&block)
        .expect("a block of the right length");
    assert_eq!((report.index, report.non_finite, report.clamped), (0, 3, 3));
    assert_eq!(
        dev.tick(),
        &[0.0, 0.0, 0.0, 1.0, -1.0, 1.0, -0.5, f32::MIN_POSITIVE]
    );
    let stats = io.stats.snapshot().output;
    assert_eq!(stats.samples_fixed, 6);
    assert_eq!(stats.blocks_pushed, 1);
}

#[test]
fn an_empty_ring_plays_silence_at_once_in_every_format() {
    let (mut dev, io) = device(64, 2, 32);
    assert!(dev.tick().iter().all(|&s| s == 0.0));
    let mut i16_out = [7i16; 64];
    assert_eq!(dev.render(&mut i16_out), 0);
    assert!(i16_out.iter().all(|&s| s == 0));
    let mut u16_out = [7u16; 64];
    assert_eq!(dev.render(&mut u16_out), 0);
    assert!(u16_out.iter().all(|&s| s == 32_768));
    let mut u8_out = [7u8; 64];
    dev.render(&mut u8_out);
    assert!(u8_out.iter().all(|&s| s == 128));
    let stats = io.stats.snapshot().output;
    assert_eq!(stats.callbacks, 4);
    assert_eq!(stats.underruns, 4);
    assert_eq!(stats.underrun_frames, 4 * 32);
    assert_eq!(stats.played_frames, 0);
}

#[test]
fn blocks_are_numbered_timed_and_wanted_only_while_the_ring_has_room() {
    let (mut dev, mut io) = device(480, 3, 480);
    let mut seen = Vec::new();
    while let Some(request) = io.output.wants_block() {
        assert_eq!(
            (request.frames, request.channels, request.sample_rate),
            (480, 2, RATE)
        );
        seen.push((request.index, request.first_frame, request.time_ns()));
        io.output.push_silence().expect("a wanted block");
    }
    assert_eq!(
        seen,
        [(0, 0, 0), (1, 480, 10_000_000), (2, 960, 20_000_000)]
    );
    assert_eq!(
        io.output.push_block(&[0.0; 960]),
        Err(BlockError::NotWanted)
    );
    assert_eq!(io.output.fill_frames(), 1440);
    assert_eq!(io.output.time_until_wanted(), Duration::from_millis(10));
    assert_eq!((io.output.room_blocks(), io.output.next_index()), (0, 3));
    assert_eq!(io.output.time_until_room(3), Duration::from_millis(30));

    dev.tick();
    let request = io
        .output
        .wants_block()
        .expect("one block played, one wanted");
    assert_eq!(request.index, 3);
    assert_eq!(io.output.time_until_wanted(), Duration::ZERO);
    assert_eq!(io.output.room_blocks(), 1);
    assert_eq!(io.output.time_until_room(2), Duration::from_millis(10));

    let stats = io.stats.snapshot().output;
    assert_eq!(stats.ring_fill_frames, 960);
    assert_eq!(stats.ring_capacity_frames, 1440);
    assert_eq!(stats.device_buffer_frames, Some(480));
    assert_eq!(stats.output_latency_ms, 30.0);
    assert_eq!(stats.blocks_silenced, 3);
    assert_eq!((stats.played_frames, stats.underruns), (480, 0));
}

#[test]
fn a_block_of_the_wrong_length_is_refused_and_played_as_silence() {
    let (mut dev, mut io) = device(4, 2, 4);
    let err = io.output.push_block(&[0.5; 7]).unwrap_err();
    assert_eq!(
        err,
        BlockError::WrongLength {
            index: 0,
            got: 7,
            expected: 8,
            frames: 4,
            channels: 2
        }
    );
    assert!(err.to_string().contains("4 frames × 2 channels"), "{err}");
    let next = io
        .output
        .wants_block()
        .expect("the ring has room for block 1");
    assert_eq!(next.index, 1);
    io.output.push_block(&[0.5; 8]).expect("a good block");
    assert_eq!(dev.tick(), &[0.0; 8]);
    assert_eq!(dev.tick(), &[0.5; 8]);
    let stats = io.stats.snapshot().output;
    assert_eq!(
        (stats.blocks_silenced, stats.blocks_pushed, stats.underruns),
        (1, 1, 0)
    );
}

#[test]
fn a_slow_producer_causes_counted_underruns_and_the_stream_resumes() {
    // Blocks and periods of 64 frames; the producer manages one block every third period.
    let (mut dev, mut io) = device(64, 2, 64);
    let mut out = Vec::new();
    for tick in 0..30 {
        if tick % 3 == 0 && io.output.wants_block().is_some() {
            io.output.push_block(&[0.25; 128]).expect("a wanted block");
        }
        out.extend_from_slice(dev.tick());
    }
    let stats = io.stats.snapshot().output;
    assert_eq!(stats.underruns, 20);
    assert_eq!(stats.underrun_frames, 20 * 64);
    assert_eq!(stats.played_frames, 10 * 64);
    assert_eq!(stats.callbacks, 30);
    // Each produced block is heard whole, then silence until the next one.
    for (tick, period) in out.chunks(128).enumerate() {
        let expected = if tick % 3 == 0 { 0.25 } else { 0.0 };
        assert!(period.iter().all(|&s| s == expected), "period {tick}");
    }
}

#[test]
fn periods_that_do_not_match_blocks_still_play_every_frame_in_order() {
    // Blocks of 256 frames, device periods of 100: a ramp must come out unbroken.
    let (mut dev, mut io) = device(256, 3, 100);
    let mut next = 0u32;
    let mut ramp = |frames: u32| -> Vec<f32> {
        let mut v = Vec::new();
        for _ in 0..frames {
            let x = (next % 1000) as f32 / 1000.0;
            v.extend([x, -x]);
            next += 1;
        }
        v
    };
    let mut out = Vec::new();
    for _ in 0..100 {
        while io.output.wants_block().is_some() {
            io.output.push_block(&ramp(256)).expect("a wanted block");
        }
        out.extend_from_slice(dev.tick());
    }
    for (i, frame) in out.chunks(2).enumerate() {
        let x = (i as u32 % 1000) as f32 / 1000.0;
        assert_eq!(frame, [x, -x], "frame {i}");
    }
    assert_eq!(io.stats.snapshot().output.underruns, 0);
    assert_eq!(dev.clock_frames(), 100 * 100);
}

#[test]
fn a_440_hz_tone_comes_out_at_440_hz_and_a_change_is_heard_at_its_block() {
    let (mut dev, mut io) = device(512, 3, 480);
    let mut tone = Tone::new(440.0);
    let switch_block = 94; // about one second in
    let mut out = Vec::new();
    while out.len() < 2 * 2 * RATE as usize {
        fill(&mut io, |index| {
            if index == switch_block {
                tone.freq = 660.0;
            }
            tone.block(512, 2, RATE)
        });
        out.extend_from_slice(dev.tick());
    }
    let switch = switch_block as usize * 512 * 2;
    let before = frequency(&out[..switch], 2, RATE);
    let after = frequency(&out[switch..], 2, RATE);
    assert!((before - 440.0).abs() < 0.5, "measured {before} Hz");
    assert!((after - 660.0).abs() < 0.5, "measured {after} Hz");
    assert_eq!(io.stats.snapshot().output.underruns, 0);
}

#[test]
fn the_same_schedule_gives_the_same_bytes() {
    let run = || {
        let (mut dev, mut io) = device(128, 2, 96);
        let mut tone = Tone::new(1000.0);
        let mut out = Vec::new();
        for tick in 0..200u32 {
            // An irregular producer: it skips some periods, so underruns happen too.
            if tick % 7 != 3 {
                fill(&mut io, |_| tone.block(128, 2, RATE));
            }
            out.extend(dev.tick().iter().map(|s| s.to_bits()));
        }
        (out, io.stats.snapshot().output.underrun_frames)
    };
    let (a, underruns_a) = run();
    let (b, underruns_b) = run();
    assert_eq!(a, b);
    assert_eq!(underruns_a, underruns_b);
}

#[test]
fn sixteen_bit_devices_get_converted_samples() {
    let format = StreamFormat {
        sample_format: SampleFormat::I16,
        ..stereo_f32()
    };
    let config = AudioConfig::default().block_frames(2).target_blocks(1);
    let (mut dev, mut io) = VirtualDevice::new(format, None, 2, &config).expect("a device");
    io.output
        .push_block(&[1.0, -1.0, 0.5, f32::NAN])
        .expect("a wanted block");
    let mut out = [0i16; 4];
    assert_eq!(dev.render(&mut out), 2);
    assert_eq!(out, [i16::MAX, i16::MIN, 16_384, 0]);
}

#[test]
fn invalid_settings_are_refused_before_anything_is_built() {
    let config = AudioConfig::default().block_frames(0);
    let err = VirtualDevice::new(stereo_f32(), None, 64, &config)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("block_frames"), "{err}");
    let format = StreamFormat {
        channels: 0,
        ..stereo_f32()
    };
    let err = VirtualDevice::new(format, None, 64, &AudioConfig::default())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("channel"), "{err}");
    let err = VirtualDevice::new(stereo_f32(), None, 0, &AudioConfig::default())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("period_frames"), "{err}");
}
