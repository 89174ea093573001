//! One render invocation's commands: checked as they are recorded, encoded at the end.
//!
//! Recording resolves every handle at once (a freed or foreign handle fails the command that
//! names it) and checks pass structure, usages, offsets and bounds, so that most mistakes get a
//! message naming the command. What only wgpu can judge (pipeline/bind group compatibility,
//! shader interfaces) is caught by error scopes around encoding and submission.

use std::ops::Range;

use crate::error::{GpuError, Result};
use crate::gpu::{FRAME_FORMAT, Gpu};
use crate::resources::{OwnerId, Resource, ResourceKind, ResourceTable, VertexSlot};

/// What the `render` hook is told about the frame it draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Frames since the render loop started, from 0.
    pub number: u64,
    /// Frame size in physical pixels.
    pub width: u32,
    pub height: u32,
    /// The frame's time since the loop started: `number × interval` when headless (so a run
    /// is reproducible), the pacer's tick when windowed.
    pub time_ns: u64,
}

/// Most commands one frame may record; bounds the memory a module's render can make the host
/// hold. By default, 65 536.
pub const DEFAULT_MAX_COMMANDS: usize = 65_536;

/// The attachment a pass draws into.
#[derive(Debug)]
enum Target {
    Frame,
    Texture(wgpu::TextureView),
}

#[derive(Debug)]
enum Command {
    BeginPass {
        target: Target,
        clear: wgpu::Color,
    },
    SetPipeline(wgpu::RenderPipeline),
    SetBindGroup(u32, wgpu::BindGroup),
    SetVertexBuffer {
        slot: u32,
        buffer: wgpu::Buffer,
        range: Range<u64>,
    },
    SetIndexBuffer {
        buffer: wgpu::Buffer,
        format: wgpu::IndexFormat,
        range: Range<u64>,
    },
    Draw {
        vertices: Range<u32>,
        instances: Range<u32>,
    },
    DrawIndexed {
        indices: Range<u32>,
        base_vertex: i32,
        instances: Range<u32>,
    },
    EndPass,
}

/// What the open pass has bound, to check draws before wgpu does.
#[derive(Debug)]
struct Pass {
    format: wgpu::TextureFormat,
    vertex_slots: Option<Vec<VertexSlot>>,
    vertex_buffers: Vec<Option<u64>>,
    index: Option<(wgpu::IndexFormat, u64)>,
}

/// The validated command list of one render invocation of one module.
#[derive(Debug)]
pub struct FrameRecording {
    owner: OwnerId,
    info: FrameInfo,
    commands: Vec<Command>,
    pass: Option<Pass>,
    passes: usize,
    max_commands: usize,
    max_bind_groups: u32,
    max_vertex_buffers: u32,
}

fn command(message: String) -> GpuError {
    GpuError::Command(message)
}

impl FrameRecording {
    pub fn new(gpu: &Gpu, owner: OwnerId, info: FrameInfo, max_commands: usize) -> Self {
        let limits = gpu.device.limits();
        FrameRecording {
            owner,
            info,
            commands: Vec::new(),
            pass: None,
            passes: 0,
            max_commands,
            max_bind_groups: limits.max_bind_groups,
            max_vertex_buffers: limits.max_vertex_buffers,
        }
    }

    pub fn owner(&self) -> OwnerId {
        self.owner
    }

    pub fn info(&self) -> FrameInfo {
        self.info
    }

    /// Commands recorded so far.
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Passes begun so far.
    pub fn passes(&self) -> usize {
        self.passes
    }

    fn push(&mut self, c: Command) -> Result<()> {
        if self.commands.len() >= self.max_commands {
            return Err(command(format!(
                "a frame may record at most {} commands; draw more per call (instancing, \
                 bigger buffers)",
                self.max_commands
            )));
        }
        self.commands.push(c);
        Ok(())
    }

    fn pass(&mut self, what: &str) -> Result<&mut Pass> {
        self.pass.as_mut().ok_or_else(|| {
            command(format!(
                "{what} outside a render pass; call begin_pass first"
            ))
        })
    }

