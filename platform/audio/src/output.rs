//! The output callback: the only code that runs on the device's real-time thread.
//!
//! **Architecture Invariant:** [`OutputCallback::render`] never runs wasm, never locks, never
//! allocates, never logs and never waits. It copies what the ring holds (whole frames only),
//! converts to the device's format, fills the rest with silence and counts an underrun.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crate::sample::DeviceSample;
use crate::stats::OutputShared;

/// The consumer end of the output ring, owned by the device's callback.
pub struct OutputCallback {
    pub(crate) ring: rtrb::Consumer<f32>,
    pub(crate) channels: usize,
    pub(crate) shared: Arc<OutputShared>,
}

impl OutputCallback {
    /// Fills `out` (interleaved, in the device's format) from the ring and returns the frames
    /// that came from the ring; the rest is silence. Wait-free: it reads what is there now.
    ///
    /// A trailing partial frame in `out` (never produced by a real device) is silenced too.
    pub fn render<T: DeviceSample>(&mut self, out: &mut [T]) -> usize {
        let channels = self.channels;
        let whole = out.len() - out.len() % channels;
        let available = self.ring.slots();
        let take = whole.min(available - available % channels);
        if take > 0 {
            // `read_chunk` cannot fail for at most `slots()` items; on the impossible failure
            // the callback plays silence rather than panic on the real-time thread.
            if let Ok(chunk) = self.ring.read_chunk(take) {
                let (first, second) = chunk.as_slices();
                let (out_first, out_second) = out[..take].split_at_mut(first.len());
                convert(first, out_first);
                convert(second, out_second);
                chunk.commit_all();
            } else {
                return self.finish(out, 0, whole);
            }
        }
        self.finish(out, take, whole)
    }

    fn finish<T: DeviceSample>(&mut self, out: &mut [T], take: usize, whole: usize) -> usize {
        out[take..].fill(T::SILENCE);
        let played = (take / self.channels) as u64;
        let counters = &self.shared.playback;
        counters.callbacks.fetch_add(1, Relaxed);
        counters.played_frames.fetch_add(played, Relaxed);
        counters
            .last_callback_frames
            .store((whole / self.channels) as u32, Relaxed);
        if take < whole {
            counters.underruns.fetch_add(1, Relaxed);
            counters
                .underrun_frames
                .fetch_add(((whole - take) / self.channels) as u64, Relaxed);
        }
        played as usize
    }

    /// Channels per frame.
    pub fn channels(&self) -> usize {
        self.channels
    }
}

#[inline]
fn convert<T: DeviceSample>(from: &[f32], to: &mut [T]) {
    for (o, s) in to.iter_mut().zip(from) {
        *o = T::from_f32(*s);
    }
}
