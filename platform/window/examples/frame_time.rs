//! Times a headless triangle frame on whatever adapter the machine has, phase by phase:
//! record (the commands a render hook issues), encode + submit (`end_frame`), the GPU finishing
//! the frame, and reading it back.
//!
//! ```text
//! cargo run --release -p interstice-window --example frame_time -- [frames] [width] [height]
//! ```

use std::time::{Duration, Instant};

use interstice_window::demo::TriangleScene;
use interstice_window::{EngineConfig, FrameInfo, GpuEngine, OwnerId};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u32>());
    let frames = args.next().transpose()?.unwrap_or(300);
    let width = args.next().transpose()?.unwrap_or(1280);
    let height = args.next().transpose()?.unwrap_or(720);
    let mut engine = GpuEngine::headless(EngineConfig::default())?;
    let owner = OwnerId(1);
    let scene = TriangleScene::create(&mut engine, owner, [1.0, 0.0, 0.0, 1.0])?;
    let mut phases: [Vec<Duration>; 4] = Default::default();
    for number in 0..u64::from(frames) {
        let info = FrameInfo {
            number,
            width,
            height,
            time_ns: 0,
        };
        let t0 = Instant::now();
        engine.begin_frame(owner, info)?;
        scene.record(&mut engine, owner, [0.0, 0.0, 0.2, 1.0])?;
        let t1 = Instant::now();
        engine.end_frame(owner)?;
        let t2 = Instant::now();
        engine
            .gpu()
            .device
            .poll(wgpu::PollType::wait_indefinitely())?;
        let t3 = Instant::now();
        let (_, image) = engine.read_frame()?.ok_or("no frame to read")?;
        let t4 = Instant::now();
        assert_eq!(image.rgba.len(), (width * height * 4) as usize);
        for (p, d) in phases.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
            p.push(d);
        }
    }
    println!("adapter: {}", engine.gpu().describe());
    println!("{frames} frames of {width}×{height}, median / p90:");
    for (name, mut times) in ["record", "encode + submit", "GPU renders", "readback"]
        .into_iter()
        .zip(phases)
    {
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
        println!("  {name:<16} {:>10.3?} / {:>10.3?}", at(0.5), at(0.9));
    }
    Ok(())
}
