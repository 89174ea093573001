//! The one error type of the platform: what went wrong, said for the module's author.

use crate::resources::{HandleFault, ResourceKind};

/// Why a GPU or window operation was refused or failed.
///
/// A module's bad command yields one of these for that invocation only: the device, the other
/// modules' resources and the node are untouched.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// No adapter could be opened on any enabled backend.
    #[error(
        "no GPU adapter found (backends: {backends}): {reason}; on Linux without a GPU install \
         Mesa (`apt-get install -y mesa-vulkan-drivers libvulkan1` for Vulkan/lavapipe, \
         `libegl1 libgl1-mesa-dri` for GL/llvmpipe) or pick a backend with WGPU_BACKEND=gl|vulkan"
    )]
    NoAdapter { backends: String, reason: String },
    /// The adapter refused to open a device.
    #[error("the GPU device could not be created: {0}")]
    Device(String),
    /// A handle the module passed is not one of its live resources of the expected kind.
    #[error("{expected} handle {handle:#x} refused: {fault}")]
    BadHandle {
        expected: ResourceKind,
        handle: u64,
        fault: HandleFault,
    },
    /// Creating the resource would take the module past its GPU memory budget.
    #[error(
        "GPU memory budget exceeded: {requested} more bytes requested with {used} of {budget} \
         bytes in use; free buffers or textures first, or ask the node for a larger budget"
    )]
    OverBudget {
        requested: u64,
        used: u64,
        budget: u64,
    },
    /// The module already holds as many resources as it may.
    #[error(
        "too many GPU resources: a module may hold at most {limit}; free the ones it no longer \
         uses (handles are not reclaimed automatically)"
    )]
    TooManyResources { limit: u32 },
    /// An argument is out of range, misaligned or unknown; the message says which and why.
    #[error("{0}")]
    Invalid(String),
    /// A frame command was issued in the wrong state (no frame, no pass, no pipeline, ...).
    #[error("{0}")]
    Command(String),
    /// wgpu's validation refused what the module asked for; the message is wgpu's.
    #[error("wgpu validation failed while {during}: {message}")]
    Validation { during: String, message: String },
    /// The device ran out of memory while doing what the module asked for.
    #[error("the GPU ran out of memory while {during}; free resources or lower the frame size")]
    OutOfMemory { during: String },
    /// wgpu reported an internal error (a driver or wgpu bug, not the module's fault).
    #[error("internal GPU error while {during}: {message}")]
    Internal { during: String, message: String },
    /// Reading a frame back from the GPU failed.
    #[error("reading the frame back failed: {0}")]
    Readback(String),
    /// Writing a PNG failed.
    #[error("writing the PNG failed: {0}")]
    Png(String),
    /// The window or its surface could not be created or used.
    #[error("{0}")]
    Window(String),
}

/// Results of this crate.
pub type Result<T, E = GpuError> = std::result::Result<T, E>;

pub(crate) fn invalid(message: impl Into<String>) -> GpuError {
    GpuError::Invalid(message.into())
}
