//! A device without a sound card: the same rings and callbacks, driven by a test clock.
//!
//! Each [`VirtualDevice::tick`] is one device period: the output callback renders
//! `period_frames` frames exactly as a real device's callback would. Whoever calls `tick`
//! is the clock, so underruns, block accounting and determinism can be tested with no
//! ALSA and no timing.

use std::sync::atomic::Ordering::Relaxed;

use crate::capture::CaptureCallback;
use crate::config::{AudioConfig, StreamFormat};
use crate::error::AudioError;
use crate::output::OutputCallback;
use crate::ring::{AudioIo, capture_ring, output_ring};
use crate::sample::DeviceSample;

/// An in-process device driven by its caller.
pub struct VirtualDevice {
    output: OutputCallback,
    capture: Option<CaptureCallback>,
    period_frames: u32,
    period: Vec<f32>,
    clock_frames: u64,
}

impl VirtualDevice {
    /// A device that plays `output` in periods of `period_frames` frames and, when `input`
    /// is given, captures in that format.
    pub fn new(
        output: StreamFormat,
        input: Option<StreamFormat>,
        period_frames: u32,
        config: &AudioConfig,
    ) -> Result<(VirtualDevice, AudioIo), AudioError> {
        if period_frames == 0 || period_frames > crate::config::MAX_BLOCK_FRAMES {
            return Err(AudioError::InvalidConfig {
                setting: "period_frames",
                value: period_frames,
                max: crate::config::MAX_BLOCK_FRAMES,
            });
        }
        let (producer, callback) = output_ring(output, config)?;
        let (capture, reader) = match input {
            Some(format) => {
                let (callback, reader) = capture_ring(format, config)?;
                (Some(callback), Some(reader))
            }
            None => (None, None),
        };
        callback
            .shared
            .device
            .buffer_frames
            .store(period_frames, Relaxed);
        if let Some(capture) = &capture {
            capture
                .shared
                .device
                .buffer_frames
                .store(period_frames, Relaxed);
        }
        let device = VirtualDevice {
            output: callback,
            capture,
            period_frames,
            period: vec![0.0; output.samples(period_frames)],
            clock_frames: 0,
        };
        Ok((device, AudioIo::new(producer, reader)))
    }

    /// One device period: renders `period_frames` frames and returns them (f32,
    /// interleaved). Silence fills whatever the ring lacked.
    pub fn tick(&mut self) -> &[f32] {
        self.output.render(&mut self.period);
        self.clock_frames += u64::from(self.period_frames);
        &self.period
    }

    /// Renders into `out` in any device format and length (whole frames), advancing the
    /// clock by the frames asked for; returns the frames that came from the ring.
    pub fn render<T: DeviceSample>(&mut self, out: &mut [T]) -> usize {
        let played = self.output.render(out);
        self.clock_frames += (out.len() / self.output.channels()) as u64;
        played
    }

    /// Feeds captured samples (interleaved, any device format) to the input callback;
    /// returns the frames kept, or `None` when the device has no input.
    pub fn capture<T: DeviceSample>(&mut self, input: &[T]) -> Option<usize> {
        self.capture.as_mut().map(|c| c.record(input))
    }

    /// Frames the device has played, silence included: its clock.
    pub fn clock_frames(&self) -> u64 {
        self.clock_frames
    }

    /// Frames per period.
    pub fn period_frames(&self) -> u32 {
        self.period_frames
    }
}
