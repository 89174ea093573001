//! The engine's errors, written for the person who has to act on them.

use crate::config::StreamFormat;

/// Setting up or running the engine failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// A setting is zero or above the engine's limit.
    #[error("audio setting `{setting}` is {value}; it must be between 1 and {max}")]
    InvalidConfig {
        setting: &'static str,
        value: u32,
        max: u32,
    },
    /// The device offers a format the engine cannot carry.
    #[error(
        "the audio device offers {format:?}, which the engine cannot use: {reason}; \
         pick another device or configure the system's default"
    )]
    UnsupportedFormat {
        format: StreamFormat,
        reason: &'static str,
    },
    /// The host has no usable default output device (no sound card, or no sound server).
    #[error(
        "no usable audio output device on host `{host}`: {reason}; on a machine without a \
         sound card, point ALSA_CONFIG_PATH at a file device (see the crate's README) or run \
         without the Audio authority"
    )]
    NoOutputDevice { host: String, reason: String },
    /// The device refused an operation; `during` names it.
    #[error("audio device error while {during}: {message}")]
    Device {
        during: &'static str,
        message: String,
    },
}

/// A block from the producer was refused. The engine played silence in its place, so the
/// stream's timeline (block `n` starts at frame `n × block_frames`) is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// The block does not hold exactly `frames × channels` interleaved samples.
    #[error(
        "audio block {index} has {got} samples; it must have exactly {expected} \
         ({frames} frames × {channels} channels, interleaved); it was played as silence"
    )]
    WrongLength {
        index: u64,
        got: usize,
        expected: usize,
        frames: u32,
        channels: u16,
    },
    /// No block is wanted: the ring already holds its target.
    #[error(
        "no audio block is wanted now: the ring already holds its target; call `wants_block` first"
    )]
    NotWanted,
}
