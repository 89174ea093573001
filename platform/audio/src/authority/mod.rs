//! The `Audio` authority: the engine plugged into the node's authority seam, an
//! `AuthorityProvider` (feature `authority`, on by default).
//!
//! ```text
//!  feeder thread (owns the device)        audio lane (runs the module)      device (real time)
//!  ───────────────────────────────        ────────────────────────────      ──────────────────
//!  ring has room for a block not in       audio_output(block) hook
//!  flight → submit audio_output(block) ─► write_samples(..) → staged
//!  through the EventSink                  finish_hook: push the staged ──► ring ─► callback
//!                                          block, or silence
//!  capture buffer → submit audio_input ─► audio_input(capture) hook: writes tables, logged
//! ```
//!
//! - The feeder never submits more `audio_output` invocations than the ring has room for, so
//!   every finished hook's block fits; a slow module means fewer blocks in the ring and
//!   counted underruns, never a waiting callback.
//! - Block `n`'s samples come from the `n`-th `audio_output` invocation to finish. They
//!   finish in the order they were submitted: the module has one such hook (checked in
//!   `admit`), its invocations all run on its lane, and they have the same declared access,
//!   so the scheduler orders them by sequence number.
//! - Captured buffers are ordinary input: each `audio_input` invocation is sequenced and, when
//!   it writes, logged with its `AudioCapture` argument, so recovery needs no device.

mod backend;
mod feeder;
mod host;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use interstice_abi::{Authority as Kind, Event, ModuleSchema};
use interstice_runtime::LoadError;
use interstice_runtime::authority::{AuthorityProvider, Holder, Lane};
use interstice_runtime::wasm::HostState;
use interstice_runtime::wasmtime::Linker;
use parking_lot::Mutex;

#[cfg(feature = "cpal")]
pub use backend::SystemBackend;
pub use backend::{AudioBackend, OpenStreams, Streams, VirtualBackend};
pub use host::{IMPORTS, WRITE_SAMPLES};

use crate::config::AudioConfig;
use crate::error::{AudioError, BlockError};
use crate::producer::OutputProducer;
use crate::stats::AudioStats;

/// The `Audio` authority, for [`NodeConfig::authorities`](interstice_runtime::NodeConfig).
///
/// ```
/// use std::sync::Arc;
/// use interstice_audio::{AudioAuthority, AudioConfig, SampleFormat, StreamFormat, VirtualBackend};
/// use interstice_runtime::{Node, NodeConfig};
///
/// let format = StreamFormat { sample_rate: 48_000, channels: 2, sample_format: SampleFormat::F32 };
/// let (backend, _devices) = VirtualBackend::new(format, None, 512);
/// let audio = AudioAuthority::new(backend, AudioConfig::default())?;
/// let node = Node::open(NodeConfig { authorities: vec![Arc::new(audio)], ..NodeConfig::default() })?;
/// // The audio lane (a thread of its own) comes with the module that claims `Audio`.
/// assert!(node.lanes().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct AudioAuthority {
    inner: Arc<Inner>,
}

impl AudioAuthority {
    /// An authority whose module plays through `backend`, with blocks and ring as `config`
    /// says.
    pub fn new(backend: impl AudioBackend, config: AudioConfig) -> Result<Self, AudioError> {
        config.validate()?;
        Ok(AudioAuthority {
            inner: Arc::new(Inner {
                backend: Box::new(backend),
                config,
                session: Mutex::new(None),
                feeder: Mutex::new(None),
                device: Mutex::new(Device::Idle),
                counters: Counters::default(),
            }),
        })
    }

    /// The system's default devices (cpal), with blocks of 512 frames, 4 blocks ahead.
    #[cfg(feature = "cpal")]
    pub fn system() -> Self {
        AudioAuthority::new(SystemBackend, AudioConfig::default().target_blocks(4))
            .unwrap_or_else(|e| unreachable!("the default configuration is valid: {e}"))
    }

    /// The engine's counters while a module holds the authority and its device is open.
    pub fn engine_stats(&self) -> Option<AudioStats> {
        match &*self.inner.device.lock() {
            Device::Open { stats, .. } => Some(stats.clone()),
            _ => None,
        }
    }

