//! The Audio authority in a node, under load: `modules/audio` plays through a virtual device
//! that a thread ticks at 48 kHz, like a sound card, while client threads call another
//! module's reducer as fast as they can. Reports the underruns, the output latency and how
//! long the `audio_output` hooks took to come back.
//!
//! ```sh
//! cargo run --release -p interstice-audio --example node_load -- \
//!     [seconds] [block_frames] [target_blocks] [load_threads] [durable: 0|1]
//! ```
//!
//! Defaults: 10 s, blocks of 512 frames, 4 ahead, no load, memory only. With `durable`, the
//! node logs to a temporary directory and each call waits for its commit to be on disk.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use interstice_abi::Value;
use interstice_audio::{
    AudioAuthority, AudioConfig, SampleFormat, StreamFormat, VirtualBackend, VirtualDevice,
};
use interstice_runtime::{Node, NodeConfig};

const RATE: u32 = 48_000;

fn main() {
    if let Err(e) = try_main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn try_main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| -> Result<u64, String> {
        args.get(i).map_or(Ok(default), |a| {
            a.parse()
                .map_err(|_| format!("`{a}` is not a whole number"))
        })
    };
    let seconds = arg(0, 10)?;
    let block = u32::try_from(arg(1, 512)?)?;
    let target = u32::try_from(arg(2, 4)?)?;
    let load_threads = arg(3, 0)?;
    let durable = arg(4, 0)? == 1;

    let format = StreamFormat {
        sample_rate: RATE,
        channels: 2,
        sample_format: SampleFormat::F32,
    };
    let (backend, devices) = VirtualBackend::new(format, None, block);
    let config = AudioConfig::default()
        .block_frames(block)
        .target_blocks(target)
        .capture(false);
    let audio = AudioAuthority::new(backend, config)?;
    let dir = tempfile::tempdir()?;
    let node = Node::open(NodeConfig {
        authorities: vec![Arc::new(audio.clone())],
        data_dir: durable.then(|| dir.path().to_path_buf()),
        ..NodeConfig::default()
    })?;
    println!("building modules/audio and modules/hello…");
    node.install(&interstice_build::try_workspace_module("audio")?)?;
    node.install(&interstice_build::try_workspace_module("hello")?)?;
    let device = devices.recv()?;
    let stats = audio.engine_stats().ok_or("the device did not open")?;
    // Let the feeder fill the ring, as a real device starts once primed.
    while stats.snapshot().output.ring_fill_frames < u64::from(block * target) {
        thread::sleep(Duration::from_millis(1));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let loaders: Vec<_> = (0..load_threads)
        .map(|i| {
            let (node, stop, calls) = (node.clone(), stop.clone(), calls.clone());
            thread::spawn(move || {
                let name = Value::String(format!("load {i}"));
                while !stop.load(Relaxed) {
                    if node
                        .call_reducer_values("hello", "hello", std::slice::from_ref(&name))
                        .is_ok_and(|o| o.is_committed())
                    {
                        calls.fetch_add(1, Relaxed);
                    }
                }
            })
        })
        .collect();

    let started = Instant::now();
    let (played, worst_late) = clock(device, block, Duration::from_secs(seconds));
    let elapsed = started.elapsed();
    stop.store(true, Relaxed);
    for loader in loaders {
        let _ = loader.join();
    }

    let output = stats.snapshot().output;
    let hooks = audio.hook_stats();
    println!(
        "{seconds} s, blocks of {block} frames, {target} ahead, {load_threads} load threads{}",
        if durable { ", durable" } else { "" }
    );
    println!(
        "  device: {played} periods, worst tick {:.2} ms late",
        worst_late.as_secs_f64() * 1e3
    );
    println!(
        "  underruns: {} ({} frames, {:.1} ms of silence)",
        output.underruns,
        output.underrun_frames,
        format.millis(output.underrun_frames)
    );
    println!("  output latency: {:.1} ms", output.output_latency_ms);
    println!(
        "  hook turnaround: mean {:.3} ms, max {:.2} ms over {} blocks",
        hooks.turnaround_mean_ms, hooks.turnaround_max_ms, output.blocks_pushed
    );
    println!(
        "  load: {:.0} calls/s",
        calls.load(Relaxed) as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// Ticks `device` once per period for `duration`, on absolute deadlines (a late tick is run
/// at once, as a sound card's next interrupt would come); returns the periods played and the
/// latest a tick ran after its deadline.
fn clock(mut device: VirtualDevice, period: u32, duration: Duration) -> (u64, Duration) {
    let step = Duration::from_nanos(u64::from(period) * 1_000_000_000 / u64::from(RATE));
    let start = Instant::now();
    let mut ticks = 0u64;
    let mut worst = Duration::ZERO;
    while start.elapsed() < duration {
        ticks += 1;
        let due = start + step * u32::try_from(ticks).unwrap_or(u32::MAX);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        } else {
            worst = worst.max(now - due);
        }
        device.tick();
    }
    (ticks, worst)
}
