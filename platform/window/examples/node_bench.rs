//! The graphics module through a real node, off-screen: how long a frame takes end to end, and
//! what rendering costs the reducers of other modules.
//!
//! ```text
//! cargo run --release -p interstice-window --example node_bench -- [frames] [seconds] [rounds]
//! ```
//!
//! 1. Frame time: `frames` frames of 960×720 as fast as they go (one in flight): the pacer
//!    hands out a frame, the node runs the render hook on the gpu lane, `finish_hook` encodes
//!    and submits; then one readback waits for the GPU to finish the last. Per frame: the
//!    total over the count.
//! 2. Reducer throughput: one client calling `hello.hello` back to back for `seconds`, with
//!    the graphics module installed, without and with its render loop running at 60 Hz,
//!    for `rounds` rounds, each starting with the other than the last.

use std::sync::Arc;
use std::time::{Duration, Instant};

use interstice_abi::{Value, encode};
use interstice_runtime::{Node, NodeConfig};
use interstice_window::{HeadlessConfig, PlatformConfig, WindowPlatform};

const WIDTH: u32 = 960;
const HEIGHT: u32 = 720;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let frames = args.next().transpose()?.unwrap_or(300);
    let seconds = args.next().transpose()?.unwrap_or(3);
    let rounds = args.next().transpose()?.unwrap_or(3);

    let platform = WindowPlatform::headless(PlatformConfig::default());
    println!("adapter: {}", platform.open_gpu()?);
    let node = Node::open(NodeConfig {
        authorities: platform.authorities(),
        ..NodeConfig::default()
    })?;
    node.install(&interstice_build::workspace_module("graphics"))?;
    node.install(&interstice_build::workspace_module("hello"))?;
    println!("workers: {}", node.workers());

    // 1. Frame time.
    let started = Instant::now();
    platform.run_headless(&HeadlessConfig {
        width: WIDTH,
        height: HEIGHT,
        rate_hz: 1e6,
        frames: Some(frames),
        capture: None,
    })?;
    let submitted = started.elapsed();
    platform.read_frame()?.ok_or("no frame was rendered")?;
    let finished = started.elapsed();
    let counts = platform.frames();
    assert_eq!((counts.rendered, counts.failed), (frames, 0));
    let per = |d: Duration| d / u32::try_from(frames).unwrap_or(u32::MAX);
    println!(
        "{frames} frames of {WIDTH}×{HEIGHT}: {:?} per frame submitted, {:?} per frame with the GPU done",
        per(submitted),
        per(finished)
    );

    // 2. Reducer throughput, without and with rendering.
    let args = encode(&Value::from("bench"));
    let window = Duration::from_secs(seconds);
    let mut without = Vec::new();
    let mut with = Vec::new();
    for round in 0..rounds {
        // Alternate which goes first, so neither gains from running second.
        if round % 2 == 0 {
            without.push(calls_per_second(&node, &args, window)?);
        }
        let looping = platform.clone();
        let render = std::thread::spawn(move || {
            looping.run_headless(&HeadlessConfig {
                width: WIDTH,
                height: HEIGHT,
                rate_hz: 60.0,
                frames: Some(seconds * 60),
                capture: None,
            })
        });
        // The loop renders `seconds` of frames; measure while it does.
        with.push(calls_per_second(&node, &args, window)?);
        render.join().map_err(|_| "the render loop panicked")??;
        if round % 2 == 1 {
            without.push(calls_per_second(&node, &args, window)?);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut without), median(&mut with));
    println!("hello.hello calls/s without rendering: {without:.0?}, median {a:.0}");
    println!("hello.hello calls/s while rendering at 60 Hz: {with:.0?}, median {b:.0}");
    println!("kept: {:.1} %", b / a * 100.0);
    Ok(())
}

fn calls_per_second(
    node: &Arc<Node>,
    args: &[u8],
    window: Duration,
) -> Result<f64, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < window {
        let outcome = node.call_reducer("hello", "hello", args)?;
        assert!(outcome.is_committed(), "{outcome:?}");
        calls += 1;
    }
    Ok(calls as f64 / started.elapsed().as_secs_f64())
}
