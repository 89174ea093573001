//! Off-screen frame textures, reading them back (pixels, PNG), and showing them on a surface.
//!
//! Frames render into a ring of three off-screen textures. The render lane takes a free one,
//! renders, and marks it ready; a present thread takes the newest ready frame, acquires the
//! surface texture (which may wait for vsync), draws the frame into it and presents. So the
//! lane that runs render invocations never waits for the display. With one frame rendering,
//! one being shown and one ready, a free texture always exists; a ready frame that was never
//! shown is dropped when a newer one is ready (mailbox).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::error::{GpuError, Result};
use crate::gpu::{FRAME_FORMAT, Gpu};

const RING: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Free,
    Rendering,
    Ready(u64),
    Presenting,
}

#[derive(Debug)]
struct Slot {
    state: SlotState,
    target: Option<(wgpu::Texture, wgpu::TextureView)>,
}

#[derive(Debug)]
struct RingState {
    slots: Vec<Slot>,
    resize: Option<(u32, u32)>,
    stop: bool,
    presented: u64,
    last_error: Option<String>,
}

#[derive(Debug)]
struct RingShared {
    state: Mutex<RingState>,
    changed: Condvar,
}

/// The frame textures shared by the render lane and the present step.
#[derive(Debug, Clone)]
pub struct FrameRing {
    shared: Arc<RingShared>,
}

/// A frame texture the lane renders into.
#[derive(Debug)]
pub struct FrameSlot {
    index: usize,
    pub texture: wgpu::Texture,
    pub view: wgpu::TextureView,
}

impl Default for FrameRing {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameRing {
    pub fn new() -> Self {
        let slots = (0..RING)
            .map(|_| Slot {
                state: SlotState::Free,
                target: None,
            })
            .collect();
        FrameRing {
            shared: Arc::new(RingShared {
                state: Mutex::new(RingState {
                    slots,
                    resize: None,
                    stop: false,
                    presented: 0,
                    last_error: None,
                }),
                changed: Condvar::new(),
            }),
        }
    }

    /// A free frame texture of `width × height`, made anew if the size changed. Never waits.
    pub fn acquire(&self, gpu: &Gpu, width: u32, height: u32) -> Result<FrameSlot> {
        let max = gpu.device.limits().max_texture_dimension_2d;
        if width == 0 || height == 0 || width > max || height > max {
            return Err(GpuError::Invalid(format!(
                "frame size {width}×{height} is outside 1..={max} on this device"
            )));
        }
        let mut state = self.shared.state.lock();
        let index = state
            .slots
            .iter()
            .position(|s| s.state == SlotState::Free)
            .ok_or_else(|| GpuError::Internal {
                during: "acquiring a frame texture".into(),
                message: "no free frame texture: a frame began before the last one ended".into(),
            })?;
        let slot = &mut state.slots[index];
        let fits =
            matches!(&slot.target, Some((t, _)) if t.width() == width && t.height() == height);
        if !fits {
            let texture = gpu.scoped("creating the frame texture", || {
                gpu.device.create_texture(&wgpu::TextureDescriptor {
                    label: Some("frame"),
                    size: wgpu::Extent3d {
                        width,
                        height,
                        depth_or_array_layers: 1,
                    },
                    mip_level_count: 1,
                    sample_count: 1,
                    dimension: wgpu::TextureDimension::D2,
                    format: FRAME_FORMAT,
                    usage: wgpu::TextureUsages::RENDER_ATTACHMENT
                        | wgpu::TextureUsages::TEXTURE_BINDING
                        | wgpu::TextureUsages::COPY_SRC,
                    view_formats: &[],
                })
            })?;
            let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
            slot.target = Some((texture, view));
        }
        slot.state = SlotState::Rendering;
        let Some((texture, view)) = slot.target.clone() else {
            return Err(GpuError::Internal {
                during: "acquiring a frame texture".into(),
                message: "the frame texture vanished".into(),
            });
        };
        Ok(FrameSlot {
            index,
            texture,
            view,
        })
    }

    /// The frame in `slot` is submitted: it replaces any older frame not yet shown.
    pub fn rendered(&self, slot: FrameSlot, number: u64) {
        let mut state = self.shared.state.lock();
        for s in &mut state.slots {
            if matches!(s.state, SlotState::Ready(_)) {
                s.state = SlotState::Free;
            }
        }
        state.slots[slot.index].state = SlotState::Ready(number);
        drop(state);
        self.shared.changed.notify_all();
    }

