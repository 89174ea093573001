//! Counters shared by the callbacks, the producer and whoever reads them: atomics only.
//!
//! Each side writes only its own counters (the callback its own, the producer its own), on
//! separate cache lines, so neither slows the other. Readers take a [`StatsSnapshot`] from any
//! thread without locking; counters are read one by one, so a snapshot taken while the
//! stream runs may mix instants a few microseconds apart.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::config::StreamFormat;

/// Keeps a group of counters on its own cache lines.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Padded<T>(pub T);

impl<T> Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Written by the output callback only.
#[derive(Default)]
pub(crate) struct PlaybackCounters {
    pub callbacks: AtomicU64,
    pub played_frames: AtomicU64,
    pub underruns: AtomicU64,
    pub underrun_frames: AtomicU64,
    pub last_callback_frames: AtomicU32,
}

/// Written by the output producer only.
#[derive(Default)]
pub(crate) struct ProducerCounters {
    pub written_frames: AtomicU64,
    pub blocks_pushed: AtomicU64,
    pub blocks_silenced: AtomicU64,
    pub samples_fixed: AtomicU64,
}

/// Written by the device layer (set-up and its error callback).
#[derive(Default)]
pub(crate) struct DeviceCounters {
    /// 0 while unknown.
    pub buffer_frames: AtomicU32,
    pub errors: AtomicU64,
}

pub(crate) struct OutputShared {
    pub format: StreamFormat,
    pub block_frames: u32,
    pub capacity_frames: u32,
    pub playback: Padded<PlaybackCounters>,
    pub producer: Padded<ProducerCounters>,
    pub device: Padded<DeviceCounters>,
}

impl OutputShared {
    pub fn new(format: StreamFormat, block_frames: u32, capacity_frames: u32) -> Self {
        OutputShared {
            format,
            block_frames,
            capacity_frames,
            playback: Padded::default(),
            producer: Padded::default(),
            device: Padded::default(),
        }
    }

    /// Frames pushed and not yet played. Written frames are read last: they only grow and
    /// never trail played frames, so the difference cannot go negative.
    pub fn fill_frames(&self) -> u64 {
        let played = self.playback.played_frames.load(Relaxed);
        let written = self.producer.written_frames.load(Relaxed);
        written.saturating_sub(played)
    }

    fn snapshot(&self) -> OutputStats {
        let ring_fill_frames = self.fill_frames();
        let device_buffer_frames = match self.device.buffer_frames.load(Relaxed) {
            0 => None,
            n => Some(n),
        };
        let latency_frames = ring_fill_frames + u64::from(device_buffer_frames.unwrap_or(0));
        OutputStats {
            format: self.format,
            block_frames: self.block_frames,
            ring_capacity_frames: self.capacity_frames,
            ring_fill_frames,
            device_buffer_frames,
            output_latency_ms: self.format.millis(latency_frames),
            callbacks: self.playback.callbacks.load(Relaxed),
            last_callback_frames: self.playback.last_callback_frames.load(Relaxed),
            played_frames: self.playback.played_frames.load(Relaxed),
            underruns: self.playback.underruns.load(Relaxed),
            underrun_frames: self.playback.underrun_frames.load(Relaxed),
            blocks_pushed: self.producer.blocks_pushed.load(Relaxed),
            blocks_silenced: self.producer.blocks_silenced.load(Relaxed),
            samples_fixed: self.producer.samples_fixed.load(Relaxed),
            device_errors: self.device.errors.load(Relaxed),
        }
    }
}

/// Written by the capture callback only.
#[derive(Default)]
pub(crate) struct RecordCounters {
    pub callbacks: AtomicU64,
    pub captured_frames: AtomicU64,
    pub overruns: AtomicU64,
    pub overrun_frames: AtomicU64,
}

/// Written by the capture reader only.
#[derive(Default)]
pub(crate) struct ReaderCounters {
    pub taken_frames: AtomicU64,
    pub buffers: AtomicU64,
}

