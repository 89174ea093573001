//! Plays a tone through the default output device and reports what was negotiated, the
//! latency and the underruns: `cargo run -p interstice-audio --features cpal --example tone
//! -- [freq_hz] [seconds] [block_frames] [target_blocks]` (defaults 440 2 512 3).
//!
//! The loop below is what the audio lane does, with a sine in place of the module's hook.

use std::f64::consts::TAU;
use std::time::Duration;

use interstice_audio::{AudioConfig, AudioDevice};

fn main() {
    if let Err(e) = try_main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: f64| -> Result<f64, String> {
        args.get(i)
            .map(|a| {
                a.parse::<f64>()
                    .map_err(|_| format!("`{a}` is not a number"))
            })
            .unwrap_or(Ok(default))
    };
    let freq = arg(0, 440.0)?;
    let seconds = arg(1, 2.0)?;
    let config = AudioConfig::default()
        .block_frames(arg(2, 512.0)? as u32)
        .target_blocks(arg(3, 3.0)? as u32)
        .capture(false);

    let (device, mut io) = AudioDevice::open_default(&config)?;
    println!("{:#?}", device.info());
    let format = io.output.format();
    let total = (seconds * f64::from(format.sample_rate)) as u64;
    let mut phase = 0.0f64;
    let step = TAU * freq / f64::from(format.sample_rate);
    let mut produce =
        |io: &mut interstice_audio::AudioIo| -> Result<(), Box<dyn std::error::Error>> {
            while let Some(block) = io.output.wants_block() {
                let mut samples = Vec::with_capacity(block.samples());
                for _ in 0..block.frames {
                    let s = (0.5 * phase.sin()) as f32;
                    samples.extend(std::iter::repeat_n(s, usize::from(block.channels)));
                    phase = (phase + step) % TAU;
                }
                io.output.push_block(&samples)?;
            }
            Ok(())
        };
    produce(&mut io)?;
    device.play()?;
    loop {
        produce(&mut io)?;
        let stats = io.stats.snapshot().output;
        if stats.played_frames + stats.underrun_frames >= total {
            break;
        }
        std::thread::sleep(
            io.output
                .time_until_wanted()
                .clamp(Duration::from_micros(500), Duration::from_millis(5)),
        );
    }
    let stats = io.stats.snapshot().output;
    println!("{stats:#?}");
    println!(
        "block {} frames, {} ahead: output latency {:.1} ms (ring {:.1} ms + device period {}), \
         {} underruns ({} frames)",
        stats.block_frames,
        config.get_target_blocks(),
        stats.output_latency_ms,
        format.millis(u64::from(stats.ring_capacity_frames)),
        stats
            .device_buffer_frames
            .map_or("unknown".to_string(), |n| format!("{n} frames")),
        stats.underruns,
        stats.underrun_frames,
    );
    Ok(())
}
