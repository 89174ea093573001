//! The Gpu and Input authorities: the engine, the render loop and the window plugged into a
//! node through the runtime's authority seam (`AuthorityProvider`).
//!
//! [`WindowPlatform`] is one node's platform: one engine, one render loop (a window or
//! off-screen), the module holding `Gpu` and the module holding `Input` (often the same).
//! Its [`authorities`](WindowPlatform::authorities) go into `NodeConfig::authorities`; the
//! embedder then runs the loop ([`WindowPlatform::run_window`] on the main thread, or
//! [`WindowPlatform::run_headless`]).
//!
//! A frame: the loop's pacer hands out frame `n` and the driver submits `Event::Render` through
//! the holder's `EventSink`; the node runs the module's `render` hook on the gpu lane; its first
//! frame command begins the frame's recording; the runtime then calls `finish_hook` on the same
//! thread, which ends the frame (encode, submit, hand it to the present step) or aborts it if
//! the hook failed or any GPU call of the hook did. Then the loop may hand out `n + 1`.
//!
//! Locks: `gpu` before the engine, never the other way; nothing here is locked while it calls
//! into the node (`EventSink::submit`), which takes the node's own locks.

mod gpu_calls;
mod input_calls;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use interstice_abi::{Authority as Kind, Event, ModuleSchema, Value, encode};
use interstice_runtime::authority::{AuthorityProvider, Holder, Lane};
use interstice_runtime::wasm::HostState;
use interstice_runtime::wasmtime::Linker;
use interstice_runtime::{EventSink, LoadError};
use parking_lot::Mutex;

use crate::engine::{EngineConfig, GpuEngine};
use crate::error::{GpuError, Result};
use crate::frame::FrameInfo;
use crate::input::{InputEvent, InputState};
use crate::lane::{Driver, HeadlessConfig, HeadlessLoop, LoopStats, LoopWaker, SharedEngine};
use crate::present::Image;
use crate::resources::{OwnerId, Usage};
use crate::window::{WindowConfig, WindowLoop};

pub use input_calls::{input_event_value, input_state_value};

/// The import namespace of the Gpu host calls.
pub const GPU_IMPORTS: &str = "interstice_gpu";
/// The import namespace of the Input host calls.
pub const INPUT_IMPORTS: &str = "interstice_input";

/// How a platform renders and what it allows each module.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlatformConfig {
    /// Budgets and frame limits. By default, `EngineConfig::default()`.
    pub engine: EngineConfig,
}

/// The Gpu and Input platform of one node; cheap to clone (the clones share everything).
///
/// The node keeps its authorities, and they keep the event sinks of their modules, which keep
/// the node: a cycle. Dropping the last clone of the platform breaks it (the sinks go), so a
/// dropped node closes its store. Drop the node first.
#[derive(Clone)]
pub struct WindowPlatform {
    shared: Arc<Shared>,
    _release: Arc<ReleaseSinks>,
}

/// Drops the holders' event sinks when the embedder's last platform handle goes.
struct ReleaseSinks(Arc<Shared>);

impl Drop for ReleaseSinks {
    fn drop(&mut self) {
        self.0.gpu.lock().holder = None;
        self.0.input.lock().holder = None;
        // A render loop of its own (`headless_in_background`) ends with it.
        self.0.waker.stop();
    }
}

/// A job the embedder runs every loop turn on the loop's thread (the scheduler's driven lane,
/// once it is wired: see [`WindowPlatform::drain_lane_with`]).
pub type LaneHook = Box<dyn FnMut() + Send>;

enum EngineSlot {
    /// Headless, before a module claimed `Gpu`: nothing opened yet.
    Unopened,
    Open(SharedEngine),
    /// Opening failed; GPU calls fail with this error.
    Failed(GpuError),
}