    /// The frame in `slot` failed; its texture is free again.
    pub fn abandon(&self, slot: FrameSlot) {
        self.shared.state.lock().slots[slot.index].state = SlotState::Free;
    }

    /// Whether a rendered frame waits to be shown (the pacer holds the next one back).
    pub fn pending(&self) -> bool {
        let state = self.shared.state.lock();
        state
            .slots
            .iter()
            .any(|s| matches!(s.state, SlotState::Ready(_)))
    }

    /// Frames the present step has shown.
    pub fn presented(&self) -> u64 {
        self.shared.state.lock().presented
    }

    /// The last error of the present step, if any (logged as well).
    pub fn last_present_error(&self) -> Option<String> {
        self.shared.state.lock().last_error.clone()
    }

    /// Takes the newest ready frame for showing or reading back; give it back with `release`.
    fn take_ready(state: &mut RingState) -> Option<(usize, u64, wgpu::Texture, wgpu::TextureView)> {
        let (index, number) = state
            .slots
            .iter()
            .enumerate()
            .find_map(|(i, s)| match s.state {
                SlotState::Ready(n) => Some((i, n)),
                _ => None,
            })?;
        let slot = &mut state.slots[index];
        let (texture, view) = slot.target.clone()?;
        slot.state = SlotState::Presenting;
        Some((index, number, texture, view))
    }

    fn release(&self, index: usize, error: Option<String>) {
        let mut state = self.shared.state.lock();
        state.slots[index].state = SlotState::Free;
        state.presented += 1;
        if error.is_some() {
            state.last_error = error;
        }
    }

    /// Reads the newest ready frame back (headless capture): its number and pixels.
    pub fn read_ready(&self, gpu: &Gpu) -> Result<Option<(u64, Image)>> {
        let taken = Self::take_ready(&mut self.shared.state.lock());
        let Some((index, number, texture, _)) = taken else {
            return Ok(None);
        };
        let image = read_texture(gpu, &texture);
        self.release(index, image.as_ref().err().map(ToString::to_string));
        image.map(|i| Some((number, i)))
    }
}

/// RGBA8 pixels, rows top to bottom, tightly packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl Image {
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let i = ((y as usize) * (self.width as usize) + x as usize) * 4;
        let p = self.rgba.get(i..i + 4)?;
        Some([p[0], p[1], p[2], p[3]])
    }

    /// Encodes the image as an sRGB PNG.
    pub fn write_png(&self, out: impl Write) -> Result<()> {
        let png = |e: png::EncodingError| GpuError::Png(e.to_string());
        let mut encoder = png::Encoder::new(out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_source_srgb(png::SrgbRenderingIntent::Perceptual);
        let mut writer = encoder.write_header().map_err(png)?;
        writer.write_image_data(&self.rgba).map_err(png)?;
        writer.finish().map_err(png)
    }

    pub fn save_png(&self, path: &Path) -> Result<()> {
        let file = std::fs::File::create(path)
            .map_err(|e| GpuError::Png(format!("cannot create {}: {e}", path.display())))?;
        let mut out = std::io::BufWriter::new(file);
        self.write_png(&mut out)?;
        out.flush()
            .map_err(|e| GpuError::Png(format!("cannot write {}: {e}", path.display())))
    }
}

/// Copies an RGBA8 texture into memory. Waits for the GPU: for capture and tests, not for the
/// render lane's hot path.
pub fn read_texture(gpu: &Gpu, texture: &wgpu::Texture) -> Result<Image> {
    let (width, height) = (texture.width(), texture.height());
    if texture.format().block_copy_size(None) != Some(4) {
        return Err(GpuError::Readback(format!(
            "only 4-byte RGBA textures are read back, not {:?}",
            texture.format()
        )));
    }
    let row = u64::from(width) * 4;
    let align = u64::from(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT);
    let padded = row.div_ceil(align) * align;
    let size = padded * u64::from(height);
    let buffer = gpu.scoped("copying the frame for readback", || {
        let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: false,
        });
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        encoder.copy_texture_to_buffer(
            texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: u32::try_from(padded).ok(),
                    rows_per_image: Some(height),
                },
            },
            texture.size(),
        );
        gpu.queue.submit([encoder.finish()]);
        buffer
    })?;
    let (tx, rx) = std::sync::mpsc::channel();
    buffer.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    rx.recv()
        .map_err(|_| GpuError::Readback("the map callback never ran".into()))?
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    let mapped = buffer
        .get_mapped_range(..)
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    let mut rgba = Vec::with_capacity((row * u64::from(height)) as usize);
    for line in mapped.chunks(padded as usize) {
        rgba.extend_from_slice(&line[..row as usize]);
    }
    drop(mapped);
    buffer.unmap();
    Ok(Image {
        width,
        height,
        rgba,
    })
}

