//! The Gpu and Input platform of Interstice: wgpu rendering for modules, a winit window or an
//! off-screen target, and typed input events.
//!
//! See `README.md` beside this crate for its threads, its error and budget model, and how to
//! run its tests headless and under Xvfb.

#![forbid(unsafe_code)]

pub mod demo;
pub mod engine;
pub mod error;
pub mod frame;
#[cfg(feature = "gamepad")]
pub mod gamepad;
pub mod gpu;
pub mod input;
pub mod lane;
pub mod node;
pub mod pacing;
pub mod present;
pub mod resources;
pub mod window;

pub use engine::{
    BindingDesc, EngineConfig, FrameDone, GpuEngine, PipelineDesc, VertexAttributeDesc,
    VertexBufferDesc,
};
pub use error::{GpuError, Result};
pub use frame::FrameInfo;
pub use gpu::{FRAME_FORMAT, Gpu};
pub use input::{InputEvent, InputState, MouseButton, PadState, WheelUnit};
pub use lane::{Capture, Driver, HeadlessConfig, HeadlessLoop, LoopStats, LoopWaker, SharedEngine};
pub use node::{FrameCounts, PlatformConfig, WindowPlatform};
pub use pacing::{FramePacer, Pace};
pub use present::{FrameRing, Image};
pub use resources::{Budget, HandleFault, OwnerId, Released, ResourceKind, Usage};
pub use window::{WindowConfig, WindowLoop};