pub(crate) struct Shared {
    windowed: bool,
    config: PlatformConfig,
    engine: Mutex<EngineSlot>,
    pub(crate) gpu: Mutex<GpuSide>,
    pub(crate) input: Mutex<InputSide>,
    waker: LoopWaker,
    /// The loop of a headless platform; `None` when windowed.
    headless: Option<HeadlessLoop>,
    /// Run the headless loop on a thread of the platform's, from the first `attach` on.
    background: Option<HeadlessConfig>,
    render_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    lane_hook: Mutex<Option<LaneHook>>,
    pub(crate) counters: Counters,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub frames_rendered: AtomicU64,
    pub frames_failed: AtomicU64,
    pub frames_empty: AtomicU64,
    pub input_events: AtomicU64,
    pub last_failure: Mutex<Option<String>>,
}

/// Who holds `Gpu` and the frame it is rendering.
#[derive(Default)]
pub(crate) struct GpuSide {
    pub holder: Option<GpuHolder>,
    next_owner: u32,
}

pub(crate) struct GpuHolder {
    pub module: String,
    pub owner: OwnerId,
    sink: EventSink,
    /// The frame handed to the module's render hook and not finished yet.
    pub due: Option<FrameInfo>,
    /// The first error of a GPU call during the current render hook: the frame fails with it.
    pub failure: Option<String>,
}

/// Who holds `Input`, and the live input state.
#[derive(Default)]
pub(crate) struct InputSide {
    pub holder: Option<(String, EventSink)>,
    pub state: InputState,
}

impl WindowPlatform {
    /// A platform that renders off-screen. Nothing is opened until a module claims `Gpu` (its
    /// `attach`) or [`run_headless`](Self::run_headless) starts: a node that never hosts a
    /// Gpu module never opens a device.
    pub fn headless(config: PlatformConfig) -> Self {
        let lane = HeadlessLoop::new();
        let waker = lane.waker();
        WindowPlatform::build(config, false, waker, Some(lane), None, EngineSlot::Unopened)
    }

    /// A headless platform that runs its own render loop (`frames` as configured there), on a
    /// thread it starts when a module first claims `Gpu`: for a node that serves whatever is
    /// published to it. The loop ends with [`stop`](Self::stop) or the last handle.
    pub fn headless_in_background(config: PlatformConfig, frames: HeadlessConfig) -> Self {
        let lane = HeadlessLoop::new();
        let waker = lane.waker();
        let slot = EngineSlot::Unopened;
        WindowPlatform::build(config, false, waker, Some(lane), Some(frames), slot)
    }

    /// A platform that shows its frames in a window of `window`'s display. Opens the device
    /// now (on the display's instance), so modules can create resources as soon as they load;
    /// then run [`run_window`](Self::run_window) on this (the main) thread.
    pub fn windowed(window: &WindowLoop, config: PlatformConfig) -> Result<Self> {
        let gpu = window.open_gpu()?;
        tracing::info!(adapter = %gpu.describe(), "GPU opened for the window");
        let engine = Arc::new(Mutex::new(GpuEngine::new(gpu, config.engine)));
        Ok(WindowPlatform::build(
            config,
            true,
            window.waker(),
            None,
            None,
            EngineSlot::Open(engine),
        ))
    }

    fn build(
        config: PlatformConfig,
        windowed: bool,
        waker: LoopWaker,
        headless: Option<HeadlessLoop>,
        background: Option<HeadlessConfig>,
        engine: EngineSlot,
    ) -> Self {
        let shared = Arc::new(Shared {
            windowed,
            config,
            engine: Mutex::new(engine),
            gpu: Mutex::new(GpuSide::default()),
            input: Mutex::new(InputSide::default()),
            waker,
            headless,
            background,
            render_thread: Mutex::new(None),
            lane_hook: Mutex::new(None),
            counters: Counters::default(),
        });
        WindowPlatform {
            _release: Arc::new(ReleaseSinks(shared.clone())),
            shared,
        }
    }

    /// The `Gpu` and `Input` authorities, for `NodeConfig::authorities`.
    pub fn authorities(&self) -> Vec<Arc<dyn AuthorityProvider>> {
        vec![
            Arc::new(GpuAuthority(self.shared.clone())),
            Arc::new(InputAuthority(self.shared.clone())),
        ]
    }