pub(crate) struct CaptureShared {
    pub format: StreamFormat,
    pub buffer_frames: u32,
    pub capacity_frames: u32,
    pub record: Padded<RecordCounters>,
    pub reader: Padded<ReaderCounters>,
    pub device: Padded<DeviceCounters>,
}

impl CaptureShared {
    pub fn new(format: StreamFormat, buffer_frames: u32, capacity_frames: u32) -> Self {
        CaptureShared {
            format,
            buffer_frames,
            capacity_frames,
            record: Padded::default(),
            reader: Padded::default(),
            device: Padded::default(),
        }
    }

    fn snapshot(&self) -> CaptureStats {
        let taken = self.reader.taken_frames.load(Relaxed);
        let captured = self.record.captured_frames.load(Relaxed);
        CaptureStats {
            format: self.format,
            buffer_frames: self.buffer_frames,
            ring_capacity_frames: self.capacity_frames,
            ring_fill_frames: captured.saturating_sub(taken),
            callbacks: self.record.callbacks.load(Relaxed),
            captured_frames: captured,
            overruns: self.record.overruns.load(Relaxed),
            overrun_frames: self.record.overrun_frames.load(Relaxed),
            buffers_taken: self.reader.buffers.load(Relaxed),
            device_errors: self.device.errors.load(Relaxed),
        }
    }
}

/// The output side's figures at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct OutputStats {
    /// The negotiated output format.
    pub format: StreamFormat,
    /// Frames per producer block.
    pub block_frames: u32,
    /// Frames the ring can hold (`target_blocks × block_frames`).
    pub ring_capacity_frames: u32,
    /// Frames pushed and not yet played.
    pub ring_fill_frames: u64,
    /// The device's period, when the device layer knows it.
    pub device_buffer_frames: Option<u32>,
    /// Ring fill plus the device's period, in milliseconds: how long before a block pushed
    /// now is heard (the device's own internal latency is not included).
    pub output_latency_ms: f64,
    /// Callback invocations.
    pub callbacks: u64,
    /// Frames the device asked for in the latest callback.
    pub last_callback_frames: u32,
    /// Frames played from the ring (not counting silence filled in).
    pub played_frames: u64,
    /// Callbacks that found too little in the ring and filled silence.
    pub underruns: u64,
    /// Frames of silence those underruns filled.
    pub underrun_frames: u64,
    /// Blocks accepted from the producer.
    pub blocks_pushed: u64,
    /// Blocks played as silence because the producer failed or sent a malformed block.
    pub blocks_silenced: u64,
    /// Samples that were NaN, infinite or outside [-1, 1] and were replaced or clamped.
    pub samples_fixed: u64,
    /// Errors the device reported through its error callback.
    pub device_errors: u64,
}

/// The capture side's figures at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct CaptureStats {
    /// The negotiated input format.
    pub format: StreamFormat,
    /// Frames per capture buffer.
    pub buffer_frames: u32,
    /// Frames the capture ring can hold.
    pub ring_capacity_frames: u32,
    /// Frames captured and not yet taken.
    pub ring_fill_frames: u64,
    /// Callback invocations.
    pub callbacks: u64,
    /// Frames copied into the ring.
    pub captured_frames: u64,
    /// Callbacks that found the ring full and dropped frames.
    pub overruns: u64,
    /// Frames dropped by those overruns.
    pub overrun_frames: u64,
    /// Buffers handed to the consumer.
    pub buffers_taken: u64,
    /// Errors the device reported through its error callback.
    pub device_errors: u64,
}

/// Everything the engine counts, at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    pub output: OutputStats,
    /// `None` when no capture stream is open.
    pub capture: Option<CaptureStats>,
}

/// A cheap, cloneable, thread-safe handle on the engine's counters.
#[derive(Clone)]
pub struct AudioStats {
    pub(crate) output: Arc<OutputShared>,
    pub(crate) capture: Option<Arc<CaptureShared>>,
}

impl AudioStats {
    /// Reads every counter, lock-free.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            output: self.output.snapshot(),
            capture: self.capture.as_ref().map(|c| c.snapshot()),
        }
    }
}

impl std::fmt::Debug for AudioStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.snapshot().fmt(f)
    }
}
