//! The GPU, for the module holding the `Gpu` authority: `ctx.gpu()`.
//!
//! ```
//! use interstice_sdk::gpu::*;
//! use interstice_sdk::platform::FrameInfo;
//! use interstice_sdk::*;
//!
//! interstice_module!(authorities: [Gpu]);
//!
//! const WGSL: &str = "@vertex fn vs(@location(0) p: vec2<f32>) -> @builtin(position) vec4<f32> \
//!     { return vec4<f32>(p, 0.0, 1.0); } \
//!     @fragment fn fs() -> @location(0) vec4<f32> { return vec4<f32>(1.0, 0.0, 0.0, 1.0); }";
//!
//! #[table(ephemeral)]
//! pub struct Scene {
//!     #[primary_key]
//!     id: u8,
//!     pipeline: RenderPipeline,
//!     vertices: Buffer,
//! }
//!
//! // Resources are made once, when the module loads (install, upgrade, node start).
//! #[reducer(on = "load", writes(scene))]
//! fn setup(ctx: ReducerContext) -> Result<(), String> {
//!     let gpu = ctx.gpu();
//!     let shader = gpu.create_shader_module(WGSL)?;
//!     let layout = VertexBufferLayout::new(8).attribute(VertexFormat::Float32x2, 0, 0);
//!     let desc = RenderPipelineDesc::new(shader, "vs", "fs").vertex_buffer(layout);
//!     let pipeline = gpu.create_render_pipeline(&desc)?;
//!     let vertices = gpu.create_buffer(24, BufferUsage::VERTEX)?;
//!     gpu.write_buffer(vertices, 0, &bytes_of(&[-0.5f32, -0.5, 0.5, -0.5, 0.0, 0.5]))?;
//!     ctx.current.scene().clear()?;
//!     ctx.current.scene().insert(Scene { id: 0, pipeline, vertices })?;
//!     Ok(())
//! }
//!
//! // Once per frame, on the gpu lane: read tables, record the frame.
//! #[reducer(on = "render", reads(scene))]
//! fn draw(ctx: ReducerContext, frame: FrameInfo) -> Result<(), String> {
//!     let Some(scene) = ctx.current.scene().get(0)? else {
//!         return Ok(());
//!     };
//!     let mut pass = ctx.gpu().begin_pass(Target::Frame, [0.0, 0.0, 0.2, 1.0])?;
//!     pass.set_pipeline(scene.pipeline)?;
//!     pass.set_vertex_buffer(0, scene.vertices)?;
//!     pass.draw(0..3, 0..1)?;
//!     pass.end()?;
//!     Ok(())
//! }
//! ```
//!
//! # Rules the host enforces
//!
//! - Only the module holding `Gpu` may call these; any other fails its invocation.
//! - Passes and draws are for the `render` hook; resources (shaders, buffers, textures,
//!   samplers, pipelines, bind groups) may be created, written and destroyed from any reducer
//!   or hook of the module. They are not table state: a failed reducer does not undo them and
//!   none survive a restart or an upgrade; make them in the `load` hook, which runs then.
//! - Handles are checked on every use: a handle that was never made, was destroyed, or names
//!   another kind of resource is refused. Sizes, offsets, formats and ranges are checked before
//!   the GPU sees them; what only the GPU can judge (WGSL, pipeline layouts) is validated, and
//!   its message comes back as the error.
//! - Every module has a budget (by default 256 MiB of buffers and textures, 4096 resources);
//!   a request past it is refused before anything is allocated. [`Gpu::usage`] tells where
//!   the module stands.
//! - In the render hook, the first failed call fails the frame: nothing new is shown, and the
//!   invocation fails with that error even if the module carried on.

use std::ops::{BitOr, Range};

use interstice_abi::IntersticeType;
use interstice_sdk_macros::interstice_type;

use crate::context::ReducerContext;
use crate::host_calls::{result_bytes, status};
use crate::imports::host_imports;
use crate::{Error, ErrorCode, Result, sys};

