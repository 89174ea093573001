//! The windowed render loop: a winit window whose surface shows the frames.
//!
//! winit's event loop must run on the main thread on several platforms, so the embedder
//! creates a [`WindowLoop`] there, opens the device on its display ([`WindowLoop::open_gpu`],
//! before the window exists, so a node can create resources as soon as it starts), and calls
//! [`WindowLoop::run`], which returns when the window closes (the process goes on). Frames are
//! handed out from the loop through the [`Driver`]; the surface is acquired and presented on
//! the present thread, so vsync never holds this thread. Other threads wake the loop with the
//! [`LoopWaker`] (a winit user event).

use std::sync::Arc;
use std::time::Instant;

use winit::application::ApplicationHandler;
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop};
use winit::window::{Window, WindowId};

use crate::error::{GpuError, Result};
use crate::gpu::{Gpu, instance_descriptor};
use crate::input::{InputEvent, InputState, translate};
use crate::lane::{Driver, LoopSignal, LoopStats, LoopWaker, SharedEngine};
use crate::pacing::{FramePacer, Pace};
use crate::present::PresentThread;

/// How the window opens.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowConfig {
    /// By default, "Interstice".
    pub title: String,
    /// Inner size in logical pixels. By default, 1280 × 720.
    pub width: u32,
    pub height: u32,
    /// Frames per second; by default, the monitor's refresh rate (60 if unknown).
    pub rate_hz: Option<f64>,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            title: "Interstice".into(),
            width: 1280,
            height: 720,
            rate_hz: None,
        }
    }
}

/// An event loop on a display; create it on the main thread.
#[derive(Debug)]
pub struct WindowLoop {
    event_loop: EventLoop<LoopSignal>,
}

impl WindowLoop {
    /// Connects to the display, or says why not (no `DISPLAY`/`WAYLAND_DISPLAY`, the server
    /// refused): the embedder then runs headless.
    pub fn new() -> Result<Self> {
        let event_loop = EventLoop::<LoopSignal>::with_user_event()
            .build()
            .map_err(|e| GpuError::Window(format!("no display to open a window on: {e}")))?;
        Ok(WindowLoop { event_loop })
    }

    pub fn waker(&self) -> LoopWaker {
        LoopWaker::window(self.event_loop.create_proxy())
    }

    /// Opens a device on this display's instance. Its adapter is chosen before the window
    /// exists; [`run`](Self::run) checks that it can present to the window's surface.
    pub fn open_gpu(&self) -> Result<Gpu> {
        let instance = wgpu::Instance::new(instance_descriptor(Some(Box::new(
            self.event_loop.owned_display_handle(),
        ))));
        Gpu::open(instance, None)
    }

    /// Opens the window, shows `engine`'s frames in it and runs until it is closed (or the
    /// waker stops the loop). `engine` must have been opened with [`open_gpu`](Self::open_gpu).
    pub fn run(
        self,
        config: WindowConfig,
        engine: &SharedEngine,
        driver: &mut dyn Driver,
    ) -> Result<LoopStats> {
        let mut app = App {
            proxy: self.waker(),
            config,
            driver,
            window: None,
            engine: engine.clone(),
            present: None,
            pacer: FramePacer::at_rate(60.0, (0, 0), false),
            input: InputState::new(),
            stats: LoopStats::default(),
            error: None,
            #[cfg(feature = "gamepad")]
            gamepads: crate::gamepad::Gamepads::open(),
        };
        self.event_loop
            .run_app(&mut app)
            .map_err(|e| GpuError::Window(format!("the window's event loop failed: {e}")))?;
        app.shut_down();
        match app.error {
            Some(e) => Err(e),
            None => {
                app.stats.skipped = app.pacer.skipped();
                Ok(app.stats)
            }
        }
    }
}

struct App<'d> {
    proxy: LoopWaker,
    config: WindowConfig,
    driver: &'d mut dyn Driver,
    window: Option<Arc<Window>>,
    engine: SharedEngine,
    present: Option<PresentThread>,
    pacer: FramePacer,
    input: InputState,
    stats: LoopStats,
    error: Option<GpuError>,
    #[cfg(feature = "gamepad")]
    gamepads: Option<crate::gamepad::Gamepads>,
}