    /// Opens the device now rather than when a module first claims `Gpu`, and describes its
    /// adapter. Without one, the error says what to install.
    pub fn open_gpu(&self) -> Result<String> {
        Ok(self.shared.engine()?.lock().gpu().describe())
    }

    /// Whether frames go to a window.
    pub fn is_windowed(&self) -> bool {
        self.shared.windowed
    }

    /// Runs the window until it is closed (or [`stop`](Self::stop)): frames go to the
    /// module holding `Gpu`, input to the module holding `Input`. Closing the window stops the
    /// render loop, not the node. Call on the thread that made `window` (the main thread).
    pub fn run_window(&self, window: WindowLoop, config: WindowConfig) -> Result<LoopStats> {
        let engine = self.shared.engine()?;
        let mut driver = NodeDriver(self.shared.clone());
        window.run(config, &engine, &mut driver)
    }

    /// Renders off-screen on this thread until `config.frames` frames have ended (every frame
    /// when `None`) or [`stop`](Self::stop) is called. Frame times are `number / rate`.
    pub fn run_headless(&self, config: &HeadlessConfig) -> Result<LoopStats> {
        let Some(lane) = &self.shared.headless else {
            return Err(GpuError::Window(
                "this platform shows its frames in a window: use run_window".into(),
            ));
        };
        let engine = self.shared.engine()?;
        let mut driver = NodeDriver(self.shared.clone());
        lane.run(&engine, config, &mut driver)
    }

    /// Stops the render loop after its current turn (closes the window). For good: a stopped
    /// headless loop does not run again.
    pub fn stop(&self) {
        self.shared.waker.stop();
    }

    /// Runs `hook` on the render loop's thread every turn. This is where a scheduler drains
    /// the jobs of a lane driven by that thread (`Lane::Driven`): the window's loop is winit's,
    /// on the main thread, and it turns at once when the waker is rung.
    pub fn drain_lane_with(&self, hook: LaneHook) {
        *self.shared.lane_hook.lock() = Some(hook);
    }

    /// What the loop's thread wakes with (e.g. after queueing lane jobs).
    pub fn waker(&self) -> LoopWaker {
        self.shared.waker.clone()
    }

    /// Delivers an input event as the window does: folds it into the live input state and
    /// submits it to the `input` hook of the module holding `Input` (sequenced, timestamped and
    /// logged by the node). Returns how many hooks it went to (0 when no module holds `Input`).
    /// Tests use it to inject input without a window.
    pub fn deliver_input(&self, event: &InputEvent) -> usize {
        self.shared.deliver_input(event)
    }

    /// The live input state (what the `state` host call returns).
    pub fn input_state(&self) -> InputState {
        self.shared.input.lock().state.clone()
    }

    /// Reads back the newest rendered frame not read or shown yet (waits for the GPU).
    pub fn read_frame(&self) -> Result<Option<(u64, Image)>> {
        match &*self.shared.engine.lock() {
            EngineSlot::Open(engine) => engine.lock().read_frame(),
            _ => Ok(None),
        }
    }

    /// Live GPU resources of every module, and what the Gpu module holds.
    pub fn resources(&self) -> (usize, Usage) {
        self.shared.resources()
    }

    /// Frames whose render hook ended with a frame shown, failed, or drew nothing.
    pub fn frames(&self) -> FrameCounts {
        let c = &self.shared.counters;
        FrameCounts {
            rendered: c.frames_rendered.load(Ordering::Relaxed),
            failed: c.frames_failed.load(Ordering::Relaxed),
            empty: c.frames_empty.load(Ordering::Relaxed),
        }
    }

    /// Why the last failed frame failed.
    pub fn last_failure(&self) -> Option<String> {
        self.shared.counters.last_failure.lock().clone()
    }
}

/// What became of the frames handed to the render hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameCounts {
    pub rendered: u64,
    pub failed: u64,
    /// The hook recorded no command: nothing new was shown.
    pub empty: u64,
}

