//! A node with the window platform, headless, and the graphics module built for it.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use interstice_runtime::{Node, NodeConfig};
use interstice_window::{GpuError, HeadlessConfig, PlatformConfig, WindowPlatform};

/// The graphics module's wasm, built once per test run.
pub fn graphics_wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| interstice_build::workspace_module("graphics"))
}

/// A headless platform whose device is open, or `None` when `INTERSTICE_NO_GPU=1` says the
/// machine has no GPU stack (without it, a missing adapter fails the test with the hint).
pub fn platform(config: PlatformConfig) -> Option<WindowPlatform> {
    opened(WindowPlatform::headless(config))
}

/// `platform` with its device open, or `None` as for [`platform`].
pub fn opened(platform: WindowPlatform) -> Option<WindowPlatform> {
    match platform.open_gpu() {
        Ok(adapter) => {
            eprintln!("adapter: {adapter}");
            Some(platform)
        }
        Err(e @ GpuError::NoAdapter { .. })
            if std::env::var("INTERSTICE_NO_GPU").is_ok_and(|v| v == "1") =>
        {
            eprintln!("GPU test NOT RUN: INTERSTICE_NO_GPU=1 and {e}");
            None
        }
        Err(e) => {
            panic!("{e}\n(set INTERSTICE_NO_GPU=1 only on a machine that cannot have a GPU stack)")
        }
    }
}

/// A memory-only node granting the platform's authorities.
pub fn node(platform: &WindowPlatform, workers: usize) -> Arc<Node> {
    Node::open(NodeConfig {
        authorities: platform.authorities(),
        workers,
        ..NodeConfig::default()
    })
    .expect("node")
}

pub const WIDTH: u32 = 64;
pub const HEIGHT: u32 = 48;

/// `frames` frames of WIDTH × HEIGHT, as fast as they render.
pub fn frames(frames: u64) -> HeadlessConfig {
    HeadlessConfig {
        width: WIDTH,
        height: HEIGHT,
        rate_hz: 1000.0,
        frames: Some(frames),
        capture: None,
    }
}

/// Waits for `condition`, failing after a deadline far beyond what it needs, so a bug fails
/// the test instead of hanging it.
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A linear colour channel as the sRGB frame stores it.
pub fn srgb(linear: f32) -> u8 {
    let c = if linear <= 0.003_130_8 {
        linear * 12.92
    } else {
        1.055 * linear.powf(1.0 / 2.4) - 0.055
    };
    (c * 255.0).round() as u8
}

pub fn rgba(linear: [f32; 3]) -> [u8; 4] {
    [srgb(linear[0]), srgb(linear[1]), srgb(linear[2]), 255]
}
