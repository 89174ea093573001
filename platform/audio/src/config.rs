//! The engine's settings and the stream format a device negotiated.

use crate::error::AudioError;
use crate::sample::SampleFormat;

/// The largest block the engine accepts: about 340 ms at 48 kHz.
pub const MAX_BLOCK_FRAMES: u32 = 16_384;
/// The most blocks the output ring may hold ahead of the device.
pub const MAX_TARGET_BLOCKS: u32 = 64;
/// The most channels a stream may have.
pub const MAX_CHANNELS: u16 = 64;

/// What the engine asks of a device and how far ahead the producer works.
///
/// A builder: every setter states its default; [`AudioConfig::validate`] (called by every
/// constructor that takes a config) refuses values the engine cannot honour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioConfig {
    pub(crate) block_frames: u32,
    pub(crate) target_blocks: u32,
    pub(crate) capture: bool,
    pub(crate) capture_blocks: u32,
    pub(crate) fixed_device_buffer: bool,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            block_frames: 512,
            target_blocks: 3,
            capture: true,
            capture_blocks: 8,
            fixed_device_buffer: true,
        }
    }
}

impl AudioConfig {
    /// Frames in one `audio_output` block, and in one `audio_input` buffer.
    /// By default, 512 (10.7 ms at 48 kHz).
    pub fn block_frames(mut self, frames: u32) -> Self {
        self.block_frames = frames;
        self
    }

    /// How many blocks the output ring holds ahead of the device: the latency the producer
    /// works against. More blocks survive a slower producer; fewer blocks hear changes sooner.
    /// By default, 3.
    pub fn target_blocks(mut self, blocks: u32) -> Self {
        self.target_blocks = blocks;
        self
    }

    /// Whether to open the default input device too. A machine without one still plays.
    /// By default, true.
    pub fn capture(mut self, capture: bool) -> Self {
        self.capture = capture;
        self
    }

    /// How many capture buffers the capture ring holds before the device's samples are
    /// dropped (counted as overruns). By default, 8.
    pub fn capture_blocks(mut self, blocks: u32) -> Self {
        self.capture_blocks = blocks;
        self
    }

    /// Whether to ask the device for a period of exactly `block_frames` (when its supported
    /// range allows it) rather than its own default. By default, true.
    pub fn fixed_device_buffer(mut self, fixed: bool) -> Self {
        self.fixed_device_buffer = fixed;
        self
    }

    /// The block size, in frames.
    pub fn get_block_frames(&self) -> u32 {
        self.block_frames
    }

    /// The output ring's size, in blocks.
    pub fn get_target_blocks(&self) -> u32 {
        self.target_blocks
    }

    /// Checks every setting against the engine's limits.
    pub fn validate(&self) -> Result<(), AudioError> {
        let bad = |setting: &'static str, value: u32, max: u32| {
            if value == 0 || value > max {
                Err(AudioError::InvalidConfig {
                    setting,
                    value,
                    max,
                })
            } else {
                Ok(())
            }
        };
        bad("block_frames", self.block_frames, MAX_BLOCK_FRAMES)?;
        bad("target_blocks", self.target_blocks, MAX_TARGET_BLOCKS)?;
        bad("capture_blocks", self.capture_blocks, MAX_TARGET_BLOCKS)
    }
}

/// A stream's negotiated format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamFormat {
    /// Frames per second.
    pub sample_rate: u32,
    /// Interleaved channels per frame.
    pub channels: u16,
    /// What the device reads or writes; the ring is always `f32`.
    pub sample_format: SampleFormat,
}

impl StreamFormat {
    /// Checks that the format can carry audio through the engine.
    pub fn validate(&self) -> Result<(), AudioError> {
        if self.sample_rate == 0 || self.channels == 0 || self.channels > MAX_CHANNELS {
            return Err(AudioError::UnsupportedFormat {
                format: *self,
                reason: "the sample rate and the channel count must be non-zero, and at most 64 channels",
            });
        }
        Ok(())
    }

    /// Samples in `frames` frames.
    pub(crate) fn samples(&self, frames: u32) -> usize {
        frames as usize * usize::from(self.channels)
    }

    /// Milliseconds that `frames` frames last.
    pub fn millis(&self, frames: u64) -> f64 {
        frames as f64 * 1000.0 / f64::from(self.sample_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_or_oversized_settings_are_refused_with_the_setting_named() {
        assert!(AudioConfig::default().validate().is_ok());
        let err = AudioConfig::default()
            .block_frames(0)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("block_frames"), "{err}");
        let err = AudioConfig::default()
            .target_blocks(MAX_TARGET_BLOCKS + 1)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("target_blocks"), "{err}");
        let err = AudioConfig::default()
            .capture_blocks(0)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("capture_blocks"), "{err}");
    }
}