impl Shared {
    /// Starts the render loop of a `headless_in_background` platform, once.
    fn start_background_loop(
        self: &Arc<Self>,
        engine: SharedEngine,
    ) -> std::result::Result<(), String> {
        let Some(frames) = self.background.clone() else {
            return Ok(());
        };
        let mut thread = self.render_thread.lock();
        if thread.is_some() {
            return Ok(());
        }
        let shared = self.clone();
        let handle = std::thread::Builder::new()
            .name("interstice-render".into())
            .spawn(move || {
                let Some(lane) = &shared.headless else {
                    return;
                };
                let mut driver = NodeDriver(shared.clone());
                if let Err(e) = lane.run(&engine, &frames, &mut driver) {
                    tracing::error!(error = %e, "the render loop stopped");
                }
            })
            .map_err(|e| format!("cannot start the render loop: {e}"))?;
        *thread = Some(handle);
        Ok(())
    }

    fn resources(&self) -> (usize, Usage) {
        let gpu = self.gpu.lock();
        match &*self.engine.lock() {
            EngineSlot::Open(engine) => {
                let engine = engine.lock();
                let usage = gpu
                    .holder
                    .as_ref()
                    .map(|h| engine.usage(h.owner))
                    .unwrap_or_default();
                (engine.resources().live(), usage)
            }
            _ => (0, Usage::default()),
        }
    }

    /// The engine, opened on first use when headless.
    pub(crate) fn engine(&self) -> Result<SharedEngine> {
        let mut slot = self.engine.lock();
        match &*slot {
            EngineSlot::Open(engine) => return Ok(engine.clone()),
            EngineSlot::Failed(e) => return Err(e.clone()),
            EngineSlot::Unopened => {}
        }
        match GpuEngine::headless(self.config.engine) {
            Ok(engine) => {
                tracing::info!(adapter = %engine.gpu().describe(), "GPU opened off-screen");
                let engine = Arc::new(Mutex::new(engine));
                *slot = EngineSlot::Open(engine.clone());
                Ok(engine)
            }
            Err(e) => {
                *slot = EngineSlot::Failed(e.clone());
                Err(e)
            }
        }
    }

    /// Submits frame `frame`, which the loop handed out, to the Gpu module's render hook, or
    /// gives it back at once when there is no hook to run it.
    fn submit_frame(&self, engine: &SharedEngine, frame: FrameInfo) {
        let sink = {
            let mut gpu = self.gpu.lock();
            match gpu.holder.as_mut() {
                Some(holder) => {
                    holder.due = Some(frame);
                    holder.failure = None;
                    Some(holder.sink.clone())
                }
                None => None,
            }
        };
        let submitted = sink.map(|sink| sink.submit(&Event::Render, frame_args(frame)));
        match submitted {
            Some(Ok(n)) if n > 0 => {}
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!(error = %e, "a frame could not be submitted");
                }
                let mut gpu = self.gpu.lock();
                if let Some(holder) = gpu.holder.as_mut() {
                    holder.due = None;
                }
                engine.lock().abort_frame();
            }
        }
    }

    /// Ends the frame of `module`'s render hook: shown if the hook and every GPU call in it
    /// succeeded, else dropped (the previous frame stays) and the invocation fails.
    fn finish_render(&self, module: &str, ok: bool) -> std::result::Result<(), String> {
        let outcome = {
            let mut gpu = self.gpu.lock();
            let Some(holder) = gpu.holder.as_mut().filter(|h| h.module == module) else {
                // Detached meanwhile: its resources and frame were released with it.
                return Ok(());
            };
            let Some(due) = holder.due.take() else {
                return Ok(());
            };
            let failure = holder.failure.take();
            let owner = holder.owner;
            let engine = self.engine().map_err(|e| e.to_string())?;
            let mut engine = engine.lock();
            let recorded = engine.recording_owner() == Some(owner);
            match failure {
                // The node reports the hook's own error (often this GPU failure, returned).
                _ if !ok => {
                    engine.abort_frame();
                    Outcome::Failed {
                        fail_invocation: false,
                        reason: failure.unwrap_or_else(|| "the render hook failed".into()),
                    }
                }
                Some(reason) => {
                    engine.abort_frame();
                    Outcome::Failed {
                        fail_invocation: true,
                        reason,
                    }
                }
                None if !recorded => {
                    engine.abort_frame();
                    Outcome::Empty
                }
                None => match engine.end_frame(owner) {
                    Ok(_) => Outcome::Rendered,
                    Err(e) => Outcome::Failed {
                        fail_invocation: true,
                        reason: format!("frame {}: {e}", due.number),
                    },
                },
            }
        };
        let c = &self.counters;
        // Counted before the loop wakes, so whoever waits for the loop sees the frame counted.
        let result = match outcome {
            Outcome::Rendered => {
                c.frames_rendered.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Outcome::Empty => {
                c.frames_empty.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Outcome::Failed {
                fail_invocation,
                reason,
            } => {
                c.frames_failed.fetch_add(1, Ordering::Relaxed);
                *c.last_failure.lock() = Some(reason.clone());
                if fail_invocation { Err(reason) } else { Ok(()) }
            }
        };
        self.waker.wake();
        result
    }

    fn deliver_input(&self, event: &InputEvent) -> usize {
        let sink = {
            let mut input = self.input.lock();
            input.state.apply(event);
            input.holder.as_ref().map(|(_, sink)| sink.clone())
        };
        self.counters.input_events.fetch_add(1, Ordering::Relaxed);
        let Some(sink) = sink else {
            return 0;
        };
        match sink.submit(&Event::Input, encode(&input_event_value(event))) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "an input event could not be submitted");
                0
            }
        }
    }
}

