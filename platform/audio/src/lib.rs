//! Interstice's audio engine: a real-time output callback fed by a wait-free ring that the
//! Audio module's `audio_output` hook fills ahead of time, and capture buffers for
//! `audio_input`.
//!
//! ```
//! use interstice_audio::{AudioConfig, SampleFormat, StreamFormat, VirtualDevice};
//!
//! let format = StreamFormat { sample_rate: 48_000, channels: 2, sample_format: SampleFormat::F32 };
//! let config = AudioConfig::default().block_frames(256).target_blocks(2);
//! let (mut device, mut io) = VirtualDevice::new(format, None, 128, &config)?;
//!
//! // The audio lane: fill the ring while it has room (the hook would run here).
//! while let Some(block) = io.output.wants_block() {
//!     io.output.push_block(&vec![0.25; block.samples()])?;
//! }
//! // The device's real-time callback: copies, never waits.
//! assert!(device.tick().iter().all(|&s| s == 0.25));
//! assert_eq!(io.stats.snapshot().output.underruns, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Core concepts
//!
//! - **Threads.** The device's callback thread runs [`OutputCallback::render`] (and
//!   [`CaptureCallback::record`]) and nothing else. The *audio lane*, a thread the runtime
//!   pins for the module holding the Audio authority, owns [`AudioIo`]: it asks
//!   [`OutputProducer::wants_block`], runs the hook, pushes the block, and takes capture
//!   buffers. Any thread reads [`AudioStats`].
//! - **The real-time rule.** The callback never runs wasm, locks, allocates, logs or waits
//!   (Ross Bencina, "Real-time audio programming 101: time waits for nothing"). It copies
//!   from an `rtrb` SPSC ring; when the ring is short it plays silence and counts an underrun.
//! - **Blocks.** Block `n` covers frames `n × block_frames ..` of the produced stream; its
//!   logical time is a function of `n` alone. NaN and infinities become 0.0, other samples
//!   are clamped to [-1, 1]; a block of the wrong length is refused and played as silence.
//! - **Devices.** [`VirtualDevice`] drives the same callbacks from a test clock; with the
//!   `cpal` feature, `AudioDevice` opens the system's default output (and input).
//! - **The node.** With the `authority` feature (default), `AudioAuthority` plugs the engine
//!   into the runtime's authority seam (`AuthorityProvider`): a feeder thread asks the
//!   module's `audio_output` hook for blocks through the ingress, the hook writes them with the `write_samples` host
//!   call, and captured buffers become `audio_input` invocations. Without the feature the
//!   crate does not depend on the runtime.

#![forbid(unsafe_code)]

#[cfg(feature = "authority")]
mod authority;
mod capture;
mod config;
#[cfg(feature = "cpal")]
mod device;
mod error;
mod output;
mod producer;
mod ring;
mod sample;
mod stats;
mod virtual_device;

#[cfg(feature = "cpal")]
#[cfg(feature = "authority")]
pub use authority::SystemBackend;
#[cfg(feature = "authority")]
pub use authority::{
    AudioAuthority, AudioBackend, HookStats, IMPORTS, OpenStreams, Streams, VirtualBackend,
    WRITE_SAMPLES,
};
pub use capture::{CaptureBuffer, CaptureCallback, CaptureReader};
pub use config::{AudioConfig, MAX_BLOCK_FRAMES, MAX_CHANNELS, MAX_TARGET_BLOCKS, StreamFormat};
#[cfg(feature = "cpal")]
pub use device::{AudioDevice, DeviceInfo};
pub use error::{AudioError, BlockError};
pub use output::OutputCallback;
pub use producer::{BlockReport, BlockRequest, OutputProducer};
pub use ring::{AudioIo, capture_ring, output_ring};
pub use sample::{DeviceSample, SampleFormat};
pub use stats::{AudioStats, CaptureStats, OutputStats, StatsSnapshot};
pub use virtual_device::VirtualDevice;