    /// Whether the device of the holding module is open; `Err` says why it is not.
    pub fn device(&self) -> Result<String, String> {
        match &*self.inner.device.lock() {
            Device::Open { description, .. } => Ok(description.clone()),
            Device::Idle => Err("no module holds the Audio authority".into()),
            Device::Unavailable(why) => Err(why.clone()),
        }
    }

    /// Figures of the hooks: how `audio_output` and `audio_input` invocations went.
    pub fn hook_stats(&self) -> HookStats {
        self.inner.counters.snapshot()
    }
}

/// How the hooks went since the authority was made.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct HookStats {
    /// `audio_output` invocations submitted.
    pub blocks_submitted: u64,
    /// Of those finished, the ones that failed (trap, fuel, error) and played as silence.
    pub blocks_failed: u64,
    /// Of those finished, the ones that wrote a wrong number of samples (silence too).
    pub blocks_wrong_length: u64,
    /// Writes refused: outside an `audio_output` hook, too many samples, a bad length.
    pub writes_refused: u64,
    /// Mean and largest time from submitting an `audio_output` invocation to its block
    /// entering the ring, in milliseconds.
    pub turnaround_mean_ms: f64,
    pub turnaround_max_ms: f64,
    /// `audio_input` invocations submitted.
    pub captures_submitted: u64,
}

#[derive(Default)]
struct Counters {
    blocks_submitted: AtomicU64,
    blocks_failed: AtomicU64,
    blocks_wrong_length: AtomicU64,
    writes_refused: AtomicU64,
    turnaround_count: AtomicU64,
    turnaround_sum_ns: AtomicU64,
    turnaround_max_ns: AtomicU64,
    captures_submitted: AtomicU64,
}

impl Counters {
    fn turnaround(&self, since: Instant) {
        let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.turnaround_count.fetch_add(1, Relaxed);
        self.turnaround_sum_ns.fetch_add(ns, Relaxed);
        self.turnaround_max_ns.fetch_max(ns, Relaxed);
    }

    fn snapshot(&self) -> HookStats {
        let count = self.turnaround_count.load(Relaxed);
        let sum = self.turnaround_sum_ns.load(Relaxed);
        HookStats {
            blocks_submitted: self.blocks_submitted.load(Relaxed),
            blocks_failed: self.blocks_failed.load(Relaxed),
            blocks_wrong_length: self.blocks_wrong_length.load(Relaxed),
            writes_refused: self.writes_refused.load(Relaxed),
            turnaround_mean_ms: if count == 0 {
                0.0
            } else {
                sum as f64 / count as f64 / 1e6
            },
            turnaround_max_ms: self.turnaround_max_ns.load(Relaxed) as f64 / 1e6,
            captures_submitted: self.captures_submitted.load(Relaxed),
        }
    }
}

/// What the authority shares between the node's threads, the feeder and the host calls.
struct Inner {
    backend: Box<dyn AudioBackend>,
    config: AudioConfig,
    /// The holding module's output, while its device is open. Locked by the feeder (to
    /// submit) and the lane (to stage and push); never by the device's callback.
    session: Mutex<Option<Session>>,
    feeder: Mutex<Option<feeder::Feeder>>,
    device: Mutex<Device>,
    counters: Counters,
}

enum Device {
    Idle,
    Open {
        description: String,
        stats: AudioStats,
    },
    Unavailable(String),
}

/// The holding module's side of the output ring.
struct Session {
    module: String,
    output: OutputProducer,
    /// When each submitted and unfinished `audio_output` invocation was submitted, oldest
    /// first; they fill blocks `output.next_index() ..` in this order.
    pending: VecDeque<Instant>,
    /// What the running hook wrote so far.
    staged: Vec<f32>,
    block_samples: usize,
    /// `audio_input` invocations submitted and unfinished.
    captures_in_flight: usize,
}