mod raw {
    super::host_imports!("interstice_gpu" {
        fn create_shader_module = "create_shader_module"(ptr: i32, len: i32) -> i64;
        fn create_buffer = "create_buffer"(size: i64, usage: i32) -> i64;
        fn write_buffer = "write_buffer"(buffer: i64, offset: i64, ptr: i32, len: i32) -> i64;
        fn create_texture = "create_texture"(width: i32, height: i32, format: i32, usage: i32) -> i64;
        fn write_texture = "write_texture"(texture: i64, ptr: i32, len: i32) -> i64;
        fn create_sampler = "create_sampler"(linear: i32, repeat: i32) -> i64;
        fn create_render_pipeline = "create_render_pipeline"(ptr: i32, len: i32) -> i64;
        fn create_bind_group = "create_bind_group"(pipeline: i64, group: i32, ptr: i32, len: i32) -> i64;
        fn destroy = "destroy"(resource: i64) -> i64;
        fn usage = "usage"() -> i64;
        fn begin_pass = "begin_pass"(target: i64, r: f64, g: f64, b: f64, a: f64) -> i64;
        fn set_pipeline = "set_pipeline"(pipeline: i64) -> i64;
        fn set_bind_group = "set_bind_group"(index: i32, group: i64) -> i64;
        fn set_vertex_buffer = "set_vertex_buffer"(slot: i32, buffer: i64, offset: i64, size: i64) -> i64;
        fn set_index_buffer = "set_index_buffer"(buffer: i64, format: i32, offset: i64, size: i64) -> i64;
        fn draw = "draw"(first_vertex: i32, vertex_count: i32, first_instance: i32, instance_count: i32) -> i64;
        fn draw_indexed = "draw_indexed"(first_index: i32, index_count: i32, base_vertex: i32, first_instance: i32, instance_count: i32) -> i64;
        fn end_pass = "end_pass"() -> i64;
    });
}

macro_rules! handles {
    ($($(#[$doc:meta])* $name:ident,)*) => {$(
        $(#[$doc])*
        ///
        /// A handle: copy it, store it in a table (it is an Interstice type), pass it back.
        #[interstice_type(builtin)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            raw: u64,
        }

        impl $name {
            /// The number the host knows it by.
            pub fn raw(self) -> u64 {
                self.raw
            }

            /// A handle from its number; the host checks it on use.
            pub fn from_raw(raw: u64) -> Self {
                $name { raw }
            }
        }

        impl From<$name> for Resource {
            fn from(handle: $name) -> Resource {
                Resource(handle.raw)
            }
        }
    )*};
}

handles! {
    /// A compiled WGSL shader module.
    ShaderModule,
    /// A GPU buffer (vertices, indices, uniforms, storage).
    Buffer,
    /// A 2D texture.
    Texture,
    /// A texture sampler.
    Sampler,
    /// Resources bound together for one bind group index of a pipeline.
    BindGroup,
    /// A render pipeline: shaders, vertex layout, topology, target format.
    RenderPipeline,
}

/// Any resource, for [`Gpu::destroy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource(u64);

/// What a buffer is used for; combine with `|`. Every buffer can be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferUsage(u32);

impl BufferUsage {
    pub const VERTEX: BufferUsage = BufferUsage(1);
    pub const INDEX: BufferUsage = BufferUsage(2);
    pub const UNIFORM: BufferUsage = BufferUsage(4);
    pub const STORAGE: BufferUsage = BufferUsage(8);

    pub fn bits(self) -> u32 {
        self.0
    }
}

impl BitOr for BufferUsage {
    type Output = BufferUsage;
    fn bitor(self, other: BufferUsage) -> BufferUsage {
        BufferUsage(self.0 | other.0)
    }
}

/// What a texture is used for; combine with `|`. Every texture can be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextureUsage(u32);

impl TextureUsage {
    /// Sampled or loaded in shaders.
    pub const SAMPLED: TextureUsage = TextureUsage(1);
    /// Drawn into by a pass ([`Target::Texture`]).
    pub const RENDER_ATTACHMENT: TextureUsage = TextureUsage(2);

    pub fn bits(self) -> u32 {
        self.0
    }
}

impl BitOr for TextureUsage {
    type Output = TextureUsage;
    fn bitor(self, other: TextureUsage) -> TextureUsage {
        TextureUsage(self.0 | other.0)
    }
}

/// Texel formats. The frame is [`TextureFormat::Rgba8UnormSrgb`]: shaders write linear colours
/// and the frame stores them sRGB-encoded.
#[interstice_type(builtin)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextureFormat {
    Rgba8UnormSrgb,
    Rgba8Unorm,
    R8Unorm,
    Rgba16Float,
    R32Float,
}

