//! The GPU lane's loop: who runs render invocations, when, and how other threads get in.
//!
//! Each turn the loop calls [`Driver::drain`] (the hook where the jobs queued for this lane run)
//! and, when the pacer says so, [`Driver::frame_due`]. Other threads queue jobs and call
//! [`LoopWaker::wake`]; the loop then turns at once. Windowed, the loop is winit's
//! (`window::WindowLoop`, on the main thread); headless, it is [`HeadlessLoop`], on whatever
//! thread calls `run`.
//!
//! The engine is shared ([`SharedEngine`]): the loop locks it only for its own bookkeeping and
//! never while it calls the driver, so a driver may hand the frame to another thread (the
//! node's lane) that locks the engine to record it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::engine::GpuEngine;
use crate::error::Result;
use crate::frame::FrameInfo;
use crate::input::{InputEvent, InputState};
use crate::pacing::{FramePacer, Pace};

/// The engine as the loops, the present step and the node's lane share it. wgpu's error scopes
/// are per thread; every engine call pushes and pops its scopes while holding this lock, so
/// whichever thread calls, its errors are its own.
pub type SharedEngine = Arc<Mutex<GpuEngine>>;

/// What the embedder (the node) does on the GPU lane.
pub trait Driver {
    /// Frame `frame` is due. Run the render invocation now (`begin_frame` … `end_frame`), or
    /// hand it on (queue it for [`Driver::drain`], or for another thread). No other frame is
    /// due until the engine's `end_frame` or `abort_frame` is called, so a driver that cannot
    /// render must abort. The loop does not hold the engine's lock here.
    fn frame_due(&mut self, engine: &SharedEngine, frame: FrameInfo);

    /// Runs every loop turn, and at once after [`LoopWaker::wake`]: the place to run jobs that
    /// must run on this thread. By default, nothing.
    fn drain(&mut self, engine: &SharedEngine) {
        let _ = engine;
    }

    /// An input event of the window, with the state after it. By default, ignored.
    fn input(&mut self, event: &InputEvent, state: &InputState) {
        let _ = (event, state);
    }
}

#[derive(Debug, Default)]
struct Signal {
    woken: bool,
    stop: bool,
}

#[derive(Debug, Default)]
pub(crate) struct ThreadSignal {
    state: Mutex<Signal>,
    changed: Condvar,
}

/// What a window loop is sent through winit's event loop proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopSignal {
    Wake,
    Stop,
}

#[derive(Debug, Clone)]
enum WakerInner {
    Window(winit::event_loop::EventLoopProxy<LoopSignal>),
    Thread(Arc<ThreadSignal>),
}

/// Wakes or stops a lane's loop from any thread.
#[derive(Debug, Clone)]
pub struct LoopWaker {
    inner: WakerInner,
}

impl LoopWaker {
    pub(crate) fn window(proxy: winit::event_loop::EventLoopProxy<LoopSignal>) -> Self {
        LoopWaker {
            inner: WakerInner::Window(proxy),
        }
    }

    fn send(&self, signal: LoopSignal) {
        match &self.inner {
            // Fails only once the loop has exited: nothing is left to wake.
            WakerInner::Window(proxy) => drop(proxy.send_event(signal)),
            WakerInner::Thread(t) => {
                let mut state = t.state.lock();
                match signal {
                    LoopSignal::Wake => state.woken = true,
                    LoopSignal::Stop => state.stop = true,
                }
                t.changed.notify_all();
            }
        }
    }

    /// The loop turns as soon as it can and calls [`Driver::drain`].
    pub fn wake(&self) {
        self.send(LoopSignal::Wake);
    }

    /// The loop stops after its current turn (a window closes).
    pub fn stop(&self) {
        self.send(LoopSignal::Stop);
    }
}

/// What a loop did, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoopStats {
    /// Frames handed to the driver.
    pub frames: u64,
    /// Ticks skipped because the previous frame was still busy.
    pub skipped: u64,
    /// Frames written as PNG.
    pub captured: u64,
}

/// Headless frames written to files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// Where `frame-NNNNNN.png` files go.
    pub dir: PathBuf,
    /// Every how many frames one is written (1: all).
    pub every: u64,
}

/// How a headless loop runs.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadlessConfig {
    pub width: u32,
    pub height: u32,
    /// Frames per second. By default, 60.
    pub rate_hz: f64,
    /// Stop after this many frames; by default, run until stopped.
    pub frames: Option<u64>,
    /// Write frames as PNG; by default, none.
    pub capture: Option<Capture>,
}

impl Default for HeadlessConfig {
    fn default() -> Self {
        HeadlessConfig {
            width: 1280,
            height: 720,
            rate_hz: 60.0,
            frames: None,
            capture: None,
        }
    }
}

/// The render loop without a window: a fixed frame rate with reproducible frame times
/// (`number × interval`), frames rendered off-screen and optionally written as PNG.
#[derive(Debug, Default)]
pub struct HeadlessLoop {
    signal: Arc<ThreadSignal>,
}

impl HeadlessLoop {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn waker(&self) -> LoopWaker {
        LoopWaker {
            inner: WakerInner::Thread(self.signal.clone()),
        }
    }

    /// Runs until `config.frames` frames have ended or the waker stops it.
    pub fn run(
        &self,
        engine: &SharedEngine,
        config: &HeadlessConfig,
        driver: &mut dyn Driver,
    ) -> Result<LoopStats> {
        let mut pacer = FramePacer::at_rate(config.rate_hz, (config.width, config.height), true);
        let mut stats = LoopStats::default();
        if let Some(capture) = &config.capture {
            std::fs::create_dir_all(&capture.dir).map_err(|e| {
                crate::error::GpuError::Png(format!("cannot create {}: {e}", capture.dir.display()))
            })?;
        }
        loop {
            driver.drain(engine);
            if let Some(capture) = &config.capture {
                stats.captured += write_ready(&engine.lock(), capture)?;
            }
            let pace = {
                let mut engine = engine.lock();
                let busy = engine.frame_outstanding().is_some();
                if config.frames.is_some_and(|n| stats.frames >= n) {
                    if !busy {
                        break;
                    }
                    Pace::WaitForFrame
                } else {
                    let pace = pacer.poll(Instant::now(), busy);
                    if let Pace::Due(frame) = pace {
                        engine.frame_handed_out(frame.number);
                    }
                    pace
                }
            };
            let wait_until = match pace {
                Pace::Due(frame) => {
                    stats.frames += 1;
                    driver.frame_due(engine, frame);
                    continue;
                }
                Pace::WaitForFrame => None,
                Pace::WaitUntil(t) => Some(t),
            };
            let mut state = self.signal.state.lock();
            if !state.woken && !state.stop {
                match wait_until {
                    Some(t) => {
                        self.signal.changed.wait_until(&mut state, t);
                    }
                    None => {
                        self.signal.changed.wait_for(&mut state, pacer.interval());
                    }
                }
            }
            state.woken = false;
            if state.stop {
                break;
            }
        }
        stats.skipped = pacer.skipped();
        Ok(stats)
    }
}

fn write_ready(engine: &GpuEngine, capture: &Capture) -> Result<u64> {
    if !engine.ring().pending() {
        return Ok(0);
    }
    let Some((number, image)) = engine.read_frame()? else {
        return Ok(0);
    };
    if number % capture.every.max(1) != 0 {
        return Ok(0);
    }
    image.save_png(&capture.dir.join(format!("frame-{number:06}.png")))?;
    Ok(1)
}