impl Session {
    /// Completes the oldest pending block with what its hook staged; `Err` fails the hook.
    fn finish_block(&mut self, counters: &Counters, ok: bool) -> Result<(), String> {
        let Some(submitted) = self.pending.pop_front() else {
            // An invocation submitted for a module since replaced: its block is not wanted.
            self.staged.clear();
            return Ok(());
        };
        counters.turnaround(submitted);
        let result = if ok {
            match self.output.push_block(&self.staged) {
                Ok(_) => Ok(()),
                Err(e @ BlockError::WrongLength { .. }) => {
                    counters.blocks_wrong_length.fetch_add(1, Relaxed);
                    Err(format!("audio_output {e}"))
                }
                Err(e) => Err(e.to_string()),
            }
        } else {
            counters.blocks_failed.fetch_add(1, Relaxed);
            // The room was checked when the block was submitted, and only this lane pushes.
            self.output
                .push_silence()
                .map(drop)
                .map_err(|e| e.to_string())
        };
        self.staged.clear();
        result
    }
}

impl AuthorityProvider for AudioAuthority {
    fn kind(&self) -> Kind {
        Kind::Audio
    }

    fn imports(&self) -> Option<&'static str> {
        Some(IMPORTS)
    }

    fn link(&self, linker: &mut Linker<HostState>) -> Result<(), LoadError> {
        host::link(&self.inner, linker)
    }

    /// Audio must never wait for the worker pool.
    fn lane(&self) -> Lane {
        Lane::Thread
    }

    fn admit(&self, schema: &ModuleSchema) -> Result<(), String> {
        let outputs: Vec<&str> = schema
            .reducers
            .iter()
            .filter(|r| r.on == Some(Event::AudioOutput))
            .map(|r| r.name.as_str())
            .collect();
        if outputs.len() > 1 {
            return Err(format!(
                "module `{}` has {} audio_output hooks ({}); the Audio authority's module may \
                 have one, which writes each block: merge them",
                schema.name,
                outputs.len(),
                outputs.join(", ")
            ));
        }
        Ok(())
    }

    fn attach(&self, holder: Holder) -> Result<(), String> {
        feeder::start(&self.inner, holder)
    }

    fn detach(&self, module: &str) {
        feeder::stop(&self.inner, Some(module));
    }

    fn finish_hook(&self, module: &str, event: &Event, ok: bool) -> Result<(), String> {
        let mut session = self.inner.session.lock();
        let Some(session) = session.as_mut().filter(|s| s.module == module) else {
            return Ok(());
        };
        match event {
            Event::AudioOutput => session.finish_block(&self.inner.counters, ok),
            Event::AudioInput => {
                session.captures_in_flight = session.captures_in_flight.saturating_sub(1);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn stats(&self) -> Vec<(String, String)> {
        let mut out = vec![(
            "device".to_owned(),
            match self.device() {
                Ok(description) => description,
                Err(why) => format!("none ({why})"),
            },
        )];
        let Some(stats) = self.engine_stats() else {
            return out;
        };
        let snapshot = stats.snapshot();
        let o = snapshot.output;
        let hooks = self.hook_stats();
        let mut add = |label: &str, value: String| out.push((label.to_owned(), value));
        add(
            "block",
            format!(
                "{} frames ({:.1} ms)",
                o.block_frames,
                o.format.millis(u64::from(o.block_frames))
            ),
        );
        add(
            "ring fill",
            format!(
                "{} of {} frames",
                o.ring_fill_frames, o.ring_capacity_frames
            ),
        );
        add("output latency", format!("{:.1} ms", o.output_latency_ms));
        add(
            "underruns",
            format!("{} ({} frames of silence)", o.underruns, o.underrun_frames),
        );
        add(
            "blocks",
            format!(
                "{} from the hook, {} silenced ({} failed, {} of a wrong length)",
                o.blocks_pushed, o.blocks_silenced, hooks.blocks_failed, hooks.blocks_wrong_length
            ),
        );
        add("samples fixed", o.samples_fixed.to_string());
        add(
            "hook turnaround",
            format!(
                "mean {:.2} ms, max {:.2} ms",
                hooks.turnaround_mean_ms, hooks.turnaround_max_ms
            ),
        );
        add(
            "capture",
            match snapshot.capture {
                Some(c) => format!(
                    "{} buffers, {} overruns ({} frames dropped)",
                    c.buffers_taken, c.overruns, c.overrun_frames
                ),
                None => "none".to_owned(),
            },
        );
        add(
            "device errors",
            (o.device_errors + snapshot.capture.map_or(0, |c| c.device_errors)).to_string(),
        );
        out
    }
}
