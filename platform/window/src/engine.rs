//! The Gpu authority's engine: one method per host call, plain checked values in, a handle or
//! a typed error out.
//!
//! Every method names the calling module (`OwnerId`); handles are checked against it. Every
//! wgpu call a module can influence runs inside error scopes (`Gpu::scoped`), so what wgpu
//! refuses fails that call with wgpu's message and the device goes on.

use crate::error::{GpuError, Result, invalid};
use crate::frame::{DEFAULT_MAX_COMMANDS, FrameInfo, FrameRecording};
use crate::gpu::{FRAME_FORMAT, Gpu};
use crate::present::{FrameRing, Image};
use crate::resources::{
    Budget, OwnerId, Released, Resource, ResourceKind, ResourceTable, Usage, VertexSlot,
};

/// Buffer usage bits a module passes to `create_buffer` (any combination).
pub mod buffer_usage {
    pub const VERTEX: u32 = 1;
    pub const INDEX: u32 = 2;
    pub const UNIFORM: u32 = 4;
    pub const STORAGE: u32 = 8;
}

/// Texture usage bits a module passes to `create_texture`.
pub mod texture_usage {
    /// Sampled or loaded in shaders.
    pub const SAMPLED: u32 = 1;
    /// Drawn into by a pass.
    pub const RENDER_ATTACHMENT: u32 = 2;
}

/// Texture formats by the number a module passes.
pub fn texture_format(code: u32) -> Result<wgpu::TextureFormat> {
    Ok(match code {
        0 => FRAME_FORMAT,
        1 => wgpu::TextureFormat::Rgba8Unorm,
        2 => wgpu::TextureFormat::R8Unorm,
        3 => wgpu::TextureFormat::Rgba16Float,
        4 => wgpu::TextureFormat::R32Float,
        _ => {
            return Err(invalid(format!(
                "texture format {code} is unknown; use 0 (rgba8 sRGB, the frame's), 1 (rgba8), \
                 2 (r8), 3 (rgba16 float) or 4 (r32 float)"
            )));
        }
    })
}

/// Vertex attribute formats by the number a module passes.
pub fn vertex_format(code: u32) -> Result<wgpu::VertexFormat> {
    use wgpu::VertexFormat as F;
    const FORMATS: [F; 13] = [
        F::Float32,
        F::Float32x2,
        F::Float32x3,
        F::Float32x4,
        F::Uint32,
        F::Uint32x2,
        F::Uint32x3,
        F::Uint32x4,
        F::Sint32,
        F::Sint32x2,
        F::Sint32x3,
        F::Sint32x4,
        F::Unorm8x4,
    ];
    FORMATS.get(code as usize).copied().ok_or_else(|| {
        invalid(format!(
            "vertex format {code} is unknown; use 0..=3 (f32 ×1..4), 4..=7 (u32 ×1..4), \
             8..=11 (i32 ×1..4) or 12 (unorm8 ×4)"
        ))
    })
}

/// One attribute of a vertex buffer layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VertexAttributeDesc {
    pub format: u32,
    pub offset: u64,
    pub location: u32,
}

/// One vertex buffer a pipeline reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VertexBufferDesc {
    pub stride: u64,
    pub per_instance: bool,
    pub attributes: Vec<VertexAttributeDesc>,
}

/// A render pipeline as a module describes it; bind group layouts come from the shader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineDesc {
    pub shader: u64,
    pub vertex_entry: String,
    pub fragment_entry: String,
    pub vertex_buffers: Vec<VertexBufferDesc>,
    /// 0 triangle list, 1 triangle strip, 2 line list, 3 line strip, 4 point list.
    pub topology: u32,
    /// A `texture_format` code: 0 draws to the frame.
    pub target_format: u32,
    /// Alpha blending ("over") instead of replacing.
    pub alpha_blend: bool,
}

/// One entry of a bind group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindingDesc {
    /// `size == 0`: to the end of the buffer.
    Buffer {
        binding: u32,
        buffer: u64,
        offset: u64,
        size: u64,
    },
    Texture {
        binding: u32,
        texture: u64,
    },
    Sampler {
        binding: u32,
        sampler: u64,
    },
}