enum Outcome {
    Rendered,
    Empty,
    /// The frame was dropped; the invocation fails with `reason` unless it failed already.
    Failed {
        fail_invocation: bool,
        reason: String,
    },
}

/// The `render` hook's argument: `FrameInfo { number, width, height, time }`, time in µs.
fn frame_args(frame: FrameInfo) -> Vec<u8> {
    encode(&Value::Struct(vec![
        Value::U64(frame.number),
        Value::U32(frame.width),
        Value::U32(frame.height),
        Value::I64(i64::try_from(frame.time_ns / 1000).unwrap_or(i64::MAX)),
    ]))
}

/// The loops' driver: frames go to the node, input too, and the lane hook runs every turn.
struct NodeDriver(Arc<Shared>);

impl Driver for NodeDriver {
    fn frame_due(&mut self, engine: &SharedEngine, frame: FrameInfo) {
        self.0.submit_frame(engine, frame);
    }

    fn drain(&mut self, _engine: &SharedEngine) {
        if let Some(hook) = self.0.lane_hook.lock().as_mut() {
            hook();
        }
    }

    fn input(&mut self, event: &InputEvent, _state: &InputState) {
        self.0.deliver_input(event);
    }
}

/// The `Gpu` authority: the render loop and the `interstice_gpu` host calls.
struct GpuAuthority(Arc<Shared>);

impl AuthorityProvider for GpuAuthority {
    fn kind(&self) -> Kind {
        Kind::Gpu
    }

