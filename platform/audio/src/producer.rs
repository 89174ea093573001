//! The producer end of the output ring: block scheduling and sanitising, on the audio lane.
//!
//! The lane asks [`OutputProducer::wants_block`]; while it answers a [`BlockRequest`], the
//! lane runs the module's `audio_output` hook for that block and hands the samples to
//! [`OutputProducer::push_block`]. Block `n` always covers frames `n × block_frames ..`
//! of the stream the producer writes: a failed hook or a malformed block becomes a block of
//! silence ([`OutputProducer::push_silence`]), never a hole that shifts later blocks.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::config::StreamFormat;
use crate::error::BlockError;
use crate::stats::OutputShared;

/// One block the ring has room for: the arguments of an `audio_output` invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockRequest {
    /// The block's number, from 0.
    pub index: u64,
    /// The block's first frame in the produced stream (`index × frames`).
    pub first_frame: u64,
    /// Frames in the block.
    pub frames: u32,
    /// Interleaved channels per frame.
    pub channels: u16,
    /// Frames per second.
    pub sample_rate: u32,
}

impl BlockRequest {
    /// Samples the block must hold: `frames × channels`.
    pub fn samples(&self) -> usize {
        self.frames as usize * usize::from(self.channels)
    }

    /// The block's logical time: nanoseconds of produced audio before its first frame. A
    /// pure function of the block index, so replay and parallel runs agree.
    pub fn time_ns(&self) -> u64 {
        let ns = u128::from(self.first_frame) * 1_000_000_000 / u128::from(self.sample_rate);
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

/// What sanitising changed in a pushed block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockReport {
    /// The block's number.
    pub index: u64,
    /// NaN or infinite samples, replaced by 0.0.
    pub non_finite: u32,
    /// Finite samples outside [-1, 1], clamped.
    pub clamped: u32,
}

/// The producer end of the output ring. `Send`, not `Sync`: one thread (the audio lane)
/// owns it.
pub struct OutputProducer {
    pub(crate) ring: rtrb::Producer<f32>,
    pub(crate) shared: Arc<OutputShared>,
    pub(crate) next_index: u64,
}

impl OutputProducer {
    /// The block the ring has room for now, or `None` when it holds its target.
    pub fn wants_block(&self) -> Option<BlockRequest> {
        if self.ring.slots() < self.block_samples() {
            return None;
        }
        let frames = self.shared.block_frames;
        Some(BlockRequest {
            index: self.next_index,
            first_frame: self.next_index * u64::from(frames),
            frames,
            channels: self.shared.format.channels,
            sample_rate: self.shared.format.sample_rate,
        })
    }

    /// How long until the device will have played enough for another block to be wanted:
    /// how long the lane may sleep. Zero when a block is wanted now.
    pub fn time_until_wanted(&self) -> Duration {
        self.time_until_room(1)
    }

    /// Whole blocks the ring has room for now.
    pub fn room_blocks(&self) -> usize {
        self.ring.slots() / self.block_samples()
    }

    /// How long until the ring has room for `blocks` whole blocks, if nothing is pushed
    /// meanwhile: for a producer with blocks in flight, `in_flight + 1`. Zero when it has
    /// room now.
    pub fn time_until_room(&self, blocks: usize) -> Duration {
        let free = self.ring.slots();
        let missing = (self.block_samples() * blocks).saturating_sub(free);
        let frames = missing.div_ceil(usize::from(self.shared.format.channels));
        let rate = u64::from(self.shared.format.sample_rate);
        Duration::from_nanos(frames as u64 * 1_000_000_000 / rate)
    }

    /// The index of the block the next push fills.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Sanitises the block that [`wants_block`](Self::wants_block) asked for and pushes it.
    ///
    /// NaN and infinities become 0.0 and finite values outside [-1, 1] are clamped (both
    /// counted in the report and in `samples_fixed`). A block whose length is not exactly
    /// `frames × channels` is refused with [`BlockError::WrongLength`] and a block of silence
    /// takes its place, so the next request is for the next block either way.
    pub fn push_block(&mut self, samples: &[f32]) -> Result<BlockReport, BlockError> {
        let index = self.claim()?;
        let expected = self.block_samples();
        if samples.len() != expected {
            self.write(std::iter::repeat_n(0.0, expected));
            self.shared.producer.blocks_silenced.fetch_add(1, Relaxed);
            return Err(BlockError::WrongLength {
                index,
                got: samples.len(),
                expected,
                frames: self.shared.block_frames,
                channels: self.shared.format.channels,
            });
        }
        let mut report = BlockReport {
            index,
            ..BlockReport::default()
        };
        self.write(samples.iter().map(|&x| sanitise(x, &mut report)));
        let fixed = u64::from(report.non_finite) + u64::from(report.clamped);
        let counters = &self.shared.producer;
        counters.blocks_pushed.fetch_add(1, Relaxed);
        counters.samples_fixed.fetch_add(fixed, Relaxed);
        Ok(report)
    }

    /// Pushes a block of silence in place of the wanted block: for a hook that failed (trap,
    /// fuel spent, error), so the stream keeps its timeline. Returns the block's index.
    pub fn push_silence(&mut self) -> Result<u64, BlockError> {
        let index = self.claim()?;
        self.write(std::iter::repeat_n(0.0, self.block_samples()));
        self.shared.producer.blocks_silenced.fetch_add(1, Relaxed);
        Ok(index)
    }

    /// The stream format the producer writes.
    pub fn format(&self) -> StreamFormat {
        self.shared.format
    }

    /// Frames per block.
    pub fn block_frames(&self) -> u32 {
        self.shared.block_frames
    }

    /// Frames pushed and not yet played.
    pub fn fill_frames(&self) -> u64 {
        self.shared.fill_frames()
    }

    fn block_samples(&self) -> usize {
        self.shared.format.samples(self.shared.block_frames)
    }

    fn claim(&mut self) -> Result<u64, BlockError> {
        if self.ring.slots() < self.block_samples() {
            return Err(BlockError::NotWanted);
        }
        let index = self.next_index;
        self.next_index += 1;
        Ok(index)
    }

    /// Writes one block; the caller checked there is room.
    fn write(&mut self, samples: impl Iterator<Item = f32>) {
        let n = self.block_samples();
        if let Ok(chunk) = self.ring.write_chunk_uninit(n) {
            chunk.fill_from_iter(samples);
            self.shared
                .producer
                .written_frames
                .fetch_add(u64::from(self.shared.block_frames), Relaxed);
        }
    }
}

/// NaN and infinities become silence (an infinity is a broken generator, not a loud
/// sound); finite values are clamped to [-1, 1].
#[inline]
fn sanitise(x: f32, report: &mut BlockReport) -> f32 {
    if !x.is_finite() {
        report.non_finite += 1;
        0.0
    } else if x.abs() > 1.0 {
        report.clamped += 1;
        x.clamp(-1.0, 1.0)
    } else {
        x
    }
}
