//! A tone generator, a frequency meter and a virtual-device set-up shared by the tests.

use std::f64::consts::TAU;

use interstice_audio::{AudioConfig, AudioIo, SampleFormat, StreamFormat, VirtualDevice};

pub const RATE: u32 = 48_000;

pub fn stereo_f32() -> StreamFormat {
    StreamFormat {
        sample_rate: RATE,
        channels: 2,
        sample_format: SampleFormat::F32,
    }
}

/// A virtual stereo device at 48 kHz with blocks of `block` frames, `target` blocks ahead and
/// device periods of `period` frames.
pub fn device(block: u32, target: u32, period: u32) -> (VirtualDevice, AudioIo) {
    let config = AudioConfig::default()
        .block_frames(block)
        .target_blocks(target);
    VirtualDevice::new(stereo_f32(), None, period, &config).expect("a valid virtual device")
}

/// A sine at half amplitude, the same on every channel, with a continuous phase.
pub struct Tone {
    pub freq: f64,
    phase: f64,
}

impl Tone {
    pub fn new(freq: f64) -> Self {
        Tone { freq, phase: 0.0 }
    }

    pub fn block(&mut self, frames: u32, channels: u16, rate: u32) -> Vec<f32> {
        let mut out = Vec::with_capacity(frames as usize * usize::from(channels));
        for _ in 0..frames {
            let s = (0.5 * self.phase.sin()) as f32;
            out.extend(std::iter::repeat_n(s, usize::from(channels)));
            self.phase = (self.phase + TAU * self.freq / f64::from(rate)) % TAU;
        }
        out
    }
}

/// Frequency of channel 0 of `samples` (interleaved), from rising zero crossings with linear
/// interpolation between the samples around each.
pub fn frequency(samples: &[f32], channels: usize, rate: u32) -> f64 {
    let mono: Vec<f64> = samples
        .chunks_exact(channels)
        .map(|f| f64::from(f[0]))
        .collect();
    let mut crossings = Vec::new();
    for i in 1..mono.len() {
        let (a, b) = (mono[i - 1], mono[i]);
        if a < 0.0 && b >= 0.0 {
            crossings.push((i - 1) as f64 + (-a) / (b - a));
        }
    }
    assert!(crossings.len() >= 3, "too few zero crossings to measure");
    let span = crossings[crossings.len() - 1] - crossings[0];
    (crossings.len() - 1) as f64 * f64::from(rate) / span
}

/// Fills the ring while it wants blocks; returns how many were pushed.
pub fn fill(io: &mut AudioIo, mut block: impl FnMut(u64) -> Vec<f32>) -> usize {
    let mut pushed = 0;
    while let Some(request) = io.output.wants_block() {
        io.output
            .push_block(&block(request.index))
            .expect("a block of the right length");
        pushed += 1;
    }
    pushed
}