    fn imports(&self) -> Option<&'static str> {
        Some(GPU_IMPORTS)
    }

    fn link(&self, linker: &mut Linker<HostState>) -> std::result::Result<(), LoadError> {
        gpu_calls::link(linker, &self.0)
    }

    fn lane(&self) -> Lane {
        // A window's loop is winit's, on the main thread; until the scheduler drains a lane
        // from an embedder's thread, `Driven` runs like `Thread` (the engine is shared, so
        // either works).
        if self.0.windowed {
            Lane::Driven
        } else {
            Lane::Thread
        }
    }

    fn admit(&self, schema: &ModuleSchema) -> std::result::Result<(), String> {
        let hooks: Vec<&str> = schema
            .reducers
            .iter()
            .filter(|r| r.on == Some(Event::Render))
            .map(|r| r.name.as_str())
            .collect();
        if hooks.len() > 1 {
            return Err(format!(
                "a Gpu module has one render hook, and `{}` has {}: {}; draw everything from one",
                schema.name,
                hooks.len(),
                hooks.join(", ")
            ));
        }
        Ok(())
    }

    fn attach(&self, holder: Holder) -> std::result::Result<(), String> {
        {
            let mut gpu = self.0.gpu.lock();
            gpu.next_owner += 1;
            let owner = OwnerId(gpu.next_owner);
            gpu.holder = Some(GpuHolder {
                module: holder.module,
                owner,
                sink: holder.events,
                due: None,
                failure: None,
            });
        }
        // The loop may hand out frames now.
        self.0.waker.wake();
        let engine = self.0.engine().map_err(|e| e.to_string())?;
        self.0.start_background_loop(engine)
    }

    fn detach(&self, module: &str) {
        let mut gpu = self.0.gpu.lock();
        let Some(holder) = gpu.holder.take_if(|h| h.module == module) else {
            return;
        };
        if let EngineSlot::Open(engine) = &*self.0.engine.lock() {
            let mut engine = engine.lock();
            if holder.due.is_some() {
                engine.abort_frame();
            }
            let released = engine.release_owner(holder.owner);
            tracing::info!(
                module,
                resources = released.resources,
                bytes = released.bytes,
                "GPU resources released"
            );
        }
        drop(gpu);
        self.0.waker.wake();
    }

    fn finish_hook(
        &self,
        module: &str,
        event: &Event,
        ok: bool,
    ) -> std::result::Result<(), String> {
        match event {
            Event::Render => self.0.finish_render(module, ok),
            _ => Ok(()),
        }
    }

    fn stats(&self) -> Vec<(String, String)> {
        let c = &self.0.counters;
        let mut stats = vec![
            (
                "frames rendered".to_owned(),
                c.frames_rendered.load(Ordering::Relaxed).to_string(),
            ),
            (
                "frames failed".to_owned(),
                c.frames_failed.load(Ordering::Relaxed).to_string(),
            ),
        ];
        let (live, usage) = self.0.resources();
        stats.push(("resources".to_owned(), live.to_string()));
        stats.push(("module GPU bytes".to_owned(), usage.bytes.to_string()));
        if let EngineSlot::Open(engine) = &*self.0.engine.lock() {
            stats.push(("adapter".to_owned(), engine.lock().gpu().describe()));
        }
        stats
    }
}

/// The `Input` authority: input events into the ingress and the `interstice_input` host calls.
struct InputAuthority(Arc<Shared>);

impl AuthorityProvider for InputAuthority {
    fn kind(&self) -> Kind {
        Kind::Input
    }

    fn imports(&self) -> Option<&'static str> {
        Some(INPUT_IMPORTS)
    }

    fn link(&self, linker: &mut Linker<HostState>) -> std::result::Result<(), LoadError> {
        input_calls::link(linker, &self.0)
    }

    fn attach(&self, holder: Holder) -> std::result::Result<(), String> {
        self.0.input.lock().holder = Some((holder.module, holder.events));
        Ok(())
    }

    fn detach(&self, module: &str) {
        let mut input = self.0.input.lock();
        if input.holder.as_ref().is_some_and(|(m, _)| m == module) {
            input.holder = None;
        }
    }

    fn stats(&self) -> Vec<(String, String)> {
        vec![(
            "input events".to_owned(),
            self.0
                .counters
                .input_events
                .load(Ordering::Relaxed)
                .to_string(),
        )]
    }
}

#[cfg(test)]
mod tests {
    use interstice_abi::platform::{self, FRAME_INFO};
    use interstice_abi::{Type, TypeRegistry, decode};

    use super::*;

    #[test]
    fn the_render_hook_gets_the_abi_frame_info_with_its_time_in_microseconds() {
        let frame = FrameInfo {
            number: 3,
            width: 64,
            height: 48,
            time_ns: 50_000_999,
        };
        let registry = TypeRegistry::new(platform::definitions(FRAME_INFO).unwrap()).unwrap();
        let value = decode(
            &frame_args(frame),
            &Type::Named(FRAME_INFO.into()),
            &registry,
        )
        .unwrap();
        assert_eq!(
            value,
            Value::Struct(vec![
                Value::U64(3),
                Value::U32(64),
                Value::U32(48),
                Value::I64(50_000),
            ])
        );
    }
}
