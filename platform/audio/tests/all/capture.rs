//! Capture on the virtual device: buffers in order, overruns counted, formats converted.

use interstice_audio::{AudioConfig, SampleFormat, StreamFormat, VirtualDevice};

use crate::support::{RATE, stereo_f32};

fn capture_device(
    input: SampleFormat,
    block: u32,
    blocks: u32,
) -> (VirtualDevice, interstice_audio::AudioIo) {
    let input = StreamFormat {
        sample_format: input,
        ..stereo_f32()
    };
    let config = AudioConfig::default()
        .block_frames(block)
        .capture_blocks(blocks);
    VirtualDevice::new(stereo_f32(), Some(input), 64, &config).expect("a device")
}

#[test]
fn captured_samples_come_out_as_whole_buffers_in_order() {
    let (mut dev, mut io) = capture_device(SampleFormat::F32, 100, 4);
    let reader = io.input.as_mut().expect("capture is open");
    // A ramp fed in uneven callback sizes.
    let ramp: Vec<f32> = (0..350 * 2).map(|i| i as f32 / 1000.0).collect();
    let mut at = 0;
    for frames in [7usize, 93, 1, 149, 100] {
        assert_eq!(dev.capture(&ramp[at..at + frames * 2]), Some(frames));
        at += frames * 2;
    }
    let mut buffers = Vec::new();
    while let Some(buffer) = reader.take_buffer() {
        buffers.push(buffer);
    }
    assert_eq!(buffers.len(), 3, "350 frames make 3 whole buffers of 100");
    for (i, b) in buffers.iter().enumerate() {
        assert_eq!(
            (b.index, b.first_frame, b.frames),
            (i as u64, i as u64 * 100, 100)
        );
        assert_eq!((b.channels, b.sample_rate, b.dropped_frames), (2, RATE, 0));
        assert_eq!(b.samples, ramp[i * 200..(i + 1) * 200]);
    }
    let stats = io.stats.snapshot().capture.expect("capture stats");
    assert_eq!((stats.captured_frames, stats.ring_fill_frames), (350, 50));
    assert_eq!((stats.buffers_taken, stats.overruns), (3, 0));
}

#[test]
fn a_full_ring_drops_new_frames_and_counts_an_overrun() {
    let (mut dev, mut io) = capture_device(SampleFormat::F32, 10, 2);
    let first: Vec<f32> = vec![0.1; 15 * 2];
    let second: Vec<f32> = vec![0.2; 10 * 2];
    assert_eq!(dev.capture(&first), Some(15));
    assert_eq!(dev.capture(&second), Some(5), "room for 5 of 10 frames");
    let stats = io.stats.snapshot().capture.expect("capture stats");
    assert_eq!((stats.overruns, stats.overrun_frames), (1, 5));
    let reader = io.input.as_mut().expect("capture is open");
    let a = reader.take_buffer().expect("buffer 0");
    let b = reader.take_buffer().expect("buffer 1");
    assert_eq!(
        a.dropped_frames, 5,
        "the drop is reported with the next buffer taken"
    );
    assert_eq!(b.dropped_frames, 0);
    assert_eq!(b.samples[..10], [0.1; 10]);
    assert_eq!(b.samples[10..], [0.2; 10]);
    assert!(reader.take_buffer().is_none());
}

#[test]
fn integer_captures_are_converted_and_float_garbage_is_cleaned() {
    let (mut dev, mut io) = capture_device(SampleFormat::I16, 2, 2);
    dev.capture(&[i16::MIN, 0, 16_384, i16::MAX]);
    let buffer = io
        .input
        .as_mut()
        .and_then(|r| r.take_buffer())
        .expect("a buffer");
    assert_eq!(buffer.samples, [-1.0, 0.0, 0.5, 32_767.0 / 32_768.0]);

    let (mut dev, mut io) = capture_device(SampleFormat::F32, 2, 2);
    dev.capture(&[f32::NAN, f32::NEG_INFINITY, 3.0, -0.25]);
    let buffer = io
        .input
        .as_mut()
        .and_then(|r| r.take_buffer())
        .expect("a buffer");
    assert_eq!(buffer.samples, [0.0, 0.0, 1.0, -0.25]);
}

#[test]
fn a_device_without_input_still_plays() {
    let config = AudioConfig::default().block_frames(8).target_blocks(1);
    let (mut dev, mut io) = VirtualDevice::new(stereo_f32(), None, 8, &config).expect("a device");
    assert!(io.input.is_none());
    assert_eq!(dev.capture(&[0.0f32; 4]), None);
    io.output.push_block(&[0.5; 16]).expect("a wanted block");
    assert_eq!(dev.tick(), &[0.5; 16]);
    assert!(io.stats.snapshot().capture.is_none());
}