impl App<'_> {
    fn deliver(&mut self, input: &InputEvent) {
        self.input.apply(input);
        self.driver.input(input, &self.input);
    }

    fn open(&mut self, event_loop: &ActiveEventLoop) -> Result<()> {
        let attributes = Window::default_attributes()
            .with_title(self.config.title.clone())
            .with_inner_size(winit::dpi::LogicalSize::new(
                self.config.width,
                self.config.height,
            ));
        let window = Arc::new(
            event_loop
                .create_window(attributes)
                .map_err(|e| GpuError::Window(format!("the window could not be created: {e}")))?,
        );
        let (gpu, ring) = {
            let engine = self.engine.lock();
            (engine.gpu().clone(), engine.ring().clone())
        };
        let surface = gpu
            .instance
            .create_surface(window.clone())
            .map_err(|e| GpuError::Window(format!("the window has no GPU surface: {e}")))?;
        if !gpu.adapter.is_surface_supported(&surface) {
            return Err(GpuError::Window(format!(
                "the adapter {} cannot present to this window; pick another backend with \
                 WGPU_BACKEND=vulkan|gl",
                gpu.describe()
            )));
        }
        tracing::info!(adapter = %gpu.describe(), "window opened");
        let size = window.inner_size();
        let waker = self.proxy.clone();
        let present =
            PresentThread::spawn(gpu, surface, (size.width, size.height), ring, move || {
                waker.wake()
            })?;
        let rate = self.config.rate_hz.unwrap_or_else(|| {
            window
                .current_monitor()
                .and_then(|m| m.refresh_rate_millihertz())
                .map_or(60.0, |mhz| f64::from(mhz) / 1000.0)
        });
        self.pacer = FramePacer::at_rate(rate, (size.width, size.height), false);
        self.window = Some(window);
        self.present = Some(present);
        Ok(())
    }

    /// One turn: the driver's jobs, then a frame if one is due; returns when to turn next.
    fn turn(&mut self) -> ControlFlow {
        let engine = &self.engine;
        self.driver.drain(engine);
        let pace = {
            let mut engine = engine.lock();
            // Busy while a frame renders or waits to be shown: the present thread wakes the
            // loop once it has taken the frame, which is how vsync paces rendering.
            let busy = engine.frame_outstanding().is_some() || engine.ring().pending();
            let pace = self.pacer.poll(Instant::now(), busy);
            if let Pace::Due(frame) = pace {
                engine.frame_handed_out(frame.number);
            }
            pace
        };
        match pace {
            Pace::Due(frame) => {
                self.stats.frames += 1;
                self.driver.frame_due(engine, frame);
                self.driver.drain(engine);
                ControlFlow::WaitUntil(Instant::now() + self.pacer.interval())
            }
            Pace::WaitUntil(t) => ControlFlow::WaitUntil(t),
            Pace::WaitForFrame => ControlFlow::Wait,
        }
    }

    fn shut_down(&mut self) {
        if let Some(mut present) = self.present.take() {
            present.stop();
        }
        self.window = None;
    }

    fn fail(&mut self, event_loop: &ActiveEventLoop, error: GpuError) {
        tracing::error!(%error, "the window loop stops");
        self.error = Some(error);
        self.shut_down();
        event_loop.exit();
    }
}

impl ApplicationHandler<LoopSignal> for App<'_> {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.window.is_none()
            && let Err(e) = self.open(event_loop)
        {
            self.fail(event_loop, e);
        }
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, signal: LoopSignal) {
        if signal == LoopSignal::Stop {
            self.shut_down();
            event_loop.exit();
        }
        // A wake needs nothing more: `about_to_wait` runs next and drains.
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        if event == WindowEvent::Destroyed {
            // Destroyed from outside (not closed by the user): nothing left to draw into.
            self.shut_down();
            event_loop.exit();
            return;
        }
        let Some(input) = translate(&event) else {
            return;
        };
        self.deliver(&input);
        match input {
            InputEvent::Resized { width, height } => {
                self.pacer.resize((width, height));
                if let Some(present) = &self.present {
                    present.resize(width, height);
                }
            }
            InputEvent::CloseRequested => {
                self.shut_down();
                event_loop.exit();
            }
            _ => {}
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        // Controllers do not wake the loop; they are polled every turn, at least once a frame.
        #[cfg(feature = "gamepad")]
        if let Some(mut pads) = self.gamepads.take() {
            pads.poll(|e| self.deliver(&e));
            self.gamepads = Some(pads);
        }
        if self.window.is_some() {
            event_loop.set_control_flow(self.turn());
        }
    }

    fn exiting(&mut self, _: &ActiveEventLoop) {
        self.shut_down();
    }
}