const BLIT_WGSL: &str = r#"
@group(0) @binding(0) var frame: texture_2d<f32>;
@group(0) @binding(1) var frame_sampler: sampler;

struct Out {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

@vertex
fn vs(@builtin(vertex_index) i: u32) -> Out {
    // One triangle that covers the screen.
    let uv = vec2<f32>(f32((i << 1u) & 2u), f32(i & 2u));
    var out: Out;
    out.position = vec4<f32>(uv.x * 2.0 - 1.0, 1.0 - uv.y * 2.0, 0.0, 1.0);
    out.uv = uv;
    return out;
}

@fragment
fn fs(in: Out) -> @location(0) vec4<f32> {
    return textureSample(frame, frame_sampler, in.uv);
}
"#;

/// Shows frames on a window's surface; lives on the present thread.
struct SurfacePresenter {
    gpu: Gpu,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::RenderPipeline,
    sampler: wgpu::Sampler,
}

impl SurfacePresenter {
    fn new(gpu: Gpu, surface: wgpu::Surface<'static>, width: u32, height: u32) -> Result<Self> {
        let caps = surface.get_capabilities(&gpu.adapter);
        // An sRGB surface shows the sRGB frame unchanged (sampling decodes, writing encodes).
        let format = caps
            .formats
            .iter()
            .copied()
            .find(wgpu::TextureFormat::is_srgb)
            .or_else(|| caps.formats.first().copied())
            .ok_or_else(|| {
                GpuError::Window("the surface supports no format on this adapter".into())
            })?;
        let config = wgpu::SurfaceConfiguration {
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
            format,
            width: width.max(1),
            height: height.max(1),
            present_mode: wgpu::PresentMode::AutoVsync,
            desired_maximum_frame_latency: 2,
            alpha_mode: caps
                .alpha_modes
                .first()
                .copied()
                .unwrap_or(wgpu::CompositeAlphaMode::Auto),
            view_formats: vec![],
            color_space: Default::default(),
        };
        let (layout, pipeline, sampler) = gpu.scoped("creating the present pipeline", || {
            let module = gpu
                .device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some("blit"),
                    source: wgpu::ShaderSource::Wgsl(BLIT_WGSL.into()),
                });
            let layout = gpu
                .device
                .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some("blit"),
                    entries: &[
                        wgpu::BindGroupLayoutEntry {
                            binding: 0,
                            visibility: wgpu::ShaderStages::FRAGMENT,
                            ty: wgpu::BindingType::Texture {
                                sample_type: wgpu::TextureSampleType::Float { filterable: true },
                                view_dimension: wgpu::TextureViewDimension::D2,
                                multisampled: false,
                            },
                            count: None,
                        },
                        wgpu::BindGroupLayoutEntry {
                            binding: 1,
                            visibility: wgpu::ShaderStages::FRAGMENT,
                            ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                            count: None,
                        },
                    ],
                });
            let pipeline_layout =
                gpu.device
                    .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                        label: Some("blit"),
                        bind_group_layouts: &[Some(&layout)],
                        immediate_size: 0,
                    });
            let pipeline = gpu
                .device
                .create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                    label: Some("blit"),
                    layout: Some(&pipeline_layout),
                    vertex: wgpu::VertexState {
                        module: &module,
                        entry_point: Some("vs"),
                        compilation_options: Default::default(),
                        buffers: &[],
                    },
                    primitive: wgpu::PrimitiveState::default(),
                    depth_stencil: None,
                    multisample: wgpu::MultisampleState::default(),
                    fragment: Some(wgpu::FragmentState {
                        module: &module,
                        entry_point: Some("fs"),
                        compilation_options: Default::default(),
                        targets: &[Some(format.into())],
                    }),
                    multiview_mask: None,
                    cache: None,
                });
            let sampler = gpu.device.create_sampler(&wgpu::SamplerDescriptor {
                label: Some("blit"),
                mag_filter: wgpu::FilterMode::Linear,
                min_filter: wgpu::FilterMode::Linear,
                ..Default::default()
            });
            (layout, pipeline, sampler)
        })?;
        surface.configure(&gpu.device, &config);
        Ok(SurfacePresenter {
            gpu,
            surface,
            config,
            layout,
            pipeline,
            sampler,
        })
    }

    fn resize(&mut self, width: u32, height: u32) {
        if width == 0 || height == 0 {
            return;
        }
        self.config.width = width;
        self.config.height = height;
        self.surface.configure(&self.gpu.device, &self.config);
    }

    /// Draws `frame` into the next surface texture and presents it; may wait for vsync.
    fn present(&mut self, frame: &wgpu::TextureView) -> Result<()> {
        let texture = match self.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(t)
            | wgpu::CurrentSurfaceTexture::Suboptimal(t) => t,
            wgpu::CurrentSurfaceTexture::Timeout | wgpu::CurrentSurfaceTexture::Occluded => {
                return Ok(());
            }
            wgpu::CurrentSurfaceTexture::Outdated | wgpu::CurrentSurfaceTexture::Lost => {
                self.surface.configure(&self.gpu.device, &self.config);
                return Ok(());
            }
            other => {
                return Err(GpuError::Window(format!(
                    "the surface refused a frame: {other:?}"
                )));
            }
        };
        let gpu = &self.gpu;
        gpu.scoped("presenting a frame", || {
            let view = texture
                .texture
                .create_view(&wgpu::TextureViewDescriptor::default());
            let group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("blit"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::TextureView(frame),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::Sampler(&self.sampler),
                    },
                ],
            });
            let mut encoder = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("present"),
                });
            {
                let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                    label: Some("present"),
                    color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                        view: &view,
                        depth_slice: None,
                        resolve_target: None,
                        ops: wgpu::Operations {
                            load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                            store: wgpu::StoreOp::Store,
                        },
                    })],
                    depth_stencil_attachment: None,
                    timestamp_writes: None,
                    occlusion_query_set: None,
                    multiview_mask: None,
                });
                pass.set_pipeline(&self.pipeline);
                pass.set_bind_group(0, &group, &[]);
                pass.draw(0..3, 0..1);
            }
            gpu.queue.submit([encoder.finish()]);
        })?;
        self.gpu.queue.present(texture);
        Ok(())
    }
}