/// The format of one vertex attribute.
#[interstice_type(builtin)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VertexFormat {
    Float32,
    Float32x2,
    Float32x3,
    Float32x4,
    Uint32,
    Uint32x2,
    Uint32x3,
    Uint32x4,
    Sint32,
    Sint32x2,
    Sint32x3,
    Sint32x4,
    Unorm8x4,
}

/// How vertices make primitives.
#[interstice_type(builtin)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrimitiveTopology {
    TriangleList,
    TriangleStrip,
    LineList,
    LineStrip,
    PointList,
}

/// One attribute of a vertex buffer: `@location(location)` in the shader.
#[interstice_type(builtin)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VertexAttribute {
    pub format: VertexFormat,
    pub offset: u64,
    pub location: u32,
}

/// One vertex buffer a pipeline reads: `stride` bytes per vertex (or instance).
#[interstice_type(builtin)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VertexBufferLayout {
    pub stride: u64,
    /// Advances per instance instead of per vertex.
    pub per_instance: bool,
    pub attributes: Vec<VertexAttribute>,
}

impl VertexBufferLayout {
    /// Per-vertex data of `stride` bytes, no attributes yet.
    pub fn new(stride: u64) -> Self {
        VertexBufferLayout {
            stride,
            per_instance: false,
            attributes: Vec::new(),
        }
    }

    /// Adds `@location(location)` of `format` at `offset` bytes.
    pub fn attribute(mut self, format: VertexFormat, offset: u64, location: u32) -> Self {
        self.attributes.push(VertexAttribute {
            format,
            offset,
            location,
        });
        self
    }

    /// Advances per instance.
    pub fn per_instance(mut self) -> Self {
        self.per_instance = true;
        self
    }
}

/// A render pipeline. Its bind group layouts come from the shader.
#[interstice_type(builtin)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderPipelineDesc {
    pub shader: ShaderModule,
    pub vertex_entry: String,
    pub fragment_entry: String,
    pub vertex_buffers: Vec<VertexBufferLayout>,
    pub topology: PrimitiveTopology,
    /// The format of what its passes draw into; the frame's by default.
    pub target_format: TextureFormat,
    /// Blends "over" what is there instead of replacing it.
    pub alpha_blend: bool,
}

impl RenderPipelineDesc {
    /// Entry points `vertex` and `fragment` of `shader`, drawing triangle lists into the frame,
    /// without vertex buffers or blending.
    pub fn new(shader: ShaderModule, vertex: &str, fragment: &str) -> Self {
        RenderPipelineDesc {
            shader,
            vertex_entry: vertex.to_owned(),
            fragment_entry: fragment.to_owned(),
            vertex_buffers: Vec::new(),
            topology: PrimitiveTopology::TriangleList,
            target_format: TextureFormat::Rgba8UnormSrgb,
            alpha_blend: false,
        }
    }

    /// Adds vertex buffer slot `n` (slots are numbered in the order they are added).
    pub fn vertex_buffer(mut self, layout: VertexBufferLayout) -> Self {
        self.vertex_buffers.push(layout);
        self
    }

    pub fn topology(mut self, topology: PrimitiveTopology) -> Self {
        self.topology = topology;
        self
    }

    pub fn target_format(mut self, format: TextureFormat) -> Self {
        self.target_format = format;
        self
    }

    pub fn alpha_blend(mut self) -> Self {
        self.alpha_blend = true;
        self
    }
}

/// One entry of a bind group: `@binding(binding)` in the shader.
#[interstice_type(builtin)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindGroupEntry {
    /// `size` bytes from `offset`; `size == 0` means to the end.
    Buffer {
        binding: u32,
        buffer: Buffer,
        offset: u64,
        size: u64,
    },
    Texture {
        binding: u32,
        texture: Texture,
    },
    Sampler {
        binding: u32,
        sampler: Sampler,
    },
}