    /// Opens a pass that clears `target` (`0` for the frame, else a texture handle made with
    /// `RENDER_ATTACHMENT` usage) to `clear`, linear RGBA in 0..=1.
    pub fn begin_pass(
        &mut self,
        table: &ResourceTable,
        target: u64,
        clear: [f64; 4],
    ) -> Result<()> {
        if self.pass.is_some() {
            return Err(command(
                "begin_pass while a pass is open; call end_pass first".into(),
            ));
        }
        if clear.iter().any(|c| !c.is_finite()) {
            return Err(command(format!("clear colour {clear:?} is not finite")));
        }
        let (target, format) = if target == 0 {
            (Target::Frame, FRAME_FORMAT)
        } else {
            let Resource::Texture { texture, view } =
                table.get(self.owner, target, ResourceKind::Texture)?
            else {
                return unreachable_kind();
            };
            if !texture
                .usage()
                .contains(wgpu::TextureUsages::RENDER_ATTACHMENT)
            {
                return Err(command(format!(
                    "texture {target:#x} cannot be drawn into: create it with the \
                     RENDER_ATTACHMENT usage"
                )));
            }
            (Target::Texture(view.clone()), texture.format())
        };
        let [r, g, b, a] = clear;
        self.push(Command::BeginPass {
            target,
            clear: wgpu::Color { r, g, b, a },
        })?;
        self.pass = Some(Pass {
            format,
            vertex_slots: None,
            vertex_buffers: Vec::new(),
            index: None,
        });
        self.passes += 1;
        Ok(())
    }

    pub fn set_pipeline(&mut self, table: &ResourceTable, pipeline: u64) -> Result<()> {
        let owner = self.owner;
        let Resource::RenderPipeline {
            pipeline: p,
            vertex_slots,
            target,
        } = table.get(owner, pipeline, ResourceKind::RenderPipeline)?
        else {
            return unreachable_kind();
        };
        let pass = self.pass("set_pipeline")?;
        if *target != pass.format {
            return Err(command(format!(
                "pipeline {pipeline:#x} draws {target:?} but the pass target is {:?}",
                pass.format
            )));
        }
        pass.vertex_slots = Some(vertex_slots.clone());
        let p = p.clone();
        self.push(Command::SetPipeline(p))
    }

    pub fn set_bind_group(&mut self, table: &ResourceTable, index: u32, group: u64) -> Result<()> {
        let Resource::BindGroup(g) = table.get(self.owner, group, ResourceKind::BindGroup)? else {
            return unreachable_kind();
        };
        let max = self.max_bind_groups;
        self.pass("set_bind_group")?;
        if index >= max {
            return Err(command(format!(
                "bind group index {index} is out of range: this device has {max}"
            )));
        }
        let g = g.clone();
        self.push(Command::SetBindGroup(index, g))
    }

    /// Binds `size` bytes of `buffer` from `offset` (`size == 0`: to the end) to vertex `slot`.
    pub fn set_vertex_buffer(
        &mut self,
        table: &ResourceTable,
        slot: u32,
        buffer: u64,
        offset: u64,
        size: u64,
    ) -> Result<()> {
        let range = checked_buffer_range(
            table,
            self.owner,
            buffer,
            offset,
            size,
            wgpu::BufferUsages::VERTEX,
            "vertex",
        )?;
        let max = self.max_vertex_buffers;
        let pass = self.pass("set_vertex_buffer")?;
        if slot >= max {
            return Err(command(format!(
                "vertex buffer slot {slot} is out of range: this device has {max}"
            )));
        }
        if !offset.is_multiple_of(wgpu::VERTEX_ALIGNMENT) {
            return Err(command(format!(
                "vertex buffer offset {offset} is not a multiple of {}",
                wgpu::VERTEX_ALIGNMENT
            )));
        }
        let slot_index = slot as usize;
        if pass.vertex_buffers.len() <= slot_index {
            pass.vertex_buffers.resize(slot_index + 1, None);
        }
        pass.vertex_buffers[slot_index] = Some(range.end - range.start);
        let buffer = buffer_of(table, self.owner, buffer)?;
        self.push(Command::SetVertexBuffer {
            slot,
            buffer,
            range,
        })
    }

