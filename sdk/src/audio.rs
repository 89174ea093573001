//! Sound, for the module holding the `Audio` authority
//! (`interstice_module!(authorities: [Audio])`).
//!
//! The node asks for sound a block at a time, ahead of the device: each block runs the
//! module's one `audio_output` hook, which writes the block's samples with
//! [`Audio::write`]. The hook is read-only (it may read tables, like a query), so what it
//! plays is a function of the tables and the block; take the phase of an oscillator from
//! `block.index`, never from memory kept between calls.
//!
//! ```
//! use interstice_sdk::platform::AudioBlock;
//! use interstice_sdk::*;
//!
//! interstice_module!(authorities: [Audio]);
//!
//! #[reducer(on = "audio_output")]
//! fn play(ctx: ReducerContext, block: AudioBlock) -> Result<(), String> {
//!     let samples = vec![0.0; block.frames as usize * usize::from(block.channels)];
//!     ctx.audio().write(&samples)?;
//!     Ok(())
//! }
//! ```
//!
//! Captured sound arrives in `audio_input` hooks (`#[reducer(on = "audio_input")]`, with an
//! [`AudioCapture`](crate::platform::AudioCapture)), like any other input: sequenced, and
//! recorded in the node's log with what the hook wrote.

use crate::host_calls::status;
use crate::{ReducerContext, Result, sys};

mod imp {
    crate::imports::host_imports!("interstice_audio" {
        fn host_write_samples = "write_samples"(ptr: i32, len: i32) -> i64;
    });
}

/// The block the running `audio_output` hook fills: `ctx.audio()`.
#[derive(Debug)]
pub struct Audio {
    _private: (),
}

impl Audio {
    /// Appends interleaved samples (`block.channels` per frame, at `block.sample_rate`) to the
    /// block; returns how many it holds now.
    ///
    /// When the hook returns the block must hold exactly `block.frames × block.channels`
    /// samples, written in one call or several. NaN and infinities play as 0.0 and values
    /// outside [-1, 1] are clamped. Writing more than the block holds, or writing outside an
    /// `audio_output` hook, fails the invocation; a failed hook, or one that wrote too few
    /// samples, is heard as a block of silence.
    pub fn write(&self, samples: &[f32]) -> Result<usize> {
        // Wasm is little-endian, so the slice's bytes are the samples as the host reads them.
        let bytes = samples.as_ptr().cast::<u8>();
        // SAFETY: the pointer and length describe `samples`, alive for the call.
        let ret = unsafe {
            imp::host_write_samples(sys::ptr(bytes), sys::len(std::mem::size_of_val(samples)))
        };
        status(ret).map(|n| n as usize)
    }
}

impl ReducerContext {
    /// The block of sound an `audio_output` hook fills.
    pub fn audio(&self) -> Audio {
        Audio { _private: () }
    }
}