impl BindGroupEntry {
    /// All of `buffer` at `binding`.
    pub fn buffer(binding: u32, buffer: Buffer) -> Self {
        BindGroupEntry::Buffer {
            binding,
            buffer,
            offset: 0,
            size: 0,
        }
    }
}

/// What a module holds on the GPU, and its budget.
#[interstice_type(builtin)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuUsage {
    pub bytes: u64,
    pub resources: u32,
    pub max_bytes: u64,
    pub max_resources: u32,
}

/// What a pass draws into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The frame being rendered (shown in the window, or read back headless).
    Frame,
    /// A texture made with [`TextureUsage::RENDER_ATTACHMENT`].
    Texture(Texture),
}

/// The bits of an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexFormat {
    Uint16,
    Uint32,
}

/// The GPU, as the module holding the `Gpu` authority sees it. Get it with
/// [`ReducerContext::gpu`].
#[derive(Clone, Copy, Debug)]
pub struct Gpu {
    _private: (),
}

impl ReducerContext {
    /// The GPU: resources anywhere in the Gpu module, passes and draws in its `render` hook.
    /// See [`crate::gpu`] for the rules.
    pub fn gpu(&self) -> Gpu {
        Gpu { _private: () }
    }
}

/// A handle from a host call's return: non-negative is the handle.
fn handle(ret: i64) -> Result<u64> {
    status(ret)
}

fn len_of(bytes: &[u8]) -> i32 {
    sys::len(bytes.len())
}

/// The bits of a `u32` as the `i32` the ABI passes; the host reads them back unchanged.
fn bits(value: u32) -> i32 {
    value as i32
}