    /// Binds an index buffer; `format` is 16 or 32 (bits per index).
    pub fn set_index_buffer(
        &mut self,
        table: &ResourceTable,
        buffer: u64,
        format: u32,
        offset: u64,
        size: u64,
    ) -> Result<()> {
        let format = match format {
            16 => wgpu::IndexFormat::Uint16,
            32 => wgpu::IndexFormat::Uint32,
            other => {
                return Err(command(format!(
                    "index format {other} is unknown; use 16 or 32"
                )));
            }
        };
        let range = checked_buffer_range(
            table,
            self.owner,
            buffer,
            offset,
            size,
            wgpu::BufferUsages::INDEX,
            "index",
        )?;
        let pass = self.pass("set_index_buffer")?;
        if !offset.is_multiple_of(format.byte_size() as u64) {
            return Err(command(format!(
                "index buffer offset {offset} is not a multiple of the index size {}",
                format.byte_size()
            )));
        }
        pass.index = Some((format, range.end - range.start));
        let buffer = buffer_of(table, self.owner, buffer)?;
        self.push(Command::SetIndexBuffer {
            buffer,
            format,
            range,
        })
    }

    pub fn draw(
        &mut self,
        first_vertex: u32,
        vertex_count: u32,
        first_instance: u32,
        instance_count: u32,
    ) -> Result<()> {
        let vertices = checked_range(first_vertex, vertex_count, "vertex")?;
        let instances = checked_range(first_instance, instance_count, "instance")?;
        let pass = self.pass("draw")?;
        check_vertex_slots(pass, Some(&vertices), &instances)?;
        self.push(Command::Draw {
            vertices,
            instances,
        })
    }

    pub fn draw_indexed(
        &mut self,
        first_index: u32,
        index_count: u32,
        base_vertex: i32,
        first_instance: u32,
        instance_count: u32,
    ) -> Result<()> {
        let indices = checked_range(first_index, index_count, "index")?;
        let instances = checked_range(first_instance, instance_count, "instance")?;
        let pass = self.pass("draw_indexed")?;
        let Some((format, bound)) = pass.index else {
            return Err(command(
                "draw_indexed without an index buffer; call set_index_buffer first".into(),
            ));
        };
        let needed = u64::from(indices.end) * format.byte_size() as u64;
        if needed > bound {
            return Err(command(format!(
                "draw_indexed reads indices {indices:?}, {needed} bytes, but the bound index \
                 buffer range has {bound}"
            )));
        }
        // Which vertices the indices name is only known on the GPU; wgpu's bounds-checked
        // shaders keep out-of-range fetches inside the buffer.
        check_vertex_slots(pass, None, &instances)?;
        self.push(Command::DrawIndexed {
            indices,
            base_vertex,
            instances,
        })
    }

    pub fn end_pass(&mut self) -> Result<()> {
        self.pass("end_pass")?;
        self.push(Command::EndPass)?;
        self.pass = None;
        Ok(())
    }

    /// Encodes the frame, with `frame` as the view of the frame target, inside error scopes:
    /// what wgpu refuses becomes a [`GpuError::Validation`] naming this frame.
    pub fn finish(self, gpu: &Gpu, frame: &wgpu::TextureView) -> Result<wgpu::CommandBuffer> {
        if self.pass.is_some() {
            return Err(command(
                "the frame ended with a pass still open; call end_pass".into(),
            ));
        }
        let during = format!("encoding frame {}", self.info.number);
        gpu.scoped(&during, || encode(gpu, &self.commands, frame))
    }
}