/// The thread that shows ring frames on a surface.
#[derive(Debug)]
pub struct PresentThread {
    ring: FrameRing,
    thread: Option<JoinHandle<()>>,
}

impl PresentThread {
    /// Starts showing `ring`'s frames on `surface`; `on_presented` runs after each frame shown
    /// (the window loop's waker: the pacer may start the next frame).
    pub fn spawn(
        gpu: Gpu,
        surface: wgpu::Surface<'static>,
        size: (u32, u32),
        ring: FrameRing,
        on_presented: impl Fn() + Send + 'static,
    ) -> Result<Self> {
        let mut presenter = SurfacePresenter::new(gpu, surface, size.0, size.1)?;
        let shared = ring.shared.clone();
        let ring2 = ring.clone();
        let thread = std::thread::Builder::new()
            .name("interstice-present".into())
            .spawn(move || {
                loop {
                    let mut state = shared.state.lock();
                    loop {
                        if state.stop {
                            return;
                        }
                        if let Some((w, h)) = state.resize.take() {
                            drop(state);
                            presenter.resize(w, h);
                            state = shared.state.lock();
                            continue;
                        }
                        if let Some(taken) = FrameRing::take_ready(&mut state) {
                            drop(state);
                            let (index, number, _, view) = taken;
                            let outcome = presenter.present(&view);
                            if let Err(e) = &outcome {
                                tracing::warn!(frame = number, error = %e, "a frame was not shown");
                            }
                            ring2.release(index, outcome.err().map(|e| e.to_string()));
                            on_presented();
                            break;
                        }
                        shared.changed.wait(&mut state);
                    }
                }
            })
            .map_err(|e| GpuError::Window(format!("cannot start the present thread: {e}")))?;
        Ok(PresentThread {
            ring,
            thread: Some(thread),
        })
    }

    /// The surface is now `width × height` (applied before the next frame is shown).
    pub fn resize(&self, width: u32, height: u32) {
        self.ring.shared.state.lock().resize = Some((width, height));
        self.ring.shared.changed.notify_all();
    }

    /// Stops the thread after the frame it is showing, if any.
    pub fn stop(&mut self) {
        self.ring.shared.state.lock().stop = true;
        self.ring.shared.changed.notify_all();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the present thread panicked");
        }
    }
}

impl Drop for PresentThread {
    fn drop(&mut self) {
        self.stop();
    }
}
