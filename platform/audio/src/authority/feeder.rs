//! The feeder: a thread per holding module that owns its device, asks for blocks as the ring
//! frees room and hands captured buffers to the ingress. It runs no wasm and never waits for
//! the node; the node's own thread runs what it submits.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use interstice_abi::{Event, Value, encode};
use interstice_runtime::EventSink;
use interstice_runtime::authority::Holder;

use super::{Device, Inner, OpenStreams, Session};
use crate::capture::{CaptureBuffer, CaptureReader};
use crate::producer::BlockRequest;
use crate::ring::AudioIo;

/// How long the feeder waits for the ring to fill before it starts the device anyway (a
/// module whose first hooks are slow then starts with underruns rather than not at all).
const PRIME_LIMIT: Duration = Duration::from_secs(2);
/// The feeder's shortest and longest sleep.
const MIN_WAIT: Duration = Duration::from_micros(500);
const MAX_WAIT: Duration = Duration::from_millis(20);

/// A running feeder thread.
pub(super) struct Feeder {
    module: String,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// Opens the device for `holder`'s module on a new feeder thread and waits until it is open;
/// an error says why it could not be (the module stays installed, silent).
pub(super) fn start(inner: &Arc<Inner>, holder: Holder) -> Result<(), String> {
    // The authority is exclusive: whatever ran before (an attach with no detach) goes.
    stop(inner, None);
    let stop = Arc::new(AtomicBool::new(false));
    let (opened_tx, opened_rx) = mpsc::channel();
    let module = holder.module.clone();
    let thread = {
        let inner = inner.clone();
        let stop = stop.clone();
        thread::Builder::new()
            .name("interstice-audio-feeder".into())
            .spawn(move || run(&inner, holder, &stop, opened_tx))
            .map_err(|e| format!("cannot start the audio feeder thread: {e}"))?
    };
    let opened = opened_rx
        .recv()
        .unwrap_or_else(|_| Err("the audio feeder thread stopped while opening the device".into()));
    match opened {
        Ok(()) => {
            *inner.feeder.lock() = Some(Feeder {
                module,
                stop,
                thread,
            });
            Ok(())
        }
        Err(why) => {
            let _ = thread.join();
            *inner.device.lock() = Device::Unavailable(why.clone());
            Err(why)
        }
    }
}

/// Stops the feeder of `module` (of any module: `None`), which closes its device.
pub(super) fn stop(inner: &Inner, module: Option<&str>) {
    let feeder = {
        let mut feeder = inner.feeder.lock();
        match feeder.as_ref() {
            Some(f) if module.is_none_or(|m| m == f.module) => feeder.take(),
            _ => None,
        }
    };
    if let Some(feeder) = feeder {
        feeder.stop.store(true, Relaxed);
        feeder.thread.thread().unpark();
        if feeder.thread.join().is_err() {
            tracing::error!(module = %feeder.module, "the audio feeder thread panicked");
        }
    }
    let mut session = inner.session.lock();
    if session
        .as_ref()
        .is_some_and(|s| module.is_none_or(|m| m == s.module))
    {
        *session = None;
    }
    *inner.device.lock() = Device::Idle;
}

fn run(inner: &Inner, holder: Holder, stop: &AtomicBool, opened: mpsc::Sender<Result<(), String>>) {
    let Holder { module, events, .. } = holder;
    let OpenStreams {
        streams,
        io,
        description,
    } = match inner.backend.open(&inner.config) {
        Ok(open) => open,
        Err(e) => {
            let _ = opened.send(Err(e.to_string()));
            return;
        }
    };
    let AudioIo {
        output,
        input,
        stats,
    } = io;
    let block_samples = output.format().samples(output.block_frames());
    *inner.session.lock() = Some(Session {
        module: module.clone(),
        output,
        pending: VecDeque::new(),
        staged: Vec::with_capacity(block_samples),
        block_samples,
        captures_in_flight: 0,
    });
    tracing::info!(%module, device = %description, "audio device open");
    *inner.device.lock() = Device::Open {
        description,
        stats: stats.clone(),
    };
    let _ = opened.send(Ok(()));

    let mut capture = input;
    let started = Instant::now();
    let mut playing = false;
    let mut warned = false;
    while !stop.load(Relaxed) {
        let wait = match feed_output(inner, &events) {
            Ok(wait) => wait,
            Err(e) => {
                // The module is going (a removal in progress): its detach stops this thread.
                if !warned {
                    tracing::warn!(%module, error = %e, "cannot submit audio_output");
                    warned = true;
                }
                MAX_WAIT
            }
        };
        if !playing {
            let output = stats.snapshot().output;
            let full = output.ring_fill_frames >= u64::from(output.ring_capacity_frames);
            if full || started.elapsed() >= PRIME_LIMIT {
                if let Err(e) = streams.play() {
                    tracing::error!(%module, error = %e, "the audio device cannot start");
                    *inner.device.lock() = Device::Unavailable(e.to_string());
                    break;
                }
                playing = true;
            }
        }
        if let Some(reader) = capture.as_mut() {
            feed_capture(inner, &events, reader);
        }
        thread::park_timeout(wait.clamp(MIN_WAIT, MAX_WAIT));
    }
    // The device closes as `streams` drops, here, on the thread that opened it.
    drop(streams);
}

/// Submits an `audio_output` invocation for each block the ring has room for and that is not
/// in flight already; returns how long until the next one fits.
fn feed_output(inner: &Inner, events: &EventSink) -> Result<Duration, String> {
    let mut guard = inner.session.lock();
    let Some(session) = guard.as_mut() else {
        return Ok(MAX_WAIT);
    };
    let format = session.output.format();
    let frames = session.output.block_frames();
    while session.output.room_blocks() > session.pending.len() {
        let index = session.output.next_index() + session.pending.len() as u64;
        let request = BlockRequest {
            index,
            first_frame: index * u64::from(frames),
            frames,
            channels: format.channels,
            sample_rate: format.sample_rate,
        };
        match events.submit(&Event::AudioOutput, block_args(&request)) {
            Ok(0) => {
                // No audio_output hook: the module only listens. Keep the device fed.
                let _ = session.output.push_silence();
            }
            Ok(_) => {
                session.pending.push_back(Instant::now());
                inner.counters.blocks_submitted.fetch_add(1, Relaxed);
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(session.output.time_until_room(session.pending.len() + 1))
}

/// Submits an `audio_input` invocation for each captured buffer, while fewer than the capture
/// ring's worth are in flight: a module that falls behind leaves buffers in the ring, whose
/// overruns are counted and reported to it as `dropped` frames.
fn feed_capture(inner: &Inner, events: &EventSink, reader: &mut CaptureReader) {
    let limit = inner.config.capture_blocks as usize;
    loop {
        let mut guard = inner.session.lock();
        let Some(session) = guard.as_mut() else {
            return;
        };
        if session.captures_in_flight >= limit {
            return;
        }
        let Some(buffer) = reader.take_buffer() else {
            return;
        };
        match events.submit(&Event::AudioInput, capture_args(&buffer)) {
            Ok(hooks) => {
                session.captures_in_flight += hooks;
                inner.counters.captures_submitted.fetch_add(1, Relaxed);
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot submit audio_input");
                return;
            }
        }
    }
}

/// The `AudioBlock` argument of block `request` (`interstice_abi::platform::AUDIO_BLOCK`).
/// Its `time` is the block's place in the output stream, in microseconds: a function of the
/// index alone.
pub(crate) fn block_args(request: &BlockRequest) -> Vec<u8> {
    let micros = i64::try_from(request.time_ns() / 1000).unwrap_or(i64::MAX);
    encode(&Value::Struct(vec![
        Value::U64(request.index),
        Value::U32(request.frames),
        Value::U16(request.channels),
        Value::U32(request.sample_rate),
        Value::I64(micros),
    ]))
}

/// The `AudioCapture` argument of `buffer` (`interstice_abi::platform::AUDIO_CAPTURE`).
pub(crate) fn capture_args(buffer: &CaptureBuffer) -> Vec<u8> {
    encode(&Value::Struct(vec![
        Value::U64(buffer.index),
        Value::U32(buffer.frames),
        Value::U16(buffer.channels),
        Value::U32(buffer.sample_rate),
        Value::List(buffer.samples.iter().map(|&s| Value::F32(s)).collect()),
        Value::U64(buffer.dropped_frames),
    ]))
}