fn encode(gpu: &Gpu, commands: &[Command], frame: &wgpu::TextureView) -> wgpu::CommandBuffer {
    let mut encoder = gpu
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("module frame"),
        });
    let mut rest = commands.iter();
    while let Some(c) = rest.next() {
        // Recording guarantees that every other command sits between BeginPass and EndPass.
        let Command::BeginPass { target, clear } = c else {
            continue;
        };
        let view = match target {
            Target::Frame => frame,
            Target::Texture(view) => view,
        };
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            label: Some("module pass"),
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations {
                    load: wgpu::LoadOp::Clear(*clear),
                    store: wgpu::StoreOp::Store,
                },
            })],
            depth_stencil_attachment: None,
            timestamp_writes: None,
            occlusion_query_set: None,
            multiview_mask: None,
        });
        for c in rest.by_ref() {
            match c {
                Command::EndPass => break,
                Command::SetPipeline(p) => pass.set_pipeline(p),
                Command::SetBindGroup(i, g) => pass.set_bind_group(*i, g, &[]),
                Command::SetVertexBuffer {
                    slot,
                    buffer,
                    range,
                } => pass.set_vertex_buffer(*slot, buffer.slice(range.clone())),
                Command::SetIndexBuffer {
                    buffer,
                    format,
                    range,
                } => pass.set_index_buffer(buffer.slice(range.clone()), *format),
                Command::Draw {
                    vertices,
                    instances,
                } => pass.draw(vertices.clone(), instances.clone()),
                Command::DrawIndexed {
                    indices,
                    base_vertex,
                    instances,
                } => pass.draw_indexed(indices.clone(), *base_vertex, instances.clone()),
                Command::BeginPass { .. } => {}
            }
        }
    }
    encoder.finish()
}

fn unreachable_kind<T>() -> Result<T> {
    // `ResourceTable::get` checked the kind; this keeps the match total without a panic.
    Err(GpuError::Internal {
        during: "resolving a handle".into(),
        message: "the resource table returned another kind than asked".into(),
    })
}

fn buffer_of(table: &ResourceTable, owner: OwnerId, handle: u64) -> Result<wgpu::Buffer> {
    match table.get(owner, handle, ResourceKind::Buffer)? {
        Resource::Buffer { buffer, .. } => Ok(buffer.clone()),
        _ => unreachable_kind(),
    }
}

/// Checks a buffer binding and returns its byte range; `size == 0` means to the end.
pub(crate) fn checked_buffer_range(
    table: &ResourceTable,
    owner: OwnerId,
    handle: u64,
    offset: u64,
    size: u64,
    usage: wgpu::BufferUsages,
    what: &str,
) -> Result<Range<u64>> {
    let Resource::Buffer { buffer, usage: has } = table.get(owner, handle, ResourceKind::Buffer)?
    else {
        return unreachable_kind();
    };
    if !has.contains(usage) {
        return Err(command(format!(
            "buffer {handle:#x} cannot be used as a {what} buffer: create it with the {} usage",
            what.to_uppercase()
        )));
    }
    let len = buffer.size();
    let end = if size == 0 {
        Some(len)
    } else {
        offset.checked_add(size)
    };
    match end {
        Some(end) if offset < end && end <= len => Ok(offset..end),
        _ => Err(command(format!(
            "{what} buffer range offset {offset} size {size} is outside buffer {handle:#x} of \
             {len} bytes (or empty)"
        ))),
    }
}

fn checked_range(first: u32, count: u32, what: &str) -> Result<Range<u32>> {
    let end = first.checked_add(count).ok_or_else(|| {
        command(format!(
            "{what} range {first} + {count} overflows a 32-bit count"
        ))
    })?;
    Ok(first..end)
}

fn check_vertex_slots(
    pass: &Pass,
    vertices: Option<&Range<u32>>,
    instances: &Range<u32>,
) -> Result<()> {
    let Some(slots) = &pass.vertex_slots else {
        return Err(command(
            "draw without a pipeline; call set_pipeline first".into(),
        ));
    };
    for (i, slot) in slots.iter().enumerate() {
        let Some(bound) = pass.vertex_buffers.get(i).copied().flatten() else {
            return Err(command(format!(
                "the pipeline reads vertex buffer slot {i} but none is bound; call \
                 set_vertex_buffer({i}, ..)"
            )));
        };
        let last = if slot.per_instance {
            Some(instances.end)
        } else {
            vertices.map(|v| v.end)
        };
        if let Some(last) = last {
            let needed = u64::from(last) * slot.stride;
            if needed > bound {
                return Err(command(format!(
                    "the draw reads {needed} bytes of vertex buffer slot {i} ({last} elements of \
                     {} bytes) but {bound} are bound",
                    slot.stride
                )));
            }
        }
    }
    Ok(())
}
