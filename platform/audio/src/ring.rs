//! Builds the rings and their endpoints: the one place that sizes them.

use std::sync::Arc;

use crate::capture::{CaptureCallback, CaptureReader};
use crate::config::{AudioConfig, StreamFormat};
use crate::error::AudioError;
use crate::output::OutputCallback;
use crate::producer::OutputProducer;
use crate::stats::{AudioStats, CaptureShared, OutputShared};

/// The lane's side of the engine: what the wasm glue holds.
pub struct AudioIo {
    /// Fill the output ring, block by block.
    pub output: OutputProducer,
    /// Take capture buffers; `None` when no capture stream is open.
    pub input: Option<CaptureReader>,
    /// Counters, readable from any thread.
    pub stats: AudioStats,
}

/// The output ring: `target_blocks` blocks of `block_frames` frames.
pub fn output_ring(
    format: StreamFormat,
    config: &AudioConfig,
) -> Result<(OutputProducer, OutputCallback), AudioError> {
    config.validate()?;
    format.validate()?;
    let capacity_frames = config.block_frames * config.target_blocks;
    let shared = Arc::new(OutputShared::new(
        format,
        config.block_frames,
        capacity_frames,
    ));
    let (producer, consumer) = rtrb::RingBuffer::new(format.samples(capacity_frames));
    let producer = OutputProducer {
        ring: producer,
        shared: shared.clone(),
        next_index: 0,
    };
    let callback = OutputCallback {
        ring: consumer,
        channels: usize::from(format.channels),
        shared,
    };
    Ok((producer, callback))
}

/// The capture ring: `capture_blocks` buffers of `block_frames` frames.
pub fn capture_ring(
    format: StreamFormat,
    config: &AudioConfig,
) -> Result<(CaptureCallback, CaptureReader), AudioError> {
    config.validate()?;
    format.validate()?;
    let capacity_frames = config.block_frames * config.capture_blocks;
    let shared = Arc::new(CaptureShared::new(
        format,
        config.block_frames,
        capacity_frames,
    ));
    let (producer, consumer) = rtrb::RingBuffer::new(format.samples(capacity_frames));
    let callback = CaptureCallback {
        ring: producer,
        channels: usize::from(format.channels),
        shared: shared.clone(),
    };
    let reader = CaptureReader {
        ring: consumer,
        shared,
        next_index: 0,
        dropped_seen: 0,
    };
    Ok((callback, reader))
}

impl AudioIo {
    pub(crate) fn new(output: OutputProducer, input: Option<CaptureReader>) -> Self {
        let stats = AudioStats {
            output: output.shared.clone(),
            capture: input.as_ref().map(|r| r.shared.clone()),
        };
        AudioIo {
            output,
            input,
            stats,
        }
    }
}