/// Limits of the engine that are not per module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Each module's budget unless set otherwise. By default, `Budget::default()`.
    pub budget: Budget,
    /// Commands one frame may record. By default, 65 536.
    pub max_commands: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            budget: Budget::default(),
            max_commands: DEFAULT_MAX_COMMANDS,
        }
    }
}

/// What `end_frame` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameDone {
    pub number: u64,
    pub commands: usize,
}

/// The GPU state of a node: the device, every module's resources, the frame being recorded
/// and the frame textures. Lives on the GPU lane's thread (error scopes are per thread).
#[derive(Debug)]
pub struct GpuEngine {
    gpu: Gpu,
    table: ResourceTable,
    ring: FrameRing,
    recording: Option<FrameRecording>,
    frame_due: Option<u64>,
    config: EngineConfig,
}

impl GpuEngine {
    pub fn new(gpu: Gpu, config: EngineConfig) -> Self {
        GpuEngine {
            table: ResourceTable::new(config.budget),
            gpu,
            ring: FrameRing::new(),
            recording: None,
            frame_due: None,
            config,
        }
    }

    /// Opens the first adapter found, off-screen.
    pub fn headless(config: EngineConfig) -> Result<Self> {
        Ok(GpuEngine::new(Gpu::headless()?, config))
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    pub fn ring(&self) -> &FrameRing {
        &self.ring
    }

    pub fn resources(&self) -> &ResourceTable {
        &self.table
    }

    pub fn set_budget(&mut self, owner: OwnerId, budget: Budget) {
        self.table.set_budget(owner, budget);
    }

    pub fn usage(&self, owner: OwnerId) -> Usage {
        self.table.usage(owner)
    }

    /// Frees everything `owner` holds, and drops its frame if it was recording one: call when
    /// its module is removed or before it is upgraded.
    pub fn release_owner(&mut self, owner: OwnerId) -> Released {
        if self.recording.as_ref().is_some_and(|r| r.owner() == owner) {
            self.recording = None;
            self.frame_due = None;
        }
        self.table.release_all(owner)
    }

    /// Frees one resource (any kind).
    pub fn destroy(&mut self, owner: OwnerId, handle: u64) -> Result<()> {
        self.table.free(owner, handle).map(|_| ())
    }

    pub fn create_shader_module(&mut self, owner: OwnerId, wgsl: &str) -> Result<u64> {
        self.table.admit(owner, 0)?;
        let gpu = &self.gpu;
        let module = gpu.scoped("compiling the WGSL shader", || {
            gpu.device
                .create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some("module shader"),
                    source: wgpu::ShaderSource::Wgsl(wgsl.into()),
                })
        })?;
        self.insert(owner, 0, Resource::ShaderModule(module))
    }

    /// A buffer of `size` bytes (a multiple of 4) with `buffer_usage` bits; always writable.
    pub fn create_buffer(&mut self, owner: OwnerId, size: u64, usage: u32) -> Result<u64> {
        let max = self.gpu.device.limits().max_buffer_size;
        if size == 0 || !size.is_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT) || size > max {
            return Err(invalid(format!(
                "buffer size {size} must be a non-zero multiple of 4 of at most {max} bytes"
            )));
        }
        if usage == 0 || usage & !0xF != 0 {
            return Err(invalid(format!(
                "buffer usage {usage:#x} is unknown; combine VERTEX 1, INDEX 2, UNIFORM 4, STORAGE 8"
            )));
        }
        let mut wgpu_usage = wgpu::BufferUsages::COPY_DST;
        for (bit, u) in [
            (buffer_usage::VERTEX, wgpu::BufferUsages::VERTEX),
            (buffer_usage::INDEX, wgpu::BufferUsages::INDEX),
            (buffer_usage::UNIFORM, wgpu::BufferUsages::UNIFORM),
            (buffer_usage::STORAGE, wgpu::BufferUsages::STORAGE),
        ] {
            if usage & bit != 0 {
                wgpu_usage |= u;
            }
        }
        self.table.admit(owner, size)?;
        let gpu = &self.gpu;
        let buffer = gpu.scoped("creating a buffer", || {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("module buffer"),
                size,
                usage: wgpu_usage,
                mapped_at_creation: false,
            })
        })?;
        self.insert(
            owner,
            size,
            Resource::Buffer {
                buffer,
                usage: wgpu_usage,
            },
        )
    }

    /// Writes `data` at `offset` (both multiples of 4) into a buffer.
    pub fn write_buffer(
        &mut self,
        owner: OwnerId,
        buffer: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<()> {
        let Resource::Buffer { buffer: b, .. } =
            self.table.get(owner, buffer, ResourceKind::Buffer)?
        else {
            return Err(kind_mismatch());
        };
        let len = data.len() as u64;
        let end = offset.checked_add(len);
        if !matches!(end, Some(end) if end <= b.size()) {
            return Err(invalid(format!(
                "write of {len} bytes at offset {offset} is outside buffer {buffer:#x} of {} bytes",
                b.size()
            )));
        }
        if !offset.is_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT)
            || !len.is_multiple_of(wgpu::COPY_BUFFER_ALIGNMENT)
        {
            return Err(invalid(format!(
                "buffer writes need an offset and a length that are multiples of 4, not {offset} and {len}"
            )));
        }
        let gpu = &self.gpu;
        gpu.scoped("writing a buffer", || {
            gpu.queue.write_buffer(b, offset, data)
        })
    }

    /// A 2D texture; `format` is a `texture_format` code, `usage` `texture_usage` bits.
    pub fn create_texture(
        &mut self,
        owner: OwnerId,
        width: u32,
        height: u32,
        format: u32,
        usage: u32,
    ) -> Result<u64> {
        let format = texture_format(format)?;
        let max = self.gpu.device.limits().max_texture_dimension_2d;
        if width == 0 || height == 0 || width > max || height > max {
            return Err(invalid(format!(
                "texture size {width}×{height} is outside 1..={max} on this device"
            )));
        }
        if usage & !0x3 != 0 {
            return Err(invalid(format!(
                "texture usage {usage:#x} is unknown; combine SAMPLED 1, RENDER_ATTACHMENT 2"
            )));
        }
        let mut wgpu_usage = wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::COPY_SRC;
        if usage & texture_usage::SAMPLED != 0 {
            wgpu_usage |= wgpu::TextureUsages::TEXTURE_BINDING;
        }
        if usage & texture_usage::RENDER_ATTACHMENT != 0 {
            wgpu_usage |= wgpu::TextureUsages::RENDER_ATTACHMENT;
        }
        let bytes = texture_bytes(width, height, format);
        self.table.admit(owner, bytes)?;
        let gpu = &self.gpu;
        let texture = gpu.scoped("creating a texture", || {
            gpu.device.create_texture(&wgpu::TextureDescriptor {
                label: Some("module texture"),
                size: wgpu::Extent3d {
                    width,
                    height,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu_usage,
                view_formats: &[],
            })
        })?;
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        self.insert(owner, bytes, Resource::Texture { texture, view })
    }

    /// Replaces a texture's pixels: `data` is every row, top to bottom, tightly packed.
    pub fn write_texture(&mut self, owner: OwnerId, texture: u64, data: &[u8]) -> Result<()> {
        let Resource::Texture { texture: t, .. } =
            self.table.get(owner, texture, ResourceKind::Texture)?
        else {
            return Err(kind_mismatch());
        };
        let texel = u64::from(t.format().block_copy_size(None).unwrap_or(4));
        let row = u64::from(t.width()) * texel;
        let expected = row * u64::from(t.height());
        if data.len() as u64 != expected {
            return Err(invalid(format!(
                "texture {texture:#x} of {}×{} takes exactly {expected} bytes, not {}",
                t.width(),
                t.height(),
                data.len()
            )));
        }
        let gpu = &self.gpu;
        gpu.scoped("writing a texture", || {
            gpu.queue.write_texture(
                t.as_image_copy(),
                data,
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: u32::try_from(row).ok(),
                    rows_per_image: Some(t.height()),
                },
                t.size(),
            )
        })
    }

    /// A sampler: `linear` filtering or nearest, `repeat` addressing or clamp to edge.
    pub fn create_sampler(&mut self, owner: OwnerId, linear: bool, repeat: bool) -> Result<u64> {
        self.table.admit(owner, 0)?;
        let filter = if linear {
            wgpu::FilterMode::Linear
        } else {
            wgpu::FilterMode::Nearest
        };
        let address = if repeat {
            wgpu::AddressMode::Repeat
        } else {
            wgpu::AddressMode::ClampToEdge
        };
        let gpu = &self.gpu;
        let sampler = gpu.scoped("creating a sampler", || {
            gpu.device.create_sampler(&wgpu::SamplerDescriptor {
                label: Some("module sampler"),
                address_mode_u: address,
                address_mode_v: address,
                address_mode_w: address,
                mag_filter: filter,
                min_filter: filter,
                ..Default::default()
            })
        })?;
        self.insert(owner, 0, Resource::Sampler(sampler))
    }

    pub fn create_render_pipeline(&mut self, owner: OwnerId, desc: &PipelineDesc) -> Result<u64> {
        let Resource::ShaderModule(module) =
            self.table
                .get(owner, desc.shader, ResourceKind::ShaderModule)?
        else {
            return Err(kind_mismatch());
        };
        let target = texture_format(desc.target_format)?;
        let topology = match desc.topology {
            0 => wgpu::PrimitiveTopology::TriangleList,
            1 => wgpu::PrimitiveTopology::TriangleStrip,
            2 => wgpu::PrimitiveTopology::LineList,
            3 => wgpu::PrimitiveTopology::LineStrip,
            4 => wgpu::PrimitiveTopology::PointList,
            other => return Err(invalid(format!("topology {other} is unknown; use 0..=4"))),
        };
        let limits = self.gpu.device.limits();
        if desc.vertex_buffers.len() > limits.max_vertex_buffers as usize {
            return Err(invalid(format!(
                "{} vertex buffers requested, this device takes {}",
                desc.vertex_buffers.len(),
                limits.max_vertex_buffers
            )));
        }
        let mut attributes = Vec::with_capacity(desc.vertex_buffers.len());
        for vb in &desc.vertex_buffers {
            if vb.attributes.len() > limits.max_vertex_attributes as usize {
                return Err(invalid(format!(
                    "{} attributes in one vertex buffer, this device takes {}",
                    vb.attributes.len(),
                    limits.max_vertex_attributes
                )));
            }
            let attrs = vb
                .attributes
                .iter()
                .map(|a| {
                    Ok(wgpu::VertexAttribute {
                        format: vertex_format(a.format)?,
                        offset: a.offset,
                        shader_location: a.location,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            attributes.push(attrs);
        }
        let layouts: Vec<_> = desc
            .vertex_buffers
            .iter()
            .zip(&attributes)
            .map(|(vb, attrs)| {
                Some(wgpu::VertexBufferLayout {
                    array_stride: vb.stride,
                    step_mode: if vb.per_instance {
                        wgpu::VertexStepMode::Instance
                    } else {
                        wgpu::VertexStepMode::Vertex
                    },
                    attributes: attrs,
                })
            })
            .collect();
        let vertex_slots = desc
            .vertex_buffers
            .iter()
            .map(|vb| VertexSlot {
                stride: vb.stride,
                per_instance: vb.per_instance,
            })
            .collect();
        self.table.admit(owner, 0)?;
        let blend = desc.alpha_blend.then_some(wgpu::BlendState::ALPHA_BLENDING);
        let gpu = &self.gpu;
        let pipeline = gpu.scoped("creating a render pipeline", || {
            gpu.device
                .create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                    label: Some("module pipeline"),
                    layout: None,
                    vertex: wgpu::VertexState {
                        module,
                        entry_point: Some(&desc.vertex_entry),
                        compilation_options: Default::default(),
                        buffers: &layouts,
                    },
                    primitive: wgpu::PrimitiveState {
                        topology,
                        ..Default::default()
                    },
                    depth_stencil: None,
                    multisample: wgpu::MultisampleState::default(),
                    fragment: Some(wgpu::FragmentState {
                        module,
                        entry_point: Some(&desc.fragment_entry),
                        compilation_options: Default::default(),
                        targets: &[Some(wgpu::ColorTargetState {
                            format: target,
                            blend,
                            write_mask: wgpu::ColorWrites::ALL,
                        })],
                    }),
                    multiview_mask: None,
                    cache: None,
                })
        })?;
        self.insert(
            owner,
            0,
            Resource::RenderPipeline {
                pipeline,
                vertex_slots,
                target,
            },
        )
    }

    /// A bind group for group `group` of `pipeline`'s layout (derived from its shader).
    pub fn create_bind_group(
        &mut self,
        owner: OwnerId,
        pipeline: u64,
        group: u32,
        entries: &[BindingDesc],
    ) -> Result<u64> {
        let Resource::RenderPipeline { pipeline: p, .. } =
            self.table
                .get(owner, pipeline, ResourceKind::RenderPipeline)?
        else {
            return Err(kind_mismatch());
        };
        let max = self.gpu.device.limits().max_bind_groups;
        if group >= max {
            return Err(invalid(format!(
                "bind group index {group} is out of range: this device has {max}"
            )));
        }
        let mut resources = Vec::with_capacity(entries.len());
        for e in entries {
            resources.push(match *e {
                BindingDesc::Buffer { binding, buffer, offset, size } => {
                    let Resource::Buffer { buffer: b, .. } = self.table.get(owner, buffer, ResourceKind::Buffer)? else {
                        return Err(kind_mismatch());
                    };
                    let end = if size == 0 { Some(b.size()) } else { offset.checked_add(size) };
                    if !matches!(end, Some(end) if offset < end && end <= b.size()) {
                        return Err(invalid(format!(
                            "binding {binding}: range offset {offset} size {size} is outside buffer {buffer:#x} of {} bytes",
                            b.size()
                        )));
                    }
                    (binding, Bound::Buffer(b, offset, wgpu::BufferSize::new(if size == 0 { b.size() - offset } else { size })))
                }
                BindingDesc::Texture { binding, texture } => {
                    let Resource::Texture { view, .. } = self.table.get(owner, texture, ResourceKind::Texture)? else {
                        return Err(kind_mismatch());
                    };
                    (binding, Bound::View(view))
                }
                BindingDesc::Sampler { binding, sampler } => {
                    let Resource::Sampler(s) = self.table.get(owner, sampler, ResourceKind::Sampler)? else {
                        return Err(kind_mismatch());
                    };
                    (binding, Bound::Sampler(s))
                }
            });
        }
        self.table.admit(owner, 0)?;
        let gpu = &self.gpu;
        let group = gpu.scoped("creating a bind group", || {
            let layout = p.get_bind_group_layout(group);
            let entries: Vec<_> = resources
                .iter()
                .map(|(binding, bound)| wgpu::BindGroupEntry {
                    binding: *binding,
                    resource: match bound {
                        Bound::Buffer(b, offset, size) => {
                            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: b,
                                offset: *offset,
                                size: *size,
                            })
                        }
                        Bound::View(v) => wgpu::BindingResource::TextureView(v),
                        Bound::Sampler(s) => wgpu::BindingResource::Sampler(s),
                    },
                })
                .collect();
            gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("module bind group"),
                layout: &layout,
                entries: &entries,
            })
        })?;
        self.insert(owner, 0, Resource::BindGroup(group))
    }

    fn insert(&mut self, owner: OwnerId, bytes: u64, resource: Resource) -> Result<u64> {
        self.table
            .insert(owner, bytes, resource)
            .map(|h| h.to_bits())
    }

    /// Starts `owner`'s render invocation for `info`. A frame left unfinished by an earlier
    /// invocation (a trap) is dropped.
    pub fn begin_frame(&mut self, owner: OwnerId, info: FrameInfo) -> Result<()> {
        self.recording = Some(FrameRecording::new(
            &self.gpu,
            owner,
            info,
            self.config.max_commands,
        ));
        Ok(())
    }

    fn recording(&mut self, owner: OwnerId) -> Result<(&mut FrameRecording, &ResourceTable)> {
        match &mut self.recording {
            Some(r) if r.owner() == owner => Ok((r, &self.table)),
            _ => Err(GpuError::Command(
                "no frame is being recorded for this module: draw commands are for the render hook"
                    .into(),
            )),
        }
    }

    pub fn begin_pass(&mut self, owner: OwnerId, target: u64, clear: [f64; 4]) -> Result<()> {
        let (r, t) = self.recording(owner)?;
        r.begin_pass(t, target, clear)
    }

    pub fn set_pipeline(&mut self, owner: OwnerId, pipeline: u64) -> Result<()> {
        let (r, t) = self.recording(owner)?;
        r.set_pipeline(t, pipeline)
    }

    pub fn set_bind_group(&mut self, owner: OwnerId, index: u32, group: u64) -> Result<()> {
        let (r, t) = self.recording(owner)?;
        r.set_bind_group(t, index, group)
    }

    pub fn set_vertex_buffer(
        &mut self,
        owner: OwnerId,
        slot: u32,
        buffer: u64,
        offset: u64,
        size: u64,
    ) -> Result<()> {
        let (r, t) = self.recording(owner)?;
        r.set_vertex_buffer(t, slot, buffer, offset, size)
    }

    pub fn set_index_buffer(
        &mut self,
        owner: OwnerId,
        buffer: u64,
        format: u32,
        offset: u64,
        size: u64,
    ) -> Result<()> {
        let (r, t) = self.recording(owner)?;
        r.set_index_buffer(t, buffer, format, offset, size)
    }

    pub fn draw(
        &mut self,
        owner: OwnerId,
        first_vertex: u32,
        vertex_count: u32,
        first_instance: u32,
        instance_count: u32,
    ) -> Result<()> {
        let (r, _) = self.recording(owner)?;
        r.draw(first_vertex, vertex_count, first_instance, instance_count)
    }

    pub fn draw_indexed(
        &mut self,
        owner: OwnerId,
        first_index: u32,
        index_count: u32,
        base_vertex: i32,
        first_instance: u32,
        instance_count: u32,
    ) -> Result<()> {
        let (r, _) = self.recording(owner)?;
        r.draw_indexed(
            first_index,
            index_count,
            base_vertex,
            first_instance,
            instance_count,
        )
    }

    pub fn end_pass(&mut self, owner: OwnerId) -> Result<()> {
        let (r, _) = self.recording(owner)?;
        r.end_pass()
    }

    /// Encodes and submits `owner`'s frame into a free frame texture, which becomes the frame
    /// to show. On error nothing is shown and the previous frame stays.
    pub fn end_frame(&mut self, owner: OwnerId) -> Result<FrameDone> {
        self.recording(owner)?;
        let Some(recording) = self.recording.take() else {
            return Err(kind_mismatch());
        };
        let info = recording.info();
        self.frame_due = None;
        let slot = self.ring.acquire(&self.gpu, info.width, info.height)?;
        let commands = recording.len();
        let encoded = recording.finish(&self.gpu, &slot.view).and_then(|buffer| {
            let gpu = &self.gpu;
            gpu.scoped(&format!("submitting frame {}", info.number), || {
                gpu.queue.submit([buffer]);
            })
        });
        match encoded {
            Ok(()) => {
                self.ring.rendered(slot, info.number);
                Ok(FrameDone {
                    number: info.number,
                    commands,
                })
            }
            Err(e) => {
                self.ring.abandon(slot);
                Err(e)
            }
        }
    }

    /// Drops the frame being recorded, if any (its invocation failed), and lets the pacer
    /// hand out the next frame.
    pub fn abort_frame(&mut self) {
        self.recording = None;
        self.frame_due = None;
    }

    /// A render loop handed out `number`; no other frame is due until it ends or is aborted.
    pub(crate) fn frame_handed_out(&mut self, number: u64) {
        self.frame_due = Some(number);
    }

    /// The frame a render loop handed out and that has not ended yet.
    pub fn frame_outstanding(&self) -> Option<u64> {
        self.frame_due
    }

    /// The module whose frame is being recorded, if one is.
    pub fn recording_owner(&self) -> Option<OwnerId> {
        self.recording.as_ref().map(FrameRecording::owner)
    }

    /// Reads back the newest rendered frame not yet shown: its number and pixels. Waits for
    /// the GPU.
    pub fn read_frame(&self) -> Result<Option<(u64, Image)>> {
        self.ring.read_ready(&self.gpu)
    }
}

enum Bound<'a> {
    Buffer(&'a wgpu::Buffer, u64, Option<wgpu::BufferSize>),
    View(&'a wgpu::TextureView),
    Sampler(&'a wgpu::Sampler),
}

fn kind_mismatch() -> GpuError {
    GpuError::Internal {
        during: "resolving a handle".into(),
        message: "the resource table returned another kind than asked".into(),
    }
}

/// Bytes a texture takes, as the budget counts them.
fn texture_bytes(width: u32, height: u32, format: wgpu::TextureFormat) -> u64 {
    let texel = u64::from(format.block_copy_size(None).unwrap_or(4));
    u64::from(width) * u64::from(height) * texel
}