/// A size or offset as the `i64` the ABI passes; the host refuses negative ones.
fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Gpu {
    /// Compiles a WGSL shader module; the error carries the compiler's message.
    pub fn create_shader_module(&self, wgsl: &str) -> Result<ShaderModule> {
        // SAFETY: the pointer and length describe `wgsl`, alive for the call.
        let ret =
            unsafe { raw::create_shader_module(sys::ptr(wgsl.as_ptr()), sys::len(wgsl.len())) };
        handle(ret).map(ShaderModule::from_raw)
    }

    /// A buffer of `size` bytes, a non-zero multiple of 4.
    pub fn create_buffer(&self, size: u64, usage: BufferUsage) -> Result<Buffer> {
        // SAFETY: plain values.
        let ret = unsafe { raw::create_buffer(signed(size), bits(usage.bits())) };
        handle(ret).map(Buffer::from_raw)
    }

    /// Writes `data` at `offset` (both multiples of 4) into `buffer`.
    pub fn write_buffer(&self, buffer: Buffer, offset: u64, data: &[u8]) -> Result<()> {
        // SAFETY: the pointer and length describe `data`, alive for the call.
        let ret = unsafe {
            raw::write_buffer(
                buffer.raw as i64,
                signed(offset),
                sys::ptr(data.as_ptr()),
                len_of(data),
            )
        };
        status(ret).map(drop)
    }

    /// A `width × height` texture.
    pub fn create_texture(
        &self,
        width: u32,
        height: u32,
        format: TextureFormat,
        usage: TextureUsage,
    ) -> Result<Texture> {
        // SAFETY: plain values.
        let ret = unsafe {
            raw::create_texture(
                bits(width),
                bits(height),
                format_code(format),
                bits(usage.bits()),
            )
        };
        handle(ret).map(Texture::from_raw)
    }

    /// Replaces every texel of `texture`: rows top to bottom, tightly packed.
    pub fn write_texture(&self, texture: Texture, data: &[u8]) -> Result<()> {
        // SAFETY: the pointer and length describe `data`, alive for the call.
        let ret = unsafe {
            raw::write_texture(texture.raw as i64, sys::ptr(data.as_ptr()), len_of(data))
        };
        status(ret).map(drop)
    }

    /// A sampler: `linear` filtering (else nearest), `repeat` addressing (else clamp to edge).
    pub fn create_sampler(&self, linear: bool, repeat: bool) -> Result<Sampler> {
        // SAFETY: plain values.
        let ret = unsafe { raw::create_sampler(i32::from(linear), i32::from(repeat)) };
        handle(ret).map(Sampler::from_raw)
    }

    pub fn create_render_pipeline(&self, desc: &RenderPipelineDesc) -> Result<RenderPipeline> {
        let bytes = interstice_abi::to_bytes(desc);
        // SAFETY: the pointer and length describe `bytes`, alive for the call.
        let ret = unsafe { raw::create_render_pipeline(sys::ptr(bytes.as_ptr()), len_of(&bytes)) };
        handle(ret).map(RenderPipeline::from_raw)
    }

    /// A bind group for group `group` of `pipeline`'s layout.
    pub fn create_bind_group(
        &self,
        pipeline: RenderPipeline,
        group: u32,
        entries: &[BindGroupEntry],
    ) -> Result<BindGroup> {
        let mut bytes = Vec::new();
        BindGroupEntry::encode_list(entries, &mut bytes);
        // SAFETY: the pointer and length describe `bytes`, alive for the call.
        let ret = unsafe {
            raw::create_bind_group(
                pipeline.raw as i64,
                bits(group),
                sys::ptr(bytes.as_ptr()),
                len_of(&bytes),
            )
        };
        handle(ret).map(BindGroup::from_raw)
    }

    /// Frees a resource now; its handle is refused from then on.
    pub fn destroy(&self, resource: impl Into<Resource>) -> Result<()> {
        // SAFETY: a plain value.
        let ret = unsafe { raw::destroy(resource.into().0 as i64) };
        status(ret).map(drop)
    }

    /// What this module holds on the GPU, and its budget.
    pub fn usage(&self) -> Result<GpuUsage> {
        // SAFETY: no arguments.
        let bytes = result_bytes(unsafe { raw::usage() })?;
        interstice_abi::from_bytes(&bytes).map_err(|e| {
            Error::new(
                ErrorCode::BadInput,
                format!("the host's GPU usage does not decode: {e}"),
            )
        })
    }

    /// Opens a pass that clears `target` to `clear` (linear RGBA in 0..=1). The render hook
    /// only. End it with [`RenderPass::end`] (dropping it ends it too, without the error).
    pub fn begin_pass(&self, target: Target, clear: [f64; 4]) -> Result<RenderPass> {
        let target = match target {
            Target::Frame => 0,
            Target::Texture(t) => t.raw as i64,
        };
        let [r, g, b, a] = clear;
        // SAFETY: plain values.
        status(unsafe { raw::begin_pass(target, r, g, b, a) })?;
        Ok(RenderPass { ended: false })
    }
}

fn format_code(format: TextureFormat) -> i32 {
    match format {
        TextureFormat::Rgba8UnormSrgb => 0,
        TextureFormat::Rgba8Unorm => 1,
        TextureFormat::R8Unorm => 2,
        TextureFormat::Rgba16Float => 3,
        TextureFormat::R32Float => 4,
    }
}

fn count(range: &Range<u32>) -> i32 {
    bits(range.end.saturating_sub(range.start))
}

/// An open render pass of the frame being recorded.
#[derive(Debug)]
#[must_use = "a pass records nothing after it is dropped; call end() to see its error"]
pub struct RenderPass {
    ended: bool,
}

impl RenderPass {
    pub fn set_pipeline(&mut self, pipeline: RenderPipeline) -> Result<()> {
        // SAFETY: a plain value.
        status(unsafe { raw::set_pipeline(pipeline.raw as i64) }).map(drop)
    }

    pub fn set_bind_group(&mut self, index: u32, group: BindGroup) -> Result<()> {
        // SAFETY: plain values.
        status(unsafe { raw::set_bind_group(bits(index), group.raw as i64) }).map(drop)
    }

    /// Binds all of `buffer` to vertex slot `slot`.
    pub fn set_vertex_buffer(&mut self, slot: u32, buffer: Buffer) -> Result<()> {
        self.set_vertex_buffer_range(slot, buffer, 0, 0)
    }

