//! Draws the triangle demo in a window, or off-screen when there is no display.
//!
//! ```text
//! cargo run -p interstice-window --example triangle -- [--headless] [--frames N] [--png DIR]
//! ```
//! Windowed, it runs until the window is closed (or N frames were shown); headless, it renders
//! N frames (default 60) at 60 Hz and writes them to DIR as PNG when asked.

use std::path::PathBuf;
use std::process::ExitCode;

use interstice_window::demo::TriangleDemo;
use std::sync::Arc;

use interstice_window::{
    Capture, EngineConfig, GpuEngine, HeadlessConfig, HeadlessLoop, OwnerId, WindowConfig,
    WindowLoop,
};
use parking_lot::Mutex;

struct Args {
    headless: bool,
    frames: Option<u64>,
    png: Option<PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        headless: false,
        frames: None,
        png: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--headless" => args.headless = true,
            "--frames" => {
                let n = it.next().ok_or("--frames needs a number")?;
                args.frames = Some(
                    n.parse()
                        .map_err(|_| format!("--frames {n}: not a number"))?,
                );
            }
            "--png" => args.png = Some(it.next().ok_or("--png needs a folder")?.into()),
            other => {
                return Err(format!(
                    "unknown argument {other}; use --headless, --frames N, --png DIR"
                ));
            }
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> Result<(), String> {
    let args = parse()?;
    let mut demo = TriangleDemo::new(OwnerId(1));
    if !args.headless {
        match WindowLoop::new() {
            Ok(window) => {
                if let Some(n) = args.frames {
                    demo.stop_after = Some((n, window.waker()));
                }
                let gpu = window.open_gpu().map_err(|e| e.to_string())?;
                let engine = Arc::new(Mutex::new(GpuEngine::new(gpu, EngineConfig::default())));
                let stats = window
                    .run(
                        WindowConfig {
                            title: "Interstice triangle".into(),
                            width: 640,
                            height: 480,
                            ..WindowConfig::default()
                        },
                        &engine,
                        &mut demo,
                    )
                    .map_err(|e| e.to_string())?;
                println!(
                    "window closed after {} frames ({} ticks skipped)",
                    stats.frames, stats.skipped
                );
                return demo.last_error.map_or(Ok(()), |e| Err(e.to_string()));
            }
            Err(e) => eprintln!("{e}; rendering off-screen instead"),
        }
    }
    let engine = GpuEngine::headless(EngineConfig::default()).map_err(|e| e.to_string())?;
    println!("adapter: {}", engine.gpu().describe());
    let engine = Arc::new(Mutex::new(engine));
    let config = HeadlessConfig {
        width: 640,
        height: 480,
        frames: Some(args.frames.unwrap_or(60)),
        capture: args.png.map(|dir| Capture { dir, every: 1 }),
        ..HeadlessConfig::default()
    };
    let stats = HeadlessLoop::new()
        .run(&engine, &config, &mut demo)
        .map_err(|e| e.to_string())?;
    println!(
        "rendered {} frames off-screen, wrote {} PNG",
        stats.frames, stats.captured
    );
    demo.last_error.map_or(Ok(()), |e| Err(e.to_string()))
}
