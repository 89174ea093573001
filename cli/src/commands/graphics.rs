//! `interstice example graphics`: the node serves on a thread of its own while this (the main)
//! thread runs the render loop — a window when there is a display, off-screen otherwise — or,
//! with `--frames`, renders that many frames off-screen, writes the last one and exits.

use std::path::Path;

use interstice_window::{
    GpuError, HeadlessConfig, PlatformConfig, WindowConfig, WindowLoop, WindowPlatform,
};
use serde_json::json;

use super::example::GraphicsOptions as Options;
use crate::error::{CliError, Result};
use crate::output::Output;
use crate::platforms::Platforms;

/// The window's size and the off-screen frames' size.
const WIDTH: u32 = 960;
const HEIGHT: u32 = 720;

/// The example's platform: a window if one can open, else off-screen with an open device.
pub fn open(out: Output, options: &Options) -> Result<(Platforms, Option<WindowLoop>)> {
    let config = PlatformConfig::default();
    if !options.headless {
        match WindowLoop::new() {
            Ok(window) => {
                let platform = WindowPlatform::windowed(&window, config).map_err(no_gpu)?;
                return Ok((
                    Platforms {
                        window: Some(platform),
                    },
                    Some(window),
                ));
            }
            Err(e) => out.say(format!("{e}; rendering off-screen instead")),
        }
    }
    let platform = WindowPlatform::headless(config);
    let adapter = platform.open_gpu().map_err(no_gpu)?;
    out.say(format!("rendering off-screen on {adapter}"));
    Ok((
        Platforms {
            window: Some(platform),
        },
        None,
    ))
}

fn no_gpu(e: GpuError) -> CliError {
    CliError::new(format!("the graphics example cannot render: {e}"))
        .hint("`--headless` renders without a display; it still needs a GPU or Mesa's CPU drivers")
}

/// Runs the render loop on this thread while `serve` runs on another; whichever ends first
/// ends the other (closing the window leaves the node serving until Ctrl-C).
pub fn run(
    out: Output,
    platforms: &Platforms,
    window: Option<WindowLoop>,
    options: &Options,
    serve: impl FnOnce() -> Result<()> + Send,
) -> Result<()> {
    let Some(platform) = &platforms.window else {
        return serve();
    };
    if let Some(frames) = options.frames {
        return render_frames(out, platform, frames, options.screenshot.as_deref());
    }
    std::thread::scope(|scope| {
        let server = scope.spawn(|| {
            let served = serve();
            platform.stop();
            served
        });
        let looped = match window {
            Some(window) => platform.run_window(
                window,
                WindowConfig {
                    title: "Interstice graphics".into(),
                    width: WIDTH,
                    height: HEIGHT,
                    rate_hz: None,
                },
            ),
            None => platform.run_headless(&HeadlessConfig {
                width: WIDTH,
                height: HEIGHT,
                ..HeadlessConfig::default()
            }),
        };
        match looped {
            Ok(stats) if !server.is_finished() => out.event(
                json!({"event": "render_loop_stopped", "frames": stats.frames}),
                format_args!(
                    "the render loop stopped after {} frames; the node goes on (Ctrl-C stops it)",
                    stats.frames
                ),
            ),
            Ok(_) => {}
            Err(e) => eprintln!("warning: the render loop stopped: {e}; the node goes on"),
        }
        server
            .join()
            .unwrap_or_else(|_| Err(CliError::new("the node's server thread panicked")))
    })
}

/// Renders `frames` frames off-screen at 60 Hz, writes the last one to `screenshot`, exits.
fn render_frames(
    out: Output,
    platform: &WindowPlatform,
    frames: u64,
    screenshot: Option<&Path>,
) -> Result<()> {
    let stats = platform
        .run_headless(&HeadlessConfig {
            width: WIDTH,
            height: HEIGHT,
            frames: Some(frames),
            ..HeadlessConfig::default()
        })
        .map_err(|e| CliError::new(format!("the render loop failed: {e}")))?;
    let counts = platform.frames();
    let last = platform
        .read_frame()
        .map_err(|e| CliError::new(format!("reading the last frame back failed: {e}")))?;
    let Some((number, image)) = last else {
        let why = platform
            .last_failure()
            .unwrap_or_else(|| "the render hook drew nothing".into());
        return Err(CliError::new(format!("no frame was rendered: {why}")));
    };
    if let Some(path) = screenshot {
        image
            .save_png(path)
            .map_err(|e| CliError::new(e.to_string()))?;
    }
    out.done(
        json!({
            "frames": stats.frames,
            "rendered": counts.rendered,
            "failed": counts.failed,
            "last_frame": number,
            "width": image.width,
            "height": image.height,
            "screenshot": screenshot.map(|p| p.display().to_string()),
        }),
        || {
            let written = screenshot.map_or(String::new(), |p| {
                format!("; frame {number} written to {}", p.display())
            });
            format!(
                "rendered {} of {} frames off-screen ({}×{}){written}",
                counts.rendered, stats.frames, image.width, image.height
            )
        },
    );
    Ok(())
}