    /// Binds `size` bytes of `buffer` from `offset` (`size == 0`: to the end) to `slot`.
    pub fn set_vertex_buffer_range(
        &mut self,
        slot: u32,
        buffer: Buffer,
        offset: u64,
        size: u64,
    ) -> Result<()> {
        // SAFETY: plain values.
        let ret = unsafe {
            raw::set_vertex_buffer(bits(slot), buffer.raw as i64, signed(offset), signed(size))
        };
        status(ret).map(drop)
    }

    /// Binds all of `buffer` as the index buffer.
    pub fn set_index_buffer(&mut self, buffer: Buffer, format: IndexFormat) -> Result<()> {
        let bits_per_index = match format {
            IndexFormat::Uint16 => 16,
            IndexFormat::Uint32 => 32,
        };
        // SAFETY: plain values.
        let ret = unsafe { raw::set_index_buffer(buffer.raw as i64, bits_per_index, 0, 0) };
        status(ret).map(drop)
    }

    /// Draws `vertices` of `instances`.
    pub fn draw(&mut self, vertices: Range<u32>, instances: Range<u32>) -> Result<()> {
        // SAFETY: plain values.
        let ret = unsafe {
            raw::draw(
                bits(vertices.start),
                count(&vertices),
                bits(instances.start),
                count(&instances),
            )
        };
        status(ret).map(drop)
    }

    /// Draws the vertices `indices` of the index buffer name, offset by `base_vertex`.
    pub fn draw_indexed(
        &mut self,
        indices: Range<u32>,
        base_vertex: i32,
        instances: Range<u32>,
    ) -> Result<()> {
        // SAFETY: plain values.
        let ret = unsafe {
            raw::draw_indexed(
                bits(indices.start),
                count(&indices),
                base_vertex,
                bits(instances.start),
                count(&instances),
            )
        };
        status(ret).map(drop)
    }

    /// Ends the pass.
    pub fn end(mut self) -> Result<()> {
        self.ended = true;
        // SAFETY: no arguments.
        status(unsafe { raw::end_pass() }).map(drop)
    }
}

impl Drop for RenderPass {
    fn drop(&mut self) {
        if !self.ended {
            // Unwinding or an early `?`: the frame fails anyway; close the pass so that the
            // host's message is the first error, not "a pass was left open".
            // SAFETY: no arguments.
            let _ = unsafe { raw::end_pass() };
        }
    }
}

/// The bytes of `values` in little-endian order (wasm's), for buffer writes.
pub fn bytes_of<T: Pod>(values: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(std::mem::size_of_val(values));
    for v in values {
        v.extend_le(&mut out);
    }
    out
}

/// Plain numbers [`bytes_of`] can write.
pub trait Pod: Copy {
    fn extend_le(self, out: &mut Vec<u8>);
}

macro_rules! pod {
    ($($t:ty),*) => {$(
        impl Pod for $t {
            fn extend_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}

pod!(f32, u32, i32, u16, u8);

#[cfg(test)]
mod tests {
    use interstice_abi::{TypeDefs, to_bytes};

    use super::*;

    #[test]
    fn handles_encode_as_their_number() {
        assert_eq!(to_bytes(&Buffer::from_raw(7)), 7u64.to_le_bytes());
        let mut defs = TypeDefs::new();
        defs.collect::<Buffer>();
        assert_eq!(defs.into_sorted().len(), 1);
    }

    #[test]
    fn formats_are_numbered_as_the_host_numbers_them() {
        // The variant index is the host's code (`interstice_window::engine::texture_format`).
        assert_eq!(to_bytes(&TextureFormat::R32Float), [4]);
        assert_eq!(format_code(TextureFormat::R32Float), 4);
        assert_eq!(to_bytes(&VertexFormat::Unorm8x4), [12]);
        assert_eq!(to_bytes(&PrimitiveTopology::PointList), [4]);
    }

    #[test]
    fn bytes_of_is_little_endian() {
        assert_eq!(bytes_of(&[1.0f32]), 1.0f32.to_le_bytes());
        assert_eq!(bytes_of(&[1u16, 2]), [1, 0, 2, 0]);
    }
}
