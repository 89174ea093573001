//! Capture: the input callback copies into a ring; the audio lane takes whole buffers.
//!
//! **Architecture Invariant:** [`CaptureCallback::record`] obeys the same real-time rule as
//! the output callback. When the ring is full it drops the newest frames (an SPSC producer
//! cannot discard the oldest) and counts an overrun. Buffers leave through
//! [`CaptureReader::take_buffer`] in capture order; in the node each becomes the argument of
//! an `audio_input` invocation, recorded in the log, so replay needs no device.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crate::config::StreamFormat;
use crate::sample::DeviceSample;
use crate::stats::CaptureShared;

/// The producer end of the capture ring, owned by the device's input callback.
pub struct CaptureCallback {
    pub(crate) ring: rtrb::Producer<f32>,
    pub(crate) channels: usize,
    pub(crate) shared: Arc<CaptureShared>,
}

impl CaptureCallback {
    /// Copies the whole frames of `input` that fit into the ring, converting to `f32`, and
    /// counts the rest as an overrun. Returns the frames kept. Wait-free.
    pub fn record<T: DeviceSample>(&mut self, input: &[T]) -> usize {
        let channels = self.channels;
        let whole = input.len() - input.len() % channels;
        let free = self.ring.slots();
        let keep = whole.min(free - free % channels);
        if keep > 0
            && let Ok(chunk) = self.ring.write_chunk_uninit(keep)
        {
            chunk.fill_from_iter(input[..keep].iter().map(|s| s.to_f32()));
        }
        let counters = &self.shared.record;
        counters.callbacks.fetch_add(1, Relaxed);
        counters
            .captured_frames
            .fetch_add((keep / channels) as u64, Relaxed);
        if keep < whole {
            counters.overruns.fetch_add(1, Relaxed);
            counters
                .overrun_frames
                .fetch_add(((whole - keep) / channels) as u64, Relaxed);
        }
        keep / channels
    }
}

/// One complete capture buffer: the argument of an `audio_input` invocation.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptureBuffer {
    /// The buffer's number, from 0.
    pub index: u64,
    /// Its first frame among the frames captured (dropped frames are not counted).
    pub first_frame: u64,
    /// Frames in the buffer.
    pub frames: u32,
    /// Interleaved channels per frame.
    pub channels: u16,
    /// Frames per second.
    pub sample_rate: u32,
    /// Frames the device dropped (overruns) since the previous buffer was taken. The drop
    /// happened somewhere in between; the engine does not know exactly where.
    pub dropped_frames: u64,
    /// `frames × channels` samples, interleaved, in [-1, 1] (NaN and infinities from a float
    /// device become 0.0).
    pub samples: Vec<f32>,
}

/// The consumer end of the capture ring. `Send`, not `Sync`: the audio lane owns it.
pub struct CaptureReader {
    pub(crate) ring: rtrb::Consumer<f32>,
    pub(crate) shared: Arc<CaptureShared>,
    pub(crate) next_index: u64,
    pub(crate) dropped_seen: u64,
}

impl CaptureReader {
    /// The next complete buffer, or `None` until the device has captured one.
    pub fn take_buffer(&mut self) -> Option<CaptureBuffer> {
        let frames = self.shared.buffer_frames;
        let n = self.shared.format.samples(frames);
        let chunk = self.ring.read_chunk(n).ok()?;
        let (first, second) = chunk.as_slices();
        let mut samples = Vec::with_capacity(n);
        samples.extend(first.iter().chain(second).map(|&x| clean(x)));
        chunk.commit_all();
        let dropped = self.shared.record.overrun_frames.load(Relaxed);
        let index = self.next_index;
        self.next_index += 1;
        let buffer = CaptureBuffer {
            index,
            first_frame: index * u64::from(frames),
            frames,
            channels: self.shared.format.channels,
            sample_rate: self.shared.format.sample_rate,
            dropped_frames: dropped - self.dropped_seen,
            samples,
        };
        self.dropped_seen = dropped;
        let counters = &self.shared.reader;
        counters.taken_frames.fetch_add(u64::from(frames), Relaxed);
        counters.buffers.fetch_add(1, Relaxed);
        Some(buffer)
    }

    /// The capture stream's format.
    pub fn format(&self) -> StreamFormat {
        self.shared.format
    }
}

fn clean(x: f32) -> f32 {
    if x.is_finite() {
        x.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}
